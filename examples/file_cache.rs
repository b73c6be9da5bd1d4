//! A command-line program that keeps its token between runs: the file cache.
//!
//! ```text
//! cargo run --features testing --example file_cache
//! ```
//!
//! Each "run" below is what one invocation of a CLI does: build an authorizer and a
//! middleware with a `FileStore`, call an API, exit. The first run logs in; the next ones
//! find the token in the cache and make no token request. (Here the runs share one process
//! so the example can start its own identity provider; `tests/store_cli.rs` proves the same
//! with real processes.)

use std::time::Duration;

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::store::{CacheKey, FileStore};
use en_core_auth::testing::{LocalIdp, Operation};
use en_core_auth::{AuthMiddleware, ClientInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idp = LocalIdp::builder()
        .client("cli", Some("cli-secret"))
        .token_ttl(Duration::from_secs(3600))
        .start()?;
    // A real CLI uses FileStore::new(key), under ~/.cache/en-core-auth.
    let cache_dir =
        std::env::temp_dir().join(format!("en-core-auth-example-{}", std::process::id()));

    for run in 1..=3 {
        // One cache file per credential set: the key names what the token is for.
        let key = CacheKey::new(&idp.token_url(), "cli", None, &[] as &[&str]);
        let store = FileStore::in_dir(&cache_dir, key);
        let authorizer =
            ClientCredentials::new(ClientInfo::new("cli", "cli-secret"), idp.token_url())?;
        let auth = AuthMiddleware::builder(authorizer)
            .token_store(store)
            .build();
        let agent: ureq::Agent = auth.agent(ureq::Agent::config_builder());

        let status = agent.get(idp.protected_url()).call()?.status();
        println!(
            "run {run}: {status}, token requests so far: {}",
            idp.requests(Operation::Token)
        );
    }
    if idp.requests(Operation::Token) != 1 {
        return Err("the cache should have served runs 2 and 3".into());
    }
    std::fs::remove_dir_all(&cache_dir)?;
    Ok(())
}
