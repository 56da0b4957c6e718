//! Canonical JSON and the key hashes derived from it.
//!
//! Canonical form: compact JSON (no spaces), object keys sorted by their UTF-8 bytes at every
//! depth, arrays in order, strings escaped as `serde_json` escapes them, numbers as
//! `serde_json` prints them. It does not depend on `serde_json`'s `preserve_order` feature, so
//! reordering struct fields or map entries never changes a hash.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Result;

/// The canonical JSON text of `value`: object members sorted by key, no white space.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lowercase hex SHA-256 of the canonical JSON of `value`.
///
/// ```
/// use onceonly_runtime::canonical_hash;
/// let h = canonical_hash(&serde_json::json!({"amount": 50, "user_id": "u_100"})).unwrap();
/// assert_eq!(h.len(), 64);
/// ```
pub fn canonical_hash<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let value = serde_json::to_value(value)?;
    Ok(hex::encode(Sha256::digest(
        canonical_json(&value).as_bytes(),
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_text() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, 2], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,2]},"b":1}"#);
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"x": 1, "y": {"b": true, "a": [3, {"z": 1, "w": 2}]}});
        let b = json!({"y": {"a": [3, {"w": 2, "z": 1}], "b": true}, "x": 1});
        assert_eq!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
    }

    #[test]
    fn vectors() {
        // The same canonicalisation the official SDKs' tool wrapper documents.
        let v = json!({"args": [], "kwargs": {"user_id": "u_100", "amount": 50}});
        assert_eq!(
            canonical_json(&v),
            r#"{"args":[],"kwargs":{"amount":50,"user_id":"u_100"}}"#
        );
        assert_eq!(
            canonical_hash(&v).unwrap(),
            "5313ba5eeb951ca7238066d9d35477c85ecd974a65687f9db836dce1eeb2c6dd"
        );
        let v = json!({"args": ["hello"], "kwargs": {}});
        assert_eq!(
            canonical_hash(&v).unwrap(),
            "6c3f44f414b670a953c7c40d40d52146d8d186de35dc24b8547c200873dd5240"
        );
    }

    #[test]
    fn values_change_the_hash() {
        assert_ne!(
            canonical_hash(&json!({"a": 1})).unwrap(),
            canonical_hash(&json!({"a": 2})).unwrap()
        );
        assert_ne!(
            canonical_hash(&json!("1")).unwrap(),
            canonical_hash(&json!(1)).unwrap()
        );
    }
}
