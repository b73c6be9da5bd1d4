//! Placeholder: the real lifecycle and middleware are being written.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Authorizer, Error};

/// Puts tokens from an [`Authorizer`] on ureq requests. (Placeholder.)
#[derive(Clone)]
pub struct AuthMiddleware {
    authorizer: Arc<Mutex<Box<dyn Authorizer>>>,
}

impl AuthMiddleware {
    /// A middleware for `authorizer`.
    pub fn new(authorizer: impl Authorizer + 'static) -> AuthMiddleware {
        AuthMiddleware {
            authorizer: Arc::new(Mutex::new(Box::new(authorizer))),
        }
    }

    /// The current access token.
    pub fn access_token(&self) -> Result<String, Error> {
        Ok(self
            .authorizer
            .lock()
            .authorize()?
            .access_token()
            .to_owned())
    }
}
