//! The engine's read → decide → compare-and-swap loops under real interleaving.
//!
//! `MemoryStore` answers without ever suspending, so on its own concurrent callers rarely
//! land between another caller's read and its write. `Interleaving` wraps it and yields to
//! the scheduler after every read: every caller then reads before anyone writes, which is
//! what a networked store (Redis, SQLite through a pool) does all the time.

use std::sync::Arc;

use onceonly_runtime::models::{LeaseRequest, RunStatus, UsageKind};
use onceonly_runtime::store::{
    CounterAdd, LeaseRecord, LockClaim, LockEntry, LogPage, MemoryStore, Store, Subscription,
    Versioned,
};
use onceonly_runtime::time::SystemClock;
use onceonly_runtime::{Engine, EngineConfig, JsonMap, Result};

/// A `MemoryStore` that suspends after each record read.
struct Interleaving(MemoryStore);

impl Store for Interleaving {
    fn name(&self) -> &'static str {
        "interleaving"
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        self.0.claim_lock(key, now_ms, lock).await
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        self.0.release_lock(key, lock_id, now_ms).await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        let read = self.0.get_record(key).await;
        tokio::task::yield_now().await;
        read
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        self.0.put_record(key, expected_rev, record).await
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        self.0.subscribe(key).await
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        self.0.purge_expired(now_ms).await
    }

    async fn add_counter(
        &self,
        key: &str,
        delta: i64,
        limit: Option<u64>,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<CounterAdd> {
        self.0
            .add_counter(key, delta, limit, now_ms, expires_at_ms)
            .await
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        self.0.get_counter(key, now_ms).await
    }

    async fn append_log(
        &self,
        key: &str,
        value: JsonMap,
        cap: usize,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        self.0
            .append_log(key, value, cap, now_ms, expires_at_ms)
            .await
    }

    async fn read_log(
        &self,
        key: &str,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> Result<LogPage> {
        self.0
            .read_log(key, newest_first, offset, limit, now_ms)
            .await
    }
}

fn engine() -> Engine<Interleaving> {
    Engine::with_config(
        Interleaving(MemoryStore::new()),
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
}

/// Every caller reads the key free and is charged; one write wins, and every loser must give
/// its charge back, or the account pays 64 acquisitions for one.
#[tokio::test]
async fn callers_who_lose_the_acquisition_race_are_refunded() {
    let engine = engine();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.lease(LeaseRequest::new("race")).await.unwrap() })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        let lease = t.await.unwrap();
        if lease.status == RunStatus::Acquired {
            acquired += 1;
            assert_eq!(lease.charged, Some(1));
        } else {
            assert_eq!(lease.charged, Some(0), "{lease:?}");
        }
    }
    assert_eq!(acquired, 1);
    let all = engine.usage_all().await.unwrap();
    assert_eq!(all.ai.usage, 1, "{all:?}");
    assert_eq!(all.ai.polling_total_month, 63, "{all:?}");
}

/// Two copies of one acquisition racing (a retry sent while the first is still in flight):
/// both get the one lease, charged once.
#[tokio::test]
async fn racing_copies_of_one_acquisition_share_its_lease() {
    let engine = engine();
    let copies: Vec<_> = (0..8)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let req = LeaseRequest::new("job").acquisition_id("acq-copy");
                engine.lease(req).await.unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for c in copies {
        let lease = c.await.unwrap();
        assert_eq!(lease.status, RunStatus::Acquired, "{lease:?}");
        ids.push(lease.lease_id.unwrap());
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(engine.usage(UsageKind::Ai).await.unwrap().usage, 1);
}
