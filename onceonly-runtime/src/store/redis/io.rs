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
    /// Starts the thread. Its runtime is built there, so a failure to start the thread drops
    /// nothing that needs a runtime's context.
    pub(super) async fn start() -> std::io::Result<IoThread> {
        let (started, handle) = oneshot::channel::<std::io::Result<Handle>>();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            // Linux keeps 15 bytes of a thread's name.
            .name("onceonly-redis".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = started.send(Ok(runtime.handle().clone()));
                        // Ends when the sender is dropped (or sends).
                        let _ = runtime.block_on(stopped);
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            })?;
        let handle = handle
            .await
            .map_err(|_| std::io::Error::other("the Redis I/O thread did not start"))??;
        Ok(IoThread {
            handle,
            _stop: stop,
        })
    }

    /// Runs `fut` on the I/O thread and waits for its answer from any runtime. A panic there
    /// is the caller's panic, as if `fut` had run in place. Dropping the wait does not stop
    /// `fut`: a command whose caller gave up may still take effect (while the store lives),
    /// as one already sent always could.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = RedisResult<T>> + Send + 'static,
    ) -> RedisResult<T> {
        match self.handle.spawn(fut).await {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(RedisError::from(std::io::Error::other(
                "the Redis store is shutting down",
            ))),
        }
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
