//! The feedback room: what people say about the answers they got, survey answers, and the
//! KPIs computed from incremental counts.
//!
//! Invariants:
//! - Feedback names a logged answer of the same subject, and an item only if the answer showed
//!   it; anything else is refused before anything is stored.
//! - Its effect on preferences follows [`candor_domain::feedback::effect`]: "too personal"
//!   lowers the level at once; hiding an item needs a permit of the recommendation purpose
//!   that covers declared preferences, read now (a revocation counts from the next request).
//! - Complaint text is sealed with the subject's data key before it is stored.
//! - KPI counts are added in the transaction of what they count; KPI reads never rescan.
//! - Alerts and their scale-backs follow `alerts.rs`'s module doc.

pub mod alerts;
pub mod kpis;

/// What the feedback room keeps in memory: the scale-backs of active alerts, per surface.
#[derive(Default)]
pub(crate) struct FeedbackRoom {
    scale_backs:
        std::sync::RwLock<std::sync::Arc<std::collections::HashMap<String, alerts::ScaleBack>>>,
}

use candor_domain::feedback::{self, FeedbackKind};
use candor_domain::preferences::{Level, PreferenceSource};
use candor_domain::{AuditDraft, DataCategory, PurposeId, SubjectKey};
use candor_store::{FeedbackRow, PreferencesUpdate, SurveyRow};
use serde_json::json;

use crate::personalization::recommend::is_decision_id;
use crate::{App, AppError, Result};

/// Feedback as a client sends it.
#[derive(Debug, Clone)]
pub struct FeedbackInput {
    pub decision_id: String,
    pub item_id: Option<String>,
    pub kind: FeedbackKind,
    pub text: Option<String>,
}

/// What the feedback did.
#[derive(Debug, Clone)]
pub struct FeedbackOutcome {
    pub decision_id: String,
    pub kind: FeedbackKind,
    /// What changed, or why nothing did, in words.
    pub applied: Vec<String>,
    pub level_before: Level,
    pub level_after: Level,
    pub item_hidden: bool,
}

/// Names of the surveys Candor takes answers for, and their scale.
pub const TRUST_SURVEY: &str = "trust";

impl App {
    /// Records feedback of `subject` on one of their answers, and applies what it means.
    pub async fn give_feedback(
        &self,
        actor: &str,
        subject: &SubjectKey,
        input: FeedbackInput,
    ) -> Result<FeedbackOutcome> {
        if !is_decision_id(&input.decision_id) {
            return Err(AppError::invalid(
                "decision_id",
                "is the `decision_id` of a recommendation answer (ans_ and 32 hex digits)",
            ));
        }
        feedback::check_text(input.kind, input.text.as_deref())?;
        if input.kind.needs_item() && input.item_id.is_none() {
            return Err(AppError::invalid(
                "item_id",
                format!(
                    "{} is about one item of the answer: name it",
                    input.kind.as_str()
                ),
            ));
        }
        let not_found = || AppError::NotFound {
            what: "decision",
            id: input.decision_id.clone(),
        };
        let answer = match self.store.answer(&input.decision_id).await? {
            Some(a) => a,
            None => {
                // A fresh answer may still be queued for the decision log.
                self.flush_decisions().await;
                self.store
                    .answer(&input.decision_id)
                    .await?
                    .ok_or_else(not_found)?
            }
        };
        // Another subject's answer is as unknown as a missing one: ids are not for probing.
        if answer.subject_key != subject.as_str() {
            return Err(not_found());
        }
        if let Some(item) = &input.item_id
            && !answer.items.contains(item)
        {
            return Err(AppError::invalid(
                "item_id",
                format!("`{item}` was not in answer {}", input.decision_id),
            ));
        }

        let purposes = self.purposes();
        let purpose = purposes.get(&PurposeId::parse(&self.config.recommend.purpose)?);
        let declared_permitted = match purpose {
            Some(p) => self
                .permit_and_status(subject, p)
                .await?
                .0
                .is_some_and(|permit| permit.covers(&DataCategory::DeclaredPreference)),
            None => false,
        };
        let current = self.preferences(subject).await?;
        let effect = feedback::effect(
            input.kind,
            input.item_id.as_deref(),
            &current,
            declared_permitted,
        );
        let text_sealed = match input.text.as_deref().map(str::trim) {
            Some(text) => {
                let keys = self.data_keys(std::slice::from_ref(subject)).await?;
                let key = keys.get(subject.as_str()).ok_or_else(not_found)?;
                let context =
                    candor_domain::envelope::field_context(subject.as_str(), "feedback.text");
                Some(hex::encode(key.seal(
                    rand::random(),
                    text.as_bytes(),
                    &context,
                )))
            }
            None => None,
        };
        let now = self.now();
        let row = FeedbackRow {
            subject_key: subject.to_string(),
            answer_id: input.decision_id.clone(),
            item_id: input.item_id.clone(),
            kind: input.kind.as_str().into(),
            text_sealed,
            surface: answer.surface.clone(),
            model_version: answer.model_version.clone(),
            applied: serde_json::to_string(&effect.applied)
                .map_err(|e| AppError::Internal(e.to_string()))?,
            at: now,
        };
        let update = match &effect.preferences {
            Some(next) => {
                let serving = self.serving();
                next.validate(
                    |c| serving.category(c).is_some(),
                    |c| serving.category(c) == Some(true),
                )?;
                Some(PreferencesUpdate {
                    subject: subject.to_string(),
                    body: serde_json::to_string(next)
                        .map_err(|e| AppError::Internal(e.to_string()))?,
                    interests: next.declared_interests.clone(),
                    source: PreferenceSource::Feedback.as_str().into(),
                    audit: AuditDraft::new(
                        actor,
                        candor_domain::AuditAction::PreferencesUpdate,
                        subject.as_str(),
                        json!({"level": next.level, "source": PreferenceSource::Feedback.as_str(), "feedback": input.kind.as_str(), "decision_id": input.decision_id, "hidden_items": next.hidden_items.len()}),
                    ),
                })
            }
            None => None,
        };
        let metric = format!("feedback:{}", input.kind.as_str());
        let mut counts = vec![
            (metric.clone(), "all".to_owned(), 1),
            (metric.clone(), format!("model:{}", answer.model_version), 1),
            (metric, format!("surface:{}", answer.surface), 1),
        ];
        if effect.level_after < effect.level_before {
            counts.push(("level_lowered".into(), "feedback".into(), 1));
        }
        self.store
            .record_feedback(&row, update.as_ref(), &counts)
            .await?;
        if update.is_some() {
            self.invalidate_preferences(subject.as_str());
        }
        metrics::counter!("candor_feedback_total", "kind" => input.kind.as_str()).increment(1);
        Ok(FeedbackOutcome {
            decision_id: input.decision_id,
            kind: input.kind,
            item_hidden: update.is_some() && input.item_id.is_some() && input.kind.needs_item(),
            applied: effect.applied,
            level_before: effect.level_before,
            level_after: effect.level_after,
        })
    }

    /// Records an answer to the trust survey ("How likely are you to recommend us?", 0-10).
    pub async fn answer_survey(
        &self,
        subject: &SubjectKey,
        survey: &str,
        score: i64,
    ) -> Result<()> {
        if survey != TRUST_SURVEY {
            return Err(AppError::invalid(
                "survey",
                format!("`{survey}` is not a survey Candor takes; use `{TRUST_SURVEY}`"),
            ));
        }
        if !(0..=10).contains(&score) {
            return Err(AppError::invalid(
                "score",
                "must be a whole number from 0 to 10",
            ));
        }
        let band = match score {
            9..=10 => "promoter",
            7..=8 => "passive",
            _ => "detractor",
        };
        let row = SurveyRow {
            subject_key: subject.to_string(),
            survey: survey.to_owned(),
            score,
            at: self.now(),
        };
        let counts = [
            (format!("survey:{survey}"), band.to_owned(), 1),
            (format!("survey:{survey}"), "score_sum".to_owned(), score),
        ];
        Ok(self.store.record_survey(&row, &counts).await?)
    }
}
