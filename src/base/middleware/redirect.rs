//! Which redirects are followed and with what method: ureq 3.5's rules
//! (`ureq-proto`'s `as_new_call`), so that a request the middleware authorized is
//! redirected exactly as it would have been without the middleware.

use ureq::http::Method;

/// What ureq does with a redirect answer to `method`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Send the next hop with this method (and never a body: ureq drops it on every hop).
    With(Method),
    /// ureq gives up with `Error::RedirectFailed`: 307/308 for a method with a body, or
    /// for DELETE.
    Refuse,
}

/// Whether ureq treats `status` as a redirect: every 3xx but 304 (which has no
/// `Location`). One without a `Location` is an error, not an answer.
pub(crate) fn is_redirect(status: u16) -> bool {
    (300..400).contains(&status) && status != 304
}

/// 307/308 keep the method but are not followed for POST, PUT, PATCH or DELETE; every
/// other redirect turns all but GET and HEAD into GET.
pub(crate) fn follow(status: u16, method: &Method) -> Follow {
    if matches!(status, 307 | 308) {
        if matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            Follow::Refuse
        } else {
            Follow::With(method.clone())
        }
    } else if matches!(*method, Method::GET | Method::HEAD) {
        Follow::With(method.clone())
    } else {
        Follow::With(Method::GET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_3xx_but_304_is_a_redirect() {
        assert!(is_redirect(300) && is_redirect(302) && is_redirect(308));
        assert!(!is_redirect(304) && !is_redirect(200) && !is_redirect(400));
    }

    #[test]
    fn methods_change_as_ureq_changes_them() {
        use Follow::{Refuse, With};
        let cases = [
            (301, Method::POST, With(Method::GET)),
            (302, Method::PUT, With(Method::GET)),
            (303, Method::DELETE, With(Method::GET)),
            (303, Method::HEAD, With(Method::HEAD)),
            (301, Method::GET, With(Method::GET)),
            (307, Method::GET, With(Method::GET)),
            (308, Method::OPTIONS, With(Method::OPTIONS)),
            (307, Method::POST, Refuse),
            (308, Method::PATCH, Refuse),
            (307, Method::DELETE, Refuse),
        ];
        for (status, method, expected) in cases {
            assert_eq!(follow(status, &method), expected, "{status} {method}");
        }
    }
}
