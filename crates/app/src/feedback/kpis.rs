//! KPIs from the incremental read model (`kpi_counts`): answers, feedback and its rates per
//! model version and surface, levels lowered by feedback, preference changes, the trust score,
//! and rights-request fulfilment.
//!
//! Invariant: a KPI read costs a scan of the counts in its window (a few rows per metric per
//! day) and the window's rights requests, never of events or decisions. A rate is `None`, not
//! zero, when there were no answers to divide by.

use std::collections::BTreeMap;

use candor_domain::feedback::FeedbackKind;
use candor_domain::{MICROS_PER_DAY, Micros};

use super::TRUST_SURVEY;
use crate::{App, AppError, Result};

/// Longest window a KPI read covers.
pub const MAX_DAYS: i64 = 366;

/// Feedback and its rates for one model version or surface.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRates {
    /// `model:<version>` or `surface:<name>`.
    pub dimension: String,
    pub answers: i64,
    /// Count per feedback kind, in [`FeedbackKind::ALL`] order.
    pub feedback: Vec<(FeedbackKind, i64)>,
    pub too_personal_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrustScore {
    pub answers: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// Net promoter score: % promoters (9-10) minus % detractors (0-6), from -100 to 100.
    pub nps: Option<f64>,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kpis {
    pub since: Micros,
    pub until: Micros,
    pub answers: i64,
    pub by_model: Vec<FeedbackRates>,
    pub by_surface: Vec<FeedbackRates>,
    /// Total feedback per kind.
    pub feedback: Vec<(FeedbackKind, i64)>,
    /// Times "too personal" feedback lowered someone's level.
    pub levels_lowered_by_feedback: i64,
    /// Preference changes per source (api, preference_center, import, feedback).
    pub preference_changes: Vec<(String, i64)>,
    /// Preference changes per day over the window, all sources.
    pub preference_changes_per_day: f64,
    pub trust: TrustScore,
    /// Rights requests received in the window and how fast they were fulfilled.
    pub rights: Option<candor_analytics::report::RightsFigures>,
}

fn rate(n: i64, of: i64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

impl App {
    /// Sets the Prometheus gauges of the last 30 days' KPIs once a minute on every node (each
    /// node's `/metrics` shows the cluster's figures: they come from the shared counts).
    pub(crate) fn kpi_gauges_job(&self) -> crate::scheduler::Job {
        crate::scheduler::Job::new(
            "kpi-gauges",
            std::time::Duration::from_secs(60),
            crate::scheduler::Reach::EveryNode,
            |app| async move {
                let k = app.kpis(30).await?;
                metrics::gauge!("candor_kpi_answers_30d").set(k.answers as f64);
                for (kind, n) in &k.feedback {
                    metrics::gauge!("candor_kpi_feedback_30d", "kind" => kind.as_str())
                        .set(*n as f64);
                }
                for r in &k.by_model {
                    let model = r.dimension.trim_start_matches("model:").to_owned();
                    if let Some(rate) = r.too_personal_rate {
                        metrics::gauge!("candor_kpi_too_personal_rate_30d", "model" => model.clone())
                            .set(rate);
                    }
                    if let Some(rate) = r.complaint_rate {
                        metrics::gauge!("candor_kpi_complaint_rate_30d", "model" => model)
                            .set(rate);
                    }
                }
                if let Some(nps) = k.trust.nps {
                    metrics::gauge!("candor_kpi_trust_nps_30d").set(nps);
                }
                metrics::gauge!("candor_kpi_preference_changes_per_day_30d")
                    .set(k.preference_changes_per_day);
                Ok(String::new())
            },
        )
    }

    /// KPIs over the last `days` days (1 to [`MAX_DAYS`]), up to now.
    pub async fn kpis(&self, days: i64) -> Result<Kpis> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(AppError::invalid(
                "days",
                format!("must be from 1 to {MAX_DAYS}"),
            ));
        }
        self.flush_decisions().await;
        let until = self.now() + 1;
        let since = candor_store::day_of(until - 1) - (days - 1) * MICROS_PER_DAY;
        let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
        for c in self.store.kpi_counts(since, until).await? {
            *sums.entry((c.metric, c.dimension)).or_default() += c.value;
        }
        let get = |metric: &str, dimension: &str| {
            sums.get(&(metric.to_owned(), dimension.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        let kinds = |dimension: &str| -> Vec<(FeedbackKind, i64)> {
            FeedbackKind::ALL
                .iter()
                .map(|k| (*k, get(&format!("feedback:{}", k.as_str()), dimension)))
                .collect()
        };
        let rates_for = |prefix: &str| -> Vec<FeedbackRates> {
            let mut dims: Vec<&String> = sums
                .keys()
                .filter(|(m, d)| {
                    (m == "answers" || m.starts_with("feedback:")) && d.starts_with(prefix)
                })
                .map(|(_, d)| d)
                .collect();
            dims.sort();
            dims.dedup();
            dims.into_iter()
                .map(|d| {
                    let answers = get("answers", d);
                    let feedback = kinds(d);
                    let of =
                        |k: FeedbackKind| feedback.iter().find(|(f, _)| *f == k).map_or(0, |x| x.1);
                    FeedbackRates {
                        dimension: d.clone(),
                        answers,
                        too_personal_rate: rate(of(FeedbackKind::TooPersonal), answers),
                        complaint_rate: rate(of(FeedbackKind::Complaint), answers),
                        feedback,
                    }
                })
                .collect()
        };
        let by_model = rates_for("model:");
        let by_surface = rates_for("surface:");
        let preference_changes: Vec<(String, i64)> = sums
            .iter()
            .filter(|((m, _), _)| m == "preference_changes")
            .map(|((_, d), v)| (d.trim_start_matches("source:").to_owned(), *v))
            .collect();
        let survey = format!("survey:{TRUST_SURVEY}");
        let (promoters, passives, detractors) = (
            get(&survey, "promoter"),
            get(&survey, "passive"),
            get(&survey, "detractor"),
        );
        let answers_n = promoters + passives + detractors;
        let trust = TrustScore {
            answers: answers_n,
            promoters,
            passives,
            detractors,
            nps: rate(promoters - detractors, answers_n).map(|r| r * 100.0),
            mean: rate(get(&survey, "score_sum"), answers_n),
        };
        Ok(Kpis {
            since,
            until,
            answers: by_surface.iter().map(|r| r.answers).sum(),
            feedback: kinds("all"),
            levels_lowered_by_feedback: get("level_lowered", "feedback"),
            preference_changes_per_day: preference_changes.iter().map(|x| x.1).sum::<i64>() as f64
                / days as f64,
            preference_changes,
            by_model,
            by_surface,
            trust,
            rights: self.rights_figures(since, until).await?,
        })
    }
}
