//! Quickstart on the embedded engine: no account, no server, no network.
//!
//! `cargo run -p onceonly-examples --example quickstart`
//!
//! 1. check-lock: the first delivery of a webhook event proceeds, the redelivery is a duplicate;
//! 2. run_fn: a charge runs once and its typed receipt is replayed to the retry;
//! 3. two concurrent callers on one key: one runs, the other waits and gets the same value.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    amount_cents: u64,
}

/// Stands in for a payment provider: counts how often money actually moved.
#[derive(Default)]
struct PaymentProvider {
    charges: AtomicUsize,
}

impl PaymentProvider {
    async fn charge(&self, order: &str, amount_cents: u64) -> Result<Receipt, Error> {
        tokio::time::sleep(Duration::from_millis(100)).await; // a slow network call
        let n = self.charges.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Receipt {
            charge_id: format!("ch_{order}_{n}"),
            amount_cents,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let client = OnceOnly::memory();

    println!("1. check-lock");
    for delivery in 1..=2 {
        let lock = client
            .check_lock("stripe:evt_1NG8Du")
            .ttl(Duration::from_secs(3600))
            .await?;
        if lock.should_proceed() {
            println!("   delivery {delivery}: locked, processing the event");
        } else {
            let first_seen = lock
                .first_seen_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            println!("   delivery {delivery}: duplicate (first seen {first_seen}), skipped");
        }
    }

    println!("2. run_fn returns a typed value, twice");
    let provider = Arc::new(PaymentProvider::default());
    for attempt in 1..=2 {
        let p = provider.clone();
        let receipt: Receipt = client
            .ai()
            .run_fn("charge:order-1001", || async move {
                p.charge("order-1001", 4999).await
            })
            .await?;
        println!("   attempt {attempt}: {receipt:?}");
    }
    println!(
        "   money moved {} time(s)",
        provider.charges.load(Ordering::SeqCst)
    );

    println!("3. two concurrent callers on one key");
    let callers: Vec<_> = ["caller A", "caller B"]
        .into_iter()
        .map(|who| {
            let (client, p) = (client.clone(), provider.clone());
            tokio::spawn(async move {
                let receipt: Receipt = client
                    .ai()
                    .run_fn("charge:order-2002", || async move {
                        p.charge("order-2002", 1500).await
                    })
                    .await?;
                println!("   {who} got {receipt:?}");
                Ok::<_, Error>(receipt)
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for caller in callers {
        receipts.push(caller.await.expect("caller task panicked")?);
    }
    assert_eq!(receipts[0], receipts[1]);
    let total = provider.charges.load(Ordering::SeqCst);
    println!("   both callers hold the same receipt; money moved {total} time(s) in all");
    assert_eq!(total, 2, "one charge per order");
    Ok(())
}
