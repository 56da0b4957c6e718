//! The HTTP surface: `/healthz`, `/readyz`, Prometheus `/metrics`, and the OnceOnly API under
//! `/v1`, one module per area.
//!
//! Handlers only translate: they parse the wire request, call one engine operation of the
//! caller's tenant, and write the engine's answer back.

mod agents;
mod ai;
mod check_lock;
mod core;
mod jobs;
mod policies;
mod tools;

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use onceonly_runtime::__private::validate;
use onceonly_runtime::store::Store;
use onceonly_runtime::wire::header;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, STORE_UNAVAILABLE};
use crate::metrics::Outcome;
use crate::state::AppState;

/// The whole application for `state`.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    let body_limit = state.body_limit;
    let api = Router::new()
        .merge(core::routes())
        .merge(check_lock::routes())
        .merge(ai::routes(state.complete_body_limit))
        .merge(jobs::routes())
        .merge(policies::routes())
        .merge(agents::routes())
        .merge(tools::routes());
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(prometheus::<S>))
        .nest("/v1", api)
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), count::<S>))
        .layer(PropagateRequestIdLayer::new(header::REQUEST_ID));
    // The access log: method, path (never the query, which may carry a key), status and
    // latency, at debug level. Built only when debug logging is on: the layer costs a sixth of
    // a check-lock's throughput even when its events are filtered out.
    let app = if tracing::enabled!(tracing::Level::DEBUG) {
        app.layer(TraceLayer::new_for_http().make_span_with(access_span))
    } else {
        app
    };
    app.layer(SetRequestIdLayer::new(header::REQUEST_ID, NewRequestId))
        .layer(middleware::map_request(drop_unusable_request_id))
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

/// A caller's `X-Request-Id` that could not travel on as given (empty, over 256 bytes, not
/// visible ASCII) is dropped, so the request gets a new one: it is echoed in the answer and
/// handed to the engine, and neither should carry an unbounded or unreadable value.
async fn drop_unusable_request_id(mut req: Request) -> Request {
    let unusable = req.headers().get(&header::REQUEST_ID).is_some_and(|v| {
        v.to_str().map_or(true, |id| {
            validate::token(header::REQUEST_ID.as_str(), id).is_err()
        })
    });
    if unusable {
        req.headers_mut().remove(&header::REQUEST_ID);
    }
    req
}

/// `req_` and 24 random hex digits, for requests that come without an `X-Request-Id`.
#[derive(Debug, Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut id = *b"req_000000000000000000000000";
        hex::encode_to_slice(rand::random::<[u8; 12]>(), &mut id[4..]).ok()?;
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
    }
}

fn access_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(&header::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id,
    )
}

/// Counts every answer in `/metrics`: by status class, and by endpoint and outcome.
async fn count<S: Store>(State(state): State<AppState<S>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let outcome = res
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or_else(|| Outcome::of_status(res.status()));
    state.metrics.answered(&endpoint, res.status(), outcome);
    res
}

/// OpenMetrics text: see [`crate::metrics`].
async fn prometheus<S: Store>(State(state): State<AppState<S>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.render(),
    )
}

/// Liveness: the process serves HTTP. It does not touch the store, so a store outage does not
/// get a healthy server restarted; `/readyz` says whether requests can be served.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// How long `/readyz` waits for the store. A probe that hangs says no more than one that fails,
/// and load balancers give up on theirs after a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness: the store answers a read (the engine's [`ping`](onceonly_runtime::Engine::ping)),
/// so API calls can be served. `503` with a JSON `detail` while it does not, as API calls
/// answer then.
async fn readyz<S: Store>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.probe.ping()).await {
        Ok(Ok(())) => {}
        // A warning, not the error API calls log: a balancer asks every few seconds for as
        // long as the outage lasts.
        Ok(Err(e)) if e.is_outage() => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            return Err(ApiError::store_unavailable(STORE_UNAVAILABLE));
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            return Err(ApiError::store_unavailable(format!(
                "the store did not answer within {} s; retry later",
                READY_TIMEOUT.as_secs()
            )));
        }
    }
    Ok(axum::Json(serde_json::json!({"status": "ready"})).into_response())
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
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal server error",
    )
    .into_response()
}
