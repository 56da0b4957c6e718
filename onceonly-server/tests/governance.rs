//! Governance over HTTP: policies, the kill switch, audit logs and metrics, the tools registry,
//! governed tool calls (tool-mode `/ai/run`) against a signed HTTP tool on loopback, and
//! governed leases. A real server, a real client.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use common::{A, B, TestServer, start, start_with};
use onceonly_tower::signature::SignatureVerifier;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "tool-secret-value";

/// A tool endpoint on loopback that verifies every call's signature and counts the calls.
struct ToolHost {
    url: String,
    authority: String,
    calls: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct HostState {
    verifier: SignatureVerifier,
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

async fn tool_endpoint(
    State(state): State<HostState>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, axum::Json<Value>) {
    if let Err(e) = state.verifier.verify(&headers, &body) {
        return (
            AxumStatus::UNAUTHORIZED,
            axum::Json(json!({"detail": e.to_string()})),
        );
    }
    tokio::time::sleep(state.delay).await;
    let call: Value = serde_json::from_slice(&body).unwrap();
    state.calls.fetch_add(1, Ordering::SeqCst);
    (
        AxumStatus::OK,
        axum::Json(json!({"echo": call["args"], "tool": call["tool"]})),
    )
}

impl ToolHost {
    async fn start() -> ToolHost {
        ToolHost::start_slow(Duration::ZERO).await
    }

    /// A host that takes `delay` to answer each call.
    async fn start_slow(delay: Duration) -> ToolHost {
        let calls = Arc::new(AtomicUsize::new(0));
        let state = HostState {
            verifier: SignatureVerifier::new(SECRET),
            calls: Arc::clone(&calls),
            delay,
        };
        let app = axum::Router::new()
            .route("/tool", post(tool_endpoint))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ToolHost {
            url: format!("http://{addr}/tool"),
            authority: addr.to_string(),
            calls,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A server whose tool host allow-list holds `host`'s `127.0.0.1:PORT`.
async fn start_allowing(host: &ToolHost) -> TestServer {
    let authority = host.authority.clone();
    start_with(move |mut config| {
        config.engine = config.engine.clone().allow_tool_host(authority);
        config
    })
    .await
}

async fn register(s: &TestServer, key: &str, name: &str, url: &str, scope: &str) -> Value {
    s.post_ok(
        key,
        "tools",
        json!({
            "name": name,
            "scope_id": scope,
            "url": url,
            "auth": {"type": "hmac_sha256", "secret": SECRET},
            "max_retries": 0,
        }),
    )
    .await
}

fn assert_invalid(a: &common::Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        a.text
    );
    assert!(a.body.get("detail").is_some(), "{what}: {}", a.text);
}

/// A 404 with `detail.error == code` whose message names `what`.
fn assert_not_found(a: &common::Answer, code: &str, what: &str) {
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{what}: {}", a.text);
    assert_eq!(a.detail()["error"], code, "{what}");
    let message = a.detail()["message"].as_str().unwrap_or_default();
    assert!(message.contains(what), "{what}: {message}");
}

async fn delete(s: &TestServer, key: &str, path: &str) -> common::Answer {
    s.raw(Method::DELETE, path, Some(key), None, &[]).await
}

#[tokio::test]
async fn policies_answer_nested_and_force_the_path_agent() {
    let s = start().await;
    let body = json!({
        "agent_id": "someone-else",
        "max_actions_per_hour": 5,
        "blocked_tools": ["delete_*"],
        "max_calls_per_tool": {"send_email": 3},
        "pricing_rules": [{"tool": "send_email", "price_usd": 0.25}],
        "x_team": "ops",
    });
    // TS encodes `:` as `%3A`.
    let stored = s.post_ok(A, "policies/agent%3Abot", body).await;
    assert_eq!(stored["agent_id"], "agent:bot");
    let policy = &stored["policy"];
    assert_eq!(policy["agent_id"], "agent:bot");
    assert_eq!(policy["max_actions_per_hour"], 5);
    assert_eq!(policy["blocked_tools"], json!(["delete_*"]));
    assert_eq!(policy["max_calls_per_tool"], json!({"send_email": 3}));
    assert_eq!(policy["pricing_rules"][0]["price_usd"], 0.25);
    assert_eq!(policy["x_team"], "ops", "unknown keys are kept");

    assert_eq!(s.get_ok(A, "policies/agent:bot").await, stored);
    assert_eq!(s.get_ok(A, "policies").await, json!([stored]));

    let t = s
        .post_ok(
            A,
            "policies/helper/from-template",
            json!({"agent_id": "helper", "template": "support_bot",
                   "overrides": {"max_actions_per_hour": 120, "blocked_tools": ["delete_user"]}}),
        )
        .await;
    assert_eq!(t["agent_id"], "helper");
    assert_eq!(t["policy"]["max_actions_per_hour"], 120);
    assert_eq!(t["policy"]["blocked_tools"], json!(["delete_user"]));
    assert_eq!(t["policy"]["max_spend_usd_per_day"], 50.0);
    let without = s
        .post_ok(
            A,
            "policies/strict-bot/from-template",
            json!({"template": "strict"}),
        )
        .await;
    assert_eq!(without["policy"]["max_actions_per_hour"], 30);
    assert_eq!(s.get_ok(A, "policies").await.as_array().unwrap().len(), 3);

    assert_not_found(&s.get(A, "policies/nobody").await, "not_found", "nobody");
}

#[tokio::test]
async fn policy_mistakes_are_422() {
    let s = start().await;
    let unknown = s
        .post(
            A,
            "policies/bot/from-template",
            json!({"template": "lenient", "overrides": {}}),
        )
        .await;
    assert_invalid(&unknown, "unknown template");
    assert!(unknown.text.contains("support_bot"), "{}", unknown.text);
    assert_invalid(
        &s.post(A, "policies/bot/from-template", json!({})).await,
        "no template",
    );
    assert_invalid(
        &s.post(A, "policies/bad%20agent", json!({})).await,
        "agent id",
    );
    assert_invalid(&s.get(A, "policies/bad%20agent").await, "agent id on get");
    let typed = s
        .post(A, "policies/bot", json!({"max_actions_per_hour": "10"}))
        .await;
    assert_invalid(&typed, "string count");
    assert!(
        typed.text.contains("max_actions_per_hour"),
        "{}",
        typed.text
    );
    assert_invalid(
        &s.post(A, "policies/bot", json!({"max_spend_usd_per_day": -1.0}))
            .await,
        "negative budget",
    );
    assert_invalid(
        &s.post(A, "policies/bot", json!({"blocked_tools": ["bad name"]}))
            .await,
        "bad tool pattern",
    );
    assert_invalid(
        &s.post(A, "policies/bot", json!([1, 2])).await,
        "array body",
    );
    let broken = s
        .raw(
            Method::POST,
            "policies/bot",
            Some(A),
            Some(b"{\"max_actions_per_hour\": ".to_vec()),
            &[],
        )
        .await;
    assert_invalid(&broken, "malformed JSON");
    assert_eq!(s.get_ok(A, "policies").await, json!([]), "nothing stored");
}

#[tokio::test]
async fn kill_switch_logs_and_metrics() {
    let s = start().await;
    let off = s
        .post_ok(
            A,
            "agents/agent%3Abot/disable",
            json!({"reason": "suspicious"}),
        )
        .await;
    assert_eq!(off["agent_id"], "agent:bot");
    assert_eq!(off["is_enabled"], false);
    assert_eq!(off["disabled_reason"], "suspicious");
    assert!(off["disabled_at"].as_str().unwrap().ends_with('Z'), "{off}");

    let blocked = s
        .post_ok(
            A,
            "ai/run",
            json!({"agent_id": "agent:bot", "tool": "send_email", "args": {"to": "x"}}),
        )
        .await;
    assert_eq!(
        blocked,
        json!({"ok": false, "allowed": false, "decision": "blocked",
               "policy_reason": "agent_disabled", "risk_level": "high", "result": null})
    );

    let on = s.post_ok(A, "agents/agent%3Abot/enable", json!({})).await;
    assert_eq!(
        on,
        json!({"agent_id": "agent:bot", "is_enabled": true, "disabled_reason": null, "disabled_at": null})
    );
    let plain = s.post_ok(A, "agents/agent%3Abot/disable", json!({})).await;
    assert_eq!(plain["disabled_reason"], Value::Null);

    let logs = s.get_ok(A, "agents/agent%3Abot/logs").await;
    let entries = logs.as_array().expect("a bare array");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert!(e["ts"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(e["agent_id"], "agent:bot");
    assert_eq!(e["tool"], "send_email");
    assert_eq!(e["allowed"], false);
    assert_eq!(e["decision"], "blocked");
    assert_eq!(e["policy_reason"], "agent_disabled");
    assert_eq!(e["risk_level"], "high");
    assert_eq!(e["args_hash"].as_str().unwrap().len(), 64);
    assert_eq!(e["spend_usd"], 0.0);
    assert_eq!(s.get_ok(A, "agents/agent%3Abot/logs?limit=1").await, logs);

    for period in ["hour", "day", "week"] {
        let m = s
            .get_ok(A, &format!("agents/agent%3Abot/metrics?period={period}"))
            .await;
        assert_eq!(
            m,
            json!({"agent_id": "agent:bot", "period": period, "total_actions": 1,
                   "blocked_actions": 1, "total_spend_usd": 0.0,
                   "top_tools": [{"tool": "send_email", "count": 1}]})
        );
    }
    assert_eq!(
        s.get_ok(A, "agents/agent%3Abot/metrics").await["period"],
        "day"
    );

    for (path, what) in [
        ("agents/agent%3Abot/logs?limit=0", "limit 0"),
        ("agents/agent%3Abot/logs?limit=501", "limit 501"),
        ("agents/agent%3Abot/logs?limit=-1", "limit -1"),
        ("agents/agent%3Abot/logs?limit=ten", "limit ten"),
        ("agents/agent%3Abot/metrics?period=month", "period"),
        ("agents/bad%20agent/logs", "agent id"),
        ("agents/bad%20agent/metrics", "agent id"),
    ] {
        assert_invalid(&s.get(A, path).await, what);
    }
    let long = s
        .post(A, "agents/bot/disable", json!({"reason": "x".repeat(600)}))
        .await;
    assert_invalid(&long, "oversized reason");
    assert_invalid(
        &s.post(A, "agents/bot/disable", json!({"reason": 5})).await,
        "reason type",
    );
    assert_invalid(
        &s.post(A, "agents/bad%20agent/enable", json!({})).await,
        "agent id",
    );
}

/// The kill switch takes `{"reason"?}`, `{}` or no body at all (a `curl -X POST`); a body
/// that is there must still be a JSON object.
#[tokio::test]
async fn the_kill_switch_takes_no_body_too() {
    let s = start().await;
    for (path, body, status) in [
        ("agents/bot/disable", None, 200),
        ("agents/bot/enable", None, 200),
        ("agents/bot/disable", Some(b"  ".to_vec()), 200),
        ("agents/bot/disable", Some(b"[1]".to_vec()), 422),
    ] {
        let a = s.raw(Method::POST, path, Some(A), body.clone(), &[]).await;
        assert_eq!(a.status.as_u16(), status, "{path} {body:?}: {}", a.text);
    }
    let off = s.post_ok(A, "agents/bot/disable", json!({})).await;
    assert_eq!(
        (off["is_enabled"].clone(), off["disabled_reason"].clone()),
        (json!(false), Value::Null)
    );
}

#[tokio::test]
async fn tools_registry_shapes_never_echo_secrets() {
    let s = start().await;
    let created = s
        .post(
            A,
            "tools",
            json!({
                "name": "send_email",
                "scope_id": "agent:bot",
                "url": "https://tools.example.com/send",
                "auth": {"type": "hmac_sha256", "secret": "super-secret-value"},
                "timeout_ms": 5000,
                "description": "Sends one email",
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert!(
        !created.text.contains("super-secret-value"),
        "{}",
        created.text
    );
    let tool = created.body;
    assert_eq!(tool["name"], "send_email");
    assert_eq!(tool["scope_id"], "agent:bot");
    assert_eq!(tool["url"], "https://tools.example.com/send");
    assert_eq!(tool["timeout_ms"], 5000);
    assert_eq!(tool["max_retries"], 2);
    assert_eq!(tool["enabled"], true);
    assert_eq!(tool["description"], "Sends one email");
    assert_eq!(tool["has_secret"], true);
    assert_eq!(tool["secret_mask"], "***lue");
    assert!(tool["secret_id"].as_str().unwrap().starts_with("sec_"));
    assert!(tool.get("auth").is_none() && tool.get("secret").is_none());

    let listed = s.get(A, "tools?scope_id=agent%3Abot").await;
    assert!(!listed.text.contains("super-secret-value"));
    assert_eq!(listed.body, json!([tool]));
    assert_eq!(s.get_ok(A, "tools").await, json!([]), "global by default");
    assert_eq!(
        s.get_ok(A, "tools/send_email?scope_id=agent%3Abot").await,
        tool
    );
    let off = s
        .post_ok(
            A,
            "tools/send_email/toggle?scope_id=agent%3Abot",
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off["name"], "send_email");
    assert_eq!(off["enabled"], false);
    assert_eq!(off["secret_id"], tool["secret_id"]);

    let elsewhere = s.get(A, "tools/send_email").await;
    assert_not_found(&elsewhere, "not_found", "scope `global`");
    let gone = delete(&s, A, "tools/send_email?scope_id=agent%3Abot").await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(gone.body, json!({"ok": true, "deleted": "send_email"}));
    let again = delete(&s, A, "tools/send_email?scope_id=agent%3Abot").await;
    assert_not_found(&again, "not_found", "send_email");
    let toggle_missing = s
        .post(A, "tools/send_email/toggle", json!({"enabled": true}))
        .await;
    assert_not_found(&toggle_missing, "not_found", "send_email");
}

#[tokio::test]
async fn tool_mistakes_are_422_and_never_quote_the_secret() {
    let s = start().await;
    let spec = |patch: Value| {
        let mut t = json!({
            "name": "send_email",
            "url": "https://tools.example.com/send",
            "auth": {"type": "hmac_sha256", "secret": "super-secret-value"},
        });
        for (k, v) in patch.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    };
    for (patch, what) in [
        (json!({"name": "bad name"}), "invalid tool name"),
        (json!({"name": ""}), "empty tool name"),
        (json!({"name": ".."}), "a name clients drop from URLs"),
        (
            json!({"scope_id": "agent:."}),
            "an agent id clients drop from URLs",
        ),
        (
            json!({"auth": {"type": "hmac_sha256", "secret": "short"}}),
            "short secret",
        ),
        (
            json!({"auth": {"type": "rsa", "secret": "super-secret-value"}}),
            "auth type",
        ),
        (json!({"url": "ftp://tools.example.com/x"}), "url scheme"),
        (json!({"timeout_ms": 10}), "timeout"),
        (json!({"max_retries": 11}), "retries"),
        (json!({"scope_id": "team:x"}), "scope"),
        (json!({"description": "d".repeat(600)}), "description"),
    ] {
        let a = s.post(A, "tools", spec(patch)).await;
        assert_invalid(&a, what);
        assert!(!a.text.contains("super-secret-value"), "{what}: {}", a.text);
    }
    let mut no_auth = spec(json!({}));
    no_auth.as_object_mut().unwrap().remove("auth");
    assert_invalid(&s.post(A, "tools", no_auth).await, "no auth");
    assert_invalid(&s.get(A, "tools/bad%20name").await, "name on get");
    assert_invalid(&s.get(A, "tools?scope_id=team%3Ax").await, "scope on list");
    assert_invalid(
        &delete(&s, A, "tools/send_email?scope_id=agent%3Abad%20agent").await,
        "agent scope",
    );
    assert_invalid(
        &s.post(A, "tools/send_email/toggle", json!({"enabled": "yes"}))
            .await,
        "toggle type",
    );
    assert_eq!(s.get_ok(A, "tools").await, json!([]));
}

#[tokio::test]
async fn tool_mode_run_shapes_and_errors() {
    let s = start().await;
    let unknown = s
        .post(
            A,
            "ai/run",
            json!({"agent_id": "bot", "tool": "nope", "args": {"a": 1}}),
        )
        .await;
    assert_not_found(&unknown, "tool_not_found", "nope");
    let logs = s.get_ok(A, "agents/bot/logs").await;
    assert_eq!(
        logs[0]["policy_reason"], "tool_not_found",
        "audited: {logs}"
    );
    assert_eq!(logs[0]["decision"], "blocked");

    for (body, what) in [
        (json!({"agent_id": "bot"}), "agent without tool"),
        (json!({"tool": "send_email"}), "tool without agent"),
        (json!({"agent_id": "", "tool": "send_email"}), "empty agent"),
        (json!({"args": {"a": 1}}), "args alone"),
        (
            json!({"key": "k", "agent_id": "bot", "tool": "t"}),
            "both modes",
        ),
        (json!({"key": "k", "spend_usd": 1.0}), "key with spend"),
        (json!({"agent_id": "bad agent", "tool": "t"}), "agent id"),
        (json!({"agent_id": "bot", "tool": "bad name"}), "tool name"),
        (
            json!({"agent_id": "bot", "tool": "t", "args": [1]}),
            "args type",
        ),
        (
            json!({"agent_id": "bot", "tool": "t", "spend_usd": -1}),
            "negative spend",
        ),
        (
            json!({"agent_id": "bot", "tool": "t", "spend_usd": "1"}),
            "spend type",
        ),
        (json!({}), "nothing"),
    ] {
        assert_invalid(&s.post(A, "ai/run", body).await, what);
    }

    let key_mode = s.post_ok(A, "ai/run", json!({"key": "report:1"})).await;
    assert_eq!(
        (&key_mode["status"], &key_mode["queued"]),
        (&json!("in_progress"), &json!(true))
    );
    assert!(key_mode.get("allowed").is_none() && key_mode.get("decision").is_none());
}

/// Fires `n` governed calls of `charge` at once, each with its own args; answers how many
/// executed and the reasons of the blocked ones.
async fn burst(
    s: &Arc<TestServer>,
    agent: &str,
    n: usize,
    spend: Option<f64>,
) -> (usize, Vec<String>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = Arc::clone(s);
            let mut body = json!({"agent_id": agent, "tool": "charge", "args": {"i": i}});
            if let Some(usd) = spend {
                body["spend_usd"] = json!(usd);
            }
            tokio::spawn(async move { s.post_ok(A, "ai/run", body).await })
        })
        .collect();
    let mut executed = 0;
    let mut reasons = Vec::new();
    for task in tasks {
        let a = task.await.unwrap();
        match a["decision"].as_str() {
            Some("executed") => {
                assert_eq!(a["ok"], true, "{a}");
                assert_eq!(a["allowed"], true, "{a}");
                assert_eq!(a["result"]["tool"], "charge", "{a}");
                executed += 1;
            }
            Some("blocked") => {
                assert_eq!(a["allowed"], false, "{a}");
                assert_eq!(a["risk_level"], "medium", "{a}");
                reasons.push(a["policy_reason"].as_str().unwrap().to_owned());
            }
            _ => panic!("unexpected answer {a}"),
        }
    }
    (executed, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_calls_never_pass_a_limit() {
    const CALLS: usize = 200;
    const N: usize = 37;
    let host = ToolHost::start().await;
    let s = Arc::new(start_allowing(&host).await);
    register(&s, A, "charge", &host.url, "global").await;
    let cases = [
        (
            "hourly",
            json!({"max_actions_per_hour": N}),
            None,
            "hourly_action_limit",
        ),
        (
            "spend",
            json!({"max_spend_usd_per_day": N as f64}),
            Some(1.0),
            "daily_spend_exceeded",
        ),
        (
            "per-tool",
            json!({"max_calls_per_tool": {"charge": N}}),
            None,
            "tool_call_limit",
        ),
    ];
    for (agent, policy, spend, reason) in cases {
        s.post_ok(A, &format!("policies/{agent}"), policy).await;
        let before = host.calls();
        let (executed, reasons) = burst(&s, agent, CALLS, spend).await;
        assert_eq!(executed, N, "{agent}");
        assert_eq!(
            host.calls() - before,
            N,
            "{agent}: executions that reached the tool"
        );
        assert_eq!(reasons.len(), CALLS - N, "{agent}");
        assert!(reasons.iter().all(|r| r == reason), "{agent}: {reasons:?}");
        let m = s
            .get_ok(A, &format!("agents/{agent}/metrics?period=hour"))
            .await;
        assert_eq!(m["total_actions"], CALLS, "{agent}: {m}");
        assert_eq!(m["blocked_actions"], CALLS - N, "{agent}: {m}");
    }
}

#[tokio::test]
async fn identical_calls_run_once_and_replay_as_dedup() {
    let host = ToolHost::start().await;
    let s = start_allowing(&host).await;
    register(&s, A, "charge", &host.url, "agent:bot").await;
    let call = json!({"agent_id": "bot", "tool": "charge", "args": {"order": 7}, "spend_usd": 0.5});
    let first = s.post_ok(A, "ai/run", call.clone()).await;
    assert_eq!(
        first,
        json!({"ok": true, "allowed": true, "decision": "executed", "policy_reason": "ok",
               "risk_level": "low", "result": {"echo": {"order": 7}, "tool": "charge"}})
    );
    let again = s.post_ok(A, "ai/run", call).await;
    assert_eq!(again["decision"], "dedup");
    assert_eq!(again["result"], first["result"]);
    assert_eq!(host.calls(), 1);
    let m = s.get_ok(A, "agents/bot/metrics").await;
    assert_eq!(m["total_spend_usd"], 0.5, "{m}");
}

#[tokio::test]
async fn a_tool_host_off_the_allow_list_is_refused_naming_the_flag() {
    let host = ToolHost::start().await;
    let s = start().await;
    register(&s, A, "charge", &host.url, "global").await;
    let a = s
        .post_ok(A, "ai/run", json!({"agent_id": "bot", "tool": "charge"}))
        .await;
    assert_eq!(a["ok"], false, "{a}");
    assert_eq!(a["error_code"], "tool_host_not_allowed", "{a}");
    let message = a["result"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("--allow-tool-host {}", host.authority)),
        "{message}"
    );
    assert!(!a.to_string().contains(SECRET));
    assert_eq!(host.calls(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_client_hanging_up_mid_call_does_not_cut_the_tool_call_short() {
    let host = ToolHost::start_slow(Duration::from_millis(600)).await;
    let s = start_allowing(&host).await;
    register(&s, A, "charge", &host.url, "global").await;
    let call = json!({"agent_id": "bot", "tool": "charge", "args": {"order": 9}});
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let cut = impatient
        .post(format!("{}/ai/run", s.base))
        .bearer_auth(A)
        .json(&call)
        .send()
        .await;
    assert!(cut.is_err(), "the client gave up before the tool answered");
    // The call goes on without the client: it reaches the tool, and its result is recorded.
    let mut replay = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if host.calls() == 1 {
            replay = s.post_ok(A, "ai/run", call.clone()).await;
            break;
        }
    }
    assert_eq!(replay["decision"], "dedup", "{replay}");
    assert_eq!(replay["result"]["echo"], json!({"order": 9}));
    assert_eq!(host.calls(), 1);
    let logs = s.get_ok(A, "agents/bot/logs").await;
    let decisions: Vec<_> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].clone())
        .collect();
    assert_eq!(decisions, [json!("dedup"), json!("executed")]);
}

#[tokio::test]
async fn governed_leases_answer_blocked_with_reason_and_risk() {
    let s = start().await;
    s.post_ok(
        A,
        "policies/mailer",
        json!({"max_actions_per_hour": 1, "blocked_tools": ["delete_*"]}),
    )
    .await;
    let lease = |key: &str, tool: &str| json!({"key": key, "agent_id": "mailer", "tool": tool, "args": {"to": "a"}, "spend_usd": 0.1});
    let first = s
        .post_ok(A, "ai/lease", lease("welcome:1", "send_email"))
        .await;
    assert_eq!(first["status"], "acquired", "{first}");
    assert!(first.get("policy_reason").is_none() && first.get("risk_level").is_none());
    let limited = s
        .post_ok(A, "ai/lease", lease("welcome:2", "send_email"))
        .await;
    assert_eq!(limited["status"], "blocked", "{limited}");
    assert_eq!(limited["ok"], false);
    assert_eq!(limited["policy_reason"], "hourly_action_limit");
    assert_eq!(limited["risk_level"], "medium");
    assert!(limited.get("lease_id").is_none());
    assert!(limited.get("allowed").is_none() && limited.get("decision").is_none());
    let denied = s
        .post_ok(A, "ai/lease", lease("purge:1", "delete_user"))
        .await;
    assert_eq!(denied["status"], "blocked");
    assert_eq!(denied["policy_reason"], "tool_blocked");
    assert_eq!(denied["risk_level"], "high");
    assert_eq!(
        s.get_ok(A, "ai/status?key=welcome%3A2").await["status"],
        "not_found",
        "a blocked lease acquires nothing"
    );
    let plain = s.post_ok(A, "ai/lease", json!({"key": "plain"})).await;
    assert_eq!(plain["status"], "acquired");
    assert!(plain.get("risk_level").is_none());

    for (body, what) in [
        (
            json!({"key": "k", "agent_id": "mailer"}),
            "agent without tool",
        ),
        (
            json!({"key": "k", "tool": "send_email"}),
            "tool without agent",
        ),
        (json!({"key": "k", "args": {"a": 1}}), "args alone"),
        (json!({"key": "k", "spend_usd": 1.0}), "spend alone"),
        (
            json!({"key": "k", "agent_id": "mailer", "tool": "x", "spend_usd": "1"}),
            "spend type",
        ),
        (
            json!({"key": "k", "agent_id": "bad agent", "tool": "x"}),
            "agent id",
        ),
    ] {
        assert_invalid(&s.post(A, "ai/lease", body).await, what);
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_governance() {
    let host = ToolHost::start().await;
    let s = start_allowing(&host).await;
    s.post_ok(A, "policies/bot", json!({"max_actions_per_hour": 5}))
        .await;
    register(&s, A, "charge", &host.url, "global").await;
    s.post_ok(A, "ai/run", json!({"agent_id": "bot", "tool": "charge"}))
        .await;
    s.post_ok(A, "agents/bot/disable", json!({"reason": "A's call"}))
        .await;

    assert_eq!(s.get_ok(B, "policies").await, json!([]));
    assert_eq!(s.get(B, "policies/bot").await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get_ok(B, "tools").await, json!([]));
    assert_eq!(s.get(B, "tools/charge").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        delete(&s, B, "tools/charge").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get_ok(B, "agents/bot/logs").await, json!([]));
    assert_eq!(s.get_ok(B, "agents/bot/metrics").await["total_actions"], 0);
    // B's agent `bot` is not disabled, and A's tool does not exist for it.
    let b_call = s
        .post(B, "ai/run", json!({"agent_id": "bot", "tool": "charge"}))
        .await;
    assert_not_found(&b_call, "tool_not_found", "charge");
    register(&s, B, "charge", &host.url, "global").await;
    assert_eq!(
        s.post_ok(B, "ai/run", json!({"agent_id": "bot", "tool": "charge"}))
            .await["decision"],
        "executed"
    );
    assert_eq!(host.calls(), 2);

    assert_eq!(s.get_ok(A, "policies").await.as_array().unwrap().len(), 1);
    let a_logs = s.get_ok(A, "agents/bot/logs").await;
    assert_eq!(a_logs.as_array().unwrap().len(), 1, "{a_logs}");
    assert_eq!(
        s.post_ok(A, "ai/run", json!({"agent_id": "bot", "tool": "charge"}))
            .await["policy_reason"],
        "agent_disabled"
    );
}
