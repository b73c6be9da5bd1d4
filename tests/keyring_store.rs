//! `KeyringStore` and `en-core-auth --token-storage keyring` against a real Secret Service:
//! Debian's `gnome-keyring` in a private D-Bus session (its own `dbus-daemon` on a socket in
//! a temporary directory), unlocked non-interactively, with `secret-tool` (libsecret) to
//! look at what was stored. `.ci/test` installs them; without them the tests skip, or fail
//! under `EN_CORE_AUTH_REQUIRE_PEERS=1`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use en_core_auth::testing::{Fault, LocalIdp, Operation};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");

/// One Secret Service at a time: three keyring daemons starting together on a loaded
/// machine can take longer than the start-up bound.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A D-Bus session bus and an unlocked GNOME Keyring of our own, stopped when dropped.
struct SecretService {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: PathBuf,
    bus: Option<Child>,
    keyring: Option<Child>,
    /// The bus's configuration and socket: a restarted bus has the same address.
    config: PathBuf,
    socket: PathBuf,
    address: String,
}

impl SecretService {
    fn start() -> Option<SecretService> {
        let have = |tool: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|out| out.status.success())
        };
        let missing: Vec<&str> = ["dbus-daemon", "gnome-keyring-daemon", "secret-tool"]
            .into_iter()
            .filter(|tool| !have(tool))
            .collect();
        if !missing.is_empty() {
            assert!(
                std::env::var("EN_CORE_AUTH_REQUIRE_PEERS").as_deref() != Ok("1"),
                "missing {missing:?} (Debian: dbus-daemon gnome-keyring libsecret-tools)"
            );
            eprintln!("skipped: no {missing:?}");
            return None;
        }
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "en-core-auth-keyring-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["home", "run", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        // A bus that starts nothing by itself: with the system's service files, the first
        // client would start a locked keyring daemon before ours registers.
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>{address}</listen>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n"
            ),
        )
        .unwrap();
        let mut service = SecretService {
            _turn: turn,
            dir,
            bus: None,
            keyring: None,
            config,
            socket,
            address,
        };
        service.start_bus();
        service.start_keyring();
        Some(service)
    }

    /// Starts the session's D-Bus daemon on its socket.
    fn start_bus(&mut self) {
        // A killed bus leaves its socket behind, and a new one would not bind to it.
        let _ = std::fs::remove_file(&self.socket);
        let bus = Command::new("dbus-daemon")
            .args(["--nofork", "--nopidfile"])
            .arg(format!("--config-file={}", self.config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.bus = Some(bus);
        let started = Instant::now();
        while !self.socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no D-Bus socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts GNOME Keyring on the bus and unlocks the login keyring in XDG_DATA_HOME
    /// (created by the first start, found again by a restart); ready once it stores an item.
    fn start_keyring(&mut self) {
        let mut keyring = self
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-keyring-password")
            .unwrap();
        self.keyring = Some(keyring);
        let started = Instant::now();
        loop {
            if self.store_item(&["service", "probe", "user", "probe"], b"x") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "no Secret Service"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `secret-tool store` of `value` under `attributes`: whether it was stored.
    fn store_item(&self, attributes: &[&str], value: &[u8]) -> bool {
        let mut store = self
            .command("secret-tool")
            .args(["store", "--label=by hand"])
            .args(attributes)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        store.stdin.take().unwrap().write_all(value).unwrap();
        store.wait().unwrap().success()
    }

    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// A command in this session, with a clean environment.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("XDG_CACHE_HOME", self.home().join(".cache"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        command
    }

    /// What `secret-tool search --all service en-core-auth` shows (attributes, no secrets
    /// unless `--unlock`: the items' labels and attributes).
    fn items(&self) -> String {
        let out = self
            .command("secret-tool")
            .args(["search", "--all", "service", "en-core-auth"])
            .output()
            .unwrap();
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// Every file under HOME and the cache directory, with its bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.home(), &mut out);
        walk(&self.cache(), &mut out);
        out
    }

    /// No file under HOME or the cache directory holds any of `tokens`.
    fn assert_no_file_holds(&self, tokens: &[&str]) {
        for (path, bytes) in self.files() {
            let content = text(&bytes);
            assert!(
                tokens.iter().all(|token| !content.contains(token)),
                "a token is in {}",
                path.display()
            );
        }
    }

    /// Stops the keyring (the D-Bus daemon stays): a keyring that went away.
    fn stop_keyring(&mut self) {
        if let Some(mut keyring) = self.keyring.take() {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
    }

    /// Stops the session's D-Bus daemon: no Secret Service can be reached at all.
    fn stop_bus(&mut self) {
        if let Some(mut bus) = self.bus.take() {
            let _ = bus.kill();
            let _ = bus.wait();
        }
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        self.stop_keyring();
        self.stop_bus();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeds(output: Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout).trim_end().to_owned()
}

fn idp(ttl: Duration) -> LocalIdp {
    let idp = LocalIdp::builder()
        .client("my-cli", None)
        .client("svc", Some("svc-s3cr3t-value"))
        .user("alice", "Passw0rd!")
        .token_ttl(ttl)
        .start()
        .unwrap();
    idp.login_as("alice");
    idp
}

/// The CLI in the session, for a person's login at `idp`, tokens in the keyring.
fn cli(service: &SecretService, idp: &LocalIdp, args: &[&str]) -> Command {
    let mut command = service.command(BIN);
    command
        .args(args)
        .args(["--token-storage", "keyring", "--issuer", &idp.issuer()])
        .args(["--client-id", "my-cli"])
        .arg("--cache-dir")
        .arg(service.cache())
        .stdin(Stdio::null());
    command
}

/// `login --no-browser`, the test acting as the browser.
fn log_in(service: &SecretService, idp: &LocalIdp) {
    let mut child = cli(service, idp, &["login", "--no-browser"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().starts_with(&idp.authorization_url()) {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .build()
                .into();
            let reply = agent.get(line.trim()).call().unwrap();
            let location = reply.headers()["location"].to_str().unwrap().to_owned();
            assert_eq!(agent.get(&location).call().unwrap().status(), 200);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{seen}");
}

/// A Secret Service of our own and a person logged in with keyring storage (one token
/// request) for an hour.
fn logged_in() -> Option<(SecretService, LocalIdp)> {
    logged_in_for(Duration::from_secs(3600))
}

/// The same, with tokens that last `ttl`.
fn logged_in_for(ttl: Duration) -> Option<(SecretService, LocalIdp)> {
    let service = SecretService::start()?;
    let idp = idp(ttl);
    log_in(&service, &idp);
    assert_eq!(idp.requests(Operation::Token), 1);
    Some((service, idp))
}

#[test]
fn a_login_lives_in_the_keyring_and_no_file_holds_a_token() {
    let Some((service, idp)) = logged_in() else {
        return;
    };

    // Another process finds it: no browser, no token request.
    let token = succeeds(cli(&service, &idp, &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 1);
    let id_token = succeeds(
        cli(&service, &idp, &["token", "--id-token"])
            .output()
            .unwrap(),
    );

    // The Secret Service holds it (under the service name), and no file does.
    let items = service.items();
    // An access token, an ID token and a refresh token outgrow one item (Windows' 2,560
    // bytes): the entry is split, and every part is a Secret Service item.
    assert!(
        items.matches("attribute.service = en-core-auth").count() >= 2,
        "{items}"
    );
    service.assert_no_file_holds(&[&token, &id_token[..40]]);
    let status = succeeds(cli(&service, &idp, &["status"]).output().unwrap());
    assert!(
        status.contains("cache: keyring") && status.contains("user: alice"),
        "{status}"
    );

    // Items deleted by hand: logged out, `token` says so (exit 3) and opens nothing.
    let cleared = service
        .command("secret-tool")
        .args(["clear", "service", "en-core-auth"])
        .status()
        .unwrap();
    assert!(cleared.success());
    let output = cli(&service, &idp, &["token"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("en-core-auth login"));
}

#[test]
fn six_runs_renewing_together_make_one_refresh() {
    let ttl = Duration::from_secs(3);
    let Some((service, idp)) = logged_in_for(ttl) else {
        return;
    };
    // Past the token's expiry (the expiry is the point of this test).
    std::thread::sleep(ttl + Duration::from_millis(200));
    let runs: Vec<Child> = (0..6)
        .map(|_| {
            cli(&service, &idp, &["token"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> = runs
        .into_iter()
        .map(|run| succeeds(run.wait_with_output().unwrap()))
        .collect();
    assert!(tokens.iter().all(|token| token == &tokens[0]), "{tokens:?}");
    assert!(idp.verify_access_token(&tokens[0]));
    // One login, one refresh.
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn no_secret_service_is_refused_before_the_browser() {
    let Some(mut service) = SecretService::start() else {
        return;
    };
    let idp = idp(Duration::from_secs(3600));
    service.stop_keyring();
    let output = cli(&service, &idp, &["login", "--no-browser"])
        .output()
        .unwrap();
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{err}");
    assert!(
        err.contains("Secret Service") && err.contains("--token-storage file"),
        "{err}"
    );
    // Nothing was opened or printed for the person to follow.
    assert!(!err.contains(&idp.authorization_url()), "{err}");
    assert_eq!(idp.requests(Operation::Token), 0);
}

/// A run refused because the keyring cannot be reached: exit 7 (storage) naming the Secret
/// Service, nothing on standard output, no panic.
fn refused_by_the_keyring(output: Output) {
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{err}");
    assert!(err.contains("Secret Service"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}

#[test]
fn a_keyring_gone_after_login_fails_the_run_and_the_next_run_finds_the_login() {
    let Some((mut service, idp)) = logged_in() else {
        return;
    };
    let paths = |service: &SecretService| -> BTreeSet<PathBuf> {
        service.files().into_iter().map(|(path, _)| path).collect()
    };
    let before = paths(&service);

    // The keyring daemon gone, its bus still there; then the bus gone too.
    service.stop_keyring();
    refused_by_the_keyring(cli(&service, &idp, &["token"]).output().unwrap());
    service.stop_bus();
    refused_by_the_keyring(cli(&service, &idp, &["token"]).output().unwrap());
    // Neither asked the identity provider nor kept a token anywhere else.
    assert_eq!(idp.requests(Operation::Token), 1);
    assert_eq!(paths(&service), before);

    // Both back, on the same keyring files: the login is found, the provider not asked.
    service.start_bus();
    service.start_keyring();
    let token = succeeds(cli(&service, &idp, &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 1);
    service.assert_no_file_holds(&[&token]);
}

#[test]
fn a_corrupt_or_foreign_keyring_item_is_a_miss_and_the_next_login_replaces_it() {
    let Some((service, idp)) = logged_in() else {
        return;
    };
    // The entry's main item: its user is the cache key (a part's adds ".save.index").
    let items = service.items();
    let key = items
        .lines()
        .filter_map(|line| line.trim().strip_prefix("attribute.username = "))
        .find(|user| !user.contains('.'))
        .unwrap_or_else(|| panic!("no main item: {items}"))
        .to_owned();
    // The attributes the keyring crate gives an item: `secret-tool store` replaces ours.
    let ours = [
        "service",
        "en-core-auth",
        "username",
        &key,
        "target",
        "default",
        "application",
        "rust-keyring",
    ];
    let corrupt: [&[u8]; 4] = [
        b"hunter2",
        b"\xff\xfe not text",
        br#"{"format":"en-core-auth keyring parts","save":"x","count":99,"sha256":""}"#,
        b"{\"access_token\":",
    ];
    for value in corrupt {
        assert!(service.store_item(&ours, value));
        let output = cli(&service, &idp, &["token", "-v"]).output().unwrap();
        let err = text(&output.stderr);
        // Logged out (exit 3), said under -v, never a panic, never the item's value.
        assert_eq!(output.status.code(), Some(3), "{err}");
        assert!(err.contains("keyring item"), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(output.stdout.is_empty());
    }

    // Another program's item beside ours (one attribute more) matching the same search:
    // no one item to read, still a miss, and no run stuck on it.
    let mut theirs = ours.to_vec();
    theirs.extend(["program", "another"]);
    assert!(service.store_item(&theirs, b"hunter2"));
    let output = cli(&service, &idp, &["token", "-v"]).output().unwrap();
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(err.contains("2 keyring items"), "{err}");

    // The next login writes over them: one main item again.
    log_in(&service, &idp);
    assert_eq!(idp.requests(Operation::Token), 2);
    let items = service.items();
    assert_eq!(
        items
            .matches(&format!("attribute.username = {key}\n"))
            .count(),
        1,
        "{items}"
    );
    assert!(!items.contains("attribute.program"), "{items}");
    let token = succeeds(cli(&service, &idp, &["token"]).output().unwrap());
    assert!(idp.verify_access_token(&token));
    assert_eq!(idp.requests(Operation::Token), 2);
}

/// The keyring gone while a run refreshes (after it read the login and recorded its refresh
/// token as spent, before it saves the new token). The lifecycle's rule for a failed save
/// holds (the token is good, only its reuse is lost, said under -v). The refresh token the
/// keyring still names was sent once and is never sent again (the store is the durable
/// record of a refresh token): the next run is logged out, and asks the provider nothing.
#[test]
fn a_keyring_gone_during_a_refresh_loses_only_that_save() {
    let ttl = Duration::from_secs(3);
    let Some((mut service, idp)) = logged_in_for(ttl) else {
        return;
    };
    // Past the token's expiry: the next run refreshes.
    std::thread::sleep(ttl + Duration::from_millis(200));
    // The run's refresh is held at the identity provider until a second request arrives.
    idp.fail_next(2, Fault::Rendezvous(2));
    let run = cli(&service, &idp, &["token", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let asked = Instant::now();
    while idp.requests(Operation::Token) < 2 {
        assert!(asked.elapsed() < Duration::from_secs(60), "no refresh");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The run has read the keyring; now it is gone, and a request of ours (no grant:
    // refused) lets the refresh through.
    service.stop_keyring();
    let _ = ureq::post(idp.token_url()).send_form([("grant_type", "none")]);
    let output = run.wait_with_output().unwrap();
    let err = text(&output.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("could not save the token") && err.contains("Secret Service"),
        "{err}"
    );
    let refreshed = succeeds(output);
    assert!(idp.verify_access_token(&refreshed));
    assert_eq!(idp.requests(Operation::Token), 3);

    // The keyring back on the same files: its entry names the refresh token as spent, so
    // the next run is logged out (exit 3) rather than replaying it, and sends nothing.
    service.start_keyring();
    let next = cli(&service, &idp, &["token"]).output().unwrap();
    assert_eq!(next.status.code(), Some(3), "{}", text(&next.stderr));
    assert!(text(&next.stdout).trim().is_empty());
    assert_eq!(idp.requests(Operation::Token), 3);
    service.assert_no_file_holds(&[&refreshed]);
}
