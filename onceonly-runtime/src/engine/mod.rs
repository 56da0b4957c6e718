//! The embedded engine: every rule of OnceOnly, written once, over a [`Store`].
//!
//! `OnceOnly::memory()` runs it in-process; the server runs the same engine behind HTTP; the
//! Redis and SQLite stores plug in underneath. Nothing above or below it decides semantics.
//!
//! An engine serves one [`Account`]: a plan whose monthly limits it enforces, usage counters,
//! and run timelines. [`Engine::tenant`] gives each account of a shared store its own engine
//! (the server makes one per API key).

mod check_lock;
mod events;
mod gov;
mod jobs;
mod lease;
mod purge;
mod quota;
mod run;
mod tenant;
mod usage;
mod view;
mod wait;

pub use gov::ToolFn;
pub use quota::Quotas;
pub use tenant::{Account, Plan, TenantEngine, TenantStore};

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, BoxFuture};
use crate::error::Result;
use crate::models::{
    AccountInfo, AiResult, AiStatus, CancelRequest, CheckLockRequest, CheckLockResult,
    ClaimRequest, ClaimedJob, CompleteRequest, EventAck, EventsPage, ExtendRequest, FailRequest,
    Lease, LeaseRequest, Metrics, NotificationPrefs, NotificationUpdate, RunEvent, RunList,
    RunTimeline, Usage, UsageAll, UsageKind,
};
use crate::models::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus,
    DeleteToolRequest, GetToolRequest, ListToolsRequest, Policy, TemplateRequest,
    ToggleToolRequest, Tool, ToolCallRequest, ToolDeleted, ToolResult, ToolSpec,
};
use crate::store::{MemoryStore, Store};
use crate::time::{Clock, SystemClock};

/// Defaults and limits of an [`Engine`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// TTL of a check-lock when the request gives none (default 1 hour).
    pub default_lock_ttl: Duration,
    /// TTL of a lease when the request gives none (default 5 minutes).
    pub default_lease_ttl: Duration,
    /// How long finished (completed, failed, released) records are kept (default 7 days).
    pub retention: Duration,
    /// How often expired entries are physically removed (default 30 seconds).
    pub purge_interval: Duration,
    /// Largest result object accepted by `complete`, in bytes of JSON (default 1 MiB).
    pub max_result_bytes: usize,
    /// Hosts registered HTTP tools may be called on (`host` or `host:port`); none by default,
    /// so `run_tool` of an HTTP tool is refused until a host is allowed.
    pub tool_hosts: Vec<String>,
    /// Daily quotas of every account (default: none). See [`Quotas`].
    pub quotas: Quotas,
}

/// The shortest and the longest [`EngineConfig::retention`].
const MIN_RETENTION: Duration = Duration::from_secs(1);
const MAX_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_lock_ttl: Duration::from_secs(3600),
            default_lease_ttl: Duration::from_secs(300),
            retention: Duration::from_secs(7 * 24 * 3600),
            purge_interval: Duration::from_secs(30),
            max_result_bytes: 1 << 20,
            tool_hosts: Vec::new(),
            quotas: Quotas::none(),
        }
    }
}

impl EngineConfig {
    /// Sets how long finished records are kept: from 1 second to 10 years. A finished key
    /// answers with its outcome only while its record is kept, so a retention outside that
    /// range is refused by [`Engine::try_with_config`] (and brought into it, with an error
    /// logged, by [`Engine::with_config`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Sets the default check-lock TTL.
    pub fn default_lock_ttl(mut self, ttl: Duration) -> Self {
        self.default_lock_ttl = ttl;
        self
    }

    /// Sets the default lease TTL.
    pub fn default_lease_ttl(mut self, ttl: Duration) -> Self {
        self.default_lease_ttl = ttl;
        self
    }

    /// Allows registered HTTP tools on `host` (`host` or `host:port`; repeatable). The
    /// server's `--allow-tool-host` sets this.
    pub fn allow_tool_host(mut self, host: impl Into<String>) -> Self {
        self.tool_hosts.push(host.into());
        self
    }

    /// Sets the daily quotas of every account.
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Sets the purge interval.
    pub fn purge_interval(mut self, every: Duration) -> Self {
        self.purge_interval = every;
        self
    }
}

/// The OnceOnly engine over a store. Cheap to clone (an `Arc` inside).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
/// use onceonly_runtime::{Engine, models::CheckLockRequest};
///
/// let engine = Engine::memory();
/// assert!(engine.check_lock(CheckLockRequest::new("evt_1")).await?.locked);
/// assert!(engine.check_lock(CheckLockRequest::new("evt_1")).await?.duplicate);
/// # Ok(()) }
/// ```
pub struct Engine<S: Store = MemoryStore> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store.name())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Engine {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    /// Shared with the tenant engines of this store.
    purger: Arc<dyn purge::StartPurge>,
    account: Account,
    windows: usage::WindowCache,
    /// Registered functions and the outbound tool caller, shared with tenants.
    tools: Arc<gov::ToolRuntime>,
}

impl Engine<MemoryStore> {
    /// An engine over a fresh in-process [`MemoryStore`].
    pub fn memory() -> Self {
        Engine::new(MemoryStore::new())
    }
}

impl<S: Store> Engine<S> {
    /// An engine over `store` with the default configuration and the system clock.
    pub fn new(store: S) -> Self {
        Engine::with_config(store, EngineConfig::default(), Arc::new(SystemClock))
    }

    /// An engine with an explicit configuration and clock.
    ///
    /// A malformed `tool_hosts` entry is logged and ignored here, and a retention out of
    /// range is logged and brought into range; [`Engine::try_with_config`] refuses both.
    pub fn with_config(store: S, config: EngineConfig, clock: Arc<dyn Clock>) -> Self {
        match Engine::try_with_config_inner(store, config, clock) {
            (engine, None) => engine,
            (engine, Some(e)) => {
                tracing::error!(error = %e, "an engine setting was refused");
                engine
            }
        }
    }

    /// [`Engine::with_config`], refusing a malformed `tool_hosts` entry or a retention out of
    /// range.
    pub fn try_with_config(store: S, config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        match Engine::try_with_config_inner(store, config, clock) {
            (engine, None) => Ok(engine),
            (_, Some(e)) => Err(e),
        }
    }

    fn try_with_config_inner(
        store: S,
        mut config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> (Self, Option<crate::Error>) {
        let (hosts, mut bad) = match crate::tools::ToolHosts::new(config.tool_hosts.iter()) {
            Ok(hosts) => (hosts, None),
            Err(e) => (crate::tools::ToolHosts::none(), Some(e)),
        };
        if !(MIN_RETENTION..=MAX_RETENTION).contains(&config.retention) {
            // Zero would forget a finished key at once (so it runs again); a huge one would
            // overflow the purge deadlines.
            let refused = format!(
                "retention must be from 1 second to 10 years, got {:?}; using {:?}",
                config.retention,
                config.retention.clamp(MIN_RETENTION, MAX_RETENTION)
            );
            // Both problems are told, not only the first one found.
            bad = Some(crate::Error::Validation(match bad {
                Some(hosts) => format!("{hosts}; {refused}"),
                None => refused,
            }));
            config.retention = config.retention.clamp(MIN_RETENTION, MAX_RETENTION);
        }
        let store = Arc::new(store);
        let purger = purge::Purger::new(&store, Arc::clone(&clock), config.purge_interval);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
                purger: Arc::new(purger),
                account: Account::default(),
                windows: usage::WindowCache::default(),
                tools: Arc::new(gov::ToolRuntime::new(hosts)),
            }),
        };
        (engine, bad)
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Whether the store answers: one read of a counter no caller can name (the key starts
    /// with a control character), so it changes nothing and costs the store one lookup.
    /// `Ok(())` when the store answered, its error (an outage: [`Error::is_outage`]) when not.
    /// `onceonly-server` answers `GET /readyz` with it.
    ///
    /// [`Error::is_outage`]: crate::Error::is_outage
    pub async fn ping(&self) -> Result<()> {
        const PROBE: &str = "\u{1}ping";
        self.inner
            .store
            .get_counter(PROBE, self.now_ms())
            .await
            .map(drop)
    }

    fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }
}

impl<S: Store> Backend for Engine<S> {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn check_lock(&self, req: CheckLockRequest) -> BoxFuture<'_, Result<CheckLockResult>> {
        Box::pin(Engine::check_lock(self, req))
    }

    fn release_lock<'a>(
        &'a self,
        key: &'a str,
        lock_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Engine::release_lock(self, key, lock_id))
    }

    fn lease(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::lease(self, req))
    }

    fn extend(&self, req: ExtendRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::extend(self, req))
    }

    fn complete(&self, req: CompleteRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::complete(self, req))
    }

    fn fail(&self, req: FailRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::fail(self, req))
    }

    fn cancel(&self, req: CancelRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::cancel(self, req))
    }

    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiStatus>> {
        Box::pin(Engine::status(self, key))
    }

    fn result<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiResult>> {
        Box::pin(Engine::result(self, key))
    }

    fn wait_status<'a>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<AiStatus>> {
        Box::pin(Engine::wait_status(self, key, max_wait))
    }

    fn run(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(Engine::run(self, req))
    }

    fn claim_job(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<ClaimedJob>>> {
        Box::pin(Engine::claim_job(self, req))
    }

    fn me(&self) -> BoxFuture<'_, Result<AccountInfo>> {
        Box::pin(Engine::me(self))
    }

    fn update_notifications(
        &self,
        update: NotificationUpdate,
    ) -> BoxFuture<'_, Result<NotificationPrefs>> {
        Box::pin(Engine::update_notifications(self, update))
    }

    fn usage(&self, kind: UsageKind) -> BoxFuture<'_, Result<Usage>> {
        Box::pin(Engine::usage(self, kind))
    }

    fn usage_all(&self) -> BoxFuture<'_, Result<UsageAll>> {
        Box::pin(Engine::usage_all(self))
    }

    fn events(&self, limit: u32, offset: u32) -> BoxFuture<'_, Result<EventsPage>> {
        Box::pin(Engine::events(self, limit, offset))
    }

    fn post_event(&self, event: RunEvent) -> BoxFuture<'_, Result<EventAck>> {
        Box::pin(Engine::post_event(self, event))
    }

    fn run_timeline<'a>(
        &'a self,
        run_id: &'a str,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<'a, Result<RunTimeline>> {
        Box::pin(Engine::run_timeline(self, run_id, limit, offset))
    }

    fn runs<'a>(
        &'a self,
        limit: u32,
        offset: u32,
        q: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RunList>> {
        Box::pin(Engine::runs(self, limit, offset, q))
    }

    fn metrics<'a>(&'a self, from_day: &'a str, to_day: &'a str) -> BoxFuture<'a, Result<Metrics>> {
        Box::pin(Engine::metrics(self, from_day, to_day))
    }

    fn upsert_policy(&self, policy: Policy) -> BoxFuture<'_, Result<Policy>> {
        Box::pin(Engine::upsert_policy(self, policy))
    }

    fn policy_from_template(&self, req: TemplateRequest) -> BoxFuture<'_, Result<Policy>> {
        Box::pin(async move {
            Engine::policy_from_template(self, &req.agent_id, &req.template, req.overrides).await
        })
    }

    fn get_policy<'a>(&'a self, agent_id: &'a str) -> BoxFuture<'a, Result<Policy>> {
        Box::pin(Engine::get_policy(self, agent_id))
    }

    fn list_policies(&self) -> BoxFuture<'_, Result<Vec<Policy>>> {
        Box::pin(Engine::list_policies(self))
    }

    fn set_agent_enabled<'a>(
        &'a self,
        agent_id: &'a str,
        enable: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        if enable {
            Box::pin(Engine::enable_agent(self, agent_id))
        } else {
            Box::pin(Engine::disable_agent(self, agent_id, reason))
        }
    }

    fn agent_logs(&self, req: AgentLogsRequest) -> BoxFuture<'_, Result<Vec<AgentLogItem>>> {
        Box::pin(async move { Engine::agent_logs(self, &req.agent_id, req.limit).await })
    }

    fn agent_metrics(&self, req: AgentMetricsRequest) -> BoxFuture<'_, Result<AgentMetrics>> {
        Box::pin(async move { Engine::agent_metrics(self, &req.agent_id, req.period).await })
    }

    fn run_tool(&self, req: ToolCallRequest) -> BoxFuture<'_, Result<ToolResult>> {
        Box::pin(Engine::run_tool(self, req))
    }

    fn create_tool(&self, spec: ToolSpec) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(Engine::create_tool(self, spec))
    }

    fn list_tools(&self, req: ListToolsRequest) -> BoxFuture<'_, Result<Vec<Tool>>> {
        Box::pin(async move { Engine::list_tools(self, &req.scope_id).await })
    }

    fn get_tool(&self, req: GetToolRequest) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(async move { Engine::get_tool(self, &req.name, &req.scope_id).await })
    }

    fn toggle_tool(&self, req: ToggleToolRequest) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(
            async move { Engine::toggle_tool(self, &req.name, req.enabled, &req.scope_id).await },
        )
    }

    fn delete_tool(&self, req: DeleteToolRequest) -> BoxFuture<'_, Result<ToolDeleted>> {
        Box::pin(async move { Engine::delete_tool(self, &req.name, &req.scope_id).await })
    }

    fn register_tool_fn(&self, name: &str, f: Arc<dyn ToolFn>) -> Result<()> {
        self.register_tool_fn_arc(name, f)
    }
}
