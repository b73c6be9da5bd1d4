//! [`Core`]: one `AuthMiddleware` (the crate's token lifecycle) for one Python authorizer.

use std::time::UNIX_EPOCH;

use en_core_auth::{AuthMiddleware, Token};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::wait::interruptible;

/// The token lifecycle behind a Python `Authorizer`: obtains, reuses and renews its token,
/// single flight across Python threads and, with a store, across processes.
#[pyclass(module = "en_core.auth._core", frozen)]
pub(crate) struct Core {
    middleware: AuthMiddleware,
    api_key: Option<String>,
}

impl Core {
    pub(crate) fn new(middleware: AuthMiddleware, api_key: Option<String>) -> Core {
        Core {
            middleware,
            api_key: api_key.filter(|key| !key.is_empty()),
        }
    }
}

#[pymethods]
impl Core {
    /// The `Authorization` header value (e.g. `Bearer …`), obtaining or renewing the token
    /// first if needed. A fresh token is returned without leaving the calling thread.
    fn header_value(&self, py: Python<'_>) -> PyResult<String> {
        if let Some(value) = py.detach(|| self.middleware.fresh_header_value()) {
            return Ok(value);
        }
        let middleware = self.middleware.clone();
        interruptible(py, move || middleware.header_value())
    }

    /// The current access token, obtaining or renewing it first if needed.
    fn access_token(&self, py: Python<'_>) -> PyResult<String> {
        let middleware = self.middleware.clone();
        interruptible(py, move || middleware.access_token())
    }

    /// The whole current token as a dict (for `en_core.auth.data.Token`).
    fn token<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let middleware = self.middleware.clone();
        let token = interruptible(py, move || middleware.token())?;
        token_dict(py, &token)
    }

    /// A `401` answered a request that carried `sent`: the header value to resend with
    /// (renewing once, single flight), or `None` to hand the `401` to the caller.
    fn rejected(&self, py: Python<'_>, sent: String) -> PyResult<Option<String>> {
        let middleware = self.middleware.clone();
        interruptible(py, move || middleware.rejected(&sent))
    }

    /// A request that carried `sent` got an answer other than `401`.
    fn accepted(&self, py: Python<'_>, sent: &str) {
        py.detach(|| self.middleware.accepted(sent));
    }

    /// The next use renews the token.
    fn invalidate(&self, py: Python<'_>) {
        py.detach(|| self.middleware.invalidate());
    }

    /// Logs out where the authorizer can, forgets the token and clears the store.
    fn revoke(&self, py: Python<'_>) -> PyResult<()> {
        let middleware = self.middleware.clone();
        interruptible(py, move || middleware.revoke())
    }

    /// The client id of the authorizer's client information.
    #[getter]
    fn client_id(&self) -> &str {
        self.middleware.client_id()
    }

    /// The API key sent as `X-Api-Key`, if any.
    #[getter]
    fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// How many times the authorizer was asked for a token: `(authorize, refresh)`.
    fn token_requests(&self) -> (u64, u64) {
        let counts = self.middleware.token_requests();
        (counts.authorize, counts.refresh)
    }

    fn __repr__(&self) -> String {
        format!(
            "<en_core.auth core for client {:?}>",
            self.middleware.client_id()
        )
    }
}

/// The fields of `token` for Python; `expires_at` in POSIX seconds.
pub(crate) fn token_dict<'py>(py: Python<'py>, token: &Token) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("access_token", token.access_token())?;
    dict.set_item("refresh_token", token.refresh_token())?;
    dict.set_item("id_token", token.id_token())?;
    dict.set_item("token_type", token.token_type())?;
    let expires_at = token
        .expires_at()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64());
    dict.set_item("expires_at", expires_at)?;
    Ok(dict)
}

/// Builds the middleware, turning a configuration mistake into the Python exception.
pub(crate) fn build(
    py: Python<'_>,
    builder: en_core_auth::base::AuthMiddlewareBuilder,
    api_key: Option<String>,
) -> PyResult<Core> {
    let middleware = builder.try_build().map_err(|error| to_py(py, error))?;
    Ok(Core::new(middleware, api_key))
}
