//! The one error type of this crate.
//!
//! Every variant names what a person needs to act on: the file, the 1-based line, the field.

use std::path::PathBuf;

/// Errors from loading data, fitting, and reading or writing model files.
#[derive(Debug, thiserror::Error)]
pub enum RecError {
    /// A data or model file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A row of a data file does not have the expected shape or a field does not parse.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        field: &'static str,
        message: String,
    },
    /// A model file is corrupt, truncated, from another format version, or of another kind.
    #[error("model file rejected: {0}")]
    CorruptModel(String),
    /// Arguments or inputs that cannot be honoured (empty data, out-of-range index, bad parameter).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A dense linear solve failed (matrix not positive definite).
    #[error("linear algebra: {0}")]
    Linalg(String),
}

impl RecError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RecError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(
        path: impl Into<PathBuf>,
        line: u64,
        field: &'static str,
        message: impl Into<String>,
    ) -> Self {
        RecError::Parse {
            path: path.into(),
            line,
            field,
            message: message.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = RecError> = std::result::Result<T, E>;
