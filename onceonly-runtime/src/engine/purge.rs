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

/// Starts the purge loop of one store on the first call made inside a tokio runtime, and
/// again on the first call after that runtime shut down (an engine kept in a static outlives
/// runtimes; its purge loop, a task of one of them, does not).
pub(super) struct Purger<S> {
    store: Weak<S>,
    clock: Arc<dyn Clock>,
    every: Duration,
    /// Whether a loop runs: set when one starts, cleared when it ends however it ends.
    started: Arc<AtomicBool>,
}

impl<S: Store> Purger<S> {
    pub(super) fn new(store: &Arc<S>, clock: Arc<dyn Clock>, every: Duration) -> Self {
        Purger {
            store: Arc::downgrade(store),
            clock,
            every,
            started: Arc::new(AtomicBool::new(false)),
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
        let running = Running(Arc::clone(&self.started));
        handle.spawn(purge_loop(
            self.store.clone(),
            Arc::clone(&self.clock),
            self.every,
            running,
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

/// Held by a running loop: dropped with it (its runtime shut down, or its store went away), it
/// lets the next call start another.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn purge_loop<S: Store>(
    store: Weak<S>,
    clock: Arc<dyn Clock>,
    every: Duration,
    _running: Running,
) {
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
