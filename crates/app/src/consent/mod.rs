//! The consent room: purposes, consent records, and the cached consent state every read path
//! asks.
//!
//! Invariants:
//! - Every read of consent goes through [`App::consent_status`], [`App::permits`] or
//!   [`App::permit_and_status`] (the in-memory cache backed by the append-only log). A [`Permit`] is the
//!   only way another room may read a subject's behavioural data.
//! - Every write goes through `record_consents`/`import_consents`, which validate, append (with
//!   audit + outbox + notify in one transaction), then **apply to the local cache before
//!   returning**, so any request that starts after the call returned sees it. Other nodes learn
//!   of it through the store's change feed.
//! - The cache merges monotonically by sequence number and marks an entry complete only if no
//!   eviction or resync happened while it loaded (`cache.rs`), so a slow load never resurrects a
//!   revoked grant.
//!
//! [`Permit`]: candor_domain::Permit

mod cache;
mod purposes;
mod record;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use candor_domain::{Purpose, PurposeId};

pub use record::{
    ConsentImportReport, ConsentImportRow, ConsentOutcome, ConsentRequest, ImportedDecision,
    PurposeConsent,
};

/// What the consent room keeps in memory.
pub(crate) struct ConsentRoom {
    purposes: RwLock<Arc<BTreeMap<PurposeId, Purpose>>>,
    cache: cache::ConsentCache,
}

impl ConsentRoom {
    pub(crate) fn new(cache_entries: usize) -> Self {
        ConsentRoom {
            purposes: RwLock::default(),
            cache: cache::ConsentCache::new(cache_entries),
        }
    }
}
