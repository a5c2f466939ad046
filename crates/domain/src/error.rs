use thiserror::Error;

/// Every way a domain rule can refuse its input. Each variant names the field at fault so the
/// HTTP and CLI layers can tell a person exactly what to fix.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown purpose `{0}`")]
    UnknownPurpose(String),
    #[error(
        "unknown scope `{0}` (expected one of: ingest, recommend, consent, admin, auditor, rights, analytics, site, reviewer)"
    )]
    UnknownScope(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
