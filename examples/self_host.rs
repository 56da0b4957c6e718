//! Self-hosting: `onceonly-server` started in-process on a free loopback port, driven by the
//! Rust client over HTTP exactly as it would drive the hosted API.
//!
//! `cargo run -p onceonly-examples --example self_host`
//!
//! In production you run the binary instead:
//! `onceonly-server --listen 0.0.0.0:8080 --store memory --api-keys-file keys.txt`, and point
//! clients at it with `ONCEONLY_BASE_URL=http://host:8080/v1 ONCEONLY_API_KEY=...`.
//!
//! 1. check-lock: a webhook event locks, its redelivery is a duplicate, and the release
//!    extension lets a retry through after a failed handler;
//! 2. run_fn: a charge runs once and its typed receipt is replayed;
//! 3. the run's timeline, written by the server, and this month's usage.

use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::models::{JsonMap, RunEvent};
use onceonly_runtime::{Error, OnceOnly};
use onceonly_server::{ApiKey, Server, ServerConfig};
use serde::{Deserialize, Serialize};

const API_KEY: &str = "once_selfhost_demo_key_0001";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    amount_cents: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::new("127.0.0.1:0".parse()?).api_key(ApiKey::new(API_KEY)?);
    let server = Server::bind(config).await?;
    println!("onceonly-server listening on {}", server.base_url());

    let client = OnceOnly::builder()
        .api_key(API_KEY)
        .base_url(server.base_url())
        .build()?;

    println!("1. check-lock");
    let first = client.check_lock("stripe:evt_1001").await?;
    let again = client.check_lock("stripe:evt_1001").await?;
    println!("   first delivery proceeds: {}", first.should_proceed());
    println!("   redelivery is a duplicate: {}", again.is_duplicate());
    assert!(first.should_proceed() && again.is_duplicate());
    // The handler failed: give back the lock it took (and only that one, by its lock id) so
    // the provider's retry is processed.
    assert!(client.release_own_lock(&first).await?);
    assert!(client.check_lock("stripe:evt_1001").await?.should_proceed());
    println!("   after release, the retry proceeds");

    println!("2. run_fn");
    let charges = AtomicUsize::new(0);
    let charge = || async {
        let n = charges.fetch_add(1, Ordering::SeqCst) + 1;
        Ok::<_, Error>(Receipt {
            charge_id: format!("ch_order42_{n}"),
            amount_cents: 4200,
        })
    };
    let mut metadata = JsonMap::new();
    metadata.insert("run_id".into(), "checkout-42".into());
    let receipt: Receipt = client
        .ai()
        .run_fn("charge:order-42", charge)
        .metadata(metadata.clone())
        .await?;
    let replayed: Receipt = client
        .ai()
        .run_fn("charge:order-42", charge)
        .metadata(metadata)
        .await?;
    println!("   {receipt:?}, replayed {replayed:?}");
    assert_eq!(receipt, replayed);
    assert_eq!(
        charges.load(Ordering::SeqCst),
        1,
        "the card was charged once"
    );

    println!("3. timeline and usage");
    client
        .post_event(RunEvent {
            run_id: "checkout-42".into(),
            kind: "note".into(),
            message: Some("receipt emailed".into()),
            ..RunEvent::default()
        })
        .await?;
    let timeline = client.get_run_timeline("checkout-42").await?;
    for event in &timeline.events {
        println!(
            "   {:<12} {}",
            event.kind,
            event
                .status
                .as_deref()
                .or(event.message.as_deref())
                .unwrap_or("")
        );
    }
    let usage = client.usage().await?;
    println!(
        "   {} check-locks this month ({}), plan {}",
        usage.usage, usage.month, usage.plan
    );

    server.shutdown().await?;
    Ok(())
}
