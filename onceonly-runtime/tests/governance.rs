//! Governance on the embedded engine: policies, templates, the kill switch, every refusal
//! reason of a governed `run_fn`, exact limits under concurrency, audit log and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::models::{MetricsPeriod, Policy};
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

fn reason_of(r: Result<String, Error>) -> String {
    match r {
        Err(Error::Blocked { reason, decision }) => {
            assert_eq!(decision, "blocked");
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
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
async fn every_refusal_reason_blocks_without_running_and_is_audited() {
    let client = OnceOnly::memory();
    let gov = client.gov();
    let runs = Arc::new(AtomicUsize::new(0));
    gov.upsert_policy(
        Policy::new("bot")
            .allowed_tools(["read_*", "send_email", "charge"])
            .blocked_tools(["read_secrets"])
            .max_calls_per_tool("send_email", 1)
            .max_spend_usd_per_day(1.0)
            .price("charge", 0.75),
    )
    .await
    .unwrap();
    let r = |k, t| governed(&client, k, "bot", t, None, &runs);
    assert_eq!(reason_of(r("k1", "read_secrets").await), "tool_blocked");
    assert_eq!(
        reason_of(r("k2", "delete_all").await),
        "tool_not_in_allowed_list"
    );
    r("k3", "send_email").await.unwrap();
    assert_eq!(reason_of(r("k4", "send_email").await), "tool_call_limit");
    r("k5", "charge").await.unwrap();
    assert_eq!(reason_of(r("k6", "charge").await), "daily_spend_exceeded");
    gov.disable_agent("bot", "investigating").await.unwrap();
    assert_eq!(reason_of(r("k7", "read_orders").await), "agent_disabled");
    gov.enable_agent("bot", "").await.unwrap();
    r("k7", "read_orders").await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3, "only allowed calls ran");

    gov.upsert_policy(Policy::new("hourly").max_actions_per_hour(1))
        .await
        .unwrap();
    governed(&client, "h1", "hourly", "t", None, &runs)
        .await
        .unwrap();
    let h = governed(&client, "h2", "hourly", "t", None, &runs).await;
    assert_eq!(reason_of(h), "hourly_action_limit");

    let logs = gov.agent_logs("bot").limit(500).await.unwrap();
    let reasons: Vec<_> = logs
        .iter()
        .rev()
        .map(|l| l.policy_reason.clone().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "tool_blocked",
            "tool_not_in_allowed_list",
            "ok",
            "tool_call_limit",
            "ok",
            "daily_spend_exceeded",
            "agent_disabled",
            "ok"
        ]
    );
    let blocked = logs
        .iter()
        .find(|l| l.policy_reason.as_deref() == Some("agent_disabled"))
        .unwrap();
    assert_eq!(
        (blocked.allowed, blocked.decision.as_str()),
        (false, "blocked")
    );
    assert_eq!(blocked.risk_level.as_deref(), Some("high"));
    let m = gov
        .agent_metrics("bot")
        .period(MetricsPeriod::Hour)
        .await
        .unwrap();
    assert_eq!((m.total_actions, m.blocked_actions), (8, 5));
    assert_eq!(m.total_spend_usd, 0.75);
    assert_eq!(m.top_tools[0].tool, "charge");
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
