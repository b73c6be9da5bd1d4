//! # en-core-auth
//!
//! Authentication and authorization for [`ureq`]: hand it credentials once, attach it to an
//! agent, and never think about tokens again. (User guide to come with the middleware.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::all)]
// Nothing that comes from the network or the user may panic the caller's program.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod base;
pub mod data;
mod error;
// Entry points for `fuzz/`; `cargo fuzz` sets `cfg(fuzzing)`. Not public API.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod oauth2;
pub mod srp;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use base::{AuthMiddleware, Authorizer};
pub use data::{ClientInfo, Token};
pub use error::{Error, ErrorKind};
