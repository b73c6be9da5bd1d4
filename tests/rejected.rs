//! `AuthMiddleware::rejected` and `accepted`: the middleware's 401 decision for requests
//! made with other HTTP clients (the Python package's requests and httpx adapters).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};

/// Hands out `t1`, `t2`, … and counts the calls; slow enough for threads to pile up.
struct Numbered {
    client: ClientInfo,
    calls: Arc<AtomicUsize>,
}

impl Authorizer for Numbered {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        thread::sleep(Duration::from_millis(50));
        Ok(Token::new(format!("t{n}")).with_expires_in(Duration::from_secs(3600)))
    }
}

fn middleware() -> (AuthMiddleware, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let auth = AuthMiddleware::new(Numbered {
        client: ClientInfo::new("me", ""),
        calls: Arc::clone(&calls),
    });
    (auth, calls)
}

#[test]
fn many_callers_reporting_one_401_renew_once() {
    let (auth, calls) = middleware();
    let sent = auth.header_value().unwrap();
    let answers: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|_| scope.spawn(|| auth.rejected(&sent).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|a| a.as_deref() == Some("Bearer t2")),
        "{answers:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_401_to_an_older_token_resends_with_the_current_one() {
    let (auth, calls) = middleware();
    let old = auth.header_value().unwrap();
    assert_eq!(auth.rejected(&old).unwrap().as_deref(), Some("Bearer t2"));
    assert_eq!(auth.rejected(&old).unwrap().as_deref(), Some("Bearer t2"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_renewed_token_refused_too_goes_to_the_caller_until_it_is_accepted() {
    let (auth, calls) = middleware();
    let first = auth.header_value().unwrap();
    let renewed = auth.rejected(&first).unwrap().unwrap();
    // The token issued in reply to a refusal is refused as well: no renewal per request.
    assert_eq!(auth.rejected(&renewed).unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Once it proved itself, the next refusal renews again.
    auth.accepted(&renewed);
    assert_eq!(
        auth.rejected(&renewed).unwrap().as_deref(),
        Some("Bearer t3")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn nothing_to_reject_before_the_first_token() {
    let (auth, calls) = middleware();
    assert_eq!(auth.rejected("Bearer whatever").unwrap(), None);
    assert_eq!(auth.fresh_header_value(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
