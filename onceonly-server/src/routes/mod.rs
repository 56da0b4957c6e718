//! The HTTP surface: `/healthz`, Prometheus `/metrics`, and the OnceOnly API under `/v1`, one
//! module per area.
//!
//! Handlers only translate: they parse the wire request, call one engine operation of the
//! caller's tenant, and write the engine's answer back. Governance routes are registered so
//! their paths answer a clear 404 until governance arrives; it slots in by replacing
//! [`governance::routes`].

mod ai;
mod check_lock;
mod core;
mod governance;

use std::any::Any;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use onceonly_runtime::store::Store;
use tower_http::catch_panic::CatchPanicLayer;

use crate::connections::ConnectionStats;
use onceonly_runtime::wire::header;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole application for `state`.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    let body_limit = state.body_limit;
    let api = Router::new()
        .merge(core::routes())
        .merge(check_lock::routes())
        .merge(ai::routes(state.complete_body_limit))
        .merge(governance::routes());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus::<S>))
        .nest("/v1", api)
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context::<S>,
        ))
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

/// Server-wide request counters, exposed at `/metrics`.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    /// Answers by status class: 1xx .. 5xx.
    by_class: [AtomicU64; 5],
    /// Connections, and what the connection limits closed or refused.
    pub(crate) connections: Arc<ConnectionStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            by_class: Default::default(),
            connections: Arc::default(),
        }
    }
}

/// Prometheus text format: answers by status class, connections and the limits that closed
/// them, tenants, uptime. No per-key labels.
async fn prometheus<S: Store>(State(state): State<AppState<S>>) -> impl IntoResponse {
    let mut out = String::new();
    out.push_str(
        "# HELP onceonly_http_requests_total HTTP requests answered, by status class.\n\
         # TYPE onceonly_http_requests_total counter\n",
    );
    for (i, n) in state.stats.by_class.iter().enumerate() {
        let _ = writeln!(
            out,
            "onceonly_http_requests_total{{class=\"{}xx\"}} {}",
            i + 1,
            n.load(Ordering::Relaxed)
        );
    }
    let _ = write!(
        out,
        "# HELP onceonly_tenants API keys (tenants) configured.\n\
         # TYPE onceonly_tenants gauge\n\
         onceonly_tenants {}\n\
         # HELP onceonly_uptime_seconds Seconds since the server started.\n\
         # TYPE onceonly_uptime_seconds gauge\n\
         onceonly_uptime_seconds {}\n",
        state.tenants(),
        state.stats.started.elapsed().as_secs()
    );
    state.stats.connections.render(&mut out);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        out,
    )
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn unknown_path(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_path(method.as_str(), uri.path())
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

fn on_panic(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::coded(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal server error",
    )
    .into_response()
}

fn usable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
}

fn new_request_id() -> HeaderValue {
    let id = format!("req_{:024x}", rand::random::<u128>() >> 32);
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("req"))
}

/// Sets `X-Request-Id` on every answer and logs each request at debug level (method, path,
/// status, duration, request id; never headers or bodies, so never keys).
async fn request_context<S: Store>(
    State(state): State<AppState<S>>,
    req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(&header::REQUEST_ID)
        .filter(|v| usable_request_id(v))
        .cloned()
        .unwrap_or_else(new_request_id);
    let log = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        (
            req.method().clone(),
            req.uri().path().to_owned(),
            Instant::now(),
        )
    });
    let mut res = next.run(req).await;
    let class = usize::from(res.status().as_u16() / 100).clamp(1, 5) - 1;
    state.stats.by_class[class].fetch_add(1, Ordering::Relaxed);
    if let Some((method, path, started)) = log {
        tracing::debug!(
            %method,
            %path,
            status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            request_id = id.to_str().unwrap_or_default(),
            "request"
        );
    }
    res.headers_mut().insert(header::REQUEST_ID, id);
    res
}
