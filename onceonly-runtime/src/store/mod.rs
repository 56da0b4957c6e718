//! Storage behind the embedded engine: a small trait of atomic primitives.
//!
//! A store knows nothing about leases, fencing or governance; the [`Engine`](crate::Engine)
//! owns those rules and calls these primitives. Every primitive is atomic on its own, every
//! deadline is a unix-millisecond value computed by the engine's clock, and every write of a
//! lease record wakes the subscribers of that key. A new store passes the shared conformance
//! suite (`onceonly_runtime::conformance`, feature `testing`) before it is trusted.

mod memory;
mod notify;
mod record;

use std::future::Future;
use std::sync::Arc;

pub use memory::MemoryStore;
pub use notify::{Notifier, Subscription};
pub use record::{LeaseRecord, LeaseState, LockEntry};

use crate::error::{JsonMap, Result};

/// The outcome of [`Store::claim_lock`].
#[derive(Debug, Clone, PartialEq)]
pub enum LockClaim {
    /// The key was free (absent or expired) and is now locked by this call.
    Claimed,
    /// The key is locked; the live entry is returned untouched.
    Held(LockEntry),
}

/// A record with the store's revision number, used for compare-and-swap.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// Changes on every successful write of the key.
    pub rev: u64,
    /// The stored value.
    pub value: T,
}

/// Atomic primitives the engine is built on.
///
/// Implementations must be linearizable per key: two concurrent `claim_lock` calls on a free key
/// give exactly one `Claimed`, and two `put_record` calls expecting the same revision give
/// exactly one success.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and errors (`memory`, `redis`, `sqlite`).
    fn name(&self) -> &'static str;

    /// Claim-if-absent-or-expired: locks `key` until `expires_at_ms` unless a lock whose
    /// `expires_at_ms > now_ms` exists, in which case that lock is returned unchanged.
    fn claim_lock(
        &self,
        key: &str,
        now_ms: u64,
        expires_at_ms: u64,
        metadata: Option<&JsonMap>,
    ) -> impl Future<Output = Result<LockClaim>> + Send;

    /// Deletes a lock. Returns whether a live lock (`expires_at_ms > now_ms`) was removed.
    fn release_lock(&self, key: &str, now_ms: u64) -> impl Future<Output = Result<bool>> + Send;

    /// Reads a lease record, expired or not (the engine decides what expiry means).
    fn get_record(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Versioned<Arc<LeaseRecord>>>>> + Send;

    /// Compare-and-swap: writes `record` if the current revision is `expected_rev`
    /// (`None`: the key must be absent). Returns the new revision, or `None` when the revision
    /// did not match. A successful write wakes the key's subscribers.
    fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Registers interest in writes of `key`. Writes that happen after this call returns are
    /// never missed by the returned subscription.
    fn subscribe(&self, key: &str) -> impl Future<Output = Result<Subscription>> + Send;

    /// Physically removes locks with `expires_at_ms <= now_ms` and records with
    /// `purge_at_ms <= now_ms`. Returns how many entries went away.
    fn purge_expired(&self, now_ms: u64) -> impl Future<Output = Result<usize>> + Send;
}
