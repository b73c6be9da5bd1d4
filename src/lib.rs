//! # en-core-auth
//!
//! Authentication and authorization for [`ureq`] 3: hand it credentials once, attach it to an
//! agent, and never think about tokens again. It gets the first token, reuses it, refreshes
//! it before it expires, recovers when the server rejects it, and never leaks a secret.
//!
//! This is the Rust translation of the Python package `en_core.auth`: an [`Authorizer`]
//! obtains tokens from one identity provider ([`oauth2`] client credentials, AWS Cognito
//! [`srp`], or your own), and an [`AuthMiddleware`] manages their lifetime and puts them on
//! requests.
//!
//! ## Quick start
//!
//! ```no_run
//! use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::ClientCredentials};
//!
//! let client = ClientInfo::new("my-client", "my-secret").with_api_key("my-key");
//! let auth = AuthMiddleware::new(ClientCredentials::new(client, "https://idp.example.com/oauth2/token")?);
//! let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());
//! let body = agent.get("https://api.example.com/orders").call()?.body_mut().read_to_string()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every request through `agent` now carries `Authorization: Bearer <token>` and
//! `X-Api-Key: my-key`. Your own settings (proxy, TLS roots, timeouts, user agent) go on
//! the config builder handed to [`AuthMiddleware::agent`], and apply to the requests the
//! middleware sends itself too.
//!
//! ## What the middleware does for you
//!
//! - **Lazy, reused, single flight.** The first request gets a token; later requests reuse
//!   it without waiting for any lock held across a network call. Any number of threads
//!   arriving together cause one token request.
//! - **Renewal ahead of expiry, scaled to the token's lifetime** ([`base::RefreshThresholds`]).
//!   In the *advisory* window one caller refreshes while the others go on with the valid
//!   token; from the *mandatory* margin on, callers wait for one renewal. A failed refresh
//!   keeps the still-valid token in use and is retried after a back-off.
//! - **Recovery.** A `401` to a request that carried the current token renews it once and
//!   resends the request once (never twice). When [`Authorizer::refresh`] fails with
//!   anything but [`ErrorKind::Transport`] or [`ErrorKind::Server`], the middleware logs in
//!   again with [`Authorizer::authorize`].
//! - **Credentials stay with their origin.** The middleware follows redirects of the
//!   requests it authorized, by ureq's own rules, and strips every credential header
//!   (`Authorization`, `Proxy-Authorization`, `Cookie`, the API-key and token headers) on a
//!   hop to another scheme, host or port. (ureq on its own forwards `X-Api-Key` to any
//!   host.) Tokens never go over plain `http://` to a host that is not loopback unless
//!   [`AuthMiddlewareBuilder::allow_insecure_http`](base::AuthMiddlewareBuilder::allow_insecure_http).
//! - **Your agent's settings apply to its resends.** Build the agent with
//!   [`AuthMiddleware::agent`] and the requests the middleware sends itself (a resend, a
//!   redirect hop) use its user agent, proxy, TLS, timeouts and redirect limit. Attached
//!   with a plain `.middleware(auth)`, it cannot read the agent's settings: those requests
//!   go out on an agent of its own with ureq's defaults (and a warning is logged once).
//! - **Your agent's error form is kept.** A `401` is handled whether your agent reports
//!   statuses as `Err(ureq::Error::StatusCode)` (the default) or as responses.
//!
//! ## OAuth2 client credentials
//!
//! [`oauth2::ClientCredentials`] implements the client-credentials grant of RFC 6749 against
//! any compliant server (AWS Cognito's `/oauth2/token`, Keycloak, Auth0, Entra ID…), with a
//! token URL or OpenID Connect / RFC 8414 discovery, scopes, `client_secret_basic` or
//! `client_secret_post`, and refresh tokens where the server issues them.
//! [`oauth2::RefreshToken`] starts from a refresh token obtained elsewhere.
//!
//! ## People at a terminal: browser and device logins
//!
//! [`oauth2::AuthorizationCode`] logs a person in with their browser (authorization code +
//! PKCE, a one-shot listener on `127.0.0.1`), [`oauth2::DeviceCode`] with a code typed on
//! another device (RFC 8628). Both refresh without asking again, log out with
//! [`Authorizer::revoke`] (RFC 7009), and with the feature `jwt` verify the ID tokens they
//! get. With a file store (below), the person logs in once per refresh token, not per run.
//!
//! ```no_run
//! use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::DeviceCode};
//! let login = DeviceCode::discover(ClientInfo::new("my-cli", ""), "https://idp.example.com")?
//!     .with_scopes(["openid", "offline_access"]);
//! let auth = AuthMiddleware::new(login); // the code is shown on the first request
//! # let _ = auth;
//! # Ok::<(), en_core_auth::Error>(())
//! ```
//!
//! An API known only by its URL (as Model Context Protocol servers are):
//! [`oauth2::AuthorizationCode::for_resource`] reads the API's protected-resource metadata
//! (RFC 9728), refuses metadata for another API, discovers the authorization server,
//! registers a client when none is given (RFC 7591, kept between runs), and asks for
//! tokens bound to that API (RFC 8707).
//!
//! ## Workloads in CI and the cloud
//!
//! [`oauth2::TokenSource`] reads a workload's own token afresh for every exchange (a file
//! the kubelet rotates, a variable, GitHub Actions' OIDC token, a command); use it as the
//! client's credential with [`oauth2::ClientAuth::client_assertion`], or as the subject of
//! [`oauth2::TokenExchange`] and [`oauth2::JwtBearer`] (`move || source.token()`).
//!
//! ## AWS Cognito user pools (SRP)
//!
//! [`srp::SrpAuthorizer`] logs a user in with `USER_SRP_AUTH`, the password never leaving
//! the machine, directly against the Cognito Identity Provider API (no AWS SDK), refreshes
//! with `REFRESH_TOKEN_AUTH` (or `GetTokensFromRefreshToken` where the app client rotates
//! refresh tokens), sends `SECRET_HASH` when the app client has a secret, and answers every
//! challenge (a new password, MFA and one-time codes, setting up an authenticator, custom
//! challenges, the first factor of `USER_AUTH`) through a handler you supply. With
//! [`remember_device`](srp::SrpAuthorizer::remember_device), a device Cognito remembers
//! proves itself on later logins instead of asking for MFA again.
//!
//! ## Your own identity provider
//!
//! Implement [`Authorizer`]: [`Authorizer::authorize`] gets a token, and optionally
//! [`Authorizer::refresh`] renews one more cheaply. The middleware does the rest. Send the
//! HTTP calls with [`http::HttpClient`] ([`post_form`](http::HttpClient::post_form),
//! [`get`](http::HttpClient::get), and
//! [`send_with_retries`](http::HttpClient::send_with_retries) around either) to inherit its
//! timeouts, redirect ban, size cap and retries; read an RFC 6749 answer with
//! [`oauth2::token_from_reply`]: a [`Token`], or an [`Error`] whose kind tells the middleware
//! whether to try again later or log in again, and which names the endpoint. The caller of a
//! request gets that error inside `ureq::Error::Other`; [`Error::from_ureq`] takes it back
//! out. `examples/custom_authorizer.rs` is a whole one, with its server.
//!
//! ```no_run
//! use en_core_auth::http::HttpClient;
//! use en_core_auth::oauth2::token_from_reply;
//! use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
//!
//! struct ApiKeyLogin {
//!     client: ClientInfo,
//!     http: HttpClient,
//! }
//!
//! impl Authorizer for ApiKeyLogin {
//!     fn client_info(&self) -> &ClientInfo {
//!         &self.client
//!     }
//!
//!     fn authorize(&mut self) -> Result<Token, Error> {
//!         let url = "https://auth.example.com/api-key/token";
//!         let form = [("api_key", self.client.client_secret())];
//!         // An API key may be sent twice: retry transient failures.
//!         let reply = self
//!             .http
//!             .send_with_retries(|| self.http.post_form(url, &[], &form))?;
//!         token_from_reply(&reply)
//!     }
//! }
//!
//! let login = ApiKeyLogin {
//!     client: ClientInfo::new("my-app", "key-123"),
//!     http: HttpClient::new(),
//! };
//! let agent = AuthMiddleware::new(login).agent(ureq::Agent::config_builder());
//! match agent.get("https://api.example.com/data").call() {
//!     Ok(response) => println!("HTTP {}", response.status()),
//!     Err(error) => match Error::from_ureq(&error) {
//!         Some(ours) => eprintln!("no token ({:?}): {ours}", ours.kind()),
//!         None => eprintln!("the request failed: {error}"),
//!     },
//! }
//! ```
//!
//! ## Tokens that outlive the process
//!
//! CLIs and scripts start fresh on every run. Give the middleware a [`store::TokenStore`]
//! (for example the file store, one file per credential set, 0600, shared safely between
//! processes) and a token obtained by one run is reused by the next.
//!
//! ## Testing against a local identity provider
//!
//! With the `testing` feature, `testing::LocalIdp` starts an in-process identity provider on
//! loopback that speaks Cognito's SRP API (and really verifies the password proof) and
//! OAuth2, with fault injection for your own tests.
//!
//! ## Features
//!
//! | feature | what it adds |
//! | --- | --- |
//! | (default) | everything above but the items below; no JWT crypto backend |
//! | `jwt` | jsonwebtoken's `rust_crypto` backend, for signing and verifying JWTs |
//! | `testing` | `testing::LocalIdp`, the local identity provider (implies `jwt`) |
//! | `redis` | `store::RedisStore`: one token for a fleet, in Redis or Valkey |
//! | `cli` | the `en-core-auth` command-line tool (implies `redis` and `jwt`) |
//!
//! ## Security
//!
//! - `Debug` of [`ClientInfo`], [`Token`] and the authorizers redacts secrets, passwords,
//!   API keys and tokens; [`Error`]s and log lines (debug level, through `log`) never carry
//!   them.
//! - Credentials go to token endpoints over HTTPS only; plain HTTP is accepted for loopback
//!   hosts, or when you opt in explicitly ([`http::check_endpoint`]).
//! - Every request to an identity provider has a connect timeout and an overall timeout,
//!   is never redirected, and has its response size capped.
//! - No `unsafe`; nothing that comes from the network or the user is unwrapped.

#![forbid(unsafe_code)]
// docs.rs builds with every feature and `--cfg docsrs`: feature-gated items get a badge.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(clippy::all)]
// Nothing that comes from the network or the user may panic the caller's program.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod base;
pub mod config;
pub mod data;
mod error;
// Entry points for `fuzz/`; `cargo fuzz` sets `cfg(fuzzing)`. Not public API.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod oauth2;
pub mod srp;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use base::{AuthMiddleware, Authorizer};
pub use data::{ClientInfo, Token};
pub use error::{Error, ErrorKind};
