//! The run options of both macros, observed through the real engine: metadata and `run_id`
//! reach the lease, `wait_on_conflict`/`timeout` decide what a second caller gets, and
//! `fail_open` runs the body through a store outage only when asked to.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Probe;
use onceonly_runtime::models::RunStatus;
use onceonly_runtime::{Error, JsonMap, OnceOnly, idempotent, idempotent_ai};

fn meta(team: &str) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("team".into(), team.into());
    m
}

#[idempotent_ai(key = format!("report:{day}"), client = client, metadata = meta("finance"), run_id = format!("run_{day}"))]
async fn report(client: &OnceOnly, day: &str) -> Result<String, Error> {
    Ok(format!("report for {day}"))
}

#[tokio::test]
async fn metadata_and_run_id_are_sent_with_the_lease() {
    let (probe, client) = Probe::client();
    report(&client, "2026-04-01").await.unwrap();
    let sent = probe.lease_metadata();
    let m = sent[0].as_ref().expect("metadata was sent");
    assert_eq!(m["team"], "finance");
    assert_eq!(m["run_id"], "run_2026-04-01");

    let (probe, client) = Probe::client();
    // A client passed as an argument is not `Serialize`: it is skipped from the key.
    tagged_skip(&client, 3).await.unwrap();
    let sent = probe.lease_metadata();
    assert_eq!(
        sent[0].as_ref().map(|m| m["run_id"].clone()),
        Some("run_7".into())
    );
}

#[idempotent(client = client, run_id = "run_7", skip(client))]
async fn tagged_skip(client: &OnceOnly, n: u32) -> Result<u32, Error> {
    Ok(n)
}

#[idempotent_ai(key = "busy", client = client, wait_on_conflict = false)]
async fn no_wait(client: &OnceOnly) -> Result<u8, Error> {
    Ok(1)
}

#[idempotent_ai(key = "busy", client = client, timeout = Duration::from_millis(200))]
async fn short_wait(client: &OnceOnly) -> Result<u8, Error> {
    Ok(1)
}

#[tokio::test]
async fn wait_on_conflict_and_timeout_decide_what_a_second_caller_gets() {
    let client = OnceOnly::memory();
    let held = client
        .ai()
        .lease("busy")
        .ttl(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(held.status, RunStatus::Acquired);

    assert!(matches!(
        no_wait(&client).await,
        Err(Error::InProgress { .. })
    ));
    // A wait that runs out while the key is still held is a conflict too, never an outage.
    assert!(matches!(
        short_wait(&client).await,
        Err(Error::InProgress { .. })
    ));
}

static OPEN_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("notify:{user}"), client = client, fail_open = true)]
async fn notify_open(client: &OnceOnly, user: &str) -> Result<String, Error> {
    OPEN_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("notified {user}"))
}

static CLOSED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("notify:{user}"), client = client)]
async fn notify_closed(client: &OnceOnly, user: &str) -> Result<String, Error> {
    CLOSED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("notified {user}"))
}

#[tokio::test]
async fn fail_open_runs_the_body_through_a_store_outage_only_when_asked() {
    let (probe, client) = Probe::client();
    probe.fail_leases(true);

    match notify_closed(&client, "ann").await {
        Err(Error::Store(_)) => {}
        other => panic!("expected the outage as an error, got {other:?}"),
    }
    assert_eq!(
        CLOSED_RUNS.load(Ordering::SeqCst),
        0,
        "fail-closed by default"
    );

    assert_eq!(notify_open(&client, "ann").await.unwrap(), "notified ann");
    assert_eq!(notify_open(&client, "ann").await.unwrap(), "notified ann");
    assert_eq!(
        OPEN_RUNS.load(Ordering::SeqCst),
        2,
        "no exactly-once during the outage"
    );

    probe.fail_leases(false);
    notify_open(&client, "ann").await.unwrap();
    notify_open(&client, "ann").await.unwrap();
    assert_eq!(
        OPEN_RUNS.load(Ordering::SeqCst),
        3,
        "exactly once again once the store is back"
    );
}

static AFTER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = client, fail_open = true, skip(client))]
async fn charge_open(client: &OnceOnly, order: u32) -> Result<u32, Error> {
    AFTER_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(order)
}

#[tokio::test]
async fn fail_open_never_runs_a_started_body_again() {
    let (probe, client) = Probe::client();
    probe.fail_completes(true);
    match charge_open(&client, 5).await {
        Err(Error::Store(_)) => {}
        other => panic!("expected the failed completion as an error, got {other:?}"),
    }
    assert_eq!(
        AFTER_RUNS.load(Ordering::SeqCst),
        1,
        "the body ran once, not twice"
    );
}

static OPEN_USER_ERRORS: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = "declined", client = client, fail_open = true)]
async fn declined_open(client: &OnceOnly) -> Result<u32, Error> {
    OPEN_USER_ERRORS.fetch_add(1, Ordering::SeqCst);
    Err(Error::Validation("declined".into()))
}

#[tokio::test]
async fn fail_open_returns_the_functions_own_error_as_is() {
    let client = OnceOnly::memory();
    assert!(matches!(
        declined_open(&client).await,
        Err(Error::Validation(_))
    ));
    assert_eq!(OPEN_USER_ERRORS.load(Ordering::SeqCst), 1);
}

#[idempotent_ai(key = "owned-arc", client = Arc::clone(&client))]
async fn with_arc(client: Arc<OnceOnly>) -> Result<u8, Error> {
    Ok(7)
}

mod reexport {
    //! A crate that re-exports the runtime under another path uses `crate = ..`.
    pub(crate) use onceonly_runtime as rt;
}

#[idempotent_ai(key = "renamed", client = client, crate = reexport::rt)]
async fn renamed_crate(client: &OnceOnly) -> Result<u8, Error> {
    Ok(9)
}

#[tokio::test]
async fn client_accepts_arcs_and_crate_renames_the_runtime_path() {
    let client = Arc::new(OnceOnly::memory());
    assert_eq!(with_arc(client.clone()).await.unwrap(), 7);
    assert_eq!(renamed_crate(&client).await.unwrap(), 9);
}

#[idempotent_ai(key = "bad-ttl", client = client, ttl = Duration::from_millis(10))]
async fn bad_ttl(client: &OnceOnly) -> Result<u8, Error> {
    Ok(1)
}

#[tokio::test]
async fn an_invalid_option_value_is_a_validation_error_and_the_body_does_not_run() {
    let client = OnceOnly::memory();
    match bad_ttl(&client).await {
        Err(Error::Validation(msg)) => assert!(msg.contains("ttl"), "{msg}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Option values are evaluated before the body takes the arguments: `run_id` and `metadata`
/// may use an owned argument that the body then moves.
#[idempotent_ai(key = format!("ticket:{ticket}"), client = client, run_id = run.clone(), metadata = meta(&team))]
async fn owned_options(
    client: &OnceOnly,
    ticket: u64,
    run: String,
    team: String,
) -> Result<String, Error> {
    Ok(format!("{ticket} {run} {team}"))
}

#[tokio::test]
async fn options_may_use_arguments_the_body_moves() {
    let (probe, client) = Probe::client();
    let out = owned_options(&client, 9, "run_9".into(), "ops".into())
        .await
        .unwrap();
    assert_eq!(out, "9 run_9 ops");
    let sent = probe.lease_metadata();
    let m = sent[0].as_ref().expect("metadata was sent");
    assert_eq!(
        (m["run_id"].as_str(), m["team"].as_str()),
        (Some("run_9"), Some("ops"))
    );
}

/// A function returning `std::io::Result<T>`: runtime errors convert into `io::Error`.
#[idempotent(client = client, skip(client))]
async fn io_flavoured(client: &OnceOnly, n: u32) -> std::io::Result<u32> {
    if n == 0 {
        return Err(std::io::Error::other("zero"));
    }
    Ok(n * 2)
}

#[tokio::test]
async fn an_io_result_function_stores_and_replays() {
    let client = OnceOnly::memory();
    assert_eq!(io_flavoured(&client, 4).await.unwrap(), 8);
    assert_eq!(io_flavoured(&client, 4).await.unwrap(), 8);
    let e = io_flavoured(&client, 0).await.unwrap_err();
    assert_eq!(e.to_string(), "zero");
}
