//! A custom [`Authorizer`] for a service that is neither OAuth2 nor Cognito.
//!
//! ```text
//! cargo run --example custom_authorizer
//! ```
//!
//! The made-up "weather service" logs in with an API key at `POST /session`, answering
//! `{"session": .., "renew": .., "ttl": ..}`, renews with the renewal ticket at
//! `POST /session/renew`, and wants `Authorization: Session <id>`. A tiny server for it runs
//! on 127.0.0.1 inside this example, so it runs offline.
//!
//! The authorizer only talks to the service. When to call it, single flight across threads,
//! the header and the resend after a 401 are the middleware's job.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

struct WeatherAuthorizer {
    client: ClientInfo,
    base_url: String,
    // Token traffic goes through a plain agent, never one that carries this middleware.
    http: ureq::Agent,
}

impl WeatherAuthorizer {
    fn new(client: ClientInfo, base_url: String) -> WeatherAuthorizer {
        let http = ureq::Agent::config_builder()
            // Every network call needs a timeout; a hung token server must not hang callers.
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        WeatherAuthorizer {
            client,
            base_url,
            http,
        }
    }

    /// Sends one token request and turns the answer into a `Token` or a typed error, so
    /// that the middleware can tell "try later" from "the credentials are wrong".
    fn token_request(&self, path: &str, body: serde_json::Value) -> Result<Token, Error> {
        let mut reply = self
            .http
            .post(format!("{}{path}", self.base_url))
            .send_json(body)
            .map_err(|e| Error::new(ErrorKind::Transport, e))?;
        match reply.status().as_u16() {
            200 => {}
            401 | 403 => return Err(Error::new(ErrorKind::CredentialsRejected, "refused")),
            status if status >= 500 => {
                return Err(Error::new(ErrorKind::Server, format!("status {status}")));
            }
            status => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    format!("status {status}"),
                ));
            }
        }
        let json: serde_json::Value = reply
            .body_mut()
            .read_json()
            .map_err(|e| Error::new(ErrorKind::MalformedResponse, e))?;
        let (Some(session), Some(renew), Some(ttl)) = (
            json["session"].as_str(),
            json["renew"].as_str(),
            json["ttl"].as_u64(),
        ) else {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "incomplete session",
            ));
        };
        Ok(Token::new(session)
            // The renewal ticket rides in the refresh-token slot, for `refresh` below.
            .with_refresh_token(renew)
            .with_expires_in(Duration::from_secs(ttl))
            // The middleware writes `<token type> <token>`: here `Session <id>`.
            .with_token_type("Session"))
    }
}

impl Authorizer for WeatherAuthorizer {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        let key = self.client.client_secret().to_owned();
        self.token_request("/session", serde_json::json!({ "key": key }))
    }

    // The default refresh logs in again; this service has a cheaper renewal. If it fails
    // (say, the ticket was revoked), the middleware itself falls back to `authorize` once.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let Some(ticket) = token.refresh_token() else {
            return self.authorize();
        };
        self.token_request("/session/renew", serde_json::json!({ "renew": ticket }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = WeatherServer::start()?;
    let authorizer =
        WeatherAuthorizer::new(ClientInfo::new("weather-app", "api-key-123"), server.url());
    let auth = AuthMiddleware::new(authorizer);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());

    let forecast = |label: &str| -> Result<(), Box<dyn std::error::Error>> {
        let body = agent
            .get(format!("{}/forecast", server.url()))
            .call()?
            .body_mut()
            .read_to_string()?;
        let requests = auth.token_requests();
        println!(
            "{label}: {body} (logins {}, renewals {})",
            requests.authorize, requests.refresh
        );
        Ok(())
    };
    forecast("first call")?;
    forecast("second call, same session")?;
    // Sessions last 2 s; at 1.7 s the token is in its renewal window, so the middleware
    // calls `refresh` (our override) before the request.
    std::thread::sleep(Duration::from_millis(1700));
    forecast("after 1.7 s, renewed")?;
    let state = server.state.lock().map_err(|_| "poisoned")?;
    println!(
        "server saw {} logins and {} renewals",
        state.logins, state.renewals
    );
    if (state.logins, state.renewals) != (1, 1) {
        return Err("expected one login and one renewal".into());
    }
    Ok(())
}

// ---- the made-up service: just enough HTTP to run the example offline ----

#[derive(Default)]
struct ServerState {
    logins: u32,
    renewals: u32,
    session: String,
    renew: String,
}

struct WeatherServer {
    port: u16,
    state: Arc<Mutex<ServerState>>,
}

impl WeatherServer {
    fn start() -> std::io::Result<WeatherServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(ServerState::default()));
        let shared = Arc::clone(&state);
        // The thread ends with the process; one connection at a time is enough here.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &shared);
            }
        });
        Ok(WeatherServer { port, state })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(stream: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut authorization) = (0usize, String::new());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body)?;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let path = request_line.split_whitespace().nth(1).unwrap_or("");

    let mut state = state
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?;
    let (status, reply) = match path {
        "/session" if json["key"] == "api-key-123" => {
            state.logins += 1;
            issue(&mut state)
        }
        "/session/renew" if json["renew"] == state.renew.as_str() => {
            state.renewals += 1;
            issue(&mut state)
        }
        "/forecast" if authorization == format!("Session {}", state.session) => {
            (200, r#"{"forecast":"sunny"}"#.to_owned())
        }
        _ => (401, r#"{"error":"unauthorized"}"#.to_owned()),
    };
    drop(state);
    write!(
        &stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )
}

fn issue(state: &mut ServerState) -> (u16, String) {
    let n = state.logins + state.renewals;
    state.session = format!("session-{n}");
    state.renew = format!("renew-{n}");
    let reply = serde_json::json!({ "session": state.session, "renew": state.renew, "ttl": 2 });
    (200, reply.to_string())
}
