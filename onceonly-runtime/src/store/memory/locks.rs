//! The memory store's check-locks: one hash table, compact entries.
//!
//! A check-lock is the hottest write of the embedded backend and a server keeps every one
//! for its TTL (a day by default), so each entry is small: the key in one allocation, the
//! lock id as its 16 random bytes when it has the engine's shape, and the key's hash kept
//! beside it (see [`MemoryStore`](super::MemoryStore)'s hasher), so the table grows without
//! hashing any key again.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::error::JsonMap;
use crate::store::{LockClaim, LockEntry};

/// The check-locks of a memory store. Not synchronized: the store holds it under a mutex.
#[derive(Default)]
pub(super) struct Locks {
    table: HashTable<Slot>,
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("len", &self.table.len())
            .finish_non_exhaustive()
    }
}

struct Slot {
    hash: u64,
    key: Box<str>,
    lock_id: LockId,
    first_seen_at_ms: u64,
    expires_at_ms: u64,
    metadata: Option<Box<JsonMap>>,
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

    /// The bytes of an id with the engine's shape, lowercase only, so that the id read back
    /// and the id given are the same text.
    fn random(id: &str) -> Option<[u8; 16]> {
        let digits = id.strip_prefix(PREFIX)?;
        if digits.len() != 32 || digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(digits, &mut bytes).ok()?;
        Some(bytes)
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
        let entry = self
            .table
            .entry(hash, |s| s.hash == hash && &*s.key == key, |s| s.hash);
        match entry {
            Entry::Occupied(mut held) => {
                let held = held.get_mut();
                if held.expires_at_ms > now_ms {
                    return LockClaim::Held {
                        first_seen_at_ms: held.first_seen_at_ms,
                        expires_at_ms: held.expires_at_ms,
                    };
                }
                held.lock_id = LockId::new(&new.lock_id);
                held.first_seen_at_ms = new.first_seen_at_ms;
                held.expires_at_ms = new.expires_at_ms;
                held.metadata = new.metadata.map(Box::new);
                LockClaim::Claimed
            }
            Entry::Vacant(free) => {
                free.insert(Slot {
                    hash,
                    key: key.into(),
                    lock_id: LockId::new(&new.lock_id),
                    first_seen_at_ms: new.first_seen_at_ms,
                    expires_at_ms: new.expires_at_ms,
                    metadata: new.metadata.map(Box::new),
                });
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
        let Ok(held) = self
            .table
            .find_entry(hash, |s| s.hash == hash && &*s.key == key)
        else {
            return false;
        };
        if lock_id.is_some_and(|id| !held.get().lock_id.is(id)) {
            return false;
        }
        let (slot, _) = held.remove();
        slot.expires_at_ms > now_ms
    }

    /// Drops expired locks; how many went away.
    pub(super) fn purge(&mut self, now_ms: u64) -> usize {
        let before = self.table.len();
        self.table.retain(|s| s.expires_at_ms > now_ms);
        if self.table.capacity() > 64 && self.table.len() * 4 < self.table.capacity() {
            // A burst that has expired gives its room back.
            self.table.shrink_to(self.table.len() * 2, |s| s.hash);
        }
        before - self.table.len()
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
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
        assert!(locks.release(h, "k", Some(&id), 10));
        assert_eq!(locks.len(), 0);
        // Many keys survive the table's growth, then expire.
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
        assert_eq!(locks.purge(2000), 1000);
        assert_eq!(locks.len(), 0);
    }
}
