//! The [`Authorizer`] trait: how a token is obtained and renewed for one service.

use crate::store::CredentialSet;
use crate::{ClientInfo, Error, Token};

/// Obtains and renews tokens for one identity provider (reference: `en_core.auth.base`,
/// class `Authorizer`).
///
/// An authorizer only talks to the identity provider. When to call it (once for the first
/// token, again before the token expires, again after a `401`), single flight across
/// threads, and putting the token in headers are the job of
/// [`AuthMiddleware`](crate::AuthMiddleware), which holds the authorizer behind a lock:
/// methods take `&mut self` and are never called concurrently.
///
/// Implement [`authorize`](Authorizer::authorize) and [`client_info`](Authorizer::client_info);
/// override [`refresh`](Authorizer::refresh) when the service has a cheaper way to renew
/// than logging in again, and [`expired`](Authorizer::expired) when the service knows
/// better than the token's expiry time.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
///
/// /// A service that hands out day-long tokens for an API key.
/// struct LicenseServer {
///     client: ClientInfo,
/// }
///
/// impl Authorizer for LicenseServer {
///     fn client_info(&self) -> &ClientInfo {
///         &self.client
///     }
///
///     fn authorize(&mut self) -> Result<Token, Error> {
///         // A real authorizer calls its identity provider here.
///         Ok(Token::new("token-for-".to_owned() + self.client.client_id())
///             .with_expires_in(Duration::from_secs(24 * 3600)))
///     }
/// }
///
/// let auth = AuthMiddleware::new(LicenseServer { client: ClientInfo::new("me", "secret") });
/// assert_eq!(auth.access_token()?, "token-for-me");
/// # Ok::<(), Error>(())
/// ```
pub trait Authorizer: Send {
    /// The client's credentials; the middleware reads the client id and API key from here.
    fn client_info(&self) -> &ClientInfo;

    /// Obtains a new token from scratch: a login, a client-credentials grant.
    ///
    /// Errors should carry the [`ErrorKind`](crate::ErrorKind) that tells the middleware
    /// what to do: [`Transport`](crate::ErrorKind::Transport) and
    /// [`Server`](crate::ErrorKind::Server) mean "try again later".
    fn authorize(&mut self) -> Result<Token, Error>;

    /// Whether `token` must no longer be used. The default says so once its expiry has
    /// passed; the middleware already renews ahead of expiry on its own, so override this
    /// only when the service can tell more (a revocation list, a usage count).
    ///
    /// It is called whenever a token is about to be used (unless the authorizer is busy
    /// renewing: then the token it replaces stays in use until it is done, or it declares
    /// [`expiry_by_time_only`](Authorizer::expiry_by_time_only)), so it must be cheap and
    /// must not do network calls. An override may call another authorizer's
    /// `expired()` and add its own condition: whatever it answers is honoured.
    fn expired(&self, token: &Token) -> bool {
        token.is_expired()
    }

    /// Whether [`expired`](Authorizer::expired) says nothing beyond the token's own expiry
    /// time, which the middleware's deadlines already check. Answering `true` lets the hot
    /// path (a fresh token) skip a lock and a clock read per request; `expired` is still
    /// asked whenever the middleware looks at the token more closely. The default, `false`,
    /// is always correct: `expired` is then asked before each use.
    ///
    /// Answer `true` only when you keep the default `expired` (or yours only calls
    /// [`Token::is_expired`]). A wrapper that overrides `expired` must not pass on the
    /// `true` of the authorizer it wraps. The middleware asks once, when it is built.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    ///
    /// struct DayLong(ClientInfo);
    /// impl Authorizer for DayLong {
    ///     fn client_info(&self) -> &ClientInfo { &self.0 }
    ///     fn authorize(&mut self) -> Result<Token, Error> {
    ///         Ok(Token::new("t").with_expires_in(Duration::from_secs(24 * 3600)))
    ///     }
    ///     // `expired` is the default: the token's expiry time is all there is to know.
    ///     fn expiry_by_time_only(&self) -> bool { true }
    /// }
    ///
    /// let auth = AuthMiddleware::new(DayLong(ClientInfo::new("me", "")));
    /// assert_eq!(auth.access_token()?, "t");
    /// # Ok::<(), Error>(())
    /// ```
    fn expiry_by_time_only(&self) -> bool {
        false
    }

    /// Renews `token`, for example with its refresh token. The default calls
    /// [`authorize`](Authorizer::authorize).
    ///
    /// Don't fall back to a full login inside `refresh`: when `refresh` fails with any kind
    /// but [`Transport`](crate::ErrorKind::Transport) or [`Server`](crate::ErrorKind::Server),
    /// the middleware calls `authorize` once by itself.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let _ = token;
        self.authorize()
    }

    /// Logs out at the identity provider: revokes `token` (its refresh token first, then
    /// the access token) where the provider can, for example at an RFC 7009 revocation
    /// endpoint or with Cognito's `RevokeToken`. The default does nothing and succeeds.
    ///
    /// [`AuthMiddleware::revoke`](crate::AuthMiddleware) calls it, then forgets the token
    /// and clears the token store whatever it returns, so a failure here is reported but
    /// never leaves a token behind.
    ///
    /// ```
    /// use en_core_auth::{Authorizer, ClientInfo, Error, Token};
    ///
    /// struct Static(ClientInfo);
    /// impl Authorizer for Static {
    ///     fn client_info(&self) -> &ClientInfo { &self.0 }
    ///     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("t")) }
    /// }
    ///
    /// let mut auth = Static(ClientInfo::new("id", ""));
    /// assert!(auth.revoke(&Token::new("t")).is_ok());
    /// ```
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        let _ = token;
        Ok(())
    }

    /// Everything that makes this authorizer's tokens differ from another's (grant type,
    /// endpoint, client, user, extra parameters such as `audience`, scopes, a refresh
    /// token it starts from), for the key a [`TokenStore`](crate::store::TokenStore) keeps
    /// them under: `authorizer.credential_set().cache_key()`. The default names the
    /// authorizer's type and its client; override it to add every parameter that changes
    /// the token, or two APIs could be answered with one cached token.
    ///
    /// ```
    /// use en_core_auth::{Authorizer, ClientInfo, oauth2::ClientCredentials};
    ///
    /// let client = ClientInfo::new("app", "secret");
    /// let url = "https://idp.example.com/oauth2/token";
    /// let orders = ClientCredentials::new(client.clone(), url)?.with_parameter("audience", "orders");
    /// let billing = ClientCredentials::new(client, url)?.with_parameter("audience", "billing");
    /// assert_ne!(orders.credential_set().cache_key(), billing.credential_set().cache_key());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    fn credential_set(&self) -> CredentialSet {
        CredentialSet::new(std::any::type_name::<Self>(), "").client(self.client_info())
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Box<A> {
    fn client_info(&self) -> &ClientInfo {
        (**self).client_info()
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        (**self).authorize()
    }
    fn expired(&self, token: &Token) -> bool {
        (**self).expired(token)
    }
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        (**self).refresh(token)
    }
    fn expiry_by_time_only(&self) -> bool {
        (**self).expiry_by_time_only()
    }
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        (**self).revoke(token)
    }
    fn credential_set(&self) -> CredentialSet {
        (**self).credential_set()
    }
}
