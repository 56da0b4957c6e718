//! `/v1/agents/{agent_id}/*`: the kill switch, the audit log and metrics read from it.

use axum::Router;
use axum::routing::{get, post};
use onceonly_runtime::models::{AgentLogItem, AgentMetrics, AgentStatus, MetricsPeriod};
use onceonly_runtime::store::Store;

use crate::error::ApiError;
use crate::extract::{OptionalBody, QueryParams, Segment};
use crate::state::{AppState, Tenant};
use crate::wire::{PageQuery, PeriodQuery, ReasonBody};

type Answer<T> = Result<axum::Json<T>, ApiError>;

/// Log entries when `limit` is absent.
const DEFAULT_LOG_LIMIT: u32 = 100;

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/agents/{agent_id}/disable", post(disable::<S>))
        .route("/agents/{agent_id}/enable", post(enable::<S>))
        .route("/agents/{agent_id}/logs", get(logs::<S>))
        .route("/agents/{agent_id}/metrics", get(metrics::<S>))
}

async fn disable<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    OptionalBody(body): OptionalBody<ReasonBody>,
) -> Answer<AgentStatus> {
    let status = tenant
        .disable_agent(&agent_id, body.reason.as_deref())
        .await?;
    Ok(axum::Json(status))
}

/// The official SDKs send the same `{"reason"?}` body as for disable; enabling keeps none.
async fn enable<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    OptionalBody(_): OptionalBody<ReasonBody>,
) -> Answer<AgentStatus> {
    Ok(axum::Json(tenant.enable_agent(&agent_id).await?))
}

/// Newest first, a bare array; `limit` 1 to 500.
async fn logs<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    QueryParams(q): QueryParams<PageQuery>,
) -> Answer<Vec<AgentLogItem>> {
    let limit = q.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    Ok(axum::Json(tenant.agent_logs(&agent_id, limit).await?))
}

/// `period` is `hour`, `day` (the default) or `week`.
async fn metrics<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    QueryParams(q): QueryParams<PeriodQuery>,
) -> Answer<AgentMetrics> {
    let period = match q.period.as_deref() {
        None | Some("") => MetricsPeriod::default(),
        Some(p) => p.parse()?,
    };
    Ok(axum::Json(tenant.agent_metrics(&agent_id, period).await?))
}
