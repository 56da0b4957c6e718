//! Run timelines and the account's recent events.

use super::*;

/// The engine writes `run_started` and `run_finished`; posted events join the same
/// timeline, oldest first; the account log lists them newest first.
pub async fn run_timeline_events<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let mut md = JsonMap::new();
    md.insert("run_id".into(), "run-1".into());
    md.insert("agent_id".into(), "bot".into());
    let l = engine.lease(lease("job").metadata(md)).await.unwrap();
    engine
        .post_event(RunEvent {
            run_id: " run-1 ".into(),
            kind: "tool_call".into(),
            tool: Some("send_email".into()),
            ..RunEvent::default()
        })
        .await
        .unwrap();
    let mut req = CompleteRequest::new(
        "job",
        l.lease_id.unwrap(),
        result(serde_json::json!({"ok": 1})),
    );
    req.result_hash = Some("h".into());
    engine.complete(req.clone()).await.unwrap();
    engine.complete(req).await.unwrap();
    let t = engine.run_timeline("run-1", 100, 0).await.unwrap();
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["run_started", "tool_call", "run_finished"],
        "a retried complete writes no second run_finished"
    );
    assert_eq!(t.total, 3);
    assert_eq!(t.events[0].agent_id.as_deref(), Some("bot"));
    assert_eq!(t.events[2].status.as_deref(), Some("completed"));
    assert!(t.events.iter().all(|e| e.id.is_some() && e.ts.is_some()));
    assert_eq!(
        engine.run_timeline("run-1", 1, 1).await.unwrap().events[0].kind,
        "tool_call"
    );

    // Key-mode runs default their run id to the key and start when a worker claims them;
    // cancel reads as cancelled. Attaching to a queued run writes nothing.
    let run = engine.run(lease("report:1")).await.unwrap();
    let again = engine.run(lease("report:1")).await.unwrap();
    assert!(run.queued && again.queued, "{run:?} {again:?}");
    let job = engine
        .claim_job(crate::models::ClaimRequest::new("report:1"))
        .await
        .unwrap()
        .expect("the queued run");
    engine
        .cancel(CancelRequest::new("report:1", job.lease_id, None))
        .await
        .unwrap();
    let t = engine.run_timeline("report:1", 100, 0).await.unwrap();
    assert_eq!(t.events.len(), 2);
    assert_eq!(t.events[1].status.as_deref(), Some("cancelled"));

    let recent = engine.events(2, 0).await.unwrap();
    assert_eq!((recent.total, recent.limit, recent.offset), (5, 2, 0));
    assert_eq!(recent.data[0].kind, "run_finished");
    assert_eq!(recent.data[0].run_id.as_deref(), Some("report:1"));
    let runs = engine.runs(10, 0, None).await.unwrap();
    assert_eq!(runs.total, 2);
    assert_eq!(runs.items[0].run_id, "report:1");
    assert_eq!(runs.items[0].last_type.as_deref(), Some("run_finished"));
    assert_eq!(runs.items[1].events_count, 3);
    assert_eq!(engine.runs(10, 0, Some("run-")).await.unwrap().total, 1);
    for bad in ["", "  "] {
        assert!(matches!(
            engine.run_timeline(bad, 10, 0).await,
            Err(Error::Validation(_))
        ));
    }
    assert!(matches!(
        engine.run_timeline("run-1", 0, 0).await,
        Err(Error::Validation(_))
    ));
}
