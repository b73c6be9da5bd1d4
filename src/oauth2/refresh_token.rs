//! The refresh token grant (RFC 6749 §6) for a refresh token obtained elsewhere.

use std::fmt;

use super::endpoint::{Builder, TokenEndpoint, common_settings};
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

/// An [`Authorizer`] that gets access tokens with a refresh token obtained elsewhere (a
/// user's login in a browser, a device flow, a token file), using
/// `grant_type=refresh_token`.
///
/// When the server rotates refresh tokens (returns a new one with each access token), the
/// newest is kept and used next; [`refresh_token`](RefreshToken::refresh_token) gives it
/// to you for storing. A refresh token the server refuses
/// ([`CredentialsRejected`](crate::ErrorKind::CredentialsRejected), usually
/// `invalid_grant`) cannot be recovered from here: the user has to log in again, and this
/// authorizer fails at once, without sending it again. A refresh token is sent twice only
/// when the first request surely never reached the server (connection refused, or a
/// 429/503 with `Retry-After`): after a lost answer the server may have rotated it, and
/// servers with reuse detection (Auth0, Okta) revoke the whole session when an old one
/// comes back.
///
/// `Debug` redacts the refresh token.
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::RefreshToken};
///
/// let auth = RefreshToken::new(
///     ClientInfo::new("my-app", ""),
///     "https://idp.example.com/oauth2/token",
///     "stored-refresh-token",
/// )?;
/// assert!(!format!("{auth:?}").contains("stored-refresh-token"));
/// let middleware = AuthMiddleware::new(auth);
/// # let _ = middleware;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct RefreshToken {
    endpoint: TokenEndpoint,
    refresh_token: String,
    /// A shared store recorded that the newest refresh token of this credential set was
    /// sent and may be used up: the configured one (traded long ago) is never sent again.
    spent_in_store: bool,
}

impl RefreshToken {
    /// An authorizer that trades `refresh_token` for access tokens at `token_url`.
    ///
    /// # Errors
    ///
    /// [`Configuration`](crate::ErrorKind::Configuration) when the client id or the refresh
    /// token is empty, or the URL is not `https` (loopback `http` is accepted; for others
    /// see [`builder`](RefreshToken::builder)).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind, oauth2::RefreshToken};
    /// let client = ClientInfo::new("app", "");
    /// assert!(RefreshToken::new(client.clone(), "https://idp.example.com/token", "rt").is_ok());
    /// let err = RefreshToken::new(client, "https://idp.example.com/token", "").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn new(
        client_info: ClientInfo,
        token_url: impl Into<String>,
        refresh_token: impl Into<String>,
    ) -> Result<Self, Error> {
        RefreshToken::builder(client_info, refresh_token)
            .token_url(token_url)
            .build()
    }

    /// A [`Builder`] for the cases `new` doesn't cover: discovery from an issuer, a
    /// plain-HTTP URL that is not loopback, your own [`HttpClient`](crate::http::HttpClient).
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::RefreshToken};
    /// let auth = RefreshToken::builder(ClientInfo::new("app", ""), "stored-refresh-token")
    ///     .issuer("https://idp.example.com")
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(
        client_info: ClientInfo,
        refresh_token: impl Into<String>,
    ) -> Builder<RefreshToken> {
        let refresh_token = refresh_token.into();
        Builder::new(client_info, move |endpoint| {
            if refresh_token.trim().is_empty() {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "the refresh token is empty",
                ));
            }
            Ok(RefreshToken {
                endpoint,
                refresh_token,
                spent_in_store: false,
            })
        })
    }

    /// The refresh token that will be used next: the one given, or the newest the server
    /// rotated to. It is a secret; store it as carefully as a password.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::RefreshToken};
    /// let auth = RefreshToken::new(ClientInfo::new("app", ""), "https://idp.example.com/token", "rt")?;
    /// assert_eq!(auth.refresh_token(), "rt");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    fn exchange(&mut self, refresh_token: &str) -> Result<Token, Error> {
        if self.spent_in_store {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "the newest refresh token was sent by another process (or an earlier run) \
                 whose answer was lost, and the server may have rotated it: it is not sent \
                 again, nor the older one configured here; a new login is needed",
            ));
        }
        let scope = self.endpoint.scope();
        let token = self.endpoint.refresh(refresh_token, scope.as_deref())?;
        if let Some(newest) = token.refresh_token() {
            self.refresh_token = newest.to_owned();
        }
        Ok(token)
    }
}

common_settings!(
    RefreshToken,
    "use en_core_auth::{ClientInfo, oauth2::RefreshToken};\nlet auth = RefreshToken::new(ClientInfo::new(\"app\", \"s\"), \"https://idp.example.com/token\", \"rt\")?"
);

impl Authorizer for RefreshToken {
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

    /// Trades the newest refresh token this authorizer knows for an access token. This is
    /// no login: once the server refused that refresh token (`invalid_grant`), or the
    /// answer to its last use was lost, it is not sent again, and this fails at once with
    /// [`CredentialsRejected`](ErrorKind::CredentialsRejected) (the server's refusal as
    /// the source, if it gave one). So the middleware's fallback after a refused refresh
    /// costs no second request, and a rotated-away token is never replayed.
    fn authorize(&mut self) -> Result<Token, Error> {
        let refresh_token = self.refresh_token.clone();
        self.exchange(&refresh_token)
    }

    /// Trades the token's refresh token (which may be newer than ours, when the token came
    /// from a store another process wrote) or else ours, under the same rules as
    /// [`authorize`](RefreshToken::authorize).
    ///
    /// A token from a shared store that records its refresh token as spent (sent by a
    /// process whose answer was lost) ends this authorizer's use: neither that refresh token
    /// nor the configured one, which the store's lineage traded long ago, is sent again.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        if token.refresh_spent() && token.refresh_token().is_none() {
            self.spent_in_store = true;
        }
        let refresh_token = token
            .refresh_token()
            .unwrap_or(&self.refresh_token)
            .to_owned();
        self.exchange(&refresh_token)
    }

    /// The grant, token URL, client, extra parameters, scopes, and (hashed) the refresh
    /// token this authorizer was given: two users' refresh tokens never share a token.
    fn credential_set(&self) -> crate::store::CredentialSet {
        self.endpoint
            .credential_set("refresh_token")
            .private_value("refresh_token", &self.refresh_token)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("endpoint", &self.endpoint)
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}
