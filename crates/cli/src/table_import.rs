//! `candor import catalog FILE` and `candor import consents FILE`: tables into use cases.
//!
//! A file is read row by row (CSV/TSV with a header row, or JSON Lines) into named fields, a
//! mapping turns each row into what the API takes, and batches go through the same use cases as
//! the API (`App::upsert_items`, `App::import_consent_rows`), so a row is refused here exactly
//! when the API would refuse it, with the same field and message.
//!
//! Invariants:
//! - Good rows of a batch are kept and bad ones reported, each with its line number (the line a
//!   CSV record starts on; the header is line 1) and field; the summary groups them by field.
//! - Bad input never panics: an unreadable row is rejected with its line, the import goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use candor_app::personalization::catalog::{MAX_ITEMS_PER_REQUEST, OnError, Refresh};
use candor_app::{App, Config, ConsentImportRow, RowError};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::import_cmd::{ReasonStat, TimeFormat};

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// The catalog file.
    pub file: PathBuf,
    /// `csv` (a header row; columns named like the item fields, or mapped with --map), `jsonl`
    /// (one item per line, as `PUT /v1/admin/catalog/items` takes), `shopify` (Shopify's product
    /// export CSV) or `gmc` (a Google Merchant Center product feed, tab-separated). Default: from
    /// the extension (`.jsonl`/`.ndjson` → jsonl, `.tsv` → gmc, else csv).
    #[arg(long, value_parser = ["csv", "jsonl", "shopify", "gmc"])]
    pub format: Option<String>,
    /// `FIELD=COLUMN` (repeatable, csv): the column holding an item field (id, title, category,
    /// price, currency, availability, image_url, brand, sensitive).
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    pub map: Vec<String>,
    /// `NAME=COLUMN` (repeatable, csv/shopify/gmc): a free attribute from a column.
    #[arg(long = "attribute", value_name = "NAME=COLUMN")]
    pub attributes: Vec<String>,
    /// Field delimiter (default `,`; `gmc` files: tab).
    #[arg(long)]
    pub delimiter: Option<char>,
    /// Items per batch (one audited store write each), at most 10,000.
    #[arg(long, default_value_t = 2000)]
    pub batch_size: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ConsentsArgs {
    /// The consent export: `.csv` (a header row) or `.jsonl` (one object per line; the column
    /// options name its keys).
    pub file: PathBuf,
    #[arg(long, value_parser = ["csv", "jsonl"])]
    pub format: Option<String>,
    /// Column with the id you know the person by.
    #[arg(long, default_value = "user_id")]
    pub subject_column: String,
    /// Column with the purpose (long format: one decision per row).
    #[arg(long, default_value = "purpose")]
    pub purpose_column: String,
    /// Column with the decision (long format).
    #[arg(long, default_value = "decision")]
    pub decision_column: String,
    /// `PURPOSE=COLUMN` (repeatable; wide format): a column holding the decision for one of
    /// your purposes, for exports with one row per person. Replaces the two columns above.
    #[arg(long = "purpose-decision", value_name = "PURPOSE=COLUMN")]
    pub purpose_decisions: Vec<String>,
    /// `THEIRS=OURS` (repeatable): a CMP's purpose name and the declared purpose it stands for.
    #[arg(long = "purpose-map", value_name = "THEIRS=OURS")]
    pub purpose_map: Vec<String>,
    /// Cell values that mean granted (comma-separated, case-insensitive).
    #[arg(
        long,
        default_value = "granted,true,1,yes,accepted,opt-in,opt_in,allow"
    )]
    pub granted_values: String,
    /// Cell values that mean denied.
    #[arg(
        long,
        default_value = "denied,false,0,no,rejected,declined,opt-out,opt_out,deny,withdrawn"
    )]
    pub denied_values: String,
    /// Column with when the decision was made.
    #[arg(long, default_value = "timestamp")]
    pub timestamp_column: String,
    /// `rfc3339` (default), `unix`, `unix_ms`, or a `time` format description.
    #[arg(long, default_value = "rfc3339")]
    pub timestamp_format: String,
    /// Proof columns: the address (only its keyed hash is kept), the browser, a double opt-in
    /// token, and the purpose version the person saw.
    #[arg(long)]
    pub ip_column: Option<String>,
    #[arg(long)]
    pub user_agent_column: Option<String>,
    #[arg(long)]
    pub token_column: Option<String>,
    #[arg(long)]
    pub policy_version_column: Option<String>,
    /// Declare these purposes first (a JSON array of purpose drafts, as for
    /// `POST /v1/admin/purposes`); existing ones are revised when they differ.
    #[arg(long)]
    pub purposes: Option<PathBuf>,
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// Rows per batch (one transaction, one audit entry per person in it).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub quiet: bool,
}

// ---------------------------------------------------------------------------------------------
// Reading rows

/// A file as rows of named fields.
enum Reader {
    Csv {
        reader: csv::Reader<File>,
        headers: Vec<String>,
    },
    Lines {
        reader: BufReader<File>,
        line: u64,
        offset: u64,
    },
}

struct Row {
    line: u64,
    fields: std::result::Result<Map<String, Value>, String>,
}

impl Reader {
    fn open(path: &Path, jsonl: bool, delimiter: u8) -> Result<Reader> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        if jsonl {
            return Ok(Reader::Lines {
                reader: BufReader::new(file),
                line: 0,
                offset: 0,
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            // Merchant Center feeds are TSV without quoting rules; quotes are data there.
            .quoting(delimiter != b'\t')
            .from_reader(file);
        let headers = reader
            .headers()
            .with_context(|| format!("reading the header row of {}", path.display()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        Ok(Reader::Csv { reader, headers })
    }

    fn headers(&self) -> &[String] {
        match self {
            Reader::Csv { headers, .. } => headers,
            Reader::Lines { .. } => &[],
        }
    }

    fn offset(&self) -> u64 {
        match self {
            Reader::Csv { reader, .. } => reader.position().byte(),
            Reader::Lines { offset, .. } => *offset,
        }
    }

    fn next(&mut self) -> Result<Option<Row>> {
        match self {
            Reader::Csv { reader, headers } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        let fields = if record.len() != headers.len() {
                            Err(format!(
                                "{} fields; the header has {}",
                                record.len(),
                                headers.len()
                            ))
                        } else {
                            Ok(headers
                                .iter()
                                .zip(record.iter())
                                .map(|(h, c)| (h.clone(), Value::String(c.to_owned())))
                                .collect())
                        };
                        Ok(Some(Row { line, fields }))
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        match e.kind() {
                            csv::ErrorKind::Utf8 { .. } => Ok(Some(Row {
                                line,
                                fields: Err(format!("not UTF-8: {e}")),
                            })),
                            _ => Err(e).context("reading the file"),
                        }
                    }
                }
            }
            Reader::Lines {
                reader,
                line,
                offset,
            } => loop {
                let mut buf = Vec::new();
                let n = reader.read_until(b'\n', &mut buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                *offset += n as u64;
                let text = match std::str::from_utf8(&buf) {
                    Ok(t) => t.trim(),
                    Err(e) => {
                        return Ok(Some(Row {
                            line: *line,
                            fields: Err(format!("not UTF-8: {e}")),
                        }));
                    }
                };
                if text.is_empty() {
                    continue;
                }
                let fields = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(o)) => Ok(o),
                    Ok(_) => Err("a line must be a JSON object".to_owned()),
                    Err(e) => Err(e.to_string()),
                };
                return Ok(Some(Row {
                    line: *line,
                    fields,
                }));
            },
        }
    }
}

fn cell<'a>(fields: &'a Map<String, Value>, column: &str) -> Option<&'a Value> {
    match fields.get(column) {
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    }
}

fn text_of(fields: &Map<String, Value>, column: &str) -> Option<String> {
    cell(fields, column).map(|v| match v {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    })
}

fn need_column(headers: &[String], column: &str, flag: &str) -> Result<()> {
    ensure!(
        headers.is_empty() || headers.iter().any(|h| h == column),
        "unknown column `{column}` in {flag}; the file has: {}",
        headers.join(", ")
    );
    Ok(())
}

fn pairs(specs: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|s| {
            let (a, b) = s
                .split_once('=')
                .with_context(|| format!("{flag} `{s}`: expected NAME=COLUMN"))?;
            ensure!(!a.is_empty() && !b.is_empty(), "{flag} `{s}`: empty name");
            Ok((a.to_owned(), b.to_owned()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The summary

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// This batch's rejections, applied in line order by `end_batch`.
    #[serde(skip)]
    pending: Vec<(u64, String, String)>,
    pub rows_read: u64,
    /// Rows that carry no item (Shopify image-only rows).
    pub skipped: u64,
    /// Items upserted, or consent records stored.
    pub written: u64,
    /// People whose consent records were imported.
    pub subjects: u64,
    pub rejected: u64,
    /// By field: how often, the first lines, the first message.
    pub rejected_by_field: BTreeMap<String, ReasonStat>,
}

impl Summary {
    fn reject(&mut self, field: &str, line: u64, message: &str) {
        self.pending
            .push((line, field.to_owned(), message.to_owned()));
    }

    /// Counts the batch's rejections, in line order, so "first lines" are the first ones.
    fn end_batch(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|p| p.0);
        for (line, field, message) in pending {
            self.count_rejection(&field, line, &message);
        }
    }

    fn count_rejection(&mut self, field: &str, line: u64, message: &str) {
        self.rejected += 1;
        let r = self.rejected_by_field.entry(field.to_owned()).or_default();
        r.count += 1;
        if r.first_lines.len() < 5 {
            r.first_lines.push(line);
        }
        if r.example.is_empty() {
            r.example = message.chars().take(300).collect();
        }
    }

    fn rejected_rows(&mut self, rows: &[RowError], lines: &[u64]) {
        for r in rows {
            let line = lines.get(r.row).copied().unwrap_or_default();
            self.reject(&r.field, line, &r.message);
        }
    }

    fn print(&self, what: &str, file: &Path, elapsed: f64, json_out: bool) {
        let rate = self.rows_read as f64 / elapsed.max(1e-9);
        if json_out {
            println!(
                "{}",
                json!({"status": "finished", "rows_per_second": rate, "totals": self})
            );
            return;
        }
        println!("import of {} ({what}): finished", file.display());
        println!(
            "  this run             {} rows in {elapsed:.1} s ({rate:.0} rows/s)",
            self.rows_read
        );
        let mut lines = vec![("rows read", self.rows_read)];
        if self.skipped > 0 {
            lines.push(("skipped", self.skipped));
        }
        lines.push((
            if what == "catalog" {
                "items upserted"
            } else {
                "records stored"
            },
            self.written,
        ));
        if what == "consents" {
            lines.push(("people", self.subjects));
        }
        lines.push(("rejected", self.rejected));
        for (label, n) in lines {
            println!("  {label:<20} {n}");
        }
        for (field, r) in &self.rejected_by_field {
            let lines: Vec<String> = r.first_lines.iter().map(u64::to_string).collect();
            println!(
                "    {field:<22} {:>8}  first at {} {}: {}",
                r.count,
                if lines.len() == 1 { "line" } else { "lines" },
                lines.join(", "),
                r.example
            );
        }
    }
}

fn progress(quiet: bool, file: &Path) -> Result<indicatif::ProgressBar> {
    let len = std::fs::metadata(file)?.len();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} (eta {eta})",
    )?);
    Ok(bar)
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// How a catalog row becomes an item.
enum CatalogMapping {
    /// JSON Lines: the row is the item.
    Items,
    /// Columns per field, plus attribute columns.
    Columns {
        fields: Vec<(String, String)>,
        attributes: Vec<(String, String)>,
    },
    Shopify {
        attributes: Vec<(String, String)>,
        /// The current product's first row: later variant rows leave product fields empty.
        product: Option<Map<String, Value>>,
    },
    Gmc {
        attributes: Vec<(String, String)>,
    },
}

const SHOPIFY_PRODUCT_FIELDS: &[&str] = &[
    "Title",
    "Vendor",
    "Type",
    "Product Category",
    "Tags",
    "Image Src",
    "Status",
    "Published",
];

/// Merchant Center attributes kept as free attributes when present.
const GMC_ATTRIBUTES: &[&str] = &[
    "link",
    "gtin",
    "mpn",
    "condition",
    "color",
    "size",
    "material",
    "item_group_id",
    "google_product_category",
];

fn attributes_of(fields: &Map<String, Value>, specs: &[(String, String)]) -> Map<String, Value> {
    specs
        .iter()
        .filter_map(|(name, col)| text_of(fields, col).map(|v| (name.clone(), Value::String(v))))
        .collect()
}

impl CatalogMapping {
    fn new(format: &str, args: &CatalogArgs, headers: &[String]) -> Result<Self> {
        let attributes = pairs(&args.attributes, "--attribute")?;
        for (_, col) in &attributes {
            need_column(headers, col, "--attribute")?;
        }
        Ok(match format {
            "jsonl" => {
                ensure!(
                    args.map.is_empty() && args.attributes.is_empty(),
                    "--map and --attribute apply to table formats; JSON Lines rows are items"
                );
                CatalogMapping::Items
            }
            "shopify" => {
                for c in ["Handle", "Variant Price"] {
                    need_column(headers, c, "the Shopify preset")?;
                }
                CatalogMapping::Shopify {
                    attributes,
                    product: None,
                }
            }
            "gmc" => {
                for c in ["id", "title", "price"] {
                    need_column(headers, c, "the Merchant Center preset")?;
                }
                CatalogMapping::Gmc { attributes }
            }
            _ => {
                let mut fields: Vec<(String, String)> = [
                    "id",
                    "title",
                    "category",
                    "price",
                    "currency",
                    "availability",
                    "image_url",
                    "brand",
                    "sensitive",
                ]
                .iter()
                .map(|f| ((*f).to_owned(), (*f).to_owned()))
                .collect();
                for (field, col) in pairs(&args.map, "--map")? {
                    let slot = fields
                        .iter_mut()
                        .find(|(f, _)| *f == field)
                        .with_context(|| {
                            format!("--map {field}={col}: `{field}` is not an item field")
                        })?;
                    need_column(headers, &col, "--map")?;
                    slot.1 = col;
                }
                CatalogMapping::Columns { fields, attributes }
            }
        })
    }

    /// The item of a row, or `None` for a row that carries none.
    fn item(&mut self, mut fields: Map<String, Value>) -> Option<Value> {
        match self {
            CatalogMapping::Items => Some(Value::Object(fields)),
            CatalogMapping::Columns {
                fields: map,
                attributes,
            } => {
                let mut o: Map<String, Value> = map
                    .iter()
                    .filter_map(|(f, col)| cell(&fields, col).map(|v| (f.clone(), v.clone())))
                    .collect();
                let attrs = attributes_of(&fields, attributes);
                if !attrs.is_empty() {
                    o.insert("attributes".into(), Value::Object(attrs));
                }
                Some(Value::Object(o))
            }
            CatalogMapping::Shopify {
                attributes,
                product,
            } => {
                let handle = text_of(&fields, "Handle")?;
                let same = product
                    .as_ref()
                    .is_some_and(|p| p.get("Handle").and_then(Value::as_str) == Some(&handle));
                if same {
                    let p = product.as_ref().expect("checked");
                    for f in SHOPIFY_PRODUCT_FIELDS {
                        if cell(&fields, f).is_none()
                            && let Some(v) = p.get(*f)
                        {
                            fields.insert((*f).to_owned(), v.clone());
                        }
                    }
                } else {
                    *product = Some(fields.clone());
                }
                // Rows with no variant (extra images of the product) carry no item.
                let price = cell(&fields, "Variant Price")?.clone();
                let variant = text_of(&fields, "Option1 Value")
                    .filter(|v| v != "Default Title")
                    .map(|v| format!("{handle}/{v}"));
                let id = text_of(&fields, "Variant SKU")
                    .or(variant)
                    .unwrap_or_else(|| handle.clone());
                let category = text_of(&fields, "Product Category")
                    .or_else(|| text_of(&fields, "Type"))
                    .unwrap_or_else(|| "Uncategorized".into());
                let active = text_of(&fields, "Status").is_none_or(|s| s == "active")
                    && text_of(&fields, "Published").is_none_or(|s| s != "false");
                let tracked = text_of(&fields, "Variant Inventory Tracker").is_some();
                let qty =
                    text_of(&fields, "Variant Inventory Qty").and_then(|q| q.parse::<f64>().ok());
                let oversell =
                    text_of(&fields, "Variant Inventory Policy").is_some_and(|p| p == "continue");
                let in_stock = !tracked || oversell || qty.is_none_or(|q| q > 0.0);
                let mut attrs = Map::new();
                attrs.insert("handle".into(), Value::String(handle));
                if let Some(tags) = text_of(&fields, "Tags") {
                    attrs.insert("tags".into(), Value::String(tags));
                }
                attrs.extend(attributes_of(&fields, attributes));
                let mut o = Map::new();
                o.insert("id".into(), Value::String(id));
                if let Some(t) = cell(&fields, "Title") {
                    o.insert("title".into(), t.clone());
                }
                o.insert("category".into(), Value::String(category));
                o.insert("price".into(), price);
                o.insert("availability".into(), Value::Bool(active && in_stock));
                for (field, col) in [("brand", "Vendor"), ("image_url", "Image Src")] {
                    if let Some(v) = cell(&fields, col) {
                        o.insert(field.into(), v.clone());
                    }
                }
                o.insert("attributes".into(), Value::Object(attrs));
                Some(Value::Object(o))
            }
            CatalogMapping::Gmc { attributes } => {
                let mut o = Map::new();
                for (field, col) in [
                    ("id", "id"),
                    ("title", "title"),
                    ("availability", "availability"),
                    ("image_url", "image_link"),
                    ("brand", "brand"),
                ] {
                    if let Some(v) = cell(&fields, col) {
                        o.insert(field.into(), v.clone());
                    }
                }
                // `product_type` is the shop's own path; Google's category may be a numeric id.
                let category = text_of(&fields, "product_type")
                    .or_else(|| text_of(&fields, "google_product_category"));
                if let Some(c) = category {
                    o.insert("category".into(), Value::String(c));
                }
                // "15.00 USD": amount, then the currency code.
                if let Some(p) = text_of(&fields, "price") {
                    match p.rsplit_once(' ') {
                        Some((amount, code)) if code.chars().all(|c| c.is_ascii_alphabetic()) => {
                            o.insert("price".into(), Value::String(amount.trim().to_owned()));
                            o.insert("currency".into(), Value::String(code.to_owned()));
                        }
                        _ => {
                            o.insert("price".into(), Value::String(p));
                        }
                    }
                }
                let mut attrs: Map<String, Value> = GMC_ATTRIBUTES
                    .iter()
                    .filter_map(|a| {
                        text_of(&fields, a).map(|v| ((*a).to_owned(), Value::String(v)))
                    })
                    .collect();
                attrs.extend(attributes_of(&fields, attributes));
                if !attrs.is_empty() {
                    o.insert("attributes".into(), Value::Object(attrs));
                }
                Some(Value::Object(o))
            }
        }
    }
}

fn catalog_format(args: &CatalogArgs) -> String {
    if let Some(f) = &args.format {
        return f.clone();
    }
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "ndjson" => "jsonl",
        "tsv" => "gmc",
        _ => "csv",
    }
    .to_owned()
}

pub async fn catalog(config: Config, args: CatalogArgs) -> Result<std::process::ExitCode> {
    ensure!(
        (1..=MAX_ITEMS_PER_REQUEST).contains(&args.batch_size),
        "--batch-size must be 1-{MAX_ITEMS_PER_REQUEST}"
    );
    ensure!(args.file.is_file(), "{}: no such file", args.file.display());
    let format = catalog_format(&args);
    let delimiter = args
        .delimiter
        .unwrap_or(if format == "gmc" { '\t' } else { ',' });
    ensure!(
        delimiter.is_ascii(),
        "--delimiter must be one ASCII character"
    );
    let mut reader = Reader::open(&args.file, format == "jsonl", delimiter as u8)?;
    let mut mapping = CatalogMapping::new(&format, &args, reader.headers())?;
    let app = App::open(config).await?;
    let bar = progress(args.quiet, &args.file)?;
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut end = false;
    while !end {
        let mut items = Vec::with_capacity(args.batch_size);
        let mut lines = Vec::with_capacity(args.batch_size);
        while items.len() < args.batch_size {
            let Some(row) = reader.next()? else {
                end = true;
                break;
            };
            summary.rows_read += 1;
            match row.fields {
                Err(e) => summary.reject("row", row.line, &e),
                Ok(fields) => match mapping.item(fields) {
                    Some(item) => {
                        items.push(item);
                        lines.push(row.line);
                    }
                    None => summary.skipped += 1,
                },
            }
        }
        if !items.is_empty() {
            let report = app
                .upsert_items("import", &items, OnError::KeepValid, Refresh::Soon)
                .await
                .context("storing a batch of items")?;
            summary.written += report.upserted as u64;
            summary.rejected_rows(&report.rejected, &lines);
        }
        summary.end_batch();
        bar.set_position(reader.offset());
        bar.set_message(format!(
            "{} rows, {} items, {} rejected",
            summary.rows_read, summary.written, summary.rejected
        ));
    }
    bar.finish_and_clear();
    summary.print(
        "catalog",
        &args.file,
        started.elapsed().as_secs_f64(),
        args.json,
    );
    app.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// Consents

struct ConsentMapping {
    subject: String,
    /// Long format: (purpose column, decision column); wide: (purpose, decision column) pairs.
    long: Option<(String, String)>,
    wide: Vec<(String, String)>,
    purpose_map: BTreeMap<String, String>,
    granted: Vec<String>,
    denied: Vec<String>,
    timestamp: (String, TimeFormat),
    ip: Option<String>,
    user_agent: Option<String>,
    token: Option<String>,
    policy_version: Option<String>,
}

fn values(list: &str) -> Vec<String> {
    list.split(',')
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

impl ConsentMapping {
    fn new(args: &ConsentsArgs, headers: &[String]) -> Result<Self> {
        let wide = pairs(&args.purpose_decisions, "--purpose-decision")?;
        let long = if wide.is_empty() {
            need_column(headers, &args.purpose_column, "--purpose-column")?;
            need_column(headers, &args.decision_column, "--decision-column")?;
            Some((args.purpose_column.clone(), args.decision_column.clone()))
        } else {
            for (_, col) in &wide {
                need_column(headers, col, "--purpose-decision")?;
            }
            None
        };
        need_column(headers, &args.subject_column, "--subject-column")?;
        need_column(headers, &args.timestamp_column, "--timestamp-column")?;
        for (c, flag) in [
            (&args.ip_column, "--ip-column"),
            (&args.user_agent_column, "--user-agent-column"),
            (&args.token_column, "--token-column"),
            (&args.policy_version_column, "--policy-version-column"),
        ] {
            if let Some(c) = c {
                need_column(headers, c, flag)?;
            }
        }
        let (granted, denied) = (values(&args.granted_values), values(&args.denied_values));
        if let Some(v) = granted.iter().find(|v| denied.contains(v)) {
            bail!("`{v}` is in both --granted-values and --denied-values");
        }
        Ok(ConsentMapping {
            subject: args.subject_column.clone(),
            long,
            wide,
            purpose_map: pairs(&args.purpose_map, "--purpose-map")?
                .into_iter()
                .collect(),
            granted,
            denied,
            timestamp: (
                args.timestamp_column.clone(),
                TimeFormat::parse(&args.timestamp_format)?,
            ),
            ip: args.ip_column.clone(),
            user_agent: args.user_agent_column.clone(),
            token: args.token_column.clone(),
            policy_version: args.policy_version_column.clone(),
        })
    }

    /// A row's decisions, or the field that made it unreadable.
    fn decisions(
        &self,
        fields: &Map<String, Value>,
    ) -> std::result::Result<Vec<ConsentImportRow>, (&'static str, String)> {
        let at_text = text_of(fields, &self.timestamp.0).ok_or(("timestamp", "is empty".into()))?;
        let at = self
            .timestamp
            .1
            .to_rfc3339(&at_text)
            .ok()
            .and_then(|t| candor_domain::parse_rfc3339(&t).ok())
            .ok_or((
                "timestamp",
                format!("`{at_text}` is not a time in the given format"),
            ))?;
        let decision = |raw: &str| -> std::result::Result<String, (&'static str, String)> {
            let v = raw.trim().to_lowercase();
            if self.granted.contains(&v) {
                Ok("granted".into())
            } else if self.denied.contains(&v) {
                Ok("denied".into())
            } else {
                Err((
                    "decision",
                    format!("`{raw}` is not one of the --granted-values or --denied-values"),
                ))
            }
        };
        let policy_version = match &self.policy_version {
            Some(c) => match text_of(fields, c) {
                Some(v) => Some(
                    v.parse::<u32>()
                        .map_err(|_| ("policy_version", format!("`{v}` is not a whole number")))?,
                ),
                None => None,
            },
            None => None,
        };
        let base = ConsentImportRow {
            external_id: text_of(fields, &self.subject).unwrap_or_default(),
            at,
            ip: self.ip.as_deref().and_then(|c| text_of(fields, c)),
            user_agent: self.user_agent.as_deref().and_then(|c| text_of(fields, c)),
            double_opt_in_token: self.token.as_deref().and_then(|c| text_of(fields, c)),
            policy_version,
            ..Default::default()
        };
        let ours = |p: String| self.purpose_map.get(&p).cloned().unwrap_or(p);
        match &self.long {
            Some((pc, dc)) => {
                let purpose = text_of(fields, pc).ok_or(("purpose", "is empty".to_owned()))?;
                let d = text_of(fields, dc).ok_or(("decision", "is empty".to_owned()))?;
                Ok(vec![ConsentImportRow {
                    purpose: ours(purpose),
                    decision: decision(&d)?,
                    ..base
                }])
            }
            None => {
                let mut out = Vec::new();
                for (purpose, col) in &self.wide {
                    // An empty cell: the person was not asked about this purpose.
                    if let Some(d) = text_of(fields, col) {
                        out.push(ConsentImportRow {
                            purpose: ours(purpose.clone()),
                            decision: decision(&d)?,
                            ..base.clone()
                        });
                    }
                }
                Ok(out)
            }
        }
    }
}

pub async fn consents(config: Config, args: ConsentsArgs) -> Result<std::process::ExitCode> {
    ensure!(
        (1..=10_000).contains(&args.batch_size),
        "--batch-size must be 1-10000"
    );
    ensure!(args.file.is_file(), "{}: no such file", args.file.display());
    ensure!(
        args.delimiter.is_ascii(),
        "--delimiter must be one ASCII character"
    );
    let jsonl = match args.format.as_deref() {
        Some(f) => f == "jsonl",
        None => matches!(
            args.file.extension().and_then(|e| e.to_str()),
            Some("jsonl" | "ndjson")
        ),
    };
    let mut reader = Reader::open(&args.file, jsonl, args.delimiter as u8)?;
    let mapping = ConsentMapping::new(&args, reader.headers())?;
    let app = App::open(config).await?;
    crate::import_cmd::Setup::check(&app, args.purposes.as_deref(), None)?
        .apply(&app)
        .await?;
    let bar = progress(args.quiet, &args.file)?;
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut end = false;
    while !end {
        let mut rows = Vec::with_capacity(args.batch_size);
        let mut lines = Vec::with_capacity(args.batch_size);
        while rows.len() < args.batch_size {
            let Some(row) = reader.next()? else {
                end = true;
                break;
            };
            summary.rows_read += 1;
            match row
                .fields
                .map_err(|e| ("row", e))
                .and_then(|f| mapping.decisions(&f))
            {
                Err((field, e)) => summary.reject(field, row.line, &e),
                Ok(ds) if ds.is_empty() => summary.skipped += 1,
                Ok(ds) => {
                    for d in ds {
                        rows.push(d);
                        lines.push(row.line);
                    }
                }
            }
        }
        if !rows.is_empty() {
            let report = app
                .import_consent_rows("import", &rows)
                .await
                .context("storing a batch of consent records")?;
            summary.written += report.records as u64;
            summary.subjects += report.subjects as u64;
            summary.rejected_rows(&report.rejected, &lines);
        }
        summary.end_batch();
        bar.set_position(reader.offset());
        bar.set_message(format!(
            "{} rows, {} records, {} rejected",
            summary.rows_read, summary.written, summary.rejected
        ));
    }
    bar.finish_and_clear();
    summary.print(
        "consents",
        &args.file,
        started.elapsed().as_secs_f64(),
        args.json,
    );
    app.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}
