use candor_domain::DomainError;
use candor_store::StoreError;

/// Every way a use case can fail. The HTTP layer maps each variant to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Rows of a batch that failed validation, each naming its row and field.
    #[error("{} invalid {what}: {}", rows.len(), rows.iter().take(10).map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidRows {
        what: &'static str,
        rows: Vec<RowError>,
    },
    #[error("unknown purpose `{0}`")]
    UnknownPurpose(String),
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} `{id}` already exists")]
    Conflict { what: &'static str, id: String },
    /// A private query would take the analyst's budget past its limit; nothing was spent.
    #[error("{0}; nothing was spent")]
    OverBudget(String),
    /// A review decision the queue's rules refuse.
    #[error("review refused: {0}")]
    Review(#[from] candor_domain::review::Refusal),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("storage failure: {0}")]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, reason } => AppError::Invalid { field, reason },
            DomainError::UnknownPurpose(p) => AppError::UnknownPurpose(p),
            DomainError::UnknownScope(s) => AppError::invalid(
                "scope",
                format!(
                    "`{s}` is not one of ingest, recommend, consent, admin, auditor, rights, analytics, site, reviewer"
                ),
            ),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what, id } => AppError::Conflict { what, id },
            StoreError::NotFound { what, id } => AppError::NotFound { what, id },
            e @ StoreError::OverBudget { .. } => AppError::OverBudget(e.to_string()),
            other => AppError::Store(other),
        }
    }
}

/// One refused row: where (0-based row of the batch), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}, `{}`: {}", self.row, self.field, self.message)
    }
}
