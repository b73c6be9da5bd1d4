//! The OAuth2 side: the token endpoint (RFC 6749, with RFC 7523 client assertions),
//! discovery (OpenID Connect Discovery and RFC 8414) and the JWKS.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::faults::{Fault, retry_after_header};
use super::server::{Request, Response};
use super::tokens::{self, Grant};
use super::{State, assertion};

pub(crate) const JSON: &str = "application/json";

/// An RFC 6749 section 5.2 error.
pub(crate) fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    Response::json(
        status,
        JSON,
        &json!({"error": code, "error_description": description}),
    )
    .with_header("Cache-Control", "no-store")
}

pub(crate) fn fault(fault: Fault) -> Response {
    match fault {
        Fault::Status(401) => oauth_error(401, "invalid_client", "injected fault")
            .with_header("WWW-Authenticate", "Basic realm=\"LocalIdp\""),
        Fault::Status(429) => oauth_error(429, "temporarily_unavailable", "injected fault"),
        Fault::Status(status) if (400..500).contains(&status) => {
            oauth_error(status, "invalid_request", "injected fault")
        }
        Fault::Status(status) => oauth_error(status, "server_error", "injected fault"),
        Fault::TooManyRequests { retry_after } => {
            let response = oauth_error(429, "temporarily_unavailable", "too many requests");
            match retry_after {
                Some(delay) => response.with_header("Retry-After", retry_after_header(delay)),
                None => response,
            }
        }
        Fault::MalformedBody => Response {
            status: 200,
            headers: vec![("Content-Type".to_owned(), JSON.to_owned())],
            body: b"{\"access_token\": \"trunc".to_vec(),
        },
        // Handled before: a delay answers normally, a drop never answers.
        Fault::Delay(_) | Fault::DropConnection | Fault::Rendezvous(_) => {
            oauth_error(500, "server_error", "fault")
        }
    }
}

/// `application/x-www-form-urlencoded` decoding; `None` for invalid percent-escapes or UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

/// How the client authenticated.
enum ClientAuth {
    Basic {
        id: String,
        secret: String,
    },
    Post {
        id: String,
        secret: Option<String>,
    },
    /// `private_key_jwt`, already verified.
    Assertion {
        id: String,
    },
}

/// `POST /oauth2/token`.
pub(crate) fn token(state: &State, request: &Request) -> Response {
    let Some(form) = parse_form(&request.body) else {
        return oauth_error(400, "invalid_request", "the body is not a valid form");
    };
    let param = |name: &str| -> Result<Option<&str>, Response> {
        let mut values = form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        // RFC 6749 3.2: parameters must not be included more than once.
        if values.next().is_some() {
            return Err(oauth_error(
                400,
                "invalid_request",
                &format!("{name} repeated"),
            ));
        }
        Ok(first)
    };
    match token_inner(state, request, &param) {
        Ok(response) | Err(response) => response,
    }
}

pub(crate) type Param<'a> = dyn Fn(&str) -> Result<Option<&'a str>, Response> + 'a;

/// For the endpoints beside the token endpoint (device authorization, revocation): the
/// form, and the client authenticated as at the token endpoint.
pub(crate) fn authenticated_form(
    state: &State,
    request: &Request,
) -> Result<(String, Vec<(String, String)>), Response> {
    let Some(form) = parse_form(&request.body) else {
        return Err(oauth_error(
            400,
            "invalid_request",
            "the body is not a valid form",
        ));
    };
    let client_id = {
        let param = |name: &str| -> Result<Option<&str>, Response> {
            Ok(form
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()))
        };
        match client_auth(state, request, &param)? {
            ClientAuth::Assertion { id } => id,
            auth => authenticate(state, &auth)?,
        }
    };
    Ok((client_id, form))
}

fn token_inner<'a>(
    state: &State,
    request: &Request,
    param: &Param<'a>,
) -> Result<Response, Response> {
    let client_id = match client_auth(state, request, param)? {
        ClientAuth::Assertion { id } => id,
        auth => authenticate(state, &auth)?,
    };
    let grant = match param("grant_type")? {
        None => return Err(oauth_error(400, "invalid_request", "grant_type is missing")),
        Some("client_credentials") => {
            let public = state
                .clients
                .get(&client_id)
                .is_some_and(|c| c.secret.is_none() && c.assertion_key.is_none());
            if public {
                return Err(oauth_error(
                    400,
                    "unauthorized_client",
                    "a public client can't use client_credentials",
                ));
            }
            Grant::Client {
                client_id: client_id.clone(),
                scope: param("scope")?.map(str::to_owned),
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = param("refresh_token")? else {
                return Err(oauth_error(
                    400,
                    "invalid_request",
                    "refresh_token is missing",
                ));
            };
            match tokens::redeem_refresh(state, refresh, &client_id) {
                Some(grant) => grant,
                None => {
                    return Err(oauth_error(
                        400,
                        "invalid_grant",
                        "the refresh token is invalid, revoked or not this client's",
                    ));
                }
            }
        }
        Some("authorization_code") => super::interactive::redeem_code(state, &client_id, param)?,
        Some(super::interactive::DEVICE_GRANT) => {
            super::interactive::redeem_device_code(state, &client_id, param)?
        }
        Some(_) => {
            return Err(oauth_error(
                400,
                "unsupported_grant_type",
                "only client_credentials, refresh_token, authorization_code and device_code \
                 are supported",
            ));
        }
    };
    // A person's login always comes with a refresh token; a client's as configured.
    let with_refresh = match param("grant_type")? {
        Some("client_credentials") => state.issue_refresh_tokens,
        Some("refresh_token") => false,
        _ => true,
    };
    let issued = tokens::issue(state, &grant, with_refresh)
        .map_err(|_| oauth_error(500, "server_error", "could not issue a token"))?;
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if let Some(refresh) = issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(id) = issued.id_token {
        body["id_token"] = json!(id);
    }
    if let Grant::Client {
        scope: Some(scope), ..
    }
    | Grant::Login {
        scope: Some(scope), ..
    } = &grant
    {
        body["scope"] = json!(scope);
    }
    Ok(Response::json(200, JSON, &body)
        .with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache"))
}

fn client_auth<'a>(
    state: &State,
    request: &Request,
    param: &Param<'a>,
) -> Result<ClientAuth, Response> {
    let body_id = param("client_id")?;
    let body_secret = param("client_secret")?;
    let assertion_type = param("client_assertion_type")?;
    let assertion = param("client_assertion")?;
    let basic = request
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim());
    let methods = [basic.is_some(), body_secret.is_some(), assertion.is_some()];
    if methods.iter().filter(|used| **used).count() > 1 {
        // RFC 6749 2.3: a client must not use more than one authentication method.
        return Err(oauth_error(
            400,
            "invalid_request",
            "more than one client authentication method",
        ));
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(assertion::ASSERTION_TYPE) {
            return Err(invalid_client(false, "unsupported client_assertion_type"));
        }
        return assertion::verify(state, assertion, body_id)
            .map(|id| ClientAuth::Assertion { id })
            .map_err(|why| invalid_client(false, why));
    }
    match basic {
        Some(credentials) => {
            let decoded = STANDARD
                .decode(credentials)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            // RFC 6749 2.3.1: id and secret are form-encoded before going into Basic.
            let pair = decoded
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .and_then(|(id, secret)| Some((form_decode(id)?, form_decode(secret)?)));
            match pair {
                Some((id, secret)) => Ok(ClientAuth::Basic { id, secret }),
                None => Err(invalid_client(true, "malformed Basic credentials")),
            }
        }
        None => match body_id {
            Some(id) => Ok(ClientAuth::Post {
                id: id.to_owned(),
                secret: body_secret.map(str::to_owned),
            }),
            None => Err(invalid_client(false, "no client authentication")),
        },
    }
}

fn invalid_client(basic: bool, description: &str) -> Response {
    let response = oauth_error(401, "invalid_client", description);
    if basic {
        response.with_header("WWW-Authenticate", "Basic realm=\"LocalIdp\"")
    } else {
        response
    }
}

/// The authenticated client id.
fn authenticate(state: &State, auth: &ClientAuth) -> Result<String, Response> {
    let (id, secret, basic) = match auth {
        ClientAuth::Basic { id, secret } => (id, Some(secret.as_str()), true),
        ClientAuth::Post { id, secret } => (id, secret.as_deref(), false),
        ClientAuth::Assertion { id } => return Ok(id.clone()),
    };
    let ok = state.clients.get(id).is_some_and(|client| {
        match (&client.secret, &client.assertion_key) {
            (Some(expected), _) => secret.is_some_and(|s| {
                super::cognito::constant_time_eq(s.as_bytes(), expected.as_bytes())
            }),
            // A private_key_jwt client must sign; its id alone proves nothing.
            (None, Some(_)) => false,
            (None, None) => secret.is_none_or(str::is_empty),
        }
    });
    if ok {
        Ok(id.clone())
    } else {
        Err(invalid_client(basic, "client authentication failed"))
    }
}

/// Discovery, both flavours: the same document.
pub(crate) fn discovery(state: &State) -> Response {
    let issuer = &state.issuer;
    Response::json(
        200,
        JSON,
        &json!({
            "issuer": issuer,
            "token_endpoint": format!("{}/oauth2/token", state.url),
            "authorization_endpoint": format!("{}/oauth2/authorize", state.url),
            "device_authorization_endpoint": format!("{}/oauth2/device_authorization", state.url),
            "revocation_endpoint": format!("{}/oauth2/revoke", state.url),
            "code_challenge_methods_supported": ["S256"],
            // Every authorization response names the issuer (RFC 9207).
            "authorization_response_iss_parameter_supported": true,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "grant_types_supported": ["client_credentials", "refresh_token",
                "authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported":
                ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"],
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "aws.cognito.signin.user.admin"],
        }),
    )
}

pub(crate) fn jwks(state: &State) -> Response {
    Response::json(200, JSON, &state.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_percent_and_garbage() {
        assert_eq!(form_decode("a+b%2Bc%3D").as_deref(), Some("a b+c="));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%ff"), None);
        let form = parse_form(b"grant_type=client_credentials&scope=a+b&empty").unwrap();
        assert_eq!(form[1], ("scope".to_owned(), "a b".to_owned()));
        assert_eq!(form[2], ("empty".to_owned(), String::new()));
    }
}
