//! The SRP authorizer end to end against the local identity provider, which really
//! verifies the password proof.

#![cfg(feature = "testing")]

use std::time::{Duration, SystemTime};

use en_core_auth::srp::{Challenge, CognitoError, SrpAuthorizer};
use en_core_auth::testing::{Fault, LocalIdp, Operation, User, UserStatus, totp_code};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind};

const POOL: &str = "us-east-1_Local";
const TOTP_SECRET: &[u8] = b"12345678901234567890";

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .cognito_issuer(true)
        .pool_id(POOL)
        .client("public-client", None)
        .client("secret-client", Some("client-s3cret"))
        .user("alice", "Passw0rd!")
        .user_with(User::new("bob", "Pw0rd!").status(UserStatus::ForceChangePassword))
        .user_with(User::new("carol", "Car0l!").totp_secret(TOTP_SECRET.to_vec()))
        .user_with(User::new("dave", "D4ve!").sms_mfa_code("424242"))
        .user_with(User::new("erin", "Er1n!").email("erin@example.com"))
        .user_with(User::new("frank", "Fr4nk!").status(UserStatus::Unconfirmed))
        .start()
        .unwrap()
}

fn login(idp: &LocalIdp, client: ClientInfo, user: &str, password: &str) -> SrpAuthorizer {
    SrpAuthorizer::new(client, POOL, user, password)
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
}

/// alice, through the app client without a secret.
fn alice(idp: &LocalIdp) -> SrpAuthorizer {
    login(
        idp,
        ClientInfo::new("public-client", ""),
        "alice",
        "Passw0rd!",
    )
}

fn cognito_code(error: &Error) -> Option<String> {
    error
        .downcast_ref::<CognitoError>()
        .map(|e| e.code().to_owned())
}

fn agent(auth: &AuthMiddleware) -> ureq::Agent {
    ureq::Agent::config_builder()
        .middleware(auth.clone())
        .build()
        .into()
}

#[test]
fn logs_in_and_calls_the_protected_resource() {
    let idp = idp();
    let auth = AuthMiddleware::new(login(
        &idp,
        ClientInfo::new("public-client", "").with_api_key("k"),
        "alice",
        "Passw0rd!",
    ));
    let token = auth.access_token().unwrap();
    assert!(idp.verify_access_token(&token));
    let status = agent(&auth)
        .get(idp.protected_url())
        .call()
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(idp.last_api_key().as_deref(), Some("k"));
    assert_eq!(idp.last_token_use().as_deref(), Some("access"));
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
}

#[test]
fn a_wrong_password_is_rejected_with_cognitos_message() {
    let idp = idp();
    let mut authorizer = login(&idp, ClientInfo::new("public-client", ""), "alice", "wrong");
    let error = authorizer.authorize().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        cognito_code(&error).as_deref(),
        Some("NotAuthorizedException")
    );
    assert!(
        !error.to_string().contains("wrong"),
        "the password never appears: {error}"
    );
}

#[test]
fn unknown_and_unconfirmed_users_are_typed_errors() {
    let idp = idp();
    let error = login(&idp, ClientInfo::new("public-client", ""), "nobody", "x")
        .authorize()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        cognito_code(&error).as_deref(),
        Some("UserNotFoundException")
    );
    let error = login(
        &idp,
        ClientInfo::new("public-client", ""),
        "frank",
        "Fr4nk!",
    )
    .authorize()
    .unwrap_err();
    assert_eq!(
        cognito_code(&error).as_deref(),
        Some("UserNotConfirmedException")
    );
}

#[test]
fn secret_hash_is_sent_when_the_client_has_a_secret() {
    let idp = idp();
    let mut good = login(
        &idp,
        ClientInfo::new("secret-client", "client-s3cret"),
        "alice",
        "Passw0rd!",
    );
    assert!(good.authorize().is_ok());
    let mut bad = login(
        &idp,
        ClientInfo::new("secret-client", "not-the-secret"),
        "alice",
        "Passw0rd!",
    );
    let error = bad.authorize().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    assert!(!error.to_string().contains("not-the-secret"));
}

#[test]
fn an_email_alias_logs_in_and_refreshes_with_the_real_user_name() {
    let idp = idp();
    let auth = AuthMiddleware::new(login(
        &idp,
        ClientInfo::new("secret-client", "client-s3cret"),
        "erin@example.com",
        "Er1n!",
    ));
    let first = auth.access_token().unwrap();
    auth.invalidate();
    let second = auth.access_token().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        auth.token_requests(),
        en_core_auth::base::TokenRequests {
            authorize: 1,
            refresh: 1
        },
        "renewed by refresh, not by a new login"
    );
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
}

#[test]
fn the_id_token_goes_in_the_header_when_asked() {
    let idp = idp();
    let auth = AuthMiddleware::builder(alice(&idp)).use_id_token().build();
    assert_eq!(
        agent(&auth)
            .get(idp.protected_url())
            .call()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(idp.last_token_use().as_deref(), Some("id"));
}

#[test]
fn refresh_uses_the_refresh_token_and_keeps_it() {
    let idp = idp();
    let auth = AuthMiddleware::new(alice(&idp));
    let first = auth.token().unwrap();
    auth.invalidate();
    let second = auth.token().unwrap();
    assert_ne!(first.access_token(), second.access_token());
    assert_eq!(
        second.refresh_token(),
        first.refresh_token(),
        "Cognito's refresh returns no new refresh token"
    );
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
}

#[test]
fn a_revoked_refresh_token_falls_back_to_a_full_login() {
    let idp = idp();
    let auth = AuthMiddleware::new(alice(&idp));
    auth.access_token().unwrap();
    idp.revoke_refresh_tokens();
    auth.invalidate();
    let token = auth.access_token().unwrap();
    assert!(idp.verify_access_token(&token));
    assert_eq!(
        auth.token_requests(),
        en_core_auth::base::TokenRequests {
            authorize: 2,
            refresh: 1
        }
    );
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 2);
}

#[test]
fn an_expired_token_rejected_by_the_api_is_renewed_and_the_request_resent() {
    let idp = idp();
    let auth = AuthMiddleware::new(alice(&idp));
    let agent = agent(&auth);
    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    idp.expire_all_tokens();
    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    assert_eq!(idp.rejected_protected_requests(), 1);
    assert_eq!(idp.requests(Operation::Protected), 3);
}

#[test]
fn new_password_required_with_and_without_a_handler() {
    let idp = idp();
    let error = login(&idp, ClientInfo::new("public-client", ""), "bob", "Pw0rd!")
        .authorize()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChallengeRequired);
    assert!(
        error.to_string().contains("NEW_PASSWORD_REQUIRED"),
        "{error}"
    );

    let mut answered = login(&idp, ClientInfo::new("public-client", ""), "bob", "Pw0rd!")
        .with_challenge_handler(|challenge: &Challenge| {
            assert_eq!(*challenge, Challenge::NewPasswordRequired);
            Ok("N3w-Passw0rd!".to_owned())
        });
    let token = answered.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    // The same authorizer logs in again with the new password, with no challenge (the
    // handler above would accept only NEW_PASSWORD_REQUIRED, and the pool asks nothing now).
    let again = answered.authorize().unwrap();
    assert!(idp.verify_access_token(again.access_token()));
    assert_eq!(idp.failed_logins("bob"), 0);
    // The new password is now the password.
    assert!(
        login(
            &idp,
            ClientInfo::new("public-client", ""),
            "bob",
            "N3w-Passw0rd!"
        )
        .authorize()
        .is_ok()
    );
}

#[test]
fn software_token_mfa_with_and_without_a_handler() {
    let idp = idp();
    let error = login(
        &idp,
        ClientInfo::new("secret-client", "client-s3cret"),
        "carol",
        "Car0l!",
    )
    .authorize()
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChallengeRequired);
    assert!(error.to_string().contains("SOFTWARE_TOKEN_MFA"), "{error}");

    let mut answered = login(
        &idp,
        ClientInfo::new("secret-client", "client-s3cret"),
        "carol",
        "Car0l!",
    )
    .with_challenge_handler(|_: &Challenge| Ok(totp_code(TOTP_SECRET, SystemTime::now())));
    assert!(answered.authorize().is_ok());

    let mut wrong = login(
        &idp,
        ClientInfo::new("secret-client", "client-s3cret"),
        "carol",
        "Car0l!",
    )
    .with_challenge_handler(|_: &Challenge| Ok("000000".to_owned()));
    // A wrong code might collide with the real one once in a million runs; a real code never fails.
    if totp_code(TOTP_SECRET, SystemTime::now()) != "000000" {
        assert_eq!(
            wrong.authorize().unwrap_err().kind(),
            ErrorKind::CredentialsRejected
        );
    }
}

#[test]
fn sms_mfa_with_and_without_a_handler() {
    let idp = idp();
    let error = login(&idp, ClientInfo::new("public-client", ""), "dave", "D4ve!")
        .authorize()
        .unwrap_err();
    assert!(error.to_string().contains("SMS_MFA"), "{error}");
    let mut answered = login(&idp, ClientInfo::new("public-client", ""), "dave", "D4ve!")
        .with_challenge_handler(|challenge: &Challenge| {
            assert!(matches!(challenge, Challenge::SmsMfa { .. }));
            Ok("424242".to_owned())
        });
    assert!(answered.authorize().is_ok());
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let idp = idp();
    let mut authorizer = alice(&idp);
    idp.fail_next(1, Fault::TooManyRequests { retry_after: None });
    assert!(authorizer.authorize().is_ok());
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    idp.fail_next(1, Fault::Status(500));
    assert!(authorizer.authorize().is_ok());
    assert_eq!(idp.requests(Operation::InitiateAuth), 4);
}

#[test]
fn garbage_and_dropped_connections_are_typed_errors() {
    let idp = idp();
    let quick =
        en_core_auth::http::HttpClient::new().with_retry(en_core_auth::http::RetryPolicy::none());
    let mut authorizer = alice(&idp).with_http_client(quick.clone());
    idp.fail_next(1, Fault::MalformedBody);
    assert_eq!(
        authorizer.authorize().unwrap_err().kind(),
        ErrorKind::MalformedResponse
    );
    idp.fail_next(1, Fault::DropConnection);
    assert_eq!(
        authorizer.authorize().unwrap_err().kind(),
        ErrorKind::Transport
    );
    let slow = quick.with_timeouts(Duration::from_secs(1), Duration::from_millis(300));
    let mut authorizer = authorizer.with_http_client(slow);
    idp.fail_next(1, Fault::Delay(Duration::from_secs(2)));
    assert_eq!(
        authorizer.authorize().unwrap_err().kind(),
        ErrorKind::Transport
    );
}

// ID tokens verified where they are obtained (issue 12 point 4): the pool's JWKS, `iss`,
// `aud` = the client id, `token_use` = `id`, `exp`.

#[test]
fn id_tokens_are_verified_with_one_jwks_fetch_for_many_logins_and_refreshes() {
    let idp = idp();
    let mut login = alice(&idp);
    assert!(login.verifies_id_tokens());
    assert_eq!(login.issuer(), idp.issuer());
    let first = login.authorize().unwrap();
    assert!(first.id_token().is_some());
    for _ in 0..3 {
        login.authorize().unwrap();
    }
    let refreshed = login.refresh(&first).unwrap();
    assert!(refreshed.id_token().is_some());
    assert_eq!(idp.requests(Operation::Jwks), 1);
    assert_eq!(idp.requests(Operation::InitiateAuth), 5);
}

#[test]
fn a_forged_or_misaddressed_id_token_is_a_malformed_response() {
    use en_core_auth::testing::IdTokenSigning;
    let idp = idp();
    for how in [
        IdTokenSigning::ForeignKey,
        IdTokenSigning::WrongAudience,
        IdTokenSigning::WrongIssuer,
        IdTokenSigning::WrongTokenUse,
    ] {
        idp.sign_id_tokens(how).unwrap();
        let error = alice(&idp).authorize().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MalformedResponse, "{how:?}");
        assert!(error.to_string().contains("ID token"), "{how:?}: {error}");
    }
}

#[test]
fn a_refreshed_id_token_is_verified_too() {
    use en_core_auth::testing::IdTokenSigning;
    let idp = idp();
    let mut login = alice(&idp);
    let token = login.authorize().unwrap();
    idp.sign_id_tokens(IdTokenSigning::WrongAudience).unwrap();
    let error = login.refresh(&token).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MalformedResponse);
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
}

#[test]
fn the_middleware_never_sends_an_id_token_that_failed() {
    use en_core_auth::testing::IdTokenSigning;
    let idp = idp();
    idp.sign_id_tokens(IdTokenSigning::ForeignKey).unwrap();
    let auth = AuthMiddleware::builder(alice(&idp)).use_id_token().build();
    assert!(agent(&auth).get(idp.protected_url()).call().is_err());
    assert_eq!(idp.requests(Operation::Protected), 0);
    assert_eq!(
        auth.token().unwrap_err().kind(),
        ErrorKind::MalformedResponse
    );
}

#[test]
fn a_rotated_key_is_fetched_once_when_a_token_names_it() {
    use en_core_auth::testing::IdTokenSigning;
    let idp = idp();
    let mut login = alice(&idp);
    login.authorize().unwrap();
    assert_eq!(idp.requests(Operation::Jwks), 1);
    idp.sign_id_tokens(IdTokenSigning::RotatedKey).unwrap();
    login.authorize().unwrap();
    assert_eq!(idp.requests(Operation::Jwks), 2);
    login.authorize().unwrap();
    assert_eq!(idp.requests(Operation::Jwks), 2);
}

#[test]
fn the_issuer_can_be_given_when_the_endpoint_does_not_say_it() {
    // A LocalIdp that issues as its bare URL: the derived `<endpoint>/<pool id>` is wrong,
    // and the login fails closed until the issuer is given.
    let idp = LocalIdp::builder()
        .cognito_issuer(false)
        .pool_id(POOL)
        .client("public-client", None)
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    let error = alice(&idp).authorize().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MalformedResponse);
    // The error says what was expected, what came, and what to change.
    let message = error.to_string();
    for part in [
        format!("`{}/{POOL}`", idp.url()),
        format!("`{}`", idp.issuer()),
        "with_issuer".to_owned(),
    ] {
        assert!(message.contains(&part), "{part} missing from: {message}");
    }
    let token = alice(&idp).with_issuer(idp.issuer()).authorize().unwrap();
    assert!(token.id_token().is_some());
}

/// What a new user writes first, from the README: a LocalIdp with its defaults and an
/// authorizer pointed at it. Its ID tokens must verify without any issuer option.
#[test]
fn the_obvious_code_logs_in_against_a_local_idp_with_its_defaults() {
    let idp = LocalIdp::builder()
        .client("my-app", None)
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    let login = SrpAuthorizer::new(
        ClientInfo::new("my-app", ""),
        idp.pool_id(),
        "alice",
        "Passw0rd!",
    )
    .unwrap()
    .with_endpoint(idp.url())
    .unwrap();
    assert!(login.verifies_id_tokens());
    let auth = AuthMiddleware::new(login);
    let agent = auth.agent(ureq::Agent::config_builder());
    let reply = agent.get(idp.protected_url()).call().unwrap();
    assert_eq!(reply.status(), 200);
    assert!(auth.token().unwrap().id_token().is_some());
    assert_eq!(idp.requests(Operation::Jwks), 1);
}
