//! A small blocking HTTP/1.1 server: an accept thread, a thread per connection, keep-alive,
//! a body cap, and the one thing off-the-shelf servers such as `tiny_http` can't do: drop a
//! keep-alive connection without answering ([`Reply::Drop`]).
//!
//! Nothing a client sends can panic it or stop it serving: every parse error becomes a 4xx,
//! every handler runs under `catch_unwind`, and a broken connection only ends its own thread.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

/// Requests with a larger body are refused with 413 without reading it.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Request line plus headers.
const MAX_HEAD: u64 = 32 * 1024;
/// A connection idle this long between requests is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP request, fully read.
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path without the query string.
    pub(crate) path: String,
    /// What follows `?`, or empty.
    pub(crate) query: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler wants sent back.
pub(crate) enum Reply {
    Response(Response),
    /// Close the connection without answering.
    Drop,
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(status: u16, content_type: &str, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Response(response)
    }
}

pub(crate) type Handler = dyn Fn(Request) -> Reply + Send + Sync + 'static;

/// A running server; dropping it stops accepting, closes every open connection and frees the
/// port.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(port: u16, handler: Arc<Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let accept_thread = {
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::Builder::new()
                .name(format!("local-idp-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, stop, connections, handler))?
        };
        Ok(Server {
            addr,
            stop,
            connections,
            accept_thread: Some(accept_thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread, blocked in accept(), so it sees `stop` and drops the listener.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        for (_, stream) in self.connections.lock().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.accept_thread.take()
            && woke
        {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    handler: Arc<Handler>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // A failed accept (e.g. the peer reset first) says nothing about the next one.
            continue;
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            connections.lock().insert(id, clone);
        }
        let handler = handler.clone();
        let connections = connections.clone();
        let spawned = std::thread::Builder::new()
            .name("local-idp-conn".to_owned())
            .spawn(move || {
                serve_connection(stream, &*handler);
                connections.lock().remove(&id);
            });
        if spawned.is_err() {
            log::warn!("local identity provider: could not start a connection thread");
        }
    }
}

/// Why a connection's request loop ends.
enum ReadError {
    /// The client closed or went idle: just close.
    Closed,
    /// The client sent something unusable: answer this, then close.
    Bad(u16, &'static str),
    /// The body is over [`MAX_BODY`]: answer 413 (shaped by path), then close.
    TooLarge(String),
}

fn serve_connection(stream: TcpStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let (request, keep_alive) = match read_request(&mut reader, &mut writer) {
            Ok(read) => read,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, message)) => {
                let response = Response {
                    status,
                    headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
                    body: message.as_bytes().to_vec(),
                };
                let _ = write_response(&mut writer, &response, false);
                return linger_close(reader, writer);
            }
            Err(ReadError::TooLarge(path)) => {
                let response = too_large(&path);
                let _ = write_response(&mut writer, &response, false);
                return linger_close(reader, writer);
            }
        };
        let reply = catch_unwind(AssertUnwindSafe(|| handler(request))).unwrap_or_else(|_| {
            Reply::Response(Response {
                status: 500,
                headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
                body: b"internal error in the local identity provider".to_vec(),
            })
        });
        match reply {
            Reply::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Response(response) => {
                if write_response(&mut writer, &response, keep_alive).is_err() || !keep_alive {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    }
}

/// Stop writing, then read (and discard) what the client is still sending for a moment before
/// closing: closing with unread data makes the kernel send a reset, which can destroy the
/// response before the client reads it.
fn linger_close(mut reader: BufReader<TcpStream>, writer: TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(2)));
    let _ = io::copy(&mut (&mut reader).take(16 * 1024 * 1024), &mut io::sink());
}

fn too_large(path: &str) -> Response {
    let message = format!("the request body is larger than {MAX_BODY} bytes");
    if path == "/" {
        Response::json(
            413,
            "application/x-amz-json-1.1",
            &serde_json::json!({"__type": "InvalidParameterException", "message": message}),
        )
    } else {
        Response::json(
            413,
            "application/json",
            &serde_json::json!({"error": "invalid_request", "error_description": message}),
        )
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, budget: &mut u64) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(*budget)
        .read_until(b'\n', &mut line)
        .map_err(|_| ReadError::Closed)?;
    *budget = budget.saturating_sub(read as u64);
    if read == 0 {
        return Err(ReadError::Closed);
    }
    if line.last() != Some(&b'\n') {
        return Err(ReadError::Bad(431, "request head too large"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Bad(400, "request head is not UTF-8"))
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> Result<(Request, bool), ReadError> {
    let mut budget = MAX_HEAD;
    let mut request_line = read_line(reader, &mut budget)?;
    // RFC 9112 2.2: ignore empty lines before a request line.
    while request_line.is_empty() {
        request_line = read_line(reader, &mut budget)?;
    }
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(400, "malformed request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(value) if !chunked => Some(
            value
                .parse::<usize>()
                .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
        ),
        _ => None,
    };
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadError::TooLarge(request.path));
    }
    let expects_continue = request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && (chunked || length.is_some_and(|n| n > 0)) {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Closed)?;
    }
    if chunked {
        request.body = read_chunked(reader, &request.path)?;
    } else if let Some(n) = length {
        let mut body = vec![0; n];
        reader
            .read_exact(&mut body)
            .map_err(|_| ReadError::Closed)?;
        request.body = body;
    }
    Ok((request, keep_alive))
}

fn read_chunked(reader: &mut BufReader<TcpStream>, path: &str) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut budget = 1024;
        let line = read_line(reader, &mut budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut budget = MAX_HEAD;
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::TooLarge(path.to_owned()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|_| ReadError::Closed)?;
        let mut budget = 1024;
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(ReadError::Bad(400, "bad chunk"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_response(writer: &mut TcpStream, response: &Response, keep_alive: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        // Header values are built by this module's callers; a stray CR/LF would split them.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = head.into_bytes();
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}
