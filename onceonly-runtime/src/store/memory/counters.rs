//! The memory store's counters (usage, quotas, budgets): several changed at once, all or none.

use std::hash::{BuildHasher, RandomState};

use super::keyed::Keyed;
use crate::store::{CounterAdd, CounterDelta, apply_delta as apply};

/// The counters of a memory store. Not synchronized: the store holds it under a mutex.
#[derive(Debug, Default)]
pub(super) struct Counters {
    table: Keyed<Counter>,
    /// Keys changed lately, with their hashes, the last used first. Every check-lock and every
    /// lease changes the same two counters (this month's and this day's usage), so most keys
    /// are found here, for the price of a comparison instead of a SipHash. Boxed: the store
    /// stays small.
    recent: Box<[Option<Hashed>; RECENT]>,
}

/// A key and the store's hash of it.
type Hashed = (Box<str>, u64);

/// Enough for the usage counters of both kinds and a few budgets.
const RECENT: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Counter {
    value: u64,
    expires_at_ms: u64,
}

impl Counters {
    /// The store's hash of `key`, from `recent` when it is there. The cache is kept in about
    /// the order of last use: a key added, or found past the first two places, goes first, and
    /// the last one drops out, so the usage keys that every call changes stay.
    fn hash(&mut self, hasher: &RandomState, key: &str) -> u64 {
        let found = self
            .recent
            .iter()
            .position(|r| r.as_ref().is_some_and(|(k, _)| &**k == key));
        match found {
            Some(at) => {
                let hash = self.recent[at].as_ref().map_or(0, |(_, hash)| *hash);
                // The first two stay where they are: a check-lock changes two counters, and
                // swapping them on every call would cost more than it saves.
                if at >= 2 {
                    self.recent[..=at].rotate_right(1);
                }
                hash
            }
            None => {
                let hash = hasher.hash_one(key);
                self.recent.rotate_right(1);
                self.recent[0] = Some((key.into(), hash));
                hash
            }
        }
    }

    /// The live value of `key` (0 when absent or expired).
    pub(super) fn get(&mut self, hasher: &RandomState, key: &str, now_ms: u64) -> u64 {
        let hash = self.hash(hasher, key);
        self.live(hash, key, now_ms)
    }

    /// The value of the counter `key` (hashed to `hash`) unless it expired.
    fn live(&self, hash: u64, key: &str, now_ms: u64) -> u64 {
        self.table
            .get(hash, key)
            .filter(|c| c.expires_at_ms > now_ms)
            .map_or(0, |c| c.value)
    }

    /// Applies every add, or none when one of them would pass its limit; the value of the
    /// first counter after the change, or the value that refused.
    pub(super) fn add(
        &mut self,
        hasher: &RandomState,
        adds: &[CounterDelta<'_>],
        now_ms: u64,
    ) -> CounterAdd {
        // Each key hashed once; on the stack for the usual two or so.
        const INLINE: usize = 4;
        let mut inline = [0u64; INLINE];
        let spilled: Vec<u64>;
        let hashes: &[u64] = if adds.len() <= INLINE {
            for (hash, add) in inline.iter_mut().zip(adds) {
                *hash = self.hash(hasher, add.key);
            }
            &inline[..adds.len()]
        } else {
            spilled = adds.iter().map(|a| self.hash(hasher, a.key)).collect();
            &spilled
        };
        // Every add is checked against the value it will meet (earlier adds to the same key
        // included) before anything changes.
        for (i, (add, &hash)) in adds.iter().zip(hashes).enumerate() {
            let mut value = self.live(hash, add.key, now_ms);
            for earlier in adds[..i].iter().filter(|e| e.key == add.key) {
                if let CounterAdd::Added(next) = apply(value, earlier) {
                    value = next;
                }
            }
            if let refused @ CounterAdd::Refused(_) = apply(value, add) {
                return refused;
            }
        }
        let mut first = 0;
        for (i, (add, &hash)) in adds.iter().zip(hashes).enumerate() {
            let fresh = Counter {
                value: 0,
                expires_at_ms: add.expires_at_ms,
            };
            let counter = match self.table.entry(hash, add.key) {
                Ok(counter) => {
                    if counter.expires_at_ms <= now_ms {
                        *counter = fresh;
                    }
                    counter
                }
                Err(free) => free.insert(fresh),
            };
            // Checked above: an add that passed there passes here (a counter reset to a new
            // window only holds less).
            match apply(counter.value, add) {
                CounterAdd::Added(next) => counter.value = next,
                CounterAdd::Refused(_) => debug_assert!(false, "an add refused after its check"),
            }
            if i == 0 {
                first = counter.value;
            }
        }
        CounterAdd::Added(first)
    }

    /// Drops expired counters; how many went away.
    pub(super) fn purge(&mut self, now_ms: u64) -> usize {
        self.table.retain(|c| c.expires_at_ms > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(key: &str, delta: i64, limit: Option<u64>) -> CounterDelta<'_> {
        CounterDelta {
            key,
            delta,
            limit,
            expires_at_ms: 1000,
        }
    }

    #[test]
    fn more_keys_than_the_recent_hashes_keep_their_counts() {
        let (hasher, mut c) = (RandomState::new(), Counters::default());
        let keys: Vec<String> = (0..3 * RECENT).map(|i| format!("k{i}")).collect();
        for round in 1..=3u64 {
            for k in &keys {
                let adds = [add(k, 1, None), add("shared", 1, None)];
                assert_eq!(c.add(&hasher, &adds, 10), CounterAdd::Added(round));
            }
        }
        for k in &keys {
            assert_eq!(c.get(&hasher, k, 10), 3);
        }
        assert_eq!(c.get(&hasher, "shared", 10), 9 * RECENT as u64);
        assert_eq!(c.get(&hasher, "shared", 1000), 0, "expired");
        assert_eq!(c.purge(1000), 3 * RECENT + 1);
    }

    #[test]
    fn hot_keys_stay_cached_while_others_pass_through() {
        let (hasher, mut c) = (RandomState::new(), Counters::default());
        for i in 0..100 {
            let one_off = format!("agent-{i}");
            c.add(&hasher, &[add("month", 1, None), add("day", 1, None)], 10);
            c.add(&hasher, &[add(&one_off, 1, None)], 10);
        }
        let cached: Vec<&str> = c.recent.iter().flatten().map(|(k, _)| &**k).collect();
        assert_eq!(cached[0], "agent-99");
        assert!(
            cached[1..3].contains(&"month") && cached[1..3].contains(&"day"),
            "{cached:?}"
        );
        assert_eq!(c.get(&hasher, "month", 10), 100);
        assert_eq!(c.get(&hasher, "agent-99", 10), 1);
    }
}
