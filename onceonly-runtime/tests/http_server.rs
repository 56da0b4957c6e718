//! The HTTP backend against a real `onceonly-server` on loopback, for what only a server
//! setting can show: keys and tenants, plan limits, the server's validation answers, the
//! long-poll extension, and a server that goes away. Every call's normal behaviour is covered
//! by the shared suite in `backends.rs`.

use std::time::Duration;

use onceonly_runtime::engine::Plan;
use onceonly_runtime::models::{FailOpenReason, RunStatus};
use onceonly_runtime::{Error, OnceOnly};
use onceonly_server::testing::TestServer;
use onceonly_server::{ApiKey, ServerConfig};

const KEY_A: &str = "once_test_tenant_a";
const KEY_B: &str = "once_test_tenant_b";

async fn server(keys: Vec<ApiKey>) -> TestServer {
    TestServer::start_with(|config| keys.into_iter().fold(config, ServerConfig::api_key)).await
}

fn client(server: &TestServer, key: &str) -> OnceOnly {
    server.client_for(key)
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_fails_open() {
    let server = server(vec![ApiKey::new(KEY_A).unwrap()]).await;
    let stranger = client(&server, "once_test_unknown");
    assert!(stranger.fail_open());
    for e in [
        stranger.check_lock("k").await.unwrap_err(),
        stranger.ai().lease("k").await.unwrap_err(),
        stranger.me().await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
        assert!(!e.to_string().contains("once_test_unknown"), "{e}");
    }
}

#[tokio::test]
async fn tenants_neither_see_nor_release_each_others_keys() {
    let server = server(vec![
        ApiKey::new(KEY_A).unwrap(),
        ApiKey::new(KEY_B).unwrap(),
    ])
    .await;
    let (a, b) = (client(&server, KEY_A), client(&server, KEY_B));
    assert!(a.check_lock("shared").await.unwrap().locked);
    assert!(b.check_lock("shared").await.unwrap().locked);
    assert!(a.release_lock("shared").await.unwrap());
    assert!(!a.release_lock("shared").await.unwrap());
    assert!(b.check_lock("shared").await.unwrap().is_duplicate());

    let lease = a.ai().lease("job").await.unwrap();
    assert_eq!(
        b.ai().status("job").await.unwrap().status,
        RunStatus::NotFound
    );
    let e = b
        .ai()
        .complete("job", lease.lease_id.as_deref().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::LeaseLost { .. }), "{e:?}");
    assert_eq!(
        a.ai().status("job").await.unwrap().status,
        RunStatus::InProgress
    );
}

#[tokio::test]
async fn a_plan_limit_is_over_limit_and_never_fails_open() {
    let free = Plan::new("free").make_limit(1).ai_limit(1);
    let server = server(vec![ApiKey::new(KEY_A).unwrap().plan(free)]).await;
    let client = client(&server, KEY_A);
    assert!(client.check_lock("one").await.unwrap().locked);
    match client.check_lock("two").await {
        Err(Error::OverLimit(refusal)) => {
            // Read back from the server's 402 into the same fields the engine fills.
            assert_eq!((refusal.limit, refusal.usage), (Some(1), Some(1)));
            assert_eq!(
                refusal.kind,
                Some(onceonly_runtime::models::UsageKind::Make)
            );
            assert!(refusal.period.is_some() && refusal.plan.is_some());
            assert_eq!(refusal.detail["error"], "payment_required");
        }
        other => panic!("{other:?}"),
    }
    client.ai().lease("job-1").await.unwrap();
    assert!(matches!(
        client.ai().lease("job-2").await,
        Err(Error::OverLimit { .. })
    ));
    let usage = client.usage().await.unwrap();
    assert_eq!((usage.plan.as_str(), usage.limit), ("free", Some(1)));
    assert_eq!(usage.blocked_total_month, 1);
}

#[tokio::test]
async fn the_servers_validation_answers_are_validation_errors() {
    let server = server(vec![ApiKey::new(KEY_A).unwrap()]).await;
    let client = client(&server, KEY_A);
    let mut too_big = onceonly_runtime::models::JsonMap::new();
    too_big.insert("blob".into(), "x".repeat(3000).into());
    for e in [
        client.check_lock(" ").await.unwrap_err(),
        client.check_lock("k").metadata(too_big).await.unwrap_err(),
        client
            .ai()
            .lease("k")
            .ttl(Duration::from_secs(365 * 24 * 3600))
            .await
            .unwrap_err(),
        client.ai().extend("k", "").await.unwrap_err(),
        client.events().limit(0).await.unwrap_err(),
    ] {
        match e {
            Error::Validation(msg) => assert!(!msg.is_empty()),
            e => panic!("{e:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_that_went_away_fails_check_lock_open_and_nothing_else() {
    let server = server(vec![ApiKey::new(KEY_A).unwrap()]).await;
    let client = client(&server, KEY_A);
    assert!(client.check_lock("before").await.unwrap().locked);
    server.shutdown().await;
    let res = client.check_lock("after").await.unwrap();
    assert_eq!(res.fail_open, Some(FailOpenReason::RequestError));
    assert!(res.should_proceed());
    let e = client.ai().lease("k").await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
}

#[tokio::test]
async fn a_long_wait_spans_several_long_polls_and_still_wakes() {
    // The server caps one long poll at 600 ms, so this wait is several polls in a row.
    let server = TestServer::start_with(|config| {
        config
            .api_key(ApiKey::new(KEY_A).unwrap())
            .max_wait(Duration::from_millis(600))
    })
    .await;
    let client = client(&server, KEY_A);
    let lease = client.ai().lease("slow").await.unwrap();
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .wait("slow")
                .timeout(Duration::from_secs(30))
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    client
        .ai()
        .fail("slow", lease.lease_id.as_deref().unwrap(), "gave_up")
        .await
        .unwrap();
    let done = waiter.await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.error_code.as_deref(), Some("gave_up"));
    assert!(!done.retryable);
}
