//! Calls into the core without the GIL, and waits that Ctrl-C can end.
//!
//! Python runs signal handlers on the main thread only, between bytecodes: a thread blocked
//! in Rust for the length of a device-code login would ignore Ctrl-C for minutes. A call
//! that may wait therefore runs on a helper thread while the caller wakes every 50 ms to
//! let Python check its signals; the `KeyboardInterrupt` then reaches the caller at once and
//! the helper thread finishes its network call (bounded by the core's timeouts) on its own.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use en_core_auth::Error;
use pyo3::prelude::*;

use crate::errors::to_py;

/// How often a waiting caller checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs `call` without the GIL on a helper thread and waits for it, checking for signals
/// meanwhile: an exception a signal handler raises (`KeyboardInterrupt`) ends the wait.
pub(crate) fn interruptible<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let (done, outcome) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("en-core-auth-call".to_owned())
        .spawn(move || {
            // The caller may have gone (Ctrl-C): then nobody needs the outcome.
            let _ = done.send(call());
        })
        .map_err(|err| pyo3::exceptions::PyRuntimeError::new_err(err.to_string()))?;
    let mut outcome = outcome;
    loop {
        // The receiver is `Send` but not `Sync`: it goes into the GIL-free closure and back.
        let (receiver, received) = py.detach(move || {
            let received = outcome.recv_timeout(SIGNAL_CHECK);
            (outcome, received)
        });
        outcome = receiver;
        match received {
            Ok(result) => return result.map_err(|error| to_py(py, error)),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the en-core-auth call ended without an answer",
                ));
            }
        }
    }
}
