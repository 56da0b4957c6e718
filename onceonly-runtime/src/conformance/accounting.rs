//! Counters, capped logs, tenants and plan limits.

use super::*;

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

fn delta(key: &str, delta: i64, limit: Option<u64>, expires_at_ms: u64) -> CounterDelta<'_> {
    CounterDelta {
        key,
        delta,
        limit,
        expires_at_ms,
    }
}

/// `add_counters` changes every counter of a call or none: one refusal leaves all unchanged;
/// each counter keeps its own window; a key named twice adds up; the answer is the first
/// counter's value.
pub async fn counters_all_or_nothing<S: Store>(store: S) {
    let (month, day) = ("g#month", "g#day");
    // The day's window ends at 2_000; a new one opened then ends at 4_000.
    let both = |d: i64, limit| [delta(month, d, limit, 10_000), delta(day, d, None, 2_000)];
    let next_day = |d: i64| [delta(month, d, None, 10_000), delta(day, d, None, 4_000)];
    assert_eq!(
        store.add_counters(&both(2, Some(3)), 100).await.unwrap(),
        CounterAdd::Added(2)
    );
    assert_eq!(
        store.add_counters(&both(2, Some(3)), 200).await.unwrap(),
        CounterAdd::Refused(2),
        "the first counter would pass its limit"
    );
    let day_limited = [delta(month, 1, None, 10_000), delta(day, 1, Some(2), 2_000)];
    assert_eq!(
        store.add_counters(&day_limited, 300).await.unwrap(),
        CounterAdd::Refused(2),
        "a later counter refuses: the first is not changed either"
    );
    assert_eq!(store.get_counter(month, 300).await.unwrap(), 2);
    assert_eq!(store.get_counter(day, 300).await.unwrap(), 2);
    // The day's window ends; the month's goes on.
    assert_eq!(
        store.add_counters(&next_day(1), 2_000).await.unwrap(),
        CounterAdd::Added(3)
    );
    assert_eq!(store.get_counter(day, 2_000).await.unwrap(), 1);
    assert_eq!(
        store.add_counters(&next_day(-5), 2_100).await.unwrap(),
        CounterAdd::Added(0),
        "refunds stop at 0 and are never refused"
    );
    assert_eq!(store.get_counter(day, 2_100).await.unwrap(), 0);
    let twice = [
        delta("g#twice", 2, Some(3), 10_000),
        delta("g#twice", 2, Some(3), 10_000),
    ];
    assert_eq!(
        store.add_counters(&twice, 100).await.unwrap(),
        CounterAdd::Refused(2),
        "the second add of a key sees the first"
    );
    assert_eq!(store.get_counter("g#twice", 100).await.unwrap(), 0);
    let sum = [
        delta("g#sum", 1, Some(3), 10_000),
        delta("g#sum", 2, Some(3), 10_000),
    ];
    assert!(matches!(
        store.add_counters(&sum, 100).await.unwrap(),
        CounterAdd::Added(_)
    ));
    assert_eq!(
        store.get_counter("g#sum", 100).await.unwrap(),
        3,
        "both adds of a key count"
    );
    assert_eq!(
        store.add_counters(&[], 100).await.unwrap(),
        CounterAdd::Added(0)
    );
}

/// Concurrent `add_counters` never take the limited counter past its limit, and the counters
/// of one call move together.
pub async fn counters_group_race<S: Store>(store: S) {
    let store = Arc::new(store);
    let adds = [
        delta("r#month", 1, Some(10), 100_000),
        delta("r#day", 1, None, 50_000),
    ];
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.add_counters(&adds, 1_000).await.unwrap() })
        })
        .collect();
    let mut added = Vec::new();
    for t in tasks {
        if let CounterAdd::Added(v) = t.await.unwrap() {
            added.push(v);
        }
    }
    added.sort_unstable();
    assert_eq!(added, (1..=10).collect::<Vec<_>>());
    assert_eq!(store.get_counter("r#month", 1_000).await.unwrap(), 10);
    assert_eq!(store.get_counter("r#day", 1_000).await.unwrap(), 10);
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

fn log_entry(i: u64) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("i".into(), i.into());
    m
}

fn seqs(page: &LogPage) -> Vec<u64> {
    page.entries.iter().map(|e| e.seq).collect()
}

/// Caps that never bind, for cases about something else.
const ROOMY: LogCaps = LogCaps {
    entries: 1_000,
    bytes: 1 << 20,
};

/// Logs keep the newest `entries` entries with increasing sequence numbers, page from either
/// end, and expire.
pub async fn log_cap_and_pages<S: Store>(store: S) {
    let caps = LogCaps {
        entries: 3,
        ..ROOMY
    };
    let log = LogRef::whole("l/a");
    for i in 1..=5 {
        let seq = store
            .append_log(log, log_entry(i), caps, 100, 1_000)
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    let newest = store.read_log(log, true, 0, 10, 100).await.unwrap();
    assert_eq!(newest.total, 3, "capped at 3");
    assert_eq!(newest.entries[0].value.get("i"), Some(&5.into()));
    assert_eq!(seqs(&newest), [5, 4, 3]);
    assert_eq!(
        seqs(&store.read_log(log, false, 1, 1, 100).await.unwrap()),
        [4]
    );
    assert!(seqs(&store.read_log(log, false, 5, 10, 100).await.unwrap()).is_empty());
    let empty = store
        .read_log(LogRef::whole("l/none"), true, 0, 10, 100)
        .await
        .unwrap();
    assert_eq!((empty.total, empty.entries.len()), (0, 0));
    let expired = store.read_log(log, true, 0, 10, 1_000).await.unwrap();
    assert_eq!(expired.total, 0, "an expired log reads empty");
    let seq = store
        .append_log(log, log_entry(6), caps, 1_000, 2_000)
        .await
        .unwrap();
    let fresh = store.read_log(log, true, 0, 10, 1_000).await.unwrap();
    assert_eq!(fresh.total, 1, "an append after expiry starts afresh");
    assert_eq!(fresh.entries[0].seq, seq);
    assert!(seq > 5, "sequence numbers are not reused");
}

/// A log keeps at most `bytes` bytes of entry JSON: the oldest go first, the newest always
/// stays, however large.
pub async fn log_byte_cap<S: Store>(store: S) {
    let entry = |i: u64, len: usize| {
        let mut m = log_entry(i);
        m.insert("pad".into(), "x".repeat(len).into());
        m
    };
    // Each entry is {"i":N,"pad":"x…"}: 16 bytes of JSON plus the padding (N < 10).
    let size = |len: usize| 16 + len;
    let caps = LogCaps {
        entries: 100,
        bytes: 3 * size(85),
    };
    let log = LogRef::whole("l/bytes");
    for i in 1..=5 {
        store
            .append_log(log, entry(i, 85), caps, 100, 1_000)
            .await
            .unwrap();
    }
    let page = store.read_log(log, false, 0, 10, 100).await.unwrap();
    assert_eq!(
        seqs(&page),
        [3, 4, 5],
        "three entries of 100 bytes fit 300 bytes"
    );
    // One byte over the cap with the next entry: the two oldest must go.
    store
        .append_log(log, entry(6, 86), caps, 100, 1_000)
        .await
        .unwrap();
    let page = store.read_log(log, false, 0, 10, 100).await.unwrap();
    assert_eq!(seqs(&page), [5, 6]);
    // An entry larger than the whole cap stays alone.
    store
        .append_log(log, entry(7, 1_000), caps, 100, 1_000)
        .await
        .unwrap();
    let page = store.read_log(log, false, 0, 10, 100).await.unwrap();
    assert_eq!((page.total, seqs(&page)), (1, vec![7]));
    // The byte count starts again after expiry.
    for i in 1..=3 {
        store
            .append_log(log, entry(i, 85), caps, 1_000, 2_000)
            .await
            .unwrap();
    }
    let page = store.read_log(log, false, 0, 10, 1_000).await.unwrap();
    assert_eq!(seqs(&page), [8, 9, 10]);
}

/// Topics are views of their log: a topic pages from either end with its own total, and the
/// log's caps trim its entries like any other, so no number of topics grows the log.
pub async fn log_topics<S: Store>(store: S) {
    let caps = LogCaps {
        entries: 6,
        ..ROOMY
    };
    let key = "l/topics";
    // seq: 1 a, 2 b, 3 a, 4 (none), 5 a, 6 b, 7 c, 8 a
    let topics = [
        Some("a"),
        Some("b"),
        Some("a"),
        None,
        Some("a"),
        Some("b"),
        Some("c"),
        Some("a"),
    ];
    for (i, topic) in topics.iter().enumerate() {
        let log = LogRef { key, topic: *topic };
        let seq = store
            .append_log(log, log_entry(i as u64 + 1), caps, 100, 1_000)
            .await
            .unwrap();
        assert_eq!(seq, i as u64 + 1);
    }
    let read = |topic: &'static str, newest: bool, offset: usize, limit: usize| {
        let store = &store;
        async move {
            store
                .read_log(LogRef::topic(key, topic), newest, offset, limit, 100)
                .await
                .unwrap()
        }
    };
    // Seqs 1 and 2 are trimmed (cap 6): topic a keeps 3, 5, 8; b keeps 6; c keeps 7.
    let a = read("a", false, 0, 10).await;
    assert_eq!((a.total, seqs(&a)), (3, vec![3, 5, 8]));
    assert_eq!(
        a.entries[0].value.get("i"),
        Some(&3.into()),
        "entries keep their values"
    );
    assert_eq!(seqs(&read("a", true, 0, 10).await), [8, 5, 3]);
    assert_eq!(seqs(&read("a", false, 1, 1).await), [5]);
    assert_eq!(seqs(&read("a", true, 1, 5).await), [5, 3]);
    assert!(read("a", false, 3, 5).await.entries.is_empty());
    assert_eq!(
        read("a", false, 0, 0).await.total,
        3,
        "limit 0 still counts"
    );
    let b = read("b", false, 0, 10).await;
    assert_eq!((b.total, seqs(&b)), (1, vec![6]));
    assert_eq!(read("nobody", false, 0, 10).await.total, 0);
    let whole = store
        .read_log(LogRef::whole(key), false, 0, 10, 100)
        .await
        .unwrap();
    assert_eq!(
        seqs(&whole),
        [3, 4, 5, 6, 7, 8],
        "the whole log has every topic and none"
    );
    // Trimming the rest of b empties its topic; a new b entry starts it again.
    for i in 9..=12 {
        store
            .append_log(LogRef::topic(key, "c"), log_entry(i), caps, 100, 1_000)
            .await
            .unwrap();
    }
    assert_eq!(read("b", false, 0, 10).await.total, 0);
    assert_eq!(seqs(&read("a", false, 0, 10).await), [8]);
    store
        .append_log(LogRef::topic(key, "b"), log_entry(13), caps, 100, 1_000)
        .await
        .unwrap();
    let b = read("b", true, 0, 10).await;
    assert_eq!((b.total, seqs(&b)), (1, vec![13]));
    let c = read("c", false, 0, 10).await;
    assert_eq!(
        (c.total, seqs(&c)),
        (4, vec![9, 10, 11, 12]),
        "seq 7 went with the cap"
    );
    // Expiry empties every topic.
    store
        .append_log(LogRef::topic(key, "a"), log_entry(14), caps, 1_000, 2_000)
        .await
        .unwrap();
    let a = store
        .read_log(LogRef::topic(key, "a"), false, 0, 10, 1_000)
        .await
        .unwrap();
    assert_eq!((a.total, seqs(&a)), (1, vec![14]));
    let c = store
        .read_log(LogRef::topic(key, "c"), false, 0, 10, 1_000)
        .await
        .unwrap();
    assert_eq!(c.total, 0);
}

/// Random appends, reads and expiries against a plain model of a capped, topic-tagged log:
/// every read agrees with the model (seed fixed, so a failure repeats).
pub async fn log_model<S: Store>(store: S) {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    struct Kept {
        seq: u64,
        topic: Option<&'static str>,
        size: usize,
        step: u64,
    }
    let caps = LogCaps {
        entries: 9,
        bytes: 600,
    };
    let topics = [None, Some("a"), Some("b"), Some("c"), Some("dd")];
    let mut rng = StdRng::seed_from_u64(7);
    let (mut model, mut last_seq, mut now, mut expires) = (Vec::<Kept>::new(), 0u64, 100u64, 0u64);
    for step in 0..400 {
        if rng.random_bool(0.02) {
            now = expires; // the log expires
        }
        if rng.random_bool(0.6) {
            let topic = topics[rng.random_range(0..topics.len())];
            let mut value = log_entry(step);
            value.insert("p".into(), "x".repeat(rng.random_range(0..150)).into());
            let size = serde_json::to_string(&value).unwrap().len();
            let log = LogRef {
                key: "l/model",
                topic,
            };
            let seq = store
                .append_log(log, value, caps, now, now + 1_000)
                .await
                .unwrap();
            if expires <= now {
                model.clear();
            }
            last_seq += 1;
            expires = now + 1_000;
            assert_eq!(seq, last_seq, "step {step}: sequence numbers");
            model.push(Kept {
                seq,
                topic,
                size,
                step,
            });
            while model.len() > 1
                && (model.len() > caps.entries
                    || model.iter().map(|k| k.size).sum::<usize>() > caps.bytes)
            {
                model.remove(0);
            }
        } else {
            let topic = topics[rng.random_range(0..topics.len())];
            let (newest, offset, limit) = (
                rng.random_bool(0.5),
                rng.random_range(0..6),
                rng.random_range(0..6),
            );
            let page = store
                .read_log(
                    LogRef {
                        key: "l/model",
                        topic,
                    },
                    newest,
                    offset,
                    limit,
                    now,
                )
                .await
                .unwrap();
            let live = expires > now;
            let mut want: Vec<&Kept> = model
                .iter()
                .filter(|k| live && (topic.is_none() || k.topic == topic))
                .collect();
            let total = want.len() as u64;
            if newest {
                want.reverse();
            }
            let want: Vec<&Kept> = want.into_iter().skip(offset).take(limit).collect();
            assert_eq!(
                (page.total, seqs(&page)),
                (total, want.iter().map(|k| k.seq).collect::<Vec<_>>()),
                "step {step}: read {topic:?} newest={newest} offset={offset} limit={limit}"
            );
            for (entry, kept) in page.entries.iter().zip(&want) {
                assert_eq!(entry.value.get("i"), Some(&kept.step.into()), "step {step}");
            }
        }
        now += 1;
    }
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
            Err(Error::OverLimit(refusal)) => {
                over += 1;
                assert_eq!(refusal.plan.as_deref(), Some("free"));
                assert_eq!(refusal.kind, Some(UsageKind::Make));
                assert_eq!((refusal.limit, refusal.usage), (Some(3), Some(3)));
                assert_eq!(refusal.period.as_deref(), Some("2026-01"));
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
    assert_eq!(events.data[0].kind, "limit_reached");
    assert_eq!(events.data[0].extra["kind"], "ai");

    // Next month the counters start again.
    clock.advance(Duration::from_secs(32 * 24 * 3600));
    assert!(t.check_lock(lock("k-next", TTL)).await.unwrap().locked);
    assert_eq!(t.usage(UsageKind::Make).await.unwrap().usage, 1);
}
