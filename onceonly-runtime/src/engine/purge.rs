//! The background loop that keeps memory bounded by removing expired entries.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Engine, Inner};
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// Starts the purge loop on the current tokio runtime, once. Without a runtime (a call
    /// from synchronous code) nothing starts; the next call from async code starts it.
    pub(super) fn ensure_purger(&self) {
        if self.inner.purger_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.purger_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        handle.spawn(purge_loop(weak, self.inner.config.purge_interval));
    }

    /// Removes expired check-locks and records past their retention now. Returns how many
    /// entries went away. The background loop calls this every `purge_interval`.
    pub async fn purge_expired(&self) -> crate::Result<usize> {
        self.inner.store.purge_expired(self.now_ms()).await
    }
}

/// Holds only a weak reference, so dropping the last engine handle ends the loop.
async fn purge_loop<S: Store>(weak: Weak<Inner<S>>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let engine = Engine { inner };
        match engine.purge_expired().await {
            Ok(n) if n > 0 => tracing::debug!(
                purged = n,
                store = engine.inner.store.name(),
                "purged expired entries"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge of expired entries failed"),
        }
    }
}
