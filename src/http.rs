//! The HTTP client for token traffic: every authorizer that talks to an identity provider
//! goes through [`HttpClient`].
//!
//! It exists so that the safe defaults live in one place:
//!
//! - **timeouts** on every request (connect 10 s, and 30 s for each later step: sending the
//!   request, waiting for the answer, reading it), because ureq has none and a hung token
//!   endpoint would hold every thread waiting for a token. Name resolution is bounded by
//!   the system resolver's own timeouts: a ureq timeout on it would start a thread per
//!   request (see [`HttpClient::with_timeouts`]);
//! - **no redirects**: a token endpoint that redirects is misconfigured, and following it
//!   would send the client's credentials somewhere else;
//! - **a response size cap** (1 MiB by default), so a broken or hostile server cannot make
//!   us buffer without bound;
//! - **retries** of transient failures (connection errors, 5xx, throttling) with
//!   exponential back-off and jitter, honouring `Retry-After` up to a cap, within a bounded
//!   total time ([`RetryPolicy`]);
//! - **HTTPS only** for endpoints that receive credentials, loopback excepted, unless the
//!   user opts out ([`check_endpoint`]).
//!
//! Give it your own [`ureq::Agent`] with [`HttpClient::with_agent`] for proxies or
//! corporate TLS roots: the timeouts, the redirect ban and the size cap are still applied
//! to each token request.

use std::time::{Duration, Instant};

use ureq::http::Uri;

use crate::{Error, ErrorKind};

/// How failed token requests are retried. Only transient failures are retried: connection
/// failures and timeouts, 5xx answers, throttling (HTTP 429, Cognito's
/// `TooManyRequestsException`). A rejected credential is never retried.
///
/// The wait before retry *n* is `initial_backoff · 2ⁿ⁻¹`, capped at `max_backoff`, with
/// "equal jitter" (a random duration between half of it and all of it) so that many
/// clients do not retry in step; a `Retry-After` from the server (seconds, or an HTTP
/// date) replaces it, and one longer than `max_retry_after` ends the retries. No retry starts
/// once `max_elapsed` has passed since the first attempt.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::http::RetryPolicy;
///
/// let patient = RetryPolicy {
///     max_attempts: 6,
///     max_elapsed: Duration::from_secs(60),
///     ..RetryPolicy::default()
/// };
/// assert_eq!(patient.initial_backoff, Duration::from_millis(100));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4).
    pub max_attempts: u32,
    /// The back-off before the first retry, before jitter (default 100 ms).
    pub initial_backoff: Duration,
    /// The longest back-off between two attempts, before jitter (default 2 s).
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured (default 5 s); a longer one ends the retries.
    pub max_retry_after: Duration,
    /// No retry starts after this long since the first attempt (default 15 s).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    ///
    /// ```
    /// use en_core_auth::http::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().max_attempts, 1);
    /// ```
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1), or `None` when no
    /// further attempt should be made.
    fn wait_before_next(
        &self,
        attempt: u32,
        started: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let wait = match retry_after {
            Some(asked) if asked > self.max_retry_after => return None,
            Some(asked) => asked,
            None => {
                let exponential = self
                    .initial_backoff
                    .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
                jitter(exponential.min(self.max_backoff))
            }
        };
        (started.elapsed() + wait <= self.max_elapsed).then_some(wait)
    }
}

/// A random duration between half of `full` and `full` ("equal jitter": spreads clients
/// out without ever retrying at once).
fn jitter(full: Duration) -> Duration {
    let fraction = getrandom::u32().unwrap_or(u32::MAX / 2) as f64 / u32::MAX as f64;
    full.mul_f64(0.5 + fraction / 2.0)
}

/// The HTTP client that authorizers use to talk to identity providers.
///
/// Cloning is cheap; clones share the connection pool.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::http::{HttpClient, RetryPolicy};
///
/// let http = HttpClient::new()
///     .with_timeouts(Duration::from_secs(5), Duration::from_secs(20))
///     .with_retry(RetryPolicy::none());
/// assert_eq!(http.connect_timeout(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    /// True when `agent` was built here with the timeouts and rules below, so requests
    /// need no per-request configuration (which clones the agent's whole configuration:
    /// about 1 µs per token request, see BENCHMARKS.md).
    own_agent: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_bytes: u64,
    retry: RetryPolicy,
}

impl Default for HttpClient {
    fn default() -> HttpClient {
        HttpClient::new()
    }
}

/// What came back from one request of an [`HttpClient`]: the status, the headers and the
/// body, read whole but never beyond the client's
/// [size cap](HttpClient::with_max_response_size). A 4xx or 5xx is a `Reply` too, not an
/// error: what it means is the protocol's to say (see
/// [`token_from_reply`](crate::oauth2::token_from_reply) for RFC 6749's answer).
///
/// `Debug` shows the status, the endpoint and the body's length, never the body, which may
/// hold tokens.
///
/// ```
/// use en_core_auth::http::Reply;
///
/// // What a test of your own authorizer can feed it.
/// let reply = Reply::new(429, r#"{"error":"slow_down"}"#).with_header("Retry-After", "2");
/// assert_eq!(reply.status(), 429);
/// assert_eq!(reply.header("retry-after"), Some("2"));
/// assert!(reply.body().starts_with(b"{"));
/// assert!(!format!("{reply:?}").contains("slow_down"));
/// ```
#[derive(Clone)]
pub struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    /// The `DPoP-Nonce` header (RFC 9449 §8), when the server sent one.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) dpop_nonce: Option<String>,
    /// Every `WWW-Authenticate` header, in order (RFC 9110 §11.6.1: a resource's 401
    /// names its metadata there, RFC 9728 §5.1).
    pub(crate) www_authenticate: Vec<String>,
    pub(crate) headers: ureq::http::HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The URL asked, when the reply came from the network; errors made from this reply
    /// name it (see [`Error::endpoint`]).
    pub(crate) url: Option<String>,
}

impl Reply {
    /// A reply with this status and body and no headers, as a test of your own
    /// authorizer needs.
    ///
    /// ```
    /// let reply = en_core_auth::http::Reply::new(200, "{}");
    /// assert_eq!(reply.body(), b"{}");
    /// ```
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            retry_after: None,
            dpop_nonce: None,
            www_authenticate: Vec::new(),
            headers: ureq::http::HeaderMap::new(),
            body: body.into(),
            url: None,
        }
    }

    /// Adds a header (a name or value that HTTP does not allow is left out).
    ///
    /// ```
    /// let reply = en_core_auth::http::Reply::new(200, "{}")
    ///     .with_header("Content-Type", "application/json");
    /// assert_eq!(reply.header("content-type"), Some("application/json"));
    /// ```
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        let name = ureq::http::HeaderName::try_from(name);
        let value = ureq::http::HeaderValue::try_from(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            self.headers.append(name, value);
        }
        self.read_headers();
        self
    }

    /// The HTTP status.
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::Reply::new(503, "").status(), 503);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of the header `name` (any case), if it is there and is text.
    ///
    /// ```
    /// let reply = en_core_auth::http::Reply::new(200, "").with_header("ETag", "\"1\"");
    /// assert_eq!(reply.header("etag"), Some("\"1\""));
    /// assert_eq!(reply.header("x-missing"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body, at most the client's size cap.
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::Reply::new(204, "").body(), b"");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Reads the headers the crate acts on (`Retry-After`, `DPoP-Nonce`) into their fields.
    fn read_headers(&mut self) {
        self.retry_after = self
            .header("retry-after")
            .and_then(|value| parse_retry_after(value, std::time::SystemTime::now()));
        self.dpop_nonce = self.header("dpop-nonce").map(str::to_owned);
        self.www_authenticate = self
            .headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect();
    }

    /// `error`, naming the endpoint this reply came from.
    pub(crate) fn error_at(&self, error: Error) -> Error {
        match &self.url {
            Some(url) => error.at(url),
            None => error,
        }
    }

    /// What the body is, for an error saying that it was not what was expected: its
    /// content type and, for an HTML (or XML) page such as a captive portal's or a login
    /// page's, a short start of it. Control characters are removed, runs of 20 or more
    /// token characters (what a secret looks like) are cut out, and the start is at most 80
    /// characters. Other bodies are described by their length only: they could echo what
    /// was sent.
    pub(crate) fn describe_body(&self) -> String {
        let content_type = self
            .header("content-type")
            .map(|kind| sanitize_text(kind, 60))
            .unwrap_or_else(|| "no content type".to_owned());
        let start = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]);
        let markup = content_type.contains("html")
            || content_type.contains("xml")
            || start.trim_start().starts_with('<');
        if self.body.is_empty() {
            format!("an empty body ({content_type})")
        } else if markup {
            format!(
                "an HTML page ({content_type}) beginning `{}`",
                sanitize_text(&without_secrets(&start), 80)
            )
        } else {
            format!("{} bytes of {content_type}", self.body.len())
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field(
                "endpoint",
                &self.url.as_deref().map(crate::error::endpoint_name),
            )
            .field("content_type", &self.header("content-type"))
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Control characters become spaces, runs of spaces one, and the text is cut at
/// `max_chars` (with `…` when cut): safe for one log line.
fn sanitize_text(text: &str, max_chars: usize) -> String {
    let clean = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>();
    let words = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &words[..cut]),
        None => words,
    }
}

/// `text` with every run of 20 or more characters that could make up a token or a secret
/// (letters, digits, `-._~+/=`) replaced by `…`.
fn without_secrets(text: &str) -> String {
    let is_token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if is_token(c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.chars().count() >= 20 {
            "…"
        } else {
            &run
        });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// What an HTTP status means when the body names no error of its own, the same for every
/// protocol of the crate: 408, 429 and 5xx are the server's trouble (and worth retrying),
/// 401 and 403 a refusal of the credentials, a redirect (never followed with credentials)
/// or another 4xx a wrong URL or request, anything else an answer that makes no sense.
pub(crate) fn status_kind(status: u16) -> ErrorKind {
    match status {
        _ if is_transient_status(status) => ErrorKind::Server,
        401 | 403 => ErrorKind::CredentialsRejected,
        300..=499 => ErrorKind::Configuration,
        _ => ErrorKind::MalformedResponse,
    }
}

/// Whether a reply with this status is worth sending the request again: 408, 429, 5xx.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The outcome of one attempt, as the protocol code classifies it for
/// `HttpClient::with_retries`.
pub(crate) enum Attempt<T> {
    /// Finished: success, or a failure that retrying will not fix.
    Done(Result<T, Error>),
    /// A transient failure: try again after the back-off (or the server's `Retry-After`).
    Retry(Error, Option<Duration>),
}

/// The timeouts and rules of token traffic, set on an agent's or a request's configuration
/// builder (two types that share these methods through a trait ureq keeps private).
macro_rules! token_traffic_rules {
    ($builder:expr, $http:expr) => {
        $builder
            .timeout_connect(Some($http.connect_timeout))
            .timeout_send_request(Some($http.request_timeout))
            .timeout_send_body(Some($http.request_timeout))
            .timeout_recv_response(Some($http.request_timeout))
            .timeout_recv_body(Some($http.request_timeout))
            .max_redirects(0)
            .http_status_as_error(false)
    };
}

impl HttpClient {
    /// A client with its own agent and the default timeouts (connect 10 s, each later step
    /// 30 s), size cap (1 MiB) and [`RetryPolicy`].
    ///
    /// ```
    /// let http = en_core_auth::http::HttpClient::new();
    /// assert_eq!(http.request_timeout().as_secs(), 30);
    /// ```
    pub fn new() -> HttpClient {
        let mut http = HttpClient::with_agent(ureq::Agent::new_with_defaults());
        http.own_agent = true;
        http.agent = http.own_agent();
        http
    }

    /// An agent that applies this client's timeouts and rules to every request.
    fn own_agent(&self) -> ureq::Agent {
        token_traffic_rules!(ureq::Agent::config_builder(), self)
            .build()
            .into()
    }

    /// A client that sends its requests through `agent` (for a proxy, or your own TLS
    /// roots). Timeouts, the redirect ban and the size cap are still set on every request.
    ///
    /// If `agent` carries an [`AuthMiddleware`](crate::AuthMiddleware), the middleware
    /// passes token requests through untouched.
    ///
    /// ```
    /// use en_core_auth::http::HttpClient;
    /// let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    /// let http = HttpClient::with_agent(agent);
    /// # let _ = http;
    /// ```
    pub fn with_agent(agent: ureq::Agent) -> HttpClient {
        HttpClient {
            agent,
            own_agent: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the connect timeout and the timeout of each later step of a request: sending
    /// it (headers, then body), waiting for the answer's headers, reading its body. A
    /// request that makes progress takes at most `connect + 4 × request`; one that stalls
    /// fails after its step's timeout. Zero durations are raised to one millisecond: there
    /// is always a timeout.
    ///
    /// Why not one timeout for the whole request: with one set, ureq resolves every host
    /// name on a new thread, so that resolution can be cut short; that thread cost about
    /// 20 µs of CPU per token request, more than the rest of the request (BENCHMARKS.md).
    /// Name resolution is bounded by the system resolver's own timeouts instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let http = en_core_auth::http::HttpClient::new()
    ///     .with_timeouts(Duration::from_secs(2), Duration::from_secs(5));
    /// assert_eq!(http.request_timeout(), Duration::from_secs(5));
    /// ```
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> HttpClient {
        let at_least = Duration::from_millis(1);
        self.connect_timeout = connect.max(at_least);
        self.request_timeout = request.max(at_least);
        if self.own_agent {
            self.agent = self.own_agent();
        }
        self
    }

    /// Sets how transient failures are retried.
    ///
    /// ```
    /// use en_core_auth::http::{HttpClient, RetryPolicy};
    /// let http = HttpClient::new().with_retry(RetryPolicy::none());
    /// assert_eq!(http.retry_policy().max_attempts, 1);
    /// ```
    pub fn with_retry(mut self, retry: RetryPolicy) -> HttpClient {
        self.retry = retry;
        self
    }

    /// Sets the largest response body accepted, in bytes (default 1 MiB). A larger answer
    /// is a [`MalformedResponse`](ErrorKind::MalformedResponse) error.
    ///
    /// ```
    /// let http = en_core_auth::http::HttpClient::new().with_max_response_size(64 * 1024);
    /// assert_eq!(http.max_response_size(), 64 * 1024);
    /// ```
    pub fn with_max_response_size(mut self, bytes: u64) -> HttpClient {
        self.max_response_bytes = bytes;
        self
    }

    /// The connect timeout.
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::HttpClient::new().connect_timeout().as_secs(), 10);
    /// ```
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The timeout of each step after connecting (see
    /// [`with_timeouts`](HttpClient::with_timeouts)).
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::HttpClient::new().request_timeout().as_secs(), 30);
    /// ```
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The largest response body accepted, in bytes.
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::HttpClient::new().max_response_size(), 1024 * 1024);
    /// ```
    pub fn max_response_size(&self) -> u64 {
        self.max_response_bytes
    }

    /// The retry policy.
    ///
    /// ```
    /// assert_eq!(en_core_auth::http::HttpClient::new().retry_policy().max_attempts, 4);
    /// ```
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// POSTs an `application/x-www-form-urlencoded` body with extra `headers`: one
    /// attempt, with this client's timeouts, redirect ban and size cap. Any status is a
    /// [`Reply`]; a failure to reach the server is a [`Transport`](ErrorKind::Transport)
    /// error, a body over the cap [`MalformedResponse`](ErrorKind::MalformedResponse), each
    /// naming the endpoint ([`Error::endpoint`]). Retry with
    /// [`send_with_retries`](HttpClient::send_with_retries).
    ///
    /// The `url` is not checked here: check a URL that receives credentials once, with
    /// [`check_endpoint`], where your authorizer is configured.
    ///
    /// ```no_run
    /// use en_core_auth::http::HttpClient;
    ///
    /// let http = HttpClient::new();
    /// let reply = http.post_form(
    ///     "https://idp.example.com/oauth2/token",
    ///     &[("accept", "application/json")],
    ///     &[("grant_type", "client_credentials"), ("scope", "read")],
    /// )?;
    /// println!("HTTP {}", reply.status());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn post_form(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<Reply, Error> {
        let mut request = self.configured(self.agent.post(url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.read_reply(url, request.send_form(form.iter().copied()))
    }

    /// POSTs a body with the given content type. One attempt.
    pub(crate) fn post_bytes(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, Error> {
        let mut request = self
            .configured(self.agent.post(url))
            .header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.read_reply(url, request.send(body))
    }

    /// GETs `url` asking for JSON (`Accept: application/json`): one attempt, as
    /// [`post_form`](HttpClient::post_form) does.
    ///
    /// ```no_run
    /// let reply = en_core_auth::http::HttpClient::new()
    ///     .get("https://idp.example.com/.well-known/openid-configuration")?;
    /// assert_eq!(reply.status(), 200);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn get(&self, url: &str) -> Result<Reply, Error> {
        let request = self
            .configured(self.agent.get(url))
            .header("accept", "application/json");
        self.read_reply(url, request.call())
    }

    /// Runs `attempt` (one request, such as a [`post_form`](HttpClient::post_form)) again
    /// while it fails in a way worth retrying, as this client's [`RetryPolicy`] allows:
    /// a [`Transport`](ErrorKind::Transport) error, or a reply with status 408, 429 or 5xx
    /// (after the server's `Retry-After` when it sent one). Returns the first other result;
    /// when the retries run out, the last reply (for the caller to read, as it would any
    /// other) or the last error.
    ///
    /// Only retry what the server may receive twice: a client-credentials request or a
    /// refresh with a refresh token that does not rotate, not an authorization code.
    ///
    /// ```no_run
    /// use en_core_auth::http::HttpClient;
    ///
    /// let http = HttpClient::new();
    /// let reply = http.send_with_retries(|| {
    ///     http.post_form(
    ///         "https://idp.example.com/oauth2/token",
    ///         &[],
    ///         &[("grant_type", "client_credentials")],
    ///     )
    /// })?;
    /// let token = en_core_auth::oauth2::token_from_reply(&reply)?;
    /// # let _ = token;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn send_with_retries(
        &self,
        mut attempt: impl FnMut() -> Result<Reply, Error>,
    ) -> Result<Reply, Error> {
        let mut last_reply = None;
        let result = self.with_retries(|| {
            last_reply = None;
            match attempt() {
                Ok(reply) if is_transient_status(reply.status) => {
                    let error = reply.error_at(Error::new(
                        ErrorKind::Server,
                        format!("HTTP {}", reply.status),
                    ));
                    let retry_after = reply.retry_after;
                    last_reply = Some(reply);
                    Attempt::Retry(error, retry_after)
                }
                Ok(reply) => Attempt::Done(Ok(reply)),
                Err(error) if error.kind() == ErrorKind::Transport => Attempt::Retry(error, None),
                Err(error) => Attempt::Done(Err(error)),
            }
        });
        match (result, last_reply) {
            (Err(_), Some(reply)) => Ok(reply),
            (result, _) => result,
        }
    }

    /// GETs a resource with these headers as well (GitHub's ID-token request). One attempt.
    pub(crate) fn get_with_headers(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, Error> {
        let mut request = self
            .configured(self.agent.get(url))
            .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.read_reply(url, request.call())
    }

    /// Runs `attempt` until it is done, retrying transient failures as the
    /// [`RetryPolicy`] allows. The last error is returned when retries run out.
    pub(crate) fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Attempt<T>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt() {
                Attempt::Done(result) => return result,
                Attempt::Retry(error, retry_after) => {
                    match self.retry.wait_before_next(attempts, started, retry_after) {
                        Some(wait) => {
                            log::debug!("token request failed ({error}); retrying in {wait:?}");
                            std::thread::sleep(wait);
                        }
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// A transient transport failure from [`post_form`](Self::post_form) and friends is
    /// worth retrying; everything else is final.
    pub(crate) fn retry_transport<T, U>(result: Result<T, Error>) -> Result<T, Attempt<U>> {
        match result {
            Ok(value) => Ok(value),
            Err(error) if error.kind() == ErrorKind::Transport => Err(Attempt::Retry(error, None)),
            Err(error) => Err(Attempt::Done(Err(error))),
        }
    }

    /// The per-request settings that hold whatever agent the client was given.
    fn configured<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        // An agent of our own carries no middleware: nothing to tell apart.
        if self.own_agent {
            return request;
        }
        let mut request = token_traffic_rules!(request.config(), self).build();
        // Token traffic: an AuthMiddleware on the caller's agent lets it through on any
        // thread.
        if let Some(extensions) = request.extensions_mut() {
            extensions.insert(crate::base::TokenTraffic);
        }
        request
    }

    fn read_reply(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, Error> {
        let mut response = response.map_err(|error| transport_error(error).at(url))?;
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()
            .map_err(|error| transport_error(error).at(url))?;
        let (parts, _) = response.into_parts();
        let mut reply = Reply::new(parts.status.as_u16(), body);
        reply.headers = parts.headers;
        reply.url = Some(url.to_owned());
        reply.read_headers();
        Ok(reply)
    }
}

/// Classifies a ureq failure. The message never includes request headers or bodies.
pub(crate) fn transport_error(error: ureq::Error) -> Error {
    match error {
        ureq::Error::BodyExceedsLimit(limit) => Error::new(
            ErrorKind::MalformedResponse,
            format!("the response is larger than the {limit}-byte limit"),
        ),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Error::new(ErrorKind::Configuration, error)
        }
        other => Error::new(ErrorKind::Transport, other),
    }
}

/// Whether a failed request surely never reached the server: the connection was
/// refused or could not be made, or the host name did not resolve. Anything else (a reset,
/// a timeout while waiting for the answer) may have come after the server acted on it.
pub(crate) fn surely_unsent(error: &Error) -> bool {
    match error.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Io(io)) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        Some(ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) => true,
        Some(ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve)) => true,
        _ => false,
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (RFC 9110 §5.6.7:
/// IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept), as the
/// time left from `now` (zero for a date already past). The dates are read by `httpdate`,
/// which bounds the year, so no server-sent value can overflow a computation here.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Checks that `url` is a usable endpoint for sending credentials: an absolute `https`
/// URL, or `http` to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) for local
/// testing. `allow_insecure_http` lifts the HTTPS requirement for any host.
///
/// ```
/// use en_core_auth::http::check_endpoint;
///
/// assert!(check_endpoint("https://idp.example.com/oauth2/token", false).is_ok());
/// assert!(check_endpoint("http://127.0.0.1:9229/oauth2/token", false).is_ok());
/// assert!(check_endpoint("http://idp.example.com/oauth2/token", false).is_err());
/// assert!(check_endpoint("http://idp.example.com/oauth2/token", true).is_ok());
/// assert!(check_endpoint("not a url", true).is_err());
/// ```
pub fn check_endpoint(url: &str, allow_insecure_http: bool) -> Result<Uri, Error> {
    let uri: Uri = url.parse().map_err(|_| {
        Error::new(
            ErrorKind::Configuration,
            format!("`{url}` is not a valid URL"),
        )
    })?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("`{url}` is not an absolute URL with a host"),
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::new(
            ErrorKind::Configuration,
            "the URL must not carry credentials in it; give them in ClientInfo",
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if allow_insecure_http || is_loopback(host) => Ok(uri),
        Some("http") => Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "refusing to send credentials over plain HTTP to `{host}`; \
                 use an https URL (plain http is allowed for loopback hosts, or when you opt in explicitly)"
            ),
        )),
        _ => Err(Error::new(
            ErrorKind::Configuration,
            format!("`{url}` must be an http or https URL"),
        )),
    }
}

/// Whether `host` (as in a URL, IPv6 in brackets) names this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "[::2]", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn endpoint_rules() {
        assert_eq!(
            check_endpoint("ftp://x.example/", true).unwrap_err().kind(),
            ErrorKind::Configuration
        );
        assert!(check_endpoint("/relative/only", true).is_err());
        assert!(check_endpoint("https://user:pw@x.example/token", false).is_err());
        let message = check_endpoint("http://x.example/t", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("https"), "{message}");
    }

    #[test]
    fn a_refused_connection_is_surely_unsent() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = HttpClient::new().with_retry(RetryPolicy::none());
        let err = http
            .post_form(&format!("http://127.0.0.1:{port}/token"), &[], &[])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert!(surely_unsent(&err), "{err:?}");
        let timeout = Error::new(
            ErrorKind::Transport,
            ureq::Error::Timeout(ureq::Timeout::RecvResponse),
        );
        assert!(!surely_unsent(&timeout));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 07:28:00
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        // A date already past: retry at once.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        let epoch = std::time::UNIX_EPOCH;
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", epoch),
            Some(Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", epoch),
            Some(Duration::from_secs(1_835_395_200))
        );
        // The obsolete forms RFC 9110 §5.6.7 says recipients must accept.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", epoch),
            Some(Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", epoch),
            Some(Duration::from_secs(784_111_777))
        );
        for bad in [
            "soon",
            "Wed, 21 Oct 2015 07:28:00 CET",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:28:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "-5",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    /// A date the server is free to send (any digits parse as a year) must never overflow
    /// the arithmetic: a panic here would be on the thread that asked for a token.
    #[test]
    fn a_huge_year_is_no_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        for huge in [
            "Wed, 21 Oct 18446744073709551615 07:28:00 GMT",
            "Wed, 21 Oct 99999999999999 07:28:00 GMT",
            "Wed, 21 Oct 584554051223 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(huge, now), None, "{huge}");
        }
    }

    #[test]
    fn back_off_grows_and_stops() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(60),
        };
        let started = Instant::now();
        let first = policy.wait_before_next(1, started, None).unwrap();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = policy.wait_before_next(3, started, None).unwrap();
        assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
        assert_eq!(policy.wait_before_next(5, started, None), None);
        assert_eq!(
            policy.wait_before_next(1, started, Some(Duration::from_millis(700))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            policy.wait_before_next(1, started, Some(Duration::from_secs(2))),
            None
        );
    }

    #[test]
    fn no_retry_past_the_time_budget() {
        let policy = RetryPolicy {
            max_elapsed: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        assert_eq!(
            policy.wait_before_next(1, Instant::now(), Some(Duration::from_secs(1))),
            None
        );
    }
}
