//! Runs of actions over HTTP: a key-mode `/ai/run` whose `metadata.actions` the server's
//! engine executes, against a tool on loopback that only answers calls `VerifySignatureLayer`
//! accepts. A real server, the runtime's HTTP client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::routing::post;
use onceonly_runtime::models::{AiResult, Policy, RunStatus, ToolSpec};
use onceonly_runtime::{Error, JsonMap, OnceOnly};
use onceonly_server::testing::TestServer;
use onceonly_tower::signature::{SignatureVerifier, VerifySignatureLayer};
use serde_json::{Value, json};

const SECRET: &str = "jobs-tool-secret";
const WAIT: Duration = Duration::from_secs(30);

/// A tool endpoint on loopback behind `VerifySignatureLayer`: it echoes each call it is let
/// through and keeps its body.
struct ToolHost {
    url: String,
    authority: String,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl ToolHost {
    async fn start() -> ToolHost {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let app = axum::Router::new()
            .route(
                "/tool",
                post(move |body: String| async move {
                    let call: Value = serde_json::from_str(&body).unwrap();
                    seen.lock().unwrap().push(call.clone());
                    let answer = json!({"echo": call["args"], "tool": call["tool"]});
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        answer.to_string(),
                    )
                }),
            )
            .route_layer(VerifySignatureLayer::new(SignatureVerifier::new(SECRET)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ToolHost {
            url: format!("http://{addr}/tool"),
            authority: addr.to_string(),
            calls,
        }
    }

    fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }
}

/// A server that may call `host`, and a client of it with the tools `crm.note` and
/// `email.send` registered (both served by `host`).
async fn server_for(host: &ToolHost) -> (TestServer, OnceOnly) {
    let authority = host.authority.clone();
    let server = TestServer::start_with(move |mut config| {
        config.engine = config.engine.clone().allow_tool_host(authority);
        config
    })
    .await;
    let client = server.client();
    for name in ["crm.note", "email.send"] {
        let spec = ToolSpec::new(name, host.url.clone(), SECRET).max_retries(0);
        client.gov().create_tool(spec).await.unwrap();
    }
    (server, client)
}

fn run_of(agent: &str, actions: Value) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("agent_id".into(), agent.into());
    m.insert("actions".into(), actions);
    m
}

fn three_actions() -> Value {
    json!([
        {"tool": "crm.note", "args": {"n": 1}},
        {"tool": "email.send", "args": {"to": "ana@example.com"}},
        {"tool": "crm.note", "args": {"n": 2}},
    ])
}

async fn run_and_wait(client: &OnceOnly, key: &str, metadata: JsonMap) -> AiResult {
    client
        .ai()
        .run_and_wait(key)
        .metadata(metadata)
        .timeout(WAIT)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_of_actions_queued_over_http_executes_on_the_server() {
    let host = ToolHost::start().await;
    let (_server, client) = server_for(&host).await;
    let r = run_and_wait(&client, "job:http", run_of("ops-bot", three_actions())).await;
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    let result = r.result.clone().unwrap();
    assert_eq!(result["dry_run"], false);
    let actions = result["actions"].as_array().unwrap();
    let decisions: Vec<_> = actions.iter().map(|a| a["decision"].clone()).collect();
    assert_eq!(decisions, ["executed", "executed", "executed"]);
    assert_eq!(actions[1]["result"]["echo"]["to"], "ana@example.com");
    assert_eq!(actions[1]["result"]["echo"]["run_id"], "job:http");

    let calls = host.calls();
    let tools: Vec<_> = calls.iter().map(|c| c["tool"].clone()).collect();
    assert_eq!(tools, ["crm.note", "email.send", "crm.note"]);
    assert!(calls.iter().all(|c| c["agent_id"] == "ops-bot"));

    // Asking again answers the stored result without calling anything.
    let again = run_and_wait(&client, "job:http", run_of("ops-bot", three_actions())).await;
    assert_eq!(again.result, r.result);
    assert_eq!(host.calls().len(), 3);
    let m = client.gov().agent_metrics("ops-bot").await.unwrap();
    assert_eq!(m.total_actions, 3);
}

#[tokio::test]
async fn a_blocked_action_over_http_reads_failed_policy_blocked() {
    let host = ToolHost::start().await;
    let (_server, client) = server_for(&host).await;
    client
        .gov()
        .upsert_policy(Policy::new("ops-bot").blocked_tools(["email.send"]))
        .await
        .unwrap();
    let r = run_and_wait(&client, "job:blocked", run_of("ops-bot", three_actions())).await;
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("policy_blocked"));
    let status = client.ai().status("job:blocked").await.unwrap();
    assert_eq!(
        (status.status, status.error_code.as_deref()),
        (RunStatus::Failed, Some("policy_blocked"))
    );
    let tools: Vec<_> = host.calls().iter().map(|c| c["tool"].clone()).collect();
    assert_eq!(tools, ["crm.note"], "nothing after the blocked action ran");

    let timeline = client.get_run_timeline("job:blocked").await.unwrap();
    let kinds: Vec<_> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "tool_call",
            "tool_result",
            "tool_call",
            "run_finished"
        ]
    );
    assert_eq!(timeline.events[3].status.as_deref(), Some("blocked"));
}

#[tokio::test]
async fn a_malformed_run_over_http_is_a_validation_error() {
    let host = ToolHost::start().await;
    let (_server, client) = server_for(&host).await;
    let r = client
        .ai()
        .run("job:bad")
        .metadata(run_of("ops-bot", json!([])))
        .await;
    assert!(matches!(r, Err(Error::Validation(_))), "{r:?}");
    let status = client.ai().status("job:bad").await.unwrap();
    assert_eq!(status.status, RunStatus::NotFound);
}
