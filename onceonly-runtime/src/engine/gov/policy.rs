//! Policies: parsing a policy body with field-by-field errors, the rules a stored policy obeys,
//! and the built-in templates.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names;
use crate::error::{Error, JsonMap, Result};
use crate::models::{Policy, PricingRule};

/// Most entries in one list or map of a policy.
pub(crate) const MAX_POLICY_ENTRIES: usize = 1_000;
/// Largest policy, in bytes of JSON (unknown fields included).
pub(crate) const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Largest daily budget or price, in USD.
pub(crate) const MAX_USD: f64 = 1e9;

/// The names of the built-in templates.
pub(crate) const TEMPLATES: [&str; 5] = [
    "strict",
    "moderate",
    "permissive",
    "read_only",
    "support_bot",
];

/// Reads a policy for `agent_id` from a JSON object as a client sent it. Every known field is
/// checked for its type and range; unknown fields are kept. `agent_id` in the body, if any, is
/// replaced by the target's.
pub(crate) fn parse(agent_id: &str, mut body: JsonMap) -> Result<Policy> {
    names::agent_id(agent_id)?;
    body.remove("agent_id");
    let size = crate::validate::json_len(&body)?;
    if size > MAX_POLICY_BYTES {
        return Err(Error::validation(format!(
            "the policy is {size} bytes of JSON; the maximum is {MAX_POLICY_BYTES}"
        )));
    }
    let mut policy = Policy::new(agent_id);
    policy.allowed_tools = take(&mut body, "allowed_tools", tool_list)?;
    policy.blocked_tools = take(&mut body, "blocked_tools", tool_list)?;
    policy.max_actions_per_hour = take(&mut body, "max_actions_per_hour", count)?;
    policy.max_spend_usd_per_day = take(&mut body, "max_spend_usd_per_day", usd)?;
    policy.max_calls_per_tool = take(&mut body, "max_calls_per_tool", tool_counts)?;
    policy.pricing_rules = take(&mut body, "pricing_rules", pricing)?;
    policy.extra = body;
    Ok(policy)
}

/// Checks a typed policy (what `upsert_policy` receives in Rust) by the rules of [`parse`].
pub(crate) fn check(policy: &Policy) -> Result<Policy> {
    let Value::Object(body) = serde_json::to_value(policy)? else {
        unreachable!("a policy serializes as an object")
    };
    parse(&policy.agent_id, body)
}

/// A field taken out of `body`: absent or `null` is `None`, anything else goes through `read`.
fn take<T>(
    body: &mut JsonMap,
    field: &str,
    read: impl FnOnce(&str, Value) -> Result<T>,
) -> Result<Option<T>> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(field, v).map(Some),
    }
}

fn wrong(field: &str, want: &str, got: &Value) -> Error {
    let kind = match got {
        // A number of the wrong range or kind: say which.
        Value::Number(n) => {
            return Error::validation(format!("{field} must be {want}, got {n}"));
        }
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::validation(format!("{field} must be {want}, not {kind}"))
}

fn too_many(field: &str, n: usize) -> Result<()> {
    if n > MAX_POLICY_ENTRIES {
        return Err(Error::validation(format!(
            "{field} has {n} entries; the maximum is {MAX_POLICY_ENTRIES}"
        )));
    }
    Ok(())
}

fn tool_list(field: &str, v: Value) -> Result<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(wrong(field, "an array of tool names", &v));
    };
    too_many(field, items.len())?;
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => names::tool_pattern(field, &s).map(|()| s),
            other => Err(wrong(field, "an array of tool names", &other)),
        })
        .collect()
}

fn count(field: &str, v: Value) -> Result<u64> {
    v.as_u64()
        .ok_or_else(|| wrong(field, "a non-negative integer", &v))
}

fn usd(field: &str, v: Value) -> Result<f64> {
    match v.as_f64() {
        Some(x) if x.is_finite() && (0.0..=MAX_USD).contains(&x) => Ok(x),
        _ => Err(wrong(field, "a number of USD between 0 and 1e9", &v)),
    }
}

fn tool_counts(field: &str, v: Value) -> Result<BTreeMap<String, u64>> {
    let Value::Object(map) = v else {
        return Err(wrong(field, "an object of tool name → daily call cap", &v));
    };
    too_many(field, map.len())?;
    map.into_iter()
        .map(|(tool, n)| {
            names::tool_pattern(field, &tool)?;
            Ok((tool.clone(), count(&format!("{field}.{tool}"), n)?))
        })
        .collect()
}

fn pricing(field: &str, v: Value) -> Result<Vec<PricingRule>> {
    let Value::Array(items) = v else {
        return Err(wrong(field, "an array of {tool, price_usd}", &v));
    };
    too_many(field, items.len())?;
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut rule) = item else {
                return Err(wrong(field, "an array of {tool, price_usd}", &item));
            };
            let tool = match rule.remove("tool") {
                Some(Value::String(t)) => t,
                other => {
                    return Err(wrong(
                        &format!("{field}[].tool"),
                        "a tool name",
                        &other.unwrap_or(Value::Null),
                    ));
                }
            };
            names::tool_pattern(field, &tool)?;
            let price = rule.remove("price_usd").unwrap_or(Value::Null);
            let price_usd = usd(&format!("{field}[].price_usd"), price)?;
            Ok(PricingRule { tool, price_usd })
        })
        .collect()
}

/// The policy of a built-in template for `agent_id`, with `overrides` replacing its fields
/// (shallowly: a list in the overrides replaces the template's list).
pub(crate) fn from_template(agent_id: &str, template: &str, overrides: JsonMap) -> Result<Policy> {
    let Some(mut body) = template_body(template) else {
        return Err(Error::validation(format!(
            "unknown template {template:?}; the templates are {}",
            TEMPLATES.join(", ")
        )));
    };
    body.extend(overrides);
    parse(agent_id, body)
}

fn template_body(name: &str) -> Option<JsonMap> {
    let v = match name {
        "strict" => serde_json::json!({
            "max_actions_per_hour": 30,
            "max_spend_usd_per_day": 5.0,
            "blocked_tools": ["delete_*", "drop_*", "refund_*", "transfer_*", "admin_*"],
        }),
        "moderate" => serde_json::json!({
            "max_actions_per_hour": 200,
            "max_spend_usd_per_day": 50.0,
            "blocked_tools": ["delete_*", "drop_*"],
        }),
        "permissive" => serde_json::json!({
            "max_actions_per_hour": 1000,
            "max_spend_usd_per_day": 500.0,
        }),
        "read_only" => serde_json::json!({
            "max_actions_per_hour": 500,
            "max_spend_usd_per_day": 0.0,
            "allowed_tools": ["read_*", "get_*", "list_*", "search_*", "fetch_*"],
        }),
        "support_bot" => serde_json::json!({
            "max_actions_per_hour": 150,
            "max_spend_usd_per_day": 50.0,
            "allowed_tools": ["send_email", "create_ticket", "read_knowledge_base",
                              "read_customer_data", "read_order_history"],
            "blocked_tools": ["delete_customer", "delete_ticket", "process_refund",
                              "update_customer_data"],
            "max_calls_per_tool": {"send_email": 500, "create_ticket": 100,
                                   "read_knowledge_base": 1000, "read_customer_data": 200},
            "pricing_rules": [{"tool": "send_email", "price_usd": 0.001},
                              {"tool": "create_ticket", "price_usd": 0.05}],
        }),
        _ => return None,
    };
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> JsonMap {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_template_is_a_valid_policy() {
        for t in TEMPLATES {
            let p = from_template("a", t, JsonMap::new()).unwrap();
            assert_eq!(p.agent_id, "a");
            assert!(p.max_actions_per_hour.is_some(), "{t}");
        }
    }

    #[test]
    fn overrides_replace_template_fields_shallowly() {
        let p = from_template(
            "a",
            "support_bot",
            body(json!({"max_actions_per_hour": 120, "blocked_tools": ["delete_user"]})),
        )
        .unwrap();
        assert_eq!(p.max_actions_per_hour, Some(120));
        assert_eq!(p.blocked_tools, Some(vec!["delete_user".to_owned()]));
        assert_eq!(p.max_spend_usd_per_day, Some(50.0), "untouched fields stay");
    }

    #[test]
    fn malformed_fields_are_named_in_the_error() {
        let cases = [
            (json!({"max_actions_per_hour": -1}), "max_actions_per_hour"),
            (
                json!({"max_actions_per_hour": "10"}),
                "max_actions_per_hour",
            ),
            (
                json!({"max_spend_usd_per_day": -0.5}),
                "max_spend_usd_per_day",
            ),
            (json!({"allowed_tools": "send_email"}), "allowed_tools"),
            (json!({"blocked_tools": ["bad name"]}), "blocked_tools"),
            (
                json!({"max_calls_per_tool": {"x": 1.5}}),
                "max_calls_per_tool.x",
            ),
            (
                json!({"pricing_rules": [{"tool": "x"}]}),
                "pricing_rules[].price_usd",
            ),
            (json!({"pricing_rules": {"x": 1}}), "pricing_rules"),
        ];
        for (b, field) in cases {
            let e = parse("a", body(b.clone())).unwrap_err().to_string();
            assert!(e.contains(field), "{b}: {e}");
        }
        assert!(from_template("a", "lenient", JsonMap::new()).is_err());
        assert!(parse("bad agent", JsonMap::new()).is_err());
    }
}
