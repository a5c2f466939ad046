//! The data inventory (tracking plan) and minimization.
//!
//! Invariants:
//! - Nothing undeclared is kept: an event type/name missing from the inventory is rejected or
//!   quarantined (by policy), and an undeclared property is dropped before storage.
//! - A declared property is kept only if the subject's [`Permit`](crate::Permit) for one of the
//!   purposes it is declared for covers the property's data category; the event itself is kept
//!   only if its own category passes the same gate. This is the consent gate of ingestion.
//! - Protected attributes (declared `protected = true`) are never part of the behavioral record:
//!   they are returned separately for the fairness-audit table.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{DataCategory, DomainError, Permits, Purpose, PurposeId};

/// What to do with events the inventory does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndeclaredEvents {
    #[default]
    Reject,
    Quarantine,
}

/// One declared property (or trait).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    pub category: DataCategory,
    /// Purposes that may use this property.
    pub purposes: Vec<PurposeId>,
    /// Held only for fairness audits, apart from behavioral data (e.g. gender, age band).
    #[serde(default)]
    pub protected: bool,
}

/// One declared event: its own category and purposes, and its properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub category: DataCategory,
    pub purposes: Vec<PurposeId>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
}

/// The whole tracking plan. Event keys are `track:<event name>`, `page`, `screen`, `group`;
/// `traits` covers `identify` traits; `context` covers context fields (e.g. `ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub undeclared_events: UndeclaredEvents,
    #[serde(default)]
    pub events: BTreeMap<String, EventSpec>,
    #[serde(default)]
    pub traits: BTreeMap<String, PropertySpec>,
    #[serde(default)]
    pub context: BTreeMap<String, PropertySpec>,
}

impl Inventory {
    /// Checks names and that every referenced purpose is declared.
    pub fn validate(&self, purposes: &BTreeMap<PurposeId, Purpose>) -> Result<(), DomainError> {
        let check_purposes =
            |at: &str, category: &DataCategory, ids: &[PurposeId]| -> Result<(), DomainError> {
                if ids.is_empty() {
                    return Err(DomainError::invalid(at, "must name at least one purpose"));
                }
                for id in ids {
                    let p = purposes
                        .get(id)
                        .ok_or_else(|| DomainError::UnknownPurpose(id.to_string()))?;
                    if !p.may_use(category) {
                        return Err(DomainError::invalid(
                            at,
                            format!("purpose `{id}` does not cover category `{category}`"),
                        ));
                    }
                }
                Ok(())
            };
        let check_name = |at: &str, name: &str| -> Result<(), DomainError> {
            if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    at,
                    "names must be 1-200 characters without control characters",
                ));
            }
            Ok(())
        };
        for (key, e) in &self.events {
            check_name("events", key)?;
            let valid_key = matches!(key.as_str(), "page" | "screen" | "group")
                || key.strip_prefix("track:").is_some_and(|n| !n.is_empty());
            if !valid_key {
                return Err(DomainError::invalid(
                    format!("events.{key}"),
                    "event keys are `track:<name>`, `page`, `screen` or `group`",
                ));
            }
            check_purposes(&format!("events.{key}.purposes"), &e.category, &e.purposes)?;
            for (name, p) in &e.properties {
                check_name(&format!("events.{key}.properties"), name)?;
                check_purposes(
                    &format!("events.{key}.properties.{name}.purposes"),
                    &p.category,
                    &p.purposes,
                )?;
            }
        }
        for (section, map) in [("traits", &self.traits), ("context", &self.context)] {
            for (name, p) in map {
                check_name(section, name)?;
                check_purposes(
                    &format!("{section}.{name}.purposes"),
                    &p.category,
                    &p.purposes,
                )?;
            }
        }
        Ok(())
    }
}

/// Why a property was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    Undeclared,
    NoConsent,
}

/// A property that passed the gate, with the purpose that allowed it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptProperty<'a> {
    pub name: &'a str,
    pub value: &'a serde_json::Value,
    pub category: &'a DataCategory,
    pub purpose: &'a PurposeId,
}

/// The result of minimizing one set of properties.
#[derive(Debug, Default, PartialEq)]
pub struct Minimized<'a> {
    pub kept: Vec<KeptProperty<'a>>,
    pub protected: Vec<(&'a str, &'a serde_json::Value)>,
    pub dropped: Vec<(&'a str, DropReason)>,
}

/// Applies the inventory and the consent gate to a JSON object of properties: a declared
/// property is kept under the first of its purposes that the subject's `permits` cover.
pub fn minimize<'a>(
    props: &'a serde_json::Map<String, serde_json::Value>,
    specs: &'a BTreeMap<String, PropertySpec>,
    permits: &Permits<'_>,
) -> Minimized<'a> {
    let mut out = Minimized::default();
    for (name, value) in props {
        match specs.get(name) {
            None => out.dropped.push((name, DropReason::Undeclared)),
            Some(spec) if spec.protected => out.protected.push((name, value)),
            Some(spec) => match permits.first_covering(&spec.purposes, &spec.category) {
                Some(purpose) => out.kept.push(KeptProperty {
                    name,
                    value,
                    category: &spec.category,
                    purpose,
                }),
                None => out.dropped.push((name, DropReason::NoConsent)),
            },
        }
    }
    out
}

/// Counts per event key of what was kept and dropped, for `GET /v1/admin/inventory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub events_stored: u64,
    pub events_without_consent: u64,
    pub events_quarantined: u64,
    pub events_rejected: u64,
    pub properties_kept: u64,
    pub properties_dropped: HashMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::tests_support::{self, granted};

    fn purposes() -> BTreeMap<PurposeId, Purpose> {
        tests_support::purposes(&[
            tests_support::purpose("personalization", "consent", &["browsing", "purchase"]),
            tests_support::purpose("fulfilment", "contract", &["purchase", "contact"]),
        ])
    }

    fn spec(cat: &str, purposes: &[&str]) -> PropertySpec {
        PropertySpec {
            category: DataCategory::parse(cat).unwrap(),
            purposes: purposes
                .iter()
                .map(|p| PurposeId::parse(p).unwrap())
                .collect(),
            protected: false,
        }
    }

    #[test]
    fn undeclared_and_unconsented_properties_are_dropped() {
        let ps = purposes();
        let specs: BTreeMap<String, PropertySpec> = [
            ("sku".to_string(), spec("browsing", &["personalization"])),
            ("email".to_string(), spec("contact", &["fulfilment"])),
            (
                "gender".to_string(),
                PropertySpec {
                    protected: true,
                    ..spec("demographic", &["personalization"])
                },
            ),
        ]
        .into();
        let props =
            serde_json::json!({"sku": "A1", "email": "a@b.c", "shoe_size": 42, "gender": "f"});
        let props = props.as_object().unwrap();
        let key = crate::SubjectKey::parse(&"a".repeat(64)).unwrap();
        let none = crate::SubjectConsents::default().permits(&key, ps.values(), 0);
        let m = minimize(props, &specs, &none);
        let kept: Vec<_> = m.kept.iter().map(|k| k.name).collect();
        assert_eq!(kept, ["email"], "contract purposes need no consent");
        assert!(
            m.dropped.contains(&("sku", DropReason::NoConsent))
                && m.dropped.contains(&("shoe_size", DropReason::Undeclared))
        );
        assert_eq!(m.protected.len(), 1);
        let yes = granted("personalization").permits(&key, ps.values(), 0);
        let m = minimize(props, &specs, &yes);
        assert_eq!(m.kept.len(), 2);
    }

    #[test]
    fn validation_names_the_bad_declaration() {
        let ps = purposes();
        let mut inv = Inventory::default();
        inv.events.insert(
            "track:Order Completed".into(),
            EventSpec {
                category: DataCategory::Purchase,
                purposes: vec![PurposeId::parse("fulfilment").unwrap()],
                properties: BTreeMap::new(),
            },
        );
        assert!(inv.validate(&ps).is_ok());
        inv.events.insert(
            "click".into(),
            EventSpec {
                category: DataCategory::Browsing,
                purposes: vec![PurposeId::parse("personalization").unwrap()],
                properties: BTreeMap::new(),
            },
        );
        assert!(
            inv.validate(&ps)
                .unwrap_err()
                .to_string()
                .contains("events.click")
        );
        inv.events.remove("click");
        inv.traits
            .insert("email".into(), spec("contact", &["personalization"]));
        assert!(
            inv.validate(&ps)
                .unwrap_err()
                .to_string()
                .contains("does not cover")
        );
    }
}
