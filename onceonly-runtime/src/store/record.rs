use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::JsonMap;

/// A live check-lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    /// Chosen by the engine for each claim; the fencing token of [`Store::release_lock`].
    /// Always 1 to 256 bytes of visible ASCII (no spaces), as the engine checks every lock id
    /// it is given: a store may rely on that (the Redis store keeps it in a space-separated
    /// value).
    ///
    /// [`Store::release_lock`]: super::Store::release_lock
    pub lock_id: String,
    /// When the lock was taken (unix ms).
    pub first_seen_at_ms: u64,
    /// When it stops counting (unix ms).
    pub expires_at_ms: u64,
    /// Metadata given by the caller that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonMap>,
}

/// Where a lease record stands. Expiry is not a state: an `InProgress` record whose
/// `lease_expires_at_ms` is past is free, and the engine reads it that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// A holder is working under `lease_id`.
    InProgress,
    /// A result is stored.
    Completed,
    /// A terminal failure is stored.
    Failed,
    /// The holder gave the key back (cancel, or a retryable failure): the next lease acquires.
    Released,
}

/// Everything the engine keeps about one lease key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The state.
    pub state: LeaseState,
    /// The fencing token of the latest acquisition.
    pub lease_id: String,
    /// How many times the key was acquired.
    pub version: u64,
    /// The TTL of the latest acquisition or extension, in ms.
    pub ttl_ms: u64,
    /// When the current lease stops being exclusive (unix ms).
    pub lease_expires_at_ms: u64,
    /// When the key was first acquired (unix ms).
    pub first_seen_at_ms: u64,
    /// When the key reached `Completed`, `Failed` or `Released` (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at_ms: Option<u64>,
    /// The stored result. Shared: a record is copied on every change, its result is not
    /// (answers that show it still copy it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<JsonMap>>,
    /// The digest given with the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// The failure (or release) code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Why the holder cancelled, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// The digest given with the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_hash: Option<String>,
    /// Metadata of the latest acquisition. Shared, like `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Arc<JsonMap>>,
    /// The caller's name for the latest acquisition: the same request sent again (a retry
    /// after a lost answer) gets this lease back while it is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition_id: Option<String>,
    /// When the store may delete the record (unix ms).
    pub purge_at_ms: u64,
    /// A queued run (key-mode `ai.run`): executed by a worker or the engine, not by the
    /// caller. While it is not finished it reads `in_progress`, and a released or expired
    /// lease puts it back in the queue instead of ending it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub job: bool,
    /// For a queued run: the key's `version` when the run was queued (a key released or
    /// expired before may have been acquired already), so an attempt counts this run's
    /// acquisitions only: `version - queued_at_version`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queued_at_version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LeaseRecord {
    /// A record in `state`, first seen and ending at `now_ms`, with no lease id, outcome,
    /// metadata or retention yet: the base the engine fills in (`..LeaseRecord::blank(..)`).
    pub fn blank(state: LeaseState, now_ms: u64) -> Self {
        LeaseRecord {
            state,
            lease_id: String::new(),
            version: 0,
            ttl_ms: 0,
            lease_expires_at_ms: now_ms,
            first_seen_at_ms: now_ms,
            done_at_ms: None,
            result: None,
            result_hash: None,
            error_code: None,
            cancel_reason: None,
            error_hash: None,
            metadata: None,
            acquisition_id: None,
            purge_at_ms: now_ms,
            job: false,
            queued_at_version: 0,
        }
    }
}
