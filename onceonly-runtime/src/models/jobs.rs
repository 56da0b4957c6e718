//! Queued runs and their workers: the claim of a run (`POST /ai/jobs/claim`, an extension of
//! this project) and what a worker gets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// Ask for one queued run whose key matches `pattern`, waiting up to `wait` for one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// `report:*` (a trailing `*` matches any rest of the key), `*` (every key), or an exact
    /// key.
    pub pattern: String,
    /// The lease the claim takes on the run; a worker heartbeats to keep it.
    pub lease_ttl: Duration,
    /// How long to wait for a run to be queued when none is (long poll). Zero: look once.
    pub wait: Duration,
    /// Names this claim, so that sending it again (a retry after a lost answer) gets back the
    /// run it claimed instead of claiming another. The HTTP client sets one per call.
    pub acquisition_id: Option<String>,
}

impl ClaimRequest {
    /// The longest [`wait`](Self::wait) a claim may ask for (60 s). Callers that want to wait
    /// longer claim again.
    pub const MAX_WAIT: Duration = Duration::from_secs(60);

    /// A claim of a run matching `pattern`, with a 30-second lease and no waiting.
    pub fn new(pattern: impl Into<String>) -> Self {
        ClaimRequest {
            pattern: pattern.into(),
            lease_ttl: Duration::from_secs(30),
            wait: Duration::ZERO,
            acquisition_id: None,
        }
    }

    /// Sets the lease the claim takes.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets how long to wait for a run.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Names the claim (see [`acquisition_id`](Self::acquisition_id)).
    pub fn acquisition_id(mut self, id: impl Into<String>) -> Self {
        self.acquisition_id = Some(id.into());
        self
    }
}

/// A run a worker claimed: it holds the run's lease (`lease_id`) and ends it with `complete`,
/// `fail` or `cancel` like any lease holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClaimedJob {
    /// The run's key.
    pub key: String,
    /// The lease the claim took: the fencing token of `extend`, `complete`, `fail`, `cancel`.
    pub lease_id: String,
    /// The run's timeline id (`metadata.run_id`, which defaults to the key).
    pub run_id: String,
    /// The metadata the run was queued with.
    #[serde(default)]
    pub metadata: JsonMap,
    /// Which attempt this is: 1 for the first claim, more after a worker gave the run back or
    /// died holding it.
    pub attempt: u64,
    /// The lease's TTL in seconds.
    pub ttl: u64,
}
