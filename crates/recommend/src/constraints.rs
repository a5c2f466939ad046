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
    let engine = |cfg: &ServeConfig, sensitive_on: bool| {
        Engine::new(
            catalog(sensitive_on),
            &counts,
            Some(knn.clone()),
            "eval".into(),
            cfg.clone(),
        )
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
        "level basic: declared top-3 categories + popularity, default diversity",
        run_engine(&e, Level::Basic, true),
    );
    push(
        "f",
        "level off: popularity, default diversity",
        run_engine(&e, Level::Off, false),
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
