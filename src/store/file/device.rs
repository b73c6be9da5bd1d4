//! A Cognito remembered device kept beside the token: `<key>.device.json` in the
//! cache directory, written like the token file (0600, a new temporary file renamed over),
//! because its device password is as sensitive as a refresh token.

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{FileStore, safe_open, storage, trusted};
use crate::srp::Device;
use crate::{Error, ErrorKind};

const FORMAT: &str = "en-core-auth cognito device";
/// A device file is a few hundred bytes; anything much larger is not one.
const MAX_DEVICE_FILE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct StoredDevice {
    format: String,
    version: u32,
    device_key: String,
    device_group_key: String,
    device_password: String,
}

impl FileStore {
    /// The file the remembered device is kept in: `<dir>/<key>.device.json`.
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let key = CacheKey::new("e", "c", Some("alice"), Vec::<String>::new());
    /// let store = FileStore::in_dir("/tmp/c", key.clone());
    /// assert!(store.device_path().ends_with(format!("{}.device.json", key.as_hex())));
    /// ```
    pub fn device_path(&self) -> PathBuf {
        self.dir.join(format!("{}.device.json", self.key.as_hex()))
    }

    /// The Cognito device saved by [`save_device`](Self::save_device), if any. With
    /// [`store_refresh_tokens(false)`](Self::store_refresh_tokens) none is read: the device
    /// password skips MFA as a refresh token skips the password.
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let dir = std::env::temp_dir().join(format!("device-doc-{}", std::process::id()));
    /// let store = FileStore::in_dir(&dir, CacheKey::new("e", "c", Some("u"), Vec::<String>::new()));
    /// assert_eq!(store.load_device()?, None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn load_device(&self) -> Result<Option<Device>, Error> {
        if !self.store_refresh_tokens {
            return Ok(None);
        }
        let path = self.device_path();
        // The same rules as the token file: no link followed, no FIFO waited on, only a
        // private regular file of ours is trusted, and its size is capped.
        let file = match safe_open(fs::OpenOptions::new().read(true), &path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(storage("could not read the device file", &path, error)),
        };
        if let Err(why) = trusted(&file) {
            log::debug!("ignoring the device file {}: {why}", path.display());
            return Ok(None);
        }
        let mut bytes = Vec::new();
        file.take(MAX_DEVICE_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| storage("could not read the device file", &path, error))?;
        if bytes.len() as u64 > MAX_DEVICE_FILE {
            log::debug!("ignoring {}: larger than a device file", path.display());
            return Ok(None);
        }
        match serde_json::from_slice::<StoredDevice>(&bytes) {
            Ok(stored) if stored.format == FORMAT && stored.version == 1 => Ok(Some(Device::new(
                stored.device_key,
                stored.device_group_key,
                stored.device_password,
            ))),
            _ => {
                log::debug!(
                    "ignoring {}: not a device file this version reads",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    /// Keeps `device` beside the token, mode 0600, replacing any saved before. Does nothing
    /// with [`store_refresh_tokens(false)`](Self::store_refresh_tokens).
    ///
    /// ```
    /// use en_core_auth::srp::Device;
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let dir = std::env::temp_dir().join(format!("device-doc-save-{}", std::process::id()));
    /// let store = FileStore::in_dir(&dir, CacheKey::new("e", "c", Some("u"), Vec::<String>::new()));
    /// let device = Device::new("us-east-1_k", "-g", "secret");
    /// store.save_device(&device)?;
    /// assert_eq!(store.load_device()?, Some(device));
    /// store.clear_device()?;
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn save_device(&self, device: &Device) -> Result<(), Error> {
        if !self.store_refresh_tokens {
            return Ok(());
        }
        let stored = StoredDevice {
            format: FORMAT.to_owned(),
            version: 1,
            device_key: device.device_key().to_owned(),
            device_group_key: device.device_group_key().to_owned(),
            device_password: device.device_password().to_owned(),
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|error| Error::new(ErrorKind::Storage, error.to_string()))?;
        self.ensure_dir()?;
        let (temp_path, mut file) = self.create_temp()?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|error| storage("could not write the device file", &temp_path, error));
        drop(file);
        let target = self.device_path();
        let renamed = written.and_then(|()| {
            fs::rename(&temp_path, &target)
                .map_err(|error| storage("could not replace the device file", &target, error))
        });
        if renamed.is_err() {
            let _ = fs::remove_file(&temp_path);
        }
        renamed
    }

    /// Forgets the saved device (Cognito no longer knows it, or the user logs out).
    ///
    /// ```
    /// use en_core_auth::store::{CacheKey, FileStore};
    /// let store = FileStore::in_dir("/nonexistent-dir", CacheKey::new("e", "c", None, ["s"]));
    /// store.clear_device()?; // nothing to remove is fine
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn clear_device(&self) -> Result<(), Error> {
        let path = self.device_path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(storage("could not remove the device file", &path, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CacheKey;

    fn store(name: &str) -> (PathBuf, FileStore) {
        let dir =
            std::env::temp_dir().join(format!("en-core-auth-device-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let key = CacheKey::new("cognito", "c", Some("alice"), Vec::<String>::new());
        (dir.clone(), FileStore::in_dir(dir, key))
    }

    #[test]
    fn a_device_round_trips_in_a_private_file() {
        let (dir, store) = store("round-trip");
        let device = Device::new("us-east-1_k", "-g", "device-secret");
        store.save_device(&device).unwrap();
        assert_eq!(store.load_device().unwrap(), Some(device));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.device_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never next to the token's own fields.
        assert!(!store.path().exists());
        store.clear_device().unwrap();
        assert_eq!(store.load_device().unwrap(), None);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn no_device_is_kept_without_refresh_tokens_and_garbage_is_ignored() {
        let (dir, store) = store("policy");
        let store = store.store_refresh_tokens(false);
        store.save_device(&Device::new("k", "g", "p")).unwrap();
        assert!(!store.device_path().exists());
        let store = store.store_refresh_tokens(true);
        fs::create_dir_all(&dir).unwrap();
        fs::write(store.device_path(), b"{not json").unwrap();
        assert_eq!(store.load_device().unwrap(), None);
        let _ = fs::remove_dir_all(dir);
    }
}
