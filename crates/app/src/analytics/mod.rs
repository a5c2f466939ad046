//! The private-analytics room: differentially private aggregates of events and decisions, the
//! persistent privacy-budget ledger, exact aggregates for auditors, and the transparency report.
//!
//! Invariants:
//! - **Reads go through consent.** Every row a query counts comes out of the store's
//!   `AnalyticsPage::permitted` with a permit for the configured aggregate-only purpose
//!   (`analytics.purpose`), asked of the consent room at query time, so a revocation takes
//!   effect on the next query. A person-level purpose is refused as the analytics purpose.
//! - **Spend before read.** A query is planned from its parameters alone (`candor_analytics`),
//!   charged to the ledger (refused there, with nothing spent, past the budget), and only then
//!   reads data. A release that fails after the charge keeps the charge: budget is never
//!   refunded, not by failures, erasures or retention.
//! - Only auditor keys see exact aggregates, and each one is written to the audit log with its
//!   reason before it is computed.
//!
//! Files: `query.rs` (requests, plans, releases, exact aggregates), `ledger.rs` (budget view and
//! verification), `report.rs` (the transparency report).

pub mod ledger;
pub mod query;
pub mod report;

pub use ledger::{BudgetView, LedgerVerification};
pub use query::{Accuracy, ExactAnswer, LabelledCell, PrivateAnswer, QueryRequest, Quote};
pub use report::{PublishedReport, RightsFigures, TransparencyReport};

#[cfg(test)]
mod tests;
