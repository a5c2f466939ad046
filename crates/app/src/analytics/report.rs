//! The yearly transparency report: generated from the records, its consent rates under
//! differential privacy (charged to the ledger like any query), signed, stored and audited.
//!
//! Rights-request figures come from the rights room when it has them; until then the report
//! takes them as an optional input and says "no records".

use std::collections::BTreeMap;

use candor_analytics::report::{
    CategoryLine, FairnessLine, ModelLine, PurposeLine, RetentionLine, consent_rates,
};
pub use candor_analytics::report::{RightsFigures, TransparencyReport};
use candor_domain::budget::{BudgetAccount, BudgetSpend, period_of};
use candor_domain::transparency::{sign_report, verify_report};
use candor_domain::{
    AuditAction, AuditDraft, Micros, SubjectConsents, SubjectKey, format_micros, parse_rfc3339,
};
use candor_store::StoredReport;

use crate::{App, AppError, Result};

/// ε one report spends on its consent rates.
pub const REPORT_EPSILON: f64 = 0.5;
/// The ledger account reports are charged to.
pub const REPORT_ANALYST: &str = "transparency-report";
const PAGE: i64 = 5000;

/// A stored report, read back and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedReport {
    pub id: String,
    pub report: TransparencyReport,
    pub body: String,
    pub signature: String,
    /// Whether the signature matches the stored body.
    pub valid: bool,
}

fn year_bounds(period: &str) -> Result<(Micros, Micros)> {
    let year: i32 = period
        .parse()
        .ok()
        .filter(|y| (1970..=9998).contains(y) && period.len() == 4)
        .ok_or_else(|| {
            AppError::invalid("period", format!("`{period}` is not a year like 2026"))
        })?;
    Ok((
        parse_rfc3339(&format!("{year:04}-01-01T00:00:00Z"))?,
        parse_rfc3339(&format!("{:04}-01-01T00:00:00Z", year + 1))?,
    ))
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn number_sum(v: &serde_json::Value) -> u64 {
    // Retention details list (category, rows) pairs.
    v.as_array().map_or(0, |pairs| {
        pairs
            .iter()
            .filter_map(|p| p.get(1).and_then(serde_json::Value::as_u64))
            .sum()
    })
}

impl App {
    /// Builds the report for `period` (a year), charges its private figures to the ledger,
    /// signs and stores it. Rights requests come from the rights room.
    pub async fn publish_transparency_report(
        &self,
        actor: &str,
        period: &str,
    ) -> Result<PublishedReport> {
        let (since, until) = year_bounds(period)?;
        let rights = self.rights_figures(since, until).await?;
        let now = self.now();
        if since > now {
            return Err(AppError::invalid("period", "that year has not started"));
        }
        let at = until.min(now);
        let spend = BudgetSpend {
            account: BudgetAccount {
                analyst: REPORT_ANALYST.into(),
                period: period_of(now),
                dataset: "consents".into(),
            },
            epsilon: REPORT_EPSILON,
            delta: 0.0,
            query: serde_json::json!({"report": "transparency", "period": period}),
        };
        let limits = &self.config.analytics;
        self.store
            .spend_budget(now, &spend, (limits.budget_epsilon, limits.budget_delta))
            .await?;
        let purposes = self.purposes();
        let list: Vec<_> = purposes.values().collect();
        // Consent state of every subject at the end of the period.
        let mut granted = vec![0.0; list.len()];
        let mut asked = 0.0;
        let mut after = String::new();
        loop {
            let keys = self.store.consent_subjects_page(&after, PAGE).await?;
            let Some(last) = keys.last().cloned() else {
                break;
            };
            let records = self.store.consent_histories_between(&after, &last).await?;
            after = last;
            for history in records.chunk_by(|a, b| a.subject == b.subject) {
                let key: &SubjectKey = &history[0].subject;
                let state = SubjectConsents::from_history(history.iter().filter(|r| r.at < at));
                asked += 1.0;
                for (i, p) in list.iter().enumerate() {
                    if state.permit(key, p, at).is_some() {
                        granted[i] += 1.0;
                    }
                }
            }
        }
        let (noisy, noisy_asked, rates) = consent_rates(&granted, asked, REPORT_EPSILON)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        // What the audit log recorded in the period.
        let mut retention = RetentionLine {
            rules: self
                .config
                .retention
                .iter()
                .map(|r| match (r.delete_after_days, r.anonymize_after_days) {
                    (Some(d), _) => format!("{}: deleted after {d} days", r.category),
                    (None, Some(d)) => format!("{}: anonymized after {d} days", r.category),
                    (None, None) => format!("{}: kept", r.category),
                })
                .collect(),
            ..RetentionLine::default()
        };
        let mut fairness = FairnessLine::default();
        let mut approvals = 0;
        let actions = [
            AuditAction::RetentionRun,
            AuditAction::FairnessRun,
            AuditAction::ModelActivate,
        ]
        .map(AuditAction::as_str);
        for e in self.store.audit_entries_of(&actions, since, until).await? {
            match AuditAction::parse(&e.action) {
                Some(AuditAction::RetentionRun) => {
                    retention.runs += 1;
                    let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
                    retention.deleted += number_sum(&d["deleted"]);
                    retention.anonymized += number_sum(&d["anonymized"]);
                }
                Some(AuditAction::FairnessRun) => fairness.audits += 1,
                Some(AuditAction::ModelActivate) => approvals += 1,
                _ => {}
            }
        }
        for i in self.incidents(None, 1000).await? {
            if i.opened_at >= since && i.opened_at < until {
                fairness.incidents_opened += 1;
                if i.status == "resolved" {
                    fairness.incidents_resolved += 1;
                }
                fairness
                    .incidents
                    .push((i.id, i.status.clone(), i.input.summary.clone()));
            }
        }
        let models = self
            .model_versions()
            .await?
            .into_iter()
            .filter(|m| m.active || (m.created_at >= since && m.created_at < until))
            .map(|m| ModelLine {
                version: m.version,
                kind: m.kind,
                created_at: format_micros(m.created_at),
                active: m.active,
            })
            .collect();
        let mut categories: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &list {
            for c in &p.categories {
                categories
                    .entry(c.to_string())
                    .or_default()
                    .push(p.id.to_string());
            }
        }
        let report = TransparencyReport {
            period: period.to_owned(),
            generated_at: format_micros(now),
            epsilon: REPORT_EPSILON,
            subjects_asked: noisy_asked.round(),
            purposes: list
                .iter()
                .zip(noisy.iter().zip(&rates))
                .map(|(p, (g, r))| (p, (g, r.filter(|_| !p.legal_basis.is_strictly_necessary()))))
                .map(|(p, (g, r))| PurposeLine {
                    id: p.id.to_string(),
                    title: p.title.clone(),
                    legal_basis: p.legal_basis.as_str().to_owned(),
                    categories: p.categories.iter().map(ToString::to_string).collect(),
                    person_level: p.person_level,
                    needs_consent: !p.legal_basis.is_strictly_necessary(),
                    granted: g.round(),
                    // Four decimals: more would only print noise.
                    rate: r.map(|r| round4(r.0)),
                    rate_ci: r.map(|r| r.1.map(round4)),
                })
                .collect(),
            rights,
            retention,
            fairness,
            models,
            approvals,
            data_categories: categories
                .into_iter()
                .map(|(category, purposes)| CategoryLine { category, purposes })
                .collect(),
        };
        let body = serde_json::to_string(&report).map_err(|e| AppError::Internal(e.to_string()))?;
        let secret = self.config.pseudonymization_secret()?;
        let signature = sign_report(&secret, body.as_bytes());
        let id = format!("tr-{period}-{now}");
        let stored = StoredReport {
            id: id.clone(),
            period: period.to_owned(),
            generated_at: now,
            body: body.clone(),
            signature: signature.clone(),
        };
        self.store
            .save_transparency_report(
                now,
                &stored,
                &AuditDraft::new(
                    actor,
                    AuditAction::AnalyticsReport,
                    &id,
                    serde_json::json!({"period": period, "signature": signature, "epsilon": REPORT_EPSILON}),
                ),
            )
            .await?;
        Ok(PublishedReport {
            id,
            // As a reader will get it back (JSON floats need not round-trip to the last bit).
            report: serde_json::from_str(&body).unwrap_or(report),
            body,
            signature,
            valid: true,
        })
    }

    /// The newest stored report for `period`, its signature checked.
    pub async fn published_transparency_report(&self, period: &str) -> Result<PublishedReport> {
        year_bounds(period)?;
        let stored = self
            .store
            .transparency_reports(period)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::NotFound {
                what: "transparency report",
                id: period.to_owned(),
            })?;
        let report: TransparencyReport = serde_json::from_str(&stored.body)
            .map_err(|e| AppError::Internal(format!("stored report {}: {e}", stored.id)))?;
        let secret = self.config.pseudonymization_secret()?;
        Ok(PublishedReport {
            valid: verify_report(&secret, stored.body.as_bytes(), &stored.signature),
            id: stored.id,
            report,
            body: stored.body,
            signature: stored.signature,
        })
    }
}
