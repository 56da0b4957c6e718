//! Request bodies and query strings as the OnceOnly API takes them, and the answers whose wire
//! shape is not the model's own serialization. Unknown request fields are ignored; metadata is
//! also accepted under its legacy name `meta`.

use std::time::Duration;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use onceonly_runtime::JsonMap;
use onceonly_runtime::models::{
    ClaimRequest, ClaimedJob, Governance, Lease, Policy, PolicyReason, ToolCallRequest, ToolResult,
};
use serde::de::IntoDeserializer;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ApiError;
use crate::metrics::Outcome;

/// A TTL in seconds: a non-negative number (whole or not), or absent/null.
fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::de::Error;
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
            .map(Some)
            .map_err(|_| D::Error::custom("ttl is too large")),
        Some(_) => Err(D::Error::custom(
            "ttl must be a non-negative number of seconds",
        )),
    }
}

/// `POST /check-lock`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyBody {
    pub(crate) key: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, alias = "meta")]
    pub(crate) metadata: Option<JsonMap>,
}

/// `POST /ai/lease`; the governance fields are an extension.
#[derive(Debug, Deserialize)]
pub(crate) struct LeaseBody {
    pub(crate) key: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, alias = "meta")]
    pub(crate) metadata: Option<JsonMap>,
    #[serde(flatten)]
    pub(crate) call: GovernedCall,
}

/// `POST /ai/run`: key mode, or tool mode (governed tool call).
#[derive(Debug, Deserialize)]
pub(crate) struct RunBody {
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, alias = "meta")]
    pub(crate) metadata: Option<JsonMap>,
    #[serde(flatten)]
    pub(crate) call: GovernedCall,
}

/// The fields of a governed call: tool-mode `/ai/run`, and the lease extension.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GovernedCall {
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    args: Option<JsonMap>,
    #[serde(default)]
    spend_usd: Option<f64>,
}

impl GovernedCall {
    /// Whether no governance field was given (empty names count as absent, as the official
    /// SDKs treat them).
    pub(crate) fn is_empty(&self) -> bool {
        self.names() == (None, None) && self.args.is_none() && self.spend_usd.is_none()
    }

    fn names(&self) -> (Option<&str>, Option<&str>) {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        (given(&self.agent_id), given(&self.tool))
    }

    /// The governance of a lease: none when no field was given; `agent_id` and `tool` together
    /// otherwise.
    pub(crate) fn governance(self) -> Result<Option<Governance>, ApiError> {
        if self.is_empty() {
            return Ok(None);
        }
        let (agent, tool) = self.both()?;
        let mut gov = Governance::new(agent, tool);
        gov.args = self.args;
        gov.spend_usd = self.spend_usd;
        Ok(Some(gov))
    }

    /// The tool call of tool-mode `/ai/run`.
    pub(crate) fn tool_call(self) -> Result<ToolCallRequest, ApiError> {
        let (agent, tool) = self.both()?;
        let mut req = ToolCallRequest::new(agent, tool).args(self.args.unwrap_or_default());
        req.spend_usd = self.spend_usd;
        Ok(req)
    }

    fn both(&self) -> Result<(&str, &str), ApiError> {
        match self.names() {
            (Some(agent), Some(tool)) => Ok((agent, tool)),
            _ => Err(ApiError::validation(
                "a governed call needs both agent_id and tool (args and spend_usd are optional)",
            )),
        }
    }
}

/// `POST /ai/extend`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExtendBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
}

/// `POST /ai/complete`.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default)]
    pub(crate) result: Option<JsonMap>,
    #[serde(default)]
    pub(crate) result_hash: Option<String>,
}

/// `POST /ai/fail` (`retryable` is an extension).
#[derive(Debug, Deserialize)]
pub(crate) struct FailBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    pub(crate) error_code: String,
    #[serde(default)]
    pub(crate) error_hash: Option<String>,
    #[serde(default)]
    pub(crate) retryable: bool,
}

/// `POST /ai/cancel`. `error_code` and `error_hash` (extension) make it a retryable failure.
#[derive(Debug, Deserialize)]
pub(crate) struct CancelBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) error_code: Option<String>,
    #[serde(default)]
    pub(crate) error_hash: Option<String>,
}

/// `POST /check-lock/release` (extension). With `lock_id`, only that lock is released.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseBody {
    pub(crate) key: String,
    /// Absent: any lock. `null` is refused rather than read as absent, so a client that
    /// meant to fence (and lost its id) never deletes someone else's lock.
    #[serde(default, deserialize_with = "present_string")]
    pub(crate) lock_id: Option<String>,
}

/// A field that, when present, must be a string (`null` included in what is refused).
fn present_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `POST /ai/jobs/claim` (extension): `{"pattern", "lease_ttl"?, "wait_ms"?}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClaimBody {
    pub(crate) pattern: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) lease_ttl: Option<Duration>,
    #[serde(default)]
    pub(crate) wait_ms: Option<u64>,
}

impl ClaimBody {
    /// The engine's claim. The wait is checked against the API's bound here, before the
    /// server's own `--max-wait-ms` shortens it, so a client asking for too long learns so
    /// whatever the server's setting.
    pub(crate) fn request(self) -> Result<ClaimRequest, ApiError> {
        let wait = Duration::from_millis(self.wait_ms.unwrap_or(0));
        if wait > ClaimRequest::MAX_WAIT {
            return Err(ApiError::validation(format!(
                "wait_ms must be at most {}",
                ClaimRequest::MAX_WAIT.as_millis()
            )));
        }
        let mut req = ClaimRequest::new(self.pattern).wait(wait);
        if let Some(ttl) = self.lease_ttl {
            req = req.lease_ttl(ttl);
        }
        Ok(req)
    }
}

/// The answer of `POST /ai/jobs/claim`: `{"ok": true, "job": {...}}`, or `"job": null` when no
/// run came in time. `/metrics` counts it as `claimed` or `empty`.
#[derive(Debug, Serialize)]
pub(crate) struct ClaimAnswer {
    ok: bool,
    job: Option<ClaimedJob>,
}

impl ClaimAnswer {
    pub(crate) fn new(job: Option<ClaimedJob>) -> Self {
        ClaimAnswer { ok: true, job }
    }
}

impl IntoResponse for ClaimAnswer {
    fn into_response(self) -> Response {
        let outcome = Outcome(if self.job.is_some() {
            "claimed"
        } else {
            "empty"
        });
        (Extension(outcome), axum::Json(self)).into_response()
    }
}

/// `?key=`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    pub(crate) key: String,
}

/// `GET /ai/status?key=&wait_ms=` (`wait_ms` is an extension).
#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) wait_ms: Option<u64>,
}

/// `GET /usage?kind=`.
#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    #[serde(default)]
    pub(crate) kind: Option<String>,
}

/// `?limit=&offset=` (and `q` for `GET /runs`); only `limit` for `GET /agents/{id}/logs`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    pub(crate) limit: Option<u32>,
    #[serde(default)]
    pub(crate) offset: Option<u32>,
    #[serde(default)]
    pub(crate) q: Option<String>,
}

/// `GET /metrics?from_day=&to_day=`.
#[derive(Debug, Deserialize)]
pub(crate) struct MetricsQuery {
    pub(crate) from_day: String,
    pub(crate) to_day: String,
}

/// `POST /policies/{agent_id}/from-template`. The path names the agent; a body `agent_id`
/// is ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct TemplateBody {
    pub(crate) template: String,
    #[serde(default)]
    pub(crate) overrides: Option<JsonMap>,
}

/// `POST /agents/{agent_id}/disable` and `/enable`: `{"reason"?}`, or no body at all.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReasonBody {
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// `GET /agents/{agent_id}/metrics?period=`.
#[derive(Debug, Deserialize)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    pub(crate) period: Option<String>,
}

/// `?scope_id=` of the tools registry; `global` when absent or blank.
#[derive(Debug, Deserialize)]
pub(crate) struct ScopeQuery {
    #[serde(default)]
    scope_id: Option<String>,
}

impl ScopeQuery {
    pub(crate) fn scope(self) -> String {
        self.scope_id
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| onceonly_runtime::models::GLOBAL_SCOPE.to_owned())
    }
}

/// `POST /tools/{name}/toggle`: `{"enabled": bool}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ToggleBody {
    pub(crate) enabled: bool,
}

/// A policy as the API answers it: `{"agent_id", "policy": {...}}`. The official SDKs read
/// the fields from the nested object; a flat answer would make them fall back to what they
/// sent.
#[derive(Debug, Serialize)]
pub(crate) struct PolicyView {
    agent_id: String,
    policy: Policy,
}

impl From<Policy> for PolicyView {
    fn from(policy: Policy) -> Self {
        PolicyView {
            agent_id: policy.agent_id.clone(),
            policy,
        }
    }
}

/// A lease answer: the model, plus the `risk_level` of a governed lease the policy refused
/// (the engine's lease carries the reason only; the level follows from it).
#[derive(Debug, Serialize)]
pub(crate) struct LeaseView<'a> {
    #[serde(flatten)]
    lease: &'a Lease,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_level: Option<&'static str>,
}

impl<'a> LeaseView<'a> {
    pub(crate) fn new(lease: &'a Lease) -> Self {
        let risk_level = lease
            .policy_reason
            .as_deref()
            .and_then(|r| {
                let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                    r.into_deserializer();
                PolicyReason::deserialize(de).ok()
            })
            .map(|r| r.risk_level().as_str());
        LeaseView { lease, risk_level }
    }
}

/// The policy a client sent for `agent_id`: its object, with `agent_id` forced to the target
/// (the path's) and unknown fields kept.
pub(crate) fn policy(agent_id: &str, mut body: JsonMap) -> Result<Policy, ApiError> {
    body.insert("agent_id".into(), agent_id.into());
    crate::extract::parse_value(serde_json::Value::Object(body))
}

/// The answer of a governed call of `tool` (tool-mode `POST /ai/run`).
pub(crate) struct ToolAnswer {
    pub(crate) tool: String,
    pub(crate) result: ToolResult,
}

impl IntoResponse for ToolAnswer {
    /// The engine decides an unknown tool like any other refusal (a blocked result, written to
    /// the audit log), but the hosted API answers it as an error, 404 with
    /// `detail.error = "tool_not_found"`, and the official SDKs' examples catch it as
    /// `ApiError`. This is the one place that turns the one into the other.
    fn into_response(self) -> Response {
        let not_found = PolicyReason::ToolNotFound.as_str();
        if !self.result.allowed && self.result.policy_reason.as_deref() == Some(not_found) {
            let message = format!(
                "no tool `{}` is registered in the agent's scope (agent:<agent_id>) or in global",
                self.tool
            );
            return ApiError::coded(StatusCode::NOT_FOUND, not_found, message).into_response();
        }
        axum::Json(self.result).into_response()
    }
}
