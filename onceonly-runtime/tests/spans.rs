//! The spans of `check_lock` and `run_fn`: one per call, with the backend, the outcome and the
//! duration, and never a key or an API key in clear.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onceonly_runtime::{Error, OnceOnly};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name and its fields as text.
#[derive(Debug, Clone)]
struct Closed {
    name: String,
    fields: BTreeMap<String, String>,
}

/// Records every span's fields and keeps them when the span closes.
#[derive(Clone, Default)]
struct Capture {
    open: Arc<Mutex<BTreeMap<u64, Closed>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Closed {
            name: attrs.metadata().name().to_owned(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.open.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

impl Capture {
    /// The closed spans named `name`, oldest first, as (outcome, backend) pairs; every one must
    /// carry a key hash and a duration.
    fn outcomes(&self, name: &str) -> Vec<(String, String)> {
        let closed = self.closed.lock().unwrap();
        closed
            .iter()
            .filter(|s| s.name == name)
            .map(|s| {
                assert_eq!(s.fields["key_hash"].len(), 16, "{s:?}");
                assert!(s.fields["duration_ms"].parse::<f64>().is_ok(), "{s:?}");
                (s.fields["outcome"].clone(), s.fields["backend"].clone())
            })
            .collect()
    }

    /// No field of any span contains `secret`.
    fn assert_nowhere(&self, secret: &str) {
        for span in self.closed.lock().unwrap().iter() {
            for value in span.fields.values() {
                assert!(!value.contains(secret), "{secret:?} leaked into {span:?}");
            }
        }
    }
}

fn outcomes(list: &[&str], backend: &str) -> Vec<(String, String)> {
    list.iter()
        .map(|o| ((*o).to_owned(), backend.to_owned()))
        .collect()
}

#[tokio::test]
async fn check_lock_spans_carry_the_outcome_and_no_key() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let client = OnceOnly::memory();
    let key = "customer:jane@example.com";
    assert!(client.check_lock(key).await.unwrap().locked);
    assert!(client.check_lock(key).await.unwrap().duplicate);
    assert!(client.check_lock("").await.is_err());
    assert_eq!(
        capture.outcomes("onceonly.check_lock"),
        outcomes(&["executed", "replayed", "failed"], "embedded")
    );
    capture.assert_nowhere("jane@example.com");

    // An unreachable server with fail-open: the span says so, and never shows the API key.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api_key = "once_test_span_secret_key";
    let remote = OnceOnly::builder()
        .api_key(api_key)
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(0)
        .build()
        .unwrap();
    let open = remote.check_lock(key).await.unwrap();
    assert!(open.fail_open.is_some());
    let all = capture.outcomes("onceonly.check_lock");
    assert_eq!(
        all.last().unwrap(),
        &("fail_open".to_owned(), "http".to_owned())
    );
    capture.assert_nowhere(api_key);
    capture.assert_nowhere("jane@example.com");
}

#[tokio::test]
async fn run_fn_spans_carry_each_outcome() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let client = OnceOnly::memory();
    let ai = client.ai();
    let ok = || async { Ok::<_, Error>(7u32) };

    // executed, then replayed.
    assert_eq!(ai.run_fn("order:1", ok).await.unwrap(), 7);
    assert_eq!(ai.run_fn("order:1", ok).await.unwrap(), 7);

    // One runs while the other waits for it and gets its value.
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = ai.run_fn("order:2", || async move {
        gate_rx.await.unwrap();
        Ok::<_, Error>(8u32)
    });
    let waiter = async {
        tokio::task::yield_now().await;
        ai.run_fn("order:2", ok).await
    };
    let opener = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate_tx.send(()).unwrap();
    };
    let (a, b, ()) = tokio::join!(slow, waiter, opener);
    assert_eq!((a.unwrap(), b.unwrap()), (8, 8));

    // A failing closure releases the key; with terminal failures it fails for good.
    let fails = || async { Err::<u32, _>(Error::Validation("declined".into())) };
    assert!(ai.run_fn("order:3", fails).await.is_err());
    assert!(
        ai.run_fn("order:4", fails)
            .terminal_failures(true)
            .await
            .is_err()
    );

    assert_eq!(
        capture.outcomes("onceonly.run_fn"),
        outcomes(
            &[
                "executed", "replayed", "executed", "waited", "released", "failed"
            ],
            "embedded"
        )
    );
}

#[tokio::test]
async fn a_holder_that_outlived_its_lease_is_traced_as_lease_lost() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let client = OnceOnly::memory();
    let late = client
        .ai()
        .run_fn("slow", || async {
            tokio::time::sleep(Duration::from_millis(1300)).await;
            Ok::<_, Error>(1u32)
        })
        .ttl(Duration::from_secs(1))
        .heartbeat(Duration::from_secs(3600));
    let taker = async {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        client
            .ai()
            .run_fn("slow", || async { Ok::<_, Error>(2u32) })
            .await
    };
    let (late, taken) = tokio::join!(late, taker);
    assert!(matches!(late, Err(Error::LeaseLost { .. })), "{late:?}");
    assert_eq!(taken.unwrap(), 2);
    let got = capture.outcomes("onceonly.run_fn");
    assert!(
        got.contains(&("lease_lost".to_owned(), "embedded".to_owned())),
        "{got:?}"
    );
}

/// A run that never finishes its own way, a panicking closure or a dropped future, still
/// closes its span with an outcome: `released`, since its lease is cancelled.
#[tokio::test]
async fn a_run_fn_that_panics_or_is_dropped_reads_released() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let client = OnceOnly::memory();
    let panicking = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_fn("boom", || async {
                    if true {
                        panic!("the closure panicked");
                    }
                    Ok::<u32, Error>(1)
                })
                .await
        })
    };
    assert!(panicking.await.is_err(), "the panic reached the task");
    let dropped = tokio::time::timeout(
        Duration::from_millis(20),
        client
            .ai()
            .run_fn("stuck", std::future::pending::<Result<u32, Error>>),
    )
    .await;
    assert!(dropped.is_err(), "timed out, so dropped");
    assert_eq!(
        capture.outcomes("onceonly.run_fn"),
        outcomes(&["released", "released"], "embedded")
    );
}

/// Dropped after its closure returned (here while the completion is being written), a run
/// reads `executed`: the side effect happened, and its lease is left to expire, not released.
#[tokio::test]
async fn a_run_fn_dropped_while_completing_reads_executed() {
    use onceonly_runtime::store::{Hooked, LeaseRecord, LeaseState, MemoryStore, StoreHooks};

    /// Never finishes writing a completion.
    struct HangOnCompletion;
    impl StoreHooks for HangOnCompletion {
        async fn before_write(
            &self,
            _key: &str,
            record: &LeaseRecord,
        ) -> onceonly_runtime::Result<()> {
            if record.state == LeaseState::Completed {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let engine = onceonly_runtime::Engine::new(Hooked::new(MemoryStore::new(), HangOnCompletion));
    let client = OnceOnly::from_backend(engine);
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        client
            .ai()
            .run_fn("charged", || async { Ok::<_, Error>(1u32) }),
    )
    .await;
    assert!(dropped.is_err(), "dropped while the completion hung");
    assert_eq!(
        capture.outcomes("onceonly.run_fn"),
        outcomes(&["executed"], "embedded")
    );
}
