//! Cognito challenges answered on the terminal (issue 11): codes and new passwords read
//! without echo, the TOTP setup URI shown, the remembered device kept beside the token.
//!
//! The prompts go to the controlling terminal (`/dev/tty`), not to standard input and
//! output, so `--password-stdin` and `$(en-core-auth token)` keep working. They are shown
//! only when standard error is a terminal too: a script or a test that captures it gets exit
//! status 6 and a message naming the challenge, never a prompt that waits forever.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::{Command as Process, Stdio};

use en_core_auth::srp::{Challenge, SrpAuthorizer};
use en_core_auth::store::{CacheKey, FileStore};
use en_core_auth::{Error, ErrorKind};

use crate::config::Config;

// The QR encoder is only for this module's set-up prompt (kept out of main.rs).
#[path = "qr.rs"]
mod qr;

/// Gives the SRP authorizer a terminal handler and, with `--remember-device`, the device
/// kept in the cache directory (loaded now, saved when a login registers one).
pub(crate) fn prepare(
    login: SrpAuthorizer,
    config: &Config,
    key: &CacheKey,
) -> Result<SrpAuthorizer, Error> {
    let mut login = login.with_challenge_handler(answer_on_terminal);
    if !config.remember_device {
        return Ok(login);
    }
    let store = match &config.cache_dir {
        Some(dir) => FileStore::in_dir(dir, key.clone()),
        None => FileStore::new(key.clone())?,
    }
    .store_refresh_tokens(config.cache_refresh_tokens);
    if let Some(device) = store.load_device()? {
        login = login.with_device(device);
    }
    Ok(login
        .remember_device(true)
        .with_device_name("en-core-auth CLI")
        .on_device_change(move |device| {
            let kept = match device {
                Some(device) => store.save_device(device),
                None => store.clear_device(),
            };
            if let Err(error) = kept {
                eprintln!("en-core-auth: the device could not be remembered: {error}");
            }
        }))
}

/// What the user is asked, in words.
fn question(challenge: &Challenge) -> String {
    let sent_to = |destination: &Option<String>| match destination {
        Some(to) => format!(" (sent to {to})"),
        None => String::new(),
    };
    match challenge {
        Challenge::NewPasswordRequired => "A new password is required. New password: ".into(),
        Challenge::SoftwareTokenMfa => "Code from your authenticator app: ".into(),
        Challenge::SmsMfa { destination } | Challenge::SmsOtp { destination } => {
            format!("Code from the SMS{}: ", sent_to(destination))
        }
        Challenge::EmailOtp { destination } => {
            format!("Code from the e-mail{}: ", sent_to(destination))
        }
        Challenge::SelectMfaType { options } => {
            format!("Second factor to use ({}): ", options.join(", "))
        }
        Challenge::SelectChallenge { available } => {
            format!("How to log in ({}): ", available.join(", "))
        }
        Challenge::MfaSetup { secret, uri } => {
            let code = qr::QrCode::encode(uri.as_bytes())
                .map(|qr| qr.to_terminal())
                .unwrap_or_default();
            format!(
                "This account needs an authenticator app. Scan this code with it:\n{code}  {uri}\n  (or type the key: {secret})\nThen enter the app's current code: "
            )
        }
        Challenge::CustomChallenge { parameters } => {
            let shown: Vec<String> = parameters
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{}\nAnswer: ", shown.join("\n"))
        }
        other => format!("Answer to {}: ", other.name()),
    }
}

/// The challenge handler of the CLI.
fn answer_on_terminal(challenge: &Challenge) -> Result<String, Error> {
    let no_terminal = || {
        Error::new(
            ErrorKind::ChallengeRequired,
            format!(
                "Cognito asks for the {} challenge; run en-core-auth on a terminal to answer it",
                challenge.name()
            ),
        )
    };
    if !std::io::stderr().is_terminal() {
        return Err(no_terminal());
    }
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_terminal())?;
    let mut out = tty.try_clone().map_err(|_| no_terminal())?;
    // Echo off before the prompt shows: what is typed as soon as it appears stays hidden.
    let hidden = challenge.answer_is_secret() && echo(&tty, false);
    let prompted = out
        .write_all(question(challenge).as_bytes())
        .and_then(|()| out.flush());
    if prompted.is_err() {
        if hidden {
            echo(&tty, true);
        }
        return Err(no_terminal());
    }
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    if hidden {
        echo(&tty, true);
        let _ = out.write_all(b"\n");
    }
    read.map_err(|_| no_terminal())?;
    let answer = line.trim_end_matches(['\r', '\n']).to_owned();
    if answer.is_empty() {
        return Err(Error::new(
            ErrorKind::ChallengeRequired,
            format!("no answer to the {} challenge", challenge.name()),
        ));
    }
    Ok(answer)
}

/// Turns the terminal's echo on or off with `stty` (no unsafe code, no extra dependency);
/// whether it worked. Without it the answer is read with echo.
fn echo(tty: &File, on: bool) -> bool {
    let Ok(input) = tty.try_clone() else {
        return false;
    };
    Process::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::from(input))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_show_what_the_user_needs() {
        let setup = Challenge::MfaSetup {
            secret: "JBSWY3DPEHPK3PXP".into(),
            uri: "otpauth://totp/AWSCognito:alice?secret=JBSWY3DPEHPK3PXP&issuer=AWSCognito".into(),
        };
        let asked = question(&setup);
        assert!(asked.contains("otpauth://totp/AWSCognito:alice"));
        assert!(asked.contains('█'), "a QR code is drawn: {asked}");
        let email = Challenge::EmailOtp {
            destination: Some("a***@example.com".into()),
        };
        assert!(question(&email).contains("a***@example.com"));
        let choose = Challenge::SelectMfaType {
            options: vec!["SMS_MFA".into(), "SOFTWARE_TOKEN_MFA".into()],
        };
        assert!(question(&choose).contains("SMS_MFA, SOFTWARE_TOKEN_MFA"));
    }
}
