//! How the client proves who it is to the token endpoint (RFC 6749 §2.3, OpenID Connect
//! Core §9): `client_secret_basic`, `client_secret_post`, and with the `jwt` feature
//! `private_key_jwt`.

use std::fmt;

use base64::Engine as _;

use super::TokenSource;
use crate::{ClientInfo, Error};

/// RFC 7523 §2.2's `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client authenticates to the token endpoint.
///
/// A public client (empty secret) sends only its `client_id` in the form, whichever
/// secret-based method is chosen.
///
/// ```
/// use en_core_auth::ClientInfo;
/// use en_core_auth::oauth2::{ClientAuth, ClientCredentials};
///
/// let auth = ClientCredentials::new(
///     ClientInfo::new("id", "secret"),
///     "https://idp.example.com/oauth2/token",
/// )?
/// .with_client_auth(ClientAuth::SecretPost);
/// # let _ = auth;
/// # Ok::<(), en_core_auth::Error>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Default)]
pub enum ClientAuth {
    /// `client_secret_basic` (the default, and the one every server must support): the id
    /// and secret in an `Authorization: Basic` header, each form-urlencoded before they are
    /// joined and base64-encoded as RFC 6749 §2.3.1 asks, so a secret holding `:` or `%`
    /// survives.
    #[default]
    SecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    SecretPost,
    /// `tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705): the client proves
    /// who it is with the TLS client certificate of the [`HttpClient`]'s agent
    /// (configure it with [`HttpClient::with_agent`]); the form carries only `client_id`.
    ///
    /// [`HttpClient`]: crate::http::HttpClient
    /// [`HttpClient::with_agent`]: crate::http::HttpClient::with_agent
    TlsClientAuth,
    /// `private_key_jwt`: a short-lived JWT signed with the client's private key
    /// (RFC 7523). Needs the `jwt` feature.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    PrivateKeyJwt(PrivateKeyJwt),
    /// A JWT from elsewhere as the client's credential (RFC 7523 §2.2): `client_id`,
    /// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
    /// the source's token, read afresh for every token request, as `client_assertion`.
    /// Made with [`ClientAuth::client_assertion`]; no `jwt` feature needed.
    ClientAssertion(TokenSource),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::SecretBasic => f.write_str("SecretBasic"),
            ClientAuth::SecretPost => f.write_str("SecretPost"),
            ClientAuth::TlsClientAuth => f.write_str("TlsClientAuth"),
            #[cfg(feature = "jwt")]
            ClientAuth::PrivateKeyJwt(jwt) => f.debug_tuple("PrivateKeyJwt").field(jwt).finish(),
            ClientAuth::ClientAssertion(source) => {
                f.debug_tuple("ClientAssertion").field(source).finish()
            }
        }
    }
}

/// The headers and form fields that authenticate one token request.
#[derive(Default)]
pub(crate) struct Credentials {
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) form: Vec<(&'static str, String)>,
}

impl ClientAuth {
    /// Workload identity federation: the client authenticates with a token its platform
    /// gives it, as Entra ID (from GitHub Actions or Kubernetes) and Kubernetes
    /// service-account token federation ask. Every token request carries `client_id`,
    /// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
    /// `client_assertion=<the source's token, read for that request>` (RFC 7523 §2.2). A
    /// source that fails stops the request before anything is sent.
    ///
    /// ```
    /// use en_core_auth::{ClientInfo, oauth2::{ClientAuth, ClientCredentials, TokenSource}};
    ///
    /// // Entra ID: the app's client id, no secret; GitHub's token is the credential.
    /// let auth = ClientCredentials::new(
    ///     ClientInfo::new("00000000-1111-2222-3333-444444444444", ""),
    ///     "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token",
    /// )?
    /// .with_client_auth(ClientAuth::client_assertion(TokenSource::github_actions(
    ///     "api://AzureADTokenExchange",
    /// )))
    /// .with_scopes(["https://management.azure.com/.default"]);
    /// # let _ = auth;
    /// # Ok::<(), en_core_auth::Error>(())
    /// ```
    pub fn client_assertion(source: TokenSource) -> ClientAuth {
        ClientAuth::ClientAssertion(source)
    }

    /// What to add to a token request so that it authenticates `client`; `audience` is
    /// the `aud` of a client assertion (the issuer when known, else the token URL). Built
    /// afresh for every attempt, since a client assertion may be used only once.
    pub(crate) fn credentials(
        &self,
        client: &ClientInfo,
        audience: &str,
    ) -> Result<Credentials, Error> {
        let _ = audience;
        let mut out = Credentials::default();
        let id = client.client_id();
        let secret = client.client_secret();
        match self {
            ClientAuth::TlsClientAuth => {
                out.form.push(("client_id", id.to_owned()));
            }
            _ if secret.is_empty() && !self.uses_key() => {
                out.form.push(("client_id", id.to_owned()));
            }
            ClientAuth::SecretBasic => {
                out.headers
                    .push(("authorization", basic_authorization(id, secret)));
            }
            ClientAuth::SecretPost => {
                out.form.push(("client_id", id.to_owned()));
                out.form.push(("client_secret", secret.to_owned()));
            }
            ClientAuth::ClientAssertion(source) => {
                let assertion = source.token()?;
                out.form.push(("client_id", id.to_owned()));
                out.form
                    .push(("client_assertion_type", JWT_BEARER.to_owned()));
                out.form.push(("client_assertion", assertion));
            }
            #[cfg(feature = "jwt")]
            ClientAuth::PrivateKeyJwt(jwt) => {
                out.form.push(("client_id", id.to_owned()));
                out.form
                    .push(("client_assertion_type", JWT_BEARER.to_owned()));
                out.form
                    .push(("client_assertion", jwt.assertion(id, audience)?));
            }
        }
        Ok(out)
    }

    fn uses_key(&self) -> bool {
        if let ClientAuth::ClientAssertion(_) = self {
            return true;
        }
        #[cfg(feature = "jwt")]
        if let ClientAuth::PrivateKeyJwt(_) = self {
            return true;
        }
        false
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
pub(crate) fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let joined = format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(client_secret)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined)
    )
}

/// The `application/x-www-form-urlencoded` byte serializer (RFC 6749 Appendix B), except
/// that `~` stays as it is: it is unreserved (RFC 3986 §2.3), Azure secrets often hold
/// it, and servers that don't form-decode Basic credentials then still match. ASCII
/// letters, digits and `*-._~` as they are, space as `+`, every other byte of the UTF-8
/// form as `%XX`.
pub(crate) fn form_urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use private_key_jwt::PrivateKeyJwt;

#[cfg(feature = "jwt")]
mod private_key_jwt {
    use std::fmt;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use crate::{Error, ErrorKind};

    /// The key for `private_key_jwt` client authentication (RFC 7523, OpenID Connect Core
    /// §9): every token request carries a fresh JWT, signed with this key, whose issuer
    /// and subject are the client id and whose audience is the authorization server's
    /// issuer identifier when it is known (after discovery: the audience RFC 7523's update
    /// asks for, which no other server would accept), else the token endpoint URL, or the
    /// audience set with [`with_audience`](PrivateKeyJwt::with_audience). It lives for 60
    /// seconds and has a random `jti`, so a captured assertion cannot be replayed for long.
    ///
    /// Needs the `jwt` feature. `Debug` shows the algorithm and key id, never the key.
    ///
    /// ```
    /// use en_core_auth::oauth2::PrivateKeyJwt;
    /// use jsonwebtoken::{Algorithm, EncodingKey};
    ///
    /// // In real use: EncodingKey::from_rsa_pem(&std::fs::read("client-key.pem")?)?
    /// let key = EncodingKey::from_secret(b"not a real key")?;
    /// let jwt = PrivateKeyJwt::new(key, Algorithm::HS256).with_key_id("key-2026");
    /// assert!(format!("{jwt:?}").contains("key-2026"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    #[derive(Clone)]
    pub struct PrivateKeyJwt {
        key: EncodingKey,
        algorithm: Algorithm,
        key_id: Option<String>,
        audience: Option<String>,
    }

    impl PrivateKeyJwt {
        /// Signs assertions with `key` using `algorithm` (RS256, ES256, PS256 …).
        ///
        /// ```
        /// use en_core_auth::oauth2::PrivateKeyJwt;
        /// use jsonwebtoken::{Algorithm, EncodingKey};
        /// let jwt = PrivateKeyJwt::new(EncodingKey::from_secret(b"k")?, Algorithm::HS256);
        /// # let _ = jwt;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn new(key: EncodingKey, algorithm: Algorithm) -> PrivateKeyJwt {
            PrivateKeyJwt {
                key,
                algorithm,
                key_id: None,
                audience: None,
            }
        }

        /// Puts `kid` in the JWT header, so the server can pick the key from the client's
        /// JWKS.
        ///
        /// ```
        /// use en_core_auth::oauth2::PrivateKeyJwt;
        /// use jsonwebtoken::{Algorithm, EncodingKey};
        /// let jwt = PrivateKeyJwt::new(EncodingKey::from_secret(b"k")?, Algorithm::HS256)
        ///     .with_key_id("k1");
        /// # let _ = jwt;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn with_key_id(mut self, key_id: impl Into<String>) -> PrivateKeyJwt {
            self.key_id = Some(key_id.into());
            self
        }

        /// Uses `audience` as the `aud` claim instead of the issuer (after discovery) or
        /// the token endpoint URL (without it), for servers that want something else.
        ///
        /// ```
        /// use en_core_auth::oauth2::PrivateKeyJwt;
        /// use jsonwebtoken::{Algorithm, EncodingKey};
        /// let jwt = PrivateKeyJwt::new(EncodingKey::from_secret(b"k")?, Algorithm::HS256)
        ///     .with_audience("https://idp.example.com");
        /// # let _ = jwt;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn with_audience(mut self, audience: impl Into<String>) -> PrivateKeyJwt {
            self.audience = Some(audience.into());
            self
        }

        pub(crate) fn assertion(&self, client_id: &str, audience: &str) -> Result<String, Error> {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs();
            let mut jti = [0u8; 16];
            getrandom::fill(&mut jti).map_err(|e| {
                Error::new(
                    ErrorKind::Other,
                    format!("no randomness for the client assertion: {e}"),
                )
            })?;
            let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
            let claims = serde_json::json!({
                "iss": client_id,
                "sub": client_id,
                "aud": self.audience.as_deref().unwrap_or(audience),
                "jti": jti,
                "iat": now,
                "exp": now + 60,
            });
            let mut header = Header::new(self.algorithm);
            header.kid = self.key_id.clone();
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
                Error::new(
                    ErrorKind::Configuration,
                    format!("could not sign the client assertion: {e}"),
                )
            })
        }
    }

    impl fmt::Debug for PrivateKeyJwt {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PrivateKeyJwt")
                .field("algorithm", &self.algorithm)
                .field("key_id", &self.key_id)
                .field("audience", &self.audience)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_basic(header: &str) -> String {
        let encoded = header.strip_prefix("Basic ").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn basic_encodes_each_part_before_joining() {
        let header = basic_authorization("my client", "p:a+s%s/wörd");
        assert_eq!(decode_basic(&header), "my+client:p%3Aa%2Bs%25s%2Fw%C3%B6rd");
    }

    #[test]
    fn plain_credentials_are_unchanged_by_encoding() {
        // What Cognito expects: its ids and secrets are letters and digits only.
        let header = basic_authorization("4mvf0ck6kql5p1", "1ubc9d0dkkjf3s");
        assert_eq!(decode_basic(&header), "4mvf0ck6kql5p1:1ubc9d0dkkjf3s");
    }

    #[test]
    fn form_urlencoding() {
        assert_eq!(form_urlencode("aZ09*-._"), "aZ09*-._");
        assert_eq!(form_urlencode("a b"), "a+b");
        assert_eq!(form_urlencode(":+%&="), "%3A%2B%25%26%3D");
        // An Azure-style secret: `~` is unreserved and stays.
        assert_eq!(form_urlencode("Ab8Q~x.y_z-1"), "Ab8Q~x.y_z-1");
        assert_eq!(form_urlencode("é"), "%C3%A9");
    }

    #[test]
    fn basic_sends_a_header_only() {
        let creds = ClientAuth::SecretBasic
            .credentials(&ClientInfo::new("id", "s"), "https://x/t")
            .unwrap();
        assert_eq!(creds.headers.len(), 1);
        assert_eq!(creds.headers[0].0, "authorization");
        assert!(creds.form.is_empty());
    }

    #[test]
    fn post_sends_the_form() {
        let creds = ClientAuth::SecretPost
            .credentials(&ClientInfo::new("id", "s:+"), "https://x/t")
            .unwrap();
        assert!(creds.headers.is_empty());
        assert_eq!(
            creds.form,
            vec![
                ("client_id", "id".to_owned()),
                ("client_secret", "s:+".to_owned())
            ]
        );
    }

    #[test]
    fn a_public_client_sends_its_id_only() {
        for auth in [ClientAuth::SecretBasic, ClientAuth::SecretPost] {
            let creds = auth
                .credentials(&ClientInfo::new("public-app", ""), "https://x/t")
                .unwrap();
            assert!(creds.headers.is_empty());
            assert_eq!(creds.form, vec![("client_id", "public-app".to_owned())]);
        }
    }

    #[test]
    fn a_client_assertion_is_read_for_every_request() {
        let dir = std::env::temp_dir().join(format!("client-assertion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let auth = ClientAuth::client_assertion(TokenSource::file(&path));
        let client = ClientInfo::new("entra-app", "");
        // Missing: an error naming the file, so nothing is sent.
        let err = auth.credentials(&client, "https://x/t").err().unwrap();
        assert!(err.to_string().contains("token"), "{err}");
        for token in ["eyJ.first", "eyJ.second"] {
            std::fs::write(&path, format!("{token}\n")).unwrap();
            let creds = auth.credentials(&client, "https://x/t").unwrap();
            assert!(creds.headers.is_empty());
            assert_eq!(
                creds.form,
                vec![
                    ("client_id", "entra-app".to_owned()),
                    ("client_assertion_type", JWT_BEARER.to_owned()),
                    ("client_assertion", token.to_owned()),
                ]
            );
        }
        assert!(!format!("{auth:?}").contains("eyJ"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn private_key_jwt_assertions_are_fresh_and_addressed() {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
        let auth = ClientAuth::PrivateKeyJwt(
            PrivateKeyJwt::new(
                EncodingKey::from_secret(b"test-key").unwrap(),
                Algorithm::HS256,
            )
            .with_key_id("k1"),
        );
        let creds = |auth: &ClientAuth| {
            auth.credentials(&ClientInfo::new("svc", ""), "https://idp.example.com/token")
                .unwrap()
        };
        let first = creds(&auth);
        let second = creds(&auth);
        let assertion = |c: &Credentials| {
            c.form
                .iter()
                .find(|(k, _)| *k == "client_assertion")
                .unwrap()
                .1
                .clone()
        };
        assert_ne!(assertion(&first), assertion(&second), "jti must differ");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&["https://idp.example.com/token"]);
        validation.set_issuer(&["svc"]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            assertion(&first),
            &DecodingKey::from_secret(b"test-key").unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["sub"], "svc");
        assert_eq!(decoded.header.kid.as_deref(), Some("k1"));
        assert!(!format!("{auth:?}").contains("test-key"));
    }
}
