//! A remembered device (Cognito device tracking): its key, its group key and the random
//! device password whose SRP verifier the pool keeps.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;

use super::math;
use crate::{Error, ErrorKind};

/// A device Cognito remembers for a user, so that a later login proves the device
/// (`DEVICE_SRP_AUTH`) instead of answering MFA.
///
/// After a login with [`remember_device(true)`](super::SrpAuthorizer::remember_device),
/// [`SrpAuthorizer::device`](super::SrpAuthorizer::device) returns it; keep it as you keep a
/// refresh token (the device password is a secret: `Debug` never shows it) and hand it back
/// with [`with_device`](super::SrpAuthorizer::with_device).
///
/// ```
/// use en_core_auth::srp::Device;
///
/// let device = Device::new("us-east-1_6f1c…", "-Xy12abc", "device-password");
/// assert_eq!(device.device_key(), "us-east-1_6f1c…");
/// assert!(!format!("{device:?}").contains("device-password"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Device {
    key: String,
    group_key: String,
    password: String,
}

impl Device {
    /// A device confirmed before: its `DeviceKey`, its `DeviceGroupKey` and the device
    /// password its verifier was made from.
    ///
    /// ```
    /// let device = en_core_auth::srp::Device::new("key", "group", "password");
    /// assert_eq!(device.device_group_key(), "group");
    /// ```
    pub fn new(
        device_key: impl Into<String>,
        device_group_key: impl Into<String>,
        device_password: impl Into<String>,
    ) -> Device {
        Device {
            key: device_key.into(),
            group_key: device_group_key.into(),
            password: device_password.into(),
        }
    }

    /// Cognito's `DeviceKey` (`<region>_<uuid>`).
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::Device::new("k", "g", "p").device_key(), "k");
    /// ```
    pub fn device_key(&self) -> &str {
        &self.key
    }

    /// Cognito's `DeviceGroupKey`: the device's "pool name" in its SRP proof.
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::Device::new("k", "g", "p").device_group_key(), "g");
    /// ```
    pub fn device_group_key(&self) -> &str {
        &self.group_key
    }

    /// The device password (a secret, 40 random bytes in base64 when this crate made it).
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::Device::new("k", "g", "p").device_password(), "p");
    /// ```
    pub fn device_password(&self) -> &str {
        &self.password
    }

    /// A new device for Cognito's `NewDeviceMetadata`, with a random password, and the
    /// `DeviceSecretVerifierConfig` (`PasswordVerifier`, `Salt`, base64 of their
    /// `pad_hex` bytes) that `ConfirmDevice` registers.
    pub(crate) fn generate(
        device_key: &str,
        device_group_key: &str,
    ) -> Result<(Device, String, String), Error> {
        let mut password = [0u8; 40];
        let mut salt = [0u8; 16];
        for bytes in [&mut password[..], &mut salt[..]] {
            getrandom::fill(bytes).map_err(|err| {
                Error::new(
                    ErrorKind::Other,
                    format!("the operating system's random generator failed: {err}"),
                )
            })?;
        }
        let device = Device::new(device_key, device_group_key, STANDARD.encode(password));
        let salt = BigUint::from_bytes_be(&salt);
        // The device is the "user" and its group the "pool" of the same SRP math.
        let verifier = math::verifier(&salt, device_group_key, device_key, &device.password);
        Ok((
            device,
            STANDARD.encode(math::pad_hex(&verifier)),
            STANDARD.encode(math::pad_hex(&salt)),
        ))
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("device_key", &self.key)
            .field("device_group_key", &self.group_key)
            .field("device_password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_device_has_a_verifier_of_its_own_password() {
        let (device, verifier, salt) = Device::generate("us-east-1_k", "-g").unwrap();
        let decode = |b64: &str| BigUint::from_bytes_be(&STANDARD.decode(b64).unwrap());
        assert_eq!(
            decode(&verifier),
            math::verifier(
                &decode(&salt),
                "-g",
                "us-east-1_k",
                device.device_password()
            )
        );
        let (other, ..) = Device::generate("us-east-1_k", "-g").unwrap();
        assert_ne!(device.device_password(), other.device_password());
        assert!(!format!("{device:?}").contains(device.device_password()));
    }
}
