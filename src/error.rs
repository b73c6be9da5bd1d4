//! The crate's one error type.
//!
//! Every fallible operation returns [`Error`]. Its [`ErrorKind`] tells a caller, and the
//! token lifecycle, what to do next: retry later ([`ErrorKind::Transport`],
//! [`ErrorKind::Server`]), log in again ([`ErrorKind::CredentialsRejected`]), fix the set-up
//! ([`ErrorKind::Configuration`]) or give up. The details (an OAuth2 error code, a Cognito
//! exception name, the I/O error) are in [`Error::source`](std::error::Error::source) and can
//! be reached with [`Error::downcast_ref`].
//!
//! No error ever holds a secret: messages are built from status codes, error codes and the
//! server's own descriptions, never from request bodies or headers.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a caller can act on.
///
/// ```
/// use en_core_auth::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::Transport, "connection refused");
/// let retry_later = matches!(err.kind(), ErrorKind::Transport | ErrorKind::Server);
/// assert!(retry_later);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The set-up is wrong: a bad URL, an empty client id, a plain-HTTP token endpoint that
    /// is not loopback. Retrying will not help; fix the configuration.
    Configuration,
    /// The identity provider could not be reached or did not answer in time (connect or read
    /// failure, timeout). Retrying later may help.
    Transport,
    /// The identity provider failed: a 5xx, or throttling (429, `TooManyRequestsException`)
    /// that outlasted the retries. Retrying later may help.
    Server,
    /// The identity provider refused the credentials: `invalid_client`, `invalid_grant`,
    /// `NotAuthorizedException`, an unknown user. Check the client id, secret or password.
    CredentialsRejected,
    /// The identity provider answered with something that could not be understood:
    /// unparseable JSON, a missing `access_token`, a token that cannot go in a header.
    MalformedResponse,
    /// The identity provider asked for a challenge (a new password, an MFA code) and no
    /// handler was given to answer it.
    ChallengeRequired,
    /// The token cache could not be used: an I/O failure, or another process held its lock
    /// for longer than the configured wait.
    Storage,
    /// Anything else, usually from a custom [`Authorizer`](crate::Authorizer) through
    /// [`Error::other`].
    Other,
}

impl ErrorKind {
    /// A short phrase for the kind, used as the start of [`Error`]'s `Display`.
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Configuration => "invalid configuration",
            ErrorKind::Transport => "could not reach the identity provider",
            ErrorKind::Server => "the identity provider failed",
            ErrorKind::CredentialsRejected => "the credentials were rejected",
            ErrorKind::MalformedResponse => "the identity provider sent a malformed response",
            ErrorKind::ChallengeRequired => "the identity provider requires a challenge response",
            ErrorKind::Storage => "the token cache could not be used",
            ErrorKind::Other => "authorization failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error type of every fallible operation in this crate.
///
/// `Display` reads `<what kind of failure>: <detail>`, for example
/// `the credentials were rejected: invalid_client: Client authentication failed`.
///
/// ```
/// use en_core_auth::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::Configuration, "client id is empty");
/// assert_eq!(err.kind(), ErrorKind::Configuration);
/// assert_eq!(err.to_string(), "invalid configuration: client id is empty");
/// ```
pub struct Error {
    kind: ErrorKind,
    source: BoxError,
    /// The endpoint of the exchange that failed, as [`endpoint_name`] writes it.
    endpoint: Option<Box<str>>,
}

impl Error {
    /// An error of the given kind, with `source` as its detail.
    ///
    /// `source` may be a message (`&str`, `String`) or any error type. Never put a secret in
    /// it: it is shown by `Display`.
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::Server, "token endpoint answered 503");
    /// assert_eq!(err.kind(), ErrorKind::Server);
    /// ```
    pub fn new(kind: ErrorKind, source: impl Into<BoxError>) -> Error {
        Error {
            kind,
            source: source.into(),
            endpoint: None,
        }
    }

    /// This error, naming the endpoint of the exchange that failed (written as
    /// [`endpoint_name`] does: no query, no user information).
    pub(crate) fn at(mut self, url: &str) -> Error {
        self.endpoint = Some(endpoint_name(url).into());
        self
    }

    /// The endpoint of the exchange that failed, when the error came from one: scheme, host,
    /// port and path, never a query, a fragment or user information. With two identity
    /// providers in one program, it says which one failed; `Display` shows it too.
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::Transport, "refused").endpoint(), None);
    /// ```
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The crate's error inside what a request through the middleware returned: when the
    /// [`AuthMiddleware`](crate::AuthMiddleware) could not get a token (or a custom
    /// middleware returned one of these), ureq hands it back as `ureq::Error::Other`.
    /// `None` for ureq's own errors (a refused connection to the API itself, a bad URL).
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    ///
    /// let returned: ureq::Error = Error::new(ErrorKind::CredentialsRejected, "invalid_client").into();
    /// let ours = Error::from_ureq(&returned).expect("the crate's error");
    /// assert_eq!(ours.kind(), ErrorKind::CredentialsRejected);
    /// assert!(Error::from_ureq(&ureq::Error::HostNotFound).is_none());
    /// ```
    pub fn from_ureq(error: &ureq::Error) -> Option<&Error> {
        match error {
            ureq::Error::Other(inner) => inner.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// An error of kind [`ErrorKind::Other`], for custom authorizers.
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// let err = Error::other("the license server said no");
    /// assert_eq!(err.kind(), ErrorKind::Other);
    /// ```
    pub fn other(source: impl Into<BoxError>) -> Error {
        Error::new(ErrorKind::Other, source)
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// assert_eq!(Error::other("x").kind(), ErrorKind::Other);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying the same operation again later may succeed: true for
    /// [`ErrorKind::Transport`] and [`ErrorKind::Server`].
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// assert!(Error::new(ErrorKind::Server, "503").is_transient());
    /// assert!(!Error::new(ErrorKind::CredentialsRejected, "invalid_client").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transport | ErrorKind::Server)
    }

    /// The detail of this error as a concrete type, if it is one.
    ///
    /// ```
    /// use en_core_auth::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::Transport, std::io::Error::from(std::io::ErrorKind::TimedOut));
    /// let io = err.downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Some(endpoint) => write!(f, "{} ({endpoint}): {}", self.kind, self.source),
            None => write!(f, "{}: {}", self.kind, self.source),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// `url` as errors and logs name it: scheme, host, port (the default one written out) and
/// path, without the query, fragment or user information, where secrets may travel. Text
/// that is no URL is not repeated at all.
pub(crate) fn endpoint_name(url: &str) -> String {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return "an endpoint whose URL could not be read".to_owned();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return "an endpoint whose URL could not be read".to_owned();
    };
    let port = uri
        .port_u16()
        .or(match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })
        .map_or_else(String::new, |port| format!(":{port}"));
    format!("{scheme}://{host}{port}{}", uri.path())
}

/// Lets a middleware hand an authorization failure to ureq's caller: the caller's
/// `call()` returns `ureq::Error::Other` with this error inside.
impl From<Error> for ureq::Error {
    fn from(err: Error) -> ureq::Error {
        ureq::Error::Other(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_and_the_detail() {
        let err = Error::new(ErrorKind::CredentialsRejected, "invalid_client");
        assert_eq!(
            err.to_string(),
            "the credentials were rejected: invalid_client"
        );
    }

    #[test]
    fn source_is_the_detail() {
        use std::error::Error as _;
        let err = Error::new(ErrorKind::Transport, std::io::Error::other("refused"));
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("refused")
        );
    }

    #[test]
    fn the_endpoint_is_named_without_query_or_user() {
        for (url, named) in [
            (
                "https://idp.example.com/oauth2/token?client_secret=s3cr3t#x",
                "https://idp.example.com:443/oauth2/token",
            ),
            ("http://127.0.0.1:8080/jwks", "http://127.0.0.1:8080/jwks"),
            ("http://[::1]/t", "http://[::1]:80/t"),
            (
                "https://user:s3cr3t@idp.example.com",
                "https://idp.example.com:443/",
            ),
            (
                "not a url s3cr3t",
                "an endpoint whose URL could not be read",
            ),
        ] {
            assert_eq!(endpoint_name(url), named, "{url}");
        }
        let err = Error::new(ErrorKind::Transport, "Connection refused")
            .at("https://idp.example.com/token?code=s3cr3t");
        assert_eq!(err.endpoint(), Some("https://idp.example.com:443/token"));
        assert_eq!(
            err.to_string(),
            "could not reach the identity provider (https://idp.example.com:443/token): Connection refused"
        );
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }

    #[test]
    fn from_ureq_finds_the_crate_error_only() {
        let ours: ureq::Error = Error::new(ErrorKind::Storage, "locked").into();
        assert_eq!(
            Error::from_ureq(&ours).map(Error::kind),
            Some(ErrorKind::Storage)
        );
        let foreign = ureq::Error::Other(Box::new(std::io::Error::other("x")));
        assert!(Error::from_ureq(&foreign).is_none());
        assert!(Error::from_ureq(&ureq::Error::ConnectionFailed).is_none());
    }

    #[test]
    fn converts_into_a_ureq_error_that_keeps_it() {
        let err: ureq::Error = Error::other("nope").into();
        match err {
            ureq::Error::Other(inner) => {
                let ours = inner.downcast_ref::<Error>();
                assert_eq!(ours.map(Error::kind), Some(ErrorKind::Other));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
