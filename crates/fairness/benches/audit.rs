//! Benchmark: all group metrics on 10 million decisions with 5 groups, from memory and from CSV.
//!
//! Run: `cargo bench -p candor-fairness --bench audit` (env `ROWS` to change the size,
//! `CSV` for the file path; the file is generated under /tmp if missing — never in the repo).
//! Target: < 2 s, aim < 0.6 s on the 2-core machine.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candor_fairness::bootstrap::Rng;
use candor_fairness::{
    AuditOptions, Columns, CsvFormat, Decision, DecisionsBuilder, audit_csv, audit_decisions,
};

const GROUPS: [&str; 5] = ["group_a", "group_b", "group_c", "group_d", "group_e"];
/// Per group: (share of rows cumulative, P(label), P(selected | label=1), P(selected | label=0)).
const PROFILE: [(f64, f64, f64, f64); 5] = [
    (0.40, 0.30, 0.70, 0.10),
    (0.70, 0.25, 0.60, 0.12),
    (0.85, 0.20, 0.55, 0.08),
    (0.95, 0.15, 0.50, 0.15),
    (1.00, 0.10, 0.40, 0.05),
];

/// One synthetic row: group, selected, label, score (deterministic in the row index via the seed).
fn row(rng: &mut Rng) -> (usize, bool, bool, f64) {
    let u = rng.uniform();
    let g = PROFILE.iter().position(|p| u <= p.0).unwrap_or(4);
    let (_, py, ps1, ps0) = PROFILE[g];
    let label = rng.uniform() < py;
    let selected = rng.uniform() < if label { ps1 } else { ps0 };
    let score = (0.5 * rng.uniform() + if label { 0.45 } else { 0.05 }).min(0.999);
    (g, selected, label, score)
}

fn generate_csv(path: &PathBuf, rows: usize) {
    let t = Instant::now();
    let f = std::fs::File::create(path).expect("create CSV");
    let mut w = std::io::BufWriter::with_capacity(1 << 22, f);
    writeln!(w, "subject,group,pred,label,score").unwrap();
    let mut rng = Rng::new(2024);
    for i in 0..rows {
        let (g, s, y, score) = row(&mut rng);
        writeln!(
            w,
            "{i},{},{},{},{score:.3}",
            GROUPS[g],
            u8::from(s),
            u8::from(y)
        )
        .unwrap();
    }
    w.flush().unwrap();
    eprintln!(
        "generated {} ({rows} rows, {:.0} MB) in {:.1} s",
        path.display(),
        std::fs::metadata(path).unwrap().len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let csv = PathBuf::from(
        std::env::var("CSV").unwrap_or_else(|_| format!("/tmp/candor-fairness-{rows}.csv")),
    );
    let options = AuditOptions::default();
    println!(
        "fairness audit benchmark: {rows} decisions, 5 groups, {} threads, {} bootstrap replicates",
        options.threads, options.bootstrap.replicates
    );

    // From memory (skipped with ONLY=csv, for profiling the reader alone).
    let only_csv = std::env::var("ONLY").is_ok_and(|v| v == "csv");
    let mut best_mem = f64::NAN;
    if !only_csv {
        let t = Instant::now();
        let mut b = DecisionsBuilder::new(["group"]);
        let mut rng = Rng::new(2024);
        for _ in 0..rows {
            let (g, s, y, score) = row(&mut rng);
            b.push(&Decision {
                group: &[GROUPS[g]],
                selected: s,
                label: Some(y),
                score: Some(score),
                ..Default::default()
            })
            .unwrap();
        }
        let decisions = b.build();
        eprintln!(
            "built in-memory table in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        best_mem = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let r = audit_decisions(&decisions, &options).unwrap();
            best_mem = best_mem.min(t.elapsed().as_secs_f64());
            std::hint::black_box(r);
        }
        drop(decisions);
    }

    // From CSV.
    if !csv.exists() {
        generate_csv(&csv, rows);
    }
    let columns = Columns {
        group: vec!["group".into()],
        prediction: "pred".into(),
        label: Some("label".into()),
        score: Some("score".into()),
        ..Default::default()
    };
    let mut best_csv = f64::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = audit_csv(&csv, &columns, &CsvFormat::default(), &options).unwrap();
        best_csv = best_csv.min(t.elapsed().as_secs_f64());
        report = Some(r);
    }
    let r = report.unwrap();
    let verdict = |s: f64| {
        if s < 0.6 {
            "meets the aim (< 0.6 s)"
        } else if s < 2.0 {
            "meets the target (< 2 s)"
        } else {
            "MISSES the target (< 2 s)"
        }
    };
    println!(
        "from memory: {best_mem:.3} s (best of 3)  -> {}",
        verdict(best_mem)
    );
    println!(
        "from CSV:    {best_csv:.3} s (best of 3)  -> {}",
        verdict(best_csv)
    );
    let s = &r.slices[0];
    for g in &s.groups {
        println!(
            "  {:8} n={:>8} selection={:.6} tpr={:.6} fpr={:.6}",
            g.label,
            g.count,
            g.selection_rate.value.unwrap_or(f64::NAN),
            g.true_positive_rate.value.unwrap_or(f64::NAN),
            g.false_positive_rate.value.unwrap_or(f64::NAN)
        );
    }
    let dp = s.disparities[0].difference.value.unwrap_or(f64::NAN);
    println!("  demographic_parity_difference={dp:.6}");
}
