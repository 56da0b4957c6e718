//! `/v1/ai/jobs/claim` (extension): a worker claims a queued run.
//!
//! A key-mode `/ai/run` queues its run; a worker asks here for one whose key matches a
//! pattern, long-polling up to `wait_ms`, and gets the run's lease. It then heartbeats with
//! `/ai/extend` and ends the run with `/ai/complete`, `/ai/fail` or `/ai/cancel`. A claim
//! sent again with the same `X-OnceOnly-Acquisition` gets back the run it took.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use onceonly_runtime::Result;
use onceonly_runtime::engine::TenantEngine;
use onceonly_runtime::models::{ClaimRequest, ClaimedJob};
use onceonly_runtime::store::Store;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::{AppState, Tenant};
use crate::wire::{ClaimAnswer, ClaimBody};

/// The longest one engine claim waits before the task looks whether its caller is still there.
const SLICE: Duration = Duration::from_secs(1);

pub(super) fn routes<S: Store>() -> Router<AppState<S>> {
    Router::new().route("/ai/jobs/claim", post(claim::<S>))
}

/// The wait is capped by the server's long-poll bound (`--max-wait-ms`) like the status's:
/// a claim that comes back empty early is simply asked again.
async fn claim<S: Store>(
    State(state): State<AppState<S>>,
    tenant: Tenant<S>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ClaimBody>,
) -> Result<ClaimAnswer, ApiError> {
    let mut req = body.request()?;
    req.acquisition_id = super::ai::acquisition_id(&headers)?;
    req.wait = req.wait.min(state.max_wait);
    // Lives as long as the request: hyper drops the handler when its client hangs up.
    let caller = Arc::new(());
    let present = Arc::downgrade(&caller);
    // On its own task, so a hang-up never cuts an acquisition in half (see `settle`).
    let job = tenant
        .settle(move |t| claim_while_present(t, req, present))
        .await?;
    drop(caller);
    Ok(ClaimAnswer::new(job))
}

/// Claims in slices of at most [`SLICE`], and stops waiting once the caller is gone. A task
/// that waited out the whole `wait_ms` after a hang-up would claim a run nobody hears about,
/// which would sit unworked until its lease ran out (a worker stopped mid-poll is the common
/// case). Each slice is woken by a queued run like one long claim would be.
async fn claim_while_present<S: Store>(
    engine: TenantEngine<S>,
    req: ClaimRequest,
    present: Weak<()>,
) -> Result<Option<ClaimedJob>> {
    let deadline = Instant::now() + req.wait;
    loop {
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(SLICE);
        let job = engine.claim_job(req.clone().wait(slice)).await?;
        if job.is_some() || Instant::now() >= deadline || present.strong_count() == 0 {
            return Ok(job);
        }
    }
}
