use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// The state of a key in the lease (AI run) API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// This call acquired the lease and must complete, fail or cancel it ("extended" in an
    /// `/ai/extend` answer: still held).
    #[serde(alias = "extended")]
    Acquired,
    /// Someone else holds a live lease ("polling" on the hosted API).
    #[serde(alias = "polling", alias = "locked")]
    InProgress,
    /// A result is stored.
    Completed,
    /// The work failed. With `retryable` the key is free again.
    Failed,
    /// The key was never seen, or its record was purged.
    NotFound,
    /// A governed lease was refused by the agent's policy.
    Blocked,
    /// A status this version of the runtime does not know, or none at all (an answer without
    /// `status`, such as a bare `{"ok": true}` to a completion).
    #[default]
    #[serde(other)]
    Unknown,
}

impl RunStatus {
    /// `completed` or `failed`: nothing will change without a new acquisition.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Blocked
        )
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Acquired => "acquired",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::NotFound => "not_found",
            RunStatus::Blocked => "blocked",
            RunStatus::Unknown => "unknown",
        }
    }
}

/// Ask for the lease of a key: `POST /ai/lease` (and key-mode `POST /ai/run`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LeaseRequest {
    /// The business key.
    pub key: String,
    /// How long the holder may work before the lease expires; `None` takes the default.
    pub ttl: Option<Duration>,
    /// Metadata stored with the run (at most 2,048 bytes as JSON).
    pub metadata: Option<JsonMap>,
    /// Names this acquisition attempt, so that sending the same request again (a retry after
    /// a lost answer) gets the same lease back instead of `in_progress`. The HTTP backend
    /// sets a fresh random one per call (sent as [`ACQUISITION`](crate::wire::header::ACQUISITION)); `None`: every
    /// request is new. It must be unique per attempt and unguessable: whoever repeats it
    /// while the lease is live is handed that lease. 1 to 256 bytes of visible ASCII.
    pub acquisition_id: Option<String>,
    /// Makes the lease a governed call (extension fields `agent_id`, `tool`, `args`,
    /// `spend_usd`): the agent's policy is evaluated with the acquisition, and a refusal
    /// answers `status: "blocked"` with its `policy_reason`, acquiring nothing.
    pub governance: Option<crate::models::Governance>,
}

impl LeaseRequest {
    /// A lease request for `key` with the default TTL and no metadata.
    pub fn new(key: impl Into<String>) -> Self {
        LeaseRequest {
            key: key.into(),
            ttl: None,
            metadata: None,
            acquisition_id: None,
            governance: None,
        }
    }

    /// Makes the lease a governed call of `tool` by `agent_id` (see
    /// [`LeaseRequest::governance`]).
    pub fn governed(mut self, governance: crate::models::Governance) -> Self {
        self.governance = Some(governance);
        self
    }

    /// Names this acquisition attempt (see [`LeaseRequest::acquisition_id`]).
    pub fn acquisition_id(mut self, id: impl Into<String>) -> Self {
        self.acquisition_id = Some(id.into());
        self
    }

    /// Sets the lease TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: JsonMap) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// Keep a lease alive: `POST /ai/extend`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExtendRequest {
    /// The key.
    pub key: String,
    /// The holder's lease id (fencing token).
    pub lease_id: String,
    /// The new TTL, counted from now; `None` reuses the default.
    pub ttl: Option<Duration>,
}

impl ExtendRequest {
    /// Extends `lease_id` on `key` by `ttl` from now.
    pub fn new(key: impl Into<String>, lease_id: impl Into<String>, ttl: Option<Duration>) -> Self {
        ExtendRequest {
            key: key.into(),
            lease_id: lease_id.into(),
            ttl,
        }
    }
}

/// Record the result: `POST /ai/complete`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompleteRequest {
    /// The key.
    pub key: String,
    /// The holder's lease id.
    pub lease_id: String,
    /// The result object to store and replay.
    pub result: Option<JsonMap>,
    /// An optional digest of the result.
    pub result_hash: Option<String>,
}

impl CompleteRequest {
    /// Completes `lease_id` on `key` with `result`.
    pub fn new(
        key: impl Into<String>,
        lease_id: impl Into<String>,
        result: Option<JsonMap>,
    ) -> Self {
        CompleteRequest {
            key: key.into(),
            lease_id: lease_id.into(),
            result,
            result_hash: None,
        }
    }
}

/// Record a failure: `POST /ai/fail`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FailRequest {
    /// The key.
    pub key: String,
    /// The holder's lease id.
    pub lease_id: String,
    /// A short machine-readable code (`fn_error`, `card_declined`, ...).
    pub error_code: String,
    /// An optional digest of the error.
    pub error_hash: Option<String>,
    /// Release the key for a retry instead of failing it for good (extension).
    pub retryable: bool,
}

impl FailRequest {
    /// Fails `lease_id` on `key` with `error_code`; `retryable` releases the key.
    pub fn new(
        key: impl Into<String>,
        lease_id: impl Into<String>,
        error_code: impl Into<String>,
        retryable: bool,
    ) -> Self {
        FailRequest {
            key: key.into(),
            lease_id: lease_id.into(),
            error_code: error_code.into(),
            error_hash: None,
            retryable,
        }
    }
}

/// Give the key back without a result: `POST /ai/cancel`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CancelRequest {
    /// The key.
    pub key: String,
    /// The holder's lease id.
    pub lease_id: String,
    /// Why; read back as `cancel_reason` (the error code stays `cancelled`).
    pub reason: Option<String>,
}

impl CancelRequest {
    /// Cancels `lease_id` on `key`.
    pub fn new(
        key: impl Into<String>,
        lease_id: impl Into<String>,
        reason: Option<String>,
    ) -> Self {
        CancelRequest {
            key: key.into(),
            lease_id: lease_id.into(),
            reason,
        }
    }
}

/// The answer of `lease`, `extend`, `complete`, `fail`, `cancel` and key-mode `ai().run()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// `false` when the call did not get what it asked for (conflict, failure, block).
    #[serde(default)]
    pub ok: bool,
    /// Where the key stands after the call ([`RunStatus::Unknown`] when the answer says
    /// nothing: the hosted API may answer a completion with a bare `{"ok": true}`).
    #[serde(default)]
    pub status: RunStatus,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The caller's lease id (only when this call acquired or holds the lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// How many times the key has been acquired.
    #[serde(default)]
    pub version: u64,
    /// The lease TTL granted, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Seconds left on somebody else's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_left: Option<u64>,
    /// When the key was first acquired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
    /// When the key reached its terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    /// The stored result (completed keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonMap>,
    /// The digest given on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// The failure code (failed keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Why the key was cancelled, when the canceller said (extension: the embedded engine and
    /// `onceonly-server`; the hosted API keeps no reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// A polling hint in seconds while someone else holds the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_sec: Option<u64>,
    /// While someone else holds the lease: the metadata its holder acquired it with, so a
    /// caller can tell whether the holder is doing the same work (the tower layer's replay mode
    /// compares request fingerprints this way). Every caller of the same tenant (API key) can
    /// read it, so lease metadata is no place for secrets. An extension of this project's
    /// engine; the hosted API may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonMap>,
    /// For failed keys: whether the key was released and may be acquired again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// Hosted API accounting: whether this call was billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged: Option<u64>,
    /// Hosted API accounting: usage this month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// A governed lease refused by the agent's policy (`status: "blocked"`): the rule
    /// (`tool_blocked`, `hourly_action_limit`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_reason: Option<String>,
    /// Hosted API accounting: the plan's monthly limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// A queued run (key-mode `ai.run`) that no worker holds right now: it reads
    /// `in_progress`, and a worker will claim it. An extension of this project; the official
    /// SDKs ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

impl Lease {
    /// An answer with only `status` and `key` set.
    pub fn bare(status: RunStatus, key: impl Into<String>) -> Self {
        Lease {
            ok: matches!(status, RunStatus::Acquired | RunStatus::Completed),
            status,
            key: key.into(),
            lease_id: None,
            version: 0,
            ttl: None,
            ttl_left: None,
            first_seen_at: None,
            done_at: None,
            result: None,
            result_hash: None,
            error_code: None,
            cancel_reason: None,
            retry_after_sec: None,
            metadata: None,
            retryable: false,
            charged: None,
            usage: None,
            limit: None,
            policy_reason: None,
            queued: false,
        }
    }
}

/// The answer of `GET /ai/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiStatus {
    /// `true` when the key exists.
    #[serde(default)]
    pub ok: bool,
    /// Where the key stands ([`RunStatus::Unknown`] when the answer says nothing).
    #[serde(default)]
    pub status: RunStatus,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// How many times the key has been acquired.
    #[serde(default)]
    pub version: u64,
    /// Seconds left on the current lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_left: Option<u64>,
    /// When the key was first acquired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
    /// When the key reached its terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    /// The digest given on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// The failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Why the key was cancelled, when the canceller said (extension: the embedded engine and
    /// `onceonly-server`; the hosted API keeps no reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// A polling hint in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_sec: Option<u64>,
    /// For failed keys: the key was released and may be acquired again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// A queued run (key-mode `ai.run`) that no worker holds right now: it reads
    /// `in_progress`, and a worker will claim it. An extension of this project; the official
    /// SDKs ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

/// The answer of `GET /ai/result` (and of `ai().wait()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiResult {
    /// `true` when a result is stored.
    #[serde(default)]
    pub ok: bool,
    /// Where the key stands ([`RunStatus::Unknown`] when the answer says nothing).
    #[serde(default)]
    pub status: RunStatus,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The stored result object.
    #[serde(default)]
    pub result: Option<JsonMap>,
    /// The digest given on completion.
    #[serde(default)]
    pub result_hash: Option<String>,
    /// The failure code.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Why the key was cancelled, when the canceller said (extension: the embedded engine and
    /// `onceonly-server`; the hosted API keeps no reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// When the key reached its terminal state.
    #[serde(default)]
    pub done_at: Option<DateTime<Utc>>,
    /// For failed keys: the key was released and may be acquired again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}
