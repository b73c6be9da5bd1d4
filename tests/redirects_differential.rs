//! Differential: the same redirect scenarios through a plain ureq agent and through an
//! agent carrying the middleware end the same way (status or error, final URL, body, and
//! what the server saw: methods, paths and bodies), credentials aside.

#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/scripted.rs"]
mod scripted;

use std::time::Duration;

use en_core_auth::{AuthMiddleware, ClientInfo};
use http_server::{Reply, Seen, TestServer};
use scripted::{Script, Scripted};
use ureq::ResponseExt;

/// Routes: `/done…` answers 200 with the method; `/s/<status>/<location>` answers that
/// status with that (URL-unescaped) location; `/chain/<n>` counts down to `/done`.
fn route(seen: &Seen, other: &str) -> Reply {
    let path = seen.path.as_str();
    if path.contains("done") || path.starts_with("/?") {
        // No body for HEAD: the test server would write it, and break keep-alive.
        if seen.method == "HEAD" {
            return Reply::status(200);
        }
        return Reply::ok(&format!("{} {}", seen.method, path));
    }
    if let Some(rest) = path.strip_prefix("/s/") {
        let (status, location) = rest.split_once('/').unwrap_or((rest, ""));
        let status = status.parse().unwrap_or(500);
        let location = location.replace("%3F", "?").replace("OTHER", other);
        if location.is_empty() {
            return Reply::status(status);
        }
        return Reply::status(status).with_header("location", &location);
    }
    if let Some(n) = path.strip_prefix("/chain/") {
        let n: u32 = n.parse().unwrap_or(0);
        let next = if n <= 1 {
            "/done".to_owned()
        } else {
            format!("/chain/{}", n - 1)
        };
        return Reply::status(302).with_header("location", &next);
    }
    Reply::status(404)
}

/// How a call ended, with credentials left out.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Response {
        status: u16,
        url: String,
        body: String,
    },
    Error(String),
}

fn outcome(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Outcome {
    match result {
        Ok(mut response) => Outcome::Response {
            status: response.status().as_u16(),
            url: response.get_uri().to_string(),
            body: response.body_mut().read_to_string().unwrap_or_default(),
        },
        // ureq reports a redirect it cannot follow (no `Location`, or one above the root)
        // with ureq-proto's error type, which a middleware cannot build: it uses `BadUri`.
        Err(ureq::Error::Protocol(_) | ureq::Error::BadUri(_)) => {
            Outcome::Error("a redirect that cannot be followed".into())
        }
        Err(error) => Outcome::Error(error.to_string()),
    }
}

/// What the server saw, without headers.
fn trail(seen: &[Seen]) -> Vec<(String, String, Vec<u8>)> {
    seen.iter()
        .map(|s| (s.method.clone(), s.path.clone(), s.body.clone()))
        .collect()
}

fn config(
    status_errors: bool,
    max: u32,
    will_error: bool,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(status_errors)
        .max_redirects(max)
        .max_redirects_will_error(will_error)
        .timeout_global(Some(Duration::from_secs(30)))
}

#[test]
fn redirects_end_as_they_do_without_the_middleware() {
    let other = TestServer::start_on("127.0.0.2", |seen| route(seen, ""));
    let other_base = other.base.clone();
    let server = TestServer::start(move |seen| route(seen, &other_base));
    let script = Script::new(Some(Duration::from_secs(3600)));
    let auth = AuthMiddleware::new(Scripted::new(ClientInfo::new("c", "s"), &script));

    let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let mut paths = Vec::new();
    for status in [300, 301, 302, 303, 304, 307, 308] {
        paths.push(format!("/s/{status}/done"));
    }
    paths.extend(
        [
            "/s/302",                        // a redirect status without a Location
            "/s/302//abs/done",              // absolute path
            "/s/302/../done",                // up from /s/302
            "/s/302/./../x/done",            // dot segments
            "/s/302/../../done",             // up to the root
            "/s/302/../../../done",          // above the root
            "/s/302/%3Fq=1",                 // a bare query
            "/s/302/OTHER/done",             // another origin (absolute URL)
            "/s/307/OTHER/done",             // 307 to another origin
            "/s/303/OTHER/s/302/OTHER/done", // two hops
            "/chain/3",                      // three hops
            "/chain/12",                     // over the default limit
            "/s/404",                        // no redirect at all
        ]
        .map(str::to_owned),
    );
    let configs = [
        (true, 10, true),
        (false, 10, true),
        (true, 2, true),
        (true, 2, false),
        (false, 0, true),
    ];
    let mut compared = 0;
    for (status_errors, max, will_error) in configs {
        let plain: ureq::Agent = config(status_errors, max, will_error).build().into();
        let ours = auth.agent(config(status_errors, max, will_error));
        for path in &paths {
            for method in methods {
                let run = |agent: &ureq::Agent| {
                    let before = (server.count(), other.count());
                    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
                        "payload"
                    } else {
                        ""
                    };
                    let request = ureq::http::Request::builder()
                        .method(method)
                        .uri(server.url(path))
                        .body(body)
                        .unwrap();
                    let ended = outcome(agent.run(request));
                    let seen = (
                        trail(&server.requests()[before.0..]),
                        trail(&other.requests()[before.1..]),
                    );
                    (ended, seen)
                };
                let expected = run(&plain);
                let actual = run(&ours);
                assert_eq!(
                    actual, expected,
                    "{method} {path} (status errors {status_errors}, max {max}, error {will_error})"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 5 * 20 * 7);
    assert!(script.token_calls() >= 1, "the middleware did authorize");
}
