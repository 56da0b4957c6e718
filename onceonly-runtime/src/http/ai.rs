//! The AI run and lease endpoints, and waiting over HTTP.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::transport::{Request, Transport};
use super::wire::{self, KeyBody, call, ttl_secs};
use crate::error::{Error, JsonMap, Result};
use crate::ids;
use crate::models::{
    AiResult, AiStatus, CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease,
    LeaseRequest, RunStatus,
};
use crate::wire::Refusal;

/// Shortest pause between two status polls when the server does not long-poll.
pub(super) const MIN_POLL: Duration = Duration::from_millis(500);
/// Longest pause between two status polls.
const MAX_POLL: Duration = Duration::from_secs(5);
/// Longest single long poll asked of the server; longer waits are several polls.
pub(super) const MAX_LONG_POLL: Duration = Duration::from_secs(20);

/// A lease body; a governed lease adds `agent_id`, `tool`, `args` and `spend_usd` (extension),
/// and a refusal answers `status: "blocked"` with its `policy_reason`.
#[derive(Serialize)]
struct LeaseBody<'a> {
    #[serde(flatten)]
    key: KeyBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a JsonMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend_usd: Option<f64>,
}

/// `POST /ai/lease` and key-mode `POST /ai/run` (same body, same answer).
///
/// Each call names its acquisition (`X-OnceOnly-Acquisition`, the same on every retry): when
/// the answer that acquired is lost and the request is retried, `onceonly-server` gives the
/// same lease back instead of reporting it as someone else's `in_progress`.
pub(crate) async fn lease(t: &Transport, path: &[&str], req: LeaseRequest) -> Result<Lease> {
    let gov = req.governance.as_ref();
    let body = LeaseBody {
        key: KeyBody {
            key: &req.key,
            ttl: ttl_secs(req.ttl)?,
            metadata: req.metadata.as_ref(),
        },
        agent_id: gov.map(|g| g.agent_id.as_str()),
        tool: gov.map(|g| g.tool.as_str()),
        args: gov.and_then(|g| g.args.as_ref()),
        spend_usd: gov.and_then(|g| g.spend_usd),
    };
    let acquisition = req
        .acquisition_id
        .clone()
        .unwrap_or_else(|| ids::random("acq"));
    if let Some(id) = &req.acquisition_id {
        crate::validate::token("acquisition_id", id)?;
    }
    let request = Request::post(path, &body)?.acquisition(&acquisition)?;
    let answer = wire::call_map(t, request)
        .await
        .map_err(engine_refusal(&req.key))?;
    let acquired = acquired_lease_id(&answer);
    match wire::decode(answer) {
        Ok(lease) => Ok(lease),
        Err(e) => {
            // An answer that says it acquired but cannot be read otherwise: the lease is given
            // back, or it would hold the key for its TTL with nobody knowing its id.
            if let Some(lease_id) = acquired {
                let reason = Some("the lease answer could not be read".to_owned());
                if let Err(c) = cancel(t, CancelRequest::new(&req.key, lease_id, reason)).await {
                    tracing::warn!(key = %req.key, error = %c, "could not give back a lease whose answer could not be read");
                }
            }
            Err(e)
        }
    }
}

/// The lease id of an answer whose `status` says it acquired.
fn acquired_lease_id(answer: &JsonMap) -> Option<String> {
    let status = answer.get("status").and_then(Value::as_str)?;
    let acquired = status
        .trim()
        .eq_ignore_ascii_case(RunStatus::Acquired.as_str());
    let id = answer.get("lease_id").and_then(Value::as_str)?;
    acquired.then(|| id.to_owned())
}

/// Reads the engine's refusals back into the errors the embedded backend returns: a 409
/// whose detail code is a [`Refusal`].
fn engine_refusal(key: &str) -> impl FnOnce(Error) -> Error + '_ {
    move |e| {
        let Error::Api {
            status: 409,
            ref detail,
        } = e
        else {
            return e;
        };
        let text = |name: &str| {
            detail
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let code = detail.get("error").and_then(Value::as_str);
        match code.and_then(|c| c.parse::<Refusal>().ok()) {
            Some(Refusal::LeaseLost) => Error::LeaseLost {
                key: key.to_owned(),
            },
            Some(Refusal::InProgress) => Error::InProgress {
                key: key.to_owned(),
                retry_after: None,
            },
            Some(Refusal::PreviouslyFailed) => Error::PreviouslyFailed {
                key: key.to_owned(),
                error_code: text("error_code"),
            },
            Some(Refusal::Blocked) => Error::Blocked {
                reason: text("policy_reason"),
                decision: text("decision"),
            },
            Some(Refusal::Conflict) => Error::Conflict {
                key: key.to_owned(),
                reason: text("message"),
            },
            None => e,
        }
    }
}

async fn holder_call(
    t: &Transport,
    path: &[&str],
    key: &str,
    body: &impl Serialize,
) -> Result<Lease> {
    call(t, Request::post(path, body)?)
        .await
        .map_err(engine_refusal(key))
}

#[derive(Serialize)]
struct ExtendBody<'a> {
    key: &'a str,
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
}

pub(crate) async fn extend(t: &Transport, req: ExtendRequest) -> Result<Lease> {
    let body = ExtendBody {
        key: &req.key,
        lease_id: &req.lease_id,
        ttl: ttl_secs(req.ttl)?,
    };
    holder_call(t, &["ai", "extend"], &req.key, &body).await
}

#[derive(Serialize)]
struct CompleteBody<'a> {
    key: &'a str,
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a JsonMap>,
}

pub(crate) async fn complete(t: &Transport, req: CompleteRequest) -> Result<Lease> {
    let body = CompleteBody {
        key: &req.key,
        lease_id: &req.lease_id,
        result_hash: req.result_hash.as_deref(),
        result: req.result.as_ref(),
    };
    holder_call(t, &["ai", "complete"], &req.key, &body).await
}

#[derive(Serialize)]
struct FailBody<'a> {
    key: &'a str,
    lease_id: &'a str,
    error_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_hash: Option<&'a str>,
}

/// A retryable failure is sent as `/ai/cancel`, since every server releases a cancelled key,
/// while `/ai/fail` fails it for good on the hosted API whatever flag it carries. The cancel
/// carries the error code twice: as the `reason` every server takes, and as `error_code`
/// (extension), which `onceonly-server` reads as "a retryable failure with this code", so the
/// key reads back exactly as on the embedded engine. The hosted API reads it as `cancelled`.
pub(crate) async fn fail(t: &Transport, req: FailRequest) -> Result<Lease> {
    if req.retryable {
        let body = CancelBody {
            key: &req.key,
            lease_id: &req.lease_id,
            reason: Some(&req.error_code),
            error_code: Some(&req.error_code),
            error_hash: req.error_hash.as_deref(),
        };
        return holder_call(t, &["ai", "cancel"], &req.key, &body).await;
    }
    let body = FailBody {
        key: &req.key,
        lease_id: &req.lease_id,
        error_code: &req.error_code,
        error_hash: req.error_hash.as_deref(),
    };
    holder_call(t, &["ai", "fail"], &req.key, &body).await
}

#[derive(Serialize)]
struct CancelBody<'a> {
    key: &'a str,
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// Extension: present only on a retryable failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_hash: Option<&'a str>,
}

pub(crate) async fn cancel(t: &Transport, req: CancelRequest) -> Result<Lease> {
    let body = CancelBody {
        key: &req.key,
        lease_id: &req.lease_id,
        reason: req.reason.as_deref().filter(|r| !r.is_empty()),
        error_code: None,
        error_hash: None,
    };
    holder_call(t, &["ai", "cancel"], &req.key, &body).await
}

pub(crate) async fn status(t: &Transport, key: &str) -> Result<AiStatus> {
    call(t, Request::get(&["ai", "status"]).query("key", key)).await
}

pub(crate) async fn result(t: &Transport, key: &str) -> Result<AiResult> {
    // `result` must be an object; anything else is dropped, as the official SDKs do.
    let mut map = wire::call_map(t, Request::get(&["ai", "result"]).query("key", key)).await?;
    if map.get("result").is_some_and(|r| !r.is_object()) {
        map.remove("result");
    }
    wire::decode(map)
}

/// Long-polls `GET /ai/status?key=..&wait_ms=..` until the key settles (completed, failed,
/// released) or `max_wait` has passed. Consecutive polls start at least 0.5 s apart: a server
/// that held the request for that long is asked again at once, one that answered sooner is
/// asked again after its `retry_after_sec` hint (clamped to [0.5 s, 5 s]).
pub(crate) async fn wait_status(t: &Transport, key: &str, max_wait: Duration) -> Result<AiStatus> {
    let deadline = crate::time::deadline_after(max_wait);
    loop {
        let started = Instant::now();
        let wait = deadline
            .saturating_duration_since(started)
            .min(MAX_LONG_POLL);
        let mut req = Request::get(&["ai", "status"]).query("key", key);
        if !wait.is_zero() {
            req = req.query("wait_ms", wait.as_millis()).extra_timeout(wait);
        }
        let status: AiStatus = call(t, req).await?;
        if status.status.is_terminal() || Instant::now() >= deadline {
            return Ok(status);
        }
        // A server that held the request long-polls: ask again at once. One that answered
        // sooner than the shortest poll interval does not: wait for its hint.
        if started.elapsed() < MIN_POLL {
            let hint = status
                .retry_after_sec
                .map_or(MIN_POLL, Duration::from_secs)
                .clamp(MIN_POLL, MAX_POLL);
            tokio::time::sleep_until((started + hint).min(deadline)).await;
        }
    }
}
