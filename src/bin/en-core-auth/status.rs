//! `status`: what is stored, read from the cache without asking the identity provider. One
//! shape for every kind of credentials: the same lines of `name: value` (or one JSON object
//! per profile, RFC 3339 times), and one exit rule: 0 when a usable token or login is
//! stored (a valid token, or one a refresh token renews), 3 when none.
//!
//! With `--profile` (or `EN_CORE_AUTH_PROFILE`), that profile; without, every profile that
//! holds something (`--json`: an array).

use std::time::SystemTime;

use en_core_auth::config::{Kind, Settings, TokenStorage};
use en_core_auth::store::FileStore;
use en_core_auth::{Error, Token};

use crate::args::{Format, Parsed};
use crate::{Outcome, login, profiles, rfc3339};

/// What one profile holds.
struct Entry {
    settings: Settings,
    cache: String,
    token: Option<Token>,
}

impl Entry {
    fn read(settings: Settings) -> Result<Entry, Error> {
        let cache = match (settings.token_storage(), settings.uses_redis()) {
            (TokenStorage::None, _) => "none".to_owned(),
            (TokenStorage::Keyring, _) => "keyring".to_owned(),
            (_, true) => "redis".to_owned(),
            _ => {
                let dir = match settings.cache_dir() {
                    Some(dir) => dir.to_path_buf(),
                    None => FileStore::default_dir()?,
                };
                format!("files in {}", dir.display())
            }
        };
        let token = match settings.token_store()? {
            Some(store) => store.load()?,
            None => None,
        };
        Ok(Entry {
            settings,
            cache,
            token,
        })
    }

    /// A token to use now, or one its refresh token renews.
    fn usable(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|token| !token.is_expired() || token.refresh_token().is_some())
    }

    fn user(&self) -> Option<String> {
        match self.settings.username() {
            Some(user) => Some(user.to_owned()),
            None => self.token.as_ref().and_then(login::who),
        }
    }

    fn kind(&self) -> &'static str {
        match self.settings.kind() {
            Kind::ClientCredentials => "client_credentials",
            Kind::Login => "login",
            Kind::Srp => "srp",
            _ => "other",
        }
    }

    fn json(&self) -> serde_json::Value {
        let token = self.token.as_ref().map(|token| {
            let mut json = serde_json::json!({
                "state": state(token),
                "token_type": token.token_type(),
                "refresh_token": token.refresh_token().is_some(),
                "id_token": token.id_token().is_some(),
                "scopes": scopes(token),
            });
            if let Some(at) = token.expires_at() {
                json["expires_at"] = rfc3339(at).into();
            }
            json
        });
        serde_json::json!({
            "profile": self.settings.profile(),
            "kind": self.kind(),
            "identity_provider": self.settings.identity_provider(),
            "client_id": self.settings.client_info().client_id(),
            "user": self.user(),
            "cache": self.cache,
            "logged_in": self.usable(),
            "token": token,
        })
    }

    fn text(&self) -> String {
        let mut lines = vec![
            format!("profile: {}", self.settings.profile()),
            format!("identity provider: {}", self.settings.identity_provider()),
            format!("client id: {}", self.settings.client_info().client_id()),
        ];
        if let Some(user) = self.user() {
            lines.push(format!("user: {user}"));
        }
        lines.push(format!("cache: {}", self.cache));
        match &self.token {
            None => lines.push("token: none".to_owned()),
            Some(token) => {
                let expiry = match token.expires_at() {
                    Some(at) => format!(", expires {}", rfc3339(at)),
                    None => String::new(),
                };
                lines.push(format!("token: {}{expiry}", state(token)));
                let scopes = scopes(token);
                if !scopes.is_empty() {
                    lines.push(format!("scopes: {}", scopes.join(" ")));
                }
                lines.push(format!(
                    "refresh token: {}",
                    match token.refresh_token().is_some() {
                        true => "yes",
                        false => "no",
                    }
                ));
            }
        }
        lines.join("\n")
    }
}

fn state(token: &Token) -> &'static str {
    match token.expires_at() {
        Some(at) if at <= SystemTime::now() => "expired",
        _ => "valid",
    }
}

fn scopes(token: &Token) -> Vec<&str> {
    token
        .scope()
        .map(|scope| scope.split_whitespace().collect())
        .unwrap_or_default()
}

/// `status`.
pub(crate) fn status(
    parsed: &Parsed,
    settings: &Settings,
    format: Format,
) -> Result<Outcome, Error> {
    let json = format == Format::Json;
    let exit = |usable: bool| if usable { 0 } else { 3 };
    if parsed.profile_given() {
        let entry = Entry::read(settings.clone())?;
        let text = match json {
            true => entry.json().to_string(),
            false => entry.text(),
        };
        return Ok(Outcome::Report(text, exit(entry.usable())));
    }
    let mut entries = Vec::new();
    for name in profiles::known(settings) {
        let entry = Entry::read(settings.clone().with_profile(&name)?)?;
        if entry.token.is_some() || name == "default" {
            entries.push(entry);
        }
    }
    // The default profile shows even when empty (in text: what is configured and where the
    // cache is); the JSON array lists only profiles that hold something.
    let holding: Vec<&Entry> = entries.iter().filter(|e| e.token.is_some()).collect();
    let usable = entries.iter().any(Entry::usable);
    let text = match json {
        true => serde_json::Value::from(holding.iter().map(|e| e.json()).collect::<Vec<_>>())
            .to_string(),
        false if holding.is_empty() => entries
            .iter()
            .map(Entry::text)
            .collect::<Vec<_>>()
            .join("\n\n"),
        false => holding
            .iter()
            .map(|e| e.text())
            .collect::<Vec<_>>()
            .join("\n\n"),
    };
    Ok(Outcome::Report(text, exit(usable)))
}
