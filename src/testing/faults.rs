//! Fault injection and request counters: what a test sets up and observes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A failure [`LocalIdp::fail_next`](super::LocalIdp::fail_next) makes the identity-provider
/// endpoints (the token endpoint and the Cognito API) serve instead of an answer.
///
/// Each fault is shaped like the real thing: a Cognito request gets the AWS JSON error a real
/// user pool sends, an OAuth2 request the RFC 6749 form.
///
/// ```
/// use std::time::Duration;
/// use en_core_auth::testing::{Fault, LocalIdp};
///
/// let idp = LocalIdp::builder().start()?;
/// idp.fail_next(2, Fault::TooManyRequests { retry_after: Some(Duration::from_secs(1)) });
/// idp.fail_next(1, Fault::Status(503));
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status. A Cognito request with a 5xx status gets
    /// `500 {"__type":"InternalErrorException"}` (what AWS sends), with 429 the same as
    /// [`Fault::TooManyRequests`]; an OAuth2 request gets the status itself with
    /// `{"error":"server_error"}` (`invalid_client` for 401, `invalid_request` for other 4xx).
    Status(u16),
    /// Throttle: a Cognito request gets `400 {"__type":"TooManyRequestsException"}`, an OAuth2
    /// request `429`; both carry `Retry-After` (whole seconds, rounded up) when it is set.
    TooManyRequests {
        /// The `Retry-After` to send, if any.
        retry_after: Option<Duration>,
    },
    /// Wait this long, then answer normally (for client timeouts).
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Answer `200` with a body that is not valid JSON.
    MalformedBody,
    /// Hold the request until this many requests with this fault are being served at once,
    /// then answer normally: `fail_next(n, Fault::Rendezvous(n))` proves that `n` requests
    /// overlap. A request still waiting after ten seconds is answered `503` (a server, or a
    /// client, that handles one request at a time never gathers them).
    Rendezvous(usize),
}

/// How long a [`Fault::Rendezvous`] request waits for the others.
pub(crate) const RENDEZVOUS_WAIT: Duration = Duration::from_secs(10);

/// How a [`LocalIdp`](super::LocalIdp) signs the ID tokens it issues from now on
/// ([`LocalIdp::sign_id_tokens`](super::LocalIdp::sign_id_tokens)): for testing the clients
/// that verify them. Access tokens are not affected. ID tokens signed with a key other than
/// the fixed test key are not accepted by `/protected`.
///
/// ```
/// use en_core_auth::testing::{IdTokenSigning, LocalIdp};
/// let idp = LocalIdp::builder().start()?;
/// idp.sign_id_tokens(IdTokenSigning::WrongAudience)?;
/// idp.sign_id_tokens(IdTokenSigning::Normal)?;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdTokenSigning {
    /// As Cognito would: the test key, the right claims.
    #[default]
    Normal,
    /// A key rotation: a new ES256 key under a new `kid`, which the JWKS lists from now on
    /// (beside the old key).
    RotatedKey,
    /// A forgery: signed by a key the JWKS never lists, under the `kid` of the rotated key
    /// (which the JWKS lists from now on), so only the signature is wrong.
    ForeignKey,
    /// `aud` names another app client.
    WrongAudience,
    /// `iss` names another issuer.
    WrongIssuer,
    /// `token_use` is `access`.
    WrongTokenUse,
}

/// An endpoint of the [`LocalIdp`](super::LocalIdp), for its request counters.
///
/// ```
/// use en_core_auth::testing::{LocalIdp, Operation};
///
/// let idp = LocalIdp::builder().start()?;
/// assert_eq!(idp.requests(Operation::Token), 0);
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /oauth2/token`, whatever the grant.
    Token,
    /// Cognito `InitiateAuth`.
    InitiateAuth,
    /// Cognito `RespondToAuthChallenge`.
    RespondToAuthChallenge,
    /// Any request to `/protected`.
    Protected,
    /// `GET /.well-known/openid-configuration` or `/.well-known/oauth-authorization-server`.
    Discovery,
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// A Cognito request with an unknown or missing `X-Amz-Target`.
    UnknownCognitoOperation,
    /// Any request to `/redirect`.
    Redirect,
    /// Any request to `/headers`.
    EchoHeaders,
    /// Anything else (unknown paths, wrong methods).
    Other,
    /// Cognito `ConfirmDevice`.
    ConfirmDevice,
    /// Cognito `UpdateDeviceStatus`.
    UpdateDeviceStatus,
    /// Cognito `GetTokensFromRefreshToken`.
    GetTokensFromRefreshToken,
    /// Cognito `RevokeToken`.
    RevokeToken,
    /// Cognito `AssociateSoftwareToken`.
    AssociateSoftwareToken,
    /// Cognito `VerifySoftwareToken`.
    VerifySoftwareToken,
    /// `GET /oauth2/authorize`, the browser's side of the authorization code grant.
    Authorize,
    /// `POST /oauth2/device_authorization` (RFC 8628).
    DeviceAuthorization,
    /// `POST /oauth2/revoke` (RFC 7009).
    Revocation,
}

impl Operation {
    const ALL: [Operation; 19] = [
        Operation::Token,
        Operation::InitiateAuth,
        Operation::RespondToAuthChallenge,
        Operation::Protected,
        Operation::Discovery,
        Operation::Jwks,
        Operation::UnknownCognitoOperation,
        Operation::Redirect,
        Operation::EchoHeaders,
        Operation::Other,
        Operation::ConfirmDevice,
        Operation::UpdateDeviceStatus,
        Operation::GetTokensFromRefreshToken,
        Operation::RevokeToken,
        Operation::AssociateSoftwareToken,
        Operation::VerifySoftwareToken,
        Operation::Authorize,
        Operation::DeviceAuthorization,
        Operation::Revocation,
    ];

    fn index(self) -> usize {
        Operation::ALL
            .iter()
            .position(|op| *op == self)
            .unwrap_or(Operation::ALL.len() - 1)
    }

    /// Whether faults from [`Faults::take`] apply: only the identity provider's own endpoints.
    pub(crate) fn accepts_faults(self) -> bool {
        matches!(
            self,
            Operation::Token
                | Operation::InitiateAuth
                | Operation::RespondToAuthChallenge
                | Operation::UnknownCognitoOperation
                | Operation::ConfirmDevice
                | Operation::UpdateDeviceStatus
                | Operation::GetTokensFromRefreshToken
                | Operation::RevokeToken
                | Operation::AssociateSoftwareToken
                | Operation::VerifySoftwareToken
                | Operation::DeviceAuthorization
                | Operation::Revocation
        )
    }
}

/// Pending faults (run-length encoded, served in order) and per-operation counters.
#[derive(Default)]
pub(crate) struct Faults {
    pending: Mutex<VecDeque<(Fault, usize)>>,
    counts: [AtomicUsize; Operation::ALL.len()],
    rejected_protected: AtomicUsize,
    /// [`Fault::Rendezvous`]: requests arrived in this round, and the round.
    gathering: Mutex<(usize, u64)>,
    gathered: Condvar,
}

impl Faults {
    pub(crate) fn push(&self, n: usize, fault: Fault) {
        if n > 0 {
            self.pending.lock().push_back((fault, n));
        }
    }

    /// Counts a request to `op` and, for fault-accepting operations, takes the next fault.
    pub(crate) fn record(&self, op: Operation) -> Option<Fault> {
        self.counts[op.index()].fetch_add(1, Ordering::SeqCst);
        if !op.accepts_faults() {
            return None;
        }
        let mut pending = self.pending.lock();
        let (fault, left) = pending.front_mut()?;
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            pending.pop_front();
        }
        Some(fault)
    }

    /// Waits until `parties` requests (this one included) have arrived, at most `within`;
    /// whether they all did.
    pub(crate) fn rendezvous(&self, parties: usize, within: Duration) -> bool {
        let mut gathering = self.gathering.lock();
        let round = gathering.1;
        gathering.0 += 1;
        if gathering.0 >= parties {
            *gathering = (0, round + 1);
            self.gathered.notify_all();
            return true;
        }
        let deadline = Instant::now() + within;
        while gathering.1 == round {
            if self
                .gathered
                .wait_until(&mut gathering, deadline)
                .timed_out()
                && gathering.1 == round
            {
                gathering.0 -= 1;
                return false;
            }
        }
        true
    }

    pub(crate) fn count(&self, op: Operation) -> usize {
        self.counts[op.index()].load(Ordering::SeqCst)
    }

    pub(crate) fn count_rejected_protected(&self) {
        self.rejected_protected.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn rejected_protected(&self) -> usize {
        self.rejected_protected.load(Ordering::SeqCst)
    }
}

/// `Retry-After` in whole seconds, rounded up so a client never retries early.
pub(crate) fn retry_after_header(delay: Duration) -> String {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_served_in_order_and_only_to_idp_endpoints() {
        let faults = Faults::default();
        faults.push(2, Fault::Status(500));
        faults.push(1, Fault::DropConnection);
        assert_eq!(faults.record(Operation::Protected), None);
        assert_eq!(faults.record(Operation::Jwks), None);
        assert_eq!(faults.record(Operation::Token), Some(Fault::Status(500)));
        assert_eq!(
            faults.record(Operation::InitiateAuth),
            Some(Fault::Status(500))
        );
        assert_eq!(faults.record(Operation::Token), Some(Fault::DropConnection));
        assert_eq!(faults.record(Operation::Token), None);
        assert_eq!(faults.count(Operation::Token), 3);
        assert_eq!(faults.count(Operation::Protected), 1);
    }

    #[test]
    fn a_rendezvous_gathers_its_parties_or_gives_up_alone() {
        let faults = Faults::default();
        // Alone, a party of two is not gathered (a zero wait: no timing involved).
        assert!(!faults.rendezvous(2, Duration::ZERO));
        // The one that gave up is not counted: two more gather, on two threads.
        std::thread::scope(|scope| {
            let other = scope.spawn(|| faults.rendezvous(2, RENDEZVOUS_WAIT));
            assert!(faults.rendezvous(2, RENDEZVOUS_WAIT));
            assert!(other.join().unwrap());
        });
        assert_eq!(*faults.gathering.lock(), (0, 1));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_header(Duration::from_millis(1500)), "2");
        assert_eq!(retry_after_header(Duration::from_secs(3)), "3");
        assert_eq!(retry_after_header(Duration::ZERO), "0");
    }
}
