//! The cost of each serving constraint under EVAL-1 (same as `candor eval --constraints`).
//!
//! `cargo run --release -p candor-recommend --example constraints -- --dataset ml-100k
//!  [--data-dir ../shared/data] [--threads 2] [--sensitive-category Horror]`

use candor_recommend::constraints::{TABLE_HEADER, format_row, run_constraints};
use candor_recommend::data::{Dataset, default_data_dir};
use candor_recommend::eval::with_threads;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dataset = "ml-100k".to_owned();
    let mut data_dir = default_data_dir();
    let mut threads = 2usize;
    let mut sensitive: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dataset" => dataset = val()?,
            "--data-dir" => data_dir = val()?.into(),
            "--threads" => threads = val()?.parse()?,
            "--sensitive-category" => sensitive = Some(val()?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let dataset = Dataset::from_name(&dataset)?;
    let t = std::time::Instant::now();
    println!("{TABLE_HEADER}");
    let report = with_threads(threads, || {
        run_constraints(dataset, &data_dir, sensitive.as_deref(), |r| {
            println!("{}", format_row(r))
        })
    })??;
    eprintln!(
        "{}: {} categories; sensitive `{}` holds {:.1}% of test interactions; {:.1} s",
        report.dataset,
        report.n_categories,
        report.sensitive_category,
        report.sensitive_test_share * 100.0,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
