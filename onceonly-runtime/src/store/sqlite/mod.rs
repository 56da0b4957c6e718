//! A durable store in one SQLite file (feature `sqlite`).

mod schema;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::failure::StoreFailure;
use super::{
    CounterAdd, CounterDelta, LeaseRecord, LockClaim, LockEntry, LogCaps, LogEntry, LogPage,
    LogRef, Notifier, Store, Subscription, Versioned, apply_delta,
};
use crate::error::{JsonMap, Result};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A [`Store`] in one SQLite file: durable, transactional, and safe for several processes on
/// one host.
///
/// - **Durability.** The file is in WAL mode with `synchronous = FULL`: the WAL is synced at
///   every commit, so every write that returned `Ok` survives a crash of the process, of the
///   OS, or a power loss. (`NORMAL` would sync only at checkpoints: nothing is lost when just
///   the process dies, but a power loss or OS crash could roll back the latest commits.)
/// - **Atomicity.** Every write primitive is one `BEGIN IMMEDIATE` transaction, which takes the
///   file's write lock before reading, so two processes racing on a key are serialized; a
///   writer waits up to 5 s for the lock (`busy_timeout`) before failing with
///   [`Error::Store`](crate::Error::Store).
/// - **Async.** SQLite calls block, so each runs on tokio's blocking pool, never on a runtime
///   worker. Reads use a second connection, so they never wait behind a commit's sync.
/// - **Waiters.** Writes of this store wake its waiters at once. Commits by other connections
///   (other processes, or another store on the same file) are noticed by a watcher that checks
///   `PRAGMA data_version` every 50 ms while somebody waits, and wakes every waiter to read
///   again.
/// - **Schema.** Created on open and versioned in `PRAGMA user_version`: a file of an older
///   version gains what it lacks when opened, a file written by a newer schema is refused.
///   Documents live in `docs (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`, the
///   value compact JSON; [`Store::list_docs`] is one range scan of that key (schema version 2).
///
/// ```no_run
/// # async fn demo() -> onceonly_runtime::Result<()> {
/// use onceonly_runtime::{Engine, store::SqliteStore};
///
/// let engine = Engine::new(SqliteStore::open("onceonly.db")?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every write goes through this connection.
    writer: Mutex<Connection>,
    /// Plain reads use their own connection, so they never queue behind a commit's sync
    /// (WAL lets readers run while a write is in progress).
    reader: Mutex<Connection>,
    path: PathBuf,
    notifier: Notifier,
    watcher_started: AtomicBool,
    /// `PRAGMA data_version` when the file was opened: the watcher's first reference.
    opened_data_version: i64,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its schema when missing.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref();
        let open = || -> Result<_, BoxError> {
            let writer = schema::open(path)?;
            let reader = schema::open_reader(path)?;
            let version = watch::data_version(&writer)?;
            Ok((writer, reader, version))
        };
        let (writer, reader, opened_data_version) =
            open().map_err(|e| StoreFailure::error("sqlite", "open", e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                path: path.to_owned(),
                notifier: Notifier::new(),
                watcher_started: AtomicBool::new(false),
                opened_data_version,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the reading connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T> {
        self.run(op, |inner| &inner.reader, f).await
    }

    /// Runs `f` with the connection `pick` chooses, on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        pick: fn(&Inner) -> &Mutex<Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&mut locked(pick(&inner))))
            .await
            .map_err(|e| StoreFailure::error("sqlite", op, e))?
            .map_err(|e| {
                // A stored JSON value that does not read back: the file answered.
                if e.is::<serde_json::Error>() {
                    StoreFailure::damaged("sqlite", op, e)
                } else {
                    StoreFailure::error("sqlite", op, e)
                }
            })
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction, committed when `f` returns `Ok`.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T> {
        self.run(
            op,
            |inner| &inner.writer,
            |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            },
        )
        .await
    }
}

/// A poisoned lock only means a panic elsewhere; an unfinished transaction was rolled back when
/// it was dropped, so the connection is still good.
fn locked(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// Expired locks, records or counters removed per purge transaction.
const PURGE_SLICE: i64 = 1_000;
/// Expired logs removed (with their entries) per purge transaction.
const PURGE_LOG_SLICE: i64 = 8;

/// SQLite integers are signed: engine times and counters are far below `i64::MAX`, and a
/// saturated "never" deadline stays the largest value.
fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn claim_lock(&self, key: &str, now_ms: u64, lock: LockEntry) -> Result<LockClaim> {
        let key = key.to_owned();
        let metadata = lock
            .metadata
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        self.write("claim_lock", move |tx| {
            let held: Option<(i64, i64)> = tx
                .prepare_cached("SELECT first_seen_at_ms, expires_at_ms FROM locks WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((first, expires)) = held.filter(|&(_, exp)| from_sql(exp) > now_ms) {
                return Ok(LockClaim::Held {
                    first_seen_at_ms: from_sql(first),
                    expires_at_ms: from_sql(expires),
                });
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO locks (key, lock_id, first_seen_at_ms, expires_at_ms, \
                 metadata) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                key,
                lock.lock_id,
                to_sql(lock.first_seen_at_ms),
                to_sql(lock.expires_at_ms),
                metadata
            ])?;
            Ok(LockClaim::Claimed)
        })
        .await
    }

    async fn release_lock(&self, key: &str, lock_id: Option<&str>, now_ms: u64) -> Result<bool> {
        let (key, lock_id) = (key.to_owned(), lock_id.map(str::to_owned));
        self.write("release_lock", move |tx| {
            let removed: Option<i64> = tx
                .prepare_cached(
                    "DELETE FROM locks WHERE key = ?1 AND (?2 IS NULL OR lock_id = ?2) \
                     RETURNING expires_at_ms",
                )?
                .query_row(params![key, lock_id], |r| r.get(0))
                .optional()?;
            Ok(removed.is_some_and(|exp| from_sql(exp) > now_ms))
        })
        .await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Versioned<Arc<LeaseRecord>>>> {
        let key = key.to_owned();
        self.read("get_record", move |conn| {
            let row: Option<(i64, String)> = conn
                .prepare_cached("SELECT rev, record FROM records WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((rev, json)) = row else {
                return Ok(None);
            };
            Ok(Some(Versioned {
                rev: from_sql(rev),
                value: Arc::new(serde_json::from_str(&json)?),
            }))
        })
        .await
    }

    async fn put_record(
        &self,
        key: &str,
        expected_rev: Option<u64>,
        record: LeaseRecord,
    ) -> Result<Option<u64>> {
        let json = serde_json::to_string(&record)?;
        let owned_key = key.to_owned();
        let rev = self
            .write("put_record", move |tx| {
                let current: Option<i64> = tx
                    .prepare_cached("SELECT rev FROM records WHERE key = ?1")?
                    .query_row([&owned_key], |r| r.get(0))
                    .optional()?;
                if current.map(from_sql) != expected_rev {
                    return Ok(None);
                }
                let rev: i64 = tx
                    .prepare_cached(
                        "UPDATE meta SET value = value + 1 WHERE name = 'last_rev' RETURNING value",
                    )?
                    .query_row([], |r| r.get(0))?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO records (key, rev, purge_at_ms, record) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    owned_key,
                    rev,
                    to_sql(record.purge_at_ms),
                    json
                ])?;
                Ok(Some(from_sql(rev)))
            })
            .await?;
        if rev.is_some() {
            self.inner.notifier.notify(key);
        }
        Ok(rev)
    }

    async fn subscribe(&self, key: &str) -> Result<Subscription> {
        let subscription = self.inner.notifier.subscribe(key);
        if !self.inner.watcher_started.swap(true, Ordering::AcqRel) {
            watch::start(&self.inner).map_err(|e| StoreFailure::error("sqlite", "subscribe", e))?;
        }
        Ok(subscription)
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize> {
        // In slices, each its own short transaction: other processes on the file wait for one
        // slice at a time, not for a whole backlog (which could outlast their busy timeout).
        let now = to_sql(now_ms);
        let mut purged = 0;
        for sql in [
            "DELETE FROM locks WHERE key IN \
             (SELECT key FROM locks WHERE expires_at_ms <= ?1 LIMIT ?2)",
            "DELETE FROM records WHERE key IN \
             (SELECT key FROM records WHERE purge_at_ms <= ?1 LIMIT ?2)",
            "DELETE FROM counters WHERE key IN \
             (SELECT key FROM counters WHERE expires_at_ms <= ?1 LIMIT ?2)",
        ] {
            loop {
                let n = self
                    .write("purge_expired", move |tx| {
                        Ok(tx.prepare_cached(sql)?.execute(params![now, PURGE_SLICE])?)
                    })
                    .await?;
                purged += n;
                if n < PURGE_SLICE as usize {
                    break;
                }
            }
        }
        // A log goes with its entries (up to a log's cap each), so a few logs per slice. The
        // same logs are picked twice in one transaction: the order makes the pick stable.
        loop {
            let n = self
                .write("purge_expired", move |tx| {
                    const EXPIRED: &str = "SELECT key FROM logs WHERE expires_at_ms <= ?1 \
                                           ORDER BY expires_at_ms, key LIMIT ?2";
                    tx.prepare_cached(&format!(
                        "DELETE FROM log_entries WHERE key IN ({EXPIRED})"
                    ))?
                    .execute(params![now, PURGE_LOG_SLICE])?;
                    Ok(tx
                        .prepare_cached(&format!("DELETE FROM logs WHERE key IN ({EXPIRED})"))?
                        .execute(params![now, PURGE_LOG_SLICE])?)
                })
                .await?;
            // The entries of an expired log go with it and are not counted apart.
            purged += n;
            if n < PURGE_LOG_SLICE as usize {
                break;
            }
        }
        self.inner.notifier.prune();
        Ok(purged)
    }

    async fn add_counters(&self, adds: &[CounterDelta<'_>], now_ms: u64) -> Result<CounterAdd> {
        let adds: Vec<(String, CounterDelta<'static>)> = adds
            .iter()
            .map(|a| (a.key.to_owned(), CounterDelta { key: "", ..*a }))
            .collect();
        self.write("add_counters", move |tx| {
            // Every new value first (a key may come twice), then all writes or none.
            let mut next: Vec<(&str, u64, u64)> = Vec::with_capacity(adds.len());
            for (key, add) in &adds {
                let earlier = next.iter().rev().find(|(k, _, _)| k == key);
                let (value, window_end) = match earlier {
                    Some(&(_, value, end)) => (value, end),
                    None => {
                        let current: Option<(i64, i64)> = tx
                            .prepare_cached(
                                "SELECT value, expires_at_ms FROM counters WHERE key = ?1",
                            )?
                            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?;
                        // A live counter keeps its window; an ended one counts as 0 anew.
                        match current {
                            Some((v, exp)) if from_sql(exp) > now_ms => {
                                (from_sql(v), from_sql(exp))
                            }
                            _ => (0, add.expires_at_ms),
                        }
                    }
                };
                match apply_delta(value, add) {
                    CounterAdd::Added(value) => next.push((key, value, window_end)),
                    refused => return Ok(refused),
                }
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO counters (key, value, expires_at_ms) VALUES (?1, ?2, ?3)",
            )?;
            for (key, value, window_end) in &next {
                insert.execute(params![key, to_sql(*value), to_sql(*window_end)])?;
            }
            Ok(CounterAdd::Added(next.first().map_or(0, |n| n.1)))
        })
        .await
    }

    async fn get_counter(&self, key: &str, now_ms: u64) -> Result<u64> {
        let key = key.to_owned();
        self.read("get_counter", move |conn| {
            let value: Option<i64> = conn
                .prepare_cached("SELECT value FROM counters WHERE key = ?1 AND expires_at_ms > ?2")?
                .query_row(params![key, to_sql(now_ms)], |r| r.get(0))
                .optional()?;
            Ok(value.map_or(0, from_sql))
        })
        .await
    }

    async fn append_log(
        &self,
        log: LogRef<'_>,
        value: JsonMap,
        caps: LogCaps,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<u64> {
        let (key, topic) = (log.key.to_owned(), log.topic.map(str::to_owned));
        let json = serde_json::to_string(&value)?;
        self.write("append_log", move |tx| {
            let current: Option<(i64, i64, i64)> = tx
                .prepare_cached("SELECT last_seq, expires_at_ms, bytes FROM logs WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let mut bytes = current.map_or(0, |(_, _, b)| b);
            // An expired log starts afresh but keeps counting: sequence numbers never repeat.
            if current.is_some_and(|(_, exp, _)| from_sql(exp) <= now_ms) {
                tx.prepare_cached("DELETE FROM log_entries WHERE key = ?1")?
                    .execute([&key])?;
                bytes = 0;
            }
            let seq = current.map_or(0, |(last, _, _)| last) + 1;
            let size = to_sql(json.len() as u64);
            tx.prepare_cached(
                "INSERT INTO log_entries (key, seq, topic, value, bytes) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![key, seq, topic, json, size])?;
            bytes += size;
            // Entries are the consecutive range first..=seq; drop from the front.
            let mut oldest = tx.prepare_cached(
                "SELECT seq, bytes FROM log_entries WHERE key = ?1 ORDER BY seq ASC LIMIT 1",
            )?;
            let mut drop =
                tx.prepare_cached("DELETE FROM log_entries WHERE key = ?1 AND seq = ?2")?;
            loop {
                let (first, first_bytes): (i64, i64) =
                    oldest.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let count = from_sql(seq - first + 1);
                if first >= seq
                    || (count <= caps.entries as u64 && from_sql(bytes) <= caps.bytes as u64)
                {
                    break;
                }
                drop.execute(params![key, first])?;
                bytes -= first_bytes;
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO logs (key, last_seq, expires_at_ms, bytes) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![key, seq, to_sql(expires_at_ms), bytes])?;
            Ok(from_sql(seq))
        })
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
        let (key, topic) = (log.key.to_owned(), log.topic.map(str::to_owned));
        self.read("read_log", move |conn| {
            // One read transaction: the total and the page come from the same snapshot.
            let tx = conn.transaction()?;
            let live = tx
                .prepare_cached("SELECT 1 FROM logs WHERE key = ?1 AND expires_at_ms > ?2")?
                .exists(params![key, to_sql(now_ms)])?;
            if !live {
                return Ok(LogPage::default());
            }
            // A topic reads through its partial index (`topic = ?2` implies NOT NULL).
            let which = if topic.is_some() {
                "key = ?1 AND topic = ?2"
            } else {
                "key = ?1 AND ?2 IS NULL"
            };
            let total: i64 = tx
                .prepare_cached(&format!("SELECT COUNT(*) FROM log_entries WHERE {which}"))?
                .query_row(params![key, topic], |r| r.get(0))?;
            let order = if newest_first { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT seq, value FROM log_entries WHERE {which} ORDER BY seq {order} \
                 LIMIT ?3 OFFSET ?4"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![key, topic, to_sql(limit as u64), to_sql(offset as u64)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?;
            let mut entries = Vec::new();
            for row in rows {
                let (seq, json) = row?;
                entries.push(LogEntry {
                    seq: from_sql(seq),
                    value: Arc::new(serde_json::from_str(&json)?),
                });
            }
            Ok(LogPage {
                total: from_sql(total),
                entries,
            })
        })
        .await
    }

    async fn put_doc(&self, key: &str, value: JsonMap) -> Result<()> {
        let (key, json) = (key.to_owned(), serde_json::to_string(&value)?);
        self.write("put_doc", move |tx| {
            tx.prepare_cached("INSERT OR REPLACE INTO docs (key, value) VALUES (?1, ?2)")?
                .execute(params![key, json])?;
            Ok(())
        })
        .await
    }

    async fn get_doc(&self, key: &str) -> Result<Option<Arc<JsonMap>>> {
        let key = key.to_owned();
        self.read("get_doc", move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT value FROM docs WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()?;
            json.as_deref().map(doc_from_json).transpose()
        })
        .await
    }

    async fn delete_doc(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write("delete_doc", move |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM docs WHERE key = ?1")?
                .execute([&key])?
                == 1)
        })
        .await
    }

    async fn count_docs(&self, prefix: &str) -> Result<u64> {
        let (prefix, upper) = (prefix.to_owned(), prefix_end(prefix));
        self.read("count_docs", move |conn| {
            let n: i64 = match upper {
                Some(upper) => conn
                    .prepare_cached("SELECT COUNT(*) FROM docs WHERE key >= ?1 AND key < ?2")?
                    .query_row(params![prefix, upper], |r| r.get(0))?,
                None => conn
                    .prepare_cached("SELECT COUNT(*) FROM docs WHERE key >= ?1")?
                    .query_row(params![prefix], |r| r.get(0))?,
            };
            Ok(from_sql(n))
        })
        .await
    }

    async fn list_docs(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Arc<JsonMap>)>> {
        let (prefix, upper) = (prefix.to_owned(), prefix_end(prefix));
        self.read("list_docs", move |conn| {
            // One range scan of the primary key. Without an upper bound (the prefix is empty or
            // all U+10FFFF) every key from the prefix on starts with it.
            let sql = if upper.is_some() {
                "SELECT key, value FROM docs WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
            } else {
                "SELECT key, value FROM docs WHERE key >= ?1 ORDER BY key LIMIT ?3"
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![prefix, upper, to_sql(limit as u64)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut docs = Vec::new();
            for row in rows {
                let (key, json) = row?;
                docs.push((key, doc_from_json(&json)?));
            }
            Ok(docs)
        })
        .await
    }
}

fn doc_from_json(json: &str) -> Result<Arc<JsonMap>, BoxError> {
    Ok(Arc::new(serde_json::from_str(json)?))
}

/// The least string above every string that starts with `prefix`, or `None` when there is
/// none: the prefix with its last character that has a successor replaced by that successor,
/// and what follows dropped. UTF-8 keeps code point order in byte order, which is how SQLite
/// compares text, so `prefix <= key < prefix_end(prefix)` is exactly "key starts with prefix".
/// (Appending the byte 0xFF would be the bound in bytes, but a bound of text must be text.)
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value: surrogates are not characters, so U+D7FF is followed by U+E000.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_end("gov/a").as_deref(), Some("gov/b"));
        assert_eq!(prefix_end("gov/\u{ff}").as_deref(), Some("gov/\u{100}"));
        assert_eq!(prefix_end("a\u{d7ff}").as_deref(), Some("a\u{e000}"));
        assert_eq!(prefix_end("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10ffff}\u{10ffff}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
