//! Issuing access, ID and refresh tokens, and deciding whether a token is still good.
//!
//! Expiry is tracked here to the millisecond (the `exp` claim only has seconds), by the
//! token's `jti`: a token is good while its `jti` is known and its moment has not come.
//! [`Tokens::expire_all`] forgets every `jti`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{State, random_token};
use crate::Error;

/// Who a token is for.
#[derive(Clone, Debug)]
pub(crate) enum Grant {
    /// `client_credentials`: the client itself.
    Client {
        client_id: String,
        scope: Option<String>,
    },
    /// A Cognito login of `username` through `client_id`.
    User {
        client_id: String,
        username: String,
        /// When the user typed the password (or passed a device proof): Cognito keeps it
        /// across refreshes.
        auth_time: u64,
        /// The remembered device the tokens are bound to: refreshing them needs its key.
        device_key: Option<String>,
    },
    /// A browser or device login (authorization code, device code) of `username`: like
    /// `User`, with the scope asked for and the OpenID Connect `nonce` of the request.
    Login {
        client_id: String,
        username: String,
        scope: Option<String>,
        nonce: Option<String>,
    },
}

impl Grant {
    pub(crate) fn client_id(&self) -> &str {
        match self {
            Grant::Client { client_id, .. }
            | Grant::User { client_id, .. }
            | Grant::Login { client_id, .. } => client_id,
        }
    }
}

#[derive(Default)]
pub(crate) struct Tokens {
    /// `jti` of every live access and ID token, with the moment it expires.
    live: HashMap<String, SystemTime>,
    /// Refresh token to what it renews.
    refresh: HashMap<String, Grant>,
}

/// What a successful login or refresh hands out.
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) id_token: Option<String>,
    pub(crate) refresh_token: Option<String>,
    /// Whole seconds, as `expires_in` / `ExpiresIn`.
    pub(crate) expires_in: u64,
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Issues tokens for `grant`, with a new refresh token if `with_refresh`.
pub(crate) fn issue(state: &State, grant: &Grant, with_refresh: bool) -> Result<Issued, Error> {
    let now = SystemTime::now();
    let expires_at = now + state.token_ttl;
    let iat = unix_secs(now);
    // Rounded down: a client that trusts `exp` lets go before the server does.
    let exp = unix_secs(expires_at);
    let access_jti = random_token::<16>()?;
    let mut access = json!({
        "iss": state.issuer,
        "client_id": grant.client_id(),
        "token_use": "access",
        "iat": iat,
        "auth_time": iat,
        "exp": exp,
        "jti": access_jti,
    });
    let mut id_claims = None;
    match grant {
        Grant::Client { client_id, scope } => {
            access["sub"] = json!(client_id);
            if let Some(scope) = scope {
                access["scope"] = json!(scope);
            }
        }
        Grant::User {
            client_id,
            username,
            ..
        }
        | Grant::Login {
            client_id,
            username,
            ..
        } => {
            // A browser or device login is a fresh authentication each time it is issued.
            let (auth_time, device_key) = match grant {
                Grant::User {
                    auth_time,
                    device_key,
                    ..
                } => (*auth_time, device_key.as_deref()),
                _ => (iat, None),
            };
            let (sub, email) = {
                let users = state.users.lock();
                let record = users.get(username);
                (
                    record.map(|r| r.sub.clone()).unwrap_or_default(),
                    record.and_then(|r| r.user.email.clone()),
                )
            };
            // Claims as Cognito issues them: the access token names the user (`username`) and
            // the app client (`client_id`); the ID token has `cognito:username` and `aud`
            // instead, and neither `username` nor `client_id`.
            access["sub"] = json!(sub);
            access["username"] = json!(username);
            access["scope"] = json!("aws.cognito.signin.user.admin");
            access["origin_jti"] = json!(access_jti);
            access["auth_time"] = json!(auth_time);
            if let Some(device_key) = device_key {
                access["device_key"] = json!(device_key);
            }
            let mut id = json!({
                "iss": state.issuer,
                "sub": sub,
                "aud": client_id,
                "token_use": "id",
                "cognito:username": username,
                "iat": iat,
                "auth_time": auth_time,
                "exp": exp,
                "jti": random_token::<16>()?,
                "origin_jti": access_jti,
            });
            if let Some(email) = email {
                id["email"] = json!(email);
                id["email_verified"] = json!(true);
            }
            if let Grant::Login { scope, nonce, .. } = grant {
                if let Some(scope) = scope {
                    access["scope"] = json!(scope);
                }
                if let Some(nonce) = nonce {
                    id["nonce"] = json!(nonce);
                }
            }
            id_claims = Some(id);
        }
    }
    let access_token = state.signer.sign(&access)?;
    let id_token = id_claims
        .as_ref()
        .map(|claims| state.sign_id_token(claims))
        .transpose()?;
    let refresh_token = if with_refresh {
        Some(random_token::<32>()?)
    } else {
        None
    };

    let mut tokens = state.tokens.lock();
    tokens.live.insert(access_jti, expires_at);
    if let Some(jti) = id_claims.as_ref().and_then(|claims| claims["jti"].as_str()) {
        tokens.live.insert(jti.to_owned(), expires_at);
    }
    if let Some(refresh) = &refresh_token {
        tokens.refresh.insert(refresh.clone(), grant.clone());
    }
    // Forget what expired long ago, so a long-running server doesn't grow without bound.
    tokens
        .live
        .retain(|_, expiry| now < *expiry + Duration::from_secs(60));
    Ok(Issued {
        access_token,
        id_token,
        refresh_token,
        expires_in: state.token_ttl.as_secs(),
    })
}

/// What `refresh_token` renews, if it is live and belongs to `client_id`.
pub(crate) fn redeem_refresh(state: &State, refresh_token: &str, client_id: &str) -> Option<Grant> {
    let tokens = state.tokens.lock();
    let grant = tokens.refresh.get(refresh_token)?;
    (grant.client_id() == client_id).then(|| grant.clone())
}

/// Forgets `refresh_token` if it belongs to `client_id` (a rotation or a revocation): it
/// never works again. Whether it was live.
pub(crate) fn forget_refresh(state: &State, refresh_token: &str, client_id: &str) -> bool {
    let mut tokens = state.tokens.lock();
    let owned = tokens
        .refresh
        .get(refresh_token)
        .is_some_and(|grant| grant.client_id() == client_id);
    if owned {
        tokens.refresh.remove(refresh_token);
    }
    owned
}

/// The claims of `token` if `/protected` accepts it now.
pub(crate) fn check(state: &State, token: &str) -> Option<Value> {
    let claims = state.signer.verify(token, &state.issuer)?;
    let jti = claims["jti"].as_str()?;
    let expires_at = *state.tokens.lock().live.get(jti)?;
    (SystemTime::now() < expires_at).then_some(claims)
}

impl Tokens {
    /// RFC 7009 at the server: forgets `token` if it is a refresh token of `client_id`, or
    /// the access or ID token whose `jti` is `jti`. Unknown tokens are ignored, as the RFC
    /// asks.
    pub(crate) fn revoke(&mut self, token: &str, client_id: &str, jti: Option<&str>) {
        if self
            .refresh
            .get(token)
            .is_some_and(|grant| grant.client_id() == client_id)
        {
            self.refresh.remove(token);
        }
        if let Some(jti) = jti {
            self.live.remove(jti);
        }
    }

    pub(crate) fn expire_all(&mut self) {
        self.live.clear();
    }

    pub(crate) fn revoke_refresh_tokens(&mut self) {
        self.refresh.clear();
    }
}
