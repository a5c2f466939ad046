//! The CSV entry point: parsing, thread-count independence, and errors that name column and line.

use std::path::PathBuf;

use candor_fairness::{
    AuditOptions, Bootstrap, Columns, CsvFormat, FairnessError, Report, audit_csv, read_reference,
};

fn write(name: &str, content: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("candor-fairness-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p
}

fn cols() -> Columns {
    Columns {
        group: vec!["sex".into()],
        prediction: "pred".into(),
        label: Some("label".into()),
        score: Some("score".into()),
        ..Default::default()
    }
}

fn opts(threads: usize) -> AuditOptions {
    AuditOptions {
        bootstrap: Bootstrap {
            replicates: 100,
            ..Default::default()
        },
        threads,
        ..Default::default()
    }
}

fn run(name: &str, content: &str, c: &Columns) -> Result<Report, FairnessError> {
    let p = write(name, content);
    let r = audit_csv(&p, c, &CsvFormat::default(), &opts(2));
    let _ = std::fs::remove_file(p);
    r
}

#[test]
fn parses_quotes_crlf_blank_lines_and_bom() {
    let csv = "\u{feff}id,sex,pred,label,score\r\n1,\"F, cis\",1,1,0.9\r\n\r\n2,M,0,1,0.2\r\n3,M,yes,no,.5\r\n";
    let r = run("ok.csv", csv, &cols()).unwrap();
    assert_eq!(r.input.rows, 3);
    let g = &r.slices[0].groups;
    assert_eq!(g[0].label, "F, cis");
    assert_eq!(g[1].selection_rate.value, Some(0.5));
    assert_eq!(
        g[1].calibration.as_ref().unwrap().mean_score.value,
        Some(0.35)
    );
}

#[test]
fn errors_name_column_and_line() {
    let e = run(
        "nb.csv",
        "id,sex,pred,label,score\n1,F,1,1,0.5\n2,M,2,0,0.5\n",
        &cols(),
    )
    .unwrap_err();
    match &e {
        FairnessError::NotBinary {
            column,
            line,
            value,
        } => {
            assert_eq!((column.as_str(), *line, value.as_str()), ("pred", 3, "2"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("line 3, column `pred`"));

    let e = run("mc.csv", "id,gender,pred\n1,F,1\n", &cols()).unwrap_err();
    assert!(
        matches!(&e, FairnessError::MissingColumn { column, .. } if column == "sex"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("available columns: id, gender, pred")
    );

    let e = run("bs.csv", "id,sex,pred,label,score\n1,F,1,1,high\n", &cols()).unwrap_err();
    assert!(
        matches!(&e, FairnessError::BadNumber { column, line: 2, .. } if column == "score"),
        "{e}"
    );

    let e = run(
        "sr.csv",
        "id,sex,pred,label,score\n1,F,1,1,0.5\n1,F,1\n",
        &cols(),
    )
    .unwrap_err();
    assert!(matches!(e, FairnessError::ShortRow { line: 3, .. }), "{e}");

    let e = run(
        "uq.csv",
        "id,sex,pred,label,score\n1,\"F,1,1,0.5\n",
        &cols(),
    )
    .unwrap_err();
    assert!(
        matches!(e, FairnessError::UnterminatedQuote { line: 2 }),
        "{e}"
    );

    let e = run("em.csv", "id,sex,pred,label,score\n", &cols()).unwrap_err();
    assert!(matches!(e, FairnessError::Empty { .. }), "{e}");

    let mut o = opts(2);
    o.privileged = vec!["Other".into()];
    let p = write(
        "pr.csv",
        "id,sex,pred,label,score\n1,F,1,1,0.5\n2,M,0,0,0.1\n",
    );
    let e = audit_csv(&p, &cols(), &CsvFormat::default(), &o).unwrap_err();
    assert!(matches!(e, FairnessError::UnknownPrivileged { .. }), "{e}");
    assert!(e.to_string().contains("sex: F, M"), "{e}");
    let _ = std::fs::remove_file(p);

    let e = audit_csv(
        std::path::Path::new("/nonexistent/decisions.csv"),
        &cols(),
        &CsvFormat::default(),
        &opts(1),
    )
    .unwrap_err();
    assert!(matches!(e, FairnessError::Io { .. }));
}

fn big_csv(rows: usize, bad_line: Option<usize>) -> String {
    let mut s = String::from("id,sex,pred,label,score\n");
    for i in 0..rows {
        let line = i + 2;
        let pred = if Some(line) == bad_line {
            "maybe"
        } else if i % 3 == 0 {
            "1"
        } else {
            "0"
        };
        let sex = ["F", "M", "X"][i % 7 % 3];
        s.push_str(&format!(
            "{i},{sex},{pred},{},{:.3}\n",
            i % 2,
            (i % 1000) as f64 / 1000.0
        ));
    }
    s
}

#[test]
fn thread_count_does_not_change_the_report_and_line_numbers_stay_exact() {
    // ~3 MB, so two threads really split it.
    let csv = big_csv(150_000, None);
    let p = write("big.csv", &csv);
    let one = audit_csv(&p, &cols(), &CsvFormat::default(), &opts(1)).unwrap();
    let two = audit_csv(&p, &cols(), &CsvFormat::default(), &opts(2)).unwrap();
    let _ = std::fs::remove_file(&p);
    // Sums are added in a different order across threads; compare through JSON at f32 precision
    // of the only floating sums that can differ (scores), and exactly for everything count-based.
    assert_eq!(one.slices[0].groups.len(), 3);
    for (a, b) in one.slices[0].groups.iter().zip(&two.slices[0].groups) {
        assert_eq!(a.count, b.count);
        assert_eq!(a.selection_rate, b.selection_rate);
        assert_eq!(a.true_positive_rate, b.true_positive_rate);
        let (ma, mb) = (
            a.calibration.as_ref().unwrap().mean_score.value.unwrap(),
            b.calibration.as_ref().unwrap().mean_score.value.unwrap(),
        );
        assert!((ma - mb).abs() < 1e-9);
    }

    let bad = 140_000;
    let p = write("bad.csv", &big_csv(150_000, Some(bad)));
    let e = audit_csv(&p, &cols(), &CsvFormat::default(), &opts(2)).unwrap_err();
    let _ = std::fs::remove_file(&p);
    assert!(
        matches!(e, FairnessError::NotBinary { line, .. } if line == bad),
        "{e}"
    );
}

#[test]
fn reference_distribution_reports_missing_groups_as_zero() {
    let refp = write("ref.csv", "sex,share\nF,0.5\nM,0.4\nX,0.1\n");
    let mut o = opts(1);
    o.reference = Some(read_reference(&refp).unwrap());
    let p = write("rep.csv", "id,sex,pred\n1,F,1\n2,M,0\n3,M,1\n4,M,0\n");
    let c = Columns {
        group: vec!["sex".into()],
        prediction: "pred".into(),
        ..Default::default()
    };
    let r = audit_csv(&p, &c, &CsvFormat::default(), &o).unwrap();
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&refp);
    let rep = &r.representation[0].groups;
    assert_eq!(rep.len(), 3);
    assert_eq!((rep[0].label.as_str(), rep[0].data_share), ("F", 0.25));
    assert_eq!(rep[0].ratio.value, Some(0.5));
    assert_eq!((rep[2].label.as_str(), rep[2].count), ("X", 0));
    assert_eq!(rep[2].ratio.value, Some(0.0));
    let f = candor_fairness::findings(&r, &candor_fairness::Thresholds::default());
    assert!(f.iter().any(|f| f.groups_affected == vec!["F", "X"]));
}

#[test]
fn headerless_files_use_numbered_columns() {
    let p = write("nh.csv", "F;1\nM;0\nM;1\n");
    let c = Columns {
        group: vec!["1".into()],
        prediction: "2".into(),
        ..Default::default()
    };
    let f = CsvFormat {
        has_header: false,
        ..Default::default()
    };
    let r = audit_csv(&p, &c, &f, &opts(1)).unwrap();
    let _ = std::fs::remove_file(&p);
    assert_eq!(r.input.rows, 3);
    assert_eq!(r.slices[0].groups[1].selection_rate.value, Some(0.5));
}
