//! The hot path's per-thread view of the token in use, so that a request with a fresh token
//! writes no memory that another thread reads.
//!
//! A shared read lock writes its lock word, and cloning a shared `Arc` or `HeaderValue`
//! writes its reference count: with every request thread doing that, the cache line
//! bounces between cores and the cost per call grows with the threads (measured in the
//! second release: 2.6–2.9× a hand-written `RwLock` cache on eight threads). Here each
//! thread keeps, per lifecycle, the token it last saw, the **epoch** it saw it at, and its
//! own copy of the header value. The lifecycle bumps its epoch whenever the token in use
//! changes or is withdrawn; the hot path reads the epoch (a load, the line stays shared
//! between cores) and, when it has not moved, uses the thread's copy (whose reference
//! count no other thread touches).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ureq::http::HeaderValue;

use super::current::Current;

/// Lifecycles a thread keeps a view of; the oldest is forgotten beyond this (a thread that
/// serves more middlewares takes the slower path now and then, never a wrong token).
const VIEWS: usize = 4;

/// A lifecycle's epoch on a cache line of its own, so that writes to its neighbours (the
/// renewal bookkeeping) do not evict it from the readers' caches.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(super) struct Epoch(AtomicU64);

impl Epoch {
    /// The token in use changed or was withdrawn: every thread's view is stale. Called
    /// after the change, so that a view taken at the new epoch sees it.
    pub(super) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    /// Read before the token, so that a view can only be older than its epoch says.
    pub(super) fn read(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Tells lifecycles apart in the per-thread views.
pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What one thread last saw of one lifecycle.
struct View {
    lifecycle: u64,
    epoch: u64,
    current: Arc<Current>,
    /// This thread's own copy of `current.header`.
    header: HeaderValue,
}

thread_local! {
    static VIEWS_OF_THIS_THREAD: RefCell<Vec<View>> = const { RefCell::new(Vec::new()) };
}

/// Calls `use_it` with this thread's view of lifecycle `id` at `epoch`, taking a new view
/// from `load` when there is none or it is older. `None` when there is no token, or when the
/// views cannot be reached (re-entered from `use_it`, or during the thread's exit): the
/// caller then takes the slow path.
pub(super) fn with_view<R>(
    id: u64,
    epoch: u64,
    load: impl FnOnce() -> Option<Arc<Current>>,
    use_it: impl FnOnce(&Current, &HeaderValue) -> Option<R>,
) -> Option<R> {
    VIEWS_OF_THIS_THREAD
        .try_with(|views| {
            let mut views = views.try_borrow_mut().ok()?;
            let at = match views.iter().position(|view| view.lifecycle == id) {
                Some(at) if views[at].epoch == epoch => at,
                found => {
                    let current = load()?;
                    let view = View {
                        lifecycle: id,
                        epoch,
                        header: own_copy(&current.header),
                        current,
                    };
                    match found {
                        Some(at) => {
                            views[at] = view;
                            at
                        }
                        None => {
                            if views.len() >= VIEWS {
                                views.remove(0);
                            }
                            views.push(view);
                            views.len() - 1
                        }
                    }
                }
            };
            let view = &views[at];
            use_it(&view.current, &view.header)
        })
        .ok()
        .flatten()
}

/// A header value with the same bytes in memory of its own (cloning it writes a count only
/// this thread uses).
fn own_copy(header: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(header.as_bytes()).unwrap_or_else(|_| header.clone());
    copy.set_sensitive(header.is_sensitive());
    copy
}
