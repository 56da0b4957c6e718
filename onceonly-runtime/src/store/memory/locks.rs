//! The memory store's check-locks, kept small.
//!
//! A check-lock is the hottest write of the embedded backend and a server keeps every one for
//! its TTL (a day by default), so each entry is small: the key in one allocation (see
//! [`Keyed`]), the lock id as the 16 random bytes it spells when it has the engine's shape, no
//! metadata allocation when there is none.

use super::keyed::Keyed;
use crate::error::JsonMap;
use crate::store::{LockClaim, LockEntry};

/// The check-locks of a memory store. Not synchronized: the store holds it under a mutex.
#[derive(Debug, Default)]
pub(super) struct Locks(Keyed<Held>);

struct Held {
    lock_id: LockId,
    first_seen_at_ms: u64,
    expires_at_ms: u64,
    /// Kept for the store's contract; the engine never reads a lock's metadata back.
    _metadata: Option<Box<JsonMap>>,
}

impl Held {
    fn new(entry: LockEntry) -> Held {
        Held {
            lock_id: LockId::new(&entry.lock_id),
            first_seen_at_ms: entry.first_seen_at_ms,
            expires_at_ms: entry.expires_at_ms,
            _metadata: entry.metadata.map(Box::new),
        }
    }
}

/// A lock id: the engine's `lock_` + 32 hex digits kept as the 16 bytes they spell, any
/// other id (a store is told ids, it does not make them) as given.
#[derive(PartialEq, Eq)]
enum LockId {
    Random([u8; 16]),
    Given(Box<str>),
}

const PREFIX: &str = "lock_";

impl LockId {
    fn new(id: &str) -> LockId {
        Self::random(id).map_or_else(|| LockId::Given(id.into()), LockId::Random)
    }

    /// The bytes of an id with the engine's shape, lowercase only, so that equal bytes mean
    /// equal text.
    fn random(id: &str) -> Option<[u8; 16]> {
        // A table and no branch per digit: it runs on every check-lock, and a general hex
        // decoder costs more than the rest of the claim.
        const NIBBLE: [u8; 256] = {
            let mut t = [0xFF; 256];
            let mut d = 0;
            while d < 10 {
                t[b'0' as usize + d] = d as u8;
                d += 1;
            }
            let mut x = 0;
            while x < 6 {
                t[b'a' as usize + x] = 10 + x as u8;
                x += 1;
            }
            t
        };
        let digits: &[u8; 32] = id.strip_prefix(PREFIX)?.as_bytes().try_into().ok()?;
        let mut bytes = [0u8; 16];
        let mut bad = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
            bad |= hi | lo;
            *byte = hi << 4 | lo;
        }
        // Every valid nibble is below 16; one 0xFF marks a byte that is not a digit.
        (bad < 16).then_some(bytes)
    }

    fn is(&self, id: &str) -> bool {
        match self {
            LockId::Random(bytes) => Self::random(id).is_some_and(|b| &b == bytes),
            LockId::Given(given) => &**given == id,
        }
    }
}

impl Locks {
    /// Takes `key` unless a live lock holds it; `hash` is the store's hash of `key`.
    pub(super) fn claim(&mut self, hash: u64, key: &str, now_ms: u64, new: LockEntry) -> LockClaim {
        match self.0.entry(hash, key) {
            Ok(held) if held.expires_at_ms > now_ms => LockClaim::Held {
                first_seen_at_ms: held.first_seen_at_ms,
                expires_at_ms: held.expires_at_ms,
            },
            Ok(expired) => {
                *expired = Held::new(new);
                LockClaim::Claimed
            }
            Err(free) => {
                free.insert(Held::new(new));
                LockClaim::Claimed
            }
        }
    }

    /// Deletes the lock of `key` (only the one with `lock_id`, when given); whether a live
    /// lock went away.
    pub(super) fn release(
        &mut self,
        hash: u64,
        key: &str,
        lock_id: Option<&str>,
        now_ms: u64,
    ) -> bool {
        let Some(held) = self.0.get(hash, key) else {
            return false;
        };
        if lock_id.is_some_and(|id| !held.lock_id.is(id)) {
            return false;
        }
        self.0
            .remove(hash, key)
            .is_some_and(|held| held.expires_at_ms > now_ms)
    }

    /// Drops expired locks; how many went away.
    pub(super) fn purge(&mut self, now_ms: u64) -> usize {
        self.0.retain(|held| held.expires_at_ms > now_ms)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, RandomState};

    use super::*;

    fn entry(id: &str, now: u64) -> LockEntry {
        LockEntry {
            lock_id: id.into(),
            first_seen_at_ms: now,
            expires_at_ms: now + 1000,
            metadata: None,
        }
    }

    #[test]
    fn lock_ids_of_both_shapes_compare_as_text() {
        let random = format!("lock_{}", "0a".repeat(16));
        for id in [
            random.as_str(),
            "lock_ABCDEF",
            "x",
            "lock_0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A0A",
        ] {
            let kept = LockId::new(id);
            assert!(kept.is(id), "{id}");
            assert!(!kept.is(&format!("{id}0")), "{id}");
        }
        // Upper-case digits are another id, not the same bytes.
        assert!(!LockId::new(&random).is(&random.to_uppercase().replace("LOCK", "lock")));
        assert!(matches!(LockId::new(&random), LockId::Random(_)));
        // Near misses of the engine's shape are kept as text.
        for id in [
            format!("lock_{}", "a".repeat(31)),
            format!("lock_{}", "a".repeat(33)),
            format!("lock_{}é", "a".repeat(30)),
        ] {
            assert!(matches!(LockId::new(&id), LockId::Given(_)), "{id}");
            assert!(LockId::new(&id).is(&id));
        }
        // Every byte value in each half of a digit pair: only lowercase hex digits decode.
        for b in 0..=255u8 {
            for at in [0, 31] {
                let mut digits = [b'0'; 32];
                digits[at] = b;
                let Ok(digits) = std::str::from_utf8(&digits) else {
                    continue;
                };
                let decoded = LockId::random(&format!("lock_{digits}"));
                assert_eq!(
                    decoded.is_some(),
                    b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                    "{b:#x} at {at}"
                );
                let expected = u8::from_str_radix(&(b as char).to_string(), 16).ok();
                if let (Some(bytes), Some(nibble)) = (decoded, expected) {
                    assert_eq!(bytes[at / 2], if at == 0 { nibble << 4 } else { nibble });
                }
            }
        }
        // The engine's ids keep their exact bytes.
        let id = crate::ids::random("lock");
        assert!(matches!(LockId::new(&id), LockId::Random(b) if hex::encode(b) == id[5..]));
    }

    #[test]
    fn claim_release_and_purge() {
        let mut locks = Locks::default();
        let hasher = RandomState::new();
        let h = hasher.hash_one("k");
        let id = format!("lock_{}", "1f".repeat(16));
        assert!(matches!(
            locks.claim(h, "k", 0, entry(&id, 0)),
            LockClaim::Claimed
        ));
        assert!(matches!(
            locks.claim(h, "k", 10, entry("other", 10)),
            LockClaim::Held {
                first_seen_at_ms: 0,
                ..
            }
        ));
        assert!(!locks.release(h, "k", Some("other"), 10));
        // The same digits in upper case are another id: the lock stays.
        assert!(!locks.release(h, "k", Some(&id.to_uppercase().replace("LOCK", "lock")), 10));
        assert!(locks.release(h, "k", Some(&id), 10));
        assert_eq!(locks.len(), 0);
        for i in 0..1000 {
            let k = format!("key-{i}");
            let h = hasher.hash_one(&k);
            assert!(matches!(
                locks.claim(h, &k, 0, entry("x", 0)),
                LockClaim::Claimed
            ));
        }
        let h = hasher.hash_one("key-999");
        assert!(matches!(
            locks.claim(h, "key-999", 1, entry("y", 1)),
            LockClaim::Held { .. }
        ));
        // An expired lock is taken over in place.
        assert!(matches!(
            locks.claim(h, "key-999", 1000, entry("z", 1000)),
            LockClaim::Claimed
        ));
        assert_eq!(locks.purge(1500), 999);
        assert_eq!(locks.len(), 1);
    }
}
