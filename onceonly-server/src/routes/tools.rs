//! `/v1/tools`: the tools registry, per scope (`global` or `agent:<agent_id>`). Answers show a
//! tool's secret only as `secret_id` and `secret_mask`.

use axum::Router;
use axum::routing::{get, post};
use onceonly_runtime::models::{Tool, ToolDeleted, ToolSpec};
use onceonly_runtime::store::Store;

use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, Segment};
use crate::state::{AppState, Tenant};
use crate::wire::{ScopeQuery, ToggleBody};

type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/tools", get(list::<S>).post(create::<S>))
        .route("/tools/{name}", get(one::<S>).delete(delete::<S>))
        .route("/tools/{name}/toggle", post(toggle::<S>))
}

/// An upsert by name and scope; the scope comes in the body.
async fn create<S: Store>(tenant: Tenant<S>, JsonBody(spec): JsonBody<ToolSpec>) -> Answer<Tool> {
    Ok(axum::Json(tenant.create_tool(spec).await?))
}

/// A bare array.
async fn list<S: Store>(
    tenant: Tenant<S>,
    QueryParams(q): QueryParams<ScopeQuery>,
) -> Answer<Vec<Tool>> {
    Ok(axum::Json(tenant.list_tools(&q.scope()).await?))
}

async fn one<S: Store>(
    tenant: Tenant<S>,
    Segment(name): Segment,
    QueryParams(q): QueryParams<ScopeQuery>,
) -> Answer<Tool> {
    Ok(axum::Json(tenant.get_tool(&name, &q.scope()).await?))
}

async fn toggle<S: Store>(
    tenant: Tenant<S>,
    Segment(name): Segment,
    QueryParams(q): QueryParams<ScopeQuery>,
    JsonBody(body): JsonBody<ToggleBody>,
) -> Answer<Tool> {
    let tool = tenant.toggle_tool(&name, body.enabled, &q.scope()).await?;
    Ok(axum::Json(tool))
}

async fn delete<S: Store>(
    tenant: Tenant<S>,
    Segment(name): Segment,
    QueryParams(q): QueryParams<ScopeQuery>,
) -> Answer<ToolDeleted> {
    Ok(axum::Json(tenant.delete_tool(&name, &q.scope()).await?))
}
