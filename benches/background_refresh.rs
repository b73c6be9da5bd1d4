//! The slowest `header_value()` with and without background refresh, beside the token
//! endpoint's delay: `cargo bench --bench background_refresh`.
//!
//! A loopback token endpoint answers after `DELAY` with 8-second tokens; four threads call
//! `header_value()` every 5 ms for three token lifetimes (the first token, fetched before,
//! is not counted). Without background refresh, the request thread that finds the advisory
//! window open waits for the endpoint; with it, none should.

#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use en_core_auth::base::RefreshThresholds;
use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::{AuthMiddleware, ClientInfo};
use http_server::{Reply, TestServer};

const DELAY: Duration = Duration::from_millis(1000);
const LIFETIME_SECS: u64 = 8;

fn endpoint() -> TestServer {
    let issued = AtomicUsize::new(0);
    TestServer::start(move |_| {
        thread::sleep(DELAY);
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(&format!(
            r#"{{"access_token":"t{n}","token_type":"Bearer","expires_in":{LIFETIME_SECS}}}"#
        ))
        .with_header("content-type", "application/json")
    })
}

/// Every call's latency, sorted, and the token requests made.
fn run(background: bool) -> (Vec<Duration>, usize) {
    let server = endpoint();
    let authorizer = ClientCredentials::new(ClientInfo::new("c", "s"), server.url("/token"))
        .expect("loopback endpoint");
    let auth = AuthMiddleware::builder(authorizer)
        .refresh_thresholds(RefreshThresholds {
            advisory_fraction: 0.5,
            ..RefreshThresholds::default()
        })
        .background_refresh(background)
        .build();
    auth.header_value().expect("first token");
    let until = Instant::now() + Duration::from_secs(3 * LIFETIME_SECS);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let auth = auth.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                while Instant::now() < until {
                    let began = Instant::now();
                    auth.header_value().expect("token");
                    seen.push(began.elapsed());
                    thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("caller"))
        .collect();
    all.sort();
    (all, server.count())
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: skip the long run.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!(
        "token endpoint delay: {DELAY:?}; tokens of {LIFETIME_SECS} s; 4 threads, 3 lifetimes"
    );
    println!(
        "| background refresh | calls | token requests | median | p99.9 | slowest | calls > 100 ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for background in [false, true] {
        let (all, requests) = run(background);
        let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
        let slow = all
            .iter()
            .filter(|d| **d > Duration::from_millis(100))
            .count();
        println!(
            "| {} | {} | {} | {:?} | {:?} | {:?} | {} |",
            if background { "on" } else { "off" },
            all.len(),
            requests,
            at(0.5),
            at(0.999),
            all.last().copied().unwrap_or_default(),
            slow
        );
    }
}
