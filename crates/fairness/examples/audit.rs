//! Stand-in for `candor audit fairness` until the CLI wires `crates/cli/src/audit_cmd.rs`:
//! the same flags, a tiny hand parser, the same library calls.
//!
//! cargo run --release -p candor-fairness --example audit -- \
//!     --input decisions.csv --group sex [--group age_band] --prediction pred [--label y] \
//!     [--score s] [--rank r] [--weight w] [--privileged Male] [--positive '>50K'] [--proxy zip] \
//!     [--reference ref.csv] [--columns a,b,c] [--format json|html] [--output FILE] [--bootstrap N]

use std::path::PathBuf;
use std::process::ExitCode;

use candor_fairness::{
    AuditOptions, Columns, CsvFormat, Thresholds, audit_csv, findings, read_reference, render_html,
    render_json,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut columns = Columns::default();
    let mut format = CsvFormat::default();
    let mut options = AuditOptions::default();
    let (mut input, mut output, mut html) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-header" {
            format.has_header = false;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--input" => input = Some(PathBuf::from(value)),
            "--group" => columns.group.push(value),
            "--prediction" => columns.prediction = value,
            "--label" => columns.label = Some(value),
            "--score" => columns.score = Some(value),
            "--rank" => columns.rank = Some(value),
            "--weight" => columns.weight = Some(value),
            "--positive" => columns.positive = Some(value),
            "--proxy" => columns.proxies.push(value),
            "--privileged" => options.privileged.push(value),
            "--reference" => options.reference = Some(read_reference(value.as_ref())?),
            "--columns" => {
                format.has_header = false;
                format.column_names = value.split(',').map(str::to_owned).collect();
            }
            "--format" => html = value == "html",
            "--output" => output = Some(PathBuf::from(value)),
            "--bootstrap" => options.bootstrap.replicates = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let input = input.ok_or("--input is required")?;
    let report = audit_csv(&input, &columns, &format, &options)?;
    let found = findings(&report, &Thresholds::default());
    let text = if html {
        render_html(&report, &found)
    } else {
        render_json(&report, &found)
    };
    match output {
        Some(p) => std::fs::write(p, text)?,
        None => println!("{text}"),
    }
    eprintln!(
        "audited {} rows: {} finding(s)",
        report.input.rows,
        found.len()
    );
    Ok(())
}
