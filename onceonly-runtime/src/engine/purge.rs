//! The background loop that keeps memory bounded by removing expired entries.
//!
//! One [`Purger`] per store: the root engine owns it and its tenant engines share it, so a
//! shared store is swept once however many tenants use it. The loop holds only a weak
//! reference to the store, so dropping the last engine (or tenant store) ends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Engine;
use crate::store::Store;
use crate::time::Clock;

/// Starts the purge loop of one store, once, on the first call made inside a tokio runtime.
pub(super) struct Purger<S> {
    store: Weak<S>,
    clock: Arc<dyn Clock>,
    every: Duration,
    started: AtomicBool,
}

impl<S: Store> Purger<S> {
    pub(super) fn new(store: &Arc<S>, clock: Arc<dyn Clock>, every: Duration) -> Self {
        Purger {
            store: Arc::downgrade(store),
            clock,
            every,
            started: AtomicBool::new(false),
        }
    }
}

/// What engines and tenant stores keep of the purger: a way to start it.
pub(super) trait StartPurge: Send + Sync {
    /// Without a runtime (a call from synchronous code) nothing starts; the next call from
    /// async code starts it.
    fn ensure_started(&self);
}

impl<S: Store> StartPurge for Purger<S> {
    fn ensure_started(&self) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        handle.spawn(purge_loop(
            self.store.clone(),
            Arc::clone(&self.clock),
            self.every,
        ));
    }
}

impl<S: Store> Engine<S> {
    pub(super) fn ensure_purger(&self) {
        self.inner.purger.ensure_started();
    }

    /// Removes expired check-locks and records past their retention now. Returns how many
    /// entries went away. The background loop calls this every `purge_interval`.
    pub async fn purge_expired(&self) -> crate::Result<usize> {
        self.inner.store.purge_expired(self.now_ms()).await
    }
}

async fn purge_loop<S: Store>(store: Weak<S>, clock: Arc<dyn Clock>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        match store.purge_expired(clock.now_ms()).await {
            Ok(n) if n > 0 => {
                tracing::debug!(purged = n, store = store.name(), "purged expired entries")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge of expired entries failed"),
        }
    }
}
