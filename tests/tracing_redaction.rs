//! Feature `tracing`: a subscriber at TRACE records every field of every span and event
//! while the middleware logs in, renews, resends after a 401, refreshes in the background and
//! meets a failing Redis; none of the fields holds a secret of the scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http_server.rs"]
mod http_server;

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use en_core_auth::base::RefreshThresholds;
use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::store::{RedisStore, TokenStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};
use http_server::{Reply, TestServer};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

const CLIENT_SECRET: &str = "cs-7f3a-client-secret";
const ACCESS: &str = "at-91c2-access-token";
const REFRESH: &str = "rt-55d0-refresh-token";
const ID_TOKEN: &str = "it-0b7e-id-token";
const REDIS_PASSWORD: &str = "rp-e41d-redis-password";

/// Every field, as `name=value`, of every span and event.
#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut Vec<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Recorded {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = vec![format!("span={}", attrs.metadata().name())];
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().extend(fields);
    }
    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = vec![format!("event@{}", event.metadata().level())];
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().extend(fields);
    }
}

/// A Redis store that reports every operation as failed (the real one, with its password
/// in the URL, runs first and fails quietly: nothing listens).
struct Down(RedisStore);

impl TokenStore for Down {
    fn load(&self) -> Result<Option<Token>, Error> {
        self.0.load()?;
        Err(Error::new(ErrorKind::Storage, "Redis is down"))
    }
    fn save(&self, token: &Token) -> Result<(), Error> {
        self.0.save(token)?;
        Err(Error::new(ErrorKind::Storage, "Redis is down"))
    }
}

#[test]
fn no_field_at_any_level_holds_a_secret() {
    let recorded = Recorded::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorded.clone()))
        .unwrap();

    let issued = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&issued);
    let idp = TestServer::start(move |_| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 3 {
            return Reply {
                status: 503,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"error":"temporarily_unavailable"}"#.to_vec(),
            };
        }
        Reply::ok(&format!(
            r#"{{"access_token":"{ACCESS}-{n}","refresh_token":"{REFRESH}","id_token":"{ID_TOKEN}","token_type":"Bearer","expires_in":4}}"#
        ))
        .with_header("content-type", "application/json")
    });
    // The resource refuses the first request: one resend.
    let resource = TestServer::start({
        let served = AtomicUsize::new(0);
        move |_| match served.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(401),
            _ => Reply::ok("fine"),
        }
    });
    let authorizer = ClientCredentials::new(
        ClientInfo::new("trace-client", CLIENT_SECRET),
        idp.url("/token"),
    )
    .unwrap();
    // Nothing listens on port 1: every Redis command fails.
    let key = authorizer.credential_set().cache_key();
    let store = RedisStore::new(&format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1/"), key).unwrap();
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(Down(store))
        .refresh_thresholds(RefreshThresholds {
            advisory_fraction: 0.5,
            ..RefreshThresholds::default()
        })
        .background_refresh(true)
        .on_token_change(|_| {})
        .build();
    let agent = auth.agent(ureq::Agent::config_builder());
    agent.get(&resource.url("/r")).call().unwrap();
    auth.invalidate();
    let _ = auth.header_value();
    // The background thread renews as the window opens (2 s into a 4 s token).
    let until = Instant::now() + Duration::from_secs(20);
    while issued.load(Ordering::SeqCst) < 4 && Instant::now() < until {
        let _ = auth.header_value();
        thread::sleep(Duration::from_millis(50));
    }
    drop((agent, auth));
    thread::sleep(Duration::from_millis(200));

    let fields = recorded.0.lock().unwrap().clone();
    let stats_seen = |needle: &str| fields.iter().any(|f| f.contains(needle));
    // The scenario reached every kind of span and event.
    for expected in [
        "span=en_core_auth.renewal",
        "span=en_core_auth.background_refresh",
        "client_id=trace-client",
        "outcome=ok",
        "outcome=failed",
        "op=load",
        "op=save",
        "error_kind=Storage",
        "request refused with 401",
        "what=started",
    ] {
        assert!(stats_seen(expected), "no `{expected}` in {fields:#?}");
    }
    for secret in [
        CLIENT_SECRET,
        ACCESS,
        REFRESH,
        ID_TOKEN,
        REDIS_PASSWORD,
        "Bearer ",
    ] {
        let leaks: Vec<_> = fields.iter().filter(|f| f.contains(secret)).collect();
        assert!(leaks.is_empty(), "`{secret}` in {leaks:?}");
    }
}
