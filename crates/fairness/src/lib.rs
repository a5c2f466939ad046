//! Candor fairness and bias audit engine.
//!
//! Bird's eye view: decisions go in (a CSV file or an in-memory [`Decisions`] table: group
//! attributes, a selected flag, optionally an outcome label, a score, a rank and a sample weight);
//! a [`Report`] comes out (JSON via serde, HTML via [`render_html`]), and [`findings`] turns a
//! report into plain-language bias findings for the incident log.
//!
//! Architecture invariants:
//! - pure library: no HTTP, no storage, no clock; the only I/O is [`csv_input`] reading a file;
//! - every metric is a function of additive per-group statistics ([`stats`]), which is what makes
//!   parallel parsing, intersectional slicing and the cell bootstrap possible;
//! - no NaN leaves the crate: undefined values are `null` plus an [`Undefined`] reason;
//! - definitions match Fairlearn and AIF360 so numbers can be checked against them
//!   (see docs/FAIRNESS.md).

pub mod audit;
pub mod bootstrap;
pub mod csv_input;
pub mod data_audit;
pub mod decision;
pub mod error;
pub mod findings;
pub mod html;
pub mod metrics;
pub mod mitigation;
pub mod recommendation;
pub mod report;
pub mod stats;

pub use audit::{AuditOptions, DEFAULT_MIN_REFERENCE_SIZE, audit_decisions, audit_stats};
pub use bootstrap::Bootstrap;
pub use csv_input::{
    Columns, CsvFormat, Progress, audit_csv, audit_csv_with_progress, read_reference,
};
pub use data_audit::{ProxyOptions, ReferenceDistribution, associate};
pub use decision::{Decision, Decisions, DecisionsBuilder};
pub use error::FairnessError;
pub use findings::{Finding, FindingKind, IncidentDraft, Severity, Thresholds, findings};
pub use html::render_html;
pub use metrics::Undefined;
pub use mitigation::{Candidate, ExposureBand, Reranked, Reweighing, Target, rerank, reweighing};
pub use recommendation::{
    CatalogItem, RecommendationList, RecommendationReport, audit_recommendations,
};
pub use report::{AuditDocument, Estimate, Report, Scope, render_json};
