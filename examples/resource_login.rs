//! A login to an API known only by its URL, as a Model Context Protocol client does: the
//! API's protected-resource metadata names its authorization server, a client is registered
//! there on the first run and kept, the person logs in with the browser once, and later runs
//! refresh without asking.
//!
//! ```sh
//! cargo run --example resource_login -- https://mcp.example.com/mcp
//! ```
//!
//! The registration is kept in `$XDG_CONFIG_HOME/en-core-auth-example/clients.json` (or
//! under `~/.config`), the tokens in the default file cache. Run it twice: the second run
//! opens no browser.

use std::path::PathBuf;

use en_core_auth::oauth2::AuthorizationCode;
use en_core_auth::store::FileStore;
use en_core_auth::{AuthMiddleware, Authorizer, Error, ErrorKind};

fn main() -> Result<(), Error> {
    let Some(api) = std::env::args().nth(1) else {
        eprintln!("usage: resource_login API_URL");
        std::process::exit(2);
    };
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Configuration,
                "neither XDG_CONFIG_HOME nor HOME is set",
            )
        })?;

    // Finds the API's metadata, checks that it describes this API, and discovers the
    // authorization server it names. Nothing is registered yet.
    let login = AuthorizationCode::for_resource(&api)
        .registration_file(config.join("en-core-auth-example/clients.json"))
        .build()?;
    println!("tokens will be for {}", login.resource().unwrap_or(&api));

    // One cache entry per API and authorization server, the same from run to run.
    let store = FileStore::new(login.credential_set().cache_key())?;
    let auth = AuthMiddleware::builder(login).token_store(store).build();
    let agent = auth.agent(ureq::Agent::config_builder().http_status_as_error(false));

    // The first request registers a client if needed and opens the browser once.
    let reply = agent.get(&api).call().map_err(Error::other)?;
    println!("{api} answered HTTP {}", reply.status());
    Ok(())
}
