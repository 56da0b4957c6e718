//! The SQLite store against the shared conformance suite, on real files, plus what only a file
//! shows: several connections (as several processes would have) racing on it, waking each
//! other, and everything still there after the store is reopened.

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::Error;
use onceonly_runtime::store::{
    CounterAdd, Hooked, LeaseRecord, LockClaim, LockEntry, LogCaps, LogRef, SqliteStore, Store,
    StoreHooks,
};
use onceonly_runtime::testing;
use tempfile::TempDir;

/// Keeps a case's directory until its store is dropped.
struct KeepDir(#[allow(dead_code)] TempDir);

impl StoreHooks for KeepDir {}

onceonly_runtime::store_conformance_tests!(|| async {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("onceonly.db")).unwrap();
    Hooked::new(store, KeepDir(dir))
});

const NOW: u64 = 1_767_225_600_000;
const EVENTUALLY: Duration = Duration::from_secs(30);

fn lock(id: &str) -> LockEntry {
    testing::lock_entry(id, NOW, 60_000)
}

fn record(lease_id: &str) -> LeaseRecord {
    testing::in_progress_record(lease_id, NOW, 60_000)
}

/// Two stores on one file: two connections, as two processes would have.
fn two_stores() -> (TempDir, Arc<SqliteStore>, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    (dir, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_race_on_one_file_and_one_wins() {
    let (_dir, a, b) = two_stores();
    let racers = |n: usize| {
        (0..n).map(|i| {
            if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            }
        })
    };

    let claims: Vec<_> = racers(32)
        .enumerate()
        .map(|(i, s)| {
            tokio::spawn(async move { s.claim_lock("k", NOW, lock(&i.to_string())).await })
        })
        .collect();
    let mut claimed = 0;
    for c in claims {
        if c.await.unwrap().unwrap() == LockClaim::Claimed {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 1, "exactly one claim across both connections");

    let puts: Vec<_> = racers(32)
        .enumerate()
        .map(|(i, s)| {
            tokio::spawn(async move { s.put_record("r", None, record(&format!("l{i}"))).await })
        })
        .collect();
    let mut revs = Vec::new();
    for p in puts {
        revs.extend(p.await.unwrap().unwrap());
    }
    assert_eq!(revs.len(), 1, "exactly one create across both connections");

    // Compare-and-swap on the winner's revision: again exactly one success.
    let rev = revs[0];
    let swaps: Vec<_> = racers(32)
        .enumerate()
        .map(|(i, s)| {
            tokio::spawn(
                async move { s.put_record("r", Some(rev), record(&format!("s{i}"))).await },
            )
        })
        .collect();
    let mut swapped = 0;
    for s in swaps {
        if s.await.unwrap().unwrap().is_some() {
            swapped += 1;
        }
    }
    assert_eq!(swapped, 1);
    let seen_by_a = a.get_record("r").await.unwrap().unwrap();
    let seen_by_b = b.get_record("r").await.unwrap().unwrap();
    assert_eq!(
        seen_by_a, seen_by_b,
        "both connections read the same record"
    );
    assert!(seen_by_a.rev > rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_another_connections_write() {
    let (_dir, a, b) = two_stores();
    let mut sub = a.subscribe("k").await.unwrap();
    b.put_record("k", None, record("l1")).await.unwrap();
    tokio::time::timeout(EVENTUALLY, sub.changed())
        .await
        .expect("a's waiter is woken by b's commit");
    assert_eq!(
        a.get_record("k").await.unwrap().unwrap().value.lease_id,
        "l1"
    );

    // The watcher keeps going: a second write wakes a new waiter too.
    let rev = a.get_record("k").await.unwrap().unwrap().rev;
    let mut sub = a.subscribe("k").await.unwrap();
    b.put_record("k", Some(rev), record("l2")).await.unwrap();
    tokio::time::timeout(EVENTUALLY, sub.changed())
        .await
        .expect("woken by the second commit");
}

const CAPS: LogCaps = LogCaps {
    entries: 10,
    bytes: 1 << 20,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let rev = {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.claim_lock("lock", NOW, lock("l")).await.unwrap(),
            LockClaim::Claimed
        );
        let rev = store
            .put_record("rec", None, record("lease"))
            .await
            .unwrap();
        store
            .add_counter("ctr", 7, None, NOW, NOW + 60_000)
            .await
            .unwrap();
        let mut entry = onceonly_runtime::JsonMap::new();
        entry.insert("n".into(), 1.into());
        store
            .append_log(
                LogRef::topic("log", "run"),
                entry.clone(),
                CAPS,
                NOW,
                NOW + 60_000,
            )
            .await
            .unwrap();
        for key in ["gov/policy/a", "gov/policy/b", "gov/policy/gone"] {
            store.put_doc(key, entry.clone()).await.unwrap();
        }
        assert!(store.delete_doc("gov/policy/gone").await.unwrap());
        rev.unwrap()
    };

    let store = SqliteStore::open(&path).unwrap();
    assert!(matches!(
        store.claim_lock("lock", NOW, lock("m")).await.unwrap(),
        LockClaim::Held { .. }
    ));
    let rec = store.get_record("rec").await.unwrap().unwrap();
    assert_eq!((rec.rev, rec.value.lease_id.as_str()), (rev, "lease"));
    assert_eq!(store.get_counter("ctr", NOW).await.unwrap(), 7);
    let log = store
        .read_log(LogRef::whole("log"), true, 0, 10, NOW)
        .await
        .unwrap();
    assert_eq!((log.total, log.entries[0].seq), (1, 1));
    let topic = store
        .read_log(LogRef::topic("log", "run"), true, 0, 10, NOW)
        .await
        .unwrap();
    assert_eq!(
        (topic.total, topic.entries[0].seq),
        (1, 1),
        "the topic lasted too"
    );
    let docs = store.list_docs("gov/policy/", 10).await.unwrap();
    let keys: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["gov/policy/a", "gov/policy/b"],
        "the delete lasted too"
    );
    assert_eq!(docs[0].1.get("n"), Some(&1.into()));
    assert_eq!(
        store
            .add_counter("ctr", 1, Some(7), NOW, NOW + 60_000)
            .await
            .unwrap(),
        CounterAdd::Refused(7)
    );
    assert!(
        store
            .put_record("rec", None, record("other"))
            .await
            .unwrap()
            .is_none(),
        "the reopened record is there to conflict with"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(&path).expect_err("a newer schema is not read");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// A backlog larger than a purge slice goes in several short transactions, all of it: locks,
/// records and counters by the thousand, logs a few at a time with their entries.
#[tokio::test]
async fn a_backlog_is_purged_whole_in_slices() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("onceonly.db")).unwrap();
    for i in 0..2_500 {
        let k = format!("lock-{i}");
        assert!(matches!(
            store.claim_lock(&k, NOW, lock("l")).await.unwrap(),
            LockClaim::Claimed
        ));
    }
    for i in 0..1_200 {
        let k = format!("rec-{i}");
        store
            .put_record(&k, None, record("r"))
            .await
            .unwrap()
            .unwrap();
    }
    for i in 0..20 {
        let log = format!("log-{i}");
        for n in 0..3 {
            let mut entry = onceonly_runtime::JsonMap::new();
            entry.insert("n".into(), n.into());
            store
                .append_log(LogRef::whole(&log), entry, CAPS, NOW, NOW + 1_000)
                .await
                .unwrap();
        }
    }
    // Past every deadline: locks (60 s), records (kept an hour after a 60 s lease), logs.
    let later = NOW + 2 * 3_600_000;
    assert_eq!(
        store.purge_expired(later).await.unwrap(),
        2_500 + 1_200 + 20
    );
    assert_eq!(store.purge_expired(later).await.unwrap(), 0, "nothing left");
    for i in 0..20 {
        let page = store
            .read_log(LogRef::whole(&format!("log-{i}")), true, 0, 10, NOW)
            .await
            .unwrap();
        assert_eq!(page.total, 0, "log-{i}'s entries went with it");
    }
}
