//! `POST /v1/check-lock`, and the `POST /v1/check-lock/release` extension.

use axum::Router;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use onceonly_runtime::models::CheckLockRequest;
use onceonly_runtime::store::Store;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::metrics::Outcome;
use crate::state::{AppState, Tenant};
use crate::wire::{KeyBody, ReleaseBody};
use onceonly_runtime::wire::{header, status};

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/check-lock", post(check_lock::<S>))
        .route("/check-lock/release", post(release::<S>))
}

#[derive(Serialize)]
struct CheckLockAnswer<'a> {
    success: bool,
    status: &'static str,
    key: &'a str,
    ttl: u64,
    first_seen_at: Option<DateTime<Utc>>,
    /// Extension: the fencing token for `/check-lock/release`, on the answer that locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_id: Option<&'a str>,
}

/// The status travels in the body and in `X-OnceOnly-Status`, as both SDKs read either.
async fn check_lock<S: Store>(
    tenant: Tenant<S>,
    JsonBody(body): JsonBody<KeyBody>,
) -> Result<Response, ApiError> {
    let mut req = CheckLockRequest::new(body.key);
    req.ttl = body.ttl;
    req.metadata = body.metadata;
    let r = tenant.check_lock(req).await?;
    let status = if r.locked {
        status::LOCKED
    } else {
        status::DUPLICATE
    };
    let answer = CheckLockAnswer {
        success: r.locked,
        status,
        key: &r.key,
        ttl: r.ttl,
        first_seen_at: r.first_seen_at,
        lock_id: r.lock_id.as_deref(),
    };
    Ok((
        [(header::ONCEONLY_STATUS, HeaderValue::from_static(status))],
        axum::Extension(Outcome(status)),
        axum::Json(answer),
    )
        .into_response())
}

/// Extension: deletes a check-lock so the sender's retry is processed; with `lock_id`, only
/// the lock that check-lock answered with that id.
/// Answers `{"ok": true, "key", "released"}` (`released`: whether a live lock was removed).
async fn release<S: Store>(
    tenant: Tenant<S>,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> Result<Response, ApiError> {
    let released = tenant
        .release_lock(&body.key, body.lock_id.as_deref())
        .await?;
    Ok(
        axum::Json(serde_json::json!({"ok": true, "key": body.key, "released": released}))
            .into_response(),
    )
}
