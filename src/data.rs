//! Data structures (reference: `en_core.auth.data`): the client's credentials and the
//! tokens an identity provider hands out.
//!
//! Both types redact their secrets in `Debug`, so that logging them is safe.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ureq::http::{HeaderMap, HeaderValue, Uri};

use crate::Error;

/// The authentication parameters of a client: its id, its secret and an optional API key.
///
/// The secret may be empty for a public client (for example a Cognito app client without
/// a secret). The API key, when set, is sent as `X-Api-Key` on every authorized request.
///
/// `Debug` shows the client id only:
///
/// ```
/// use en_core_auth::ClientInfo;
///
/// let client = ClientInfo::new("my-client", "my-secret").with_api_key("my-key");
/// assert_eq!(client.client_id(), "my-client");
/// assert_eq!(client.api_key(), Some("my-key"));
/// let shown = format!("{client:?}");
/// assert!(!shown.contains("my-secret") && !shown.contains("my-key"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientInfo {
    client_id: String,
    client_secret: String,
    api_key: Option<String>,
}

impl ClientInfo {
    /// Client information with an id and a secret (`""` for a public client).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// let public = ClientInfo::new("app-client", "");
    /// assert_eq!(public.client_secret(), "");
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> ClientInfo {
        ClientInfo {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            api_key: None,
        }
    }

    /// Adds an API key, sent as `X-Api-Key` beside the `Authorization` header. An empty key
    /// means no key.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// assert_eq!(ClientInfo::new("id", "s").with_api_key("").api_key(), None);
    /// ```
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> ClientInfo {
        let api_key = api_key.into();
        self.api_key = (!api_key.is_empty()).then_some(api_key);
        self
    }

    /// The client id.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// assert_eq!(ClientInfo::new("id", "s").client_id(), "id");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret (`""` for a public client).
    ///
    /// Keep it to yourself: authorizers need it to talk to the identity provider; nothing
    /// else should.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// assert_eq!(ClientInfo::new("id", "s").client_secret(), "s");
    /// ```
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The API key, if one was given.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// assert_eq!(ClientInfo::new("id", "s").api_key(), None);
    /// ```
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// Checks what can be checked before any request: the client id is not empty.
    /// Authorizers call this when they are built.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if self.client_id.trim().is_empty() {
            return Err(crate::Error::new(
                crate::ErrorKind::Configuration,
                "the client id is empty",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfo")
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted(!self.client_secret.is_empty()))
            .field("api_key", &Redacted(self.api_key.is_some()))
            .finish()
    }
}

/// An authorization token: what [`Authorizer::authorize`](crate::Authorizer::authorize) and
/// [`Authorizer::refresh`](crate::Authorizer::refresh) return.
///
/// It holds the access token, and where the identity provider gave them, a refresh token,
/// an ID token, the token type (default `Bearer`) and the expiry.
///
/// `Debug` redacts every token string:
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::Token;
///
/// let token = Token::new("eyJ-access")
///     .with_refresh_token("refresh-me")
///     .with_expires_in(Duration::from_secs(3600));
/// assert_eq!(token.access_token(), "eyJ-access");
/// assert_eq!(token.token_type(), "Bearer");
/// assert!(token.expires_at().is_some());
/// let shown = format!("{token:?}");
/// assert!(!shown.contains("eyJ-access") && !shown.contains("refresh-me"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
    token_type: String,
    expires_at: Option<SystemTime>,
    lifetime: Option<Duration>,
    scope: Option<String>,
    /// The key the token is bound to (DPoP), whose proof goes with every request.
    proof: Option<ProofBinding>,
    /// When the refresh token expires, where the server said (`refresh_token_expires_in`,
    /// Keycloak's `refresh_expires_in`): how long a shared store keeps the entry.
    refresh_expires_at: Option<SystemTime>,
    /// The refresh token this token came with has been sent (or is being sent) and may be
    /// used up: a store's record, so that no process sends it again. It is then absent.
    refresh_spent: bool,
}

/// Proves, request by request, possession of the key a token is bound to (RFC 9449 DPoP):
/// a stolen bound token is worthless without the key.
pub(crate) trait RequestProof: Send + Sync {
    /// The proof for one request with this token, carrying the nonce of the request's
    /// server if it gave one.
    fn proof(&self, method: &str, uri: &Uri, access_token: &str) -> Result<Proof, Error>;

    /// Reads the answer to a request to `uri` whose proof carried `signed_with`: keeps a
    /// `DPoP-Nonce` for that server, and says whether the answer refused the proof for
    /// its nonce (`use_dpop_nonce`), which is never a refusal of the token.
    fn observe(
        &self,
        uri: &Uri,
        signed_with: Option<&str>,
        status: u16,
        headers: &HeaderMap,
    ) -> NonceAnswer;
}

/// One request's proof header, and the server nonce it carries.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) struct Proof {
    pub(crate) header: HeaderValue,
    pub(crate) nonce: Option<Arc<str>>,
}

/// What an answer said about a proof's nonce (RFC 9449 §9).
// Only the DPoP key (feature `jwt`) answers anything but `Accepted`.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceAnswer {
    /// Not a `use_dpop_nonce` refusal.
    Accepted,
    /// Refused for its nonce, and the server's nonce is not the one the proof carried: a
    /// proof made now carries it, so the request is worth sending again.
    NewNonce,
    /// Refused for its nonce, with nothing newer to send: the caller gets the `401`.
    Refused,
}

/// A token's proof key; two tokens are equal only when bound to the very same key.
#[derive(Clone)]
pub(crate) struct ProofBinding(Arc<dyn RequestProof>);

impl PartialEq for ProofBinding {
    fn eq(&self, other: &ProofBinding) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl Eq for ProofBinding {}

// Only the DPoP key (feature `jwt`) binds tokens.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
impl Token {
    /// Binds the token to a key whose proof must go with every request (DPoP).
    pub(crate) fn with_request_proof(mut self, proof: Arc<dyn RequestProof>) -> Token {
        self.proof = Some(ProofBinding(proof));
        self
    }

    /// The key the token is bound to, if any.
    pub(crate) fn request_proof(&self) -> Option<&dyn RequestProof> {
        self.proof.as_ref().map(|binding| &*binding.0)
    }
}

impl Token {
    /// A bearer token with no known expiry.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("abc").expires_at(), None);
    /// ```
    pub fn new(access_token: impl Into<String>) -> Token {
        Token {
            access_token: access_token.into(),
            refresh_token: None,
            id_token: None,
            token_type: "Bearer".to_owned(),
            expires_at: None,
            lifetime: None,
            scope: None,
            proof: None,
            refresh_expires_at: None,
            refresh_spent: false,
        }
    }

    /// Sets the expiry to `expires_in` from now, as an identity provider's `expires_in`
    /// says. The lifetime also scales the refresh thresholds of
    /// [`AuthMiddleware`](crate::AuthMiddleware).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use en_core_auth::Token;
    /// let token = Token::new("abc").with_expires_in(Duration::from_secs(60));
    /// assert!(token.expires_at().unwrap() > SystemTime::now());
    /// ```
    pub fn with_expires_in(mut self, expires_in: Duration) -> Token {
        let now = SystemTime::now();
        self.expires_at = now.checked_add(expires_in);
        self.lifetime = self.expires_at.map(|_| expires_in);
        self
    }

    /// Sets the expiry to a point in time (for example the `exp` claim of a JWT, or a token
    /// read back from a cache).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use en_core_auth::Token;
    /// let at = SystemTime::now() + Duration::from_secs(60);
    /// assert_eq!(Token::new("abc").with_expires_at(at).expires_at(), Some(at));
    /// ```
    pub fn with_expires_at(mut self, expires_at: SystemTime) -> Token {
        self.expires_at = Some(expires_at);
        self.lifetime = expires_at.duration_since(SystemTime::now()).ok();
        self
    }

    /// Adds the refresh token the identity provider issued.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("a").with_refresh_token("r").refresh_token(), Some("r"));
    /// ```
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Token {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Adds the OpenID Connect ID token the identity provider issued.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("a").with_id_token("i").id_token(), Some("i"));
    /// ```
    pub fn with_id_token(mut self, id_token: impl Into<String>) -> Token {
        self.id_token = Some(id_token.into());
        self
    }

    /// Sets the token type (the header prefix), `Bearer` by default. RFC 6749 makes the
    /// type case-insensitive; a lower-case `bearer` is sent as `Bearer`.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("a").with_token_type("bearer").token_type(), "Bearer");
    /// assert_eq!(Token::new("a").with_token_type("DPoP").token_type(), "DPoP");
    /// ```
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Token {
        let token_type = token_type.into();
        self.token_type = if token_type.eq_ignore_ascii_case("bearer") {
            "Bearer".to_owned()
        } else {
            token_type
        };
        self
    }

    /// The access token.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("abc").access_token(), "abc");
    /// ```
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The refresh token, if the identity provider issued one.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("abc").refresh_token(), None);
    /// ```
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// This token without its refresh token, recorded as spent: what a store keeps while a
    /// refresh with that refresh token is out, or after its answer was lost.
    pub(crate) fn with_refresh_spent(mut self) -> Token {
        self.refresh_token = None;
        self.refresh_expires_at = None;
        self.refresh_spent = true;
        self
    }

    /// Whether the refresh token this token came with was sent and may be used up
    /// ([`with_refresh_spent`](Token::with_refresh_spent)).
    pub(crate) fn refresh_spent(&self) -> bool {
        self.refresh_spent
    }

    /// Sets when the refresh token expires (the server's `refresh_token_expires_in`).
    pub(crate) fn with_refresh_expires_at(mut self, at: Option<SystemTime>) -> Token {
        self.refresh_expires_at = at;
        self
    }

    /// When the refresh token expires, if the server said.
    pub(crate) fn refresh_expires_at(&self) -> Option<SystemTime> {
        self.refresh_expires_at
    }

    /// The ID token, if the identity provider issued one.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("abc").id_token(), None);
    /// ```
    pub fn id_token(&self) -> Option<&str> {
        self.id_token.as_deref()
    }

    /// The token type, `Bearer` unless the identity provider said otherwise.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("abc").token_type(), "Bearer");
    /// ```
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token expires, if known.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::Token;
    /// assert!(Token::new("a").with_expires_in(Duration::from_secs(5)).expires_at().is_some());
    /// ```
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// How long the token was valid for when it was issued, if known: `expires_in`, or the
    /// time left when the expiry was set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::Token;
    /// let token = Token::new("a").with_expires_in(Duration::from_secs(5));
    /// assert_eq!(token.lifetime(), Some(Duration::from_secs(5)));
    /// ```
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// Records the scope the identity provider granted (the `scope` of an OAuth 2.0 token
    /// response: space-separated scope names).
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("a").with_scope("read write").scope(), Some("read write"));
    /// ```
    pub fn with_scope(mut self, scope: impl Into<String>) -> Token {
        self.scope = Some(scope.into());
        self
    }

    /// The scope the identity provider granted, if it said.
    ///
    /// ```
    /// use en_core_auth::Token;
    /// assert_eq!(Token::new("a").scope(), None);
    /// ```
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Whether the token's expiry has passed (false when the expiry is unknown).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::Token;
    /// assert!(!Token::new("a").with_expires_in(Duration::from_secs(60)).is_expired());
    /// assert!(Token::new("a").with_expires_in(Duration::ZERO).is_expired());
    /// ```
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= SystemTime::now())
    }

    /// Restores the lifetime recorded with a token read back from a cache: `with_expires_at`
    /// alone would take the time left as the lifetime and shrink the refresh windows.
    /// `None` keeps the lifetime `with_expires_at` derived.
    pub(crate) fn with_lifetime(mut self, lifetime: Option<Duration>) -> Token {
        if lifetime.is_some() {
            self.lifetime = lifetime;
        }
        self
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &Redacted(true))
            .field("refresh_token", &Redacted(self.refresh_token.is_some()))
            .field("id_token", &Redacted(self.id_token.is_some()))
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The claims of a JWT, read without verifying its signature: only for scheduling and
/// bookkeeping (when it expires, whose it is). The resource server verifies tokens; never
/// make an access decision on these claims. `None` when `jwt` is not a JWT with a JSON
/// object payload.
pub(crate) fn unverified_claims(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Shows `"<redacted>"` for a value that is present and `None` for one that is not, so
/// that `Debug` output tells what is there without telling what it is.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "\"<redacted>\"" } else { "None" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_debug_shows_the_id_only() {
        let client = ClientInfo::new("id-1", "s3cr3t").with_api_key("k3y");
        let shown = format!("{client:?} {client:#?}");
        assert!(shown.contains("id-1"));
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains("k3y"));
    }

    #[test]
    fn token_debug_redacts_every_string() {
        let token = Token::new("acc355")
            .with_refresh_token("r3fr35h")
            .with_id_token("1d70k3n");
        let shown = format!("{token:?} {token:#?}");
        for secret in ["acc355", "r3fr35h", "1d70k3n"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("Bearer"));
    }

    #[test]
    fn empty_client_id_is_a_configuration_error() {
        let err = ClientInfo::new("  ", "s").validate().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Configuration);
        assert!(ClientInfo::new("id", "").validate().is_ok());
    }

    #[test]
    fn an_expiry_in_the_past_has_no_lifetime() {
        let token = Token::new("a").with_expires_at(SystemTime::UNIX_EPOCH);
        assert!(token.is_expired());
        assert_eq!(token.lifetime(), None);
    }
}
