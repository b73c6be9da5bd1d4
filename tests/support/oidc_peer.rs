//! Starts `oidc-provider` (tests/peers/oidc/server.mjs) on loopback for one test, and
//! kills it when the test ends, panics included.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running oidc-provider; dropping it kills the process.
pub struct OidcPeer {
    child: Child,
    /// The issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    /// A refresh token for `refresh-client`, made by the server at start-up.
    pub refresh_token: String,
    /// The PKCS#8 PEM private key of `jwt-client` (ES256), made at start-up.
    pub jwt_client_key: String,
}

impl OidcPeer {
    /// The token endpoint (oidc-provider's default route).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client secrets configured in server.mjs.
pub const BASIC_CLIENT: (&str, &str) = ("basic-client", "basic:se+cret%1");
pub const POST_CLIENT: (&str, &str) = ("post-client", "post:se+cret%2");
pub const REFRESH_CLIENT: (&str, &str) = ("refresh-client", "refresh:se+cret%3");

/// Starts the peer, or returns `None` (after printing why) when it is not installed and
/// `EN_CORE_AUTH_REQUIRE_PEERS=1` is not set.
pub fn start() -> Option<OidcPeer> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc");
    let required = std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    if !dir.join("node_modules/oidc-provider").is_dir() {
        assert!(
            !required,
            "oidc-provider is not installed: run `npm ci` in {}",
            dir.display()
        );
        println!("skipped: run .ci/test to set up peers (npm ci in tests/peers/oidc)");
        return None;
    }
    let node = std::env::var("EN_CORE_AUTH_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut child = match Command::new(&node)
        .arg("server.mjs")
        .arg("0")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            assert!(!required, "cannot run `{node}`: {err}");
            println!("skipped: cannot run `{node}` ({err}); run .ci/test to set up peers");
            return None;
        }
    };
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // Guard first, so that a failed start still kills the process.
    let mut peer = OidcPeer {
        child,
        issuer: String::new(),
        refresh_token: String::new(),
        jwt_client_key: String::new(),
    };
    let next_line = || {
        lines.recv_timeout(Duration::from_secs(30)).expect(
            "oidc-provider did not start within 30 s; try `node server.mjs 0` in tests/peers/oidc",
        )
    };
    let first = next_line();
    peer.issuer = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from server.mjs: {first}"))
        .to_owned();
    let second = next_line();
    peer.refresh_token = second
        .strip_prefix("refresh_token ")
        .unwrap_or_else(|| panic!("unexpected second line from server.mjs: {second}"))
        .to_owned();
    let third = next_line();
    let key = third
        .strip_prefix("private_key ")
        .unwrap_or_else(|| panic!("unexpected third line from server.mjs: {third}"));
    let pem = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).unwrap();
    peer.jwt_client_key = String::from_utf8(pem).unwrap();
    Some(peer)
}

/// The `cnf.jkt` of a JWT access token (read, not verified: the resource checks it).
pub fn jkt(access_token: &str) -> String {
    let claims = access_token.split('.').nth(1).unwrap();
    let claims =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    claims["cnf"]["jkt"].as_str().unwrap().to_owned()
}
