//! The Cognito flows beyond a plain SRP login, against the local identity provider:
//! remembered devices, refresh-token rotation, single-use answers whose reply is lost, and
//! errors a user can act on.

#![cfg(feature = "testing")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use en_core_auth::srp::{Challenge, CognitoError, Device, SrpAuthorizer};
use en_core_auth::testing::{
    DeviceTracking, Fault, LocalIdp, LocalIdpBuilder, Operation, User, UserStatus, totp_code,
};
use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind, Token};

const POOL: &str = "us-east-1_Local";
const TOTP_SECRET: &[u8] = b"12345678901234567890";

fn builder() -> LocalIdpBuilder {
    LocalIdp::builder()
        .cognito_issuer(true)
        .pool_id(POOL)
        .client("public-client", None)
        .client("secret-client", Some("client-s3cret"))
        .user("alice", "Passw0rd!")
        .user_with(User::new("carol", "Car0l!").totp_secret(TOTP_SECRET.to_vec()))
        .user_with(User::new("reset", "R3set!").status(UserStatus::ResetRequired))
        .user_with(User::new("frank", "Fr4nk!").status(UserStatus::Unconfirmed))
}

fn login(idp: &LocalIdp, client: ClientInfo, user: &str, password: &str) -> SrpAuthorizer {
    SrpAuthorizer::new(client, POOL, user, password)
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
}

fn public() -> ClientInfo {
    ClientInfo::new("public-client", "")
}

fn cognito_error(error: &Error) -> CognitoError {
    error
        .downcast_ref::<CognitoError>()
        .unwrap_or_else(|| panic!("not a Cognito error: {error}"))
        .clone()
}

/// A TOTP handler that counts its calls. Each call answers with the code of a later
/// 30-second step than the one before: the pool refuses a code used once, and a test that
/// logs in twice within one step still gets a fresh code (the pool accepts one step ahead).
fn counting_totp_handler(
    calls: &Arc<AtomicUsize>,
) -> impl FnMut(&Challenge) -> Result<String, Error> + Send + 'static {
    let calls = calls.clone();
    move |challenge: &Challenge| {
        assert_eq!(*challenge, Challenge::SoftwareTokenMfa);
        let n = calls.fetch_add(1, Ordering::SeqCst) as u64;
        Ok(totp_code(
            TOTP_SECRET,
            SystemTime::now() + Duration::from_secs(30 * n.min(1)),
        ))
    }
}

fn claim(jwt: &str, name: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get(name)?.as_str().map(str::to_owned)
}

// ------------------------------------------------------------------ remembered devices

#[test]
fn mfa_is_asked_once_then_the_remembered_device_logs_in_without_the_handler() {
    let idp = builder()
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut first = login(&idp, public(), "carol", "Car0l!")
        .remember_device(true)
        .with_challenge_handler(counting_totp_handler(&calls));
    let token = first.authorize().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let device = first.device().expect("the login registered a device");
    // The pool asks the user (UserOptIn): ConfirmDevice, then UpdateDeviceStatus.
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    assert_eq!(idp.requests(Operation::UpdateDeviceStatus), 1);
    assert_eq!(
        idp.devices(),
        vec![(
            device.device_key().to_owned(),
            "carol".to_owned(),
            true,
            true
        )]
    );
    assert_eq!(
        claim(token.access_token(), "device_key").as_deref(),
        Some(device.device_key())
    );

    // A later run (a new authorizer, as a new process would build) with the stored device:
    // no MFA prompt, a device proof instead.
    let mut later = login(&idp, public(), "carol", "Car0l!")
        .with_device(device.clone())
        .with_challenge_handler(counting_totp_handler(&calls));
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let token = later.authorize().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler was not called"
    );
    assert!(idp.verify_access_token(token.access_token()));
    // PASSWORD_VERIFIER, DEVICE_SRP_AUTH, DEVICE_PASSWORD_VERIFIER.
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    assert_eq!(later.device(), Some(device.clone()));

    // The tokens are bound to the device: the refresh sends its key and works, in yet
    // another authorizer that never logged in.
    let mut refresher = login(&idp, public(), "carol", "Car0l!").with_device(device);
    let renewed = refresher.refresh(&token).unwrap();
    assert!(idp.verify_access_token(renewed.access_token()));
}

#[test]
fn a_device_refresh_token_is_refused_without_the_device_key() {
    let idp = builder()
        .device_tracking(DeviceTracking::Always)
        .start()
        .unwrap();
    let mut first = login(&idp, public(), "alice", "Passw0rd!").remember_device(true);
    let token = first.authorize().unwrap();
    // Always: ConfirmDevice says no user confirmation is needed.
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    assert_eq!(idp.requests(Operation::UpdateDeviceStatus), 0);
    assert!(first.device().is_some());
    assert!(first.refresh(&token).is_ok());

    // Without the access token's device_key claim to go by, the refresh has no key to send,
    // and Cognito refuses a device-bound refresh token without it.
    let bare = Token::new("opaque").with_refresh_token(token.refresh_token().unwrap());
    let refused = login(&idp, public(), "alice", "Passw0rd!")
        .refresh(&bare)
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        cognito_error(&refused).message(),
        Some("Invalid Refresh Token")
    );
}

#[test]
fn an_unknown_device_falls_back_to_mfa_and_registers_a_new_one() {
    let idp = builder()
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let gone = Device::new(
        "us-east-1_00000000-0000-4000-8000-000000000000",
        "-gone",
        "pw",
    );
    let mut authorizer = login(&idp, public(), "carol", "Car0l!")
        .with_device(gone.clone())
        .remember_device(true)
        .with_challenge_handler(counting_totp_handler(&calls));
    let token = authorizer.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "MFA was asked");
    let new_device = authorizer.device().unwrap();
    assert_ne!(new_device, gone);
    assert_eq!(idp.devices().len(), 1);
    // One InitiateAuth: the secret block was answered again without the device key.
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);
}

#[test]
fn a_wrong_device_password_is_refused() {
    let idp = builder()
        .device_tracking(DeviceTracking::Always)
        .start()
        .unwrap();
    let mut first = login(&idp, public(), "alice", "Passw0rd!").remember_device(true);
    first.authorize().unwrap();
    let device = first.device().unwrap();
    let forged = Device::new(device.device_key(), device.device_group_key(), "guessed");
    let error = login(&idp, public(), "alice", "Passw0rd!")
        .with_device(forged)
        .authorize()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(cognito_error(&error).code(), "NotAuthorizedException");
}

// ------------------------------------------------------------------ rotation

#[test]
fn rotation_is_detected_and_each_rotated_refresh_token_is_used_once() {
    let idp = builder()
        .client("rotating-client", Some("rot-s3cret"))
        .refresh_token_rotation("rotating-client")
        .start()
        .unwrap();
    let mut authorizer = login(
        &idp,
        ClientInfo::new("rotating-client", "rot-s3cret"),
        "alice",
        "Passw0rd!",
    );
    let mut token = authorizer.authorize().unwrap();
    let mut seen = vec![token.refresh_token().unwrap().to_owned()];
    for _ in 0..3 {
        let next = authorizer.refresh(&token).unwrap();
        let refresh = next.refresh_token().unwrap().to_owned();
        assert!(!seen.contains(&refresh), "a new refresh token each time");
        assert!(idp.verify_access_token(next.access_token()));
        // The old one is gone.
        assert_eq!(
            authorizer.refresh(&token).unwrap_err().kind(),
            ErrorKind::CredentialsRejected
        );
        seen.push(refresh);
        token = next;
    }
    // One REFRESH_TOKEN_AUTH taught the authorizer that the client rotates.
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    assert_eq!(idp.requests(Operation::GetTokensFromRefreshToken), 6);
}

#[test]
fn a_refresh_token_whose_rotation_answer_was_lost_is_never_sent_again() {
    let idp = builder()
        .client("rotating-client", None)
        .refresh_token_rotation("rotating-client")
        .start()
        .unwrap();
    let mut authorizer = login(
        &idp,
        ClientInfo::new("rotating-client", ""),
        "alice",
        "Passw0rd!",
    )
    .refresh_token_rotation(true);
    let token = authorizer.authorize().unwrap();
    idp.lose_next_answers(1, Operation::GetTokensFromRefreshToken);
    let lost = authorizer.refresh(&token).unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::Transport);
    assert_eq!(idp.requests(Operation::GetTokensFromRefreshToken), 1);
    // The same refresh token again: refused here, without a request, so the middleware
    // logs in instead.
    let again = authorizer.refresh(&token).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(idp.requests(Operation::GetTokensFromRefreshToken), 1);
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);
    // A 5xx is not retried either.
    let token = authorizer.authorize().unwrap();
    idp.fail_next(1, Fault::Status(500));
    assert_eq!(
        authorizer.refresh(&token).unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(idp.requests(Operation::GetTokensFromRefreshToken), 2);
}

// ------------------------------------------------------------------ single-use answers

#[test]
fn a_lost_challenge_answer_is_never_sent_twice_the_login_starts_over() {
    let idp = builder().start().unwrap();
    let mut authorizer = login(&idp, public(), "alice", "Passw0rd!");
    // The pool uses the secret block, then the answer is lost on the way back.
    idp.lose_next_answers(1, Operation::RespondToAuthChallenge);
    let token = authorizer.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 2);
    // A replayed answer would have been refused as a wrong password and counted.
    assert_eq!(idp.failed_logins("alice"), 0);

    // A 5xx and a dropped connection: not retried, the login starts over.
    for fault in [Fault::Status(500), Fault::DropConnection] {
        let (initiates, responds) = (
            idp.requests(Operation::InitiateAuth),
            idp.requests(Operation::RespondToAuthChallenge),
        );
        // One InitiateAuth passes, then the answer fails.
        idp.fail_next(1, Fault::Delay(Duration::ZERO));
        idp.fail_next(1, fault.clone());
        authorizer.authorize().unwrap();
        assert_eq!(
            idp.requests(Operation::InitiateAuth),
            initiates + 2,
            "{fault:?}"
        );
        assert_eq!(
            idp.requests(Operation::RespondToAuthChallenge),
            responds + 2,
            "{fault:?}"
        );
    }

    // Lost twice: a Transport error, not CredentialsRejected.
    idp.lose_next_answers(2, Operation::RespondToAuthChallenge);
    let error = authorizer.authorize().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    assert_eq!(idp.failed_logins("alice"), 0);
}

#[test]
fn a_lost_mfa_answer_starts_over_and_asks_for_a_new_code() {
    let idp = builder().start().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut authorizer = login(&idp, public(), "carol", "Car0l!")
        .with_challenge_handler(counting_totp_handler(&calls));
    // The password answer goes through; the MFA answer is used, then lost.
    idp.fail_next(2, Fault::Delay(Duration::ZERO));
    idp.fail_next(1, Fault::DropConnection);
    let token = authorizer.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
}

// ------------------------------------------------------------------ errors to act on

#[test]
fn errors_tell_the_user_what_to_do() {
    let idp = builder().start().unwrap();
    let cases = [
        (
            "reset",
            "R3set!",
            "PasswordResetRequiredException",
            "forgot-password",
        ),
        ("frank", "Fr4nk!", "UserNotConfirmedException", "confirm"),
        ("nobody", "x", "UserNotFoundException", "user pool id"),
    ];
    for (user, password, code, advice) in cases {
        let error = login(&idp, public(), user, password)
            .authorize()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::CredentialsRejected, "{user}");
        assert_eq!(cognito_error(&error).code(), code);
        assert!(error.to_string().contains(advice), "{error}");
    }

    for _ in 0..5 {
        let wrong = login(&idp, public(), "alice", "wrong")
            .authorize()
            .unwrap_err();
        assert!(!cognito_error(&wrong).is_locked_out());
    }
    let locked = login(&idp, public(), "alice", "Passw0rd!")
        .authorize()
        .unwrap_err();
    assert_eq!(locked.kind(), ErrorKind::CredentialsRejected);
    assert!(cognito_error(&locked).is_locked_out());
    assert!(locked.to_string().contains("wait"), "{locked}");
}

// ------------------------------------------------------------------ logout

#[test]
fn revoke_logs_out_with_revoke_token() {
    let idp = builder().start().unwrap();
    for client in [public(), ClientInfo::new("secret-client", "client-s3cret")] {
        let mut authorizer = login(&idp, client, "alice", "Passw0rd!");
        let token = authorizer.authorize().unwrap();
        assert!(authorizer.refresh(&token).is_ok());
        authorizer.revoke(&token).unwrap();
        let refused = authorizer.refresh(&token).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::CredentialsRejected);
        // Idempotent, as Cognito's is.
        authorizer.revoke(&token).unwrap();
    }
    assert_eq!(idp.requests(Operation::RevokeToken), 4);
    // A token without a refresh token: nothing to send.
    login(&idp, public(), "alice", "Passw0rd!")
        .revoke(&Token::new("access-only"))
        .unwrap();
    assert_eq!(idp.requests(Operation::RevokeToken), 4);
    // The wrong client secret is refused.
    let mut wrong = login(
        &idp,
        ClientInfo::new("secret-client", "not-the-secret"),
        "alice",
        "Passw0rd!",
    );
    let error = wrong
        .revoke(&Token::new("a").with_refresh_token("r"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
}

#[test]
fn the_device_is_kept_in_the_file_store_beside_the_token() {
    use en_core_auth::store::{CacheKey, FileStore};
    let idp = builder()
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("srp-flows-device-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = || {
        FileStore::in_dir(
            &dir,
            CacheKey::new(
                "cognito",
                "public-client",
                Some("carol"),
                Vec::<String>::new(),
            ),
        )
    };
    let calls = Arc::new(AtomicUsize::new(0));
    // Run 1: MFA, and the new device saved through the listener.
    let saver = store();
    login(&idp, public(), "carol", "Car0l!")
        .remember_device(true)
        .on_device_change(move |device| match device {
            Some(device) => saver.save_device(device).unwrap(),
            None => saver.clear_device().unwrap(),
        })
        .with_challenge_handler(counting_totp_handler(&calls))
        .authorize()
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Run 2: the device from the file; no MFA.
    let device = store().load_device().unwrap().expect("saved");
    let token = login(&idp, public(), "carol", "Car0l!")
        .with_device(device)
        .with_challenge_handler(counting_totp_handler(&calls))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The issue's goal at the middleware: once the refresh token is gone (a day later, a
/// revoked session), the middleware logs in again, and the remembered device spares the
/// user the MFA prompt.
#[test]
fn through_the_middleware_a_new_login_on_a_remembered_device_asks_no_mfa() {
    use en_core_auth::AuthMiddleware;
    let idp = builder()
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let auth = AuthMiddleware::new(
        login(&idp, public(), "carol", "Car0l!")
            .remember_device(true)
            .with_challenge_handler(counting_totp_handler(&calls)),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .middleware(auth.clone())
        .build()
        .into();
    assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for _ in 0..3 {
        idp.revoke_refresh_tokens();
        idp.expire_all_tokens();
        assert_eq!(agent.get(idp.protected_url()).call().unwrap().status(), 200);
    }
    // Three full logins more, by device proof: still one MFA answer in all.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(idp.requests(Operation::InitiateAuth), 1 + 3 * 2);
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
}
