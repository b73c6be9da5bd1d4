//! The one-shot loopback listener of a native app's authorization code login (RFC 8252
//! §7.3): it binds `127.0.0.1` only, accepts connections until one carries a callback for
//! this login, answers it with a short page, and closes.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::response::OAuthError;
use crate::{Error, ErrorKind};

/// How often a waiting listener looks for a connection. The listener is non-blocking so
/// that the timeout holds without a thread left blocked in `accept`.
const POLL: Duration = Duration::from_millis(20);
/// How long one connection may take to send its request head, and its size cap.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEAD: usize = 16 * 1024;

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Logged in</title>\
<p>You are logged in. You can close this tab and return to the terminal.</p>";
const FAILED_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Login failed</title>\
<p>The login did not complete. Return to the terminal for details.</p>";

/// A bound listener and the redirect URI that reaches it.
pub(crate) struct Loopback {
    listener: TcpListener,
    redirect_uri: String,
    path: String,
}

/// What one connection brought.
enum Outcome {
    /// Not a callback for this login (another path, a favicon, a probe): keep waiting.
    Ignored,
    Code(String),
    Failed(Error),
}

impl Loopback {
    /// Binds `127.0.0.1` on the port of `redirect_uri`, or on a free port (the redirect URI
    /// is then `http://127.0.0.1:<port>/`). The URI must be `http` on `127.0.0.1` or
    /// `localhost`: a listener on any other address could be reached from the network.
    pub(crate) fn bind(redirect_uri: Option<&str>) -> Result<Loopback, Error> {
        let config = |message: String| Error::new(ErrorKind::Configuration, message);
        let (port, path, uri) = match redirect_uri {
            None => (0, "/".to_owned(), None),
            Some(uri) => {
                let rest = uri.strip_prefix("http://").ok_or_else(|| {
                    config(format!(
                        "the redirect URI `{uri}` is not http:// on loopback"
                    ))
                })?;
                let (authority, path) = match rest.find(['/', '?', '#']) {
                    Some(i) if rest[i..].starts_with('/') => (&rest[..i], &rest[i..]),
                    Some(_) => {
                        return Err(config(format!(
                            "the redirect URI `{uri}` has a query or fragment"
                        )));
                    }
                    None => (rest, "/"),
                };
                if path.contains(['?', '#']) {
                    return Err(config(format!(
                        "the redirect URI `{uri}` has a query or fragment"
                    )));
                }
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) => (
                        host,
                        port.parse::<u16>().map_err(|_| {
                            config(format!("the redirect URI `{uri}` has a bad port"))
                        })?,
                    ),
                    None => (authority, 80),
                };
                if host != "127.0.0.1" && !host.eq_ignore_ascii_case("localhost") {
                    return Err(config(format!(
                        "the redirect URI `{uri}` must be on 127.0.0.1 or localhost"
                    )));
                }
                (port, path.to_owned(), Some(uri.to_owned()))
            }
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            config(format!(
                "cannot listen on 127.0.0.1:{port} for the login's redirect: {e}"
            ))
        })?;
        let redirect_uri = match uri {
            Some(uri) => uri,
            None => {
                let port = listener
                    .local_addr()
                    .map_err(|e| config(format!("the listener has no address: {e}")))?
                    .port();
                format!("http://127.0.0.1:{port}/")
            }
        };
        Ok(Loopback {
            listener,
            redirect_uri,
            path,
        })
    }

    /// The redirect URI to send in the authorization request.
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for the callback carrying `state`, and returns its code.
    ///
    /// # Errors
    ///
    /// [`Transport`](ErrorKind::Transport) when no callback came in time; the server's
    /// error (`access_denied` is [`CredentialsRejected`](ErrorKind::CredentialsRejected))
    /// when the callback carries one; [`Other`](ErrorKind::Other) at once for a callback
    /// with another `state`, which this login did not start (a stale tab, or a forged
    /// request).
    /// With `issuer` known (a discovered login), a callback whose RFC 9207 `iss` names
    /// another issuer fails the same way as a wrong `state`: the answer came from a server
    /// this login did not ask (a mix-up attack).
    pub(crate) fn wait(
        self,
        state: &str,
        issuer: Option<&str>,
        timeout: Duration,
    ) -> Result<String, Error> {
        let deadline = Instant::now() + timeout;
        self.listener.set_nonblocking(true).map_err(io_error)?;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => match self.serve(stream, state, issuer) {
                    Outcome::Ignored => continue,
                    Outcome::Code(code) => return Ok(code),
                    Outcome::Failed(error) => return Err(error),
                },
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::Transport,
                            format!(
                                "the browser did not come back to {} within {} s; \
                                 log in again",
                                self.redirect_uri,
                                timeout.as_secs()
                            ),
                        ));
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    fn serve(&self, mut stream: TcpStream, state: &str, issuer: Option<&str>) -> Outcome {
        let Some(target) = read_request_target(&mut stream) else {
            return Outcome::Ignored;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != self.path {
            respond(&mut stream, 404, "<p>Not found.</p>");
            return Outcome::Ignored;
        }
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| percent_decode(v))
        };
        let (code, error) = (param("code"), param("error"));
        if code.is_none() && error.is_none() {
            respond(&mut stream, 400, FAILED_PAGE);
            return Outcome::Ignored;
        }
        if param("state").as_deref() != Some(state) {
            respond(&mut stream, 400, FAILED_PAGE);
            return Outcome::Failed(Error::new(
                ErrorKind::Other,
                "the browser came back with a state this login did not send (a stale tab \
                 or a forged request); nothing was exchanged, log in again",
            ));
        }
        if let (Some(expected), Some(iss)) = (issuer, param("iss"))
            && iss.trim_end_matches('/') != expected.trim_end_matches('/')
        {
            respond(&mut stream, 400, FAILED_PAGE);
            // Whatever came in the URL goes into a message that may be logged: no
            // control characters, bounded.
            let iss: String = iss.chars().filter(|c| !c.is_control()).take(200).collect();
            return Outcome::Failed(Error::new(
                ErrorKind::Other,
                format!(
                    "the browser came back from issuer `{iss}`, not `{expected}` (RFC 9207; \
                     a mix-up attack or a misconfigured client); nothing was exchanged"
                ),
            ));
        }
        if let Some(error) = error {
            respond(&mut stream, 200, FAILED_PAGE);
            let mut oauth = OAuthError::new(400, error);
            if let Some(description) = param("error_description") {
                oauth = oauth.with_description(description);
            }
            return Outcome::Failed(Error::new(oauth.kind(), oauth));
        }
        match code.filter(|code| !code.is_empty()) {
            Some(code) => {
                respond(&mut stream, 200, DONE_PAGE);
                Outcome::Code(code)
            }
            None => {
                respond(&mut stream, 400, FAILED_PAGE);
                Outcome::Failed(Error::new(
                    ErrorKind::MalformedResponse,
                    "the browser came back with an empty code",
                ))
            }
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!("the login's loopback listener failed: {e}"),
    )
}

/// The request target of a `GET`, or `None` for anything else or a request that does
/// not arrive in time.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(READ_TIMEOUT)).ok()?;
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?.to_owned();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" {
        respond(stream, 405, "<p>Method not allowed.</p>");
        return None;
    }
    Some(target.to_owned())
}

fn respond(stream: &mut TcpStream, status: u16, page: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    // The page holds nothing from the request; no-referrer keeps the callback URL (and its
    // code) from leaking to whatever the person opens next from this tab.
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{page}",
        page.len()
    );
    // The outcome does not depend on the browser reading the page.
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// Query-string decoding (`+` is a space); `None` for a bad escape or bad UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        let free = Loopback::bind(None).unwrap();
        assert!(free.redirect_uri().starts_with("http://127.0.0.1:"));
        assert!(free.redirect_uri().ends_with('/'));
        for bad in [
            "https://127.0.0.1:8080/",
            "http://0.0.0.0:8080/",
            "http://example.com:8080/cb",
            "http://127.0.0.1:8080/cb?x=1",
            "http://127.0.0.1:port/",
        ] {
            let err = Loopback::bind(Some(bad)).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad}");
        }
        let port = free.listener.local_addr().unwrap().port();
        drop(free);
        let exact = Loopback::bind(Some(&format!("http://localhost:{port}/callback"))).unwrap();
        assert_eq!(exact.path, "/callback");
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
