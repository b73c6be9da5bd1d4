//! Waiting longer after each failure: for renewals that fail with no usable token left, and
//! for tokens that the server keeps refusing however new they are.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::{Error, ErrorKind};

/// The wait after the first failure; it doubles with each failure in a row, up to [`LONGEST`].
pub(super) const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
pub(super) const LONGEST: Duration = Duration::from_secs(30);
/// Up to this share of a wait is taken off at random, so that processes that failed
/// together (a provider outage) do not come back together.
const JITTER: f64 = 0.25;

/// Consecutive failures and how long they hold further attempts off.
#[derive(Debug, Default)]
pub(super) struct BackOff {
    streak: u32,
    until: Option<Instant>,
}

impl BackOff {
    /// One more failure at `now`: holds attempts off for the next, longer wait.
    pub(super) fn failed(&mut self, now: Instant) {
        self.streak = self.streak.saturating_add(1);
        self.until = Some(now + jittered(wait_after(self.streak)));
    }

    /// Whether attempts are held off at `now`. (Equivalent mutant: `<=` for `<` differs
    /// only at the very nanosecond the random wait ends.)
    pub(super) fn active(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Something succeeded: the next failure waits [`FIRST`] again.
    pub(super) fn reset(&mut self) {
        *self = BackOff::default();
    }
}

/// The wait after `streak` failures in a row, before jitter: 1 s, 2 s, 4 s … 30 s.
pub(super) fn wait_after(streak: u32) -> Duration {
    // 2^5 s already passes the cap; the `min` keeps the shift from overflowing.
    let doublings = streak.saturating_sub(1).min(5);
    FIRST.saturating_mul(1 << doublings).min(LONGEST)
}

/// `wait` less up to a quarter, at random.
pub(super) fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(1.0 - JITTER * random_unit())
}

/// A number in [0, 1). Not for secrets: `RandomState` is seeded per process and steps its
/// key with each instance, which is enough to spread retries.
pub(super) fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// A failed renewal, kept to answer the callers that come during its back-off (and those
/// that waited for it) with the same error, without asking the identity provider again.
#[derive(Debug, Clone)]
pub(super) struct Remembered {
    kind: ErrorKind,
    detail: String,
}

impl Remembered {
    pub(super) fn of(error: &Error) -> Remembered {
        let detail =
            std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string);
        Remembered {
            kind: error.kind(),
            detail,
        }
    }

    /// The error again (with its kind and text; the original's type is not kept).
    pub(super) fn error(&self) -> Error {
        Error::new(self.kind, self.detail.clone())
    }
}
