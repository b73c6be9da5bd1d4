//! The middleware on a real ureq agent against a loopback server: headers, the resend
//! after a 401, redirects, body replay.

#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/oauth2_server.rs"]
mod oauth2_server;
#[path = "support/scripted.rs"]
mod scripted;

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use en_core_auth::{AuthMiddleware, ClientInfo};
use http_server::{Reply, TestServer};
use scripted::{Script, Scripted};

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// GETs `url` and returns the body.
fn get_text(agent: &ureq::Agent, url: &str) -> String {
    agent
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn agent(auth: &AuthMiddleware) -> ureq::Agent {
    ureq::Agent::config_builder()
        .middleware(auth.clone())
        .build()
        .into()
}

fn agent_without_status_errors(auth: &AuthMiddleware) -> ureq::Agent {
    ureq::Agent::config_builder()
        .middleware(auth.clone())
        .http_status_as_error(false)
        .build()
        .into()
}

/// A server that accepts only the tokens in `valid` (401 otherwise).
fn guarded(valid: &Arc<Mutex<HashSet<String>>>) -> TestServer {
    let valid = Arc::clone(valid);
    TestServer::start(move |seen| {
        let token = seen
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        match token {
            Some(token) if valid.lock().unwrap().contains(token) => Reply::ok("ok"),
            _ => {
                Reply::status(401).with_header("www-authenticate", "Bearer error=\"invalid_token\"")
            }
        }
    })
}

/// A scripted authorizer, a server that accepts only the tokens it issued, and an agent
/// carrying the middleware.
struct Guarded {
    script: Arc<Script>,
    valid: Arc<Mutex<HashSet<String>>>,
    server: TestServer,
    agent: ureq::Agent,
}

impl Guarded {
    fn start() -> Guarded {
        let script = Script::new(HOUR);
        let valid = accept_issued(&script);
        let server = guarded(&valid);
        let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
        let agent = agent(&auth);
        Guarded {
            script,
            valid,
            server,
            agent,
        }
    }
}

/// `threads` threads released together, each making `requests` GETs of `url`; the
/// statuses of all of them.
fn together(
    agent: &ureq::Agent,
    url: &str,
    threads: usize,
    requests: usize,
) -> Vec<Result<u16, ureq::Error>> {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (agent, url, start) = (agent.clone(), url.to_owned(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                (0..requests)
                    .map(|_| agent.get(&url).call().map(|r| r.status().as_u16()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn accept_issued(script: &Arc<Script>) -> Arc<Mutex<HashSet<String>>> {
    let valid = Arc::new(Mutex::new(HashSet::new()));
    let sink = Arc::clone(&valid);
    *script.on_issue.lock().unwrap() = Some(Box::new(move |token: &str, _| {
        sink.lock().unwrap().insert(token.to_owned());
    }));
    valid
}

/// A server on another host (127.0.0.2) answering "elsewhere", and one that redirects
/// everything there with `status`.
fn redirecting_elsewhere(status: u16) -> (TestServer, TestServer) {
    let other = TestServer::start_on("127.0.0.2", |_| Reply::ok("elsewhere"));
    let target = other.url("/landing");
    let origin = TestServer::start(move |_| Reply::status(status).with_header("location", &target));
    (origin, other)
}

#[test]
fn sets_authorization_and_api_key() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k3y"),
        &script,
    ));
    let body = get_text(&agent(&auth), &server.url("/a"));
    assert_eq!(body, "hi");
    let seen = &server.requests()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer token-1"));
    assert_eq!(seen.header("x-api-key"), Some("k3y"));
}

#[test]
fn no_api_key_header_without_a_key() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    agent(&auth).get(server.url("/a")).call().unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer token-1"));
    assert_eq!(seen.header("x-api-key"), None);
}

#[test]
fn a_caller_set_authorization_goes_out_untouched() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k"),
        &script,
    ));
    agent(&auth)
        .get(server.url("/a"))
        .header("Authorization", "Basic abc")
        .call()
        .unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.header("authorization"), Some("Basic abc"));
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(
        script.token_calls(),
        0,
        "no token needed for a request that brings its own"
    );
}

#[test]
fn custom_header_name_and_bare_token() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .header_name("x-auth")
        .header_prefix("")
        .build();
    agent(&auth).get(server.url("/a")).call().unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.header("x-auth"), Some("token-1"));
    assert_eq!(seen.header("authorization"), None);
}

#[test]
fn a_401_is_resent_exactly_once_with_a_new_token() {
    let Guarded {
        script,
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/x")).call().unwrap();
    valid.lock().unwrap().remove("token-1"); // the server now rejects the token
    let response = agent.get(server.url("/x")).call().unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].header("authorization"), Some("Bearer token-1"));
    assert_eq!(seen[2].header("authorization"), Some("Bearer token-2"));
    assert_eq!(script.refreshes(), 1);
}

#[test]
fn a_persistent_401_is_resent_once_never_twice() {
    for status_errors in [true, false] {
        let server = TestServer::start(|_| Reply::status(401));
        let script = Script::new(HOUR);
        let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
        let agent = if status_errors {
            agent(&auth)
        } else {
            agent_without_status_errors(&auth)
        };
        let result = agent.get(server.url("/x")).call();
        if status_errors {
            assert!(
                matches!(result, Err(ureq::Error::StatusCode(401))),
                "{result:?}"
            );
        } else {
            assert_eq!(result.unwrap().status(), 401, "the caller's form is kept");
        }
        assert_eq!(server.count(), 2, "one send and one resend");
        assert_eq!(script.token_calls(), 2);
        // The renewed token was refused too, so the token is not the problem: it is kept,
        // and the next request does not renew again before its own 401.
        assert_eq!(auth.access_token().unwrap(), "token-2");
        assert_eq!(script.token_calls(), 2);
    }
}

#[test]
fn thirty_two_concurrent_401s_cause_one_renewal() {
    let Guarded {
        script,
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().clear();
    *script.on_issue.lock().unwrap() = None;
    // From now on only token-2 is valid.
    valid.lock().unwrap().insert("token-2".to_owned());
    for status in together(&agent, &server.url("/x"), 32, 1) {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(
        script.refreshes(),
        1,
        "one renewal for 32 rejected requests"
    );
    assert_eq!(script.authorizes(), 1);
}

#[test]
fn a_request_body_is_replayed_after_a_401() {
    let Guarded {
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().remove("token-1");
    let response = agent
        .post(server.url("/orders"))
        .header("content-type", "application/json")
        .send(r#"{"n":1}"#)
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    for posted in &seen[1..] {
        assert_eq!(posted.method, "POST");
        assert_eq!(posted.body, br#"{"n":1}"#);
        assert_eq!(posted.header("content-type"), Some("application/json"));
    }
}

#[test]
fn send_json_is_replayed_with_its_content_type() {
    let Guarded {
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().remove("token-1");
    agent
        .post(server.url("/o"))
        .send_json(serde_json::json!({"n": 1}))
        .unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    for posted in &seen[1..] {
        assert!(
            posted
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&posted.body).unwrap()["n"],
            1
        );
    }
}

#[test]
fn a_body_without_a_content_type_is_replayed_as_it_was() {
    // ureq applies a body's own content type before any middleware: replayed bytes mean
    // what the first ones meant, with or without a `Content-Type`.
    let Guarded {
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().remove("token-1");
    agent.post(server.url("/o")).send("raw").unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    for posted in &seen[1..] {
        assert_eq!(posted.body, b"raw");
        assert_eq!(posted.header("content-type"), None);
        assert_eq!(posted.header("content-length"), Some("3"));
    }
}

#[test]
fn a_get_or_delete_with_a_body_resends_its_body() {
    for method in ["GET", "DELETE"] {
        let Guarded {
            valid,
            server,
            agent,
            ..
        } = Guarded::start();
        agent.get(server.url("/warm")).call().unwrap();
        valid.lock().unwrap().remove("token-1");
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(server.url("/q"))
            .body("query")
            .unwrap();
        agent.run(request).unwrap();
        let seen = server.requests();
        assert_eq!(seen.len(), 3, "{method}");
        for sent in &seen[1..] {
            assert_eq!(sent.method, method);
            assert_eq!(sent.body, b"query", "{method}");
        }
    }
}

#[test]
fn a_bodiless_post_is_resent() {
    let Guarded {
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().remove("token-1");
    let response = agent.post(server.url("/ping")).send_empty().unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].method, "POST");
    assert_eq!(seen[2].header("authorization"), Some("Bearer token-2"));
}

#[test]
fn a_sized_body_over_the_replay_cap_keeps_its_content_length_and_is_not_resent() {
    let server = TestServer::start(|_| Reply::status(401));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .max_replay_size(10)
        .build();
    let body = "x".repeat(100);
    let result = agent(&auth).put(server.url("/big")).send(body.as_str());
    assert!(matches!(result, Err(ureq::Error::StatusCode(401))));
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "not resent: the body was not kept");
    assert_eq!(seen[0].body, body.as_bytes());
    assert_eq!(seen[0].header("content-length"), Some("100"));
    assert_eq!(seen[0].header("transfer-encoding"), None);
}

#[test]
fn a_body_over_the_buffered_bound_streams_whole() {
    let server = TestServer::start(|_| Reply::ok("stored"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .max_replay_size(10)
        .max_buffered_size(50)
        .build();
    let body = "y".repeat(100);
    agent(&auth)
        .put(server.url("/big"))
        .send(body.as_str())
        .unwrap();
    let seen = server.requests();
    assert_eq!(seen[0].body, body.as_bytes());
    assert_eq!(seen[0].header("transfer-encoding"), Some("chunked"));
}

#[test]
fn a_redirect_to_another_host_carries_no_credentials() {
    let (origin, other) = redirecting_elsewhere(302);
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k3y"),
        &script,
    ));
    let body = get_text(&agent(&auth), &origin.url("/start"));
    assert_eq!(body, "elsewhere");
    // The positive control: the first request carried both credentials.
    let first = &origin.requests()[0];
    assert_eq!(first.header("authorization"), Some("Bearer token-1"));
    assert_eq!(first.header("x-api-key"), Some("k3y"));
    let landed = &other.requests()[0];
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(landed.header("x-api-key"), None);
}

#[test]
fn a_redirect_to_another_port_is_another_origin() {
    let other = TestServer::start(|_| Reply::ok("other port"));
    let target = other.url("/landing");
    let origin = TestServer::start(move |_| Reply::status(307).with_header("location", &target));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k3y"),
        &script,
    ));
    agent(&auth).get(origin.url("/start")).call().unwrap();
    // The positive control: the first request carried both credentials.
    let first = &origin.requests()[0];
    assert_eq!(first.header("authorization"), Some("Bearer token-1"));
    assert_eq!(first.header("x-api-key"), Some("k3y"));
    let landed = &other.requests()[0];
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(landed.header("x-api-key"), None);
}

#[test]
fn a_same_origin_redirect_keeps_the_credentials() {
    let server = TestServer::start(|seen| {
        if seen.path == "/old" {
            Reply::status(301).with_header("location", "/new")
        } else if seen.header("authorization").is_some() {
            Reply::ok("moved")
        } else {
            Reply::status(401)
        }
    });
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k"),
        &script,
    ));
    let body = get_text(&agent(&auth), &server.url("/old"));
    assert_eq!(body, "moved");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/new");
    assert_eq!(seen[1].header("authorization"), Some("Bearer token-1"));
    assert_eq!(seen[1].header("x-api-key"), Some("k"));
    assert_eq!(
        script.token_calls(),
        1,
        "a same-origin redirect is not a rejected token"
    );
}

#[test]
fn redirect_loops_stop() {
    let server = TestServer::start(|_| Reply::status(302).with_header("location", "/again"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .max_redirects(3)
        .build();
    let result = agent(&auth).get(server.url("/")).call();
    // As ureq does: `max_redirects_will_error` is on by default.
    assert!(
        matches!(result, Err(ureq::Error::TooManyRedirects)),
        "{result:?}"
    );
    assert_eq!(server.count(), 4);
}

#[test]
fn an_authorizer_failure_reaches_the_caller_as_a_typed_error() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    script.fail_next_authorize(en_core_auth::ErrorKind::CredentialsRejected);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let error = agent(&auth).get(server.url("/")).call().unwrap_err();
    assert_eq!(
        error_kind(&error),
        Some(en_core_auth::ErrorKind::CredentialsRejected),
        "{error:?}"
    );
    assert_eq!(server.count(), 0, "nothing is sent without a token");
}

#[test]
fn clones_and_agents_share_one_token() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let first = agent(&auth);
    let second = agent(&auth.clone());
    first.get(server.url("/1")).call().unwrap();
    second.get(server.url("/2")).call().unwrap();
    assert_eq!(script.token_calls(), 1);
}

#[test]
fn many_threads_across_forced_expiries_always_send_a_valid_token() {
    // The server revokes the current token several times while 8 threads send requests:
    // every request that succeeded carried a token valid when it was received, and each
    // revocation costs exactly one renewal.
    let Guarded {
        script,
        valid,
        server,
        agent,
        ..
    } = Guarded::start();
    const EXPIRIES: usize = 5;
    const ROUNDS: usize = EXPIRIES + 1;
    for round in 0..ROUNDS {
        if round > 0 {
            valid.lock().unwrap().clear(); // force an expiry
        }
        for status in together(&agent, &server.url("/work"), 8, 20) {
            assert_eq!(status.unwrap(), 200);
        }
    }
    assert_eq!(script.token_calls(), EXPIRIES + 1);
    let rejected = server.count() - ROUNDS * 8 * 20;
    assert!(
        rejected <= EXPIRIES * 8,
        "at most one rejected send per thread per expiry: {rejected}"
    );
}

#[test]
fn the_public_types_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AuthMiddleware>();
    send_sync::<en_core_auth::Error>();
    send_sync::<en_core_auth::Token>();
    send_sync::<ClientInfo>();
    fn send<T: Send>() {}
    send::<en_core_auth::oauth2::ClientCredentials>();
    send::<en_core_auth::srp::SrpAuthorizer>();
}

/// An agent built by `auth.agent(...)` with the given user agent.
fn agent_with_user_agent(auth: &AuthMiddleware, user_agent: &str) -> ureq::Agent {
    auth.agent(ureq::Agent::config_builder().user_agent(user_agent))
}

#[test]
fn a_resend_goes_out_with_the_agents_own_settings() {
    let script = Script::new(HOUR);
    let valid = accept_issued(&script);
    let server = guarded(&valid);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let agent = agent_with_user_agent(&auth, "my-app/1.0");
    agent.get(server.url("/warm")).call().unwrap();
    valid.lock().unwrap().remove("token-1");
    agent.get(server.url("/x")).call().unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].header("authorization"), Some("Bearer token-2"));
    for request in &seen {
        assert_eq!(request.header("user-agent"), Some("my-app/1.0"));
    }
}

#[test]
fn each_agent_keeps_its_own_settings() {
    // One middleware, two agents: each one's resends and hops carry its own user agent,
    // and each answers in its own form and with its own redirect limit.
    let script = Script::new(HOUR);
    let valid = accept_issued(&script);
    let valid_in_server = Arc::clone(&valid);
    let server = TestServer::start(move |seen| {
        let token = seen
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        if !token.is_some_and(|t| valid_in_server.lock().unwrap().contains(t)) {
            return Reply::status(401);
        }
        match seen.path.as_str() {
            "/moved" => Reply::status(302).with_header("location", "/missing"),
            "/missing" => Reply::status(404),
            "/loop" => Reply::status(302).with_header("location", "/loop"),
            _ => Reply::ok("ok"),
        }
    });
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let strict = auth.agent(ureq::Agent::config_builder().user_agent("strict/1"));
    let lenient = auth.agent(
        ureq::Agent::config_builder()
            .user_agent("lenient/1")
            .http_status_as_error(false)
            .max_redirects(2)
            .max_redirects_will_error(false),
    );
    strict.get(server.url("/warm")).call().unwrap();
    for (agent, name) in [(&strict, "strict/1"), (&lenient, "lenient/1")] {
        valid.lock().unwrap().clear(); // the next request is refused, then resent
        *script.on_issue.lock().unwrap() = None;
        let next = format!("token-{}", script.token_calls() + 1);
        valid.lock().unwrap().insert(next);
        let before = server.count();
        agent
            .get(server.url("/x"))
            .call()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let resend = &server.requests()[before + 1];
        assert_eq!(resend.header("user-agent"), Some(name));
    }
    assert!(matches!(
        strict.get(server.url("/moved")).call(),
        Err(ureq::Error::StatusCode(404))
    ));
    let hop = server.requests().last().unwrap().clone();
    assert_eq!(
        (hop.path.as_str(), hop.header("user-agent")),
        ("/missing", Some("strict/1"))
    );
    assert_eq!(
        lenient.get(server.url("/moved")).call().unwrap().status(),
        404
    );
    assert!(matches!(
        strict.get(server.url("/loop")).call(),
        Err(ureq::Error::TooManyRedirects)
    ));
    let before = server.count();
    let looped = lenient.get(server.url("/loop")).call().unwrap();
    assert_eq!(looped.status(), 302, "its own limit, without an error");
    assert_eq!(server.count() - before, 3, "the first send and two hops");
}

/// An authorizer that says when it is dropped.
struct DropFlag(ClientInfo, Arc<std::sync::atomic::AtomicBool>);

impl en_core_auth::Authorizer for DropFlag {
    fn client_info(&self) -> &ClientInfo {
        &self.0
    }
    fn authorize(&mut self) -> Result<en_core_auth::Token, en_core_auth::Error> {
        Ok(en_core_auth::Token::new("t").with_expires_in(Duration::from_secs(3600)))
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn agents_built_by_the_middleware_are_freed_with_it() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = TestServer::start(|_| Reply::ok("hi"));
    let auth = AuthMiddleware::new(DropFlag(ClientInfo::new("c", ""), Arc::clone(&dropped)));
    let first = auth.agent(ureq::Agent::config_builder());
    let second = auth.agent(ureq::Agent::config_builder().user_agent("two"));
    first.get(server.url("/")).call().unwrap();
    second.get(server.url("/")).call().unwrap();
    drop((first, second));
    assert!(
        !dropped.load(std::sync::atomic::Ordering::SeqCst),
        "auth still holds it"
    );
    drop(auth);
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "no reference cycle keeps the authorizer alive"
    );
}

#[test]
fn no_credential_crosses_origins_whatever_its_name() {
    // A custom token header and API-key header: the caller's own Authorization, Cookie
    // and Proxy-Authorization must not follow a redirect elsewhere either.
    let (origin, other) = redirecting_elsewhere(307);
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k3y"),
        &script,
    ))
    .header_name("x-auth")
    .api_key_header("ocp-apim-subscription-key")
    .try_build()
    .unwrap();
    let body = agent(&auth)
        .get(origin.url("/start"))
        .header("authorization", "Basic c2VjcmV0")
        .header("proxy-authorization", "Basic cHJveHk=")
        .header("cookie", "session=1")
        .header("x-trace", "kept")
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(body, "elsewhere");
    let first = &origin.requests()[0];
    assert_eq!(first.header("x-auth"), Some("Bearer token-1"));
    assert_eq!(first.header("ocp-apim-subscription-key"), Some("k3y"));
    assert_eq!(first.header("authorization"), Some("Basic c2VjcmV0"));
    let landed = &other.requests()[0];
    for name in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-auth",
        "ocp-apim-subscription-key",
        "x-api-key",
    ] {
        assert_eq!(landed.header(name), None, "{name} crossed origins");
    }
    assert_eq!(landed.header("x-trace"), Some("kept"));
}

#[test]
fn a_caller_credentialed_request_is_redirected_without_its_credentials() {
    // The caller brought its own token header: the middleware adds nothing, but the
    // header does not follow a redirect to another origin.
    let (origin, other) = redirecting_elsewhere(302);
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .header_name("x-auth")
        .build();
    agent(&auth)
        .get(origin.url("/start"))
        .header("x-auth", "mine")
        .call()
        .unwrap();
    assert_eq!(origin.requests()[0].header("x-auth"), Some("mine"));
    assert_eq!(other.requests()[0].header("x-auth"), None);
    assert_eq!(script.token_calls(), 0);
}

/// The kind of our error inside a ureq error, if it is ours.
fn error_kind(error: &ureq::Error) -> Option<en_core_auth::ErrorKind> {
    match error {
        ureq::Error::Other(inner) => inner
            .downcast_ref::<en_core_auth::Error>()
            .map(en_core_auth::Error::kind),
        _ => None,
    }
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_anything_is_sent() {
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let error = agent(&auth)
        .get("http://api.example.invalid/orders")
        .call()
        .unwrap_err();
    assert_eq!(
        error_kind(&error),
        Some(en_core_auth::ErrorKind::Configuration),
        "{error:?}"
    );
    assert_eq!(script.token_calls(), 0, "not even a token is fetched");
}

#[test]
fn allowed_origins_limit_where_credentials_go() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .allowed_origins(["https://api.example.com"])
        .try_build()
        .unwrap();
    agent(&auth).get(server.url("/a")).call().unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
    assert_eq!(script.token_calls(), 0);
    let allowed = AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script))
        .allowed_origins([server.base.clone()])
        .try_build()
        .unwrap();
    agent(&allowed).get(server.url("/b")).call().unwrap();
    assert_eq!(
        server.requests()[1].header("authorization"),
        Some("Bearer token-1")
    );
}

#[test]
fn thirty_requests_to_an_api_that_always_answers_401_cost_two_token_requests() {
    // The README's figure. A wrong audience or API key: the API refuses every token. Once
    // a freshly issued token was refused, further 401s do not renew it until the refusal's
    // back-off has passed (at least 0.75 s, then 1.5 s more, ...). Thirty loopback requests
    // take far less on any machine; should a loaded one take longer, each back-off that
    // passed allows one more renewal, never more. (The lifecycle's own test pins two with
    // its clock stopped: thirty_refused_requests_cause_two_token_requests.)
    let server = TestServer::start(|_| Reply::status(401));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let agent = agent_without_status_errors(&auth);
    let started = std::time::Instant::now();
    for _ in 0..30 {
        assert_eq!(agent.get(server.url("/x")).call().unwrap().status(), 401);
    }
    let elapsed = started.elapsed();
    let (mut passed, mut waited, mut back_off) = (0, Duration::ZERO, Duration::from_millis(750));
    while waited + back_off <= elapsed {
        (passed, waited, back_off) = (passed + 1, waited + back_off, back_off * 2);
    }
    let calls = script.token_calls();
    assert!(
        (2..=2 + passed).contains(&calls),
        "{calls} token requests in {elapsed:?}; 2 expected (+{passed} for back-offs that passed)"
    );
    // Every renewal is followed by exactly one resend.
    assert_eq!(server.count(), 30 + calls - 1);
}

/// Logs in through `ClientCredentials` on a thread of its own, with an agent that carries
/// the very middleware it serves.
struct OnAnotherThread {
    client: ClientInfo,
    token_url: String,
    agent: Arc<std::sync::OnceLock<ureq::Agent>>,
}

impl en_core_auth::Authorizer for OnAnotherThread {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }
    fn authorize(&mut self) -> Result<en_core_auth::Token, en_core_auth::Error> {
        let agent = self.agent.get().cloned().expect("agent set before use");
        let (client, url) = (self.client.clone(), self.token_url.clone());
        thread::spawn(move || {
            let http = en_core_auth::http::HttpClient::with_agent(agent);
            let mut inner =
                en_core_auth::oauth2::ClientCredentials::new(client, url)?.with_http_client(http);
            en_core_auth::Authorizer::authorize(&mut inner)
        })
        .join()
        .expect("login thread")
    }
}

#[test]
fn an_authorizer_calling_from_another_thread_through_the_same_middleware_does_not_deadlock() {
    let idp = oauth2_server::FaultServer::start(vec![], oauth2_server::Answer::token("tok"));
    let api = TestServer::start(|_| Reply::ok("hi"));
    let slot = Arc::new(std::sync::OnceLock::new());
    let auth = AuthMiddleware::new(OnAnotherThread {
        client: ClientInfo::new("c", "s"),
        token_url: idp.url("/token"),
        agent: Arc::clone(&slot),
    });
    // The agent holds the middleware that holds the agent: a cycle, leaked on purpose in
    // this test only.
    let agent = auth.agent(ureq::Agent::config_builder());
    slot.set(agent.clone()).unwrap();
    let url = api.url("/a");
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(agent.get(&url).call().map(|r| r.status().as_u16()));
    });
    // A bound on a hang, not a timing assertion: a deadlock never answers.
    let status = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the request finished");
    assert_eq!(status.unwrap(), 200);
    assert_eq!(idp.count(), 1);
    assert_eq!(
        idp.requests()[0]
            .header("authorization")
            .map(|h| h.starts_with("Basic")),
        Some(true),
        "the token request carried the client's own credentials, not a bearer token"
    );
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer tok")
    );
}

#[test]
fn requests_marked_as_token_traffic_pass_untouched() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let mut request = agent(&auth).get(server.url("/token"));
    request
        .extensions_mut()
        .unwrap()
        .insert(en_core_auth::base::TokenTraffic);
    request.call().unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
    assert_eq!(script.token_calls(), 0);
}

#[test]
fn the_api_key_goes_in_the_header_asked_for() {
    let server = TestServer::start(|_| Reply::ok("hi"));
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(
        ClientInfo::new("c", "s").with_api_key("k3y"),
        &script,
    ))
    .api_key_header("Ocp-Apim-Subscription-Key")
    .try_build()
    .unwrap();
    agent(&auth).get(server.url("/a")).call().unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.header("ocp-apim-subscription-key"), Some("k3y"));
    assert_eq!(seen.header("x-api-key"), None);
}

#[test]
fn try_build_reports_configuration_mistakes() {
    let script = Script::new(HOUR);
    let builder = || AuthMiddleware::builder(Scripted::new(ClientInfo::new("c", "s"), &script));
    let with_key = || {
        AuthMiddleware::builder(Scripted::new(
            ClientInfo::new("c", "s").with_api_key("bad\nkey"),
            &script,
        ))
    };
    let mistakes = [
        builder().header_name("bad header").try_build(),
        builder().api_key_header("").try_build(),
        builder().allowed_origins(["/relative"]).try_build(),
        // A host without a scheme is no origin either.
        builder().allowed_origins(["api.example.com"]).try_build(),
        with_key().try_build(),
    ];
    for result in mistakes {
        assert_eq!(
            result.unwrap_err().kind(),
            en_core_auth::ErrorKind::Configuration
        );
    }
    assert!(builder().try_build().is_ok());
    assert_eq!(script.token_calls(), 0);
}

#[test]
fn the_builder_shows_its_settings_but_not_the_api_key() {
    let script = Script::new(HOUR);
    let builder = AuthMiddleware::builder(Scripted::new(
        ClientInfo::new("my-client", "s3cret").with_api_key("k3y-s3cret"),
        &script,
    ))
    .header_name("x-auth")
    .api_key_header("ocp-apim-subscription-key");
    let shown = format!("{builder:?}");
    for expected in [
        "my-client",
        "x-auth",
        "ocp-apim-subscription-key",
        "max_redirects",
    ] {
        assert!(shown.contains(expected), "{shown}");
    }
    assert!(
        !shown.contains("k3y-s3cret") && !shown.contains("s3cret\""),
        "{shown}"
    );
}

#[test]
fn the_middleware_names_its_client_and_header_but_shows_no_secret_or_token() {
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::builder(Scripted::new(
        ClientInfo::new("my-client", "s3cret").with_api_key("k3y-s3cret"),
        &script,
    ))
    .header_name("x-auth")
    .build();
    let token = auth.access_token().unwrap();
    assert_eq!(auth.client_id(), "my-client");
    let shown = format!("{auth:?}");
    assert!(shown.starts_with("AuthMiddleware"), "{shown}");
    assert!(
        shown.contains("my-client") && shown.contains("x-auth"),
        "{shown}"
    );
    for secret in ["s3cret", "k3y-s3cret", token.as_str()] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

/// Tokens `t1`, `t2`, …; remembers what it was asked to revoke.
struct Revocable(ClientInfo, u32, Arc<Mutex<Vec<String>>>);

impl en_core_auth::Authorizer for Revocable {
    fn client_info(&self) -> &ClientInfo {
        &self.0
    }
    fn authorize(&mut self) -> Result<en_core_auth::Token, en_core_auth::Error> {
        self.1 += 1;
        Ok(en_core_auth::Token::new(format!("t{}", self.1))
            .with_expires_in(Duration::from_secs(3600)))
    }
    fn revoke(&mut self, token: &en_core_auth::Token) -> Result<(), en_core_auth::Error> {
        self.2.lock().unwrap().push(token.access_token().to_owned());
        Ok(())
    }
}

#[test]
fn revoke_logs_out_forgets_the_token_and_clears_the_store() {
    use en_core_auth::store::{MemoryStore, TokenStore};
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(MemoryStore::new());
    let auth =
        AuthMiddleware::builder(Revocable(ClientInfo::new("c", ""), 0, Arc::clone(&revoked)))
            .token_store(Arc::clone(&store))
            .build();
    assert_eq!(auth.access_token().unwrap(), "t1");
    assert!(store.load().unwrap().is_some());
    auth.revoke().unwrap();
    assert_eq!(*revoked.lock().unwrap(), ["t1"]);
    assert!(store.load().unwrap().is_none(), "the store is cleared");
    assert_eq!(
        auth.access_token().unwrap(),
        "t2",
        "the next use logs in again"
    );
    assert_eq!(
        auth.token_requests(),
        en_core_auth::base::TokenRequests {
            authorize: 2,
            refresh: 0
        }
    );
}

/// Fetches its token with a plain request (no `TokenTraffic`) through an agent that carries
/// the very middleware it serves, on the thread that runs `authorize()`.
struct SameThread {
    client: ClientInfo,
    token_url: String,
    agent: Arc<std::sync::OnceLock<ureq::Agent>>,
}

impl en_core_auth::Authorizer for SameThread {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }
    fn authorize(&mut self) -> Result<en_core_auth::Token, en_core_auth::Error> {
        let agent = self.agent.get().expect("agent set before use");
        let token = agent
            .post(&self.token_url)
            .send_empty()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(en_core_auth::Error::other)?;
        Ok(en_core_auth::Token::new(token).with_expires_in(Duration::from_secs(3600)))
    }
}

#[test]
fn an_authorizer_calling_on_its_own_thread_through_the_same_middleware_does_not_deadlock() {
    let idp = TestServer::start(|_| Reply::ok("tok"));
    let api = TestServer::start(|_| Reply::ok("hi"));
    let slot = Arc::new(std::sync::OnceLock::new());
    let auth = AuthMiddleware::new(SameThread {
        client: ClientInfo::new("c", "s"),
        token_url: idp.url("/token"),
        agent: Arc::clone(&slot),
    });
    // A cycle (agent → middleware → authorizer → agent), leaked in this test only.
    let agent = agent(&auth);
    slot.set(agent.clone()).unwrap();
    let url = api.url("/a");
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(agent.get(&url).call().map(|r| r.status().as_u16()));
    });
    // A bound on a hang, not a timing assertion: a deadlock never answers.
    let status = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the request finished");
    assert_eq!(status.unwrap(), 200);
    assert_eq!(idp.requests()[0].header("authorization"), None);
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer tok")
    );
}

#[test]
fn a_resend_keeps_the_agents_timeouts() {
    // The resend meets a server that never answers: the agent's own timeout ends it,
    // instead of the middleware's default 120 s wait for the response head.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&answered);
    let server = TestServer::start(move |_| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::status(401)
        } else {
            thread::sleep(Duration::from_secs(30)); // a hung server
            Reply::ok("late")
        }
    });
    let script = Script::new(HOUR);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));
    let agent = auth.agent(
        ureq::Agent::config_builder().timeout_recv_response(Some(Duration::from_millis(300))),
    );
    let error = agent.get(server.url("/x")).call().unwrap_err();
    assert!(matches!(error, ureq::Error::Timeout(_)), "{error:?}");
    assert_eq!(server.count(), 2, "the resend was sent, and timed out");
}

/// Warnings this crate logs, kept for the tests to count.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Warnings;

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn && metadata.target().starts_with("en_core_auth")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// How many warnings so far mention `text` (tests run in parallel: each names its own).
fn warnings_about(text: &str) -> usize {
    static LOGGER: Warnings = Warnings;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(text))
        .count()
}

/// Three requests whose token the server has stopped accepting: three resends.
fn three_resends(agent: &ureq::Agent, server: &TestServer, valid: &Mutex<HashSet<String>>) {
    for _ in 0..3 {
        valid.lock().unwrap().clear();
        assert_eq!(agent.get(server.url("/x")).call().unwrap().status(), 200);
    }
}

#[test]
fn the_fallback_route_is_logged_once_per_middleware() {
    let script = Script::new(HOUR);
    let valid = accept_issued(&script);
    let server = guarded(&valid);
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("plain-attach", "s"), &script));
    let plain = agent(&auth);
    assert_eq!(plain.get(server.url("/x")).call().unwrap().status(), 200);
    assert_eq!(warnings_about("`plain-attach`"), 0, "no resend yet");
    three_resends(&plain, &server, &valid);
    // A clone on another plain agent is the same middleware: no second warning.
    three_resends(&agent(&auth.clone()), &server, &valid);
    assert_eq!(script.refreshes(), 6, "six resends went out");
    assert_eq!(warnings_about("`plain-attach`"), 1);
    assert!(
        WARNINGS
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.contains("auth.agent(config)"))
    );

    // Another middleware warns for itself; one built into its agent never does.
    let other = AuthMiddleware::new(Scripted::new(ClientInfo::new("second-plain", "s"), &script));
    three_resends(&agent(&other), &server, &valid);
    assert_eq!(warnings_about("`second-plain`"), 1);
    let bound = AuthMiddleware::new(Scripted::new(ClientInfo::new("bound-agent", "s"), &script));
    three_resends(&bound.agent(ureq::Agent::config_builder()), &server, &valid);
    assert_eq!(warnings_about("`bound-agent`"), 0);
}
