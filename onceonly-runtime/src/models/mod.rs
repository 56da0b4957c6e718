//! Typed requests and answers of every OnceOnly operation.
//!
//! Field names match the wire format of the OnceOnly API, so the same structs serve the embedded engine, the
//! HTTP backend and the server. Timestamps are `DateTime<Utc>`, durations are whole seconds
//! where the wire uses seconds.

mod check_lock;
mod governance;
mod lease;
mod usage;

pub use check_lock::{CheckLockRequest, CheckLockResult, FailOpenReason};
pub use governance::{
    AgentLogItem, AgentMetrics, AgentStatus, MetricsPeriod, Policy, PricingRule, Tool, ToolAuth,
    ToolCount, ToolResult, ToolSpec,
};
pub use lease::{
    ACQUISITION_HEADER, AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest,
    FailRequest, Lease, LeaseRequest, RunStatus,
};
pub use usage::{RunEvent, RunTimeline, Usage, UsageAll, UsageBucket, UsageKind};

pub use crate::error::JsonMap;
