//! Advertising audiences: contacts normalized and hashed the way ad platforms match them
//! (Meta Custom Audiences, Google Customer Match), and who an export may include.
//!
//! Invariants: only SHA-256 hex of a normalized value leaves Candor; an audience includes a
//! member only with a permit for a sale/sharing purpose ([`may_include`]), and a member whose
//! latest decision for it came from a Global Privacy Control (or Do-Not-Track) signal is
//! reported as excluded by that signal.

use sha2::{Digest, Sha256};

use crate::{ConsentSource, DomainError, Permit};

/// The platform whose matching rules the phone numbers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Digits only, with the country code, no `+`.
    Meta,
    /// E.164: `+` and the digits.
    Google,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "meta" => Ok(Platform::Meta),
            "google" => Ok(Platform::Google),
            _ => Err(DomainError::invalid(
                "platform",
                format!("`{s}` is not meta or google"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Meta => "meta",
            Platform::Google => "google",
        }
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Trimmed and lowercased; `None` unless it looks like an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace)).then_some(e)
}

/// The number with its country code; `None` without one (`+` or `00` first), since a platform
/// cannot match a national number.
pub fn normalize_phone(raw: &str, platform: Platform) -> Option<String> {
    let t = raw.trim();
    let international = t.starts_with('+') || t.starts_with("00");
    let mut digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if t.starts_with("00") {
        digits.drain(..2);
    }
    if !international || !(8..=15).contains(&digits.len()) {
        return None;
    }
    Some(match platform {
        Platform::Meta => digits,
        Platform::Google => format!("+{digits}"),
    })
}

/// Why a segment member is not in the audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exclusion {
    /// The person sent a Global Privacy Control (or Do-Not-Track) signal.
    GpcOptOut,
    /// No grant of the sale/sharing purpose.
    NoSaleSharingConsent,
    /// Nothing to match on: no email or phone with a country code.
    NoContact,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::GpcOptOut => "gpc_opt_out",
            Exclusion::NoSaleSharingConsent => "no_sale_sharing_consent",
            Exclusion::NoContact => "no_contact",
        }
    }
}

/// Whether a member may be sent: with the sale/sharing purpose's permit, unless the latest
/// decision for it came from a privacy signal (`latest_source`).
pub fn may_include(
    permit: Option<&Permit<'_>>,
    latest_source: Option<ConsentSource>,
) -> Result<(), Exclusion> {
    if matches!(latest_source, Some(ConsentSource::Gpc | ConsentSource::Dnt)) {
        return Err(Exclusion::GpcOptOut);
    }
    match permit {
        Some(p) if p.is_sale_or_sharing() => Ok(()),
        _ => Err(Exclusion::NoSaleSharingConsent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_normalize_as_the_platforms_match_them() {
        assert_eq!(
            normalize_email("  Alice.Smith@Example.COM ").as_deref(),
            Some("alice.smith@example.com")
        );
        assert_eq!(normalize_email("not an email"), None);
        // The published example: sha256("test@example.com").
        assert_eq!(
            sha256_hex("test@example.com"),
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        assert_eq!(
            normalize_phone("+1 (650) 555-1212", Platform::Google).as_deref(),
            Some("+16505551212")
        );
        assert_eq!(
            normalize_phone("0049 30 1234567", Platform::Meta).as_deref(),
            Some("49301234567")
        );
        assert_eq!(normalize_phone("030 1234567", Platform::Meta), None);
        assert!(Platform::parse("tiktok").is_err());
    }

    #[test]
    fn only_a_sale_sharing_permit_without_a_signal_includes() {
        assert_eq!(
            may_include(None, None),
            Err(Exclusion::NoSaleSharingConsent)
        );
        assert_eq!(
            may_include(None, Some(ConsentSource::Gpc)),
            Err(Exclusion::GpcOptOut)
        );
    }
}
