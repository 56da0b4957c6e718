//! Account endpoints: `/v1/me`, `/v1/usage`, `/v1/events`, `/v1/runs`, `/v1/metrics`.

use axum::Router;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use onceonly_runtime::models::{
    AccountInfo, EventAck, EventsPage, Metrics, NotificationPrefs, NotificationUpdate, RunEvent,
    RunList, RunTimeline, Usage, UsageKind,
};
use onceonly_runtime::store::Store;
use onceonly_runtime::wire::header;

use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, Segment};
use crate::state::{AppState, Tenant};
use crate::wire::{MetricsQuery, PageQuery, UsageQuery};

type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/me", get(me::<S>))
        .route("/me/notifications", axum::routing::post(notifications::<S>))
        .route("/usage", get(usage::<S>))
        .route("/usage/all", get(usage_all::<S>))
        .route("/events", get(events::<S>).post(post_event::<S>))
        .route("/runs", get(runs::<S>))
        .route("/runs/{run_id}", get(run_timeline::<S>))
        .route("/metrics", get(metrics::<S>))
}

async fn me<S: Store>(tenant: Tenant<S>) -> Answer<AccountInfo> {
    Ok(axum::Json(tenant.me().await?))
}

async fn notifications<S: Store>(
    tenant: Tenant<S>,
    JsonBody(update): JsonBody<NotificationUpdate>,
) -> Answer<NotificationPrefs> {
    Ok(axum::Json(tenant.update_notifications(update).await?))
}

/// `make` when absent or blank, as the official SDKs default it.
fn usage_kind(kind: Option<&str>) -> Result<UsageKind, ApiError> {
    match kind.map(str::trim) {
        None | Some("") => Ok(UsageKind::Make),
        Some(kind) => Ok(kind.parse()?),
    }
}

async fn usage<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<UsageQuery>,
) -> Answer<Usage> {
    let kind = usage_kind(q.kind.as_deref())?;
    Ok(axum::Json(tenant.usage(kind).await?))
}

/// Also sets `X-OnceOnly-Plan` and `X-OnceOnly-Month`, as the hosted API does.
async fn usage_all<S: Store>(tenant: Tenant<S>) -> Result<Response, ApiError> {
    let all = tenant.usage_all().await?;
    let mut res = axum::Json(&all).into_response();
    for (name, value) in [
        (header::PLAN, all.plan.as_str()),
        (header::MONTH, all.month.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            res.headers_mut().insert(name, v);
        }
    }
    Ok(res)
}

async fn events<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Answer<EventsPage> {
    let page = tenant
        .events(q.limit.unwrap_or(50), q.offset.unwrap_or(0))
        .await?;
    Ok(axum::Json(page))
}

async fn post_event<S: Store>(
    tenant: Tenant<S>,
    JsonBody(event): JsonBody<RunEvent>,
) -> Answer<EventAck> {
    Ok(axum::Json(tenant.post_event(event).await?))
}

async fn runs<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Answer<RunList> {
    let q_prefix = q.q.as_deref().filter(|s| !s.is_empty());
    let page = tenant
        .runs(q.limit.unwrap_or(50), q.offset.unwrap_or(0), q_prefix)
        .await?;
    Ok(axum::Json(page))
}

async fn run_timeline<S: Store>(
    tenant: Tenant<S>,
    Segment(run_id): Segment,
    QueryParams(q): QueryParams<PageQuery>,
) -> Answer<RunTimeline> {
    let timeline = tenant
        .run_timeline(&run_id, q.limit.unwrap_or(200), q.offset.unwrap_or(0))
        .await?;
    Ok(axum::Json(timeline))
}

async fn metrics<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<MetricsQuery>,
) -> Answer<Metrics> {
    Ok(axum::Json(tenant.metrics(&q.from_day, &q.to_day).await?))
}
