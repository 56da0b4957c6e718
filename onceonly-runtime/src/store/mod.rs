//! Storage behind the embedded engine: a small trait of atomic primitives.
//!
//! A store knows nothing about leases, fencing or governance; the [`Engine`](crate::Engine)
//! owns those rules and calls these primitives. Every primitive is atomic on its own, every
//! deadline is a unix-millisecond value computed by the engine's clock, and every write of a
//! lease record wakes the subscribers of that key. A new store passes the shared conformance
//! suite (`onceonly_runtime::conformance`, feature `testing`) before it is trusted.
//!
//! Besides locks and lease records, two generic primitives carry accounting and timelines:
//! windowed counters ([`Store::add_counter`], never passing a limit under concurrency) and
//! capped append-only logs ([`Store::append_log`]). The engine decides what they count and log.
//! Small keyed documents ([`Store::put_doc`]: policies, kill switches, registered tools) are
//! the last primitive: last write wins, listed by key prefix, never expiring on their own.

mod any;
mod failure;
#[cfg(feature = "testing")]
mod hooked;
mod memory;
mod notify;
mod record;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::future::Future;
use std::sync::Arc;

pub(crate) use failure::StoreFailure;

pub use any::AnyStore;
#[cfg(feature = "redis")]
pub use any::LazyRedis;
#[cfg(feature = "testing")]
pub use hooked::{Hooked, StoreHooks};
pub use memory::MemoryStore;
pub use notify::{Notifier, Subscription};
pub use record::{LeaseRecord, LeaseState, LockEntry};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::error::{JsonMap, Result};

/// The outcome of [`Store::claim_lock`].
#[derive(Debug, Clone, PartialEq)]
pub enum LockClaim {
    /// The key was free (absent or expired) and is now locked by this call.
    Claimed,
    /// The key is locked (and stays untouched): when it was locked and until when.
    Held {
        /// When the live lock was taken (unix ms).
        first_seen_at_ms: u64,
        /// When it expires (unix ms).
        expires_at_ms: u64,
    },
}

/// A record with the store's revision number, used for compare-and-swap.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// Changes on every successful write of the key.
    pub rev: u64,
    /// The stored value.
    pub value: T,
}

/// One change of [`Store::add_counters`]: the arguments of [`Store::add_counter`] for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterDelta<'a> {
    /// The counter.
    pub key: &'a str,
    /// What to add; a negative delta is never refused and stops at 0.
    pub delta: i64,
    /// The counter may not pass this value (`None`: no limit).
    pub limit: Option<u64>,
    /// The end of the window a new (or ended) counter opens.
    pub expires_at_ms: u64,
}

/// Ends a counter key's *group*: counters changed together in one [`Store::add_counters`] call
/// share the text before this character (one tenant's usage counters, for the engine). A
/// sharded store keeps a group together; the Redis store makes it the key's hash tag, so one
/// call stays in one Redis Cluster slot. A key without it is a group of its own.
pub const COUNTER_GROUP_END: char = '#';

/// The outcome of [`Store::add_counter`] and [`Store::add_counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterAdd {
    /// The delta was applied; the counter's new value.
    Added(u64),
    /// Applying the delta would have passed the limit; nothing changed. The counter's value.
    Refused(u64),
}

/// The rule of [`Store::add_counter`] on a counter's live value: its new value, or
/// [`CounterAdd::Refused`] with the value unchanged. For stores that compute in Rust.
pub(crate) fn apply_delta(value: u64, add: &CounterDelta<'_>) -> CounterAdd {
    if add.delta < 0 {
        return CounterAdd::Added(value.saturating_sub(add.delta.unsigned_abs()));
    }
    let next = value.saturating_add(add.delta.unsigned_abs());
    match add.limit {
        Some(limit) if next > limit => CounterAdd::Refused(value),
        _ => CounterAdd::Added(next),
    }
}

/// A log, or one topic of it, as [`Store::append_log`] writes and [`Store::read_log`] reads.
///
/// A log may tag entries with a *topic* (the engine's run id or agent id). A topic is a view of
/// its log, not a log of its own: its entries count against the log's caps and go when the log
/// trims them, so however many topics a client opens, the log stays within its caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRef<'a> {
    /// The log.
    pub key: &'a str,
    /// On append, the entry's topic; on read, only that topic's entries (`None`: all entries).
    pub topic: Option<&'a str>,
}

impl<'a> LogRef<'a> {
    /// The whole log `key`; appended entries have no topic.
    pub fn whole(key: &'a str) -> Self {
        LogRef { key, topic: None }
    }

    /// The entries of `key` tagged `topic`.
    pub fn topic(key: &'a str, topic: &'a str) -> Self {
        LogRef {
            key,
            topic: Some(topic),
        }
    }
}

/// How much a log keeps: after an append, its oldest entries go until it holds at most
/// `entries` entries of at most `bytes` bytes of compact JSON in all. The newest entry always
/// stays, whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCaps {
    /// Most entries kept.
    pub entries: usize,
    /// Most bytes of entry JSON kept.
    pub bytes: usize,
}

/// One entry of a capped log, with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Assigned by [`Store::append_log`]: increasing within a log, never reused while the log
    /// lives (trimming old entries does not reset it).
    pub seq: u64,
    /// The appended object.
    pub value: Arc<JsonMap>,
}

/// A page of a capped log: [`Store::read_log`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    /// How many entries the log (or the topic read) holds now.
    pub total: u64,
    /// The requested page.
    pub entries: Vec<LogEntry>,
}

/// Atomic primitives the engine is built on.
///
/// Implementations must be linearizable per key: two concurrent `claim_lock` calls on a free key
/// give exactly one `Claimed`, and two `put_record` calls expecting the same revision give
/// exactly one success.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and errors (`memory`, `redis`, `sqlite`).
    fn name(&self) -> &'static str;

    /// Claim-if-absent-or-expired: stores `lock` under `key` unless a lock whose
    /// `expires_at_ms > now_ms` exists, in which case that lock is returned unchanged.
    fn claim_lock(
        &self,
        key: &str,
        now_ms: u64,
        lock: LockEntry,
    ) -> impl Future<Output = Result<LockClaim>> + Send;

    /// Deletes a lock: any lock when `lock_id` is `None`, otherwise only the lock with that
    /// id (compare-and-delete, so a holder whose lock expired and was claimed again cannot
    /// delete the new holder's lock). Returns whether a live lock (`expires_at_ms > now_ms`)
    /// was removed.
    fn release_lock(
        &self,
        key: &str,
        lock_id: Option<&str>,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

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

    /// Physically removes locks with `expires_at_ms <= now_ms`, records with
    /// `purge_at_ms <= now_ms`, and expired counters and logs. Returns how many entries went away.
    fn purge_expired(&self, now_ms: u64) -> impl Future<Output = Result<usize>> + Send;

    /// Windowed counter: adds `delta` to the counter `key` unless the sum would exceed `limit`
    /// (then nothing changes and the answer is [`CounterAdd::Refused`]). A counter whose
    /// `expires_at_ms <= now_ms` counts as 0 and the add opens a new window ending at
    /// `expires_at_ms`; a live counter keeps its window. A negative `delta` is never refused
    /// and stops at 0. Concurrent adds never take a counter past its limit.
    ///
    /// Provided: one [`add_counters`](Store::add_counters) of one counter.
    fn add_counter(
        &self,
        key: &str,
        delta: i64,
        limit: Option<u64>,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> impl Future<Output = Result<CounterAdd>> + Send {
        async move {
            let add = CounterDelta {
                key,
                delta,
                limit,
                expires_at_ms,
            };
            self.add_counters(&[add], now_ms).await
        }
    }

    /// Several counters changed at once, all or nothing, in one atomic step (one round trip
    /// for a networked store): each add follows the rule of [`add_counter`](Store::add_counter),
    /// in order. When one would pass its limit nothing changes at all and the answer is
    /// [`CounterAdd::Refused`] with that counter's value; otherwise it is [`CounterAdd::Added`]
    /// with the *first* counter's new value. The keys of one call share their group (see
    /// [`COUNTER_GROUP_END`]). An empty call changes nothing and answers `Added(0)`.
    fn add_counters(
        &self,
        adds: &[CounterDelta<'_>],
        now_ms: u64,
    ) -> impl Future<Output = Result<CounterAdd>> + Send;

    /// The value of a counter: 0 when it is absent or its window ended.
    fn get_counter(&self, key: &str, now_ms: u64) -> impl Future<Output = Result<u64>> + Send;

    /// Capped append-only log: appends `value` to `log.key`, tagged `log.topic`, and returns
    /// its sequence number. The oldest entries then go until the log is within `caps` (the
    /// size of an entry is the length of its compact JSON). The log lives until
    /// `expires_at_ms` (each append sets it); an expired log reads empty and the next append
    /// starts it afresh.
    fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// A page of `log.key`, or of its entries tagged `log.topic`: skips `offset` entries from
    /// the newest end (`newest_first`) or the oldest end, then returns at most `limit`
    /// entries in that order. `total` counts the entries of the log, or of the topic.
    fn read_log(
        &self,
        log: LogRef<'_>,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> impl Future<Output = Result<LogPage>> + Send;

    /// Writes the document `key` (last write wins). Documents never expire; the engine
    /// deletes them.
    fn put_doc(&self, key: &str, value: JsonMap) -> impl Future<Output = Result<()>> + Send;

    /// Reads the document `key`.
    fn get_doc(&self, key: &str) -> impl Future<Output = Result<Option<Arc<JsonMap>>>> + Send;

    /// Deletes the document `key`; whether it existed.
    fn delete_doc(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// How many documents have a key starting with `prefix` (what caps the documents an
    /// account creates, without reading them).
    fn count_docs(&self, prefix: &str) -> impl Future<Output = Result<u64>> + Send;

    /// The documents whose key starts with `prefix`, in ascending byte order of their keys,
    /// at most `limit` of them, each with its whole key.
    fn list_docs(
        &self,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, Arc<JsonMap>)>>> + Send;
}
