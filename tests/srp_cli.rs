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
