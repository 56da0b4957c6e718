use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// The price of one call of a tool, for spend accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingRule {
    /// The tool name.
    pub tool: String,
    /// USD charged per call.
    pub price_usd: f64,
}

/// An agent's policy: what it may call, how often, and for how much.
///
/// Absent fields mean "no limit". Unknown fields sent by a server are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// Governed calls per UTC clock hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_hour: Option<u64>,
    /// USD budget per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spend_usd_per_day: Option<f64>,
    /// Per-tool call caps per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls_per_tool: Option<BTreeMap<String, u64>>,
    /// Per-call prices used when a call gives no explicit spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_rules: Option<Vec<PricingRule>>,
    /// Fields this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// Kill-switch state of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent.
    pub agent_id: String,
    /// `false` while the kill switch is on.
    #[serde(alias = "enabled")]
    pub is_enabled: bool,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    #[serde(default)]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// One entry of an agent's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLogItem {
    /// Unix seconds.
    pub ts: i64,
    /// The agent.
    pub agent_id: String,
    /// The tool called.
    #[serde(default)]
    pub tool: Option<String>,
    /// Whether the call was allowed.
    #[serde(default = "yes")]
    pub allowed: bool,
    /// `executed`, `blocked`, `dedup`.
    #[serde(default)]
    pub decision: String,
    /// The policy rule that decided (`ok`, `tool_blocked`, ...).
    #[serde(default, alias = "reason")]
    pub policy_reason: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default)]
    pub risk_level: Option<String>,
    /// SHA-256 of the canonical JSON of the arguments.
    #[serde(default)]
    pub args_hash: Option<String>,
    /// USD accounted for this call.
    #[serde(default)]
    pub spend_usd: f64,
}

fn yes() -> bool {
    true
}

/// Aggregation window of agent metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsPeriod {
    /// The last hour.
    Hour,
    /// The last day.
    #[default]
    Day,
    /// The last week.
    Week,
}

/// A tool and how often it was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCount {
    /// The tool.
    pub tool: String,
    /// Calls in the period.
    pub count: u64,
}

/// Aggregated activity of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMetrics {
    /// The agent.
    pub agent_id: String,
    /// The window.
    pub period: MetricsPeriod,
    /// Governed calls in the window.
    #[serde(default)]
    pub total_actions: u64,
    /// Of which refused.
    #[serde(default)]
    pub blocked_actions: u64,
    /// USD accounted.
    #[serde(default)]
    pub total_spend_usd: f64,
    /// Most called tools first.
    #[serde(default)]
    pub top_tools: Vec<ToolCount>,
}

/// How OnceOnly signs calls to a registered tool. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolAuth {
    /// Always `hmac_sha256`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The shared secret (at least 8 characters). Never returned by the API.
    pub secret: String,
}

impl std::fmt::Debug for ToolAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolAuth")
            .field("kind", &self.kind)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A tool to register: `POST /tools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique per scope; `^[a-zA-Z0-9_.:-]+$`.
    pub name: String,
    /// `global` or `agent:<agent_id>`.
    pub scope_id: String,
    /// The endpoint OnceOnly POSTs to.
    pub url: String,
    /// Signing.
    pub auth: ToolAuth,
    /// 250 to 120,000 ms (default 15,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// 0 to 10 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// At most 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A registered tool as the API shows it (the secret is never echoed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The tool name.
    pub name: String,
    /// Its scope.
    #[serde(default)]
    pub scope_id: String,
    /// Its endpoint.
    #[serde(default)]
    pub url: String,
    /// Per-call timeout.
    #[serde(default)]
    pub timeout_ms: u64,
    /// Retries on failure.
    #[serde(default)]
    pub max_retries: u32,
    /// Whether it can be called.
    #[serde(default)]
    pub enabled: bool,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// A secret is configured.
    #[serde(default)]
    pub has_secret: bool,
    /// The secret's identifier.
    #[serde(default)]
    pub secret_id: Option<String>,
    /// `***` and the last three characters of the secret.
    #[serde(default)]
    pub secret_mask: Option<String>,
}

/// The answer of a governed tool call (tool-mode `POST /ai/run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call was executed (or deduplicated) and its result is present.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_secrets_stay_out_of_debug_output() {
        let auth = ToolAuth {
            kind: "hmac_sha256".into(),
            secret: "s3cret-value".into(),
        };
        let shown = format!("{auth:?} {auth:#?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(shown.contains("hmac_sha256"), "{shown}");
    }
}
