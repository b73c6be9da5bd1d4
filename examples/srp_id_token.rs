//! AWS Cognito user-pool login with SRP, sending the ID token (as API Gateway's Cognito
//! authorizers expect) instead of the access token.
//!
//! ```text
//! cargo run --features testing --example srp_id_token
//! ```
//!
//! It starts the crate's local identity provider, which checks the SRP proof as Cognito
//! does, so it runs offline. Against real Cognito, drop `.with_endpoint(..)?`: the
//! authorizer then talks to the pool's regional endpoint, `cognito-idp.<region>.amazonaws.com`.

use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, ClientInfo, ErrorKind};

const POOL: &str = "us-east-1_Local";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idp = LocalIdp::builder()
        .pool_id(POOL)
        // A public app client (no secret), as mobile and desktop apps have. With a secret,
        // pass it in ClientInfo and the authorizer sends SECRET_HASH.
        .client("desktop-app", None)
        .user("alice", "Passw0rd!")
        .start()?;

    let login = SrpAuthorizer::new(
        ClientInfo::new("desktop-app", ""),
        POOL,
        "alice",
        "Passw0rd!",
    )?
    .with_endpoint(idp.url())?;
    let auth = AuthMiddleware::builder(login).use_id_token().build();
    let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());

    let body = agent
        .get(idp.protected_url())
        .call()?
        .body_mut()
        .read_to_string()?;
    // The protected resource reports which token it got: "token_use":"id".
    println!("protected resource: {body}");
    println!(
        "SRP login: {} InitiateAuth + {} RespondToAuthChallenge",
        idp.requests(Operation::InitiateAuth),
        idp.requests(Operation::RespondToAuthChallenge)
    );

    // A wrong password is an error the caller can act on, not a panic or a retry loop.
    let wrong = SrpAuthorizer::new(ClientInfo::new("desktop-app", ""), POOL, "alice", "nope")?
        .with_endpoint(idp.url())?;
    let refused = AuthMiddleware::new(wrong);
    match refused.access_token() {
        Err(err) if err.kind() == ErrorKind::CredentialsRejected => {
            println!("wrong password refused: {err}");
        }
        other => return Err(format!("expected a rejection, got {other:?}").into()),
    }
    Ok(())
}
