//! Purposes: the declared reasons Candor may use personal data, each with the data categories it
//! may read.
//!
//! Invariant: a `Purpose` value is always valid (id syntax, non-empty plain-language text, at least
//! one category); the only way to build one from outside input is `PurposeDraft::validate`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A purpose identifier: lowercase ASCII letters, digits, `_` and `-`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PurposeId(String);

impl PurposeId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(PurposeId(s.to_owned()))
        } else {
            Err(DomainError::invalid(
                "purpose id",
                format!("`{s}` must be 1-64 characters of a-z, 0-9, `_` or `-`"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PurposeId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        PurposeId::parse(&s)
    }
}
impl From<PurposeId> for String {
    fn from(p: PurposeId) -> String {
        p.0
    }
}
impl fmt::Display for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of personal data a field holds. Sensitive categories carry their kind
/// (`sensitive:health`) and are never used unless a person explicitly opts in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataCategory {
    Browsing,
    Purchase,
    DeclaredPreference,
    Contact,
    Location,
    Demographic,
    Device,
    Sensitive(String),
}

impl DataCategory {
    pub const NAMES: &'static [&'static str] = &[
        "browsing",
        "purchase",
        "declared_preference",
        "contact",
        "location",
        "demographic",
        "device",
        "sensitive:<kind>",
    ];

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(match s {
            "browsing" => DataCategory::Browsing,
            "purchase" => DataCategory::Purchase,
            "declared_preference" => DataCategory::DeclaredPreference,
            "contact" => DataCategory::Contact,
            "location" => DataCategory::Location,
            "demographic" => DataCategory::Demographic,
            "device" => DataCategory::Device,
            other => match other.strip_prefix("sensitive:") {
                Some(kind)
                    if !kind.is_empty()
                        && kind.len() <= 40
                        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
                {
                    DataCategory::Sensitive(kind.to_owned())
                }
                _ => {
                    return Err(DomainError::invalid(
                        "data category",
                        format!("`{s}` is not one of {}", Self::NAMES.join(", ")),
                    ));
                }
            },
        })
    }

    pub fn is_sensitive(&self) -> bool {
        matches!(self, DataCategory::Sensitive(_))
    }
}

impl TryFrom<String> for DataCategory {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        DataCategory::parse(&s)
    }
}
impl From<DataCategory> for String {
    fn from(c: DataCategory) -> String {
        c.to_string()
    }
}
impl DataCategory {
    /// Whether `name` is this category's canonical name (as stored), without allocating.
    pub fn is_named(&self, name: &str) -> bool {
        match self {
            DataCategory::Browsing => name == "browsing",
            DataCategory::Purchase => name == "purchase",
            DataCategory::DeclaredPreference => name == "declared_preference",
            DataCategory::Contact => name == "contact",
            DataCategory::Location => name == "location",
            DataCategory::Demographic => name == "demographic",
            DataCategory::Device => name == "device",
            DataCategory::Sensitive(kind) => name.strip_prefix("sensitive:") == Some(kind),
        }
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataCategory::Browsing => f.write_str("browsing"),
            DataCategory::Purchase => f.write_str("purchase"),
            DataCategory::DeclaredPreference => f.write_str("declared_preference"),
            DataCategory::Contact => f.write_str("contact"),
            DataCategory::Location => f.write_str("location"),
            DataCategory::Demographic => f.write_str("demographic"),
            DataCategory::Device => f.write_str("device"),
            DataCategory::Sensitive(kind) => write!(f, "sensitive:{kind}"),
        }
    }
}

/// The legal ground a purpose rests on. Only `Consent` needs a recorded opt-in; `Contract` and
/// `LegalObligation` are strictly necessary; `LegitimateInterest` holds until the person objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    LegitimateInterest,
    Contract,
    LegalObligation,
}

impl LegalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::LegitimateInterest => "legitimate_interest",
            LegalBasis::Contract => "contract",
            LegalBasis::LegalObligation => "legal_obligation",
        }
    }
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "consent" => Ok(LegalBasis::Consent),
            "legitimate_interest" => Ok(LegalBasis::LegitimateInterest),
            "contract" => Ok(LegalBasis::Contract),
            "legal_obligation" => Ok(LegalBasis::LegalObligation),
            _ => Err(DomainError::invalid(
                "legal_basis",
                format!(
                    "`{s}` is not one of consent, legitimate_interest, contract, legal_obligation"
                ),
            )),
        }
    }
    /// Strictly necessary purposes run without any consent record and cannot be opted out of.
    pub fn is_strictly_necessary(self) -> bool {
        matches!(self, LegalBasis::Contract | LegalBasis::LegalObligation)
    }
}

/// A declared purpose as stored. `version` increases on every material change, which asks every
/// subject who consented to an earlier version for fresh consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    pub id: PurposeId,
    pub title: String,
    pub description: String,
    pub legal_basis: LegalBasis,
    pub categories: Vec<DataCategory>,
    pub version: u32,
    /// Days after which a grant lapses and the person is asked to renew it.
    pub expires_after_days: Option<u32>,
    /// The purpose sells or shares data; GPC (`Sec-GPC: 1`) and DNT (`DNT: 1`) opt out of it.
    pub sale_or_sharing: bool,
    /// The purpose is non-essential tracking; GPC and DNT opt out of it.
    pub non_essential_tracking: bool,
    /// The purpose looks at the person: its permit may shape a person-level profile and
    /// segment membership. `false` (the default, and what a stored purpose without the field
    /// reads as): aggregate-only, its data feeds only aggregates. Strictly necessary purposes are
    /// never person-level (see [`PurposeDraft::validate`]).
    #[serde(default)]
    pub person_level: bool,
    /// What changed in the latest material change, in words a subject can read.
    pub change_note: Option<String>,
}

/// A purpose as an administrator submits it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeDraft {
    pub id: String,
    pub title: String,
    pub description: String,
    pub legal_basis: String,
    pub categories: Vec<String>,
    #[serde(default)]
    pub expires_after_days: Option<u32>,
    #[serde(default)]
    pub sale_or_sharing: bool,
    #[serde(default)]
    pub non_essential_tracking: bool,
    /// Whether the purpose may build a person-level profile (default `false`: aggregate-only).
    #[serde(default)]
    pub person_level: bool,
    /// What changed, shown to subjects when the change is material. Optional.
    #[serde(default)]
    pub change_note: Option<String>,
}

fn plain_text(field: &str, s: &str, max: usize) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

impl PurposeDraft {
    /// Validates the draft into a purpose at `version` 1. Use [`Purpose::revise`] for updates.
    pub fn validate(&self) -> Result<Purpose, DomainError> {
        let id = PurposeId::parse(&self.id)?;
        let title = plain_text("title", &self.title, 120)?;
        let description = plain_text("description", &self.description, 2000)?;
        let legal_basis = LegalBasis::parse(&self.legal_basis)?;
        if self.categories.is_empty() {
            return Err(DomainError::invalid(
                "categories",
                "a purpose must name at least one data category",
            ));
        }
        let mut categories = self
            .categories
            .iter()
            .map(|c| DataCategory::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        categories.sort();
        categories.dedup();
        if let Some(0) = self.expires_after_days {
            return Err(DomainError::invalid(
                "expires_after_days",
                "must be at least 1 day",
            ));
        }
        if legal_basis.is_strictly_necessary()
            && (self.sale_or_sharing || self.non_essential_tracking)
        {
            return Err(DomainError::invalid(
                "legal_basis",
                "a strictly necessary purpose cannot be sale/sharing or non-essential tracking",
            ));
        }
        if legal_basis.is_strictly_necessary() && self.person_level {
            return Err(DomainError::invalid(
                "person_level",
                "a strictly necessary purpose cannot build person-level profiles: the person \
                 cannot refuse it",
            ));
        }
        let change_note = match &self.change_note {
            Some(n) => Some(plain_text("change_note", n, 1000)?),
            None => None,
        };
        Ok(Purpose {
            id,
            title,
            description,
            legal_basis,
            categories,
            version: 1,
            expires_after_days: self.expires_after_days,
            sale_or_sharing: self.sale_or_sharing,
            non_essential_tracking: self.non_essential_tracking,
            person_level: self.person_level,
            change_note,
        })
    }
}

impl Purpose {
    /// Applies an update. A material change (a new data category, a different legal basis, newly
    /// selling/sharing or tracking, newly person-level) bumps the version so earlier consents stop counting; wording
    /// changes keep it. Returns the new purpose and whether the change was material.
    pub fn revise(&self, draft: &PurposeDraft) -> Result<(Purpose, bool), DomainError> {
        let mut next = draft.validate()?;
        if next.id != self.id {
            return Err(DomainError::invalid(
                "id",
                "the id in the body must match the purpose being updated",
            ));
        }
        let new_category = next.categories.iter().any(|c| !self.categories.contains(c));
        let material = new_category
            || next.legal_basis != self.legal_basis
            || (next.sale_or_sharing && !self.sale_or_sharing)
            || (next.non_essential_tracking && !self.non_essential_tracking)
            || (next.person_level && !self.person_level);
        if material {
            next.version = self.version + 1;
            if next.change_note.is_none() {
                next.change_note = Some(self.describe_change(&next));
            }
        } else {
            next.version = self.version;
            next.change_note = self.change_note.clone();
        }
        Ok((next, material))
    }

    fn describe_change(&self, next: &Purpose) -> String {
        let mut parts = Vec::new();
        let added: Vec<String> = next
            .categories
            .iter()
            .filter(|c| !self.categories.contains(c))
            .map(|c| c.to_string())
            .collect();
        if !added.is_empty() {
            parts.push(format!("it now also uses {} data", added.join(", ")));
        }
        if next.legal_basis != self.legal_basis {
            parts.push(format!(
                "its legal basis is now {}",
                next.legal_basis.as_str()
            ));
        }
        if next.sale_or_sharing && !self.sale_or_sharing {
            parts.push("it now shares data with third parties".to_owned());
        }
        if next.non_essential_tracking && !self.non_essential_tracking {
            parts.push("it now includes non-essential tracking".to_owned());
        }
        if next.person_level && !self.person_level {
            parts.push("it now builds a profile of you as a person".to_owned());
        }
        format!("\"{}\" changed: {}.", next.title, parts.join("; "))
    }

    /// Whether a permit for this purpose may shape a person-level profile on its own.
    pub fn builds_person_profile(&self) -> bool {
        self.person_level && !self.legal_basis.is_strictly_necessary()
    }

    pub fn may_use(&self, category: &DataCategory) -> bool {
        self.categories.contains(category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn draft() -> PurposeDraft {
        PurposeDraft {
            id: "personalization".into(),
            title: "Personal recommendations".into(),
            description: "We use what you browse and buy to suggest products.".into(),
            legal_basis: "consent".into(),
            categories: vec!["browsing".into(), "purchase".into()],
            ..Default::default()
        }
    }

    #[test]
    fn validates_ids_and_categories() {
        assert!(PurposeId::parse("ads_sharing-2").is_ok());
        for bad in ["", "Ads", "a b", &"x".repeat(65)] {
            assert!(PurposeId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DataCategory::parse("sensitive:health").unwrap(),
            DataCategory::Sensitive("health".into())
        );
        assert!(DataCategory::parse("sensitive:").is_err());
        assert!(DataCategory::parse("gossip").is_err());
        let mut d = draft();
        d.categories.clear();
        assert!(
            matches!(d.validate(), Err(DomainError::Invalid { field, .. }) if field == "categories")
        );
        let mut d = draft();
        d.title = "  ".into();
        assert!(d.validate().is_err());
    }

    #[test]
    fn new_category_is_material_wording_is_not() {
        let p = draft().validate().unwrap();
        let mut wording = draft();
        wording.description = "Clearer words.".into();
        let (same, material) = p.revise(&wording).unwrap();
        assert!(!material);
        assert_eq!(same.version, 1);

        let mut wider = draft();
        wider.categories.push("location".into());
        let (next, material) = p.revise(&wider).unwrap();
        assert!(material);
        assert_eq!(next.version, 2);
        assert!(next.change_note.unwrap().contains("location"));

        let mut narrower = draft();
        narrower.categories = vec!["browsing".into()];
        assert!(
            !p.revise(&narrower).unwrap().1,
            "dropping a category asks nothing new of people"
        );
    }

    #[test]
    fn becoming_person_level_is_material_and_necessary_purposes_cannot_be() {
        let aggregate = draft().validate().unwrap();
        assert!(!aggregate.person_level, "aggregate-only unless declared");
        assert!(!aggregate.builds_person_profile());
        let mut personal = draft();
        personal.person_level = true;
        let (next, material) = aggregate.revise(&personal).unwrap();
        assert!(material, "a new use of the data asks for fresh consent");
        assert_eq!(next.version, 2);
        assert!(next.change_note.as_deref().unwrap().contains("as a person"));
        assert!(next.builds_person_profile());
        let (back, material) = next.revise(&draft()).unwrap();
        assert!(!material, "becoming aggregate-only asks nothing new");
        assert_eq!(back.version, 2);

        let mut necessary = personal.clone();
        necessary.legal_basis = "contract".into();
        assert!(matches!(necessary.validate(),
            Err(DomainError::Invalid { field, .. }) if field == "person_level"));

        // A purpose stored before the flag existed reads as aggregate-only.
        let mut body = serde_json::to_value(&next).unwrap();
        body.as_object_mut().unwrap().remove("person_level");
        let old: Purpose = serde_json::from_value(body).unwrap();
        assert!(!old.person_level);
    }
}
