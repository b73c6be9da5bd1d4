//! Renewal off the request path (`AuthMiddlewareBuilder::background_refresh`): one thread
//! per lifecycle wakes as the advisory window opens and renews, so that no request waits
//! for the identity provider.
//!
//! The thread renews exactly as a request in the advisory window would: through the
//! single flight (it only `try_lock`s the authorizer), the store's lease (`try_lock`: in a
//! fleet one machine renews and the others adopt its token), and the pacing after a failed
//! or non-extending renewal. So a failing provider sees no more requests with it than
//! without. From the mandatory margin on it leaves renewing to the requests, as before.
//!
//! It holds the lifecycle by a `Weak` and upgrades it only for a step: once the last
//! middleware clone is dropped (after a renewal in flight, bounded by the authorizer's
//! timeouts), the upgrade fails and the thread ends. The lifecycle's `Drop` unparks it so
//! that it need not sleep out its wait first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::thread::{self, Thread};
use std::time::Duration;

use super::Lifecycle;
use crate::base::trace;

/// The thread's name (at most 15 bytes, so that `/proc/*/task/*/comm` shows it whole).
pub(crate) const THREAD_NAME: &str = "en-core-auth-bg";

/// How long the thread sleeps when there is nothing to wait for (no token, or a token past
/// its advisory window, which the requests renew): a new token wakes it sooner.
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// The shortest sleep between two steps, against a busy loop in a case not foreseen.
const SHORTEST: Duration = Duration::from_millis(10);

/// Starts the thread for `lifecycle`; `None` when the system refuses a thread (the
/// requests then renew in the advisory window, as without the option).
pub(super) fn start(lifecycle: Weak<Lifecycle>, client_id: String) -> Option<Thread> {
    let spawned = thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        .spawn(move || run(&lifecycle, &client_id));
    match spawned {
        Ok(handle) => Some(handle.thread().clone()),
        Err(error) => {
            log::warn!("could not start the background refresh thread: {error}");
            None
        }
    }
}

fn run(lifecycle: &Weak<Lifecycle>, client_id: &str) {
    let _span = trace::background_thread(client_id);
    trace::background("started", client_id);
    loop {
        let Some(strong) = lifecycle.upgrade() else {
            break;
        };
        // A panicking `on_token_change` callback must not end the renewals.
        let wait =
            catch_unwind(AssertUnwindSafe(|| strong.background_step())).unwrap_or_else(|_| {
                log::warn!("the token change callback panicked on the background thread");
                IDLE
            });
        // The last clone may go while we sleep: hold nothing.
        drop::<Arc<Lifecycle>>(strong);
        thread::park_timeout(wait.max(SHORTEST));
    }
    trace::background("stopped", client_id);
}
