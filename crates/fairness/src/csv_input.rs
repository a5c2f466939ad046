//! The CSV reader: the crate's only I/O.
//!
//! Invariant: the file is read once into memory, split into chunks at line boundaries, and each
//! chunk is parsed by its own scoped thread straight into per-group sufficient statistics; no row
//! is ever materialised. Results do not depend on the number of threads (groups are sorted and
//! statistics merged by addition). Errors name the column and the 1-based line number, header
//! included, of the first bad line in the file.
//!
//! Format: RFC 4180 fields (quotes, doubled quotes inside quotes) on one line each — a quoted field
//! may hold the delimiter but not a newline. Delimiter `,` `\t` `;` or `|`, detected from the header
//! unless given. Fields are trimmed of spaces by default (UCI Adult uses ", ").

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::{AuditOptions, audit_stats};
use crate::data_audit::ReferenceDistribution;
use crate::error::FairnessError;
use crate::report::Report;
use crate::stats::{GroupStats, LABEL_NEG, LABEL_NONE, LABEL_POS, ProxyTable, TableStats};

/// Which columns mean what.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Columns {
    /// Protected attribute columns; several give intersectional groups.
    pub group: Vec<String>,
    /// The decision: selected / predicted positive (binary).
    pub prediction: String,
    /// Observed outcome (binary).
    pub label: Option<String>,
    /// Model score (number, ideally a probability).
    pub score: Option<String>,
    /// 1-based rank/position; an empty field means "not shown".
    pub rank: Option<String>,
    /// Sample weight (number >= 0).
    pub weight: Option<String>,
    /// Candidate proxy features to test against the group attributes.
    pub proxies: Vec<String>,
    /// The value meaning "positive" in prediction and label columns. Without it, values must be
    /// 1/0, true/false, yes/no, y/n or t/f (any case); with it, every other value is negative,
    /// as Fairlearn's `pos_label`.
    pub positive: Option<String>,
}

/// How the file is laid out.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvFormat {
    /// Field delimiter; `None` detects it from the first line.
    pub delimiter: Option<u8>,
    pub has_header: bool,
    /// Column names for a file without a header; when empty, columns are named "1", "2", ...
    pub column_names: Vec<String>,
    /// Trim spaces and tabs around fields.
    pub trim: bool,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: None,
            has_header: true,
            column_names: Vec::new(),
            trim: true,
        }
    }
}

/// Progress of a CSV audit, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// "read" or "parse".
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

/// Audit a CSV file of decisions.
pub fn audit_csv(
    path: &Path,
    columns: &Columns,
    format: &CsvFormat,
    options: &AuditOptions,
) -> Result<Report, FairnessError> {
    audit_csv_with_progress(path, columns, format, options, &|_| {})
}

/// [`audit_csv`], reporting progress (called from worker threads too).
pub fn audit_csv_with_progress(
    path: &Path,
    columns: &Columns,
    format: &CsvFormat,
    options: &AuditOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, FairnessError> {
    let bytes = read_file(path, progress)?;
    let stats = parse_stats(&bytes, columns, format, options, progress)?;
    audit_stats(&stats, options, Some(path.display().to_string()))
}

fn read_file(path: &Path, progress: &(dyn Fn(Progress) + Sync)) -> Result<Vec<u8>, FairnessError> {
    let io = |source| FairnessError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let total = f.metadata().map_err(io)?.len();
    let mut buf = Vec::with_capacity(total as usize + 1);
    // Read straight into the buffer in blocks, so a progress bar can move while a large file
    // loads without an extra copy.
    loop {
        let n = (&mut f).take(32 << 20).read_to_end(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        progress(Progress {
            phase: "read",
            done: buf.len() as u64,
            total,
        });
    }
    Ok(buf)
}

/// Parse CSV bytes into sufficient statistics.
pub fn parse_stats(
    bytes: &[u8],
    columns: &Columns,
    format: &CsvFormat,
    options: &AuditOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<TableStats, FairnessError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first_end = memchr(b'\n', bytes).unwrap_or(bytes.len());
    let first = strip_cr(&bytes[..first_end]);
    let delimiter = format.delimiter.unwrap_or_else(|| detect_delimiter(first));
    let (names, data, header_lines): (Vec<String>, &[u8], usize) = if format.has_header {
        let mut spans = Vec::new();
        split_line(first, delimiter, usize::MAX, &mut spans)
            .map_err(|()| FairnessError::UnterminatedQuote { line: 1 })?;
        let names = spans
            .iter()
            .map(|s| String::from_utf8_lossy(&field(first, *s, true)).into_owned())
            .collect();
        (names, bytes.get(first_end + 1..).unwrap_or(&[]), 1)
    } else if !format.column_names.is_empty() {
        (format.column_names.clone(), bytes, 0)
    } else {
        let mut spans = Vec::new();
        split_line(first, delimiter, usize::MAX, &mut spans)
            .map_err(|()| FairnessError::UnterminatedQuote { line: 1 })?;
        ((1..=spans.len()).map(|i| i.to_string()).collect(), bytes, 0)
    };
    let find = |c: &str| -> Result<usize, FairnessError> {
        names
            .iter()
            .position(|n| n == c)
            .ok_or_else(|| FairnessError::MissingColumn {
                column: c.to_owned(),
                available: names.join(", "),
            })
    };
    let find_opt = |c: &Option<String>| c.as_deref().map(find).transpose();
    if columns.group.is_empty() {
        return Err(FairnessError::BadOption {
            option: "group",
            reason: "at least one group column is needed".into(),
        });
    }
    let plan = Plan {
        names: &names,
        delimiter,
        trim: format.trim,
        group: columns
            .group
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?,
        prediction: find(&columns.prediction)?,
        label: find_opt(&columns.label)?,
        score: find_opt(&columns.score)?,
        rank: find_opt(&columns.rank)?,
        weight: find_opt(&columns.weight)?,
        proxies: columns
            .proxies
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?,
        positive: columns.positive.as_deref().map(str::as_bytes),
        bins: options.calibration_bins.max(1),
    };

    let threads = options
        .threads
        .clamp(1, 64)
        .min(data.len().div_ceil(1 << 20).max(1));
    let chunks = split_chunks(data, threads);
    let done = AtomicU64::new(0);
    let total = data.len() as u64;
    let results: Vec<Result<Chunk, (usize, FairnessError)>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|c| {
                let (plan, done) = (&plan, &done);
                s.spawn(move || {
                    parse_chunk(c, plan, &|n| {
                        let d = done.fetch_add(n, Ordering::Relaxed) + n;
                        progress(Progress {
                            phase: "parse",
                            done: d,
                            total,
                        });
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("CSV parser thread panicked"))
            .collect()
    });

    // Merge in file order; the first failing chunk's error is the first bad line of the file.
    let mut line_offset = header_lines;
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut stats: Vec<GroupStats> = Vec::new();
    let mut proxies: Vec<(HashMap<Vec<u8>, usize>, ProxyTable)> = columns
        .proxies
        .iter()
        .map(|p| {
            (
                HashMap::new(),
                ProxyTable {
                    feature: p.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut rows = 0u64;
    for r in results {
        let chunk = r.map_err(|(line, e)| with_line(e, line + line_offset))?;
        line_offset += chunk.lines;
        rows += chunk.rows;
        let global: Vec<usize> = chunk
            .groups
            .keys
            .iter()
            .map(|k| {
                *index.entry(k.clone()).or_insert_with(|| {
                    keys.push(k.clone());
                    stats.push(GroupStats::new(plan.bins));
                    keys.len() - 1
                })
            })
            .collect();
        for (l, s) in chunk.stats.iter().enumerate() {
            stats[global[l]].merge(s);
        }
        for ((pi, pt), local) in proxies.iter_mut().zip(chunk.proxies) {
            for (v, counts) in local.values.into_iter().zip(local.counts) {
                let vi = *pi.entry(v.clone()).or_insert_with(|| {
                    pt.values.push(String::from_utf8_lossy(&v).into_owned());
                    pt.counts.push(Vec::new());
                    pt.values.len() - 1
                });
                let row = &mut pt.counts[vi];
                for (g, c) in counts.into_iter().enumerate() {
                    if row.len() <= global[g] {
                        row.resize(global[g] + 1, 0);
                    }
                    row[global[g]] += c;
                }
            }
        }
    }
    if rows == 0 {
        return Err(FairnessError::Empty {
            what: "the CSV input".into(),
        });
    }
    let groups: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            k.split(|&b| b == KEY_SEP)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .collect();
    let n_groups = groups.len();
    let mut t = TableStats {
        attributes: columns.group.clone(),
        groups,
        stats,
        rows,
        has_label: plan.label.is_some(),
        has_score: plan.score.is_some(),
        has_rank: plan.rank.is_some(),
        weighted: plan.weight.is_some(),
        calibration_bins: plan.bins,
        proxies: proxies
            .into_iter()
            .map(|(_, mut p)| {
                for row in &mut p.counts {
                    row.resize(n_groups, 0);
                }
                p
            })
            .collect(),
    };
    t.canonicalize();
    Ok(t)
}

/// Separates attribute values inside an intersectional group key (ASCII unit separator).
const KEY_SEP: u8 = 0x1f;

struct Plan<'a> {
    names: &'a [String],
    delimiter: u8,
    trim: bool,
    group: Vec<usize>,
    prediction: usize,
    label: Option<usize>,
    score: Option<usize>,
    rank: Option<usize>,
    weight: Option<usize>,
    proxies: Vec<usize>,
    positive: Option<&'a [u8]>,
    bins: usize,
}

impl Plan<'_> {
    fn last_needed(&self) -> usize {
        let opt = [self.label, self.score, self.rank, self.weight];
        self.group
            .iter()
            .chain(&self.proxies)
            .copied()
            .chain(std::iter::once(self.prediction))
            .chain(opt.into_iter().flatten())
            .max()
            .unwrap_or(0)
    }
}

/// Group keys seen in one chunk: a short linear scan over (hash, key) beats a map for the handful
/// of groups audits usually have (the hash check avoids most byte comparisons); a map takes over
/// beyond that.
#[derive(Default)]
struct GroupIndex {
    keys: Vec<Vec<u8>>,
    hashes: Vec<u64>,
    map: HashMap<Vec<u8>, usize>,
}

impl GroupIndex {
    #[inline]
    fn get_or_insert(&mut self, key: &[u8]) -> (usize, bool) {
        let h = fnv1a(key);
        let found = if self.keys.len() <= 16 {
            self.hashes
                .iter()
                .zip(&self.keys)
                .position(|(&kh, k)| kh == h && k.as_slice() == key)
        } else {
            self.map.get(key).copied()
        };
        match found {
            Some(i) => (i, false),
            None => {
                self.keys.push(key.to_vec());
                self.hashes.push(h);
                self.map.insert(key.to_vec(), self.keys.len() - 1);
                (self.keys.len() - 1, true)
            }
        }
    }
}

#[inline]
fn fnv1a(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[derive(Default)]
struct LocalProxy {
    index: HashMap<Vec<u8>, usize>,
    values: Vec<Vec<u8>>,
    counts: Vec<Vec<u64>>,
}

struct Chunk {
    lines: usize,
    rows: u64,
    groups: GroupIndex,
    stats: Vec<GroupStats>,
    proxies: Vec<LocalProxy>,
}

/// Parse one chunk; on error, return the 1-based line number within the chunk.
fn parse_chunk(
    data: &[u8],
    plan: &Plan<'_>,
    report: &dyn Fn(u64),
) -> Result<Chunk, (usize, FairnessError)> {
    let mut out = Chunk {
        lines: 0,
        rows: 0,
        groups: GroupIndex::default(),
        stats: Vec::new(),
        proxies: plan.proxies.iter().map(|_| LocalProxy::default()).collect(),
    };
    let need = plan.last_needed();
    let mut spans: Vec<Span> = Vec::with_capacity(need + 1);
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    let mut reported = 0usize;
    while pos < data.len() {
        let end = memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
        let line = strip_cr(&data[pos..end]);
        pos = end + 1;
        out.lines += 1;
        let ln = out.lines;
        if pos - reported > (4 << 20) {
            report((pos.min(data.len()) - reported) as u64);
            reported = pos.min(data.len());
        }
        if line.first().is_none_or(u8::is_ascii_whitespace)
            && line.iter().all(u8::is_ascii_whitespace)
        {
            continue;
        }
        split_line(line, plan.delimiter, need, &mut spans)
            .map_err(|()| (ln, FairnessError::UnterminatedQuote { line: 0 }))?;
        if spans.len() <= need {
            return Err((
                ln,
                FairnessError::ShortRow {
                    line: 0,
                    expected: need + 1,
                    found: spans.len(),
                },
            ));
        }
        let f = |i: usize| field(line, spans[i], plan.trim);

        let (gi, new) = if let [g] = plan.group[..] {
            out.groups.get_or_insert(&f(g))
        } else {
            key.clear();
            for (k, &g) in plan.group.iter().enumerate() {
                if k > 0 {
                    key.push(KEY_SEP);
                }
                key.extend_from_slice(&f(g));
            }
            out.groups.get_or_insert(&key)
        };
        if new {
            out.stats.push(GroupStats::new(plan.bins));
        }

        let col = |i: usize| plan.names[i].clone();
        let selected = binary(&f(plan.prediction), plan.positive)
            .ok_or_else(|| (ln, not_binary(col(plan.prediction), &f(plan.prediction))))?;
        let label = match plan.label {
            None => LABEL_NONE,
            Some(c) => match binary(&f(c), plan.positive) {
                Some(true) => LABEL_POS,
                Some(false) => LABEL_NEG,
                None => return Err((ln, not_binary(col(c), &f(c)))),
            },
        };
        let w = match plan.weight {
            None => 1.0,
            Some(c) => number(&f(c))
                .filter(|w| *w >= 0.0)
                .ok_or_else(|| (ln, bad_number(col(c), &f(c), "weight (number >= 0)")))?,
        };
        let s = &mut out.stats[gi];
        s.counts.add(selected, label, w);
        if let Some(c) = plan.score {
            let v = number(&f(c)).ok_or_else(|| (ln, bad_number(col(c), &f(c), "score")))?;
            s.score.add(v, label, w);
        }
        if let Some(c) = plan.rank {
            let v = f(c);
            if !v.is_empty() {
                let r = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|x| x.parse::<u32>().ok())
                    .filter(|&r| r >= 1)
                    .ok_or_else(|| (ln, bad_number(col(c), &v, "rank (integer >= 1)")))?;
                s.exposure.add(r, w);
            }
        }
        for (p, &c) in out.proxies.iter_mut().zip(&plan.proxies) {
            let v = f(c);
            let vi = match p.index.get(v.as_ref()) {
                Some(&i) => i,
                None => {
                    p.index.insert(v.to_vec(), p.values.len());
                    p.values.push(v.to_vec());
                    p.counts.push(Vec::new());
                    p.values.len() - 1
                }
            };
            let row = &mut p.counts[vi];
            if row.len() <= gi {
                row.resize(gi + 1, 0);
            }
            row[gi] += 1;
        }
        out.rows += 1;
    }
    report((data.len() - reported.min(data.len())) as u64);
    Ok(out)
}

fn not_binary(column: String, v: &[u8]) -> FairnessError {
    FairnessError::NotBinary {
        column,
        line: 0,
        value: String::from_utf8_lossy(v).into_owned(),
    }
}

fn bad_number(column: String, v: &[u8], expected: &'static str) -> FairnessError {
    FairnessError::BadNumber {
        column,
        line: 0,
        value: String::from_utf8_lossy(v).into_owned(),
        expected,
    }
}

/// Put the file's line number into an error raised inside a chunk.
fn with_line(mut e: FairnessError, n: usize) -> FairnessError {
    match &mut e {
        FairnessError::ShortRow { line, .. }
        | FairnessError::NotBinary { line, .. }
        | FairnessError::BadNumber { line, .. }
        | FairnessError::UnterminatedQuote { line } => *line = n,
        _ => {}
    }
    e
}

/// Start and end of a field within its line, and whether it needs unquoting.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
}

/// Split one line into field spans, stopping after field `need` (fields beyond are not needed).
fn split_line(line: &[u8], delim: u8, need: usize, out: &mut Vec<Span>) -> Result<(), ()> {
    out.clear();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            // Quoted field: runs to the closing quote not followed by another quote.
            let start = i;
            i += 1;
            loop {
                match line.get(i) {
                    None => return Err(()),
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            // Anything between the closing quote and the delimiter is kept with the field.
            while i < line.len() && line[i] != delim {
                i += 1;
            }
            out.push(Span {
                start,
                end: i,
                quoted: true,
            });
        } else {
            let start = i;
            i += memchr::memchr(delim, &line[i..]).unwrap_or(line.len() - i);
            out.push(Span {
                start,
                end: i,
                quoted: false,
            });
        }
        if i >= line.len() || out.len() > need {
            return Ok(());
        }
        i += 1; // skip the delimiter
        if i == line.len() {
            // A trailing delimiter ends with an empty field.
            out.push(Span {
                start: i,
                end: i,
                quoted: false,
            });
            return Ok(());
        }
    }
}

/// The field's value: trimmed, quotes removed, doubled quotes undoubled.
#[inline]
fn field(line: &[u8], s: Span, trim: bool) -> Cow<'_, [u8]> {
    let mut v = &line[s.start..s.end];
    if trim {
        v = v.trim_ascii();
    }
    if s.quoted || v.first() == Some(&b'"') {
        let t = v.trim_ascii();
        if t.len() >= 2 && t[0] == b'"' && t[t.len() - 1] == b'"' {
            let inner = &t[1..t.len() - 1];
            if inner.windows(2).any(|w| w == b"\"\"") {
                let mut o = Vec::with_capacity(inner.len());
                let mut j = 0;
                while j < inner.len() {
                    o.push(inner[j]);
                    j += if inner[j] == b'"' && inner.get(j + 1) == Some(&b'"') {
                        2
                    } else {
                        1
                    };
                }
                return Cow::Owned(o);
            }
            return Cow::Borrowed(inner);
        }
    }
    Cow::Borrowed(v)
}

/// A binary value, or `None` if the value is not recognisably binary.
#[inline]
fn binary(v: &[u8], positive: Option<&[u8]>) -> Option<bool> {
    if let Some(p) = positive {
        return Some(v == p);
    }
    match v {
        b"1" => Some(true),
        b"0" => Some(false),
        _ => {
            let l = v.to_ascii_lowercase();
            match l.as_slice() {
                b"true" | b"yes" | b"y" | b"t" | b"1.0" => Some(true),
                b"false" | b"no" | b"n" | b"f" | b"0.0" => Some(false),
                _ => None,
            }
        }
    }
}

/// A finite number. Plain decimals (the common case) take a fast path; anything else goes to the
/// standard library parser.
#[inline]
fn number(v: &[u8]) -> Option<f64> {
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let mut mantissa: u64 = 0;
    let mut scale = 0i32;
    let mut seen_dot = false;
    let mut n_digits = 0;
    let mut fast = !digits.is_empty() && digits.len() <= 18;
    if fast {
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    n_digits += 1;
                    if seen_dot {
                        scale += 1;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => {
                    fast = false;
                    break;
                }
            }
        }
    }
    if fast && n_digits > 0 {
        // Exact for up to 15 significant digits over an exact power of ten.
        const POW: [f64; 19] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18,
        ];
        let x = mantissa as f64 / POW[scale as usize];
        return Some(if neg { -x } else { x });
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn detect_delimiter(first: &[u8]) -> u8 {
    [b',', b'\t', b';', b'|']
        .into_iter()
        .max_by_key(|&d| (first.iter().filter(|&&b| b == d).count(), d == b','))
        .unwrap_or(b',')
}

/// Split at line boundaries into about `n` pieces of similar size.
fn split_chunks(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..=n {
        if start >= data.len() {
            break;
        }
        let mut end = if i == n {
            data.len()
        } else {
            data.len() * i / n
        };
        if end < start {
            end = start;
        }
        if end < data.len() {
            end = memchr(b'\n', &data[end..]).map_or(data.len(), |j| end + j + 1);
        }
        out.push(&data[start..end]);
        start = end;
    }
    out
}

/// Read a reference distribution: a CSV with one column per attribute (named like the audit's
/// group attributes) plus a `share`, `count` or `population` column.
pub fn read_reference(path: &Path) -> Result<ReferenceDistribution, FairnessError> {
    let bytes = read_file(path, &|_| {})?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(FairnessError::Empty {
            what: path.display().to_string(),
        });
    };
    let delim = detect_delimiter(header.as_bytes()) as char;
    let names: Vec<String> = header
        .split(delim)
        .map(|s| s.trim().trim_matches('"').to_owned())
        .collect();
    let Some(value_col) = names.iter().position(|n| {
        matches!(
            n.to_ascii_lowercase().as_str(),
            "share" | "count" | "population"
        )
    }) else {
        return Err(FairnessError::MissingColumn {
            column: "share".into(),
            available: names.join(", "),
        });
    };
    let attributes: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != value_col)
        .map(|(_, n)| n.clone())
        .collect();
    let mut groups = Vec::new();
    for (i, l) in lines {
        let fields: Vec<&str> = l.split(delim).map(|s| s.trim().trim_matches('"')).collect();
        if fields.len() < names.len() {
            return Err(FairnessError::ShortRow {
                line: i + 1,
                expected: names.len(),
                found: fields.len(),
            });
        }
        let v = number(fields[value_col].as_bytes()).ok_or_else(|| FairnessError::BadNumber {
            column: names[value_col].clone(),
            line: i + 1,
            value: fields[value_col].to_owned(),
            expected: "share (number >= 0)",
        })?;
        let key = (0..names.len())
            .filter(|&j| j != value_col)
            .map(|j| fields[j].to_owned())
            .collect();
        groups.push((key, v));
    }
    ReferenceDistribution::new(attributes, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields() {
        let line = br#"a,"b,c","d""e",,f"#;
        let mut spans = Vec::new();
        split_line(line, b',', usize::MAX, &mut spans).unwrap();
        let v: Vec<Vec<u8>> = spans
            .iter()
            .map(|s| field(line, *s, true).into_owned())
            .collect();
        assert_eq!(
            v,
            vec![
                b"a".to_vec(),
                b"b,c".to_vec(),
                b"d\"e".to_vec(),
                vec![],
                b"f".to_vec()
            ]
        );
        assert!(split_line(br#"a,"b"#, b',', usize::MAX, &mut spans).is_err());
        split_line(b"a,", b',', usize::MAX, &mut spans).unwrap();
        assert_eq!(spans.len(), 2);
    }

    #[test]
    fn parses_numbers_and_binaries() {
        assert_eq!(number(b"0.25"), Some(0.25));
        assert_eq!(number(b"-3"), Some(-3.0));
        assert_eq!(number(b"1e-3"), Some(0.001));
        assert_eq!(number(b"nan"), None);
        assert_eq!(number(b""), None);
        assert_eq!(number(b"."), None);
        assert_eq!(binary(b"TRUE", None), Some(true));
        assert_eq!(binary(b"2", None), None);
        assert_eq!(binary(b">50K", Some(b">50K")), Some(true));
        assert_eq!(binary(b"<=50K", Some(b">50K")), Some(false));
    }

    #[test]
    fn chunks_end_at_newlines() {
        let data = b"aa\nbbb\nc\ndddd\n";
        for n in 1..6 {
            let c = split_chunks(data, n);
            assert_eq!(c.concat(), data.to_vec());
            assert!(c.iter().all(|x| x.ends_with(b"\n")));
        }
    }
}
