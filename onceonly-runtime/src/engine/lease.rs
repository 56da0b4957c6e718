//! The lease state machine: acquisition, and the holder's extend / complete / fail / cancel,
//! each a read followed by a compare-and-swap on the record's revision.
//!
//! The lease id is the fencing token: only the latest acquisition's id may change a record.
//! A holder whose TTL ran out cannot finish or extend: at its deadline the key reads
//! `failed` / `lease_expired`, and only a new acquisition moves it on. The deadline is checked
//! on the engine's clock just before the compare-and-swap, so a write sent an instant before
//! the deadline can land up to one store round trip after it.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use super::gov::reserved_key as reserved;
use super::usage::{Charge, Charged, Window};
use super::view::{self, CANCELLED, Phase};
use crate::error::{Error, Result};
use crate::models::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease,
    LeaseRequest, RunStatus, UsageKind,
};
use crate::store::{LeaseRecord, LeaseState, Store, Versioned};
use crate::time::ms;
use crate::{ids, validate};

/// The answer of [`Engine::acquire`].
pub(super) struct Acquisition {
    pub(super) lease: Lease,
    /// What the acquisition was charged: `Some` when `lease` acquired the key just now, `None`
    /// for answers about someone else's lease, a stored outcome, a repeated acquisition, or
    /// the claim of a queued run (its enqueuing paid for it).
    pub(super) charge: Option<Charge>,
    /// Whether `lease` acquired the key just now.
    pub(super) fresh: bool,
    /// The metadata of the acquired record (for a queued run, the run's own).
    pub(super) metadata: Option<Arc<crate::error::JsonMap>>,
}

/// `req` is a copy of the request that made `rec`'s latest acquisition.
fn repeats(req: &LeaseRequest, rec: &LeaseRecord) -> bool {
    req.acquisition_id.is_some() && rec.acquisition_id == req.acquisition_id
}

/// What a holder's write set, to recognize it when read back (see [`Engine::landed`]).
struct Written {
    state: LeaseState,
    deadlines: (u64, Option<u64>, u64),
    result: Option<Arc<crate::error::JsonMap>>,
    result_hash: Option<String>,
    error_code: Option<String>,
}

impl Written {
    fn is(&self, rec: &LeaseRecord) -> bool {
        self.state == rec.state
            && self.deadlines == (rec.lease_expires_at_ms, rec.done_at_ms, rec.purge_at_ms)
            && self.result == rec.result
            && self.result_hash == rec.result_hash
            && self.error_code == rec.error_code
    }
}

/// What a holder operation does to the record it is allowed to change.
enum Change {
    /// Write this record.
    Write(Box<LeaseRecord>),
    /// The operation already happened (a retried `complete`, say): answer without writing.
    AlreadyDone,
    /// The same lease already ended differently (another result, another error code).
    Conflict(&'static str),
}

impl<S: Store> Engine<S> {
    async fn read(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        self.inner.store.get_record(key).await
    }

    /// The state machine's acquisition: acquires the lease of `req.key`, or reports the live
    /// holder (never its lease id) or the stored outcome.
    ///
    /// An acquisition is charged against the plan's `ai` bucket before its record is written,
    /// so a refusal at the limit changes nothing; a charge that ends up paying for nothing (the
    /// write lost a race, the store failed) is refunded. A request naming the live lease's
    /// [`acquisition_id`](LeaseRequest::acquisition_id) is the same request sent again (its
    /// first answer was lost): it gets that lease back, uncharged, its expiry moved to at
    /// least now + TTL as the first answer would have had it. A copy arriving after that lease
    /// was given back is answered as an observer.
    ///
    /// The steps are separate store calls: a caller that drops this future midway can leave a
    /// charge without its lease. `onceonly-server` runs lease calls on their own task for that
    /// reason; an embedded caller that cancels acquisitions (a timeout around `lease`) can be
    /// over-counted by one per cancellation.
    pub(super) async fn acquire(&self, mut req: LeaseRequest) -> Result<Acquisition> {
        validate::key(&req.key)?;
        let ttl = req.ttl.unwrap_or(self.inner.config.default_lease_ttl);
        validate::ttl("ttl", ttl)?;
        validate::metadata(req.metadata.as_ref())?;
        super::events::check_run_id(req.metadata.as_ref())?;
        if let Some(id) = &req.acquisition_id {
            validate::token("acquisition_id", id)?;
        }
        self.ensure_purger();
        // Taken at most once, kept across lost races; every exit but a fresh acquisition
        // gives it back.
        let mut charged: Option<(Arc<Window>, Charge)> = None;
        // Moved into the record (shared from then on), not copied.
        let metadata = req.metadata.take().map(Arc::new);
        let outcome = self.acquire_loop(&req, metadata, ttl, &mut charged).await;
        match outcome {
            Ok((lease, Some(metadata))) => Ok(Acquisition {
                lease,
                charge: charged.map(|(_, charge)| charge),
                fresh: true,
                metadata,
            }),
            other => {
                if let Some((window, _)) = charged {
                    self.refund(&window, UsageKind::Ai, self.now_ms()).await;
                }
                other.map(|(lease, _)| Acquisition {
                    lease,
                    charge: None,
                    fresh: false,
                    metadata: None,
                })
            }
        }
    }

    /// The read → decide → compare-and-swap loop of [`Engine::acquire`]. Answers the lease and,
    /// for a fresh acquisition (the one outcome that keeps the charge), the acquired record's
    /// metadata.
    async fn acquire_loop(
        &self,
        req: &LeaseRequest,
        metadata: Option<Arc<crate::error::JsonMap>>,
        ttl: Duration,
        charged: &mut Option<(Arc<Window>, Charge)>,
    ) -> Result<(Lease, Option<Option<Arc<crate::error::JsonMap>>>)> {
        let retention = ms(self.inner.config.retention);
        // Refused at the limit while the key read free: looked again once, since a racer that
        // took the last unit may have acquired it in between (then this is a free answer).
        let mut looked_again = false;
        loop {
            let current = self.read(&req.key).await?;
            let now = self.now_ms();
            let lease_expires_at_ms = now + ms(ttl);
            let (expected_rev, previous) = match &current {
                None => (None, None),
                Some(v) => match view::live(&v.value, now) {
                    None => (Some(v.rev), None),
                    // A late copy of a request whose lease its holder has already given back
                    // (cancel, retryable fail): that attempt is over, and nobody would learn
                    // the id of a lease it took now.
                    Some(phase @ Phase::Free)
                        if v.value.state == LeaseState::Released && repeats(req, &v.value) =>
                    {
                        return Ok((view::observer(&req.key, &v.value, phase, now), None));
                    }
                    Some(Phase::Free | Phase::Queued) => (Some(v.rev), Some(&*v.value)),
                    Some(Phase::Held) if repeats(req, &v.value) => {
                        // A repeat never shortens the lease (the holder may have extended it).
                        if v.value.lease_expires_at_ms >= lease_expires_at_ms {
                            return Ok((
                                view::holder(&req.key, &v.value, RunStatus::Acquired),
                                None,
                            ));
                        }
                        let mut again = (*v.value).clone();
                        again.ttl_ms = ms(ttl);
                        again.lease_expires_at_ms = lease_expires_at_ms;
                        again.purge_at_ms = lease_expires_at_ms + retention;
                        let answer = view::holder(&req.key, &again, RunStatus::Acquired);
                        if self.write(&req.key, Some(v.rev), again).await? {
                            return Ok((answer, None));
                        }
                        continue;
                    }
                    Some(phase) => {
                        return Ok((view::observer(&req.key, &v.value, phase, now), None));
                    }
                },
            };
            let job = previous.is_some_and(|p| p.job);
            if charged.is_none() && !job {
                match self.try_charge(UsageKind::Ai, now).await? {
                    Charged::Taken(window, charge) => *charged = Some((window, charge)),
                    Charged::Refused { .. } if !looked_again => {
                        looked_again = true;
                        continue;
                    }
                    Charged::Refused { window, usage } => {
                        let refusal = self.refused(&window, UsageKind::Ai, usage, now);
                        return Err(Box::pin(refusal).await);
                    }
                }
            }
            let record = LeaseRecord {
                lease_id: ids::random("lease"),
                version: previous.map_or(1, |p| p.version + 1),
                ttl_ms: ms(ttl),
                lease_expires_at_ms,
                first_seen_at_ms: previous.map_or(now, |p| p.first_seen_at_ms),
                // Claiming a queued run keeps the run's own metadata.
                metadata: match previous {
                    Some(p) if job => p.metadata.clone(),
                    _ => metadata.clone(),
                },
                acquisition_id: req.acquisition_id.clone(),
                purge_at_ms: lease_expires_at_ms + retention,
                job,
                queued_at_version: previous.filter(|_| job).map_or(0, |p| p.queued_at_version),
                ..LeaseRecord::blank(LeaseState::InProgress, now)
            };
            let answer = view::holder(&req.key, &record, RunStatus::Acquired);
            let metadata = record.metadata.clone();
            match self.write(&req.key, expected_rev, record).await {
                Ok(true) => return Ok((answer, Some(metadata))),
                // Lost the race for this revision: read again and decide again.
                Ok(false) => {}
                Err(e) => {
                    let ours = |rec: &LeaseRecord| answer.lease_id.as_ref() == Some(&rec.lease_id);
                    return if self.landed(&req.key, ours).await {
                        Ok((answer, Some(metadata)))
                    } else {
                        Err(e)
                    };
                }
            }
        }
    }

    /// Whether a write whose answer was an error landed after all (a timeout after the
    /// command reached the store): the record now stored is the one `wrote` recognizes. Lease
    /// ids are unique, so another caller's write is never taken for ours. Without it the
    /// caller would see an error for a lease it holds, which nobody could then use or give
    /// back until it expired.
    async fn landed(&self, key: &str, wrote: impl Fn(&LeaseRecord) -> bool) -> bool {
        matches!(self.read(key).await, Ok(Some(v)) if wrote(&v.value))
    }

    /// Compare-and-swap of a lease record; `false` when the revision moved on.
    async fn write(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<bool> {
        Ok(self
            .inner
            .store
            .put_record(key, expected_rev, record)
            .await?
            .is_some())
    }

    /// Moves the holder's expiry to now + `ttl`.
    pub async fn extend(&self, req: ExtendRequest) -> Result<Lease> {
        reserved(&req.key)?;
        let ttl = req.ttl.unwrap_or(self.inner.config.default_lease_ttl);
        validate::ttl("ttl", ttl)?;
        let retention = ms(self.inner.config.retention);
        self.change(&req.key, &req.lease_id, |rec, now| match rec.state {
            LeaseState::InProgress => {
                let mut next = rec.clone();
                next.ttl_ms = ms(ttl);
                next.lease_expires_at_ms = now + ms(ttl);
                next.purge_at_ms = next.lease_expires_at_ms + retention;
                Some(Change::Write(Box::new(next)))
            }
            _ => None,
        })
        .await
    }

    /// Stores `req.result` and ends the lease. Repeating it with the same lease id and the same
    /// result is a no-op; with another result it is [`Error::Conflict`] and the first stays.
    ///
    /// With a daily result-bytes quota ([`Quotas`](super::Quotas)), the result's size is counted
    /// first and a completion over the quota is refused with [`Error::QuotaExceeded`] (the lease
    /// stays held; `run_fn` then fails the key, see [`Error::is_content_refused`]). A repeat of
    /// a completion already stored is not counted again, and a completion that fails gives its
    /// bytes back.
    pub async fn complete(&self, req: CompleteRequest) -> Result<Lease> {
        reserved(&req.key)?;
        self.complete_any(req).await
    }

    /// [`complete`](Self::complete) of any key, the engine's own included.
    pub(crate) async fn complete_any(&self, mut req: CompleteRequest) -> Result<Lease> {
        if let Some(hash) = &req.result_hash {
            validate::digest("result_hash", hash)?;
        }
        let mut counted = None;
        if let Some(result) = &req.result {
            let len = validate::json_map_len(result)?;
            let max = self.inner.config.max_result_bytes;
            if len > max {
                return Err(Error::Validation(format!(
                    "result is {len} bytes as JSON; the maximum is {max}"
                )));
            }
            // Only a quota needs the extra read: without one, `complete` stays one round trip.
            if self.inner.config.quotas.result_bytes_per_day.is_some()
                && !self.already_completed(&req).await?
            {
                counted = self.charge_result_bytes(len as u64, self.now_ms()).await?;
            }
        }
        // Moved, not copied: the record shares it from here on.
        let result = req.result.take().map(Arc::new);
        let completed = self.store_completion(&req, result).await;
        if let (Err(_), Some(charged)) = (&completed, counted) {
            self.refund_result_bytes(charged).await;
        }
        completed
    }

    /// Whether `req` repeats the completion its lease already made (the same lease id, a
    /// completed record): a retry after a lost answer, which stores nothing new.
    async fn already_completed(&self, req: &CompleteRequest) -> Result<bool> {
        let current = self.inner.store.get_record(&req.key).await?;
        Ok(current.is_some_and(|v| {
            v.value.state == LeaseState::Completed && v.value.lease_id == req.lease_id
        }))
    }

    async fn store_completion(
        &self,
        req: &CompleteRequest,
        result: Option<Arc<crate::error::JsonMap>>,
    ) -> Result<Lease> {
        let retention = ms(self.inner.config.retention);
        self.change(&req.key, &req.lease_id, |rec, now| match rec.state {
            LeaseState::InProgress => {
                let mut next = rec.clone();
                next.state = LeaseState::Completed;
                next.done_at_ms = Some(now);
                next.result = result.clone();
                next.result_hash = req.result_hash.clone();
                next.purge_at_ms = now + retention;
                Some(Change::Write(Box::new(next)))
            }
            // A repeat that leaves the digest out does not contradict the first one.
            LeaseState::Completed
                if rec.result == result
                    && (req.result_hash.is_none() || rec.result_hash == req.result_hash) =>
            {
                Some(Change::AlreadyDone)
            }
            LeaseState::Completed => Some(Change::Conflict(
                "this lease already completed with another result; the first result stands",
            )),
            LeaseState::Failed | LeaseState::Released => Some(Change::Conflict(
                "this lease already ended without a result (failed or cancelled); that stands",
            )),
        })
        .await
    }

    /// Stores a failure. Terminal by default; `retryable` releases the key instead.
    pub async fn fail(&self, req: FailRequest) -> Result<Lease> {
        reserved(&req.key)?;
        self.fail_any(req).await
    }

    /// [`fail`](Self::fail) of any key, the engine's own included.
    pub(crate) async fn fail_any(&self, req: FailRequest) -> Result<Lease> {
        validate::code("error_code", &req.error_code)?;
        if let Some(hash) = &req.error_hash {
            validate::digest("error_hash", hash)?;
        }
        let target = if req.retryable {
            LeaseState::Released
        } else {
            LeaseState::Failed
        };
        let ending = Ending {
            state: target,
            error_code: &req.error_code,
            error_hash: req.error_hash.clone(),
            cancel_reason: None,
        };
        self.finish(&req.key, &req.lease_id, ending).await
    }

    /// Releases the key without a result; the next `lease` acquires at once.
    pub async fn cancel(&self, req: CancelRequest) -> Result<Lease> {
        reserved(&req.key)?;
        self.cancel_any(req).await
    }

    /// [`cancel`](Self::cancel) of any key, the engine's own included.
    pub(crate) async fn cancel_any(&self, req: CancelRequest) -> Result<Lease> {
        if let Some(reason) = &req.reason {
            validate::short_text("reason", reason)?;
        }
        let ending = Ending {
            state: LeaseState::Released,
            error_code: CANCELLED,
            error_hash: None,
            cancel_reason: req.reason.clone().filter(|r| !r.is_empty()),
        };
        self.finish(&req.key, &req.lease_id, ending).await
    }

    async fn finish(&self, key: &str, lease_id: &str, ending: Ending<'_>) -> Result<Lease> {
        let retention = ms(self.inner.config.retention);
        self.change(key, lease_id, |rec, now| match rec.state {
            LeaseState::InProgress => {
                let mut next = rec.clone();
                next.state = ending.state;
                next.done_at_ms = Some(now);
                next.error_code = Some(ending.error_code.to_owned());
                next.error_hash = ending.error_hash.clone();
                next.cancel_reason = ending.cancel_reason.clone();
                next.purge_at_ms = now + retention;
                Some(Change::Write(Box::new(next)))
            }
            state
                if state == ending.state
                    && rec.error_code.as_deref() == Some(ending.error_code) =>
            {
                Some(Change::AlreadyDone)
            }
            LeaseState::Failed | LeaseState::Released => Some(Change::Conflict(
                "this lease already ended with another error code or state; the first stands",
            )),
            LeaseState::Completed => Some(Change::Conflict(
                "this lease already completed; its result stands",
            )),
        })
        .await
    }

    /// The fenced read-modify-write shared by every holder operation. `decide` returns `None`
    /// when the record's state does not allow the operation, which the caller sees as
    /// `LeaseLost` like a foreign lease id.
    async fn change(
        &self,
        key: &str,
        lease_id: &str,
        decide: impl Fn(&LeaseRecord, u64) -> Option<Change>,
    ) -> Result<Lease> {
        validate::key(key)?;
        validate::short_text("lease_id", lease_id)?;
        let lost = || Error::LeaseLost {
            key: key.to_owned(),
        };
        loop {
            let current = self.read(key).await?.ok_or_else(lost)?;
            let now = self.now_ms();
            let rec = &current.value;
            if rec.lease_id != lease_id || view::live(rec, now).is_none() {
                return Err(lost());
            }
            // A lease ends at its deadline, whether or not someone acquired the key since: the
            // key already reads `failed` / `lease_expired`, and a late holder must not turn
            // that into `completed` (or anything else) without a new acquisition.
            if rec.state == LeaseState::InProgress && rec.lease_expires_at_ms <= now {
                return Err(lost());
            }
            let next = match decide(rec, now).ok_or_else(lost)? {
                Change::AlreadyDone => return Ok(self.holder_answer(key, rec)),
                Change::Conflict(reason) => {
                    return Err(Error::Conflict {
                        key: key.to_owned(),
                        reason: reason.to_owned(),
                    });
                }
                Change::Write(next) => next,
            };
            let answer = self.holder_answer(key, &next);
            let finished = super::events::finished_event(key, &next);
            let ended = next.job.then(|| (*next).clone());
            // What tells our write from any other: only this lease id's holder writes it, and
            // two of its writes differ in state, deadlines or outcome (two racing calls of one
            // holder with other results or codes, in one millisecond, included). The result is
            // shared, not copied, so keeping it costs nothing.
            let wrote = Written {
                state: next.state,
                deadlines: (next.lease_expires_at_ms, next.done_at_ms, next.purge_at_ms),
                result: next.result.clone(),
                result_hash: next.result_hash.clone(),
                error_code: next.error_code.clone(),
            };
            let written = match self
                .inner
                .store
                .put_record(key, Some(current.rev), *next)
                .await
            {
                Ok(written) => written.is_some(),
                Err(_)
                    if self
                        .landed(key, |rec| rec.lease_id == lease_id && wrote.is(rec))
                        .await =>
                {
                    true
                }
                Err(e) => return Err(e),
            };
            if written {
                self.record_run_event(finished).await;
                if let Some(run) = ended {
                    // Boxed: only queued runs get here.
                    Box::pin(self.lease_ended(key, &run)).await;
                }
                return Ok(answer);
            }
        }
    }

    fn holder_answer(&self, key: &str, rec: &LeaseRecord) -> Lease {
        let status = match rec.state {
            LeaseState::InProgress => RunStatus::Acquired,
            LeaseState::Completed => RunStatus::Completed,
            LeaseState::Failed | LeaseState::Released => RunStatus::Failed,
        };
        view::holder(key, rec, status)
    }

    /// Where `key` stands now.
    pub async fn status(&self, key: &str) -> Result<AiStatus> {
        validate::key(key)?;
        let current = self.read(key).await?;
        let now = self.now_ms();
        Ok(
            match current
                .as_ref()
                .and_then(|v| Some((&v.value, view::live(&v.value, now)?)))
            {
                Some((rec, phase)) => view::status(key, rec, phase, now),
                None => view::not_found_status(key),
            },
        )
    }

    /// The stored result of `key` (with its status).
    pub async fn result(&self, key: &str) -> Result<AiResult> {
        validate::key(key)?;
        let current = self.read(key).await?;
        let now = self.now_ms();
        let live = current
            .as_ref()
            .and_then(|v| Some((&*v.value, view::live(&v.value, now)?)));
        Ok(view::result(key, live, now))
    }
}

/// How a holder ends its lease without a result.
struct Ending<'a> {
    state: LeaseState,
    error_code: &'a str,
    error_hash: Option<String>,
    cancel_reason: Option<String>,
}
