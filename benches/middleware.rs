//! The middleware's hot path (a valid token in hand) against inserting a static header.
//!
//! `cargo bench --bench middleware`. `MiddlewareNext` cannot be built outside ureq, so the
//! header-setting step is measured apart (`authorize_headers`, which is what `handle` does
//! before passing the request on), and the whole middleware in a real round trip against a
//! keep-alive loopback server, beside an agent whose middleware only inserts a header.
//!
//! `vs_hand_written_*`: `access_token()` and the header step beside the simplest correct
//! cache a user would write (a `std::sync::RwLock` around the token and its deadline, the
//! token cloned per call), on one thread and aggregate over eight, in the same run:
//! `cargo bench --bench middleware -- vs_hand_written`.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};
use ureq::http::header::AUTHORIZATION;
use ureq::http::{HeaderMap, HeaderValue};

/// A Cognito-sized token (about 1 KB) that lasts an hour. With `time_only`, it declares
/// that its `expired()` is the default (as the crate's own authorizers do), so the hot path
/// does not ask it; without, the hot path asks it on every request (a custom authorizer).
struct Static {
    client: ClientInfo,
    time_only: bool,
}

impl Authorizer for Static {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        Ok(Token::new(jwt_sized()).with_expires_in(Duration::from_secs(3600)))
    }
    fn expiry_by_time_only(&self) -> bool {
        self.time_only
    }
}

fn jwt_sized() -> String {
    "eyJ".to_owned() + &"a".repeat(1000)
}

fn middleware(time_only: bool) -> AuthMiddleware {
    let auth = AuthMiddleware::new(Static {
        client: ClientInfo::new("bench", "secret"),
        time_only,
    });
    auth.access_token().expect("static token");
    auth
}

/// Runs `op` `iters` times spread over `threads` threads; returns the wall time.
fn spread(threads: u64, iters: u64, op: Arc<dyn Fn() + Send + Sync>) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let start = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = Arc::clone(&op);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..per_thread {
                    op();
                }
            })
        })
        .collect();
    let began = Instant::now();
    start.wait();
    for handle in handles {
        handle.join().expect("bench thread");
    }
    began.elapsed()
}

fn header_step(c: &mut Criterion) {
    let static_value = {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", jwt_sized())).expect("header");
        value.set_sensitive(true);
        value
    };
    let mut group = c.benchmark_group("hot_path_1_thread");
    {
        let mut headers = HeaderMap::new();
        let value = static_value.clone();
        group.bench_function("static_header", |b| {
            b.iter(|| {
                headers.insert(AUTHORIZATION, value.clone());
                black_box(&headers);
            })
        });
    }
    for (name, time_only) in [
        ("auth_middleware", true),
        ("auth_middleware_asks_expired", false),
    ] {
        let auth = middleware(time_only);
        let mut headers = HeaderMap::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                auth.authorize_headers(&mut headers).expect("token");
                black_box(&headers);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("hot_path_8_threads");
    {
        let value = static_value.clone();
        let op: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.clone());
            black_box(&headers);
        });
        group.bench_function("static_header", |b| {
            b.iter_custom(|iters| spread(8, iters, Arc::clone(&op)))
        });
    }
    for (name, time_only) in [
        ("auth_middleware", true),
        ("auth_middleware_asks_expired", false),
    ] {
        let auth = middleware(time_only);
        let op: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let mut headers = HeaderMap::new();
            auth.authorize_headers(&mut headers).expect("token");
            black_box(&headers);
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| spread(8, iters, Arc::clone(&op)))
        });
    }
    group.finish();
}

/// The cache a user writes by hand: the token and its deadline behind a `RwLock`, cloned
/// per call. (Renewal is left out: the token never expires during the benchmark.)
struct HandWritten<T> {
    cache: std::sync::RwLock<(T, Instant)>,
}

impl<T: Clone> HandWritten<T> {
    fn new(value: T) -> HandWritten<T> {
        HandWritten {
            cache: std::sync::RwLock::new((value, Instant::now() + Duration::from_secs(3600))),
        }
    }
    fn get(&self) -> T {
        let cache = self.cache.read().expect("not poisoned");
        assert!(Instant::now() < cache.1, "the token lasts the run");
        cache.0.clone()
    }
}

fn vs_hand_written(c: &mut Criterion) {
    let header = || {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", jwt_sized())).expect("header");
        value.set_sensitive(true);
        value
    };
    let token_cache = Arc::new(HandWritten::new(jwt_sized()));
    let header_cache = Arc::new(HandWritten::new(header()));
    let auth = middleware(true);
    type Op = Arc<dyn Fn() + Send + Sync>;
    let ops: Vec<(&str, Op)> = vec![
        ("hand_written_token", {
            let cache = Arc::clone(&token_cache);
            Arc::new(move || {
                black_box(cache.get());
            })
        }),
        ("access_token", {
            let auth = auth.clone();
            Arc::new(move || {
                black_box(auth.access_token().expect("token"));
            })
        }),
        ("hand_written_header", {
            let cache = Arc::clone(&header_cache);
            Arc::new(move || {
                let mut headers = HeaderMap::new();
                headers.insert(AUTHORIZATION, cache.get());
                black_box(&headers);
            })
        }),
        ("authorize_headers", {
            let auth = auth.clone();
            Arc::new(move || {
                let mut headers = HeaderMap::new();
                auth.authorize_headers(&mut headers).expect("token");
                black_box(&headers);
            })
        }),
    ];
    for threads in [1, 8] {
        let mut group = c.benchmark_group(format!("vs_hand_written_{threads}_threads"));
        for (name, op) in &ops {
            if threads == 1 {
                group.bench_function(*name, |b| b.iter(|| op()));
            } else {
                group.bench_function(*name, |b| {
                    b.iter_custom(|iters| spread(threads, iters, Arc::clone(op)))
                });
            }
        }
        group.finish();
    }
}

/// A keep-alive HTTP/1.1 server on loopback that answers `200 ok` to everything.
fn keep_alive_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if writer.write_all(reply).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    url
}

fn round_trip(c: &mut Criterion) {
    let url = keep_alive_server();
    let value = HeaderValue::from_str(&format!("Bearer {}", jwt_sized())).expect("header");
    let bare: ureq::Agent = ureq::Agent::config_builder()
        .middleware(
            move |mut request: ureq::http::Request<ureq::SendBody>,
                  next: ureq::middleware::MiddlewareNext| {
                request.headers_mut().insert(AUTHORIZATION, value.clone());
                next.handle(request)
            },
        )
        .build()
        .into();
    let authed: ureq::Agent = ureq::Agent::config_builder()
        .middleware(middleware(true))
        .build()
        .into();

    let mut group = c.benchmark_group("round_trip_keep_alive");
    // The static agent runs before and after ours: on a shared machine the gap between its
    // two runs shows how much of any difference is drift, not the middleware.
    let runs = [
        ("static_header", bare.clone()),
        ("auth_middleware", authed),
        ("static_header_again", bare),
    ];
    for (name, agent) in runs {
        let url = url.clone();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut response = agent.get(&url).call().expect("loopback");
                black_box(response.body_mut().read_to_vec().expect("body"));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, header_step, vs_hand_written, round_trip);
criterion_main!(benches);
