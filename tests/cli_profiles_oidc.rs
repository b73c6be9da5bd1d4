//! Profiles against oidc-provider (npm, OpenID Certified; tests/peers/oidc): two people log
//! in with `en-core-auth login` at one issuer and client, side by side, each with the
//! provider's own tokens for them; `status` lists both; logging one out (revocation at the
//! provider) leaves the other logged in. (The provider issues its API access tokens as
//! JWTs, which it cannot revoke; `cli_kit.rs` shows the revocation at the server with
//! LocalIdp.)

#[path = "support/oidc_peer.rs"]
#[allow(dead_code)] // the client credentials helpers are for the other peer tests
mod peer;
#[path = "support/oidc_person.rs"]
#[allow(dead_code)]
mod person;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use person::Person;

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");

struct Cache(PathBuf);

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cli(issuer: &str, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--issuer", issuer, "--client-id", "native-cli"])
        .arg("--cache-dir")
        .arg(cache)
        .env_clear()
        .stdin(Stdio::null());
    command
}

fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `login --no-browser --profile PROFILE`, the test being `who` at the browser.
fn log_in(issuer: &str, cache: &Path, who: &str, profile: &str) {
    let mut child = cli(
        issuer,
        cache,
        &["login", "--no-browser", "--profile", profile],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let url = line.trim();
        if url.starts_with(issuer) && url.contains("redirect_uri=") {
            let redirect = url
                .split_once("redirect_uri=")
                .and_then(|(_, rest)| rest.split('&').next())
                .unwrap()
                .replace("%3A", ":")
                .replace("%2F", "/");
            let status =
                Person::new(issuer).log_in(url, &redirect, &[("login", who), ("password", "any")]);
            assert_eq!(status, 200);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains(&format!("Logged in as {who}.")), "{seen}");
}

/// The `sub` of a JWT access token, as the provider issued it.
fn subject(jwt: &str) -> String {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT access token");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

#[test]
fn two_accounts_at_one_issuer_and_client_then_one_logs_out() {
    let Some(peer) = peer::start() else { return };
    let issuer = peer.issuer.clone();
    let cache = Cache(
        std::env::temp_dir().join(format!("en-core-auth-profiles-oidc-{}", std::process::id())),
    );
    log_in(&issuer, &cache.0, "alice", "default");
    log_in(&issuer, &cache.0, "bob", "work");

    let alice = stdout_of(&mut cli(&issuer, &cache.0, &["token"]));
    let bob = stdout_of(&mut cli(&issuer, &cache.0, &["token", "--profile", "work"]));
    assert_eq!(subject(&alice), "alice");
    assert_eq!(subject(&bob), "bob");

    let listed: serde_json::Value = serde_json::from_str(&stdout_of(&mut cli(
        &issuer,
        &cache.0,
        &["status", "--json"],
    )))
    .unwrap();
    let who: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["profile"].as_str().unwrap(), p["user"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [("default", "alice"), ("work", "bob")]);

    // The provider accepts the revocation (a refused one would fail the logout).
    stdout_of(&mut cli(
        &issuer,
        &cache.0,
        &["logout", "--profile", "work"],
    ));
    assert_eq!(stdout_of(&mut cli(&issuer, &cache.0, &["token"])), alice);
    let out = cli(&issuer, &cache.0, &["status", "--profile", "work"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
