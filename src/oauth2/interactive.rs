//! What the interactive flows and logout share: random values from the OS, PKCE, POSTs to
//! the server's other endpoints (device authorization, revocation) authenticated as at the
//! token endpoint, and the endpoints found in the issuer's metadata.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::discovery::{self, Endpoints};
use super::endpoint::TokenEndpoint;
use super::response;
use crate::http::{Attempt, HttpClient, Reply, check_endpoint};
use crate::{Error, ErrorKind, Token};

/// 32 bytes from the operating system's random source, base64url: 43 characters, as RFC
/// 7636 §4.1 recommends for a code verifier, and plenty for `state` and `nonce`.
pub(crate) fn random_string() -> Result<String, Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Other,
            format!("the OS random source failed: {e}"),
        )
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 code challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The endpoints an interactive flow may need, from the metadata `endpoint` was discovered
/// with; completed from the RFC 8414 documents when `needed` or the revocation endpoint is
/// missing. Errors when the endpoint was not discovered or `needed` is still missing.
pub(crate) fn discovered_endpoints(
    endpoint: &mut TokenEndpoint,
    needed: fn(&Endpoints) -> Option<&String>,
    name: &str,
) -> Result<Endpoints, Error> {
    let http = endpoint.http.clone();
    let Some(metadata) = endpoint.metadata.as_mut() else {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("no {name} was given and none was discovered: give the issuer"),
        ));
    };
    if needed(&metadata.endpoints).is_none() || metadata.endpoints.revocation.is_none() {
        discovery::complete(&http, metadata, endpoint.allow_insecure_http)?;
    }
    if needed(&metadata.endpoints).is_none() {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "the metadata of issuer `{}` names no {name}",
                metadata.issuer
            ),
        ));
    }
    Ok(metadata.endpoints.clone())
}

/// One POST to an endpoint of the authorization server other than the token endpoint,
/// with the client authenticated as there (RFC 7009 §2.1, RFC 8628 §3.1) and transient
/// failures retried. A 2xx or 4xx reply is returned for the caller to read. Logs the URL
/// and status, never the form.
pub(crate) fn post(
    endpoint: &TokenEndpoint,
    url: &str,
    fields: &[(&str, &str)],
    what: &str,
) -> Result<Reply, Error> {
    endpoint.http.with_retries(|| {
        // A client assertion is addressed to the token endpoint, which servers accept as
        // the authorization server's identifier for every endpoint.
        let credentials = match endpoint.auth.credentials(&endpoint.client, &endpoint.url) {
            Ok(credentials) => credentials,
            Err(error) => return Attempt::Done(Err(error)),
        };
        let headers: Vec<(&str, &str)> = std::iter::once(("accept", "application/json"))
            .chain(credentials.headers.iter().map(|(n, v)| (*n, v.as_str())))
            .collect();
        let form: Vec<(&str, &str)> = fields
            .iter()
            .copied()
            .chain(credentials.form.iter().map(|(n, v)| (*n, v.as_str())))
            .collect();
        log::debug!("POST to the {what} {url}");
        let reply = match HttpClient::retry_transport(endpoint.http.post_form(url, &headers, &form))
        {
            Ok(reply) => reply,
            Err(attempt) => return attempt,
        };
        log::debug!("the {what} {url} answered HTTP {}", reply.status);
        match reply.status {
            408 | 429 | 500..=599 => {
                let retry_after = reply.retry_after;
                Attempt::Retry(error_of(&reply, what), retry_after)
            }
            300..=399 => Attempt::Done(Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the {what} answered with a redirect (HTTP {}), which is not followed \
                     with credentials; use the final URL",
                    reply.status
                ),
            ))),
            _ => Attempt::Done(Ok(reply)),
        }
    })
}

/// The error a non-2xx reply stands for: the server's RFC 6749 §5.2 error when it sent
/// one, else one from the status.
pub(crate) fn error_of(reply: &Reply, what: &str) -> Error {
    let status = reply.status;
    reply.error_at(match response::parse_error(status, &reply.body) {
        Some(oauth) => Error::new(oauth.kind(), oauth),
        None => Error::new(
            crate::http::status_kind(status),
            format!(
                "the {what} answered HTTP {status} with {}",
                reply.describe_body()
            ),
        ),
    })
}

/// The ID token check of an interactive login: with the feature `jwt` and a discovered
/// issuer that names its JWKS, every ID token the login gets is verified; otherwise nothing
/// is checked, and nothing claims to be.
#[derive(Debug, Default)]
pub(crate) struct IdTokenCheck {
    #[cfg(feature = "jwt")]
    verifier: Option<super::id_token::IdTokenVerifier>,
}

impl IdTokenCheck {
    /// The check for a login set up from `endpoint`'s metadata.
    pub(crate) fn discovered(endpoint: &TokenEndpoint) -> Result<IdTokenCheck, Error> {
        #[cfg(feature = "jwt")]
        if let Some(metadata) = &endpoint.metadata
            && let Some(jwks) = &metadata.endpoints.jwks
        {
            check_endpoint(jwks, endpoint.allow_insecure_http)?;
            return Ok(IdTokenCheck {
                verifier: Some(super::id_token::IdTokenVerifier::new(
                    &metadata.issuer,
                    endpoint.client.client_id(),
                    jwks,
                )),
            });
        }
        let _ = (endpoint, check_endpoint);
        Ok(IdTokenCheck::default())
    }

    /// Whether ID tokens are verified.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "jwt")]
        return self.verifier.is_some();
        #[cfg(not(feature = "jwt"))]
        false
    }

    /// Verifies `token`'s ID token, if it has one and the check is on.
    pub(crate) fn check(
        &mut self,
        endpoint: &TokenEndpoint,
        token: &Token,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        #[cfg(feature = "jwt")]
        if let Some(verifier) = &mut self.verifier {
            return verifier.check(&endpoint.http, token, nonce);
        }
        let _ = (endpoint, token, nonce);
        Ok(())
    }

    /// Verifies the ID token of `renewed`, a refresh of `previous`, if it has one and the
    /// check is on: it must name the login's issuer and subject.
    pub(crate) fn check_refreshed(
        &mut self,
        endpoint: &TokenEndpoint,
        renewed: &Token,
        previous: &Token,
    ) -> Result<(), Error> {
        #[cfg(feature = "jwt")]
        if let Some(verifier) = &mut self.verifier {
            return verifier.check_refreshed(&endpoint.http, renewed, previous);
        }
        let _ = (endpoint, renewed, previous);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge() {
        // RFC 7636 Appendix B.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_strings_are_long_and_fresh() {
        let a = random_string().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_string().unwrap());
    }
}
