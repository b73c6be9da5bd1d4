//! Request bodies kept so that a request can be sent again after a `401`.
//!
//! ureq 3.5 applies a body's own content type in `RequestBuilder::send`, before any
//! middleware, and keeps `SendBody::size()` private. So a body that reaches the
//! middleware means the same thing when its bytes are replayed, whatever its
//! `Content-Type`, but its size can only be learnt by reading it. Two bounds follow:
//!
//! - up to `replay` bytes (default 64 KiB) the body is kept for a resend;
//! - up to `buffered` bytes (default 16 MiB) it is read whole before the first send, so it
//!   goes out with a `Content-Length` as plain ureq would send a sized body (S3 presigned
//!   uploads and servers that answer 411 need one), but it is not kept afterwards;
//! - beyond that it streams (chunked, unless the caller set `Content-Length` itself) and is
//!   never resent. The trade-off: memory up to `buffered` per request in flight, against a
//!   chunked upload for bodies whose size ureq knew.

use std::io::{Cursor, Read};
use std::sync::Arc;

use ureq::SendBody;
use ureq::http::HeaderMap;
use ureq::http::HeaderValue;
use ureq::http::header::CONTENT_LENGTH;

/// The two bounds, see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) replay: u64,
    pub(crate) buffered: u64,
}

/// A first body as read: whole, or a prefix and the unread rest.
pub(crate) enum FirstBody<R> {
    Whole(Arc<[u8]>),
    Partial { prefix: Vec<u8>, rest: R },
}

/// Reads `body` up to the larger bound.
pub(crate) fn read<'a>(
    body: SendBody<'a>,
    limits: Limits,
) -> std::io::Result<FirstBody<impl Read + 'a>> {
    let bound = limits.buffered.max(limits.replay);
    let mut reader = body.into_reader();
    let mut prefix = Vec::new();
    (&mut reader)
        .take(bound.saturating_add(1))
        .read_to_end(&mut prefix)?;
    if prefix.len() as u64 <= bound {
        Ok(FirstBody::Whole(Arc::from(prefix)))
    } else {
        Ok(FirstBody::Partial {
            prefix,
            rest: reader,
        })
    }
}

/// What a resend can send as the body.
pub(crate) enum Replay {
    /// There was no body (or an empty one): always resendable.
    Empty,
    /// The body, kept.
    Bytes(Arc<[u8]>),
    /// The body was too large to keep: the request cannot be sent again with it.
    Gone,
}

impl Replay {
    /// What to keep of a body read whole.
    pub(crate) fn keep(bytes: &Arc<[u8]>, limits: Limits) -> Replay {
        if bytes.is_empty() {
            Replay::Empty
        } else if bytes.len() as u64 <= limits.replay {
            Replay::Bytes(Arc::clone(bytes))
        } else {
            Replay::Gone
        }
    }

    pub(crate) fn possible(&self) -> bool {
        !matches!(self, Replay::Gone)
    }

    /// The body for a resend, its `Content-Length` set as on the first send.
    pub(crate) fn body(&self, headers: &mut HeaderMap) -> SendBody<'static> {
        match self {
            Replay::Bytes(bytes) => sized(bytes, headers),
            Replay::Empty | Replay::Gone => SendBody::none(),
        }
    }
}

/// `bytes` as a body; an empty one is sent as "no body", as ureq sends `send_empty()`.
pub(crate) fn sized(bytes: &Arc<[u8]>, headers: &mut HeaderMap) -> SendBody<'static> {
    if bytes.is_empty() {
        return SendBody::none();
    }
    // A body rebuilt from bytes has no size ureq can see: without the header it would go
    // out chunked.
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    SendBody::from_owned_reader(Cursor::new(Arc::clone(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        replay: 4,
        buffered: 8,
    };

    fn whole(body: &'static [u8]) -> Option<Arc<[u8]>> {
        match read(SendBody::from_owned_reader(body), LIMITS).unwrap() {
            FirstBody::Whole(bytes) => Some(bytes),
            FirstBody::Partial { .. } => None,
        }
    }

    #[test]
    fn bodies_are_kept_up_to_the_replay_bound_and_sized_up_to_the_larger_one() {
        let small = whole(b"abcd").unwrap();
        assert!(matches!(Replay::keep(&small, LIMITS), Replay::Bytes(ref b) if &b[..] == b"abcd"));
        let medium = whole(b"abcdefgh").unwrap();
        assert!(matches!(Replay::keep(&medium, LIMITS), Replay::Gone));
        assert!(
            whole(b"abcdefghi").is_none(),
            "over the larger bound: streamed"
        );
        let empty = whole(b"").unwrap();
        assert!(matches!(Replay::keep(&empty, LIMITS), Replay::Empty));
    }

    #[test]
    fn a_streamed_body_keeps_every_byte() {
        let FirstBody::Partial { prefix, rest } =
            read(SendBody::from_owned_reader(&b"0123456789"[..]), LIMITS).unwrap()
        else {
            panic!("expected a partial read");
        };
        let mut all = Vec::new();
        Cursor::new(prefix)
            .chain(rest)
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, b"0123456789");
    }

    #[test]
    fn resent_bodies_carry_their_length() {
        let mut headers = HeaderMap::new();
        let _ = Replay::Bytes(Arc::from(&b"abc"[..])).body(&mut headers);
        assert_eq!(headers[CONTENT_LENGTH], "3");
        let mut headers = HeaderMap::new();
        let _ = Replay::Empty.body(&mut headers);
        assert!(headers.get(CONTENT_LENGTH).is_none());
    }
}
