//! RS256 signing and checking of the tokens the local identity provider issues, and its JWKS.
//!
//! **The key is a fixed TEST key committed in this repository (`test_key.pem`). Anyone can
//! read it, so anyone can forge tokens it signs. Never trust it outside tests.** A fixed key
//! keeps start-up free of key generation (seconds in a debug build) and makes the JWKS
//! stable across runs.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::PrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use crate::{Error, ErrorKind};

/// TEST KEY ONLY: public in this repository, see the module docs.
const TEST_KEY_PEM: &str = include_str!("test_key.pem");

/// The key id in every token header and in the JWKS.
const KEY_ID: &str = "en-core-auth-local-idp-test-key-1";

pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: Value,
}

impl Signer {
    /// The process-wide signer: parsing the key once serves every `LocalIdp`.
    pub(crate) fn shared() -> Result<&'static Signer, Error> {
        static SIGNER: OnceLock<Result<Signer, String>> = OnceLock::new();
        SIGNER
            .get_or_init(|| Signer::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::new(ErrorKind::Configuration, e.clone()))
    }

    fn new() -> Result<Signer, Error> {
        let bad_key = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Configuration,
                format!("the embedded test key is unreadable: {e}"),
            )
        };
        let body: String = TEST_KEY_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body.trim()).map_err(|e| bad_key(&e))?;
        let key = PrivateKey::from_pkcs1_der(&der).map_err(|e| bad_key(&e))?;
        let n = URL_SAFE_NO_PAD.encode(key.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.e_bytes());
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| bad_key(&e))?;
        let jwks = json!({
            "keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KEY_ID, "n": n, "e": e}]
        });
        Ok(Signer {
            encoding: EncodingKey::from_rsa_der(&der),
            decoding,
            jwks,
        })
    }

    pub(crate) fn sign(&self, claims: &Value) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| Error::new(ErrorKind::Other, format!("signing a token failed: {e}")))
    }

    /// The claims of `token` if it carries a valid signature by this key and the issuer
    /// `issuer`. Expiry is the caller's business: it is tracked more precisely than `exp`.
    pub(crate) fn verify(&self, token: &str, issuer: &str) -> Option<Value> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    pub(crate) fn jwks(&self) -> &Value {
        &self.jwks
    }
}

/// An ES256 key the local identity provider signs ID tokens with when a test asks for a key
/// rotation or a forgery ([`IdTokenSigning`](super::IdTokenSigning)).
pub(crate) struct EcKey {
    signing: p256::ecdsa::SigningKey,
    kid: String,
    jwk: Value,
}

impl EcKey {
    pub(crate) fn generate(kid: &str) -> Result<EcKey, Error> {
        let signing = crate::oauth2::DpopKey::generate()?.signing_key().clone();
        let point = signing.verifying_key().to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 | x (32 bytes) | y (32 bytes).
        let bytes = point.as_bytes();
        let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                         "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
                         "y": URL_SAFE_NO_PAD.encode(&bytes[33..65])});
        Ok(EcKey {
            signing,
            kid: kid.to_owned(),
            jwk,
        })
    }

    /// A JWT of `claims` signed by this key, its header naming `kid`.
    pub(crate) fn sign(&self, kid: &str, claims: &Value) -> Result<String, Error> {
        use p256::ecdsa::signature::Signer as _;
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = self.signing.sign(jwt.as_bytes());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(jwt)
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn jwk(&self) -> &Value {
        &self.jwk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_with_the_published_jwks_and_not_for_another_issuer() {
        let signer = Signer::shared().unwrap();
        let token = signer
            .sign(&json!({"iss": "http://127.0.0.1:1", "sub": "x", "exp": 4_000_000_000u64}))
            .unwrap();
        let jwk = &signer.jwks()["keys"][0];
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&["http://127.0.0.1:1"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert!(signer.verify(&token, "http://127.0.0.1:1").is_some());
        assert!(signer.verify(&token, "http://127.0.0.1:2").is_none());
        let mut tampered = token.clone();
        tampered.insert(token.len() - 2, 'A');
        assert!(signer.verify(&tampered, "http://127.0.0.1:1").is_none());
    }
}
