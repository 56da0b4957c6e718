//! How a stored record reads at a given instant. Expiry is decided here, on read, so a
//! record's meaning never depends on whether the purge loop has run yet.

use crate::models::{AiResult, AiStatus, Lease, RunStatus};
use crate::store::{LeaseRecord, LeaseState};
use crate::time::{datetime_from_ms, secs_left};

pub(crate) use crate::wire::error_code::{CANCELLED, LEASE_EXPIRED};
/// Longest polling hint handed to clients, in seconds.
const MAX_RETRY_HINT_SECS: u64 = 5;

/// The record's state as seen at `now`: `None` when the record is gone (purgeable).
pub(crate) fn live(rec: &LeaseRecord, now: u64) -> Option<Phase> {
    if rec.purge_at_ms <= now {
        return None;
    }
    Some(match rec.state {
        LeaseState::InProgress if rec.lease_expires_at_ms > now => Phase::Held,
        LeaseState::InProgress | LeaseState::Released if rec.job => Phase::Queued,
        LeaseState::InProgress | LeaseState::Released => Phase::Free,
        LeaseState::Completed => Phase::Completed,
        LeaseState::Failed => Phase::Failed,
    })
}

/// What a record means right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A holder's lease is live.
    Held,
    /// Released or expired: the next lease acquires.
    Free,
    /// A queued run nobody holds (never claimed, released, or its worker's lease expired):
    /// reads `in_progress`, and the next claim (or lease) acquires it.
    Queued,
    /// Result stored.
    Completed,
    /// Terminal failure stored.
    Failed,
}

fn free_error_code(rec: &LeaseRecord) -> String {
    match rec.state {
        LeaseState::InProgress => LEASE_EXPIRED.to_owned(),
        _ => rec
            .error_code
            .clone()
            .unwrap_or_else(|| CANCELLED.to_owned()),
    }
}

fn retry_hint(rec: &LeaseRecord, now: u64) -> u64 {
    secs_left(rec.lease_expires_at_ms, now).clamp(1, MAX_RETRY_HINT_SECS)
}

/// The answer to the caller that holds (or just acquired) the lease.
pub(crate) fn holder(key: &str, rec: &LeaseRecord, status: RunStatus) -> Lease {
    let mut out = Lease::bare(status, key);
    out.ok = true;
    out.lease_id = Some(rec.lease_id.clone());
    out.version = rec.version;
    out.ttl = Some(rec.ttl_ms.div_ceil(1000));
    out.first_seen_at = Some(datetime_from_ms(rec.first_seen_at_ms));
    out.done_at = rec.done_at_ms.map(datetime_from_ms);
    out.error_code = rec.error_code.clone();
    out.cancel_reason = rec.cancel_reason.clone();
    out.result_hash = rec.result_hash.clone();
    out.retryable = rec.state == LeaseState::Released;
    out
}

/// The answer of `lease` to anyone who did not acquire: never the holder's lease id.
pub(crate) fn observer(key: &str, rec: &LeaseRecord, phase: Phase, now: u64) -> Lease {
    let status = status(key, rec, phase, now);
    let mut out = Lease::bare(status.status, key);
    out.ok = status.status == RunStatus::Completed;
    out.version = status.version;
    out.ttl_left = status.ttl_left;
    out.first_seen_at = status.first_seen_at;
    out.done_at = status.done_at;
    out.result_hash = status.result_hash;
    out.error_code = status.error_code;
    out.cancel_reason = status.cancel_reason;
    out.retry_after_sec = status.retry_after_sec;
    out.retryable = status.retryable;
    out.queued = status.queued;
    match phase {
        Phase::Completed => out.result = rec.result.as_deref().cloned(),
        Phase::Held => out.metadata = rec.metadata.as_deref().cloned(),
        Phase::Free | Phase::Failed | Phase::Queued => {}
    }
    out
}

pub(crate) fn status(key: &str, rec: &LeaseRecord, phase: Phase, now: u64) -> AiStatus {
    let mut out = AiStatus {
        ok: true,
        status: RunStatus::InProgress,
        key: key.to_owned(),
        version: rec.version,
        ttl_left: None,
        first_seen_at: Some(datetime_from_ms(rec.first_seen_at_ms)),
        done_at: rec.done_at_ms.map(datetime_from_ms),
        result_hash: rec.result_hash.clone(),
        error_code: None,
        cancel_reason: None,
        retry_after_sec: None,
        retryable: false,
        queued: false,
    };
    match phase {
        Phase::Held => {
            out.ttl_left = Some(secs_left(rec.lease_expires_at_ms, now));
            out.retry_after_sec = Some(retry_hint(rec, now));
        }
        Phase::Queued => {
            out.queued = true;
            out.retry_after_sec = Some(1);
        }
        Phase::Completed => out.status = RunStatus::Completed,
        Phase::Failed => {
            out.status = RunStatus::Failed;
            out.error_code = rec.error_code.clone();
        }
        Phase::Free => {
            // Released or expired reads as a retryable failure, so a waiting official SDK
            // (which only stops on completed/failed) stops at once instead of polling.
            out.status = RunStatus::Failed;
            out.error_code = Some(free_error_code(rec));
            if rec.state == LeaseState::Released {
                out.cancel_reason = rec.cancel_reason.clone();
            }
            out.retryable = true;
            out.done_at = out
                .done_at
                .or(Some(datetime_from_ms(rec.lease_expires_at_ms)));
        }
    }
    out
}

pub(crate) fn not_found_status(key: &str) -> AiStatus {
    AiStatus {
        ok: false,
        status: RunStatus::NotFound,
        key: key.to_owned(),
        version: 0,
        ttl_left: None,
        first_seen_at: None,
        done_at: None,
        result_hash: None,
        error_code: None,
        cancel_reason: None,
        retry_after_sec: None,
        retryable: false,
        queued: false,
    }
}

pub(crate) fn result(key: &str, rec: Option<(&LeaseRecord, Phase)>, now: u64) -> AiResult {
    let st = match rec {
        Some((rec, phase)) => status(key, rec, phase, now),
        None => not_found_status(key),
    };
    AiResult {
        ok: st.status == RunStatus::Completed,
        status: st.status,
        key: st.key,
        result: rec
            .filter(|(_, p)| *p == Phase::Completed)
            .and_then(|(r, _)| r.result.as_deref().cloned()),
        result_hash: st.result_hash,
        error_code: st.error_code,
        cancel_reason: st.cancel_reason,
        done_at: st.done_at,
        retryable: st.retryable,
    }
}
