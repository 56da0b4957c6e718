//! Waiters: parked on the store's change notification and woken by the write itself, never by
//! polling.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::*;
use crate::store::{Hooked, StoreHooks};

/// How long the parked waiter is watched for reads it should not make: longer than any
/// polling interval a waiter could use (the official SDKs poll every 0.5 s).
const PARKED: Duration = Duration::from_millis(700);

/// Counts reads of lease records and says when one happened.
#[derive(Default)]
struct Reads {
    count: AtomicUsize,
    happened: Notify,
}

impl StoreHooks for Arc<Reads> {
    async fn after_read(&self, _: &str) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.happened.notify_waiters();
    }
}

/// A waiter parks (subscribes, reads once) before the holder completes, reads nothing while
/// parked, and returns the completed status as soon as the write happens. A waiter that
/// polled would read again while parked and fail here.
pub async fn waiter_woken_on_completion<S: Store>(store: S) {
    let reads = Arc::new(Reads::default());
    let (engine, _) = engine(Hooked::new(store, Arc::clone(&reads)));
    let id = engine
        .lease(LeaseRequest::new("w").ttl(Duration::from_secs(120)))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    // A store that notifies through a server (Redis pub/sub) delivers the acquisition's own
    // notification a moment later; let it arrive before the waiter subscribes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = reads.count.load(Ordering::SeqCst);
    let parked = reads.happened.notified();
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .wait_status("w", Duration::from_secs(60))
                .await
                .unwrap()
        })
    };
    // The waiter subscribes, then reads the record once, then parks.
    tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect("the waiter reads the record once before it parks");
    tokio::time::sleep(PARKED).await;
    assert_eq!(
        reads.count.load(Ordering::SeqCst),
        before + 1,
        "a parked waiter must not read again until the key changes (no polling)"
    );
    assert!(!waiter.is_finished(), "the key is still held");
    engine
        .complete(CompleteRequest::new("w", &id, None))
        .await
        .unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter must be woken by the write, long before its 60 s bound")
        .unwrap();
    assert_eq!(st.status, RunStatus::Completed);
}
