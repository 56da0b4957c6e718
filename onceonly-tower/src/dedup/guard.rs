//! Giving a key back when the request that holds it ends without an answer to keep.
//!
//! A handler that fails (5xx, an error) or a request future that is dropped (the sender hung
//! up, a timeout layer fired) must not leave the key claimed: the sender's retry has to be
//! processed. The guards release explicitly on failure and, if dropped while armed, release
//! from `Drop`: at once on the embedded engine, on the runtime otherwise.

use std::task::{Context, Poll, Waker, ready};

use onceonly_runtime::models::{CancelRequest, FailRequest};
use onceonly_runtime::{BoxFuture, OnceOnly};

/// Runs a clean-up future from synchronous code: polled once here (the embedded engine is done
/// by then), else handed to the current tokio runtime.
fn run_detached(mut work: BoxFuture<'static, ()>) {
    if work
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
    {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(work);
        }
        Err(_) => tracing::warn!(
            "request dropped outside a tokio runtime; its key stays claimed until it expires"
        ),
    }
}

/// Holds a check-lock taken for a request; releases it unless disarmed.
pub(crate) struct LockGuard {
    armed: Option<(OnceOnly, String)>,
}

impl LockGuard {
    pub(crate) fn new(client: &OnceOnly, key: String) -> Self {
        LockGuard {
            armed: Some((client.clone(), key)),
        }
    }

    /// The handler's answer stands: keep the lock.
    pub(crate) fn keep(mut self) {
        self.armed = None;
    }

    /// Releases the lock, so the sender's retry runs the handler: the returned future does
    /// it, and finishes it in the background if dropped first.
    pub(crate) fn into_release(mut self, why: &'static str) -> Detached {
        let work: Option<BoxFuture<'static, ()>> = self.armed.take().map(|(client, key)| {
            Box::pin(release_lock(client, key, why)) as BoxFuture<'static, ()>
        });
        Detached(work)
    }
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

async fn release_lock(client: OnceOnly, key: String, why: &'static str) {
    match client.backend().release_lock(&key).await {
        Ok(_) => tracing::debug!(%key, why, "released the key for a retry"),
        Err(e) => tracing::warn!(
            %key, why, error = %e,
            "could not release the key; a retry is treated as a duplicate until the lock expires"
        ),
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some((client, key)) = self.armed.take() {
            run_detached(Box::pin(release_lock(client, key, "request dropped")));
        }
    }
}

/// Holds a lease acquired for a request; cancels it unless disarmed.
pub(crate) struct LeaseGuard {
    armed: Option<(OnceOnly, String, String)>,
}

impl LeaseGuard {
    pub(crate) fn new(client: &OnceOnly, key: &str, lease_id: &str) -> Self {
        LeaseGuard {
            armed: Some((client.clone(), key.to_owned(), lease_id.to_owned())),
        }
    }

    /// The lease was completed (or is left to expire): nothing to undo.
    pub(crate) fn disarm(mut self) {
        self.armed = None;
    }

    /// Releases the key with a retryable failure carrying `code`. The guard stays armed while
    /// the call is in flight, so a request dropped meanwhile still cancels the lease.
    pub(crate) async fn release(mut self, code: &'static str) {
        if let Some((client, key, lease_id)) = &self.armed {
            let req = FailRequest::new(key.as_str(), lease_id.as_str(), code, true);
            if let Err(e) = client.backend().fail(req).await {
                tracing::warn!(
                    %key, code, error = %e,
                    "could not release the key; a retry waits until the lease expires"
                );
            }
        }
        self.armed = None;
    }
}

async fn cancel_lease(client: OnceOnly, key: String, lease_id: String) {
    let req = CancelRequest::new(key.as_str(), lease_id, Some("request dropped".to_owned()));
    if let Err(e) = client.backend().cancel(req).await {
        tracing::warn!(%key, error = %e, "could not cancel a dropped request's lease; it will expire");
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some((client, key, lease_id)) = self.armed.take() {
            run_detached(Box::pin(cancel_lease(client, key, lease_id)));
        }
    }
}
