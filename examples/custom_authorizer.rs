//! A custom [`Authorizer`] for a service that is not a standard OAuth2 grant.
//!
//! ```text
//! cargo run --example custom_authorizer
//! ```
//!
//! The made-up "weather service" logs in with an API key (`POST /session`, form field
//! `key`), renews with a renewal ticket (`POST /session/renew`, field `renew`), and answers
//! both as an RFC 6749 token endpoint does, with token type `Session`. A tiny server for
//! it runs on 127.0.0.1 inside this example, so it runs offline.
//!
//! The authorizer only talks to the service, through the crate's own HTTP client
//! (timeouts, no redirects, a size cap, retries of transient failures, errors that name the
//! endpoint) and token-response parser (a `Token`, or an error whose kind tells the
//! middleware "try later" from "the credentials are wrong"). When to call it, single flight
//! across threads, the header and the resend after a 401 are the middleware's job.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use en_core_auth::http::{HttpClient, check_endpoint};
use en_core_auth::oauth2::token_from_reply;
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, Token};

struct WeatherAuthorizer {
    client: ClientInfo,
    base_url: String,
    http: HttpClient,
}

impl WeatherAuthorizer {
    fn new(client: ClientInfo, base_url: String) -> Result<WeatherAuthorizer, Error> {
        // The API key travels to this URL: HTTPS only (loopback excepted), checked once.
        check_endpoint(&base_url, false)?;
        Ok(WeatherAuthorizer {
            client,
            base_url,
            http: HttpClient::new(),
        })
    }

    /// Sends one token request, again while it fails transiently (safe here: the key and
    /// the ticket may be sent twice), and reads the RFC 6749 answer.
    fn token_request(&self, path: &str, form: &[(&str, &str)]) -> Result<Token, Error> {
        let url = format!("{}{path}", self.base_url);
        let reply = self
            .http
            .send_with_retries(|| self.http.post_form(&url, &[], form))?;
        token_from_reply(&reply)
    }
}

impl Authorizer for WeatherAuthorizer {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        let key = self.client.client_secret().to_owned();
        self.token_request("/session", &[("key", &key)])
    }

    // The default refresh logs in again; this service has a cheaper renewal. If it fails
    // (say, the ticket was revoked), the middleware itself falls back to `authorize` once.
    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let Some(ticket) = token.refresh_token() else {
            return self.authorize();
        };
        self.token_request("/session/renew", &[("renew", ticket)])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = WeatherServer::start()?;
    let authorizer =
        WeatherAuthorizer::new(ClientInfo::new("weather-app", "api-key-123"), server.url())?;
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

    // A wrong key: the request fails before reaching the API, and the crate's error (with
    // its kind and the endpoint) comes back out of ureq's.
    let wrong = WeatherAuthorizer::new(ClientInfo::new("weather-app", "wrong"), server.url())?;
    let refused: ureq::Agent = ureq::Agent::config_builder()
        .middleware(AuthMiddleware::new(wrong))
        .build()
        .into();
    match refused.get(format!("{}/forecast", server.url())).call() {
        Err(error) => match Error::from_ureq(&error) {
            Some(ours) => println!("wrong key: {:?}: {ours}", ours.kind()),
            None => return Err(error.into()),
        },
        Ok(_) => return Err("a wrong key was accepted".into()),
    }
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
    let form = String::from_utf8_lossy(&body).into_owned();
    let field = |name: &str| {
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default()
    };
    let path = request_line.split_whitespace().nth(1).unwrap_or("");

    let mut state = state
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?;
    let (status, reply) = match path {
        "/session" if field("key") == "api-key-123" => {
            state.logins += 1;
            issue(&mut state)
        }
        "/session/renew" if field("renew") == state.renew => {
            state.renewals += 1;
            issue(&mut state)
        }
        "/forecast" if authorization == format!("Session {}", state.session) => {
            (200, r#"{"forecast":"sunny"}"#.to_owned())
        }
        "/session" | "/session/renew" => (401, r#"{"error":"invalid_client"}"#.to_owned()),
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
    // An RFC 6749 token response; the middleware writes `Session <access_token>`.
    let reply = serde_json::json!({
        "access_token": state.session, "token_type": "Session",
        "refresh_token": state.renew, "expires_in": 2,
    });
    (200, reply.to_string())
}
