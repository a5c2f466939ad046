//! The subject-rights room: access and export, erasure with crypto-shredding and a signed
//! receipt, rectification, restriction, and requests with legal deadlines.
//!
//! Invariants:
//! - Export and erasure read through the store's rights calls (`held_events`,
//!   `subject_holdings`), which ignore consent on purpose: they serve the person's own right
//!   of access, never a purpose. Every export is recorded in the audit log as data access.
//! - An erasure commits with its audit entry and its signed receipt in one transaction; after it
//!   commits this node forgets the subject at once (consent, history, preferences, data key) and
//!   other nodes through the change feed. Erasing again with nothing new held returns the first
//!   receipt.
//! - Restriction is a consent record (`restricted` / `restriction_lifted`): the consent engine
//!   itself refuses the purpose, so every read path that asks for a permit obeys it.
//! - The pure rules live in the domain (`candor_domain::rights`, `candor_domain::receipt`).

mod erasure;
mod export;
mod rectify;
mod requests;

use candor_domain::{ReceiptSigner, SubjectKey};

pub use erasure::{BulkErasure, ErasureOutcome};
pub use export::{EXPORT_SCHEMA_VERSION, SubjectExport};
pub use rectify::{Rectification, Rectified};
pub use requests::{NewRequest, RequestUpdate, RequestView};

/// Whom a rights use case is about: the id the shop knows them by (staff and the API), or the
/// subject key itself (the preference center, which holds only the key its signed link names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    External(String),
    Key(SubjectKey),
}

impl From<&str> for SubjectRef {
    fn from(id: &str) -> Self {
        SubjectRef::External(id.to_owned())
    }
}

impl From<&String> for SubjectRef {
    fn from(id: &String) -> Self {
        SubjectRef::External(id.clone())
    }
}

impl From<&SubjectKey> for SubjectRef {
    fn from(key: &SubjectKey) -> Self {
        SubjectRef::Key(key.clone())
    }
}

/// What the rights room keeps: the receipt signing key.
pub(crate) struct RightsRoom {
    signer: ReceiptSigner,
}

impl RightsRoom {
    pub(crate) fn new(master: &candor_domain::envelope::SecretKey) -> Self {
        RightsRoom {
            signer: ReceiptSigner::from_master(master),
        }
    }
}

impl crate::App {
    /// The subject key a reference names, and the external id when it was given.
    fn resolve<'r>(&self, subject: &'r SubjectRef) -> crate::Result<(SubjectKey, Option<&'r str>)> {
        match subject {
            SubjectRef::External(id) => Ok((self.subject_key(id)?, Some(id))),
            SubjectRef::Key(key) => Ok((key.clone(), None)),
        }
    }

    /// The public key that verifies erasure receipts: (key id, 64 hex characters).
    pub fn receipt_public_key(&self) -> (String, String) {
        (
            self.rights.signer.key_id(),
            self.rights.signer.public_key_hex(),
        )
    }
}
