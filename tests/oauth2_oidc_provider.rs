//! Interoperability with oidc-provider (npm, OpenID Certified), run from
//! tests/peers/oidc/server.mjs on loopback: discovery, client credentials with basic and
//! post authentication, scopes, refresh with rotation, and its error responses;
//! private_key_jwt addressed to the issuer; DPoP-bound tokens (nonces required) checked by
//! an independent resource endpoint; token exchange and JWT bearer grants.

#[path = "support/oidc_peer.rs"]
mod peer;

use std::time::Duration;

use en_core_auth::oauth2::{ClientAuth, ClientCredentials, OAuthError, RefreshToken};
use en_core_auth::{Authorizer, ClientInfo, ErrorKind, Token};

fn client((id, secret): (&str, &str)) -> ClientInfo {
    ClientInfo::new(id, secret)
}

#[test]
fn discovery_finds_the_token_endpoint() {
    let Some(peer) = peer::start() else { return };
    let mut auth = ClientCredentials::discover(client(peer::BASIC_CLIENT), &peer.issuer)
        .unwrap()
        .with_scopes(["read"]);
    assert_eq!(auth.token_url(), peer.token_url());
    let token = auth.authorize().unwrap();
    assert_eq!(token.scope(), Some("read"));
}

#[test]
fn client_credentials_with_basic_authentication() {
    let Some(peer) = peer::start() else { return };
    let mut auth = ClientCredentials::new(client(peer::BASIC_CLIENT), peer.token_url())
        .unwrap()
        .with_scopes(["read", "write"]);
    let token = auth.authorize().unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scope(), Some("read write"));
    // server.mjs sets a 600 s lifetime.
    let lifetime = token.lifetime().unwrap();
    assert!(lifetime <= Duration::from_secs(600) && lifetime > Duration::from_secs(500));
    // The access token is a JWT for the configured resource (three parts).
    assert_eq!(token.access_token().split('.').count(), 3);
}

#[test]
fn client_credentials_with_post_authentication() {
    let Some(peer) = peer::start() else { return };
    let mut auth = ClientCredentials::new(client(peer::POST_CLIENT), peer.token_url())
        .unwrap()
        .with_client_auth(ClientAuth::SecretPost)
        .with_scopes(["write"]);
    let token = auth.authorize().unwrap();
    assert_eq!(token.scope(), Some("write"));
    // With no refresh token, refresh is a new grant.
    let renewed = auth.refresh(&token).unwrap();
    assert_ne!(renewed.access_token(), token.access_token());
}

#[test]
fn a_wrong_secret_is_invalid_client() {
    let Some(peer) = peer::start() else { return };
    let mut auth = ClientCredentials::new(
        ClientInfo::new(peer::BASIC_CLIENT.0, "not-the-s3cr3t"),
        peer.token_url(),
    )
    .unwrap();
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    let oauth = err.downcast_ref::<OAuthError>().unwrap();
    assert_eq!(oauth.error(), "invalid_client");
    assert_eq!(oauth.status(), 401);
    assert!(!err.to_string().contains("not-the-s3cr3t"));
}

#[test]
fn a_scope_the_client_may_not_have_is_invalid_scope() {
    let Some(peer) = peer::start() else { return };
    let err = ClientCredentials::new(client(peer::BASIC_CLIENT), peer.token_url())
        .unwrap()
        // Known to the server, not allowed to this client (oidc-provider drops scopes it
        // does not know at all, so an unknown one would not do).
        .with_scopes(["offline_access"])
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_scope"
    );
}

#[test]
fn refresh_tokens_rotate_and_a_reused_one_is_rejected() {
    let Some(peer) = peer::start() else { return };
    let original = peer.refresh_token.clone();
    let mut auth =
        RefreshToken::new(client(peer::REFRESH_CLIENT), peer.token_url(), &original).unwrap();
    let first = auth.authorize().unwrap();
    assert!(first.id_token().is_some(), "openid scope gives an ID token");
    let rotated = auth.refresh_token().to_owned();
    assert_ne!(rotated, original, "server.mjs rotates refresh tokens");
    assert_eq!(first.refresh_token(), Some(rotated.as_str()));

    let second = auth.refresh(&first).unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_ne!(auth.refresh_token(), rotated);

    // The first refresh token was used up: oidc-provider refuses it (and, seeing reuse,
    // revokes the whole grant).
    let mut replay =
        RefreshToken::new(client(peer::REFRESH_CLIENT), peer.token_url(), original).unwrap();
    let err = replay.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_grant"
    );
    let err = auth.refresh(&Token::new("x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected, "grant revoked");
}

#[cfg(feature = "jwt")]
#[test]
fn client_credentials_with_private_key_jwt() {
    use en_core_auth::oauth2::PrivateKeyJwt;
    use jsonwebtoken::{Algorithm, EncodingKey};

    let Some(peer) = peer::start() else { return };
    let key = EncodingKey::from_ec_pem(peer.jwt_client_key.as_bytes()).unwrap();
    let jwt = PrivateKeyJwt::new(key, Algorithm::ES256).with_key_id("jwt-client-key");
    let mut auth = ClientCredentials::new(ClientInfo::new("jwt-client", ""), peer.token_url())
        .unwrap()
        .with_client_auth(ClientAuth::PrivateKeyJwt(jwt))
        .with_scopes(["read"]);
    let token = auth.authorize().unwrap();
    assert_eq!(token.scope(), Some("read"));
    // A second request needs a fresh assertion (oidc-provider refuses a replayed jti).
    assert!(auth.authorize().is_ok());
}

#[cfg(feature = "jwt")]
#[test]
fn private_key_jwt_with_the_wrong_key_is_invalid_client() {
    use en_core_auth::oauth2::PrivateKeyJwt;
    use jsonwebtoken::{Algorithm, EncodingKey};

    let Some(peer) = peer::start() else { return };
    let other = peer::start().unwrap();
    let key = EncodingKey::from_ec_pem(other.jwt_client_key.as_bytes()).unwrap();
    let jwt = PrivateKeyJwt::new(key, Algorithm::ES256).with_key_id("jwt-client-key");
    let err = ClientCredentials::new(ClientInfo::new("jwt-client", ""), peer.token_url())
        .unwrap()
        .with_client_auth(ClientAuth::PrivateKeyJwt(jwt))
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_client"
    );
}

#[cfg(feature = "jwt")]
#[test]
fn private_key_jwt_after_discovery_is_addressed_to_the_issuer() {
    use en_core_auth::oauth2::PrivateKeyJwt;
    use jsonwebtoken::{Algorithm, EncodingKey};

    let Some(peer) = peer::start() else { return };
    let key = EncodingKey::from_ec_pem(peer.jwt_client_key.as_bytes()).unwrap();
    let jwt = PrivateKeyJwt::new(key, Algorithm::ES256).with_key_id("jwt-client-key");
    let mut auth = ClientCredentials::builder(ClientInfo::new("jwt-client", ""))
        .issuer(&peer.issuer)
        .client_auth(ClientAuth::PrivateKeyJwt(jwt))
        .build()
        .unwrap();
    assert!(auth.authorize().is_ok());
}

/// DPoP against oidc-provider (server.mjs turns it on, with nonces required) and its
/// `/resource` endpoint, which checks proofs and bound tokens with `jose` on its own.
#[cfg(feature = "jwt")]
mod dpop {
    use super::*;
    use en_core_auth::oauth2::DpopKey;

    pub const DPOP_CLIENT: (&str, &str) = ("dpop-client", "dpop:se+cret%4");

    use peer::jkt;

    /// GET /resource with a proof from `key`; (status, body, DPoP-Nonce).
    fn call(url: &str, token: &str, proof: &str) -> (u16, serde_json::Value, Option<String>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .call()
            .unwrap();
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.body_mut().read_json().unwrap();
        (response.status().as_u16(), body, nonce)
    }

    #[test]
    fn client_credentials_get_bound_tokens_that_the_resource_accepts() {
        let Some(peer) = peer::start() else { return };
        let key = DpopKey::generate().unwrap();
        let mut auth = ClientCredentials::new(client(DPOP_CLIENT), peer.token_url())
            .unwrap()
            .with_dpop(key.clone())
            .with_scopes(["read"]);
        // The token endpoint requires a nonce: the first proof is refused with
        // use_dpop_nonce, the second carries it.
        let token = auth.authorize().unwrap();
        assert_eq!(token.token_type(), "DPoP");
        assert_eq!(jkt(token.access_token()), key.thumbprint());
        // The nonce is kept: the next token costs one request, and still works.
        let again = auth.authorize().unwrap();
        assert_eq!(jkt(again.access_token()), key.thumbprint());

        let url = format!("{}/resource?q=1#f", peer.issuer);
        let (status, body, nonce) = call(
            &url,
            token.access_token(),
            &key.proof("GET", &url, token.access_token()).unwrap(),
        );
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "use_dpop_nonce");
        key.use_nonce(&url, nonce.unwrap()).unwrap();
        let proof = key.proof("GET", &url, token.access_token()).unwrap();
        let (status, body, _) = call(&url, token.access_token(), &proof);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jkt"], key.thumbprint());
        // The same proof again is a replay.
        let (status, body, _) = call(&url, token.access_token(), &proof);
        assert_eq!(
            (status, body["error_description"].as_str()),
            (401, Some("jti replayed"))
        );
        // A proof from another key does not match the token's binding.
        let thief = DpopKey::generate().unwrap();
        thief
            .use_nonce(&url, key_nonce(&url, &thief, token.access_token()))
            .unwrap();
        let (status, body, _) = call(
            &url,
            token.access_token(),
            &thief.proof("GET", &url, token.access_token()).unwrap(),
        );
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_token", "{body}");
    }

    /// The resource's current nonce, learnt with a throwaway proof.
    fn key_nonce(url: &str, key: &DpopKey, token: &str) -> String {
        let (_, _, nonce) = call(url, token, &key.proof("GET", url, token).unwrap());
        nonce.unwrap()
    }

    #[test]
    fn a_dpop_only_client_without_a_key_is_refused() {
        let Some(peer) = peer::start() else { return };
        let err = ClientCredentials::new(client(DPOP_CLIENT), peer.token_url())
            .unwrap()
            .authorize()
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Configuration | ErrorKind::CredentialsRejected
            ),
            "{err}"
        );
    }

    #[test]
    fn refresh_with_a_key_gives_bound_tokens() {
        let Some(peer) = peer::start() else { return };
        let key = DpopKey::generate().unwrap();
        let mut auth = RefreshToken::new(
            client(peer::REFRESH_CLIENT),
            peer.token_url(),
            peer.refresh_token.clone(),
        )
        .unwrap()
        .with_dpop(key.clone());
        let token = auth.authorize().unwrap();
        assert_eq!(token.token_type(), "DPoP");
        assert_eq!(jkt(token.access_token()), key.thumbprint());
    }

    /// End to end through the agent: the middleware sends a fresh proof of the token's key
    /// with every request, and resends once on `use_dpop_nonce`; oidc-provider's resource
    /// check (with `jose`, not our code) accepts them.
    #[test]
    fn dpop_requests_through_the_agent() {
        let Some(peer) = peer::start() else { return };
        let key = DpopKey::generate().unwrap();
        let auth = en_core_auth::AuthMiddleware::new(
            ClientCredentials::new(client(DPOP_CLIENT), peer.token_url())
                .unwrap()
                .with_dpop(key.clone()),
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .middleware(auth)
            .build()
            .into();
        for _ in 0..3 {
            // The first answer is 401 use_dpop_nonce, resent once by the middleware with
            // the nonce; later requests carry it from the start. Each proof is fresh (the
            // resource refuses a replayed jti).
            let body: serde_json::Value = agent
                .get(format!("{}/resource?page=1", peer.issuer))
                .call()
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            assert_eq!(body["jkt"], key.thumbprint());
        }
    }
}

/// Workload identity against grants registered in server.mjs (oidc-provider has none
/// built in): token exchange of a JWT it issued, and a JWT bearer assertion.
mod workload {
    use super::*;
    use en_core_auth::oauth2::TokenExchange;

    const EXCHANGE_CLIENT: (&str, &str) = ("exchange-client", "exchange:se+cret%5");

    /// A JWT access token from the provider itself, as a CI system's token would be.
    fn subject_token(peer: &peer::OidcPeer) -> String {
        ClientCredentials::new(client(peer::BASIC_CLIENT), peer.token_url())
            .unwrap()
            .authorize()
            .unwrap()
            .access_token()
            .to_owned()
    }

    #[test]
    fn token_exchange_trades_a_subject_token_read_for_every_token() {
        let Some(peer) = peer::start() else { return };
        let subject = subject_token(&peer);
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&reads);
        let mut auth = TokenExchange::new(
            client(EXCHANGE_CLIENT),
            peer.token_url(),
            move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(subject.clone())
            },
            TokenExchange::JWT,
        )
        .unwrap()
        .with_audience("orders-api")
        .with_scopes(["read"]);
        let token = auth.authorize().unwrap();
        assert_eq!(token.scope(), Some("read"));
        let renewed = auth.refresh(&token).unwrap();
        assert_ne!(renewed.access_token(), token.access_token());
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn token_exchange_refusals_and_n_a() {
        let Some(peer) = peer::start() else { return };
        let subject = subject_token(&peer);
        let exchange = |subject: String, audience: &str| {
            TokenExchange::new(
                client(EXCHANGE_CLIENT),
                peer.token_url(),
                move || Ok(subject.clone()),
                TokenExchange::JWT,
            )
            .unwrap()
            .with_audience(audience)
        };
        let err = exchange("not-a-jwt".into(), "orders-api")
            .authorize()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
        assert_eq!(
            err.downcast_ref::<OAuthError>().unwrap().error(),
            "invalid_grant"
        );
        let err = exchange(subject, "orders-api")
            .with_requested_token_type(TokenExchange::ID_TOKEN)
            .authorize()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse, "N_A: {err}");
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn jwt_bearer_with_a_fresh_assertion_for_every_token() {
        use en_core_auth::oauth2::JwtBearer;
        use jsonwebtoken::{Algorithm, EncodingKey, Header};

        let Some(peer) = peer::start() else { return };
        let key = EncodingKey::from_ec_pem(peer.jwt_client_key.as_bytes()).unwrap();
        let issuer = peer.issuer.clone();
        let mut made = 0u64;
        let sign = move || {
            made += 1;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let claims = serde_json::json!({
                "iss": "jwt-client", "sub": "jwt-client", "aud": issuer,
                "iat": now, "exp": now + 60, "jti": format!("a-{made}"),
            });
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key)
                .map_err(en_core_auth::Error::other)
        };
        let mut auth = JwtBearer::new(client(EXCHANGE_CLIENT), peer.token_url(), sign)
            .unwrap()
            .with_scopes(["write"]);
        let token = auth.authorize().unwrap();
        assert_eq!(token.scope(), Some("write"));
        assert!(auth.refresh(&token).is_ok());

        let forged = JwtBearer::new(client(EXCHANGE_CLIENT), peer.token_url(), || {
            Ok("eyJhbGciOiJub25lIn0.eyJpc3MiOiJqd3QtY2xpZW50In0.".to_owned())
        })
        .unwrap()
        .authorize()
        .unwrap_err();
        assert_eq!(forged.kind(), ErrorKind::CredentialsRejected);
    }
}
