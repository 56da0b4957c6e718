//! The accounted entry points of the lease API: [`Engine::lease`] and key-mode
//! [`Engine::run`]. They wrap the lease state machine with usage accounting and the
//! `run_started` timeline event.

use super::Engine;
use super::events::{run_id_of, started_event};
use crate::error::{JsonMap, Result};
use crate::models::{Lease, LeaseRequest, UsageKind};
use crate::store::Store;
use crate::validate;

impl<S: Store> Engine<S> {
    /// Acquires the lease of `req.key`, or reports the live holder (never its lease id, except
    /// to a repeat of the request that acquired it: see
    /// [`LeaseRequest::acquisition_id`]) or the stored outcome.
    ///
    /// Acquisitions count against the `ai` bucket of the account's plan; answers that acquire
    /// nothing, and repeats of an acquisition, are free (counted as polling). At the plan's
    /// monthly limit an acquisition is refused with
    /// [`Error::OverLimit`](crate::Error::OverLimit) before anything changes: the key stays as
    /// it was.
    ///
    /// The charge, the record and the `run_started` event are separate store calls; dropping
    /// this future midway (a timeout around it) can leave a unit counted for a lease that was
    /// never written. `onceonly-server` runs every lease call on its own task for that reason. When
    /// `metadata.run_id` is set, an acquisition writes `run_started` to that run's timeline,
    /// and the end of the lease writes `run_finished`.
    pub async fn lease(&self, mut req: LeaseRequest) -> Result<Lease> {
        check(&req)?;
        if let Some(gov) = req.governance.take() {
            return self.governed_lease(req, gov).await;
        }
        self.accounted_lease(req).await
    }

    /// Key-mode `ai.run`: starts a run for `req.key` or attaches to the existing one. The
    /// answer has the shape of [`Engine::lease`], whose rules it follows; the run id defaults
    /// to the key (it is stored as `metadata.run_id`, which counts toward the metadata size
    /// limit), so every run has a timeline.
    ///
    /// Who executes the run is not decided here: the run stays `in_progress` until the holder
    /// of the returned lease id completes, fails or cancels it, or its lease expires.
    pub async fn run(&self, mut req: LeaseRequest) -> Result<Lease> {
        check(&req)?;
        let key = req.key.clone();
        req.metadata
            .get_or_insert_with(JsonMap::new)
            .entry("run_id")
            .or_insert(key.into());
        self.accounted_lease(req).await
    }

    /// The acquisition charges itself (see [`Engine::acquire`]); this adds the usage figures
    /// to the answer, counts answers that acquired nothing as (free) polling, and writes
    /// `run_started` for a fresh acquisition with a run id.
    pub(super) async fn accounted_lease(&self, req: LeaseRequest) -> Result<Lease> {
        let key = req.key.clone();
        let started = run_id_of(req.metadata.as_ref())
            .is_some()
            .then(|| req.metadata.clone());
        let acquisition = self.acquire(req).await?;
        let mut answer = acquisition.lease;
        let Some(charge) = acquisition.charge else {
            answer.charged = Some(0);
            // Polling is free; counting it is bookkeeping that must not fail the call.
            match self.count_polling(UsageKind::Ai).await {
                Ok(charge) => {
                    answer.usage = Some(charge.usage);
                    answer.limit = charge.limit;
                }
                Err(e) => tracing::warn!(%key, error = %e, "could not count a polling answer"),
            }
            return Ok(answer);
        };
        answer.charged = Some(1);
        answer.usage = Some(charge.usage);
        answer.limit = charge.limit;
        if let Some(metadata) = started {
            self.record_run_event(started_event(&key, answer.version, metadata.as_ref()))
                .await;
        }
        Ok(answer)
    }
}

fn check(req: &LeaseRequest) -> Result<()> {
    validate::key(&req.key)?;
    if let Some(ttl) = req.ttl {
        validate::ttl("ttl", ttl)?;
    }
    validate::metadata(req.metadata.as_ref())
}
