//! Token exchange (RFC 8693): trading a token from elsewhere (a CI job's OIDC token, a
//! Kubernetes service-account token) for an access token.

use std::fmt;

use super::endpoint::{Builder, Resend, TokenEndpoint, common_settings};
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Where the subject token comes from: called for every new token.
type Source = Box<dyn FnMut() -> Result<String, Error> + Send>;

/// An [`Authorizer`] for OAuth 2.0 token exchange (RFC 8693): each token is obtained by
/// sending a *subject token* (who the client acts for) with
/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, for workload identity: a
/// CI job's OIDC token, read from a file or an environment variable, traded for an API
/// token; a Kubernetes service-account token traded for a cloud token.
///
/// The subject token comes from a closure, called for every new token, since the token it
/// reads may have been rotated (a projected service-account token is rewritten every hour).
/// An error from the closure is returned as it is, and nothing is sent.
///
/// The token the server issues must be usable as an access token: a `token_type` of `N_A`
/// (RFC 8693 §2.2.1: the issued token is not an access token, e.g. an ID token asked for
/// with `requested_token_type`) is a
/// [`MalformedResponse`](crate::ErrorKind::MalformedResponse) error.
///
/// The closure is usually a [`TokenSource`](super::TokenSource)'s, which reads a file the
/// platform rotates, a variable, GitHub Actions' token or a command afresh every time:
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::{TokenExchange, TokenSource}};
///
/// // A projected Kubernetes service-account token, rewritten by the kubelet every hour.
/// let source = TokenSource::file("/var/run/secrets/tokens/sts-token");
/// let auth = TokenExchange::new(
///     ClientInfo::new("ci-deployer", ""),
///     "https://sts.example.com/oauth2/token",
///     move || source.token(),
///     TokenExchange::JWT,
/// )?
/// .with_audience("https://api.example.com")
/// .with_scopes(["deploy"]);
/// let middleware = AuthMiddleware::new(auth);
/// # let _ = middleware;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct TokenExchange {
    endpoint: TokenEndpoint,
    subject_token: Source,
    subject_token_type: String,
    audiences: Vec<String>,
    resources: Vec<String>,
    requested_token_type: Option<String>,
}

impl TokenExchange {
    /// `urn:ietf:params:oauth:token-type:jwt`: a JWT (an OIDC token from a CI system or
    /// Kubernetes).
    pub const JWT: &'static str = "urn:ietf:params:oauth:token-type:jwt";
    /// `urn:ietf:params:oauth:token-type:id_token`: an OpenID Connect ID token.
    pub const ID_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:id_token";
    /// `urn:ietf:params:oauth:token-type:access_token`: an OAuth 2.0 access token.
    pub const ACCESS_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:access_token";
    /// `urn:ietf:params:oauth:token-type:refresh_token`: an OAuth 2.0 refresh token.
    pub const REFRESH_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:refresh_token";

    /// An authorizer that trades the token `subject_token` gives, of type
    /// `subject_token_type` (one of the constants above, or another URI the server knows),
    /// at `token_url`.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for an empty client id or token type,
    /// or a URL that is not `https` (loopback `http` accepted; for others see
    /// [`builder`](TokenExchange::builder)).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind, oauth2::{TokenExchange, TokenSource}};
    /// // Read afresh for every token: the kubelet rewrites the file before it expires.
    /// let source = TokenSource::file("/var/run/secrets/tokens/sts");
    /// let from_file = move || source.token();
    /// let auth = TokenExchange::new(
    ///     ClientInfo::new("workload", ""),
    ///     "https://sts.example.com/token",
    ///     from_file.clone(),
    ///     TokenExchange::JWT,
    /// );
    /// assert!(auth.is_ok());
    /// let err = TokenExchange::new(ClientInfo::new("w", ""), "https://sts.example.com/token", from_file, "")
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn new(
        client_info: ClientInfo,
        token_url: impl Into<String>,
        subject_token: impl FnMut() -> Result<String, Error> + Send + 'static,
        subject_token_type: &str,
    ) -> Result<Self, Error> {
        TokenExchange::builder(client_info, subject_token, subject_token_type)
            .token_url(token_url)
            .build()
    }

    /// A [`Builder`] for the cases `new` doesn't cover: discovery from an issuer, a
    /// plain-HTTP URL that is not loopback, your own [`HttpClient`](crate::http::HttpClient).
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::TokenExchange};
    /// let auth = TokenExchange::builder(
    ///     ClientInfo::new("workload", ""),
    ///     || Ok(std::env::var("SUBJECT_TOKEN").unwrap_or_default()),
    ///     TokenExchange::ACCESS_TOKEN,
    /// )
    /// .issuer("https://sts.example.com")
    /// .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(
        client_info: ClientInfo,
        subject_token: impl FnMut() -> Result<String, Error> + Send + 'static,
        subject_token_type: &str,
    ) -> Builder<TokenExchange> {
        let subject_token_type = subject_token_type.trim().to_owned();
        Builder::new(client_info, move |endpoint| {
            if subject_token_type.is_empty() {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "the subject token type is empty (e.g. TokenExchange::JWT)",
                ));
            }
            Ok(TokenExchange {
                endpoint,
                subject_token: Box::new(subject_token),
                subject_token_type,
                audiences: Vec::new(),
                resources: Vec::new(),
                requested_token_type: None,
            })
        })
    }

    /// Asks for a token for this audience (`audience`, the logical name of the service
    /// that will take it). May be given more than once.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::TokenExchange};
    /// let auth = TokenExchange::new(ClientInfo::new("w", ""), "https://sts.example.com/token",
    ///     || Ok("subject".to_owned()), TokenExchange::JWT)?
    ///     .with_audience("orders-api");
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Asks for a token for this resource (`resource`, the URI of the service, RFC 8707).
    /// May be given more than once.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::TokenExchange};
    /// let auth = TokenExchange::new(ClientInfo::new("w", ""), "https://sts.example.com/token",
    ///     || Ok("subject".to_owned()), TokenExchange::JWT)?
    ///     .with_resource("https://api.example.com/orders");
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Asks for a token of this type (`requested_token_type`, e.g.
    /// [`ACCESS_TOKEN`](TokenExchange::ACCESS_TOKEN)). The issued token must still be
    /// usable as an access token.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::TokenExchange};
    /// let auth = TokenExchange::new(ClientInfo::new("w", ""), "https://sts.example.com/token",
    ///     || Ok("subject".to_owned()), TokenExchange::JWT)?
    ///     .with_requested_token_type(TokenExchange::ACCESS_TOKEN);
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }
}

common_settings!(
    TokenExchange,
    "use en_core_auth::{ClientInfo, oauth2::TokenExchange};\nlet auth = TokenExchange::new(ClientInfo::new(\"w\", \"\"), \"https://sts.example.com/token\", || Ok(\"subject\".to_owned()), TokenExchange::JWT)?"
);

/// A credential from a closure, checked before it is sent.
pub(crate) fn fresh(source: &mut Source, what: &str) -> Result<String, Error> {
    let value = source()?;
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("the {what} closure gave an empty token"),
        ));
    }
    Ok(value.to_owned())
}

impl Authorizer for TokenExchange {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// The grant, token URL, client, extra parameters, scopes, the subject token type,
    /// the audiences, resources and requested token type. Not the subject token: it comes
    /// from the closure and rotates, so two authorizers that differ only in where their
    /// subject token comes from (two service accounts' token files) share a key: add
    /// what tells them apart, as in
    /// `auth.credential_set().param("workload", "billing").cache_key()`.
    fn credential_set(&self) -> crate::store::CredentialSet {
        let set = self
            .endpoint
            .credential_set(GRANT_TYPE)
            .param("subject_token_type", &self.subject_token_type);
        let set = self
            .audiences
            .iter()
            .fold(set, |set, audience| set.param("audience", audience));
        let set = self
            .resources
            .iter()
            .fold(set, |set, resource| set.param("resource", resource));
        match &self.requested_token_type {
            Some(kind) => set.param("requested_token_type", kind),
            None => set,
        }
    }

    /// Calls the subject-token closure and trades what it gives. `refresh` does the same
    /// (the default), so every new token starts from a fresh subject token.
    fn authorize(&mut self) -> Result<Token, Error> {
        let subject_token = fresh(&mut self.subject_token, "subject token")?;
        let scope = self.endpoint.scope();
        let mut grant = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject_token.as_str()),
            ("subject_token_type", self.subject_token_type.as_str()),
        ];
        grant.extend(self.audiences.iter().map(|a| ("audience", a.as_str())));
        grant.extend(self.resources.iter().map(|r| ("resource", r.as_str())));
        if let Some(kind) = &self.requested_token_type {
            grant.push(("requested_token_type", kind));
        }
        if let Some(scope) = &scope {
            grant.push(("scope", scope));
        }
        self.endpoint.request(&grant, Resend::Freely)
    }
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("endpoint", &self.endpoint)
            .field("subject_token_type", &self.subject_token_type)
            .field("audiences", &self.audiences)
            .field("resources", &self.resources)
            .field("requested_token_type", &self.requested_token_type)
            .finish_non_exhaustive()
    }
}
