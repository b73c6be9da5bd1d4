//! A login that starts from an API's URL alone, as the Model Context Protocol's
//! authorization asks: the API's protected-resource metadata (RFC 9728) names its
//! authorization server, which is discovered (RFC 8414), a client is registered there when
//! none is given (RFC 7591), and every request for a token names the API (RFC 8707).
//!
//! - `challenge`: the API's `WWW-Authenticate` header (RFC 9110 §11.6.1).
//! - `metadata`: finding the API's document and checking that it describes this API.
//! - `registration`: registering a client and the file registered clients are kept in.
//!
//! This file holds the builder ([`ResourceLoginBuilder`]) and what a built
//! [`AuthorizationCode`] keeps of it ([`ResourceBinding`]).

mod challenge;
mod metadata;
mod registration;

use std::fmt;
use std::path::PathBuf;

use super::endpoint::TokenEndpoint;
use super::response::OAuthError;
use super::{AuthorizationCode, ClientAuth};
use crate::http::{HttpClient, check_endpoint};
use crate::store::CredentialSet;
use crate::{ClientInfo, Error, ErrorKind};
use registration::Registered;
pub(crate) use registration::RegistrationFile;

/// The client id an [`AuthorizationCode`] shows before its client is registered.
const UNREGISTERED: &str = "(not registered yet)";

/// The redirect URI a client is registered with when none was set: the loopback address
/// on any port (RFC 8252 §7.3 asks servers to accept any port for loopback).
const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/";

impl AuthorizationCode {
    /// A login for the API at `resource_url`, which is all you need to know: see
    /// [`ResourceLoginBuilder`] for what [`build`](ResourceLoginBuilder::build) fetches,
    /// in which order, and what it refuses.
    ///
    /// ```no_run
    /// use en_core_auth::{AuthMiddleware, oauth2::AuthorizationCode};
    ///
    /// let login = AuthorizationCode::for_resource("https://mcp.example.com/mcp")
    ///     .registration_file("/home/me/.config/my-tool/clients.json")
    ///     .build()?;
    /// assert_eq!(login.resource(), Some("https://mcp.example.com/mcp"));
    /// let auth = AuthMiddleware::new(login);
    /// let bearer = auth.access_token()?; // registers a client once, opens the browser once
    /// # let _ = bearer;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn for_resource(resource_url: impl Into<String>) -> ResourceLoginBuilder {
        ResourceLoginBuilder {
            api: resource_url.into(),
            client: None,
            registration_file: None,
            allow_insecure_http: false,
            http: None,
            auth: None,
        }
    }
}

/// Sets up an [`AuthorizationCode`] login from an API's URL
/// ([`AuthorizationCode::for_resource`]).
///
/// [`build`](ResourceLoginBuilder::build) does, in this order:
///
/// 1. One unauthenticated `GET` of the API. A `401` whose `WWW-Authenticate` has a
///    `Bearer` challenge with `resource_metadata="…"` (RFC 9728 §5.1; every header and
///    every challenge in it is read, RFC 9110 §11.6.1) names the metadata document;
///    otherwise it is looked for at `/.well-known/oauth-protected-resource{path}`, then
///    `/.well-known/oauth-protected-resource`, on the API's origin (RFC 9728 §3.1).
/// 2. The document's `resource` must describe this API (RFC 9728 §3.3 and §7.3): the same
///    origin, and the API's URL (a trailing `/` aside) or a path prefix of it. Otherwise
///    the build fails with [`Configuration`](ErrorKind::Configuration) naming both, and
///    nothing is sent to the authorization servers the document names: no discovery, no
///    registration, no browser. A hostile API cannot send the login elsewhere, nor obtain
///    a token meant for another API.
/// 3. The first of its `authorization_servers` that can be discovered is (OpenID Connect
///    Discovery / RFC 8414, the document's `issuer` checked as
///    [`AuthorizationCode::discover`] checks it).
///
/// Every URL (the API, the metadata, the authorization server and its endpoints) must be
/// `https`, loopback `http` aside, unless [`allow_insecure_http`](Self::allow_insecure_http).
///
/// The login then sends `resource=<the document's resource>` (RFC 8707 §2.1, §2.2) in
/// the authorization request, the code exchange and every refresh; the server binds the
/// tokens to it. Without [`client_info`](Self::client_info), the first browser login
/// registers a client (RFC 7591): a loopback redirect URI on any port, the
/// `authorization_code` and `refresh_token` grants, and `none` (a public client) where the
/// server offers it, else `client_secret_post` or `client_secret_basic`. Errors from the
/// registration endpoint are typed as token errors (`invalid_redirect_uri`,
/// `invalid_client_metadata`: [`Configuration`](ErrorKind::Configuration)). With
/// [`registration_file`](Self::registration_file) the registered client is kept, and the
/// next run refreshes with it. When the token endpoint answers `invalid_client` (the
/// server forgot the client), the registration is dropped, and the next login registers
/// again (once, with a new browser login).
///
/// The login's [`credential_set`](crate::Authorizer::credential_set) names the
/// authorization server and the resource, and is the same before and after registration
/// and from one run to the next: one token store may hold the tokens of several APIs of
/// one server, and never hands one API's token to another.
///
/// ```no_run
/// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
///
/// // A client registered beforehand, over a proxy, to a lab API on plain HTTP.
/// let login = AuthorizationCode::for_resource("http://api.lab.internal/v1")
///     .client_info(ClientInfo::new("my-tool", ""))
///     .allow_insecure_http()
///     .build()?
///     .with_scopes(["read"]);
/// # let _ = login;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct ResourceLoginBuilder {
    api: String,
    client: Option<ClientInfo>,
    registration_file: Option<PathBuf>,
    allow_insecure_http: bool,
    http: Option<HttpClient>,
    auth: Option<ClientAuth>,
}

impl ResourceLoginBuilder {
    /// A client registered beforehand at the authorization server: no registration then.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::AuthorizationCode};
    /// let builder = AuthorizationCode::for_resource("https://api.example.com/mcp")
    ///     .client_info(ClientInfo::new("my-tool", ""));
    /// # let _ = builder;
    /// ```
    pub fn client_info(mut self, client_info: ClientInfo) -> Self {
        self.client = Some(client_info);
        self
    }

    /// Where registered clients are kept between runs: a JSON file, written with mode
    /// 0600 to a new file that replaces the old one (never half written), holding the
    /// clients of any number of authorization servers (one per server and redirect URI),
    /// so one file serves every API a tool talks to. Registrations never go into a token
    /// store. Without it, a registration lasts as long as the authorizer.
    ///
    /// ```
    /// use en_core_auth::oauth2::AuthorizationCode;
    /// let builder = AuthorizationCode::for_resource("https://api.example.com/mcp")
    ///     .registration_file("/home/me/.config/my-tool/clients.json");
    /// # let _ = builder;
    /// ```
    pub fn registration_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.registration_file = Some(path.into());
        self
    }

    /// Allows plain-HTTP URLs to hosts other than loopback, for the API, its metadata and
    /// the authorization server. Tokens then cross the network unencrypted.
    ///
    /// ```
    /// use en_core_auth::oauth2::AuthorizationCode;
    /// let builder = AuthorizationCode::for_resource("http://api.lab.internal/v1").allow_insecure_http();
    /// # let _ = builder;
    /// ```
    pub fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// The HTTP client for the API's probe, the metadata, discovery, registration and
    /// token requests (default: [`HttpClient::new`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::{http::HttpClient, oauth2::AuthorizationCode};
    /// let builder = AuthorizationCode::for_resource("https://api.example.com/mcp")
    ///     .http_client(HttpClient::new().with_timeouts(Duration::from_secs(2), Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// How a client given with [`client_info`](Self::client_info) authenticates (default:
    /// as the server's metadata suggests). A registered client authenticates as its
    /// registration says.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::{AuthorizationCode, ClientAuth}};
    /// let builder = AuthorizationCode::for_resource("https://api.example.com/mcp")
    ///     .client_info(ClientInfo::new("my-tool", "secret"))
    ///     .client_auth(ClientAuth::SecretPost);
    /// # let _ = builder;
    /// ```
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Finds the API's metadata, checks it, and discovers its authorization server (see
    /// [`ResourceLoginBuilder`]). Registration waits for the first browser login.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for a bad or insecure URL, no metadata,
    /// metadata for another resource (naming both), no `authorization_servers`, or none
    /// that can be discovered; the network's and the servers' errors as they come.
    ///
    /// ```
    /// use en_core_auth::{ErrorKind, oauth2::AuthorizationCode};
    /// let err = AuthorizationCode::for_resource("http://api.example.com/mcp").build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn build(self) -> Result<AuthorizationCode, Error> {
        check_endpoint(&self.api, self.allow_insecure_http)?;
        if self.api.contains('#') {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the API URL `{}` must not have a fragment (RFC 8707 §2)",
                    self.api
                ),
            ));
        }
        let http = self.http.unwrap_or_default();
        let document = metadata::find(&http, &self.api, self.allow_insecure_http)?;
        if document.authorization_servers.is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the protected-resource metadata at {} names no authorization_servers",
                    document.url
                ),
            ));
        }
        let registering = self.client.is_none();
        let mut failures = Vec::new();
        for issuer in &document.authorization_servers {
            let client = self
                .client
                .clone()
                .unwrap_or_else(|| ClientInfo::new(UNREGISTERED, ""));
            let mut builder = AuthorizationCode::builder(client)
                .issuer(issuer)
                .http_client(http.clone());
            if self.allow_insecure_http {
                builder = builder.allow_insecure_http();
            }
            // A client yet to be registered authenticates as its registration will say.
            match (&self.auth, registering) {
                (Some(auth), false) => builder = builder.client_auth(auth.clone()),
                (_, true) => builder = builder.client_auth(ClientAuth::SecretPost),
                (None, false) => {}
            }
            match builder.build() {
                Ok(login) => {
                    let registration = registering
                        .then(|| self.registration_file.clone().map(RegistrationFile::new));
                    return login.attach_resource(document.resource.clone(), registration);
                }
                Err(error) => {
                    log::debug!("authorization server {issuer} is not usable: {error}");
                    failures.push(format!("{issuer}: {error}"));
                }
            }
        }
        Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "none of the authorization servers named by {} could be discovered: {}",
                document.url,
                failures.join("; ")
            ),
        ))
    }
}

impl fmt::Debug for ResourceLoginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceLoginBuilder")
            .field("api", &self.api)
            .field("client", &self.client)
            .field("registration_file", &self.registration_file)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

/// What an [`AuthorizationCode`] made by [`AuthorizationCode::for_resource`] keeps: the
/// resource its tokens are for, the authorization server, and (without a given client) the
/// registration.
pub(crate) struct ResourceBinding {
    resource: String,
    issuer: String,
    registration: Option<Registration>,
}

/// What [`ResourceBinding::known_client`] found.
enum Known {
    /// The client in use fits (or was given).
    InUse,
    /// A client kept in the registration file is now in use.
    Adopted,
    /// No client is known: one must be registered.
    Unknown,
}

/// A client registered (or to be registered) at the authorization server.
struct Registration {
    endpoint: Option<String>,
    methods: Vec<String>,
    file: Option<RegistrationFile>,
    current: Option<Registered>,
}

impl ResourceBinding {
    /// The binding for a login discovered into `endpoint`; `registration` is `Some` when
    /// the client is to be registered (with the file to keep it in, if any).
    pub(crate) fn new(
        resource: String,
        endpoint: &TokenEndpoint,
        registration: Option<Option<RegistrationFile>>,
    ) -> Result<ResourceBinding, Error> {
        let Some(metadata) = &endpoint.metadata else {
            return Err(Error::new(
                ErrorKind::Configuration,
                "a resource login needs a discovered authorization server",
            ));
        };
        let registration = registration.map(|file| Registration {
            endpoint: metadata.endpoints.registration.clone(),
            methods: metadata.auth_methods.clone(),
            file,
            current: None,
        });
        Ok(ResourceBinding {
            resource,
            issuer: metadata.issuer.clone(),
            registration,
        })
    }

    /// Takes the client kept in the registration file for the default redirect URI, if
    /// any, so that the login names its client from the start (nothing is sent).
    pub(crate) fn adopt_kept(&mut self, endpoint: &mut TokenEndpoint) -> Result<(), Error> {
        self.known_client(endpoint, DEFAULT_REDIRECT_URI)
            .map(|_| ())
    }

    /// The resource the tokens are for (RFC 8707 `resource`).
    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    /// Before a browser login: the client, from this authorizer, the registration file, or
    /// registered now. Returns whether the client changed.
    pub(crate) fn before_login(
        &mut self,
        endpoint: &mut TokenEndpoint,
        redirect_uri: Option<&str>,
    ) -> Result<bool, Error> {
        let redirect_uri = redirect_uri.unwrap_or(DEFAULT_REDIRECT_URI);
        match self.known_client(endpoint, redirect_uri)? {
            Known::InUse => return Ok(false),
            Known::Adopted => return Ok(true),
            Known::Unknown => {}
        }
        let issuer = &self.issuer;
        let Some(registration) = &mut self.registration else {
            return Ok(false);
        };
        let Some(registration_endpoint) = &registration.endpoint else {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the authorization server {issuer} offers no registration_endpoint \
                     (RFC 7591): register a client there and give it with client_info"
                ),
            ));
        };
        let method = registration::auth_method(&registration.methods)?;
        let registered = registration::register(
            &endpoint.http,
            registration_endpoint,
            issuer,
            redirect_uri,
            method,
            endpoint.allow_insecure_http,
        )?;
        log::info!(
            "registered client {} at {issuer} ({})",
            registered.client_id,
            registered.token_endpoint_auth_method
        );
        if let Some(file) = &registration.file
            && let Err(error) = file.keep(&registered)
        {
            // The login can go on with the client; the next run will register again.
            log::warn!("could not keep the registered client: {error}");
        }
        registration.adopt(endpoint, registered);
        Ok(true)
    }

    /// Before a refresh: the client the refresh token was issued to, from this authorizer
    /// or the registration file. Never a new registration: a refresh token goes only to
    /// the client it belongs to, so without one the refresh fails (and a new login
    /// follows). Returns whether the client changed.
    pub(crate) fn before_refresh(
        &mut self,
        endpoint: &mut TokenEndpoint,
        redirect_uri: Option<&str>,
    ) -> Result<bool, Error> {
        match self.known_client(endpoint, redirect_uri.unwrap_or(DEFAULT_REDIRECT_URI))? {
            Known::InUse => Ok(false),
            Known::Adopted => Ok(true),
            Known::Unknown => Err(Error::new(
                ErrorKind::CredentialsRejected,
                format!(
                    "no registered client is known for {}, so the refresh token (issued to a \
                     client registered earlier) cannot be used; a new login registers one",
                    self.issuer
                ),
            )),
        }
    }

    /// The client for `redirect_uri`: the one in use (or given), else the one kept in the
    /// registration file, now in use.
    fn known_client(
        &mut self,
        endpoint: &mut TokenEndpoint,
        redirect_uri: &str,
    ) -> Result<Known, Error> {
        let Some(registration) = &mut self.registration else {
            return Ok(Known::InUse);
        };
        if registration.has_client_for(redirect_uri) {
            return Ok(Known::InUse);
        }
        match registration.kept(&self.issuer, redirect_uri)? {
            Some(kept) => {
                registration.adopt(endpoint, kept);
                Ok(Known::Adopted)
            }
            None => Ok(Known::Unknown),
        }
    }

    /// After a token request failed: `invalid_client` for a registered client means the
    /// server forgot it, so the registration is dropped (here and in the file) and the
    /// next login registers again.
    pub(crate) fn after_error(&mut self, endpoint: &mut TokenEndpoint, error: &Error) {
        let Some(registration) = &mut self.registration else {
            return;
        };
        let forgotten = error
            .downcast_ref::<OAuthError>()
            .is_some_and(|oauth| oauth.error() == "invalid_client");
        if !forgotten {
            return;
        }
        let Some(current) = registration.current.take() else {
            return;
        };
        log::info!(
            "{} no longer knows client {}: registering again at the next login",
            self.issuer,
            current.client_id
        );
        if let Some(file) = &registration.file
            && let Err(error) = file.drop_client(&self.issuer, &current.client_id)
        {
            log::warn!("could not drop the forgotten client: {error}");
        }
        endpoint.client = ClientInfo::new(UNREGISTERED, "");
    }

    /// The credential set: the authorization server, the resource, the endpoints, the
    /// client when it was given (a registered one is left out, so that the set is the
    /// same before and after registration and from run to run), the extra parameters of
    /// the token and authorization requests, and the scopes.
    pub(crate) fn credential_set(
        &self,
        endpoint: &TokenEndpoint,
        authorization_url: &str,
        extra: &[(String, String)],
    ) -> CredentialSet {
        let set = CredentialSet::new("authorization_code", &self.issuer)
            .param("resource", &self.resource)
            .param("token_endpoint", &endpoint.url)
            .param("authorization_endpoint", authorization_url);
        let set = match &self.registration {
            Some(_) => set.param("client", "registered dynamically"),
            None => set.client(&endpoint.client),
        };
        let set = endpoint
            .parameters
            .iter()
            .fold(set, |set, (name, value)| set.param(name, value));
        extra
            .iter()
            .fold(set, |set, (name, value)| {
                set.param(&format!("authorization {name}"), value)
            })
            .scopes(&endpoint.scopes)
    }
}

impl Registration {
    /// Whether the client in use was registered with `redirect_uri`.
    fn has_client_for(&self, redirect_uri: &str) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.redirect_uri == redirect_uri)
    }

    fn kept(&self, issuer: &str, redirect_uri: &str) -> Result<Option<Registered>, Error> {
        match &self.file {
            Some(file) => file.find(issuer, redirect_uri),
            None => Ok(None),
        }
    }

    fn adopt(&mut self, endpoint: &mut TokenEndpoint, registered: Registered) {
        endpoint.client = registered.client_info();
        endpoint.auth = registered.client_auth();
        endpoint.auth_chosen = true;
        self.current = Some(registered);
    }
}

impl fmt::Debug for ResourceBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceBinding")
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field(
                "registration_file",
                &self
                    .registration
                    .as_ref()
                    .and_then(|r| r.file.as_ref().map(|f| f.path().to_owned())),
            )
            .finish_non_exhaustive()
    }
}
