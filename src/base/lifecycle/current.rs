//! A token in use, the clocks it is measured against, and the phase it is in.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ureq::http::HeaderValue;

use super::RefreshThresholds;
use crate::{Error, Token};

/// The two clocks a token's age is read from. Crate-private so that tests can stop one and
/// move the other; [`SystemClock`] everywhere else.
pub(crate) trait Clock: Send + Sync {
    /// A clock that never goes back, but stops while the machine is suspended.
    fn monotonic(&self) -> Instant;
    /// A clock that keeps counting through a suspend, but can be set back.
    fn wall(&self) -> SystemTime;
}

/// The operating system's clocks.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Where a token stands, see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Fresh,
    Advisory,
    Mandatory,
    Expired,
}

/// Why a token was withdrawn before its time (a withdrawn token is in [`Phase::Expired`]).
pub(super) const IN_USE: u8 = 0;
/// The user asked for a new token (`invalidate(None)`).
pub(super) const INVALIDATED: u8 = 1;
/// The server answered `401` to it: its successor is renewed as a reply to a refusal.
pub(super) const REFUSED: u8 = 2;

/// A token ready to use: what the hot path hands out (`header`, made by the lifecycle's
/// `prepare` when the token arrives) and what decides when it is renewed.
pub(crate) struct Current {
    pub(crate) token: Token,
    /// What `prepare` made of the token (the middleware's header value).
    pub(crate) header: HeaderValue,
    /// Distinguishes this token from the ones before and after it (it only grows): a 401
    /// names the generation it was sent with, so that a token is renewed once however many
    /// requests it failed, and a late 401 cannot withdraw a newer token.
    pub(crate) generation: u64,
    /// Issued by a renewal that a `401` caused. If this token is refused too, before any
    /// request with it succeeded, the server objects to something a new token will not
    /// change.
    pub(super) after_rejection: bool,
    /// [`IN_USE`], [`INVALIDATED`] or [`REFUSED`].
    withdrawn: AtomicU8,
    /// `None` for a token without an expiry: it is fresh until withdrawn.
    deadlines: Option<Deadlines>,
}

/// When the phases begin, as ages (time since the token arrived).
struct Deadlines {
    arrived: Instant,
    arrived_wall: SystemTime,
    advisory: Duration,
    mandatory: Duration,
    expires: Duration,
}

impl Deadlines {
    /// The larger of the two clocks' readings: the monotonic clock stops during a suspend
    /// (an expired token would look fresh after a resume), the wall clock can be set back
    /// (it would keep a token forever). Each covers the other's failure.
    fn age(&self, clock: &dyn Clock) -> Duration {
        let monotonic = clock.monotonic().saturating_duration_since(self.arrived);
        let wall = clock
            .wall()
            .duration_since(self.arrived_wall)
            .unwrap_or(Duration::ZERO);
        monotonic.max(wall)
    }
}

impl Current {
    pub(super) fn new(
        token: Token,
        generation: u64,
        after_rejection: bool,
        header: HeaderValue,
        thresholds: &RefreshThresholds,
        clock: &dyn Clock,
    ) -> Current {
        let deadlines = token.expires_at().map(|at| {
            let arrived_wall = clock.wall();
            let left = at.duration_since(arrived_wall).unwrap_or(Duration::ZERO);
            let lifetime = token.lifetime().unwrap_or(left);
            Deadlines {
                arrived: clock.monotonic(),
                arrived_wall,
                advisory: left.saturating_sub(thresholds.advisory_for(lifetime)),
                mandatory: left.saturating_sub(thresholds.mandatory_for(lifetime)),
                expires: left,
            }
        });
        Current {
            token,
            header,
            generation,
            after_rejection,
            withdrawn: AtomicU8::new(IN_USE),
            deadlines,
        }
    }

    pub(super) fn phase(&self, clock: &dyn Clock) -> Phase {
        if self.withdrawn.load(Ordering::Relaxed) != IN_USE {
            return Phase::Expired;
        }
        let Some(deadlines) = &self.deadlines else {
            return Phase::Fresh;
        };
        let age = deadlines.age(clock);
        if age >= deadlines.expires {
            Phase::Expired
        } else if age >= deadlines.mandatory {
            Phase::Mandatory
        } else if age >= deadlines.advisory {
            Phase::Advisory
        } else {
            Phase::Fresh
        }
    }

    /// The hot path's check, with one clock read: whether the token is fresh by the wall
    /// clock. It sees a suspend at once; a wall clock set back past the token's arrival
    /// sends the caller to the slow path ([`phase`](Self::phase), both clocks). A smaller
    /// step back makes the token look younger by that much until the slow path runs (or a
    /// `401` renews it): the price of a single clock read here.
    ///
    /// `through_advisory`: the token counts as fresh until the mandatory margin (with
    /// background refresh, requests go on with it through the advisory window).
    pub(super) fn fresh_by_wall(&self, clock: &dyn Clock, through_advisory: bool) -> bool {
        if self.withdrawn.load(Ordering::Relaxed) != IN_USE {
            return false;
        }
        let Some(deadlines) = &self.deadlines else {
            return true;
        };
        let until = if through_advisory {
            deadlines.mandatory
        } else {
            deadlines.advisory
        };
        clock
            .wall()
            .duration_since(deadlines.arrived_wall)
            .is_ok_and(|age| age < until)
    }

    /// How long until the advisory window opens (zero once it has; a long time for a
    /// token without an expiry).
    pub(super) fn until_advisory(&self, clock: &dyn Clock) -> Duration {
        self.deadlines
            .as_ref()
            .map_or(super::background::IDLE, |deadlines| {
                deadlines.advisory.saturating_sub(deadlines.age(clock))
            })
    }

    /// Takes the token out of use (`why` is [`INVALIDATED`] or [`REFUSED`]).
    pub(super) fn withdraw(&self, why: u8) {
        self.withdrawn.store(why, Ordering::Relaxed);
    }

    /// Whether the server refused this token (rather than the user invalidating it).
    pub(super) fn refused(&self) -> bool {
        self.withdrawn.load(Ordering::Relaxed) == REFUSED
    }

    /// The length of the advisory window, for the back-off after a failed advisory refresh.
    pub(super) fn advisory_window(&self) -> Duration {
        self.deadlines.as_ref().map_or(Duration::ZERO, |deadlines| {
            deadlines.mandatory.saturating_sub(deadlines.advisory)
        })
    }
}

/// Turns a token into what the hot path hands out (the middleware builds its header value
/// here); an error makes the renewal that produced the token fail.
pub(crate) type Prepare = Box<dyn Fn(&Token) -> Result<HeaderValue, Error> + Send + Sync>;
