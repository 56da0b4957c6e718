//! `/v1/policies`: an agent's policy, stored whole or from a built-in template, and read back.

use axum::Router;
use axum::routing::{get, post};
use onceonly_runtime::JsonMap;
use onceonly_runtime::store::Store;

use crate::error::ApiError;
use crate::extract::{JsonBody, Segment};
use crate::state::{AppState, Tenant};
use crate::wire::{self, PolicyView, TemplateBody};

type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/policies", get(list::<S>))
        .route("/policies/{agent_id}", get(one::<S>).post(upsert::<S>))
        .route(
            "/policies/{agent_id}/from-template",
            post(from_template::<S>),
        )
}

/// The body is the whole policy; its `agent_id`, if any, gives way to the path's.
async fn upsert<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    JsonBody(body): JsonBody<JsonMap>,
) -> Answer<PolicyView> {
    let policy = wire::policy(&agent_id, body)?;
    Ok(axum::Json(tenant.upsert_policy(policy).await?.into()))
}

async fn from_template<S: Store>(
    tenant: Tenant<S>,
    Segment(agent_id): Segment,
    JsonBody(body): JsonBody<TemplateBody>,
) -> Answer<PolicyView> {
    let overrides = body.overrides.unwrap_or_default();
    let policy = tenant
        .policy_from_template(&agent_id, &body.template, overrides)
        .await?;
    Ok(axum::Json(policy.into()))
}

/// A bare array, as the hosted API answers it.
async fn list<S: Store>(tenant: Tenant<S>) -> Answer<Vec<PolicyView>> {
    let policies = tenant.list_policies().await?;
    Ok(axum::Json(policies.into_iter().map(Into::into).collect()))
}

/// 404 `not_found` when the agent has no policy.
async fn one<S: Store>(tenant: Tenant<S>, Segment(agent_id): Segment) -> Answer<PolicyView> {
    Ok(axum::Json(tenant.get_policy(&agent_id).await?.into()))
}
