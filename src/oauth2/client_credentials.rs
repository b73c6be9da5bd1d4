//! The client credentials grant (RFC 6749 §4.4): a service authenticates as itself.

use super::endpoint::{Builder, Resend, TokenEndpoint, common_settings};
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
/// Requests have the timeouts, retries and size cap of the
/// [`HttpClient`](crate::http::HttpClient) (by default: connect 10 s, each later step 30 s,
/// four attempts within 15 s, 1 MiB); a rejected credential is never retried, and a
/// refresh grant only when it surely never reached the server.
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
    /// The client authenticates with `client_secret_basic` when the metadata lists it (or
    /// lists nothing), else `client_secret_post`, else `tls_client_auth`; a server that
    /// lists only key-based methods needs [`builder`](ClientCredentials::builder) with a
    /// [`ClientAuth`](super::ClientAuth). `private_key_jwt` assertions are then addressed
    /// to the issuer.
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
    /// is not loopback, discovery through your own
    /// [`HttpClient`](crate::http::HttpClient).
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
        Builder::new(client_info, |endpoint| Ok(ClientCredentials { endpoint }))
    }
}

common_settings!(
    ClientCredentials,
    "use en_core_auth::{ClientInfo, oauth2::ClientCredentials};\nlet auth = ClientCredentials::new(ClientInfo::new(\"id\", \"s\"), \"https://idp.example.com/token\")?",
    "The refresh token this grant rarely gets is used without them: the server then grants \
     the original scope (RFC 6749 §6)."
);

impl Authorizer for ClientCredentials {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// Revokes at the discovered revocation endpoint (RFC 7009), if any.
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        super::revocation::revoke_discovered(&self.endpoint, token)
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        let scope = self.endpoint.scope();
        let mut grant = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &scope {
            grant.push(("scope", scope));
        }
        self.endpoint.request(&grant, Resend::Freely)
    }

    /// The grant, token URL, client, extra parameters (`audience`, `resource`) and scopes.
    fn credential_set(&self) -> crate::store::CredentialSet {
        self.endpoint.credential_set("client_credentials")
    }

    /// Uses the token's refresh token when the server issued one, else asks for a new
    /// token. A refresh token whose last use went unanswered is not sent again (the
    /// server may have rotated it): a new token is asked for instead.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        match token.refresh_token() {
            // No scope on refresh: the server grants the original scope (RFC 6749 §6).
            Some(refresh_token) if !self.endpoint.is_spent(refresh_token) => {
                self.endpoint.refresh(refresh_token, None)
            }
            _ => self.authorize(),
        }
    }
}
