//! The string or number at a JSON pointer (RFC 6901) in a request body, read with
//! `serde_json`: the body is parsed into a `Value` and the pointer followed with
//! [`Value::pointer`](serde_json::Value::pointer). The whole body must be valid UTF-8 and valid
//! JSON by `serde_json`'s rules (of repeated object keys the last one counts).
//!
//! A single-pass reader that skips what is off the path was measured against this on the
//! server-bound benchmark (see `BENCHMARKS.md`) and did not pay for its code.

use serde_json::Value;

/// The scalar at `pointer` in `body` as text: strings as they are, numbers as `serde_json`
/// writes them. `None` for a body that does not parse, a missing path, or a value that is not a
/// string or a number.
pub(crate) fn scalar_at(body: &[u8], pointer: &str) -> Option<String> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    match value.pointer_mut(pointer)? {
        Value::String(s) => Some(std::mem::take(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_along_the_path() {
        let body = br#"{"id":"evt_1","data":{"object":{"id":"ch_1","amount":500}},
            "items":[{"id":"i0"},{"id":"i1"}],"n":-1.5,"a/b":"slash","m~n":"tilde","":"empty"}"#;
        for (pointer, want) in [
            ("/id", Some("evt_1")),
            ("/data/object/id", Some("ch_1")),
            ("/data/object/amount", Some("500")),
            ("/items/1/id", Some("i1")),
            ("/n", Some("-1.5")),
            ("/a~1b", Some("slash")),
            ("/m~0n", Some("tilde")),
            ("/", Some("empty")),
            // Not a scalar, not there, or not an RFC 6901 index or pointer.
            ("", None),
            ("/data", None),
            ("/items", None),
            ("/items/01/id", None),
            ("/items/+1/id", None),
            ("/items/9/id", None),
            ("/missing", None),
            ("id", None),
        ] {
            assert_eq!(scalar_at(body, pointer).as_deref(), want, "{pointer:?}");
        }
    }

    #[test]
    fn the_last_of_repeated_keys_counts() {
        let body = br#"{"id":"first","id":"second"}"#;
        assert_eq!(scalar_at(body, "/id").as_deref(), Some("second"));
    }

    #[test]
    fn bodies_that_do_not_parse_have_no_key() {
        for body in [
            &br#"{"id":"evt_3"} trailing"#[..],
            br#"{"id":"evt_4""#,
            b"not json",
            // Not UTF-8, off the path.
            b"{\"id\":\"evt_7\",\"x\":\"\xff\"}",
            // A lone surrogate in a key off the path.
            br#"{"\ud800":0,"id":"evt_9"}"#,
        ] {
            assert_eq!(
                scalar_at(body, "/id"),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn escaped_strings_come_back_unescaped() {
        let body = br#"{"id":"evt_\u00e9\"\n"}"#;
        assert_eq!(scalar_at(body, "/id").as_deref(), Some("evt_\u{e9}\"\n"));
    }
}
