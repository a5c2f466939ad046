//! Private and exact aggregate queries over events and decisions.
//!
//! Groups are a table of at most two dimensions. Each dimension's values are public: the period
//! dimension's come from the query's time range, `category` from the data categories, the
//! others from the list the analyst gives (`groups`), as OpenDP and Tumult ask for public keys.
//! With `select_groups` the values are those found in the data instead, and a group is released
//! only through private partition selection.

use std::collections::HashMap;

use candor_analytics::bound::{Row, bounded_totals};
use candor_analytics::query::{Spend, plan, run};
use candor_analytics::{Aggregate, AnalyticsError, Bounds, Mechanism, Query, Suppression};
use candor_domain::budget::{BudgetAccount, BudgetSpend, period_of};
use candor_domain::{
    AuditAction, AuditDraft, DataCategory, Micros, PurposeId, SubjectKey, format_micros,
    parse_rfc3339,
};
use candor_store::{AnalyticsRow, Dataset};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Result};

/// Subjects per page read from the store.
const PAGE: i64 = 2000;
/// Most groups one query may ask for.
const MAX_GROUPS: usize = 10_000;

/// An accuracy stated instead of an ε: ± `half_width` at `confidence` per figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub half_width: f64,
    pub confidence: f64,
}

/// A query as asked (validated by [`App::quote_query`] and [`App::run_query`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct QueryRequest {
    /// `events` or `decisions`.
    pub dataset: String,
    /// events: `events`, `quantity`, `revenue`; decisions: `decisions`, `selected`.
    pub metric: String,
    /// `count`, `sum` or `mean`.
    pub aggregate: String,
    /// Up to two of `period`, `category`, `event`, `item_category`, `item` (events) or
    /// `period`, `surface`, `model_version`, `item_category`, `item` (decisions).
    pub group_by: Vec<String>,
    /// Public values per dimension (not needed for `period` and `category`).
    pub groups: HashMap<String, Vec<String>>,
    /// Release only groups found in the data, through private partition selection.
    pub select_groups: bool,
    /// `month` (default) or `day`: the period dimension's grain.
    pub grain: String,
    /// RFC 3339; default: the start of the current month.
    pub since: Option<String>,
    /// RFC 3339; default: now.
    pub until: Option<String>,
    /// `laplace` (default) or `gaussian`.
    pub mechanism: String,
    pub epsilon: Option<f64>,
    pub accuracy: Option<Accuracy>,
    /// Default 1e-6 (Gaussian and partition selection).
    pub delta: Option<f64>,
    /// Of the intervals; default 0.95.
    pub confidence: Option<f64>,
    /// Rows per subject per group (default 1).
    pub max_rows: Option<u32>,
    /// Groups per subject (default: all the groups of the table, at most 10).
    pub max_groups: Option<u32>,
    /// Clamp for sums and means.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// What a query will cost, before it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    pub epsilon: f64,
    pub delta: f64,
    pub mechanism: &'static str,
    pub noise_scale: f64,
    /// ± per figure at `confidence`.
    pub half_width: f64,
    pub confidence: f64,
    pub threshold: Option<f64>,
    pub period: String,
    pub dataset: String,
    pub remaining_epsilon: f64,
    pub remaining_delta: f64,
    /// Whether the remaining budget covers it.
    pub fits: bool,
}

/// One released group with its labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledCell {
    pub labels: Vec<String>,
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub noise_scale: f64,
    pub status: Suppression,
}

/// A total: its label, value and interval (absent when hidden).
pub type LabelledTotal = (String, Option<f64>, Option<[f64; 2]>);

/// A private answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrivateAnswer {
    pub quote: Quote,
    /// The ledger row the spend was sealed as.
    pub ledger_seq: i64,
    pub cells: Vec<LabelledCell>,
    /// Per first-dimension value, over the second (two dimensions only).
    pub row_totals: Vec<LabelledTotal>,
    /// Per second-dimension value; with one dimension, the histogram's total (`all`).
    pub column_totals: Vec<LabelledTotal>,
    pub subjects_read: usize,
}

/// An exact answer for an auditor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactAnswer {
    pub cells: Vec<(Vec<String>, f64, f64)>,
    pub audit_seq: i64,
}

struct Dimension {
    name: String,
    values: Vec<String>,
    index: HashMap<String, u32>,
}

/// A request checked and turned into engine terms.
struct Prepared {
    dataset: Dataset,
    dataset_name: &'static str,
    metric: String,
    dims: Vec<Dimension>,
    since: Micros,
    until: Micros,
    grain_day: bool,
    query: Query,
}

fn engine_error(e: AnalyticsError) -> AppError {
    match e {
        AnalyticsError::Invalid { field, message } => AppError::invalid(field, message),
        AnalyticsError::OpenDp(m) => AppError::Internal(format!("OpenDP: {m}")),
    }
}

fn period_label(at: Micros, day: bool) -> String {
    let s = format_micros(at);
    if day {
        s[..10].to_owned()
    } else {
        s[..7].to_owned()
    }
}

/// Every period label from `since` to `until` (exclusive).
fn periods(since: Micros, until: Micros, day: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let step = candor_domain::MICROS_PER_DAY;
    let mut at = since;
    while at < until {
        let l = period_label(at, day);
        if out.last() != Some(&l) {
            out.push(l);
        }
        at += step;
    }
    let last = period_label(until - 1, day);
    if out.last() != Some(&last) && since < until {
        out.push(last);
    }
    out
}

fn dimension_value(row: &AnalyticsRow, dim: &str, day: bool) -> String {
    match dim {
        "period" => period_label(row.at, day),
        "category" => row.category.clone(),
        "event" | "surface" => row.name.clone(),
        "item_category" => row.item_category.clone(),
        "item" => row.item_id.clone(),
        "model_version" => row.extra.clone(),
        _ => String::new(),
    }
}

fn metric_value(row: &AnalyticsRow, metric: &str) -> f64 {
    match metric {
        "quantity" | "selected" => row.quantity as f64,
        "revenue" => serde_json::from_str::<serde_json::Value>(&row.extra)
            .ok()
            .and_then(|p| p.get("revenue").and_then(serde_json::Value::as_f64))
            .unwrap_or(0.0),
        _ => 1.0,
    }
}

impl App {
    fn prepare_query(&self, req: &QueryRequest) -> Result<Prepared> {
        let (dataset, dataset_name, metrics, dims): (_, _, &[&str], &[&str]) =
            match req.dataset.as_str() {
                "" | "events" => (
                    Dataset::Events,
                    "events",
                    &["events", "quantity", "revenue"],
                    &["period", "category", "event", "item_category", "item"],
                ),
                "decisions" => (
                    Dataset::Decisions,
                    "decisions",
                    &["decisions", "selected"],
                    &[
                        "period",
                        "surface",
                        "model_version",
                        "item_category",
                        "item",
                    ],
                ),
                other => {
                    return Err(AppError::invalid(
                        "dataset",
                        format!("`{other}` is not one of events, decisions"),
                    ));
                }
            };
        let metric = if req.metric.is_empty() {
            metrics[0]
        } else {
            req.metric.as_str()
        };
        if !metrics.contains(&metric) {
            return Err(AppError::invalid(
                "metric",
                format!("`{metric}` is not one of {}", metrics.join(", ")),
            ));
        }
        let aggregate = match req.aggregate.as_str() {
            "" => Aggregate::Count,
            a => Aggregate::parse(a).ok_or_else(|| {
                AppError::invalid("aggregate", format!("`{a}` is not one of count, sum, mean"))
            })?,
        };
        if aggregate != Aggregate::Count && metric == metrics[0] {
            return Err(AppError::invalid(
                "metric",
                format!("`{metric}` is counted; sum and mean take a value metric"),
            ));
        }
        let mechanism = match req.mechanism.as_str() {
            "" => Mechanism::Laplace,
            m => Mechanism::parse(m).ok_or_else(|| {
                AppError::invalid(
                    "mechanism",
                    format!("`{m}` is not one of laplace, gaussian"),
                )
            })?,
        };
        let grain_day = match req.grain.as_str() {
            "" | "month" => false,
            "day" => true,
            g => {
                return Err(AppError::invalid(
                    "grain",
                    format!("`{g}` is not month or day"),
                ));
            }
        };
        let now = self.now();
        let until = match &req.until {
            Some(s) => {
                parse_rfc3339(s).map_err(|_| AppError::invalid("until", "not an RFC 3339 time"))?
            }
            None => now,
        };
        let since = match &req.since {
            Some(s) => {
                parse_rfc3339(s).map_err(|_| AppError::invalid("since", "not an RFC 3339 time"))?
            }
            None => parse_rfc3339(&format!("{}-01T00:00:00Z", period_of(now)))?,
        };
        if since >= until {
            return Err(AppError::invalid("since", "must be before until"));
        }
        if req.group_by.len() > 2 {
            return Err(AppError::invalid("group_by", "at most two dimensions"));
        }
        let mut built = Vec::new();
        for (i, name) in req.group_by.iter().enumerate() {
            if !dims.contains(&name.as_str()) {
                return Err(AppError::invalid(
                    "group_by",
                    format!("`{name}` is not one of {}", dims.join(", ")),
                ));
            }
            if req.group_by[..i].contains(name) {
                return Err(AppError::invalid(
                    "group_by",
                    format!("`{name}` is given twice"),
                ));
            }
            let values: Vec<String> = match (name.as_str(), req.groups.get(name)) {
                (_, Some(v)) if !v.is_empty() => v.clone(),
                ("period", _) => periods(since, until, grain_day),
                ("category", _) => DataCategory::NAMES
                    .iter()
                    .filter(|n| !n.contains('<'))
                    .map(|n| (*n).to_owned())
                    .collect(),
                _ if req.select_groups => Vec::new(),
                _ => {
                    return Err(AppError::invalid(
                        format!("groups.{name}"),
                        "give the public list of values, or set select_groups",
                    ));
                }
            };
            let index = values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), i as u32))
                .collect();
            built.push(Dimension {
                name: name.clone(),
                values,
                index,
            });
        }
        if let Some(k) = req.groups.keys().find(|k| !req.group_by.contains(k)) {
            return Err(AppError::invalid(
                format!("groups.{k}"),
                "is not a dimension of group_by",
            ));
        }
        let spend = match (req.epsilon, req.accuracy) {
            (Some(e), None) => Spend::Epsilon(e),
            (None, Some(a)) => Spend::Accuracy {
                half_width: a.half_width,
                confidence: a.confidence,
            },
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "epsilon",
                    "give an epsilon or an accuracy, not both",
                ));
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "epsilon",
                    "give an epsilon or an accuracy",
                ));
            }
        };
        let (lower, upper) = match aggregate {
            Aggregate::Count => (0.0, 1.0),
            _ => (
                req.lower
                    .ok_or_else(|| AppError::invalid("lower", "a sum or mean needs bounds"))?,
                req.upper
                    .ok_or_else(|| AppError::invalid("upper", "a sum or mean needs bounds"))?,
            ),
        };
        let table = |d: Option<&Dimension>| d.map_or(1, |d| d.values.len().max(1));
        let (rows, columns) = (table(built.first()), table(built.get(1)));
        if rows * columns > MAX_GROUPS {
            return Err(AppError::invalid(
                "groups",
                format!("at most {MAX_GROUPS} groups"),
            ));
        }
        let delta = req.delta.unwrap_or(1e-6);
        let query = Query {
            aggregate,
            mechanism,
            bounds: Bounds {
                max_rows: req.max_rows.unwrap_or(1),
                max_groups: req.max_groups.unwrap_or((rows * columns).min(10) as u32),
                lower,
                upper,
            },
            spend,
            delta: if mechanism == Mechanism::Gaussian || req.select_groups {
                delta
            } else {
                0.0
            },
            confidence: req.confidence.unwrap_or(0.95),
            rows,
            columns,
            public_groups: !req.select_groups,
            k: self.config.analytics.min_cell,
        };
        Ok(Prepared {
            dataset,
            dataset_name,
            metric: metric.to_owned(),
            dims: built,
            since,
            until,
            grain_day,
            query,
        })
    }

    fn account(&self, analyst: &str, dataset: &str) -> BudgetAccount {
        BudgetAccount {
            analyst: analyst.to_owned(),
            period: period_of(self.now()),
            dataset: if self.config.analytics.budget_per_dataset {
                dataset.to_owned()
            } else {
                "*".to_owned()
            },
        }
    }

    /// What `req` would cost `analyst` (a key id) and how accurate it would be, without
    /// reading or spending anything.
    pub async fn quote_query(&self, analyst: &str, req: &QueryRequest) -> Result<Quote> {
        let p = self.prepare_query(req)?;
        self.quote_prepared(analyst, &p).await.map(|(q, _)| q)
    }

    async fn quote_prepared(
        &self,
        analyst: &str,
        p: &Prepared,
    ) -> Result<(Quote, candor_analytics::query::Plan)> {
        let mut q = p.query.clone();
        // With selected groups the table's shape is only known from the data; the plan
        // depends on it only through the bounds, so plan on one group.
        if !q.public_groups {
            q.rows = 1;
            q.columns = 1;
        }
        let plan = plan(&q).map_err(engine_error)?;
        let limits = &self.config.analytics;
        if plan.cost.epsilon > limits.budget_epsilon || plan.cost.delta > limits.budget_delta {
            let field = if matches!(q.spend, Spend::Accuracy { .. }) {
                "accuracy"
            } else {
                "epsilon"
            };
            return Err(AppError::invalid(
                field,
                format!(
                    "costs epsilon {:.4} (delta {:e}); no budget buys it: the monthly budget is epsilon {} (delta {:e})",
                    plan.cost.epsilon, plan.cost.delta, limits.budget_epsilon, limits.budget_delta
                ),
            ));
        }
        let account = self.account(analyst, p.dataset_name);
        let spent = self.budget_spent(&account).await?;
        let remaining_epsilon = (limits.budget_epsilon - spent.0).max(0.0);
        let remaining_delta = (limits.budget_delta - spent.1).max(0.0);
        let quote = Quote {
            epsilon: plan.cost.epsilon,
            delta: plan.cost.delta,
            mechanism: q.mechanism.as_str(),
            noise_scale: plan.noise.scale,
            half_width: plan.half_width,
            confidence: q.confidence,
            threshold: plan.threshold.map(|t| t.threshold),
            period: account.period,
            dataset: account.dataset,
            remaining_epsilon,
            remaining_delta,
            fits: plan.cost.epsilon <= remaining_epsilon + 1e-12
                && plan.cost.delta <= remaining_delta + 1e-12,
        };
        Ok((quote, plan))
    }

    /// Runs `req` for `analyst`: quote, charge (refused past budget, nothing spent), then read
    /// with permits and release.
    pub async fn run_query(&self, analyst: &str, req: &QueryRequest) -> Result<PrivateAnswer> {
        let mut p = self.prepare_query(req)?;
        let (quote, mut plan) = self.quote_prepared(analyst, &p).await?;
        let account = self.account(analyst, p.dataset_name);
        let spend = BudgetSpend {
            account,
            epsilon: quote.epsilon,
            delta: quote.delta,
            query: serde_json::to_value(req).unwrap_or_default(),
        };
        let limits = &self.config.analytics;
        let row = self
            .store
            .spend_budget(
                self.now(),
                &spend,
                (limits.budget_epsilon, limits.budget_delta),
            )
            .await?;
        let (subjects, read) = self.read_rows(&mut p).await?;
        if !p.query.public_groups {
            // Candidates come from the data; the plan's cost does not depend on how many.
            p.query.rows = p.dims.first().map_or(1, |d| d.values.len().max(1));
            p.query.columns = p.dims.get(1).map_or(1, |d| d.values.len().max(1));
            plan.noise.scale = quote.noise_scale;
        }
        let release =
            run(&p.query, &plan, subjects.iter().map(Vec::as_slice)).map_err(engine_error)?;
        let label = |d: usize, i: usize| p.dims.get(d).and_then(|d| d.values.get(i)).cloned();
        let cells = release
            .cells
            .iter()
            .map(|c| LabelledCell {
                labels: [label(0, c.row), label(1, c.column)]
                    .into_iter()
                    .flatten()
                    .collect(),
                value: c.value,
                ci: c.ci,
                noise_scale: c.noise_scale,
                status: c.status,
            })
            .collect();
        let totals = |d: usize, t: &[candor_analytics::query::Total]| {
            t.iter()
                .enumerate()
                .map(|(i, t)| (label(d, i).unwrap_or_else(|| "all".into()), t.value, t.ci))
                .collect()
        };
        Ok(PrivateAnswer {
            quote,
            ledger_seq: row.entry.seq,
            cells,
            row_totals: totals(0, &release.row_totals),
            column_totals: totals(1, &release.column_totals),
            subjects_read: read,
        })
    }

    /// Exact aggregates (no noise, no bounds) for an auditor, recorded in the audit log with
    /// `reason` before anything is read. Still only rows the analytics permit covers.
    pub async fn exact_query(
        &self,
        auditor: &str,
        reason: &str,
        req: &QueryRequest,
    ) -> Result<ExactAnswer> {
        let reason = reason.trim();
        if reason.len() < 10 {
            return Err(AppError::invalid(
                "reason",
                "say why, in at least 10 characters",
            ));
        }
        let mut p = self.prepare_query(req)?;
        let entry = self
            .audit(&AuditDraft::new(
                auditor,
                AuditAction::AnalyticsExact,
                p.dataset_name,
                serde_json::json!({"reason": reason, "query": req}),
            ))
            .await?;
        p.query.bounds = Bounds {
            max_rows: u32::MAX,
            max_groups: u32::MAX,
            lower: f64::MIN,
            upper: f64::MAX,
        };
        let (subjects, _) = self.read_rows(&mut p).await?;
        let rows = p.dims.first().map_or(1, |d| d.values.len().max(1));
        let columns = p.dims.get(1).map_or(1, |d| d.values.len().max(1));
        let totals = bounded_totals(
            subjects.iter().map(Vec::as_slice),
            rows * columns,
            &p.query.bounds,
        )
        .map_err(engine_error)?;
        let label = |d: usize, i: usize| p.dims.get(d).and_then(|d| d.values.get(i)).cloned();
        let cells = (0..rows * columns)
            .map(|g| {
                let labels = [label(0, g / columns), label(1, g % columns)]
                    .into_iter()
                    .flatten()
                    .collect();
                (labels, totals.counts[g], totals.sums[g])
            })
            .collect();
        Ok(ExactAnswer {
            cells,
            audit_seq: entry.seq,
        })
    }

    /// Each permitted subject's rows as engine rows, and how many subjects had any. With
    /// selected groups, unseen values join their dimension as candidates.
    async fn read_rows(&self, p: &mut Prepared) -> Result<(Vec<Vec<Row>>, usize)> {
        let id = PurposeId::parse(&self.config.analytics.purpose)?;
        let purpose = self.purpose(&id)?;
        if purpose.person_level {
            return Err(AppError::invalid(
                "analytics.purpose",
                format!(
                    "`{id}` is person-level; analytics reads only under an aggregate-only purpose"
                ),
            ));
        }
        let grow = !p.query.public_groups;
        let mut subjects = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .store
                .analytics_page(p.dataset, &after, PAGE, p.since, p.until)
                .await?;
            let names = page.subjects();
            let Some(&last) = names.last() else { break };
            let previous = std::mem::replace(&mut after, last.to_owned());
            let keys: Vec<SubjectKey> = names
                .iter()
                .filter_map(|k| SubjectKey::parse(k).ok())
                .collect();
            if keys.len() != names.len() {
                return Err(AppError::Internal(format!(
                    "a stored subject key between {previous:?} and {after:?} is malformed"
                )));
            }
            let permits = self
                .permits_between(&previous, &after, &keys, &purpose)
                .await?;
            for rows in page.permitted(&permits) {
                let mut mine = Vec::new();
                'row: for r in rows {
                    let mut idx = Vec::with_capacity(p.dims.len());
                    for dim in p.dims.iter_mut() {
                        let v = dimension_value(r, &dim.name, p.grain_day);
                        let i = match dim.index.get(&v) {
                            Some(&i) => i,
                            None if grow => {
                                let i = dim.values.len() as u32;
                                dim.values.push(v.clone());
                                dim.index.insert(v, i);
                                i
                            }
                            // Outside the public list: not part of this query.
                            None => continue 'row,
                        };
                        idx.push(i);
                    }
                    mine.push((idx, metric_value(r, &p.metric)));
                }
                if !mine.is_empty() {
                    subjects.push(mine);
                }
            }
        }
        let columns = p.dims.get(1).map_or(1, |d| d.values.len().max(1)) as u32;
        let n = subjects.len();
        let rows = subjects
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|(idx, value)| Row {
                        group: idx.first().copied().unwrap_or(0) * columns
                            + idx.get(1).copied().unwrap_or(0),
                        value,
                    })
                    .collect()
            })
            .collect();
        Ok((rows, n))
    }
}
