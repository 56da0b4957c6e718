//! A string-keyed hash table that keeps each key's hash beside it.
//!
//! The memory store's check-locks, lease records and usage counters live here. A server keeps each of them
//! for a day or more, so these tables grow to millions of entries; with the hash kept, growing
//! never hashes a key again (nor reads it from memory), and a lookup compares keys only when
//! the full 64-bit hashes match. Hashes come from the store's keyed SipHash, computed before
//! the table's mutex is taken.

use hashbrown::HashTable;
use hashbrown::hash_table::{Entry, VacantEntry};

pub(super) struct Keyed<V> {
    table: HashTable<Item<V>>,
}

struct Item<V> {
    hash: u64,
    key: Box<str>,
    value: V,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            table: HashTable::new(),
        }
    }
}

impl<V> std::fmt::Debug for Keyed<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("len", &self.table.len())
            .finish_non_exhaustive()
    }
}

/// The empty place of a key that is not in the table: [`insert`](Self::insert) copies the key.
pub(super) struct Vacant<'a, V> {
    entry: VacantEntry<'a, Item<V>>,
    hash: u64,
    key: &'a str,
}

impl<'a, V> Vacant<'a, V> {
    pub(super) fn insert(self, value: V) -> &'a mut V {
        let item = Item {
            hash: self.hash,
            key: self.key.into(),
            value,
        };
        &mut self.entry.insert(item).into_mut().value
    }
}

impl<V> Keyed<V> {
    pub(super) fn get(&self, hash: u64, key: &str) -> Option<&V> {
        self.table
            .find(hash, |i| i.hash == hash && &*i.key == key)
            .map(|i| &i.value)
    }

    /// The value of `key`, or the place to put one: one probe either way.
    pub(super) fn entry<'a>(
        &'a mut self,
        hash: u64,
        key: &'a str,
    ) -> Result<&'a mut V, Vacant<'a, V>> {
        match self
            .table
            .entry(hash, |i| i.hash == hash && &*i.key == key, |i| i.hash)
        {
            Entry::Occupied(held) => Ok(&mut held.into_mut().value),
            Entry::Vacant(entry) => Err(Vacant { entry, hash, key }),
        }
    }

    pub(super) fn remove(&mut self, hash: u64, key: &str) -> Option<V> {
        let found = self
            .table
            .find_entry(hash, |i| i.hash == hash && &*i.key == key)
            .ok()?;
        Some(found.remove().0.value)
    }

    /// Keeps the values `keep` says yes to; how many went away. A table left mostly empty (a
    /// burst that expired) gives its room back.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) -> usize {
        let before = self.table.len();
        self.table.retain(|i| keep(&i.value));
        if self.table.capacity() > 64 && self.table.len() * 4 < self.table.capacity() {
            self.table.shrink_to(self.table.len() * 2, |i| i.hash);
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

    use super::Keyed;

    #[test]
    fn entries_survive_growth_and_shrinking() {
        let hasher = RandomState::new();
        let mut t = Keyed::default();
        for i in 0..5000u32 {
            let k = format!("key-{i}");
            let Err(free) = t.entry(hasher.hash_one(&k), &k) else {
                panic!("{k} was there already");
            };
            free.insert(i);
        }
        assert_eq!(t.len(), 5000);
        *t.entry(hasher.hash_one("key-7"), "key-7").ok().unwrap() += 1;
        assert_eq!(t.get(hasher.hash_one("key-7"), "key-7"), Some(&8));
        // The same hash with another key is another entry.
        assert_eq!(t.get(hasher.hash_one("key-7"), "key-8"), None);
        assert_eq!(t.retain(|v| *v >= 4990), 4990);
        for i in 4990..5000u32 {
            let k = format!("key-{i}");
            assert_eq!(t.get(hasher.hash_one(&k), &k), Some(&i));
        }
        assert_eq!(
            t.remove(hasher.hash_one("key-4995"), "key-4995"),
            Some(4995)
        );
        assert_eq!(t.remove(hasher.hash_one("key-4995"), "key-4995"), None);
        assert_eq!(t.len(), 9);
    }
}
