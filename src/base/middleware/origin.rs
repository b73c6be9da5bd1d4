//! Where credentials may go: origins (scheme, host and port), the clear-text rule of
//! RFC 6750 §5.3, and the optional list of allowed origins.

use ureq::http::Uri;

use crate::http::is_loopback;
use crate::{Error, ErrorKind};

/// Scheme, host and port: where credentials may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    pub(crate) fn of(uri: &Uri) -> Origin {
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        Origin {
            host: uri.host().unwrap_or("").to_ascii_lowercase(),
            port: uri.port_u16().or(default_port),
            scheme,
        }
    }

    fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// Whether going from `self` to `next` leaves TLS behind.
    pub(crate) fn downgrades_to(&self, next: &Origin) -> bool {
        self.is_https() && !next.is_https()
    }
}

/// The builder's rules on where credentials go.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginPolicy {
    /// Plain `http://` to a host that is not loopback is allowed.
    pub(crate) allow_insecure_http: bool,
    /// When set, credentials go only to these origins; requests elsewhere pass untouched.
    pub(crate) allowed: Option<Vec<Origin>>,
}

impl OriginPolicy {
    /// Whether requests to `origin` get credentials at all.
    pub(crate) fn covers(&self, origin: &Origin) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(origin))
    }

    /// Refuses clear-text credentials, before anything is sent (RFC 6750 §5.3): a token
    /// read on the wire is as good as a password until it expires.
    pub(crate) fn check(&self, origin: &Origin) -> Result<(), Error> {
        if origin.is_https() || self.allow_insecure_http || is_loopback(&origin.host) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "refusing to send a token over plain HTTP to `{}`; use https, or \
                 AuthMiddlewareBuilder::allow_insecure_http() if this network is trusted",
                origin.host
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Origin {
        Origin::of(&url.parse().unwrap())
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = origin("http://127.0.0.1:8080/x");
        assert_eq!(a, origin("http://127.0.0.1:8080/y?z"));
        assert_ne!(a, origin("http://127.0.0.1:8081/x"));
        assert_ne!(a, origin("https://127.0.0.1:8080/x"));
        assert_eq!(
            origin("https://Example.com/"),
            origin("https://example.com:443/")
        );
        assert_eq!(
            origin("http://example.com/"),
            origin("http://example.com:80/")
        );
    }

    #[test]
    fn clear_text_only_to_loopback_unless_allowed() {
        let strict = OriginPolicy::default();
        assert!(strict.check(&origin("https://api.example.com/")).is_ok());
        assert!(strict.check(&origin("http://127.0.0.1:9/")).is_ok());
        assert!(strict.check(&origin("http://localhost/")).is_ok());
        assert!(strict.check(&origin("http://[::1]:8/")).is_ok());
        let refused = strict
            .check(&origin("http://api.example.com/"))
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Configuration);
        let relaxed = OriginPolicy {
            allow_insecure_http: true,
            ..OriginPolicy::default()
        };
        assert!(relaxed.check(&origin("http://api.example.com/")).is_ok());
    }

    #[test]
    fn allowed_origins_limit_where_credentials_go() {
        let policy = OriginPolicy {
            allowed: Some(vec![origin("https://api.example.com")]),
            ..OriginPolicy::default()
        };
        assert!(policy.covers(&origin("https://api.example.com:443/x")));
        assert!(!policy.covers(&origin("https://other.example.com/")));
        assert!(OriginPolicy::default().covers(&origin("https://any.example/")));
    }

    #[test]
    fn downgrades_are_https_to_anything_else() {
        assert!(origin("https://a/").downgrades_to(&origin("http://a/")));
        assert!(!origin("http://a/").downgrades_to(&origin("https://a/")));
        assert!(!origin("https://a/").downgrades_to(&origin("https://b/")));
    }
}
