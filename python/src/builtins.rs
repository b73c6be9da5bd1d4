//! The crate's own authorizers for the Python classes of `en_core.auth.oauth2` and
//! `en_core.auth.srp`: keyword options map one to one to the Rust builders.

use std::collections::BTreeMap;

use en_core_auth::oauth2::{AuthorizationCode, ClientCredentials, DeviceCode, RefreshToken};
use en_core_auth::srp::{Challenge, SrpAuthorizer};
use en_core_auth::store::{FileStore, RedisStore};
use en_core_auth::{AuthMiddleware, Authorizer, Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::core::{Core, build};
use crate::errors::{from_py, to_py};
use crate::subclass::client_info;

/// Where tokens are kept between processes: `("file", directory or None)` or
/// `("redis", url)`, as the Python `FileStore` and `RedisStore` describe themselves.
type StoreSpec = Option<(String, Option<String>)>;

/// Wraps the authorizer in a middleware with its token store.
fn finish(
    py: Python<'_>,
    authorizer: impl Authorizer + 'static,
    store: StoreSpec,
    api_key: String,
    use_id_token: bool,
) -> PyResult<Core> {
    let key = authorizer.credential_set().cache_key();
    let mut builder = AuthMiddleware::builder(authorizer);
    if use_id_token {
        builder = builder.use_id_token();
    }
    match store {
        None => {}
        Some((kind, place)) => match (kind.as_str(), place) {
            ("file", None) => {
                builder = builder.token_store(FileStore::new(key).map_err(|e| to_py(py, e))?)
            }
            ("file", Some(dir)) => builder = builder.token_store(FileStore::in_dir(dir, key)),
            ("redis", Some(url)) => {
                builder = builder.token_store(RedisStore::new(&url, key).map_err(|e| to_py(py, e))?)
            }
            _ => {
                return Err(to_py(
                    py,
                    Error::new(
                        ErrorKind::Configuration,
                        "store= takes an en_core.auth.store.FileStore or RedisStore",
                    ),
                ));
            }
        },
    }
    build(py, builder, Some(api_key))
}

/// `en_core.auth.oauth2.ClientCredentials`: at `token_url`, or discovered from `issuer`.
#[pyfunction]
#[pyo3(signature = (client_id, client_secret, api_key, token_url, issuer, scopes, store, parameters))]
#[allow(clippy::too_many_arguments)] // one per keyword option of the Python class
pub(crate) fn client_credentials(
    py: Python<'_>,
    client_id: String,
    client_secret: String,
    api_key: String,
    token_url: Option<String>,
    issuer: Option<String>,
    scopes: Vec<String>,
    store: StoreSpec,
    parameters: Vec<(String, String)>,
) -> PyResult<Core> {
    let client = client_info(client_id, client_secret, &api_key);
    let authorizer = py
        .detach(move || match (token_url, issuer) {
            (Some(url), _) => ClientCredentials::new(client, url),
            (None, Some(issuer)) => ClientCredentials::discover(client, issuer),
            (None, None) => Err(missing("token_url or issuer")),
        })
        .map_err(|e| to_py(py, e))?;
    let mut authorizer = authorizer.with_scopes(scopes);
    for (name, value) in &parameters {
        authorizer = authorizer.with_parameter(name, value);
    }
    finish(py, authorizer, store, api_key, false)
}

/// `en_core.auth.oauth2.RefreshToken`: trades a refresh token (keeping a rotated one).
#[pyfunction]
#[pyo3(signature = (client_id, client_secret, api_key, token_url, refresh_token, scopes, store))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn refresh_token(
    py: Python<'_>,
    client_id: String,
    client_secret: String,
    api_key: String,
    token_url: String,
    refresh_token: String,
    scopes: Vec<String>,
    store: StoreSpec,
) -> PyResult<Core> {
    let client = client_info(client_id, client_secret, &api_key);
    let authorizer = RefreshToken::new(client, token_url, refresh_token)
        .map_err(|e| to_py(py, e))?
        .with_scopes(scopes);
    finish(py, authorizer, store, api_key, false)
}

/// `en_core.auth.oauth2.AuthorizationCode`: a browser login with PKCE and a loopback
/// redirect. `browser(url)` is a Python callable, or `None` for the system's browser.
#[pyfunction]
#[pyo3(signature = (client_id, client_secret, api_key, authorization_url, token_url, issuer, scopes, redirect_uri, browser, store, use_id_token))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn authorization_code(
    py: Python<'_>,
    client_id: String,
    client_secret: String,
    api_key: String,
    authorization_url: Option<String>,
    token_url: Option<String>,
    issuer: Option<String>,
    scopes: Vec<String>,
    redirect_uri: Option<String>,
    browser: Option<Py<PyAny>>,
    store: StoreSpec,
    use_id_token: bool,
) -> PyResult<Core> {
    let client = client_info(client_id, client_secret, &api_key);
    let authorizer = py
        .detach(move || match (authorization_url, token_url, issuer) {
            (Some(authorization), Some(token), _) => {
                AuthorizationCode::new(client, authorization, token)
            }
            (_, _, Some(issuer)) => AuthorizationCode::discover(client, issuer),
            _ => Err(missing("authorization_url and token_url, or issuer")),
        })
        .map_err(|e| to_py(py, e))?;
    let mut authorizer = authorizer.with_scopes(scopes);
    if let Some(uri) = redirect_uri {
        authorizer = authorizer.with_redirect_uri(uri);
    }
    if let Some(browser) = browser {
        authorizer = authorizer.with_browser(move |url: &str| {
            Python::attach(|py| browser.call1(py, (url,)).map(drop).map_err(from_py))
        });
    }
    finish(py, authorizer, store, api_key, use_id_token)
}

/// `en_core.auth.oauth2.DeviceCode`: RFC 8628. `prompt(uri, uri_complete, user_code)` is
/// the Python layer's wrapper around the user's callable, or `None` for stderr.
#[pyfunction]
#[pyo3(signature = (client_id, client_secret, api_key, device_authorization_url, token_url, issuer, scopes, prompt, store, use_id_token))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn device_code(
    py: Python<'_>,
    client_id: String,
    client_secret: String,
    api_key: String,
    device_authorization_url: Option<String>,
    token_url: Option<String>,
    issuer: Option<String>,
    scopes: Vec<String>,
    prompt: Option<Py<PyAny>>,
    store: StoreSpec,
    use_id_token: bool,
) -> PyResult<Core> {
    let client = client_info(client_id, client_secret, &api_key);
    let authorizer = py
        .detach(
            move || match (device_authorization_url, token_url, issuer) {
                (Some(device), Some(token), _) => DeviceCode::new(client, device, token),
                (_, _, Some(issuer)) => DeviceCode::discover(client, issuer),
                _ => Err(missing("device_authorization_url and token_url, or issuer")),
            },
        )
        .map_err(|e| to_py(py, e))?;
    let mut authorizer = authorizer.with_scopes(scopes);
    if let Some(prompt) = prompt {
        authorizer = authorizer.with_prompt(move |shown| {
            Python::attach(|py| {
                prompt
                    .call1(
                        py,
                        (
                            shown.verification_uri(),
                            shown.verification_uri_complete(),
                            shown.user_code(),
                        ),
                    )
                    .map(drop)
                    .map_err(from_py)
            })
        });
    }
    finish(py, authorizer, store, api_key, use_id_token)
}

/// `en_core.auth.srp.SrpAuthorizer`: Cognito SRP. `challenge_handler(name, parameters)` is
/// the Python layer's wrapper around the user's callable; it returns the answer.
#[pyfunction]
#[pyo3(signature = (client_id, client_secret, api_key, user_pool_id, username, password, endpoint, use_id_token, challenge_handler, store))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn srp(
    py: Python<'_>,
    client_id: String,
    client_secret: String,
    api_key: String,
    user_pool_id: String,
    username: String,
    password: String,
    endpoint: Option<String>,
    use_id_token: bool,
    challenge_handler: Option<Py<PyAny>>,
    store: StoreSpec,
) -> PyResult<Core> {
    let client = client_info(client_id, client_secret, &api_key);
    let mut authorizer =
        SrpAuthorizer::new(client, user_pool_id, username, password).map_err(|e| to_py(py, e))?;
    if let Some(url) = endpoint {
        authorizer = authorizer.with_endpoint(url).map_err(|e| to_py(py, e))?;
    }
    if let Some(handler) = challenge_handler {
        authorizer = authorizer.with_challenge_handler(move |challenge: &Challenge| {
            Python::attach(|py| {
                let parameters = challenge_parameters(py, challenge).map_err(from_py)?;
                handler
                    .call1(py, (challenge.name(), parameters))
                    .and_then(|answer| answer.extract::<String>(py))
                    .map_err(from_py)
            })
        });
    }
    finish(py, authorizer, store, api_key, use_id_token)
}

/// The challenge's details under Cognito's own `ChallengeParameters` names.
fn challenge_parameters<'py>(
    py: Python<'py>,
    challenge: &Challenge,
) -> PyResult<Bound<'py, PyDict>> {
    let mut parameters = BTreeMap::new();
    let list = |items: &[String]| serde_json_list(items);
    match challenge {
        Challenge::SmsMfa { destination }
        | Challenge::EmailOtp { destination }
        | Challenge::SmsOtp { destination } => {
            if let Some(destination) = destination {
                parameters.insert(
                    "CODE_DELIVERY_DESTINATION".to_owned(),
                    destination.to_owned(),
                );
            }
        }
        Challenge::SelectMfaType { options } => {
            parameters.insert("MFAS_CAN_CHOOSE".to_owned(), list(options));
        }
        Challenge::MfaSetup { secret, uri } => {
            parameters.insert("SECRET_CODE".to_owned(), secret.to_owned());
            parameters.insert("URI".to_owned(), uri.to_owned());
        }
        Challenge::CustomChallenge { parameters: custom } => {
            parameters.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Challenge::SelectChallenge { available } => {
            parameters.insert("AVAILABLE_CHALLENGES".to_owned(), list(available));
        }
        _ => {}
    }
    let dict = PyDict::new(py);
    for (name, value) in parameters {
        dict.set_item(name, value)?;
    }
    Ok(dict)
}

/// A JSON array of strings, as Cognito writes lists in challenge parameters.
fn serde_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

fn missing(what: &str) -> Error {
    Error::new(ErrorKind::Configuration, format!("give {what}"))
}
