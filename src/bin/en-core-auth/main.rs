//! `en-core-auth`: prints a token for shell scripts, from a cache every run shares.
//!
//! ```text
//! export EN_CORE_AUTH_TOKEN_URL=https://idp.example.com/oauth2/token
//! export EN_CORE_AUTH_CLIENT_ID=my-client EN_CORE_AUTH_CLIENT_SECRET=…
//! en-core-auth header | curl -H @- https://api.example.com/orders
//! ```
//!
//! Built with `cargo install --locked en-core-auth --features cli`. `en-core-auth --help` lists the
//! options, their environment variables and the exit statuses. The settings are read by the
//! library's `config::Settings`, which `AuthMiddleware::from_env` uses too: a program and
//! this command find the same cached token.

#![forbid(unsafe_code)]
// Bad input gets a message and an exit status, never a panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod args;
mod challenge;
mod login;
mod profiles;
mod status;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::FromArgMatches;
use en_core_auth::config::Settings;
use en_core_auth::{AuthMiddleware, Error, ErrorKind, Token};

use args::{Cli, Command, Format, GitOperation, Parsed};

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string())
        .collect();
    let Ok(args) = args else {
        return fail(2, "an argument is not valid UTF-8");
    };
    if let Err(message) = args::refuse_secret_flags(&args) {
        return fail(2, &message);
    }
    let parsed = match args::command()
        .try_get_matches_from(std::iter::once("en-core-auth".to_owned()).chain(args))
        .and_then(|matches| Ok(Parsed::new(Cli::from_arg_matches(&matches)?, matches)))
    {
        Ok(parsed) => parsed,
        Err(error) => return usage_error(&error),
    };
    StderrLogger::install(parsed.cli.options.verbose);
    match run(&parsed) {
        Ok(Outcome::Print(line)) => print(&line),
        Ok(Outcome::Report(text, status)) => match print(&text) {
            printed if printed == ExitCode::SUCCESS => ExitCode::from(status),
            failed => failed,
        },
        Ok(Outcome::Exit(status)) => ExitCode::from(status),
        Err(error) => fail(exit_status(error.kind()), &error.to_string()),
    }
}

/// `--help` and `--version` on standard output; a usage error as one line (what was not
/// understood, and clap's suggestion) with exit status 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    match error.kind() {
        Clap::DisplayHelp | Clap::DisplayVersion => {
            return print(error.render().to_string().trim_end());
        }
        Clap::MissingSubcommand | Clap::DisplayHelpOnMissingArgumentOrSubcommand => {
            return fail(
                2,
                "no command: use `en-core-auth token`, `header`, `exec`, `status` or `login` \
                 (see --help)",
            );
        }
        _ => {}
    }
    let rendered = error.render().to_string();
    let mut lines = rendered
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty());
    let first = lines
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    let tips: Vec<&str> = lines.filter(|line| line.starts_with("tip:")).collect();
    let message = match tips.is_empty() {
        true => format!("{first} (see --help)"),
        false => format!("{first} ({}; see --help)", tips.join("; ")),
    };
    fail(2, &message)
}

/// What a successful run ends with.
pub(crate) enum Outcome {
    Print(String),
    /// Printed, then this exit status (`status`: 3 when nothing is stored).
    Report(String, u8),
    /// `exec`'s command ended (its status), or a command that prints nothing.
    Exit(u8),
}

/// The exit status for an error of `kind`, as `--help` documents.
pub(crate) fn exit_status(kind: ErrorKind) -> u8 {
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
pub(crate) fn fail(status: u8, message: &str) -> ExitCode {
    let message = message.replace(['\r', '\n'], " ");
    let _ = writeln!(std::io::stderr(), "en-core-auth: {message}");
    ExitCode::from(status)
}

/// The settings of this run: options, variables, and the secrets read from standard input.
fn settings(parsed: &Parsed) -> Result<Settings, Error> {
    parsed.settings(env, stdin_line)
}

/// Runs the command.
fn run(parsed: &Parsed) -> Result<Outcome, Error> {
    // Checked first: a usage error is reported before any secret is read.
    let format = parsed.format()?;
    let min_ttl = parsed.min_ttl()?;
    match &parsed.cli.command {
        Command::Login { .. } | Command::Logout if parsed.cli.options.issuer.is_none() => {
            return Err(Error::new(
                ErrorKind::Configuration,
                "a person's login needs --issuer (or EN_CORE_AUTH_ISSUER) and --client-id",
            ));
        }
        Command::Login { device, no_browser } => {
            return login::login(&settings(parsed)?, *device, *no_browser);
        }
        Command::Logout => return login::logout(&settings(parsed)?),
        Command::Status => return status::status(parsed, &settings(parsed)?, format),
        _ => {}
    }
    let settings = settings(parsed)?;
    let store = settings.token_store()?;
    match &parsed.cli.command {
        Command::Clear => {
            if let Some(store) = &store {
                store.clear()?;
            }
            return Ok(Outcome::Exit(0));
        }
        Command::GitCredential {
            operation: GitOperation::Store,
        } => {
            // git remembers nothing through this helper: tokens come and go by themselves.
            git_request();
            return Ok(Outcome::Exit(0));
        }
        Command::GitCredential {
            operation: GitOperation::Erase,
        } => {
            // git saw a credential rejected. Only when it is the token this helper handed
            // out is the cache cleared: one rejected credential of another kind (or an old
            // token) must not wipe a token a whole fleet shares.
            let rejected = git_request().password;
            if let (Some(store), Some(rejected)) = (&store, rejected) {
                let stored = store.load()?;
                let ours = stored.is_some_and(|token| {
                    let value = match parsed.cli.options.id_token {
                        true => token.id_token().map(str::to_owned),
                        false => Some(token.access_token().to_owned()),
                    };
                    value.is_some_and(|value| constant_time_eq(&value, &rejected))
                });
                if ours {
                    store.clear()?;
                }
            }
            return Ok(Outcome::Exit(0));
        }
        Command::GitCredential {
            operation: GitOperation::Get,
        } => {
            // What git writes about the request is not needed (the helper is configured per
            // URL), but is read so that git's write never fails.
            git_request();
        }
        _ => {}
    }

    let remember_device = parsed.cli.options.remember_device;
    let authorizer =
        settings.authorizer_with(|srp| challenge::prepare(srp, remember_device, &settings))?;
    let mut builder = AuthMiddleware::builder(authorizer);
    if let Some(store) = store {
        builder = builder.token_store(store);
    }
    if parsed.cli.options.id_token {
        builder = builder.use_id_token();
    }
    let auth = builder.try_build()?;
    let token = token_lasting(&auth, min_ttl.map(Duration::from_secs), parsed)?;
    let value = if parsed.cli.options.id_token {
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
    match (&parsed.cli.command, format) {
        (Command::Exec { command }, _) => Ok(exec(command, &value, &header)),
        (Command::GitCredential { .. }, _) => {
            let username = parsed
                .cli
                .options
                .git_username
                .as_deref()
                .unwrap_or("oauth2");
            Ok(Outcome::Print(git_credential(username, &token, &value)?))
        }
        (_, Format::Json) => Ok(Outcome::Print(token_json(&token, &value, &header))),
        (_, Format::ExecCredential) => Ok(Outcome::Print(exec_credential(&token, &value)?)),
        (Command::Header, Format::Text) => Ok(Outcome::Print(header)),
        (_, Format::Text) => Ok(Outcome::Print(value)),
    }
}

/// The current token, renewed first if it would expire within `min_ttl`. A fresh token
/// that still does not last `min_ttl` means the identity provider's tokens never do: a
/// usage problem (exit status 2), not a malformed response.
fn token_lasting(
    auth: &AuthMiddleware,
    min_ttl: Option<Duration>,
    parsed: &Parsed,
) -> Result<Token, Error> {
    let token = auth.token()?;
    let Some(min_ttl) = min_ttl else {
        return Ok(token);
    };
    let left = |token: &Token| {
        token.expires_at().map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    };
    if left(&token).is_none_or(|left| left >= min_ttl) {
        return Ok(token);
    }
    auth.invalidate();
    let renewed = auth.token()?;
    match left(&renewed) {
        None => Ok(renewed),
        Some(left) if left >= min_ttl => Ok(renewed),
        Some(left) => Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "{} {} s cannot be met: the identity provider's new tokens last {} s; ask for \
                 less",
                parsed.source_of("min_ttl"),
                min_ttl.as_secs(),
                left.as_secs()
            ),
        )),
    }
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

/// What git wrote to its credential helper: only the password matters (`erase`).
struct GitRequest {
    password: Option<String>,
}

/// Reads git's request, to its end or its terminating blank line, at most 64 KiB.
fn git_request() -> GitRequest {
    use std::io::BufRead;
    let mut stdin = std::io::stdin().lock();
    let mut request = GitRequest { password: None };
    let mut line = String::new();
    let mut read = 0;
    while read < 64 * 1024 {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some(password) = line.strip_prefix("password=") {
            request.password = Some(password.to_owned());
        }
    }
    request
}

/// Compares a secret without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
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

/// The ExecCredential API versions kubectl may ask for.
const EXEC_CREDENTIAL_VERSIONS: &[&str] = &[
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// `--format exec-credential`: what kubectl reads from an exec credential plugin, in the
/// `apiVersion` that kubectl names in `KUBERNETES_EXEC_INFO` (v1 when it names none).
fn exec_credential(token: &Token, value: &str) -> Result<String, Error> {
    let asked = env("KUBERNETES_EXEC_INFO")
        .and_then(|info| serde_json::from_str::<serde_json::Value>(&info).ok())
        .and_then(|info| info["apiVersion"].as_str().map(str::to_owned));
    let api_version = match asked {
        None => EXEC_CREDENTIAL_VERSIONS[0],
        Some(asked) => EXEC_CREDENTIAL_VERSIONS
            .iter()
            .copied()
            .find(|known| *known == asked)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "KUBERNETES_EXEC_INFO asks for an ExecCredential apiVersion this tool \
                         does not write (it writes {})",
                        EXEC_CREDENTIAL_VERSIONS.join(" and ")
                    ),
                )
            })?,
    };
    let mut status = serde_json::json!({ "token": value });
    if let Some(at) = token.expires_at() {
        status["expirationTimestamp"] = rfc3339(at).into();
    }
    Ok(serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": status,
    })
    .to_string())
}

/// `exec`: runs `command` with the token in its environment (never on its command line,
/// which `ps` shows), without this tool's own secrets, and returns its exit status. A
/// command that cannot be found is 127 and one that cannot run 126, as in `env`, `sudo`
/// and the shells.
fn exec(command: &[String], token: &str, header: &str) -> Outcome {
    let Some((program, args)) = command.split_first() else {
        return Outcome::Exit(2);
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
    let status = match child.status() {
        Ok(status) => status,
        Err(error) => {
            let code = match error.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            fail(code, &format!("could not run {program}: {error}"));
            return Outcome::Exit(code);
        }
    };
    if let Some(code) = status.code() {
        return Outcome::Exit(u8::try_from(code & 0xff).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Outcome::Exit(u8::try_from(128 + (signal & 0x7f)).unwrap_or(1));
        }
    }
    Outcome::Exit(1)
}

/// One line of standard input, read a byte at a time straight from the file descriptor:
/// nothing past the line's end is consumed, so that `exec`'s command reads the rest.
fn stdin_line() -> Result<String, String> {
    use std::io::Read;
    const MAX: usize = 64 * 1024;
    #[cfg(unix)]
    let mut input = {
        use std::os::fd::AsFd;
        std::fs::File::from(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|error| error.to_string())?,
        )
    };
    #[cfg(not(unix))]
    let mut input = std::io::stdin();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= MAX => return Err("the line is too long".to_owned()),
            Ok(_) => line.push(byte[0]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "the line is not UTF-8".to_owned())
}

/// `time` as RFC 3339 in UTC, to the second (`2026-11-29T13:19:46Z`).
pub(crate) fn rfc3339(time: SystemTime) -> String {
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

/// This crate's log lines on standard error: warnings always (a cache or Redis that cannot
/// be used means a token request on every run, which may cost money), the rest with
/// `--verbose`. Other crates' logs (ureq's describe requests) are left out: only this crate
/// promises that its logs hold no secret.
struct StderrLogger;

impl StderrLogger {
    fn install(verbose: bool) {
        static LOGGER: StderrLogger = StderrLogger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(match verbose {
                true => log::LevelFilter::Debug,
                false => log::LevelFilter::Warn,
            });
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
                args::AFTER_HELP.contains(&format!("    {status}  ")),
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
    fn secrets_compare_whole() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
