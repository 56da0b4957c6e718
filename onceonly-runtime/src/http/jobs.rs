//! Claiming queued runs over HTTP: `POST /ai/jobs/claim`, an extension of `onceonly-server`
//! (the hosted API executes its runs itself and has no such route).

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::ai::{MAX_LONG_POLL, MIN_POLL};
use super::transport::{Request, Transport};
use super::wire;
use crate::error::{Error, Result};
use crate::models::{ClaimRequest, ClaimedJob};

#[derive(Serialize)]
struct ClaimBody<'a> {
    pattern: &'a str,
    lease_ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_ms: Option<u64>,
}

/// Asks for a run until one is claimed or `req.wait` has passed, as long polls of at most
/// [`MAX_LONG_POLL`] each: a proxy between client and server may cut a request held for a
/// full minute, and a shorter poll that comes back empty is simply asked again.
///
/// A claim whose answer is lost (a timeout, a dropped connection) and is retried gets the run
/// it took back, by its acquisition name. If the call gives up instead (retries exhausted),
/// that run comes back to the queue when the lease it took runs out.
pub(crate) async fn claim_job(t: &Transport, req: ClaimRequest) -> Result<Option<ClaimedJob>> {
    // Checked here because no single request carries the whole wait.
    if req.wait > ClaimRequest::MAX_WAIT {
        return Err(Error::validation(format!(
            "wait must be at most {}s",
            ClaimRequest::MAX_WAIT.as_secs()
        )));
    }
    crate::validate::ttl("lease_ttl", req.lease_ttl)?;
    let lease_ttl = wire::secs(req.lease_ttl);
    // One name for every request of this call (`X-OnceOnly-Acquisition`): a poll retried
    // after its answer was lost gets back the run it claimed instead of taking another.
    let acquisition = match &req.acquisition_id {
        Some(id) => {
            crate::validate::token("acquisition_id", id)?;
            id.clone()
        }
        None => crate::ids::random("claim"),
    };
    let mut started = Instant::now();
    // `wait` is at most a minute: no overflow.
    let deadline = started + req.wait;
    loop {
        let wait = deadline
            .saturating_duration_since(started)
            .min(MAX_LONG_POLL);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let body = ClaimBody {
            pattern: &req.pattern,
            lease_ttl,
            wait_ms: (wait_ms > 0).then_some(wait_ms),
        };
        let request = Request::post(&["ai", "jobs", "claim"], &body)?
            .extra_timeout(wait)
            .acquisition(&acquisition)?;
        let job = claim_once(t, request).await?;
        if job.is_some() || Instant::now() >= deadline {
            return Ok(job);
        }
        // A server that answered at once did not hold the request: never spin on it. The
        // last look is at the deadline.
        if started.elapsed() < MIN_POLL {
            tokio::time::sleep_until((started + MIN_POLL).min(deadline)).await;
        }
        started = Instant::now();
    }
}

async fn claim_once(t: &Transport, req: Request) -> Result<Option<ClaimedJob>> {
    let resp = t.send(req).await?;
    // The route itself never answers 404 or 405: either means the server does not have it.
    if resp.status == 404 || resp.status == 405 {
        return Err(Error::Unsupported {
            operation: "ai.jobs.claim",
            backend: "http",
        });
    }
    let mut answer = wire::read_map(&resp, t.scrub())?;
    match answer.remove("job") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(job)) => wire::decode(job).map(Some),
        Some(other) => serde_json::from_value(other)
            .map(Some)
            .map_err(Error::Decode),
    }
}
