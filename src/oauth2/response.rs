//! Reading a token endpoint's answer: the token response of RFC 6749 §5.1, the error
//! response of §5.2, and what each HTTP status means for retrying.
//!
//! Everything here is a pure function of the status, the body and the clock, so that
//! every malformed answer a server can send is covered by unit tests below.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::http::{Attempt, Reply};
use crate::{Error, ErrorKind, Token};

/// The longest token lifetime believed (ten years). Anything longer is a server bug or a
/// value in the wrong unit (milliseconds), and trusting it would keep a token for ever.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The longest `error_description` kept, in characters: enough for any real message,
/// short enough that a hostile server cannot flood logs through it.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// An error response from an OAuth 2.0 token endpoint (RFC 6749 §5.2), such as
/// `invalid_client` or `invalid_grant`.
///
/// It is the [source](std::error::Error::source) of the crate's [`Error`] whenever the
/// server sent one; reach it with [`Error::downcast_ref`]. `Display` shows the error code,
/// the description and the HTTP status, and never anything the client sent.
///
/// ```
/// use en_core_auth::oauth2::OAuthError;
///
/// let err = OAuthError::new(401, "invalid_client")
///     .with_description("Client authentication failed");
/// assert_eq!(err.error(), "invalid_client");
/// assert_eq!(err.status(), 401);
/// assert_eq!(err.to_string(), "invalid_client: Client authentication failed (HTTP 401)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    status: u16,
    error: String,
    error_description: Option<String>,
    error_uri: Option<String>,
}

impl OAuthError {
    /// An error with the given HTTP status and error code. Control characters are removed
    /// from the code, so that it is safe to log.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// assert_eq!(OAuthError::new(400, "invalid_grant").error(), "invalid_grant");
    /// ```
    pub fn new(status: u16, error: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error: sanitize(&error.into(), 100),
            error_description: None,
            error_uri: None,
        }
    }

    /// Adds the server's human-readable description (control characters removed, cut at
    /// 500 characters).
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// let err = OAuthError::new(400, "invalid_scope").with_description("no such\nscope");
    /// assert_eq!(err.error_description(), Some("no such scope"));
    /// ```
    pub fn with_description(mut self, description: impl Into<String>) -> OAuthError {
        self.error_description =
            Some(sanitize(&description.into(), MAX_DESCRIPTION_CHARS)).filter(|d| !d.is_empty());
        self
    }

    /// Adds the URI of a page about the error.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// let err = OAuthError::new(400, "invalid_scope").with_uri("https://idp.example.com/help");
    /// assert_eq!(err.error_uri(), Some("https://idp.example.com/help"));
    /// ```
    pub fn with_uri(mut self, uri: impl Into<String>) -> OAuthError {
        self.error_uri =
            Some(sanitize(&uri.into(), MAX_DESCRIPTION_CHARS)).filter(|u| !u.is_empty());
        self
    }

    /// The HTTP status of the answer.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// assert_eq!(OAuthError::new(400, "invalid_grant").status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The error code: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, or one the server
    /// defines.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// assert_eq!(OAuthError::new(400, "invalid_grant").error(), "invalid_grant");
    /// ```
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The server's `error_description`, if it sent one.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// assert_eq!(OAuthError::new(400, "invalid_grant").error_description(), None);
    /// ```
    pub fn error_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }

    /// The server's `error_uri`, if it sent one.
    ///
    /// ```
    /// use en_core_auth::oauth2::OAuthError;
    /// assert_eq!(OAuthError::new(400, "invalid_grant").error_uri(), None);
    /// ```
    pub fn error_uri(&self) -> Option<&str> {
        self.error_uri.as_deref()
    }

    /// What the error means for the caller. Codes that say the credentials or the grant
    /// are not accepted are [`CredentialsRejected`](ErrorKind::CredentialsRejected) and
    /// are never retried; codes that say the request itself does not suit the server
    /// (`invalid_request`, `unsupported_grant_type`) are
    /// [`Configuration`](ErrorKind::Configuration); `server_error` and
    /// `temporarily_unavailable` are [`Server`](ErrorKind::Server). An unknown code counts
    /// as a rejection when the status is 401 or 403, as a configuration error otherwise.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self.error.as_str() {
            "invalid_client"
            | "invalid_grant"
            | "unauthorized_client"
            | "invalid_scope"
            | "access_denied"
            | "invalid_token" => ErrorKind::CredentialsRejected,
            "invalid_request" | "unsupported_grant_type" | "invalid_target" => {
                ErrorKind::Configuration
            }
            "server_error" | "temporarily_unavailable" => ErrorKind::Server,
            _ if self.status >= 500 || self.status == 429 => ErrorKind::Server,
            _ if matches!(self.status, 401 | 403) => ErrorKind::CredentialsRejected,
            _ => ErrorKind::Configuration,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        write!(f, " (HTTP {})", self.status)
    }
}

impl std::error::Error for OAuthError {}

/// Removes control characters (a server's text ends up in logs: no forged lines) and
/// cuts the text at `max_chars`.
fn sanitize(text: &str, max_chars: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Turns one answer of the token endpoint into a token, an error, or a reason to retry.
///
/// - 2xx: a token response, parsed by [`parse_token`]; a body that is not JSON is described
///   (content type, and the start of an HTML page), as a captive portal's or a login page's
///   would be.
/// - an RFC 6749 §5.2 error body: an [`OAuthError`], its kind from the error code
///   (`temporarily_unavailable` and `server_error` retried).
/// - otherwise, what the status means for every protocol of the crate
///   ([`status_kind`](crate::http::status_kind)): 408, 429 and 5xx retried as
///   [`ErrorKind::Server`] (429 with the server's `Retry-After`), 401/403 rejected
///   credentials, a redirect (not followed) or another 4xx a configuration error (a wrong
///   URL gives 404 or 405).
///
/// Every error names the endpoint.
pub(crate) fn classify(reply: &Reply, default_lifetime: Duration) -> Attempt<Token> {
    match classify_here(reply, default_lifetime) {
        Attempt::Done(result) => Attempt::Done(result.map_err(|error| reply.error_at(error))),
        Attempt::Retry(error, after) => Attempt::Retry(reply.error_at(error), after),
    }
}

fn classify_here(reply: &Reply, default_lifetime: Duration) -> Attempt<Token> {
    let status = reply.status;
    if (200..=299).contains(&status) {
        let parsed = parse_token(&reply.body, default_lifetime, SystemTime::now());
        return Attempt::Done(parsed.map_err(|error| {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&reply.body).is_ok() {
                return error;
            }
            malformed(format!(
                "the token endpoint answered HTTP {status} with {} where JSON was expected",
                reply.describe_body()
            ))
        }));
    }
    let error = match parse_error(status, &reply.body) {
        // A 5xx (or 408, 429) is the server's trouble, whatever code its body names.
        Some(oauth) if crate::http::is_transient_status(status) => {
            Error::new(ErrorKind::Server, oauth)
        }
        Some(oauth) => Error::new(oauth.kind(), oauth),
        None => {
            let kind = crate::http::status_kind(status);
            let hint = match status {
                300..=399 => {
                    "; a redirect is not followed with credentials: use the final URL".to_owned()
                }
                _ if kind == ErrorKind::Configuration => "; is the token URL right?".to_owned(),
                _ => String::new(),
            };
            Error::new(
                kind,
                format!(
                    "the token endpoint answered HTTP {status} with {}{hint}",
                    reply.describe_body()
                ),
            )
        }
    };
    // `temporarily_unavailable` says "try again", whatever the status.
    if error.kind() == ErrorKind::Server {
        Attempt::Retry(error, reply.retry_after)
    } else {
        Attempt::Done(Err(error))
    }
}

/// An answer of an RFC 6749 token endpoint as a [`Token`] or a typed [`Error`], for
/// authorizers of your own that send token requests with [`HttpClient`](crate::http::HttpClient):
///
/// - a 2xx with an RFC 6749 §5.1 token response: the token (its lifetime from
///   `expires_in`, else a JWT access token's `exp`, else
///   [`DEFAULT_LIFETIME`](super::DEFAULT_LIFETIME)), `token_type` defaulting to `Bearer`;
/// - an RFC 6749 §5.2 error: an [`Error`] whose kind the error code decides
///   (`invalid_client`, `invalid_grant`… are
///   [`CredentialsRejected`](ErrorKind::CredentialsRejected), `invalid_request`…
///   [`Configuration`](ErrorKind::Configuration), `temporarily_unavailable`
///   [`Server`](ErrorKind::Server)), with the [`OAuthError`] as its source;
/// - anything else: a kind from the status (5xx, 408, 429: `Server`; 401, 403:
///   `CredentialsRejected`; other 4xx and redirects: `Configuration`), or
///   [`MalformedResponse`](ErrorKind::MalformedResponse) for a body that is no token
///   response (an HTML page is described, never a token).
///
/// Errors name the endpoint when the reply came from one ([`Error::endpoint`]).
///
/// ```
/// use en_core_auth::ErrorKind;
/// use en_core_auth::http::Reply;
/// use en_core_auth::oauth2::{OAuthError, token_from_reply};
///
/// let ok = Reply::new(200, r#"{"access_token":"abc","token_type":"bearer","expires_in":60}"#);
/// let token = token_from_reply(&ok)?;
/// assert_eq!(token.access_token(), "abc");
///
/// let refused = Reply::new(400, r#"{"error":"invalid_grant","error_description":"revoked"}"#);
/// let error = token_from_reply(&refused).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
/// assert_eq!(error.downcast_ref::<OAuthError>().unwrap().error(), "invalid_grant");
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub fn token_from_reply(reply: &Reply) -> Result<Token, Error> {
    match classify(reply, super::DEFAULT_LIFETIME) {
        Attempt::Done(result) => result,
        Attempt::Retry(error, _) => Err(error),
    }
}

/// Parses an RFC 6749 §5.2 error body: a JSON object with a string `error`. Anything
/// else (an HTML error page, an empty body) gives `None`.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> Option<OAuthError> {
    let object = serde_json::from_slice::<Value>(body).ok()?;
    let object = object.as_object()?;
    error_from_object(status, object)
}

fn error_from_object(status: u16, object: &Map<String, Value>) -> Option<OAuthError> {
    let code = object.get("error")?.as_str()?;
    if code.trim().is_empty() {
        return None;
    }
    let mut error = OAuthError::new(status, code);
    if let Some(description) = object.get("error_description").and_then(Value::as_str) {
        error = error.with_description(description);
    }
    if let Some(uri) = object.get("error_uri").and_then(Value::as_str) {
        error = error.with_uri(uri);
    }
    Some(error)
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedResponse, detail.into())
}

/// Parses a successful token response (RFC 6749 §5.1) into a [`Token`].
///
/// The lifetime comes from `expires_in` (a number, or a numeric string as Azure sends);
/// without it, from the `exp` claim of a JWT access token; without either,
/// `default_lifetime`. Error messages name fields, never their values.
///
/// Most answers are read in one typed pass that borrows from the body; anything it does
/// not take (a string `expires_in`, a fraction, a field of the wrong type, an error in a
/// 200) is read again as a JSON value, which gives the precise error. The typed pass
/// halved the parsing cost of a token fetch (BENCHMARKS.md).
pub(crate) fn parse_token(
    body: &[u8],
    default_lifetime: Duration,
    now: SystemTime,
) -> Result<Token, Error> {
    match serde_json::from_slice::<Typical<'_>>(body) {
        Ok(typical) => build_token(typical.fields()?, default_lifetime, now),
        Err(_) => parse_token_slowly(body, default_lifetime, now),
    }
}

/// The shape nearly every server sends; unknown fields are skipped.
#[derive(serde::Deserialize)]
struct Typical<'a> {
    #[serde(borrow)]
    access_token: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    token_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(borrow, default)]
    refresh_token: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id_token: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    scope: Option<std::borrow::Cow<'a, str>>,
    /// Not in RFC 6749: GitHub's and Microsoft's name for the refresh token's lifetime.
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
    /// Keycloak's name for it (0 for an offline token that does not expire).
    #[serde(default)]
    refresh_expires_in: Option<u64>,
}

impl Typical<'_> {
    fn fields(&self) -> Result<Fields<'_>, Error> {
        fn present<'b>(value: &'b Option<std::borrow::Cow<'_, str>>) -> Option<&'b str> {
            value.as_deref().filter(|text| !text.is_empty())
        }
        Ok(Fields {
            access_token: &self.access_token,
            token_type: self.token_type.as_deref(),
            expires_in: match self.expires_in {
                Some(seconds) => Some(checked_lifetime(seconds as f64)?),
                None => None,
            },
            refresh_token: present(&self.refresh_token),
            id_token: present(&self.id_token),
            scope: present(&self.scope),
            refresh_expires_in: refresh_lifetime(
                self.refresh_token_expires_in
                    .or(self.refresh_expires_in)
                    .map(|seconds| seconds as f64),
            ),
        })
    }
}

/// The fields of a token response, read by either pass; checked by [`build_token`].
struct Fields<'a> {
    access_token: &'a str,
    /// `None` when absent or `null`.
    token_type: Option<&'a str>,
    expires_in: Option<Duration>,
    refresh_token: Option<&'a str>,
    id_token: Option<&'a str>,
    scope: Option<&'a str>,
    /// How long the refresh token lasts, when the server says (a non-standard field).
    refresh_expires_in: Option<Duration>,
}

/// The refresh token's lifetime from a non-standard field: informative only (it sets how
/// long a shared store keeps the entry), so a value that makes no sense is ignored rather
/// than refused, and 0 (Keycloak's offline tokens) means unknown.
fn refresh_lifetime(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|seconds| *seconds > 0.0)
        .and_then(|seconds| checked_lifetime(seconds).ok())
}

fn parse_token_slowly(
    body: &[u8],
    default_lifetime: Duration,
    now: SystemTime,
) -> Result<Token, Error> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the token response is not JSON"))?;
    let Some(object) = value.as_object() else {
        return Err(malformed("the token response is not a JSON object"));
    };
    // Some servers answer 200 with an error body.
    if !object.contains_key("access_token")
        && let Some(oauth) = error_from_object(200, object)
    {
        return Err(Error::new(oauth.kind(), oauth));
    }
    let access_token = match object.get("access_token") {
        Some(Value::String(token)) => token,
        Some(_) => {
            return Err(malformed(
                "the token response's access_token is not a string",
            ));
        }
        None => return Err(malformed("the token response has no access_token")),
    };
    let token_type = match object.get("token_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(kind)) => Some(kind.as_str()),
        Some(_) => {
            return Err(malformed(
                "the token response's token_type is not a valid token type",
            ));
        }
    };
    let fields = Fields {
        access_token,
        token_type,
        expires_in: expires_in(object.get("expires_in"))?,
        refresh_token: optional_string(object, "refresh_token")?,
        id_token: optional_string(object, "id_token")?,
        scope: optional_string(object, "scope")?,
        refresh_expires_in: refresh_lifetime(
            ["refresh_token_expires_in", "refresh_expires_in"]
                .iter()
                .find_map(|name| expires_in(object.get(*name)).ok().flatten())
                .map(|lifetime| lifetime.as_secs_f64()),
        ),
    };
    build_token(fields, default_lifetime, now)
}

/// Checks the fields and makes the token.
fn build_token(
    fields: Fields<'_>,
    default_lifetime: Duration,
    now: SystemTime,
) -> Result<Token, Error> {
    let access_token = fields.access_token;
    if access_token.is_empty() {
        return Err(malformed("the token response's access_token is empty"));
    }
    if !is_header_safe(access_token) {
        return Err(malformed(
            "the access_token holds characters that cannot go in an HTTP header",
        ));
    }
    let token_type = match fields.token_type {
        None => "Bearer",
        Some(kind) if !kind.is_empty() && is_header_safe(kind) => kind,
        Some(_) => {
            return Err(malformed(
                "the token response's token_type is not a valid token type",
            ));
        }
    };
    let lifetime = match fields.expires_in {
        Some(lifetime) => lifetime,
        None => jwt_lifetime(access_token, now).unwrap_or(default_lifetime),
    };
    let mut token = Token::new(access_token)
        .with_token_type(token_type)
        .with_expires_in(lifetime);
    if let Some(refresh_token) = fields.refresh_token {
        if !is_header_safe(refresh_token) {
            return Err(malformed(
                "the refresh_token holds characters that cannot be sent back",
            ));
        }
        token = token
            .with_refresh_token(refresh_token)
            .with_refresh_expires_at(
                fields
                    .refresh_expires_in
                    .and_then(|lifetime| now.checked_add(lifetime)),
            );
    }
    if let Some(id_token) = fields.id_token {
        token = token.with_id_token(id_token);
    }
    if let Some(scope) = fields.scope {
        token = token.with_scope(scope);
    }
    Ok(token)
}

/// A string field that may be absent, `null` or empty (all three meaning absent).
fn optional_string<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(malformed(format!(
            "the token response's {name} is not a string"
        ))),
    }
}

/// Visible ASCII only (0x21–0x7E): no spaces, no CR/LF that would split a header, nothing
/// a header cannot carry.
fn is_header_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `expires_in` as a duration: `None` when absent or `null`; an error when negative,
/// longer than [`MAX_LIFETIME`], or not a number. Fractions are rounded down.
fn expires_in(value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let Some(seconds) = seconds.filter(|s| s.is_finite()) else {
        return Err(malformed("the token response's expires_in is not a number"));
    };
    checked_lifetime(seconds).map(Some)
}

/// A lifetime in seconds, refused when negative or longer than [`MAX_LIFETIME`];
/// fractions are rounded down.
fn checked_lifetime(seconds: f64) -> Result<Duration, Error> {
    if seconds < 0.0 {
        return Err(malformed("the token response's expires_in is negative"));
    }
    if seconds > MAX_LIFETIME.as_secs_f64() {
        return Err(malformed(
            "the token response's expires_in is longer than ten years",
        ));
    }
    Ok(Duration::from_secs(seconds.floor() as u64))
}

/// The lifetime a JWT access token states through its `exp` (and `iat`) claims, read
/// without verifying the signature: the lifetime only schedules renewal, and the resource
/// server verifies the token. `None` when the token is not a JWT or has no usable `exp`.
///
/// The time left by our clock (`exp - now`) is used, but never more than `exp - iat`, the
/// whole lifetime the server granted (our clock running behind). When `exp` has already
/// passed by our clock, the token is fresh from the server, so our clock is ahead: the
/// server's `exp - iat` is used if known.
pub(crate) fn jwt_lifetime(access_token: &str, now: SystemTime) -> Option<Duration> {
    let claims = crate::data::unverified_claims(access_token)?;
    let seconds = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s as u64))
    };
    let exp = seconds("exp")?;
    let granted = seconds("iat").and_then(|iat| exp.duration_since(iat).ok());
    let lifetime = match (exp.duration_since(now).ok(), granted) {
        (Some(left), Some(granted)) => left.min(granted),
        (Some(left), None) => left,
        (None, granted) => granted?,
    };
    (!lifetime.is_zero() && lifetime <= MAX_LIFETIME).then_some(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const DEFAULT: Duration = Duration::from_secs(300);

    fn parse(body: &str) -> Result<Token, Error> {
        parse_token(body.as_bytes(), DEFAULT, SystemTime::now())
    }

    fn kind_of(body: &str) -> ErrorKind {
        parse(body).unwrap_err().kind()
    }

    fn jwt(claims: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2lnbmF0dXJl",
            encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            encode(claims)
        )
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_full_response() {
        let token = parse(
            r#"{"access_token":"abc.def","token_type":"bearer","expires_in":3600,
                "refresh_token":"r-1","id_token":"i-1","scope":"read write"}"#,
        )
        .unwrap();
        assert_eq!(token.access_token(), "abc.def");
        assert_eq!(token.token_type(), "Bearer");
        assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
        assert_eq!(token.refresh_token(), Some("r-1"));
        assert_eq!(token.id_token(), Some("i-1"));
        assert_eq!(token.scope(), Some("read write"));
    }

    #[test]
    fn token_type_defaults_to_bearer_and_keeps_others() {
        assert_eq!(
            parse(r#"{"access_token":"a"}"#).unwrap().token_type(),
            "Bearer"
        );
        assert_eq!(
            parse(r#"{"access_token":"a","token_type":"BEARER"}"#)
                .unwrap()
                .token_type(),
            "Bearer"
        );
        assert_eq!(
            parse(r#"{"access_token":"a","token_type":"DPoP"}"#)
                .unwrap()
                .token_type(),
            "DPoP"
        );
        assert_eq!(
            kind_of(r#"{"access_token":"a","token_type":"Bearer x"}"#),
            ErrorKind::MalformedResponse
        );
        assert_eq!(
            kind_of(r#"{"access_token":"a","token_type":7}"#),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            "",
            "not json",
            "<html><body>Bad Gateway</body></html>",
            "[]",
            r#"[{"access_token":"a"}]"#,
            "\"access_token\"",
            "{}",
            r#"{"token_type":"Bearer","expires_in":3600}"#,
            r#"{"access_token":null}"#,
            r#"{"access_token":""}"#,
            r#"{"access_token":42}"#,
            r#"{"access_token":["a"]}"#,
            r#"{"access_token":"a","refresh_token":5}"#,
            r#"{"access_token":"a","id_token":{}}"#,
            r#"{"access_token":"a","scope":["read"]}"#,
            r#"{"access_token":"a","refresh_token":"r\r\nX-Evil: 1"}"#,
        ] {
            assert_eq!(kind_of(body), ErrorKind::MalformedResponse, "{body}");
        }
    }

    #[test]
    fn access_tokens_that_cannot_go_in_a_header() {
        for token in [
            "a\nb",
            "a\r\nX-Injected: yes",
            "a b",
            "caf\u{e9}",
            "tab\there",
            "nul\u{0}",
        ] {
            let body = serde_json::json!({ "access_token": token }).to_string();
            assert_eq!(kind_of(&body), ErrorKind::MalformedResponse, "{token:?}");
        }
    }

    #[test]
    fn errors_never_show_the_token() {
        let err = parse(r#"{"access_token":"s3cr3t\nvalue"}"#).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
        let err = parse(r#"{"access_token":"s3cr3t","expires_in":"soon"}"#).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }

    #[test]
    fn expires_in_forms() {
        let lifetime = |value: &str| {
            parse(&format!(r#"{{"access_token":"a","expires_in":{value}}}"#))
                .map(|t| t.lifetime().unwrap().as_secs())
                .map_err(|e| e.kind())
        };
        assert_eq!(lifetime("3600"), Ok(3600));
        assert_eq!(lifetime("\"3600\""), Ok(3600));
        assert_eq!(lifetime("\" 3599 \""), Ok(3599));
        assert_eq!(lifetime("3600.5"), Ok(3600));
        assert_eq!(lifetime("0"), Ok(0));
        assert_eq!(lifetime("315360000"), Ok(315_360_000));
        assert_eq!(lifetime("null"), Ok(DEFAULT.as_secs()));
        for bad in [
            "-5",
            "\"-5\"",
            "-0.5",
            "1e12",
            "315360001",
            "\"soon\"",
            "\"\"",
            "true",
            "[3600]",
            "{}",
        ] {
            assert_eq!(lifetime(bad), Err(ErrorKind::MalformedResponse), "{bad}");
        }
    }

    #[test]
    fn without_expires_in_the_default_lifetime() {
        let token = parse(r#"{"access_token":"opaque"}"#).unwrap();
        assert_eq!(token.lifetime(), Some(DEFAULT));
    }

    #[test]
    fn without_expires_in_the_jwt_exp() {
        let now = unix_now();
        let access = jwt(&format!(r#"{{"sub":"x","iat":{now},"exp":{}}}"#, now + 900));
        let token = parse(&serde_json::json!({ "access_token": access }).to_string()).unwrap();
        let lifetime = token.lifetime().unwrap().as_secs();
        assert!((899..=900).contains(&lifetime), "{lifetime}");
    }

    #[test]
    fn expires_in_wins_over_the_jwt_exp() {
        let access = jwt(&format!(r#"{{"exp":{}}}"#, unix_now() + 900));
        let body = serde_json::json!({ "access_token": access, "expires_in": 60 }).to_string();
        assert_eq!(
            parse(&body).unwrap().lifetime(),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn jwt_lifetime_cases() {
        let now = SystemTime::now();
        let secs = unix_now();
        // Our clock behind the server's: never more than the lifetime the server granted.
        let ahead = jwt(&format!(r#"{{"iat":{},"exp":{}}}"#, secs + 500, secs + 800));
        assert_eq!(jwt_lifetime(&ahead, now), Some(Duration::from_secs(300)));
        // Our clock ahead: `exp` passed by our clock, the granted lifetime is used.
        let behind = jwt(&format!(r#"{{"iat":{},"exp":{}}}"#, secs - 900, secs - 600));
        assert_eq!(jwt_lifetime(&behind, now), Some(Duration::from_secs(300)));
        // Passed, and no iat to go by.
        let stale = jwt(&format!(r#"{{"exp":{}}}"#, secs - 10));
        assert_eq!(jwt_lifetime(&stale, now), None);
        // Padding in the payload is tolerated.
        let padded = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(format!(r#"{{"exp":{}}}"#, secs + 61))
        );
        assert!(jwt_lifetime(&padded, now).is_some());
        for not_usable in [
            "opaque".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "a.!!!.c".to_owned(),
            jwt("[1]"),
            jwt(r#"{"sub":"no exp"}"#),
            jwt(r#"{"exp":"tomorrow"}"#),
            jwt(r#"{"exp":-5}"#),
            jwt(r#"{"exp":1e300}"#),
            jwt(&format!(r#"{{"exp":{}}}"#, secs + 20 * 365 * 24 * 3600)),
        ] {
            assert_eq!(jwt_lifetime(&not_usable, now), None, "{not_usable}");
        }
    }

    #[test]
    fn error_bodies() {
        let full = parse_error(
            400,
            br#"{"error":"invalid_grant","error_description":"refresh token revoked","error_uri":"https://idp.example.com/e"}"#,
        )
        .unwrap();
        assert_eq!(full.error(), "invalid_grant");
        assert_eq!(full.error_description(), Some("refresh token revoked"));
        assert_eq!(full.error_uri(), Some("https://idp.example.com/e"));
        assert_eq!(
            full.to_string(),
            "invalid_grant: refresh token revoked (HTTP 400)"
        );

        let bare = parse_error(401, br#"{"error":"invalid_client"}"#).unwrap();
        assert_eq!(bare.error_description(), None);
        assert_eq!(bare.error_uri(), None);
        assert_eq!(bare.to_string(), "invalid_client (HTTP 401)");

        for not_an_error in [
            &b"<html>500</html>"[..],
            b"",
            b"[]",
            br#"{"message":"Internal"}"#,
            br#"{"error":""}"#,
            br#"{"error":{"code":1}}"#,
        ] {
            assert_eq!(parse_error(400, not_an_error), None);
        }
    }

    #[test]
    fn error_text_is_cleaned() {
        let long = "x".repeat(10_000);
        let body = serde_json::json!({
            "error": "invalid_client\r\nX-Forged: 1",
            "error_description": long,
        });
        let err = parse_error(401, body.to_string().as_bytes()).unwrap();
        assert!(!err.error().contains('\n'));
        assert_eq!(
            err.error_description().unwrap().len(),
            MAX_DESCRIPTION_CHARS
        );
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply::new(status, body)
    }

    fn outcome(status: u16, body: &str) -> (ErrorKind, bool, Option<String>) {
        match classify(&reply(status, body), DEFAULT) {
            Attempt::Done(Ok(_)) => panic!("HTTP {status} gave a token"),
            Attempt::Done(Err(e)) => (
                e.kind(),
                false,
                e.downcast_ref::<OAuthError>().map(|o| o.error().to_owned()),
            ),
            Attempt::Retry(e, _) => (
                e.kind(),
                true,
                e.downcast_ref::<OAuthError>().map(|o| o.error().to_owned()),
            ),
        }
    }

    #[test]
    fn statuses_and_codes() {
        use ErrorKind::*;
        let code = |c: &str| format!(r#"{{"error":"{c}"}}"#);
        for (c, kind) in [
            ("invalid_client", CredentialsRejected),
            ("invalid_grant", CredentialsRejected),
            ("unauthorized_client", CredentialsRejected),
            ("invalid_scope", CredentialsRejected),
            ("invalid_request", Configuration),
            ("unsupported_grant_type", Configuration),
            ("something_new", Configuration),
        ] {
            assert_eq!(
                outcome(400, &code(c)),
                (kind, false, Some(c.to_owned())),
                "{c}"
            );
        }
        assert_eq!(
            outcome(401, &code("invalid_client")),
            (CredentialsRejected, false, Some("invalid_client".into()))
        );
        assert_eq!(outcome(401, &code("new_code")).0, CredentialsRejected);
        assert_eq!(
            outcome(401, "Unauthorized"),
            (CredentialsRejected, false, None)
        );
        assert_eq!(outcome(403, ""), (CredentialsRejected, false, None));
        assert_eq!(
            outcome(404, "<html>Not Found</html>"),
            (Configuration, false, None)
        );
        assert_eq!(outcome(302, ""), (Configuration, false, None));
        assert_eq!(outcome(101, ""), (MalformedResponse, false, None));
        assert_eq!(
            outcome(500, "<html><h1>500</h1></html>"),
            (Server, true, None)
        );
        assert_eq!(
            outcome(503, &code("temporarily_unavailable")),
            (Server, true, Some("temporarily_unavailable".into()))
        );
        assert_eq!(outcome(429, "slow down"), (Server, true, None));
        assert_eq!(outcome(408, ""), (Server, true, None));
        assert_eq!(
            outcome(400, &code("temporarily_unavailable")),
            (Server, true, Some("temporarily_unavailable".into()))
        );
        assert_eq!(outcome(200, "garbage"), (MalformedResponse, false, None));
        assert_eq!(
            outcome(200, &code("invalid_client")),
            (CredentialsRejected, false, Some("invalid_client".into()))
        );
    }

    #[test]
    fn retry_after_is_passed_on() {
        let throttled = reply(429, "").with_header("retry-after", "2");
        match classify(&throttled, DEFAULT) {
            Attempt::Retry(_, after) => assert_eq!(after, Some(Duration::from_secs(2))),
            Attempt::Done(_) => panic!("429 must be retried"),
        }
    }

    /// Mutations of real responses (bytes flipped, cut, spliced) must give a token or an
    /// error, never a panic.
    #[test]
    fn mangled_answers_never_panic() {
        let seeds = [
            r#"{"access_token":"abc.def","token_type":"bearer","expires_in":3600,"refresh_token":"r","scope":"a b"}"#
                .to_owned(),
            serde_json::json!({ "access_token": jwt(r#"{"exp":1e10,"iat":5}"#) }).to_string(),
            r#"{"error":"invalid_grant","error_description":"x","error_uri":"y"}"#.to_owned(),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut tokens, mut errors) = (0, 0);
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].clone().into_bytes();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 3 {
                    0 if !bytes.is_empty() => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    _ => {
                        let pool = b"\"-{}[]\\.0e9";
                        bytes.insert(at.min(bytes.len()), pool[(next() as usize) % pool.len()]);
                    }
                }
            }
            match parse_token(&bytes, DEFAULT, SystemTime::now()) {
                Ok(_) => tokens += 1,
                Err(_) => errors += 1,
            }
            let _ = parse_error(400, &bytes);
            let _ = classify(&reply(200, &String::from_utf8_lossy(&bytes)), DEFAULT);
        }
        // Both outcomes were reached, so the mutations explored more than one path.
        assert!(
            tokens > 100 && errors > 100,
            "{tokens} tokens, {errors} errors"
        );
    }

    #[test]
    fn a_success_is_a_token() {
        match classify(
            &reply(200, r#"{"access_token":"t","expires_in":5}"#),
            DEFAULT,
        ) {
            Attempt::Done(Ok(token)) => assert_eq!(token.access_token(), "t"),
            _ => panic!("expected a token"),
        }
    }
}
