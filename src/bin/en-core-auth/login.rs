//! `login` and `logout`: a person's browser (authorization code + PKCE) or device (RFC
//! 8628) login, kept in the token cache under its profile, so that it is asked for again
//! only when the refresh token dies. `token` and `header` use it through the library's
//! settings (`Kind::Login`), with the same cache key.

use en_core_auth::config::Settings;
use en_core_auth::oauth2::{AuthorizationCode, DeviceCode};
use en_core_auth::{AuthMiddleware, Authorizer, Error, ErrorKind, Token};

use crate::{Outcome, profiles};

/// `login`: a new login replaces the one stored for this profile, whoever it was for.
pub(crate) fn login(settings: &Settings, device: bool, no_browser: bool) -> Result<Outcome, Error> {
    let settings = settings.clone().for_login()?;
    let Some(store) = settings.token_store()? else {
        return Err(Error::new(
            ErrorKind::Configuration,
            "a login with no token storage would be forgotten at once: drop --no-cache / \
             --token-storage none",
        ));
    };
    let client = settings.client_info().clone();
    let issuer = settings.identity_provider().to_owned();
    let authorizer: Box<dyn Authorizer> = if device {
        Box::new(DeviceCode::discover(client, issuer)?.with_scopes(settings.scopes()))
    } else {
        let mut login = AuthorizationCode::discover(client, issuer)?.with_scopes(settings.scopes());
        match (settings.redirect_uri(), settings.callback_port()) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "both a redirect URI and a callback port are set: choose one",
                ));
            }
            (Some(uri), None) => login = login.with_redirect_uri(uri),
            (None, Some(port)) => login = login.with_callback_port(port),
            (None, None) => {}
        }
        if no_browser {
            // Over SSH: the person opens the URL on their own machine and pastes back the
            // URL it ended on, on this terminal. Without a terminal, only the loopback
            // listener waits (a forwarded port, or a test acting as the browser).
            let terminal = terminal();
            let pasting = terminal.is_some();
            login = login.with_browser(move |url| {
                eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
                if pasting {
                    eprintln!(
                        "Then paste here the URL the browser ended on (an error page is \
                         fine), or press Enter to cancel:"
                    );
                }
                Ok(())
            });
            if let Some(terminal) = terminal {
                login = login.with_pasted_redirect(move || read_line(terminal));
            }
        }
        Box::new(login)
    };
    store.clear()?;
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(store)
        .try_build()?;
    let token = auth.token()?;
    profiles::remember(&settings);
    eprintln!(
        "{}",
        match who(&token) {
            Some(who) => format!("Logged in as {who}."),
            None => "Logged in.".to_owned(),
        }
    );
    Ok(Outcome::Exit(0))
}

/// The controlling terminal, when there is one to read a pasted line from.
fn terminal() -> Option<std::fs::File> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    std::fs::File::open("/dev/tty").ok()
}

/// One line from the terminal, at most 8 KiB (a longer one is refused whole: the listener
/// gets nothing but a refusal).
fn read_line(terminal: std::fs::File) -> Result<String, Error> {
    use std::io::{BufRead, BufReader, Read};
    let mut line = String::new();
    BufReader::new(terminal.take(8 * 1024))
        .read_line(&mut line)
        .map_err(|error| Error::new(ErrorKind::Other, error))?;
    Ok(line)
}

/// `logout`: revokes this profile's login at the server and forgets it; other profiles
/// stay logged in.
pub(crate) fn logout(settings: &Settings) -> Result<Outcome, Error> {
    let settings = settings.clone().for_login()?;
    let Some(store) = settings.token_store()? else {
        eprintln!("Not logged in.");
        return Ok(Outcome::Exit(0));
    };
    let Some(token) = store.load()? else {
        eprintln!("Not logged in.");
        return Ok(Outcome::Exit(0));
    };
    let revoked = AuthorizationCode::discover(
        settings.client_info().clone(),
        settings.identity_provider().to_owned(),
    )
    .and_then(|mut login| login.revoke(&token));
    // The local login goes whatever the server said: the person asked to be logged out.
    store.clear()?;
    profiles::forget(&settings);
    revoked?;
    eprintln!("Logged out.");
    Ok(Outcome::Exit(0))
}

/// Who a token was issued to, from its ID token's claims (read unverified, only to name the
/// person; verified at login with the `jwt` feature).
pub(crate) fn who(token: &Token) -> Option<String> {
    let claims = claims(token.id_token()?)?;
    [
        "preferred_username",
        "cognito:username",
        "email",
        "username",
        "sub",
    ]
    .iter()
    .find_map(|name| claims.get(*name)?.as_str().map(str::to_owned))
}

/// The claims of a JWT, unverified.
pub(crate) fn claims(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
