//! The human review queue's rules: which actions wait for a person, and how a person decides.
//!
//! Invariants:
//! - An action of a kind with no configured rule waits for review ([`RuleMode::default`]).
//! - Only a pending item is decided, once, by someone other than its requester, with a reason.
//!   No scope bypasses this; the one exception is a break-glass override, which needs a reason
//!   too, is recorded as such (never as an approval), and notifies the other reviewers.

use serde::{Deserialize, Serialize};

use crate::{DomainError, named};

/// The kinds of action that can be held for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// Serving a newly trained (or re-activated) model version.
    ModelActivation,
}

impl ReviewKind {
    pub const ALL: [ReviewKind; 1] = [ReviewKind::ModelActivation];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::ModelActivation => "model_activation",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "kind", s)
    }
}

/// What a rule does with an action of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleMode {
    /// Takes effect at once (recorded, not held).
    Apply,
    /// Waits for a person.
    #[default]
    Review,
    /// Refused outright.
    Block,
}

impl RuleMode {
    pub const ALL: [RuleMode; 3] = [RuleMode::Apply, RuleMode::Review, RuleMode::Block];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Apply => "apply",
            RuleMode::Review => "review",
            RuleMode::Block => "block",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, field, s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Approved,
    Rejected,
    /// Put into effect without a second person, by break-glass.
    Overridden,
}

impl ReviewState {
    pub const ALL: [ReviewState; 4] = [
        ReviewState::Pending,
        ReviewState::Approved,
        ReviewState::Rejected,
        ReviewState::Overridden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
            ReviewState::Overridden => "overridden",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "state", s)
    }

    /// Whether the held action takes effect in this state.
    pub fn takes_effect(self) -> bool {
        matches!(self, ReviewState::Approved | ReviewState::Overridden)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
    /// Break glass: put the action into effect alone, in an emergency.
    Override,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Approve, Verdict::Reject, Verdict::Override];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::Override => "override",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "verdict", s)
    }
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a reason is required ({MIN_REASON} characters or more)")]
    ReasonRequired,
    #[error("already {}", .0.as_str())]
    AlreadyDecided(ReviewState),
    #[error("nobody reviews their own request; another reviewer must decide (or break glass)")]
    OwnRequest,
}

impl Refusal {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::ReasonRequired => "reason_required",
            Refusal::AlreadyDecided(_) => "already_decided",
            Refusal::OwnRequest => "own_request",
        }
    }
}

/// Shortest reason accepted, in characters: long enough that "ok" is not a reason.
pub const MIN_REASON: usize = 10;
/// Longest reason kept, in characters.
pub const MAX_REASON: usize = 2000;

/// The person behind an audit actor: `holder:WHO` for `holder:WHO/key:ID` (a key created for a
/// named person), else the actor itself (`key:ID`, `cli`, `scheduler`).
pub fn identity(actor: &str) -> &str {
    match actor.strip_prefix("holder:") {
        Some(_) => actor.split_once("/key:").map_or(actor, |(who, _)| who),
        None => actor,
    }
}

/// The state after `actor` gives `verdict` on an item in `state` requested by `requested_by`.
pub fn decide(
    state: ReviewState,
    requested_by: &str,
    actor: &str,
    verdict: Verdict,
    reason: &str,
) -> Result<ReviewState, Refusal> {
    if state != ReviewState::Pending {
        return Err(Refusal::AlreadyDecided(state));
    }
    let reason = reason.trim();
    if reason.chars().count() < MIN_REASON
        || reason.chars().count() > MAX_REASON
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Refusal::ReasonRequired);
    }
    match verdict {
        Verdict::Override => Ok(ReviewState::Overridden),
        _ if identity(requested_by) == identity(actor) => Err(Refusal::OwnRequest),
        Verdict::Approve => Ok(ReviewState::Approved),
        Verdict::Reject => Ok(ReviewState::Rejected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHY: &str = "validation NDCG up, fairness unchanged";

    #[test]
    fn only_another_person_decides_a_pending_item_with_a_reason() {
        use ReviewState::*;
        assert_eq!(
            decide(Pending, "key:a", "key:b", Verdict::Approve, WHY),
            Ok(Approved)
        );
        assert_eq!(
            decide(Pending, "key:a", "key:b", Verdict::Reject, WHY),
            Ok(Rejected)
        );
        assert_eq!(
            decide(Pending, "key:a", "key:a", Verdict::Approve, WHY),
            Err(Refusal::OwnRequest)
        );
        assert_eq!(
            decide(Pending, "key:a", "key:a", Verdict::Reject, WHY),
            Err(Refusal::OwnRequest)
        );
        for reason in ["", "ok", "   fine    "] {
            assert_eq!(
                decide(Pending, "key:a", "key:b", Verdict::Approve, reason),
                Err(Refusal::ReasonRequired)
            );
        }
        for done in [Approved, Rejected, Overridden] {
            assert_eq!(
                decide(done, "key:a", "key:b", Verdict::Approve, WHY),
                Err(Refusal::AlreadyDecided(done))
            );
        }
    }

    #[test]
    fn two_keys_of_one_holder_are_one_person() {
        assert_eq!(identity("holder:ann@shop/key:k1"), "holder:ann@shop");
        assert_eq!(identity("key:k1"), "key:k1");
        assert_eq!(
            decide(
                ReviewState::Pending,
                "holder:ann@shop/key:admin1",
                "holder:ann@shop/key:rev1",
                Verdict::Approve,
                WHY
            ),
            Err(Refusal::OwnRequest)
        );
        assert_eq!(
            decide(
                ReviewState::Pending,
                "holder:ann@shop/key:admin1",
                "holder:bob@shop/key:rev2",
                Verdict::Approve,
                WHY
            ),
            Ok(ReviewState::Approved)
        );
    }

    #[test]
    fn break_glass_needs_a_reason_and_is_never_an_approval() {
        assert_eq!(
            decide(
                ReviewState::Pending,
                "key:a",
                "key:a",
                Verdict::Override,
                WHY
            ),
            Ok(ReviewState::Overridden)
        );
        assert_eq!(
            decide(
                ReviewState::Pending,
                "key:a",
                "key:a",
                Verdict::Override,
                "now"
            ),
            Err(Refusal::ReasonRequired)
        );
        assert!(ReviewState::Overridden.takes_effect() && !ReviewState::Rejected.takes_effect());
        assert_eq!(RuleMode::default(), RuleMode::Review);
        assert!(RuleMode::parse("review.model_activation", "maybe").is_err());
    }
}
