//! What running SQLite off the async runtime costs: `SqliteStore` primitives (a hop to tokio's
//! blocking pool per call) against the same SQL run inline on one connection, in one run.
//!
//! `cargo bench -p onceonly-runtime --features sqlite --bench sqlite`

// `criterion_group!` generates undocumented items.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use onceonly_runtime::store::{SqliteStore, Store};
use onceonly_runtime::testing;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

const NOW: u64 = 1_767_225_600_000;

fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("k{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The claim as the store runs it, inline: read the lock, insert it, commit (one fsync).
fn claim_inline(conn: &mut Connection, key: &str) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let held: Option<i64> = tx
        .prepare_cached("SELECT expires_at_ms FROM locks WHERE key = ?1")
        .unwrap()
        .query_row([key], |r| r.get(0))
        .optional()
        .unwrap();
    assert!(held.is_none());
    tx.prepare_cached(
        "INSERT OR REPLACE INTO locks (key, lock_id, first_seen_at_ms, expires_at_ms, metadata) \
         VALUES (?1, ?2, ?3, ?4, NULL)",
    )
    .unwrap()
    .execute(params![key, "l", NOW as i64, NOW as i64 + 60_000])
    .unwrap();
    tx.commit().unwrap();
}

fn read_inline(conn: &Connection, key: &str) -> String {
    conn.prepare_cached("SELECT record FROM records WHERE key = ?1")
        .unwrap()
        .query_row([key], |r| r.get(0))
        .unwrap()
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.put_record(
        "read-me",
        None,
        testing::in_progress_record("l", NOW, 60_000),
    ))
    .unwrap();

    let mut group = c.benchmark_group("sqlite");
    group.bench_function("store_get_record", |b| {
        b.to_async(&rt)
            .iter(|| async { store.get_record("read-me").await.unwrap().unwrap() });
    });
    group.bench_function("inline_get_record", |b| {
        b.iter(|| {
            let json = read_inline(&raw, "read-me");
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        });
    });
    group.bench_function("store_claim_lock", |b| {
        b.to_async(&rt).iter(|| async {
            let lock = testing::lock_entry("l", NOW, 60_000);
            store.claim_lock(&fresh_key(), NOW, lock).await.unwrap()
        });
    });
    group.bench_function("inline_claim_lock", |b| {
        b.iter(|| claim_inline(&mut raw, &fresh_key()));
    });
    group.finish();
}

criterion_group!(benches, sqlite);
criterion_main!(benches);
