//! The challenges Cognito asks a user to answer after the password proof, and the handler
//! that answers them.

use crate::Error;

/// A challenge Cognito asks a user to answer after the password proof.
///
/// ```
/// use en_core_auth::srp::Challenge;
/// let challenge = Challenge::SoftwareTokenMfa;
/// assert_eq!(challenge.name(), "SOFTWARE_TOKEN_MFA");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The user must choose a new password (`NEW_PASSWORD_REQUIRED`); answer with it.
    NewPasswordRequired,
    /// A code from the user's authenticator app (`SOFTWARE_TOKEN_MFA`); answer with it.
    SoftwareTokenMfa,
    /// A code sent by SMS (`SMS_MFA`); answer with it. `destination` is the masked number.
    SmsMfa {
        /// Where the code was sent, masked by Cognito (`+*******1234`), if it said.
        destination: Option<String>,
    },
}

impl Challenge {
    /// Cognito's name for the challenge.
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::Challenge::NewPasswordRequired.name(), "NEW_PASSWORD_REQUIRED");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Challenge::NewPasswordRequired => "NEW_PASSWORD_REQUIRED",
            Challenge::SoftwareTokenMfa => "SOFTWARE_TOKEN_MFA",
            Challenge::SmsMfa { .. } => "SMS_MFA",
        }
    }

    /// The key of the answer in `ChallengeResponses`.
    pub(crate) fn answer_key(&self) -> &'static str {
        match self {
            Challenge::NewPasswordRequired => "NEW_PASSWORD",
            Challenge::SoftwareTokenMfa => "SOFTWARE_TOKEN_MFA_CODE",
            Challenge::SmsMfa { .. } => "SMS_MFA_CODE",
        }
    }
}

/// Answers Cognito's challenges: returns the new password or the MFA code. Any
/// `FnMut(&Challenge) -> Result<String, Error> + Send` is a handler.
///
/// ```
/// use en_core_auth::srp::{Challenge, ChallengeHandler};
/// use en_core_auth::Error;
///
/// fn handler(challenge: &Challenge) -> Result<String, Error> {
///     match challenge {
///         Challenge::SoftwareTokenMfa => Ok("123456".to_owned()),
///         other => Err(Error::other(format!("cannot answer {}", other.name()))),
///     }
/// }
/// let mut boxed: Box<dyn ChallengeHandler> = Box::new(handler);
/// assert_eq!(boxed.answer(&Challenge::SoftwareTokenMfa)?, "123456");
/// # Ok::<(), Error>(())
/// ```
pub trait ChallengeHandler: Send {
    /// The answer to `challenge`.
    fn answer(&mut self, challenge: &Challenge) -> Result<String, Error>;
}

impl<F> ChallengeHandler for F
where
    F: FnMut(&Challenge) -> Result<String, Error> + Send,
{
    fn answer(&mut self, challenge: &Challenge) -> Result<String, Error> {
        self(challenge)
    }
}
