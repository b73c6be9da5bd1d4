//! The background refresh step with the hand-moved clock (the test calls the step the thread
//! would run), the token change callback, and the counters behind `Stats`.

use super::*;
use crate::base::lifecycle::background::IDLE;

/// A fixture whose background refresh is driven by the test.
fn driven(lifetime: Duration, store: Option<Box<dyn TokenStore>>) -> Fixture {
    let f = fixture_with(Some(lifetime), RefreshThresholds::default(), store);
    let lifecycle = Arc::into_inner(f.lifecycle).expect("not shared yet");
    Fixture {
        lifecycle: Arc::new(lifecycle.background(Background::Driven)),
        ..f
    }
}

#[test]
fn the_background_step_renews_as_the_advisory_window_opens_and_requests_do_not() {
    // An hour: the advisory window is the last 5 minutes, the mandatory margin the last one.
    let f = driven(HOUR, None);
    assert_eq!(f.lifecycle.background_step(), IDLE, "no token");
    assert_eq!(f.token(), Ok("token-1".into()));
    let wait = f.lifecycle.background_step();
    let opens = Duration::from_secs(55 * 60);
    assert!(
        wait >= opens && wait <= opens + Duration::from_secs(24),
        "{wait:?}: within the first tenth of the 4-minute window"
    );
    f.clock.advance(opens + Duration::from_secs(1));
    for _ in 0..5 {
        assert_eq!(f.token(), Ok("token-1".into()), "requests do not renew");
        assert!(
            f.lifecycle.fresh().is_some(),
            "the hot path goes on through the window"
        );
    }
    assert_eq!(f.provider.calls(), 1);
    assert_eq!(f.lifecycle.background_step(), Duration::ZERO);
    assert_eq!(f.provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(f.token(), Ok("token-2".into()));
    // The thread stuck: from the mandatory margin on, requests renew themselves.
    f.clock.advance(Duration::from_secs(59 * 60 + 30));
    assert!(f.lifecycle.fresh().is_none());
    assert_eq!(f.lifecycle.background_step(), IDLE);
    assert_eq!(f.token(), Ok("token-3".into()));
    assert_eq!(f.provider.calls(), 3);
}

/// Provider calls while it is down, from the first token's advisory window to a minute past
/// its expiry, with a request every second, and with or without the background step.
fn calls_while_down(background_on: bool) -> usize {
    let f = if background_on {
        driven(HOUR, None)
    } else {
        fixture(Some(HOUR))
    };
    assert_eq!(f.token(), Ok("token-1".into()));
    *f.provider.down.lock() = Some(ErrorKind::Server);
    f.clock.advance(Duration::from_secs(54 * 60));
    let mut step_at = Duration::ZERO;
    let mut now = Duration::ZERO;
    let tick = Duration::from_secs(1);
    while now < Duration::from_secs(7 * 60) {
        if background_on && now >= step_at {
            step_at = now + f.lifecycle.background_step();
        }
        let _ = f.token();
        f.clock.advance(tick);
        now += tick;
    }
    f.provider.calls() - 1
}

#[test]
fn a_failing_provider_sees_no_more_requests_with_background_refresh() {
    let without = calls_while_down(false);
    let with = calls_while_down(true);
    assert!(without > 0, "the scenario makes requests renew");
    assert!(with <= without, "{with} with, {without} without");
    assert!(with > 0, "the background step tried too");
}

#[test]
fn in_a_fleet_the_background_step_takes_the_lease_without_waiting_or_defers() {
    #[derive(Default)]
    struct Held {
        inner: MemoryStore,
        waits: AtomicUsize,
    }
    impl TokenStore for Held {
        fn load(&self) -> Result<Option<Token>, Error> {
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
            Ok(None)
        }
    }
    let store = Arc::new(Held::default());
    let f = driven(HOUR, Some(Box::new(Arc::clone(&store))));
    assert_eq!(f.token(), Ok("token-1".into()));
    let waits = store.waits.load(Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(55 * 60 + 30));
    assert_eq!(f.lifecycle.background_step(), Duration::ZERO, "it tried");
    assert_eq!(f.provider.calls(), 1, "another process holds the lease");
    assert_eq!(
        store.waits.load(Ordering::SeqCst),
        waits,
        "never a blocking lock"
    );
    let wait = f.lifecycle.background_step();
    assert_eq!(
        wait,
        Duration::from_secs(24),
        "paced: a tenth of the window"
    );
    assert_eq!(f.provider.calls(), 1);
    // The other process stored its token: the next step adopts it.
    let theirs = Token::new("theirs")
        .with_expires_at(f.clock.wall() + HOUR)
        .with_lifetime(Some(HOUR));
    store.inner.save(&theirs).unwrap();
    f.clock.advance(wait);
    f.lifecycle.background_step();
    assert_eq!(f.token(), Ok("theirs".into()));
    assert_eq!(f.provider.calls(), 1);
}

#[test]
fn each_new_token_is_announced_once_outside_the_locks_and_adopted_ones_never() {
    let store = Arc::new(MemoryStore::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let f = fixture_with(
        Some(HOUR),
        RefreshThresholds::default(),
        Some(Box::new(Arc::clone(&store))),
    );
    let lifecycle = Arc::into_inner(f.lifecycle).expect("not shared yet");
    let record = Arc::clone(&seen);
    let me: Arc<OnceLock<Weak<Lifecycle>>> = Arc::default();
    let reach = Arc::clone(&me);
    let lifecycle = Arc::new(lifecycle.on_token_change(Box::new(move |token| {
        // Nothing is locked: using the lifecycle from here does not deadlock.
        let lifecycle = reach.get().and_then(Weak::upgrade).expect("alive");
        let now = lifecycle
            .current()
            .expect("in use")
            .token
            .access_token()
            .to_owned();
        assert_eq!(now, token.access_token(), "in use before it is announced");
        record.lock().push(now);
    })));
    me.set(Arc::downgrade(&lifecycle)).ok();
    let f = Fixture { lifecycle, ..f };
    assert_eq!(f.token(), Ok("token-1".into()));
    f.lifecycle.invalidate(None);
    let together = f.together(8);
    assert!(
        together.iter().all(|t| *t == Ok("token-2".into())),
        "{together:?}"
    );
    assert_eq!(*seen.lock(), ["token-1", "token-2"]);
    // Another process stores a newer token and ours is withdrawn: adopted, not announced.
    let theirs = Token::new("theirs")
        .with_expires_at(f.clock.wall() + HOUR)
        .with_lifetime(Some(HOUR));
    store.save(&theirs).unwrap();
    f.lifecycle.invalidate(None);
    assert_eq!(f.token(), Ok("theirs".into()));
    assert_eq!(*seen.lock(), ["token-1", "token-2"]);
}

#[test]
fn every_load_is_one_hit_miss_or_error_and_failed_saves_and_locks_count() {
    /// A store that fails while told to, and counts what it answered.
    #[derive(Default)]
    struct Flaky {
        inner: MemoryStore,
        failing: AtomicBool,
        loads_answered: AtomicUsize,
        failures: AtomicUsize,
    }
    impl Flaky {
        fn fail(&self) -> Result<(), Error> {
            if self.failing.load(Ordering::SeqCst) {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(Error::new(ErrorKind::Storage, "down"));
            }
            Ok(())
        }
    }
    impl TokenStore for Flaky {
        fn load(&self) -> Result<Option<Token>, Error> {
            self.fail()?;
            self.loads_answered.fetch_add(1, Ordering::SeqCst);
            self.inner.load()
        }
        fn save(&self, token: &Token) -> Result<(), Error> {
            self.fail()?;
            self.inner.save(token)
        }
        fn lock(&self) -> Result<StoreLock, Error> {
            self.fail()?;
            Ok(StoreLock::none())
        }
    }
    let store = Arc::new(Flaky::default());
    let f = fixture_with(
        Some(HOUR),
        RefreshThresholds::default(),
        Some(Box::new(Arc::clone(&store))),
    );
    let counts = |f: &Fixture| {
        let stats = f.lifecycle.counters().snapshot();
        (stats.store_hits, stats.store_misses, stats.store_errors)
    };
    // Empty store: two misses (before and under the lock), one login.
    assert_eq!(f.token(), Ok("token-1".into()));
    assert_eq!(counts(&f), (0, 2, 0));
    // Our own token in the store is the one being replaced: a miss each time.
    f.lifecycle.invalidate(None);
    assert_eq!(f.token(), Ok("token-2".into()));
    assert_eq!(counts(&f), (0, 4, 0));
    // Failing store: the load, the lock, and the load after the lock failed.
    store.failing.store(true, Ordering::SeqCst);
    f.lifecycle.invalidate(None);
    assert_eq!(f.token(), Err(ErrorKind::Storage));
    assert_eq!(counts(&f), (0, 4, 3));
    store.failing.store(false, Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(2));
    // A token another process stored: a hit.
    let theirs = Token::new("theirs")
        .with_expires_at(f.clock.wall() + HOUR)
        .with_lifetime(Some(HOUR));
    store.inner.save(&theirs).unwrap();
    assert_eq!(f.token(), Ok("theirs".into()));
    let (hits, misses, errors) = counts(&f);
    assert_eq!(hits, 1);
    assert_eq!(
        (hits + misses) as usize,
        store.loads_answered.load(Ordering::SeqCst),
        "every answered load is a hit or a miss"
    );
    assert_eq!(errors as usize, store.failures.load(Ordering::SeqCst));
    let stats = f.lifecycle.counters().snapshot();
    assert_eq!(
        (stats.authorize_ok, stats.refresh_ok),
        (
            f.provider.authorizes.load(Ordering::SeqCst) as u64,
            f.provider.refreshes.load(Ordering::SeqCst) as u64
        )
    );
}

#[test]
fn the_hot_path_takes_no_lock_once_a_thread_has_seen_the_token() {
    let provider = Provider::default();
    provider.time_only.store(true, Ordering::SeqCst);
    let f = fixture_of(provider, Some(HOUR), RefreshThresholds::default(), None);
    assert_eq!(f.token(), Ok("token-1".into()));
    let (seen, seen_rx) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let (done, done_rx) = std::sync::mpsc::channel();
    let lifecycle = Arc::clone(&f.lifecycle);
    let caller = thread::spawn(move || {
        assert!(lifecycle.fresh().is_some(), "this thread's first look");
        seen.send(()).unwrap();
        go_rx.recv().unwrap();
        done.send(lifecycle.fresh().map(|(_, generation)| generation))
            .unwrap();
    });
    seen_rx.recv().unwrap();
    // A writer holds the token's lock: a hot path that took it would wait for it.
    let held = f.lifecycle.current.write();
    go.send(()).unwrap();
    let generation = done_rx.recv_timeout(Duration::from_secs(20));
    drop(held);
    caller.join().unwrap();
    assert_eq!(
        generation,
        Ok(Some(1)),
        "answered from the thread's own view"
    );
    // A withdrawal moves the epoch: the view is not used again.
    f.lifecycle.invalidate(None);
    assert!(f.lifecycle.fresh().is_none());
}
