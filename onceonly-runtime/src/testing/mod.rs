//! Test support shared by the test suites of the workspace (feature `testing`). Not a public
//! API: it may change in any release.

mod durability;
mod redis_server;

pub use durability::{RECOVERS_WITHIN, assert_acknowledged, assert_recovers, write_acknowledged};
pub use redis_server::RedisServer;

use crate::store::{LeaseRecord, LeaseState, LockEntry};

/// A check-lock taken at `now_ms` for `ttl_ms`, without metadata.
pub fn lock_entry(lock_id: &str, now_ms: u64, ttl_ms: u64) -> LockEntry {
    LockEntry {
        lock_id: lock_id.into(),
        first_seen_at_ms: now_ms,
        expires_at_ms: now_ms + ttl_ms,
        metadata: None,
    }
}

/// A first acquisition at `now_ms` for `ttl_ms`, kept an hour after its lease ends.
pub fn in_progress_record(lease_id: &str, now_ms: u64, ttl_ms: u64) -> LeaseRecord {
    LeaseRecord {
        lease_id: lease_id.into(),
        version: 1,
        ttl_ms,
        lease_expires_at_ms: now_ms + ttl_ms,
        purge_at_ms: now_ms + ttl_ms + 3_600_000,
        ..LeaseRecord::blank(LeaseState::InProgress, now_ms)
    }
}
