//! Runs the local identity provider as a standalone server, for people and for clients in
//! other languages.
//!
//! ```text
//! cargo run --features testing --example local_idp -- --port 9229 --pool-id us-east-1_Local \
//!     --client-id local-client [--client-secret S] --user alice:Passw0rd! \
//!     [--user bob:Pw0rd!:FORCE_CHANGE_PASSWORD] [--token-ttl 3600]
//! ```
//!
//! The first line of output is `listening on http://127.0.0.1:<port>`; `--port 0` picks a
//! free port. It serves until killed. Tokens are signed with a public test key: never use it
//! for anything but tests.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use en_core_auth::testing::{LocalIdp, User, UserStatus};

const USAGE: &str = "usage: local_idp [--port N] [--pool-id ID] [--client-id ID] [--client-secret S] \
                     [--user NAME:PASSWORD[:STATUS]]... [--token-ttl SECONDS]";

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

fn run() -> Result<(), String> {
    let mut builder = LocalIdp::builder();
    let mut client_id = "local-client".to_owned();
    let mut client_secret = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        builder = match flag.as_str() {
            "--port" => builder.port(value.parse().map_err(|_| format!("bad --port {value:?}"))?),
            "--pool-id" => builder.pool_id(value),
            "--client-id" => {
                client_id = value;
                builder
            }
            "--client-secret" => {
                client_secret = Some(value);
                builder
            }
            "--user" => builder.user_with(parse_user(&value)?),
            "--token-ttl" => builder.token_ttl(Duration::from_secs(
                value
                    .parse()
                    .map_err(|_| format!("bad --token-ttl {value:?}"))?,
            )),
            other => return Err(format!("unknown option {other}")),
        };
    }
    let idp = builder
        .client(&client_id, client_secret.as_deref())
        .start()
        .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", idp.url()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}
