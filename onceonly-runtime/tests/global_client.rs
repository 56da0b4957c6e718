//! The process-wide default client (its own test binary: it is process state).

use onceonly_runtime::{Error, OnceOnly};

#[tokio::test]
async fn set_global_is_what_global_returns_and_state_is_shared() {
    let client = OnceOnly::memory();
    OnceOnly::set_global(client.clone());
    let v: u32 = OnceOnly::global()
        .unwrap()
        .ai()
        .run_fn("g", || async { Ok::<_, Error>(5) })
        .await
        .unwrap();
    assert_eq!(v, 5);
    // The same engine: the value stored through the global handle replays through ours.
    let replay: u32 = client
        .ai()
        .run_fn("g", || async { Ok::<_, Error>(6) })
        .await
        .unwrap();
    assert_eq!(replay, 5);

    let other = OnceOnly::memory();
    OnceOnly::set_global(other.clone());
    let fresh: u32 = OnceOnly::global()
        .unwrap()
        .ai()
        .run_fn("g", || async { Ok::<_, Error>(7) })
        .await
        .unwrap();
    assert_eq!(fresh, 7, "set_global replaces the default");
}
