//! The object-safe seam between the client handle and whatever executes the calls.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Result;
use crate::models::{
    AiResult, AiStatus, CancelRequest, CheckLockRequest, CheckLockResult, CompleteRequest,
    ExtendRequest, FailRequest, Lease, LeaseRequest,
};

/// A boxed, `Send` future, the return type of every [`Backend`] method.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a [`OnceOnly`](crate::OnceOnly) client talks to: the embedded
/// [`Engine`](crate::Engine), or the HTTP API.
///
/// Backends translate; they do not decide. The lease state machine and every other rule live
/// in the engine (directly, or behind a server that runs it). The trait is object-safe so the
/// client can hold an `Arc<dyn Backend>` and stay non-generic.
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and logs (`embedded/memory`, `http`).
    fn name(&self) -> &'static str;

    /// Atomic claim of `req.key` for `req.ttl`.
    fn check_lock(&self, req: CheckLockRequest) -> BoxFuture<'_, Result<CheckLockResult>>;

    /// Deletes a check-lock so the next `check_lock` locks again. Returns whether a live lock
    /// was removed. An extension of this project: the hosted API has no such call.
    fn release_lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Acquires the lease of a key, or reports who has it and how it ended.
    fn lease(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>>;

    /// Pushes the holder's lease expiry forward.
    fn extend(&self, req: ExtendRequest) -> BoxFuture<'_, Result<Lease>>;

    /// Stores the result and ends the lease.
    fn complete(&self, req: CompleteRequest) -> BoxFuture<'_, Result<Lease>>;

    /// Stores a failure (terminal, or releasing the key when `retryable`).
    fn fail(&self, req: FailRequest) -> BoxFuture<'_, Result<Lease>>;

    /// Releases the key without a result.
    fn cancel(&self, req: CancelRequest) -> BoxFuture<'_, Result<Lease>>;

    /// Where a key stands.
    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiStatus>>;

    /// The stored result of a key.
    fn result<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiResult>>;

    /// Waits up to `max_wait` for the key to leave `in_progress`/`not_found` and returns its
    /// status then (or the status at the deadline). Backends wake on change; they do not poll
    /// at a fixed interval unless the far side offers nothing better.
    fn wait_status<'a>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<AiStatus>>;
}
