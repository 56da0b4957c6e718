//! The golden example: charge a card exactly once, whatever the retries.
//!
//! `cargo run -p onceonly-examples --example payment`
//!
//! A checkout handler calls `charge_order`. The client retries after a timeout, a load balancer
//! replays the request, a hundred workers pick up the same job: the card is charged once, and
//! every caller gets the same typed `Receipt`. A declined card is not remembered: the customer
//! fixes it and the retry charges. Runs on the embedded engine: no account, no server.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::{Error, OnceOnly, idempotent};
use serde::{Deserialize, Serialize};

/// What the payment provider answers, and what later callers get back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    order_id: String,
    amount_cents: u64,
}

/// Why a charge did not happen.
#[derive(Debug)]
enum PayError {
    /// The provider declined the card.
    Declined(String),
    /// OnceOnly itself failed (store unreachable, timeout, ...).
    OnceOnly(Error),
}

impl From<Error> for PayError {
    fn from(e: Error) -> Self {
        PayError::OnceOnly(e)
    }
}

impl std::fmt::Display for PayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayError::Declined(why) => write!(f, "card declined: {why}"),
            PayError::OnceOnly(e) => write!(f, "{e}"),
        }
    }
}

/// Stands in for the payment provider: counts how often money actually moved.
static MONEY_MOVED: AtomicUsize = AtomicUsize::new(0);
static NEXT_CHARGE: AtomicU64 = AtomicU64::new(1);
/// The first attempt on order-3 is declined (an expired card), the next one goes through.
static ORDER_3_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

async fn provider_charge(order_id: &str, amount_cents: u64) -> Result<Receipt, PayError> {
    tokio::time::sleep(Duration::from_millis(50)).await; // a slow network call
    if order_id == "order-3" && ORDER_3_ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(PayError::Declined("expired card".into()));
    }
    MONEY_MOVED.fetch_add(1, Ordering::SeqCst);
    Ok(Receipt {
        charge_id: format!("ch_{:04}", NEXT_CHARGE.fetch_add(1, Ordering::SeqCst)),
        order_id: order_id.to_owned(),
        amount_cents,
    })
}

/// Charges an order. Exactly once per (order, amount): the key is a hash of the arguments.
#[idempotent(ttl = Duration::from_secs(60))]
async fn charge_order(order_id: &str, amount_cents: u64) -> Result<Receipt, PayError> {
    provider_charge(order_id, amount_cents).await
}

#[tokio::main]
async fn main() -> Result<(), PayError> {
    // The embedded engine as the process-wide default: the macro needs no `client = ..`.
    OnceOnly::set_global(OnceOnly::memory());

    println!("1. a client that retries three times");
    for attempt in 1..=3 {
        let receipt = charge_order("order-1", 4_999).await?;
        println!(
            "   attempt {attempt}: {} for {} cents",
            receipt.charge_id, receipt.amount_cents
        );
    }

    println!("2. a hundred workers pick up the same job at once");
    let workers: Vec<_> = (0..100)
        .map(|_| tokio::spawn(charge_order("order-2", 1_250)))
        .collect();
    let mut receipts = Vec::new();
    for worker in workers {
        receipts.push(worker.await.expect("worker panicked")?);
    }
    let all_same = receipts.iter().all(|r| r == &receipts[0]);
    println!(
        "   100 receipts, all equal: {all_same} ({})",
        receipts[0].charge_id
    );

    println!("3. a declined card is not remembered: the retry charges");
    match charge_order("order-3", 800).await {
        Err(e) => println!("   first try: {e}"),
        Ok(r) => println!("   first try unexpectedly charged: {}", r.charge_id),
    }
    let receipt = charge_order("order-3", 800).await?;
    println!("   second try: {}", receipt.charge_id);
    let again = charge_order("order-3", 800).await?;
    println!("   third try (replayed): {}", again.charge_id);

    let moved = MONEY_MOVED.load(Ordering::SeqCst);
    println!();
    println!("106 calls for 3 orders; the provider charged {moved} times");
    assert!(all_same, "every worker got the same receipt");
    assert_eq!(moved, 3, "each order was charged exactly once");
    Ok(())
}
