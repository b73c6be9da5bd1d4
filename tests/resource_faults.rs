//! A login from an API's URL against an in-process API and authorization server, for what
//! the MCP SDK's server does not do: a server that only takes confidential clients
//! (`client_secret_post`), a registration endpoint that refuses the client, and a server
//! with no registration endpoint.

#[path = "support/http_server.rs"]
mod http_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use en_core_auth::oauth2::AuthorizationCode;
use en_core_auth::{Authorizer, Error, ErrorKind};
use http_server::{Reply, TestServer};
use serde_json::{Value, json};

#[derive(Clone, Copy)]
enum Registration {
    Confidential,
    Refused,
    Absent,
}

fn server(registration: Registration) -> TestServer {
    let base = Arc::new(OnceLock::<String>::new());
    let handler_base = Arc::clone(&base);
    let server = TestServer::start(move |seen| {
        let base = handler_base.get().cloned().unwrap_or_default();
        let json_reply = |status: u16, body: Value| Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        };
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/api") => Reply::status(401).with_header(
                "www-authenticate",
                &format!(r#"Bearer resource_metadata="{base}/meta""#),
            ),
            ("GET", "/meta") => json_reply(
                200,
                json!({"resource": format!("{base}/api"), "authorization_servers": [base]}),
            ),
            ("GET", "/.well-known/oauth-authorization-server") => {
                let mut metadata = json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                });
                if !matches!(registration, Registration::Absent) {
                    metadata["registration_endpoint"] = json!(format!("{base}/register"));
                }
                json_reply(200, metadata)
            }
            ("POST", "/register") => match registration {
                Registration::Refused => json_reply(
                    400,
                    json!({"error": "invalid_redirect_uri", "error_description": "no loopback here"}),
                ),
                _ => json_reply(
                    201,
                    json!({"client_id": "conf-client", "client_secret": "conf-s3cret",
                           "token_endpoint_auth_method": "client_secret_post",
                           "client_secret_expires_at": 0}),
                ),
            },
            ("POST", "/token") => json_reply(
                200,
                json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
                       "refresh_token": "rt-1"}),
            ),
            _ => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    server
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap();
    let bytes = raw.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A browser the authorization server approves at once: straight to the redirect URI.
fn browser(opened: &Arc<AtomicUsize>) -> impl FnMut(&str) -> Result<(), Error> + Send + 'static {
    let opened = Arc::clone(opened);
    move |url: &str| {
        opened.fetch_add(1, Ordering::SeqCst);
        let callback = format!(
            "{}?code=code-1&state={}",
            query_param(url, "redirect_uri"),
            query_param(url, "state")
        );
        std::thread::spawn(move || ureq::get(&callback).call().unwrap());
        Ok(())
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, v)| (n.to_owned(), query_param(&format!("?x={v}"), "x")))
        .collect()
}

#[test]
fn a_confidential_client_is_registered_and_authenticates_as_registered() {
    let server = server(Registration::Confidential);
    let dir = std::env::temp_dir().join(format!("en-core-auth-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut login = AuthorizationCode::for_resource(server.url("/api"))
        .registration_file(dir.join("clients.json"))
        .build()
        .unwrap()
        .with_timeout(Duration::from_secs(30))
        .with_browser(browser(&opened));
    let before = login.credential_set().cache_key();
    let token = login.authorize().unwrap();
    assert_eq!(token.access_token(), "at-1");
    assert_eq!(login.credential_set().cache_key(), before);
    let requests = server.requests();
    let register = requests.iter().find(|r| r.path == "/register").unwrap();
    let asked: Value = serde_json::from_slice(&register.body).unwrap();
    assert_eq!(asked["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(asked["redirect_uris"], json!(["http://127.0.0.1/"]));
    assert_eq!(
        asked["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let exchange = requests.iter().find(|r| r.path == "/token").unwrap();
    let fields = form(&exchange.body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("client_id"), Some("conf-client"));
    assert_eq!(field("client_secret"), Some("conf-s3cret"));
    assert_eq!(field("resource"), Some(server.url("/api").as_str()));
    assert!(exchange.header("authorization").is_none());
    // The secret is kept in the registration file only, never shown.
    assert!(!format!("{login:?}").contains("conf-s3cret"));
    let kept = std::fs::read_to_string(dir.join("clients.json")).unwrap();
    assert!(kept.contains("conf-s3cret"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_registration_is_a_configuration_error_and_no_browser_opens() {
    for (registration, says) in [
        (Registration::Refused, "invalid_redirect_uri"),
        (Registration::Absent, "client_info"),
    ] {
        let server = server(registration);
        let opened = Arc::new(AtomicUsize::new(0));
        let mut login = AuthorizationCode::for_resource(server.url("/api"))
            .build()
            .unwrap()
            .with_browser(browser(&opened));
        let err = login.authorize().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(format!("{err} {err:?}").contains(says), "{err:?}");
        assert_eq!(opened.load(Ordering::SeqCst), 0);
        assert!(!server.requests().iter().any(|r| r.path == "/token"));
    }
}

#[test]
fn plain_http_metadata_and_authorization_servers_off_loopback_are_refused() {
    // The API (on loopback) names metadata, or an authorization server, on plain HTTP
    // elsewhere: refused before anything is fetched there.
    let base = Arc::new(OnceLock::<String>::new());
    let handler_base = Arc::clone(&base);
    let api = TestServer::start(move |seen| {
        let base = handler_base.get().cloned().unwrap_or_default();
        match seen.path.as_str() {
            "/insecure-metadata" => Reply::status(401).with_header(
                "www-authenticate",
                r#"Bearer resource_metadata="http://metadata.example.com/meta""#,
            ),
            "/insecure-server" => Reply::status(401).with_header(
                "www-authenticate",
                &format!(r#"Bearer resource_metadata="{base}/meta""#),
            ),
            "/meta" => Reply::ok(
                &json!({"resource": format!("{base}/insecure-server"),
                        "authorization_servers": ["http://as.example.com"]})
                .to_string(),
            ),
            _ => Reply::status(404),
        }
    });
    base.set(api.base.clone()).unwrap();
    for (path, names) in [
        ("/insecure-metadata", "metadata.example.com"),
        ("/insecure-server", "as.example.com"),
    ] {
        let err = AuthorizationCode::for_resource(api.url(path))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.to_string().contains(names), "{err}");
    }
}
