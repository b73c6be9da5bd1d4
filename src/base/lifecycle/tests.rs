//! The lifecycle on its own, with a hand-moved clock: back-off lengths, phase boundaries,
//! suspends, refusals, generations, logout. Counts of authorizer calls, never timings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::SystemTime;

use super::back_off::{FIRST, LONGEST, wait_after};
use super::*;
use crate::ClientInfo;
use crate::base::TokenRequests;
use crate::store::{MemoryStore, StoreLock};

/// A clock that moves only when told; the monotonic and wall readings move separately.
struct Manual {
    at: Mutex<(Instant, SystemTime)>,
}

impl Manual {
    fn new() -> Arc<Manual> {
        Arc::new(Manual {
            at: Mutex::new((Instant::now(), SystemTime::now())),
        })
    }
    /// Both clocks move on (time passes, the machine awake).
    fn advance(&self, by: Duration) {
        let mut at = self.at.lock();
        at.0 += by;
        at.1 += by;
    }
    /// Only the wall clock moves on (the machine suspended).
    fn suspend(&self, by: Duration) {
        self.at.lock().1 += by;
    }
    /// The wall clock is set back; the monotonic clock moves on by `by`.
    fn set_back_while(&self, back: Duration, by: Duration) {
        let mut at = self.at.lock();
        at.0 += by;
        at.1 -= back;
    }
}

impl Clock for Arc<Manual> {
    fn monotonic(&self) -> Instant {
        self.at.lock().0
    }
    fn wall(&self) -> SystemTime {
        self.at.lock().1
    }
}

/// What the test provider does on its next calls.
#[derive(Default)]
struct Provider {
    authorizes: AtomicUsize,
    refreshes: AtomicUsize,
    revokes: Mutex<Vec<String>>,
    /// Failures for the next calls (authorize or refresh), in order.
    failures: Mutex<VecDeque<ErrorKind>>,
    /// Every call fails with this kind while set.
    down: Mutex<Option<ErrorKind>>,
    revoke_fails: AtomicBool,
    /// Held inside each call while set: a provider that takes its time.
    latency: Mutex<Option<Duration>>,
    /// Lifetime of the tokens issued.
    lifetime: Mutex<Option<Duration>>,
    clock: OnceLock<Arc<Manual>>,
    /// Set to the lifecycle when a test needs the authorizer to look at it.
    lifecycle: OnceLock<Arc<Lifecycle>>,
    renewing_seen: AtomicBool,
    /// `expired()` answers true while set (a wrapper's own condition).
    declared: AtomicBool,
    expired_calls: AtomicUsize,
    /// What `expiry_by_time_only` answers.
    time_only: AtomicBool,
}

impl Provider {
    fn calls(&self) -> usize {
        self.authorizes.load(Ordering::SeqCst) + self.refreshes.load(Ordering::SeqCst)
    }
    fn issue(&self) -> Result<Token, Error> {
        if let Some(latency) = *self.latency.lock() {
            // The provider's own response time, not a way to order the test's threads.
            thread::sleep(latency);
        }
        if let Some(lifecycle) = self.lifecycle.get() {
            self.renewing_seen
                .store(lifecycle.renewing_on_this_thread(), Ordering::SeqCst);
        }
        if let Some(kind) = *self.down.lock() {
            return Err(Error::new(kind, "provider down"));
        }
        if let Some(kind) = self.failures.lock().pop_front() {
            return Err(Error::new(kind, "provider failed"));
        }
        let n = self.calls();
        let token = Token::new(format!("token-{n}")).with_refresh_token("r");
        Ok(match *self.lifetime.lock() {
            Some(lifetime) => {
                let wall = self.clock.get().map_or_else(SystemTime::now, Clock::wall);
                token
                    .with_expires_at(wall + lifetime)
                    .with_lifetime(Some(lifetime))
            }
            None => token,
        })
    }
}

struct Scripted {
    client: ClientInfo,
    provider: Arc<Provider>,
}

impl Authorizer for Scripted {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        self.provider.authorizes.fetch_add(1, Ordering::SeqCst);
        self.provider.issue()
    }
    fn refresh(&mut self, _token: &Token) -> Result<Token, Error> {
        self.provider.refreshes.fetch_add(1, Ordering::SeqCst);
        self.provider.issue()
    }
    fn expired(&self, token: &Token) -> bool {
        self.provider.expired_calls.fetch_add(1, Ordering::SeqCst);
        token.is_expired() || self.provider.declared.load(Ordering::SeqCst)
    }
    fn expiry_by_time_only(&self) -> bool {
        self.provider.time_only.load(Ordering::SeqCst)
    }
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        self.provider
            .revokes
            .lock()
            .push(token.access_token().to_owned());
        if self.provider.revoke_fails.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Server, "revocation endpoint down"));
        }
        Ok(())
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn prepare() -> Prepare {
    Box::new(|token| {
        HeaderValue::from_str(token.access_token())
            .map_err(|_| Error::new(ErrorKind::MalformedResponse, "not a header"))
    })
}

struct Fixture {
    lifecycle: Arc<Lifecycle>,
    provider: Arc<Provider>,
    clock: Arc<Manual>,
}

fn fixture_with(
    lifetime: Option<Duration>,
    thresholds: RefreshThresholds,
    store: Option<Box<dyn TokenStore>>,
) -> Fixture {
    fixture_of(Provider::default(), lifetime, thresholds, store)
}

fn fixture_of(
    provider: Provider,
    lifetime: Option<Duration>,
    thresholds: RefreshThresholds,
    store: Option<Box<dyn TokenStore>>,
) -> Fixture {
    let clock = Manual::new();
    let provider = Arc::new(provider);
    *provider.lifetime.lock() = lifetime;
    provider.clock.set(Arc::clone(&clock)).ok();
    let authorizer = Scripted {
        client: ClientInfo::new("client", "secret"),
        provider: Arc::clone(&provider),
    };
    let lifecycle = Lifecycle::new(Box::new(authorizer), thresholds, store, prepare())
        .with_clock(Box::new(Arc::clone(&clock)));
    Fixture {
        lifecycle: Arc::new(lifecycle),
        provider,
        clock,
    }
}

fn fixture(lifetime: Option<Duration>) -> Fixture {
    fixture_with(lifetime, RefreshThresholds::default(), None)
}

impl Fixture {
    fn token(&self) -> Result<String, ErrorKind> {
        self.lifecycle
            .current()
            .map(|current| current.token.access_token().to_owned())
            .map_err(|error| error.kind())
    }
    fn generation(&self) -> u64 {
        self.lifecycle.current().unwrap().generation
    }
    /// `current()` from `threads` threads released together.
    fn together(&self, threads: usize) -> Vec<Result<String, ErrorKind>> {
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let lifecycle = Arc::clone(&self.lifecycle);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    lifecycle
                        .current()
                        .map(|current| current.token.access_token().to_owned())
                        .map_err(|error| error.kind())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }
}

// ---- point 1: failures are single flight, remembered, and backed off ----

#[test]
fn thirty_two_threads_against_a_failing_provider_cause_one_call_then_none() {
    let f = fixture(Some(HOUR));
    *f.provider.down.lock() = Some(ErrorKind::Server);
    *f.provider.latency.lock() = Some(Duration::from_millis(200));
    let results = f.together(32);
    assert!(
        results.iter().all(|r| *r == Err(ErrorKind::Server)),
        "{results:?}"
    );
    // The clock does not move: every caller either waited for the one call or came during
    // its back-off. (The goal allows 2; with the clock stopped it is exactly 1.)
    assert_eq!(
        f.provider.calls(),
        1,
        "waiters take the failed renewal's outcome"
    );
    *f.provider.latency.lock() = None;
    let again = f.together(32);
    assert!(again.iter().all(|r| *r == Err(ErrorKind::Server)));
    assert_eq!(
        f.provider.calls(),
        1,
        "the failure is remembered: no new call"
    );
    // Once the back-off has passed (the clock moved, not the test waiting), one caller
    // tries again for everyone.
    f.clock.advance(FIRST);
    let third = f.together(32);
    assert!(third.iter().all(|r| *r == Err(ErrorKind::Server)));
    assert_eq!(f.provider.calls(), 2, "one new call after the back-off");
}

#[test]
fn the_back_off_doubles_from_one_second_to_thirty_with_jitter_below() {
    let f = fixture(Some(HOUR));
    *f.provider.down.lock() = Some(ErrorKind::Transport);
    assert_eq!(f.token(), Err(ErrorKind::Transport));
    let mut calls = 1;
    for streak in 1..=8 {
        let wait = wait_after(streak);
        // Up to a quarter is taken off at random: just before three quarters, still held.
        f.clock.advance(wait.mul_f64(0.74));
        assert_eq!(f.token(), Err(ErrorKind::Transport));
        assert_eq!(
            f.provider.calls(),
            calls,
            "held off during back-off {streak}"
        );
        f.clock.advance(wait - wait.mul_f64(0.74));
        let results = f.together(8);
        assert!(results.iter().all(|r| *r == Err(ErrorKind::Transport)));
        calls += 1;
        assert_eq!(
            f.provider.calls(),
            calls,
            "one call after back-off {streak}"
        );
    }
    assert_eq!(wait_after(1), FIRST);
    assert_eq!(wait_after(2), Duration::from_secs(2));
    assert_eq!(wait_after(5), Duration::from_secs(16));
    assert_eq!(wait_after(6), LONGEST);
    assert_eq!(wait_after(u32::MAX), LONGEST);
    assert_eq!(FIRST, Duration::from_secs(1));
    assert_eq!(LONGEST, Duration::from_secs(30));
}

#[test]
fn a_success_resets_the_back_off_and_clears_the_remembered_error() {
    let f = fixture(Some(HOUR));
    f.provider
        .failures
        .lock()
        .extend([ErrorKind::Server, ErrorKind::Server]);
    assert_eq!(f.token(), Err(ErrorKind::Server));
    f.clock.advance(FIRST);
    assert_eq!(f.token(), Err(ErrorKind::Server));
    f.clock.advance(wait_after(2));
    assert_eq!(f.token(), Ok("token-3".into()));
    // The next failure waits one second again, not four.
    f.lifecycle.invalidate(None);
    f.provider.failures.lock().push_back(ErrorKind::Server);
    assert_eq!(f.token(), Err(ErrorKind::Server));
    f.clock.advance(FIRST);
    assert_eq!(f.token(), Ok("token-5".into()));
    assert_eq!(f.provider.calls(), 5);
}

#[test]
fn waiters_for_a_failed_refresh_in_the_mandatory_margin_keep_the_valid_token() {
    // Mandatory from issuance: every caller waits for one renewal, which fails; the token
    // has not expired, so all of them get it, and only one call is made.
    let thresholds = RefreshThresholds {
        mandatory_fraction: 1.0,
        mandatory_max: HOUR,
        advisory_fraction: 1.0,
        advisory_max: HOUR,
    };
    let f = fixture_with(Some(Duration::from_secs(600)), thresholds, None);
    assert_eq!(f.token(), Ok("token-1".into()));
    *f.provider.down.lock() = Some(ErrorKind::Server);
    *f.provider.latency.lock() = Some(Duration::from_millis(100));
    let results = f.together(16);
    assert!(
        results.iter().all(|r| *r == Ok("token-1".into())),
        "{results:?}"
    );
    assert_eq!(f.provider.calls(), 2);
}

#[test]
fn a_failed_advisory_refresh_waits_a_tenth_of_the_window_within_bounds() {
    let advisory_from_issuance = RefreshThresholds {
        advisory_fraction: 1.0,
        advisory_max: Duration::from_secs(7200),
        mandatory_fraction: 0.0,
        ..RefreshThresholds::default()
    };
    // A 100 s window: 10 s.
    let f = fixture_with(Some(Duration::from_secs(100)), advisory_from_issuance, None);
    assert_eq!(f.token(), Ok("token-1".into()));
    f.provider.failures.lock().push_back(ErrorKind::Server);
    assert_eq!(
        f.token(),
        Ok("token-1".into()),
        "the valid token stays in use"
    );
    f.clock.advance(Duration::from_millis(9_999));
    assert_eq!(f.token(), Ok("token-1".into()));
    assert_eq!(f.provider.calls(), 2);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.token(), Ok("token-3".into()));
    // An hour-long window: capped at 30 s.
    let f = fixture_with(Some(HOUR), advisory_from_issuance, None);
    f.token().unwrap();
    f.provider.failures.lock().push_back(ErrorKind::Server);
    f.token().unwrap();
    f.clock.advance(Duration::from_millis(29_999));
    f.token().unwrap();
    assert_eq!(f.provider.calls(), 2);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.token(), Ok("token-3".into()));
    // A 100 ms window: at least 50 ms.
    let f = fixture_with(
        Some(Duration::from_millis(100)),
        advisory_from_issuance,
        None,
    );
    f.token().unwrap();
    f.provider.failures.lock().push_back(ErrorKind::Server);
    f.token().unwrap();
    f.clock.advance(Duration::from_millis(49));
    f.token().unwrap();
    assert_eq!(f.provider.calls(), 2);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.token(), Ok("token-3".into()));
}

// ---- phases, point 3 (expired) and point 4 (wall clock) ----

#[test]
fn phases_begin_exactly_at_their_deadlines() {
    // 100 s with the defaults: advisory from 75 s, mandatory from 90 s.
    let f = fixture(Some(Duration::from_secs(100)));
    let first = f.lifecycle.current().unwrap();
    let phase = || first.phase(&f.clock);
    assert_eq!(phase(), Phase::Fresh);
    f.clock.advance(Duration::from_millis(74_999));
    assert_eq!(phase(), Phase::Fresh);
    assert!(f.lifecycle.fresh().is_some());
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(phase(), Phase::Advisory);
    assert!(
        f.lifecycle.fresh().is_none(),
        "only fresh tokens on the hot path"
    );
    f.clock.advance(Duration::from_millis(14_999));
    assert_eq!(phase(), Phase::Advisory);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(phase(), Phase::Mandatory);
    f.clock.advance(Duration::from_millis(9_999));
    assert_eq!(phase(), Phase::Mandatory);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(phase(), Phase::Expired);
}

#[test]
fn a_suspend_is_seen_through_the_wall_clock() {
    let f = fixture(Some(HOUR));
    assert_eq!(f.token(), Ok("token-1".into()));
    // The laptop sleeps two hours: the monotonic clock stood still.
    f.clock.suspend(2 * HOUR);
    assert!(
        f.lifecycle.fresh().is_none(),
        "an expired token is not fresh"
    );
    assert_eq!(f.token(), Ok("token-2".into()));
    assert!(f.lifecycle.fresh().is_some(), "the new token is fresh");
}

#[test]
fn a_wall_clock_set_back_does_not_keep_a_token_alive() {
    let f = fixture(Some(HOUR));
    assert_eq!(f.token(), Ok("token-1".into()));
    f.clock.set_back_while(3 * HOUR, 2 * HOUR);
    assert!(f.lifecycle.fresh().is_none());
    assert_eq!(f.token(), Ok("token-2".into()));
}

#[test]
fn the_authorizers_expired_is_asked_on_the_hot_path() {
    let f = fixture(Some(HOUR));
    assert_eq!(f.token(), Ok("token-1".into()));
    assert!(f.lifecycle.fresh().is_some());
    f.provider.declared.store(true, Ordering::SeqCst);
    assert!(f.lifecycle.fresh().is_none());
    f.provider.declared.store(false, Ordering::SeqCst);
    assert!(f.lifecycle.fresh().is_some(), "asked each time, not once");
}

#[test]
fn an_authorizer_whose_expiry_is_time_only_is_not_asked_on_the_hot_path() {
    let provider = Provider::default();
    provider.time_only.store(true, Ordering::SeqCst);
    let f = fixture_of(provider, Some(HOUR), RefreshThresholds::default(), None);
    assert_eq!(f.token(), Ok("token-1".into()));
    let asked = f.provider.expired_calls.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert!(f.lifecycle.fresh().is_some());
    }
    assert_eq!(f.provider.expired_calls.load(Ordering::SeqCst), asked);
    // The slow path still asks, and honours the answer.
    f.provider.declared.store(true, Ordering::SeqCst);
    assert_eq!(f.token(), Ok("token-2".into()));
}

#[test]
fn a_token_without_expiry_is_fresh_until_withdrawn() {
    let f = fixture(None);
    assert_eq!(f.token(), Ok("token-1".into()));
    f.clock.advance(100 * HOUR);
    assert!(f.lifecycle.fresh().is_some());
    f.lifecycle.invalidate(None);
    assert!(f.lifecycle.fresh().is_none());
}

// ---- point 2: refusals ----

/// What the middleware does for one request to an API that always answers 401.
fn refused_request(f: &Fixture) {
    let generation = match f.lifecycle.fresh() {
        Some((_, generation)) => generation,
        None => f.generation(),
    };
    match f.lifecycle.rejected(generation).unwrap() {
        // The resend is refused too; the middleware reports it the same way.
        Rejection::Resend(current) => {
            assert!(matches!(
                f.lifecycle.rejected(current.generation).unwrap(),
                Rejection::GiveUp
            ));
        }
        Rejection::GiveUp => {}
    }
}

#[test]
fn thirty_refused_requests_cause_two_token_requests() {
    let f = fixture(Some(HOUR));
    for _ in 0..30 {
        refused_request(&f);
    }
    assert_eq!(
        f.lifecycle.token_requests(),
        TokenRequests {
            authorize: 1,
            refresh: 1
        }
    );
}

#[test]
fn a_refused_fresh_token_is_renewed_again_after_a_success_expiry_or_back_off() {
    let f = fixture(Some(HOUR));
    refused_request(&f);
    assert_eq!(f.provider.calls(), 2);
    let refused = f.generation();
    assert!(matches!(
        f.lifecycle.rejected(refused).unwrap(),
        Rejection::GiveUp
    ));

    // The back-off: once it has passed, one more token is tried.
    f.clock.advance(FIRST);
    assert!(matches!(
        f.lifecycle.rejected(refused).unwrap(),
        Rejection::Resend(_)
    ));
    assert_eq!(f.provider.calls(), 3);
    let next = f.generation();
    assert!(matches!(
        f.lifecycle.rejected(next).unwrap(),
        Rejection::GiveUp
    ));
    // Refused again with nothing succeeding in between: the back-off grows (2 s).
    f.clock.advance(FIRST);
    assert!(matches!(
        f.lifecycle.rejected(next).unwrap(),
        Rejection::GiveUp
    ));
    assert_eq!(f.provider.calls(), 3);

    // A success: the next refusal renews at once.
    f.lifecycle.request_succeeded(next);
    assert!(matches!(
        f.lifecycle.rejected(next).unwrap(),
        Rejection::Resend(_)
    ));
    assert_eq!(f.provider.calls(), 4);
    // ...and the back-off starts over at one second.
    let after = f.generation();
    assert!(matches!(
        f.lifecycle.rejected(after).unwrap(),
        Rejection::GiveUp
    ));
    f.clock.advance(FIRST);
    assert!(matches!(
        f.lifecycle.rejected(after).unwrap(),
        Rejection::Resend(_)
    ));
    assert_eq!(f.provider.calls(), 5);

    // Expiry: the token renewed because it expired is not a reply to a refusal, so its
    // first refusal renews.
    f.clock.advance(2 * HOUR);
    let renewed = f.generation();
    assert_eq!(f.provider.calls(), 6);
    assert!(matches!(
        f.lifecycle.rejected(renewed).unwrap(),
        Rejection::Resend(_)
    ));
    assert_eq!(f.provider.calls(), 7);
}

#[test]
fn a_refusal_while_renewal_backs_off_gives_up_at_once() {
    let f = fixture(Some(HOUR));
    let generation = f.generation();
    f.provider.failures.lock().push_back(ErrorKind::Server);
    assert_eq!(
        f.lifecycle.rejected(generation).err().map(|e| e.kind()),
        Some(ErrorKind::Server)
    );
    // The failed renewal is remembered: another 401 hands the 401 over, no new call.
    // (Taken apart from the call: a read guard held across `rejected` would deadlock a
    // renewal, which is what a broken back-off would start.)
    let refused = f.lifecycle.current.read().as_ref().unwrap().generation;
    assert!(matches!(
        f.lifecycle.rejected(refused),
        Ok(Rejection::GiveUp)
    ));
    assert_eq!(f.provider.calls(), 2);
}

#[test]
fn a_non_resendable_refusal_of_a_fresh_replacement_does_not_renew() {
    let f = fixture(Some(HOUR));
    let first = f.generation();
    f.lifecycle.invalidate(Some(first));
    let second = f.generation();
    assert_eq!(f.provider.calls(), 2);
    // The replacement was issued because of a refusal and is refused too.
    f.lifecycle.invalidate(Some(second));
    assert_eq!(f.generation(), second);
    assert_eq!(f.provider.calls(), 2);
}

// ---- point 10: generations, revoke ----

#[test]
fn a_late_refusal_for_an_old_token_keeps_the_newer_one() {
    let f = fixture(Some(HOUR));
    let old = f.generation();
    f.lifecycle.invalidate(None);
    let new = f.generation();
    assert!(new > old);
    f.lifecycle.invalidate(Some(old));
    assert!(f.lifecycle.fresh().is_some());
    match f.lifecycle.rejected(old).unwrap() {
        Rejection::Resend(current) => assert_eq!(current.generation, new),
        Rejection::GiveUp => panic!("the newer token is resent with"),
    }
    assert_eq!(f.provider.calls(), 2);
    f.lifecycle.invalidate(Some(new));
    assert!(f.lifecycle.fresh().is_none());
}

#[test]
fn revoke_logs_out_forgets_the_token_and_clears_the_store() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(
        Some(HOUR),
        RefreshThresholds::default(),
        Some(Box::new(Arc::clone(&store))),
    );
    assert_eq!(f.token(), Ok("token-1".into()));
    assert!(store.load().unwrap().is_some());
    f.lifecycle.revoke().unwrap();
    assert_eq!(*f.provider.revokes.lock(), ["token-1"]);
    assert!(store.load().unwrap().is_none());
    assert!(f.lifecycle.fresh().is_none());
    assert_eq!(f.token(), Ok("token-2".into()));
    assert_eq!(f.lifecycle.token_requests().authorize, 2);

    // A failing revoke is reported, and the token is forgotten all the same.
    f.provider.revoke_fails.store(true, Ordering::SeqCst);
    assert_eq!(f.lifecycle.revoke().unwrap_err().kind(), ErrorKind::Server);
    assert!(store.load().unwrap().is_none());
    assert!(f.lifecycle.fresh().is_none());
    // Nothing left to revoke: the authorizer is not called.
    f.provider.revoke_fails.store(false, Ordering::SeqCst);
    f.lifecycle.revoke().unwrap();
    assert_eq!(f.provider.revokes.lock().len(), 2);
}

#[test]
fn revoke_in_a_new_process_revokes_the_stored_token() {
    let store = Arc::new(MemoryStore::new());
    store
        .save(&Token::new("from-disk").with_expires_in(HOUR))
        .unwrap();
    let f = fixture_with(
        Some(HOUR),
        RefreshThresholds::default(),
        Some(Box::new(Arc::clone(&store))),
    );
    f.lifecycle.revoke().unwrap();
    assert_eq!(*f.provider.revokes.lock(), ["from-disk"]);
    assert!(store.load().unwrap().is_none());
}

#[test]
fn revoke_forgets_remembered_failures() {
    let f = fixture(Some(HOUR));
    f.provider.failures.lock().push_back(ErrorKind::Server);
    assert_eq!(f.token(), Err(ErrorKind::Server));
    f.lifecycle.revoke().unwrap();
    assert_eq!(
        f.token(),
        Ok("token-2".into()),
        "a new session starts afresh"
    );
}

#[test]
fn a_store_that_cannot_clear_is_reported_by_revoke() {
    struct Forgetful;
    impl TokenStore for Forgetful {
        fn load(&self) -> Result<Option<Token>, Error> {
            Ok(None)
        }
        fn save(&self, _: &Token) -> Result<(), Error> {
            Ok(())
        }
    }
    let f = fixture_with(
        Some(HOUR),
        RefreshThresholds::default(),
        Some(Box::new(Forgetful)),
    );
    f.token().unwrap();
    assert_eq!(f.lifecycle.revoke().unwrap_err().kind(), ErrorKind::Storage);
    assert_eq!(f.provider.revokes.lock().len(), 1);
}

// ---- point 11: re-entrance without the middleware ----

#[test]
fn the_renewing_thread_is_known_while_it_calls_the_authorizer() {
    let f = fixture(Some(HOUR));
    f.provider.lifecycle.set(Arc::clone(&f.lifecycle)).ok();
    assert!(!f.lifecycle.renewing_on_this_thread());
    f.token().unwrap();
    assert!(f.provider.renewing_seen.load(Ordering::SeqCst));
    assert!(!f.lifecycle.renewing_on_this_thread(), "only while it does");
    {
        // Holding the authorizer is not calling it: the mark was taken off.
        let _renewer = f.lifecycle.renewer.lock();
        assert!(!f.lifecycle.renewing_on_this_thread());
        *f.lifecycle.renewing_thread.lock() = Some(thread::current().id());
        assert!(
            !f.lifecycle.renewing_on_this_thread(),
            "the flag is checked first"
        );
        *f.lifecycle.renewing_thread.lock() = None;
    }
    // Another thread, while this one holds the authorizer, is not the renewing thread.
    let _renewer = f.lifecycle.renewer.lock();
    let _marked = f.lifecycle.calling_authorizer();
    assert!(f.lifecycle.renewing_on_this_thread());
    let lifecycle = Arc::clone(&f.lifecycle);
    assert!(
        !thread::spawn(move || lifecycle.renewing_on_this_thread())
            .join()
            .unwrap()
    );
}

// ---- the store's advisory try_lock ----

#[test]
fn an_advisory_refresh_does_not_wait_for_another_process() {
    /// A shared store whose lock another process holds; counts the blocking waits.
    #[derive(Default)]
    struct Busy {
        inner: MemoryStore,
        waits: AtomicUsize,
        loads: AtomicUsize,
        try_locks: AtomicUsize,
    }
    impl TokenStore for Busy {
        fn load(&self) -> Result<Option<Token>, Error> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.inner.load()
        }
        fn save(&self, token: &Token) -> Result<(), Error> {
            self.inner.save(token)
        }
        fn lock(&self) -> Result<StoreLock, Error> {
            self.waits.fetch_add(1, Ordering::SeqCst);
            Ok(StoreLock::none())
        }
        fn try_lock(&self) -> Result<Option<StoreLock>, Error> {
            self.try_locks.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    }
    let store = Arc::new(Busy::default());
    let advisory_from_issuance = RefreshThresholds {
        advisory_fraction: 1.0,
        advisory_max: Duration::from_secs(7200),
        mandatory_fraction: 0.0,
        ..RefreshThresholds::default()
    };
    let f = fixture_with(
        Some(HOUR),
        advisory_from_issuance,
        Some(Box::new(Arc::clone(&store))),
    );
    assert_eq!(f.token(), Ok("token-1".into()));
    let waits = store.waits.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(f.token(), Ok("token-1".into()));
    }
    assert_eq!(
        store.waits.load(Ordering::SeqCst),
        waits,
        "no blocking wait"
    );
    assert_eq!(f.provider.calls(), 1, "the other process renews");
    // While the other process holds the lease, this one does not read the store and ask
    // for the lease on every call: once, then again after the deferral (a tenth of the
    // hour-long advisory window, capped at 30 s).
    let (loads, try_locks) = (
        store.loads.load(Ordering::SeqCst),
        store.try_locks.load(Ordering::SeqCst),
    );
    for _ in 0..50 {
        assert_eq!(f.token(), Ok("token-1".into()));
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), loads);
    assert_eq!(store.try_locks.load(Ordering::SeqCst), try_locks);
    f.clock.advance(Duration::from_secs(30));
    assert_eq!(f.token(), Ok("token-1".into()));
    assert_eq!(store.try_locks.load(Ordering::SeqCst), try_locks + 1);
}

#[test]
fn a_failed_renewal_in_the_mandatory_margin_defers_the_next_one() {
    let thresholds = RefreshThresholds {
        mandatory_fraction: 1.0,
        mandatory_max: HOUR,
        advisory_fraction: 1.0,
        advisory_max: HOUR,
    };
    // The advisory window is empty here, so the deferral is its floor, 50 ms.
    let f = fixture_with(Some(Duration::from_secs(600)), thresholds, None);
    assert_eq!(f.token(), Ok("token-1".into()));
    f.provider.failures.lock().push_back(ErrorKind::Server);
    assert_eq!(f.token(), Ok("token-1".into()), "valid: kept");
    for _ in 0..5 {
        assert_eq!(f.token(), Ok("token-1".into()));
    }
    assert_eq!(f.provider.calls(), 2, "no renewal while deferred");
    f.clock.advance(Duration::from_millis(50));
    assert_eq!(f.token(), Ok("token-3".into()));
}

#[test]
fn jitter_takes_up_to_a_quarter_off_at_random() {
    let wait = Duration::from_secs(8);
    let samples: Vec<Duration> = (0..64).map(|_| super::back_off::jittered(wait)).collect();
    assert!(
        samples
            .iter()
            .all(|s| *s <= wait && *s >= wait.mul_f64(0.75)),
        "{samples:?}"
    );
    assert!(
        samples.iter().any(|s| *s != samples[0]),
        "the waits differ: {samples:?}"
    );
    let units: Vec<f64> = (0..64).map(|_| super::back_off::random_unit()).collect();
    assert!(units.iter().all(|u| (0.0..1.0).contains(u)), "{units:?}");
    assert!(units.iter().any(|u| *u > 0.5) && units.iter().any(|u| *u < 0.5));
}

#[test]
fn a_waiter_does_not_take_an_outcome_withdrawn_since() {
    // Plays a caller that saw the renewal count, then waited while a renewal ran and its
    // token was withdrawn again: it renews instead of taking the withdrawn token.
    let f = fixture(Some(HOUR));
    assert_eq!(f.token(), Ok("token-1".into()));
    let settled = f.lifecycle.settled.load(Ordering::Acquire);
    let seen = f.lifecycle.current.read().clone();
    f.lifecycle.invalidate(None);
    assert_eq!(f.token(), Ok("token-2".into()));
    f.lifecycle.invalidate(None);
    let mut renewer = f.lifecycle.renewer.lock();
    let got = f
        .lifecycle
        .renew_with(&mut renewer, settled, seen.as_ref(), Reason::Required)
        .unwrap();
    assert_eq!(got.token.access_token(), "token-3");
}

#[test]
fn only_a_refresh_that_extends_the_expiry_lets_the_next_one_come_at_once() {
    let advisory_from_issuance = RefreshThresholds {
        advisory_fraction: 1.0,
        advisory_max: Duration::from_secs(7200),
        mandatory_fraction: 0.0,
        ..RefreshThresholds::default()
    };
    let f = fixture_with(Some(Duration::from_secs(600)), advisory_from_issuance, None);
    assert_eq!(f.token(), Ok("token-1".into()));
    // Each refresh one second later expires one second later: no deferral between them.
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.token(), Ok("token-2".into()));
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.token(), Ok("token-3".into()));
    // A refresh at the same instant expires at the same time: the next one is deferred.
    assert_eq!(f.token(), Ok("token-4".into()));
    assert_eq!(f.token(), Ok("token-4".into()));
    assert_eq!(f.provider.calls(), 4);
}

// ---- background refresh, token change callback, counters ----

mod background;
