//! The cost of each serving constraint under EVAL-1: the serving pipeline ([`Engine`]) rather
//! than the bare model, evaluated with and without level, sensitive-category and diversity
//! filters on the same split and the same fitted item-kNN.
//!
//! Variants (cumulative where it makes sense):
//! - `a`: bare item-kNN (`models::recommend`, exactly `candor eval`'s number);
//! - `b`: engine at level full, relevance only (MMR lambda 1, no category cap, no exploration);
//! - `c`: + MMR (lambda 0.7) and category cap 3 (the serving defaults);
//! - `d`: + exploration slot (the full default pipeline);
//! - `e`: level basic: declared interests only (the top 3 categories of the subject's train
//!   history stand in for what they declared) + popularity, default diversity;
//!   `e'`: `e` ranked by trending (half-life 30 days) as of the day of the person's last train
//!   interaction, the day they are served in the replay; `e''`: `e` ranked by popularity among
//!   the people whose declared (top-3) categories include the person's (not served yet);
//! - `f`: level off: popularity, default diversity;
//! - `g`: `d` with one category marked sensitive (excluded, no opt-in).
//!
//! Every variant excludes the subject's train items (EVAL-1's rule) by passing them as owned
//! items, so `e` and `f` never recommend something already seen either.
//!
//! Categories: ml-100k genres from `u.item` (an item's primary category is the sensitive genre
//! when it has it, so that excluding it removes every item tagged with it, else its first listed
//! genre; declared interests count every tagged genre); online-retail has no categories, so the
//! first three characters of the stock code (its product line) stand in; ml-1m genres from
//! `movies.dat`. This module reads those item files itself (the `data` module reads interactions).

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::Dataset;
use crate::error::{RecError, Result};
use crate::eval::K;
use crate::metrics::{Metrics, evaluate};
use crate::models::{ItemKnn, KnnParams, Model};
use crate::serve::{Catalog, Consent, Engine, Level, Request, ServeConfig};
use crate::split::eval1_split;

/// Item categories of a data set's items: names, and per item id every category (first =
/// listed first).
pub struct ItemCategories {
    pub names: Vec<String>,
    pub of_item: HashMap<String, Vec<u32>>,
}

/// ml-100k `u.item` + `u.genre` (latin-1 text; only ids and flags are read).
fn ml100k_categories(dir: &Path) -> Result<ItemCategories> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| RecError::Invalid(format!("{}: {e}", p.display())))
    };
    let genre = read("u.genre")?;
    let mut names = Vec::new();
    for line in genre.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some((name, idx)) = line.trim().split_once('|') {
            let idx: usize = idx
                .parse()
                .map_err(|_| RecError::Invalid(format!("u.genre: bad index `{idx}`")))?;
            if names.len() <= idx {
                names.resize(idx + 1, String::new());
            }
            names[idx] = name.to_owned();
        }
    }
    let mut of_item = HashMap::new();
    for (n, line) in read("u.item")?.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b'|').collect();
        if fields.len() < 5 + names.len() {
            return Err(RecError::Invalid(format!(
                "u.item line {}: {} fields",
                n + 1,
                fields.len()
            )));
        }
        let id = String::from_utf8_lossy(fields[0]).into_owned();
        let flags = &fields[fields.len() - names.len()..];
        let cats: Vec<u32> = (0..names.len() as u32)
            .filter(|&g| flags[g as usize].first() == Some(&b'1'))
            .collect();
        of_item.insert(id, cats);
    }
    Ok(ItemCategories { names, of_item })
}

/// ml-1m `movies.dat`: `id::title::Genre|Genre`.
fn ml1m_categories(dir: &Path) -> Result<ItemCategories> {
    let p = dir.join("movies.dat");
    let bytes =
        std::fs::read(&p).map_err(|e| RecError::Invalid(format!("{}: {e}", p.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut names: Vec<String> = Vec::new();
    let mut of_item = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split("::").collect();
        if f.len() < 3 {
            continue;
        }
        let cats = f[2]
            .split('|')
            .map(|g| match names.iter().position(|n| n == g) {
                Some(i) => i as u32,
                None => {
                    names.push(g.to_owned());
                    (names.len() - 1) as u32
                }
            })
            .collect();
        of_item.insert(f[0].to_owned(), cats);
    }
    Ok(ItemCategories { names, of_item })
}

/// Online-retail: the first three characters of the stock code.
fn prefix_categories(items: &[String]) -> ItemCategories {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut of_item = HashMap::new();
    for id in items {
        let p: String = id.chars().take(3).collect();
        let c = *index.entry(p.clone()).or_insert_with(|| {
            names.push(p);
            (names.len() - 1) as u32
        });
        of_item.insert(id.clone(), vec![c]);
    }
    ItemCategories { names, of_item }
}

pub fn item_categories(
    dataset: Dataset,
    data_dir: &Path,
    items: &[String],
) -> Result<ItemCategories> {
    let dir = dataset.path(data_dir);
    let dir = if dir.is_dir() {
        dir
    } else {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    };
    match dataset {
        Dataset::Ml100k => ml100k_categories(&dir),
        Dataset::Ml1mPartial => ml1m_categories(&dir),
        Dataset::OnlineRetail => Ok(prefix_categories(items)),
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct ConstraintResult {
    pub variant: String,
    pub description: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Mean share of item pairs in a list whose primary categories differ.
    pub intra_list_diversity: f64,
    /// Mean distinct primary categories per list.
    pub categories_per_list: f64,
    /// Share of recommended items in the sensitive category.
    pub sensitive_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConstraintReport {
    pub dataset: String,
    pub n_categories: usize,
    pub sensitive_category: String,
    /// Share of test interactions (of evaluated users) whose item is in the sensitive category:
    /// hits `g` cannot make.
    pub sensitive_test_share: f64,
    pub rows: Vec<ConstraintResult>,
}

fn list_stats(recs: &[Vec<u32>], cat: &[u32], sensitive: u32) -> (f64, f64, f64) {
    let (mut ild, mut cpl, mut sens, mut n_items) = (0.0, 0.0, 0usize, 0usize);
    for list in recs {
        let cats: Vec<u32> = list.iter().map(|&i| cat[i as usize]).collect();
        let mut pairs = 0usize;
        let mut diff = 0usize;
        for a in 0..cats.len() {
            for b in a + 1..cats.len() {
                pairs += 1;
                diff += usize::from(cats[a] != cats[b]);
            }
        }
        if pairs > 0 {
            ild += diff as f64 / pairs as f64;
        }
        let mut d = cats.clone();
        d.sort_unstable();
        d.dedup();
        cpl += d.len() as f64;
        sens += cats.iter().filter(|&&c| c == sensitive).count();
        n_items += cats.len();
    }
    let n = recs.len().max(1) as f64;
    (ild / n, cpl / n, sens as f64 / n_items.max(1) as f64)
}

/// Runs every variant on `dataset`'s EVAL-1 split (on the current rayon pool).
/// `sensitive` names the category for `g` (default: Horror for MovieLens, the fifth-largest
/// product line for online-retail).
pub fn run_constraints(
    dataset: Dataset,
    data_dir: &Path,
    sensitive: Option<&str>,
    mut progress: impl FnMut(&ConstraintResult),
) -> Result<ConstraintReport> {
    let split = eval1_split(dataset.load(data_dir)?)?;
    let cats = item_categories(dataset, data_dir, &split.items)?;
    let n_cat = cats.names.len();
    let sensitive_name = match sensitive {
        Some(s) => s.to_owned(),
        None if dataset == Dataset::OnlineRetail => {
            let mut size = vec![0usize; n_cat];
            for id in &split.items {
                if let Some(c) = cats.of_item.get(id).and_then(|c| c.first()) {
                    size[*c as usize] += 1;
                }
            }
            let mut order: Vec<usize> = (0..n_cat).collect();
            order.sort_by(|&a, &b| size[b].cmp(&size[a]).then(a.cmp(&b)));
            cats.names[order[4.min(n_cat - 1)]].clone()
        }
        None => "Horror".to_owned(),
    };
    let sensitive = cats
        .names
        .iter()
        .position(|n| *n == sensitive_name)
        .ok_or_else(|| {
            RecError::Invalid(format!(
                "no category `{sensitive_name}`; known: {}",
                cats.names.join(", ")
            ))
        })? as u32;
    // Primary category: the sensitive one when tagged, else the first listed (or an "unknown"
    // bucket, index n_cat, for items without categories).
    let mut names = cats.names.clone();
    names.push("(none)".into());
    let all_cats: Vec<&[u32]> = split
        .items
        .iter()
        .map(|id| cats.of_item.get(id).map_or(&[][..], Vec::as_slice))
        .collect();
    let primary: Vec<u32> = all_cats
        .iter()
        .map(|c| {
            if c.contains(&sensitive) {
                sensitive
            } else {
                c.first().copied().unwrap_or(n_cat as u32)
            }
        })
        .collect();

    let knn = ItemKnn::fit(&split.train, KnnParams::default());
    let counts = split.train.col_counts();
    let tests: Vec<&[u32]> = split
        .eval_users
        .iter()
        .map(|&u| split.test[u as usize].as_slice())
        .collect();
    let test_total: usize = tests.iter().map(|t| t.len()).sum();
    let test_sensitive: usize = tests
        .iter()
        .flat_map(|t| t.iter())
        .filter(|&&i| primary[i as usize] == sensitive)
        .count();
    // "declared": the subject's 3 most frequent categories in train (all tagged ones count)
    let declared: Vec<Vec<u32>> = split
        .eval_users
        .par_iter()
        .map(|&u| {
            let mut c = vec![0usize; names.len()];
            for &i in split.train.row(u as usize) {
                for &g in all_cats[i as usize] {
                    c[g as usize] += 1;
                }
            }
            let mut order: Vec<u32> = (0..names.len() as u32)
                .filter(|&g| c[g as usize] > 0)
                .collect();
            order.sort_by(|&a, &b| c[b as usize].cmp(&c[a as usize]).then(a.cmp(&b)));
            order.truncate(3);
            order
        })
        .collect();

    let catalog = |sensitive_on: bool| Catalog {
        item_ids: split.items.clone(),
        titles: split.items.clone(),
        item_category: primary.clone(),
        category_names: names.clone(),
        category_sensitive: (0..names.len() as u32)
            .map(|c| sensitive_on && c == sensitive)
            .collect(),
        item_group: Vec::new(),
    };
    let base = ServeConfig::default();
    let relevance_only = ServeConfig {
        mmr_lambda: 1.0,
        category_cap: usize::MAX,
        exploration_slot: false,
        ..base.clone()
    };
    let mmr_cap = ServeConfig {
        exploration_slot: false,
        ..base.clone()
    };
    // level basic's signals: every tagged genre (content matching); ranking by popularity (the
    // trending variant is row e', computed as of each person's serving day)
    let tags: Vec<Vec<u32>> = all_cats.iter().map(|c| c.to_vec()).collect();
    let half_life = TRENDING_HALF_LIFE_DAYS * 86_400.0;
    let train_rows: Vec<&[u32]> = (0..split.train.n_rows())
        .map(|u| split.train.row(u))
        .collect();
    let engine = |cfg: &ServeConfig, sensitive_on: bool| {
        Engine::new(
            catalog(sensitive_on),
            &counts,
            Some(knn.clone()),
            "eval".into(),
            cfg.clone(),
        )?
        .with_basic_signals(tags.clone(), Vec::new())
    };
    let run_engine = |e: &Engine, level: Level, with_declared: bool| -> Vec<Vec<u32>> {
        split
            .eval_users
            .par_iter()
            .zip(&declared)
            .map(|(&u, decl)| {
                let history = split.train.row(u as usize);
                let full = level == Level::Full;
                let req = Request {
                    level,
                    consent: Consent {
                        behaviour: true,
                        declared: true,
                    },
                    history: if full { history } else { &[] },
                    history_ts: if full {
                        &split.train_ts[u as usize]
                    } else {
                        &[]
                    },
                    history_kinds: &[],
                    declared: if with_declared { decl } else { &[] },
                    sensitive_opt_in: &[],
                    owned: history,
                    k: K,
                    seed: u64::from(u),
                };
                e.recommend(&req).items.iter().map(|r| r.item).collect()
            })
            .collect()
    };

    let mut rows = Vec::new();
    let mut push = |variant: &str, description: &str, recs: Vec<Vec<u32>>| {
        let metrics = evaluate(&recs, &tests, split.items.len(), K);
        let (ild, cpl, sens) = list_stats(&recs, &primary, sensitive);
        let r = ConstraintResult {
            variant: variant.into(),
            description: description.into(),
            metrics,
            intra_list_diversity: ild,
            categories_per_list: cpl,
            sensitive_share: sens,
        };
        progress(&r);
        rows.push(r);
    };

    // a: the bare model, as `candor eval` scores it
    let model = Model::ItemKnn(knn.clone());
    let bare = crate::eval::recommend_eval_users(&model, &split);
    push("a", "bare item-kNN (no pipeline)", bare);
    let e = engine(&relevance_only, false)?;
    push(
        "b",
        "engine, level full, relevance only (lambda 1, no cap, no exploration)",
        run_engine(&e, Level::Full, false),
    );
    let e = engine(&mmr_cap, false)?;
    push(
        "c",
        "b + MMR lambda 0.7 + category cap 3",
        run_engine(&e, Level::Full, false),
    );
    let e = engine(&base, false)?;
    push(
        "d",
        "c + exploration slot (serving default)",
        run_engine(&e, Level::Full, false),
    );
    push(
        "d'",
        "d + declared interests (level full with declared top-3 categories)",
        run_engine(&e, Level::Full, true),
    );
    push(
        "e",
        "level basic: popularity x (1 + share of the declared top-3 categories an item's genres match), default diversity",
        run_engine(&e, Level::Basic, true),
    );
    // e': trending as of when each person is served: the replay sets the clock to the day of
    // their last train interaction (serving computes trending at training time, as of "now").
    // Per day: trend_d = trend_{d-1} x 0.5^(1 day / half-life) + that day's interactions of
    // everyone, so no interaction after the day counts.
    let day = |t: i64| t.div_euclid(86_400);
    let mut by_day: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
    for (row, ts) in train_rows.iter().zip(&split.train_ts) {
        for (&i, &t) in row.iter().zip(ts) {
            by_day.entry(day(t)).or_default().push(i);
        }
    }
    let user_day: Vec<i64> = split
        .eval_users
        .iter()
        .map(|&u| split.train_ts[u as usize].last().map_or(0, |&t| day(t)))
        .collect();
    let mut wanted: Vec<i64> = user_day.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let decay = 0.5f32.powf(86_400.0 / half_life as f32);
    let mut trend_now = vec![0f32; split.items.len()];
    let mut at_day: HashMap<i64, Vec<f32>> = HashMap::new();
    let mut last_day: Option<i64> = None;
    let mut days = by_day.iter().peekable();
    for &d in &wanted {
        while let Some((&dd, items)) = days.peek().copied() {
            if dd > d {
                break;
            }
            if let Some(l) = last_day {
                let f = decay.powi((dd - l) as i32);
                trend_now.iter_mut().for_each(|v| *v *= f);
            }
            for &i in items {
                trend_now[i as usize] += 1.0;
            }
            last_day = Some(dd);
            days.next();
        }
        let mut t = trend_now.clone();
        if let Some(l) = last_day {
            let f = decay.powi((d - l) as i32);
            t.iter_mut().for_each(|v| *v *= f);
        }
        at_day.insert(d, t);
    }
    let engines: HashMap<i64, Engine> = wanted
        .par_iter()
        .map(|d| {
            let e = Engine::new(catalog(false), &counts, None, "eval".into(), base.clone())?
                .with_basic_signals(tags.clone(), at_day[d].clone())?;
            Ok((*d, e))
        })
        .collect::<Result<_>>()?;
    let recs: Vec<Vec<u32>> = split
        .eval_users
        .par_iter()
        .zip(&declared)
        .zip(&user_day)
        .map(|((&u, decl), d)| {
            let req = Request {
                level: Level::Basic,
                consent: Consent {
                    behaviour: true,
                    declared: true,
                },
                history: &[],
                history_ts: &[],
                history_kinds: &[],
                declared: decl,
                sensitive_opt_in: &[],
                owned: split.train.row(u as usize),
                k: K,
                seed: u64::from(u),
            };
            engines[d]
                .recommend(&req)
                .items
                .iter()
                .map(|r| r.item)
                .collect()
        })
        .collect();
    push(
        "e'",
        "level basic: e with trending as of the person's serving day",
        recs,
    );
    // e'': popular among the people who declared the same interests (an aggregate over
    // everyone's consented behaviour, grouped by declared category; nothing of the person's own)
    let top3 = |u: usize| -> Vec<u32> {
        let mut c = vec![0usize; names.len()];
        for &i in split.train.row(u) {
            for &g in all_cats[i as usize] {
                c[g as usize] += 1;
            }
        }
        let mut order: Vec<u32> = (0..names.len() as u32)
            .filter(|&g| c[g as usize] > 0)
            .collect();
        order.sort_by(|&a, &b| c[b as usize].cmp(&c[a as usize]).then(a.cmp(&b)));
        order.truncate(3);
        order
    };
    let mut seg = vec![vec![0f32; split.items.len()]; names.len()];
    for u in 0..split.train.n_rows() {
        for c in top3(u) {
            for &i in split.train.row(u) {
                seg[c as usize][i as usize] += 1.0;
            }
        }
    }
    for v in &mut seg {
        crate::models::blend::scale_to_max(v);
    }
    let recs: Vec<Vec<u32>> = split
        .eval_users
        .par_iter()
        .zip(&declared)
        .map(|(&u, decl)| {
            let mut t = vec![0f32; split.items.len()];
            for &c in decl {
                for (a, b) in t.iter_mut().zip(&seg[c as usize]) {
                    *a += b;
                }
            }
            let e = Engine::new(catalog(false), &counts, None, "eval".into(), base.clone())
                .and_then(|e| e.with_basic_signals(tags.clone(), t))
                .expect("engine");
            let req = Request {
                level: Level::Basic,
                consent: Consent {
                    behaviour: true,
                    declared: true,
                },
                history: &[],
                history_ts: &[],
                history_kinds: &[],
                declared: decl,
                sensitive_opt_in: &[],
                owned: split.train.row(u as usize),
                k: K,
                seed: u64::from(u),
            };
            e.recommend(&req).items.iter().map(|r| r.item).collect()
        })
        .collect();
    push(
        "e''",
        "level basic: popular among people with the same declared interests",
        recs,
    );
    push(
        "f",
        "level off: popularity, default diversity",
        run_engine(&e, Level::Off, false),
    );
    // h: the model the product would serve: chosen by `select` on a time-cut slice of the
    // training data (never this test split), with the serving defaults
    let rows_owned: Vec<Vec<u32>> = train_rows.iter().map(|r| r.to_vec()).collect();
    let chosen = crate::select::select(
        &catalog(false),
        &rows_owned,
        &split.train_ts,
        &base,
        &crate::select::SelectParams::default(),
    )?;
    let full_model = match chosen.model {
        Model::ItemKnn(m) => crate::serve::FullModel::Knn(m),
        Model::Als(m) => crate::serve::FullModel::Factors(crate::serve::Factors::new(m)),
        Model::Blend(b) => crate::serve::FullModel::Blend {
            knn: b.knn,
            factors: crate::serve::Factors::new(b.als),
            knn_weight: b.knn_weight,
        },
        other => {
            return Err(RecError::Invalid(format!(
                "selection chose a {} model",
                other.kind().name()
            )));
        }
    };
    let served = Engine::with_model(
        catalog(false),
        &counts,
        Some(full_model.clone()),
        "eval".into(),
        base.clone(),
    )?;
    push(
        "h",
        &format!(
            "d with the selected model ({}; chosen on the training data's own time-cut slice)",
            chosen.selection.levels[0].chosen
        ),
        run_engine(&served, Level::Full, false),
    );
    // i: h with an exposure floor: at least 20% of each answer from the long tail (items
    // outside the 10% most popular in train), the provider-fairness stand-in these sets allow
    let mut by_count: Vec<u32> = (0..split.items.len() as u32).collect();
    by_count.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    let mut tail = vec![0u32; split.items.len()];
    for &i in &by_count[split.items.len() / 10..] {
        tail[i as usize] = 1;
    }
    let mut fair_catalog = catalog(false);
    fair_catalog.item_group = tail;
    let fair = Engine::with_model(
        fair_catalog,
        &counts,
        Some(full_model),
        "eval".into(),
        ServeConfig {
            group_min_share: vec![0.0, 0.2],
            ..base.clone()
        },
    )?;
    push(
        "i",
        "h + exposure floor: at least 20% of each answer from the long tail (outside the top 10% by popularity)",
        run_engine(&fair, Level::Full, false),
    );
    let e = engine(&base, true)?;
    push(
        "g",
        &format!("d with `{sensitive_name}` sensitive (excluded, no opt-in)"),
        run_engine(&e, Level::Full, false),
    );
    Ok(ConstraintReport {
        dataset: dataset.name().into(),
        n_categories: n_cat,
        sensitive_category: sensitive_name,
        sensitive_test_share: test_sensitive as f64 / test_total.max(1) as f64,
        rows,
    })
}

/// Level basic's trending half-life in EVAL-1 runs (days).
pub const TRENDING_HALF_LIFE_DAYS: f64 = 30.0;

/// One table row in Markdown.
pub fn format_row(r: &ConstraintResult) -> String {
    format!(
        "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.2} | {:.4} |",
        r.variant,
        r.description,
        r.metrics.ndcg,
        r.metrics.precision,
        r.metrics.recall,
        r.metrics.coverage,
        r.intra_list_diversity,
        r.categories_per_list,
        r.sensitive_share
    )
}

pub const TABLE_HEADER: &str = "| variant | pipeline | NDCG@10 | precision@10 | recall@10 | coverage@10 | intra-list diversity | categories/list | sensitive share |\n|---|---|---|---|---|---|---|---|---|";
