//! Property tests of key extraction: the JSON-pointer reader agrees with
//! `serde_json::Value::pointer` on arbitrary documents and pointers, header sources take the
//! trimmed value, and a namespaced key is always one the backends accept.
//!
//! Each property runs 64 cases; `PROPTEST_CASES=N` runs N instead.

use http::{HeaderMap, HeaderValue, Method};
use onceonly_runtime::__private::validate;
use proptest::prelude::*;
use serde_json::Value;

use super::key::tests::{parts, request};
use super::key::{Extraction, FoundKey, KeySource, extract, namespaced};
use super::pointer::scalar_at;
use super::pointer::tests::reference;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.failure_persistence = None;
    config
}

/// A JSON document as text may write it: objects keep repeated keys, in order.
#[derive(Debug, Clone)]
enum Doc {
    Leaf(Value),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

impl Doc {
    fn write(&self, out: &mut String) {
        match self {
            Doc::Leaf(v) => out.push_str(&v.to_string()),
            Doc::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Doc::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl Doc {
    /// The reference tokens of every node, each written as a pointer would write it, or
    /// slightly wrong: an index with a leading zero or sign, a key escaped or not.
    fn paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        match self {
            Doc::Leaf(_) => {}
            Doc::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    for token in [i.to_string(), format!("0{i}"), format!("+{i}")] {
                        prefix.push(token);
                        item.paths(prefix, out);
                        prefix.pop();
                    }
                }
            }
            Doc::Object(members) => {
                for (key, value) in members {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    for token in [escaped, key.clone()] {
                        prefix.push(token);
                        value.paths(prefix, out);
                        prefix.pop();
                    }
                }
            }
        }
    }
}

/// A document and a pointer into it (or near it).
fn doc_and_pointer() -> impl Strategy<Value = (Doc, String)> {
    doc().prop_flat_map(|doc| {
        let mut paths = Vec::new();
        doc.paths(&mut Vec::new(), &mut paths);
        let pointer = prop::sample::select(paths)
            .prop_map(|tokens| tokens.iter().map(|t| format!("/{t}")).collect::<String>());
        (Just(doc), prop_oneof![3 => pointer, 1 => self::pointer()])
    })
}

/// Keys pointers are likely to meet, including the ones RFC 6901 escapes and index-like ones.
const KEYS: [&str; 10] = ["", "a", "id", "0", "1", "01", "a/b", "m~n", "~1", "é"];

fn key_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&KEYS[..]).prop_map(str::to_owned),
        1 => ".{0,6}",
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
    .prop_map(Doc::Leaf);
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::Array),
            prop::collection::vec((key_name(), inner), 0..5).prop_map(Doc::Object),
        ]
    })
}

/// Pointers: escaped paths over likely keys and indexes, or any text.
fn pointer() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => key_name().prop_map(|k| k.replace('~', "~0").replace('/', "~1")),
        1 => prop::sample::select(&["0", "1", "2", "01", "+1", "-", "~", "~2"][..]).prop_map(str::to_owned),
    ];
    prop_oneof![
        4 => prop::collection::vec(token, 0..5).prop_map(|t| t.iter().map(|t| format!("/{t}")).collect()),
        1 => ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_pointer_reader_agrees_with_value_pointer((doc, pointer) in doc_and_pointer()) {
        let mut text = String::new();
        doc.write(&mut text);
        prop_assert_eq!(
            scalar_at(text.as_bytes(), &pointer),
            reference(text.as_bytes(), &pointer),
            "{} at {:?}", text, pointer
        );
    }

    #[test]
    fn the_pointer_reader_agrees_on_arbitrary_bytes(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[\\[\\]{}\",:0-9a-z .eE/~-]{0,48}".prop_map(String::into_bytes),
        ],
        pointer in pointer(),
    ) {
        prop_assert_eq!(scalar_at(&body, &pointer), reference(&body, &pointer));
    }

    #[test]
    fn a_header_source_takes_the_trimmed_value(value in "[\\t -~\\x{80}-\\x{ff}]{0,40}") {
        let parts = parts();
        let mut headers = HeaderMap::new();
        let bytes: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
        let Ok(header) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        headers.insert("idempotency-key", header);
        let trimmed = bytes.trim_ascii();
        match extract(&[KeySource::idempotency_key()], &request(&headers, None, &parts)) {
            Extraction::Found(found) => {
                prop_assert!(!trimmed.is_empty());
                prop_assert_eq!(found.id, trimmed.to_vec());
                prop_assert_eq!(found.label, "idempotency-key");
            }
            Extraction::Missing => prop_assert!(trimmed.is_empty()),
            Extraction::NeedBody => prop_assert!(false, "a header source needs no body"),
        }
    }

    #[test]
    fn namespaced_keys_are_always_valid_and_tell_ids_apart(
        method in prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE"][..]),
        route in ".{0,80}",
        label in "[a-z:/_-]{1,20}",
        a in prop::collection::vec(any::<u8>(), 0..300),
        b in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let method: Method = method.parse().unwrap();
        let key = |id: &[u8]| namespaced(&method, &route, &FoundKey { label: label.clone(), id: id.to_vec() });
        let (ka, kb) = (key(&a), key(&b));
        prop_assert!(validate::key(&ka).is_ok(), "{:?}", ka);
        prop_assert_eq!(&ka, &key(&a), "deterministic");
        if a != b {
            prop_assert_ne!(ka, kb);
        }
    }
}
