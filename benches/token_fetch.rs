//! What a token costs the client: one client-credentials fetch with
//! `ClientCredentials::authorize()` beside the `oauth2` crate (5.x, its ureq backend) against
//! the same keep-alive loopback token server, and one DPoP proof. Two bare ureq 3 POSTs of
//! the same form show the floor under anything built on ureq 3, and what a whole-request
//! timeout adds to it (a thread per request for name resolution; BENCHMARKS.md, issue 14).
//!
//! `cargo bench --all-features --bench token_fetch`. Times are the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`): both clients are synchronous, so everything a fetch costs the
//! client (building the request, the HTTP exchange on an open connection, parsing) runs on
//! that thread, and the server's work, on its own thread, is left out. Every fetch after the
//! first reuses one kept-alive connection in both clients.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use en_core_auth::oauth2::{ClientCredentials, DpopKey};
use en_core_auth::{Authorizer, ClientInfo};

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// A token response as real servers send it: a JWT-sized access token, an hour's lifetime.
fn token_body() -> String {
    let access_token = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.{}",
        "a".repeat(600),
        "s".repeat(342)
    );
    format!(
        r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600,"scope":"read write"}}"#
    )
}

/// A keep-alive HTTP/1.1 token server on loopback: reads each request with its body and
/// answers with the same token response.
fn token_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!(
        "http://{}/oauth2/token",
        listener.local_addr().expect("addr")
    );
    let body = token_body();
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let reply = reply.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut line = String::new();
                let mut length = 0usize;
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let mut body = vec![0; length];
                            if reader.read_exact(&mut body).is_err()
                                || writer.write_all(reply.as_bytes()).is_err()
                            {
                                return;
                            }
                            length = 0;
                        }
                        Ok(_) => {
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                }
            });
        }
    });
    url
}

fn token_fetch(c: &mut Criterion<ThreadCpuTime>) {
    let url = token_server();
    let mut group = c.benchmark_group("token_fetch");

    let mut ours = ClientCredentials::new(ClientInfo::new("svc", "s3cr3t"), url.clone())
        .expect("token URL")
        .with_scopes(["read", "write"]);
    ours.authorize().expect("our client gets a token");
    group.bench_function("en_core_auth_client_credentials", |b| {
        b.iter(|| black_box(ours.authorize().expect("token")))
    });

    // The floor: the same POST with a bare ureq 3 agent, nothing parsed; then the same
    // with a whole-request timeout, as HttpClient had before issue 14.
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "read write"),
    ];
    let bare_post = |agent: &ureq::Agent| {
        agent
            .post(&url)
            .header("authorization", "Basic c3ZjOnMzY3IzdA==")
            .header("accept", "application/json")
            .send_form(form)
            .expect("post")
            .body_mut()
            .read_to_vec()
            .expect("body")
    };
    let bare = ureq::Agent::new_with_defaults();
    group.bench_function("ureq3_bare_post", |b| {
        b.iter(|| black_box(bare_post(&bare)))
    });
    let timed: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    group.bench_function("ureq3_bare_post_global_timeout", |b| {
        b.iter(|| black_box(bare_post(&timed)))
    });

    use oauth2::basic::BasicClient;
    use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
    let theirs = BasicClient::new(ClientId::new("svc".into()))
        .set_client_secret(ClientSecret::new("s3cr3t".into()))
        .set_token_uri(TokenUrl::new(url.clone()).expect("token URL"));
    let agent = oauth2::ureq::builder().redirects(0).build();
    let fetch = || {
        theirs
            .exchange_client_credentials()
            .add_scope(Scope::new("read".into()))
            .add_scope(Scope::new("write".into()))
            .request(&agent)
            .expect("token")
    };
    assert!(!fetch().access_token().secret().is_empty());
    group.bench_function("oauth2_crate_ureq", |b| b.iter(|| black_box(fetch())));
    group.finish();
}

fn dpop_proof(c: &mut Criterion<ThreadCpuTime>) {
    let key = DpopKey::generate().expect("key");
    let token = "eyJ".to_owned() + &"a".repeat(1000);
    c.bench_function("dpop/proof_per_request", |b| {
        b.iter(|| {
            black_box(
                key.proof("GET", "https://api.example.com/orders?page=2", &token)
                    .expect("proof"),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = token_fetch, dpop_proof
}
criterion_main!(benches);
