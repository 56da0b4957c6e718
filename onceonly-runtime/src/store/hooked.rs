//! A store wrapper for fault-injection tests (feature `testing`): it runs hooks around lease
//! record reads and writes, so a test can suspend a caller at an exact step, fail a step, or
//! hold one until the test says go. Every other primitive passes straight through.

use std::future::Future;
use std::sync::Arc;

use super::{
    CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps, LogPage, LogRef, Store,
    Subscription, Versioned,
};
use crate::error::{JsonMap, Result};

/// What a [`Hooked`] store does around record reads and writes. Every hook defaults to doing
/// nothing; an `Err` from a `before_*` hook is returned instead of touching the inner store.
pub trait StoreHooks: Send + Sync + 'static {
    /// Before [`Store::get_record`].
    fn before_read(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = key;
        async { Ok(()) }
    }

    /// After [`Store::get_record`] answered, before its answer is returned.
    fn after_read(&self, key: &str) -> impl Future<Output = ()> + Send {
        let _ = key;
        async {}
    }

    /// Before [`Store::put_record`].
    fn before_write(
        &self,
        key: &str,
        record: &LeaseRecord,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (key, record);
        async { Ok(()) }
    }

    /// After [`Store::put_record`] answered `written` (the new revision, or `None` for a
    /// revision that did not match). An `Err` is returned instead of that answer: a write that
    /// landed but whose answer was lost, as a timeout after the command reached the server.
    fn after_write(
        &self,
        key: &str,
        written: Option<u64>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (key, written);
        async { Ok(()) }
    }
}

/// `inner`, with `hooks` run around its record reads and writes.
#[derive(Debug)]
pub struct Hooked<S, H> {
    inner: S,
    hooks: H,
}

impl<S: Store, H: StoreHooks> Hooked<S, H> {
    /// Wraps `inner`.
    pub fn new(inner: S, hooks: H) -> Self {
        Hooked { inner, hooks }
    }

    /// The hooks, to arm or inspect them from the test.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }
}

impl<S: Store, H: StoreHooks> Store for Hooked<S, H> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        self.inner.claim_lock(key, now_ms, lock).await
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        self.inner.release_lock(key, lock_id, now_ms).await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        self.hooks.before_read(key).await?;
        let read = self.inner.get_record(key).await;
        self.hooks.after_read(key).await;
        read
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        self.hooks.before_write(key, &record).await?;
        let written = self.inner.put_record(key, expected_rev, record).await?;
        self.hooks.after_write(key, written).await?;
        Ok(written)
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        self.inner.subscribe(key).await
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        self.inner.purge_expired(now_ms).await
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        self.inner.add_counters(adds, now_ms).await
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        self.inner.get_counter(key, now_ms).await
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        self.inner
            .append_log(log, value, caps, now_ms, expires_at_ms)
            .await
    }

    async fn read_log(
        &self,
        log: LogRef<'_>,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> Result<LogPage> {
        self.inner
            .read_log(log, newest_first, offset, limit, now_ms)
            .await
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        self.inner.put_doc(key, value).await
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        self.inner.get_doc(key).await
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        self.inner.delete_doc(key).await
    }

    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        self.inner.count_docs(prefix).await
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        self.inner.list_docs(prefix, limit).await
    }
}
