//! A refresh token is sent at most once, by any process: the token store is the durable
//! record. Two middlewares sharing a `FileStore` stand for two processes (or two runs of a
//! CLI); the token server rotates refresh tokens and records every one it is sent. The
//! same with Redis is in `tests/redis_store.rs`.

#[path = "support/oauth2_server.rs"]
mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use en_core_auth::oauth2::RefreshToken;
use en_core_auth::store::{FileStore, TokenStore};
use en_core_auth::{AuthMiddleware, Authorizer, ClientInfo, ErrorKind, Token};
use support::{Answer, FaultServer};

/// A token response that rotates to `refresh`, lasting an hour.
fn rotated(access: &str, refresh: &str) -> Answer {
    Answer::rotating(access, refresh, 3600, "")
}

fn cache_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "en-core-auth-replay-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A "process": a `RefreshToken` authorizer configured with `R0`, on the shared store.
fn process(server: &FaultServer, dir: &PathBuf) -> AuthMiddleware {
    let authorizer =
        RefreshToken::new(ClientInfo::new("cli", ""), server.url("/token"), "R0").unwrap();
    let store = FileStore::in_dir(dir, authorizer.credential_set().cache_key());
    AuthMiddleware::builder(authorizer)
        .token_store(store)
        .build()
}

#[test]
fn a_refresh_token_whose_answer_was_lost_is_sent_by_no_process_again() {
    // R0 is traded for R1; R1's refresh rotates on the server but its answer never arrives.
    let server = FaultServer::start(
        vec![rotated("T1", "R1"), Answer::Drop],
        rotated("T-late", "R-late"),
    );
    let dir = cache_dir("lost");
    let first = process(&server, &dir);
    let second = process(&server, &dir);
    assert_eq!(first.access_token().unwrap(), "T1");
    // The second process takes the stored token: no request.
    assert_eq!(second.access_token().unwrap(), "T1");
    assert_eq!(server.refresh_tokens_seen(), ["R0"]);

    first.invalidate();
    let lost = first.access_token().unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::Transport, "{lost}");
    assert_eq!(server.refresh_tokens_seen(), ["R0", "R1"]);

    // The second process held R1 in memory too; a new process (a later CLI run) has only
    // its configured R0, traded long ago. Neither sends anything.
    second.invalidate();
    let refused = second.access_token().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CredentialsRejected, "{refused}");
    // A later run still gets T1, whose access token has not expired, and no renewal.
    let later_run = process(&server, &dir);
    assert_eq!(later_run.access_token().unwrap(), "T1");
    later_run.invalidate();
    let refused = later_run.access_token().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CredentialsRejected, "{refused}");
    // The first process remembers its failure for a back-off, and never resends either.
    assert!(first.access_token().is_err());
    assert_eq!(server.refresh_tokens_seen(), ["R0", "R1"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refresh_in_flight_is_recorded_in_the_store_before_it_goes_out() {
    // The refresh of R1 reaches the server, which rotates it; the process dies before the
    // answer (the server holds it), so nothing but the record written beforehand remains.
    let server = FaultServer::start(
        vec![
            rotated("T1", "R1"),
            Answer::Delay(Duration::from_secs(600), Box::new(rotated("T2", "R2"))),
        ],
        rotated("T-late", "R-late"),
    );
    let dir = cache_dir("in-flight");
    let first = process(&server, &dir);
    assert_eq!(first.access_token().unwrap(), "T1");
    first.invalidate();
    let dying = std::thread::spawn(move || first.access_token());
    let mut polls = 0;
    while server.count() < 2 {
        polls += 1;
        assert!(polls < 3000, "the refresh never reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
    // While R1 is out, the store no longer offers it.
    let key = RefreshToken::new(ClientInfo::new("cli", ""), server.url("/token"), "R0")
        .unwrap()
        .credential_set()
        .cache_key();
    let stored = FileStore::in_dir(&dir, key).load().unwrap().unwrap();
    assert_eq!(stored.access_token(), "T1");
    assert_eq!(stored.refresh_token(), None);
    drop(dying);
    assert_eq!(server.refresh_tokens_seen(), ["R0", "R1"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_process_holding_an_older_refresh_token_renews_from_the_stores_newer_one() {
    let server = FaultServer::start(
        vec![
            Answer::rotating("T1", "R1", 2, ""),
            Answer::rotating("T2", "R2", 2, ""),
        ],
        rotated("T-late", "R-late"),
    );
    let dir = cache_dir("rotation");
    let (first, second) = (process(&server, &dir), process(&server, &dir));
    assert_eq!(first.access_token().unwrap(), "T1");
    assert_eq!(second.access_token().unwrap(), "T1");
    // The first renews (R1 -> R2) while the second keeps T1 and R1 in memory; then both
    // tokens expire, and the second renews: from the store's R2, never its own R1.
    first.invalidate();
    assert_eq!(first.access_token().unwrap(), "T2");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(second.access_token().unwrap(), "T-late");
    // A later run starts from the store's newest refresh token, not its configured R0.
    let later_run = process(&server, &dir);
    assert_eq!(later_run.access_token().unwrap(), "T-late");
    later_run.invalidate();
    assert_eq!(later_run.access_token().unwrap(), "T-late");
    assert_eq!(server.refresh_tokens_seen(), ["R0", "R1", "R2", "R-late"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refresh_that_surely_never_left_keeps_its_refresh_token_in_the_store() {
    // Nothing listens: the connection is refused, so the server never saw R1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/token");
    let authorizer = RefreshToken::new(ClientInfo::new("cli", ""), &url, "R0").unwrap();
    let dir = cache_dir("refused");
    let key = authorizer.credential_set().cache_key();
    let store = FileStore::in_dir(&dir, key.clone());
    let expired = Token::new("T1")
        .with_refresh_token("R1")
        .with_expires_in(Duration::ZERO);
    store.save(&expired).unwrap();
    let auth = AuthMiddleware::builder(authorizer)
        .token_store(FileStore::in_dir(&dir, key))
        .build();
    assert_eq!(
        auth.access_token().unwrap_err().kind(),
        ErrorKind::Transport
    );
    assert_eq!(store.load().unwrap().unwrap().refresh_token(), Some("R1"));
    let _ = std::fs::remove_dir_all(&dir);
}
