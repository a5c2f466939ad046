//! `candor import events FILE`: bulk import of historical events from CSV or JSON Lines.
//!
//! Every row becomes a Segment-spec message and goes through `App::ingest`, the same inventory,
//! consent gate, pseudonymization and encryption path as `/v1/batch`, in batches.
//!
//! Invariants:
//! - A row's `messageId` is derived from the input's file name and the row's line number, so
//!   importing the same file again stores nothing twice (the store deduplicates by id).
//! - The checkpoint (`FILE.candor-import.json`, or `--checkpoint`) is rewritten atomically
//!   (temp file + rename) only after a batch has been committed, and holds the byte offset of
//!   the next row and the running totals. A batch committed but not yet checkpointed (a crash
//!   in between) is sent again on `--resume` and counted as duplicates, never stored twice.
//! - Bad input never panics: unreadable rows are counted as rejected with their line number.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use candor_app::ingest::{MAX_BATCH_MESSAGES, RawMessage};
use candor_app::{App, Config};
use candor_domain::inventory::Inventory;
use candor_domain::{LegalBasis, Purpose, PurposeDraft};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import historical events from a CSV or JSON Lines file through the consent gate.
    Events(Box<EventsArgs>),
    /// Upsert the shop's items from CSV, JSON Lines, a Shopify product export or a Google
    /// Merchant Center feed, validated as the catalog API validates them.
    Catalog(Box<crate::table_import::CatalogArgs>),
    /// Import existing consent records (a CMP's export) with their times and proof.
    Consents(Box<crate::table_import::ConsentsArgs>),
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The input: `.csv` (a header row names the columns) or `.jsonl`/`.ndjson` (one
    /// Segment-spec message per line).
    pub file: PathBuf,
    /// Input format; default: from the file extension.
    #[arg(long, value_parser = ["csv", "jsonl"])]
    pub format: Option<String>,
    /// Message type of every row (JSONL: only where a line has no `type`).
    #[arg(long = "type", default_value = "track", value_parser = ["track", "identify", "page", "screen"])]
    pub kind: String,
    /// Constant event name (track) or page/screen name.
    #[arg(long, conflicts_with = "event_column")]
    pub event: Option<String>,
    /// Column holding the event name (track) or page/screen name.
    #[arg(long)]
    pub event_column: Option<String>,
    /// Column holding the user id.
    #[arg(long)]
    pub user_id_column: Option<String>,
    /// Column holding the anonymous id.
    #[arg(long)]
    pub anonymous_id_column: Option<String>,
    /// Column holding when the event happened (default: the time of the import).
    #[arg(long)]
    pub timestamp_column: Option<String>,
    /// Format of the timestamp column: `rfc3339` (default), `unix`, `unix_ms`, or a `time`
    /// format description such as `[year]-[month]-[day] [hour]:[minute]:[second]`. Without an
    /// `[offset_hour]` component times are read as UTC.
    #[arg(long, default_value = "rfc3339")]
    pub timestamp_format: String,
    /// `NAME=COLUMN` (repeatable): a property from a column; numbers are parsed when numeric.
    /// Suffix `:string` or `:number` to force the type (`sku=StockCode:string`).
    #[arg(long = "property", value_name = "NAME=COLUMN")]
    pub properties: Vec<String>,
    /// `NAME=COLUMN` (repeatable): a trait from a column (identify).
    #[arg(long = "trait", value_name = "NAME=COLUMN")]
    pub traits: Vec<String>,
    /// Keep only rows matching (repeatable, all must hold): `COL>N`, `COL>=N`, `COL<N`,
    /// `COL<=N` (numeric), `COL=TEXT`, `COL!=TEXT` (`COL!=` means "not empty"), `COL^PREFIX`.
    #[arg(long = "where", value_name = "CONDITION")]
    pub filters: Vec<String>,
    /// Drop rows matching (repeatable), same syntax: `--where-not 'InvoiceNo^C'`.
    #[arg(long = "where-not", value_name = "CONDITION")]
    pub filters_not: Vec<String>,
    /// CSV field delimiter.
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// Messages per `App::ingest` call (one atomic store write each), at most 2500.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Stop after reading this many rows in this run (resume later with `--resume`).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Continue from the checkpoint of an unfinished import.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Ignore any checkpoint and import from the first row (already stored rows are counted as
    /// duplicates, not stored twice).
    #[arg(long)]
    pub restart: bool,
    /// Checkpoint file (default: `FILE.candor-import.json` beside the input).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Declare these purposes first (a JSON array of purpose drafts, as for
    /// `POST /v1/admin/purposes`); existing ones are revised when they differ.
    #[arg(long)]
    pub purposes: Option<PathBuf>,
    /// Install this tracking plan first (as for `PUT /v1/admin/inventory`).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(config: Config, cmd: ImportCommand) -> Result<std::process::ExitCode> {
    match cmd {
        ImportCommand::Events(args) => events(config, *args).await,
        ImportCommand::Catalog(args) => crate::table_import::catalog(config, *args).await,
        ImportCommand::Consents(args) => crate::table_import::consents(config, *args).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Totals and the checkpoint

/// One rejection reason: how often, the first line numbers, and the first message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReasonStat {
    pub count: u64,
    pub first_lines: Vec<u64>,
    pub example: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub rows_read: u64,
    pub filtered_out: u64,
    pub stored: u64,
    pub without_consent: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub properties_dropped: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, ReasonStat>,
}

const EXAMPLE_LINES: usize = 5;

impl Totals {
    fn reject(&mut self, code: &str, line: u64, message: &str) {
        self.rejected += 1;
        let r = self.rejected_by_reason.entry(code.to_owned()).or_default();
        r.count += 1;
        if r.first_lines.len() < EXAMPLE_LINES {
            r.first_lines.push(line);
        }
        if r.example.is_empty() {
            r.example = message.chars().take(300).collect();
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    /// The input as given, for people reading the file.
    input: String,
    /// Size and a digest of the first 64 KiB: resuming on another file is refused.
    input_len: u64,
    input_head_sha256: String,
    /// Digest of the options that shape messages: resuming with other options is refused.
    options_sha256: String,
    /// Where the next row starts.
    offset: u64,
    line: u64,
    record: u64,
    finished: bool,
    totals: Totals,
}

fn checkpoint_path(args: &EventsArgs) -> PathBuf {
    args.checkpoint.clone().unwrap_or_else(|| {
        let mut s = args.file.as_os_str().to_owned();
        s.push(".candor-import.json");
        PathBuf::from(s)
    })
}

fn write_checkpoint(path: &Path, c: &Checkpoint) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(c)?;
    std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn head_digest(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    let mut buf = Vec::with_capacity(64 * 1024);
    (&mut f).take(64 * 1024).read_to_end(&mut buf)?;
    Ok((len, hex::encode(Sha256::digest(&buf))))
}

fn options_digest(args: &EventsArgs) -> String {
    let o = json!({
        "format": args.format, "type": args.kind, "event": args.event,
        "event_column": args.event_column, "user_id_column": args.user_id_column,
        "anonymous_id_column": args.anonymous_id_column,
        "timestamp_column": args.timestamp_column, "timestamp_format": args.timestamp_format,
        "properties": args.properties, "traits": args.traits, "where": args.filters,
        "where_not": args.filters_not, "delimiter": args.delimiter.to_string(),
    });
    hex::encode(Sha256::digest(o.to_string().as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Row filters

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    Prefix,
}

#[derive(Debug, Clone)]
struct Filter {
    column: usize,
    op: Op,
    value: String,
    number: Option<f64>,
    negate: bool,
}

fn parse_condition(s: &str) -> Result<(String, Op, String)> {
    let at = s.find(['>', '<', '=', '!', '^']).with_context(|| {
        format!("`{s}`: expected COLUMN, an operator (> >= < <= = != ^) and a value")
    })?;
    let (col, rest) = s.split_at(at);
    let (op, value) = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        ("^", Op::Prefix),
    ]
    .iter()
    .find_map(|(t, op)| rest.strip_prefix(t).map(|v| (*op, v)))
    .with_context(|| format!("`{s}`: unknown operator"))?;
    let col = col.trim();
    ensure!(!col.is_empty(), "`{s}`: no column name before the operator");
    Ok((col.to_owned(), op, value.to_owned()))
}

impl Filter {
    fn matches(&self, cell: &str) -> bool {
        let hit = match self.op {
            Op::Eq => cell == self.value,
            Op::Ne => cell != self.value,
            Op::Prefix => cell.starts_with(&self.value),
            op => match (cell.trim().parse::<f64>(), self.number) {
                (Ok(c), Some(v)) => match op {
                    Op::Gt => c > v,
                    Op::Ge => c >= v,
                    Op::Lt => c < v,
                    Op::Le => c <= v,
                    _ => unreachable!("string operators handled above"),
                },
                _ => false,
            },
        };
        hit != self.negate
    }
}

// ---------------------------------------------------------------------------------------------
// Column mapping (CSV)

#[derive(Debug, Clone, Copy)]
enum ValueType {
    Auto,
    String,
    Number,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    column: usize,
    /// As the header names it, for messages.
    column_name: String,
    ty: ValueType,
}

pub(crate) enum TimeFormat {
    Rfc3339,
    Unix,
    UnixMs,
    Offset(Vec<time::format_description::OwnedFormatItem>),
    Primitive(Vec<time::format_description::OwnedFormatItem>),
    Date(Vec<time::format_description::OwnedFormatItem>),
}

impl TimeFormat {
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "rfc3339" | "RFC3339" | "iso8601" => TimeFormat::Rfc3339,
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            f => {
                let items = vec![
                    time::format_description::parse_owned::<2>(f)
                        .with_context(|| format!("--timestamp-format `{f}`"))?,
                ];
                if f.contains("[offset_hour") {
                    TimeFormat::Offset(items)
                } else if f.contains("[hour") {
                    TimeFormat::Primitive(items)
                } else {
                    TimeFormat::Date(items)
                }
            }
        })
    }

    /// The cell as an RFC 3339 UTC time, or why not.
    pub(crate) fn to_rfc3339(&self, cell: &str) -> std::result::Result<String, String> {
        use time::format_description::well_known::Rfc3339;
        use time::{Date, OffsetDateTime, PrimitiveDateTime};
        let cell = cell.trim();
        let t = match self {
            TimeFormat::Rfc3339 => OffsetDateTime::parse(cell, &Rfc3339).map_err(|e| e.to_string()),
            TimeFormat::Unix | TimeFormat::UnixMs => {
                let n: i128 = cell.parse().map_err(|_| "not an integer".to_owned())?;
                let nanos = if matches!(self, TimeFormat::Unix) {
                    n * 1_000_000_000
                } else {
                    n * 1_000_000
                };
                OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| e.to_string())
            }
            TimeFormat::Offset(f) => OffsetDateTime::parse(cell, f).map_err(|e| e.to_string()),
            TimeFormat::Primitive(f) => PrimitiveDateTime::parse(cell, f)
                .map(PrimitiveDateTime::assume_utc)
                .map_err(|e| e.to_string()),
            TimeFormat::Date(f) => Date::parse(cell, f)
                .map(|d| d.midnight().assume_utc())
                .map_err(|e| e.to_string()),
        }
        .map_err(|e| format!("`{cell}`: {e}"))?;
        t.to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(|e| e.to_string())
    }
}

struct CsvMapping {
    kind: String,
    event: Option<String>,
    event_column: Option<usize>,
    user_id: Option<usize>,
    anonymous_id: Option<usize>,
    timestamp: Option<(usize, TimeFormat)>,
    properties: Vec<Field>,
    traits: Vec<Field>,
    filters: Vec<Filter>,
}

fn column(headers: &[String], name: &str, flag: &str) -> Result<usize> {
    headers.iter().position(|h| h == name).with_context(|| {
        format!(
            "unknown column `{name}` in {flag}; the file has: {}",
            headers.join(", ")
        )
    })
}

fn field(headers: &[String], spec: &str, flag: &str) -> Result<Field> {
    let (name, col) = spec
        .split_once('=')
        .with_context(|| format!("{flag} `{spec}`: expected NAME=COLUMN"))?;
    ensure!(!name.is_empty(), "{flag} `{spec}`: empty name");
    let (col, ty) = match col.rsplit_once(':') {
        Some((c, "string")) => (c, ValueType::String),
        Some((c, "number")) => (c, ValueType::Number),
        _ => (col, ValueType::Auto),
    };
    Ok(Field {
        name: name.to_owned(),
        column: column(headers, col, &format!("{flag} {spec}"))?,
        column_name: col.to_owned(),
        ty,
    })
}

impl CsvMapping {
    fn new(args: &EventsArgs, headers: &[String]) -> Result<Self> {
        let opt = |c: &Option<String>, flag: &str| -> Result<Option<usize>> {
            c.as_deref().map(|c| column(headers, c, flag)).transpose()
        };
        let mut filters = Vec::new();
        for (list, negate, flag) in [
            (&args.filters, false, "--where"),
            (&args.filters_not, true, "--where-not"),
        ] {
            for f in list {
                let (col, op, value) = parse_condition(f).with_context(|| flag.to_owned())?;
                let number = value.trim().parse::<f64>().ok();
                if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && number.is_none() {
                    bail!("{flag} `{f}`: `{value}` is not a number");
                }
                filters.push(Filter {
                    column: column(headers, &col, &format!("{flag} {f}"))?,
                    op,
                    value,
                    number,
                    negate,
                });
            }
        }
        if args.kind == "track" && args.event.is_none() && args.event_column.is_none() {
            bail!("track events need --event NAME or --event-column COLUMN");
        }
        if args.user_id_column.is_none() && args.anonymous_id_column.is_none() {
            bail!("name the subject: --user-id-column COLUMN and/or --anonymous-id-column COLUMN");
        }
        Ok(CsvMapping {
            kind: args.kind.clone(),
            event: args.event.clone(),
            event_column: opt(&args.event_column, "--event-column")?,
            user_id: opt(&args.user_id_column, "--user-id-column")?,
            anonymous_id: opt(&args.anonymous_id_column, "--anonymous-id-column")?,
            timestamp: match &args.timestamp_column {
                Some(c) => Some((
                    column(headers, c, "--timestamp-column")?,
                    TimeFormat::parse(&args.timestamp_format)?,
                )),
                None => None,
            },
            properties: args
                .properties
                .iter()
                .map(|p| field(headers, p, "--property"))
                .collect::<Result<_>>()?,
            traits: args
                .traits
                .iter()
                .map(|p| field(headers, p, "--trait"))
                .collect::<Result<_>>()?,
            filters,
        })
    }

    /// One CSV record as a message, `None` when filtered out, or a local rejection.
    fn message(
        &self,
        record: &csv::ByteRecord,
        width: usize,
        message_id: String,
    ) -> std::result::Result<Option<Value>, (&'static str, String)> {
        if record.len() != width {
            return Err((
                "wrong_field_count",
                format!("{} fields; the header has {width}", record.len()),
            ));
        }
        let cell = |i: usize| -> std::result::Result<&str, (&'static str, String)> {
            std::str::from_utf8(&record[i])
                .map_err(|e| ("invalid_utf8", format!("field {}: {e}", i + 1)))
        };
        for f in &self.filters {
            if !f.matches(cell(f.column)?) {
                return Ok(None);
            }
        }
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        m.insert("messageId".into(), Value::String(message_id));
        let name = match (self.event_column, &self.event) {
            (Some(c), _) => Some(cell(c)?.to_owned()),
            (None, Some(e)) => Some(e.clone()),
            (None, None) => None,
        };
        if let Some(name) = name {
            let key = if self.kind == "track" {
                "event"
            } else {
                "name"
            };
            m.insert(key.into(), Value::String(name));
        }
        for (col, key) in [(self.user_id, "userId"), (self.anonymous_id, "anonymousId")] {
            if let Some(c) = col {
                let v = cell(c)?.trim();
                if !v.is_empty() {
                    m.insert(key.into(), Value::String(v.to_owned()));
                }
            }
        }
        if let Some((c, format)) = &self.timestamp {
            let t = format
                .to_rfc3339(cell(*c)?)
                .map_err(|e| ("invalid_timestamp", e))?;
            m.insert("timestamp".into(), Value::String(t));
        }
        for (fields, key, what) in [
            (&self.properties, "properties", "property"),
            (&self.traits, "traits", "trait"),
        ] {
            if fields.is_empty() {
                continue;
            }
            let mut o = Map::new();
            for f in fields {
                let raw = cell(f.column)?;
                if raw.is_empty() {
                    continue;
                }
                let v = typed(raw, f.ty).map_err(|e| {
                    (
                        "invalid_number",
                        format!("{what} `{}` (column `{}`): {e}", f.name, f.column_name),
                    )
                })?;
                o.insert(f.name.clone(), v);
            }
            m.insert(key.into(), Value::Object(o));
        }
        Ok(Some(Value::Object(m)))
    }
}

/// A cell as JSON: text, or a number when it reads as one (`Auto`); a forced `Number` that
/// does not read as one is an error, never silently text.
fn typed(raw: &str, ty: ValueType) -> std::result::Result<Value, String> {
    let number = || -> Option<Value> {
        let t = raw.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Value::from(i));
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
    };
    match ty {
        ValueType::String => Ok(Value::String(raw.to_owned())),
        ValueType::Auto => Ok(number().unwrap_or_else(|| Value::String(raw.to_owned()))),
        ValueType::Number => number().ok_or_else(|| format!("`{raw}` is not a number")),
    }
}

// ---------------------------------------------------------------------------------------------
// Sources

/// What one input row turned into.
enum RowOutcome {
    Filtered,
    Rejected(&'static str, String),
    Message(RawMessage),
}

struct Row {
    line: u64,
    outcome: RowOutcome,
}

struct Position {
    offset: u64,
    line: u64,
    record: u64,
}

enum Source {
    Csv {
        reader: csv::Reader<File>,
        width: usize,
        mapping: Box<CsvMapping>,
        record: csv::ByteRecord,
    },
    Jsonl {
        reader: BufReader<File>,
        kind: String,
        offset: u64,
        line: u64,
        buf: Vec<u8>,
    },
}

impl Source {
    fn open(args: &EventsArgs, format: &str, start: Option<&Position>) -> Result<Self> {
        let path = &args.file;
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        if format == "jsonl" {
            for (flag, given) in [
                ("--event", args.event.is_some()),
                ("--event-column", args.event_column.is_some()),
                ("--user-id-column", args.user_id_column.is_some()),
                ("--anonymous-id-column", args.anonymous_id_column.is_some()),
                ("--timestamp-column", args.timestamp_column.is_some()),
                ("--property", !args.properties.is_empty()),
                ("--trait", !args.traits.is_empty()),
                ("--where", !args.filters.is_empty()),
                ("--where-not", !args.filters_not.is_empty()),
            ] {
                ensure!(
                    !given,
                    "{flag} applies to CSV input; JSON Lines rows are already messages"
                );
            }
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let (offset, line) = match start {
                Some(p) => {
                    reader.seek(SeekFrom::Start(p.offset))?;
                    (p.offset, p.line)
                }
                None => (0, 1),
            };
            return Ok(Source::Jsonl {
                reader,
                kind: args.kind.clone(),
                offset,
                line,
                buf: Vec::new(),
            });
        }
        ensure!(
            args.delimiter.is_ascii(),
            "--delimiter must be one ASCII character"
        );
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(args.delimiter as u8)
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 20)
            .from_reader(file);
        let headers = reader
            .byte_headers()
            .with_context(|| format!("reading the header row of {}", path.display()))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                std::str::from_utf8(h)
                    .map(|s| s.trim().trim_start_matches('\u{feff}').to_owned())
                    .with_context(|| format!("header column {} is not UTF-8", i + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        ensure!(
            !headers.is_empty() && headers.iter().any(|h| !h.is_empty()),
            "{} has no header row",
            path.display()
        );
        let mapping = CsvMapping::new(args, &headers)?;
        if let Some(p) = start {
            let mut pos = csv::Position::new();
            pos.set_byte(p.offset).set_line(p.line).set_record(p.record);
            reader.seek(pos)?;
        }
        Ok(Source::Csv {
            reader,
            width: headers.len(),
            mapping: Box::new(mapping),
            record: csv::ByteRecord::new(),
        })
    }

    fn position(&self) -> Position {
        match self {
            Source::Csv { reader, .. } => {
                let p = reader.position();
                Position {
                    offset: p.byte(),
                    line: p.line(),
                    record: p.record(),
                }
            }
            Source::Jsonl { offset, line, .. } => Position {
                offset: *offset,
                line: *line,
                record: 0,
            },
        }
    }

    /// The next row, or `None` at the end of the input.
    fn next(&mut self, message_id: &dyn Fn(u64) -> String) -> Result<Option<Row>> {
        match self {
            Source::Csv {
                reader,
                width,
                mapping,
                record,
            } => loop {
                if !reader.read_byte_record(record)? {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                // A blank line is no row.
                if record.len() == 1 && record[0].is_empty() {
                    continue;
                }
                let outcome = match mapping.message(record, *width, message_id(line)) {
                    Ok(None) => RowOutcome::Filtered,
                    Ok(Some(v)) => {
                        let bytes = record.as_slice().len();
                        RowOutcome::Message(RawMessage { json: Ok(v), bytes })
                    }
                    Err((code, msg)) => RowOutcome::Rejected(code, msg),
                };
                return Ok(Some(Row { line, outcome }));
            },
            Source::Jsonl {
                reader,
                kind,
                offset,
                line,
                buf,
            } => loop {
                buf.clear();
                let n = reader.read_until(b'\n', buf)?;
                if n == 0 {
                    return Ok(None);
                }
                let this = *line;
                *offset += n as u64;
                *line += 1;
                let text = match std::str::from_utf8(buf) {
                    Ok(t) => t.trim(),
                    Err(e) => {
                        return Ok(Some(Row {
                            line: this,
                            outcome: RowOutcome::Rejected("invalid_utf8", e.to_string()),
                        }));
                    }
                };
                if text.is_empty() {
                    continue;
                }
                let json = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(mut m)) => {
                        m.entry("type")
                            .or_insert_with(|| Value::String(kind.clone()));
                        m.entry("messageId")
                            .or_insert_with(|| Value::String(message_id(this)));
                        Ok(Value::Object(m))
                    }
                    Ok(v) => Ok(v),
                    Err(e) => Err(format!("not JSON: {e}")),
                };
                return Ok(Some(Row {
                    line: this,
                    outcome: RowOutcome::Message(RawMessage {
                        json,
                        bytes: text.len(),
                    }),
                }));
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setup files

/// What `--purposes` and `--inventory` ask for, checked against the store and each other
/// before any of it is applied, so a bad file leaves the store as it was.
pub(crate) struct Setup {
    /// Drafts to declare (`None`) or revise (`Some(current)`), in file order.
    purposes: Vec<(PurposeDraft, Option<Purpose>)>,
    inventory: Option<(Inventory, PathBuf)>,
}

impl Setup {
    pub(crate) fn check(
        app: &App,
        purposes: Option<&Path>,
        inventory: Option<&Path>,
    ) -> Result<Setup> {
        let mut after = (*app.purposes()).clone();
        let mut planned = Vec::new();
        if let Some(path) = purposes {
            let body = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let drafts: Vec<PurposeDraft> = serde_json::from_str(&body).with_context(|| {
                format!("{}: expected a JSON array of purposes", path.display())
            })?;
            for d in drafts {
                let at = || format!("{}: purpose `{}`", path.display(), d.id);
                let wanted = d
                    .validate()
                    .map_err(candor_app::AppError::from)
                    .with_context(at)?;
                match after.get(&wanted.id).cloned() {
                    None => {
                        after.insert(wanted.id.clone(), wanted);
                        planned.push((d, None));
                    }
                    Some(p)
                        if Purpose {
                            version: p.version,
                            ..wanted
                        } == p => {}
                    Some(p) => {
                        let (next, _) = p
                            .revise(&d)
                            .map_err(candor_app::AppError::from)
                            .with_context(at)?;
                        after.insert(next.id.clone(), next);
                        planned.push((d, Some(p)));
                    }
                }
            }
        }
        let inventory = match inventory {
            Some(path) => {
                let body = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let inv: Inventory = serde_json::from_str(&body)
                    .with_context(|| format!("{}: not a tracking plan", path.display()))?;
                inv.validate(&after)
                    .map_err(candor_app::AppError::from)
                    .with_context(|| {
                        format!(
                            "{}: the tracking plan does not fit the purposes{}",
                            path.display(),
                            if purposes.is_some() {
                                " (as the purposes file leaves them)"
                            } else {
                                ""
                            }
                        )
                    })?;
                (*app.inventory() != inv).then(|| (inv, path.to_owned()))
            }
            None => None,
        };
        Ok(Setup {
            purposes: planned,
            inventory,
        })
    }

    pub(crate) async fn apply(self, app: &App) -> Result<()> {
        for (d, current) in &self.purposes {
            let Some(current) = current else {
                app.create_purpose("cli-import", d).await?;
                eprintln!("declared purpose `{}`", d.id);
                continue;
            };
            let (next, material) = app.update_purpose("cli-import", &d.id, d).await?;
            let note = match (material, next.legal_basis) {
                (false, _) => String::new(),
                (true, LegalBasis::Consent) => format!(
                    " (material change, version {} to {}: consent must be asked again)",
                    current.version, next.version
                ),
                (true, basis) => format!(
                    " (material change, version {} to {}; legal basis {}, so no consent is asked)",
                    current.version,
                    next.version,
                    basis.as_str()
                ),
            };
            eprintln!("revised purpose `{}`{note}", d.id);
        }
        if let Some((inv, path)) = self.inventory {
            app.set_inventory("cli-import", inv)
                .await
                .with_context(|| format!("installing the tracking plan {}", path.display()))?;
            eprintln!("installed the tracking plan from {}", path.display());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The import

fn format_of(args: &EventsArgs) -> Result<String> {
    if let Some(f) = &args.format {
        return Ok(f.clone());
    }
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(match ext.as_str() {
        "csv" | "tsv" | "txt" => "csv".into(),
        "jsonl" | "ndjson" | "json" => "jsonl".into(),
        _ => bail!(
            "cannot tell the format of {} from its extension; pass --format csv|jsonl",
            args.file.display()
        ),
    })
}

async fn events(config: Config, args: EventsArgs) -> Result<std::process::ExitCode> {
    ensure!(
        (1..=MAX_BATCH_MESSAGES).contains(&args.batch_size),
        "--batch-size must be 1-{MAX_BATCH_MESSAGES}"
    );
    ensure!(args.file.is_file(), "{}: no such file", args.file.display());
    let format = format_of(&args)?;
    let (input_len, head) = head_digest(&args.file)?;
    let options = options_digest(&args);
    let cp_path = checkpoint_path(&args);

    let previous: Option<Checkpoint> = match std::fs::read_to_string(&cp_path) {
        Ok(s) => Some(serde_json::from_str(&s).with_context(|| {
            format!(
                "{} is not a checkpoint; remove it or pass --restart",
                cp_path.display()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", cp_path.display())),
    };
    let resume_from = match (&previous, args.resume, args.restart) {
        (_, _, true) => None,
        (None, true, _) => bail!(
            "--resume: no checkpoint at {}; start without --resume",
            cp_path.display()
        ),
        (Some(c), true, _) => {
            ensure!(
                c.input_len <= input_len && c.input_head_sha256 == head,
                "{} was written for a different file (or the file changed); pass --restart",
                cp_path.display()
            );
            ensure!(
                c.options_sha256 == options,
                "{} was written with different mapping options; repeat them or pass --restart",
                cp_path.display()
            );
            ensure!(
                !c.finished,
                "that import already finished; pass --restart to import again (stored rows are counted as duplicates)"
            );
            Some(c.clone())
        }
        (Some(c), false, false) if !c.finished => bail!(
            "an unfinished import of this file has a checkpoint at {} (line {}); pass --resume to continue it or --restart to start over",
            cp_path.display(),
            c.line
        ),
        _ => None,
    };

    // Check the mapping against the file before touching the store.
    let start = resume_from.as_ref().map(|c| Position {
        offset: c.offset,
        line: c.line,
        record: c.record,
    });
    let mut source = Source::open(&args, &format, start.as_ref())?;

    let app = App::open(config).await?;
    Setup::check(&app, args.purposes.as_deref(), args.inventory.as_deref())?
        .apply(&app)
        .await?;

    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_tag = hex::encode(&Sha256::digest(file_name.as_bytes())[..8]);
    let message_id = move |line: u64| format!("import-{file_tag}-{line}");

    let mut totals = resume_from
        .as_ref()
        .map(|c| c.totals.clone())
        .unwrap_or_default();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                eprintln!(
                    "\ninterrupt: finishing the current batch, then writing the checkpoint (Ctrl-C again to abort at once)"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }

    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(input_len)
    };
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} (eta {eta})",
    )?);
    bar.set_position(source.position().offset);

    let started = Instant::now();
    let mut read_this_run: u64 = 0;
    let mut limited = false;
    let finished;
    loop {
        let mut raws = Vec::with_capacity(args.batch_size);
        let mut lines = Vec::with_capacity(args.batch_size);
        let mut local = Totals::default();
        let mut end = false;
        while raws.len() < args.batch_size {
            if args.limit.is_some_and(|l| read_this_run >= l) {
                limited = true;
                break;
            }
            let Some(row) = source.next(&message_id)? else {
                end = true;
                break;
            };
            read_this_run += 1;
            local.rows_read += 1;
            match row.outcome {
                RowOutcome::Filtered => local.filtered_out += 1,
                RowOutcome::Rejected(code, msg) => local.reject(code, row.line, &msg),
                RowOutcome::Message(raw) => {
                    raws.push(raw);
                    lines.push(row.line);
                }
            }
        }
        if !raws.is_empty() {
            let report = app
                .ingest(raws, None)
                .await
                .context("storing a batch (the checkpoint still points before it)")?;
            // No background flusher runs in the CLI: write the tracking-plan counters now.
            app.flush_inventory_counts()
                .await
                .context("updating the tracking plan's counters")?;
            local.stored += report.stored as u64;
            local.without_consent += report.without_consent as u64;
            local.quarantined += report.quarantined as u64;
            local.duplicates += report.duplicates as u64;
            local.properties_dropped += report.properties_dropped as u64;
            for r in &report.rejected {
                let line = lines.get(r.index).copied().unwrap_or_default();
                local.reject(r.code.as_str(), line, &r.message);
            }
        }
        merge(&mut totals, local);
        let pos = source.position();
        write_checkpoint(
            &cp_path,
            &Checkpoint {
                input: args.file.display().to_string(),
                input_len,
                input_head_sha256: head.clone(),
                options_sha256: options.clone(),
                offset: pos.offset,
                line: pos.line,
                record: pos.record,
                finished: end,
                totals: totals.clone(),
            },
        )?;
        bar.set_position(pos.offset);
        let rate = read_this_run as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} rows, {rate:.0} rows/s, {} stored",
            totals.rows_read, totals.stored
        ));
        if end || limited || interrupted.load(Ordering::SeqCst) {
            finished = end;
            break;
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let status = if finished {
        "finished"
    } else if limited {
        "stopped at --limit"
    } else {
        "interrupted"
    };
    if args.json {
        println!(
            "{}",
            json!({"status": status, "rows_per_second": read_this_run as f64 / elapsed.max(1e-9), "totals": totals, "checkpoint": cp_path})
        );
    } else {
        print_summary(
            &args.file,
            status,
            &totals,
            read_this_run,
            elapsed,
            &cp_path,
        );
    }
    app.close().await;
    Ok(if finished || limited {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(130)
    })
}

fn merge(t: &mut Totals, l: Totals) {
    t.rows_read += l.rows_read;
    t.filtered_out += l.filtered_out;
    t.stored += l.stored;
    t.without_consent += l.without_consent;
    t.quarantined += l.quarantined;
    t.duplicates += l.duplicates;
    t.properties_dropped += l.properties_dropped;
    t.rejected += l.rejected;
    for (code, r) in l.rejected_by_reason {
        let e = t.rejected_by_reason.entry(code).or_default();
        e.count += r.count;
        for line in r.first_lines {
            if e.first_lines.len() < EXAMPLE_LINES {
                e.first_lines.push(line);
            }
        }
        if e.example.is_empty() {
            e.example = r.example;
        }
    }
}

fn print_summary(
    file: &Path,
    status: &str,
    t: &Totals,
    read_this_run: u64,
    elapsed: f64,
    checkpoint: &Path,
) {
    println!("import of {}: {status}", file.display());
    println!(
        "  this run             {read_this_run} rows in {elapsed:.1} s ({:.0} rows/s)",
        read_this_run as f64 / elapsed.max(1e-9)
    );
    for (label, n) in [
        ("rows read", t.rows_read),
        ("filtered out", t.filtered_out),
        ("stored", t.stored),
        ("without consent", t.without_consent),
        ("quarantined", t.quarantined),
        ("duplicates", t.duplicates),
        ("properties dropped", t.properties_dropped),
        ("rejected", t.rejected),
    ] {
        println!("  {label:<20} {n}");
    }
    for (code, r) in &t.rejected_by_reason {
        let lines: Vec<String> = r.first_lines.iter().map(u64::to_string).collect();
        println!(
            "    {code:<22} {:>8}  first at {} {}: {}",
            r.count,
            if lines.len() == 1 { "line" } else { "lines" },
            lines.join(", "),
            r.example
        );
    }
    if status != "finished" {
        println!(
            "  checkpoint           {} (continue with --resume)",
            checkpoint.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_match() {
        let f = |s: &str, negate| {
            let (_, op, value) = parse_condition(s).unwrap();
            Filter {
                column: 0,
                op,
                number: value.parse().ok(),
                value,
                negate,
            }
        };
        assert!(f("Quantity>0", false).matches("3"));
        assert!(!f("Quantity>0", false).matches("-1"));
        assert!(!f("Quantity>0", false).matches("abc"));
        assert!(f("Q>=2", false).matches("2"));
        assert!(f("InvoiceNo^C", true).matches("536365"));
        assert!(!f("InvoiceNo^C", true).matches("C536379"));
        assert!(f("CustomerID!=", false).matches("17850"));
        assert!(!f("CustomerID!=", false).matches(""));
        assert!(f("Country=France", false).matches("France"));
        assert!(parse_condition("Quantity").is_err());
        assert!(parse_condition(">0").is_err());
    }

    #[test]
    fn timestamps_in_several_formats() {
        let t = TimeFormat::parse("[year]-[month]-[day] [hour]:[minute]:[second]").unwrap();
        assert_eq!(
            t.to_rfc3339("2010-12-01 08:26:00").unwrap(),
            "2010-12-01T08:26:00Z"
        );
        assert!(t.to_rfc3339("01/12/2010 08:26").is_err());
        let t = TimeFormat::parse("rfc3339").unwrap();
        assert_eq!(
            t.to_rfc3339("2011-01-02T03:04:05+01:00").unwrap(),
            "2011-01-02T02:04:05Z"
        );
        let t = TimeFormat::parse("unix").unwrap();
        assert_eq!(t.to_rfc3339("0").unwrap(), "1970-01-01T00:00:00Z");
        let t = TimeFormat::parse("[day]/[month]/[year]").unwrap();
        assert_eq!(t.to_rfc3339("02/01/2011").unwrap(), "2011-01-02T00:00:00Z");
        assert!(TimeFormat::parse("[nonsense").is_err());
    }

    #[test]
    fn values_are_typed() {
        assert_eq!(typed("6", ValueType::Auto), Ok(json!(6)));
        assert_eq!(typed("2.55", ValueType::Auto), Ok(json!(2.55)));
        assert_eq!(typed("85123A", ValueType::Auto), Ok(json!("85123A")));
        assert_eq!(typed("71053", ValueType::String), Ok(json!("71053")));
        assert_eq!(typed("NaN", ValueType::Auto), Ok(json!("NaN")));
        assert_eq!(typed(" 4 ", ValueType::Number), Ok(json!(4)));
        assert!(typed("31/02/2026", ValueType::Number).is_err());
    }
}
