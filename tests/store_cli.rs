//! The `en-core-auth` binary against the local identity provider: single flight across
//! processes through the file cache, output formats, exit statuses, secrets kept out of
//! files and output, and a cache that survives a process killed in the middle of a write.

#[path = "support/oauth2_server.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use en_core_auth::testing::{LocalIdp, Operation, User, UserStatus};
use support::{Answer, FaultServer};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");
const CLIENT: &str = "cli-client";
const SECRET: &str = "cl13nt-s3cr3t-value";
const SRP_CLIENT: &str = "srp-client";
const SRP_SECRET: &str = "srp-cl13nt-s3cr3t";
const PASSWORD: &str = "4l1c3-p455w0rd";

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "en-core-auth-cli-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    /// The cache directory, which the binary creates.
    fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }

    /// Every file in the cache directory, by name.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = fs::read_dir(self.cache()) else {
            return Vec::new();
        };
        entries
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                (name, fs::read(entry.path()).unwrap())
            })
            .collect()
    }

    fn only_cache_file(&self) -> PathBuf {
        let json: Vec<String> = self
            .files()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with(".json"))
            .collect();
        assert_eq!(json.len(), 1, "{json:?}");
        self.cache().join(&json[0])
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .cognito_issuer(true)
        .client(CLIENT, Some(SECRET))
        .client(SRP_CLIENT, Some(SRP_SECRET))
        .user("alice", PASSWORD)
        .user_with(User::new("bob", "b0b-p455w0rd").status(UserStatus::ForceChangePassword))
        .token_ttl(Duration::from_secs(3600))
        .start()
        .unwrap()
}

/// The binary with a clean environment: only what the test gives it.
fn cli(idp: &LocalIdp, cache: &Path, args: &[&str]) -> Command {
    cli_with_url(&idp.token_url(), cache, args)
}

/// [`cli`] with another token endpoint.
fn cli_with_url(token_url: &str, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("EN_CORE_AUTH_TOKEN_URL", token_url)
        .env("EN_CORE_AUTH_CLIENT_ID", CLIENT)
        .env("EN_CORE_AUTH_CLIENT_SECRET", SECRET)
        .env("EN_CORE_AUTH_SCOPES", "read write")
        .env("EN_CORE_AUTH_CACHE_DIR", cache)
        .stdin(Stdio::null());
    command
}

/// The binary set up for a Cognito SRP login as alice.
fn cli_srp(idp: &LocalIdp, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("EN_CORE_AUTH_USER_POOL_ID", idp.pool_id())
        .env("EN_CORE_AUTH_ENDPOINT", idp.url())
        .env("EN_CORE_AUTH_CLIENT_ID", SRP_CLIENT)
        .env("EN_CORE_AUTH_CLIENT_SECRET", SRP_SECRET)
        .env("EN_CORE_AUTH_USERNAME", "alice")
        .env("EN_CORE_AUTH_PASSWORD", PASSWORD)
        .env("EN_CORE_AUTH_CACHE_DIR", cache)
        .stdin(Stdio::null());
    command
}

/// Runs `command` with `line` on its standard input.
fn with_stdin(mut command: Command, line: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn succeeds(output: Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        stderr(&output)
    );
    stdout(&output).trim_end_matches('\n').to_owned()
}

/// A `status` run: its exit status (0 when a usable token is stored, 3 when none) and its
/// standard output.
fn reports(output: Output) -> (i32, String) {
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    (
        output.status.code().unwrap(),
        stdout(&output).trim_end_matches('\n').to_owned(),
    )
}

/// An error run: its exit status, and its standard error as one line.
fn fails(output: Output) -> (i32, String) {
    assert!(output.stdout.is_empty(), "{}", stdout(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("en-core-auth: "), "{err}");
    (output.status.code().unwrap(), err)
}

/// Single flight forced to overlap: the first token request is held until all eight
/// processes wait for the cache lock (each has the lock file open), so that every one of
/// them must find the token by reading the cache again after taking the lock.
#[test]
fn eight_processes_on_an_empty_cache_make_one_token_request() {
    let released = Arc::new(AtomicBool::new(false));
    let server = FaultServer::start(
        vec![Answer::WaitFor(
            Arc::clone(&released),
            Box::new(Answer::token("shared-token")),
        )],
        Answer::token("another-token"),
    );
    let tmp = TempDir::new("eight");
    let cli_at = |args: &[&str]| {
        let mut command = cli_with_url(&server.url("/token"), &tmp.cache(), args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    };
    let children: Vec<Child> = (0..8)
        .map(|_| cli_at(&["token"]).spawn().unwrap())
        .collect();
    let mut polls = 0;
    while !(server.count() == 1 && children.iter().all(|child| waits_on_lock(child, &tmp))) {
        polls += 1;
        assert!(
            polls < 6000,
            "the eight processes never all reached the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    released.store(true, Ordering::Release);
    let tokens: Vec<String> = children
        .into_iter()
        .map(|child| succeeds(child.wait_with_output().unwrap()))
        .collect();
    assert_eq!(server.count(), 1);
    assert!(
        tokens.iter().all(|token| token == "shared-token"),
        "{tokens:?}"
    );

    // A later run is served from the cache.
    let later = succeeds(cli_at(&["token"]).output().unwrap());
    assert_eq!(later, "shared-token");
    assert_eq!(server.count(), 1);

    // Other scopes are another credential set: another file, another request.
    let other = succeeds(cli_at(&["token", "--scopes", "read"]).output().unwrap());
    assert_eq!(other, "another-token");
    assert_eq!(server.count(), 2);
}

/// Whether `child` has the cache's lock file open: it is waiting for the lock or holds it
/// (Linux: its open files under /proc).
fn waits_on_lock(child: &Child, tmp: &TempDir) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", child.id())) else {
        return false;
    };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .any(|target| {
            target.starts_with(tmp.cache()) && target.extension() == Some("lock".as_ref())
        })
}

#[test]
fn header_prints_an_authorization_line_with_the_cached_token() {
    let idp = idp();
    let tmp = TempDir::new("header");
    let token = succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    let header = succeeds(cli(&idp, &tmp.cache(), &["header"]).output().unwrap());
    assert_eq!(header, format!("Authorization: Bearer {token}"));
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn discovery_happens_only_when_a_token_is_needed() {
    let idp = idp();
    let tmp = TempDir::new("issuer");
    let run = || {
        let mut command = cli(&idp, &tmp.cache(), &["token"]);
        command
            .env_remove("EN_CORE_AUTH_TOKEN_URL")
            .env("EN_CORE_AUTH_ISSUER", idp.issuer());
        succeeds(command.output().unwrap())
    };
    let first = run();
    assert!(idp.verify_access_token(&first));
    let discoveries = idp.requests(Operation::Discovery);
    assert!(discoveries >= 1);
    assert_eq!(run(), first);
    assert_eq!(idp.requests(Operation::Discovery), discoveries);
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn secrets_never_reach_the_cache_or_the_output() {
    let idp = idp();
    let tmp = TempDir::new("secrets");
    let ok = cli(&idp, &tmp.cache(), &["--verbose", "token"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let wrong = cli(&idp, &TempDir::new("secrets-wrong").cache(), &["token"])
        .env("EN_CORE_AUTH_CLIENT_SECRET", "wr0ng-s3cr3t-value")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    // The secret from standard input, too.
    let mut from_stdin = cli(
        &idp,
        &TempDir::new("secrets-stdin").cache(),
        &["--client-secret-stdin", "-v", "header"],
    );
    from_stdin.env_remove("EN_CORE_AUTH_CLIENT_SECRET");
    let stdin_run = with_stdin(from_stdin, SECRET);
    assert!(stdin_run.status.success(), "{}", stderr(&stdin_run));

    let files = tmp.files();
    assert!(files.iter().any(|(name, _)| name.ends_with(".json")));
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(SECRET), "the client secret is in {name}");
        assert!(!name.contains(CLIENT) && !name.contains("read"), "{name}");
    }
    for output in [&ok, &wrong, &stdin_run] {
        for text in [stdout(output), stderr(output)] {
            assert!(!text.contains(SECRET), "the client secret is in {text}");
            assert!(!text.contains("wr0ng-s3cr3t-value"), "{text}");
        }
    }
    // --verbose said something, so the check above looked at real log lines.
    assert!(!ok.stderr.is_empty());
}

#[cfg(unix)]
#[test]
fn cache_directory_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let idp = idp();
    let tmp = TempDir::new("perms");
    succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.cache()), 0o700);
    let files = tmp.files();
    assert_eq!(files.len(), 2, "a cache file and a lock file");
    for (name, _) in files {
        assert_eq!(mode(&tmp.cache().join(&name)), 0o600, "{name}");
    }
}

#[test]
fn a_corrupt_cache_file_is_replaced() {
    let idp = idp();
    let tmp = TempDir::new("corrupt");
    succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    let file = tmp.only_cache_file();
    let good = fs::read(&file).unwrap();
    fs::write(&file, &good[..good.len() / 3]).unwrap();
    let token = succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 2);
    // Replaced by a good one: the next run needs no request.
    assert_eq!(
        succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap()),
        token
    );
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_process_killed_mid_write_leaves_a_readable_cache() {
    let idp = idp();
    let tmp = TempDir::new("killed");
    succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    // Make the cached token expired, so that the next run renews and saves.
    let file = tmp.only_cache_file();
    let expired = br#"{"format": "en-core-auth token cache", "version": 1,
        "access_token": "old-expired-token", "token_type": "Bearer",
        "expires_at": {"secs": 1000, "nanos": 0}}"#;
    fs::write(&file, expired).unwrap();

    // This run stops between writing its temporary file and renaming it (a test-only hook
    // of `testing` builds), holding the cache lock, and is killed there (SIGKILL on Unix).
    let mut child = cli(&idp, &tmp.cache(), &["token"])
        .env("EN_CORE_AUTH_TEST_PAUSE_BEFORE_RENAME_MS", "120000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let written_temp = || {
        tmp.files()
            .into_iter()
            .any(|(name, bytes)| name.ends_with(".tmp") && !bytes.is_empty())
    };
    while !written_temp() {
        assert!(
            Instant::now() < deadline,
            "the temporary file never appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(idp.requests(Operation::Token), 2);
    // The cache file is untouched: the old content, whole.
    assert_eq!(fs::read(&file).unwrap(), expired);

    // The next run reads it (expired), is not blocked by the dead process's lock, logs in
    // and replaces it; the leftover temporary file disturbs nothing.
    let token = succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 3);
    assert_eq!(
        succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap()),
        token
    );
    assert_eq!(idp.requests(Operation::Token), 3);
}

#[test]
fn exit_statuses() {
    let idp = idp();
    let tmp = TempDir::new("exit");

    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &["token"])
            .env("EN_CORE_AUTH_CLIENT_SECRET", "wr0ng-s3cr3t-value")
            .output()
            .unwrap(),
    );
    assert_eq!(status, 3, "{err}");
    assert!(!err.contains("wr0ng-s3cr3t-value"));

    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &["token"])
            .env_remove("EN_CORE_AUTH_TOKEN_URL")
            .output()
            .unwrap(),
    );
    assert_eq!(status, 2, "{err}");
    let (status, _) = fails(Command::new(BIN).env_clear().output().unwrap());
    assert_eq!(status, 2);
    let (status, _) = fails(
        cli(&idp, &tmp.cache(), &["token", "--client-secret", "x"])
            .output()
            .unwrap(),
    );
    assert_eq!(status, 2);

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &["token"])
            .env(
                "EN_CORE_AUTH_TOKEN_URL",
                format!("http://127.0.0.1:{port}/token"),
            )
            .output()
            .unwrap(),
    );
    assert_eq!(status, 4, "{err}");

    // A cache directory that cannot be created is no cache, not no token.
    let blocker = tmp.0.join("not-a-dir");
    fs::create_dir_all(&tmp.0).unwrap();
    fs::write(&blocker, b"").unwrap();
    let token = succeeds(
        cli(&idp, &blocker.join("cache"), &["token"])
            .output()
            .unwrap(),
    );
    assert!(idp.verify_access_token(&token));

    // Client credentials issue no ID token.
    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &["token", "--id-token"])
            .output()
            .unwrap(),
    );
    assert_eq!(status, 5, "{err}");
}

#[test]
fn help_and_version() {
    let help = succeeds(Command::new(BIN).arg("--help").output().unwrap());
    for needle in [
        "EXIT STATUS",
        "EN_CORE_AUTH_CLIENT_SECRET",
        "--client-secret-stdin",
    ] {
        assert!(help.contains(needle), "{needle}");
    }
    let version = succeeds(Command::new(BIN).arg("--version").output().unwrap());
    assert_eq!(
        version,
        format!("en-core-auth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn srp_eight_processes_log_in_once_and_share_access_and_id_tokens() {
    let idp = idp();
    let tmp = TempDir::new("srp");
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let args: &[&str] = if i % 2 == 0 {
                &["token"]
            } else {
                &["-v", "token"]
            };
            cli_srp(&idp, &tmp.cache(), args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        for text in [stdout(output), stderr(output)] {
            assert!(
                !text.contains(PASSWORD) && !text.contains(SRP_SECRET),
                "{text}"
            );
        }
    }
    let tokens: Vec<String> = outputs.into_iter().map(succeeds).collect();
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);
    assert!(idp.verify_access_token(&tokens[0]));
    assert!(tokens.iter().all(|token| token == &tokens[0]));

    // The ID token came with the same login and is cached beside the access token.
    let id_token = succeeds(
        cli_srp(&idp, &tmp.cache(), &["token", "--id-token"])
            .output()
            .unwrap(),
    );
    assert_ne!(id_token, tokens[0]);
    let header = succeeds(
        cli_srp(&idp, &tmp.cache(), &["header", "--id-token"])
            .output()
            .unwrap(),
    );
    assert_eq!(header, format!("Authorization: Bearer {id_token}"));
    assert_eq!(idp.requests(Operation::InitiateAuth), 1);

    for (name, bytes) in tmp.files() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(PASSWORD), "the password is in {name}");
        assert!(!text.contains(SRP_SECRET), "the client secret is in {name}");
        assert!(!name.contains("alice"), "{name}");
    }
}

#[test]
fn srp_exit_statuses() {
    let idp = idp();
    let tmp = TempDir::new("srp-exit");
    let (status, err) = fails(
        cli_srp(&idp, &tmp.cache(), &["token"])
            .env("EN_CORE_AUTH_PASSWORD", "wr0ng-p455w0rd")
            .output()
            .unwrap(),
    );
    assert_eq!(status, 3, "{err}");
    assert!(!err.contains("wr0ng-p455w0rd"));

    // bob must choose a new password first: a challenge this tool does not answer.
    let (status, err) = fails(
        cli_srp(&idp, &tmp.cache(), &["token"])
            .env("EN_CORE_AUTH_USERNAME", "bob")
            .env("EN_CORE_AUTH_PASSWORD", "b0b-p455w0rd")
            .output()
            .unwrap(),
    );
    assert_eq!(status, 6, "{err}");
    assert!(!err.contains("b0b-p455w0rd"));

    // The password from standard input.
    let mut command = cli_srp(&idp, &tmp.cache(), &["--password-stdin", "token"]);
    command.env_remove("EN_CORE_AUTH_PASSWORD");
    let token = succeeds(with_stdin(command, PASSWORD));
    assert!(idp.verify_access_token(&token));
}

/// A new process that finds an expired cached token with a refresh token refreshes it
/// instead of logging in again with the password.
#[test]
fn a_later_run_refreshes_an_expired_cached_token() {
    let idp = LocalIdp::builder()
        .cognito_issuer(true)
        .client(SRP_CLIENT, Some(SRP_SECRET))
        .user("alice", PASSWORD)
        .token_ttl(Duration::from_secs(1))
        .start()
        .unwrap();
    let tmp = TempDir::new("srp-refresh");
    succeeds(cli_srp(&idp, &tmp.cache(), &["token"]).output().unwrap());
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
    // Past the token's expiry (the test's only sleep: the expiry is the point).
    std::thread::sleep(Duration::from_millis(1100));
    let token = succeeds(cli_srp(&idp, &tmp.cache(), &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    // A refresh is one InitiateAuth (REFRESH_TOKEN_AUTH) and no password challenge.
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    assert_eq!(idp.requests(Operation::RespondToAuthChallenge), 1);
}

/// The same with an e-mail alias and a client secret: the refreshing process did not log
/// in, so SECRET_HASH must use the Cognito user name read from the cached token, not the
/// alias (the trap pycognito fell into).
#[test]
fn a_later_run_refreshes_with_the_cognito_user_name_not_the_alias() {
    use en_core_auth::testing::User;
    let idp = LocalIdp::builder()
        .cognito_issuer(true)
        .client(SRP_CLIENT, Some(SRP_SECRET))
        .user_with(User::new("alice", PASSWORD).email("alice@example.com"))
        .token_ttl(Duration::from_secs(1))
        .start()
        .unwrap();
    let tmp = TempDir::new("srp-alias-refresh");
    let run = || {
        let mut command = cli_srp(&idp, &tmp.cache(), &["token"]);
        command.env("EN_CORE_AUTH_USERNAME", "alice@example.com");
        succeeds(command.output().unwrap())
    };
    run();
    std::thread::sleep(Duration::from_millis(1100));
    let token = run();
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::InitiateAuth), 2);
    assert_eq!(
        idp.requests(Operation::RespondToAuthChallenge),
        1,
        "refreshed, not logged in again"
    );
}

// ---- Shell habits (issue 13): exec, pipes, formats, flags, status and clear, Redis. ----

/// Seconds since 1970 of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`, parsed strictly as
/// kubectl's `metav1.Time` would (it rejects anything else).
fn parse_rfc3339(text: &str) -> u64 {
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 20, "{text}");
    for (at, expected) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        assert_eq!(bytes[at], expected, "{text}");
    }
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    assert!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{text}"
    );
    // days_from_civil (Howard Hinnant), independent of the binary's formatting code path.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19)) as u64
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn exec_runs_the_command_with_the_token_in_its_environment_and_passes_its_status() {
    let idp = idp();
    let tmp = TempDir::new("exec");
    fs::create_dir_all(&tmp.0).unwrap();
    let seen = tmp.0.join("seen");
    let script = format!(
        "printf '%s\\n%s\\n' \"$EN_CORE_AUTH_TOKEN\" \"$EN_CORE_AUTH_HEADER\" > '{}'; \
         env >> '{}'; exit 42",
        seen.display(),
        seen.display()
    );
    let output = cli(&idp, &tmp.cache(), &["exec", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(42), "{}", stderr(&output));
    let seen = fs::read_to_string(&seen).unwrap();
    let mut lines = seen.lines();
    let token = lines.next().unwrap();
    assert!(idp.verify_access_token(token));
    assert_eq!(
        lines.next().unwrap(),
        format!("Authorization: Bearer {token}")
    );
    // The command gets a token, not the client secret that obtains them.
    assert!(!seen.contains(SECRET));
    // Nor is the token on any command line: the command's arguments are the script only.
    assert!(!script.contains(token));
    // The token was cached: a plain `token` run asks for nothing more.
    assert_eq!(
        succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap()),
        token
    );
    assert_eq!(idp.requests(Operation::Token), 1);

    // Without `--`, and with a command that does not exist.
    let output = cli(&idp, &tmp.cache(), &["exec", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let (status, err) = fails(
        cli(
            &idp,
            &tmp.cache(),
            &["exec", "--", "/nonexistent/en-core-auth-cmd"],
        )
        .output()
        .unwrap(),
    );
    // As `env`, `sudo` and the shells: 127 not found, 126 not executable.
    assert_eq!(status, 127, "{err}");
    let not_executable = tmp.0.join("not-executable");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &["exec", "--"])
            .arg(&not_executable)
            .output()
            .unwrap(),
    );
    assert_eq!(status, 126, "{err}");
    // Options after the command are this tool's, up to `--` or the command's name.
    let output = cli(
        &idp,
        &tmp.cache(),
        &["exec", "-v", "--min-ttl", "60", "--", "true"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn header_piped_into_curl_reaches_the_api() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is needed for the README's pipe example (Debian: apt-get install curl)");
    }
    let idp = idp();
    let tmp = TempDir::new("curl");
    let pipeline = format!(
        "'{}' header | curl -sf -o /dev/null -w '%{{http_code}}' -H @- '{}'",
        BIN,
        idp.protected_url()
    );
    // The binary's usual environment, plus PATH to find curl.
    let settings = cli(&idp, &tmp.cache(), &[]);
    let output = Command::new("sh")
        .args(["-c", &pipeline])
        .env_clear()
        .envs(settings.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PATH", std::env::var_os("PATH").unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "200", "{}", stderr(&output));
    assert_eq!(idp.rejected_protected_requests(), 0);
    assert_eq!(idp.requests(Operation::Protected), 1);
}

#[test]
fn json_and_exec_credential_output() {
    let idp = idp();
    let tmp = TempDir::new("json");
    let json: serde_json::Value = serde_json::from_str(&succeeds(
        cli(&idp, &tmp.cache(), &["token", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let token = json["token"].as_str().unwrap();
    assert!(idp.verify_access_token(token));
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["header"], format!("Authorization: Bearer {token}"));
    let expires = parse_rfc3339(json["expires_at"].as_str().unwrap());
    assert!(expires.abs_diff(now_secs() + 3600) <= 120, "{json}");
    let mut scopes: Vec<&str> = json["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scope| scope.as_str().unwrap())
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["read", "write"]);

    // What kubectl does with an exec plugin's output: ExecCredential of
    // client.authentication.k8s.io/v1, a status with a token and an RFC 3339 expiry.
    let output = succeeds(
        cli(
            &idp,
            &tmp.cache(),
            &["token", "--format", "exec-credential"],
        )
        .output()
        .unwrap(),
    );
    let credential: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    let status = credential["status"].as_object().unwrap();
    assert_eq!(status["token"], token);
    let at = parse_rfc3339(status["expirationTimestamp"].as_str().unwrap());
    assert_eq!(at, expires);
    // Only the fields kubectl knows.
    let mut keys: Vec<&String> = status.keys().collect();
    keys.sort();
    assert_eq!(keys, ["expirationTimestamp", "token"]);
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn params_min_ttl_and_no_cache() {
    let idp = idp();
    let tmp = TempDir::new("flags");
    let orders = succeeds(
        cli(&idp, &tmp.cache(), &["token", "--param", "audience=orders"])
            .output()
            .unwrap(),
    );
    let billing = succeeds(
        cli(&idp, &tmp.cache(), &["token", "--param=audience=billing"])
            .output()
            .unwrap(),
    );
    // Another audience is another credential set: its own token and cache entry.
    assert_ne!(orders, billing);
    assert_eq!(idp.requests(Operation::Token), 2);
    assert_eq!(
        succeeds(
            cli(&idp, &tmp.cache(), &["token", "--param", "audience=orders"])
                .output()
                .unwrap()
        ),
        orders
    );
    assert_eq!(idp.requests(Operation::Token), 2);

    // The cached token lasts an hour: enough for --min-ttl 60, not for 7200, which the
    // identity provider's hour-long tokens can never satisfy.
    let args = ["token", "--param", "audience=orders", "--min-ttl"];
    let enough = succeeds(
        cli(&idp, &tmp.cache(), &[&args[..], &["60"]].concat())
            .output()
            .unwrap(),
    );
    assert_eq!(enough, orders);
    assert_eq!(idp.requests(Operation::Token), 2);
    let (status, err) = fails(
        cli(&idp, &tmp.cache(), &[&args[..], &["7200"]].concat())
            .output()
            .unwrap(),
    );
    // A usage problem with its own message, not a malformed response.
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("--min-ttl 7200 s cannot be met"), "{err}");
    // It renewed once before giving up.
    assert_eq!(idp.requests(Operation::Token), 3);

    // --no-cache: neither read nor written.
    let other = TempDir::new("no-cache");
    for _ in 0..2 {
        succeeds(
            cli(&idp, &other.cache(), &["token", "--no-cache"])
                .output()
                .unwrap(),
        );
    }
    assert_eq!(idp.requests(Operation::Token), 5);
    assert!(!other.cache().exists());
}

#[test]
fn client_auth_methods() {
    let public_key = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/private_key_jwt_rsa.pub.pem"),
    )
    .unwrap();
    let idp = LocalIdp::builder()
        .client(CLIENT, Some(SECRET))
        .private_key_jwt_client("keyed-client", &public_key)
        .start()
        .unwrap();
    let tmp = TempDir::new("client-auth");
    for method in ["basic", "post"] {
        let token = succeeds(
            cli(
                &idp,
                &tmp.cache(),
                &["token", "--no-cache", "--client-auth", method],
            )
            .output()
            .unwrap(),
        );
        assert!(idp.verify_access_token(&token), "{method}");
    }
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/private_key_jwt_rsa.pem");
    let mut command = cli(
        &idp,
        &tmp.cache(),
        &["token", "--client-auth=private-key-jwt"],
    );
    command
        .env("EN_CORE_AUTH_CLIENT_ID", "keyed-client")
        .env_remove("EN_CORE_AUTH_CLIENT_SECRET")
        .env("EN_CORE_AUTH_PRIVATE_KEY", &key);
    let token = succeeds(command.output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 3);

    // A file that is not a key: a configuration error that does not quote the file.
    let not_a_key = tmp.0.join("not-a-key.pem");
    fs::create_dir_all(&tmp.0).unwrap();
    fs::write(&not_a_key, "s3cr3t-looking-content").unwrap();
    let mut command = cli(
        &idp,
        &tmp.cache(),
        &["token", "--client-auth=private-key-jwt"],
    );
    command.env("EN_CORE_AUTH_PRIVATE_KEY", &not_a_key);
    let (status, err) = fails(command.output().unwrap());
    assert_eq!(status, 2, "{err}");
    assert!(!err.contains("s3cr3t-looking-content"));
}

#[test]
fn status_and_clear() {
    let idp = idp();
    let tmp = TempDir::new("status");
    // Nothing stored: the same lines, and exit status 3.
    let (code, status) = reports(cli(&idp, &tmp.cache(), &["status"]).output().unwrap());
    assert_eq!(code, 3, "{status}");
    assert!(status.contains("token: none"), "{status}");
    assert!(status.contains(&format!("cache: files in {}", tmp.cache().display())));
    assert!(status.contains(&format!("client id: {CLIENT}")));
    assert!(status.contains("profile: default"), "{status}");
    let (code, json) = reports(
        cli(&idp, &tmp.cache(), &["status", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!((code, json.as_str()), (3, "[]"));
    succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    let status = succeeds(cli(&idp, &tmp.cache(), &["status"]).output().unwrap());
    assert!(status.contains("token: valid, expires 20"), "{status}");
    assert!(!status.contains(SECRET));
    // One profile asked for: one object, the same schema as a person's login.
    let json: serde_json::Value = serde_json::from_str(&succeeds(
        cli(
            &idp,
            &tmp.cache(),
            &["status", "--json", "--profile", "default"],
        )
        .output()
        .unwrap(),
    ))
    .unwrap();
    assert_eq!(json["token"]["state"], "valid");
    assert_eq!(json["kind"], "client_credentials");
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["client_id"], CLIENT);
    assert!(json["user"].is_null());
    parse_rfc3339(json["token"]["expires_at"].as_str().unwrap());
    // `status` asks the identity provider nothing.
    assert_eq!(idp.requests(Operation::Token), 1);

    let output = cli(&idp, &tmp.cache(), &["clear"]).output().unwrap();
    assert!(output.status.success() && output.stdout.is_empty());
    let (code, status) = reports(cli(&idp, &tmp.cache(), &["status"]).output().unwrap());
    assert_eq!(code, 3);
    assert!(status.contains("token: none"), "{status}");
    assert!(tmp.files().iter().all(|(name, _)| !name.ends_with(".json")));
    succeeds(cli(&idp, &tmp.cache(), &["token"]).output().unwrap());
    assert_eq!(idp.requests(Operation::Token), 2);

    // SRP: the user shows.
    let (_, status) = reports(cli_srp(&idp, &tmp.cache(), &["status"]).output().unwrap());
    assert!(status.contains("user: alice"), "{status}");
    assert!(!status.contains(PASSWORD));
}

/// A `redis-server` of our own on a free loopback port, killed when dropped.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: .ci/test installs Debian's redis-server");
        let redis = Redis(child, port);
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not come up");
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.1)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn redis_puts_the_cache_where_every_machine_finds_it() {
    let idp = idp();
    let redis = Redis::start();
    // Two machines: two cache directories, one Redis.
    let (a, b) = (TempDir::new("redis-a"), TempDir::new("redis-b"));
    let first = succeeds(
        cli(&idp, &a.cache(), &["token", "--redis", &redis.url()])
            .output()
            .unwrap(),
    );
    let mut from_env = cli(&idp, &b.cache(), &["token"]);
    from_env.env("EN_CORE_AUTH_REDIS_URL", redis.url());
    assert_eq!(succeeds(from_env.output().unwrap()), first);
    assert_eq!(idp.requests(Operation::Token), 1);
    // Nothing went to files.
    assert!(!a.cache().exists() && !b.cache().exists());
    let status = succeeds(
        cli(&idp, &a.cache(), &["status", "--redis", &redis.url()])
            .output()
            .unwrap(),
    );
    assert!(
        status.contains("cache: redis") && status.contains("token: valid"),
        "{status}"
    );
    let output = cli(&idp, &a.cache(), &["clear", "--redis", &redis.url()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let (code, status) = reports(
        cli(&idp, &a.cache(), &["status", "--redis", &redis.url()])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 3);
    assert!(status.contains("token: none"), "{status}");
}

#[test]
fn git_credential_helper_as_git_uses_it() {
    let idp = idp();
    let tmp = TempDir::new("git");
    // What `git credential fill` does with `credential.helper = !en-core-auth git-credential`:
    // runs the helper with `get`, writes the request's attributes, reads key=value lines.
    let settings = cli(&idp, &tmp.cache(), &[]);
    let git = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(["-c", &format!("credential.helper=!'{BIN}' git-credential")])
            .args(args)
            .env_clear()
            .envs(settings.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("HOME", &tmp.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git is needed for the credential helper test");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    fs::create_dir_all(&tmp.0).unwrap();
    let output = git(
        &["credential", "fill"],
        "protocol=https\nhost=git.example.com\n\n",
    );
    let answer = succeeds(output);
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
            .to_owned()
    };
    assert_eq!(field("username"), "oauth2");
    let token = field("password");
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 1);

    // git saw the token rejected: `reject` calls `erase`, and the next `fill` gets a new one.
    let rejected =
        format!("protocol=https\nhost=git.example.com\nusername=oauth2\npassword={token}\n\n");
    succeeds(git(&["credential", "reject"], &rejected));
    let answer = succeeds(git(
        &["credential", "fill"],
        "protocol=https\nhost=git.example.com\n\n",
    ));
    assert!(!answer.contains(&token), "{answer}");
    assert_eq!(idp.requests(Operation::Token), 2);

    // `approve` (store) changes nothing; a GitHub-style user name.
    let approved = "protocol=https\nhost=git.example.com\nusername=oauth2\npassword=x\n\n";
    succeeds(git(&["credential", "approve"], approved));
    let answer = succeeds(with_stdin(
        cli(
            &idp,
            &tmp.cache(),
            &["--git-username", "x-access-token", "git-credential", "get"],
        ),
        "protocol=https",
    ));
    assert!(
        answer.starts_with("username=x-access-token\npassword="),
        "{answer}"
    );
    let expiry: u64 = answer
        .lines()
        .find_map(|line| line.strip_prefix("password_expiry_utc="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(expiry.abs_diff(now_secs() + 3600) <= 120);
    assert_eq!(idp.requests(Operation::Token), 2);
}
