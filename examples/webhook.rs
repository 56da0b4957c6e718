//! A Stripe-style webhook endpoint behind `OnceOnlyLayer`, and a sender that delivers like a
//! real provider: the same event several times, many copies at once, and a retry after the
//! handler failed. The handler runs once per event.
//!
//! ```text
//! cargo run -p onceonly-examples --example webhook
//! ```
//!
//! Everything runs in this process on the embedded engine: no account, no network beyond
//! 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use onceonly_runtime::OnceOnly;
use onceonly_tower::OnceOnlyLayer;
use serde::Deserialize;
use tokio::net::TcpListener;

/// The part of a Stripe event the handler reads.
#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// What the handler did, per event id.
#[derive(Clone, Default)]
struct Ledger {
    runs: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Events whose first processing attempt fails, to show the retry path.
    flaky: Arc<Mutex<Vec<String>>>,
}

async fn stripe_webhook(
    State(ledger): State<Ledger>,
    axum::Json(event): axum::Json<Event>,
) -> (StatusCode, String) {
    let mut flaky = ledger.flaky.lock().unwrap();
    if let Some(i) = flaky.iter().position(|id| *id == event.id) {
        flaky.remove(i);
        println!(
            "  handler: {} ({}) failed: database unavailable",
            event.id, event.kind
        );
        return (StatusCode::INTERNAL_SERVER_ERROR, "try again later".into());
    }
    drop(flaky);
    *ledger
        .runs
        .lock()
        .unwrap()
        .entry(event.id.clone())
        .or_default() += 1;
    println!("  handler: processed {} ({})", event.id, event.kind);
    (StatusCode::OK, format!("processed {}", event.id))
}

/// One delivery, as a provider would send it; returns the status and whether the layer
/// answered it as a duplicate.
async fn deliver(http: &reqwest::Client, url: &str, id: &str, kind: &str) -> (u16, bool) {
    let body = serde_json::json!({"id": id, "object": "event", "type": kind});
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the local server answers");
    let duplicate = res
        .headers()
        .get("x-onceonly-status")
        .is_some_and(|v| v == "duplicate");
    (res.status().as_u16(), duplicate)
}

fn describe((status, duplicate): (u16, bool)) -> String {
    match (status, duplicate) {
        (200, true) => "200 duplicate (handler skipped)".into(),
        (200, false) => "200 processed".into(),
        (status, _) => format!("{status}"),
    }
}

#[tokio::main]
async fn main() {
    let ledger = Ledger::default();
    ledger.flaky.lock().unwrap().push("evt_3".into());

    let app = Router::new()
        .route("/webhooks/stripe", post(stripe_webhook))
        .with_state(ledger.clone())
        // Stripe sends no idempotency header: the event id is the body's `id`.
        .layer(OnceOnlyLayer::new(OnceOnly::memory()).json_pointer("/id"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    println!("webhook endpoint: {url}\n");

    let http = reqwest::Client::new();

    println!("evt_1: delivered three times in a row");
    for attempt in 1..=3 {
        let answer = deliver(&http, &url, "evt_1", "charge.succeeded").await;
        println!("  delivery {attempt}: {}", describe(answer));
    }

    println!("\nevt_2: twenty copies delivered at the same moment");
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url) = (http.clone(), url.clone());
        copies.spawn(async move { deliver(&http, &url, "evt_2", "invoice.paid").await });
    }
    let (mut processed, mut duplicates) = (0, 0);
    while let Some(answer) = copies.join_next().await {
        match answer.unwrap() {
            (200, true) => duplicates += 1,
            (200, false) => processed += 1,
            (status, _) => println!("  unexpected status {status}"),
        }
    }
    println!("  answers: {processed} processed, {duplicates} duplicates");

    println!("\nevt_3: the first delivery fails, the provider retries");
    for attempt in 1..=3 {
        let answer = deliver(&http, &url, "evt_3", "customer.created").await;
        println!("  delivery {attempt}: {}", describe(answer));
    }

    println!("\nhandler runs per event:");
    let runs = ledger.runs.lock().unwrap().clone();
    for (id, n) in &runs {
        println!("  {id}: {n}");
    }
    let once = ["evt_1", "evt_2", "evt_3"]
        .iter()
        .all(|id| runs.get(*id) == Some(&1));
    server.abort();
    if once {
        println!("\nevery event was processed exactly once");
    } else {
        eprintln!("\nsome event was not processed exactly once");
        std::process::exit(1);
    }
}
