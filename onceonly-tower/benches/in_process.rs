//! What a request costs through an axum route with and without `OnceOnlyLayer`, called
//! in-process (no sockets, no load generator): the pure cost of routing, the layer and the
//! embedded backend, in µs per request from one task. The steadiest figure on a busy machine,
//! for profiling and for comparing two builds of the layer; `server_bound` measures the same
//! routes over TCP.
//!
//! ```text
//! cargo bench -p onceonly-tower --bench in_process -- [--requests 20000] [--rounds 5] [--only N]
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};
use tower::ServiceExt;

use common::{PATH, arg, median, stripe, value_pointer};

/// Calls the router `n` times from one task, each request with a distinct key (an
/// `Idempotency-Key` header and a Stripe-style body); returns µs per request.
async fn in_process(app: &Router, n: u64, seq: &AtomicU64) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let k = seq.fetch_add(1, Ordering::Relaxed);
        let req = axum::http::Request::post(PATH)
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
async fn engine_alone(n: u64, seq: &AtomicU64) -> f64 {
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = arg("--requests").unwrap_or(20_000);
    let rounds: usize = arg("--rounds").unwrap_or(5).max(1);
    let runs = Arc::new(AtomicU64::new(0));
    let route = || stripe(&runs);
    let layer = || OnceOnlyLayer::new(OnceOnly::memory());
    let apps: Vec<(&str, Router)> = vec![
        ("bare route", route()),
        ("check-lock, Idempotency-Key", route().layer(layer())),
        (
            "check-lock, Idempotency-Key, over a backend that answers at once (layer alone)",
            route().layer(OnceOnlyLayer::new(OnceOnly::from_backend(Instant0))),
        ),
        (
            "check-lock, JSON pointer /id",
            route().layer(layer().key_sources([]).json_pointer("/id")),
        ),
        (
            "check-lock, /id via serde_json Value::pointer",
            route().layer(layer().key_sources([]).key_extractor(value_pointer)),
        ),
        (
            "replay, Idempotency-Key",
            route().layer(layer().mode(Mode::Replay)),
        ),
    ];
    // Profiling aid: `--only N` measures variant N alone.
    let apps: Vec<(&str, Router)> = match arg::<usize>("--only") {
        Some(i) => apps.into_iter().skip(i).take(1).collect(),
        None => apps,
    };
    let seq = AtomicU64::new(0);
    let mut micros: Vec<Vec<f64>> = vec![Vec::new(); apps.len()];
    let mut engine = Vec::new();
    // Interleaved rounds, so drift of the machine hits every variant alike.
    for _ in 0..rounds {
        for (i, (_, app)) in apps.iter().enumerate() {
            micros[i].push(in_process(app, n, &seq).await);
        }
        engine.push(engine_alone(n, &seq).await);
    }
    println!("\n{rounds} rounds of {n} requests per variant, one task\n");
    println!("| variant | µs/request (median) | over the bare route |");
    println!("|---|---:|---:|");
    let base = median(micros[0].clone());
    for ((name, _), m) in apps.iter().zip(micros) {
        let m = median(m);
        println!("| {name} | {m:.2} | {:+.2} |", m - base);
    }
    println!(
        "\nembedded engine alone: {:.2} µs per check-lock (distinct keys)",
        median(engine)
    );
}
