//! What operations people can see: counters of authorizer calls, store reads and resends
//! ([`Stats`]), kept in atomics shared by every clone of a middleware, and the same moments
//! as `tracing` events (feature `tracing`, see [`super::trace`]).
//!
//! Nothing here runs on the hot path: a request with a fresh token counts nothing, so that
//! threads do not bounce a counter's cache line between them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::trace;
use crate::Error;

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
    /// Calls to [`Authorizer::authorize`](crate::Authorizer::authorize): logins, and fallbacks after a failed refresh.
    pub authorize: u64,
    /// Calls to [`Authorizer::refresh`](crate::Authorizer::refresh).
    pub refresh: u64,
}

/// Counters since the middleware was built, shared by its clones; from
/// [`AuthMiddleware::stats`](crate::AuthMiddleware::stats).
///
/// They count **calls to the [`Authorizer`](crate::Authorizer)**, not HTTP requests: an
/// authorizer that retries inside one call (after a 5xx, or with another client
/// authentication method) counts once, and a refresh that fails and falls back to a login
/// counts as one refresh and one authorize. Every [`TokenStore::load`](crate::store::TokenStore::load)
/// counts exactly once, as a hit, a miss or an error.
///
/// ```
/// # use en_core_auth::base::doc_fixture::Counting;
/// let auth = en_core_auth::AuthMiddleware::new(Counting::new());
/// auth.access_token()?;
/// auth.invalidate();
/// auth.access_token()?;
/// let stats = auth.stats();
/// assert_eq!(stats.authorize_ok, 1);
/// assert_eq!(stats.refresh_ok, 1);
/// assert_eq!(stats.store_hits + stats.store_misses + stats.store_errors, 0);
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// [`Authorizer::authorize`](crate::Authorizer::authorize) calls that returned a token.
    pub authorize_ok: u64,
    /// [`Authorizer::authorize`](crate::Authorizer::authorize) calls that returned an error.
    pub authorize_failed: u64,
    /// [`Authorizer::refresh`](crate::Authorizer::refresh) calls that returned a token.
    pub refresh_ok: u64,
    /// [`Authorizer::refresh`](crate::Authorizer::refresh) calls that returned an error.
    pub refresh_failed: u64,
    /// The time spent in those calls, summed.
    pub renewal_time_total: Duration,
    /// The longest of those calls.
    pub renewal_time_max: Duration,
    /// [`TokenStore::load`](crate::store::TokenStore::load) calls whose token was put in use.
    pub store_hits: u64,
    /// Loads that returned nothing, or nothing usable (expired, the token being replaced).
    pub store_misses: u64,
    /// Loads that failed, plus failed saves, locks and clears.
    pub store_errors: u64,
    /// Requests sent again with a renewed token after a `401`.
    pub resends_after_401: u64,
}

/// Which authorizer method a call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Authorize,
    Refresh,
}

impl Call {
    #[cfg_attr(
        not(feature = "tracing"),
        allow(dead_code, reason = "a field value of the tracing feature")
    )]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Authorize => "authorize",
            Call::Refresh => "refresh",
        }
    }
}

/// The store operations counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    Load,
    Save,
    Lock,
    Clear,
}

impl StoreOp {
    #[cfg_attr(
        not(feature = "tracing"),
        allow(dead_code, reason = "a field value of the tracing feature")
    )]
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreOp::Load => "load",
            StoreOp::Save => "save",
            StoreOp::Lock => "lock",
            StoreOp::Clear => "clear",
        }
    }
}

/// The atomics behind [`Stats`]. Relaxed: each counter is read on its own, and a snapshot
/// taken while a renewal runs may see its call counted before its time.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    authorize_ok: AtomicU64,
    authorize_failed: AtomicU64,
    refresh_ok: AtomicU64,
    refresh_failed: AtomicU64,
    /// Calls started (a call in flight is a token request already).
    authorize_started: AtomicU64,
    refresh_started: AtomicU64,
    renewal_nanos_total: AtomicU64,
    renewal_nanos_max: AtomicU64,
    store_hits: AtomicU64,
    store_misses: AtomicU64,
    store_errors: AtomicU64,
    resends: AtomicU64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Counters {
    /// An authorizer call begins.
    pub(crate) fn started(&self, call: Call) {
        match call {
            Call::Authorize => &self.authorize_started,
            Call::Refresh => &self.refresh_started,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// An authorizer call came to `outcome` after `took`.
    pub(crate) fn finished<T>(&self, call: Call, outcome: &Result<T, Error>, took: Duration) {
        let counter = match (call, outcome.is_ok()) {
            (Call::Authorize, true) => &self.authorize_ok,
            (Call::Authorize, false) => &self.authorize_failed,
            (Call::Refresh, true) => &self.refresh_ok,
            (Call::Refresh, false) => &self.refresh_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.renewal_nanos_total
            .fetch_add(nanos(took), Ordering::Relaxed);
        self.renewal_nanos_max
            .fetch_max(nanos(took), Ordering::Relaxed);
        trace::authorizer_call(call, outcome.as_ref().err(), took);
    }

    /// A load whose token was put in use.
    pub(crate) fn store_hit(&self) {
        self.store_hits.fetch_add(1, Ordering::Relaxed);
        trace::store_read("hit");
    }

    /// A load that gave nothing usable.
    pub(crate) fn store_miss(&self) {
        self.store_misses.fetch_add(1, Ordering::Relaxed);
        trace::store_read("miss");
    }

    /// A store operation that failed.
    pub(crate) fn store_error(&self, op: StoreOp, error: &Error) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        trace::store_failed(op, error);
    }

    /// A request is sent again after a `401`.
    pub(crate) fn resent(&self) {
        self.resends.fetch_add(1, Ordering::Relaxed);
        trace::resent_after_401();
    }

    pub(crate) fn token_requests(&self) -> TokenRequests {
        TokenRequests {
            authorize: self.authorize_started.load(Ordering::Relaxed),
            refresh: self.refresh_started.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            authorize_ok: load(&self.authorize_ok),
            authorize_failed: load(&self.authorize_failed),
            refresh_ok: load(&self.refresh_ok),
            refresh_failed: load(&self.refresh_failed),
            renewal_time_total: Duration::from_nanos(load(&self.renewal_nanos_total)),
            renewal_time_max: Duration::from_nanos(load(&self.renewal_nanos_max)),
            store_hits: load(&self.store_hits),
            store_misses: load(&self.store_misses),
            store_errors: load(&self.store_errors),
            resends_after_401: load(&self.resends),
        }
    }
}
