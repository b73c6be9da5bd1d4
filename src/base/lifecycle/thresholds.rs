//! When a token is renewed: the advisory and mandatory windows, as parts of its lifetime.

use std::time::Duration;

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
