//! [`AuthMiddleware`]: puts the token on requests, and only that, plus the two things a
//! middleware must do for credentials to be safe: follow redirects itself, so that
//! credentials reach only the origin they were meant for, and resend once after a `401`.
//!
//! Why redirects are followed here and not by ureq: ureq forwards every header but
//! `Authorization` and `Cookie` to any host it is redirected to, `X-Api-Key` included, and
//! drops `Authorization` even on a same-origin redirect (which would then look like a
//! rejected token). So each request that carries our credentials is sent with
//! `max_redirects(0)` and its redirects are followed below, deciding per hop.

use std::cell::RefCell;
use std::io::{Cursor, Read};
use std::sync::Arc;

use ureq::http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION};
use ureq::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, RequestExt, SendBody};

use super::lifecycle::{Current, Lifecycle, RefreshThresholds, Rejection};
use crate::store::TokenStore;
use crate::{Authorizer, Error, ErrorKind, Token};

/// The API key header.
const API_KEY: &str = "x-api-key";

/// Which token goes in the header, and how.
#[derive(Debug, Clone)]
pub(crate) struct HeaderFormat {
    /// Put the ID token in the header instead of the access token.
    pub(crate) id_token: bool,
    /// The prefix before the token: `None` means the token's own type (`Bearer`), `Some("")`
    /// means the bare token.
    pub(crate) prefix: Option<String>,
}

impl HeaderFormat {
    /// The header value for `token`, built once when the token arrives (the lifecycle's
    /// `prepare`), so that the hot path only clones it.
    fn header_for(&self, token: &Token) -> Result<HeaderValue, Error> {
        let value = if self.id_token {
            token.id_token().ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    "the ID token was asked for, but the identity provider issued none",
                )
            })?
        } else {
            token.access_token()
        };
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "the identity provider issued an empty token",
            ));
        }
        let prefix = self.prefix.as_deref().unwrap_or(token.token_type());
        let text = if prefix.is_empty() {
            value.to_owned()
        } else {
            format!("{prefix} {value}")
        };
        let mut header = HeaderValue::from_str(&text).map_err(|_| {
            Error::new(
                ErrorKind::MalformedResponse,
                "the token contains characters that are not allowed in an HTTP header",
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }
}

/// Authorizes every request of a ureq agent with tokens from an [`Authorizer`]
/// (reference: the `__call__` of `en_core.auth.base.Authorizer`).
///
/// It gets the first token on the first request, reuses it, renews it ahead of expiry
/// (see [`RefreshThresholds`]), and after a `401` renews it and resends the request once.
/// Clones share one token, across agents and threads.
///
/// On each request it sets `Authorization: Bearer <token>` (the header and prefix are
/// configurable, see [`AuthMiddleware::builder`]) and `X-Api-Key` when the
/// [`ClientInfo`](crate::ClientInfo) has an API key. A request that already carries the
/// authorization header goes out as the caller made it.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
///
/// struct Static(ClientInfo);
/// impl Authorizer for Static {
///     fn client_info(&self) -> &ClientInfo { &self.0 }
///     fn authorize(&mut self) -> Result<Token, Error> {
///         Ok(Token::new("t0k3n").with_expires_in(Duration::from_secs(3600)))
///     }
/// }
///
/// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
/// let agent: ureq::Agent = ureq::Agent::config_builder()
///     .middleware(auth.clone())
///     .build()
///     .into();
/// assert_eq!(auth.header_value()?, "Bearer t0k3n");
/// # let _ = agent;
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct AuthMiddleware {
    inner: Arc<Inner>,
}

struct Inner {
    lifecycle: Lifecycle,
    client_id: String,
    header_name: HeaderName,
    api_key: Option<HeaderValue>,
    /// A configuration mistake found by the builder, reported on every use, because
    /// `build()` cannot fail.
    misconfigured: Option<String>,
    resend_agent: ureq::Agent,
    max_replay_bytes: u64,
    max_redirects: u32,
    status_as_error: bool,
}

impl std::fmt::Debug for AuthMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMiddleware")
            .field("client_id", &self.inner.client_id)
            .field("header_name", &self.inner.header_name)
            .finish_non_exhaustive()
    }
}

impl AuthMiddleware {
    /// A middleware with the default settings for `authorizer`.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("t")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
    /// assert_eq!(auth.client_id(), "me");
    /// ```
    pub fn new(authorizer: impl Authorizer + 'static) -> AuthMiddleware {
        AuthMiddleware::builder(authorizer).build()
    }

    /// A builder to set where the token goes, when it is renewed and how requests are
    /// resent.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("t").with_id_token("i")) }
    /// # }
    /// // An API Gateway Cognito authorizer that reads the bare ID token from `X-Id-Token`:
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .header_name("x-id-token")
    ///     .header_prefix("")
    ///     .use_id_token()
    ///     .build();
    /// assert_eq!(auth.header_value()?, "i");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn builder(authorizer: impl Authorizer + 'static) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder::new(Box::new(authorizer))
    }

    /// The current token, obtaining or renewing it first if needed.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
    /// assert_eq!(auth.access_token()?, "abc");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn access_token(&self) -> Result<String, Error> {
        Ok(self.current()?.token.access_token().to_owned())
    }

    /// The whole current [`Token`] (ID token, refresh token, expiry), obtaining or renewing
    /// it first if needed.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc").with_id_token("id")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
    /// assert_eq!(auth.token()?.id_token(), Some("id"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn token(&self) -> Result<Token, Error> {
        Ok(self.current()?.token.clone())
    }

    /// The value the authorization header would carry now, such as `Bearer eyJ…`, for use
    /// with other HTTP clients.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
    /// assert_eq!(auth.header_value()?, "Bearer abc");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn header_value(&self) -> Result<String, Error> {
        let current = self.current()?;
        current.header.to_str().map(str::to_owned).map_err(|_| {
            Error::new(
                ErrorKind::MalformedResponse,
                "the token is not valid header text",
            )
        })
    }

    /// Sets the authorization header (and `X-Api-Key`) on `headers`, obtaining or renewing
    /// the token first if needed: what the middleware does to each request, for requests
    /// made with another HTTP client. Such requests get no resend after a `401`: call
    /// [`invalidate`](Self::invalidate) when you see one.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "").with_api_key("k")));
    /// let mut headers = ureq::http::HeaderMap::new();
    /// auth.authorize_headers(&mut headers)?;
    /// assert_eq!(headers["authorization"], "Bearer abc");
    /// assert_eq!(headers["x-api-key"], "k");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn authorize_headers(&self, headers: &mut HeaderMap) -> Result<(), Error> {
        self.credentials(headers).map(|_generation| ())
    }

    /// Sets the credentials on `headers`; returns the generation of the token used.
    fn credentials(&self, headers: &mut HeaderMap) -> Result<u64, Error> {
        let inner = &*self.inner;
        let (header, generation) = match inner.lifecycle.fresh() {
            Some(fresh) if inner.misconfigured.is_none() => fresh,
            _ => {
                let current = self.current()?;
                (current.header.clone(), current.generation)
            }
        };
        inner.add_credentials(headers, header);
        Ok(generation)
    }

    /// Marks the current token as unusable: the next use renews it (with
    /// [`Authorizer::refresh`]). Call it when a request made without this middleware was
    /// rejected with a `401`.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Counting(ClientInfo, u32);
    /// # impl Authorizer for Counting {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { self.1 += 1; Ok(Token::new(format!("t{}", self.1))) }
    /// # }
    /// let auth = AuthMiddleware::new(Counting(ClientInfo::new("me", ""), 0));
    /// assert_eq!(auth.access_token()?, "t1");
    /// auth.invalidate();
    /// assert_eq!(auth.access_token()?, "t2");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn invalidate(&self) {
        self.inner.lifecycle.invalidate(None);
    }

    /// The client id of the authorizer's [`ClientInfo`](crate::ClientInfo).
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("my-client", "")));
    /// assert_eq!(auth.client_id(), "my-client");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// How many times the authorizer was asked for a token: `(authorize, refresh)` calls.
    /// For diagnostics and tests.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::new(Static(ClientInfo::new("me", "")));
    /// auth.access_token()?;
    /// auth.access_token()?;
    /// assert_eq!(auth.token_requests(), (1, 0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn token_requests(&self) -> (u64, u64) {
        // CONTRACT: the middleware side returns `TokenRequests` itself.
        let requests = self.inner.lifecycle.token_requests();
        (requests.authorize, requests.refresh)
    }

    fn current(&self) -> Result<Arc<Current>, Error> {
        if let Some(problem) = &self.inner.misconfigured {
            return Err(Error::new(ErrorKind::Configuration, problem.clone()));
        }
        self.inner.lifecycle.current()
    }
}

/// Builds an [`AuthMiddleware`]; see [`AuthMiddleware::builder`].
///
/// ```
/// use std::time::Duration;
/// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
/// # struct Static(ClientInfo);
/// # impl Authorizer for Static {
/// #     fn client_info(&self) -> &ClientInfo { &self.0 }
/// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
/// # }
/// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
///     .advisory_refresh(Duration::from_secs(120))
///     .mandatory_refresh(Duration::from_secs(30))
///     .max_replay_size(1024 * 1024)
///     .build();
/// # let _ = auth;
/// ```
pub struct AuthMiddlewareBuilder {
    authorizer: Box<dyn Authorizer>,
    header_name: String,
    format: HeaderFormat,
    thresholds: RefreshThresholds,
    resend_agent: Option<ureq::Agent>,
    max_replay_bytes: u64,
    max_redirects: u32,
    status_as_error: bool,
    store: Option<Box<dyn TokenStore>>,
}

impl AuthMiddlewareBuilder {
    fn new(authorizer: Box<dyn Authorizer>) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder {
            authorizer,
            header_name: "authorization".to_owned(),
            format: HeaderFormat {
                id_token: false,
                prefix: None,
            },
            thresholds: RefreshThresholds::default(),
            resend_agent: None,
            max_replay_bytes: 64 * 1024,
            max_redirects: 10,
            status_as_error: true,
            store: None,
        }
    }

    /// Keeps tokens in `store` as well as in memory: a token stored by an earlier run or
    /// another process is used instead of asking the identity provider, and renewals are
    /// coordinated through the store's lock. See [`crate::store`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use en_core_auth::store::MemoryStore;
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Counting(ClientInfo, u32);
    /// # impl Authorizer for Counting {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { self.1 += 1; Ok(Token::new(format!("t{}", self.1))) }
    /// # }
    /// let shared = Arc::new(MemoryStore::new());
    /// let first = AuthMiddleware::builder(Counting(ClientInfo::new("me", ""), 0))
    ///     .token_store(Arc::clone(&shared))
    ///     .build();
    /// let second = AuthMiddleware::builder(Counting(ClientInfo::new("me", ""), 100))
    ///     .token_store(Arc::clone(&shared))
    ///     .build();
    /// assert_eq!(first.access_token()?, "t1");
    /// assert_eq!(second.access_token()?, "t1"); // taken from the store
    /// # Ok::<(), Error>(())
    /// ```
    pub fn token_store(mut self, store: impl TokenStore + 'static) -> AuthMiddlewareBuilder {
        self.store = Some(Box::new(store));
        self
    }

    /// The header that carries the token (default `Authorization`). An invalid name is
    /// reported as a [`Configuration`](ErrorKind::Configuration) error on first use.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .header_name("bad header")
    ///     .build();
    /// assert!(auth.access_token().is_err());
    /// ```
    pub fn header_name(mut self, name: impl Into<String>) -> AuthMiddlewareBuilder {
        self.header_name = name.into();
        self
    }

    /// The text before the token in the header (default: the token's type, `Bearer`).
    /// `""` sends the bare token, as some API Gateway authorizers want.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .header_prefix("")
    ///     .build();
    /// assert_eq!(auth.header_value()?, "abc");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn header_prefix(mut self, prefix: impl Into<String>) -> AuthMiddlewareBuilder {
        self.format.prefix = Some(prefix.into());
        self
    }

    /// Sends the ID token instead of the access token (API Gateway's Cognito authorizers
    /// often want it). A token without an ID token is then an error.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc").with_id_token("id")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", ""))).use_id_token().build();
    /// assert_eq!(auth.header_value()?, "Bearer id");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn use_id_token(mut self) -> AuthMiddlewareBuilder {
        self.format.id_token = true;
        self
    }

    /// When tokens are renewed ahead of expiry; see [`RefreshThresholds`].
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// use en_core_auth::base::RefreshThresholds;
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
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
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .advisory_refresh(std::time::Duration::from_secs(600))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn advisory_refresh(mut self, max: std::time::Duration) -> AuthMiddlewareBuilder {
        self.thresholds.advisory_max = max;
        self
    }

    /// The longest mandatory margin (default 1 minute); see [`RefreshThresholds`].
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .mandatory_refresh(std::time::Duration::from_secs(10))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn mandatory_refresh(mut self, max: std::time::Duration) -> AuthMiddlewareBuilder {
        self.thresholds.mandatory_max = max;
        self
    }

    /// The agent used to resend a request after a `401` and to follow redirects (the
    /// caller's agent cannot be reached from inside a middleware). By default, an agent
    /// with ureq's defaults plus a 30 s connect timeout and a 120 s wait for the response
    /// head. Pass your own for proxies or custom TLS roots; if it carries this middleware,
    /// the middleware lets those requests through untouched.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .resend_agent(agent)
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn resend_agent(mut self, agent: ureq::Agent) -> AuthMiddlewareBuilder {
        self.resend_agent = Some(agent);
        self
    }

    /// The largest request body kept in memory so that the request can be resent after a
    /// `401` or a 307/308 redirect (default 64 KiB; 0 turns replay of bodies off).
    ///
    /// Bodies are kept only when the request carries a `Content-Type` header (ureq's
    /// `send_json` and `send_form` set one): a body handed to ureq inside an
    /// `http::Request` can carry a content type that a middleware cannot see, and resent
    /// without it, it would change meaning. Requests without a body (GET, HEAD, OPTIONS,
    /// DELETE without `Content-Type`) are always resent.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .max_replay_size(0)
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn max_replay_size(mut self, bytes: u64) -> AuthMiddlewareBuilder {
        self.max_replay_bytes = bytes;
        self
    }

    /// How many redirects the middleware follows for requests it authorized (default 10,
    /// like ureq; 0 hands every redirect to the caller). The agent's own `max_redirects`
    /// is not visible to a middleware, so set it here.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .max_redirects(0)
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn max_redirects(mut self, max: u32) -> AuthMiddlewareBuilder {
        self.max_redirects = max;
        self
    }

    /// Whether a 4xx/5xx reached after following redirects is returned as
    /// `Err(ureq::Error::StatusCode)` (default true, ureq's default). Set it to match your
    /// agent's `http_status_as_error`; without redirects the middleware sees which form
    /// your agent uses and keeps it.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", "")))
    ///     .http_status_as_error(false)
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn http_status_as_error(mut self, as_error: bool) -> AuthMiddlewareBuilder {
        self.status_as_error = as_error;
        self
    }

    /// Builds the middleware.
    ///
    /// ```
    /// # use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
    /// # struct Static(ClientInfo);
    /// # impl Authorizer for Static {
    /// #     fn client_info(&self) -> &ClientInfo { &self.0 }
    /// #     fn authorize(&mut self) -> Result<Token, Error> { Ok(Token::new("abc")) }
    /// # }
    /// let auth = AuthMiddleware::builder(Static(ClientInfo::new("me", ""))).build();
    /// # let _ = auth;
    /// ```
    pub fn build(self) -> AuthMiddleware {
        let client = self.authorizer.client_info();
        let client_id = client.client_id().to_owned();
        let mut misconfigured = None;
        let header_name = HeaderName::try_from(self.header_name.as_str()).unwrap_or_else(|_| {
            misconfigured = Some(format!("`{}` is not a valid header name", self.header_name));
            HeaderName::from_static("authorization")
        });
        let api_key = client
            .api_key()
            .and_then(|key| match HeaderValue::from_str(key) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Some(value)
                }
                Err(_) => {
                    misconfigured =
                        Some("the API key contains characters not allowed in a header".into());
                    None
                }
            });
        let resend_agent = self.resend_agent.unwrap_or_else(|| {
            ureq::Agent::config_builder()
                .timeout_connect(Some(std::time::Duration::from_secs(30)))
                .timeout_recv_response(Some(std::time::Duration::from_secs(120)))
                .build()
                .into()
        });
        AuthMiddleware {
            inner: Arc::new(Inner {
                lifecycle: Lifecycle::new(
                    self.authorizer,
                    self.thresholds,
                    self.store,
                    Box::new(move |token| self.format.header_for(token)),
                ),
                client_id,
                header_name,
                api_key,
                misconfigured,
                resend_agent,
                max_replay_bytes: self.max_replay_bytes,
                max_redirects: self.max_redirects,
                status_as_error: self.status_as_error,
            }),
        }
    }
}

impl Middleware for AuthMiddleware {
    fn handle(
        &self,
        request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        let inner = &*self.inner;
        if PassThrough::active(&inner.lifecycle)
            || inner.lifecycle.renewing_on_this_thread()
            || request.headers().contains_key(&inner.header_name)
        {
            return next.handle(request);
        }
        let (parts, body) = request.into_parts();
        let sent = Sent {
            origin: Origin::of(&parts.uri),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        };

        let mut request = Request::from_parts(parts, ());
        let generation = self.credentials(request.headers_mut())?;
        // Redirects of an authorized request are followed below, hop by hop.
        let Some(config) = request.middleware_config() else {
            return Err(ureq::Error::Other(
                "AuthMiddleware runs only inside a ureq agent".into(),
            ));
        };
        let request = config.max_redirects(0).build();

        let mut prefix = Vec::new();
        let (replay, first) = match Plan::for_request(&sent, inner.max_replay_bytes) {
            Plan::PassOn => (Replay::Impossible, next.handle(request.map(|()| body))),
            Plan::NoBody => (Replay::NoBody, next.handle(request.map(|()| body))),
            Plan::Keep => {
                // Read up to the cap: a body that fits is kept for a resend; a larger one
                // is sent as it streams (what was read, then the rest) and not resent.
                let mut reader = body.into_reader();
                let limit = inner.max_replay_bytes.saturating_add(1);
                if let Err(error) = (&mut reader).take(limit).read_to_end(&mut prefix) {
                    return Err(ureq::Error::Io(error));
                }
                if prefix.len() as u64 <= inner.max_replay_bytes {
                    let bytes: Arc<[u8]> = Arc::from(std::mem::take(&mut prefix));
                    let mut request = request.map(|()| replay_body(&bytes));
                    set_length(request.headers_mut(), bytes.len());
                    (Replay::Bytes(bytes), next.handle(request))
                } else {
                    let mut rest = Cursor::new(prefix).chain(reader);
                    let body = SendBody::from_reader(&mut rest);
                    (Replay::Impossible, next.handle(request.map(|()| body)))
                }
            }
        };
        inner.after_first(first, &sent, replay, generation)
    }
}

impl Inner {
    fn add_credentials(&self, headers: &mut HeaderMap, header: HeaderValue) {
        headers.insert(self.header_name.clone(), header);
        if let Some(key) = &self.api_key {
            headers.insert(API_KEY, key.clone());
        }
    }

    /// Handles what came back from the first send: a `401` is resent once with a renewed
    /// token, redirects are followed hop by hop, and the caller gets the answer in the form
    /// its agent asks for.
    fn after_first(
        &self,
        first: Result<Response<Body>, ureq::Error>,
        sent: &Sent,
        replay: Replay,
        generation: u64,
    ) -> Result<Response<Body>, ureq::Error> {
        // A 401 reaching us as `Err` means the caller's agent turns statuses into errors;
        // an `Ok` with a 4xx means it does not. Keep whichever form it uses.
        let (status_as_error, mut response) = match first {
            Err(ureq::Error::StatusCode(401)) => (true, None),
            Err(error) => return Err(error),
            Ok(response) => {
                let form = if response.status().as_u16() >= 400 {
                    false
                } else {
                    self.status_as_error
                };
                (form, Some(response))
            }
        };

        let mut hop = Hop {
            method: sent.method.clone(),
            uri: sent.uri.clone(),
            with_body: true,
        };
        let mut generation = Some(generation);
        let mut resent = false;
        let mut redirects = 0;
        loop {
            let status = response.as_ref().map_or(401, |r| r.status().as_u16());
            if status != 401
                && let Some(accepted) = generation
            {
                // CONTRACT: a token issued after a refusal was accepted after all.
                self.lifecycle.request_succeeded(accepted);
            }
            if status == 401 {
                // Only a 401 to a request that carried our token says the token is bad.
                let Some(sent_with) = generation else {
                    break;
                };
                if resent {
                    // A fresh token was refused too: the problem is not the token (a
                    // permission, say). Keep it, or every such request would renew it.
                    break;
                }
                if !replay.possible(hop.with_body) {
                    self.lifecycle.invalidate(Some(sent_with));
                    break;
                }
                resent = true;
                let current = match self.lifecycle.rejected(sent_with)? {
                    Rejection::Resend(current) => current,
                    Rejection::GiveUp => break,
                };
                generation = Some(current.generation);
                let resend = self.resend(sent, &hop, &replay, Some(&current))?;
                response = Some(resend);
                continue;
            }
            let Some(location) = response.as_ref().and_then(redirect_location) else {
                break;
            };
            if redirects >= self.max_redirects {
                break;
            }
            let Some(next) = resolve(&hop.uri, &location) else {
                break;
            };
            let (method, with_body) = method_after_redirect(status, &hop.method, hop.with_body);
            if !replay.possible(with_body) {
                break;
            }
            redirects += 1;
            hop = Hop {
                method,
                uri: next,
                with_body,
            };
            let same_origin = Origin::of(&hop.uri) == sent.origin;
            let current = if same_origin {
                Some(self.lifecycle.current()?)
            } else {
                None
            };
            generation = current.as_ref().map(|c| c.generation);
            response = Some(self.resend(sent, &hop, &replay, current.as_deref())?);
        }

        match response {
            None => Err(ureq::Error::StatusCode(401)),
            Some(response) if status_as_error && response.status().as_u16() >= 400 => {
                Err(ureq::Error::StatusCode(response.status().as_u16()))
            }
            Some(response) => Ok(response),
        }
    }

    /// Sends `hop` through the resend agent, with credentials only if `current` is given
    /// (the hop goes to the original origin).
    fn resend(
        &self,
        sent: &Sent,
        hop: &Hop,
        replay: &Replay,
        current: Option<&Current>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut headers = sent.headers.clone();
        for name in [&self.header_name, &HeaderName::from_static(API_KEY)] {
            headers.remove(name);
        }
        headers.remove(HOST);
        if Origin::of(&hop.uri) != sent.origin {
            headers.remove(COOKIE);
        }
        if !hop.with_body {
            headers.remove(CONTENT_TYPE);
            headers.remove(CONTENT_LENGTH);
        }
        if let Some(current) = current {
            self.add_credentials(&mut headers, current.header.clone());
        }
        let body = match replay {
            Replay::Bytes(bytes) if hop.with_body => {
                set_length(&mut headers, bytes.len());
                replay_body(bytes)
            }
            _ => SendBody::none(),
        };
        let mut builder = Request::builder()
            .method(hop.method.clone())
            .uri(hop.uri.clone());
        if let Some(all) = builder.headers_mut() {
            *all = headers;
        }
        let request = builder.body(body)?;
        let _passthrough = PassThrough::enter(&self.lifecycle);
        request
            .with_agent(&self.resend_agent)
            .configure()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .run()
    }
}

/// What the middleware remembers of a request it authorized, to resend it.
struct Sent {
    origin: Origin,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// One request in a chain of redirects.
struct Hop {
    method: Method,
    uri: Uri,
    /// Whether this hop carries the original body (a 303 turns the request into a GET).
    with_body: bool,
}

/// What to do with a request's body before the first send.
enum Plan {
    /// Pass it on unread: it cannot be kept (no explicit `Content-Type`, or replay is off).
    PassOn,
    /// The request has no body.
    NoBody,
    /// Read it, and keep it if it fits under the cap.
    Keep,
}

impl Plan {
    fn for_request(sent: &Sent, max_bytes: u64) -> Plan {
        let has_type = sent.headers.contains_key(CONTENT_TYPE);
        let bodiless = matches!(
            sent.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) || (sent.method == Method::DELETE && !has_type);
        if bodiless {
            Plan::NoBody
        } else if has_type && max_bytes > 0 {
            Plan::Keep
        } else {
            Plan::PassOn
        }
    }
}

/// Whether a request can be sent again, and with what body.
enum Replay {
    /// The request has no body: it can always be resent.
    NoBody,
    /// The body, kept to be resent.
    Bytes(Arc<[u8]>),
    /// The body was not kept: the request can be resent only without it (after a 303).
    Impossible,
}

impl Replay {
    fn possible(&self, with_body: bool) -> bool {
        match self {
            Replay::NoBody | Replay::Bytes(_) => true,
            Replay::Impossible => !with_body,
        }
    }
}

fn replay_body(bytes: &Arc<[u8]>) -> SendBody<'static> {
    SendBody::from_owned_reader(Cursor::new(Arc::clone(bytes)))
}

/// A body rebuilt from bytes has no size ureq can see: without the header it would go out
/// chunked.
fn set_length(headers: &mut HeaderMap, length: usize) {
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
}

/// Scheme, host and port: where credentials may go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(uri: &Uri) -> Origin {
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        Origin {
            host: uri.host().unwrap_or("").to_ascii_lowercase(),
            port: uri.port_u16().or(default_port),
            scheme,
        }
    }
}

/// The `Location` of a redirect response, if it is one.
fn redirect_location(response: &Response<Body>) -> Option<String> {
    let status = response.status().as_u16();
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The method and body of the request that follows a redirect, as browsers and ureq do:
/// 303 becomes GET (HEAD stays), 301/302 turn a POST into a GET, 307/308 keep both.
fn method_after_redirect(status: u16, method: &Method, with_body: bool) -> (Method, bool) {
    match status {
        303 if *method != Method::HEAD => (Method::GET, false),
        301 | 302 if *method == Method::POST => (Method::GET, false),
        _ => (method.clone(), with_body),
    }
}

/// Resolves a `Location` against the URI it answered.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>()
        && uri.scheme().is_some()
    {
        return Some(uri);
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let absolute = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    absolute.parse().ok()
}

thread_local! {
    /// The lifecycles doing their own traffic on this thread (token requests, resends):
    /// their middleware lets those requests through, so it never re-enters itself.
    static PASS_THROUGH: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// While alive, requests on this thread through the middleware of `lifecycle` pass
/// through untouched.
pub(crate) struct PassThrough {
    id: usize,
}

impl PassThrough {
    pub(crate) fn enter(lifecycle: &Lifecycle) -> PassThrough {
        let id = std::ptr::from_ref(lifecycle) as usize;
        PASS_THROUGH.with(|active| active.borrow_mut().push(id));
        PassThrough { id }
    }

    fn active(lifecycle: &Lifecycle) -> bool {
        let id = std::ptr::from_ref(lifecycle) as usize;
        PASS_THROUGH.with(|active| active.borrow().contains(&id))
    }
}

impl Drop for PassThrough {
    fn drop(&mut self) {
        PASS_THROUGH.with(|active| {
            let mut active = active.borrow_mut();
            if let Some(at) = active.iter().rposition(|id| *id == self.id) {
                active.remove(at);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Origin::of(&"http://127.0.0.1:8080/x".parse().unwrap());
        let b = Origin::of(&"http://127.0.0.1:8080/y?z".parse().unwrap());
        let c = Origin::of(&"http://127.0.0.1:8081/x".parse().unwrap());
        let d = Origin::of(&"https://127.0.0.1:8080/x".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let implicit = Origin::of(&"https://Example.com/".parse().unwrap());
        let explicit = Origin::of(&"https://example.com:443/".parse().unwrap());
        assert_eq!(implicit, explicit);
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let base: Uri = "http://h:1/a/b?q".parse().unwrap();
        let cases = [
            ("http://other/x", "http://other/x"),
            ("//other:2/x", "http://other:2/x"),
            ("/root", "http://h:1/root"),
            ("sib", "http://h:1/a/sib"),
        ];
        for (location, expected) in cases {
            assert_eq!(resolve(&base, location).unwrap().to_string(), expected);
        }
    }

    #[test]
    fn redirects_change_method_as_ureq_does() {
        assert_eq!(
            method_after_redirect(303, &Method::POST, true),
            (Method::GET, false)
        );
        assert_eq!(
            method_after_redirect(302, &Method::POST, true),
            (Method::GET, false)
        );
        assert_eq!(
            method_after_redirect(307, &Method::POST, true),
            (Method::POST, true)
        );
        assert_eq!(
            method_after_redirect(301, &Method::PUT, true),
            (Method::PUT, true)
        );
        assert_eq!(
            method_after_redirect(303, &Method::HEAD, false),
            (Method::HEAD, false)
        );
    }

    #[test]
    fn pass_through_is_per_lifecycle_and_scoped() {
        struct Never(crate::ClientInfo);
        impl Authorizer for Never {
            fn client_info(&self) -> &crate::ClientInfo {
                &self.0
            }
            fn authorize(&mut self) -> Result<Token, Error> {
                Err(Error::other("never"))
            }
        }
        let one = AuthMiddleware::new(Never(crate::ClientInfo::new("a", "")));
        let two = AuthMiddleware::new(Never(crate::ClientInfo::new("b", "")));
        {
            let _guard = PassThrough::enter(&one.inner.lifecycle);
            assert!(PassThrough::active(&one.inner.lifecycle));
            assert!(!PassThrough::active(&two.inner.lifecycle));
        }
        assert!(!PassThrough::active(&one.inner.lifecycle));
    }
}
