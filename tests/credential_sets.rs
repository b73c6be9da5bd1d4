//! Cache keys from the authorizers' own descriptions of their credential sets: every
//! parameter that changes the token changes the key, nothing else does, and a token stored
//! with one client secret is not handed out for another.

use std::time::Duration;

use en_core_auth::oauth2::{ClientCredentials, RefreshToken};
use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::store::{CacheKey, FileStore, TokenStore};
use en_core_auth::{Authorizer, ClientInfo, Token};

const URL: &str = "https://idp.example.com/oauth2/token";

fn client() -> ClientInfo {
    ClientInfo::new("app", "s3cr3t")
}

fn cc() -> ClientCredentials {
    ClientCredentials::new(client(), URL)
        .unwrap()
        .with_scopes(["read", "write"])
}

fn key(authorizer: &impl Authorizer) -> CacheKey {
    authorizer.credential_set().cache_key()
}

#[test]
fn client_credentials_keys_cover_every_parameter() {
    let base = key(&cc());
    // Same set: scopes in another order, a rotated secret.
    assert_eq!(base, key(&cc().with_scopes(["write", "read"])));
    assert_eq!(
        base,
        key(
            &ClientCredentials::new(ClientInfo::new("app", "rotated"), URL)
                .unwrap()
                .with_scopes(["read", "write"])
        )
    );
    let others = [
        key(&cc().with_parameter("audience", "https://orders.example.com")),
        key(&cc().with_parameter("audience", "https://billing.example.com")),
        key(&cc().with_parameter("resource", "https://orders.example.com")),
        key(&cc().with_scopes(["read"])),
        key(&ClientCredentials::new(ClientInfo::new("other-app", "s3cr3t"), URL).unwrap()),
        key(&ClientCredentials::new(client(), "https://idp.example.com/other/token").unwrap()),
        // Another grant at the same endpoint, for the same client.
        key(&RefreshToken::new(client(), URL, "r1").unwrap()),
    ];
    for (n, other) in others.iter().enumerate() {
        assert_ne!(&base, other, "case {n}");
        for later in &others[n + 1..] {
            assert_ne!(other, later);
        }
    }
}

#[test]
fn refresh_token_and_srp_keys() {
    let r1 = key(&RefreshToken::new(client(), URL, "r1").unwrap());
    let r2 = key(&RefreshToken::new(client(), URL, "r2").unwrap());
    assert_ne!(r1, r2, "two users' refresh tokens share a cached token");
    let srp = |user: &str, password: &str| {
        key(&SrpAuthorizer::new(client(), "eu-west-1_AbC", user, password).unwrap())
    };
    assert_eq!(srp("alice", "old-password"), srp("alice", "new-password"));
    assert_ne!(srp("alice", "p"), srp("bob", "p"));
    let other_pool = key(&SrpAuthorizer::new(client(), "eu-west-1_XyZ", "alice", "p").unwrap());
    assert_ne!(srp("alice", "p"), other_pool);
    // No credential in the Debug output of a credential set.
    let shown = format!(
        "{:?}",
        RefreshToken::new(client(), URL, "r3fr35h")
            .unwrap()
            .credential_set()
    );
    assert!(
        !shown.contains("r3fr35h") && !shown.contains("s3cr3t"),
        "{shown}"
    );
}

#[test]
fn a_file_cache_does_not_answer_a_rotated_secret_with_the_old_token() {
    let dir = std::env::temp_dir().join(format!("en-core-auth-rotation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let old = FileStore::in_dir(&dir, key(&cc()));
    old.save(&Token::new("from-old-secret").with_expires_in(Duration::from_secs(600)))
        .unwrap();
    assert_eq!(
        old.load().unwrap().unwrap().access_token(),
        "from-old-secret"
    );
    let text = std::fs::read_to_string(old.path()).unwrap();
    assert!(!text.contains("s3cr3t"));
    assert!(text.contains("\"client_secret\": \"v1:"), "{text}");
    let rotated = ClientCredentials::new(ClientInfo::new("app", "n3w-s3cr3t"), URL)
        .unwrap()
        .with_scopes(["read", "write"]);
    let new = FileStore::in_dir(&dir, key(&rotated));
    assert_eq!(
        new.path(),
        old.path(),
        "the same credential set, the same file"
    );
    assert!(new.load().unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
