//! The default client: without `client = ..`, the macros use `OnceOnly::global()`.
//! One test per process, since the global is process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::{ENV_API_KEY, ENV_BASE_URL, Error, OnceOnly, idempotent, idempotent_ai};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[idempotent]
async fn archive(doc_id: u64) -> Result<String, Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("archived {doc_id}"))
}

#[idempotent_ai(key = format!("ping:{host}"))]
async fn ping(host: &str) -> Result<u32, Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(host.len() as u32)
}

#[tokio::test]
async fn the_global_client_is_used_and_an_unconfigured_one_is_a_clear_error() {
    let configured =
        std::env::var_os(ENV_API_KEY).is_some() || std::env::var_os(ENV_BASE_URL).is_some();
    if configured {
        eprintln!("{ENV_API_KEY}/{ENV_BASE_URL} are set: not checking the unconfigured case");
    } else {
        match archive(1).await {
            Err(Error::Config(msg)) => assert!(msg.contains(ENV_API_KEY), "{msg}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
        assert_eq!(
            RUNS.load(Ordering::SeqCst),
            0,
            "nothing ran without a client"
        );
    }

    OnceOnly::set_global(OnceOnly::memory());
    assert_eq!(archive(1).await.unwrap(), "archived 1");
    assert_eq!(archive(1).await.unwrap(), "archived 1");
    assert_eq!(ping("db").await.unwrap(), 2);
    assert_eq!(ping("db").await.unwrap(), 2);
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
}
