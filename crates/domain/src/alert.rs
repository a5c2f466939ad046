//! Anomaly alerts on feedback rates, and the graded scale-back they cause.
//!
//! Invariants:
//! - An alert needs both an effect size (the rate rose by at least `min_rise` and to at least
//!   `min_ratio` times its baseline) and a minimum sample (`min_sample` answers), so it does not
//!   flip with sample size.
//! - The baseline is an EWMA of earlier days' rates with weekly seasonality (each weekday's
//!   share of the mean, once two weeks of history exist); no history, no baseline, no alert.
//! - Scale-back only takes personalization away, one step at a time (full to basic to off), and
//!   only a person lifts it.

use serde::{Deserialize, Serialize};

use crate::feedback::FeedbackKind;
use crate::preferences::Level;
use crate::{DomainError, MICROS_PER_DAY, Micros};

/// An alert rule: which feedback kind's rate per answer to watch, per surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub metric: FeedbackKind,
    /// Answers needed (today's, and since the last step for an escalation).
    pub min_sample: i64,
    /// Smallest rise of the rate over its baseline, absolute (0.01 = one point).
    pub min_rise: f64,
    /// Smallest ratio of the rate to its baseline.
    pub min_ratio: f64,
    /// Whether a firing alert scales personalization back on the surface.
    pub scale_back: bool,
}

/// Most rules kept.
pub const MAX_RULES: usize = 20;

impl AlertRule {
    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        if self.metric == FeedbackKind::ThumbsUp {
            return Err(DomainError::invalid(
                format!("{field}.metric"),
                "thumbs_up is not a harm signal; watch too_personal, complaint, thumbs_down or not_relevant",
            ));
        }
        if self.min_sample < 1 {
            return Err(DomainError::invalid(
                format!("{field}.min_sample"),
                "must be at least 1 answer",
            ));
        }
        if !(self.min_rise.is_finite() && (0.0..=1.0).contains(&self.min_rise)) {
            return Err(DomainError::invalid(
                format!("{field}.min_rise"),
                "must be a rate rise from 0 to 1",
            ));
        }
        if !(self.min_ratio.is_finite() && self.min_ratio >= 1.0) {
            return Err(DomainError::invalid(
                format!("{field}.min_ratio"),
                "must be 1 or more (a rise)",
            ));
        }
        Ok(())
    }
}

/// One UTC day's counts on one surface: answers, and events of the rule's kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayCount {
    pub day: Micros,
    pub answers: i64,
    pub events: i64,
}

fn weekday(day: Micros) -> usize {
    // 1970-01-01 was a Thursday; any fixed origin serves.
    (day.div_euclid(MICROS_PER_DAY).rem_euclid(7)) as usize
}

/// The expected rate on `today` from earlier days (oldest first; days without answers are
/// skipped), or `None` without history.
pub fn baseline(history: &[DayCount], today: Micros, alpha: f64) -> Option<f64> {
    let days: Vec<(Micros, f64)> = history
        .iter()
        .filter(|d| d.day < today && d.answers > 0)
        .map(|d| (d.day, d.events as f64 / d.answers as f64))
        .collect();
    if days.is_empty() {
        return None;
    }
    let mean = days.iter().map(|d| d.1).sum::<f64>() / days.len() as f64;
    // Seasonality: each weekday's mean over the overall mean, once every weekday was seen twice.
    let mut sums = [0.0; 7];
    let mut counts = [0usize; 7];
    for (day, rate) in &days {
        sums[weekday(*day)] += rate;
        counts[weekday(*day)] += 1;
    }
    let seasonal = counts.iter().all(|&c| c >= 2) && mean > 0.0;
    let factor = |w: usize| {
        if seasonal {
            sums[w] / counts[w] as f64 / mean
        } else {
            1.0
        }
    };
    let mut level = days[0].1 / factor(weekday(days[0].0)).max(f64::EPSILON);
    for (day, rate) in &days[1..] {
        level = alpha * rate / factor(weekday(*day)).max(f64::EPSILON) + (1.0 - alpha) * level;
    }
    Some(level * factor(weekday(today)))
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    pub observed: f64,
    pub expected: f64,
    pub sample: i64,
    pub fires: bool,
}

/// Whether `events` in `answers` is an anomaly against `expected`, by `rule`.
pub fn judge(
    rule: &AlertRule,
    answers: i64,
    events: i64,
    expected: Option<f64>,
) -> Option<Finding> {
    let expected = expected?;
    if answers <= 0 {
        return None;
    }
    let observed = events as f64 / answers as f64;
    Some(Finding {
        observed,
        expected,
        sample: answers,
        fires: answers >= rule.min_sample
            && observed - expected >= rule.min_rise
            && observed >= rule.min_ratio * expected,
    })
}

/// The cap after one more step of scale-back from `current` (none yet: full).
pub fn next_cap(current: Option<Level>) -> Level {
    match current {
        None | Some(Level::Full) => Level::Basic,
        Some(_) => Level::Off,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AlertRule {
        AlertRule {
            metric: FeedbackKind::TooPersonal,
            min_sample: 100,
            min_rise: 0.02,
            min_ratio: 2.0,
            scale_back: true,
        }
    }

    fn days(rates: &[(i64, i64)]) -> Vec<DayCount> {
        rates
            .iter()
            .enumerate()
            .map(|(i, &(answers, events))| DayCount {
                day: i as i64 * MICROS_PER_DAY,
                answers,
                events,
            })
            .collect()
    }

    #[test]
    fn an_alert_needs_both_an_effect_and_a_sample() {
        let history = days(&[(1000, 10); 10]);
        let today = 10 * MICROS_PER_DAY;
        let expected = baseline(&history, today, 0.3);
        assert!((expected.unwrap() - 0.01).abs() < 1e-12);
        // 6% of 500: a rise of 5 points and 6x: fires.
        assert!(judge(&rule(), 500, 30, expected).unwrap().fires);
        // The same rate on 50 answers: too few to say.
        assert!(!judge(&rule(), 50, 3, expected).unwrap().fires);
        // 2.5% of 10,000: 2.5x but only 1.5 points: no.
        assert!(!judge(&rule(), 10_000, 250, expected).unwrap().fires);
        // No history: no alert.
        assert!(judge(&rule(), 500, 30, baseline(&[], today, 0.3)).is_none());
    }

    #[test]
    fn weekly_seasonality_expects_each_weekday_its_own_level() {
        // Weekday 0 of each week runs at 4%, the others at 1%, for four weeks.
        let history: Vec<DayCount> = (0..28)
            .map(|i| DayCount {
                day: i * MICROS_PER_DAY,
                answers: 1000,
                events: if i % 7 == 0 { 40 } else { 10 },
            })
            .collect();
        let peak_day = 28 * MICROS_PER_DAY; // weekday 0 again
        let quiet_day = 29 * MICROS_PER_DAY;
        let peak = baseline(&history, peak_day, 0.3).unwrap();
        let quiet = baseline(&history, quiet_day, 0.3).unwrap();
        assert!(peak > 3.0 * quiet, "{peak} vs {quiet}");
        // So 4% on the peak weekday is normal, and on another day it is an alert.
        assert!(!judge(&rule(), 1000, 40, Some(peak)).unwrap().fires);
        assert!(judge(&rule(), 1000, 40, Some(quiet)).unwrap().fires);
    }

    #[test]
    fn scale_back_steps_down_and_rules_are_checked() {
        assert_eq!(next_cap(None), Level::Basic);
        assert_eq!(next_cap(Some(Level::Basic)), Level::Off);
        assert_eq!(next_cap(Some(Level::Off)), Level::Off);
        for (bad, field) in [
            (
                AlertRule {
                    min_sample: 0,
                    ..rule()
                },
                "rules[0].min_sample",
            ),
            (
                AlertRule {
                    min_rise: -0.1,
                    ..rule()
                },
                "rules[0].min_rise",
            ),
            (
                AlertRule {
                    min_ratio: 0.5,
                    ..rule()
                },
                "rules[0].min_ratio",
            ),
            (
                AlertRule {
                    min_ratio: f64::NAN,
                    ..rule()
                },
                "rules[0].min_ratio",
            ),
            (
                AlertRule {
                    metric: FeedbackKind::ThumbsUp,
                    ..rule()
                },
                "rules[0].metric",
            ),
        ] {
            assert!(
                matches!(bad.validate("rules[0]"), Err(DomainError::Invalid { field: f, .. }) if f == field),
                "{bad:?}"
            );
        }
        assert!(rule().validate("rules[0]").is_ok());
    }
}
