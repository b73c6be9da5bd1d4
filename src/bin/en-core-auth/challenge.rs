//! Cognito challenges answered on the terminal (issue 11): codes and new passwords read
//! without echo, the TOTP setup URI shown, the remembered device kept beside the token.
//!
//! The prompts go to the controlling terminal (`/dev/tty`), not to standard input and
//! output, so `--password-stdin` and `$(en-core-auth token)` keep working. They are shown
//! only when standard error is a terminal too: a script or a test that captures it gets exit
//! status 6 and a message naming the challenge, never a prompt that waits forever.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::{Command as Process, Stdio};

use en_core_auth::config::Settings;
use en_core_auth::srp::{Challenge, PasswordChange, SrpAuthorizer};
use en_core_auth::store::FileStore;
use en_core_auth::{Error, ErrorKind};

// The QR encoder is only for this module's set-up prompt (kept out of main.rs).
#[path = "qr.rs"]
mod qr;

/// Gives the SRP authorizer a terminal handler and, with `--remember-device`, the device
/// kept in the cache directory (loaded now, saved when a login registers one).
pub(crate) fn prepare(
    login: SrpAuthorizer,
    remember_device: bool,
    settings: &Settings,
) -> Result<SrpAuthorizer, Error> {
    let mut login = login
        .with_challenge_handler(answer_on_terminal)
        .on_password_change(tell_password_changed);
    if !remember_device {
        return Ok(login);
    }
    let key = settings.credential_set().cache_key();
    let store = match settings.cache_dir() {
        Some(dir) => FileStore::in_dir(dir, key),
        None => FileStore::new(key)?,
    }
    .store_refresh_tokens(settings.caches_refresh_tokens());
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

/// After a new password went out: the password this run read (from the environment or
/// standard input) is no longer the account's, and the next run must not send it.
fn tell_password_changed(change: PasswordChange) {
    let what = match change {
        PasswordChange::AnswerLost => {
            "the new password was sent, and Cognito's answer was lost: it has most probably \
             taken it"
        }
        _ => "the account's password was changed to the new one",
    };
    eprintln!(
        "en-core-auth: {what}. Update EN_CORE_AUTH_PASSWORD (or the secret store your \
         password comes from) before the next run: logging in with the old one fails, and \
         a few failures lock the account."
    );
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
    let hidden = if challenge.answer_is_secret() {
        HiddenInput::start(&tty)
    } else {
        None
    };
    out.write_all(question(challenge).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|_| no_terminal())?;
    let line = match hidden {
        Some(hidden) => {
            let typed = read_hidden(&tty);
            // The saved settings come back before anything else happens, exit included
            // (`process::exit` runs no destructors).
            drop(hidden);
            let _ = out.write_all(b"\n");
            match typed.map_err(|_| no_terminal())? {
                Typed::Line(line) => line,
                Typed::Interrupted => std::process::exit(130),
            }
        }
        None => {
            let mut line = String::new();
            BufReader::new(&tty)
                .read_line(&mut line)
                .map_err(|_| no_terminal())?;
            line
        }
    };
    let answer = line.trim_end_matches(['\r', '\n']).to_owned();
    if answer.is_empty() {
        return Err(Error::new(
            ErrorKind::ChallengeRequired,
            format!("no answer to the {} challenge", challenge.name()),
        ));
    }
    Ok(answer)
}

/// The terminal set for typing a secret: no echo, each byte as it comes (`-icanon min 1`),
/// and Ctrl-C a byte rather than a signal (`-isig`). A SIGINT would kill the process with
/// echo still off; read as a byte, Ctrl-C ends the prompt here, and the settings saved
/// with `stty -g` are put back on drop, whatever way the prompt ends. All with `stty`: no
/// unsafe code, no extra dependency. Without `stty`, `start` gives `None` and the answer is
/// read with echo.
struct HiddenInput {
    tty: File,
    /// `stty -g` from before.
    saved: String,
}

impl HiddenInput {
    fn start(tty: &File) -> Option<HiddenInput> {
        let saved = stty(tty, &["-g"])?.trim().to_owned();
        // The guard exists before the change, so that a change made only in part is undone.
        let guard = HiddenInput {
            tty: tty.try_clone().ok()?,
            saved,
        };
        stty(tty, &["-echo", "-icanon", "-isig", "min", "1", "time", "0"])?;
        Some(guard)
    }
}

impl Drop for HiddenInput {
    fn drop(&mut self) {
        if stty(&self.tty, &[&self.saved]).is_none() {
            let _ = stty(&self.tty, &["sane"]);
        }
    }
}

/// Runs `stty args` on `tty`; its output if it succeeded.
fn stty(tty: &File, args: &[&str]) -> Option<String> {
    let output = Process::new("stty")
        .args(args)
        .stdin(Stdio::from(tty.try_clone().ok()?))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// How a hidden answer ended.
#[derive(Debug, PartialEq)]
enum Typed {
    /// Enter, or Ctrl-D / the end of input (an empty line when nothing was typed).
    Line(String),
    /// Ctrl-C.
    Interrupted,
}

/// Reads a line byte by byte from a terminal in `HiddenInput`'s mode, doing the line
/// editing the terminal no longer does: Backspace (DEL or BS) removes the last character,
/// Ctrl-U the whole line.
fn read_hidden(mut input: impl Read) -> std::io::Result<Typed> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            break;
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            0x03 => return Ok(Typed::Interrupted),
            0x04 if bytes.is_empty() => break,
            0x04 => {}
            // A whole UTF-8 character: its continuation bytes, then its first byte.
            0x7f | 0x08 => while bytes.pop().is_some_and(|b| b & 0xc0 == 0x80) {},
            0x15 => bytes.clear(),
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes)
        .map(Typed::Line)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
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

    #[test]
    fn hidden_input_does_the_line_editing() {
        let line = |typed: &[u8]| read_hidden(typed).unwrap();
        assert_eq!(line(b"123456\r"), Typed::Line("123456".into()));
        assert_eq!(line(b"12x\x7f3\n"), Typed::Line("123".into()));
        assert_eq!(line("pé\x7fa\x08b\n".as_bytes()), Typed::Line("pb".into()));
        assert_eq!(line(b"\x7f\x7fok\n"), Typed::Line("ok".into()));
        assert_eq!(line(b"wrong\x15right\n"), Typed::Line("right".into()));
        assert_eq!(line(b"sec\x03ret\n"), Typed::Interrupted);
        assert_eq!(line(b"\x04"), Typed::Line(String::new()));
        assert_eq!(line(b"ab\x04c\n"), Typed::Line("abc".into()));
        assert_eq!(line(b"no newline"), Typed::Line("no newline".into()));
        assert!(read_hidden(&b"\xff\n"[..]).is_err());
    }
}
