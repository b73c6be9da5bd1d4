//! Where a workload's own token comes from (workload identity): a file the platform
//! rotates, an environment variable, GitHub Actions' OIDC token, or a command. Read again
//! for every exchange, so that a rotated token is picked up without a restart.

use std::fmt;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::Value;

use crate::http::{Attempt, HttpClient, check_endpoint};
use crate::{Error, ErrorKind};

/// How long a command may run by default before it is killed: 30 seconds, the time
/// limit Google's executable-sourced credentials use.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// GitHub's ID token is reused only while it has more than this left: the service it goes
/// to must still find it valid after the exchange's own round trips.
const GITHUB_REUSE_MARGIN: Duration = Duration::from_secs(60);

/// How much of a failing command's stderr goes into the error.
const MAX_STDERR_CHARS: usize = 2000;

/// Where a workload's token comes from: read afresh at every call of
/// [`token`](TokenSource::token), for
/// [`ClientAuth::client_assertion`](super::ClientAuth::client_assertion),
/// [`TokenExchange`](super::TokenExchange) (`move || source.token()`) and
/// [`JwtBearer`](super::JwtBearer).
///
/// - [`file`](TokenSource::file): a projected Kubernetes service-account token, an
///   Azure/AWS web identity token file. The kubelet rewrites it before it expires (through
///   a symlink it swaps atomically); reading it once at start-up is the bug that breaks
///   long-running pods an hour later, so it is read at every call.
/// - [`env`](TokenSource::env): a variable the CI system sets (GitLab's `id_tokens`).
/// - [`github_actions`](TokenSource::github_actions): GitHub Actions' OIDC token.
/// - [`command`](TokenSource::command): whatever a program prints, including Google's
///   executable-sourced credential format.
///
/// The token is trimmed. A missing or empty source is a
/// [`Configuration`](ErrorKind::Configuration) error naming the path, variable or program,
/// returned before anything is sent to the token endpoint.
///
/// `Clone + Send + Sync` (clones share GitHub's cached token); `Debug` names the source,
/// never a token, and no error carries one.
///
/// ```
/// use en_core_auth::{ErrorKind, oauth2::TokenSource};
///
/// let source = TokenSource::file("/var/run/secrets/tokens/sts-token");
/// assert_eq!(format!("{source:?}"), r#"TokenSource::File("/var/run/secrets/tokens/sts-token")"#);
/// # if !std::path::Path::new("/var/run/secrets/tokens/sts-token").exists() {
/// let err = source.token().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Configuration);
/// assert!(err.to_string().contains("/var/run/secrets/tokens/sts-token"));
/// # }
/// ```
#[derive(Clone)]
pub struct TokenSource {
    kind: Arc<Kind>,
    timeout: Duration,
    http: HttpClient,
}

enum Kind {
    File(PathBuf),
    Env(String),
    GithubActions {
        audience: String,
        /// The last token and when it expires, shared by clones.
        cached: Mutex<Option<(String, SystemTime)>>,
    },
    Command {
        program: String,
        args: Vec<String>,
    },
}

impl TokenSource {
    /// The content of the file at `path`, trimmed, read at every call. Symlinks are
    /// followed (the kubelet's `token` → `..data/token`, with `..data` swapped atomically).
    ///
    /// ```
    /// use en_core_auth::oauth2::TokenSource;
    /// let dir = std::env::temp_dir().join(format!("token-source-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("token"), "eyJ.first.token\n")?;
    /// let source = TokenSource::file(dir.join("token"));
    /// assert_eq!(source.token()?, "eyJ.first.token");
    /// std::fs::write(dir.join("token"), "eyJ.rotated.token")?;
    /// assert_eq!(source.token()?, "eyJ.rotated.token");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> TokenSource {
        TokenSource::of(Kind::File(path.into()))
    }

    /// The value of the environment variable `name`, trimmed, read at every call.
    ///
    /// ```
    /// use en_core_auth::{ErrorKind, oauth2::TokenSource};
    /// let source = TokenSource::env("EN_CORE_AUTH_DOC_UNSET_VARIABLE");
    /// let err = source.token().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// assert!(err.to_string().contains("EN_CORE_AUTH_DOC_UNSET_VARIABLE"));
    /// ```
    pub fn env(name: impl Into<String>) -> TokenSource {
        TokenSource::of(Kind::Env(name.into()))
    }

    /// GitHub Actions' OIDC token for `audience`: `GET $ACTIONS_ID_TOKEN_REQUEST_URL` with
    /// `audience=` added to its query (nothing added when `audience` is empty: GitHub then
    /// uses the repository owner's URL) and `Authorization: Bearer
    /// $ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the `value` of its JSON answer. The job needs
    /// `permissions: id-token: write`, without which GitHub sets neither variable.
    ///
    /// GitHub's tokens are short-lived: one is reused only while it has more than a minute
    /// left (by its `exp` claim), else a new one is asked for.
    ///
    /// # Errors (of [`token`](TokenSource::token))
    ///
    /// [`Configuration`](ErrorKind::Configuration) when either variable is unset or empty
    /// (saying why that happens); [`CredentialsRejected`](ErrorKind::CredentialsRejected)
    /// when GitHub answers 401 or 403; [`Server`](ErrorKind::Server) for its 5xx (retried
    /// first); [`MalformedResponse`](ErrorKind::MalformedResponse) without a `value`.
    ///
    /// ```
    /// use en_core_auth::oauth2::TokenSource;
    /// // Entra ID's audience for workload identity federation.
    /// let source = TokenSource::github_actions("api://AzureADTokenExchange");
    /// assert_eq!(
    ///     format!("{source:?}"),
    ///     r#"TokenSource::GithubActions { audience: "api://AzureADTokenExchange" }"#
    /// );
    /// ```
    pub fn github_actions(audience: impl Into<String>) -> TokenSource {
        TokenSource::of(Kind::GithubActions {
            audience: audience.into(),
            cached: Mutex::new(None),
        })
    }

    /// What `program` prints on stdout, trimmed, run with `args` at every call (no shell);
    /// it must exit with status 0 within the time limit (30 s by default, see
    /// [`with_timeout`](TokenSource::with_timeout)). When stdout is Google's
    /// executable-sourced response (`{"version":1,"success":true,"id_token":…}` or
    /// `"saml_response"`), that token is taken; `"success":false` is an error with its
    /// `code` and `message`.
    ///
    /// # Errors (of [`token`](TokenSource::token))
    ///
    /// [`Configuration`](ErrorKind::Configuration) naming the program when it cannot be
    /// started, exits with another status (its stderr in the message), runs too long (it
    /// is killed), or prints nothing.
    ///
    /// ```
    /// use en_core_auth::oauth2::TokenSource;
    /// # #[cfg(unix)] {
    /// let source = TokenSource::command("echo", ["eyJ.from.a.command"]);
    /// assert_eq!(source.token()?, "eyJ.from.a.command");
    /// # }
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn command(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> TokenSource {
        TokenSource::of(Kind::Command {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        })
    }

    fn of(kind: Kind) -> TokenSource {
        TokenSource {
            kind: Arc::new(kind),
            timeout: DEFAULT_COMMAND_TIMEOUT,
            http: HttpClient::new(),
        }
    }

    /// How long a [`command`](TokenSource::command) may run before it is killed (default
    /// 30 seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::oauth2::TokenSource;
    /// let source = TokenSource::command("gcloud-token-helper", ["--audience", "sts"])
    ///     .with_timeout(Duration::from_secs(10));
    /// # let _ = source;
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> TokenSource {
        self.timeout = timeout;
        self
    }

    /// The [`HttpClient`] for GitHub's ID-token request (timeouts, retries, your own
    /// agent); default [`HttpClient::new`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{http::HttpClient, oauth2::TokenSource};
    /// let source = TokenSource::github_actions("sts.example.com")
    ///     .with_http_client(HttpClient::new().with_timeouts(Duration::from_secs(2), Duration::from_secs(5)));
    /// # let _ = source;
    /// ```
    pub fn with_http_client(mut self, http: HttpClient) -> TokenSource {
        self.http = http;
        self
    }

    /// A token now, trimmed: read from the file or variable, asked of GitHub, or printed
    /// by the command.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) naming the path, variable or program
    /// when the source is missing, empty or failing; for GitHub see
    /// [`github_actions`](TokenSource::github_actions).
    ///
    /// ```
    /// use en_core_auth::{ErrorKind, oauth2::TokenSource};
    /// let err = TokenSource::file("/nonexistent/token").token().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn token(&self) -> Result<String, Error> {
        match &*self.kind {
            Kind::File(path) => read_file(path),
            Kind::Env(name) => read_env(name),
            Kind::GithubActions { audience, cached } => github_token(&self.http, audience, cached),
            Kind::Command { program, args } => run_command(program, args, self.timeout),
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::File(path) => f.debug_tuple("TokenSource::File").field(path).finish(),
            Kind::Env(name) => f.debug_tuple("TokenSource::Env").field(name).finish(),
            Kind::GithubActions { audience, .. } => f
                .debug_struct("TokenSource::GithubActions")
                .field("audience", audience)
                .finish(),
            Kind::Command { program, args } => f
                .debug_struct("TokenSource::Command")
                .field("program", program)
                .field("args", args)
                .finish(),
        }
    }
}

fn configuration(message: String) -> Error {
    Error::new(ErrorKind::Configuration, message)
}

/// `value` trimmed, or an error saying that `what` gave nothing.
fn non_empty(value: &str, what: impl FnOnce() -> String) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(configuration(format!("{} is empty", what())));
    }
    Ok(value.to_owned())
}

fn read_file(path: &std::path::Path) -> Result<String, Error> {
    // `read_to_string` follows symlinks, as the kubelet's layout needs (unlike the token
    // cache, which refuses them: there a symlink would be someone else's file).
    let text = std::fs::read_to_string(path).map_err(|e| {
        configuration(format!(
            "cannot read the token file {}: {}",
            path.display(),
            match e.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
                _ => e.to_string(),
            }
        ))
    })?;
    non_empty(&text, || format!("the token file {}", path.display()))
}

fn read_env(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) => non_empty(&value, || format!("the environment variable {name}")),
        Err(std::env::VarError::NotPresent) => Err(configuration(format!(
            "the environment variable {name} is not set"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(configuration(format!(
            "the environment variable {name} is not valid UTF-8"
        ))),
    }
}

const GITHUB_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
const GITHUB_BEARER: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// A GitHub variable, or an error saying why it is missing.
fn github_variable(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => Err(configuration(format!(
            "the environment variable {name} is not set: GitHub Actions sets it only inside \
             a workflow job with `permissions: id-token: write`"
        ))),
    }
}

fn github_token(
    http: &HttpClient,
    audience: &str,
    cached: &Mutex<Option<(String, SystemTime)>>,
) -> Result<String, Error> {
    // Both variables are checked before anything is reused or sent.
    let url = github_variable(GITHUB_URL)?;
    let bearer = github_variable(GITHUB_BEARER)?;
    let mut cached = cached.lock();
    if let Some((token, expires)) = &*cached
        && reusable(*expires, SystemTime::now())
    {
        return Ok(token.clone());
    }
    // The request token is a secret: it goes only over https (loopback aside).
    check_endpoint(&url, false)?;
    let url = if audience.is_empty() {
        url
    } else {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{separator}audience={}",
            super::client_auth::form_urlencode(audience)
        )
    };
    let authorization = format!("Bearer {bearer}");
    let reply = http.with_retries(|| {
        let reply = match HttpClient::retry_transport(
            http.get_with_headers(&url, &[("authorization", &authorization)]),
        ) {
            Ok(reply) => reply,
            Err(attempt) => return attempt,
        };
        log::debug!("GitHub's ID-token endpoint answered HTTP {}", reply.status);
        let status = reply.status;
        match status {
            200..=299 => Attempt::Done(Ok(reply)),
            408 | 429 | 500..=599 => Attempt::Retry(
                Error::new(
                    ErrorKind::Server,
                    format!("GitHub's ID-token endpoint answered HTTP {status}"),
                ),
                reply.retry_after,
            ),
            401 | 403 => Attempt::Done(Err(Error::new(
                ErrorKind::CredentialsRejected,
                format!(
                    "GitHub's ID-token endpoint refused {GITHUB_BEARER} (HTTP {status}); it \
                     is valid only during its own job"
                ),
            ))),
            _ => Attempt::Done(Err(configuration(format!(
                "GitHub's ID-token endpoint ({GITHUB_URL}) answered HTTP {status}"
            )))),
        }
    })?;
    let value = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|json| json.get("value")?.as_str().map(str::to_owned))
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::MalformedResponse,
                "GitHub's ID-token endpoint answered without a `value`",
            )
        })?;
    let value = value.trim().to_owned();
    match jwt_expiry(&value) {
        Some(expires) => *cached = Some((value.clone(), expires)),
        None => *cached = None,
    }
    Ok(value)
}

/// Whether a GitHub token that expires at `expires` may be used again at `now`: only
/// with more than [`GITHUB_REUSE_MARGIN`] left.
fn reusable(expires: SystemTime, now: SystemTime) -> bool {
    expires
        .duration_since(now)
        .is_ok_and(|left| left > GITHUB_REUSE_MARGIN)
}

/// The `exp` of a JWT, read without verifying it (only to decide whether to reuse it).
fn jwt_expiry(jwt: &str) -> Option<SystemTime> {
    let claims = jwt.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Value>(&claims)
        .ok()?
        .get("exp")?
        .as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

fn run_command(program: &str, args: &[String], timeout: Duration) -> Result<String, Error> {
    let failed = |why: String| configuration(format!("the token command `{program}` {why}"));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not be started: {e}")))?;
    // Both pipes are drained on threads, so that a chatty command never blocks on a full
    // pipe while this thread waits for it to exit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "did not finish within {timeout:?} and was stopped"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(failed(format!("could not be waited for: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr: String = stderr.trim().chars().take(MAX_STDERR_CHARS).collect();
        return Err(failed(format!("failed ({status}); its stderr: {stderr}")));
    }
    let stdout = String::from_utf8(stdout).map_err(|_| failed("printed no UTF-8".to_owned()))?;
    match executable_response(&stdout) {
        Some(response) => response.map_err(failed),
        None => non_empty(&stdout, || {
            format!("the output of the token command `{program}`")
        }),
    }
}

/// The token of Google's executable-sourced response (its "executable response"
/// format), or why it gave none; `None` when `stdout` is not such a response.
fn executable_response(stdout: &str) -> Option<Result<String, String>> {
    let json: Value = serde_json::from_str(stdout.trim()).ok()?;
    let object = json.as_object()?;
    let success = object.get("success")?.as_bool()?;
    if !success {
        let text = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
        return Some(Err(format!(
            "reported failure: code `{}`, message `{}`",
            text("code"),
            text("message")
        )));
    }
    let token = ["id_token", "saml_response"]
        .iter()
        .find_map(|name| object.get(*name).and_then(Value::as_str))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    Some(
        token
            .map(str::to_owned)
            .ok_or_else(|| "reported success without an `id_token` or `saml_response`".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn a_source_is_clone_send_sync() {
        assert_send_sync_clone::<TokenSource>();
    }

    #[test]
    fn google_executable_responses() {
        assert_eq!(
            executable_response(
                r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:id_token","id_token":"eyJ.a.b"}"#
            ),
            Some(Ok("eyJ.a.b".to_owned()))
        );
        assert_eq!(
            executable_response(r#"{"version":1,"success":true,"saml_response":" PHNhbWw+ "}"#),
            Some(Ok("PHNhbWw+".to_owned()))
        );
        let failure = executable_response(
            r#"{"version":1,"success":false,"code":"401","message":"Caller not authorized."}"#,
        )
        .unwrap()
        .unwrap_err();
        assert!(failure.contains("401") && failure.contains("Caller not authorized."));
        assert!(
            executable_response(r#"{"version":1,"success":true}"#)
                .unwrap()
                .is_err()
        );
        // Anything else is a plain token.
        assert_eq!(executable_response("eyJ.plain.token"), None);
        assert_eq!(executable_response(r#"{"value":"x"}"#), None);
    }

    #[test]
    fn jwt_expiry_is_read_from_the_claims() {
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":2000000000}"#);
        let expires = jwt_expiry(&format!("e30.{claims}.sig")).unwrap();
        assert_eq!(expires, UNIX_EPOCH + Duration::from_secs(2_000_000_000));
        assert_eq!(jwt_expiry("not a jwt"), None);
    }

    #[test]
    fn githubs_token_is_reused_only_with_over_a_minute_left() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(reusable(now + Duration::from_secs(300), now));
        assert!(reusable(now + Duration::from_secs(61), now));
        assert!(!reusable(now + Duration::from_secs(60), now));
        assert!(!reusable(now + Duration::from_secs(5), now));
        assert!(!reusable(now - Duration::from_secs(5), now));
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_command_names_itself_and_keeps_its_stderr() {
        let err = TokenSource::command("sh", ["-c", "echo 'no credentials here' >&2; exit 3"])
            .token()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        let text = err.to_string();
        assert!(
            text.contains("`sh`") && text.contains("no credentials here"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_command_that_runs_too_long_is_stopped() {
        let err = TokenSource::command("sleep", ["30"])
            .with_timeout(Duration::from_millis(100))
            .token()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("did not finish"), "{err}");
    }

    #[test]
    fn debug_names_the_source_only() {
        let shown = format!(
            "{:?} {:?}",
            TokenSource::env("K8S_TOKEN"),
            TokenSource::command("helper", ["--print"])
        );
        assert_eq!(
            shown,
            r#"TokenSource::Env("K8S_TOKEN") TokenSource::Command { program: "helper", args: ["--print"] }"#
        );
    }
}
