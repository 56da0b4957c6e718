//! Governance paths (policies, agents, tools). Registered now so they answer an explicit
//! 404 after authentication; the governance endpoints replace these routes.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use onceonly_runtime::store::Store;

use crate::error::ApiError;
use crate::state::{AppState, Tenant};

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/policies", any(unavailable::<S>))
        .route("/policies/{agent_id}", any(unavailable::<S>))
        .route("/policies/{agent_id}/from-template", any(unavailable::<S>))
        .route("/agents/{agent_id}/{action}", any(unavailable::<S>))
        .route("/tools", any(unavailable::<S>))
        .route("/tools/{name}", any(unavailable::<S>))
        .route("/tools/{name}/toggle", any(unavailable::<S>))
}

/// The answer of every governance path, and of tool-mode `POST /ai/run`.
pub(super) fn not_available() -> ApiError {
    ApiError::coded(
        StatusCode::NOT_FOUND,
        "not_available",
        "governance (policies, agents, tools and governed tool calls) is not available on \
         this server yet",
    )
}

async fn unavailable<S: Store>(_tenant: Tenant<S>) -> ApiError {
    not_available()
}
