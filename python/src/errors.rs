//! The crate's errors as Python exceptions, and Python exceptions carried through the core.
//!
//! Each [`ErrorKind`] maps to one class of `en_core.auth.errors` (`TransportError`, …), all
//! subclasses of `AuthError`. An exception that a Python callback raised travels through the
//! core as the source of an [`Error`] and is raised again as itself.

use std::fmt;

use en_core_auth::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// An exception raised by Python code the core called (a subclass's `authorize`, a
/// challenge handler), kept so that the caller gets it back unchanged.
pub(crate) struct PythonRaised(pub(crate) PyErr);

impl fmt::Debug for PythonRaised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PythonRaised")
    }
}

impl fmt::Display for PythonRaised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The exception's own text is the user's; the type name is enough here.
        Python::attach(|py| {
            let name = self
                .0
                .get_type(py)
                .name()
                .map(|name| name.to_string())
                .unwrap_or_else(|_| "an exception".to_owned());
            write!(f, "a Python callback raised {name}")
        })
    }
}

impl std::error::Error for PythonRaised {}

/// An [`Error`] of kind `Other` carrying the exception `err`, counted by the lifecycle as a
/// failure (back-off) and raised again as itself by [`to_py`].
pub(crate) fn from_py(err: PyErr) -> Error {
    Error::other(PythonRaised(err))
}

/// The Python exception for `error`: the original exception when a Python callback raised
/// it, else the `en_core.auth.errors` class of its kind with the error's message.
pub(crate) fn to_py(py: Python<'_>, error: Error) -> PyErr {
    if let Some(raised) = error.downcast_ref::<PythonRaised>() {
        return raised.0.clone_ref(py);
    }
    let message = error.to_string();
    match error_class(py, error.kind()) {
        Ok(class) => PyErr::from_type(class, message),
        Err(import_failed) => import_failed,
    }
}

fn error_class(py: Python<'_>, kind: ErrorKind) -> PyResult<Bound<'_, PyType>> {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module =
        ERRORS.get_or_try_init(py, || py.import("en_core.auth.errors").map(Bound::unbind))?;
    let name = match kind {
        ErrorKind::Configuration => "ConfigurationError",
        ErrorKind::Transport => "TransportError",
        ErrorKind::Server => "ServerError",
        ErrorKind::CredentialsRejected => "CredentialsRejectedError",
        ErrorKind::MalformedResponse => "MalformedResponseError",
        ErrorKind::ChallengeRequired => "ChallengeRequiredError",
        ErrorKind::Storage => "StorageError",
        _ => "AuthError",
    };
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}
