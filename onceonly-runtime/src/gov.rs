//! The `client.gov()` namespace: policies, the kill switch, audit logs and agent metrics.
//!
//! Every backend answers the same typed models: the embedded engine decides itself, and the
//! HTTP backend reads `onceonly-server`'s or the hosted API's answers into them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
//! use onceonly_runtime::OnceOnly;
//! use onceonly_runtime::models::{MetricsPeriod, Policy};
//!
//! let client = OnceOnly::memory();
//! let gov = client.gov();
//! gov.upsert_policy(Policy::new("support-bot").max_actions_per_hour(150)).await?;
//! gov.policy_from_template("billing-bot", "strict").await?;
//! assert_eq!(gov.list_policies().await?.len(), 2);
//!
//! let off = gov.disable_agent("support-bot", "suspicious refunds").await?;
//! assert!(!off.is_enabled);
//! gov.enable_agent("support-bot", "").await?;
//!
//! let logs = gov.agent_logs("support-bot").limit(20).await?;
//! let day = gov.agent_metrics("support-bot").period(MetricsPeriod::Day).await?;
//! assert_eq!(logs.len() as u64, day.total_actions);
//! # Ok(()) }
//! ```

use crate::backend::{Backend, BoxFuture};
use crate::call::{Call, Request};
use crate::client::OnceOnly;
use crate::error::{JsonMap, Result};
use crate::models::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus, MetricsPeriod,
    Policy, TemplateRequest,
};

/// Default page size of [`Gov::agent_logs`].
pub(crate) const DEFAULT_LOGS_LIMIT: u32 = 100;

/// Governance operations of a [`OnceOnly`] client. Get one with [`OnceOnly::gov`].
#[derive(Debug, Clone, Copy)]
pub struct Gov<'a> {
    client: &'a OnceOnly,
}

fn non_empty(reason: &str) -> Option<&str> {
    let r = reason.trim();
    (!r.is_empty()).then_some(r)
}

impl<'a> Gov<'a> {
    pub(crate) fn new(client: &'a OnceOnly) -> Self {
        Gov { client }
    }

    fn backend(self) -> &'a dyn Backend {
        self.client.backend()
    }

    /// Stores `policy` for `policy.agent_id`, replacing the agent's previous policy.
    pub fn upsert_policy(self, policy: Policy) -> BoxFuture<'a, Result<Policy>> {
        self.backend().upsert_policy(policy)
    }

    /// Stores a built-in template's policy for `agent_id` (option: `.overrides(..)`).
    pub fn policy_from_template(
        self,
        agent_id: impl Into<String>,
        template: impl Into<String>,
    ) -> Call<'a, TemplateRequest> {
        Call::new(
            self.client,
            TemplateRequest {
                agent_id: agent_id.into(),
                template: template.into(),
                overrides: JsonMap::new(),
            },
        )
    }

    /// The policy of `agent_id` ([`Error::NotFound`](crate::Error::NotFound) without one).
    pub fn get_policy(self, agent_id: &'a str) -> BoxFuture<'a, Result<Policy>> {
        self.backend().get_policy(agent_id)
    }

    /// Every policy of the account.
    pub fn list_policies(self) -> BoxFuture<'a, Result<Vec<Policy>>> {
        self.backend().list_policies()
    }

    /// Kill switch on: every governed call of `agent_id` is blocked until
    /// [`enable_agent`](Self::enable_agent). An empty `reason` records none.
    pub fn disable_agent(
        self,
        agent_id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        self.backend()
            .set_agent_enabled(agent_id, false, non_empty(reason))
    }

    /// Kill switch off.
    pub fn enable_agent(
        self,
        agent_id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        self.backend()
            .set_agent_enabled(agent_id, true, non_empty(reason))
    }

    /// The agent's newest audit entries (option: `.limit(1..=500)`, default 100).
    pub fn agent_logs(self, agent_id: impl Into<String>) -> Call<'a, AgentLogsRequest> {
        Call::new(
            self.client,
            AgentLogsRequest {
                agent_id: agent_id.into(),
                limit: DEFAULT_LOGS_LIMIT,
            },
        )
    }

    /// The agent's activity over a window (option: `.period(..)`, default a day).
    pub fn agent_metrics(self, agent_id: impl Into<String>) -> Call<'a, AgentMetricsRequest> {
        Call::new(
            self.client,
            AgentMetricsRequest {
                agent_id: agent_id.into(),
                period: MetricsPeriod::Day,
            },
        )
    }
}

impl Request for TemplateRequest {
    type Response = Policy;
    fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<Policy>> {
        backend.policy_from_template(self)
    }
}

impl Request for AgentLogsRequest {
    type Response = Vec<AgentLogItem>;
    fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<Vec<AgentLogItem>>> {
        backend.agent_logs(self)
    }
}

impl Request for AgentMetricsRequest {
    type Response = AgentMetrics;
    fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<AgentMetrics>> {
        backend.agent_metrics(self)
    }
}

impl Call<'_, TemplateRequest> {
    /// Fields replacing the template's (shallowly).
    pub fn overrides(mut self, overrides: JsonMap) -> Self {
        self.req.overrides = overrides;
        self
    }
}

impl Call<'_, AgentLogsRequest> {
    /// How many entries (1 to 500).
    pub fn limit(mut self, limit: u32) -> Self {
        self.req.limit = limit;
        self
    }
}

impl Call<'_, AgentMetricsRequest> {
    /// The window.
    pub fn period(mut self, period: MetricsPeriod) -> Self {
        self.req.period = period;
        self
    }
}
