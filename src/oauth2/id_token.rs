//! Checking ID tokens (OpenID Connect Core §3.1.3.7), for the interactive logins and for
//! Cognito's SRP logins: the signature with the issuer's JWKS, `iss`, `aud` (and `azp` when
//! there are several audiences), `exp`, Cognito's `token_use` where asked and, right after an
//! interactive login, the `nonce` the login sent. A refreshed ID token must name the same
//! issuer and subject as the login's (§12.2).
//!
//! The JWKS is fetched once and cached. A token naming a `kid` the cache lacks (the server
//! rotated its keys) fetches it again at once, but such fetches happen at most once per
//! [`REFETCH_AFTER`], so that a run of tokens with an unknown `kid` costs one request, not
//! one each. A token without a `kid`
//! verifies against a JWKS of one key (§10.1: the `kid` is needed only when there are
//! several).

use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::http::HttpClient;
use crate::{Error, ErrorKind, Token};

/// The shortest time between two JWKS fetches caused by unknown `kid`s (the first load of
/// the keys does not count).
pub(crate) const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// The algorithms of an RSA key.
pub(crate) const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Only public-key signatures: a MAC (HS256) would be keyed with something the client
/// knows (its secret, or the issuer's public key in the classic algorithm-confusion
/// attack), and `none` is no signature at all.
fn accepted(algorithm: Algorithm) -> bool {
    RSA_ALGORITHMS.contains(&algorithm)
        || matches!(
            algorithm,
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA
        )
}

/// One signing key of the issuer's JWKS.
struct Key {
    kid: Option<String>,
    /// The algorithms this key signs with: its JWK `alg` when it names one, else what its
    /// type and curve allow.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl Key {
    /// The key of a JWK, or `None` for a key this crate does not verify with (a MAC key,
    /// an encryption key, a curve, or an algorithm that is not [`accepted`]).
    fn from_jwk(jwk: &Jwk) -> Option<Key> {
        let algorithms = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(named), _) => vec![Algorithm::try_from(*named).ok()?],
            (None, AlgorithmParameters::RSA(_)) => RSA_ALGORITHMS.to_vec(),
            (None, AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return None,
            },
            (None, AlgorithmParameters::OctetKeyPair(okp))
                if okp.curve == EllipticCurve::Ed25519 =>
            {
                vec![Algorithm::EdDSA]
            }
            _ => return None,
        };
        if !algorithms.iter().copied().all(accepted) {
            return None;
        }
        Some(Key {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key: DecodingKey::from_jwk(jwk).ok()?,
        })
    }
}

/// The issuer's keys and what an ID token must say.
pub(crate) struct IdTokenVerifier {
    issuer: String,
    client_id: String,
    jwks_url: String,
    /// The `token_use` claim required (Cognito marks its ID tokens `id`, so that an access
    /// token signed by the same key cannot pass for one).
    token_use: Option<&'static str>,
    keys: Vec<Key>,
    /// Whether the keys were fetched at least once.
    loaded: bool,
    /// When a token naming an unknown `kid` last made us fetch the keys again.
    refetched: Option<Instant>,
    /// The shortest time between two fetches ([`REFETCH_AFTER`]; tests shorten it).
    refetch_after: Duration,
    /// `iss` and `sub` of the last ID token verified: what a refreshed one must repeat when
    /// the token it replaces carries none.
    subject: Option<(String, String)>,
    /// How to name another issuer, for the error of a token whose `iss` is not this one.
    issuer_hint: Option<&'static str>,
}

fn rejected(why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::MalformedResponse,
        format!("the ID token failed verification: {why}"),
    )
}

impl IdTokenVerifier {
    pub(crate) fn new(issuer: &str, client_id: &str, jwks_url: &str) -> IdTokenVerifier {
        IdTokenVerifier {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            jwks_url: jwks_url.to_owned(),
            token_use: None,
            keys: Vec::new(),
            loaded: false,
            refetched: None,
            refetch_after: REFETCH_AFTER,
            subject: None,
            issuer_hint: None,
        }
    }

    /// Says in the error for a token from another issuer how to configure the right one
    /// (where the issuer was derived, not discovered).
    pub(crate) fn with_issuer_hint(mut self, hint: &'static str) -> IdTokenVerifier {
        self.issuer_hint = Some(hint);
        self
    }

    /// Also requires the claim `token_use` to be `token_use`.
    pub(crate) fn with_token_use(mut self, token_use: &'static str) -> IdTokenVerifier {
        self.token_use = Some(token_use);
        self
    }

    /// Checks the ID token a login got with `token`, if it has one; `nonce` is the one the
    /// login sent, if it sent one.
    pub(crate) fn check(
        &mut self,
        http: &HttpClient,
        token: &Token,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        match token.id_token() {
            Some(id_token) => {
                let claims = self.verify(http, id_token, nonce)?;
                self.subject = claims_subject(&claims);
                Ok(())
            }
            None if nonce.is_some() => Err(rejected("an openid login came back without one")),
            None => Ok(()),
        }
    }

    /// Checks the ID token of `renewed`, a refresh of `previous`, if it has one: no nonce
    /// (OpenID Connect does not require one on a refresh), and the same `iss` and `sub` as
    /// the ID token of `previous` (or, when that carries none, of the last one verified
    /// here): a refresh must not turn one user's session into another's (§12.2).
    pub(crate) fn check_refreshed(
        &mut self,
        http: &HttpClient,
        renewed: &Token,
        previous: &Token,
    ) -> Result<(), Error> {
        let expected = previous
            .id_token()
            .and_then(issuer_and_subject)
            .or_else(|| self.subject.clone());
        let Some(id_token) = renewed.id_token() else {
            return Ok(());
        };
        let claims = self.verify(http, id_token, None)?;
        let subject = claims_subject(&claims);
        if expected.is_some_and(|expected| Some(expected) != subject) {
            return Err(rejected(
                "a refreshed ID token names another issuer or subject than the login's",
            ));
        }
        self.subject = subject;
        Ok(())
    }

    /// The verified claims of `id_token`.
    pub(crate) fn verify(
        &mut self,
        http: &HttpClient,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Value, Error> {
        let header = decode_header(id_token).map_err(rejected)?;
        if !accepted(header.alg) {
            return Err(rejected(format!(
                "{:?} signatures are not accepted",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        if self.key(kid).is_none() && self.may_fetch() {
            self.fetch_keys(http)?;
        }
        let key = self.key(kid).ok_or_else(|| match kid {
            Some(kid) => rejected(format!("the issuer's JWKS has no key `{kid}`")),
            None => rejected(format!(
                "it names no key (`kid`) and the issuer's JWKS has {} keys",
                self.keys.len()
            )),
        })?;
        if !key.algorithms.contains(&header.alg) {
            return Err(rejected(format!(
                "it is signed with {:?}, which its key is not for",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Value>(id_token, &key.key, &validation)
            .map_err(rejected)?
            .claims;
        // `iss` is compared here rather than by the JWT library, so that the error can say
        // which issuer came (the signature is verified by now) and how to accept it.
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if iss != self.issuer {
            let came: String = iss.chars().take(200).flat_map(char::escape_debug).collect();
            let hint = self.issuer_hint.map_or(String::new(), |h| format!("; {h}"));
            return Err(rejected(format!(
                "its issuer (`iss`) is `{came}`, expected `{}`{hint}",
                self.issuer
            )));
        }
        self.check_authorized_party(&claims)?;
        if let Some(nonce) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
        {
            return Err(rejected("its nonce is not the one this login sent"));
        }
        if let Some(token_use) = self.token_use
            && claims.get("token_use").and_then(Value::as_str) != Some(token_use)
        {
            return Err(rejected(format!("its token_use is not `{token_use}`")));
        }
        Ok(claims)
    }

    /// `azp` (§3.1.3.7 steps 4 and 5): required when the token has several audiences, and
    /// when present it must be this client.
    fn check_authorized_party(&self, claims: &Value) -> Result<(), Error> {
        let audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .map_or(1, Vec::len);
        match claims.get("azp") {
            None if audiences > 1 => Err(rejected(
                "it has several audiences and no authorized party (`azp`)",
            )),
            None => Ok(()),
            Some(azp) if azp.as_str() == Some(self.client_id.as_str()) => Ok(()),
            Some(_) => Err(rejected("its authorized party (`azp`) is another client")),
        }
    }

    /// The cached key for a token naming `kid`; without a `kid`, the only key there is.
    fn key(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// Whether the JWKS may be fetched now: never fetched yet, or not fetched again for an
    /// unknown `kid` within the last `refetch_after`.
    fn may_fetch(&self) -> bool {
        !self.loaded
            || self
                .refetched
                .is_none_or(|refetched| refetched.elapsed() >= self.refetch_after)
    }

    /// Replaces the cached keys with the JWKS's. Keys this crate cannot use (another
    /// `kty`, encryption keys, MAC keys) are skipped.
    fn fetch_keys(&mut self, http: &HttpClient) -> Result<(), Error> {
        log::debug!("fetching the JWKS {}", self.jwks_url);
        let reply = http.get(&self.jwks_url)?;
        if !(200..=299).contains(&reply.status) {
            return Err(reply.error_at(Error::new(
                ErrorKind::Server,
                format!("the JWKS answered HTTP {}", reply.status),
            )));
        }
        let set: Value = serde_json::from_slice(&reply.body).map_err(|_| {
            reply.error_at(Error::new(
                ErrorKind::MalformedResponse,
                format!("the JWKS is {}, not JSON", reply.describe_body()),
            ))
        })?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::new(ErrorKind::MalformedResponse, "the JWKS has no keys"))?;
        self.keys = keys
            .iter()
            .filter(|key| key.get("use").is_none_or(|u| u == "sig"))
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .filter_map(|jwk| Key::from_jwk(&jwk))
            .collect();
        if self.loaded {
            self.refetched = Some(Instant::now());
        }
        self.loaded = true;
        Ok(())
    }
}

/// `iss` and `sub` of verified claims.
fn claims_subject(claims: &Value) -> Option<(String, String)> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Some((text("iss")?, text("sub")?))
}

/// `iss` and `sub` of an ID token this crate verified before (it comes from the token being
/// refreshed), read without checking its signature again.
fn issuer_and_subject(id_token: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    claims_subject(&serde_json::from_slice(&json).ok()?)
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", &self.issuer)
            .field("jwks_url", &self.jwks_url)
            .field("cached_keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const PRIVATE: &str = include_str!("../../tests/keys/private_key_jwt_ec.pem");
    const PUBLIC: &str = include_str!("../../tests/keys/private_key_jwt_ec.pub.pem");

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// An ES256 token with the test key; `kid` in its header when given.
    fn sign_with(kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn sign(kid: &str, claims: &Value) -> String {
        sign_with(Some(kid), claims)
    }

    /// The test key as a JWK named `kid`, with its `alg` when `with_alg`.
    fn jwk(kid: Option<&str>, with_alg: bool) -> Jwk {
        let key = EncodingKey::from_ec_pem(PRIVATE.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = kid.map(str::to_owned);
        if !with_alg {
            jwk.common.key_algorithm = None;
        }
        jwk
    }

    /// A verifier with the test key cached as `k1` and a JWKS URL nothing answers, so
    /// that any fetch shows as a transport error.
    fn verifier() -> IdTokenVerifier {
        let mut verifier = IdTokenVerifier::new(
            "https://idp.example.com",
            "my-cli",
            "http://127.0.0.1:9/jwks",
        );
        verifier
            .keys
            .push(Key::from_jwk(&jwk(Some("k1"), false)).unwrap());
        verifier
    }

    /// A JWKS server on loopback serving `jwks`; the count is of the requests it answered.
    fn jwks_server(jwks: Value) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        let body = jwks.to_string();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, fetches)
    }

    /// A verifier of tokens from `https://idp.example.com` whose JWKS is at `url`.
    fn fetching(url: &str) -> IdTokenVerifier {
        IdTokenVerifier::new("https://idp.example.com", "my-cli", url)
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example.com", "aud": "my-cli", "sub": "alice",
               "exp": now() + 300, "nonce": "n0nce", "token_use": "id"})
    }

    fn no_retry() -> HttpClient {
        HttpClient::new().with_retry(crate::http::RetryPolicy::none())
    }

    #[test]
    fn a_good_token_passes_with_its_nonce() {
        let claims = verifier()
            .verify(&no_retry(), &sign("k1", &claims()), Some("n0nce"))
            .unwrap();
        assert_eq!(claims["sub"], "alice");
        // A refresh checks no nonce.
        let mut without = self::claims();
        without.as_object_mut().unwrap().remove("nonce");
        assert!(
            verifier()
                .verify(&no_retry(), &sign("k1", &without), None)
                .is_ok()
        );
    }

    /// An openid login (one that sent a nonce) must come back with an ID token; a token
    /// without one is fine otherwise.
    #[test]
    fn an_openid_login_without_an_id_token_fails() {
        let bare = Token::new("a");
        let err = verifier()
            .check(&no_retry(), &bare, Some("n0nce"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        assert!(err.to_string().contains("without one"), "{err}");
        assert!(verifier().check(&no_retry(), &bare, None).is_ok());
        let with = Token::new("a").with_id_token(sign("k1", &claims()));
        assert!(verifier().check(&no_retry(), &with, Some("n0nce")).is_ok());
    }

    #[test]
    fn debug_names_the_issuer_and_the_key_count() {
        let shown = format!("{:?}", verifier());
        assert!(shown.contains("https://idp.example.com"), "{shown}");
        assert!(shown.contains("cached_keys: 1"), "{shown}");
    }

    #[test]
    fn each_claim_is_checked() {
        let cases = [
            ("iss", json!("https://evil.example.com")),
            ("aud", json!("someone-else")),
            ("exp", json!(now() - 3600)),
            ("nonce", json!("replayed")),
            ("token_use", json!("access")),
            ("azp", json!("someone-else")),
        ];
        for (name, value) in cases {
            let mut claims = claims();
            claims[name] = value;
            let err = verifier()
                .with_token_use("id")
                .verify(&no_retry(), &sign("k1", &claims), Some("n0nce"))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{name}");
        }
    }

    /// OpenID Connect Core §3.1.3.7 steps 4 and 5.
    #[test]
    fn several_audiences_need_this_client_as_authorized_party() {
        let verify = |aud: Value, azp: Option<&str>| {
            let mut claims = claims();
            claims["aud"] = aud;
            if let Some(azp) = azp {
                claims["azp"] = json!(azp);
            }
            verifier().verify(&no_retry(), &sign("k1", &claims), None)
        };
        let err = verify(json!(["my-cli", "api"]), None).unwrap_err();
        assert!(err.to_string().contains("azp"), "{err}");
        let err = verify(json!(["my-cli", "api"]), Some("api")).unwrap_err();
        assert!(err.to_string().contains("azp"), "{err}");
        assert!(verify(json!(["my-cli", "api"]), Some("my-cli")).is_ok());
        assert!(verify(json!(["my-cli"]), None).is_ok());
        assert!(verify(json!("my-cli"), Some("my-cli")).is_ok());
    }

    #[test]
    fn a_forged_or_unsigned_token_fails() {
        let good = sign("k1", &claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = sign(
            "k1",
            &json!({"iss": "https://idp.example.com", "aud": "my-cli",
                                        "exp": now() + 300, "sub": "mallory"}),
        );
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(
            verifier()
                .verify(&no_retry(), &parts.join("."), None)
                .is_err()
        );
        let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", good.split('.').nth(1).unwrap());
        assert!(verifier().verify(&no_retry(), &unsigned, None).is_err());
    }

    /// The classic algorithm confusion: an HS256 token whose MAC is keyed with the issuer's
    /// public key, which anyone can read from the JWKS.
    #[test]
    fn a_mac_keyed_with_the_public_key_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        for secret in [PUBLIC, PUBLIC.trim()].map(str::as_bytes) {
            let forged = encode(
                &header,
                &claims(),
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap();
            let err = verifier().verify(&no_retry(), &forged, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse);
            assert!(
                err.to_string()
                    .contains("HS256 signatures are not accepted"),
                "{err}"
            );
        }
    }

    /// A header naming an algorithm of the accepted list that its key is not for: ES384
    /// with a P-256 key, as its JWK says (`alg`) and as its curve says (no `alg`).
    #[test]
    fn an_algorithm_the_key_does_not_have_is_refused() {
        let good = sign("k1", &claims());
        let (_, rest) = good.split_once('.').unwrap();
        let es384 = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"ES384","kid":"k1","typ":"JWT"}"#,
        );
        let relabelled = format!("{es384}.{rest}");
        for with_alg in [true, false] {
            let mut verifier = verifier();
            verifier.keys = vec![Key::from_jwk(&jwk(Some("k1"), with_alg)).unwrap()];
            let err = verifier.verify(&no_retry(), &relabelled, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse);
            assert!(
                err.to_string().contains("ES384, which its key is not for"),
                "{err}"
            );
        }
    }

    /// Keys this crate does not verify with are not taken from a JWKS: a MAC key (`oct`),
    /// or a key whose `alg` is outside the accepted list.
    #[test]
    fn mac_keys_are_not_taken_from_a_jwks() {
        let oct: Jwk =
            serde_json::from_value(json!({"kty": "oct", "kid": "m", "k": "c2VjcmV0"})).unwrap();
        assert!(Key::from_jwk(&oct).is_none());
        let mut hs = jwk(Some("k"), true);
        hs.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::HS256);
        assert!(Key::from_jwk(&hs).is_none());
        assert!(Key::from_jwk(&jwk(Some("k"), true)).is_some());
    }

    /// Without `alg`, a key's type and curve say what it signs with; a curve this crate does
    /// not verify with is no key.
    #[test]
    fn a_key_without_alg_signs_with_what_its_type_allows() {
        let algorithms = |jwk: Value| {
            let jwk: Jwk = serde_json::from_value(jwk).unwrap();
            Key::from_jwk(&jwk).map(|key| key.algorithms)
        };
        let b64 = "AQAB";
        assert_eq!(
            algorithms(json!({"kty": "RSA", "n": b64, "e": b64})),
            Some(RSA_ALGORITHMS.to_vec())
        );
        for (curve, expected) in [
            ("P-256", Some(vec![Algorithm::ES256])),
            ("P-384", Some(vec![Algorithm::ES384])),
            ("P-521", None),
        ] {
            let jwk = json!({"kty": "EC", "crv": curve, "x": b64, "y": b64});
            assert_eq!(algorithms(jwk), expected, "{curve}");
        }
        assert_eq!(
            algorithms(json!({"kty": "OKP", "crv": "Ed25519", "x": b64})),
            Some(vec![Algorithm::EdDSA])
        );
        // An octet key pair on a curve that is not Ed25519 (the JWK parser keeps the
        // curves it knows; X25519 and Ed448 it does not): no key.
        assert_eq!(
            algorithms(json!({"kty": "OKP", "crv": "P-256", "x": b64})),
            None
        );
        assert_eq!(
            algorithms(json!({"kty": "OKP", "crv": "Ed448", "x": b64})),
            None
        );
        // An `alg` wins over what the type allows.
        assert_eq!(
            algorithms(json!({"kty": "RSA", "alg": "PS384", "n": b64, "e": b64})),
            Some(vec![Algorithm::PS384])
        );
    }

    /// An RSA key without `alg` verifies an RS256 token end to end.
    #[test]
    fn an_rsa_key_without_alg_verifies() {
        let private = include_str!("../../tests/keys/private_key_jwt_rsa.pem");
        let encoding = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        jwk.common.key_algorithm = None;
        jwk.common.key_id = Some("r1".to_owned());
        let mut verifier = verifier();
        verifier.keys = vec![Key::from_jwk(&jwk).unwrap()];
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("r1".to_owned());
        let token = encode(&header, &claims(), &encoding).unwrap();
        assert!(verifier.verify(&no_retry(), &token, None).is_ok());
    }

    /// Only signing keys are taken from a JWKS: one marked for encryption is skipped.
    #[test]
    fn encryption_keys_are_not_taken_from_a_jwks() {
        let with_use = |usage: &str| {
            let mut key = serde_json::to_value(jwk(Some("k1"), true)).unwrap();
            key["use"] = json!(usage);
            json!({ "keys": [key] })
        };
        let (url, _) = jwks_server(with_use("sig"));
        assert!(
            fetching(&url)
                .verify(&no_retry(), &sign("k1", &claims()), None)
                .is_ok()
        );
        let (url, _) = jwks_server(with_use("enc"));
        let err = fetching(&url)
            .verify(&no_retry(), &sign("k1", &claims()), None)
            .unwrap_err();
        assert!(err.to_string().contains("no key `k1`"), "{err}");
    }

    #[test]
    fn an_unknown_kid_fetches_the_jwks_again() {
        let err = verifier()
            .verify(&no_retry(), &sign("rotated", &claims()), None)
            .unwrap_err();
        // The fetch was tried (nothing listens there).
        assert_eq!(err.kind(), ErrorKind::Transport);
    }

    /// OpenID Connect Core §10.1: a `kid` is needed only when the JWKS has several keys.
    #[test]
    fn a_token_without_kid_verifies_against_a_one_key_jwks() {
        let (url, fetches) = jwks_server(json!({ "keys": [jwk(Some("k1"), true)] }));
        let mut verifier = fetching(&url);
        let claims = verifier
            .verify(&no_retry(), &sign_with(None, &self::claims()), None)
            .unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        let (url, _) =
            jwks_server(json!({ "keys": [jwk(Some("k1"), true), jwk(Some("k2"), true)] }));
        let err = fetching(&url)
            .verify(&no_retry(), &sign_with(None, &self::claims()), None)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        assert!(err.to_string().contains("2 keys"), "{err}");
    }

    /// A run of tokens naming a `kid` the JWKS lacks costs one fetch per interval, not
    /// one per token.
    #[test]
    fn unknown_kids_fetch_the_jwks_once_per_interval() {
        let (url, fetches) = jwks_server(json!({ "keys": [jwk(Some("k1"), true)] }));
        let mut verifier = fetching(&url);
        verifier
            .verify(&no_retry(), &sign("k1", &claims()), None)
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for kid in ["unknown", "unknown", "other", "unknown", "third"] {
            let err = verifier
                .verify(&no_retry(), &sign(kid, &claims()), None)
                .unwrap_err();
            assert!(
                err.to_string().contains(&format!("no key `{kid}`")),
                "{err}"
            );
        }
        // The first unknown kid fetched again at once (a rotation); the others waited.
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // Once the interval has passed (here: shortened to nothing), one more fetch.
        verifier.refetch_after = Duration::ZERO;
        assert!(
            verifier
                .verify(&no_retry(), &sign("unknown", &claims()), None)
                .is_err()
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        // A known kid never fetches.
        verifier
            .verify(&no_retry(), &sign("k1", &claims()), None)
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    /// OpenID Connect Core §12.2: a refreshed ID token names the login's `iss` and `sub`.
    #[test]
    fn a_refreshed_id_token_names_the_same_user() {
        let id_token = |sub: &str| {
            let mut claims = claims();
            claims["sub"] = json!(sub);
            sign("k1", &claims)
        };
        let login = Token::new("a").with_id_token(id_token("alice"));
        let renewed = |sub: &str| Token::new("b").with_id_token(id_token(sub));
        let mut verifier = verifier();
        verifier
            .check_refreshed(&no_retry(), &renewed("alice"), &login)
            .unwrap();
        let err = verifier
            .check_refreshed(&no_retry(), &renewed("mallory"), &login)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        assert!(err.to_string().contains("subject"), "{err}");
        // The token refreshed carries no ID token: the last one verified is the reference.
        let mut verifier = self::verifier();
        verifier.check(&no_retry(), &login, None).unwrap();
        let bare = Token::new("a");
        assert!(
            verifier
                .check_refreshed(&no_retry(), &renewed("mallory"), &bare)
                .is_err()
        );
        verifier
            .check_refreshed(&no_retry(), &renewed("alice"), &bare)
            .unwrap();
        // A refresh without an ID token has nothing to check.
        verifier
            .check_refreshed(&no_retry(), &Token::new("c"), &login)
            .unwrap();
    }

    /// The issuer is compared too: a refreshed token from the same JWKS keys but another
    /// issuer never verifies (iss is checked against the configured issuer), and a stored
    /// login that named another issuer is not taken over.
    #[test]
    fn a_refreshed_id_token_names_the_same_issuer() {
        let mut foreign = claims();
        foreign["iss"] = json!("https://other.example.com");
        let login = Token::new("a").with_id_token(sign("k1", &foreign));
        let renewed = Token::new("b").with_id_token(sign("k1", &claims()));
        assert!(
            verifier()
                .check_refreshed(&no_retry(), &renewed, &login)
                .is_err()
        );
    }
}
