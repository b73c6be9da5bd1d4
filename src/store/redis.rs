//! One token for a whole fleet: [`RedisStore`], a token cache in Redis (or Valkey).
//!
//! Decisions, and why:
//! - **Redis is a cache, never a point of failure.** Every command has a bounded timeout.
//!   When Redis is down, slow or full, the store behaves as an empty store without a lock
//!   for a back-off period (logged once per back-off), so the process goes to the identity
//!   provider itself, and uses Redis again afterwards. [`RedisStore::new`] connects lazily,
//!   so a process that starts during an outage works.
//! - **Leases, not locks.** The renewal lock is `SET <lock key> <random owner> NX PX <lease>`,
//!   released by its owner only (a compare-and-delete script). A holder that dies frees it
//!   when its short lease runs out; while a slow renewal runs, a keeper thread extends the
//!   lease (compare-and-extend), so that a live holder keeps it and a dead one loses it fast.
//! - **Fencing.** Taking the lease also counts up a fencing number (`…:fence`); a save made
//!   under a lease is refused once a later lease was handed out, so that a holder that lost
//!   its lease (paused, cut off) never writes over the newer holder's entry. The keeper
//!   goes on trying to extend while the renewal runs: one timed-out extension (Redis
//!   paused, the shared connection busy) does not end it.
//! - **The entry lives as long as its refresh token can.** An entry with a refresh token
//!   (or the record that its last refresh token was sent and may be spent) is kept for the
//!   refresh token's own lifetime when the server stated it, else for
//!   [`refresh_token_ttl`](RedisStore::refresh_token_ttl) (default 30 days); `load` then
//!   returns the expired access token with its refresh token, so that the fleet refreshes
//!   instead of logging in again.
//! - **Nothing stale, nothing secret.** An entry without a refresh token is stored with a
//!   TTL equal to the access token's remaining life. Refresh tokens are stored only when
//!   asked for
//!   ([`store_refresh_tokens`](RedisStore::store_refresh_tokens)): everyone who can read the
//!   Redis database could use them. Keys are hashes of the credential set; the value holds
//!   tokens and a salted fingerprint of the client secret, never a secret.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

mod topology;
use topology::Topology;

use super::entry::Codec;
use super::key::hex;
use super::{CacheKey, StoreLock, TokenStore};
use crate::{Error, ErrorKind, Token};

/// Every key this store writes starts with this prefix: `en-core-auth:{<key>}:token` for
/// the token and `en-core-auth:{<key>}:lock` for the renewal lease, `<key>` being
/// [`CacheKey::as_hex`]. The braces make both keys of a credential set hash to one slot of a
/// Redis Cluster.
///
/// ```
/// assert_eq!(en_core_auth::store::REDIS_KEY_PREFIX, "en-core-auth:");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub const REDIS_KEY_PREFIX: &str = "en-core-auth:";

/// Releases the lease only if this process still owns it.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('del', KEYS[1]) else return 0 end";
/// Takes the lease if free, and counts up the fencing number that saves under it carry.
/// KEYS: lease, fence. ARGV: owner, lease ms, fence TTL ms. Returns the fence, 0 if held.
const ACQUIRE: &str = "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
     local fence = redis.call('incr', KEYS[2]) \
     redis.call('pexpire', KEYS[2], ARGV[3]) \
     return fence else return 0 end";
/// Writes the entry unless a lease newer than the writer's was handed out since (a fence
/// of 0: written without a lease, unconditionally). KEYS: token, fence. ARGV: entry,
/// TTL ms, fence. Returns 1 when written, 0 when fenced off.
const SAVE: &str = "local fence = tonumber(ARGV[3]) \
     if fence > 0 and tonumber(redis.call('get', KEYS[2]) or '0') > fence then return 0 end \
     redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
     return 1";
/// Extends the lease only if this process still owns it.
const EXTEND: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/// A token without an expiry is kept at most this long: Redis never holds a token forever.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long an entry with a refresh token is kept when the server did not say how long
/// the refresh token lives: [`RedisStore::refresh_token_ttl`]'s default, 30 days (the
/// default refresh-token lifetime of Cognito and Auth0; shorter-lived ones are refused by
/// their server and lead to a new login, longer-lived ones to a login after 30 idle days).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(en_core_auth::store::REDIS_REFRESH_TOKEN_TTL, Duration::from_secs(30 * 24 * 3600));
/// ```
pub const REDIS_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A [`TokenStore`] in Redis or Valkey, shared by every process of every machine that uses
/// the same credential set: the fleet asks the identity provider about once per token
/// lifetime, instead of once per process.
///
/// - URL: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS (rustls,
///   verified against the system's roots, or a CA given with
///   [`with_root_certificate`](RedisStore::with_root_certificate)). Keys live under [`REDIS_KEY_PREFIX`] in the database the URL
///   names.
/// - Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port…]` (or
///   `rediss+cluster://`), seed nodes of which one reachable is enough. `ASK` and `MOVED`
///   redirections are followed inside each command; the token and its lease share one slot.
/// - Sentinel: `redis+sentinel://[user:password@]host:port[,host:port…]/MASTER[/DB]` (or
///   `rediss+sentinel://`): the hosts are Sentinels, `MASTER` the name they monitor the
///   master under, and the user and password are the master's (Sentinels are asked with
///   them, and without when they refuse them). Commands go to the master the Sentinels name.
/// - After a failover (a cluster promoting a replica, Sentinels promoting one), the store
///   behaves as when Redis is down until the next connection, after the back-off, finds the
///   new master: each process asks the identity provider itself at most once meanwhile.
/// - Timeouts: connecting, reading and writing each take at most
///   [`timeout`](RedisStore::timeout) (default 500 ms). After a failure, Redis is left alone
///   for [`retry_after`](RedisStore::retry_after) (default 5 s).
/// - Single flight across machines: [`lock`](TokenStore::lock) takes a lease of
///   [`lease`](RedisStore::lease) (default 5 s), extended while the renewal runs, waiting at
///   most [`lock_timeout`](RedisStore::lock_timeout) (default 30 s) for another machine;
///   after that (or when Redis is down) the process renews on its own.
///   [`try_lock`](TokenStore::try_lock) never waits: renewals ahead of expiry don't hold up
///   a caller that has a valid token.
///
/// ```no_run
/// use en_core_auth::store::RedisStore;
/// use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, oauth2::ClientCredentials};
///
/// let client = ClientInfo::new("my-client", "my-secret");
/// let authorizer = ClientCredentials::new(client, "https://idp.example.com/oauth2/token")?;
/// let store = RedisStore::new("redis://cache.internal:6379/0", authorizer.credential_set().cache_key())?;
/// let auth = AuthMiddleware::builder(authorizer).token_store(store).build();
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisStore {
    shared: Arc<Shared>,
    codec: Codec,
    lock_timeout: Duration,
    /// How long an entry with a refresh token lives when the server did not say.
    refresh_token_ttl: Duration,
}

/// What the store and the keeper threads of its leases share.
struct Shared {
    /// One server, a cluster, or Sentinels: where the URL says commands go.
    topology: Topology,
    connection: Mutex<Option<topology::Connection>>,
    token_key: String,
    lock_key: String,
    /// The fencing counter, counted up with every lease handed out.
    fence_key: String,
    /// The fencing number of the lease this store holds now, if any: its saves carry it.
    held_fence: Mutex<Option<i64>>,
    timeout: Duration,
    lease: Duration,
    retry_after: Duration,
    /// While set and in the future, Redis is not asked.
    down_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the key is shown.
        f.debug_struct("RedisStore")
            .field("token_key", &self.shared.token_key)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` for the credential set `key`: one server (`redis://`,
    /// `rediss://`), a Redis Cluster (`redis+cluster://`, `rediss+cluster://`) or the master
    /// that Sentinels name (`redis+sentinel://…/MASTER[/DB]`, `rediss+sentinel://`); see
    /// [`RedisStore`]. A node without a port is on 6379, a Sentinel on 26379. Does not
    /// connect: the first use does, and an unreachable Redis only makes the store act as an
    /// empty one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when `url` is none of these forms: another scheme, no
    /// node, a port that is not a number, a Sentinel URL without a master's name. The
    /// message never quotes the URL (it may hold a password).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// use en_core_auth::ErrorKind;
    ///
    /// let key = CacheKey::new("https://idp.example.com/token", "client", None, ["api"]);
    /// // Nothing listens there: still fine, the store connects when it is used.
    /// assert!(RedisStore::new("redis://127.0.0.1:1/0", key.clone()).is_ok());
    /// assert!(RedisStore::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7000", key.clone()).is_ok());
    /// assert!(RedisStore::new("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/cache/0", key.clone()).is_ok());
    /// for bad in ["http://127.0.0.1:6379", "redis+cluster://", "redis+cluster://h:port",
    ///             "redis+sentinel://:s3cret@h:26379", "redis+clusterr://h:7000"] {
    ///     let err = RedisStore::new(bad, key.clone()).unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::Configuration);
    ///     assert!(!err.to_string().contains("s3cret"));
    /// }
    /// ```
    pub fn new(url: &str, key: CacheKey) -> Result<RedisStore, Error> {
        let shared = Shared {
            topology: Topology::parse(url)?,
            connection: Mutex::new(None),
            token_key: format!("{REDIS_KEY_PREFIX}{{{}}}:token", key.as_hex()),
            lock_key: format!("{REDIS_KEY_PREFIX}{{{}}}:lock", key.as_hex()),
            fence_key: format!("{REDIS_KEY_PREFIX}{{{}}}:fence", key.as_hex()),
            held_fence: Mutex::new(None),
            timeout: Duration::from_millis(500),
            lease: Duration::from_secs(5),
            retry_after: Duration::from_secs(5),
            down_until: Mutex::new(None),
        };
        Ok(RedisStore {
            shared: Arc::new(shared),
            codec: Codec {
                key,
                store_refresh_tokens: false,
            },
            lock_timeout: Duration::from_secs(30),
            refresh_token_ttl: REDIS_REFRESH_TOKEN_TTL,
        })
    }

    /// Trusts the CA certificate(s) in `pem` for `rediss://`, instead of the system's
    /// roots: for a Redis behind a private CA that is not installed system-wide.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`] when the URL is not `rediss://` or `pem` holds no
    /// certificate.
    ///
    /// ```no_run
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let ca = std::fs::read("/etc/redis/ca.pem")?;
    /// let store = RedisStore::new("rediss://cache.internal:6380/0", CacheKey::new("e", "c", None, ["s"]))?
    ///     .with_root_certificate(&ca)?;
    /// # let _ = store;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<RedisStore, Error> {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.topology.trust(pem)?,
            None => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "set the CA certificate before the store is used",
                ));
            }
        }
        Ok(self)
    }

    /// Whether refresh tokens are written to Redis (default: no, because whoever can read
    /// the database could use them; turn on to let the fleet renew without a new login).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .store_refresh_tokens(true);
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn store_refresh_tokens(mut self, store: bool) -> RedisStore {
        self.codec.store_refresh_tokens = store;
        self
    }

    /// The bound on connecting to Redis and on each reply (default 500 ms). In a cluster a
    /// command may take a few replies (a redirection, a retry after a timed-out reply: three
    /// at most), each bounded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .timeout(Duration::from_millis(200));
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn timeout(self, timeout: Duration) -> RedisStore {
        let timeout = timeout.max(Duration::from_millis(1));
        self.with_shared(|shared| shared.timeout = timeout)
    }

    /// The renewal lease (default 5 s): how long the fleet waits for a holder that died.
    /// A live holder extends it every third of a lease while its renewal runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .lease(Duration::from_secs(2));
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn lease(self, lease: Duration) -> RedisStore {
        let lease = lease.max(Duration::from_millis(30));
        self.with_shared(|shared| shared.lease = lease)
    }

    /// How long Redis is left alone after it failed (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .retry_after(Duration::from_secs(1));
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn retry_after(self, wait: Duration) -> RedisStore {
        self.with_shared(|shared| shared.retry_after = wait)
    }

    /// How long [`lock`](TokenStore::lock) waits for another machine's renewal before this
    /// process renews on its own (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .lock_timeout(Duration::from_secs(10));
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn lock_timeout(mut self, wait: Duration) -> RedisStore {
        self.lock_timeout = wait;
        self
    }

    /// How long an entry that carries a refresh token is kept when the identity provider
    /// did not say how long the refresh token lives (default [`REDIS_REFRESH_TOKEN_TTL`],
    /// 30 days); it also bounds a lifetime the server did state. Set it to your provider's
    /// refresh-token lifetime. An entry without a refresh token lives as long as its access
    /// token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?
    ///     .store_refresh_tokens(true)
    ///     .refresh_token_ttl(Duration::from_secs(90 * 24 * 3600));
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> RedisStore {
        self.refresh_token_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// The Redis key the token is stored under (`en-core-auth:{<key>}:token`).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let key = CacheKey::new("e", "c", None, ["s"]);
    /// let store = RedisStore::new("redis://127.0.0.1:6379", key.clone())?;
    /// assert_eq!(store.token_key(), format!("en-core-auth:{{{}}}:token", key.as_hex()));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn token_key(&self) -> &str {
        &self.shared.token_key
    }

    /// The Redis key of the renewal lease (`en-core-auth:{<key>}:lock`).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, RedisStore};
    /// let store = RedisStore::new("redis://127.0.0.1:6379", CacheKey::new("e", "c", None, ["s"]))?;
    /// assert!(store.lock_key().ends_with(":lock"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn lock_key(&self) -> &str {
        &self.shared.lock_key
    }

    /// Settings are only changed while building, before any lease shares them.
    fn with_shared(mut self, change: impl FnOnce(&mut Shared)) -> RedisStore {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            change(shared);
        }
        self
    }

    /// Tries for the lease until `wait` has passed: `Ok(None)` when another holder kept it.
    /// Redis down: a lock that excludes no one, so the caller renews on its own.
    fn lease_within(&self, wait: Duration) -> Result<Option<StoreLock>, Error> {
        let owner = owner_id();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let lease_ms = millis(self.shared.lease);
            let taken = self.shared.run(|connection| {
                let reply = redis::cmd("EVAL")
                    .arg(ACQUIRE)
                    .arg(2)
                    .arg(&self.shared.lock_key)
                    .arg(&self.shared.fence_key)
                    .arg(&owner)
                    .arg(lease_ms)
                    .arg(millis(FENCE_TTL.max(self.shared.lease * 10)))
                    .query::<i64>(connection);
                match reply {
                    // A Redis Cluster moving the slot answers a script over keys split
                    // between two nodes with TRYAGAIN: busy, not down. Not taken this time.
                    Err(error) if is_try_again(&error) => Ok(0),
                    other => other,
                }
            });
            match taken {
                None => return Ok(Some(StoreLock::none())),
                Some(fence) if fence > 0 => {
                    return Ok(Some(StoreLock::new(Box::new(Lease::start(
                        Arc::clone(&self.shared),
                        owner,
                        fence,
                    )))));
                }
                Some(_) => {}
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Ok(None);
            }
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Shared {
    /// Runs `command` on the connection (made first if needed), or returns `None` when
    /// Redis is in back-off or fails now (which starts a back-off, logged once).
    fn run<T>(
        &self,
        command: impl FnMut(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Option<T> {
        if self
            .down_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        self.run_now(command)
    }

    /// [`run`](Self::run), even during a back-off: for the lease keeper, whose holder
    /// would otherwise lose its lease to a back-off as long as the lease.
    fn run_now<T>(
        &self,
        mut command: impl FnMut(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let mut connection = self.connection.lock();
        if connection.is_none() {
            match self.connect() {
                Ok(made) => *connection = Some(made),
                Err(error) => {
                    drop(connection);
                    self.back_off(&error);
                    return None;
                }
            }
        }
        let mut result = command(connection.as_mut()?.as_dyn());
        // A cluster moving a slot (TRYAGAIN, or a redirection the client handed back after
        // its own few tries while its map is stale) is busy, not down: try again shortly.
        for _ in 0..TRY_AGAIN_ATTEMPTS {
            match &result {
                Err(error) if is_try_again(error) => {
                    std::thread::sleep(TRY_AGAIN_PAUSE);
                    result = command(connection.as_mut()?.as_dyn());
                }
                _ => break,
            }
        }
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                // The connection may be half-way through a reply: never reused.
                *connection = None;
                drop(connection);
                self.back_off(&error);
                None
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<topology::Connection> {
        self.topology.connect(self.timeout)
    }

    fn back_off(&self, error: &redis::RedisError) {
        let mut down_until = self.down_until.lock();
        let now = Instant::now();
        if down_until.is_some_and(|until| now < until) {
            return;
        }
        *down_until = Some(now + self.retry_after);
        // A RedisError describes the failure (refused, timed out, OOM, WRONGPASS), never
        // the URL or the password.
        log::warn!(
            "Redis token store unusable ({}): going to the identity provider directly, \
             Redis is tried again in {} ms",
            error,
            self.retry_after.as_millis()
        );
    }
}

/// The fencing counter outlives every lease by far; it only has to outlast a paused holder.
const FENCE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A held renewal lease: a keeper thread extends it until it is dropped, then it is
/// released if still ours.
struct Lease {
    shared: Arc<Shared>,
    owner: String,
    stop: Option<mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn start(shared: Arc<Shared>, owner: String, fence: i64) -> Lease {
        *shared.held_fence.lock() = Some(fence);
        let (stop, stopped) = mpsc::channel::<()>();
        let keeper = {
            let shared = Arc::clone(&shared);
            let owner = owner.clone();
            std::thread::Builder::new()
                .name("en-core-auth-lease".to_owned())
                .spawn(move || keep(&shared, &owner, &stopped))
                .ok()
        };
        if keeper.is_none() {
            log::debug!("no thread to extend the Redis lease: it lasts one lease");
        }
        Lease {
            shared,
            owner,
            stop: Some(stop),
            keeper,
        }
    }
}

/// Extends the lease every third of its length until told to stop. A failed extension
/// (a timeout, Redis paused, the back-off after another command failed) is tried again a
/// little later: only Redis saying that another holder has the lease ends the keeping.
fn keep(shared: &Shared, owner: &str, stopped: &mpsc::Receiver<()>) {
    let every = shared.lease / 3;
    let mut wait = every;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        let extended = shared.run_now(|connection| {
            redis::cmd("EVAL")
                .arg(EXTEND)
                .arg(1)
                .arg(&shared.lock_key)
                .arg(owner)
                .arg(millis(shared.lease))
                .query::<i64>(connection)
        });
        wait = match extended {
            Some(1) => every,
            Some(_) => {
                log::debug!("the Redis renewal lease was lost; the renewal goes on without it");
                return;
            }
            None => {
                log::debug!("could not extend the Redis renewal lease; trying again");
                (every / 4).max(Duration::from_millis(10))
            }
        };
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.shared.held_fence.lock() = None;
        drop(self.stop.take());
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
        let _ = self.shared.run(|connection| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&self.shared.lock_key)
                .arg(&self.owner)
                .query::<i64>(connection)
        });
    }
}

impl TokenStore for RedisStore {
    fn load(&self) -> Result<Option<Token>, Error> {
        let value = self.shared.run(|connection| {
            let reply = redis::cmd("GET")
                .arg(&self.shared.token_key)
                .query::<redis::Value>(connection);
            match reply {
                // Another program's hash or list under our key: foreign, so empty.
                Err(error) if error.code() == Some("WRONGTYPE") => Ok(redis::Value::Nil),
                other => other,
            }
        });
        let Some(value) = value else {
            // Redis failing or in its back-off: an error, not an empty store, so that the
            // middleware's counters show the outage (the lifecycle goes to the identity
            // provider either way).
            return Err(Error::new(
                ErrorKind::Storage,
                "Redis could not be read (down, slow or backing off)",
            ));
        };
        Ok(match Some(value) {
            Some(redis::Value::BulkString(bytes)) => {
                let token = self.codec.decode(&bytes);
                if token.is_none() {
                    log::debug!(
                        "ignoring the value in Redis: not a token entry this version reads"
                    );
                }
                token
            }
            _ => None,
        })
    }

    /// Writes the entry for as long as it is of use: the access token's remaining life, or
    /// a refresh token's when it carries one (see [`RedisStore::refresh_token_ttl`]).
    /// Under a lease that was lost to a later holder, nothing is written and the error
    /// says so: that holder's entry is newer.
    fn save(&self, token: &Token) -> Result<(), Error> {
        let Some(ttl) = self.entry_ttl(token, SystemTime::now()) else {
            // Expired, with no refresh token to keep: Redis never holds a useless token.
            return Ok(());
        };
        let bytes = self.codec.encode(token)?;
        let fence = self.shared.held_fence.lock().unwrap_or(0);
        // A failure is logged by `run`; the token is good, only its reuse is lost.
        let written = self.shared.run(|connection| {
            let mut save = redis::cmd("EVAL");
            save.arg(SAVE)
                .arg(2)
                .arg(&self.shared.token_key)
                .arg(&self.shared.fence_key)
                .arg(&bytes)
                .arg(millis(ttl))
                .arg(fence);
            save.query::<i64>(connection)
        });
        if written == Some(0) {
            return Err(Error::new(ErrorKind::Storage, super::Superseded));
        }
        Ok(())
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        match self.lease_within(self.lock_timeout)? {
            Some(lock) => Ok(lock),
            None => {
                log::warn!(
                    "another machine has held the Redis renewal lease for {} s: renewing without it",
                    self.lock_timeout.as_secs()
                );
                Ok(StoreLock::none())
            }
        }
    }

    fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
        self.lease_within(Duration::ZERO)
    }

    fn clear(&self) -> Result<(), Error> {
        let removed = self.shared.run(|connection| {
            redis::cmd("DEL")
                .arg(&self.shared.token_key)
                .query::<i64>(connection)
        });
        match removed {
            Some(_) => Ok(()),
            None => Err(Error::new(
                ErrorKind::Storage,
                "could not reach Redis to forget the token",
            )),
        }
    }
}

impl RedisStore {
    /// How long the entry for `token` is worth keeping, from `now`: the access token's
    /// remaining life, or, when the entry carries a refresh token (or the record that its
    /// refresh token was spent), as long as a refresh token can live. `None` when there
    /// is nothing worth keeping.
    fn entry_ttl(&self, token: &Token, now: SystemTime) -> Option<Duration> {
        let access = match token.expires_at() {
            Some(at) => at
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
                .min(MAX_TTL),
            None => MAX_TTL,
        };
        let stores_refresh = self.codec.store_refresh_tokens && token.refresh_token().is_some();
        let refresh = if stores_refresh {
            match token.refresh_expires_at() {
                Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
                None => self.refresh_token_ttl,
            }
            .min(self.refresh_token_ttl)
        } else if token.refresh_spent() {
            // The record that a refresh token may be spent must outlive every copy of it.
            self.refresh_token_ttl
        } else {
            Duration::ZERO
        };
        Some(access.max(refresh)).filter(|ttl| *ttl >= Duration::from_millis(1))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A random lease owner: only this holder's release or extension matches it.
fn owner_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_be_bytes();
    }
    hex(&bytes)
}

/// How often, and how far apart, a save answered TRYAGAIN is tried again (about 1 s in all).
const TRY_AGAIN_ATTEMPTS: usize = 20;
const TRY_AGAIN_PAUSE: Duration = Duration::from_millis(50);

/// Whether Redis answered TRYAGAIN: during a cluster slot migration, a command over several
/// keys of the slot that are not all on the node asked. Busy, not down. The cluster client
/// follows the ASK that comes first a few times and then hands back that ASK, and a MOVED
/// while its map of the slots is stale: the same case.
fn is_try_again(error: &redis::RedisError) -> bool {
    matches!(error.code(), Some("TRYAGAIN" | "ASK" | "MOVED"))
}
