//! Where tokens are kept between uses: in memory (the default) or, for CLIs and scripts that
//! start fresh on every run, in a file shared by every process of the user
//! ([`FileStore`]), in the OS keychain (`KeyringStore`, feature `keyring`), or, for a fleet
//! of machines, in Redis (`RedisStore`, feature `redis`). All are keyed by a [`CacheKey`],
//! best built from the authorizer's own description of its credential set:
//! `authorizer.credential_set().cache_key()` ([`CredentialSet`]).
//!
//! [`AuthMiddleware`](crate::AuthMiddleware) consults its store when it has no usable
//! token in memory and saves every token it obtains. Around each renewal it takes the
//! store's [`lock`](TokenStore::lock), then reads the store again: when another process
//! renewed meanwhile, its token is used and the identity provider is not asked again.

use parking_lot::Mutex;

mod entry;
mod file;
mod key;
#[cfg(feature = "keyring")]
mod keychain;
#[cfg(feature = "redis")]
mod redis;
pub use file::FileStore;
pub use key::{CacheKey, CredentialSet};
#[cfg(feature = "keyring")]
pub use keychain::KeyringStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{REDIS_KEY_PREFIX, REDIS_REFRESH_TOKEN_TTL, RedisStore};

use crate::{Error, Token};

/// Keeps a token between uses, possibly across processes.
///
/// Implementations must be cheap to call when there is nothing stored, and must never store
/// client secrets or passwords (they never see them: only [`Token`]s pass through here).
///
/// ```
/// use en_core_auth::store::{MemoryStore, TokenStore};
/// use en_core_auth::Token;
///
/// let store = MemoryStore::new();
/// assert!(store.load()?.is_none());
/// store.save(&Token::new("abc"))?;
/// assert_eq!(store.load()?.unwrap().access_token(), "abc");
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub trait TokenStore: Send + Sync {
    /// The stored token, if there is one. An expired token may be returned; the caller
    /// decides. A store that cannot read its data (corrupt, foreign) returns `Ok(None)`.
    fn load(&self) -> Result<Option<Token>, Error>;

    /// Stores `token`, replacing what was stored.
    fn save(&self, token: &Token) -> Result<(), Error>;

    /// Exclusive access for one renewal, across processes where the store is shared; the
    /// access ends when the returned guard is dropped. The default takes no lock. A store
    /// that waits must wait for a bounded time and then fail with
    /// [`ErrorKind::Storage`](crate::ErrorKind::Storage).
    fn lock(&self) -> Result<StoreLock, Error> {
        Ok(StoreLock::none())
    }

    /// Like [`lock`](TokenStore::lock) but without waiting: `None` when another process
    /// holds the lock. Used for renewals ahead of expiry, which must not hold up a caller
    /// that has a valid token. The default waits as `lock` does.
    fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
        self.lock().map(Some)
    }

    /// Forgets what is stored (a logout: [`AuthMiddleware::revoke`](crate::AuthMiddleware)).
    /// The default overwrites nothing and says so with a
    /// [`Storage`](crate::ErrorKind::Storage) error, so that a store that cannot forget is
    /// never taken for one that did.
    ///
    /// ```
    /// use en_core_auth::store::{MemoryStore, TokenStore};
    /// use en_core_auth::Token;
    ///
    /// let store = MemoryStore::new();
    /// store.save(&Token::new("abc"))?;
    /// store.clear()?;
    /// assert!(store.load()?.is_none());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    fn clear(&self) -> Result<(), Error> {
        Err(Error::new(
            crate::ErrorKind::Storage,
            "this token store cannot forget its token",
        ))
    }
}

/// A save refused because another process renewed meanwhile and its entry is newer (a
/// store lease lost to a later holder): the one store error after which this process must
/// not go on as if it held the store.
#[derive(Debug)]
pub(crate) struct Superseded;

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the renewal lease was lost to another process: its newer entry is kept")
    }
}

impl std::error::Error for Superseded {}

/// Exclusive access to a [`TokenStore`] while alive; see [`TokenStore::lock`].
///
/// ```
/// use en_core_auth::store::StoreLock;
/// let lock = StoreLock::new(Box::new(()));
/// drop(lock);
/// ```
pub struct StoreLock {
    _guard: Option<Box<dyn Send>>,
}

impl StoreLock {
    /// A lock held as long as `guard` lives (a locked file, a mutex guard…).
    ///
    /// ```
    /// let lock = en_core_auth::store::StoreLock::new(Box::new(42_u8));
    /// # drop(lock);
    /// ```
    pub fn new(guard: Box<dyn Send>) -> StoreLock {
        StoreLock {
            _guard: Some(guard),
        }
    }

    /// No lock: for stores that only one process uses.
    ///
    /// ```
    /// let lock = en_core_auth::store::StoreLock::none();
    /// # drop(lock);
    /// ```
    pub fn none() -> StoreLock {
        StoreLock { _guard: None }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// A store in memory. A middleware already keeps its token in memory, so this is useful
/// to share one token between middlewares built separately, or in tests.
///
/// ```
/// use std::sync::Arc;
/// use en_core_auth::store::{MemoryStore, TokenStore};
/// let shared = Arc::new(MemoryStore::new());
/// # let _ = shared;
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    token: Mutex<Option<Token>>,
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// let store = en_core_auth::store::MemoryStore::new();
    /// # let _ = store;
    /// ```
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<Token>, Error> {
        Ok(self.token.lock().clone())
    }

    fn save(&self, token: &Token) -> Result<(), Error> {
        *self.token.lock() = Some(token.clone());
        Ok(())
    }

    fn clear(&self) -> Result<(), Error> {
        *self.token.lock() = None;
        Ok(())
    }
}

impl<S: TokenStore + ?Sized> TokenStore for std::sync::Arc<S> {
    fn load(&self) -> Result<Option<Token>, Error> {
        (**self).load()
    }
    fn save(&self, token: &Token) -> Result<(), Error> {
        (**self).save(token)
    }
    fn lock(&self) -> Result<StoreLock, Error> {
        (**self).lock()
    }
    fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
        (**self).try_lock()
    }
    fn clear(&self) -> Result<(), Error> {
        (**self).clear()
    }
}
