//! RFC 6238 time-based one-time passwords, as authenticator apps compute them.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The RFC 6238 TOTP code for `secret` at `time`: HMAC-SHA-1, 30-second steps, 6 digits
/// (what Cognito's `SOFTWARE_TOKEN_MFA` and authenticator apps use). `secret` is the raw key,
/// not its base32 form.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use en_core_auth::testing::totp_code;
///
/// // RFC 6238, appendix B (its 8-digit 94287082, cut to 6 digits).
/// let at = UNIX_EPOCH + Duration::from_secs(59);
/// assert_eq!(totp_code(b"12345678901234567890", at), "287082");
/// let now = totp_code(b"12345678901234567890", SystemTime::now());
/// assert_eq!(now.len(), 6);
/// ```
pub fn totp_code(secret: &[u8], time: SystemTime) -> String {
    let step = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 30)
        .unwrap_or(0);
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this arm is unreachable in practice.
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let word = [
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ];
    format!("{:06}", u32::from_be_bytes(word) % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (secs, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                totp_code(secret, UNIX_EPOCH + Duration::from_secs(secs)),
                code
            );
        }
    }
}
