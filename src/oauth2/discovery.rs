//! Finding a token endpoint from an issuer: OpenID Connect Discovery 1.0
//! (`/.well-known/openid-configuration`) and OAuth 2.0 Authorization Server Metadata
//! (RFC 8414, `/.well-known/oauth-authorization-server`).

use serde_json::Value;

use crate::http::{Attempt, HttpClient, check_endpoint};
use crate::{Error, ErrorKind};

/// What this crate uses from an authorization server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) token_endpoint: String,
    /// `token_endpoint_auth_methods_supported`; RFC 8414 says an absent list means
    /// `client_secret_basic` only.
    pub(crate) auth_methods: Vec<String>,
    /// The endpoints the interactive flows and logout need; any may be missing.
    pub(crate) endpoints: Endpoints,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): every authorization
    /// response names the issuer, so one without `iss` is refused.
    pub(crate) iss_in_responses: bool,
}

/// Optional endpoints from the metadata (`authorization_endpoint`,
/// `device_authorization_endpoint`, `revocation_endpoint`, `jwks_uri`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) authorization: Option<String>,
    pub(crate) device_authorization: Option<String>,
    pub(crate) revocation: Option<String>,
    pub(crate) jwks: Option<String>,
    /// `registration_endpoint` (RFC 7591 dynamic client registration).
    pub(crate) registration: Option<String>,
}

impl Endpoints {
    fn from_object(object: &serde_json::Map<String, Value>) -> Endpoints {
        let url = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
        };
        Endpoints {
            authorization: url("authorization_endpoint"),
            device_authorization: url("device_authorization_endpoint"),
            revocation: url("revocation_endpoint"),
            jwks: url("jwks_uri"),
            registration: url("registration_endpoint"),
        }
    }

    /// Checks every endpoint named here as the explicit setters check theirs
    /// ([`check_endpoint`]): each one receives the client's credentials or tokens.
    fn check(&self, allow_insecure_http: bool) -> Result<(), Error> {
        let named = [
            ("authorization_endpoint", &self.authorization),
            ("device_authorization_endpoint", &self.device_authorization),
            ("revocation_endpoint", &self.revocation),
            ("jwks_uri", &self.jwks),
        ];
        for (name, url) in named {
            if let Some(url) = url {
                checked(name, url, allow_insecure_http)?;
            }
        }
        Ok(())
    }

    /// Fills what is missing here from `other`.
    fn fill_from(&mut self, other: Endpoints) {
        self.authorization = self.authorization.take().or(other.authorization);
        self.device_authorization = self
            .device_authorization
            .take()
            .or(other.device_authorization);
        self.revocation = self.revocation.take().or(other.revocation);
        self.jwks = self.jwks.take().or(other.jwks);
        self.registration = self.registration.take().or(other.registration);
    }
}

/// [`check_endpoint`] for the metadata member `name`, whose error names the member.
fn checked(name: &str, url: &str, allow_insecure_http: bool) -> Result<(), Error> {
    check_endpoint(url, allow_insecure_http)
        .map(|_| ())
        .map_err(|error| {
            let detail =
                std::error::Error::source(&error).map_or_else(String::new, |d| d.to_string());
            Error::new(
                error.kind(),
                format!("the issuer's metadata names a {name} that cannot be used: {detail}"),
            )
        })
}

/// Completes `metadata` from the RFC 8414 documents of its issuer when the OpenID
/// document lacked an endpoint a flow needs: some servers (django-oauth-toolkit among
/// them) list their revocation and device authorization endpoints only there. Documents
/// that are missing, unreadable or name another issuer are skipped: this only adds. An
/// endpoint added must pass [`check_endpoint`], as the ones discovered first did.
pub(crate) fn complete(
    http: &HttpClient,
    metadata: &mut Metadata,
    allow_insecure_http: bool,
) -> Result<(), Error> {
    for url in metadata_urls(&metadata.issuer).into_iter().skip(1) {
        log::debug!("fetching RFC 8414 metadata from {url} for missing endpoints");
        let Ok(reply) = http.get(&url) else { continue };
        if !(200..=299).contains(&reply.status) {
            continue;
        }
        let Ok(found) = parse_metadata(&reply.body) else {
            continue;
        };
        if found.issuer.trim_end_matches('/') != metadata.issuer.trim_end_matches('/') {
            continue;
        }
        metadata.endpoints.fill_from(found.endpoints);
        return metadata.endpoints.check(allow_insecure_http);
    }
    Ok(())
}

/// The metadata URLs to try for `issuer`, in order: OpenID Connect's (appended to the
/// issuer), RFC 8414's (inserted between host and path), and RFC 8414's appended (which
/// some servers with a path in their issuer use). For an issuer without a path, the last
/// two are the same URL and it is tried once.
pub(crate) fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match issuer[after_scheme..].find('/') {
        Some(i) => issuer.split_at(after_scheme + i),
        None => (issuer, ""),
    };
    urls.push(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    ));
    if !path.is_empty() {
        urls.push(format!("{issuer}/.well-known/oauth-authorization-server"));
    }
    urls
}

/// Fetches and checks the metadata of `issuer`. A 3xx, a 4xx, or a 200 whose body is not
/// a JSON object at one URL moves on to the next;
/// transient failures are retried as `http`'s policy says. The issuer in the document
/// must be the one asked for (RFC 8414 §3.3, a trailing `/` aside), and every endpoint it
/// names that this crate uses must pass [`check_endpoint`].
pub(crate) fn discover(
    http: &HttpClient,
    issuer: &str,
    allow_insecure_http: bool,
) -> Result<Metadata, Error> {
    check_endpoint(issuer, allow_insecure_http)?;
    if issuer.contains('?') || issuer.contains('#') {
        return Err(Error::new(
            ErrorKind::Configuration,
            "an issuer URL has no query or fragment",
        ));
    }
    let mut tried = Vec::new();
    for url in metadata_urls(issuer) {
        log::debug!("fetching authorization server metadata from {url}");
        let reply = http.with_retries(|| {
            let reply = match HttpClient::retry_transport(http.get(&url)) {
                Ok(reply) => reply,
                Err(attempt) => return attempt,
            };
            log::debug!("metadata endpoint answered HTTP {}", reply.status);
            match reply.status {
                408 | 429 | 500..=599 => Attempt::Retry(
                    reply.error_at(Error::new(
                        ErrorKind::Server,
                        format!(
                            "the metadata endpoint answered HTTP {} with {}",
                            reply.status,
                            reply.describe_body()
                        ),
                    )),
                    reply.retry_after,
                ),
                _ => Attempt::Done(Ok(reply)),
            }
        })?;
        match reply.status {
            // A login page or a portal's HTML answering 200 for every path is not
            // metadata: the next URL may have it.
            200..=299 if !is_json_object(&reply.body) => {
                tried.push(format!(
                    "{url} (HTTP {}, {} where a JSON object was expected)",
                    reply.status,
                    reply.describe_body()
                ));
            }
            200..=299 => {
                let metadata = parse_metadata(&reply.body)?;
                return check_metadata(metadata, issuer, allow_insecure_http);
            }
            // Redirects are not followed (they could lead anywhere); the next URL may answer.
            300..=499 => tried.push(format!("{url} (HTTP {})", reply.status)),
            status => {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    format!("the metadata endpoint {url} answered HTTP {status}"),
                ));
            }
        }
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "no authorization server metadata found for issuer `{issuer}`; tried {}",
            tried.join(", ")
        ),
    ))
}

/// Whether `body` is a JSON object (cheap check before the full parse).
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, Value>>(body).is_ok()
}

/// Reads the fields this crate needs from a metadata document.
pub(crate) fn parse_metadata(body: &[u8]) -> Result<Metadata, Error> {
    let malformed = |what: &str| {
        Error::new(
            ErrorKind::MalformedResponse,
            format!("the authorization server metadata {what}"),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed("is not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| malformed("is not a JSON object"))?;
    let string = |name: &str| match object.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(_) => Err(malformed(&format!(
            "has a `{name}` that is not a URL string"
        ))),
        None => Err(malformed(&format!("has no `{name}`"))),
    };
    let issuer = string("issuer")?;
    let token_endpoint = string("token_endpoint")?;
    let auth_methods = match object.get("token_endpoint_auth_methods_supported") {
        None | Some(Value::Null) => vec!["client_secret_basic".to_owned()],
        Some(Value::Array(methods)) => methods
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(malformed(
                "has a `token_endpoint_auth_methods_supported` that is not a list",
            ));
        }
    };
    Ok(Metadata {
        issuer,
        token_endpoint,
        auth_methods,
        endpoints: Endpoints::from_object(object),
        iss_in_responses: object
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn check_metadata(
    metadata: Metadata,
    issuer: &str,
    allow_insecure_http: bool,
) -> Result<Metadata, Error> {
    // A document that names another issuer could send our secret to someone else's
    // token endpoint (the mix-up attack RFC 8414 §3.3 guards against).
    if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "the metadata found for issuer `{issuer}` names another issuer, `{}`",
                metadata.issuer
            ),
        ));
    }
    checked(
        "token_endpoint",
        &metadata.token_endpoint,
        allow_insecure_http,
    )?;
    metadata.endpoints.check(allow_insecure_http)?;
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_an_issuer_without_a_path() {
        assert_eq!(
            metadata_urls("https://idp.example.com/"),
            vec![
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn urls_for_an_issuer_with_a_path() {
        assert_eq!(
            metadata_urls("https://idp.example.com/tenant/v2"),
            vec![
                "https://idp.example.com/tenant/v2/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/tenant/v2",
                "https://idp.example.com/tenant/v2/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn metadata_fields() {
        let metadata = parse_metadata(
            br#"{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token",
                 "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
        )
        .unwrap();
        assert_eq!(metadata.token_endpoint, "https://idp.example.com/token");
        assert_eq!(
            metadata.auth_methods,
            ["client_secret_post", "private_key_jwt"]
        );
        let defaulted = parse_metadata(br#"{"issuer":"i","token_endpoint":"t"}"#).unwrap();
        assert_eq!(defaulted.auth_methods, ["client_secret_basic"]);
    }

    #[test]
    fn optional_endpoints_are_read_and_completed() {
        let mut oidc = parse_metadata(
            br#"{"issuer":"i","token_endpoint":"t","authorization_endpoint":"a","jwks_uri":""}"#,
        )
        .unwrap();
        assert_eq!(oidc.endpoints.authorization.as_deref(), Some("a"));
        assert_eq!(oidc.endpoints.jwks, None);
        let rfc8414 = parse_metadata(
            br#"{"issuer":"i","token_endpoint":"t","authorization_endpoint":"other",
                 "revocation_endpoint":"r","device_authorization_endpoint":"d"}"#,
        )
        .unwrap();
        oidc.endpoints.fill_from(rfc8414.endpoints);
        // What the first document named wins; only the gaps are filled.
        assert_eq!(oidc.endpoints.authorization.as_deref(), Some("a"));
        assert_eq!(oidc.endpoints.revocation.as_deref(), Some("r"));
        assert_eq!(oidc.endpoints.device_authorization.as_deref(), Some("d"));
    }

    #[test]
    fn malformed_metadata() {
        for body in [
            &b"<html/>"[..],
            b"[]",
            br#"{"issuer":"https://idp.example.com"}"#,
            br#"{"token_endpoint":"https://idp.example.com/token"}"#,
            br#"{"issuer":5,"token_endpoint":"https://idp.example.com/token"}"#,
            br#"{"issuer":"i","token_endpoint":"t","token_endpoint_auth_methods_supported":"basic"}"#,
        ] {
            assert_eq!(
                parse_metadata(body).unwrap_err().kind(),
                ErrorKind::MalformedResponse
            );
        }
    }

    fn metadata(issuer: &str, token_endpoint: &str) -> Metadata {
        Metadata {
            issuer: issuer.to_owned(),
            token_endpoint: token_endpoint.to_owned(),
            auth_methods: vec![],
            endpoints: Endpoints::default(),
            iss_in_responses: false,
        }
    }

    #[test]
    fn the_iss_parameter_flag_is_read() {
        let base = r#""issuer":"https://i","token_endpoint":"https://i/t""#;
        for (extra, expected) in [
            ("", false),
            (
                r#","authorization_response_iss_parameter_supported":true"#,
                true,
            ),
            (
                r#","authorization_response_iss_parameter_supported":false"#,
                false,
            ),
            (
                r#","authorization_response_iss_parameter_supported":"yes""#,
                false,
            ),
        ] {
            let body = format!("{{{base}{extra}}}");
            let parsed = parse_metadata(body.as_bytes()).unwrap();
            assert_eq!(parsed.iss_in_responses, expected, "{body}");
        }
    }

    #[test]
    fn the_issuer_must_match() {
        let good = metadata("https://idp.example.com/", "https://idp.example.com/token");
        assert!(check_metadata(good, "https://idp.example.com", false).is_ok());
        let other = metadata("https://evil.example.com", "https://evil.example.com/token");
        let err = check_metadata(other, "https://idp.example.com", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }

    #[test]
    fn the_token_endpoint_must_be_safe() {
        let plain = metadata("https://idp.example.com", "http://idp.example.com/token");
        assert!(check_metadata(plain.clone(), "https://idp.example.com", false).is_err());
        assert!(check_metadata(plain, "https://idp.example.com", true).is_ok());
    }
}
