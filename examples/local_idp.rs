//! Runs the local identity provider as a standalone server, for people, for the
//! `en-core-auth` tool and for clients in other languages.
//!
//! ```text
//! cargo run --features testing --example local_idp -- --port 9229 \
//!     --client my-app --client my-service:s3cret \
//!     --user alice:Passw0rd! --user bob:Pw0rd!:FORCE_CHANGE_PASSWORD \
//!     --user carol:C4rol! --totp carol:12345678901234567890
//! ```
//!
//! The first line of output is `listening on http://127.0.0.1:<port>`; `--port 0` picks a
//! free port. The lines after it, on standard error, say how to log in. It serves until
//! killed. Tokens are signed with a public test key: never use it for anything but tests.
//!
//! An SRP login with the `en-core-auth` tool against it (ID tokens verify with the tool's
//! defaults, since the server issues them as a user pool does):
//!
//! ```text
//! EN_CORE_AUTH_USER_POOL_ID=us-east-1_Local EN_CORE_AUTH_ENDPOINT=http://127.0.0.1:9229/ \
//! EN_CORE_AUTH_CLIENT_ID=my-app EN_CORE_AUTH_USERNAME=alice EN_CORE_AUTH_PASSWORD='Passw0rd!' \
//!     en-core-auth token
//! ```

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use en_core_auth::testing::{LocalIdp, User, UserStatus};

const USAGE: &str = "\
usage: local_idp [OPTION]...
  --port N                      listen on 127.0.0.1:N (default 0: a free port)
  --pool-id ID                  the user pool's id (default us-east-1_Local)
  --client ID[:SECRET]          an app client, with a secret or public (repeatable;
                                default: one public client `local-client`)
  --client-id ID                the same as --client ID (with --client-secret S: ID:S)
  --client-secret S
  --user NAME:PASSWORD[:STATUS] a user (repeatable); STATUS is a Cognito user status
                                such as FORCE_CHANGE_PASSWORD or RESET_REQUIRED
  --totp NAME:SECRET            TOTP MFA for a user (the raw secret, not base32)
  --sms-code NAME:CODE          SMS MFA for a user, answered by this fixed code
  --email NAME:ADDRESS          an e-mail address the user may also log in with
  --rotate-refresh-tokens ID    the app client rotates refresh tokens
  --issuer pool|url             `iss` of the tokens: <url>/<pool id> as a user pool's
                                (default), or the URL itself as most OAuth2 servers'
  --token-ttl SECONDS           the tokens' lifetime (default 3600)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("local_idp: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `NAME:PASSWORD[:STATUS]`; the password may contain `:` unless the last part is a status.
fn parse_user(spec: &str) -> Result<User, String> {
    let (name, rest) = spec
        .split_once(':')
        .ok_or_else(|| format!("--user {spec:?} is not NAME:PASSWORD[:STATUS]"))?;
    if let Some((password, status)) = rest.rsplit_once(':')
        && let Ok(status) = status.parse::<UserStatus>()
    {
        return Ok(User::new(name, password).status(status));
    }
    Ok(User::new(name, rest))
}

/// Applies a per-user option, `NAME:VALUE`, to the user of that name given before it.
fn update(
    users: &mut [User],
    flag: &str,
    spec: &str,
    apply: impl FnOnce(User, &str) -> User,
) -> Result<(), String> {
    let (name, value) = spec
        .split_once(':')
        .ok_or_else(|| format!("{flag} {spec:?} is not NAME:VALUE"))?;
    let user = users
        .iter_mut()
        .find(|u| u.username() == name)
        .ok_or_else(|| format!("{flag}: no --user {name} before it"))?;
    *user = apply(user.clone(), value);
    Ok(())
}

fn run() -> Result<(), String> {
    let mut builder = LocalIdp::builder();
    let mut clients: Vec<(String, Option<String>)> = Vec::new();
    let (mut client_id, mut client_secret) = (None, None);
    let mut users: Vec<User> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                builder = builder.port(value.parse().map_err(|_| format!("bad --port {value:?}"))?)
            }
            "--pool-id" => builder = builder.pool_id(value),
            "--client" => clients.push(match value.split_once(':') {
                Some((id, secret)) => (id.to_owned(), Some(secret.to_owned())),
                None => (value, None),
            }),
            "--client-id" => client_id = Some(value),
            "--client-secret" => client_secret = Some(value),
            "--user" => users.push(parse_user(&value)?),
            "--totp" => update(&mut users, &flag, &value, |u, secret| {
                u.totp_secret(secret.as_bytes().to_vec())
            })?,
            "--sms-code" => update(&mut users, &flag, &value, |u, code| u.sms_mfa_code(code))?,
            "--email" => update(&mut users, &flag, &value, |u, address| u.email(address))?,
            "--rotate-refresh-tokens" => builder = builder.refresh_token_rotation(&value),
            "--issuer" => {
                builder = builder.cognito_issuer(match value.as_str() {
                    "pool" => true,
                    "url" => false,
                    _ => return Err(format!("--issuer {value:?} is neither pool nor url")),
                })
            }
            "--token-ttl" => {
                builder = builder.token_ttl(Duration::from_secs(
                    value
                        .parse()
                        .map_err(|_| format!("bad --token-ttl {value:?}"))?,
                ))
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    match (client_id, client_secret) {
        (Some(id), secret) => clients.push((id, secret)),
        (None, Some(_)) => return Err("--client-secret needs --client-id".to_owned()),
        (None, None) if clients.is_empty() => clients.push(("local-client".to_owned(), None)),
        (None, None) => {}
    }
    for (id, secret) in &clients {
        builder = builder.client(id, secret.as_deref());
    }
    for user in users {
        builder = builder.user_with(user);
    }
    let idp = builder.start().map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", idp.url()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "user pool {} at endpoint {}/ (EN_CORE_AUTH_USER_POOL_ID, EN_CORE_AUTH_ENDPOINT); \
         OAuth2 issuer {}; clients: {}",
        idp.pool_id(),
        idp.url(),
        idp.issuer(),
        clients
            .iter()
            .map(|(id, secret)| format!(
                "{id} ({})",
                if secret.is_some() { "secret" } else { "public" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    loop {
        std::thread::park();
    }
}
