//! A token cache in a file, shared by every process of the user: [`FileStore`].
//!
//! Security decisions, and why:
//! - The file name is a SHA-256 of the credential set's identity ([`CacheKey`]), so that no
//!   endpoint, client id or user name shows in a directory listing. The identity holds no
//!   secret: hashing a password into a name anyone can list would invite offline guessing.
//! - The directory is created 0700 and files 0600 from the moment they exist (never created
//!   wider and tightened later), because the file holds bearer tokens.
//! - Writes go to a temporary file in the same directory, are flushed to disk, then renamed
//!   over the cache file: a reader, or a process killed mid-write, sees the old file or the
//!   new one, never half of one.
//! - Reads trust nothing: a missing, corrupt, truncated, oversized or foreign file is "no
//!   token", and the next save replaces it.
//! - Client secrets and passwords are never written: the store only ever sees [`Token`]s.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::entry::Codec;
use super::{CacheKey, StoreLock, TokenStore};
use crate::{Error, ErrorKind, Token};

/// A cache file larger than this is not ours (tokens are a few KiB): it is ignored.
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// A [`TokenStore`] in a file: tokens survive the process and are shared, with a
/// cross-process lock, by every process of the user that uses the same credential set.
///
/// - Where: `<dir>/<key>.json`, with `<dir>` by default `$XDG_CACHE_HOME/en-core-auth`, else
///   `$HOME/.cache/en-core-auth` ([`FileStore::new`]), or any directory
///   ([`FileStore::in_dir`]). A directory this store creates is made `0700`; an existing
///   one is left as it is. Files are `0600`.
/// - What: JSON with the access token, token type, ID token, granted scope, expiry and
///   lifetime, and the
///   **refresh token** unless [`store_refresh_tokens(false)`](FileStore::store_refresh_tokens)
///   is set. Never a client secret or a password.
/// - Single flight: [`lock`](TokenStore::lock) takes an exclusive lock on `<key>.lock`
///   (`std::fs::File::lock`), waiting at most [`lock_timeout`](FileStore::lock_timeout)
///   (30 s by default). On a file system without locks, it goes on without one (and logs
///   it): renewals are then not single flight, but the cache stays consistent.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::store::{CacheKey, FileStore, TokenStore};
/// use en_core_auth::Token;
///
/// # let dir = std::env::temp_dir().join(format!("en-core-auth-doc-{}", std::process::id()));
/// let key = CacheKey::new("https://idp.example.com/oauth2/token", "my-client", None, ["api"]);
/// let store = FileStore::in_dir(&dir, key).store_refresh_tokens(false);
/// store.save(&Token::new("abc").with_refresh_token("r").with_expires_in(Duration::from_secs(60)))?;
/// let back = store.load()?.unwrap();
/// assert_eq!(back.access_token(), "abc");
/// assert_eq!(back.refresh_token(), None);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), en_core_auth::Error>(())
/// ```
///
/// With a middleware:
///
/// ```no_run
/// use en_core_auth::store::{CacheKey, FileStore};
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::ClientCredentials};
///
/// let token_url = "https://idp.example.com/oauth2/token";
/// let client = ClientInfo::new("my-client", "my-secret");
/// let store = FileStore::new(CacheKey::new(token_url, client.client_id(), None, ["api"]))?;
/// let auth = AuthMiddleware::builder(ClientCredentials::new(client, token_url)?)
///     .token_store(store)
///     .build();
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    key: CacheKey,
    store_refresh_tokens: bool,
    lock_timeout: Duration,
    pause_before_rename: Option<Duration>,
    /// Counts the tries that found the lock held, so that a test knows a waiter is blocked.
    #[cfg(test)]
    found_held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FileStore {
    /// A store in the user's cache directory ([`FileStore::default_dir`]).
    ///
    /// Fails with [`ErrorKind::Configuration`] when neither `XDG_CACHE_HOME` (absolute) nor
    /// `HOME` is set.
    ///
    /// ```no_run
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::new(CacheKey::new("https://idp.example.com/token", "c", None, ["api"]))?;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn new(key: CacheKey) -> Result<FileStore, Error> {
        Ok(FileStore::in_dir(FileStore::default_dir()?, key))
    }

    /// A store in `dir` (created on the first save or lock if missing).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/tmp/my-cache", CacheKey::new("e", "c", None, ["s"]));
    /// assert!(store.path().starts_with("/tmp/my-cache"));
    /// ```
    pub fn in_dir(dir: impl Into<PathBuf>, key: CacheKey) -> FileStore {
        FileStore {
            dir: dir.into(),
            key,
            store_refresh_tokens: true,
            lock_timeout: Duration::from_secs(30),
            pause_before_rename: None,
            #[cfg(test)]
            found_held: std::sync::Arc::default(),
        }
    }

    /// The default cache directory: `$XDG_CACHE_HOME/en-core-auth` when `XDG_CACHE_HOME` is
    /// an absolute path (the XDG specification says to ignore a relative one), else
    /// `$HOME/.cache/en-core-auth`, else (Windows) `%LOCALAPPDATA%\en-core-auth`.
    ///
    /// ```
    /// if let Ok(dir) = en_core_auth::store::FileStore::default_dir() {
    ///     assert!(dir.ends_with("en-core-auth"));
    /// }
    /// ```
    pub fn default_dir() -> Result<PathBuf, Error> {
        let var = |name: &str| std::env::var_os(name);
        default_dir_from(var("XDG_CACHE_HOME"), var("HOME"), var("LOCALAPPDATA"))
    }

    /// Whether refresh tokens are written to the file (default: yes). A refresh token
    /// lets the next run renew without the password, and lives much longer than an access
    /// token: turn this off where the file could be read by others (backups, shared home
    /// directories). Takes effect from the next save; a refresh token already stored is
    /// ignored when reading.
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/tmp/c", CacheKey::new("e", "c", None, ["s"]))
    ///     .store_refresh_tokens(false);
    /// # let _ = store;
    /// ```
    pub fn store_refresh_tokens(mut self, store: bool) -> FileStore {
        self.store_refresh_tokens = store;
        self
    }

    /// How long [`lock`](TokenStore::lock) waits for another process to finish its renewal
    /// before failing with [`ErrorKind::Storage`] (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/tmp/c", CacheKey::new("e", "c", None, ["s"]))
    ///     .lock_timeout(Duration::from_secs(5));
    /// # let _ = store;
    /// ```
    pub fn lock_timeout(mut self, wait: Duration) -> FileStore {
        self.lock_timeout = wait;
        self
    }

    /// Test hook, only with the `testing` feature: after the temporary file is written and
    /// before it is renamed into place, sleep for `pause`, so that a test can kill the
    /// process in the middle of a save.
    ///
    /// ```
    /// use std::time::Duration;
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/tmp/c", CacheKey::new("e", "c", None, ["s"]))
    ///     .pause_before_rename(Duration::from_millis(1));
    /// # let _ = store;
    /// ```
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn pause_before_rename(mut self, pause: Duration) -> FileStore {
        self.pause_before_rename = Some(pause);
        self
    }

    /// The cache file: `<dir>/<key>.json`.
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let key = CacheKey::new("e", "c", None, ["s"]);
    /// let store = FileStore::in_dir("/tmp/c", key.clone());
    /// assert_eq!(store.path(), std::path::Path::new("/tmp/c").join(format!("{}.json", key.as_hex())));
    /// ```
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.key.as_hex()))
    }

    fn codec(&self) -> Codec {
        Codec {
            key: self.key.clone(),
            store_refresh_tokens: self.store_refresh_tokens,
        }
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.key.as_hex()))
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|error| storage("could not create the cache directory", &self.dir, error))?;
        self.check_dir(true)
    }

    /// Whether the directory may hold our tokens: a directory, owned by us, that no other
    /// user can write (another user could replace our files there), and, when `writing`,
    /// one its owner may write (a directory made read-only means "don't cache").
    fn check_dir(&self, writing: bool) -> Result<(), Error> {
        let refuse = |why: &str| {
            Err(Error::new(
                ErrorKind::Storage,
                format!("not using the token cache {}: {why}", self.dir.display()),
            ))
        };
        let meta = match fs::metadata(&self.dir) {
            Ok(meta) => meta,
            Err(error) => {
                return Err(storage(
                    "could not read the cache directory",
                    &self.dir,
                    error,
                ));
            }
        };
        if !meta.is_dir() {
            return refuse("not a directory");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if meta.mode() & 0o022 != 0 {
                return refuse("other users can write to it");
            }
            if current_uid().is_some_and(|uid| uid != meta.uid()) {
                return refuse("owned by another user");
            }
            if writing && meta.mode() & 0o200 == 0 {
                return refuse("read-only");
            }
        }
        let _ = writing;
        Ok(())
    }

    /// Removes temporary files of this key that a killed process left behind (older than
    /// a minute: no save takes that long).
    fn clean_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!(".{}.", self.key.as_hex());
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with(&prefix) && name.ends_with(".tmp")) {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > STALE_TEMP));
            if stale && fs::remove_file(entry.path()).is_ok() {
                log::debug!("removed a stale temporary file {}", entry.path().display());
            }
        }
    }

    /// Writes `bytes` to a new temporary file beside the cache file and renames it over.
    fn write_atomically(&self, bytes: &[u8]) -> Result<(), Error> {
        self.ensure_dir()?;
        self.clean_stale_temps();
        let (temp_path, mut file) = self.create_temp()?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|error| storage("could not write the token cache", &temp_path, error));
        drop(file);
        if let Some(pause) = self.pause_before_rename {
            std::thread::sleep(pause);
        }
        let target = self.path();
        let renamed = written.and_then(|()| {
            fs::rename(&temp_path, &target)
                .map_err(|error| storage("could not replace the token cache", &target, error))
        });
        if renamed.is_err() {
            let _ = fs::remove_file(&temp_path);
            return renamed;
        }
        // Makes the rename itself durable; a failure here loses nothing but durability.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// A temporary file only this process writes: created new (never an existing file or a
    /// link planted in its place), 0600 from the start.
    fn create_temp(&self) -> Result<(PathBuf, File), Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last_error = None;
        for _ in 0..8 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                ".{}.{}.{}.{}.tmp",
                self.key.as_hex(),
                std::process::id(),
                nanos,
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.dir.join(name);
            match private_file().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => {
                    return Err(storage(
                        "could not create a temporary file",
                        &self.dir,
                        error,
                    ));
                }
            }
        }
        Err(storage(
            "could not create a temporary file",
            &self.dir,
            last_error.unwrap_or_else(|| std::io::Error::other("name clash")),
        ))
    }
}

impl TokenStore for FileStore {
    fn load(&self) -> Result<Option<Token>, Error> {
        let path = self.path();
        if let Err(error) = self.check_dir(false) {
            if self.dir.exists() {
                log::warn!("{error}");
            }
            return Ok(None);
        }
        // Without following a link planted in its place, and without blocking on a FIFO.
        let file = match safe_open(OpenOptions::new().read(true), &path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                log::debug!("ignoring {}: {error}", path.display());
                return Ok(None);
            }
        };
        if let Err(why) = trusted(&file) {
            log::debug!("ignoring {}: {why}", path.display());
            return Ok(None);
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| storage("could not read the token cache", &path, error))?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            log::debug!("ignoring {}: larger than a token cache", path.display());
            return Ok(None);
        }
        let token = self.codec().decode(&bytes);
        if token.is_none() {
            log::debug!(
                "ignoring {}: not a token cache this version reads",
                path.display()
            );
        }
        Ok(token)
    }

    fn save(&self, token: &Token) -> Result<(), Error> {
        let bytes = self.codec().encode(token)?;
        self.write_atomically(&bytes)
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        match self.lock_within(self.lock_timeout)? {
            Some(lock) => Ok(lock),
            None => Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "gave up waiting: another process has held the token cache lock for {} s: {}",
                    self.lock_timeout.as_secs(),
                    self.lock_path().display()
                ),
            )),
        }
    }

    fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
        self.lock_within(Duration::ZERO)
    }

    fn clear(&self) -> Result<(), Error> {
        let path = self.path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(storage("could not remove the token cache", &path, error)),
        }
    }
}

impl FileStore {
    /// The cross-process lock, waiting at most `wait` for another process to release it
    /// (`File::lock` has no timeout, so `try_lock` is polled); `None` when it is still held.
    fn lock_within(&self, wait: Duration) -> Result<Option<StoreLock>, Error> {
        let path = self.lock_path();
        // A cache that cannot be written (read-only, another user's directory or lock file
        // after a `sudo`) is no cache: the renewal goes on without the lock, and its token
        // is not saved.
        let no_cache = |why: &dyn std::fmt::Display| {
            log::warn!("renewing without the token cache: {why}");
            Ok(Some(StoreLock::none()))
        };
        if let Err(error) = self.ensure_dir() {
            return no_cache(&error);
        }
        let file = match safe_open(
            private_file()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &path,
        ) {
            Ok(file) => file,
            Err(error) => return no_cache(&storage("could not open the lock", &path, error)),
        };
        if let Err(why) = trusted(&file) {
            return no_cache(&format!("{}: {why}", path.display()));
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(StoreLock::new(Box::new(file)))),
                Err(fs::TryLockError::WouldBlock) => {
                    #[cfg(test)]
                    self.found_held
                        .fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                Err(fs::TryLockError::Error(error))
                    if error.kind() == std::io::ErrorKind::Unsupported =>
                {
                    log::warn!(
                        "{} does not support file locks: renewing without the cross-process lock",
                        path.display()
                    );
                    return Ok(Some(StoreLock::none()));
                }
                Err(fs::TryLockError::Error(error)) => {
                    return Err(storage("could not lock the token cache", &path, error));
                }
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

/// [`FileStore::default_dir`], from the values of `XDG_CACHE_HOME`, `HOME`, `LOCALAPPDATA`.
fn default_dir_from(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    local_app_data: Option<std::ffi::OsString>,
) -> Result<PathBuf, Error> {
    let set = |value: Option<std::ffi::OsString>| value.filter(|value| !value.is_empty());
    if let Some(xdg) = set(xdg_cache_home).filter(|value| Path::new(value).is_absolute()) {
        return Ok(PathBuf::from(xdg).join("en-core-auth"));
    }
    if let Some(home) = set(home) {
        return Ok(PathBuf::from(home).join(".cache").join("en-core-auth"));
    }
    if let Some(local) = set(local_app_data) {
        return Ok(PathBuf::from(local).join("en-core-auth"));
    }
    Err(Error::new(
        ErrorKind::Configuration,
        "no cache directory: neither XDG_CACHE_HOME nor HOME is set",
    ))
}

/// A temporary file older than this was left by a killed process.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// Opens `path` without following a symbolic link in its place (the open fails) and
/// without blocking on a FIFO or device (a FIFO planted there would hang a plain open).
fn safe_open(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options.open(path)
}

/// Whether an open cache or lock file may be trusted: a regular file, ours, that no other
/// user can read or write.
fn trusted(file: &File) -> Result<(), &'static str> {
    let meta = file.metadata().map_err(|_| "cannot be inspected")?;
    if !meta.is_file() {
        return Err("not a regular file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if current_uid().is_some_and(|uid| uid != meta.uid()) {
            return Err("owned by another user");
        }
        if meta.mode() & 0o077 != 0 {
            return Err("readable or writable by other users");
        }
    }
    Ok(())
}

/// This process's effective user id, read from `/proc/self` (the crate has no unsafe code
/// for `geteuid`); `None` where there is no `/proc`, and then ownership is not checked.
#[cfg(unix)]
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").ok().map(|meta| meta.uid())
}

/// Options for a file only its owner may read or write.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn storage(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("{what} {}: {error}", path.display()),
    )
}

// Issue 11: the Cognito remembered device, kept beside the token.
mod device;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "en-core-auth-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
        /// The cache directory itself, not created yet.
        fn cache(&self) -> PathBuf {
            self.0.join("cache")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn key() -> CacheKey {
        CacheKey::new("https://idp.test/token", "client-1", None, ["api"])
    }

    fn full_token() -> Token {
        Token::new("acc355-t0k3n")
            .with_refresh_token("r3fr35h-t0k3n")
            .with_id_token("1d-t0k3n")
            .with_token_type("DPoP")
            .with_scope("api other")
            .with_expires_in(Duration::from_secs(3600))
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let tmp = TempDir::new("round-trip");
        let store = FileStore::in_dir(tmp.cache(), key());
        assert!(store.load().unwrap().is_none());
        let token = full_token();
        store.save(&token).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back, token);
        assert_eq!(back.lifetime(), Some(Duration::from_secs(3600)));
        assert_eq!(back.expires_at(), token.expires_at());
    }

    #[test]
    fn a_token_without_expiry_round_trips() {
        let tmp = TempDir::new("no-expiry");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.save(&Token::new("plain")).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), Token::new("plain"));
    }

    #[test]
    fn keys_separate_credential_sets_without_ambiguity() {
        let base = CacheKey::new("e", "c", Some("u"), ["a", "b"]);
        assert_eq!(base, CacheKey::new("e", "c", Some("u"), ["b", "a", "a"]));
        for other in [
            CacheKey::new("ec", "", Some("u"), ["a", "b"]),
            CacheKey::new("e", "cu", Some(""), ["a", "b"]),
            CacheKey::new("e", "c", None, ["a", "b"]),
            CacheKey::new("e", "c", Some("u"), ["a b"]),
            CacheKey::new("e", "c", Some("u"), ["a"]),
            CacheKey::new("e", "c2", Some("u"), ["a", "b"]),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(
            CacheKey::new("e", "c", None, Vec::<String>::new()),
            CacheKey::new("e", "c", Some(""), Vec::<String>::new())
        );
    }

    #[test]
    fn the_file_name_holds_no_user_data() {
        let tmp = TempDir::new("name");
        let key = CacheKey::new("https://idp.test/token", "client-1", Some("alice"), ["api"]);
        let store = FileStore::in_dir(tmp.cache(), key.clone());
        store.save(&full_token()).unwrap();
        drop(store.lock().unwrap());
        for entry in fs::read_dir(tmp.cache()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(name.starts_with(key.as_hex()), "{name}");
            for data in ["alice", "client-1", "idp", "api"] {
                assert!(!name.contains(data), "{name} contains {data}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn directory_is_0700_and_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("perms");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.save(&full_token()).unwrap();
        let _lock = store.lock().unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.cache()), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&store.lock_path()), 0o600);
        // Temporary files too: created 0600, never wider and tightened later.
        let (temp, _file) = store.create_temp().unwrap();
        assert_eq!(mode(&temp), 0o600);
    }

    #[test]
    fn unreadable_content_is_no_token_and_gets_replaced() {
        let tmp = TempDir::new("corrupt");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.save(&full_token()).unwrap();
        let good = fs::read(store.path()).unwrap();

        let foreign_version = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"version\": 1", "\"version\": 2");
        assert_ne!(foreign_version.as_bytes(), good.as_slice());
        let oversized = {
            let mut text = String::from_utf8(good.clone()).unwrap();
            text.insert_str(1, &format!("\"padding\": \"{}\",", "x".repeat(70 * 1024)));
            text.into_bytes()
        };
        // Oversized but otherwise valid: only the size check rejects it.
        assert!(store.codec().decode(&oversized).is_some());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("garbage", b"\x00\xff\xfe not json".to_vec()),
            ("foreign json", br#"{"access_token": "x", "format": "other"}"#.to_vec()),
            ("json array", b"[1, 2, 3]".to_vec()),
            ("other version", foreign_version.into_bytes()),
            ("oversized", oversized),
            (
                "bad nanos",
                String::from_utf8(good.clone())
                    .unwrap()
                    .replacen("\"nanos\": ", "\"nanos\": 4000000000", 1)
                    .into_bytes(),
            ),
            (
                "empty access token",
                br#"{"format": "en-core-auth token cache", "version": 1, "access_token": "", "token_type": "Bearer"}"#
                    .to_vec(),
            ),
        ];
        for (name, bytes) in cases {
            fs::write(store.path(), &bytes).unwrap();
            assert!(store.load().unwrap().is_none(), "{name} was accepted");
            store.save(&full_token()).unwrap();
            let replaced = store.load().unwrap();
            assert_eq!(
                replaced.as_ref().map(Token::access_token),
                Some("acc355-t0k3n"),
                "{name} was not replaced"
            );
        }
    }

    #[test]
    fn a_directory_in_place_of_the_file_is_no_token() {
        let tmp = TempDir::new("dir-in-place");
        let store = FileStore::in_dir(tmp.cache(), key());
        fs::create_dir_all(store.path()).unwrap();
        assert!(store.load().unwrap().is_none());
        // Saving cannot replace a directory: that is an error, not a panic.
        assert_eq!(
            store.save(&full_token()).unwrap_err().kind(),
            ErrorKind::Storage
        );
        // And the failed save leaves no temporary file behind.
        let leftovers = fs::read_dir(tmp.cache())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn refresh_tokens_can_be_kept_out_of_the_file() {
        let tmp = TempDir::new("no-refresh");
        let keeping = FileStore::in_dir(tmp.cache(), key());
        keeping.save(&full_token()).unwrap();
        let text = fs::read_to_string(keeping.path()).unwrap();
        assert!(text.contains("r3fr35h-t0k3n"));
        assert_eq!(
            keeping.load().unwrap().unwrap().refresh_token(),
            Some("r3fr35h-t0k3n")
        );

        let not_keeping = FileStore::in_dir(tmp.cache(), key()).store_refresh_tokens(false);
        // A refresh token written before the switch was turned off is not used...
        assert_eq!(not_keeping.load().unwrap().unwrap().refresh_token(), None);
        // ...and is gone after the next save.
        not_keeping.save(&full_token()).unwrap();
        let text = fs::read_to_string(not_keeping.path()).unwrap();
        assert!(!text.contains("r3fr35h-t0k3n"));
        assert!(text.contains("acc355-t0k3n"));
        assert_eq!(keeping.load().unwrap().unwrap().refresh_token(), None);
    }

    #[test]
    fn leftover_temporary_files_do_not_disturb_reads_or_writes() {
        let tmp = TempDir::new("leftover");
        let store = FileStore::in_dir(tmp.cache(), key());
        let token = full_token();
        store.save(&token).unwrap();
        // What a process killed mid-write leaves: a partial temporary file.
        let partial = tmp
            .cache()
            .join(format!(".{}.99999.1.0.tmp", key().as_hex()));
        fs::write(&partial, b"{\"format\": \"en-core-auth tok").unwrap();
        assert_eq!(store.load().unwrap().unwrap(), token);
        let next = Token::new("next").with_expires_in(Duration::from_secs(60));
        store.save(&next).unwrap();
        assert_eq!(store.load().unwrap().unwrap().access_token(), "next");
    }

    #[test]
    fn lock_is_exclusive_and_times_out_with_a_storage_error() {
        let tmp = TempDir::new("lock");
        let store = FileStore::in_dir(tmp.cache(), key()).lock_timeout(Duration::from_millis(30));
        let held = store.lock().unwrap();
        // A second open file description, as another process would have.
        let err = store.lock().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Storage);
        let message = err.to_string();
        assert!(message.contains("another process has held the token cache lock"));
        assert!(
            message.contains(&format!("{}.lock", key().as_hex())),
            "{message}"
        );
        drop(held);
        // Released with the guard.
        drop(store.lock().unwrap());
    }

    #[test]
    fn a_waiting_lock_gets_it_when_released() {
        let tmp = TempDir::new("lock-wait");
        let store = FileStore::in_dir(tmp.cache(), key()).lock_timeout(Duration::from_secs(30));
        let held = store.lock().unwrap();
        let waiter = {
            let store = store.clone();
            std::thread::spawn(move || store.lock().map(drop))
        };
        // Released only once the waiter has found the lock held: it is blocked, waiting.
        let mut polls = 0;
        while store.found_held.load(std::sync::atomic::Ordering::Acquire) == 0 {
            polls += 1;
            assert!(polls < 3000, "the waiter never found the lock held");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!waiter.is_finished());
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn secrets_never_reach_the_file() {
        use crate::{AuthMiddleware, Authorizer, ClientInfo};
        struct WithSecrets(ClientInfo, String);
        impl Authorizer for WithSecrets {
            fn client_info(&self) -> &ClientInfo {
                &self.0
            }
            fn authorize(&mut self) -> Result<Token, Error> {
                // Uses the password as an identity provider would, then forgets it.
                assert!(!self.1.is_empty());
                Ok(full_token())
            }
        }
        let tmp = TempDir::new("secrets");
        let client = ClientInfo::new("client-1", "cl13nt-s3cr3t").with_api_key("4p1-k3y");
        let auth = AuthMiddleware::builder(WithSecrets(client, "p455w0rd".to_owned()))
            .token_store(FileStore::in_dir(tmp.cache(), key()))
            .build();
        assert_eq!(auth.access_token().unwrap(), "acc355-t0k3n");
        let mut files = 0;
        for entry in fs::read_dir(tmp.cache()).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for secret in ["cl13nt-s3cr3t", "p455w0rd", "4p1-k3y"] {
                assert!(!text.contains(secret), "{secret} written to the cache");
            }
            files += 1;
        }
        // The cache file and the lock file were both looked at.
        assert_eq!(files, 2);
        let cached = FileStore::in_dir(tmp.cache(), key()).load().unwrap();
        assert_eq!(cached.unwrap().access_token(), "acc355-t0k3n");
    }

    #[test]
    fn a_second_middleware_uses_the_stored_token() {
        use crate::{AuthMiddleware, Authorizer, ClientInfo};
        struct Counting(ClientInfo, std::sync::Arc<AtomicU64>);
        impl Authorizer for Counting {
            fn client_info(&self) -> &ClientInfo {
                &self.0
            }
            fn authorize(&mut self) -> Result<Token, Error> {
                let n = self.1.fetch_add(1, Ordering::Relaxed);
                Ok(Token::new(format!("t{n}")).with_expires_in(Duration::from_secs(3600)))
            }
        }
        let tmp = TempDir::new("two-middlewares");
        let calls = std::sync::Arc::new(AtomicU64::new(0));
        let build = || {
            AuthMiddleware::builder(Counting(ClientInfo::new("c", ""), calls.clone()))
                .token_store(FileStore::in_dir(tmp.cache(), key()))
                .build()
        };
        assert_eq!(build().access_token().unwrap(), "t0");
        assert_eq!(build().access_token().unwrap(), "t0");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn default_dir_follows_xdg_then_home() {
        let some = |s: &str| Some(std::ffi::OsString::from(s));
        let dir = |x, h, l| default_dir_from(x, h, l).ok();
        assert_eq!(
            dir(some("/xdg"), some("/home/u"), None),
            Some(PathBuf::from("/xdg/en-core-auth"))
        );
        // A relative or empty XDG_CACHE_HOME is ignored, as the XDG specification says.
        for xdg in [some("relative/cache"), some(""), None] {
            assert_eq!(
                dir(xdg, some("/home/u"), None),
                Some(PathBuf::from("/home/u/.cache/en-core-auth"))
            );
        }
        assert_eq!(
            dir(None, None, some("/local")),
            Some(PathBuf::from("/local/en-core-auth"))
        );
        let err = default_dir_from(None, some(""), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }

    // Issue 22 (cargo mutants on this file): the tests below each kill a mutant that the
    // unit tests above let through.

    #[test]
    fn a_file_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not() {
        let tmp = TempDir::new("size-limit");
        let store = FileStore::in_dir(tmp.cache(), key());
        // Real ID tokens run to several KiB: the limit leaves room for them.
        let big = full_token().with_id_token("i".repeat(16 * 1024));
        store.save(&big).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), big);
        // Trailing blanks keep the JSON valid, so only the size decides, and a reader that
        // stopped short of the limit would still see a whole document.
        let token = full_token();
        store.save(&token).unwrap();
        let good = fs::read(store.path()).unwrap();
        let padded = |len: u64| {
            let mut bytes = good.clone();
            bytes.resize(usize::try_from(len).unwrap(), b' ');
            bytes
        };
        fs::write(store.path(), padded(MAX_FILE_SIZE)).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), token);
        fs::write(store.path(), padded(MAX_FILE_SIZE + 1)).unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn clear_removes_the_file_twice_over_but_reports_what_it_cannot_remove() {
        let tmp = TempDir::new("clear");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.save(&full_token()).unwrap();
        store.clear().unwrap();
        assert!(!store.path().exists());
        assert!(store.load().unwrap().is_none());
        // Nothing to remove is not an error...
        store.clear().unwrap();
        // ...but something that cannot be removed is.
        fs::create_dir_all(store.path()).unwrap();
        assert_eq!(store.clear().unwrap_err().kind(), ErrorKind::Storage);
    }

    #[test]
    fn try_lock_takes_a_free_lock_and_does_not_wait_for_a_held_one() {
        let tmp = TempDir::new("try-lock");
        let store = FileStore::in_dir(tmp.cache(), key());
        let held = store.try_lock().unwrap().expect("a free lock is taken");
        assert!(store.try_lock().unwrap().is_none());
        drop(held);
        assert!(store.try_lock().unwrap().is_some());
    }

    #[test]
    fn a_waiting_lock_backs_off_instead_of_spinning() {
        let tmp = TempDir::new("lock-back-off");
        let store = FileStore::in_dir(tmp.cache(), key()).lock_timeout(Duration::from_millis(200));
        let _held = store.lock().unwrap();
        assert_eq!(store.lock().unwrap_err().kind(), ErrorKind::Storage);
        // Pauses of 2, 4, 8 ... 50 ms: about 9 looks in 200 ms (fewer on a loaded machine,
        // as sleeps only overrun), where a shrinking pause would look thousands of times.
        let looks = store.found_held.load(std::sync::atomic::Ordering::Acquire);
        assert!((1..=12).contains(&looks), "{looks} looks at a held lock");
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_can_write_or_a_read_only_one_is_refused_for_what_it_is() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("dir-modes");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.ensure_dir().unwrap();
        let with_mode = |mode: u32| {
            fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(mode)).unwrap();
            (
                store.check_dir(false).is_ok(),
                store.check_dir(true).is_ok(),
            )
        };
        assert_eq!(with_mode(0o700), (true, true));
        for others_write in [0o720, 0o702, 0o777] {
            assert_eq!(with_mode(others_write), (false, false), "{others_write:o}");
        }
        // Read-only: read, never written.
        assert_eq!(with_mode(0o500), (true, false));
        fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    /// Ownership can only be given away by root; the CI runs the tests as root.
    #[cfg(unix)]
    #[test]
    fn a_directory_or_file_of_another_user_is_refused_even_when_private() {
        use std::os::unix::fs::MetadataExt;
        let running_as_root = fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        let tmp = TempDir::new("foreign-owner");
        let store = FileStore::in_dir(tmp.cache(), key());
        store.save(&full_token()).unwrap();
        if !running_as_root {
            // The root directory belongs to root: another user's directory for us.
            let root = FileStore::in_dir("/", key());
            assert!(fs::metadata("/").unwrap().mode() & 0o022 == 0);
            let err = root.check_dir(false).unwrap_err();
            assert!(err.to_string().contains("owned by another user"), "{err}");
            return;
        }
        let nobody = Some(65534);
        // A private (0600) cache file of another user: not ours to trust.
        std::os::unix::fs::chown(store.path(), nobody, nobody).unwrap();
        assert!(store.load().unwrap().is_none());
        // A private (0700) directory of another user: not used at all.
        std::os::unix::fs::chown(tmp.cache(), nobody, nobody).unwrap();
        let err = store.check_dir(false).unwrap_err();
        assert!(err.to_string().contains("owned by another user"), "{err}");
    }
}
