//! Run timelines and the account's recent events.

use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

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

/// An entry of the account's recent events (`GET /events`): run events, and account events
/// such as `limit_reached`, which belong to no run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// `run_started`, `tool_result`, `limit_reached`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// The run, for run events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Free-form status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Every other member, verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// A page of the account's recent events, newest first: `GET /events`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventsPage {
    /// This page.
    #[serde(default)]
    pub data: Vec<AccountEvent>,
    /// How many events the account keeps now.
    #[serde(default)]
    pub total: u64,
    /// The page size asked for.
    #[serde(default)]
    pub limit: u32,
    /// How many newest events were skipped.
    #[serde(default)]
    pub offset: u32,
}

/// The acknowledgement of `POST /events`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventAck {
    /// Whether the event was stored.
    #[serde(default)]
    pub ok: bool,
    /// Its id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// The run it was appended to.
    #[serde(default)]
    pub run_id: String,
}

/// A run with recent events: an item of [`RunList`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Unix seconds of its latest event.
    #[serde(default)]
    pub last_ts: Option<i64>,
    /// The type of its latest event.
    #[serde(default)]
    pub last_type: Option<String>,
    /// The status of its latest event.
    #[serde(default)]
    pub last_status: Option<String>,
    /// How many events its timeline keeps.
    #[serde(default)]
    pub events_count: u64,
}

/// Runs with recent events, most recently active first: `GET /runs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunList {
    /// How many runs matched.
    #[serde(default)]
    pub total: u64,
    /// This page.
    #[serde(default)]
    pub items: Vec<RunSummary>,
}
