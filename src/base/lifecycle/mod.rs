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
//! [`Lifecycle::fresh`]: a read lock, one wall-clock read (it sees a suspend; a clock set
//! back past the token's arrival sends the caller to the slow path, which reads both
//! clocks), a `try_lock` to ask the authorizer's `expired()` and a header clone. It never waits for a network call: while a renewal holds
//! the authorizer, the token it replaces stays in use until it is done. An authorizer that
//! declares [`expiry_by_time_only`](crate::Authorizer::expiry_by_time_only) is not asked
//! there (its `expired()` says what the deadlines already know), which saves the lock and a
//! second clock read; the slow path ([`Lifecycle::current`]) always asks.

mod back_off;
mod current;
#[cfg(test)]
mod tests;
mod thresholds;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use ureq::http::HeaderValue;

use self::back_off::{BackOff, Remembered};
pub(crate) use self::current::Current;
use self::current::{Clock, INVALIDATED, Phase, Prepare, REFUSED, SystemClock};
pub use self::thresholds::RefreshThresholds;
use crate::store::TokenStore;
use crate::{Authorizer, Error, ErrorKind, Token};

/// How many times an authorizer was asked for a token, from
/// [`AuthMiddleware::token_requests`](crate::AuthMiddleware::token_requests). For
/// diagnostics and tests: a count that grows with the API traffic is a renewal storm.
///
/// ```
/// use en_core_auth::base::TokenRequests;
///
/// let requests = TokenRequests { authorize: 1, refresh: 2 };
/// assert_eq!(requests.authorize + requests.refresh, 3);
/// assert_eq!(TokenRequests::default(), TokenRequests { authorize: 0, refresh: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenRequests {
    /// Calls to [`Authorizer::authorize`]: logins, and fallbacks after a failed refresh.
    pub authorize: u64,
    /// Calls to [`Authorizer::refresh`].
    pub refresh: u64,
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

/// The authorizer and what its last renewal came to; one lock for both, held across the
/// network call.
struct Renewer {
    authorizer: Box<dyn Authorizer>,
    /// The outcome of the last renewal, for the callers that waited for it.
    outcome: Option<Result<Arc<Current>, Remembered>>,
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
    authorize_calls: AtomicU64,
    refresh_calls: AtomicU64,
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
        Lifecycle {
            expiry_by_time_only,
            renewer: Mutex::new(Renewer {
                authorizer,
                outcome: None,
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
            authorize_calls: AtomicU64::new(0),
            refresh_calls: AtomicU64::new(0),
        }
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
        let current = self.current.read();
        let current = current.as_ref()?;
        if !current.fresh_by_wall(&*self.clock)
            || (!self.expiry_by_time_only && self.declared_expired(current))
        {
            return None;
        }
        Some((current.header.clone(), current.generation))
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
            Phase::Advisory if self.renewal_deferred() => Ok(current),
            // Whoever gets the lock refreshes; the others go on with the valid token.
            Phase::Advisory => match self.renewer.try_lock() {
                Some(mut renewer) => {
                    self.renew_with(&mut renewer, settled, Some(&current), Reason::Advisory)
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
        current.withdraw(REFUSED);
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
            None => current.withdraw(INVALIDATED),
            Some(generation) if generation == current.generation => {
                if !self.refusing(&current) {
                    current.withdraw(REFUSED);
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
        let token = match self.current.write().take() {
            Some(current) => {
                current.withdraw(INVALIDATED);
                Some(current.token.clone())
            }
            None => self
                .store
                .as_ref()
                .and_then(|store| store.load().ok().flatten()),
        };
        let revoked = match &token {
            Some(token) => {
                let _marked = self.calling_authorizer();
                renewer.authorizer.revoke(token)
            }
            None => Ok(()),
        };
        let cleared = self.store.as_ref().map_or(Ok(()), |store| store.clear());
        // What was remembered was about the session that just ended.
        renewer.outcome = None;
        *self.failure.lock() = (BackOff::default(), None);
        self.refusals.lock().0.reset();
        self.renew_not_before.store(0, Ordering::Relaxed);
        revoked.and(cleared)
    }

    /// How many times the authorizer was asked for a token.
    pub(crate) fn token_requests(&self) -> TokenRequests {
        TokenRequests {
            authorize: self.authorize_calls.load(Ordering::Relaxed),
            refresh: self.refresh_calls.load(Ordering::Relaxed),
        }
    }

    /// Whether this thread is inside a call to the authorizer (whose HTTP client may carry
    /// the middleware that asked for the token: that request must pass through, or it
    /// would wait for itself).
    pub(crate) fn renewing_on_this_thread(&self) -> bool {
        // One load when no renewal runs (this is asked on every request).
        self.renewing.load(Ordering::Acquire)
            && *self.renewing_thread.lock() == Some(thread::current().id())
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
        let not_before = self.renew_not_before.load(Ordering::Relaxed);
        not_before != 0 && self.since_start(self.clock.monotonic()) < not_before
    }

    fn defer_renewal(&self, current: &Current) {
        // A tenth of the advisory window: a handful of attempts before the margin.
        let wait = (current.advisory_window() / 10)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let until = self.since_start(self.clock.monotonic() + wait);
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
        let mut renewer = self.renewer.lock();
        self.renew_with(&mut renewer, settled, seen.as_ref(), reason)
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
        };
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
        let stored = match store.load() {
            Ok(stored) => stored,
            Err(error) => {
                log::debug!("token store unreadable, ignoring it: {error}");
                None
            }
        };
        let Some(stored) = stored else {
            return self.renew_locked(renewer, seen, reason);
        };
        if let Some(adopted) = self.adopt_stored(&stored, &*renewer.authorizer, seen) {
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
        let stored = store.load().ok().flatten()?;
        self.adopt_stored(&stored, authorizer, replacing)
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
        *self.current.write() = Some(Arc::clone(&adopted));
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
                    self.authorize_calls.fetch_add(1, Ordering::Relaxed);
                    log::debug!("requesting the first token");
                    authorizer.authorize()
                }
                Some(basis) => {
                    if let Err(error) = self.record_refresh_spent(basis) {
                        return self.keep_or_fail(previous, reason, error);
                    }
                    self.refresh_calls.fetch_add(1, Ordering::Relaxed);
                    log::debug!("renewing the token ({reason:?})");
                    match authorizer.refresh(basis) {
                        Ok(token) => Ok(token),
                        Err(error) if error.is_transient() => {
                            self.restore_if_unsent(basis, &error);
                            Err(error)
                        }
                        Err(error) => {
                            log::debug!("refresh failed ({}); logging in again", error.kind());
                            self.authorize_calls.fetch_add(1, Ordering::Relaxed);
                            authorizer.authorize()
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
        }
        *self.current.write() = Some(Arc::clone(&fresh));
        Ok(fresh)
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
