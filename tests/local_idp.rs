//! The local identity provider, exercised with plain ureq and raw sockets (never with the
//! crate's own OAuth2 or SRP clients, so it can be their oracle).

#![cfg(feature = "testing")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use en_core_auth::srp::math::{self, SrpClient};
use en_core_auth::testing::{Fault, LocalIdp, Operation, User, UserStatus, totp_code};
use serde_json::{Value, json};

const TOTP_SECRET: &[u8] = b"12345678901234567890";
/// The confidential client's secret, with characters that Basic must form-encode.
const SECRET: &str = "s3cret:with+odd&chars";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn into_reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.body_mut().read_to_string().unwrap(),
    }
}

fn token_request(idp: &LocalIdp, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let mut request = agent().post(&idp.token_url());
    if let Some((id, secret)) = basic {
        request = request.header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    into_reply(request.send_form(form.iter().copied()))
}

fn cognito(idp: &LocalIdp, operation: &str, body: &Value) -> Reply {
    cognito_raw(idp, Some(operation), body.to_string().into_bytes())
}

fn cognito_raw(idp: &LocalIdp, operation: Option<&str>, body: Vec<u8>) -> Reply {
    let mut request = agent()
        .post(&format!("{}/", idp.url()))
        .header("Content-Type", "application/x-amz-json-1.1");
    if let Some(op) = operation {
        request = request.header(
            "X-Amz-Target",
            format!("AWSCognitoIdentityProviderService.{op}"),
        );
    }
    into_reply(request.send(&body[..]))
}

fn get_protected(idp: &LocalIdp, authorization: Option<&str>) -> Reply {
    let mut request = agent().get(&idp.protected_url());
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    into_reply(request.call())
}

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .client("public", None)
        .client("confidential", Some(SECRET))
        .user("alice", "Passw0rd!")
        .user_with(User::new("bob", "Pw0rd!").status(UserStatus::ForceChangePassword))
        .user_with(User::new("carol", "C4rol!").email("carol@example.com"))
        .user_with(User::new("dave", "D4ve!").totp_secret(TOTP_SECRET.to_vec()))
        .user_with(User::new("erin", "Er1n!").sms_mfa_code("424242"))
        .user_with(User::new("frank", "Fr4nk!").status(UserStatus::Unconfirmed))
        .user_with(User::new("grace", "Gr4ce!").status(UserStatus::ResetRequired))
        .start()
        .unwrap()
}

fn client_credentials_post(idp: &LocalIdp) -> Reply {
    token_request(
        idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "confidential"),
            ("client_secret", SECRET),
        ],
    )
}

fn secret_hash(username: &str) -> String {
    math::secret_hash(SECRET, username, "confidential")
}

// ---------------------------------------------------------------- OAuth2

#[test]
fn client_credentials_with_basic_and_post_issue_verifiable_tokens() {
    let idp = idp();
    // RFC 6749 2.3.1: id and secret are form-encoded before Basic.
    let basic = token_request(
        &idp,
        Some(("confidential", "s3cret%3Awith%2Bodd%26chars")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
        ],
    );
    assert_eq!(basic.status, 200, "{}", basic.text);
    let body = basic.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    assert!(body["refresh_token"].is_string());
    assert_eq!(basic.header("cache-control"), Some("no-store"));
    assert!(idp.verify_access_token(body["access_token"].as_str().unwrap()));

    let post = client_credentials_post(&idp);
    assert_eq!(post.status, 200, "{}", post.text);
    let token = post.json()["access_token"].as_str().unwrap().to_owned();
    assert!(post.json().get("scope").is_none());
    let claims = decode_unverified(&token);
    assert_eq!(claims["client_id"], "confidential");
    assert_eq!(claims["sub"], "confidential");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn bad_client_authentication_gets_rfc_6749_errors() {
    let idp = idp();
    let wrong_basic = token_request(
        &idp,
        Some(("confidential", "wrong")),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(wrong_basic.status, 401);
    assert_eq!(wrong_basic.json()["error"], "invalid_client");
    assert!(
        wrong_basic
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );

    let wrong_post = token_request(
        &idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "confidential"),
            ("client_secret", "wrong"),
        ],
    );
    assert_eq!(wrong_post.status, 401);
    assert_eq!(wrong_post.json()["error"], "invalid_client");
    assert!(wrong_post.header("www-authenticate").is_none());

    let unknown = token_request(
        &idp,
        Some(("nobody", "x")),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(unknown.json()["error"], "invalid_client");

    let public = token_request(
        &idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "public"),
        ],
    );
    assert_eq!(public.status, 400);
    assert_eq!(public.json()["error"], "unauthorized_client");

    let unsupported = token_request(
        &idp,
        Some(("confidential", "s3cret%3Awith%2Bodd%26chars")),
        &[("grant_type", "password")],
    );
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");

    let missing = token_request(
        &idp,
        Some(("confidential", "s3cret%3Awith%2Bodd%26chars")),
        &[],
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "invalid_request");

    let two_methods = token_request(
        &idp,
        Some(("confidential", "s3cret%3Awith%2Bodd%26chars")),
        &[("grant_type", "client_credentials"), ("client_secret", "x")],
    );
    assert_eq!(two_methods.json()["error"], "invalid_request");
}

#[test]
fn refresh_works_until_revoked_and_only_for_its_client() {
    let idp = LocalIdp::builder()
        .client("a", Some("sa"))
        .client("b", Some("sb"))
        .start()
        .unwrap();
    let first = token_request(
        &idp,
        Some(("a", "sa")),
        &[("grant_type", "client_credentials")],
    )
    .json();
    let refresh = first["refresh_token"].as_str().unwrap();

    let renewed = token_request(
        &idp,
        Some(("a", "sa")),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let access = renewed.json()["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access, first["access_token"].as_str().unwrap());
    assert!(idp.verify_access_token(&access));

    let other_client = token_request(
        &idp,
        Some(("b", "sb")),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(other_client.status, 400);
    assert_eq!(other_client.json()["error"], "invalid_grant");

    idp.revoke_refresh_tokens();
    let revoked = token_request(
        &idp,
        Some(("a", "sa")),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(revoked.status, 400);
    assert_eq!(revoked.json()["error"], "invalid_grant");
    // Access tokens survive the revocation.
    assert!(idp.verify_access_token(&access));
}

#[test]
fn refresh_tokens_for_client_credentials_can_be_turned_off() {
    let idp = LocalIdp::builder()
        .client("a", Some("sa"))
        .issue_refresh_tokens(false)
        .start()
        .unwrap();
    let reply = token_request(
        &idp,
        Some(("a", "sa")),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(reply.status, 200);
    assert!(reply.json().get("refresh_token").is_none());
}

#[test]
fn expire_all_tokens_rejects_old_tokens_but_refresh_still_works() {
    let idp = idp();
    let first = client_credentials_post(&idp).json();
    let old = first["access_token"].as_str().unwrap();
    assert_eq!(
        get_protected(&idp, Some(&format!("Bearer {old}"))).status,
        200
    );

    idp.expire_all_tokens();
    let rejected = get_protected(&idp, Some(&format!("Bearer {old}")));
    assert_eq!(rejected.status, 401);
    assert_eq!(
        rejected.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert!(!idp.verify_access_token(old));

    let renewed = token_request(
        &idp,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", "confidential"),
            ("client_secret", SECRET),
        ],
    );
    let new = renewed.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        get_protected(&idp, Some(&format!("Bearer {new}"))).status,
        200
    );
    assert_eq!(idp.rejected_protected_requests(), 1);
}

#[test]
fn token_lifetime_is_enforced_by_the_protected_resource() {
    let short = LocalIdp::builder()
        .client("a", Some("sa"))
        .token_ttl(Duration::from_secs(2))
        .start()
        .unwrap();
    let reply = token_request(
        &short,
        Some(("a", "sa")),
        &[("grant_type", "client_credentials")],
    )
    .json();
    assert_eq!(reply["expires_in"], 2);
    let token = reply["access_token"].as_str().unwrap();
    // Just issued, two seconds to live: accepted although `exp` was rounded down.
    assert!(short.verify_access_token(token));
    let claims = decode_unverified(token);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!((1..=2).contains(&lifetime), "{claims}");

    let expired = LocalIdp::builder()
        .client("a", Some("sa"))
        .token_ttl(Duration::ZERO)
        .start()
        .unwrap();
    let reply = token_request(
        &expired,
        Some(("a", "sa")),
        &[("grant_type", "client_credentials")],
    )
    .json();
    let token = reply["access_token"].as_str().unwrap();
    assert_eq!(
        get_protected(&expired, Some(&format!("Bearer {token}"))).status,
        401
    );
}

#[test]
fn discovery_and_jwks_let_a_verifier_check_tokens() {
    // An OAuth2-style issuer (the URL itself); the default, a pool's, is the next test's.
    let idp = LocalIdp::builder()
        .client("confidential", Some(SECRET))
        .cognito_issuer(false)
        .start()
        .unwrap();
    assert_eq!(idp.issuer(), idp.url());
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let reply = into_reply(agent().get(&format!("{}{path}", idp.issuer())).call());
        assert_eq!(reply.status, 200);
        let doc = reply.json();
        assert_eq!(doc["issuer"], idp.issuer());
        assert_eq!(doc["token_endpoint"], idp.token_url());
        assert_eq!(doc["jwks_uri"], idp.jwks_url());
    }
    assert_eq!(idp.requests(Operation::Discovery), 2);

    let jwks = into_reply(agent().get(&idp.jwks_url()).call()).json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let token = client_credentials_post(&idp).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[idp.issuer()]);
    let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
    assert_eq!(data.claims["client_id"], "confidential");
    assert_eq!(idp.requests(Operation::Jwks), 1);
}

#[test]
fn a_cognito_style_issuer_serves_discovery_and_jwks_under_the_pool_id() {
    // The default.
    let idp = LocalIdp::builder()
        .pool_id("eu-west-1_Pool")
        .client("confidential", Some(SECRET))
        .start()
        .unwrap();
    assert_eq!(idp.issuer(), format!("{}/eu-west-1_Pool", idp.url()));
    let doc = into_reply(
        agent()
            .get(&format!(
                "{}/.well-known/openid-configuration",
                idp.issuer()
            ))
            .call(),
    )
    .json();
    assert_eq!(doc["issuer"], idp.issuer());
    assert_eq!(doc["token_endpoint"], idp.token_url());
    assert_eq!(doc["jwks_uri"], idp.jwks_url());
    assert_eq!(into_reply(agent().get(&idp.jwks_url()).call()).status, 200);
    let token = client_credentials_post(&idp).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_unverified(&token)["iss"], idp.issuer());
    assert!(idp.verify_access_token(&token));
    // Another pool's path is just an unknown path.
    let other = into_reply(
        agent()
            .get(&format!(
                "{}/eu-west-1_Other/.well-known/jwks.json",
                idp.url()
            ))
            .call(),
    );
    assert_eq!(other.status, 404);
}

#[test]
fn protected_resource_accepts_bearer_or_bare_tokens_and_records_the_api_key() {
    let idp = idp();
    let token = client_credentials_post(&idp).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = into_reply(
        agent()
            .post(&idp.protected_url())
            .header("Authorization", format!("Bearer {token}"))
            .header("X-Api-Key", "api-key-1")
            .send("payload"),
    );
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["token_use"], "access");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body"], "payload");
    assert_eq!(idp.last_api_key().as_deref(), Some("api-key-1"));
    assert_eq!(idp.last_token_use().as_deref(), Some("access"));

    assert_eq!(get_protected(&idp, Some(&token)).status, 200);
    assert_eq!(idp.last_api_key(), None);

    for bad in [
        None,
        Some("Bearer nope"),
        Some("Basic Zm9vOmJhcg=="),
        Some(""),
    ] {
        let reply = get_protected(&idp, bad);
        assert_eq!(reply.status, 401, "{bad:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    // A token signed with the same key by another LocalIdp has another issuer.
    let other = idp_token_from_another_server();
    assert_eq!(
        get_protected(&idp, Some(&format!("Bearer {other}"))).status,
        401
    );
    assert_eq!(idp.rejected_protected_requests(), 5);
    assert_eq!(idp.requests(Operation::Protected), 7);
}

fn idp_token_from_another_server() -> String {
    let other = idp();
    client_credentials_post(&other).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn redirect_and_header_echo_show_what_a_client_sends_where() {
    let first = idp();
    let second = idp();
    let no_follow: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let target = format!("{}?x=1&y=a b", second.headers_url());
    let reply = no_follow
        .post(&first.redirect_url(&target))
        .send("body")
        .unwrap();
    assert_eq!(reply.status(), 307);
    assert_eq!(reply.headers()["location"], target.as_str());
    let found = no_follow
        .get(&format!("{}&status=302", first.redirect_url(&target)))
        .call()
        .unwrap();
    assert_eq!(found.status(), 302);
    let bad = no_follow
        .get(&format!("{}/redirect?status=200&to=x", first.url()))
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);

    // ureq follows the redirect to the other server, which echoes what arrived. (ureq can't
    // replay a request body, so it follows only body-less requests.)
    let echo = into_reply(
        agent()
            .get(&first.redirect_url(&second.headers_url()))
            .header("X-Api-Key", "k1")
            .call(),
    )
    .json();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["headers"]["x-api-key"], "k1");
    assert_eq!(first.requests(Operation::Redirect), 4);
    assert_eq!(second.requests(Operation::EchoHeaders), 1);
}

// ---------------------------------------------------------------- faults

#[test]
fn status_and_throttling_faults_are_shaped_per_protocol() {
    let idp = idp();
    idp.fail_next(1, Fault::Status(503));
    let reply = client_credentials_post(&idp);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"], "server_error");

    idp.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after: Some(Duration::from_millis(1500)),
        },
    );
    let reply = client_credentials_post(&idp);
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("2"));

    idp.fail_next(1, Fault::Status(503));
    let reply = password_auth(&idp, "public", "alice", "Passw0rd!");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["__type"], "InternalErrorException");

    idp.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after: Some(Duration::from_secs(3)),
        },
    );
    let reply = password_auth(&idp, "public", "alice", "Passw0rd!");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["__type"], "TooManyRequestsException");
    assert_eq!(reply.header("retry-after"), Some("3"));

    idp.fail_next(1, Fault::TooManyRequests { retry_after: None });
    let reply = client_credentials_post(&idp);
    assert_eq!(reply.status, 429);
    assert!(reply.header("retry-after").is_none());

    // Faults used up: normal service again.
    assert_eq!(client_credentials_post(&idp).status, 200);
    assert_eq!(
        password_auth(&idp, "public", "alice", "Passw0rd!").status,
        200
    );
    assert_eq!(idp.requests(Operation::Token), 4);
    assert_eq!(idp.requests(Operation::InitiateAuth), 3);
}

#[test]
fn faults_spare_the_protected_resource_discovery_and_jwks() {
    let idp = idp();
    idp.fail_next(1, Fault::Status(500));
    assert_eq!(get_protected(&idp, None).status, 401);
    assert_eq!(into_reply(agent().get(&idp.jwks_url()).call()).status, 200);
    assert_eq!(
        into_reply(
            agent()
                .get(&format!("{}/.well-known/openid-configuration", idp.url()))
                .call()
        )
        .status,
        200
    );
    assert_eq!(client_credentials_post(&idp).status, 500);
    assert_eq!(client_credentials_post(&idp).status, 200);
}

#[test]
fn dropped_connections_and_malformed_bodies_then_normal_service() {
    let idp = idp();
    idp.fail_next(1, Fault::DropConnection);
    let dropped = agent()
        .post(&idp.token_url())
        .send_form([("grant_type", "client_credentials")]);
    assert!(
        matches!(dropped, Err(ref e) if !matches!(e, ureq::Error::StatusCode(_))),
        "{dropped:?}"
    );

    idp.fail_next(2, Fault::MalformedBody);
    let malformed = client_credentials_post(&idp);
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_str::<Value>(&malformed.text).is_err());
    let malformed = password_auth(&idp, "public", "alice", "Passw0rd!");
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_str::<Value>(&malformed.text).is_err());

    assert_eq!(client_credentials_post(&idp).status, 200);
    assert_eq!(idp.requests(Operation::Token), 3);
}

#[test]
fn a_delay_outlasting_the_client_timeout_fails_the_call_then_service_resumes() {
    let idp = idp();
    idp.fail_next(1, Fault::Delay(Duration::from_secs(2)));
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(200)))
        .build()
        .into();
    let reply = impatient
        .post(&idp.token_url())
        .send_form([("grant_type", "client_credentials")]);
    assert!(matches!(reply, Err(ureq::Error::Timeout(_))), "{reply:?}");

    // A short delay is answered normally.
    idp.fail_next(1, Fault::Delay(Duration::from_millis(20)));
    assert_eq!(client_credentials_post(&idp).status, 200);
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_cognito_requests_get_aws_shaped_errors_and_the_server_keeps_serving() {
    let idp = idp();
    let garbage = cognito_raw(&idp, Some("InitiateAuth"), b"{not json".to_vec());
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.json()["__type"], "SerializationException");

    let array = cognito_raw(&idp, Some("InitiateAuth"), b"[1,2]".to_vec());
    assert_eq!(array.json()["__type"], "SerializationException");

    let unknown = cognito(&idp, "DeleteUserPool", &json!({}));
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["__type"], "UnknownOperationException");
    let no_target = cognito_raw(&idp, None, b"{}".to_vec());
    assert_eq!(no_target.json()["__type"], "UnknownOperationException");
    assert_eq!(idp.requests(Operation::UnknownCognitoOperation), 2);

    let no_client = cognito(
        &idp,
        "InitiateAuth",
        &json!({"AuthFlow": "USER_PASSWORD_AUTH"}),
    );
    assert_eq!(no_client.json()["__type"], "InvalidParameterException");
    let unknown_client = cognito(
        &idp,
        "InitiateAuth",
        &json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "nope", "AuthParameters": {}}),
    );
    assert_eq!(unknown_client.json()["__type"], "ResourceNotFoundException");
    let missing_params = cognito(
        &idp,
        "InitiateAuth",
        &json!({"AuthFlow": "USER_SRP_AUTH", "ClientId": "public", "AuthParameters": {"USERNAME": "alice"}}),
    );
    assert_eq!(missing_params.json()["__type"], "InvalidParameterException");
    let wrong_types = cognito(
        &idp,
        "InitiateAuth",
        &json!({"AuthFlow": 7, "ClientId": "public", "AuthParameters": "x"}),
    );
    assert_eq!(wrong_types.status, 400);
    let bad_flow = cognito(
        &idp,
        "InitiateAuth",
        &json!({"AuthFlow": "CUSTOM_AUTH", "ClientId": "public", "AuthParameters": {}}),
    );
    assert_eq!(bad_flow.json()["__type"], "InvalidParameterException");

    let oversized = cognito_raw(&idp, Some("InitiateAuth"), vec![b' '; 65 * 1024]);
    assert_eq!(oversized.status, 413);
    assert_eq!(oversized.json()["__type"], "InvalidParameterException");

    // A_ = 0 mod N: N itself, 0, and 2N.
    let n = math::modulus();
    for a in [
        format!("{n:x}"),
        "0".to_owned(),
        format!("{:x}", n * 2u32),
        "not-hex".to_owned(),
    ] {
        let reply = cognito(
            &idp,
            "InitiateAuth",
            &json!({"AuthFlow": "USER_SRP_AUTH", "ClientId": "public",
                    "AuthParameters": {"USERNAME": "alice", "SRP_A": a}}),
        );
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["__type"], "InvalidParameterException", "{a}");
    }

    assert_eq!(
        password_auth(&idp, "public", "alice", "Passw0rd!").status,
        200
    );
    srp_login(&idp, "public", None, "alice", "Passw0rd!").unwrap();
}

#[test]
fn broken_http_never_stops_the_server() {
    let idp = idp();
    let addr = idp.url().trim_start_matches("http://").to_owned();
    for garbage in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"POST /oauth2/token HTTP/1.1\r\nContent-Length: banana\r\n\r\n",
        b"POST /oauth2/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
        b"GET /protected HTTP/1.1\r\nX-Bad-Header-Without-Colon\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut status_line = String::new();
        BufReader::new(&mut stream)
            .read_line(&mut status_line)
            .unwrap();
        assert!(
            status_line.starts_with("HTTP/1.1 4"),
            "{garbage:?} -> {status_line:?}"
        );
    }
    // Connect and hang up without a byte.
    drop(TcpStream::connect(&addr).unwrap());

    // A chunked body works, and keep-alive carries a second request on the same socket.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let form = "grant_type=client_credentials&client_id=confidential&client_secret=s3cret%3Awith%2Bodd%26chars";
    let request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{form}\r\n0\r\n\r\n\
         GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        form.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut all = String::new();
    stream.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert!(all.contains("access_token"));

    assert_eq!(client_credentials_post(&idp).status, 200);
}

#[test]
fn dropping_the_server_frees_its_port() {
    // A port below Linux's ephemeral range (32768+), so no other test's port-0 server can
    // take it between the drop and the re-bind.
    let (idp, port) = (20_000..32_000u16)
        .step_by(97)
        .find_map(|port| {
            let idp = LocalIdp::builder()
                .client("confidential", Some(SECRET))
                .port(port);
            Some((idp.start().ok()?, port))
        })
        .unwrap();
    assert_eq!(idp.url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(client_credentials_post(&idp).status, 200);
    drop(idp);
    drop(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    let again = LocalIdp::builder().port(port).start().unwrap();
    assert_eq!(again.url(), format!("http://127.0.0.1:{port}"));
}

// ---------------------------------------------------------------- Cognito logins

fn password_auth(idp: &LocalIdp, client: &str, username: &str, password: &str) -> Reply {
    let mut params = json!({"USERNAME": username, "PASSWORD": password});
    if client == "confidential" {
        params["SECRET_HASH"] = json!(secret_hash(username));
    }
    cognito(
        idp,
        "InitiateAuth",
        &json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client, "AuthParameters": params}),
    )
}

/// What went wrong in an SRP login: the reply that failed.
#[derive(Debug)]
struct Failed(u16, String);

/// A full `USER_SRP_AUTH` login with the SRP math; returns the final reply body.
fn srp_login(
    idp: &LocalIdp,
    client: &str,
    secret: Option<&str>,
    username: &str,
    password: &str,
) -> Result<Value, Failed> {
    srp_login_with(
        idp,
        client,
        secret,
        username,
        password,
        math::cognito_timestamp(SystemTime::now()),
    )
}

fn srp_login_with(
    idp: &LocalIdp,
    client: &str,
    secret: Option<&str>,
    username: &str,
    password: &str,
    timestamp: String,
) -> Result<Value, Failed> {
    let srp = SrpClient::generate().unwrap();
    let mut params = json!({"USERNAME": username, "SRP_A": srp.public_a_hex()});
    if let Some(secret) = secret {
        params["SECRET_HASH"] = json!(math::secret_hash(secret, username, client));
    }
    let reply = cognito(
        idp,
        "InitiateAuth",
        &json!({"AuthFlow": "USER_SRP_AUTH", "ClientId": client, "AuthParameters": params}),
    );
    if reply.status != 200 {
        return Err(Failed(reply.status, reply.text));
    }
    let challenge = reply.json();
    assert_eq!(challenge["ChallengeName"], "PASSWORD_VERIFIER");
    let p = &challenge["ChallengeParameters"];
    let user_id = p["USER_ID_FOR_SRP"].as_str().unwrap();
    let real_username = p["USERNAME"].as_str().unwrap();
    let pool_name = idp.pool_id().split_once('_').unwrap().1;
    let key = srp
        .password_authentication_key(
            pool_name,
            user_id,
            password,
            &math::parse_hex(p["SALT"].as_str().unwrap()).unwrap(),
            &math::parse_hex(p["SRP_B"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
    let secret_block = p["SECRET_BLOCK"].as_str().unwrap();
    let signature =
        math::password_claim_signature(&key, pool_name, user_id, secret_block, &timestamp).unwrap();
    let mut answers = json!({
        "USERNAME": real_username,
        "PASSWORD_CLAIM_SECRET_BLOCK": secret_block,
        "PASSWORD_CLAIM_SIGNATURE": signature,
        "TIMESTAMP": timestamp,
    });
    if let Some(secret) = secret {
        answers["SECRET_HASH"] = json!(math::secret_hash(secret, real_username, client));
    }
    let reply = cognito(
        idp,
        "RespondToAuthChallenge",
        &json!({"ChallengeName": "PASSWORD_VERIFIER", "ClientId": client, "ChallengeResponses": answers}),
    );
    if reply.status != 200 {
        return Err(Failed(reply.status, reply.text));
    }
    Ok(reply.json())
}

/// Answers a `Session` challenge on the public client.
fn respond(idp: &LocalIdp, challenge: &str, session: &Value, answers: Value) -> Reply {
    cognito(
        idp,
        "RespondToAuthChallenge",
        &json!({"ChallengeName": challenge, "ClientId": "public", "Session": session,
                "ChallengeResponses": answers}),
    )
}

fn error_type(failed: &Failed) -> String {
    serde_json::from_str::<Value>(&failed.1).unwrap()["__type"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn decode_unverified(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn srp_login_with_the_right_password_returns_tokens_the_resource_accepts() {
    let idp = idp();
    let reply = srp_login(&idp, "public", None, "alice", "Passw0rd!").unwrap();
    let result = &reply["AuthenticationResult"];
    assert_eq!(result["TokenType"], "Bearer");
    assert_eq!(result["ExpiresIn"], 3600);
    assert!(result["RefreshToken"].is_string());
    let access = result["AccessToken"].as_str().unwrap();
    let id = result["IdToken"].as_str().unwrap();
    let claims = decode_unverified(access);
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["client_id"], "public");
    assert_eq!(claims["token_use"], "access");
    let id_claims = decode_unverified(id);
    assert_eq!(id_claims["aud"], "public");
    assert_eq!(id_claims["token_use"], "id");
    assert_eq!(id_claims["cognito:username"], "alice");
    assert_eq!(id_claims["sub"], claims["sub"]);
    // As Cognito issues them: the ID token names the user and client only as
    // `cognito:username` and `aud`.
    assert!(id_claims.get("username").is_none(), "{id_claims}");
    assert!(id_claims.get("client_id").is_none(), "{id_claims}");
    assert!(id_claims["auth_time"].is_u64());
    assert_eq!(claims["auth_time"], id_claims["auth_time"]);

    assert_eq!(
        get_protected(&idp, Some(&format!("Bearer {id}"))).status,
        200
    );
    assert_eq!(idp.last_token_use().as_deref(), Some("id"));
    assert_eq!(
        get_protected(&idp, Some(&format!("Bearer {access}"))).status,
        200
    );
    assert_eq!(idp.last_token_use().as_deref(), Some("access"));
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
}

#[test]
fn srp_login_with_a_wrong_password_or_unknown_user_is_refused() {
    let idp = idp();
    let wrong = srp_login(&idp, "public", None, "alice", "wrong").unwrap_err();
    assert_eq!(
        (wrong.0, error_type(&wrong).as_str()),
        (400, "NotAuthorizedException")
    );
    let unknown = srp_login(&idp, "public", None, "zed", "x").unwrap_err();
    assert_eq!(error_type(&unknown), "UserNotFoundException");
}

#[test]
fn srp_answers_need_cognitos_timestamp_and_a_fresh_secret_block() {
    let idp = idp();
    let ten_minutes_ago = SystemTime::now() - std::time::Duration::from_secs(600);
    let now = math::cognito_timestamp(SystemTime::now());
    // The right weekday for the date, with a neighbour's name instead.
    let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today = weekdays.iter().position(|d| now.starts_with(d)).unwrap();
    let wrong_weekday = format!("{}{}", weekdays[(today + 1) % 7], &now[3..]);
    let (head, tail) = now.split_at(8);
    let padded_day = match tail.split_once(' ') {
        Some((day, rest)) if day.len() == 1 => format!("{head}0{day} {rest}"),
        _ => "Thu Dec 03 09:05:07 UTC 2026".to_owned(),
    };
    // Cognito answers each as a wrong password, even though the signature is right for what
    // was sent; none of them counts toward the lockout.
    for timestamp in [
        padded_day,
        wrong_weekday,
        math::cognito_timestamp(ten_minutes_ago),
        String::new(),
    ] {
        let refused = srp_login_with(
            &idp,
            "public",
            None,
            "alice",
            "Passw0rd!",
            timestamp.clone(),
        )
        .unwrap_err();
        let expected = if timestamp.is_empty() {
            "InvalidParameterException"
        } else {
            "NotAuthorizedException"
        };
        assert_eq!(error_type(&refused), expected, "{timestamp:?}");
    }
    assert_eq!(idp.failed_logins("alice"), 0);

    let replay = cognito(
        &idp,
        "RespondToAuthChallenge",
        &json!({"ChallengeName": "PASSWORD_VERIFIER", "ClientId": "public", "ChallengeResponses": {
            "USERNAME": "alice", "PASSWORD_CLAIM_SECRET_BLOCK": "AAAA",
            "PASSWORD_CLAIM_SIGNATURE": "x", "TIMESTAMP": now}}),
    );
    assert_eq!(replay.json()["__type"], "NotAuthorizedException");
}

#[test]
fn wrong_passwords_lock_the_user_out_until_unlocked() {
    let idp = idp();
    for attempt in 1..=5 {
        let wrong = srp_login(&idp, "public", None, "alice", "wrong").unwrap_err();
        assert!(
            wrong.1.contains("Incorrect username or password"),
            "{}",
            wrong.1
        );
        assert_eq!(idp.failed_logins("alice"), attempt);
    }
    // Locked: even the right password is refused, through either flow.
    let locked = srp_login(&idp, "public", None, "alice", "Passw0rd!").unwrap_err();
    assert!(
        locked.1.contains("Password attempts exceeded"),
        "{}",
        locked.1
    );
    let locked = password_auth(&idp, "public", "alice", "Passw0rd!");
    assert!(
        locked.text.contains("Password attempts exceeded"),
        "{}",
        locked.text
    );
    idp.unlock("alice");
    srp_login(&idp, "public", None, "alice", "Passw0rd!").unwrap();
    assert_eq!(idp.failed_logins("alice"), 0);
}

#[test]
fn prevent_user_existence_errors_answers_unknown_users_as_wrong_passwords() {
    let idp = LocalIdp::builder()
        .client("public", None)
        .user("alice", "Passw0rd!")
        .prevent_user_existence_errors()
        .start()
        .unwrap();
    // The unknown user gets a PASSWORD_VERIFIER challenge like anyone, then the same error
    // as a wrong password.
    let unknown = srp_login(&idp, "public", None, "zed", "x").unwrap_err();
    let wrong = srp_login(&idp, "public", None, "alice", "x").unwrap_err();
    assert_eq!(unknown.1, wrong.1);
    assert_eq!(error_type(&unknown), "NotAuthorizedException");
    let unknown = password_auth(&idp, "public", "zed", "x");
    assert_eq!(unknown.json()["__type"], "NotAuthorizedException");
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 2);
}

#[test]
fn secret_hash_is_required_and_checked_for_a_client_with_a_secret() {
    let idp = idp();
    srp_login(&idp, "confidential", Some(SECRET), "alice", "Passw0rd!").unwrap();
    let missing = srp_login(&idp, "confidential", None, "alice", "Passw0rd!").unwrap_err();
    assert_eq!(error_type(&missing), "NotAuthorizedException");
    assert!(missing.1.contains("configured for secret"));
    let wrong = srp_login(&idp, "confidential", Some("other"), "alice", "Passw0rd!").unwrap_err();
    assert_eq!(error_type(&wrong), "NotAuthorizedException");

    let reply = password_auth(&idp, "confidential", "alice", "Passw0rd!");
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn an_email_alias_logs_in_and_the_pool_answers_with_the_real_user_name() {
    let idp = idp();
    // srp_login answers with the USERNAME from the challenge and hashes with it.
    let reply = srp_login(
        &idp,
        "confidential",
        Some(SECRET),
        "carol@example.com",
        "C4rol!",
    )
    .unwrap();
    let id = reply["AuthenticationResult"]["IdToken"].as_str().unwrap();
    assert_eq!(decode_unverified(id)["email"], "carol@example.com");
    assert_eq!(decode_unverified(id)["cognito:username"], "carol");

    let reply = password_auth(&idp, "public", "carol@example.com", "C4rol!");
    assert_eq!(reply.status, 200);
}

#[test]
fn user_password_auth_checks_password_and_status() {
    let idp = idp();
    assert_eq!(
        password_auth(&idp, "public", "alice", "Passw0rd!").status,
        200
    );
    let cases = [
        ("alice", "wrong", "NotAuthorizedException"),
        ("nobody", "x", "UserNotFoundException"),
        ("frank", "Fr4nk!", "UserNotConfirmedException"),
        ("grace", "Gr4ce!", "PasswordResetRequiredException"),
    ];
    for (user, password, expected) in cases {
        let reply = password_auth(&idp, "public", user, password);
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["__type"], expected, "{user}");
    }
    // Status errors come only after a correct password.
    let reply = password_auth(&idp, "public", "frank", "wrong");
    assert_eq!(reply.json()["__type"], "NotAuthorizedException");
}

#[test]
fn new_password_required_sets_the_password() {
    let idp = idp();
    let reply = srp_login(&idp, "public", None, "bob", "Pw0rd!").unwrap();
    assert_eq!(reply["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let session = reply["Session"].as_str().unwrap();
    let wrong_session = respond(
        &idp,
        "NEW_PASSWORD_REQUIRED",
        &json!("forged"),
        json!({"USERNAME": "bob", "NEW_PASSWORD": "N3w!"}),
    );
    assert_eq!(wrong_session.json()["__type"], "NotAuthorizedException");
    let done = respond(
        &idp,
        "NEW_PASSWORD_REQUIRED",
        &json!(session),
        json!({"USERNAME": "bob", "NEW_PASSWORD": "N3w!"}),
    );
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.json()["AuthenticationResult"]["AccessToken"].is_string());
    // The session was used up; the new password works, the old doesn't.
    let reused = respond(
        &idp,
        "NEW_PASSWORD_REQUIRED",
        &json!(session),
        json!({"USERNAME": "bob", "NEW_PASSWORD": "N3w!"}),
    );
    assert_eq!(reused.json()["__type"], "NotAuthorizedException");
    let reply = srp_login(&idp, "public", None, "bob", "N3w!").unwrap();
    assert!(reply["AuthenticationResult"]["AccessToken"].is_string());
    assert!(srp_login(&idp, "public", None, "bob", "Pw0rd!").is_err());
}

#[test]
fn software_token_mfa_takes_the_current_totp_code() {
    let idp = idp();
    let reply = srp_login(&idp, "public", None, "dave", "D4ve!").unwrap();
    assert_eq!(reply["ChallengeName"], "SOFTWARE_TOKEN_MFA");
    let session = reply["Session"].as_str().unwrap();
    let answer = |code: &str| {
        respond(
            &idp,
            "SOFTWARE_TOKEN_MFA",
            &json!(session),
            json!({"USERNAME": "dave", "SOFTWARE_TOKEN_MFA_CODE": code}),
        )
    };
    let right = totp_code(TOTP_SECRET, SystemTime::now());
    // A code from an hour ago is wrong whatever the current 30-second step is.
    let stale = totp_code(TOTP_SECRET, SystemTime::now() - Duration::from_secs(3600));
    let wrong = if stale == right {
        "000000".to_owned()
    } else {
        stale
    };
    assert_eq!(answer(&wrong).json()["__type"], "CodeMismatchException");
    let done = answer(&right);
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.json()["AuthenticationResult"]["IdToken"].is_string());

    // The same code again, in a new login: refused, as Cognito refuses a TOTP code used
    // once (an observer of one login cannot replay its code).
    let again = srp_login(&idp, "public", None, "dave", "D4ve!").unwrap();
    let session = again["Session"].as_str().unwrap();
    let reused = respond(
        &idp,
        "SOFTWARE_TOKEN_MFA",
        &json!(session),
        json!({"USERNAME": "dave", "SOFTWARE_TOKEN_MFA_CODE": right}),
    );
    assert_eq!(reused.json()["__type"], "CodeMismatchException");
}

#[test]
fn sms_mfa_takes_the_configured_code() {
    let idp = idp();
    let reply = password_auth(&idp, "public", "erin", "Er1n!").json();
    assert_eq!(reply["ChallengeName"], "SMS_MFA");
    let done = respond(
        &idp,
        "SMS_MFA",
        &reply["Session"],
        json!({"USERNAME": "erin", "SMS_MFA_CODE": "424242"}),
    );
    assert_eq!(done.status, 200, "{}", done.text);
}

#[test]
fn refresh_token_auth_renews_without_a_new_refresh_token() {
    let idp = idp();
    let login = srp_login(
        &idp,
        "confidential",
        Some(SECRET),
        "carol@example.com",
        "C4rol!",
    )
    .unwrap();
    let refresh = login["AuthenticationResult"]["RefreshToken"]
        .as_str()
        .unwrap();
    let renew = |flow: &str, hash_user: &str| {
        cognito(
            &idp,
            "InitiateAuth",
            &json!({"AuthFlow": flow, "ClientId": "confidential", "AuthParameters": {
                "REFRESH_TOKEN": refresh, "SECRET_HASH": secret_hash(hash_user)}}),
        )
    };
    // The alias is not the user name: its hash is refused.
    assert_eq!(
        renew("REFRESH_TOKEN_AUTH", "carol@example.com").json()["__type"],
        "NotAuthorizedException"
    );
    let auth_time =
        decode_unverified(login["AuthenticationResult"]["IdToken"].as_str().unwrap())["auth_time"]
            .clone();
    for flow in ["REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"] {
        let reply = renew(flow, "carol");
        assert_eq!(reply.status, 200, "{}", reply.text);
        let result = &reply.json()["AuthenticationResult"];
        assert!(result.get("RefreshToken").is_none());
        assert!(idp.verify_access_token(result["AccessToken"].as_str().unwrap()));
        // auth_time is when the user logged in, not when the tokens were renewed.
        for token in ["AccessToken", "IdToken"] {
            let claims = decode_unverified(result[token].as_str().unwrap());
            assert_eq!(claims["auth_time"], auth_time, "{token}");
        }
    }
    idp.revoke_refresh_tokens();
    assert_eq!(
        renew("REFRESH_TOKEN_AUTH", "carol").json()["__type"],
        "NotAuthorizedException"
    );
}

// ---------------------------------------------------------------- the example server

/// `examples/local_idp` started with `args`, and the URL it prints; `None` when the example
/// is not built (`cargo test` builds examples; `cargo test --test local_idp` alone does
/// not), which fails instead when peers are required.
fn example_server(args: &[&str]) -> Option<(std::process::Child, String)> {
    // Cargo builds examples next to the test binaries' `deps` directory.
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = examples.join(format!("local_idp{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        assert!(
            std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the example is not built: {}",
            path.display()
        );
        eprintln!("skipped: the example is not built; run the whole suite");
        return None;
    }
    let mut child = std::process::Command::new(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    Some((child, url))
}

#[test]
fn the_example_server_prints_its_url_and_serves() {
    let Some((mut child, url)) = example_server(&[
        "--port",
        "0",
        "--client-id",
        "cli",
        "--client-secret",
        "cs",
        "--user",
        "alice:Pass:w0rd!",
        "--user",
        "bob:Pw0rd!:FORCE_CHANGE_PASSWORD",
    ]) else {
        return;
    };
    let reply = into_reply(agent().post(&format!("{url}/oauth2/token")).send_form([
        ("grant_type", "client_credentials"),
        ("client_id", "cli"),
        ("client_secret", "cs"),
    ]));
    let login = into_reply(
        agent()
            .post(&format!("{url}/"))
            .header("X-Amz-Target", "AWSCognitoIdentityProviderService.InitiateAuth")
            .send(
                json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "cli", "AuthParameters": {
                    "USERNAME": "bob", "PASSWORD": "Pw0rd!", "SECRET_HASH": math::secret_hash("cs", "bob", "cli")}})
                .to_string(),
            ),
    );
    let alice = into_reply(
        agent()
            .post(&format!("{url}/"))
            .header("X-Amz-Target", "AWSCognitoIdentityProviderService.InitiateAuth")
            .send(
                json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "cli", "AuthParameters": {
                    "USERNAME": "alice", "PASSWORD": "Pass:w0rd!", "SECRET_HASH": math::secret_hash("cs", "alice", "cli")}})
                .to_string(),
            ),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(login.json()["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    assert_eq!(alice.status, 200, "{}", alice.text);
}

/// What the CLI (or any client) needs of the example: several app clients, SRP users with
/// MFA, and ID tokens that `SrpAuthorizer` verifies with its defaults.
#[test]
fn the_example_server_takes_several_clients_and_srp_users() {
    use en_core_auth::srp::SrpAuthorizer;
    use en_core_auth::{Authorizer, ClientInfo};
    let Some((mut child, url)) = example_server(&[
        "--port",
        "0",
        "--pool-id",
        "eu-west-1_Example",
        "--client",
        "mobile-app",
        "--client",
        "backend:s3cret",
        "--user",
        "alice:Passw0rd!",
        "--user",
        "dave:D4ve!",
        "--totp",
        "dave:12345678901234567890",
    ]) else {
        return;
    };
    let login = |client: ClientInfo, user: &str, password: &str| {
        SrpAuthorizer::new(client, "eu-west-1_Example", user, password)
            .unwrap()
            .with_endpoint(&url)
            .unwrap()
    };
    let public = login(ClientInfo::new("mobile-app", ""), "alice", "Passw0rd!").authorize();
    let secret = login(ClientInfo::new("backend", "s3cret"), "alice", "Passw0rd!").authorize();
    let wrong_secret = login(ClientInfo::new("backend", "nope"), "alice", "Passw0rd!").authorize();
    let mfa = login(ClientInfo::new("mobile-app", ""), "dave", "D4ve!")
        .with_challenge_handler(|challenge: &en_core_auth::srp::Challenge| {
            assert_eq!(challenge.name(), "SOFTWARE_TOKEN_MFA");
            Ok(totp_code(b"12345678901234567890", SystemTime::now()))
        })
        .authorize();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(public.unwrap().id_token().is_some());
    assert!(secret.unwrap().id_token().is_some());
    assert_eq!(
        wrong_secret.unwrap_err().kind(),
        en_core_auth::ErrorKind::CredentialsRejected
    );
    assert!(mfa.unwrap().id_token().is_some());
}

// ---------------------------------------------------------------- private_key_jwt

const EC_KEY: &str = include_str!("keys/private_key_jwt_ec.pem");
const EC_PUBLIC: &str = include_str!("keys/private_key_jwt_ec.pub.pem");
const RSA_KEY: &str = include_str!("keys/private_key_jwt_rsa.pem");
const RSA_PUBLIC: &str = include_str!("keys/private_key_jwt_rsa.pub.pem");

fn jwt_idp() -> LocalIdp {
    LocalIdp::builder()
        .private_key_jwt_client("ec-client", EC_PUBLIC)
        .private_key_jwt_client("rsa-client", RSA_PUBLIC)
        .start()
        .unwrap()
}

/// A client assertion signed by the test key for `alg` (EC for ES256, else RSA).
fn assertion(alg: jsonwebtoken::Algorithm, claims: Value) -> String {
    let key = match alg {
        jsonwebtoken::Algorithm::ES256 => {
            jsonwebtoken::EncodingKey::from_ec_pem(EC_KEY.as_bytes()).unwrap()
        }
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
}

/// Assertion claims expiring `lifetime` seconds from now (negative: already expired).
fn claims_for(client: &str, aud: &str, jti: &str, lifetime: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"iss": client, "sub": client, "aud": aud, "jti": jti, "iat": now, "exp": now + lifetime})
}

fn assertion_request(idp: &LocalIdp, assertion: &str, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    token_request(idp, None, &form)
}

#[test]
fn private_key_jwt_clients_authenticate_with_signed_assertions() {
    use jsonwebtoken::Algorithm::{ES256, PS256, RS256};
    let idp = jwt_idp();
    let token_url = idp.token_url();
    let cases = [
        (ES256, "ec-client", token_url.as_str(), "jti-1"),
        (RS256, "rsa-client", token_url.as_str(), "jti-2"),
        (PS256, "rsa-client", &idp.issuer(), "jti-3"),
    ];
    for (alg, client, aud, jti) in cases {
        let signed = assertion(alg, claims_for(client, aud, jti, 60));
        let reply = assertion_request(&idp, &signed, &[("client_id", client)]);
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text);
        let token = reply.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(decode_unverified(&token)["client_id"], client);
    }
    // Without client_id the assertion's sub names the client.
    let signed = assertion(ES256, claims_for("ec-client", &token_url, "jti-4", 60));
    assert_eq!(assertion_request(&idp, &signed, &[]).status, 200);
    // A jti is good once.
    let reply = assertion_request(&idp, &signed, &[]);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_client");
}

#[test]
fn bad_client_assertions_are_refused() {
    use jsonwebtoken::Algorithm::{ES256, RS256};
    let idp = jwt_idp();
    let token_url = idp.token_url();
    let refused = [
        // Signed by the other client's key.
        assertion(RS256, claims_for("ec-client", &token_url, "a", 60)),
        // For another server.
        assertion(
            ES256,
            claims_for("ec-client", "https://elsewhere.example/token", "b", 60),
        ),
        // Expired, or living too long.
        assertion(ES256, claims_for("ec-client", &token_url, "c", -60)),
        assertion(ES256, claims_for("ec-client", &token_url, "d", 3600)),
        // iss is not the client.
        assertion(ES256, {
            let mut c = claims_for("ec-client", &token_url, "e", 60);
            c["iss"] = json!("someone-else");
            c
        }),
        // No jti.
        assertion(ES256, {
            let mut c = claims_for("ec-client", &token_url, "f", 60);
            c.as_object_mut().unwrap().remove("jti");
            c
        }),
        "not.a.jwt".to_owned(),
    ];
    for signed in &refused {
        let reply = assertion_request(&idp, signed, &[]);
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.json()["error"], "invalid_client");
    }
    let good = assertion(ES256, claims_for("ec-client", &token_url, "g", 60));
    let wrong_type = token_request(
        &idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &good),
        ],
    );
    assert_eq!(wrong_type.json()["error"], "invalid_client");
    let two_methods = assertion_request(&idp, &good, &[("client_secret", "x")]);
    assert_eq!(two_methods.status, 400);
    assert_eq!(two_methods.json()["error"], "invalid_request");
    // The client id alone is no authentication for a private_key_jwt client.
    let bare = token_request(
        &idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "ec-client"),
        ],
    );
    assert_eq!(bare.status, 401);
    // The unused good assertion still works after all that.
    assert_eq!(assertion_request(&idp, &good, &[]).status, 200);

    let err = LocalIdp::builder()
        .private_key_jwt_client("x", "not a key")
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), en_core_auth::ErrorKind::Configuration);
}

#[test]
fn one_server_serves_many_threads_at_once() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let idp = idp();
    shareable(&idp);
    // Each of the 8 requests is held until all 8 are being served at once: a server that
    // handles one at a time never gets there, and answers 503 after the rendezvous' wait.
    idp.fail_next(8, Fault::Rendezvous(8));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| assert_eq!(client_credentials_post(&idp).status, 200));
        }
    });
    assert_eq!(idp.requests(Operation::Token), 8);
    // Served normally afterwards.
    assert_eq!(client_credentials_post(&idp).status, 200);
}

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_cognito_requests_get_client_errors_never_a_crash() {
    let idp = idp();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let flows = [
        "USER_SRP_AUTH",
        "USER_PASSWORD_AUTH",
        "REFRESH_TOKEN_AUTH",
        "CUSTOM_AUTH",
        "USER_AUTH",
        "X",
        "",
    ];
    let challenges = [
        "PASSWORD_VERIFIER",
        "NEW_PASSWORD_REQUIRED",
        "SOFTWARE_TOKEN_MFA",
        "SMS_MFA",
        "EMAIL_OTP",
        "SMS_OTP",
        "SELECT_MFA_TYPE",
        "MFA_SETUP",
        "CUSTOM_CHALLENGE",
        "SELECT_CHALLENGE",
        "DEVICE_SRP_AUTH",
        "DEVICE_PASSWORD_VERIFIER",
        "?",
    ];
    let names = [
        "USERNAME",
        "SRP_A",
        "PASSWORD",
        "SECRET_HASH",
        "REFRESH_TOKEN",
        "TIMESTAMP",
        "PASSWORD_CLAIM_SECRET_BLOCK",
        "PASSWORD_CLAIM_SIGNATURE",
        "NEW_PASSWORD",
        "SOFTWARE_TOKEN_MFA_CODE",
        "DEVICE_KEY",
        "PREFERRED_CHALLENGE",
        "ANSWER",
        "EMAIL_OTP_CODE",
    ];
    let values = [
        "alice",
        "bob",
        "dave",
        "carol@example.com",
        "0",
        "ff",
        "AAAA",
        "",
        "Passw0rd!",
        "Tue Dec 3 09:05:07 UTC 2026",
        "\u{0}\u{ffff}",
        "123456",
        "PASSWORD_SRP",
        "EMAIL_OTP",
        "us-east-1_00000000-0000-4000-8000-000000000000",
    ];
    for round in 0..300 {
        let mut params = serde_json::Map::new();
        for _ in 0..rng.next() % 6 {
            params.insert(rng.pick(&names).to_owned(), json!(rng.pick(&values)));
        }
        let client = rng.pick(&["public", "confidential", "nope"]);
        let (op, body) = if rng.next().is_multiple_of(2) {
            let body =
                json!({"AuthFlow": rng.pick(&flows), "ClientId": client, "AuthParameters": params});
            ("InitiateAuth", body)
        } else if rng.next().is_multiple_of(3) {
            // The other operations take their fields at the top level.
            let op = rng.pick(&[
                "ConfirmDevice",
                "UpdateDeviceStatus",
                "GetTokensFromRefreshToken",
                "RevokeToken",
                "AssociateSoftwareToken",
                "VerifySoftwareToken",
            ]);
            params.insert("ClientId".into(), json!(client));
            for field in [
                "AccessToken",
                "DeviceKey",
                "RefreshToken",
                "Token",
                "Session",
                "UserCode",
            ] {
                if rng.next().is_multiple_of(2) {
                    params.insert(field.into(), json!(rng.pick(&values)));
                }
            }
            (op, Value::Object(params))
        } else {
            let body = json!({"ChallengeName": rng.pick(&challenges), "ClientId": client,
                "Session": rng.pick(&values), "ChallengeResponses": params});
            ("RespondToAuthChallenge", body)
        };
        let mut bytes = body.to_string().into_bytes();
        if round % 5 == 0 {
            // Also cut some bodies short at a random place.
            let cut = (rng.next() % bytes.len() as u64) as usize;
            bytes.truncate(cut);
        }
        let reply = cognito_raw(&idp, Some(op), bytes);
        assert!(
            reply.status == 200 || reply.status == 400,
            "round {round}: {} {}",
            reply.status,
            reply.text
        );
        assert!(reply.json().is_object());
    }
    // Random wrong passwords may have locked alice out, as Cognito would.
    idp.unlock("alice");
    assert_eq!(
        password_auth(&idp, "public", "alice", "Passw0rd!").status,
        200
    );
}
