//! Resolving a redirect's `Location` against the URL it answered, as ureq 3.5 does
//! (`ureq-proto`'s `new_uri_from_location`), so that a hop the middleware follows lands
//! where ureq's own would.

use ureq::http::Uri;
use ureq::http::uri::PathAndQuery;

/// The URL `location` points to, seen from `base`; `None` when ureq would refuse it
/// (`BadLocationHeader`), e.g. `../` above the root.
pub(crate) fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>()
        && uri.scheme().is_some()
    {
        return Some(uri);
    }
    if location.starts_with("//") {
        return format!("{}:{location}", base.scheme_str()?).parse().ok();
    }
    let mut parts = base.clone().into_parts();
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let base_path = parts
            .path_and_query
            .as_ref()
            .map_or("/", PathAndQuery::path);
        join_relative(base_path, location)?
    };
    parts.path_and_query = Some(path.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// ureq's segment walk: drop the base's last segment, then apply `.` and `..`. For a
/// bare `?q` this drops the last segment where RFC 3986 keeps it (the issue allows either).
fn join_relative(base_path: &str, location: &str) -> Option<String> {
    let mut joined: Vec<&str> = base_path.split('/').collect();
    // A base path always starts with `/` (a URI's path is at least "/"), so there are two
    // parts or more here; `>= 1` would be an equivalent mutant.
    if joined.len() > 1 {
        joined.pop();
    }
    for segment in location.split('/') {
        match segment {
            "." => {}
            ".." => {
                if joined.len() == 1 {
                    return None;
                }
                joined.pop();
            }
            _ => joined.push(segment),
        }
    }
    Some(joined.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_as_ureq_does() {
        // The cases of ureq-proto's `client/test/state_redirect.rs`, and the issue's.
        let base: Uri = "http://h:1/a/b/c?q".parse().unwrap();
        let cases = [
            ("http://other/x", "http://other/x"),
            ("//other:2/x", "http://other:2/x"),
            ("/foo.html", "http://h:1/foo.html"),
            ("y/bar.html", "http://h:1/a/b/y/bar.html"),
            ("../bar.html", "http://h:1/a/bar.html"),
            ("./../bar.html", "http://h:1/a/bar.html"),
            ("../../bar.html", "http://h:1/bar.html"),
            ("/abs?x=1", "http://h:1/abs?x=1"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve(&base, location).map(|u| u.to_string()).as_deref(),
                Some(expected),
                "{location}"
            );
        }
        assert_eq!(resolve(&base, "../../../../x"), None, "above the root");
    }
}
