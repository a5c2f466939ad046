//! The one error type of the crate.
//!
//! Invariant: every error that comes from input data names the column at fault and, when a single
//! row is to blame, its 1-based line number in the file (header included, so it matches what an
//! editor shows) or its 1-based row number for in-memory tables.

use thiserror::Error;

/// Everything that can go wrong while auditing.
#[derive(Debug, Error)]
pub enum FairnessError {
    /// The input file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The input has no data rows at all (a header alone counts as empty).
    #[error("{what} has no data rows")]
    Empty { what: String },
    /// A column named in the options is not in the header.
    #[error("column `{column}` not found; available columns: {available}")]
    MissingColumn { column: String, available: String },
    /// A row has fewer fields than the header.
    #[error("line {line}: expected at least {expected} fields, found {found}")]
    ShortRow {
        line: usize,
        expected: usize,
        found: usize,
    },
    /// A binary column (prediction or label) holds something that is not a recognised 0/1 value.
    #[error(
        "line {line}, column `{column}`: `{value}` is not binary (use 0/1, true/false, yes/no, or pass the positive value explicitly)"
    )]
    NotBinary {
        column: String,
        line: usize,
        value: String,
    },
    /// A numeric column holds something that is not a finite number in range.
    #[error("line {line}, column `{column}`: `{value}` is not a valid {expected}")]
    BadNumber {
        column: String,
        line: usize,
        value: String,
        expected: &'static str,
    },
    /// A quoted field is not closed on its line (multi-line fields are not supported).
    #[error("line {line}: unterminated quoted field")]
    UnterminatedQuote { line: usize },
    /// The privileged group names a value that no row has.
    #[error("privileged group `{spec}` matches no rows{hint}")]
    UnknownPrivileged { spec: String, hint: String },
    /// The privileged group names something ambiguous or malformed.
    #[error("privileged group `{spec}`: {reason}")]
    BadPrivileged { spec: String, reason: String },
    /// A computation needs a column that the input does not have (e.g. reweighing without labels).
    #[error("{what} needs the `{column}` column, which the input does not have")]
    NeedsColumn { what: String, column: &'static str },
    /// An in-memory table is internally inconsistent (rows with and without labels, wrong arity...).
    #[error("row {row}: {reason}")]
    BadRow { row: usize, reason: String },
    /// An option is out of range.
    #[error("invalid option `{option}`: {reason}")]
    BadOption {
        option: &'static str,
        reason: String,
    },
    /// The reference distribution is unusable.
    #[error("reference distribution: {reason}")]
    BadReference { reason: String },
}
