//! Check-lock through `RedisStore` against raw `SET key v NX PX 60000` on the same Redis,
//! through the same client library, both at 50 concurrent callers and in one run: the ratio
//! of their throughputs is the figure that counts. Needs `redis-server` (skipped without it).
//!
//! `cargo bench -p onceonly-runtime --features redis --bench redis`

// `criterion_group!` generates undocumented items.
#![allow(missing_docs)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onceonly_runtime::Engine;
use onceonly_runtime::models::CheckLockRequest;
use onceonly_runtime::store::{CounterAdd, LockClaim, RedisStore, Store};
use onceonly_runtime::testing::{self, RedisServer};

const CALLERS: u64 = 50;

/// A key never used before in this run, so every call takes the "first time" path.
fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench:{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `iters` calls of `op` spread over [`CALLERS`] concurrent tasks; the wall time of all.
async fn concurrently<F, Fut>(iters: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let op = op.clone();
            let calls = iters / CALLERS + u64::from(caller < iters % CALLERS);
            tokio::spawn(async move {
                for _ in 0..calls {
                    op().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a bench task panicked");
    }
    start.elapsed()
}

fn check_lock_vs_set_nx(c: &mut Criterion) {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (engine, raw) = rt.block_on(async {
        let store = RedisStore::connect(&server.url()).await.expect("connect");
        let raw = redis::Client::open(server.url())
            .expect("url")
            .get_connection_manager()
            .await
            .expect("connect");
        (Engine::new(store), raw)
    });

    let mut group = c.benchmark_group("redis_50_callers");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("engine_check_lock", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let engine = engine.clone();
            concurrently(iters, move || {
                let engine = engine.clone();
                async move {
                    let lock = engine.check_lock(CheckLockRequest::new(fresh_key()));
                    assert!(lock.await.expect("check-lock").locked);
                }
            })
        });
    });
    // The store alone (one script call), to tell its cost from the engine's other round trips.
    let store = rt.block_on(async {
        let url = server.url();
        RedisStore::builder(url)
            .prefix("store-only")
            .connect()
            .await
    });
    let store = std::sync::Arc::new(store.expect("connect"));
    group.bench_function("store_claim_lock", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = std::sync::Arc::clone(&store);
            concurrently(iters, move || {
                let store = std::sync::Arc::clone(&store);
                async move {
                    let now = 1_767_225_600_000;
                    let lock = testing::lock_entry("l", now, 60_000);
                    let claim = store.claim_lock(&fresh_key(), now, lock).await;
                    assert_eq!(claim.expect("claim"), LockClaim::Claimed);
                }
            })
        });
    });
    // One usage counter, as the engine bumps it twice per check-lock (month and day).
    group.bench_function("store_add_counter", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = std::sync::Arc::clone(&store);
            concurrently(iters, move || {
                let store = std::sync::Arc::clone(&store);
                async move {
                    let (now, end) = (1_767_225_600_000, 1_769_904_000_000);
                    let added = store.add_counter("usage", 1, None, now, end).await;
                    assert!(matches!(added.expect("add"), CounterAdd::Added(_)));
                }
            })
        });
    });
    group.bench_function("raw_set_nx_px", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let raw = raw.clone();
            concurrently(iters, move || {
                let mut raw = raw.clone();
                async move {
                    let set: Option<String> = redis::cmd("SET")
                        .arg(fresh_key())
                        .arg("v")
                        .arg("NX")
                        .arg("PX")
                        .arg(60_000)
                        .query_async(&mut raw)
                        .await
                        .expect("SET NX PX");
                    assert!(set.is_some());
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, check_lock_vs_set_nx);
criterion_main!(benches);
