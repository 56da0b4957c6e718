mod counters;
mod keyed;
mod locks;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps, LogEntry, LogPage,
    LogRef, Notifier, Store, Subscription, Versioned,
};
use crate::error::{JsonMap, Result};

/// An in-process store: hash maps behind mutexes, and a [`Notifier`] for waiters.
///
/// Every primitive runs under one short, never-awaited lock, which makes it atomic. Nothing
/// survives the process; use the Redis or SQLite store for that.
#[derive(Debug, Default)]
pub struct MemoryStore {
    locks: Mutex<locks::Locks>,
    /// Hashes lock, record and counter keys (lock and record keys before their table's mutex
    /// is taken). SipHash with a random key per store: keys come from webhook senders and
    /// agents, and a hash they could predict would let them send keys that collide.
    key_hasher: RandomState,
    records: Mutex<keyed::Keyed<Versioned<Arc<LeaseRecord>>>>,
    /// Revisions come from one counter for the whole store, so a key that is purged and
    /// created again never reuses a revision a slow writer might still expect (no ABA).
    last_rev: AtomicU64,
    notifier: Notifier,
    counters: Mutex<counters::Counters>,
    logs: Mutex<HashMap<String, Log>>,
    /// Ordered, so a prefix listing is a range scan.
    docs: Mutex<BTreeMap<String, Arc<JsonMap>>>,
}

/// A capped log. Entries are kept as JSON text, so what a log holds in memory is close to the
/// bytes its caps count.
#[derive(Debug, Default)]
struct Log {
    /// Oldest first; sequence numbers are consecutive, so `seq - front.seq` is an index.
    entries: VecDeque<Entry>,
    /// The sequence numbers of each topic's entries, oldest first.
    topics: HashMap<Arc<str>, VecDeque<u64>>,
    bytes: usize,
    last_seq: u64,
    expires_at_ms: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    topic: Option<Arc<str>>,
    /// Shared, so a read copies the page's text after the lock is released.
    json: Arc<str>,
}

impl Log {
    fn clear(&mut self) {
        self.entries.clear();
        self.topics.clear();
        self.bytes = 0;
    }

    fn push(&mut self, topic: Option<&str>, json: String) {
        self.last_seq += 1;
        let topic = topic.map(|t| match self.topics.get_key_value(t) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(t),
        });
        if let Some(t) = &topic {
            self.topics
                .entry(Arc::clone(t))
                .or_default()
                .push_back(self.last_seq);
        }
        self.bytes += json.len();
        self.entries.push_back(Entry {
            seq: self.last_seq,
            topic,
            json: Arc::from(json),
        });
    }

    /// Drops the oldest entries until the log is within `caps`, keeping the newest.
    fn trim(&mut self, caps: LogCaps) {
        while self.entries.len() > 1
            && (self.entries.len() > caps.entries || self.bytes > caps.bytes)
        {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.json.len();
            // The log's oldest entry is also the oldest of its topic.
            if let Some(t) = old.topic
                && let Some(seqs) = self.topics.get_mut(&t)
            {
                seqs.pop_front();
                if seqs.is_empty() {
                    self.topics.remove(&t);
                } else if seqs.capacity() > 64 && seqs.len() * 4 < seqs.capacity() {
                    // A topic that was long and is short now gives its room back.
                    seqs.shrink_to(seqs.len() * 2);
                }
            }
        }
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.front()?.seq;
        self.entries
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }
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

    async fn claim_lock(&self, key: &str, now_ms: u64, lock_entry: LockEntry) -> Result<LockClaim> {
        let hash = self.key_hasher.hash_one(key);
        Ok(lock(&self.locks).claim(hash, key, now_ms, lock_entry))
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        let hash = self.key_hasher.hash_one(key);
        Ok(lock(&self.locks).release(hash, key, lock_id, now_ms))
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        let hash = self.key_hasher.hash_one(key);
        Ok(lock(&self.records).get(hash, key).cloned())
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        let hash = self.key_hasher.hash_one(key);
        let new_rev = {
            let mut records = lock(&self.records);
            match (records.entry(hash, key), expected_rev) {
                (Ok(cur), Some(rev)) if cur.rev == rev => {
                    cur.rev = self.last_rev.fetch_add(1, Ordering::Relaxed) + 1;
                    cur.value = Arc::new(record);
                    cur.rev
                }
                (Err(free), None) => {
                    let rev = self.last_rev.fetch_add(1, Ordering::Relaxed) + 1;
                    free.insert(Versioned {
                        rev,
                        value: Arc::new(record),
                    });
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
        purged += lock(&self.locks).purge(now_ms);
        purged += lock(&self.records).retain(|r| r.value.purge_at_ms > now_ms);
        purged += lock(&self.counters).purge(now_ms);
        {
            let mut logs = lock(&self.logs);
            let before = logs.len();
            logs.retain(|_, l| l.expires_at_ms > now_ms);
            purged += before - logs.len();
        }
        self.notifier.prune();
        Ok(purged)
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        Ok(lock(&self.counters).add(&self.key_hasher, adds, now_ms))
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        Ok(lock(&self.counters).get(&self.key_hasher, key, now_ms))
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        let json = serde_json::to_string(&value)?;
        let mut logs = lock(&self.logs);
        let l = match logs.get_mut(log.key) {
            Some(l) => l,
            None => logs.entry(log.key.to_owned()).or_default(),
        };
        if l.expires_at_ms <= now_ms {
            l.clear();
        }
        l.expires_at_ms = expires_at_ms;
        l.push(log.topic, json);
        l.trim(caps);
        Ok(l.last_seq)
    }

    async fn read_log(
        &self,
        log: LogRef<'_>,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> Result<LogPage> {
        // Take the page's text under the lock, parse it after.
        let (total, page) = {
            let logs = lock(&self.logs);
            let Some(l) = logs.get(log.key).filter(|l| l.expires_at_ms > now_ms) else {
                return Ok(LogPage::default());
            };
            let copy = |e: &Entry| (e.seq, Arc::clone(&e.json));
            match log.topic {
                None => {
                    let all: Box<dyn Iterator<Item = &Entry>> = if newest_first {
                        Box::new(l.entries.iter().rev())
                    } else {
                        Box::new(l.entries.iter())
                    };
                    let page: Vec<_> = all.skip(offset).take(limit).map(copy).collect();
                    (l.entries.len(), page)
                }
                Some(topic) => {
                    let Some(seqs) = l.topics.get(topic) else {
                        return Ok(LogPage::default());
                    };
                    let ids: Box<dyn Iterator<Item = &u64>> = if newest_first {
                        Box::new(seqs.iter().rev())
                    } else {
                        Box::new(seqs.iter())
                    };
                    let page: Vec<_> = ids
                        .skip(offset)
                        .take(limit)
                        .filter_map(|&seq| l.entry(seq).map(copy))
                        .collect();
                    (seqs.len(), page)
                }
            }
        };
        let entries = page
            .into_iter()
            .map(|(seq, json)| {
                Ok(LogEntry {
                    seq,
                    value: Arc::new(serde_json::from_str(&json)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LogPage {
            total: total as u64,
            entries,
        })
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        lock(&self.docs).insert(key.to_owned(), Arc::new(value));
        Ok(())
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        Ok(lock(&self.docs).get(key).cloned())
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        Ok(lock(&self.docs).remove(key).is_some())
    }

    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        Ok(prefixed(&lock(&self.docs), prefix).count() as u64)
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        Ok(prefixed(&lock(&self.docs), prefix)
            .take(limit)
            .map(|(key, doc)| (key.clone(), Arc::clone(doc)))
            .collect())
    }
}

/// The documents whose key starts with `prefix`, in key order: one range scan of the map.
fn prefixed<'a>(
    docs: &'a BTreeMap<String, Arc<JsonMap>>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Arc<JsonMap>)> {
    docs.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    ))
    .take_while(move |(key, _)| key.starts_with(prefix))
}
