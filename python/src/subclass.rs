//! Python subclasses of `Authorizer` under the Rust lifecycle.
//!
//! The reference's contract: `authorize()` returns an object with an `access_token`;
//! `expired(token)` and `refresh(token)` get that very object back (subclasses keep their
//! own fields on it, such as a refresh token). The core works on [`Token`]s, so
//! [`PythonAuthorizer`] converts each returned object to a `Token` and remembers the object
//! under its access token, to hand it back to `expired` and `refresh`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use en_core_auth::store::CredentialSet;
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyWeakrefMethods, PyWeakrefReference};

use crate::core::{Core, build};
use crate::errors::from_py;

/// How many returned objects are remembered: the token in use, the one it replaced (a
/// late `expired()` call) and a little slack.
const REMEMBERED: usize = 4;

/// A Python `Authorizer` subclass seen as a Rust [`Authorizer`].
struct PythonAuthorizer {
    /// The Python object, weakly: it owns the core that owns this, and a strong reference
    /// would be a cycle the garbage collector cannot see through Rust.
    owner: Py<PyWeakrefReference>,
    client: ClientInfo,
    class_name: String,
    /// `(access token, the object authorize()/refresh() returned)`, newest last.
    returned: Mutex<Vec<(String, Py<PyAny>)>>,
    /// An exception `expired()` raised: `expired` cannot return it, so it answers "expired"
    /// and the renewal that follows returns it to the caller.
    raised_in_expired: Mutex<Option<PyErr>>,
}

impl PythonAuthorizer {
    fn owner<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyAny>, Error> {
        self.owner
            .bind(py)
            .upgrade()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the Python authorizer no longer exists"))
    }

    /// Calls `method` on the Python object and turns what it returns into a [`Token`].
    fn obtain(&self, method: &str, previous: Option<&Token>) -> Result<Token, Error> {
        Python::attach(|py| {
            // The renewal after a raising `expired()` ends with its exception. `refresh`
            // keeps it for the `authorize` the middleware tries after a failed refresh.
            let mut raised = self.raised_in_expired.lock();
            if let Some(err) = raised.as_ref() {
                let err = err.clone_ref(py);
                if previous.is_none() {
                    *raised = None;
                }
                return Err(from_py(err));
            }
            drop(raised);
            let owner = self.owner(py)?;
            let returned = match previous {
                None => owner.call_method0(method),
                Some(token) => owner.call_method1(method, (self.object_for(py, token),)),
            }
            .map_err(from_py)?;
            let token = token_from_object(&returned, method)?;
            let mut remembered = self.returned.lock();
            remembered.retain(|(access, _)| access != token.access_token());
            if remembered.len() == REMEMBERED {
                remembered.remove(0);
            }
            remembered.push((token.access_token().to_owned(), returned.unbind()));
            Ok(token)
        })
    }

    /// The object that was returned with `token`, or (for a token the core got elsewhere)
    /// a `Token` of the Python package with its fields.
    fn object_for(&self, py: Python<'_>, token: &Token) -> Py<PyAny> {
        let remembered = self.returned.lock();
        match remembered
            .iter()
            .rev()
            .find(|(access, _)| access == token.access_token())
        {
            Some((_, object)) => object.clone_ref(py),
            None => py.None(),
        }
    }
}

impl Authorizer for PythonAuthorizer {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        self.obtain("authorize", None)
    }

    fn expired(&self, token: &Token) -> bool {
        Python::attach(|py| {
            let Ok(owner) = self.owner(py) else {
                return true;
            };
            let object = self.object_for(py, token);
            if object.is_none(py) {
                return token.is_expired();
            }
            match owner
                .call_method1("expired", (object,))
                .and_then(|answer| answer.is_truthy())
            {
                Ok(expired) => expired,
                Err(raised) => {
                    *self.raised_in_expired.lock() = Some(raised);
                    true
                }
            }
        })
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let known = Python::attach(|py| !self.object_for(py, token).is_none(py));
        if known {
            self.obtain("refresh", Some(token))
        } else {
            self.obtain("authorize", None)
        }
    }

    fn credential_set(&self) -> CredentialSet {
        CredentialSet::new(&format!("python:{}", self.class_name), "").client(&self.client)
    }
}

/// Reads the reference's token object: `access_token` (text that can go in a header),
/// and an optional expiry, `expires_in` (seconds from now) or `expires_at` (an aware
/// `datetime` or POSIX seconds).
fn token_from_object(object: &Bound<'_, PyAny>, method: &str) -> Result<Token, Error> {
    let malformed = |what: String| Error::new(ErrorKind::MalformedResponse, what);
    if object.is_none() {
        return Err(malformed(format!(
            "{method}() returned None; return an object with an access_token attribute"
        )));
    }
    let access_token: String = object
        .getattr("access_token")
        .map_err(|_| {
            malformed(format!(
                "the object {method}() returned has no access_token attribute"
            ))
        })?
        .extract()
        .map_err(|_| malformed(format!("the access_token {method}() returned is not a str")))?;
    if access_token.is_empty() || access_token.chars().any(|c| c.is_control()) {
        return Err(malformed(format!(
            "the access_token {method}() returned is empty or holds control characters (a line break?)"
        )));
    }
    let mut token = Token::new(access_token);
    if let Some(lifetime) = lifetime_of(object, method)? {
        token = token.with_expires_in(lifetime);
    }
    Ok(token)
}

fn lifetime_of(object: &Bound<'_, PyAny>, method: &str) -> Result<Option<Duration>, Error> {
    let bad = |what: &str| {
        Error::new(
            ErrorKind::MalformedResponse,
            format!("the {what} of the token {method}() returned is not usable"),
        )
    };
    let seconds = |value: Bound<'_, PyAny>, what: &str| -> Result<f64, Error> {
        let seconds: f64 = value.extract().map_err(|_| bad(what))?;
        if seconds.is_finite() {
            Ok(seconds)
        } else {
            Err(bad(what))
        }
    };
    if let Some(value) = attribute(object, "expires_in") {
        return Ok(Some(Duration::from_secs_f64(
            seconds(value, "expires_in")?.max(0.0),
        )));
    }
    let Some(value) = attribute(object, "expires_at") else {
        return Ok(None);
    };
    let at = if value.hasattr("timestamp").unwrap_or(false) {
        if value
            .getattr("tzinfo")
            .map(|tz| tz.is_none())
            .unwrap_or(true)
        {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "the expires_at of the token {method}() returned is a naive datetime; give it a timezone"
                ),
            ));
        }
        let stamp = value
            .call_method0("timestamp")
            .map_err(|_| bad("expires_at"))?;
        seconds(stamp, "expires_at")?
    } else {
        seconds(value, "expires_at")?
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    Ok(Some(Duration::from_secs_f64((at - now).clamp(0.0, 1e12))))
}

/// `object.name` when it exists and is not `None`.
fn attribute<'py>(object: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    object.getattr(name).ok().filter(|value| !value.is_none())
}

/// The core for a Python subclass `owner` of `Authorizer`.
#[pyfunction]
#[pyo3(signature = (owner, client_id, client_secret, api_key, use_id_token=false))]
pub(crate) fn subclass_core(
    py: Python<'_>,
    owner: &Bound<'_, PyAny>,
    client_id: String,
    client_secret: String,
    api_key: String,
    use_id_token: bool,
) -> PyResult<Core> {
    let class_name = owner.get_type().qualname()?.to_string();
    let client = client_info(client_id, client_secret, &api_key);
    let authorizer = PythonAuthorizer {
        owner: PyWeakrefReference::new(owner)?.unbind(),
        client,
        class_name,
        returned: Mutex::new(Vec::new()),
        raised_in_expired: Mutex::new(None),
    };
    let mut builder = AuthMiddleware::builder(authorizer);
    if use_id_token {
        builder = builder.use_id_token();
    }
    build(py, builder, Some(api_key))
}

/// The crate's client information from the Python one's three fields.
pub(crate) fn client_info(client_id: String, client_secret: String, api_key: &str) -> ClientInfo {
    let client = ClientInfo::new(client_id, client_secret);
    if api_key.is_empty() {
        client
    } else {
        client.with_api_key(api_key)
    }
}
