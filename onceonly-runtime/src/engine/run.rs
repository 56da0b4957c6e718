//! The accounted entry point of the lease API, [`Engine::lease`]: the lease state machine with
//! usage accounting and the `run_started` timeline event. Key-mode `ai.run` is in `jobs`.

use super::Engine;
use super::events::{run_id_of, started_event};
use crate::error::Result;
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
        super::gov::reserved_key(&req.key)?;
        // An ungoverned lease is checked where it is acquired; a governed one before its
        // governance decision.
        if let Some(gov) = req.governance.take() {
            check(&req)?;
            // Boxed: the governed path's state would otherwise be carried by every lease.
            return Box::pin(self.governed_lease(req, gov)).await;
        }
        self.accounted_lease(req).await
    }

    /// The acquisition charges itself (see [`Engine::acquire`]); this adds the usage figures
    /// to the answer, counts answers that acquired nothing as (free) polling, and writes
    /// `run_started` for a fresh acquisition with a run id.
    pub(super) async fn accounted_lease(&self, req: LeaseRequest) -> Result<Lease> {
        let key = req.key.clone();
        let acquisition = self.acquire(req).await?;
        let mut answer = acquisition.lease;
        if acquisition.fresh && run_id_of(acquisition.metadata.as_deref()).is_some() {
            let event = started_event(&key, answer.version, acquisition.metadata.as_deref());
            self.record_run_event(event).await;
        }
        let Some(charge) = acquisition.charge else {
            answer.charged = Some(0);
            if acquisition.fresh {
                // The claim of a queued run: its enqueuing was charged.
                return Ok(answer);
            }
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
        Ok(answer)
    }
}

pub(super) fn check(req: &LeaseRequest) -> Result<()> {
    validate::key(&req.key)?;
    if let Some(ttl) = req.ttl {
        validate::ttl("ttl", ttl)?;
    }
    validate::metadata(req.metadata.as_ref())?;
    super::events::check_run_id(req.metadata.as_ref())
}
