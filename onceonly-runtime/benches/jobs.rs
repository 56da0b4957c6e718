//! Queued runs and workers: drain throughput and claim latency with 1, 2 and 4 workers, on the
//! memory store and on `RedisStore`, in one run. The baseline is 1 worker on the memory store.
//!
//! - `jobs_throughput/<store>/<n>_workers`: a batch of [`BATCH`] runs is queued with key-mode
//!   `ai().run` while `n` workers (concurrency 1 each, a handler that returns at once) execute
//!   them; one iteration lasts from the first `run` until every run of the batch reads
//!   completed. Criterion's elements per second are runs per second.
//! - `jobs_throughput_5ms/<store>/<n>_workers`: the same with batches of [`WORK_BATCH`] runs
//!   whose handler works (sleeps) for 5 ms, as a job that waits on an API or a database does:
//!   how far more workers help once the handler, not the queue, takes the time.
//! - `jobs_claim_latency/<store>/<n>_workers`: with `n` idle workers waiting for a claim, the time
//!   from `ai().run` to the handler starting. The run is then waited for, untimed, so the
//!   workers are idle again for the next one.
//!
//! The workers live in this process, each over its own client: on Redis that is its own
//! connection and its own pub/sub listener, as a separate process would have. Redis cases need
//! `redis-server` (skipped without it).
//!
//! `cargo bench -p onceonly-runtime --features redis --bench jobs`

// `criterion_group!` generates undocumented items.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use onceonly_runtime::OnceOnly;
use onceonly_runtime::ai::Job;
use onceonly_runtime::models::RunStatus;
use onceonly_runtime::testing::RedisServer;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

/// Runs queued per throughput iteration, with a handler that returns at once.
const BATCH: u64 = 200;
/// The work of a handler that stands in for a real job (an API call, a query).
const WORK: Duration = Duration::from_millis(5);
/// Runs queued per iteration with handlers that work for [`WORK`].
const WORK_BATCH: u64 = 50;
const WORKERS: [usize; 3] = [1, 2, 4];
const WAIT: Duration = Duration::from_secs(60);

/// A prefix no earlier bench function used, so its workers see only its own runs.
fn fresh_prefix(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{what}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Where the runs are stored: every client of one store shares its runs.
enum Store {
    Memory(OnceOnly),
    Redis(String),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    async fn client(&self) -> OnceOnly {
        match self {
            Store::Memory(client) => client.clone(),
            Store::Redis(url) => OnceOnly::redis(url).await.expect("connect to Redis"),
        }
    }
}

/// `n` workers serving `prefix*`: each execution calls `on_start`, then works for `work`.
struct Workers {
    stops: Vec<oneshot::Sender<()>>,
    serving: Vec<tokio::task::JoinHandle<onceonly_runtime::Result<()>>>,
}

impl Workers {
    async fn start<F>(store: &Store, prefix: &str, n: usize, work: Duration, on_start: F) -> Workers
    where
        F: Fn(Job) + Clone + Send + Sync + 'static,
    {
        let (mut stops, mut serving) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (stop, stopped) = oneshot::channel::<()>();
            let on_start = on_start.clone();
            let worker = store
                .client()
                .await
                .ai()
                .worker(format!("{prefix}*"))
                .with_graceful_shutdown(async move {
                    stopped.await.ok();
                });
            serving.push(tokio::spawn(worker.serve(move |job: Job| {
                on_start(job);
                async move {
                    if !work.is_zero() {
                        tokio::time::sleep(work).await;
                    }
                    Ok::<_, std::convert::Infallible>(())
                }
            })));
            stops.push(stop);
        }
        Workers { stops, serving }
    }

    async fn stop(self) {
        drop(self.stops);
        for serving in self.serving {
            serving.await.expect("a worker task").expect("a worker");
        }
    }
}

/// Waits until `key`'s run completed.
async fn completed(client: &OnceOnly, key: &str) {
    let done = client.ai().wait(key).timeout(WAIT).await.expect("wait");
    assert_eq!(done.status, RunStatus::Completed, "{key}");
}

/// Drain time of batches of `batch` runs whose handlers work for `work` each.
fn throughput(c: &mut Criterion, rt: &Runtime, store: &Store, work: Duration, batch: u64) {
    let name = match work.as_millis() {
        0 => "jobs_throughput".to_owned(),
        ms => format!("jobs_throughput_{ms}ms"),
    };
    let mut group = c.benchmark_group(format!("{name}/{}", store.name()));
    group.throughput(Throughput::Elements(batch));
    // An iteration lasts milliseconds to a second: equal samples, not criterion's linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    for n in WORKERS {
        let prefix = fresh_prefix("tput");
        let (client, workers) = rt.block_on(async {
            let workers = Workers::start(store, &prefix, n, work, |_: Job| {}).await;
            (store.client().await, workers)
        });
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::from_parameter(format!("{n}_workers")), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (client, prefix, next) = (&client, &prefix, &next);
                async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let keys: Vec<String> = (0..batch)
                            .map(|_| format!("{prefix}:{}", next.fetch_add(1, Ordering::Relaxed)))
                            .collect();
                        for key in &keys {
                            let queued = client.ai().run(key.as_str()).await.expect("run");
                            assert!(queued.queued, "{queued:?}");
                        }
                        for key in &keys {
                            completed(client, key).await;
                        }
                    }
                    start.elapsed()
                }
            });
        });
        rt.block_on(workers.stop());
    }
    group.finish();
}

fn claim_latency(c: &mut Criterion, rt: &Runtime, store: &Store) {
    let mut group = c.benchmark_group(format!("jobs_claim_latency/{}", store.name()));
    group.sample_size(10);
    for n in WORKERS {
        let prefix = fresh_prefix("claim");
        let (started, on_start) = mpsc::unbounded_channel::<Instant>();
        let on_start = tokio::sync::Mutex::new(on_start);
        let (client, workers) = rt.block_on(async {
            let handler = move |_: Job| {
                let _ = started.send(Instant::now());
            };
            let workers = Workers::start(store, &prefix, n, Duration::ZERO, handler).await;
            (store.client().await, workers)
        });
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::from_parameter(format!("{n}_workers")), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (client, prefix, next, on_start) = (&client, &prefix, &next, &on_start);
                async move {
                    let mut on_start = on_start.lock().await;
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let key = format!("{prefix}:{}", next.fetch_add(1, Ordering::Relaxed));
                        let sent = Instant::now();
                        client.ai().run(key.as_str()).await.expect("run");
                        let began = on_start.recv().await.expect("a handler started");
                        spent += began.duration_since(sent);
                        // Untimed: the worker finishes and goes back to waiting for a claim.
                        completed(client, &key).await;
                    }
                    spent
                }
            });
        });
        rt.block_on(workers.stop());
    }
    group.finish();
}

fn jobs(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut stores = vec![Store::Memory(OnceOnly::memory())];
    let server = RedisServer::start();
    if let Some(server) = &server {
        stores.push(Store::Redis(server.url()));
    }
    for store in &stores {
        throughput(c, &rt, store, Duration::ZERO, BATCH);
        throughput(c, &rt, store, WORK, WORK_BATCH);
        claim_latency(c, &rt, store);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = jobs
}
criterion_main!(benches);
