//! Governance over HTTP: what each `client.gov()` call, tool-mode `run_tool` and a governed
//! lease put on the wire, and how the hosted API's documented answers are read into the typed
//! models (nested and flat policies, bare and wrapped lists, the `enabled` fallback, the tool
//! answers, `tool_not_found`, plan gating, validation and rate limits).

mod http_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_support::{Reply, Stub};
use onceonly_runtime::models::{
    Governance, LeaseRequest, MetricsPeriod, Policy, RunStatus, ToolSpec,
};
use onceonly_runtime::{Error, JsonMap, OnceOnly};
use serde_json::{Value, json};

fn obj(v: Value) -> JsonMap {
    let Value::Object(m) = v else {
        panic!("not an object: {v}")
    };
    m
}

/// What a request carried: method, path (still percent-encoded), query pairs, JSON body.
type Sent = (String, String, Vec<(String, String)>, Value);

/// Every request the stub received.
fn requests(stub: &Stub) -> Vec<Sent> {
    stub.seen()
        .iter()
        .map(|s| {
            let body = if s.body.is_empty() {
                Value::Null
            } else {
                s.json()
            };
            (s.method.to_string(), s.path.clone(), s.query_pairs(), body)
        })
        .collect()
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

const NESTED: &str = r#"{"agent_id":"ops/bot 1","policy":{"agent_id":"ops/bot 1","max_actions_per_hour":150,"max_spend_usd_per_day":50.0,"allowed_tools":["send_email","create_ticket"],"blocked_tools":["delete_customer"],"max_calls_per_tool":{"send_email":500},"pricing_rules":[{"tool":"send_email","price_usd":0.001}]}}"#;

#[tokio::test]
async fn policies_send_the_documented_requests_and_read_nested_or_fall_back() {
    let stub = Stub::start(vec![
        Reply::json(200, NESTED),
        // A template answer without a nested policy: the payload is all there is.
        Reply::json(200, r#"{"ok":true}"#),
        // `get` of a flat answer reads the answer itself.
        Reply::json(
            200,
            r#"{"agent_id":"a2","max_actions_per_hour":120,"blocked_tools":null,"x_team":"ops"}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let gov = client.gov();
    let sent = Policy::new("ops/bot 1")
        .max_actions_per_hour(150)
        .blocked_tools(["delete_customer"]);
    let stored = gov.upsert_policy(sent).await.unwrap();
    assert_eq!(stored.agent_id, "ops/bot 1");
    assert_eq!(stored.max_spend_usd_per_day, Some(50.0));
    assert_eq!(
        stored.allowed_tools.as_deref(),
        Some(&["send_email".to_owned(), "create_ticket".to_owned()][..])
    );
    assert_eq!(stored.max_calls_per_tool.unwrap()["send_email"], 500);
    assert_eq!(stored.pricing_rules.unwrap()[0].price_usd, 0.001);

    let mut overrides = JsonMap::new();
    overrides.insert("max_actions_per_hour".into(), 300.into());
    let t = gov
        .policy_from_template("a2", "support_bot")
        .overrides(overrides)
        .await
        .unwrap();
    assert_eq!(t.agent_id, "a2");
    assert_eq!(t.extra["template"], "support_bot");
    gov.policy_from_template("a2", "strict").await.unwrap();

    let got = gov.get_policy("a2").await.unwrap();
    assert_eq!(
        (got.agent_id.as_str(), got.max_actions_per_hour),
        ("a2", Some(120))
    );
    assert_eq!(got.blocked_tools, None);
    assert_eq!(got.extra["x_team"], "ops");

    assert_eq!(
        requests(&stub),
        vec![
            (
                "POST".into(),
                "/v1/policies/ops%2Fbot%201".into(),
                vec![],
                json!({"agent_id": "ops/bot 1", "max_actions_per_hour": 150, "blocked_tools": ["delete_customer"]}),
            ),
            (
                "POST".into(),
                "/v1/policies/a2/from-template".into(),
                vec![],
                json!({"agent_id": "a2", "template": "support_bot", "overrides": {"max_actions_per_hour": 300}}),
            ),
            (
                "POST".into(),
                "/v1/policies/a2/from-template".into(),
                vec![],
                json!({"agent_id": "a2", "template": "strict", "overrides": {}}),
            ),
            ("GET".into(), "/v1/policies/a2".into(), vec![], Value::Null),
        ]
    );
}

#[tokio::test]
async fn a_policy_without_an_agent_is_refused_before_sending() {
    let stub = Stub::start(vec![Reply::json(200, NESTED)]).await;
    let client = stub.client();
    for agent in ["", "  "] {
        let e = client
            .gov()
            .upsert_policy(Policy::new(agent))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Validation(m) if m.contains("agent_id")),
            "{e:?}"
        );
    }
    let e = client.gov().get_policy("..").await.unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e:?}");
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn policy_lists_are_bare_or_wrapped_and_skip_what_is_not_an_object() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"[{"agent_id":"a1","policy":{"max_actions_per_hour":5}},{"agent_id":"a2","policy":{}}]"#,
        ),
        Reply::json(
            200,
            r#"{"items":[{"agent_id":"a3","max_spend_usd_per_day":2.5},"junk",7]}"#,
        ),
        Reply::json(200, r#"{"data":[null,{"agent_id":"a4","policy":{}}]}"#),
        Reply::json(200, r#"{}"#),
    ])
    .await;
    let client = stub.client();
    let ids = |ps: Vec<Policy>| ps.into_iter().map(|p| p.agent_id).collect::<Vec<_>>();
    let bare = client.gov().list_policies().await.unwrap();
    assert_eq!(bare[0].max_actions_per_hour, Some(5));
    assert_eq!(ids(bare), ["a1", "a2"]);
    let items = client.gov().list_policies().await.unwrap();
    assert_eq!(items[0].max_spend_usd_per_day, Some(2.5));
    assert_eq!(ids(items), ["a3"]);
    assert_eq!(ids(client.gov().list_policies().await.unwrap()), ["a4"]);
    assert!(client.gov().list_policies().await.unwrap().is_empty());
    assert!(
        stub.seen()
            .iter()
            .all(|s| s.method == "GET" && s.path == "/v1/policies")
    );
}

#[tokio::test]
async fn not_found_is_typed_only_for_not_found() {
    let stub = Stub::start(vec![
        Reply::json(
            404,
            r#"{"detail":{"error":"not_found","message":"no policy"}}"#,
        ),
        Reply::json(404, r#"{"detail":{"error":"not_found"}}"#),
        Reply::json(404, r#"{"detail":{"error":"not_available"}}"#),
    ])
    .await;
    let client = stub.client();
    let e = client.gov().get_policy("nobody").await.unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { what } if what == "policy for agent `nobody`"),
        "{e:?}"
    );
    let e = client
        .gov()
        .get_tool("send_email")
        .scope_id("agent:bot")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { what } if what == "tool `send_email` in scope `agent:bot`"),
        "{e:?}"
    );
    let e = client.gov().get_policy("nobody").await.unwrap_err();
    assert!(matches!(e, Error::Api { status: 404, .. }), "{e:?}");
    // The same texts as the embedded engine's.
    let embedded = OnceOnly::memory();
    let e = embedded.gov().get_policy("nobody").await.unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { what } if what == "policy for agent `nobody`"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_kill_switch_sends_a_reason_only_when_there_is_one_and_reads_enabled() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"agent_id":"bot","is_enabled":false,"disabled_reason":"suspicious","disabled_at":"2025-01-15T10:30:00Z"}"#,
        ),
        Reply::json(200, r#"{"agent_id":"bot","enabled":true}"#),
        Reply::json(200, r#"{"is_enabled":true,"enabled":false}"#),
        Reply::json(200, r#"{}"#),
        Reply::json(200, r#"{}"#),
    ])
    .await;
    let client = stub.client();
    let gov = client.gov();
    let off = gov.disable_agent("bot", "suspicious").await.unwrap();
    assert!(!off.is_enabled);
    assert_eq!(off.disabled_reason.as_deref(), Some("suspicious"));
    assert_eq!(
        off.disabled_at.unwrap().to_rfc3339(),
        "2025-01-15T10:30:00+00:00"
    );
    assert!(gov.enable_agent("bot", "").await.unwrap().is_enabled);
    let both = gov.enable_agent("bot", "  ").await.unwrap();
    assert!(both.is_enabled, "is_enabled wins over enabled");
    assert_eq!(both.agent_id, "bot", "the agent asked for");
    // An answer without the flag reads as the state asked for.
    assert!(!gov.disable_agent("bot", "").await.unwrap().is_enabled);
    assert!(gov.enable_agent("bot", "").await.unwrap().is_enabled);

    let bodies: Vec<_> = requests(&stub)
        .into_iter()
        .map(|(m, p, _, b)| (m, p, b))
        .collect();
    assert_eq!(
        bodies,
        vec![
            (
                "POST".into(),
                "/v1/agents/bot/disable".into(),
                json!({"reason": "suspicious"})
            ),
            ("POST".into(), "/v1/agents/bot/enable".into(), json!({})),
            ("POST".into(), "/v1/agents/bot/enable".into(), json!({})),
            ("POST".into(), "/v1/agents/bot/disable".into(), json!({})),
            ("POST".into(), "/v1/agents/bot/enable".into(), json!({})),
        ]
    );
}

#[tokio::test]
async fn audit_logs_and_metrics_read_the_documented_answers() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"[{"ts":1705322400,"agent_id":"bot","tool":"send_email","allowed":true,"decision":"executed","policy_reason":"ok","risk_level":"low","args_hash":"a1b2c3d4","spend_usd":0.001},
                {"ts":1705322401,"agent_id":"bot","tool":"rm","allowed":false,"decision":"blocked","policy_reason":"tool_not_in_allowed_list","risk_level":"medium"},
                "not an entry"]"#,
        ),
        Reply::json(
            200,
            r#"{"items":[{"ts":1705322402.9,"tool":"x","allowed":false,"reason":"some_new_rule"},{"ts":"1705322403","reason":"r","policy_reason":"p"}]}"#,
        ),
        Reply::json(
            200,
            r#"{"agent_id":"bot","period":"week","total_actions":450,"blocked_actions":12,"total_spend_usd":125.5,"top_tools":[{"tool":"send_email","count":400},"x"]}"#,
        ),
        Reply::json(200, r#"{"period":"fortnight"}"#),
    ])
    .await;
    let client = stub.client();
    let gov = client.gov();
    let logs = gov.agent_logs("bot").limit(20).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(
        (logs[0].ts, logs[0].decision.as_str(), logs[0].spend_usd),
        (1705322400, "executed", 0.001)
    );
    assert_eq!(logs[0].args_hash.as_deref(), Some("a1b2c3d4"));
    assert_eq!(
        (logs[1].allowed, logs[1].policy_reason.as_deref()),
        (false, Some("tool_not_in_allowed_list"))
    );

    let logs = gov.agent_logs("bot").await.unwrap();
    assert_eq!(
        (
            logs[0].ts,
            logs[0].agent_id.as_str(),
            logs[0].decision.as_str()
        ),
        (1705322402, "bot", "blocked")
    );
    assert_eq!(logs[0].policy_reason.as_deref(), Some("some_new_rule"));
    assert_eq!(
        (logs[1].ts, logs[1].allowed, logs[1].decision.as_str()),
        (1705322403, true, "allowed")
    );
    assert_eq!(logs[1].policy_reason.as_deref(), Some("p"));

    let m = gov
        .agent_metrics("bot")
        .period(MetricsPeriod::Week)
        .await
        .unwrap();
    assert_eq!(m.period, MetricsPeriod::Week);
    assert_eq!(
        (m.total_actions, m.blocked_actions, m.total_spend_usd),
        (450, 12, 125.5)
    );
    assert_eq!(m.top_tools.len(), 1);
    assert_eq!(
        (m.top_tools[0].tool.as_str(), m.top_tools[0].count),
        ("send_email", 400)
    );
    let m = gov.agent_metrics("bot").await.unwrap();
    assert_eq!(
        (m.agent_id.as_str(), m.period, m.total_actions),
        ("bot", MetricsPeriod::Day, 0)
    );

    let got: Vec<_> = requests(&stub)
        .into_iter()
        .map(|(m, p, q, _)| (m, p, q))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "GET".into(),
                "/v1/agents/bot/logs".into(),
                q(&[("limit", "20")])
            ),
            (
                "GET".into(),
                "/v1/agents/bot/logs".into(),
                q(&[("limit", "100")])
            ),
            (
                "GET".into(),
                "/v1/agents/bot/metrics".into(),
                q(&[("period", "week")])
            ),
            (
                "GET".into(),
                "/v1/agents/bot/metrics".into(),
                q(&[("period", "day")])
            ),
        ]
    );
}

const TOOL: &str = r#"{"name":"send_email","scope_id":"agent:billing-agent","url":"https://tools.example.com/send_email","timeout_ms":5000,"max_retries":1,"enabled":true,"description":"Sends one email","has_secret":true,"secret_id":"sec_a1b2c3d4","secret_mask":"***ret","auth_type":"hmac_sha256"}"#;

#[tokio::test]
async fn the_tools_registry_sends_scope_in_the_query_and_the_spec_in_the_body() {
    let stub = Stub::start(vec![
        Reply::json(200, TOOL),
        Reply::json(200, &format!("[{TOOL}, 3]")),
        Reply::json(200, &format!(r#"{{"items":[{TOOL}]}}"#)),
        Reply::json(200, TOOL),
        Reply::json(200, r#"{"name":"send_email","enabled":false}"#),
        Reply::json(200, r#"{"ok":true,"deleted":"send_email"}"#),
    ])
    .await;
    let client = stub.client();
    let gov = client.gov();
    let scope = "agent:billing-agent";
    let spec = ToolSpec::new(
        "send_email",
        "https://tools.example.com/send_email",
        "tool-secret",
    )
    .scope_id(scope)
    .timeout_ms(5000)
    .max_retries(1)
    .description("Sends one email");
    let created = gov.create_tool(spec).await.unwrap();
    assert_eq!(created.secret_mask.as_deref(), Some("***ret"));
    assert!(created.has_secret);
    let one = std::slice::from_ref(&created);
    assert_eq!(gov.list_tools().scope_id(scope).await.unwrap(), one);
    assert_eq!(gov.list_tools().await.unwrap(), one);
    assert_eq!(
        gov.get_tool("send_email").scope_id(scope).await.unwrap(),
        created
    );
    let off = gov
        .toggle_tool("send_email", false)
        .scope_id(scope)
        .await
        .unwrap();
    assert_eq!(
        (off.name.as_str(), off.scope_id.as_str(), off.enabled),
        ("send_email", scope, false)
    );
    let deleted = gov.delete_tool("send_email").scope_id(scope).await.unwrap();
    assert!(deleted.ok);
    assert_eq!(deleted.deleted, "send_email");

    let scoped = q(&[("scope_id", scope)]);
    assert_eq!(
        requests(&stub),
        vec![
            (
                "POST".into(),
                "/v1/tools".into(),
                vec![],
                json!({"name": "send_email", "scope_id": scope, "url": "https://tools.example.com/send_email",
                       "auth": {"type": "hmac_sha256", "secret": "tool-secret"}, "timeout_ms": 5000,
                       "max_retries": 1, "description": "Sends one email"}),
            ),
            (
                "GET".into(),
                "/v1/tools".into(),
                scoped.clone(),
                Value::Null
            ),
            (
                "GET".into(),
                "/v1/tools".into(),
                q(&[("scope_id", "global")]),
                Value::Null
            ),
            (
                "GET".into(),
                "/v1/tools/send_email".into(),
                scoped.clone(),
                Value::Null
            ),
            (
                "POST".into(),
                "/v1/tools/send_email/toggle".into(),
                scoped.clone(),
                json!({"enabled": false})
            ),
            (
                "DELETE".into(),
                "/v1/tools/send_email".into(),
                scoped,
                Value::Null
            ),
        ]
    );
    // The scope travels percent-encoded: `:` is not left to chance.
    assert!(
        stub.seen()[1]
            .query
            .as_deref()
            .unwrap()
            .contains("agent%3Abilling-agent")
    );
}

#[tokio::test]
async fn run_tool_sends_tool_mode_and_reads_tool_results() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"allowed":true,"decision":"executed","policy_reason":"within_budget","risk_level":"low","result":{"id":"msg_1"}}"#,
        ),
        Reply::json(
            200,
            r#"{"ok":false,"allowed":false,"decision":"blocked","policy_reason":"tool_not_allowed","risk_level":null,"result":"nope"}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let mut args = JsonMap::new();
    args.insert("to".into(), "a@example.com".into());
    let res = client
        .ai()
        .run_tool("billing-agent", "send_email")
        .args(args)
        .spend_usd(0.5)
        .run_id("run-1")
        .await
        .unwrap();
    assert!(res.ok && res.allowed);
    assert_eq!(res.decision, "executed");
    assert_eq!(res.policy_reason.as_deref(), Some("within_budget"));
    assert_eq!(res.result.unwrap()["id"], "msg_1");
    let res = client.ai().run_tool("billing-agent", "x").await.unwrap();
    assert!(!res.allowed);
    assert_eq!(
        (res.decision.as_str(), res.policy_reason.as_deref()),
        ("blocked", Some("tool_not_allowed"))
    );
    assert_eq!((res.risk_level, res.result), (None, None));

    let got: Vec<_> = requests(&stub)
        .into_iter()
        .map(|(m, p, _, b)| (m, p, b))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "POST".into(),
                "/v1/ai/run".into(),
                json!({"agent_id": "billing-agent", "tool": "send_email",
                       "args": {"to": "a@example.com", "run_id": "run-1"}, "spend_usd": 0.5}),
            ),
            (
                "POST".into(),
                "/v1/ai/run".into(),
                json!({"agent_id": "billing-agent", "tool": "x"}),
            ),
        ]
    );
}

#[tokio::test]
async fn an_unknown_tool_is_the_same_blocked_result_as_on_the_engine() {
    let stub = Stub::start(vec![Reply::json(
        404,
        r#"{"detail":{"error":"tool_not_found","message":"Tool 'nope' not found"}}"#,
    )])
    .await;
    let over_http = stub.client().ai().run_tool("bot", "nope").await.unwrap();
    let embedded = OnceOnly::memory()
        .ai()
        .run_tool("bot", "nope")
        .await
        .unwrap();
    assert_eq!(over_http, embedded);
    assert_eq!(over_http.policy_reason.as_deref(), Some("tool_not_found"));
    assert_eq!(over_http.decision, "blocked");
    assert!(!over_http.allowed && !over_http.ok);
    assert_eq!(stub.only().path, "/v1/ai/run");
}

#[tokio::test]
async fn plan_gating_validation_and_other_404s_stay_errors() {
    let stub = Stub::start(vec![
        Reply::json(
            403,
            r#"{"detail":{"error":"feature_not_available","message":"Agent policies require Pro"}}"#,
        ),
        Reply::json(
            422,
            r#"{"detail":[{"type":"missing","loc":["body","template"],"msg":"Field required","input":{}}]}"#,
        ),
        Reply::json(404, r#"{"detail":{"error":"not_found"}}"#),
        Reply::json(
            403,
            r#"{"detail":{"error":"plan_limit","message":"FREE plan limit: max 1 tools"}}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let gov = client.gov();
    match gov.disable_agent("bot", "").await.unwrap_err() {
        Error::Api { status, detail } => {
            assert_eq!(status, 403);
            assert_eq!(detail["error"], "feature_not_available");
        }
        e => panic!("{e:?}"),
    }
    let e = gov.policy_from_template("a", "").await.unwrap_err();
    assert!(
        matches!(&e, Error::Validation(m) if m == "body.template: Field required"),
        "{e:?}"
    );
    // Only tool_not_found is a blocked call; another 404 on /ai/run is an error.
    let e = client.ai().run_tool("bot", "t").await.unwrap_err();
    assert!(matches!(e, Error::Api { status: 404, .. }), "{e:?}");
    let spec = ToolSpec::new("t2", "https://tools.example.com/t2", "tool-secret");
    let e = gov.create_tool(spec).await.unwrap_err();
    assert!(matches!(e, Error::Api { status: 403, .. }), "{e:?}");
    assert_eq!(stub.seen().len(), 4);
}

#[tokio::test]
async fn a_rate_limited_governance_call_is_retried_after_retry_after() {
    let stub = Stub::start(vec![
        Reply::json(429, r#"{"detail":{"error":"rate_limited"}}"#).header("Retry-After", "0.3"),
        Reply::json(200, NESTED),
    ])
    .await;
    let p = stub
        .fast_retries(1)
        .gov()
        .get_policy("ops/bot 1")
        .await
        .unwrap();
    assert_eq!(p.max_actions_per_hour, Some(150));
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.method == "GET" && s.path == "/v1/policies/ops%2Fbot%201")
    );
    // The computed backoff is 5 ms at most: only the header explains the pause.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(300));

    // Without retries the 429 is the caller's, with its hint.
    let stub = Stub::start(vec![
        Reply::json(429, r#"{"detail":{"error":"rate_limited"}}"#).header("Retry-After", "15"),
    ])
    .await;
    let e = stub.client().gov().list_tools().await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(15)),
        "{e:?}"
    );
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn a_governed_lease_sends_its_governance_and_reads_blocked() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":false,"status":"blocked","key":"refund:7","policy_reason":"tool_blocked","risk_level":"high","error_code":"tool_blocked"}"#,
        ),
        Reply::json(
            200,
            r#"{"ok":false,"status":"blocked","key":"refund:8","policy_reason":"a_rule_from_the_future"}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let mut gov = Governance::new("billing-agent", "refund_card");
    gov.args = Some(obj(json!({"order": 7})));
    gov.spend_usd = Some(1.25);
    let lease = client
        .backend()
        .lease(LeaseRequest::new("refund:7").governed(gov))
        .await
        .unwrap();
    assert_eq!(lease.status, RunStatus::Blocked);
    assert_eq!(lease.policy_reason.as_deref(), Some("tool_blocked"));

    // run_fn turns it into the same refusal as on the engine, without running the function.
    let runs = Arc::new(AtomicUsize::new(0));
    let call = |client: &OnceOnly, key: &'static str| {
        let runs = Arc::clone(&runs);
        let client = client.clone();
        async move {
            client
                .ai()
                .run_fn(key, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Error>("refunded".to_owned())
                })
                .governed("billing-agent", "refund_card")
                .await
        }
    };
    let over_http = call(&client, "refund:8").await.unwrap_err();
    assert!(
        matches!(&over_http, Error::Blocked { reason, decision }
            if reason == "a_rule_from_the_future" && decision == "blocked"),
        "{over_http:?}"
    );
    let embedded = OnceOnly::memory();
    embedded
        .gov()
        .upsert_policy(Policy::new("billing-agent").blocked_tools(["refund_*"]))
        .await
        .unwrap();
    let on_engine = call(&embedded, "refund:7").await.unwrap_err();
    assert!(
        matches!(&on_engine, Error::Blocked { reason, decision }
            if reason == "tool_blocked" && decision == "blocked"),
        "{on_engine:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a refused call never runs");

    let bodies: Vec<_> = stub
        .seen()
        .iter()
        .map(|s| (s.path.clone(), s.json()))
        .collect();
    assert_eq!(bodies[0].0, "/v1/ai/lease");
    assert_eq!(
        bodies[0].1,
        json!({"key": "refund:7", "agent_id": "billing-agent", "tool": "refund_card",
               "args": {"order": 7}, "spend_usd": 1.25})
    );
    assert_eq!(bodies[1].0, "/v1/ai/lease");
    assert_eq!(bodies[1].1["agent_id"], "billing-agent");
    assert_eq!(bodies[1].1["tool"], "refund_card");
    assert!(bodies[1].1.get("spend_usd").is_none());
}

#[tokio::test]
async fn key_mode_runs_and_plain_leases_carry_no_governance() {
    let lease = r#"{"ok":true,"status":"acquired","key":"k","lease_id":"lease_1","version":1}"#;
    let stub = Stub::start(vec![Reply::json(200, lease)]).await;
    let client = stub.client();
    client.ai().lease("k").await.unwrap();
    let governed = LeaseRequest::new("k").governed(Governance::new("a", "t"));
    client.backend().run(governed).await.unwrap();
    for s in stub.seen() {
        assert_eq!(s.json(), json!({"key": "k"}), "{}", s.path);
    }
}

#[tokio::test]
async fn rust_fn_tools_are_refused_over_http_with_the_reason() {
    let stub = Stub::start(vec![Reply::json(200, "{}")]).await;
    let client = stub.client();
    let e = client
        .gov()
        .register_tool_fn("lookup", |_args: JsonMap| async move {
            Ok::<_, String>(JsonMap::new())
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                operation: "register_tool_fn",
                backend: "http"
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("only the embedded engine"), "{text}");
    assert!(text.contains("create_tool"), "{text}");
    assert!(stub.seen().is_empty());
}
