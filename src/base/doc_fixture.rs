//! Authorizers for the documentation's examples: one home instead of a hidden copy in
//! every example. Not part of the API (hidden, and may change in any release).

use std::time::Duration;

use crate::{Authorizer, ClientInfo, Error, Token};

/// Always the token `abc` (ID token `id`), valid for an hour; client id `me`.
pub struct Static(ClientInfo);

impl Static {
    /// For client `me`.
    pub fn new() -> Static {
        Static(ClientInfo::new("me", ""))
    }
    /// For `client`.
    pub fn with(client: ClientInfo) -> Static {
        Static(client)
    }
}

impl Default for Static {
    fn default() -> Static {
        Static::new()
    }
}

impl Authorizer for Static {
    fn client_info(&self) -> &ClientInfo {
        &self.0
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        Ok(Token::new("abc")
            .with_id_token("id")
            .with_expires_in(Duration::from_secs(3600)))
    }
}

/// Tokens `t1`, `t2`, … one per call; client id `me`.
pub struct Counting(ClientInfo, u32);

impl Counting {
    /// Starting at `t1`.
    pub fn new() -> Counting {
        Counting::starting_at(0)
    }
    /// Starting after `n`.
    pub fn starting_at(n: u32) -> Counting {
        Counting(ClientInfo::new("me", ""), n)
    }
}

impl Default for Counting {
    fn default() -> Counting {
        Counting::new()
    }
}

impl Authorizer for Counting {
    fn client_info(&self) -> &ClientInfo {
        &self.0
    }
    fn authorize(&mut self) -> Result<Token, Error> {
        self.1 += 1;
        Ok(Token::new(format!("t{}", self.1)))
    }
}
