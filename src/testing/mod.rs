//! A local identity provider for tests: an AWS Cognito user pool and an OAuth2 server in one
//! line, on `127.0.0.1`, that really checks what clients send (SRP proofs included).
//!
//! Enabled by the cargo feature `testing`. [`LocalIdp`] serves, on background threads:
//!
//! - the Cognito Identity Provider JSON 1.1 API at `POST /` (`InitiateAuth` with
//!   `USER_SRP_AUTH`, `USER_PASSWORD_AUTH`, `CUSTOM_AUTH`, `USER_AUTH` and
//!   `REFRESH_TOKEN_AUTH`; `RespondToAuthChallenge` for `PASSWORD_VERIFIER`,
//!   `NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `EMAIL_OTP`, `SMS_OTP`,
//!   `SELECT_MFA_TYPE`, `MFA_SETUP`, `CUSTOM_CHALLENGE`, `SELECT_CHALLENGE`,
//!   `DEVICE_SRP_AUTH` and `DEVICE_PASSWORD_VERIFIER`; `ConfirmDevice`,
//!   `UpdateDeviceStatus`, `GetTokensFromRefreshToken`, `RevokeToken`,
//!   `AssociateSoftwareToken`, `VerifySoftwareToken`), with `SECRET_HASH` checked for app
//!   clients that have a secret, errors shaped as AWS sends them, and Cognito's own
//!   strictness (the `TIMESTAMP` weekday and skew, lockout, single-use TOTP codes,
//!   device-bound refresh tokens, rotation);
//! - an OAuth2 token endpoint at `POST /oauth2/token` (`client_credentials`,
//!   `refresh_token`, `authorization_code` and `device_code`; `client_secret_basic`,
//!   `client_secret_post` and `private_key_jwt`), discovery at
//!   `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`, and
//!   a JWKS at `/.well-known/jwks.json`;
//! - a person's logins without pages: an authorization endpoint at `GET /oauth2/authorize`
//!   (PKCE required; approves the user named by [`LocalIdp::login_as`]), a device
//!   authorization endpoint at `POST /oauth2/device_authorization` (codes approved or
//!   denied by [`LocalIdp::approve_device_code`] and [`LocalIdp::deny_device_code`]) and a
//!   revocation endpoint at `POST /oauth2/revoke` (RFC 7009), all listed in discovery;
//! - a protected resource at `/protected` that accepts only valid, unexpired tokens it issued,
//!   and two helpers for checking what clients send where: a redirect
//!   ([`LocalIdp::redirect_url`]) and a request echo ([`LocalIdp::headers_url`]);
//! - fault injection ([`LocalIdp::fail_next`]) and request counters ([`LocalIdp::requests`]).
//!
//! Tokens are RS256 JWTs signed with a **fixed test key committed in this crate**: anyone can
//! forge them. Never point anything but tests at a `LocalIdp`.
//!
//! ```
//! use en_core_auth::testing::{LocalIdp, Operation};
//!
//! let idp = LocalIdp::builder()
//!     .client("local-client", Some("client-secret"))
//!     .user("alice", "Passw0rd!")
//!     .start()?;
//! let reply: serde_json::Value = ureq::post(&idp.token_url())
//!     .send_form([
//!         ("grant_type", "client_credentials"),
//!         ("client_id", "local-client"),
//!         ("client_secret", "client-secret"),
//!     ])?
//!     .body_mut()
//!     .read_json()?;
//! let token = reply["access_token"].as_str().unwrap();
//! assert!(idp.verify_access_token(token));
//! assert_eq!(idp.requests(Operation::Token), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use num_bigint::BigUint;
use parking_lot::Mutex;

use crate::{Error, ErrorKind};

mod assertion;
mod cognito;
mod faults;
mod interactive;
mod jwt;
mod oauth;
mod resources;
mod server;
mod srp_server;
mod tokens;
mod totp;

pub use cognito::DeviceTracking;
pub use faults::{Fault, IdTokenSigning, Operation};
pub use totp::totp_code;

use server::{Reply, Request, Server};

const DEFAULT_POOL_ID: &str = "us-east-1_Local";
const DEFAULT_CLIENT_ID: &str = "local-client";

/// Where a user stands, as Cognito's `UserStatus`.
///
/// Parses from Cognito's names (`CONFIRMED`, `FORCE_CHANGE_PASSWORD`, `UNCONFIRMED`,
/// `RESET_REQUIRED`):
///
/// ```
/// use en_core_auth::testing::UserStatus;
///
/// let status: UserStatus = "FORCE_CHANGE_PASSWORD".parse().unwrap();
/// assert_eq!(status, UserStatus::ForceChangePassword);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UserStatus {
    /// Can log in.
    #[default]
    Confirmed,
    /// Must set a new password: a correct password gets the `NEW_PASSWORD_REQUIRED`
    /// challenge.
    ForceChangePassword,
    /// Signed up but not confirmed: a correct password gets `UserNotConfirmedException`.
    Unconfirmed,
    /// An administrator reset the password: a correct password gets
    /// `PasswordResetRequiredException`.
    ResetRequired,
}

impl FromStr for UserStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<UserStatus, Error> {
        match s.to_ascii_uppercase().as_str() {
            "CONFIRMED" => Ok(UserStatus::Confirmed),
            "FORCE_CHANGE_PASSWORD" => Ok(UserStatus::ForceChangePassword),
            "UNCONFIRMED" => Ok(UserStatus::Unconfirmed),
            "RESET_REQUIRED" => Ok(UserStatus::ResetRequired),
            other => Err(Error::new(
                ErrorKind::Configuration,
                format!("unknown user status {other:?}"),
            )),
        }
    }
}

/// A user of the local pool, for [`LocalIdpBuilder::user_with`].
///
/// ```
/// use en_core_auth::testing::{User, UserStatus};
///
/// let bob = User::new("bob", "Pw0rd!")
///     .status(UserStatus::ForceChangePassword)
///     .email("bob@example.com")
///     .totp_secret(b"12345678901234567890".to_vec());
/// assert_eq!(bob.username(), "bob");
/// ```
#[derive(Clone)]
pub struct User {
    username: String,
    password: String,
    status: UserStatus,
    email: Option<String>,
    totp_secret: Option<Vec<u8>>,
    sms_mfa_code: Option<String>,
    // Cognito challenges (issue 11).
    email_otp_code: Option<String>,
    mfa_setup_required: bool,
}

impl User {
    /// A confirmed user with this user name and password.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let alice = User::new("alice", "Passw0rd!");
    /// assert_eq!(alice.username(), "alice");
    /// ```
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> User {
        User {
            username: username.into(),
            password: password.into(),
            status: UserStatus::Confirmed,
            email: None,
            totp_secret: None,
            sms_mfa_code: None,
            email_otp_code: None,
            mfa_setup_required: false,
        }
    }

    /// Sets the user's status.
    ///
    /// ```
    /// use en_core_auth::testing::{User, UserStatus};
    /// let carol = User::new("carol", "pw").status(UserStatus::Unconfirmed);
    /// # let _ = carol;
    /// ```
    pub fn status(mut self, status: UserStatus) -> User {
        self.status = status;
        self
    }

    /// Gives the user an e-mail address that works as an alias: the user may log in with it
    /// and the pool answers with the real user name in `USERNAME` and `USER_ID_FOR_SRP`, as
    /// Cognito does. It also goes in the ID token's `email` claim.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let bob = User::new("bob", "pw").email("bob@example.com");
    /// # let _ = bob;
    /// ```
    pub fn email(mut self, email: impl Into<String>) -> User {
        self.email = Some(email.into());
        self
    }

    /// Turns on TOTP MFA with this (raw, not base32) secret: after the password the pool asks
    /// for `SOFTWARE_TOKEN_MFA`, answered with [`totp_code`].
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let dave = User::new("dave", "pw").totp_secret(b"12345678901234567890".to_vec());
    /// # let _ = dave;
    /// ```
    pub fn totp_secret(mut self, secret: impl Into<Vec<u8>>) -> User {
        self.totp_secret = Some(secret.into());
        self
    }

    /// Turns on SMS MFA: after the password the pool asks for `SMS_MFA`, and this fixed code
    /// answers it (no SMS is sent). The same code answers `SMS_OTP` in the `USER_AUTH` flow.
    /// A user with more than one MFA gets `SELECT_MFA_TYPE` first.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let erin = User::new("erin", "pw").sms_mfa_code("123456");
    /// # let _ = erin;
    /// ```
    pub fn sms_mfa_code(mut self, code: impl Into<String>) -> User {
        self.sms_mfa_code = Some(code.into());
        self
    }

    /// Turns on e-mail MFA: after the password the pool asks for `EMAIL_OTP`, and this fixed
    /// code answers it (no e-mail is sent). The same code answers `EMAIL_OTP` as the first
    /// factor of the passwordless `USER_AUTH` flow.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let gail = User::new("gail", "pw").email("gail@example.com").email_otp_code("777777");
    /// # let _ = gail;
    /// ```
    pub fn email_otp_code(mut self, code: impl Into<String>) -> User {
        self.email_otp_code = Some(code.into());
        self
    }

    /// The pool requires MFA and the user has none yet: after the password comes
    /// `MFA_SETUP`, answered by associating an authenticator (`AssociateSoftwareToken`,
    /// `VerifySoftwareToken` with a code from it); TOTP MFA is then on for later logins.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// let hal = User::new("hal", "pw").mfa_setup_required();
    /// # let _ = hal;
    /// ```
    pub fn mfa_setup_required(mut self) -> User {
        self.mfa_setup_required = true;
        self
    }

    /// The user name.
    ///
    /// ```
    /// use en_core_auth::testing::User;
    /// assert_eq!(User::new("alice", "pw").username(), "alice");
    /// ```
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("status", &self.status)
            .field("email", &self.email)
            .field("totp", &self.totp_secret.is_some())
            .field("sms_mfa", &self.sms_mfa_code.is_some())
            .field("email_otp", &self.email_otp_code.is_some())
            .field("mfa_setup_required", &self.mfa_setup_required)
            .finish()
    }
}

/// A user as the pool keeps it: the password for `USER_PASSWORD_AUTH`, the SRP salt and
/// verifier for `USER_SRP_AUTH`.
pub(crate) struct UserRecord {
    pub(crate) user: User,
    /// The stable `sub` claim.
    pub(crate) sub: String,
    pub(crate) salt: BigUint,
    pub(crate) verifier: BigUint,
}

impl UserRecord {
    fn new(user: User, pool_name: &str) -> Result<UserRecord, Error> {
        let mut record = UserRecord {
            sub: random_uuid()?,
            salt: BigUint::default(),
            verifier: BigUint::default(),
            user,
        };
        let password = record.user.password.clone();
        record.set_password(password, pool_name)?;
        Ok(record)
    }

    /// Sets the password and derives a fresh salt and verifier from it.
    pub(crate) fn set_password(&mut self, password: String, pool_name: &str) -> Result<(), Error> {
        self.salt = BigUint::from_bytes_be(&random_bytes::<16>()?);
        self.verifier = cognito::verifier(&self.salt, pool_name, &self.user.username, &password);
        self.user.password = password;
        Ok(())
    }
}

/// Configures and starts a [`LocalIdp`]; from [`LocalIdp::builder`].
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::testing::{LocalIdp, User, UserStatus};
///
/// let idp = LocalIdp::builder()
///     .pool_id("us-east-1_Local")
///     .client("local-client", None)
///     .client("confidential-client", Some("client-secret"))
///     .user("alice", "Passw0rd!")
///     .user_with(User::new("bob", "Pw0rd!").status(UserStatus::ForceChangePassword))
///     .token_ttl(Duration::from_secs(60))
///     .start()?;
/// assert_eq!(idp.pool_id(), "us-east-1_Local");
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct LocalIdpBuilder {
    pool_id: String,
    clients: Vec<(String, Credential)>,
    users: Vec<User>,
    token_ttl: Duration,
    issue_refresh_tokens: bool,
    port: u16,
    cognito_issuer: bool,
    // Cognito pool settings (issue 11).
    cognito: cognito::PoolSettings,
}

/// How an app client proves who it is.
#[derive(Clone)]
enum Credential {
    /// A public client.
    None,
    Secret(String),
    /// `private_key_jwt`: the client's public key, PEM.
    PublicKey(String),
}

impl fmt::Debug for LocalIdpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clients: Vec<&str> = self.clients.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("LocalIdpBuilder")
            .field("pool_id", &self.pool_id)
            .field("clients", &clients)
            .field("users", &self.users)
            .field("token_ttl", &self.token_ttl)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl LocalIdpBuilder {
    /// The user pool id, `<region>_<name>`; default `us-east-1_Local`. The part after the
    /// underscore is the pool name that SRP hashes.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().pool_id("eu-west-1_Test").start()?;
    /// assert_eq!(idp.pool_id(), "eu-west-1_Test");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn pool_id(mut self, pool_id: impl Into<String>) -> LocalIdpBuilder {
        self.pool_id = pool_id.into();
        self
    }

    /// Adds an app client, with a secret (a confidential client: `SECRET_HASH` required,
    /// `client_credentials` allowed) or without (a public client). Call it once per client.
    /// With no client configured, a public client `local-client` exists.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder()
    ///     .client("public-client", None)
    ///     .client("service", Some("s3cret"))
    ///     .start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn client(mut self, id: &str, secret: Option<&str>) -> LocalIdpBuilder {
        let credential = match secret {
            Some(secret) => Credential::Secret(secret.to_owned()),
            None => Credential::None,
        };
        self.clients.push((id.to_owned(), credential));
        self
    }

    /// Adds an OAuth2 client that authenticates at the token endpoint with `private_key_jwt`
    /// (RFC 7523): a `client_assertion` JWT signed by its private key, checked with this
    /// public key (PEM; RSA for `RS256`…`PS512`, EC for `ES256`/`ES384`). The assertion needs
    /// `iss` = `sub` = the client id, `aud` = the token URL or the issuer, `exp` at most ten
    /// minutes ahead, and a `jti` not used before. To Cognito's API it is a public client.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// // A TEST key (tests/keys/private_key_jwt_ec.pub.pem), never for anything real.
    /// let public_key_pem = "-----BEGIN PUBLIC KEY-----
    /// MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcgaDbNwrRu5YdGY7w2qOD1XBM5hc
    /// X8nwwnOsQALktmPdE4iXL81swVgd7yXlgXPViOkQqgdzEdMKnEtJZP0PQw==
    /// -----END PUBLIC KEY-----";
    /// let idp = LocalIdp::builder()
    ///     .private_key_jwt_client("signing-client", public_key_pem)
    ///     .start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn private_key_jwt_client(mut self, id: &str, public_key_pem: &str) -> LocalIdpBuilder {
        self.clients.push((
            id.to_owned(),
            Credential::PublicKey(public_key_pem.to_owned()),
        ));
        self
    }

    /// Adds a confirmed user.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().user("alice", "Passw0rd!").start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn user(self, username: &str, password: &str) -> LocalIdpBuilder {
        self.user_with(User::new(username, password))
    }

    /// Adds a user with a status, e-mail alias or MFA set.
    ///
    /// ```
    /// use en_core_auth::testing::{LocalIdp, User};
    /// let idp = LocalIdp::builder()
    ///     .user_with(User::new("bob", "Pw0rd!").email("bob@example.com"))
    ///     .start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn user_with(mut self, user: User) -> LocalIdpBuilder {
        self.users.push(user);
        self
    }

    /// The lifetime of access and ID tokens (`expires_in`, `ExpiresIn`, and how long
    /// `/protected` accepts them); default one hour.
    ///
    /// `/protected` checks expiry to the millisecond, not by the whole-second `exp` claim, so
    /// even a one-second token lives exactly as long as announced. `exp` is rounded down: a
    /// client that reads it never holds a token the server has already let go.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().token_ttl(Duration::from_secs(2)).start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_ttl(mut self, ttl: Duration) -> LocalIdpBuilder {
        self.token_ttl = ttl;
        self
    }

    /// Whether `client_credentials` grants come with a refresh token; default true. Cognito
    /// itself never issues one there, many OAuth2 servers do, and tests of refresh need one.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let cognito_like = LocalIdp::builder().issue_refresh_tokens(false).start()?;
    /// # let _ = cognito_like;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn issue_refresh_tokens(mut self, issue: bool) -> LocalIdpBuilder {
        self.issue_refresh_tokens = issue;
        self
    }

    /// Whether the issuer is [`url`](LocalIdp::url) + `/<pool id>`, as a real user pool's
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>` (the default), for verifiers
    /// that derive the issuer and the JWKS location from the endpoint and the pool id, as
    /// [`SrpAuthorizer`](crate::srp::SrpAuthorizer) and pycognito's `Cognito` do. `false`
    /// makes the issuer the URL itself, as most OAuth2 servers have it. Discovery and the
    /// JWKS are served under both paths either way.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.issuer(), format!("{}/us-east-1_Local", idp.url()));
    /// assert_eq!(idp.jwks_url(), format!("{}/.well-known/jwks.json", idp.issuer()));
    /// let plain = LocalIdp::builder().cognito_issuer(false).start()?;
    /// assert_eq!(plain.issuer(), plain.url());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn cognito_issuer(mut self, cognito_issuer: bool) -> LocalIdpBuilder {
        self.cognito_issuer = cognito_issuer;
        self
    }

    // Cognito pool settings (issue 11).

    /// Turns on device tracking: a login without a device key gets `NewDeviceMetadata`, the
    /// tokens are bound to that device (refreshing them needs its `DEVICE_KEY`), and a
    /// remembered device logs in with `DEVICE_SRP_AUTH` instead of answering MFA.
    ///
    /// ```
    /// use en_core_auth::testing::{DeviceTracking, LocalIdp};
    /// let idp = LocalIdp::builder().device_tracking(DeviceTracking::Always).start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn device_tracking(mut self, tracking: DeviceTracking) -> LocalIdpBuilder {
        self.cognito.device_tracking = Some(tracking);
        self
    }

    /// Answers as an app client with `PreventUserExistenceErrors` does: an unknown user
    /// gets `NotAuthorizedException` ("Incorrect username or password."), after a
    /// `PASSWORD_VERIFIER` challenge that looks like any other; never
    /// `UserNotFoundException`.
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder().prevent_user_existence_errors().start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn prevent_user_existence_errors(mut self) -> LocalIdpBuilder {
        self.cognito.prevent_user_existence_errors = true;
        self
    }

    /// Turns on refresh-token rotation for the app client `client_id`: `REFRESH_TOKEN_AUTH`
    /// is refused (`InvalidParameterException`), and `GetTokensFromRefreshToken` returns a
    /// new refresh token each time and invalidates the old one at once.
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder()
    ///     .client("rotating", None)
    ///     .refresh_token_rotation("rotating")
    ///     .start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn refresh_token_rotation(mut self, client_id: &str) -> LocalIdpBuilder {
        self.cognito.rotating_clients.insert(client_id.to_owned());
        self
    }

    /// Serves the `CUSTOM_AUTH` flow with one `CUSTOM_CHALLENGE`, as a pool's Lambda
    /// triggers would: the challenge parameters carry `{"question": question}` and `answer`
    /// is the right `ANSWER`.
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder()
    ///     .custom_challenge("What is 6 × 7?", "42")
    ///     .start()?;
    /// # let _ = idp;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn custom_challenge(mut self, question: &str, answer: &str) -> LocalIdpBuilder {
        self.cognito.custom_challenge = Some((question.to_owned(), answer.to_owned()));
        self
    }

    /// The port to listen on (on 127.0.0.1); default 0, any free port.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().port(0).start()?;
    /// assert!(idp.url().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn port(mut self, port: u16) -> LocalIdpBuilder {
        self.port = port;
        self
    }

    /// Checks the configuration, binds `127.0.0.1:<port>` and starts serving.
    ///
    /// Fails with [`ErrorKind::Configuration`] for a pool id without `_`, an empty or
    /// duplicate client id or user name, or a port that can't be bound.
    ///
    /// ```
    /// use en_core_auth::{ErrorKind, testing::LocalIdp};
    /// let err = LocalIdp::builder().pool_id("no-underscore").start().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// ```
    pub fn start(self) -> Result<LocalIdp, Error> {
        let config_error = |message: String| Error::new(ErrorKind::Configuration, message);
        let pool_name = match self.pool_id.split_once('_') {
            Some((region, name)) if !region.is_empty() && !name.is_empty() => name.to_owned(),
            _ => {
                return Err(config_error(format!(
                    "pool id {:?} is not <region>_<name>",
                    self.pool_id
                )));
            }
        };
        let mut clients = HashMap::new();
        let configured = if self.clients.is_empty() {
            vec![(DEFAULT_CLIENT_ID.to_owned(), Credential::None)]
        } else {
            self.clients
        };
        for (id, credential) in configured {
            let client = match credential {
                Credential::None => AppClient::default(),
                Credential::Secret(secret) => AppClient {
                    secret: Some(secret),
                    ..AppClient::default()
                },
                Credential::PublicKey(pem) => AppClient {
                    assertion_key: Some(assertion::AssertionKey::from_pem(&pem)?),
                    ..AppClient::default()
                },
            };
            if id.is_empty() || clients.insert(id.clone(), client).is_some() {
                return Err(config_error(format!(
                    "client id {id:?} is empty or repeated"
                )));
            }
        }
        let mut users = HashMap::new();
        for user in self.users {
            let name = user.username.clone();
            if name.is_empty() || users.contains_key(&name) {
                return Err(config_error(format!(
                    "user name {name:?} is empty or repeated"
                )));
            }
            users.insert(name, UserRecord::new(user, &pool_name)?);
        }
        let signer = jwt::Signer::shared()?;

        // The handler needs the state, the state needs the URL, the URL needs the bound
        // socket: the handler reaches the state through a slot filled right after binding.
        let slot: Arc<Mutex<Option<Arc<State>>>> = Arc::default();
        let handler_slot = slot.clone();
        let server = Server::start(
            self.port,
            Arc::new(move |request: Request| {
                let state = handler_slot.lock().clone();
                match state {
                    Some(state) => state.handle(request),
                    None => Reply::Drop,
                }
            }),
        )
        .map_err(|e| config_error(format!("could not listen on 127.0.0.1:{}: {e}", self.port)))?;
        let url = format!("http://{}", server.addr());
        let issuer = if self.cognito_issuer {
            format!("{url}/{}", self.pool_id)
        } else {
            url.clone()
        };
        let state = Arc::new(State {
            url: url.clone(),
            issuer,
            pool_id: self.pool_id,
            pool_name,
            clients,
            users: Mutex::new(users),
            token_ttl: self.token_ttl,
            issue_refresh_tokens: self.issue_refresh_tokens,
            signer,
            faults: faults::Faults::default(),
            tokens: Mutex::default(),
            challenges: Mutex::default(),
            last_api_key: Mutex::default(),
            last_token_use: Mutex::default(),
            id_token_keys: Mutex::default(),
            seen_assertions: Mutex::default(),
            cognito_settings: self.cognito,
            cognito: cognito::PoolState::default(),
            lost_answers: Mutex::default(),
            logins: Mutex::default(),
        });
        *slot.lock() = Some(state.clone());
        Ok(LocalIdp {
            state,
            url,
            _server: server,
        })
    }
}

/// The shared state of a running [`LocalIdp`], reached from every connection thread.
pub(crate) struct State {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// `iss` of every token: the URL, or the URL plus `/<pool id>`.
    pub(crate) issuer: String,
    pub(crate) pool_id: String,
    pub(crate) pool_name: String,
    pub(crate) clients: HashMap<String, AppClient>,
    pub(crate) users: Mutex<HashMap<String, UserRecord>>,
    pub(crate) token_ttl: Duration,
    pub(crate) issue_refresh_tokens: bool,
    pub(crate) signer: &'static jwt::Signer,
    pub(crate) faults: faults::Faults,
    pub(crate) tokens: Mutex<tokens::Tokens>,
    pub(crate) challenges: Mutex<cognito::Challenges>,
    pub(crate) last_api_key: Mutex<Option<String>>,
    pub(crate) last_token_use: Mutex<Option<String>>,
    /// How ID tokens are signed ([`LocalIdp::sign_id_tokens`]).
    pub(crate) id_token_keys: Mutex<IdTokenKeys>,
    pub(crate) seen_assertions: Mutex<assertion::SeenAssertions>,
    // Cognito (issue 11): pool settings, devices, lockouts, used TOTP steps, and answers to
    // lose on the way back.
    pub(crate) cognito_settings: cognito::PoolSettings,
    pub(crate) cognito: cognito::PoolState,
    pub(crate) lost_answers: Mutex<Vec<(Operation, usize)>>,
    /// Browser and device logins in progress.
    pub(crate) logins: Mutex<interactive::Logins>,
}

/// An app client as the server keeps it.
#[derive(Default)]
pub(crate) struct AppClient {
    /// `None` for a public client (or a `private_key_jwt` one).
    pub(crate) secret: Option<String>,
    pub(crate) assertion_key: Option<assertion::AssertionKey>,
}

/// The ID-token signing a test asked for, and the extra keys it needs.
#[derive(Default)]
pub(crate) struct IdTokenKeys {
    how: IdTokenSigning,
    /// Listed in the JWKS once made.
    rotated: Option<jwt::EcKey>,
    /// Never listed.
    foreign: Option<jwt::EcKey>,
}

impl State {
    /// An ID token of `claims`, signed as [`LocalIdp::sign_id_tokens`] said.
    pub(crate) fn sign_id_token(&self, claims: &serde_json::Value) -> Result<String, Error> {
        let keys = self.id_token_keys.lock();
        let mut claims = claims.clone();
        let (claim, value) = match keys.how {
            IdTokenSigning::WrongAudience => ("aud", "another-app-client"),
            IdTokenSigning::WrongIssuer => ("iss", "https://issuer.invalid"),
            IdTokenSigning::WrongTokenUse => ("token_use", "access"),
            IdTokenSigning::RotatedKey | IdTokenSigning::ForeignKey => {
                let rotated = keys.rotated.as_ref().ok_or_else(no_key)?;
                let signer = match keys.how {
                    IdTokenSigning::ForeignKey => keys.foreign.as_ref().ok_or_else(no_key)?,
                    _ => rotated,
                };
                return signer.sign(rotated.kid(), &claims);
            }
            IdTokenSigning::Normal => return self.signer.sign(&claims),
        };
        claims[claim] = serde_json::Value::from(value);
        self.signer.sign(&claims)
    }

    /// The JWKS: the test key, and the rotated key once there is one.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let mut jwks = self.signer.jwks().clone();
        if let (Some(rotated), Some(keys)) = (
            &self.id_token_keys.lock().rotated,
            jwks["keys"].as_array_mut(),
        ) {
            keys.push(rotated.jwk().clone());
        }
        jwks
    }
}

fn no_key() -> Error {
    Error::new(ErrorKind::Other, "sign_id_tokens made no key")
}

impl State {
    /// Routes one request; faults for the identity-provider endpoints come first.
    fn handle(&self, request: Request) -> Reply {
        let op = classify(&request, &self.pool_id);
        if let Some(fault) = self.faults.record(op) {
            match fault {
                Fault::Delay(delay) => std::thread::sleep(delay),
                Fault::Rendezvous(parties) => {
                    if !self.faults.rendezvous(parties, faults::RENDEZVOUS_WAIT) {
                        return fault_reply(op, Fault::Status(503));
                    }
                }
                fault => return fault_reply(op, fault),
            }
        }
        match op {
            Operation::Token => oauth::token(self, &request),
            Operation::InitiateAuth
            | Operation::RespondToAuthChallenge
            | Operation::UnknownCognitoOperation
            | Operation::ConfirmDevice
            | Operation::UpdateDeviceStatus
            | Operation::GetTokensFromRefreshToken
            | Operation::RevokeToken
            | Operation::AssociateSoftwareToken
            | Operation::VerifySoftwareToken => {
                let response = cognito::handle(self, op, &request);
                if self.lose_answer(op) {
                    return Reply::Drop;
                }
                response
            }
            Operation::Protected => resources::protected(self, &request),
            Operation::Redirect => resources::redirect(&request),
            Operation::EchoHeaders => resources::headers(&request),
            Operation::Discovery => oauth::discovery(self),
            Operation::Jwks => oauth::jwks(self),
            Operation::Authorize => interactive::authorize(self, &request),
            Operation::DeviceAuthorization => interactive::device_authorization(self, &request),
            Operation::Revocation => interactive::revoke(self, &request),
            _ => resources::not_found(&request),
        }
        .into()
    }
}

impl State {
    /// Whether the answer to this request of `op` is to be lost (see
    /// [`LocalIdp::lose_next_answers`]).
    fn lose_answer(&self, op: Operation) -> bool {
        let mut lost = self.lost_answers.lock();
        let Some(entry) = lost
            .iter_mut()
            .find(|(lost_op, left)| *lost_op == op && *left > 0)
        else {
            return false;
        };
        entry.1 -= 1;
        lost.retain(|(_, left)| *left > 0);
        true
    }
}

fn classify(request: &Request, pool_id: &str) -> Operation {
    let post = request.method == "POST";
    let get = request.method == "GET";
    // Discovery and the JWKS also live under `/<pool id>`, where Cognito serves them.
    let path = request
        .path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(pool_id))
        .filter(|rest| rest.starts_with("/.well-known/"))
        .unwrap_or(&request.path);
    match path {
        "/oauth2/token" if post => Operation::Token,
        "/" if post => match request.header("x-amz-target") {
            Some("AWSCognitoIdentityProviderService.InitiateAuth") => Operation::InitiateAuth,
            Some("AWSCognitoIdentityProviderService.RespondToAuthChallenge") => {
                Operation::RespondToAuthChallenge
            }
            Some("AWSCognitoIdentityProviderService.ConfirmDevice") => Operation::ConfirmDevice,
            Some("AWSCognitoIdentityProviderService.UpdateDeviceStatus") => {
                Operation::UpdateDeviceStatus
            }
            Some("AWSCognitoIdentityProviderService.GetTokensFromRefreshToken") => {
                Operation::GetTokensFromRefreshToken
            }
            Some("AWSCognitoIdentityProviderService.RevokeToken") => Operation::RevokeToken,
            Some("AWSCognitoIdentityProviderService.AssociateSoftwareToken") => {
                Operation::AssociateSoftwareToken
            }
            Some("AWSCognitoIdentityProviderService.VerifySoftwareToken") => {
                Operation::VerifySoftwareToken
            }
            _ => Operation::UnknownCognitoOperation,
        },
        "/protected" => Operation::Protected,
        "/redirect" => Operation::Redirect,
        "/headers" => Operation::EchoHeaders,
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" if get => {
            Operation::Discovery
        }
        "/.well-known/jwks.json" if get => Operation::Jwks,
        "/oauth2/authorize" if get => Operation::Authorize,
        "/oauth2/device_authorization" if post => Operation::DeviceAuthorization,
        "/oauth2/revoke" if post => Operation::Revocation,
        _ => Operation::Other,
    }
}

fn fault_reply(op: Operation, fault: Fault) -> Reply {
    if fault == Fault::DropConnection {
        return Reply::Drop;
    }
    if matches!(
        op,
        Operation::Token | Operation::DeviceAuthorization | Operation::Revocation
    ) {
        oauth::fault(fault).into()
    } else {
        cognito::fault(fault).into()
    }
}

/// An identity provider serving on `127.0.0.1` until dropped; see the [module docs](self).
///
/// ```
/// use en_core_auth::testing::LocalIdp;
///
/// let idp = LocalIdp::builder().user("alice", "Passw0rd!").start()?;
/// let discovery: serde_json::Value = ureq::get(&format!(
///     "{}/.well-known/openid-configuration",
///     idp.issuer()
/// ))
/// .call()?
/// .body_mut()
/// .read_json()?;
/// assert_eq!(discovery["token_endpoint"], idp.token_url());
/// drop(idp); // stops the server and frees the port
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalIdp {
    state: Arc<State>,
    url: String,
    _server: Server,
}

impl fmt::Debug for LocalIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdp")
            .field("url", &self.url)
            .field("pool_id", &self.state.pool_id)
            .finish_non_exhaustive()
    }
}

impl LocalIdp {
    /// A builder with the defaults: pool `us-east-1_Local`, no users, one-hour tokens,
    /// refresh tokens for `client_credentials`, any free port.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.pool_id(), "us-east-1_Local");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder() -> LocalIdpBuilder {
        LocalIdpBuilder {
            pool_id: DEFAULT_POOL_ID.to_owned(),
            clients: Vec::new(),
            users: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            issue_refresh_tokens: true,
            port: 0,
            cognito_issuer: true,
            cognito: cognito::PoolSettings::default(),
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`; the Cognito API endpoint is this plus `/`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(idp.url().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The OAuth2 token endpoint, [`url`](Self::url) + `/oauth2/token`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.token_url(), format!("{}/oauth2/token", idp.url()));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.url)
    }

    /// The issuer (`iss` of every token): [`url`](Self::url) + `/<pool id>`, as a user
    /// pool's, unless built with [`cognito_issuer(false)`](LocalIdpBuilder::cognito_issuer);
    /// discovery is at issuer + `/.well-known/openid-configuration` (and RFC 8414's
    /// `/.well-known/oauth-authorization-server`).
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.issuer(), format!("{}/us-east-1_Local", idp.url()));
    /// let plain = LocalIdp::builder().cognito_issuer(false).start()?;
    /// assert_eq!(plain.issuer(), plain.url());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    /// The JWKS, issuer + `/.well-known/jwks.json`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(idp.jwks_url().ends_with("/.well-known/jwks.json"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.state.issuer)
    }

    /// The protected resource, [`url`](Self::url) + `/protected`: any method; 200 with
    /// `{"ok":true,"sub":…,"token_use":…,"client_id":…,"method":…,"body":…}` for a valid
    /// token it issued (access or ID token, as `Authorization: Bearer <token>` or the bare
    /// token), else 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// let agent: ureq::Agent = ureq::Agent::config_builder()
    ///     .http_status_as_error(false)
    ///     .build()
    ///     .into();
    /// let reply = agent.get(&idp.protected_url()).call()?;
    /// assert_eq!(reply.status(), 401);
    /// assert_eq!(idp.rejected_protected_requests(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn protected_url(&self) -> String {
        format!("{}/protected", self.url)
    }

    /// A URL on this server that redirects to `to` with `307 Temporary Redirect` (method and
    /// body kept): for testing what a client sends after a redirect, for example to another
    /// `LocalIdp`'s [`headers_url`](Self::headers_url). Append `&status=302` (or any 3xx) for
    /// another status.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// let no_follow: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).build().into();
    /// let reply = no_follow.get(&idp.redirect_url("http://127.0.0.1:9/x?a=b")).call()?;
    /// assert_eq!(reply.status(), 307);
    /// assert_eq!(reply.headers()["location"], "http://127.0.0.1:9/x?a=b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redirect_url(&self, to: &str) -> String {
        let encoded: String = to
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("{}/redirect?to={encoded}", self.url)
    }

    /// A URL on this server that echoes the request as JSON: `{"method": …, "headers": {…},
    /// "body": …}`, header names in lower case. For checking which headers a client sent.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// let echo: serde_json::Value = ureq::get(&idp.headers_url())
    ///     .header("X-Api-Key", "k")
    ///     .call()?
    ///     .body_mut()
    ///     .read_json()?;
    /// assert_eq!(echo["headers"]["x-api-key"], "k");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn headers_url(&self) -> String {
        format!("{}/headers", self.url)
    }

    /// The user pool id.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.pool_id(), "us-east-1_Local");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn pool_id(&self) -> &str {
        &self.state.pool_id
    }

    /// How many requests `op` has received so far, faulted ones included.
    ///
    /// ```
    /// use en_core_auth::testing::{LocalIdp, Operation};
    /// let idp = LocalIdp::builder().start()?;
    /// ureq::get(&idp.jwks_url()).call()?;
    /// assert_eq!(idp.requests(Operation::Jwks), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn requests(&self, op: Operation) -> usize {
        self.state.faults.count(op)
    }

    /// How many requests `/protected` answered with 401.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.rejected_protected_requests(), 0);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn rejected_protected_requests(&self) -> usize {
        self.state.faults.rejected_protected()
    }

    /// Makes the next `n` requests to the identity-provider endpoints (the token endpoint
    /// and the Cognito API, not `/protected`, discovery or the JWKS) get `fault`. Faults
    /// queue up: each call's `n` requests follow those of the calls before it.
    ///
    /// ```
    /// use en_core_auth::testing::{Fault, LocalIdp};
    /// let idp = LocalIdp::builder().client("c", Some("s")).start()?;
    /// idp.fail_next(1, Fault::Status(500));
    /// let reply = ureq::post(&idp.token_url())
    ///     .send_form([("grant_type", "client_credentials"), ("client_id", "c"), ("client_secret", "s")]);
    /// assert!(matches!(reply, Err(ureq::Error::StatusCode(500))));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state.faults.push(n, fault);
    }

    /// Revokes every refresh token issued so far: refreshing with one fails
    /// (`invalid_grant`, `NotAuthorizedException`).
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.revoke_refresh_tokens();
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn revoke_refresh_tokens(&self) {
        self.state.tokens.lock().revoke_refresh_tokens();
    }

    /// Makes every access and ID token issued so far invalid at `/protected` (as if they had
    /// expired); refresh tokens keep working.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.expire_all_tokens();
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn expire_all_tokens(&self) {
        self.state.tokens.lock().expire_all();
    }

    /// The `X-Api-Key` header of the last request to `/protected` (`None` if it had none).
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    /// agent.get(&idp.protected_url()).header("X-Api-Key", "key-1").call()?;
    /// assert_eq!(idp.last_api_key().as_deref(), Some("key-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_api_key(&self) -> Option<String> {
        self.state.last_api_key.lock().clone()
    }

    /// Signs the ID tokens issued from now on as `how` says: a key rotation, a forgery or
    /// a wrong claim, for testing the clients that verify them. Fails only when no random
    /// key can be made.
    ///
    /// ```
    /// use en_core_auth::testing::{IdTokenSigning, LocalIdp};
    /// let idp = LocalIdp::builder().start()?;
    /// idp.sign_id_tokens(IdTokenSigning::RotatedKey)?;
    /// let jwks: serde_json::Value = ureq::get(&idp.jwks_url()).call()?.body_mut().read_json()?;
    /// assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_id_tokens(&self, how: IdTokenSigning) -> Result<(), Error> {
        let mut keys = self.state.id_token_keys.lock();
        if matches!(how, IdTokenSigning::RotatedKey | IdTokenSigning::ForeignKey)
            && keys.rotated.is_none()
        {
            keys.rotated = Some(jwt::EcKey::generate("en-core-auth-local-idp-rotated-key")?);
        }
        if how == IdTokenSigning::ForeignKey && keys.foreign.is_none() {
            keys.foreign = Some(jwt::EcKey::generate("unpublished")?);
        }
        keys.how = how;
        Ok(())
    }

    /// The `token_use` (`"access"` or `"id"`) of the last token `/protected` accepted.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.last_token_use(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn last_token_use(&self) -> Option<String> {
        self.state.last_token_use.lock().clone()
    }

    // Cognito (issue 11).

    /// Makes the next `n` requests to the Cognito operation `op` run as usual (a challenge
    /// answer is used up, a rotated refresh token is gone) and then closes the connection
    /// without the answer: a response lost on the way back. Other operations (the OAuth2
    /// token endpoint, `/protected`) are not affected.
    ///
    /// ```
    /// use en_core_auth::testing::{LocalIdp, Operation};
    /// let idp = LocalIdp::builder().start()?;
    /// idp.lose_next_answers(1, Operation::RespondToAuthChallenge);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn lose_next_answers(&self, n: usize, op: Operation) {
        if n > 0 {
            self.state.lost_answers.lock().push((op, n));
        }
    }

    /// Wrong passwords in a row for `username` (reset by a right one). From the sixth on,
    /// the user is locked out: "Password attempts exceeded".
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder().user("alice", "pw").start()?;
    /// assert_eq!(idp.failed_logins("alice"), 0);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn failed_logins(&self, username: &str) -> u32 {
        self.state.cognito.failed_logins(username)
    }

    /// Ends a lockout (as Cognito's does after a while).
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder().user("alice", "pw").start()?;
    /// idp.unlock("alice");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn unlock(&self, username: &str) {
        self.state.cognito.unlock(username);
    }

    /// The devices the pool knows: `(device key, user name, confirmed, remembered)`.
    ///
    /// ```
    /// let idp = en_core_auth::testing::LocalIdp::builder().start()?;
    /// assert!(idp.devices().is_empty());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn devices(&self) -> Vec<(String, String, bool, bool)> {
        self.state.cognito.devices()
    }

    /// Whether `/protected` would accept `token` now: signed by this server, unexpired and
    /// not expired by [`expire_all_tokens`](Self::expire_all_tokens). Access and ID tokens
    /// both count.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(!idp.verify_access_token("not-a-token"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn verify_access_token(&self, token: &str) -> bool {
        tokens::check(&self.state, token).is_some()
    }
}

/// A person's logins: the authorization endpoint, the device authorization
/// endpoint and the revocation endpoint, with hooks in place of the pages a person would
/// use.
impl LocalIdp {
    /// The authorization endpoint, [`url`](Self::url) + `/oauth2/authorize`. It shows no
    /// page: it logs in the user named by [`login_as`](Self::login_as) at once and
    /// redirects to the (loopback only) `redirect_uri` with a code, or with
    /// `error=access_denied` when no user is named. PKCE (`S256`) is required.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert_eq!(idp.authorization_url(), format!("{}/oauth2/authorize", idp.url()));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn authorization_url(&self) -> String {
        format!("{}/oauth2/authorize", self.url)
    }

    /// The device authorization endpoint (RFC 8628), [`url`](Self::url) +
    /// `/oauth2/device_authorization`. Codes wait for
    /// [`approve_device_code`](Self::approve_device_code) or
    /// [`deny_device_code`](Self::deny_device_code); the interval is five seconds and codes
    /// live ten minutes unless [`device_timing`](Self::device_timing) says otherwise.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(idp.device_authorization_url().ends_with("/oauth2/device_authorization"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn device_authorization_url(&self) -> String {
        format!("{}/oauth2/device_authorization", self.url)
    }

    /// The revocation endpoint (RFC 7009), [`url`](Self::url) + `/oauth2/revoke`: a revoked
    /// refresh token is refused afterwards, a revoked access token rejected at `/protected`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(idp.revocation_url().ends_with("/oauth2/revoke"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn revocation_url(&self) -> String {
        format!("{}/oauth2/revoke", self.url)
    }

    /// Makes the authorization endpoint log in `username` (as if the person had typed the
    /// password and consented); [`deny_logins`](Self::deny_logins) undoes it.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().user("alice", "Passw0rd!").start()?;
    /// idp.login_as("alice");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn login_as(&self, username: &str) {
        self.state.logins.lock().login_as(Some(username.to_owned()));
    }

    /// Makes the authorization endpoint answer `error=access_denied` (the person said no);
    /// the default.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.deny_logins();
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn deny_logins(&self) {
        self.state.logins.lock().login_as(None);
    }

    /// Approves the pending device login showing `user_code` as `username`: its next poll
    /// gets tokens. False when no pending login shows that code.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(!idp.approve_device_code("BCDF-GHJK", "alice"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn approve_device_code(&self, user_code: &str, username: &str) -> bool {
        self.state
            .logins
            .lock()
            .decide(user_code, Some(username.to_owned()))
    }

    /// Denies the pending device login showing `user_code`: its next poll gets
    /// `access_denied`. False when no pending login shows that code.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// assert!(!idp.deny_device_code("BCDF-GHJK"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn deny_device_code(&self, user_code: &str) -> bool {
        self.state.logins.lock().decide(user_code, None)
    }

    /// Answers the next `polls` device code polls with `slow_down`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.slow_down_device_polls(2);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn slow_down_device_polls(&self, polls: usize) {
        self.state.logins.lock().slow_down(polls);
    }

    /// Makes every device code handed out so far expire: the next poll gets
    /// `expired_token`.
    ///
    /// ```
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.expire_device_codes();
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn expire_device_codes(&self) {
        self.state.logins.lock().expire_device_codes();
    }

    /// The polling `interval` and lifetime (`expires_in`) of device codes handed out from
    /// now on; default five seconds and ten minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::testing::LocalIdp;
    /// let idp = LocalIdp::builder().start()?;
    /// idp.device_timing(Duration::from_secs(1), Duration::from_secs(30));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn device_timing(&self, interval: Duration, lifetime: Duration) {
        self.state
            .logins
            .lock()
            .set_device_timing(interval, lifetime);
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Other, format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A random string safe in URLs and headers, `N` bytes of entropy.
pub(crate) fn random_token<const N: usize>() -> Result<String, Error> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// A random (version 4) UUID, as Cognito uses for `sub`.
pub(crate) fn random_uuid() -> Result<String, Error> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_passwords_or_client_secrets() {
        let builder = LocalIdp::builder()
            .client("visible-client", Some("hidden-secret"))
            .user_with(
                User::new("visible-user", "hidden-password").totp_secret(b"hidden".to_vec()),
            );
        let shown = format!("{builder:?}");
        assert!(shown.contains("visible-client") && shown.contains("visible-user"));
        assert!(!shown.contains("hidden"), "{shown}");
    }

    #[test]
    fn generated_ids_have_the_expected_shape() {
        let uuid = random_uuid().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
        assert_ne!(uuid, random_uuid().unwrap());
        assert_eq!(random_token::<32>().unwrap().len(), 43);
    }
}
