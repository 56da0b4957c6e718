//! Requests per second of an axum route with and without `OnceOnlyLayer`, on the embedded
//! backend, measured in one run with one load generator.
//!
//! Two routes, each measured bare and behind the layer: a trivial one (answers "ok" without
//! reading the request: the worst case for any middleware) and a Stripe-style one (parses the
//! JSON event, answers a small JSON acknowledgement). Every request carries a distinct key (an
//! `Idempotency-Key` header and a Stripe-style `{"id": ...}` body), so each one goes through a
//! full claim; the bare routes get the same requests. Rounds of the variants are interleaved so
//! drift of the machine affects all of them alike; the median round of each is reported with
//! its ratio to its bare route's. Also reported: CPU time of the whole process (server, client
//! and their kernel time) per request, the cost of one request through the router in-process
//! (no sockets), and the embedded engine's check-lock alone.
//!
//! ```text
//! cargo bench -p onceonly-tower --bench throughput -- [--secs 3] [--rounds 5] [--concurrency 32]
//! ```
//!
//! The server and the load generator share the machine, as a sidecar would; the figures are
//! for comparing variants within one run, not absolute capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};
use tokio::net::TcpListener;

struct Options {
    secs: f64,
    rounds: usize,
    concurrency: usize,
    warmup: f64,
    only: Option<usize>,
}

fn options() -> Options {
    let mut o = Options {
        secs: 3.0,
        rounds: 5,
        concurrency: 32,
        warmup: 1.0,
        only: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let value = |i: usize| args.get(i + 1).and_then(|v| v.parse::<f64>().ok());
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "--secs" => o.secs = value(i).unwrap_or(o.secs),
            "--rounds" => o.rounds = value(i).map_or(o.rounds, |v| v as usize),
            "--concurrency" => o.concurrency = value(i).map_or(o.concurrency, |v| v as usize),
            "--warmup" => o.warmup = value(i).unwrap_or(o.warmup),
            // Profiling aid: run one variant alone (0 = baseline).
            "--only" => o.only = value(i).map(|v| v as usize),
            _ => {}
        }
    }
    o.rounds = o.rounds.max(1);
    o.concurrency = o.concurrency.max(1);
    o
}

/// The smallest possible route: ignores the request, answers "ok". The worst case for any
/// middleware, since the route itself costs nothing.
async fn trivial() -> &'static str {
    "ok"
}

/// The part of a Stripe event a webhook handler reads.
#[derive(serde::Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A typical webhook route: parse the event, acknowledge it with a small JSON body. (A real
/// one also writes somewhere, which would make the layer's share smaller still.)
async fn stripe(axum::Json(event): axum::Json<Event>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"received": event.id, "type": event.kind}))
}

/// Serves `app` on the server runtime; returns its URL.
fn serve(server: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    server.spawn(async move {
        let listener = TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap()
    });
    format!("http://{addr}/webhooks/stripe")
}

/// Name of the server runtime's threads, to tell their CPU time from the client's.
const SERVER_THREAD: &str = "bench-server";

/// CPU time (user + system) used so far by the server runtime's threads, from
/// `/proc/self/task/*/stat`; `None` where that does not exist.
fn server_cpu_time() -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ...": comm may contain spaces, so split around the parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != SERVER_THREAD {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    Some(Duration::from_millis(ticks * 10))
}

/// One measured round: requests per second, and the server's CPU µs per request when known.
struct Round {
    rps: f64,
    cpu_us: Option<f64>,
}

/// Sends requests from `concurrency` workers for `secs`; returns completed requests per second.
/// A request that fails or is not answered 200 (a duplicate would be, so the status alone is
/// not enough) aborts the benchmark: every request must be processed.
async fn load(url: &str, secs: f64, concurrency: usize, seq: &Arc<AtomicU64>) -> Round {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, url, stop, done, seq) = (
            http.clone(),
            url.to_owned(),
            stop.clone(),
            done.clone(),
            seq.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let res = http
                    .post(&url)
                    .header("idempotency-key", format!("k{n}"))
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"id":"evt_{n}","type":"charge.succeeded"}}"#))
                    .send()
                    .await
                    .expect("request failed");
                assert_eq!(res.status(), 200);
                assert!(
                    res.headers().get("x-onceonly-status").is_none(),
                    "duplicate"
                );
                assert!(!res.bytes().await.expect("body failed").is_empty());
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let cpu_start = server_cpu_time();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_start
        .zip(server_cpu_time())
        .map(|(a, b)| (b - a).as_secs_f64());
    for w in workers {
        w.await.unwrap();
    }
    Round {
        rps: count as f64 / elapsed,
        cpu_us: cpu.map(|c| c * 1e6 / count.max(1) as f64),
    }
}

/// Calls the router in-process (no sockets) `n` times from one task; returns µs per request.
async fn in_process(app: Router, n: u64, seq: &Arc<AtomicU64>) -> f64 {
    use tower::ServiceExt;
    let started = Instant::now();
    for _ in 0..n {
        let k = seq.fetch_add(1, Ordering::Relaxed);
        let req = axum::http::Request::post("/webhooks/stripe")
            .header("idempotency-key", format!("k{k}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(format!(
                r#"{{"id":"evt_{k}","type":"charge.succeeded"}}"#
            )))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers().get("x-onceonly-status").is_none(),
            "duplicate"
        );
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// A backend that grants every check-lock at once without storing anything: with it, what a
/// request costs beyond the bare route is the layer's own work alone. Benchmark use only.
#[derive(Debug)]
struct Instant0;

mod instant_backend {
    use onceonly_runtime::models::*;
    use onceonly_runtime::{Backend, BoxFuture, Error, Result};

    fn no<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T>> {
        Box::pin(async {
            Err(Error::Unsupported {
                operation: "benchmark",
                backend: "instant",
            })
        })
    }

    impl Backend for super::Instant0 {
        fn name(&self) -> &'static str {
            "instant"
        }
        fn check_lock(&self, req: CheckLockRequest) -> BoxFuture<'_, Result<CheckLockResult>> {
            Box::pin(async move {
                Ok(CheckLockResult {
                    locked: true,
                    duplicate: false,
                    key: req.key,
                    ttl: 0,
                    first_seen_at: None,
                    lock_id: None,
                    request_id: None,
                    status_code: 200,
                    fail_open: None,
                })
            })
        }
        fn release_lock<'a>(
            &'a self,
            _: &'a str,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<bool>> {
            no()
        }
        fn lease(&self, _: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
            no()
        }
        fn extend(&self, _: ExtendRequest) -> BoxFuture<'_, Result<Lease>> {
            no()
        }
        fn complete(&self, _: CompleteRequest) -> BoxFuture<'_, Result<Lease>> {
            no()
        }
        fn fail(&self, _: FailRequest) -> BoxFuture<'_, Result<Lease>> {
            no()
        }
        fn cancel(&self, _: CancelRequest) -> BoxFuture<'_, Result<Lease>> {
            no()
        }
        fn status<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<AiStatus>> {
            no()
        }
        fn result<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<AiResult>> {
            no()
        }
        fn wait_status<'a>(
            &'a self,
            _: &'a str,
            _: std::time::Duration,
        ) -> BoxFuture<'a, Result<AiStatus>> {
            no()
        }
    }
}

/// The embedded engine alone: µs per check-lock with a distinct key, no HTTP at all.
async fn engine_alone(n: u64, seq: &Arc<AtomicU64>) -> f64 {
    let client = OnceOnly::memory();
    let started = Instant::now();
    for _ in 0..n {
        let k = seq.fetch_add(1, Ordering::Relaxed);
        let key = format!("POST /webhooks/stripe idempotency-key=k{k}");
        let lock = client.check_lock(key).await.unwrap();
        assert!(lock.should_proceed());
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let o = options();
    // One thread serves, one thread sends: the server's CPU time can then be read apart.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async {
        let trivial = || Router::new().route("/webhooks/stripe", post(trivial));
        let stripe = || Router::new().route("/webhooks/stripe", post(stripe));
        let layer = || OnceOnlyLayer::new(OnceOnly::memory());
        // (name, index of the baseline it is compared with, app)
        let apps: Vec<(&str, usize, Router)> = vec![
            ("trivial route, no layer", 0, trivial()),
            ("trivial route, check-lock (Idempotency-Key)", 0, trivial().layer(layer())),
            (
                "trivial route, check-lock over a backend that answers at once (layer alone)",
                0,
                trivial().layer(OnceOnlyLayer::new(OnceOnly::from_backend(Instant0))),
            ),
            ("Stripe-style route, no layer", 3, stripe()),
            (
                "Stripe-style route, check-lock (JSON pointer /id)",
                3,
                stripe().layer(layer().key_sources([]).json_pointer("/id")),
            ),
            (
                "Stripe-style route, check-lock (Idempotency-Key)",
                3,
                stripe().layer(layer()),
            ),
            (
                "Stripe-style route, replay (Idempotency-Key)",
                3,
                stripe().layer(layer().mode(Mode::Replay)),
            ),
        ];
        let apps: Vec<(&str, usize, Router)> = match o.only {
            Some(i) => apps.into_iter().skip(i).take(1).map(|(n, _, a)| (n, 0, a)).collect(),
            None => apps,
        };
        let mut variants: Vec<(&str, String)> = Vec::new();
        for (name, _, app) in &apps {
            variants.push((name, serve(&server, app.clone())));
        }
        let seq = Arc::new(AtomicU64::new(0));
        for (_, url) in &variants {
            let _ = load(url, o.warmup, o.concurrency, &seq).await;
        }
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 0..o.rounds {
            for (i, (name, url)) in variants.iter().enumerate() {
                let r = load(url, o.secs, o.concurrency, &seq).await;
                eprintln!(
                    "round {}: {name}: {:.0} req/s, {} server CPU µs/request",
                    round + 1,
                    r.rps,
                    r.cpu_us.map_or("?".into(), |c| format!("{c:.1}"))
                );
                results[i].push(r.rps);
                cpu[i].extend(r.cpu_us);
            }
        }
        let medians: Vec<f64> = results.into_iter().map(median).collect();
        let cpu: Vec<Option<f64>> = cpu
            .into_iter()
            .map(|v| (!v.is_empty()).then(|| median(v)))
            .collect();
        println!(
            "\n{} rounds of {}s, {} concurrent connections, one server thread and one client thread, {} requests in all\n",
            o.rounds,
            o.secs,
            o.concurrency,
            seq.load(Ordering::Relaxed)
        );
        // The layer's own cost, without sockets or a client: one task calling the router.
        let mut micros: Vec<Vec<f64>> = vec![Vec::new(); apps.len()];
        for _ in 0..o.rounds {
            for (i, (_, _, app)) in apps.iter().enumerate() {
                micros[i].push(in_process(app.clone(), 20_000, &seq).await);
            }
        }
        let micros: Vec<f64> = micros.into_iter().map(median).collect();
        let mut engine = Vec::new();
        for _ in 0..o.rounds {
            engine.push(engine_alone(20_000, &seq).await);
        }
        let engine = median(engine);
        println!(
            "| variant | req/s over TCP (median) | vs its baseline | server CPU µs/request (median) | server capacity vs its baseline | in-process µs/request |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for (i, (name, base, _)) in apps.iter().enumerate() {
            let capacity = cpu[i]
                .zip(cpu[*base])
                .map_or("?".into(), |(c, b)| format!("{:.1}%", 100.0 * b / c));
            println!(
                "| {name} | {:.0} | {:.1}% | {} | {capacity} | {:.2} |",
                medians[i],
                100.0 * medians[i] / medians[*base],
                cpu[i].map_or("?".into(), |c| format!("{c:.1}")),
                micros[i],
            );
        }
        println!(
            "\nembedded engine alone, in-process, one task: {engine:.2} µs per check-lock (distinct keys)"
        );
    });
}
