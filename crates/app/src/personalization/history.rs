//! Subjects' recent behavior in memory, for serving.
//!
//! At level `full` a recommendation needs the subject's newest `recommend.history_limit` item
//! events. Reading them from the store was two thirds of a request and all of its thread
//! hand-offs, so each subject's window is kept here in compact form (item index in the serving
//! catalog, time, interned data category, a 16-bit tag of the message id, an anonymous bit:
//! 16 bytes an event), loaded on first use like the consent cache.
//!
//! Invariants:
//! - **A ready entry is what [`Store::item_events`] would answer now** (the subject's newest
//!   `history_limit` item events, every category), with item ids mapped to the catalog of the
//!   serving generation the entry names. It stays so because:
//!   - every batch this node stores is noted right after its transaction commits
//!     ([`App::note_stored_events`]): its item events are inserted in time order into ready
//!     entries, the oldest falling out beyond the limit. A load may already have read an event
//!     that is noted afterwards, so an event equal in time, item, category and message-id tag to
//!     one held is not inserted twice (the one case this merges two stored rows: a message sent
//!     again, unchanged, after `ingest.dedup_window_days`, which the store keeps twice);
//!   - a load first marks the subject as loading; any change to the subject noted while it reads
//!     (an event, an invalidation, a clear) marks the load dirty, and a dirty load answers its
//!     own request but is not kept. Eviction removes markers' loads from consideration the same
//!     way: a load whose marker is gone is not kept;
//!   - changes that remove or move events invalidate: an identity link (the known subject gains
//!     the session's events, the anonymous one loses them), retention passes (every entry holding
//!     an event the pass removes or anonymizes), and a change-feed resync. Erasure of a subject
//!     must call [`App::forget_history`];
//!   - a catalog change starts a new serving generation; entries of an older one are misses;
//!   - on PostgreSQL, other nodes' changes arrive through the change feed: a node announces the
//!     subjects whose events it stored or linked, and its retention passes, right after it
//!     commits (`Store::announce_histories`; its own announcements come back to it and are
//!     ignored), and the receivers invalidate those entries.
//!
//!   The exceptions, bounded or outside serving: an announcement is sent after its commit, not
//!   in it (the ingest transaction is shared by many requests), so a node that stops between the
//!   two leaves the others stale until an entry is older than `recommend.history_cache_ttl_ms`
//!   (PostgreSQL only; the embedded store has one node). Events loaded in bulk through
//!   `Store::insert_events` (the demo loader, benchmarks) are not noted: they populate a store
//!   before it serves.
//! - **It holds inputs, never answers, and never decides consent.** `App::recommend` checks the
//!   recommendation purpose for every request before it reads or loads an entry, filters the
//!   events by the data categories the purpose may use at that moment, and computes the answer
//!   afresh. Any consent change of the subject (here, or another node's through the change feed)
//!   drops the entry, and a request that finds the purpose not allowed (e.g. expired) drops it
//!   too, so behavior is not kept in memory for a purpose that may not use it.
//! - **Bounded**: at most `recommend.history_cache_events` events (each subject counts
//!   [`ENTRY_COST`] more for its bookkeeping). A shard over its share evicts entries not used
//!   since its previous sweep (second chance), then any, until it is 1/8 under.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candor_domain::{DataCategory, Micros, Permit, SubjectKey};
use candor_recommend::serve::Interaction;
use candor_store::{IngestBatch, IngestResult};

use super::recommend::Serving;
use crate::{App, Result};

const SHARDS: usize = 64;
/// What a subject's bookkeeping (key, map slot, vector header) costs, in events' worth of memory.
const ENTRY_COST: usize = 4;
/// Item index of an event whose item is not in the serving catalog: kept so that the window
/// holds exactly the store's newest events, never served.
const NOT_IN_CATALOG: u32 = u32::MAX;
/// Data categories are interned in a table of at most this many (one bit each in a mask).
const MAX_CATEGORIES: usize = 128;

/// One item event, compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HistEvent {
    at: Micros,
    item: u32,
    /// 16 bits of a hash of the message id (0 without one): with time, item and category it
    /// tells an event already held from a new one.
    tag: u16,
    category: u8,
    anonymous: bool,
}

/// Which interned categories the purpose may use, and which is `purchase` (owned items).
#[derive(Debug, Clone, Copy, Default)]
struct CategoryMask {
    allowed: u128,
    purchase: u128,
}

impl CategoryMask {
    fn allows(&self, e: &HistEvent) -> bool {
        self.allowed & (1 << e.category) != 0
    }
    fn is_purchase(&self, e: &HistEvent) -> bool {
        self.purchase & (1 << e.category) != 0
    }
}

/// A subject key's 32 bytes (keys are hex of an HMAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key([u8; 32]);

impl Key {
    fn of(subject: &str) -> Option<Key> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(subject, &mut b).ok()?;
        Some(Key(b))
    }
    fn shard(&self) -> usize {
        usize::from(self.0[0]) % SHARDS
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // HMAC output is uniform and not chosen by callers: eight of its bytes are a hash.
        state.write_u64(u64::from_le_bytes(
            self.0[8..16].try_into().expect("8 bytes"),
        ));
    }
}

/// Passes `Key`'s u64 through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    generation: u64,
    loaded: Instant,
    /// Read since the last eviction sweep of its shard.
    used: AtomicBool,
    /// Oldest first.
    events: Vec<HistEvent>,
}

enum Slot {
    Loading { token: u64, dirty: bool },
    Ready(Entry),
}

impl Slot {
    fn cost(&self) -> usize {
        match self {
            Slot::Loading { .. } => 0,
            Slot::Ready(e) => e.events.len() + ENTRY_COST,
        }
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Slot, BuildHasherDefault<KeyHasher>>,
    cost: usize,
}

impl Shard {
    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.map.remove(key) {
            self.cost -= slot.cost();
        }
    }

    /// Ready entries go, loads in flight become dirty.
    fn invalidate(&mut self, key: &Key) {
        match self.map.get_mut(key) {
            Some(Slot::Loading { dirty, .. }) => *dirty = true,
            Some(Slot::Ready(_)) => self.remove(key),
            None => {}
        }
    }

    /// Invalidates every entry `stale` says holds something no longer true.
    fn invalidate_where(&mut self, stale: impl Fn(&Entry) -> bool) {
        let Shard { map, cost } = self;
        map.retain(|_, slot| match slot {
            Slot::Loading { dirty, .. } => {
                *dirty = true;
                true
            }
            Slot::Ready(e) if stale(e) => {
                *cost -= e.events.len() + ENTRY_COST;
                false
            }
            Slot::Ready(_) => true,
        });
    }

    /// Over `budget`, second-chance eviction down to 7/8 of it: entries not read since they
    /// were loaded or since the previous sweep go first.
    fn evict(&mut self, budget: usize) {
        if self.cost <= budget {
            return;
        }
        let target = budget - budget / 8;
        for _ in 0..2 {
            if self.cost <= target {
                return;
            }
            let Shard { map, cost } = self;
            map.retain(|_, slot| match slot {
                Slot::Loading { .. } => true,
                Slot::Ready(e) => {
                    if *cost > target && !e.used.swap(false, Ordering::Relaxed) {
                        *cost -= e.events.len() + ENTRY_COST;
                        false
                    } else {
                        true
                    }
                }
            });
        }
    }
}

pub(crate) struct HistoryCache {
    shards: Vec<RwLock<Shard>>,
    /// Events (plus [`ENTRY_COST`] per subject) per shard; 0 disables the cache.
    budget: usize,
    limit: usize,
    ttl: Option<Duration>,
    next_token: AtomicU64,
    /// Interned category names with their parsed form (unparseable names are never allowed).
    categories: RwLock<Vec<(Box<str>, Option<DataCategory>)>>,
}

/// A load in flight; dropping it unfinished (an error, a cancelled request) removes its marker.
pub(crate) struct Load<'a> {
    cache: &'a HistoryCache,
    key: Option<Key>,
    token: Option<u64>,
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        if let (Some(key), Some(token)) = (self.key, self.token) {
            let mut shard = self.cache.shards[key.shard()]
                .write()
                .expect("history lock");
            if matches!(shard.map.get(&key), Some(Slot::Loading { token: t, .. }) if *t == token) {
                shard.map.remove(&key);
            }
        }
    }
}

impl HistoryCache {
    pub(crate) fn new(capacity_events: usize, limit: usize, ttl: Option<Duration>) -> Self {
        HistoryCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            budget: capacity_events.div_ceil(SHARDS),
            limit,
            ttl,
            next_token: AtomicU64::new(1),
            categories: RwLock::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn fresh(&self, e: &Entry, generation: u64) -> bool {
        e.generation == generation && self.ttl.is_none_or(|ttl| e.loaded.elapsed() < ttl)
    }

    /// A copy of the subject's window, if a fresh one is held.
    fn get(&self, key: &Key, generation: u64) -> Option<Vec<HistEvent>> {
        let shard = self.shards[key.shard()].read().expect("history lock");
        match shard.map.get(key) {
            Some(Slot::Ready(e)) if self.fresh(e, generation) => {
                e.used.store(true, Ordering::Relaxed);
                Some(e.events.clone())
            }
            _ => None,
        }
    }

    /// Marks the subject as loading, unless another load is in flight (this one is then not
    /// kept).
    fn begin_load(&self, key: Option<Key>) -> Load<'_> {
        let mut load = Load {
            cache: self,
            key,
            token: None,
        };
        let Some(key) = key.filter(|_| self.enabled()) else {
            return load;
        };
        let mut shard = self.shards[key.shard()].write().expect("history lock");
        if !matches!(shard.map.get(&key), Some(Slot::Loading { .. })) {
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            shard.remove(&key);
            shard.map.insert(
                key,
                Slot::Loading {
                    token,
                    dirty: false,
                },
            );
            load.token = Some(token);
        }
        load
    }

    /// Keeps what a clean load read.
    fn finish_load(&self, mut load: Load<'_>, generation: u64, events: &[HistEvent]) {
        let (Some(key), Some(token)) = (load.key, load.token.take()) else {
            return;
        };
        let mut shard = self.shards[key.shard()].write().expect("history lock");
        match shard.map.get(&key) {
            Some(Slot::Loading { token: t, dirty }) if *t == token => {
                if *dirty {
                    shard.map.remove(&key);
                } else {
                    let slot = Slot::Ready(Entry {
                        generation,
                        loaded: Instant::now(),
                        // Earns its keep when read again (a scan does not flush the cache).
                        used: AtomicBool::new(false),
                        events: events.to_vec(),
                    });
                    shard.cost += slot.cost();
                    shard.map.insert(key, slot);
                    shard.evict(self.budget);
                }
            }
            _ => {}
        }
    }

    /// Inserts events this node just stored for the subject (oldest first).
    fn note(&self, key: &Key, generation: u64, new: &[HistEvent]) {
        let mut shard = self.shards[key.shard()].write().expect("history lock");
        let entry = match shard.map.get_mut(key) {
            None => return,
            Some(Slot::Loading { dirty, .. }) => {
                *dirty = true;
                return;
            }
            Some(Slot::Ready(e)) if e.generation != generation => {
                shard.remove(key);
                return;
            }
            Some(Slot::Ready(e)) => e,
        };
        let before = entry.events.len();
        for ev in new {
            let held = entry.events.iter().any(|h| {
                (h.at, h.item, h.category, h.tag) == (ev.at, ev.item, ev.category, ev.tag)
            });
            if !held {
                // Among equal times the later-stored event is the newer, as in the store.
                let at = entry.events.partition_point(|h| h.at <= ev.at);
                entry.events.insert(at, *ev);
            }
        }
        if entry.events.len() > self.limit {
            let extra = entry.events.len() - self.limit;
            entry.events.drain(..extra);
        }
        let after = entry.events.len();
        shard.cost = shard.cost + after - before;
        shard.evict(self.budget);
    }

    fn invalidate(&self, key: &Key) {
        let shard = &self.shards[key.shard()];
        if shard.read().expect("history lock").map.contains_key(key) {
            shard.write().expect("history lock").invalidate(key);
        }
    }

    fn invalidate_where(&self, stale: impl Fn(&Entry) -> bool) {
        for s in &self.shards {
            s.write().expect("history lock").invalidate_where(&stale);
        }
    }

    pub(crate) fn clear(&self) {
        self.invalidate_where(|_| true);
    }

    fn find_category(&self, name: &str) -> Option<u8> {
        find(&self.categories.read().expect("categories lock"), name)
    }

    /// The interned index of a category name, interning it if there is room.
    fn category(&self, name: &str) -> Option<u8> {
        if let Some(i) = self.find_category(name) {
            return Some(i);
        }
        let mut table = self.categories.write().expect("categories lock");
        if let Some(i) = find(&table, name) {
            return Some(i);
        }
        if table.len() == MAX_CATEGORIES {
            return None;
        }
        table.push((name.into(), DataCategory::parse(name).ok()));
        Some((table.len() - 1) as u8)
    }

    /// The interned categories `permit` covers.
    fn mask(&self, permit: &Permit<'_>) -> CategoryMask {
        let table = self.categories.read().expect("categories lock");
        let mut m = CategoryMask::default();
        for (i, (_, c)) in table.iter().enumerate() {
            if let Some(c) = c {
                if permit.covers(c) {
                    m.allowed |= 1 << i;
                }
                if *c == DataCategory::Purchase {
                    m.purchase |= 1 << i;
                }
            }
        }
        m
    }

    /// The compact form of a stored event, or `None` if its category cannot be interned.
    fn compact(
        &self,
        serving: &Serving,
        item_id: &str,
        category: &str,
        at: Micros,
        message_id: Option<&str>,
        anonymous: bool,
    ) -> Option<HistEvent> {
        Some(HistEvent {
            at,
            item: serving.item_index(item_id).unwrap_or(NOT_IN_CATALOG),
            tag: message_id.map_or(0, tag),
            category: self.category(category)?,
            anonymous,
        })
    }

    pub(crate) fn len(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, cost), s| {
            let s = s.read().expect("history lock");
            (n + s.map.len(), cost + s.cost)
        })
    }
}

fn find(table: &[(Box<str>, Option<DataCategory>)], name: &str) -> Option<u8> {
    table
        .iter()
        .position(|(n, _)| &**n == name)
        .map(|i| i as u8)
}

/// FNV-1a of a message id folded to 16 bits (every byte reaches every bit); never 0, which
/// means "no message id".
fn tag(message_id: &str) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in message_id.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    ((h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16).max(1)
}

/// A subject's behavior as the engine takes it: consented item events, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) items: Vec<u32>,
    /// Seconds.
    pub(crate) ts: Vec<i64>,
    /// What the subject did with each item: `purchase` data is a purchase, any other a view
    /// (the window keeps categories, not event names).
    pub(crate) kinds: Vec<Interaction>,
    /// Purchased items (never recommended back).
    pub(crate) owned: Vec<u32>,
}

impl History {
    /// Keeps the events of categories the purpose may use whose item is in the catalog.
    fn from_events(events: impl Iterator<Item = (u32, Micros, bool, bool)>) -> History {
        let mut h = History::default();
        for (item, at, allowed, purchase) in events {
            if allowed && item != NOT_IN_CATALOG {
                h.items.push(item);
                h.ts.push(at / 1_000_000);
                h.kinds.push(if purchase {
                    Interaction::Purchased
                } else {
                    Interaction::Viewed
                });
                if purchase {
                    h.owned.push(item);
                }
            }
        }
        h
    }
}

impl App {
    /// The subject's newest `history_limit` item events that `permit` covers, mapped to
    /// `serving`'s catalog: from memory, or read from the store and kept.
    pub(crate) async fn subject_history(
        &self,
        permit: &Permit<'_>,
        serving: &Serving,
    ) -> Result<History> {
        let key = Key::of(permit.subject().as_str());
        let generation = serving.generation();
        let events = match key.and_then(|k| self.personalization.histories.get(&k, generation)) {
            Some(events) => events,
            None => {
                let load = self.personalization.histories.begin_load(key);
                let mut rows = self
                    .store
                    .item_events(permit, self.config.recommend.history_limit)
                    .await?;
                rows.reverse();
                let compact: Option<Vec<HistEvent>> = rows
                    .iter()
                    .map(|r| {
                        self.personalization.histories.compact(
                            serving,
                            &r.item_id,
                            &r.category,
                            r.at,
                            r.message_id.as_deref(),
                            r.anonymous,
                        )
                    })
                    .collect();
                match compact {
                    Some(events) => {
                        self.personalization
                            .histories
                            .finish_load(load, generation, &events);
                        events
                    }
                    // A category the table has no room for: this read answers, nothing is kept.
                    None => {
                        return Ok(History::from_events(rows.iter().map(|r| {
                            (
                                serving.item_index(&r.item_id).unwrap_or(NOT_IN_CATALOG),
                                r.at,
                                permit.covers_name(&r.category),
                                r.category == "purchase",
                            )
                        })));
                    }
                }
            }
        };
        let mask = self.personalization.histories.mask(permit);
        Ok(History::from_events(events.iter().map(|e| {
            (e.item, e.at, mask.allows(e), mask.is_purchase(e))
        })))
    }

    /// Tells the history cache what a committed ingest batch stored: its item events join the
    /// windows held, and identity links invalidate both subjects (the session's events moved).
    /// Other nodes are told which subjects changed (PostgreSQL), off the request's path.
    pub(crate) fn note_stored_events(&self, batch: &IngestBatch, result: &IngestResult) {
        let serving = self.serving();
        let generation = serving.generation();
        // Only other nodes (PostgreSQL) need to hear which histories changed.
        let announce = self.store.backend() == candor_store::Backend::Postgres;
        let mut changed: Vec<String> = Vec::new();
        for (m, duplicate) in batch.messages.iter().zip(&result.duplicate) {
            if *duplicate {
                continue;
            }
            if let Some((anonymous, known, _)) = &m.link {
                for k in [anonymous, known] {
                    if announce {
                        changed.push(k.clone());
                    }
                    if let Some(key) = Key::of(k) {
                        self.personalization.histories.invalidate(&key);
                    }
                }
            }
            let Some(e) = m.event.as_ref().filter(|e| !e.item_id.is_empty()) else {
                continue;
            };
            if announce {
                changed.push(e.subject_key.clone());
            }
            let Some(key) =
                Key::of(&e.subject_key).filter(|_| self.personalization.histories.enabled())
            else {
                continue;
            };
            match self.personalization.histories.compact(
                &serving,
                &e.item_id,
                &e.category,
                e.at,
                Some(&m.message_id),
                e.anonymous,
            ) {
                Some(ev) => self.personalization.histories.note(&key, generation, &[ev]),
                None => self.personalization.histories.invalidate(&key),
            }
        }
        if !changed.is_empty() {
            changed.sort_unstable();
            changed.dedup();
            let (store, origin) = (self.store.clone(), self.node_id);
            tokio::spawn(async move {
                if let Err(e) = store.announce_histories(origin, &changed).await {
                    tracing::warn!(error = %e, subjects = changed.len(), "announcing history changes failed; other nodes catch up within recommend.history_cache_ttl_ms");
                }
            });
        }
    }

    /// Another node changed these subjects' histories: drop what this node holds of them.
    pub(crate) fn histories_changed_elsewhere(&self, origin: u64, subjects: &[String]) {
        if origin == self.node_id {
            return;
        }
        for s in subjects {
            if let Some(k) = Key::of(s) {
                self.personalization.histories.invalidate(&k);
            }
        }
    }

    /// Drops what memory holds of the subject's behavior (consent changes, erasure).
    /// Forgets every history held (the consent cache was cleared, or purposes changed).
    pub(crate) fn clear_histories(&self) {
        self.personalization.histories.clear();
    }

    pub(crate) fn forget_history(&self, subject: &SubjectKey) {
        if let Some(k) = Key::of(subject.as_str()) {
            self.personalization.histories.invalidate(&k);
        }
    }

    /// After a retention pass removed or anonymized `category` events before `cutoff`; an
    /// empty category means anonymous session data.
    pub(crate) fn history_retention(&self, category: &str, cutoff: Micros) {
        if category.is_empty() {
            self.personalization
                .histories
                .invalidate_where(|e| e.events.iter().any(|h| h.anonymous));
            return;
        }
        // A category never interned is held by no entry.
        let Some(c) = self.personalization.histories.find_category(category) else {
            return;
        };
        self.personalization
            .histories
            .invalidate_where(|e| e.events.iter().any(|h| h.category == c && h.at < cutoff));
    }

    /// Subjects and events held (with bookkeeping), for metrics and benchmarks.
    pub fn history_cache_len(&self) -> (usize, usize) {
        self.personalization.histories.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: u64 = 7;

    fn key(n: u8) -> Key {
        let mut b = [n; 32];
        b[0] = n;
        Key(b)
    }

    fn ev(at: Micros, item: u32, msg: &str) -> HistEvent {
        HistEvent {
            at,
            item,
            tag: tag(msg),
            category: 0,
            anonymous: false,
        }
    }

    fn items(c: &HistoryCache, k: &Key) -> Option<Vec<u32>> {
        c.get(k, GEN).map(|v| v.iter().map(|e| e.item).collect())
    }

    fn load(c: &HistoryCache, k: Key, store: &[HistEvent]) {
        let l = c.begin_load(Some(k));
        c.finish_load(l, GEN, store);
    }

    #[test]
    fn a_change_noted_during_a_load_keeps_the_load_from_being_kept() {
        let c = HistoryCache::new(10_000, 3, None);
        let k = key(1);
        let l = c.begin_load(Some(k));
        // The load read [1]; meanwhile an event (2) commits and is noted.
        c.note(&k, GEN, &[ev(20, 2, "m2")]);
        c.finish_load(l, GEN, &[ev(10, 1, "m1")]);
        assert_eq!(items(&c, &k), None, "a dirty load is not kept");
        load(&c, k, &[ev(10, 1, "m1"), ev(20, 2, "m2")]);
        assert_eq!(items(&c, &k), Some(vec![1, 2]));
        // Invalidation and clearing during a load have the same effect.
        for change in [
            |c: &HistoryCache, k: &Key| c.invalidate(k),
            |c: &HistoryCache, _: &Key| c.clear(),
        ] {
            let l = c.begin_load(Some(k));
            change(&c, &k);
            c.finish_load(l, GEN, &[ev(10, 1, "m1")]);
            assert_eq!(items(&c, &k), None);
        }
    }

    #[test]
    fn noted_events_join_in_time_order_once_and_the_window_keeps_the_newest() {
        let c = HistoryCache::new(10_000, 3, None);
        let k = key(2);
        // The load already read m2, which is noted after it finished.
        load(&c, k, &[ev(10, 1, "m1"), ev(20, 2, "m2")]);
        c.note(&k, GEN, &[ev(20, 2, "m2")]);
        assert_eq!(items(&c, &k), Some(vec![1, 2]), "no duplicate");
        // Same time and item, another message: a second event.
        c.note(&k, GEN, &[ev(20, 2, "m3")]);
        assert_eq!(items(&c, &k), Some(vec![1, 2, 2]));
        // A late-arriving older event goes into place; beyond the limit the oldest falls out.
        c.note(&k, GEN, &[ev(15, 4, "m4")]);
        assert_eq!(items(&c, &k), Some(vec![4, 2, 2]));
        c.note(&k, GEN, &[ev(5, 5, "m5")]);
        assert_eq!(
            items(&c, &k),
            Some(vec![4, 2, 2]),
            "older than a full window"
        );
        // Subjects not held are not created by notes.
        c.note(&key(3), GEN, &[ev(1, 1, "x")]);
        assert_eq!(items(&c, &key(3)), None);
        assert_eq!(c.len(), (1, 3 + ENTRY_COST));
    }

    #[test]
    fn another_catalog_generation_or_age_beyond_the_ttl_is_a_miss() {
        let c = HistoryCache::new(10_000, 3, None);
        let k = key(4);
        load(&c, k, &[ev(10, 1, "m1")]);
        assert!(c.get(&k, GEN + 1).is_none());
        c.note(&k, GEN + 1, &[ev(20, 2, "m2")]);
        assert_eq!(
            items(&c, &k),
            None,
            "a note from another catalog drops the entry"
        );

        let c = HistoryCache::new(10_000, 3, Some(Duration::from_millis(30)));
        load(&c, k, &[ev(10, 1, "m1")]);
        assert_eq!(items(&c, &k), Some(vec![1]));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(items(&c, &k), None);
    }

    #[test]
    fn an_abandoned_load_leaves_no_marker_and_a_second_concurrent_load_is_not_kept() {
        let c = HistoryCache::new(10_000, 3, None);
        let k = key(5);
        drop(c.begin_load(Some(k)));
        load(&c, k, &[ev(10, 1, "m1")]);
        assert_eq!(items(&c, &k), Some(vec![1]));

        let k = key(6);
        let first = c.begin_load(Some(k));
        let second = c.begin_load(Some(k));
        c.finish_load(second, GEN, &[ev(10, 1, "m1")]);
        assert_eq!(items(&c, &k), None);
        c.finish_load(first, GEN, &[ev(10, 1, "m1")]);
        assert_eq!(items(&c, &k), Some(vec![1]));
    }

    #[test]
    fn memory_stays_within_budget_and_recently_used_subjects_stay() {
        // One shard's budget: 64 x (2 events + bookkeeping) in all.
        let per_subject = 2 + ENTRY_COST;
        let c = HistoryCache::new(SHARDS * 8 * per_subject, 2, None);
        let in_shard0 = |n: u8| {
            let mut b = [n; 32];
            b[0] = 0;
            Key(b)
        };
        let hot = in_shard0(200);
        load(&c, hot, &[ev(1, 1, "a"), ev(2, 2, "b")]);
        for n in 1..100u8 {
            load(&c, in_shard0(n), &[ev(1, 1, "a"), ev(2, 2, "b")]);
            assert!(
                items(&c, &hot).is_some(),
                "the subject in use is kept ({n})"
            );
            let (_, cost) = c.len();
            assert!(cost <= 8 * per_subject, "{cost}");
        }
        assert!(c.len().0 < 9);
    }

    #[test]
    fn categories_intern_and_masks_follow_the_purpose() {
        let c = HistoryCache::new(10_000, 3, None);
        assert_eq!(c.category("browsing"), Some(0));
        assert_eq!(c.category("purchase"), Some(1));
        assert_eq!(c.category("not a category"), Some(2));
        assert_eq!(c.category("browsing"), Some(0));
        let purpose = candor_domain::PurposeDraft {
            id: "p".into(),
            title: "P".into(),
            description: "Uses what you buy.".into(),
            // Contract: permitted without a consent record, which this test need not build.
            legal_basis: "contract".into(),
            categories: vec!["purchase".into()],
            ..Default::default()
        }
        .validate()
        .unwrap();
        let subject = SubjectKey::parse(&"d".repeat(64)).unwrap();
        let permit = candor_domain::SubjectConsents::default()
            .permit(&subject, &purpose, 1)
            .unwrap();
        let m = c.mask(&permit);
        let with = |category| HistEvent {
            category,
            ..ev(1, 1, "x")
        };
        assert!(!m.allows(&with(0)) && m.allows(&with(1)) && !m.allows(&with(2)));
        assert!(m.is_purchase(&with(1)) && !m.is_purchase(&with(0)));
        for i in 3..MAX_CATEGORIES {
            assert!(c.category(&format!("sensitive:k{i}")).is_some());
        }
        assert_eq!(c.category("sensitive:one_too_many"), None);
    }
}
