//! The JWT bearer grant (RFC 7523 §2.1): a signed assertion from elsewhere is the grant.

use std::fmt;

use super::endpoint::{Builder, Resend, TokenEndpoint, common_settings};
use super::token_exchange::fresh;
use crate::{Authorizer, ClientInfo, Error, Token};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An [`Authorizer`] for the JWT bearer grant (RFC 7523 §2.1): each token is obtained with
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and a JWT `assertion` signed by
/// someone the server trusts: a workload identity token, or an assertion your code signs
/// (Google service accounts, Salesforce, Okta's service apps).
///
/// The assertion comes from a closure, called for every new token (assertions are short-
/// lived and often single-use). An error from the closure is returned as it is, and nothing
/// is sent. The client authenticates as configured (a client with an empty secret sends
/// only its `client_id`, as RFC 7523 allows).
///
/// A [`TokenSource`](super::TokenSource) reads the usual places (a file the platform
/// rotates, a variable, GitHub Actions, a command) afresh for every token:
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::{JwtBearer, TokenSource}};
///
/// let source = TokenSource::file("/run/secrets/assertion.jwt");
/// let auth = JwtBearer::new(
///     ClientInfo::new("svc", ""),
///     "https://idp.example.com/oauth2/token",
///     move || source.token(),
/// )?
/// .with_scopes(["orders/read"]);
/// let middleware = AuthMiddleware::new(auth);
/// # let _ = middleware;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct JwtBearer {
    endpoint: TokenEndpoint,
    assertion: Box<dyn FnMut() -> Result<String, Error> + Send>,
}

impl JwtBearer {
    /// An authorizer that trades the assertions `assertion` gives at `token_url`.
    ///
    /// # Errors
    ///
    /// [`Configuration`](crate::ErrorKind::Configuration) for an empty client id or a URL
    /// that is not `https` (loopback `http` accepted; for others see
    /// [`builder`](JwtBearer::builder)).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::JwtBearer};
    /// let auth = JwtBearer::new(ClientInfo::new("svc", ""), "https://idp.example.com/token",
    ///     || Ok("eyJ...".to_owned()));
    /// assert!(auth.is_ok());
    /// ```
    pub fn new(
        client_info: ClientInfo,
        token_url: impl Into<String>,
        assertion: impl FnMut() -> Result<String, Error> + Send + 'static,
    ) -> Result<Self, Error> {
        JwtBearer::builder(client_info, assertion)
            .token_url(token_url)
            .build()
    }

    /// A [`Builder`] for the cases `new` doesn't cover: discovery from an issuer, a
    /// plain-HTTP URL that is not loopback, your own [`HttpClient`](crate::http::HttpClient).
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::JwtBearer};
    /// let auth = JwtBearer::builder(ClientInfo::new("svc", ""), || Ok("eyJ...".to_owned()))
    ///     .issuer("https://idp.example.com")
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(
        client_info: ClientInfo,
        assertion: impl FnMut() -> Result<String, Error> + Send + 'static,
    ) -> Builder<JwtBearer> {
        Builder::new(client_info, move |endpoint| {
            Ok(JwtBearer {
                endpoint,
                assertion: Box::new(assertion),
            })
        })
    }
}

common_settings!(
    JwtBearer,
    "use en_core_auth::{ClientInfo, oauth2::JwtBearer};\nlet auth = JwtBearer::new(ClientInfo::new(\"svc\", \"\"), \"https://idp.example.com/token\", || Ok(\"eyJ...\".to_owned()))?"
);

impl Authorizer for JwtBearer {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// The grant, token URL, client, extra parameters and scopes. Not the assertion: it
    /// comes from the closure, so two authorizers that differ only in whose assertion
    /// they send share a key: add what tells them apart, as in
    /// `auth.credential_set().param("service_account", "billing").cache_key()`.
    fn credential_set(&self) -> crate::store::CredentialSet {
        self.endpoint.credential_set(GRANT_TYPE)
    }

    /// Calls the assertion closure and sends what it gives. `refresh` does the same (the
    /// default), so every new token has a fresh assertion.
    fn authorize(&mut self) -> Result<Token, Error> {
        let assertion = fresh(&mut self.assertion, "assertion")?;
        let scope = self.endpoint.scope();
        let mut grant = vec![
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ];
        if let Some(scope) = &scope {
            grant.push(("scope", scope));
        }
        // An assertion may be single-use (its `jti`): sent again only when surely unsent.
        self.endpoint.request(&grant, Resend::OnlyIfUnprocessed)
    }
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}
