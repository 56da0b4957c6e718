//! Accounts and tenancy: whose calls an engine serves, under which plan, and how tenants that
//! share one store stay apart.
//!
//! A tenant is a view of a root engine whose store keys all carry the prefix `t/<id>/`. Locks,
//! lease records, usage counters, event logs and change notifications of one tenant therefore
//! never meet another's, whatever key a caller picks, and every rule of the engine applies
//! unchanged inside a tenant. The tenants share the root's store, clock, configuration and
//! purge loop.

use std::sync::Arc;

use super::purge::StartPurge;
use super::{Engine, Inner};
use crate::error::{Error, JsonMap, Result};
use crate::models::UsageKind;
use crate::store::{
    CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps, LogPage, LogRef, Store,
    Subscription, Versioned,
};

/// Longest accepted tenant id, in bytes.
pub(crate) const MAX_TENANT_ID_BYTES: usize = 64;

/// Monthly limits of an account, per usage bucket. `None` means unlimited (the default).
///
/// ```
/// use onceonly_runtime::engine::Plan;
/// use onceonly_runtime::models::UsageKind;
///
/// let free = Plan::new("free").make_limit(1_000).ai_limit(3_000);
/// assert_eq!(free.limit(UsageKind::Make), Some(1_000));
/// assert_eq!(Plan::unlimited().limit(UsageKind::Ai), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The name shown by `me` and `usage` (`free`, `pro`, `unlimited`, ...).
    pub name: String,
    /// Check-locks per UTC month (the `make` bucket).
    pub make_limit: Option<u64>,
    /// Acquired leases and runs per UTC month (the `ai` bucket).
    pub ai_limit: Option<u64>,
}

impl Plan {
    /// The name of [`Plan::unlimited`].
    pub const UNLIMITED: &'static str = "unlimited";

    /// A plan called `name` without limits.
    pub fn new(name: impl Into<String>) -> Self {
        Plan {
            name: name.into(),
            make_limit: None,
            ai_limit: None,
        }
    }

    /// No limits at all: the default of every engine.
    pub fn unlimited() -> Self {
        Plan::new(Plan::UNLIMITED)
    }

    /// Sets the monthly check-lock limit.
    pub fn make_limit(mut self, limit: u64) -> Self {
        self.make_limit = Some(limit);
        self
    }

    /// Sets the monthly limit of acquired leases and runs.
    pub fn ai_limit(mut self, limit: u64) -> Self {
        self.ai_limit = Some(limit);
        self
    }

    /// The monthly limit of one bucket.
    pub fn limit(&self, kind: UsageKind) -> Option<u64> {
        match kind {
            UsageKind::Make => self.make_limit,
            UsageKind::Ai => self.ai_limit,
        }
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan::unlimited()
    }
}

/// Who an engine's calls are accounted to.
///
/// A plain [`Engine`] serves one anonymous account with an unlimited plan; [`Engine::tenant`]
/// makes engines for named accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Account {
    /// The tenant id (`None` for the root engine).
    pub tenant_id: Option<String>,
    /// The plan and its limits.
    pub plan: Plan,
    /// A recognisable but harmless form of the credential behind the account (for example
    /// `once_live_…f3a9`), shown by `me`. Never the credential itself.
    pub key_preview: Option<String>,
}

impl Account {
    /// The account of tenant `id` on `plan`.
    pub fn tenant(id: impl Into<String>, plan: Plan) -> Self {
        Account {
            tenant_id: Some(id.into()),
            plan,
            key_preview: None,
        }
    }

    /// Sets the key preview shown by `me`.
    pub fn key_preview(mut self, preview: impl Into<String>) -> Self {
        self.key_preview = Some(preview.into());
        self
    }
}

/// An engine scoped to one tenant of a shared store: see [`Engine::tenant`].
pub type TenantEngine<S> = Engine<TenantStore<S>>;

impl<S: Store> Engine<S> {
    /// The account this engine serves.
    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    /// An engine for the tenant `account.tenant_id`, over this engine's store.
    ///
    /// Every key the tenant uses is stored under `t/<id>/`, so two tenants can use the same
    /// business key without ever seeing, waiting on or releasing each other's locks, leases,
    /// counters or events. Usage is counted against `account.plan`. Tenant engines share this
    /// engine's clock, configuration and purge loop; create them once and keep them (they
    /// are cheap to clone).
    ///
    /// The id must be 1 to 64 ASCII letters, digits, `-` or `_`; an account without a tenant
    /// id is refused.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use onceonly_runtime::Engine;
    /// use onceonly_runtime::engine::{Account, Plan};
    /// use onceonly_runtime::models::CheckLockRequest;
    ///
    /// let root = Engine::memory();
    /// let a = root.tenant(Account::tenant("team-a", Plan::unlimited()))?;
    /// let b = root.tenant(Account::tenant("team-b", Plan::unlimited()))?;
    /// assert!(a.check_lock(CheckLockRequest::new("evt_1")).await?.locked);
    /// assert!(b.check_lock(CheckLockRequest::new("evt_1")).await?.locked, "tenants are apart");
    /// assert!(b.release_lock("evt_1", None).await?, "b releases its own lock");
    /// assert!(a.check_lock(CheckLockRequest::new("evt_1")).await?.duplicate, "a's is untouched");
    /// # Ok(()) }
    /// ```
    pub fn tenant(&self, account: Account) -> Result<TenantEngine<S>> {
        let id = account
            .tenant_id
            .as_deref()
            .ok_or_else(|| Error::Config("a tenant account needs a tenant id".into()))?;
        validate_tenant_id(id)?;
        let prefix = format!("t/{id}/");
        self.ensure_purger();
        let store = TenantStore {
            store: Arc::clone(&self.inner.store),
            prefix,
            purger: Arc::clone(&self.inner.purger),
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                clock: Arc::clone(&self.inner.clock),
                config: self.inner.config.clone(),
                // The root's purge loop sweeps the whole store, every tenant's keys included.
                purger: Arc::clone(&self.inner.purger),
                account,
                windows: super::usage::WindowCache::default(),
                tools: Arc::clone(&self.inner.tools),
            }),
        })
    }
}

fn validate_tenant_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TENANT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "a tenant id is 1 to {MAX_TENANT_ID_BYTES} ASCII letters, digits, `-` or `_`"
        )))
    }
}

/// The store of a [`TenantEngine`]: the root engine's store with every key prefixed by
/// `t/<tenant id>/`.
pub struct TenantStore<S: Store> {
    store: Arc<S>,
    prefix: String,
    /// The root's purger: started on first use, if the root was made outside a runtime.
    purger: Arc<dyn StartPurge>,
}

impl<S: Store> std::fmt::Debug for TenantStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStore")
            .field("store", &self.store.name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl<S: Store> TenantStore<S> {
    /// The prefix of every key of this tenant (`t/<id>/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    fn inner(&self) -> &S {
        // The root may have been created outside a runtime; start its purge loop on first use.
        self.purger.ensure_started();
        &self.store
    }
}

impl<S: Store> Store for TenantStore<S> {
    fn name(&self) -> &'static str {
        self.store.name()
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        self.inner().claim_lock(&self.key(key), now_ms, lock).await
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        self.inner()
            .release_lock(&self.key(key), lock_id, now_ms)
            .await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        self.inner().get_record(&self.key(key)).await
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        self.inner()
            .put_record(&self.key(key), expected_rev, record)
            .await
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        self.inner().subscribe(&self.key(key)).await
    }

    /// Purges the whole shared store (the root's purge loop does this anyway).
    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        self.inner().purge_expired(now_ms).await
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        let keys: Vec<String> = adds.iter().map(|a| self.key(a.key)).collect();
        let adds: Vec<CounterDelta<'_>> = adds
            .iter()
            .zip(&keys)
            .map(|(a, key)| CounterDelta { key, ..*a })
            .collect();
        self.inner().add_counters(&adds, now_ms).await
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        self.inner().get_counter(&self.key(key), now_ms).await
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        let key = self.key(log.key);
        let log = LogRef { key: &key, ..log };
        self.inner()
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
        let key = self.key(log.key);
        let log = LogRef { key: &key, ..log };
        self.inner()
            .read_log(log, newest_first, offset, limit, now_ms)
            .await
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        self.inner().put_doc(&self.key(key), value).await
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        self.inner().get_doc(&self.key(key)).await
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        self.inner().delete_doc(&self.key(key)).await
    }

    /// Lists this tenant's documents only, with the tenant prefix taken off their keys.
    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        self.inner().count_docs(&self.key(prefix)).await
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        let docs = self.inner().list_docs(&self.key(prefix), limit).await?;
        Ok(docs
            .into_iter()
            .map(|(key, doc)| (key[self.prefix.len()..].to_owned(), doc))
            .collect())
    }
}
