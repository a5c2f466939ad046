//! The in-memory consent cache.
//!
//! Invariants:
//! - An entry marked `complete` holds every record the store had when it was loaded, merged with
//!   every record applied since; merging is monotonic by sequence number, so a slow load can
//!   never overwrite a newer decision.
//! - Anything that may have missed a record (eviction, a lost notification connection) bumps the
//!   epoch; a load that started in an older epoch never marks its entry complete.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use candor_domain::{ConsentRecord, SubjectConsents, SubjectKey};

const SHARDS: usize = 32;

/// Subject keys are HMAC output, which nobody can aim at one bucket, so a fast hash serves.
type Shard = HashMap<SubjectKey, Entry, foldhash::fast::RandomState>;

#[derive(Default)]
struct Entry {
    consents: SubjectConsents,
    complete: bool,
}

pub(crate) struct ConsentCache {
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
    epoch: AtomicU64,
}

impl ConsentCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ConsentCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            epoch: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &SubjectKey) -> &RwLock<Shard> {
        // Subject keys are HMAC output, so their leading bytes are uniformly distributed.
        let b = key.as_str().as_bytes();
        let h = usize::from(b[0]) * 31 + usize::from(b[1]);
        &self.shards[h % SHARDS]
    }

    /// Runs `f` on a complete entry, or returns `None` if the subject must be loaded first.
    pub(crate) fn with<R>(
        &self,
        key: &SubjectKey,
        f: impl FnOnce(&SubjectConsents) -> R,
    ) -> Option<R> {
        let shard = self.shard(key).read().expect("consent cache lock");
        shard
            .get(key)
            .filter(|e| e.complete)
            .map(|e| f(&e.consents))
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Merges a full history loaded from the store in epoch `epoch`.
    pub(crate) fn merge_loaded(&self, key: &SubjectKey, history: &[ConsentRecord], epoch: u64) {
        let mut shard = self.shard(key).write().expect("consent cache lock");
        if shard.len() >= self.per_shard && !shard.contains_key(key) {
            shard.clear();
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let entry = shard.entry(key.clone()).or_default();
        for r in history {
            entry.consents.apply(r);
        }
        if self.epoch() == epoch {
            entry.complete = true;
        }
    }

    /// Applies records this node just committed.
    pub(crate) fn apply(&self, key: &SubjectKey, records: &[ConsentRecord]) {
        let mut shard = self.shard(key).write().expect("consent cache lock");
        let entry = shard.entry(key.clone()).or_default();
        for r in records {
            entry.consents.apply(r);
        }
    }

    /// Another node changed this subject: reload from the store on next use.
    pub(crate) fn invalidate(&self, key: &SubjectKey) {
        if let Some(e) = self
            .shard(key)
            .write()
            .expect("consent cache lock")
            .get_mut(key)
        {
            e.complete = false;
        }
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for s in &self.shards {
            s.write().expect("consent cache lock").clear();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().expect("consent cache lock").len())
            .sum()
    }
}
