//! Opening a database file: connection settings and the versioned schema.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::BoxError;

/// The schema this build writes, kept in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: u32 = 3;

/// How long a write waits for another connection's write to finish before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1. Times are unix milliseconds of the engine's clock, JSON is stored as text. The
/// expiry indexes keep purges from reading whole tables.
const SCHEMA_V1: &str = "
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
-- Revisions come from one counter for the whole file, so a purged and recreated record never
-- reuses a revision a slow writer may still expect.
INSERT INTO meta (name, value) VALUES ('last_rev', 0);

CREATE TABLE locks (
    key TEXT PRIMARY KEY,
    lock_id TEXT NOT NULL,
    first_seen_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    metadata TEXT
) WITHOUT ROWID;
CREATE INDEX locks_by_expiry ON locks (expires_at_ms);

CREATE TABLE records (
    key TEXT PRIMARY KEY,
    rev INTEGER NOT NULL,
    purge_at_ms INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX records_by_purge ON records (purge_at_ms);

CREATE TABLE counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX counters_by_expiry ON counters (expires_at_ms);

CREATE TABLE logs (
    key TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX logs_by_expiry ON logs (expires_at_ms);

CREATE TABLE log_entries (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, seq)
);
";

/// Version 2: documents (policies, kill switches, registered tools), JSON as text. The primary
/// key compares keys as bytes, so a prefix listing is one range scan in byte order.
const SCHEMA_V2: &str = "
CREATE TABLE docs (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 3: log topics and byte caps. Each entry may carry a topic (a run id, an agent id)
/// and its size; each log its total size. Entries written before keep no topic, and their
/// sizes are filled in here.
const SCHEMA_V3: &str = "
ALTER TABLE logs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_entries ADD COLUMN topic TEXT;
ALTER TABLE log_entries ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE log_entries SET bytes = length(CAST(value AS BLOB));
UPDATE logs SET bytes = (SELECT COALESCE(SUM(e.bytes), 0) FROM log_entries e WHERE e.key = logs.key);
CREATE INDEX log_entries_by_topic ON log_entries (key, topic, seq) WHERE topic IS NOT NULL;
";

/// The steps from version `n - 1` to `n`, in order: a file of any older version runs the
/// steps it lacks.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

/// Opens (creating if needed) the database at `path`, in WAL mode with `synchronous = FULL`,
/// and brings its schema to [`SCHEMA_VERSION`].
pub(super) fn open(path: &Path) -> Result<Connection, BoxError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer, and several processes share the file safely.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("the database cannot use WAL mode (journal mode is {mode})").into());
    }
    // FULL: the WAL is synced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// A second connection to a file [`open`] prepared, for reads only.
pub(super) fn open_reader(path: &Path) -> Result<Connection, BoxError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Creates the schema of a new file, or brings an older one up to date, under a write lock so
/// two processes opening the same file do not both migrate it.
fn migrate(conn: &mut Connection) -> Result<(), BoxError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {version}; this build knows up to {SCHEMA_VERSION}"
        )
        .into());
    }
    if version < SCHEMA_VERSION {
        for step in &MIGRATIONS[version as usize..] {
            tx.execute_batch(step)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written by an older release (schema version 1) opens and gains the documents
    /// table and the log topics and sizes, keeping what it held.
    #[test]
    fn a_version_1_file_gains_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(
                "INSERT INTO counters (key, value, expires_at_ms) VALUES ('c', 7, 1);
                 INSERT INTO logs (key, last_seq, expires_at_ms) VALUES ('l', 2, 1);
                 INSERT INTO log_entries (key, seq, value) VALUES ('l', 1, '{\"n\":1}');
                 INSERT INTO log_entries (key, seq, value) VALUES ('l', 2, '{\"n\":\"é\"}');",
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let conn = open(&path).unwrap();
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        conn.execute("INSERT INTO docs (key, value) VALUES ('k', '{}')", [])
            .unwrap();
        let kept: i64 = conn
            .query_row("SELECT value FROM counters WHERE key = 'c'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kept, 7);
        // Sizes are bytes of UTF-8, not characters.
        let (log_bytes, untagged): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT bytes FROM logs WHERE key = 'l'), \
                 (SELECT COUNT(*) FROM log_entries WHERE topic IS NULL)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((log_bytes, untagged), (7 + 10, 2));
        drop(conn);
        // Opening again finds the current version and changes nothing.
        let again = open(&path).unwrap();
        let docs: i64 = again
            .query_row("SELECT COUNT(*) FROM docs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(docs, 1);
    }
}
