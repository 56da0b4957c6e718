//! Input checks shared by every backend and the server. Each returns `Error::Validation`
//! with a message that names the field and the rule.

mod json_len;
mod word;

use std::time::Duration;

use crate::error::{Error, JsonMap, Result};

/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest accepted metadata object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 2048;
/// Shortest accepted TTL.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// Longest accepted TTL (the longest any hosted plan allows).
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest accepted error code or cancel reason, in bytes.
pub const MAX_CODE_BYTES: usize = 256;

/// A key is 1 to 256 bytes, not blank, without control characters.
pub fn key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::validation("key must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::validation(format!(
            "key is {} bytes long; the maximum is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    // `trim` looks at one character from each end unless they are blanks.
    let (blank, control) = (key.trim().is_empty(), has_control(key));
    if blank {
        return Err(Error::validation("key must not be blank"));
    }
    if control {
        return Err(Error::validation("key must not contain control characters"));
    }
    Ok(())
}

/// Whether `s` holds a control character ([`char::is_control`]: C0, DEL or C1). ASCII text is
/// scanned eight bytes at a time: every key of every call goes through here.
pub fn has_control(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let w = word::load(chunk);
        if word::has_high(w) {
            break;
        }
        if word::has_below(w, 0x20) || word::has_byte(w, 0x7F) {
            return true;
        }
        at += 8;
    }
    // The rest: fewer than eight bytes, or text from its first non-ASCII word on (which
    // starts on a character boundary, since all before it is ASCII).
    s[at..].chars().any(char::is_control)
}

/// A TTL is between 1 second and 30 days.
pub fn ttl(field: &str, ttl: Duration) -> Result<()> {
    if ttl < MIN_TTL {
        return Err(Error::validation(format!(
            "{field} must be at least {}s (got {}ms)",
            MIN_TTL.as_secs(),
            ttl.as_millis()
        )));
    }
    if ttl > MAX_TTL {
        return Err(Error::validation(format!(
            "{field} must be at most {}s (30 days), got {ttl:?}",
            MAX_TTL.as_secs(),
        )));
    }
    Ok(())
}

/// Metadata serializes to at most 2,048 bytes.
pub fn metadata(metadata: Option<&JsonMap>) -> Result<()> {
    let Some(m) = metadata else { return Ok(()) };
    let len = json_len::map_len(m)?;
    if len > MAX_METADATA_BYTES {
        return Err(Error::validation(format!(
            "metadata is {len} bytes as JSON; the maximum is {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

pub(crate) use json_len::map_len as json_map_len;

/// The length of `value` as compact JSON, counted without writing it anywhere. For a map,
/// [`json_map_len`] counts the same faster.
pub(crate) fn json_len(value: &impl serde::Serialize) -> Result<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_err(Error::Decode)?;
    Ok(count.0)
}

/// Lease ids, error codes and reasons: not empty, at most 256 bytes.
pub fn short_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::validation(format!("{field} must not be empty")));
    }
    if value.len() > MAX_CODE_BYTES {
        return Err(Error::validation(format!(
            "{field} is {} bytes long; the maximum is {MAX_CODE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// Error codes: [`short_text`] without control characters, since they are read back, logged
/// and matched on.
pub fn code(field: &str, value: &str) -> Result<()> {
    short_text(field, value)?;
    if has_control(value) {
        return Err(Error::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// A caller's digest of a result or an error (`result_hash`, `error_hash`): stored and read
/// back as given, so at most [`MAX_CODE_BYTES`] and no control characters; empty is allowed.
pub fn digest(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    code(field, value)
}

/// Lock ids and acquisition names: 1 to 256 bytes of visible ASCII, as they travel in HTTP
/// headers and bodies unchanged.
pub fn token(field: &str, value: &str) -> Result<()> {
    short_text(field, value)?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation(format!(
            "{field} must be visible ASCII (no spaces or control characters)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_counts_what_serializing_writes() {
        let v = serde_json::json!({"a": [1, "é\n", null], "b": {"c": 1.5}});
        assert_eq!(json_len(&v).unwrap(), serde_json::to_vec(&v).unwrap().len());
    }

    #[test]
    fn keys() {
        assert!(key("stripe:evt_1").is_ok());
        assert!(key(&"k".repeat(256)).is_ok());
        for bad in ["", "   ", "a\nb", "\0"] {
            assert!(matches!(key(bad), Err(Error::Validation(_))), "{bad:?}");
        }
        let e = key(&"k".repeat(257)).unwrap_err().to_string();
        assert!(e.contains("257 bytes"), "{e}");
        for bad in [" \t\n", "\r\n", " \x0b ", "a\tb", "a\x7f"] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
        // The ASCII fast path agrees with the Unicode rules on every byte.
        for b in 0u8..128 {
            let k = format!("a{}", b as char);
            let slow = k.chars().any(char::is_control);
            assert_eq!(key(&k).is_err(), slow, "{b}");
            let k = (b as char).to_string();
            let slow = k.trim().is_empty() || k.chars().any(char::is_control);
            assert_eq!(key(&k).is_err(), slow, "{b}");
        }
        // Every position of a control character in a word, and near misses around it.
        for c in (0u32..0x100)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '€', '😀'])
        {
            for at in 0..17 {
                let mut k: String = "x".repeat(at);
                k.push(c);
                k.push_str(&"y".repeat(9));
                assert_eq!(has_control(&k), c.is_control(), "{c:?} at {at}");
                let mut k = "é".repeat(at);
                k.push(c);
                assert_eq!(has_control(&k), c.is_control(), "{c:?} after {at} é");
            }
        }
        // multi-byte characters count in bytes
        assert!(key(&"é".repeat(129)).is_err());
    }

    #[test]
    fn ttls() {
        assert!(ttl("ttl", Duration::from_secs(1)).is_ok());
        assert!(ttl("ttl", MAX_TTL).is_ok());
        assert!(ttl("ttl", Duration::ZERO).is_err());
        assert!(ttl("ttl", Duration::from_millis(999)).is_err());
        assert!(ttl("ttl", MAX_TTL + Duration::from_secs(1)).is_err());
        assert!(ttl("ttl", Duration::MAX).is_err());
    }

    #[test]
    fn metadata_size() {
        let mut m = JsonMap::new();
        m.insert("a".into(), "x".repeat(2000).into());
        assert!(metadata(Some(&m)).is_ok());
        m.insert("b".into(), "x".repeat(100).into());
        let e = metadata(Some(&m)).unwrap_err().to_string();
        assert!(e.contains("2048"), "{e}");
    }
}
