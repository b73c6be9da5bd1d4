//! The native core of the Python package `en_core.auth`: the Rust crate's middleware, its
//! authorizers and stores, exposed to the Python layer in `python/en_core/auth/`.
//!
//! The Python classes (`Authorizer`, `ClientCredentials`, …) are written in Python and hold
//! one [`Core`] each: the crate's `AuthMiddleware` with its lifecycle (single flight, refresh
//! ahead of expiry, back-off, 401 recovery). Every call into the core releases the GIL, and
//! long waits check for Ctrl-C; Python callbacks (a subclass's `authorize`, a challenge
//! handler, a browser opener) take the GIL for their call only.

#![forbid(unsafe_code)]

use pyo3::prelude::*;

mod builtins;
mod core;
mod errors;
mod subclass;
mod wait;

/// The extension module `en_core.auth._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The crate's `log` records reach Python's `logging` under the logger `en_core.auth`
    // (its children are named after the Rust modules). They never carry secrets: the crate
    // logs kinds, status codes and endpoints only.
    let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?
        .set_prefix("en_core.auth")
        // ureq's own records describe every connection; keep its warnings only.
        .filter_target("ureq".to_owned(), log::LevelFilter::Warn)
        .filter_target("ureq_proto".to_owned(), log::LevelFilter::Warn)
        .install();
    m.add_class::<core::Core>()?;
    m.add_function(wrap_pyfunction!(subclass::subclass_core, m)?)?;
    m.add_function(wrap_pyfunction!(builtins::client_credentials, m)?)?;
    m.add_function(wrap_pyfunction!(builtins::refresh_token, m)?)?;
    m.add_function(wrap_pyfunction!(builtins::authorization_code, m)?)?;
    m.add_function(wrap_pyfunction!(builtins::device_code, m)?)?;
    m.add_function(wrap_pyfunction!(builtins::srp, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
