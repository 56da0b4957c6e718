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

/// A backend that grants every check-lock at once without storing anything: with it, what a
/// request costs beyond the bare route is the layer's own work alone. Benchmark use only.
#[derive(Debug)]
pub struct Instant0;

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

/// The middle value (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
