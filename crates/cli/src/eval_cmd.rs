//! `candor eval`: offline recommendation quality under protocol EVAL-1.
//!
//! A thin shell over `candor_recommend::eval`: parse flags, run, print. Everything it reports
//! comes from the library, so `crates/recommend/examples/eval.rs` gives identical numbers.

use std::path::PathBuf;

use anyhow::Context;
use candor_recommend::data::Dataset;
use candor_recommend::eval::{EvalOptions, ParamGrid, format_result, run_eval1};

/// Arguments of `candor eval`. List-valued hyper-parameters take comma lists; every
/// combination is evaluated (a tuning grid). Unset ones use the tuned defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Data set: ml-100k, ml-1m-partial or online-retail.
    #[arg(long, value_parser = ["ml-100k", "ml-1m-partial", "online-retail"])]
    pub dataset: String,
    /// Models: popularity, item-knn, als, all, or a comma list of them.
    #[arg(long, default_value = "all")]
    pub model: String,
    /// Folder holding ml-100k/, ml-1m/ and online-retail/.
    #[arg(long, default_value = "../shared/data", env = "CANDOR_SHARED_DATA")]
    pub data_dir: PathBuf,
    /// Write the split (`user item timestamp train|test|test_dropped`) to this TSV file.
    #[arg(long)]
    pub split_out: Option<PathBuf>,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Worker threads for fitting and recommending (0 = all cores).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Fit and recommend each model this many times; times are medians.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// item-kNN: neighbours kept per item.
    #[arg(long, value_delimiter = ',')]
    pub knn_k: Option<Vec<usize>>,
    /// item-kNN: cosine, bm25 or tfidf.
    #[arg(long, value_delimiter = ',')]
    pub knn_weighting: Option<Vec<String>>,
    /// item-kNN: cosine asymmetry (0.5 = cosine).
    #[arg(long, value_delimiter = ',')]
    pub knn_asymmetry: Option<Vec<f32>>,
    /// item-kNN: similarity exponent.
    #[arg(long, value_delimiter = ',')]
    pub knn_power: Option<Vec<f32>>,
    /// item-kNN: recency half-life in events (0 = off).
    #[arg(long, value_delimiter = ',')]
    pub knn_recency: Option<Vec<f32>>,
    /// item-kNN: recency unit, time (same-time items are one event) or position.
    #[arg(long, value_delimiter = ',')]
    pub knn_recency_unit: Option<Vec<String>>,
    /// item-kNN BM25: K1.
    #[arg(long)]
    pub bm25_k1: Option<f32>,
    /// item-kNN BM25: B.
    #[arg(long)]
    pub bm25_b: Option<f32>,
    /// ALS: latent factors.
    #[arg(long, value_delimiter = ',')]
    pub factors: Option<Vec<usize>>,
    /// ALS: iterations.
    #[arg(long, value_delimiter = ',')]
    pub iterations: Option<Vec<usize>>,
    /// ALS: L2 regularization.
    #[arg(long = "reg", value_delimiter = ',')]
    pub regularization: Option<Vec<f32>>,
    /// ALS: confidence of an observed interaction (implicit's alpha).
    #[arg(long, value_delimiter = ',')]
    pub alpha: Option<Vec<f32>>,
    /// ALS: conjugate-gradient steps per row (0 = exact Cholesky).
    #[arg(long)]
    pub cg_steps: Option<usize>,
    /// ALS: random seed of the initial factors.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Instead of the model grid: the cost of each serving constraint (bare item-kNN vs the
    /// serving engine at each level, with and without diversity and a sensitive category).
    #[arg(long)]
    pub constraints: bool,
    /// With --constraints: the category marked sensitive (default Horror for MovieLens, the
    /// fifth-largest product line for online-retail).
    #[arg(long, requires = "constraints")]
    pub sensitive_category: Option<String>,
}

impl EvalArgs {
    fn grid(&self) -> ParamGrid {
        let mut g = ParamGrid::default();
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        set(&mut g.knn_neighbours, &self.knn_k);
        set(&mut g.knn_weighting, &self.knn_weighting);
        set(&mut g.knn_asymmetry, &self.knn_asymmetry);
        set(&mut g.knn_power, &self.knn_power);
        set(&mut g.knn_recency, &self.knn_recency);
        set(&mut g.knn_recency_unit, &self.knn_recency_unit);
        set(&mut g.bm25_k1, &self.bm25_k1);
        set(&mut g.bm25_b, &self.bm25_b);
        set(&mut g.als_factors, &self.factors);
        set(&mut g.als_iterations, &self.iterations);
        set(&mut g.als_regularization, &self.regularization);
        set(&mut g.als_alpha, &self.alpha);
        set(&mut g.als_cg_steps, &self.cg_steps);
        set(&mut g.seed, &self.seed);
        g
    }
}

/// Runs `candor eval`: one line per model on stdout, the split summary on stderr.
pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    let dataset = Dataset::from_name(&args.dataset)?;
    if args.constraints {
        return run_constraints(args, dataset);
    }
    let specs = args.grid().specs(&args.model)?;
    let opts = EvalOptions {
        dataset,
        data_dir: args.data_dir.clone(),
        specs,
        split_out: args.split_out.clone(),
        threads: args.threads,
        repeats: args.repeats,
    };
    let bar = indicatif::ProgressBar::new(opts.specs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} EVAL-1 {pos}/{len} models {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let report = run_eval1(&opts, |r| {
        // results go to stdout (pipeable); the bar lives on stderr and is hidden off a terminal
        bar.suspend(|| println!("{}", format_result(r)));
        bar.inc(1);
    })
    .with_context(|| format!("EVAL-1 on {}", args.dataset))?;
    bar.finish_and_clear();
    eprintln!(
        "{} ({}): {}",
        report.dataset,
        report.source,
        serde_json::to_string(&report.info)?
    );
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.split_out {
        eprintln!("wrote split to {}", path.display());
    }
    Ok(())
}

/// `candor eval --constraints`: one Markdown table row per pipeline variant.
fn run_constraints(args: &EvalArgs, dataset: Dataset) -> anyhow::Result<()> {
    use candor_recommend::constraints::{TABLE_HEADER, format_row, run_constraints};
    let t = std::time::Instant::now();
    println!("{TABLE_HEADER}");
    let report = candor_recommend::eval::with_threads(args.threads, || {
        run_constraints(
            dataset,
            &args.data_dir,
            args.sensitive_category.as_deref(),
            |r| println!("{}", format_row(r)),
        )
    })?
    .with_context(|| format!("constraint costs on {}", args.dataset))?;
    eprintln!(
        "{}: {} categories; sensitive `{}` holds {:.1}% of test interactions; {:.1} s",
        report.dataset,
        report.n_categories,
        report.sensitive_category,
        report.sensitive_test_share * 100.0,
        t.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
