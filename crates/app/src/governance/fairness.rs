//! Fairness runs over Candor's own decision log, and the bias incident log. ("Audit log" is
//! the hash-chained log of changes, `audit_log.rs`; a fairness run is recorded in it like any
//! other change.)
//!
//! Invariant: this is the only module that reads protected attributes, and it reads them only to
//! measure decisions by group; nothing it computes flows back into a recommendation.

use candor_domain::{AuditDraft, IncidentState, MICROS_PER_DAY, Micros};
use candor_fairness::{
    AuditOptions, Decision, DecisionsBuilder, Finding, Report, Thresholds, audit_decisions,
    findings,
};
pub use candor_store::Incident;
use candor_store::IncidentInput;
use serde_json::json;

use crate::{App, AppError, Result};

/// What one audit run found.
#[derive(Debug, Clone)]
pub struct FairnessRun {
    pub run_id: i64,
    pub decisions: usize,
    pub findings: Vec<Finding>,
    pub incidents_opened: Vec<i64>,
    pub incidents_updated: Vec<i64>,
    pub report: Report,
}

/// What a fairness run looks at; defaults come from the `[fairness]` configuration.
#[derive(Debug, Clone)]
pub struct FairnessRequest {
    pub attributes: Vec<String>,
    pub surface: Option<String>,
    pub since: Micros,
}

impl App {
    pub fn default_fairness_request(&self) -> FairnessRequest {
        FairnessRequest {
            attributes: self.config.fairness.attributes.clone(),
            surface: None,
            since: self.now() - i64::from(self.config.fairness.lookback_days) * MICROS_PER_DAY,
        }
    }

    /// Audits the decision log by protected group, records the run, and opens or updates an
    /// incident per finding.
    pub async fn run_fairness(&self, actor: &str, req: &FairnessRequest) -> Result<FairnessRun> {
        if req.attributes.is_empty()
            || req.attributes.len() > 4
            || req.attributes.iter().any(|a| a.is_empty() || a.len() > 40)
        {
            return Err(AppError::invalid(
                "attributes",
                "name 1-4 protected attributes",
            ));
        }
        let log = self
            .store
            .protected_decision_log(req.surface.as_deref(), req.since)
            .await?;
        if log.is_empty() {
            return Err(AppError::invalid(
                "decisions",
                "no decisions in the audited period",
            ));
        }
        let mut builder = DecisionsBuilder::new(req.attributes.iter().cloned());
        let mut values: Vec<&str> = Vec::with_capacity(req.attributes.len());
        for d in &log {
            values.clear();
            for a in &req.attributes {
                // A subject without the attribute on file is its own, visible group.
                values.push(
                    d.attributes
                        .iter()
                        .find(|(k, _)| k == a)
                        .map_or("unknown", |(_, v)| v.as_str()),
                );
            }
            builder
                .push(&Decision {
                    group: &values,
                    selected: d.selected,
                    label: d.outcome,
                    score: d.score,
                    rank: None,
                    weight: None,
                })
                .map_err(|e| AppError::invalid("decisions", e.to_string()))?;
        }
        let report = audit_decisions(&builder.build(), &AuditOptions::default())
            .map_err(|e| AppError::invalid("decisions", e.to_string()))?;
        let found = findings(&report, &Thresholds::default());
        let inputs: Vec<IncidentInput> = found
            .iter()
            .map(|f| IncidentInput {
                finding_key: f.key.clone(),
                metric: f.metric.clone(),
                severity: serde_json::to_value(f.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                groups_affected: f.groups_affected.join(", "),
                value: f.value,
                magnitude: f.magnitude,
                summary: f.summary.clone(),
                recommended_action: f.action.clone(),
                finding: serde_json::to_string(f).unwrap_or_default(),
            })
            .collect();
        let report_json =
            serde_json::to_string(&report).map_err(|e| AppError::Internal(e.to_string()))?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::FairnessRun,
            "decision_log",
            json!({"decisions": log.len(), "attributes": req.attributes, "findings": found.iter().map(|f| &f.key).collect::<Vec<_>>()}),
        );
        let (run_id, incidents) = self
            .store
            .record_fairness_run(
                self.now(),
                actor,
                log.len() as i64,
                &report_json,
                &inputs,
                &audit,
            )
            .await?;
        for f in &found {
            metrics::counter!("candor_fairness_findings_total", "metric" => f.metric.clone())
                .increment(1);
        }
        Ok(FairnessRun {
            run_id,
            decisions: log.len(),
            incidents_opened: incidents
                .iter()
                .filter(|(_, new)| *new)
                .map(|(id, _)| *id)
                .collect(),
            incidents_updated: incidents
                .iter()
                .filter(|(_, new)| !*new)
                .map(|(id, _)| *id)
                .collect(),
            findings: found,
            report,
        })
    }

    /// The latest stored report with its findings.
    pub async fn latest_fairness_report(&self) -> Result<Option<(Report, Vec<Finding>, Micros)>> {
        let Some(run) = self.store.latest_fairness_run().await? else {
            return Ok(None);
        };
        let report: Report = serde_json::from_str(&run.report)
            .map_err(|e| AppError::Internal(format!("stored report unreadable: {e}")))?;
        let found = findings(&report, &Thresholds::default());
        Ok(Some((report, found, run.at)))
    }

    pub async fn incidents(&self, status: Option<&str>, limit: i64) -> Result<Vec<Incident>> {
        let status = status.map(IncidentState::parse).transpose()?;
        Ok(self
            .store
            .incidents(status.map(IncidentState::as_str), limit.clamp(1, 1000))
            .await?)
    }

    /// Records the action taken on an incident and, when resolved, how.
    pub async fn update_incident(
        &self,
        actor: &str,
        id: i64,
        status: &str,
        action_taken: Option<&str>,
        resolution: Option<&str>,
    ) -> Result<Incident> {
        let state = IncidentState::parse(status)?;
        for (field, v) in [("action_taken", action_taken), ("resolution", resolution)] {
            if v.is_some_and(|t| t.trim().is_empty() || t.chars().count() > 4000) {
                return Err(AppError::invalid(field, "must be 1-4000 characters"));
            }
        }
        state.check_change(resolution)?;
        let status = state.as_str();
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::IncidentUpdate,
            id.to_string(),
            json!({"status": status, "action_taken": action_taken, "resolution": resolution}),
        );
        Ok(self
            .store
            .update_incident(id, status, action_taken, resolution, self.now(), &audit)
            .await?)
    }
}
