//! DPoP resource-server nonces (RFC 9449 §8-9) through the middleware, against fake
//! resource servers on loopback: requests in flight that all meet a new nonce are each
//! resent with it and never renew the token; each server's nonce stays with that server.
//! Also: `authorize_headers` refuses a token whose proof it cannot make.

#![cfg(feature = "jwt")]

#[path = "support/http_server.rs"]
mod http_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use base64::Engine as _;
use en_core_auth::oauth2::{ClientCredentials, DpopKey};
use en_core_auth::{AuthMiddleware, ClientInfo, ErrorKind};
use http_server::{Reply, Seen, TestServer};

/// A token endpoint that issues DPoP-bound tokens, counting its requests.
fn token_server() -> TestServer {
    TestServer::start(|_| {
        Reply::ok(r#"{"access_token":"bound-token","token_type":"DPoP","expires_in":3600}"#)
            .with_header("content-type", "application/json")
    })
}

fn middleware(tokens: &TestServer) -> AuthMiddleware {
    let login = ClientCredentials::new(ClientInfo::new("c", "s"), tokens.url("/token"))
        .unwrap()
        .with_dpop(DpopKey::generate().unwrap());
    AuthMiddleware::new(login)
}

/// The `nonce` claim of the request's DPoP proof (the signature is the middleware's own
/// business here: `src/oauth2/dpop.rs` tests it).
fn nonce_of(seen: &Seen) -> Option<String> {
    let proof = seen.header("dpop")?;
    let claims = proof.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    claims["nonce"].as_str().map(str::to_owned)
}

/// A 401 asking for `nonce`.
fn use_nonce(nonce: &str) -> Reply {
    Reply::status(401)
        .with_header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
        .with_header("dpop-nonce", nonce)
}

/// A resource server that wants the proof to carry `nonce`, counting its 401s.
fn resource(nonce: &'static str, refusals: &Arc<AtomicUsize>) -> TestServer {
    let refusals = Arc::clone(refusals);
    TestServer::start(move |seen| {
        if nonce_of(seen).as_deref() == Some(nonce) {
            Reply::ok("ok").with_header("dpop-nonce", nonce)
        } else {
            refusals.fetch_add(1, Ordering::SeqCst);
            use_nonce(nonce)
        }
    })
}

#[test]
fn requests_in_flight_that_all_meet_a_new_nonce_are_each_resent_and_keep_the_token() {
    const THREADS: usize = 6;
    let tokens = token_server();
    let auth = middleware(&tokens);
    auth.access_token().unwrap();
    // The resource holds the first request of every thread until all have arrived, then
    // refuses each with the same new nonce: each was signed without it.
    let barrier = Arc::new(Barrier::new(THREADS));
    let held = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(AtomicUsize::new(0));
    let api = {
        let (barrier, held, refusals) = (barrier.clone(), held.clone(), refusals.clone());
        TestServer::start(move |seen| {
            if nonce_of(seen).as_deref() == Some("n-1") {
                return Reply::ok("ok");
            }
            if held.fetch_add(1, Ordering::SeqCst) < THREADS {
                barrier.wait();
            }
            refusals.fetch_add(1, Ordering::SeqCst);
            use_nonce("n-1")
        })
    };
    let agent = auth.agent(ureq::Agent::config_builder());
    let statuses: Vec<u16> = thread::scope(|scope| {
        let calls: Vec<_> = (0..THREADS)
            .map(|_| scope.spawn(|| agent.get(api.url("/orders")).call().map(|r| r.status())))
            .collect();
        calls
            .into_iter()
            .map(|call| call.join().unwrap().map_or(0, |s| s.as_u16()))
            .collect()
    });
    assert_eq!(statuses, [200; THREADS]);
    assert_eq!(refusals.load(Ordering::SeqCst), THREADS, "one 401 each");
    assert_eq!(api.count(), 2 * THREADS, "each resent once, with the nonce");
    assert_eq!(tokens.count(), 1, "a nonce is not a token refusal");
    let requests = auth.token_requests();
    assert_eq!((requests.authorize, requests.refresh), (1, 0));
}

#[test]
fn a_nonce_refusal_that_cannot_be_resent_is_not_a_token_refusal() {
    let tokens = token_server();
    let auth = middleware(&tokens);
    // Always a new nonce: the middleware resends a bounded number of times, then hands
    // the 401 over, and never renews the token for it.
    let round = Arc::new(AtomicUsize::new(0));
    let api = {
        let round = round.clone();
        TestServer::start(move |_| {
            let n = round.fetch_add(1, Ordering::SeqCst);
            use_nonce(&format!("n-{n}"))
        })
    };
    let agent = auth.agent(ureq::Agent::config_builder().http_status_as_error(false));
    for _ in 0..3 {
        let reply = agent.get(api.url("/orders")).call().unwrap();
        assert_eq!(reply.status(), 401);
    }
    assert!(api.count() <= 3 * 3, "bounded resends: {}", api.count());
    assert_eq!(tokens.count(), 1, "no renewal for a nonce");
}

#[test]
fn nonces_are_kept_per_server_and_never_sent_to_another() {
    let tokens = token_server();
    let auth = middleware(&tokens);
    let refusals = Arc::new(AtomicUsize::new(0));
    let (a, b) = (
        resource("nonce-a", &refusals),
        resource("nonce-b", &refusals),
    );
    let agent = auth.agent(ureq::Agent::config_builder());
    for _ in 0..5 {
        for api in [&a, &b] {
            assert_eq!(agent.get(api.url("/x")).call().unwrap().status(), 200);
        }
    }
    assert_eq!(
        refusals.load(Ordering::SeqCst),
        2,
        "one 401 per server, not per request"
    );
    let nonces =
        |api: &TestServer| -> Vec<Option<String>> { api.requests().iter().map(nonce_of).collect() };
    assert!(
        nonces(&a).iter().all(|n| n.as_deref() != Some("nonce-b")),
        "{:?}",
        nonces(&a)
    );
    assert!(
        nonces(&b).iter().all(|n| n.as_deref() != Some("nonce-a")),
        "{:?}",
        nonces(&b)
    );
    assert_eq!(tokens.count(), 1);
}

#[test]
fn the_public_proof_uses_the_nonce_of_the_url_s_server() {
    let key = DpopKey::generate().unwrap();
    key.use_nonce("https://a.example/x", "nonce-a").unwrap();
    let claims = |proof: String| {
        let claims = proof.split('.').nth(1).unwrap().to_owned();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()
    };
    let on_a = claims(key.proof("GET", "https://A.example:443/y?q", "t").unwrap());
    assert_eq!(on_a["nonce"], "nonce-a");
    let on_b = claims(key.proof("GET", "https://b.example/y", "t").unwrap());
    assert!(on_b.get("nonce").is_none(), "{on_b}");
    let other_port = claims(key.proof("GET", "https://a.example:8443/y", "t").unwrap());
    assert!(other_port.get("nonce").is_none(), "{other_port}");
}

#[test]
fn authorize_headers_refuses_a_bound_token_instead_of_sending_it_without_its_proof() {
    let tokens = token_server();
    let auth = middleware(&tokens);
    let mut headers = ureq::http::HeaderMap::new();
    let error = auth.authorize_headers(&mut headers).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
    assert!(error.to_string().contains("DPoP"), "{error}");
    assert!(headers.is_empty(), "nothing half-set: {headers:?}");
    // And again once the token is in use (the fast path).
    let api_refusals = Arc::new(AtomicUsize::new(0));
    let api = resource("n", &api_refusals);
    let agent = auth.agent(ureq::Agent::config_builder());
    assert_eq!(agent.get(api.url("/x")).call().unwrap().status(), 200);
    assert!(auth.authorize_headers(&mut headers).is_err());
    assert!(headers.is_empty());
}
