//! Check-lock through `RedisStore` against raw `SET key v NX PX 60000` on the same Redis,
//! through the same client library, both at 50 concurrent callers and in one run: the ratio
//! of their throughputs is the figure that counts. Needs `redis-server` (skipped without it).
//!
//! It also runs `redis-benchmark -c 50 -n 200000 -r 100000000 SET __rand_int__ v NX PX 60000`
//! against the same server (when installed) and prints its operations per second, the baseline
//! of the check-lock ratio; and it replays the three sequential round trips a check-lock made
//! before usage counters moved together (`store_three_round_trips`), to show the difference in
//! the same run.
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
use onceonly_runtime::store::{CounterAdd, CounterDelta, LockClaim, RedisStore, Store};
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
    // The month and day usage counters in one call, as the engine charges a check-lock.
    group.bench_function("store_add_counters", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = std::sync::Arc::clone(&store);
            concurrently(iters, move || {
                let store = std::sync::Arc::clone(&store);
                async move {
                    let (now, end) = (1_767_225_600_000, 1_769_904_000_000);
                    let adds = [usage("u#make/m", end), usage("u#make/d", end)];
                    let added = store.add_counters(&adds, now).await;
                    assert!(matches!(added.expect("add"), CounterAdd::Added(_)));
                }
            })
        });
    });
    // The store traffic of a check-lock before: month counter, day counter, claim, one by one.
    group.bench_function("store_three_round_trips", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = std::sync::Arc::clone(&store);
            concurrently(iters, move || {
                let store = std::sync::Arc::clone(&store);
                async move {
                    let (now, end) = (1_767_225_600_000, 1_769_904_000_000);
                    for key in ["u#make/m", "u#make/d"] {
                        let added = store.add_counters(&[usage(key, end)], now).await;
                        assert!(matches!(added.expect("add"), CounterAdd::Added(_)));
                    }
                    let lock = testing::lock_entry("l", now, 60_000);
                    let claim = store.claim_lock(&fresh_key(), now, lock).await;
                    assert_eq!(claim.expect("claim"), LockClaim::Claimed);
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
    redis_benchmark(server.port());
}

fn usage(key: &str, end: u64) -> CounterDelta<'_> {
    CounterDelta {
        key,
        delta: 1,
        limit: None,
        expires_at_ms: end,
    }
}

/// `redis-benchmark`'s `SET NX PX` at the same concurrency, printed for the ratio.
fn redis_benchmark(port: u16) {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-c",
            &CALLERS.to_string(),
            "-n",
            "200000",
            "-r",
            "100000000",
            "-q",
        ])
        .args(["SET", "__rand_int__", "v", "NX", "PX", "60000"])
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let last = text.rsplit('\r').next().unwrap_or_default().trim();
            println!("redis-benchmark -c {CALLERS} SET __rand_int__ v NX PX 60000: {last}");
        }
        Err(e) => println!("redis-benchmark not run: {e}"),
    }
}

criterion_group!(benches, check_lock_vs_set_nx);
criterion_main!(benches);
