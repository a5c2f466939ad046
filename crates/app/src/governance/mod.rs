//! The governance room: fairness runs over the decision log, the bias incident log, and
//! verification of the hash-chained audit log, and the human review queue (`reviews.rs`).
//!
//! Invariants:
//! - `fairness.rs` is the only code that reads protected attributes, and nothing it computes
//!   flows back into serving.
//! - Every fairness run and every incident change is audited in the same transaction.

pub mod audit_log;
pub mod fairness;
pub mod reviews;

impl crate::App {
    /// Scheduled fairness audits, on one node of the cluster at a time.
    pub(crate) fn fairness_job(&self) -> Option<crate::scheduler::Job> {
        let secs = self.config.fairness.audit_interval_secs;
        (secs > 0).then(|| {
            crate::scheduler::Job::new(
                "fairness_audit",
                std::time::Duration::from_secs(secs),
                crate::scheduler::Reach::OncePerCluster,
                |app| async move {
                    // No surface: each surface in the window is audited on its own.
                    let runs = app
                        .run_fairness("scheduler", &app.default_fairness_request())
                        .await?;
                    let each: Vec<String> = runs
                        .runs
                        .iter()
                        .map(|r| {
                            format!(
                                "{} (run {}): {} decisions, {} findings",
                                r.surface,
                                r.run_id,
                                r.decisions,
                                r.findings.len()
                            )
                        })
                        .collect();
                    Ok(format!("scheduled fairness audit: {}", each.join("; ")))
                },
            )
        })
    }
}
