//! A governed tool call (tool-mode `ai.run`): decide, deduplicate, execute once, record.
//!
//! Identical calls (same agent, tool and canonical arguments) share one lease record, so the
//! lease state machine gives exactly-once: the first call executes, concurrent ones wait for
//! it, later ones get its stored result (`dedup`) for as long as finished records are kept
//! (the engine's retention). A tool failure releases the record, so a retry executes again.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::audit::Entry;
use super::decide::{Context, Limit, limits};
use super::lease::check;
use super::tools::Resolved;
use crate::engine::Engine;
use crate::engine::events::args_run_id;
use crate::error::{Error, JsonMap, Result};
use crate::holder::run_detached;
use crate::models::{
    CancelRequest, CompleteRequest, Decision, FailRequest, LeaseRequest, PolicyReason, RunEvent,
    RunStatus, ToolCallRequest, ToolResult,
};
use crate::store::Store;
use crate::unwind::unwinding;
use crate::wire::error_code::TOOL_ERROR;

/// Lease TTL of a call of a registered function (they have no timeout of their own).
const FUNCTION_TTL: Duration = Duration::from_secs(300);
/// The decision of an allowed call in a dry run.
pub(crate) const DRY_RUN: &str = "dry_run";
/// Added to an HTTP tool's own time budget for the lease TTL.
const TTL_SLACK: Duration = Duration::from_secs(30);

/// The record key shared by identical calls: the digest keeps it within the key length limit
/// whatever the agent and tool names.
fn dedup_key(agent: &str, tool: &str, args_hash: &str) -> String {
    let digest = Sha256::digest(format!("{agent}\n{tool}\n{args_hash}"));
    format!("{CALL_KEY_PREFIX}{}", hex::encode(digest))
}

/// The prefix of the records of governed tool calls. Callers cannot lease, complete or queue
/// keys under it (see [`reserved`]): one who could would pre-complete a call's record with a
/// forged result, and the tool would never run.
pub(crate) const CALL_KEY_PREFIX: &str = "gov-call/";

/// Refuses a caller's key under [`CALL_KEY_PREFIX`].
pub(crate) fn reserved(key: &str) -> Result<()> {
    if key.starts_with(CALL_KEY_PREFIX) {
        return Err(Error::validation(format!(
            "keys starting with `{CALL_KEY_PREFIX}` are reserved for governed tool calls"
        )));
    }
    Ok(())
}

impl Resolved {
    /// How long a call may take: the lease TTL that keeps it exclusive.
    fn ttl(&self) -> Duration {
        match self {
            Resolved::Function(_) => FUNCTION_TTL,
            Resolved::Http(t) => {
                // Every attempt's timeout plus the retry backoff, bounded by the caller.
                let attempts = u64::from(t.max_retries) + 1;
                Duration::from_millis(t.timeout_ms * attempts) + TTL_SLACK * 2
            }
        }
    }
}

impl<S: Store> Engine<S> {
    /// The policy's decision on a call, changing nothing: the refusal, or the tool to call
    /// and the limits an execution charges.
    async fn decide_call(
        &self,
        ctx: &Context,
        agent: &str,
        tool: &str,
        spend: f64,
    ) -> Result<std::result::Result<(Resolved, Vec<Limit>), PolicyReason>> {
        if let Some(reason) = ctx.refusal(tool) {
            return Ok(Err(reason));
        }
        let target = match self.resolve_tool(agent, tool).await? {
            None => return Ok(Err(PolicyReason::ToolNotFound)),
            Some(Resolved::Http(t)) if !t.enabled => return Ok(Err(PolicyReason::ToolDisabled)),
            Some(t) => t,
        };
        let limits = limits(ctx, agent, tool, spend, self.now_ms());
        Ok(match self.limit_reached(&limits).await? {
            Some(reason) => Err(reason),
            None => Ok((target, limits)),
        })
    }

    /// What [`run_tool`](Self::run_tool) would decide now, without executing, charging or
    /// recording anything (a dry run of a queued run's actions): `blocked` with the reason,
    /// or `allowed` with decision `dry_run`.
    pub(crate) async fn dry_run_tool(&self, req: &ToolCallRequest) -> Result<ToolResult> {
        let (agent, tool) = (req.agent_id.as_str(), req.tool.as_str());
        check(agent, tool, Some(&req.args), req.spend_usd)?;
        let ctx = self.gov_context(agent).await?;
        let spend = ctx.spend(tool, req.spend_usd);
        Ok(match self.decide_call(&ctx, agent, tool, spend).await? {
            Err(reason) => ToolResult::decided(Decision::Blocked, reason),
            Ok(_) => {
                let mut out = ToolResult::decided(Decision::Executed, PolicyReason::Ok);
                out.decision = DRY_RUN.to_owned();
                out
            }
        })
    }

    /// A governed call of a registered tool (tool-mode `POST /ai/run`): the policy decides in
    /// the documented order, an identical earlier call's result comes back as `dedup`, and an
    /// allowed call runs the tool once. A tool that fails answers `ok: false`, `allowed: true`
    /// with its failure code (a registered function that panics fails with `tool_error`),
    /// and releases the call so a retry runs it again; so does a call dropped while its tool
    /// runs.
    ///
    /// When `args.run_id` is set (a string, or a number read as its digits), the call writes
    /// `tool_call` and `tool_result` to that run's timeline; another type is refused.
    pub async fn run_tool(&self, req: ToolCallRequest) -> Result<ToolResult> {
        let agent = req.agent_id.as_str();
        let tool = req.tool.as_str();
        let args_hash = check(agent, tool, Some(&req.args), req.spend_usd)?.unwrap_or_default();
        let run_id = args_run_id(&req.args)?;
        let ctx = self.gov_context(agent).await?;
        let record = |decision, reason, spend_usd| {
            let entry = Entry {
                agent,
                tool,
                decision,
                reason,
                args_hash: Some(args_hash.clone()),
                spend_usd,
            };
            let event = run_id.as_ref().map(|run_id| RunEvent {
                run_id: run_id.clone(),
                kind: "tool_call".into(),
                status: Some(decision.as_str().into()),
                tool: Some(tool.to_owned()),
                agent_id: Some(agent.to_owned()),
                message: Some(reason.as_str().to_owned()),
                ..RunEvent::default()
            });
            async move {
                self.audit(entry).await;
                self.record_run_event(event).await;
            }
        };
        let blocked = |reason| async move {
            record(Decision::Blocked, reason, 0.0).await;
            Ok(ToolResult::decided(Decision::Blocked, reason))
        };
        let spend = ctx.spend(tool, req.spend_usd);
        let (target, limits) = match self.decide_call(&ctx, agent, tool, spend).await? {
            Ok(allowed) => allowed,
            Err(reason) => return blocked(reason).await,
        };
        // A tool the engine may not call (its host is not on the allow-list) is an operator's
        // setting, not a call: answered as the tool's failure, audited as allowed, charged
        // nothing, so a misconfiguration does not use up the agent's limits.
        if let Resolved::Http(t) = &target
            && let Err(f) = self.inner.tools.caller.target(t)
        {
            record(Decision::Executed, PolicyReason::Ok, 0.0).await;
            return Ok(ToolResult::tool_failed(f.code(), f.message()));
        }

        let key = dedup_key(agent, tool, &args_hash);
        let ttl = target.ttl();
        let lease_id = loop {
            let lease = self
                .accounted_lease(LeaseRequest::new(&key).ttl(ttl))
                .await?;
            match lease.status {
                RunStatus::Acquired => break lease.lease_id.unwrap_or_default(),
                RunStatus::Completed => {
                    record(Decision::Dedup, PolicyReason::Duplicate, 0.0).await;
                    let mut out = ToolResult::decided(Decision::Dedup, PolicyReason::Duplicate);
                    out.result = match lease.result {
                        Some(r) => Some(r),
                        None => self.result(&key).await?.result,
                    };
                    return Ok(out);
                }
                // An identical call is running: wait for it, then look again.
                RunStatus::InProgress => {
                    self.wait_status(&key, ttl).await?;
                }
                // Released by a failed attempt (or an unknown state): try to acquire again.
                _ => {}
            }
        };
        // A call dropped before its tool answered (the caller timed out or went away, here or
        // while the limits are charged and the call audited) gives the record back, so an
        // identical retry runs now rather than after the TTL.
        let mut guard = CallGuard {
            engine: self.clone(),
            key: key.clone(),
            lease_id: Some(lease_id.clone()),
        };
        if let Some(reason) = self.charge_limits(&limits).await? {
            guard.lease_id = None;
            let cancel = CancelRequest::new(&key, &lease_id, Some("policy_blocked".into()));
            if let Err(e) = self.cancel_any(cancel).await {
                tracing::warn!(error = %e, "could not release a blocked tool call");
            }
            return blocked(reason).await;
        }
        record(Decision::Executed, PolicyReason::Ok, spend).await;

        let started = std::time::Instant::now();
        let outcome = match &target {
            // A panic is the tool's failure: recorded, and the record given back, as for `Err`.
            // Called inside the guarded future: a function may panic before its future exists.
            Resolved::Function(f) => {
                match unwinding(async { f.call(req.args.clone()).await }).await {
                    Ok(answer) => answer.map_err(|message| (TOOL_ERROR.to_owned(), message)),
                    Err(panic) => {
                        tracing::error!(%tool, panic, "a registered tool function panicked");
                        Err((TOOL_ERROR.to_owned(), format!("the tool panicked: {panic}")))
                    }
                }
            }
            Resolved::Http(t) => {
                let mut body = JsonMap::new();
                body.insert("tool".into(), tool.into());
                body.insert("agent_id".into(), agent.into());
                body.insert("args".into(), serde_json::Value::Object(req.args.clone()));
                if let Some(id) = &run_id {
                    body.insert("run_id".into(), id.clone().into());
                }
                self.inner
                    .tools
                    .caller
                    .call(t, &body)
                    .await
                    .map_err(|f| (f.code().to_owned(), f.message().to_owned()))
            }
        };
        guard.lease_id = None;
        let mut out = ToolResult::decided(Decision::Executed, PolicyReason::Ok);
        let status = match outcome {
            Ok(result) => {
                self.complete_any(CompleteRequest::new(&key, &lease_id, Some(result.clone())))
                    .await?;
                out.result = Some(result);
                "ok"
            }
            Err((code, message)) => {
                self.fail_any(FailRequest::new(&key, &lease_id, code.clone(), true))
                    .await?;
                out = ToolResult::tool_failed(&code, &message);
                "error"
            }
        };
        if let Some(run_id) = run_id {
            self.record_run_event(Some(RunEvent {
                run_id,
                kind: "tool_result".into(),
                status: Some(status.into()),
                tool: Some(tool.to_owned()),
                agent_id: Some(agent.to_owned()),
                duration_ms: Some(started.elapsed().as_millis() as u64),
                data: out.error_code.as_ref().map(|code| {
                    let mut d = JsonMap::new();
                    d.insert("error_code".into(), code.clone().into());
                    d
                }),
                ..RunEvent::default()
            }))
            .await;
        }
        Ok(out)
    }
}

/// Cancels a governed call's record if the call is dropped while its tool runs.
struct CallGuard<S: Store> {
    engine: Engine<S>,
    key: String,
    /// Taken once the tool answered: the call then ends its record itself.
    lease_id: Option<String>,
}

impl<S: Store> Drop for CallGuard<S> {
    fn drop(&mut self) {
        let Some(lease_id) = self.lease_id.take() else {
            return;
        };
        let (engine, key) = (self.engine.clone(), std::mem::take(&mut self.key));
        let cancel = Box::pin(async move {
            let req = CancelRequest::new(&key, lease_id, Some("call dropped".into()));
            if let Err(e) = engine.cancel_any(req).await {
                tracing::warn!(error = %e, "could not give back a dropped tool call; it will expire");
            }
        });
        if !run_detached(cancel) {
            tracing::warn!("a tool call dropped outside a tokio runtime; its record will expire");
        }
    }
}
