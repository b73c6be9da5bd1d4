//! Calls to the Cognito Identity Provider JSON 1.1 API (`InitiateAuth`,
//! `RespondToAuthChallenge`) and the reading of its answers and errors. No SRP math here.

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

    /// What the error means for the caller.
    fn kind(&self) -> ErrorKind {
        match self.code.as_str() {
            "NotAuthorizedException"
            | "UserNotFoundException"
            | "UserNotConfirmedException"
            | "PasswordResetRequiredException"
            | "CodeMismatchException"
            | "ExpiredCodeException"
            | "InvalidPasswordException" => ErrorKind::CredentialsRejected,
            "TooManyRequestsException"
            | "LimitExceededException"
            | "InternalErrorException"
            | "ServiceUnavailable"
            | "ThrottlingException" => ErrorKind::Server,
            "InvalidParameterException"
            | "ResourceNotFoundException"
            | "InvalidUserPoolConfigurationException"
            | "UnknownOperationException"
            | "InvalidLambdaResponseException" => ErrorKind::Configuration,
            _ if self.status >= 500 => ErrorKind::Server,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for CognitoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {}", self.code, message),
            None => write!(f, "{} (HTTP {})", self.code, self.status),
        }
    }
}

impl std::error::Error for CognitoError {}

/// One Cognito operation: POSTs `body` with the operation's `X-Amz-Target`, retrying
/// throttling, 5xx and transport failures as the client's policy allows.
pub(crate) fn call(
    http: &HttpClient,
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Map<String, Value>, Error> {
    let target = format!("AWSCognitoIdentityProviderService.{operation}");
    let payload = body.to_string();
    log::debug!("calling Cognito {operation} at {endpoint}");
    http.with_retries(|| {
        let reply = match HttpClient::retry_transport(http.post_bytes(
            endpoint,
            &[("x-amz-target", target.as_str())],
            "application/x-amz-json-1.1",
            payload.as_bytes(),
        )) {
            Ok(reply) => reply,
            Err(attempt) => return attempt,
        };
        if reply.status == 200 {
            return Attempt::Done(parse_object(&reply.body));
        }
        let error = parse_error(reply.status, &reply.body);
        let kind = error.kind();
        let error = Error::new(kind, error);
        if kind == ErrorKind::Server {
            Attempt::Retry(error, reply.retry_after)
        } else {
            Attempt::Done(Err(error))
        }
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
    fn garbage_errors_still_give_a_typed_error() {
        let error = parse_error(502, b"<html>bad gateway</html>");
        assert_eq!(error.code(), "HTTP502");
        assert_eq!(error.kind(), ErrorKind::Server);
        assert_eq!(parse_error(400, b"").kind(), ErrorKind::Other);
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
