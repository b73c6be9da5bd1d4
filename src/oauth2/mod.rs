//! OAuth 2.0 (reference: `en_core.auth.oauth2`): tokens from any RFC 6749 authorization
//! server, AWS Cognito's `/oauth2/token` among them.
//!
//! - [`ClientCredentials`]: a service authenticates as itself with its client id and
//!   secret (the client credentials grant). The token URL is given, or found from the
//!   issuer's metadata with [`ClientCredentials::discover`].
//! - [`RefreshToken`]: access tokens from a refresh token obtained elsewhere, following the
//!   server's rotation, and never sending a refresh token twice when the server may have
//!   used it.
//! - [`AuthorizationCode`] and [`DeviceCode`]: a person logs in, with the browser
//!   (authorization code + PKCE, loopback redirect) or a code typed on another device
//!   (RFC 8628); both refresh without asking again and log out with RFC 7009 revocation.
//! - [`TokenExchange`] (RFC 8693) and [`JwtBearer`] (RFC 7523 §2.1): workload identity, a
//!   token or assertion from elsewhere (a CI job's OIDC token, a Kubernetes service-account
//!   token) traded for an access token; a closure gives it afresh for every new token,
//!   usually a [`TokenSource`]'s (`move || source.token()`), which also serves as the
//!   client's own credential with [`ClientAuth::client_assertion`].
//! - With the `jwt` feature, `DpopKey` (RFC 9449): tokens bound to a key held in memory,
//!   worthless when stolen; every authorizer takes one with `with_dpop`.
//!
//! All are [`Authorizer`](crate::Authorizer)s: hand them to
//! [`AuthMiddleware`](crate::AuthMiddleware), which decides when to ask for a token. They
//! share their settings: the token endpoint (or discovery, through each one's `builder`),
//! client authentication ([`ClientAuth`]), scopes, extra parameters, the
//! [`HttpClient`](crate::http::HttpClient), the default lifetime and the DPoP key, set with
//! the same `with_*` methods on each.
//!
//! ```
//! use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::ClientCredentials};
//!
//! let client = ClientInfo::new("my-client", "my-secret");
//! let auth = ClientCredentials::new(client, "https://idp.example.com/oauth2/token")?
//!     .with_scopes(["orders/read"]);
//! let middleware = AuthMiddleware::new(auth);
//! // An agent with your settings (proxy, TLS roots, timeouts), and the middleware on it.
//! let agent: ureq::Agent = middleware.agent(ureq::Agent::config_builder());
//! # let _ = agent;
//! # Ok::<(), en_core_auth::Error>(())
//! ```
//!
//! # What the server's answers mean
//!
//! - A token response (RFC 6749 §5.1) must carry an `access_token` made of visible ASCII
//!   (it goes in a header). Its lifetime is `expires_in` (a number, or a numeric string as
//!   Azure sends; negative or over ten years is refused), else the `exp` claim of a JWT
//!   access token (read, not verified: it only schedules renewal), else
//!   [`DEFAULT_LIFETIME`] (five minutes; see
//!   [`ClientCredentials::with_default_lifetime`]). `token_type` defaults to `Bearer`, in
//!   any case; a type the client cannot use (RFC 6749 §7.1: `N_A`, `DPoP` without a
//!   `DpopKey`, anything else but `Bearer`) is an error, never sent as a bearer token.
//!   `refresh_token`, `id_token` and `scope` are kept on the [`Token`](crate::Token).
//! - An error response (RFC 6749 §5.2) becomes an [`Error`](crate::Error) whose source is
//!   an [`OAuthError`] with the server's `error`, `error_description` and `error_uri`:
//!   `invalid_client`, `invalid_grant`, `unauthorized_client` and `invalid_scope` are
//!   [`CredentialsRejected`](crate::ErrorKind::CredentialsRejected) and never retried;
//!   `invalid_request` and `unsupported_grant_type` are
//!   [`Configuration`](crate::ErrorKind::Configuration); other codes count as rejections
//!   with a 401 or 403 and as configuration errors otherwise.
//! - 5xx, 429 and 408 are [`Server`](crate::ErrorKind::Server) errors, retried with
//!   back-off and jitter (`Retry-After`, in seconds or as a date, honoured up to a cap);
//!   connection failures and timeouts are [`Transport`](crate::ErrorKind::Transport)
//!   errors, retried the same way. See [`HttpClient`](crate::http::HttpClient) for the
//!   timeouts, the retry policy and the response size cap.
//! - A refresh grant (and a JWT bearer assertion) is retried only when it surely never
//!   reached the server: the connection was refused, or a 429 or 503 said when to come
//!   back. After a lost answer the server may have rotated the refresh token, and servers
//!   with reuse detection revoke the whole session when an old one comes back: such a
//!   refresh token, like one the server refused, is never sent again.
//! - `invalid_client` for `client_secret_basic` when no method was chosen: the request is
//!   sent once with `client_secret_post`, which is kept if it works (servers that don't
//!   form-decode Basic credentials).
//! - Anything unparseable is [`MalformedResponse`](crate::ErrorKind::MalformedResponse).
//!
//! ```
//! use en_core_auth::{Error, ErrorKind, oauth2::OAuthError};
//!
//! fn explain(err: &Error) -> String {
//!     match err.downcast_ref::<OAuthError>() {
//!         Some(oauth) if oauth.error() == "invalid_client" => "check the client secret".into(),
//!         Some(oauth) => format!("the server said {}", oauth.error()),
//!         None => err.to_string(),
//!     }
//! }
//! let err = Error::new(ErrorKind::CredentialsRejected, OAuthError::new(401, "invalid_client"));
//! assert_eq!(explain(&err), "check the client secret");
//! ```
//!
//! # Security
//!
//! Token and metadata URLs must be `https`, loopback hosts excepted, unless you opt in with
//! [`Builder::allow_insecure_http`]. Metadata must name the issuer that was asked for.
//! Secrets and tokens never appear in `Debug`, errors or logs; at `debug` level the crate
//! logs the URLs it asks and the statuses it gets.

mod client_auth;
mod client_credentials;
mod discovery;
#[cfg(feature = "jwt")]
mod dpop;
mod endpoint;
mod jwt_bearer;
mod refresh_token;
pub(crate) mod response;
mod token_exchange;
mod token_source;

// The interactive logins (issue 12) and logout.
mod authorization_code;
pub(crate) mod callback;
mod device_code;
#[cfg(feature = "jwt")]
pub(crate) mod id_token;
mod interactive;
mod loopback;
mod paste;
mod resource;
mod revocation;

pub use client_auth::ClientAuth;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use client_auth::PrivateKeyJwt;
pub use client_credentials::ClientCredentials;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use dpop::DpopKey;
pub use endpoint::{Builder, DEFAULT_LIFETIME};
pub use jwt_bearer::JwtBearer;
pub use refresh_token::RefreshToken;
pub use response::{OAuthError, token_from_reply};
pub use token_exchange::TokenExchange;
pub use token_source::TokenSource;

pub use authorization_code::{AuthorizationCode, DEFAULT_LOGIN_TIMEOUT};
pub use device_code::{DeviceCode, DevicePrompt};
pub use resource::ResourceLoginBuilder;
