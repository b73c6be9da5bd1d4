//! Calls to the Cognito Identity Provider JSON 1.1 API and the reading of its answers and
//! errors. No SRP math here.
//!
//! Two kinds of call: [`call`] for operations that may be sent again (`InitiateAuth`,
//! `ConfirmDevice`…), retried on throttling, 5xx and transport failures; and [`call_once`]
//! for answers that can be used once (`RespondToAuthChallenge` with a `SECRET_BLOCK`, a
//! session or a TOTP code; `GetTokensFromRefreshToken` with a rotating refresh token),
//! resent only when the request surely never reached Cognito.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::http::{Attempt, HttpClient};
use crate::{Error, ErrorKind, Token};

/// An error answer from Cognito: HTTP status, the exception name (`__type`, such as
/// `NotAuthorizedException`) and its message. It is the
/// [`source`](std::error::Error::source) of the crate's [`Error`], reachable with
/// [`Error::downcast_ref`].
///
/// ```
/// use en_core_auth::srp::CognitoError;
///
/// let error = CognitoError::new(400, "NotAuthorizedException", Some("Incorrect username or password."));
/// assert_eq!(error.code(), "NotAuthorizedException");
/// assert_eq!(error.to_string(), "NotAuthorizedException: Incorrect username or password.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoError {
    status: u16,
    code: String,
    message: Option<String>,
}

impl CognitoError {
    /// An error with the given HTTP status, exception name and message.
    ///
    /// ```
    /// let e = en_core_auth::srp::CognitoError::new(400, "UserNotFoundException", None);
    /// assert_eq!(e.status(), 400);
    /// ```
    pub fn new(status: u16, code: impl Into<String>, message: Option<&str>) -> CognitoError {
        CognitoError {
            status,
            code: code.into(),
            message: message.map(str::to_owned),
        }
    }

    /// The HTTP status of the answer.
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::CognitoError::new(500, "InternalErrorException", None).status(), 500);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The exception name, without its namespace (`NotAuthorizedException`).
    ///
    /// ```
    /// let e = en_core_auth::srp::CognitoError::new(400, "TooManyRequestsException", None);
    /// assert_eq!(e.code(), "TooManyRequestsException");
    /// ```
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The server's message, if it sent one.
    ///
    /// ```
    /// let e = en_core_auth::srp::CognitoError::new(400, "X", Some("why"));
    /// assert_eq!(e.message(), Some("why"));
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Whether Cognito refused the login because of too many wrong passwords ("Password
    /// attempts exceeded"): waiting is the only cure, and another attempt makes it longer.
    ///
    /// ```
    /// use en_core_auth::srp::CognitoError;
    /// let locked = CognitoError::new(400, "NotAuthorizedException", Some("Password attempts exceeded"));
    /// assert!(locked.is_locked_out());
    /// assert!(locked.to_string().contains("wait"));
    /// ```
    pub fn is_locked_out(&self) -> bool {
        self.code == "NotAuthorizedException"
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.contains("attempts exceeded"))
    }

    /// What the user can do about it, for the errors where Cognito's own message does not
    /// say (it is part of [`Display`](fmt::Display)).
    ///
    /// ```
    /// use en_core_auth::srp::CognitoError;
    /// let e = CognitoError::new(400, "PasswordResetRequiredException", Some("Password reset required for the user"));
    /// assert!(e.advice().unwrap().contains("reset"));
    /// ```
    pub fn advice(&self) -> Option<&'static str> {
        Some(match self.code.as_str() {
            _ if self.is_locked_out() => {
                "too many wrong passwords: Cognito has locked the account for a while; wait \
                 before trying again (each attempt meanwhile makes the wait longer)"
            }
            "NotAuthorizedException" => return None,
            "PasswordResetRequiredException" => {
                "an administrator asked for a password reset: set a new password with the \
                 pool's forgot-password flow (ForgotPassword, then ConfirmForgotPassword), then \
                 log in with it"
            }
            "UserNotConfirmedException" => {
                "the user has not confirmed the sign-up: confirm it with the code Cognito sent \
                 (ConfirmSignUp), or have an administrator confirm the user"
            }
            "UserNotFoundException" => {
                "no such user in this pool: check the username and the user pool id"
            }
            "LimitExceededException" => {
                "an account-wide Cognito limit was reached; not retried: try again later, or \
                 ask for a higher quota"
            }
            "ForbiddenException" => {
                "the request was blocked by the AWS WAF web ACL associated with the user pool, \
                 not by Cognito's password check"
            }
            "UserLambdaValidationException" => {
                "a Lambda trigger of the user pool (pre-authentication, user migration…) \
                 refused the login; its message says why"
            }
            "TooManyRequestsException" | "ThrottlingException" => {
                "Cognito is throttling requests for this pool or account"
            }
            _ => return None,
        })
    }

    /// Whether sending the same request again may succeed: throttling and server faults, not
    /// `LimitExceededException` (an account quota that retrying only burns) or a WAF block.
    /// Without an exception name, the status decides as it does for OAuth2 (408, 429, 5xx).
    fn retryable(&self) -> bool {
        match self.code.as_str() {
            "TooManyRequestsException"
            | "ThrottlingException"
            | "InternalErrorException"
            | "ServiceUnavailable" => true,
            "LimitExceededException" | "ForbiddenException" => false,
            _ => crate::http::is_transient_status(self.status),
        }
    }

    /// Whether the answer named no exception (`__type`): its code is then `HTTP<status>`.
    fn is_bare(&self) -> bool {
        self.code == format!("HTTP{}", self.status)
    }

    /// Whether Cognito surely did not act on the request: throttling refuses it at the door.
    fn surely_not_acted_on(&self) -> bool {
        matches!(
            self.code.as_str(),
            "TooManyRequestsException" | "ThrottlingException"
        )
    }

    /// What the error means for the caller.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self.code.as_str() {
            "NotAuthorizedException"
            | "UserNotFoundException"
            | "UserNotConfirmedException"
            | "PasswordResetRequiredException"
            | "CodeMismatchException"
            | "ExpiredCodeException"
            | "InvalidPasswordException"
            | "UserLambdaValidationException" => ErrorKind::CredentialsRejected,
            "TooManyRequestsException"
            | "LimitExceededException"
            | "InternalErrorException"
            | "ServiceUnavailable"
            | "ThrottlingException"
            | "ForbiddenException" => ErrorKind::Server,
            "InvalidParameterException"
            | "ResourceNotFoundException"
            | "InvalidUserPoolConfigurationException"
            | "UnknownOperationException"
            | "InvalidLambdaResponseException" => ErrorKind::Configuration,
            // No exception named (a gateway's page, a proxy's refusal): the status means
            // what it means for OAuth2.
            _ if self.is_bare() => crate::http::status_kind(self.status),
            _ if self.status >= 500 => ErrorKind::Server,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for CognitoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {}", self.code, message)?,
            None => write!(f, "{} (HTTP {})", self.code, self.status)?,
        }
        match self.advice() {
            Some(advice) => write!(f, " ({advice})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CognitoError {}

/// One Cognito operation that may be sent again: POSTs `body` with the operation's
/// `X-Amz-Target`, retrying throttling, 5xx and transport failures as the client's policy
/// allows.
pub(crate) fn call(
    http: &HttpClient,
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Map<String, Value>, Error> {
    send(http, endpoint, operation, body, false)
}

/// One Cognito operation whose request can be used once. It is sent again only when it
/// surely never reached Cognito (connection refused, no such host, a connect timeout) or was
/// turned away by throttling; after a timeout, a lost answer or a 5xx it may have been acted
/// on, and the error (kind [`Transport`](ErrorKind::Transport) or
/// [`Server`](ErrorKind::Server)) goes back to the caller, who must not resend it.
pub(crate) fn call_once(
    http: &HttpClient,
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Map<String, Value>, Error> {
    send(http, endpoint, operation, body, true)
}

fn send(
    http: &HttpClient,
    endpoint: &str,
    operation: &str,
    body: &Value,
    single_use: bool,
) -> Result<Map<String, Value>, Error> {
    let target = format!("AWSCognitoIdentityProviderService.{operation}");
    let payload = body.to_string();
    log::debug!("calling Cognito {operation} at {endpoint}");
    http.with_retries(|| {
        let sent = http.post_bytes(
            endpoint,
            &[("x-amz-target", target.as_str())],
            "application/x-amz-json-1.1",
            payload.as_bytes(),
        );
        let reply = match sent {
            Ok(reply) => reply,
            Err(error) if single_use && !never_sent(&error) => return Attempt::Done(Err(error)),
            Err(error) => match HttpClient::retry_transport::<_, Map<String, Value>>(Err(error)) {
                Ok(reply) => reply,
                Err(attempt) => return attempt,
            },
        };
        if reply.status == 200 {
            return Attempt::Done(parse_answer(&reply).map_err(|error| reply.error_at(error)));
        }
        let mut error = parse_error(reply.status, &reply.body);
        if error.is_bare() {
            error.message = Some(format!("Cognito answered with {}", reply.describe_body()));
        }
        let retry = if single_use {
            error.surely_not_acted_on()
        } else {
            error.retryable()
        };
        let wrapped = reply.error_at(Error::new(error.kind(), error));
        if retry {
            Attempt::Retry(wrapped, reply.retry_after)
        } else {
            Attempt::Done(Err(wrapped))
        }
    })
}

/// Whether a transport failure happened before any byte of the request left: the address
/// refused the connection, the name did not resolve, or connecting timed out.
fn never_sent(error: &Error) -> bool {
    match error.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Io(io)) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        Some(ureq::Error::HostNotFound) => true,
        Some(ureq::Error::Timeout(timeout)) => {
            matches!(timeout, ureq::Timeout::Connect | ureq::Timeout::Resolve)
        }
        _ => false,
    }
}

/// The JSON object of a 200 reply; a body that is not JSON is described (content type,
/// and the start of an HTML page), as a captive portal's or a login page's would be.
fn parse_answer(reply: &crate::http::Reply) -> Result<Map<String, Value>, Error> {
    parse_object(&reply.body).map_err(|error| {
        if serde_json::from_slice::<serde::de::IgnoredAny>(&reply.body).is_ok() {
            return error;
        }
        malformed(&format!(
            "Cognito answered with {} where JSON was expected",
            reply.describe_body()
        ))
    })
}

/// A JSON object, or a [`MalformedResponse`](ErrorKind::MalformedResponse) error.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(malformed("the answer is not a JSON object")),
        Err(_) => Err(malformed("the answer is not JSON")),
    }
}

/// Reads an AWS error answer. `__type` may carry a namespace
/// (`com.amazonaws.cognito#NotAuthorizedException`); the message key is `message` or
/// `Message`.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> CognitoError {
    let object = parse_object(body).unwrap_or_default();
    let code = object
        .get("__type")
        .and_then(Value::as_str)
        .map(|code| code.rsplit('#').next().unwrap_or(code))
        .filter(|code| !code.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = object
        .get("message")
        .or_else(|| object.get("Message"))
        .and_then(Value::as_str);
    CognitoError::new(status, code, message)
}

/// The tokens of an `AuthenticationResult`. `previous_refresh` is kept when the answer
/// carries none (a refresh does not return a new refresh token).
pub(crate) fn parse_tokens(
    result: &Map<String, Value>,
    previous_refresh: Option<&str>,
) -> Result<Token, Error> {
    let access = result
        .get("AccessToken")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| malformed("AuthenticationResult has no AccessToken"))?;
    let mut token = Token::new(access);
    if let Some(token_type) = result.get("TokenType").and_then(Value::as_str) {
        token = token.with_token_type(token_type);
    }
    if let Some(id_token) = result.get("IdToken").and_then(Value::as_str) {
        token = token.with_id_token(id_token);
    }
    let refresh = result
        .get("RefreshToken")
        .and_then(Value::as_str)
        .or(previous_refresh);
    if let Some(refresh) = refresh {
        token = token.with_refresh_token(refresh);
    }
    match result.get("ExpiresIn") {
        None | Some(Value::Null) => {}
        Some(value) => token = token.with_expires_in(expires_in(value)?),
    }
    Ok(token)
}

/// `ExpiresIn` in seconds: a number or a numeric string, at most ten years.
fn expires_in(value: &Value) -> Result<Duration, Error> {
    let seconds = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match seconds {
        Some(seconds) if seconds <= 10 * 365 * 24 * 3600 => Ok(Duration::from_secs(seconds)),
        _ => Err(malformed("ExpiresIn is not a sensible number of seconds")),
    }
}

/// A string value of a challenge's parameters.
pub(crate) fn parameter<'a>(
    parameters: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, Error> {
    parameters
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(&format!("the challenge has no {name}")))
}

pub(crate) fn malformed(what: &str) -> Error {
    Error::new(ErrorKind::MalformedResponse, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_with_or_without_a_namespace() {
        let error = parse_error(
            400,
            br#"{"__type":"com.amazonaws.cognito#NotAuthorizedException","message":"Incorrect username or password."}"#,
        );
        assert_eq!(error.code(), "NotAuthorizedException");
        assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
        let throttled = parse_error(
            400,
            br#"{"__type":"TooManyRequestsException","Message":"slow down"}"#,
        );
        assert_eq!(throttled.kind(), ErrorKind::Server);
        assert_eq!(throttled.message(), Some("slow down"));
    }

    #[test]
    fn errors_users_can_act_on_are_told_apart() {
        let limit = parse_error(400, br#"{"__type":"LimitExceededException","message":"Attempt limit exceeded, please try after some time."}"#);
        assert_eq!(limit.kind(), ErrorKind::Server);
        assert!(!limit.retryable(), "an account quota is not retried");
        assert!(limit.to_string().contains("not retried"));
        let waf = parse_error(
            403,
            br#"{"__type":"ForbiddenException","message":"Request not allowed due to WAF block."}"#,
        );
        assert_ne!(waf.kind(), ErrorKind::Other);
        assert!(!waf.retryable());
        assert!(waf.to_string().contains("WAF web ACL"), "{waf}");
        let lambda = parse_error(400, br#"{"__type":"UserLambdaValidationException","message":"PreAuthentication failed with error no access."}"#);
        assert_eq!(lambda.kind(), ErrorKind::CredentialsRejected);
        assert!(lambda.to_string().contains("Lambda trigger"), "{lambda}");
        let plain = parse_error(
            400,
            br#"{"__type":"NotAuthorizedException","message":"Incorrect username or password."}"#,
        );
        assert_eq!(
            plain.to_string(),
            "NotAuthorizedException: Incorrect username or password."
        );
        assert!(!plain.is_locked_out());
        for code in ["TooManyRequestsException", "InternalErrorException"] {
            assert!(CognitoError::new(400, code, None).retryable(), "{code}");
        }
        assert!(CognitoError::new(400, "TooManyRequestsException", None).surely_not_acted_on());
        assert!(!CognitoError::new(500, "InternalErrorException", None).surely_not_acted_on());
    }

    #[test]
    fn only_failures_before_sending_count_as_never_sent() {
        let transport = |e: ureq::Error| Error::new(ErrorKind::Transport, e);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(never_sent(&transport(ureq::Error::Io(refused))));
        assert!(never_sent(&transport(ureq::Error::HostNotFound)));
        assert!(never_sent(&transport(ureq::Error::Timeout(
            ureq::Timeout::Connect
        ))));
        for after in [
            ureq::Error::Timeout(ureq::Timeout::Global),
            ureq::Error::Timeout(ureq::Timeout::RecvResponse),
            ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            assert!(!never_sent(&transport(after)));
        }
    }

    #[test]
    fn garbage_errors_still_give_a_typed_error() {
        let error = parse_error(502, b"<html>bad gateway</html>");
        assert_eq!(error.code(), "HTTP502");
        assert_eq!(error.kind(), ErrorKind::Server);
        assert_eq!(parse_error(400, b"").kind(), ErrorKind::Configuration);
        assert_eq!(parse_error(401, b"").kind(), ErrorKind::CredentialsRejected);
        assert_eq!(
            parse_error(400, br#"{"__type":"SomethingNewException"}"#).kind(),
            ErrorKind::Other
        );
    }

    #[test]
    fn tokens_are_read_and_the_refresh_token_kept() {
        let result = parse_object(
            br#"{"AccessToken":"a","IdToken":"i","ExpiresIn":3600,"TokenType":"Bearer"}"#,
        )
        .unwrap();
        let token = parse_tokens(&result, Some("r")).unwrap();
        assert_eq!(token.access_token(), "a");
        assert_eq!(token.id_token(), Some("i"));
        assert_eq!(token.refresh_token(), Some("r"));
        assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_token_answers_are_malformed() {
        for body in [
            &br#"{"IdToken":"i"}"#[..],
            br#"{"AccessToken":""}"#,
            br#"{"AccessToken":"a","ExpiresIn":-1}"#,
            br#"{"AccessToken":"a","ExpiresIn":"soon"}"#,
            br#"{"AccessToken":"a","ExpiresIn":1e30}"#,
        ] {
            let result = parse_object(body).unwrap();
            assert_eq!(
                parse_tokens(&result, None).unwrap_err().kind(),
                ErrorKind::MalformedResponse,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{").is_err());
    }

    #[test]
    fn expires_in_may_be_a_string() {
        let result = parse_object(br#"{"AccessToken":"a","ExpiresIn":"60"}"#).unwrap();
        assert_eq!(
            parse_tokens(&result, None).unwrap().lifetime(),
            Some(Duration::from_secs(60))
        );
    }
}
