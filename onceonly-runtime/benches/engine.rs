//! Embedded engine throughput, through the public client API, on one thread.
//!
//! Baseline in the same run: the cheapest possible claim, a `Mutex<HashMap<String, u64>>`
//! lookup-or-insert, so the figures read as "how many times the bare data structure".
//!
//! `cargo bench -p onceonly-runtime --bench engine`

#![allow(missing_docs)]

use std::collections::HashMap;
use std::future::IntoFuture;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};

/// Fresh keys are claimed in chunks, each on a new client, so the map stays small and the
/// figure is not about rehashing a map of millions.
const CHUNK: u64 = 50_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
    currency: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1));
    let map: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
    map.lock().unwrap().insert("stripe:evt_hot".to_owned(), 1);
    g.bench_function("mutex_hashmap_hit", |b| {
        b.iter(|| {
            let m = map.lock().unwrap();
            black_box(m.get(black_box("stripe:evt_hot")).copied())
        })
    });
    g.bench_function("mutex_hashmap_insert", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let map: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
                let n = CHUNK.min(iters - done);
                let keys: Vec<String> = (0..n).map(|i| format!("stripe:evt_{i}")).collect();
                let start = Instant::now();
                for k in &keys {
                    let mut m = map.lock().unwrap();
                    if !m.contains_key(k.as_str()) {
                        m.insert(k.clone(), 1);
                    }
                }
                spent += start.elapsed();
                done += n;
            }
            spent
        })
    });
    g.finish();
}

fn check_lock(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("check_lock");
    g.throughput(Throughput::Elements(1));

    let client = OnceOnly::memory();
    rt.block_on(client.check_lock("stripe:evt_hot").into_future())
        .unwrap();
    g.bench_function("duplicate", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(client.check_lock("stripe:evt_hot").await.unwrap()) })
    });

    g.bench_function("new_key", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let client = OnceOnly::memory();
                let n = CHUNK.min(iters - done);
                let keys: Vec<String> = (0..n).map(|i| format!("stripe:evt_{i}")).collect();
                let start = Instant::now();
                for k in keys {
                    let r = client.check_lock(k).await.unwrap();
                    debug_assert!(r.locked);
                    black_box(r);
                }
                spent += start.elapsed();
                done += n;
            }
            spent
        })
    });
    g.finish();
}

fn run_fn(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("run_fn");
    g.throughput(Throughput::Elements(1));
    let client = OnceOnly::memory();
    let receipt = Receipt {
        charge_id: "ch_3PqXk2".into(),
        cents: 4999,
        currency: "usd".into(),
    };
    let stored = receipt.clone();
    rt.block_on(
        client
            .ai()
            .run_fn("charge:order-1", || async move { Ok::<_, Error>(stored) })
            .into_future(),
    )
    .unwrap();
    g.bench_function("replay", |b| {
        b.to_async(&rt).iter(|| async {
            let r: Receipt = client
                .ai()
                .run_fn("charge:order-1", || async {
                    Err(Error::Validation("not replayed".into()))
                })
                .await
                .unwrap();
            black_box(r)
        })
    });
    g.bench_function("first_run", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let receipt = receipt.clone();
            async move {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let client = OnceOnly::memory();
                    let n = CHUNK.min(iters - done);
                    let keys: Vec<String> = (0..n).map(|i| format!("charge:order-{i}")).collect();
                    let start = Instant::now();
                    for k in keys {
                        let value = receipt.clone();
                        let r: Receipt = client
                            .ai()
                            .run_fn(k, || async move { Ok::<_, Error>(value) })
                            .await
                            .unwrap();
                        black_box(r);
                    }
                    spent += start.elapsed();
                    done += n;
                }
                spent
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = baseline, check_lock, run_fn
}
criterion_main!(benches);
