//! A scripted HTTP server on loopback for the HTTP backend's tests: it answers the exact bytes
//! it is given (statuses, headers, bodies, delays) and records every request it receives.
//! It is used for answers a real `onceonly-server` never gives.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use onceonly_runtime::{OnceOnly, OnceOnlyBuilder};

/// The API key the stub clients use.
pub const KEY: &str = "once_test_k3y_n0t_f0r_pr1nt1ng";

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::raw(status, "application/json", body.as_bytes())
    }

    /// Any bytes with any content type.
    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the stub received it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The client's address: the same for requests sent over one connection.
    pub peer: SocketAddr,
    pub method: Method,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Seen {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Decoded query pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let q = self.query.clone().unwrap_or_default();
        url_pairs(&q)
    }
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running stub. The last reply of the script repeats forever.
pub struct Stub {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl Stub {
    /// Starts a stub that answers `replies` in order.
    pub async fn start(replies: Vec<Reply>) -> Stub {
        assert!(!replies.is_empty(), "a stub needs at least one reply");
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            seen: Mutex::default(),
        });
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Stub { addr, script }
    }

    /// Its base URL (without `/v1`: the client adds it).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of this stub with the test key, no retries, fail-open on.
    pub fn builder(&self) -> OnceOnlyBuilder {
        OnceOnly::builder().api_key(KEY).base_url(self.url())
    }

    /// A client with the defaults.
    pub fn client(&self) -> OnceOnly {
        self.builder().build().unwrap()
    }

    /// A client retrying `retries` times with a backoff of a few milliseconds, so only a
    /// `Retry-After` can explain a longer pause between two attempts.
    pub fn fast_retries(&self, retries: u32) -> OnceOnly {
        self.builder()
            .max_retries(retries)
            .retry_backoff(Duration::from_millis(1))
            .retry_max_backoff(Duration::from_millis(5))
            .build()
            .unwrap()
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    /// The only request received so far.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one request, got {seen:#?}");
        seen.into_iter().next().unwrap()
    }
}

async fn answer(
    State(script): State<Arc<Script>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap().to_vec();
    script.seen.lock().unwrap().push(Seen {
        peer,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        at: Instant::now(),
    });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front().unwrap()
        } else {
            replies.front().unwrap().clone()
        }
    };
    tokio::time::sleep(reply.delay).await;
    let mut resp = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        resp = resp.header(name, value);
    }
    resp.body(Body::from(reply.body)).unwrap()
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
