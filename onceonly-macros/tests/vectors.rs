//! Test vectors of the `#[idempotent]` key: each expected key was computed independently of
//! this code base, from the documented canonical form, with Python's `json` and `hashlib`:
//!
//! ```text
//! s = json.dumps({"v": version, "fn": prefix, "args": args},
//!                sort_keys=True, separators=(",", ":"), ensure_ascii=False)
//! key = prefix + ":" + hashlib.sha256(s.encode()).hexdigest()
//! ```
//!
//! The test calls the function, then asks the engine for the status of the expected key: it is
//! `completed` only if the macro computed exactly that key.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use onceonly_runtime::models::RunStatus;
use onceonly_runtime::{Error, OnceOnly, idempotent};
use serde::Serialize;

static CLIENT: LazyLock<OnceOnly> = LazyLock::new(OnceOnly::memory);

async fn assert_completed(key: &str) {
    let status = CLIENT.ai().status(key).await.unwrap();
    assert_eq!(
        status.status,
        RunStatus::Completed,
        "no completed run under {key}"
    );
}

#[idempotent(client = &*CLIENT, key_prefix = "billing::charge")]
async fn charge(order_id: &str, cents: u64) -> Result<u64, Error> {
    Ok(cents)
}

#[tokio::test]
async fn explicit_prefix() {
    // {"args":{"cents":500,"order_id":"o-1"},"fn":"billing::charge","v":"v1"}
    charge("o-1", 500).await.unwrap();
    assert_completed(
        "billing::charge:bfc0e1b0a4a13055096a8b89eace57e3b455930438c583c5f12d8b9d0d292024",
    )
    .await;
}

#[idempotent(client = &*CLIENT)]
async fn welcome(user_id: &str) -> Result<(), Error> {
    let _ = user_id;
    Ok(())
}

#[tokio::test]
async fn default_prefix_is_module_path_and_fn_name() {
    // {"args":{"user_id":"u_1"},"fn":"vectors::welcome","v":"v1"}
    welcome("u_1").await.unwrap();
    assert_completed(
        "vectors::welcome:7fee644e025d63302b877336bb4f6e08260efb081f257f654d3895caddfe6fd1",
    )
    .await;
}

#[derive(Serialize)]
struct Point {
    x: i32,
    y: i32,
}

#[idempotent(client = &*CLIENT, key_prefix = "geo::distance", version = "v2", skip(note))]
async fn distance(Point { x, y }: Point, note: &str) -> Result<f64, Error> {
    let _ = note;
    Ok(f64::from(x * x + y * y).sqrt())
}

#[tokio::test]
async fn version_skip_and_destructured_bindings() {
    // {"args":{"x":1,"y":-2},"fn":"geo::distance","v":"v2"}
    distance(Point { x: 1, y: -2 }, "ignored").await.unwrap();
    assert_completed(
        "geo::distance:d1d196cfccec3458d3053535df3224ee3302fd3dc7769964084358e42bd8529f",
    )
    .await;
}

#[idempotent(client = &*CLIENT, key_prefix = "reports::nightly")]
async fn nightly() -> Result<String, Error> {
    Ok("report".into())
}

#[tokio::test]
async fn no_arguments() {
    // {"args":{},"fn":"reports::nightly","v":"v1"}
    nightly().await.unwrap();
    assert_completed(
        "reports::nightly:7e9a7dc69f4f88444274f524be5a25fe814262ccaebbdd2c067597af1134b021",
    )
    .await;
}

#[derive(Serialize)]
struct Line {
    qty: u32,
    sku: String,
}

#[derive(Serialize)]
struct Order {
    tags: BTreeMap<String, bool>,
    lines: Vec<Line>,
    id: String,
}

#[idempotent(client = &*CLIENT)]
async fn order(order: Order, note: Option<String>) -> Result<usize, Error> {
    let _ = note;
    Ok(order.lines.len())
}

#[tokio::test]
async fn nested_values_sort_keys_at_every_depth_and_keep_array_order() {
    // {"args":{"note":null,"order":{"id":"o-9","lines":[{"qty":2,"sku":"b"},{"qty":1,"sku":"a"}],
    //  "tags":{"gift":true,"rush":false}}},"fn":"vectors::order","v":"v1"}
    let tags = [("rush".to_owned(), false), ("gift".to_owned(), true)].into();
    let lines = vec![
        Line {
            qty: 2,
            sku: "b".into(),
        },
        Line {
            qty: 1,
            sku: "a".into(),
        },
    ];
    order(
        Order {
            tags,
            lines,
            id: "o-9".into(),
        },
        None,
    )
    .await
    .unwrap();
    assert_completed(
        "vectors::order:d1fa72720c5a45761ddfd7266e460055996d687165bd84f60dea2745c6fe7ffb",
    )
    .await;
}

#[idempotent(client = &*CLIENT)]
async fn unicode(name: &str) -> Result<(), Error> {
    let _ = name;
    Ok(())
}

#[tokio::test]
async fn non_ascii_text_is_hashed_as_utf8_unescaped() {
    // {"args":{"name":"Zoë \"Z\" ✓"},"fn":"vectors::unicode","v":"v1"}
    unicode("Zoë \"Z\" ✓").await.unwrap();
    assert_completed(
        "vectors::unicode:ccd4107e6a0d7b8c39ebcb55b02e36acc916273519eda64cfb0e827ad803d09e",
    )
    .await;
}
