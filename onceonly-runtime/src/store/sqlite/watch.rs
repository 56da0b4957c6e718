//! Noticing commits made through other connections to the same file (other processes, or
//! another store in this one): a connection's `PRAGMA data_version` changes exactly when
//! another connection committed. Which keys changed is unknown, so every waiter is woken to
//! read its key again.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use super::Inner;

/// How often the file is checked while somebody waits.
const EVERY: Duration = Duration::from_millis(50);

pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// Starts the watcher thread of `inner`. It reads the file only while the store has waiters,
/// and ends when the store is dropped.
pub(super) fn start(inner: &Arc<Inner>) -> std::io::Result<()> {
    let weak = Arc::downgrade(inner);
    // The version at open, so a commit made before the first check is still noticed.
    let mut seen = inner.opened_data_version;
    thread::Builder::new()
        .name("onceonly-sqlite-watch".into())
        .spawn(move || {
            loop {
                thread::sleep(EVERY);
                let Some(inner) = weak.upgrade() else { return };
                if inner.notifier.is_empty() {
                    continue;
                }
                // The writing connection: its own commits do not move its version, only others'.
                let version = data_version(&super::locked(&inner.writer));
                match version {
                    Ok(v) if v == seen => {}
                    Ok(v) => {
                        seen = v;
                        inner.notifier.notify_all();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not check the SQLite file for changes");
                        inner.notifier.notify_all();
                    }
                }
            }
        })?;
    Ok(())
}
