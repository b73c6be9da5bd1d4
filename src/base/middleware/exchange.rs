//! One exchange, after the first send: the resend after a `401` (only when the lifecycle
//! says `Resend`), the redirect hops (ureq's rules, credentials only to the origin they
//! were added for), and the answer in the form the caller's agent expects.

use std::sync::Arc;

use ureq::http::header::{AUTHORIZATION, CONTENT_LENGTH, COOKIE, HOST, LOCATION};
use ureq::http::{HeaderMap, Method, Request, Response, Uri};
use ureq::{Body, RequestExt, SendBody};

use super::super::lifecycle::{Current, Rejection};
use super::credentials::Used;
use super::origin::Origin;
use super::redirect::{self, Follow};
use super::replay::Replay;
use super::resolve::resolve;
use super::{Inner, Route, TokenTraffic, to_ureq};
use crate::data::NonceAnswer;

/// What the middleware remembers of a request it handled.
pub(crate) struct Sent {
    pub(crate) origin: Origin,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    /// The caller's headers, without the middleware's credentials.
    pub(crate) headers: HeaderMap,
}

/// One request of the exchange: the first, a resend, or a redirect hop.
struct Hop {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// Whether it carries the original body: only the first request and its resend do
    /// (ureq drops the body on every redirect).
    with_body: bool,
}

/// How many times one exchange is sent again for a new DPoP nonce. One is enough when
/// the server keeps a nonce for a while; a second covers a nonce that changed while the
/// first resend was on its way. A server that changes it on every answer gets its `401`.
const MAX_NONCE_RESENDS: u32 = 2;

/// Everything after the first send. `form` is whether the caller's agent turns 4xx/5xx
/// into errors, when known.
pub(crate) fn finish(
    inner: &Inner,
    route: &Route,
    sent: Sent,
    first: Result<Response<Body>, ureq::Error>,
    replay: Replay,
    mut used: Option<Used>,
    form: Option<bool>,
) -> Result<Response<Body>, ureq::Error> {
    // A 401 reaching us as `Err` means the caller's agent turns statuses into errors; an
    // `Ok` with a 4xx means it does not. Keep whichever form it uses.
    let (seen_form, mut response) = match first {
        Err(ureq::Error::StatusCode(401)) => (Some(true), None),
        Err(error) => return Err(error),
        Ok(response) => (
            (response.status().as_u16() >= 400).then_some(false),
            Some(response),
        ),
    };
    let wants_errors = form.or(seen_form).unwrap_or(route.status_as_error);
    let ours = used.is_some();
    let mut hop = Hop {
        method: sent.method,
        uri: sent.uri,
        headers: sent.headers,
        with_body: true,
    };
    let mut renewed = false;
    let mut nonce_resends = 0;
    let mut redirects = 0;
    loop {
        let status = response.as_ref().map_or(401, |r| r.status().as_u16());
        let mut nonce_refusal = false;
        if let Some(sent_with) = used.as_mut()
            && let Some(current) = &sent_with.current
            && let (Some(proof), Some(answer)) = (current.token.request_proof(), &response)
        {
            let heard = proof.observe(
                &hop.uri,
                sent_with.nonce.as_deref(),
                status,
                answer.headers(),
            );
            let resendable = !hop.with_body || replay.possible();
            if heard == NonceAnswer::NewNonce && nonce_resends < MAX_NONCE_RESENDS && resendable {
                // The proof was refused for its nonce only, and the server's nonce is not
                // the one it carried: again with a fresh proof, the token kept. This is
                // not the renewal resend.
                nonce_resends += 1;
                let current = Arc::clone(current);
                let (answer, nonce) = send(inner, route, &hop, &replay, Some(&current))?;
                response = Some(answer);
                sent_with.nonce = nonce;
                continue;
            }
            // A 401 about the nonce says nothing about the token: never renew for it.
            nonce_refusal = heard != NonceAnswer::Accepted;
        }
        if status == 401
            && !nonce_refusal
            && let Some(sent_with) = &used
        {
            // Only a 401 to a request that carried our token says the token is bad.
            match inner
                .lifecycle
                .rejected(sent_with.generation)
                .map_err(to_ureq)?
            {
                Rejection::Resend(current) if !renewed && (!hop.with_body || replay.possible()) => {
                    renewed = true;
                    inner.lifecycle.counters().resent();
                    let (answer, nonce) = send(inner, route, &hop, &replay, Some(&current))?;
                    response = Some(answer);
                    used = Some(Used {
                        nonce,
                        ..Used::of(current)
                    });
                    continue;
                }
                // Refused when fresh, or already resent once, or the body is gone.
                _ => break,
            }
        }
        if status != 401
            && let Some(sent_with) = &used
        {
            inner.lifecycle.request_succeeded(sent_with.generation);
        }
        let Some(answer) = response.as_ref().filter(|_| redirect::is_redirect(status)) else {
            break;
        };
        if redirects >= route.max_redirects {
            if route.max_redirects > 0 && route.redirects_error {
                return Err(ureq::Error::TooManyRedirects);
            }
            break;
        }
        // ureq fails here with its protocol error (`NoLocationHeader`), whose type is not
        // reachable through ureq's API: a `BadUri` says the same.
        let location = answer
            .headers()
            .get(LOCATION)
            .ok_or_else(|| ureq::Error::BadUri("a redirect without a Location header".into()))?
            .to_str()
            .map_err(|_| ureq::Error::BadUri("the redirect location is not text".into()))?;
        let next = resolve(&hop.uri, location)
            .ok_or_else(|| ureq::Error::BadUri(format!("bad redirect location: {location}")))?;
        let Follow::With(method) = redirect::follow(status, &hop.method) else {
            return Err(ureq::Error::RedirectFailed);
        };
        redirects += 1;
        let next_origin = Origin::of(&next);
        let mut headers = hop.headers;
        // What ureq drops on every hop.
        for name in [AUTHORIZATION, COOKIE, CONTENT_LENGTH] {
            headers.remove(name);
        }
        if next_origin != Origin::of(&hop.uri) || Origin::of(&hop.uri).downgrades_to(&next_origin) {
            inner.credentials.strip(&mut headers);
        }
        hop = Hop {
            method,
            uri: next,
            headers,
            with_body: false,
        };
        used = if ours && next_origin == sent.origin {
            Some(Used::of(inner.lifecycle.current().map_err(to_ureq)?))
        } else {
            None
        };
        let current = used.as_ref().and_then(|u| u.current.clone());
        let (answer, nonce) = send(inner, route, &hop, &replay, current.as_ref())?;
        response = Some(answer);
        if let Some(sent_with) = used.as_mut() {
            sent_with.nonce = nonce;
        }
    }

    match response {
        None => Err(ureq::Error::StatusCode(401)),
        Some(response) if wants_errors && response.status().as_u16() >= 400 => {
            Err(ureq::Error::StatusCode(response.status().as_u16()))
        }
        Some(response) => Ok(response),
    }
}

/// Sends `hop` through the route's agent, tagged so that no `AuthMiddleware` on that
/// agent touches it, with credentials only when `current` is given. Returns the answer
/// and the server nonce the DPoP proof carried, if any.
fn send(
    inner: &Inner,
    route: &Route,
    hop: &Hop,
    replay: &Replay,
    current: Option<&Arc<Current>>,
) -> Result<(Response<Body>, Option<Arc<str>>), ureq::Error> {
    route.note_use(&inner.client_id);
    let mut headers = hop.headers.clone();
    headers.remove(HOST);
    let mut nonce = None;
    if let Some(current) = current {
        nonce = inner
            .credentials
            .set_current(current, &mut headers, &hop.method, &hop.uri)
            .map_err(to_ureq)?;
    }
    let body = if hop.with_body {
        replay.body(&mut headers)
    } else {
        headers.remove(CONTENT_LENGTH);
        SendBody::none()
    };
    let mut request = Request::builder()
        .method(hop.method.clone())
        .uri(hop.uri.clone())
        .body(body)?;
    *request.headers_mut() = headers;
    request.extensions_mut().insert(TokenTraffic);
    let answer = request
        .with_agent(&route.agent)
        .configure()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .run()?;
    Ok((answer, nonce))
}
