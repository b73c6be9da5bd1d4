//! A new password set for `NEW_PASSWORD_REQUIRED` sticks even when the answer carrying it
//! is lost: Cognito has usually taken it, and a login with the old password would count
//! toward the account's lockout. Against the local identity provider, which really
//! checks the password proof and locks a user out after five wrong passwords in a row.

#![cfg(feature = "testing")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use en_core_auth::srp::{Challenge, PasswordChange, SrpAuthorizer};
use en_core_auth::testing::{Fault, LocalIdp, Operation, User, UserStatus};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo};

const POOL: &str = "us-east-1_Local";
const OLD: &str = "0ld-Passw0rd!";
const NEW: &str = "N3w-Passw0rd!";

/// bob must choose a new password at his next login.
fn idp() -> Arc<LocalIdp> {
    Arc::new(
        LocalIdp::builder()
            .cognito_issuer(true)
            .pool_id(POOL)
            .client("cli-client", None)
            .user_with(User::new("bob", OLD).status(UserStatus::ForceChangePassword))
            .start()
            .unwrap(),
    )
}

/// bob's login with his old password, whose handler answers `NEW_PASSWORD_REQUIRED` with
/// `NEW` and, the first time only, lets `lose` spoil the answer about to be sent; the
/// number of times it was asked, and what the password listener heard.
fn bob(
    idp: &Arc<LocalIdp>,
    lose: impl Fn(&LocalIdp) + Send + 'static,
) -> (
    SrpAuthorizer,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<PasswordChange>>>,
) {
    let asked = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (hook, count, told) = (Arc::clone(idp), Arc::clone(&asked), Arc::clone(&heard));
    let login = SrpAuthorizer::new(ClientInfo::new("cli-client", ""), POOL, "bob", OLD)
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .with_challenge_handler(move |challenge: &Challenge| {
            assert_eq!(*challenge, Challenge::NewPasswordRequired);
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                lose(&hook);
            }
            Ok(NEW.to_owned())
        })
        .on_password_change(move |change| told.lock().unwrap().push(change));
    (login, asked, heard)
}

fn logs_in(idp: &LocalIdp, password: &str) -> bool {
    SrpAuthorizer::new(ClientInfo::new("cli-client", ""), POOL, "bob", password)
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
        .authorize()
        .is_ok()
}

/// Cognito took the new password, and its answer was lost on the way back: the login
/// goes on with the new password, and so does every later one; the old one is never
/// sent again (it would be a wrong password, and six of them lock the user out).
#[test]
fn a_new_password_whose_answer_was_lost_is_used_from_then_on() {
    let idp = idp();
    let (login, asked, heard) = bob(&idp, |idp| {
        idp.lose_next_answers(1, Operation::RespondToAuthChallenge);
    });
    let auth = AuthMiddleware::new(login);
    let token = auth.access_token().unwrap();
    assert!(idp.verify_access_token(&token));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once");
    assert_eq!(idp.failed_logins("bob"), 0, "the old password was not sent");
    // Later logins (the refresh token gone each time) use the new password.
    for _ in 0..7 {
        idp.revoke_refresh_tokens();
        auth.invalidate();
        let token = auth.access_token().unwrap();
        assert!(idp.verify_access_token(&token));
        assert_eq!(idp.failed_logins("bob"), 0);
    }
    assert_eq!(auth.token_requests().authorize, 8);
    assert!(logs_in(&idp, NEW), "the pool has the new password");
    assert!(!logs_in(&idp, OLD));
    assert_eq!(*heard.lock().unwrap(), [PasswordChange::AnswerLost]);
}

/// The answer was lost before Cognito saw it (a gateway 5xx): the new password is
/// refused once, the old one is tried once, Cognito asks again, and the new password
/// then sticks. The user is never near a lockout.
#[test]
fn when_cognito_never_saw_the_new_password_the_old_one_is_tried_once() {
    let idp = idp();
    let (mut login, asked, heard) = bob(&idp, |idp| idp.fail_next(1, Fault::Status(502)));
    let token = login.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "asked again after the fallback"
    );
    assert!(logs_in(&idp, NEW));
    for _ in 0..7 {
        assert!(login.authorize().is_ok());
    }
    assert_eq!(idp.failed_logins("bob"), 0);
    assert_eq!(
        *heard.lock().unwrap(),
        [PasswordChange::AnswerLost, PasswordChange::Accepted]
    );
}

/// A new password Cognito refuses outright (its password policy) was never taken: the
/// next login still uses the old one.
#[test]
fn a_refused_new_password_is_not_kept() {
    let idp = idp();
    let (mut login, _asked, heard) = bob(&idp, |_| {});
    let mut login_with_bad =
        SrpAuthorizer::new(ClientInfo::new("cli-client", ""), POOL, "bob", OLD)
            .unwrap()
            .with_endpoint(idp.url())
            .unwrap()
            .with_challenge_handler(|_: &Challenge| Ok(String::new()));
    assert!(
        login_with_bad.authorize().is_err(),
        "an empty password is refused"
    );
    assert!(login_with_bad.authorize().is_err());
    assert_eq!(
        idp.failed_logins("bob"),
        0,
        "the old password was still the one"
    );
    assert!(login.authorize().is_ok());
    assert_eq!(*heard.lock().unwrap(), [PasswordChange::Accepted]);
}
