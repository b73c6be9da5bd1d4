//! The client credentials grant (RFC 6749 §4.4): a service authenticates as itself.

use std::time::Duration;

use super::client_auth::ClientAuth;
use super::endpoint::{Builder, TokenEndpoint, scope_list};
use crate::http::HttpClient;
use crate::{Authorizer, ClientInfo, Error, Token};

/// An [`Authorizer`] for the OAuth 2.0 client credentials grant: a service holding a
/// client id and secret gets tokens for itself, from AWS Cognito's `/oauth2/token` or any
/// RFC 6749 server.
///
/// - [`authorize`](Authorizer::authorize) asks for a token with
///   `grant_type=client_credentials`, the scopes and the extra parameters.
/// - [`refresh`](Authorizer::refresh) uses the token's refresh token when the server issued
///   one (most don't for this grant) and otherwise asks for a new token. It never falls
///   back by itself: when a refresh token is refused
///   ([`CredentialsRejected`](crate::ErrorKind::CredentialsRejected)),
///   [`AuthMiddleware`](crate::AuthMiddleware) calls `authorize` once.
///
/// Requests have the timeouts, retries and size cap of the [`HttpClient`] (by default:
/// connect 10 s, whole request 30 s, four attempts within 15 s, 1 MiB); a rejected
/// credential is never retried.
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::ClientCredentials};
///
/// let client = ClientInfo::new("my-client", "my-secret");
/// let auth = ClientCredentials::new(client, "https://idp.example.com/oauth2/token")?
///     .with_scopes(["orders/read", "orders/write"])
///     .with_parameter("audience", "https://api.example.com");
/// let middleware = AuthMiddleware::new(auth);
/// # let _ = middleware;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    scopes: Vec<String>,
}

impl ClientCredentials {
    /// An authorizer that asks `token_url` for tokens.
    ///
    /// # Errors
    ///
    /// [`Configuration`](crate::ErrorKind::Configuration) when the client id is empty or
    /// the URL is not an absolute `https` URL (plain `http` is accepted for loopback hosts;
    /// for others see [`builder`](ClientCredentials::builder)).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind, oauth2::ClientCredentials};
    ///
    /// let client = ClientInfo::new("id", "s");
    /// assert!(ClientCredentials::new(client.clone(), "https://idp.example.com/oauth2/token").is_ok());
    /// assert!(ClientCredentials::new(client.clone(), "http://127.0.0.1:8080/token").is_ok());
    /// let err = ClientCredentials::new(client, "http://idp.example.com/token").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn new(client_info: ClientInfo, token_url: impl Into<String>) -> Result<Self, Error> {
        ClientCredentials::builder(client_info)
            .token_url(token_url)
            .build()
    }

    /// An authorizer for the server whose issuer identifier is `issuer_url`: its token
    /// endpoint comes from its metadata, OpenID Connect Discovery
    /// (`{issuer}/.well-known/openid-configuration`) or else RFC 8414
    /// (`/.well-known/oauth-authorization-server`). The metadata must name the same issuer,
    /// and its token endpoint must pass the same checks as in [`new`](ClientCredentials::new).
    /// When the metadata lists `client_secret_post` and not `client_secret_basic`, the
    /// client authenticates with `client_secret_post`.
    ///
    /// # Errors
    ///
    /// [`Configuration`](crate::ErrorKind::Configuration) for a bad issuer URL, no metadata
    /// (every URL answered 4xx), or metadata for another issuer;
    /// [`MalformedResponse`](crate::ErrorKind::MalformedResponse) for metadata without a
    /// token endpoint; [`Transport`](crate::ErrorKind::Transport) or
    /// [`Server`](crate::ErrorKind::Server) when the server could not be asked.
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::discover(
    ///     ClientInfo::new("id", "s"),
    ///     "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    /// )?;
    /// println!("tokens from {}", auth.token_url());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn discover(client_info: ClientInfo, issuer_url: impl Into<String>) -> Result<Self, Error> {
        ClientCredentials::builder(client_info)
            .issuer(issuer_url)
            .build()
    }

    /// A [`Builder`] for the cases `new` and `discover` don't cover: a plain-HTTP URL that
    /// is not loopback, discovery through your own [`HttpClient`].
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::builder(ClientInfo::new("id", "s"))
    ///     .token_url("http://idp.lab.internal/token")
    ///     .allow_insecure_http()
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(client_info: ClientInfo) -> Builder<ClientCredentials> {
        Builder::new(client_info, |endpoint| {
            Ok(ClientCredentials {
                endpoint,
                scopes: Vec::new(),
            })
        })
    }

    /// Asks for these scopes (sent space-separated as `scope`). Replaces earlier scopes;
    /// empty strings are dropped.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
    ///     .with_scopes(vec!["read".to_string(), "write".to_string()]);
    /// assert_eq!(auth.scopes(), ["read", "write"]);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scope_list(scopes);
        self
    }

    /// Adds a form parameter to every token request, such as `audience` (Auth0, Okta) or
    /// `resource` (RFC 8707). A parameter may be given more than once (several
    /// `resource`s). Names the grant sets itself (`grant_type`, `scope`, `client_id`,
    /// `client_secret`, `refresh_token`, `client_assertion`, `client_assertion_type`) are
    /// ignored, with a warning in the log: use [`with_scopes`](Self::with_scopes) for scopes.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
    ///     .with_parameter("resource", "https://api.example.com/");
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.endpoint.add_parameter(name.into(), value.into());
        self
    }

    /// Sets how the client authenticates (default: `client_secret_basic`).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::{ClientAuth, ClientCredentials}};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
    ///     .with_client_auth(ClientAuth::SecretPost);
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_client_auth(mut self, auth: ClientAuth) -> Self {
        self.endpoint.auth = auth;
        self
    }

    /// Sets the HTTP client for token requests: timeouts, retries, size cap, your own
    /// agent (see [`HttpClient`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{ClientInfo, http::{HttpClient, RetryPolicy}, oauth2::ClientCredentials};
    /// let http = HttpClient::new()
    ///     .with_timeouts(Duration::from_secs(3), Duration::from_secs(10))
    ///     .with_retry(RetryPolicy::none());
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
    ///     .with_http_client(http);
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.endpoint.http = http;
        self
    }

    /// Sets the lifetime assumed when the server states none: no `expires_in`, and the
    /// access token is not a JWT with an `exp` claim. The default,
    /// [`DEFAULT_LIFETIME`](super::DEFAULT_LIFETIME), is five minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
    ///     .with_default_lifetime(Duration::from_secs(3600));
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_default_lifetime(mut self, lifetime: Duration) -> Self {
        self.endpoint.default_lifetime = lifetime;
        self
    }

    /// The token endpoint's URL (the one found, after discovery).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?;
    /// assert_eq!(auth.token_url(), "https://idp.example.com/token");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_url(&self) -> &str {
        &self.endpoint.url
    }

    /// The scopes asked for.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::ClientCredentials};
    /// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?;
    /// assert!(auth.scopes().is_empty());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl Authorizer for ClientCredentials {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    /// Revokes at the discovered revocation endpoint (RFC 7009), if any.
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        super::revocation::revoke_discovered(&self.endpoint, token)
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        let scope = self.scopes.join(" ");
        let mut grant = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            grant.push(("scope", &scope));
        }
        self.endpoint.request(&grant)
    }

    /// The grant, token URL, client, extra parameters (`audience`, `resource`) and scopes.
    fn credential_set(&self) -> crate::store::CredentialSet {
        self.endpoint
            .parameters
            .iter()
            .fold(
                crate::store::CredentialSet::new("client_credentials", &self.endpoint.url)
                    .client(&self.endpoint.client),
                |set, (name, value)| set.param(name, value),
            )
            .scopes(&self.scopes)
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        match token.refresh_token() {
            // No scope on refresh: the server grants the original scope (RFC 6749 §6).
            Some(refresh_token) => self.endpoint.refresh(refresh_token, &[]),
            None => self.authorize(),
        }
    }
}
