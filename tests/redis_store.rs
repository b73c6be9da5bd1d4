//! `RedisStore` against a real `redis-server` (Debian's package; `.ci/test` installs it),
//! started by each test on a free loopback port without persistence.
//!
//! Fleet tests run this test binary again as the fleet's processes: with
//! `EN_CORE_AUTH_FLEET_WORKER` set, the ignored `fleet_worker` (run with `--ignored`) is
//! one machine of the fleet. It is no test of its own, so it is not counted as one.

#[path = "support/oauth2_server.rs"]
mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::oauth2::RefreshToken;
use en_core_auth::store::{CacheKey, FileStore, RedisStore, TokenStore};
use en_core_auth::testing::{Fault, LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, ErrorKind, Token};
use support::{Answer, FaultServer};

const CLIENT: &str = "fleet-client";
const SECRET: &str = "fl33t-s3cr3t-value";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of our own, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        Redis::start_on(free_port())
    }

    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: .ci/test installs Debian's redis-server");
        let redis = Redis { child, port };
        for _ in 0..400 {
            if redis.connection().is_some() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not come up on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .ok()
            .map(|_| connection)
    }

    fn query<T: redis::FromRedisValue>(&self, command: &mut redis::Cmd) -> T {
        command.query(&mut self.connection().unwrap()).unwrap()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped, also when a test fails, so that no server outlives
/// its test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn idp(ttl: Duration) -> LocalIdp {
    LocalIdp::builder()
        .client(CLIENT, Some(SECRET))
        .token_ttl(ttl)
        .start()
        .unwrap()
}

fn authorizer(idp: &LocalIdp) -> ClientCredentials {
    ClientCredentials::new(ClientInfo::new(CLIENT, SECRET), idp.token_url())
        .unwrap()
        .with_scopes(["api"])
}

fn key(idp: &LocalIdp) -> CacheKey {
    authorizer(idp).credential_set().cache_key()
}

/// Settings of one fleet process.
struct Worker<'a> {
    idp: &'a LocalIdp,
    secs: f64,
    threads: usize,
    cache_dir: std::path::PathBuf,
    redis: Option<String>,
    /// 0, with `lock_timeout_ms` 0: every setting of `RedisStore` at its documented
    /// default (timeout, lease, back-off, lock timeout).
    lease_ms: u64,
    lock_timeout_ms: u64,
}

impl Worker<'_> {
    fn spawn(&self) -> Child {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "fleet_worker",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("EN_CORE_AUTH_FLEET_WORKER", "1")
            .env("FLEET_TOKEN_URL", self.idp.token_url())
            .env("FLEET_SECS", self.secs.to_string())
            .env("FLEET_THREADS", self.threads.to_string())
            .env("FLEET_CACHE_DIR", &self.cache_dir)
            .env("FLEET_LEASE_MS", self.lease_ms.to_string())
            .env("FLEET_LOCK_TIMEOUT_MS", self.lock_timeout_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &self.redis {
            command.env("FLEET_REDIS_URL", url);
        }
        command.spawn().unwrap()
    }
}

/// What a worker printed: (successful calls, failed calls), and its standard error.
fn finish(child: Child) -> ((u64, u64), String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "worker failed: {stdout} {stderr}");
    let line = stdout
        .lines()
        .find_map(|line| line.split_once("FLEET ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    let number = |name: &str| -> u64 {
        line.split(' ')
            .find_map(|part| part.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    ((number("calls="), number("failures=")), stderr)
}

/// One machine of a fleet (only when run by a fleet test): threads ask one middleware for a
/// token for a while, then print how many calls were made and how many failed.
#[test]
#[ignore = "not a test: one process of the fleet tests, which run it with --ignored"]
fn fleet_worker() {
    if std::env::var_os("EN_CORE_AUTH_FLEET_WORKER").is_none() {
        eprintln!("fleet_worker is run by the fleet tests (EN_CORE_AUTH_FLEET_WORKER unset)");
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap();
    let millis = |name: &str| Duration::from_millis(var(name).parse().unwrap());
    Logger::install();
    let authorizer =
        ClientCredentials::new(ClientInfo::new(CLIENT, SECRET), var("FLEET_TOKEN_URL"))
            .unwrap()
            .with_scopes(["api"]);
    let key = authorizer.credential_set().cache_key();
    let builder = AuthMiddleware::builder(authorizer);
    let auth = match std::env::var("FLEET_REDIS_URL") {
        // The documented defaults: timeout, lease, back-off and lock timeout.
        Ok(url) if var("FLEET_LEASE_MS") == "0" && var("FLEET_LOCK_TIMEOUT_MS") == "0" => {
            builder.token_store(RedisStore::new(&url, key).unwrap())
        }
        Ok(url) => builder.token_store(
            RedisStore::new(&url, key)
                .unwrap()
                .timeout(Duration::from_millis(300))
                .lease(millis("FLEET_LEASE_MS"))
                .retry_after(Duration::from_millis(500))
                .lock_timeout(millis("FLEET_LOCK_TIMEOUT_MS")),
        ),
        Err(_) => builder.token_store(FileStore::in_dir(var("FLEET_CACHE_DIR"), key)),
    }
    .build();
    let run_for = Duration::from_secs_f64(var("FLEET_SECS").parse().unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..var("FLEET_THREADS").parse::<usize>().unwrap())
        .map(|_| {
            let (auth, calls, failures) = (auth.clone(), calls.clone(), failures.clone());
            std::thread::spawn(move || {
                loop {
                    match auth.access_token() {
                        Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            eprintln!("call failed: {error}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    if started.elapsed() >= run_for {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    println!(
        "FLEET calls={} failures={}",
        calls.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
}

/// This crate's log lines on standard error, so that tests can read what a worker did.
struct Logger;

impl Logger {
    fn install() {
        static LOGGER: Logger = Logger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("en_core_auth")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{}: {}", record.level(), record.args());
        }
    }
    fn flush(&self) {}
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-redis-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `processes` workers together and returns the token requests the IdP saw, and how
/// many times a worker found Redis unusable (each a back-off, during which that worker may
/// go to the identity provider once itself).
fn run_fleet(processes: usize, secs: f64, ttl: Duration, redis: Option<&Redis>) -> (usize, usize) {
    let idp = idp(ttl);
    let root = temp_dir("fleet");
    let children: Vec<Child> = (0..processes)
        .map(|n| {
            Worker {
                idp: &idp,
                secs,
                threads: 4,
                // Its own cache directory: a machine of its own.
                cache_dir: root.join(format!("machine-{n}")),
                redis: redis.map(Redis::url),
                lease_ms: 5000,
                lock_timeout_ms: 30_000,
            }
            .spawn()
        })
        .collect();
    let mut back_offs = 0;
    for child in children {
        let ((calls, failures), stderr) = finish(child);
        assert_eq!(failures, 0, "{stderr}");
        assert!(calls > 0);
        back_offs += stderr.matches("Redis token store unusable").count();
    }
    let _ = std::fs::remove_dir_all(&root);
    (idp.requests(Operation::Token), back_offs)
}

/// The fleet figure of BENCHMARKS.md: 12 processes x 4 threads, each with its own cache
/// directory, 8-second tokens, 20 s (EN_CORE_AUTH_FLEET_SECS to change it). With Redis the
/// fleet asks about once per token lifetime; without, every process does.
#[test]
fn a_fleet_on_redis_asks_once_per_lifetime_instead_of_once_per_process() {
    let secs: f64 = std::env::var("EN_CORE_AUTH_FLEET_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(20.0);
    let ttl = Duration::from_secs(8);
    let processes = 12;
    // Renewals start in the advisory window, a quarter of the lifetime before expiry.
    let lifetimes = secs / (ttl.as_secs_f64() * 0.75);

    let redis = Redis::start();
    let (shared, back_offs) = run_fleet(processes, secs, ttl, Some(&redis));
    let (alone, _) = run_fleet(processes, secs, ttl, None);
    println!(
        "fleet of {processes} processes x 4 threads, {secs} s of {} s tokens: \
         {shared} token requests with Redis ({back_offs} Redis timeouts), {alone} without",
        ttl.as_secs()
    );
    // One for the start and one per lifetime, with room for a renewal that races a
    // token's expiry on a loaded machine; and one more per Redis command that outlived the
    // workers' 300 ms timeout on a loaded machine (counted, not timed): that worker then
    // goes to the identity provider itself, by design.
    let per_fleet = (lifetimes.ceil() as usize + 1) * 2 + back_offs;
    assert!(shared >= 1 && shared <= per_fleet, "{shared} > {per_fleet}");
    // Without a shared store every process asks for itself, at least once per lifetime.
    assert!(
        alone >= processes * lifetimes.floor().max(1.0) as usize,
        "{alone} without Redis"
    );
    assert!(alone > shared * 3, "{alone} vs {shared}");
}

#[test]
fn redis_killed_mid_run_every_call_still_gets_a_token() {
    let idp = idp(Duration::from_secs(3));
    let mut redis = Redis::start();
    let root = temp_dir("killed");
    let children: Vec<Child> = (0..4)
        .map(|n| {
            Worker {
                idp: &idp,
                secs: 8.0,
                threads: 4,
                cache_dir: root.join(format!("machine-{n}")),
                redis: Some(redis.url()),
                lease_ms: 1000,
                lock_timeout_ms: 30_000,
            }
            .spawn()
        })
        .collect();
    // Once the fleet has a token in Redis, Redis goes away.
    let store = RedisStore::new(&redis.url(), key(&idp)).unwrap();
    let mut polls = 0;
    while store.load().unwrap().is_none() {
        polls += 1;
        assert!(polls < 1000, "no token ever reached Redis");
        std::thread::sleep(Duration::from_millis(10));
    }
    redis.kill();
    let mut warned = 0;
    for child in children {
        let ((calls, failures), stderr) = finish(child);
        assert_eq!(failures, 0, "{stderr}");
        assert!(calls > 0);
        let warnings = stderr.matches("Redis token store unusable").count();
        // Logged once per back-off (500 ms), not once per call (hundreds): 8 s of run.
        assert!(warnings <= 8 * 2 + 1, "{warnings} warnings");
        warned += usize::from(warnings > 0);
    }
    // The processes went to the identity provider themselves after the token they had
    // expired, and said why.
    assert!(warned >= 1);
    assert!(idp.requests(Operation::Token) >= 2);
    let _ = std::fs::remove_dir_all(&root);
}

/// With the documented defaults (a 5 s lease, a 30 s lock timeout): a holder killed
/// mid-renewal holds another machine up for about one lease, not for the lock timeout.
#[test]
fn a_lease_holder_killed_mid_renewal_is_replaced_within_the_lease() {
    let idp = idp(Duration::from_secs(3600));
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url(), key(&idp)).unwrap();
    // The first token request hangs: its process holds the lease, mid-renewal.
    idp.fail_next(1, Fault::Delay(Duration::from_secs(120)));
    let worker = || Worker {
        idp: &idp,
        secs: 0.0,
        threads: 1,
        cache_dir: temp_dir("lease"),
        redis: Some(redis.url()),
        lease_ms: 0,
        lock_timeout_ms: 0,
    };
    let mut holder = worker().spawn();
    let mut polls = 0;
    while idp.requests(Operation::Token) == 0 {
        polls += 1;
        assert!(polls < 2000, "the holder never asked for a token");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The keeper thread extends the lease while the renewal hangs: extensions are seen,
    // each leaving at most a lease.
    let lease = Duration::from_secs(5);
    count_extensions(&redis, store.lock_key(), 2, lease);
    // A second machine waits, and the holder dies without releasing anything.
    let waiter = worker().spawn();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();
    let ((calls, failures), stderr) = finish(waiter);
    let held_up = killed.elapsed();
    assert_eq!((calls, failures), (1, 0), "{stderr}");
    // It got the lease (it did not give up waiting after the 30 s lock timeout) and
    // renewed: one more token request, about one lease after the holder died (the rest of
    // the lease, plus a process start on a loaded machine).
    assert!(!stderr.contains("renewing without it"), "{stderr}");
    assert!(held_up < lease * 2, "held up for {held_up:?}");
    assert_eq!(idp.requests(Operation::Token), 2);
    assert!(store.load().unwrap().is_some());
}

/// Watches the lease at `lock_key` until it was extended `extensions` times (its time to
/// live went up), each sample leaving it alive with at most `lease` to run: counted, not
/// timed, so a loaded machine only makes it slower.
fn count_extensions(redis: &Redis, lock_key: &str, extensions: usize, lease: Duration) {
    let lease_ms = lease.as_millis() as i64;
    let pttl = || -> i64 { redis.query(redis::cmd("PTTL").arg(lock_key)) };
    let (mut seen, mut last, mut polls) = (0, pttl(), 0);
    while seen < extensions {
        polls += 1;
        assert!(polls < 10_000, "the keeper stopped: {seen} extensions seen");
        std::thread::sleep(Duration::from_millis(10));
        let now = pttl();
        assert!(
            now > 0 && now <= lease_ms,
            "lease PTTL {now}: lapsed under a live holder"
        );
        if now > last {
            seen += 1;
        }
        last = now;
    }
}

#[test]
fn keys_expire_live_under_the_prefix_and_hold_no_secret() {
    let idp = idp(Duration::from_secs(30));
    let redis = Redis::start();
    let store = || {
        RedisStore::new(&redis.url(), key(&idp))
            .unwrap()
            .lease(Duration::from_millis(900))
    };
    let auth = AuthMiddleware::builder(authorizer(&idp))
        .token_store(store().store_refresh_tokens(true))
        .build();
    let token = auth.access_token().unwrap();
    // The token and the fencing counter of the lease its renewal took.
    let mut keys: Vec<String> = redis.query(redis::cmd("KEYS").arg("*"));
    keys.sort();
    let fence = store().lock_key().replace(":lock", ":fence");
    assert_eq!(keys, vec![fence.clone(), store().token_key().to_owned()]);
    let fence_ttl: i64 = redis.query(redis::cmd("PTTL").arg(&fence));
    assert!(fence_ttl > 0, "the fencing counter never expires");
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(store().token_key()));
    // The token carries a refresh token: kept for a refresh token's life, not for ever.
    let month = en_core_auth::store::REDIS_REFRESH_TOKEN_TTL.as_millis() as i64;
    assert!(ttl > 30_000 && ttl <= month, "token PTTL {ttl}");

    let lock = store().lock().unwrap();
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(store().lock_key()));
    assert!(ttl > 0 && ttl <= 900, "lease PTTL {ttl}");
    // Exclusive: another machine cannot take it.
    assert!(store().try_lock().unwrap().is_none());
    let keys: Vec<String> = redis.query(redis::cmd("KEYS").arg("*"));
    for key in &keys {
        assert!(key.starts_with("en-core-auth:{"), "{key}");
        for data in [CLIENT, SECRET, "api", "127.0.0.1", token.as_str()] {
            assert!(!key.contains(data), "{key} contains {data}");
        }
        let value: Vec<u8> = redis.query(redis::cmd("GET").arg(key));
        let value = String::from_utf8_lossy(&value);
        assert!(!value.contains(SECRET), "{key} holds the client secret");
    }
    drop(lock);
    // Released by its owner.
    let exists: i64 = redis.query(redis::cmd("EXISTS").arg(store().lock_key()));
    assert_eq!(exists, 0);
    assert!(store().try_lock().unwrap().is_some());

    // A token already expired is not stored at all.
    store().clear().unwrap();
    store()
        .save(&Token::new("old").with_expires_in(Duration::ZERO))
        .unwrap();
    let exists: i64 = redis.query(redis::cmd("EXISTS").arg(store().token_key()));
    assert_eq!(exists, 0);
}

#[test]
fn a_corrupt_or_foreign_value_or_a_rotated_secret_is_an_empty_store() {
    let idp = idp(Duration::from_secs(300));
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url(), key(&idp)).unwrap();
    let token_key = store.token_key().to_owned();
    for value in ["", "not json", "{\"format\": \"other\"}", "[1,2]"] {
        let _: () = redis.query(redis::cmd("SET").arg(&token_key).arg(value));
        assert!(store.load().unwrap().is_none(), "{value:?} accepted");
    }
    let _: () = redis.query(redis::cmd("DEL").arg(&token_key));
    let _: () = redis.query(redis::cmd("HSET").arg(&token_key).arg("f").arg("v"));
    assert!(store.load().unwrap().is_none());
    let _: () = redis.query(redis::cmd("DEL").arg(&token_key));

    // A token stored with the old secret is not handed out once the secret rotated.
    let expiring = Token::new("from-old-secret").with_expires_in(Duration::from_secs(300));
    store.save(&expiring).unwrap();
    assert_eq!(
        store.load().unwrap().unwrap().access_token(),
        "from-old-secret"
    );
    let rotated = ClientCredentials::new(ClientInfo::new(CLIENT, "n3w-s3cr3t"), idp.token_url())
        .unwrap()
        .with_scopes(["api"])
        .credential_set()
        .cache_key();
    let after_rotation = RedisStore::new(&redis.url(), rotated).unwrap();
    assert_eq!(after_rotation.token_key(), store.token_key());
    assert!(after_rotation.load().unwrap().is_none());
}

#[test]
fn redis_down_slow_or_full_sends_the_process_to_the_identity_provider() {
    let idp = idp(Duration::from_secs(300));
    // Down: nothing listens. `new` still succeeds, and every call gets a token.
    let port = free_port();
    let down = RedisStore::new(&format!("redis://127.0.0.1:{port}/0"), key(&idp))
        .unwrap()
        .retry_after(Duration::ZERO);
    assert_eq!(down.load().unwrap_err().kind(), ErrorKind::Storage);
    let auth = AuthMiddleware::builder(authorizer(&idp))
        .token_store(
            RedisStore::new(&format!("redis://127.0.0.1:{port}/0"), key(&idp))
                .unwrap()
                .retry_after(Duration::ZERO),
        )
        .build();
    auth.access_token().unwrap();
    assert_eq!(idp.requests(Operation::Token), 1);
    // Redis comes back: the same store uses it.
    let redis = Redis::start_on(port);
    down.save(&Token::new("t").with_expires_in(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(down.load().unwrap().unwrap().access_token(), "t");

    // Slow: a server that accepts and never answers. Bounded by the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = RedisStore::new(
        &format!(
            "redis://127.0.0.1:{}/0",
            silent.local_addr().unwrap().port()
        ),
        key(&idp),
    )
    .unwrap()
    .timeout(Duration::from_millis(100));
    assert_eq!(slow.load().unwrap_err().kind(), ErrorKind::Storage);
    assert!(slow.try_lock().unwrap().is_some());
    // The same over TLS: the handshake is bounded too (and the rustls set-up works).
    let slow_tls = RedisStore::new(
        &format!(
            "rediss://127.0.0.1:{}/0",
            silent.local_addr().unwrap().port()
        ),
        key(&idp),
    )
    .unwrap()
    .timeout(Duration::from_millis(100));
    assert_eq!(slow_tls.load().unwrap_err().kind(), ErrorKind::Storage);

    // Full: every write is refused (OOM). The token is still handed out.
    let _: () = redis.query(redis::cmd("DEL").arg(down.token_key()));
    let _: () = redis.query(redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1"));
    let full_auth = AuthMiddleware::builder(authorizer(&idp))
        .token_store(RedisStore::new(&redis.url(), key(&idp)).unwrap())
        .build();
    full_auth.access_token().unwrap();
    assert_eq!(idp.requests(Operation::Token), 2);
}

/// `rediss://` against a `redis-server` with TLS on, its certificate signed by a CA made for
/// the test with `openssl`: trusted only when the store is given that CA.
#[test]
fn rediss_with_a_private_ca() {
    let dir = temp_dir("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl is needed to make the test's certificates");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=en-core-auth test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    let port = free_port();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let server = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &path("server.pem"),
            "--tls-key-file",
            &path("server.key"),
        ])
        .args([
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    let url = format!("rediss://127.0.0.1:{port}/0");
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let store = || {
        RedisStore::new(&url, CacheKey::new("e", "c", None, ["tls"]))
            .unwrap()
            .retry_after(Duration::ZERO)
    };
    let trusted = store().with_root_certificate(&ca).unwrap();
    let token = Token::new("over-tls").with_expires_in(Duration::from_secs(60));
    let mut stored = false;
    for _ in 0..400 {
        trusted.save(&token).unwrap();
        if trusted.load().unwrap().is_some() {
            stored = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(stored, "no TLS connection to redis-server");
    assert!(trusted.try_lock().unwrap().is_some());
    // The system's roots do not know the test CA: the server is not trusted, so the store
    // is empty (and the process would go to the identity provider).
    assert_eq!(store().load().unwrap_err().kind(), ErrorKind::Storage);
    // Not PEM, or not rediss://: configuration errors.
    assert!(store().with_root_certificate(b"not pem").is_err());
    let plain = RedisStore::new(
        "redis://127.0.0.1:6379/0",
        CacheKey::new("e", "c", None, ["tls"]),
    );
    assert!(plain.unwrap().with_root_certificate(&ca).is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user and password in the URL are used, the database the URL names holds the keys, and
/// neither a right nor a wrong password ever reaches a log line.
#[test]
fn password_and_database_from_the_url_and_never_in_logs() {
    let idp = idp(Duration::from_secs(300));
    let port = free_port();
    let server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--requirepass", "r3d1s-p455"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .unwrap();
    let url = |password: &str| format!("redis://default:{password}@127.0.0.1:{port}/3");
    let worker = |password: &str| Worker {
        idp: &idp,
        secs: 0.0,
        threads: 1,
        cache_dir: temp_dir("password"),
        redis: Some(url(password)),
        lease_ms: 1000,
        lock_timeout_ms: 30_000,
    };
    // Wait for the server, with the right password.
    let admin = redis::Client::open(url("r3d1s-p455")).unwrap();
    let mut connection = None;
    for _ in 0..400 {
        if let Ok(made) = admin.get_connection_with_timeout(Duration::from_secs(1)) {
            connection = Some(made);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut connection = connection.expect("redis-server did not come up");

    let ((calls, failures), stderr) = finish(worker("r3d1s-p455").spawn());
    assert_eq!((calls, failures), (1, 0), "{stderr}");
    assert!(!stderr.contains("r3d1s-p455"), "{stderr}");
    // The token (and its lease's fencing counter) are in database 3, and only there.
    let in_3: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(in_3.len(), 2, "{in_3:?}");
    let _: () = redis::cmd("SELECT").arg(0).query(&mut connection).unwrap();
    let in_0: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert!(in_0.is_empty());

    // A wrong password: no cache, a token all the same, and the reason logged without it.
    let ((calls, failures), stderr) = finish(worker("wr0ng-p455").spawn());
    assert_eq!((calls, failures), (1, 0), "{stderr}");
    assert!(stderr.contains("Redis token store unusable"), "{stderr}");
    assert!(!stderr.contains("wr0ng-p455"), "{stderr}");
    assert_eq!(idp.requests(Operation::Token), 2);
    drop(server);
}

/// A token response from a server that rotates refresh tokens: a minute's access token.
fn rotated(access: &str, refresh: &str, extra: &str) -> Answer {
    Answer::rotating(access, refresh, 60, extra)
}

/// A process of a fleet sharing one refresh token through Redis: a `RefreshToken`
/// authorizer configured with `R0`.
fn refresh_process(server: &FaultServer, redis: &Redis) -> AuthMiddleware {
    let authorizer =
        RefreshToken::new(ClientInfo::new("fleet", ""), server.url("/token"), "R0").unwrap();
    let store = RedisStore::new(&redis.url(), authorizer.credential_set().cache_key())
        .unwrap()
        .store_refresh_tokens(true);
    AuthMiddleware::builder(authorizer)
        .token_store(store)
        .build()
}

#[test]
fn a_refresh_token_whose_answer_was_lost_is_sent_by_no_machine_again() {
    let redis = Redis::start();
    // R0 is traded for R1; R1 rotates on the server but the answer never arrives.
    let server = FaultServer::start(
        vec![rotated("T1", "R1", ""), Answer::Drop],
        rotated("T-late", "R-late", ""),
    );
    let (first, second) = (
        refresh_process(&server, &redis),
        refresh_process(&server, &redis),
    );
    assert_eq!(first.access_token().unwrap(), "T1");
    assert_eq!(second.access_token().unwrap(), "T1");
    first.invalidate();
    assert_eq!(
        first.access_token().unwrap_err().kind(),
        ErrorKind::Transport
    );
    // The second machine held R1 in memory; a new one has only R0, traded long ago.
    second.invalidate();
    let refused = second.access_token().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CredentialsRejected, "{refused}");
    let new_machine = refresh_process(&server, &redis);
    new_machine.invalidate();
    let _ = new_machine.access_token();
    new_machine.invalidate();
    let refused = new_machine.access_token().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CredentialsRejected, "{refused}");
    assert_eq!(server.refresh_tokens_seen(), ["R0", "R1"]);
}

#[test]
fn rotation_on_redis_sends_each_refresh_token_once() {
    let redis = Redis::start();
    let server = FaultServer::start(
        vec![
            rotated("T1", "R1", ""),
            rotated("T2", "R2", ""),
            rotated("T3", "R3", ""),
        ],
        rotated("T-late", "R-late", ""),
    );
    let machines = [
        refresh_process(&server, &redis),
        refresh_process(&server, &redis),
    ];
    assert_eq!(machines[0].access_token().unwrap(), "T1");
    assert_eq!(machines[1].access_token().unwrap(), "T1");
    // Each machine renews in turn, first adopting what the other stored.
    for turn in 0..4 {
        let machine = &machines[turn % 2];
        machine.invalidate();
        machine.access_token().unwrap();
    }
    let seen = server.refresh_tokens_seen();
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen, unique, "a refresh token was sent twice");
    assert!(seen.len() >= 3, "{seen:?}");
}

#[test]
fn an_entry_with_a_refresh_token_outlives_its_access_token() {
    let redis = Redis::start();
    let key = CacheKey::new("e", "c", None, ["ttl"]);
    let store = || {
        RedisStore::new(&redis.url(), key.clone())
            .unwrap()
            .store_refresh_tokens(true)
    };
    let pttl = || -> i64 { redis.query(redis::cmd("PTTL").arg(store().token_key())) };
    // An access token that has expired, with its refresh token: kept, and handed out
    // expired with the refresh token (the process refreshes rather than logs in).
    let expired = Token::new("old")
        .with_refresh_token("R")
        .with_expires_in(Duration::ZERO);
    store().save(&expired).unwrap();
    let loaded = store().load().unwrap().unwrap();
    assert_eq!(loaded.refresh_token(), Some("R"));
    assert!(loaded.expires_at().unwrap() <= std::time::SystemTime::now());
    // Without a stated refresh-token lifetime: the configured maximum (default 30 days).
    let ttl = pttl();
    let month = en_core_auth::store::REDIS_REFRESH_TOKEN_TTL.as_millis() as i64;
    assert!(ttl > month - 60_000 && ttl <= month, "PTTL {ttl}");
    store()
        .refresh_token_ttl(Duration::from_secs(7200))
        .save(&expired)
        .unwrap();
    let ttl = pttl();
    assert!(ttl > 7_000_000 && ttl <= 7_200_000, "PTTL {ttl}");
    // Without the refresh token (not stored), the entry lives as long as the access token.
    let short = Token::new("a")
        .with_refresh_token("R")
        .with_expires_in(Duration::from_secs(60));
    store().store_refresh_tokens(false).save(&short).unwrap();
    let ttl = pttl();
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");
}

#[test]
fn a_stated_refresh_token_lifetime_sets_the_entrys_ttl() {
    let redis = Redis::start();
    let server = FaultServer::start(
        vec![rotated("T1", "R1", r#","refresh_token_expires_in":600"#)],
        rotated("T-late", "R-late", ""),
    );
    let auth = refresh_process(&server, &redis);
    auth.access_token().unwrap();
    let keys: Vec<String> = redis.query(redis::cmd("KEYS").arg("*:token"));
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(&keys[0]));
    // Longer than the access token's 60 s, no longer than the refresh token's 600 s.
    assert!(ttl > 60_000 && ttl <= 600_000, "PTTL {ttl}");
}

#[test]
fn a_holder_that_lost_its_lease_does_not_write_over_the_newer_entry() {
    let redis = Redis::start();
    let key = CacheKey::new("e", "c", None, ["fence"]);
    let store = || RedisStore::new(&redis.url(), key.clone()).unwrap();
    let (stale, fresh) = (store(), store());
    let stale_lease = stale.lock().unwrap();
    // The stale holder's lease runs out (it was paused, cut off) and another takes it.
    let _: i64 = redis.query(redis::cmd("DEL").arg(stale.lock_key()));
    let fresh_lease = fresh.try_lock().unwrap().expect("the lease is free");
    let newer = Token::new("newer").with_expires_in(Duration::from_secs(60));
    fresh.save(&newer).unwrap();
    let older = Token::new("older").with_expires_in(Duration::from_secs(60));
    let fenced = stale.save(&older).unwrap_err();
    assert_eq!(fenced.kind(), ErrorKind::Storage);
    assert_eq!(store().load().unwrap().unwrap().access_token(), "newer");
    drop((stale_lease, fresh_lease));
    // Without a lease (its lock ran out, or Redis was down then) a save is as before.
    stale.save(&older).unwrap();
    assert_eq!(store().load().unwrap().unwrap().access_token(), "older");
}

#[test]
fn the_keeper_goes_on_extending_after_a_failed_extension() {
    let redis = Redis::start();
    let key = CacheKey::new("e", "c", None, ["keeper"]);
    let store = || {
        RedisStore::new(&redis.url(), key.clone())
            .unwrap()
            .timeout(Duration::from_millis(100))
            .lease(Duration::from_millis(1500))
    };
    let holder = store();
    let lease = holder.lock().unwrap();
    let lock_key = holder.lock_key().to_owned();
    // Redis freezes for longer than a command's timeout: an extension times out.
    signal(&redis, "-STOP");
    std::thread::sleep(Duration::from_millis(700));
    signal(&redis, "-CONT");
    // The keeper tries again: the lease is extended past its first term many times over.
    count_extensions(&redis, &lock_key, 12, Duration::from_millis(1500));
    assert!(store().try_lock().unwrap().is_none());
    drop(lease);
}

/// Sends `kill <signal>` to the test's redis-server.
fn signal(redis: &Redis, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &redis.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The documented default timeout (500 ms) bounds what a frozen Redis (SIGSTOP: connected,
/// never answering) costs a caller, and the default 5 s back-off spares the calls after it.
#[test]
fn a_frozen_redis_costs_a_caller_about_the_default_timeout() {
    let idp = idp(Duration::from_secs(300));
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url(), key(&idp)).unwrap();
    let auth = AuthMiddleware::builder(authorizer(&idp))
        .token_store(RedisStore::new(&redis.url(), key(&idp)).unwrap())
        .build();
    // Connected and working first, so that the freeze hits a live connection.
    store
        .save(&Token::new("t").with_expires_in(Duration::from_secs(60)))
        .unwrap();
    assert!(store.load().unwrap().is_some());
    signal(&redis, "-STOP");
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    assert_eq!(store.load().unwrap_err().kind(), ErrorKind::Storage);
    let first = started.elapsed();
    // Then Redis is left alone for the back-off: a hundred more calls wait for nothing.
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(store.load().unwrap_err().kind(), ErrorKind::Storage);
    }
    let hundred = started.elapsed();
    // A middleware on a frozen Redis gets its token from the identity provider.
    let started = Instant::now();
    auth.access_token().unwrap();
    let middleware = started.elapsed();
    signal(&redis, "-CONT");
    assert!(
        first >= timeout && first < timeout * 3,
        "one call took {first:?}"
    );
    assert!(
        hundred < timeout,
        "a hundred calls in the back-off took {hundred:?}"
    );
    // Its store's load, and its lease, each cost at most a timeout before the back-off.
    assert!(
        middleware < timeout * 5,
        "the middleware took {middleware:?}"
    );
    assert_eq!(idp.requests(Operation::Token), 1);
}
