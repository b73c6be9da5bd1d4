//! The token lifecycle: keep a valid token, renew it ahead of expiry, once, for everyone.
//!
//! This is Go's `ReuseTokenSource` idea grown up. A token moves through four states as
//! time passes (the windows scale with the token's lifetime, see [`RefreshThresholds`]):
//!
//! ```text
//!  issued ──── fresh ────┬── advisory ──┬── mandatory ──┬── expired
//!                        │ one caller   │ callers wait  │ callers wait;
//!                        │ refreshes,   │ for one       │ a failed renewal
//!                        │ others go on │ renewal; if   │ is an error
//!                        │              │ it fails, the │
//!                        │              │ token is used │
//! ```
//!
//! The hot path (a fresh token) takes a read lock and an `Arc` clone: it never waits for
//! the authorizer's lock, which is held across network calls. Renewals are single flight:
//! callers that queued behind a renewal see its result (double-checked by generation) and
//! do not renew again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use ureq::http::HeaderValue;

use super::authorizer::default_expiry;
use crate::store::TokenStore;
use crate::{Authorizer, Error, ErrorKind, Token};

/// When [`AuthMiddleware`](crate::AuthMiddleware) renews a token before it expires.
///
/// Both windows are a fraction of the token's lifetime, capped: a one-hour token is
/// refreshed from 5 minutes before expiry and not used in its last minute; a 2-second token
/// from 0.5 s before and not in its last 0.2 s. Fixed margins (Go's 10 s, requests-auth's
/// 30 s) make short-lived tokens useless: with 2-second tokens a 30 s margin fetches a new
/// token for every request.
///
/// - In the **advisory** window, the first caller to notice refreshes while the others go
///   on with the still-valid token; if the refresh fails, the token stays in use and the
///   refresh is tried again after a back-off.
/// - From the **mandatory** margin on, the token is not used: callers wait for one renewal.
///   If it fails while the token has not actually expired, the token is still used.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::base::RefreshThresholds;
///
/// let thresholds = RefreshThresholds::default();
/// assert_eq!(thresholds.advisory_for(Duration::from_secs(3600)), Duration::from_secs(300));
/// assert_eq!(thresholds.mandatory_for(Duration::from_secs(3600)), Duration::from_secs(60));
/// assert_eq!(thresholds.advisory_for(Duration::from_secs(2)), Duration::from_millis(500));
/// assert_eq!(thresholds.mandatory_for(Duration::from_secs(2)), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshThresholds {
    /// The longest advisory window (default 5 minutes).
    pub advisory_max: Duration,
    /// The advisory window as a fraction of the lifetime, before the cap (default 0.25).
    pub advisory_fraction: f64,
    /// The longest mandatory margin (default 1 minute).
    pub mandatory_max: Duration,
    /// The mandatory margin as a fraction of the lifetime, before the cap (default 0.1).
    pub mandatory_fraction: f64,
}

impl Default for RefreshThresholds {
    fn default() -> RefreshThresholds {
        RefreshThresholds {
            advisory_max: Duration::from_secs(300),
            advisory_fraction: 0.25,
            mandatory_max: Duration::from_secs(60),
            mandatory_fraction: 0.1,
        }
    }
}

impl RefreshThresholds {
    /// The advisory window for a token of the given lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = en_core_auth::base::RefreshThresholds::default();
    /// assert_eq!(t.advisory_for(Duration::from_secs(60)), Duration::from_secs(15));
    /// ```
    pub fn advisory_for(&self, lifetime: Duration) -> Duration {
        scaled(lifetime, self.advisory_fraction, self.advisory_max)
            .max(self.mandatory_for(lifetime))
    }

    /// The mandatory margin for a token of the given lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = en_core_auth::base::RefreshThresholds::default();
    /// assert_eq!(t.mandatory_for(Duration::from_secs(60)), Duration::from_secs(6));
    /// ```
    pub fn mandatory_for(&self, lifetime: Duration) -> Duration {
        scaled(lifetime, self.mandatory_fraction, self.mandatory_max)
    }
}

fn scaled(lifetime: Duration, fraction: f64, cap: Duration) -> Duration {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    lifetime.mul_f64(fraction).min(cap)
}

/// A token ready to use: the header value is built once, when the token arrives, so the
/// hot path only clones it.
pub(crate) struct Current {
    pub(crate) token: Token,
    pub(crate) header: HeaderValue,
    /// Distinguishes this token from the ones before and after it: a 401 names the
    /// generation it was sent with, so that a token is renewed once however many requests
    /// it failed.
    pub(crate) generation: u64,
    /// Set when the token was rejected or invalidated: it is treated as expired.
    revoked: AtomicBool,
    advisory_at: Option<Instant>,
    mandatory_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// Where a token stands, see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Advisory,
    Mandatory,
    Expired,
}

impl Current {
    fn new(
        token: Token,
        generation: u64,
        thresholds: &RefreshThresholds,
        prepare: &Prepare,
    ) -> Result<Current, Error> {
        let header = prepare(&token)?;

        // Deadlines are kept as `Instant`s so that a wall-clock jump does not make every
        // caller renew at once (or never).
        let now = Instant::now();
        let wall_now = SystemTime::now();
        let (advisory_at, mandatory_at, expires_at) = match token.expires_at() {
            None => (None, None, None),
            Some(at) => {
                let left = at.duration_since(wall_now).unwrap_or(Duration::ZERO);
                let lifetime = token.lifetime().unwrap_or(left);
                let expires = now + left;
                (
                    Some(
                        expires
                            .checked_sub(thresholds.advisory_for(lifetime))
                            .unwrap_or(now),
                    ),
                    Some(
                        expires
                            .checked_sub(thresholds.mandatory_for(lifetime))
                            .unwrap_or(now),
                    ),
                    Some(expires),
                )
            }
        };
        Ok(Current {
            token,
            header,
            generation,
            revoked: AtomicBool::new(false),
            advisory_at,
            mandatory_at,
            expires_at,
        })
    }

    fn phase(&self, now: Instant) -> Phase {
        let past = |deadline: Option<Instant>| deadline.is_some_and(|at| now >= at);
        if past(self.expires_at) || self.revoked.load(Ordering::Relaxed) {
            Phase::Expired
        } else if past(self.mandatory_at) {
            Phase::Mandatory
        } else if past(self.advisory_at) {
            Phase::Advisory
        } else {
            Phase::Fresh
        }
    }

    /// Whether the token may be used without renewing first.
    fn usable(&self, now: Instant) -> bool {
        matches!(self.phase(now), Phase::Fresh | Phase::Advisory)
    }

    /// The time left before the token's mandatory margin, for back-off decisions.
    fn advisory_window(&self) -> Duration {
        match (self.advisory_at, self.mandatory_at) {
            (Some(advisory), Some(mandatory)) => mandatory.saturating_duration_since(advisory),
            _ => Duration::ZERO,
        }
    }
}

/// Why a renewal is happening; it decides what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// No token yet.
    First,
    /// In the advisory window: a failure keeps the current token.
    Advisory,
    /// In the mandatory margin, or expired: a failure keeps the token only while it has
    /// not actually expired.
    Required,
    /// The authorizer's `expired()` said the token must not be used.
    DeclaredExpired,
    /// The server rejected the token (a 401).
    Rejected,
}

/// Counts of what the lifecycle did, for tests and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) authorize: AtomicU64,
    pub(crate) refresh: AtomicU64,
}

const EXPIRY_UNKNOWN: u8 = 0;
/// The authorizer keeps the default `expired()`, which the deadlines already cover.
const EXPIRY_DEFAULT: u8 = 1;
const EXPIRY_CUSTOM: u8 = 2;

/// One authorizer and the token it last produced, shared by every clone of a middleware.
pub(crate) struct Lifecycle {
    /// Held across network calls; only renewals take it (the hot path uses `try_lock`).
    authorizer: Mutex<Box<dyn Authorizer>>,
    current: RwLock<Option<Arc<Current>>>,
    next_generation: AtomicU64,
    /// No proactive renewal before this point (nanoseconds since `started`): set after an
    /// advisory refresh failed, or returned a token that expires no later than the old one.
    renew_not_before: AtomicU64,
    started: Instant,
    thresholds: RefreshThresholds,
    /// Turns a token into its header value (CONTRACT: the middleware owns the format).
    prepare: Prepare,
    /// The generation of a token issued because its predecessor got a 401 and that was
    /// refused too (CONTRACT adapter, point 2): no renewal for it until a success.
    refused_fresh: AtomicU64,
    /// The generation of the last token issued after a 401 (CONTRACT adapter, point 2).
    issued_for_rejection: AtomicU64,
    /// The thread running the authorizer (CONTRACT adapter: renewing_on_this_thread).
    renewing: RenewingThread,
    /// Where tokens are kept beyond this process, if anywhere.
    store: Option<Box<dyn TokenStore>>,
    /// Whether the authorizer overrides `expired()`: one of the `EXPIRY_*` values.
    expiry_check: AtomicU8,
    pub(crate) counters: Counters,
}

impl Lifecycle {
    pub(crate) fn new(
        authorizer: Box<dyn Authorizer>,
        thresholds: RefreshThresholds,
        store: Option<Box<dyn TokenStore>>,
        prepare: Prepare,
    ) -> Lifecycle {
        Lifecycle {
            authorizer: Mutex::new(authorizer),
            current: RwLock::new(None),
            next_generation: AtomicU64::new(1),
            renew_not_before: AtomicU64::new(0),
            started: Instant::now(),
            thresholds,
            prepare,
            refused_fresh: AtomicU64::new(0),
            issued_for_rejection: AtomicU64::new(0),
            renewing: RenewingThread::default(),
            store,
            expiry_check: AtomicU8::new(EXPIRY_UNKNOWN),
            counters: Counters::default(),
        }
    }

    /// A token that may be used now, renewing it first if it must be.
    pub(crate) fn current(&self) -> Result<Arc<Current>, Error> {
        let now = Instant::now();
        let Some(current) = self.current.read().clone() else {
            return self.renew_blocking(None, Reason::First);
        };
        match current.phase(now) {
            Phase::Fresh => {
                if self.authorizer_says_expired(&current) {
                    return self.renew_blocking(Some(&current), Reason::DeclaredExpired);
                }
                Ok(current)
            }
            Phase::Advisory => {
                if self.backing_off(now) {
                    return Ok(current);
                }
                // Whoever gets the lock refreshes; the others use the valid token.
                match self.authorizer.try_lock() {
                    Some(mut authorizer) => self.renew_unless_replaced(
                        &mut authorizer,
                        Some(&current),
                        Reason::Advisory,
                    ),
                    None => Ok(current),
                }
            }
            Phase::Mandatory if self.backing_off(now) => Ok(current),
            Phase::Mandatory | Phase::Expired => {
                self.renew_blocking(Some(&current), Reason::Required)
            }
        }
    }

    /// The token sent with `generation` was rejected by the server: it must not be used
    /// again. Renews it unless another caller already has, and returns the token to use.
    fn renew_rejected(&self, generation: u64) -> Result<Arc<Current>, Error> {
        let current = self.current.read().clone();
        match current {
            Some(current) if current.generation != generation => Ok(current),
            Some(current) => {
                current.revoked.store(true, Ordering::Relaxed);
                self.renew_blocking(Some(&current), Reason::Rejected)
            }
            None => self.renew_blocking(None, Reason::First),
        }
    }

    /// The header of a fresh token, and its generation, or `None` when the token must be
    /// looked at more closely ([`current`](Self::current)). The hot path: a read lock, a
    /// clock read and a header clone.
    pub(crate) fn fresh(&self) -> Option<(HeaderValue, u64)> {
        let current = self.current.read();
        let current = current.as_ref()?;
        if current.phase(Instant::now()) != Phase::Fresh || self.authorizer_says_expired(current) {
            return None;
        }
        Some((current.header.clone(), current.generation))
    }

    /// Consults the authorizer's own `expired()`, without waiting: if a renewal holds the
    /// lock, the token it is replacing is still used until the renewal finishes. Only
    /// called for a token the deadlines say is fresh, so an authorizer that keeps the
    /// default `expired()` (which checks the same expiry) is not asked.
    fn authorizer_says_expired(&self, current: &Current) -> bool {
        if self.expiry_check.load(Ordering::Relaxed) == EXPIRY_DEFAULT {
            return false;
        }
        let Some(authorizer) = self.authorizer.try_lock() else {
            return false;
        };
        let (expired, was_default) = default_expiry::probe(|| authorizer.expired(&current.token));
        let kind = if was_default {
            EXPIRY_DEFAULT
        } else {
            EXPIRY_CUSTOM
        };
        self.expiry_check.store(kind, Ordering::Relaxed);
        expired
    }

    fn backing_off(&self, now: Instant) -> bool {
        let not_before = self.renew_not_before.load(Ordering::Relaxed);
        not_before != 0 && self.nanos_since_start(now) < not_before
    }

    fn back_off(&self, current: &Current) {
        // A tenth of the advisory window: a handful of attempts before the margin.
        let wait = (current.advisory_window() / 10)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let until = self.nanos_since_start(Instant::now() + wait);
        self.renew_not_before.store(until, Ordering::Relaxed);
    }

    fn nanos_since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits for the authorizer, then renews.
    fn renew_blocking(
        &self,
        seen: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let mut authorizer = self.authorizer.lock();
        self.renew_unless_replaced(&mut authorizer, seen, reason)
    }

    /// With the authorizer locked, renews unless a caller that held the lock before us
    /// already replaced the token we saw: the double check that makes 32 waiting threads
    /// cause one renewal. With a store, the same check is made across processes.
    fn renew_unless_replaced(
        &self,
        authorizer: &mut Box<dyn Authorizer>,
        seen: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let latest = self.current.read().clone();
        if let Some(latest) = &latest {
            let replaced = Some(latest.generation) != seen.map(|current| current.generation);
            if replaced && latest.usable(Instant::now()) {
                return Ok(Arc::clone(latest));
            }
        }
        let Some(store) = &self.store else {
            return self.renew_locked(authorizer, latest.as_ref(), reason);
        };
        // Ahead of expiry the caller has a valid token: it does not wait for a renewal in
        // another process, it goes on and lets that process finish.
        let lock = if reason == Reason::Advisory {
            store.try_lock()
        } else {
            store.lock().map(Some)
        };
        let _cross_process = match (lock, &latest) {
            (Ok(Some(lock)), _) => lock,
            (Ok(None), Some(latest)) => return Ok(Arc::clone(latest)),
            (Ok(None), None) => store.lock()?,
            (Err(error), _) => return self.keep_or_fail(latest.as_ref(), reason, error),
        };
        let stored = match store.load() {
            Ok(stored) => stored,
            Err(error) => {
                log::debug!("token store unreadable, ignoring it: {error}");
                None
            }
        };
        let Some(stored) = stored else {
            return self.renew_locked(authorizer, latest.as_ref(), reason);
        };
        if let Some(adopted) = self.adopt_stored(&stored, authorizer, latest.as_deref()) {
            return Ok(adopted);
        }
        match latest {
            Some(latest) => self.renew_locked(authorizer, Some(&latest), reason),
            // A new process with an expired stored token: renew it (with its refresh
            // token) rather than log in again.
            None => match self.install_candidate(stored) {
                Some(previous) => self.renew_locked(authorizer, Some(&previous), Reason::Required),
                None => self.renew_locked(authorizer, None, reason),
            },
        }
    }

    /// A usable token that another process (or an earlier run) stored, unless it is the
    /// one we are replacing.
    fn adopt_stored(
        &self,
        stored: &Token,
        authorizer: &dyn Authorizer,
        replacing: Option<&Current>,
    ) -> Option<Arc<Current>> {
        if replacing.is_some_and(|current| current.token.access_token() == stored.access_token())
            || authorizer.expired(stored)
        {
            return None;
        }
        let adopted = self.install_candidate(stored.clone())?;
        if !adopted.usable(Instant::now()) {
            return None;
        }
        log::debug!("using the token from the store");
        *self.current.write() = Some(Arc::clone(&adopted));
        Some(adopted)
    }

    /// `token` wrapped for use (not yet installed as the current token).
    fn install_candidate(&self, token: Token) -> Option<Arc<Current>> {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        Current::new(token, generation, &self.thresholds, &self.prepare)
            .ok()
            .map(Arc::new)
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
                    && previous.phase(Instant::now()) != Phase::Expired =>
            {
                self.back_off(previous);
                Ok(Arc::clone(previous))
            }
            _ => Err(error),
        }
    }

    /// Renews with the authorizer locked: `refresh()` when there is a token, falling back
    /// to one `authorize()` unless the failure says the server is down or unreachable.
    fn renew_locked(
        &self,
        authorizer: &mut Box<dyn Authorizer>,
        previous: Option<&Arc<Current>>,
        reason: Reason,
    ) -> Result<Arc<Current>, Error> {
        let _on_this_thread = self.renewing.enter();
        let result = match previous {
            None => {
                self.counters.authorize.fetch_add(1, Ordering::Relaxed);
                log::debug!("requesting the first token");
                authorizer.authorize()
            }
            Some(previous) => {
                self.counters.refresh.fetch_add(1, Ordering::Relaxed);
                log::debug!("renewing the token ({reason:?})");
                match authorizer.refresh(&previous.token) {
                    Ok(token) => Ok(token),
                    Err(error) if error.is_transient() => Err(error),
                    Err(error) => {
                        log::debug!("refresh failed ({}); logging in again", error.kind());
                        self.counters.authorize.fetch_add(1, Ordering::Relaxed);
                        authorizer.authorize()
                    }
                }
            }
        };
        let installed = result.and_then(|token| {
            let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
            Current::new(token, generation, &self.thresholds, &self.prepare).map(Arc::new)
        });
        match installed {
            Ok(fresh) => {
                if fresh.phase(Instant::now()) == Phase::Expired {
                    return Err(Error::new(
                        ErrorKind::MalformedResponse,
                        "the identity provider issued a token that has already expired",
                    ));
                }
                let extends = match previous {
                    Some(previous) => {
                        fresh.expires_at.is_none() || fresh.expires_at > previous.expires_at
                    }
                    None => true,
                };
                if extends {
                    self.renew_not_before.store(0, Ordering::Relaxed);
                } else {
                    // The server handed back a token that lasts no longer (a cached token,
                    // as some servers do): renewing again at once would only storm it.
                    self.back_off(&fresh);
                }
                if reason == Reason::Rejected {
                    self.issued_for_rejection
                        .store(fresh.generation, Ordering::Relaxed);
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
            Err(error) => self.keep_or_fail(previous, reason, error),
        }
    }
}

// ===== CONTRACT ADAPTER (core-middleware) =====================================
// The interface of /work/notes/CORE-CONTRACT.md over this file's lifecycle, so that the
// middleware compiles against the contract before core-lifecycle's branch lands. That
// branch replaces this whole file; nothing outside this block depends on more than the
// contract's names.

/// Turns a token into what the hot path hands out (the middleware's header value).
pub(crate) type Prepare = Box<dyn Fn(&Token) -> Result<HeaderValue, Error> + Send + Sync>;

/// What to do after a `401` (see [`Lifecycle::rejected`]).
pub(crate) enum Rejection {
    /// Resend once with this renewed (or newer) token.
    Resend(Arc<Current>),
    /// Do not resend: hand the 401 to the caller.
    GiveUp,
}

/// How many times the authorizer was asked for a token, returned by
/// [`AuthMiddleware::token_requests`](crate::AuthMiddleware::token_requests).
///
/// ```
/// # use en_core_auth::base::doc_fixture::Static;
/// use en_core_auth::{AuthMiddleware, base::TokenRequests};
/// let auth = AuthMiddleware::new(Static::new());
/// auth.access_token()?;
/// auth.access_token()?;
/// assert_eq!(auth.token_requests(), TokenRequests { authorize: 1, refresh: 0 });
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenRequests {
    /// Calls of [`Authorizer::authorize`] (logins).
    pub authorize: u64,
    /// Calls of [`Authorizer::refresh`].
    pub refresh: u64,
}

impl Lifecycle {
    /// The token sent with `generation` got a 401.
    pub(crate) fn rejected(&self, generation: u64) -> Result<Rejection, Error> {
        if self.issued_for_rejection.load(Ordering::Relaxed) == generation
            || self.refused_fresh.load(Ordering::Relaxed) == generation
        {
            // Issued because of a 401 and refused too: the token is not the problem.
            self.refused_fresh.store(generation, Ordering::Relaxed);
            return Ok(Rejection::GiveUp);
        }
        self.renew_rejected(generation).map(Rejection::Resend)
    }

    /// A non-401 answer to a request sent with `generation`.
    pub(crate) fn request_succeeded(&self, generation: u64) {
        if self.refused_fresh.load(Ordering::Relaxed) == generation {
            self.refused_fresh.store(0, Ordering::Relaxed);
        }
        if self.issued_for_rejection.load(Ordering::Relaxed) == generation {
            self.issued_for_rejection.store(0, Ordering::Relaxed);
        }
    }

    /// The next use renews, unless the token in use is newer than `generation`.
    pub(crate) fn invalidate(&self, generation: Option<u64>) {
        if let Some(current) = self.current.read().as_ref()
            && generation.is_none_or(|g| g >= current.generation)
        {
            current.revoked.store(true, Ordering::Relaxed);
        }
    }

    /// Logout: revoke at the server, then forget the token and clear the store.
    pub(crate) fn revoke(&self) -> Result<(), Error> {
        let mut authorizer = self.authorizer.lock();
        let _on_this_thread = self.renewing.enter();
        let current = self.current.write().take();
        let revoked = match &current {
            Some(current) => authorizer.revoke(&current.token),
            None => Ok(()),
        };
        let cleared = match &self.store {
            Some(store) => store.clear(),
            None => Ok(()),
        };
        revoked.and(cleared)
    }

    /// Whether the caller runs inside this lifecycle's authorizer (a custom authorizer
    /// whose token request goes through an agent carrying the same middleware): such a
    /// request must pass untouched, or it would wait for the token it is fetching.
    pub(crate) fn renewing_on_this_thread(&self) -> bool {
        self.renewing.active.load(Ordering::Acquire)
            && *self.renewing.thread.lock() == Some(std::thread::current().id())
    }

    pub(crate) fn token_requests(&self) -> TokenRequests {
        TokenRequests {
            authorize: self.counters.authorize.load(Ordering::Relaxed),
            refresh: self.counters.refresh.load(Ordering::Relaxed),
        }
    }
}
/// Which thread runs the authorizer, if any. The authorizer's lock makes it at most one.
#[derive(Default)]
struct RenewingThread {
    /// Checked first, so that the hot path pays one relaxed-cost load.
    active: AtomicBool,
    thread: Mutex<Option<std::thread::ThreadId>>,
}

impl RenewingThread {
    fn enter(&self) -> RenewingGuard<'_> {
        *self.thread.lock() = Some(std::thread::current().id());
        self.active.store(true, Ordering::Release);
        RenewingGuard(self)
    }
}

struct RenewingGuard<'a>(&'a RenewingThread);

impl Drop for RenewingGuard<'_> {
    fn drop(&mut self) {
        self.0.active.store(false, Ordering::Release);
        *self.0.thread.lock() = None;
    }
}
// ===== END CONTRACT ADAPTER ===================================================
