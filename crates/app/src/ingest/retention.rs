//! Retention: delete or anonymize data by category and age, and purge anonymous session data.
//!
//! Invariants: a pass runs in one store transaction together with its audit entry (what it
//! removed) and its announcements to other nodes, so retention is as accountable as any other
//! change; serving's in-memory histories on this node forget what the pass removed as soon as
//! it commits.

use candor_domain::{AuditDraft, DataCategory, MICROS_PER_DAY};
use candor_store::{RetentionAction, RetentionPass, RetentionStep};
use serde::Serialize;
use serde_json::json;

use crate::{App, Result};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    /// (category, rows deleted)
    pub deleted: Vec<(String, u64)>,
    /// (category, rows anonymized)
    pub anonymized: Vec<(String, u64)>,
    pub anonymous_sessions_deleted: u64,
    /// Message ids older than the dedup window, forgotten.
    pub message_ids_forgotten: u64,
}

impl App {
    /// Applies every configured rule once.
    pub async fn run_retention(&self, actor: &str) -> Result<RetentionReport> {
        let now = self.now();
        let days = |d: u32| now - i64::from(d) * MICROS_PER_DAY;
        let mut steps = Vec::new();
        for rule in &self.config.retention {
            let category = DataCategory::parse(&rule.category)?.to_string();
            if let Some(d) = rule.delete_after_days {
                steps.push(RetentionStep {
                    category: category.clone(),
                    cutoff: days(d),
                    action: RetentionAction::Delete,
                });
            }
            if let Some(d) = rule.anonymize_after_days {
                steps.push(RetentionStep {
                    category,
                    cutoff: days(d),
                    action: RetentionAction::Anonymize,
                });
            }
        }
        let pass = RetentionPass {
            steps,
            anonymous_before: now
                - i64::from(self.config.ingest.anonymous_retention_hours) * 3_600_000_000,
            message_ids_before: days(self.config.ingest.dedup_window_days),
            origin: self.node_id,
        };
        let report_of = |counts: &candor_store::RetentionCounts| {
            let mut report = RetentionReport {
                anonymous_sessions_deleted: counts.anonymous_sessions_deleted,
                message_ids_forgotten: counts.message_ids_forgotten,
                ..Default::default()
            };
            for (step, &n) in pass.steps.iter().zip(&counts.steps) {
                let list = match step.action {
                    RetentionAction::Delete => &mut report.deleted,
                    RetentionAction::Anonymize => &mut report.anonymized,
                };
                list.push((step.category.clone(), n));
            }
            report
        };
        let counts = self
            .store
            .run_retention(&pass, now, |counts| {
                AuditDraft::new(
                    actor,
                    candor_domain::AuditAction::RetentionRun,
                    "events",
                    json!(report_of(counts)),
                )
            })
            .await?;
        for step in &pass.steps {
            self.history_retention(&step.category, step.cutoff);
        }
        self.history_retention("", pass.anonymous_before);
        Ok(report_of(&counts))
    }
}
