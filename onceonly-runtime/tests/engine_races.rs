//! The engine's read → decide → compare-and-swap loops under real interleaving.
//!
//! `MemoryStore` answers without ever suspending, so on its own concurrent callers rarely
//! land between another caller's read and its write. `Interleaving` wraps it and yields to
//! the scheduler after every read: every caller then reads before anyone writes, which is
//! what a networked store (Redis, SQLite through a pool) does all the time. It can also be
//! told to fail every record read after the first few, as a store going down mid-race.
//! (`Interleaving` is `MemoryStore` under [`Hooked`] with the `Interleave` hooks.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::engine::{Account, Plan};
use onceonly_runtime::models::{Lease, LeaseRequest, RunStatus, UsageKind};
use onceonly_runtime::store::{Hooked, MemoryStore, Store, StoreHooks};
use onceonly_runtime::time::SystemClock;
use onceonly_runtime::{Engine, EngineConfig, Error, Result};

/// Suspends after each record read, and fails record reads once `reads_before_outage` of
/// them have been answered.
struct Interleave {
    reads_before_outage: AtomicUsize,
}

impl StoreHooks for Interleave {
    async fn before_read(&self, _key: &str) -> Result<()> {
        let left = self.reads_before_outage.load(Ordering::SeqCst);
        if left == 0 {
            return Err(Error::Store("the store went away".into()));
        }
        self.reads_before_outage.store(left - 1, Ordering::SeqCst);
        Ok(())
    }

    async fn after_read(&self, _key: &str) {
        tokio::task::yield_now().await;
    }
}

type Interleaving = Hooked<MemoryStore, Interleave>;

fn failing_after(reads: usize) -> Interleaving {
    Hooked::new(
        MemoryStore::new(),
        Interleave {
            reads_before_outage: AtomicUsize::new(reads),
        },
    )
}

fn engine_on(store: Interleaving) -> Engine<Interleaving> {
    Engine::with_config(store, EngineConfig::default(), Arc::new(SystemClock))
}

fn engine() -> Engine<Interleaving> {
    engine_on(failing_after(usize::MAX))
}

/// Leases `key` from `n` tasks at once; the answers in the order the tasks were started.
async fn race<S: Store>(engine: &Engine<S>, key: &str, n: usize) -> Vec<Result<Lease>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (engine, key) = (engine.clone(), key.to_owned());
            tokio::spawn(async move { engine.lease(LeaseRequest::new(key)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

/// Every caller reads the key free and is charged; one write wins, and every loser must give
/// its charge back, or the account pays 64 acquisitions for one.
#[tokio::test]
async fn callers_who_lose_the_acquisition_race_are_refunded() {
    let engine = engine();
    let mut acquired = 0;
    for lease in race(&engine, "race", 64).await {
        let lease = lease.unwrap();
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

/// One unit left on the plan and eight callers reading the key free: the one that acquires
/// takes the unit, and the others, refused a unit, must look again and answer `in_progress`
/// (free) rather than 402: they never needed a unit.
#[tokio::test]
async fn at_the_limit_the_losers_of_a_race_get_in_progress_not_402() {
    let root = engine();
    let t = root
        .tenant(Account::tenant("t", Plan::new("small").ai_limit(2)))
        .unwrap();
    t.lease(LeaseRequest::new("earlier")).await.unwrap();
    let answers = race(&t, "job", 8).await;
    let statuses: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().map(|l| l.status).map_err(|e| e.to_string()))
        .collect();
    let acquired = statuses
        .iter()
        .filter(|s| **s == Ok(RunStatus::Acquired))
        .count();
    let busy = statuses
        .iter()
        .filter(|s| **s == Ok(RunStatus::InProgress))
        .count();
    assert_eq!((acquired, busy), (1, 7), "{statuses:?}");
    let all = t.usage_all().await.unwrap();
    assert_eq!(
        (all.ai.usage, all.ai.blocked_total_month),
        (2, 0),
        "{all:?}"
    );
    // A genuinely new acquisition is still refused.
    assert!(matches!(
        t.lease(LeaseRequest::new("another")).await,
        Err(Error::OverLimit { .. })
    ));
}

/// Every caller charges, one writes, and the store fails the others' second read: their
/// charges go back though their calls end in an error.
#[tokio::test]
async fn charges_are_refunded_when_the_store_fails_mid_race() {
    let engine = engine_on(failing_after(8));
    let answers = race(&engine, "job", 8).await;
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    let failed = answers
        .iter()
        .filter(|a| matches!(a, Err(Error::Store(_))))
        .count();
    assert_eq!((ok, failed), (1, 7), "{answers:?}");
    engine
        .store()
        .hooks()
        .reads_before_outage
        .store(usize::MAX, Ordering::SeqCst);
    assert_eq!(engine.usage(UsageKind::Ai).await.unwrap().usage, 1);
}

/// Loses the answer of the next `lose` record writes that landed: the store applied them, the
/// caller hears an error (a timeout after the command reached Redis, say).
struct LoseAnswers {
    lose: AtomicUsize,
    /// Record writes refused before they reach the store (they never land).
    refuse: AtomicUsize,
}

impl StoreHooks for LoseAnswers {
    async fn before_write(
        &self,
        _key: &str,
        _record: &onceonly_runtime::store::LeaseRecord,
    ) -> Result<()> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Store("connection reset before the write".into()));
        }
        Ok(())
    }

    async fn after_write(&self, _key: &str, written: Option<u64>) -> Result<()> {
        if written.is_some()
            && self
                .lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(Error::Store("timed out waiting for the answer".into()));
        }
        Ok(())
    }
}

/// A write that landed but whose answer was lost is read back and recognized: the caller gets
/// the lease it now holds (and can complete it), or its completion, instead of an error for
/// something that happened. Without the read-back the lease would sit held by nobody until it
/// expired.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_recognized_as_landed() {
    use onceonly_runtime::models::{CompleteRequest, ExtendRequest};

    let store = Hooked::new(
        MemoryStore::new(),
        LoseAnswers {
            lose: AtomicUsize::new(0),
            refuse: AtomicUsize::new(0),
        },
    );
    let engine = Engine::with_config(store, EngineConfig::default(), Arc::new(SystemClock));
    let lose_next = |n| engine.store().hooks().lose.store(n, Ordering::SeqCst);

    lose_next(1);
    let lease = engine.lease(LeaseRequest::new("lost")).await.unwrap();
    assert_eq!(lease.status, RunStatus::Acquired, "{lease:?}");
    let lease_id = lease.lease_id.clone().unwrap();
    assert_eq!(
        engine.usage(UsageKind::Ai).await.unwrap().usage,
        1,
        "charged once, kept"
    );
    let others = engine.lease(LeaseRequest::new("lost")).await.unwrap();
    assert_eq!(others.status, RunStatus::InProgress, "the lease is held");

    lose_next(1);
    let extended = engine
        .extend(ExtendRequest::new("lost", &lease_id, None))
        .await
        .unwrap();
    assert_eq!(extended.status, RunStatus::Acquired);

    lose_next(1);
    let done = engine
        .complete(CompleteRequest::new(
            "lost",
            &lease_id,
            serde_json::json!({"v": 1}).as_object().cloned(),
        ))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(
        engine.result("lost").await.unwrap().result,
        serde_json::json!({"v": 1}).as_object().cloned()
    );

    // A write that never landed is an error still, for an acquisition and for a holder.
    engine.store().hooks().refuse.store(1, Ordering::SeqCst);
    let refused = engine.lease(LeaseRequest::new("unlanded")).await;
    assert!(matches!(refused, Err(Error::Store(_))), "{refused:?}");
    let id = engine
        .lease(LeaseRequest::new("unlanded"))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    engine.store().hooks().refuse.store(1, Ordering::SeqCst);
    let failed = engine
        .complete(CompleteRequest::new("unlanded", &id, None))
        .await;
    assert!(matches!(failed, Err(Error::Store(_))), "{failed:?}");
    assert_eq!(
        engine.status("unlanded").await.unwrap().status,
        RunStatus::InProgress
    );
}
