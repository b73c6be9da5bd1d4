//! Spans and events through the `tracing` crate (feature `tracing`); without the feature
//! every function here is empty and compiles away.
//!
//! **Redaction is the point.** Fields hold only what identifies without exposing: the
//! client id, the reason for a renewal, the authorizer method, the outcome, an
//! [`ErrorKind`](crate::ErrorKind) and a duration. Never a token, a secret, a password, an
//! assertion, a header value, an error's text (a server's message could quote what it was
//! sent) or a store's address (a Redis URL may carry a password). Events that went to `log`
//! before this feature still go there.

#[cfg(feature = "tracing")]
use std::time::Duration;

use super::stats::{Call, StoreOp};
use crate::Error;

/// The span of one authorizer call, entered until dropped.
pub(crate) struct Entered {
    #[cfg(feature = "tracing")]
    _span: tracing::span::EnteredSpan,
}

/// Enters the span of an authorizer call made for `reason` (the lifecycle's reason name).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn renewal(call: Call, reason: &'static str, client_id: &str) -> Entered {
    Entered {
        #[cfg(feature = "tracing")]
        _span: tracing::debug_span!(
            "en_core_auth.renewal",
            call = call.name(),
            reason,
            client_id
        )
        .entered(),
    }
}

/// An authorizer call ended, with its error if it failed, after `took`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn authorizer_call(call: Call, error: Option<&Error>, took: std::time::Duration) {
    #[cfg(feature = "tracing")]
    match error {
        None => tracing::debug!(
            call = call.name(),
            outcome = "ok",
            duration_ms = millis(took),
            "token obtained"
        ),
        Some(error) => tracing::warn!(
            call = call.name(),
            outcome = "failed",
            error_kind = ?error.kind(),
            duration_ms = millis(took),
            "token request failed"
        ),
    }
}

/// A store load came to `outcome` (`hit` or `miss`).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn store_read(outcome: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(outcome, "token store read");
}

/// A store operation failed.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn store_failed(op: StoreOp, error: &Error) {
    #[cfg(feature = "tracing")]
    tracing::warn!(op = op.name(), error_kind = ?error.kind(), "token store failed");
}

/// A request is sent again with a renewed token after a `401`.
pub(crate) fn resent_after_401() {
    #[cfg(feature = "tracing")]
    tracing::debug!("request refused with 401: resent with a renewed token");
}

/// The span of the background refresh thread, entered for its whole life.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn background_thread(client_id: &str) -> Entered {
    Entered {
        #[cfg(feature = "tracing")]
        _span: tracing::debug_span!("en_core_auth.background_refresh", client_id).entered(),
    }
}

/// What the background refresh thread does (`started`, `renewing`, `stopped`…).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn background(what: &'static str, client_id: &str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(client_id, what, "background refresh");
}

#[cfg(feature = "tracing")]
fn millis(took: Duration) -> f64 {
    took.as_secs_f64() * 1000.0
}
