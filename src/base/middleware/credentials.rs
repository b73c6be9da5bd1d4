//! The credential headers: the token's header value, setting it with the API key and a
//! DPoP proof, and stripping every header that can carry a credential before a hop to
//! another origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ureq::http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use ureq::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::super::lifecycle::{Current, Lifecycle};
use crate::{Error, ErrorKind, Token};

/// The proof-of-possession header of RFC 9449.
const DPOP: HeaderName = HeaderName::from_static("dpop");

/// Which token goes in the header, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderFormat {
    /// Put the ID token in the header instead of the access token.
    pub(crate) id_token: bool,
    /// The prefix before the token: `None` means the token's own type (`Bearer`), `Some("")`
    /// means the bare token.
    pub(crate) prefix: Option<String>,
}

impl HeaderFormat {
    /// The header value for `token`, built once when the token arrives so that the hot
    /// path only clones it.
    pub(crate) fn value(&self, token: &Token) -> Result<HeaderValue, Error> {
        let value = if self.id_token {
            token.id_token().ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    "the ID token was asked for, but the identity provider issued none",
                )
            })?
        } else {
            token.access_token()
        };
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "the identity provider issued an empty token",
            ));
        }
        let prefix = self.prefix.as_deref().unwrap_or(token.token_type());
        let text = if prefix.is_empty() {
            value.to_owned()
        } else {
            format!("{prefix} {value}")
        };
        let mut header = HeaderValue::from_str(&text).map_err(|_| {
            Error::new(
                ErrorKind::MalformedResponse,
                "the token contains characters that are not allowed in an HTTP header",
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }
}

/// The token a request went out with.
pub(crate) struct Used {
    pub(crate) generation: u64,
    /// The token itself when the slow path fetched it (always for a bound token).
    pub(crate) current: Option<Arc<Current>>,
    /// The server nonce its DPoP proof carried, if any.
    pub(crate) nonce: Option<Arc<str>>,
}

impl Used {
    pub(crate) fn of(current: Arc<Current>) -> Used {
        Used {
            generation: current.generation,
            current: Some(current),
            nonce: None,
        }
    }
}

/// The headers the middleware sets.
pub(crate) struct Credentials {
    pub(crate) header_name: HeaderName,
    pub(crate) api_key: Option<(HeaderName, HeaderValue)>,
    /// Set once a token bound to a key (DPoP) was seen: from then on requests take the slow
    /// path, which reaches the token and its proof. One relaxed load on the hot path.
    pub(crate) proofs: Arc<AtomicBool>,
}

impl Credentials {
    /// Sets the credentials of the current token on `headers`.
    pub(crate) fn set(
        &self,
        lifecycle: &Lifecycle,
        headers: &mut HeaderMap,
        method: &Method,
        uri: &Uri,
    ) -> Result<Used, Error> {
        if !self.proofs.load(Ordering::Relaxed)
            && let Some((header, generation)) = lifecycle.fresh()
        {
            self.insert(headers, header);
            return Ok(Used {
                generation,
                current: None,
                nonce: None,
            });
        }
        let current = lifecycle.current()?;
        let nonce = self.set_current(&current, headers, method, uri)?;
        Ok(Used {
            nonce,
            ..Used::of(current)
        })
    }

    /// Sets the credentials of `current`, with a fresh proof when the token is bound;
    /// returns the server nonce that proof carries.
    pub(crate) fn set_current(
        &self,
        current: &Current,
        headers: &mut HeaderMap,
        method: &Method,
        uri: &Uri,
    ) -> Result<Option<Arc<str>>, Error> {
        self.insert(headers, current.header.clone());
        let Some(proof) = current.token.request_proof() else {
            return Ok(None);
        };
        let proof = proof.proof(method.as_str(), uri, current.token.access_token())?;
        headers.insert(DPOP, proof.header);
        Ok(proof.nonce)
    }

    pub(crate) fn insert(&self, headers: &mut HeaderMap, header: HeaderValue) {
        headers.insert(self.header_name.clone(), header);
        if let Some((name, key)) = &self.api_key {
            headers.insert(name.clone(), key.clone());
        }
    }

    /// Removes every header that can carry a credential, whoever set it: before a hop to
    /// another origin, or down from https to plain http.
    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, DPOP] {
            headers.remove(name);
        }
        headers.remove(&self.header_name);
        if let Some((name, _)) = &self.api_key {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_removes_every_credential_whatever_its_name() {
        let credentials = Credentials {
            header_name: HeaderName::from_static("x-auth"),
            api_key: Some((
                HeaderName::from_static("ocp-apim-subscription-key"),
                HeaderValue::from_static("k"),
            )),
            proofs: Arc::default(),
        };
        let mut headers = HeaderMap::new();
        for name in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "dpop",
            "x-auth",
            "ocp-apim-subscription-key",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        headers.insert("accept", HeaderValue::from_static("*/*"));
        credentials.strip(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn formats_prefix_and_id_token() {
        let token = Token::new("a").with_id_token("i");
        let bare = HeaderFormat {
            id_token: true,
            prefix: Some(String::new()),
        };
        assert_eq!(bare.value(&token).unwrap(), "i");
        assert_eq!(HeaderFormat::default().value(&token).unwrap(), "Bearer a");
        let missing = HeaderFormat {
            id_token: true,
            prefix: None,
        };
        assert!(missing.value(&Token::new("a")).is_err());
        assert!(HeaderFormat::default().value(&Token::new("")).is_err());
    }
}
