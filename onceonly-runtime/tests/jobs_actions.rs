//! Runs of actions on the embedded engine: key-mode runs whose `metadata.actions` the engine
//! executes itself, as governed calls of a signed HTTP tool served on loopback and of Rust
//! function tools. Each call's signature is checked on the tool's side and every call counted.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use onceonly_runtime::engine::{Account, Plan};
use onceonly_runtime::models::{AiResult, Policy, RunStatus, ToolSpec};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::{ManualClock, SystemClock};
use onceonly_runtime::{Engine, EngineConfig, Error, JsonMap, OnceOnly};
use serde_json::{Value, json};

const SECRET: &str = "jobs-tool-secret";
const WAIT: Duration = Duration::from_secs(30);

/// Tool endpoints on loopback: `/ok` echoes the call, `/fail` answers 500. Both refuse a call
/// whose signature, algorithm or timestamp is wrong, and record every call they accept.
struct ToolHost {
    base: String,
    authority: String,
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    refused: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct HostState {
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    refused: Arc<AtomicUsize>,
}

fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let fresh = text("x-onceonly-timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| onceonly_runtime::__private::unix_now().abs_diff(t) <= 300);
    text("x-onceonly-signature-alg") == Some("hmac_sha256")
        && fresh
        && text("x-onceonly-signature").is_some_and(|sig| {
            onceonly_runtime::__private::signature_matches(SECRET.as_bytes(), body, sig)
        })
}

async fn endpoint(
    path: &str,
    state: HostState,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    if !signed(&headers, &body) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        let detail = json!({"detail": "bad signature"}).to_string();
        return (StatusCode::UNAUTHORIZED, json_type, detail);
    }
    let call: Value = serde_json::from_slice(&body).unwrap();
    state
        .accepted
        .lock()
        .unwrap()
        .push((path.to_owned(), call.clone()));
    if path == "/fail" {
        let detail = json!({"detail": "the tool broke"}).to_string();
        return (StatusCode::INTERNAL_SERVER_ERROR, json_type, detail);
    }
    let answer = json!({"echo": call["args"], "tool": call["tool"]}).to_string();
    (StatusCode::OK, json_type, answer)
}

impl ToolHost {
    async fn start() -> ToolHost {
        let state = HostState {
            accepted: Arc::default(),
            refused: Arc::default(),
        };
        let (accepted, refused) = (Arc::clone(&state.accepted), Arc::clone(&state.refused));
        let app = axum::Router::new()
            .route(
                "/ok",
                post(
                    |State(s): State<HostState>, h: HeaderMap, b: Bytes| async move {
                        endpoint("/ok", s, h, b).await
                    },
                ),
            )
            .route(
                "/fail",
                post(
                    |State(s): State<HostState>, h: HeaderMap, b: Bytes| async move {
                        endpoint("/fail", s, h, b).await
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ToolHost {
            base: format!("http://{addr}"),
            authority: addr.to_string(),
            accepted,
            refused,
        }
    }

    /// The calls accepted so far: which endpoint, and the body.
    fn calls(&self) -> Vec<(String, Value)> {
        self.accepted.lock().unwrap().clone()
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// An embedded client whose engine may call `host`, with its tools `crm.note` and
/// `email.send` (`/ok`) and `crm.broken` (`/fail`) registered.
async fn client_of(host: &ToolHost) -> OnceOnly {
    let config = EngineConfig::default().allow_tool_host(host.authority.clone());
    let engine = Engine::try_with_config(MemoryStore::new(), config, Arc::new(SystemClock))
        .expect("a loopback authority is a valid tool host");
    let client = OnceOnly::from_backend(engine);
    for (name, path) in [
        ("crm.note", "/ok"),
        ("email.send", "/ok"),
        ("crm.broken", "/fail"),
    ] {
        let spec = ToolSpec::new(name, format!("{}{path}", host.base), SECRET).max_retries(0);
        client.gov().create_tool(spec).await.unwrap();
    }
    client
}

/// The metadata of a run of `actions` by `agent`.
fn run_of(agent: &str, actions: Value) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("agent_id".into(), agent.into());
    m.insert("actions".into(), actions);
    m
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

/// The `actions` list of a completed run's result.
fn results(r: &AiResult) -> Vec<Value> {
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    r.result.as_ref().expect("a completed run has a result")["actions"]
        .as_array()
        .expect("the result lists the actions")
        .clone()
}

fn three_actions() -> Value {
    json!([
        {"tool": "crm.note", "args": {"n": 1}},
        {"tool": "email.send", "args": {"to": "ana@example.com"}, "spend_usd": 0.5},
        {"tool": "crm.note", "args": {"n": 2}},
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_of_allowed_actions_calls_each_tool_once_and_completes_with_their_results() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    // 20 callers ask for the same run at once: it is queued once and executed once.
    let askers: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                run_and_wait(&client, "job:1", run_of("ops-bot", three_actions())).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for asker in askers {
        answers.push(asker.await.unwrap());
    }
    let first = answers.pop().unwrap();
    assert!(answers.iter().all(|a| a.result == first.result));

    let out = results(&first);
    assert_eq!(first.result.as_ref().unwrap()["dry_run"], false);
    assert_eq!(out.len(), 3);
    for (i, (tool, args)) in [
        ("crm.note", json!({"n": 1})),
        ("email.send", json!({"to": "ana@example.com"})),
        ("crm.note", json!({"n": 2})),
    ]
    .into_iter()
    .enumerate()
    {
        let r = &out[i];
        assert_eq!(
            (&r["ok"], &r["allowed"], &r["decision"]),
            (&json!(true), &json!(true), &json!("executed")),
            "action {i}: {r}"
        );
        assert_eq!(r["result"]["tool"], tool, "action {i}");
        let mut want = args.as_object().unwrap().clone();
        // The engine files every action under the run's id, the key by default.
        want.insert("run_id".into(), "job:1".into());
        assert_eq!(r["result"]["echo"], Value::Object(want), "action {i}");
    }
    let calls = host.calls();
    let tools: Vec<_> = calls.iter().map(|(_, c)| c["tool"].clone()).collect();
    assert_eq!(tools, ["crm.note", "email.send", "crm.note"], "in order");
    assert!(calls.iter().all(|(_, c)| c["agent_id"] == "ops-bot"));
    assert!(calls.iter().all(|(_, c)| c["run_id"] == "job:1"));
    assert_eq!(host.refused(), 0, "every call was signed");

    // Asking again answers the stored outcome: no new call.
    let again = run_and_wait(&client, "job:1", run_of("ops-bot", three_actions())).await;
    assert_eq!(again.result, first.result);
    // A caller that only knows the key gets the same.
    let bare = client
        .ai()
        .run_and_wait("job:1")
        .timeout(WAIT)
        .await
        .unwrap();
    assert_eq!(bare.result, first.result);
    assert_eq!(host.calls().len(), 3);

    let m = client.gov().agent_metrics("ops-bot").await.unwrap();
    assert_eq!((m.total_actions, m.blocked_actions), (3, 0));
    assert_eq!(m.total_spend_usd, 0.5);

    // The same action in another run is another call.
    let other = run_and_wait(
        &client,
        "job:2",
        run_of("ops-bot", json!([{"tool": "crm.note", "args": {"n": 1}}])),
    )
    .await;
    assert_eq!(results(&other)[0]["decision"], "executed");
    assert_eq!(host.calls().len(), 4);
}

#[tokio::test]
async fn a_blocked_action_fails_the_run_and_stops_it_there() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    client
        .gov()
        .upsert_policy(Policy::new("ops-bot").blocked_tools(["email.*"]))
        .await
        .unwrap();
    let r = client
        .ai()
        .run_and_wait("job:blocked")
        .metadata(run_of("ops-bot", three_actions()))
        .run_id("run-blocked")
        .timeout(WAIT)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("policy_blocked"));
    assert!(!r.retryable, "a blocked run fails for good");

    let calls = host.calls();
    assert_eq!(calls.len(), 1, "only the first action reached a tool");
    assert_eq!(calls[0].1["tool"], "crm.note");
    assert_eq!(calls[0].1["args"]["n"], 1);

    let timeline = client.get_run_timeline("run-blocked").await.unwrap();
    let steps: Vec<_> = timeline
        .events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.tool.as_deref().unwrap_or("-"),
                e.status.as_deref().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("run_started", "-", "in_progress"),
            ("tool_call", "crm.note", "executed"),
            ("tool_result", "crm.note", "ok"),
            ("tool_call", "email.send", "blocked"),
            ("run_finished", "-", "failed"),
        ]
    );
    assert_eq!(timeline.events[3].message.as_deref(), Some("tool_blocked"));
    let finished = timeline.events[4].data.as_ref().unwrap();
    assert_eq!(finished["error_code"], "policy_blocked");

    let decisions: Vec<_> = client
        .gov()
        .agent_logs("ops-bot")
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|l| l.decision)
        .collect();
    assert_eq!(decisions, ["executed", "blocked"]);
    // Asking again does not run it again.
    let again = run_and_wait(&client, "job:blocked", run_of("ops-bot", three_actions())).await;
    assert_eq!(again.error_code.as_deref(), Some("policy_blocked"));
    assert_eq!(host.calls().len(), 1);
}

#[tokio::test]
async fn a_failing_tool_fails_the_run_with_its_code() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    let actions = json!([
        {"tool": "crm.note", "args": {"n": 1}},
        {"tool": "crm.broken"},
        {"tool": "crm.note", "args": {"n": 2}},
    ]);
    let r = run_and_wait(&client, "job:broken", run_of("ops-bot", actions)).await;
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("tool_http_error"));
    let paths: Vec<_> = host.calls().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/ok", "/fail"], "the third action never ran");

    let timeline = client.get_run_timeline("job:broken").await.unwrap();
    let last_result = timeline
        .events
        .iter()
        .rfind(|e| e.kind == "tool_result")
        .unwrap();
    assert_eq!(last_result.tool.as_deref(), Some("crm.broken"));
    assert_eq!(last_result.status.as_deref(), Some("error"));
    let finished = timeline.events.last().unwrap();
    assert_eq!(finished.kind, "run_finished");
    assert_eq!(
        finished.data.as_ref().unwrap()["error_code"],
        "tool_http_error"
    );
}

#[tokio::test]
async fn a_dry_run_decides_without_calling_auditing_or_counting() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    client
        .gov()
        .upsert_policy(
            Policy::new("ops-bot")
                .blocked_tools(["email.*"])
                .max_calls_per_tool("crm.note", 1)
                .max_spend_usd_per_day(1.0),
        )
        .await
        .unwrap();
    let mut m = run_of(
        "ops-bot",
        json!([
            {"tool": "crm.note", "args": {"n": 1}, "spend_usd": 1.0},
            {"tool": "email.send"},
            {"tool": "nowhere"},
        ]),
    );
    m.insert("dry_run".into(), "true".into());
    let r = run_and_wait(&client, "job:dry", m).await;
    let out = results(&r);
    assert_eq!(r.result.as_ref().unwrap()["dry_run"], true);
    assert_eq!(
        (&out[0]["allowed"], &out[0]["decision"]),
        (&json!(true), &json!("dry_run"))
    );
    assert_eq!(
        (&out[1]["allowed"], &out[1]["policy_reason"]),
        (&json!(false), &json!("tool_blocked"))
    );
    assert_eq!(out[2]["policy_reason"], "tool_not_found");
    assert!(
        out.iter()
            .all(|a| a.get("result").is_none_or(Value::is_null))
    );
    assert!(host.calls().is_empty(), "nothing was executed");
    assert!(client.gov().agent_logs("ops-bot").await.unwrap().is_empty());
    let m = client.gov().agent_metrics("ops-bot").await.unwrap();
    assert_eq!((m.total_actions, m.total_spend_usd), (0, 0.0));

    // The limits the dry run looked at are all still free: the real call takes them.
    let real = run_and_wait(
        &client,
        "job:real",
        run_of(
            "ops-bot",
            json!([{"tool": "crm.note", "args": {"n": 1}, "spend_usd": 1.0}]),
        ),
    )
    .await;
    assert_eq!(results(&real)[0]["decision"], "executed");
    assert_eq!(host.calls().len(), 1);
}

#[tokio::test]
async fn a_malformed_run_is_refused_and_nothing_is_queued() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    let too_many: Vec<_> = (0..51).map(|_| json!({"tool": "crm.note"})).collect();
    let mut no_agent = JsonMap::new();
    no_agent.insert("actions".into(), json!([{"tool": "crm.note"}]));
    let bad_agent = run_of("ops bot", json!([{"tool": "crm.note"}]));
    let cases = [
        ("no agent_id", no_agent, "agent_id"),
        ("a bad agent id", bad_agent, "agent"),
        ("no actions", run_of("ops-bot", json!([])), "0 actions"),
        (
            "51 actions",
            run_of("ops-bot", json!(too_many)),
            "51 actions",
        ),
        (
            "not a list",
            run_of("ops-bot", json!({"tool": "crm.note"})),
            "list",
        ),
        (
            "a bad tool name",
            run_of("ops-bot", json!([{"tool": "crm note"}])),
            "action 0",
        ),
        (
            "no tool",
            run_of("ops-bot", json!([{"args": {}}])),
            "action 0",
        ),
        (
            "args not an object",
            run_of(
                "ops-bot",
                json!([{"tool": "crm.note"}, {"tool": "crm.note", "args": [1]}]),
            ),
            "action 1",
        ),
        (
            "a negative spend",
            run_of("ops-bot", json!([{"tool": "crm.note", "spend_usd": -1}])),
            "action 0",
        ),
        (
            "args naming another run",
            run_of(
                "ops-bot",
                json!([{"tool": "crm.note", "args": {"run_id": "other"}}]),
            ),
            "run_id",
        ),
    ];
    for (i, (what, metadata, says)) in cases.into_iter().enumerate() {
        let key = format!("job:bad:{i}");
        match client.ai().run(key.as_str()).metadata(metadata).await {
            Err(Error::Validation(why)) => assert!(why.contains(says), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
        let status = client.ai().status(&key).await.unwrap();
        assert_eq!(status.status, RunStatus::NotFound, "{what}: nothing queued");
    }
    assert!(host.calls().is_empty());
}

#[tokio::test]
async fn limits_hold_across_runs() {
    let host = ToolHost::start().await;
    let client = client_of(&host).await;
    client
        .gov()
        .upsert_policy(Policy::new("ops-bot").max_calls_per_tool("crm.note", 1))
        .await
        .unwrap();
    let note = |n: u32| run_of("ops-bot", json!([{"tool": "crm.note", "args": {"n": n}}]));
    let first = run_and_wait(&client, "job:a", note(1)).await;
    assert_eq!(results(&first)[0]["decision"], "executed");
    let second = run_and_wait(&client, "job:b", note(2)).await;
    assert_eq!(second.status, RunStatus::Failed, "{second:?}");
    assert_eq!(second.error_code.as_deref(), Some("policy_blocked"));
    assert_eq!(host.calls().len(), 1);
    let timeline = client.get_run_timeline("job:b").await.unwrap();
    let refusal = timeline
        .events
        .iter()
        .find(|e| e.kind == "tool_call")
        .unwrap();
    assert_eq!(refusal.message.as_deref(), Some("tool_call_limit"));
}

#[tokio::test]
async fn keys_with_a_star_are_runs_not_patterns() {
    let client = OnceOnly::memory();
    let runs = register_charge(&client);
    for key in ["job*1", "job*", "job-2"] {
        let actions = json!([{"tool": "charge", "args": {"order": key}}]);
        let r = run_and_wait(&client, key, run_of("billing", actions)).await;
        assert_eq!(results(&r)[0]["decision"], "executed", "{key}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

/// Registers the Rust function tool `charge`, which counts its calls and fails for the card
/// `declined`.
fn register_charge(client: &OnceOnly) -> Arc<AtomicUsize> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    client
        .gov()
        .register_tool_fn("charge", move |args: JsonMap| {
            let counter = Arc::clone(&counter);
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                if args.get("card").and_then(Value::as_str) == Some("declined") {
                    return Err("card declined".to_owned());
                }
                let mut out = JsonMap::new();
                out.insert("charge_id".into(), format!("ch_{n}").into());
                Ok(out)
            }
        })
        .unwrap();
    runs
}

#[tokio::test]
async fn rust_function_tools_run_as_actions() {
    let client = OnceOnly::memory();
    let runs = register_charge(&client);
    // The second action is the first one again: within a run, identical calls are one call.
    let actions = json!([
        {"tool": "charge", "args": {"order": "o1"}},
        {"tool": "charge", "args": {"order": "o1"}},
        {"tool": "charge", "args": {"order": "o2"}},
    ]);
    let r = run_and_wait(&client, "job:charges", run_of("billing", actions)).await;
    let out = results(&r);
    let decisions: Vec<_> = out.iter().map(|a| a["decision"].clone()).collect();
    assert_eq!(decisions, ["executed", "dedup", "executed"]);
    assert_eq!(out[0]["result"], json!({"charge_id": "ch_1"}));
    assert_eq!(out[1]["result"], out[0]["result"]);
    assert_eq!(out[2]["result"], json!({"charge_id": "ch_2"}));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let declined = json!([{"tool": "charge", "args": {"card": "declined"}}]);
    let r = run_and_wait(&client, "job:declined", run_of("billing", declined)).await;
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("tool_error"));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_run_the_plan_cannot_pay_for_fails_with_limit_reached() {
    // Queuing the run takes one `ai` unit and each executed call one more: two in all here.
    let root = Engine::memory();
    let account = Account::tenant("small", Plan::new("small").ai_limit(2));
    let client = OnceOnly::from_backend(root.tenant(account).unwrap());
    let runs = register_charge(&client);
    let actions = json!([
        {"tool": "charge", "args": {"order": "o1"}},
        {"tool": "charge", "args": {"order": "o2"}},
    ]);
    let r = run_and_wait(&client, "job:over", run_of("billing", actions)).await;
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("limit_reached"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn results_too_large_to_store_fail_the_run_for_good() {
    let mut config = EngineConfig::default();
    config.max_result_bytes = 256;
    let engine = Engine::with_config(MemoryStore::new(), config, Arc::new(SystemClock));
    let client = OnceOnly::from_backend(engine);
    let runs = register_charge(&client);
    let actions: Vec<_> = (0..4)
        .map(|i| json!({"tool": "charge", "args": {"order": format!("o{i}")}}))
        .collect();
    let r = run_and_wait(&client, "job:big", run_of("billing", json!(actions))).await;
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some("result_not_stored"));
    assert!(!r.retryable);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[test]
fn a_run_whose_execution_stopped_starts_again_when_someone_waits_on_it() {
    let clock = ManualClock::default();
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default(),
        Arc::new(clock.clone()),
    );
    let client = OnceOnly::from_backend(engine);
    let calls = Arc::new(AtomicUsize::new(0));
    let hang = Arc::new(AtomicBool::new(true));
    let entered = Arc::new(tokio::sync::Notify::new());
    let (c, h, e) = (Arc::clone(&calls), Arc::clone(&hang), Arc::clone(&entered));
    client
        .gov()
        .register_tool_fn("step", move |args: JsonMap| {
            let (calls, hang, entered) = (Arc::clone(&c), Arc::clone(&h), Arc::clone(&e));
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if args["n"] == 2 && hang.load(Ordering::SeqCst) {
                    entered.notify_one();
                    std::future::pending::<()>().await;
                }
                Ok::<_, String>(args)
            }
        })
        .unwrap();
    let actions = || {
        run_of(
            "ops-bot",
            json!([{"tool": "step", "args": {"n": 1}}, {"tool": "step", "args": {"n": 2}}]),
        )
    };

    // The first process queues the run and stops while its second action runs.
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async {
        client
            .ai()
            .run("job:resumed")
            .metadata(actions())
            .await
            .unwrap();
        entered.notified().await;
    });
    first.shutdown_background();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Once the leases of the run and of its unfinished call have run out, the next `run`
    // of the key starts it again: the finished action is not repeated.
    hang.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(301));
    let second = tokio::runtime::Runtime::new().unwrap();
    // A caller that only waits on the key resumes it too (it does not call `run`), and the
    // run keeps its own metadata.
    let resumed = client.ai().wait("job:resumed").timeout(WAIT);
    let r = second.block_on(resumed.into_future()).unwrap();
    let decisions: Vec<_> = results(&r).iter().map(|a| a["decision"].clone()).collect();
    assert_eq!(decisions, ["dedup", "executed"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
