//! The endpoints of a person's login, with test hooks in place of pages: the authorization
//! endpoint (RFC 6749 §4.1, PKCE required) approves the user a test named with
//! [`LocalIdp::login_as`](super::LocalIdp::login_as); the device authorization endpoint (RFC
//! 8628) hands out codes a test approves or denies; the revocation endpoint (RFC 7009).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::oauth::{JSON, Param, authenticated_form, oauth_error, parse_form};
use super::server::{Request, Response};
use super::tokens::Grant;
use super::{State, random_bytes, random_token};

pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Authorization codes live one minute (RFC 6749 §4.1.2 recommends at most ten).
const CODE_TTL: Duration = Duration::from_secs(60);
/// User codes: consonants only, so that no word is spelled (RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// The logins in progress, and how the test wants them answered.
pub(crate) struct Logins {
    /// Who the authorization endpoint logs in; `None` denies (`access_denied`).
    login_as: Option<String>,
    codes: HashMap<String, PendingCode>,
    devices: HashMap<String, Device>,
    /// How many device polls to answer `slow_down` before anything else.
    slow_downs: usize,
    device_interval: Duration,
    device_ttl: Duration,
}

impl Default for Logins {
    fn default() -> Logins {
        Logins {
            login_as: None,
            codes: HashMap::new(),
            devices: HashMap::new(),
            slow_downs: 0,
            device_interval: Duration::from_secs(5),
            device_ttl: Duration::from_secs(600),
        }
    }
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    username: String,
    scope: Option<String>,
    nonce: Option<String>,
    expires: Instant,
}

struct Device {
    client_id: String,
    user_code: String,
    scope: Option<String>,
    status: DeviceStatus,
    expires: Instant,
}

#[derive(Clone, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved(String),
    Denied,
}

impl Logins {
    pub(crate) fn login_as(&mut self, username: Option<String>) {
        self.login_as = username;
    }

    pub(crate) fn slow_down(&mut self, polls: usize) {
        self.slow_downs = polls;
    }

    pub(crate) fn set_device_timing(&mut self, interval: Duration, ttl: Duration) {
        self.device_interval = interval;
        self.device_ttl = ttl;
    }

    /// Approves (`Some(user)`) or denies the device login showing `user_code`; false if
    /// no pending login shows it.
    pub(crate) fn decide(&mut self, user_code: &str, username: Option<String>) -> bool {
        let device = self
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code && d.status == DeviceStatus::Pending);
        match device {
            Some(device) => {
                device.status = match username {
                    Some(name) => DeviceStatus::Approved(name),
                    None => DeviceStatus::Denied,
                };
                true
            }
            None => false,
        }
    }

    pub(crate) fn expire_device_codes(&mut self) {
        let now = Instant::now();
        for device in self.devices.values_mut() {
            device.expires = now;
        }
    }
}

/// Whether a redirect URI is a native app's loopback one (RFC 8252 §7.3), the only kind
/// this server redirects to: any port, any path.
fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost") || host == "[::1]"
}

fn query_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn redirect(redirect_uri: &str, parameters: &[(&str, &str)]) -> Response {
    let query: Vec<String> = parameters
        .iter()
        .map(|(name, value)| format!("{name}={}", query_encode(value)))
        .collect();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Response {
        status: 302,
        headers: vec![(
            "Location".to_owned(),
            format!("{redirect_uri}{separator}{}", query.join("&")),
        )],
        body: Vec::new(),
    }
    .with_header("Cache-Control", "no-store")
}

fn page(status: u16, text: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: text.as_bytes().to_vec(),
    }
}

/// `GET /oauth2/authorize`: no page; the user set with `login_as` approves at once.
pub(crate) fn authorize(state: &State, request: &Request) -> Response {
    let Some(query) = parse_form(request.query.as_bytes()) else {
        return page(400, "the query is not valid");
    };
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    // Without a known client and a loopback redirect URI there is nowhere safe to send an
    // error (RFC 6749 §4.1.2.1): a page says it.
    let Some(client_id) = get("client_id").filter(|id| state.clients.contains_key(*id)) else {
        return page(400, "unknown client_id");
    };
    let Some(redirect_uri) = get("redirect_uri").filter(|uri| is_loopback_redirect(uri)) else {
        return page(400, "redirect_uri must be http on a loopback address");
    };
    let state_param = get("state").unwrap_or("");
    let iss = state.issuer.as_str();
    let error = |code: &str| {
        let mut parameters = vec![("error", code)];
        if !state_param.is_empty() {
            parameters.push(("state", state_param));
        }
        parameters.push(("iss", iss));
        redirect(redirect_uri, &parameters)
    };
    if get("response_type") != Some("code") {
        return error("unsupported_response_type");
    }
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (Some(challenge), Some("S256")) if challenge.len() == 43 => challenge,
        _ => return error("invalid_request"),
    };
    let mut logins = state.logins.lock();
    let Some(username) = logins.login_as.clone() else {
        return error("access_denied");
    };
    let Ok(code) = random_token::<32>() else {
        return error("server_error");
    };
    let now = Instant::now();
    logins.codes.retain(|_, pending| pending.expires > now);
    logins.codes.insert(
        code.clone(),
        PendingCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            username,
            scope: get("scope").map(str::to_owned),
            nonce: get("nonce").map(str::to_owned),
            expires: now + CODE_TTL,
        },
    );
    let mut parameters = vec![("code", code.as_str())];
    if !state_param.is_empty() {
        parameters.push(("state", state_param));
    }
    parameters.push(("iss", iss));
    redirect(redirect_uri, &parameters)
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(400, "invalid_grant", description)
}

/// The `authorization_code` grant: single use, same client and redirect URI, PKCE S256.
pub(crate) fn redeem_code(
    state: &State,
    client_id: &str,
    param: &Param<'_>,
) -> Result<Grant, Response> {
    let code = param("code")?.ok_or_else(|| invalid_grant("code is missing"))?;
    // Removed first: a code is used once, whatever the outcome (RFC 6749 §4.1.2).
    let pending = state
        .logins
        .lock()
        .codes
        .remove(code)
        .ok_or_else(|| invalid_grant("unknown or used code"))?;
    if pending.expires <= Instant::now() || pending.client_id != client_id {
        return Err(invalid_grant("the code expired or is another client's"));
    }
    if param("redirect_uri")? != Some(pending.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = param("code_verifier")?.ok_or_else(|| invalid_grant("no code_verifier"))?;
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.challenge {
        return Err(invalid_grant(
            "the code_verifier does not match the challenge",
        ));
    }
    Ok(Grant::Login {
        client_id: client_id.to_owned(),
        username: pending.username,
        scope: pending.scope,
        nonce: pending.nonce,
    })
}

/// `POST /oauth2/device_authorization`.
pub(crate) fn device_authorization(state: &State, request: &Request) -> Response {
    let (client_id, form) = match authenticated_form(state, request) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Ok(device_code), Ok(letters)) = (random_token::<32>(), random_bytes::<8>()) else {
        return oauth_error(500, "server_error", "no randomness");
    };
    let letters: String = letters
        .iter()
        .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()]))
        .collect();
    let user_code = format!("{}-{}", &letters[..4], &letters[4..]);
    let scope = form
        .iter()
        .find(|(n, _)| n == "scope")
        .map(|(_, v)| v.clone());
    let mut logins = state.logins.lock();
    let now = Instant::now();
    logins.devices.retain(|_, device| device.expires > now);
    let (interval, ttl) = (logins.device_interval, logins.device_ttl);
    logins.devices.insert(
        device_code.clone(),
        Device {
            client_id,
            user_code: user_code.clone(),
            scope,
            status: DeviceStatus::Pending,
            expires: now + ttl,
        },
    );
    let verification_uri = format!("{}/device", state.url);
    Response::json(
        200,
        JSON,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "expires_in": ttl.as_secs(),
            "interval": interval.as_secs(),
        }),
    )
    .with_header("Cache-Control", "no-store")
}

/// The device code grant: pending, slowed down, denied, expired or approved.
pub(crate) fn redeem_device_code(
    state: &State,
    client_id: &str,
    param: &Param<'_>,
) -> Result<Grant, Response> {
    let device_code = param("device_code")?.ok_or_else(|| invalid_grant("no device_code"))?;
    let mut logins = state.logins.lock();
    if logins.slow_downs > 0 {
        logins.slow_downs -= 1;
        return Err(oauth_error(400, "slow_down", "poll less often"));
    }
    let device = logins
        .devices
        .get(device_code)
        .filter(|device| device.client_id == client_id)
        .ok_or_else(|| invalid_grant("unknown device_code"))?;
    if device.expires <= Instant::now() {
        logins.devices.remove(device_code);
        return Err(oauth_error(400, "expired_token", "the device code expired"));
    }
    match device.status.clone() {
        DeviceStatus::Pending => Err(oauth_error(
            400,
            "authorization_pending",
            "the user has not answered yet",
        )),
        DeviceStatus::Denied => {
            logins.devices.remove(device_code);
            Err(oauth_error(400, "access_denied", "the user said no"))
        }
        DeviceStatus::Approved(username) => {
            let scope = logins
                .devices
                .remove(device_code)
                .and_then(|device| device.scope);
            Ok(Grant::Login {
                client_id: client_id.to_owned(),
                username,
                scope,
                nonce: None,
            })
        }
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was known.
pub(crate) fn revoke(state: &State, request: &Request) -> Response {
    let (client_id, form) = match authenticated_form(state, request) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(token) = form.iter().find(|(n, _)| n == "token").map(|(_, v)| v) else {
        return oauth_error(400, "invalid_request", "token is missing");
    };
    // An access or ID token is known by its `jti`, once its signature checks out.
    let claims = state.signer.verify(token, &state.issuer);
    let jti = claims
        .as_ref()
        .filter(|claims| claims["client_id"] == client_id.as_str())
        .and_then(|claims| claims["jti"].as_str());
    state.tokens.lock().revoke(token, &client_id, jti);
    Response {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_only() {
        assert!(is_loopback_redirect("http://127.0.0.1:5000/cb"));
        assert!(is_loopback_redirect("http://localhost/"));
        assert!(is_loopback_redirect("http://[::1]:80/"));
        assert!(!is_loopback_redirect("https://127.0.0.1/"));
        assert!(!is_loopback_redirect("http://127.0.0.1.evil.example/"));
        assert!(!is_loopback_redirect("http://evil.example/127.0.0.1"));
    }
}
