//! Base classes (reference: `en_core.auth.base`): the [`Authorizer`] trait that obtains
//! tokens, and the [`AuthMiddleware`] that manages their lifetime and puts them on requests.

mod authorizer;
#[doc(hidden)]
pub mod doc_fixture;
mod lifecycle;
mod middleware;
mod stats;
mod trace;

pub use authorizer::Authorizer;
pub use lifecycle::RefreshThresholds;
#[cfg(feature = "jwt")]
pub(crate) use middleware::Origin;
pub use middleware::{AuthMiddleware, AuthMiddlewareBuilder, TokenTraffic};
pub use stats::{Stats, TokenRequests};
