//! Issue 7: token requests for 32 threads on a cold start, beside Python's `requests-auth`
//! doing the same against the same local identity provider in the same run.
//!
//! `EN_CORE_AUTH_PYTHON=/path/to/venv/bin/python cargo bench --features testing --bench cold_start`
//!
//! A repetition releases 32 threads together through a barrier; each does one GET of the
//! protected URL with a client that has no token yet (a fresh [`AuthMiddleware`] for us, a
//! fresh `OAuth2ClientCredentials` over an emptied token cache for `requests-auth`). The token
//! requests are counted by the identity provider itself, before and after each repetition, so
//! both implementations are measured by the same counter. Without `EN_CORE_AUTH_PYTHON` the
//! Python row is skipped with a note (and the bench fails if `EN_CORE_AUTH_REQUIRE_PEERS=1`).
//!
//! Wall time runs from the barrier's release to the last thread's end. It is printed for
//! scale only: the two sides differ in language and HTTP stack, and both share the machine's
//! cores with the identity provider. The figure this bench exists for is the token count.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, ClientInfo};

const THREADS: usize = 32;
const REPETITIONS: usize = 5;
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret";
const TIMEOUT: Duration = Duration::from_secs(30);

/// What one repetition did, as the identity provider and the clients saw it.
struct Repetition {
    /// Requests that reached the token endpoint (the identity provider's count).
    token_requests: usize,
    /// Requests that reached the protected resource (the identity provider's count).
    protected_requests: usize,
    /// Threads whose GET ended in a 200.
    ok: usize,
    wall: Duration,
}

/// One cold start of ours: a fresh middleware, 32 threads, one GET each.
fn ours_once(idp: &LocalIdp) -> Repetition {
    let credentials =
        ClientCredentials::new(ClientInfo::new(CLIENT_ID, CLIENT_SECRET), idp.token_url())
            .expect("client credentials for the local identity provider");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .middleware(AuthMiddleware::new(credentials))
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let url = idp.protected_url();
    let start = Arc::new(Barrier::new(THREADS + 1));
    let tokens_before = idp.requests(Operation::Token);
    let protected_before = idp.requests(Operation::Protected);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (agent, url, start) = (agent.clone(), url.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                // A transport error counts as a non-200, as an exception does on the Python side.
                agent.get(&url).call().map(|r| r.status().as_u16()).ok()
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let statuses: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("bench thread"))
        .collect();
    let wall = began.elapsed();
    Repetition {
        token_requests: idp.requests(Operation::Token) - tokens_before,
        protected_requests: idp.requests(Operation::Protected) - protected_before,
        ok: statuses.iter().filter(|s| **s == Some(200)).count(),
        wall,
    }
}

/// Runs the Python peer once for all repetitions, stepping it one repetition at a time so
/// that the identity provider's counters can be read between them. Returns the peer's
/// versions line and its repetitions.
fn requests_auth(idp: &LocalIdp, python: &str) -> (String, Vec<Repetition>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("peers")
        .join("cold_start_requests_auth.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(idp.token_url())
        .arg(idp.protected_url())
        .arg(REPETITIONS.to_string())
        .arg("--step")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let next_line = |lines: &mut std::io::Lines<BufReader<ChildStdout>>| {
        lines
            .next()
            .expect("the Python peer ended early (see its error above)")
            .expect("the Python peer's output")
    };
    let versions = next_line(&mut lines)
        .strip_prefix("version ")
        .expect("a `version` line first")
        .to_owned();

    let mut tokens_before = idp.requests(Operation::Token);
    let mut protected_before = idp.requests(Operation::Protected);
    let mut repetitions = Vec::new();
    for _ in 0..REPETITIONS {
        let line = next_line(&mut lines);
        // The peer waits for our newline before its next repetition: these counts are this
        // repetition's alone.
        let tokens_now = idp.requests(Operation::Token);
        let protected_now = idp.requests(Operation::Protected);
        let field = |name: &str| -> f64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no `{name}` in the peer's line {line:?}"))
        };
        let repetition = Repetition {
            token_requests: tokens_now - tokens_before,
            protected_requests: protected_now - protected_before,
            ok: field("ok") as usize,
            wall: Duration::from_secs_f64(field("wall_ms") / 1000.0),
        };
        let seen_by_client = field("token_responses") as usize;
        if seen_by_client != repetition.token_requests {
            println!(
                "note: requests-auth saw {seen_by_client} token responses, the identity provider \
                 counted {} token requests",
                repetition.token_requests
            );
        }
        repetitions.push(repetition);
        (tokens_before, protected_before) = (tokens_now, protected_now);
        writeln!(stdin,).expect("step the Python peer");
    }
    drop(stdin);
    let status = child.wait().expect("wait for the Python peer");
    assert!(status.success(), "the Python peer failed: {status}");
    (versions, repetitions)
}

/// The middle value of an odd-length list (REPETITIONS is odd).
fn median<T: Ord + Copy>(mut values: Vec<T>) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

fn row(name: &str, repetitions: &[Repetition]) -> String {
    let tokens: Vec<_> = repetitions.iter().map(|r| r.token_requests).collect();
    let (min, max) = (
        tokens.iter().min().copied().unwrap_or(0),
        tokens.iter().max().copied().unwrap_or(0),
    );
    let ok: usize = repetitions.iter().map(|r| r.ok).sum();
    let wall = median(repetitions.iter().map(|r| r.wall).collect());
    format!(
        "| {name} | {min} / {} / {max} (each: {tokens:?}) | {ok} of {} | {:.1} |",
        median(tokens.clone()),
        THREADS * repetitions.len(),
        wall.as_secs_f64() * 1000.0
    )
}

fn protected_note(name: &str, repetitions: &[Repetition]) -> String {
    let protected: Vec<_> = repetitions.iter().map(|r| r.protected_requests).collect();
    format!("{name}: requests at the protected resource per repetition {protected:?}")
}

fn main() {
    let idp = LocalIdp::builder()
        .client(CLIENT_ID, Some(CLIENT_SECRET))
        .token_ttl(Duration::from_secs(3600))
        .start()
        .expect("start the local identity provider");

    let ours: Vec<_> = (0..REPETITIONS).map(|_| ours_once(&idp)).collect();
    let ours_name = format!("en-core-auth {}", env!("CARGO_PKG_VERSION"));

    let peer = match std::env::var("EN_CORE_AUTH_PYTHON") {
        Ok(python) => Some(requests_auth(&idp, &python)),
        Err(_) if std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("EN_CORE_AUTH_REQUIRE_PEERS=1 but EN_CORE_AUTH_PYTHON is not set")
        }
        Err(_) => {
            println!("requests-auth: skipped: run .ci/test to set up peers (EN_CORE_AUTH_PYTHON)");
            None
        }
    };

    println!();
    println!("Cold start, {THREADS} threads released together, {REPETITIONS} repetitions:");
    println!();
    println!(
        "| implementation | token requests for {THREADS} threads (min / median / max) | 200s | median wall ms |"
    );
    println!("| --- | --- | --- | --- |");
    println!("{}", row(&ours_name, &ours));
    let peer_name = peer.as_ref().map(|(versions, _)| versions.clone());
    if let (Some((_, repetitions)), Some(name)) = (&peer, &peer_name) {
        println!("{}", row(name, repetitions));
    }
    println!();
    println!("{}", protected_note(&ours_name, &ours));
    if let (Some((_, repetitions)), Some(name)) = (&peer, &peer_name) {
        println!("{}", protected_note(name, repetitions));
    }
}
