//! Reads that scan a whole log a slice at a time (the run list, agent metrics) see every entry
//! once, across many slices.

use onceonly_runtime::models::{Policy, RunEvent};
use onceonly_runtime::{Error, OnceOnly};

#[tokio::test]
async fn the_run_list_covers_every_run_across_slices() {
    let client = OnceOnly::memory();
    // 700 events over 300 runs: run r{i} gets events i, i + 300 (and i + 600 for i < 100).
    for n in 0..700 {
        let event = RunEvent {
            run_id: format!("r{:03}", n % 300),
            kind: "step".into(),
            status: Some(format!("s{n}")),
            ..RunEvent::default()
        };
        client.post_event(event).await.unwrap();
    }
    let list = client.list_runs().limit(500).await.unwrap();
    assert_eq!(list.total, 300);
    assert_eq!(list.items.len(), 300);
    // Most recently active first: r099 (event 699), then r098, ...; each with its own count.
    assert_eq!(list.items[0].run_id, "r099");
    assert_eq!(list.items[0].last_status.as_deref(), Some("s699"));
    assert_eq!(list.items[0].events_count, 3);
    let last = list.items.last().unwrap();
    assert_eq!((last.run_id.as_str(), last.events_count), ("r100", 2));
    let page = client.list_runs().limit(2).offset(299).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].run_id, "r100");
    let some = client.list_runs().q("r29").await.unwrap();
    assert_eq!(some.total, 10, "r290 to r299");
}

#[tokio::test]
async fn agent_metrics_count_every_decision_across_slices() {
    let client = OnceOnly::memory();
    client
        .gov()
        .upsert_policy(Policy::new("many").blocked_tools(["refund"]))
        .await
        .unwrap();
    for i in 0..600 {
        let (tool, key) = if i % 3 == 0 {
            ("refund", "r")
        } else {
            ("lookup", "l")
        };
        let _ = client
            .ai()
            .run_fn(format!("{key}{i}"), || async { Ok::<_, Error>(1) })
            .governed("many", tool)
            .await;
    }
    let m = client.gov().agent_metrics("many").await.unwrap();
    assert_eq!((m.total_actions, m.blocked_actions), (600, 200));
    assert_eq!(m.top_tools[0].tool, "lookup");
    assert_eq!(m.top_tools[0].count, 400);
}
