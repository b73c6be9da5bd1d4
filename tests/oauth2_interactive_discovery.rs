//! Discovery for the interactive logins and logout: endpoints the OpenID document lacks
//! are read from the RFC 8414 document (as django-oauth-toolkit needs), and only when a
//! flow needs them.

#[path = "support/http_server.rs"]
mod http_server;

use en_core_auth::oauth2::{AuthorizationCode, ClientCredentials, DeviceCode};
use en_core_auth::{Authorizer, ClientInfo, ErrorKind};
use http_server::{Reply, TestServer};

/// A server whose OpenID document names the authorization endpoint only, and whose RFC
/// 8414 document adds the device authorization and revocation endpoints when `rfc8414`.
fn server(rfc8414: bool) -> TestServer {
    TestServer::start(move |seen| {
        let issuer = format!("http://{}", seen.header("host").unwrap_or_default());
        let json = |body: String| Reply::ok(&body).with_header("content-type", "application/json");
        match seen.path.as_str() {
            "/.well-known/openid-configuration" => json(format!(
                r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token",
                    "authorization_endpoint":"{issuer}/authorize"}}"#
            )),
            "/.well-known/oauth-authorization-server" if rfc8414 => json(format!(
                r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token",
                    "authorization_endpoint":"{issuer}/elsewhere",
                    "device_authorization_endpoint":"{issuer}/device",
                    "revocation_endpoint":"{issuer}/revoke"}}"#
            )),
            _ => Reply::status(404),
        }
    })
}

#[test]
fn missing_endpoints_come_from_the_rfc_8414_document() {
    let server = server(true);
    let issuer = server.url("");
    let issuer = issuer.trim_end_matches('/');
    let device = DeviceCode::discover(ClientInfo::new("cli", ""), issuer).unwrap();
    assert_eq!(
        device.device_authorization_url(),
        format!("{issuer}/device")
    );
    assert_eq!(
        device.revocation_url(),
        Some(format!("{issuer}/revoke").as_str())
    );
    let browser = AuthorizationCode::discover(ClientInfo::new("cli", ""), issuer).unwrap();
    // The OpenID document's own endpoint wins; only the gap is filled.
    assert_eq!(browser.authorization_url(), format!("{issuer}/authorize"));
    assert_eq!(
        browser.revocation_url(),
        Some(format!("{issuer}/revoke").as_str())
    );
    // Two documents for each login.
    assert_eq!(server.count(), 4);
}

#[test]
fn client_credentials_discovery_asks_one_document() {
    let server = server(true);
    let issuer = server.url("");
    ClientCredentials::discover(ClientInfo::new("svc", "s"), issuer.trim_end_matches('/')).unwrap();
    assert_eq!(server.count(), 1);
}

#[test]
fn no_device_endpoint_anywhere_is_a_configuration_error() {
    let server = server(false);
    let issuer = server.url("");
    let err =
        DeviceCode::discover(ClientInfo::new("cli", ""), issuer.trim_end_matches('/')).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(
        err.to_string().contains("device_authorization_endpoint"),
        "{err}"
    );
}

#[test]
fn extra_parameters_reach_the_device_authorization_request() {
    let server = TestServer::start(|seen| match seen.path.as_str() {
        "/device" => Reply::ok(
            r#"{"device_code":"dc","user_code":"ABCD-EFGH",
                "verification_uri":"https://idp.example.com/device","expires_in":60,"interval":1}"#,
        )
        .with_header("content-type", "application/json"),
        _ => Reply {
            status: 400,
            ..Reply::ok(r#"{"error":"access_denied"}"#)
        }
        .with_header("content-type", "application/json"),
    });
    let err = DeviceCode::new(
        ClientInfo::new("cli", ""),
        server.url("/device"),
        server.url("/token"),
    )
    .unwrap()
    .with_scopes(["openid"])
    .with_parameter("audience", "https://api.example.com/")
    .with_prompt(|_| Ok(()))
    .with_sleep(|_| {})
    .authorize()
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    let requests = server.requests();
    let form = |path: &str| {
        let seen = requests.iter().find(|seen| seen.path == path).unwrap();
        String::from_utf8(seen.body.clone()).unwrap()
    };
    let device = form("/device");
    assert!(device.contains("scope=openid"), "{device}");
    assert!(
        device.contains("audience=https%3A%2F%2Fapi.example.com%2F"),
        "{device}"
    );
    // And to the token requests, as on every grant.
    assert!(form("/token").contains("audience="), "{}", form("/token"));
}

/// A server whose OpenID document adds `oidc_extra` to the issuer and token endpoint, and
/// whose RFC 8414 document adds `rfc8414_extra` (both JSON members, `{issuer}` replaced).
fn server_naming(oidc_extra: &'static str, rfc8414_extra: &'static str) -> TestServer {
    TestServer::start(move |seen| {
        let issuer = format!("http://{}", seen.header("host").unwrap_or_default());
        let document = |extra: &str| {
            let extra = extra.replace("{issuer}", &issuer);
            Reply::ok(&format!(
                r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"{extra}}}"#
            ))
            .with_header("content-type", "application/json")
        };
        match seen.path.as_str() {
            "/.well-known/openid-configuration" => document(oidc_extra),
            "/.well-known/oauth-authorization-server" => document(rfc8414_extra),
            _ => Reply::status(404),
        }
    })
}

/// Every endpoint discovery fills in passes the check the explicit setters apply: logout
/// must not post a refresh token and the client secret in clear text because the metadata
/// said so.
#[test]
fn a_discovered_endpoint_over_plain_http_is_refused() {
    for member in [
        r#","revocation_endpoint":"http://idp.example.com/revoke""#,
        r#","authorization_endpoint":"http://idp.example.com/authorize""#,
        r#","device_authorization_endpoint":"http://idp.example.com/device""#,
        r#","jwks_uri":"http://idp.example.com/jwks""#,
    ] {
        let server = server_naming(member, "");
        let issuer = server.url("");
        let issuer = issuer.trim_end_matches('/');
        let err = ClientCredentials::discover(ClientInfo::new("svc", "s"), issuer).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{member}: {err}");
        assert!(err.to_string().contains("https"), "{err}");
        // The opt-out applies to these endpoints as to the token endpoint.
        ClientCredentials::builder(ClientInfo::new("svc", "s"))
            .issuer(issuer)
            .allow_insecure_http()
            .build()
            .unwrap();
    }
    // Plain http to loopback stays allowed, as for the explicit setters.
    let server = server_naming(r#","revocation_endpoint":"{issuer}/revoke""#, "");
    ClientCredentials::discover(
        ClientInfo::new("svc", "s"),
        server.url("").trim_end_matches('/'),
    )
    .unwrap();
}

/// The same for what the RFC 8414 document adds to the OpenID one.
#[test]
fn a_completed_endpoint_over_plain_http_is_refused() {
    let server = server_naming(
        r#","authorization_endpoint":"{issuer}/authorize""#,
        r#","revocation_endpoint":"http://idp.example.com/revoke""#,
    );
    let issuer = server.url("");
    let issuer = issuer.trim_end_matches('/');
    let err = AuthorizationCode::discover(ClientInfo::new("cli", ""), issuer).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("revocation_endpoint"), "{err}");
    let login = AuthorizationCode::builder(ClientInfo::new("cli", ""))
        .issuer(issuer)
        .allow_insecure_http()
        .build()
        .unwrap();
    assert_eq!(
        login.revocation_url(),
        Some("http://idp.example.com/revoke")
    );
}
