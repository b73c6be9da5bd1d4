//! `en-core-auth`: prints a token for shell scripts, from a cache every run shares.
//!
//! ```text
//! export EN_CORE_AUTH_TOKEN_URL=https://idp.example.com/oauth2/token
//! export EN_CORE_AUTH_CLIENT_ID=my-client EN_CORE_AUTH_CLIENT_SECRET=…
//! curl -H "$(en-core-auth header)" https://api.example.com/orders
//! ```
//!
//! Built with `cargo install en-core-auth --features cli`. `en-core-auth --help` lists the
//! options, their environment variables and the exit statuses.

#![forbid(unsafe_code)]
// Bad input gets a message and an exit status, never a panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod login;

use std::io::{BufRead, Write};
use std::process::ExitCode;

use en_core_auth::oauth2::ClientCredentials;
use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::store::{CacheKey, FileStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

use config::{Command, Config, Parsed, Provider};

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string())
        .collect();
    let Ok(args) = args else {
        return fail(2, "an argument is not valid UTF-8");
    };
    // `login` and `logout` (issue 12) have their own options.
    if let Some(code) = login::main(&args, env, fail, exit_status) {
        return code;
    }
    let mut stdin = std::io::stdin().lock();
    let read_line = || {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .map_err(|error| error.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let config = match config::parse(args, env, read_line) {
        Ok(Parsed::Help) => return print(config::USAGE.trim_end()),
        Ok(Parsed::Version) => {
            return print(&format!("en-core-auth {}", env!("CARGO_PKG_VERSION")));
        }
        Ok(Parsed::Run(config)) => config,
        Err(usage) => return fail(2, &usage.0),
    };
    if config.verbose {
        StderrLogger::install();
    }
    match run(&config) {
        Ok(line) => print(&line),
        Err(error) => fail(exit_status(error.kind()), &error.to_string()),
    }
}

/// The exit status for an error of `kind`, as `--help` documents.
fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Configuration => 2,
        ErrorKind::CredentialsRejected => 3,
        ErrorKind::Transport | ErrorKind::Server => 4,
        ErrorKind::MalformedResponse => 5,
        ErrorKind::ChallengeRequired => 6,
        ErrorKind::Storage => 7,
        _ => 1,
    }
}

/// An environment variable; unset, empty and non-UTF-8 values are all "not set".
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn print(line: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, &format!("could not write to standard output: {error}")),
    }
}

/// One line on standard error. Errors of this crate never hold secrets; line breaks a
/// server put in its description are flattened so that scripts can rely on one line.
fn fail(status: u8, message: &str) -> ExitCode {
    let message = message.replace(['\r', '\n'], " ");
    let _ = writeln!(std::io::stderr(), "en-core-auth: {message}");
    ExitCode::from(status)
}

/// Gets the token through a middleware backed by the file cache, and formats the output.
fn run(config: &Config) -> Result<String, Error> {
    let client = ClientInfo::new(&config.client_id, &config.client_secret.0);
    let (authorizer, key) = authorizer(config, client)?;
    let store = match &config.cache_dir {
        Some(dir) => FileStore::in_dir(dir, key),
        None => FileStore::new(key)?,
    }
    .store_refresh_tokens(config.cache_refresh_tokens);
    #[cfg(feature = "testing")]
    let store = test_hooks(store);

    let mut builder = AuthMiddleware::builder(authorizer).token_store(store);
    if config.id_token {
        builder = builder.use_id_token();
    }
    let auth = builder.build();
    match config.command {
        Command::Header => Ok(format!("Authorization: {}", auth.header_value()?)),
        Command::Token if config.id_token => {
            auth.token()?.id_token().map(str::to_owned).ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    "the identity provider issued no ID token",
                )
            })
        }
        Command::Token => auth.access_token(),
    }
}

/// Only in builds with the `testing` feature (never in `cargo install --features cli`):
/// `EN_CORE_AUTH_TEST_PAUSE_BEFORE_RENAME_MS` makes a save pause between writing the
/// temporary file and renaming it, so that a test can kill the process mid-write.
#[cfg(feature = "testing")]
fn test_hooks(store: FileStore) -> FileStore {
    match env("EN_CORE_AUTH_TEST_PAUSE_BEFORE_RENAME_MS").and_then(|ms| ms.parse().ok()) {
        Some(ms) => store.pause_before_rename(std::time::Duration::from_millis(ms)),
        None => store,
    }
}

/// The authorizer for the configured identity provider, and the cache key of the
/// credential set (no secret in it).
fn authorizer(config: &Config, client: ClientInfo) -> Result<(Deferred, CacheKey), Error> {
    match &config.provider {
        Provider::OAuth2 {
            token_url: Some(token_url),
            scopes,
            ..
        } => {
            let key = CacheKey::new(
                &format!("oauth2 token endpoint {token_url}"),
                client.client_id(),
                None,
                scopes,
            );
            // Cheap and offline: a bad URL is reported even when the cache has a token.
            let inner = ClientCredentials::new(client.clone(), token_url)?.with_scopes(scopes);
            Ok((Deferred::ready(client, inner), key))
        }
        // No secret with an issuer: a person's stored login (`en-core-auth login`).
        Provider::OAuth2 {
            issuer: Some(issuer),
            scopes,
            ..
        } if config.client_secret.0.is_empty() => {
            let key = login::cache_key(issuer, client.client_id(), &login::login_scopes(scopes));
            Ok((Deferred::lazy(client, login::stored(issuer, scopes)), key))
        }
        Provider::OAuth2 {
            issuer: Some(issuer),
            scopes,
            ..
        } => {
            let key = CacheKey::new(
                &format!("oauth2 issuer {issuer}"),
                client.client_id(),
                None,
                scopes,
            );
            let (issuer, scopes) = (issuer.clone(), scopes.clone());
            // Discovery is a network round trip: only made when a token is needed, so that
            // a run served from the cache makes no request at all.
            let build = move |client: &ClientInfo| {
                let inner = ClientCredentials::discover(client.clone(), issuer.clone())?
                    .with_scopes(scopes.clone());
                Ok(Box::new(inner) as Box<dyn Authorizer>)
            };
            Ok((Deferred::lazy(client, build), key))
        }
        Provider::OAuth2 { .. } => Err(Error::new(
            ErrorKind::Configuration,
            "no token URL or issuer",
        )),
        Provider::Srp {
            user_pool_id,
            username,
            password,
            endpoint,
        } => {
            let key = CacheKey::new(
                &format!(
                    "cognito user pool {user_pool_id} at {}",
                    endpoint.as_deref().unwrap_or("its regional endpoint")
                ),
                client.client_id(),
                Some(username),
                Vec::<String>::new(),
            );
            let mut inner =
                SrpAuthorizer::new(client.clone(), user_pool_id, username, &password.0)?;
            if let Some(endpoint) = endpoint {
                inner = inner.with_endpoint(endpoint);
            }
            Ok((Deferred::ready(client, inner), key))
        }
    }
}

type Build = Box<dyn FnMut(&ClientInfo) -> Result<Box<dyn Authorizer>, Error> + Send>;

/// An authorizer built on first use, so that a run served from the cache does no set-up
/// work that needs the network.
struct Deferred {
    client: ClientInfo,
    build: Option<Build>,
    inner: Option<Box<dyn Authorizer>>,
}

impl Deferred {
    fn ready(client: ClientInfo, inner: impl Authorizer + 'static) -> Deferred {
        Deferred {
            client,
            build: None,
            inner: Some(Box::new(inner)),
        }
    }

    fn lazy(
        client: ClientInfo,
        build: impl FnMut(&ClientInfo) -> Result<Box<dyn Authorizer>, Error> + Send + 'static,
    ) -> Deferred {
        Deferred {
            client,
            build: Some(Box::new(build)),
            inner: None,
        }
    }

    fn inner(&mut self) -> Result<&mut Box<dyn Authorizer>, Error> {
        if self.inner.is_none() {
            let build = self
                .build
                .as_mut()
                .ok_or_else(|| Error::other("no authorizer"))?;
            self.inner = Some(build(&self.client)?);
        }
        self.inner
            .as_mut()
            .ok_or_else(|| Error::other("no authorizer"))
    }
}

impl Authorizer for Deferred {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        self.inner()?.authorize()
    }

    fn expired(&self, token: &Token) -> bool {
        match &self.inner {
            Some(inner) => inner.expired(token),
            // What the trait's default says; the authorizers here do not override it.
            None => token.is_expired(),
        }
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        self.inner()?.refresh(token)
    }
}

/// `--verbose`: this crate's log lines on standard error. Other crates' logs (ureq's
/// describe requests) are left out: only this crate promises that its logs hold no secret.
struct StderrLogger;

impl StderrLogger {
    fn install() {
        static LOGGER: StderrLogger = StderrLogger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("en_core_auth")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let message = record.args().to_string().replace(['\r', '\n'], " ");
            let _ = writeln!(
                std::io::stderr(),
                "en-core-auth: {}: {message}",
                record.level().as_str().to_lowercase()
            );
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_documented_status() {
        let cases = [
            (ErrorKind::Configuration, 2),
            (ErrorKind::CredentialsRejected, 3),
            (ErrorKind::Transport, 4),
            (ErrorKind::Server, 4),
            (ErrorKind::MalformedResponse, 5),
            (ErrorKind::ChallengeRequired, 6),
            (ErrorKind::Storage, 7),
            (ErrorKind::Other, 1),
        ];
        for (kind, status) in cases {
            assert_eq!(exit_status(kind), status, "{kind:?}");
            assert!(
                config::USAGE.contains(&format!("    {status}  ")),
                "status {status} undocumented"
            );
        }
    }

    #[test]
    fn a_lazy_authorizer_is_built_once_on_first_use() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        struct Fixed(ClientInfo);
        impl Authorizer for Fixed {
            fn client_info(&self) -> &ClientInfo {
                &self.0
            }
            fn authorize(&mut self) -> Result<Token, Error> {
                Ok(Token::new("t"))
            }
        }
        let builds = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&builds);
        let mut deferred = Deferred::lazy(ClientInfo::new("c", "s"), move |client| {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(Box::new(Fixed(client.clone())) as Box<dyn Authorizer>)
        });
        assert!(!deferred.expired(&Token::new("cached")));
        assert_eq!(builds.load(Ordering::Relaxed), 0);
        assert_eq!(deferred.authorize().unwrap().access_token(), "t");
        assert_eq!(
            deferred.refresh(&Token::new("t")).unwrap().access_token(),
            "t"
        );
        assert_eq!(builds.load(Ordering::Relaxed), 1);
    }
}
