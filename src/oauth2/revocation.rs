//! Logging out at the server: OAuth 2.0 Token Revocation (RFC 7009).

use super::endpoint::TokenEndpoint;
use super::interactive::{error_of, post};
use super::response;
use crate::{Error, Token};

const WHAT: &str = "revocation endpoint";

/// Revokes `token` at `url`: its refresh token first (which, per RFC 7009 §2.1, also ends
/// the access tokens of the same grant on most servers), then the access token. Both are
/// tried even when the first fails; the first error is returned. A server that cannot
/// revoke access tokens (`unsupported_token_type`, RFC 7009 §2.2.1) is not an error: the
/// access token then lives until it expires.
pub(crate) fn revoke(endpoint: &TokenEndpoint, url: &str, token: &Token) -> Result<(), Error> {
    let refresh = token
        .refresh_token()
        .map(|refresh| revoke_one(endpoint, url, refresh, "refresh_token"));
    let access = match revoke_one(endpoint, url, token.access_token(), "access_token") {
        Err(error)
            if error
                .downcast_ref::<response::OAuthError>()
                .is_some_and(|oauth| oauth.error() == "unsupported_token_type") =>
        {
            log::debug!("the server does not revoke access tokens; it lives until it expires");
            Ok(())
        }
        other => other,
    };
    refresh.unwrap_or(Ok(())).and(access)
}

/// Revokes `token` at the revocation endpoint found by discovery, if any: what
/// [`ClientCredentials`](super::ClientCredentials) and [`RefreshToken`](super::RefreshToken)
/// do on logout. Without one there is nothing to call, and forgetting the token is all
/// logout can do.
pub(crate) fn revoke_discovered(endpoint: &TokenEndpoint, token: &Token) -> Result<(), Error> {
    match endpoint
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.endpoints.revocation.as_deref())
    {
        Some(url) => {
            crate::http::check_endpoint(url, endpoint.allow_insecure_http)?;
            revoke(endpoint, url, token)
        }
        None => {
            log::debug!("no revocation endpoint is known; the token is only forgotten");
            Ok(())
        }
    }
}

fn revoke_one(endpoint: &TokenEndpoint, url: &str, token: &str, hint: &str) -> Result<(), Error> {
    let reply = post(
        endpoint,
        url,
        &[("token", token), ("token_type_hint", hint)],
        WHAT,
    )?;
    if (200..=299).contains(&reply.status) {
        Ok(())
    } else {
        Err(error_of(&reply, WHAT))
    }
}
