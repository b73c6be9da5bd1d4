//! The command-line tool and Cognito challenges (issue 11): with no terminal a challenge is
//! exit status 6 naming it; `--remember-device` keeps the device beside the token and the
//! next login proves it.

#![cfg(all(feature = "cli", feature = "testing"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use en_core_auth::testing::{DeviceTracking, LocalIdp, Operation, User};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");

fn cache_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cli(idp: &LocalIdp, cache: &Path, user: &str, password: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("EN_CORE_AUTH_USER_POOL_ID", idp.pool_id())
        .env("EN_CORE_AUTH_ENDPOINT", idp.url())
        .env("EN_CORE_AUTH_CLIENT_ID", "cli-client")
        .env("EN_CORE_AUTH_USERNAME", user)
        .env("EN_CORE_AUTH_PASSWORD", password)
        .env("EN_CORE_AUTH_CACHE_DIR", cache)
        .stdin(Stdio::null());
    command
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_challenge_without_a_terminal_is_exit_status_6_naming_it() {
    let idp = LocalIdp::builder()
        .cognito_issuer(true)
        .client("cli-client", None)
        .user_with(User::new("carol", "Car0l!").totp_secret(b"12345678901234567890".to_vec()))
        .start()
        .unwrap();
    let cache = cache_dir("no-tty");
    let output = cli(&idp, &cache, "carol", "Car0l!", &["token"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SOFTWARE_TOKEN_MFA") && stderr.contains("terminal"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    let _ = std::fs::remove_dir_all(cache);
}

#[test]
fn remember_device_keeps_the_device_beside_the_token_and_proves_it_next_time() {
    let idp = LocalIdp::builder()
        .cognito_issuer(true)
        .client("cli-client", None)
        .user("alice", "Passw0rd!")
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap();
    let cache = cache_dir("remember");
    let first = cli(
        &idp,
        &cache,
        "alice",
        "Passw0rd!",
        &["--remember-device", "token"],
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    assert_eq!(idp.requests(Operation::UpdateDeviceStatus), 1);
    let devices = files_ending(&cache, ".device.json");
    assert_eq!(devices.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&devices[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The device password is in that file only, not in the token cache.
    let device_file = std::fs::read_to_string(&devices[0]).unwrap();
    assert!(device_file.contains("device_password"));

    // The token cache gone (a new machine would have none): the next run logs in with the
    // device proof and registers nothing new.
    for token_file in files_ending(&cache, ".json") {
        if !token_file.to_string_lossy().ends_with(".device.json") {
            std::fs::remove_file(token_file).unwrap();
        }
    }
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let second = cli(
        &idp,
        &cache,
        "alice",
        "Passw0rd!",
        &["--remember-device", "token"],
    )
    .output()
    .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    let _ = std::fs::remove_dir_all(cache);
}

/// The CLI run by `sh -c script` on a real terminal (a pty from util-linux `script`), as bob
/// whose password must change; `None` where `script` is missing.
struct OnATerminal {
    child: std::process::Child,
    received: std::sync::mpsc::Receiver<Vec<u8>>,
    reader: std::thread::JoinHandle<()>,
    seen: Vec<u8>,
}

impl OnATerminal {
    fn start(idp: &LocalIdp, cache: &Path, script: &str) -> Option<OnATerminal> {
        use std::io::Read;
        if Command::new("script").arg("--version").output().is_err() {
            // `.ci/test` installs it; a skip there would leave these promises untested.
            assert!(
                std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() != Ok("1"),
                "EN_CORE_AUTH_REQUIRE_PEERS=1 but `script` (util-linux; Debian: bsdutils) is \
                 missing: the terminal tests cannot run"
            );
            eprintln!("skipped: no `script` to give the CLI a terminal");
            return None;
        }
        let mut child = Command::new("script")
            .args(["-qec", script, "/dev/null"])
            .env_clear()
            .env("SHELL", "/bin/sh")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EN_CORE_AUTH_USER_POOL_ID", idp.pool_id())
            .env("EN_CORE_AUTH_ENDPOINT", idp.url())
            .env("EN_CORE_AUTH_CLIENT_ID", "cli-client")
            .env("EN_CORE_AUTH_USERNAME", "bob")
            .env("EN_CORE_AUTH_PASSWORD", "0ld-Passw0rd!")
            .env("EN_CORE_AUTH_CACHE_DIR", cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (sender, received) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
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
            reader,
            seen: Vec::new(),
        })
    }

    /// Waits for `text` on the terminal.
    fn wait_for(&mut self, text: &str) {
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let chunk = self
                .received
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {text:?}: {}", String::from_utf8_lossy(&self.seen)));
            self.seen.extend(chunk);
        }
    }

    /// Types `keys`, then waits for the end: the exit status and everything shown.
    fn type_and_finish(mut self, keys: &[u8]) -> (std::process::ExitStatus, String) {
        use std::io::Write;
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(keys).unwrap();
        let status = self.child.wait().unwrap();
        drop(stdin);
        self.reader.join().unwrap();
        self.seen.extend(self.received.try_iter().flatten());
        (status, String::from_utf8_lossy(&self.seen).into_owned())
    }
}

fn bob_must_change_password() -> LocalIdp {
    LocalIdp::builder()
        .cognito_issuer(true)
        .client("cli-client", None)
        .user_with(
            User::new("bob", "0ld-Passw0rd!")
                .status(en_core_auth::testing::UserStatus::ForceChangePassword),
        )
        .start()
        .unwrap()
}

/// On a real terminal, the new password is asked on the terminal, read without echo, and
/// the login goes through. Skipped where `script` is missing.
#[test]
fn on_a_terminal_the_new_password_is_asked_without_echo() {
    let idp = bob_must_change_password();
    let cache = cache_dir("tty");
    let Some(mut terminal) = OnATerminal::start(&idp, &cache, &format!("{BIN} token")) else {
        return;
    };
    // Wait for the prompt (so the terminal's echo is already off), then type, correcting a
    // typo with Backspace.
    terminal.wait_for("New password: ");
    let (status, shown) = terminal.type_and_finish(b"N3w-Secrex\x7ft!\n");
    assert!(status.success(), "{shown}");
    assert!(
        !shown.contains("N3w-Secre"),
        "the password was echoed: {shown}"
    );
    assert!(shown.contains("eyJ"), "no token printed: {shown}");
    assert!(
        shown.contains("password was changed") && shown.contains("EN_CORE_AUTH_PASSWORD"),
        "the user is not told to update the stored password: {shown}"
    );
    // The pool took the new password.
    let _ = std::fs::remove_dir_all(&cache);
    let again = cli(&idp, &cache, "bob", "N3w-Secret!", &["token"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let _ = std::fs::remove_dir_all(cache);
}

/// Ctrl-C at a hidden prompt ends the CLI with status 130 and leaves the terminal as it
/// was: echo, line editing and signals back on (`stty -a` run on the same terminal after
/// it). Nothing reaches Cognito's RespondToAuthChallenge.
#[test]
fn ctrl_c_at_a_hidden_prompt_restores_the_terminal_and_exits_130() {
    let idp = bob_must_change_password();
    let cache = cache_dir("ctrl-c");
    let script = format!("{BIN} token; echo \"exit=$?\"; stty -a");
    let Some(mut terminal) = OnATerminal::start(&idp, &cache, &script) else {
        return;
    };
    terminal.wait_for("New password: ");
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let (status, shown) = terminal.type_and_finish(b"half-typ\x03");
    assert!(status.success(), "{shown}");
    assert!(shown.contains("exit=130"), "{shown}");
    assert!(!shown.contains("half-typ"), "echoed: {shown}");
    let settings = shown
        .split("exit=130")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    for on in ["echo", "icanon", "isig"] {
        assert!(settings.contains(&on), "{on} not restored: {shown}");
        assert!(!settings.contains(&format!("-{on}").as_str()), "{shown}");
    }
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), responds);
    let _ = std::fs::remove_dir_all(cache);
}
