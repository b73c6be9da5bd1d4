//! The challenges Cognito asks a user to answer after the password proof, and the handler
//! that answers them.

use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

/// A challenge Cognito asks a user to answer after the password proof.
///
/// ```
/// use en_core_auth::srp::Challenge;
/// let challenge = Challenge::SoftwareTokenMfa;
/// assert_eq!(challenge.name(), "SOFTWARE_TOKEN_MFA");
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
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
    /// A code sent by e-mail (`EMAIL_OTP`), as MFA after the password or as the passwordless
    /// first factor of the `USER_AUTH` flow; answer with it.
    EmailOtp {
        /// Where the code was sent, masked by Cognito (`a***@example.com`), if it said.
        destination: Option<String>,
    },
    /// A code sent by SMS as the passwordless first factor of `USER_AUTH` (`SMS_OTP`);
    /// answer with it.
    SmsOtp {
        /// Where the code was sent, masked by Cognito, if it said.
        destination: Option<String>,
    },
    /// The user has several MFA types (`SELECT_MFA_TYPE`); answer with the one to use, one
    /// of `options` (`SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `EMAIL_OTP`). Its challenge follows.
    SelectMfaType {
        /// The types Cognito offers (`MFAS_CAN_CHOOSE`).
        options: Vec<String>,
    },
    /// The pool requires MFA and the user has none (`MFA_SETUP`): show `uri` (as a QR code)
    /// or `secret` to the user, who adds it to an authenticator app; answer with the app's
    /// current code. The authorizer does `AssociateSoftwareToken` and `VerifySoftwareToken`
    /// around the answer. `Debug` hides both values: the secret is the user's second factor.
    MfaSetup {
        /// The TOTP secret in base32, as authenticator apps take it.
        secret: String,
        /// `otpauth://totp/…` with the secret, for a QR code.
        uri: String,
    },
    /// A challenge of the pool's own Lambda triggers (`CUSTOM_CHALLENGE`, in the
    /// `CUSTOM_AUTH` flow); answer as they expect (`ANSWER`).
    CustomChallenge {
        /// The challenge parameters the trigger sent (what to show the user).
        parameters: BTreeMap<String, String>,
    },
    /// The choice-based `USER_AUTH` flow asks how to log in (`SELECT_CHALLENGE`); answer with
    /// one of `available` (`PASSWORD_SRP`, `PASSWORD`, `EMAIL_OTP`, `SMS_OTP`…). Without a
    /// handler, `PASSWORD_SRP` is chosen when it is offered and there is a password.
    SelectChallenge {
        /// What Cognito offers (`AvailableChallenges`).
        available: Vec<String>,
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
            Challenge::EmailOtp { .. } => "EMAIL_OTP",
            Challenge::SmsOtp { .. } => "SMS_OTP",
            Challenge::SelectMfaType { .. } => "SELECT_MFA_TYPE",
            Challenge::MfaSetup { .. } => "MFA_SETUP",
            Challenge::CustomChallenge { .. } => "CUSTOM_CHALLENGE",
            Challenge::SelectChallenge { .. } => "SELECT_CHALLENGE",
        }
    }

    /// The key of the answer in `ChallengeResponses`.
    pub(crate) fn answer_key(&self) -> &'static str {
        match self {
            Challenge::NewPasswordRequired => "NEW_PASSWORD",
            Challenge::SoftwareTokenMfa => "SOFTWARE_TOKEN_MFA_CODE",
            Challenge::SmsMfa { .. } => "SMS_MFA_CODE",
            Challenge::EmailOtp { .. } => "EMAIL_OTP_CODE",
            Challenge::SmsOtp { .. } => "SMS_OTP_CODE",
            Challenge::MfaSetup { .. } => "USER_CODE",
            Challenge::SelectMfaType { .. }
            | Challenge::CustomChallenge { .. }
            | Challenge::SelectChallenge { .. } => "ANSWER",
        }
    }

    /// Whether the answer is a secret the user types (a password or a one-time code), to be
    /// read without echo.
    ///
    /// ```
    /// use en_core_auth::srp::Challenge;
    /// assert!(Challenge::SoftwareTokenMfa.answer_is_secret());
    /// assert!(!Challenge::SelectMfaType { options: vec!["SMS_MFA".into()] }.answer_is_secret());
    /// ```
    pub fn answer_is_secret(&self) -> bool {
        !matches!(
            self,
            Challenge::SelectMfaType { .. } | Challenge::SelectChallenge { .. }
        )
    }
}

/// What became of a new password sent for [`Challenge::NewPasswordRequired`], as told to
/// [`SrpAuthorizer::on_password_change`](super::SrpAuthorizer::on_password_change). Either
/// way the authorizer logs in with the new password from then on: wherever the old one is
/// kept (an environment variable, a secret store) must be updated.
///
/// ```
/// use en_core_auth::srp::PasswordChange;
/// let change = PasswordChange::AnswerLost;
/// assert_ne!(change, PasswordChange::Accepted);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    /// Cognito answered: the new password is the account's password.
    Accepted,
    /// The answer carrying it got no reply (a timeout, a reset connection, a 5xx): Cognito
    /// has usually taken it. Later logins use the new password, and fall back to the old
    /// one once only if the new one is refused.
    AnswerLost,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Challenge::NewPasswordRequired => f.write_str("NewPasswordRequired"),
            Challenge::SoftwareTokenMfa => f.write_str("SoftwareTokenMfa"),
            Challenge::SmsMfa { destination } => f
                .debug_struct("SmsMfa")
                .field("destination", destination)
                .finish(),
            Challenge::EmailOtp { destination } => f
                .debug_struct("EmailOtp")
                .field("destination", destination)
                .finish(),
            Challenge::SmsOtp { destination } => f
                .debug_struct("SmsOtp")
                .field("destination", destination)
                .finish(),
            Challenge::SelectMfaType { options } => f
                .debug_struct("SelectMfaType")
                .field("options", options)
                .finish(),
            Challenge::MfaSetup { .. } => f
                .debug_struct("MfaSetup")
                .field("secret", &"<redacted>")
                .field("uri", &"<redacted>")
                .finish(),
            Challenge::CustomChallenge { parameters } => f
                .debug_struct("CustomChallenge")
                .field("parameters", parameters)
                .finish(),
            Challenge::SelectChallenge { available } => f
                .debug_struct("SelectChallenge")
                .field("available", available)
                .finish(),
        }
    }
}

/// How a login starts: Cognito's `AuthFlow`, for [`SrpAuthorizer::with_login_flow`](super::SrpAuthorizer::with_login_flow).
///
/// ```
/// use en_core_auth::srp::{FirstFactor, LoginFlow};
/// let flow = LoginFlow::UserAuth(Some(FirstFactor::EmailOtp));
/// assert_eq!(flow.auth_flow(), "USER_AUTH");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginFlow {
    /// `USER_SRP_AUTH`: the password proven with SRP, never sent (the default).
    #[default]
    UserSrp,
    /// `USER_PASSWORD_AUTH`: the password sent as is (over TLS). Pools that migrate users
    /// from another directory with a user-migration Lambda trigger need it.
    UserPassword,
    /// `CUSTOM_AUTH`: the pool's Lambda triggers ask their own questions
    /// ([`Challenge::CustomChallenge`]).
    CustomAuth,
    /// `USER_AUTH`, the choice-based flow: with `Some`, the first factor asked for
    /// (`PREFERRED_CHALLENGE`); with `None`, Cognito offers the choice
    /// ([`Challenge::SelectChallenge`]).
    UserAuth(Option<FirstFactor>),
}

impl LoginFlow {
    /// Cognito's `AuthFlow` name.
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::LoginFlow::UserSrp.auth_flow(), "USER_SRP_AUTH");
    /// ```
    pub fn auth_flow(&self) -> &'static str {
        match self {
            LoginFlow::UserSrp => "USER_SRP_AUTH",
            LoginFlow::UserPassword => "USER_PASSWORD_AUTH",
            LoginFlow::CustomAuth => "CUSTOM_AUTH",
            LoginFlow::UserAuth(_) => "USER_AUTH",
        }
    }
}

/// A first factor of the `USER_AUTH` flow (`PREFERRED_CHALLENGE`).
///
/// ```
/// assert_eq!(en_core_auth::srp::FirstFactor::PasswordSrp.name(), "PASSWORD_SRP");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFactor {
    /// The password, proven with SRP.
    PasswordSrp,
    /// The password, sent as is.
    Password,
    /// A code sent by e-mail (passwordless).
    EmailOtp,
    /// A code sent by SMS (passwordless).
    SmsOtp,
}

impl FirstFactor {
    /// Cognito's name for it.
    ///
    /// ```
    /// assert_eq!(en_core_auth::srp::FirstFactor::EmailOtp.name(), "EMAIL_OTP");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            FirstFactor::PasswordSrp => "PASSWORD_SRP",
            FirstFactor::Password => "PASSWORD",
            FirstFactor::EmailOtp => "EMAIL_OTP",
            FirstFactor::SmsOtp => "SMS_OTP",
        }
    }
}

/// Answers Cognito's challenges: returns what the [`Challenge`] variant asks for (a new
/// password, a code, a choice, a custom answer). Any
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
