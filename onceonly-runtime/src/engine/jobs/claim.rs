//! Claiming a queued run: find a queue entry that matches, acquire its run's lease.

use rand::seq::SliceRandom;
use tokio::time::Instant;

use super::{BELL, QUEUE_PREFIX, RESCAN};
use crate::engine::Engine;
use crate::engine::view::{self, Phase};
use crate::error::{Error, JsonMap, Result};
use crate::models::{ClaimRequest, ClaimedJob, LeaseRequest, RunStatus};
use crate::store::{LeaseRecord, LeaseState, Store};
use crate::time::deadline_after;
use crate::validate;

/// How many queue entries one look reads. Entries are read in key order, so a worker sees
/// the first this many runs of its pattern (running ones included: see the README).
const SCAN: usize = 1024;

/// A claim pattern: `prefix*` or an exact key.
struct Pattern<'a> {
    prefix: &'a str,
    exact: bool,
}

fn pattern(p: &str) -> Result<Pattern<'_>> {
    let bad = |why: &str| Err(Error::validation(format!("pattern {p:?}: {why}")));
    match p.strip_suffix('*') {
        Some(prefix) if prefix.contains('*') => bad("only a trailing `*` is a wildcard"),
        Some(prefix) => {
            if !prefix.is_empty() {
                validate::key(prefix)?;
            }
            Ok(Pattern {
                prefix,
                exact: false,
            })
        }
        None if p.contains('*') => bad("only a trailing `*` is a wildcard"),
        None => {
            validate::key(p)?;
            Ok(Pattern {
                prefix: p,
                exact: true,
            })
        }
    }
}

impl<S: Store> Engine<S> {
    /// Claims one queued run whose key matches `req.pattern` and that a worker executes (not
    /// a run of actions), waiting up to `req.wait` for one. `None` when none came in time.
    ///
    /// The claim is the acquisition of the run's lease for `req.lease_ttl`: exactly one of
    /// any number of concurrent claimers, in any number of processes, gets a given run. The
    /// winner keeps the lease alive with `extend` and ends the run with `complete`, `fail`
    /// (a retryable failure puts the run back in the queue) or `cancel` (likewise). A run
    /// whose worker's lease ran out is queued again and goes to the next claim, as a new
    /// attempt. Claims are free: the run was charged when it was queued.
    pub async fn claim_job(&self, req: ClaimRequest) -> Result<Option<ClaimedJob>> {
        let pattern = pattern(&req.pattern)?;
        validate::ttl("lease_ttl", req.lease_ttl)?;
        if let Some(id) = &req.acquisition_id {
            validate::token("acquisition_id", id)?;
            if let Some(job) = self.reclaimed(id).await? {
                return Ok(Some(job));
            }
        }
        if req.wait > ClaimRequest::MAX_WAIT {
            return Err(Error::validation(format!(
                "wait must be at most {}s",
                ClaimRequest::MAX_WAIT.as_secs()
            )));
        }
        self.ensure_purger();
        let deadline = deadline_after(req.wait);
        let Some(id) = &req.acquisition_id else {
            return self.claim_until(&pattern, &req, deadline).await;
        };
        // One claim per name looks at the queue at a time: copies of a claim sent while the
        // first is still looking (a retry after a timeout, maybe at another replica) would
        // otherwise each take a run, and the worker would learn of one only.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(rev) = self.reserve_name(id, left).await? {
                // Freed at the end, or in the background if this claim is dropped midway (its
                // caller hung up): copies need not wait out the reservation.
                let mut reserved = Reservation {
                    engine: self.clone(),
                    id: id.clone(),
                    rev: Some(rev),
                };
                // A copy that ended between the first look and the reservation may have taken
                // a run: that run is this claim's answer.
                let claimed = match self.reclaimed(id).await {
                    Ok(None) => self.claim_until(&pattern, &req, deadline).await,
                    other => other,
                };
                if let Some(rev) = reserved.rev.take() {
                    self.free_name(id, rev).await;
                }
                return claimed;
            }
            // Another copy is looking: its run, once it has one, is this claim's answer. A
            // copy that ended without one (or whose reservation lapsed, its caller gone)
            // leaves the rest of this claim's wait to this claim.
            if let Some(job) = self.await_name(id, deadline).await? {
                return Ok(Some(job));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Looks at the queue until a run is claimed or `deadline` passes.
    async fn claim_until(
        &self,
        pattern: &Pattern<'_>,
        req: &ClaimRequest,
        deadline: Instant,
    ) -> Result<Option<ClaimedJob>> {
        loop {
            // Subscribed before looking, so a run queued after the look wakes this claim.
            let mut bell = self.inner.store.subscribe(BELL).await?;
            if let Some(job) = self.claim_once(pattern, req).await? {
                return Ok(Some(job));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                () = bell.changed() => {}
                () = tokio::time::sleep_until(deadline.min(Instant::now() + RESCAN)) => {}
            }
        }
    }

    /// One look at the queue: tries the matching runs nobody holds, in random order so
    /// concurrent claimers spread over them. Tidies entries of runs that are gone or finished.
    async fn claim_once(
        &self,
        pattern: &Pattern<'_>,
        req: &ClaimRequest,
    ) -> Result<Option<ClaimedJob>> {
        let prefix = format!("{QUEUE_PREFIX}{}", pattern.prefix);
        let mut entries = self.inner.store.list_docs(&prefix, SCAN).await?;
        if pattern.exact {
            entries.retain(|(doc, _)| doc.len() == prefix.len());
        }
        entries.shuffle(&mut rand::rng());
        for (doc, _) in entries {
            let key = &doc[QUEUE_PREFIX.len()..];
            let current = self.inner.store.get_record(key).await?;
            let now = self.now_ms();
            match current.as_ref().and_then(|v| view::live(&v.value, now)) {
                Some(Phase::Queued) => {}
                Some(Phase::Held) => continue,
                // Finished, purged, or no longer a queued run: the entry is stale.
                _ => {
                    self.inner.store.delete_doc(&doc).await?;
                    continue;
                }
            }
            // A claimer whose lease ran out (it died, or hung) leaves its claim's document.
            let lapsed = current.and_then(|v| v.value.acquisition_id.clone());
            let mut take = LeaseRequest::new(key).ttl(req.lease_ttl);
            take.acquisition_id = req.acquisition_id.clone();
            let lease = self.accounted_lease(take).await?;
            if lease.status != RunStatus::Acquired {
                continue; // Another claimer won this one.
            }
            if let Some(lapsed) = lapsed.filter(|l| Some(l) != req.acquisition_id.as_ref()) {
                self.forget_lapsed_claim(&lapsed, key).await;
            }
            let Some(rec) = self.inner.store.get_record(key).await? else {
                continue;
            };
            if let Some(id) = &req.acquisition_id {
                let mut entry = JsonMap::new();
                entry.insert("key".into(), key.into());
                self.inner.store.put_doc(&claim_doc(id), entry).await?;
            }
            return Ok(Some(job_of(key, &rec.value)));
        }
        Ok(None)
    }

    /// Removes the document of the claim `id` if it still names `key` (the same id may have
    /// claimed another run since). Best effort: the run is claimed either way.
    async fn forget_lapsed_claim(&self, id: &str, key: &str) {
        let doc = claim_doc(id);
        let forgotten = async {
            let names_key = self
                .inner
                .store
                .get_doc(&doc)
                .await?
                .is_some_and(|d| d.get("key").and_then(|k| k.as_str()) == Some(key));
            if names_key {
                self.inner.store.delete_doc(&doc).await?;
            }
            Ok::<_, crate::Error>(())
        };
        if let Err(e) = forgotten.await {
            tracing::warn!(error = %e, "could not remove a lapsed claim's document");
        }
    }

    /// Reserves the claim name `id` while its claim looks at the queue (at most `wait`, and
    /// a little more for its last look): the reservation's revision, or `None` when another
    /// claim with the name is looking now.
    async fn reserve_name(&self, id: &str, wait: std::time::Duration) -> Result<Option<u64>> {
        let key = name_key(id);
        let now = self.now_ms();
        let current = self.inner.store.get_record(&key).await?;
        if current.as_ref().is_some_and(|v| looking(&v.value, now)) {
            return Ok(None);
        }
        let until = now + crate::time::ms(wait + NAME_SLACK);
        let reservation = LeaseRecord {
            lease_expires_at_ms: until,
            purge_at_ms: until + crate::time::ms(NAME_SLACK),
            ..LeaseRecord::blank(LeaseState::InProgress, now)
        };
        self.inner
            .store
            .put_record(&key, current.map(|v| v.rev), reservation)
            .await
    }

    /// Ends the reservation `rev` of the name `id`, waking the claims that wait on it. Best
    /// effort: a reservation left behind ends at its deadline anyway.
    async fn free_name(&self, id: &str, rev: u64) {
        let now = self.now_ms();
        let done = LeaseRecord {
            done_at_ms: Some(now),
            purge_at_ms: now + crate::time::ms(NAME_SLACK),
            ..LeaseRecord::blank(LeaseState::Completed, now)
        };
        if let Err(e) = self
            .inner
            .store
            .put_record(&name_key(id), Some(rev), done)
            .await
        {
            tracing::warn!(error = %e, "could not end a claim name's reservation; it will lapse");
        }
    }

    /// A copy of a claim whose name another claim holds: waits for that claim to end (or for
    /// `deadline`), then answers the run it took (`None` when it took none).
    async fn await_name(&self, id: &str, deadline: Instant) -> Result<Option<ClaimedJob>> {
        let key = name_key(id);
        loop {
            let mut changed = self.inner.store.subscribe(&key).await?;
            let current = self.inner.store.get_record(&key).await?;
            let now = self.now_ms();
            if !current.is_some_and(|v| looking(&v.value, now)) || Instant::now() >= deadline {
                return self.reclaimed(id).await;
            }
            tokio::select! {
                () = changed.changed() => {}
                () = tokio::time::sleep_until(deadline.min(Instant::now() + RESCAN)) => {}
            }
        }
    }

    /// The run an earlier claim with the same `acquisition_id` took and still holds: the same
    /// request sent again after its answer was lost gets that run back, not a second one.
    async fn reclaimed(&self, id: &str) -> Result<Option<ClaimedJob>> {
        let doc = claim_doc(id);
        let Some(entry) = self.inner.store.get_doc(&doc).await? else {
            return Ok(None);
        };
        let Some(serde_json::Value::String(key)) = entry.get("key") else {
            return Ok(None);
        };
        let current = self.inner.store.get_record(key).await?;
        let now = self.now_ms();
        match current {
            Some(v)
                if view::live(&v.value, now) == Some(Phase::Held)
                    && v.value.acquisition_id.as_deref() == Some(id) =>
            {
                Ok(Some(job_of(key, &v.value)))
            }
            // That run ended or went to someone else: the claim's answer no longer stands.
            _ => {
                self.inner.store.delete_doc(&doc).await?;
                Ok(None)
            }
        }
    }
}

/// The record that reserves the claim name `id` while its claim looks at the queue: under a
/// control character, so no caller's key can name it.
fn name_key(id: &str) -> String {
    format!("\u{1}jobs:claim:{id}")
}

/// A claim name reserved by [`Engine::reserve_name`]; dropped while still held (the claim's
/// future was dropped), it is freed in the background.
struct Reservation<S: Store> {
    engine: Engine<S>,
    id: String,
    rev: Option<u64>,
}

impl<S: Store> Drop for Reservation<S> {
    fn drop(&mut self) {
        let Some(rev) = self.rev.take() else { return };
        let (engine, id) = (self.engine.clone(), std::mem::take(&mut self.id));
        let freed = crate::holder::run_detached(Box::pin(async move {
            engine.free_name(&id, rev).await;
        }));
        if !freed {
            tracing::warn!("a claim name was left reserved outside a runtime; it will lapse");
        }
    }
}

/// Whether a name's reservation `rec` says its claim is looking at the queue at `now`.
fn looking(rec: &LeaseRecord, now: u64) -> bool {
    rec.state == LeaseState::InProgress && rec.lease_expires_at_ms > now
}

/// Added to a claim's wait for its name's reservation, and kept after it for the purge.
const NAME_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The document that remembers which run the claim `id` took (removed when the run's lease
/// ends, see `lease_ended`, or when another claim takes the run after the lease ran out).
pub(super) fn claim_doc(id: &str) -> String {
    format!("jobclaim:{id}")
}

/// What the holder of `rec` (the queued run `key`) works with.
fn job_of(key: &str, rec: &LeaseRecord) -> ClaimedJob {
    let metadata = rec.metadata.as_deref().cloned().unwrap_or_default();
    ClaimedJob {
        key: key.to_owned(),
        lease_id: rec.lease_id.clone(),
        run_id: run_id(&metadata, key),
        metadata,
        attempt: rec.version.saturating_sub(rec.queued_at_version),
        ttl: rec.ttl_ms.div_ceil(1000),
    }
}

fn run_id(metadata: &JsonMap, key: &str) -> String {
    match metadata.get("run_id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::pattern;

    #[test]
    fn patterns_are_a_prefix_with_a_trailing_star_or_an_exact_key() {
        let p = pattern("report:*").unwrap();
        assert_eq!((p.prefix, p.exact), ("report:", false));
        let all = pattern("*").unwrap();
        assert_eq!((all.prefix, all.exact), ("", false));
        let exact = pattern("report:2026-11").unwrap();
        assert_eq!((exact.prefix, exact.exact), ("report:2026-11", true));
        for bad in ["", "a*b*", "*x", "re*port", " "] {
            assert!(pattern(bad).is_err(), "{bad:?}");
        }
    }
}
