//! OAuth2 client credentials: a service calls an API as itself.
//!
//! ```text
//! cargo run --features testing --example client_credentials
//! ```
//!
//! It starts the crate's local identity provider so that it runs offline; against a real
//! server, replace `idp.token_url()` with its token endpoint (or use
//! `ClientCredentials::discover` with the issuer URL) and `idp.protected_url()` with your API.

use std::time::Duration;

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, ClientInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A confidential client, as a back-end service has. Short tokens so the run shows a renewal.
    let idp = LocalIdp::builder()
        .client("orders-service", Some("orders-s3cret"))
        .token_ttl(Duration::from_secs(2))
        .start()?;

    // The API key is optional; when set, every request also carries `X-Api-Key`.
    let client = ClientInfo::new("orders-service", "orders-s3cret").with_api_key("demo-key");
    let grant = ClientCredentials::new(client, idp.token_url())?.with_scopes(["orders/read"]);

    // One middleware, cloned into the agent: the clone shares the token, so `auth` below
    // reports what the agent did.
    let auth = AuthMiddleware::new(grant);
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());

    for call in 1..=3 {
        let body = agent
            .get(idp.protected_url())
            .call()?
            .body_mut()
            .read_to_string()?;
        println!("call {call}: {body}");
    }
    // Three calls, one token: the first call fetched it and the others reused it.
    println!("token requests so far: {}", idp.requests(Operation::Token));

    // Past the refresh margin of a 2-second token: the next call renews it first, without
    // the caller seeing a 401.
    std::thread::sleep(Duration::from_millis(1900));
    let status = agent.get(idp.protected_url()).call()?.status();
    println!(
        "after the token aged: status {status}, token requests {}",
        idp.requests(Operation::Token)
    );

    if idp.requests(Operation::Token) != 2 {
        return Err("expected one token request per token lifetime".into());
    }

    // The same token, for an HTTP client that isn't ureq.
    let header = auth.header_value()?;
    let scheme = header.split_once(' ').map_or("", |(scheme, _)| scheme);
    println!("Authorization header for other clients: {scheme} <token>");
    Ok(())
}
