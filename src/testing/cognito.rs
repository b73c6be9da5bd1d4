//! The Cognito Identity Provider JSON 1.1 API: `InitiateAuth` and `RespondToAuthChallenge`,
//! with the server side of Cognito's SRP, `SECRET_HASH` checks, the challenges
//! `PASSWORD_VERIFIER`, `NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA` and `SMS_MFA`, and errors
//! shaped as AWS sends them (HTTP 400, `{"__type": …, "message": …}`).
//!
//! Pending challenges live in [`Challenges`], keyed by the `SECRET_BLOCK` for
//! `PASSWORD_VERIFIER` (Cognito sends no `Session` with that challenge; clients don't send
//! one back) and by the `Session` string for the others. Each is good for one answer within
//! three minutes, as in Cognito.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;
use serde_json::{Map, Value, json};

use super::faults::{Fault, Operation, retry_after_header};
use super::server::{Request, Response};
use super::tokens::{self, Grant};
use super::{State, UserStatus, random_bytes, random_token, totp_code};
use crate::srp::math::{self, SrpServer};

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// How long a challenge waits for its answer (Cognito's default session validity).
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(180);

/// Pending challenges, by `SECRET_BLOCK` or `Session`.
pub(crate) type Challenges = HashMap<String, Pending>;

pub(crate) struct Pending {
    kind: PendingKind,
    /// The real user name (never the alias the user typed).
    username: String,
    client_id: String,
    created: Instant,
}

#[derive(PartialEq, Eq)]
enum PendingKind {
    PasswordVerifier { key: [u8; 16] },
    NewPasswordRequired,
    SoftwareTokenMfa,
    SmsMfa,
}

/// The SRP verifier the pool stores for a password.
pub(crate) fn verifier(salt: &BigUint, pool_name: &str, username: &str, password: &str) -> BigUint {
    math::verifier(salt, pool_name, username, password)
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
        Fault::Delay(_) | Fault::DropConnection => internal_error().into_response(),
    }
}

/// `POST /` with an `X-Amz-Target`.
pub(crate) fn handle(state: &State, op: Operation, request: &Request) -> Response {
    let result = match op {
        Operation::InitiateAuth => parse_body(request).and_then(|body| initiate(state, &body)),
        Operation::RespondToAuthChallenge => {
            parse_body(request).and_then(|body| respond(state, &body))
        }
        _ => Err(aws_error(
            "UnknownOperationException",
            format!(
                "unknown or unsupported X-Amz-Target {:?}",
                request.header("x-amz-target").unwrap_or("")
            ),
        )),
    };
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
            math::secret_hash(secret, name, client_id).as_bytes(),
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
/// either what was sent or the real name.
fn identify(
    state: &State,
    client_id: &str,
    secret: Option<&str>,
    params: &Map<String, Value>,
) -> Result<String, AwsError> {
    let given = required(params, "USERNAME")?;
    let username = find_user(state, given);
    let mut names = vec![given];
    names.extend(username.as_deref());
    check_secret_hash(client_id, secret, params, &names)?;
    username.ok_or_else(|| aws_error("UserNotFoundException", "User does not exist."))
}

fn initiate(state: &State, body: &Map<String, Value>) -> Result<Value, AwsError> {
    let (client_id, secret) = client(state, body)?;
    let flow = required(body, "AuthFlow")?;
    let params = object(body, "AuthParameters")?;
    match flow {
        "USER_SRP_AUTH" => {
            let srp_a = required(params, "SRP_A")?;
            let username = identify(state, client_id, secret, params)?;
            let client_a = math::parse_hex(srp_a)
                .map_err(|_| invalid_parameter("SRP_A is not a hex number"))?;
            let (salt, verifier) = {
                let users = state.users.lock();
                let record = users.get(&username).ok_or_else(internal_error)?;
                (record.salt.clone(), record.verifier.clone())
            };
            let server = SrpServer::generate(&verifier).map_err(|_| internal_error())?;
            // The key depends only on A, b and the verifier: derive it now, so a bad A
            // (0 mod N) is refused here, as the SRP-6a server must.
            let key = server
                .password_authentication_key(&client_a, &verifier)
                .map_err(|_| invalid_parameter("SRP_A is not valid (0 mod N)"))?;
            let secret_block = STANDARD.encode(random_bytes::<48>().map_err(|_| internal_error())?);
            remember(
                state,
                secret_block.clone(),
                PendingKind::PasswordVerifier { key },
                &username,
                client_id,
            );
            Ok(json!({
                "ChallengeName": "PASSWORD_VERIFIER",
                "ChallengeParameters": {
                    "SALT": format!("{salt:x}"),
                    "SRP_B": format!("{:x}", server.public_b()),
                    "SECRET_BLOCK": secret_block,
                    "USERNAME": username,
                    "USER_ID_FOR_SRP": username,
                },
            }))
        }
        "USER_PASSWORD_AUTH" => {
            let password = required(params, "PASSWORD")?;
            let username = identify(state, client_id, secret, params)?;
            let right = state.users.lock().get(&username).is_some_and(|record| {
                constant_time_eq(record.user.password.as_bytes(), password.as_bytes())
            });
            if !right {
                return Err(not_authorized("Incorrect username or password."));
            }
            after_password(state, &username, client_id)
        }
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
            let refresh = required(params, "REFRESH_TOKEN")?;
            let Some(Grant::User { username, .. }) =
                tokens::redeem_refresh(state, refresh, client_id)
            else {
                return Err(not_authorized("Invalid Refresh Token"));
            };
            let sub = state.users.lock().get(&username).map(|r| r.sub.clone());
            let Some(sub) = sub else {
                return Err(not_authorized("Invalid Refresh Token"));
            };
            // The hash is over the real user name (or the `sub`), never an alias.
            check_secret_hash(client_id, secret, params, &[&username, &sub])?;
            let grant = Grant::User {
                client_id: client_id.to_owned(),
                username,
            };
            authentication_result(state, &grant, false)
        }
        other => Err(invalid_parameter(format!(
            "AuthFlow {other} is not supported by the local identity provider"
        ))),
    }
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
            let pending = take(state, secret_block, client_id)?;
            let PendingKind::PasswordVerifier { key } = pending.kind else {
                return Err(invalid_parameter(
                    "the secret block is not for PASSWORD_VERIFIER",
                ));
            };
            let username = pending.username;
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            if !valid_timestamp(timestamp) {
                return Err(invalid_parameter(
                    "TIMESTAMP is not like \"Tue Dec 3 09:05:07 UTC 2026\"",
                ));
            }
            let expected = math::password_claim_signature(
                &key,
                &state.pool_name,
                &username,
                secret_block,
                timestamp,
            )
            .map_err(|_| invalid_parameter("PASSWORD_CLAIM_SECRET_BLOCK is not base64"))?;
            if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                return Err(not_authorized("Incorrect username or password."));
            }
            after_password(state, &username, client_id)
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
            mfa_or_tokens(state, &username, client_id)
        }
        "SOFTWARE_TOKEN_MFA" | "SMS_MFA" => {
            let (kind, code_name) = if challenge == "SMS_MFA" {
                (PendingKind::SmsMfa, "SMS_MFA_CODE")
            } else {
                (PendingKind::SoftwareTokenMfa, "SOFTWARE_TOKEN_MFA_CODE")
            };
            let session = required(body, "Session")?;
            let pending = take_session(state, body, client_id, kind)?;
            let username = pending.username.clone();
            check_user(state, given, &username)?;
            check_secret_hash(client_id, secret, answers, &[&username])?;
            let code = required(answers, code_name)?;
            if !mfa_code_matches(state, &username, code) {
                // A wrong code leaves the session usable for another try, as in Cognito.
                state.challenges.lock().insert(session.to_owned(), pending);
                return Err(aws_error(
                    "CodeMismatchException",
                    "Invalid code received for user",
                ));
            }
            authentication_result(
                state,
                &Grant::User {
                    client_id: client_id.to_owned(),
                    username,
                },
                true,
            )
        }
        other => Err(invalid_parameter(format!(
            "ChallengeName {other} is not supported by the local identity provider"
        ))),
    }
}

/// What follows a correct password: a status error, a challenge, or tokens.
fn after_password(state: &State, username: &str, client_id: &str) -> Result<Value, AwsError> {
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
            let session =
                new_session(state, PendingKind::NewPasswordRequired, username, client_id)?;
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
        UserStatus::Confirmed => mfa_or_tokens(state, username, client_id),
    }
}

fn mfa_or_tokens(state: &State, username: &str, client_id: &str) -> Result<Value, AwsError> {
    let (totp, sms) = {
        let users = state.users.lock();
        let user = &users.get(username).ok_or_else(internal_error)?.user;
        (user.totp_secret.is_some(), user.sms_mfa_code.is_some())
    };
    if totp {
        let session = new_session(state, PendingKind::SoftwareTokenMfa, username, client_id)?;
        return Ok(json!({
            "ChallengeName": "SOFTWARE_TOKEN_MFA",
            "Session": session,
            "ChallengeParameters": {"USER_ID_FOR_SRP": username},
        }));
    }
    if sms {
        let session = new_session(state, PendingKind::SmsMfa, username, client_id)?;
        return Ok(json!({
            "ChallengeName": "SMS_MFA",
            "Session": session,
            "ChallengeParameters": {
                "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
                "CODE_DELIVERY_DESTINATION": "+*******0000",
                "USER_ID_FOR_SRP": username,
            },
        }));
    }
    authentication_result(
        state,
        &Grant::User {
            client_id: client_id.to_owned(),
            username: username.to_owned(),
        },
        true,
    )
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

fn mfa_code_matches(state: &State, username: &str, code: &str) -> bool {
    let users = state.users.lock();
    let Some(user) = users.get(username).map(|r| &r.user) else {
        return false;
    };
    if let Some(secret) = &user.totp_secret {
        // One step either side, for clocks a little apart and codes typed at a boundary.
        let now = SystemTime::now();
        let step = Duration::from_secs(30);
        let candidates = [now.checked_sub(step), Some(now), now.checked_add(step)];
        return candidates
            .into_iter()
            .flatten()
            .any(|t| constant_time_eq(totp_code(secret, t).as_bytes(), code.as_bytes()));
    }
    user.sms_mfa_code
        .as_deref()
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), code.as_bytes()))
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

fn remember(state: &State, key: String, kind: PendingKind, username: &str, client_id: &str) {
    let mut challenges = state.challenges.lock();
    challenges.retain(|_, pending| pending.created.elapsed() < CHALLENGE_LIFETIME);
    challenges.insert(
        key,
        Pending {
            kind,
            username: username.to_owned(),
            client_id: client_id.to_owned(),
            created: Instant::now(),
        },
    );
}

fn new_session(
    state: &State,
    kind: PendingKind,
    username: &str,
    client_id: &str,
) -> Result<String, AwsError> {
    let session = random_token::<64>().map_err(|_| internal_error())?;
    remember(state, session.clone(), kind, username, client_id);
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

/// Whether `timestamp` has the shape Cognito accepts: `Tue Dec 3 09:05:07 UTC 2026` (day of
/// month not zero-padded).
fn valid_timestamp(timestamp: &str) -> bool {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = timestamp.split(' ').collect();
    let [weekday, month, day, time, zone, year] = parts[..] else {
        return false;
    };
    let number_in = |s: &str, digits: std::ops::RangeInclusive<usize>, max: u32| {
        digits.contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let time_ok = {
        let fields: Vec<&str> = time.split(':').collect();
        matches!(fields[..], [h, m, s] if number_in(h, 2..=2, 23) && number_in(m, 2..=2, 59) && number_in(s, 2..=2, 60))
    };
    WEEKDAYS.contains(&weekday)
        && MONTHS.contains(&month)
        && number_in(day, 1..=2, 31)
        && !day.starts_with('0')
        && time_ok
        && zone == "UTC"
        && number_in(year, 4..=4, 9999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_must_have_cognitos_shape() {
        assert!(valid_timestamp("Tue Dec 3 09:05:07 UTC 2026"));
        assert!(valid_timestamp("Sat Nov 28 16:05:07 UTC 2026"));
        assert!(valid_timestamp(&math::cognito_timestamp(SystemTime::now())));
        assert!(!valid_timestamp("Tue Dec 03 09:05:07 UTC 2026"));
        assert!(!valid_timestamp("Tue Dec 3 9:05:07 UTC 2026"));
        assert!(!valid_timestamp("Tue Dec 3 09:05:07 GMT 2026"));
        assert!(!valid_timestamp("Tue Dec  3 09:05:07 UTC 2026"));
        assert!(!valid_timestamp(""));
        assert!(!valid_timestamp("2026-12-03T09:05:07Z"));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
