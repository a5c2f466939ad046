//! Fairness runs over Candor's own decision log, and the bias incident log. ("Audit log" is
//! the hash-chained log of changes, `audit_log.rs`; a fairness run is recorded in it like any
//! other change.)
//!
//! Invariant: this is the only module that reads protected attributes, and it reads them only to
//! measure decisions by group; nothing it computes flows back into a recommendation.

use std::collections::BTreeMap;

use candor_domain::{AuditDraft, IncidentState, MICROS_PER_DAY, Micros, format_micros};
use candor_fairness::{
    AuditOptions, Decision, DecisionsBuilder, Finding, Report, Scope, Thresholds, audit_decisions,
    findings,
};
pub use candor_store::Incident;
use candor_store::{FairnessDecision, IncidentInput};
use serde_json::json;

use crate::{App, AppError, Result};

/// What one audit run (one surface) found.
#[derive(Debug, Clone)]
pub struct FairnessRun {
    pub run_id: i64,
    /// The decision surface audited (`offer`, `home`, ...).
    pub surface: String,
    /// The window audited: decisions made at or after `since`, up to the run (`at`).
    pub since: Micros,
    pub at: Micros,
    pub decisions: usize,
    pub findings: Vec<Finding>,
    pub incidents_opened: Vec<i64>,
    pub incidents_updated: Vec<i64>,
    pub report: Report,
}

/// What one audit request found: one run per surface present in the window, by surface.
#[derive(Debug, Clone)]
pub struct FairnessRuns {
    pub runs: Vec<FairnessRun>,
    /// Decisions audited over all runs.
    pub decisions: usize,
    /// Every run's findings, in run order.
    pub findings: Vec<Finding>,
}

/// The newest stored run of one surface, with its findings.
#[derive(Debug, Clone)]
pub struct LatestFairnessRun {
    pub run_id: i64,
    /// '' for a run recorded before runs were per surface.
    pub surface: String,
    pub since: Micros,
    pub at: Micros,
    pub report: Report,
    pub findings: Vec<Finding>,
}

/// What a fairness run looks at; defaults come from the `[fairness]` configuration.
#[derive(Debug, Clone)]
pub struct FairnessRequest {
    pub attributes: Vec<String>,
    /// One surface; `None` audits every surface in the window, each separately.
    pub surface: Option<String>,
    pub since: Micros,
    /// Members a group needs to be the four-fifths reference group.
    pub min_reference_size: u64,
}

impl App {
    pub fn default_fairness_request(&self) -> FairnessRequest {
        FairnessRequest {
            attributes: self.config.fairness.attributes.clone(),
            surface: None,
            since: self.now() - i64::from(self.config.fairness.lookback_days) * MICROS_PER_DAY,
            min_reference_size: candor_fairness::DEFAULT_MIN_REFERENCE_SIZE,
        }
    }

    /// Audits the decision log by protected group, one run per surface (each surface's
    /// decisions carry different data: offers have outcomes, recommendations have ranks and
    /// none), records each run, and opens or updates an incident per finding and surface.
    pub async fn run_fairness(&self, actor: &str, req: &FairnessRequest) -> Result<FairnessRuns> {
        if req.attributes.is_empty()
            || req.attributes.len() > 4
            || req.attributes.iter().any(|a| a.is_empty() || a.len() > 40)
        {
            return Err(AppError::invalid(
                "attributes",
                "name 1-4 protected attributes",
            ));
        }
        if req
            .surface
            .as_deref()
            .is_some_and(|s| s.is_empty() || s.len() > 40)
        {
            return Err(AppError::invalid("surface", "must be 1-40 characters"));
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
        let mut by_surface: BTreeMap<&str, Vec<&FairnessDecision>> = BTreeMap::new();
        for d in &log {
            by_surface.entry(d.surface.as_str()).or_default().push(d);
        }
        let mut out = FairnessRuns {
            runs: Vec::with_capacity(by_surface.len()),
            decisions: 0,
            findings: Vec::new(),
        };
        for (surface, rows) in by_surface {
            let run = self.run_surface(actor, req, surface, &rows).await?;
            out.decisions += run.decisions;
            out.findings.extend(run.findings.iter().cloned());
            out.runs.push(run);
        }
        Ok(out)
    }

    async fn run_surface(
        &self,
        actor: &str,
        req: &FairnessRequest,
        surface: &str,
        log: &[&FairnessDecision],
    ) -> Result<FairnessRun> {
        // A column is audited only when every decision of the surface has it (a table's optional
        // columns are all-or-none): offers with a pending outcome are audited without outcomes.
        let has_label = log.iter().all(|d| d.outcome.is_some());
        let has_score = log.iter().all(|d| d.score.is_some());
        let has_rank = log.iter().all(|d| d.position.is_some_and(|p| p >= 1));
        let mut builder = DecisionsBuilder::new(req.attributes.iter().cloned());
        let mut values: Vec<&str> = Vec::with_capacity(req.attributes.len());
        for d in log {
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
                    label: d.outcome.filter(|_| has_label),
                    score: d.score.filter(|_| has_score),
                    rank: d
                        .position
                        .filter(|_| has_rank)
                        .map(|p| u32::try_from(p).unwrap_or(u32::MAX)),
                    weight: None,
                })
                .map_err(|e| AppError::invalid("decisions", e.to_string()))?;
        }
        let options = AuditOptions {
            min_reference_size: req.min_reference_size,
            ..AuditOptions::default()
        };
        let now = self.now();
        let mut report = audit_decisions(&builder.build(), &options)
            .map_err(|e| AppError::invalid("decisions", e.to_string()))?;
        report.scope = Some(Scope {
            surface: Some(surface.to_owned()),
            since: format_micros(req.since),
            until: format_micros(now),
        });
        let found = findings(&report, &Thresholds::default());
        let inputs: Vec<IncidentInput> = found
            .iter()
            .map(|f| IncidentInput {
                surface: surface.to_owned(),
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
            json!({"surface": surface, "since": req.since, "decisions": log.len(), "attributes": req.attributes, "findings": found.iter().map(|f| &f.key).collect::<Vec<_>>()}),
        );
        let (run_id, incidents) = self
            .store
            .record_fairness_run(
                now,
                surface,
                req.since,
                actor,
                log.len() as i64,
                &report_json,
                &inputs,
                &audit,
            )
            .await?;
        for f in &found {
            metrics::counter!("candor_fairness_findings_total", "metric" => f.metric.clone(), "surface" => surface.to_owned())
                .increment(1);
        }
        Ok(FairnessRun {
            run_id,
            surface: surface.to_owned(),
            since: req.since,
            at: now,
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

    /// The newest stored run of `surface`, or without one the newest run of every surface
    /// (ordered by surface), each with its findings. Empty when none has run.
    pub async fn latest_fairness_reports(
        &self,
        surface: Option<&str>,
    ) -> Result<Vec<LatestFairnessRun>> {
        let runs = self.store.latest_fairness_runs(surface).await?;
        runs.into_iter()
            .map(|run| {
                let report: Report = serde_json::from_str(&run.report)
                    .map_err(|e| AppError::Internal(format!("stored report unreadable: {e}")))?;
                let found = findings(&report, &Thresholds::default());
                Ok(LatestFairnessRun {
                    run_id: run.id,
                    surface: run.surface,
                    since: run.since,
                    at: run.at,
                    report,
                    findings: found,
                })
            })
            .collect()
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
