//! What the layer tells `tracing`: the `onceonly.dedup` span (one per deduplicated request,
//! with its outcome, the backend, the status and the duration; never the key or the API key)
//! and the fail-open warning.
//!
//! Every test here installs its own subscriber before it sends anything: a test without one,
//! running alongside, could have `tracing` cache the layer's span as disabled for everyone.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use common::{Runs, client, serve};
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};
use sha2::{Digest, Sha256};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The ids the requests carry: personal data that must not reach the spans.
const IDS: [&str; 6] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
    "frank@example.com",
];
/// An API key no span or event may show.
const API_KEY: &str = "sk_live_RECOGNISABLE_4f1c";

/// Field values by name, as text.
#[derive(Debug, Default, Clone)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Keeps the fields of every closed span and of every event.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(&'static str, Fields)>>>,
    events: Arc<Mutex<Vec<Fields>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.events.lock().unwrap().push(fields);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span.extensions_mut().remove::<Fields>().unwrap_or_default();
        self.spans.lock().unwrap().push((span.name(), fields));
    }
}

impl Capture {
    /// The fields of the closed `onceonly.dedup` spans, in the order they closed.
    fn dedup_spans(&self) -> Vec<BTreeMap<String, String>> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|(name, _)| *name == "onceonly.dedup")
            .map(|(_, f)| f.0.clone())
            .collect()
    }
}

/// Collects what the `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `/ok` answers 200, `/fail` answers 500; both behind `layer`.
fn app(layer: OnceOnlyLayer, runs: &Runs) -> Router {
    Router::new()
        .route("/ok", common::counting(runs, "processed"))
        .route(
            "/fail",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(layer)
}

/// Sends a `POST` to `url` with `id` as its `Idempotency-Key`; returns the status.
async fn post(url: String, id: &str) -> u16 {
    let res = client()
        .post(url)
        .header("idempotency-key", id)
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

// A current-thread runtime keeps the servers on this thread, under the test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn every_path_records_its_outcome_and_no_key() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let runs = Runs::default();
    let check_lock = serve(app(OnceOnlyLayer::new(OnceOnly::memory()), &runs)).await;
    let replay = serve(app(
        OnceOnlyLayer::new(OnceOnly::memory()).mode(Mode::Replay),
        &runs,
    ))
    .await;
    let open = serve(app(
        OnceOnlyLayer::new(common::unreachable_client(API_KEY)).fail_open(),
        &runs,
    ))
    .await;
    let closed = serve(app(
        OnceOnlyLayer::new(common::unreachable_client(API_KEY)).fail_closed(),
        &runs,
    ))
    .await;

    let [alice, bob, carol, dave, erin, frank] = IDS;
    let sent = [
        post(format!("{check_lock}/ok"), alice).await,
        post(format!("{check_lock}/ok"), alice).await,
        post(format!("{check_lock}/fail"), bob).await,
        post(format!("{replay}/ok"), carol).await,
        post(format!("{replay}/ok"), carol).await,
        post(format!("{replay}/fail"), dave).await,
        post(format!("{open}/ok"), erin).await,
        post(format!("{closed}/ok"), frank).await,
    ];
    assert_eq!(sent, [200, 200, 500, 200, 200, 500, 200, 503]);
    // A request without a key is passed through without a span.
    let res = client()
        .post(format!("{check_lock}/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let spans = capture.dedup_spans();
    let seen: Vec<(&str, &str, &str, &str)> = spans
        .iter()
        .map(|f| {
            let get = |name: &str| f.get(name).map_or("", String::as_str);
            (get("mode"), get("backend"), get("outcome"), get("status"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("check_lock", "embedded", "executed", "200"),
            ("check_lock", "embedded", "replayed", "200"),
            ("check_lock", "embedded", "released", "500"),
            ("replay", "embedded", "executed", "200"),
            ("replay", "embedded", "replayed", "200"),
            ("replay", "embedded", "released", "500"),
            ("check_lock", "http", "fail_open", "200"),
            ("check_lock", "http", "failed", "503"),
        ]
    );
    for fields in &spans {
        let ms: f64 = fields["duration_ms"].parse().unwrap();
        assert!(ms >= 0.0, "{fields:?}");
        assert_eq!(fields["key_hash"].len(), 16, "{fields:?}");
    }
    // The same key reads the same hash, so deliveries of one event can be followed.
    assert_eq!(spans[0]["key_hash"], spans[1]["key_hash"]);
    assert_ne!(spans[0]["key_hash"], spans[2]["key_hash"]);

    let events = capture.events.lock().unwrap();
    assert!(!events.is_empty(), "the outage paths log");
    let texts = spans.iter().chain(events.iter().map(|e| &e.0));
    for fields in texts {
        for value in fields.values() {
            for secret in IDS.iter().chain([&API_KEY]) {
                assert!(!value.contains(secret), "{secret} in {fields:?}");
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn fail_open_runs_the_handler_and_logs_it() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let runs = Runs::default();
    // The client says fail-closed; the layer's own setting wins.
    let layer = OnceOnlyLayer::new(common::unreachable_client(API_KEY))
        .json_pointer("/id")
        .fail_open();
    let base = serve(app(layer, &runs)).await;
    let http = client();
    for _ in 0..2 {
        let res = http
            .post(format!("{base}/ok"))
            .body(r#"{"id":"evt_outage"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "processed");
    }
    // Without a backend nothing can be deduplicated: both deliveries ran, both were logged.
    assert_eq!(runs.get(), 2);
    let logs = logs.text();
    assert_eq!(logs.matches("fail-open").count(), 2, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    // The log follows the delivery by its key's hash, never by the key itself.
    let key = "POST /ok json:/id=evt_outage";
    let hash = hex::encode(&Sha256::digest(key)[..8]);
    assert_eq!(
        logs.matches(&format!("key_hash=\"{hash}\"")).count(),
        2,
        "{logs}"
    );
    assert!(!logs.contains("evt_outage"), "{logs}");
    assert!(!logs.contains(API_KEY), "{logs}");
}
