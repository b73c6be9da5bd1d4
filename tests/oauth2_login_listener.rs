//! The browser login's loopback listener under hostile or clumsy local clients, against
//! the local identity provider: a process trickling a byte at a time, an idle preconnect,
//! a request with another `state`, duplicated parameters, a callback without the `iss`
//! the issuer announces. Outcomes and counts; the only clock bounds are generous
//! multiples of the short login timeouts the tests configure, so that a listener that
//! would hang fails the test instead of hanging it.

#![cfg(feature = "testing")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use en_core_auth::oauth2::AuthorizationCode;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind, Token};

const CLIENT: &str = "my-cli";

fn idp() -> LocalIdp {
    let idp = LocalIdp::builder()
        .client(CLIENT, None)
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    idp.login_as("alice");
    idp
}

/// The loopback redirect the identity provider answered with (code, state, iss), and
/// the listener's address.
struct Redirect {
    location: String,
    address: String,
}

impl Redirect {
    /// The location's path and query, with `edit` applied to the query.
    fn target(&self, edit: impl Fn(&str) -> String) -> String {
        let (path, query) = self.location.split_once('?').unwrap();
        let path = &path[path.find("://").unwrap() + 3..];
        let path = &path[path.find('/').unwrap()..];
        format!("{path}?{}", edit(query))
    }
}

/// A login whose "browser" asks the authorization endpoint for the redirect and hands it
/// to `client`, on its own thread as a real browser would be; `client`'s result comes
/// through the receiver.
fn login<T: Send + 'static>(
    idp: &LocalIdp,
    timeout: Duration,
    client: impl Fn(Redirect) -> T + Send + Sync + 'static,
) -> (AuthorizationCode, Client<T>) {
    let (result, received) = mpsc::channel();
    let kept = Arc::new(Mutex::new(result));
    let client = Arc::new(client);
    let auth = AuthorizationCode::discover(ClientInfo::new(CLIENT, ""), idp.issuer())
        .unwrap()
        .with_timeout(timeout)
        .with_browser(move |url: &str| {
            let (url, client, kept) = (url.to_owned(), Arc::clone(&client), Arc::clone(&kept));
            thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .max_redirects(0)
                    .http_status_as_error(false)
                    .build()
                    .into();
                let reply = agent.get(&url).call().unwrap();
                let location = reply.headers()["location"].to_str().unwrap().to_owned();
                let rest = &location["http://".len()..];
                let address = rest[..rest.find('/').unwrap()].to_owned();
                let outcome = client(Redirect { location, address });
                let _ = kept.lock().unwrap().send(outcome);
            });
            Ok(())
        });
    (auth, Client(received))
}

/// What the client thread of [`login`] came to.
struct Client<T>(mpsc::Receiver<T>);

impl<T> Client<T> {
    fn outcome(&self) -> T {
        self.0
            .recv_timeout(Duration::from_secs(60))
            .expect("the client never finished")
    }
}

/// Runs `authorize()` on a thread and waits at most `bound` for it: a listener that
/// hangs fails the test.
fn authorize_within(mut auth: AuthorizationCode, bound: Duration) -> Result<Token, Error> {
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(auth.authorize());
    });
    outcome
        .recv_timeout(bound)
        .expect("the login outlived its timeout")
}

/// One GET on a connection of its own; the status of the answer (0 if none came).
fn get(address: &str, target: &str) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A connection that sends the start of a request one byte a second (under the old
/// per-read timeout of 5 s) until `stop`; true if the listener closed it.
fn trickle(address: &str, stop: Arc<AtomicBool>) -> thread::JoinHandle<bool> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"G").unwrap();
    thread::spawn(move || {
        for byte in b"ET /?code=x&state=y".iter().cycle() {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(Duration::from_secs(1));
            if stream.write_all(&[*byte]).is_err() {
                return true;
            }
        }
        false
    })
}

/// The real callback comes after a trickling connection and an idle preconnect, both
/// opened first: it is read at once, and the login ends long before either would.
#[test]
fn a_trickling_connection_and_an_idle_one_do_not_hold_up_the_callback() {
    let idp = idp();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_client = Arc::clone(&stop);
    let (auth, page) = login(&idp, Duration::from_secs(20), move |redirect| {
        let trickler = trickle(&redirect.address, Arc::clone(&stop_client));
        let idle = TcpStream::connect(&redirect.address).unwrap();
        let status = get(&redirect.address, &redirect.target(str::to_owned));
        drop(idle);
        (status, trickler)
    });
    let token = authorize_within(auth, Duration::from_secs(40)).unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    stop.store(true, Ordering::SeqCst);
    let (status, _trickler) = page.outcome();
    assert_eq!(status, 200);
    assert_eq!(idp.requests(Operation::Token), 1);
}

/// Against a trickling client alone, the login's timeout holds: the login ends with a
/// transport error, and the trickler's connection is closed.
#[test]
fn the_timeout_bounds_the_login_against_a_trickling_client() {
    let idp = idp();
    let (auth, trickler) = login(&idp, Duration::from_secs(2), |redirect| {
        trickle(&redirect.address, Arc::new(AtomicBool::new(false)))
    });
    let error = authorize_within(auth, Duration::from_secs(30)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    let trickler = trickler.outcome();
    assert!(
        trickler.join().unwrap(),
        "the listener closed the connection"
    );
    assert_eq!(idp.requests(Operation::Token), 0);
}

/// Requests that are not this login's callback (another `state`: any web page can aim
/// one at the port; a duplicated parameter) are refused and the login waits on for the
/// real one, whose code alone is exchanged.
#[test]
fn another_state_and_duplicated_parameters_are_refused_and_the_login_goes_on() {
    let idp = idp();
    let (auth, pages) = login(&idp, Duration::from_secs(20), |redirect| {
        let forged = redirect.target(|query| {
            let state = query
                .split('&')
                .find_map(|p| p.strip_prefix("state="))
                .unwrap();
            query.replace(state, "forged-state")
        });
        let twice = redirect.target(|query| format!("{query}&code=injected"));
        vec![
            get(&redirect.address, &forged),
            get(&redirect.address, &twice),
            get(&redirect.address, &redirect.target(str::to_owned)),
        ]
    });
    let token = authorize_within(auth, Duration::from_secs(40)).unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(pages.outcome(), [400, 400, 200]);
    assert_eq!(idp.requests(Operation::Token), 1, "one code exchanged");
}

/// The issuer announces `authorization_response_iss_parameter_supported`: a callback
/// without `iss` is refused and nothing is exchanged (RFC 9207 §2.4).
#[test]
fn a_callback_without_the_announced_iss_ends_the_login() {
    let idp = idp();
    let (auth, page) = login(&idp, Duration::from_secs(20), |redirect| {
        let without_iss = redirect.target(|query| {
            query
                .split('&')
                .filter(|p| !p.starts_with("iss="))
                .collect::<Vec<_>>()
                .join("&")
        });
        get(&redirect.address, &without_iss)
    });
    let error = authorize_within(auth, Duration::from_secs(40)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other, "{error}");
    assert!(error.to_string().contains("iss"), "{error}");
    assert_eq!(page.outcome(), 400);
    assert_eq!(idp.requests(Operation::Token), 0);
}
