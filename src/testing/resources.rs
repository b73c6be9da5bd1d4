//! The resources a client under test calls with its tokens: `/protected`, which accepts only
//! live tokens this server issued, and two helpers for checking what a client sends where:
//! `/redirect` and `/headers`.

use serde_json::{Map, Value, json};

use super::State;
use super::oauth::JSON;
use super::server::{Request, Response};
use super::tokens;

/// `/protected`: 200 for a live token this server issued, else 401.
pub(crate) fn protected(state: &State, request: &Request) -> Response {
    *state.last_api_key.lock() = request.header("x-api-key").map(str::to_owned);
    let token = request
        .header("authorization")
        .map(|value| match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => value.trim(),
        });
    let claims: Option<Value> = token.and_then(|t| tokens::check(state, t));
    let Some(claims) = claims else {
        state.faults.count_rejected_protected();
        return Response::json(401, JSON, &json!({"ok": false, "message": "Unauthorized"}))
            .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    };
    *state.last_token_use.lock() = claims["token_use"].as_str().map(str::to_owned);
    Response::json(
        200,
        JSON,
        &json!({
            "ok": true,
            "sub": claims["sub"],
            "token_use": claims["token_use"],
            // An ID token names its app client as `aud` (Cognito puts no `client_id` in it).
            "client_id": claims.get("client_id").unwrap_or(&claims["aud"]),
            "method": request.method,
            "body": String::from_utf8_lossy(&request.body),
        }),
    )
}

/// `/redirect?to=<url>[&status=<3xx>]`: answers `status` (default 307, which keeps the method
/// and body) with `Location: <url>`.
pub(crate) fn redirect(request: &Request) -> Response {
    let mut to = None;
    let mut status = 307;
    for (name, value) in super::oauth::parse_form(request.query.as_bytes()).unwrap_or_default() {
        match name.as_str() {
            "to" => to = Some(value),
            "status" => status = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    match to {
        Some(to) if (300..400).contains(&status) => {
            Response::json(status, JSON, &json!({"location": to})).with_header("Location", to)
        }
        _ => Response::json(
            400,
            JSON,
            &json!({"error": "invalid_request", "error_description": "want ?to=<url>[&status=3xx]"}),
        ),
    }
}

/// `/headers`: echoes the request's method, headers (names in lower case) and body.
pub(crate) fn headers(request: &Request) -> Response {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), Value::String(value.clone()));
    }
    Response::json(
        200,
        JSON,
        &json!({
            "method": request.method,
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        }),
    )
}

pub(crate) fn not_found(request: &Request) -> Response {
    Response::json(
        404,
        JSON,
        &json!({"error": "not_found", "error_description": format!("no route for {} {}", request.method, request.path)}),
    )
}
