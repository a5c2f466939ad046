//! `candor audit fairness`: audit any CSV of decisions for group fairness.
//!
//! A thin shell over `candor_fairness::audit_csv_with_progress`: it maps flags to options, shows a
//! progress bar on large inputs, evaluates findings and writes JSON or HTML. No metric logic here.
//!
//! Wiring (CLI owner): `mod audit_cmd;`, add `candor-fairness.workspace = true` to the cli crate's
//! dependencies, and dispatch `audit fairness` to `audit_cmd::run_fairness(&args)`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use candor_fairness::{
    AuditOptions, Bootstrap, Columns, CsvFormat, Severity, Thresholds, audit_csv_with_progress,
    findings, read_reference, render_html, render_json,
};

/// Output format of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// `{"report": ..., "findings": [...]}` (stable field names, see docs/FAIRNESS.md).
    Json,
    /// Self-contained HTML page with charts and plain-language findings.
    Html,
}

/// Minimum finding severity that makes the command exit with an error (for CI and schedules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Low,
    Medium,
    High,
}

/// `candor audit fairness --input decisions.csv --group sex --prediction pred ...`
#[derive(Debug, Clone, clap::Args)]
pub struct FairnessArgs {
    /// CSV file of decisions, one row per decision.
    #[arg(long)]
    pub input: PathBuf,
    /// Protected attribute column; repeat for intersectional groups (e.g. --group sex --group age_band).
    #[arg(long = "group", required = true)]
    pub group: Vec<String>,
    /// Column with the decision (selected / predicted positive): 1/0, true/false, yes/no.
    #[arg(long)]
    pub prediction: String,
    /// Column with the observed outcome (enables TPR, FPR, precision, equalized odds, calibration).
    #[arg(long)]
    pub label: Option<String>,
    /// Column with a model score in [0, 1] (enables calibration by group).
    #[arg(long)]
    pub score: Option<String>,
    /// Column with the 1-based rank shown (enables position-discounted exposure); empty = not shown.
    #[arg(long)]
    pub rank: Option<String>,
    /// Column with sample weights.
    #[arg(long)]
    pub weight: Option<String>,
    /// Privileged group for AIF360-style signed metrics: `Male` or `sex=Male`; repeat to intersect.
    #[arg(long)]
    pub privileged: Vec<String>,
    /// Value meaning "positive" in the prediction and label columns (e.g. ">50K"); others are negative.
    #[arg(long)]
    pub positive: Option<String>,
    /// Candidate proxy feature to test against the group attributes (e.g. zip); repeatable.
    #[arg(long = "proxy")]
    pub proxy: Vec<String>,
    /// Reference population CSV: group attribute column(s) plus a `share` or `count` column.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Bootstrap replicates for confidence intervals (0 = none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap (same seed, same intervals).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Field delimiter (default: detected from the first line).
    #[arg(long)]
    pub delimiter: Option<char>,
    /// The file has no header row; columns are named 1, 2, 3... unless --columns names them.
    #[arg(long)]
    pub no_header: bool,
    /// Column names for a file without a header, comma-separated (implies --no-header).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Exit with an error if any finding has at least this severity.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

/// Files above this size get a progress bar.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

pub fn run_fairness(args: &FairnessArgs) -> anyhow::Result<()> {
    let delimiter = match args.delimiter {
        None => None,
        Some(c) if c.is_ascii() => Some(c as u8),
        Some(c) => bail!("--delimiter must be a single ASCII character, got {c:?}"),
    };
    let columns = Columns {
        group: args.group.clone(),
        prediction: args.prediction.clone(),
        label: args.label.clone(),
        score: args.score.clone(),
        rank: args.rank.clone(),
        weight: args.weight.clone(),
        proxies: args.proxy.clone(),
        positive: args.positive.clone(),
    };
    let format = CsvFormat {
        delimiter,
        has_header: !args.no_header && args.columns.is_empty(),
        column_names: args.columns.clone(),
        ..Default::default()
    };
    let reference = args
        .reference
        .as_deref()
        .map(read_reference)
        .transpose()
        .context("reading --reference")?;
    let options = AuditOptions {
        privileged: args.privileged.clone(),
        bootstrap: Bootstrap {
            replicates: args.bootstrap,
            seed: args.seed,
            ..Default::default()
        },
        reference,
        ..Default::default()
    };

    let size = std::fs::metadata(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .len();
    let bar = (size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>6} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    });
    let report = audit_csv_with_progress(&args.input, &columns, &format, &options, &|p| {
        if let Some(pb) = &bar {
            pb.set_message(p.phase);
            pb.set_length(p.total);
            pb.set_position(p.done);
        }
    });
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let report = report.with_context(|| format!("auditing {}", args.input.display()))?;

    let found = findings(&report, &Thresholds::default());
    let text = match args.format {
        ReportFormat::Json => render_json(&report, &found),
        ReportFormat::Html => render_html(&report, &found),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => println!("{text}"),
    }
    let high = found
        .iter()
        .filter(|f| f.severity == Severity::High)
        .count();
    eprintln!(
        "audited {} rows in {} groups: {} finding(s), {high} high",
        report.input.rows,
        report.slices.last().map_or(0, |s| s.groups.len()),
        found.len()
    );
    if let Some(level) = args.fail_on {
        let min = match level {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
        };
        if found.iter().any(|f| f.severity >= min) {
            bail!("fairness findings at or above {level:?} severity");
        }
    }
    Ok(())
}
