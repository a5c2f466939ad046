//! The ingest room: Segment-spec messages through the tracking plan and the consent gate into
//! the store, the tracking plan itself, subjects' data keys, and retention of what was stored.
//!
//! Invariants:
//! - Every message is validated, pseudonymized, and minimized against the tracking plan and the
//!   subject's consent [`Permit`](candor_domain::Permit)s at the moment it is processed
//!   (`gate.rs`). Nothing undeclared and nothing without an allowing purpose is written.
//! - Contact-category values (and anything quarantined) are sealed with the subject's data key
//!   before they leave this room; no plaintext identifier reaches the store, logs or metrics.
//! - Tracking-plan counters are kept in memory and flushed every second (statistics, not
//!   records); a failed flush keeps them for the next one.
//! - Retention passes run in one audited store transaction per pass, and serving's in-memory
//!   histories forget what a pass removed as soon as it commits.

mod gate;
mod inventory;
mod keyring;
pub mod retention;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use candor_domain::envelope::SecretKey;
use candor_domain::inventory::Inventory;

pub use gate::{
    IngestReport, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, RawMessage, RejectCode,
    Rejected,
};
pub use inventory::InventoryView;

/// Unwrapped subject data keys kept in memory (about 100 bytes each).
const DATA_KEYS_IN_MEMORY: usize = 200_000;

/// What the ingest room keeps in memory.
pub(crate) struct IngestRoom {
    inventory: RwLock<Arc<Inventory>>,
    master_key: SecretKey,
    data_keys: keyring::KeyRing,
    /// Tracking-plan counters not yet flushed to the store.
    pending_counts: Mutex<BTreeMap<(String, String), i64>>,
}

impl IngestRoom {
    pub(crate) fn new(master_key: SecretKey) -> Self {
        IngestRoom {
            inventory: RwLock::default(),
            master_key,
            data_keys: keyring::KeyRing::new(DATA_KEYS_IN_MEMORY),
            pending_counts: Mutex::default(),
        }
    }
}

use std::time::Duration;

use crate::App;
use crate::scheduler::{Job, Reach};

impl App {
    /// Flushes the tracking-plan counters every second, and once more at shutdown.
    pub(crate) fn inventory_counter_job(&self) -> Job {
        Job::new(
            "inventory_counters",
            Duration::from_secs(1),
            Reach::EveryNode,
            |app| async move {
                app.flush_inventory_counts().await?;
                Ok(String::new())
            },
        )
        .at_shutdown()
    }

    /// Retention passes, on one node of the cluster at a time.
    pub(crate) fn retention_job(&self) -> Option<Job> {
        let secs = self.config.ingest.retention_interval_secs;
        (secs > 0).then(|| {
            Job::new(
                "retention",
                Duration::from_secs(secs),
                Reach::OncePerCluster,
                |app| async move {
                    let r = app.run_retention("scheduler").await?;
                    Ok(format!(
                        "retention pass: {} anonymous sessions deleted",
                        r.anonymous_sessions_deleted
                    ))
                },
            )
        })
    }
}
