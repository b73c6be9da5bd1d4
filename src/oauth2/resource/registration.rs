//! Dynamic client registration (RFC 7591) and the file registered clients are kept in, so
//! that the next run refreshes with the same client.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::ClientAuth;
use super::super::response;
use crate::http::{Attempt, HttpClient, check_endpoint};
use crate::{ClientInfo, Error, ErrorKind};

/// A client the authorization server registered, as kept in the registration file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Registered {
    /// The authorization server (its issuer identifier) the client belongs to.
    pub(crate) issuer: String,
    /// The redirect URI it was registered with (a loopback URI, any port).
    pub(crate) redirect_uri: String,
    pub(crate) client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) client_secret: String,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    pub(crate) token_endpoint_auth_method: String,
    /// Seconds since the epoch; 0 when the secret does not expire (RFC 7591 §3.2.1).
    #[serde(default)]
    pub(crate) client_secret_expires_at: u64,
}

impl Registered {
    pub(crate) fn client_info(&self) -> ClientInfo {
        ClientInfo::new(&self.client_id, &self.client_secret)
    }

    /// How the client authenticates, as the registration said.
    pub(crate) fn client_auth(&self) -> ClientAuth {
        match self.token_endpoint_auth_method.as_str() {
            "client_secret_basic" => ClientAuth::SecretBasic,
            // `none` sends the id only: the secret is empty.
            _ => ClientAuth::SecretPost,
        }
    }

    fn matches(&self, issuer: &str, redirect_uri: &str) -> bool {
        same_issuer(&self.issuer, issuer) && self.redirect_uri == redirect_uri
    }

    fn expired(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.client_secret_expires_at != 0 && self.client_secret_expires_at <= now
    }
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish_non_exhaustive()
    }
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The `token_endpoint_auth_method` to register with, from the server's
/// `token_endpoint_auth_methods_supported`: `none` (a public client: a native app cannot
/// keep a secret, RFC 8252 §8.5) where offered, else `client_secret_post`, else
/// `client_secret_basic`.
pub(crate) fn auth_method(supported: &[String]) -> Result<&'static str, Error> {
    ["none", "client_secret_post", "client_secret_basic"]
        .into_iter()
        .find(|method| supported.iter().any(|s| s == method))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Configuration,
                format!(
                    "the authorization server accepts none of the client authentication methods \
                     a registered client can use (it lists {}); register a client yourself and \
                     give it with client_info",
                    supported.join(", ")
                ),
            )
        })
}

/// Registers a client at `endpoint` (RFC 7591 §3.1): a loopback `redirect_uri`, the
/// authorization code and refresh token grants, and `method`. Errors are typed as token
/// errors are: `invalid_redirect_uri`, `invalid_client_metadata` and the other 4xx are
/// [`Configuration`](ErrorKind::Configuration), 5xx [`Server`](ErrorKind::Server).
pub(crate) fn register(
    http: &HttpClient,
    endpoint: &str,
    issuer: &str,
    redirect_uri: &str,
    method: &str,
    allow_insecure_http: bool,
) -> Result<Registered, Error> {
    check_endpoint(endpoint, allow_insecure_http)?;
    let request = serde_json::json!({
        "client_name": "en-core-auth",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "native",
    });
    let body = request.to_string();
    log::debug!("registering a client at {endpoint}");
    let reply = http.with_retries(|| {
        let reply = match HttpClient::retry_transport(http.post_bytes(
            endpoint,
            &[("accept", "application/json")],
            "application/json",
            body.as_bytes(),
        )) {
            Ok(reply) => reply,
            Err(attempt) => return attempt,
        };
        log::debug!("the registration endpoint answered HTTP {}", reply.status);
        match reply.status {
            200..=299 => Attempt::Done(Ok(reply)),
            408 | 429 | 500..=599 => {
                let retry_after = reply.retry_after;
                Attempt::Retry(refused(reply.status, &reply.body, endpoint), retry_after)
            }
            status => Attempt::Done(Err(refused(status, &reply.body, endpoint))),
        }
    })?;
    let malformed = |what: &str| {
        Error::new(
            ErrorKind::MalformedResponse,
            format!("the registration endpoint {endpoint} answered {what}"),
        )
    };
    let answer: Value =
        serde_json::from_slice(&reply.body).map_err(|_| malformed("with something not JSON"))?;
    let text = |name: &str| answer.get(name).and_then(Value::as_str).unwrap_or_default();
    let client_id = text("client_id");
    if client_id.is_empty() {
        return Err(malformed("without a client_id"));
    }
    let method = match text("token_endpoint_auth_method") {
        "" => method,
        given @ ("none" | "client_secret_post" | "client_secret_basic") => given,
        other => {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the registration endpoint {endpoint} registered the client with \
                     token_endpoint_auth_method `{other}`, which this login cannot use"
                ),
            ));
        }
    };
    let secret = text("client_secret");
    if method != "none" && secret.is_empty() {
        return Err(malformed(&format!(
            "with method {method} but no client_secret"
        )));
    }
    Ok(Registered {
        issuer: issuer.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: if method == "none" {
            String::new()
        } else {
            secret.to_owned()
        },
        token_endpoint_auth_method: method.to_owned(),
        client_secret_expires_at: answer
            .get("client_secret_expires_at")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

/// The error of a registration endpoint's non-2xx answer (RFC 7591 §3.2.2).
fn refused(status: u16, body: &[u8], endpoint: &str) -> Error {
    let kind = match status {
        408 | 429 | 500..=599 => ErrorKind::Server,
        _ => ErrorKind::Configuration,
    };
    match response::parse_error(status, body) {
        Some(oauth) => Error::new(kind, oauth),
        None => Error::new(
            kind,
            format!("the registration endpoint {endpoint} answered HTTP {status}"),
        ),
    }
}

/// The registration file: registered clients of any number of authorization servers and
/// APIs, one JSON document, written whole to a new file (mode 0600) that replaces the old
/// one, so that a reader never sees half of it.
#[derive(Clone)]
pub(crate) struct RegistrationFile {
    path: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    #[serde(default)]
    registrations: Vec<Registered>,
}

impl RegistrationFile {
    pub(crate) fn new(path: PathBuf) -> RegistrationFile {
        RegistrationFile { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The kept registration for `issuer` and `redirect_uri`, unless its secret expired.
    pub(crate) fn find(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<Registered>, Error> {
        Ok(self
            .read()?
            .registrations
            .into_iter()
            .find(|r| r.matches(issuer, redirect_uri) && !r.expired()))
    }

    /// Keeps `registered`, replacing an earlier one for the same server and redirect URI.
    pub(crate) fn keep(&self, registered: &Registered) -> Result<(), Error> {
        let mut contents = self.read()?;
        contents
            .registrations
            .retain(|r| !r.matches(&registered.issuer, &registered.redirect_uri));
        contents.registrations.push(registered.clone());
        self.write(&contents)
    }

    /// Drops the registration of `client_id` at `issuer` (the server forgot it).
    pub(crate) fn drop_client(&self, issuer: &str, client_id: &str) -> Result<(), Error> {
        let mut contents = self.read()?;
        let before = contents.registrations.len();
        contents
            .registrations
            .retain(|r| !(same_issuer(&r.issuer, issuer) && r.client_id == client_id));
        if contents.registrations.len() == before {
            return Ok(());
        }
        self.write(&contents)
    }

    fn storage_error(&self, what: &str, error: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::Storage,
            format!(
                "the registration file {}: {what}: {error}",
                self.path.display()
            ),
        )
    }

    fn read(&self) -> Result<Contents, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(self.storage_error("cannot read it", e)),
        };
        serde_json::from_str(&text).map_err(|e| self.storage_error("not a registration file", e))
    }

    fn write(&self, contents: &Contents) -> Result<(), Error> {
        let text = serde_json::to_vec_pretty(contents)
            .map_err(|e| self.storage_error("cannot encode it", e))?;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| self.storage_error("cannot create its directory", e))?;
        let mut suffix = [0_u8; 8];
        getrandom::fill(&mut suffix).map_err(|e| self.storage_error("no randomness", e))?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "registrations".to_owned());
        let temporary = dir.join(format!(".{name}.{suffix}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(&text)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(self.storage_error("cannot write it", e));
        }
        Ok(())
    }
}

impl fmt::Debug for RegistrationFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RegistrationFile").field(&self.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(issuer: &str, id: &str) -> Registered {
        Registered {
            issuer: issuer.to_owned(),
            redirect_uri: "http://127.0.0.1/".to_owned(),
            client_id: id.to_owned(),
            client_secret: "s3cr3t".to_owned(),
            token_endpoint_auth_method: "client_secret_post".to_owned(),
            client_secret_expires_at: 0,
        }
    }

    #[test]
    fn the_method_follows_the_servers_list() {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            auth_method(&list(&["client_secret_post", "none"])).unwrap(),
            "none"
        );
        assert_eq!(
            auth_method(&list(&["private_key_jwt", "client_secret_post"])).unwrap(),
            "client_secret_post"
        );
        assert_eq!(
            auth_method(&list(&["client_secret_basic"])).unwrap(),
            "client_secret_basic"
        );
        let err = auth_method(&list(&["private_key_jwt"])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }

    #[test]
    fn one_file_keeps_several_servers_privately() {
        let dir = std::env::temp_dir().join(format!("registrations-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = RegistrationFile::new(dir.join("clients.json"));
        assert_eq!(
            file.find("https://a.example", "http://127.0.0.1/").unwrap(),
            None
        );
        file.keep(&registered("https://a.example/", "client-a"))
            .unwrap();
        file.keep(&registered("https://b.example", "client-b"))
            .unwrap();
        // A new registration at a replaces the old one; b is untouched.
        file.keep(&registered("https://a.example", "client-a2"))
            .unwrap();
        let found = |issuer: &str| {
            file.find(issuer, "http://127.0.0.1/")
                .unwrap()
                .map(|r| r.client_id)
        };
        assert_eq!(found("https://a.example/").as_deref(), Some("client-a2"));
        assert_eq!(found("https://b.example").as_deref(), Some("client-b"));
        assert_eq!(
            file.find("https://a.example", "http://127.0.0.1/cb")
                .unwrap(),
            None
        );
        file.drop_client("https://a.example", "client-a2").unwrap();
        assert_eq!(found("https://a.example"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(!format!("{:?}", registered("i", "c")).contains("s3cr3t"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expired_secret_is_not_found() {
        let dir = std::env::temp_dir().join(format!("registrations-exp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = RegistrationFile::new(dir.join("clients.json"));
        let mut old = registered("https://a.example", "old");
        old.client_secret_expires_at = 1;
        file.keep(&old).unwrap();
        assert_eq!(
            file.find("https://a.example", "http://127.0.0.1/").unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_a_storage_error() {
        let dir = std::env::temp_dir().join(format!("registrations-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("clients.json"), "not json").unwrap();
        let file = RegistrationFile::new(dir.join("clients.json"));
        let err = file
            .find("https://a.example", "http://127.0.0.1/")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Storage);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
