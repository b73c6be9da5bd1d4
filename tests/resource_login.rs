//! A login that starts from an API's URL alone (AuthorizationCode::for_resource) against
//! the MCP TypeScript SDK's own server pieces (tests/peers/mcp/server.mjs): mcpAuthRouter
//! (RFC 8414 metadata, RFC 7591 registration, authorization with PKCE, tokens),
//! mcpAuthMetadataRouter / metadataHandler (RFC 9728) and requireBearerAuth (the 401 with
//! `resource_metadata`; tokens for another resource refused), with an in-memory provider
//! that approves every login at once and binds codes and refresh tokens to their client and
//! resource. Hostile APIs are played by in-process servers.

#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/node_peer.rs"]
mod node_peer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use en_core_auth::oauth2::AuthorizationCode;
use en_core_auth::store::FileStore;
use en_core_auth::{AuthMiddleware, Authorizer, Error, ErrorKind};
use http_server::{Reply, TestServer};
use node_peer::NodePeer;
use serde_json::Value;

fn start() -> Option<NodePeer> {
    node_peer::start("mcp", "@modelcontextprotocol/sdk", &[], &[])
}

/// A browser that follows the authorization server's redirect to the loopback listener,
/// on another thread as a real browser is; counts how often it was opened.
fn browser(opened: &Arc<AtomicUsize>) -> impl FnMut(&str) -> Result<(), Error> + Send + 'static {
    let opened = Arc::clone(opened);
    move |url: &str| {
        opened.fetch_add(1, Ordering::SeqCst);
        let url = url.to_owned();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into();
            let reply = agent.get(&url).call().unwrap();
            let location = reply
                .headers()
                .get("location")
                .unwrap_or_else(|| panic!("no redirect from {url}: HTTP {}", reply.status()))
                .to_str()
                .unwrap()
                .to_owned();
            agent.get(&location).call().unwrap();
        });
        Ok(())
    }
}

fn login(peer: &NodePeer, api: &str, registrations: Option<&PathBuf>) -> AuthorizationCode {
    let mut builder = AuthorizationCode::for_resource(format!("{}/{api}", peer.base));
    if let Some(path) = registrations {
        builder = builder.registration_file(path);
    }
    builder
        .build()
        .unwrap()
        .with_timeout(Duration::from_secs(30))
}

/// The API's answer to `token`: its status and body.
fn call(peer: &NodePeer, api: &str, token: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut reply = agent
        .get(&format!("{}/{api}", peer.base))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = reply.status().as_u16();
    let body = reply.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The paths the peer was asked for, and the grants its provider saw.
fn seen(peer: &NodePeer) -> (Vec<String>, Vec<Value>) {
    let seen = peer.get_json("/seen");
    let paths = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    (paths, seen["grants"].as_array().unwrap().clone())
}

fn count(paths: &[String], path: &str) -> usize {
    paths.iter().filter(|p| p.as_str() == path).count()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-resource-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn discovery_from_the_challenge_registration_and_a_login_for_that_api() {
    let Some(peer) = start() else { return };
    let opened = Arc::new(AtomicUsize::new(0));
    let api = format!("{}/api-a", peer.base);
    let auth = login(&peer, "api-a", None).with_browser(browser(&opened));
    assert_eq!(auth.resource(), Some(api.as_str()));
    let before = auth.credential_set().cache_key();
    let middleware = AuthMiddleware::new(auth);
    let token = middleware.access_token().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let (status, body) = call(&peer, "api-a", &token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resource"], api.as_str());
    // A token for api-a is refused by api-b (requireBearerAuth's resource check).
    assert_eq!(call(&peer, "api-b", &token).0, 401);
    let (paths, grants) = seen(&peer);
    assert_eq!(count(&paths, "POST /register"), 1, "{paths:?}");
    let client = grants[0]["client_id"].as_str().unwrap().to_owned();
    for grant in &grants {
        assert_eq!(grant["resource"], api.as_str(), "{grant}");
        assert_eq!(grant["client_id"], client.as_str(), "{grant}");
    }
    let steps: Vec<&str> = grants.iter().map(|g| g["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["authorize", "authorization_code"]);
    // Every refresh names the resource too.
    middleware.invalidate();
    let renewed = middleware.access_token().unwrap();
    assert_ne!(renewed, token);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "a refresh opens no browser"
    );
    let (_, grants) = seen(&peer);
    assert_eq!(grants[2]["step"], "refresh_token");
    assert_eq!(grants[2]["resource"], api.as_str());
    assert_eq!(call(&peer, "api-a", &renewed).0, 200);
    // The same credential set after registration as before.
    let again = login(&peer, "api-a", None);
    assert_eq!(again.credential_set().cache_key(), before);
}

#[test]
fn discovery_from_the_challenge_only() {
    let Some(peer) = start() else { return };
    // api-d's document is only at the URL its challenge names; the origin's well-known
    // document (for the whole origin) would give another resource.
    let auth = login(&peer, "api-d", None);
    assert_eq!(
        auth.resource(),
        Some(format!("{}/api-d", peer.base).as_str())
    );
    let (paths, _) = seen(&peer);
    assert_eq!(count(&paths, "GET /custom-metadata/api-d"), 1, "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains("oauth-protected-resource")),
        "{paths:?}"
    );
}

#[test]
fn discovery_from_the_well_known_url() {
    let Some(peer) = start() else { return };
    // api-e's challenge names no document: the path-specific well-known URL has it.
    let auth = login(&peer, "api-e", None);
    assert_eq!(
        auth.resource(),
        Some(format!("{}/api-e", peer.base).as_str())
    );
    let (paths, _) = seen(&peer);
    assert_eq!(
        count(&paths, "GET /.well-known/oauth-protected-resource/api-e"),
        1,
        "{paths:?}"
    );
}

/// An in-process API on another origin that answers 401, with or without a challenge, and
/// serves `document` both where its challenge points and at its well-known URL.
fn hostile_api(challenge: bool, document: Value) -> TestServer {
    let document = document.to_string();
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let handler_base = Arc::clone(&base);
    let server = TestServer::start_on("127.0.0.1", move |seen| {
        let base = handler_base.get().cloned().unwrap_or_default();
        match seen.path.as_str() {
            "/api" if challenge => Reply::status(401).with_header(
                "www-authenticate",
                &format!(
                    r#"Bearer error="invalid_token", resource_metadata="{base}/meta", realm="x""#
                ),
            ),
            "/api" => Reply::status(401).with_header("www-authenticate", "Bearer realm=\"x\""),
            "/meta" | "/.well-known/oauth-protected-resource/api" => {
                Reply::ok(&document).with_header("content-type", "application/json")
            }
            _ => Reply::status(404),
        }
    });
    base.set(server.base.clone()).unwrap();
    server
}

#[test]
fn a_document_for_another_origin_is_refused_and_its_server_never_contacted() {
    let Some(peer) = start() else { return };
    for challenge in [true, false] {
        // The document claims to be for the real API on the peer's origin, and names the
        // peer as its authorization server: a login there would hand the hostile API a
        // token for the real one.
        let real_api = format!("{}/api-a", peer.base);
        let hostile = hostile_api(
            challenge,
            serde_json::json!({
                "resource": real_api,
                "authorization_servers": [format!("{}/", peer.base)],
            }),
        );
        let asked = format!("{}/api", hostile.base);
        let err = AuthorizationCode::for_resource(&asked).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        let text = err.to_string();
        assert!(text.contains(&real_api) && text.contains(&asked), "{text}");
    }
    let (paths, grants) = seen(&peer);
    assert!(
        paths.is_empty(),
        "the named server was contacted: {paths:?}"
    );
    assert!(grants.is_empty());
}

#[test]
fn a_challenge_naming_another_apis_document_is_refused() {
    let Some(peer) = start() else { return };
    let opened = Arc::new(AtomicUsize::new(0));
    let err = AuthorizationCode::for_resource(format!("{}/api-c", peer.base))
        .build()
        .map(|login| login.with_browser(browser(&opened)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}/api-b", peer.base))
            && text.contains(&format!("{}/api-c", peer.base)),
        "{text}"
    );
    let (paths, grants) = seen(&peer);
    // The API and the document it pointed at; nothing of the authorization server.
    assert_eq!(
        paths,
        [
            "GET /api-c",
            "GET /.well-known/oauth-protected-resource/api-b"
        ]
    );
    assert!(grants.is_empty());
    assert_eq!(opened.load(Ordering::SeqCst), 0);
}

#[test]
fn a_second_run_refreshes_with_the_kept_registration_and_no_browser() {
    let Some(peer) = start() else { return };
    let dir = temp_dir("second-run");
    let registrations = dir.join("clients.json");
    let opened = Arc::new(AtomicUsize::new(0));
    let run = |opened: &Arc<AtomicUsize>| {
        let auth = login(&peer, "api-a", Some(&registrations)).with_browser(browser(opened));
        let store = FileStore::in_dir(dir.join("tokens"), auth.credential_set().cache_key());
        AuthMiddleware::builder(auth).token_store(store).build()
    };
    let first = run(&opened);
    let token = first.access_token().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let (_, grants) = seen(&peer);
    let client = grants[0]["client_id"].as_str().unwrap().to_owned();
    drop(first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&registrations)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kept = std::fs::read_to_string(&registrations).unwrap();
    assert!(kept.contains(&client) && !kept.contains(&token));

    // The next run: the stored token, then a refresh with the same client, no browser.
    let second = run(&opened);
    assert_eq!(second.access_token().unwrap(), token);
    second.invalidate();
    let renewed = second.access_token().unwrap();
    assert_ne!(renewed, token);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "the second run opened the browser"
    );
    // Found in the registration file when the login was built.
    assert_eq!(second.client_id(), client);
    assert_eq!(call(&peer, "api-a", &renewed).0, 200);
    let (paths, grants) = seen(&peer);
    assert_eq!(count(&paths, "POST /register"), 1, "{paths:?}");
    let last = grants.last().unwrap();
    assert_eq!(last["step"], "refresh_token");
    assert_eq!(last["client_id"], client.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_forgotten_registration_is_dropped_and_done_again_once() {
    let Some(peer) = start() else { return };
    let dir = temp_dir("forgotten");
    let registrations = dir.join("clients.json");
    let opened = Arc::new(AtomicUsize::new(0));
    let auth = login(&peer, "api-a", Some(&registrations)).with_browser(browser(&opened));
    let middleware = AuthMiddleware::new(auth);
    middleware.access_token().unwrap();
    let client_of_last_grant = || {
        let (_, grants) = seen(&peer);
        grants.last().unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old_client = client_of_last_grant();
    ureq::post(&format!("{}/test/forget-clients", peer.base))
        .send_empty()
        .unwrap();
    // The refresh is refused (invalid_client): the registration is dropped, a new client
    // registered, and the person logs in again, once.
    middleware.invalidate();
    let token = middleware.access_token().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    let new_client = client_of_last_grant();
    assert_ne!(new_client, old_client);
    assert_eq!(call(&peer, "api-a", &token).0, 200);
    let kept = std::fs::read_to_string(&registrations).unwrap();
    assert!(
        kept.contains(&new_client) && !kept.contains(&old_client),
        "{kept}"
    );
    let (paths, _) = seen(&peer);
    assert_eq!(count(&paths, "POST /register"), 2, "{paths:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_apis_of_one_server_in_one_file_store() {
    let Some(peer) = start() else { return };
    let dir = temp_dir("two-apis");
    let registrations = dir.join("clients.json");
    let opened = Arc::new(AtomicUsize::new(0));
    let run = |api: &str| {
        let auth = login(&peer, api, Some(&registrations)).with_browser(browser(&opened));
        let store = FileStore::in_dir(dir.join("tokens"), auth.credential_set().cache_key());
        AuthMiddleware::builder(auth).token_store(store).build()
    };
    let a = run("api-a").access_token().unwrap();
    let b = run("api-b").access_token().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    assert_ne!(a, b);
    assert_eq!(call(&peer, "api-a", &a).0, 200);
    assert_eq!(call(&peer, "api-b", &b).0, 200);
    assert_eq!(call(&peer, "api-b", &a).0, 401);
    // The next run finds each API's own token in the shared store, without a browser.
    assert_eq!(run("api-a").access_token().unwrap(), a);
    assert_eq!(run("api-b").access_token().unwrap(), b);
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    // One registration at the server serves both APIs.
    let (paths, _) = seen(&peer);
    assert_eq!(count(&paths, "POST /register"), 1, "{paths:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
