//! The string or number at a JSON pointer (RFC 6901), read from the raw body in one pass.
//!
//! Parsing a webhook body into a `serde_json::Value` only to read its `/id` allocates a node for
//! every member of the event. This walks the document with serde instead: members off the path
//! are skipped without being built, and only the value at the pointer is read (as a `Value`, so
//! numbers come out as `serde_json` writes them, with or without its `arbitrary_precision`
//! feature). The answer is the one `serde_json::from_slice::<Value>(body)?.pointer(pointer)`
//! gives (the body must be UTF-8 and valid JSON; of repeated object keys the last one counts),
//! which the tests check, except that values off the path are only checked against the JSON
//! grammar: a number too large for an `f64`, a lone surrogate escape, or nesting deeper than
//! `serde_json`'s limit of 128 in them does not make the body unreadable (skipping is
//! iterative: depth costs no stack). The keys of the objects along the path are read, and
//! checked, as strings.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The scalar at `pointer` in `body` as text: strings as they are, numbers as `serde_json`
/// writes them. `None` for invalid JSON, a missing path, or a value that is not a string or a
/// number.
pub(crate) fn scalar_at(body: &[u8], pointer: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?;
    let path = tokens(pointer)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Walk { path: &path }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    found
}

/// The unescaped reference tokens of a pointer; `None` when it does not start with `/` (the
/// empty pointer names the whole document).
/// Tokens without `~` (every usual id path) are borrowed: this runs on every request.
fn tokens(pointer: &str) -> Option<Vec<Cow<'_, str>>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| {
                if t.contains('~') {
                    Cow::Owned(t.replace("~1", "/").replace("~0", "~"))
                } else {
                    Cow::Borrowed(t)
                }
            })
            .collect(),
    )
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// Deserializes one value, following `path` into it.
struct Walk<'p> {
    path: &'p [Cow<'p, str>],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        if self.path.is_empty() {
            // The value at the pointer: read whole, so numbers are written exactly as a parsed
            // `Value` writes them (an object or array here is not an id, and is dropped).
            return Ok(match Value::deserialize(de)? {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        }
        de.deserialize_any(self)
    }
}

/// Visits a value the path goes on into: only objects and arrays have anything at a token.
impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Never empty here: a value at the end of the path is read whole, not visited.
        let Some((head, rest)) = self.path.split_first() else {
            return Ok(None);
        };
        let mut found = None;
        while let Some(on_path) = map.next_key_seed(KeyIs(head))? {
            if on_path {
                // The last of repeated keys counts, as in a parsed `Value`.
                found = map.next_value_seed(Walk { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let target = self
            .path
            .split_first()
            .and_then(|(head, rest)| Some((index(head)?, rest)));
        let mut found = None;
        let mut at = 0;
        loop {
            let more = match target {
                Some((i, rest)) if i == at => match seq.next_element_seed(Walk { path: rest })? {
                    Some(value) => {
                        found = value;
                        true
                    }
                    None => false,
                },
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(found);
            }
            at += 1;
        }
    }
}

/// Reads an object key and answers whether it is the expected one, without keeping it.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What a parsed `Value` says: the reference this module must agree with.
    pub(in crate::dedup) fn reference(body: &[u8], pointer: &str) -> Option<String> {
        let value: Value = serde_json::from_slice(body).ok()?;
        match value.pointer(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    #[test]
    fn agrees_with_a_parsed_value() {
        let bodies: [&[u8]; 14] = [
            br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"id":"ch_1"}}}"#,
            br#"{"data":{"object":{"id":"ch_1","amount":500}},"id":"evt_2"}"#,
            br#"{"id":42}"#,
            br#"{"id":-7,"n":1.5,"e":-0.0}"#,
            br#"{"id":2.5e3}"#,
            br#"{"id":null,"x":true,"y":[1,2]}"#,
            br#"{"id":{"nested":"no"}}"#,
            br#"{"id":"first","id":"second"}"#,
            br#"{"a/b":"slash","m~n":"tilde","":"empty"}"#,
            br#"{"items":[{"id":"i0"},{"id":"i1"},{"id":"i2"}]}"#,
            br#"["zero","one",{"id":"two"}]"#,
            br#"{"id":"evt_3"} trailing"#,
            br#"{"id":"evt_4""#,
            br#""just a string""#,
        ];
        let pointers = [
            "",
            "/id",
            "/data/object/id",
            "/data/object/amount",
            "/n",
            "/e",
            "/x",
            "/y",
            "/y/1",
            "/a~1b",
            "/m~0n",
            "/",
            "/items/1/id",
            "/items/01/id",
            "/items/+1/id",
            "/items/9/id",
            "/2/id",
            "/0",
            "id",
            "/missing",
        ];
        for body in bodies {
            for pointer in pointers {
                assert_eq!(
                    scalar_at(body, pointer),
                    reference(body, pointer),
                    "{} at {pointer:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn a_number_off_the_path_that_f64_cannot_hold_does_not_hide_the_id() {
        // Valid JSON grammar; a parsed `Value` refuses the whole body, this does not look.
        let body = br#"{"id":"evt_5","amount":1e400}"#;
        assert_eq!(reference(body, "/id"), None);
        assert_eq!(scalar_at(body, "/id").as_deref(), Some("evt_5"));
        assert_eq!(scalar_at(body, "/amount"), None);
    }

    #[test]
    fn deep_nesting_off_the_path_is_skipped_without_recursion() {
        let depth = 200_000;
        let body = format!(
            r#"{{"deep":{}{},"id":"evt_6"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(scalar_at(body.as_bytes(), "/id").as_deref(), Some("evt_6"));
        // On the path, serde_json's recursion limit still applies: an error, not a crash.
        let on_path = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let pointer = "/0".repeat(depth);
        assert_eq!(scalar_at(on_path.as_bytes(), &pointer), None);
    }

    #[test]
    fn bodies_that_are_not_utf8_have_no_key() {
        let body = b"{\"id\":\"evt_7\",\"x\":\"\xff\"}";
        assert_eq!(reference(body, "/id"), None);
        assert_eq!(scalar_at(body, "/id"), None);
    }

    #[test]
    fn a_lone_surrogate_off_the_path_does_not_hide_the_id() {
        let body = br#"{"x":"\ud800","id":"evt_8"}"#;
        assert_eq!(reference(body, "/id"), None);
        assert_eq!(scalar_at(body, "/id").as_deref(), Some("evt_8"));
        assert_eq!(
            scalar_at(body, "/x"),
            None,
            "on the path it is still refused"
        );
        let in_a_key = br#"{"\ud800":0,"id":"evt_9"}"#;
        assert_eq!(scalar_at(in_a_key, "/id"), reference(in_a_key, "/id"));
    }

    #[test]
    fn escaped_strings_come_back_unescaped() {
        let body = br#"{"id":"evt_\u00e9\"\n"}"#;
        assert_eq!(scalar_at(body, "/id").as_deref(), Some("evt_\u{e9}\"\n"));
    }
}
