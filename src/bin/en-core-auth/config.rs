//! The command line and the environment, turned into a [`Config`].
//!
//! Kept free of I/O (the environment and standard input come in as closures) so that every
//! rule is unit-tested: flags win over the environment, empty values count as unset, and
//! secrets are refused as flag values because command lines show in `ps`.

use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
en-core-auth: print an OAuth2 / AWS Cognito token for scripts, from a cache shared by every run

USAGE:
    en-core-auth [OPTIONS] token     print the access token
    en-core-auth [OPTIONS] header    print `Authorization: Bearer <access token>`
    en-core-auth [OPTIONS] exec -- CMD [ARGS...]
                                     run CMD with the token in its environment
                                     (EN_CORE_AUTH_TOKEN, EN_CORE_AUTH_HEADER); the exit
                                     status is CMD's (128+N when killed by signal N)
    en-core-auth [OPTIONS] status    show what the cache holds (no request is made)
    en-core-auth [OPTIONS] clear     forget the cached token
    en-core-auth login [--device] [--no-browser]
                                     log a person in with the browser (or a code typed
                                     on another device) at --issuer with a public
                                     --client-id; `token` and `header` then use that
                                     login and renew it (`en-core-auth login --help`)
    en-core-auth logout              revoke the login at the server and forget it
    en-core-auth [OPTIONS] git-credential get|store|erase
                                     git credential helper: `get` answers with the token
                                     as the password, `erase` (git saw it rejected)
                                     clears the cache; configure it with
                                     git config credential.https://git.example.com.helper \
                                       '!en-core-auth git-credential'

Keep tokens out of process listings: `en-core-auth header | curl -H @- URL` (curl 7.55+)
or `en-core-auth exec -- sh -c 'curl -H \"$EN_CORE_AUTH_HEADER\" URL'`, not
`curl -H \"$(en-core-auth header)\"`, which puts the token on curl's command line.

A token is requested only when the cache has no valid one; concurrent runs wait for one
request instead of each making their own. Every option can come from the environment; a
flag wins over its variable. Secrets are read only from the environment or standard input,
never from flags (other users can see command lines in `ps`).

OAUTH2 CLIENT CREDENTIALS:
    --token-url URL        EN_CORE_AUTH_TOKEN_URL      token endpoint, or:
    --issuer URL           EN_CORE_AUTH_ISSUER         issuer; the token endpoint is discovered
    --client-id ID         EN_CORE_AUTH_CLIENT_ID      client id
                           EN_CORE_AUTH_CLIENT_SECRET  client secret (or --client-secret-stdin)
    --scopes \"A B\"         EN_CORE_AUTH_SCOPES         scopes, space separated
    --param NAME=VALUE                                 extra token request parameter, e.g.
                                                       audience or resource (repeatable)
    --client-auth METHOD   EN_CORE_AUTH_CLIENT_AUTH    basic (default), post or private-key-jwt
    --private-key FILE     EN_CORE_AUTH_PRIVATE_KEY    PEM key (RSA: RS256, EC: ES256) for
                                                       private-key-jwt; no client secret needed

AWS COGNITO USER POOL (SRP):
    --user-pool-id ID      EN_CORE_AUTH_USER_POOL_ID   user pool, e.g. eu-west-1_AbCdEf123
    --client-id ID         EN_CORE_AUTH_CLIENT_ID      app client id
                           EN_CORE_AUTH_CLIENT_SECRET  app client secret, if the client has one
    --username NAME        EN_CORE_AUTH_USERNAME       user name (or alias)
                           EN_CORE_AUTH_PASSWORD       password (or --password-stdin)
    --endpoint URL         EN_CORE_AUTH_ENDPOINT       Cognito API endpoint (default: the pool's region)
    --remember-device      EN_CORE_AUTH_REMEMBER_DEVICE=1  remember this device (Cognito device
                           tracking): MFA once per device; kept beside the token (0600)
    Challenges (MFA and one-time codes, a new password, authenticator set-up) are asked on
    the terminal, codes and passwords without echo; with no terminal, exit status 6.

OTHER OPTIONS:
    --client-secret-stdin  read the client secret from the first line of standard input
    --password-stdin       read the password from standard input (the line after the client
                           secret when both are read)
    --cache-dir DIR        EN_CORE_AUTH_CACHE_DIR      token cache directory (default:
                           $XDG_CACHE_HOME/en-core-auth, else ~/.cache/en-core-auth)
    --no-refresh-token-cache                           do not write refresh tokens to the cache
    --no-cache                                         neither read nor write the cache
    --redis URL            EN_CORE_AUTH_REDIS_URL      keep the cache in Redis, shared by every
                                                       machine (redis:// or rediss://; prefer
                                                       the variable when the URL has a password)
    --min-ttl SECONDS      EN_CORE_AUTH_MIN_TTL        never print a token that expires sooner:
                                                       renew it instead
    --json                                             token, type, expiry (RFC 3339) and scopes
                                                       as JSON (`status`: the cache as JSON)
    --format FORMAT                                    text (default), json, or exec-credential
                                                       (kubectl's client.authentication.k8s.io/v1)
    --git-username NAME    EN_CORE_AUTH_GIT_USERNAME   user name git-credential answers with
                                                       (default oauth2; GitHub: x-access-token)
    --id-token             print (or put in the header) the ID token instead of the access token
    -v, --verbose          explain on standard error what happens (no secrets are shown)
    -h, --help             print this help
    -V, --version          print the version

The cache holds tokens (refresh tokens too, unless --no-refresh-token-cache), never client
secrets or passwords: one file per credential set, mode 0600, in a directory of mode 0700.

EXIT STATUS:
    0  success: the token (or header) is on standard output
    1  any other failure
    2  usage or configuration error (unknown option, missing or invalid setting)
    3  the identity provider rejected the credentials (client secret, user, password)
    4  the identity provider could not be reached, timed out or failed (retry later)
    5  the identity provider sent a response that could not be understood
    6  the identity provider asks for a challenge (new password, MFA) this tool cannot answer
    7  the token cache could not be used (I/O error, lock held too long by another run)
Errors are one line on standard error, starting with `en-core-auth: `.
";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Token,
    Header,
    /// Run this program and its arguments with the token in its environment.
    Exec(Vec<String>),
    Status,
    Clear,
    /// A git credential helper operation: `get`, `store` or `erase`.
    GitCredential(GitOperation),
}

/// What git asks its credential helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientAuthChoice {
    Basic,
    Post,
    PrivateKeyJwt(PathBuf),
}

/// Which identity provider, and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provider {
    /// OAuth2 client credentials at a token URL, or at an issuer's discovered one.
    OAuth2 {
        token_url: Option<String>,
        issuer: Option<String>,
        scopes: Vec<String>,
        params: Vec<(String, String)>,
        client_auth: ClientAuthChoice,
    },
    /// A Cognito user pool, with SRP.
    Srp {
        user_pool_id: String,
        username: String,
        password: Secret,
        endpoint: Option<String>,
    },
}

/// A string that `Debug` does not show.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) command: Command,
    pub(crate) provider: Provider,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) cache_refresh_tokens: bool,
    pub(crate) id_token: bool,
    pub(crate) verbose: bool,
    pub(crate) no_cache: bool,
    /// May hold a password: `Debug` does not show it.
    pub(crate) redis_url: Option<Secret>,
    pub(crate) min_ttl: Option<u64>,
    pub(crate) format: Format,
    pub(crate) git_username: String,
    /// Cognito device tracking (issue 11).
    pub(crate) remember_device: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    Help,
    Version,
    Run(Box<Config>),
}

/// A usage or configuration error: exit status 2. The message never holds a value the
/// user gave, so that a secret typed in the wrong place is not echoed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

/// Flags that take a value, and the environment variable each stands for.
const VALUE_FLAGS: &[(&str, &str)] = &[
    ("--token-url", "EN_CORE_AUTH_TOKEN_URL"),
    ("--issuer", "EN_CORE_AUTH_ISSUER"),
    ("--client-id", "EN_CORE_AUTH_CLIENT_ID"),
    ("--scopes", "EN_CORE_AUTH_SCOPES"),
    ("--user-pool-id", "EN_CORE_AUTH_USER_POOL_ID"),
    ("--username", "EN_CORE_AUTH_USERNAME"),
    ("--endpoint", "EN_CORE_AUTH_ENDPOINT"),
    ("--cache-dir", "EN_CORE_AUTH_CACHE_DIR"),
    ("--client-auth", "EN_CORE_AUTH_CLIENT_AUTH"),
    ("--private-key", "EN_CORE_AUTH_PRIVATE_KEY"),
    ("--redis", "EN_CORE_AUTH_REDIS_URL"),
    ("--min-ttl", "EN_CORE_AUTH_MIN_TTL"),
    ("--format", "EN_CORE_AUTH_FORMAT"),
    ("--git-username", "EN_CORE_AUTH_GIT_USERNAME"),
];

/// Flags that would put a secret on the command line.
const REFUSED_FLAGS: &[(&str, &str)] = &[
    (
        "--client-secret",
        "EN_CORE_AUTH_CLIENT_SECRET or --client-secret-stdin",
    ),
    ("--password", "EN_CORE_AUTH_PASSWORD or --password-stdin"),
];

/// Parses `args` (without the program name). `env` reads a variable; `read_stdin_line`
/// reads the next line of standard input (called only for the `-stdin` options).
pub(crate) fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
    mut read_stdin_line: impl FnMut() -> Result<String, String>,
) -> Result<Parsed, UsageError> {
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    let mut command = None;
    let (mut secret_stdin, mut password_stdin) = (false, false);
    let (mut id_token, mut verbose, mut cache_refresh_tokens) = (false, false, true);
    let (mut no_cache, mut json) = (false, false);
    let mut params: Vec<(String, String)> = Vec::new();
    let mut remember_device = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--name=value` and `--name value` are the same; the value is never echoed.
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value)),
            _ => (arg.clone(), None),
        };
        let takes_no_value = |flag: &str| match inline_value {
            Some(_) => Err(UsageError(format!("{flag} takes no value"))),
            None => Ok(()),
        };
        if let Some((flag, env_var)) = VALUE_FLAGS.iter().find(|(flag, _)| *flag == name) {
            let value = match inline_value {
                Some(value) => value.to_owned(),
                None => args.next().ok_or_else(|| {
                    UsageError(format!("{flag} needs a value (or set {env_var})"))
                })?,
            };
            flags.retain(|(seen, _)| seen != flag);
            flags.push((flag, value));
            continue;
        }
        if let Some((flag, instead)) = REFUSED_FLAGS.iter().find(|(flag, _)| *flag == name) {
            return Err(UsageError(format!(
                "{flag} is not accepted: command lines are visible to other users; use {instead}"
            )));
        }
        if name == "--param" {
            let value = match inline_value {
                Some(value) => value.to_owned(),
                None => args
                    .next()
                    .ok_or_else(|| UsageError("--param needs NAME=VALUE".to_owned()))?,
            };
            let (param, value) = value
                .split_once('=')
                .filter(|(param, _)| !param.is_empty())
                .ok_or_else(|| UsageError("--param needs NAME=VALUE".to_owned()))?;
            params.push((param.to_owned(), value.to_owned()));
            continue;
        }
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--no-cache" => {
                takes_no_value("--no-cache")?;
                no_cache = true;
            }
            "--json" => {
                takes_no_value("--json")?;
                json = true;
            }
            "exec" if command.is_none() => {
                let mut rest: Vec<String> = args.by_ref().collect();
                if rest.first().is_some_and(|first| first == "--") {
                    rest.remove(0);
                }
                if rest.is_empty() {
                    return Err(UsageError(
                        "exec needs a command: en-core-auth exec -- CMD [ARGS...]".to_owned(),
                    ));
                }
                command = Some(Command::Exec(rest));
            }
            "status" if command.is_none() => command = Some(Command::Status),
            "git-credential" if command.is_none() => {
                let operation = match args.next().as_deref() {
                    Some("get") => GitOperation::Get,
                    Some("store") => GitOperation::Store,
                    Some("erase") => GitOperation::Erase,
                    _ => {
                        return Err(UsageError(
                            "git-credential needs get, store or erase".to_owned(),
                        ));
                    }
                };
                command = Some(Command::GitCredential(operation));
            }
            "clear" if command.is_none() => command = Some(Command::Clear),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--client-secret-stdin" => {
                takes_no_value("--client-secret-stdin")?;
                secret_stdin = true;
            }
            "--password-stdin" => {
                takes_no_value("--password-stdin")?;
                password_stdin = true;
            }
            "--id-token" => {
                takes_no_value("--id-token")?;
                id_token = true;
            }
            "--remember-device" => {
                takes_no_value("--remember-device")?;
                remember_device = true;
            }
            "--no-refresh-token-cache" => {
                takes_no_value("--no-refresh-token-cache")?;
                cache_refresh_tokens = false;
            }
            "-v" | "--verbose" => verbose = true,
            "token" | "header" if command.is_none() => {
                command = Some(if name == "token" {
                    Command::Token
                } else {
                    Command::Header
                });
            }
            other if other.starts_with('-') => {
                let shown = if other.len() <= 40 {
                    other
                } else {
                    "an option"
                };
                return Err(UsageError(format!("unknown option {shown} (see --help)")));
            }
            _ => {
                return Err(UsageError(
                    "unexpected argument: the command is `token`, `header`, `exec`, `status` or \
                     `clear`, given once (see --help)"
                        .to_owned(),
                ));
            }
        }
    }
    let command = command.ok_or_else(|| {
        UsageError(
            "no command: use `en-core-auth token` or `en-core-auth header` (see --help)".to_owned(),
        )
    })?;

    // A flag wins over its variable; an empty value is no value.
    let setting = |flag: &str| -> Option<String> {
        let from_flag = flags
            .iter()
            .find(|(seen, _)| *seen == flag)
            .map(|(_, value)| value.clone());
        let env_var = VALUE_FLAGS
            .iter()
            .find(|(known, _)| *known == flag)
            .map(|(_, env_var)| *env_var)?;
        from_flag
            .or_else(|| env(env_var))
            .filter(|value| !value.trim().is_empty())
    };

    // Standard input: the client secret first, then the password, one line each.
    let client_secret = if secret_stdin {
        let line = read_stdin_line().map_err(|why| {
            UsageError(format!(
                "could not read the client secret from standard input: {why}"
            ))
        })?;
        if line.is_empty() {
            return Err(UsageError(
                "--client-secret-stdin: standard input has no client secret".to_owned(),
            ));
        }
        line
    } else {
        env("EN_CORE_AUTH_CLIENT_SECRET").unwrap_or_default()
    };
    let password = if password_stdin {
        let line = read_stdin_line().map_err(|why| {
            UsageError(format!(
                "could not read the password from standard input: {why}"
            ))
        })?;
        Some(line).filter(|line| !line.is_empty())
    } else {
        env("EN_CORE_AUTH_PASSWORD").filter(|value| !value.is_empty())
    };

    let client_id = setting("--client-id").ok_or_else(|| {
        UsageError("no client id: set EN_CORE_AUTH_CLIENT_ID or --client-id".to_owned())
    })?;

    let client_auth = match setting("--client-auth").as_deref() {
        None | Some("basic") => ClientAuthChoice::Basic,
        Some("post") => ClientAuthChoice::Post,
        Some("private-key-jwt") => ClientAuthChoice::PrivateKeyJwt(
            setting("--private-key").map(PathBuf::from).ok_or_else(|| {
                UsageError(
                    "private-key-jwt needs a key: set EN_CORE_AUTH_PRIVATE_KEY or --private-key"
                        .to_owned(),
                )
            })?,
        ),
        Some(_) => {
            return Err(UsageError(
                "--client-auth must be basic, post or private-key-jwt".to_owned(),
            ));
        }
    };
    let min_ttl =
        match setting("--min-ttl") {
            None => None,
            Some(value) => Some(value.trim().parse::<u64>().map_err(|_| {
                UsageError("--min-ttl must be a whole number of seconds".to_owned())
            })?),
        };
    let format = match (setting("--format").as_deref(), json) {
        (None, false) | (Some("text"), false) => Format::Text,
        (None, true) | (Some("json"), _) => Format::Json,
        (Some("exec-credential"), false) => Format::ExecCredential,
        (Some("text" | "exec-credential"), true) => {
            return Err(UsageError(
                "--json and --format disagree: choose one".to_owned(),
            ));
        }
        (Some(_), _) => {
            return Err(UsageError(
                "--format must be text, json or exec-credential".to_owned(),
            ));
        }
    };
    let user_pool_id = setting("--user-pool-id");
    let token_url = setting("--token-url");
    let issuer = setting("--issuer");
    let provider = match (user_pool_id, &token_url, &issuer) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(UsageError(
                "both a user pool (SRP) and an OAuth2 token URL or issuer are set: choose one"
                    .to_owned(),
            ));
        }
        (None, Some(_), Some(_)) => {
            return Err(UsageError(
                "both a token URL and an issuer are set: choose one".to_owned(),
            ));
        }
        (None, None, None) => {
            return Err(UsageError(
                "no identity provider: set EN_CORE_AUTH_TOKEN_URL, EN_CORE_AUTH_ISSUER or \
                 EN_CORE_AUTH_USER_POOL_ID (see --help)"
                    .to_owned(),
            ));
        }
        (Some(user_pool_id), None, None) => {
            let username = setting("--username").ok_or_else(|| {
                UsageError("SRP needs a user: set EN_CORE_AUTH_USERNAME or --username".to_owned())
            })?;
            let password = password.ok_or_else(|| {
                UsageError(
                    "SRP needs a password: set EN_CORE_AUTH_PASSWORD or use --password-stdin"
                        .to_owned(),
                )
            })?;
            Provider::Srp {
                user_pool_id,
                username,
                password: Secret(password),
                endpoint: setting("--endpoint"),
            }
        }
        (None, token_url, issuer) => {
            // An issuer without a secret is a person's stored login (`en-core-auth login`).
            if client_secret.is_empty()
                && !matches!(client_auth, ClientAuthChoice::PrivateKeyJwt(_))
                && (issuer.is_none() || token_url.is_some())
            {
                return Err(UsageError(
                    "client credentials need a client secret: set EN_CORE_AUTH_CLIENT_SECRET \
                     or use --client-secret-stdin"
                        .to_owned(),
                ));
            }
            let scopes = setting("--scopes")
                .map(|scopes| scopes.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            Provider::OAuth2 {
                token_url: token_url.clone(),
                issuer: issuer.clone(),
                scopes,
                params: params.clone(),
                client_auth,
            }
        }
    };
    Ok(Parsed::Run(Box::new(Config {
        command,
        provider,
        client_id,
        client_secret: Secret(client_secret),
        cache_dir: setting("--cache-dir").map(PathBuf::from),
        cache_refresh_tokens,
        id_token,
        verbose,
        no_cache,
        redis_url: setting("--redis").map(Secret),
        min_ttl,
        format,
        git_username: setting("--git-username").unwrap_or_else(|| "oauth2".to_owned()),
        remember_device: remember_device
            || env("EN_CORE_AUTH_REMEMBER_DEVICE").is_some_and(|v| v == "1" || v == "true"),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn no_stdin() -> Result<String, String> {
        panic!("standard input read without a -stdin option")
    }

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, UsageError> {
        let args = args.iter().map(|a| a.to_string());
        match parse(args, env_of(vars), no_stdin)? {
            Parsed::Run(config) => Ok(*config),
            other => panic!("unexpected {other:?}"),
        }
    }

    const OAUTH: &[(&str, &str)] = &[
        ("EN_CORE_AUTH_TOKEN_URL", "https://env.example/token"),
        ("EN_CORE_AUTH_CLIENT_ID", "env-client"),
        ("EN_CORE_AUTH_CLIENT_SECRET", "env-s3cr3t"),
        ("EN_CORE_AUTH_SCOPES", "  read   write "),
    ];

    #[test]
    fn oauth2_from_the_environment() {
        let config = run(&["token"], OAUTH).unwrap();
        assert_eq!(config.command, Command::Token);
        assert_eq!(config.client_id, "env-client");
        assert_eq!(config.client_secret.0, "env-s3cr3t");
        assert_eq!(
            config.provider,
            Provider::OAuth2 {
                token_url: Some("https://env.example/token".into()),
                issuer: None,
                scopes: vec!["read".into(), "write".into()],
                params: vec![],
                client_auth: ClientAuthChoice::Basic,
            }
        );
        assert!(config.cache_refresh_tokens);
        assert!(!config.id_token);
    }

    #[test]
    fn flags_win_over_the_environment_in_both_spellings() {
        let config = run(
            &[
                "--client-id",
                "flag-client",
                "--scopes=admin",
                "header",
                "--token-url=https://flag.example/token",
                "--cache-dir",
                "/tmp/cache",
                "--id-token",
                "--no-refresh-token-cache",
            ],
            OAUTH,
        )
        .unwrap();
        assert_eq!(config.command, Command::Header);
        assert_eq!(config.client_id, "flag-client");
        assert_eq!(config.cache_dir, Some(PathBuf::from("/tmp/cache")));
        assert!(config.id_token);
        assert!(!config.cache_refresh_tokens);
        assert_eq!(
            config.provider,
            Provider::OAuth2 {
                token_url: Some("https://flag.example/token".into()),
                issuer: None,
                scopes: vec!["admin".into()],
                params: vec![],
                client_auth: ClientAuthChoice::Basic,
            }
        );
    }

    #[test]
    fn secrets_as_flags_are_refused_without_echoing_them() {
        for args in [
            &["token", "--client-secret", "fl4g-s3cr3t"][..],
            &["token", "--client-secret=fl4g-s3cr3t"],
            &["token", "--password=fl4g-s3cr3t"],
        ] {
            let err = run(args, OAUTH).unwrap_err();
            assert!(err.0.contains("not accepted"), "{}", err.0);
            assert!(!err.0.contains("fl4g-s3cr3t"));
        }
        // Nor is a stray value echoed.
        let err = run(&["token", "fl4g-s3cr3t"], OAUTH).unwrap_err();
        assert!(!err.0.contains("fl4g-s3cr3t"));
        let err = run(&["token", "--bogus=fl4g-s3cr3t"], OAUTH).unwrap_err();
        assert!(err.0.contains("--bogus") && !err.0.contains("fl4g-s3cr3t"));
    }

    #[test]
    fn secrets_from_standard_input_secret_first() {
        let mut lines = vec!["pw-from-stdin".to_string(), "secret-from-stdin".to_string()];
        let parsed = parse(
            ["--password-stdin", "--client-secret-stdin", "token"].map(String::from),
            env_of(&[
                ("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_Pool"),
                ("EN_CORE_AUTH_CLIENT_ID", "c"),
                ("EN_CORE_AUTH_CLIENT_SECRET", "ignored"),
                ("EN_CORE_AUTH_USERNAME", "alice"),
                ("EN_CORE_AUTH_PASSWORD", "ignored"),
            ]),
            || Ok(lines.pop().unwrap()),
        )
        .unwrap();
        let Parsed::Run(config) = parsed else {
            panic!("not a run")
        };
        assert_eq!(config.client_secret.0, "secret-from-stdin");
        assert_eq!(
            config.provider,
            Provider::Srp {
                user_pool_id: "eu-west-1_Pool".into(),
                username: "alice".into(),
                password: Secret("pw-from-stdin".into()),
                endpoint: None,
            }
        );
        // And Debug does not show them.
        let shown = format!("{config:?}");
        assert!(!shown.contains("pw-from-stdin") && !shown.contains("secret-from-stdin"));
    }

    #[test]
    fn missing_or_conflicting_settings_are_usage_errors() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            OAUTH.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        for (vars, expect) in [
            (without("EN_CORE_AUTH_CLIENT_ID"), "no client id"),
            (without("EN_CORE_AUTH_TOKEN_URL"), "no identity provider"),
            (without("EN_CORE_AUTH_CLIENT_SECRET"), "client secret"),
        ] {
            let err = run(&["token"], &vars).unwrap_err();
            assert!(err.0.contains(expect), "{}", err.0);
        }
        let mut both = OAUTH.to_vec();
        both.push(("EN_CORE_AUTH_ISSUER", "https://issuer.example"));
        assert!(run(&["token"], &both).unwrap_err().0.contains("choose one"));
        let mut pool = OAUTH.to_vec();
        pool.push(("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_P"));
        assert!(run(&["token"], &pool).unwrap_err().0.contains("choose one"));

        // An empty variable is unset.
        let mut empty = without("EN_CORE_AUTH_CLIENT_ID");
        empty.push(("EN_CORE_AUTH_CLIENT_ID", ""));
        assert!(
            run(&["token"], &empty)
                .unwrap_err()
                .0
                .contains("no client id")
        );
    }

    #[test]
    fn usage_errors() {
        assert!(run(&[], OAUTH).unwrap_err().0.contains("no command"));
        assert!(run(&["token", "header"], OAUTH).is_err());
        assert!(
            run(&["token", "--token-url"], OAUTH)
                .unwrap_err()
                .0
                .contains("needs a value")
        );
        assert!(
            run(&["token", "--id-token=yes"], OAUTH)
                .unwrap_err()
                .0
                .contains("takes no value")
        );
        let srp_without_password = [
            ("EN_CORE_AUTH_USER_POOL_ID", "eu-west-1_P"),
            ("EN_CORE_AUTH_CLIENT_ID", "c"),
            ("EN_CORE_AUTH_USERNAME", "alice"),
        ];
        assert!(
            run(&["token"], &srp_without_password)
                .unwrap_err()
                .0
                .contains("password")
        );
    }

    #[test]
    fn shell_habit_options() {
        let config = run(
            &[
                "--param",
                "audience=https://api.example",
                "--param=resource=urn:x",
                "--min-ttl",
                "60",
                "--json",
                "--no-cache",
                "--client-auth=post",
                "--redis",
                "redis://:pw@127.0.0.1/0",
                "exec",
                "--",
                "curl",
                "--json",
            ],
            OAUTH,
        )
        .unwrap();
        assert_eq!(
            config.command,
            Command::Exec(vec!["curl".into(), "--json".into()])
        );
        assert_eq!(config.min_ttl, Some(60));
        assert_eq!(config.format, Format::Json);
        assert!(config.no_cache);
        assert!(!format!("{config:?}").contains("pw@"));
        let Provider::OAuth2 {
            params,
            client_auth,
            ..
        } = &config.provider
        else {
            panic!("not OAuth2")
        };
        assert_eq!(
            params,
            &[
                ("audience".to_owned(), "https://api.example".to_owned()),
                ("resource".to_owned(), "urn:x".to_owned())
            ]
        );
        assert_eq!(client_auth, &ClientAuthChoice::Post);
        let config = run(&["git-credential", "erase"], OAUTH).unwrap();
        assert_eq!(config.command, Command::GitCredential(GitOperation::Erase));
        assert_eq!(config.git_username, "oauth2");
        let config = run(&["--format", "exec-credential", "token"], OAUTH).unwrap();
        assert_eq!(config.format, Format::ExecCredential);
        for (args, expect) in [
            (&["--param", "novalue", "token"][..], "NAME=VALUE"),
            (&["--min-ttl=soon", "token"], "whole number"),
            (&["--format=yaml", "token"], "--format"),
            (&["--client-auth=magic", "token"], "--client-auth"),
            (&["--client-auth=private-key-jwt", "token"], "needs a key"),
            (&["exec"], "needs a command"),
            (&["exec", "--"], "needs a command"),
            (&["git-credential"], "get, store or erase"),
            (&["git-credential", "fill"], "get, store or erase"),
        ] {
            let err = run(args, OAUTH).unwrap_err();
            assert!(err.0.contains(expect), "{args:?}: {}", err.0);
        }
        // A private key replaces the client secret.
        let mut keyed: Vec<(&str, &str)> = OAUTH
            .iter()
            .copied()
            .filter(|(k, _)| *k != "EN_CORE_AUTH_CLIENT_SECRET")
            .collect();
        keyed.push(("EN_CORE_AUTH_CLIENT_AUTH", "private-key-jwt"));
        keyed.push(("EN_CORE_AUTH_PRIVATE_KEY", "/keys/client.pem"));
        assert!(run(&["status"], &keyed).is_ok());
    }

    #[test]
    fn help_and_version_win() {
        let parse = |args: &[&str]| parse(args.iter().map(|a| a.to_string()), |_| None, no_stdin);
        assert!(matches!(parse(&["token", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["-h"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["-V"]), Ok(Parsed::Version)));
        assert!(USAGE.contains("EXIT STATUS"));
    }
}
