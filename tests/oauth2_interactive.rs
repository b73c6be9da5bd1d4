//! The interactive logins against the crate's local identity provider: the browser login
//! (authorization code + PKCE, loopback redirect) with a "browser" that follows the
//! redirects with ureq as a real one would, the device login with its polls counted on an
//! injected clock, logout (RFC 7009), and staying logged in through a FileStore. Counts
//! requests, never wall-clock time.

#![cfg(feature = "testing")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use en_core_auth::oauth2::{AuthorizationCode, DeviceCode, DevicePrompt, OAuthError};
use en_core_auth::store::{CacheKey, FileStore, TokenStore};
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

const PUBLIC: &str = "my-cli";
const CONFIDENTIAL: (&str, &str) = ("web-app", "w3b:s3cret");

fn idp() -> LocalIdp {
    let idp = LocalIdp::builder()
        .client(PUBLIC, None)
        .client(CONFIDENTIAL.0, Some(CONFIDENTIAL.1))
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    idp.login_as("alice");
    idp
}

/// What the browser saw: the authorization URLs it was given, and the loopback page's
/// status for each completed redirect.
#[derive(Default)]
struct Browser {
    urls: Mutex<Vec<String>>,
    pages: Mutex<Vec<u16>>,
    done: AtomicUsize,
}

impl Browser {
    fn opened(&self) -> usize {
        self.urls.lock().unwrap().len()
    }
    fn last_url(&self) -> String {
        self.urls.lock().unwrap().last().cloned().unwrap()
    }
}

/// A browser callback that, on another thread as a real browser is, asks the
/// authorization endpoint, and follows its redirect to the loopback listener after
/// `tamper` rewrote it.
fn browser(
    seen: &Arc<Browser>,
    tamper: fn(String) -> String,
) -> impl FnMut(&str) -> Result<(), Error> + Send + 'static {
    let seen = seen.clone();
    move |url: &str| {
        seen.urls.lock().unwrap().push(url.to_owned());
        let url = url.to_owned();
        let seen = seen.clone();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into();
            let reply = agent.get(&url).call().unwrap();
            assert_eq!(reply.status(), 302);
            let location = reply.headers()["location"].to_str().unwrap().to_owned();
            let page = agent.get(&tamper(location)).call().unwrap();
            seen.pages.lock().unwrap().push(page.status().as_u16());
            seen.done.fetch_add(1, Ordering::SeqCst);
        });
        Ok(())
    }
}

fn as_is(location: String) -> String {
    location
}

fn login(idp: &LocalIdp, seen: &Arc<Browser>) -> AuthorizationCode {
    AuthorizationCode::discover(ClientInfo::new(PUBLIC, ""), idp.issuer())
        .unwrap()
        .with_scopes(["openid", "offline_access"])
        .with_browser(browser(seen, as_is))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn a_browser_login_with_pkce_gets_tokens_for_the_user() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen);
    assert_eq!(auth.authorization_url(), idp.authorization_url());
    assert_eq!(auth.revocation_url(), Some(idp.revocation_url().as_str()));
    let token = auth.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert!(token.refresh_token().is_some());
    assert_eq!(seen.opened(), 1);
    assert_eq!(*seen.pages.lock().unwrap(), [200]);
    assert_eq!(idp.requests(Operation::Authorize), 1);
    assert_eq!(idp.requests(Operation::Token), 1);

    let url = seen.last_url();
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&url, "code_challenge").unwrap().len(), 43);
    assert!(
        query_param(&url, "redirect_uri")
            .unwrap()
            .starts_with("http%3A%2F%2F127.0.0.1%3A")
    );
    // The scopes go in the authorization URL; the token is granted them.
    assert_eq!(
        query_param(&url, "scope").as_deref(),
        Some("openid+offline_access")
    );
    assert_eq!(token.scope(), Some("openid offline_access"));
    // The ID token carries the nonce the request sent.
    let nonce = query_param(&url, "nonce").unwrap();
    let id = claims(token.id_token().unwrap());
    assert_eq!(id["nonce"], nonce.as_str());
    assert_eq!(id["cognito:username"], "alice");
    assert_eq!(id["aud"], PUBLIC);
}

#[test]
fn each_login_sends_fresh_state_verifier_and_nonce() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen);
    auth.authorize().unwrap();
    auth.authorize().unwrap();
    let urls = seen.urls.lock().unwrap().clone();
    for name in ["state", "code_challenge", "nonce", "redirect_uri"] {
        assert_ne!(
            query_param(&urls[0], name),
            query_param(&urls[1], name),
            "{name}"
        );
    }
}

#[test]
fn a_confidential_client_keeps_its_secret_out_of_the_url() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = AuthorizationCode::new(
        ClientInfo::new(CONFIDENTIAL.0, CONFIDENTIAL.1),
        idp.authorization_url(),
        idp.token_url(),
    )
    .unwrap()
    .with_browser(browser(&seen, as_is));
    let token = auth.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    let url = seen.last_url();
    assert!(
        !url.contains("s3cret") && !url.contains("client_secret"),
        "{url}"
    );
    // No openid scope: no nonce.
    assert_eq!(query_param(&url, "nonce"), None);
}

#[test]
fn an_exact_redirect_uri_is_used_as_given() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let mut auth = login(&idp, &seen).with_redirect_uri(redirect_uri.clone());
    auth.authorize().unwrap();
    let sent = query_param(&seen.last_url(), "redirect_uri").unwrap();
    assert_eq!(sent, redirect_uri.replace(':', "%3A").replace('/', "%2F"));
}

/// Any web page can aim a request at the callback port: one with another `state` is
/// refused and ignored, not the end of the login (which here times out, as nothing else
/// comes), and the token endpoint is never called.
#[test]
fn a_callback_with_another_state_is_refused_and_nothing_is_exchanged() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen)
        .with_timeout(Duration::from_millis(500))
        .with_browser(browser(&seen, |location| {
            let state = query_param(&location, "state").unwrap();
            location.replace(&state, "forged-state")
        }));
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn a_callback_from_another_issuer_ends_the_login_before_the_token_endpoint() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    // RFC 9207: the callback's `iss` names the server that answered.
    let mut auth = login(&idp, &seen).with_browser(browser(&seen, |location| {
        let iss = query_param(&location, "iss").unwrap();
        location.replace(&iss, "https%3A%2F%2Fevil.example.com")
    }));
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("evil.example.com"), "{err}");
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn access_denied_is_credentials_rejected() {
    let idp = idp();
    idp.deny_logins();
    let seen = Arc::new(Browser::default());
    let err = login(&idp, &seen).authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "access_denied"
    );
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn no_callback_in_time_is_a_transport_error() {
    let idp = idp();
    let opened = Arc::new(AtomicUsize::new(0));
    let count = opened.clone();
    let mut auth = AuthorizationCode::discover(ClientInfo::new(PUBLIC, ""), idp.issuer())
        .unwrap()
        .with_timeout(Duration::from_millis(200))
        .with_browser(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn stray_requests_to_the_listener_are_ignored() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    // A favicon request and a callback without parameters come first; the login still
    // completes with the real callback.
    let strays = Arc::new(Mutex::new(Vec::new()));
    let statuses = strays.clone();
    let mut auth = login(&idp, &seen).with_browser({
        let seen = seen.clone();
        move |url: &str| {
            let redirect = query_param(url, "redirect_uri")
                .unwrap()
                .replace("%3A", ":")
                .replace("%2F", "/");
            let (url, seen, statuses) = (url.to_owned(), seen.clone(), statuses.clone());
            // The listener answers only once this callback has returned: as a browser
            // does, the requests go out from another thread.
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for stray in [format!("{redirect}favicon.ico"), redirect] {
                    let status = agent.get(&stray).call().unwrap().status().as_u16();
                    statuses.lock().unwrap().push(status);
                }
                browser(&seen, as_is)(&url).unwrap();
            });
            Ok(())
        }
    });
    let token = auth.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(*strays.lock().unwrap(), [404, 400]);
}

#[test]
fn refresh_uses_the_refresh_token_and_no_browser() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let middleware = AuthMiddleware::new(login(&idp, &seen));
    let first = middleware.access_token().unwrap();
    middleware.invalidate();
    let second = middleware.access_token().unwrap();
    assert_ne!(first, second);
    assert_eq!(seen.opened(), 1);
    assert_eq!(idp.requests(Operation::Token), 2);

    // A refused refresh token is the one case that opens the browser again.
    idp.revoke_refresh_tokens();
    middleware.invalidate();
    let third = middleware.access_token().unwrap();
    assert!(idp.verify_access_token(&third));
    assert_eq!(seen.opened(), 2);
}

#[test]
fn logout_revokes_refresh_then_access_token_and_a_new_login_works() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen);
    let token = auth.authorize().unwrap();
    auth.revoke(&token).unwrap();
    assert_eq!(idp.requests(Operation::Revocation), 2);
    assert!(!idp.verify_access_token(token.access_token()));
    let err = auth.refresh(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);

    let again = auth.authorize().unwrap();
    assert!(idp.verify_access_token(again.access_token()));
    assert_eq!(seen.opened(), 2);
}

#[test]
fn a_failed_revocation_is_reported() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen).with_http_client(
        en_core_auth::http::HttpClient::new().with_retry(en_core_auth::http::RetryPolicy::none()),
    );
    let token = auth.authorize().unwrap();
    idp.fail_next(1, en_core_auth::testing::Fault::Status(503));
    let err = auth.revoke(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    // The access token was still revoked after the refresh token's failure.
    assert_eq!(idp.requests(Operation::Revocation), 2);
    assert!(!idp.verify_access_token(token.access_token()));
}

#[test]
fn without_a_revocation_endpoint_logout_says_so() {
    let idp = idp();
    let mut auth = AuthorizationCode::new(
        ClientInfo::new(PUBLIC, ""),
        idp.authorization_url(),
        idp.token_url(),
    )
    .unwrap();
    let err = auth.revoke(&Token::new("t")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert_eq!(idp.requests(Operation::Revocation), 0);
}

#[test]
fn a_file_store_keeps_the_login_between_runs_until_logout() {
    let idp = idp();
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-interactive-{}-{}",
        std::process::id(),
        idp.url().rsplit(':').next().unwrap()
    ));
    let key = CacheKey::new(&idp.issuer(), PUBLIC, None, ["openid", "offline_access"]);
    let run = |seen: &Arc<Browser>| {
        AuthMiddleware::builder(login(&idp, seen))
            .token_store(FileStore::in_dir(&dir, key.clone()))
            .build()
    };
    let first_seen = Arc::new(Browser::default());
    let first = run(&first_seen).access_token().unwrap();
    assert_eq!(first_seen.opened(), 1);

    // The next run: the stored token, no browser, no token request.
    let second_seen = Arc::new(Browser::default());
    let second = run(&second_seen);
    assert_eq!(second.access_token().unwrap(), first);
    assert_eq!(second_seen.opened(), 0);
    assert_eq!(idp.requests(Operation::Token), 1);
    // Renewal there uses the stored refresh token: still no browser.
    second.invalidate();
    let renewed = second.access_token().unwrap();
    assert_ne!(renewed, first);
    assert_eq!(second_seen.opened(), 0);
    assert_eq!(idp.requests(Operation::Token), 2);

    // Logout through the middleware: revoked at the server (refresh token, then access
    // token), forgotten in memory and in the file.
    second.revoke().unwrap();
    assert_eq!(idp.requests(Operation::Revocation), 2);
    assert!(!idp.verify_access_token(&renewed));
    assert!(
        FileStore::in_dir(&dir, key.clone())
            .load()
            .unwrap()
            .is_none()
    );
    // The next use, in this process or the next run, logs the person in again.
    assert_ne!(second.access_token().unwrap(), renewed);
    assert_eq!(second_seen.opened(), 1);
    let third_seen = Arc::new(Browser::default());
    run(&third_seen).access_token().unwrap();
    assert_eq!(third_seen.opened(), 0, "the new login was stored");
    let _ = std::fs::remove_dir_all(&dir);
}

// The device login.

/// An injected clock: records each wait, returns at once; `on_wait` runs after each.
fn device(
    idp: &LocalIdp,
    waits: &Arc<Mutex<Vec<Duration>>>,
    prompts: &Arc<Mutex<Vec<DevicePrompt>>>,
) -> DeviceCode {
    let waits = waits.clone();
    let prompts = prompts.clone();
    DeviceCode::discover(ClientInfo::new(PUBLIC, ""), idp.issuer())
        .unwrap()
        .with_scopes(["openid", "offline_access"])
        .with_prompt(move |prompt| {
            prompts.lock().unwrap().push(prompt.clone());
            Ok(())
        })
        .with_sleep(move |wait| waits.lock().unwrap().push(wait))
}

/// A DeviceCode whose person acts on the `nth` wait: approves as alice or denies.
fn device_acting_on(
    idp: &Arc<LocalIdp>,
    nth: usize,
    approve: bool,
) -> (DeviceCode, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let code = Arc::new(Mutex::new(String::new()));
    let (shown, person, recorded) = (code.clone(), idp.clone(), waits.clone());
    let auth = DeviceCode::discover(ClientInfo::new(PUBLIC, ""), idp.issuer())
        .unwrap()
        .with_scopes(["offline_access"])
        .with_prompt(move |prompt| {
            *shown.lock().unwrap() = prompt.user_code().to_owned();
            Ok(())
        })
        .with_sleep(move |wait| {
            let mut waits = recorded.lock().unwrap();
            waits.push(wait);
            if waits.len() == nth {
                let user_code = code.lock().unwrap().clone();
                let acted = if approve {
                    person.approve_device_code(&user_code, "alice")
                } else {
                    person.deny_device_code(&user_code)
                };
                assert!(acted);
            }
        });
    (auth, waits)
}

#[test]
fn a_device_login_polls_at_the_interval_until_approved() {
    let idp = Arc::new(idp());
    let (mut auth, waits) = device_acting_on(&idp, 3, true);
    let token = auth.authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert!(token.refresh_token().is_some());
    assert_eq!(token.scope(), Some("offline_access"));
    // Two pending polls, then the approved one; each after the server's 5 s interval.
    assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(5); 3]);
    assert_eq!(idp.requests(Operation::DeviceAuthorization), 1);
    assert_eq!(idp.requests(Operation::Token), 3);
}

#[test]
fn the_prompt_gets_the_uri_the_complete_uri_and_the_code() {
    let idp = idp();
    let (waits, prompts) = (Arc::default(), Arc::default());
    let mut auth = device(&idp, &waits, &prompts);
    idp.device_timing(Duration::from_secs(2), Duration::from_secs(60));
    let _ = auth.authorize().unwrap_err();
    let prompts = prompts.lock().unwrap();
    let prompt = &prompts[0];
    assert_eq!(prompt.verification_uri(), format!("{}/device", idp.url()));
    assert_eq!(
        prompt.verification_uri_complete().unwrap(),
        format!("{}/device?user_code={}", idp.url(), prompt.user_code())
    );
    assert_eq!(prompt.user_code().len(), 9);
    assert_eq!(prompt.expires_in(), Duration::from_secs(60));
}

#[test]
fn slow_down_adds_five_seconds_for_good() {
    let idp = Arc::new(idp());
    idp.slow_down_device_polls(2);
    let (mut auth, waits) = device_acting_on(&idp, 4, true);
    auth.authorize().unwrap();
    let secs: Vec<u64> = waits
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_secs)
        .collect();
    // 5, slow_down → 10, slow_down → 15, pending → 15 (approved after this wait) → tokens.
    assert_eq!(secs, [5, 10, 15, 15]);
    assert_eq!(idp.requests(Operation::Token), 4);
}

#[test]
fn a_denied_device_login_is_credentials_rejected() {
    let idp = Arc::new(idp());
    let (mut auth, waits) = device_acting_on(&idp, 2, false);
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "access_denied"
    );
    assert_eq!(waits.lock().unwrap().len(), 2);
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn expired_token_from_the_server_is_credentials_rejected() {
    let idp = Arc::new(idp());
    let (waits, prompts) = (Arc::default(), Arc::default());
    let person = idp.clone();
    // The server lets the code die during the first wait, long before the client's own
    // count of its ten minutes would.
    let mut auth = device(&idp, &waits, &prompts).with_sleep(move |_| person.expire_device_codes());
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "expired_token"
    );
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn the_client_stops_polling_when_the_code_expires() {
    let idp = idp();
    idp.device_timing(Duration::from_secs(5), Duration::from_secs(30));
    let (waits, prompts) = (Arc::default(), Arc::default());
    let mut auth = device(&idp, &waits, &prompts);
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    // Polls at 5, 10, 15, 20 and 25 s; at 30 s the code is dead and no poll is sent.
    assert_eq!(idp.requests(Operation::Token), 5);
    assert_eq!(waits.lock().unwrap().len(), 6);
}

#[test]
fn a_device_login_refreshes_and_logs_out() {
    let idp = Arc::new(idp());
    let (mut auth, _) = device_acting_on(&idp, 1, true);
    let token = auth.authorize().unwrap();
    let renewed = auth.refresh(&token).unwrap();
    assert!(idp.verify_access_token(renewed.access_token()));
    auth.revoke(&renewed).unwrap();
    assert_eq!(idp.requests(Operation::Revocation), 2);
    assert!(!idp.verify_access_token(renewed.access_token()));
    assert_eq!(
        auth.refresh(&renewed).unwrap_err().kind(),
        ErrorKind::CredentialsRejected
    );
}

// ID tokens (feature jwt).

#[test]
fn id_tokens_are_verified_with_the_cached_jwks() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    let mut auth = login(&idp, &seen);
    assert!(auth.verifies_id_tokens());
    let token = auth.authorize().unwrap();
    auth.refresh(&token).unwrap();
    auth.authorize().unwrap();
    // Three ID tokens, one JWKS fetch.
    assert_eq!(idp.requests(Operation::Jwks), 1);
}

#[test]
fn an_id_token_with_another_nonce_is_refused() {
    let idp = idp();
    let seen = Arc::new(Browser::default());
    // The browser swaps the nonce on its way to the server, as an attacker replaying
    // another login's ID token would present one with a nonce this login never sent.
    let mut auth = login(&idp, &seen).with_browser({
        let mut inner = browser(&seen, as_is);
        move |url: &str| {
            let nonce = query_param(url, "nonce").unwrap();
            inner(&url.replace(&nonce, "someone-elses-nonce"))
        }
    });
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert!(err.to_string().contains("nonce"), "{err}");
}

#[test]
fn client_credentials_log_out_at_the_discovered_endpoint() {
    let idp = idp();
    let mut auth = en_core_auth::oauth2::ClientCredentials::discover(
        ClientInfo::new(CONFIDENTIAL.0, CONFIDENTIAL.1),
        idp.issuer(),
    )
    .unwrap();
    let token = auth.authorize().unwrap();
    auth.revoke(&token).unwrap();
    // Refresh token, then access token.
    assert_eq!(idp.requests(Operation::Revocation), 2);
    assert!(!idp.verify_access_token(token.access_token()));
    assert_eq!(
        auth.refresh(&token).unwrap_err().kind(),
        ErrorKind::CredentialsRejected
    );
}
