//! The token endpoint as both grants use it: where it is, how the client authenticates,
//! and one token request with its retries. Also the builder through which either grant is
//! set up when the defaults (HTTPS, the default HTTP client) don't fit.

use std::fmt;
use std::time::Duration;

use super::client_auth::ClientAuth;
use super::discovery;
use super::response::{self, OAuthError};
use crate::http::{Attempt, HttpClient, check_endpoint};
use crate::{ClientInfo, Error, ErrorKind, Token};

/// The lifetime assumed for a token when the server states none (no `expires_in`, and
/// the access token is not a JWT with an `exp`): five minutes. Renewing a long-lived token
/// every five minutes costs one request; assuming an hour for a token that lives ten
/// minutes would send an expired token for fifty, each answered by a `401`.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::{ClientInfo, oauth2::{ClientCredentials, DEFAULT_LIFETIME}};
///
/// assert_eq!(DEFAULT_LIFETIME, Duration::from_secs(300));
/// // A server known to issue hour-long opaque tokens without `expires_in`:
/// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
///     .with_default_lifetime(Duration::from_secs(3600));
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Form fields the grants set themselves; [`with_parameter`] cannot replace them.
///
/// [`with_parameter`]: super::ClientCredentials::with_parameter
const RESERVED: &[&str] = &[
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "device_code",
    "scope",
    "refresh_token",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "assertion",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
];

/// Scope names as given, empty ones dropped.
pub(crate) fn scope_list(scopes: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    scopes
        .into_iter()
        .map(Into::into)
        .filter(|scope: &String| !scope.is_empty())
        .collect()
}

/// Whether a token request may be sent again after an attempt whose fate is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Any transient failure is retried: sending the grant twice does no harm (client
    /// credentials, a fresh assertion).
    Freely,
    /// Retried only when the server surely did not act on it: the connection was refused,
    /// or a 429/503 that says when to come back (`Retry-After`). A refresh token that the
    /// server may have rotated is never sent twice: servers with reuse detection revoke
    /// the whole token family when they see an old one again.
    OnlyIfUnprocessed,
}

/// A refresh token that must not be sent again, and why.
#[derive(Clone)]
enum Spent {
    /// The server refused it; its answer is kept to give again.
    Refused(OAuthError),
    /// The request may have reached the server and its answer was lost.
    Unknown,
}

/// What every OAuth2 authorizer configures: the token endpoint and how the client
/// authenticates to it, the scopes and extra parameters it asks with, the HTTP client,
/// and (feature `jwt`) the DPoP key; and one token request with the retry rules, the
/// client-authentication fallback and the checks of the answer. A grant holds one and adds
/// only what its grant needs (see `common_settings!`).
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) client: ClientInfo,
    pub(crate) url: String,
    /// The issuer identifier, when known (from discovery): the audience of
    /// `private_key_jwt` assertions (RFC 7523 as updated by RFC 9700 §2.2.3 advice).
    pub(crate) issuer: Option<String>,
    pub(crate) auth: ClientAuth,
    /// True when the user chose the method: no fallback to `client_secret_post` then.
    pub(crate) auth_chosen: bool,
    pub(crate) http: HttpClient,
    pub(crate) default_lifetime: Duration,
    pub(crate) parameters: Vec<(String, String)>,
    /// The issuer's metadata when the endpoint was discovered: the interactive flows and
    /// logout read their other endpoints from it.
    pub(crate) metadata: Option<discovery::Metadata>,
    /// Whether plain-HTTP URLs to hosts other than loopback were allowed, so that the
    /// other endpoints follow the same rule as this one.
    pub(crate) allow_insecure_http: bool,
    pub(crate) scopes: Vec<String>,
    #[cfg(feature = "jwt")]
    pub(crate) dpop: Option<super::dpop::DpopKey>,
    spent: Option<(String, Spent)>,
}

impl TokenEndpoint {
    pub(crate) fn new(client: ClientInfo, url: String) -> TokenEndpoint {
        TokenEndpoint {
            client,
            url,
            issuer: None,
            auth: ClientAuth::default(),
            auth_chosen: false,
            http: HttpClient::new(),
            default_lifetime: DEFAULT_LIFETIME,
            parameters: Vec::new(),
            metadata: None,
            allow_insecure_http: false,
            scopes: Vec::new(),
            #[cfg(feature = "jwt")]
            dpop: None,
            spent: None,
        }
    }

    pub(crate) fn add_parameter(&mut self, name: String, value: String) {
        if RESERVED.contains(&name.as_str()) {
            log::warn!(
                "ignoring the extra token request parameter `{name}`: it is set by the grant"
            );
            return;
        }
        self.parameters.push((name, value));
    }

    /// The `scope` value (space-separated), or `None` when no scope was asked for.
    pub(crate) fn scope(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// The credential set of a grant of `kind` at this endpoint: the token URL, the
    /// client, the extra parameters and the scopes. Grants add what else changes their
    /// tokens.
    pub(crate) fn credential_set(&self, kind: &str) -> crate::store::CredentialSet {
        self.parameters
            .iter()
            .fold(
                crate::store::CredentialSet::new(kind, &self.url).client(&self.client),
                |set, (name, value)| set.param(name, value),
            )
            .scopes(&self.scopes)
    }

    /// One token request: `grant` fields, then the extra parameters, then the client's
    /// credentials; retried as `resend` allows. When `client_secret_basic` was not chosen
    /// by the user and the server answers `invalid_client`, the request is sent once more
    /// with `client_secret_post`, which is then kept if it works (servers that don't
    /// form-decode Basic credentials: older Spring Security OAuth, IdentityServer).
    /// Logs the URL and statuses, never the form.
    pub(crate) fn request(
        &mut self,
        grant: &[(&str, &str)],
        resend: Resend,
    ) -> Result<Token, Error> {
        self.request_tracked(grant, resend).0
    }

    /// [`request`](TokenEndpoint::request), and whether the server may have acted on the
    /// last attempt although it failed (a lost answer, a 5xx, an unusable 2xx), for grants
    /// whose credential is used up when the server acts on it.
    fn request_tracked(
        &mut self,
        grant: &[(&str, &str)],
        resend: Resend,
    ) -> (Result<Token, Error>, bool) {
        let outcome = self.request_with(&self.auth, grant, resend);
        let basic_refused = matches!(&outcome.0, Err(error) if is_invalid_client(error));
        if !basic_refused
            || self.auth_chosen
            || !matches!(self.auth, ClientAuth::SecretBasic)
            || self.client.client_secret().is_empty()
        {
            return outcome;
        }
        // Whatever happens now, adapt only once.
        self.auth_chosen = true;
        log::debug!(
            "client_secret_basic refused by {}; trying client_secret_post",
            self.url
        );
        let retried = self.request_with(&ClientAuth::SecretPost, grant, resend);
        if retried.0.is_ok() {
            self.auth = ClientAuth::SecretPost;
        }
        retried
    }

    /// The request with one method of client authentication. With a DPoP key, an
    /// answer `use_dpop_nonce` (RFC 9449 §8) is followed by one more request whose proof
    /// carries the nonce the server gave: the server refused the proof before looking at
    /// the grant, so even a refresh token is safe to send again.
    fn request_with(
        &self,
        auth: &ClientAuth,
        grant: &[(&str, &str)],
        resend: Resend,
    ) -> (Result<Token, Error>, bool) {
        #[cfg_attr(not(feature = "jwt"), allow(unused_mut))]
        let (mut result, mut maybe_processed) = self.attempts(auth, grant, resend);
        #[cfg(feature = "jwt")]
        if self.dpop.is_some()
            && matches!(&result, Err(error) if error
                .downcast_ref::<OAuthError>()
                .is_some_and(|oauth| oauth.error() == "use_dpop_nonce"))
        {
            log::debug!(
                "token endpoint {} asked for a DPoP nonce; sending once more",
                self.url
            );
            (result, maybe_processed) = self.attempts(auth, grant, resend);
        }
        match result {
            Ok(token) => {
                let usable = self.usable(token);
                // A 2xx: the server acted on the grant even when its token is of no use.
                (usable, true)
            }
            Err(error) => (Err(error), maybe_processed),
        }
    }

    /// The request with its retries (as `resend` allows).
    fn attempts(
        &self,
        auth: &ClientAuth,
        grant: &[(&str, &str)],
        resend: Resend,
    ) -> (Result<Token, Error>, bool) {
        let audience = self.issuer.as_deref().unwrap_or(&self.url);
        // Whether the server may have acted on the last attempt.
        let mut maybe_processed = false;
        let result = self.http.with_retries(|| {
            maybe_processed = false;
            let credentials = match auth.credentials(&self.client, audience) {
                Ok(credentials) => credentials,
                Err(error) => return Attempt::Done(Err(error)),
            };
            // Some servers (GitHub's among them) answer in form encoding unless asked.
            let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3);
            headers.push(("accept", "application/json"));
            headers.extend(
                credentials
                    .headers
                    .iter()
                    .map(|(name, value)| (*name, value.as_str())),
            );
            #[cfg(feature = "jwt")]
            let proof = match self.dpop.as_ref().map(|key| key.token_proof(&self.url)) {
                Some(Ok(proof)) => Some(proof),
                Some(Err(error)) => return Attempt::Done(Err(error)),
                None => None,
            };
            #[cfg(feature = "jwt")]
            if let Some(proof) = &proof {
                headers.push(("dpop", proof.as_str()));
            }
            let form: Vec<(&str, &str)> = grant
                .iter()
                .copied()
                .chain(
                    self.parameters
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                )
                .chain(
                    credentials
                        .form
                        .iter()
                        .map(|(name, value)| (*name, value.as_str())),
                )
                .collect();
            log::debug!("requesting token from {}", self.url);
            let reply = match self.http.post_form(&self.url, &headers, &form) {
                Ok(reply) => reply,
                Err(error) if error.kind() == ErrorKind::Transport => {
                    let unsent = crate::http::surely_unsent(&error);
                    maybe_processed = !unsent;
                    return match resend {
                        Resend::OnlyIfUnprocessed if !unsent => Attempt::Done(Err(error)),
                        _ => Attempt::Retry(error, None),
                    };
                }
                Err(error) => return Attempt::Done(Err(error)),
            };
            log::debug!("token endpoint {} answered HTTP {}", self.url, reply.status);
            let come_back_later = matches!(reply.status, 429 | 503) && reply.retry_after.is_some();
            maybe_processed = matches!(reply.status, 200..=299 | 500..=599) && !come_back_later;
            #[cfg(feature = "jwt")]
            if let (Some(key), Some(nonce)) = (&self.dpop, &reply.dpop_nonce) {
                key.remember_token_nonce(&self.url, nonce);
            }
            match response::classify(&reply, self.default_lifetime) {
                Attempt::Retry(error, _)
                    if resend == Resend::OnlyIfUnprocessed && !come_back_later =>
                {
                    Attempt::Done(Err(error))
                }
                other => other,
            }
        });
        (result, maybe_processed)
    }

    /// RFC 6749 §7.1: a token of a type the client does not understand is not used.
    /// Bearer (any case) is; DPoP is when a key is configured, bound to it.
    fn usable(&self, token: Token) -> Result<Token, Error> {
        let kind = token.token_type();
        if kind.eq_ignore_ascii_case("bearer") {
            return Ok(token);
        }
        if kind.eq_ignore_ascii_case("dpop") {
            #[cfg(feature = "jwt")]
            if let Some(key) = &self.dpop {
                return Ok(token.with_request_proof(key.binding()));
            }
            return Err(Error::new(
                ErrorKind::Configuration,
                "the server issued a DPoP-bound token (token_type DPoP) but no DPoP key is \
                 configured; set one with with_dpop (feature `jwt`)",
            ));
        }
        Err(Error::new(
            ErrorKind::MalformedResponse,
            format!(
                "the server issued a token of type `{kind}`, which this client cannot use \
                 (RFC 6749 §7.1; N_A means it is not an access token)"
            ),
        ))
    }

    /// A `refresh_token` grant (RFC 6749 §6), sent at most once per refresh token unless
    /// it surely never reached the server. When the server issues no new refresh token,
    /// the one used stays valid and is kept on the returned token.
    ///
    /// A refresh token the server refused, or one whose answer was lost, is not sent
    /// again: the refusal is given again, or a
    /// [`CredentialsRejected`](ErrorKind::CredentialsRejected) error saying why.
    pub(crate) fn refresh(
        &mut self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<Token, Error> {
        if let Some(error) = self.spent_error(refresh_token) {
            return Err(error);
        }
        let mut grant = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            grant.push(("scope", scope));
        }
        let (result, maybe_processed) = self.request_tracked(&grant, Resend::OnlyIfUnprocessed);
        match result {
            Ok(token) => Ok(match token.refresh_token() {
                Some(_) => token,
                None => token.with_refresh_token(refresh_token),
            }),
            Err(error) => {
                let spent = match error.downcast_ref::<OAuthError>() {
                    Some(oauth) if oauth.error() == "invalid_grant" => {
                        Some(Spent::Refused(oauth.clone()))
                    }
                    _ if maybe_processed => Some(Spent::Unknown),
                    _ => None,
                };
                if let Some(spent) = spent {
                    self.spent = Some((refresh_token.to_owned(), spent));
                }
                Err(error)
            }
        }
    }

    /// Whether `refresh_token` must not be sent again (refused, or its answer lost).
    pub(crate) fn is_spent(&self, refresh_token: &str) -> bool {
        self.spent_error(refresh_token).is_some()
    }

    fn spent_error(&self, refresh_token: &str) -> Option<Error> {
        let (spent_token, spent) = self.spent.as_ref()?;
        if spent_token != refresh_token {
            return None;
        }
        Some(match spent {
            Spent::Refused(oauth) => Error::new(ErrorKind::CredentialsRejected, oauth.clone()),
            Spent::Unknown => Error::new(
                ErrorKind::CredentialsRejected,
                "the refresh token is not sent again: the answer to its last use was lost, and \
                 the server may have rotated it (a second use would revoke the session on \
                 servers with reuse detection); a new login is needed",
            ),
        })
    }
}

/// An `invalid_client` answer: the client's authentication was refused.
fn is_invalid_client(error: &Error) -> bool {
    error
        .downcast_ref::<OAuthError>()
        .is_some_and(|oauth| oauth.error() == "invalid_client")
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parameter_names: Vec<&str> = self.parameters.iter().map(|(n, _)| n.as_str()).collect();
        let mut out = f.debug_struct("TokenEndpoint");
        out.field("client", &self.client)
            .field("url", &self.url)
            .field("issuer", &self.issuer)
            .field("auth", &self.auth)
            .field("default_lifetime", &self.default_lifetime)
            .field("parameters", &parameter_names)
            .field("scopes", &self.scopes);
        #[cfg(feature = "jwt")]
        out.field("dpop", &self.dpop);
        out.finish_non_exhaustive()
    }
}

enum Location {
    Unset,
    TokenUrl(String),
    Issuer(String),
}

/// Sets up a [`ClientCredentials`](super::ClientCredentials) or
/// [`RefreshToken`](super::RefreshToken) authorizer when `new` and `discover` are not
/// enough: a plain-HTTP endpoint that is not loopback, or discovery through your own
/// [`HttpClient`] (a proxy, corporate TLS roots).
///
/// Every check happens in [`build`](Builder::build), with every option known: the client
/// id, the URL (after the opt-in, if given), and with an issuer the discovery itself.
///
/// ```
/// use en_core_auth::ClientInfo;
/// use en_core_auth::oauth2::ClientCredentials;
///
/// let client = ClientInfo::new("my-client", "my-secret");
/// // Refused without the opt-in: the secret would cross the network in clear.
/// assert!(ClientCredentials::new(client.clone(), "http://idp.internal/token").is_err());
/// let auth = ClientCredentials::builder(client)
///     .token_url("http://idp.internal/token")
///     .allow_insecure_http()
///     .build()?;
/// assert_eq!(auth.token_url(), "http://idp.internal/token");
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct Builder<A> {
    client: ClientInfo,
    location: Location,
    allow_insecure_http: bool,
    http: Option<HttpClient>,
    auth: Option<ClientAuth>,
    make: Box<dyn FnOnce(TokenEndpoint) -> Result<A, Error> + Send>,
}

impl<A> Builder<A> {
    pub(crate) fn new(
        client: ClientInfo,
        make: impl FnOnce(TokenEndpoint) -> Result<A, Error> + Send + 'static,
    ) -> Builder<A> {
        Builder {
            client,
            location: Location::Unset,
            allow_insecure_http: false,
            http: None,
            auth: None,
            make: Box::new(make),
        }
    }

    /// The token endpoint's URL.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .token_url("https://idp.example.com/oauth2/token")
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_url(mut self, url: impl Into<String>) -> Builder<A> {
        self.location = Location::TokenUrl(url.into());
        self
    }

    /// The issuer whose metadata names the token endpoint; [`build`](Builder::build) then
    /// discovers it, as [`ClientCredentials::discover`](super::ClientCredentials::discover)
    /// does.
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .issuer("https://idp.example.com")
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn issuer(mut self, url: impl Into<String>) -> Builder<A> {
        self.location = Location::Issuer(url.into());
        self
    }

    /// Allows plain-HTTP URLs to hosts other than loopback. The client secret and the
    /// tokens then cross the network unencrypted: use it only on a network you trust.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .token_url("http://10.0.0.5/token")
    ///     .allow_insecure_http()
    ///     .build();
    /// assert!(auth.is_ok());
    /// ```
    pub fn allow_insecure_http(mut self) -> Builder<A> {
        self.allow_insecure_http = true;
        self
    }

    /// The HTTP client for discovery and token requests (default: [`HttpClient::new`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{ClientInfo, http::HttpClient, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .token_url("https://idp.example.com/token")
    ///     .http_client(HttpClient::new().with_timeouts(Duration::from_secs(2), Duration::from_secs(5)))
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Builder<A> {
        self.http = Some(http);
        self
    }

    /// How the client authenticates. Without it: `client_secret_basic`, or after discovery
    /// `client_secret_post` when the server lists that and not `client_secret_basic`.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::{ClientAuth, ClientCredentials}};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .token_url("https://idp.example.com/token")
    ///     .client_auth(ClientAuth::SecretPost)
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn client_auth(mut self, auth: ClientAuth) -> Builder<A> {
        self.auth = Some(auth);
        self
    }

    /// Checks everything and builds the authorizer. Discovery, when an issuer was given,
    /// happens here.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for an empty client id, no URL, a bad
    /// or insecure URL, or metadata naming another issuer; discovery's network and parsing
    /// errors as they come.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind, oauth2::ClientCredentials};
    /// let err = ClientCredentials::builder(ClientInfo::new("id", "s")).build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn build(self) -> Result<A, Error> {
        self.client.validate()?;
        let http = self.http.unwrap_or_default();
        let auth_chosen = self.auth.is_some();
        let mut discovered = None;
        let (url, auth, issuer) = match self.location {
            Location::Unset => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "no token URL or issuer was given",
                ));
            }
            Location::TokenUrl(url) => {
                check_endpoint(&url, self.allow_insecure_http)?;
                (url, self.auth.unwrap_or_default(), None)
            }
            Location::Issuer(issuer) => {
                let metadata = discovery::discover(&http, &issuer, self.allow_insecure_http)?;
                let auth = match self.auth {
                    Some(auth) => auth,
                    None => preferred_auth(&metadata.auth_methods)?,
                };
                let (url, issuer) = (metadata.token_endpoint.clone(), metadata.issuer.clone());
                discovered = Some(metadata);
                (url, auth, Some(issuer))
            }
        };
        let mut endpoint = TokenEndpoint::new(self.client, url);
        endpoint.http = http;
        endpoint.auth = auth;
        endpoint.auth_chosen = auth_chosen;
        endpoint.issuer = issuer;
        endpoint.metadata = discovered;
        endpoint.allow_insecure_http = self.allow_insecure_http;
        (self.make)(endpoint)
    }
}

impl<A> fmt::Debug for Builder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("client", &self.client)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The method for a server's `token_endpoint_auth_methods_supported`:
/// `client_secret_basic` when listed (every server must support it, and an empty list
/// means it), else `client_secret_post`, else `tls_client_auth` (the certificate comes
/// from the agent's TLS configuration). A server that lists only `private_key_jwt` (or
/// other key-based methods) needs a key this crate can't guess: a configuration error that
/// says so.
fn preferred_auth(methods: &[String]) -> Result<ClientAuth, Error> {
    let lists = |name: &str| methods.iter().any(|m| m == name);
    if methods.is_empty() || lists("client_secret_basic") {
        Ok(ClientAuth::SecretBasic)
    } else if lists("client_secret_post") {
        Ok(ClientAuth::SecretPost)
    } else if lists("tls_client_auth") || lists("self_signed_tls_client_auth") {
        Ok(ClientAuth::TlsClientAuth)
    } else {
        Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "the server accepts none of the client secret methods (it lists {}); \
                 choose one with the builder's client_auth, e.g. ClientAuth::PrivateKeyJwt",
                methods.join(", ")
            ),
        ))
    }
}

/// The settings every OAuth2 authorizer shares, as inherent methods of `$grant` (a struct
/// with an `endpoint: TokenEndpoint` field): `with_scopes`, `with_parameter`,
/// `with_client_auth`, `with_http_client`, `with_default_lifetime`, `with_dpop` (feature
/// `jwt`), `token_url` and `scopes`. `$setup` is doc-test code that imports what it needs
/// and makes an `auth` of the grant without the final `;`, so each method's example
/// compiles for that grant. `$scope_note`, when given, says where the grant sends the
/// scopes and whether a refresh repeats them (default: every token request does).
macro_rules! common_settings {
    ($grant:ident, $setup:literal) => {
        $crate::oauth2::endpoint::common_settings!(
            $grant,
            $setup,
            "Every token request asks for them, refreshes included (RFC 6749 §6: a refresh \
             may narrow the scope); without scopes the server grants its default (or, on \
             refresh, the original scope)."
        );
    };
    ($grant:ident, $setup:literal, $scope_note:literal) => {
        impl $grant {
            /// Asks for these scopes, sent space-separated as `scope` (RFC 6749 §3.3).
            /// Replaces earlier scopes; empty strings are dropped; they are part of
            /// [`credential_set`]($crate::Authorizer::credential_set).
            #[doc = $scope_note]
            ///
            #[doc = concat!("```\n", $setup, "\n    .with_scopes([\"read\", \"write\"]);\nassert_eq!(auth.scopes(), [\"read\", \"write\"]);\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn with_scopes(
                mut self,
                scopes: impl IntoIterator<Item = impl Into<String>>,
            ) -> Self {
                self.endpoint.scopes = $crate::oauth2::endpoint::scope_list(scopes);
                self
            }

            /// Adds a form parameter to every token request, such as `audience` (Auth0,
            /// Okta) or `resource` (RFC 8707). A parameter may be given more than once
            /// (several `resource`s). Names the grants set themselves (`grant_type`,
            /// `scope`, `client_id`, `client_secret`, `refresh_token`, `client_assertion`,
            /// `client_assertion_type`, `assertion`, the `subject_token`/`actor_token`
            /// pairs, `requested_token_type`) are ignored, with a warning in the log.
            ///
            #[doc = concat!("```\n", $setup, "\n    .with_parameter(\"resource\", \"https://api.example.com/\");\n# let _ = auth;\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn with_parameter(
                mut self,
                name: impl Into<String>,
                value: impl Into<String>,
            ) -> Self {
                self.endpoint.add_parameter(name.into(), value.into());
                self
            }

            /// Sets how the client authenticates. Without it: `client_secret_basic` (or
            /// what discovery found), and when the server refuses Basic credentials with
            /// `invalid_client`, `client_secret_post` once, kept if it works (servers that
            /// don't form-decode Basic credentials). A method set here is used as it is.
            /// A public client (empty secret) sends only its `client_id`.
            ///
            #[doc = concat!("```\n", $setup, "\n    .with_client_auth(en_core_auth::oauth2::ClientAuth::SecretPost);\n# let _ = auth;\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn with_client_auth(mut self, auth: $crate::oauth2::ClientAuth) -> Self {
                self.endpoint.auth = auth;
                self.endpoint.auth_chosen = true;
                self
            }

            /// Sets the HTTP client for token requests: timeouts, retries, size cap, your
            /// own agent (see [`HttpClient`]($crate::http::HttpClient)).
            ///
            #[doc = concat!("```\nuse std::time::Duration;\nuse en_core_auth::http::{HttpClient, RetryPolicy};\nlet http = HttpClient::new()\n    .with_timeouts(Duration::from_secs(3), Duration::from_secs(10))\n    .with_retry(RetryPolicy::none());\n", $setup, "\n    .with_http_client(http);\n# let _ = auth;\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn with_http_client(mut self, http: $crate::http::HttpClient) -> Self {
                self.endpoint.http = http;
                self
            }

            /// Sets the lifetime assumed when the server states none: no `expires_in`, and
            /// the access token is not a JWT with an `exp` claim. The default,
            /// [`DEFAULT_LIFETIME`]($crate::oauth2::DEFAULT_LIFETIME), is five minutes.
            ///
            #[doc = concat!("```\n", $setup, "\n    .with_default_lifetime(std::time::Duration::from_secs(3600));\n# let _ = auth;\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn with_default_lifetime(mut self, lifetime: std::time::Duration) -> Self {
                self.endpoint.default_lifetime = lifetime;
                self
            }

            /// Binds the tokens to a DPoP key (RFC 9449; see
            /// [`DpopKey`]($crate::oauth2::DpopKey)): every token request carries a proof
            /// made with it, and a token the server issues as `DPoP` is sent with a fresh
            /// proof on every request. Without a key, a `DPoP` token is refused (it would
            /// be useless as a bearer token). Needs the `jwt` feature.
            ///
            #[doc = concat!("```\n", $setup, "\n    .with_dpop(en_core_auth::oauth2::DpopKey::generate()?);\n# let _ = auth;\n# Ok::<(), en_core_auth::Error>(())\n```")]
            #[cfg(feature = "jwt")]
            #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
            pub fn with_dpop(mut self, key: $crate::oauth2::DpopKey) -> Self {
                self.endpoint.dpop = Some(key);
                self
            }

            /// The token endpoint's URL (the one found, after discovery).
            ///
            #[doc = concat!("```\n", $setup, ";\nassert!(auth.token_url().starts_with(\"https://\"));\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn token_url(&self) -> &str {
                &self.endpoint.url
            }

            /// The scopes asked for.
            ///
            #[doc = concat!("```\n", $setup, ";\nassert!(auth.scopes().is_empty());\n# Ok::<(), en_core_auth::Error>(())\n```")]
            pub fn scopes(&self) -> &[String] {
                &self.endpoint.scopes
            }
        }
    };
}
pub(crate) use common_settings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_follows_the_servers_list() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let pick = |names: &[&str]| preferred_auth(&list(names));
        assert!(matches!(pick(&[]), Ok(ClientAuth::SecretBasic)));
        assert!(matches!(
            pick(&["client_secret_post", "client_secret_basic"]),
            Ok(ClientAuth::SecretBasic)
        ));
        assert!(matches!(
            pick(&["private_key_jwt", "client_secret_post"]),
            Ok(ClientAuth::SecretPost)
        ));
        assert!(matches!(
            pick(&["tls_client_auth", "private_key_jwt"]),
            Ok(ClientAuth::TlsClientAuth)
        ));
        let err = pick(&["private_key_jwt"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.to_string().contains("private_key_jwt"), "{err}");
    }

    #[test]
    fn every_grant_has_its_own_cache_key() {
        use super::super::{
            AuthorizationCode, ClientCredentials, DeviceCode, JwtBearer, RefreshToken,
            TokenExchange,
        };
        use crate::Authorizer;

        let (base, token) = ("https://idp.example.com", "https://idp.example.com/token");
        let client = || ClientInfo::new("app", "");
        let login = || {
            AuthorizationCode::new(client(), format!("{base}/authorize"), token)
                .unwrap()
                .with_scopes(["openid"])
        };
        let device = || DeviceCode::new(client(), format!("{base}/device"), token).unwrap();
        let exchange =
            || TokenExchange::new(client(), token, || Ok("s".into()), TokenExchange::JWT).unwrap();
        let keys = [
            login().credential_set(),
            // The scope goes in the authorization URL, and still tells logins apart.
            login().with_scopes(["openid", "admin"]).credential_set(),
            login()
                .with_authorization_parameter("audience", "orders")
                .credential_set(),
            login()
                .with_parameter("resource", "orders")
                .credential_set(),
            device().credential_set(),
            device().with_scopes(["offline_access"]).credential_set(),
            DeviceCode::new(client(), format!("{base}/device2"), token)
                .unwrap()
                .credential_set(),
            exchange().credential_set(),
            exchange().with_audience("orders").credential_set(),
            exchange().with_resource("https://orders").credential_set(),
            exchange()
                .with_requested_token_type(TokenExchange::ACCESS_TOKEN)
                .credential_set(),
            TokenExchange::new(client(), token, || Ok("s".into()), TokenExchange::ID_TOKEN)
                .unwrap()
                .credential_set(),
            JwtBearer::new(client(), token, || Ok("a".into()))
                .unwrap()
                .credential_set(),
            JwtBearer::new(client(), token, || Ok("a".into()))
                .unwrap()
                .with_scopes(["read"])
                .credential_set(),
            ClientCredentials::new(client(), token)
                .unwrap()
                .credential_set(),
            RefreshToken::new(client(), token, "rt")
                .unwrap()
                .credential_set(),
        ]
        .map(|set| set.cache_key().as_hex().to_owned());
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:#?}");
        // The same configuration gives the same key, in another process too.
        assert_eq!(
            login().credential_set().cache_key(),
            login().credential_set().cache_key()
        );
        assert_eq!(
            exchange().credential_set().cache_key(),
            exchange().credential_set().cache_key()
        );
    }

    #[test]
    fn reserved_parameters_are_not_replaced() {
        let mut endpoint = TokenEndpoint::new(ClientInfo::new("id", "s"), "https://x/t".into());
        endpoint.add_parameter("grant_type".into(), "password".into());
        endpoint.add_parameter("client_id".into(), "someone-else".into());
        endpoint.add_parameter("audience".into(), "https://api.example.com".into());
        assert_eq!(
            endpoint.parameters,
            vec![("audience".to_owned(), "https://api.example.com".to_owned())]
        );
    }

    #[test]
    fn debug_shows_no_parameter_values() {
        let mut endpoint =
            TokenEndpoint::new(ClientInfo::new("id", "s3cr3t"), "https://x/t".into());
        endpoint.add_parameter("resource".into(), "v4lu3".into());
        let shown = format!("{endpoint:?}");
        assert!(shown.contains("resource"));
        assert!(!shown.contains("v4lu3") && !shown.contains("s3cr3t"));
    }
}
