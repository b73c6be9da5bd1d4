//! A person's login in the browser: the authorization code grant (RFC 6749 §4.1) with PKCE
//! (RFC 7636, S256) and a loopback redirect (RFC 8252 §7.3).

use std::fmt;
use std::time::Duration;

use super::callback::Expected;
use super::client_auth::form_urlencode;
use super::endpoint::{Builder, Resend, TokenEndpoint, common_settings};
use super::interactive::{IdTokenCheck, code_challenge, discovered_endpoints, random_string};
use super::loopback::Loopback;
use super::resource::ResourceBinding;
use super::revocation;
use crate::http::check_endpoint;
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

/// How long [`AuthorizationCode`] waits for the browser by default: five minutes, time to
/// find a password manager and answer an MFA prompt.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

type Browser = Box<dyn FnMut(&str) -> Result<(), Error> + Send>;

/// An [`Authorizer`] that logs a person in with their browser, as `gh auth login` and
/// `gcloud auth login` do: the authorization code grant with PKCE and a loopback redirect.
///
/// [`authorize`](Authorizer::authorize) starts a one-shot listener on `127.0.0.1` (a free
/// port, or the port of [`with_redirect_uri`](Self::with_redirect_uri)), hands the
/// authorization URL to the browser callback (by default the system's opener, the URL also
/// printed to stderr so that it works over SSH), waits for the one callback whose `state`
/// matches, answers it with a page saying the terminal can be used again, and exchanges the
/// code with its PKCE verifier. [`refresh`](Authorizer::refresh) uses the refresh token and
/// never opens the browser: when the refresh token is refused, the middleware calls
/// `authorize()` again. [`revoke`](Authorizer::revoke) logs out at the server's revocation
/// endpoint (RFC 7009).
///
/// With a [`FileStore`](crate::store::FileStore) on the middleware, the refresh token
/// survives between runs, so a CLI asks the person again only when it dies.
///
/// # Security
///
/// - The listener binds `127.0.0.1` only, takes one matching request and closes. The
///   timeout bounds the whole wait: each connection is read side by side under its own
///   short deadline, so an idle or slow connection (a browser's preconnect, a local
///   process trickling bytes) delays nothing.
/// - `state`, the PKCE verifier and `nonce` (sent when `openid` is asked) come from the
///   OS random source; the verifier never leaves this process except to the token
///   endpoint, and nothing secret goes into the authorization URL.
/// - A request with another `state` or a duplicated parameter is answered with an error
///   page, logged and ignored: any web page can aim a request at a loopback port, and must
///   not be able to end a login in progress. A callback with this login's `state` whose
///   RFC 9207 `iss` names another issuer, or that lacks `iss` when the discovered
///   metadata announces `authorization_response_iss_parameter_supported`, ends the login
///   at once ([`Other`](ErrorKind::Other)); `error=access_denied` is
///   [`CredentialsRejected`](ErrorKind::CredentialsRejected); no callback within the
///   timeout is [`Transport`](ErrorKind::Transport). In none of these is the token
///   endpoint called.
///
/// ```no_run
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::AuthorizationCode};
///
/// let login = AuthorizationCode::discover(ClientInfo::new("my-cli", ""), "https://idp.example.com")?
///     .with_scopes(["openid", "offline_access"]);
/// let auth = AuthMiddleware::new(login);
/// let bearer = auth.access_token()?; // opens the browser once
/// # let _ = bearer;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct AuthorizationCode {
    endpoint: TokenEndpoint,
    authorization_url: String,
    revocation_url: Option<String>,
    redirect_uri: Option<String>,
    browser: Browser,
    timeout: Duration,
    /// Extra parameters of the authorization request.
    extra: Vec<(String, String)>,
    id_tokens: IdTokenCheck,
    /// Set by [`for_resource`](AuthorizationCode::for_resource): the API the tokens are
    /// for, and the client registration.
    resource: Option<ResourceBinding>,
    /// Reads a redirect URL the person pastes (`with_pasted_redirect`); used by one login.
    pasted: Option<super::paste::PasteReader>,
}

impl AuthorizationCode {
    /// A login at `authorization_url` whose code is exchanged at `token_url`. A public
    /// client (empty secret) sends only its id; a confidential one authenticates as
    /// [`ClientAuth`](super::ClientAuth) says (default `client_secret_basic`).
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for an empty client id or a URL that is
    /// not `https` (loopback `http` is accepted).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(
    ///     ClientInfo::new("my-cli", ""),
    ///     "https://idp.example.com/authorize",
    ///     "https://idp.example.com/token",
    /// )?;
    /// assert_eq!(login.authorization_url(), "https://idp.example.com/authorize");
    /// let err = AuthorizationCode::new(ClientInfo::new("my-cli", ""), "http://idp.example.com/a", "https://idp.example.com/t")
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn new(
        client_info: ClientInfo,
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Result<Self, Error> {
        let authorization_url = authorization_url.into();
        check_endpoint(&authorization_url, false)?;
        let endpoint = Builder::new(client_info, Ok).token_url(token_url).build()?;
        Ok(AuthorizationCode::with_parts(
            endpoint,
            authorization_url,
            None,
        ))
    }

    /// A login at the authorization, token and revocation endpoints named by the issuer's
    /// metadata (OpenID Connect Discovery, completed from RFC 8414's document when an
    /// endpoint is missing there).
    ///
    /// # Errors
    ///
    /// As [`ClientCredentials::discover`](super::ClientCredentials::discover), and
    /// [`Configuration`](ErrorKind::Configuration) when the metadata names no
    /// `authorization_endpoint`.
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::discover(ClientInfo::new("my-cli", ""), "https://idp.example.com")?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn discover(client_info: ClientInfo, issuer_url: impl Into<String>) -> Result<Self, Error> {
        AuthorizationCode::builder(client_info)
            .issuer(issuer_url)
            .build()
    }

    /// A [`Builder`] for discovery with your own [`HttpClient`](crate::http::HttpClient) or over plain HTTP to a host
    /// that is not loopback. It needs [`issuer`](Builder::issuer): the authorization URL
    /// comes from the metadata.
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::builder(ClientInfo::new("my-cli", ""))
    ///     .issuer("http://idp.lab.internal")
    ///     .allow_insecure_http()
    ///     .build()?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(client_info: ClientInfo) -> Builder<AuthorizationCode> {
        Builder::new(client_info, |mut endpoint| {
            let endpoints = discovered_endpoints(
                &mut endpoint,
                |e| e.authorization.as_ref(),
                "authorization_endpoint",
            )?;
            let authorization_url = endpoints.authorization.unwrap_or_default();
            check_endpoint(&authorization_url, endpoint.allow_insecure_http)?;
            let id_tokens = IdTokenCheck::discovered(&endpoint)?;
            let mut login =
                AuthorizationCode::with_parts(endpoint, authorization_url, endpoints.revocation);
            login.id_tokens = id_tokens;
            Ok(login)
        })
    }

    fn with_parts(
        endpoint: TokenEndpoint,
        authorization_url: String,
        revocation_url: Option<String>,
    ) -> AuthorizationCode {
        AuthorizationCode {
            endpoint,
            authorization_url,
            revocation_url,
            redirect_uri: None,
            browser: Box::new(open_in_browser),
            timeout: DEFAULT_LOGIN_TIMEOUT,
            extra: Vec::new(),
            id_tokens: IdTokenCheck::default(),
            resource: None,
            pasted: None,
        }
    }

    /// Binds this discovered login to `resource` (RFC 8707): `resource=` goes in the
    /// authorization request and every token request. `registration` is `Some` when the
    /// client is to be registered, with the file to keep it in.
    pub(crate) fn attach_resource(
        mut self,
        resource: String,
        registration: Option<Option<super::resource::RegistrationFile>>,
    ) -> Result<Self, Error> {
        let mut binding = ResourceBinding::new(resource.clone(), &self.endpoint, registration)?;
        binding.adopt_kept(&mut self.endpoint)?;
        self.id_tokens = IdTokenCheck::discovered(&self.endpoint)?;
        self.endpoint
            .add_parameter("resource".to_owned(), resource.clone());
        self.extra.push(("resource".to_owned(), resource));
        self.resource = Some(binding);
        Ok(self)
    }

    /// The resource (RFC 8707) this login's tokens are for: the API's, for a login made
    /// with [`for_resource`](AuthorizationCode::for_resource); `None` otherwise.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?;
    /// assert_eq!(login.resource(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_ref().map(ResourceBinding::resource)
    }

    /// A failed token request: a registered client the server has forgotten is dropped.
    fn token_request_failed(&mut self, error: Error) -> Error {
        if let Some(binding) = &mut self.resource {
            binding.after_error(&mut self.endpoint, &error);
        }
        error
    }

    /// Uses exactly this redirect URI instead of `http://127.0.0.1:<free port>/`: for
    /// servers that match callback URLs exactly, as AWS Cognito's managed login does. It
    /// must be `http://127.0.0.1:<port>/<path>` (or `localhost`, which some browsers
    /// resolve to `::1` first: prefer `127.0.0.1`). The listener still binds `127.0.0.1`
    /// only.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_redirect_uri("http://127.0.0.1:8400/callback");
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Listens for the browser's redirect on this port of `127.0.0.1` (redirect URI
    /// `http://127.0.0.1:PORT/`) instead of a free one, so that `ssh -L PORT:127.0.0.1:PORT
    /// host` carries the redirect from a person's laptop to a login running on `host`. A
    /// port already in use is a [`Configuration`](crate::ErrorKind::Configuration) error
    /// when the login starts, not a wait.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_callback_port(8400);
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_callback_port(self, port: u16) -> Self {
        self.with_redirect_uri(format!("http://127.0.0.1:{port}/"))
    }

    /// Lets the person finish the login from another machine (over SSH): `read`, called
    /// once on its own thread when the login starts, returns what they pasted, either the
    /// URL their browser ended on (the page that failed to load is fine) or the bare code.
    /// The login takes whichever comes first, the pasted line or the loopback callback
    /// (which still waits, for people who forward the port). A pasted URL is checked as a
    /// callback is: another `state` (or, for a discovered issuer, an `iss` naming another
    /// issuer) ends the login with an error and nothing is exchanged. An empty line ends
    /// the login too (`CredentialsRejected`), as does a line that is too long, holds
    /// control characters or carries no code; the pasted text is never logged nor quoted.
    /// When the callback comes first, the thread stays blocked in `read` until it returns.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, Error, ErrorKind, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_browser(|url| {
    ///         eprintln!("Open this URL on your machine:\n    {url}\nThen paste the URL it ends on:");
    ///         Ok(())
    ///     })
    ///     .with_pasted_redirect(|| {
    ///         let mut line = String::new();
    ///         std::io::stdin()
    ///             .read_line(&mut line)
    ///             .map_err(|e| Error::new(ErrorKind::Other, e))?;
    ///         Ok(line)
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_pasted_redirect(
        mut self,
        read: impl FnOnce() -> Result<String, Error> + Send + 'static,
    ) -> Self {
        self.pasted = Some(Box::new(read));
        self
    }

    /// Replaces the browser opener: `open` gets the authorization URL. A CLI's
    /// `--no-browser` prints it only; a test performs the redirect itself. The default
    /// prints the URL to stderr and runs `xdg-open`, `open` or the Windows URL handler;
    /// failing to start those is not an error, since the URL was printed.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_browser(|url| {
    ///         eprintln!("Open {url} to log in");
    ///         Ok(())
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_browser(
        mut self,
        open: impl FnMut(&str) -> Result<(), Error> + Send + 'static,
    ) -> Self {
        self.browser = Box::new(open);
        self
    }

    /// Adds a parameter to the authorization request (the URL the browser opens), such as
    /// `prompt=consent` (needed by many servers to grant `offline_access`), `audience`
    /// (Auth0) or `login_hint`. It is visible in the browser's history: never put a secret
    /// here. Parameters the login sets itself (`response_type`, `client_id`,
    /// `redirect_uri`, `state`, `code_challenge`, `code_challenge_method`, `scope`,
    /// `nonce`) are ignored, with a warning in the log.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_authorization_parameter("prompt", "consent");
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_authorization_parameter(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let name = name.into();
        const OWN: &[&str] = &[
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "scope",
            "nonce",
        ];
        if OWN.contains(&name.as_str()) {
            log::warn!("ignoring the authorization request parameter `{name}`: the login sets it");
        } else {
            self.extra.push((name, value.into()));
        }
        self
    }

    /// How long to wait for the browser to come back (default
    /// [`DEFAULT_LOGIN_TIMEOUT`], five minutes); then the login fails with
    /// [`Transport`](ErrorKind::Transport).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_timeout(Duration::from_secs(120));
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The RFC 7009 revocation endpoint for [`revoke`](Authorizer::revoke) (default: the
    /// discovered one).
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for a URL that is not `https` (loopback
    /// `http` accepted).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?
    ///     .with_revocation_url("https://i.example/revoke")?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_revocation_url(mut self, url: impl Into<String>) -> Result<Self, Error> {
        let url = url.into();
        check_endpoint(&url, self.endpoint.allow_insecure_http)?;
        self.revocation_url = Some(url);
        Ok(self)
    }

    /// The authorization endpoint's URL.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?;
    /// assert_eq!(login.authorization_url(), "https://i.example/a");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn authorization_url(&self) -> &str {
        &self.authorization_url
    }

    /// The revocation endpoint's URL, when one is known.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?;
    /// assert_eq!(login.revocation_url(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn revocation_url(&self) -> Option<&str> {
        self.revocation_url.as_deref()
    }

    /// Whether the ID tokens this login gets are verified: with the feature `jwt`, when
    /// the login was discovered from an issuer that names its JWKS. Their signature (keys
    /// cached by `kid`, fetched again for an unknown `kid`), `iss`, `aud`, `exp` and, right
    /// after a browser login, the `nonce` are checked; a token that fails is
    /// [`MalformedResponse`](ErrorKind::MalformedResponse). Otherwise nothing is checked.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// // Not discovered: there is no issuer or JWKS to check against.
    /// let login = AuthorizationCode::new(ClientInfo::new("cli", ""), "https://i.example/a", "https://i.example/t")?;
    /// assert!(!login.verifies_id_tokens());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn verifies_id_tokens(&self) -> bool {
        self.id_tokens.is_on()
    }

    /// The URL the browser opens: the authorization endpoint with the request's
    /// parameters, none of them secret.
    fn request_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        nonce: Option<&str>,
    ) -> String {
        let scope = self.endpoint.scope();
        let mut parameters = vec![
            ("response_type", "code"),
            ("client_id", self.endpoint.client.client_id()),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(scope) = &scope {
            parameters.push(("scope", scope));
        }
        if let Some(nonce) = nonce {
            parameters.push(("nonce", nonce));
        }
        parameters.extend(self.extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let query: Vec<String> = parameters
            .iter()
            .map(|(name, value)| format!("{name}={}", form_urlencode(value)))
            .collect();
        let separator = if self.authorization_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{}", self.authorization_url, query.join("&"))
    }
}

common_settings!(
    AuthorizationCode,
    "use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};\nlet auth = AuthorizationCode::new(ClientInfo::new(\"cli\", \"\"), \"https://idp.example.com/authorize\", \"https://idp.example.com/token\")?",
    "They go in the authorization URL, not in the code exchange; `openid` also sends a \
     `nonce`, and many servers issue a refresh token only with `offline_access`. A refresh \
     sends none: the server grants the original scope (RFC 6749 §6)."
);

impl Authorizer for AuthorizationCode {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// Runs the browser login and exchanges the code.
    fn authorize(&mut self) -> Result<Token, Error> {
        if let Some(binding) = &mut self.resource
            && binding.before_login(&mut self.endpoint, self.redirect_uri.as_deref())?
        {
            self.id_tokens = IdTokenCheck::discovered(&self.endpoint)?;
        }
        let state = random_string()?;
        let verifier = random_string()?;
        let nonce = if self.endpoint.scopes.iter().any(|scope| scope == "openid") {
            Some(random_string()?)
        } else {
            None
        };
        let listener = Loopback::bind(self.redirect_uri.as_deref())?;
        let redirect_uri = listener.redirect_uri().to_owned();
        let url = self.request_url(
            &redirect_uri,
            &state,
            &code_challenge(&verifier),
            nonce.as_deref(),
        );
        log::debug!("login: waiting for the browser at {redirect_uri}");
        (self.browser)(&url)?;
        if let Some(read) = self.pasted.take() {
            let issuer = self.endpoint.metadata.as_ref().map(|m| m.issuer.as_str());
            super::paste::forward(read, &redirect_uri, &state, issuer);
        }
        let metadata = self.endpoint.metadata.as_ref();
        let expected = Expected {
            state: &state,
            issuer: metadata.map(|m| m.issuer.as_str()),
            iss_required: metadata.is_some_and(|m| m.iss_in_responses),
        };
        let code = listener.wait(&expected, self.timeout)?;
        // An authorization code works once: it is resent only when the server surely
        // never saw it.
        let token = self
            .endpoint
            .request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect_uri),
                    ("code_verifier", &verifier),
                ],
                Resend::OnlyIfUnprocessed,
            )
            .map_err(|error| self.token_request_failed(error))?;
        self.id_tokens
            .check(&self.endpoint, &token, nonce.as_deref())?;
        Ok(token)
    }

    /// Uses the refresh token; without one, logs in again.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        match token.refresh_token() {
            Some(refresh_token) => {
                if let Some(binding) = &mut self.resource
                    && binding.before_refresh(&mut self.endpoint, self.redirect_uri.as_deref())?
                {
                    self.id_tokens = IdTokenCheck::discovered(&self.endpoint)?;
                }
                let renewed = self
                    .endpoint
                    .refresh(refresh_token, None)
                    .map_err(|error| self.token_request_failed(error))?;
                self.id_tokens
                    .check_refreshed(&self.endpoint, &renewed, token)?;
                Ok(renewed)
            }
            None => self.authorize(),
        }
    }

    /// The grant, token URL, client, extra token-request parameters, scopes, and the
    /// authorization endpoint with its extra parameters (an `audience` there changes the
    /// token as much as one at the token endpoint).
    fn credential_set(&self) -> crate::store::CredentialSet {
        if let Some(binding) = &self.resource {
            return binding.credential_set(&self.endpoint, &self.authorization_url, &self.extra);
        }
        self.extra.iter().fold(
            self.endpoint
                .credential_set("authorization_code")
                .param("authorization_endpoint", &self.authorization_url),
            |set, (name, value)| set.param(&format!("authorization {name}"), value),
        )
    }

    /// Revokes the refresh token, then the access token, at the revocation endpoint.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) when no revocation endpoint is known
    /// (the tokens then stay valid at the server until they expire), else the server's.
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        match &self.revocation_url {
            Some(url) => revocation::revoke(&self.endpoint, url, token),
            None => Err(no_revocation_endpoint()),
        }
    }
}

pub(crate) fn no_revocation_endpoint() -> Error {
    Error::new(
        ErrorKind::Configuration,
        "no revocation endpoint is known (give one, or discover it): the tokens stay valid \
         at the server until they expire",
    )
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("endpoint", &self.endpoint)
            .field("authorization_url", &self.authorization_url)
            .field("revocation_url", &self.revocation_url)
            .field("redirect_uri", &self.redirect_uri)
            .field("timeout", &self.timeout)
            .field("resource", &self.resource)
            .field("pasted_redirect", &self.pasted.is_some())
            .finish_non_exhaustive()
    }
}

/// The default browser callback: the URL on stderr (it works over SSH, and carries nothing
/// secret), then the system's opener, whose failure is only logged.
pub(crate) fn open_in_browser(url: &str) -> Result<(), Error> {
    eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
    let (program, arguments): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        // `start` goes through cmd, which would read the `&`s of the URL as commands.
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    let spawned = std::process::Command::new(program)
        .args(arguments)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reaped on a thread so that no zombie is left while the login waits.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => log::debug!("could not start {program}: {e}"),
    }
    Ok(())
}
