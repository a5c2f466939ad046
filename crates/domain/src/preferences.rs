//! A person's own controls: personalization level, declared interests, sensitive opt-ins,
//! quiet periods.
//!
//! Invariants: new subjects start at `basic`; only the person moves to `full`. A quiet period only
//! takes personalization away (serving falls back to non-personal while it lasts). Sensitive
//! categories are used only if listed in `sensitive_opt_ins`. Every change says where the person
//! made it ([`PreferenceSource`]), kept in its audit entry. Hidden items (from the person's
//! "not for me" feedback) are declared preference data: serving applies them only where it may
//! use declared preferences, and a replacement that does not name them keeps them.

use serde::{Deserialize, Serialize};

use crate::{DomainError, Micros};

/// How much of a person's data personalization may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Non-personal only.
    Off,
    /// Declared preferences and categories only.
    #[default]
    Basic,
    /// Individual behavior too.
    Full,
}

impl Level {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "off" => Ok(Level::Off),
            "basic" => Ok(Level::Basic),
            "full" => Ok(Level::Full),
            _ => Err(DomainError::invalid(
                "level",
                format!("`{s}` is not off, basic or full"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Basic => "basic",
            Level::Full => "full",
        }
    }
    /// One step down, for "too personal" feedback.
    pub fn lower(self) -> Level {
        match self {
            Level::Full => Level::Basic,
            _ => Level::Off,
        }
    }
}

/// Where a person changed their preferences: a choice of theirs, made in the shop's preference
/// center, sent by the shop's backend on their behalf, or imported from an earlier system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceSource {
    PreferenceCenter,
    Api,
    Import,
    /// "Too personal" or "not for me" feedback on an answer (never given by a client).
    Feedback,
}

impl PreferenceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PreferenceSource::PreferenceCenter => "preference_center",
            PreferenceSource::Api => "api",
            PreferenceSource::Import => "import",
            PreferenceSource::Feedback => "feedback",
        }
    }
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "preference_center" => Ok(PreferenceSource::PreferenceCenter),
            "api" => Ok(PreferenceSource::Api),
            "import" => Ok(PreferenceSource::Import),
            _ => Err(DomainError::invalid(
                "source",
                format!("`{s}` is not preference_center, api or import"),
            )),
        }
    }
}

/// A partial change: only the fields given replace the current ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferencesPatch {
    pub level: Option<Level>,
    pub declared_interests: Option<Vec<String>>,
    pub sensitive_opt_ins: Option<Vec<String>>,
    pub quiet_periods: Option<Vec<QuietPeriod>>,
    pub hidden_items: Option<Vec<String>>,
}

impl PreferencesPatch {
    /// The preferences after this change; validate them as a full replacement would be.
    pub fn apply(self, current: &Preferences) -> Preferences {
        Preferences {
            level: self.level.unwrap_or(current.level),
            declared_interests: self
                .declared_interests
                .unwrap_or_else(|| current.declared_interests.clone()),
            sensitive_opt_ins: self
                .sensitive_opt_ins
                .unwrap_or_else(|| current.sensitive_opt_ins.clone()),
            quiet_periods: self
                .quiet_periods
                .unwrap_or_else(|| current.quiet_periods.clone()),
            hidden_items: self
                .hidden_items
                .unwrap_or_else(|| current.hidden_items.clone()),
        }
    }

    /// The names of the fields this change sets.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("level", self.level.is_some()),
            ("declared_interests", self.declared_interests.is_some()),
            ("sensitive_opt_ins", self.sensitive_opt_ins.is_some()),
            ("quiet_periods", self.quiet_periods.is_some()),
            ("hidden_items", self.hidden_items.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect()
    }
}

/// A time range during which the person wants no personalization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietPeriod {
    pub from: Micros,
    pub until: Micros,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub level: Level,
    /// Catalog category ids the person said they like.
    pub declared_interests: Vec<String>,
    /// Sensitive catalog categories the person explicitly allows.
    pub sensitive_opt_ins: Vec<String>,
    pub quiet_periods: Vec<QuietPeriod>,
    /// Catalog item ids the person marked thumbs down or not relevant, newest last, at most
    /// [`MAX_HIDDEN`]: never recommended to them while declared preferences may be used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_items: Vec<String>,
}

pub const MAX_LIST: usize = 50;
/// Most hidden items kept; hiding one more forgets the oldest.
pub const MAX_HIDDEN: usize = 500;

impl Preferences {
    /// These preferences with `item` hidden (moved to the newest place if it already was),
    /// keeping at most [`MAX_HIDDEN`].
    pub fn hiding(&self, item: &str) -> Preferences {
        let mut next = self.clone();
        next.hidden_items.retain(|i| i != item);
        next.hidden_items.push(item.to_owned());
        let over = next.hidden_items.len().saturating_sub(MAX_HIDDEN);
        next.hidden_items.drain(..over);
        next
    }

    /// The quiet period in force at `now`, if any.
    pub fn quiet_at(&self, now: Micros) -> Option<&QuietPeriod> {
        self.quiet_periods
            .iter()
            .find(|q| q.from <= now && now < q.until)
    }

    /// Checks lists against the catalog: `category_known(id)` and `is_sensitive(id)`.
    pub fn validate(
        &self,
        category_known: impl Fn(&str) -> bool,
        is_sensitive: impl Fn(&str) -> bool,
    ) -> Result<(), DomainError> {
        for (field, list) in [
            ("declared_interests", &self.declared_interests),
            ("sensitive_opt_ins", &self.sensitive_opt_ins),
        ] {
            if list.len() > MAX_LIST {
                return Err(DomainError::invalid(
                    field,
                    format!("at most {MAX_LIST} entries"),
                ));
            }
            for c in list {
                if !category_known(c) {
                    return Err(DomainError::invalid(
                        field,
                        format!("`{c}` is not a catalog category"),
                    ));
                }
            }
        }
        if let Some(c) = self.sensitive_opt_ins.iter().find(|c| !is_sensitive(c)) {
            return Err(DomainError::invalid(
                "sensitive_opt_ins",
                format!("`{c}` is not a sensitive category; it needs no opt-in"),
            ));
        }
        if self.hidden_items.len() > MAX_HIDDEN {
            return Err(DomainError::invalid(
                "hidden_items",
                format!("at most {MAX_HIDDEN} entries"),
            ));
        }
        if self
            .hidden_items
            .iter()
            .any(|i| i.is_empty() || i.len() > 200)
        {
            return Err(DomainError::invalid(
                "hidden_items",
                "each entry is an item id of 1 to 200 bytes",
            ));
        }
        if self.quiet_periods.len() > MAX_LIST {
            return Err(DomainError::invalid(
                "quiet_periods",
                format!("at most {MAX_LIST} entries"),
            ));
        }
        for q in &self.quiet_periods {
            if q.until <= q.from {
                return Err(DomainError::invalid(
                    "quiet_periods",
                    "each period must end after it starts",
                ));
            }
            if q.label
                .as_ref()
                .is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control))
            {
                return Err(DomainError::invalid(
                    "quiet_periods.label",
                    "at most 100 characters without control characters",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_only_what_it_names_and_sources_are_checked() {
        let current = Preferences {
            level: Level::Basic,
            declared_interests: vec!["garden".into()],
            sensitive_opt_ins: vec!["pharmacy".into()],
            quiet_periods: vec![QuietPeriod {
                from: 1,
                until: 2,
                label: None,
            }],
            hidden_items: vec![],
        };
        let patch = PreferencesPatch {
            level: Some(Level::Full),
            ..Default::default()
        };
        assert_eq!(patch.fields(), ["level"]);
        let next = patch.apply(&current);
        assert_eq!(
            next,
            Preferences {
                level: Level::Full,
                ..current.clone()
            }
        );
        let cleared = PreferencesPatch {
            quiet_periods: Some(vec![]),
            ..Default::default()
        }
        .apply(&current);
        assert!(cleared.quiet_periods.is_empty() && cleared.level == Level::Basic);
        assert_eq!(
            PreferenceSource::parse("preference_center")
                .unwrap()
                .as_str(),
            "preference_center"
        );
        for bad in ["gpc", "banner", ""] {
            assert!(matches!(PreferenceSource::parse(bad),
                Err(DomainError::Invalid { field, .. }) if field == "source"));
        }
    }

    #[test]
    fn defaults_levels_and_validation() {
        let p = Preferences::default();
        assert_eq!(p.level, Level::Basic, "new subjects start at basic");
        assert_eq!(Level::Full.lower(), Level::Basic);
        assert!(Level::parse("max").is_err());
        let known = |c: &str| ["garden", "pharmacy"].contains(&c);
        let sensitive = |c: &str| c == "pharmacy";
        let mut p = Preferences {
            declared_interests: vec!["garden".into()],
            sensitive_opt_ins: vec!["pharmacy".into()],
            ..Default::default()
        };
        assert!(p.validate(known, sensitive).is_ok());
        p.sensitive_opt_ins = vec!["garden".into()];
        assert!(
            p.validate(known, sensitive)
                .unwrap_err()
                .to_string()
                .contains("not a sensitive")
        );
        p.sensitive_opt_ins.clear();
        p.declared_interests = vec!["moon".into()];
        assert!(p.validate(known, sensitive).is_err());
        p.declared_interests.clear();
        p.quiet_periods = vec![QuietPeriod {
            from: 10,
            until: 5,
            label: None,
        }];
        assert!(p.validate(known, sensitive).is_err());
        p.quiet_periods = vec![QuietPeriod {
            from: 10,
            until: 20,
            label: Some("Mother's Day".into()),
        }];
        assert_eq!(
            p.quiet_at(15).unwrap().label.as_deref(),
            Some("Mother's Day")
        );
        assert!(p.quiet_at(20).is_none());
    }
}
