//! Where [`RedisStore`](super::RedisStore)'s commands go: one server, the nodes of a Redis
//! Cluster, or the master that Redis Sentinels name. One URL says which.
//!
//! Decisions, and why:
//! - **One URL for every topology.** `redis+cluster://` and `redis+sentinel://` are named after
//!   the redis crate's own `redis+unix://`, so that one string (and the CLI's `--redis`)
//!   configures any of them. Each listed node is handed to the redis crate's parser as a
//!   `redis://` URL: user, password and host are read exactly as for a single server.
//! - **Errors say what is wrong, never what the URL holds**: it may carry a password.
//! - **Every network call is bounded.** The cluster client gets the store's timeout for
//!   connecting and for every reply, and a few quick retries: enough to follow a redirection
//!   (`ASK` while a slot migrates, `MOVED` after it moved) inside one command, not its
//!   defaults (16 retries, waits of seconds), which would hold a caller up for minutes while a
//!   master fails over. A failover is an outage the store already handles: the command fails,
//!   Redis is left alone for the back-off, and the next connection learns the new topology.
//! - **Sentinel discovery is written here**, after the Sentinel client guidelines (ask each
//!   Sentinel in turn for the master's address, check with `ROLE` that the server is the
//!   master), on the redis crate's connections with timeouts. The crate's synchronous
//!   Sentinel client (redis 1.8, feature `sentinel`) connects to Sentinels and masters and reads
//!   their replies without any timeout, so a Sentinel that hangs would hang the caller.
//! - **Discovery happens per connection.** A connection lives until a command on it fails;
//!   the next one (after the back-off) asks the seeds or the Sentinels again, and so finds the
//!   master that a failover promoted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo};

use crate::{Error, ErrorKind};

/// The port of a cluster node or a server that the URL names without one.
const REDIS_PORT: u16 = 6379;
/// The port of a Sentinel that the URL names without one.
const SENTINEL_PORT: u16 = 26379;
/// Retries inside one cluster command: a `MOVED` and an `ASK` in a row, or a reconnection.
/// The crate also asks a node whose reply timed out again: a hung master costs up to three
/// timeouts per command, then the store's back-off.
const CLUSTER_RETRIES: u32 = 2;

const FORMS: &str = "redis://, rediss://, redis+cluster://host:port[,host:port…], \
     redis+sentinel://host:port[,host:port…]/MASTER[/DB] (or their rediss+ forms)";

/// The servers a store talks to, as its URL names them. Nothing is contacted until
/// [`connect`](Topology::connect).
pub(super) enum Topology {
    /// `redis://` or `rediss://`: one server.
    Single { client: redis::Client, tls: bool },
    /// `redis+cluster://`: seed nodes of a Redis Cluster.
    Cluster(Cluster),
    /// `redis+sentinel://`: Sentinels, and the name of the master they monitor.
    Sentinel(Sentinel),
}

/// The seed nodes; the client learns the rest of the cluster from the first that answers.
pub(super) struct Cluster {
    nodes: Vec<ConnectionInfo>,
    tls: bool,
    root_cert: Option<Vec<u8>>,
}

/// Sentinels and what to ask them for.
pub(super) struct Sentinel {
    /// With the URL's user and password, which are the master's (see `sentinel_connection`).
    sentinels: Vec<ConnectionInfo>,
    master: String,
    /// The master's user, password and database (its address comes from the Sentinels).
    settings: redis::RedisConnectionInfo,
    tls: bool,
    root_cert: Option<Vec<u8>>,
    /// The Sentinel that answered last is asked first.
    first: AtomicUsize,
}

/// An open connection to wherever the topology sends commands.
pub(super) enum Connection {
    /// A single server, or the master a Sentinel named.
    Single(redis::Connection),
    /// A Redis Cluster: each command goes to the node serving its key's slot.
    Cluster(Box<ClusterConnection>),
}

impl Connection {
    /// What commands run on (`redis::Cmd::query` takes any connection).
    pub(super) fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Connection::Single(connection) => connection,
            Connection::Cluster(connection) => connection.as_mut(),
        }
    }
}

fn configuration(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Configuration, message.into())
}

impl Topology {
    /// Reads `url` without contacting anything.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when `url` is not one of the forms (the message never
    /// quotes the URL, which may hold a password).
    pub(super) fn parse(url: &str) -> Result<Topology, Error> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(configuration(format!(
                "the Redis URL must start with {FORMS}"
            )));
        };
        match scheme {
            "redis" | "rediss" => {
                // The parser's message could quote the URL, password included: not passed on.
                let client = redis::Client::open(url).map_err(|_| {
                    configuration(
                        "the Redis URL is not valid (redis://[user:password@]host[:port][/db])",
                    )
                })?;
                Ok(Topology::Single {
                    client,
                    tls: scheme == "rediss",
                })
            }
            "redis+cluster" | "rediss+cluster" => {
                Cluster::parse(rest, scheme.starts_with("rediss")).map(Topology::Cluster)
            }
            "redis+sentinel" | "rediss+sentinel" => {
                Sentinel::parse(rest, scheme.starts_with("rediss")).map(Topology::Sentinel)
            }
            // Quoted only when it looks like a misspelt Redis scheme (letters, digits, `+`,
            // `-` and `.` after `redis`): never a password written in the wrong place.
            _ if scheme.starts_with("redis")
                && scheme.len() <= 32
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(configuration(format!(
                    "unknown Redis URL scheme `{scheme}`: use {FORMS}"
                )))
            }
            _ => Err(configuration(format!(
                "the Redis URL must start with {FORMS}"
            ))),
        }
    }

    /// Trusts the CA certificate(s) in `pem` instead of the system's roots (TLS URLs only).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when the URL is not a TLS one, or `pem` holds no usable
    /// certificate.
    pub(super) fn trust(&mut self, pem: &[u8]) -> Result<(), Error> {
        // The parser takes a file without certificates as an empty list: an empty trust
        // store would only fail later, at every connection.
        let has_certificate = pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|window| window == b"-----BEGIN CERTIFICATE-----");
        let tls = match self {
            Topology::Single { tls, .. } => *tls,
            Topology::Cluster(cluster) => cluster.tls,
            Topology::Sentinel(sentinel) => sentinel.tls,
        };
        if !tls || !has_certificate {
            return Err(configuration(
                "a CA certificate needs a rediss:// (rediss+cluster://, rediss+sentinel://) URL \
                 and a PEM certificate",
            ));
        }
        let unusable = |_| {
            configuration(
                "the Redis CA certificate is not usable (a rediss:// URL and PEM certificates are needed)",
            )
        };
        // Built once now, so that a bad certificate is a configuration error here rather
        // than a failure at every connection.
        match self {
            Topology::Single { client, .. } => {
                let info = client.get_connection_info().clone();
                *client =
                    redis::Client::build_with_tls(info, certificates(pem)).map_err(unusable)?;
            }
            Topology::Cluster(cluster) => {
                cluster.root_cert = Some(pem.to_vec());
                cluster
                    .builder(Duration::from_secs(1))
                    .build()
                    .map_err(unusable)?;
            }
            Topology::Sentinel(sentinel) => {
                sentinel.root_cert = Some(pem.to_vec());
                for info in &sentinel.sentinels {
                    sentinel.client(info.clone()).map_err(unusable)?;
                }
            }
        }
        Ok(())
    }

    /// Opens a connection whose every connect, read and write takes at most `timeout`.
    pub(super) fn connect(&self, timeout: Duration) -> redis::RedisResult<Connection> {
        match self {
            Topology::Single { client, .. } => open(client, timeout).map(Connection::Single),
            Topology::Cluster(cluster) => cluster
                .connect(timeout)
                .map(|connection| Connection::Cluster(Box::new(connection))),
            Topology::Sentinel(sentinel) => sentinel.connect(timeout).map(Connection::Single),
        }
    }
}

/// A connection to one server with `timeout` on connecting and on every read and write.
fn open(client: &redis::Client, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

fn certificates(pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

impl Cluster {
    fn parse(rest: &str, tls: bool) -> Result<Cluster, Error> {
        let url = Url::split(rest)?;
        // Redis Cluster has one database, 0.
        if !matches!(url.path, "" | "/" | "/0") {
            return Err(configuration(
                "a redis+cluster:// URL names no database: redis+cluster://host:port[,host:port…]",
            ));
        }
        let cluster = Cluster {
            nodes: url.nodes(tls, REDIS_PORT, 0)?,
            tls,
            root_cert: None,
        };
        // Checks what the cluster client checks (one user, one password, one TLS mode)
        // without connecting.
        cluster
            .builder(Duration::from_secs(1))
            .build()
            .map_err(|_| configuration("the redis+cluster:// URL is not valid"))?;
        Ok(cluster)
    }

    fn builder(&self, timeout: Duration) -> ClusterClientBuilder {
        let builder = ClusterClientBuilder::new(self.nodes.clone())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(CLUSTER_RETRIES)
            // Waits of 10 to 100 ms between retries (the defaults wait seconds).
            .retry_wait_formula(10, 2)
            .min_retry_wait(10)
            .max_retry_wait(100);
        match &self.root_cert {
            Some(pem) => builder.certs(certificates(pem)),
            None => builder,
        }
    }

    fn connect(&self, timeout: Duration) -> redis::RedisResult<ClusterConnection> {
        let connection = self.builder(timeout).build()?.get_connection()?;
        // The client bounds connecting and reading; writes only when told to.
        connection.set_write_timeout(Some(timeout))?;
        Ok(connection)
    }
}

impl Sentinel {
    fn parse(rest: &str, tls: bool) -> Result<Sentinel, Error> {
        let url = Url::split(rest)?;
        let mut path = url.path.strip_prefix('/').unwrap_or("").split('/');
        let master = path.next().unwrap_or("");
        if master.is_empty() {
            return Err(configuration(
                "a redis+sentinel:// URL needs the master's name: \
                 redis+sentinel://host:port[,host:port…]/MASTER[/DB]",
            ));
        }
        let db = match path.next() {
            None | Some("") => 0,
            Some(db) => db
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| {
                    configuration("the database in a redis+sentinel:// URL is not a number")
                })?,
        };
        if path.next().is_some_and(|extra| !extra.is_empty()) {
            return Err(configuration(
                "a redis+sentinel:// URL ends with /MASTER or /MASTER/DB",
            ));
        }
        let sentinels = url.nodes(tls, SENTINEL_PORT, 0)?;
        let settings = sentinels[0].redis_settings().clone().set_db(db);
        Ok(Sentinel {
            sentinels,
            master: master.to_owned(),
            settings,
            tls,
            root_cert: None,
            first: AtomicUsize::new(0),
        })
    }

    fn client(&self, info: ConnectionInfo) -> redis::RedisResult<redis::Client> {
        match &self.root_cert {
            Some(pem) => redis::Client::build_with_tls(info, certificates(pem)),
            None => redis::Client::open(info),
        }
    }

    /// The master, as the first Sentinel that knows it names it (starting with the one that
    /// answered last time).
    fn connect(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let count = self.sentinels.len();
        let first = self.first.load(Ordering::Relaxed) % count;
        let mut failure = None;
        for index in (first..count).chain(0..first) {
            match self.master_from(&self.sentinels[index], timeout) {
                Ok(connection) => {
                    self.first.store(index, Ordering::Relaxed);
                    return Ok(connection);
                }
                Err(error) => failure = Some(error),
            }
        }
        Err(failure.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no Sentinel in the URL"))
        }))
    }

    /// Asks one Sentinel for the master, and connects to it if it really is the master (a
    /// Sentinel that has not seen the failover yet names the old one).
    fn master_from(
        &self,
        sentinel: &ConnectionInfo,
        timeout: Duration,
    ) -> redis::RedisResult<redis::Connection> {
        let mut asked = self.sentinel_connection(sentinel, timeout)?;
        let address: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master)
            .query(&mut asked)?;
        let Some((host, port)) = address else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "a Sentinel does not know the master's name",
            )));
        };
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        let info = sentinel
            .clone()
            .set_addr(addr)
            .set_redis_settings(self.settings.clone());
        let mut master = open(&self.client(info)?, timeout)?;
        match redis::cmd("ROLE").query::<redis::Role>(&mut master)? {
            redis::Role::Primary { .. } => Ok(master),
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "the server a Sentinel names is not a master (yet)",
            ))),
        }
    }

    /// A connection to a Sentinel. The URL's user and password are the master's; Sentinels
    /// often have none (a Sentinel without a password refuses `AUTH`), so a Sentinel that
    /// refuses them is asked again without.
    fn sentinel_connection(
        &self,
        sentinel: &ConnectionInfo,
        timeout: Duration,
    ) -> redis::RedisResult<redis::Connection> {
        match open(&self.client(sentinel.clone())?, timeout) {
            Err(error)
                if !error.is_io_error() && sentinel.redis_settings().password().is_some() =>
            {
                let anonymous = sentinel
                    .clone()
                    .set_redis_settings(redis::RedisConnectionInfo::default());
                open(&self.client(anonymous)?, timeout).map_err(|_| error)
            }
            other => other,
        }
    }
}

/// A `redis+cluster://` or `redis+sentinel://` URL after its scheme, in parts.
struct Url<'a> {
    /// `user:password`, as written (percent-encoded).
    userinfo: Option<&'a str>,
    hosts: Vec<&'a str>,
    path: &'a str,
}

impl<'a> Url<'a> {
    fn split(rest: &'a str) -> Result<Url<'a>, Error> {
        if rest.contains(['?', '#']) {
            return Err(configuration(
                "a redis+cluster:// or redis+sentinel:// URL takes no query (?…) or fragment (#…)",
            ));
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .collect();
        if hosts.is_empty() {
            return Err(configuration(
                "the Redis URL names no node: list at least one host:port",
            ));
        }
        Ok(Url {
            userinfo,
            hosts,
            path,
        })
    }

    /// Each host as the redis crate reads a `redis://` (or `rediss://`) URL.
    fn nodes(&self, tls: bool, default_port: u16, db: i64) -> Result<Vec<ConnectionInfo>, Error> {
        let scheme = if tls { "rediss" } else { "redis" };
        let userinfo = self
            .userinfo
            .map(|userinfo| format!("{userinfo}@"))
            .unwrap_or_default();
        self.hosts
            .iter()
            .enumerate()
            .map(|(index, host)| {
                let (host, port) = split_port(host, index)?;
                let port = port.unwrap_or(default_port);
                format!("{scheme}://{userinfo}{host}:{port}/{db}")
                    .into_connection_info()
                    .map_err(|_| {
                        configuration(format!(
                            "node {} of the Redis URL is not a valid host:port",
                            index + 1
                        ))
                    })
            })
            .collect()
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port a number from 1 to 65535.
fn split_port(node: &str, index: usize) -> Result<(&str, Option<u16>), Error> {
    let bad_port = || {
        configuration(format!(
            "the port of node {} in the Redis URL is not a number from 1 to 65535",
            index + 1
        ))
    };
    let (host, port) = match node.rfind(':') {
        // An IPv6 address without a port: its colons are inside the brackets.
        Some(at) if node.starts_with('[') && !node[..at].ends_with(']') => (node, None),
        Some(at) => (&node[..at], Some(&node[at + 1..])),
        None => (node, None),
    };
    let port = match port {
        None => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(bad_port)?,
        ),
    };
    if host.is_empty() {
        return Err(configuration(format!(
            "node {} of the Redis URL has no host",
            index + 1
        )));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-pa55";

    fn refused(url: &str) -> String {
        match Topology::parse(url) {
            Ok(_) => panic!("accepted a malformed URL"),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Configuration);
                let message = format!("{error} {error:?}");
                assert!(!message.contains(SECRET), "{message}");
                message
            }
        }
    }

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        let Ok(Topology::Cluster(cluster)) = Topology::parse(&format!(
            "redis+cluster://user:{SECRET}@127.0.0.1:7000, 127.0.0.2:7001,[::1]:7002,cache.internal"
        )) else {
            panic!("not a cluster");
        };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| node.addr().to_string())
            .collect();
        assert_eq!(
            addresses,
            [
                "127.0.0.1:7000",
                "127.0.0.2:7001",
                "::1:7002",
                "cache.internal:6379"
            ]
        );
        for node in &cluster.nodes {
            assert_eq!(node.redis_settings().username(), Some("user"));
            assert_eq!(node.redis_settings().password(), Some(SECRET));
        }
        assert!(!cluster.tls);
        let Ok(Topology::Cluster(cluster)) = Topology::parse("rediss+cluster://h:1/") else {
            panic!("not a cluster");
        };
        assert!(cluster.tls);
        assert!(matches!(
            cluster.nodes[0].addr(),
            ConnectionAddr::TcpTls { .. }
        ));
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_its_database() {
        let Ok(Topology::Sentinel(sentinel)) = Topology::parse(&format!(
            "redis+sentinel://:{SECRET}@10.0.0.1,10.0.0.2:26380/mymaster/3"
        )) else {
            panic!("not a sentinel URL");
        };
        assert_eq!(sentinel.master, "mymaster");
        assert_eq!(sentinel.settings.db(), 3);
        assert_eq!(sentinel.settings.password(), Some(SECRET));
        let addresses: Vec<String> = sentinel
            .sentinels
            .iter()
            .map(|node| node.addr().to_string())
            .collect();
        assert_eq!(addresses, ["10.0.0.1:26379", "10.0.0.2:26380"]);
        // A Sentinel's own connection selects no database (Sentinels have none).
        assert_eq!(sentinel.sentinels[0].redis_settings().db(), 0);
        let Ok(Topology::Sentinel(sentinel)) = Topology::parse("rediss+sentinel://h:26379/primary")
        else {
            panic!("not a sentinel URL");
        };
        assert!(sentinel.tls);
        assert_eq!(sentinel.settings.db(), 0);
    }

    #[test]
    fn malformed_urls_are_configuration_errors_without_the_password() {
        let no_node = refused("redis+cluster://");
        assert!(no_node.contains("no node"), "{no_node}");
        refused(&format!("redis+cluster://u:{SECRET}@"));
        refused(&format!("redis+cluster://u:{SECRET}@,,"));
        let port = refused(&format!("redis+cluster://u:{SECRET}@h:70000"));
        assert!(port.contains("port of node 1"), "{port}");
        refused(&format!("redis+cluster://u:{SECRET}@h:1,h:x{SECRET}"));
        refused(&format!("redis+cluster://u:{SECRET}@h:0"));
        refused(&format!("redis+cluster://u:{SECRET}@:7000"));
        refused(&format!("redis+cluster://u:{SECRET}@h:7000/3"));
        refused(&format!("redis+cluster://u:{SECRET}@h:7000?protocol=resp3"));
        let master = refused(&format!("redis+sentinel://u:{SECRET}@h:26379"));
        assert!(master.contains("master's name"), "{master}");
        refused(&format!("redis+sentinel://u:{SECRET}@h:26379/"));
        refused(&format!("redis+sentinel://u:{SECRET}@h:26379/m/x"));
        refused(&format!("redis+sentinel://u:{SECRET}@h:26379/m/-1"));
        refused(&format!("redis+sentinel://u:{SECRET}@h:26379/m/0/extra"));
        refused(&format!("redis+sentinel://u:{SECRET}@/m"));
        let scheme = refused(&format!("redis+clustr://u:{SECRET}@h:7000"));
        assert!(scheme.contains("`redis+clustr`"), "{scheme}");
        refused(&format!("u:{SECRET}@redis+cluster//h:7000"));
        refused(&format!("{SECRET}://h"));
        refused(&format!("redis://u:{SECRET}@h:notaport"));
        refused(&format!("redis+cluster://u:{SECRET}@h o s t:7000"));
        refused(&format!("redis+cluster://u:{SECRET}@[::1:7000"));
    }

    /// Odd input is an error or a topology, never a panic.
    #[test]
    fn no_input_makes_the_parser_panic() {
        let pieces = [
            "redis+cluster://",
            "rediss+sentinel://",
            "redis://",
            "@",
            ":",
            ",",
            "/",
            "[",
            "]",
            "::",
            "h",
            "1",
            "65536",
            "é",
            "%",
            "%zz",
            " ",
            "\0",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let _ = Topology::parse(&format!("{a}{b}{c}"));
                    let _ = Topology::parse(&format!("{a}{b}{c}{b}{a}"));
                }
            }
        }
    }
}
