//! Check-lock: an atomic claim with a TTL. A duplicate never refreshes the TTL.

use super::Engine;
use crate::error::Result;
use crate::models::{CheckLockRequest, CheckLockResult};
use crate::store::{LockClaim, Store};
use crate::time::{datetime_from_ms, ms};
use crate::validate;

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
        self.ensure_purger();

        let now = self.now_ms();
        self.charge(crate::models::UsageKind::Make, now).await?;
        let claim = self
            .inner
            .store
            .claim_lock(&req.key, now, now + ms(ttl), req.metadata.as_ref())
            .await?;
        let (locked, first_seen_at) = match claim {
            LockClaim::Claimed => (true, None),
            LockClaim::Held {
                first_seen_at_ms, ..
            } => (false, Some(datetime_from_ms(first_seen_at_ms))),
        };
        Ok(CheckLockResult {
            locked,
            duplicate: !locked,
            key: req.key,
            ttl: ttl.as_secs(),
            first_seen_at,
            request_id: req.request_id,
            status_code: 200,
            fail_open: None,
        })
    }

    /// Deletes the check-lock of `key`. Returns whether a live lock was removed.
    pub async fn release_lock(&self, key: &str) -> Result<bool> {
        validate::key(key)?;
        self.inner.store.release_lock(key, self.now_ms()).await
    }
}
