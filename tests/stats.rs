//! `AuthMiddleware::stats()` against what the servers and the store saw: a scripted run with
//! refusals, a 401, an invalidation, an expiry, an empty store and a failing one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http_server.rs"]
mod http_server;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::store::{MemoryStore, StoreLock, TokenStore};
use en_core_auth::{AuthMiddleware, ClientInfo, Error, ErrorKind, Token};
use http_server::{Reply, TestServer};

/// A memory store that records what it answered, and fails every operation while told to.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    failing: AtomicBool,
    answered_loads: AtomicUsize,
    failures: AtomicUsize,
}

impl Recording {
    fn fail(&self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::Storage, "the disk is gone"));
        }
        Ok(())
    }
}

impl TokenStore for Recording {
    fn load(&self) -> Result<Option<Token>, Error> {
        self.fail()?;
        self.answered_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load()
    }
    fn save(&self, token: &Token) -> Result<(), Error> {
        self.fail()?;
        self.inner.save(token)
    }
    fn lock(&self) -> Result<StoreLock, Error> {
        self.fail()?;
        Ok(StoreLock::none())
    }
}

#[test]
fn the_counters_equal_what_the_servers_and_the_store_saw() {
    // The token endpoint refuses while told to, else issues 1-second tokens. The refusal is
    // `unauthorized_client`: an `invalid_client` would be retried inside the one authorizer
    // call with another client authentication, two requests for one counted call.
    let refusing = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new((0_usize, 0_usize))); // (tokens, refusals)
    let (refuse, tally) = (Arc::clone(&refusing), Arc::clone(&answers));
    let idp = TestServer::start(move |_| {
        let mut tally = tally.lock().unwrap();
        if refuse.load(Ordering::SeqCst) {
            tally.1 += 1;
            return Reply {
                status: 400,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"error":"unauthorized_client"}"#.to_vec(),
            };
        }
        tally.0 += 1;
        Reply::ok(&format!(
            r#"{{"access_token":"st-{}","token_type":"Bearer","expires_in":1}}"#,
            tally.0
        ))
        .with_header("content-type", "application/json")
    });
    let resource = TestServer::start({
        let served = AtomicUsize::new(0);
        move |_| match served.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(401),
            _ => Reply::ok("fine"),
        }
    });
    let store = Arc::new(Recording::default());
    let authorizer =
        ClientCredentials::new(ClientInfo::new("stats", "s"), idp.url("/token")).unwrap();
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(Arc::clone(&store))
        .build();
    let agent = auth.agent(ureq::Agent::config_builder());

    // An empty store, then a 401 and its resend.
    assert_eq!(agent.get(&resource.url("/r")).call().unwrap().status(), 200);
    // An invalidation.
    auth.invalidate();
    auth.access_token().unwrap();
    // An expiry.
    thread::sleep(Duration::from_millis(1100));
    auth.access_token().unwrap();
    // Refusals: the refresh and the login it falls back to.
    refusing.store(true, Ordering::SeqCst);
    auth.invalidate();
    assert!(auth.access_token().is_err());
    refusing.store(false, Ordering::SeqCst);
    // A failing store, once the refusal's back-off (at most 1 s) is over.
    thread::sleep(Duration::from_millis(1100));
    store.failing.store(true, Ordering::SeqCst);
    auth.invalidate();
    let _ = auth.access_token();
    store.failing.store(false, Ordering::SeqCst);

    let stats = auth.clone().stats();
    let (tokens, refusals) = *answers.lock().unwrap();
    assert_eq!(
        (stats.authorize_ok + stats.refresh_ok) as usize,
        tokens,
        "{stats:?}"
    );
    assert_eq!(
        (stats.authorize_failed + stats.refresh_failed) as usize,
        refusals,
        "{stats:?}"
    );
    assert_eq!((stats.refresh_failed, stats.authorize_failed), (1, 1));
    assert_eq!(stats.resends_after_401, 1);
    assert_eq!(
        (stats.store_hits + stats.store_misses) as usize,
        store.answered_loads.load(Ordering::SeqCst),
        "every answered load is a hit or a miss: {stats:?}"
    );
    assert_eq!(
        stats.store_errors as usize,
        store.failures.load(Ordering::SeqCst),
        "every failed load, save and lock: {stats:?}"
    );
    assert!(stats.store_errors >= 2, "{stats:?}");
    assert_eq!(stats.store_hits, 0, "only our own tokens were stored");
    assert!(stats.renewal_time_max > Duration::ZERO);
    assert!(stats.renewal_time_total >= stats.renewal_time_max);
}
