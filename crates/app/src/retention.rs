//! Retention: delete or anonymize data by category and age, and purge anonymous session data.
//!
//! Invariants: every pass is recorded in the audit log with what it removed, so retention is as
//! accountable as any other change; serving's in-memory histories forget what each step removed
//! as soon as it is done.

use candor_domain::{AuditDraft, DataCategory, MICROS_PER_DAY};
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
        let mut report = RetentionReport::default();
        for rule in &self.config.retention {
            let category = DataCategory::parse(&rule.category)?.to_string();
            if let Some(days) = rule.delete_after_days {
                let cutoff = now - i64::from(days) * MICROS_PER_DAY;
                let n = self.store.delete_events_before(&category, cutoff).await?;
                self.retention_applied(&category, cutoff).await;
                report.deleted.push((category.clone(), n));
            }
            if let Some(days) = rule.anonymize_after_days {
                let cutoff = now - i64::from(days) * MICROS_PER_DAY;
                let n = self
                    .store
                    .anonymize_events_before(&category, cutoff)
                    .await?;
                self.retention_applied(&category, cutoff).await;
                report.anonymized.push((category.clone(), n));
            }
        }
        let cutoff = now - i64::from(self.config.ingest.anonymous_retention_hours) * 3_600_000_000;
        report.anonymous_sessions_deleted =
            self.store.delete_anonymous_events_before(cutoff).await?;
        self.retention_applied("", cutoff).await;
        report.message_ids_forgotten = self
            .store
            .forget_message_ids_before(
                now - i64::from(self.config.ingest.dedup_window_days) * MICROS_PER_DAY,
            )
            .await?;
        self.audit(&AuditDraft::new(
            actor,
            "retention.run",
            "events",
            json!(report),
        ))
        .await?;
        Ok(report)
    }
}
