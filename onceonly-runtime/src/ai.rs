//! The `client.ai()` namespace: leases, status, waiting, and `run_fn`.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use crate::backend::BoxFuture;
pub use crate::call::{Call, Request};
use crate::client::OnceOnly;
use crate::error::{Error, Result};
use crate::models::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, LeaseRequest,
    ToolCallRequest,
};
pub use crate::run_fn::{RunFn, RunFnOptions};
pub use crate::worker::{Job, Worker};

/// Default bound of [`Ai::wait`].
pub(crate) const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// A governed call of a registered tool by `agent_id` (options: `.args(..)`,
    /// `.spend_usd(..)`, `.run_id(..)`): the agent's policy decides, an identical earlier
    /// call's result is returned as `dedup`, and an allowed call runs the tool once.
    ///
    /// Over HTTP this is tool-mode `POST /ai/run` (`args` sent only when non-empty). An
    /// unknown tool, which the hosted API answers with a 404 `tool_not_found`, is a blocked
    /// result with `policy_reason` `tool_not_found` on both backends, not an error.
    pub fn run_tool(
        self,
        agent_id: impl Into<String>,
        tool: impl Into<String>,
    ) -> Call<'a, ToolCallRequest> {
        Call::new(self.client, ToolCallRequest::new(agent_id, tool))
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
            let deadline = crate::time::deadline_after(self.timeout);
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

/// How often [`Ai::run_and_wait`] extends the lease that `run` returned, by default.
pub(crate) const DEFAULT_EXTEND_EVERY: Duration = Duration::from_secs(30);

impl<'a> Ai<'a> {
    /// Queues a run for `key` once, or attaches to the existing one: key-mode `POST /ai/run`
    /// (options `.ttl(..)`, `.metadata(..)`, `.run_id(..)`). The answer has the shape of
    /// [`lease`](Ai::lease): `in_progress` with `queued: true` while the run waits for a
    /// worker, `in_progress` while one executes it, then `completed` with the result or
    /// `failed`. Only the call that queued the run is charged.
    ///
    /// Who executes it: on the embedded engine and `onceonly-server`, a run whose metadata
    /// lists `actions` (with `agent_id`) is executed by the engine as governed tool calls;
    /// any other run by a [`worker`](Ai::worker). The hosted API executes its runs itself.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use std::time::Duration;
    /// let client = onceonly_runtime::OnceOnly::new("once_live_...");
    /// let run = client.ai().run("report:2026-04")
    ///     .ttl(Duration::from_secs(600))
    ///     .run_id("monthly-reports")
    ///     .await?;
    /// println!("{:?}", run.status);
    /// # Ok(()) }
    /// ```
    pub fn run(self, key: impl Into<String>) -> AiRun<'a> {
        AiRun {
            client: self.client,
            req: LeaseRequest::new(key),
            run_id: None,
        }
    }

    /// [`run`](Ai::run), then [`wait`](Ai::wait) for the outcome (options of both, plus
    /// `.extend_every(..)`). While it waits, the lease `run` returned (if this call acquired
    /// one) is extended every 30 s, as the official SDKs do.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use std::time::Duration;
    /// let client = onceonly_runtime::OnceOnly::new("once_live_...");
    /// let job = client.ai().run_and_wait("report:2026-04")
    ///     .timeout(Duration::from_secs(120))
    ///     .await?;
    /// println!("{:?} {:?}", job.status, job.result);
    /// # Ok(()) }
    /// ```
    pub fn run_and_wait(self, key: impl Into<String>) -> RunAndWait<'a> {
        RunAndWait {
            run: self.run(key),
            timeout: DEFAULT_WAIT_TIMEOUT,
            extend_every: DEFAULT_EXTEND_EVERY,
        }
    }

    /// A worker for the queued runs whose key matches `pattern` (`report:*`: a trailing `*`
    /// matches any rest; `*`: every run; otherwise one exact key). Configure it, then
    /// [`serve`](Worker::serve) a handler; see [`Worker`] for the guarantees.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use std::time::Duration;
    /// use onceonly_runtime::{OnceOnly, ai::Job};
    ///
    /// let client = OnceOnly::memory();
    /// let worker = client.ai().worker("report:*")
    ///     .concurrency(4)
    ///     .lease_ttl(Duration::from_secs(30))
    ///     .with_graceful_shutdown(tokio::time::sleep(Duration::from_secs(2)));
    /// let serving = tokio::spawn(worker.serve(|job: Job| async move {
    ///     Ok::<_, std::io::Error>(format!("report for {}", job.key)) // the side effect
    /// }));
    ///
    /// // Three callers ask for the same report: it is generated once, all three get it.
    /// let ask = || client.ai().run_and_wait("report:2026-11").timeout(Duration::from_secs(10));
    /// let (a, b, c) = tokio::join!(ask(), ask(), ask());
    /// assert_eq!(a?.result, c?.result);
    /// assert_eq!(b?.result.unwrap()["value"], "report for report:2026-11");
    /// serving.await.expect("the worker task")?;
    /// # Ok(()) }
    /// ```
    pub fn worker(self, pattern: impl Into<String>) -> Worker {
        Worker::new(self.client, pattern.into())
    }
}

/// A key-mode `ai().run()` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a run does nothing until it is awaited"]
pub struct AiRun<'a> {
    client: &'a OnceOnly,
    req: LeaseRequest,
    run_id: Option<String>,
}

impl AiRun<'_> {
    /// The lease TTL of the run.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.req.ttl = Some(ttl);
        self
    }

    /// Metadata of the run (`agent_id`, `actions`, ... for the hosted worker).
    pub fn metadata(mut self, metadata: crate::error::JsonMap) -> Self {
        self.req.metadata = Some(metadata);
        self
    }

    /// The run id its timeline events are filed under (sent as `metadata.run_id`, replacing
    /// any given there). Trimmed; a blank id is an error. Without it the server uses the key.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    fn into_request(self) -> Result<LeaseRequest> {
        let mut req = self.req;
        if let Some(run_id) = self.run_id {
            let run_id = run_id.trim();
            if run_id.is_empty() {
                return Err(Error::validation("run_id must not be empty"));
            }
            req.metadata
                .get_or_insert_with(Default::default)
                .insert("run_id".to_owned(), run_id.into());
        }
        Ok(req)
    }
}

impl<'a> IntoFuture for AiRun<'a> {
    type Output = Result<crate::models::Lease>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let client = self.client;
        match self.into_request() {
            Ok(req) => client.backend().run(req),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

/// An `ai().run_and_wait()` being built; `.await` runs it.
#[derive(Debug)]
#[must_use = "a run does nothing until it is awaited"]
pub struct RunAndWait<'a> {
    run: AiRun<'a>,
    timeout: Duration,
    extend_every: Duration,
}

impl RunAndWait<'_> {
    /// The lease TTL of the run.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.run = self.run.ttl(ttl);
        self
    }

    /// Metadata of the run.
    pub fn metadata(mut self, metadata: crate::error::JsonMap) -> Self {
        self.run = self.run.metadata(metadata);
        self
    }

    /// The run id (see [`AiRun::run_id`]).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run = self.run.run_id(run_id);
        self
    }

    /// How long to wait for the outcome (default 60 s); running out is [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the acquired lease is extended while waiting (default 30 s).
    pub fn extend_every(mut self, every: Duration) -> Self {
        self.extend_every = every;
        self
    }
}

impl<'a> IntoFuture for RunAndWait<'a> {
    type Output = Result<AiResult>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let RunAndWait {
                run,
                timeout,
                extend_every,
            } = self;
            let client = run.client;
            let ttl = run.req.ttl;
            let key = run.req.key.clone();
            let lease = run.await?;
            let wait = client.ai().wait(key.clone()).timeout(timeout).into_future();
            let Some(lease_id) = lease.lease_id.filter(|_| !lease.status.is_terminal()) else {
                return wait.await;
            };
            let every = extend_every.max(Duration::from_secs(1));
            let heartbeat = async {
                let start = crate::time::deadline_after(every);
                let mut tick = tokio::time::interval_at(start, every);
                loop {
                    tick.tick().await;
                    let req = ExtendRequest::new(key.as_str(), lease_id.as_str(), ttl);
                    if let Err(e) = client.backend().extend(req).await {
                        tracing::debug!(key = %key, error = %e, "run_and_wait: extend failed");
                    }
                }
            };
            tokio::select! {
                out = wait => out,
                () = heartbeat => unreachable!("the heartbeat never finishes"),
            }
        })
    }
}
