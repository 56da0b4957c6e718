//! Property tests of key extraction: header sources take the trimmed value, and a namespaced
//! key is always one the backends accept. (JSON-pointer keys are read by `serde_json`'s own
//! `Value::pointer`.)
//!
//! Each property runs 64 cases; `PROPTEST_CASES=N` runs N instead.

use http::{HeaderMap, HeaderValue, Method};
use onceonly_runtime::__private::validate;
use proptest::prelude::*;

use super::key::tests::{parts, request};
use super::key::{Extraction, FoundKey, IDEMPOTENCY_KEY, KeySource, extract, namespaced};

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.failure_persistence = None;
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_header_source_takes_the_trimmed_value(value in "[\\t -~\\x{80}-\\x{ff}]{0,40}") {
        let parts = parts();
        let mut headers = HeaderMap::new();
        let bytes: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
        let Ok(header) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        headers.insert(IDEMPOTENCY_KEY, header);
        let trimmed = bytes.trim_ascii();
        match extract(&[KeySource::idempotency_key()], &request(&headers, None, &parts)) {
            Extraction::Found(found) => {
                prop_assert!(!trimmed.is_empty());
                prop_assert_eq!(found.id, trimmed.to_vec());
                prop_assert_eq!(found.source, 0);
            }
            Extraction::Missing => prop_assert!(trimmed.is_empty()),
            Extraction::NeedBody => prop_assert!(false, "a header source needs no body"),
        }
    }

    #[test]
    fn namespaced_keys_are_always_valid_and_tell_ids_apart(
        method in prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE"][..]),
        route in ".{0,80}",
        source in 0..KeySource::defaults().len(),
        a in prop::collection::vec(any::<u8>(), 0..300),
        b in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let method: Method = method.parse().unwrap();
        let sources = KeySource::defaults();
        let key = |id: &[u8]| namespaced(&method, &route, &sources, &FoundKey { source, id: id.to_vec() });
        let (ka, kb) = (key(&a), key(&b));
        prop_assert!(validate::key(&ka).is_ok(), "{:?}", ka);
        prop_assert_eq!(&ka, &key(&a), "deterministic");
        if a != b {
            prop_assert_ne!(ka, kb);
        }
    }
}
