//! Interoperability with oidc-provider (npm, OpenID Certified), run from
//! tests/peers/oidc/server.mjs on loopback: discovery, client credentials with basic and
//! post authentication, scopes, refresh with rotation, and its error responses.

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
