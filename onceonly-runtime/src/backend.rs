//! The object-safe seam between the client handle and whatever executes the calls.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::engine::ToolFn;
use crate::error::{Error, Result};
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
use std::sync::Arc;

fn unsupported<'a, T: Send + 'a>(
    backend: &'static str,
    operation: &'static str,
) -> BoxFuture<'a, Result<T>> {
    Box::pin(async move { Err(Error::Unsupported { operation, backend }) })
}

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

    /// Deletes a check-lock so the next `check_lock` locks again: with a `lock_id`, only the
    /// lock that check-lock answered with that id. Returns whether a live lock was removed.
    /// An extension of this project: the hosted API has no such call.
    fn release_lock<'a>(
        &'a self,
        key: &'a str,
        lock_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>>;

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

    /// Key-mode `POST /ai/run`: queues a run for `req.key`, or attaches to the existing one
    /// (same answer shape as [`Backend::lease`]).
    fn run(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        let _ = req;
        unsupported(self.name(), "ai.run")
    }

    /// Claims a queued run for a worker, waiting up to `req.wait` (`POST /ai/jobs/claim`, an
    /// extension of this project: the hosted API executes its runs itself).
    fn claim_job(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<ClaimedJob>>> {
        let _ = req;
        unsupported(self.name(), "ai.jobs.claim")
    }

    /// `GET /me`: the account behind the API key.
    fn me(&self) -> BoxFuture<'_, Result<AccountInfo>> {
        unsupported(self.name(), "me")
    }

    /// `POST /me/notifications`: notification preferences (only the given ones change).
    fn update_notifications(
        &self,
        update: NotificationUpdate,
    ) -> BoxFuture<'_, Result<NotificationPrefs>> {
        let _ = update;
        unsupported(self.name(), "update_notifications")
    }

    /// `GET /usage?kind=`: this month's usage of one bucket.
    fn usage(&self, kind: UsageKind) -> BoxFuture<'_, Result<Usage>> {
        let _ = kind;
        unsupported(self.name(), "usage")
    }

    /// `GET /usage/all`: this month's usage of both buckets.
    fn usage_all(&self) -> BoxFuture<'_, Result<UsageAll>> {
        unsupported(self.name(), "usage_all")
    }

    /// `GET /events`: recent account-level events, newest first.
    fn events(&self, limit: u32, offset: u32) -> BoxFuture<'_, Result<EventsPage>> {
        let _ = (limit, offset);
        unsupported(self.name(), "events")
    }

    /// `POST /events`: appends an event to a run's timeline.
    fn post_event(&self, event: RunEvent) -> BoxFuture<'_, Result<EventAck>> {
        let _ = event;
        unsupported(self.name(), "post_event")
    }

    /// `GET /runs/{run_id}`: a run's timeline, oldest first.
    fn run_timeline<'a>(
        &'a self,
        run_id: &'a str,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<'a, Result<RunTimeline>> {
        let _ = (run_id, limit, offset);
        unsupported(self.name(), "get_run_timeline")
    }

    /// `GET /runs`: runs with recent events, most recently active first; `q` keeps run ids
    /// that start with it.
    fn runs<'a>(
        &'a self,
        limit: u32,
        offset: u32,
        q: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RunList>> {
        let _ = (limit, offset, q);
        unsupported(self.name(), "list_runs")
    }

    /// `GET /metrics?from_day=&to_day=`: daily account metrics (`YYYY-MM-DD`, inclusive).
    fn metrics<'a>(&'a self, from_day: &'a str, to_day: &'a str) -> BoxFuture<'a, Result<Metrics>> {
        let _ = (from_day, to_day);
        unsupported(self.name(), "metrics")
    }

    /// `POST /policies/{agent_id}`: stores an agent's policy.
    fn upsert_policy(&self, policy: Policy) -> BoxFuture<'_, Result<Policy>> {
        let _ = policy;
        unsupported(self.name(), "upsert_policy")
    }

    /// `POST /policies/{agent_id}/from-template`.
    fn policy_from_template(&self, req: TemplateRequest) -> BoxFuture<'_, Result<Policy>> {
        let _ = req;
        unsupported(self.name(), "policy_from_template")
    }

    /// `GET /policies/{agent_id}`.
    fn get_policy<'a>(&'a self, agent_id: &'a str) -> BoxFuture<'a, Result<Policy>> {
        let _ = agent_id;
        unsupported(self.name(), "get_policy")
    }

    /// `GET /policies`.
    fn list_policies(&self) -> BoxFuture<'_, Result<Vec<Policy>>> {
        unsupported(self.name(), "list_policies")
    }

    /// `POST /agents/{agent_id}/disable` (`enable: false`) and `/enable` (`enable: true`).
    fn set_agent_enabled<'a>(
        &'a self,
        agent_id: &'a str,
        enable: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        let _ = (agent_id, enable, reason);
        unsupported(
            self.name(),
            if enable {
                "enable_agent"
            } else {
                "disable_agent"
            },
        )
    }

    /// `GET /agents/{agent_id}/logs`.
    fn agent_logs(&self, req: AgentLogsRequest) -> BoxFuture<'_, Result<Vec<AgentLogItem>>> {
        let _ = req;
        unsupported(self.name(), "agent_logs")
    }

    /// `GET /agents/{agent_id}/metrics`.
    fn agent_metrics(&self, req: AgentMetricsRequest) -> BoxFuture<'_, Result<AgentMetrics>> {
        let _ = req;
        unsupported(self.name(), "agent_metrics")
    }

    /// Tool-mode `POST /ai/run`: a governed call of a registered tool.
    fn run_tool(&self, req: ToolCallRequest) -> BoxFuture<'_, Result<ToolResult>> {
        let _ = req;
        unsupported(self.name(), "run_tool")
    }

    /// `POST /tools`: registers (or replaces) an HTTP tool.
    fn create_tool(&self, spec: ToolSpec) -> BoxFuture<'_, Result<Tool>> {
        let _ = spec;
        unsupported(self.name(), "create_tool")
    }

    /// `GET /tools?scope_id=`.
    fn list_tools(&self, req: ListToolsRequest) -> BoxFuture<'_, Result<Vec<Tool>>> {
        let _ = req;
        unsupported(self.name(), "list_tools")
    }

    /// `GET /tools/{name}?scope_id=`.
    fn get_tool(&self, req: GetToolRequest) -> BoxFuture<'_, Result<Tool>> {
        let _ = req;
        unsupported(self.name(), "get_tool")
    }

    /// `POST /tools/{name}/toggle?scope_id=`.
    fn toggle_tool(&self, req: ToggleToolRequest) -> BoxFuture<'_, Result<Tool>> {
        let _ = req;
        unsupported(self.name(), "toggle_tool")
    }

    /// `DELETE /tools/{name}?scope_id=`.
    fn delete_tool(&self, req: DeleteToolRequest) -> BoxFuture<'_, Result<ToolDeleted>> {
        let _ = req;
        unsupported(self.name(), "delete_tool")
    }

    /// Registers an in-process function as a tool: only a backend running the engine in this
    /// process can call it.
    fn register_tool_fn(&self, name: &str, f: Arc<dyn ToolFn>) -> Result<()> {
        let _ = (name, f);
        Err(Error::Unsupported {
            operation: "register_tool_fn",
            backend: self.name(),
        })
    }
}
