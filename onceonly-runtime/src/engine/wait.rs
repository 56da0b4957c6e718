//! Waiting for a key to settle, woken by the store's change notifications (no polling).

use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use super::view::{self, Phase};
use crate::error::Result;
use crate::models::{AiStatus, RunStatus};
use crate::store::Store;
use crate::validate;

impl<S: Store> Engine<S> {
    /// Waits until `key` is no longer held (completed, failed, released, expired) or
    /// `max_wait` has passed, and returns its status at that moment. A queued run is waited
    /// on until it finishes: its worker's lease expiring puts it back in the queue.
    ///
    /// A waiter subscribes before it reads, so a write between the read and the wait is never
    /// missed; a holder that dies is noticed when its lease expires, without any write.
    pub async fn wait_status(&self, key: &str, max_wait: Duration) -> Result<AiStatus> {
        validate::key(key)?;
        let deadline = crate::time::deadline_after(max_wait);
        loop {
            let mut sub = self.inner.store.subscribe(key).await?;
            let current = self.inner.store.get_record(key).await?;
            let now = self.now_ms();
            let live = current
                .as_ref()
                .and_then(|v| Some((&v.value, view::live(&v.value, now)?)));
            let (status, wake_at) = match live {
                Some((rec, Phase::Held)) => {
                    let left = Duration::from_millis(rec.lease_expires_at_ms - now);
                    (
                        view::status(key, rec, Phase::Held, now),
                        deadline.min(Instant::now() + left),
                    )
                }
                // A queued run waits for a worker: only a write (claim, completion) moves it.
                // A run of actions has no worker but the engine: if its execution stopped with
                // its process, this waiter starts it again.
                Some((rec, Phase::Queued)) => {
                    self.restart_if_actions(key, rec);
                    (view::status(key, rec, Phase::Queued, now), deadline)
                }
                Some((rec, phase)) => return Ok(view::status(key, rec, phase, now)),
                None => (view::not_found_status(key), deadline),
            };
            debug_assert!(matches!(
                status.status,
                RunStatus::InProgress | RunStatus::NotFound
            ));
            if Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::select! {
                () = sub.changed() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }
}
