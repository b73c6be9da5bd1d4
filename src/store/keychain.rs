//! [`KeyringStore`]: tokens in the operating system's keychain (macOS Keychain, Windows
//! Credential Manager, the Secret Service on Linux), through the `keyring` crate with each
//! platform's backend enabled explicitly.
//!
//! The entry is the one [`FileStore`] writes (the same JSON, the same salted secret
//! fingerprint). Entries larger than a keychain item may hold (Windows: 2,560 bytes) are
//! split over several items: the parts of one save carry that save's random id, and a
//! small main item naming the id and the parts' SHA-256 is written last, so a reader never
//! assembles halves of two saves. The cross-process lock is a file lock in a directory (a
//! directory, never a token, is on disk), as [`FileStore`]'s: processes renewing together
//! make one request.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::entry::Codec;
use super::{CacheKey, FileStore, StoreLock, TokenStore};
use crate::{Error, ErrorKind, Token};

/// The largest value written to one item. Windows keeps a credential's secret as UTF-16 in
/// at most 2,560 bytes (1,280 characters); entries are ASCII JSON.
const PART: usize = 1200;
/// Names the main item of a split entry, so that it is never mistaken for a token entry.
const PARTS_FORMAT: &str = "en-core-auth keyring parts";

/// The keychain items one store reads and writes, by name: the OS keychain, or a test's.
trait Backend: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<String>, Error>;
    fn set(&self, name: &str, value: &str) -> Result<(), Error>;
    /// Removes the item; one that is not there is not an error.
    fn delete(&self, name: &str) -> Result<(), Error>;
}

/// A token store in the OS keychain: macOS Keychain, Windows Credential Manager, or the
/// Secret Service on Linux and the BSDs (GNOME Keyring, KWallet, KeePassXC).
///
/// The entry is the one [`FileStore`] writes (the same JSON, the same salted fingerprint of
/// the client secret, never a secret). An entry larger than one item may hold is split over
/// several items, never truncated, and never assembled from two saves. [`lock`](TokenStore::lock)
/// is a file lock in a directory ([`with_lock_dir`](KeyringStore::with_lock_dir)), as
/// [`FileStore`]'s, so processes renewing together make one request; no token goes to a file.
///
/// ```no_run
/// use en_core_auth::store::{CredentialSet, KeyringStore};
///
/// let key = CredentialSet::new("oauth2 login", "https://idp.example.com").cache_key();
/// // Fails at once (ErrorKind::Storage) when no keychain answers: never a file instead.
/// let store = KeyringStore::new("my-cli", key)?;
/// # let _ = store;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct KeyringStore {
    backend: Box<dyn Backend>,
    /// The main item's name: the cache key (no secret in it).
    name: String,
    codec: Codec,
    /// Only its lock is used: no token goes to a file.
    lock: FileStore,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("item", &self.name)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// The store of `key`'s tokens in the OS keychain, under `service` (the application's
    /// name, shown by keychain tools). The keychain is asked at once: when none answers (no
    /// D-Bus session or Secret Service on Linux, a keychain that stays locked), this fails
    /// with [`ErrorKind::Storage`] saying what is missing. It never falls back to a file
    /// or to memory. The lock goes to [`FileStore::default_dir`] unless
    /// [`with_lock_dir`](KeyringStore::with_lock_dir) says otherwise.
    ///
    /// ```no_run
    /// use en_core_auth::store::{CredentialSet, KeyringStore, TokenStore};
    /// use en_core_auth::Token;
    /// let key = CredentialSet::new("client_credentials", "https://idp.example.com/token").cache_key();
    /// let store = KeyringStore::new("my-app", key)?;
    /// store.save(&Token::new("abc"))?;
    /// assert_eq!(store.load()?.unwrap().access_token(), "abc");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn new(service: &str, key: CacheKey) -> Result<KeyringStore, Error> {
        let backend = OsKeyring::new(service, key.as_hex())?;
        let lock_dir = FileStore::default_dir()?;
        Ok(KeyringStore::with_backend(Box::new(backend), key, lock_dir))
    }

    fn with_backend(backend: Box<dyn Backend>, key: CacheKey, lock_dir: PathBuf) -> KeyringStore {
        KeyringStore {
            backend,
            name: key.as_hex().to_owned(),
            codec: Codec {
                key: key.clone(),
                store_refresh_tokens: true,
            },
            lock: FileStore::in_dir(lock_dir, key),
        }
    }

    /// Where the cross-process lock file goes (default: the [`FileStore`] cache directory).
    ///
    /// ```no_run
    /// use en_core_auth::store::{CredentialSet, KeyringStore};
    /// let key = CredentialSet::new("k", "https://idp.example.com").cache_key();
    /// let store = KeyringStore::new("my-app", key)?.with_lock_dir("/run/user/1000/my-app");
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_lock_dir(mut self, dir: impl Into<PathBuf>) -> KeyringStore {
        self.lock = FileStore::in_dir(dir, self.codec.key.clone());
        self
    }

    /// Whether refresh tokens are kept (default: yes), as
    /// [`FileStore::store_refresh_tokens`].
    ///
    /// ```no_run
    /// use en_core_auth::store::{CredentialSet, KeyringStore};
    /// let key = CredentialSet::new("k", "https://idp.example.com").cache_key();
    /// let store = KeyringStore::new("my-app", key)?.store_refresh_tokens(false);
    /// # let _ = store;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn store_refresh_tokens(mut self, store: bool) -> KeyringStore {
        self.codec.store_refresh_tokens = store;
        self
    }

    fn part_name(&self, save: &str, index: usize) -> String {
        format!("{}.{save}.{index}", self.name)
    }

    /// The parts a main item names, if it is a split entry's.
    fn parts_of(value: &str) -> Option<Parts> {
        serde_json::from_str::<Parts>(value)
            .ok()
            .filter(|parts| parts.format == PARTS_FORMAT)
    }

    /// The whole entry the main item stands for; `None` when a part is missing or does not
    /// add up (a save in progress by another process, or items deleted by hand).
    fn assemble(&self, main: String) -> Result<Option<String>, Error> {
        let Some(parts) = KeyringStore::parts_of(&main) else {
            return Ok(Some(main));
        };
        let mut whole = String::new();
        for index in 0..parts.count {
            match self.backend.get(&self.part_name(&parts.save, index))? {
                Some(part) => whole.push_str(&part),
                None => return Ok(None),
            }
        }
        Ok((hex(&Sha256::digest(whole.as_bytes())) == parts.sha256).then_some(whole))
    }

    /// Deletes the parts `main` names, if any: after a new save replaced it, or a clear.
    fn delete_parts(&self, main: Option<&str>) {
        let Some(parts) = main.and_then(KeyringStore::parts_of) else {
            return;
        };
        for index in 0..parts.count {
            if let Err(error) = self.backend.delete(&self.part_name(&parts.save, index)) {
                log::debug!("a keyring item of an older save was left behind: {error}");
            }
        }
    }
}

/// The main item of an entry split over several items.
#[derive(Serialize, Deserialize)]
struct Parts {
    format: String,
    /// The random id of the save the parts belong to.
    save: String,
    count: usize,
    /// Of the assembled entry.
    sha256: String,
}

impl TokenStore for KeyringStore {
    fn load(&self) -> Result<Option<Token>, Error> {
        let Some(main) = self.backend.get(&self.name)? else {
            return Ok(None);
        };
        let token = self
            .assemble(main)?
            .and_then(|entry| self.codec.decode(entry.as_bytes()));
        if token.is_none() {
            log::debug!("the keyring item is not a token of this client: ignored");
        }
        Ok(token)
    }

    fn save(&self, token: &Token) -> Result<(), Error> {
        let entry = String::from_utf8(self.codec.encode(token)?)
            .map_err(|_| Error::other("a token entry is not UTF-8"))?;
        let old = self.backend.get(&self.name).unwrap_or(None);
        if entry.len() <= PART {
            self.backend.set(&self.name, &entry)?;
        } else {
            let mut id = [0u8; 8];
            getrandom::fill(&mut id)
                .map_err(|error| Error::new(ErrorKind::Storage, error.to_string()))?;
            let save = hex(&id);
            // ASCII JSON: every byte boundary is a character boundary.
            let pieces: Vec<&str> = entry
                .as_bytes()
                .chunks(PART)
                .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
                .collect();
            for (index, piece) in pieces.iter().enumerate() {
                self.backend.set(&self.part_name(&save, index), piece)?;
            }
            let parts = Parts {
                format: PARTS_FORMAT.to_owned(),
                save,
                count: pieces.len(),
                sha256: hex(&Sha256::digest(entry.as_bytes())),
            };
            let main = serde_json::to_string(&parts).map_err(Error::other)?;
            self.backend.set(&self.name, &main)?;
        }
        self.delete_parts(old.as_deref());
        Ok(())
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        self.lock.lock()
    }

    fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
        self.lock.try_lock()
    }

    fn clear(&self) -> Result<(), Error> {
        let old = self.backend.get(&self.name).unwrap_or(None);
        self.backend.delete(&self.name)?;
        self.delete_parts(old.as_deref());
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The OS keychain through the `keyring` crate.
struct OsKeyring {
    service: String,
}

impl OsKeyring {
    /// The keychain of this platform, asked once for `probe` so that a missing one is
    /// reported now, before anything is logged in for a store that cannot keep it.
    fn new(service: &str, probe: &str) -> Result<OsKeyring, Error> {
        let keyring = OsKeyring {
            service: service.to_owned(),
        };
        let entry = keyring.entry(probe)?;
        // keyring 3 built without a platform backend keeps credentials in memory only.
        if entry.get_credential().is::<keyring::mock::MockCredential>() {
            return Err(Error::new(
                ErrorKind::Storage,
                "this build has no OS keyring backend (only the keyring crate's in-memory \
                 mock): rebuild for a supported platform, or use file storage",
            ));
        }
        match entry.get_password() {
            // The keychain answered (an item that is not ours is the store's to skip).
            Ok(_)
            | Err(
                keyring::Error::NoEntry
                | keyring::Error::BadEncoding(_)
                | keyring::Error::Ambiguous(_),
            ) => Ok(keyring),
            Err(error) => Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "{}; or accept a plain file: --token-storage file",
                    describe(&error)
                ),
            )),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, Error> {
        keyring::Entry::new(&self.service, name).map_err(|error| storage(&error))
    }
}

impl Backend for OsKeyring {
    fn get(&self, name: &str) -> Result<Option<String>, Error> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            // Not ours (another program's binary item): skipped like a corrupt file.
            Err(keyring::Error::BadEncoding(_)) => {
                log::debug!("a keyring item that is not text: ignored");
                Ok(None)
            }
            // Another program's item beside ours under the same name: neither is read,
            // and the next save replaces both.
            Err(keyring::Error::Ambiguous(items)) => {
                log::debug!(
                    "{} keyring items match one entry: ignored, the next save replaces them",
                    items.len()
                );
                Ok(None)
            }
            Err(error) => Err(storage(&error)),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), Error> {
        let entry = self.entry(name)?;
        match entry.set_password(value) {
            // Which of two items to write is anyone's guess: write one in their place.
            Err(keyring::Error::Ambiguous(_)) => {
                delete_all(&entry).and_then(|()| entry.set_password(value))
            }
            done => done,
        }
        .map_err(|error| storage(&error))
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        let entry = self.entry(name)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(keyring::Error::Ambiguous(_)) => {
                delete_all(&entry).map_err(|error| storage(&error))
            }
            Err(error) => Err(storage(&error)),
        }
    }
}

/// Deletes every item `entry` matches. Only the Secret Service finds several items for one
/// entry (it searches by attributes, and another program may add an item with one attribute
/// more); the keyring crate deletes one item only when one matches.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn delete_all(entry: &keyring::Entry) -> Result<(), keyring::Error> {
    let Some(credential) = entry
        .get_credential()
        .downcast_ref::<keyring::secret_service::SsCredential>()
    else {
        return entry.delete_credential();
    };
    credential.map_matching_items(
        |item| {
            item.delete()
                .map_err(|error| keyring::Error::PlatformFailure(Box::new(error)))
        },
        false,
    )?;
    Ok(())
}

/// Elsewhere one entry is one item: there is nothing more to delete.
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
fn delete_all(entry: &keyring::Entry) -> Result<(), keyring::Error> {
    entry.delete_credential()
}

fn storage(error: &keyring::Error) -> Error {
    Error::new(ErrorKind::Storage, describe(error))
}

/// What went wrong, with what is missing where that is the likely cause. A keyring error
/// names items and attributes, never a stored value (`Ambiguous` lists credentials: not
/// shown).
fn describe(error: &keyring::Error) -> String {
    let detail = match error {
        keyring::Error::Ambiguous(items) => {
            format!("{} keyring items match one entry", items.len())
        }
        other => other.to_string(),
    };
    let hint = if cfg!(target_os = "macos") || cfg!(windows) {
        "the OS keychain could not be used"
    } else {
        "no Secret Service answered on the D-Bus session bus (start one: gnome-keyring, \
         KWallet or KeePassXC, with DBUS_SESSION_BUS_ADDRESS set, and unlock it)"
    };
    format!("{hint}: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A keychain that refuses values over 2,560 bytes, as Windows does.
    #[derive(Clone, Default)]
    struct Small(Arc<Mutex<BTreeMap<String, String>>>);

    impl Backend for Small {
        fn get(&self, name: &str) -> Result<Option<String>, Error> {
            Ok(self.0.lock().get(name).cloned())
        }
        fn set(&self, name: &str, value: &str) -> Result<(), Error> {
            if value.len() > 2560 {
                return Err(Error::new(ErrorKind::Storage, "value too long"));
            }
            self.0.lock().insert(name.to_owned(), value.to_owned());
            Ok(())
        }
        fn delete(&self, name: &str) -> Result<(), Error> {
            self.0.lock().remove(name);
            Ok(())
        }
    }

    fn store(backend: &Small) -> KeyringStore {
        let key = crate::store::CredentialSet::new("test", "https://idp.example").cache_key();
        KeyringStore::with_backend(Box::new(backend.clone()), key, std::env::temp_dir())
    }

    fn big_token(fill: char) -> Token {
        Token::new(fill.to_string().repeat(3 * 1024))
            .with_id_token(fill.to_string().repeat(3 * 1024))
            .with_refresh_token("r")
    }

    #[test]
    fn a_6_kib_entry_round_trips_through_a_backend_refusing_values_over_2560_bytes() {
        let backend = Small::default();
        let store = store(&backend);
        let token = big_token('a');
        store.save(&token).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.access_token(), token.access_token());
        assert_eq!(loaded.id_token(), token.id_token());
        assert!(backend.0.lock().len() > 2, "not split");

        // A second save replaces the first and leaves no part of it behind.
        store.save(&big_token('b')).unwrap();
        assert_eq!(
            store.load().unwrap().unwrap().access_token(),
            big_token('b').access_token()
        );
        let items = backend.0.lock().len();
        store.save(&Token::new("small")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().access_token(), "small");
        assert!(backend.0.lock().len() < items);
        assert_eq!(backend.0.lock().len(), 1);
        store.clear().unwrap();
        assert!(backend.0.lock().is_empty());
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn halves_of_two_saves_are_never_assembled() {
        let backend = Small::default();
        let store = store(&backend);
        store.save(&big_token('a')).unwrap();
        let first_main = backend.0.lock().get(&store.name).cloned().unwrap();
        store.save(&big_token('b')).unwrap();
        // A reader that saw the first save's main item after the second save's parts were
        // written (and the first's deleted) finds a part missing: nothing, not a mix.
        backend
            .0
            .lock()
            .insert(store.name.clone(), first_main.clone());
        assert!(store.load().unwrap().is_none());
        // A part of the right save but the wrong content (written by hand): refused.
        let parts = KeyringStore::parts_of(&first_main).unwrap();
        for index in 0..parts.count {
            backend
                .0
                .lock()
                .insert(store.part_name(&parts.save, index), "x".repeat(PART));
        }
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn a_foreign_item_is_no_token() {
        let backend = Small::default();
        let store = store(&backend);
        backend
            .0
            .lock()
            .insert(store.name.clone(), "hunter2".to_owned());
        assert!(store.load().unwrap().is_none());
        backend.0.lock().insert(
            store.name.clone(),
            r#"{"format":"en-core-auth keyring parts"}"#.to_owned(),
        );
        assert!(store.load().unwrap().is_none());
    }
}
