//! The file cache in hostile or unhelpful places: directories other users can write,
//! links and FIFOs planted where the cache or lock file should be, files of another user,
//! a read-only directory, temporary files of killed processes, and a lock wait that runs
//! out while a valid token is stored. Each case means "no cache" (or "use what is
//! stored"), never "no token" and never a hang.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use en_core_auth::store::{CacheKey, FileStore, StoreLock, TokenStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "en-core-auth-hostile-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::set_permissions(self.cache(), fs::Permissions::from_mode(0o700));
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn key() -> CacheKey {
    CacheKey::new("https://idp.test/token", "client", None, ["api"])
}

fn hour_token(name: &str) -> Token {
    Token::new(name).with_expires_in(Duration::from_secs(3600))
}

/// Hands out `fresh-N` tokens and counts them.
struct Counting(ClientInfo, Arc<AtomicU64>);

impl Authorizer for Counting {
    fn client_info(&self) -> &ClientInfo {
        &self.0
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        let n = self.1.fetch_add(1, Ordering::Relaxed);
        Ok(hour_token(&format!("fresh-{n}")))
    }
}

/// A middleware on `store`, and its authorizer's call counter.
fn middleware(store: impl TokenStore + 'static) -> (AuthMiddleware, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let auth = AuthMiddleware::builder(Counting(ClientInfo::new("client", ""), calls.clone()))
        .token_store(store)
        .build();
    (auth, calls)
}

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_directory_other_users_can_write_is_not_used() {
    let tmp = TempDir::new("world-writable");
    let store = FileStore::in_dir(tmp.cache(), key());
    store.save(&hour_token("planted")).unwrap();
    fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o777)).unwrap();
    // What is there could have been put there by anyone: not read, not written.
    assert!(store.load().unwrap().is_none());
    assert_eq!(
        store.save(&hour_token("x")).unwrap_err().kind(),
        ErrorKind::Storage
    );
    let (auth, calls) = middleware(store);
    assert_eq!(auth.access_token().unwrap(), "fresh-0");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn a_link_in_place_of_the_cache_file_is_not_followed() {
    let tmp = TempDir::new("symlink");
    let elsewhere = FileStore::in_dir(tmp.0.join("elsewhere"), key());
    elsewhere.save(&hour_token("elsewhere")).unwrap();
    let store = FileStore::in_dir(tmp.cache(), key());
    fs::create_dir_all(tmp.cache()).unwrap();
    fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), store.path()).unwrap();
    assert!(store.load().unwrap().is_none());
    // The next save replaces the link itself, not the file it points to.
    store.save(&hour_token("mine")).unwrap();
    assert!(!fs::symlink_metadata(store.path()).unwrap().is_symlink());
    assert_eq!(
        elsewhere.load().unwrap().unwrap().access_token(),
        "elsewhere"
    );
    assert_eq!(store.load().unwrap().unwrap().access_token(), "mine");
}

#[test]
fn a_fifo_in_place_of_the_cache_or_lock_file_does_not_hang() {
    let tmp = TempDir::new("fifo");
    let store = FileStore::in_dir(tmp.cache(), key());
    drop(store.lock().unwrap());
    fs::remove_file(tmp.cache().join(format!("{}.lock", key().as_hex()))).unwrap();
    mkfifo(&store.path());
    mkfifo(&tmp.cache().join(format!("{}.lock", key().as_hex())));
    // A plain open of a FIFO with no writer blocks forever; these return.
    assert!(store.load().unwrap().is_none());
    let (auth, calls) = middleware(store);
    assert_eq!(auth.access_token().unwrap(), "fresh-0");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn a_lock_file_of_another_user_means_no_cache_not_no_token() {
    let tmp = TempDir::new("foreign-lock");
    let store = FileStore::in_dir(tmp.cache(), key());
    drop(store.lock().unwrap());
    let lock = tmp.cache().join(format!("{}.lock", key().as_hex()));
    // After a `sudo` run: the lock file belongs to root (or here, to `nobody` when the test
    // runs as root) and is readable by others.
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    let running_as_root = fs::metadata("/proc/self").is_ok_and(|meta| {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == 0
    });
    if running_as_root {
        std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).unwrap();
    }
    let (auth, calls) = middleware(FileStore::in_dir(tmp.cache(), key()));
    assert_eq!(auth.access_token().unwrap(), "fresh-0");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn a_cache_file_of_another_user_or_readable_by_others_is_ignored() {
    let tmp = TempDir::new("foreign-file");
    let store = FileStore::in_dir(tmp.cache(), key());
    store.save(&hour_token("stored")).unwrap();
    assert!(store.load().unwrap().is_some());
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(store.load().unwrap().is_none());
}

#[test]
fn a_read_only_directory_is_read_but_never_written() {
    let tmp = TempDir::new("read-only");
    let store = FileStore::in_dir(tmp.cache(), key());
    store.save(&hour_token("stored")).unwrap();
    fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o500)).unwrap();
    // A valid token there is used, without a lock and without the identity provider.
    let (auth, calls) = middleware(FileStore::in_dir(tmp.cache(), key()));
    assert_eq!(auth.access_token().unwrap(), "stored");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    // An expired one is renewed: no cache, but a token.
    fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o700)).unwrap();
    store
        .save(&Token::new("old").with_expires_in(Duration::ZERO))
        .unwrap();
    fs::set_permissions(tmp.cache(), fs::Permissions::from_mode(0o500)).unwrap();
    let (auth, calls) = middleware(FileStore::in_dir(tmp.cache(), key()));
    assert_eq!(auth.access_token().unwrap(), "fresh-0");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(
        store.save(&hour_token("x")).unwrap_err().kind(),
        ErrorKind::Storage
    );
    // Nothing was written.
    assert_eq!(store.load().unwrap().unwrap().access_token(), "old");
}

#[test]
fn stale_temporary_files_are_cleaned_and_fresh_ones_left_alone() {
    let tmp = TempDir::new("stale");
    let store = FileStore::in_dir(tmp.cache(), key());
    store.save(&hour_token("first")).unwrap();
    let stale = tmp
        .cache()
        .join(format!(".{}.4242.1.0.tmp", key().as_hex()));
    let fresh = tmp
        .cache()
        .join(format!(".{}.4243.1.0.tmp", key().as_hex()));
    let other_key = tmp
        .cache()
        .join(format!(".{}.4244.1.0.tmp", "0".repeat(64)));
    for path in [&stale, &fresh, &other_key] {
        fs::write(path, b"{\"format\": \"en-core-auth tok").unwrap();
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in [&stale, &other_key] {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    store.save(&hour_token("second")).unwrap();
    assert!(!stale.exists(), "a killed process's temporary file stays");
    // A save in progress elsewhere, and another key's files, are not touched.
    assert!(fresh.exists());
    assert!(other_key.exists());
}

/// A store whose lock wait always runs out, and in which a valid token shows up while
/// this process waits (another process's renewal finished, but it held the lock too long).
struct LockTimesOut {
    loads: AtomicU64,
}

impl TokenStore for LockTimesOut {
    fn load(&self) -> Result<Option<Token>, Error> {
        // The first read, before the lock, finds nothing.
        Ok((self.loads.fetch_add(1, Ordering::Relaxed) > 0).then(|| hour_token("theirs")))
    }
    fn save(&self, _: &Token) -> Result<(), Error> {
        Ok(())
    }
    fn lock(&self) -> Result<StoreLock, Error> {
        Err(Error::new(ErrorKind::Storage, "lock wait ran out"))
    }
}

#[test]
fn a_lock_timeout_with_a_valid_stored_token_uses_it() {
    let (auth, calls) = middleware(LockTimesOut {
        loads: AtomicU64::new(0),
    });
    assert_eq!(auth.access_token().unwrap(), "theirs");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[test]
fn a_real_lock_timeout_with_a_valid_stored_token_uses_it() {
    let tmp = TempDir::new("lock-timeout");
    let holder = FileStore::in_dir(tmp.cache(), key());
    let held = holder.lock().unwrap();
    // The holder renewed and stored, but still holds the lock; a new process that finds
    // the stored token uses it whether or not the lock is free.
    holder.save(&hour_token("renewed")).unwrap();
    let (auth, calls) =
        middleware(FileStore::in_dir(tmp.cache(), key()).lock_timeout(Duration::from_millis(20)));
    assert_eq!(auth.access_token().unwrap(), "renewed");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    drop(held);
}
