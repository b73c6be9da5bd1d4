//! [`SrpAuthorizer`]: a Cognito user-pool login with `USER_SRP_AUTH`, refreshed with
//! `REFRESH_TOKEN_AUTH`.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::cognito::{self, malformed, parameter};
use super::math::{self, SrpClient};
use crate::http::{HttpClient, check_endpoint};
use crate::{Authorizer, ClientInfo, Error, ErrorKind, Token};

/// The most challenges answered in one login (new password, then MFA, …) before giving up:
/// a server that keeps asking is not going to stop.
const MAX_CHALLENGES: usize = 5;

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
    fn answer_key(&self) -> &'static str {
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

/// Logs a Cognito user-pool user in with the Secure Remote Password protocol
/// (`USER_SRP_AUTH`): the password never leaves the machine, only a proof of it.
///
/// Talks to the Cognito Identity Provider API directly (the pool's regional endpoint, or
/// [`with_endpoint`](Self::with_endpoint)); no AWS SDK and no AWS credentials are needed.
/// When the [`ClientInfo`] has a secret, `SECRET_HASH` is sent with every call. Renewals
/// use `REFRESH_TOKEN_AUTH`; when the refresh token is rejected,
/// [`AuthMiddleware`](crate::AuthMiddleware) logs in again.
///
/// To send the ID token instead of the access token (API Gateway Cognito authorizers often
/// want it), build the middleware with
/// [`use_id_token`](crate::base::AuthMiddlewareBuilder::use_id_token).
///
/// ```
/// use en_core_auth::{AuthMiddleware, ClientInfo};
/// use en_core_auth::srp::SrpAuthorizer;
///
/// let login = SrpAuthorizer::new(
///     ClientInfo::new("app-client-id", ""),
///     "us-east-1_Ab12Cd34",
///     "alice",
///     "correct horse battery staple",
/// )?;
/// assert_eq!(login.endpoint(), "https://cognito-idp.us-east-1.amazonaws.com/");
/// assert!(!format!("{login:?}").contains("horse"));
/// let auth = AuthMiddleware::builder(login).use_id_token().build();
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
pub struct SrpAuthorizer {
    client: ClientInfo,
    user_pool_id: String,
    pool_name: String,
    username: String,
    password: String,
    endpoint: String,
    allow_insecure_http: bool,
    http: HttpClient,
    handler: Option<Box<dyn ChallengeHandler>>,
    /// The user name Cognito answered with (the user may have logged in with an alias such
    /// as an email): `SECRET_HASH` of later calls, refresh included, must use it.
    cognito_username: Option<String>,
}

impl fmt::Debug for SrpAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrpAuthorizer")
            .field("client", &self.client)
            .field("user_pool_id", &self.user_pool_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SrpAuthorizer {
    /// An authorizer for `username` in the pool `user_pool_id` (`<region>_<id>`), through
    /// the app client of `client_info` (its secret, if any, is used for `SECRET_HASH`).
    ///
    /// Fails with [`ErrorKind::Configuration`] for an empty client id, username or password,
    /// or a pool id that is not `<region>_<id>`.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, ErrorKind};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let bad = SrpAuthorizer::new(ClientInfo::new("c", ""), "no-underscore", "u", "p");
    /// assert_eq!(bad.unwrap_err().kind(), ErrorKind::Configuration);
    /// ```
    pub fn new(
        client_info: ClientInfo,
        user_pool_id: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<SrpAuthorizer, Error> {
        client_info.validate()?;
        let user_pool_id = user_pool_id.into();
        let (region, pool_name) = split_pool_id(&user_pool_id)?;
        let username = username.into();
        let password = password.into();
        if username.is_empty() || password.is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                "the username and password must not be empty",
            ));
        }
        Ok(SrpAuthorizer {
            endpoint: format!("https://cognito-idp.{region}.amazonaws.com/"),
            pool_name: pool_name.to_owned(),
            user_pool_id,
            client: client_info,
            username,
            password,
            allow_insecure_http: false,
            http: HttpClient::new(),
            handler: None,
            cognito_username: None,
        })
    }

    /// Sends the API calls to `url` instead of the pool's regional endpoint: a VPC or FIPS
    /// endpoint, or a local identity provider. It must be HTTPS unless it is loopback (or
    /// see [`allow_insecure_http`](Self::allow_insecure_http)); a bad URL is reported as a
    /// [`Configuration`](ErrorKind::Configuration) error at the first use.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_endpoint("https://cognito-idp-fips.eu-west-1.amazonaws.com/");
    /// assert_eq!(login.endpoint(), "https://cognito-idp-fips.eu-west-1.amazonaws.com/");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_endpoint(mut self, url: impl Into<String>) -> SrpAuthorizer {
        self.endpoint = url.into();
        self
    }

    /// Accepts a plain-HTTP endpoint on a host that is not loopback. Only for networks you
    /// trust: the password proof and tokens then travel unencrypted.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_endpoint("http://cognito.internal:9229/")
    ///     .allow_insecure_http();
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn allow_insecure_http(mut self) -> SrpAuthorizer {
        self.allow_insecure_http = true;
        self
    }

    /// Answers `NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA` and `SMS_MFA` challenges.
    /// Without a handler, a challenge is an [`ErrorKind::ChallengeRequired`] error that
    /// names it.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::{Challenge, SrpAuthorizer};
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_challenge_handler(|challenge: &Challenge| match challenge {
    ///         Challenge::NewPasswordRequired => Ok("a new password".to_owned()),
    ///         other => Err(en_core_auth::Error::other(format!("no answer to {}", other.name()))),
    ///     });
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_challenge_handler(
        mut self,
        handler: impl ChallengeHandler + 'static,
    ) -> SrpAuthorizer {
        self.handler = Some(Box::new(handler));
        self
    }

    /// Uses `http` for the API calls (timeouts, retries, proxy or TLS settings).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::http::{HttpClient, RetryPolicy};
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "eu-west-1_X", "u", "p")?
    ///     .with_http_client(HttpClient::new().with_retry(RetryPolicy::none()));
    /// # let _ = login;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn with_http_client(mut self, http: HttpClient) -> SrpAuthorizer {
        self.http = http;
        self
    }

    /// The endpoint the API calls go to.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "u", "p")?;
    /// assert_eq!(login.endpoint(), "https://cognito-idp.ap-south-1.amazonaws.com/");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The user pool id.
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "u", "p")?;
    /// assert_eq!(login.user_pool_id(), "ap-south-1_X");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn user_pool_id(&self) -> &str {
        &self.user_pool_id
    }

    /// The username as given (possibly an alias such as an email).
    ///
    /// ```
    /// use en_core_auth::ClientInfo;
    /// use en_core_auth::srp::SrpAuthorizer;
    /// let login = SrpAuthorizer::new(ClientInfo::new("c", ""), "ap-south-1_X", "bob@example.com", "p")?;
    /// assert_eq!(login.username(), "bob@example.com");
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn username(&self) -> &str {
        &self.username
    }

    fn checked_endpoint(&self) -> Result<String, Error> {
        check_endpoint(&self.endpoint, self.allow_insecure_http)?;
        Ok(self.endpoint.clone())
    }

    /// `SECRET_HASH` for `username`, when the app client has a secret.
    fn secret_hash(&self, username: &str) -> Option<String> {
        let secret = self.client.client_secret();
        (!secret.is_empty()).then(|| math::secret_hash(secret, username, self.client.client_id()))
    }

    fn with_secret_hash(&self, parameters: &mut Map<String, Value>, username: &str) {
        if let Some(hash) = self.secret_hash(username) {
            parameters.insert("SECRET_HASH".into(), Value::String(hash));
        }
    }

    fn call(
        &self,
        endpoint: &str,
        operation: &str,
        body: &Value,
    ) -> Result<Map<String, Value>, Error> {
        cognito::call(&self.http, endpoint, operation, body)
    }

    /// Answers the `PASSWORD_VERIFIER` challenge with the SRP proof.
    fn password_verifier(
        &mut self,
        endpoint: &str,
        srp: &SrpClient,
        answer: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let parameters = challenge_parameters(answer)?;
        let user_id = parameter(parameters, "USER_ID_FOR_SRP")?.to_owned();
        let username = parameter(parameters, "USERNAME")
            .unwrap_or(&user_id)
            .to_owned();
        let salt = math::parse_hex(parameter(parameters, "SALT")?)?;
        let server_b = math::parse_hex(parameter(parameters, "SRP_B")?)?;
        let secret_block = parameter(parameters, "SECRET_BLOCK")?.to_owned();

        let key = srp.password_authentication_key(
            &self.pool_name,
            &user_id,
            &self.password,
            &salt,
            &server_b,
        )?;
        let timestamp = math::cognito_timestamp(SystemTime::now());
        let signature = math::password_claim_signature(
            &key,
            &self.pool_name,
            &user_id,
            &secret_block,
            &timestamp,
        )?;

        let mut responses = Map::new();
        responses.insert("USERNAME".into(), Value::String(username.clone()));
        responses.insert(
            "PASSWORD_CLAIM_SECRET_BLOCK".into(),
            Value::String(secret_block),
        );
        responses.insert("PASSWORD_CLAIM_SIGNATURE".into(), Value::String(signature));
        responses.insert("TIMESTAMP".into(), Value::String(timestamp));
        self.with_secret_hash(&mut responses, &username);
        self.cognito_username = Some(username);
        self.respond(
            endpoint,
            "PASSWORD_VERIFIER",
            responses,
            answer.get("Session"),
        )
    }

    fn respond(
        &self,
        endpoint: &str,
        challenge: &str,
        responses: Map<String, Value>,
        session: Option<&Value>,
    ) -> Result<Map<String, Value>, Error> {
        let mut body = json!({
            "ChallengeName": challenge,
            "ClientId": self.client.client_id(),
            "ChallengeResponses": responses,
        });
        if let (Some(session), Some(object)) = (session, body.as_object_mut()) {
            object.insert("Session".into(), session.clone());
        }
        self.call(endpoint, "RespondToAuthChallenge", &body)
    }

    /// Answers the challenges that follow the password proof until Cognito hands out
    /// tokens.
    fn finish(&mut self, endpoint: &str, mut answer: Map<String, Value>) -> Result<Token, Error> {
        for _ in 0..MAX_CHALLENGES {
            if let Some(result) = answer
                .get("AuthenticationResult")
                .and_then(Value::as_object)
            {
                return cognito::parse_tokens(result, None);
            }
            let name = answer
                .get("ChallengeName")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the answer has neither tokens nor a challenge"))?
                .to_owned();
            let parameters = challenge_parameters(&answer).ok();
            let challenge = match name.as_str() {
                "NEW_PASSWORD_REQUIRED" => Challenge::NewPasswordRequired,
                "SOFTWARE_TOKEN_MFA" => Challenge::SoftwareTokenMfa,
                "SMS_MFA" => Challenge::SmsMfa {
                    destination: parameters
                        .and_then(|p| p.get("CODE_DELIVERY_DESTINATION"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
                other => {
                    return Err(Error::new(
                        ErrorKind::ChallengeRequired,
                        format!(
                            "Cognito asked for the {other} challenge, which this client does not answer"
                        ),
                    ));
                }
            };
            let Some(handler) = self.handler.as_mut() else {
                return Err(Error::new(
                    ErrorKind::ChallengeRequired,
                    format!(
                        "Cognito asked for the {} challenge; give SrpAuthorizer a challenge handler to answer it",
                        challenge.name()
                    ),
                ));
            };
            let response = handler.answer(&challenge)?;
            let username = parameters
                .and_then(|p| p.get("USERNAME"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| self.cognito_username.clone())
                .unwrap_or_else(|| self.username.clone());
            let mut responses = Map::new();
            responses.insert("USERNAME".into(), Value::String(username.clone()));
            responses.insert(
                challenge.answer_key().into(),
                Value::String(response.clone()),
            );
            self.with_secret_hash(&mut responses, &username);
            answer = self.respond(endpoint, challenge.name(), responses, answer.get("Session"))?;
            if challenge == Challenge::NewPasswordRequired {
                // Cognito took the new password: the old one is gone, and logging in with it
                // again would fail and count toward the account's lockout.
                self.password = response;
            }
        }
        Err(Error::new(
            ErrorKind::ChallengeRequired,
            "Cognito kept asking for challenges; giving up",
        ))
    }
}

impl Authorizer for SrpAuthorizer {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        let endpoint = self.checked_endpoint()?;
        let srp = SrpClient::generate()?;
        let mut parameters = Map::new();
        parameters.insert("USERNAME".into(), Value::String(self.username.clone()));
        parameters.insert("SRP_A".into(), Value::String(srp.public_a_hex()));
        self.with_secret_hash(&mut parameters, &self.username.clone());
        let body = json!({
            "AuthFlow": "USER_SRP_AUTH",
            "ClientId": self.client.client_id(),
            "AuthParameters": parameters,
        });
        let answer = self.call(&endpoint, "InitiateAuth", &body)?;
        match answer.get("ChallengeName").and_then(Value::as_str) {
            Some("PASSWORD_VERIFIER") => {
                let next = self.password_verifier(&endpoint, &srp, &answer)?;
                self.finish(&endpoint, next)
            }
            _ => self.finish(&endpoint, answer),
        }
    }

    fn refresh(&mut self, token: &Token) -> Result<Token, Error> {
        let Some(refresh_token) = token.refresh_token() else {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "the token has no refresh token",
            ));
        };
        let endpoint = self.checked_endpoint()?;
        let mut parameters = Map::new();
        parameters.insert(
            "REFRESH_TOKEN".into(),
            Value::String(refresh_token.to_owned()),
        );
        // SECRET_HASH needs Cognito's user name, not an alias the user logged in with; a
        // process that did not log in itself (a token from a cache) reads it from the token.
        let username = self
            .cognito_username
            .clone()
            .or_else(|| cognito_username_of(token))
            .unwrap_or_else(|| self.username.clone());
        self.with_secret_hash(&mut parameters, &username);
        let body = json!({
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "ClientId": self.client.client_id(),
            "AuthParameters": parameters,
        });
        let answer = self.call(&endpoint, "InitiateAuth", &body)?;
        let result = answer
            .get("AuthenticationResult")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("the refresh answer has no AuthenticationResult"))?;
        cognito::parse_tokens(result, Some(refresh_token))
    }
}

/// The Cognito user name a token was issued to: the access token's `username` claim, or
/// the ID token's `cognito:username`.
fn cognito_username_of(token: &Token) -> Option<String> {
    let claim = |jwt: Option<&str>, name: &str| {
        crate::data::unverified_claims(jwt?)?
            .get(name)?
            .as_str()
            .map(str::to_owned)
    };
    claim(Some(token.access_token()), "username")
        .or_else(|| claim(token.id_token(), "cognito:username"))
}

fn challenge_parameters(answer: &Map<String, Value>) -> Result<&Map<String, Value>, Error> {
    answer
        .get("ChallengeParameters")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("the challenge has no ChallengeParameters"))
}

/// `us-east-1_Ab12` → (`us-east-1`, `Ab12`).
fn split_pool_id(user_pool_id: &str) -> Result<(&str, &str), Error> {
    let invalid = || {
        Error::new(
            ErrorKind::Configuration,
            format!(
                "`{user_pool_id}` is not a user pool id (<region>_<id>, like us-east-1_Ab12Cd34)"
            ),
        )
    };
    let (region, name) = user_pool_id.split_once('_').ok_or_else(invalid)?;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if region_ok && name_ok {
        Ok((region, name))
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids() {
        assert_eq!(
            split_pool_id("us-east-1_Ab12").unwrap(),
            ("us-east-1", "Ab12")
        );
        for bad in ["", "_x", "us-east-1_", "US_x", "us east_x", "us-east-1_a/b"] {
            assert!(split_pool_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password_and_secret() {
        let login = SrpAuthorizer::new(
            ClientInfo::new("c", "client-s3cret"),
            "us-east-1_X",
            "alice",
            "pa55word",
        )
        .unwrap();
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("pa55word") && !shown.contains("client-s3cret"),
            "{shown}"
        );
        assert!(shown.contains("alice"));
    }

    #[test]
    fn a_plain_http_endpoint_is_refused_unless_loopback() {
        let mut login = SrpAuthorizer::new(ClientInfo::new("c", ""), "us-east-1_X", "u", "p")
            .unwrap()
            .with_endpoint("http://cognito.example.com/");
        assert_eq!(
            login.authorize().unwrap_err().kind(),
            ErrorKind::Configuration
        );
    }

    #[test]
    fn refresh_without_a_refresh_token_asks_for_a_login() {
        let mut login =
            SrpAuthorizer::new(ClientInfo::new("c", ""), "us-east-1_X", "u", "p").unwrap();
        let error = login.refresh(&Token::new("a")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::CredentialsRejected);
    }
}
