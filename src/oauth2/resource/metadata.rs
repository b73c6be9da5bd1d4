//! Finding and checking an API's protected-resource metadata (RFC 9728).

use serde_json::Value;

use super::challenge;
use crate::http::{Attempt, HttpClient, Reply, check_endpoint};
use crate::{Error, ErrorKind};

/// What this crate uses from a protected-resource metadata document, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceMetadata {
    /// Where the document was found.
    pub(crate) url: String,
    /// Its `resource`: the identifier tokens are asked for (RFC 8707 `resource=`).
    pub(crate) resource: String,
    /// Its `authorization_servers`, in order.
    pub(crate) authorization_servers: Vec<String>,
}

/// Finds the metadata of the API at `api` (an absolute URL that passed `check_endpoint`):
/// the document its `401` challenge names (RFC 9728 §5.1; one unauthenticated GET to the
/// API), else `/.well-known/oauth-protected-resource{path}` then
/// `/.well-known/oauth-protected-resource` on its origin (RFC 9728 §3.1; the second as the
/// Model Context Protocol's authorization spec asks). The first document found must
/// describe this API ([`check_resource`]), or it is an error: nothing it names is used.
pub(crate) fn find(
    http: &HttpClient,
    api: &str,
    allow_insecure_http: bool,
) -> Result<ResourceMetadata, Error> {
    log::debug!("asking the API {api} for its protected-resource metadata");
    let probe = get(http, api, "API")?;
    let named = (probe.status == 401)
        .then(|| challenge::resource_metadata(&probe.www_authenticate))
        .flatten();
    let candidates = match named {
        Some(url) => {
            check_endpoint(&url, allow_insecure_http)?;
            vec![url]
        }
        None => well_known_urls(api),
    };
    let mut tried = Vec::new();
    for url in candidates {
        log::debug!("fetching protected-resource metadata from {url}");
        let reply = get(http, &url, "protected-resource metadata endpoint")?;
        if !(200..=299).contains(&reply.status) {
            tried.push(format!("{url} (HTTP {})", reply.status));
            continue;
        }
        let document = parse(&reply.body, &url)?;
        check_resource(&document.resource, api, &url)?;
        return Ok(document);
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "the API {api} names no protected-resource metadata in its 401 challenge and \
             none was found at {} (RFC 9728)",
            tried.join(", ")
        ),
    ))
}

/// A GET with transient failures retried; redirects are not followed (the reply is
/// returned, and a 3xx is not metadata).
fn get(http: &HttpClient, url: &str, what: &str) -> Result<Reply, Error> {
    http.with_retries(|| {
        let reply = match HttpClient::retry_transport(http.get(url)) {
            Ok(reply) => reply,
            Err(attempt) => return attempt,
        };
        log::debug!("the {what} {url} answered HTTP {}", reply.status);
        match reply.status {
            408 | 429 | 500..=599 => Attempt::Retry(
                Error::new(
                    ErrorKind::Server,
                    format!("the {what} {url} answered HTTP {}", reply.status),
                ),
                reply.retry_after,
            ),
            _ => Attempt::Done(Ok(reply)),
        }
    })
}

/// RFC 9728 §3.1: the well-known suffix goes between the host and the path (a
/// terminating `/` of the path dropped, the query kept), then the origin's own.
pub(crate) fn well_known_urls(api: &str) -> Vec<String> {
    let (origin, rest) = split_origin(api);
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path = path.trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() || query.is_some() {
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        urls.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}{query}"
        ));
    }
    urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    urls
}

/// `scheme://authority` and the rest (path, query, fragment) of an absolute URL.
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

/// Reads the document's `resource` and `authorization_servers`.
fn parse(body: &[u8], url: &str) -> Result<ResourceMetadata, Error> {
    let malformed = |what: &str| {
        Error::new(
            ErrorKind::MalformedResponse,
            format!("the protected-resource metadata at {url} {what}"),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed("is not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| malformed("is not a JSON object"))?;
    let resource = match object.get("resource") {
        Some(Value::String(resource)) if !resource.is_empty() => resource.clone(),
        _ => return Err(malformed("has no `resource` (RFC 9728 §2 requires it)")),
    };
    let authorization_servers = match object.get("authorization_servers") {
        Some(Value::Array(servers)) => servers
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(malformed("has `authorization_servers` that is not a list")),
    };
    Ok(ResourceMetadata {
        url: url.to_owned(),
        resource,
        authorization_servers,
    })
}

/// RFC 9728 §3.3 (and §7.3, impersonation): the document must describe the API that was
/// asked about, whether found at the well-known URL or through the API's challenge. Its
/// `resource` must have the API's origin, and be the API's URL (a trailing `/` aside) or a
/// path prefix of it ending at a `/` boundary; no fragment. Otherwise a hostile API could
/// send the login to an authorization server of its choosing, or get a token meant for
/// another API.
pub(crate) fn check_resource(resource: &str, api: &str, url: &str) -> Result<(), Error> {
    let mismatch = || {
        Error::new(
            ErrorKind::Configuration,
            format!(
                "the protected-resource metadata at {url} is for `{resource}`, not for the API \
                 `{api}` (RFC 9728 §3.3): nothing it names is used"
            ),
        )
    };
    if resource.contains('#') || !resource.contains("://") {
        return Err(mismatch());
    }
    let (resource_origin, resource_rest) = split_origin(resource);
    let (api_origin, api_rest) = split_origin(api);
    if !same_origin(resource_origin, api_origin) {
        return Err(mismatch());
    }
    let path_of = |rest: &str| rest.split(['?', '#']).next().unwrap_or_default().to_owned();
    let resource_path = path_of(resource_rest);
    let api_path = path_of(api_rest);
    let resource_path = resource_path.trim_end_matches('/');
    let api_path = api_path.trim_end_matches('/');
    let same_query = resource_rest.split_once('?').map(|(_, q)| q)
        == api_rest
            .split('#')
            .next()
            .unwrap_or("")
            .split_once('?')
            .map(|(_, q)| q);
    let covers = (resource_path == api_path && same_query)
        || (!resource_rest.contains('?') && api_path.starts_with(&format!("{resource_path}/")));
    if covers { Ok(()) } else { Err(mismatch()) }
}

/// Scheme and host compared without case, the default port made explicit.
fn same_origin(a: &str, b: &str) -> bool {
    fn normal(origin: &str) -> Option<(String, String, u16)> {
        let uri: ureq::http::Uri = origin.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some((scheme, uri.host()?.to_ascii_lowercase(), port))
    }
    matches!((normal(a), normal(b)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_per_rfc_9728() {
        assert_eq!(
            well_known_urls("https://api.example.com/mcp/"),
            [
                "https://api.example.com/.well-known/oauth-protected-resource/mcp",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            well_known_urls("https://api.example.com"),
            ["https://api.example.com/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            well_known_urls("https://api.example.com:8443/v1?tenant=a"),
            [
                "https://api.example.com:8443/.well-known/oauth-protected-resource/v1?tenant=a",
                "https://api.example.com:8443/.well-known/oauth-protected-resource",
            ]
        );
    }

    #[test]
    fn a_document_must_describe_the_api() {
        let api = "https://api.example.com/mcp";
        for good in [
            "https://api.example.com/mcp",
            "https://api.example.com/mcp/",
            "https://API.example.com:443/mcp",
            "https://api.example.com/",
            "https://api.example.com",
        ] {
            assert!(check_resource(good, api, "m").is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example.com/mcp",
            "http://api.example.com/mcp",
            "https://api.example.com:8443/mcp",
            "https://api.example.com/mcp2",
            "https://api.example.com/other",
            "https://api.example.com/mcp/deeper",
            "https://api.example.com/mcp#frag",
            "https://api.example.com/mcp?tenant=b",
            "api.example.com/mcp",
        ] {
            let err = check_resource(bad, api, "https://api.example.com/m").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad}");
            let text = err.to_string();
            assert!(text.contains(bad) && text.contains(api), "{text}");
        }
    }

    #[test]
    fn documents_are_read_strictly() {
        let ok = parse(
            br#"{"resource":"https://a.example/","authorization_servers":["https://as.example"],"scopes_supported":["x"]}"#,
            "u",
        )
        .unwrap();
        assert_eq!(ok.authorization_servers, ["https://as.example"]);
        for body in [
            &b"<html>"[..],
            b"[]",
            br#"{"authorization_servers":["https://as.example"]}"#,
            br#"{"resource":5}"#,
            br#"{"resource":"https://a.example","authorization_servers":"https://as.example"}"#,
        ] {
            assert_eq!(
                parse(body, "u").unwrap_err().kind(),
                ErrorKind::MalformedResponse
            );
        }
    }
}
