//! Holding a lease while local work runs: heartbeat, release on failure, cancel on drop.
//!
//! Whoever acquires a lease for a side effect owes the backend three things: keep the lease
//! alive while the work runs, give the key back when the work failed, and give it back too when
//! the work is abandoned half-way (the future is dropped by a timeout or a disconnected caller),
//! so the next caller does not wait out the TTL. [`HeldLease`] does all three, so
//! [`run_fn`](crate::run_fn) and the HTTP middleware built on this crate hold their leases the
//! same way.
//!
//! The one decision left to the caller is when the side effect counts as done: from then on a
//! drop must *not* give the key back (that would let the effect happen twice), so the caller
//! [`disarm`](HeldLease::disarm)s the holder before it stores the result.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), onceonly_runtime::Error> {
//! use std::time::Duration;
//! use onceonly_runtime::models::{CompleteRequest, LeaseRequest, RunStatus};
//! use onceonly_runtime::{HeldLease, OnceOnly};
//!
//! let client = OnceOnly::memory();
//! let ttl = Duration::from_secs(60);
//! let lease = client.backend().lease(LeaseRequest::new("email:42").ttl(ttl)).await?;
//! let mut held = HeldLease::new(&client, "email:42", lease.lease_id.unwrap(), ttl);
//!
//! let sent = held.run_with_heartbeat(async { "sent" }, ttl / 3).await;
//! held.disarm(); // the email is out: a drop from here on must not free the key
//! client
//!     .backend()
//!     .complete(CompleteRequest::new(held.key(), held.lease_id(), None))
//!     .await?;
//! assert_eq!(sent, "sent");
//! assert_eq!(client.backend().lease(LeaseRequest::new("email:42")).await?.status, RunStatus::Completed);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use crate::backend::{Backend, BoxFuture};
use crate::client::OnceOnly;
use crate::error::{Error, JsonMap, Result};
use crate::models::{CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease};
use crate::time::deadline_after;

/// The shortest heartbeat interval [`HeldLease::run_with_heartbeat`] uses.
pub(crate) const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// A lease this process holds: the backend, key, lease id and TTL, plus a cancel-on-drop guard.
///
/// While *armed* (from [`new`](Self::new) until [`disarm`](Self::disarm) or a finished
/// [`release`](Self::release)), dropping it cancels the lease: the cancel future is polled once
/// in `drop` (the embedded engine is done by then, so the key is free when `drop` returns), and
/// otherwise finishes on the current tokio runtime.
#[must_use = "dropping a HeldLease at once cancels the lease"]
pub struct HeldLease {
    backend: Arc<dyn Backend>,
    key: String,
    lease_id: String,
    ttl: Duration,
    cancel_reason: Cow<'static, str>,
    armed: bool,
}

impl fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldLease")
            .field("key", &self.key)
            .field("lease_id", &self.lease_id)
            .field("ttl", &self.ttl)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl HeldLease {
    /// Takes charge of a lease acquired through `client`, armed. `ttl` is what each heartbeat
    /// extends the lease to.
    pub fn new(
        client: &OnceOnly,
        key: impl Into<String>,
        lease_id: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        HeldLease {
            backend: client.shared_backend(),
            key: key.into(),
            lease_id: lease_id.into(),
            ttl,
            cancel_reason: Cow::Borrowed("dropped"),
            armed: true,
        }
    }

    /// The reason sent with the cancel when the holder is dropped while armed (default
    /// `dropped`).
    pub fn cancel_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.cancel_reason = reason.into();
        self
    }

    /// The leased key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease id.
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// The TTL each heartbeat extends the lease to.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The backend the lease was acquired from.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Whether a drop would cancel the lease.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Runs `work` while extending the lease every `every` (at least 100 ms); the
    /// first extension is one interval after the start.
    ///
    /// Heartbeat failures never fail the work: whether it counts is decided when the result is
    /// stored. They are logged; a lost lease ([`Error::LeaseLost`]) stops the heartbeat, any
    /// other error is retried at the next tick.
    pub async fn run_with_heartbeat<F: Future>(&self, work: F, every: Duration) -> F::Output {
        let every = every.max(MIN_HEARTBEAT);
        let key = self.key.as_str();
        let heartbeat = async {
            let mut tick = tokio::time::interval_at(deadline_after(every), every);
            loop {
                tick.tick().await;
                let req = ExtendRequest::new(key, self.lease_id.as_str(), Some(self.ttl));
                match self.backend.extend(req).await {
                    Ok(_) => {}
                    Err(e @ Error::LeaseLost { .. }) => {
                        tracing::warn!(%key, error = %e, "heartbeat stopped: the lease was lost");
                        std::future::pending::<()>().await;
                    }
                    Err(e) => tracing::warn!(%key, error = %e, "heartbeat failed; will retry"),
                }
            }
        };
        tokio::select! {
            biased;
            out = work => out,
            () = heartbeat => unreachable!("the heartbeat never finishes"),
        }
    }

    /// Stores `result` as the lease's completion; `ttl` is the lease's TTL, heartbeats having
    /// kept at least half of it ahead. A failure worth retrying (a timeout, a 5xx, a rate
    /// limit, a store outage) is retried, with a backoff, starting new attempts for at most
    /// 5 s and half of `ttl`: a completion is idempotent for its lease id, so sending it again
    /// after a lost answer is safe, while giving up would leave the lease to expire and the
    /// next caller to run the side effect again. A longer outage is returned, not waited out.
    /// Does not disarm (see [`disarm`](Self::disarm)).
    pub async fn complete(&self, result: JsonMap, ttl: Duration) -> Result<Lease> {
        let req = CompleteRequest::new(self.key.as_str(), self.lease_id.as_str(), Some(result));
        self.retried("store the result", ttl, || {
            self.backend.complete(req.clone())
        })
        .await
    }

    /// `send`'s answer, sent again after a failure worth retrying (a timeout, a 5xx, a rate
    /// limit, a store outage), with a backoff, for at most 5 s and half of `ttl`. Only for
    /// calls that are idempotent for their lease id: the first may have landed.
    async fn retried<'a>(
        &self,
        what: &str,
        ttl: Duration,
        send: impl Fn() -> BoxFuture<'a, Result<Lease>>,
    ) -> Result<Lease> {
        /// The longest a call is retried.
        const RETRY_WINDOW: Duration = Duration::from_secs(5);
        let deadline = deadline_after((ttl / 2).min(RETRY_WINDOW));
        let mut pause = Duration::from_millis(100);
        loop {
            match send().await {
                Err(e) if e.is_retryable() && deadline_after(pause) < deadline => {
                    tracing::warn!(key = %self.key, error = %e, "could not {what}; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                answer => return answer,
            }
        }
    }

    /// Gives the key back for a retry, recording `code` as the reason (a retryable failure:
    /// the key reads `failed` with `retryable: true` until someone acquires it again).
    /// Disarms once the call has returned; while it is in flight the holder stays armed, so a
    /// drop in the middle still cancels the lease. A failure worth retrying is retried as
    /// [`complete`](Self::complete) does (within half of the holder's TTL, at most 5 s); one
    /// that persists is logged, not returned: the caller's own error is the one that matters,
    /// and the lease expires anyway.
    pub async fn release(&mut self, code: &str) {
        self.end(code, true).await;
    }

    /// Fails the key for good with `code`: later callers get
    /// [`Error::PreviouslyFailed`]. Retries, disarms and logs like [`release`](Self::release);
    /// if the backend stays unreachable the lease expires instead, and the key then reads as a
    /// retryable failure.
    pub async fn fail(&mut self, code: &str) {
        self.end(code, false).await;
    }

    async fn end(&mut self, code: &str, retryable: bool) {
        let req = FailRequest::new(self.key.as_str(), self.lease_id.as_str(), code, retryable);
        let sent = self.retried("record the failure", self.ttl, || {
            self.backend.fail(req.clone())
        });
        if let Err(e) = sent.await {
            tracing::warn!(
                key = %self.key, code, error = %e,
                "could not record the failure; the lease will expire"
            );
        }
        self.armed = false;
    }

    /// Stops the cancel-on-drop: the lease was completed, or is better left to expire than
    /// given back (the side effect already happened).
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if !std::mem::take(&mut self.armed) {
            return;
        }
        let backend = Arc::clone(&self.backend);
        let key = std::mem::take(&mut self.key);
        let req = CancelRequest::new(
            key.as_str(),
            std::mem::take(&mut self.lease_id),
            Some(self.cancel_reason.clone().into_owned()),
        );
        let cancel = Box::pin(async move {
            if let Err(e) = backend.cancel(req).await {
                tracing::warn!(%key, error = %e, "could not cancel a dropped lease; it will expire");
            }
        });
        if !run_detached(cancel) {
            tracing::warn!("lease dropped outside a tokio runtime; it will expire");
        }
    }
}

/// Runs clean-up work from synchronous code such as `Drop`: polls it once with a no-op waker
/// (the embedded engine finishes then), else spawns the rest on the current tokio runtime.
///
/// Returns `false` when the work neither finished nor could be spawned (no runtime): it was
/// dropped unfinished.
pub fn run_detached(mut work: BoxFuture<'static, ()>) -> bool {
    if work
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
    {
        return true;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(work);
            true
        }
        Err(_) => false,
    }
}
