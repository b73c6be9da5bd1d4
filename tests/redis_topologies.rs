//! `RedisStore` on a Redis Cluster and behind Redis Sentinel, against real topologies from
//! Debian's packages (`redis-server`, `redis-tools`, `redis-sentinel`; `.ci/test` installs
//! them). Each test starts its own servers on free loopback ports, without persistence, and
//! stops them by PID when it ends (the guards' `Drop`).
//!
//! The fleets are processes: with `EN_CORE_AUTH_TOPOLOGY_WORKER` set, the `topology_worker`
//! test is one machine of the fleet. One local identity provider counts the token requests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::store::{CacheKey, RedisStore, TokenStore};
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo};

const CLIENT: &str = "topology-client";
const SECRET: &str = "t0p0l0gy-s3cr3t";
/// How long a worker leaves Redis alone after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(500);
const WARNING: &str = "Redis token store unusable";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-topology-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server of ours, stopped by PID when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    /// How the test itself connects to it.
    access: Access,
}

/// A password the server asks for; TLS with a CA that the server's certificate is signed by.
#[derive(Clone, Default)]
struct Access {
    password: Option<&'static str>,
    ca: Option<Vec<u8>>,
}

impl Server {
    fn start(program: &str, args: &[String], port: u16) -> Server {
        Server::start_with(program, args, port, Access::default())
    }

    fn start_with(program: &str, args: &[String], port: u16, access: Access) -> Server {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} is not installed ({error}): .ci/test installs it from Debian")
            });
        let server = Server {
            child: Some(child),
            port,
            access,
        };
        wait_for(&format!("{program} on port {port}"), || {
            server.connection().is_some()
        });
        server
    }

    /// SIGKILL: the server dies without a word to anyone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `kill -STOP` or `kill -CONT`: a server that hangs, and one that comes back.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    fn query<T: redis::FromRedisValue>(&self, command: &mut redis::Cmd) -> T {
        let mut connection = self.connection().expect("server down");
        command.query(&mut connection).unwrap()
    }

    fn connection(&self) -> Option<redis::Connection> {
        connection_with(self.port, &self.access)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Servers and their directory: every server stopped, the directory removed.
struct Servers {
    servers: Vec<Server>,
    dir: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for server in &mut self.servers {
            server.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain (not cluster-aware) connection to one server, for the test's own commands.
fn connection(port: u16) -> Option<redis::Connection> {
    connection_with(port, &Access::default())
}

fn connection_with(port: u16, access: &Access) -> Option<redis::Connection> {
    let password = access
        .password
        .map(|password| format!(":{password}@"))
        .unwrap_or_default();
    let client = match &access.ca {
        None => redis::Client::open(format!("redis://{password}127.0.0.1:{port}/")),
        Some(ca) => redis::Client::build_with_tls(
            format!("rediss://{password}127.0.0.1:{port}/"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        ),
    }
    .ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .ok()
        .map(|_| connection)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// Six nodes joined by `redis-cli --cluster create … --cluster-replicas 1`: three masters,
/// each with a replica, and a one-second node timeout, so that a failover takes seconds.
struct Cluster {
    servers: Servers,
}

/// One line of `CLUSTER NODES`.
struct Node {
    id: String,
    port: u16,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

impl Cluster {
    /// Six nodes that fail over within seconds (a node timeout of one second).
    fn start() -> Cluster {
        Cluster::start_with(6, 1, 1000, None)
    }

    /// Six nodes that a loaded machine does not make fail over (a node timeout of 15 s).
    fn steady() -> Cluster {
        Cluster::start_with(6, 1, 15_000, None)
    }

    /// `nodes` nodes, `replicas` for each master, over TLS when `tls` is given.
    fn start_with(
        nodes: usize,
        replicas: usize,
        node_timeout_ms: u32,
        tls: Option<&Tls>,
    ) -> Cluster {
        let dir = temp_dir("cluster");
        let mut servers = Servers {
            servers: Vec::new(),
            dir: dir.clone(),
        };
        for _ in 0..nodes {
            let (port, bus) = (free_port(), free_port());
            let config = dir.join(format!("nodes-{port}.conf"));
            let mut args = strings(&["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            if let Some(tls) = tls {
                args.extend(tls.server_args(port));
                args.extend(strings(&["--tls-cluster", "yes"]));
            }
            args.extend(strings(&[
                "--cluster-enabled",
                "yes",
                "--cluster-replica-validity-factor",
                "0",
            ]));
            args.extend([
                "--cluster-node-timeout".to_owned(),
                node_timeout_ms.to_string(),
            ]);
            if tls.is_none() {
                args.extend(["--port".to_owned(), port.to_string()]);
            }
            args.extend([
                "--cluster-port".to_owned(),
                bus.to_string(),
                "--cluster-config-file".to_owned(),
                config.display().to_string(),
                "--dir".to_owned(),
                dir.display().to_string(),
            ]);
            servers.servers.push(Server::start_with(
                "redis-server",
                &args,
                port,
                Tls::access(tls),
            ));
        }
        let mut create = Command::new("redis-cli");
        if let Some(tls) = tls {
            create.arg("--tls").arg("--cacert").arg(tls.path("ca.pem"));
        }
        create.args(["--cluster", "create"]);
        for server in &servers.servers {
            create.arg(format!("127.0.0.1:{}", server.port));
        }
        let output = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is not installed: .ci/test installs Debian's redis-tools");
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Cluster { servers };
        wait_for("the cluster to be ready", || cluster.ready());
        cluster
    }

    /// Every live node sees all slots served.
    fn ready(&self) -> bool {
        self.live().all(|server| {
            server.connection().is_some_and(|mut connection| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut connection)
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        })
    }

    fn live(&self) -> impl Iterator<Item = &Server> {
        self.servers.servers.iter().filter(|server| server.alive())
    }

    /// The seed list of the store's URL: every node.
    fn url(&self) -> String {
        let seeds: Vec<String> = self
            .servers
            .servers
            .iter()
            .map(|server| format!("127.0.0.1:{}", server.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// `CLUSTER NODES`, as a live node sees it.
    fn nodes(&self) -> Vec<Node> {
        let server = self.live().next().unwrap();
        let text: String = server.query(redis::cmd("CLUSTER").arg("NODES"));
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let address = fields[1].split('@').next().unwrap();
                let port = address.rsplit(':').next().unwrap().parse().unwrap();
                let slots = fields[8..]
                    .iter()
                    // `[slot->-id]` and `[slot-<-id]`: a migration in progress, not an owner.
                    .filter(|slot| !slot.starts_with('['))
                    .map(|slot| match slot.split_once('-') {
                        Some((from, to)) => (from.parse().unwrap(), to.parse().unwrap()),
                        None => (slot.parse().unwrap(), slot.parse().unwrap()),
                    })
                    .collect();
                Node {
                    id: fields[0].to_owned(),
                    port,
                    master: fields[2].contains("master"),
                    failed: fields[2].contains("fail"),
                    slots,
                }
            })
            .collect()
    }

    /// The live master serving `slot`.
    fn master_of(&self, slot: u16) -> Option<Node> {
        self.nodes().into_iter().find(|node| {
            node.master
                && !node.failed
                && node
                    .slots
                    .iter()
                    .any(|(from, to)| (*from..=*to).contains(&slot))
        })
    }

    fn server(&self, port: u16) -> &Server {
        self.live().find(|server| server.port == port).unwrap()
    }

    fn kill(&mut self, port: u16) {
        for server in &mut self.servers.servers {
            if server.port == port {
                server.kill();
            }
        }
    }

    fn slot(&self, key: &str) -> u16 {
        self.live()
            .next()
            .unwrap()
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
    }
}

/// A master, its replica and three Sentinels watching it as `mymaster` (quorum 2, down
/// after one second). The master and the replica ask for a password; the Sentinels have
/// none (and refuse one), as in many deployments.
struct Sentinels {
    servers: Servers,
    master_port: u16,
    replica_port: u16,
}

const MASTER_NAME: &str = "mymaster";
const MASTER_PASSWORD: &str = "m4st3r-pa55";

fn master_access() -> Access {
    Access {
        password: Some(MASTER_PASSWORD),
        ca: None,
    }
}

impl Sentinels {
    fn start() -> Sentinels {
        let dir = temp_dir("sentinel");
        let mut servers = Servers {
            servers: Vec::new(),
            dir: dir.clone(),
        };
        let mut plain = strings(&["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        // A replica's first sync may still write a dump: in the test's directory.
        plain.extend(["--dir".to_owned(), dir.display().to_string()]);
        plain.extend(strings(&[
            "--requirepass",
            MASTER_PASSWORD,
            "--masterauth",
            MASTER_PASSWORD,
        ]));
        let master_port = free_port();
        let mut args = plain.clone();
        args.extend(["--port".to_owned(), master_port.to_string()]);
        servers.servers.push(Server::start_with(
            "redis-server",
            &args,
            master_port,
            master_access(),
        ));
        let replica_port = free_port();
        let mut args = plain;
        args.extend([
            "--port".to_owned(),
            replica_port.to_string(),
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master_port.to_string(),
        ]);
        let replica = Server::start_with("redis-server", &args, replica_port, master_access());
        wait_for("the replica to sync", || {
            replica
                .query::<String>(redis::cmd("INFO").arg("replication"))
                .contains("master_link_status:up")
        });
        servers.servers.push(replica);
        for n in 0..3 {
            let port = free_port();
            // A Sentinel rewrites its configuration file: one each, in the test's directory.
            let config = dir.join(format!("sentinel-{n}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel auth-pass {MASTER_NAME} {MASTER_PASSWORD}\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir.display()
                ),
            )
            .unwrap();
            servers.servers.push(Server::start(
                "redis-sentinel",
                &[config.display().to_string()],
                port,
            ));
        }
        let sentinels = Sentinels {
            servers,
            master_port,
            replica_port,
        };
        // Each Sentinel knows the replica and the two other Sentinels: a failover can be
        // agreed on.
        wait_for("the Sentinels to know each other and the replica", || {
            sentinels.sentinels().all(|sentinel| {
                let others: Vec<redis::Value> =
                    sentinel.query(redis::cmd("SENTINEL").arg("SENTINELS").arg(MASTER_NAME));
                let replicas: Vec<redis::Value> =
                    sentinel.query(redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME));
                others.len() == 2 && replicas.len() == 1
            })
        });
        sentinels
    }

    fn sentinels(&self) -> impl Iterator<Item = &Server> {
        self.servers.servers[2..].iter()
    }

    fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!(
            "redis+sentinel://:{MASTER_PASSWORD}@{}/{MASTER_NAME}",
            sentinels.join(",")
        )
    }

    /// The master's port, as the first Sentinel names it.
    fn named_master(&self) -> u16 {
        let (_, port): (String, u16) = self.sentinels().next().unwrap().query(
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER_NAME),
        );
        port
    }
}

fn idp(ttl: Duration) -> LocalIdp {
    LocalIdp::builder()
        .client(CLIENT, Some(SECRET))
        .token_ttl(ttl)
        .start()
        .unwrap()
}

fn authorizer(token_url: String) -> ClientCredentials {
    ClientCredentials::new(ClientInfo::new(CLIENT, SECRET), token_url)
        .unwrap()
        .with_scopes(["api"])
}

fn key(idp: &LocalIdp) -> CacheKey {
    authorizer(idp.token_url()).credential_set().cache_key()
}

fn store(url: &str, key: CacheKey) -> RedisStore {
    RedisStore::new(url, key)
        .unwrap()
        .timeout(Duration::from_secs(1))
        .retry_after(RETRY_AFTER)
        .lease(Duration::from_secs(2))
}

/// The CLI passes `--redis` and `EN_CORE_AUTH_REDIS_URL` through: two machines (two cache
/// directories) running `en-core-auth token` share one token through `url`.
#[cfg(feature = "cli")]
fn the_cli_shares_through(url: &str) {
    let idp = LocalIdp::builder()
        .client("cli-client", Some("cli-s3cr3t"))
        .start()
        .unwrap();
    let dir = temp_dir("cli");
    let token = |machine: &str, flag: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_en-core-auth"));
        command
            .arg("token")
            .env_clear()
            .env("EN_CORE_AUTH_TOKEN_URL", idp.token_url())
            .env("EN_CORE_AUTH_CLIENT_ID", "cli-client")
            .env("EN_CORE_AUTH_CLIENT_SECRET", "cli-s3cr3t")
            .env("EN_CORE_AUTH_SCOPES", "read")
            .env("EN_CORE_AUTH_CACHE_DIR", dir.join(machine))
            .stdin(Stdio::null());
        if flag {
            command.args(["--redis", url]);
        } else {
            command.env("EN_CORE_AUTH_REDIS_URL", url);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    assert_eq!(token("a", true), token("b", false));
    assert_eq!(idp.requests(Operation::Token), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One machine of a fleet (only when run by a test here): threads ask one middleware for a
/// token for a while and check that each is live, then print how many calls were made and
/// how many failed.
#[test]
fn topology_worker() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap();
    Logger::install();
    let authorizer = authorizer(var("TOPOLOGY_TOKEN_URL"));
    let key = authorizer.credential_set().cache_key();
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(store(&var("TOPOLOGY_REDIS_URL"), key))
        .build();
    let run_for = Duration::from_secs_f64(var("TOPOLOGY_SECS").parse().unwrap());
    // The test may end the run earlier, by creating this file.
    let stop = PathBuf::from(var("TOPOLOGY_STOP_FILE"));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (auth, calls, failures) = (auth.clone(), calls.clone(), failures.clone());
            let stop = stop.clone();
            std::thread::spawn(move || {
                while started.elapsed() < run_for && !stop.exists() {
                    match auth.token() {
                        Ok(token)
                            if token.expires_at().is_some_and(|at| at > SystemTime::now()) =>
                        {
                            calls.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {
                            eprintln!("call failed: an expired token");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            eprintln!("call failed: {error}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
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
        "TOPOLOGY calls={} failures={}",
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
            log::set_max_level(log::LevelFilter::Warn);
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

/// `processes` machines, each with its own process (and nothing else shared but Redis).
struct Fleet {
    children: Vec<Child>,
    /// Created to end the run early; in its own directory, removed at the end.
    stop: PathBuf,
}

/// What the fleet did: calls that got a live token, failed calls, and the warnings that
/// Redis was unusable.
struct Outcome {
    calls: u64,
    failures: u64,
    warnings: usize,
    stderr: String,
}

impl Fleet {
    /// Workers that run for `secs` at most.
    fn start(processes: usize, idp: &LocalIdp, url: &str, secs: f64) -> Fleet {
        let stop = temp_dir("fleet").join("stop");
        let children = (0..processes)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "topology_worker",
                        "--nocapture",
                        "--test-threads",
                        "1",
                    ])
                    .env("EN_CORE_AUTH_TOPOLOGY_WORKER", "1")
                    .env("TOPOLOGY_TOKEN_URL", idp.token_url())
                    .env("TOPOLOGY_REDIS_URL", url)
                    .env("TOPOLOGY_SECS", secs.to_string())
                    .env("TOPOLOGY_STOP_FILE", &stop)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Fleet { children, stop }
    }

    /// Ends the run now.
    fn stop(self) -> Outcome {
        std::fs::write(&self.stop, b"").unwrap();
        self.finish()
    }

    fn finish(self) -> Outcome {
        let mut outcome = Outcome {
            calls: 0,
            failures: 0,
            warnings: 0,
            stderr: String::new(),
        };
        for child in self.children {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "worker failed: {stdout} {stderr}");
            let line = stdout
                .lines()
                .find_map(|line| line.split_once("TOPOLOGY ").map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("no result line: {stdout}"));
            let number = |name: &str| -> u64 {
                line.split(' ')
                    .find_map(|part| part.strip_prefix(name))
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            outcome.calls += number("calls=");
            outcome.failures += number("failures=");
            outcome.warnings += stderr.matches(WARNING).count();
            outcome.stderr.push_str(&stderr);
        }
        if let Some(dir) = self.stop.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        outcome
    }
}

/// Waits until the fleet has put a token in Redis, and returns its expiry.
fn first_token(store: &RedisStore) -> SystemTime {
    let mut expiry = None;
    wait_for("a token in Redis", || {
        expiry = store.load().unwrap().and_then(|token| token.expires_at());
        expiry.is_some()
    });
    expiry.unwrap()
}

/// Sleeps until `at` (at once if it has passed).
fn sleep_until(at: SystemTime) {
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
}

/// The token and its lease share one slot: the lease scripts and the renewal protocol
/// assume one node. And the fleet asks once per token lifetime while that slot moves to
/// another master: `ASK` while it migrates and `MOVED` after are followed inside each
/// command, without a failed store command, a failed call or an extra token request.
#[test]
fn a_slot_migrating_under_the_fleet_costs_no_token_request() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_some() {
        return;
    }
    let cluster = Cluster::steady();
    let ttl = Duration::from_secs(3);
    let idp = idp(ttl);
    let checker = store(&cluster.url(), key(&idp));
    let slot = cluster.slot(checker.token_key());
    assert_eq!(cluster.slot(checker.lock_key()), slot);
    #[cfg(feature = "cli")]
    the_cli_shares_through(&cluster.url());

    let processes = 4;
    let secs = 9.0;
    let started = Instant::now();
    let fleet = Fleet::start(processes, &idp, &cluster.url(), secs);
    first_token(&checker);
    // A store whose first seed is down still finds the cluster from the next one.
    let dead_seed = format!(
        "redis+cluster://127.0.0.1:{},{}",
        free_port(),
        cluster.url().trim_start_matches("redis+cluster://")
    );
    assert!(store(&dead_seed, key(&idp)).load().unwrap().is_some());

    let source = cluster.master_of(slot).unwrap();
    let target = cluster
        .nodes()
        .into_iter()
        // A master that serves slots: a node still listed as a slot-less master is one that
        // gossip has not yet shown as the replica it became.
        .find(|node| node.master && !node.failed && !node.slots.is_empty() && node.id != source.id)
        .unwrap();
    let (source_server, target_server) = (cluster.server(source.port), cluster.server(target.port));
    std::thread::sleep(Duration::from_secs(1));
    let set_slot = |server: &Server, state: &str, id: &str| {
        server.query::<()>(
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(id),
        );
    };
    set_slot(target_server, "IMPORTING", &source.id);
    set_slot(source_server, "MIGRATING", &target.id);
    let keys: Vec<String> = source_server.query(
        redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100),
    );
    assert!(keys.contains(&checker.token_key().to_owned()), "{keys:?}");
    for key in &keys {
        source_server.query::<()>(
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(target.port)
                .arg(key)
                .arg(0)
                .arg(5000),
        );
    }
    // The source answers `redirection` for the token, and the store follows it.
    let followed = |redirection: &str| {
        let answer = redis::cmd("GET")
            .arg(checker.token_key())
            .query::<redis::Value>(&mut connection(source.port).unwrap());
        assert_eq!(answer.unwrap_err().code(), Some(redirection));
        // The lease and the fenced save are scripts over two keys of the slot, which Redis
        // answers with TRYAGAIN while the slot is half-way: a renewal due then waits for the
        // lease until the slot has moved, so the entry may be renewed just after. Wait for it
        // (a few seconds at most), by count of tries rather than by the clock.
        let found = (0..60).any(|_| {
            checker.load().is_ok_and(|token| token.is_some()) || {
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        });
        assert!(
            found,
            "{redirection} not followed: the token looked missing"
        );
    };
    // The slot is half-way: ASK for the token, which only the target has.
    followed("ASK");
    // The fleet renews through the migrating slot for a while (tokens of 3 s are renewed
    // every 2.25 s or so).
    std::thread::sleep(Duration::from_millis(2500));
    // The slot is the target's: told to the target first, then the source, then the others.
    let others = cluster
        .nodes()
        .into_iter()
        // Masters that serve slots: right after `--cluster create` a node may still be listed
        // as a slot-less master while it becomes a replica, and replicas refuse SETSLOT.
        .filter(|node| {
            node.master && !node.slots.is_empty() && node.id != source.id && node.id != target.id
        })
        .map(|node| node.port);
    for port in [target.port, source.port].into_iter().chain(others) {
        set_slot(cluster.server(port), "NODE", &target.id);
    }
    // The checker's map still names the source: MOVED.
    followed("MOVED");
    assert_eq!(cluster.master_of(slot).unwrap().id, target.id);

    let outcome = fleet.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let requests = idp.requests(Operation::Token);
    println!(
        "cluster, slot {slot} migrated mid-run: {processes} processes x 2 threads, {elapsed:.1} s \
         of {} s tokens: {requests} token requests, {} calls, {} failed, {} Redis warnings",
        ttl.as_secs(),
        outcome.calls,
        outcome.failures,
        outcome.warnings
    );
    assert_eq!(outcome.failures, 0, "{}", outcome.stderr);
    assert!(outcome.calls > 0);
    // Not one store command failed: every redirection was followed.
    assert_eq!(outcome.warnings, 0, "{}", outcome.stderr);
    // One request per lifetime (renewals start a quarter of a lifetime before expiry),
    // plus one for a renewal that races an expiry on a loaded machine; a process that went
    // on its own would add one per process.
    let lifetimes = (elapsed / (ttl.as_secs_f64() * 0.75)).ceil() as usize;
    assert!(
        requests <= lifetimes + 1,
        "{requests} token requests for {lifetimes} lifetimes"
    );

    // A master that hangs (stopped, its connections open) costs timeouts, not a hang: for
    // a store already connected and for a new one alike.
    let frozen = cluster.server(target.port);
    frozen.signal("-STOP");
    let fresh = RedisStore::new(&cluster.url(), key(&idp))
        .unwrap()
        .timeout(Duration::from_millis(300));
    for store in [&checker, &fresh] {
        let asked = Instant::now();
        assert_eq!(
            store.load().unwrap_err().kind(),
            en_core_auth::ErrorKind::Storage
        );
        println!(
            "a load with the token's master stopped: {:?}",
            asked.elapsed()
        );
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{:?}",
            asked.elapsed()
        );
    }
    frozen.signal("-CONT");
}

/// What a fleet did around one failover, in token requests.
struct Failover {
    /// Before the master died: the fleet's first token.
    before: usize,
    /// From the kill until the new master serves and the back-off has passed.
    during: usize,
    /// After that, until the end of the run (one renewal round for the whole fleet).
    after: usize,
}

/// Runs a fleet against `url`, kills the master holding the token just before the fleet
/// would renew it (so that the renewal falls in the outage), and counts.
fn run_failover(
    name: &str,
    url: &str,
    processes: usize,
    kill: impl FnOnce(&RedisStore),
    recovered: impl FnMut() -> bool,
) -> Failover {
    // Renewals start 2.5 s before expiry; the outage (a few seconds) ends long before the
    // tokens fetched during it must be renewed again.
    let ttl = Duration::from_secs(10);
    let idp = idp(ttl);
    let checker = store(url, key(&idp));
    let started = Instant::now();
    let fleet = Fleet::start(processes, &idp, url, 60.0);
    let expiry = first_token(&checker);
    sleep_until(expiry - ttl / 4 - Duration::from_millis(500));
    let before = idp.requests(Operation::Token);
    let killed_at = SystemTime::now();
    kill(&checker);
    let failover = wait_for("the failover", recovered);
    std::thread::sleep(RETRY_AFTER * 2);
    let during = idp.requests(Operation::Token) - before;
    // The tokens fetched during the outage expire about a lifetime after the kill; the
    // fleet's next renewal round saves one that outlives them by far. Then a little more
    // time, for any process that would renew on its own.
    wait_for("the renewal round after the failover", || {
        checker
            .load()
            .ok()
            .flatten()
            .and_then(|token| token.expires_at())
            .is_some_and(|at| at > killed_at + ttl + Duration::from_secs(3))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let outcome = fleet.stop();
    let after = idp.requests(Operation::Token) - before - during;
    println!(
        "{name}: {processes} processes x 2 threads, {:.1} s of {} s tokens, failover in {:.1} s: \
         token requests {before} before, {during} during, {after} after; {} calls, {} failed, \
         {} Redis warnings",
        started.elapsed().as_secs_f64(),
        ttl.as_secs(),
        failover.as_secs_f64(),
        outcome.calls,
        outcome.failures,
        outcome.warnings
    );
    assert_eq!(outcome.failures, 0, "{}", outcome.stderr);
    assert!(outcome.calls > 0);
    assert!(!outcome.stderr.contains(MASTER_PASSWORD));
    // The outage was seen (and said once per back-off, not per call).
    assert!(outcome.warnings >= 1, "{}", outcome.stderr);
    // The fleet found the new master: a fresh store reads the fleet's token there.
    assert!(store(url, key(&idp)).load().unwrap().is_some());
    Failover {
        before,
        during,
        after,
    }
}

/// The promise of a failover: no failed call, at most one extra token request per process,
/// and one token for the fleet again afterwards.
fn assert_bounded(failover: &Failover, processes: usize) {
    assert!(failover.before <= 2, "{} before", failover.before);
    assert!(
        failover.during <= processes,
        "{} token requests during a failover of {processes} processes",
        failover.during
    );
    // Every process renews once more after the failover: sharing again, that is one
    // request for the fleet (two when a renewal races the expiry), not one per process.
    assert!(
        failover.after >= 1 && failover.after <= 2,
        "{} token requests after the failover",
        failover.after
    );
}

#[test]
fn a_cluster_master_killed_mid_run_is_replaced_and_sharing_resumes() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_some() {
        return;
    }
    let mut cluster = Cluster::start();
    let url = cluster.url();
    let processes = 4;
    let cluster_cell = std::cell::RefCell::new(&mut cluster);
    let killed = std::cell::Cell::new(None);
    let failover = run_failover(
        "cluster, master SIGKILLed",
        &url,
        processes,
        |store| {
            let mut cluster = cluster_cell.borrow_mut();
            let slot = cluster.slot(store.token_key());
            let master = cluster.master_of(slot).unwrap();
            killed.set(Some((slot, master.port)));
            cluster.kill(master.port);
        },
        || {
            let cluster = cluster_cell.borrow();
            let (slot, dead) = killed.get().unwrap();
            cluster.ready()
                && cluster
                    .master_of(slot)
                    .is_some_and(|master| master.port != dead)
        },
    );
    assert_bounded(&failover, processes);
}

#[test]
fn a_sentinel_failover_mid_run_is_followed_and_sharing_resumes() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_some() {
        return;
    }
    let mut sentinels = Sentinels::start();
    let url = sentinels.url();
    let (master_port, replica_port) = (sentinels.master_port, sentinels.replica_port);
    assert_eq!(sentinels.named_master(), master_port);
    let processes = 4;
    let cell = std::cell::RefCell::new(&mut sentinels);
    let failover = run_failover(
        "sentinel, master SIGKILLed",
        &url,
        processes,
        |store| {
            let mut sentinels = cell.borrow_mut();
            // The token is on the master the Sentinels name, not on the replica only.
            let master = &sentinels.servers.servers[0];
            assert!(
                master
                    .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(store.token_key()))
                    .is_some()
            );
            sentinels.servers.servers[0].kill();
        },
        || {
            let sentinels = cell.borrow();
            sentinels.named_master() == replica_port
                && connection_with(replica_port, &master_access()).is_some_and(|mut connection| {
                    redis::cmd("ROLE")
                        .query::<redis::Role>(&mut connection)
                        .is_ok_and(|role| matches!(role, redis::Role::Primary { .. }))
                })
        },
    );
    assert_bounded(&failover, processes);
}

/// A Sentinel that accepts connections and never answers costs a timeout, not a hang: the
/// next Sentinel names the master. (The redis crate's own synchronous Sentinel client reads
/// without a timeout, which is why the store asks the Sentinels itself.)
#[test]
fn a_sentinel_that_never_answers_costs_a_timeout() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_some() {
        return;
    }
    // Never accepted: the kernel completes the handshakes, nothing ever replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let sentinels = Sentinels::start();
    let url = sentinels
        .url()
        .replacen('@', &format!("@127.0.0.1:{silent_port},"), 1);
    let key = CacheKey::new("https://idp.example/token", "c", None, ["s"]);
    let store = RedisStore::new(&url, key)
        .unwrap()
        .timeout(Duration::from_millis(300));
    let token = en_core_auth::Token::new("topology-token").with_expires_in(Duration::from_secs(60));
    let started = Instant::now();
    store.save(&token).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(
        loaded.map(|token| token.access_token().to_owned()),
        Some("topology-token".to_owned())
    );
    // One timeout on the silent Sentinel, then the next one answers.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // It went to the master the Sentinels name.
    let on_master: Option<Vec<u8>> =
        sentinels.servers.servers[0].query(redis::cmd("GET").arg(store.token_key()));
    assert!(on_master.is_some());
    drop(silent);
    #[cfg(feature = "cli")]
    the_cli_shares_through(&sentinels.url());
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with `openssl` for one test.
struct Tls {
    dir: PathBuf,
}

impl Tls {
    fn make() -> Tls {
        let tls = Tls {
            dir: temp_dir("tls"),
        };
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&tls.dir)
                .output()
                .expect("openssl is needed to make the test's certificates");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let new_key = |key: &str| {
            ["-newkey", "rsa:2048", "-nodes", "-keyout"]
                .map(str::to_owned)
                .into_iter()
                .chain([key.to_owned()])
                .collect::<Vec<_>>()
        };
        let run = |args: Vec<String>| openssl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut ca = strings(&["req", "-x509"]);
        ca.extend(new_key("ca.key"));
        ca.extend(strings(&[
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=en-core-auth test CA",
        ]));
        run(ca);
        let mut request = strings(&["req"]);
        request.extend(new_key("server.key"));
        request.extend(strings(&["-out", "server.csr", "-subj", "/CN=127.0.0.1"]));
        run(request);
        std::fs::write(tls.dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        run(strings(&[
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
        ]));
        tls
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A server on `port` with TLS only, clients not asked for a certificate.
    fn server_args(&self, port: u16) -> Vec<String> {
        let mut args = strings(&[
            "--port",
            "0",
            "--tls-auth-clients",
            "no",
            "--tls-replication",
            "yes",
        ]);
        args.extend([
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            self.path("server.pem"),
            "--tls-key-file".to_owned(),
            self.path("server.key"),
            "--tls-ca-cert-file".to_owned(),
            self.path("ca.pem"),
        ]);
        args
    }

    fn ca(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).unwrap()
    }

    fn access(tls: Option<&Tls>) -> Access {
        Access {
            password: None,
            ca: tls.map(Tls::ca),
        }
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rediss+cluster://` and `rediss+sentinel://` against servers that speak only TLS, their
/// certificate signed by a CA made for the test: the CA given with `with_root_certificate`
/// reaches every node the cluster names and the master the Sentinel names; without it
/// (the system's roots) nothing is trusted and the store is empty.
#[test]
fn rediss_cluster_and_sentinel_with_a_private_ca() {
    if std::env::var_os("EN_CORE_AUTH_TOPOLOGY_WORKER").is_some() {
        return;
    }
    let tls = Tls::make();
    let check = |url: &str| {
        let key = || CacheKey::new("https://idp.example/token", "c", None, ["tls"]);
        let trusted = RedisStore::new(url, key())
            .unwrap()
            .with_root_certificate(&tls.ca())
            .unwrap();
        let token = en_core_auth::Token::new("over-tls").with_expires_in(Duration::from_secs(60));
        trusted.save(&token).unwrap();
        assert_eq!(
            trusted
                .load()
                .unwrap()
                .map(|token| token.access_token().to_owned()),
            Some("over-tls".to_owned()),
            "{url}"
        );
        assert!(trusted.try_lock().unwrap().is_some());
        assert!(RedisStore::new(url, key()).unwrap().load().is_err());
    };

    // Three masters, each serving a third of the slots: the token's node is found over TLS.
    let cluster = Cluster::start_with(3, 0, 15_000, Some(&tls));
    check(&cluster.url().replacen("redis+", "rediss+", 1));
    drop(cluster);

    // A master and one Sentinel, both TLS only.
    let dir = temp_dir("tls-sentinel");
    let mut servers = Servers {
        servers: Vec::new(),
        dir: dir.clone(),
    };
    let master_port = free_port();
    let mut args = strings(&["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    args.extend(tls.server_args(master_port));
    args.extend(["--dir".to_owned(), dir.display().to_string()]);
    servers.servers.push(Server::start_with(
        "redis-server",
        &args,
        master_port,
        Tls::access(Some(&tls)),
    ));
    let sentinel_port = free_port();
    let config = dir.join("sentinel.conf");
    let mut lines: Vec<String> = tls
        .server_args(sentinel_port)
        .chunks(2)
        .map(|pair| format!("{} {}", pair[0].trim_start_matches("--"), pair[1]))
        .collect();
    lines.push(format!("bind 127.0.0.1\ndir {}", dir.display()));
    lines.push(format!(
        "sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1"
    ));
    std::fs::write(&config, lines.join("\n") + "\n").unwrap();
    let sentinel = Server::start_with(
        "redis-sentinel",
        &[config.display().to_string()],
        sentinel_port,
        Tls::access(Some(&tls)),
    );
    wait_for("the Sentinel to know the master", || {
        sentinel.connection().is_some_and(|mut connection| {
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER_NAME)
                .query::<Option<(String, u16)>>(&mut connection)
                .is_ok_and(|address| address.is_some())
        })
    });
    servers.servers.push(sentinel);
    check(&format!(
        "rediss+sentinel://127.0.0.1:{sentinel_port}/{MASTER_NAME}"
    ));
}
