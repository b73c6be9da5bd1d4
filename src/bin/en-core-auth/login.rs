//! `login`, `logout`, and the stored login that `token` and `header` use: a person's
//! browser (authorization code + PKCE) or device (RFC 8628) login, kept in the file cache
//! so that it is asked for again only when the refresh token dies.
//!
//! ```text
//! en-core-auth login --issuer https://idp.example.com --client-id my-cli [--device] [--no-browser]
//! curl -H "$(en-core-auth header --issuer https://idp.example.com --client-id my-cli)" …
//! en-core-auth logout --issuer https://idp.example.com --client-id my-cli
//! ```

use std::process::ExitCode;

use en_core_auth::oauth2::{AuthorizationCode, DeviceCode};
use en_core_auth::store::{CredentialSet, FileStore, TokenStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, Error, ErrorKind};

pub(crate) const USAGE: &str = "\
en-core-auth login / logout: a person's login, kept in the token cache

USAGE:
    en-core-auth [OPTIONS] login     log in with the browser (or --device), keep the login
    en-core-auth [OPTIONS] logout    revoke the login at the server and forget it
    en-core-auth [OPTIONS] status    who is logged in, until when, with which scopes
                                     (--json for scripts; exit 3 when not logged in)

Then `en-core-auth token` and `header` with the same --issuer and --client-id (and no client
secret) print the login's tokens, renewing them with its refresh token.

OPTIONS:
    --issuer URL           EN_CORE_AUTH_ISSUER         the identity provider (discovered)
    --client-id ID         EN_CORE_AUTH_CLIENT_ID      the app's (public) client id
                           EN_CORE_AUTH_CLIENT_SECRET  client secret, for confidential clients
    --scopes \"A B\"         EN_CORE_AUTH_SCOPES         default \"openid offline_access\"
    --cache-dir DIR        EN_CORE_AUTH_CACHE_DIR      token cache directory
    --device               show a code to enter on another device instead of the browser
    --no-browser           print the login URL only (over SSH: open it on your machine)
    --redirect-uri URI     an exact loopback redirect URI, for servers that match them exactly
    --json                 status: one JSON object on standard output
";

const VALUE_FLAGS: &[(&str, &str)] = &[
    ("--issuer", "EN_CORE_AUTH_ISSUER"),
    ("--client-id", "EN_CORE_AUTH_CLIENT_ID"),
    ("--scopes", "EN_CORE_AUTH_SCOPES"),
    ("--cache-dir", "EN_CORE_AUTH_CACHE_DIR"),
    ("--redirect-uri", "EN_CORE_AUTH_REDIRECT_URI"),
];

/// The scopes of a login: those given, else `openid offline_access` (a refresh token, and
/// an ID token saying who logged in).
pub(crate) fn login_scopes(scopes: &[String]) -> Vec<String> {
    if scopes.is_empty() {
        vec!["openid".to_owned(), "offline_access".to_owned()]
    } else {
        scopes.to_vec()
    }
}

/// The credential set of a person's login at `issuer`: the same for `login`, `logout`,
/// `status`, `token` and `header`, so that they all find one cache entry.
pub(crate) fn credential_set(
    issuer: &str,
    client: &ClientInfo,
    scopes: &[String],
) -> CredentialSet {
    CredentialSet::new("oauth2 login", issuer)
        .client(client)
        .scopes(scopes)
}

/// What `token` and `header` use for a stored login: the refresh token renews it; when
/// it is missing or refused, the tool says to log in instead of opening a browser from a
/// script.
pub(crate) fn stored(
    issuer: &str,
    scopes: &[String],
) -> impl FnMut(&ClientInfo) -> Result<Box<dyn Authorizer>, Error> + Send + 'static {
    let (issuer, scopes) = (issuer.to_owned(), login_scopes(scopes));
    move |client: &ClientInfo| {
        let login = AuthorizationCode::discover(client.clone(), issuer.clone())?
            .with_scopes(scopes.clone())
            .with_browser(|_| {
                Err(Error::new(
                    ErrorKind::CredentialsRejected,
                    "not logged in (or the login expired): run `en-core-auth login`",
                ))
            });
        Ok(Box::new(login) as Box<dyn Authorizer>)
    }
}

struct Options {
    command: &'static str,
    issuer: String,
    client: ClientInfo,
    scopes: Vec<String>,
    cache_dir: Option<String>,
    device: bool,
    no_browser: bool,
    redirect_uri: Option<String>,
    json: bool,
}

/// Runs `login` or `logout` when the command is one of them; `None` leaves the arguments
/// to the rest of the tool.
pub(crate) fn main(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
    fail: impl Fn(u8, &str) -> ExitCode,
    exit_status: impl Fn(ErrorKind) -> u8,
) -> Option<ExitCode> {
    let options = match parse(args, &env)? {
        Ok(options) => options,
        Err(message) => return Some(fail(2, &message)),
    };
    let result = match options.command {
        "login" => login(&options),
        "status" => return Some(status(&options, &fail, &exit_status)),
        _ => logout(&options),
    };
    Some(match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(exit_status(error.kind()), &error.to_string()),
    })
}

fn parse(
    args: &[String],
    env: &impl Fn(&str) -> Option<String>,
) -> Option<Result<Options, String>> {
    let mut values: Vec<(&str, String)> = Vec::new();
    let (mut command, mut device, mut no_browser, mut help) = (None, false, false, false);
    let mut json = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if let Some((flag, _)) = VALUE_FLAGS.iter().find(|(flag, _)| *flag == name) {
            match inline.or_else(|| args.next().cloned()) {
                Some(value) => values.push((flag, value)),
                None => return command.map(|_| Err(format!("{flag} needs a value"))),
            }
            continue;
        }
        match name {
            "--device" => device = true,
            "--no-browser" => no_browser = true,
            "--json" => json = true,
            "-h" | "--help" => help = true,
            "login" if command.is_none() => command = Some("login"),
            "logout" if command.is_none() => command = Some("logout"),
            // `status` of a login: with an issuer and no client secret (else it is the
            // status of another credential set, not ours to answer).
            "status"
                if command.is_none()
                    && env("EN_CORE_AUTH_CLIENT_SECRET").is_none()
                    && (args
                        .clone()
                        .any(|a| a == "--issuer" || a.starts_with("--issuer="))
                        || values.iter().any(|(f, _)| *f == "--issuer")
                        || env("EN_CORE_AUTH_ISSUER").is_some()) =>
            {
                command = Some("status");
            }
            // The first other word is another command: not ours.
            word if !word.starts_with('-') && command.is_none() => return None,
            _ if command.is_some() => return Some(Err(format!("unknown option {name}"))),
            // Options of the rest of the tool before the command (`-v`): not ours to judge.
            _ => {}
        }
    }
    let command = command?;
    if help {
        print!("{USAGE}");
        std::process::exit(0);
    }
    let value = |flag: &str| {
        values
            .iter()
            .rev()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let (_, var) = VALUE_FLAGS.iter().find(|(f, _)| *f == flag)?;
                env(var)
            })
    };
    let Some(issuer) = value("--issuer") else {
        return Some(Err(format!(
            "{command} needs --issuer (or EN_CORE_AUTH_ISSUER)"
        )));
    };
    let Some(client_id) = value("--client-id") else {
        return Some(Err(format!(
            "{command} needs --client-id (or EN_CORE_AUTH_CLIENT_ID)"
        )));
    };
    let secret = env("EN_CORE_AUTH_CLIENT_SECRET").unwrap_or_default();
    let scopes: Vec<String> = value("--scopes")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Some(Ok(Options {
        command,
        issuer,
        client: ClientInfo::new(client_id, secret),
        scopes: login_scopes(&scopes),
        cache_dir: value("--cache-dir"),
        device,
        no_browser,
        redirect_uri: value("--redirect-uri"),
        json,
    }))
}

fn store(options: &Options) -> Result<FileStore, Error> {
    let key = credential_set(&options.issuer, &options.client, &options.scopes).cache_key();
    match &options.cache_dir {
        Some(dir) => Ok(FileStore::in_dir(dir, key)),
        None => FileStore::new(key),
    }
}

fn login(options: &Options) -> Result<String, Error> {
    let client = options.client.clone();
    let authorizer: Box<dyn Authorizer> = if options.device {
        Box::new(
            DeviceCode::discover(client, options.issuer.clone())?
                .with_scopes(options.scopes.clone()),
        )
    } else {
        let mut login = AuthorizationCode::discover(client, options.issuer.clone())?
            .with_scopes(options.scopes.clone());
        if let Some(uri) = &options.redirect_uri {
            login = login.with_redirect_uri(uri.clone());
        }
        if options.no_browser {
            login = login.with_browser(|url| {
                eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
                Ok(())
            });
        }
        Box::new(login)
    };
    let store = store(options)?;
    // A new login replaces the one stored, whoever it was for.
    store.clear()?;
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(store)
        .build();
    let token = auth.token()?;
    let who = token.id_token().and_then(claims).and_then(|claims| {
        [
            "preferred_username",
            "cognito:username",
            "email",
            "username",
            "sub",
        ]
        .iter()
        .find_map(|name| claims.get(*name)?.as_str().map(str::to_owned))
    });
    Ok(match who {
        Some(who) => format!("Logged in as {who}."),
        None => "Logged in.".to_owned(),
    })
}

/// The claims of a JWT, unverified: only to greet the person by name.
fn claims(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn logout(options: &Options) -> Result<String, Error> {
    let store = store(options)?;
    let Some(token) = store.load()? else {
        return Ok("Not logged in.".to_owned());
    };
    let revoked = AuthorizationCode::discover(options.client.clone(), options.issuer.clone())
        .and_then(|mut login| login.revoke(&token));
    // The local login goes whatever the server said: the person asked to be logged out.
    store.clear()?;
    revoked.map(|()| "Logged out.".to_owned())
}

/// `status`: the stored login, read from the cache (no network): who, until when, which
/// scopes. Claims come from the ID token stored at login (verified then, with `jwt`).
fn status(
    options: &Options,
    fail: &impl Fn(u8, &str) -> ExitCode,
    exit_status: &impl Fn(ErrorKind) -> u8,
) -> ExitCode {
    let token = match store(options).and_then(|store| store.load()) {
        Ok(token) => token,
        Err(error) => return fail(exit_status(error.kind()), &error.to_string()),
    };
    let Some(token) = token else {
        if options.json {
            println!("{}", serde_json::json!({"logged_in": false}));
        } else {
            eprintln!("Not logged in.");
        }
        return ExitCode::from(3);
    };
    let claims = token.id_token().and_then(claims).unwrap_or_default();
    let claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let who = [
        "preferred_username",
        "cognito:username",
        "email",
        "username",
    ]
    .iter()
    .find_map(|name| claim(name));
    let expires_at = token
        .expires_at()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since| since.as_secs());
    let scopes: Vec<&str> = token
        .scope()
        .map_or_else(Vec::new, |scope| scope.split_whitespace().collect());
    if options.json {
        println!(
            "{}",
            serde_json::json!({
                "logged_in": true,
                "issuer": options.issuer,
                "client_id": options.client.client_id(),
                "subject": claim("sub"),
                "user": who,
                "expires_at": expires_at,
                "expired": token.is_expired(),
                "refresh_token": token.refresh_token().is_some(),
                "scopes": scopes,
            })
        );
    } else {
        let who = who
            .or_else(|| claim("sub"))
            .unwrap_or_else(|| "someone".to_owned());
        let left = token
            .expires_at()
            .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
            .map_or_else(
                || "expired (renewed on next use)".to_owned(),
                |left| format!("valid for {} more minutes", left.as_secs() / 60),
            );
        println!(
            "Logged in to {} as {who}; access token {left}; refresh token: {}; scopes: {}",
            options.issuer,
            if token.refresh_token().is_some() {
                "yes"
            } else {
                "no"
            },
            if scopes.is_empty() {
                "-".to_owned()
            } else {
                scopes.join(" ")
            }
        );
    }
    ExitCode::SUCCESS
}
