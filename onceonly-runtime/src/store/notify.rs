use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// In-process fan-out of "key changed" signals.
///
/// Stores that learn about writes (their own, or another process's through pub/sub) call
/// [`Notifier::notify`]; waiters hold a [`Subscription`]. Entries exist only while somebody
/// subscribes, so the map stays as small as the number of keys being waited on.
#[derive(Debug, Default)]
pub struct Notifier {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Notifier {
    /// An empty notifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to `key`. Notifications sent after this returns are seen by the subscription.
    pub fn subscribe(&self, key: &str) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let rx = match channels.get(key) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                channels.insert(key.to_owned(), tx);
                rx
            }
        };
        Subscription { rx }
    }

    /// Wakes every subscriber of `key`; forgets the key when nobody listens any more.
    pub fn notify(&self, key: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = channels.get(key) {
            if tx.receiver_count() == 0 {
                channels.remove(key);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes the subscribers of every key. For stores that may have missed writes (a lost
    /// pub/sub connection, another process's commit): a spurious wake only makes a waiter read
    /// the key again.
    pub fn notify_all(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        for tx in channels.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Drops channels nobody listens to any more (called by the purge loop).
    pub fn prune(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
    }

    /// How many keys currently have subscribers (for tests and metrics).
    pub fn len(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether no key has subscribers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A registration for changes of one key.
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<u64>,
}

impl Subscription {
    /// Resolves at the next change of the key after the subscription was made (or after the
    /// previous `changed` returned). Never resolves if the notifier is gone.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
