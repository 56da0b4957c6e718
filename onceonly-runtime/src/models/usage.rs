use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// Which usage bucket: check-locks (`make`) or leases and runs (`ai`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    /// Check-lock calls.
    #[default]
    Make,
    /// Lease and run calls.
    Ai,
}

/// Usage of one bucket this month: `GET /usage?kind=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The plan name.
    #[serde(default)]
    pub plan: String,
    /// `YYYY-MM`, UTC.
    #[serde(default)]
    pub month: String,
    /// The enforcement counter.
    #[serde(default)]
    pub usage: u64,
    /// The plan's monthly limit (`None`: unlimited).
    #[serde(default)]
    pub limit: Option<u64>,
    /// All requests this month.
    #[serde(default)]
    pub requests_total_month: u64,
    /// Requests refused after the limit.
    #[serde(default)]
    pub blocked_total_month: u64,
}

/// One bucket inside [`UsageAll`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageBucket {
    /// The enforcement counter.
    #[serde(default)]
    pub usage: u64,
    /// The monthly limit (`None`: unlimited).
    #[serde(default)]
    pub limit: Option<u64>,
    /// All requests this month.
    #[serde(default)]
    pub requests_total_month: u64,
    /// Requests refused after the limit.
    #[serde(default)]
    pub blocked_total_month: u64,
    /// Billed requests.
    #[serde(default)]
    pub charged_total_month: u64,
    /// Free polling requests.
    #[serde(default)]
    pub polling_total_month: u64,
}

/// Both buckets: `GET /usage/all`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageAll {
    /// The plan name.
    #[serde(default)]
    pub plan: String,
    /// `YYYY-MM`, UTC.
    #[serde(default)]
    pub month: String,
    /// Check-lock bucket.
    #[serde(default)]
    pub make: UsageBucket,
    /// Lease and run bucket.
    #[serde(default)]
    pub ai: UsageBucket,
}

/// One event of a run timeline: `POST /events`, and items of `GET /runs/{run_id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunEvent {
    /// Server-assigned id (absent when posting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The run this event belongs to.
    pub run_id: String,
    /// `run_started`, `tool_call`, `tool_result`, `run_finished`, `note`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds; the server fills it in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Free-form status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Duration of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// Lease id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// Agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Structured payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<JsonMap>,
    /// Extra top-level fields, kept verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// A run's events, oldest first: `GET /runs/{run_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTimeline {
    /// The run.
    pub run_id: String,
    /// All events of the run (the page may hold fewer).
    #[serde(default)]
    pub total: u64,
    /// This page.
    #[serde(default)]
    pub events: Vec<RunEvent>,
}
