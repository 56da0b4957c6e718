//! A backend call that takes something (a lock, a lease) and whose caller may go away before
//! the answer comes.
//!
//! Dropping a remote call's future does not undo it: the request may have reached the server
//! or the store, which then takes the key for a caller that is gone, and the next caller
//! waits out the TTL. [`InFlight`] lets such a call finish in the background instead, and
//! hands the answer to a settle step that gives back what was taken. `run_fn` leases through
//! it, and so does the tower layer's claim and replay lease. The background work runs on the
//! tokio runtime: a runtime shut down right after the drop loses it, and what the call took is
//! then given back only when it expires.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::backend::BoxFuture;
use crate::client::OnceOnly;
use crate::error::Result;
use crate::holder::{HeldLease, run_detached};
use crate::models::{Lease, RunStatus};

/// What to do with an answer nobody waits for any more.
pub type Settle<T> = Box<dyn FnOnce(T) -> BoxFuture<'static, ()> + Send>;

/// A call in flight (see the module docs). Awaited, it is the call's answer; dropped before
/// the answer, the call finishes in the background and its answer goes to the settle step.
pub struct InFlight<T: 'static> {
    call: Option<BoxFuture<'static, T>>,
    settle: Option<Settle<T>>,
}

impl<T: Send + 'static> InFlight<T> {
    /// Wraps `call`, whose answer goes to `settle` if this is dropped first.
    pub fn new(call: BoxFuture<'static, T>, settle: Settle<T>) -> Self {
        InFlight {
            call: Some(call),
            settle: Some(settle),
        }
    }

    /// `call`'s answer. Polled once at once: an answer there (the embedded engine's) needs no
    /// guard, since nothing can drop the caller between the call and its answer, and `settle`
    /// is not even made.
    pub async fn answer(mut call: BoxFuture<'static, T>, settle: impl FnOnce() -> Settle<T>) -> T {
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
        let (Some(call), Some(settle)) = (self.call.take(), self.settle.take()) else {
            return;
        };
        if !run_detached(Box::pin(async move { settle(call.await).await })) {
            tracing::warn!(
                "a call was dropped outside a tokio runtime before its answer; what it took \
                 stays taken until it expires"
            );
        }
    }
}

/// Leases through `client`, so that a caller gone before the answer leaves no lease behind:
/// an answer nobody awaits that acquired the key cancels the lease (with `reason`).
pub(crate) async fn lease(
    client: &OnceOnly,
    req: crate::models::LeaseRequest,
    reason: &'static str,
) -> Result<Lease> {
    let key = req.key.clone();
    // Only a heartbeat would use it, and a lease nobody waits for gets none.
    let ttl = req.ttl.unwrap_or(Duration::ZERO);
    let call = {
        let client = client.clone();
        Box::pin(async move { client.backend().lease(req).await })
    };
    InFlight::answer(call, || cancel_if_acquired(client, key, ttl, reason)).await
}

/// The settle step of a lease call: cancels the lease if it was acquired.
pub fn cancel_if_acquired(
    client: &OnceOnly,
    key: String,
    ttl: Duration,
    reason: &'static str,
) -> Settle<Result<Lease>> {
    let client = client.clone();
    Box::new(move |answer| {
        Box::pin(async move {
            if let Ok(lease) = answer
                && lease.status == RunStatus::Acquired
                && let Some(lease_id) = lease.lease_id
            {
                // Dropped armed, the holder cancels the lease, as any abandoned holder does.
                drop(HeldLease::new(&client, key, lease_id, ttl).cancel_reason(reason));
            }
        })
    })
}
