//! # onceonly-server
//!
//! A self-hostable server that speaks the OnceOnly HTTP API over the embedded engine, so the
//! official Python and TypeScript SDKs, and this project's Rust client, work against it
//! unchanged, with no account and no data leaving your network.
//!
//! ```text
//! onceonly-server --listen 127.0.0.1:8080 --store memory --api-keys-file keys.txt
//! ```
//!
//! Every API key is a tenant: its locks, leases, usage, events and timelines live under a
//! prefix of its own in the store, so tenants never see each other's keys. Each key can carry
//! plan limits (default: unlimited) that answer 402 with the documented body. The semantics
//! all live in [`onceonly_runtime::Engine`]; this crate only translates HTTP to engine calls
//! and back, with the error bodies the official SDKs classify (401, 402, 403, 409, 422, and
//! JSON 404/405/408/413). `GET /healthz` (liveness), `GET /readyz` (readiness: `503` while
//! the store does not answer) and Prometheus `GET /metrics` need no key.
//! Connections are bounded: header, idle and body timeouts and a cap on open connections
//! (see [`ServerConfig`]).
//!
//! Start it in-process, for tests or to embed it:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use onceonly_server::{ApiKey, Server, ServerConfig};
//!
//! let config = ServerConfig::new("127.0.0.1:0".parse()?).api_key(ApiKey::new("once_test_key")?);
//! let server = Server::bind(config).await?;
//! println!("serving {}", server.base_url()); // http://127.0.0.1:<port>/v1
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Extensions beyond the hosted API, all additive (an official SDK never sees them unless it
//! asks, except `lock_id` in check-lock answers and the holder's `metadata` in `in_progress`
//! lease answers, extra fields they ignore): an
//! `X-OnceOnly-Acquisition` header on `POST /v1/ai/lease` or key-mode `POST /v1/ai/run`
//! names the acquisition, and the same request sent again while its lease is live gets that
//! lease back (a client retrying after a lost answer); check-lock answers that lock carry a
//! `lock_id`; `POST /v1/check-lock/release`
//! (`{"key", "lock_id"?}`) deletes a check-lock (with `lock_id`, only that one); `retryable: true` on
//! `POST /v1/ai/fail` releases the key for a retry; `GET /v1/ai/status?key=..&wait_ms=..`
//! long-polls (bounded by [`ServerConfig::max_wait`], 30 s by default) and returns as soon as
//! the key completes, fails or is released; `POST /v1/ai/jobs/claim`
//! (`{"pattern", "lease_ttl"?, "wait_ms"?}`) hands a run queued by key-mode `/ai/run` to
//! exactly one worker, which ends it with the lease API.

mod config;
mod connections;
mod error;
mod extract;
mod metrics;
mod routes;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use onceonly_runtime::Engine;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    ApiKey, COMPLETE_ENVELOPE, CUSTOM_PLAN, ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_WAIT,
    ENV_API_KEYS, ENV_TOOL_HOSTS, MAX_API_KEY_BYTES, ServerConfig, complete_body_limit,
    parse_key_list, parse_keys_file, parse_limit, parse_store, read_keys_file, tool_hosts,
};
pub use error::ApiError;
pub use routes::router;
pub use state::{AppState, Tenant, key_preview, tenant_id};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The server task ended abnormally.
    #[error("the server task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The application (router with state) for `config`, to serve yourself or nest into another
/// axum router. The connection limits of `config` other than the body timeout apply only to
/// [`Server::bind`], which owns the connections.
pub async fn app(config: &ServerConfig) -> Result<Router, ServerError> {
    Ok(build(config).await?.0)
}

/// The router, and the counters its `/metrics` shares with the accept loop.
async fn build(
    config: &ServerConfig,
) -> Result<(Router, Arc<connections::ConnectionStats>), ServerError> {
    let keys = config.checked_keys()?;
    config.check_limits()?;
    let root = Engine::connect(&config.store, config.engine.clone())
        .await
        .map_err(|e| ConfigError(format!("cannot open the store {}: {e}", config.store)))?;
    let state = AppState::new(&root, &keys, config.max_wait, config.body_limit)?
        .body_timeout(config.body_timeout);
    let stats = state.connection_stats();
    Ok((routes::router(state), stats))
}

/// A running server. Dropping it leaves the server running until the runtime stops; call
/// [`Server::shutdown`] to stop it gracefully.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `config.listen`, starts serving on the current tokio runtime, and returns once
    /// the socket accepts connections. Port 0 picks a free port: see [`Server::local_addr`].
    ///
    /// Connections get the limits of `config`: header and idle timeouts (closed without an
    /// answer), the body timeout (408), and at most `max_connections` open at once (the next
    /// ones wait in the listen backlog).
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let (app, stats) = build(&config).await?;
        let listener = connections::listen(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr()?;
        let limits = connections::Limits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(connections::serve(
            listener,
            app,
            limits,
            stats,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(Server {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use: `http://<addr>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for that.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        Ok((&mut self.task).await?)
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        signal.await;
        self.shutdown().await
    }
}
