//! The local identity provider for the Python package's tests, driven over stdin/stdout.
//!
//! ```text
//! idp_driver [--client ID[:SECRET]]... [--user NAME:PASSWORD]... [--totp-user NAME:PASSWORD:SECRET]...
//!            [--token-ttl SECONDS] [--no-refresh-tokens]
//! ```
//!
//! Prints `ready URL POOL_ID` once listening on loopback, then answers one line per command
//! read from stdin, until stdin closes:
//!
//! - `count OPERATION`: how many requests the operation got (`Token`, `InitiateAuth`,
//!   `RespondToAuthChallenge`, `Protected`, …);
//! - `rejected`: protected requests refused for their token;
//! - `fail N STATUS` / `drop N`: the next N token-bearing requests fail with STATUS, or lose
//!   their connection;
//! - `expire`: every token issued so far is refused from now on;
//! - `failed NAME`: failed logins of the user;
//! - `login NAME`: the browser login's page logs NAME in without a form;
//! - `approve CODE NAME`: approves a device login's user code for NAME.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use en_core_auth::testing::{Fault, LocalIdp, Operation, User};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("idp_driver: {message}");
            ExitCode::from(2)
        }
    }
}

fn operation(name: &str) -> Result<Operation, String> {
    Ok(match name {
        "Token" => Operation::Token,
        "InitiateAuth" => Operation::InitiateAuth,
        "RespondToAuthChallenge" => Operation::RespondToAuthChallenge,
        "Protected" => Operation::Protected,
        "Discovery" => Operation::Discovery,
        "RevokeToken" => Operation::RevokeToken,
        "Revocation" => Operation::Revocation,
        other => return Err(format!("unknown operation {other}")),
    })
}

fn run() -> Result<(), String> {
    let mut builder = LocalIdp::builder().cognito_issuer(true);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-refresh-tokens" {
            builder = builder.issue_refresh_tokens(false);
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        builder = match flag.as_str() {
            "--client" => match value.split_once(':') {
                Some((id, secret)) => builder.client(id, Some(secret)),
                None => builder.client(&value, None),
            },
            "--user" => {
                let (name, password) = value.split_once(':').ok_or("--user NAME:PASSWORD")?;
                builder.user(name, password)
            }
            "--totp-user" => {
                let mut parts = value.splitn(3, ':');
                let (Some(name), Some(password), Some(secret)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err("--totp-user NAME:PASSWORD:SECRET".into());
                };
                builder.user_with(User::new(name, password).totp_secret(secret.as_bytes()))
            }
            "--token-ttl" => builder.token_ttl(Duration::from_secs(
                value.parse().map_err(|_| "bad --token-ttl")?,
            )),
            other => return Err(format!("unknown option {other}")),
        };
    }
    let idp = builder.start().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {} {}", idp.url(), idp.pool_id()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["count", op] => operation(op).map(|op| idp.requests(op).to_string()),
            ["rejected"] => Ok(idp.rejected_protected_requests().to_string()),
            ["fail", n, status] => match (n.parse(), status.parse()) {
                (Ok(n), Ok(status)) => {
                    idp.fail_next(n, Fault::Status(status));
                    Ok("ok".to_owned())
                }
                _ => Err("fail N STATUS".to_owned()),
            },
            ["drop", n] => n
                .parse()
                .map(|n| {
                    idp.fail_next(n, Fault::DropConnection);
                    "ok".to_owned()
                })
                .map_err(|_| "drop N".to_owned()),
            ["expire"] => {
                idp.expire_all_tokens();
                Ok("ok".to_owned())
            }
            ["failed", name] => Ok(idp.failed_logins(name).to_string()),
            ["login", name] => {
                idp.login_as(name);
                Ok("ok".to_owned())
            }
            ["approve", code, name] => Ok(idp.approve_device_code(code, name).to_string()),
            _ => Err(format!("unknown command {line:?}")),
        };
        match answer {
            Ok(answer) => writeln!(out, "{answer}"),
            Err(problem) => writeln!(out, "error {problem}"),
        }
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
