//! `/v1/ai/*`: key-mode runs and governed tool calls, the lease API (with the governance
//! extension), status (with the `wait_ms` long-poll extension) and results.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use onceonly_runtime::__private::validate;
use onceonly_runtime::models::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease,
    LeaseRequest, RunStatus,
};
use onceonly_runtime::store::Store;
use onceonly_runtime::wire::header::ACQUISITION;

use crate::error::ApiError;
use crate::extract::{BodyLimit, JsonBody, QueryParams};
use crate::metrics::Outcome;
use crate::state::{AppState, Tenant};
use crate::wire::{
    CancelBody, CompleteBody, ExtendBody, FailBody, KeyQuery, LeaseBody, LeaseView, RunBody,
    StatusQuery, ToolAnswer,
};

type Answer<T> = Result<Reply<T>, ApiError>;

/// A lease, status or result answer; `/metrics` counts it under its `status`.
struct Reply<T>(T);

trait HasStatus: serde::Serialize {
    fn status(&self) -> RunStatus;

    /// The answer's `status` as the body spells it, which `/metrics` counts.
    fn outcome(&self) -> &'static str {
        self.status().as_str()
    }

    fn render(&self) -> Response {
        axum::Json(self).into_response()
    }
}

impl HasStatus for Lease {
    fn status(&self) -> RunStatus {
        self.status
    }

    fn render(&self) -> Response {
        axum::Json(LeaseView::new(self)).into_response()
    }
}

/// The answer to `POST /ai/extend`: a lease the holder still holds reads `extended`, as on the
/// hosted API (the engine's model says `acquired`; the HTTP client reads both).
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Extended(Lease);

impl HasStatus for Extended {
    fn status(&self) -> RunStatus {
        self.0.status
    }

    fn outcome(&self) -> &'static str {
        match self.0.status {
            RunStatus::Acquired => onceonly_runtime::wire::status::EXTENDED,
            other => other.as_str(),
        }
    }

    fn render(&self) -> Response {
        let mut view = serde_json::to_value(LeaseView::new(&self.0)).unwrap_or_default();
        view["status"] = self.outcome().into();
        axum::Json(view).into_response()
    }
}

impl HasStatus for AiStatus {
    fn status(&self) -> RunStatus {
        self.status
    }
}

impl HasStatus for AiResult {
    fn status(&self) -> RunStatus {
        self.status
    }
}

impl<T: HasStatus> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let outcome = Outcome(self.0.outcome());
        (Extension(outcome), self.0.render()).into_response()
    }
}

pub(super) fn routes<S: Store>(complete_body_limit: usize) -> Router<AppState<S>> {
    Router::new()
        .route("/ai/run", post(run::<S>))
        .route("/ai/lease", post(lease::<S>))
        .route("/ai/extend", post(extend::<S>))
        .route(
            "/ai/complete",
            post(complete::<S>).layer::<_, Infallible>((
                DefaultBodyLimit::max(complete_body_limit),
                Extension(BodyLimit(complete_body_limit)),
            )),
        )
        .route("/ai/fail", post(fail::<S>))
        .route("/ai/cancel", post(cancel::<S>))
        .route("/ai/status", get(status::<S>))
        .route("/ai/result", get(result::<S>))
}

/// The lease request of `/ai/lease` and key-mode `/ai/run`. `X-OnceOnly-Acquisition`
/// (extension) names the acquisition, so a client retrying after a lost answer gets its lease
/// back.
fn lease_request(
    headers: &HeaderMap,
    key: String,
    ttl: Option<Duration>,
    metadata: Option<onceonly_runtime::JsonMap>,
) -> Result<LeaseRequest, ApiError> {
    let mut req = LeaseRequest::new(key);
    req.ttl = ttl;
    req.metadata = metadata;
    req.acquisition_id = acquisition_id(headers)?;
    Ok(req)
}

/// `X-OnceOnly-Acquisition` (extension): the caller's name for an acquisition (a lease, a
/// claim), the same on every retry of one call.
pub(super) fn acquisition_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&ACQUISITION) else {
        return Ok(None);
    };
    let id = value
        .to_str()
        .ok()
        .filter(|id| validate::token(ACQUISITION.as_str(), id).is_ok())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "the {ACQUISITION} header must be 1 to 256 bytes of visible ASCII"
            ))
        })?;
    Ok(Some(id.to_owned()))
}

/// Key mode starts or attaches to a run (same answer as `/ai/lease`); tool mode is a governed
/// call of a registered tool.
async fn run<S: Store>(
    tenant: Tenant<S>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    match body.key {
        Some(_) if !body.call.is_empty() => Err(ApiError::validation(
            "give either key (a run) or agent_id and tool (a tool call), not both",
        )),
        Some(key) => {
            let req = lease_request(&headers, key, body.ttl, body.metadata)?;
            let lease = tenant.settle(|t| async move { t.run(req).await }).await?;
            Ok(Reply(lease).into_response())
        }
        None if body.call.is_empty() => Err(ApiError::validation(
            "ai.run needs key (a run), or agent_id and tool (a tool call)",
        )),
        None => {
            let req = body.call.tool_call()?;
            let tool = req.tool.clone();
            // On its own task: a client hanging up must not cut a signed outbound call (or its
            // record and audit entry) short.
            let result = tenant
                .settle(|t| async move { t.run_tool(req).await })
                .await?;
            Ok(ToolAnswer { tool, result }.into_response())
        }
    }
}

/// With `agent_id` and `tool` (extension), the lease is a governed call: a refusal answers
/// `status: "blocked"` with `policy_reason` and `risk_level`.
async fn lease<S: Store>(
    tenant: Tenant<S>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LeaseBody>,
) -> Answer<Lease> {
    let mut req = lease_request(&headers, body.key, body.ttl, body.metadata)?;
    req.governance = body.call.governance()?;
    Ok(Reply(
        tenant.settle(|t| async move { t.lease(req).await }).await?,
    ))
}

async fn extend<S: Store>(
    tenant: Tenant<S>,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Answer<Extended> {
    let req = ExtendRequest::new(body.key, body.lease_id, body.ttl);
    Ok(Reply(Extended(
        tenant
            .settle(|t| async move { t.extend(req).await })
            .await?,
    )))
}

async fn complete<S: Store>(
    tenant: Tenant<S>,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Answer<Lease> {
    let mut req = CompleteRequest::new(body.key, body.lease_id, body.result);
    req.result_hash = body.result_hash;
    Ok(Reply(
        tenant
            .settle(|t| async move { t.complete(req).await })
            .await?,
    ))
}

/// `retryable: true` (extension) releases the key for a retry instead of failing it for good.
async fn fail<S: Store>(tenant: Tenant<S>, JsonBody(body): JsonBody<FailBody>) -> Answer<Lease> {
    let mut req = FailRequest::new(body.key, body.lease_id, body.error_code, body.retryable);
    req.error_hash = body.error_hash;
    Ok(Reply(
        tenant.settle(|t| async move { t.fail(req).await }).await?,
    ))
}

/// With `error_code` (extension) the cancel is a retryable failure with that code: the form in
/// which clients send one, because the hosted API treats every `/ai/fail` as terminal.
async fn cancel<S: Store>(
    tenant: Tenant<S>,
    JsonBody(body): JsonBody<CancelBody>,
) -> Answer<Lease> {
    let answer = match body.error_code {
        Some(code) => {
            let mut req = FailRequest::new(body.key, body.lease_id, code, true);
            req.error_hash = body.error_hash;
            tenant.settle(|t| async move { t.fail(req).await }).await?
        }
        None => {
            let reason = body.reason.filter(|r| !r.is_empty());
            let req = CancelRequest::new(body.key, body.lease_id, reason);
            tenant
                .settle(|t| async move { t.cancel(req).await })
                .await?
        }
    };
    Ok(Reply(answer))
}

/// With `wait_ms` (extension), waits up to that long (capped by the server's bound) for the
/// key to leave `in_progress`, woken by the change itself rather than by polling.
async fn status<S: Store>(
    State(state): State<AppState<S>>,
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<StatusQuery>,
) -> Answer<AiStatus> {
    let status = match q.wait_ms.filter(|ms| *ms > 0) {
        Some(ms) => {
            let wait = Duration::from_millis(ms).min(state.max_wait);
            tenant.wait_status(&q.key, wait).await?
        }
        None => tenant.status(&q.key).await?,
    };
    Ok(Reply(status))
}

async fn result<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<KeyQuery>,
) -> Answer<AiResult> {
    Ok(Reply(tenant.result(&q.key).await?))
}
