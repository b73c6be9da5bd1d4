//! The command line as a new user meets it (options after the command, suggestions, exit
//! statuses of `exec`, kubectl's and git's protocols), profiles (two people at one issuer
//! and client), and `AuthMiddleware::from_vars` sharing the command's cache and login,
//! against the local identity provider.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use en_core_auth::AuthMiddleware;
use en_core_auth::testing::{LocalIdp, Operation};

const BIN: &str = env!("CARGO_BIN_EXE_en-core-auth");
const CLIENT: &str = "kit-client";
const SECRET: &str = "k1t-s3cr3t-value";

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "en-core-auth-kit-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idp() -> LocalIdp {
    LocalIdp::builder()
        .client(CLIENT, Some(SECRET))
        .client("my-cli", None)
        .user("alice", "Passw0rd!")
        .user("bob", "B0bPassw0rd!")
        .start()
        .unwrap()
}

/// The variables of client credentials at the local identity provider.
fn client_vars(idp: &LocalIdp, cache: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("EN_CORE_AUTH_TOKEN_URL", idp.token_url()),
        ("EN_CORE_AUTH_CLIENT_ID", CLIENT.to_owned()),
        ("EN_CORE_AUTH_CLIENT_SECRET", SECRET.to_owned()),
        ("EN_CORE_AUTH_CACHE_DIR", cache.display().to_string()),
    ]
}

/// The binary with a clean environment: only `vars`.
fn cli(vars: &[(&'static str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    command
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

fn lookup(vars: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars = vars.to_vec();
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

#[test]
fn exec_with_client_secret_stdin_leaves_the_rest_of_stdin_to_the_command() {
    let idp = idp();
    let tmp = TempDir::new("stdin");
    let vars: Vec<_> = client_vars(&idp, &tmp.0)
        .into_iter()
        .filter(|(k, _)| *k != "EN_CORE_AUTH_CLIENT_SECRET")
        .collect();
    let mut child = cli(
        &vars,
        &["exec", "--client-secret-stdin", "--", "sh", "-c", "cat"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{SECRET}\nfirst line for cat\nsecond line\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        succeeds(output),
        "first line for cat\nsecond line",
        "the command must get every line after the secret's"
    );
    assert_eq!(idp.requests(Operation::Token), 1);
}

#[test]
fn exec_credential_answers_in_the_api_version_kubectl_asks_for() {
    let idp = idp();
    let tmp = TempDir::new("k8s");
    let vars = client_vars(&idp, &tmp.0);
    for (info, expect) in [
        (None, "client.authentication.k8s.io/v1"),
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
            ),
            "client.authentication.k8s.io/v1beta1",
        ),
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
            ),
            "client.authentication.k8s.io/v1",
        ),
    ] {
        let mut command = cli(&vars, &["token", "--format", "exec-credential"]);
        if let Some(info) = info {
            command.env("KUBERNETES_EXEC_INFO", info);
        }
        let json: serde_json::Value =
            serde_json::from_str(&succeeds(command.output().unwrap())).unwrap();
        assert_eq!(json["apiVersion"], expect);
        assert!(idp.verify_access_token(json["status"]["token"].as_str().unwrap()));
    }
    // `header` has nothing to say in kubectl's format.
    let output = cli(&vars, &["header", "--format", "exec-credential"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
}

#[test]
fn git_erase_forgets_only_the_token_it_handed_out() {
    let idp = idp();
    let tmp = TempDir::new("git-erase");
    let vars = client_vars(&idp, &tmp.0);
    let token = succeeds(cli(&vars, &["token"]).output().unwrap());
    let erase = |password: &str| {
        let mut child = cli(&vars, &["git-credential", "erase"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        write!(
            child.stdin.take().unwrap(),
            "protocol=https\nhost=git.example.com\nusername=oauth2\npassword={password}\n\n"
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
    };
    // Another credential rejected (an old token, another helper's password): ours stays.
    erase("some-other-password");
    assert_eq!(succeeds(cli(&vars, &["token"]).output().unwrap()), token);
    assert_eq!(idp.requests(Operation::Token), 1);
    // Ours rejected: forgotten, the next run gets a new one.
    erase(&token);
    assert_ne!(succeeds(cli(&vars, &["token"]).output().unwrap()), token);
    assert_eq!(idp.requests(Operation::Token), 2);
}

#[test]
fn a_new_user_gets_suggestions_help_and_one_line_errors() {
    let run = |args: &[&str]| cli(&[], args).output().unwrap();
    let output = run(&["tokne"]);
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(err.contains("'tokne'") && err.contains("'token'"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = text(&run(&["token", "--min-tl", "5"]).stderr);
    assert!(
        err.contains("--min-tl") && err.contains("--min-ttl"),
        "{err}"
    );
    // Per-command help, and `help`.
    for args in [
        &["exec", "--help"][..],
        &["help", "login"],
        &["login", "-h"],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = text(&output.stdout);
        assert!(help.contains("Usage: en-core-auth"), "{help}");
        assert!(
            help.lines().all(|line| line.chars().count() <= 80),
            "{help}"
        );
    }
    let login = text(&run(&["login", "--help"]).stdout);
    for needle in [
        "--profile",
        "EN_CORE_AUTH_PROFILE",
        "--token-storage",
        "--callback-port",
        "EN_CORE_AUTH_CALLBACK_PORT",
        "--no-browser",
    ] {
        assert!(login.contains(needle), "{needle} not in login --help");
    }
}

#[test]
fn an_unusable_cache_is_a_warning_shown_without_verbose() {
    let idp = idp();
    let tmp = TempDir::new("warn");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let blocker = tmp.0.join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let mut vars = client_vars(&idp, &tmp.0);
    vars.retain(|(k, _)| *k != "EN_CORE_AUTH_CACHE_DIR");
    vars.push((
        "EN_CORE_AUTH_CACHE_DIR",
        blocker.join("cache").display().to_string(),
    ));
    let output = cli(&vars, &["token"]).output().unwrap();
    let err = text(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("warn") && err.contains("without the token cache"),
        "{err}"
    );
    assert!(!err.contains(SECRET));
    // --redis with --no-cache is a contradiction, not a silently ignored flag.
    let output = cli(
        &vars,
        &["token", "--no-cache", "--redis", "redis://127.0.0.1:1"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

#[test]
fn a_program_and_the_command_share_one_token() {
    let idp = idp();
    let tmp = TempDir::new("from-env");
    let vars = client_vars(&idp, &tmp.0);
    let token = succeeds(cli(&vars, &["token"]).output().unwrap());
    let auth = AuthMiddleware::from_vars(lookup(&vars)).unwrap();
    assert_eq!(auth.access_token().unwrap(), token);
    assert_eq!(idp.requests(Operation::Token), 1);

    // And the other way round, in another cache: the program's token serves the command.
    let other = TempDir::new("from-env-2");
    let vars = client_vars(&idp, &other.0);
    let auth = AuthMiddleware::from_vars(lookup(&vars)).unwrap();
    let token = auth.access_token().unwrap();
    assert_eq!(idp.requests(Operation::Token), 2);
    assert_eq!(succeeds(cli(&vars, &["token"]).output().unwrap()), token);
    assert_eq!(idp.requests(Operation::Token), 2);

    // Every missing setting is named before anything is sent.
    for missing in [
        "EN_CORE_AUTH_CLIENT_ID",
        "EN_CORE_AUTH_CLIENT_SECRET",
        "EN_CORE_AUTH_TOKEN_URL",
    ] {
        let partial: Vec<_> = vars
            .iter()
            .filter(|(k, _)| *k != missing)
            .cloned()
            .collect();
        let err = AuthMiddleware::from_vars(lookup(&partial)).unwrap_err();
        assert!(err.to_string().contains(missing), "{err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
    }
    assert_eq!(idp.requests(Operation::Token), 2);
}

/// The person's browser: the authorization endpoint, then the redirect to the CLI.
fn follow(url: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .build()
        .into();
    let reply = agent.get(url).call().unwrap();
    let location = reply.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(agent.get(&location).call().unwrap().status(), 200);
}

/// `login --no-browser` as `who`, following the printed URL.
fn log_in(idp: &LocalIdp, vars: &[(&'static str, String)], who: &str, args: &[&str]) {
    idp.login_as(who);
    let mut child = cli(vars, &[&["login", "--no-browser"][..], args].concat())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().starts_with(&idp.authorization_url()) {
            follow(line.trim());
        }
        seen.push_str(&line);
    }
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains(&format!("Logged in as {who}.")), "{seen}");
}

#[test]
fn two_profiles_at_one_issuer_and_client_stay_logged_in_side_by_side() {
    let idp = idp();
    let tmp = TempDir::new("profiles");
    let vars = vec![
        ("EN_CORE_AUTH_ISSUER", idp.issuer()),
        ("EN_CORE_AUTH_CLIENT_ID", "my-cli".to_owned()),
        ("EN_CORE_AUTH_CACHE_DIR", tmp.0.display().to_string()),
    ];
    log_in(&idp, &vars, "alice", &[]);
    log_in(&idp, &vars, "bob", &["--profile", "work"]);
    let mut work_vars = vars.clone();
    work_vars.push(("EN_CORE_AUTH_PROFILE", "work".to_owned()));

    // Each profile its own token; `default` is the profile without a name.
    let alice = succeeds(cli(&vars, &["token"]).output().unwrap());
    let bob = succeeds(cli(&work_vars, &["token"]).output().unwrap());
    assert_ne!(alice, bob);
    assert_eq!(
        succeeds(
            cli(&vars, &["token", "--profile", "default"])
                .output()
                .unwrap()
        ),
        alice
    );
    assert_eq!(idp.requests(Operation::Token), 2);

    // `status` lists both, asking nothing.
    let listed: serde_json::Value = serde_json::from_str(&succeeds(
        cli(&vars, &["status", "--json"]).output().unwrap(),
    ))
    .unwrap();
    let who: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["profile"].as_str().unwrap(), p["user"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [("default", "alice"), ("work", "bob")]);
    let listed = succeeds(cli(&vars, &["status"]).output().unwrap());
    assert!(
        listed.contains("profile: work") && listed.contains("user: bob"),
        "{listed}"
    );
    assert_eq!(idp.requests(Operation::Token), 2);

    // A program uses the login the command made, under the same profile.
    let mut program_vars = work_vars.clone();
    program_vars.retain(|(k, _)| *k != "EN_CORE_AUTH_CACHE_DIR");
    program_vars.push(("EN_CORE_AUTH_CACHE_DIR", tmp.0.display().to_string()));
    let auth = AuthMiddleware::from_vars(lookup(&program_vars)).unwrap();
    assert_eq!(auth.access_token().unwrap(), bob);
    assert_eq!(idp.requests(Operation::Token), 2);

    // Logging out of one leaves the other working at the server.
    let output = cli(&vars, &["logout", "--profile", "work"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!idp.verify_access_token(&bob));
    assert!(idp.verify_access_token(&alice));
    assert_eq!(succeeds(cli(&vars, &["token"]).output().unwrap()), alice);
    let output = cli(&work_vars, &["status"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let output = cli(&work_vars, &["token"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let listed: serde_json::Value = serde_json::from_str(&succeeds(
        cli(&vars, &["status", "--json"]).output().unwrap(),
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}
