//! Starts a small node server from tests/peers/<name>/server.mjs on loopback for one test,
//! and kills it when the test ends, panics included. The server prints
//! `listening on http://127.0.0.1:PORT` as its first line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running node peer; dropping it kills the process.
pub struct NodePeer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The lines it printed after the first.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodePeer {
    /// A JSON GET (the peers' `/seen` records).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let text = ureq::get(&format!("{}{path}", self.base))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// Starts `tests/peers/<name>/server.mjs` with `args`, or returns `None` (after printing
/// why) when `package` is not installed there and `EN_CORE_AUTH_REQUIRE_PEERS=1` is not
/// set; with it set, a missing peer fails the test.
pub fn start(name: &str, package: &str, args: &[&str], env: &[(&str, &str)]) -> Option<NodePeer> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name);
    let required = std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    if !dir.join("node_modules").join(package).is_dir() {
        assert!(
            !required,
            "{package} is not installed: run `npm ci` in {}",
            dir.display()
        );
        println!("skipped: run .ci/test to set up peers (npm ci in tests/peers/{name})");
        return None;
    }
    let node = std::env::var("EN_CORE_AUTH_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut command = Command::new(&node);
    command
        .arg("server.mjs")
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = match command.spawn() {
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
    let mut peer = NodePeer {
        child,
        base: String::new(),
        lines,
    };
    let first = peer
        .lines
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("tests/peers/{name}/server.mjs did not start within 60 s"));
    peer.base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from server.mjs: {first}"))
        .to_owned();
    Some(peer)
}
