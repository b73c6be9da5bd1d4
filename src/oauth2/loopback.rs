//! The one-shot loopback listener of a native app's authorization code login (RFC 8252
//! §7.3): it binds `127.0.0.1` only, takes connections until one carries this login's
//! callback ([`callback::check`] says which), answers it with a short page, and closes.
//!
//! The login's timeout is a real bound: every connection is read without blocking, side
//! by side, each under its own deadline (at most [`CONNECTION_TIMEOUT`], never past the
//! login's), so that neither a browser's idle preconnect nor a local process trickling a
//! byte at a time holds up the real callback or the login.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::callback::{self, Expected, Verdict};
use crate::{Error, ErrorKind};

/// How often a waiting listener looks for connections and for what they sent.
const POLL: Duration = Duration::from_millis(20);
/// How long one connection may take to send its request head, and its size cap.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEAD: usize = 16 * 1024;
/// Connections read side by side; beyond that the oldest is dropped (a browser's real
/// callback sends its request at once, and is read before it grows old).
const MAX_OPEN: usize = 32;

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Logged in</title>\
<p>You are logged in. You can close this tab and return to the terminal.</p>";
const FAILED_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Login failed</title>\
<p>The login did not complete. Return to the terminal for details.</p>";

/// A point in time after which waiting stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now (far in the future when it overflows).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        let now = Instant::now();
        Deadline(
            now.checked_add(timeout)
                .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600)),
        )
    }

    /// The time left, zero once passed.
    pub(crate) fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub(crate) fn passed(self) -> bool {
        self.remaining().is_zero()
    }

    /// Whichever comes first.
    pub(crate) fn earliest(self, other: Deadline) -> Deadline {
        self.min(other)
    }
}

/// A bound listener and the redirect URI that reaches it.
pub(crate) struct Loopback {
    listener: TcpListener,
    redirect_uri: String,
    path: String,
    /// How long one connection may take to send its request.
    connection_timeout: Duration,
}

/// A connection whose request head is still coming.
struct Connection {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: Deadline,
}

/// What reading a connection came to.
enum Progress {
    /// Nothing more for now.
    Waiting,
    /// The whole request head is in.
    Head,
    /// Closed, failed, or over the size cap.
    Gone,
}

impl Connection {
    /// Reads what has arrived, without waiting.
    fn read_available(&mut self) -> Progress {
        let mut buffer = [0_u8; 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return Progress::Gone,
                Ok(n) if self.head.len() + n > MAX_HEAD => return Progress::Gone,
                Ok(n) => {
                    self.head.extend_from_slice(&buffer[..n]);
                    let head = &self.head;
                    if head.windows(4).any(|w| w == b"\r\n\r\n")
                        || head.windows(2).any(|w| w == b"\n\n")
                    {
                        return Progress::Head;
                    }
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return Progress::Waiting,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return Progress::Gone,
            }
        }
    }

    /// The request target of a `GET` (anything else is answered 405).
    fn target(&mut self) -> Option<String> {
        let line = std::str::from_utf8(&self.head).ok()?.lines().next()?;
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?.to_owned());
        if method != "GET" {
            self.respond(405, "<p>Method not allowed.</p>");
            return None;
        }
        Some(target)
    }

    fn respond(&mut self, status: u16, page: &str) {
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        // The page holds nothing from the request; no-referrer keeps the callback URL (and
        // its code) from leaking to whatever the person opens next from this tab.
        let reply = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
             Connection: close\r\n\r\n{page}",
            page.len()
        );
        // A short page into a fresh socket's buffer; the write is bounded all the same. The
        // outcome does not depend on the browser reading it.
        let bound = self.deadline.remaining().max(Duration::from_millis(100));
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(bound));
        let _ = self.stream.write_all(reply.as_bytes());
        let _ = self.stream.flush();
    }
}

/// What one request brought.
enum Outcome {
    /// Not a callback for this login (another path, a favicon, a probe, another
    /// `state`): keep waiting.
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
            connection_timeout: CONNECTION_TIMEOUT,
        })
    }

    /// Sets how long one connection may take to send its request (default
    /// [`CONNECTION_TIMEOUT`]).
    #[cfg(test)]
    fn with_connection_timeout(mut self, timeout: Duration) -> Loopback {
        self.connection_timeout = timeout;
        self
    }

    /// The redirect URI to send in the authorization request.
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for this login's callback, and returns its code.
    ///
    /// # Errors
    ///
    /// [`Transport`](ErrorKind::Transport) when no callback came in time; the server's
    /// error (`access_denied` is [`CredentialsRejected`](ErrorKind::CredentialsRejected))
    /// when the callback carries one; [`Other`](ErrorKind::Other) for a callback from
    /// another issuer, or without the `iss` its issuer announces (RFC 9207). A request
    /// with another `state` (a stale tab, or any web page aiming at the port) is answered,
    /// logged and ignored.
    pub(crate) fn wait(self, expected: &Expected<'_>, timeout: Duration) -> Result<String, Error> {
        let login = Deadline::after(timeout);
        self.listener.set_nonblocking(true).map_err(io_error)?;
        let mut open: Vec<Connection> = Vec::new();
        loop {
            self.accept_waiting(&mut open, login)?;
            let mut i = 0;
            while i < open.len() {
                match open[i].read_available() {
                    Progress::Waiting if open[i].deadline.passed() => {
                        log::debug!("login listener: a connection sent no request in time");
                        open.remove(i);
                    }
                    Progress::Waiting => i += 1,
                    Progress::Gone => {
                        open.remove(i);
                    }
                    Progress::Head => match self.serve(open.remove(i), expected) {
                        Outcome::Ignored => {}
                        Outcome::Code(code) => return Ok(code),
                        Outcome::Failed(error) => return Err(error),
                    },
                }
            }
            if login.passed() {
                return Err(Error::new(
                    ErrorKind::Transport,
                    format!(
                        "the browser did not come back to {} within {} s; log in again",
                        self.redirect_uri,
                        timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(POLL.min(login.remaining()));
        }
    }

    /// Takes every connection waiting to be accepted.
    fn accept_waiting(&self, open: &mut Vec<Connection>, login: Deadline) -> Result<(), Error> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if open.len() >= MAX_OPEN {
                        log::debug!(
                            "login listener: too many open connections, the oldest dropped"
                        );
                        open.remove(0);
                    }
                    open.push(Connection {
                        stream,
                        head: Vec::new(),
                        deadline: Deadline::after(self.connection_timeout).earliest(login),
                    });
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// Answers one whole request.
    fn serve(&self, mut connection: Connection, expected: &Expected<'_>) -> Outcome {
        let Some(target) = connection.target() else {
            return Outcome::Ignored;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != self.path {
            connection.respond(404, "<p>Not found.</p>");
            return Outcome::Ignored;
        }
        match callback::check(query, expected) {
            Verdict::NotOurs(why) => {
                log::warn!("login listener: ignored a request to the callback: {why}");
                connection.respond(400, FAILED_PAGE);
                Outcome::Ignored
            }
            Verdict::Code(code) => {
                connection.respond(200, DONE_PAGE);
                Outcome::Code(code)
            }
            Verdict::Failed(error) => {
                connection.respond(400, FAILED_PAGE);
                Outcome::Failed(error)
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
    fn deadlines() {
        let soon = Deadline::after(Duration::from_millis(1));
        let later = Deadline::after(Duration::from_secs(3600));
        assert_eq!(later.earliest(soon), soon);
        assert!(later.remaining() > Duration::from_secs(3000));
        assert!(!later.passed());
        assert!(Deadline::after(Duration::ZERO).passed());
        assert!(!Deadline::after(Duration::MAX).passed(), "no overflow");
    }

    /// A connection that sends nothing is closed at its own deadline, long before the
    /// login's, and the login still takes the callback that comes after.
    #[test]
    fn an_idle_connection_is_closed_at_its_deadline_and_the_login_goes_on() {
        use std::net::TcpStream;
        let listener = Loopback::bind(None)
            .unwrap()
            .with_connection_timeout(Duration::from_millis(100));
        let address = listener.listener.local_addr().unwrap();
        let expected_state = "s1";
        let waiting = std::thread::spawn(move || {
            let expected = Expected {
                state: expected_state,
                issuer: None,
                iss_required: false,
            };
            listener.wait(&expected, Duration::from_secs(60))
        });
        let mut idle = TcpStream::connect(address).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut byte = [0_u8; 1];
        // EOF (or a reset): closed by the listener, not by this read's own timeout.
        match idle.read(&mut byte) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert!(
                !matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut),
                "{e}"
            ),
        }
        let mut real = TcpStream::connect(address).unwrap();
        real.write_all(b"GET /?code=c1&state=s1 HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(waiting.join().unwrap().unwrap(), "c1");
    }

    /// A flood of idle connections costs the oldest of them their place, not the real
    /// callback that comes after them.
    #[test]
    fn a_flood_of_idle_connections_does_not_crowd_out_the_callback() {
        use std::net::TcpStream;
        let listener = Loopback::bind(None).unwrap();
        let address = listener.listener.local_addr().unwrap();
        let idle: Vec<TcpStream> = (0..MAX_OPEN + 8)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        let mut real = TcpStream::connect(address).unwrap();
        real.write_all(b"GET /?state=s1&code=c2 HTTP/1.1\r\n\r\n")
            .unwrap();
        let expected = Expected {
            state: "s1",
            issuer: None,
            iss_required: false,
        };
        assert_eq!(
            listener.wait(&expected, Duration::from_secs(60)).unwrap(),
            "c2"
        );
        drop(idle);
    }
}
