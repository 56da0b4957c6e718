//! Queued runs (key-mode `ai.run`): enqueued once per key, claimed once by a worker.
//!
//! A queued run is a lease record marked `job`, created released (nobody holds it), plus a
//! queue entry: a store document (`jobq:<key>`) that lets workers find it by key
//! prefix. Claiming is acquiring the record's lease, so the lease state machine gives the
//! exactly-once guarantees: one claim wins the compare-and-swap, the winner heartbeats and
//! ends the run like any holder, and a worker that dies leaves a lease that expires, after
//! which the run reads queued again and the next claim resumes it. The entry goes when the
//! run completes or fails for good.
//!
//! Runs whose metadata carries `actions` are executed by the engine itself (see `actions`);
//! every other run waits for a worker (`ai().worker(pattern)`).
//!
//! Waking workers: every enqueue writes the *bell*, a record under a key no caller can use
//! (it starts with a control character), and claimers subscribe to it; on Redis that reaches
//! every process. Claimers also look again every [`RESCAN`] for runs whose worker's lease ran
//! out, since an expiry writes nothing.

mod actions;
mod claim;

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use super::usage::Charged;
use super::view::{self, Phase};
use crate::error::{JsonMap, Result};
use crate::models::{Lease, LeaseRequest, UsageKind};
use crate::store::{LeaseRecord, LeaseState, Store};
use crate::time::ms;

/// The record whose writes wake claimers (a control character keeps callers' keys off it).
const BELL: &str = "\u{1}jobs:bell";
/// How often a waiting claimer looks at the queue without being woken.
const RESCAN: Duration = Duration::from_secs(1);

/// Store documents of the queued runs workers execute: `jobq:<key>`. Runs of actions have
/// none: the engine executes them by key.
pub(super) const QUEUE_PREFIX: &str = "jobq:";

/// The queue document of the run `key`.
fn queue_doc(key: &str) -> String {
    format!("{QUEUE_PREFIX}{key}")
}

/// Whether a run's metadata makes it a run of actions, which the engine executes itself.
fn has_actions(metadata: Option<&JsonMap>) -> bool {
    metadata.is_some_and(|m| m.contains_key("actions"))
}

impl<S: Store> Engine<S> {
    /// Key-mode `ai.run`: queues a run for `req.key` once; later calls attach to it.
    ///
    /// The first call charges one `ai` unit and answers `in_progress` with `queued: true` (no
    /// lease id: the caller does not hold the run). A call while the run is queued or running
    /// answers its status, uncharged; a finished run answers its result or failure. A key
    /// whose previous lease was released or expired is queued afresh. The run id defaults to
    /// the key (stored as `metadata.run_id`), so every run has a timeline; `metadata.actions`
    /// makes the engine execute the run (validated here: see `actions`), and a call that finds
    /// such a run queued with nobody executing it starts it again.
    ///
    /// A queued run is kept for the engine's retention; one nobody claims in that time is
    /// purged.
    pub async fn run(&self, mut req: LeaseRequest) -> Result<Lease> {
        super::gov::reserved_key(&req.key)?;
        super::run::check(&req)?;
        let metadata = req.metadata.get_or_insert_with(JsonMap::new);
        // `run_id: null` counts as none everywhere, so it gets the key as well.
        let run_id = metadata.entry("run_id").or_insert(serde_json::Value::Null);
        if run_id.is_null() {
            *run_id = req.key.clone().into();
        }
        let actions = has_actions(req.metadata.as_ref());
        if actions {
            actions::validate(&req.key, req.metadata.as_ref())?;
        }
        self.ensure_purger();
        let key = req.key.as_str();
        let retention = ms(self.inner.config.retention);
        let ttl = req.ttl.unwrap_or(self.inner.config.default_lease_ttl);
        let metadata = req.metadata.clone().map(Arc::new);
        loop {
            let current = self.inner.store.get_record(key).await?;
            let now = self.now_ms();
            let live = current
                .as_ref()
                .and_then(|v| Some((v, view::live(&v.value, now)?)));
            let previous = match live {
                Some((v, Phase::Free)) => Some(v),
                Some((v, phase)) => {
                    if phase == Phase::Queued {
                        self.requeue(key, &v.value).await?;
                    }
                    return self.attached(key, &v.value, phase, now).await;
                }
                None => None,
            };
            let (window, charge) = match self.try_charge(UsageKind::Ai, now).await? {
                Charged::Taken(window, charge) => (window, charge),
                Charged::Refused { window, usage } => {
                    return Err(self.refused(&window, UsageKind::Ai, usage, now).await);
                }
            };
            // The key's acquisitions so far go on counting; the run's attempts start at 1.
            let version = previous.map_or(0, |p| p.value.version);
            let record = LeaseRecord {
                version,
                queued_at_version: version,
                ttl_ms: ms(ttl),
                metadata: metadata.clone(),
                purge_at_ms: now + retention,
                job: true,
                ..LeaseRecord::blank(LeaseState::Released, now)
            };
            let mut answer = view::observer(key, &record, Phase::Queued, now);
            answer.ok = true; // Accepted: queued and charged.
            let written = self
                .inner
                .store
                .put_record(key, current.as_ref().map(|v| v.rev), record)
                .await;
            match written {
                Ok(Some(_)) => {}
                other => {
                    self.refund(&window, UsageKind::Ai, now).await;
                    other?;
                    continue; // Someone else wrote the key first: look again.
                }
            }
            if actions {
                self.start_actions(key);
            } else {
                // The record first: a claimer that finds the entry always finds the run.
                self.queue(key).await?;
            }
            answer.charged = Some(1);
            answer.usage = Some(charge.usage);
            answer.limit = charge.limit;
            return Ok(answer);
        }
    }

    /// The answer to a call that attaches to an existing run: free, counted as polling.
    async fn attached(
        &self,
        key: &str,
        rec: &LeaseRecord,
        phase: Phase,
        now: u64,
    ) -> Result<Lease> {
        let mut answer = view::observer(key, rec, phase, now);
        // The run exists and has not failed: the call was accepted.
        answer.ok = phase != Phase::Failed;
        answer.charged = Some(0);
        match self.count_polling(UsageKind::Ai).await {
            Ok(charge) => {
                answer.usage = Some(charge.usage);
                answer.limit = charge.limit;
            }
            Err(e) => tracing::warn!(%key, error = %e, "could not count a polling answer"),
        }
        Ok(answer)
    }

    /// A run that reads queued when someone asks for it again: restores its queue entry if a
    /// crash lost it (between the record's write and the entry's), and restarts a run of
    /// actions whose execution stopped with its process.
    async fn requeue(&self, key: &str, rec: &LeaseRecord) -> Result<()> {
        if has_actions(rec.metadata.as_deref()) {
            self.start_actions(key);
        } else if self.inner.store.get_doc(&queue_doc(key)).await?.is_none() {
            self.queue(key).await?;
        }
        Ok(())
    }

    /// Starts executing `key` if it is a queued run of actions (nothing happens if an
    /// execution holds it already).
    pub(in crate::engine) fn restart_if_actions(&self, key: &str, rec: &LeaseRecord) {
        if rec.job && has_actions(rec.metadata.as_deref()) {
            self.start_actions(key);
        }
    }

    /// Writes the queue entry of `key` and rings the bell.
    async fn queue(&self, key: &str) -> Result<()> {
        let mut doc = JsonMap::new();
        doc.insert("key".into(), key.into());
        self.inner.store.put_doc(&queue_doc(key), doc).await?;
        self.ring().await;
        Ok(())
    }

    /// Wakes claimers. One compare-and-swap attempt is enough: if it loses, another write of
    /// the bell happened after this call's queue entry was written, and woke them.
    async fn ring(&self) {
        let rang = async {
            let current = self.inner.store.get_record(BELL).await?;
            let now = self.now_ms();
            let mut bell = current
                .as_ref()
                .map(|v| (*v.value).clone())
                .unwrap_or_else(|| bell_record(now));
            bell.version += 1;
            bell.purge_at_ms = now + ms(self.inner.config.retention);
            self.inner
                .store
                .put_record(BELL, current.map(|v| v.rev), bell)
                .await
        };
        if let Err(e) = rang.await {
            // Claimers still find the run on their next look (within `RESCAN`).
            tracing::warn!(error = %e, "could not wake the workers");
        }
    }

    /// After a holder ended a queued run's lease: drops the queue entry of a run that finished
    /// for good, or wakes claimers for a run given back (a retryable failure, a cancel).
    pub(super) async fn lease_ended(&self, key: &str, rec: &LeaseRecord) {
        if !rec.job {
            return;
        }
        if let Some(id) = &rec.acquisition_id {
            // The claim that took this lease has nothing left to give back to a retry.
            if let Err(e) = self.inner.store.delete_doc(&claim::claim_doc(id)).await {
                tracing::warn!(%key, error = %e, "could not forget a finished claim");
            }
        }
        if rec.state == LeaseState::Released {
            self.ring().await;
            return;
        }
        if !matches!(rec.state, LeaseState::Completed | LeaseState::Failed)
            || has_actions(rec.metadata.as_deref())
        {
            return;
        }
        let doc = queue_doc(key);
        if let Err(e) = self.inner.store.delete_doc(&doc).await {
            // Harmless: a claimer that finds it sees the finished run and deletes it.
            tracing::warn!(%key, error = %e, "could not remove a finished run from the queue");
        }
    }
}

/// A fresh bell: a record nobody can hold.
fn bell_record(now: u64) -> LeaseRecord {
    LeaseRecord {
        done_at_ms: Some(now),
        ..LeaseRecord::blank(LeaseState::Completed, now)
    }
}
