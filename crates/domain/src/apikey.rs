//! API key scopes and secret hashing.
//!
//! Invariant: a key's secret is shown once at creation and never stored or logged; only its
//! SHA-256 digest is kept. Keys are 256-bit random tokens, so a fast digest is the right tool
//! (a password hash would add latency to every request and no security).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;

/// What a key may do. Every route declares the one scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send events (Segment-compatible write keys).
    Ingest,
    /// Ask for recommendations, profiles and segments; read a subject's consents and
    /// preferences.
    Recommend,
    /// Record a subject's consent decisions and change their preferences (level, declared
    /// interests, sensitive opt-ins, quiet periods) on their behalf: a consent banner or
    /// preference center backend. Reads nothing else.
    Consent,
    /// Manage purposes, keys, webhooks; everything an operator does.
    Admin,
    /// Read audit logs and fairness reports, change nothing.
    Auditor,
    /// Handle subject-rights requests: export, erase, rectify and restrict a subject's data,
    /// and track requests and their deadlines.
    Rights,
    Analytics,
    /// A publishable site key, held by every visitor's browser (the consent banner): it may
    /// record consent decisions for an anonymous visitor id through the banner endpoint, and
    /// nothing else: no read, no user ids, no other source than `banner`.
    Site,
    /// Decide items held in the human review queue (approve, reject, break glass), never one's
    /// own request; read the queue.
    Reviewer,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::Ingest,
        Scope::Recommend,
        Scope::Consent,
        Scope::Admin,
        Scope::Auditor,
        Scope::Rights,
        Scope::Analytics,
        Scope::Site,
        Scope::Reviewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Recommend => "recommend",
            Scope::Consent => "consent",
            Scope::Admin => "admin",
            Scope::Auditor => "auditor",
            Scope::Rights => "rights",
            Scope::Analytics => "analytics",
            Scope::Site => "site",
            Scope::Reviewer => "reviewer",
        }
    }

    /// What a key of this scope may do, in words for help text and listings.
    pub fn description(self) -> &'static str {
        match self {
            Scope::Ingest => "send events (Segment-compatible write key); reads nothing",
            Scope::Recommend => {
                "ask for recommendations, profiles and segments; read a subject's consents and \
                 preferences"
            }
            Scope::Consent => {
                "record a subject's consent decisions and change their preferences (level, \
                 interests, opt-ins, quiet periods) on their behalf; reads nothing else"
            }
            Scope::Admin => {
                "manage purposes, keys, webhooks, the tracking plan, segments, models, \
                 retention and fairness runs; also read what auditor keys read"
            }
            Scope::Auditor => {
                "read the audit log, fairness reports and incidents, and exact aggregates with a \
                 recorded reason; change nothing"
            }
            Scope::Analytics => {
                "run differentially private queries within the key's own privacy budget and read \
                 that budget; never sees an exact figure"
            }
            Scope::Rights => {
                "handle subject-rights requests: export, erase, rectify and restrict a \
                 subject's data; track requests and their deadlines"
            }
            Scope::Site => {
                "publishable (shown to every visitor): record banner consent decisions for an \
                 anonymous visitor id; reads nothing, cannot name a user id"
            }
            Scope::Reviewer => {
                "read the human review queue and approve or reject what it holds, with a \
                 reason; never one's own request"
            }
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "recommend" => Ok(Scope::Recommend),
            "consent" => Ok(Scope::Consent),
            "admin" => Ok(Scope::Admin),
            "auditor" => Ok(Scope::Auditor),
            "rights" => Ok(Scope::Rights),
            "analytics" => Ok(Scope::Analytics),
            "site" => Ok(Scope::Site),
            "reviewer" => Ok(Scope::Reviewer),
            other => Err(DomainError::UnknownScope(other.to_owned())),
        }
    }

    /// Whether a key holding `self` may call a route that requires `required`. Admin may also
    /// read what auditors read and handle rights requests; otherwise scopes are disjoint, so a
    /// leaked write key cannot read anything and a recommendation key cannot change policy.
    pub fn permits(self, required: Scope) -> bool {
        self == required
            || (self == Scope::Admin && matches!(required, Scope::Auditor | Scope::Rights))
    }
}

/// Digest under which a secret is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Builds the secret a person copies: a recognizable prefix, the scope, and 32 random bytes.
pub fn format_secret(scope: Scope, random: &[u8; 32]) -> String {
    format!("cnd_{}_{}", scope.as_str(), hex::encode(random))
}

/// The part of a secret safe to show in listings and logs.
pub fn display_prefix(secret: &str) -> String {
    let end = secret.len().min(secret.find('_').map_or(8, |_| 4 + 12));
    format!("{}…", &secret[..end.min(secret.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_least_privilege() {
        assert!(Scope::Admin.permits(Scope::Admin));
        assert!(Scope::Admin.permits(Scope::Auditor));
        assert!(!Scope::Admin.permits(Scope::Ingest));
        assert!(!Scope::Auditor.permits(Scope::Admin));
        assert!(!Scope::Ingest.permits(Scope::Recommend));
        assert!(!Scope::Recommend.permits(Scope::Consent));
        assert!(!Scope::Consent.permits(Scope::Recommend));
        assert!(Scope::Admin.permits(Scope::Rights));
        assert!(!Scope::Rights.permits(Scope::Admin) && !Scope::Auditor.permits(Scope::Rights));
        assert_eq!(Scope::parse("consent").unwrap(), Scope::Consent);
        assert!(matches!(
            Scope::parse("root"),
            Err(DomainError::UnknownScope(_))
        ));
    }

    #[test]
    fn secrets_hash_and_display_without_leaking() {
        let s = format_secret(Scope::Admin, &[7u8; 32]);
        assert!(s.starts_with("cnd_admin_0707"));
        assert_eq!(hash_secret(&s).len(), 64);
        assert_ne!(hash_secret(&s), hash_secret("cnd_admin_x"));
        let shown = display_prefix(&s);
        assert!(shown.len() < 24 && s.starts_with(shown.trim_end_matches('…')));
    }
}
