//! Entry points for the `cargo fuzz` targets in `fuzz/`: **not public API**.
//!
//! Compiled only under `cfg(fuzzing)` (which `cargo fuzz` sets) and in this crate's own
//! unit tests, so that the parsers can stay `pub(crate)` for everyone else. Each function
//! feeds arbitrary bytes to a parser of what identity providers send and checks what must
//! hold for any input: no panic, and whatever is accepted is safe to use.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::Value;

use crate::http::parse_retry_after;
use crate::oauth2::callback::{self, Expected, Verdict};
use crate::oauth2::response::{MAX_LIFETIME, jwt_lifetime, parse_error, parse_token};
use crate::srp::cognito;

/// An OAuth2 token endpoint's answer (RFC 6749 §5.1 and §5.2), as a success and as an
/// error body.
pub fn token_response(data: &[u8]) {
    let default = Duration::from_secs(300);
    if let Ok(token) = parse_token(data, default, SystemTime::now()) {
        // Whatever is accepted goes into a header as is.
        assert!(!token.access_token().is_empty());
        assert!(ureq::http::HeaderValue::from_str(token.access_token()).is_ok());
        assert!(ureq::http::HeaderValue::from_str(token.token_type()).is_ok());
        assert!(
            token
                .lifetime()
                .is_none_or(|lifetime| lifetime <= MAX_LIFETIME)
        );
    }
    for status in [200, 400, 401, 500] {
        if let Some(error) = parse_error(status, data) {
            assert!(!error.error().trim().is_empty());
            let _ = error.to_string();
        }
    }
}

/// An answer of the Cognito Identity Provider API: an error, or an `AuthenticationResult`.
pub fn cognito_response(data: &[u8]) {
    let error = cognito::parse_error(400, data);
    assert!(!error.code().is_empty());
    let Ok(object) = cognito::parse_object(data) else {
        return;
    };
    // The tokens may be the object itself or nested, as InitiateAuth answers them.
    let result = match object.get("AuthenticationResult") {
        Some(Value::Object(result)) => result.clone(),
        _ => object,
    };
    for previous in [None, Some("previous-refresh")] {
        if let Ok(token) = cognito::parse_tokens(&result, previous) {
            assert!(!token.access_token().is_empty());
            assert!(
                token
                    .lifetime()
                    .is_none_or(|lifetime| lifetime <= MAX_LIFETIME)
            );
        }
    }
}

/// The `exp`/`iat` claims of a JWT access token, read to schedule renewal. `data` is the
/// claims JSON (wrapped into a token, so that the fuzzer reaches the JSON quickly) and,
/// when it is text, a whole token too.
pub fn jwt_claims(data: &[u8]) {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let wrapped = format!("eyJhbGciOiJub25lIn0.{payload}.c2ln");
    let candidates = [Some(wrapped.as_str()), std::str::from_utf8(data).ok()];
    for token in candidates.into_iter().flatten() {
        if let Some(lifetime) = jwt_lifetime(token, SystemTime::now()) {
            assert!(!lifetime.is_zero() && lifetime <= MAX_LIFETIME);
        }
    }
}

/// A `Retry-After` header value (delay-seconds or an HTTP date), read at the clock's
/// extremes: whatever the server sends, no panic, and a date never waits past the year 9999.
pub fn retry_after(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let last_day = Duration::from_secs(253_402_300_800); // 10000-01-01T00:00:00Z
    let nows = [
        SystemTime::UNIX_EPOCH,
        SystemTime::now(),
        SystemTime::UNIX_EPOCH + last_day,
    ];
    for now in nows {
        let Some(wait) = parse_retry_after(value, now) else {
            continue;
        };
        if value.trim().parse::<u64>().is_err() {
            assert!(wait <= last_day, "{value:?} waits {wait:?}");
        }
    }
}

/// The query of a request to the browser login's loopback listener, which any local
/// process or web page can send: a code comes out only for a query that carries the
/// login's own `state` once, and the issuer's `iss` when it is required.
pub fn login_callback(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    for (issuer, iss_required) in [(None, false), (Some("https://i.example"), true)] {
        let expected = Expected {
            state: "s1",
            issuer,
            iss_required,
        };
        if let Verdict::Code(code) = callback::check(&query, &expected) {
            // Judged on the decoded parameters: `state=%731` is `s1` too.
            let pairs = callback::parse(&query).unwrap_or_default();
            let values = |name: &str| -> Vec<&str> {
                pairs
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect()
            };
            assert!(!code.is_empty());
            assert_eq!(values("state"), ["s1"]);
            assert_eq!(values("code"), [code.as_str()]);
            if let Some(issuer) = issuer.filter(|_| iss_required) {
                assert_eq!(values("iss"), [issuer]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz targets' seeds, run as ordinary tests so the entry points stay honest.
    #[test]
    fn the_entry_points_accept_good_and_bad_input() {
        let inputs: [&[u8]; 11] = [
            br#"{"access_token":"abc","token_type":"bearer","expires_in":3600}"#,
            br#"{"error":"invalid_client","error_description":"no"}"#,
            br#"{"AuthenticationResult":{"AccessToken":"a","ExpiresIn":"60","IdToken":"i"}}"#,
            br#"{"__type":"com.amazonaws#NotAuthorizedException","message":"nope"}"#,
            br#"{"exp":99999999999,"iat":1}"#,
            b"Wed, 21 Oct 2015 07:28:00 GMT",
            b"Wed, 21 Oct 18446744073709551615 07:28:00 GMT",
            b"\xff\x00not json",
            b"",
            b"code=c&state=s1&iss=https%3A%2F%2Fi.example",
            b"code=c&state=s1&state=s1&%zz",
        ];
        for input in inputs {
            token_response(input);
            cognito_response(input);
            jwt_claims(input);
            retry_after(input);
            login_callback(input);
        }
    }
}
