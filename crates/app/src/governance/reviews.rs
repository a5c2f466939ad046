//! The human review queue: actions held until a person other than the requester decides.
//!
//! Invariants:
//! - An action whose rule says `review` does not take effect until approved (or overridden by
//!   break-glass); a held model is not served, and a rejected one never is.
//! - Decisions follow [`candor_domain::review::decide`]: a reason always, never one's own
//!   request, each item once. No scope bypasses it: admin keys cannot decide at all.
//! - A break-glass override is recorded as such and announced to every webhook
//!   (`review.break_glass`), so the other reviewers learn of it.
//! - A decision is audited in its own transaction; the action it allows runs after it, through
//!   the same checked path as an unreviewed one.

use candor_domain::review::{self, ReviewKind, ReviewState, RuleMode, Verdict};
use candor_domain::{AuditDraft, Micros};
use candor_store::{OutboxEvent, ReviewDecision, ReviewRow};
use serde_json::{Value, json};

use crate::{App, AppError, Result};

/// An item of the queue, as people see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItem {
    pub id: String,
    pub kind: ReviewKind,
    pub target: String,
    pub requested_by: String,
    pub requested_at: Micros,
    pub card: Value,
    pub state: ReviewState,
    pub decided_by: Option<String>,
    pub decided_at: Option<Micros>,
    pub reason: Option<String>,
}

impl ReviewItem {
    fn from_row(r: ReviewRow) -> Result<ReviewItem> {
        Ok(ReviewItem {
            kind: ReviewKind::parse(&r.kind)?,
            state: ReviewState::parse(&r.state)?,
            card: serde_json::from_str(&r.card)
                .map_err(|e| AppError::Internal(format!("review {} card: {e}", r.id)))?,
            id: r.id,
            target: r.target,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            reason: r.reason,
        })
    }
}

/// What asking for an action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    /// The rule says apply: it took effect.
    Applied,
    /// It waits in the queue under this item.
    Held(ReviewItem),
}

/// Most items one list returns.
pub const MAX_LIST: i64 = 500;

impl App {
    /// Asks for `version` to serve, through the review rule for model activations. The model
    /// is checked first (it must load and fit the catalog), so a reviewer never approves one
    /// that cannot serve.
    pub async fn request_model_activation(&self, actor: &str, version: &str) -> Result<Requested> {
        let card = self.model_card(version).await?;
        match self.config.review.model_activation {
            RuleMode::Apply => {
                self.activate_model(actor, version).await?;
                Ok(Requested::Applied)
            }
            RuleMode::Block => Err(AppError::invalid(
                "version",
                "model activation is blocked by `review.model_activation = \"block\"`",
            )),
            RuleMode::Review => {
                let kind = ReviewKind::ModelActivation;
                let open = self
                    .store
                    .reviews(Some("pending"), Some((kind.as_str(), version)), 1)
                    .await?;
                // Asking again (retraining on the same data gives the same version) waits on
                // the same item.
                if let Some(r) = open.into_iter().next() {
                    return Ok(Requested::Held(ReviewItem::from_row(r)?));
                }
                let row = ReviewRow {
                    id: crate::new_id("rev"),
                    kind: kind.as_str().into(),
                    target: version.to_owned(),
                    requested_by: actor.to_owned(),
                    requested_at: self.now(),
                    card: card.to_string(),
                    state: ReviewState::Pending.as_str().into(),
                    decided_by: None,
                    decided_at: None,
                    reason: None,
                };
                let audit = AuditDraft::new(
                    actor,
                    candor_domain::AuditAction::ReviewRequest,
                    &row.id,
                    json!({"kind": row.kind, "target": version}),
                );
                self.store.create_review(&row, &audit).await?;
                // With nothing serving, answers say why: this model awaits review.
                if self.serving().model_version().is_none() {
                    self.reload_serving().await?;
                }
                Ok(Requested::Held(ReviewItem::from_row(row)?))
            }
        }
    }

    /// What a reviewer sees about a model version: its figures, the model serving now and the
    /// difference, and what is known of its fairness.
    async fn model_card(&self, version: &str) -> Result<Value> {
        let m = self.checked_model(version).await?;
        let active = self.store.active_model().await?;
        let figures = |m: &candor_store::ModelVersion| {
            json!({"version": m.version, "kind": m.kind, "created_at": candor_domain::format_micros(m.created_at),
                   "subjects": m.subjects, "interactions": m.interactions, "items": m.items,
                   "calibrated": !m.calibration.is_empty(),
                   // The model selection's per-level choice and validation figures.
                   "validation": serde_json::from_str::<Value>(&m.training).unwrap_or(Value::Null)})
        };
        let diff = active.as_ref().map(|a| {
            json!({"subjects": m.subjects - a.subjects, "interactions": m.interactions - a.interactions,
                   "items": m.items - a.items, "kind_changes": a.kind != m.kind})
        });
        Ok(json!({
            "explanation": format!(
                "Serve model {} ({}) at level full in place of {}.",
                m.version,
                m.kind,
                active.as_ref().map_or("non-personal popularity".to_owned(), |a| a.version.clone())
            ),
            "consent_basis": format!(
                "trained only on events of subjects whose `{}` consent allowed it at training time",
                self.config.recommend.purpose
            ),
            "model": figures(&m),
            "serving_now": active.as_ref().map(figures),
            "diff_against_serving": diff,
            "fairness": "exposure by protected group is audited from a model's answers once it serves (GET /v1/audit/fairness/latest); no audit of this version exists yet",
        }))
    }

    pub async fn reviews(&self, state: Option<&str>, limit: i64) -> Result<Vec<ReviewItem>> {
        if let Some(s) = state {
            ReviewState::parse(s)?;
        }
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("must be from 1 to {MAX_LIST}"),
            ));
        }
        self.store
            .reviews(state, None, limit)
            .await?
            .into_iter()
            .map(ReviewItem::from_row)
            .collect()
    }

    pub async fn review(&self, id: &str) -> Result<ReviewItem> {
        let row = self
            .store
            .review(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "review",
                id: id.to_owned(),
            })?;
        ReviewItem::from_row(row)
    }

    /// `actor` decides item `id`. An approval or override puts the action into effect.
    pub async fn decide_review(
        &self,
        actor: &str,
        id: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<ReviewItem> {
        let item = self.review(id).await?;
        let state = review::decide(item.state, &item.requested_by, actor, verdict, reason)?;
        if state.takes_effect() {
            // Still able to serve? (The catalog may have changed since the request.)
            match item.kind {
                ReviewKind::ModelActivation => {
                    self.checked_model(&item.target).await?;
                }
            }
        }
        let now = self.now();
        let reason = reason.trim().to_owned();
        let event = (verdict == Verdict::Override).then(|| {
            let event_id = crate::new_id("evt");
            OutboxEvent {
                payload: json!({
                    "id": event_id,
                    "type": "review.break_glass",
                    "created_at": candor_domain::format_micros(now),
                    "review": {"id": item.id, "kind": item.kind.as_str(), "target": item.target,
                               "requested_by": item.requested_by, "overridden_by": actor, "reason": reason},
                })
                .to_string(),
                id: event_id,
                event_type: "review.break_glass".into(),
                sealed_external_id: None,
                subject_key: None,
            }
        });
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::ReviewDecide,
            &item.id,
            json!({"kind": item.kind.as_str(), "target": item.target, "verdict": verdict.as_str(),
                   "state": state.as_str(), "reason": reason, "requested_by": item.requested_by}),
        );
        self.store
            .decide_review(
                &ReviewDecision {
                    id: item.id.clone(),
                    state: state.as_str().into(),
                    actor: actor.to_owned(),
                    reason,
                    at: now,
                },
                &audit,
                event.as_ref(),
            )
            .await?;
        if state.takes_effect() {
            match item.kind {
                ReviewKind::ModelActivation => {
                    self.activate_model(&format!("{actor} (review {})", item.id), &item.target)
                        .await?
                }
            }
        }
        self.review(id).await
    }

    /// Every decision of the queue as labelled training feedback, one JSON object per line:
    /// what was asked, the card, the verdict and its reason.
    pub async fn review_decisions_jsonl(&self) -> Result<String> {
        let mut out = String::new();
        for item in self.store.reviews(None, None, i64::MAX).await? {
            let item = ReviewItem::from_row(item)?;
            if item.state == ReviewState::Pending {
                continue;
            }
            let line = json!({
                "id": item.id, "kind": item.kind.as_str(), "target": item.target,
                "requested_by": item.requested_by,
                "requested_at": candor_domain::format_micros(item.requested_at),
                "card": item.card, "label": item.state.as_str(),
                "decided_by": item.decided_by, "reason": item.reason,
                "decided_at": item.decided_at.map(candor_domain::format_micros),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    }
}
