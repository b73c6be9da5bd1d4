//! The main job, offline: an embedded identity provider, two ureq agents (OAuth2 client
//! credentials and Cognito SRP) calling its protected API with 4-second tokens.
//!
//! ```text
//! cargo run --features testing --example demo
//! ```
//!
//! It shows the first login, reuse, a proactive refresh, a rejected token recovered with
//! one resend, a wrong password refused with a clear error, and a person's device login
//! (RFC 8628) approved from "another device".

use std::sync::Arc;
use std::time::{Duration, Instant};

use en_core_auth::oauth2::{ClientCredentials, DeviceCode};
use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, ClientInfo};

const POOL: &str = "us-east-1_Demo";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let log = |message: String| println!("[{:>5.2}s] {message}", started.elapsed().as_secs_f64());

    // Shared with the "phone" that approves the device login.
    let idp = Arc::new(
        LocalIdp::builder()
            .pool_id(POOL)
            .client("demo-service", Some("demo-service-secret"))
            .client("demo-app", None)
            .user("alice", "Passw0rd!")
            .token_ttl(Duration::from_secs(4))
            .start()?,
    );
    log(format!(
        "local identity provider on {} (pool {POOL}, 4 s tokens)",
        idp.url()
    ));
    let api = idp.protected_url();

    println!("\n== OAuth2 client credentials");
    let client = ClientInfo::new("demo-service", "demo-service-secret").with_api_key("demo-key");
    let auth = AuthMiddleware::new(ClientCredentials::new(client, idp.token_url())?);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());
    let call = |what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let status = agent.get(&api).call()?.status();
        log(format!(
            "{what:<36} -> {status}  (token requests: {}, 401s from the API: {})",
            idp.requests(Operation::Token),
            idp.rejected_protected_requests()
        ));
        Ok(())
    };
    call("first request: logs in")?;
    for _ in 0..3 {
        call("next request: reuses the token")?;
    }
    // The advisory window of a 4 s token is its last second: the first caller in it
    // refreshes while the token is still valid, and no request ever waits for an expiry.
    std::thread::sleep(Duration::from_millis(3200));
    call("in the advisory window: refreshes")?;
    call("after the refresh: reuses it")?;
    idp.expire_all_tokens();
    log("the identity provider revokes every token it issued".into());
    call("rejected token: renewed, resent once")?;

    println!("\n== Cognito SRP (the ID token in the header)");
    let login = SrpAuthorizer::new(ClientInfo::new("demo-app", ""), POOL, "alice", "Passw0rd!")?
        .with_endpoint(idp.url())?;
    let auth = AuthMiddleware::builder(login).use_id_token().build();
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());
    let srp_call = |what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let status = agent.get(&api).call()?.status();
        log(format!(
            "{what:<36} -> {status}  (InitiateAuth: {}, RespondToAuthChallenge: {}, token in header: {})",
            idp.requests(Operation::InitiateAuth),
            idp.requests(Operation::RespondToAuthChallenge),
            idp.last_token_use().unwrap_or_default()
        ));
        Ok(())
    };
    srp_call("first request: SRP login")?;
    srp_call("next request: reuses the token")?;
    std::thread::sleep(Duration::from_millis(3200));
    srp_call("advisory window: REFRESH_TOKEN_AUTH")?;

    println!("\n== A wrong password");
    let wrong = SrpAuthorizer::new(
        ClientInfo::new("demo-app", ""),
        POOL,
        "alice",
        "not-the-password",
    )?
    .with_endpoint(idp.url())?;
    let auth = AuthMiddleware::new(wrong);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());
    match agent.get(&api).call() {
        Ok(response) => {
            return Err(format!("a wrong password was accepted: {}", response.status()).into());
        }
        Err(ureq::Error::Other(error)) => log(format!(
            "refused before anything was sent to the API: {error}"
        )),
        Err(other) => return Err(other.into()),
    }
    println!("\n== A device login (RFC 8628), as `az login --use-device-code`");
    idp.device_timing(Duration::from_secs(1), Duration::from_secs(60));
    let phone = idp.clone();
    let login = DeviceCode::discover(ClientInfo::new("demo-app", ""), idp.issuer())?
        .with_scopes(["openid", "offline_access"])
        .with_prompt(move |prompt| {
            println!(
                "        go to {} and enter the code {}",
                prompt.verification_uri(),
                prompt.user_code()
            );
            // The person approves on their phone a moment later.
            let (phone, code) = (phone.clone(), prompt.user_code().to_owned());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                phone.approve_device_code(&code, "alice");
            });
            Ok(())
        });
    let auth = AuthMiddleware::new(login);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());
    let status = agent.get(&api).call()?.status();
    log(format!(
        "{:<36} -> {status}  (device code polls and token requests so far: {})",
        "approved on the phone: logged in",
        idp.requests(Operation::Token)
    ));

    log(format!(
        "done; the API saw {} requests",
        idp.requests(Operation::Protected)
    ));
    Ok(())
}
