//! [`SrpAuthorizer`]: a Cognito user-pool login with `USER_SRP_AUTH` (and a remembered
//! device's `DEVICE_SRP_AUTH`), refreshed with `REFRESH_TOKEN_AUTH` or, for app clients that
//! rotate refresh tokens, `GetTokensFromRefreshToken`.

use std::cell::Cell;
use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::challenge::{Challenge, ChallengeHandler, FirstFactor, LoginFlow, PasswordChange};
use super::cognito::{self, CognitoError, malformed, parameter};
use super::device::Device;
use super::math::{self, SrpClient};
use crate::http::{HttpClient, check_endpoint};
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

/// See [`SrpAuthorizer::on_device_change`].
type DeviceListener = Box<dyn FnMut(Option<&Device>) + Send>;
/// See [`SrpAuthorizer::on_password_change`].
type PasswordListener = Box<dyn FnMut(PasswordChange) + Send>;

/// The name a device registered by this crate gets in the user's device list.
const DEFAULT_DEVICE_NAME: &str = "en-core-auth";

/// The most challenges answered in one login (new password, then MFA, …) before giving up:
/// a server that keeps asking is not going to stop.
const MAX_CHALLENGES: usize = 8;

/// Logs a Cognito user-pool user in with the Secure Remote Password protocol
/// (`USER_SRP_AUTH`): the password never leaves the machine, only a proof of it.
///
/// Talks to the Cognito Identity Provider API directly (the pool's regional endpoint, or
/// [`with_endpoint`](Self::with_endpoint)); no AWS SDK and no AWS credentials are needed.
/// When the [`ClientInfo`] has a secret, `SECRET_HASH` is sent with every call. Renewals
/// use `REFRESH_TOKEN_AUTH`; when the refresh token is rejected,
/// [`AuthMiddleware`](crate::AuthMiddleware) logs in again.
///
/// To send the ID token instead of the access token (API Gateway Cognito authorizers often
/// want it), build the middleware with
/// [`use_id_token`](crate::base::AuthMiddlewareBuilder::use_id_token).
///
/// # ID tokens are verified (feature `jwt`)
///
/// With the `jwt` feature, every ID token a login or a refresh obtains is checked before it
/// is handed out: its signature against the pool's JWKS at
/// `<issuer>/.well-known/jwks.json` (fetched once, cached by `kid`, fetched again when a
/// token names a `kid` the cache lacks), `iss` = the issuer, `aud` = the client id,
/// `token_use` = `id` and `exp`. The issuer is the pool's,
/// `https://cognito-idp.<region>.amazonaws.com/<pool id>`, also when
/// [`with_endpoint`](Self::with_endpoint) names another AWS host (a VPC or FIPS endpoint);
/// an endpoint outside `amazonaws.com` (an emulator, or the crate's `LocalIdp`, which
/// issues so by default) is taken to issue as `<endpoint>/<pool id>`;
/// `with_issuer` sets it explicitly. A token that fails is a
/// [`MalformedResponse`](ErrorKind::MalformedResponse) error, not
/// [`CredentialsRejected`](ErrorKind::CredentialsRejected): the answer cannot be trusted,
/// but nothing says the user's credentials are wrong (and the CLI's exit status says
/// "malformed response", not "wrong password"). After a refresh that fails so,
/// [`AuthMiddleware`](crate::AuthMiddleware) logs in once, as after any failed refresh;
/// that login's ID token is checked the same way. Without the feature, ID tokens are passed
/// on unchecked, and [`verifies_id_tokens`](Self::verifies_id_tokens) says so.
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo};
/// use en_core_auth::srp::SrpAuthorizer;
///
/// let login = SrpAuthorizer::new(
///     ClientInfo::new("app-client-id", ""),
///     "us-east-1_Ab12Cd34",
///     "alice",
///     "correct horse battery staple",
/// )?;
/// assert_eq!(login.endpoint(), "https://cognito-idp.us-east-1.amazonaws.com/");
/// assert!(!format!("{login:?}").contains("horse"));
/// let auth = AuthMiddleware::builder(login).use_id_token().build();
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct SrpAuthorizer {
    client: ClientInfo,
    user_pool_id: String,
    pool_name: String,
    username: String,
    /// The password logins use: from the moment a new password goes out for
    /// `NEW_PASSWORD_REQUIRED`, that one.
    password: String,
    /// The password before a new one whose answer was lost: tried once more, and only if
    /// the new one is refused (Cognito never saw it). Never more: every wrong password
    /// counts toward the account's lockout.
    previous_password: Option<String>,
    /// Told what became of a new password.
    password_listener: Option<PasswordListener>,
    endpoint: String,
    allow_insecure_http: bool,
    http: HttpClient,
    handler: Option<Box<dyn ChallengeHandler>>,
    /// The user name Cognito answered with (the user may have logged in with an alias such
    /// as an email): `SECRET_HASH` of later calls, refresh included, must use it.
    cognito_username: Option<String>,
    flow: LoginFlow,
    /// Register the device a login returns (`NewDeviceMetadata`).
    remember_device: bool,
    device_name: String,
    /// The remembered device logins prove.
    device: Option<Device>,
    /// Told when a login registers a device or finds that Cognito forgot the one given.
    device_listener: Option<DeviceListener>,
    /// `Some(true)` once the app client is known to rotate refresh tokens (or was configured
    /// so): refreshes go through `GetTokensFromRefreshToken`.
    rotation: Option<bool>,
    /// A rotating refresh token whose exchange got no answer: Cognito may have used it up,
    /// and sending it again could be refused as a replay. The next refresh logs in instead.
    spent_refresh_token: Option<String>,
    /// Set when a challenge answer got no answer back (it may have been used up): the login
    /// starts over instead of failing on a replay.
    answer_lost: Cell<bool>,
    /// `iss` of the ID tokens, when set with `with_issuer`.
    #[cfg(feature = "jwt")]
    issuer: Option<String>,
    /// Checks the ID tokens; made at the first one, from the issuer then configured, and
    /// kept so that its JWKS cache serves every later login and refresh.
    #[cfg(feature = "jwt")]
    id_tokens: Option<crate::oauth2::id_token::IdTokenVerifier>,
}

impl fmt::Debug for SrpAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrpAuthorizer")
            .field("client", &self.client)
            .field("user_pool_id", &self.user_pool_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "previous_password",
                &self.previous_password.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl SrpAuthorizer {
    /// An authorizer for `username` in the pool `user_pool_id` (`<region>_<id>`), through
    /// the app client of `client_info` (its secret, if any, is used for `SECRET_HASH`).
    ///
    /// Fails with [`ErrorKind::Configuration`] for an empty client id, username or password,
    /// or a pool id that is not `<region>_<id>`.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let bad = SrpAuthorizer::new(ClientInfo::new("c", ""), "no-underscore", "u", "p");
    /// assert_eq!(bad.unwrap_err().kind(), ErrorKind::Configuration);
    /// ```
    pub fn new(
        client_info: ClientInfo,
        user_pool_id: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<SrpAuthorizer, Error> {
        client_info.validate()?;
        let user_pool_id = user_pool_id.into();
        let (region, pool_name) = split_pool_id(&user_pool_id)?;
        let username = username.into();
        let password = password.into();
        if username.is_empty() || password.is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                "the username and password must not be empty",
            ));
        }
        Ok(SrpAuthorizer {
            endpoint: format!("https://cognito-idp.{region}.amazonaws.com/"),
            pool_name: pool_name.to_owned(),
            user_pool_id,
            client: client_info,
            username,
            password,
            allow_insecure_http: false,
            http: HttpClient::new(),
            handler: None,
            cognito_username: None,
            flow: LoginFlow::UserSrp,
            remember_device: false,
            device_name: DEFAULT_DEVICE_NAME.to_owned(),
            device: None,
            device_listener: None,
            previous_password: None,
            password_listener: None,
            rotation: None,
            spent_refresh_token: None,
            answer_lost: Cell::new(false),
            #[cfg(feature = "jwt")]
            issuer: None,
            #[cfg(feature = "jwt")]
            id_tokens: None,
        })
    }

    /// An authorizer for a user who logs in without a password: the choice-based
    /// `USER_AUTH` flow with a one-time code (by default Cognito offers the choice,
    /// [`Challenge::SelectChallenge`]; pick one with [`with_login_flow`](Self::with_login_flow),
    /// such as `LoginFlow::UserAuth(Some(FirstFactor::EmailOtp))`). The handler answers with
    /// the code the user received.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{FirstFactor, LoginFlow, SrpAuthorizer};
    /// let login = SrpAuthorizer::passwordless(ClientInfo::new("c", ""), "eu-west-1_X", "u")?
    ///     .with_login_flow(LoginFlow::UserAuth(Some(FirstFactor::EmailOtp)));
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn passwordless(
        client_info: ClientInfo,
        user_pool_id: impl Into<String>,
        username: impl Into<String>,
    ) -> Result<SrpAuthorizer, Error> {
        let mut login = SrpAuthorizer::new(client_info, user_pool_id, username, "-")?;
        login.password = String::new();
        login.flow = LoginFlow::UserAuth(None);
        Ok(login)
    }

    /// How logins start (Cognito's `AuthFlow`); default [`LoginFlow::UserSrp`]. Whatever the
    /// flow, every challenge goes through the handler and devices and refreshes work the
    /// same.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{LoginFlow, SrpAuthorizer};
    /// // A pool that migrates users with a Lambda trigger needs the password itself.
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_login_flow(LoginFlow::UserPassword);
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_login_flow(mut self, flow: LoginFlow) -> SrpAuthorizer {
        self.flow = flow;
        self
    }

    /// Registers the device a login returns (Cognito device tracking), as Amplify's "remember
    /// this device" does: on a pool that tracks devices, a login without a device gets
    /// `NewDeviceMetadata`; the authorizer then makes a random device password, registers its
    /// SRP verifier with `ConfirmDevice` and, when the pool lets the user choose, marks it
    /// remembered with `UpdateDeviceStatus`. Later logins prove the device
    /// (`DEVICE_SRP_AUTH`) and skip MFA where the pool allows. Keep
    /// [`device`](Self::device) beside the refresh token and hand it back with
    /// [`with_device`](Self::with_device).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .remember_device(true);
    /// assert!(login.device().is_none()); // until a login registers one
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn remember_device(mut self, remember: bool) -> SrpAuthorizer {
        self.remember_device = remember;
        self
    }

    /// The name a device registered by [`remember_device`](Self::remember_device) gets
    /// (Cognito's `DeviceName`, shown in the user's device list); default `en-core-auth`.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .remember_device(true)
    ///     .with_device_name("build server 7");
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_device_name(mut self, name: impl Into<String>) -> SrpAuthorizer {
        self.device_name = name.into();
        self
    }

    /// Logs in as a device confirmed before (from [`device`](Self::device) of an earlier
    /// run): its key goes with the password proof, and the device proves itself with
    /// `DEVICE_SRP_AUTH` / `DEVICE_PASSWORD_VERIFIER`, so a remembered device is not asked
    /// for MFA. Refreshes of tokens bound to it send its `DEVICE_KEY`.
    ///
    /// When Cognito no longer knows the device, the login goes on without it (as Amplify
    /// does), asks for MFA, and with [`remember_device`](Self::remember_device) registers a
    /// new one.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{Device, SrpAuthorizer};
    /// let device = Device::new("eu-west-1_0c6e…", "-aBc123", "device password");
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_device(device.clone());
    /// assert_eq!(login.device(), Some(device));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_device(mut self, device: Device) -> SrpAuthorizer {
        self.device = Some(device);
        self
    }

    /// The device in use: given with [`with_device`](Self::with_device) or registered by a
    /// login with [`remember_device`](Self::remember_device). Persist it (its password is a
    /// secret, like a refresh token) to skip MFA next time.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?;
    /// assert_eq!(login.device(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn device(&self) -> Option<Device> {
        self.device.clone()
    }

    /// Calls `listener` when the device changes: `Some` when a login registered a new one
    /// (with [`remember_device`](Self::remember_device)), `None` when Cognito no longer knew
    /// the one in use. For keeping the device where the token is kept, such as
    /// [`FileStore::save_device`](crate::store::FileStore::save_device).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/tmp/c", CacheKey::new("cognito", "c", Some("u"), Vec::<String>::new()));
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .remember_device(true)
    ///     .on_device_change(move |device| {
    ///         let saved = match device {
    ///             Some(device) => store.save_device(device),
    ///             None => store.clear_device(),
    ///         };
    ///         if let Err(error) = saved {
    ///             log::warn!("{error}");
    ///         }
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn on_device_change(
        mut self,
        listener: impl FnMut(Option<&Device>) + Send + 'static,
    ) -> SrpAuthorizer {
        self.device_listener = Some(Box::new(listener));
        self
    }

    /// Calls `listener` when a new password was sent for
    /// [`Challenge::NewPasswordRequired`] and Cognito took it
    /// ([`PasswordChange::Accepted`]) or probably did (its answer was lost,
    /// [`PasswordChange::AnswerLost`]). From then on the authorizer logs in with the new
    /// password; whoever keeps the old one (an environment variable, a secret store) must be
    /// told, or the next program that logs in with it fails, and a few such failures lock
    /// the account. A new password that Cognito refuses (its password policy) is not
    /// reported: the old one stays.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{PasswordChange, SrpAuthorizer};
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .on_password_change(|change: PasswordChange| {
    ///         eprintln!("the password was changed ({change:?}): update your secret store");
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn on_password_change(
        mut self,
        listener: impl FnMut(PasswordChange) + Send + 'static,
    ) -> SrpAuthorizer {
        self.password_listener = Some(Box::new(listener));
        self
    }

    fn device_changed(&mut self) {
        if let Some(listener) = self.device_listener.as_mut() {
            listener(self.device.as_ref());
        }
    }

    /// Refreshes with `GetTokensFromRefreshToken` from the start, for an app client with
    /// refresh-token rotation. Without this, the authorizer switches by itself the first
    /// time `REFRESH_TOKEN_AUTH` is refused with `InvalidParameterException`. Each rotation
    /// returns a new refresh token, which the next refresh uses; a refresh token whose
    /// exchange got no answer is never sent again (the next renewal logs in instead).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .refresh_token_rotation(true);
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn refresh_token_rotation(mut self, rotation: bool) -> SrpAuthorizer {
        self.rotation = Some(rotation);
        self
    }

    /// Sends the API calls to `url` instead of the pool's regional endpoint: a VPC or FIPS
    /// endpoint, or a local identity provider. It must be HTTPS unless it is loopback (or
    /// call [`allow_insecure_http`](Self::allow_insecure_http) first).
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for a URL that does not parse or would
    /// send the password proof in clear text: here, rather than at the first login.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_endpoint("https://cognito-idp-fips.eu-west-1.amazonaws.com/")?;
    /// assert_eq!(login.endpoint(), "https://cognito-idp-fips.eu-west-1.amazonaws.com/");
    /// let clear = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_endpoint("http://cognito.example.com/");
    /// assert_eq!(clear.unwrap_err().kind(), ErrorKind::Configuration);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Result<SrpAuthorizer, Error> {
        let url = url.into();
        check_endpoint(&url, self.allow_insecure_http)?;
        self.endpoint = url;
        #[cfg(feature = "jwt")]
        {
            self.id_tokens = None;
        }
        Ok(self)
    }

    /// The issuer whose ID tokens this pool hands out (feature `jwt`): `iss` must name it,
    /// and its JWKS is at `<issuer>/.well-known/jwks.json`. Needed only when the default
    /// (see [ID tokens are verified](Self#id-tokens-are-verified-feature-jwt)) is wrong:
    /// an endpoint outside `amazonaws.com` that proxies a real pool, or an emulator that
    /// issues under another name.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?;
    /// assert_eq!(login.issuer(), "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X");
    /// let login = login
    ///     .with_endpoint("https://cognito.proxy.example.com/")?
    ///     .with_issuer("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X");
    /// assert_eq!(login.issuer(), "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> SrpAuthorizer {
        self.issuer = Some(issuer.into().trim_end_matches('/').to_owned());
        self.id_tokens = None;
        self
    }

    /// The issuer the ID tokens are checked against (feature `jwt`): the one given to
    /// [`with_issuer`](Self::with_issuer), else the pool's
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>` when the endpoint is an AWS
    /// host, else `<endpoint>/<pool id>`.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_endpoint("https://cognito-idp-fips.eu-west-1.amazonaws.com/")?;
    /// assert_eq!(login.issuer(), "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X");
    /// let local = login.with_endpoint("http://127.0.0.1:9229/")?;
    /// assert_eq!(local.issuer(), "http://127.0.0.1:9229/eu-west-1_X");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn issuer(&self) -> String {
        if let Some(issuer) = &self.issuer {
            return issuer.clone();
        }
        let region = split_pool_id(&self.user_pool_id)
            .map(|(region, _)| region)
            .unwrap_or_default();
        let host = self
            .endpoint
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', ':', '?'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let pool = &self.user_pool_id;
        if host.ends_with(".amazonaws.com.cn") {
            format!("https://cognito-idp.{region}.amazonaws.com.cn/{pool}")
        } else if host.ends_with(".amazonaws.com") {
            format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
        } else {
            format!("{}/{pool}", self.endpoint.trim_end_matches('/'))
        }
    }

    /// Whether the ID tokens this authorizer obtains are verified before it hands them out:
    /// true with the `jwt` feature, false without it.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?;
    /// assert_eq!(login.verifies_id_tokens(), cfg!(feature = "jwt"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn verifies_id_tokens(&self) -> bool {
        cfg!(feature = "jwt")
    }

    /// `token` once its ID token (if any) passed verification; see the type's docs. A
    /// refresh of `previous` must name the same user.
    #[cfg(feature = "jwt")]
    fn verified(&mut self, token: Token, previous: Option<&Token>) -> Result<Token, Error> {
        if self.id_tokens.is_none() {
            let issuer = self.issuer();
            let jwks = format!("{issuer}/.well-known/jwks.json");
            check_endpoint(&jwks, self.allow_insecure_http)?;
            self.id_tokens = Some(
                crate::oauth2::id_token::IdTokenVerifier::new(
                    &issuer,
                    self.client.client_id(),
                    &jwks,
                )
                .with_token_use("id")
                .with_issuer_hint(
                    "if the endpoint issues ID tokens under another name, give it with \
                     SrpAuthorizer::with_issuer (testing::LocalIdp issues as \
                     `<url>/<pool id>` unless built with cognito_issuer(false))",
                ),
            );
        }
        if let Some(verifier) = &mut self.id_tokens {
            match previous {
                Some(previous) => verifier.check_refreshed(&self.http, &token, previous)?,
                None => verifier.check(&self.http, &token, None)?,
            }
        }
        Ok(token)
    }

    /// Without the `jwt` feature nothing is verified (see `verifies_id_tokens`).
    #[cfg(not(feature = "jwt"))]
    fn verified(&mut self, token: Token, _previous: Option<&Token>) -> Result<Token, Error> {
        Ok(token)
    }

    /// Accepts a plain-HTTP endpoint on a host that is not loopback. Only for networks you
    /// trust: the password proof and tokens then travel unencrypted.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .allow_insecure_http()
    ///     .with_endpoint("http://cognito.internal:9229/")?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn allow_insecure_http(mut self) -> SrpAuthorizer {
        self.allow_insecure_http = true;
        self
    }

    /// Answers the challenges a login meets: every [`Challenge`] variant (a new password,
    /// MFA and one-time codes, the MFA type, an authenticator to set up, a custom challenge,
    /// the first factor of `USER_AUTH`). Without a handler, a challenge is an
    /// [`ErrorKind::ChallengeRequired`] error that names it.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{Challenge, SrpAuthorizer};
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_challenge_handler(|challenge: &Challenge| match challenge {
    ///         Challenge::NewPasswordRequired => Ok("a new password".to_owned()),
    ///         other => Err(en_core_auth::Error::other(format!("no answer to {}", other.name()))),
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_challenge_handler(
        mut self,
        handler: impl ChallengeHandler + 'static,
    ) -> SrpAuthorizer {
        self.handler = Some(Box::new(handler));
        self
    }

    /// Uses `http` for the API calls (timeouts, retries, proxy or TLS settings).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::http::{HttpClient, RetryPolicy};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_http_client(HttpClient::new().with_retry(RetryPolicy::none()));
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_http_client(mut self, http: HttpClient) -> SrpAuthorizer {
        self.http = http;
        self
    }

    /// The endpoint the API calls go to.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "u", "p")?;
    /// assert_eq!(login.endpoint(), "https://cognito-idp.ap-south-1.amazonaws.com/");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The user pool id.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "u", "p")?;
    /// assert_eq!(login.user_pool_id(), "ap-south-1_X");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn user_pool_id(&self) -> &str {
        &self.user_pool_id
    }

    /// The username as given (possibly an alias such as an email).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "bob@example.com", "p")?;
    /// assert_eq!(login.username(), "bob@example.com");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn username(&self) -> &str {
        &self.username
    }

    fn checked_endpoint(&self) -> Result<String, Error> {
        check_endpoint(&self.endpoint, self.allow_insecure_http)?;
        Ok(self.endpoint.clone())
    }

    /// `SECRET_HASH` for `username`, when the app client has a secret.
    fn secret_hash(&self, username: &str) -> Option<String> {
        let secret = self.client.client_secret();
        (!secret.is_empty()).then(|| math::secret_hash(secret, username, self.client.client_id()))
    }

    fn with_secret_hash(&self, parameters: &mut Map<String, Value>, username: &str) {
        if let Some(hash) = self.secret_hash(username) {
            parameters.insert("SECRET_HASH".into(), Value::String(hash));
        }
    }

    fn call(
        &self,
        endpoint: &str,
        operation: &str,
        body: &Value,
    ) -> Result<Map<String, Value>, Error> {
        cognito::call(&self.http, endpoint, operation, body)
    }

    /// The user name for the answers: what Cognito said, else what the user typed.
    fn answer_username(&self) -> String {
        self.cognito_username
            .clone()
            .unwrap_or_else(|| self.username.clone())
    }

    /// Answers the `PASSWORD_VERIFIER` challenge with the SRP proof (and the device key of a
    /// remembered device). When Cognito no longer knows the device, answers again without
    /// it: the secret block is still good, as Amplify relies on.
    fn password_verifier(
        &mut self,
        endpoint: &str,
        srp: &SrpClient,
        answer: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let parameters = challenge_parameters(answer)?;
        let user_id = parameter(parameters, "USER_ID_FOR_SRP")?.to_owned();
        let username = parameter(parameters, "USERNAME")
            .unwrap_or(&user_id)
            .to_owned();
        let salt = math::parse_hex(parameter(parameters, "SALT")?)?;
        let server_b = math::parse_hex(parameter(parameters, "SRP_B")?)?;
        let secret_block = parameter(parameters, "SECRET_BLOCK")?.to_owned();

        let key = srp.password_authentication_key(
            &self.pool_name,
            &user_id,
            &self.password,
            &salt,
            &server_b,
        )?;
        let timestamp = math::cognito_timestamp(SystemTime::now());
        let signature = math::password_claim_signature(
            &key,
            &self.pool_name,
            &user_id,
            &secret_block,
            &timestamp,
        )?;

        let mut responses = Map::new();
        responses.insert("USERNAME".into(), Value::String(username.clone()));
        responses.insert(
            "PASSWORD_CLAIM_SECRET_BLOCK".into(),
            Value::String(secret_block),
        );
        responses.insert("PASSWORD_CLAIM_SIGNATURE".into(), Value::String(signature));
        responses.insert("TIMESTAMP".into(), Value::String(timestamp));
        self.with_secret_hash(&mut responses, &username);
        self.cognito_username = Some(username);
        if let Some(device) = &self.device {
            let mut with_device = responses.clone();
            with_device.insert(
                "DEVICE_KEY".into(),
                Value::String(device.device_key().to_owned()),
            );
            match self.respond(
                endpoint,
                "PASSWORD_VERIFIER",
                with_device,
                answer.get("Session"),
            ) {
                Err(error) if is_cognito(&error, "ResourceNotFoundException") => {
                    log::warn!(
                        "Cognito no longer knows device {}; logging in without it",
                        device.device_key()
                    );
                    self.device = None;
                    self.device_changed();
                }
                other => return other,
            }
        }
        self.respond(
            endpoint,
            "PASSWORD_VERIFIER",
            responses,
            answer.get("Session"),
        )
    }

    /// Sends one challenge answer, once: see [`cognito::call_once`].
    fn respond(
        &self,
        endpoint: &str,
        challenge: &str,
        responses: Map<String, Value>,
        session: Option<&Value>,
    ) -> Result<Map<String, Value>, Error> {
        let mut body = json!({
            "ChallengeName": challenge,
            "ClientId": self.client.client_id(),
            "ChallengeResponses": responses,
        });
        if let (Some(session), Some(object)) = (session, body.as_object_mut()) {
            object.insert("Session".into(), session.clone());
        }
        self.call_once(endpoint, "RespondToAuthChallenge", &body)
    }

    /// A single-use step of a login ([`cognito::call_once`]); when it gets no answer, the
    /// login is marked for starting over.
    fn call_once(
        &self,
        endpoint: &str,
        operation: &str,
        body: &Value,
    ) -> Result<Map<String, Value>, Error> {
        let answered = cognito::call_once(&self.http, endpoint, operation, body);
        if answered
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::Transport | ErrorKind::Server))
        {
            self.answer_lost.set(true);
        }
        answered
    }

    /// Answers `DEVICE_SRP_AUTH` and then `DEVICE_PASSWORD_VERIFIER` with the device's SRP
    /// proof: the same math as the password's, with the device group key as the pool and the
    /// device key as the user.
    fn device_proof(
        &mut self,
        endpoint: &str,
        answer: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let Some(device) = self.device.clone() else {
            return Err(malformed(
                "Cognito asked for a device proof, but no device was offered",
            ));
        };
        let username = self.answer_username();
        let srp = SrpClient::generate()?;
        let mut responses = Map::new();
        responses.insert("USERNAME".into(), Value::String(username.clone()));
        responses.insert(
            "DEVICE_KEY".into(),
            Value::String(device.device_key().to_owned()),
        );
        responses.insert("SRP_A".into(), Value::String(srp.public_a_hex()));
        self.with_secret_hash(&mut responses, &username);
        let challenge = self.respond(
            endpoint,
            "DEVICE_SRP_AUTH",
            responses,
            answer.get("Session"),
        )?;
        if challenge.get("ChallengeName").and_then(Value::as_str)
            != Some("DEVICE_PASSWORD_VERIFIER")
        {
            return Err(malformed(
                "DEVICE_SRP_AUTH was not followed by DEVICE_PASSWORD_VERIFIER",
            ));
        }
        let parameters = challenge_parameters(&challenge)?;
        let salt = math::parse_hex(parameter(parameters, "SALT")?)?;
        let server_b = math::parse_hex(parameter(parameters, "SRP_B")?)?;
        let secret_block = parameter(parameters, "SECRET_BLOCK")?.to_owned();
        let key = srp.password_authentication_key(
            device.device_group_key(),
            device.device_key(),
            device.device_password(),
            &salt,
            &server_b,
        )?;
        let timestamp = math::cognito_timestamp(SystemTime::now());
        let signature = math::password_claim_signature(
            &key,
            device.device_group_key(),
            device.device_key(),
            &secret_block,
            &timestamp,
        )?;
        let mut responses = Map::new();
        responses.insert("USERNAME".into(), Value::String(username.clone()));
        responses.insert(
            "PASSWORD_CLAIM_SECRET_BLOCK".into(),
            Value::String(secret_block),
        );
        responses.insert("PASSWORD_CLAIM_SIGNATURE".into(), Value::String(signature));
        responses.insert("TIMESTAMP".into(), Value::String(timestamp));
        responses.insert(
            "DEVICE_KEY".into(),
            Value::String(device.device_key().to_owned()),
        );
        self.with_secret_hash(&mut responses, &username);
        self.respond(
            endpoint,
            "DEVICE_PASSWORD_VERIFIER",
            responses,
            challenge.get("Session"),
        )
    }

    /// After a login that returned `NewDeviceMetadata`: registers the device
    /// (`ConfirmDevice`) and, where the pool lets the user choose, remembers it
    /// (`UpdateDeviceStatus`). The login has succeeded whatever happens here: a failure is
    /// logged and the device forgotten.
    fn register_device(&mut self, endpoint: &str, access_token: &str, metadata: &Value) {
        let (Some(key), Some(group)) = (
            metadata.get("DeviceKey").and_then(Value::as_str),
            metadata.get("DeviceGroupKey").and_then(Value::as_str),
        ) else {
            log::warn!(
                "NewDeviceMetadata without DeviceKey and DeviceGroupKey; device not remembered"
            );
            return;
        };
        let registered = Device::generate(key, group).and_then(|(device, verifier, salt)| {
            let confirmed = self.call(
                endpoint,
                "ConfirmDevice",
                &json!({
                    "AccessToken": access_token,
                    "DeviceKey": key,
                    "DeviceName": self.device_name,
                    "DeviceSecretVerifierConfig": {"PasswordVerifier": verifier, "Salt": salt},
                }),
            )?;
            if confirmed
                .get("UserConfirmationNecessary")
                .and_then(Value::as_bool)
                == Some(true)
            {
                self.call(
                    endpoint,
                    "UpdateDeviceStatus",
                    &json!({
                        "AccessToken": access_token,
                        "DeviceKey": key,
                        "DeviceRememberedStatus": "remembered",
                    }),
                )?;
            }
            Ok(device)
        });
        match registered {
            Ok(device) => {
                self.device = Some(device);
                self.device_changed();
            }
            Err(error) => log::warn!("could not remember device {key}: {error}"),
        }
    }

    /// Answers the challenges until Cognito hands out tokens. `srp` is the SRP client whose
    /// `SRP_A` went out, if one did (`PASSWORD_VERIFIER` needs it).
    fn finish(
        &mut self,
        endpoint: &str,
        mut answer: Map<String, Value>,
        mut srp: Option<SrpClient>,
    ) -> Result<Token, Error> {
        for _ in 0..MAX_CHALLENGES {
            if let Some(result) = answer
                .get("AuthenticationResult")
                .and_then(Value::as_object)
            {
                let token = cognito::parse_tokens(result, None)?;
                if let Some(metadata) = result.get("NewDeviceMetadata")
                    && self.remember_device
                {
                    self.register_device(endpoint, token.access_token(), metadata);
                }
                return Ok(token);
            }
            let name = answer
                .get("ChallengeName")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the answer has neither tokens nor a challenge"))?
                .to_owned();
            answer = match name.as_str() {
                "PASSWORD_VERIFIER" => {
                    let Some(client) = srp.as_ref() else {
                        return Err(malformed("PASSWORD_VERIFIER, but no SRP_A was sent"));
                    };
                    self.password_verifier(endpoint, client, &answer)?
                }
                "DEVICE_SRP_AUTH" => self.device_proof(endpoint, &answer)?,
                "MFA_SETUP" => self.mfa_setup(endpoint, &answer)?,
                "SELECT_CHALLENGE" => self.select_challenge(endpoint, &answer, &mut srp)?,
                _ => self.answer_challenge(endpoint, &name, &answer)?,
            };
        }
        Err(Error::new(
            ErrorKind::ChallengeRequired,
            "Cognito kept asking for challenges; giving up",
        ))
    }

    /// The handler's answer to `challenge`, or a [`ChallengeRequired`](ErrorKind::ChallengeRequired)
    /// error naming it when there is no handler.
    fn ask(&mut self, challenge: &Challenge) -> Result<String, Error> {
        let Some(handler) = self.handler.as_mut() else {
            return Err(Error::new(
                ErrorKind::ChallengeRequired,
                format!(
                    "Cognito asked for the {} challenge; give SrpAuthorizer a challenge handler to answer it",
                    challenge.name()
                ),
            ));
        };
        handler.answer(challenge)
    }

    /// The user name for a challenge's answer: the one the challenge names, else Cognito's.
    fn challenge_username(&mut self, answer: &Map<String, Value>) -> String {
        let named = challenge_parameters(answer)
            .ok()
            .and_then(|p| p.get("USERNAME"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(name) = &named {
            self.cognito_username = Some(name.clone());
        }
        named.unwrap_or_else(|| self.answer_username())
    }

    /// Sends `responses` (plus USERNAME, DEVICE_KEY, SECRET_HASH) as the answer to the
    /// challenge `name` of `answer`.
    fn send_answer(
        &mut self,
        endpoint: &str,
        name: &str,
        answer: &Map<String, Value>,
        mut responses: Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let username = self.challenge_username(answer);
        responses.insert("USERNAME".into(), Value::String(username.clone()));
        if let Some(device) = &self.device {
            responses.insert(
                "DEVICE_KEY".into(),
                Value::String(device.device_key().to_owned()),
            );
        }
        self.with_secret_hash(&mut responses, &username);
        self.respond(endpoint, name, responses, answer.get("Session"))
    }

    /// A challenge the handler answers with one value: a new password, an MFA or OTP code,
    /// the MFA type to use, a custom challenge's answer.
    fn answer_challenge(
        &mut self,
        endpoint: &str,
        name: &str,
        answer: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let parameters = challenge_parameters(answer).ok();
        let text = |key: &str| {
            parameters
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let challenge = match name {
            "NEW_PASSWORD_REQUIRED" => Challenge::NewPasswordRequired,
            "SOFTWARE_TOKEN_MFA" => Challenge::SoftwareTokenMfa,
            "SMS_MFA" => Challenge::SmsMfa {
                destination: text("CODE_DELIVERY_DESTINATION"),
            },
            "EMAIL_OTP" => Challenge::EmailOtp {
                destination: text("CODE_DELIVERY_DESTINATION"),
            },
            "SMS_OTP" => Challenge::SmsOtp {
                destination: text("CODE_DELIVERY_DESTINATION"),
            },
            "SELECT_MFA_TYPE" => Challenge::SelectMfaType {
                options: text("MFAS_CAN_CHOOSE")
                    .and_then(|list| serde_json::from_str(&list).ok())
                    .unwrap_or_default(),
            },
            "CUSTOM_CHALLENGE" => Challenge::CustomChallenge {
                parameters: parameters
                    .map(|p| {
                        p.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            other => {
                return Err(Error::new(
                    ErrorKind::ChallengeRequired,
                    format!(
                        "Cognito asked for the {other} challenge, which this client does not answer"
                    ),
                ));
            }
        };
        let response = self.ask(&challenge)?;
        if challenge == Challenge::NewPasswordRequired {
            return self.send_new_password(endpoint, answer, response);
        }
        let mut responses = Map::new();
        responses.insert(challenge.answer_key().into(), Value::String(response));
        self.send_answer(endpoint, challenge.name(), answer, responses)
    }

    /// Answers `NEW_PASSWORD_REQUIRED` with `new_password`. Once the answer is sent, the
    /// new password is the one to log in with, whether or not its reply comes back:
    /// Cognito has usually taken it, and a login with the old one would be a wrong
    /// password counting toward the lockout. Only a refusal (the password policy, an
    /// expired session) keeps the old one.
    fn send_new_password(
        &mut self,
        endpoint: &str,
        answer: &Map<String, Value>,
        new_password: String,
    ) -> Result<Map<String, Value>, Error> {
        let mut responses = Map::new();
        responses.insert(
            Challenge::NewPasswordRequired.answer_key().into(),
            Value::String(new_password.clone()),
        );
        let sent = self.send_answer(
            endpoint,
            Challenge::NewPasswordRequired.name(),
            answer,
            responses,
        );
        let change = match &sent {
            Ok(_) => {
                self.previous_password = None;
                PasswordChange::Accepted
            }
            Err(e) if matches!(e.kind(), ErrorKind::Transport | ErrorKind::Server) => {
                if self.password != new_password {
                    self.previous_password = Some(self.password.clone());
                }
                PasswordChange::AnswerLost
            }
            Err(_) => return sent,
        };
        self.password = new_password;
        if let Some(listener) = self.password_listener.as_mut() {
            listener(change);
        }
        sent
    }

    /// `MFA_SETUP`: a new authenticator for the user. `AssociateSoftwareToken` gives the
    /// secret, the handler shows it and answers with the app's code, `VerifySoftwareToken`
    /// checks it, and the challenge is answered with the session that proves it.
    fn mfa_setup(
        &mut self,
        endpoint: &str,
        answer: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let can_setup = challenge_parameters(answer)
            .ok()
            .and_then(|p| p.get("MFAS_CAN_SETUP"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !can_setup.contains("SOFTWARE_TOKEN_MFA") {
            return Err(Error::new(
                ErrorKind::ChallengeRequired,
                format!(
                    "Cognito asked to set up MFA of a type this client cannot set up ({can_setup})"
                ),
            ));
        }
        if self.handler.is_none() {
            return Err(Error::new(
                ErrorKind::ChallengeRequired,
                "Cognito asked for the MFA_SETUP challenge; give SrpAuthorizer a challenge handler to answer it",
            ));
        }
        let session = answer.get("Session").cloned().unwrap_or(Value::Null);
        let associated = self.call_once(
            endpoint,
            "AssociateSoftwareToken",
            &json!({"Session": session}),
        )?;
        let secret = associated
            .get("SecretCode")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("AssociateSoftwareToken gave no SecretCode"))?
            .to_owned();
        let label = self.answer_username();
        let challenge = Challenge::MfaSetup {
            uri: otpauth_uri(&secret, &label),
            secret,
        };
        let code = self.ask(&challenge)?;
        let verified = self.call_once(
            endpoint,
            "VerifySoftwareToken",
            &json!({
                "Session": associated.get("Session").cloned().unwrap_or(Value::Null),
                "UserCode": code,
                "FriendlyDeviceName": self.device_name,
            }),
        )?;
        if verified.get("Status").and_then(Value::as_str) != Some("SUCCESS") {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "VerifySoftwareToken did not accept the code from the new authenticator",
            ));
        }
        let mut next = answer.clone();
        if let Some(session) = verified.get("Session") {
            next.insert("Session".into(), session.clone());
        }
        self.send_answer(endpoint, "MFA_SETUP", &next, Map::new())
    }

    /// `SELECT_CHALLENGE` of `USER_AUTH`: the handler picks the first factor (without one,
    /// `PASSWORD_SRP` when offered and there is a password), sent with what it needs.
    fn select_challenge(
        &mut self,
        endpoint: &str,
        answer: &Map<String, Value>,
        srp: &mut Option<SrpClient>,
    ) -> Result<Map<String, Value>, Error> {
        let available: Vec<String> = answer
            .get("AvailableChallenges")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let challenge = Challenge::SelectChallenge {
            available: available.clone(),
        };
        let choice = if self.handler.is_none()
            && !self.password.is_empty()
            && available.iter().any(|c| c == "PASSWORD_SRP")
        {
            "PASSWORD_SRP".to_owned()
        } else {
            self.ask(&challenge)?
        };
        let mut responses = Map::new();
        responses.insert("ANSWER".into(), Value::String(choice.clone()));
        match choice.as_str() {
            "PASSWORD_SRP" => {
                let client = SrpClient::generate()?;
                responses.insert("SRP_A".into(), Value::String(client.public_a_hex()));
                *srp = Some(client);
            }
            "PASSWORD" => {
                self.require_password()?;
                responses.insert("PASSWORD".into(), Value::String(self.password.clone()));
            }
            _ => {}
        }
        self.send_answer(endpoint, "SELECT_CHALLENGE", answer, responses)
    }

    fn require_password(&self) -> Result<(), Error> {
        if self.password.is_empty() {
            Err(Error::new(
                ErrorKind::Configuration,
                "this login needs a password, and the authorizer was built without one",
            ))
        } else {
            Ok(())
        }
    }

    /// One whole login, from `InitiateAuth` to tokens.
    fn login(&mut self, endpoint: &str) -> Result<Token, Error> {
        let mut srp = None;
        let mut parameters = Map::new();
        parameters.insert("USERNAME".into(), Value::String(self.username.clone()));
        let with_srp = |parameters: &mut Map<String, Value>, srp: &mut Option<SrpClient>| {
            let client = SrpClient::generate()?;
            parameters.insert("SRP_A".into(), Value::String(client.public_a_hex()));
            *srp = Some(client);
            Ok::<(), Error>(())
        };
        match self.flow {
            LoginFlow::UserSrp => {
                self.require_password()?;
                with_srp(&mut parameters, &mut srp)?;
            }
            LoginFlow::UserPassword => {
                self.require_password()?;
                parameters.insert("PASSWORD".into(), Value::String(self.password.clone()));
            }
            LoginFlow::CustomAuth | LoginFlow::UserAuth(None) => {}
            LoginFlow::UserAuth(Some(first)) => {
                parameters.insert(
                    "PREFERRED_CHALLENGE".into(),
                    Value::String(first.name().to_owned()),
                );
                match first {
                    FirstFactor::PasswordSrp => {
                        self.require_password()?;
                        with_srp(&mut parameters, &mut srp)?;
                    }
                    FirstFactor::Password => {
                        self.require_password()?;
                        parameters.insert("PASSWORD".into(), Value::String(self.password.clone()));
                    }
                    _ => {}
                }
            }
        }
        if let Some(device) = &self.device {
            parameters.insert(
                "DEVICE_KEY".into(),
                Value::String(device.device_key().to_owned()),
            );
        }
        self.with_secret_hash(&mut parameters, &self.username.clone());
        let body = json!({
            "AuthFlow": self.flow.auth_flow(),
            "ClientId": self.client.client_id(),
            "AuthParameters": parameters,
        });
        let answer = self.call(endpoint, "InitiateAuth", &body)?;
        self.finish(endpoint, answer, srp)
    }

    /// `REFRESH_TOKEN_AUTH`, which may be sent again.
    fn refresh_token_auth(
        &mut self,
        endpoint: &str,
        refresh_token: &str,
        username: &str,
        device_key: Option<&str>,
    ) -> Result<Token, Error> {
        let mut parameters = Map::new();
        parameters.insert(
            "REFRESH_TOKEN".into(),
            Value::String(refresh_token.to_owned()),
        );
        if let Some(key) = device_key {
            parameters.insert("DEVICE_KEY".into(), Value::String(key.to_owned()));
        }
        self.with_secret_hash(&mut parameters, username);
        let body = json!({
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "ClientId": self.client.client_id(),
            "AuthParameters": parameters,
        });
        let answer = self.call(endpoint, "InitiateAuth", &body)?;
        let result = answer
            .get("AuthenticationResult")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("the refresh answer has no AuthenticationResult"))?;
        cognito::parse_tokens(result, Some(refresh_token))
    }

    /// `GetTokensFromRefreshToken`: with rotation, the refresh token is used up by the
    /// exchange, so it is sent once; when no answer comes back it is marked spent.
    fn tokens_from_refresh_token(
        &mut self,
        endpoint: &str,
        refresh_token: &str,
        device_key: Option<&str>,
    ) -> Result<Token, Error> {
        let mut body = json!({
            "RefreshToken": refresh_token,
            "ClientId": self.client.client_id(),
        });
        if !self.client.client_secret().is_empty() {
            body["ClientSecret"] = json!(self.client.client_secret());
        }
        if let Some(key) = device_key {
            body["DeviceKey"] = json!(key);
        }
        let answer =
            match cognito::call_once(&self.http, endpoint, "GetTokensFromRefreshToken", &body) {
                Ok(answer) => answer,
                Err(error) => {
                    if matches!(error.kind(), ErrorKind::Transport | ErrorKind::Server) {
                        self.spent_refresh_token = Some(refresh_token.to_owned());
                    }
                    return Err(error);
                }
            };
        let result = answer
            .get("AuthenticationResult")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("the refresh answer has no AuthenticationResult"))?;
        cognito::parse_tokens(result, Some(refresh_token))
    }

    /// A refresh, before the ID token is checked.
    fn renew(&mut self, token: &Token) -> Result<Token, Error> {
        let Some(refresh_token) = token.refresh_token() else {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "the token has no refresh token",
            ));
        };
        if self.spent_refresh_token.as_deref() == Some(refresh_token) {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "the refresh token may have been used by an exchange whose answer was lost; logging in again instead of sending it twice",
            ));
        }
        let endpoint = self.checked_endpoint()?;
        // SECRET_HASH needs Cognito's user name, not an alias the user logged in with; a
        // process that did not log in itself (a token from a cache) reads it from the token.
        let username = self
            .cognito_username
            .clone()
            .or_else(|| cognito_username_of(token))
            .unwrap_or_else(|| self.username.clone());
        // Tokens bound to a device refresh only with its key (Cognito says which device in
        // the access token's `device_key` claim).
        let device_key = claim_of(Some(token.access_token()), "device_key").or_else(|| {
            self.device
                .as_ref()
                .filter(|_| crate::data::unverified_claims(token.access_token()).is_none())
                .map(|d| d.device_key().to_owned())
        });
        if self.rotation != Some(true) {
            match self.refresh_token_auth(
                &endpoint,
                refresh_token,
                &username,
                device_key.as_deref(),
            ) {
                Err(error)
                    if self.rotation.is_none()
                        && is_cognito(&error, "InvalidParameterException") =>
                {
                    log::debug!(
                        "REFRESH_TOKEN_AUTH refused ({error}); the app client rotates refresh tokens"
                    );
                    self.rotation = Some(true);
                }
                other => return other,
            }
        }
        self.tokens_from_refresh_token(&endpoint, refresh_token, device_key.as_deref())
    }
}

impl Authorizer for SrpAuthorizer {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// The user pool, its endpoint, the app client and the user (the password only ever
    /// changes how the token is obtained, never which token it is).
    fn credential_set(&self) -> crate::store::CredentialSet {
        crate::store::CredentialSet::new("cognito srp", &self.endpoint)
            .param("user_pool_id", &self.user_pool_id)
            .client(&self.client)
            .user(&self.username)
    }

    /// Logs in. A challenge answer is sent once (it is single-use at Cognito); when one
    /// gets no answer (a timeout, a dropped connection, a 5xx), the login starts over once
    /// with a fresh `InitiateAuth`, so that a network blip ends as a success or a
    /// [`Transport`](ErrorKind::Transport) error, never as a replayed answer that Cognito
    /// refuses (and counts toward a lockout).
    ///
    /// After a new password whose answer was lost, logins use the new password; if Cognito
    /// refuses it (it never saw it), the old one is tried once, never again.
    fn authorize(&mut self) -> Result<Token, Error> {
        let endpoint = self.checked_endpoint()?;
        self.answer_lost.set(false);
        let mut logged_in = match self.login(&endpoint) {
            Err(error) if self.answer_lost.replace(false) => {
                log::debug!("a challenge answer got no answer ({error}); starting the login over");
                self.login(&endpoint)
            }
            other => other,
        };
        if logged_in
            .as_ref()
            .is_err_and(|e| is_cognito(e, "NotAuthorizedException"))
            && let Some(previous) = self.previous_password.take()
        {
            log::warn!(
                "the new password was refused: Cognito never got it; logging in once with \
                 the previous password"
            );
            self.password = previous;
            self.answer_lost.set(false);
            logged_in = self.login(&endpoint);
        } else if logged_in.is_ok() {
            // The password in use was accepted: nothing to fall back to any more.
            self.previous_password = None;
        }
        self.verified(logged_in?, None)
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let renewed = self.renew(token)?;
        self.verified(renewed, Some(token))
    }

    /// Logs out with Cognito's `RevokeToken`: the refresh token stops working, and so do
    /// the access and ID tokens issued from it (Cognito checks that on its own APIs; an API
    /// that only verifies JWT signatures accepts them until they expire). A token without a
    /// refresh token has nothing to revoke. Revoking is idempotent, so the call is retried
    /// like any other.
    ///
    /// ```
    /// use en_core_auth::{Authorizer, ClientInfo, Token};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let mut login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?;
    /// login.revoke(&Token::new("access only"))?; // nothing sent
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        let Some(refresh_token) = token.refresh_token() else {
            return Ok(());
        };
        let endpoint = self.checked_endpoint()?;
        let mut body = json!({"Token": refresh_token, "ClientId": self.client.client_id()});
        if !self.client.client_secret().is_empty() {
            body["ClientSecret"] = json!(self.client.client_secret());
        }
        self.call(&endpoint, "RevokeToken", &body)?;
        Ok(())
    }
}

/// `otpauth://totp/AWSCognito:<user>?secret=…&issuer=AWSCognito`, the URI Amplify shows for
/// a new authenticator (the key URI format of Google Authenticator).
fn otpauth_uri(secret: &str, username: &str) -> String {
    let label: String = username
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("otpauth://totp/AWSCognito:{label}?secret={secret}&issuer=AWSCognito")
}

/// Whether `error` is Cognito's `code`.
fn is_cognito(error: &Error, code: &str) -> bool {
    error
        .downcast_ref::<CognitoError>()
        .is_some_and(|e| e.code() == code)
}

/// A string claim of an unverified JWT.
fn claim_of(jwt: Option<&str>, name: &str) -> Option<String> {
    crate::data::unverified_claims(jwt?)?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

/// The Cognito user name a token was issued to: the access token's `username` claim, or
/// the ID token's `cognito:username`.
fn cognito_username_of(token: &Token) -> Option<String> {
    claim_of(Some(token.access_token()), "username")
        .or_else(|| claim_of(token.id_token(), "cognito:username"))
}

fn challenge_parameters(answer: &Map<String, Value>) -> Result<&Map<String, Value>, Error> {
    answer
        .get("ChallengeParameters")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("the challenge has no ChallengeParameters"))
}

/// `us-east-1_Ab12` → (`us-east-1`, `Ab12`).
fn split_pool_id(user_pool_id: &str) -> Result<(&str, &str), Error> {
    let invalid = || {
        Error::new(
            ErrorKind::Configuration,
            format!(
                "`{user_pool_id}` is not a user pool id (<region>_<id>, like us-east-1_Ab12Cd34)"
            ),
        )
    };
    let (region, name) = user_pool_id.split_once('_').ok_or_else(invalid)?;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if region_ok && name_ok {
        Ok((region, name))
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids() {
        assert_eq!(
            split_pool_id("us-east-1_Ab12").unwrap(),
            ("us-east-1", "Ab12")
        );
        for bad in ["", "_x", "us-east-1_", "US_x", "us east_x", "us-east-1_a/b"] {
            assert!(split_pool_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password_and_secret() {
        let login = SrpAuthorizer::new(
            ClientInfo::new("c", "client-s3cret"),
            "us-east-1_X",
            "alice",
            "pa55word",
        )
        .unwrap();
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("pa55word") && !shown.contains("client-s3cret"),
            "{shown}"
        );
        assert!(shown.contains("alice"));
    }

    #[test]
    fn a_plain_http_endpoint_is_refused_unless_loopback() {
        let login =
            || SrpAuthorizer::new(ClientInfo::new("c", ""), "us-east-1_X", "u", "p").unwrap();
        let refused = login()
            .with_endpoint("http://cognito.example.com/")
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Configuration);
        assert!(login().with_endpoint("http://127.0.0.1:9229/").is_ok());
        assert!(
            login()
                .allow_insecure_http()
                .with_endpoint("http://cognito.example.com/")
                .is_ok()
        );
    }

    /// A bad URL is a Configuration error from `with_endpoint` itself, before anything is
    /// sent.
    #[test]
    fn a_bad_endpoint_is_a_configuration_error_at_once() {
        for url in [
            "not a url",
            "ftp://cognito.example.com/",
            "https://user:pw@cognito.example.com/",
            "http://cognito.example.com/",
        ] {
            let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "us-east-1_X", "u", "p")
                .unwrap()
                .with_endpoint(url);
            assert_eq!(login.unwrap_err().kind(), ErrorKind::Configuration, "{url}");
        }
    }

    #[test]
    fn refresh_without_a_refresh_token_asks_for_a_login() {
        let mut login =
            SrpAuthorizer::new(ClientInfo::new("c", ""), "us-east-1_X", "u", "p").unwrap();
        let error = login.refresh(&Token::new("a")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    }
}
