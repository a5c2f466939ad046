//! Candor's domain core: purposes, consent, subjects, API scopes and the audit chain.
//!
//! Invariant: this crate does no I/O. It knows nothing of HTTP, SQL, files, clocks or randomness;
//! callers pass the current time and any random material in. Everything here is a pure function of
//! its inputs, so every rule about consent can be tested without a server or a database.
#![forbid(unsafe_code)]

pub mod alert;
pub mod apikey;
pub mod audience;
pub mod audit;
pub mod budget;
pub mod consent;
pub mod envelope;
mod error;
pub mod feedback;
pub mod incident;
pub mod inventory;
pub mod journey;
pub mod link;
pub mod message;
mod permit;
pub mod preferences;
pub mod profile;
pub mod purpose;
pub mod receipt;
pub mod review;
pub mod rights;
pub mod signals;
pub mod subject;
pub mod transparency;
pub mod webhook;

pub use apikey::Scope;
pub use audit::{AuditAction, AuditDraft, AuditEntry, ChainBreak};
pub use consent::{
    ConsentDecision, ConsentProof, ConsentRecord, ConsentSource, ConsentStatus, NewConsent,
    SubjectConsents,
};
pub use error::DomainError;
pub use incident::IncidentState;
pub use permit::{Permit, Permits};
pub use purpose::{DataCategory, LegalBasis, Purpose, PurposeDraft, PurposeId};
pub use receipt::{ErasureReceipt, ReceiptError, ReceiptSigner};
pub use rights::{
    ErasurePolicy, Jurisdiction, ReceiptPart, RequestClock, RequestKind, RequestState,
};
pub use signals::PrivacySignals;
pub use subject::{ExternalId, Pseudonymizer, SubjectKey};

/// Time as Candor stores it: microseconds since the Unix epoch, UTC. One integer type keeps the
/// two stores (SQLite and PostgreSQL) byte-for-byte comparable and the audit hash canonical.
pub type Micros = i64;

/// The one of `all` whose name is `s`, or an error for `field` listing the names.
pub(crate) fn named<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    field: &str,
    s: &str,
) -> Result<T, DomainError> {
    all.iter().copied().find(|k| name(*k) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|k| name(*k)).collect();
        DomainError::invalid(field, format!("`{s}` is not one of {}", names.join(", ")))
    })
}

/// Converts stored microseconds to an RFC 3339 timestamp for people and JSON.
pub fn format_micros(at: Micros) -> String {
    let nanos = i128::from(at) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// Parses an RFC 3339 timestamp into microseconds.
pub fn parse_rfc3339(s: &str) -> Result<Micros, DomainError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| DomainError::invalid("timestamp", format!("not an RFC 3339 time: {e}")))?;
    Ok((t.unix_timestamp_nanos() / 1000) as Micros)
}

pub const MICROS_PER_DAY: Micros = 86_400 * 1_000_000;
