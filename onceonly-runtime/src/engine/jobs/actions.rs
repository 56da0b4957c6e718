//! Runs of actions: a queued run whose `metadata.actions` lists governed tool calls, executed
//! by the engine itself, in order, as the agent `metadata.agent_id`.
//!
//! - Each action is `{"tool", "args"?, "spend_usd"?}` and goes through
//!   [`Engine::run_tool`]: the agent's policy decides, identical calls deduplicate, registered
//!   tools run (HTTP tools signed, on allowed hosts only). The engine sets `args.run_id` to the
//!   run's id (an action may not name another run): that files each call on the run's timeline
//!   and keys its deduplication to the run, so an action identical to an earlier one of the
//!   same run comes back as `dedup`, while the same action in another run executes.
//! - A run is checked when it is queued (`agent_id`, 1 to 50 actions, tool names, `args`
//!   objects, `spend_usd`, `run_id`): a malformed run is refused with a validation error and
//!   nothing is queued.
//! - The first blocked action fails the run with `error_code: "policy_blocked"`; later actions
//!   do not run. A tool that fails fails the run with the tool's own code (`tool_error`,
//!   `tool_http_error`, `tool_timeout`, ...), terminally: the actions before it ran, and the
//!   run's timeline says which. A tool call the account's plan has no `ai` unit left for fails
//!   the run with `limit_reached`; a results list too large to store, with `result_not_stored`;
//!   anything else the engine cannot do, with `engine_error` (a store outage instead gives the
//!   run back, to start again as below).
//! - Otherwise the run completes with `{"actions": [<tool result>, ...], "dry_run": false}`.
//! - `metadata.dry_run` (`true`, `"true"`, `1`, `"1"`, `"yes"`): nothing executes, no limit
//!   counter moves and nothing is audited (queuing the run is charged like any run); each
//!   action's result is the policy's decision now (`dry_run`, or `blocked` with the reason),
//!   each decided on its own against the counters as they stand, and the run completes with
//!   them (`"dry_run": true`), blocked actions included.
//! - The run's timeline shows `run_started`, a `tool_call` (its decision) and, when the tool
//!   ran, a `tool_result` per action, and `run_finished` (a dry run writes only the first and
//!   the last).
//!
//! The engine starts a run of actions as soon as it is queued. If the process stops while
//! one runs, its lease expires and the run is queued again; the next `run` of its key, or a
//! waiter on it (`wait`, `run_and_wait`, `/ai/status?wait_ms=`), starts it again once the lease
//! has expired, and actions that had completed come back as `dedup` instead of running twice.

use std::time::Duration;

use serde_json::Value;

use crate::engine::Engine;
use crate::engine::events::validate_run_id;
use crate::engine::gov::check_call;
use crate::engine::view::{self, Phase};
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    CompleteRequest, ExtendRequest, FailRequest, LeaseRequest, RunStatus, ToolCallRequest,
    ToolResult,
};
use crate::store::Store;
use crate::wire::error_code::{POLICY_BLOCKED, RESULT_NOT_STORED, TOOL_ERROR};

/// Most actions one run may list.
pub(crate) const MAX_ACTIONS: usize = 50;
/// The lease the engine holds on a run of actions while it executes, renewed every third.
const LEASE: Duration = Duration::from_secs(60);
/// A run whose tool calls the account's plan has no `ai` unit left for.
const LIMIT_REACHED: &str = "limit_reached";
/// A run the engine could not carry on with (the cause is logged).
const ENGINE_ERROR: &str = "engine_error";

/// One action of a run.
#[derive(Debug)]
struct Action {
    tool: String,
    /// The action's arguments with `run_id` set.
    args: JsonMap,
    spend_usd: Option<f64>,
}

/// What `metadata` asks for: the agent, its actions, and whether it is a dry run.
struct Plan {
    agent_id: String,
    actions: Vec<Action>,
    dry_run: bool,
}

/// Checks the run of actions `key` when it is queued, so a malformed run is refused at once.
pub(super) fn validate(key: &str, metadata: Option<&JsonMap>) -> Result<()> {
    parse(key, metadata.unwrap_or(&JsonMap::new())).map(drop)
}

/// The run id the timeline uses (`metadata.run_id` as `run_started` reads it, else the key).
fn run_id(key: &str, metadata: &JsonMap) -> Result<String> {
    let id = match metadata.get("run_id") {
        None | Some(Value::Null) => return Ok(key.to_owned()),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(Error::validation(
                "metadata.run_id of a run with actions must be a string",
            ));
        }
    };
    Ok(validate_run_id(&id)?.to_owned())
}

fn parse(key: &str, metadata: &JsonMap) -> Result<Plan> {
    let bad = |why: String| Error::validation(format!("metadata.actions: {why}"));
    let agent_id = match metadata.get("agent_id") {
        Some(Value::String(a)) => a.clone(),
        _ => {
            return Err(Error::validation(
                "a run with metadata.actions needs metadata.agent_id (the agent whose policy governs them)",
            ));
        }
    };
    let run_id = run_id(key, metadata)?;
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
        let mut args = match item.get("args") {
            None | Some(Value::Null) => JsonMap::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => return Err(bad(format!("action {i}: `args` must be an object"))),
        };
        // `args.run_id` is what files a call on a timeline and keys its deduplication, so an
        // action naming another run would escape this run's timeline and exactly-once.
        match args.get("run_id") {
            None => {}
            Some(Value::String(id)) if id.trim() == run_id => {}
            Some(_) => {
                return Err(bad(format!(
                    "action {i}: `args.run_id` is set by the engine to the run's id ({run_id:?})"
                )));
            }
        }
        args.insert("run_id".into(), run_id.clone().into());
        let spend_usd = match item.get("spend_usd") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => return Err(bad(format!("action {i}: `spend_usd` must be a number"))),
        };
        // The same checks `run_tool` makes, on the arguments it will get.
        check_call(&agent_id, &tool, Some(&args), spend_usd).map_err(|e| match e {
            Error::Validation(why) => bad(format!("action {i}: {why}")),
            other => other,
        })?;
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

/// How a run of actions ends.
enum Ending {
    /// Every action's result.
    Completed(Vec<Value>),
    /// A terminal failure with this code.
    Failed(String),
    /// An outage a later attempt may get past: the run goes back to the queue.
    GivenBack,
}

/// The terminal code of an engine error met while executing, or `None` for an outage a
/// later attempt may get past.
fn failure_code(e: &Error) -> Option<&'static str> {
    match e {
        Error::OverLimit(_) => Some(LIMIT_REACHED),
        e if e.is_retryable() => None,
        _ => Some(ENGINE_ERROR),
    }
}

impl<S: Store> Engine<S> {
    /// Starts executing the run of actions `key` in the background (nothing happens if another
    /// execution holds it, or it is finished).
    pub(super) fn start_actions(&self, key: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%key, "no tokio runtime: the run of actions waits for the next `run` or waiter");
            return;
        };
        let (engine, key) = (self.clone(), key.to_owned());
        runtime.spawn(async move {
            if let Err(e) = engine.execute_actions(&key).await {
                tracing::warn!(%key, error = %e, "a run of actions stopped; the next `run` of its key or a waiter starts it again");
            }
        });
    }

    /// Acquires the lease of the queued run `key`: its lease id and metadata, or `None` when
    /// the run is not waiting (someone executes it, it finished, it is gone).
    ///
    /// The key itself is acquired, not a claim pattern: keys may contain `*`.
    async fn take_run(&self, key: &str) -> Result<Option<(String, JsonMap)>> {
        let Some(current) = self.inner.store.get_record(key).await? else {
            return Ok(None);
        };
        let rec = &current.value;
        if !rec.job || view::live(rec, self.now_ms()) != Some(Phase::Queued) {
            return Ok(None);
        }
        // A queued run's acquisition keeps its metadata and is not charged again.
        let lease = self
            .accounted_lease(LeaseRequest::new(key).ttl(LEASE))
            .await?;
        if lease.status != RunStatus::Acquired {
            return Ok(None); // Another execution took it first.
        }
        let lease_id = lease.lease_id.unwrap_or_default();
        Ok(Some((
            lease_id,
            rec.metadata.as_deref().cloned().unwrap_or_default(),
        )))
    }

    async fn execute_actions(&self, key: &str) -> Result<()> {
        let Some((lease_id, metadata)) = self.take_run(key).await? else {
            return Ok(());
        };
        let heartbeat = async {
            let mut tick = tokio::time::interval(LEASE / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let req = ExtendRequest::new(key, lease_id.as_str(), Some(LEASE));
                if let Err(e) = self.extend(req).await {
                    tracing::warn!(%key, error = %e, "could not extend a run of actions");
                }
            }
        };
        let run = async {
            // Checked when queued: only a record written some other way fails here.
            let plan = match parse(key, &metadata) {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::warn!(%key, error = %e, "a queued run of actions does not parse");
                    return (false, Ending::Failed(ENGINE_ERROR.to_owned()));
                }
            };
            let ending = match self.execute_plan(&plan).await {
                Ok(ending) => ending,
                Err(e) => {
                    tracing::warn!(%key, error = %e, "a run of actions met an engine error");
                    match failure_code(&e) {
                        Some(code) => Ending::Failed(code.to_owned()),
                        None => Ending::GivenBack,
                    }
                }
            };
            (plan.dry_run, ending)
        };
        let (dry_run, ending) = tokio::select! {
            out = run => out,
            () = heartbeat => unreachable!("the heartbeat never finishes"),
        };
        let fail = |code: &str, retryable| {
            FailRequest::new(key, lease_id.as_str(), code.to_owned(), retryable)
        };
        let ended = match ending {
            Ending::Completed(results) => {
                let mut result = JsonMap::new();
                result.insert("actions".into(), Value::Array(results));
                result.insert("dry_run".into(), dry_run.into());
                let done = CompleteRequest::new(key, lease_id.as_str(), Some(result));
                match self.complete(done).await {
                    // Too large to store, or over the result quota: the actions ran, so running
                    // them again is no answer.
                    Err(e) if e.is_content_refused() => {
                        tracing::warn!(%key, why = %e, "the results of a run of actions were not stored");
                        self.fail(fail(RESULT_NOT_STORED, false)).await
                    }
                    other => other,
                }
            }
            Ending::Failed(code) => self.fail(fail(&code, false)).await,
            Ending::GivenBack => self.fail(fail(ENGINE_ERROR, true)).await,
        };
        match ended {
            // The lease ran out and another execution took the run over: it ends it.
            Err(Error::LeaseLost { .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Runs the plan's actions in order, each as a governed call filed on the run's timeline.
    async fn execute_plan(&self, plan: &Plan) -> Result<Ending> {
        let mut results = Vec::with_capacity(plan.actions.len());
        for action in &plan.actions {
            let mut req =
                ToolCallRequest::new(&plan.agent_id, &action.tool).args(action.args.clone());
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
                return Ok(Ending::Failed(POLICY_BLOCKED.to_owned()));
            }
            if !ok {
                return Ok(Ending::Failed(
                    code.unwrap_or_else(|| TOOL_ERROR.to_owned()),
                ));
            }
        }
        Ok(Ending::Completed(results))
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
        let plan = parse("k", &meta(serde_json::json!({
            "agent_id": "bot",
            "actions": [{"tool": "send_email", "args": {"to": "a"}}, {"tool": "charge", "spend_usd": 2}],
            "dry_run": "yes",
        })))
        .unwrap();
        assert_eq!(plan.actions.len(), 2);
        assert_eq!(plan.actions[1].spend_usd, Some(2.0));
        assert!(plan.dry_run);
        // Every action carries the run id, the key when metadata names none.
        assert_eq!(plan.actions[0].args["run_id"], "k");
        assert_eq!(plan.actions[0].args["to"], "a");
        let named = parse(
            "k",
            &meta(serde_json::json!({
                "agent_id": "bot", "run_id": " run_7 ",
                "actions": [{"tool": "t", "args": {"run_id": "run_7"}}],
            })),
        )
        .unwrap();
        assert_eq!(named.actions[0].args["run_id"], "run_7");
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
            serde_json::json!({"agent_id": "bot", "actions": [{"tool": "t", "args": {"run_id": "other"}}]}),
            serde_json::json!({"agent_id": "bot", "run_id": "", "actions": [{"tool": "t"}]}),
            serde_json::json!({"agent_id": "bot", "run_id": true, "actions": [{"tool": "t"}]}),
        ] {
            assert!(
                matches!(parse("k", &meta(bad.clone())), Err(Error::Validation(_))),
                "{bad}"
            );
        }
    }
}
