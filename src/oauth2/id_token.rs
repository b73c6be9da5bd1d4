//! Checking ID tokens (OpenID Connect Core §3.1.3.7), for the interactive logins and for
//! Cognito's SRP logins: the signature with the issuer's JWKS (fetched once, cached by
//! `kid`, fetched again when a token names a `kid` the cache lacks: the server rotated its
//! keys), `iss`, `aud`, `exp`, Cognito's `token_use` where asked and, right after an
//! interactive login, the `nonce` the login sent.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::http::HttpClient;
use crate::{Error, ErrorKind, Token};

/// The issuer's keys and what an ID token must say.
pub(crate) struct IdTokenVerifier {
    issuer: String,
    client_id: String,
    jwks_url: String,
    /// The `token_use` claim required (Cognito marks its ID tokens `id`, so that an access
    /// token signed by the same key cannot pass for one).
    token_use: Option<&'static str>,
    /// Keys by `kid` (`""` for a key without one).
    keys: HashMap<String, DecodingKey>,
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
            keys: HashMap::new(),
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

    /// Checks the ID token of `token`, if it has one; `nonce` is the one the login sent
    /// (none on a refresh, where OpenID Connect does not require it).
    pub(crate) fn check(
        &mut self,
        http: &HttpClient,
        token: &Token,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        match token.id_token() {
            Some(id_token) => self.verify(http, id_token, nonce).map(|_| ()),
            None if nonce.is_some() => Err(rejected("an openid login came back without one")),
            None => Ok(()),
        }
    }

    /// The verified claims of `id_token`.
    pub(crate) fn verify(
        &mut self,
        http: &HttpClient,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Value, Error> {
        let header = decode_header(id_token).map_err(rejected)?;
        // Only public-key signatures: a MAC (HS256) would be keyed with the client
        // secret, and `none` is no signature at all.
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(rejected(format!(
                "{:?} signatures are not accepted",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        if !self.keys.contains_key(&kid) {
            self.fetch_keys(http)?;
        }
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| rejected(format!("the issuer's JWKS has no key `{kid}`")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Value>(id_token, key, &validation)
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

    /// Replaces the cached keys with the JWKS's. Keys this crate cannot use (another
    /// `kty`, encryption keys) are skipped.
    fn fetch_keys(&mut self, http: &HttpClient) -> Result<(), Error> {
        log::debug!("fetching the JWKS {}", self.jwks_url);
        let reply = http.get(&self.jwks_url)?;
        if !(200..=299).contains(&reply.status) {
            return Err(Error::new(
                ErrorKind::Server,
                format!("the JWKS {} answered HTTP {}", self.jwks_url, reply.status),
            ));
        }
        let set: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| Error::new(ErrorKind::MalformedResponse, "the JWKS is not JSON"))?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::new(ErrorKind::MalformedResponse, "the JWKS has no keys"))?;
        self.keys = keys
            .iter()
            .filter(|key| key.get("use").is_none_or(|u| u == "sig"))
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone().unwrap_or_default();
                DecodingKey::from_jwk(&jwk).ok().map(|key| (kid, key))
            })
            .collect();
        Ok(())
    }
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

    fn sign(kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    /// A verifier with the test key cached as `k1` and a JWKS URL nothing answers, so
    /// that any fetch shows as a transport error.
    fn verifier() -> IdTokenVerifier {
        let mut verifier = IdTokenVerifier::new(
            "https://idp.example.com",
            "my-cli",
            "http://127.0.0.1:9/jwks",
        );
        verifier.keys.insert(
            "k1".to_owned(),
            DecodingKey::from_ec_pem(PUBLIC.as_bytes()).unwrap(),
        );
        verifier
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

    #[test]
    fn each_claim_is_checked() {
        let cases = [
            ("iss", json!("https://evil.example.com")),
            ("aud", json!("someone-else")),
            ("exp", json!(now() - 3600)),
            ("nonce", json!("replayed")),
            ("token_use", json!("access")),
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

    #[test]
    fn an_unknown_kid_fetches_the_jwks_again() {
        let err = verifier()
            .verify(&no_retry(), &sign("rotated", &claims()), None)
            .unwrap_err();
        // The fetch was tried (nothing listens there).
        assert_eq!(err.kind(), ErrorKind::Transport);
    }
}
