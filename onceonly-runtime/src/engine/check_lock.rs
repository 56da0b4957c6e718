//! Check-lock: an atomic claim with a TTL. A duplicate never refreshes the TTL.

use super::Engine;
use crate::error::Result;
use crate::models::{CheckLockRequest, CheckLockResult, UsageKind};
use crate::store::{LockClaim, LockEntry, Store};
use crate::time::{datetime_from_ms, ms};
use crate::{ids, validate};

impl<S: Store> Engine<S> {
    /// Locks `req.key` for `req.ttl` (default [`EngineConfig::default_lock_ttl`]) unless a live
    /// lock exists, in which case the answer is a duplicate with the original `first_seen_at`.
    /// Each answered call counts against the `make` bucket of the account's plan; at the
    /// plan's monthly limit the call is refused with [`Error::OverLimit`](crate::Error::OverLimit).
    ///
    /// [`EngineConfig::default_lock_ttl`]: super::EngineConfig::default_lock_ttl
    pub async fn check_lock(&self, req: CheckLockRequest) -> Result<CheckLockResult> {
        validate::key(&req.key)?;
        let ttl = req.ttl.unwrap_or(self.inner.config.default_lock_ttl);
        validate::ttl("ttl", ttl)?;
        validate::metadata(req.metadata.as_ref())?;
        // Travels as `X-Request-Id` over HTTP: the same rule here keeps the backends alike.
        if let Some(id) = req.request_id.as_deref().filter(|id| !id.is_empty()) {
            validate::token("request_id", id)?;
        }
        self.ensure_purger();

        let now = self.now_ms();
        let (window, _) = self.charge(UsageKind::Make, now).await?;
        let lock_id = ids::random("lock");
        let entry = LockEntry {
            lock_id: lock_id.clone(),
            first_seen_at_ms: now,
            expires_at_ms: now + ms(ttl),
            metadata: req.metadata,
        };
        let claim = match self.inner.store.claim_lock(&req.key, now, entry).await {
            Ok(claim) => claim,
            Err(e) => {
                // Not answered, so not counted.
                self.refund(&window, UsageKind::Make, now).await;
                return Err(e);
            }
        };
        let (locked, first_seen_at, lock_id) = match claim {
            LockClaim::Claimed => (true, None, Some(lock_id)),
            LockClaim::Held {
                first_seen_at_ms, ..
            } => (false, Some(datetime_from_ms(first_seen_at_ms)), None),
        };
        Ok(CheckLockResult {
            locked,
            duplicate: !locked,
            key: req.key,
            // Whole seconds rounded up, as lease answers show them: a 1.5 s lock reads 2.
            ttl: ms(ttl).div_ceil(1000),
            first_seen_at,
            lock_id,
            request_id: req.request_id,
            status_code: 200,
            fail_open: None,
        })
    }

    /// Deletes the check-lock of `key`: any lock when `lock_id` is `None`, otherwise only the
    /// lock that [`check_lock`](Self::check_lock) answered with that
    /// [`lock_id`](CheckLockResult::lock_id). Returns whether a live lock was removed.
    pub async fn release_lock(&self, key: &str, lock_id: Option<&str>) -> Result<bool> {
        validate::key(key)?;
        if let Some(id) = lock_id {
            validate::token("lock_id", id)?;
        }
        self.inner
            .store
            .release_lock(key, lock_id, self.now_ms())
            .await
    }
}
