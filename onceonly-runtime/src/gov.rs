//! The `client.gov()` namespace: policies, the kill switch, audit logs and agent metrics.
//!
//! Every backend answers the same typed models: the embedded engine decides itself, and the
//! HTTP backend reads `onceonly-server`'s or the hosted API's answers into them, the way the
//! official SDKs read them. Where the two differ, each method says how. Over HTTP every call
//! is retried and its errors are mapped like any other (see the `http` module): on the
//! hosted API a plan without the feature answers 403 `feature_not_available`, which is
//! [`Error::Api`](crate::Error::Api) with status 403.
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
use crate::engine::ToolFn;
use crate::error::{JsonMap, Result};
use crate::models::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus,
    DeleteToolRequest, GLOBAL_SCOPE, GetToolRequest, ListToolsRequest, MetricsPeriod, Policy,
    TemplateRequest, ToggleToolRequest, Tool, ToolDeleted, ToolSpec,
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
    ///
    /// Embedded: the answer is the policy as stored. Over HTTP (`POST /policies/{agent_id}`):
    /// the answer's nested `policy` when the server sends one (the hosted API trims fields the
    /// plan lacks, so this is what it kept), else the policy as sent; an empty `agent_id` is
    /// refused before anything is sent.
    pub fn upsert_policy(self, policy: Policy) -> BoxFuture<'a, Result<Policy>> {
        self.backend().upsert_policy(policy)
    }

    /// Stores a built-in template's policy for `agent_id` (option: `.overrides(..)`).
    ///
    /// Embedded: the templates are this crate's documented table. Over HTTP
    /// (`POST /policies/{agent_id}/from-template`): the server's templates, and the answer's
    /// nested `policy`; a server that sends none leaves only what was sent
    /// (`template` and `overrides` in [`Policy::extra`]).
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
    ///
    /// Over HTTP only a 404 whose `detail.error` is `not_found` is `NotFound`; any other 404
    /// stays [`Error::Api`](crate::Error::Api).
    pub fn get_policy(self, agent_id: &'a str) -> BoxFuture<'a, Result<Policy>> {
        self.backend().get_policy(agent_id)
    }

    /// Every policy of the account.
    ///
    /// Embedded: ordered by agent id. Over HTTP: in the server's order; a bare array and
    /// `{"items": [..]}` or `{"data": [..]}` are all read, entries that are not objects skipped.
    pub fn list_policies(self) -> BoxFuture<'a, Result<Vec<Policy>>> {
        self.backend().list_policies()
    }

    /// Kill switch on: every governed call of `agent_id` is blocked until
    /// [`enable_agent`](Self::enable_agent). An empty `reason` records none.
    ///
    /// Over HTTP the body is `{"reason"}`, or `{}` without one, and `is_enabled` is read
    /// from `is_enabled`, else `enabled`, else the state asked for. The hosted API gates the
    /// kill switch by plan.
    pub fn disable_agent(
        self,
        agent_id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        self.backend()
            .set_agent_enabled(agent_id, false, non_empty(reason))
    }

    /// Kill switch off. Over HTTP the `reason` is sent as for
    /// [`disable_agent`](Self::disable_agent); the embedded engine keeps none.
    pub fn enable_agent(
        self,
        agent_id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        self.backend()
            .set_agent_enabled(agent_id, true, non_empty(reason))
    }

    /// The agent's newest audit entries (option: `.limit(1..=500)`, default 100).
    ///
    /// Over HTTP entries are read with the official SDKs' defaults where the server leaves
    /// fields out: `allowed` true, `decision` `allowed` or `blocked` by it, `policy_reason`
    /// from `reason`, `ts` from a number, a decimal string or an RFC 3339 time. Reasons and
    /// decisions are kept as the server spells them, including ones this version does not know.
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
    ///
    /// Over HTTP a period the server names but this version does not know reads as the one
    /// asked for, and missing counts as zero.
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

/// The tools registry: HTTP tools that governed calls (`client.ai().run_tool(..)`) execute,
/// signed with the tool's secret; and, on the embedded engine, Rust functions.
impl<'a> Gov<'a> {
    /// Registers (or replaces, by name and scope) an HTTP tool. The answer never shows the
    /// secret, only its id and last three characters.
    ///
    /// Over HTTP (`POST /tools`) the spec, secret and `scope_id` included, is the body; this
    /// is the one request that carries the secret. The hosted API caps the number of tools by
    /// plan (a 403 `plan_limit`, [`Error::Api`](crate::Error::Api)).
    pub fn create_tool(self, spec: ToolSpec) -> BoxFuture<'a, Result<Tool>> {
        self.backend().create_tool(spec)
    }

    /// The tools of a scope (option: `.scope_id(..)`, default `global`).
    ///
    /// Over HTTP the scope travels in the query (`?scope_id=agent%3Abot`); lists are read
    /// like [`list_policies`](Self::list_policies)'.
    pub fn list_tools(self) -> Call<'a, ListToolsRequest> {
        Call::new(
            self.client,
            ListToolsRequest {
                scope_id: GLOBAL_SCOPE.to_owned(),
            },
        )
    }

    /// One tool (option: `.scope_id(..)`); [`Error::NotFound`](crate::Error::NotFound)
    /// when there is none (over HTTP: a 404 `not_found`).
    pub fn get_tool(self, name: impl Into<String>) -> Call<'a, GetToolRequest> {
        Call::new(
            self.client,
            GetToolRequest {
                name: name.into(),
                scope_id: GLOBAL_SCOPE.to_owned(),
            },
        )
    }

    /// Switches a tool on or off (option: `.scope_id(..)`).
    ///
    /// Over HTTP the hosted API answers only `{"name", "enabled"}`: the other fields of the
    /// returned [`Tool`] are the request's scope and the documented defaults, not the stored
    /// tool's; read it back with [`get_tool`](Self::get_tool) when they matter.
    pub fn toggle_tool(
        self,
        name: impl Into<String>,
        enabled: bool,
    ) -> Call<'a, ToggleToolRequest> {
        Call::new(
            self.client,
            ToggleToolRequest {
                name: name.into(),
                enabled,
                scope_id: GLOBAL_SCOPE.to_owned(),
            },
        )
    }

    /// Removes a tool (option: `.scope_id(..)`).
    pub fn delete_tool(self, name: impl Into<String>) -> Call<'a, DeleteToolRequest> {
        Call::new(
            self.client,
            DeleteToolRequest {
                name: name.into(),
                scope_id: GLOBAL_SCOPE.to_owned(),
            },
        )
    }

    /// Registers an async Rust function as the tool `name`, governed like any other tool.
    /// Embedded backends only (the function lives in this process);
    /// [`Error::Unsupported`](crate::Error::Unsupported) over HTTP, whose message says so:
    /// there, register an HTTP tool with [`create_tool`](Self::create_tool).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use onceonly_runtime::{JsonMap, OnceOnly};
    ///
    /// let client = OnceOnly::memory();
    /// client.gov().register_tool_fn("lookup_order", |args: JsonMap| async move {
    ///     let mut out = JsonMap::new();
    ///     out.insert("order".into(), args["id"].clone());
    ///     Ok::<_, String>(out)
    /// })?;
    /// let mut args = JsonMap::new();
    /// args.insert("id".into(), "o_1".into());
    /// let res = client.ai().run_tool("support-bot", "lookup_order").args(args).await?;
    /// assert!(res.ok);
    /// # Ok(()) }
    /// ```
    pub fn register_tool_fn(self, name: &str, f: impl ToolFn) -> Result<()> {
        self.backend()
            .register_tool_fn(name, std::sync::Arc::new(f))
    }
}

macro_rules! scoped {
    ($($req:ty => $resp:ty, $method:ident;)*) => {$(
        impl Request for $req {
            type Response = $resp;
            fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<$resp>> {
                backend.$method(self)
            }
        }

        impl Call<'_, $req> {
            /// The scope: `global` (the default) or `agent:<agent_id>`.
            pub fn scope_id(mut self, scope_id: impl Into<String>) -> Self {
                self.req.scope_id = scope_id.into();
                self
            }
        }
    )*};
}

scoped! {
    ListToolsRequest => Vec<Tool>, list_tools;
    GetToolRequest => Tool, get_tool;
    ToggleToolRequest => Tool, toggle_tool;
    DeleteToolRequest => ToolDeleted, delete_tool;
}
