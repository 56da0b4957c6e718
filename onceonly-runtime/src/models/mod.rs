//! Typed requests and answers of every OnceOnly operation.
//!
//! Field names match the wire format of the OnceOnly API, so the same structs serve the embedded engine, the
//! HTTP backend and the server. Timestamps are `DateTime<Utc>`, durations are whole seconds
//! where the wire uses seconds.

mod account;
mod check_lock;
mod events;
mod governance;
mod jobs;
mod lease;
pub(crate) mod tools;
mod usage;

pub use account::{
    AccountInfo, NotificationPrefs, NotificationUpdate, OverLimit, PlanLimits, QuotaExceeded,
};
pub use events::{AccountEvent, EventAck, EventsPage, RunEvent, RunList, RunSummary, RunTimeline};

pub use check_lock::{CheckLockRequest, CheckLockResult, FailOpenReason};
pub use governance::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus, Decision,
    DeleteToolRequest, GLOBAL_SCOPE, GetToolRequest, Governance, ListToolsRequest, MetricsPeriod,
    Policy, PolicyReason, PricingRule, RiskLevel, TemplateRequest, ToggleToolRequest,
    ToolCallRequest, ToolCount, ToolResult,
};
pub use jobs::{ClaimRequest, ClaimedJob};
pub use lease::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease,
    LeaseRequest, RunStatus,
};
pub use tools::{Tool, ToolAuth, ToolDeleted, ToolSpec};
pub use usage::{
    AiCounts, DayMetrics, MakeCounts, Metrics, MetricsCounts, Usage, UsageAll, UsageBucket,
    UsageKind,
};

pub use crate::error::JsonMap;
