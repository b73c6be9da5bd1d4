//! AWS Cognito user pools: the `USER_SRP_AUTH` flow.
//!
//! [`SrpAuthorizer`] logs a user in, answering challenges through a [`ChallengeHandler`].
//! The Secure Remote Password arithmetic inside it (exactly as Cognito and AWS's own
//! JavaScript SDK do it, no I/O) is public only with the `testing` feature, as `srp::math`.

mod authorizer;
mod challenge;
pub(crate) mod cognito;
mod device;
// The SRP arithmetic takes and returns num-bigint's `BigUint`: public, it would make every
// num-bigint upgrade a breaking change. So it is crate-private, and shown only with the
// `testing` feature (for known-answer tests and benchmarks; not covered by semver there).
// Its doc examples are wrapped in `#[cfg(feature = "testing")]`, since rustdoc runs the
// examples of private modules too, where they could not name it.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod math;
#[cfg(not(feature = "testing"))]
#[allow(dead_code)] // the server side and the constants serve `testing` and the tests
pub(crate) mod math;

pub use authorizer::SrpAuthorizer;
pub use challenge::{Challenge, ChallengeHandler, FirstFactor, LoginFlow, PasswordChange};
pub use cognito::CognitoError;
pub use device::Device;
