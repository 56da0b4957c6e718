//! How typed values are stored as results and read back.
//!
//! Results travel as JSON objects. A value that serializes to an object is stored as is; any
//! other value (numbers, strings, arrays, `null`, `()`), and an object whose only key is
//! `value`, is wrapped as `{"value": ...}`. Decoding unwraps exactly the objects whose only key
//! is `value`, so every `T: Serialize + DeserializeOwned` round-trips without ambiguity.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{JsonMap, Result};

const WRAP_KEY: &str = "value";

fn is_wrapper(map: &JsonMap) -> bool {
    map.len() == 1 && map.contains_key(WRAP_KEY)
}

/// Encodes `value` as the result object stored for a key (`42` as `{"value": 42}`).
pub(crate) fn encode_result<T: Serialize + ?Sized>(value: &T) -> Result<JsonMap> {
    Ok(into_result(serde_json::to_value(value)?))
}

/// [`encode_result`] for a value that is replayed as `T`: refused (as [`Error::Decode`], like
/// a value that cannot be serialized) unless it reads back as a `T`. JSON has no NaN or
/// infinity and serde_json writes them as `null`, so an `f64` result of NaN would otherwise be
/// stored, and every later call would fail to decode it for as long as the key is kept.
///
/// [`Error::Decode`]: crate::Error::Decode
pub(crate) fn encode_replayable<T: Serialize + DeserializeOwned>(value: &T) -> Result<JsonMap> {
    let json = serde_json::to_value(value)?;
    if let Err(e) = T::deserialize(&json) {
        return Err(crate::Error::Decode(serde::de::Error::custom(format!(
            "the result would not read back as the value returned ({e}); JSON has no NaN or \
             infinity, which serde_json writes as null"
        ))));
    }
    Ok(into_result(json))
}

fn into_result(json: Value) -> JsonMap {
    match json {
        Value::Object(map) if !is_wrapper(&map) => map,
        other => {
            let mut map = JsonMap::with_capacity(1);
            map.insert(WRAP_KEY.to_owned(), other);
            map
        }
    }
}

/// Decodes a stored result object into `T`. A missing result decodes as JSON `null`
/// (so `()` and `Option<_>` work for results stored without a body).
pub(crate) fn decode_result<T: DeserializeOwned>(stored: Option<JsonMap>) -> Result<T> {
    let value = match stored {
        None => Value::Null,
        Some(mut map) if is_wrapper(&map) => map.remove(WRAP_KEY).unwrap_or(Value::Null),
        Some(map) => Value::Object(map),
    };
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let stored = encode_result(&v).unwrap();
        assert_eq!(decode_result::<T>(Some(stored)).unwrap(), v);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Receipt {
        id: String,
        cents: u64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OnlyValue {
        value: i32,
    }

    #[test]
    fn a_value_that_would_not_read_back_is_refused() {
        assert!(matches!(
            encode_replayable(&f64::NAN),
            Err(crate::Error::Decode(_))
        ));
        assert!(encode_replayable(&vec![1.0, f64::INFINITY]).is_err());
        assert!(
            encode_result(&f64::NAN).is_ok(),
            "stored as null when not replayed"
        );
        assert_eq!(encode_replayable(&1.5f64).unwrap()["value"], 1.5);
    }

    #[test]
    fn values_round_trip() {
        round_trip(Receipt {
            id: "ch_1".into(),
            cents: 500,
        });
        round_trip(OnlyValue { value: 3 });
        round_trip(7i64);
        round_trip("sent".to_string());
        round_trip(vec![1, 2, 3]);
        round_trip(());
        round_trip(Option::<u8>::None);
        round_trip(Some(Receipt {
            id: "x".into(),
            cents: 1,
        }));
        round_trip(json!({"value": 1}));
        round_trip(json!(5));
        round_trip(BTreeMap::from([("value".to_string(), 1)]));
    }

    #[test]
    fn objects_are_stored_as_is() {
        let stored = encode_result(&Receipt {
            id: "ch_1".into(),
            cents: 5,
        })
        .unwrap();
        assert_eq!(Value::Object(stored), json!({"id": "ch_1", "cents": 5}));
        let stored = encode_result(&OnlyValue { value: 3 }).unwrap();
        assert_eq!(Value::Object(stored), json!({"value": {"value": 3}}));
    }

    #[test]
    fn results_written_by_other_sdks_decode() {
        // The official Python SDK stores a returned string as {"value": "..."}.
        let stored = json!({"value": "refund_processed"}).as_object().cloned();
        assert_eq!(decode_result::<String>(stored).unwrap(), "refund_processed");
        assert_eq!(decode_result::<Option<String>>(None).unwrap(), None);
        let wrong = json!({"id": 1}).as_object().cloned();
        assert!(decode_result::<Receipt>(wrong).is_err());
    }
}
