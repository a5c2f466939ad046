//! Subjects' data keys, unwrapped, kept in memory for the ingest path.
//!
//! Invariant: memory is bounded. Two generations approximate least-recently-used eviction at the
//! cost of two hash lookups: a key found in the old generation moves to the new one, and when the
//! new one is full it becomes the old one (the previous old one is dropped). A key that falls out
//! is unwrapped again from the store on its next use.

use std::collections::HashMap;
use std::sync::Mutex;

use candor_domain::envelope::SecretKey;

pub(crate) struct KeyRing {
    generations: Mutex<Generations>,
    per_generation: usize,
}

/// Keyed by subject key (HMAC output, which nobody can aim at one bucket), so a fast hash serves.
type Generation = HashMap<String, SecretKey, foldhash::fast::RandomState>;

#[derive(Default)]
struct Generations {
    new: Generation,
    old: Generation,
}

impl KeyRing {
    pub(crate) fn new(capacity: usize) -> Self {
        KeyRing {
            generations: Mutex::default(),
            per_generation: (capacity / 2).max(1),
        }
    }

    pub(crate) fn get(&self, subject: &str) -> Option<SecretKey> {
        let mut g = self.generations.lock().expect("key ring lock");
        if let Some(k) = g.new.get(subject) {
            return Some(k.clone());
        }
        let k = g.old.remove(subject)?;
        self.put(&mut g, subject.to_owned(), k.clone());
        Some(k)
    }

    pub(crate) fn remove(&self, subject: &str) {
        let mut g = self.generations.lock().expect("key ring lock");
        g.new.remove(subject);
        g.old.remove(subject);
    }

    pub(crate) fn insert(&self, subject: String, key: SecretKey) {
        let mut g = self.generations.lock().expect("key ring lock");
        self.put(&mut g, subject, key);
    }

    fn put(&self, g: &mut Generations, subject: String, key: SecretKey) {
        if g.new.len() >= self.per_generation {
            g.old = std::mem::take(&mut g.new);
        }
        g.new.insert(subject, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recently_used_keys_survive_and_memory_is_bounded() {
        let ring = KeyRing::new(4);
        let key = |b: u8| SecretKey::from_bytes([b; 32]);
        ring.insert("a".into(), key(1));
        ring.insert("b".into(), key(2));
        // "a" is used again, so it outlives "b".
        ring.insert("c".into(), key(3));
        assert!(ring.get("a").is_some());
        ring.insert("d".into(), key(4));
        ring.insert("e".into(), key(5));
        assert!(ring.get("a").is_some(), "recently used");
        assert!(ring.get("b").is_none(), "least recently used is gone");
        let g = ring.generations.lock().unwrap();
        assert!(g.new.len() + g.old.len() <= 4);
    }
}
