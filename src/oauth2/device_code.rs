//! A person's login on another device: the device authorization grant (RFC 8628).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::authorization_code::no_revocation_endpoint;
use super::endpoint::{Builder, Resend, TokenEndpoint, common_settings};
use super::interactive::{IdTokenCheck, discovered_endpoints, error_of, post};
use super::response::OAuthError;
use super::revocation;
use crate::http::check_endpoint;
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const WHAT: &str = "device authorization endpoint";
/// RFC 8628 §3.2: the interval when the server names none, and what `slow_down` adds.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// A code's lifetime when the server omits the (required) `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(600);
/// Longer lifetimes or intervals are read as this: a hostile or broken server cannot keep a
/// CLI waiting for days.
const MAX_WAIT: Duration = Duration::from_secs(3600);

type Prompt = Box<dyn FnMut(&DevicePrompt) -> Result<(), Error> + Send>;
type Sleep = Box<dyn FnMut(Duration) + Send>;

/// What the person needs to approve a device login: where to go and the code to type.
///
/// ```
/// use en_core_auth::oauth2::DevicePrompt;
/// fn show(prompt: &DevicePrompt) {
///     match prompt.verification_uri_complete() {
///         Some(uri) => eprintln!("Open {uri}"),
///         None => eprintln!("Open {} and enter {}", prompt.verification_uri(), prompt.user_code()),
///     }
/// }
/// # let _ = show;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrompt {
    verification_uri: String,
    verification_uri_complete: Option<String>,
    user_code: String,
    expires_in: Duration,
}

impl DevicePrompt {
    /// Where the person goes to enter the code.
    ///
    /// ```
    /// # let prompt = en_core_auth::oauth2::DevicePrompt::example();
    /// assert_eq!(prompt.verification_uri(), "https://idp.example.com/device");
    /// ```
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The same page with the code filled in, when the server gives one (for a QR code).
    ///
    /// ```
    /// # let prompt = en_core_auth::oauth2::DevicePrompt::example();
    /// assert_eq!(prompt.verification_uri_complete(), Some("https://idp.example.com/device?user_code=WDJB-MJHT"));
    /// ```
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// The code the person types. Not a secret on its own: it is worthless without the
    /// device code, which never leaves this process except to the token endpoint.
    ///
    /// ```
    /// # let prompt = en_core_auth::oauth2::DevicePrompt::example();
    /// assert_eq!(prompt.user_code(), "WDJB-MJHT");
    /// ```
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// How long the code stays valid.
    ///
    /// ```
    /// # let prompt = en_core_auth::oauth2::DevicePrompt::example();
    /// assert_eq!(prompt.expires_in().as_secs(), 600);
    /// ```
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// A prompt with RFC 8628's example values, for documentation and tests.
    ///
    /// ```
    /// let prompt = en_core_auth::oauth2::DevicePrompt::example();
    /// assert_eq!(prompt.user_code(), "WDJB-MJHT");
    /// ```
    #[doc(hidden)]
    pub fn example() -> DevicePrompt {
        DevicePrompt {
            verification_uri: "https://idp.example.com/device".to_owned(),
            verification_uri_complete: Some(
                "https://idp.example.com/device?user_code=WDJB-MJHT".to_owned(),
            ),
            user_code: "WDJB-MJHT".to_owned(),
            expires_in: DEFAULT_EXPIRES_IN,
        }
    }
}

/// An [`Authorizer`] that logs a person in with a code typed on another device, as
/// `az login --use-device-code` does: the device authorization grant (RFC 8628).
///
/// [`authorize`](Authorizer::authorize) asks the device authorization endpoint for a code,
/// shows it through the prompt callback (default: stderr), then polls the token endpoint:
/// never before the `interval` the server asked for (five seconds if it names none), five
/// seconds slower for good after each `slow_down` (RFC 8628 §3.5). `access_denied`,
/// `expired_token` or the code's lifetime running out end the login with
/// [`CredentialsRejected`](ErrorKind::CredentialsRejected).
/// [`refresh`](Authorizer::refresh) uses the refresh token without prompting;
/// [`revoke`](Authorizer::revoke) logs out at the revocation endpoint (RFC 7009).
/// Parameters added with `with_parameter` (Auth0's `audience`) go in the device
/// authorization request as well as in the token requests.
///
/// ```no_run
/// use en_core_auth::{AuthMiddleware, ClientInfo, oauth2::DeviceCode};
///
/// let login = DeviceCode::discover(ClientInfo::new("my-cli", ""), "https://idp.example.com")?
///     .with_scopes(["openid", "offline_access"])
///     .with_prompt(|prompt| {
///         eprintln!("Go to {} and enter {}", prompt.verification_uri(), prompt.user_code());
///         Ok(())
///     });
/// let auth = AuthMiddleware::new(login);
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct DeviceCode {
    endpoint: TokenEndpoint,
    device_authorization_url: String,
    revocation_url: Option<String>,
    prompt: Prompt,
    sleep: Sleep,
    id_tokens: IdTokenCheck,
}

impl DeviceCode {
    /// A device login at `device_authorization_url`, polling `token_url`.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for an empty client id or a URL that is
    /// not `https` (loopback `http` is accepted).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::new(
    ///     ClientInfo::new("my-cli", ""),
    ///     "https://idp.example.com/device_authorization",
    ///     "https://idp.example.com/token",
    /// )?;
    /// assert_eq!(login.device_authorization_url(), "https://idp.example.com/device_authorization");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn new(
        client_info: ClientInfo,
        device_authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Result<Self, Error> {
        let device_authorization_url = device_authorization_url.into();
        check_endpoint(&device_authorization_url, false)?;
        let endpoint = Builder::new(client_info, Ok).token_url(token_url).build()?;
        Ok(DeviceCode::with_parts(
            endpoint,
            device_authorization_url,
            None,
        ))
    }

    /// A device login at the endpoints named by the issuer's metadata (OpenID Connect
    /// Discovery, completed from RFC 8414's document, where some servers list the device
    /// authorization endpoint only).
    ///
    /// # Errors
    ///
    /// As [`ClientCredentials::discover`](super::ClientCredentials::discover), and
    /// [`Configuration`](ErrorKind::Configuration) when no metadata names a
    /// `device_authorization_endpoint`.
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::discover(ClientInfo::new("my-cli", ""), "https://idp.example.com")?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn discover(client_info: ClientInfo, issuer_url: impl Into<String>) -> Result<Self, Error> {
        DeviceCode::builder(client_info).issuer(issuer_url).build()
    }

    /// A [`Builder`] for discovery with your own [`HttpClient`](crate::http::HttpClient) or over plain HTTP to a host
    /// that is not loopback; it needs [`issuer`](Builder::issuer).
    ///
    /// ```no_run
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::builder(ClientInfo::new("my-cli", ""))
    ///     .issuer("https://idp.example.com")
    ///     .build()?;
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn builder(client_info: ClientInfo) -> Builder<DeviceCode> {
        Builder::new(client_info, |mut endpoint| {
            let endpoints = discovered_endpoints(
                &mut endpoint,
                |e| e.device_authorization.as_ref(),
                "device_authorization_endpoint",
            )?;
            let url = endpoints.device_authorization.unwrap_or_default();
            check_endpoint(&url, endpoint.allow_insecure_http)?;
            let id_tokens = IdTokenCheck::discovered(&endpoint)?;
            let mut login = DeviceCode::with_parts(endpoint, url, endpoints.revocation);
            login.id_tokens = id_tokens;
            Ok(login)
        })
    }

    fn with_parts(
        endpoint: TokenEndpoint,
        device_authorization_url: String,
        revocation_url: Option<String>,
    ) -> DeviceCode {
        DeviceCode {
            endpoint,
            device_authorization_url,
            revocation_url,
            prompt: Box::new(print_prompt),
            sleep: Box::new(std::thread::sleep),
            id_tokens: IdTokenCheck::default(),
        }
    }

    /// Replaces how the code is shown (default: the URL and the code on stderr). An error
    /// returned here ends the login before any polling.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?
    ///     .with_prompt(|prompt| {
    ///         eprintln!("Enter {} at {}", prompt.user_code(), prompt.verification_uri());
    ///         Ok(())
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_prompt(
        mut self,
        show: impl FnMut(&DevicePrompt) -> Result<(), Error> + Send + 'static,
    ) -> Self {
        self.prompt = Box::new(show);
        self
    }

    /// Replaces how the login waits between polls (default: `std::thread::sleep`). The
    /// login counts the code's lifetime by the waits it asked for, so a test can pass a
    /// closure that records the intervals and returns at once; a UI can animate a spinner.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let waits = Arc::new(Mutex::new(Vec::new()));
    /// let seen = waits.clone();
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?
    ///     .with_sleep(move |interval| seen.lock().unwrap().push(interval));
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_sleep(mut self, sleep: impl FnMut(Duration) + Send + 'static) -> Self {
        self.sleep = Box::new(sleep);
        self
    }

    /// The RFC 7009 revocation endpoint for [`revoke`](Authorizer::revoke) (default: the
    /// discovered one).
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) for a URL that is not `https` (loopback
    /// `http` accepted).
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?
    ///     .with_revocation_url("https://i.example/revoke")?;
    /// assert_eq!(login.revocation_url(), Some("https://i.example/revoke"));
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_revocation_url(mut self, url: impl Into<String>) -> Result<Self, Error> {
        let url = url.into();
        check_endpoint(&url, self.endpoint.allow_insecure_http)?;
        self.revocation_url = Some(url);
        Ok(self)
    }

    /// The device authorization endpoint's URL.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?;
    /// assert_eq!(login.device_authorization_url(), "https://i.example/d");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn device_authorization_url(&self) -> &str {
        &self.device_authorization_url
    }

    /// The revocation endpoint's URL, when one is known.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?;
    /// assert_eq!(login.revocation_url(), None);
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn revocation_url(&self) -> Option<&str> {
        self.revocation_url.as_deref()
    }

    /// Whether the ID tokens this login gets are verified: with the feature `jwt`, when
    /// the login was discovered from an issuer that names its JWKS. Their signature (keys
    /// cached by `kid`, fetched again for an unknown `kid`), `iss`, `aud`, `exp` and, right
    /// after a browser login, the `nonce` are checked; a token that fails is
    /// [`MalformedResponse`](ErrorKind::MalformedResponse). Otherwise nothing is checked.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::DeviceCode};
    /// // Not discovered: there is no issuer or JWKS to check against.
    /// let login = DeviceCode::new(ClientInfo::new("cli", ""), "https://i.example/d", "https://i.example/t")?;
    /// assert!(!login.verifies_id_tokens());
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn verifies_id_tokens(&self) -> bool {
        self.id_tokens.is_on()
    }

    /// RFC 8628 §3.1–3.2: the device code, what to show, and the polling interval.
    fn request_code(&self) -> Result<(String, DevicePrompt, Duration), Error> {
        let scope = self.endpoint.scope();
        // The extra parameters go here too: Auth0, for one, takes the `audience` of the
        // tokens from the device authorization request.
        let fields: Vec<(&str, &str)> = scope
            .iter()
            .map(|s| ("scope", s.as_str()))
            .chain(
                self.endpoint
                    .parameters
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .collect();
        let reply = post(
            &self.endpoint,
            &self.device_authorization_url,
            &fields,
            WHAT,
        )?;
        if !(200..=299).contains(&reply.status) {
            return Err(error_of(&reply, WHAT));
        }
        parse_device_authorization(&reply.body)
    }
}

/// Reads a device authorization response. Everything shown to the person must be free of
/// control characters: a server's text goes to a terminal, where escapes could rewrite
/// what the person sees.
fn parse_device_authorization(body: &[u8]) -> Result<(String, DevicePrompt, Duration), Error> {
    let malformed = |what: &str| {
        Error::new(
            ErrorKind::MalformedResponse,
            format!("the device authorization response {what}"),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed("is not JSON"))?;
    let text = |name: &str| -> Result<Option<String>, Error> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(malformed(&format!("has a bad `{name}`"))),
        }
    };
    let seconds = |name: &str, default: Duration| -> Result<Duration, Error> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|s| Duration::from_secs(s).min(MAX_WAIT))
                .ok_or_else(|| malformed(&format!("has a bad `{name}`"))),
        }
    };
    let device_code = text("device_code")?.ok_or_else(|| malformed("has no `device_code`"))?;
    let user_code = text("user_code")?.ok_or_else(|| malformed("has no `user_code`"))?;
    // Google's endpoint says `verification_url`, an early draft's name.
    let verification_uri = match text("verification_uri")? {
        Some(uri) => uri,
        None => text("verification_url")?.ok_or_else(|| malformed("has no `verification_uri`"))?,
    };
    let prompt = DevicePrompt {
        verification_uri,
        verification_uri_complete: text("verification_uri_complete")?,
        user_code,
        expires_in: seconds("expires_in", DEFAULT_EXPIRES_IN)?,
    };
    // An interval of zero would poll as fast as the network allows.
    let interval = seconds("interval", DEFAULT_INTERVAL)?.max(Duration::from_secs(1));
    Ok((device_code, prompt, interval))
}

common_settings!(
    DeviceCode,
    "use en_core_auth::{ClientInfo, oauth2::DeviceCode};\nlet auth = DeviceCode::new(ClientInfo::new(\"cli\", \"\"), \"https://idp.example.com/device\", \"https://idp.example.com/token\")?",
    "They go in the device authorization request, not in the polls; many servers issue a \
     refresh token only with `offline_access`. A refresh sends none: the server grants the \
     original scope (RFC 6749 §6)."
);

impl Authorizer for DeviceCode {
    fn client_info(&self) -> &ClientInfo {
        &self.endpoint.client
    }

    // The default `expired()` (the expiry time): the hot path need not ask it.
    fn expiry_by_time_only(&self) -> bool {
        true
    }

    /// Shows a code and polls until the person approves or denies it, or it expires.
    fn authorize(&mut self) -> Result<Token, Error> {
        let (device_code, prompt, mut interval) = self.request_code()?;
        (self.prompt)(&prompt)?;
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        loop {
            (self.sleep)(interval);
            waited += interval;
            // The longer of the two clocks: the waits asked for (what an injected sleep
            // reports) and the time that really passed.
            if waited.max(started.elapsed()) >= prompt.expires_in {
                return Err(Error::new(
                    ErrorKind::CredentialsRejected,
                    "the device code expired before the login was approved; log in again",
                ));
            }
            let error = match self.endpoint.request(
                &[("grant_type", GRANT_TYPE), ("device_code", &device_code)],
                // A poll may be repeated: the device code stays valid until approved.
                Resend::Freely,
            ) {
                Ok(token) => {
                    self.id_tokens.check(&self.endpoint, &token, None)?;
                    return Ok(token);
                }
                Err(error) => error,
            };
            let Some(oauth) = error.downcast_ref::<OAuthError>() else {
                return Err(error);
            };
            match oauth.error() {
                "authorization_pending" => {}
                "slow_down" => interval += SLOW_DOWN_STEP,
                "expired_token" | "access_denied" => {
                    return Err(Error::new(ErrorKind::CredentialsRejected, oauth.clone()));
                }
                _ => return Err(error),
            }
        }
    }

    /// Uses the refresh token; without one, logs in again.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        match token.refresh_token() {
            Some(refresh_token) => {
                let renewed = self.endpoint.refresh(refresh_token, None)?;
                self.id_tokens
                    .check_refreshed(&self.endpoint, &renewed, token)?;
                Ok(renewed)
            }
            None => self.authorize(),
        }
    }

    /// The grant, token URL, client, extra parameters, scopes, and the device
    /// authorization endpoint.
    fn credential_set(&self) -> crate::store::CredentialSet {
        self.endpoint.credential_set(GRANT_TYPE).param(
            "device_authorization_endpoint",
            &self.device_authorization_url,
        )
    }

    /// Revokes the refresh token, then the access token, at the revocation endpoint.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) when no revocation endpoint is known,
    /// else the server's.
    fn revoke(&mut self, token: &Token) -> Result<(), Error> {
        match &self.revocation_url {
            Some(url) => revocation::revoke(&self.endpoint, url, token),
            None => Err(no_revocation_endpoint()),
        }
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("endpoint", &self.endpoint)
            .field("device_authorization_url", &self.device_authorization_url)
            .field("revocation_url", &self.revocation_url)
            .finish_non_exhaustive()
    }
}

/// The default prompt: the URL and the code on stderr.
fn print_prompt(prompt: &DevicePrompt) -> Result<(), Error> {
    match prompt.verification_uri_complete() {
        Some(complete) => eprintln!(
            "To log in, open {complete}\nor go to {} and enter the code {}",
            prompt.verification_uri(),
            prompt.user_code()
        ),
        None => eprintln!(
            "To log in, go to {} and enter the code {}",
            prompt.verification_uri(),
            prompt.user_code()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_authorization_responses() {
        let (code, prompt, interval) = parse_device_authorization(
            br#"{"device_code":"d","user_code":"U-C","verification_url":"https://g.example/device","interval":0}"#,
        )
        .unwrap();
        assert_eq!(code, "d");
        assert_eq!(prompt.verification_uri(), "https://g.example/device");
        assert_eq!(prompt.expires_in(), DEFAULT_EXPIRES_IN);
        assert_eq!(interval, Duration::from_secs(1));
        let (_, prompt, interval) = parse_device_authorization(
            br#"{"device_code":"d","user_code":"U","verification_uri":"v","expires_in":99999999}"#,
        )
        .unwrap();
        assert_eq!(
            (prompt.expires_in(), interval),
            (MAX_WAIT, DEFAULT_INTERVAL)
        );
        for bad in [
            &b"nope"[..],
            br#"{"user_code":"U","verification_uri":"v"}"#,
            br#"{"device_code":"d","user_code":"U\u001b[2J","verification_uri":"v"}"#,
            br#"{"device_code":"d","user_code":"U","verification_uri":"v","interval":-1}"#,
            br#"{"device_code":"d","user_code":"U"}"#,
        ] {
            let err = parse_device_authorization(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        }
    }
}
