//! Giving a key back when the request that holds it ends without an answer to keep.
//!
//! A handler that fails (5xx, an error) or a request future that is dropped (the sender hung
//! up, a timeout layer fired) must not leave the key claimed: the sender's retry has to be
//! processed. The guard releases explicitly on failure and, if dropped while armed, releases
//! from `Drop`: at once on the embedded engine, on the runtime otherwise. Replay mode's lease is
//! held by the runtime's [`HeldLease`](onceonly_runtime::HeldLease); this module has the
//! check-lock side. While the backend is still answering, both modes rely on the runtime's
//! `InFlight`, which lets a call whose request went away finish and settle in the background.
//! A retry that reaches the backend before a release made in the background has
//! finished still finds the key taken; the window is one backend round trip.

use std::task::{Context, Poll, ready};

use onceonly_runtime::__private::Settle;
use onceonly_runtime::models::CheckLockResult;
use onceonly_runtime::{__private, BoxFuture, OnceOnly, Result};
use tracing::{Instrument, Span};

/// Runs a clean-up future from synchronous code (see the runtime's `run_detached`), logging when
/// it could not.
fn run_detached(work: BoxFuture<'static, ()>) {
    if !__private::run_detached(work) {
        tracing::warn!(
            "request dropped outside a tokio runtime; its key stays claimed until it expires"
        );
    }
}

/// Holds a check-lock taken for a request; releases it unless disarmed.
pub(crate) struct LockGuard {
    armed: Option<Held>,
}

/// What releasing needs: the lock id fences the release, so a handler that outlived its TTL
/// cannot delete the lock of a later delivery. The release logs in the request's span, even
/// when it finishes in the background.
struct Held {
    client: OnceOnly,
    key: String,
    lock_id: Option<String>,
    span: Span,
}

impl LockGuard {
    pub(crate) fn new(client: &OnceOnly, key: String, lock_id: Option<String>, span: Span) -> Self {
        LockGuard {
            armed: Some(Held {
                client: client.clone(),
                key,
                lock_id,
                span,
            }),
        }
    }

    /// The handler's answer stands: keep the lock.
    pub(crate) fn keep(mut self) {
        self.armed = None;
    }

    /// Releases the lock, so the sender's retry runs the handler: the returned future does
    /// it, and finishes it in the background if dropped first.
    pub(crate) fn into_release(mut self, why: &'static str) -> Detached {
        Detached(self.armed.take().map(|held| release_lock(held, why)))
    }
}

/// The [`Settle`] step of a check-lock: gives the key back if the claim took it.
pub(crate) fn release_if_claimed(
    client: &OnceOnly,
    key: String,
    span: Span,
) -> Settle<Result<CheckLockResult>> {
    let client = client.clone();
    Box::new(move |answer| {
        Box::pin(async move {
            if let Ok(claimed) = answer
                && claimed.locked
            {
                let held = Held {
                    client,
                    key,
                    lock_id: claimed.lock_id,
                    span,
                };
                release_lock(held, "request dropped before its claim was answered").await;
            }
        })
    })
}

/// Clean-up work that must happen even if whoever awaits it goes away: polled like any
/// future, and handed to [`run_detached`] when dropped before it finished.
pub(crate) struct Detached(Option<BoxFuture<'static, ()>>);

impl Detached {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(work) = &mut self.0 else {
            return Poll::Ready(());
        };
        ready!(work.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(())
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            run_detached(work);
        }
    }
}

fn release_lock(held: Held, why: &'static str) -> BoxFuture<'static, ()> {
    let Held {
        client,
        key,
        lock_id,
        span,
    } = held;
    let release = async move {
        match client
            .backend()
            .release_lock(&key, lock_id.as_deref())
            .await
        {
            Ok(true) => tracing::debug!(why, "released the key for a retry"),
            Ok(false) => tracing::debug!(
                why,
                "the lock had expired or was taken by a later delivery; nothing to release"
            ),
            Err(e) => tracing::warn!(
                why, error = %e,
                "could not release the key; a retry is treated as a duplicate until the lock expires"
            ),
        }
    };
    Box::pin(release.instrument(span))
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(held) = self.armed.take() {
            run_detached(release_lock(held, "request dropped"));
        }
    }
}
