//! EVAL-1 from the command line before the `candor eval` command is wired in.
//!
//! cargo run --release -p candor-recommend --example eval -- --dataset ml-100k \
//!     [--model all] [--data-dir DIR] [--split-out FILE] [--threads 2] [--repeats 1]
//!     [--json-out FILE] [--knn-k 50] [--knn-weighting cosine] [--knn-asymmetry 0.5]
//!     [--knn-power 1] [--knn-recency 0] [--knn-recency-unit time] [--bm25-k1 1.2] [--bm25-b 0.75] [--factors 64]
//!     [--iterations 15] [--reg 0.01] [--alpha 1] [--cg-steps 3] [--seed 42]
//! List-valued options take comma lists; every combination is evaluated (a tuning grid).

use std::path::PathBuf;
use std::str::FromStr;

use candor_recommend::data::{Dataset, default_data_dir};
use candor_recommend::eval::{EvalOptions, ParamGrid, format_result, run_eval1};

fn list<T: FromStr>(v: &str, name: &str) -> Vec<T> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .unwrap_or_else(|_| panic!("--{name}: cannot parse {x:?}"))
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut dataset = None;
    let mut models = "all".to_string();
    let mut data_dir = default_data_dir();
    let mut split_out = None;
    let mut json_out: Option<PathBuf> = None;
    let mut threads = 2;
    let mut repeats = 1;
    let mut g = ParamGrid::default();
    while let Some(flag) = args.next() {
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let name = flag.trim_start_matches("--");
        match name {
            "dataset" => dataset = Some(Dataset::from_name(&v)?),
            "model" => models = v,
            "data-dir" => data_dir = PathBuf::from(v),
            "split-out" => split_out = Some(PathBuf::from(v)),
            "json-out" => json_out = Some(PathBuf::from(v)),
            "threads" => threads = v.parse()?,
            "repeats" => repeats = v.parse()?,
            "knn-k" => g.knn_neighbours = list(&v, name),
            "knn-weighting" => g.knn_weighting = list(&v, name),
            "knn-asymmetry" => g.knn_asymmetry = list(&v, name),
            "knn-power" => g.knn_power = list(&v, name),
            "knn-recency" => g.knn_recency = list(&v, name),
            "knn-recency-unit" => g.knn_recency_unit = list(&v, name),
            "bm25-k1" => g.bm25_k1 = v.parse()?,
            "bm25-b" => g.bm25_b = v.parse()?,
            "factors" => g.als_factors = list(&v, name),
            "iterations" => g.als_iterations = list(&v, name),
            "reg" => g.als_regularization = list(&v, name),
            "alpha" => g.als_alpha = list(&v, name),
            "cg-steps" => g.als_cg_steps = v.parse()?,
            "seed" => g.seed = v.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let opts = EvalOptions {
        dataset: dataset.ok_or("--dataset is required")?,
        data_dir,
        specs: g.specs(&models)?,
        split_out,
        threads,
        repeats,
    };
    let report = run_eval1(&opts, |r| println!("{}", format_result(r)))?;
    eprintln!("{}", serde_json::to_string_pretty(&report.info)?);
    if let Some(p) = json_out {
        std::fs::write(&p, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
