//! What both benchmarks share: the routes measured, and the median.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::post;

/// The path every variant is served under.
pub const PATH: &str = "/webhooks/stripe";

/// The part of a Stripe event a webhook handler reads.
#[derive(serde::Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A typical webhook route: parses the JSON event and acknowledges it with a small JSON body.
/// Each run is counted in `runs`, so a benchmark can tell that no request was answered as a
/// duplicate. (A real handler also writes somewhere, which makes the layer's share smaller.)
pub fn stripe(runs: &Arc<AtomicU64>) -> Router {
    let runs = Arc::clone(runs);
    Router::new().route(
        PATH,
        post(move |axum::Json(event): axum::Json<Event>| async move {
            runs.fetch_add(1, Ordering::Relaxed);
            axum::Json(serde_json::json!({"received": event.id, "type": event.kind}))
        }),
    )
}

/// The key at `/id` read the plain way: the whole body parsed into a `serde_json::Value`,
/// then `Value::pointer`. What the layer's own JSON-pointer reader is compared with.
pub fn value_pointer(req: &onceonly_tower::KeyRequest<'_>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(req.body?).ok()?;
    match value.pointer("/id")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value after `--name` on the command line, when there is one and it parses.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The middle value (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
