//! `private_key_jwt` client authentication (RFC 7523 section 2.2, OpenID Connect Core 9): the
//! client signs a short-lived JWT with its private key; the server checks it with the public
//! key it was given.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::State;
use crate::{Error, ErrorKind};

/// The only `client_assertion_type` RFC 7523 defines.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Assertions valid for longer than this are refused: RFC 7523 wants them short-lived.
const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// A client's public key and the algorithms it may sign with.
pub(crate) struct AssertionKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl AssertionKey {
    /// Reads an RSA (`RS*`, `PS*`) or EC (`ES256`, `ES384`) public key in PEM.
    pub(crate) fn from_pem(pem: &str) -> Result<AssertionKey, Error> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
            return Ok(AssertionKey {
                key,
                algorithms: crate::oauth2::id_token::RSA_ALGORITHMS.to_vec(),
            });
        }
        match DecodingKey::from_ec_pem(pem.as_bytes()) {
            Ok(key) => Ok(AssertionKey {
                key,
                algorithms: vec![Algorithm::ES256, Algorithm::ES384],
            }),
            Err(e) => Err(Error::new(
                ErrorKind::Configuration,
                format!("not an RSA or EC public key in PEM: {e}"),
            )),
        }
    }
}

/// `jti`s already used, with when they stop mattering (their `exp`).
pub(crate) type SeenAssertions = HashMap<String, u64>;

/// The client id a `client_assertion` authenticates, or why it doesn't (a description for
/// `invalid_client`; never the assertion itself).
pub(crate) fn verify(
    state: &State,
    assertion: &str,
    claimed_client: Option<&str>,
) -> Result<String, &'static str> {
    // The client is named by `client_id` or, when absent, by the assertion's own `sub`; which
    // key checks the signature depends on it, so read it before verifying.
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| "client_assertion is not a JWT")?;
    let client_id = match claimed_client {
        Some(id) => id.to_owned(),
        None => unverified["sub"]
            .as_str()
            .ok_or("client_assertion has no sub")?
            .to_owned(),
    };
    let key = state
        .clients
        .get(&client_id)
        .and_then(|client| client.assertion_key.as_ref())
        .ok_or("the client is unknown or has no public key")?;
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| "client_assertion is not a JWT")?;
    if !key.algorithms.contains(&header.alg) {
        return Err("client_assertion is signed with an algorithm the client's key can't use");
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[&client_id]);
    validation.sub = Some(client_id.clone());
    // RFC 7523 2.2: the audience identifies the server; the token endpoint URL or the issuer.
    validation.set_audience(&[format!("{}/oauth2/token", state.url), state.issuer.clone()]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key.key, &validation)
        .map_err(|_| "client_assertion failed verification (signature, iss, sub, aud or exp)")?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp > now + MAX_LIFETIME.as_secs() {
        return Err("client_assertion lives too long");
    }
    let jti = claims["jti"]
        .as_str()
        .ok_or("client_assertion has no jti")?;
    let mut seen = state.seen_assertions.lock();
    seen.retain(|_, expiry| *expiry + 60 > now);
    if seen.insert(jti.to_owned(), exp).is_some() {
        return Err("client_assertion was used before (jti)");
    }
    Ok(client_id)
}
