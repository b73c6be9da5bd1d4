//! What an authorization response (the redirect back from the browser, RFC 6749 §4.1.2)
//! must carry to be this login's: one of each parameter, our `state`, and the issuer's
//! `iss` (RFC 9207). Pure: the loopback listener hands it the query of each request it
//! gets, and anything else that receives a redirect URL can do the same.
//!
//! Two kinds of "no": a request that is not this login's callback (another `state`, a
//! duplicated parameter, neither `code` nor `error`) is ignored, since any web page can
//! send one to a loopback port; a callback that is this login's (its `state` matches) but
//! wrong (another issuer, an error, an empty code) ends the login.

use super::response::OAuthError;
use crate::{Error, ErrorKind};

/// What the callback must carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// The `state` this login sent.
    pub(crate) state: &'a str,
    /// The issuer of a discovered login: an `iss` in the callback must name it.
    pub(crate) issuer: Option<&'a str>,
    /// The metadata announces `authorization_response_iss_parameter_supported`: the
    /// callback must carry `iss`.
    pub(crate) iss_required: bool,
}

/// What a request's query says.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Not this login's callback; the login waits on. The reason is for the log.
    NotOurs(&'static str),
    /// The authorization code.
    Code(String),
    /// This login's callback, which ends it without a code.
    Failed(Error),
}

/// Judges the query of a request to the redirect URI.
pub(crate) fn check(query: &str, expected: &Expected<'_>) -> Verdict {
    let Some(parameters) = parse(query) else {
        return Verdict::NotOurs("a query that does not decode");
    };
    // RFC 6749 §3.1: parameters must not be included more than once. Which of two
    // values would count is exactly what a parser mismatch attack plays on.
    if let Some(twice) = parameters
        .iter()
        .enumerate()
        .find(|(i, (name, _))| parameters[..*i].iter().any(|(n, _)| n == name))
    {
        log::warn!(
            "login callback with the parameter `{}` twice",
            printable(&(twice.1).0)
        );
        return Verdict::NotOurs("a duplicated parameter");
    }
    let param = |name: &str| {
        parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (code, error) = (param("code"), param("error"));
    if code.is_none() && error.is_none() {
        return Verdict::NotOurs("neither a code nor an error");
    }
    if param("state") != Some(expected.state) {
        return Verdict::NotOurs("a state this login did not send (a stale tab, or another page)");
    }
    if let Some(expected_issuer) = expected.issuer {
        match param("iss") {
            Some(iss) if iss.trim_end_matches('/') != expected_issuer.trim_end_matches('/') => {
                return Verdict::Failed(Error::new(
                    ErrorKind::Other,
                    format!(
                        "the browser came back from issuer `{}`, not `{expected_issuer}` \
                         (RFC 9207; a mix-up attack or a misconfigured client); nothing \
                         was exchanged",
                        printable(iss)
                    ),
                ));
            }
            None if expected.iss_required => {
                return Verdict::Failed(Error::new(
                    ErrorKind::Other,
                    format!(
                        "the browser came back without `iss`, which `{expected_issuer}` \
                         announces in every response (RFC 9207): it may come from another \
                         server; nothing was exchanged"
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(error) = error {
        let mut oauth = OAuthError::new(400, error);
        if let Some(description) = param("error_description") {
            oauth = oauth.with_description(description);
        }
        return Verdict::Failed(Error::new(oauth.kind(), oauth));
    }
    match code.filter(|code| !code.is_empty()) {
        Some(code) => Verdict::Code(code.to_owned()),
        None => Verdict::Failed(Error::new(
            ErrorKind::MalformedResponse,
            "the browser came back with an empty code",
        )),
    }
}

/// The decoded `name=value` pairs of a query; `None` when one does not decode.
pub(crate) fn parse(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// What came in the URL, fit for a message that may be logged: no control characters,
/// bounded.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Query-string decoding (`+` is a space); `None` for a bad escape or bad UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Expected<'static> = Expected {
        state: "s1",
        issuer: None,
        iss_required: false,
    };

    fn code(verdict: Verdict) -> Option<String> {
        match verdict {
            Verdict::Code(code) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_callback_with_our_state_gives_its_code() {
        assert_eq!(
            code(check("code=c%2F1&state=s1", &PLAIN)).as_deref(),
            Some("c/1")
        );
        // Unknown parameters are fine (RFC 6749 §4.1.2: the client ignores them).
        assert!(code(check("state=s1&session_state=x&code=c", &PLAIN)).is_some());
    }

    #[test]
    fn requests_that_are_not_this_login_s_callback_are_ignored() {
        for query in [
            "",
            "state=s1",
            "code=c&state=other",
            "code=c",
            "error=access_denied&state=other",
            "code=c&state=s1&code=d",
            "code=c&state=s1&state=s1",
            "code=c&state=s1&iss=a&iss=b",
            "code=%zz&state=s1",
        ] {
            assert!(
                matches!(check(query, &PLAIN), Verdict::NotOurs(_)),
                "{query}"
            );
        }
    }

    #[test]
    fn our_callback_with_an_error_or_an_empty_code_ends_the_login() {
        let Verdict::Failed(denied) = check("error=access_denied&state=s1", &PLAIN) else {
            panic!("not a failure");
        };
        assert_eq!(denied.kind(), ErrorKind::CredentialsRejected);
        let Verdict::Failed(empty) = check("code=&state=s1", &PLAIN) else {
            panic!("not a failure");
        };
        assert_eq!(empty.kind(), ErrorKind::MalformedResponse);
    }

    #[test]
    fn iss_names_the_issuer_and_is_required_when_announced() {
        let discovered = Expected {
            issuer: Some("https://idp.example/"),
            ..PLAIN
        };
        assert!(
            code(check(
                "code=c&state=s1&iss=https%3A%2F%2Fidp.example",
                &discovered
            ))
            .is_some()
        );
        assert!(
            code(check("code=c&state=s1", &discovered)).is_some(),
            "not announced"
        );
        assert!(matches!(
            check(
                "code=c&state=s1&iss=https%3A%2F%2Fevil.example",
                &discovered
            ),
            Verdict::Failed(_)
        ));
        let announced = Expected {
            iss_required: true,
            ..discovered
        };
        assert!(matches!(
            check("code=c&state=s1", &announced),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            check("error=x&state=s1", &announced),
            Verdict::Failed(_)
        ));
        assert!(
            code(check(
                "code=c&state=s1&iss=https://idp.example/",
                &announced
            ))
            .is_some()
        );
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
