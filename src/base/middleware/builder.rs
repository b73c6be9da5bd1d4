//! [`AuthMiddlewareBuilder`]: every setting of the middleware, checked in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue, Uri};

use super::super::lifecycle::{Background, Lifecycle, OnChange, RefreshThresholds};
use super::credentials::{Credentials, HeaderFormat};
use super::origin::{Origin, OriginPolicy};
use super::replay::Limits;
use super::{AuthMiddleware, Inner, Route};
use crate::store::TokenStore;
use crate::{Authorizer, Error, Token};

/// Builds an [`AuthMiddleware`]; see [`AuthMiddleware::builder`].
///
/// ```
/// # use en_core_auth::base::doc_fixture::Static;
/// use std::time::Duration;
/// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
///     .advisory_refresh(Duration::from_secs(120))
///     .mandatory_refresh(Duration::from_secs(30))
///     .max_replay_size(1024 * 1024)
///     .try_build()?;
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct AuthMiddlewareBuilder {
    authorizer: Box<dyn Authorizer>,
    header_name: String,
    api_key_header: String,
    format: HeaderFormat,
    thresholds: RefreshThresholds,
    resend_agent: Option<ureq::Agent>,
    limits: Limits,
    max_redirects: u32,
    status_as_error: bool,
    store: Option<Box<dyn TokenStore>>,
    allow_insecure_http: bool,
    allowed_origins: Option<Vec<String>>,
    background_refresh: bool,
    on_token_change: Option<OnChange>,
}

impl std::fmt::Debug for AuthMiddlewareBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings only: the authorizer and the store hold secrets, and the API key is one.
        f.debug_struct("AuthMiddlewareBuilder")
            .field("client_id", &self.authorizer.client_info().client_id())
            .field("header_name", &self.header_name)
            .field("api_key_header", &self.api_key_header)
            .field("header_prefix", &self.format.prefix)
            .field("use_id_token", &self.format.id_token)
            .field("refresh_thresholds", &self.thresholds)
            .field("token_store", &self.store.is_some())
            .field("resend_agent", &self.resend_agent.is_some())
            .field("max_replay_size", &self.limits.replay)
            .field("max_buffered_size", &self.limits.buffered)
            .field("max_redirects", &self.max_redirects)
            .field("http_status_as_error", &self.status_as_error)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("allowed_origins", &self.allowed_origins)
            .field("background_refresh", &self.background_refresh)
            .field("on_token_change", &self.on_token_change.is_some())
            .finish()
    }
}

impl AuthMiddlewareBuilder {
    pub(super) fn new(authorizer: Box<dyn Authorizer>) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder {
            authorizer,
            header_name: "authorization".to_owned(),
            api_key_header: "x-api-key".to_owned(),
            format: HeaderFormat::default(),
            thresholds: RefreshThresholds::default(),
            resend_agent: None,
            limits: Limits {
                replay: 64 * 1024,
                buffered: 16 * 1024 * 1024,
            },
            max_redirects: 10,
            status_as_error: true,
            store: None,
            allow_insecure_http: false,
            allowed_origins: None,
            background_refresh: false,
            on_token_change: None,
        }
    }

    /// Renews the token on a thread of its own as the advisory window opens (default off),
    /// so that no request waits for the identity provider while the token is valid.
    ///
    /// One thread per middleware (its clones share it), started with the first token. It
    /// renews through the same single flight, store lease, back-off and pacing as any
    /// renewal, so a failing identity provider sees no more requests than without it, and in
    /// a fleet sharing a [`TokenStore`] one machine renews while the others adopt its token.
    /// Requests then go on with the valid token through the advisory window; from the
    /// mandatory margin on they renew themselves as before (the thread stuck, the provider
    /// slow). The thread holds no strong reference to the middleware: it ends once the last
    /// clone is dropped, after finishing a renewal in flight.
    ///
    /// Use it when request latency matters more than a thread: a service whose requests
    /// must not wait for a token round trip. A short-lived process, or one that makes few
    /// requests, is better without (the thread renews tokens nobody may use).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .background_refresh(true)
    ///     .build();
    /// assert_eq!(auth.access_token()?, "abc"); // the first token starts the thread
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn background_refresh(mut self, on: bool) -> AuthMiddlewareBuilder {
        self.background_refresh = on;
        self
    }

    /// Calls `f` once with every new token the authorizer returns, for users who keep
    /// tokens elsewhere (a database, a secret manager) or want to know when it changed.
    ///
    /// `f` runs on the thread that obtained the token (a request thread, or the background
    /// refresh thread), after the token is in use and with none of the middleware's locks
    /// held, so it may take its time or call the middleware. It is not called for tokens
    /// adopted from a [`TokenStore`] (another process obtained those). A middleware that
    /// `f` holds a clone of is never dropped: hold the clone through a `Weak` or a channel.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Counting;
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let record = Arc::clone(&seen);
    /// let auth = en_core_auth::AuthMiddleware::builder(Counting::new())
    ///     .on_token_change(move |token| record.lock().unwrap().push(token.access_token().to_owned()))
    ///     .build();
    /// auth.access_token()?;
    /// auth.invalidate();
    /// auth.access_token()?;
    /// assert_eq!(*seen.lock().unwrap(), ["t1", "t2"]);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn on_token_change(
        mut self,
        f: impl Fn(&Token) + Send + Sync + 'static,
    ) -> AuthMiddlewareBuilder {
        self.on_token_change = Some(Box::new(f));
        self
    }

    /// Keeps tokens in `store` as well as in memory: a token stored by an earlier run or
    /// another process is used instead of asking the identity provider, and renewals are
    /// coordinated through the store's lock. See [`crate::store`].
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Counting;
    /// use std::sync::Arc;
    /// use en_core_auth::{AuthMiddleware, store::MemoryStore};
    /// let shared = Arc::new(MemoryStore::new());
    /// let first = AuthMiddleware::builder(Counting::new()).token_store(Arc::clone(&shared)).build();
    /// let second = AuthMiddleware::builder(Counting::starting_at(100)).token_store(Arc::clone(&shared)).build();
    /// assert_eq!(first.access_token()?, "t1");
    /// assert_eq!(second.access_token()?, "t1"); // taken from the store
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_store(mut self, store: impl TokenStore + 'static) -> AuthMiddlewareBuilder {
        self.store = Some(Box::new(store));
        self
    }

    /// The header that carries the token (default `Authorization`). An invalid name is
    /// an error of [`try_build`](Self::try_build), or of every use after
    /// [`build`](Self::build).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .header_name("bad header")
    ///     .build();
    /// assert!(auth.access_token().is_err());
    /// ```
    pub fn header_name(mut self, name: impl Into<String>) -> AuthMiddlewareBuilder {
        self.header_name = name.into();
        self
    }

    /// The header that carries the client's API key, when its
    /// [`ClientInfo`](crate::ClientInfo) has one (default `X-Api-Key`; Azure API
    /// Management wants `Ocp-Apim-Subscription-Key`).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use en_core_auth::ClientInfo;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::with(ClientInfo::new("me", "").with_api_key("k")))
    ///     .api_key_header("Ocp-Apim-Subscription-Key")
    ///     .try_build()?;
    /// let mut headers = ureq::http::HeaderMap::new();
    /// auth.authorize_headers(&mut headers)?;
    /// assert_eq!(headers["ocp-apim-subscription-key"], "k");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn api_key_header(mut self, name: impl Into<String>) -> AuthMiddlewareBuilder {
        self.api_key_header = name.into();
        self
    }

    /// The text before the token in the header (default: the token's type, `Bearer`).
    /// `""` sends the bare token, as some API Gateway authorizers want.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).header_prefix("").build();
    /// assert_eq!(auth.header_value()?, "abc");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn header_prefix(mut self, prefix: impl Into<String>) -> AuthMiddlewareBuilder {
        self.format.prefix = Some(prefix.into());
        self
    }

    /// Sends the ID token instead of the access token (API Gateway's Cognito authorizers
    /// often want it). A token without an ID token is then an error.
    ///
    /// The middleware sends the ID token its authorizer obtained. With the `jwt` feature,
    /// the crate's authorizers that obtain one verify it first (`SrpAuthorizer`, and the
    /// interactive logins of a discovered issuer; see their `verifies_id_tokens`). **Without
    /// the feature nothing is verified**: the ID token is sent as the identity provider
    /// returned it, and the API that receives it must check it.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).use_id_token().build();
    /// assert_eq!(auth.header_value()?, "Bearer id");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn use_id_token(mut self) -> AuthMiddlewareBuilder {
        self.format.id_token = true;
        self
    }

    /// When tokens are renewed ahead of expiry; see [`RefreshThresholds`].
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use en_core_auth::base::RefreshThresholds;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .refresh_thresholds(RefreshThresholds { advisory_fraction: 0.5, ..Default::default() })
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn refresh_thresholds(mut self, thresholds: RefreshThresholds) -> AuthMiddlewareBuilder {
        self.thresholds = thresholds;
        self
    }

    /// The longest advisory window (default 5 minutes); see [`RefreshThresholds`].
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .advisory_refresh(std::time::Duration::from_secs(600))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn advisory_refresh(mut self, max: Duration) -> AuthMiddlewareBuilder {
        self.thresholds.advisory_max = max;
        self
    }

    /// The longest mandatory margin (default 1 minute); see [`RefreshThresholds`].
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .mandatory_refresh(std::time::Duration::from_secs(10))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn mandatory_refresh(mut self, max: Duration) -> AuthMiddlewareBuilder {
        self.thresholds.mandatory_max = max;
        self
    }

    /// The agent for resends and redirect hops when the middleware is attached with a
    /// plain `.middleware(auth)` (an agent built with
    /// [`AuthMiddleware::agent`] uses its own configuration instead). By default, an
    /// agent with ureq's defaults plus a 30 s connect timeout and a 120 s wait for the
    /// response head. If it carries this middleware, those requests pass it untouched.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).resend_agent(agent).build();
    /// # let _ = auth;
    /// ```
    pub fn resend_agent(mut self, agent: ureq::Agent) -> AuthMiddlewareBuilder {
        self.resend_agent = Some(agent);
        self
    }

    /// The largest request body kept in memory so that the request can be resent after a
    /// `401` (default 64 KiB; 0 keeps none). Bodies are kept whatever their
    /// `Content-Type`: ureq applies a body's own content type before any middleware, so
    /// the replayed bytes mean what the first ones meant. Requests without a body (and
    /// `send_empty()`) are always resent.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).max_replay_size(0).build();
    /// # let _ = auth;
    /// ```
    pub fn max_replay_size(mut self, bytes: u64) -> AuthMiddlewareBuilder {
        self.limits.replay = bytes;
        self
    }

    /// The largest body read whole before it is sent (default 16 MiB), so that it goes
    /// out with a `Content-Length` as ureq would send it; larger bodies stream chunked
    /// unless the request sets `Content-Length` itself. ureq does not let a middleware
    /// see a body's size, so this costs memory up to the bound per request in flight.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .max_buffered_size(1024 * 1024)
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn max_buffered_size(mut self, bytes: u64) -> AuthMiddlewareBuilder {
        self.limits.buffered = bytes;
        self
    }

    /// How many redirects the middleware follows for a plain `.middleware(auth)`
    /// (default 10, like ureq; 0 hands every redirect to the caller). One more is
    /// `ureq::Error::TooManyRedirects`, as with ureq's default `max_redirects_will_error`.
    /// An agent built with [`AuthMiddleware::agent`] uses its own settings for both.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).max_redirects(0).build();
    /// # let _ = auth;
    /// ```
    pub fn max_redirects(mut self, max: u32) -> AuthMiddlewareBuilder {
        self.max_redirects = max;
        self
    }

    /// For a plain `.middleware(auth)`: whether a 4xx/5xx reached after following
    /// redirects is returned as `Err(ureq::Error::StatusCode)` (default true, ureq's
    /// default). Without redirects the middleware sees which form the agent uses and keeps
    /// it; an agent built with [`AuthMiddleware::agent`] needs no help.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).http_status_as_error(false).build();
    /// # let _ = auth;
    /// ```
    pub fn http_status_as_error(mut self, as_error: bool) -> AuthMiddlewareBuilder {
        self.status_as_error = as_error;
        self
    }

    /// Lets credentials go over plain `http://` to hosts that are not loopback. Without
    /// it such a request fails with a [`Configuration`](crate::ErrorKind::Configuration) error
    /// before anything is sent: a bearer token read on the wire can be used by anyone
    /// (RFC 6750 §5.3).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).allow_insecure_http().build();
    /// # let _ = auth;
    /// ```
    pub fn allow_insecure_http(mut self) -> AuthMiddlewareBuilder {
        self.allow_insecure_http = true;
        self
    }

    /// Limits where credentials go at all: requests to any other origin (scheme, host
    /// and port) pass through the middleware untouched. A URL that is not absolute is an
    /// error of [`try_build`](Self::try_build).
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new())
    ///     .allowed_origins(["https://api.example.com"])
    ///     .try_build()?;
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn allowed_origins(
        mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> AuthMiddlewareBuilder {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Builds the middleware; a bad header name, API key or origin is an error here.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// use en_core_auth::{AuthMiddleware, ErrorKind};
    /// let bad = AuthMiddleware::builder(Static::new()).api_key_header("not a name").try_build();
    /// assert_eq!(bad.unwrap_err().kind(), ErrorKind::Configuration);
    /// ```
    pub fn try_build(self) -> Result<AuthMiddleware, Error> {
        let auth = self.build();
        auth.inner.usable()?;
        Ok(auth)
    }

    /// Builds the middleware. A configuration mistake is reported as a
    /// [`Configuration`](crate::ErrorKind::Configuration) error on every use; prefer
    /// [`try_build`](Self::try_build) to see it at once.
    ///
    /// ```
    /// # use en_core_auth::base::doc_fixture::Static;
    /// let auth = en_core_auth::AuthMiddleware::builder(Static::new()).build();
    /// # let _ = auth;
    /// ```
    pub fn build(self) -> AuthMiddleware {
        let client = self.authorizer.client_info();
        let client_id = client.client_id().to_owned();
        let mut problems = Vec::new();
        let mut header = |name: &str, fallback: &'static str| {
            HeaderName::try_from(name).unwrap_or_else(|_| {
                problems.push(format!("`{name}` is not a valid header name"));
                HeaderName::from_static(fallback)
            })
        };
        let header_name = header(&self.header_name, "authorization");
        let api_key_name = header(&self.api_key_header, "x-api-key");
        let api_key = client
            .api_key()
            .and_then(|key| match HeaderValue::from_str(key) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Some((api_key_name, value))
                }
                Err(_) => {
                    problems.push("the API key contains characters not allowed in a header".into());
                    None
                }
            });
        let allowed = self.allowed_origins.map(|origins| {
            origins
                .iter()
                .filter_map(|text| match text.parse::<Uri>() {
                    Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => {
                        Some(Origin::of(&uri))
                    }
                    _ => {
                        problems.push(format!("`{text}` is not an absolute URL"));
                        None
                    }
                })
                .collect()
        });
        // An agent given with `resend_agent` was chosen by the caller: not a fallback.
        let fallback = self.resend_agent.is_none();
        let route = Route {
            agent: self.resend_agent.unwrap_or_else(|| {
                ureq::Agent::config_builder()
                    .timeout_connect(Some(Duration::from_secs(30)))
                    .timeout_recv_response(Some(Duration::from_secs(120)))
                    .build()
                    .into()
            }),
            status_as_error: self.status_as_error,
            max_redirects: self.max_redirects,
            redirects_error: true,
            fallback,
            warned: AtomicBool::new(false),
        };
        let proofs = Arc::new(AtomicBool::new(false));
        let format = self.format;
        let seen = Arc::clone(&proofs);
        let prepare = Box::new(move |token: &crate::Token| {
            if token.request_proof().is_some() {
                seen.store(true, Ordering::Relaxed);
            }
            format.value(token)
        });
        let mut lifecycle = Lifecycle::new(self.authorizer, self.thresholds, self.store, prepare)
            .background(if self.background_refresh {
                Background::Thread
            } else {
                Background::Off
            });
        if let Some(f) = self.on_token_change {
            lifecycle = lifecycle.on_token_change(f);
        }
        AuthMiddleware {
            inner: Arc::new(Inner {
                lifecycle: lifecycle.shared(),
                client_id,
                credentials: Credentials {
                    header_name,
                    api_key,
                    proofs,
                },
                policy: OriginPolicy {
                    allow_insecure_http: self.allow_insecure_http,
                    allowed,
                },
                limits: self.limits,
                route,
                misconfigured: (!problems.is_empty()).then(|| problems.join("; ")),
            }),
        }
    }
}
