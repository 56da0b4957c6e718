use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, JsonMap};

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

impl UsageKind {
    /// Both kinds.
    pub const ALL: [UsageKind; 2] = [UsageKind::Make, UsageKind::Ai];

    /// The name on the wire (`make`, `ai`).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Make => "make",
            UsageKind::Ai => "ai",
        }
    }
}

impl fmt::Display for UsageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UsageKind {
    type Err = Error;

    /// `make` or `ai`, exactly.
    fn from_str(s: &str) -> Result<Self, Error> {
        UsageKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::Validation(format!("kind must be make or ai, got {s:?}")))
    }
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

/// Counters of the check-lock bucket for one day of [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MakeCounts {
    /// Answered check-locks (what the plan limits).
    #[serde(default)]
    pub usage: u64,
    /// Check-locks refused at the plan's limit.
    #[serde(default)]
    pub blocked: u64,
}

/// Counters of the lease and run bucket for one day of [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AiCounts {
    /// Acquired leases and runs (what the plan limits).
    #[serde(default)]
    pub usage: u64,
    /// Leases and runs refused at the plan's limit.
    #[serde(default)]
    pub blocked: u64,
    /// Lease and run answers that acquired nothing (free).
    #[serde(default)]
    pub polling: u64,
}

/// Both buckets' counters over a day or a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetricsCounts {
    /// Check-lock bucket.
    #[serde(default)]
    pub make: MakeCounts,
    /// Lease and run bucket.
    #[serde(default)]
    pub ai: AiCounts,
}

/// One UTC day of [`Metrics`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayMetrics {
    /// `YYYY-MM-DD`, UTC.
    #[serde(default)]
    pub day: String,
    /// The day's counters.
    #[serde(flatten)]
    pub counts: MetricsCounts,
}

/// Daily account metrics between two days, inclusive: `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    pub from_day: String,
    /// Last day, `YYYY-MM-DD`.
    #[serde(default)]
    pub to_day: String,
    /// One entry per day, oldest first.
    #[serde(default)]
    pub days: Vec<DayMetrics>,
    /// The sums over the range.
    #[serde(default)]
    pub totals: MetricsCounts,
    /// Members of the answer this model does not name: the hosted API does not document the
    /// shape of `/metrics`, so whatever else it sends is kept here rather than dropped. Empty
    /// from the embedded engine and `onceonly-server`.
    #[serde(flatten, default)]
    pub extra: JsonMap,
}
