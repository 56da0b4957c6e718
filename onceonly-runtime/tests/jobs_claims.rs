//! Named claims leave nothing behind: the document that remembers a claim goes when its run's
//! lease ends, and also when the claimer died and another claim took the run over.

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::models::{ClaimRequest, LeaseRequest};
use onceonly_runtime::store::{MemoryStore, Store};
use onceonly_runtime::time::ManualClock;
use onceonly_runtime::{Engine, EngineConfig};

#[tokio::test]
async fn a_lapsed_claim_leaves_no_document_once_its_run_is_taken_over() {
    let clock = ManualClock::new(1_796_000_000_000);
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default(),
        Arc::new(clock.clone()),
    );
    engine.run(LeaseRequest::new("job:1")).await.unwrap();
    let claim = |id: &str| {
        ClaimRequest::new("job:*")
            .lease_ttl(Duration::from_secs(5))
            .acquisition_id(id)
    };
    let remembered = |id: &'static str| {
        let store = engine.store();
        async move {
            store
                .get_doc(&format!("jobclaim:{id}"))
                .await
                .unwrap()
                .is_some()
        }
    };
    let first = engine.claim_job(claim("claim-a")).await.unwrap().unwrap();
    assert_eq!(first.key, "job:1");
    assert!(remembered("claim-a").await);
    // The first claimer dies: its lease runs out and another claim takes the run.
    clock.advance(Duration::from_secs(6));
    let second = engine.claim_job(claim("claim-b")).await.unwrap().unwrap();
    assert_eq!(second.key, "job:1");
    assert!(
        !remembered("claim-a").await,
        "the lapsed claim's document went with the takeover"
    );
    assert!(remembered("claim-b").await);
    assert_eq!(engine.store().count_docs("jobclaim:").await.unwrap(), 1);
    // The lapsed claim sent again gets nothing back: its run belongs to claim-b.
    let again = engine.claim_job(claim("claim-a")).await.unwrap();
    assert!(again.is_none(), "{again:?}");
}

/// A named claim dropped while it looks (its caller hung up) frees its name at once: a copy
/// sent next looks at the queue itself instead of waiting out the dropped claim's reservation.
#[tokio::test]
async fn a_dropped_claim_frees_its_name_for_the_next_copy() {
    let engine = Engine::new(MemoryStore::new());
    let claim = |wait| {
        ClaimRequest::new("late:*")
            .lease_ttl(Duration::from_secs(30))
            .wait(wait)
            .acquisition_id("claim-dropped")
    };
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        engine.claim_job(claim(Duration::from_secs(20))),
    )
    .await;
    assert!(
        dropped.is_err(),
        "nothing was queued: the claim was still looking"
    );
    // The background release runs on this runtime.
    tokio::task::yield_now().await;
    engine.run(LeaseRequest::new("late:1")).await.unwrap();
    let copy = tokio::time::timeout(
        Duration::from_secs(5),
        engine.claim_job(claim(Duration::from_secs(2))),
    )
    .await
    .expect("the copy does not wait out the dropped claim")
    .unwrap();
    assert_eq!(copy.map(|j| j.key).as_deref(), Some("late:1"));
}
