//! A store in Redis, shared by every process and machine that connects to it (feature `redis`).

mod io;
mod pubsub;
mod scripts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, FromRedisValue, RedisError, Value};
use futures_util::future::try_join_all;
use secrecy::{ExposeSecret, SecretString};

use super::failure::StoreFailure;
use super::{
    COUNTER_GROUP_END, CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps,
    LogEntry, LogPage, LogRef, Notifier, Store, Subscription, Versioned,
};
use crate::error::{Error, JsonMap, Result};

/// Added to every garbage-collection TTL: how far an engine's clock may run behind Redis's
/// before an entry could disappear before its deadline.
const GC_MARGIN: Duration = Duration::from_secs(600);
/// The longest garbage-collection TTL set (about ten years): far-future deadlines are capped.
const GC_TTL_MAX_MS: u64 = 10 * 365 * 86_400_000;
/// How many keys one `SCAN` call looks at, and how many calls one purge makes at most.
const SCAN_COUNT: usize = 500;
const PURGE_SCANS: usize = 20;
const DEFAULT_PREFIX: &str = "onceonly";

/// A [`Store`] over Redis: atomic per key, shared across processes and machines.
///
/// # Layout
/// Every key starts with the store's prefix (default `onceonly`), so several stores share one
/// Redis without seeing each other: `PREFIX:lock:KEY` (a string), `PREFIX:rec:KEY`,
/// `PREFIX:ctr:KEY` and `PREFIX:log:KEY` (hashes). A counter key with a group
/// (`GROUP#REST`, see [`COUNTER_GROUP_END`]) is stored as `PREFIX:ctr:{GROUP}#REST`. Record
/// writes are published on the channel `PREFIX:changed`.
///
/// A document is a string of compact JSON without TTL, `PREFIX:doc:{PREFIX}:KEY`, and
/// `PREFIX:docs:{PREFIX}` is their index: a sorted set of the document keys, every score 0, so
/// [`Store::list_docs`] is one `ZRANGEBYLEX` over a prefix. A document and its index entry are
/// written and deleted together by one script.
///
/// # Atomicity and Redis Cluster
/// Every primitive is one Redis command or one Lua script (`EVALSHA`; a script missing after a
/// Redis restart is loaded again on the spot), and each touches exactly one key, except
/// [`Store::add_counters`] (one script over several counters), whose keys share a hash tag:
/// the counters' group, for the engine one tenant's usage counters. (A check-lock on a key
/// Redis does not hold is a plain `SET NX`; only an existing key needs the script.) The
/// document scripts touch a document and the index, or the index and the documents it lists:
/// every document key of a store and its index share the hash tag `{PREFIX}`, so they all live
/// in one slot (documents are few and small). Under Redis Cluster every operation therefore
/// runs within one slot, on the node that owns it. The connection itself is a single-node one:
/// the layout is ready for Cluster, the client does not route by slot yet.
///
/// # Expiry
/// Every deadline is the engine's (its clock decides), stored in the hash and compared inside
/// the scripts with the `now` the engine passes. Redis's own TTLs only collect garbage: each
/// write sets a relative TTL of what is left by the engine's clock plus 10 minutes, so an
/// engine clock that runs behind Redis's by less than that never sees an entry vanish early.
/// [`Store::purge_expired`] removes what is past its deadline by the engine's clock, walking a
/// bounded slice of the keyspace per call. Documents have neither a deadline nor a TTL: only
/// [`Store::delete_doc`] removes them.
///
/// # Waiters
/// [`Store::subscribe`] registers with an in-process [`Notifier`]. Record writes publish their
/// key; one background connection per store listens, and after it reconnects it wakes every
/// waiter, so a lost message costs a re-read, never a hang.
///
/// # Runtimes
/// The store's connections (commands and pub/sub) live on a thread of its own, with a small
/// tokio runtime, started at connect and ended when the store is dropped. So a store outlives
/// the runtime that opened it: it can be kept in a static and used from many runtimes (each
/// `#[tokio::test]`, `block_on` calls). Each command is handed to that thread, which costs a
/// little per call (see the benchmarks). A call whose caller stopped waiting (a timeout, a
/// dropped future) may still take effect, as a command already sent always could; `run_fn`,
/// the macros and the tower layer give back a lease or lock that such a call took.
///
/// # Outages and durability
/// While Redis is unreachable every call fails fast with [`Error::Store`]; later calls
/// reconnect by themselves. What Redis acknowledged survives a Redis crash (or a `SIGKILL`)
/// only with AOF on and synced before each answer: `appendonly yes` with
/// `appendfsync always`. `everysec` (Redis's default when AOF is on) may lose the last second
/// of acknowledged locks, leases and results; RDB snapshots alone lose everything since the
/// last snapshot. Redis 5 or newer (scripts call `TIME` before writing).
///
/// Run it with `maxmemory-policy noeviction` (Redis's default) if it has a `maxmemory`: every
/// lock, lease record, counter and log here carries a TTL, and at its memory limit Redis
/// evicts such keys under any `volatile-*` policy (any key under `allkeys-*`), silently: an
/// evicted lock lets a duplicate through. With `noeviction`, Redis refuses writes instead,
/// which the engine reports. [`connect`](RedisStoreBuilder::connect) logs a warning when it
/// can read a setting that evicts (`CONFIG GET`; managed services that disable it get no
/// check).
///
/// ```no_run
/// # async fn demo() -> onceonly_runtime::Result<()> {
/// use onceonly_runtime::{Engine, store::RedisStore};
///
/// let store = RedisStore::builder("redis://127.0.0.1/").prefix("billing").connect().await?;
/// let engine = Engine::new(store);
/// # Ok(()) }
/// ```
pub struct RedisStore {
    conn: io::IoConn,
    prefix: String,
    channel: String,
    notifier: Arc<Notifier>,
    /// Where the next purge resumes its walk of the keyspace.
    purge_cursor: Mutex<u64>,
    _listener: pubsub::Listener,
}

impl std::fmt::Debug for RedisStore {
    /// Names the prefix only: the URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Options of a [`RedisStore`], from [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: SecretString,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The namespace of every key and channel (default `onceonly`): ASCII letters, digits,
    /// `-`, `_` and `.`, so no prefix is the start of another's keys.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one connection attempt may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a command may wait for its answer before failing (default 2 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects (a command connection and a pub/sub connection) and returns the store. A bad
    /// URL or prefix is [`Error::Config`]; an unreachable server is [`Error::Store`].
    pub async fn connect(self) -> Result<RedisStore> {
        validate_prefix(&self.prefix)?;
        let client = Client::open(self.url.expose_secret())
            .map_err(|e| Error::Config(format!("invalid Redis URL: {e}")))?;
        // Calls made while Redis is down fail after one quick retry instead of queueing;
        // every later call tries to reconnect again, so the store recovers by itself.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        // Every connection lives on the store's own I/O thread (see `io`).
        let io = Arc::new(
            io::IoThread::start()
                .await
                .map_err(|e| failed("connect")(e.into()))?,
        );
        let conn = io
            .run(ConnectionManager::new_with_config(client.clone(), config))
            .await
            .map_err(failed("connect"))?;
        let mut conn = io::IoConn {
            conn,
            io: Arc::clone(&io),
        };
        warn_if_evicting(&mut conn).await;
        let notifier = Arc::new(Notifier::new());
        let channel = format!("{}:changed", self.prefix);
        let listener = pubsub::Listener::start(
            io.handle(),
            client,
            channel.clone(),
            Arc::clone(&notifier),
            self.connect_timeout,
        )
        .await
        .map_err(failed("subscribe"))?;
        Ok(RedisStore {
            conn,
            prefix: self.prefix,
            channel,
            notifier,
            purge_cursor: Mutex::new(0),
            _listener: listener,
        })
    }
}

/// Logs a warning when Redis would evict this store's keys at its memory limit (see "Outages
/// and durability" on [`RedisStore`]). A server that does not let us read its settings is
/// given the benefit of the doubt.
async fn warn_if_evicting(conn: &mut impl ConnectionLike) {
    async fn setting(conn: &mut impl ConnectionLike, name: &str) -> ::redis::RedisResult<String> {
        let pair: Vec<String> = ::redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(conn)
            .await?;
        Ok(pair.into_iter().nth(1).unwrap_or_default())
    }
    let settings = async {
        Ok::<_, ::redis::RedisError>((
            setting(conn, "maxmemory").await?,
            setting(conn, "maxmemory-policy").await?,
        ))
    };
    match settings.await {
        Ok((limit, policy)) if evicts(&limit, &policy) => tracing::warn!(
            maxmemory = %limit, maxmemory_policy = %policy,
            "Redis evicts keys at its memory limit: locks and leases could vanish and let \
             duplicates through; set maxmemory-policy to noeviction"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not read Redis's eviction settings"),
    }
}

/// Whether a server with `maxmemory` and `maxmemory-policy` as given evicts keys with a TTL.
fn evicts(maxmemory: &str, policy: &str) -> bool {
    let limited = maxmemory.trim().parse::<u64>().is_ok_and(|bytes| bytes > 0);
    limited && policy.trim() != "noeviction"
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid Redis key prefix {prefix:?}: use ASCII letters, digits, '-', '_' and '.'"
        )))
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]` or `redis+unix:///path`) with
    /// the default options.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        RedisStore::builder(url).connect().await
    }

    /// Options for connecting to `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: SecretString::from(url.into()),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }

    /// The namespace of this store's keys.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{key}", self.prefix)
    }

    /// A counter's key: its group (the text before [`COUNTER_GROUP_END`]) is the hash tag, so
    /// the counters of one `add_counters` call live in one Redis Cluster slot.
    fn counter_key(&self, key: &str) -> String {
        match key.split_once(COUNTER_GROUP_END) {
            Some((group, rest)) => {
                format!("{}:ctr:{{{group}}}{COUNTER_GROUP_END}{rest}", self.prefix)
            }
            None => self.key("ctr", key),
        }
    }

    /// A document's key. Every document and the index share the hash tag `{PREFIX}`, so one
    /// script reaches all of them under Redis Cluster; documents are few and small, so one
    /// slot holds them comfortably.
    fn doc_key(&self, key: &str) -> String {
        format!("{0}:doc:{{{0}}}:{key}", self.prefix)
    }

    /// The index of the documents: a sorted set of their keys, every score 0, so `ZRANGEBYLEX`
    /// lists them in byte order.
    fn docs_index(&self) -> String {
        format!("{0}:docs:{{{0}}}", self.prefix)
    }

    /// A handle on the shared multiplexed connection (cheap: two `Arc`s).
    fn conn(&self) -> io::IoConn {
        self.conn.clone()
    }

    /// Two fields of a hash, in one command (a plain read needs no script).
    async fn hmget<A: FromRedisValue, B: FromRedisValue>(
        &self,
        key: String,
        fields: [&str; 2],
        op: &'static str,
    ) -> Result<(Option<A>, Option<B>)> {
        ::redis::cmd("HMGET")
            .arg(key)
            .arg(&fields)
            .query_async(&mut self.conn())
            .await
            .map_err(failed(op))
    }

    /// One bounded slice of the keyspace walk: deletes this store's keys past their deadline.
    /// Returns the next cursor and how many keys went away.
    async fn purge_slice(&self, cursor: u64, pattern: &str, now_ms: u64) -> Result<(u64, usize)> {
        let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut self.conn())
            .await
            .map_err(failed("purge_expired"))?;
        let purged = try_join_all(keys.iter().map(|key| async move {
            scripts::PURGE_KEY
                .key(key)
                .arg(now_ms)
                .invoke_async::<u8>(&mut self.conn())
                .await
        }))
        .await
        .map_err(failed("purge_expired"))?;
        Ok((next, purged.iter().map(|&n| usize::from(n)).sum()))
    }
}

/// The garbage-collection TTL of an entry whose engine deadline is `deadline_ms`: what is left
/// by the engine's clock plus the margin. Relative, so it holds whatever the engine's clock.
fn gc_ttl_ms(deadline_ms: u64, now_ms: u64) -> u64 {
    deadline_ms
        .saturating_sub(now_ms)
        .saturating_add(GC_MARGIN.as_millis() as u64)
        .min(GC_TTL_MAX_MS)
}

/// The latest time the record shows had come when it was written (`put_record` is given no
/// clock): every write stamps `done_at_ms`, or `lease_expires_at_ms` as its own now plus
/// `ttl_ms`. Never after the real write, so a TTL measured from it is never too short.
fn written_at(record: &LeaseRecord) -> u64 {
    record
        .lease_expires_at_ms
        .saturating_sub(record.ttl_ms)
        .max(record.done_at_ms.unwrap_or(0))
        .max(record.first_seen_at_ms)
}

fn failed(op: &'static str) -> impl FnOnce(RedisError) -> Error {
    move |e| StoreFailure::error("redis", op, e)
}

fn corrupt(op: &'static str, what: impl Into<String>) -> Error {
    StoreFailure::damaged("redis", op, what.into())
}

/// A lock as Redis holds it: `"EXP FIRST LOCK_ID\nMETADATA"`, deadline first so the scripts
/// read it with one pattern (lock ids are visible ASCII, never a space or a newline).
fn lock_value(lock: &LockEntry) -> Result<String> {
    let metadata = match &lock.metadata {
        Some(m) => serde_json::to_string(m)?,
        None => String::new(),
    };
    Ok(format!(
        "{} {} {}\n{metadata}",
        lock.expires_at_ms, lock.first_seen_at_ms, lock.lock_id
    ))
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        let key = self.key("lock", key);
        let value = lock_value(&lock)?;
        let gc_ttl = gc_ttl_ms(lock.expires_at_ms, now_ms);
        // A key Redis does not hold is free whatever the clock says: one plain command claims
        // it. Only a key that exists needs the script, to compare its deadline with `now`.
        let set: Option<String> = ::redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(gc_ttl)
            .query_async(&mut self.conn())
            .await
            .map_err(failed("claim_lock"))?;
        if set.is_some() {
            return Ok(LockClaim::Claimed);
        }
        let held: Option<(u64, u64)> = scripts::CLAIM_LOCK
            .key(key)
            .arg(now_ms)
            .arg(value)
            .arg(gc_ttl)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("claim_lock"))?;
        Ok(match held {
            None => LockClaim::Claimed,
            Some((first_seen_at_ms, expires_at_ms)) => LockClaim::Held {
                first_seen_at_ms,
                expires_at_ms,
            },
        })
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        let removed: u8 = scripts::RELEASE_LOCK
            .key(self.key("lock", key))
            .arg(now_ms)
            .arg(if lock_id.is_some() { "1" } else { "0" })
            .arg(lock_id.unwrap_or_default())
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("release_lock"))?;
        Ok(removed == 1)
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        let (rev, json): (Option<u64>, Option<Vec<u8>>) = self
            .hmget(self.key("rec", key), ["rev", "val"], "get_record")
            .await?;
        match (rev, json) {
            (Some(rev), Some(json)) => Ok(Some(Versioned {
                rev,
                value: from_json("get_record", &json)?,
            })),
            (None, None) => Ok(None),
            _ => Err(corrupt(
                "get_record",
                format!("record {key:?} is incomplete"),
            )),
        }
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        let rev: Option<u64> = scripts::PUT_RECORD
            .key(self.key("rec", key))
            .arg(expected_rev.map(|r| r.to_string()).unwrap_or_default())
            .arg(serde_json::to_string(&record)?)
            .arg(record.purge_at_ms)
            .arg(gc_ttl_ms(record.purge_at_ms, written_at(&record)))
            .arg(&self.channel)
            .arg(key)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("put_record"))?;
        if rev.is_some() {
            // Waiters of this process need not wait for the round trip through pub/sub.
            self.notifier.notify(key);
        }
        Ok(rev)
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        Ok(self.notifier.subscribe(key))
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        let pattern = format!("{}:*", self.prefix);
        let start = *self.purge_cursor.lock().unwrap_or_else(|e| e.into_inner());
        let (mut cursor, mut purged, mut wrapped) = (start, 0, false);
        for _ in 0..PURGE_SCANS {
            let (next, n) = self.purge_slice(cursor, &pattern, now_ms).await?;
            purged += n;
            cursor = next;
            if cursor == 0 {
                // A walk that started mid-way goes round once more, up to where it began.
                if start == 0 || wrapped {
                    break;
                }
                wrapped = true;
            }
        }
        *self.purge_cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        self.notifier.prune();
        Ok(purged)
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        if adds.is_empty() {
            return Ok(CounterAdd::Added(0));
        }
        let mut call = scripts::ADD_COUNTERS.prepare_invoke();
        call.arg(now_ms);
        for add in adds {
            call.key(self.counter_key(add.key))
                .arg(add.delta)
                .arg(add.limit.map(|l| l.to_string()).unwrap_or_default())
                .arg(add.expires_at_ms)
                .arg(gc_ttl_ms(add.expires_at_ms, now_ms));
        }
        let (added, value): (u8, u64) = call
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("add_counters"))?;
        Ok(if added == 1 {
            CounterAdd::Added(value)
        } else {
            CounterAdd::Refused(value)
        })
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        let (value, exp): (Option<u64>, Option<u64>) = self
            .hmget(self.counter_key(key), ["v", "exp"], "get_counter")
            .await?;
        Ok(match (value, exp) {
            (Some(v), Some(exp)) if exp > now_ms => v,
            _ => 0,
        })
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        scripts::APPEND_LOG
            .key(self.key("log", log.key))
            .arg(serde_json::to_string(&value)?)
            .arg(if log.topic.is_some() { "1" } else { "0" })
            .arg(log.topic.unwrap_or_default())
            .arg(caps.entries)
            .arg(caps.bytes)
            .arg(now_ms)
            .arg(expires_at_ms)
            .arg(gc_ttl_ms(expires_at_ms, now_ms))
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("append_log"))
    }

    async fn read_log(
        &self,
        log: LogRef<'_>,
        newest_first: bool,
        offset: usize,
        limit: usize,
        now_ms: u64,
    ) -> Result<LogPage> {
        let reply: Vec<Value> = scripts::READ_LOG
            .key(self.key("log", log.key))
            .arg(if log.topic.is_some() { "1" } else { "0" })
            .arg(log.topic.unwrap_or_default())
            .arg(if newest_first { "1" } else { "0" })
            .arg(offset)
            .arg(limit)
            .arg(now_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("read_log"))?;
        log_page(log.key, reply)
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        let _: u8 = scripts::PUT_DOC
            .key(self.docs_index())
            .key(self.doc_key(key))
            .arg(key)
            .arg(serde_json::to_string(&value)?)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("put_doc"))?;
        Ok(())
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        let json: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.doc_key(key))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("get_doc"))?;
        json.map(|json| from_json("get_doc", &json)).transpose()
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        let existed: u8 = scripts::DELETE_DOC
            .key(self.docs_index())
            .key(self.doc_key(key))
            .arg(key)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("delete_doc"))?;
        Ok(existed == 1)
    }

    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        // The index range of the prefix, as in `LIST_DOCS`: UTF-8 keys never hold 0xFF.
        let mut hi = format!("({prefix}").into_bytes();
        hi.push(0xFF);
        ::redis::cmd("ZLEXCOUNT")
            .arg(self.docs_index())
            .arg(format!("[{prefix}"))
            .arg(hi)
            .query_async(&mut self.conn())
            .await
            .map_err(failed("count_docs"))
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply: Vec<(Vec<u8>, Vec<u8>)> = scripts::LIST_DOCS
            .key(self.docs_index())
            .arg(self.doc_key(""))
            .arg(prefix)
            // Lua passes numbers on to Redis with 14 significant digits: keep the limit within them.
            .arg(limit.min(u32::MAX as usize))
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("list_docs"))?;
        reply
            .into_iter()
            .map(|(key, json)| {
                let key = String::from_utf8(key)
                    .map_err(|_| corrupt("list_docs", "a document key is not UTF-8"))?;
                Ok((key, from_json("list_docs", &json)?))
            })
            .collect()
    }
}

/// A JSON value as this store wrote it; one that does not parse is a store failure.
fn from_json<T: serde::de::DeserializeOwned>(op: &'static str, json: &[u8]) -> Result<Arc<T>> {
    serde_json::from_slice(json)
        .map(Arc::new)
        .map_err(|e| StoreFailure::damaged("redis", op, e))
}

/// Decodes `{total, seq, entry, seq, entry, ...}` from the read script.
fn log_page(key: &str, reply: Vec<Value>) -> Result<LogPage> {
    let bad = || {
        corrupt(
            "read_log",
            format!("log {key:?} answered an unexpected shape"),
        )
    };
    let mut items = reply.into_iter();
    let total: u64 = items
        .next()
        .and_then(|v| ::redis::from_redis_value(v).ok())
        .ok_or_else(bad)?;
    let mut entries = Vec::new();
    while let Some(seq) = items.next() {
        let seq: u64 = ::redis::from_redis_value(seq).map_err(|_| bad())?;
        let json: Vec<u8> = items
            .next()
            .and_then(|v| ::redis::from_redis_value(v).ok())
            .ok_or_else(bad)?;
        entries.push(LogEntry {
            seq,
            value: from_json("read_log", &json)?,
        });
    }
    Ok(LogPage { total, entries })
}

#[cfg(test)]
mod tests {
    use super::evicts;

    #[test]
    fn only_a_memory_limit_with_an_evicting_policy_evicts() {
        assert!(evicts("3145728", "volatile-lru"));
        assert!(!evicts("not-a-number", "allkeys-lru"));
        assert!(evicts("1073741824", "allkeys-random"));
        assert!(!evicts("1073741824", "noeviction"));
        assert!(
            !evicts("0", "volatile-lru"),
            "no limit, nothing to evict for"
        );
    }
}
