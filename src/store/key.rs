//! Which stored token belongs to which credential set: [`CredentialSet`] and [`CacheKey`].
//!
//! A key built by hand from a few fields misses the ones nobody thought of (an `audience`
//! parameter, a grant type, the refresh token a [`RefreshToken`](crate::oauth2::RefreshToken)
//! authorizer starts from), and then two APIs share one cached token. So each authorizer
//! describes its own credential set ([`Authorizer::credential_set`](crate::Authorizer::credential_set))
//! and the key is derived from that description.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::ClientInfo;

/// Everything that makes one credential set's tokens differ from another's: the grant
/// type, the endpoint, the client, the user, extra request parameters (`audience`,
/// `resource`), the scopes, and secret inputs such as a refresh token.
///
/// Built by [`Authorizer::credential_set`](crate::Authorizer::credential_set); turned into
/// a [`CacheKey`] with [`cache_key`](CredentialSet::cache_key). The client secret is not
/// part of the key (a rotated secret still names the same credential set), but a salted
/// fingerprint of it goes into every stored entry, so that a token obtained with an old
/// secret is not handed out once the secret changed.
///
/// ```
/// use en_core_auth::ClientInfo;
/// use en_core_auth::store::CredentialSet;
///
/// let client = ClientInfo::new("app", "secret");
/// let orders = CredentialSet::new("client_credentials", "https://idp.example.com/token")
///     .client(&client)
///     .param("audience", "https://orders.example.com");
/// let billing = CredentialSet::new("client_credentials", "https://idp.example.com/token")
///     .client(&client)
///     .param("audience", "https://billing.example.com");
/// assert_ne!(orders.cache_key(), billing.cache_key());
/// ```
#[derive(Clone, Default)]
pub struct CredentialSet {
    fields: Vec<(String, String)>,
    scopes: Vec<String>,
    secret: Option<SecretDigest>,
}

impl CredentialSet {
    /// A credential set of grant (or protocol) `kind` at `endpoint`: a token URL, an
    /// issuer, a Cognito user pool and its endpoint, whatever names the identity provider.
    ///
    /// ```
    /// let set = en_core_auth::store::CredentialSet::new("refresh_token", "https://idp.example.com/token");
    /// # let _ = set;
    /// ```
    pub fn new(kind: &str, endpoint: &str) -> CredentialSet {
        CredentialSet::default()
            .param("kind", kind)
            .param("endpoint", endpoint)
    }

    /// The client: its id goes into the key; its secret, if any, only into a fingerprint
    /// kept in memory and, salted, in stored entries.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, store::CredentialSet};
    /// let a = CredentialSet::new("k", "e").client(&ClientInfo::new("app", "old"));
    /// let b = CredentialSet::new("k", "e").client(&ClientInfo::new("app", "new"));
    /// assert_eq!(a.cache_key(), b.cache_key());
    /// ```
    pub fn client(mut self, client: &ClientInfo) -> CredentialSet {
        self.secret = (!client.client_secret().is_empty())
            .then(|| SecretDigest::of(client.client_secret().as_bytes()));
        self.param("client_id", client.client_id())
    }

    /// The user a token is issued to.
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let alice = CredentialSet::new("k", "e").user("alice");
    /// let bob = CredentialSet::new("k", "e").user("bob");
    /// assert_ne!(alice.cache_key(), bob.cache_key());
    /// ```
    pub fn user(self, username: &str) -> CredentialSet {
        self.param("user", username)
    }

    /// The profile (account) a token belongs to, so that two people, or a person's work
    /// and personal accounts, stay logged in side by side at one issuer and client.
    /// `"default"` (and an empty name) is the same key as no profile at all, so that logins
    /// made before profiles existed are found.
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let set = || CredentialSet::new("oauth2 login", "https://idp.example.com");
    /// assert_eq!(set().profile("default").cache_key(), set().cache_key());
    /// assert_ne!(set().profile("work").cache_key(), set().cache_key());
    /// assert_ne!(set().profile("work").cache_key(), set().profile("home").cache_key());
    /// ```
    pub fn profile(self, name: &str) -> CredentialSet {
        match name {
            "" | "default" => self,
            name => self.param("profile", name),
        }
    }

    /// A parameter that changes the token (`audience`, `resource`…). Parameters may repeat;
    /// their order does not matter.
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let a = CredentialSet::new("k", "e").param("resource", "r1").param("audience", "a");
    /// let b = CredentialSet::new("k", "e").param("audience", "a").param("resource", "r1");
    /// assert_eq!(a.cache_key(), b.cache_key());
    /// ```
    pub fn param(mut self, name: &str, value: &str) -> CredentialSet {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A secret input that changes the token, such as the refresh token an authorizer
    /// starts from. Only its SHA-256 goes into the key, so use this for high-entropy
    /// values only (tokens, not passwords: a hashed password in a key could be guessed
    /// offline).
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let a = CredentialSet::new("refresh_token", "e").private_value("refresh_token", "r1");
    /// let b = CredentialSet::new("refresh_token", "e").private_value("refresh_token", "r2");
    /// assert_ne!(a.cache_key(), b.cache_key());
    /// ```
    pub fn private_value(self, name: &str, value: &str) -> CredentialSet {
        let digest = hex(&Sha256::digest(value.as_bytes()));
        self.param(&format!("sha256({name})"), &digest)
    }

    /// The scopes asked for, in any order, duplicates and empty names ignored.
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let a = CredentialSet::new("k", "e").scopes(["read", "write"]);
    /// let b = CredentialSet::new("k", "e").scopes(["write", "read", "read"]);
    /// assert_eq!(a.cache_key(), b.cache_key());
    /// ```
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl AsRef<str>>) -> CredentialSet {
        self.scopes.extend(
            scopes
                .into_iter()
                .map(|scope| scope.as_ref().to_owned())
                .filter(|scope| !scope.is_empty()),
        );
        self
    }

    /// The key stored tokens of this credential set are found under.
    ///
    /// ```
    /// use en_core_auth::store::CredentialSet;
    /// let key = CredentialSet::new("k", "e").cache_key();
    /// assert_eq!(key.as_hex().len(), 64);
    /// ```
    pub fn cache_key(&self) -> CacheKey {
        let mut fields = self.fields.clone();
        fields.sort();
        let mut scopes = self.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"en-core-auth cache key v2");
        field(&(fields.len() as u64).to_be_bytes());
        for (name, value) in &fields {
            field(name.as_bytes());
            field(value.as_bytes());
        }
        field(&(scopes.len() as u64).to_be_bytes());
        for scope in &scopes {
            field(scope.as_bytes());
        }
        CacheKey {
            hex: hex(&hasher.finalize()),
            secret: self.secret.clone(),
        }
    }
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSet")
            .field("fields", &self.fields)
            .field("scopes", &self.scopes)
            .field("client_secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The SHA-256 of a client secret, kept in memory only: stores write a salted hash of it.
#[derive(Clone)]
pub(crate) struct SecretDigest(Arc<[u8; 32]>);

impl SecretDigest {
    fn of(secret: &[u8]) -> SecretDigest {
        let mut hasher = Sha256::new();
        hasher.update(b"en-core-auth client secret\0");
        hasher.update(secret);
        SecretDigest(Arc::new(hasher.finalize().into()))
    }

    /// `salt` and the salted hash, as stored: `v1:<salt hex>:<hash hex>`.
    pub(crate) fn fingerprint_with(&self, salt: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(self.0.as_slice());
        format!("v1:{}:{}", hex(salt), hex(&hasher.finalize()))
    }

    /// A fingerprint with a fresh random salt.
    pub(crate) fn fingerprint(&self) -> String {
        let mut salt = [0u8; 16];
        // Without randomness the salt is still unique per process and time; the
        // fingerprint only has to tell secrets apart, not resist a targeted search.
        if getrandom::fill(&mut salt).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or(0);
            salt = (nanos ^ u128::from(std::process::id())).to_be_bytes();
        }
        self.fingerprint_with(&salt)
    }

    /// Whether a stored fingerprint was made from this secret.
    pub(crate) fn matches(&self, stored: &str) -> bool {
        let mut parts = stored.split(':');
        let (Some("v1"), Some(salt), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        match unhex(salt) {
            Some(salt) => self.fingerprint_with(&salt) == stored,
            None => false,
        }
    }
}

/// The identity of a credential set, hashed: which cache file (or Redis key) its tokens
/// go to, plus, in memory only, the fingerprint material of its client secret.
///
/// Prefer [`Authorizer::credential_set`](crate::Authorizer::credential_set)`().cache_key()`,
/// which covers every parameter the authorizer sends. [`CacheKey::new`] builds one by hand
/// from endpoint, client id, user name and scopes (in any order, duplicates ignored); each
/// field is length-prefixed before hashing, so that `("ab", "c")` and `("a", "bc")` differ.
/// No secret goes into the key.
///
/// ```
/// use en_core_auth::store::CacheKey;
///
/// let a = CacheKey::new("https://idp.example.com/token", "client", None, ["read", "write"]);
/// let b = CacheKey::new("https://idp.example.com/token", "client", None, ["write", "read"]);
/// let c = CacheKey::new("https://idp.example.com/token", "client", Some("alice"), ["read", "write"]);
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// assert_eq!(a.as_hex().len(), 64);
/// ```
#[derive(Clone)]
pub struct CacheKey {
    hex: String,
    secret: Option<SecretDigest>,
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &CacheKey) -> bool {
        self.hex == other.hex
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hex.hash(state);
    }
}

impl CacheKey {
    /// The key of the credential set talking to `endpoint` (a token URL, an issuer, a
    /// Cognito user pool and its endpoint: whatever names the identity provider) as
    /// `client_id`, for `username` if a user logs in, asking for `scopes`.
    ///
    /// ```
    /// use en_core_auth::store::CacheKey;
    /// let key = CacheKey::new("eu-west-1_AbC", "app-client", Some("alice"), Vec::<String>::new());
    /// assert!(key.as_hex().chars().all(|c| c.is_ascii_hexdigit()));
    /// ```
    pub fn new(
        endpoint: &str,
        client_id: &str,
        username: Option<&str>,
        scopes: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> CacheKey {
        let mut scopes: Vec<String> = scopes
            .into_iter()
            .map(|scope| scope.as_ref().to_owned())
            .collect();
        scopes.sort();
        scopes.dedup();

        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"en-core-auth cache key v1");
        field(endpoint.as_bytes());
        field(client_id.as_bytes());
        match username {
            // Tagged so that no user and a user named "" differ.
            None => field(b"-"),
            Some(username) => {
                field(b"+");
                field(username.as_bytes());
            }
        }
        field(&(scopes.len() as u64).to_be_bytes());
        for scope in &scopes {
            field(scope.as_bytes());
        }
        CacheKey {
            hex: hex(&hasher.finalize()),
            secret: None,
        }
    }

    /// The same key, with the fingerprint material of `client_secret`: entries stored
    /// with another secret are then not used. [`CredentialSet::client`] does this.
    ///
    /// ```
    /// use en_core_auth::store::CacheKey;
    /// let key = CacheKey::new("e", "c", None, ["s"]).with_client_secret("s3cr3t");
    /// assert!(!format!("{key:?}").contains("s3cr3t"));
    /// ```
    pub fn with_client_secret(mut self, client_secret: &str) -> CacheKey {
        self.secret =
            (!client_secret.is_empty()).then(|| SecretDigest::of(client_secret.as_bytes()));
        self
    }

    /// The key as 64 lower-case hex digits: the cache file's name without `.json`.
    ///
    /// ```
    /// use en_core_auth::store::CacheKey;
    /// let key = CacheKey::new("https://idp.example.com/token", "client", None, ["api"]);
    /// assert_eq!(key.as_hex(), key.as_hex().to_lowercase());
    /// ```
    pub fn as_hex(&self) -> &str {
        &self.hex
    }

    pub(crate) fn secret(&self) -> Option<&SecretDigest> {
        self.secret.as_ref()
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CacheKey").field(&self.hex).finish()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_tells_secrets_apart_and_is_salted() {
        let key = CredentialSet::new("k", "e")
            .client(&ClientInfo::new("c", "old-secret"))
            .cache_key();
        let rotated = CredentialSet::new("k", "e")
            .client(&ClientInfo::new("c", "new-secret"))
            .cache_key();
        assert_eq!(key, rotated);
        let (a, b) = (
            key.secret().unwrap().fingerprint(),
            key.secret().unwrap().fingerprint(),
        );
        assert_ne!(a, b, "the salt differs per entry");
        assert!(key.secret().unwrap().matches(&a));
        assert!(!rotated.secret().unwrap().matches(&a));
        for bad in ["", "v1", "v1:zz:00", "v2:00:00", "v1:00:00:00", "v1:0:00"] {
            assert!(!key.secret().unwrap().matches(bad), "{bad}");
        }
        assert!(!a.contains("old-secret"));
    }

    #[test]
    fn fields_are_unambiguous() {
        let a = CredentialSet::new("k", "e").param("ab", "c").cache_key();
        let b = CredentialSet::new("k", "e").param("a", "bc").cache_key();
        assert_ne!(a, b);
        let none = CredentialSet::new("k", "e").cache_key();
        let empty_user = CredentialSet::new("k", "e").user("").cache_key();
        assert_ne!(none, empty_user);
        assert!(
            !format!(
                "{:?}",
                CredentialSet::new("k", "e").client(&ClientInfo::new("c", "zz-s3cr3t"))
            )
            .contains("zz-s3cr3t")
        );
    }
}
