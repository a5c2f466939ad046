//! Anomaly alerts on feedback rates per surface, and the graded scale-back they hold.
//!
//! Invariants:
//! - Evaluation reads only the KPI counts (answers and feedback per surface per day): today's
//!   rate against the EWMA baseline of the previous [`HISTORY_DAYS`] days
//!   ([`candor_domain::alert`]), with both an effect size and a minimum sample.
//! - A firing rule with scale-back caps personalization on the surface one step (full to
//!   basic); a later evaluation escalates (basic to off) only on `min_sample` new answers since
//!   the last step whose rate still fires. Every step is audited, sent to every webhook
//!   (`alert.fired`) and stated in each capped answer's filters.
//! - Only a person lifts a scale-back: clearing needs an admin key and a reason.
//! - Every node serves from the same scale-backs: they are reloaded on every `alerts` notice.

use std::collections::HashMap;
use std::sync::Arc;

use candor_domain::alert::{self, AlertRule, DayCount};
use candor_domain::feedback::FeedbackKind;
use candor_domain::preferences::Level;
use candor_domain::{AuditDraft, MICROS_PER_DAY, Micros};
use candor_store::{AlertRow, OutboxEvent};
use serde_json::json;

use crate::{App, AppError, Result};

/// Days of history a baseline is computed from.
pub const HISTORY_DAYS: i64 = 28;
/// EWMA smoothing of the baseline.
const ALPHA: f64 = 0.3;

/// A cap on one surface while an alert is active.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleBack {
    pub cap: Level,
    pub alert_id: String,
    /// The line answers carry.
    pub line: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertItem {
    pub id: String,
    pub metric: FeedbackKind,
    pub surface: String,
    pub active: bool,
    pub cap: Option<Level>,
    pub fired_at: Micros,
    pub updated_at: Micros,
    pub observed: f64,
    pub expected: f64,
    pub sample: i64,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<Micros>,
    pub reason: Option<String>,
}

impl AlertItem {
    fn from_row(r: AlertRow) -> Result<AlertItem> {
        Ok(AlertItem {
            metric: FeedbackKind::parse(&r.metric)?,
            surface: r.dimension.trim_start_matches("surface:").to_owned(),
            active: r.state == "active",
            cap: r.cap.as_deref().map(Level::parse).transpose()?,
            id: r.id,
            fired_at: r.fired_at,
            updated_at: r.updated_at,
            observed: r.observed,
            expected: r.expected,
            sample: r.sample,
            cleared_by: r.cleared_by,
            cleared_at: r.cleared_at,
            reason: r.reason,
        })
    }
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

impl App {
    /// The scale-back in force on `surface`, if any.
    pub(crate) fn scale_back(&self, surface: &str) -> Option<ScaleBack> {
        self.feedback
            .scale_backs
            .read()
            .expect("scale-back lock")
            .get(surface)
            .cloned()
    }

    /// Rebuilds the scale-backs from the active alerts (the strictest cap per surface).
    pub(crate) async fn reload_alerts(&self) -> Result<()> {
        let mut map: HashMap<String, ScaleBack> = HashMap::new();
        for row in self.store.alerts(Some("active"), 10_000).await? {
            let a = AlertItem::from_row(row)?;
            let Some(cap) = a.cap else { continue };
            let line = format!(
                "personalization on `{}` scaled back to {} by alert {}: {} feedback rose to {} of answers (expected {}); a person must clear it",
                a.surface,
                cap.as_str(),
                a.id,
                a.metric.as_str(),
                percent(a.observed),
                percent(a.expected)
            );
            let stricter = map.get(&a.surface).is_none_or(|s| cap < s.cap);
            if stricter {
                map.insert(
                    a.surface.clone(),
                    ScaleBack {
                        cap,
                        alert_id: a.id,
                        line,
                    },
                );
            }
        }
        *self.feedback.scale_backs.write().expect("scale-back lock") = Arc::new(map);
        Ok(())
    }

    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>> {
        self.store
            .alert_rules()
            .await?
            .iter()
            .map(|b| {
                serde_json::from_str(b)
                    .map_err(|e| AppError::Internal(format!("stored alert rule unreadable: {e}")))
            })
            .collect()
    }

    /// Replaces the alert rules, each checked (errors name `rules[i].field`).
    pub async fn set_alert_rules(&self, actor: &str, rules: &[AlertRule]) -> Result<()> {
        if rules.len() > alert::MAX_RULES {
            return Err(AppError::invalid(
                "rules",
                format!("at most {} rules", alert::MAX_RULES),
            ));
        }
        for (i, r) in rules.iter().enumerate() {
            r.validate(&format!("rules[{i}]"))?;
        }
        let bodies = rules
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::AlertRules,
            "alert_rules",
            json!({"rules": rules}),
        );
        Ok(self
            .store
            .set_alert_rules(&bodies, self.now(), &audit)
            .await?)
    }

    /// Evaluates every rule on every surface now; returns the alerts raised or escalated.
    pub async fn evaluate_alerts(&self, actor: &str) -> Result<Vec<AlertItem>> {
        let rules = self.alert_rules().await?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        // Answers still queued for the decision log count too.
        self.flush_decisions().await;
        let now = self.now();
        let today = candor_store::day_of(now);
        let counts = self
            .store
            .kpi_counts(today - HISTORY_DAYS * MICROS_PER_DAY, now + 1)
            .await?;
        let mut surfaces: Vec<&str> = counts
            .iter()
            .filter(|c| c.metric == "answers")
            .filter_map(|c| c.dimension.strip_prefix("surface:"))
            .collect();
        surfaces.sort_unstable();
        surfaces.dedup();
        let active: Vec<AlertRow> = self.store.alerts(Some("active"), 10_000).await?;
        let mut raised = Vec::new();
        for rule in &rules {
            let metric = format!("feedback:{}", rule.metric.as_str());
            for surface in &surfaces {
                let dimension = format!("surface:{surface}");
                let of = |m: &str, day: Micros| {
                    counts
                        .iter()
                        .filter(|c| c.metric == m && c.dimension == dimension && c.day == day)
                        .map(|c| c.value)
                        .sum::<i64>()
                };
                let history: Vec<DayCount> = (1..=HISTORY_DAYS)
                    .rev()
                    .map(|back| {
                        let day = today - back * MICROS_PER_DAY;
                        DayCount {
                            day,
                            answers: of("answers", day),
                            events: of(&metric, day),
                        }
                    })
                    .collect();
                let expected = alert::baseline(&history, today, ALPHA);
                let (answers, events) = (of("answers", today), of(&metric, today));
                let open = active
                    .iter()
                    .find(|a| a.metric == rule.metric.as_str() && a.dimension == dimension);
                let row = match open {
                    // An escalation judges only what came after the last step.
                    Some(a) => {
                        let (base_a, base_e) = if a.step_day == today {
                            (a.step_answers, a.step_events)
                        } else {
                            (0, 0)
                        };
                        let Some(f) =
                            alert::judge(rule, answers - base_a, events - base_e, expected)
                        else {
                            continue;
                        };
                        let cap = a.cap.as_deref().map(Level::parse).transpose()?;
                        if !f.fires || !rule.scale_back || cap == Some(Level::Off) {
                            continue;
                        }
                        AlertRow {
                            cap: Some(alert::next_cap(cap).as_str().into()),
                            updated_at: now,
                            observed: f.observed,
                            expected: f.expected,
                            sample: f.sample,
                            step_day: today,
                            step_answers: answers,
                            step_events: events,
                            ..a.clone()
                        }
                    }
                    None => {
                        let Some(f) = alert::judge(rule, answers, events, expected) else {
                            continue;
                        };
                        if !f.fires {
                            continue;
                        }
                        AlertRow {
                            id: crate::new_id("alr"),
                            metric: rule.metric.as_str().into(),
                            dimension: dimension.clone(),
                            state: "active".into(),
                            cap: rule
                                .scale_back
                                .then(|| alert::next_cap(None).as_str().to_owned()),
                            fired_at: now,
                            updated_at: now,
                            observed: f.observed,
                            expected: f.expected,
                            sample: f.sample,
                            step_day: today,
                            step_answers: answers,
                            step_events: events,
                            cleared_by: None,
                            cleared_at: None,
                            reason: None,
                        }
                    }
                };
                let item = AlertItem::from_row(row.clone())?;
                let event_id = crate::new_id("evt");
                let body = json!({
                    "id": event_id, "type": "alert.fired",
                    "created_at": candor_domain::format_micros(now),
                    "alert": {"id": item.id, "metric": item.metric.as_str(), "surface": item.surface,
                              "observed": item.observed, "expected": item.expected, "sample": item.sample,
                              "scale_back_to": item.cap.map(Level::as_str)},
                });
                let event = OutboxEvent {
                    payload: body.to_string(),
                    id: event_id,
                    event_type: "alert.fired".into(),
                    sealed_external_id: None,
                    subject_key: None,
                };
                let audit = AuditDraft::new(
                    actor,
                    candor_domain::AuditAction::AlertRaise,
                    &item.id,
                    body["alert"].clone(),
                );
                self.store.raise_alert(&row, &audit, &event).await?;
                raised.push(item);
            }
        }
        if !raised.is_empty() {
            self.reload_alerts().await?;
        }
        Ok(raised)
    }

    pub async fn alerts(&self, active_only: bool, limit: i64) -> Result<Vec<AlertItem>> {
        if !(1..=500).contains(&limit) {
            return Err(AppError::invalid("limit", "must be from 1 to 500"));
        }
        self.store
            .alerts(active_only.then_some("active"), limit)
            .await?
            .into_iter()
            .map(AlertItem::from_row)
            .collect()
    }

    /// A person clears an alert, with a reason; its scale-back lifts at once.
    pub async fn clear_alert(&self, actor: &str, id: &str, reason: &str) -> Result<AlertItem> {
        let reason = reason.trim();
        if reason.chars().count() < candor_domain::review::MIN_REASON
            || reason.chars().count() > candor_domain::review::MAX_REASON
        {
            return Err(AppError::invalid(
                "reason",
                format!(
                    "say why it is safe to lift ({} characters or more)",
                    candor_domain::review::MIN_REASON
                ),
            ));
        }
        let now = self.now();
        if self.store.alert(id).await?.is_none() {
            return Err(AppError::NotFound {
                what: "alert",
                id: id.to_owned(),
            });
        }
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::AlertClear,
            id,
            json!({"reason": reason}),
        );
        self.store
            .clear_alert(id, actor, reason, now, &audit)
            .await?;
        self.reload_alerts().await?;
        let row = self
            .store
            .alert(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "alert",
                id: id.to_owned(),
            })?;
        AlertItem::from_row(row)
    }

    /// Evaluates alerts on a schedule, once per cluster (`alerts.evaluate_secs`, 0 = never).
    pub(crate) fn alerts_job(&self) -> Option<crate::scheduler::Job> {
        let secs = self.config.alerts.evaluate_secs;
        (secs > 0).then(|| {
            crate::scheduler::Job::new(
                "alerts",
                std::time::Duration::from_secs(secs),
                crate::scheduler::Reach::OncePerCluster,
                |app| async move {
                    let raised = app.evaluate_alerts("scheduler").await?;
                    Ok(if raised.is_empty() {
                        String::new()
                    } else {
                        format!("{} alerts raised or escalated", raised.len())
                    })
                },
            )
        })
    }
}
