//! A scripted HTTP server on 127.0.0.1 for fault-injection tests of the OAuth2 client:
//! each request gets the next scripted answer (a status and body, a dropped connection, a
//! delay, a huge body), and every request is recorded so tests can count and inspect them.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A status, extra headers and a body; `{base}` in the body becomes the server's
    /// `http://127.0.0.1:PORT`.
    Reply(u16, Vec<(String, String)>, String),
    /// Close the connection without answering.
    Drop,
    /// Wait, then answer.
    Delay(Duration, Box<Answer>),
    /// Hold the answer until the test sets the flag (at most a minute), then answer.
    WaitFor(Arc<AtomicBool>, Box<Answer>),
    /// A 200 whose body is this many bytes of JSON-ish padding.
    Huge(usize),
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Answer {
        Answer::Reply(
            status,
            vec![("content-type".into(), "application/json".into())],
            body.to_owned(),
        )
    }

    /// A successful token response.
    pub fn token(access_token: &str) -> Answer {
        Answer::json(
            200,
            &format!(
                r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600}}"#
            ),
        )
    }

    /// A token response that rotates the refresh token to `refresh`, lasting `expires_in`
    /// seconds; `extra` is more JSON members, each with a leading comma.
    pub fn rotating(access: &str, refresh: &str, expires_in: u64, extra: &str) -> Answer {
        Answer::json(
            200,
            &format!(
                r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{expires_in},"refresh_token":"{refresh}"{extra}}}"#
            ),
        )
    }

    /// An RFC 6749 §5.2 error.
    pub fn oauth_error(status: u16, code: &str) -> Answer {
        Answer::json(
            status,
            &format!(r#"{{"error":"{code}","error_description":"scripted {code}"}}"#),
        )
    }

    /// Adds a header to a `Reply`.
    pub fn with_header(self, name: &str, value: &str) -> Answer {
        match self {
            Answer::Reply(status, mut headers, body) => {
                headers.push((name.into(), value.into()));
                Answer::Reply(status, headers, body)
            }
            other => other,
        }
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The form body, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(name), form_decode(value))
            })
            .collect()
    }

    /// One form field.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Decodes `application/x-www-form-urlencoded` text.
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

struct State {
    script: VecDeque<Answer>,
    fallback: Answer,
    requests: Vec<Recorded>,
}

/// The server. It stops accepting when dropped (the listener thread ends at the next
/// connection or with the test process).
pub struct FaultServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultServer {
    /// Starts a server that answers with `script` in order, then `fallback` for ever.
    pub fn start(script: Vec<Answer>, fallback: Answer) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            fallback,
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                thread::spawn(move || serve(stream, &state, port));
            }
        });
        FaultServer { port, state }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many requests arrived (whole requests, read before answering).
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// The requests that arrived, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every refresh token the server was sent, in order.
    pub fn refresh_tokens_seen(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|request| request.field("refresh_token"))
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, port: u16) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let answer = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        let fallback = state.fallback.clone();
        state.script.pop_front().unwrap_or(fallback)
    };
    answer_with(stream, answer, port);
}

fn answer_with(mut stream: TcpStream, answer: Answer, port: u16) {
    match answer {
        Answer::Drop => drop(stream),
        Answer::Delay(wait, then) => {
            thread::sleep(wait);
            answer_with(stream, *then, port);
        }
        Answer::WaitFor(released, then) => {
            for _ in 0..12_000 {
                if released.load(Ordering::Acquire) {
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
            answer_with(stream, *then, port);
        }
        Answer::Huge(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b' '; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        }
        Answer::Reply(status, headers, body) => {
            let body = body.replace("{base}", &format!("http://127.0.0.1:{port}"));
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
