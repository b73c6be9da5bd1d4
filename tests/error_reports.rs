//! What errors say: the endpoint (scheme, host, port, path; never a query), what came back
//! when JSON was expected, and the same kind for the same HTTP status whether the request
//! was OAuth2's or Cognito's.

#[path = "support/http_server.rs"]
mod http_server;

use std::time::Duration;

use en_core_auth::http::{HttpClient, RetryPolicy};
use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind};
use http_server::{Reply, TestServer};

fn http(attempts: u32) -> HttpClient {
    HttpClient::new().with_retry(RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_retry_after: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
}

/// A client-credentials login against `token_url`.
fn oauth2(token_url: &str, attempts: u32) -> Error {
    ClientCredentials::new(ClientInfo::new("svc", "s3cr3t-client-secret"), token_url)
        .unwrap()
        .with_http_client(http(attempts))
        .authorize()
        .unwrap_err()
}

/// An SRP login against the Cognito API at `endpoint`.
fn srp(endpoint: &str, attempts: u32) -> Error {
    SrpAuthorizer::new(
        ClientInfo::new("app", ""),
        "eu-west-1_Test",
        "alice",
        "s3cr3t-password",
    )
    .unwrap()
    .with_endpoint(endpoint)
    .unwrap()
    .with_http_client(http(attempts))
    .authorize()
    .unwrap_err()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_names(err: &Error, endpoint: &str) {
    assert_eq!(err.endpoint(), Some(endpoint), "{err}");
    let shown = err.to_string();
    assert!(shown.contains(endpoint), "{shown}");
    for secret in ["s3cr3t", "tenant=", "?"] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
    }
}

#[test]
fn transport_errors_name_the_endpoint() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let err = oauth2(&format!("{base}/oauth2/token?tenant=s3cr3t"), 1);
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_names(&err, &format!("{base}/oauth2/token"));
    let err = srp(&format!("{base}/cognito?tenant=s3cr3t"), 1);
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_names(&err, &format!("{base}/cognito"));
}

#[test]
fn server_errors_name_the_endpoint() {
    let server = TestServer::start(|_| Reply::status(503));
    let err = oauth2(&server.url("/oauth2/token?tenant=s3cr3t"), 1);
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_names(&err, &server.url("/oauth2/token"));
    let err = srp(&server.url("/?tenant=s3cr3t"), 1);
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_names(&err, &server.url("/"));
}

/// A captive portal or an SSO page answering where JSON was expected: the error says what
/// came (content type, a short clean start of the page), never a secret or a control
/// character, and stays short.
#[test]
fn an_html_page_where_json_was_expected_says_so() {
    let token_like = "eyJhbGciOiJSUzI1NiJ9eyJzdWIiOiJhbGljZSJ9sig";
    let page = format!(
        "<!DOCTYPE html><html><head><title>Hotel\u{7} Wi-Fi\r\nlogin</title></head>\
         <body><input name=t value={token_like}>{}</body></html>",
        "x ".repeat(5000)
    );
    let server = TestServer::start(move |_| {
        Reply::ok(&page).with_header("content-type", "text/html; charset=utf-8")
    });
    for err in [oauth2(&server.url("/token"), 1), srp(&server.url("/"), 1)] {
        assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
        let shown = err.to_string();
        assert!(shown.contains("HTML page"), "{shown}");
        assert!(shown.contains("text/html; charset=utf-8"), "{shown}");
        assert!(
            shown.contains("<title>Hotel Wi-Fi login</title>"),
            "{shown}"
        );
        assert!(!shown.contains(token_like), "{shown}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.len() < 400, "{} bytes: {shown}", shown.len());
    }
}

/// The same status without an error code of the protocol's own (a gateway's or a proxy's
/// page) means the same for OAuth2 and for Cognito, and is retried the same.
#[test]
fn srp_and_oauth2_classify_each_status_alike() {
    use ErrorKind::*;
    let table = [
        (301, Configuration, false),
        (302, Configuration, false),
        (307, Configuration, false),
        (400, Configuration, false),
        (401, CredentialsRejected, false),
        (403, CredentialsRejected, false),
        (404, Configuration, false),
        (405, Configuration, false),
        (409, Configuration, false),
        (413, Configuration, false),
        (408, Server, true),
        (429, Server, true),
        (500, Server, true),
        (502, Server, true),
        (503, Server, true),
        (504, Server, true),
    ];
    for (status, kind, retried) in table {
        let server = TestServer::start(move |_| Reply {
            status,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html><body>Bad things</body></html>".to_vec(),
        });
        let oauth2_error = oauth2(&server.url("/token"), 2);
        let oauth2_requests = server.count();
        let srp_error = srp(&server.url("/"), 2);
        let srp_requests = server.count() - oauth2_requests;
        assert_eq!(
            (oauth2_error.kind(), srp_error.kind()),
            (kind, kind),
            "HTTP {status}: {oauth2_error} / {srp_error}"
        );
        let sent = if retried { 2 } else { 1 };
        assert_eq!(
            (oauth2_requests, srp_requests),
            (sent, sent),
            "HTTP {status}"
        );
    }
}
