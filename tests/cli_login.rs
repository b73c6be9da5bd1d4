//! `en-core-auth login`, `logout`, and `token` with the stored login, against the local
//! identity provider: the test is the person, following the printed URL (`--no-browser`)
//! or approving the printed device code.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use en_core_auth::testing::{LocalIdp, Operation};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");

struct Setup {
    idp: LocalIdp,
    cache: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

fn setup() -> Setup {
    static N: AtomicU64 = AtomicU64::new(0);
    let idp = LocalIdp::builder()
        .client("my-cli", None)
        .user("alice", "Passw0rd!")
        .start()
        .unwrap();
    idp.login_as("alice");
    idp.device_timing(Duration::from_secs(1), Duration::from_secs(60));
    let cache = std::env::temp_dir().join(format!(
        "en-core-auth-cli-login-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    Setup { idp, cache }
}

fn command(setup: &Setup, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--issuer", &setup.idp.issuer(), "--client-id", "my-cli"])
        .arg("--cache-dir")
        .arg(&setup.cache)
        .env_clear()
        .stdin(Stdio::null());
    command
}

/// Runs `args` to completion: (status, stdout, stderr).
fn run(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = command(setup, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `login …` and acts on the first stderr line that `act` recognises, as the
/// person would; returns the exit status and stderr.
fn login(setup: &Setup, args: &[&str], act: impl Fn(&str) -> bool) -> (i32, String) {
    let mut child = command(setup, args).stderr(Stdio::piped()).spawn().unwrap();
    let mut seen = String::new();
    let mut acted = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if !acted {
            acted = act(&line);
        }
    }
    (child.wait().unwrap().code().unwrap_or(-1), seen)
}

/// The person's browser: the authorization endpoint, then the redirect to the CLI.
fn follow(url: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .build()
        .into();
    let reply = agent.get(url).call().unwrap();
    let location = reply.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(agent.get(&location).call().unwrap().status(), 200);
}

#[test]
fn browser_login_then_token_from_the_stored_login_then_logout() {
    let setup = setup();
    let (status, stderr) = login(&setup, &["login", "--no-browser"], |line| {
        let url = line.trim();
        if url.starts_with(&setup.idp.authorization_url()) {
            follow(url);
            true
        } else {
            false
        }
    });
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("Logged in as alice."), "{stderr}");
    assert_eq!(setup.idp.requests(Operation::Token), 1);

    // `token` uses the stored login: no browser, no token request.
    let (status, token, stderr) = run(&setup, &["token"]);
    assert_eq!(status, 0, "{stderr}");
    assert!(setup.idp.verify_access_token(token.trim()));
    assert_eq!(setup.idp.requests(Operation::Token), 1);

    // Without --profile: every profile that holds a login, as an array.
    let (status, out, stderr) = run(&setup, &["status", "--json"]);
    assert_eq!(status, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    let json = &json[0];
    assert_eq!(json["profile"], "default");
    assert_eq!(json["kind"], "login");
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["user"], "alice");
    assert_eq!(json["token"]["refresh_token"], true);
    assert_eq!(
        json["token"]["scopes"],
        serde_json::json!(["openid", "offline_access"])
    );
    // RFC 3339, as for every other kind of credentials.
    assert!(
        json["token"]["expires_at"].as_str().unwrap().ends_with('Z'),
        "{json}"
    );
    let (status, out, _) = run(&setup, &["status"]);
    assert_eq!(status, 0);
    assert!(out.contains("user: alice"), "{out}");
    assert!(out.contains("refresh token: yes"), "{out}");
    // Status reads the cache: no request at all.
    assert_eq!(setup.idp.requests(Operation::Token), 1);

    let (status, _, stderr) = run(&setup, &["logout"]);
    assert_eq!(status, 0, "{stderr}");
    let (status, out, _) = run(&setup, &["status", "--json"]);
    assert_eq!(status, 3);
    assert_eq!(out.trim(), "[]");
    let (status, out, _) = run(&setup, &["status", "--json", "--profile", "default"]);
    assert_eq!(status, 3);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["logged_in"], false);
    assert!(json["token"].is_null());
    assert_eq!(setup.idp.requests(Operation::Revocation), 2);
    assert!(!setup.idp.verify_access_token(token.trim()));

    // Logged out: `token` says to log in, and opens nothing.
    let (status, _, stderr) = run(&setup, &["token"]);
    assert_eq!(status, 3, "{stderr}");
    assert!(stderr.contains("en-core-auth login"), "{stderr}");
}

#[test]
fn device_login() {
    let setup = setup();
    let (status, stderr) = login(&setup, &["login", "--device"], |line| {
        match line.rsplit_once("enter the code ") {
            Some((_, code)) => {
                assert!(setup.idp.approve_device_code(code.trim(), "alice"));
                true
            }
            None => false,
        }
    });
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("Logged in as alice."), "{stderr}");
    assert_eq!(setup.idp.requests(Operation::DeviceAuthorization), 1);
}

#[test]
fn a_denied_login_exits_with_status_3_and_stores_nothing() {
    let setup = setup();
    setup.idp.deny_logins();
    let (status, stderr) = login(&setup, &["login", "--no-browser"], |line| {
        let url = line.trim();
        if url.starts_with(&setup.idp.authorization_url()) {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .build()
                .into();
            let location = agent.get(url).call().unwrap().headers()["location"]
                .to_str()
                .unwrap()
                .to_owned();
            let _ = agent.get(&location).call();
            true
        } else {
            false
        }
    });
    assert_eq!(status, 3, "{stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    let (_, _, stderr) = run(&setup, &["logout"]);
    assert!(stderr.contains("Not logged in."), "{stderr}");
}

#[test]
fn login_without_an_issuer_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["login", "--client-id", "x"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--issuer"));
}
