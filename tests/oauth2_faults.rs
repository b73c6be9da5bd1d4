//! The OAuth2 client against a scripted loopback server: what goes on the wire, and how
//! each kind of failure is classified and retried. Counts requests, never wall-clock time.

#[path = "support/oauth2_server.rs"]
mod support;

use std::time::Duration;

use base64::Engine as _;
use en_core_auth::http::{HttpClient, RetryPolicy};
use en_core_auth::oauth2::{ClientAuth, ClientCredentials, OAuthError, RefreshToken};
use en_core_auth::{Authorizer, ClientInfo, ErrorKind, Token};
use support::{Answer, FaultServer};

/// Retries without real waiting, so that the tests are quick.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(30),
    }
}

fn fast_http() -> HttpClient {
    HttpClient::new()
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(10))
        .with_retry(fast_retries())
}

fn authorizer(server: &FaultServer, secret: &str) -> ClientCredentials {
    ClientCredentials::new(ClientInfo::new("svc", secret), server.url("/oauth2/token"))
        .unwrap()
        .with_http_client(fast_http())
}

fn server(script: Vec<Answer>) -> FaultServer {
    FaultServer::start(script, Answer::token("fallback-token"))
}

#[test]
fn a_client_credentials_request_carries_the_grant_scopes_and_parameters() {
    let server = server(vec![Answer::token("t-1")]);
    let mut auth = authorizer(&server, "s")
        .with_scopes(["orders/read", "orders/write"])
        .with_parameter("audience", "https://api.example.com")
        .with_parameter("resource", "https://a.example.com/")
        .with_parameter("resource", "https://b.example.com/");
    let token = auth.authorize().unwrap();
    assert_eq!(token.access_token(), "t-1");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/oauth2/token");
    assert_eq!(request.header("accept"), Some("application/json"));
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "orders/read orders/write".to_owned()),
            ("audience".to_owned(), "https://api.example.com".to_owned()),
            ("resource".to_owned(), "https://a.example.com/".to_owned()),
            ("resource".to_owned(), "https://b.example.com/".to_owned()),
        ]
    );
}

#[test]
fn basic_auth_form_encodes_id_and_secret_before_base64() {
    let server = server(vec![Answer::token("t")]);
    let secret = "p:a+s%s w/rd";
    ClientCredentials::new(ClientInfo::new("svc:1", secret), server.url("/token"))
        .unwrap()
        .authorize()
        .unwrap();
    let request = &server.requests()[0];
    let header = request.header("authorization").unwrap();
    let encoded = header.strip_prefix("Basic ").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "svc%3A1:p%3Aa%2Bs%25s+w%2Frd"
    );
    assert_eq!(request.field("client_secret"), None);
    assert_eq!(request.field("client_id"), None);
}

#[test]
fn post_auth_sends_the_secret_in_the_form() {
    let server = server(vec![Answer::token("t")]);
    authorizer(&server, "p:a+s%s")
        .with_client_auth(ClientAuth::SecretPost)
        .authorize()
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.field("client_id").as_deref(), Some("svc"));
    assert_eq!(request.field("client_secret").as_deref(), Some("p:a+s%s"));
}

#[test]
fn a_public_client_sends_its_id_and_no_authorization() {
    let server = server(vec![Answer::token("t")]);
    authorizer(&server, "").authorize().unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.field("client_id").as_deref(), Some("svc"));
    assert_eq!(request.field("client_secret"), None);
}

#[test]
fn without_expires_in_the_default_lifetime_applies() {
    let server = server(vec![
        Answer::json(200, r#"{"access_token":"opaque","token_type":"bearer"}"#),
        Answer::json(200, r#"{"access_token":"opaque","expires_in":"90"}"#),
    ]);
    let mut auth = authorizer(&server, "s").with_default_lifetime(Duration::from_secs(42));
    assert_eq!(
        auth.authorize().unwrap().lifetime(),
        Some(Duration::from_secs(42))
    );
    // Azure sends expires_in as a string.
    assert_eq!(
        auth.authorize().unwrap().lifetime(),
        Some(Duration::from_secs(90))
    );
}

#[test]
fn an_access_token_that_would_break_a_header_is_refused() {
    let server = server(vec![Answer::json(
        200,
        r#"{"access_token":"abc\r\nX-Injected: 1","expires_in":60}"#,
    )]);
    let err = authorizer(&server, "s").authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
}

#[test]
fn a_500_is_retried_once_then_succeeds() {
    let server = server(vec![
        Answer::Reply(
            500,
            vec![],
            "<html><h1>Internal Server Error</h1></html>".into(),
        ),
        Answer::token("after-500"),
    ]);
    let token = authorizer(&server, "s").authorize().unwrap();
    assert_eq!(token.access_token(), "after-500");
    assert_eq!(server.count(), 2);
}

#[test]
fn persistent_500s_give_a_server_error_after_the_allowed_attempts() {
    let failing = FaultServer::start(vec![], Answer::Reply(503, vec![], "down".into()));
    let err = authorizer(&failing, "s").authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.is_transient());
    assert_eq!(failing.count(), fast_retries().max_attempts as usize);
}

#[test]
fn a_429_retry_after_is_honoured() {
    // Retry-After: 0 asks for an immediate retry, which is made.
    let server = server(vec![
        Answer::oauth_error(429, "slow_down").with_header("retry-after", "0"),
        Answer::token("after-429"),
    ]);
    assert_eq!(
        authorizer(&server, "s").authorize().unwrap().access_token(),
        "after-429"
    );
    assert_eq!(server.count(), 2);

    // A Retry-After beyond the cap ends the retries at once, rather than being cut short
    // into a back-off the server asked us not to use.
    let server = FaultServer::start(
        vec![],
        Answer::json(429, "{}").with_header("retry-after", "3600"),
    );
    let err = authorizer(&server, "s").authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.count(), 1);

    // A Retry-After that would end past the time budget is not waited for either.
    let server = FaultServer::start(
        vec![],
        Answer::json(429, "{}").with_header("retry-after", "2"),
    );
    let tight = HttpClient::new().with_retry(RetryPolicy {
        max_elapsed: Duration::from_secs(1),
        ..fast_retries()
    });
    let err = authorizer(&server, "s")
        .with_http_client(tight)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.count(), 1);
}

#[test]
fn invalid_client_with_a_chosen_method_is_never_retried() {
    let server = FaultServer::start(vec![], Answer::oauth_error(401, "invalid_client"));
    let err = authorizer(&server, "wrong-s3cr3t")
        .with_client_auth(ClientAuth::SecretBasic)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    let oauth = err.downcast_ref::<OAuthError>().unwrap();
    assert_eq!(oauth.error(), "invalid_client");
    assert_eq!(oauth.error_description(), Some("scripted invalid_client"));
    assert_eq!(oauth.status(), 401);
    assert_eq!(server.count(), 1);
    assert!(!format!("{err} {err:?}").contains("wrong-s3cr3t"));
}

#[test]
fn basic_refused_then_post_once_and_remembered() {
    // An Azure-style secret, and a server that compares Basic credentials undecoded.
    let server = server(vec![
        Answer::oauth_error(401, "invalid_client"),
        Answer::token("t-1"),
        Answer::token("t-2"),
    ]);
    let mut auth = authorizer(&server, "Ab8Q~x.y");
    assert_eq!(auth.authorize().unwrap().access_token(), "t-1");
    assert_eq!(auth.authorize().unwrap().access_token(), "t-2");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let basic = requests[0].header("authorization").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"svc:Ab8Q~x.y", "`~` is unreserved: not encoded");
    for request in &requests[1..] {
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.field("client_secret").as_deref(), Some("Ab8Q~x.y"));
    }
}

#[test]
fn when_post_is_refused_too_the_error_stands_and_basic_stays() {
    let server = FaultServer::start(vec![], Answer::oauth_error(401, "invalid_client"));
    let mut auth = authorizer(&server, "wrong");
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(server.count(), 2);
    auth.authorize().unwrap_err();
    assert_eq!(server.count(), 3, "adapting happens once");
    assert!(server.requests()[2].header("authorization").is_some());
}

#[test]
fn a_retry_after_date_is_honoured() {
    let server = server(vec![
        Answer::json(429, r#"{"error":"slow_down"}"#)
            .with_header("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
        Answer::token("after-date"),
    ]);
    let token = authorizer(&server, "s").authorize().unwrap();
    assert_eq!(token.access_token(), "after-date");
    assert_eq!(server.count(), 2);
}

#[test]
fn token_types_it_cannot_use_are_errors() {
    for (kind, expected) in [
        ("N_A", ErrorKind::MalformedResponse),
        ("mac", ErrorKind::MalformedResponse),
        ("DPoP", ErrorKind::Configuration),
    ] {
        let server = server(vec![Answer::json(
            200,
            &format!(r#"{{"access_token":"t","token_type":"{kind}","expires_in":60}}"#),
        )]);
        let err = authorizer(&server, "s").authorize().unwrap_err();
        assert_eq!(err.kind(), expected, "{kind}: {err}");
        assert_eq!(server.count(), 1);
    }
    let server = server(vec![Answer::json(
        200,
        r#"{"access_token":"t","token_type":"bearer","expires_in":60}"#,
    )]);
    assert!(authorizer(&server, "s").authorize().is_ok(), "any case");
}

#[test]
fn debug_output_holds_no_secret() {
    let server = server(vec![]);
    let auth = authorizer(&server, "d3bug-s3cr3t").with_parameter("audience", "aud-v4lue");
    let refresh = RefreshToken::new(
        ClientInfo::new("app", "d3bug-s3cr3t"),
        server.url("/t"),
        "rt-v4lue",
    )
    .unwrap();
    let shown = format!("{auth:?} {auth:#?} {refresh:?} {refresh:#?}");
    for secret in ["d3bug-s3cr3t", "aud-v4lue", "rt-v4lue"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("svc") && shown.contains("audience"));
}

#[test]
fn a_dropped_connection_is_retried() {
    let server = server(vec![Answer::Drop, Answer::token("after-drop")]);
    let token = authorizer(&server, "s").authorize().unwrap();
    assert_eq!(token.access_token(), "after-drop");
    assert_eq!(server.count(), 2);
}

#[test]
fn an_answer_slower_than_the_timeout_is_a_transport_error() {
    let slow = Answer::Delay(Duration::from_secs(3), Box::new(Answer::token("late")));
    let server = FaultServer::start(vec![], slow);
    let impatient = HttpClient::new()
        .with_timeouts(Duration::from_millis(200), Duration::from_millis(300))
        .with_retry(RetryPolicy {
            max_attempts: 2,
            ..fast_retries()
        });
    let err = authorizer(&server, "s")
        .with_http_client(impatient)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    // Timeouts are transient: both attempts were made.
    assert_eq!(server.count(), 2);
}

#[test]
fn a_garbage_body_is_malformed_and_not_retried() {
    let server = server(vec![Answer::Reply(200, vec![], "\u{1}garbage{".into())]);
    let err = authorizer(&server, "s").authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert_eq!(server.count(), 1);
}

#[test]
fn a_huge_body_is_capped() {
    let server = server(vec![Answer::Huge(4 * 1024 * 1024)]);
    let capped = fast_http().with_max_response_size(64 * 1024);
    let err = authorizer(&server, "s")
        .with_http_client(capped)
        .authorize()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(server.count(), 1);
}

#[test]
fn a_redirect_is_not_followed() {
    let target = server(vec![]);
    let redirecting = server(vec![
        Answer::Reply(307, vec![], String::new()).with_header("location", &target.url("/token")),
    ]);
    let err = authorizer(&redirecting, "s").authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert_eq!(redirecting.count(), 1);
    assert_eq!(target.count(), 0, "credentials must not follow a redirect");
}

#[test]
fn refresh_uses_the_refresh_token_and_keeps_it_when_none_is_issued() {
    let server = server(vec![Answer::token("refreshed")]);
    let mut auth = authorizer(&server, "s");
    let old = Token::new("old").with_refresh_token("rt-1");
    let token = auth.refresh(&old).unwrap();
    assert_eq!(token.access_token(), "refreshed");
    assert_eq!(token.refresh_token(), Some("rt-1"));
    let request = &server.requests()[0];
    assert_eq!(
        request.field("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(request.field("refresh_token").as_deref(), Some("rt-1"));
    assert!(
        request.header("authorization").is_some(),
        "same client authentication"
    );
}

#[test]
fn refresh_without_a_refresh_token_asks_for_a_new_token() {
    let server = server(vec![Answer::token("new")]);
    let token = authorizer(&server, "s")
        .refresh(&Token::new("old"))
        .unwrap();
    assert_eq!(token.access_token(), "new");
    assert_eq!(
        server.requests()[0].field("grant_type").as_deref(),
        Some("client_credentials")
    );
}

#[test]
fn a_refused_refresh_token_is_rejected_without_falling_back() {
    let server = server(vec![Answer::oauth_error(400, "invalid_grant")]);
    let err = authorizer(&server, "s")
        .refresh(&Token::new("old").with_refresh_token("revoked"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "invalid_grant"
    );
    // The middleware decides on a new client-credentials grant, not the authorizer.
    assert_eq!(server.count(), 1);
}

#[test]
fn refresh_token_follows_rotation() {
    let rotating = |access: &str, refresh: &str| {
        Answer::json(
            200,
            &format!(
                r#"{{"access_token":"{access}","expires_in":60,"refresh_token":"{refresh}"}}"#
            ),
        )
    };
    let server = server(vec![rotating("a-1", "rt-2"), rotating("a-2", "rt-3")]);
    let mut auth = RefreshToken::new(ClientInfo::new("app", ""), server.url("/token"), "rt-1")
        .unwrap()
        .with_http_client(fast_http());
    let first = auth.authorize().unwrap();
    assert_eq!(first.refresh_token(), Some("rt-2"));
    assert_eq!(auth.refresh_token(), "rt-2");
    let second = auth.refresh(&first).unwrap();
    assert_eq!(second.access_token(), "a-2");
    assert_eq!(auth.refresh_token(), "rt-3");
    let sent: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.field("refresh_token").unwrap())
        .collect();
    assert_eq!(sent, ["rt-1", "rt-2"]);
    assert_eq!(
        server.requests()[0].field("client_id").as_deref(),
        Some("app")
    );
}

#[test]
fn a_revoked_refresh_token_is_rejected() {
    let server = server(vec![Answer::oauth_error(400, "invalid_grant")]);
    let mut auth = RefreshToken::new(ClientInfo::new("app", ""), server.url("/token"), "gone")
        .unwrap()
        .with_http_client(fast_http());
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert_eq!(server.count(), 1);
}

fn metadata(issuer: &str, token_endpoint: &str, extra: &str) -> Answer {
    Answer::json(
        200,
        &format!(r#"{{"issuer":"{issuer}","token_endpoint":"{token_endpoint}"{extra}}}"#),
    )
}

fn discover(issuer: &str) -> Result<ClientCredentials, en_core_auth::Error> {
    ClientCredentials::builder(ClientInfo::new("svc", "s"))
        .issuer(issuer)
        .http_client(fast_http())
        .build()
}

fn paths(server: &FaultServer) -> Vec<String> {
    server.requests().into_iter().map(|r| r.path).collect()
}

#[test]
fn discovery_reads_openid_configuration_first() {
    let server = server(vec![
        metadata("{base}", "{base}/oauth2/token", ""),
        Answer::token("discovered"),
    ]);
    let mut auth = discover(&server.url("")).unwrap();
    assert_eq!(auth.token_url(), server.url("/oauth2/token"));
    assert_eq!(auth.authorize().unwrap().access_token(), "discovered");
    assert_eq!(
        paths(&server),
        ["/.well-known/openid-configuration", "/oauth2/token"]
    );
    let metadata_request = &server.requests()[0];
    assert_eq!(metadata_request.method, "GET");
    assert_eq!(metadata_request.header("authorization"), None);
}

#[test]
fn discovery_falls_back_to_rfc_8414_with_the_path_inserted() {
    let server = server(vec![
        Answer::Reply(404, vec![], "not found".into()),
        metadata("{base}/tenant", "{base}/tenant/token", ""),
    ]);
    let auth = discover(&server.url("/tenant")).unwrap();
    assert_eq!(auth.token_url(), server.url("/tenant/token"));
    assert_eq!(
        paths(&server),
        [
            "/tenant/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server/tenant"
        ]
    );
}

#[test]
fn discovery_without_metadata_is_a_configuration_error() {
    let server = FaultServer::start(vec![], Answer::Reply(404, vec![], String::new()));
    let err = discover(&server.url("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert_eq!(server.count(), 2);
}

#[test]
fn discovery_refuses_metadata_for_another_issuer() {
    let server = server(vec![metadata(
        "https://evil.example.com",
        "https://evil.example.com/token",
        "",
    )]);
    let err = discover(&server.url("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("evil.example.com"), "{err}");
}

#[test]
fn discovery_refuses_a_plain_http_token_endpoint_elsewhere() {
    let server = server(vec![metadata("{base}", "http://idp.example.com/token", "")]);
    let err = discover(&server.url("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
}

#[test]
fn discovery_retries_a_failing_metadata_endpoint() {
    let server = server(vec![
        Answer::Reply(502, vec![], "bad gateway".into()),
        metadata("{base}", "{base}/token", ""),
    ]);
    assert!(discover(&server.url("")).is_ok());
    assert_eq!(server.count(), 2);
}

#[test]
fn discovery_picks_post_when_the_server_lists_only_post() {
    let server = server(vec![
        metadata(
            "{base}",
            "{base}/token",
            r#","token_endpoint_auth_methods_supported":["client_secret_post"]"#,
        ),
        Answer::token("t"),
    ]);
    discover(&server.url("")).unwrap().authorize().unwrap();
    let request = &server.requests()[1];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.field("client_secret").as_deref(), Some("s"));
}

#[test]
fn plain_http_elsewhere_needs_the_opt_in() {
    let client = ClientInfo::new("svc", "s");
    let err = ClientCredentials::new(client.clone(), "http://idp.example.com/token").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    let opted_in = ClientCredentials::builder(client)
        .token_url("http://idp.example.com/token")
        .allow_insecure_http()
        .build();
    assert!(opted_in.is_ok());
}

fn refresh_authorizer(server: &FaultServer, refresh_token: &str) -> RefreshToken {
    RefreshToken::new(
        ClientInfo::new("app", ""),
        server.url("/token"),
        refresh_token,
    )
    .unwrap()
    .with_http_client(fast_http())
}

#[test]
fn a_lost_answer_after_rotation_never_replays_the_refresh_token() {
    let server = server(vec![
        Answer::json(
            200,
            r#"{"access_token":"a-1","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"#,
        ),
        // The server rotates rt-2 away, then the answer is lost.
        Answer::Drop,
    ]);
    let mut auth = refresh_authorizer(&server, "rt-1");
    assert_eq!(auth.authorize().unwrap().access_token(), "a-1");
    assert_eq!(auth.authorize().unwrap_err().kind(), ErrorKind::Transport);
    // Neither a refresh nor the middleware's fallback sends rt-2 again.
    let token = Token::new("a-1").with_refresh_token("rt-2");
    let err = auth.refresh(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    assert!(err.to_string().contains("lost"), "{err}");
    assert_eq!(
        auth.authorize().unwrap_err().kind(),
        ErrorKind::CredentialsRejected
    );
    assert_eq!(server.refresh_tokens_seen(), ["rt-1", "rt-2"]);
}

#[test]
fn a_refresh_token_refused_for_another_reason_than_invalid_grant_is_still_usable() {
    // A 4xx other than invalid_grant: the server answered without acting on the grant
    // (a malformed request, a scope it will not give), so the refresh token is not spent.
    let server = server(vec![
        Answer::oauth_error(400, "invalid_request"),
        Answer::json(
            200,
            r#"{"access_token":"a-1","token_type":"Bearer","expires_in":60}"#,
        ),
    ]);
    let mut auth = refresh_authorizer(&server, "rt-1");
    let err = auth.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert_eq!(auth.authorize().unwrap().access_token(), "a-1");
    assert_eq!(server.refresh_tokens_seen(), ["rt-1", "rt-1"]);
}

#[test]
fn a_refresh_grant_is_not_retried_after_a_5xx_or_a_timeout() {
    for answer in [
        Answer::Reply(500, vec![], "oops".into()),
        Answer::Reply(502, vec![], "bad gateway".into()),
        Answer::Reply(503, vec![], "no retry-after".into()),
        Answer::Delay(Duration::from_secs(3), Box::new(Answer::token("late"))),
    ] {
        let server = server(vec![answer.clone()]);
        let mut auth = refresh_authorizer(&server, "rt").with_http_client(
            fast_http().with_timeouts(Duration::from_secs(5), Duration::from_secs(1)),
        );
        let err = auth.authorize().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Server | ErrorKind::Transport),
            "{answer:?}: {err}"
        );
        assert_eq!(server.count(), 1, "{answer:?}");
    }
}

#[test]
fn a_refresh_grant_is_retried_after_429_or_503_with_retry_after() {
    for status in [429, 503] {
        let server = server(vec![
            Answer::Reply(status, vec![], "busy".into()).with_header("retry-after", "0"),
            Answer::token("after-wait"),
        ]);
        let token = refresh_authorizer(&server, "rt").authorize().unwrap();
        assert_eq!(token.access_token(), "after-wait");
        assert_eq!(server.refresh_tokens_seen(), ["rt", "rt"], "{status}");
    }
}

#[test]
fn a_refused_refresh_token_fails_once_then_without_a_request() {
    let server = server(vec![Answer::oauth_error(400, "invalid_grant")]);
    let mut auth = refresh_authorizer(&server, "revoked");
    for _ in 0..3 {
        let err = auth.authorize().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
        assert_eq!(
            err.downcast_ref::<OAuthError>().unwrap().error(),
            "invalid_grant"
        );
    }
    assert_eq!(server.count(), 1);
}

#[test]
fn through_the_middleware_invalid_grant_costs_one_token_request() {
    let server = server(vec![
        Answer::json(
            200,
            r#"{"access_token":"a-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#,
        ),
        Answer::oauth_error(400, "invalid_grant"),
    ]);
    let middleware = en_core_auth::AuthMiddleware::new(refresh_authorizer(&server, "rt-1"));
    assert_eq!(middleware.access_token().unwrap(), "a-1");
    assert_eq!(server.count(), 1);
    for _ in 0..3 {
        // As after a 401: the next use renews with refresh(), which is refused; the
        // middleware's fallback, authorize(), must not send the refused token again.
        middleware.invalidate();
        let before = server.count();
        let err = middleware.access_token().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
        assert!(
            server.count() - before <= 1,
            "more than one token request per use"
        );
    }
    assert_eq!(server.refresh_tokens_seen(), ["rt-1", "rt-2"]);
}

#[test]
fn client_credentials_falls_back_to_a_new_grant_after_a_lost_refresh() {
    let server = server(vec![Answer::Drop, Answer::token("fresh")]);
    let mut auth = authorizer(&server, "s");
    let token = Token::new("old").with_refresh_token("rt-1");
    assert_eq!(
        auth.refresh(&token).unwrap_err().kind(),
        ErrorKind::Transport
    );
    assert_eq!(auth.refresh(&token).unwrap().access_token(), "fresh");
    let requests = server.requests();
    assert_eq!(
        requests[1].field("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(server.refresh_tokens_seen(), ["rt-1"]);
}

#[test]
fn discovery_moves_on_after_a_redirect_or_html() {
    for first in [
        Answer::Reply(
            302,
            vec![("location".into(), "https://login.example.com/".into())],
            String::new(),
        ),
        Answer::Reply(
            200,
            vec![("content-type".into(), "text/html".into())],
            "<html>login</html>".into(),
        ),
    ] {
        let server = server(vec![first.clone(), metadata("{base}", "{base}/token", "")]);
        let auth = discover(&server.url("")).unwrap();
        assert_eq!(auth.token_url(), server.url("/token"), "{first:?}");
        assert_eq!(server.count(), 2);
    }
}

#[test]
fn discovery_with_only_key_based_methods_asks_for_one() {
    let server = server(vec![metadata(
        "{base}",
        "{base}/token",
        r#","token_endpoint_auth_methods_supported":["private_key_jwt"]"#,
    )]);
    let err = discover(&server.url("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("private_key_jwt"), "{err}");
}

#[test]
fn discovery_with_tls_client_auth_sends_the_id_only() {
    let server = server(vec![
        metadata(
            "{base}",
            "{base}/token",
            r#","token_endpoint_auth_methods_supported":["tls_client_auth","private_key_jwt"]"#,
        ),
        Answer::token("t"),
    ]);
    discover(&server.url("")).unwrap().authorize().unwrap();
    let request = &server.requests()[1];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.field("client_id").as_deref(), Some("svc"));
    assert_eq!(request.field("client_secret"), None);
}

/// A DPoP proof's claims, verified with the key in its header (as a server does).
#[cfg(feature = "jwt")]
fn dpop_claims(proof: &str) -> serde_json::Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(proof).unwrap();
    assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
    let key = DecodingKey::from_jwk(&header.jwk.unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(proof, &key, &validation)
        .unwrap()
        .claims
}

#[cfg(feature = "jwt")]
#[test]
fn dpop_token_requests_carry_a_proof_and_follow_the_nonce_once() {
    use en_core_auth::oauth2::DpopKey;
    let dpop_token = Answer::json(
        200,
        r#"{"access_token":"bound","token_type":"DPoP","expires_in":60}"#,
    );
    let server = server(vec![
        Answer::json(400, r#"{"error":"use_dpop_nonce"}"#).with_header("dpop-nonce", "n-1"),
        dpop_token.clone(),
        dpop_token,
        // A server that keeps asking gets no loop.
        Answer::json(400, r#"{"error":"use_dpop_nonce"}"#).with_header("dpop-nonce", "n-2"),
        Answer::json(400, r#"{"error":"use_dpop_nonce"}"#).with_header("dpop-nonce", "n-3"),
    ]);
    let key = DpopKey::generate().unwrap();
    let mut auth = authorizer(&server, "s").with_dpop(key);
    let token = auth.authorize().unwrap();
    assert_eq!(
        (token.access_token(), token.token_type()),
        ("bound", "DPoP")
    );
    assert_eq!(server.count(), 2, "one retry with the nonce");
    auth.authorize().unwrap();
    assert_eq!(server.count(), 3, "the nonce was kept");
    let err = auth.authorize().unwrap_err();
    assert_eq!(
        err.downcast_ref::<OAuthError>().unwrap().error(),
        "use_dpop_nonce"
    );
    assert_eq!(server.count(), 5);
    let proofs: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .map(|r| dpop_claims(r.header("dpop").unwrap()))
        .collect();
    for claims in &proofs {
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], server.url("/oauth2/token"));
        assert!(claims.get("ath").is_none(), "no access token yet");
    }
    assert!(proofs[0].get("nonce").is_none());
    assert_eq!(proofs[1]["nonce"], "n-1");
    assert_eq!(proofs[2]["nonce"], "n-1");
    assert_eq!(proofs[4]["nonce"], "n-2");
    let mut jtis: Vec<&str> = proofs.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    jtis.sort_unstable();
    jtis.dedup();
    assert_eq!(jtis.len(), 5, "a new jti per request");
}

#[cfg(feature = "jwt")]
#[test]
fn a_refresh_token_is_resent_after_use_dpop_nonce() {
    use en_core_auth::oauth2::DpopKey;
    let server = server(vec![
        Answer::json(400, r#"{"error":"use_dpop_nonce"}"#).with_header("dpop-nonce", "n-1"),
        Answer::json(
            200,
            r#"{"access_token":"a","token_type":"DPoP","expires_in":60}"#,
        ),
    ]);
    let mut auth = refresh_authorizer(&server, "rt").with_dpop(DpopKey::generate().unwrap());
    assert!(auth.authorize().is_ok());
    // The server refused the proof before looking at the grant: sending it again is safe.
    assert_eq!(server.refresh_tokens_seen(), ["rt", "rt"]);
}

/// A closure that hands out `subject-1`, `subject-2`, … and counts its calls.
fn numbered(
    prefix: &'static str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    impl FnMut() -> Result<String, en_core_auth::Error> + Send + 'static,
) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&calls);
    (calls, move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(format!("{prefix}-{n}"))
    })
}

#[test]
fn token_exchange_sends_the_subject_token_and_what_it_asks_for() {
    use en_core_auth::oauth2::TokenExchange;
    let server = server(vec![
        Answer::token("exchanged-1"),
        Answer::token("exchanged-2"),
    ]);
    let (calls, subject) = numbered("subject");
    let mut auth = TokenExchange::new(
        ClientInfo::new("ci", ""),
        server.url("/oauth2/token"),
        subject,
        TokenExchange::JWT,
    )
    .unwrap()
    .with_http_client(fast_http())
    .with_audience("orders-api")
    .with_resource("https://a.example.com/")
    .with_resource("https://b.example.com/")
    .with_requested_token_type(TokenExchange::ACCESS_TOKEN)
    .with_scopes(["deploy"]);
    assert_eq!(auth.authorize().unwrap().access_token(), "exchanged-1");
    // A refresh is a new exchange with a fresh subject token.
    let renewed = auth.refresh(&Token::new("exchanged-1")).unwrap();
    assert_eq!(renewed.access_token(), "exchanged-2");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let requests = server.requests();
    let form = requests[0].form();
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ),
            ("subject_token", "subject-1"),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("audience", "orders-api"),
            ("resource", "https://a.example.com/"),
            ("resource", "https://b.example.com/"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token"
            ),
            ("scope", "deploy"),
            ("client_id", "ci"),
        ]
    );
    assert_eq!(
        requests[1].field("subject_token").as_deref(),
        Some("subject-2")
    );
}

#[test]
fn token_exchange_refuses_an_n_a_token_and_a_failing_closure_sends_nothing() {
    use en_core_auth::oauth2::TokenExchange;
    let server = server(vec![Answer::json(
        200,
        r#"{"access_token":"an-id-token","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"N_A"}"#,
    )]);
    let (_, subject) = numbered("subject");
    let mut auth = TokenExchange::new(
        ClientInfo::new("ci", ""),
        server.url("/oauth2/token"),
        subject,
        TokenExchange::JWT,
    )
    .unwrap()
    .with_http_client(fast_http());
    assert_eq!(
        auth.authorize().unwrap_err().kind(),
        ErrorKind::MalformedResponse
    );

    let mut failing = TokenExchange::new(
        ClientInfo::new("ci", ""),
        server.url("/oauth2/token"),
        || {
            Err(en_core_auth::Error::new(
                ErrorKind::Configuration,
                "no token file",
            ))
        },
        TokenExchange::JWT,
    )
    .unwrap();
    let err = failing.authorize().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("no token file"));
    let mut empty = TokenExchange::new(
        ClientInfo::new("ci", ""),
        server.url("/oauth2/token"),
        || Ok("  ".to_owned()),
        TokenExchange::JWT,
    )
    .unwrap();
    assert_eq!(
        empty.authorize().unwrap_err().kind(),
        ErrorKind::Configuration
    );
    assert_eq!(server.count(), 1);
}

#[test]
fn jwt_bearer_sends_a_fresh_assertion_for_every_token_through_the_middleware() {
    use en_core_auth::oauth2::JwtBearer;
    let server = server(vec![Answer::token("jb-1"), Answer::token("jb-2")]);
    let (calls, assertion) = numbered("assertion");
    let auth = JwtBearer::new(
        ClientInfo::new("svc", "s"),
        server.url("/oauth2/token"),
        assertion,
    )
    .unwrap()
    .with_http_client(fast_http())
    .with_scopes(["read"]);
    let middleware = en_core_auth::AuthMiddleware::new(auth);
    assert_eq!(middleware.access_token().unwrap(), "jb-1");
    middleware.invalidate();
    assert_eq!(middleware.access_token().unwrap(), "jb-2");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (n, request) in requests.iter().enumerate() {
        assert_eq!(
            request.field("grant_type").as_deref(),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        assert_eq!(
            request.field("assertion"),
            Some(format!("assertion-{}", n + 1))
        );
        assert_eq!(request.field("scope").as_deref(), Some("read"));
        assert!(
            request.header("authorization").is_some(),
            "client_secret_basic"
        );
    }
}

#[test]
fn a_refresh_token_throttled_beyond_the_cap_is_kept_for_later() {
    let server = server(vec![
        Answer::Reply(429, vec![], "slow down".into()).with_header("retry-after", "60"),
        Answer::token("later"),
    ]);
    let mut auth = refresh_authorizer(&server, "rt");
    assert_eq!(auth.authorize().unwrap_err().kind(), ErrorKind::Server);
    // The server said "not now", not "used": the refresh token is still good to send.
    assert_eq!(auth.authorize().unwrap().access_token(), "later");
    assert_eq!(server.refresh_tokens_seen(), ["rt", "rt"]);
}

#[test]
fn a_refresh_answered_with_an_unusable_token_is_not_sent_again() {
    let server = server(vec![Answer::json(
        200,
        r#"{"access_token":"a","token_type":"N_A","refresh_token":"rt-2"}"#,
    )]);
    let mut auth = refresh_authorizer(&server, "rt");
    assert_eq!(
        auth.authorize().unwrap_err().kind(),
        ErrorKind::MalformedResponse
    );
    // The server acted on it (and may have rotated it): not sent again.
    assert_eq!(
        auth.authorize().unwrap_err().kind(),
        ErrorKind::CredentialsRejected
    );
    assert_eq!(server.refresh_tokens_seen(), ["rt"]);
}
