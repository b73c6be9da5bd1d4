//! Workload identity (TokenSource, ClientAuth::client_assertion) against a token service
//! written from RFC 8693 / RFC 7523 with `jose` (tests/peers/sts/server.mjs): it verifies
//! every JWT it is given against its own issuer key and records what it was sent; the same
//! server plays GitHub Actions' ID-token endpoint on loopback.

#[path = "support/node_peer.rs"]
mod node_peer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use en_core_auth::oauth2::{ClientAuth, ClientCredentials, JwtBearer, TokenExchange, TokenSource};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, ErrorKind};
use node_peer::NodePeer;

/// Tests here change environment variables: they run one at a time.
static ENV: Mutex<()> = Mutex::new(());

fn lock_env() -> std::sync::MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_var(name: &str, value: &str) {
    // SAFETY: every test of this file holds `ENV`, and none runs other threads then.
    unsafe { std::env::set_var(name, value) }
}

fn remove_var(name: &str) {
    // SAFETY: as in `set_var`.
    unsafe { std::env::remove_var(name) }
}

fn start() -> Option<NodePeer> {
    node_peer::start("sts", "jose", &[], &[])
}

/// A workload JWT for `sub`, signed by the token service's own key.
fn mint(peer: &NodePeer, sub: &str) -> String {
    ureq::post(&format!("{}/mint", peer.base))
        .send_form([("sub", sub), ("aud", "sts")])
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// What the token service was sent at `path`.
fn seen(peer: &NodePeer, path: &str) -> Vec<serde_json::Value> {
    peer.get_json("/seen")
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["path"] == path)
        .cloned()
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-workload-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `token` as the kubelet does: into a new timestamped directory, then swaps the
/// `..data` symlink to it atomically (a new link, renamed over the old one).
#[cfg(unix)]
fn kubelet_write(dir: &Path, generation: u32, token: &str) {
    let data = format!("..2026_12_05_{generation}");
    std::fs::create_dir_all(dir.join(&data)).unwrap();
    std::fs::write(dir.join(&data).join("token"), token).unwrap();
    std::os::unix::fs::symlink(&data, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if !dir.join("token").exists() {
        std::os::unix::fs::symlink("..data/token", dir.join("token")).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_rotated_token_file_gives_a_new_subject_at_the_next_exchange() {
    let _env = lock_env();
    let Some(peer) = start() else { return };
    let dir = temp_dir("kubelet");
    kubelet_write(&dir, 1, &format!("{}\n", mint(&peer, "pod-a")));
    let source = TokenSource::file(dir.join("token"));
    let auth = TokenExchange::new(
        ClientInfo::new("workload", ""),
        format!("{}/token", peer.base),
        move || source.token(),
        TokenExchange::JWT,
    )
    .unwrap();
    let middleware = AuthMiddleware::new(auth);
    assert!(middleware.access_token().unwrap().ends_with("-pod-a"));
    kubelet_write(&dir, 2, &mint(&peer, "pod-b"));
    middleware.invalidate();
    assert!(middleware.access_token().unwrap().ends_with("-pod-b"));
    let subjects: Vec<_> = seen(&peer, "/token")
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["pod-a", "pod-b"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_changed_variable_gives_a_new_subject_at_the_next_exchange() {
    let _env = lock_env();
    let Some(peer) = start() else { return };
    const VARIABLE: &str = "EN_CORE_AUTH_TEST_WORKLOAD_ASSERTION";
    set_var(VARIABLE, &mint(&peer, "job-1"));
    let source = TokenSource::env(VARIABLE);
    let auth = JwtBearer::new(
        ClientInfo::new("ci", ""),
        format!("{}/token", peer.base),
        move || source.token(),
    )
    .unwrap();
    let middleware = AuthMiddleware::new(auth);
    assert!(middleware.access_token().unwrap().ends_with("-job-1"));
    set_var(VARIABLE, &format!("  {}\n", mint(&peer, "job-2")));
    middleware.invalidate();
    assert!(middleware.access_token().unwrap().ends_with("-job-2"));
    let subjects: Vec<_> = seen(&peer, "/token")
        .iter()
        .map(|r| r["assertion_subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["job-1", "job-2"]);
    remove_var(VARIABLE);
}

#[test]
fn github_actions_token_as_the_client_assertion() {
    let _env = lock_env();
    let Some(peer) = start() else { return };
    set_var(
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        &format!("{}/github/token?api-version=2.0", peer.base),
    );
    set_var("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token");
    let entra = |source: TokenSource| {
        ClientCredentials::new(
            ClientInfo::new("entra-app", ""),
            format!("{}/token", peer.base),
        )
        .unwrap()
        .with_client_auth(ClientAuth::client_assertion(source))
    };
    let source = TokenSource::github_actions("api://AzureADTokenExchange");
    let middleware = AuthMiddleware::new(entra(source.clone()));
    let first = middleware.access_token().unwrap();
    assert!(
        first.ends_with("-repo:octo/app:ref:refs/heads/main"),
        "{first}"
    );
    // GitHub's token has five minutes left: the second exchange reuses it.
    middleware.invalidate();
    assert_ne!(middleware.access_token().unwrap(), first);
    let github = seen(&peer, "/github/token");
    assert_eq!(github.len(), 1, "{github:?}");
    assert_eq!(github[0]["authorization"], "Bearer gh-request-token");
    assert_eq!(github[0]["audience"], "api://AzureADTokenExchange");
    assert_eq!(github[0]["api_version"], "2.0");
    let token = seen(&peer, "/token");
    assert_eq!(token.len(), 2);
    for request in &token {
        assert_eq!(request["grant_type"], "client_credentials");
        assert_eq!(request["client_id"], "entra-app");
        assert_eq!(
            request["client_assertion_subject"],
            "repo:octo/app:ref:refs/heads/main"
        );
    }
    // Debug names the source, never GitHub's token or the request token.
    let shown = format!("{source:?} {middleware:?}");
    assert!(
        !shown.contains("gh-request-token") && !shown.contains("eyJ"),
        "{shown}"
    );

    // A request token GitHub refuses: CredentialsRejected, and nothing goes to the service.
    set_var("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "expired-request-token");
    let mut refused = entra(TokenSource::github_actions("api://AzureADTokenExchange"));
    let err = refused.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected, "{err}");
    assert!(!err.to_string().contains("expired-request-token"), "{err}");
    assert_eq!(seen(&peer, "/github/token").len(), 2);
    assert_eq!(seen(&peer, "/token").len(), 2);
    remove_var("ACTIONS_ID_TOKEN_REQUEST_URL");
    remove_var("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
}

#[cfg(unix)]
#[test]
fn a_command_runs_for_every_exchange() {
    let _env = lock_env();
    let Some(peer) = start() else { return };
    let dir = temp_dir("command");
    let (runs, token) = (dir.join("runs"), dir.join("token"));
    std::fs::write(&token, mint(&peer, "from-a-command")).unwrap();
    let source = TokenSource::command(
        "sh",
        [
            "-c",
            r#"echo run >> "$0"; cat "$1""#,
            runs.to_str().unwrap(),
            token.to_str().unwrap(),
        ],
    );
    let auth = TokenExchange::new(
        ClientInfo::new("workload", ""),
        format!("{}/token", peer.base),
        move || source.token(),
        TokenExchange::JWT,
    )
    .unwrap();
    let middleware = AuthMiddleware::new(auth);
    for _ in 0..3 {
        middleware.invalidate();
        assert!(
            middleware
                .access_token()
                .unwrap()
                .ends_with("-from-a-command")
        );
    }
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 3);

    // Google's executable-sourced response: its id_token is the token.
    let response = serde_json::json!({
        "version": 1, "success": true,
        "token_type": "urn:ietf:params:oauth:token-type:id_token",
        "id_token": mint(&peer, "from-google-format"),
        "expiration_time": 4_000_000_000u64,
    });
    std::fs::write(&token, response.to_string()).unwrap();
    let google = TokenSource::command("cat", [token.to_str().unwrap()]);
    let mut exchange = TokenExchange::new(
        ClientInfo::new("workload", ""),
        format!("{}/token", peer.base),
        move || google.token(),
        TokenExchange::ID_TOKEN,
    )
    .unwrap();
    let issued = exchange.authorize().unwrap();
    assert!(issued.access_token().ends_with("-from-google-format"));
    assert_eq!(seen(&peer, "/token").len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_missing_source_fails_typed_and_naming_it_with_nothing_sent() {
    let _env = lock_env();
    let Some(peer) = start() else { return };
    let dir = temp_dir("missing");
    std::fs::write(dir.join("empty"), "\n  \n").unwrap();
    std::fs::write(
        dir.join("failure.json"),
        r#"{"version":1,"success":false,"code":"401","message":"Caller not authorized."}"#,
    )
    .unwrap();
    set_var("EN_CORE_AUTH_TEST_EMPTY", " ");
    remove_var("EN_CORE_AUTH_TEST_UNSET");
    remove_var("ACTIONS_ID_TOKEN_REQUEST_URL");
    remove_var("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    let missing = dir.join("no-such-token");
    let empty = dir.join("empty");
    let failure = dir.join("failure.json");
    let mut cases: Vec<(TokenSource, &str)> = vec![
        (TokenSource::file(&missing), missing.to_str().unwrap()),
        (TokenSource::file(&empty), empty.to_str().unwrap()),
        (
            TokenSource::env("EN_CORE_AUTH_TEST_UNSET"),
            "EN_CORE_AUTH_TEST_UNSET",
        ),
        (
            TokenSource::env("EN_CORE_AUTH_TEST_EMPTY"),
            "EN_CORE_AUTH_TEST_EMPTY",
        ),
        (
            TokenSource::github_actions("sts"),
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ),
        (
            TokenSource::command("/nonexistent/token-helper", Vec::<String>::new()),
            "/nonexistent/token-helper",
        ),
    ];
    if cfg!(unix) {
        cases.push((
            TokenSource::command("sh", ["-c", "echo 'helper: not logged in' >&2; exit 2"]),
            "helper: not logged in",
        ));
        cases.push((TokenSource::command("true", Vec::<String>::new()), "`true`"));
        cases.push((
            TokenSource::command("cat", [failure.to_str().unwrap()]),
            "Caller not authorized.",
        ));
    }
    for (source, named) in cases {
        let shown = format!("{source:?}");
        let for_exchange = source.clone();
        let mut exchange = TokenExchange::new(
            ClientInfo::new("workload", ""),
            format!("{}/token", peer.base),
            move || for_exchange.token(),
            TokenExchange::JWT,
        )
        .unwrap();
        let err = exchange.authorize().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{shown}: {err}");
        assert!(err.to_string().contains(named), "{shown}: {err}");
        let mut assertion =
            ClientCredentials::new(ClientInfo::new("app", ""), format!("{}/token", peer.base))
                .unwrap()
                .with_client_auth(ClientAuth::client_assertion(source));
        let err = assertion.authorize().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{shown}: {err}");
        assert!(err.to_string().contains(named), "{shown}: {err}");
    }
    let github_unset = TokenSource::github_actions("sts").token().unwrap_err();
    assert!(
        github_unset.to_string().contains("id-token: write"),
        "{github_unset}"
    );
    assert_eq!(seen(&peer, "/token").len(), 0);
    assert_eq!(seen(&peer, "/github/token").len(), 0);
    remove_var("EN_CORE_AUTH_TEST_EMPTY");
    std::fs::remove_dir_all(&dir).unwrap();
}
