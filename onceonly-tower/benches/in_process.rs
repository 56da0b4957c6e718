//! What a request costs through an axum route with and without `OnceOnlyLayer`, called
//! in-process (no sockets, no load generator): the pure cost of routing, the layer and the
//! embedded backend, in µs per request from one task. The steadiest figure on a busy machine,
//! for profiling and for comparing two builds of the layer; `server_bound` measures the same
//! routes over TCP.
//!
//! ```text
//! cargo bench -p onceonly-tower --bench in_process -- [--requests 20000] [--rounds 5] [--only N] [--fmt]
//! cargo bench -p onceonly-tower --bench in_process -- --engine check-lock|lease [--requests N]
//! ```
//!
//! With `--fmt`, a `tracing_subscriber::fmt` subscriber at `INFO` writes a line per closed span
//! (to nowhere): the cost of the layer's span when someone listens. Without it no subscriber is
//! installed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::http::HeaderName;
use onceonly_runtime::OnceOnly;
use onceonly_tower::{KeySource, Mode, OnceOnlyLayer};
use tower::ServiceExt;

use common::{Instant0, PATH, arg, median, stripe};

/// Calls the router `n` times from one task, each request with a distinct key (an
/// `Idempotency-Key` header and a Stripe-style body); returns µs per request.
async fn in_process(app: &Router, n: u64, seq: &AtomicU64) -> f64 {
    // As `axum::serve` does: routes are made services (and layers applied) once, not on every
    // call of a router that was never given its state.
    let app: Router = app.clone().with_state(());
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
    let micros = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    keep(client);
    micros
}

/// The embedded engine alone: µs per lease and completion with a distinct key, carrying what
/// replay mode sends (a fingerprint as metadata, a small stored response), no HTTP at all.
async fn engine_replay_alone(n: u64, seq: &AtomicU64) -> f64 {
    use onceonly_runtime::models::{CompleteRequest, LeaseRequest};
    let client = OnceOnly::memory();
    let fingerprint = serde_json::json!({"onceonly-tower/fingerprint": "0".repeat(64)});
    let fingerprint = fingerprint.as_object().cloned().unwrap();
    let stored = serde_json::json!({
        "format": "onceonly-tower/response@1",
        "fingerprint": "0".repeat(64),
        "status": 200,
        "headers": [["content-type", "application/json"]],
        "body": "eyJyZWNlaXZlZCI6ImV2dF8xIiwidHlwZSI6ImNoYXJnZS5zdWNjZWVkZWQifQ==",
        "body_len": 46,
    });
    let stored = stored.as_object().cloned().unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let k = seq.fetch_add(1, Ordering::Relaxed);
        let key = format!("POST /webhooks/stripe idempotency-key=k{k}");
        let lease = LeaseRequest::new(key.as_str())
            .ttl(std::time::Duration::from_secs(60))
            .metadata(fingerprint.clone());
        let lease = client.backend().lease(lease).await.unwrap();
        let done = CompleteRequest::new(key, lease.lease_id.unwrap(), Some(stored.clone()));
        client.backend().complete(done).await.unwrap();
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    keep(client);
    micros
}

/// Leaks what a run stored instead of dropping it. A server keeps its keys; freeing them all
/// at the end is not part of any request's cost, and `scripts/instructions.sh` (which counts the
/// whole process) would otherwise charge each request its share of the teardown: about 3,300
/// instructions per replayed request, whose stored response is several allocations.
fn keep<T>(stored: T) {
    std::mem::forget(stored);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if common::flag("--fmt") {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .init();
    }
    let n: u64 = arg("--requests").unwrap_or(20_000);
    let rounds: usize = arg("--rounds").unwrap_or(5).max(1);
    // Profiling aid: `--engine check-lock` or `--engine lease` measures the engine alone, once.
    if let Some(which) = arg::<String>("--engine") {
        let seq = AtomicU64::new(0);
        let micros = match which.as_str() {
            "check-lock" => engine_alone(n, &seq).await,
            "lease" => engine_replay_alone(n, &seq).await,
            other => panic!("--engine takes check-lock or lease, not {other}"),
        };
        println!("| embedded engine alone, {which} | {micros:.2} |");
        return;
    }
    let runs = Arc::new(AtomicU64::new(0));
    let route = || stripe(&runs);
    let layer = || OnceOnlyLayer::new(OnceOnly::memory());
    let apps: Vec<(&str, Router)> = vec![
        ("bare route", route()),
        (
            "layer, request without a key (passthrough)",
            route().layer(
                layer().key_sources([KeySource::header(HeaderName::from_static("x-absent"))]),
            ),
        ),
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
            "replay, Idempotency-Key",
            route().layer(layer().mode(Mode::Replay)),
        ),
    ];
    // Profiling aid: `--only N` measures variant N alone (and not the engine alone).
    let only = arg::<usize>("--only");
    let apps: Vec<(&str, Router)> = match only {
        Some(i) => apps.into_iter().skip(i).take(1).collect(),
        None => apps,
    };
    let seq = AtomicU64::new(0);
    let mut micros: Vec<Vec<f64>> = vec![Vec::new(); apps.len()];
    let mut engine = Vec::new();
    let mut engine_replay = Vec::new();
    // Interleaved rounds, so drift of the machine hits every variant alike.
    for _ in 0..rounds {
        for (i, (_, app)) in apps.iter().enumerate() {
            micros[i].push(in_process(app, n, &seq).await);
        }
        if only.is_none() {
            engine.push(engine_alone(n, &seq).await);
            engine_replay.push(engine_replay_alone(n, &seq).await);
        }
    }
    println!("\n{rounds} rounds of {n} requests per variant, one task\n");
    println!("| variant | µs/request (median) | over the bare route |");
    println!("|---|---:|---:|");
    let base = median(micros[0].clone());
    for ((name, _), m) in apps.iter().zip(micros) {
        let m = median(m);
        println!("| {name} | {m:.2} | {:+.2} |", m - base);
    }
    if only.is_none() {
        println!(
            "\nembedded engine alone, distinct keys: {:.2} µs per check-lock, {:.2} µs per lease and completion",
            median(engine),
            median(engine_replay)
        );
    }
    keep(apps);
}
