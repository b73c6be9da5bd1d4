//! The command line, declared once with `clap`: each option beside the `EN_CORE_AUTH_*`
//! variable it stands for (a flag wins over its variable), before or after the command.
//!
//! Values are taken as text and checked by the library's [`Settings`] (or here, for what
//! only the command has), so that an error names the variable or flag and never shows the
//! value: a secret typed in the wrong place is not echoed.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand, ValueEnum};

use en_core_auth::config::{self, Settings};
use en_core_auth::{Error, ErrorKind};

pub(crate) const ABOUT: &str = "\
Print an OAuth2 / AWS Cognito token for scripts, from a cache shared by every run";

pub(crate) const AFTER_HELP: &str = "\
Keep tokens out of process listings: `en-core-auth header | curl -H @- URL` or
`en-core-auth exec -- sh -c 'curl -H \"$EN_CORE_AUTH_HEADER\" URL'`.

A token is requested only when the cache has no valid one; concurrent runs wait for
one request. Secrets come only from the environment or standard input, never from
flags (other users see command lines in `ps`): EN_CORE_AUTH_CLIENT_SECRET or
--client-secret-stdin, EN_CORE_AUTH_PASSWORD or --password-stdin. The cache holds
tokens, never client secrets or passwords (files of mode 0600).

EXIT STATUS:
    0  success (`status`: a usable token or login is stored)
    1  any other failure
    2  usage or configuration error (unknown option, missing or invalid setting)
    3  credentials rejected, or not logged in (`status`: nothing stored)
    4  the identity provider could not be reached, timed out or failed
    5  the identity provider sent a response that could not be understood
    6  the identity provider asks for a challenge this run cannot answer
    7  the token cache could not be used
  126  exec: the command is not executable; 127: the command was not found
Errors are one line on standard error, starting with `en-core-auth: `.";

#[derive(Debug, Parser)]
#[command(
    name = "en-core-auth",
    version,
    about = ABOUT,
    term_width = 80,
    max_term_width = 80,
    after_help = AFTER_HELP,
    after_long_help = after_long_help(),
    subcommand_required = true,
    arg_required_else_help = true,
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) options: Options,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The command line's definition. The variables' values are never shown in `--help`: a
/// Redis URL may hold a password.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|arg| arg.hide_env_values(true))
}

/// `--help`: the exit statuses, then the table of variables that programs read too
/// (`AuthMiddleware::from_env`).
fn after_long_help() -> String {
    let mut text =
        format!("{AFTER_HELP}\n\nENVIRONMENT (also read by AuthMiddleware::from_env):\n");
    for (name, what) in config::VARIABLES {
        text.push_str(&format!("    {name:<36} {what}\n"));
    }
    text.trim_end().to_owned()
}

/// The options every command takes, before or after it.
#[derive(Debug, Args)]
pub(crate) struct Options {
    /// OAuth2 token endpoint (client credentials)
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "EN_CORE_AUTH_TOKEN_URL",
        help_heading = "Identity provider"
    )]
    pub(crate) token_url: Option<String>,
    /// OAuth2 issuer (discovered); no client secret: a person's login
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "EN_CORE_AUTH_ISSUER",
        help_heading = "Identity provider"
    )]
    pub(crate) issuer: Option<String>,
    /// AWS Cognito user pool (SRP), e.g. eu-west-1_AbCdEf123
    #[arg(
        long,
        global = true,
        value_name = "ID",
        env = "EN_CORE_AUTH_USER_POOL_ID",
        help_heading = "Identity provider"
    )]
    pub(crate) user_pool_id: Option<String>,
    /// Client id
    #[arg(
        long,
        global = true,
        value_name = "ID",
        env = "EN_CORE_AUTH_CLIENT_ID",
        help_heading = "Identity provider"
    )]
    pub(crate) client_id: Option<String>,
    /// Scopes, space separated
    #[arg(
        long,
        global = true,
        value_name = "\"A B\"",
        env = "EN_CORE_AUTH_SCOPES",
        help_heading = "Identity provider"
    )]
    pub(crate) scopes: Option<String>,
    /// Extra token request parameter, e.g. audience=URL (repeatable)
    #[arg(
        long,
        global = true,
        value_name = "NAME=VALUE",
        help_heading = "Identity provider"
    )]
    pub(crate) param: Vec<String>,
    /// basic (default), post or private-key-jwt
    #[arg(
        long,
        global = true,
        value_name = "METHOD",
        env = "EN_CORE_AUTH_CLIENT_AUTH",
        help_heading = "Identity provider"
    )]
    pub(crate) client_auth: Option<String>,
    /// PEM key (RSA: RS256, EC: ES256) for private-key-jwt
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "EN_CORE_AUTH_PRIVATE_KEY",
        help_heading = "Identity provider"
    )]
    pub(crate) private_key: Option<String>,
    /// Cognito user name (or alias)
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "EN_CORE_AUTH_USERNAME",
        help_heading = "Identity provider"
    )]
    pub(crate) username: Option<String>,
    /// Cognito API endpoint (default: the pool's region)
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "EN_CORE_AUTH_ENDPOINT",
        help_heading = "Identity provider"
    )]
    pub(crate) endpoint: Option<String>,
    /// Cognito: remember this device (MFA once per device)
    #[arg(
        long,
        global = true,
        env = "EN_CORE_AUTH_REMEMBER_DEVICE",
        help_heading = "Identity provider"
    )]
    pub(crate) remember_device: bool,
    /// Read the client secret from the first line of standard input
    #[arg(long, global = true, help_heading = "Identity provider")]
    pub(crate) client_secret_stdin: bool,
    /// Read the password from standard input (after the client secret)
    #[arg(long, global = true, help_heading = "Identity provider")]
    pub(crate) password_stdin: bool,

    /// Which login (account) to use [default: default]
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "EN_CORE_AUTH_PROFILE",
        help_heading = "Storage"
    )]
    pub(crate) profile: Option<String>,
    /// Where tokens are kept: file (default), keyring (OS keychain) or none
    #[arg(
        long,
        global = true,
        value_name = "STORAGE",
        env = "EN_CORE_AUTH_TOKEN_STORAGE",
        help_heading = "Storage"
    )]
    pub(crate) token_storage: Option<String>,
    /// Token cache directory [default: ~/.cache/en-core-auth]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "EN_CORE_AUTH_CACHE_DIR",
        help_heading = "Storage"
    )]
    pub(crate) cache_dir: Option<String>,
    /// Keep the cache in Redis, shared by every machine
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "EN_CORE_AUTH_REDIS_URL",
        help_heading = "Storage"
    )]
    pub(crate) redis: Option<String>,
    /// Neither read nor write the cache
    #[arg(
        long,
        global = true,
        env = "EN_CORE_AUTH_NO_CACHE",
        help_heading = "Storage"
    )]
    pub(crate) no_cache: bool,
    /// Keep no refresh token in the cache
    #[arg(
        long,
        global = true,
        env = "EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE",
        help_heading = "Storage"
    )]
    pub(crate) no_refresh_token_cache: bool,

    /// Never print a token that expires sooner: renew it instead
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "EN_CORE_AUTH_MIN_TTL",
        help_heading = "Output"
    )]
    pub(crate) min_ttl: Option<String>,
    /// text (default), json or exec-credential (kubectl)
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        env = "EN_CORE_AUTH_FORMAT",
        help_heading = "Output"
    )]
    pub(crate) format: Option<String>,
    /// Same as --format json
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) json: bool,
    /// Print (or send) the ID token instead of the access token
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) id_token: bool,
    /// User name git-credential answers with [default: oauth2]
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "EN_CORE_AUTH_GIT_USERNAME",
        help_heading = "Output"
    )]
    pub(crate) git_username: Option<String>,
    /// Explain on standard error what happens (no secrets are shown)
    #[arg(short, long, global = true, help_heading = "Output")]
    pub(crate) verbose: bool,

    /// login: fixed loopback port for the browser's redirect (ssh -L)
    #[arg(
        long,
        global = true,
        value_name = "PORT",
        env = "EN_CORE_AUTH_CALLBACK_PORT",
        help_heading = "Login"
    )]
    pub(crate) callback_port: Option<String>,
    /// login: an exact loopback redirect URI
    #[arg(
        long,
        global = true,
        value_name = "URI",
        env = "EN_CORE_AUTH_REDIRECT_URI",
        help_heading = "Login"
    )]
    pub(crate) redirect_uri: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the access token
    Token,
    /// Print `Authorization: Bearer <access token>`
    Header,
    /// Run CMD with the token in its environment (EN_CORE_AUTH_TOKEN, _HEADER)
    #[command(
        after_help = "The exit status is CMD's (128+N when killed by signal N; \
                            127 when CMD is not found, 126 when it cannot run)."
    )]
    Exec {
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
    /// Show what is stored (no request is made); exit 3 when nothing is
    #[command(after_help = "Without --profile: every profile that holds a token or login.")]
    Status,
    /// Forget the cached token
    Clear,
    /// Log a person in with the browser (or --device) and keep the login
    #[command(
        after_help = "Then `token`, `header` and `exec` with the same --issuer and \
                            --client-id (and no client secret) use the login.\n\nOver SSH: \
                            --no-browser prints the URL; open it on your machine and paste the \
                            URL the browser ended on (even an error page), or forward \
                            --callback-port with ssh -L PORT:127.0.0.1:PORT."
    )]
    Login {
        /// Show a code to enter on another device instead
        #[arg(long)]
        device: bool,
        /// Print the URL and read the URL the browser ended on
        #[arg(long)]
        no_browser: bool,
    },
    /// Revoke the login at the server and forget it
    Logout,
    /// Git credential helper: `get` answers with the token as the password
    #[command(
        after_help = "git config credential.https://git.example.com.helper \\\n  \
                            '!en-core-auth git-credential'"
    )]
    GitCredential {
        /// What git asks
        operation: GitOperation,
    },
}

/// What git asks its credential helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GitOperation {
    Get,
    Store,
    Erase,
}

/// How `token` and `header` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    ExecCredential,
}

/// Flags that would put a secret on the command line: refused before `clap` sees them,
/// with the way to give the secret instead.
const REFUSED_FLAGS: &[(&str, &str)] = &[
    (
        "--client-secret",
        "EN_CORE_AUTH_CLIENT_SECRET or --client-secret-stdin",
    ),
    ("--password", "EN_CORE_AUTH_PASSWORD or --password-stdin"),
];

/// `Err` with a message when `args` hold a flag that would put a secret in `ps`.
pub(crate) fn refuse_secret_flags(args: &[String]) -> Result<(), String> {
    for arg in args.iter().take_while(|arg| *arg != "--") {
        let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        if let Some((flag, instead)) = REFUSED_FLAGS.iter().find(|(flag, _)| *flag == name) {
            return Err(format!(
                "{flag} is not accepted: command lines are visible to other users; use {instead}"
            ));
        }
    }
    Ok(())
}

/// The flag of each variable the command line declares, to name in errors about a value
/// given as a flag.
const FLAGS: &[(&str, &str, &str)] = &[
    ("token_url", "--token-url", "EN_CORE_AUTH_TOKEN_URL"),
    ("issuer", "--issuer", "EN_CORE_AUTH_ISSUER"),
    (
        "user_pool_id",
        "--user-pool-id",
        "EN_CORE_AUTH_USER_POOL_ID",
    ),
    ("client_id", "--client-id", "EN_CORE_AUTH_CLIENT_ID"),
    ("scopes", "--scopes", "EN_CORE_AUTH_SCOPES"),
    ("client_auth", "--client-auth", "EN_CORE_AUTH_CLIENT_AUTH"),
    ("private_key", "--private-key", "EN_CORE_AUTH_PRIVATE_KEY"),
    ("username", "--username", "EN_CORE_AUTH_USERNAME"),
    ("endpoint", "--endpoint", "EN_CORE_AUTH_ENDPOINT"),
    ("profile", "--profile", "EN_CORE_AUTH_PROFILE"),
    (
        "token_storage",
        "--token-storage",
        "EN_CORE_AUTH_TOKEN_STORAGE",
    ),
    ("cache_dir", "--cache-dir", "EN_CORE_AUTH_CACHE_DIR"),
    ("redis", "--redis", "EN_CORE_AUTH_REDIS_URL"),
    ("no_cache", "--no-cache", "EN_CORE_AUTH_NO_CACHE"),
    (
        "no_refresh_token_cache",
        "--no-refresh-token-cache",
        "EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE",
    ),
    ("min_ttl", "--min-ttl", "EN_CORE_AUTH_MIN_TTL"),
    ("format", "--format", "EN_CORE_AUTH_FORMAT"),
    (
        "callback_port",
        "--callback-port",
        "EN_CORE_AUTH_CALLBACK_PORT",
    ),
    (
        "redirect_uri",
        "--redirect-uri",
        "EN_CORE_AUTH_REDIRECT_URI",
    ),
];

/// A parsed command line and where each value came from.
pub(crate) struct Parsed {
    pub(crate) cli: Cli,
    matches: ArgMatches,
}

impl Parsed {
    pub(crate) fn new(cli: Cli, matches: ArgMatches) -> Parsed {
        Parsed { cli, matches }
    }

    /// Whether the value of option `id` was typed on the command line (not read from its
    /// variable or defaulted).
    fn typed_on_command_line(&self, id: &str) -> bool {
        self.matches.value_source(id) == Some(ValueSource::CommandLine)
            || self
                .matches
                .subcommand()
                .is_some_and(|(_, sub)| sub.value_source(id) == Some(ValueSource::CommandLine))
    }

    /// `message` about a setting, naming the flag where the value was a flag and the
    /// variable where it was a variable.
    pub(crate) fn name_the_source(&self, message: &str) -> String {
        FLAGS
            .iter()
            .filter(|(id, _, _)| self.typed_on_command_line(id))
            .fold(message.to_owned(), |message, (_, flag, var)| {
                message.replace(var, flag)
            })
    }

    /// The name to use for option `id` in a message: its flag or its variable.
    pub(crate) fn source_of(&self, id: &str) -> &'static str {
        FLAGS
            .iter()
            .find(|(known, _, _)| *known == id)
            .map_or("", |(_, flag, var)| {
                if self.typed_on_command_line(id) {
                    flag
                } else {
                    var
                }
            })
    }

    /// Whether a profile was asked for, by flag or variable.
    pub(crate) fn profile_given(&self) -> bool {
        self.cli.options.profile.is_some()
    }

    /// The library's settings from the options, the environment for the secrets, and
    /// standard input for `--client-secret-stdin` / `--password-stdin` (the secret's
    /// line first, then the password's).
    pub(crate) fn settings(
        &self,
        env: impl Fn(&str) -> Option<String>,
        mut read_stdin_line: impl FnMut() -> Result<String, String>,
    ) -> Result<Settings, Error> {
        let options = &self.cli.options;
        let usage = |message: String| Error::new(ErrorKind::Configuration, message);
        let client_secret = if options.client_secret_stdin {
            let line = read_stdin_line().map_err(|why| {
                usage(format!(
                    "could not read the client secret from standard input: {why}"
                ))
            })?;
            if line.is_empty() {
                return Err(usage(
                    "--client-secret-stdin: standard input has no client secret".to_owned(),
                ));
            }
            Some(line)
        } else {
            env("EN_CORE_AUTH_CLIENT_SECRET")
        };
        let password = if options.password_stdin {
            let line = read_stdin_line().map_err(|why| {
                usage(format!(
                    "could not read the password from standard input: {why}"
                ))
            })?;
            Some(line)
        } else {
            env("EN_CORE_AUTH_PASSWORD")
        };
        let yes = |on: bool| on.then(|| "1".to_owned());
        let lookup = |name: &str| -> Option<String> {
            match name {
                "EN_CORE_AUTH_CLIENT_SECRET" => client_secret.clone(),
                "EN_CORE_AUTH_PASSWORD" => password.clone(),
                "EN_CORE_AUTH_TOKEN_URL" => options.token_url.clone(),
                "EN_CORE_AUTH_ISSUER" => options.issuer.clone(),
                "EN_CORE_AUTH_USER_POOL_ID" => options.user_pool_id.clone(),
                "EN_CORE_AUTH_CLIENT_ID" => options.client_id.clone(),
                "EN_CORE_AUTH_SCOPES" => options.scopes.clone(),
                "EN_CORE_AUTH_CLIENT_AUTH" => options.client_auth.clone(),
                "EN_CORE_AUTH_PRIVATE_KEY" => options.private_key.clone(),
                "EN_CORE_AUTH_USERNAME" => options.username.clone(),
                "EN_CORE_AUTH_ENDPOINT" => options.endpoint.clone(),
                "EN_CORE_AUTH_PROFILE" => options.profile.clone(),
                "EN_CORE_AUTH_TOKEN_STORAGE" => options.token_storage.clone(),
                "EN_CORE_AUTH_CACHE_DIR" => options.cache_dir.clone(),
                "EN_CORE_AUTH_REDIS_URL" => options.redis.clone(),
                "EN_CORE_AUTH_NO_CACHE" => yes(options.no_cache),
                "EN_CORE_AUTH_NO_REFRESH_TOKEN_CACHE" => yes(options.no_refresh_token_cache),
                "EN_CORE_AUTH_CALLBACK_PORT" => options.callback_port.clone(),
                "EN_CORE_AUTH_REDIRECT_URI" => options.redirect_uri.clone(),
                other => env(other),
            }
        };
        let settings = Settings::from_vars(lookup).map_err(|error| {
            let message = error.to_string();
            let detail = message
                .strip_prefix(&format!("{}: ", ErrorKind::Configuration))
                .unwrap_or(&message);
            usage(self.name_the_source(detail))
        })?;
        options
            .param
            .iter()
            .try_fold(settings, |settings, param| match param.split_once('=') {
                Some((name, value)) if !name.is_empty() => Ok(settings.with_parameter(name, value)),
                _ => Err(usage("--param needs NAME=VALUE".to_owned())),
            })
    }

    /// `--format` and `--json`, checked against the command.
    pub(crate) fn format(&self) -> Result<Format, Error> {
        let options = &self.cli.options;
        let usage = |message: String| Error::new(ErrorKind::Configuration, message);
        let name = self.source_of("format");
        let format = match (options.format.as_deref().map(str::trim), options.json) {
            (None | Some(""), false) | (Some("text"), false) => Format::Text,
            (None | Some(""), true) | (Some("json"), _) => Format::Json,
            (Some("exec-credential"), false) => Format::ExecCredential,
            (Some("text" | "exec-credential"), true) => {
                return Err(usage(format!("--json and {name} disagree: choose one")));
            }
            (Some(_), _) => {
                return Err(usage(format!(
                    "{name} must be text, json or exec-credential"
                )));
            }
        };
        if format == Format::ExecCredential && !matches!(self.cli.command, Command::Token) {
            return Err(usage(format!(
                "{name} exec-credential is for `token` only (kubectl reads a token)"
            )));
        }
        Ok(format)
    }

    /// `--min-ttl` in seconds.
    pub(crate) fn min_ttl(&self) -> Result<Option<u64>, Error> {
        match self.cli.options.min_ttl.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| {
                Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "{} must be a whole number of seconds",
                        self.source_of("min_ttl")
                    ),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Parsed, clap::Error> {
        // clap reads `env = …` from the process environment: the tests give only flags
        // and use `vars` for what the library reads through the lookup.
        let _ = vars;
        let matches = command()
            .try_get_matches_from(std::iter::once("en-core-auth").chain(args.iter().copied()))?;
        let cli = Cli::from_arg_matches(&matches)?;
        Ok(Parsed::new(cli, matches))
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn no_stdin() -> Result<String, String> {
        panic!("standard input read without a -stdin option")
    }

    const OAUTH: &[&str] = &[
        "--token-url",
        "https://flag.example/token",
        "--client-id",
        "flag-client",
    ];

    #[test]
    fn options_after_the_command_and_before_it() {
        let parsed = parse(&["exec", "-v", "--min-ttl", "60", "--", "curl", "-v"], &[]).unwrap();
        assert!(parsed.cli.options.verbose);
        assert_eq!(parsed.min_ttl().unwrap(), Some(60));
        let Command::Exec { command } = &parsed.cli.command else {
            panic!("not exec")
        };
        assert_eq!(command, &["curl", "-v"]);
        // Without `--`, the command's own options stay its own.
        let parsed = parse(&["--json", "exec", "curl", "--json"], &[]).unwrap();
        let Command::Exec { command } = &parsed.cli.command else {
            panic!("not exec")
        };
        assert_eq!(command, &["curl", "--json"]);
        assert_eq!(parsed.format().unwrap(), Format::Json);
        let parsed = parse(&["token", "--id-token", "--scopes=read"], &[]).unwrap();
        assert!(parsed.cli.options.id_token);
        assert_eq!(parsed.cli.options.scopes.as_deref(), Some("read"));
    }

    #[test]
    fn secrets_as_flags_are_refused_without_echoing_them() {
        for args in [
            &["token", "--client-secret", "fl4g-s3cr3t"][..],
            &["token", "--client-secret=fl4g-s3cr3t"],
            &["--password=fl4g-s3cr3t", "token"],
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let err = refuse_secret_flags(&args).unwrap_err();
            assert!(err.contains("not accepted"), "{err}");
            assert!(!err.contains("fl4g-s3cr3t"));
        }
        // What a command run by `exec` takes is its own.
        let args: Vec<String> = ["exec", "--", "login", "--password=x"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert!(refuse_secret_flags(&args).is_ok());
    }

    #[test]
    fn secrets_from_standard_input_secret_first() {
        let mut lines = vec!["pw-from-stdin".to_string(), "secret-from-stdin".to_string()];
        let parsed = parse(
            &[
                "--password-stdin",
                "--client-secret-stdin",
                "token",
                "--user-pool-id",
                "eu-west-1_Pool",
                "--client-id",
                "c",
                "--username",
                "alice",
            ],
            &[],
        )
        .unwrap();
        let settings = parsed
            .settings(
                env_of(&[
                    ("EN_CORE_AUTH_CLIENT_SECRET", "ignored"),
                    ("EN_CORE_AUTH_PASSWORD", "ignored"),
                ]),
                || Ok(lines.pop().unwrap()),
            )
            .unwrap();
        assert_eq!(settings.client_info().client_secret(), "secret-from-stdin");
        assert_eq!(settings.username(), Some("alice"));
        assert!(lines.is_empty());
    }

    #[test]
    fn errors_name_the_flag_when_the_value_was_a_flag() {
        let mut args = OAUTH.to_vec();
        args.extend(["--client-auth", "m4gic", "token"]);
        let parsed = parse(&args, &[]).unwrap();
        let err = parsed
            .settings(env_of(&[("EN_CORE_AUTH_CLIENT_SECRET", "s")]), no_stdin)
            .unwrap_err();
        assert!(err.to_string().contains("--client-auth must be"), "{err}");
        assert!(!err.to_string().contains("m4gic"));
        let parsed = parse(&["token", "--min-ttl=soon"], &[]).unwrap();
        let err = parsed.min_ttl().unwrap_err().to_string();
        assert!(err.contains("--min-ttl must be a whole number"), "{err}");
        assert!(!err.contains("soon"));
        let parsed = parse(&["token", "--format=yaml"], &[]).unwrap();
        assert!(
            parsed
                .format()
                .unwrap_err()
                .to_string()
                .contains("--format must be")
        );
    }

    #[test]
    fn usage_errors() {
        let parsed = parse(&["header", "--format", "exec-credential"], &[]).unwrap();
        assert!(
            parsed
                .format()
                .unwrap_err()
                .to_string()
                .contains("`token` only")
        );
        let mut args = OAUTH.to_vec();
        args.extend(["--param", "novalue", "token"]);
        let parsed = parse(&args, &[]).unwrap();
        let err = parsed
            .settings(env_of(&[("EN_CORE_AUTH_CLIENT_SECRET", "s")]), no_stdin)
            .unwrap_err();
        assert!(err.to_string().contains("NAME=VALUE"), "{err}");
        let mut args = OAUTH.to_vec();
        args.extend(["--redis", "redis://:pw@127.0.0.1/0", "--no-cache", "token"]);
        let parsed = parse(&args, &[]).unwrap();
        let err = parsed
            .settings(env_of(&[("EN_CORE_AUTH_CLIENT_SECRET", "s")]), no_stdin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--redis") && err.contains("--no-cache"),
            "{err}"
        );
        assert!(!err.contains("pw@"), "{err}");
        for args in [
            &["exec"][..],
            &["exec", "--"],
            &["git-credential"],
            &["git-credential", "fill"],
            &["tokne"],
            &["token", "--bogus"],
        ] {
            assert!(parse(args, &[]).is_err(), "{args:?}");
        }
    }

    #[test]
    fn help_fits_80_columns_and_lists_every_variable() {
        let mut command = command();
        let help = command.render_long_help().to_string();
        for line in help.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line}");
        }
        for (name, _) in config::VARIABLES {
            assert!(help.contains(name), "{name} not in --help");
        }
        for sub in ["token", "exec", "login", "status", "git-credential"] {
            let help = command
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            for line in help.lines() {
                assert!(line.chars().count() <= 80, "{sub}: too wide: {line}");
            }
        }
    }
}
