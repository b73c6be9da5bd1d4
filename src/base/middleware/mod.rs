//! [`AuthMiddleware`]: puts the token on requests, and only that, plus what a middleware
//! must do for credentials to be safe: follow redirects itself, so that credentials reach
//! only the origin they were meant for, and resend once after a `401`.
//!
//! Why redirects are followed here and not by ureq: ureq forwards every header but
//! `Authorization` and `Cookie` to any host it is redirected to, `X-Api-Key` included, and
//! drops `Authorization` even on a same-origin redirect (which would then look like a
//! rejected token). So each request the middleware handles is sent with
//! `max_redirects(0)` and its redirects are followed by the same rules as ureq's, deciding
//! per hop which headers go.
//!
//! Files, one job each: [`builder`] (settings), [`credentials`] (the headers set and
//! stripped), [`replay`] (bodies kept for a resend), [`exchange`] (the resend and the
//! hops), [`redirect`] (ureq's redirect rules), [`resolve`] (`Location` resolution),
//! [`origin`] (where credentials may go). The token itself comes from the lifecycle.

mod builder;
mod credentials;
mod exchange;
mod origin;
mod redirect;
mod replay;
mod resolve;

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ureq::http::{HeaderMap, HeaderValue, Request, Response};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, RequestExt, SendBody};

pub use builder::AuthMiddlewareBuilder;

use super::lifecycle::{Current, Lifecycle, Rejection};
use super::{Stats, TokenRequests};
use crate::{Authorizer, Error, ErrorKind, Token};
use credentials::Credentials;
use exchange::Sent;
#[cfg(feature = "jwt")]
pub(crate) use origin::Origin;
#[cfg(not(feature = "jwt"))]
use origin::Origin;
use origin::OriginPolicy;
use replay::{FirstBody, Limits, Replay};

/// Authorizes every request of a ureq agent with tokens from an [`Authorizer`]
/// (reference: the `__call__` of `en_core.auth.base.Authorizer`).
///
/// It gets the first token on the first request, reuses it, renews it ahead of expiry
/// (see [`RefreshThresholds`](super::RefreshThresholds)), and after a `401` renews it and
/// resends the request once. Clones share one token, across agents and threads.
///
/// On each request it sets `Authorization: Bearer <token>` (the header and prefix are
/// configurable, see [`AuthMiddleware::builder`]) and `X-Api-Key` when the
/// [`ClientInfo`](crate::ClientInfo) has an API key. A request that already carries the
/// authorization header goes out as the caller made it.
///
/// Build the agent with [`AuthMiddleware::agent`] so that what the middleware sends itself
/// (a resend, a redirect hop) uses the agent's own settings. With a plain
/// `.middleware(auth)`, those go out with the builder's settings instead: a 30 s connect
/// timeout, a 120 s wait for the response head, ureq's other defaults (no proxy, the
/// default TLS roots), 10 redirects; the first time that happens, a warning is logged.
///
/// ```
/// # use en_core_auth::base::doc_fixture::Static;
/// use en_core_auth::AuthMiddleware;
///
/// let auth = AuthMiddleware::new(Static::new());
/// let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder().user_agent("my-app/1.0"));
/// assert_eq!(auth.header_value()?, "Bearer abc");
/// # let _ = agent;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct AuthMiddleware {
    inner: Arc<Inner>,
}

/// Marks a request that every [`AuthMiddleware`] passes on untouched: no credentials, no
/// resend, no redirect handling. The crate's own token requests carry it. A custom
/// [`Authorizer`] whose requests go through an agent carrying the same middleware needs it
/// only when it sends them from another thread than the one `authorize()` runs on (the
/// middleware lets through what the authorizer sends on its own thread); without it such
/// a request would wait for the token it is fetching.
///
/// ```
/// use en_core_auth::base::TokenTraffic;
/// let agent = ureq::Agent::new_with_defaults();
/// let mut request = agent.post("https://idp.example.com/token");
/// if let Some(extensions) = request.extensions_mut() {
///     extensions.insert(TokenTraffic);
/// }
/// # let _ = request;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenTraffic;

pub(crate) struct Inner {
    /// Shared with nobody else: the background refresh thread holds it by a `Weak`.
    lifecycle: Arc<Lifecycle>,
    client_id: String,
    credentials: Credentials,
    policy: OriginPolicy,
    limits: Limits,
    /// Where resends and hops go for a plain `.middleware(auth)`.
    route: Route,
    /// A configuration mistake found by `build()`, reported on every use.
    misconfigured: Option<String>,
}

/// The agent that sends what the middleware sends itself, and the settings of the
/// caller's agent a middleware cannot read.
pub(crate) struct Route {
    agent: ureq::Agent,
    status_as_error: bool,
    max_redirects: u32,
    redirects_error: bool,
    /// The route of a plain `.middleware(auth)`: an agent the middleware made itself,
    /// without the caller's proxy, TLS roots or timeouts. Its first use is logged.
    fallback: bool,
    /// Whether that warning was given (once per middleware, its clones included).
    warned: AtomicBool,
}

impl Route {
    /// Logs, the first time only, that a request went out on the fallback route.
    fn note_use(&self, client_id: &str) {
        if self.fallback && !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                "the AuthMiddleware of client `{client_id}` resent a request (or followed a \
                 redirect) on an agent of its own, without your agent's proxy, TLS roots or \
                 timeouts, because it was attached with `.middleware(auth)`; build the agent \
                 with `auth.agent(config)` to have its settings used"
            );
        }
    }
}

impl Route {
    /// A route with `config`'s settings, on an agent without its middleware: an agent
    /// holding the middleware that holds it would be a reference cycle, never freed.
    fn copying(config: &ureq::config::Config) -> Route {
        let t = config.timeouts();
        let agent = ureq::config::Config::builder()
            .https_only(config.https_only())
            .ip_family(config.ip_family())
            .tls_config(config.tls_config().clone())
            .proxy(config.proxy().cloned())
            .no_delay(config.no_delay())
            .redirect_auth_headers(config.redirect_auth_headers())
            .user_agent(config.user_agent().clone())
            .accept(config.accept().clone())
            .accept_encoding(config.accept_encoding().clone())
            .timeout_global(t.global)
            .timeout_per_call(t.per_call)
            .timeout_resolve(t.resolve)
            .timeout_connect(t.connect)
            .timeout_send_request(t.send_request)
            .timeout_await_100(t.await_100)
            .timeout_send_body(t.send_body)
            .timeout_recv_response(t.recv_response)
            .timeout_recv_body(t.recv_body)
            .timeout_per_read(config.timeout_per_read())
            .timeout_per_write(config.timeout_per_write())
            .max_response_header_size(config.max_response_header_size())
            .input_buffer_size(config.input_buffer_size())
            .output_buffer_size(config.output_buffer_size())
            .max_idle_connections(config.max_idle_connections())
            .max_idle_connections_per_host(config.max_idle_connections_per_host())
            .max_idle_age(config.max_idle_age())
            .allow_non_standard_methods(config.allow_non_standard_methods())
            .build()
            .new_agent();
        Route {
            agent,
            status_as_error: config.http_status_as_error(),
            max_redirects: config.max_redirects(),
            redirects_error: config.max_redirects_will_error(),
            fallback: false,
            warned: AtomicBool::new(false),
        }
    }
}

/// The middleware as registered by [`AuthMiddleware::agent`]: the shared token, and that
/// agent's own route.
struct Bound {
    inner: Arc<Inner>,
    route: Arc<OnceLock<Route>>,
}

impl Middleware for Bound {
    fn handle(
        &self,
        request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        let route = self.route.get().unwrap_or(&self.inner.route);
        self.inner.handle(request, next, route)
    }
}

impl std::fmt::Debug for AuthMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMiddleware")
            .field("client_id", &self.inner.client_id)
            .field("header_name", &self.inner.credentials.header_name)
            .finish_non_exhaustive()
    }
}

impl AuthMiddleware {
    /// A middleware with the default settings for `authorizer`.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// assert_eq!(auth.client_id(), "me");
    /// ```
    pub fn new(authorizer: impl Authorizer + 'static) -> AuthMiddleware {
        AuthMiddleware::builder(authorizer).build()
    }

    /// A builder to set where the token goes, when it is renewed and how requests are
    /// resent.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// // An API Gateway Cognito authorizer that reads the bare ID token from `X-Id-Token`:
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .header_name("x-id-token")
    ///     .header_prefix("")
    ///     .use_id_token()
    ///     .build();
    /// assert_eq!(auth.header_value()?, "id");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(authorizer: impl Authorizer + 'static) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder::new(Box::new(authorizer))
    }

    /// Builds an agent from `config` with this middleware attached. Everything the
    /// middleware sends itself (a resend after a `401`, a redirect hop it follows) goes
    /// out with the same configuration: user agent, proxy, TLS roots, timeouts,
    /// `https_only`, and the agent's `http_status_as_error` and `max_redirects`, which a
    /// middleware cannot read otherwise. Each agent built this way keeps its own settings,
    /// while all of them share this middleware's token. Other middleware on `config` runs
    /// for the first send only, as it does for ureq's own redirects.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use std::time::Duration;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// let agent = auth.agent(
    ///     ureq::Agent::config_builder()
    ///         .timeout_global(Some(Duration::from_secs(30)))
    ///         .http_status_as_error(false),
    /// );
    /// # let _ = agent;
    /// ```
    pub fn agent(
        &self,
        config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> ureq::Agent {
        let route = Arc::new(OnceLock::new());
        let config = config
            .middleware(Bound {
                inner: Arc::clone(&self.inner),
                route: Arc::clone(&route),
            })
            .build();
        // Set before the agent exists, so no request sees the fallback route.
        let _ = route.set(Route::copying(&config));
        config.into()
    }

    /// The current token, obtaining or renewing it first if needed.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// assert_eq!(auth.access_token()?, "abc");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn access_token(&self) -> Result<String, Error> {
        if self.inner.misconfigured.is_none()
            && let Some(token) = self.inner.lifecycle.fresh_access_token()
        {
            return Ok(token);
        }
        Ok(self.current()?.token.access_token().to_owned())
    }

    /// The whole current [`Token`] (ID token, refresh token, expiry), obtaining or renewing
    /// it first if needed.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// assert_eq!(auth.token()?.id_token(), Some("id"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token(&self) -> Result<Token, Error> {
        Ok(self.current()?.token.clone())
    }

    /// The value the authorization header would carry now, such as `Bearer eyJ…`, for use
    /// with other HTTP clients. A DPoP-bound token (`DPoP eyJ…`) also needs a proof for
    /// each request, from `oauth2::DpopKey::proof` (feature `jwt`).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// assert_eq!(auth.header_value()?, "Bearer abc");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn header_value(&self) -> Result<String, Error> {
        let header = match self.inner.lifecycle.fresh() {
            Some((header, _generation)) if self.inner.misconfigured.is_none() => header,
            _ => self.current()?.header.clone(),
        };
        header_text(&header)
    }

    /// Sets the authorization header (and the API key header) on `headers`, obtaining or
    /// renewing the token first if needed: what the middleware does to each request, for
    /// requests made with another HTTP client. Such requests get no resend after a `401`:
    /// call [`invalidate`](Self::invalidate) when you see one.
    ///
    /// # Errors
    ///
    /// The renewal's error; and [`Configuration`](ErrorKind::Configuration), with nothing
    /// set, when the token is bound to a key (DPoP): its proof names the request's method
    /// and URL, which a header map does not carry, and a bound token sent without it is
    /// refused. Send such requests through the middleware, or use
    /// [`header_value`](Self::header_value) with `oauth2::DpopKey::proof` (feature `jwt`).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use en_core_auth::ClientInfo;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::with(ClientInfo::new("me", "").with_api_key("k")));
    /// let mut headers = ureq::http::HeaderMap::new();
    /// auth.authorize_headers(&mut headers)?;
    /// assert_eq!(headers["authorization"], "Bearer abc");
    /// assert_eq!(headers["x-api-key"], "k");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn authorize_headers(&self, headers: &mut HeaderMap) -> Result<(), Error> {
        let inner = &*self.inner;
        // Once a bound token was seen, the slow path: it reaches the token's binding.
        if inner.misconfigured.is_none()
            && !inner.credentials.proofs.load(Ordering::Relaxed)
            && let Some((header, _generation)) = inner.lifecycle.fresh()
        {
            inner.credentials.insert(headers, header);
            return Ok(());
        }
        let current = self.current()?;
        if current.token.request_proof().is_some() {
            return Err(Error::new(
                ErrorKind::Configuration,
                "the token is bound to a DPoP key: it needs a proof made for each request's \
                 method and URL, which authorize_headers cannot make; send the request \
                 through the middleware, or add DpopKey::proof to header_value()",
            ));
        }
        inner.credentials.insert(headers, current.header.clone());
        Ok(())
    }

    /// The authorization header value when the token in memory is fresh, else `None`:
    /// never renews, never waits for a renewal and never calls the identity provider. For
    /// callers that must stay responsive (an event loop, a binding that checks for Ctrl-C
    /// while it waits): when this says `None`, call [`header_value`](Self::header_value)
    /// where waiting is acceptable.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// assert_eq!(auth.fresh_header_value(), None); // nothing obtained yet
    /// auth.header_value()?;
    /// assert_eq!(auth.fresh_header_value().as_deref(), Some("Bearer abc"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn fresh_header_value(&self) -> Option<String> {
        let inner = &*self.inner;
        if inner.misconfigured.is_some() {
            return None;
        }
        let (header, _generation) = inner.lifecycle.fresh()?;
        header.to_str().ok().map(str::to_owned)
    }

    /// Reports a `401` to a request made with another HTTP client that carried
    /// `sent_header_value` (what [`header_value`](Self::header_value) gave it), and says
    /// whether to resend: `Some(value)` to resend once with that header value, `None` to hand
    /// the `401` to the caller. This is the decision the middleware makes for its own
    /// requests:
    ///
    /// - the `401` is to the current token: it is renewed once, however many callers report
    ///   it at the same time (single flight), and the renewed value comes back;
    /// - the `401` is to an older token (another caller renewed meanwhile): the current value
    ///   comes back and nothing is renewed;
    /// - a token obtained in reply to a refusal is refused too, renewal is backing off, or
    ///   there is no token: `None`, so that an endpoint that refuses every token for another
    ///   reason does not cause a renewal per request.
    ///
    /// Report answers other than `401` with [`accepted`](Self::accepted).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Counting;
    /// let auth = en_core_auth::AuthMiddleware::new(Counting::new());
    /// let sent = auth.header_value()?; // "Bearer t1"
    /// // The API answered 401 to `sent`: renew once and resend with the new value.
    /// assert_eq!(auth.rejected(&sent)?.as_deref(), Some("Bearer t2"));
    /// // A late 401 to the old value resends with the current one, without renewing.
    /// assert_eq!(auth.rejected(&sent)?.as_deref(), Some("Bearer t2"));
    /// assert_eq!(auth.token_requests().authorize + auth.token_requests().refresh, 2);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn rejected(&self, sent_header_value: &str) -> Result<Option<String>, Error> {
        self.inner.usable()?;
        let lifecycle = &self.inner.lifecycle;
        let Some(latest) = lifecycle.latest() else {
            return Ok(None);
        };
        let current = if latest.header.as_bytes() == sent_header_value.as_bytes() {
            match lifecycle.rejected(latest.generation)? {
                Rejection::Resend(current) => current,
                Rejection::GiveUp => return Ok(None),
            }
        } else {
            self.current()?
        };
        header_text(&current.header).map(Some)
    }

    /// Reports that a request made with another HTTP client carrying `sent_header_value`
    /// got an answer other than `401`: a token obtained after a refusal has proven itself,
    /// so that the next refusal renews again instead of backing off. Cheap: one comparison
    /// and, at most, one atomic update.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// let sent = auth.header_value()?;
    /// auth.accepted(&sent);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn accepted(&self, sent_header_value: &str) {
        let lifecycle = &self.inner.lifecycle;
        if let Some(latest) = lifecycle.latest()
            && latest.header.as_bytes() == sent_header_value.as_bytes()
        {
            lifecycle.request_succeeded(latest.generation);
        }
    }

    /// Marks the current token as unusable: the next use renews it (with
    /// [`Authorizer::refresh`]). Call it when a request made without this middleware was
    /// rejected with a `401`.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Counting;
    /// let auth = en_core_auth::AuthMiddleware::new(Counting::new());
    /// assert_eq!(auth.access_token()?, "t1");
    /// auth.invalidate();
    /// assert_eq!(auth.access_token()?, "t2");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn invalidate(&self) {
        self.inner.lifecycle.invalidate(None);
    }

    /// Logs out: asks the authorizer to revoke the token at the server where it can
    /// ([`Authorizer::revoke`]), then forgets the token and clears the token store,
    /// whatever the server said. The next request logs in again. Returns the revocation's
    /// error, if any.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Counting;
    /// let auth = en_core_auth::AuthMiddleware::new(Counting::new());
    /// assert_eq!(auth.access_token()?, "t1");
    /// auth.revoke()?;
    /// assert_eq!(auth.access_token()?, "t2");
    /// assert_eq!(auth.token_requests().authorize, 2);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn revoke(&self) -> Result<(), Error> {
        self.inner.lifecycle.revoke()
    }

    /// The client id of the authorizer's [`ClientInfo`](crate::ClientInfo).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use en_core_auth::ClientInfo;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::with(ClientInfo::new("my-client", "")));
    /// assert_eq!(auth.client_id(), "my-client");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// How many times the authorizer was asked for a token. For diagnostics and tests.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// auth.access_token()?;
    /// auth.access_token()?;
    /// assert_eq!(auth.token_requests().authorize, 1);
    /// assert_eq!(auth.token_requests().refresh, 0);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_requests(&self) -> TokenRequests {
        self.inner.lifecycle.token_requests()
    }

    /// Counters since the middleware was built, shared by its clones: authorizer calls by
    /// method and outcome and the time spent in them, token store reads by outcome, and
    /// requests resent after a `401`. They count calls to the [`Authorizer`], see
    /// [`Stats`]. Cheap to keep: a request with a fresh token counts nothing.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::new(Static::new());
    /// auth.access_token()?;
    /// let stats = auth.clone().stats();
    /// assert_eq!((stats.authorize_ok, stats.authorize_failed), (1, 0));
    /// assert!(stats.renewal_time_max <= stats.renewal_time_total);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.lifecycle.counters().snapshot()
    }

    fn current(&self) -> Result<Arc<Current>, Error> {
        self.inner.usable()?;
        self.inner.lifecycle.current()
    }
}

impl Middleware for AuthMiddleware {
    fn handle(
        &self,
        request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        self.inner.handle(request, next, &self.inner.route)
    }
}

/// A prepared header value as text for other HTTP clients.
fn header_text(header: &HeaderValue) -> Result<String, Error> {
    header.to_str().map(str::to_owned).map_err(|_| {
        Error::new(
            ErrorKind::MalformedResponse,
            "the token is not valid header text",
        )
    })
}

/// Our errors travel through ureq as `ureq::Error::Other`, to be downcast by the caller.
pub(crate) fn to_ureq(error: Error) -> ureq::Error {
    ureq::Error::Other(Box::new(error))
}

impl Inner {
    fn usable(&self) -> Result<(), Error> {
        match &self.misconfigured {
            Some(problem) => Err(Error::new(ErrorKind::Configuration, problem.clone())),
            None => Ok(()),
        }
    }

    fn handle(
        &self,
        request: Request<SendBody>,
        next: MiddlewareNext,
        route: &Route,
    ) -> Result<Response<Body>, ureq::Error> {
        let origin = Origin::of(request.uri());
        if request.extensions().get::<TokenTraffic>().is_some()
            || !self.policy.covers(&origin)
            || self.lifecycle.renewing_on_this_thread()
        {
            return next.handle(request);
        }
        let (parts, body) = request.into_parts();
        let sent = Sent {
            origin,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        };
        let mut request = Request::from_parts(parts, ());
        // A request that brings its own credentials keeps them; it still gets our
        // redirect handling, so that they do not follow it elsewhere.
        let used = if sent.headers.contains_key(&self.credentials.header_name) {
            None
        } else {
            let used = self
                .usable()
                .and_then(|()| self.policy.check(&sent.origin))
                .and_then(|()| {
                    self.credentials.set(
                        &self.lifecycle,
                        request.headers_mut(),
                        &sent.method,
                        &sent.uri,
                    )
                })
                .map_err(to_ureq)?;
            Some(used)
        };
        // A bound token's 401 must be read whole (its nonce), so statuses come back as
        // responses and the caller's form is the route's.
        let bound = used
            .as_ref()
            .and_then(|u| u.current.as_ref())
            .is_some_and(|current| current.token.request_proof().is_some());
        let Some(config) = request.middleware_config() else {
            return Err(ureq::Error::Other(
                "AuthMiddleware runs only inside a ureq agent".into(),
            ));
        };
        let config = config.max_redirects(0);
        let request = if bound {
            config.http_status_as_error(false).build()
        } else {
            config.build()
        };
        let form = bound.then_some(route.status_as_error);
        let (replay, first) = match replay::read(body, self.limits).map_err(ureq::Error::Io)? {
            FirstBody::Whole(bytes) => {
                let replay = Replay::keep(&bytes, self.limits);
                let mut request = request.map(|()| SendBody::none());
                *request.body_mut() = replay::sized(&bytes, request.headers_mut());
                (replay, next.handle(request))
            }
            FirstBody::Partial { prefix, rest } => {
                let mut stream = Cursor::new(prefix).chain(rest);
                let request = request.map(|()| SendBody::from_reader(&mut stream));
                (Replay::Gone, next.handle(request))
            }
        };
        exchange::finish(self, route, sent, first, replay, used, form)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use ureq::http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::ClientInfo;
    use crate::data::{NonceAnswer, Proof, RequestProof};
    use ureq::http::Uri;

    /// A loopback server answering `replies` in order (status, extra header), recording
    /// each request's head lines.
    fn server(replies: Vec<(u16, Option<&'static str>)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/r", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        let replies = Arc::new(Mutex::new(replies.into_iter()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, replies) = (Arc::clone(&seen), Arc::clone(&replies));
                // A thread per connection: resends come on a connection of their own.
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                break;
                            }
                            head.push_str(&line.to_ascii_lowercase());
                        }
                        if head.is_empty() {
                            return;
                        }
                        seen.lock().unwrap().push(head);
                        let Some((status, header)) = replies.lock().unwrap().next() else {
                            return;
                        };
                        let extra = header.map_or(String::new(), |h| format!("{h}\r\n"));
                        let answer =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}\r\n");
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, heads)
    }

    /// A key that signs by counting, and asks for one retry when a nonce comes back.
    #[derive(Default)]
    struct FakeProof {
        proofs: AtomicUsize,
        observed: Mutex<Vec<u16>>,
    }

    impl RequestProof for FakeProof {
        fn proof(&self, method: &str, uri: &Uri, token: &str) -> Result<Proof, Error> {
            let n = self.proofs.fetch_add(1, Ordering::SeqCst) + 1;
            let header = HeaderValue::from_str(&format!("{method} {uri} {token} #{n}")).unwrap();
            Ok(Proof {
                header,
                nonce: None,
            })
        }
        fn observe(
            &self,
            _uri: &Uri,
            _signed_with: Option<&str>,
            status: u16,
            headers: &HeaderMap,
        ) -> NonceAnswer {
            self.observed.lock().unwrap().push(status);
            if status == 401 && headers.contains_key("dpop-nonce") {
                NonceAnswer::NewNonce
            } else {
                NonceAnswer::Accepted
            }
        }
    }

    struct Bound(ClientInfo, Arc<FakeProof>, Arc<AtomicUsize>);

    impl Authorizer for Bound {
        fn client_info(&self) -> &ClientInfo {
            &self.0
        }
        fn authorize(&mut self) -> Result<Token, Error> {
            let n = self.2.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Token::new(format!("tok{n}"))
                .with_token_type("DPoP")
                .with_expires_in(Duration::from_secs(3600))
                .with_request_proof(Arc::clone(&self.1) as Arc<dyn RequestProof>))
        }
    }

    /// A middleware whose tokens are bound to a `FakeProof`; the proof and a login count.
    fn bound_middleware() -> (AuthMiddleware, Arc<FakeProof>, Arc<AtomicUsize>) {
        let proof = Arc::new(FakeProof::default());
        let logins = Arc::new(AtomicUsize::new(0));
        let auth = AuthMiddleware::new(Bound(
            ClientInfo::new("c", ""),
            Arc::clone(&proof),
            Arc::clone(&logins),
        ));
        (auth, proof, logins)
    }

    fn dpop_lines(heads: &[String]) -> Vec<String> {
        heads
            .iter()
            .map(|head| {
                head.lines()
                    .find_map(|l| l.strip_prefix("dpop: "))
                    .unwrap_or("none")
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_bound_token_carries_a_fresh_proof_and_a_nonce_retry_keeps_the_token() {
        let (auth, proof, logins) = bound_middleware();
        let (url, heads) = server(vec![
            (401, Some("dpop-nonce: n1")),
            (200, None),
            (200, None),
        ]);
        let agent = auth.agent(ureq::Agent::config_builder());
        assert_eq!(agent.get(&url).call().unwrap().status(), 200);
        assert_eq!(agent.get(&url).call().unwrap().status(), 200);
        let heads = heads.lock().unwrap().clone();
        assert_eq!(
            dpop_lines(&heads),
            [
                format!("get {url} tok1 #1"),
                format!("get {url} tok1 #2"),
                format!("get {url} tok1 #3"),
            ],
            "one fresh proof per request, the retry included (header lower-cased by the server)"
        );
        assert!(heads.iter().all(|h| h.contains("authorization: dpop tok1")));
        assert_eq!(
            logins.load(Ordering::SeqCst),
            1,
            "the nonce retry keeps the token"
        );
        assert_eq!(*proof.observed.lock().unwrap(), [401, 200, 200]);
    }

    #[test]
    fn no_nonce_retry_when_the_body_cannot_be_sent_again() {
        let proof = Arc::new(FakeProof::default());
        let logins = Arc::new(AtomicUsize::new(0));
        let auth = AuthMiddleware::builder(Bound(
            ClientInfo::new("c", ""),
            Arc::clone(&proof),
            Arc::clone(&logins),
        ))
        .max_replay_size(0)
        .build();
        let (url, heads) = server(vec![(401, Some("dpop-nonce: n1")), (200, None)]);
        let agent = auth.agent(ureq::Agent::config_builder().http_status_as_error(false));
        let reply = agent.post(&url).send("not kept for a resend").unwrap();
        assert_eq!(reply.status(), 401, "the caller gets the refusal");
        assert_eq!(
            heads.lock().unwrap().len(),
            1,
            "nothing sent again without its body"
        );
        assert_eq!(
            logins.load(Ordering::SeqCst),
            1,
            "a nonce refusal is not a token refusal"
        );
    }

    #[test]
    fn a_bound_token_refused_without_a_nonce_is_renewed_once() {
        let (auth, _proof, logins) = bound_middleware();
        let (url, heads) = server(vec![(401, None), (200, None)]);
        let agent = auth.agent(ureq::Agent::config_builder());
        assert_eq!(agent.get(&url).call().unwrap().status(), 200);
        assert_eq!(logins.load(Ordering::SeqCst), 2);
        let heads = heads.lock().unwrap().clone();
        assert_eq!(
            dpop_lines(&heads),
            [format!("get {url} tok1 #1"), format!("get {url} tok2 #2")]
        );
    }

    /// The defaults the README promises for a plain `.middleware(auth)`: bodies kept for a
    /// resend up to 64 KiB and sent sized up to 16 MiB; resends and hops on an agent with a
    /// 30 s connect timeout and 120 s for the response head, 10 redirects, statuses as
    /// errors; and that route is the fallback one, warned about.
    #[test]
    fn the_documented_defaults_hold() {
        let auth = AuthMiddleware::new(crate::base::doc_fixture::Static::new());
        let inner = &auth.inner;
        assert_eq!(inner.limits.replay, 64 * 1024);
        assert_eq!(inner.limits.buffered, 16 * 1024 * 1024);
        let route = &inner.route;
        let timeouts = route.agent.config().timeouts();
        assert_eq!(timeouts.connect, Some(Duration::from_secs(30)));
        assert_eq!(timeouts.recv_response, Some(Duration::from_secs(120)));
        assert_eq!(route.max_redirects, 10);
        assert!(route.status_as_error);
        assert!(route.fallback);
        // An agent built by the middleware has its own route, which is not.
        let config = ureq::Agent::config_builder().build();
        assert!(!Route::copying(&config).fallback);
    }
}
