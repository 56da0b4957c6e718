//! The length of a JSON value as `serde_json` writes it compactly, counted without writing it.
//!
//! Every metadata object and every result is measured against its cap, and a replayed
//! response is a result of a few hundred bytes on every request in replay mode. Walking the
//! value and counting a string's escapes eight bytes at a time costs a fraction of running the
//! serializer into a counting writer, which handles the text one byte and one write at a time.

use serde_json::{Number, Value};

use super::word;
use crate::error::{JsonMap, Result};

/// The compact JSON length of `map`.
pub(crate) fn map_len(map: &JsonMap) -> Result<usize> {
    // `{` and `}`, a comma between members, a colon in each.
    let mut len = 2 + map.len().saturating_sub(1) + map.len();
    for (key, value) in map {
        len += str_len(key) + value_len(value)?;
    }
    Ok(len)
}

fn value_len(value: &Value) -> Result<usize> {
    Ok(match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_len(n)?,
        Value::String(s) => str_len(s),
        Value::Array(items) => {
            let mut len = 2 + items.len().saturating_sub(1);
            for item in items {
                len += value_len(item)?;
            }
            len
        }
        Value::Object(map) => map_len(map)?,
    })
}

fn number_len(n: &Number) -> Result<usize> {
    let digits = |mut v: u64| {
        let mut d = 1;
        while v >= 10 {
            v /= 10;
            d += 1;
        }
        d
    };
    if let Some(u) = n.as_u64() {
        Ok(digits(u))
    } else if let Some(i) = n.as_i64() {
        Ok(1 + digits(i.unsigned_abs()))
    } else {
        // A float: rare in what is measured here; the serializer's own text decides.
        super::json_len(n)
    }
}

/// A string with its quotes and escapes: `"` and `\` take two bytes, as do the control
/// characters with a short escape (`\b \t \n \f \r`); the other ones below 0x20 take six
/// (`\u001f`). Nothing else is escaped.
fn str_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = 2 + bytes.len();
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let w = word::load(chunk);
        // A byte below 0x20, a `"` or a `\`: only then look at the bytes one by one.
        if word::has_below(w, 0x20) || word::has_byte(w, b'"') || word::has_byte(w, b'\\') {
            len += chunk.iter().map(|&b| escape_extra(b)).sum::<usize>();
        }
    }
    len + words
        .remainder()
        .iter()
        .map(|&b| escape_extra(b))
        .sum::<usize>()
}

/// The bytes an escape adds to byte `b` of a string.
fn escape_extra(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\x08' | b'\t' | b'\n' | b'\x0c' | b'\r' => 1,
        0..=0x1f => 5,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(v: &Value) {
        let map = match v {
            Value::Object(m) => m.clone(),
            other => {
                let mut m = JsonMap::new();
                m.insert("v".into(), other.clone());
                m
            }
        };
        let written = serde_json::to_vec(&map).unwrap().len();
        assert_eq!(map_len(&map).unwrap(), written, "{map:?}");
        assert_eq!(super::super::json_len(&map).unwrap(), written);
    }

    #[test]
    fn every_character_at_every_position_of_a_word() {
        let chars = (0u32..0x100)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '€', '😀']);
        for c in chars {
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(c);
                s.push_str("tail");
                check(&Value::String(s.clone()));
                // The same character as a key, after multi-byte text.
                let key = format!("{}{c}", "é".repeat(at));
                check(&json!({ key: c.to_string() }));
            }
        }
    }

    #[test]
    fn numbers_and_nesting() {
        for n in [
            json!(0),
            json!(9),
            json!(10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(-10),
            json!(1.5),
            json!(-0.0),
            json!(0.1),
            json!(1e300),
            json!(123456789.125),
        ] {
            check(&n);
        }
        check(&json!({}));
        check(&json!({"a": [], "b": {}, "c": [null, true, false, [1, [2, {"d": "\"\\"}]]]}));
        check(
            &json!({"stored": {"status": 200, "headers": [["content-type", "application/json"]], "body": "eyJ9"}}),
        );
    }
}
