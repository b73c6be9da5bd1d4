//! The `EN_CORE_AUTH_*` variables, read the way the `en-core-auth` command reads them: one
//! code path for the command line tool and for programs, so that both build the same
//! authorizer and find the same cached token (one cache key, one token).
//!
//! A script needs two lines:
//!
//! ```no_run
//! # fn main() -> Result<(), en_core_auth::Error> {
//! let auth = en_core_auth::AuthMiddleware::from_env()?;
//! let agent = auth.agent(ureq::Agent::config_builder());
//! # let _ = agent;
//! # Ok(())
//! # }
//! ```
//!
//! [`Settings`] is the parsed configuration, for programs that want to look at it (or add
//! to it) before building. Every missing or contradictory setting is an
//! [`ErrorKind::Configuration`] error naming the variable to set, never showing a value, and
//! returned before anything is sent. [`VARIABLES`] lists the variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oauth2::{AuthorizationCode, ClientAuth, ClientCredentials};
use crate::srp::SrpAuthorizer;
use crate::store::{CredentialSet, FileStore, TokenStore};
use crate::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

/// Every variable [`Settings::from_vars`] reads, with what it sets: the table that
/// `en-core-auth --help` and the README show.
///
/// ```
/// assert!(en_core_auth::config::VARIABLES
///     .iter()
///     .any(|(name, _)| *name == "EN_CORE_AUTH_CLIENT_SECRET"));
/// ```
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "EN_CORE_AUTH_TOKEN_URL",
        "OAuth2 token endpoint (client credentials)",
    ),
    (
        "EN_CORE_AUTH_ISSUER",
        "OAuth2 issuer (discovered); without a client secret: a person's login",
    ),
    (
        "EN_CORE_AUTH_USER_POOL_ID",
        "AWS Cognito user pool (SRP login)",
    ),
    ("EN_CORE_AUTH_CLIENT_ID", "client id"),
    ("EN_CORE_AUTH_CLIENT_SECRET", "client secret, if any"),
    ("EN_CORE_AUTH_SCOPES", "scopes, space separated"),
    (
        "EN_CORE_AUTH_CLIENT_AUTH",
        "basic (default), post or private-key-jwt",
    ),
    (
        "EN_CORE_AUTH_PRIVATE_KEY",
        "PEM key file for private-key-jwt (RS256 or ES256)",
    ),
    ("EN_CORE_AUTH_USERNAME", "Cognito user name"),
    ("EN_CORE_AUTH_PASSWORD", "Cognito password"),
    (
        "EN_CORE_AUTH_ENDPOINT",
        "Cognito API endpoint (default: the pool's region)",
    ),
    (
        "EN_CORE_AUTH_PROFILE",
        "which login (account) to use; default: default",
    ),
    (
        "EN_CORE_AUTH_TOKEN_STORAGE",
        "file (default), keyring (OS keychain) or none",
    ),
    (
        "EN_CORE_AUTH_CACHE_DIR",
        "token cache directory (default: ~/.cache/en-core-auth)",
    ),
    (
        "EN_CORE_AUTH_REDIS_URL",
        "keep tokens in Redis instead (feature redis)",
    ),
    (
        "EN_CORE_AUTH_NO_CACHE",
        "1: neither read nor write the cache",
    ),
    (
        "EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE",
        "1: keep no refresh token in the cache",
    ),
    (
        "EN_CORE_AUTH_CALLBACK_PORT",
        "login: fixed loopback port of the browser's redirect",
    ),
    (
        "EN_CORE_AUTH_REDIRECT_URI",
        "login: exact loopback redirect URI",
    ),
];

/// The service name of the keychain items `en-core-auth` keeps (`secret-tool search
/// service en-core-auth` lists them on Linux).
#[cfg(feature = "keyring")]
pub const KEYRING_SERVICE: &str = "en-core-auth";

/// What kind of credentials the settings describe.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OAuth2 client credentials, at a token URL or an issuer's discovered token endpoint.
    ClientCredentials,
    /// A person's login made with `en-core-auth login` (an issuer and a client id, no
    /// client secret), renewed with its refresh token.
    Login,
    /// An AWS Cognito user pool, with SRP.
    Srp,
}

/// Where tokens are kept between runs (`EN_CORE_AUTH_TOKEN_STORAGE`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStorage {
    /// Files in the cache directory (or Redis with `EN_CORE_AUTH_REDIS_URL`): the default.
    File,
    /// Nowhere: every run asks the identity provider.
    None,
    /// The OS keychain ([`KeyringStore`](crate::store::KeyringStore), feature `keyring`).
    #[cfg(feature = "keyring")]
    Keyring,
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientAuthChoice {
    Basic,
    Post,
    PrivateKeyJwt(PathBuf),
}

/// Which identity provider, and how to get tokens from it.
#[derive(Clone)]
enum Provider {
    TokenUrl(String),
    /// Client credentials at a discovered token endpoint.
    Issuer(String),
    /// A person's stored login at this issuer.
    Login(String),
    Srp {
        user_pool_id: String,
        username: String,
        password: String,
        endpoint: Option<String>,
    },
}

/// The configuration read from `EN_CORE_AUTH_*` variables (see [`VARIABLES`]): which
/// identity provider, which client, where tokens are kept. `Debug` shows no secret.
///
/// ```
/// use en_core_auth::config::{Kind, Settings};
///
/// let vars = [
///     ("EN_CORE_AUTH_TOKEN_URL", "https://idp.example.com/oauth2/token"),
///     ("EN_CORE_AUTH_CLIENT_ID", "my-client"),
///     ("EN_CORE_AUTH_CLIENT_SECRET", "s3cr3t"),
/// ];
/// let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
/// let settings = Settings::from_vars(lookup)?;
/// assert_eq!(settings.kind(), Kind::ClientCredentials);
/// assert!(!format!("{settings:?}").contains("s3cr3t"));
///
/// // Without a secret, the error names the variable to set.
/// let err = Settings::from_vars(|name| lookup(name).filter(|_| name != "EN_CORE_AUTH_CLIENT_SECRET"))
///     .unwrap_err();
/// assert!(err.to_string().contains("EN_CORE_AUTH_CLIENT_SECRET"));
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct Settings {
    provider: Provider,
    client: ClientInfo,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    client_auth: ClientAuthChoice,
    profile: String,
    storage: TokenStorage,
    cache_dir: Option<PathBuf>,
    cache_refresh_tokens: bool,
    redis_url: Option<String>,
    callback_port: Option<u16>,
    redirect_uri: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("kind", &self.kind())
            .field("identity_provider", &self.identity_provider())
            .field("client_id", &self.client.client_id())
            .field("scopes", &self.scopes)
            .field("profile", &self.profile)
            .field("storage", &self.storage)
            .field("cache_dir", &self.cache_dir)
            .field("redis", &self.redis_url.is_some())
            .finish_non_exhaustive()
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Configuration, message.into())
}

/// A yes/no variable: `1`, `true`, `yes` or `on` (any case) is yes.
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> bool {
    lookup(name).is_some_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl Settings {
    /// The settings of this process's environment: [`from_vars`](Settings::from_vars)
    /// reading `std::env`.
    ///
    /// ```no_run
    /// let settings = en_core_auth::config::Settings::from_env()?;
    /// println!("{settings:?}");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn from_env() -> Result<Settings, Error> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// The settings that `lookup` gives for the variables of [`VARIABLES`]. An unset,
    /// empty or blank variable is not set. Errors are [`ErrorKind::Configuration`] and
    /// name the variable, never its value.
    ///
    /// ```
    /// use en_core_auth::config::Settings;
    /// let err = Settings::from_vars(|name| {
    ///     (name == "EN_CORE_AUTH_CLIENT_ID").then(|| "my-client".to_owned())
    /// })
    /// .unwrap_err();
    /// assert!(err.to_string().contains("EN_CORE_AUTH_TOKEN_URL"));
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let setting = |name: &str| lookup(name).map(|value| value.trim().to_owned());

        let storage = match setting("EN_CORE_AUTH_TOKEN_STORAGE").as_deref() {
            None | Some("file") => TokenStorage::File,
            Some("none") => TokenStorage::None,
            #[cfg(feature = "keyring")]
            Some("keyring") => TokenStorage::Keyring,
            #[cfg(not(feature = "keyring"))]
            Some("keyring") => {
                return Err(config_error(
                    "EN_CORE_AUTH_TOKEN_STORAGE=keyring needs en-core-auth built with the \
                     `keyring` feature",
                ));
            }
            Some(_) => {
                return Err(config_error(
                    "EN_CORE_AUTH_TOKEN_STORAGE must be keyring, file or none",
                ));
            }
        };
        let no_cache = flag(&lookup, "EN_CORE_AUTH_NO_CACHE");
        let redis_url = lookup("EN_CORE_AUTH_REDIS_URL");
        if redis_url.is_some() && (no_cache || storage == TokenStorage::None) {
            return Err(config_error(
                "EN_CORE_AUTH_REDIS_URL asks for a Redis cache and EN_CORE_AUTH_NO_CACHE (or \
                 EN_CORE_AUTH_TOKEN_STORAGE=none) for none: choose one",
            ));
        }
        #[cfg(feature = "keyring")]
        if redis_url.is_some() && storage == TokenStorage::Keyring {
            return Err(config_error(
                "EN_CORE_AUTH_REDIS_URL and EN_CORE_AUTH_TOKEN_STORAGE=keyring name two \
                 stores: choose one",
            ));
        }
        if redis_url.is_some() && !cfg!(feature = "redis") {
            return Err(config_error(
                "EN_CORE_AUTH_REDIS_URL needs en-core-auth built with the `redis` feature",
            ));
        }
        let storage = if no_cache {
            TokenStorage::None
        } else {
            storage
        };
        let profile = match setting("EN_CORE_AUTH_PROFILE") {
            None => "default".to_owned(),
            Some(profile) if valid_profile(&profile) => profile,
            Some(_) => {
                return Err(config_error(
                    "EN_CORE_AUTH_PROFILE: a profile name is 1 to 64 letters, digits, `-`, `_` \
                     or `.`",
                ));
            }
        };
        let callback_port = match setting("EN_CORE_AUTH_CALLBACK_PORT") {
            None => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|port| *port != 0)
                    .ok_or_else(|| {
                        config_error(
                            "EN_CORE_AUTH_CALLBACK_PORT must be a port number (1 to 65535)",
                        )
                    })?,
            ),
        };

        let client_secret = lookup("EN_CORE_AUTH_CLIENT_SECRET").unwrap_or_default();
        let client_id = setting("EN_CORE_AUTH_CLIENT_ID")
            .ok_or_else(|| config_error("no client id: set EN_CORE_AUTH_CLIENT_ID"))?;
        let client_auth = match setting("EN_CORE_AUTH_CLIENT_AUTH").as_deref() {
            None | Some("basic") => ClientAuthChoice::Basic,
            Some("post") => ClientAuthChoice::Post,
            Some("private-key-jwt") => ClientAuthChoice::PrivateKeyJwt(
                setting("EN_CORE_AUTH_PRIVATE_KEY")
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        config_error("private-key-jwt needs a key: set EN_CORE_AUTH_PRIVATE_KEY")
                    })?,
            ),
            Some(_) => {
                return Err(config_error(
                    "EN_CORE_AUTH_CLIENT_AUTH must be basic, post or private-key-jwt",
                ));
            }
        };
        let scopes: Vec<String> = setting("EN_CORE_AUTH_SCOPES")
            .map(|scopes| scopes.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();

        let keyed = matches!(client_auth, ClientAuthChoice::PrivateKeyJwt(_));
        let needs_secret = || match client_secret.is_empty() && !keyed {
            true => Err(config_error(
                "client credentials need a client secret: set EN_CORE_AUTH_CLIENT_SECRET",
            )),
            false => Ok(()),
        };
        let provider = match (
            setting("EN_CORE_AUTH_USER_POOL_ID"),
            setting("EN_CORE_AUTH_TOKEN_URL"),
            setting("EN_CORE_AUTH_ISSUER"),
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(config_error(
                    "both a user pool (EN_CORE_AUTH_USER_POOL_ID) and an OAuth2 token URL or \
                     issuer (EN_CORE_AUTH_TOKEN_URL, EN_CORE_AUTH_ISSUER) are set: choose one",
                ));
            }
            (None, Some(_), Some(_)) => {
                return Err(config_error(
                    "both EN_CORE_AUTH_TOKEN_URL and EN_CORE_AUTH_ISSUER are set: choose one",
                ));
            }
            (None, None, None) => {
                return Err(config_error(
                    "no identity provider: set EN_CORE_AUTH_TOKEN_URL, EN_CORE_AUTH_ISSUER or \
                     EN_CORE_AUTH_USER_POOL_ID",
                ));
            }
            (Some(user_pool_id), None, None) => Provider::Srp {
                user_pool_id,
                username: setting("EN_CORE_AUTH_USERNAME")
                    .ok_or_else(|| config_error("SRP needs a user: set EN_CORE_AUTH_USERNAME"))?,
                password: lookup("EN_CORE_AUTH_PASSWORD").ok_or_else(|| {
                    config_error("SRP needs a password: set EN_CORE_AUTH_PASSWORD")
                })?,
                endpoint: setting("EN_CORE_AUTH_ENDPOINT"),
            },
            (None, Some(token_url), None) => {
                needs_secret()?;
                Provider::TokenUrl(token_url)
            }
            // No secret with an issuer: a person's stored login (`en-core-auth login`).
            (None, None, Some(issuer)) if needs_secret().is_err() => Provider::Login(issuer),
            (None, None, Some(issuer)) => Provider::Issuer(issuer),
        };
        Ok(Settings {
            provider,
            client: ClientInfo::new(client_id, client_secret),
            scopes,
            params: Vec::new(),
            client_auth,
            profile,
            storage,
            cache_dir: setting("EN_CORE_AUTH_CACHE_DIR").map(PathBuf::from),
            cache_refresh_tokens: !flag(&lookup, "EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE"),
            redis_url,
            callback_port,
            redirect_uri: setting("EN_CORE_AUTH_REDIRECT_URI"),
        })
    }

    /// Adds a token request parameter (`audience`, `resource`…) of client credentials; it
    /// is part of the cache key. Ignored by other kinds.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_TOKEN_URL", "https://idp.example.com/token"),
    /// #     ("EN_CORE_AUTH_CLIENT_ID", "c"), ("EN_CORE_AUTH_CLIENT_SECRET", "s")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::config::Settings;
    /// let orders = Settings::from_vars(lookup)?.with_parameter("audience", "orders");
    /// let billing = Settings::from_vars(lookup)?.with_parameter("audience", "billing");
    /// assert_ne!(orders.credential_set().cache_key(), billing.credential_set().cache_key());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_parameter(mut self, name: &str, value: &str) -> Settings {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same settings as a person's login at the issuer, whether or not a client secret
    /// is set (a confidential client logs people in too): what `en-core-auth login` and
    /// `logout` use. A token URL or a user pool: a `Configuration` error.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "web"),
    /// #     ("EN_CORE_AUTH_CLIENT_SECRET", "s")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::config::{Kind, Settings};
    /// let settings = Settings::from_vars(lookup)?;
    /// assert_eq!(settings.kind(), Kind::ClientCredentials);
    /// assert_eq!(settings.for_login()?.kind(), Kind::Login);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn for_login(mut self) -> Result<Settings, Error> {
        self.provider = match self.provider {
            Provider::Issuer(issuer) | Provider::Login(issuer) => Provider::Login(issuer),
            _ => {
                return Err(config_error(
                    "a person's login needs an issuer: set EN_CORE_AUTH_ISSUER",
                ));
            }
        };
        Ok(self)
    }

    /// What kind of credentials these are.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::config::{Kind, Settings};
    /// assert_eq!(Settings::from_vars(lookup)?.kind(), Kind::Login);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn kind(&self) -> Kind {
        match self.provider {
            Provider::TokenUrl(_) | Provider::Issuer(_) => Kind::ClientCredentials,
            Provider::Login(_) => Kind::Login,
            Provider::Srp { .. } => Kind::Srp,
        }
    }

    /// What names the identity provider: the token URL, the issuer, or the user pool id.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let settings = en_core_auth::config::Settings::from_vars(lookup)?;
    /// assert_eq!(settings.identity_provider(), "https://idp.example.com");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn identity_provider(&self) -> &str {
        match &self.provider {
            Provider::TokenUrl(url) | Provider::Issuer(url) | Provider::Login(url) => url,
            Provider::Srp { user_pool_id, .. } => user_pool_id,
        }
    }

    /// The client (id and secret, if any).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let settings = en_core_auth::config::Settings::from_vars(lookup)?;
    /// assert_eq!(settings.client_info().client_id(), "my-cli");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    /// The Cognito user name (SRP), if any.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert_eq!(en_core_auth::config::Settings::from_vars(lookup)?.username(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn username(&self) -> Option<&str> {
        match &self.provider {
            Provider::Srp { username, .. } => Some(username),
            _ => None,
        }
    }

    /// The scopes asked for. A person's login without `EN_CORE_AUTH_SCOPES` asks for
    /// `openid offline_access` (a refresh token, and an ID token saying who logged in).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let settings = en_core_auth::config::Settings::from_vars(lookup)?;
    /// assert_eq!(settings.scopes(), ["openid", "offline_access"]);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn scopes(&self) -> Vec<String> {
        match self.provider {
            Provider::Login(_) if self.scopes.is_empty() => {
                vec!["openid".to_owned(), "offline_access".to_owned()]
            }
            _ => self.scopes.clone(),
        }
    }

    /// The profile (account) these settings use: `EN_CORE_AUTH_PROFILE`, else `default`.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert_eq!(en_core_auth::config::Settings::from_vars(lookup)?.profile(), "default");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The same settings for another profile (account).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let work = en_core_auth::config::Settings::from_vars(lookup)?.with_profile("work")?;
    /// assert_eq!(work.profile(), "work");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_profile(mut self, profile: &str) -> Result<Settings, Error> {
        if !valid_profile(profile) {
            return Err(config_error(
                "a profile name is 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        self.profile = profile.to_owned();
        Ok(self)
    }

    /// Where tokens are kept.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::config::{Settings, TokenStorage};
    /// assert_eq!(Settings::from_vars(lookup)?.token_storage(), TokenStorage::File);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_storage(&self) -> TokenStorage {
        self.storage
    }

    /// Whether tokens are kept in Redis (`EN_CORE_AUTH_REDIS_URL`).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert!(!en_core_auth::config::Settings::from_vars(lookup)?.uses_redis());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some()
    }

    /// The cache directory given (`EN_CORE_AUTH_CACHE_DIR`); `None` for the default one.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert_eq!(en_core_auth::config::Settings::from_vars(lookup)?.cache_dir(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// Whether refresh tokens are kept in the cache (not with
    /// `EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE=1`).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert!(en_core_auth::config::Settings::from_vars(lookup)?.caches_refresh_tokens());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn caches_refresh_tokens(&self) -> bool {
        self.cache_refresh_tokens
    }

    /// The fixed loopback port of a login's redirect (`EN_CORE_AUTH_CALLBACK_PORT`).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli"),
    /// #     ("EN_CORE_AUTH_CALLBACK_PORT", "8400")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert_eq!(en_core_auth::config::Settings::from_vars(lookup)?.callback_port(), Some(8400));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn callback_port(&self) -> Option<u16> {
        self.callback_port
    }

    /// The exact redirect URI of a login (`EN_CORE_AUTH_REDIRECT_URI`), if given.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// assert_eq!(en_core_auth::config::Settings::from_vars(lookup)?.redirect_uri(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// The credential set tokens are cached under: the same for the `en-core-auth`
    /// command and for programs built on these settings (no secret in it).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::config::Settings;
    /// let default = Settings::from_vars(lookup)?;
    /// let work = default.clone().with_profile("work")?;
    /// assert_ne!(default.credential_set().cache_key(), work.credential_set().cache_key());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn credential_set(&self) -> CredentialSet {
        let with_params = |set: CredentialSet| {
            self.params
                .iter()
                .fold(set, |set, (name, value)| set.param(name, value))
        };
        let set = match &self.provider {
            Provider::TokenUrl(token_url) => match self.client_credentials(token_url) {
                Ok(inner) => inner.credential_set(),
                // A token URL that does not parse: `authorizer()` reports it.
                Err(_) => with_params(CredentialSet::new("client_credentials", token_url))
                    .client(&self.client)
                    .scopes(&self.scopes),
            },
            Provider::Issuer(issuer) => with_params(
                CredentialSet::new("client_credentials", &format!("issuer {issuer}"))
                    .client(&self.client),
            )
            .scopes(&self.scopes),
            Provider::Login(issuer) => login_credential_set(issuer, &self.client, &self.scopes()),
            Provider::Srp { .. } => match self.srp() {
                Ok(inner) => inner.credential_set(),
                Err(_) => CredentialSet::new("srp", self.identity_provider()),
            },
        };
        set.profile(&self.profile)
    }

    /// The token store the settings name: `None` for `EN_CORE_AUTH_TOKEN_STORAGE=none` (or
    /// `EN_CORE_AUTH_NO_CACHE=1`), Redis, or files in the cache directory.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_ISSUER", "https://idp.example.com"), ("EN_CORE_AUTH_CLIENT_ID", "my-cli"),
    /// #     ("EN_CORE_AUTH_CACHE_DIR", "/tmp/en-core-auth-doc")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let store = en_core_auth::config::Settings::from_vars(lookup)?.token_store()?;
    /// assert!(store.is_some());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_store(&self) -> Result<Option<Arc<dyn TokenStore>>, Error> {
        if self.storage == TokenStorage::None {
            return Ok(None);
        }
        let key = self.credential_set().cache_key();
        #[cfg(feature = "keyring")]
        if self.storage == TokenStorage::Keyring {
            let mut store = crate::store::KeyringStore::new(KEYRING_SERVICE, key)?
                .store_refresh_tokens(self.cache_refresh_tokens);
            if let Some(dir) = &self.cache_dir {
                store = store.with_lock_dir(dir);
            }
            return Ok(Some(Arc::new(store)));
        }
        #[cfg(feature = "redis")]
        if let Some(url) = &self.redis_url {
            let store = crate::store::RedisStore::new(url, key)?
                .store_refresh_tokens(self.cache_refresh_tokens);
            return Ok(Some(Arc::new(store)));
        }
        let store = match &self.cache_dir {
            Some(dir) => FileStore::in_dir(dir, key),
            None => FileStore::new(key)?,
        }
        .store_refresh_tokens(self.cache_refresh_tokens);
        #[cfg(feature = "testing")]
        let store = test_hooks(store);
        Ok(Some(Arc::new(store)))
    }

    /// The authorizer: client credentials, the stored login (renewed with its refresh
    /// token; when there is none, a `CredentialsRejected` error saying to run
    /// `en-core-auth login`, never a browser), or SRP. Discovery is deferred to the first
    /// token request, so that a run served from the cache makes no request at all.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_TOKEN_URL", "https://idp.example.com/token"),
    /// #     ("EN_CORE_AUTH_CLIENT_ID", "c"), ("EN_CORE_AUTH_CLIENT_SECRET", "s")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let authorizer = en_core_auth::config::Settings::from_vars(lookup)?.authorizer()?;
    /// assert_eq!(authorizer.client_info().client_id(), "c");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn authorizer(&self) -> Result<Box<dyn Authorizer>, Error> {
        self.authorizer_with(Ok)
    }

    /// [`authorizer`](Settings::authorizer), with an SRP authorizer passed through `srp`
    /// first: to answer challenges (MFA codes, a new password) or remember the device.
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_AbCdEf123"), ("EN_CORE_AUTH_CLIENT_ID", "c"),
    /// #     ("EN_CORE_AUTH_USERNAME", "alice"), ("EN_CORE_AUTH_PASSWORD", "pw")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// use en_core_auth::{Error, ErrorKind};
    /// let authorizer = en_core_auth::config::Settings::from_vars(lookup)?.authorizer_with(|srp| {
    ///     Ok(srp.with_challenge_handler(|_: &en_core_auth::srp::Challenge| {
    ///         Err(Error::new(ErrorKind::ChallengeRequired, "no terminal"))
    ///     }))
    /// })?;
    /// # let _ = authorizer;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn authorizer_with(
        &self,
        srp: impl FnOnce(SrpAuthorizer) -> Result<SrpAuthorizer, Error>,
    ) -> Result<Box<dyn Authorizer>, Error> {
        let client = self.client.clone();
        match &self.provider {
            // Cheap and offline: a bad URL is reported even when the cache has a token.
            Provider::TokenUrl(token_url) => Ok(Box::new(self.client_credentials(token_url)?)),
            Provider::Issuer(issuer) => {
                let (issuer, scopes, params) =
                    (issuer.clone(), self.scopes.clone(), self.params.clone());
                let auth = client_auth_of(&self.client_auth)?;
                Ok(Box::new(Deferred::lazy(client, move |client| {
                    let inner = with_params(
                        ClientCredentials::discover(client.clone(), issuer.clone())?
                            .with_scopes(scopes.clone()),
                        &params,
                    )
                    .with_client_auth(auth.clone());
                    Ok(Box::new(inner) as Box<dyn Authorizer>)
                })))
            }
            Provider::Login(issuer) => {
                let (issuer, scopes) = (issuer.clone(), self.scopes());
                Ok(Box::new(Deferred::lazy(client, move |client| {
                    let login = AuthorizationCode::discover(client.clone(), issuer.clone())?
                        .with_scopes(scopes.clone())
                        .with_browser(|_| {
                            Err(Error::new(
                                ErrorKind::CredentialsRejected,
                                "not logged in (or the login expired): run `en-core-auth login`",
                            ))
                        });
                    Ok(Box::new(login) as Box<dyn Authorizer>)
                })))
            }
            Provider::Srp { .. } => Ok(Box::new(srp(self.srp()?)?)),
        }
    }

    /// The middleware: [`authorizer`](Settings::authorizer) with
    /// [`token_store`](Settings::token_store).
    ///
    /// ```
    /// # let vars = [("EN_CORE_AUTH_TOKEN_URL", "https://idp.example.com/token"),
    /// #     ("EN_CORE_AUTH_CLIENT_ID", "c"), ("EN_CORE_AUTH_CLIENT_SECRET", "s"),
    /// #     ("EN_CORE_AUTH_TOKEN_STORAGE", "none")];
    /// # let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    /// let auth = en_core_auth::config::Settings::from_vars(lookup)?.middleware()?;
    /// assert_eq!(auth.client_id(), "c");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn middleware(&self) -> Result<AuthMiddleware, Error> {
        let mut builder = AuthMiddleware::builder(self.authorizer()?);
        if let Some(store) = self.token_store()? {
            builder = builder.token_store(store);
        }
        builder.try_build()
    }

    fn client_credentials(&self, token_url: &str) -> Result<ClientCredentials, Error> {
        Ok(with_params(
            ClientCredentials::new(self.client.clone(), token_url)?.with_scopes(&self.scopes),
            &self.params,
        )
        .with_client_auth(client_auth_of(&self.client_auth)?))
    }

    fn srp(&self) -> Result<SrpAuthorizer, Error> {
        let Provider::Srp {
            user_pool_id,
            username,
            password,
            endpoint,
        } = &self.provider
        else {
            return Err(Error::other("not an SRP configuration"));
        };
        let mut inner = SrpAuthorizer::new(self.client.clone(), user_pool_id, username, password)?;
        if let Some(endpoint) = endpoint {
            inner = inner.with_endpoint(endpoint)?;
        }
        Ok(inner)
    }
}

impl AuthMiddleware {
    /// The middleware that `en-core-auth` would use, from the `EN_CORE_AUTH_*` variables
    /// (see [`config::VARIABLES`](crate::config::VARIABLES)) with the command's rules and
    /// cache key: a program and the command share one token, and a program uses the login a
    /// person made with `en-core-auth login`. A missing or contradictory setting is an
    /// [`ErrorKind::Configuration`] error naming the variable (never its value), returned
    /// before anything is sent.
    ///
    /// ```no_run
    /// let auth = en_core_auth::AuthMiddleware::from_env()?;
    /// let agent = auth.agent(ureq::Agent::config_builder());
    /// # let _ = agent;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn from_env() -> Result<AuthMiddleware, Error> {
        Settings::from_env()?.middleware()
    }

    /// [`from_env`](AuthMiddleware::from_env) with the variables read through `lookup`
    /// (tests, a program's own configuration).
    ///
    /// ```
    /// let vars = [
    ///     ("EN_CORE_AUTH_TOKEN_URL", "https://idp.example.com/oauth2/token"),
    ///     ("EN_CORE_AUTH_CLIENT_ID", "my-client"),
    ///     ("EN_CORE_AUTH_CLIENT_SECRET", "s3cr3t"),
    ///     ("EN_CORE_AUTH_TOKEN_STORAGE", "none"),
    /// ];
    /// let auth = en_core_auth::AuthMiddleware::from_vars(|name| {
    ///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    /// })?;
    /// assert_eq!(auth.client_id(), "my-client");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthMiddleware, Error> {
        Settings::from_vars(lookup)?.middleware()
    }
}

/// The credential set of a person's login at `issuer`: the same for `login`, `logout`,
/// `status`, `token` and `header`, so that they all find one cache entry.
fn login_credential_set(issuer: &str, client: &ClientInfo, scopes: &[String]) -> CredentialSet {
    CredentialSet::new("oauth2 login", issuer)
        .client(client)
        .scopes(scopes)
}

/// A profile name: short, and safe in a file name, a log line and a keyring item.
fn valid_profile(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn with_params(inner: ClientCredentials, params: &[(String, String)]) -> ClientCredentials {
    params.iter().fold(inner, |inner, (name, value)| {
        inner.with_parameter(name, value)
    })
}

/// `EN_CORE_AUTH_CLIENT_AUTH`: a private key is read here, and neither the file's content
/// nor the parser's message (which could quote it) reaches an error.
fn client_auth_of(choice: &ClientAuthChoice) -> Result<ClientAuth, Error> {
    match choice {
        ClientAuthChoice::Basic => Ok(ClientAuth::SecretBasic),
        ClientAuthChoice::Post => Ok(ClientAuth::SecretPost),
        #[cfg(not(feature = "jwt"))]
        ClientAuthChoice::PrivateKeyJwt(_) => Err(config_error(
            "EN_CORE_AUTH_CLIENT_AUTH=private-key-jwt needs en-core-auth built with the `jwt` \
             feature",
        )),
        #[cfg(feature = "jwt")]
        ClientAuthChoice::PrivateKeyJwt(path) => {
            use crate::oauth2::PrivateKeyJwt;
            use jsonwebtoken::{Algorithm, EncodingKey};
            let pem = std::fs::read(path).map_err(|error| {
                config_error(format!(
                    "could not read the private key (EN_CORE_AUTH_PRIVATE_KEY) {}: {error}",
                    path.display()
                ))
            })?;
            let (key, algorithm) = match EncodingKey::from_rsa_pem(&pem) {
                Ok(key) => (key, Algorithm::RS256),
                Err(_) => match EncodingKey::from_ec_pem(&pem) {
                    Ok(key) => (key, Algorithm::ES256),
                    Err(_) => {
                        return Err(config_error(format!(
                            "{} (EN_CORE_AUTH_PRIVATE_KEY) is not a PEM RSA or EC (P-256) \
                             private key",
                            path.display()
                        )));
                    }
                },
            };
            Ok(ClientAuth::PrivateKeyJwt(PrivateKeyJwt::new(
                key, algorithm,
            )))
        }
    }
}

/// Only in builds with the `testing` feature: `EN_CORE_AUTH_TEST_PAUSE_BEFORE_RENAME_MS`
/// makes a save pause between writing the temporary file and renaming it, so that a test
/// can kill the process mid-write.
#[cfg(feature = "testing")]
fn test_hooks(store: FileStore) -> FileStore {
    match std::env::var("EN_CORE_AUTH_TEST_PAUSE_BEFORE_RENAME_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        Some(ms) => store.pause_before_rename(std::time::Duration::from_millis(ms)),
        None => store,
    }
}

type Build = Box<dyn FnMut(&ClientInfo) -> Result<Box<dyn Authorizer>, Error> + Send>;

/// An authorizer built on first use, so that a run served from the cache does no set-up
/// work that needs the network (discovery).
struct Deferred {
    client: ClientInfo,
    build: Build,
    inner: Option<Box<dyn Authorizer>>,
}

impl Deferred {
    fn lazy(
        client: ClientInfo,
        build: impl FnMut(&ClientInfo) -> Result<Box<dyn Authorizer>, Error> + Send + 'static,
    ) -> Deferred {
        Deferred {
            client,
            build: Box::new(build),
            inner: None,
        }
    }

    fn inner(&mut self) -> Result<&mut Box<dyn Authorizer>, Error> {
        if self.inner.is_none() {
            self.inner = Some((self.build)(&self.client)?);
        }
        self.inner
            .as_mut()
            .ok_or_else(|| Error::other("no authorizer"))
    }
}

impl Authorizer for Deferred {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        self.inner()?.authorize()
    }

    fn expired(&self, token: &Token) -> bool {
        match &self.inner {
            Some(inner) => inner.expired(token),
            // What the trait's default says; the authorizers built here do not override it.
            None => token.is_expired(),
        }
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        self.inner()?.refresh(token)
    }

    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        self.inner()?.revoke(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    const OAUTH: &[(&str, &str)] = &[
        ("EN_CORE_AUTH_TOKEN_URL", "https://env.example/token"),
        ("EN_CORE_AUTH_CLIENT_ID", "env-client"),
        ("EN_CORE_AUTH_CLIENT_SECRET", "env-s3cr3t"),
        ("EN_CORE_AUTH_SCOPES", "  read   write "),
    ];

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        OAUTH.iter().copied().filter(|(k, _)| *k != name).collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        let err = Settings::from_vars(vars(pairs)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        err.to_string()
    }

    #[test]
    fn client_credentials_from_the_environment() {
        let settings = Settings::from_vars(vars(OAUTH)).unwrap();
        assert_eq!(settings.kind(), Kind::ClientCredentials);
        assert_eq!(settings.client_info().client_id(), "env-client");
        assert_eq!(settings.scopes(), ["read", "write"]);
        assert_eq!(settings.profile(), "default");
        assert!(settings.caches_refresh_tokens());
        assert!(!format!("{settings:?}").contains("env-s3cr3t"));
    }

    #[test]
    fn every_missing_setting_names_its_variable_and_no_value() {
        for (pairs, expect) in [
            (without("EN_CORE_AUTH_CLIENT_ID"), "EN_CORE_AUTH_CLIENT_ID"),
            (
                without("EN_CORE_AUTH_TOKEN_URL"),
                "EN_CORE_AUTH_TOKEN_URL, EN_CORE_AUTH_ISSUER or EN_CORE_AUTH_USER_POOL_ID",
            ),
            (
                without("EN_CORE_AUTH_CLIENT_SECRET"),
                "EN_CORE_AUTH_CLIENT_SECRET",
            ),
        ] {
            let message = error(&pairs);
            assert!(message.contains(expect), "{message}");
            assert!(!message.contains("env-"), "{message}");
        }
        let srp = [
            ("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_P"),
            ("EN_CORE_AUTH_CLIENT_ID", "c"),
            ("EN_CORE_AUTH_USERNAME", "alice"),
        ];
        assert!(error(&srp).contains("EN_CORE_AUTH_PASSWORD"));
        assert!(error(&srp[..2]).contains("EN_CORE_AUTH_USERNAME"));
        let mut keyed = without("EN_CORE_AUTH_CLIENT_SECRET");
        keyed.push(("EN_CORE_AUTH_CLIENT_AUTH", "private-key-jwt"));
        assert!(error(&keyed).contains("EN_CORE_AUTH_PRIVATE_KEY"));
    }

    #[test]
    fn bad_values_name_the_variable_not_the_value() {
        for (name, value) in [
            ("EN_CORE_AUTH_CLIENT_AUTH", "magic-v4lue"),
            ("EN_CORE_AUTH_TOKEN_STORAGE", "cloud-v4lue"),
            ("EN_CORE_AUTH_CALLBACK_PORT", "99999-v4lue"),
            ("EN_CORE_AUTH_PROFILE", "a b/v4lue"),
        ] {
            let mut pairs = OAUTH.to_vec();
            pairs.push((name, value));
            let message = error(&pairs);
            assert!(message.contains(name), "{message}");
            assert!(!message.contains("v4lue"), "{message}");
        }
    }

    #[test]
    fn contradictions_are_refused() {
        let mut both = OAUTH.to_vec();
        both.push(("EN_CORE_AUTH_ISSUER", "https://issuer.example"));
        assert!(error(&both).contains("choose one"));
        let mut pool = OAUTH.to_vec();
        pool.push(("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_P"));
        assert!(error(&pool).contains("choose one"));
        let mut redis = OAUTH.to_vec();
        redis.push(("EN_CORE_AUTH_REDIS_URL", "redis://:pw@127.0.0.1/0"));
        redis.push(("EN_CORE_AUTH_NO_CACHE", "1"));
        let message = error(&redis);
        assert!(
            message.contains("choose one") && !message.contains("pw@"),
            "{message}"
        );
        // An empty or blank variable is unset.
        let mut empty = without("EN_CORE_AUTH_CLIENT_ID");
        empty.push(("EN_CORE_AUTH_CLIENT_ID", "  "));
        assert!(error(&empty).contains("no client id"));
    }

    #[test]
    fn an_issuer_without_a_secret_is_a_persons_login() {
        let login = [
            ("EN_CORE_AUTH_ISSUER", "https://idp.example"),
            ("EN_CORE_AUTH_CLIENT_ID", "my-cli"),
        ];
        let settings = Settings::from_vars(vars(&login)).unwrap();
        assert_eq!(settings.kind(), Kind::Login);
        // The key `en-core-auth login` has always stored the login under.
        assert_eq!(
            settings.credential_set().cache_key(),
            CredentialSet::new("oauth2 login", "https://idp.example")
                .client(&ClientInfo::new("my-cli", ""))
                .scopes(["openid", "offline_access"])
                .cache_key()
        );
        let work = settings.clone().with_profile("work").unwrap();
        assert_ne!(
            work.credential_set().cache_key(),
            settings.credential_set().cache_key()
        );
        let default = settings.clone().with_profile("default").unwrap();
        assert_eq!(
            default.credential_set().cache_key(),
            settings.credential_set().cache_key()
        );
    }

    /// The README's table is this one (and `en-core-auth --help` prints this one).
    #[test]
    fn the_readme_lists_every_variable() {
        let readme = include_str!("../README.md");
        for (name, what) in VARIABLES {
            let row = format!("| `{name}` | {what} |");
            assert!(readme.contains(&row), "README lacks: {row}");
        }
    }

    #[test]
    fn client_credentials_key_is_the_authorizers_own() {
        let settings = Settings::from_vars(vars(OAUTH))
            .unwrap()
            .with_parameter("audience", "orders");
        let authorizer = settings.authorizer().unwrap();
        assert_eq!(
            settings.credential_set().cache_key(),
            authorizer.credential_set().cache_key()
        );
    }
}
