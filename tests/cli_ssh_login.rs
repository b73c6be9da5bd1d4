//! `en-core-auth login` finished from another machine, against the local identity
//! provider: the redirect URL pasted on a real terminal (a pty from util-linux `script`),
//! a pasted URL with another `state` refused with its code never redeemed, and a fixed
//! callback port (what `ssh -L` forwards) completing the login without a paste.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use en_core_auth::testing::{LocalIdp, Operation};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");

fn idp() -> LocalIdp {
    let idp = LocalIdp::builder()
        .client("my-cli", None)
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    idp.login_as("alice");
    idp
}

struct Cache(PathBuf);

impl Cache {
    fn new() -> Cache {
        static N: AtomicU64 = AtomicU64::new(0);
        Cache(std::env::temp_dir().join(format!(
            "en-core-auth-ssh-login-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the identity provider sends the browser after the login: the URL the person's
/// browser ends on (and, on their own machine, fails to load).
fn redirect_of(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .build()
        .into();
    let reply = agent.get(url).call().unwrap();
    reply.headers()["location"].to_str().unwrap().to_owned()
}

/// `login --no-browser` on a real terminal.
struct OnATerminal {
    child: Child,
    received: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl OnATerminal {
    fn start(idp: &LocalIdp, cache: &Path) -> Option<OnATerminal> {
        if Command::new("script").arg("--version").output().is_err() {
            assert!(
                std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() != Ok("1"),
                "`script` (util-linux) is needed to give the CLI a terminal"
            );
            eprintln!("skipped: no `script` to give the CLI a terminal");
            return None;
        }
        let command = format!(
            "{BIN} login --no-browser --issuer {} --client-id my-cli --cache-dir {}; echo \"exit=$?\"",
            idp.issuer(),
            cache.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_clear()
            .env("SHELL", "/bin/sh")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (sender, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Some(OnATerminal {
            child,
            received,
            seen: Vec::new(),
        })
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    fn wait_for(&mut self, text: &str) {
        while !self.shown().contains(text) {
            let chunk = self
                .received
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {text:?}: {}", self.shown()));
            self.seen.extend(chunk);
        }
    }

    /// The login URL shown, once the prompt for the pasted URL is there.
    fn login_url(&mut self, idp: &LocalIdp) -> String {
        self.wait_for("paste here");
        self.shown()
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(&idp.authorization_url()))
            .unwrap_or_else(|| panic!("no login URL: {}", self.shown()))
            .to_owned()
    }

    /// Types a line and waits for the end of the run: what the shell's `echo` said.
    fn paste(mut self, line: &str) -> String {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
        self.wait_for("exit=");
        let _ = self.child.wait();
        drop(stdin);
        self.shown()
    }
}

#[test]
fn the_pasted_redirect_url_completes_the_login() {
    let idp = idp();
    let cache = Cache::new();
    let Some(mut terminal) = OnATerminal::start(&idp, &cache.0) else {
        return;
    };
    let url = terminal.login_url(&idp);
    let ended_on = redirect_of(&url);
    let shown = terminal.paste(&ended_on);
    assert!(shown.contains("exit=0"), "{shown}");
    assert!(shown.contains("Logged in as alice."), "{shown}");
    assert_eq!(idp.requests(Operation::Token), 1);
    // The login is stored: `token` uses it.
    let token = Command::new(BIN)
        .args(["token", "--issuer", &idp.issuer(), "--client-id", "my-cli"])
        .arg("--cache-dir")
        .arg(&cache.0)
        .env_clear()
        .output()
        .unwrap();
    assert!(idp.verify_access_token(String::from_utf8_lossy(&token.stdout).trim()));
}

#[test]
fn a_pasted_url_with_another_state_is_refused_and_its_code_never_redeemed() {
    let idp = idp();
    let cache = Cache::new();
    let Some(mut terminal) = OnATerminal::start(&idp, &cache.0) else {
        return;
    };
    let url = terminal.login_url(&idp);
    let ended_on = redirect_of(&url);
    let (before, after) = ended_on.split_once("state=").unwrap();
    let rest = after
        .split_once('&')
        .map_or(String::new(), |(_, rest)| format!("&{rest}"));
    let forged = format!("{before}state=f0rged{rest}");
    let shown = terminal.paste(&forged);
    assert!(!shown.contains("exit=0"), "{shown}");
    assert!(shown.contains("state this login did not send"), "{shown}");
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn an_empty_line_or_garbage_ends_the_login() {
    let idp = idp();
    for (line, expect) in [("", "nothing was pasted"), ("\u{1b}[31mred", "refused")] {
        let cache = Cache::new();
        let Some(mut terminal) = OnATerminal::start(&idp, &cache.0) else {
            return;
        };
        terminal.login_url(&idp);
        let shown = terminal.paste(line);
        assert!(shown.contains("exit=3"), "{shown}");
        assert!(shown.contains(expect), "{shown}");
    }
    assert_eq!(idp.requests(Operation::Token), 0);
}

#[test]
fn a_forwarded_callback_port_completes_the_login_without_a_paste() {
    let idp = idp();
    let cache = Cache::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["login", "--no-browser", "--issuer", &idp.issuer()])
        .args(["--client-id", "my-cli"])
        .arg("--cache-dir")
        .arg(&cache.0)
        .env_clear()
        .env("EN_CORE_AUTH_CALLBACK_PORT", port.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().starts_with(&idp.authorization_url()) {
            let ended_on = redirect_of(line.trim());
            assert!(
                ended_on.starts_with(&format!("http://127.0.0.1:{port}/?")),
                "{ended_on}"
            );
            // What `ssh -L PORT:127.0.0.1:PORT` carries to the listener.
            let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
            assert_eq!(agent.get(&ended_on).call().unwrap().status(), 200);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains("Logged in as alice."), "{seen}");

    // A port in use: a configuration error at once, not a five-minute wait.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN)
        .args(["login", "--no-browser", "--issuer", &idp.issuer()])
        .args(["--client-id", "my-cli", "--callback-port", &port])
        .arg("--cache-dir")
        .arg(&cache.0)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
