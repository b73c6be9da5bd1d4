//! Proof against AWS's own client: amazon-cognito-identity-js (the Cognito client of
//! Amplify JS, which implements device tracking) logs in to a `LocalIdp`, registers a device
//! with its own verifier and proves it; devices cross over between it and en-core-auth both
//! ways. Needs node and `tests/peers/amplify` installed (`npm ci`, done by `.ci/test`);
//! skipped without them unless `EN_CORE_AUTH_REQUIRE_PEERS=1`.

#![cfg(feature = "testing")]

use std::path::Path;
use std::process::Command;

use en_core_auth::srp::{Device, SrpAuthorizer};
use en_core_auth::testing::{DeviceTracking, LocalIdp, Operation};
use en_core_auth::{Authorizer, ClientInfo};
use serde_json::Value;

const POOL: &str = "us-east-1_Amplify";

fn peer_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/amplify")
}

/// The node to run the peer with, or `None` (after saying so) when it is not set up.
fn node() -> Option<String> {
    let installed = peer_dir()
        .join("node_modules/amazon-cognito-identity-js")
        .exists();
    let node = std::env::var("EN_CORE_AUTH_NODE").unwrap_or_else(|_| "node".to_owned());
    let runs = Command::new(&node).arg("--version").output().is_ok();
    if installed && runs {
        return Some(node);
    }
    if std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("EN_CORE_AUTH_REQUIRE_PEERS=1 but tests/peers/amplify is not installed");
    }
    eprintln!("skipped: run .ci/test to set up peers");
    None
}

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .cognito_issuer(true)
        .pool_id(POOL)
        .client("amplify-client", None)
        .user("alice", "Passw0rd!")
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap()
}

fn amplify(node: &str, idp: &LocalIdp, extra: &[String]) -> Value {
    let output = Command::new(node)
        .arg(peer_dir().join("login.mjs"))
        .args([
            "--endpoint",
            &format!("{}/", idp.url()),
            "--pool-id",
            POOL,
            "--client-id",
            "amplify-client",
            "--username",
            "alice",
            "--password",
            "Passw0rd!",
        ])
        .args(extra)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "amplify peer failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn device_args(device: &Device) -> Vec<String> {
    // `--name=value`: a group key starts with '-'.
    vec![
        format!("--device-key={}", device.device_key()),
        format!("--device-group-key={}", device.device_group_key()),
        format!("--device-password={}", device.device_password()),
    ]
}

/// Amplify logs in as `device`: DEVICE_SRP_AUTH and DEVICE_PASSWORD_VERIFIER answered by it.
fn amplify_device_login(node: &str, idp: &LocalIdp, device: &Device) {
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let reply = amplify(node, idp, &device_args(device));
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(idp.verify_access_token(reply["access_token"].as_str().unwrap()));
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
}

/// Amplify registers (ConfirmDevice with its own verifier, then remembers it).
fn amplify_registers_a_device(node: &str, idp: &LocalIdp) -> Device {
    let reply = amplify(node, idp, &["--remember".to_owned()]);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["user_confirmation_necessary"], true, "{reply}");
    let field = |name: &str| reply["device"][name].as_str().unwrap().to_owned();
    Device::new(field("key"), field("group_key"), field("password"))
}

#[test]
fn amplify_registers_a_device_and_logs_in_with_its_proof() {
    let Some(node) = node() else { return };
    let idp = idp();
    let device = amplify_registers_a_device(&node, &idp);
    assert_eq!(idp.requests(Operation::ConfirmDevice), 1);
    assert_eq!(idp.requests(Operation::UpdateDeviceStatus), 1);
    amplify_device_login(&node, &idp, &device);
}

#[test]
fn devices_cross_over_between_amplify_and_en_core_auth() {
    let Some(node) = node() else { return };
    let idp = idp();
    let login = || {
        SrpAuthorizer::new(
            ClientInfo::new("amplify-client", ""),
            POOL,
            "alice",
            "Passw0rd!",
        )
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
    };
    // Our verifier, Amplify's proof.
    let mut ours = login().remember_device(true);
    ours.authorize().unwrap();
    amplify_device_login(&node, &idp, &ours.device().unwrap());

    // Amplify's verifier, our proof.
    let theirs = amplify_registers_a_device(&node, &idp);
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let token = login().with_device(theirs).authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
}
