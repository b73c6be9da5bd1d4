//! DPoP (RFC 9449): access tokens bound to a key the client holds, so that a stolen token
//! is worthless without the key. Every request that uses such a token carries a fresh
//! proof, a JWT signed with the key that names the request (`htm`, `htu`), the time
//! (`iat`), a unique id (`jti`), the token's hash (`ath`) and the server's nonce when it
//! asked for one.
//!
//! The proof is built here without a JWT library: the header (with the public key) is
//! encoded once per key, and only the claims are serialised per request, which keeps a
//! proof well under the 100 µs per request budget (see BENCHMARKS.md).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use ureq::http::{HeaderMap, HeaderValue};

use crate::data::RequestProof;
use crate::{Error, ErrorKind};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A DPoP key (RFC 9449): an ES256 (P-256) key pair made on this machine, to which the
/// server binds the tokens it issues. Give it to an authorizer with
/// [`ClientCredentials::with_dpop`](super::ClientCredentials::with_dpop) (or the same
/// method of [`RefreshToken`](super::RefreshToken)): token requests then carry a proof,
/// and a token of type `DPoP` goes out as `Authorization: DPoP <token>` with a fresh
/// `DPoP` proof header on every request, resends and redirect hops included. When a
/// server answers `use_dpop_nonce`, the request is sent once more with the nonce it gave,
/// and the nonce is used for the next proofs.
///
/// The key lives in memory only: a token bound to it cannot be used by another process,
/// so tokens kept in a [`TokenStore`](crate::store::TokenStore) are useful to this key's
/// holder alone. Clones share the key and its nonces. `Debug` shows the key's thumbprint
/// (RFC 7638, the `cnf.jkt` of bound tokens), never the private key.
///
/// Needs the `jwt` feature.
///
/// ```
/// use en_core_auth::{ClientInfo, oauth2::{ClientCredentials, DpopKey}};
///
/// let key = DpopKey::generate()?;
/// assert!(format!("{key:?}").contains(key.thumbprint()));
/// let auth = ClientCredentials::new(ClientInfo::new("id", "s"), "https://idp.example.com/token")?
///     .with_dpop(key);
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    signing: SigningKey,
    /// `base64url(header) "."`, encoded once.
    header_prefix: String,
    thumbprint: String,
    /// The token endpoint's nonce and the resource servers' nonce (kept apart: each
    /// server issues its own, RFC 9449 §8 and §9).
    token_nonce: Mutex<Option<String>>,
    resource_nonce: Mutex<Option<String>>,
}

impl DpopKey {
    /// A new ES256 key pair, from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Other`](ErrorKind::Other) when the operating system gives no randomness.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// assert_eq!(key.thumbprint().len(), 43);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn generate() -> Result<DpopKey, Error> {
        // A random 32-byte string is a valid P-256 scalar unless it is zero or at least
        // the group order (odds about 2^-32); draw again then.
        for _ in 0..8 {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Other,
                    format!("no randomness for a DPoP key: {e}"),
                )
            })?;
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return Ok(DpopKey::from_signing_key(signing));
            }
        }
        Err(Error::new(ErrorKind::Other, "could not draw a DPoP key"))
    }

    fn from_signing_key(signing: SigningKey) -> DpopKey {
        let point = signing.verifying_key().to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 | x (32 bytes) | y (32 bytes).
        let bytes = point.as_bytes();
        let (x, y) = (B64.encode(&bytes[1..33]), B64.encode(&bytes[33..65]));
        // RFC 7638: the required members, in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = B64.encode(Sha256::digest(canonical.as_bytes()));
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"}}}}"#
        );
        DpopKey {
            inner: Arc::new(KeyInner {
                signing,
                header_prefix: format!("{}.", B64.encode(header)),
                thumbprint,
                token_nonce: Mutex::new(None),
                resource_nonce: Mutex::new(None),
            }),
        }
    }

    /// The private key, for the local identity provider's second signing keys (one random
    /// P-256 key maker in the crate, not two).
    #[cfg(feature = "testing")]
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.inner.signing
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), base64url: what a server puts in a
    /// bound token's `cnf.jkt`, and what `dpop_jkt` names in an authorization request.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// assert!(!key.thumbprint().contains('='));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// The `DPoP` header value for one request with `access_token`, for HTTP clients other
    /// than a ureq agent with [`AuthMiddleware`](crate::AuthMiddleware) (which adds it by
    /// itself): `method` and `url` are the request's (the query and fragment are left out
    /// of `htu`). Each call makes a new proof with its own `jti`; it carries the nonce last
    /// given to [`use_nonce`](DpopKey::use_nonce) or seen by the middleware.
    ///
    /// # Errors
    ///
    /// [`Other`](ErrorKind::Other) when the operating system gives no randomness.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// let proof = key.proof("GET", "https://api.example.com/orders?page=2", "access-token")?;
    /// assert_eq!(proof.split('.').count(), 3);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn proof(&self, method: &str, url: &str, access_token: &str) -> Result<String, Error> {
        let nonce = self.inner.resource_nonce.lock().clone();
        self.inner
            .sign(method, url, Some(access_token), nonce.as_deref())
    }

    /// Puts `nonce`, a resource server's `DPoP-Nonce` header (RFC 9449 §9), in the next
    /// proofs made by [`proof`](DpopKey::proof). The middleware does this by itself.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// key.use_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn use_nonce(&self, nonce: impl Into<String>) {
        *self.inner.resource_nonce.lock() = Some(nonce.into());
    }

    /// A proof for a token request to `url` (no access token yet), with the token
    /// endpoint's nonce if it gave one.
    pub(crate) fn token_proof(&self, url: &str) -> Result<String, Error> {
        let nonce = self.inner.token_nonce.lock().clone();
        self.inner.sign("POST", url, None, nonce.as_deref())
    }

    /// Keeps the token endpoint's nonce for the next proofs.
    pub(crate) fn remember_token_nonce(&self, nonce: &str) {
        *self.inner.token_nonce.lock() = Some(nonce.to_owned());
    }

    /// What binds a token to this key: the middleware asks it for a proof per request.
    pub(crate) fn binding(&self) -> Arc<dyn RequestProof> {
        Arc::clone(&self.inner) as Arc<dyn RequestProof>
    }
}

impl KeyInner {
    /// A DPoP proof JWT (RFC 9449 §4.2).
    fn sign(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, Error> {
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("no randomness for a DPoP proof: {e}"),
            )
        })?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let mut claims = serde_json::Map::with_capacity(6);
        claims.insert("jti".into(), B64.encode(jti).into());
        claims.insert("htm".into(), method.into());
        claims.insert("htu".into(), htu(url).into());
        claims.insert("iat".into(), iat.into());
        if let Some(token) = access_token {
            claims.insert(
                "ath".into(),
                B64.encode(Sha256::digest(token.as_bytes())).into(),
            );
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        let claims = serde_json::to_vec(&claims).map_err(Error::other)?;
        let mut jwt = String::with_capacity(self.header_prefix.len() + claims.len() * 4 / 3 + 90);
        jwt.push_str(&self.header_prefix);
        B64.encode_string(&claims, &mut jwt);
        let signature: Signature = self.signing.sign(jwt.as_bytes());
        jwt.push('.');
        B64.encode_string(signature.to_bytes(), &mut jwt);
        Ok(jwt)
    }
}

impl RequestProof for KeyInner {
    fn proof(&self, method: &str, url: &str, access_token: &str) -> Result<HeaderValue, Error> {
        let nonce = self.resource_nonce.lock().clone();
        let jwt = self.sign(method, url, Some(access_token), nonce.as_deref())?;
        // base64url and dots only: always a valid header value.
        HeaderValue::try_from(jwt).map_err(|e| Error::new(ErrorKind::Other, e))
    }

    fn observe(&self, status: u16, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers
            .get("dpop-nonce")
            .and_then(|value| value.to_str().ok())
            .filter(|nonce| !nonce.is_empty())
        else {
            return false;
        };
        let fresh = {
            let mut kept = self.resource_nonce.lock();
            let fresh = kept.as_deref() != Some(nonce);
            *kept = Some(nonce.to_owned());
            fresh
        };
        // RFC 9449 §9: `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"`. A nonce
        // we had already used is not worth a resend: the server refuses something else.
        status == 401
            && fresh
            && headers
                .get_all("www-authenticate")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|value| value.contains("use_dpop_nonce"))
    }
}

/// The `htu` of a request to `url`: the URL without query and fragment (RFC 9449 §4.2).
fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.inner.thumbprint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};

    /// Verifies a proof with jsonwebtoken, from the key in its own header (as a server
    /// does), and returns its claims.
    pub(crate) fn verify(proof: &str) -> serde_json::Value {
        let header = jsonwebtoken::decode_header(proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk: Jwk = header.jwk.unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(proof, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn proofs_verify_and_name_the_request() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .binding()
            .proof("GET", "https://api.example.com/orders?page=2#top", "tok-1")
            .unwrap();
        let claims = verify(proof.to_str().unwrap());
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example.com/orders");
        // ath = base64url(SHA-256("tok-1"))
        assert_eq!(claims["ath"], B64.encode(Sha256::digest(b"tok-1")));
        assert!(claims["iat"].as_u64().unwrap() > 1_700_000_000);
        assert!(claims.get("nonce").is_none());
        let again = key
            .binding()
            .proof("GET", "https://api.example.com/orders", "tok-1");
        let again = verify(again.unwrap().to_str().unwrap());
        assert_ne!(claims["jti"], again["jti"], "every proof has its own jti");
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let key = DpopKey::generate().unwrap();
        let proof = key.token_proof("https://idp.example.com/token").unwrap();
        let jwk = jsonwebtoken::decode_header(&proof).unwrap().jwk.unwrap();
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256),
            Ok(key.thumbprint().to_owned())
        );
        let claims = verify(&proof);
        assert!(claims.get("ath").is_none());
        assert_eq!(claims["htm"], "POST");
    }

    #[test]
    fn nonces_are_kept_per_kind_of_server() {
        let key = DpopKey::generate().unwrap();
        key.remember_token_nonce("n-token");
        assert_eq!(
            verify(&key.token_proof("https://x/t").unwrap())["nonce"],
            "n-token"
        );
        let proof = key.binding();
        let mut headers = HeaderMap::new();
        headers.insert("dpop-nonce", HeaderValue::from_static("n-api"));
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
        );
        assert!(proof.observe(401, &headers), "a new nonce: resend once");
        assert!(
            !proof.observe(401, &headers),
            "the same nonce again: no loop"
        );
        let claims = verify(
            proof
                .proof("GET", "https://api/x", "t")
                .unwrap()
                .to_str()
                .unwrap(),
        );
        assert_eq!(claims["nonce"], "n-api");
        assert_eq!(
            verify(&key.token_proof("https://x/t").unwrap())["nonce"],
            "n-token"
        );
        // A nonce on a success is kept, without a resend.
        headers.insert("dpop-nonce", HeaderValue::from_static("n-api-2"));
        assert!(!proof.observe(200, &headers));
    }

    #[test]
    fn debug_shows_no_key() {
        let key = DpopKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.thumbprint()));
        assert!(!shown.contains("signing"));
    }
}
