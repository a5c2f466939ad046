//! Feedback a person gives on an answer Candor made for them, and what it changes.
//!
//! Invariants:
//! - "Too personal" lowers the person's level one step at once, whatever their consents say:
//!   it only ever takes personalization away, and it is the person asking.
//! - Thumbs down and "not relevant" hide that item from the person. A hidden item is declared
//!   preference data, so it is recorded only with a permit that covers declared preferences;
//!   without one the feedback is kept (the person may see and erase it) but changes nothing.
//! - Only a complaint carries text, and it must.

use serde::{Deserialize, Serialize};

use crate::preferences::{Level, Preferences};
use crate::{DomainError, named};

/// Longest complaint text kept, in characters.
pub const MAX_COMPLAINT: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    ThumbsUp,
    ThumbsDown,
    NotRelevant,
    /// "Too personal / how did you know that?"
    TooPersonal,
    Complaint,
}

impl FeedbackKind {
    pub const ALL: [FeedbackKind; 5] = [
        FeedbackKind::ThumbsUp,
        FeedbackKind::ThumbsDown,
        FeedbackKind::NotRelevant,
        FeedbackKind::TooPersonal,
        FeedbackKind::Complaint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::ThumbsUp => "thumbs_up",
            FeedbackKind::ThumbsDown => "thumbs_down",
            FeedbackKind::NotRelevant => "not_relevant",
            FeedbackKind::TooPersonal => "too_personal",
            FeedbackKind::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "kind", s)
    }

    /// Whether this kind is about one item of the answer (and so needs its id).
    pub fn needs_item(self) -> bool {
        matches!(
            self,
            FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown | FeedbackKind::NotRelevant
        )
    }
}

/// Checks the text that goes with a kind: a complaint needs 1 to [`MAX_COMPLAINT`] characters
/// without control characters (newlines and tabs allowed); other kinds take none.
pub fn check_text(kind: FeedbackKind, text: Option<&str>) -> Result<(), DomainError> {
    match (kind, text.map(str::trim)) {
        (FeedbackKind::Complaint, None | Some("")) => Err(DomainError::invalid(
            "text",
            "a complaint needs its text: what went wrong",
        )),
        (FeedbackKind::Complaint, Some(t)) => {
            if t.chars().count() > MAX_COMPLAINT {
                Err(DomainError::invalid(
                    "text",
                    format!("at most {MAX_COMPLAINT} characters"),
                ))
            } else if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                Err(DomainError::invalid(
                    "text",
                    "control characters are not allowed",
                ))
            } else {
                Ok(())
            }
        }
        (_, Some(_)) => Err(DomainError::invalid(
            "text",
            format!("only a complaint carries text, not {}", kind.as_str()),
        )),
        (_, None) => Ok(()),
    }
}

/// What a piece of feedback does to the person's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// The preferences to store, when they change.
    pub preferences: Option<Preferences>,
    /// Plain-language lines for the answer: what changed, or why nothing did.
    pub applied: Vec<String>,
    pub level_before: Level,
    pub level_after: Level,
}

/// The effect of `kind` on `item` given the person's current preferences, and whether a permit
/// covering declared preferences exists now.
pub fn effect(
    kind: FeedbackKind,
    item: Option<&str>,
    current: &Preferences,
    declared_permitted: bool,
) -> Effect {
    let mut applied = Vec::new();
    let mut next: Option<Preferences> = None;
    match kind {
        FeedbackKind::TooPersonal => {
            let lower = current.level.lower();
            if lower == current.level {
                applied.push("personalization is already off".to_owned());
            } else {
                applied.push(format!(
                    "personalization lowered from {} to {}",
                    current.level.as_str(),
                    lower.as_str()
                ));
                next = Some(Preferences {
                    level: lower,
                    ..current.clone()
                });
            }
        }
        FeedbackKind::ThumbsDown | FeedbackKind::NotRelevant => match item {
            Some(item) if declared_permitted => {
                applied.push(format!("`{item}` will not be recommended to you again"));
                next = Some(current.hiding(item));
            }
            Some(_) => applied.push(
                "recorded, but not used to change your recommendations: there is no consent to \
                 use your declared preferences"
                    .to_owned(),
            ),
            None => {}
        },
        FeedbackKind::ThumbsUp => applied.push("thanks: recorded".to_owned()),
        FeedbackKind::Complaint => {
            applied.push("your complaint is recorded for a person to read".to_owned())
        }
    }
    Effect {
        level_before: current.level,
        level_after: next.as_ref().map_or(current.level, |p| p.level),
        preferences: next,
        applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_personal_steps_down_even_without_consent_and_stops_at_off() {
        let full = Preferences {
            level: Level::Full,
            ..Default::default()
        };
        let e = effect(FeedbackKind::TooPersonal, None, &full, false);
        assert_eq!(e.level_after, Level::Basic);
        assert_eq!(e.preferences.unwrap().level, Level::Basic);
        let off = Preferences {
            level: Level::Off,
            ..Default::default()
        };
        let e = effect(FeedbackKind::TooPersonal, None, &off, true);
        assert!(e.preferences.is_none());
        assert_eq!(e.level_after, Level::Off);
    }

    #[test]
    fn hiding_needs_a_declared_permit_and_keeps_the_newest() {
        let p = Preferences::default();
        let e = effect(FeedbackKind::NotRelevant, Some("i1"), &p, false);
        assert!(e.preferences.is_none());
        assert!(e.applied[0].contains("no consent"));
        let e = effect(FeedbackKind::ThumbsDown, Some("i1"), &p, true);
        assert_eq!(e.preferences.unwrap().hidden_items, ["i1"]);
        let mut many = Preferences::default();
        for i in 0..crate::preferences::MAX_HIDDEN + 3 {
            many = many.hiding(&format!("i{i}"));
        }
        assert_eq!(many.hidden_items.len(), crate::preferences::MAX_HIDDEN);
        assert_eq!(many.hidden_items[0], "i3");
        let again = many.hiding("i3");
        assert_eq!(again.hidden_items.last().unwrap(), "i3");
        assert_eq!(again.hidden_items.len(), crate::preferences::MAX_HIDDEN);
    }

    #[test]
    fn only_a_complaint_carries_text() {
        assert!(check_text(FeedbackKind::Complaint, Some("rude email")).is_ok());
        for (kind, text) in [
            (FeedbackKind::Complaint, None),
            (FeedbackKind::Complaint, Some("  ")),
            (FeedbackKind::ThumbsUp, Some("nice")),
            (FeedbackKind::Complaint, Some("bell\u{7}")),
        ] {
            assert!(
                matches!(check_text(kind, text), Err(DomainError::Invalid { field, .. }) if field == "text"),
                "{kind:?} {text:?}"
            );
        }
        let long = "x".repeat(MAX_COMPLAINT + 1);
        assert!(check_text(FeedbackKind::Complaint, Some(&long)).is_err());
        assert!(FeedbackKind::parse("too_personal").is_ok());
        assert!(FeedbackKind::parse("meh").is_err());
    }
}
