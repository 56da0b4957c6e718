//! [`AnyStore`]: whichever store a [`Target`] names, behind one type, so the server and the
//! client builder open a store in one place and run one engine type over any of them.
//!
//! A Redis store opened from synchronous code ([`AnyStore::open`], which `OnceOnly::from_env`
//! uses) connects on its first call; [`AnyStore::connect`] (`OnceOnly::redis`,
//! `onceonly-server --store redis://..`) connects at once, so a wrong URL fails at start-up.

use std::sync::Arc;

use super::{
    CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps, LogPage, LogRef,
    MemoryStore, Store, Subscription, Versioned,
};
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, JsonMap, Result};
use crate::target::Target;
use crate::time::SystemClock;

/// One of the stores this build includes, chosen at run time.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// [`MemoryStore`].
    Memory(MemoryStore),
    /// [`RedisStore`](super::RedisStore), connected now or on first use.
    #[cfg(feature = "redis")]
    Redis(LazyRedis),
    /// [`SqliteStore`](super::SqliteStore).
    #[cfg(feature = "sqlite")]
    Sqlite(super::SqliteStore),
}

/// A Redis store that connects on first use (and retries on the next call if that failed).
#[cfg(feature = "redis")]
#[derive(Debug)]
pub struct LazyRedis {
    url: secrecy::SecretString,
    store: tokio::sync::OnceCell<super::RedisStore>,
}

#[cfg(feature = "redis")]
impl LazyRedis {
    async fn get(&self) -> Result<&super::RedisStore> {
        use secrecy::ExposeSecret;
        self.store
            .get_or_try_init(|| super::RedisStore::connect(self.url.expose_secret()))
            .await
    }
}

fn not_a_store(url: &str) -> Error {
    Error::Config(format!(
        "`{url}` is an HTTP API, not a store: expected memory:, redis:// or sqlite:PATH"
    ))
}

impl AnyStore {
    /// Opens the store `target` names without waiting on the network: a Redis store connects
    /// on its first call. An HTTP target is not a store: [`Error::Config`].
    pub fn open(target: &Target) -> Result<AnyStore> {
        match target {
            Target::Memory => Ok(AnyStore::Memory(MemoryStore::new())),
            #[cfg(feature = "redis")]
            Target::Redis(url) => Ok(AnyStore::Redis(LazyRedis {
                url: url.clone().into(),
                store: tokio::sync::OnceCell::new(),
            })),
            #[cfg(feature = "sqlite")]
            Target::Sqlite(path) => Ok(AnyStore::Sqlite(super::SqliteStore::open(path)?)),
            Target::Http(url) => Err(not_a_store(url)),
        }
    }

    /// Opens the store `target` names and connects it now: an unreachable Redis is an error
    /// here rather than on the first call.
    pub async fn connect(target: &Target) -> Result<AnyStore> {
        let store = AnyStore::open(target)?;
        #[cfg(feature = "redis")]
        if let AnyStore::Redis(lazy) = &store {
            lazy.get().await?;
        }
        Ok(store)
    }
}

impl Engine<AnyStore> {
    /// The engine over the store `target` names, on the system clock: the one constructor
    /// behind `OnceOnly::from_env`. A Redis store connects on its first call.
    pub fn open(target: &Target, config: EngineConfig) -> Result<Self> {
        let store = AnyStore::open(target)?;
        Engine::try_with_config(store, config, Arc::new(SystemClock))
    }

    /// [`Engine::open`], connected now: what `onceonly-server --store` and `OnceOnly::redis`
    /// use, so a wrong address fails at once.
    pub async fn connect(target: &Target, config: EngineConfig) -> Result<Self> {
        let store = AnyStore::connect(target).await?;
        Engine::try_with_config(store, config, Arc::new(SystemClock))
    }
}

/// Forwards one call to the store inside.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call,
            #[cfg(feature = "redis")]
            AnyStore::Redis(lazy) => {
                let $s = lazy.get().await?;
                $call
            }
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $call,
        }
    };
}

impl Store for AnyStore {
    fn name(&self) -> &'static str {
        match self {
            AnyStore::Memory(s) => s.name(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(_) => "redis",
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.name(),
        }
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        each!(self, s => s.claim_lock(key, now_ms, lock).await)
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        each!(self, s => s.release_lock(key, lock_id, now_ms).await)
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        each!(self, s => s.get_record(key).await)
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        each!(self, s => s.put_record(key, expected_rev, record).await)
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        each!(self, s => s.subscribe(key).await)
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        each!(self, s => s.purge_expired(now_ms).await)
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        each!(self, s => s.add_counters(adds, now_ms).await)
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        each!(self, s => s.get_counter(key, now_ms).await)
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        each!(self, s => s.append_log(log, value, caps, now_ms, expires_at_ms).await)
    }

    async fn read_log(
        &self,
        log: LogRef<'_>,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> Result<LogPage> {
        each!(self, s => s.read_log(log, newest_first, offset, limit, now_ms).await)
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        each!(self, s => s.put_doc(key, value).await)
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        each!(self, s => s.get_doc(key).await)
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        each!(self, s => s.delete_doc(key).await)
    }

    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        each!(self, s => s.count_docs(prefix).await)
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        each!(self, s => s.list_docs(prefix, limit).await)
    }
}
