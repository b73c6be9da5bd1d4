//! `RedisStore` against a real `redis-server` (Debian's package; `.ci/test` installs it),
//! started by each test on a free loopback port without persistence.
//!
//! Fleet tests run this test binary again as the fleet's processes: with
//! `EN_CORE_AUTH_FLEET_WORKER` set, the `fleet_worker` test is one machine of the fleet.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::store::{CacheKey, FileStore, RedisStore, TokenStore};
use en_core_auth::testing::{Fault, LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Token};

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
fn fleet_worker() {
    if std::env::var_os("EN_CORE_AUTH_FLEET_WORKER").is_none() {
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

/// Runs `processes` workers together and returns the token requests the IdP saw.
fn run_fleet(processes: usize, secs: f64, ttl: Duration, redis: Option<&Redis>) -> usize {
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
    for child in children {
        let ((calls, failures), stderr) = finish(child);
        assert_eq!(failures, 0, "{stderr}");
        assert!(calls > 0);
    }
    let _ = std::fs::remove_dir_all(&root);
    idp.requests(Operation::Token)
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
    let shared = run_fleet(processes, secs, ttl, Some(&redis));
    let alone = run_fleet(processes, secs, ttl, None);
    println!(
        "fleet of {processes} processes x 4 threads, {secs} s of {} s tokens: \
         {shared} token requests with Redis, {alone} without",
        ttl.as_secs()
    );
    // One for the start and one per lifetime, with room for a renewal that races a
    // token's expiry on a loaded machine.
    let per_fleet = (lifetimes.ceil() as usize + 1) * 2;
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

#[test]
fn a_lease_holder_killed_mid_renewal_is_replaced_within_the_lease() {
    let idp = idp(Duration::from_secs(3600));
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url(), key(&idp)).unwrap();
    // The first token request hangs: its process holds the lease, mid-renewal.
    idp.fail_next(1, Fault::Delay(Duration::from_secs(60)));
    let worker = |lock_timeout_ms| Worker {
        idp: &idp,
        secs: 0.0,
        threads: 1,
        cache_dir: temp_dir("lease"),
        redis: Some(redis.url()),
        lease_ms: 1000,
        lock_timeout_ms,
    };
    let mut holder = worker(60_000).spawn();
    let mut polls = 0;
    while idp.requests(Operation::Token) == 0 {
        polls += 1;
        assert!(polls < 2000, "the holder never asked for a token");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The keeper thread extends the 1 s lease while the renewal hangs: several extensions
    // are seen, each leaving at most a lease.
    let lock_key = store.lock_key().to_owned();
    for _ in 0..3 {
        let ttl: i64 = redis.query(redis::cmd("PTTL").arg(&lock_key));
        assert!(ttl > 0 && ttl <= 1000, "lease PTTL {ttl}");
        std::thread::sleep(Duration::from_millis(400));
    }
    // A second machine waits (its lock timeout is a minute, far beyond the lease), and the
    // holder dies without releasing anything.
    let waiter = worker(60_000).spawn();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let ((calls, failures), stderr) = finish(waiter);
    assert_eq!((calls, failures), (1, 0), "{stderr}");
    // It got the lease (it did not give up waiting) and renewed: one more token request.
    assert!(!stderr.contains("renewing without it"), "{stderr}");
    assert_eq!(idp.requests(Operation::Token), 2);
    assert!(store.load().unwrap().is_some());
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
    let keys: Vec<String> = redis.query(redis::cmd("KEYS").arg("*"));
    assert_eq!(keys, vec![store().token_key().to_owned()]);
    assert!(keys[0].starts_with("en-core-auth:{"));
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(&keys[0]));
    assert!(ttl > 0 && ttl <= 30_000, "token PTTL {ttl}");

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
    assert!(down.load().unwrap().is_none());
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
    assert!(slow.load().unwrap().is_none());
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
    assert!(slow_tls.load().unwrap().is_none());

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
    let mut server = Command::new("redis-server")
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
    assert!(store().load().unwrap().is_none());
    // Not PEM, or not rediss://: configuration errors.
    assert!(store().with_root_certificate(b"not pem").is_err());
    let plain = RedisStore::new(
        "redis://127.0.0.1:6379/0",
        CacheKey::new("e", "c", None, ["tls"]),
    );
    assert!(plain.unwrap().with_root_certificate(&ca).is_err());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user and password in the URL are used, the database the URL names holds the keys, and
/// neither a right nor a wrong password ever reaches a log line.
#[test]
fn password_and_database_from_the_url_and_never_in_logs() {
    let idp = idp(Duration::from_secs(300));
    let port = free_port();
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--requirepass", "r3d1s-p455"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .spawn()
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
    // The token is in database 3, and only there.
    let in_3: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(in_3.len(), 1, "{in_3:?}");
    let _: () = redis::cmd("SELECT").arg(0).query(&mut connection).unwrap();
    let in_0: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert!(in_0.is_empty());

    // A wrong password: no cache, a token all the same, and the reason logged without it.
    let ((calls, failures), stderr) = finish(worker("wr0ng-p455").spawn());
    assert_eq!((calls, failures), (1, 0), "{stderr}");
    assert!(stderr.contains("Redis token store unusable"), "{stderr}");
    assert!(!stderr.contains("wr0ng-p455"), "{stderr}");
    assert_eq!(idp.requests(Operation::Token), 2);
    let _ = server.kill();
    let _ = server.wait();
}
