//! The `client.ai()` namespace: leases, status, waiting, and `run_fn`.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use crate::backend::BoxFuture;
use crate::call::Call;
use crate::client::OnceOnly;
use crate::error::{Error, Result};
use crate::models::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, LeaseRequest,
};
use crate::run_fn::RunFn;

/// Default bound of [`Ai::wait`].
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lease and run operations of a [`OnceOnly`] client. Get one with [`OnceOnly::ai`].
#[derive(Debug, Clone, Copy)]
pub struct Ai<'a> {
    client: &'a OnceOnly,
}

impl<'a> Ai<'a> {
    pub(crate) fn new(client: &'a OnceOnly) -> Self {
        Ai { client }
    }

    /// Runs `f` exactly once for `key` and returns its typed value; later and concurrent calls
    /// with the same key get the stored value. See [`RunFn`] for the options and guarantees.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use onceonly_runtime::{Error, OnceOnly};
    ///
    /// let client = OnceOnly::memory();
    /// let charge = || async { Ok::<_, Error>(format!("ch_{}", 42)) };
    /// let first: String = client.ai().run_fn("charge:order-42", charge).await?;
    /// let again: String = client.ai().run_fn("charge:order-42", || async {
    ///     Err(Error::Validation("not called: the stored result is replayed".into()))
    /// }).await?;
    /// assert_eq!(first, again);
    /// # Ok(()) }
    /// ```
    pub fn run_fn<F, Fut, T, E>(self, key: impl Into<String>, f: F) -> RunFn<'a, F>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        RunFn::new(self.client, key.into(), f)
    }

    /// Acquires the lease of `key` (options: `.ttl(..)`, `.metadata(..)`).
    pub fn lease(self, key: impl Into<String>) -> Call<'a, LeaseRequest> {
        Call::new(self.client, LeaseRequest::new(key))
    }

    /// Extends the holder's lease (option: `.ttl(..)`).
    pub fn extend(
        self,
        key: impl Into<String>,
        lease_id: impl Into<String>,
    ) -> Call<'a, ExtendRequest> {
        Call::new(self.client, ExtendRequest::new(key, lease_id, None))
    }

    /// Stores the result and ends the lease (options: `.result(..)`, `.result_hash(..)`).
    pub fn complete(
        self,
        key: impl Into<String>,
        lease_id: impl Into<String>,
    ) -> Call<'a, CompleteRequest> {
        Call::new(self.client, CompleteRequest::new(key, lease_id, None))
    }

    /// Stores a terminal failure; `.retryable(true)` releases the key instead.
    pub fn fail(
        self,
        key: impl Into<String>,
        lease_id: impl Into<String>,
        error_code: impl Into<String>,
    ) -> Call<'a, FailRequest> {
        Call::new(
            self.client,
            FailRequest::new(key, lease_id, error_code, false),
        )
    }

    /// Releases the key without a result (option: `.reason(..)`).
    pub fn cancel(
        self,
        key: impl Into<String>,
        lease_id: impl Into<String>,
    ) -> Call<'a, CancelRequest> {
        Call::new(self.client, CancelRequest::new(key, lease_id, None))
    }

    /// Where `key` stands.
    pub async fn status(self, key: &str) -> Result<AiStatus> {
        self.client.backend().status(key).await
    }

    /// The stored result of `key`.
    pub async fn result(self, key: &str) -> Result<AiResult> {
        self.client.backend().result(key).await
    }

    /// Waits until `key` is completed or failed and returns its result (option: `.timeout(..)`,
    /// default 60 s). A wait that runs out returns [`Error::Timeout`].
    pub fn wait(self, key: impl Into<String>) -> Wait<'a> {
        Wait {
            client: self.client,
            key: key.into(),
            timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

/// A wait being built; `.await` runs it.
#[derive(Debug)]
#[must_use = "a wait does nothing until it is awaited"]
pub struct Wait<'a> {
    client: &'a OnceOnly,
    key: String,
    timeout: Duration,
}

impl Wait<'_> {
    /// How long to wait at most.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<'a> IntoFuture for Wait<'a> {
    type Output = Result<AiResult>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let backend = self.client.backend();
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let status = backend.wait_status(&self.key, left).await?;
                if status.status.is_terminal() {
                    return backend.result(&self.key).await;
                }
                if left.is_zero() {
                    return Err(Error::Timeout(self.timeout));
                }
            }
        })
    }
}
