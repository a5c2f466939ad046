//! Feedback on answers, survey answers, and the KPI read models they feed.
//!
//! Invariants:
//! - A feedback row, the preference change it causes (with that change's audit entry) and the
//!   KPI counts it adds commit in one transaction.
//! - KPI counts are only ever added to, in the transaction of the rows they count, so a KPI
//!   read is a read of a few small rows and never a rescan of events or decisions.
//! - Rows name subjects by pseudonymous key only; complaint text arrives sealed.

use candor_domain::{MICROS_PER_DAY, Micros};
use sqlx::{AssertSqlSafe, Row};

use crate::audit::Tx;
use crate::serving::write_preferences_in;
use crate::{Backend, PreferencesUpdate, Result, Store};

/// One piece of feedback as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRow {
    pub subject_key: String,
    pub answer_id: String,
    pub item_id: Option<String>,
    pub kind: String,
    /// Complaint text sealed with the subject's data key (hex).
    pub text_sealed: Option<String>,
    pub surface: String,
    pub model_version: String,
    /// JSON list of what the feedback changed, in words.
    pub applied: String,
    pub at: Micros,
}

/// A logged answer, found by its id: who it was for and what it showed, in rank order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRow {
    pub subject_key: String,
    pub surface: String,
    pub model_version: String,
    pub at: Micros,
    pub items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRow {
    pub subject_key: String,
    pub survey: String,
    pub score: i64,
    pub at: Micros,
}

/// One KPI count: `value` of `metric` for `dimension` on the UTC day starting at `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiCount {
    pub metric: String,
    pub dimension: String,
    pub day: Micros,
    pub value: i64,
}

/// The UTC day `at` falls in, as the microsecond it starts at.
pub fn day_of(at: Micros) -> Micros {
    at.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY
}

/// Adds `(metric, dimension, value)` counts on `day` inside a caller's transaction.
pub(crate) async fn add_counts_in(
    tx: &mut Tx,
    backend: Backend,
    day: Micros,
    counts: &[(String, String, i64)],
) -> Result<()> {
    for chunk in counts.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO kpi_counts (metric, dimension, day, value) VALUES {} \
             ON CONFLICT (metric, dimension, day) DO UPDATE SET value = kpi_counts.value + excluded.value",
            crate::ingest::placeholders(backend, chunk.len(), 4)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (metric, dimension, value) in chunk {
            q = q.bind(metric).bind(dimension).bind(day).bind(*value);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_feedback_in(tx: &mut Tx, f: &FeedbackRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO feedback (subject_key, answer_id, item_id, kind, text_sealed, surface, model_version, applied, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&f.subject_key)
    .bind(&f.answer_id)
    .bind(f.item_id.as_deref())
    .bind(&f.kind)
    .bind(f.text_sealed.as_deref())
    .bind(&f.surface)
    .bind(&f.model_version)
    .bind(&f.applied)
    .bind(f.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn decode_feedback(r: &sqlx::any::AnyRow) -> Result<FeedbackRow> {
    Ok(FeedbackRow {
        subject_key: r.try_get("subject_key")?,
        answer_id: r.try_get("answer_id")?,
        item_id: r.try_get("item_id")?,
        kind: r.try_get("kind")?,
        text_sealed: r.try_get("text_sealed")?,
        surface: r.try_get("surface")?,
        model_version: r.try_get("model_version")?,
        applied: r.try_get("applied")?,
        at: r.try_get("at")?,
    })
}

impl Store {
    /// The logged answer `answer_id`, or `None` if no answer of that id was logged.
    pub async fn answer(&self, answer_id: &str) -> Result<Option<AnswerRow>> {
        let rows = sqlx::query(
            "SELECT subject_key, surface, item_id, model_version, at FROM decisions \
             WHERE answer_id = $1 ORDER BY position, id",
        )
        .bind(answer_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(AnswerRow {
            subject_key: first.try_get("subject_key")?,
            surface: first.try_get("surface")?,
            model_version: first.try_get("model_version")?,
            at: first.try_get("at")?,
            items: rows
                .iter()
                .map(|r| r.try_get("item_id"))
                .collect::<std::result::Result<_, _>>()?,
        }))
    }

    /// Stores feedback with its KPI counts and, when it changes the person's preferences, that
    /// change and its audit entry, all in one transaction.
    pub async fn record_feedback(
        &self,
        feedback: &FeedbackRow,
        preferences: Option<&PreferencesUpdate>,
        counts: &[(String, String, i64)],
    ) -> Result<()> {
        let backend = self.backend;
        let day = day_of(feedback.at);
        match preferences {
            Some(update) => {
                let notice = [format!("prefs:{}", update.subject)];
                self.audited(
                    feedback.at,
                    &(feedback, update, counts),
                    |tx, (feedback, update, counts)| {
                        Box::pin(async move {
                            insert_feedback_in(tx, feedback).await?;
                            write_preferences_in(
                                tx,
                                backend,
                                std::slice::from_ref(*update),
                                feedback.at,
                            )
                            .await?;
                            add_counts_in(tx, backend, day, counts).await
                        })
                    },
                    |_| &update.audit,
                    &notice,
                )
                .await?;
            }
            None => {
                let mut tx = self.begin_write().await?;
                insert_feedback_in(&mut tx, feedback).await?;
                add_counts_in(&mut tx, backend, day, counts).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    pub async fn feedback_of(&self, subject: &str) -> Result<Vec<FeedbackRow>> {
        let rows = sqlx::query(
            "SELECT subject_key, answer_id, item_id, kind, text_sealed, surface, model_version, applied, at \
             FROM feedback WHERE subject_key = $1 ORDER BY at, id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_feedback).collect()
    }

    /// Stores a survey answer with its KPI counts.
    pub async fn record_survey(
        &self,
        answer: &SurveyRow,
        counts: &[(String, String, i64)],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO survey_answers (subject_key, survey, score, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&answer.subject_key)
        .bind(&answer.survey)
        .bind(answer.score)
        .bind(answer.at)
        .execute(&mut *tx)
        .await?;
        add_counts_in(&mut tx, self.backend, day_of(answer.at), counts).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn surveys_of(&self, subject: &str) -> Result<Vec<SurveyRow>> {
        let rows = sqlx::query(
            "SELECT subject_key, survey, score, at FROM survey_answers WHERE subject_key = $1 ORDER BY at, id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SurveyRow {
                    subject_key: r.try_get("subject_key")?,
                    survey: r.try_get("survey")?,
                    score: r.try_get("score")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// KPI counts on days in `[since, until)`, by metric, dimension and day.
    pub async fn kpi_counts(&self, since: Micros, until: Micros) -> Result<Vec<KpiCount>> {
        let rows = sqlx::query(
            "SELECT metric, dimension, day, value FROM kpi_counts WHERE day >= $1 AND day < $2 \
             ORDER BY metric, dimension, day",
        )
        .bind(day_of(since))
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KpiCount {
                    metric: r.try_get("metric")?,
                    dimension: r.try_get("dimension")?,
                    day: r.try_get("day")?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }
}
