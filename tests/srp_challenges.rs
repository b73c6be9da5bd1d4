//! Every Cognito challenge through the handler, and every login flow, against the local
//! identity provider.

#![cfg(feature = "testing")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use en_core_auth::srp::{Challenge, FirstFactor, LoginFlow, SrpAuthorizer};
use en_core_auth::testing::{LocalIdp, Operation, User, totp_code};
use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind};

const POOL: &str = "us-east-1_Local";
const TOTP_SECRET: &[u8] = b"12345678901234567890";

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .cognito_issuer(true)
        .pool_id(POOL)
        .client("public-client", None)
        .client("secret-client", Some("client-s3cret"))
        .user("alice", "Passw0rd!")
        .user_with(
            User::new("gail", "G4il!")
                .email("gail@example.com")
                .email_otp_code("777777"),
        )
        .user_with(
            User::new("ivan", "Iv4n!")
                .totp_secret(TOTP_SECRET.to_vec())
                .sms_mfa_code("424242"),
        )
        .user_with(User::new("hal", "H4l!").mfa_setup_required())
        .custom_challenge("What is 6 × 7?", "42")
        .start()
        .unwrap()
}

fn login(idp: &LocalIdp, user: &str, password: &str) -> SrpAuthorizer {
    SrpAuthorizer::new(ClientInfo::new("public-client", ""), POOL, user, password)
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
}

/// A handler that records each challenge it is shown and answers from `answer`.
fn recording(
    seen: &Arc<Mutex<Vec<Challenge>>>,
    answer: impl Fn(&Challenge) -> String + Send + 'static,
) -> impl FnMut(&Challenge) -> Result<String, Error> + Send + 'static {
    let seen = seen.clone();
    move |challenge: &Challenge| {
        seen.lock().unwrap().push(challenge.clone());
        Ok(answer(challenge))
    }
}

fn names(seen: &Arc<Mutex<Vec<Challenge>>>) -> Vec<&'static str> {
    seen.lock().unwrap().iter().map(Challenge::name).collect()
}

/// RFC 4648 base32, as the authenticator app would read the setup secret.
fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn email_otp_after_the_password() {
    let idp = idp();
    let seen = Arc::default();
    let token = login(&idp, "gail", "G4il!")
        .with_challenge_handler(recording(&seen, |_| "777777".to_owned()))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Challenge::EmailOtp {
            destination: Some("g***@example.com".to_owned())
        }]
    );
    let wrong = login(&idp, "gail", "G4il!")
        .with_challenge_handler(|_: &Challenge| Ok("000000".to_owned()))
        .authorize()
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::CredentialsRejected);
}

#[test]
fn select_mfa_type_then_the_chosen_mfa() {
    let idp = idp();
    let seen = Arc::default();
    let token = login(&idp, "ivan", "Iv4n!")
        .with_challenge_handler(recording(&seen, |challenge| match challenge {
            Challenge::SelectMfaType { .. } => "SMS_MFA".to_owned(),
            _ => "424242".to_owned(),
        }))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let Challenge::SelectMfaType { options } = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(options, &["SMS_MFA", "SOFTWARE_TOKEN_MFA"]);
    assert!(matches!(seen[1], Challenge::SmsMfa { .. }));
}

#[test]
fn mfa_setup_shows_an_otpauth_uri_and_turns_totp_on() {
    let idp = idp();
    let seen = Arc::default();
    let secret = Arc::new(Mutex::new(Vec::new()));
    let kept = secret.clone();
    let mut authorizer =
        login(&idp, "hal", "H4l!").with_challenge_handler(recording(&seen, move |challenge| {
            match challenge {
                Challenge::MfaSetup { secret, uri } => {
                    assert_eq!(
                        uri,
                        &format!("otpauth://totp/AWSCognito:hal?secret={secret}&issuer=AWSCognito")
                    );
                    let raw = base32_decode(secret);
                    *kept.lock().unwrap() = raw.clone();
                    totp_code(&raw, SystemTime::now())
                }
                // The next login: TOTP is on now; a code of the next step (the setup's is used).
                Challenge::SoftwareTokenMfa => totp_code(
                    &kept.lock().unwrap(),
                    SystemTime::now() + Duration::from_secs(30),
                ),
                other => panic!("{other:?}"),
            }
        }));
    let token = authorizer.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(idp.requests(Operation::AssociateSoftwareToken), 1);
    assert_eq!(idp.requests(Operation::VerifySoftwareToken), 1);
    assert_eq!(secret.lock().unwrap().len(), 20);
    // Debug never shows the new second factor.
    let shown = format!("{:?}", seen.lock().unwrap()[0]);
    assert!(
        !shown.contains("otpauth") && shown.contains("redacted"),
        "{shown}"
    );

    let again = authorizer.authorize().unwrap();
    assert!(idp.verify_access_token(again.access_token()));
    assert_eq!(names(&seen), ["MFA_SETUP", "SOFTWARE_TOKEN_MFA"]);
}

#[test]
fn custom_auth_passes_the_triggers_question_to_the_handler() {
    let idp = idp();
    let seen = Arc::default();
    let token = login(&idp, "alice", "Passw0rd!")
        .with_login_flow(LoginFlow::CustomAuth)
        .with_challenge_handler(recording(&seen, |_| "42".to_owned()))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    let seen = seen.lock().unwrap().clone();
    let [Challenge::CustomChallenge { parameters }] = &seen[..] else {
        panic!("{seen:?}")
    };
    assert_eq!(parameters["question"], "What is 6 × 7?");
    let wrong = login(&idp, "alice", "Passw0rd!")
        .with_login_flow(LoginFlow::CustomAuth)
        .with_challenge_handler(|_: &Challenge| Ok("41".to_owned()))
        .authorize()
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::CredentialsRejected);
}

#[test]
fn user_auth_with_each_preferred_first_factor() {
    let idp = idp();
    for first in [FirstFactor::PasswordSrp, FirstFactor::Password] {
        let token = login(&idp, "alice", "Passw0rd!")
            .with_login_flow(LoginFlow::UserAuth(Some(first)))
            .authorize()
            .unwrap();
        assert!(idp.verify_access_token(token.access_token()), "{first:?}");
    }
    // Passwordless: a code by e-mail, and nothing else.
    let seen = Arc::default();
    let token = SrpAuthorizer::passwordless(ClientInfo::new("public-client", ""), POOL, "gail")
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .with_login_flow(LoginFlow::UserAuth(Some(FirstFactor::EmailOtp)))
        .with_challenge_handler(recording(&seen, |_| "777777".to_owned()))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(names(&seen), ["EMAIL_OTP"]);

    let seen = Arc::default();
    let token = SrpAuthorizer::passwordless(ClientInfo::new("public-client", ""), POOL, "ivan")
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .with_login_flow(LoginFlow::UserAuth(Some(FirstFactor::SmsOtp)))
        .with_challenge_handler(recording(&seen, |_| "424242".to_owned()))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(names(&seen), ["SMS_OTP"]);
}

#[test]
fn user_auth_select_challenge_through_the_handler_or_srp_by_default() {
    let idp = idp();
    let seen = Arc::default();
    let token = SrpAuthorizer::passwordless(ClientInfo::new("public-client", ""), POOL, "gail")
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .with_challenge_handler(recording(&seen, |challenge| match challenge {
            Challenge::SelectChallenge { .. } => "EMAIL_OTP".to_owned(),
            _ => "777777".to_owned(),
        }))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    let seen = seen.lock().unwrap().clone();
    let Challenge::SelectChallenge { available } = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(available, &["PASSWORD_SRP", "PASSWORD", "EMAIL_OTP"]);
    assert_eq!(seen[1].name(), "EMAIL_OTP");

    // No handler, a password: PASSWORD_SRP is chosen.
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let token = login(&idp, "alice", "Passw0rd!")
        .with_login_flow(LoginFlow::UserAuth(None))
        .authorize()
        .unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    // SELECT_CHALLENGE, then PASSWORD_VERIFIER.
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 2
    );

    // Passwordless with no handler: the choice is the user's, so it is an error naming it.
    let error = SrpAuthorizer::passwordless(ClientInfo::new("public-client", ""), POOL, "gail")
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .authorize()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChallengeRequired);
    assert!(error.to_string().contains("SELECT_CHALLENGE"), "{error}");
}

#[test]
fn user_password_auth_as_an_explicit_option() {
    let idp = idp();
    for client in [
        ClientInfo::new("public-client", ""),
        ClientInfo::new("secret-client", "client-s3cret"),
    ] {
        let mut authorizer = SrpAuthorizer::new(client, POOL, "alice", "Passw0rd!")
            .unwrap()
            .with_endpoint(idp.url())
            .unwrap()
            .with_login_flow(LoginFlow::UserPassword);
        let token = authorizer.authorize().unwrap();
        assert!(idp.verify_access_token(token.access_token()));
        assert!(authorizer.refresh(&token).is_ok());
    }
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 0);
    let wrong = login(&idp, "alice", "nope")
        .with_login_flow(LoginFlow::UserPassword)
        .authorize()
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::CredentialsRejected);
    // A passwordless authorizer has no password to send.
    let error = SrpAuthorizer::passwordless(ClientInfo::new("public-client", ""), POOL, "alice")
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .with_login_flow(LoginFlow::UserPassword)
        .authorize()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
}
