//! A real server on 127.0.0.1:0 and a raw HTTP client, shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod raw;

use onceonly_runtime::engine::Plan;
use onceonly_server::{ApiKey, Server, ServerConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Tenant A, unlimited.
pub const A: &str = "once_test_tenant_a_0001";
/// Tenant B, unlimited.
pub const B: &str = "once_test_tenant_b_0002";
/// Tenant F: plan `free`, 3 check-locks and 2 acquired leases per month.
pub const F: &str = "once_test_tenant_free_03";

/// Property tests run 64 cases each, or `PROPTEST_CASES`; a failure is reported, not written
/// into the tree (a case worth keeping becomes a named test).
pub fn proptest_config() -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.failure_persistence = None;
    config
}

pub struct TestServer {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The JSON `detail` of an error answer (panics with the raw text if there is none).
    pub fn detail(&self) -> &Value {
        match self.body.get("detail") {
            Some(d) => d,
            None => panic!("no JSON detail in {} {:?}", self.status, self.text),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn start() -> TestServer {
    start_with(|c| c).await
}

pub async fn start_with(tweak: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let server = onceonly_server::testing::TestServer::start_with(|config| {
        tweak(
            config
                .api_key(ApiKey::new(A).unwrap())
                .api_key(ApiKey::new(B).unwrap())
                .api_key(
                    ApiKey::new(F)
                        .unwrap()
                        .plan(Plan::new("free").make_limit(3).ai_limit(2)),
                ),
        )
    })
    .await
    .into_server();
    let base = server.base_url();
    TestServer {
        server,
        base,
        http: reqwest::Client::new(),
    }
}

impl TestServer {
    /// Sends `method path` with `Authorization: Bearer key` (when given) and a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with('/') {
            format!("{}{}", self.base.trim_end_matches("/v1"), path)
        } else {
            format!("{}/{}", self.base, path)
        };
        let mut req = self.http.request(method, url);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Answer {
        self.raw(
            Method::POST,
            path,
            Some(key),
            Some(serde_json::to_vec(&body).unwrap()),
            &[],
        )
        .await
    }

    pub async fn get(&self, key: &str, path: &str) -> Answer {
        self.raw(Method::GET, path, Some(key), None, &[]).await
    }

    /// `POST path`, asserting 200, returning the JSON body.
    pub async fn post_ok(&self, key: &str, path: &str, body: Value) -> Value {
        let a = self.post(key, path, body).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a.body
    }

    /// `GET path`, asserting 200, returning the JSON body.
    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let a = self.raw(Method::GET, "/metrics", None, None, &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.text
    }

    pub async fn get_ok(&self, key: &str, path: &str) -> Value {
        let a = self.get(key, path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a.body
    }
}
