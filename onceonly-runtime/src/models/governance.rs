//! Governance models: policies, kill-switch states, audit entries, agent metrics, and the
//! answer of a governed tool call.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, JsonMap};

/// The price of one call of a tool, for spend accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingRule {
    /// The tool name (a trailing `*` matches a prefix).
    pub tool: String,
    /// USD charged per call.
    pub price_usd: f64,
}

/// An agent's policy: what it may call, how often, and for how much. Absent fields mean
/// "no limit"; fields this version does not know are kept in `extra`.
///
/// ```
/// use onceonly_runtime::models::Policy;
///
/// let policy = Policy::new("billing-agent")
///     .blocked_tools(["delete_*"])
///     .max_actions_per_hour(100)
///     .max_spend_usd_per_day(25.0);
/// assert_eq!(policy.max_actions_per_hour, Some(100));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Policy {
    /// The agent this policy governs.
    #[serde(default)]
    pub agent_id: String,
    /// When non-empty, only these tools may be called (a trailing `*` matches a prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    /// These tools may never be called (a trailing `*` matches a prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_tools: Option<Vec<String>>,
    /// Executed calls per UTC clock hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_hour: Option<u64>,
    /// USD budget per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spend_usd_per_day: Option<f64>,
    /// Executed calls per tool per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls_per_tool: Option<BTreeMap<String, u64>>,
    /// Per-call prices, used when a call states no spend of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_rules: Option<Vec<PricingRule>>,
    /// Fields this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Policy {
    /// An empty policy (everything allowed, no limits) for `agent_id`.
    pub fn new(agent_id: impl Into<String>) -> Self {
        Policy {
            agent_id: agent_id.into(),
            ..Policy::default()
        }
    }

    /// Sets the allow-list.
    pub fn allowed_tools<I: IntoIterator<Item = T>, T: Into<String>>(mut self, tools: I) -> Self {
        self.allowed_tools = Some(tools.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the deny-list.
    pub fn blocked_tools<I: IntoIterator<Item = T>, T: Into<String>>(mut self, tools: I) -> Self {
        self.blocked_tools = Some(tools.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the hourly cap of executed calls.
    pub fn max_actions_per_hour(mut self, n: u64) -> Self {
        self.max_actions_per_hour = Some(n);
        self
    }

    /// Sets the daily budget in USD.
    pub fn max_spend_usd_per_day(mut self, usd: f64) -> Self {
        self.max_spend_usd_per_day = Some(usd);
        self
    }

    /// Caps the daily calls of one tool.
    pub fn max_calls_per_tool(mut self, tool: impl Into<String>, n: u64) -> Self {
        self.max_calls_per_tool
            .get_or_insert_with(BTreeMap::new)
            .insert(tool.into(), n);
        self
    }

    /// Prices one tool's calls.
    pub fn price(mut self, tool: impl Into<String>, price_usd: f64) -> Self {
        self.pricing_rules
            .get_or_insert_with(Vec::new)
            .push(PricingRule {
                tool: tool.into(),
                price_usd,
            });
        self
    }
}

/// Kill-switch state of an agent: `POST /agents/{id}/disable` and `/enable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentStatus {
    /// The agent.
    pub agent_id: String,
    /// `false` while the kill switch is on.
    #[serde(alias = "enabled", default)]
    pub is_enabled: bool,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    #[serde(default)]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// What happened to a governed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The policy allowed it and it ran.
    Executed,
    /// The policy refused it; nothing ran and no counter moved.
    Blocked,
    /// An identical call (same agent, tool and arguments) already ran: its result was returned.
    Dedup,
}

impl Decision {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Executed => "executed",
            Decision::Blocked => "blocked",
            Decision::Dedup => "dedup",
        }
    }
}

/// Why a governed call was decided the way it was (`policy_reason` on the wire), in the order
/// the engine checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PolicyReason {
    /// The kill switch is on.
    AgentDisabled,
    /// The tool matches `blocked_tools`.
    ToolBlocked,
    /// `allowed_tools` is non-empty and the tool matches none of it.
    ToolNotInAllowedList,
    /// No registered tool of that name in the agent's scope or `global`.
    ToolNotFound,
    /// The registered tool is switched off.
    ToolDisabled,
    /// `max_actions_per_hour` reached in this UTC hour.
    HourlyActionLimit,
    /// `max_calls_per_tool` reached for this tool in this UTC day.
    ToolCallLimit,
    /// `max_spend_usd_per_day` would be passed in this UTC day.
    DailySpendExceeded,
    /// Allowed.
    Ok,
    /// Allowed, and an identical call's stored result was returned.
    Duplicate,
}

impl PolicyReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyReason::AgentDisabled => "agent_disabled",
            PolicyReason::ToolBlocked => "tool_blocked",
            PolicyReason::ToolNotInAllowedList => "tool_not_in_allowed_list",
            PolicyReason::ToolNotFound => "tool_not_found",
            PolicyReason::ToolDisabled => "tool_disabled",
            PolicyReason::HourlyActionLimit => "hourly_action_limit",
            PolicyReason::ToolCallLimit => "tool_call_limit",
            PolicyReason::DailySpendExceeded => "daily_spend_exceeded",
            PolicyReason::Ok => "ok",
            PolicyReason::Duplicate => "duplicate",
        }
    }

    /// How worrying a decision for this reason is: kill switch and deny-list hits are `high`,
    /// other refusals `medium`, allowed calls `low`.
    pub fn risk_level(self) -> RiskLevel {
        match self {
            PolicyReason::AgentDisabled | PolicyReason::ToolBlocked => RiskLevel::High,
            PolicyReason::Ok | PolicyReason::Duplicate => RiskLevel::Low,
            _ => RiskLevel::Medium,
        }
    }
}

impl fmt::Display for PolicyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `risk_level` of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Allowed calls.
    Low,
    /// Refusals by limits, lists and the registry.
    Medium,
    /// Kill switch and deny-list refusals.
    High,
}

impl RiskLevel {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// One entry of an agent's audit log: `GET /agents/{id}/logs`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentLogItem {
    /// Unix seconds.
    pub ts: i64,
    /// The agent.
    pub agent_id: String,
    /// The tool called.
    #[serde(default)]
    pub tool: Option<String>,
    /// Whether the call was allowed (executed or deduplicated).
    #[serde(default = "yes")]
    pub allowed: bool,
    /// `executed`, `blocked` or `dedup`.
    #[serde(default)]
    pub decision: String,
    /// The rule that decided (`ok`, `tool_blocked`, ...).
    #[serde(default, alias = "reason")]
    pub policy_reason: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default)]
    pub risk_level: Option<String>,
    /// SHA-256 of the canonical JSON of the arguments (hex).
    #[serde(default)]
    pub args_hash: Option<String>,
    /// USD accounted for this call (0 unless executed).
    #[serde(default)]
    pub spend_usd: f64,
}

fn yes() -> bool {
    true
}

/// Aggregation window of agent metrics: the last hour, day or week up to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsPeriod {
    /// The last 60 minutes.
    Hour,
    /// The last 24 hours.
    #[default]
    Day,
    /// The last 7 days.
    Week,
}

impl MetricsPeriod {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsPeriod::Hour => "hour",
            MetricsPeriod::Day => "day",
            MetricsPeriod::Week => "week",
        }
    }

    /// The window's length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            MetricsPeriod::Hour => 3600,
            MetricsPeriod::Day => 24 * 3600,
            MetricsPeriod::Week => 7 * 24 * 3600,
        }
    }
}

impl FromStr for MetricsPeriod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "hour" => Ok(MetricsPeriod::Hour),
            "day" => Ok(MetricsPeriod::Day),
            "week" => Ok(MetricsPeriod::Week),
            other => Err(Error::Validation(format!(
                "period must be `hour`, `day` or `week`, not `{other}`"
            ))),
        }
    }
}

/// A tool and how often it was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCount {
    /// The tool.
    pub tool: String,
    /// Governed calls of it in the period.
    pub count: u64,
}

/// Aggregated activity of an agent: `GET /agents/{id}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentMetrics {
    /// The agent.
    pub agent_id: String,
    /// The window.
    pub period: MetricsPeriod,
    /// Governed calls in the window, whatever their decision.
    #[serde(default)]
    pub total_actions: u64,
    /// Of which refused.
    #[serde(default)]
    pub blocked_actions: u64,
    /// USD accounted for executed calls.
    #[serde(default)]
    pub total_spend_usd: f64,
    /// The most called tools first (at most 10; ties by name).
    #[serde(default)]
    pub top_tools: Vec<ToolCount>,
}

/// The answer of a governed tool call (tool-mode `POST /ai/run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolResult {
    /// The call was executed or deduplicated and the tool succeeded.
    #[serde(default)]
    pub ok: bool,
    /// The policy allowed the call.
    #[serde(default)]
    pub allowed: bool,
    /// `executed`, `blocked` or `dedup`.
    #[serde(default)]
    pub decision: String,
    /// The rule that decided.
    #[serde(default)]
    pub policy_reason: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default)]
    pub risk_level: Option<String>,
    /// The tool's answer.
    #[serde(default)]
    pub result: Option<JsonMap>,
    /// When the tool itself failed (`ok: false` with `allowed: true`): its failure code
    /// (`tool_timeout`, `tool_http_error`, ...). An extension of this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl ToolResult {
    /// The answer of a call the policy decided, before any tool result: allowed unless
    /// `decision` is `blocked`, with the reason's risk level.
    pub(crate) fn decided(decision: Decision, reason: PolicyReason) -> Self {
        ToolResult {
            ok: decision != Decision::Blocked,
            allowed: decision != Decision::Blocked,
            decision: decision.as_str().to_owned(),
            policy_reason: Some(reason.as_str().to_owned()),
            risk_level: Some(reason.risk_level().as_str().to_owned()),
            result: None,
            error_code: None,
        }
    }

    /// The answer of an allowed call whose tool failed (or could not be called): `ok: false`,
    /// `allowed: true`, the failure's `error_code`, and `result: {"error", "message"}`.
    pub(crate) fn tool_failed(code: &str, message: &str) -> Self {
        let mut out = ToolResult::decided(Decision::Executed, PolicyReason::Ok);
        let mut detail = JsonMap::new();
        detail.insert("error".into(), code.into());
        detail.insert("message".into(), message.into());
        out.ok = false;
        out.result = Some(detail);
        out.error_code = Some(code.to_owned());
        out
    }
}

/// A governed tool call: tool-mode `POST /ai/run`, `client.ai().run_tool(..)`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolCallRequest {
    /// The calling agent.
    pub agent_id: String,
    /// The tool's registered name.
    pub tool: String,
    /// The tool's arguments.
    pub args: JsonMap,
    /// The spend to account; `None` takes the policy's price for the tool, else 0.
    pub spend_usd: Option<f64>,
}

impl ToolCallRequest {
    /// A call of `tool` by `agent_id` without arguments.
    pub fn new(agent_id: impl Into<String>, tool: impl Into<String>) -> Self {
        ToolCallRequest {
            agent_id: agent_id.into(),
            tool: tool.into(),
            args: JsonMap::new(),
            spend_usd: None,
        }
    }

    /// Sets the arguments.
    pub fn args(mut self, args: JsonMap) -> Self {
        self.args = args;
        self
    }

    /// Sets the spend.
    pub fn spend_usd(mut self, usd: f64) -> Self {
        self.spend_usd = Some(usd);
        self
    }

    /// Sets `args.run_id`, which puts the call on that run's timeline.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.args
            .insert("run_id".into(), serde_json::Value::String(run_id.into()));
        self
    }
}

/// The governance part of a lease (`agent_id`, `tool`, `args`, `spend_usd` on
/// `POST /ai/lease`): the policy is evaluated atomically with the acquisition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Governance {
    /// The calling agent.
    pub agent_id: String,
    /// The action's tool name.
    pub tool: String,
    /// Its arguments (hashed into the audit log).
    pub args: Option<JsonMap>,
    /// The spend to account; `None` takes the policy's price for the tool, else 0.
    pub spend_usd: Option<f64>,
}

impl Governance {
    /// `agent_id` calling `tool`.
    pub fn new(agent_id: impl Into<String>, tool: impl Into<String>) -> Self {
        Governance {
            agent_id: agent_id.into(),
            tool: tool.into(),
            args: None,
            spend_usd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_decisions_spell_as_their_serde_names() {
        for reason in [
            PolicyReason::AgentDisabled,
            PolicyReason::ToolBlocked,
            PolicyReason::ToolNotInAllowedList,
            PolicyReason::ToolNotFound,
            PolicyReason::ToolDisabled,
            PolicyReason::HourlyActionLimit,
            PolicyReason::ToolCallLimit,
            PolicyReason::DailySpendExceeded,
            PolicyReason::Ok,
            PolicyReason::Duplicate,
        ] {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, reason.as_str());
        }
        for d in [Decision::Executed, Decision::Blocked, Decision::Dedup] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }

    #[test]
    fn a_policy_keeps_unknown_fields() {
        let p: Policy =
            serde_json::from_str(r#"{"agent_id":"a","max_actions_per_hour":3,"x_team":"ops"}"#)
                .unwrap();
        assert_eq!(p.max_actions_per_hour, Some(3));
        assert_eq!(p.extra["x_team"], "ops");
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["x_team"], "ops");
    }
}

/// `POST /policies/{agent_id}/from-template`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TemplateRequest {
    /// The agent.
    pub agent_id: String,
    /// `strict`, `moderate`, `permissive`, `read_only` or `support_bot`.
    pub template: String,
    /// Fields replacing the template's.
    pub overrides: JsonMap,
}

/// `GET /agents/{agent_id}/logs`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentLogsRequest {
    /// The agent.
    pub agent_id: String,
    /// How many entries, newest first (1 to 500, default 100).
    pub limit: u32,
}

/// `GET /agents/{agent_id}/metrics`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentMetricsRequest {
    /// The agent.
    pub agent_id: String,
    /// The window (default a day).
    pub period: MetricsPeriod,
}

macro_rules! tool_request {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            /// `global` (the default) or `agent:<agent_id>`.
            pub scope_id: String,
        }
    };
}

tool_request!(
    /// `GET /tools?scope_id=`.
    ListToolsRequest {}
);
tool_request!(
    /// `GET /tools/{name}?scope_id=`.
    GetToolRequest {
        /// The tool.
        name: String
    }
);
tool_request!(
    /// `POST /tools/{name}/toggle?scope_id=`.
    ToggleToolRequest {
        /// The tool.
        name: String,
        /// The new state.
        enabled: bool
    }
);
tool_request!(
    /// `DELETE /tools/{name}?scope_id=`.
    DeleteToolRequest {
        /// The tool.
        name: String
    }
);

/// The default tool scope.
pub const GLOBAL_SCOPE: &str = "global";
