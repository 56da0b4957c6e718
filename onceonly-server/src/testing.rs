//! A real server on a free loopback port with clients of it, for tests (feature `testing`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use onceonly_server::testing::TestServer;
//!
//! let server = TestServer::start().await;
//! let lock = server.client().check_lock("evt_1").await.unwrap();
//! assert!(lock.locked);
//! # }
//! ```

use std::time::Duration;

use onceonly_runtime::OnceOnly;

use crate::{ApiKey, Server, ServerConfig};

/// The API key of the tenant [`TestServer::client`] uses.
pub const TEST_API_KEY: &str = "once_test_default_tenant";

/// A running `onceonly-server` on `127.0.0.1:0` with one unlimited tenant
/// ([`TEST_API_KEY`]), plus whatever keys a test adds. Dropping it leaves the server to the
/// runtime's end; [`shutdown`](Self::shutdown) stops it.
#[derive(Debug)]
pub struct TestServer {
    server: Server,
}

impl TestServer {
    /// A server with the default tenant only.
    pub async fn start() -> TestServer {
        TestServer::start_with(|config| config).await
    }

    /// A server whose configuration `tweak` may change (more keys, plans, limits).
    pub async fn start_with(tweak: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
        let config = ServerConfig::new(([127, 0, 0, 1], 0).into())
            .api_key(ApiKey::new(TEST_API_KEY).expect("the test key is valid"));
        let server = Server::bind(tweak(config))
            .await
            .expect("a test server binds a free loopback port");
        TestServer { server }
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// A client of the default tenant. Its timeout is generous (60 s) and it does not retry:
    /// tests of many callers on a loaded machine are not about slow answers, and a retry would
    /// hide what the first answer was.
    pub fn client(&self) -> OnceOnly {
        self.client_for(TEST_API_KEY)
    }

    /// A client of the tenant behind `api_key`.
    pub fn client_for(&self, api_key: &str) -> OnceOnly {
        OnceOnly::builder()
            .api_key(api_key)
            .base_url(self.base_url())
            .max_retries(0)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client of a loopback server builds")
    }

    /// The server itself, for tests that drive it with a raw HTTP client.
    pub fn into_server(self) -> Server {
        self.server
    }

    /// Stops the server gracefully.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "test server stopped with an error");
        }
    }
}
