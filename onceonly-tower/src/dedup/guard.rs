//! Giving a key back when the request that holds it ends without an answer to keep.
//!
//! A handler that fails (5xx, an error) or a request future that is dropped (the sender hung
//! up, a timeout layer fired) must not leave the key claimed: the sender's retry has to be
//! processed. The guard releases explicitly on failure and, if dropped while armed, releases
//! from `Drop`: at once on the embedded engine, on the runtime otherwise. Replay mode's lease is
//! held by the runtime's [`HeldLease`](onceonly_runtime::HeldLease); this module has the
//! check-lock side, and [`InFlight`], which covers both modes while the backend is still
//! answering. A retry that reaches the backend before a release made in the background has
//! finished still finds the key taken; the window is one backend round trip.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

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

/// A backend call that takes something (a lock, a lease) and is not answered yet. Dropped
/// before the answer (the request went away while a remote backend was deciding), it lets the
/// call finish in the background and hands the answer to its `settle` step, which gives back
/// what was taken: the handler never ran, so the sender's retry must.
pub(crate) struct InFlight<T: 'static> {
    call: Option<BoxFuture<'static, T>>,
    settle: Option<Settle<T>>,
}

/// What to do with an answer nobody waits for any more.
pub(crate) type Settle<T> = Box<dyn FnOnce(T) -> BoxFuture<'static, ()> + Send>;

impl<T: Send + 'static> InFlight<T> {
    pub(crate) fn new(call: BoxFuture<'static, T>, settle: Settle<T>) -> Self {
        InFlight {
            call: Some(call),
            settle: Some(settle),
        }
    }

    /// `call`'s answer. Polled once at once: an answer there (the embedded engine's) needs no
    /// guard, since nothing can drop the request between the call and its answer, and `settle`
    /// is not even made.
    pub(crate) async fn answer(
        mut call: BoxFuture<'static, T>,
        settle: impl FnOnce() -> Settle<T>,
    ) -> T {
        // A statement of its own: the context must not live across the `await` below.
        let first = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        match first {
            Poll::Ready(answer) => answer,
            Poll::Pending => InFlight::new(call, settle()).await,
        }
    }
}

impl<T> Future for InFlight<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        // Out of `self` while it is polled: a call that panics is dropped by the unwinding,
        // and `Drop` below does not poll it again.
        let mut call = this.call.take().expect("InFlight polled after its answer");
        match call.as_mut().poll(cx) {
            Poll::Ready(answer) => {
                this.settle = None;
                Poll::Ready(answer)
            }
            Poll::Pending => {
                this.call = Some(call);
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        if let (Some(call), Some(settle)) = (self.call.take(), self.settle.take()) {
            run_detached(Box::pin(async move { settle(call.await).await }));
        }
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
