//! The Cognito Identity Provider JSON 1.1 API: `InitiateAuth`, `RespondToAuthChallenge`,
//! `ConfirmDevice`, `UpdateDeviceStatus`, `GetTokensFromRefreshToken` and `RevokeToken`,
//! with the server side of Cognito's SRP (in [`super::srp_server`], written apart from the
//! client's math), `SECRET_HASH` checks, the challenges `PASSWORD_VERIFIER`,
//! `NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `DEVICE_SRP_AUTH` and
//! `DEVICE_PASSWORD_VERIFIER`, and errors shaped as AWS sends them (HTTP 400,
//! `{"__type": …, "message": …}`).
//!
//! What it checks as Cognito does: the `TIMESTAMP` of a password proof (shape, weekday, a
//! five-minute skew), a lockout after [`MAX_FAILED_LOGINS`] wrong passwords in a row
//! ("Password attempts exceeded"), TOTP codes that cannot be used twice, optional
//! `PreventUserExistenceErrors`, remembered devices with device-bound refresh tokens, and
//! refresh-token rotation per app client.
//!
//! Pending challenges live in [`Challenges`], keyed by the `SECRET_BLOCK` for
//! `PASSWORD_VERIFIER` (Cognito sends no `Session` with that challenge; clients don't send
//! one back) and by the `Session` string for the others. Each is good for one answer within
//! three minutes, as in Cognito.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::faults::{Fault, Operation, retry_after_header};
use super::server::{Request, Response};
use super::srp_server;
use super::tokens::{self, Grant};
use super::{State, UserStatus, random_bytes, random_token, random_uuid, totp_code};
use crate::srp::math;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// How long a challenge waits for its answer (Cognito's default session validity).
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(180);
/// Wrong passwords in a row after which a user is locked out, as Cognito does (it then
/// answers "Password attempts exceeded" for a while that grows with each failure; here, until
/// [`LocalIdp::unlock`](super::LocalIdp::unlock)).
pub(crate) const MAX_FAILED_LOGINS: u32 = 5;

/// When the pool remembers devices (a user pool's "device tracking" setting).
///
/// ```
/// use en_core_auth::testing::{DeviceTracking, LocalIdp};
/// let idp = LocalIdp::builder().device_tracking(DeviceTracking::UserOptIn).start()?;
/// # let _ = idp;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceTracking {
    /// Every confirmed device is remembered (`DeviceOnlyRememberedOnUserPrompt` false):
    /// `ConfirmDevice` answers `UserConfirmationNecessary: false`.
    Always,
    /// The user chooses: `ConfirmDevice` answers `UserConfirmationNecessary: true`, and the
    /// device is remembered only after `UpdateDeviceStatus` to `remembered`.
    UserOptIn,
}

/// The pool's Cognito settings, from the builder.
#[derive(Clone, Default)]
pub(crate) struct PoolSettings {
    pub(crate) device_tracking: Option<DeviceTracking>,
    pub(crate) prevent_user_existence_errors: bool,
    /// App clients with refresh-token rotation: they must use `GetTokensFromRefreshToken`.
    pub(crate) rotating_clients: HashSet<String>,
    /// The `CUSTOM_AUTH` flow's one challenge: (question, right answer).
    pub(crate) custom_challenge: Option<(String, String)>,
}

/// What the pool learns while it runs, beside users and tokens.
#[derive(Default)]
pub(crate) struct PoolState {
    devices: Mutex<HashMap<String, DeviceRecord>>,
    /// Wrong passwords in a row, by user name.
    failed_logins: Mutex<HashMap<String, u32>>,
    /// The last TOTP time step each user logged in with: a code is good once.
    totp_steps: Mutex<HashMap<String, u64>>,
}

impl PoolState {
    pub(crate) fn failed_logins(&self, username: &str) -> u32 {
        self.failed_logins
            .lock()
            .get(username)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn unlock(&self, username: &str) {
        self.failed_logins.lock().remove(username);
    }

    /// (device key, user name, confirmed, remembered) of every device, for tests.
    pub(crate) fn devices(&self) -> Vec<(String, String, bool, bool)> {
        let mut all: Vec<_> = self
            .devices
            .lock()
            .iter()
            .map(|(key, d)| {
                (
                    key.clone(),
                    d.username.clone(),
                    d.verifier.is_some(),
                    d.remembered,
                )
            })
            .collect();
        all.sort();
        all
    }
}

struct DeviceRecord {
    username: String,
    group_key: String,
    /// Salt and verifier from `ConfirmDevice`; `None` until then.
    verifier: Option<(BigUint, BigUint)>,
    remembered: bool,
}

/// Pending challenges, by `SECRET_BLOCK` or `Session`.
pub(crate) type Challenges = HashMap<String, Pending>;

pub(crate) struct Pending {
    kind: PendingKind,
    /// The real user name (never the alias the user typed).
    username: String,
    client_id: String,
    /// The device the login is for (its key was sent with the password proof).
    device_key: Option<String>,
    created: Instant,
}

#[derive(PartialEq, Eq)]
enum PendingKind {
    /// `known` is false for a user that does not exist (`PreventUserExistenceErrors`): the
    /// answer always fails as a wrong password would.
    PasswordVerifier {
        key: [u8; 16],
        known: bool,
    },
    NewPasswordRequired,
    SoftwareTokenMfa,
    SmsMfa,
    DeviceSrpAuth,
    DevicePasswordVerifier {
        key: [u8; 16],
        secret_block: String,
    },
    EmailOtp,
    SmsOtp,
    SelectMfaType,
    MfaSetup,
    /// `AssociateSoftwareToken` gave this secret; `VerifySoftwareToken` must prove it.
    MfaSetupAssociated {
        secret: Vec<u8>,
    },
    MfaSetupVerified,
    CustomChallenge,
    SelectChallenge,
}

/// The SRP verifier the pool stores for a password.
pub(crate) fn verifier(salt: &BigUint, pool_name: &str, username: &str, password: &str) -> BigUint {
    srp_server::verifier(salt, pool_name, username, password)
}

/// An AWS JSON 1.1 error.
struct AwsError {
    status: u16,
    kind: &'static str,
    message: String,
}

fn aws_error(kind: &'static str, message: impl Into<String>) -> AwsError {
    AwsError {
        status: 400,
        kind,
        message: message.into(),
    }
}

fn internal_error() -> AwsError {
    AwsError {
        status: 500,
        kind: "InternalErrorException",
        message: "internal error".to_owned(),
    }
}

fn not_authorized(message: impl Into<String>) -> AwsError {
    aws_error("NotAuthorizedException", message)
}

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    aws_error("InvalidParameterException", message)
}

impl AwsError {
    fn into_response(self) -> Response {
        Response::json(
            self.status,
            CONTENT_TYPE,
            &json!({"__type": self.kind, "message": self.message}),
        )
        .with_header("x-amzn-ErrorType", format!("{}:", self.kind))
    }
}

pub(crate) fn fault(fault: Fault) -> Response {
    let throttled = |retry_after: Option<Duration>| {
        let response = aws_error("TooManyRequestsException", "Rate exceeded").into_response();
        match retry_after {
            Some(delay) => response.with_header("Retry-After", retry_after_header(delay)),
            None => response,
        }
    };
    match fault {
        Fault::Status(429) => throttled(None),
        Fault::TooManyRequests { retry_after } => throttled(retry_after),
        Fault::Status(status) if status >= 500 => internal_error().into_response(),
        Fault::Status(status) => AwsError {
            status,
            kind: "InvalidParameterException",
            message: "injected fault".to_owned(),
        }
        .into_response(),
        Fault::MalformedBody => Response {
            status: 200,
            headers: vec![("Content-Type".to_owned(), CONTENT_TYPE.to_owned())],
            body: b"{\"AuthenticationResult\": {\"AccessTok".to_vec(),
        },
        // Handled before: a delay answers normally, a drop never answers.
        Fault::Delay(_) | Fault::DropConnection | Fault::Rendezvous(_) => {
            internal_error().into_response()
        }
    }
}

/// `POST /` with an `X-Amz-Target`.
pub(crate) fn handle(state: &State, op: Operation, request: &Request) -> Response {
    let result = parse_body(request).and_then(|body| match op {
        Operation::InitiateAuth => initiate(state, &body),
        Operation::RespondToAuthChallenge => respond(state, &body),
        Operation::ConfirmDevice => confirm_device(state, &body),
        Operation::UpdateDeviceStatus => update_device_status(state, &body),
        Operation::GetTokensFromRefreshToken => tokens_from_refresh_token(state, &body),
        Operation::RevokeToken => revoke_token(state, &body),
        Operation::AssociateSoftwareToken => associate_software_token(state, &body),
        Operation::VerifySoftwareToken => verify_software_token(state, &body),
        _ => Err(aws_error(
            "UnknownOperationException",
            format!(
                "unknown or unsupported X-Amz-Target {:?}",
                request.header("x-amz-target").unwrap_or("")
            ),
        )),
    });
    match result {
        Ok(body) => Response::json(200, CONTENT_TYPE, &body),
        Err(error) => error.into_response(),
    }
}

fn parse_body(request: &Request) -> Result<Map<String, Value>, AwsError> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(aws_error(
            "SerializationException",
            "the request body is not a JSON object",
        )),
    }
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

fn required<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, AwsError> {
    field(body, name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| invalid_parameter(format!("Missing required parameter {name}")))
}

fn object<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Map<String, Value>, AwsError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match body.get(name) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(aws_error(
            "SerializationException",
            format!("{name} is not an object"),
        )),
    }
}

/// The app client named by `ClientId`, with its secret.
fn client<'a>(
    state: &'a State,
    body: &Map<String, Value>,
) -> Result<(&'a str, Option<&'a str>), AwsError> {
    let id = required(body, "ClientId")?;
    state
        .clients
        .get_key_value(id)
        .map(|(id, client)| (id.as_str(), client.secret.as_deref()))
        .ok_or_else(|| {
            aws_error(
                "ResourceNotFoundException",
                format!("User pool client {id} does not exist."),
            )
        })
}

/// Checks `SECRET_HASH` when the client has a secret, over any of the accepted user names.
fn check_secret_hash(
    client_id: &str,
    secret: Option<&str>,
    params: &Map<String, Value>,
    usernames: &[&str],
) -> Result<(), AwsError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    let Some(sent) = field(params, "SECRET_HASH") else {
        return Err(not_authorized(format!(
            "Client {client_id} is configured for secret but secret was not received"
        )));
    };
    let matches = usernames.iter().any(|name| {
        constant_time_eq(
            srp_server::secret_hash(secret, name, client_id).as_bytes(),
            sent.as_bytes(),
        )
    });
    if matches {
        Ok(())
    } else {
        Err(not_authorized(format!(
            "Unable to verify secret hash for client {client_id}"
        )))
    }
}

/// The `ClientSecret` parameter of the token operations (sent as is, not as a hash).
fn check_client_secret(body: &Map<String, Value>, secret: Option<&str>) -> Result<(), AwsError> {
    match secret {
        None => Ok(()),
        Some(secret) => {
            let sent = field(body, "ClientSecret").unwrap_or("");
            if constant_time_eq(sent.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err(not_authorized("Client secret is wrong or missing."))
            }
        }
    }
}

/// Compares without stopping at the first difference, so timing doesn't reveal how much of
/// a secret hash or signature was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The real user name for a user name or e-mail alias.
fn find_user(state: &State, name: &str) -> Option<String> {
    let users = state.users.lock();
    if users.contains_key(name) {
        return Some(name.to_owned());
    }
    users
        .values()
        .find(|record| record.user.email.as_deref() == Some(name))
        .map(|record| record.user.username.clone())
}

/// The real user name for `USERNAME` (a name or alias), once `SECRET_HASH` checks out over
/// either what was sent or the real name. `Ok(None)` for an unknown user when the pool
/// hides which users exist.
fn identify(
    state: &State,
    client_id: &str,
    secret: Option<&str>,
    params: &Map<String, Value>,
) -> Result<Option<String>, AwsError> {
    let given = required(params, "USERNAME")?;
    let username = find_user(state, given);
    let mut names = vec![given];
    names.extend(username.as_deref());
    check_secret_hash(client_id, secret, params, &names)?;
    match username {
        Some(name) => Ok(Some(name)),
        None if state.cognito_settings.prevent_user_existence_errors => Ok(None),
        None => Err(aws_error("UserNotFoundException", "User does not exist.")),
    }
}

fn wrong_password() -> AwsError {
    not_authorized("Incorrect username or password.")
}

fn locked_out() -> AwsError {
    not_authorized("Password attempts exceeded")
}

/// Counts a wrong password; the answer says whether the user is now locked out.
fn failed_login(state: &State, username: &str) -> AwsError {
    let mut failed = state.cognito.failed_logins.lock();
    let count = failed.entry(username.to_owned()).or_insert(0);
    *count += 1;
    if *count > MAX_FAILED_LOGINS {
        locked_out()
    } else {
        wrong_password()
    }
}

fn check_not_locked(state: &State, username: &str) -> Result<(), AwsError> {
    if state.cognito.failed_logins(username) >= MAX_FAILED_LOGINS {
        Err(locked_out())
    } else {
        Ok(())
    }
}

fn initiate(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let (client_id, secret) = client(state, body)?;
    let flow = required(body, "AuthFlow")?;
    let params = object(body, "AuthParameters")?;
    match flow {
        "USER_SRP_AUTH" => srp_challenge(state, client_id, secret, params),
        "USER_PASSWORD_AUTH" => password_login(
            state,
            client_id,
            secret,
            params,
            required(params, "PASSWORD")?,
        ),
        "CUSTOM_AUTH" => {
            let Some((question, _)) = &state.cognito_settings.custom_challenge else {
                return Err(invalid_parameter(
                    "Custom auth lambda trigger is not configured for the user pool.",
                ));
            };
            let Some(username) = identify(state, client_id, secret, params)? else {
                return Err(wrong_password());
            };
            let session = new_session(
                state,
                PendingKind::CustomChallenge,
                &username,
                client_id,
                None,
            )?;
            Ok(json!({
                "ChallengeName": "CUSTOM_CHALLENGE",
                "Session": session,
                "ChallengeParameters": {"USERNAME": username, "question": question},
            }))
        }
        "USER_AUTH" => {
            let preferred = field(params, "PREFERRED_CHALLENGE");
            if preferred == Some("PASSWORD_SRP") {
                return srp_challenge(state, client_id, secret, params);
            }
            if preferred == Some("PASSWORD") {
                return password_login(
                    state,
                    client_id,
                    secret,
                    params,
                    required(params, "PASSWORD")?,
                );
            }
            let Some(username) = identify(state, client_id, secret, params)? else {
                return Err(wrong_password());
            };
            match preferred {
                Some(first @ ("EMAIL_OTP" | "SMS_OTP")) => {
                    first_factor_otp(state, &username, client_id, first)
                }
                Some(other) => Err(invalid_parameter(format!(
                    "PREFERRED_CHALLENGE {other} is not one of PASSWORD_SRP, PASSWORD, EMAIL_OTP, SMS_OTP"
                ))),
                None => {
                    let session = new_session(
                        state,
                        PendingKind::SelectChallenge,
                        &username,
                        client_id,
                        None,
                    )?;
                    Ok(json!({
                        "ChallengeName": "SELECT_CHALLENGE",
                        "Session": session,
                        "AvailableChallenges": available_first_factors(state, &username),
                        "ChallengeParameters": {"USERNAME": username},
                    }))
                }
            }
        }
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
            if state.cognito_settings.rotating_clients.contains(client_id) {
                // AWS documents no exact error; this is the one clients are told to expect.
                return Err(invalid_parameter(
                    "Refresh token rotation is enabled for this app client: use GetTokensFromRefreshToken",
                ));
            }
            let refresh = required(params, "REFRESH_TOKEN")?;
            let grant = refreshable(state, refresh, client_id, field(params, "DEVICE_KEY"))?;
            let Grant::User { username, .. } = &grant else {
                return Err(not_authorized("Invalid Refresh Token"));
            };
            let sub = state.users.lock().get(username).map(|r| r.sub.clone());
            let Some(sub) = sub else {
                return Err(not_authorized("Invalid Refresh Token"));
            };
            // The hash is over the real user name (or the `sub`), never an alias.
            check_secret_hash(client_id, secret, params, &[username, &sub])?;
            authentication_result(state, &grant, false)
        }
        other => Err(invalid_parameter(format!(
            "AuthFlow {other} is not supported by the local identity provider"
        ))),
    }
}

/// The `PASSWORD_VERIFIER` challenge for `SRP_A` (from `USER_SRP_AUTH`, or `USER_AUTH` with
/// `PASSWORD_SRP`).
fn srp_challenge(
    state: &State,
    client_id: &str,
    secret: Option<&str>,
    params: &Map<String, Value>,
) -> Result<Value, AwsError> {
    {
        let srp_a = required(params, "SRP_A")?;
        let given = required(params, "USERNAME")?.to_owned();
        let username = identify(state, client_id, secret, params)?;
        let client_a =
            math::parse_hex(srp_a).map_err(|_| invalid_parameter("SRP_A is not a hex number"))?;
        let known = username.is_some();
        // An unknown user (with PreventUserExistenceErrors) gets a challenge that looks
        // like any other and fails at the answer, as in Cognito.
        let (salt, verifier) = match &username {
            Some(name) => {
                let users = state.users.lock();
                let record = users.get(name).ok_or_else(internal_error)?;
                (record.salt.clone(), record.verifier.clone())
            }
            None => {
                let salt =
                    BigUint::from_bytes_be(&random_bytes::<16>().map_err(|_| internal_error())?);
                let fake =
                    BigUint::from_bytes_be(&random_bytes::<384>().map_err(|_| internal_error())?);
                (salt, fake)
            }
        };
        let b = random_bytes::<72>().map_err(|_| internal_error())?;
        // The key depends only on A, b and the verifier: derive it now, so a bad A
        // (0 mod N) is refused here, as the SRP-6a server must.
        let exchange = srp_server::exchange(&client_a, &verifier, &b)
            .ok_or_else(|| invalid_parameter("SRP_A is not valid (0 mod N)"))?;
        let secret_block = STANDARD.encode(random_bytes::<48>().map_err(|_| internal_error())?);
        let username = username.unwrap_or(given);
        remember(
            state,
            secret_block.clone(),
            PendingKind::PasswordVerifier {
                key: exchange.key,
                known,
            },
            &username,
            client_id,
            None,
        );
        Ok(json!({
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                "SALT": format!("{salt:x}"),
                "SRP_B": format!("{:x}", exchange.public_b),
                "SECRET_BLOCK": secret_block,
                "USERNAME": username,
                "USER_ID_FOR_SRP": username,
            },
        }))
    }
}

/// A password sent as is (`USER_PASSWORD_AUTH`, or `USER_AUTH` with `PASSWORD`).
fn password_login(
    state: &State,
    client_id: &str,
    secret: Option<&str>,
    params: &Map<String, Value>,
    password: &str,
) -> Result<Value, AwsError> {
    {
        let Some(username) = identify(state, client_id, secret, params)? else {
            return Err(wrong_password());
        };
        check_not_locked(state, &username)?;
        let right = state.users.lock().get(&username).is_some_and(|record| {
            constant_time_eq(record.user.password.as_bytes(), password.as_bytes())
        });
        if !right {
            return Err(failed_login(state, &username));
        }
        state.cognito.unlock(&username);
        after_password(state, &username, client_id, None)
    }
}

/// The first factors `USER_AUTH` offers this user.
fn available_first_factors(state: &State, username: &str) -> Vec<&'static str> {
    let users = state.users.lock();
    let user = users.get(username).map(|r| &r.user);
    let mut available = vec!["PASSWORD_SRP", "PASSWORD"];
    if user.is_some_and(|u| u.email_otp_code.is_some()) {
        available.push("EMAIL_OTP");
    }
    if user.is_some_and(|u| u.sms_mfa_code.is_some()) {
        available.push("SMS_OTP");
    }
    available
}

/// `EMAIL_OTP` or `SMS_OTP` as the first (and only) factor of `USER_AUTH`.
fn first_factor_otp(
    state: &State,
    username: &str,
    client_id: &str,
    which: &str,
) -> Result<Value, AwsError> {
    if !available_first_factors(state, username).contains(&which) {
        return Err(invalid_parameter(format!(
            "{which} is not available for this user"
        )));
    }
    let kind = if which == "EMAIL_OTP" {
        PendingKind::EmailOtp
    } else {
        PendingKind::SmsOtp
    };
    code_challenge(state, kind, username, client_id, None)
}

/// A challenge answered with a code (MFA, or a passwordless first factor).
fn code_challenge(
    state: &State,
    kind: PendingKind,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<Value, AwsError> {
    let email = state
        .users
        .lock()
        .get(username)
        .and_then(|r| r.user.email.clone());
    let (name, parameters) = match kind {
        PendingKind::SoftwareTokenMfa => {
            ("SOFTWARE_TOKEN_MFA", json!({"USER_ID_FOR_SRP": username}))
        }
        PendingKind::SmsMfa | PendingKind::SmsOtp => (
            if kind == PendingKind::SmsMfa {
                "SMS_MFA"
            } else {
                "SMS_OTP"
            },
            json!({
                "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
                "CODE_DELIVERY_DESTINATION": "+*******0000",
                "USER_ID_FOR_SRP": username,
            }),
        ),
        PendingKind::EmailOtp => (
            "EMAIL_OTP",
            json!({
                "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL",
                "CODE_DELIVERY_DESTINATION": masked_email(email.as_deref().unwrap_or("")),
                "USER_ID_FOR_SRP": username,
            }),
        ),
        _ => return Err(internal_error()),
    };
    let session = new_session(state, kind, username, client_id, device_key)?;
    Ok(json!({"ChallengeName": name, "Session": session, "ChallengeParameters": parameters}))
}

/// `a***@example.com`, as Cognito shows where a code went.
fn masked_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `AssociateSoftwareToken` during `MFA_SETUP`: a new TOTP secret for the user's
/// authenticator, in base32 as apps want it.
fn associate_software_token(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let session = required(body, "Session")?;
    let pending = state.challenges.lock().remove(session);
    let Some(pending) = pending
        .filter(|p| p.kind == PendingKind::MfaSetup && p.created.elapsed() < CHALLENGE_LIFETIME)
    else {
        return Err(not_authorized(
            "Invalid session for the user, session is expired.",
        ));
    };
    let secret = random_bytes::<20>().map_err(|_| internal_error())?.to_vec();
    let code = base32(&secret);
    let session = new_session(
        state,
        PendingKind::MfaSetupAssociated { secret },
        &pending.username,
        &pending.client_id,
        pending.device_key.as_deref(),
    )?;
    Ok(json!({"SecretCode": code, "Session": session}))
}

/// `VerifySoftwareToken` during `MFA_SETUP`: a code from the new authenticator turns TOTP
/// MFA on for the user.
fn verify_software_token(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let session = required(body, "Session")?;
    let code = required(body, "UserCode")?;
    let pending = state.challenges.lock().remove(session);
    let Some(pending) = pending.filter(|p| p.created.elapsed() < CHALLENGE_LIFETIME) else {
        return Err(not_authorized(
            "Invalid session for the user, session is expired.",
        ));
    };
    let PendingKind::MfaSetupAssociated { secret } = &pending.kind else {
        return Err(not_authorized(
            "Invalid session for the user, session is expired.",
        ));
    };
    let secret = secret.clone();
    let now = SystemTime::now();
    let step = Duration::from_secs(30);
    let matched = [now.checked_sub(step), Some(now), now.checked_add(step)]
        .into_iter()
        .flatten()
        .find(|t| constant_time_eq(totp_code(&secret, *t).as_bytes(), code.as_bytes()));
    let Some(at) = matched else {
        state.challenges.lock().insert(session.to_owned(), pending);
        return Err(aws_error(
            "CodeMismatchException",
            "Code mismatch and fail enable Software Token MFA",
        ));
    };
    {
        let mut users = state.users.lock();
        let record = users
            .get_mut(&pending.username)
            .ok_or_else(internal_error)?;
        record.user.totp_secret = Some(secret);
    }
    // The code that set the authenticator up cannot log in as well.
    state
        .cognito
        .totp_steps
        .lock()
        .insert(pending.username.clone(), tokens::unix_secs(at) / 30);
    let session = new_session(
        state,
        PendingKind::MfaSetupVerified,
        &pending.username,
        &pending.client_id,
        pending.device_key.as_deref(),
    )?;
    Ok(json!({"Status": "SUCCESS", "Session": session}))
}

/// RFC 4648 base32 without padding, as authenticator apps take TOTP secrets.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= 0xff;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The grant of a live refresh token of `client_id`, checked against the device it is bound
/// to: without that device's key, with another, or for a device not confirmed, Cognito
/// answers "Invalid Refresh Token".
fn refreshable(
    state: &State,
    refresh: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<Grant, AwsError> {
    let invalid = || not_authorized("Invalid Refresh Token");
    let grant = tokens::redeem_refresh(state, refresh, client_id).ok_or_else(invalid)?;
    if let Grant::User {
        device_key: bound, ..
    } = &grant
    {
        if bound.as_deref() != device_key {
            return Err(invalid());
        }
        if let Some(key) = bound {
            let confirmed = state
                .cognito
                .devices
                .lock()
                .get(key)
                .is_some_and(|d| d.verifier.is_some());
            if !confirmed {
                return Err(invalid());
            }
        }
    }
    Ok(grant)
}

fn respond(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let (client_id, secret) = client(state, body)?;
    let challenge = required(body, "ChallengeName")?;
    let answers = object(body, "ChallengeResponses")?;
    let given = required(answers, "USERNAME")?;
    match challenge {
        "PASSWORD_VERIFIER" => {
            let secret_block = required(answers, "PASSWORD_CLAIM_SECRET_BLOCK")?;
            let signature = required(answers, "PASSWORD_CLAIM_SIGNATURE")?;
            let timestamp = required(answers, "TIMESTAMP")?;
            let device_key = field(answers, "DEVICE_KEY");
            if let Some(device_key) = device_key {
                // Checked before the secret block is used up: a client that learns its
                // device is gone answers again without it, with the same block.
                let owner = state
                    .challenges
                    .lock()
                    .get(secret_block)
                    .map(|p| p.username.clone());
                let exists = state
                    .cognito
                    .devices
                    .lock()
                    .get(device_key)
                    .is_some_and(|d| Some(&d.username) == owner.as_ref());
                if !exists {
                    return Err(aws_error(
                        "ResourceNotFoundException",
                        "Device does not exist.",
                    ));
                }
            }
            let pending = take(state, secret_block, client_id)?;
            let PendingKind::PasswordVerifier { key, known } = pending.kind else {
                return Err(invalid_parameter(
                    "the secret block is not for PASSWORD_VERIFIER",
                ));
            };
            let username = pending.username;
            if !known {
                return Err(wrong_password());
            }
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            // Cognito answers a malformed, wrong-weekday or stale TIMESTAMP as a wrong
            // password, even when the signature matches what was sent.
            if srp_server::check_timestamp(timestamp, SystemTime::now()).is_err() {
                return Err(wrong_password());
            }
            check_not_locked(state, &username)?;
            let expected =
                srp_server::claim(&key, &state.pool_name, &username, secret_block, timestamp)
                    .ok_or_else(|| {
                        invalid_parameter("PASSWORD_CLAIM_SECRET_BLOCK is not base64")
                    })?;
            if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                return Err(failed_login(state, &username));
            }
            state.cognito.unlock(&username);
            after_password(state, &username, client_id, device_key)
        }
        "NEW_PASSWORD_REQUIRED" => {
            let pending = take_session(state, body, client_id, PendingKind::NewPasswordRequired)?;
            let username = pending.username;
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            let new_password = field(answers, "NEW_PASSWORD").unwrap_or("");
            if new_password.is_empty() {
                return Err(aws_error(
                    "InvalidPasswordException",
                    "NEW_PASSWORD must not be empty",
                ));
            }
            {
                let mut users = state.users.lock();
                let record = users.get_mut(&username).ok_or_else(internal_error)?;
                record
                    .set_password(new_password.to_owned(), &state.pool_name)
                    .map_err(|_| internal_error())?;
                record.user.status = UserStatus::Confirmed;
            }
            mfa_or_tokens(state, &username, client_id, pending.device_key.as_deref())
        }
        "SOFTWARE_TOKEN_MFA" | "SMS_MFA" | "EMAIL_OTP" | "SMS_OTP" => {
            let (kind, code_name) = match challenge {
                "SMS_MFA" => (PendingKind::SmsMfa, "SMS_MFA_CODE"),
                "EMAIL_OTP" => (PendingKind::EmailOtp, "EMAIL_OTP_CODE"),
                "SMS_OTP" => (PendingKind::SmsOtp, "SMS_OTP_CODE"),
                _ => (PendingKind::SoftwareTokenMfa, "SOFTWARE_TOKEN_MFA_CODE"),
            };
            let session = required(body, "Session")?;
            let pending = take_session(state, body, client_id, kind)?;
            let username = pending.username.clone();
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            let code = required(answers, code_name)?;
            if !code_matches(state, &username, &pending.kind, code) {
                // A wrong code leaves the session usable for another try, as in Cognito.
                state.challenges.lock().insert(session.to_owned(), pending);
                return Err(aws_error(
                    "CodeMismatchException",
                    "Invalid code received for user",
                ));
            }
            tokens_for(state, &username, client_id, pending.device_key.as_deref())
        }
        "SELECT_MFA_TYPE" => {
            let pending = take_session(state, body, client_id, PendingKind::SelectMfaType)?;
            check_user(state, given, &pending.username)?;
            check_secret_hash(client_id, secret, answers, &[&pending.username])?;
            let kind = match required(answers, "ANSWER")? {
                "SOFTWARE_TOKEN_MFA" => PendingKind::SoftwareTokenMfa,
                "SMS_MFA" => PendingKind::SmsMfa,
                "EMAIL_OTP" => PendingKind::EmailOtp,
                other => {
                    return Err(invalid_parameter(format!("{other} is not an MFA type")));
                }
            };
            if !mfa_options(state, &pending.username)?.contains(&kind) {
                return Err(invalid_parameter("the user has no such MFA"));
            }
            code_challenge(
                state,
                kind,
                &pending.username,
                client_id,
                pending.device_key.as_deref(),
            )
        }
        "MFA_SETUP" => {
            let pending = take_session(state, body, client_id, PendingKind::MfaSetupVerified)?;
            check_user(state, given, &pending.username)?;
            check_secret_hash(client_id, secret, answers, &[&pending.username])?;
            tokens_for(
                state,
                &pending.username,
                client_id,
                pending.device_key.as_deref(),
            )
        }
        "CUSTOM_CHALLENGE" => {
            let pending = take_session(state, body, client_id, PendingKind::CustomChallenge)?;
            check_user(state, given, &pending.username)?;
            check_secret_hash(client_id, secret, answers, &[&pending.username])?;
            let sent = field(answers, "ANSWER").unwrap_or("");
            let right = state
                .cognito_settings
                .custom_challenge
                .as_ref()
                .is_some_and(|(_, answer)| constant_time_eq(answer.as_bytes(), sent.as_bytes()));
            if !right {
                return Err(wrong_password());
            }
            tokens_for(state, &pending.username, client_id, None)
        }
        "SELECT_CHALLENGE" => {
            let pending = take_session(state, body, client_id, PendingKind::SelectChallenge)?;
            check_user(state, given, &pending.username)?;
            match required(answers, "ANSWER")? {
                "PASSWORD_SRP" => srp_challenge(state, client_id, secret, answers),
                "PASSWORD" => password_login(
                    state,
                    client_id,
                    secret,
                    answers,
                    required(answers, "PASSWORD")?,
                ),
                first @ ("EMAIL_OTP" | "SMS_OTP") => {
                    check_secret_hash(client_id, secret, answers, &[&pending.username])?;
                    first_factor_otp(state, &pending.username, client_id, first)
                }
                other => Err(invalid_parameter(format!(
                    "{other} is not an available challenge"
                ))),
            }
        }
        "DEVICE_SRP_AUTH" => {
            let device_key = required(answers, "DEVICE_KEY")?;
            // Amplify sends the Session back; pycognito does not, and Cognito serves both:
            // without one, the pending device challenge is found by user and device.
            let pending = match field(body, "Session") {
                Some(_) => take_session(state, body, client_id, PendingKind::DeviceSrpAuth)?,
                None => {
                    let user = find_user(state, given);
                    take_matching(state, client_id, |p| {
                        p.kind == PendingKind::DeviceSrpAuth
                            && p.device_key.as_deref() == Some(device_key)
                            && user.as_ref() == Some(&p.username)
                    })?
                }
            };
            let username = pending.username;
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            if pending.device_key.as_deref() != Some(device_key) {
                return Err(not_authorized(
                    "DEVICE_KEY does not match the challenged device",
                ));
            }
            let client_a = math::parse_hex(required(answers, "SRP_A")?)
                .map_err(|_| invalid_parameter("SRP_A is not a hex number"))?;
            let (salt, verifier) = state
                .cognito
                .devices
                .lock()
                .get(device_key)
                .and_then(|d| d.verifier.clone())
                .ok_or_else(|| aws_error("ResourceNotFoundException", "Device does not exist."))?;
            let b = random_bytes::<72>().map_err(|_| internal_error())?;
            let exchange = srp_server::exchange(&client_a, &verifier, &b)
                .ok_or_else(|| invalid_parameter("SRP_A is not valid (0 mod N)"))?;
            let secret_block = STANDARD.encode(random_bytes::<48>().map_err(|_| internal_error())?);
            let session = new_session(
                state,
                PendingKind::DevicePasswordVerifier {
                    key: exchange.key,
                    secret_block: secret_block.clone(),
                },
                &username,
                client_id,
                Some(device_key),
            )?;
            Ok(json!({
                "ChallengeName": "DEVICE_PASSWORD_VERIFIER",
                "Session": session,
                "ChallengeParameters": {
                    "SALT": format!("{salt:x}"),
                    "SRP_B": format!("{:x}", exchange.public_b),
                    "SECRET_BLOCK": secret_block,
                    "USERNAME": username,
                    "DEVICE_KEY": device_key,
                },
            }))
        }
        "DEVICE_PASSWORD_VERIFIER" => {
            let sent_block = required(answers, "PASSWORD_CLAIM_SECRET_BLOCK")?;
            let pending = match field(body, "Session") {
                Some(session) => take(state, session, client_id)?,
                None => take_matching(
                    state,
                    client_id,
                    |p| matches!(&p.kind, PendingKind::DevicePasswordVerifier { secret_block, .. } if secret_block == sent_block),
                )?,
            };
            let PendingKind::DevicePasswordVerifier { key, secret_block } = &pending.kind else {
                return Err(not_authorized(
                    "Invalid session for the user, session is expired.",
                ));
            };
            let username = pending.username.clone();
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            let device_key = required(answers, "DEVICE_KEY")?;
            let signature = required(answers, "PASSWORD_CLAIM_SIGNATURE")?;
            let timestamp = required(answers, "TIMESTAMP")?;
            if pending.device_key.as_deref() != Some(device_key) || sent_block != secret_block {
                return Err(not_authorized("Incorrect username or password."));
            }
            if srp_server::check_timestamp(timestamp, SystemTime::now()).is_err() {
                return Err(wrong_password());
            }
            let group_key = state
                .cognito
                .devices
                .lock()
                .get(device_key)
                .map(|d| d.group_key.clone())
                .ok_or_else(|| aws_error("ResourceNotFoundException", "Device does not exist."))?;
            let expected = srp_server::claim(key, &group_key, device_key, sent_block, timestamp)
                .ok_or_else(|| invalid_parameter("PASSWORD_CLAIM_SECRET_BLOCK is not base64"))?;
            if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                return Err(wrong_password());
            }
            tokens_for(state, &username, client_id, Some(device_key))
        }
        other => Err(invalid_parameter(format!(
            "ChallengeName {other} is not supported by the local identity provider"
        ))),
    }
}

/// What follows a correct password: a status error, a challenge, or tokens.
fn after_password(
    state: &State,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<Value, AwsError> {
    let status = state.users.lock().get(username).map(|r| r.user.status);
    match status.ok_or_else(internal_error)? {
        UserStatus::Unconfirmed => Err(aws_error(
            "UserNotConfirmedException",
            "User is not confirmed.",
        )),
        UserStatus::ResetRequired => Err(aws_error(
            "PasswordResetRequiredException",
            "Password reset required for the user",
        )),
        UserStatus::ForceChangePassword => {
            let email = state
                .users
                .lock()
                .get(username)
                .and_then(|r| r.user.email.clone());
            let attributes = match email {
                Some(email) => json!({"email": email}),
                None => json!({}),
            };
            let session = new_session(
                state,
                PendingKind::NewPasswordRequired,
                username,
                client_id,
                device_key,
            )?;
            Ok(json!({
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": session,
                "ChallengeParameters": {
                    "USER_ID_FOR_SRP": username,
                    "requiredAttributes": "[]",
                    "userAttributes": attributes.to_string(),
                },
            }))
        }
        UserStatus::Confirmed => {
            let remembered = device_key.is_some_and(|key| {
                state
                    .cognito
                    .devices
                    .lock()
                    .get(key)
                    .is_some_and(|d| d.remembered && d.verifier.is_some())
            });
            if remembered {
                // A remembered device proves itself instead of answering MFA.
                let session = new_session(
                    state,
                    PendingKind::DeviceSrpAuth,
                    username,
                    client_id,
                    device_key,
                )?;
                return Ok(json!({
                    "ChallengeName": "DEVICE_SRP_AUTH",
                    "Session": session,
                    "ChallengeParameters": {},
                }));
            }
            mfa_or_tokens(state, username, client_id, device_key)
        }
    }
}

/// The MFA types the user has, in Cognito's order.
fn mfa_options(state: &State, username: &str) -> Result<Vec<PendingKind>, AwsError> {
    let users = state.users.lock();
    let user = &users.get(username).ok_or_else(internal_error)?.user;
    let mut options = Vec::new();
    if user.sms_mfa_code.is_some() {
        options.push(PendingKind::SmsMfa);
    }
    if user.totp_secret.is_some() {
        options.push(PendingKind::SoftwareTokenMfa);
    }
    if user.email_otp_code.is_some() {
        options.push(PendingKind::EmailOtp);
    }
    Ok(options)
}

/// After the first factor: `MFA_SETUP` for a user who must set MFA up, `SELECT_MFA_TYPE`
/// for one with several, the one MFA challenge, or tokens.
fn mfa_or_tokens(
    state: &State,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<Value, AwsError> {
    let setup_required = state
        .users
        .lock()
        .get(username)
        .is_some_and(|r| r.user.mfa_setup_required && r.user.totp_secret.is_none());
    if setup_required {
        let session = new_session(
            state,
            PendingKind::MfaSetup,
            username,
            client_id,
            device_key,
        )?;
        return Ok(json!({
            "ChallengeName": "MFA_SETUP",
            "Session": session,
            "ChallengeParameters": {"MFAS_CAN_SETUP": "[\"SOFTWARE_TOKEN_MFA\"]"},
        }));
    }
    let mut options = mfa_options(state, username)?;
    match options.len() {
        0 => tokens_for(state, username, client_id, device_key),
        1 => code_challenge(state, options.remove(0), username, client_id, device_key),
        _ => {
            let names: Vec<&str> = options
                .iter()
                .map(|kind| match kind {
                    PendingKind::SmsMfa => "SMS_MFA",
                    PendingKind::EmailOtp => "EMAIL_OTP",
                    _ => "SOFTWARE_TOKEN_MFA",
                })
                .collect();
            let session = new_session(
                state,
                PendingKind::SelectMfaType,
                username,
                client_id,
                device_key,
            )?;
            Ok(json!({
                "ChallengeName": "SELECT_MFA_TYPE",
                "Session": session,
                "ChallengeParameters": {
                    "MFAS_CAN_CHOOSE": serde_json::to_string(&names).unwrap_or_default(),
                    "USER_ID_FOR_SRP": username,
                },
            }))
        }
    }
}

/// Tokens after a completed login. On a pool that tracks devices, a login without a device
/// gets a new one (`NewDeviceMetadata`), and the tokens are bound to it.
fn tokens_for(
    state: &State,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<Value, AwsError> {
    let mut new_device = None;
    let device_key = match (device_key, state.cognito_settings.device_tracking) {
        (Some(key), _) => Some(key.to_owned()),
        (None, Some(_)) => {
            let region = state.pool_id.split('_').next().unwrap_or("local");
            let key = format!("{region}_{}", random_uuid().map_err(|_| internal_error())?);
            let group_key = format!("-{}", random_token::<9>().map_err(|_| internal_error())?);
            state.cognito.devices.lock().insert(
                key.clone(),
                DeviceRecord {
                    username: username.to_owned(),
                    group_key: group_key.clone(),
                    verifier: None,
                    remembered: false,
                },
            );
            new_device = Some(json!({"DeviceKey": key, "DeviceGroupKey": group_key}));
            Some(key)
        }
        (None, None) => None,
    };
    let grant = Grant::User {
        client_id: client_id.to_owned(),
        username: username.to_owned(),
        auth_time: tokens::unix_secs(SystemTime::now()),
        device_key,
    };
    let mut answer = authentication_result(state, &grant, true)?;
    if let Some(metadata) = new_device {
        answer["AuthenticationResult"]["NewDeviceMetadata"] = metadata;
    }
    Ok(answer)
}

fn authentication_result(
    state: &State,
    grant: &Grant,
    with_refresh: bool,
) -> Result<Value, AwsError> {
    let issued = tokens::issue(state, grant, with_refresh).map_err(|_| internal_error())?;
    let mut result = json!({
        "AccessToken": issued.access_token,
        "ExpiresIn": issued.expires_in,
        "TokenType": "Bearer",
    });
    if let Some(id) = issued.id_token {
        result["IdToken"] = json!(id);
    }
    if let Some(refresh) = issued.refresh_token {
        result["RefreshToken"] = json!(refresh);
    }
    Ok(json!({"AuthenticationResult": result, "ChallengeParameters": {}}))
}

/// The user an access token of this pool was issued to, if it is live.
fn access_token_user(state: &State, body: &Map<String, Value>) -> Result<String, AwsError> {
    let token = required(body, "AccessToken")?;
    tokens::check(state, token)
        .filter(|claims| claims["token_use"] == "access")
        .and_then(|claims| claims["username"].as_str().map(str::to_owned))
        .ok_or_else(|| not_authorized("Invalid Access Token"))
}

/// `ConfirmDevice`: stores the device's verifier.
fn confirm_device(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let username = access_token_user(state, body)?;
    let device_key = required(body, "DeviceKey")?;
    let config = object(body, "DeviceSecretVerifierConfig")?;
    let decode = |name: &str| -> Result<BigUint, AwsError> {
        let bytes = STANDARD
            .decode(required(config, name)?)
            .map_err(|_| invalid_parameter(format!("{name} is not base64")))?;
        Ok(BigUint::from_bytes_be(&bytes))
    };
    let (verifier, salt) = (decode("PasswordVerifier")?, decode("Salt")?);
    if verifier == BigUint::ZERO {
        return Err(invalid_parameter("PasswordVerifier must not be zero"));
    }
    let tracking = state.cognito_settings.device_tracking;
    let mut devices = state.cognito.devices.lock();
    let device = devices
        .get_mut(device_key)
        .filter(|d| d.username == username && tracking.is_some())
        .ok_or_else(|| aws_error("ResourceNotFoundException", "Device does not exist."))?;
    device.verifier = Some((salt, verifier));
    let ask_user = tracking == Some(DeviceTracking::UserOptIn);
    device.remembered = !ask_user;
    Ok(json!({"UserConfirmationNecessary": ask_user}))
}

/// `UpdateDeviceStatus`: remembered or not.
fn update_device_status(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let username = access_token_user(state, body)?;
    let device_key = required(body, "DeviceKey")?;
    let remembered = match field(body, "DeviceRememberedStatus") {
        Some("remembered") => true,
        Some("not_remembered") | None => false,
        Some(other) => {
            return Err(invalid_parameter(format!(
                "DeviceRememberedStatus {other} is not remembered or not_remembered"
            )));
        }
    };
    let mut devices = state.cognito.devices.lock();
    let device = devices
        .get_mut(device_key)
        .filter(|d| d.username == username)
        .ok_or_else(|| aws_error("ResourceNotFoundException", "Device does not exist."))?;
    device.remembered = remembered;
    Ok(json!({}))
}

/// `GetTokensFromRefreshToken`: for an app client with rotation, a new refresh token each
/// time, and the old one gone at once (a grace period of 0).
fn tokens_from_refresh_token(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let (client_id, secret) = client(state, body)?;
    check_client_secret(body, secret)?;
    let refresh = required(body, "RefreshToken")?;
    let grant = refreshable(state, refresh, client_id, field(body, "DeviceKey"))?;
    let rotating = state.cognito_settings.rotating_clients.contains(client_id);
    if rotating && !tokens::forget_refresh(state, refresh, client_id) {
        return Err(not_authorized("Invalid Refresh Token"));
    }
    authentication_result(state, &grant, rotating)
}

/// `RevokeToken`: the refresh token (and what it would renew) stops working.
fn revoke_token(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let (client_id, secret) = client(state, body)?;
    check_client_secret(body, secret)?;
    let token = required(body, "Token")?;
    if tokens::check(state, token).is_some() {
        return Err(aws_error(
            "UnsupportedTokenTypeException",
            "Only refresh tokens can be revoked",
        ));
    }
    // Cognito answers an unknown refresh token the same way: nothing to tell an attacker.
    tokens::forget_refresh(state, token, client_id);
    Ok(json!({}))
}

/// Whether `code` answers the challenge `kind` for the user. A TOTP code is good for one
/// login: a code of a time step already used (or an earlier one) is refused, as Cognito does.
fn code_matches(state: &State, username: &str, kind: &PendingKind, code: &str) -> bool {
    let users = state.users.lock();
    let Some(user) = users.get(username).map(|r| &r.user) else {
        return false;
    };
    let fixed = |expected: &Option<String>| {
        expected
            .as_deref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), code.as_bytes()))
    };
    match kind {
        PendingKind::SmsMfa | PendingKind::SmsOtp => fixed(&user.sms_mfa_code),
        PendingKind::EmailOtp => fixed(&user.email_otp_code),
        PendingKind::SoftwareTokenMfa => {
            let Some(secret) = &user.totp_secret else {
                return false;
            };
            // One step either side, for clocks a little apart and codes typed at a boundary.
            let now = SystemTime::now();
            let step = Duration::from_secs(30);
            let candidates = [now.checked_sub(step), Some(now), now.checked_add(step)];
            let matched = candidates
                .into_iter()
                .flatten()
                .find(|t| constant_time_eq(totp_code(secret, *t).as_bytes(), code.as_bytes()));
            let Some(at) = matched else {
                return false;
            };
            let step = tokens::unix_secs(at) / 30;
            let mut used = state.cognito.totp_steps.lock();
            if used.get(username).is_some_and(|last| step <= *last) {
                return false;
            }
            used.insert(username.to_owned(), step);
            true
        }
        _ => false,
    }
}

/// The answer's `USERNAME` must name the challenged user (by name or alias).
fn check_user(state: &State, given: &str, username: &str) -> Result<(), AwsError> {
    if find_user(state, given).as_deref() == Some(username) {
        Ok(())
    } else {
        Err(not_authorized(
            "USERNAME does not match the challenged user",
        ))
    }
}

fn remember(
    state: &State,
    key: String,
    kind: PendingKind,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) {
    let mut challenges = state.challenges.lock();
    challenges.retain(|_, pending| pending.created.elapsed() < CHALLENGE_LIFETIME);
    challenges.insert(
        key,
        Pending {
            kind,
            username: username.to_owned(),
            client_id: client_id.to_owned(),
            device_key: device_key.map(str::to_owned),
            created: Instant::now(),
        },
    );
}

fn new_session(
    state: &State,
    kind: PendingKind,
    username: &str,
    client_id: &str,
    device_key: Option<&str>,
) -> Result<String, AwsError> {
    let session = random_token::<64>().map_err(|_| internal_error())?;
    remember(
        state,
        session.clone(),
        kind,
        username,
        client_id,
        device_key,
    );
    Ok(session)
}

/// Removes and returns the live challenge stored under `key` for `client_id`.
fn take(state: &State, key: &str, client_id: &str) -> Result<Pending, AwsError> {
    let pending = state.challenges.lock().remove(key);
    match pending {
        Some(p) if p.client_id == client_id && p.created.elapsed() < CHALLENGE_LIFETIME => Ok(p),
        _ => Err(not_authorized(
            "Invalid session for the user, session is expired.",
        )),
    }
}

/// Removes and returns the first live challenge of `client_id` that `matches` (for answers
/// sent without their `Session`).
fn take_matching(
    state: &State,
    client_id: &str,
    matches: impl Fn(&Pending) -> bool,
) -> Result<Pending, AwsError> {
    let key = state
        .challenges
        .lock()
        .iter()
        .find(|(_, p)| p.client_id == client_id && matches(p))
        .map(|(key, _)| key.clone());
    match key {
        Some(key) => take(state, &key, client_id),
        None => Err(not_authorized(
            "Invalid session for the user, session is expired.",
        )),
    }
}

fn take_session(
    state: &State,
    body: &Map<String, Value>,
    client_id: &str,
    kind: PendingKind,
) -> Result<Pending, AwsError> {
    let session = required(body, "Session")?;
    let pending = take(state, session, client_id)?;
    if pending.kind != kind {
        return Err(not_authorized(
            "Invalid session for the user, session is expired.",
        ));
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
