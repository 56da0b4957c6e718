//! The store's own I/O thread: every Redis connection of a store (commands and pub/sub) lives
//! on one small runtime of its own, not on the runtime that happened to open the store.
//!
//! redis-rs runs a connection's driver, and each reconnection, as a task of the runtime that
//! is current at the time. A store outlives runtimes (a client kept in a static and used from
//! several `#[tokio::test]`s or `block_on` calls): when the runtime holding the driver ended,
//! the next command, from any runtime, failed with a broken pipe while the connection was made
//! again, and the listener stopped hearing other replicas' writes. Here the driver, every
//! reconnection and the listener stay on this thread for as long as the store lives.

use std::future::Future;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The thread and its runtime; dropping the last handle on it ends both, which cancels what
/// still runs there.
#[derive(Debug)]
pub(super) struct IoThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl IoThread {
    pub(super) fn start() -> std::io::Result<IoThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("onceonly-redis-io".into())
            .spawn(move || {
                // Ends when the sender is dropped (or sends).
                let _ = runtime.block_on(stopped);
            })?;
        Ok(IoThread {
            handle,
            _stop: stop,
        })
    }

    /// Runs `fut` on the I/O thread and waits for its answer from any runtime. Dropping the
    /// wait does not cancel the command: a command on the wire is never cut in half.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = RedisResult<T>> + Send + 'static,
    ) -> RedisResult<T> {
        self.handle.spawn(fut).await.unwrap_or_else(|e| {
            Err(RedisError::from(std::io::Error::other(format!(
                "the Redis I/O thread ended: {e}"
            ))))
        })
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The store's command connection, used from any runtime: each command is sent from the I/O
/// thread, where the connection's driver lives.
#[derive(Clone)]
pub(super) struct IoConn {
    pub(super) conn: ConnectionManager,
    pub(super) io: std::sync::Arc<IoThread>,
}

impl ConnectionLike for IoConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let (mut conn, cmd) = (self.conn.clone(), cmd.clone());
        Box::pin(
            self.io
                .run(async move { conn.req_packed_command(&cmd).await }),
        )
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let (mut conn, cmd) = (self.conn.clone(), cmd.clone());
        Box::pin(
            self.io
                .run(async move { conn.req_packed_commands(&cmd, offset, count).await }),
        )
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
