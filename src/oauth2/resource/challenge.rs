//! `WWW-Authenticate` as RFC 9110 §11.6.1 writes it: one header may hold several
//! challenges, a response may carry several headers, and parameter values are tokens or
//! quoted strings (with `\` escapes, commas and `=` inside).
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```

/// One challenge: its scheme and its parameters (names lower-cased, RFC 9110 §11.2: they
/// are case-insensitive). A token68 credential, when there is one, is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lower case), the first one when repeated.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `resource_metadata` of the first `Bearer` challenge (RFC 9728 §5.1) among all
/// `headers`. A header that does not parse is skipped whole: its parts cannot be trusted
/// to mean what they seem.
pub(crate) fn resource_metadata(headers: &[String]) -> Option<String> {
    headers
        .iter()
        .filter_map(|header| parse(header))
        .flatten()
        .filter(|challenge| challenge.scheme.eq_ignore_ascii_case("bearer"))
        .find_map(|challenge| challenge.param("resource_metadata").map(str::to_owned))
}

/// The challenges of one header value, or `None` when it is not well formed.
pub(crate) fn parse(header: &str) -> Option<Vec<Challenge>> {
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_list_separators();
        if cursor.done() {
            return Some(challenges);
        }
        let scheme = cursor.token()?;
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        let spaced = cursor.skip_spaces();
        if spaced && !cursor.done() && cursor.peek() != Some(b',') {
            if cursor.at_auth_param() {
                cursor.auth_params(&mut challenge.params)?;
            } else {
                cursor.token68()?;
            }
        }
        challenges.push(challenge);
        cursor.skip_spaces();
        match cursor.peek() {
            None => return Some(challenges),
            Some(b',') => {}
            Some(_) => return None,
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// Skips spaces and tabs; whether there were any.
    fn skip_spaces(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    /// Skips the empty list elements and separators `#rule` allows (RFC 9110 §5.6.1).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// Whether an `auth-param` starts here: a token, optional spaces, then `=` that is
    /// not the padding of a token68 (followed by another `=`, a comma or the end).
    fn at_auth_param(&self) -> bool {
        let mut at = self.at;
        while self.bytes.get(at).copied().is_some_and(is_tchar) {
            at += 1;
        }
        if at == self.at {
            return false;
        }
        while matches!(self.bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if self.bytes.get(at) != Some(&b'=') {
            return false;
        }
        at += 1;
        while matches!(self.bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        !matches!(self.bytes.get(at), None | Some(b'=' | b','))
    }

    /// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    fn token68(&mut self) -> Option<()> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.at += 1;
        }
        Some(())
    }

    /// `#auth-param`, stopping before a comma that starts the next challenge.
    fn auth_params(&mut self, params: &mut Vec<(String, String)>) -> Option<()> {
        loop {
            let name = self.token()?.to_ascii_lowercase();
            self.skip_spaces();
            if self.peek() != Some(b'=') {
                return None;
            }
            self.at += 1;
            self.skip_spaces();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                self.token()?
            };
            params.push((name, value));
            // After a comma: another parameter of this challenge, or the next challenge.
            let before = self.at;
            self.skip_spaces();
            if self.peek() != Some(b',') {
                self.at = before;
                return Some(());
            }
            self.skip_list_separators();
            if self.done() || !self.at_auth_param() {
                // Leave the comma for the caller: the next challenge starts here.
                self.at = before;
                return Some(());
            }
        }
    }

    /// `DQUOTE *( qdtext / quoted-pair ) DQUOTE`, unescaped.
    fn quoted_string(&mut self) -> Option<String> {
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(String::from_utf8_lossy(&value).into_owned());
                }
                b'\\' => {
                    self.at += 1;
                    value.push(self.peek()?);
                    self.at += 1;
                }
                // Control characters other than tab are not allowed in qdtext.
                byte if byte < 0x20 && byte != b'\t' || byte == 0x7f => return None,
                byte => {
                    value.push(byte);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_mcp_sdks_challenge() {
        let header = r#"Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://127.0.0.1:4/.well-known/oauth-protected-resource/api""#;
        let parsed = parse(header).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            parsed[0].param("resource_metadata"),
            Some("http://127.0.0.1:4/.well-known/oauth-protected-resource/api")
        );
        assert_eq!(
            parsed[0].param("error_description"),
            Some("Missing Authorization header")
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        // RFC 9110 §11.6.1's own example, then a Bearer one.
        let header = r#"Basic realm="simple", Newauth realm="apps", type=1, title="Login to \"apps\"", Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource", scope="a b""#;
        let parsed = parse(header).unwrap();
        let schemes: Vec<&str> = parsed.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Newauth", "Bearer"]);
        assert_eq!(
            parsed[1].params,
            params(&[
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ])
        );
        assert_eq!(parsed[2].param("scope"), Some("a b"));
    }

    #[test]
    fn quoted_strings_hold_commas_and_equals_signs() {
        let header = r#"Bearer realm="a, b=c", RESOURCE_METADATA = "https://x.example/m?q=1,2""#;
        let parsed = parse(header).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].param("realm"), Some("a, b=c"));
        assert_eq!(
            parsed[0].param("resource_metadata"),
            Some("https://x.example/m?q=1,2")
        );
    }

    #[test]
    fn token68_and_bare_schemes() {
        let parsed = parse("Negotiate, NTLM abc+/def==, Bearer").unwrap();
        let schemes: Vec<&str> = parsed.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Negotiate", "NTLM", "Bearer"]);
        assert!(parsed.iter().all(|c| c.params.is_empty()));
    }

    #[test]
    fn across_several_headers_the_first_bearer_challenge_wins() {
        let headers = vec![
            r#"DPoP algs="ES256""#.to_owned(),
            r#"Basic realm="x", bearer resource_metadata="https://a.example/m""#.to_owned(),
            r#"Bearer resource_metadata="https://b.example/m""#.to_owned(),
        ];
        assert_eq!(
            resource_metadata(&headers).as_deref(),
            Some("https://a.example/m")
        );
        // A parameter of another scheme is not the Bearer challenge's.
        let other = vec![r#"DPoP resource_metadata="https://evil.example/m""#.to_owned()];
        assert_eq!(resource_metadata(&other), None);
    }

    #[test]
    fn malformed_headers_are_refused_whole() {
        for header in [
            r#"Bearer resource_metadata="unterminated"#,
            r#"Bearer resource_metadata="https://a" junk"#,
            "Bearer =value",
            "\"quoted\" scheme",
            "Bearer realm=\"new\nline\"",
        ] {
            assert_eq!(parse(header), None, "{header}");
        }
        let headers = vec![r#"Bearer resource_metadata="https://a.example/m" junk"#.to_owned()];
        assert_eq!(resource_metadata(&headers), None);
    }
}
