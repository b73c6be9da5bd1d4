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
use ureq::http::{HeaderMap, HeaderValue, Uri};

use crate::base::Origin;
use crate::data::{NonceAnswer, Proof, RequestProof};
use crate::{Error, ErrorKind};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A DPoP key (RFC 9449): an ES256 (P-256) key pair made on this machine, to which the
/// server binds the tokens it issues. Give it to an authorizer with
/// [`ClientCredentials::with_dpop`](super::ClientCredentials::with_dpop) (or the same
/// method of [`RefreshToken`](super::RefreshToken)): token requests then carry a proof,
/// and a token of type `DPoP` goes out as `Authorization: DPoP <token>` with a fresh
/// `DPoP` proof header on every request, resends and redirect hops included. When a
/// server answers `use_dpop_nonce`, the request is sent again with the nonce it gave, and
/// the nonce is used for that server's next proofs. Nonces are kept per server (origin:
/// scheme, host and port, RFC 9449 §9): one server's nonce never goes to another.
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
    /// The token endpoints' nonces and the resource servers' nonces, by origin, kept
    /// apart: each server issues its own (RFC 9449 §8 and §9), and a key may serve several
    /// authorizers.
    token_nonces: Mutex<Nonces>,
    resource_nonces: Mutex<Nonces>,
}

/// The nonces resource servers gave, by origin. A program talks to a handful of APIs;
/// the list is bounded all the same, the oldest server forgotten first (it costs that
/// server one `use_dpop_nonce` answer, nothing more).
#[derive(Default)]
struct Nonces(Vec<(Origin, Arc<str>)>);

/// How many resource servers' nonces a key keeps.
const MAX_NONCE_ORIGINS: usize = 32;

impl Nonces {
    fn get(&self, origin: &Origin) -> Option<Arc<str>> {
        self.0
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, nonce)| Arc::clone(nonce))
    }

    fn set(&mut self, origin: Origin, nonce: &str) {
        if let Some(kept) = self.0.iter_mut().find(|(o, _)| *o == origin) {
            if &*kept.1 != nonce {
                kept.1 = Arc::from(nonce);
            }
            return;
        }
        if self.0.len() >= MAX_NONCE_ORIGINS {
            self.0.remove(0);
        }
        self.0.push((origin, Arc::from(nonce)));
    }
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
                token_nonces: Mutex::default(),
                resource_nonces: Mutex::default(),
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
    /// given to [`use_nonce`](DpopKey::use_nonce) for the URL's server (scheme, host and
    /// port), or last seen by the middleware from it.
    ///
    /// # Errors
    ///
    /// [`Other`](ErrorKind::Other) when the operating system gives no randomness;
    /// [`Configuration`](ErrorKind::Configuration) when `url` is not an absolute URL.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// let proof = key.proof("GET", "https://api.example.com/orders?page=2", "access-token")?;
    /// assert_eq!(proof.split('.').count(), 3);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn proof(&self, method: &str, url: &str, access_token: &str) -> Result<String, Error> {
        let nonce = self.inner.resource_nonces.lock().get(&origin_of(url)?);
        self.inner
            .sign(method, url, Some(access_token), nonce.as_deref())
    }

    /// Puts `nonce`, the `DPoP-Nonce` header of the resource server at `url` (RFC 9449
    /// §9), in the next proofs that [`proof`](DpopKey::proof) makes for that server
    /// (scheme, host and port); other servers' proofs do not carry it. The middleware does
    /// this by itself.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) when `url` is not an absolute URL.
    ///
    /// ```
    /// let key = en_core_auth::oauth2::DpopKey::generate()?;
    /// key.use_nonce("https://api.example.com/orders", "eyJ7S_zG.eyJH0-Z.HX4w-7v")?;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn use_nonce(&self, url: &str, nonce: impl Into<String>) -> Result<(), Error> {
        let origin = origin_of(url)?;
        self.inner.resource_nonces.lock().set(origin, &nonce.into());
        Ok(())
    }

    /// A proof for a token request to `url` (no access token yet), with the token
    /// endpoint's nonce if it gave one.
    pub(crate) fn token_proof(&self, url: &str) -> Result<String, Error> {
        let nonce = self.inner.token_nonces.lock().get(&origin_of(url)?);
        self.inner.sign("POST", url, None, nonce.as_deref())
    }

    /// Keeps the token endpoint's nonce for the next proofs.
    pub(crate) fn remember_token_nonce(&self, url: &str, nonce: &str) {
        if let Ok(origin) = origin_of(url) {
            self.inner.token_nonces.lock().set(origin, nonce);
        }
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
    fn proof(&self, method: &str, uri: &Uri, access_token: &str) -> Result<Proof, Error> {
        let nonce = self.resource_nonces.lock().get(&Origin::of(uri));
        let jwt = self.sign(
            method,
            &uri.to_string(),
            Some(access_token),
            nonce.as_deref(),
        )?;
        // base64url and dots only: always a valid header value.
        let header = HeaderValue::try_from(jwt).map_err(|e| Error::new(ErrorKind::Other, e))?;
        Ok(Proof { header, nonce })
    }

    fn observe(
        &self,
        uri: &Uri,
        signed_with: Option<&str>,
        status: u16,
        headers: &HeaderMap,
    ) -> NonceAnswer {
        let origin = Origin::of(uri);
        let given = headers
            .get("dpop-nonce")
            .and_then(|value| value.to_str().ok())
            .filter(|nonce| !nonce.is_empty());
        let current = {
            let mut nonces = self.resource_nonces.lock();
            if let Some(nonce) = given {
                nonces.set(origin.clone(), nonce);
            }
            nonces.get(&origin)
        };
        // RFC 9449 §9: `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
        let wants_nonce = status == 401
            && headers
                .get_all("www-authenticate")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|value| value.contains("use_dpop_nonce"));
        if !wants_nonce {
            return NonceAnswer::Accepted;
        }
        // Compared with the nonce this request was signed with, not with the last one
        // kept: requests in flight together all meet the same new nonce, and each needs
        // it. The same nonce again means the server refuses something else.
        if current
            .as_deref()
            .is_some_and(|nonce| Some(nonce) != signed_with)
        {
            NonceAnswer::NewNonce
        } else {
            NonceAnswer::Refused
        }
    }
}

/// The origin of an absolute URL given by the caller.
fn origin_of(url: &str) -> Result<Origin, Error> {
    match url.parse::<Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => Ok(Origin::of(&uri)),
        _ => Err(Error::new(
            ErrorKind::Configuration,
            "a DPoP proof needs the request's absolute URL",
        )),
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

    fn uri(url: &str) -> Uri {
        url.parse().unwrap()
    }

    fn claims_of(proof: Proof) -> serde_json::Value {
        verify(proof.header.to_str().unwrap())
    }

    #[test]
    fn proofs_verify_and_name_the_request() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .binding()
            .proof(
                "GET",
                &uri("https://api.example.com/orders?page=2#top"),
                "tok-1",
            )
            .unwrap();
        assert!(proof.nonce.is_none());
        let claims = claims_of(proof);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example.com/orders");
        // ath = base64url(SHA-256("tok-1"))
        assert_eq!(claims["ath"], B64.encode(Sha256::digest(b"tok-1")));
        assert!(claims["iat"].as_u64().unwrap() > 1_700_000_000);
        assert!(claims.get("nonce").is_none());
        let again = key
            .binding()
            .proof("GET", &uri("https://api.example.com/orders"), "tok-1");
        let again = claims_of(again.unwrap());
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

    fn asking_for(nonce: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(nonce) = nonce {
            headers.insert("dpop-nonce", HeaderValue::from_static(nonce));
        }
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
        );
        headers
    }

    #[test]
    fn nonces_are_kept_per_server_and_apart_from_the_token_endpoint_s() {
        let key = DpopKey::generate().unwrap();
        key.remember_token_nonce("https://x/t", "n-token");
        assert_eq!(
            verify(&key.token_proof("https://x/t").unwrap())["nonce"],
            "n-token"
        );
        // Another identity provider's token endpoint does not get it.
        assert!(
            verify(&key.token_proof("https://y/t").unwrap())
                .get("nonce")
                .is_none()
        );
        let proof = key.binding();
        let api = uri("https://api.example/x");
        let headers = asking_for(Some("n-api"));
        assert_eq!(
            proof.observe(&api, None, 401, &headers),
            NonceAnswer::NewNonce
        );
        // Another request in flight, signed without the nonce, meets the same answer: it
        // needs the nonce as much as the first.
        assert_eq!(
            proof.observe(&api, None, 401, &headers),
            NonceAnswer::NewNonce
        );
        assert_eq!(
            proof.observe(&api, Some("n-api"), 401, &headers),
            NonceAnswer::Refused,
            "the nonce it carried: no loop"
        );
        let signed = proof.proof("GET", &uri("https://API.example:443/y"), "t");
        let signed = signed.unwrap();
        assert_eq!(signed.nonce.as_deref(), Some("n-api"));
        assert_eq!(claims_of(signed)["nonce"], "n-api");
        let elsewhere = proof.proof("GET", &uri("https://api.example:8443/x"), "t");
        assert!(claims_of(elsewhere.unwrap()).get("nonce").is_none());
        assert_eq!(
            verify(&key.token_proof("https://x/t").unwrap())["nonce"],
            "n-token"
        );
        // A nonce on a success is kept, without a resend.
        let mut ok = HeaderMap::new();
        ok.insert("dpop-nonce", HeaderValue::from_static("n-api-2"));
        assert_eq!(
            proof.observe(&api, Some("n-api"), 200, &ok),
            NonceAnswer::Accepted
        );
        // A use_dpop_nonce refusal without a header, when a newer nonce is already kept.
        assert_eq!(
            proof.observe(&api, Some("n-api"), 401, &asking_for(None)),
            NonceAnswer::NewNonce
        );
        assert_eq!(
            proof.observe(&uri("https://new.example/"), None, 401, &asking_for(None)),
            NonceAnswer::Refused
        );
        // Any other 401 is not about the nonce.
        assert_eq!(proof.observe(&api, None, 401, &ok), NonceAnswer::Accepted);
    }

    #[test]
    fn the_nonce_list_is_bounded_and_forgets_the_oldest_server() {
        let mut nonces = Nonces::default();
        for i in 0..=MAX_NONCE_ORIGINS {
            nonces.set(Origin::of(&uri(&format!("https://h{i}.example/"))), "n");
        }
        assert_eq!(nonces.0.len(), MAX_NONCE_ORIGINS);
        assert!(
            nonces
                .get(&Origin::of(&uri("https://h0.example/")))
                .is_none()
        );
        assert!(
            nonces
                .get(&Origin::of(&uri("https://h1.example/")))
                .is_some()
        );
        nonces.set(Origin::of(&uri("https://h1.example/")), "m");
        assert_eq!(
            nonces
                .get(&Origin::of(&uri("https://h1.example/")))
                .as_deref(),
            Some("m")
        );
        assert_eq!(nonces.0.len(), MAX_NONCE_ORIGINS);
    }

    #[test]
    fn the_public_api_wants_absolute_urls() {
        let key = DpopKey::generate().unwrap();
        assert_eq!(
            key.use_nonce("/relative", "n").unwrap_err().kind(),
            ErrorKind::Configuration
        );
        assert_eq!(
            key.proof("GET", "/relative", "t").unwrap_err().kind(),
            ErrorKind::Configuration
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let key = DpopKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.thumbprint()));
        assert!(!shown.contains("signing"));
    }
}
