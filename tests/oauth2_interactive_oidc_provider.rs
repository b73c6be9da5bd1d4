//! The interactive logins against oidc-provider (npm, OpenID Certified), run from
//! tests/peers/oidc/server.mjs on loopback: the browser login with PKCE, whose login and
//! consent pages the test fills in as a person would (ureq, with a cookie jar of its own),
//! the device flow (the person types the code on the provider's page), refresh without a
//! browser, and logout (RFC 7009) followed by a new login.

#[path = "support/oidc_peer.rs"]
#[allow(dead_code)] // the client credentials helpers are for the other peer tests
mod peer;
#[path = "support/oidc_person.rs"]
mod person;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use en_core_auth::oauth2::{AuthorizationCode, DeviceCode, OAuthError};
use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind};
use person::Person;

const CLIENT: &str = "native-cli";

fn query_param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// A browser callback that logs in as `login` on another thread, as a real browser is.
fn browser(
    issuer: &str,
    login: &'static str,
    opened: &Arc<Mutex<Vec<String>>>,
) -> impl FnMut(&str) -> Result<(), Error> + Send + 'static {
    let issuer = issuer.to_owned();
    let opened = opened.clone();
    move |url: &str| {
        opened.lock().unwrap().push(url.to_owned());
        let redirect = query_param(url, "redirect_uri")
            .unwrap()
            .replace("%3A", ":")
            .replace("%2F", "/");
        let (url, issuer) = (url.to_owned(), issuer.clone());
        std::thread::spawn(move || {
            let status = Person::new(&issuer).log_in(
                &url,
                &redirect,
                &[("login", login), ("password", "any")],
            );
            assert_eq!(status, 200);
        });
        Ok(())
    }
}

#[test]
fn a_browser_login_with_pkce_then_refresh_and_logout() {
    let Some(peer) = peer::start() else { return };
    let opened = Arc::new(Mutex::new(Vec::new()));
    let mut auth = AuthorizationCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
        .unwrap()
        .with_scopes(["openid", "offline_access"])
        // oidc-provider grants offline_access only with prompt=consent (OpenID Connect
        // Core §11).
        .with_authorization_parameter("prompt", "consent")
        .with_timeout(Duration::from_secs(30))
        .with_browser(browser(&peer.issuer, "alice", &opened));
    assert_eq!(
        auth.revocation_url(),
        Some(format!("{}/token/revocation", peer.issuer).as_str())
    );
    let token = auth.authorize().unwrap();
    assert!(token.refresh_token().is_some());
    let id_token = token.id_token().unwrap();
    assert_eq!(id_token.split('.').count(), 3);
    assert_eq!(opened.lock().unwrap().len(), 1);

    // Refresh: the server rotates the refresh token; no browser.
    let renewed = auth.refresh(&token).unwrap();
    assert_ne!(renewed.refresh_token(), token.refresh_token());
    assert_eq!(opened.lock().unwrap().len(), 1);

    // Logout: the refresh token is dead at the server.
    auth.revoke(&renewed).unwrap();
    let err = auth.refresh(&renewed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_grant"
    );

    // And a new login works.
    let again = auth.authorize().unwrap();
    assert!(again.refresh_token().is_some());
    assert_eq!(opened.lock().unwrap().len(), 2);
}

/// With a DPoP key (issue 14 point 7), the code exchange and the refreshes carry proofs
/// (oidc-provider requires nonces, so each key's first proof is refused with
/// `use_dpop_nonce` and sent once more): the access tokens are bound to the key, and so
/// is a public client's refresh token (RFC 9449 §5), which another key cannot use.
#[cfg(feature = "jwt")]
#[test]
fn a_browser_login_with_dpop_gets_tokens_bound_to_its_key() {
    use en_core_auth::oauth2::DpopKey;
    let Some(peer) = peer::start() else { return };
    let opened = Arc::new(Mutex::new(Vec::new()));
    let login = |key: DpopKey| {
        AuthorizationCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
            .unwrap()
            // `read` makes the access token a JWT for the API, whose `cnf.jkt` shows
            // the binding.
            .with_scopes(["openid", "offline_access", "read"])
            .with_authorization_parameter("prompt", "consent")
            .with_timeout(Duration::from_secs(30))
            .with_browser(browser(&peer.issuer, "alice", &opened))
            .with_dpop(key)
    };
    let key = DpopKey::generate().unwrap();
    let mut auth = login(key.clone());
    let token = auth.authorize().unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(peer::jkt(token.access_token()), key.thumbprint());
    assert!(token.refresh_token().is_some());

    let renewed = auth.refresh(&token).unwrap();
    assert_eq!(renewed.token_type(), "DPoP");
    assert_eq!(peer::jkt(renewed.access_token()), key.thumbprint());
    assert_ne!(renewed.refresh_token(), token.refresh_token());

    // The same login with another key: the refresh token is refused, and no browser opens.
    let mut other = login(DpopKey::generate().unwrap());
    let err = other.refresh(&renewed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected, "{err}");
    assert_eq!(opened.lock().unwrap().len(), 1);
}

#[test]
fn a_refused_consent_is_credentials_rejected() {
    let Some(peer) = peer::start() else { return };
    let opened = Arc::new(Mutex::new(Vec::new()));
    let issuer = peer.issuer.clone();
    let mut auth = AuthorizationCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
        .unwrap()
        .with_scopes(["openid"])
        .with_timeout(Duration::from_secs(30))
        .with_browser(move |url: &str| {
            opened.lock().unwrap().push(url.to_owned());
            let redirect = query_param(url, "redirect_uri")
                .unwrap()
                .replace("%3A", ":")
                .replace("%2F", "/");
            let (url, issuer) = (url.to_owned(), issuer.clone());
            std::thread::spawn(move || {
                // The development login page's "[ Abort ]" link ends the interaction
                // with access_denied.
                let mut person = Person::new(&issuer);
                let first = person.agent.get(&url).call().unwrap();
                person.keep_cookies(&first);
                let interaction = person.absolute(first.headers()["location"].to_str().unwrap());
                person.log_in(&format!("{interaction}/abort"), &redirect, &[]);
            });
            Ok(())
        });
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "access_denied"
    );
}

#[test]
fn a_device_login_approved_on_the_providers_page() {
    let Some(peer) = peer::start() else { return };
    let issuer = peer.issuer.clone();
    let origin = peer.issuer.clone();
    let code = Arc::new(Mutex::new(String::new()));
    let shown = code.clone();
    let polls = Arc::new(Mutex::new(Vec::new()));
    let recorded = polls.clone();
    let mut auth = DeviceCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
        .unwrap()
        .with_scopes(["openid", "offline_access"])
        .with_prompt(move |prompt| {
            assert!(prompt.verification_uri().starts_with(&issuer));
            *shown.lock().unwrap() = prompt.verification_uri_complete().unwrap().to_owned();
            Ok(())
        })
        .with_sleep(move |wait| {
            let mut polls = recorded.lock().unwrap();
            polls.push(wait);
            if polls.len() == 2 {
                // The person enters the code on the provider's page, logs in and
                // consents, between the first and second polls.
                let page = code.lock().unwrap().clone();
                let status = Person::new(&origin).log_in(
                    &page,
                    "http://no-redirect.invalid",
                    &[("login", "alice"), ("password", "any")],
                );
                assert_eq!(status, 200);
            }
        });
    let token = auth.authorize().unwrap();
    assert!(token.refresh_token().is_some());
    // oidc-provider's default interval is 5 s; one pending poll came first.
    assert_eq!(polls.lock().unwrap()[0], Duration::from_secs(5));
}

/// A request with another login's state (any web page can send one to the port) is
/// refused and ignored; the person's real callback, which comes after it, ends the login.
#[test]
fn a_callback_with_another_state_is_refused_and_the_login_goes_on() {
    let Some(peer) = peer::start() else { return };
    let issuer = peer.issuer.clone();
    let (pages, seen) = std::sync::mpsc::channel();
    let pages = std::sync::Mutex::new(pages);
    let mut auth = AuthorizationCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
        .unwrap()
        .with_scopes(["openid"])
        .with_timeout(Duration::from_secs(60))
        .with_browser(move |url: &str| {
            let redirect = query_param(url, "redirect_uri")
                .unwrap()
                .replace("%3A", ":")
                .replace("%2F", "/");
            // A forged request: the state of some other login.
            let state = query_param(url, "state").unwrap();
            let forged = url.replace(&state, "forged-state");
            let real = url.to_owned();
            let issuer = issuer.clone();
            let pages = pages.lock().unwrap().clone();
            std::thread::spawn(move || {
                let mut person = Person::new(&issuer);
                let form = [("login", "alice"), ("password", "x")];
                let refused = person.log_in(&forged, &redirect, &form);
                let accepted = person.log_in(&real, &redirect, &form);
                let _ = pages.send((refused, accepted));
            });
            Ok(())
        });
    let token = auth.authorize().unwrap();
    assert!(!token.access_token().is_empty());
    let pages = seen.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(pages, (400, 200));
}

// oidc-provider 9.13.3 never answers `slow_down` (its SlowDown error is defined and never
// thrown), so slow_down is tested against the local identity provider only.

#[test]
fn a_device_login_refused_on_the_providers_page_is_credentials_rejected() {
    let Some(peer) = peer::start() else { return };
    let origin = peer.issuer.clone();
    let page = Arc::new(Mutex::new(String::new()));
    let shown = page.clone();
    let mut auth = DeviceCode::discover(ClientInfo::new(CLIENT, ""), &peer.issuer)
        .unwrap()
        .with_scopes(["openid"])
        .with_prompt(move |prompt| {
            *shown.lock().unwrap() = prompt.verification_uri_complete().unwrap().to_owned();
            Ok(())
        })
        .with_sleep(move |_| {
            let page = std::mem::take(&mut *page.lock().unwrap());
            if !page.is_empty() {
                // The person confirms the code, then cancels at the login page.
                let mut person = Person::new(&origin);
                person.abort = true;
                assert_eq!(person.log_in(&page, "http://no-redirect.invalid", &[]), 200);
            }
        });
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "access_denied"
    );
}
