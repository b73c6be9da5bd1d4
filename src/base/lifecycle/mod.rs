//! The token lifecycle: keep a usable token, renew it ahead of expiry, once for everyone,
//! and fail well when renewing fails. It knows nothing of HTTP: the middleware hands it a
//! `prepare` function that turns a token into a header value, and tells it what the server
//! answered (like Go's `ReuseTokenSource` under its `Transport`).
//!
//! # A token's phases
//!
//! A token moves through four phases as it ages (the windows scale with its lifetime, see
//! [`RefreshThresholds`]). Its age is read from the monotonic clock and from the wall clock,
//! whichever says older, so that neither a suspend nor a clock set back keeps a token alive.
//!
//! ```text
//!  arrives ── fresh ──┬── advisory ───┬── mandatory ───┬── expired
//!                     │ one caller    │ callers wait   │ callers wait for one
//!                     │ refreshes,    │ for one        │ renewal; a failure is
//!                     │ the others go │ renewal; if it │ their error
//!                     │ on with it    │ fails, the     │
//!                     │               │ token is used  │
//! ```
//!
//! A token leaves early (straight to expired) when it is withdrawn: the server refused it
//! (`rejected`, `invalidate(Some(generation))`), the user asked for a new one
//! (`invalidate(None)`), or the authorizer's own [`expired`](crate::Authorizer::expired)
//! says so.
//!
//! # Renewals
//!
//! ```text
//!              ┌──── success ────► new token (back-off cleared) ─────────┐
//!  renewal ────┤                                                         ├─► every caller
//!  (one at a   └──── failure ──┬─► old token still valid: it is kept,    │   that waited
//!   time)                      │   retried after a short back-off ───────┤   for it gets
//!                              └─► no usable token: the error, and the   │   this outcome
//!                                  same error at once to every caller ───┘
//!                                  for 1 s, 2 s, 4 s … 30 s (jittered)
//! ```
//!
//! Renewals are single flight: the authorizer sits behind a mutex held across its network
//! call. A caller that had to wait for it compares the renewal count from before its wait
//! with the count after, and takes the outcome of the renewal that ran meanwhile instead
//! of running another: 32 threads meeting a provider that is down cause one call.
//!
//! # Refusals (`401`)
//!
//! A refused token is withdrawn and renewed once. If the new token is refused too before
//! any request with it succeeded, the server objects to something a token cannot fix (an
//! audience, a permission, an API key): the lifecycle answers `GiveUp` (the caller sees
//! the `401`) instead of renewing per request, until a request succeeds, the token
//! expires, or a back-off (the same schedule) has passed.
//!
//! # The hot path
//!
//! [`Lifecycle::fresh`]: one load of the lifecycle's epoch, this thread's own view of the
//! token ([`local`]: no lock, no shared reference count, no counter), one wall-clock read
//! (it sees a suspend; a clock set back past the token's arrival sends the caller to the
//! slow path, which reads both clocks) and a clone of the thread's own header copy. It never
//! waits for a network call: while a renewal holds the authorizer, the token it replaces
//! stays in use until it is done. An authorizer that does not declare
//! [`expiry_by_time_only`](crate::Authorizer::expiry_by_time_only) is asked its `expired()`
//! there too, under a `try_lock` and the shared read lock; the slow path
//! ([`Lifecycle::current`]) always asks.
//!
//! # Background refresh
//!
//! With [`Background::Thread`], a thread of the lifecycle's own ([`background`]) renews as
//! the advisory window opens, through the same single flight, store lease and pacing; the
//! requests then go on with the token through the window (the hot path counts it fresh
//! until the mandatory margin) and renew themselves only from the margin on.

mod back_off;
mod background;
mod current;
mod local;
#[cfg(test)]
mod tests;
mod thresholds;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::{self, Thread, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard, RwLock};
use ureq::http::HeaderValue;

use self::back_off::{BackOff, Remembered};
pub(crate) use self::current::Current;
use self::current::{Clock, INVALIDATED, Phase, Prepare, REFUSED, SystemClock};
use self::local::Epoch;
pub use self::thresholds::RefreshThresholds;
use super::stats::{Call, Counters, StoreOp};
use super::trace;
use crate::store::TokenStore;
use crate::{Authorizer, Error, ErrorKind, Token};

/// Called with every new token the authorizer returns
/// (`AuthMiddlewareBuilder::on_token_change`).
pub(crate) type OnChange = Box<dyn Fn(&Token) + Send + Sync>;

/// Who renews in the advisory window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Background {
    /// The requests: the first to notice renews, the others go on.
    Off,
    /// A thread of the lifecycle's own, started with the first token.
    Thread,
    /// Tests call `background_step` themselves, with their clock.
    #[cfg(test)]
    Driven,
}

/// What to do after a `401`, see [`Lifecycle::rejected`].
pub(crate) enum Rejection {
    /// Resend once, with this (renewed or newer) token.
    Resend(Arc<Current>),
    /// Do not resend: hand the `401` to the caller.
    GiveUp,
}

/// Why a renewal is happening; it decides what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// No token yet.
    First,
    /// In the advisory window: a failure keeps the current token.
    Advisory,
    /// In the mandatory margin, expired or invalidated: a failure keeps the token only
    /// while it has not expired.
    Required,
    /// The authorizer's `expired()` said the token must not be used.
    DeclaredExpired,
    /// The server refused the token (a 401): the new token is marked `after_rejection`.
    Rejected,
}

/// The wait between proactive attempts: a tenth of the advisory window, so a handful of
/// attempts before the margin.
fn advisory_pace(current: &Current) -> Duration {
    (current.advisory_window() / 10).clamp(Duration::from_millis(50), Duration::from_secs(30))
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::First => "first",
            Reason::Advisory => "advisory",
            Reason::Required => "required",
            Reason::DeclaredExpired => "declared_expired",
            Reason::Rejected => "rejected",
        }
    }
}

/// The authorizer and what its last renewal came to; one lock for both, held across the
/// network call.
struct Renewer {
    authorizer: Box<dyn Authorizer>,
    /// The outcome of the last renewal, for the callers that waited for it.
    outcome: Option<Result<Arc<Current>, Remembered>>,
    /// A new token from the authorizer, to hand to `on_change` once the lock is released.
    announce: Option<Arc<Current>>,
}

/// One authorizer and the token it last produced, shared by every clone of a middleware.
pub(crate) struct Lifecycle {
    renewer: Mutex<Renewer>,
    current: RwLock<Option<Arc<Current>>>,
    /// Renewals that came to an outcome, counted under the renewer lock: a caller that
    /// finds it moved while it waited for the lock takes that outcome.
    settled: AtomicU64,
    next_generation: AtomicU64,
    /// No proactive renewal before this point (nanoseconds since `started`): set after an
    /// advisory refresh failed, or returned a token that expires no later than the old one.
    renew_not_before: AtomicU64,
    /// The last renewal failed with no usable token left: its error and back-off.
    failure: Mutex<(BackOff, Option<Remembered>)>,
    /// The last token refused although freshly issued (its generation) and the back-off
    /// before another token is tried.
    refusals: Mutex<(BackOff, u64)>,
    /// The newest generation a request succeeded with.
    proven: AtomicU64,
    /// The thread calling the authorizer, while it does, and whether one does.
    renewing_thread: Mutex<Option<ThreadId>>,
    renewing: AtomicBool,
    started: Instant,
    clock: Box<dyn Clock>,
    /// The authorizer's [`Authorizer::expiry_by_time_only`]: the hot path need not ask
    /// its `expired()`.
    expiry_by_time_only: bool,
    thresholds: RefreshThresholds,
    /// Where tokens are kept beyond this process, if anywhere.
    store: Option<Box<dyn TokenStore>>,
    prepare: Prepare,
    /// Tells this lifecycle apart in the hot path's per-thread views.
    id: u64,
    /// Moves whenever the token in use changes or is withdrawn (see [`local`]).
    epoch: Epoch,
    counters: Counters,
    /// For traces only.
    client_id: String,
    on_change: Option<OnChange>,
    background: Background,
    /// The background thread, once started (`None` inside: the system refused one).
    refresher: OnceLock<Option<Thread>>,
    /// This lifecycle, for the background thread, which must not keep it alive.
    me: Weak<Lifecycle>,
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        // Wake the background thread: its next upgrade fails and it ends.
        if let Some(Some(thread)) = self.refresher.get() {
            thread.unpark();
        }
    }
}

impl Lifecycle {
    /// `prepare` turns a token into what the hot path hands out (the middleware builds the
    /// header value there): the lifecycle knows nothing of headers.
    pub(crate) fn new(
        authorizer: Box<dyn Authorizer>,
        thresholds: RefreshThresholds,
        store: Option<Box<dyn TokenStore>>,
        prepare: Prepare,
    ) -> Lifecycle {
        let expiry_by_time_only = authorizer.expiry_by_time_only();
        let client_id = authorizer.client_info().client_id().to_owned();
        Lifecycle {
            expiry_by_time_only,
            renewer: Mutex::new(Renewer {
                authorizer,
                outcome: None,
                announce: None,
            }),
            current: RwLock::new(None),
            settled: AtomicU64::new(0),
            next_generation: AtomicU64::new(1),
            renew_not_before: AtomicU64::new(0),
            failure: Mutex::new((BackOff::default(), None)),
            refusals: Mutex::new((BackOff::default(), 0)),
            proven: AtomicU64::new(0),
            renewing_thread: Mutex::new(None),
            renewing: AtomicBool::new(false),
            started: SystemClock.monotonic(),
            clock: Box::new(SystemClock),
            thresholds,
            store,
            prepare,
            id: local::next_id(),
            epoch: Epoch::default(),
            counters: Counters::default(),
            client_id,
            on_change: None,
            background: Background::Off,
            refresher: OnceLock::new(),
            me: Weak::new(),
        }
    }

    /// Calls `f` with every new token the authorizer returns, once it is in use and the
    /// authorizer's lock is released (so `f` may take its time, or use the middleware).
    pub(crate) fn on_token_change(mut self, f: OnChange) -> Lifecycle {
        self.on_change = Some(f);
        self
    }

    /// Who renews in the advisory window.
    pub(crate) fn background(mut self, background: Background) -> Lifecycle {
        self.background = background;
        self
    }

    /// The lifecycle, shared: the background thread holds it by a `Weak` to itself.
    pub(crate) fn shared(mut self) -> Arc<Lifecycle> {
        Arc::new_cyclic(|me| {
            self.me = me.clone();
            self
        })
    }

    /// The same lifecycle reading `clock` instead of the system's.
    #[cfg(test)]
    fn with_clock(mut self, clock: Box<dyn Clock>) -> Lifecycle {
        self.started = clock.monotonic();
        self.clock = clock;
        self
    }

    /// The hot path: the prepared value and generation of a fresh token, else `None` (then
    /// call [`current`](Self::current)).
    pub(crate) fn fresh(&self) -> Option<(HeaderValue, u64)> {
        self.with_fresh(|current, header| (header.clone(), current.generation))
    }

    /// The hot path for the access token itself.
    pub(crate) fn fresh_access_token(&self) -> Option<String> {
        self.with_fresh(|current, _| current.token.access_token().to_owned())
    }

    /// `use_it` on the fresh token, if there is one. For an authorizer whose expiry is its
    /// time this writes no shared memory (this thread's view, see [`local`]); another
    /// authorizer is asked its `expired()` under the shared lock, which writes anyway.
    fn with_fresh<R>(&self, use_it: impl FnOnce(&Current, &HeaderValue) -> R) -> Option<R> {
        // With background refresh, requests go on with the token through the advisory
        // window: the thread renews it.
        let through_advisory = self.background_on();
        if !self.expiry_by_time_only {
            let current = self.current.read();
            let current = current.as_ref()?;
            if !current.fresh_by_wall(&*self.clock, through_advisory)
                || self.declared_expired(current)
            {
                return None;
            }
            return Some(use_it(current, &current.header));
        }
        let epoch = self.epoch.read();
        local::with_view(
            self.id,
            epoch,
            || self.current.read().clone(),
            |current, header| {
                current
                    .fresh_by_wall(&*self.clock, through_advisory)
                    .then(|| use_it(current, header))
            },
        )
    }

    /// The counters behind [`Stats`](super::Stats).
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The token in memory, fresh or not, without renewing or waiting.
    pub(crate) fn latest(&self) -> Option<Arc<Current>> {
        self.current.read().clone()
    }

    /// A token that may be used now, renewing it first if it must be.
    pub(crate) fn current(&self) -> Result<Arc<Current>, Error> {
        let settled = self.settled.load(Ordering::Acquire);
        let Some(current) = self.current.read().clone() else {
            return self.renew_blocking(settled, None, Reason::First);
        };
        match current.phase(&*self.clock) {
            Phase::Fresh | Phase::Advisory if self.declared_expired(&current) => {
                self.renew_blocking(settled, Some(current), Reason::DeclaredExpired)
            }
            Phase::Fresh => Ok(current),
            Phase::Advisory if self.renewal_deferred() || self.background_on() => Ok(current),
            // Whoever gets the lock refreshes; the others go on with the valid token.
            Phase::Advisory => match self.renewer.try_lock() {
                Some(renewer) => {
                    self.renew_then_announce(renewer, settled, Some(&current), Reason::Advisory)
                }
                None => Ok(current),
            },
            Phase::Mandatory if self.renewal_deferred() => Ok(current),
            Phase::Mandatory => self.renew_blocking(settled, Some(current), Reason::Required),
            Phase::Expired if current.refused() => {
                self.renew_blocking(settled, Some(current), Reason::Rejected)
            }
            Phase::Expired => self.renew_blocking(settled, Some(current), Reason::Required),
        }
    }

    /// The token sent with `generation` got a `401`. `Resend`: a renewed (or newer) token
    /// to resend once with. `GiveUp`: the token was issued in reply to an earlier refusal
    /// and is refused too, renewal is backing off, or the token was revoked meanwhile: do
    /// not resend, hand the `401` to the caller.
    pub(crate) fn rejected(&self, generation: u64) -> Result<Rejection, Error> {
        let settled = self.settled.load(Ordering::Acquire);
        let Some(current) = self.current.read().clone() else {
            return Ok(Rejection::GiveUp);
        };
        if current.generation != generation {
            // Another request already renewed it.
            return self.current().map(Rejection::Resend);
        }
        if self.refusing(&current) || self.remembered_failure().is_some() {
            return Ok(Rejection::GiveUp);
        }
        self.withdraw(&current, REFUSED);
        self.renew_blocking(settled, Some(current), Reason::Rejected)
            .map(Rejection::Resend)
    }

    /// A request sent with `generation` got an answer other than `401`: a token issued
    /// after a refusal is accepted after all, and the next refusal renews again.
    pub(crate) fn request_succeeded(&self, generation: u64) {
        // Read before writing: on the hot path the line stays shared between cores.
        // (Equivalent mutants: without the check, or with `<=`, `fetch_max` gives the same
        // result, slower.)
        if self.proven.load(Ordering::Relaxed) < generation {
            self.proven.fetch_max(generation, Ordering::Relaxed);
        }
    }

    /// The next use renews, unless the token in use is newer than `generation` (a late
    /// `401` for an old token). `Some(generation)` says the server refused that token;
    /// `None` (the user's "renew next time") withdraws whatever token is current.
    pub(crate) fn invalidate(&self, generation: Option<u64>) {
        let Some(current) = self.current.read().clone() else {
            return;
        };
        match generation {
            None => self.withdraw(&current, INVALIDATED),
            Some(generation) if generation == current.generation => {
                if !self.refusing(&current) {
                    self.withdraw(&current, REFUSED);
                }
            }
            Some(_) => {}
        }
    }

    /// Logout: the authorizer's `revoke` for the current (or stored) token, then the token
    /// is forgotten and the store cleared whatever `revoke` returned; returns `revoke`'s
    /// error, else the store's. The next use logs in again.
    #[allow(dead_code, reason = "CONTRACT: the middleware side calls it")]
    pub(crate) fn revoke(&self) -> Result<(), Error> {
        let mut renewer = self.renewer.lock();
        let taken = self.current.write().take();
        let token = match taken {
            Some(current) => {
                self.withdraw(&current, INVALIDATED);
                Some(current.token.clone())
            }
            // Used for the revocation: a hit.
            None => self.store.as_ref().and_then(|store| {
                let stored = self.load(store.as_ref());
                self.count_use(stored.as_ref(), stored.is_some());
                stored
            }),
        };
        let revoked = match &token {
            Some(token) => {
                let _marked = self.calling_authorizer();
                renewer.authorizer.revoke(token)
            }
            None => Ok(()),
        };
        let cleared = self.store.as_ref().map_or(Ok(()), |store| {
            store
                .clear()
                .inspect_err(|error| self.counters.store_error(StoreOp::Clear, error))
        });
        // What was remembered was about the session that just ended.
        renewer.outcome = None;
        *self.failure.lock() = (BackOff::default(), None);
        self.refusals.lock().0.reset();
        self.renew_not_before.store(0, Ordering::Relaxed);
        revoked.and(cleared)
    }

    /// How many times the authorizer was asked for a token.
    pub(crate) fn token_requests(&self) -> super::TokenRequests {
        self.counters.token_requests()
    }

    /// Whether this thread is inside a call to the authorizer (whose HTTP client may carry
    /// the middleware that asked for the token: that request must pass through, or it
    /// would wait for itself).
    pub(crate) fn renewing_on_this_thread(&self) -> bool {
        // One load when no renewal runs (this is asked on every request).
        self.renewing.load(Ordering::Acquire)
            && *self.renewing_thread.lock() == Some(thread::current().id())
    }

    /// Takes `current` out of use (`why` is [`INVALIDATED`] or [`REFUSED`]).
    fn withdraw(&self, current: &Current, why: u8) {
        current.withdraw(why);
        self.epoch.bump();
    }

    /// Puts `current` in use, and starts (or wakes) the background thread.
    fn install(&self, current: Option<Arc<Current>>) {
        *self.current.write() = current;
        self.epoch.bump();
        if self.background == Background::Thread {
            let refresher = self
                .refresher
                .get_or_init(|| background::start(self.me.clone(), self.client_id.clone()));
            if let Some(thread) = refresher {
                // Its wait was for the token before.
                thread.unpark();
            }
        }
    }

    /// Whether a background thread renews in the advisory window.
    fn background_on(&self) -> bool {
        match self.background {
            Background::Off => false,
            Background::Thread => self.refresher.get().is_some_and(Option::is_some),
            #[cfg(test)]
            Background::Driven => true,
        }
    }

    /// One step of the background thread: renews if the advisory window is open (and no
    /// pacing holds renewals off), and says how long to sleep before the next step.
    pub(crate) fn background_step(&self) -> Duration {
        let settled = self.settled.load(Ordering::Acquire);
        let Some(current) = self.current.read().clone() else {
            return background::IDLE;
        };
        match current.phase(&*self.clock) {
            // Wake as the window opens, at a random point of its first tenth, so that a
            // fleet's machines do not all ask the store for its lease at once.
            Phase::Fresh => {
                let jitter = (current.advisory_window() / 10).mul_f64(back_off::random_unit());
                current.until_advisory(&*self.clock) + jitter
            }
            Phase::Advisory => {
                if let Some(left) = self.deferred_for() {
                    return left;
                }
                let Some(renewer) = self.renewer.try_lock() else {
                    // A request renews (a 401, or the authorizer declared the token
                    // expired): its token wakes us; if it fails, look again at the pace of
                    // advisory retries.
                    return advisory_pace(&current);
                };
                trace::background("renewing", &self.client_id);
                let renewed =
                    self.renew_then_announce(renewer, settled, Some(&current), Reason::Advisory);
                if renewed.is_err() && !self.renewal_deferred() {
                    // Not foreseen by the pacing (a token issued already expired): pace it.
                    self.defer_renewal(&current);
                }
                Duration::ZERO
            }
            // From the margin on, the requests renew; their new token wakes us.
            Phase::Mandatory | Phase::Expired => background::IDLE,
        }
    }

    /// Asks the authorizer's own `expired()` without waiting: while a renewal holds the
    /// authorizer, the token it replaces stays in use until it is done (waiting would put
    /// every request behind a network call).
    fn declared_expired(&self, current: &Current) -> bool {
        self.renewer
            .try_lock()
            .is_some_and(|renewer| renewer.authorizer.expired(&current.token))
    }

    /// Whether a 401 for `current` must not renew it: it was issued in reply to a refusal,
    /// nothing succeeded with it since, and it is refused in turn. The first such refusal
    /// starts a back-off (growing while no request succeeds in between); once it has
    /// passed, the token is renewed again.
    fn refusing(&self, current: &Current) -> bool {
        let proven = self.proven.load(Ordering::Relaxed);
        if !current.after_rejection || proven >= current.generation {
            return false;
        }
        let now = self.clock.monotonic();
        let mut refusals = self.refusals.lock();
        let (back_off, refused) = &mut *refusals;
        if *refused == current.generation {
            return back_off.active(now);
        }
        if proven >= *refused {
            back_off.reset();
        }
        *refused = current.generation;
        back_off.failed(now);
        true
    }

    /// The error of the last renewal while its back-off lasts.
    fn remembered_failure(&self) -> Option<Error> {
        let failure = self.failure.lock();
        let (back_off, error) = &*failure;
        if !back_off.active(self.clock.monotonic()) {
            return None;
        }
        error.as_ref().map(Remembered::error)
    }

    /// No proactive renewal now (after an advisory failure or a non-extending refresh).
    fn renewal_deferred(&self) -> bool {
        self.deferred_for().is_some()
    }

    /// How long proactive renewals are still held off, if they are.
    fn deferred_for(&self) -> Option<Duration> {
        let not_before = self.renew_not_before.load(Ordering::Relaxed);
        let now = self.since_start(self.clock.monotonic());
        (not_before != 0 && now < not_before).then(|| Duration::from_nanos(not_before - now))
    }

    fn defer_renewal(&self, current: &Current) {
        let until = self.since_start(self.clock.monotonic() + advisory_pace(current));
        self.renew_not_before.store(until, Ordering::Relaxed);
    }

    fn since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits for the authorizer, then renews, unless a failure is remembered.
    fn renew_blocking(
        &self,
        settled: u64,
        seen: Option<Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        if let Some(error) = self.remembered_failure() {
            return Err(error);
        }
        let renewer = self.renewer.lock();
        self.renew_then_announce(renewer, settled, seen.as_ref(), reason)
    }

    /// [`renew_with`](Self::renew_with), then, with the authorizer's lock released, hands a
    /// new token from the authorizer to `on_change`: once per token, on the thread that
    /// obtained it, with nothing locked (the callback may use the middleware).
    fn renew_then_announce(
        &self,
        mut renewer: MutexGuard<'_, Renewer>,
        settled: u64,
        seen: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let result = self.renew_with(&mut renewer, settled, seen, reason);
        let announce = renewer.announce.take();
        drop(renewer);
        if let (Some(on_change), Some(new)) = (&self.on_change, announce) {
            on_change(&new.token);
        }
        result
    }

    /// With the authorizer locked: the outcome of a renewal that ran while this caller
    /// waited (`settled` is the count it saw before), else a renewal of its own. Every
    /// outcome is recorded for the callers waiting now.
    fn renew_with(
        &self,
        renewer: &mut Renewer,
        settled: u64,
        seen: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        if self.settled.load(Ordering::Acquire) != settled {
            match &renewer.outcome {
                Some(Err(failure)) => return Err(failure.error()),
                Some(Ok(token)) if token.phase(&*self.clock) != Phase::Expired => {
                    return Ok(Arc::clone(token));
                }
                // It came to a token that is withdrawn or expired already (or the session
                // was revoked): renew.
                _ => {}
            }
        }
        let result = self.renew_from_store_or_provider(renewer, seen, reason);
        match &result {
            Ok(token) => {
                renewer.outcome = Some(Ok(Arc::clone(token)));
                self.failure.lock().0.reset();
            }
            Err(error) => {
                let remembered = Remembered::of(error);
                let mut failure = self.failure.lock();
                failure.0.failed(self.clock.monotonic());
                failure.1 = Some(remembered.clone());
                renewer.outcome = Some(Err(remembered));
            }
        }
        self.settled.fetch_add(1, Ordering::Release);
        result
    }

    /// With a store, the renewal is made under its lock, and a token another process
    /// stored meanwhile is adopted instead.
    fn renew_from_store_or_provider(
        &self,
        renewer: &mut Renewer,
        seen: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let Some(store) = &self.store else {
            return self.renew_locked(renewer, seen, reason);
        };
        // Stores write atomically, so a usable token another process stored is taken
        // without the lock; the lock is only for renewing.
        if let Some(adopted) = self.adopt_from(store.as_ref(), &*renewer.authorizer, seen) {
            return Ok(adopted);
        }
        // Ahead of expiry the caller has a valid token: it does not wait for a renewal in
        // another process, it goes on and lets that process finish.
        let lock = if reason == Reason::Advisory {
            store.try_lock()
        } else {
            store.lock().map(Some)
        };
        let lock = match (lock, seen) {
            (Ok(None), None) => store.lock().map(Some),
            (lock, _) => lock,
        }
        .inspect_err(|error| self.counters.store_error(StoreOp::Lock, error));
        let _cross_process = match (lock, seen) {
            (Ok(Some(lock)), _) => lock,
            // Another process is renewing: go on with the valid token, and do not read the
            // store and ask for its lock again on every call until that renewal is done.
            (Ok(None), Some(seen)) => {
                self.defer_renewal(seen);
                return Ok(Arc::clone(seen));
            }
            // `lock()` never answers "held"; were one to, renew without it.
            (Ok(None), None) => crate::store::StoreLock::none(),
            // The wait ran out: what the holder stored meanwhile is still worth using.
            (Err(error), _) => {
                return match self.adopt_from(store.as_ref(), &*renewer.authorizer, seen) {
                    Some(adopted) => Ok(adopted),
                    None => self.keep_or_fail(seen, reason, error),
                };
            }
        };
        let Some(stored) = self.load(store.as_ref()) else {
            return self.renew_locked(renewer, seen, reason);
        };
        let adopted = self.adopt_stored(&stored, &*renewer.authorizer, seen);
        // An expired stored token whose refresh token is used below is still a miss: a hit
        // is a token put in use.
        self.count_use(Some(&stored), adopted.is_some());
        if let Some(adopted) = adopted {
            return Ok(adopted);
        }
        match seen {
            // Under the lock the store is the durable record of the refresh token: the one
            // it holds (or its record that the last one was sent) wins over this process's
            // copy, which another process may have traded meanwhile.
            Some(seen) if stored_refresh_supersedes(&stored, &seen.token) => {
                self.renew_locked_from(renewer, Some(seen), Some(&stored), reason)
            }
            Some(seen) => self.renew_locked(renewer, Some(seen), reason),
            // A new process with an expired stored token: renew it (with its refresh
            // token) rather than log in again.
            None => match self.candidate(stored, false) {
                Ok(previous) => {
                    let previous = Arc::new(previous);
                    self.renew_locked(renewer, Some(&previous), Reason::Required)
                }
                Err(_) => self.renew_locked(renewer, None, reason),
            },
        }
    }

    /// [`adopt_stored`](Self::adopt_stored) on what `store` holds now, read without its lock.
    fn adopt_from(
        &self,
        store: &dyn TokenStore,
        authorizer: &dyn Authorizer,
        replacing: Option<&Arc<Current>>,
    ) -> Option<Arc<Current>> {
        let stored = self.load(store)?;
        let adopted = self.adopt_stored(&stored, authorizer, replacing);
        self.count_use(Some(&stored), adopted.is_some());
        adopted
    }

    /// `store.load()`, counting an error or an empty store; a stored token is counted by
    /// [`count_use`](Self::count_use) once the caller knows whether it is used.
    fn load(&self, store: &dyn TokenStore) -> Option<Token> {
        match store.load() {
            Ok(Some(token)) => Some(token),
            Ok(None) => {
                self.counters.store_miss();
                None
            }
            Err(error) => {
                log::debug!("token store unreadable, ignoring it: {error}");
                self.counters.store_error(StoreOp::Load, &error);
                None
            }
        }
    }

    /// Counts a stored token that [`load`](Self::load) returned: a hit if it was put in use.
    fn count_use(&self, stored: Option<&Token>, used: bool) {
        match (stored, used) {
            (None, _) => {}
            (Some(_), true) => self.counters.store_hit(),
            (Some(_), false) => self.counters.store_miss(),
        }
    }

    /// A usable token that another process (or an earlier run) stored, unless it is the
    /// one we are replacing.
    fn adopt_stored(
        &self,
        stored: &Token,
        authorizer: &dyn Authorizer,
        replacing: Option<&Arc<Current>>,
    ) -> Option<Arc<Current>> {
        if replacing.is_some_and(|current| current.token.access_token() == stored.access_token())
            || authorizer.expired(stored)
        {
            return None;
        }
        let adopted = Arc::new(self.candidate(stored.clone(), false).ok()?);
        if !matches!(adopted.phase(&*self.clock), Phase::Fresh | Phase::Advisory) {
            return None;
        }
        log::debug!("using the token from the store");
        self.install(Some(Arc::clone(&adopted)));
        Some(adopted)
    }

    /// `token` prepared for use, with the next generation (not yet installed).
    fn candidate(&self, token: Token, after_rejection: bool) -> Result<Current, Error> {
        let header = (self.prepare)(&token)?;
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        Ok(Current::new(
            token,
            generation,
            after_rejection,
            header,
            &self.thresholds,
            &*self.clock,
        ))
    }

    /// After a failure to renew: the previous token if it may still be used, else the error.
    fn keep_or_fail(
        &self,
        previous: Option<&Arc<Current>>,
        reason: Reason,
        error: Error,
    ) -> Result<Arc<Current>, Error> {
        log::debug!("token renewal failed: {error}");
        match previous {
            // A failed refresh leaves the last good token in use while it is valid.
            Some(previous)
                if matches!(reason, Reason::Advisory | Reason::Required)
                    && previous.phase(&*self.clock) != Phase::Expired =>
            {
                self.defer_renewal(previous);
                Ok(Arc::clone(previous))
            }
            _ => Err(error),
        }
    }

    /// Before `basis`'s refresh token goes out: the store records it as spent (the entry
    /// keeps the access token, loses the refresh token), so that no other process, and no
    /// later run of this one, sends it again should the answer be lost or this process die.
    /// An error (the store refused the write, a lost Redis lease) means the refresh is not
    /// sent: another process may be using that very refresh token.
    fn record_refresh_spent(&self, basis: &Token) -> Result<(), Error> {
        match &self.store {
            Some(store) if basis.refresh_token().is_some() => {
                store.save(&basis.clone().with_refresh_spent())
            }
            _ => Ok(()),
        }
    }

    /// After a refresh failed: its refresh token goes back into the store when the request
    /// surely never reached the server (connection refused), so that an outage of the
    /// identity provider does not cost the session.
    fn restore_if_unsent(&self, basis: &Token, error: &Error) {
        if let Some(store) = &self.store
            && basis.refresh_token().is_some()
            && crate::http::surely_unsent(error)
            && let Err(restore) = store.save(basis)
        {
            log::debug!("could not put the unsent refresh token back in the store: {restore}");
        }
    }

    /// Marks this thread as the one calling the authorizer, until the guard is dropped.
    fn calling_authorizer(&self) -> impl Drop + '_ {
        struct Marked<'a>(&'a Lifecycle);
        impl Drop for Marked<'_> {
            fn drop(&mut self) {
                self.0.renewing.store(false, Ordering::Release);
                *self.0.renewing_thread.lock() = None;
            }
        }
        *self.renewing_thread.lock() = Some(thread::current().id());
        self.renewing.store(true, Ordering::Release);
        Marked(self)
    }

    /// Renews with the authorizer locked: `refresh()` when there is a token, falling back
    /// to one `authorize()` unless the failure says the server is down or unreachable.
    fn renew_locked(
        &self,
        renewer: &mut Renewer,
        previous: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        self.renew_locked_from(renewer, previous, None, reason)
    }

    /// [`renew_locked`](Self::renew_locked), refreshing `basis` (the store's newer record)
    /// instead of `previous`, which is still what a failure keeps.
    ///
    /// With a store, a refresh token is recorded there as spent before it goes out (the
    /// caller holds the store's lock), and put back only when the request surely never
    /// reached the server: whatever becomes of this process, no process sends it again.
    fn renew_locked_from(
        &self,
        renewer: &mut Renewer,
        previous: Option<&Arc<Current>>,
        basis: Option<&Token>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let result = {
            let _marked = self.calling_authorizer();
            let authorizer = &mut renewer.authorizer;
            match basis.or(previous.map(|previous| &previous.token)) {
                None => {
                    log::debug!("requesting the first token");
                    self.call(Call::Authorize, reason, || authorizer.authorize())
                }
                Some(basis) => {
                    if let Err(error) = self.record_refresh_spent(basis) {
                        if error.downcast_ref::<crate::store::Superseded>().is_some() {
                            // Another process renewed: its newer entry is adopted next time.
                            return self.keep_or_fail(previous, reason, error);
                        }
                        // A store that cannot be written must not cost the session: renew
                        // anyway. Another process reading that store may still send this
                        // refresh token; that guarantee needs a working store.
                        log::warn!(
                            "could not record in the token store that the refresh token is \
                             being used ({error}): renewing anyway"
                        );
                    }
                    log::debug!("renewing the token ({reason:?})");
                    match self.call(Call::Refresh, reason, || authorizer.refresh(basis)) {
                        Ok(token) => Ok(token),
                        Err(error) if error.is_transient() => {
                            self.restore_if_unsent(basis, &error);
                            Err(error)
                        }
                        Err(error) => {
                            log::debug!("refresh failed ({}); logging in again", error.kind());
                            self.call(Call::Authorize, reason, || authorizer.authorize())
                        }
                    }
                }
            }
        };
        let fresh = match result.and_then(|token| self.candidate(token, reason == Reason::Rejected))
        {
            Ok(fresh) => Arc::new(fresh),
            Err(error) => return self.keep_or_fail(previous, reason, error),
        };
        if fresh.phase(&*self.clock) == Phase::Expired {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "the identity provider issued a token that has already expired",
            ));
        }
        let extends = previous.is_none_or(|previous| {
            let expires = fresh.token.expires_at();
            expires.is_none() || expires > previous.token.expires_at()
        });
        if extends {
            self.renew_not_before.store(0, Ordering::Relaxed);
        } else {
            // The server handed back a token that lasts no longer (a cached token, as some
            // servers do): renewing again at once would only storm it.
            self.defer_renewal(&fresh);
        }
        if let Some(store) = &self.store
            && let Err(error) = store.save(&fresh.token)
        {
            // The token is good; only its reuse by the next process is lost.
            log::debug!("could not save the token: {error}");
            self.counters.store_error(StoreOp::Save, &error);
        }
        self.install(Some(Arc::clone(&fresh)));
        renewer.announce = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// One authorizer call, counted, timed and traced.
    fn call(
        &self,
        call: Call,
        reason: Reason,
        ask: impl FnOnce() -> Result<Token, Error>,
    ) -> Result<Token, Error> {
        let _span = trace::renewal(call, reason.name(), &self.client_id);
        self.counters.started(call);
        let began = Instant::now();
        let result = ask();
        self.counters.finished(call, &result, began.elapsed());
        result
    }
}

/// Whether the store's token, read under its lock, is a better record of the refresh token
/// than `held`, this process's copy: it carries a refresh token (or the record that the
/// last one was spent) and is the same token or no older than it. A held token newer than
/// the store's (saved while the store was unreachable) keeps its own.
fn stored_refresh_supersedes(stored: &Token, held: &Token) -> bool {
    let knows_refresh = stored.refresh_spent() || stored.refresh_token().is_some();
    let same = stored.access_token() == held.access_token();
    knows_refresh && (same || held.expires_at() <= stored.expires_at())
}
