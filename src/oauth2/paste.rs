//! Finishing a browser login from another machine: the person pastes the URL their browser
//! ended on (the page that failed to load is fine), or the bare code. What they paste is
//! sent to the login's own loopback listener as the browser would have, so that it is
//! checked exactly as a callback is (`state`, and `iss` for a discovered issuer) by one code
//! path, and the login takes whichever of the two comes first. One check comes first here:
//! the listener ignores a callback with another `state` (any web page can send one to its
//! port), but a URL the person pasted with another `state` is from another login, and ends
//! this one. A refusal reaches the listener as this login's own error callback (with the
//! issuer's `iss` where one is announced), so that it ends the login at once.
//!
//! The pasted text is never logged nor put in an error: a line that is too long, holds
//! control characters or spaces, or carries no code is refused with a fixed message.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::Error;

/// What reads the pasted line: called once, on its own thread.
pub(crate) type PasteReader = Box<dyn FnOnce() -> Result<String, Error> + Send>;

/// The longest line accepted: a redirect URL with a code, a state and an issuer is a few
/// hundred bytes.
const MAX_PASTED: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `read` on its own thread and hands what it returns to the listener at
/// `redirect_uri`. When the callback comes first, the thread is left waiting for input that
/// no longer matters (a blocking read cannot be cancelled); it holds nothing secret.
pub(crate) fn forward(read: PasteReader, redirect_uri: &str, state: &str, issuer: Option<&str>) {
    let Some((address, path)) = listener_of(redirect_uri) else {
        return;
    };
    let state = state.to_owned();
    // Added to what this login makes itself (a bare code, a refusal): the listener requires
    // `iss` when the issuer announces it, and these come from no server at all.
    let iss = issuer.map_or(String::new(), |issuer| format!("&iss={}", encode(issuer)));
    let spawned = std::thread::Builder::new()
        .name("en-core-auth pasted redirect".to_owned())
        .spawn(move || {
            let target = match read() {
                Ok(line) => callback_target(&line, &path, &state, &iss),
                Err(_) => Err("the pasted redirect could not be read"),
            };
            let target = target.unwrap_or_else(|why| {
                format!(
                    "{path}?error=access_denied&error_description={}&state={state}{iss}",
                    encode(why)
                )
            });
            send(address, &target);
        });
    if let Err(error) = spawned {
        log::warn!("login: cannot read a pasted redirect ({error}); waiting for the browser");
    }
}

/// The listener's address (always `127.0.0.1`, which it binds) and path.
fn listener_of(redirect_uri: &str) -> Option<(SocketAddr, String)> {
    let rest = redirect_uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let port = match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().ok()?,
        None => 80,
    };
    Some((SocketAddr::from(([127, 0, 0, 1], port)), path.to_owned()))
}

/// The request target the browser would have sent: the pasted URL's query on the
/// listener's path, or a bare code with this login's state. `Err` says why the line is
/// refused, without quoting it.
fn callback_target(
    pasted: &str,
    path: &str,
    state: &str,
    iss: &str,
) -> Result<String, &'static str> {
    let pasted = pasted.trim();
    if pasted.is_empty() {
        return Err("nothing was pasted: the login was abandoned");
    }
    if pasted.len() > MAX_PASTED
        || pasted
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii())
    {
        return Err("the pasted line was refused: too long, or not a URL or a code");
    }
    if let Some((_, query)) = pasted.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        let pairs = super::callback::parse(query)
            .ok_or("the pasted URL was refused: its query does not decode")?;
        if pairs
            .iter()
            .any(|(name, value)| name == "state" && value != state)
        {
            return Err("the pasted URL carries a state this login did not send");
        }
        return Ok(format!("{path}?{query}"));
    }
    let bare_code = pasted
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%'));
    if !bare_code {
        return Err("the pasted URL carries no code: paste the whole address the browser ended on");
    }
    Ok(format!("{path}?code={pasted}&state={state}{iss}"))
}

/// `text` percent-encoded for a query (unreserved characters kept, RFC 3986 §2.3).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One GET to the listener; its answer (a short page) is read and dropped.
fn send(address: SocketAddr, target: &str) {
    let sent = TcpStream::connect_timeout(&address, TIMEOUT).and_then(|mut stream| {
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        let _ = stream.take(16 * 1024).read_to_end(&mut answer);
        Ok(())
    });
    if let Err(error) = sent {
        // The listener is gone: the callback came first, or the login timed out.
        log::debug!("login: the pasted redirect was not delivered: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_url_keeps_its_query_on_the_listeners_path() {
        assert_eq!(
            callback_target(
                "  http://127.0.0.1:8400/?code=abc&state=s1&iss=https%3A%2F%2Fi#frag\n",
                "/callback",
                "s1",
                "&iss=x"
            ),
            Ok("/callback?code=abc&state=s1&iss=https%3A%2F%2Fi".to_owned())
        );
        // The bare code gets this login's state (and the issuer's `iss`, when announced).
        assert_eq!(
            callback_target("c0de-_.~", "/", "s1", ""),
            Ok("/?code=c0de-_.~&state=s1".to_owned())
        );
        assert_eq!(
            callback_target("c0de", "/", "s1", "&iss=https%3A%2F%2Fi"),
            Ok("/?code=c0de&state=s1&iss=https%3A%2F%2Fi".to_owned())
        );
    }

    #[test]
    fn a_pasted_url_from_another_login_is_refused() {
        assert_eq!(
            callback_target("http://127.0.0.1:1/?code=abc&state=other", "/", "s1", ""),
            Err("the pasted URL carries a state this login did not send")
        );
    }

    #[test]
    fn hostile_lines_are_refused_without_being_quoted() {
        let long = format!("http://x/?code={}", "a".repeat(5000));
        for line in [
            "",
            "\n",
            long.as_str(),
            "http://x/?code=a\u{1b}[31m",
            "code with spaces",
            "https://idp.example/no-query",
            "caf\u{e9}",
        ] {
            let why = callback_target(line, "/", "s", "").unwrap_err();
            assert!(
                !why.contains("idp.example") && !why.contains("aaaa"),
                "{why}"
            );
        }
    }

    #[test]
    fn the_listener_address_is_loopback() {
        assert_eq!(
            listener_of("http://localhost:8400/cb"),
            Some((SocketAddr::from(([127, 0, 0, 1], 8400)), "/cb".to_owned()))
        );
        assert_eq!(
            listener_of("http://127.0.0.1:9/"),
            Some((SocketAddr::from(([127, 0, 0, 1], 9)), "/".to_owned()))
        );
    }
}
