//! The accept loop: HTTP/1 connections served by hyper under the server's connection limits.
//!
//! `axum::serve` gives no way to set hyper's timeouts, so connections are served here as it
//! serves them (hyper's HTTP/1 connection over the router, graceful shutdown from
//! `hyper-util`), with three limits added:
//!
//! - **header timeout**: hyper's `header_read_timeout` closes a connection whose request head
//!   is not complete in time (silent and slowloris connections);
//! - **idle timeout**: the same timer, moved to this duration while a kept-alive connection
//!   waits for its next request (see [`timer`]);
//! - **max connections**: a semaphore taken before `accept`, so past the cap new connections
//!   wait in the kernel's listen backlog, unaccepted, while open ones keep being served, and
//!   are taken in turn as open ones close.
//!
//! The request-body timeout is not here: it bounds reading a body, which the body extractor
//! does (see `extract.rs`).

mod stats;
mod timer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) use self::stats::ConnectionStats;
use self::stats::Timeout;
use self::timer::HeadTimer;

/// The limits the accept loop applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Longest listen backlog asked of the kernel, which caps it at `net.core.somaxconn` (4096 on
/// current Linux). tokio's `TcpListener::bind` asks for 1024: a burst of connects beyond what
/// the accept loop has taken overflows that, and the kernel drops the excess handshakes, which
/// clients retry only after a second. Connections waiting past `max_connections` wait here too.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix: a restarted server can bind while old connections
    // of the previous one linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// open connections to finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut full = false;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots, &stats, &mut full, limits.max_connections) => accepted,
        };
        let Some((tcp, peer, slot)) = accepted else {
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let timer = HeadTimer::new(limits.header_timeout, limits.idle_timeout);
        let conn = http1::Builder::new()
            .timer(timer.clone())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        let stats = Arc::clone(&stats);
        stats.opened();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                ended_with_error(&e, &timer, &stats, peer);
            }
            stats.closed();
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Waits for a free slot, then for a connection. `None` after an accept error that only
/// concerns one connection, or after backing off from one that concerns the process.
///
/// `full` remembers whether the last slot had to be waited for, so a sustained overload logs
/// once when it starts and once when it ends, not once per connection.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stats: &ConnectionStats,
    full: &mut bool,
    max_connections: usize,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = match Arc::clone(slots).try_acquire_owned() {
        Ok(slot) => {
            if std::mem::take(full) {
                tracing::info!(max_connections, "below the connection limit again");
            }
            slot
        }
        Err(_) => {
            stats.reached_capacity();
            if !std::mem::replace(full, true) {
                tracing::warn!(
                    max_connections,
                    "connection limit reached: new connections wait in the listen backlog \
                     until open ones close"
                );
            }
            Arc::clone(slots)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed")
        }
    };
    match listener.accept().await {
        Ok((tcp, peer)) => Some((tcp, peer, slot)),
        Err(e) if is_connection_error(&e) => None,
        Err(e) => {
            // Out of file descriptors or memory: as axum does, wait a moment before retrying
            // rather than spin. Connections wait in the backlog meanwhile.
            tracing::error!(
                error = %e,
                "accept failed; if it says too many open files, raise `ulimit -n` or lower \
                 --max-connections"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// Errors of one connection that was reset before it was accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

fn ended_with_error(
    e: &hyper::Error,
    timer: &HeadTimer,
    stats: &ConnectionStats,
    peer: SocketAddr,
) {
    if e.is_timeout() {
        let which = timer.last_wait();
        stats.timed_out(which);
        match which {
            Timeout::Header => tracing::debug!(%peer, "closed a connection: header timeout"),
            Timeout::Idle => tracing::debug!(%peer, "closed a connection: idle timeout"),
        }
    } else {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
