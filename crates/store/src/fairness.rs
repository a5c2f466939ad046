//! Fairness audit runs and the bias incident log.
//!
//! Invariant: an incident is matched to later findings by its stable `finding_key`; a finding whose
//! key has an unresolved incident updates it (last seen, current value) instead of opening a
//! duplicate, so the log reads as one story per problem.

use candor_domain::{AuditDraft, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError};

/// One decision joined with its subject's protected attributes, for auditing only.
#[derive(Debug, Clone, PartialEq)]
pub struct FairnessDecision {
    pub subject_key: String,
    /// Where the decision was made (`offer`, `home`, ...).
    pub surface: String,
    /// 1-based rank when the decision was a ranked exposure (recommendations).
    pub position: Option<i64>,
    pub selected: bool,
    pub outcome: Option<bool>,
    pub score: Option<f64>,
    /// (attribute, value) pairs from the protected-attribute table.
    pub attributes: Vec<(String, String)>,
}

/// A finding to record, flattened by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentInput {
    /// The decision surface the finding is about; an incident is matched by surface and key.
    pub surface: String,
    pub finding_key: String,
    pub metric: String,
    pub severity: String,
    pub groups_affected: String,
    pub value: f64,
    pub magnitude: f64,
    pub summary: String,
    pub recommended_action: String,
    pub finding: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: i64,
    pub input: IncidentInput,
    pub status: String,
    pub action_taken: Option<String>,
    pub resolution: Option<String>,
    pub opened_at: Micros,
    pub last_seen_at: Micros,
    pub last_run_id: i64,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FairnessRunRow {
    pub id: i64,
    /// The audited surface ('' for runs recorded before runs were per surface).
    pub surface: String,
    /// Start of the audited window (0 for runs recorded before it was stored).
    pub since: Micros,
    pub at: Micros,
    pub actor: String,
    pub decisions: i64,
    pub findings: i64,
    pub report: String,
}

const INCIDENT_COLUMNS: &str = "id, surface, finding_key, metric, severity, groups_affected, value, magnitude, summary, recommended_action, finding, status, action_taken, resolution, opened_at, last_seen_at, last_run_id, updated_at";

fn decode_incident(r: &sqlx::any::AnyRow) -> Result<Incident> {
    Ok(Incident {
        id: r.try_get("id")?,
        input: IncidentInput {
            surface: r.try_get("surface")?,
            finding_key: r.try_get("finding_key")?,
            metric: r.try_get("metric")?,
            severity: r.try_get("severity")?,
            groups_affected: r.try_get("groups_affected")?,
            value: r.try_get("value")?,
            magnitude: r.try_get("magnitude")?,
            summary: r.try_get("summary")?,
            recommended_action: r.try_get("recommended_action")?,
            finding: r.try_get("finding")?,
        },
        status: r.try_get("status")?,
        action_taken: r.try_get("action_taken")?,
        resolution: r.try_get("resolution")?,
        opened_at: r.try_get("opened_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        last_run_id: r.try_get("last_run_id")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// The decision log since `since` (optionally of one surface) with each subject's protected
    /// attributes. Protected attributes are read here and nowhere on a serving path.
    pub async fn protected_decision_log(
        &self,
        surface: Option<&str>,
        since: Micros,
    ) -> Result<Vec<FairnessDecision>> {
        let rows = sqlx::query(
            "SELECT d.id, d.subject_key, d.surface, d.position, d.selected, d.outcome, d.score, p.attribute, p.value \
             FROM decisions d LEFT JOIN protected_attributes p ON p.subject_key = d.subject_key \
             WHERE d.at >= $1 AND ($2 = '' OR d.surface = $2) ORDER BY d.id",
        )
        .bind(since)
        .bind(surface.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<FairnessDecision> = Vec::new();
        let mut last_id = None;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            if last_id != Some(id) {
                last_id = Some(id);
                out.push(FairnessDecision {
                    subject_key: r.try_get("subject_key")?,
                    surface: r.try_get("surface")?,
                    position: r.try_get("position")?,
                    selected: r.try_get::<i64, _>("selected")? != 0,
                    outcome: r.try_get::<Option<i64>, _>("outcome")?.map(|o| o != 0),
                    score: r.try_get("score")?,
                    attributes: Vec::new(),
                });
            }
            if let (Some(a), Some(v)) = (
                r.try_get::<Option<String>, _>("attribute")?,
                r.try_get::<Option<String>, _>("value")?,
            ) {
                out.last_mut()
                    .expect("pushed above")
                    .attributes
                    .push((a, v));
            }
        }
        Ok(out)
    }

    /// Records a run of one surface over `[since, at]` and its findings as incidents,
    /// atomically with its audit entry. Returns the run id and, per finding, the incident id and
    /// whether it was newly opened.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_fairness_run(
        &self,
        at: Micros,
        surface: &str,
        since: Micros,
        actor: &str,
        decisions: i64,
        report: &str,
        findings: &[IncidentInput],
        audit_draft: &AuditDraft,
    ) -> Result<(i64, Vec<(i64, bool)>)> {
        let (run, _) = self
            .audited(
                at,
                &(actor, report, findings, surface),
                |tx, &(actor, report, findings, surface)| {
                    Box::pin(async move {
                        let run_id: i64 = sqlx::query("INSERT INTO audit_runs (at, actor, decisions, findings, report, surface, since) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                            .bind(at)
                            .bind(actor)
                            .bind(decisions)
                            .bind(findings.len() as i64)
                            .bind(report)
                            .bind(surface)
                            .bind(since)
                            .fetch_one(&mut **tx)
                            .await?
                            .try_get("id")?;
                        let mut out = Vec::with_capacity(findings.len());
                        for f in findings {
                            let open = sqlx::query("SELECT id FROM bias_incidents WHERE finding_key = $1 AND surface = $2 AND status <> 'resolved' ORDER BY id DESC LIMIT 1")
                                .bind(&f.finding_key)
                                .bind(&f.surface)
                                .fetch_optional(&mut **tx)
                                .await?;
                            match open {
                                Some(row) => {
                                    let id: i64 = row.try_get("id")?;
                                    sqlx::query("UPDATE bias_incidents SET severity = $1, groups_affected = $2, value = $3, magnitude = $4, summary = $5, recommended_action = $6, finding = $7, last_seen_at = $8, last_run_id = $9, updated_at = $8 WHERE id = $10")
                                        .bind(&f.severity)
                                        .bind(&f.groups_affected)
                                        .bind(f.value)
                                        .bind(f.magnitude)
                                        .bind(&f.summary)
                                        .bind(&f.recommended_action)
                                        .bind(&f.finding)
                                        .bind(at)
                                        .bind(run_id)
                                        .bind(id)
                                        .execute(&mut **tx)
                                        .await?;
                                    out.push((id, false));
                                }
                                None => {
                                    let id: i64 = sqlx::query(
                                        "INSERT INTO bias_incidents (finding_key, metric, severity, groups_affected, value, magnitude, summary, recommended_action, finding, status, opened_at, last_seen_at, last_run_id, updated_at, surface) \
                                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10, $11, $10, $12) RETURNING id",
                                    )
                                    .bind(&f.finding_key)
                                    .bind(&f.metric)
                                    .bind(&f.severity)
                                    .bind(&f.groups_affected)
                                    .bind(f.value)
                                    .bind(f.magnitude)
                                    .bind(&f.summary)
                                    .bind(&f.recommended_action)
                                    .bind(&f.finding)
                                    .bind(at)
                                    .bind(run_id)
                                    .bind(&f.surface)
                                    .fetch_one(&mut **tx)
                                    .await?
                                    .try_get("id")?;
                                    out.push((id, true));
                                }
                            }
                        }
                        Ok((run_id, out))
                    })
                },
                |_| audit_draft,
                &[],
            )
            .await?;
        Ok(run)
    }

    /// The newest run of `surface`, or without one the newest run of every surface (by surface).
    pub async fn latest_fairness_runs(&self, surface: Option<&str>) -> Result<Vec<FairnessRunRow>> {
        let sql = "SELECT id, surface, since, at, actor, decisions, findings, report FROM audit_runs \
                   WHERE id IN (SELECT MAX(id) FROM audit_runs WHERE ($1 = '' OR surface = $1) GROUP BY surface) \
                   ORDER BY surface";
        let rows = sqlx::query(sql)
            .bind(surface.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FairnessRunRow {
                    id: r.try_get("id")?,
                    surface: r.try_get("surface")?,
                    since: r.try_get("since")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    decisions: r.try_get("decisions")?,
                    findings: r.try_get("findings")?,
                    report: r.try_get("report")?,
                })
            })
            .collect()
    }

    /// Incidents, newest first; `status` filters when given.
    pub async fn incidents(&self, status: Option<&str>, limit: i64) -> Result<Vec<Incident>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM bias_incidents WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2")))
            .bind(status.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_incident).collect()
    }

    /// Records what was done about an incident.
    pub async fn update_incident(
        &self,
        id: i64,
        status: &str,
        action_taken: Option<&str>,
        resolution: Option<&str>,
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<Incident> {
        let (row, _) = self
            .audited(
                at,
                &(status, action_taken, resolution),
                |tx, &(status, action_taken, resolution)| {
                    Box::pin(async move {
                        let done = sqlx::query("UPDATE bias_incidents SET status = $1, action_taken = COALESCE($2, action_taken), resolution = COALESCE($3, resolution), updated_at = $4 WHERE id = $5")
                            .bind(status)
                            .bind(action_taken)
                            .bind(resolution)
                            .bind(at)
                            .bind(id)
                            .execute(&mut **tx)
                            .await?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound {
                                what: "incident",
                                id: id.to_string(),
                            });
                        }
                        let row = sqlx::query(AssertSqlSafe(format!(
                            "SELECT {INCIDENT_COLUMNS} FROM bias_incidents WHERE id = $1"
                        )))
                        .bind(id)
                        .fetch_one(&mut **tx)
                        .await?;
                        Ok(row)
                    })
                },
                |_| audit_draft,
                &[],
            )
            .await?;
        // Decoded after the commit, as before: a corrupt row does not undo the update.
        decode_incident(&row)
    }
}
