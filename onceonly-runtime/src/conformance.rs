//! The store conformance suite: the engine's guarantees, checked over any [`Store`].
//!
//! Every store must pass every case. Cases drive an [`Engine`] with a [`ManualClock`], so
//! expiry edges are checked to the millisecond without sleeping. Use the macro to get one
//! `#[tokio::test]` per case:
//!
//! ```ignore
//! onceonly_runtime::store_conformance_tests!(|| async { onceonly_runtime::store::MemoryStore::new() });
//! ```
//!
//! The factory is called once per case and must return an empty store (for a shared server,
//! a fresh key namespace).

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Account, Engine, EngineConfig, Plan};
use crate::error::{Error, JsonMap};
use crate::models::{
    CancelRequest, CheckLockRequest, CompleteRequest, ExtendRequest, FailRequest, LeaseRequest,
    RunEvent, RunStatus, UsageKind,
};
use crate::store::{CounterAdd, Store};
use crate::time::ManualClock;

/// Retention used by the suite (shorter than the default, to test it).
pub const RETENTION: Duration = Duration::from_secs(3600);
const TTL: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// An engine over `store` with a manual clock.
pub fn engine<S: Store>(store: S) -> (Engine<S>, ManualClock) {
    let clock = ManualClock::default();
    let config = EngineConfig::default().retention(RETENTION);
    (
        Engine::with_config(store, config, Arc::new(clock.clone())),
        clock,
    )
}

fn lock(key: &str, ttl: Duration) -> CheckLockRequest {
    let mut req = CheckLockRequest::new(key);
    req.ttl = Some(ttl);
    req
}

fn lease(key: &str) -> LeaseRequest {
    LeaseRequest::new(key).ttl(TTL)
}

fn result(v: serde_json::Value) -> Option<JsonMap> {
    v.as_object().cloned()
}

/// Many concurrent check-locks of one free key: exactly one locks.
pub async fn lock_claim_race<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.check_lock(lock("race", TTL)).await.unwrap() })
        })
        .collect();
    let mut locked = 0;
    let mut first_seen = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_ne!(r.locked, r.duplicate);
        if r.locked {
            locked += 1;
            assert!(r.first_seen_at.is_none());
        } else {
            first_seen.insert(r.first_seen_at.expect("duplicates carry first_seen_at"));
        }
    }
    assert_eq!(locked, 1, "exactly one caller locks");
    assert_eq!(
        first_seen.len(),
        1,
        "every duplicate sees the same first_seen_at"
    );
}

/// A lock expires exactly at its TTL, and a duplicate does not refresh it.
pub async fn lock_expiry_edge<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let first = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(first.locked);
    clock.advance(TTL / 2);
    assert!(
        engine
            .check_lock(lock("edge", TTL))
            .await
            .unwrap()
            .duplicate
    );
    clock.advance(TTL / 2 - MS);
    let dup = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(dup.duplicate, "still locked 1 ms before expiry");
    clock.advance(MS);
    let again = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(
        again.locked,
        "free exactly at expiry: the duplicate did not refresh the TTL"
    );
}

/// Releasing a lock lets the next check-lock in; releasing nothing says so.
pub async fn lock_release<S: Store>(store: S) {
    let (engine, _) = engine(store);
    assert!(engine.check_lock(lock("rel", TTL)).await.unwrap().locked);
    assert!(engine.release_lock("rel", None).await.unwrap());
    assert!(!engine.release_lock("rel", None).await.unwrap());
    assert!(engine.check_lock(lock("rel", TTL)).await.unwrap().locked);
    assert!(
        engine.check_lock(lock("other", TTL)).await.unwrap().locked,
        "keys are independent"
    );
}

/// A release with a lock id removes only that lock: a holder that outlived its TTL cannot
/// delete the lock of whoever claimed the key after it.
pub async fn lock_release_fenced<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let first = engine.check_lock(lock("fence", TTL)).await.unwrap();
    let first_id = first.lock_id.expect("the claiming call gets a lock id");
    let dup = engine.check_lock(lock("fence", TTL)).await.unwrap();
    assert_eq!(dup.lock_id, None, "a duplicate holds no lock");

    clock.advance(TTL);
    let second = engine.check_lock(lock("fence", TTL)).await.unwrap();
    let second_id = second.lock_id.expect("the lock was claimed again");
    assert_ne!(first_id, second_id, "every claim gets its own id");
    assert!(
        !engine.release_lock("fence", Some(&first_id)).await.unwrap(),
        "the expired holder's release is refused"
    );
    assert!(
        engine
            .check_lock(lock("fence", TTL))
            .await
            .unwrap()
            .duplicate,
        "the second holder's lock survived"
    );
    assert!(
        engine
            .release_lock("fence", Some(&second_id))
            .await
            .unwrap()
    );
    assert!(
        !engine
            .release_lock("fence", Some(&second_id))
            .await
            .unwrap(),
        "released once"
    );
    assert!(engine.check_lock(lock("fence", TTL)).await.unwrap().locked);
    assert!(matches!(
        engine.release_lock("fence", Some("")).await,
        Err(Error::Validation(_))
    ));
}

/// Many concurrent leases of one key: exactly one acquires; nobody else sees its lease id.
pub async fn lease_claim_race<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.lease(lease("race")).await.unwrap() })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        let l = t.await.unwrap();
        match l.status {
            RunStatus::Acquired => {
                acquired += 1;
                assert!(l.lease_id.is_some());
                assert_eq!(l.version, 1);
            }
            RunStatus::InProgress => {
                assert!(
                    l.lease_id.is_none(),
                    "the holder's lease id is never shown to others"
                );
                assert!(l.ttl_left.is_some_and(|t| t > 0));
                assert!(l.retry_after_sec.is_some_and(|t| (1..=5).contains(&t)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acquired, 1);
    assert_eq!(
        engine.usage(UsageKind::Ai).await.unwrap().usage,
        1,
        "charges taken by callers who then lost the race were refunded"
    );
}

/// The same acquisition sent again (its answer was lost) gets the live lease back, uncharged;
/// other callers and later acquisitions never do.
pub async fn lease_repeated_acquisition<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let first = engine
        .lease(lease("rep").acquisition_id("acq-1"))
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Acquired);
    assert_eq!(first.charged, Some(1));
    clock.advance(TTL / 2);
    let again = engine
        .lease(lease("rep").acquisition_id("acq-1"))
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Acquired, "{again:?}");
    assert_eq!(
        again.lease_id, first.lease_id,
        "the same lease, not a new one"
    );
    assert_eq!(again.version, first.version);
    assert_eq!(again.charged, Some(0), "a repeat is not charged again");
    for other in [lease("rep").acquisition_id("acq-2"), lease("rep")] {
        let l = engine.lease(other).await.unwrap();
        assert_eq!(l.status, RunStatus::InProgress);
        assert_eq!(l.lease_id, None);
    }
    // The repeat moved the expiry to its own now + TTL, as the lost answer would have: the
    // lease is still held 1 ms before that, though the first TTL is long past.
    clock.advance(TTL - MS);
    let held = engine.lease(lease("rep")).await.unwrap();
    assert_eq!(held.status, RunStatus::InProgress);

    // Once the lease expired, the old name acquires afresh (a new lease id).
    clock.advance(MS);
    let later = engine
        .lease(lease("rep").acquisition_id("acq-1"))
        .await
        .unwrap();
    assert_eq!(later.status, RunStatus::Acquired);
    assert_ne!(later.lease_id, first.lease_id);
    assert_eq!(later.charged, Some(1));
    let lease_id = later.lease_id.clone().unwrap();
    engine
        .complete(CompleteRequest::new("rep", lease_id, None))
        .await
        .unwrap();
    let done = engine
        .lease(lease("rep").acquisition_id("acq-1"))
        .await
        .unwrap();
    assert_eq!(
        done.status,
        RunStatus::Completed,
        "a finished lease is not handed out"
    );
    assert_eq!(done.lease_id, None);

    // A late copy of a request whose lease was given back does not take the key again.
    let given = engine
        .lease(lease("rep-cancel").acquisition_id("acq-c"))
        .await
        .unwrap();
    engine
        .cancel(CancelRequest::new(
            "rep-cancel",
            given.lease_id.unwrap(),
            None,
        ))
        .await
        .unwrap();
    let stale = engine
        .lease(lease("rep-cancel").acquisition_id("acq-c"))
        .await
        .unwrap();
    assert_eq!(
        (stale.status, stale.lease_id, stale.charged),
        (RunStatus::Failed, None, Some(0)),
        "the stale copy is told how it ended"
    );
    let next = engine
        .lease(lease("rep-cancel").acquisition_id("acq-c2"))
        .await
        .unwrap();
    assert_eq!(next.status, RunStatus::Acquired, "a new attempt acquires");

    // A late copy of the request never shortens a lease its holder has since extended.
    let long = engine
        .lease(lease("rep-long").acquisition_id("acq-long"))
        .await
        .unwrap();
    let long_id = long.lease_id.clone().unwrap();
    engine
        .extend(ExtendRequest::new("rep-long", &long_id, Some(TTL * 6)))
        .await
        .unwrap();
    let copy = engine
        .lease(lease("rep-long").acquisition_id("acq-long"))
        .await
        .unwrap();
    assert_eq!(copy.lease_id.as_deref(), Some(long_id.as_str()));
    clock.advance(TTL * 3);
    assert_eq!(
        engine.lease(lease("rep-long")).await.unwrap().status,
        RunStatus::InProgress,
        "still held on the extended expiry"
    );

    for bad in ["", "a b", "ä", &"a".repeat(257)] {
        assert!(matches!(
            engine.lease(lease("rep").acquisition_id(bad)).await,
            Err(Error::Validation(_))
        ));
    }
}

/// A lease is exclusive until exactly its TTL; then the next lease acquires with a new id.
pub async fn lease_expiry_edge<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let a = engine.lease(lease("edge")).await.unwrap();
    clock.advance(TTL - MS);
    assert_eq!(
        engine.lease(lease("edge")).await.unwrap().status,
        RunStatus::InProgress
    );
    clock.advance(MS);
    let st = engine.status("edge").await.unwrap();
    assert_eq!(
        (st.status, st.error_code.as_deref(), st.retryable),
        (RunStatus::Failed, Some("lease_expired"), true)
    );
    let b = engine.lease(lease("edge")).await.unwrap();
    assert_eq!(b.status, RunStatus::Acquired);
    assert_ne!(b.lease_id, a.lease_id);
    assert_eq!(b.version, 2);
    assert_eq!(
        b.first_seen_at, a.first_seen_at,
        "first_seen_at survives re-acquisition"
    );
}

/// After someone else acquired, the old holder can neither extend, complete, fail nor cancel.
pub async fn stale_lease_rejected<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let a = engine
        .lease(lease("stale"))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    clock.advance(TTL);
    let b = engine
        .lease(lease("stale"))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    let lost = |r: crate::Result<_>| matches!(r, Err(Error::LeaseLost { .. }));
    assert!(lost(
        engine
            .extend(ExtendRequest::new("stale", &a, Some(TTL)))
            .await
    ));
    assert!(lost(
        engine
            .complete(CompleteRequest::new(
                "stale",
                &a,
                result(serde_json::json!({"v": 1}))
            ))
            .await
    ));
    assert!(lost(
        engine.fail(FailRequest::new("stale", &a, "x", false)).await
    ));
    assert!(lost(
        engine.cancel(CancelRequest::new("stale", &a, None)).await
    ));
    assert!(lost(
        engine
            .complete(CompleteRequest::new("stale", "lease_forged", None))
            .await
    ));
    assert!(lost(
        engine
            .complete(CompleteRequest::new("missing", &a, None))
            .await
    ));
    let done = engine
        .complete(CompleteRequest::new(
            "stale",
            &b,
            result(serde_json::json!({"v": 2})),
        ))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    let r = engine.result("stale").await.unwrap();
    assert_eq!(r.result, result(serde_json::json!({"v": 2})));
}

/// A holder past its TTL may still complete while nobody else acquired.
pub async fn late_complete_accepted<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let a = engine.lease(lease("late")).await.unwrap().lease_id.unwrap();
    clock.advance(TTL * 3);
    let done = engine
        .complete(CompleteRequest::new(
            "late",
            &a,
            result(serde_json::json!({"ok": true})),
        ))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(
        engine.lease(lease("late")).await.unwrap().status,
        RunStatus::Completed
    );
}

/// A completed key replays its result; completing twice with the same lease is a no-op.
pub async fn completed_replays<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let id = engine.lease(lease("done")).await.unwrap().lease_id.unwrap();
    let body = result(serde_json::json!({"receipt": "r_1", "cents": 500}));
    let mut req = CompleteRequest::new("done", &id, body.clone());
    req.result_hash = Some("h1".into());
    engine.complete(req.clone()).await.unwrap();
    engine
        .complete(req)
        .await
        .expect("a retried complete succeeds");
    let again = engine.lease(lease("done")).await.unwrap();
    assert_eq!(again.status, RunStatus::Completed);
    assert_eq!(again.result, body);
    assert!(again.lease_id.is_none());
    let st = engine.status("done").await.unwrap();
    assert_eq!(
        (st.status, st.result_hash.as_deref()),
        (RunStatus::Completed, Some("h1"))
    );
    assert!(st.done_at.is_some());
    let r = engine.result("done").await.unwrap();
    assert!(r.ok);
    assert_eq!(r.result, body);
    assert!(matches!(
        engine
            .fail(FailRequest::new("done", &id, "late", false))
            .await,
        Err(Error::LeaseLost { .. })
    ));
}

/// A terminal failure sticks; a retryable one releases the key.
pub async fn fail_terminal_and_retryable<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let id = engine.lease(lease("term")).await.unwrap().lease_id.unwrap();
    engine
        .fail(FailRequest::new("term", &id, "card_declined", false))
        .await
        .unwrap();
    let l = engine.lease(lease("term")).await.unwrap();
    assert_eq!(
        (l.status, l.error_code.as_deref(), l.retryable),
        (RunStatus::Failed, Some("card_declined"), false)
    );

    let id = engine
        .lease(lease("retry"))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    engine
        .fail(FailRequest::new("retry", &id, "timeout", true))
        .await
        .unwrap();
    let st = engine.status("retry").await.unwrap();
    assert_eq!(
        (st.status, st.error_code.as_deref(), st.retryable),
        (RunStatus::Failed, Some("timeout"), true)
    );
    let again = engine.lease(lease("retry")).await.unwrap();
    assert_eq!((again.status, again.version), (RunStatus::Acquired, 2));
}

/// Cancel frees the key at once; the status reads as a retryable `cancelled` failure.
pub async fn cancel_releases<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let id = engine.lease(lease("c")).await.unwrap().lease_id.unwrap();
    engine
        .cancel(CancelRequest::new("c", &id, Some("shutdown".into())))
        .await
        .unwrap();
    engine
        .cancel(CancelRequest::new("c", &id, None))
        .await
        .expect("a retried cancel succeeds");
    let st = engine.status("c").await.unwrap();
    assert_eq!(
        (st.status, st.error_code.as_deref(), st.retryable),
        (RunStatus::Failed, Some("cancelled"), true)
    );
    assert_eq!(
        engine.lease(lease("c")).await.unwrap().status,
        RunStatus::Acquired
    );
}

/// Extend moves the expiry to now + ttl; without it the lease lapses.
pub async fn extend_moves_expiry<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let id = engine.lease(lease("ext")).await.unwrap().lease_id.unwrap();
    clock.advance(Duration::from_secs(8));
    engine
        .extend(ExtendRequest::new("ext", &id, Some(TTL)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(8));
    assert_eq!(
        engine.lease(lease("ext")).await.unwrap().status,
        RunStatus::InProgress
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        engine.lease(lease("ext")).await.unwrap().status,
        RunStatus::Acquired
    );
}

/// Finished records stay readable for the retention period, then are gone (and purgeable).
pub async fn retention<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let id = engine.lease(lease("ret")).await.unwrap().lease_id.unwrap();
    engine
        .complete(CompleteRequest::new(
            "ret",
            &id,
            result(serde_json::json!({"a": 1})),
        ))
        .await
        .unwrap();
    assert!(
        engine
            .check_lock(lock("ret-lock", TTL))
            .await
            .unwrap()
            .locked
    );
    clock.advance(RETENTION - MS);
    assert_eq!(
        engine.status("ret").await.unwrap().status,
        RunStatus::Completed
    );
    clock.advance(MS);
    assert_eq!(
        engine.status("ret").await.unwrap().status,
        RunStatus::NotFound
    );
    assert_eq!(engine.result("ret").await.unwrap().result, None);
    assert!(
        engine.purge_expired().await.unwrap() >= 2,
        "the record and the expired lock are purged"
    );
    let fresh = engine.lease(lease("ret")).await.unwrap();
    assert_eq!(fresh.status, RunStatus::Acquired);
}

/// A key past retention acquires again even before the purge ran, and nothing stale revives.
pub async fn expired_record_reacquired_before_purge<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let old = engine.lease(lease("r2")).await.unwrap().lease_id.unwrap();
    engine
        .fail(FailRequest::new("r2", &old, "boom", false))
        .await
        .unwrap();
    clock.advance(RETENTION);
    let new = engine.lease(lease("r2")).await.unwrap();
    assert_eq!(new.status, RunStatus::Acquired);
    assert!(matches!(
        engine
            .complete(CompleteRequest::new("r2", &old, None))
            .await,
        Err(Error::LeaseLost { .. })
    ));
}

/// A waiter is woken by the completion (a store notification), not by its timeout.
pub async fn waiter_woken_on_completion<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let id = engine
        .lease(LeaseRequest::new("w").ttl(Duration::from_secs(120)))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .wait_status("w", Duration::from_secs(60))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    engine
        .complete(CompleteRequest::new("w", &id, None))
        .await
        .unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter must be woken by the write, long before its 60 s bound")
        .unwrap();
    assert_eq!(st.status, RunStatus::Completed);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Bad input is refused with a validation error and leaves nothing behind.
pub async fn bad_input_rejected<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let long = "k".repeat(257);
    let mut big = JsonMap::new();
    big.insert("blob".into(), "x".repeat(3000).into());
    let invalid = |r: crate::Result<_>| matches!(r, Err(Error::Validation(_)));
    for key in ["", " ", long.as_str()] {
        assert!(invalid(engine.check_lock(lock(key, TTL)).await.map(|_| ())));
        assert!(invalid(engine.lease(lease(key)).await.map(|_| ())));
        assert!(invalid(engine.status(key).await.map(|_| ())));
    }
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_secs(365 * 24 * 3600),
    ] {
        assert!(invalid(engine.check_lock(lock("k", ttl)).await.map(|_| ())));
        assert!(invalid(
            engine
                .lease(LeaseRequest::new("k").ttl(ttl))
                .await
                .map(|_| ())
        ));
    }
    let mut req = lock("k", TTL);
    req.metadata = Some(big.clone());
    assert!(invalid(engine.check_lock(req).await.map(|_| ())));
    assert!(invalid(
        engine.lease(lease("k").metadata(big)).await.map(|_| ())
    ));
    // Nothing was stored by the refused calls.
    assert!(engine.check_lock(lock("k", TTL)).await.unwrap().locked);
    assert_eq!(
        engine.lease(lease("k")).await.unwrap().status,
        RunStatus::Acquired
    );
}

/// Concurrent adds never take a counter past its limit; refusals change nothing.
pub async fn counter_limit_race<S: Store>(store: S) {
    let store = Arc::new(store);
    let (now, expires) = (1_000, 10_000);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .add_counter("c/race", 1, Some(10), now, expires)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut added = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            CounterAdd::Added(v) => added.push(v),
            CounterAdd::Refused(v) => assert_eq!(v, 10, "refused only at the limit"),
        }
    }
    added.sort_unstable();
    assert_eq!(
        added,
        (1..=10).collect::<Vec<_>>(),
        "each value is reached once"
    );
    assert_eq!(store.get_counter("c/race", now).await.unwrap(), 10);
    assert_eq!(
        store
            .add_counter("c/race", 5, None, now, expires)
            .await
            .unwrap(),
        CounterAdd::Added(15),
        "no limit, no refusal"
    );
}

/// A counter reads 0 once its window ended, and the next add opens a new window; negative
/// deltas stop at 0.
pub async fn counter_window<S: Store>(store: S) {
    assert_eq!(store.get_counter("c/w", 0).await.unwrap(), 0);
    assert_eq!(
        store.add_counter("c/w", 3, None, 100, 1_000).await.unwrap(),
        CounterAdd::Added(3)
    );
    assert_eq!(
        store.add_counter("c/w", 2, None, 200, 5_000).await.unwrap(),
        CounterAdd::Added(5),
        "a live counter keeps its window"
    );
    assert_eq!(store.get_counter("c/w", 999).await.unwrap(), 5);
    assert_eq!(
        store.get_counter("c/w", 1_000).await.unwrap(),
        0,
        "window over"
    );
    assert_eq!(
        store
            .add_counter("c/w", 1, Some(1), 1_000, 2_000)
            .await
            .unwrap(),
        CounterAdd::Added(1),
        "the old value does not count in the new window"
    );
    assert_eq!(
        store
            .add_counter("c/w", -4, Some(0), 1_500, 2_000)
            .await
            .unwrap(),
        CounterAdd::Added(0),
        "negative deltas are never refused and stop at 0"
    );
    assert_eq!(store.get_counter("c/other", 1_500).await.unwrap(), 0);
    assert!(store.purge_expired(2_000).await.unwrap() >= 1);
    assert_eq!(store.get_counter("c/w", 1_500).await.unwrap(), 0, "purged");
}

/// Logs keep the newest `cap` entries with increasing sequence numbers, page from either
/// end, and expire.
pub async fn log_cap_and_pages<S: Store>(store: S) {
    let entry = |i: u64| {
        let mut m = JsonMap::new();
        m.insert("i".into(), i.into());
        m
    };
    for i in 1..=5 {
        let seq = store
            .append_log("l/a", entry(i), 3, 100, 1_000)
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    let seqs = |p: crate::store::LogPage| p.entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    let newest = store.read_log("l/a", true, 0, 10, 100).await.unwrap();
    assert_eq!(newest.total, 3, "capped at 3");
    assert_eq!(newest.entries[0].value.get("i"), Some(&5.into()));
    assert_eq!(seqs(newest), [5, 4, 3]);
    assert_eq!(
        seqs(store.read_log("l/a", false, 1, 1, 100).await.unwrap()),
        [4]
    );
    assert_eq!(
        seqs(store.read_log("l/a", false, 5, 10, 100).await.unwrap()),
        Vec::<u64>::new()
    );
    let empty = store.read_log("l/none", true, 0, 10, 100).await.unwrap();
    assert_eq!((empty.total, empty.entries.len()), (0, 0));
    let expired = store.read_log("l/a", true, 0, 10, 1_000).await.unwrap();
    assert_eq!(expired.total, 0, "an expired log reads empty");
    let seq = store
        .append_log("l/a", entry(6), 3, 1_000, 2_000)
        .await
        .unwrap();
    let fresh = store.read_log("l/a", true, 0, 10, 1_000).await.unwrap();
    assert_eq!(fresh.total, 1, "an append after expiry starts afresh");
    assert_eq!(fresh.entries[0].seq, seq);
    assert!(seq > 5, "sequence numbers are not reused");
}

/// Two tenants of one store never see, wait on or release each other's keys and events.
pub async fn tenant_isolation<S: Store>(store: S) {
    let (root, _) = engine(store);
    let a = root
        .tenant(Account::tenant("a", Plan::unlimited()))
        .unwrap();
    let b = root
        .tenant(Account::tenant("b", Plan::unlimited()))
        .unwrap();
    let a_lock = a.check_lock(lock("k", TTL)).await.unwrap();
    assert!(a_lock.locked);
    assert!(
        !b.release_lock("k", None).await.unwrap(),
        "b cannot release a's lock"
    );
    assert!(
        !b.release_lock("k", a_lock.lock_id.as_deref())
            .await
            .unwrap(),
        "not even with a's lock id"
    );
    assert!(a.check_lock(lock("k", TTL)).await.unwrap().duplicate);
    assert!(b.check_lock(lock("k", TTL)).await.unwrap().locked);
    let la = a.lease(lease("job")).await.unwrap();
    assert_eq!(la.status, RunStatus::Acquired);
    assert_eq!(
        b.status("job").await.unwrap().status,
        RunStatus::NotFound,
        "b does not see a's lease"
    );
    let id = la.lease_id.unwrap();
    assert!(matches!(
        b.complete(CompleteRequest::new("job", &id, None)).await,
        Err(Error::LeaseLost { .. })
    ));
    assert_eq!(
        b.lease(lease("job")).await.unwrap().status,
        RunStatus::Acquired
    );
    a.post_event(RunEvent {
        run_id: "r1".into(),
        kind: "note".into(),
        ..RunEvent::default()
    })
    .await
    .unwrap();
    assert_eq!(a.run_timeline("r1", 10, 0).await.unwrap().total, 1);
    assert_eq!(b.run_timeline("r1", 10, 0).await.unwrap().total, 0);
    assert_eq!(b.usage(UsageKind::Make).await.unwrap().usage, 1);
    assert_eq!(a.usage(UsageKind::Make).await.unwrap().usage, 2);
    assert!(
        root.tenant(Account::tenant("../x", Plan::unlimited()))
            .is_err()
    );
}

/// A plan's monthly limits hold under concurrency; refusals are counted and leave nothing
/// behind; answers that acquire nothing are free.
pub async fn plan_limits<S: Store>(store: S) {
    let (root, clock) = engine(store);
    let plan = Plan::new("free").make_limit(3).ai_limit(2);
    let t = root.tenant(Account::tenant("free", plan)).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move { t.check_lock(lock(&format!("k{i}"), TTL)).await })
        })
        .collect();
    let (mut ok, mut over) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::OverLimit { detail }) => {
                over += 1;
                assert_eq!(detail["error"], "payment_required");
                assert_eq!(detail["plan"], "free");
                assert_eq!(detail["limit"], 3);
                assert_eq!(detail["usage"], 3);
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, over), (3, 13));
    let make = t.usage(UsageKind::Make).await.unwrap();
    assert_eq!(
        (
            make.usage,
            make.limit,
            make.blocked_total_month,
            make.requests_total_month
        ),
        (3, Some(3), 13, 16)
    );

    let first = t.lease(lease("j1")).await.unwrap();
    assert_eq!(
        (first.charged, first.usage, first.limit),
        (Some(1), Some(1), Some(2))
    );
    let busy = t.lease(lease("j1")).await.unwrap();
    assert_eq!(busy.status, RunStatus::InProgress);
    assert_eq!(
        (busy.charged, busy.usage),
        (Some(0), Some(1)),
        "polling is free"
    );
    assert_eq!(
        t.lease(lease("j2")).await.unwrap().status,
        RunStatus::Acquired
    );
    assert!(matches!(
        t.lease(lease("j3")).await,
        Err(Error::OverLimit { .. })
    ));
    assert_eq!(
        t.status("j3").await.unwrap().status,
        RunStatus::NotFound,
        "a refused acquisition changes nothing"
    );
    // At the limit, answers that acquire nothing still work: polling and replays are free.
    assert_eq!(
        t.lease(lease("j1")).await.unwrap().status,
        RunStatus::InProgress
    );
    let j2 = t.lease(lease("j2")).await;
    assert_eq!(j2.unwrap().status, RunStatus::InProgress);
    let all = t.usage_all().await.unwrap();
    assert_eq!(
        (
            all.ai.usage,
            all.ai.polling_total_month,
            all.ai.blocked_total_month
        ),
        (2, 3, 1)
    );
    assert_eq!(all.ai.requests_total_month, 6);
    let events = t.events(10, 0).await.unwrap();
    assert_eq!(events["data"][0]["type"], "limit_reached");

    // Next month the counters start again.
    clock.advance(Duration::from_secs(32 * 24 * 3600));
    assert!(t.check_lock(lock("k-next", TTL)).await.unwrap().locked);
    assert_eq!(t.usage(UsageKind::Make).await.unwrap().usage, 1);
}

/// The engine writes `run_started` and `run_finished`; posted events join the same
/// timeline, oldest first; the account log lists them newest first.
pub async fn run_timeline_events<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let mut md = JsonMap::new();
    md.insert("run_id".into(), "run-1".into());
    md.insert("agent_id".into(), "bot".into());
    let l = engine.lease(lease("job").metadata(md)).await.unwrap();
    engine
        .post_event(RunEvent {
            run_id: " run-1 ".into(),
            kind: "tool_call".into(),
            tool: Some("send_email".into()),
            ..RunEvent::default()
        })
        .await
        .unwrap();
    let mut req = CompleteRequest::new(
        "job",
        l.lease_id.unwrap(),
        result(serde_json::json!({"ok": 1})),
    );
    req.result_hash = Some("h".into());
    engine.complete(req.clone()).await.unwrap();
    engine.complete(req).await.unwrap();
    let t = engine.run_timeline("run-1", 100, 0).await.unwrap();
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["run_started", "tool_call", "run_finished"],
        "a retried complete writes no second run_finished"
    );
    assert_eq!(t.total, 3);
    assert_eq!(t.events[0].agent_id.as_deref(), Some("bot"));
    assert_eq!(t.events[2].status.as_deref(), Some("completed"));
    assert!(t.events.iter().all(|e| e.id.is_some() && e.ts.is_some()));
    assert_eq!(
        engine.run_timeline("run-1", 1, 1).await.unwrap().events[0].kind,
        "tool_call"
    );

    // Key-mode runs default their run id to the key; cancel reads as cancelled. A repeated
    // acquisition writes no second run_started.
    let run = engine
        .run(lease("report:1").acquisition_id("acq-run"))
        .await
        .unwrap();
    let again = engine
        .run(lease("report:1").acquisition_id("acq-run"))
        .await
        .unwrap();
    assert_eq!(again.lease_id, run.lease_id);
    engine
        .cancel(CancelRequest::new("report:1", run.lease_id.unwrap(), None))
        .await
        .unwrap();
    let t = engine.run_timeline("report:1", 100, 0).await.unwrap();
    assert_eq!(t.events.len(), 2);
    assert_eq!(t.events[1].status.as_deref(), Some("cancelled"));

    let recent = engine.events(2, 0).await.unwrap();
    assert_eq!(recent["total"], 5);
    assert_eq!(recent["data"][0]["type"], "run_finished");
    assert_eq!(recent["data"][0]["run_id"], "report:1");
    let runs = engine.runs(10, 0, None).await.unwrap();
    assert_eq!(runs["total"], 2);
    assert_eq!(runs["items"][0]["run_id"], "report:1");
    assert_eq!(runs["items"][1]["events_count"], 3);
    assert_eq!(engine.runs(10, 0, Some("run-")).await.unwrap()["total"], 1);
    for bad in ["", "  "] {
        assert!(matches!(
            engine.run_timeline(bad, 10, 0).await,
            Err(Error::Validation(_))
        ));
    }
    assert!(matches!(
        engine.run_timeline("run-1", 0, 0).await,
        Err(Error::Validation(_))
    ));
}

/// Generates one `#[tokio::test]` per conformance case for a store factory
/// (`|| async { store }`).
///
/// `optional: || async { Option<store> }` is for stores that need an outside service: a factory
/// that answers `None` (having said why) makes the case return without running.
#[macro_export]
macro_rules! store_conformance_tests {
    (optional: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            lock_claim_race, lock_expiry_edge, lock_release, lock_release_fenced, lease_claim_race,
            lease_repeated_acquisition,
            lease_expiry_edge, stale_lease_rejected, late_complete_accepted, completed_replays,
            fail_terminal_and_retryable, cancel_releases, extend_moves_expiry, retention,
            expired_record_reacquired_before_purge, waiter_woken_on_completion,
            bad_input_rejected, counter_limit_race, counter_window, log_cap_and_pages,
            tenant_isolation, plan_limits, run_timeline_events);
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(optional: || async {
            ::std::option::Option::Some(($make)().await)
        });
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let ::std::option::Option::Some(store) = ($make)().await else {
                    return;
                };
                $crate::conformance::$case(store).await;
            }
        )*
    };
}
