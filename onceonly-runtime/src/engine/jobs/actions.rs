//! Runs of actions: a queued run whose `metadata.actions` lists governed tool calls, executed
//! by the engine itself, in order, as the agent `metadata.agent_id`.
//!
//! - Each action is `{"tool", "args"?, "spend_usd"?}` and goes through
//!   [`Engine::run_tool`]: the agent's policy decides, identical calls deduplicate, registered
//!   tools run (HTTP tools signed, on allowed hosts only).
//! - The first blocked action fails the run with `error_code: "policy_blocked"`; later actions
//!   do not run. A tool that fails fails the run with the tool's own code (`tool_error`,
//!   `tool_timeout`, ...), terminally: the actions before it ran, and the run's timeline says
//!   which.
//! - Otherwise the run completes with `{"actions": [<tool result>, ...], "dry_run": false}`.
//! - `metadata.dry_run` (`true`, `"true"`, `1`, `"1"`, `"yes"`): nothing executes, nothing is
//!   charged or audited; each action's result is the policy's decision now (`dry_run`, or
//!   `blocked` with the reason), and the run completes with them (`"dry_run": true`), blocked
//!   actions included.
//! - Every action carries `run_id`, so the run's timeline shows `run_started`, a `tool_call`
//!   (its decision) and `tool_result` per action, and `run_finished`.
//!
//! The engine starts a run of actions as soon as it is queued. If the process stops while
//! one runs, its lease expires and the run is queued again; the next `run` of its key (a
//! `run_and_wait` starts with one) starts it again, and actions that had completed come back
//! as `dedup` instead of running twice.

use std::time::Duration;

use serde_json::Value;

use super::Executor;
use crate::engine::Engine;
use crate::engine::gov::check_call;
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    ClaimRequest, CompleteRequest, ExtendRequest, FailRequest, ToolCallRequest, ToolResult,
};
use crate::store::Store;
use crate::wire::error_code::POLICY_BLOCKED;

/// Most actions one run may list.
pub(crate) const MAX_ACTIONS: usize = 50;
/// The lease the engine holds on a run of actions while it executes, renewed every third.
const LEASE: Duration = Duration::from_secs(60);

/// One action of a run.
#[derive(Debug)]
struct Action {
    tool: String,
    args: JsonMap,
    spend_usd: Option<f64>,
}

/// What `metadata` asks for: the agent, its actions, and whether it is a dry run.
struct Plan {
    agent_id: String,
    actions: Vec<Action>,
    dry_run: bool,
}

/// Checks a run's actions when it is queued, so a malformed run is refused at once.
pub(super) fn validate(metadata: Option<&JsonMap>) -> Result<()> {
    parse(metadata.unwrap_or(&JsonMap::new())).map(drop)
}

fn parse(metadata: &JsonMap) -> Result<Plan> {
    let bad = |why: String| Error::validation(format!("metadata.actions: {why}"));
    let agent_id = match metadata.get("agent_id") {
        Some(Value::String(a)) => a.clone(),
        _ => {
            return Err(Error::validation(
                "a run with metadata.actions needs metadata.agent_id (the agent whose policy governs them)",
            ));
        }
    };
    let Some(Value::Array(list)) = metadata.get("actions") else {
        return Err(bad("must be a list of {tool, args?, spend_usd?}".into()));
    };
    if list.is_empty() || list.len() > MAX_ACTIONS {
        return Err(bad(format!(
            "lists {} actions; a run takes 1 to {MAX_ACTIONS}",
            list.len()
        )));
    }
    let mut actions = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(bad(format!("action {i} is not an object")));
        };
        let tool = match item.get("tool") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(bad(format!("action {i} has no `tool` string"))),
        };
        let args = match item.get("args") {
            None | Some(Value::Null) => JsonMap::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => return Err(bad(format!("action {i}: `args` must be an object"))),
        };
        let spend_usd = match item.get("spend_usd") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => return Err(bad(format!("action {i}: `spend_usd` must be a number"))),
        };
        check_call(&agent_id, &tool, Some(&args), spend_usd)?;
        actions.push(Action {
            tool,
            args,
            spend_usd,
        });
    }
    Ok(Plan {
        agent_id,
        actions,
        dry_run: metadata.get("dry_run").is_some_and(truthy),
    })
}

/// The boolean-like values the hosted API accepts for `dry_run`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        _ => false,
    }
}

impl<S: Store> Engine<S> {
    /// Starts executing the run of actions `key` in the background (nothing happens if another
    /// execution holds it).
    pub(super) fn start_actions(&self, key: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%key, "no tokio runtime: the run of actions waits for the next `run`");
            return;
        };
        let (engine, key) = (self.clone(), key.to_owned());
        runtime.spawn(async move {
            if let Err(e) = engine.execute_actions(&key).await {
                tracing::warn!(%key, error = %e, "a run of actions stopped; it runs again on the next `run`");
            }
        });
    }

    async fn execute_actions(&self, key: &str) -> Result<()> {
        let claim = ClaimRequest::new(key).lease_ttl(LEASE);
        let Some(job) = self.claim(claim, Executor::Actions).await? else {
            return Ok(()); // Someone else is executing it, or it is done.
        };
        let plan = parse(&job.metadata)?;
        let heartbeat = async {
            let mut tick = tokio::time::interval(LEASE / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let req = ExtendRequest::new(key, job.lease_id.as_str(), Some(LEASE));
                if let Err(e) = self.extend(req).await {
                    tracing::warn!(%key, error = %e, "could not extend a run of actions");
                }
            }
        };
        let outcome = tokio::select! {
            out = self.execute_plan(&plan, &job.run_id) => out?,
            () = heartbeat => unreachable!("the heartbeat never finishes"),
        };
        match outcome {
            Ok(results) => {
                let mut result = JsonMap::new();
                result.insert("actions".into(), Value::Array(results));
                result.insert("dry_run".into(), plan.dry_run.into());
                let done = CompleteRequest::new(key, job.lease_id.as_str(), Some(result));
                self.complete(done).await?;
            }
            Err(code) => {
                let failed = FailRequest::new(key, job.lease_id.as_str(), code, false);
                self.fail(failed).await?;
            }
        }
        Ok(())
    }

    /// Runs the plan's actions in order: their results, or the code the run fails with.
    async fn execute_plan(
        &self,
        plan: &Plan,
        run_id: &str,
    ) -> Result<std::result::Result<Vec<Value>, String>> {
        let mut results = Vec::with_capacity(plan.actions.len());
        for action in &plan.actions {
            let mut req = ToolCallRequest::new(&plan.agent_id, &action.tool)
                .args(action.args.clone())
                .run_id(run_id);
            req.spend_usd = action.spend_usd;
            let out: ToolResult = if plan.dry_run {
                self.dry_run_tool(&req).await?
            } else {
                self.run_tool(req).await?
            };
            let (allowed, ok, code) = (out.allowed, out.ok, out.error_code.clone());
            results.push(serde_json::to_value(out)?);
            if plan.dry_run {
                continue;
            }
            if !allowed {
                return Ok(Err(POLICY_BLOCKED.to_owned()));
            }
            if !ok {
                return Ok(Err(code.unwrap_or_else(|| "tool_error".to_owned())));
            }
        }
        Ok(Ok(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: Value) -> JsonMap {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn actions_are_parsed_and_checked() {
        let plan = parse(&meta(serde_json::json!({
            "agent_id": "bot",
            "actions": [{"tool": "send_email", "args": {"to": "a"}}, {"tool": "charge", "spend_usd": 2}],
            "dry_run": "yes",
        })))
        .unwrap();
        assert_eq!(plan.actions.len(), 2);
        assert_eq!(plan.actions[1].spend_usd, Some(2.0));
        assert!(plan.dry_run);
        let too_many: Vec<_> = (0..=MAX_ACTIONS)
            .map(|_| serde_json::json!({"tool": "t"}))
            .collect();
        for bad in [
            serde_json::json!({"actions": [{"tool": "t"}]}),
            serde_json::json!({"agent_id": "bot", "actions": []}),
            serde_json::json!({"agent_id": "bot", "actions": {"tool": "t"}}),
            serde_json::json!({"agent_id": "bot", "actions": [{"args": {}}]}),
            serde_json::json!({"agent_id": "bot", "actions": [{"tool": "bad name"}]}),
            serde_json::json!({"agent_id": "bot", "actions": [{"tool": "t", "spend_usd": -1}]}),
            serde_json::json!({"agent_id": "bot", "actions": [{"tool": "t", "args": [1]}]}),
            serde_json::json!({"agent_id": "bot", "actions": too_many}),
        ] {
            assert!(
                matches!(parse(&meta(bad.clone())), Err(Error::Validation(_))),
                "{bad}"
            );
        }
    }
}
