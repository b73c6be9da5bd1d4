//! `en-core-auth`: prints a token for shell scripts, from a cache every run shares.
//!
//! ```text
//! export EN_CORE_AUTH_TOKEN_URL=https://idp.example.com/oauth2/token
//! export EN_CORE_AUTH_CLIENT_ID=my-client EN_CORE_AUTH_CLIENT_SECRET=…
//! en-core-auth header | curl -H @- https://api.example.com/orders
//! ```
//!
//! Built with `cargo install --locked en-core-auth --features cli`. `en-core-auth --help` lists the
//! options, their environment variables and the exit statuses.

#![forbid(unsafe_code)]
// Bad input gets a message and an exit status, never a panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod challenge;
mod config;
mod login;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use en_core_auth::oauth2::{ClientAuth, ClientCredentials};
use en_core_auth::srp::SrpAuthorizer;
use en_core_auth::store::{CredentialSet, FileStore, RedisStore, TokenStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind, Token};

use config::{ClientAuthChoice, Command, Config, Format, GitOperation, Parsed, Provider};

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
        Ok(Parsed::Run(config)) => *config,
        Err(usage) => return fail(2, &usage.0),
    };
    // Released for `git-credential`, which reads what git writes.
    drop(stdin);
    if config.verbose {
        StderrLogger::install();
    }
    match run(&config) {
        Ok(Outcome::Print(line)) => print(&line),
        Ok(Outcome::Exit(status)) => ExitCode::from(status),
        Err(error) => fail(exit_status(error.kind()), &error.to_string()),
    }
}

/// What a successful run ends with.
enum Outcome {
    Print(String),
    /// `exec`'s command ended (its status), or a command that prints nothing.
    Exit(u8),
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

/// Gets the token through a middleware backed by the cache (files, Redis, or none), and
/// prints it, runs a command with it, or reports on or clears the cache.
fn run(config: &Config) -> Result<Outcome, Error> {
    let client = ClientInfo::new(&config.client_id, &config.client_secret.0);
    let (authorizer, credentials) = authorizer(config, client)?;
    let store = store(config, &credentials)?;
    match &config.command {
        Command::Status => return status(config, store.as_deref()).map(Outcome::Print),
        Command::Clear => {
            if let Some(store) = &store {
                store.clear()?;
            }
            return Ok(Outcome::Exit(0));
        }
        Command::GitCredential(operation) => {
            // git writes what it knows about the request first; it is not needed (the
            // helper is configured per URL), but is read so that git's write never fails.
            drain_stdin();
            match operation {
                GitOperation::Get => {}
                // git remembers nothing through this helper: tokens come and go by
                // themselves.
                GitOperation::Store => return Ok(Outcome::Exit(0)),
                // git saw the token rejected: the next `get` must not hand it out again.
                GitOperation::Erase => {
                    if let Some(store) = &store {
                        store.clear()?;
                    }
                    return Ok(Outcome::Exit(0));
                }
            }
        }
        Command::Token | Command::Header | Command::Exec(_) => {}
    }

    let mut builder = AuthMiddleware::builder(authorizer);
    if let Some(store) = store {
        builder = builder.token_store(store);
    }
    if config.id_token {
        builder = builder.use_id_token();
    }
    let auth = builder.build();
    let token = token_lasting(&auth, config.min_ttl.map(Duration::from_secs))?;
    let value = if config.id_token {
        token.id_token().map(str::to_owned).ok_or_else(|| {
            Error::new(
                ErrorKind::MalformedResponse,
                "the identity provider issued no ID token",
            )
        })?
    } else {
        token.access_token().to_owned()
    };
    let header = format!("Authorization: {} {value}", token.token_type());
    match (&config.command, config.format) {
        (Command::Exec(command), _) => exec(command, &value, &header).map(Outcome::Exit),
        (Command::GitCredential(_), _) => Ok(Outcome::Print(git_credential(
            &config.git_username,
            &token,
            &value,
        )?)),
        (_, Format::Json) => Ok(Outcome::Print(token_json(&token, &value, &header))),
        (_, Format::ExecCredential) => Ok(Outcome::Print(exec_credential(&token, &value))),
        (Command::Header, Format::Text) => Ok(Outcome::Print(header)),
        (_, Format::Text) => Ok(Outcome::Print(value)),
    }
}

/// The cache the configuration names: none, Redis, or files.
fn store(
    config: &Config,
    credentials: &CredentialSet,
) -> Result<Option<Arc<dyn TokenStore>>, Error> {
    if config.no_cache {
        return Ok(None);
    }
    let key = credentials.cache_key();
    if let Some(url) = &config.redis_url {
        let store = RedisStore::new(&url.0, key)?.store_refresh_tokens(config.cache_refresh_tokens);
        return Ok(Some(Arc::new(store)));
    }
    let store = match &config.cache_dir {
        Some(dir) => FileStore::in_dir(dir, key),
        None => FileStore::new(key)?,
    }
    .store_refresh_tokens(config.cache_refresh_tokens);
    #[cfg(feature = "testing")]
    let store = test_hooks(store);
    Ok(Some(Arc::new(store)))
}

/// The current token, renewed first if it would expire within `min_ttl`.
fn token_lasting(auth: &AuthMiddleware, min_ttl: Option<Duration>) -> Result<Token, Error> {
    let token = auth.token()?;
    let Some(min_ttl) = min_ttl else {
        return Ok(token);
    };
    let lasts = |token: &Token| {
        token.expires_at().is_none_or(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                >= min_ttl
        })
    };
    if lasts(&token) {
        return Ok(token);
    }
    auth.invalidate();
    let renewed = auth.token()?;
    if lasts(&renewed) {
        return Ok(renewed);
    }
    Err(Error::new(
        ErrorKind::MalformedResponse,
        format!(
            "the identity provider issues tokens that expire sooner than --min-ttl {} s",
            min_ttl.as_secs()
        ),
    ))
}

/// `--json`: the token, its type, its expiry and scopes.
fn token_json(token: &Token, value: &str, header: &str) -> String {
    let mut json = serde_json::json!({
        "token": value,
        "token_type": token.token_type(),
        "header": header,
        "scopes": token.scope().map(|scope| scope.split_whitespace().collect::<Vec<_>>()).unwrap_or_default(),
    });
    if let Some(at) = token.expires_at() {
        json["expires_at"] = rfc3339(at).into();
        json["expires_in"] = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .as_secs()
            .into();
    }
    json.to_string()
}

/// `git-credential get`: the answer in git's credential protocol, one `key=value` a line.
fn git_credential(username: &str, token: &Token, value: &str) -> Result<String, Error> {
    if [username, value]
        .iter()
        .any(|field| field.contains(['\n', '\0']))
    {
        return Err(Error::new(
            ErrorKind::MalformedResponse,
            "the token or user name cannot be passed to git (line break or NUL)",
        ));
    }
    let mut lines = vec![format!("username={username}"), format!("password={value}")];
    // git 2.41+ drops the credential at this time instead of trying it.
    if let Some(at) = token.expires_at() {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        lines.push(format!("password_expiry_utc={secs}"));
    }
    Ok(lines.join("\n"))
}

/// Reads standard input to its end or to git's terminating blank line, at most 64 KiB.
fn drain_stdin() {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    let mut read = 0;
    while read < 64 * 1024 {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) if line.trim_end_matches(['\r', '\n']).is_empty() => {
                let _ = n;
                return;
            }
            Ok(n) => read += n,
        }
    }
}

/// `--format exec-credential`: what kubectl reads from an exec credential plugin.
fn exec_credential(token: &Token, value: &str) -> String {
    let mut status = serde_json::json!({ "token": value });
    if let Some(at) = token.expires_at() {
        status["expirationTimestamp"] = rfc3339(at).into();
    }
    serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    })
    .to_string()
}

/// `status`: where the cache is and what it holds, without asking the identity provider.
/// Lines of `name: value` (or one JSON object with `--json`), so that more (the user
/// logged in) can be added without breaking scripts that read the present ones.
fn status(config: &Config, store: Option<&dyn TokenStore>) -> Result<String, Error> {
    let cache = match (store, &config.redis_url, &config.cache_dir) {
        (None, _, _) => "none (--no-cache)".to_owned(),
        (Some(_), Some(_), _) => "redis".to_owned(),
        (Some(_), None, Some(dir)) => format!("files in {}", dir.display()),
        (Some(_), None, None) => format!("files in {}", FileStore::default_dir()?.display()),
    };
    let stored = match store {
        Some(store) => store.load()?,
        None => None,
    };
    let user = match &config.provider {
        Provider::Srp { username, .. } => Some(username.clone()),
        Provider::OAuth2 { .. } => None,
    };
    let now = SystemTime::now();
    let state = |token: &Token| match token.expires_at() {
        Some(at) if at <= now => "expired",
        _ => "valid",
    };
    if config.format == Format::Json {
        let token = stored.as_ref().map(|token| {
            let mut json = serde_json::json!({
                "state": state(token),
                "token_type": token.token_type(),
                "refresh_token": token.refresh_token().is_some(),
                "id_token": token.id_token().is_some(),
                "scopes": token.scope().map(|scope| scope.split_whitespace().collect::<Vec<_>>()).unwrap_or_default(),
            });
            if let Some(at) = token.expires_at() {
                json["expires_at"] = rfc3339(at).into();
            }
            json
        });
        return Ok(serde_json::json!({
            "cache": cache,
            "client_id": config.client_id,
            "user": user,
            "token": token,
        })
        .to_string());
    }
    let mut lines = vec![
        format!("cache: {cache}"),
        format!("client id: {}", config.client_id),
    ];
    if let Some(user) = user {
        lines.push(format!("user: {user}"));
    }
    match &stored {
        None => lines.push("token: none".to_owned()),
        Some(token) => {
            let expiry = match token.expires_at() {
                Some(at) => format!(", expires {}", rfc3339(at)),
                None => String::new(),
            };
            lines.push(format!("token: {}{expiry}", state(token)));
            if let Some(scope) = token.scope() {
                lines.push(format!("scopes: {scope}"));
            }
            let has = |yes: bool| if yes { "yes" } else { "no" };
            lines.push(format!(
                "refresh token: {}",
                has(token.refresh_token().is_some())
            ));
        }
    }
    Ok(lines.join("\n"))
}

/// `exec`: runs `command` with the token in its environment (never on its command line,
/// which `ps` shows), without this tool's own secrets, and returns its exit status.
fn exec(command: &[String], token: &str, header: &str) -> Result<u8, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::new(ErrorKind::Configuration, "exec needs a command"));
    };
    let mut child = std::process::Command::new(program);
    child
        .args(args)
        .env("EN_CORE_AUTH_TOKEN", token)
        .env("EN_CORE_AUTH_HEADER", header);
    // The command gets a token, not what obtains tokens.
    for secret in [
        "EN_CORE_AUTH_CLIENT_SECRET",
        "EN_CORE_AUTH_PASSWORD",
        "EN_CORE_AUTH_REDIS_URL",
    ] {
        child.env_remove(secret);
    }
    let status = child.status().map_err(|error| {
        // The shells' convention: 127 not found, 126 not runnable; reported as a
        // configuration error (exit status 2) with the reason.
        Error::new(
            ErrorKind::Configuration,
            format!("could not run {program}: {error}"),
        )
    })?;
    if let Some(code) = status.code() {
        return Ok(u8::try_from(code & 0xff).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ok(u8::try_from(128 + (signal & 0x7f)).unwrap_or(1));
        }
    }
    Ok(1)
}

/// `time` as RFC 3339 in UTC, to the second (`2026-11-29T13:19:46Z`).
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
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

/// The authorizer for the configured identity provider, and the credential set its
/// tokens are cached under (no secret in the key).
fn authorizer(config: &Config, client: ClientInfo) -> Result<(Deferred, CredentialSet), Error> {
    match &config.provider {
        Provider::OAuth2 {
            token_url: Some(token_url),
            scopes,
            params,
            client_auth,
            ..
        } => {
            // Cheap and offline: a bad URL is reported even when the cache has a token.
            let inner = with_params(
                ClientCredentials::new(client.clone(), token_url)?.with_scopes(scopes),
                params,
            )
            .with_client_auth(client_auth_of(client_auth)?);
            let credentials = inner.credential_set();
            Ok((Deferred::ready(client, inner), credentials))
        }
        // No secret with an issuer: a person's stored login (`en-core-auth login`).
        Provider::OAuth2 {
            issuer: Some(issuer),
            scopes,
            ..
        } if config.client_secret.0.is_empty() => {
            let credentials = login::credential_set(issuer, &client, &login::login_scopes(scopes));
            Ok((
                Deferred::lazy(client, login::stored(issuer, scopes)),
                credentials,
            ))
        }
        Provider::OAuth2 {
            issuer: Some(issuer),
            scopes,
            params,
            client_auth,
            ..
        } => {
            let credentials = params
                .iter()
                .fold(
                    CredentialSet::new("client_credentials", &format!("issuer {issuer}"))
                        .client(&client),
                    |set, (name, value)| set.param(name, value),
                )
                .scopes(scopes);
            let (issuer, scopes, params) = (issuer.clone(), scopes.clone(), params.clone());
            let auth = client_auth_of(client_auth)?;
            // Discovery is a network round trip: only made when a token is needed, so that
            // a run served from the cache makes no request at all.
            let build = move |client: &ClientInfo| {
                let inner = with_params(
                    ClientCredentials::discover(client.clone(), issuer.clone())?
                        .with_scopes(scopes.clone()),
                    &params,
                )
                .with_client_auth(auth.clone());
                Ok(Box::new(inner) as Box<dyn Authorizer>)
            };
            Ok((Deferred::lazy(client, build), credentials))
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
            let mut inner =
                SrpAuthorizer::new(client.clone(), user_pool_id, username, &password.0)?;
            if let Some(endpoint) = endpoint {
                inner = inner.with_endpoint(endpoint);
            }
            let credentials = inner.credential_set();
            let inner = challenge::prepare(inner, config, &credentials.cache_key())?;
            Ok((Deferred::ready(client, inner), credentials))
        }
    }
}

fn with_params(inner: ClientCredentials, params: &[(String, String)]) -> ClientCredentials {
    params.iter().fold(inner, |inner, (name, value)| {
        inner.with_parameter(name, value)
    })
}

/// `--client-auth`: a private key is read here, and neither its path's content nor the
/// parser's message (which could quote it) reaches an error.
fn client_auth_of(choice: &ClientAuthChoice) -> Result<ClientAuth, Error> {
    use en_core_auth::oauth2::PrivateKeyJwt;
    use jsonwebtoken::{Algorithm, EncodingKey};
    match choice {
        ClientAuthChoice::Basic => Ok(ClientAuth::SecretBasic),
        ClientAuthChoice::Post => Ok(ClientAuth::SecretPost),
        ClientAuthChoice::PrivateKeyJwt(path) => {
            let pem = std::fs::read(path).map_err(|error| {
                Error::new(
                    ErrorKind::Configuration,
                    format!("could not read the private key {}: {error}", path.display()),
                )
            })?;
            let (key, algorithm) = match EncodingKey::from_rsa_pem(&pem) {
                Ok(key) => (key, Algorithm::RS256),
                Err(_) => match EncodingKey::from_ec_pem(&pem) {
                    Ok(key) => (key, Algorithm::ES256),
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::Configuration,
                            format!(
                                "{} is not a PEM RSA or EC (P-256) private key",
                                path.display()
                            ),
                        ));
                    }
                },
            };
            Ok(ClientAuth::PrivateKeyJwt(PrivateKeyJwt::new(
                key, algorithm,
            )))
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
    fn rfc3339_in_utc() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59Z");
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
