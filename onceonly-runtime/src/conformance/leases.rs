//! Leases: acquisition, fencing, the holder operations, retention, and bad input.

use super::*;

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

/// Compare-and-swap on a record that exists: of many writers holding its revision exactly one
/// wins, and a write with a stale, an unknown or no revision never lands. (The engine always
/// writes with the revision it just read, so the engine-level cases alone would not notice a
/// store that ignores a mismatched revision.)
pub async fn record_revision_race<S: Store>(store: S) {
    let store = Arc::new(store);
    const NOW: u64 = 1_000_000;
    let rec = |id: &str| crate::testing::in_progress_record(id, NOW, 60_000);
    let first = store.put_record("cas", None, rec("a")).await.unwrap();
    let rev = first.expect("the key was absent");
    assert_eq!(
        store.put_record("cas", None, rec("again")).await.unwrap(),
        None,
        "a create over an existing record"
    );
    let writers: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let won = store
                    .put_record("cas", Some(rev), rec(&format!("w{i}")))
                    .await
                    .unwrap();
                won.map(|new_rev| (i, new_rev))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for w in writers {
        winners.extend(w.await.unwrap());
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer of revision {rev}: {winners:?}"
    );
    let (winner, new_rev) = winners[0];
    assert_ne!(new_rev, rev);
    let stored = store.get_record("cas").await.unwrap().unwrap();
    assert_eq!(stored.rev, new_rev);
    assert_eq!(stored.value.lease_id, format!("w{winner}"));
    // The old revision is stale now, and a revision never handed out matches nothing.
    for stale in [rev, new_rev.wrapping_add(1_000_003)] {
        assert_eq!(
            store
                .put_record("cas", Some(stale), rec("late"))
                .await
                .unwrap(),
            None,
            "revision {stale}"
        );
    }
    assert_eq!(
        store
            .get_record("cas")
            .await
            .unwrap()
            .unwrap()
            .value
            .lease_id,
        format!("w{winner}"),
        "the refused writes changed nothing"
    );
    // A revision of another key does not fit this one.
    let other = store
        .put_record("cas-other", None, rec("o"))
        .await
        .unwrap()
        .unwrap();
    if other != new_rev {
        assert_eq!(
            store
                .put_record("cas", Some(other), rec("cross"))
                .await
                .unwrap(),
            None
        );
    }
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

/// A holder past its TTL can no longer complete or extend, even while nobody else acquired.
pub async fn late_complete_refused<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let a = engine.lease(lease("late")).await.unwrap().lease_id.unwrap();
    // At the deadline the key reads as a retryable failure, with nobody acquiring it.
    clock.advance(TTL);
    let st = engine.status("late").await.unwrap();
    assert_eq!(
        (st.status, st.error_code.as_deref(), st.retryable),
        (RunStatus::Failed, Some("lease_expired"), true)
    );
    clock.advance(TTL * 2);
    // The late holder cannot turn that failure into a completion, nor revive its lease.
    let late = engine
        .complete(CompleteRequest::new(
            "late",
            &a,
            result(serde_json::json!({"ok": true})),
        ))
        .await;
    assert!(matches!(late, Err(Error::LeaseLost { .. })), "{late:?}");
    let revived = engine.extend(ExtendRequest::new("late", &a, None)).await;
    assert!(
        matches!(revived, Err(Error::LeaseLost { .. })),
        "{revived:?}"
    );
    assert_eq!(
        engine.status("late").await.unwrap().status,
        RunStatus::Failed
    );
    // A new acquisition is what moves the key on.
    let b = engine.lease(lease("late")).await.unwrap();
    assert_eq!(b.status, RunStatus::Acquired);
    let lease_b = b.lease_id.unwrap();
    engine
        .complete(CompleteRequest::new("late", &lease_b, None))
        .await
        .unwrap();
    assert_eq!(
        engine.status("late").await.unwrap().status,
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
        .complete(req.clone())
        .await
        .expect("a retried complete succeeds");
    // The same lease completing with another result is refused; the first one stands.
    let mut other = req.clone();
    other.result = result(serde_json::json!({"receipt": "r_2"}));
    let conflict = engine.complete(other).await;
    assert!(
        matches!(conflict, Err(Error::Conflict { .. })),
        "{conflict:?}"
    );
    let mut rehashed = req;
    rehashed.result_hash = Some("h2".into());
    assert!(matches!(
        engine.complete(rehashed).await,
        Err(Error::Conflict { .. })
    ));
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
    // Ending the same lease another way contradicts the completion: a conflict, not a lost
    // lease. Extending an ended lease finds nothing held.
    assert!(matches!(
        engine
            .fail(FailRequest::new("done", &id, "late", false))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        engine.cancel(CancelRequest::new("done", &id, None)).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        engine.extend(ExtendRequest::new("done", &id, None)).await,
        Err(Error::LeaseLost { .. })
    ));
    assert_eq!(
        engine.status("done").await.unwrap().status,
        RunStatus::Completed
    );
}

/// A terminal failure sticks; a retryable one releases the key.
pub async fn fail_terminal_and_retryable<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let id = engine.lease(lease("term")).await.unwrap().lease_id.unwrap();
    engine
        .fail(FailRequest::new("term", &id, "card_declined", false))
        .await
        .unwrap();
    // Repeating the same failure is a no-op; another code is a conflict and changes nothing.
    engine
        .fail(FailRequest::new("term", &id, "card_declined", false))
        .await
        .expect("a retried fail succeeds");
    let other = engine
        .fail(FailRequest::new("term", &id, "fraud", false))
        .await;
    assert!(matches!(other, Err(Error::Conflict { .. })), "{other:?}");
    // So is a completion of the failed lease.
    let completed = engine
        .complete(CompleteRequest::new("term", &id, None))
        .await;
    assert!(
        matches!(completed, Err(Error::Conflict { .. })),
        "{completed:?}"
    );
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
