//! The token endpoint as both grants use it: where it is, how the client authenticates,
//! and one token request with its retries. Also the builder through which either grant is
//! set up when the defaults (HTTPS, the default HTTP client) don't fit.

use std::fmt;
use std::time::Duration;

use super::client_auth::ClientAuth;
use super::discovery;
use super::response;
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
    "scope",
    "refresh_token",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// Scope names as given, empty ones dropped.
pub(crate) fn scope_list(scopes: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    scopes
        .into_iter()
        .map(Into::into)
        .filter(|scope: &String| !scope.is_empty())
        .collect()
}

/// A token endpoint and the client that talks to it.
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) client: ClientInfo,
    pub(crate) url: String,
    pub(crate) auth: ClientAuth,
    pub(crate) http: HttpClient,
    pub(crate) default_lifetime: Duration,
    pub(crate) parameters: Vec<(String, String)>,
    /// The issuer's metadata when the endpoint was discovered: the interactive flows and
    /// logout read their other endpoints from it.
    pub(crate) metadata: Option<discovery::Metadata>,
    /// Whether plain-HTTP URLs to hosts other than loopback were allowed, so that the
    /// other endpoints follow the same rule as this one.
    pub(crate) allow_insecure_http: bool,
}

impl TokenEndpoint {
    pub(crate) fn new(client: ClientInfo, url: String) -> TokenEndpoint {
        TokenEndpoint {
            client,
            url,
            auth: ClientAuth::default(),
            http: HttpClient::new(),
            default_lifetime: DEFAULT_LIFETIME,
            parameters: Vec::new(),
            metadata: None,
            allow_insecure_http: false,
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

    /// One token request (with retries): `grant` fields, then the extra parameters, then
    /// the client's credentials. Logs the URL and statuses, never the form.
    pub(crate) fn request(&self, grant: &[(&str, &str)]) -> Result<Token, Error> {
        self.http.with_retries(|| {
            let credentials = match self.auth.credentials(&self.client, &self.url) {
                Ok(credentials) => credentials,
                Err(error) => return Attempt::Done(Err(error)),
            };
            // Some servers (GitHub's among them) answer in form encoding unless asked.
            let headers: Vec<(&str, &str)> = std::iter::once(("accept", "application/json"))
                .chain(
                    credentials
                        .headers
                        .iter()
                        .map(|(name, value)| (*name, value.as_str())),
                )
                .collect();
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
            let reply = match HttpClient::retry_transport(
                self.http.post_form(&self.url, &headers, &form),
            ) {
                Ok(reply) => reply,
                Err(attempt) => return attempt,
            };
            log::debug!("token endpoint {} answered HTTP {}", self.url, reply.status);
            response::classify(&reply, self.default_lifetime)
        })
    }

    /// A `refresh_token` grant (RFC 6749 §6). When the server issues no new refresh token,
    /// the one used stays valid and is kept on the returned token.
    pub(crate) fn refresh(&self, refresh_token: &str, scopes: &[String]) -> Result<Token, Error> {
        let scope = scopes.join(" ");
        let mut grant = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if !scope.is_empty() {
            grant.push(("scope", &scope));
        }
        let token = self.request(&grant)?;
        Ok(match token.refresh_token() {
            Some(_) => token,
            None => token.with_refresh_token(refresh_token),
        })
    }
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parameter_names: Vec<&str> = self.parameters.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TokenEndpoint")
            .field("client", &self.client)
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("default_lifetime", &self.default_lifetime)
            .field("parameters", &parameter_names)
            .finish_non_exhaustive()
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
        let mut discovered = None;
        let (url, auth) = match self.location {
            Location::Unset => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "no token URL or issuer was given",
                ));
            }
            Location::TokenUrl(url) => {
                check_endpoint(&url, self.allow_insecure_http)?;
                (url, self.auth.unwrap_or_default())
            }
            Location::Issuer(issuer) => {
                let metadata = discovery::discover(&http, &issuer, self.allow_insecure_http)?;
                let auth = self
                    .auth
                    .unwrap_or_else(|| preferred_auth(&metadata.auth_methods));
                let url = metadata.token_endpoint.clone();
                discovered = Some(metadata);
                (url, auth)
            }
        };
        let mut endpoint = TokenEndpoint::new(self.client, url);
        endpoint.http = http;
        endpoint.auth = auth;
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

/// `client_secret_basic` unless the server's list leaves it out and has
/// `client_secret_post`.
fn preferred_auth(methods: &[String]) -> ClientAuth {
    let lists = |name: &str| methods.iter().any(|m| m == name);
    if !lists("client_secret_basic") && lists("client_secret_post") {
        ClientAuth::SecretPost
    } else {
        ClientAuth::SecretBasic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_follows_the_servers_list() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            preferred_auth(&list(&[])),
            ClientAuth::SecretBasic
        ));
        assert!(matches!(
            preferred_auth(&list(&["client_secret_post", "client_secret_basic"])),
            ClientAuth::SecretBasic
        ));
        assert!(matches!(
            preferred_auth(&list(&["private_key_jwt", "client_secret_post"])),
            ClientAuth::SecretPost
        ));
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
