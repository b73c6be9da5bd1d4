//! The stored form of a token, shared by the file and Redis stores: JSON with a format
//! name and version, so that another program's data is never mistaken for ours, and a
//! salted fingerprint of the client secret the token was obtained with.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::CacheKey;
use crate::{Error, ErrorKind, Token};

/// Names the format, so that a JSON value of another program is not mistaken for ours.
const FORMAT: &str = "en-core-auth token cache";
/// Bumped when the format changes incompatibly; an entry of another version is ignored.
const VERSION: u32 = 1;

/// How a store turns tokens into bytes and back.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) key: CacheKey,
    pub(crate) store_refresh_tokens: bool,
}

impl Codec {
    /// The token in `bytes`, or `None` for anything that is not an entry of this format
    /// and version, or was stored with another client secret than the key's.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Option<Token> {
        let stored: Stored = serde_json::from_slice(bytes).ok()?;
        if stored.format != FORMAT || stored.version != VERSION || stored.access_token.is_empty() {
            return None;
        }
        let same_secret = match (self.key.secret(), &stored.client_secret) {
            (None, None) => true,
            (Some(secret), Some(fingerprint)) => secret.matches(fingerprint),
            _ => false,
        };
        if !same_secret {
            log::debug!("ignoring a stored token obtained with another client secret");
            return None;
        }
        let mut token = Token::new(stored.access_token).with_token_type(stored.token_type);
        if let Some(id_token) = stored.id_token {
            token = token.with_id_token(id_token);
        }
        if let Some(refresh_token) = stored.refresh_token.filter(|_| self.store_refresh_tokens) {
            token = token.with_refresh_token(refresh_token);
            if let Some(at) = stored.refresh_expires_at {
                token = token.with_refresh_expires_at(UNIX_EPOCH.checked_add(at.to_duration()?));
            }
        }
        if stored.refresh_spent {
            token = token.with_refresh_spent();
        }
        if let Some(scope) = stored.scope {
            token = token.with_scope(scope);
        }
        if let Some(expires_at) = stored.expires_at {
            let at = UNIX_EPOCH.checked_add(expires_at.to_duration()?)?;
            let lifetime = match stored.lifetime {
                Some(lifetime) => Some(lifetime.to_duration()?),
                None => None,
            };
            token = token.with_expires_at(at).with_lifetime(lifetime);
        }
        Some(token)
    }

    pub(crate) fn encode(&self, token: &Token) -> Result<Vec<u8>, Error> {
        let stored = Stored {
            format: FORMAT.to_owned(),
            version: VERSION,
            access_token: token.access_token().to_owned(),
            token_type: token.token_type().to_owned(),
            id_token: token.id_token().map(str::to_owned),
            refresh_token: token
                .refresh_token()
                .filter(|_| self.store_refresh_tokens)
                .map(str::to_owned),
            refresh_expires_at: token
                .refresh_expires_at()
                .filter(|_| self.store_refresh_tokens)
                .map(|at| Seconds::from(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))),
            refresh_spent: token.refresh_spent(),
            scope: token.scope().map(str::to_owned),
            // A time before 1970 cannot come from an identity provider: stored as expired.
            expires_at: token
                .expires_at()
                .map(|at| Seconds::from(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))),
            lifetime: token.lifetime().map(Seconds::from),
            client_secret: self.key.secret().map(|secret| secret.fingerprint()),
        };
        serde_json::to_vec_pretty(&stored).map_err(|error| {
            Error::new(
                ErrorKind::Storage,
                format!("could not encode the token for the cache: {error}"),
            )
        })
    }
}

/// The entry. Unknown fields are ignored, so that a later minor version can add some; an
/// incompatible change bumps `version`.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    version: u32,
    access_token: String,
    token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Unix time the refresh token expires, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_expires_at: Option<Seconds>,
    /// The entry's refresh token was sent and may be used up: no process sends it again
    /// (it is not stored). Older readers ignore the field and see no refresh token, which
    /// is just as safe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refresh_spent: bool,
    /// The scope the identity provider granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// Unix time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifetime: Option<Seconds>,
    /// A salted hash of the client secret the token was obtained with (never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// A duration as whole seconds and nanoseconds, exact and readable.
#[derive(Serialize, Deserialize)]
struct Seconds {
    secs: u64,
    nanos: u32,
}

impl Seconds {
    /// `None` for nanoseconds out of range: a foreign entry, not a panic in `Duration::new`.
    fn to_duration(&self) -> Option<Duration> {
        (self.nanos < 1_000_000_000).then(|| Duration::new(self.secs, self.nanos))
    }
}

impl From<Duration> for Seconds {
    fn from(duration: Duration) -> Seconds {
        Seconds {
            secs: duration.as_secs(),
            nanos: duration.subsec_nanos(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_secret_does_not_get_the_old_token() {
        let old = Codec {
            key: CacheKey::new("e", "c", None, ["s"]).with_client_secret("old"),
            store_refresh_tokens: true,
        };
        let new = Codec {
            key: CacheKey::new("e", "c", None, ["s"]).with_client_secret("new"),
            store_refresh_tokens: true,
        };
        let public = Codec {
            key: CacheKey::new("e", "c", None, ["s"]),
            store_refresh_tokens: true,
        };
        let bytes = old.encode(&Token::new("t")).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("old"));
        assert_eq!(old.decode(&bytes).unwrap().access_token(), "t");
        assert!(new.decode(&bytes).is_none());
        assert!(public.decode(&bytes).is_none());
        assert!(
            old.decode(&public.encode(&Token::new("t")).unwrap())
                .is_none()
        );
    }

    #[test]
    fn nanoseconds_out_of_range_make_a_foreign_entry() {
        let codec = Codec {
            key: CacheKey::new("e", "c", None, ["s"]),
            store_refresh_tokens: true,
        };
        let entry = |nanos: u32| {
            format!(
                r#"{{"format":"{FORMAT}","version":{VERSION},"access_token":"t","token_type":"Bearer","expires_at":{{"secs":1,"nanos":{nanos}}}}}"#
            )
        };
        assert!(codec.decode(entry(999_999_999).as_bytes()).is_some());
        assert!(codec.decode(entry(1_000_000_000).as_bytes()).is_none());
    }
}
