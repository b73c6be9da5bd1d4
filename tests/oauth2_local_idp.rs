//! The OAuth2 client against the crate's own local identity provider: discovery,
//! client credentials, refresh, a revoked refresh token, and the faults it can inject.
//! Counts requests, never wall-clock time.

#![cfg(feature = "testing")]

use std::time::Duration;

use en_core_auth::http::{HttpClient, RetryPolicy};
use en_core_auth::oauth2::{ClientAuth, ClientCredentials, OAuthError};
use en_core_auth::testing::{Fault, LocalIdp, Operation};
use en_core_auth::{Authorizer, ClientInfo, ErrorKind};

const ID: &str = "service";
const SECRET: &str = "s3cr:et+%";

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .client(ID, Some(SECRET))
        .token_ttl(Duration::from_secs(120))
        .start()
        .unwrap()
}

/// Retries without real waiting.
fn fast_http() -> HttpClient {
    HttpClient::new()
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(10))
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(30),
        })
}

fn authorizer(idp: &LocalIdp) -> ClientCredentials {
    ClientCredentials::new(ClientInfo::new(ID, SECRET), idp.token_url())
        .unwrap()
        .with_http_client(fast_http())
}

#[test]
fn client_credentials_give_a_token_the_server_accepts() {
    let idp = idp();
    for auth in [ClientAuth::SecretBasic, ClientAuth::SecretPost] {
        let token = authorizer(&idp).with_client_auth(auth).authorize().unwrap();
        assert!(idp.verify_access_token(token.access_token()));
        let lifetime = token.lifetime().unwrap();
        assert!(lifetime <= Duration::from_secs(120) && lifetime > Duration::from_secs(100));
    }
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn discovery_finds_the_token_endpoint() {
    let idp = idp();
    let mut auth = ClientCredentials::builder(ClientInfo::new(ID, SECRET))
        .issuer(idp.issuer())
        .http_client(fast_http())
        .build()
        .unwrap();
    assert_eq!(auth.token_url(), idp.token_url());
    assert!(idp.requests(Operation::Discovery) >= 1);
    assert!(auth.authorize().is_ok());
}

#[test]
fn refresh_uses_the_refresh_token() {
    let idp = idp();
    let mut auth = authorizer(&idp);
    let first = auth.authorize().unwrap();
    assert!(first.refresh_token().is_some());
    let second = auth.refresh(&first).unwrap();
    assert!(idp.verify_access_token(second.access_token()));
    assert_ne!(second.access_token(), first.access_token());
    assert!(second.refresh_token().is_some());
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_revoked_refresh_token_is_rejected_once() {
    let idp = idp();
    let mut auth = authorizer(&idp);
    let first = auth.authorize().unwrap();
    idp.revoke_refresh_tokens();
    let err = auth.refresh(&first).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_grant"
    );
    // No retry, and no fallback inside refresh(): that is the middleware's decision.
    assert_eq!(idp.requests(Operation::Token), 2);
    assert!(auth.authorize().is_ok());
}

#[test]
fn a_wrong_secret_is_invalid_client_and_not_retried() {
    let idp = idp();
    let err = ClientCredentials::new(ClientInfo::new(ID, "wrong"), idp.token_url())
        .unwrap()
        .with_http_client(fast_http())
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_client"
    );
    // Basic refused, then client_secret_post once (no method was chosen); never more.
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_wrong_secret_with_a_chosen_method_is_sent_once() {
    let idp = idp();
    let err = ClientCredentials::new(ClientInfo::new(ID, "wrong"), idp.token_url())
        .unwrap()
        .with_http_client(fast_http())
        .with_client_auth(en_core_auth::oauth2::ClientAuth::SecretBasic)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn a_500_is_retried() {
    let idp = idp();
    idp.fail_next(1, Fault::Status(500));
    assert!(authorizer(&idp).authorize().is_ok());
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn persistent_503s_end_as_a_server_error() {
    let idp = idp();
    idp.fail_next(10, Fault::Status(503));
    let err = authorizer(&idp).authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(idp.requests(Operation::Token), 3);
}

#[test]
fn a_429_with_retry_after_is_retried() {
    let idp = idp();
    idp.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after: Some(Duration::from_secs(1)),
        },
    );
    assert!(authorizer(&idp).authorize().is_ok());
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_retry_after_beyond_the_cap_ends_the_retries() {
    let idp = idp();
    idp.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after: Some(Duration::from_secs(60)),
        },
    );
    let err = authorizer(&idp).authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn a_401_fault_is_never_retried() {
    let idp = idp();
    idp.fail_next(3, Fault::Status(401));
    let err = authorizer(&idp)
        .with_client_auth(en_core_auth::oauth2::ClientAuth::SecretBasic)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn a_dropped_connection_is_retried() {
    let idp = idp();
    idp.fail_next(1, Fault::DropConnection);
    assert!(authorizer(&idp).authorize().is_ok());
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_slow_answer_is_a_transport_error() {
    let idp = idp();
    idp.fail_next(1, Fault::Delay(Duration::from_secs(3)));
    let impatient = HttpClient::new()
        .with_timeouts(Duration::from_millis(200), Duration::from_millis(300))
        .with_retry(RetryPolicy::none());
    let err = authorizer(&idp)
        .with_http_client(impatient)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn a_garbage_body_is_malformed_and_not_retried() {
    let idp = idp();
    idp.fail_next(1, Fault::MalformedBody);
    let err = authorizer(&idp).authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert_eq!(idp.requests(Operation::Token), 1);
}

/// Through the middleware: a refresh token the server revoked (`invalid_grant`) falls back
/// to a new client-credentials grant, and a token the API rejects is renewed and the
/// request resent once.
#[test]
fn through_the_middleware_invalid_grant_falls_back_and_a_401_is_recovered() {
    use en_core_auth::AuthMiddleware;
    let idp = LocalIdp::builder()
        .client("mw-client", Some("mw-secret"))
        .start()
        .unwrap();
    let authorizer =
        ClientCredentials::new(ClientInfo::new("mw-client", "mw-secret"), idp.token_url()).unwrap();
    let auth = AuthMiddleware::new(authorizer);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .middleware(auth.clone())
        .build()
        .into();

    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    assert_eq!(idp.requests(Operation::Token), 1);

    idp.revoke_refresh_tokens();
    auth.invalidate();
    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    assert_eq!(
        idp.requests(Operation::Token),
        3,
        "a refused refresh, then a new grant"
    );
    assert_eq!(
        auth.token_requests(),
        en_core_auth::base::TokenRequests {
            authorize: 2,
            refresh: 1
        }
    );

    idp.expire_all_tokens();
    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    assert_eq!(
        idp.rejected_protected_requests(),
        1,
        "one 401, then the resend succeeded"
    );
    assert_eq!(
        idp.requests(Operation::Token),
        4,
        "renewed once, by refresh"
    );
}
