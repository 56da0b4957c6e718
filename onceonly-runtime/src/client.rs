//! The client handle users hold: [`OnceOnly`].

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::ai::Ai;
use crate::backend::{Backend, BoxFuture};
use crate::config::OnceOnlyBuilder;
use crate::engine::Engine;
use crate::error::{Error, JsonMap, Result};
use crate::models::{CheckLockRequest, CheckLockResult, FailOpenReason};
use crate::telemetry::{Outcome, Traced};

/// A OnceOnly client: exactly-once execution and governance for one account or engine.
///
/// Cloning is cheap and shares everything (an `Arc` inside). Which backend it talks to is
/// chosen at construction: [`OnceOnly::memory`] for the embedded engine, the
/// [builder](OnceOnly::builder) or [`OnceOnly::from_env`] for the others.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
/// use onceonly_runtime::OnceOnly;
///
/// let client = OnceOnly::memory();
/// let first = client.check_lock("stripe:evt_123").await?;
/// let again = client.check_lock("stripe:evt_123").await?;
/// assert!(first.should_proceed());
/// assert!(again.is_duplicate());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OnceOnly {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    backend: Arc<dyn Backend>,
    fail_open: bool,
}

impl fmt::Debug for OnceOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceOnly")
            .field("backend", &self.inner.backend)
            .field("fail_open", &self.inner.fail_open)
            .finish()
    }
}

impl OnceOnly {
    /// A client over a fresh embedded engine with an in-memory store: no account, no server,
    /// no network. State lives as long as the client (and its clones).
    pub fn memory() -> Self {
        OnceOnly::from_backend(Engine::memory())
    }

    /// A client over the embedded engine with a [`RedisStore`](crate::store::RedisStore) at
    /// `url` (`redis://[:password@]host[:port][/db]`), connected now: every process (and every
    /// `onceonly-server`) over the same Redis shares locks, leases and results, and waiters are
    /// woken across processes. Feature `redis`.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Self> {
        let target = crate::Target::parse(url)?;
        if !matches!(target, crate::Target::Redis(_)) {
            return Err(Error::Config(format!(
                "OnceOnly::redis needs a redis:// URL, got `{target}`"
            )));
        }
        let engine = Engine::connect(&target, crate::EngineConfig::default()).await?;
        Ok(OnceOnly::from_backend(engine))
    }

    /// A client over the embedded engine with a [`SqliteStore`](crate::store::SqliteStore) in
    /// the file at `path` (created if absent): durable across restarts, shared by the
    /// processes of one host. Feature `sqlite`.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let target = crate::Target::Sqlite(path.as_ref().to_owned());
        let engine = Engine::open(&target, crate::EngineConfig::default())?;
        Ok(OnceOnly::from_backend(engine))
    }

    /// A client over any backend, for example an [`Engine`] over another store.
    pub fn from_backend(backend: impl Backend) -> Self {
        OnceOnly::from_shared_backend(Arc::new(backend), true)
    }

    pub(crate) fn from_shared_backend(backend: Arc<dyn Backend>, fail_open: bool) -> Self {
        OnceOnly {
            inner: Arc::new(ClientInner { backend, fail_open }),
        }
    }

    /// Configure a client step by step.
    pub fn builder() -> OnceOnlyBuilder {
        OnceOnlyBuilder::default()
    }

    /// The backend this client talks to.
    pub fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    pub(crate) fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.inner.backend)
    }

    /// Whether check-lock fails open when the backend is unreachable.
    pub fn fail_open(&self) -> bool {
        self.inner.fail_open
    }

    /// Locks `key` unless it is already locked: the L1 idempotency primitive.
    ///
    /// Options: `.ttl(..)`, `.metadata(..)`, `.request_id(..)`. With fail-open on (the
    /// default), a transport error, timeout or 5xx answers "proceed" with
    /// [`CheckLockResult::fail_open`] set, and is logged; every other error is returned.
    pub fn check_lock(&self, key: impl Into<String>) -> CheckLock<'_> {
        CheckLock {
            client: self,
            req: CheckLockRequest::new(key),
        }
    }

    /// Deletes the check-lock of `key`, whoever holds it, so the sender's retry is processed.
    /// Returns whether a live lock was removed. Not offered by the hosted API (it answers
    /// `Unsupported`).
    ///
    /// A handler that gives back its own lock should use
    /// [`release_own_lock`](Self::release_own_lock): if the handler outlived the lock's TTL
    /// and a later delivery locked the key again, this call would delete the later lock.
    pub async fn release_lock(&self, key: &str) -> Result<bool> {
        self.inner.backend.release_lock(key, None).await
    }

    /// Gives back the lock that `lock` (a check-lock answer) took, and only that lock: if it
    /// expired and another caller locked the key since, nothing is removed and the answer is
    /// `false`. A duplicate or fail-open answer holds no lock, so nothing is sent.
    ///
    /// Backends that do not return a [`lock_id`](CheckLockResult::lock_id) cannot fence the
    /// release; for them this is [`release_lock`](Self::release_lock).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// let client = onceonly_runtime::OnceOnly::memory();
    /// let lock = client.check_lock("evt_1").await?;
    /// // ... the handler failed: let the sender's retry through.
    /// assert!(client.release_own_lock(&lock).await?);
    /// assert!(client.check_lock("evt_1").await?.should_proceed());
    /// # Ok(()) }
    /// ```
    pub async fn release_own_lock(&self, lock: &CheckLockResult) -> Result<bool> {
        if !lock.should_proceed() || lock.fail_open.is_some() {
            return Ok(false);
        }
        self.inner
            .backend
            .release_lock(&lock.key, lock.lock_id.as_deref())
            .await
    }

    /// The AI-run and lease namespace: `run_fn`, `lease`, `status`, `wait`, ...
    pub fn ai(&self) -> Ai<'_> {
        Ai::new(self)
    }

    /// Governance: policies, the kill switch, audit logs and agent metrics.
    pub fn gov(&self) -> crate::gov::Gov<'_> {
        crate::gov::Gov::new(self)
    }
}

/// A check-lock being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a check-lock does nothing until it is awaited"]
pub struct CheckLock<'a> {
    client: &'a OnceOnly,
    req: CheckLockRequest,
}

impl CheckLock<'_> {
    /// How long the lock lives (default: the backend's, one hour on the embedded engine).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.req.ttl = Some(ttl);
        self
    }

    /// Metadata stored with the lock (at most 2,048 bytes as JSON).
    pub fn metadata(mut self, metadata: JsonMap) -> Self {
        self.req.metadata = Some(metadata);
        self
    }

    /// A request id sent as `X-Request-Id`.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.req.request_id = Some(id.into());
        self
    }
}

impl<'a> IntoFuture for CheckLock<'a> {
    type Output = Result<CheckLockResult>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let CheckLock { client, req } = self;
        let backend = &client.inner.backend;
        let traced = Traced::check_lock(backend.name(), &req.key);
        let span = traced.span().clone();
        Box::pin(
            async move {
                let (key, ttl) = (req.key.clone(), req.ttl);
                let answer = match backend.check_lock(req).await {
                    Err(e) if client.inner.fail_open => match fail_open_reason(&e) {
                        Some(reason) => Ok(failed_open(key, ttl, reason, &e)),
                        None => Err(e),
                    },
                    answer => answer,
                };
                traced.finish(match &answer {
                    Ok(r) if r.fail_open.is_some() => Outcome::FailOpen,
                    Ok(r) if r.locked => Outcome::Executed,
                    Ok(_) => Outcome::Replayed,
                    Err(_) => Outcome::Failed,
                });
                answer
            }
            .instrument(span),
        )
    }
}

/// Classifies by error type, never by message text: only outages fail open.
fn fail_open_reason(e: &Error) -> Option<FailOpenReason> {
    if !e.is_outage() {
        return None;
    }
    Some(match e {
        Error::Timeout(_) => FailOpenReason::Timeout,
        Error::Api { .. } => FailOpenReason::Api5xx,
        _ => FailOpenReason::RequestError,
    })
}

fn failed_open(
    key: String,
    ttl: Option<Duration>,
    reason: FailOpenReason,
    e: &Error,
) -> CheckLockResult {
    tracing::warn!(%key, ?reason, error = %e, "check-lock failed open: proceeding without a lock");
    CheckLockResult {
        locked: true,
        duplicate: false,
        key,
        // Whole seconds rounded up, as the request sent it and as lock answers read.
        ttl: ttl.map_or(0, |t| crate::time::ms(t).div_ceil(1000)),
        first_seen_at: None,
        lock_id: None,
        request_id: Some("fail-open".to_owned()),
        status_code: 0,
        fail_open: Some(reason),
    }
}
