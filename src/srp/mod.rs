//! AWS Cognito user pools: the `USER_SRP_AUTH` flow.
//!
//! [`math`] holds the Secure Remote Password arithmetic exactly as Cognito (and AWS's own
//! JavaScript SDK) does it, with no I/O: the client's and, for the local identity provider,
//! the server's side.

mod authorizer;
mod challenge;
pub(crate) mod cognito;
mod device;
pub mod math;

pub use authorizer::SrpAuthorizer;
pub use challenge::{Challenge, ChallengeHandler, FirstFactor, LoginFlow, PasswordChange};
pub use cognito::CognitoError;
pub use device::Device;
