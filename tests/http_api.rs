//! The HTTP calls and token-response parsing that authors of their own `Authorizer` use:
//! `HttpClient::{post_form, get, send_with_retries}`, `http::Reply`,
//! `oauth2::token_from_reply` and `Error::from_ureq`, against a real loopback server.

#[path = "support/http_server.rs"]
mod http_server;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use en_core_auth::http::{HttpClient, Reply, RetryPolicy};
use en_core_auth::oauth2::{ClientCredentials, OAuthError, token_from_reply};
use en_core_auth::{AuthMiddleware, ClientInfo, Error, ErrorKind};
use http_server::{Reply as Answer, TestServer};

/// Retries without waiting long: the tests count attempts, never time.
fn quick(attempts: u32) -> HttpClient {
    HttpClient::new().with_retry(RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..RetryPolicy::default()
    })
}

#[test]
fn post_form_sends_the_form_and_headers_and_returns_any_status() {
    let server = TestServer::start(|_| {
        Answer::ok(r#"{"error":"invalid_grant"}"#)
            .with_header("content-type", "application/json")
            .with_header("x-trace", "t-1")
    });
    let reply = quick(1)
        .post_form(
            &server.url("/token"),
            &[("x-client", "mine")],
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read write"),
            ],
        )
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("X-Trace"), Some("t-1"));
    assert_eq!(reply.body(), br#"{"error":"invalid_grant"}"#);
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("x-client"), Some("mine"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        "grant_type=client_credentials&scope=read+write"
    );
    // A refusal is a reply, not an error: the protocol decides what it means.
    let refused = TestServer::start(|_| Answer::status(401));
    let reply = quick(1).post_form(&refused.url("/t"), &[], &[]).unwrap();
    assert_eq!(reply.status(), 401);
}

#[test]
fn get_asks_for_json_and_the_size_cap_applies() {
    let server = TestServer::start(|seen| match seen.path.as_str() {
        "/big" => Answer::ok(&"x".repeat(4096)),
        _ => Answer::ok("{}"),
    });
    let reply = quick(1).get(&server.url("/jwks")).unwrap();
    assert_eq!(reply.body(), b"{}");
    assert_eq!(
        server.requests()[0].header("accept"),
        Some("application/json")
    );
    let err = quick(1)
        .with_max_response_size(1024)
        .get(&server.url("/big"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
}

#[test]
fn send_with_retries_retries_transient_statuses_and_returns_the_last_reply() {
    let server = TestServer::start(|_| Answer::status(503));
    let http = quick(3);
    let url = server.url("/token");
    let reply = http
        .send_with_retries(|| http.post_form(&url, &[], &[("grant_type", "x")]))
        .unwrap();
    assert_eq!(reply.status(), 503);
    assert_eq!(server.count(), 3);
    assert_eq!(
        token_from_reply(&reply).unwrap_err().kind(),
        ErrorKind::Server
    );

    // Transient, then good: the good one.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let server = TestServer::start(move |_| match counted.fetch_add(1, Ordering::SeqCst) {
        0 => Answer::status(429).with_header("retry-after", "0"),
        _ => Answer::ok(r#"{"access_token":"t2"}"#),
    });
    let url = server.url("/token");
    let reply = http
        .send_with_retries(|| http.post_form(&url, &[], &[]))
        .unwrap();
    assert_eq!(token_from_reply(&reply).unwrap().access_token(), "t2");
    assert_eq!(server.count(), 2);

    // A final answer is not retried.
    let server = TestServer::start(|_| Answer::status(400));
    let url = server.url("/token");
    let reply = http
        .send_with_retries(|| http.post_form(&url, &[], &[]))
        .unwrap();
    assert_eq!(reply.status(), 400);
    assert_eq!(server.count(), 1);
}

#[test]
fn send_with_retries_retries_transport_failures_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = quick(3);
    let attempts = Cell::new(0);
    let err = http
        .send_with_retries(|| {
            attempts.set(attempts.get() + 1);
            http.get(&format!("http://127.0.0.1:{port}/down"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(attempts.get(), 3);
    // Any other error ends at once.
    let attempts = Cell::new(0);
    let err = http
        .send_with_retries(|| {
            attempts.set(attempts.get() + 1);
            Err(Error::new(ErrorKind::Configuration, "no"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert_eq!(attempts.get(), 1);
}

#[test]
fn token_from_reply_reads_rfc_6749_answers() {
    let token = token_from_reply(&Reply::new(
        200,
        r#"{"access_token":"a","token_type":"bearer","expires_in":60,"refresh_token":"r"}"#,
    ))
    .unwrap();
    assert_eq!(token.access_token(), "a");
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.refresh_token(), Some("r"));
    assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
    // No expires_in: the documented default.
    let token = token_from_reply(&Reply::new(200, r#"{"access_token":"a"}"#)).unwrap();
    assert_eq!(
        token.lifetime(),
        Some(en_core_auth::oauth2::DEFAULT_LIFETIME)
    );

    for (status, body, kind, code) in [
        (
            400,
            r#"{"error":"invalid_grant"}"#,
            ErrorKind::CredentialsRejected,
            Some("invalid_grant"),
        ),
        (
            401,
            r#"{"error":"invalid_client"}"#,
            ErrorKind::CredentialsRejected,
            Some("invalid_client"),
        ),
        (
            400,
            r#"{"error":"invalid_request"}"#,
            ErrorKind::Configuration,
            Some("invalid_request"),
        ),
        (
            400,
            r#"{"error":"temporarily_unavailable"}"#,
            ErrorKind::Server,
            Some("temporarily_unavailable"),
        ),
        (
            200,
            r#"{"error":"invalid_client"}"#,
            ErrorKind::CredentialsRejected,
            Some("invalid_client"),
        ),
        (401, "", ErrorKind::CredentialsRejected, None),
        (
            404,
            "<html>Not Found</html>",
            ErrorKind::Configuration,
            None,
        ),
        (503, "", ErrorKind::Server, None),
        (
            200,
            "<html>portal</html>",
            ErrorKind::MalformedResponse,
            None,
        ),
        (
            200,
            r#"{"token_type":"bearer"}"#,
            ErrorKind::MalformedResponse,
            None,
        ),
    ] {
        let err = token_from_reply(&Reply::new(status, body)).unwrap_err();
        assert_eq!(err.kind(), kind, "{status} {body}");
        assert_eq!(
            err.downcast_ref::<OAuthError>().map(OAuthError::error),
            code,
            "{status} {body}"
        );
    }
}

#[test]
fn token_from_reply_errors_name_the_endpoint_of_a_real_reply() {
    let server = TestServer::start(|_| Answer::status(500));
    let reply = quick(1)
        .post_form(&server.url("/oauth2/token?x=1"), &[], &[])
        .unwrap();
    let err = token_from_reply(&reply).unwrap_err();
    let port = server
        .url("")
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let expected = format!("http://127.0.0.1:{port}/oauth2/token");
    assert_eq!(err.endpoint(), Some(expected.as_str()));
}

#[test]
fn from_ureq_gets_the_crate_error_back_through_the_middleware() {
    let idp = TestServer::start(|_| {
        Answer::ok(r#"{"error":"invalid_client"}"#).with_header("content-type", "application/json")
    });
    let login = ClientCredentials::new(ClientInfo::new("svc", "wrong"), idp.url("/token"))
        .unwrap()
        .with_http_client(quick(1));
    let auth = AuthMiddleware::new(login);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .middleware(auth)
        .build()
        .into();
    let api = TestServer::start(|_| Answer::ok("hello"));
    let returned = agent.get(api.url("/data")).call().unwrap_err();
    let ours = Error::from_ureq(&returned).expect("the crate's error");
    assert_eq!(ours.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        ours.downcast_ref::<OAuthError>().map(OAuthError::error),
        Some("invalid_client")
    );
    assert_eq!(api.count(), 0);
    // ureq's own failures are not the crate's.
    let plain: ureq::Agent = ureq::Agent::config_builder().build().into();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = plain
        .get(format!("http://127.0.0.1:{port}/"))
        .call()
        .unwrap_err();
    assert!(Error::from_ureq(&refused).is_none());
}
