//! A person's device login, offline: an embedded identity provider plays the server and
//! the person on their phone, who approves the code a moment after it is shown.
//!
//! ```text
//! cargo run --features testing --example device_login
//! ```
//!
//! Against a real server, the same code with `DeviceCode::discover(client, issuer)` and
//! without the approving thread is the whole of a CLI's `login --device`.

use std::sync::Arc;
use std::time::Duration;

use en_core_auth::oauth2::DeviceCode;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idp = Arc::new(
        LocalIdp::builder()
            .client("my-cli", None)
            .user("alice", "Passw0rd!")
            .start()?,
    );
    // Poll every second (servers usually ask for five) so that the example is quick.
    idp.device_timing(Duration::from_secs(1), Duration::from_secs(120));
    println!("identity provider on {}", idp.url());

    let phone = idp.clone();
    let login = DeviceCode::discover(ClientInfo::new("my-cli", ""), idp.issuer())?
        .with_scopes(["openid", "offline_access"])
        .with_prompt(move |prompt| {
            println!(
                "To log in, go to {} and enter the code {}",
                prompt.verification_uri(),
                prompt.user_code()
            );
            // The person, on another device, types the code and approves.
            let (phone, code) = (phone.clone(), prompt.user_code().to_owned());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                println!("(alice approves {code} on her phone)");
                phone.approve_device_code(&code, "alice");
            });
            Ok(())
        });
    let auth = AuthMiddleware::new(login);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());

    let answer = agent
        .get(&idp.protected_url())
        .call()?
        .body_mut()
        .read_to_string()?;
    println!("logged in; the API says {answer}");
    println!(
        "polls of the token endpoint: {}, ID token checked: {}",
        idp.requests(Operation::Token),
        cfg!(feature = "jwt")
    );

    // Logging out: the refresh token, then the access token, revoked (RFC 7009).
    let token = auth.token()?;
    let mut logout = DeviceCode::discover(ClientInfo::new("my-cli", ""), idp.issuer())?;
    logout.revoke(&token)?;
    println!(
        "logged out: {} revocation requests; the access token is {}",
        idp.requests(Operation::Revocation),
        if idp.verify_access_token(token.access_token()) {
            "still valid"
        } else {
            "dead"
        }
    );
    Ok(())
}
