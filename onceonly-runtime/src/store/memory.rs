use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LeaseRecord, LockClaim, LockEntry, Notifier, Store, Subscription, Versioned};
use crate::error::{JsonMap, Result};

/// An in-process store: two hash maps behind mutexes, and a [`Notifier`] for waiters.
///
/// Every primitive runs under one short, never-awaited lock, which makes it atomic. Nothing
/// survives the process; use the Redis or SQLite store for that.
#[derive(Debug, Default)]
pub struct MemoryStore {
    locks: Mutex<HashMap<String, LockEntry>>,
    records: Mutex<HashMap<String, Versioned<Arc<LeaseRecord>>>>,
    /// Revisions come from one counter for the whole store, so a key that is purged and
    /// created again never reuses a revision a slow writer might still expect (no ABA).
    last_rev: AtomicU64,
    notifier: Notifier,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many check-locks and lease records are held, expired or not.
    pub fn len(&self) -> (usize, usize) {
        (lock(&self.locks).len(), lock(&self.records).len())
    }
}

/// A poisoned lock only means another thread panicked while holding it; every write here
/// leaves the maps consistent, so the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn claim_lock(
        &self,
        key: &str,
        now_ms: u64,
        expires_at_ms: u64,
        metadata: Option<&JsonMap>,
    ) -> Result<LockClaim> {
        let mut locks = lock(&self.locks);
        let fresh = LockEntry {
            first_seen_at_ms: now_ms,
            expires_at_ms,
            metadata: metadata.cloned(),
        };
        match locks.get_mut(key) {
            Some(held) if held.expires_at_ms > now_ms => Ok(LockClaim::Held(held.clone())),
            Some(expired) => {
                *expired = fresh;
                Ok(LockClaim::Claimed)
            }
            None => {
                locks.insert(key.to_owned(), fresh);
                Ok(LockClaim::Claimed)
            }
        }
    }

    async fn release_lock(&self, key: &str, now_ms: u64) -> Result<bool> {
        let removed = lock(&self.locks).remove(key);
        Ok(removed.is_some_and(|e| e.expires_at_ms > now_ms))
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        Ok(lock(&self.records).get(key).cloned())
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        let new_rev = {
            let mut records = lock(&self.records);
            match (records.get_mut(key), expected_rev) {
                (Some(cur), Some(rev)) if cur.rev == rev => {
                    cur.rev = self.last_rev.fetch_add(1, Ordering::Relaxed) + 1;
                    cur.value = Arc::new(record);
                    cur.rev
                }
                (None, None) => {
                    let rev = self.last_rev.fetch_add(1, Ordering::Relaxed) + 1;
                    records.insert(
                        key.to_owned(),
                        Versioned {
                            rev,
                            value: Arc::new(record),
                        },
                    );
                    rev
                }
                _ => return Ok(None),
            }
        };
        self.notifier.notify(key);
        Ok(Some(new_rev))
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        Ok(self.notifier.subscribe(key))
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        let mut purged = 0;
        {
            let mut locks = lock(&self.locks);
            let before = locks.len();
            locks.retain(|_, e| e.expires_at_ms > now_ms);
            purged += before - locks.len();
        }
        {
            let mut records = lock(&self.records);
            let before = records.len();
            records.retain(|_, r| r.value.purge_at_ms > now_ms);
            purged += before - records.len();
        }
        self.notifier.prune();
        Ok(purged)
    }
}
