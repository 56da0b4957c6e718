//! Governance on the embedded engine: policies, templates, replays, exact limits under 200
//! concurrent calls, Rust function tools and `run_tool`. Every refusal reason, the audit log
//! and metrics are proven on every backend and store by the two-backend suite (`backends`).

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::models::Policy;
use onceonly_runtime::{Error, OnceOnly};

async fn governed(
    client: &OnceOnly,
    key: &str,
    agent: &str,
    tool: &str,
    spend: Option<f64>,
    runs: &Arc<AtomicUsize>,
) -> Result<String, Error> {
    let runs = Arc::clone(runs);
    let call = client
        .ai()
        .run_fn(key, || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(format!("done:{key}"))
        })
        .governed(agent, tool);
    match spend {
        Some(usd) => call.spend_usd(usd).await,
        None => call.await,
    }
}

#[tokio::test]
async fn policies_round_trip_and_templates_apply_overrides() {
    let client = OnceOnly::memory();
    let gov = client.gov();
    assert!(matches!(
        gov.get_policy("nobody").await,
        Err(Error::NotFound { .. })
    ));
    let stored = gov
        .upsert_policy(
            Policy::new("a1")
                .max_actions_per_hour(5)
                .blocked_tools(["rm_*"]),
        )
        .await
        .unwrap();
    assert_eq!(gov.get_policy("a1").await.unwrap(), stored);
    let mut overrides = serde_json::Map::new();
    overrides.insert("max_actions_per_hour".into(), 120.into());
    let t = gov
        .policy_from_template("a2", "support_bot")
        .overrides(overrides)
        .await
        .unwrap();
    assert_eq!(t.max_actions_per_hour, Some(120));
    assert!(t.allowed_tools.unwrap().contains(&"send_email".to_owned()));
    let all = gov.list_policies().await.unwrap();
    let ids: Vec<_> = all.iter().map(|p| p.agent_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert!(matches!(
        gov.policy_from_template("a3", "nope").await,
        Err(Error::Validation(_))
    ));
    let mut bad = Policy::new("a1");
    bad.max_spend_usd_per_day = Some(-1.0);
    assert!(matches!(
        gov.upsert_policy(bad).await,
        Err(Error::Validation(_))
    ));
    assert_eq!(
        gov.get_policy("a1").await.unwrap(),
        stored,
        "a refused upsert changes nothing"
    );
}

#[tokio::test]
async fn a_replay_is_a_dedup_decision_and_moves_no_counter() {
    let client = OnceOnly::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    client
        .gov()
        .upsert_policy(Policy::new("a").max_actions_per_hour(2))
        .await
        .unwrap();
    let first = governed(&client, "same", "a", "t", None, &runs)
        .await
        .unwrap();
    let again = governed(&client, "same", "a", "t", None, &runs)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    governed(&client, "other", "a", "t", None, &runs)
        .await
        .unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the replay did not use up the hourly cap"
    );
    let logs = client.gov().agent_logs("a").await.unwrap();
    let decisions: Vec<_> = logs.iter().rev().map(|l| l.decision.as_str()).collect();
    assert_eq!(decisions, ["executed", "dedup", "executed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_exactly_under_200_concurrent_calls() {
    for (policy, limit) in [
        (Policy::new("a").max_actions_per_hour(37), 37),
        (Policy::new("a").max_calls_per_tool("t", 23), 23),
        (
            Policy::new("a").max_spend_usd_per_day(1.0).price("t", 0.1),
            10,
        ),
    ] {
        let client = OnceOnly::memory();
        client.gov().upsert_policy(policy).await.unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..200).map(|i| {
            let (client, runs) = (client.clone(), Arc::clone(&runs));
            tokio::spawn(
                async move { governed(&client, &format!("k{i}"), "a", "t", None, &runs).await },
            )
        });
        let mut blocked = 0;
        for c in calls {
            if c.await.unwrap().is_err() {
                blocked += 1;
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), limit);
        assert_eq!(blocked, 200 - limit);
        let m = client.gov().agent_metrics("a").await.unwrap();
        assert_eq!(
            (m.total_actions, m.blocked_actions),
            (200, 200 - limit as u64)
        );
    }
}

#[tokio::test]
async fn bad_governance_input_is_refused_before_anything_happens() {
    let client = OnceOnly::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    for (agent, tool, spend) in [
        ("bad agent", "t", None),
        ("a", "bad tool", None),
        ("a", "t", Some(-1.0)),
        ("a", "t", Some(f64::NAN)),
    ] {
        let r = governed(&client, "k", agent, tool, spend, &runs).await;
        assert!(
            matches!(r, Err(Error::Validation(_))),
            "{agent} {tool} {spend:?}: {r:?}"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(client.gov().agent_logs("a").limit(0).await.is_err());
    assert!(client.gov().agent_logs("a").limit(501).await.is_err());
}

fn args(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect()
}

/// A client with the tool `charge`, a Rust function that counts its executions.
fn with_charge_tool() -> (OnceOnly, Arc<AtomicUsize>) {
    let client = OnceOnly::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    client
        .gov()
        .register_tool_fn("charge", move |args: serde_json::Map<_, _>| {
            let counter = Arc::clone(&counter);
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                if args.get("card").and_then(|c| c.as_str()) == Some("declined") {
                    return Err("card declined".to_owned());
                }
                let mut out = serde_json::Map::new();
                out.insert("charge_id".into(), format!("ch_{n}").into());
                Ok(out)
            }
        })
        .unwrap();
    (client, runs)
}

#[tokio::test]
async fn run_tool_executes_once_and_replays_identical_calls_as_dedup() {
    let (client, runs) = with_charge_tool();
    let call = |a| client.ai().run_tool("billing", "charge").args(a);
    let first = call(args(&[("order", "o1"), ("card", "ok")]))
        .await
        .unwrap();
    assert_eq!(
        (first.ok, first.allowed, first.decision.as_str()),
        (true, true, "executed")
    );
    assert_eq!(first.policy_reason.as_deref(), Some("ok"));
    // The same arguments in another order are the same call.
    let again = call(args(&[("card", "ok"), ("order", "o1")]))
        .await
        .unwrap();
    assert_eq!(again.decision, "dedup");
    assert_eq!(again.result, first.result);
    let other = call(args(&[("order", "o2"), ("card", "ok")]))
        .await
        .unwrap();
    assert_eq!(other.decision, "executed");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// The records of governed calls live under `gov-call/`: a caller can neither lease nor end
/// nor queue a key there, or it could pre-complete a call with a forged result and the tool
/// would never run. `run_tool` itself still records and replays its calls there.
#[tokio::test]
async fn callers_cannot_touch_the_keys_of_governed_calls() {
    let (client, runs) = with_charge_tool();
    let key = "gov-call/0123";
    let refused = |r: Result<_, Error>, what: &str| {
        assert!(
            matches!(&r, Err(Error::Validation(m)) if m.contains("reserved")),
            "{what}: {:?}",
            r.err()
        );
    };
    refused(client.ai().lease(key).await.map(drop), "lease");
    refused(client.ai().run(key).await.map(drop), "run");
    refused(
        client.ai().complete(key, "lease_x").await.map(drop),
        "complete",
    );
    refused(
        client.ai().fail(key, "lease_x", "code").await.map(drop),
        "fail",
    );
    refused(client.ai().cancel(key, "lease_x").await.map(drop), "cancel");
    refused(client.ai().extend(key, "lease_x").await.map(drop), "extend");
    let first = client.ai().run_tool("billing", "charge").await.unwrap();
    let again = client.ai().run_tool("billing", "charge").await.unwrap();
    assert_eq!(
        (first.decision.as_str(), again.decision.as_str()),
        ("executed", "dedup")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_tool_reports_its_error_and_runs_again_on_retry() {
    let (client, runs) = with_charge_tool();
    let declined = || {
        client
            .ai()
            .run_tool("billing", "charge")
            .args(args(&[("card", "declined")]))
    };
    let r = declined().await.unwrap();
    assert_eq!(
        (r.ok, r.allowed, r.decision.as_str()),
        (false, true, "executed")
    );
    assert_eq!(r.error_code.as_deref(), Some("tool_error"));
    assert_eq!(r.result.unwrap()["message"], "card declined");
    declined().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a failure is not replayed");
}

#[tokio::test]
async fn run_tool_refuses_unknown_disabled_and_blocked_tools() {
    let (client, runs) = with_charge_tool();
    let gov = client.gov();
    let missing = client.ai().run_tool("billing", "nope").await.unwrap();
    assert_eq!(
        (missing.allowed, missing.decision.as_str()),
        (false, "blocked")
    );
    assert_eq!(missing.policy_reason.as_deref(), Some("tool_not_found"));
    gov.upsert_policy(Policy::new("billing").blocked_tools(["char*"]))
        .await
        .unwrap();
    let blocked = client.ai().run_tool("billing", "charge").await.unwrap();
    assert_eq!(blocked.policy_reason.as_deref(), Some("tool_blocked"));
    assert_eq!(blocked.risk_level.as_deref(), Some("high"));

    let spec = onceonly_runtime::models::ToolSpec::new(
        "crm.lookup",
        "https://crm.example/lookup",
        "s3cret-key",
    )
    .enabled(false);
    let shown = gov.create_tool(spec).await.unwrap();
    assert_eq!(shown.secret_mask.as_deref(), Some("***key"));
    let off = client.ai().run_tool("support", "crm.lookup").await.unwrap();
    assert_eq!(off.policy_reason.as_deref(), Some("tool_disabled"));
    gov.toggle_tool("crm.lookup", true).await.unwrap();
    // Enabled, but its host is not on the allow-list: refused before any connection.
    let refused = client.ai().run_tool("support", "crm.lookup").await.unwrap();
    assert_eq!((refused.ok, refused.allowed), (false, true));
    assert_eq!(refused.error_code.as_deref(), Some("tool_host_not_allowed"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let reasons: Vec<_> = gov
        .agent_logs("support")
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|l| l.policy_reason.unwrap())
        .collect();
    assert_eq!(reasons, ["tool_disabled", "ok"]);
}

#[tokio::test]
async fn tools_resolve_in_the_agents_scope_before_global() {
    let client = OnceOnly::memory();
    let gov = client.gov();
    let global =
        onceonly_runtime::models::ToolSpec::new("notify", "https://global.example/", "secret-one");
    let own =
        onceonly_runtime::models::ToolSpec::new("notify", "https://own.example/", "secret-two")
            .scope_id("agent:bot");
    gov.create_tool(global).await.unwrap();
    gov.create_tool(own).await.unwrap();
    assert_eq!(gov.list_tools().await.unwrap().len(), 1);
    let mine = gov.get_tool("notify").scope_id("agent:bot").await.unwrap();
    assert_eq!(mine.url, "https://own.example/");
    let deleted = gov
        .delete_tool("notify")
        .scope_id("agent:bot")
        .await
        .unwrap();
    assert_eq!((deleted.ok, deleted.deleted.as_str()), (true, "notify"));
    assert!(matches!(
        gov.get_tool("notify").scope_id("agent:bot").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        gov.get_tool("bad name").await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        gov.list_tools().scope_id("team:x").await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_tool_limits_and_dedup_hold_under_200_concurrent_calls() {
    let (client, runs) = with_charge_tool();
    client
        .gov()
        .upsert_policy(Policy::new("billing").max_calls_per_tool("charge", 50))
        .await
        .unwrap();
    // 200 distinct calls: exactly 50 run.
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let a = args(&[("order", &format!("o{i}"))]);
                client
                    .ai()
                    .run_tool("billing", "charge")
                    .args(a)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut executed = 0;
    for c in calls {
        if c.await.unwrap().decision == "executed" {
            executed += 1;
        }
    }
    assert_eq!((executed, runs.load(Ordering::SeqCst)), (50, 50));

    // 200 identical calls of a fresh agent: one execution, 199 dedups.
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let a = args(&[("order", "same")]);
                client
                    .ai()
                    .run_tool("other", "charge")
                    .args(a)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut decisions = std::collections::BTreeMap::new();
    for c in calls {
        *decisions.entry(c.await.unwrap().decision).or_insert(0) += 1;
    }
    assert_eq!(decisions.get("executed"), Some(&1));
    assert_eq!(decisions.get("dedup"), Some(&199));
    assert_eq!(runs.load(Ordering::SeqCst), 51);
}

#[tokio::test]
async fn run_tool_writes_its_run_timeline() {
    let (client, _) = with_charge_tool();
    client
        .ai()
        .run_tool("billing", "charge")
        .args(args(&[("order", "o1")]))
        .run_id("run_42")
        .await
        .unwrap();
    let timeline = client.get_run_timeline("run_42").await.unwrap();
    let kinds: Vec<_> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["tool_call", "tool_result"]);
    assert_eq!(timeline.events[0].tool.as_deref(), Some("charge"));
    assert_eq!(timeline.events[1].status.as_deref(), Some("ok"));
}

/// `args.run_id` names a timeline as `metadata.run_id` does: a number by its digits, and a
/// value that could name none is refused before the tool runs (never a call whose timeline
/// is dropped without a word).
#[tokio::test]
async fn a_numeric_run_id_in_args_writes_its_timeline_and_other_types_are_refused() {
    let (client, runs) = with_charge_tool();
    let mut numeric = args(&[("order", "o1")]);
    numeric.insert("run_id".into(), 12345.into());
    client
        .ai()
        .run_tool("billing", "charge")
        .args(numeric)
        .await
        .unwrap();
    let timeline = client.get_run_timeline("12345").await.unwrap();
    let kinds: Vec<_> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["tool_call", "tool_result"]);

    let mut none = args(&[("order", "o3")]);
    none.insert("run_id".into(), serde_json::Value::Null);
    client
        .ai()
        .run_tool("billing", "charge")
        .args(none)
        .await
        .unwrap();
    for bad in [
        serde_json::json!({"x": 1}),
        serde_json::json!(true),
        serde_json::json!(""),
    ] {
        let mut a = args(&[("order", "o2")]);
        a.insert("run_id".into(), bad.clone());
        let refused = client.ai().run_tool("billing", "charge").args(a).await;
        assert!(
            matches!(refused, Err(Error::Validation(_))),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "a refused call never runs the tool"
    );
}

#[tokio::test]
async fn a_tool_on_a_host_not_allowed_is_never_charged() {
    let client = OnceOnly::memory();
    let gov = client.gov();
    gov.upsert_policy(
        Policy::new("support")
            .max_calls_per_tool("crm.lookup", 1)
            .price("crm.lookup", 0.5),
    )
    .await
    .unwrap();
    let spec = onceonly_runtime::models::ToolSpec::new(
        "crm.lookup",
        "https://crm.example/lookup",
        "s3cret-key",
    );
    gov.create_tool(spec).await.unwrap();
    // The engine allows no tool host: every call fails the same way, and none of them uses
    // up the one call a day the policy grants.
    for _ in 0..3 {
        let r = client.ai().run_tool("support", "crm.lookup").await.unwrap();
        assert_eq!((r.ok, r.allowed), (false, true));
        assert_eq!(r.error_code.as_deref(), Some("tool_host_not_allowed"));
        let message = r.result.unwrap()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("--allow-tool-host crm.example"),
            "{message}"
        );
    }
    let m = gov.agent_metrics("support").await.unwrap();
    assert_eq!((m.total_actions, m.blocked_actions), (3, 0));
    assert_eq!(m.total_spend_usd, 0.0);
}

/// An account keeps at most 10,000 documents of each governance kind: a new one past that is
/// refused with a clear error and nothing is stored, while replacing an existing one works.
#[tokio::test]
async fn governance_documents_per_account_are_capped() {
    let engine = onceonly_runtime::Engine::memory();
    for i in 0..10_000 {
        engine
            .disable_agent(&format!("agent-{i}"), None)
            .await
            .unwrap();
    }
    let refused = engine.disable_agent("agent-new", None).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Validation(m) if m.contains("10000 kill-switch states")),
        "{refused:?}"
    );
    // Replacing is always allowed; policies are a kind of their own.
    assert!(engine.enable_agent("agent-7").await.unwrap().is_enabled);
    let policy = Policy::new("agent-new");
    engine.upsert_policy(policy).await.unwrap();
}

/// A client with the tool `name`, a Rust function whose first call does `first` (panic, or
/// hang) and whose later calls answer `{}`, and the count of its calls.
fn with_tool_whose_first_call<F>(name: &str, first: F) -> (OnceOnly, Arc<AtomicUsize>)
where
    F: Fn() -> onceonly_runtime::BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let client = OnceOnly::memory();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let first = Arc::new(first);
    client
        .gov()
        .register_tool_fn(name, move |_: serde_json::Map<_, _>| {
            let run_first = (counter.fetch_add(1, Ordering::SeqCst) == 0).then(|| first());
            async move {
                if let Some(first) = run_first {
                    first.await;
                }
                Ok::<_, String>(serde_json::Map::new())
            }
        })
        .unwrap();
    (client, calls)
}

/// The identical call after a first one that went wrong: it must run the tool at once, not
/// wait for a record the first call left held.
async fn the_identical_call_runs_at_once(client: &OnceOnly, tool: &str, calls: &AtomicUsize) {
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), identical(client, tool))
        .await
        .expect("the identical call waited for a record held by nobody")
        .unwrap();
    let decided = (again.ok, again.decision.as_str());
    assert_eq!(decided, (true, "executed"), "{again:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

fn identical<'a>(
    client: &'a OnceOnly,
    tool: &str,
) -> onceonly_runtime::ai::Call<'a, onceonly_runtime::models::ToolCallRequest> {
    client
        .ai()
        .run_tool("bot", tool)
        .args(args(&[("page", "1")]))
}

/// A registered function that panics is the tool's failure: answered `ok: false` with
/// `tool_error`, and its record given back, so an identical call runs again (before, the
/// panic escaped and the record stayed held by nobody for five minutes).
#[tokio::test]
async fn a_tool_function_that_panics_is_a_failed_call_and_frees_its_record() {
    let (client, calls) =
        with_tool_whose_first_call("flaky", || Box::pin(async { panic!("out of ink") }));
    let failed = identical(&client, "flaky").await.unwrap();
    assert_eq!((failed.allowed, failed.ok), (true, false), "{failed:?}");
    assert_eq!(failed.error_code.as_deref(), Some("tool_error"));
    the_identical_call_runs_at_once(&client, "flaky", &calls).await;
}

/// A call dropped while its tool runs (the caller's timeout) gives its record back: an
/// identical call runs at once instead of waiting out the record's TTL.
#[tokio::test]
async fn a_tool_call_dropped_mid_call_frees_its_record() {
    let (client, calls) = with_tool_whose_first_call("slow", || {
        Box::pin(tokio::time::sleep(std::time::Duration::from_secs(600)))
    });
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        identical(&client, "slow").into_future(),
    )
    .await;
    assert!(cut.is_err(), "the first call was cut off: {cut:?}");
    the_identical_call_runs_at_once(&client, "slow", &calls).await;
}

/// Spends smaller than a micro-dollar count as one: a zero daily budget (the `read_only`
/// template's) lets none through, however small.
#[tokio::test]
async fn a_zero_budget_refuses_even_a_fraction_of_a_micro_dollar() {
    let (client, runs) = with_charge_tool();
    client
        .gov()
        .upsert_policy(Policy::new("frugal").max_spend_usd_per_day(0.0))
        .await
        .unwrap();
    let out = client
        .ai()
        .run_tool("frugal", "charge")
        .args(args(&[("order", "o1")]))
        .spend_usd(0.0000004)
        .await
        .unwrap();
    assert_eq!(
        (out.allowed, out.decision.as_str()),
        (false, "blocked"),
        "{out:?}"
    );
    assert_eq!(out.policy_reason.as_deref(), Some("daily_spend_exceeded"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// The kill switch stamps `disabled_at` from the engine's clock, to the millisecond, like
/// every other time the engine answers with.
#[tokio::test]
async fn disabled_at_comes_from_the_engine_clock() {
    use onceonly_runtime::time::ManualClock;
    use onceonly_runtime::{Engine, EngineConfig};
    let clock = ManualClock::new(1_796_000_000_123);
    let engine = Engine::with_config(
        onceonly_runtime::store::MemoryStore::new(),
        EngineConfig::default(),
        Arc::new(clock),
    );
    let off = engine.disable_agent("bot", Some("audit")).await.unwrap();
    let at = off.disabled_at.expect("disabled_at");
    assert_eq!(at.timestamp_millis(), 1_796_000_000_123);
    assert_eq!(at.timestamp_subsec_nanos() % 1_000_000, 0);
}

/// An agent id of `.` or `..` is refused for a new policy or kill-switch state: clients drop
/// such a URL segment, so it could be set but never reached again.
#[tokio::test]
async fn agent_ids_clients_cannot_route_are_refused_when_made() {
    let client = OnceOnly::memory();
    let gov = client.gov();
    for id in [".", ".."] {
        let policy = gov.upsert_policy(Policy::new(id)).await;
        assert!(
            matches!(policy, Err(Error::Validation(_))),
            "{id}: {policy:?}"
        );
        let off = gov.disable_agent(id, "test").await;
        assert!(matches!(off, Err(Error::Validation(_))), "{id}: {off:?}");
    }
    gov.disable_agent(".hidden-agent", "test").await.unwrap();
}

/// A policy or kill-switch state that an earlier release stored for `..` (as it was allowed
/// then) can still be changed and lifted: only new ones are refused.
#[tokio::test]
async fn states_stored_for_unroutable_ids_can_still_be_changed() {
    use onceonly_runtime::Engine;
    use onceonly_runtime::store::{MemoryStore, Store};
    let engine = Engine::new(MemoryStore::new());
    let as_doc = |v: serde_json::Value| v.as_object().unwrap().clone();
    let store = engine.store();
    store
        .put_doc(
            "gov/policy/..",
            as_doc(serde_json::json!({"agent_id": ".."})),
        )
        .await
        .unwrap();
    store
        .put_doc(
            "gov/agent/..",
            as_doc(serde_json::json!({"agent_id": "..", "is_enabled": false})),
        )
        .await
        .unwrap();
    let changed = engine
        .upsert_policy(Policy::new("..").max_actions_per_hour(5))
        .await
        .unwrap();
    assert_eq!(changed.max_actions_per_hour, Some(5));
    assert_eq!(
        engine.get_policy("..").await.unwrap().max_actions_per_hour,
        Some(5)
    );
    let on = engine.enable_agent("..").await.unwrap();
    assert!(on.is_enabled, "{on:?}");
    // Still refused where nothing was stored before.
    assert!(matches!(
        engine.upsert_policy(Policy::new(".")).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        engine.enable_agent(".").await,
        Err(Error::Validation(_))
    ));
}
