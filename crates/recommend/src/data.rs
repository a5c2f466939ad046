//! Loading interaction logs of the EVAL-1 data sets.
//!
//! Invariants: ids are kept exactly as written in the file (no trimming, no case folding: the
//! online-retail set has stock codes that differ only by case); timestamps are UTC epoch seconds.
//! The loaders are the only code in this crate that reads data files.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{RecError, Result};

/// One observed (user, item, time) event. The rating of MovieLens rows is ignored on purpose:
/// EVAL-1 treats every row as an implicit-feedback interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub user: String,
    pub item: String,
    pub ts: i64,
}

/// The data sets EVAL-1 is defined on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Ml100k,
    Ml1mPartial,
    OnlineRetail,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::Ml100k, Dataset::Ml1mPartial, Dataset::OnlineRetail];

    /// The name used on the command line and in reports (same as `peer_eval1.py --dataset`).
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Ml100k => "ml-100k",
            Dataset::Ml1mPartial => "ml-1m-partial",
            Dataset::OnlineRetail => "online-retail",
        }
    }

    pub fn from_name(name: &str) -> Result<Dataset> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                RecError::Invalid(format!(
                    "unknown dataset `{name}` (expected ml-100k, ml-1m-partial or online-retail)"
                ))
            })
    }

    /// Path of the source file below the shared data folder.
    pub fn path(self, data_dir: &Path) -> PathBuf {
        match self {
            Dataset::Ml100k => data_dir.join("ml-100k").join("u.data"),
            Dataset::Ml1mPartial => data_dir
                .join("ml-1m")
                .join("ratings.PARTIAL-users-1-2999.dat"),
            Dataset::OnlineRetail => data_dir.join("online-retail").join("online_retail.csv"),
        }
    }

    /// Reads the interactions of this data set under EVAL-1's rules.
    pub fn load(self, data_dir: &Path) -> Result<Vec<Interaction>> {
        let path = self.path(data_dir);
        match self {
            Dataset::Ml100k => load_separated(&path, "\t"),
            Dataset::Ml1mPartial => load_separated(&path, "::"),
            Dataset::OnlineRetail => load_online_retail(&path),
        }
    }
}

/// MovieLens layout: `user SEP item SEP rating SEP timestamp`, one rating per line.
/// Bytes are read as Latin-1-safe: ids and timestamps are ASCII, and the rating is not used.
pub fn load_separated(path: &Path, sep: &str) -> Result<Vec<Interaction>> {
    let file = File::open(path).map_err(|e| RecError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| RecError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let mut line: &[u8] = &buf;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| RecError::parse(path, line_no, "line", "not ASCII/UTF-8"))?;
        let mut fields = text.split(sep);
        let user = fields.next().unwrap_or_default();
        let item = fields
            .next()
            .ok_or_else(|| RecError::parse(path, line_no, "item", "missing"))?;
        let _rating = fields
            .next()
            .ok_or_else(|| RecError::parse(path, line_no, "rating", "missing"))?;
        let ts = fields
            .next()
            .ok_or_else(|| RecError::parse(path, line_no, "timestamp", "missing"))?;
        if fields.next().is_some() {
            return Err(RecError::parse(path, line_no, "line", "more than 4 fields"));
        }
        if user.is_empty() {
            return Err(RecError::parse(path, line_no, "user", "empty"));
        }
        let ts: i64 = ts.trim().parse().map_err(|_| {
            RecError::parse(
                path,
                line_no,
                "timestamp",
                format!("not an integer: {ts:?}"),
            )
        })?;
        out.push(Interaction {
            user: user.to_owned(),
            item: item.to_owned(),
            ts,
        });
    }
    Ok(out)
}

/// UCI Online Retail CSV. Keeps rows with a CustomerID, Quantity > 0 and an InvoiceNo not
/// starting with 'C'; user = CustomerID, item = StockCode verbatim, ts = InvoiceDate as UTC;
/// then only the earliest interaction of each (user, item) pair.
pub fn load_online_retail(path: &Path) -> Result<Vec<Interaction>> {
    let file = File::open(path).map_err(|e| RecError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let headers = rdr
        .headers()
        .map_err(|e| RecError::parse(path, 1, "header", e.to_string()))?
        .clone();
    let col = |name: &'static str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| RecError::parse(path, 1, name, "column missing from header"))
    };
    let (c_inv, c_code, c_qty, c_date, c_cust) = (
        col("InvoiceNo")?,
        col("StockCode")?,
        col("Quantity")?,
        col("InvoiceDate")?,
        col("CustomerID")?,
    );
    let mut rows: Vec<Interaction> = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut rec).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            RecError::parse(path, line, "record", e.to_string())
        })?;
        if !more {
            break;
        }
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize, name: &'static str| -> Result<&str> {
            rec.get(i)
                .ok_or_else(|| RecError::parse(path, line, name, "missing"))
        };
        let cust = field(c_cust, "CustomerID")?;
        if cust.is_empty() || field(c_inv, "InvoiceNo")?.starts_with('C') {
            continue;
        }
        let qty_s = field(c_qty, "Quantity")?;
        let qty: i64 = qty_s.parse().map_err(|_| {
            RecError::parse(path, line, "Quantity", format!("not an integer: {qty_s:?}"))
        })?;
        if qty <= 0 {
            continue;
        }
        let date = field(c_date, "InvoiceDate")?;
        let ts = parse_datetime(date).ok_or_else(|| {
            RecError::parse(
                path,
                line,
                "InvoiceDate",
                format!("expected YYYY-MM-DD HH:MM:SS, got {date:?}"),
            )
        })?;
        rows.push(Interaction {
            user: cust.to_owned(),
            item: field(c_code, "StockCode")?.to_owned(),
            ts,
        });
    }
    Ok(keep_earliest_per_pair(rows))
}

/// Keeps the earliest interaction of each (user, item) pair; output sorted by (user, item).
pub fn keep_earliest_per_pair(mut rows: Vec<Interaction>) -> Vec<Interaction> {
    rows.sort_by(|a, b| (&a.user, &a.item, a.ts).cmp(&(&b.user, &b.item, b.ts)));
    rows.dedup_by(|later, first| later.user == first.user && later.item == first.item);
    rows
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into epoch seconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Shared data folder: `$CANDOR_SHARED_DATA`, else `../shared/data` beside the workspace.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("CANDOR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_parses_to_utc_epoch() {
        assert_eq!(parse_datetime("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_datetime("2010-12-01 08:26:00"), Some(1_291_191_960));
        assert_eq!(parse_datetime("2000-02-29 23:59:59"), Some(951_868_799));
        assert_eq!(parse_datetime("2010-12-01T08:26:00"), None);
        assert_eq!(parse_datetime("2010-13-01 08:26:00"), None);
    }

    #[test]
    fn parse_errors_name_file_line_and_field() {
        let dir =
            std::env::temp_dir().join(format!("candor-recommend-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.data");
        std::fs::write(&path, "1\t2\t5\t100\n1\t3\t4\tsoon\n").unwrap();
        let err = load_separated(&path, "\t").unwrap_err();
        assert!(
            matches!(
                err,
                RecError::Parse {
                    line: 2,
                    field: "timestamp",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("u.data:2: field `timestamp`"),
            "{err}"
        );
        let csv = dir.join("retail.csv");
        std::fs::write(
            &csv,
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
             1,A,\"x, y\",2,2010-12-01 08:26:00,1.0,17850,UK\n\
             C2,A,x,2,2010-12-01 08:26:00,1.0,17850,UK\n\
             3,a,x,-1,2010-12-01 08:26:00,1.0,17850,UK\n\
             4,B,x,1,2010-12-01 08:26:00,1.0,,UK\n\
             5,A,x,1,2010-11-01 08:00:00,1.0,17850,UK\n\
             6,B,x,one,2010-12-01 08:26:00,1.0,17850,UK\n",
        )
        .unwrap();
        let err = load_online_retail(&csv).unwrap_err();
        assert!(
            matches!(
                err,
                RecError::Parse {
                    line: 7,
                    field: "Quantity",
                    ..
                }
            ),
            "{err}"
        );
        let content = std::fs::read_to_string(&csv).unwrap();
        let valid: Vec<&str> = content.lines().take(6).collect();
        std::fs::write(&csv, valid.join("\n")).unwrap();
        let rows = load_online_retail(&csv).unwrap();
        // cancellation, negative quantity and missing customer dropped; earliest (17850, A) kept
        assert_eq!(
            rows,
            vec![Interaction {
                user: "17850".into(),
                item: "A".into(),
                ts: 1_288_598_400
            }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn earliest_pair_wins_and_case_is_kept() {
        let r = |u: &str, i: &str, ts| Interaction {
            user: u.into(),
            item: i.into(),
            ts,
        };
        let out = keep_earliest_per_pair(vec![
            r("1", "a", 5),
            r("1", "A", 7),
            r("1", "a", 3),
            r("2", "a", 9),
        ]);
        assert_eq!(out, vec![r("1", "A", 7), r("1", "a", 3), r("2", "a", 9)]);
    }
}
