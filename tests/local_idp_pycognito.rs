//! Proof against a client nobody here wrote: Python's pycognito (its `AWSSRP`, over boto3)
//! logs in to a `LocalIdp`. Needs `EN_CORE_AUTH_PYTHON`, a Python with
//! `tests/peers/requirements.txt` installed; skipped without it unless
//! `EN_CORE_AUTH_REQUIRE_PEERS=1`.

#![cfg(feature = "testing")]

use std::path::Path;
use std::process::Command;

use en_core_auth::srp::{Device, SrpAuthorizer};
use en_core_auth::testing::{DeviceTracking, LocalIdp, Operation, User};
use en_core_auth::{Authorizer, ClientInfo};
use serde_json::Value;

/// The peer Python, or `None` (after saying so) when peers are not set up.
fn python() -> Option<String> {
    match std::env::var("EN_CORE_AUTH_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("EN_CORE_AUTH_REQUIRE_PEERS=1 but EN_CORE_AUTH_PYTHON is not set")
        }
        _ => {
            eprintln!("skipped: run .ci/test to set up peers");
            None
        }
    }
}

fn idp() -> LocalIdp {
    builder().start().unwrap()
}

fn builder() -> en_core_auth::testing::LocalIdpBuilder {
    LocalIdp::builder()
        .cognito_issuer(true)
        .pool_id("us-east-1_PyCognito")
        .client("public", None)
        .client("confidential", Some("py-secret"))
        .user("alice", "Passw0rd!")
        .user_with(User::new("carol", "C4rol!").email("carol@example.com"))
}

/// Runs `tests/peers/pycognito_login.py` and returns its JSON line.
fn login(python: &str, idp: &LocalIdp, client: &str, user: &str, password: &str) -> Value {
    run_script(python, idp, client, user, password, &[])
}

fn run_script(
    python: &str,
    idp: &LocalIdp,
    client: &str,
    user: &str,
    password: &str,
    extra: &[&str],
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pycognito_login.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--endpoint", &idp.url(), "--pool-id", idp.pool_id()])
        .args([
            "--client-id",
            client,
            "--username",
            user,
            "--password",
            password,
        ])
        .arg("--refresh")
        .args(extra)
        // Only loopback: no proxy, no credential or metadata look-ups.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "local-dummy")
        .env("AWS_SECRET_ACCESS_KEY", "local-dummy");
    if client == "confidential" {
        command.args(["--client-secret", "py-secret"]);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pycognito failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn assert_logged_in_and_refreshed(idp: &LocalIdp, reply: &Value) {
    assert_eq!(reply["ok"], true, "{reply}");
    for token in ["access_token", "id_token", "refreshed_access_token"] {
        assert!(
            idp.verify_access_token(reply[token].as_str().unwrap()),
            "{token}"
        );
    }
    assert_eq!(reply["refresh_returned_refresh_token"], false);
}

#[test]
fn pycognito_logs_in_with_the_right_password_and_refreshes() {
    let Some(python) = python() else { return };
    let idp = idp();
    for client in ["public", "confidential"] {
        let reply = login(&python, &idp, client, "alice", "Passw0rd!");
        assert_logged_in_and_refreshed(&idp, &reply);
    }
    // An e-mail alias: pycognito takes the real USERNAME from the challenge for SECRET_HASH.
    let reply = login(&python, &idp, "confidential", "carol@example.com", "C4rol!");
    assert_logged_in_and_refreshed(&idp, &reply);
}

#[test]
fn pycognito_with_a_wrong_password_gets_not_authorized() {
    let Some(python) = python() else { return };
    let idp = idp();
    for client in ["public", "confidential"] {
        let reply = login(&python, &idp, client, "alice", "wrong");
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"], "NotAuthorizedException", "{reply}");
    }
}

#[test]
fn pycognitos_cognito_class_verifies_our_tokens_with_a_cognito_style_issuer() {
    let Some(python) = python() else { return };
    let idp = builder().cognito_issuer(true).start().unwrap();
    for client in ["public", "confidential"] {
        let reply = run_script(
            &python,
            &idp,
            client,
            "alice",
            "Passw0rd!",
            &["--cognito-class"],
        );
        assert_logged_in_and_refreshed(&idp, &reply);
    }
    let reply = run_script(
        &python,
        &idp,
        "public",
        "alice",
        "wrong",
        &["--cognito-class"],
    );
    assert_eq!(reply["error"], "NotAuthorizedException", "{reply}");
}

// ------------------------------------------------------------------ remembered devices

fn device_idp() -> LocalIdp {
    builder()
        .device_tracking(DeviceTracking::UserOptIn)
        .start()
        .unwrap()
}

fn device_args(device: &Device) -> Vec<String> {
    // `--name=value`: a group key starts with '-', which argparse would take for an option.
    vec![
        format!("--device-key={}", device.device_key()),
        format!("--device-group-key={}", device.device_group_key()),
        format!("--device-password={}", device.device_password()),
    ]
}

/// pycognito logs in as `device`: the pool asks for the device proof, pycognito's answers
/// check out, and the device-bound refresh works with the DEVICE_KEY.
fn pycognito_device_login(python: &str, idp: &LocalIdp, device: &Device) {
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let args = device_args(device);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reply = run_script(python, idp, "public", "alice", "Passw0rd!", &args);
    assert_logged_in_and_refreshed(idp, &reply);
    assert_eq!(reply["new_device"], false, "{reply}");
    // PASSWORD_VERIFIER, DEVICE_SRP_AUTH, DEVICE_PASSWORD_VERIFIER.
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
}

/// Registers a device with pycognito's own verifier (generate_hash_device).
fn pycognito_registers_a_device(python: &str, idp: &LocalIdp) -> Device {
    let reply = run_script(
        python,
        idp,
        "public",
        "alice",
        "Passw0rd!",
        &["--register-device"],
    );
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["new_device"], true, "{reply}");
    let field = |name: &str| reply["device"][name].as_str().unwrap().to_owned();
    Device::new(field("key"), field("group_key"), field("password"))
}

#[test]
fn pycognito_registers_a_device_and_logs_in_with_its_proof() {
    let Some(python) = python() else { return };
    let idp = device_idp();
    let device = pycognito_registers_a_device(&python, &idp);
    assert_eq!(idp.requests(Operation::UpdateDeviceStatus), 1);
    pycognito_device_login(&python, &idp, &device);
}

#[test]
fn a_device_registered_by_en_core_auth_logs_in_with_pycognito_and_back() {
    let Some(python) = python() else { return };
    let idp = device_idp();
    let login = || {
        SrpAuthorizer::new(
            ClientInfo::new("public", ""),
            idp.pool_id(),
            "alice",
            "Passw0rd!",
        )
        .unwrap()
        .with_endpoint(idp.url())
        .unwrap()
    };
    // Our verifier, pycognito's proof.
    let mut ours = login().remember_device(true);
    ours.authorize().unwrap();
    let device = ours.device().unwrap();
    pycognito_device_login(&python, &idp, &device);

    // pycognito's verifier, our proof.
    let theirs = pycognito_registers_a_device(&python, &idp);
    let responds = idp.requests(Operation::RespondToAuthChallenge);
    let token = login().with_device(theirs).authorize().unwrap();
    assert!(idp.verify_access_token(token.access_token()));
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        responds + 3
    );
}
