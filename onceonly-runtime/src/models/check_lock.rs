use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// What to lock: `POST /check-lock`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLockRequest {
    /// The business key (1 to 256 bytes).
    pub key: String,
    /// How long the lock lives; `None` takes the backend's default.
    pub ttl: Option<Duration>,
    /// Free-form metadata stored with the lock (at most 2,048 bytes as JSON).
    pub metadata: Option<JsonMap>,
    /// Sent as `X-Request-Id` by the HTTP backend.
    pub request_id: Option<String>,
}

impl CheckLockRequest {
    /// A request for `key` with every option at its default.
    pub fn new(key: impl Into<String>) -> Self {
        CheckLockRequest {
            key: key.into(),
            ttl: None,
            metadata: None,
            request_id: None,
        }
    }
}

/// Why a check-lock answered "proceed" without asking the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailOpenReason {
    /// The request timed out.
    Timeout,
    /// The request could not be sent or its answer not received.
    RequestError,
    /// The server answered 5xx.
    #[serde(rename = "api_5xx")]
    Api5xx,
}

/// The answer of a check-lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckLockResult {
    /// This call took the lock: go ahead.
    pub locked: bool,
    /// The key was already locked: skip the work.
    pub duplicate: bool,
    /// The key that was checked.
    pub key: String,
    /// The lock's lifetime in seconds.
    pub ttl: u64,
    /// When the key was first locked (`None` on the call that locked it).
    pub first_seen_at: Option<DateTime<Utc>>,
    /// Identifies the lock this call took, for a release that cannot delete a later holder's
    /// lock ([`OnceOnly::release_own_lock`](crate::OnceOnly::release_own_lock)). Set by the
    /// embedded engine and `onceonly-server` (an extension); `None` on duplicates, on
    /// fail-open answers and from the hosted API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    /// The request id the server answered with, if any.
    pub request_id: Option<String>,
    /// The HTTP status of the answer (200 on the embedded engine, 0 on fail-open).
    pub status_code: u16,
    /// Set when the backend was unreachable and the call failed open.
    pub fail_open: Option<FailOpenReason>,
}

impl CheckLockResult {
    /// `locked && !duplicate`: the caller should do the work.
    pub fn should_proceed(&self) -> bool {
        self.locked && !self.duplicate
    }

    /// The key was already locked.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }
}
