//! Policies, the kill switch, audit logs and agent metrics (`client.gov()`), read into the
//! typed models the way the official SDKs read these answers.

use serde::Serialize;
use serde_json::Value;

use super::transport::{Request, Transport};
use super::wire::{self, call_map, default_member, list_items, on_404, path_id};
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus, Policy,
    TemplateRequest,
};

/// A policy answer: `{"agent_id", "policy": {..}}` as the hosted API documents it. Without a
/// nested `policy` object the policy is `fallback` (what was sent, for upsert and template)
/// or the answer itself (get and list). The agent is the answer's, else the policy's own,
/// else `agent_id`.
fn read_policy(mut answer: JsonMap, agent_id: &str, fallback: Option<JsonMap>) -> Result<Policy> {
    let named = |m: &JsonMap| {
        m.get("agent_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    };
    let outer = named(&answer);
    let mut policy = match answer.remove("policy") {
        Some(Value::Object(nested)) => nested,
        other => {
            if let Some(v) = other {
                answer.insert("policy".into(), v);
            }
            fallback.unwrap_or(answer)
        }
    };
    let agent = outer
        .or_else(|| named(&policy))
        .unwrap_or_else(|| agent_id.to_owned());
    // Nulls go and limits written as strings are read; every other member is the policy's
    // own and travels back untouched.
    wire::tidy_policy(&mut policy);
    policy.insert("agent_id".into(), agent.into());
    serde_json::from_value(Value::Object(policy)).map_err(Error::Decode)
}

pub(crate) async fn upsert_policy(t: &Transport, policy: Policy) -> Result<Policy> {
    let agent = policy.agent_id.trim().to_owned();
    if agent.is_empty() {
        return Err(Error::validation("upsert_policy requires agent_id"));
    }
    let Value::Object(mut body) = serde_json::to_value(&policy)? else {
        unreachable!("a policy serializes as an object")
    };
    body.insert("agent_id".into(), agent.clone().into());
    let req = Request::post(&["policies", path_id("agent_id", &agent)?], &body)?;
    read_policy(call_map(t, req).await?, &agent, Some(body))
}

#[derive(Serialize)]
struct TemplateBody<'a> {
    agent_id: &'a str,
    template: &'a str,
    overrides: &'a JsonMap,
}

pub(crate) async fn policy_from_template(t: &Transport, req: TemplateRequest) -> Result<Policy> {
    let body = TemplateBody {
        agent_id: &req.agent_id,
        template: &req.template,
        overrides: &req.overrides,
    };
    let path = [
        "policies",
        path_id("agent_id", &req.agent_id)?,
        "from-template",
    ];
    let answer = call_map(t, Request::post(&path, &body)?).await?;
    let Value::Object(sent) = serde_json::to_value(&body)? else {
        unreachable!("the template body serializes as an object")
    };
    read_policy(answer, &req.agent_id, Some(sent))
}

pub(crate) async fn get_policy(t: &Transport, agent_id: &str) -> Result<Policy> {
    let req = Request::get(&["policies", path_id("agent_id", agent_id)?]);
    let answer = call_map(t, req)
        .await
        .map_err(on_404("not_found", || Error::policy_not_found(agent_id)))?;
    read_policy(answer, agent_id, None)
}

pub(crate) async fn list_policies(t: &Transport) -> Result<Vec<Policy>> {
    list_items(call_map(t, Request::get(&["policies"])).await?)
        .map(|item| read_policy(item, "", None))
        .collect()
}

#[derive(Serialize)]
struct ReasonBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

pub(crate) async fn set_agent_enabled(
    t: &Transport,
    agent_id: &str,
    enable: bool,
    reason: Option<&str>,
) -> Result<AgentStatus> {
    let action = if enable { "enable" } else { "disable" };
    let body = ReasonBody {
        reason: reason.filter(|r| !r.is_empty()),
    };
    let req = Request::post(&["agents", path_id("agent_id", agent_id)?, action], &body)?;
    let mut answer = call_map(t, req).await?;
    wire::tidy(&mut answer);
    // `is_enabled`, else `enabled`, else the state asked for (the call succeeded); both at
    // once would be a duplicate field.
    let enabled = ["is_enabled", "enabled"]
        .iter()
        .find_map(|name| answer.get(*name).and_then(Value::as_bool))
        .unwrap_or(enable);
    answer.remove("enabled");
    answer.insert("is_enabled".into(), enabled.into());
    default_member(&mut answer, "agent_id", agent_id);
    wire::decode(answer)
}

/// Unix seconds from a number (fractions dropped), a decimal string or an RFC 3339 time;
/// the hosted API documents integers but its SDKs accept anything.
fn unix_seconds(ts: &Value) -> Option<i64> {
    match ts {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().map(|f| f as i64).ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.timestamp())
        }),
        _ => None,
    }
}

/// One audit entry, with the official SDKs' defaults: `allowed` true, `decision` `allowed` or
/// `blocked` by it, `policy_reason` from `reason` when absent, a missing `ts` as 0.
fn read_log_item(mut item: JsonMap, agent_id: &str) -> Result<AgentLogItem> {
    item.retain(|_, v| !v.is_null());
    let ts = item.get("ts").and_then(unix_seconds).unwrap_or(0);
    item.insert("ts".into(), ts.into());
    default_member(&mut item, "agent_id", agent_id);
    let allowed = item.get("allowed").and_then(Value::as_bool).unwrap_or(true);
    default_member(
        &mut item,
        "decision",
        if allowed { "allowed" } else { "blocked" },
    );
    // `reason` is the model's alias of `policy_reason`: keep one of the two.
    if item.contains_key("policy_reason") {
        item.remove("reason");
    }
    wire::decode(item)
}

pub(crate) async fn agent_logs(t: &Transport, req: AgentLogsRequest) -> Result<Vec<AgentLogItem>> {
    let path = ["agents", path_id("agent_id", &req.agent_id)?, "logs"];
    let answer = call_map(t, Request::get(&path).query("limit", req.limit)).await?;
    list_items(answer)
        .map(|item| read_log_item(item, &req.agent_id))
        .collect()
}

pub(crate) async fn agent_metrics(t: &Transport, req: AgentMetricsRequest) -> Result<AgentMetrics> {
    let path = ["agents", path_id("agent_id", &req.agent_id)?, "metrics"];
    let period = req.period.as_str();
    let mut answer = call_map(t, Request::get(&path).query("period", period)).await?;
    default_member(&mut answer, "agent_id", req.agent_id.as_str());
    // A period this version does not know reads as the one asked for.
    let known = answer
        .get("period")
        .and_then(Value::as_str)
        .is_some_and(|p| p.parse::<crate::models::MetricsPeriod>().is_ok());
    if !known {
        answer.insert("period".into(), period.into());
    }
    if let Some(Value::Array(top)) = answer.get_mut("top_tools") {
        top.retain(Value::is_object);
    }
    wire::decode(answer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> JsonMap {
        let Value::Object(m) = v else { panic!("{v}") };
        m
    }

    #[test]
    fn policies_read_nested_then_fallback_then_the_answer() {
        let nested = map(json!({"agent_id": "a", "policy": {"max_actions_per_hour": 3}}));
        let p = read_policy(nested, "x", Some(map(json!({"max_actions_per_hour": 9})))).unwrap();
        assert_eq!(
            (p.agent_id.as_str(), p.max_actions_per_hour),
            ("a", Some(3))
        );
        let flat = map(json!({"ok": true}));
        let sent = map(json!({"agent_id": "a", "blocked_tools": ["rm"]}));
        let p = read_policy(flat, "a", Some(sent)).unwrap();
        assert_eq!(p.blocked_tools, Some(vec!["rm".to_owned()]));
        assert!(p.extra.is_empty(), "{:?}", p.extra);
        let p = read_policy(
            map(json!({"max_spend_usd_per_day": 5, "x": null})),
            "b",
            None,
        )
        .unwrap();
        assert_eq!(
            (p.agent_id.as_str(), p.max_spend_usd_per_day),
            ("b", Some(5.0))
        );
        assert!(p.extra.is_empty());
    }

    #[test]
    fn timestamps_of_any_shape() {
        for (ts, want) in [
            (json!(1705322400), Some(1705322400)),
            (json!(1705322400.7), Some(1705322400)),
            (json!("1705322400"), Some(1705322400)),
            (json!("2024-01-15T12:40:00Z"), Some(1705322400)),
            (json!("soon"), None),
            (json!(true), None),
        ] {
            assert_eq!(unix_seconds(&ts), want, "{ts}");
        }
    }
}
