//! The life of a bias incident: the states a person moves it through, and the rule for closing
//! one.
//!
//! Invariant: an incident is resolved only with a written resolution; the fairness runs that
//! open and refresh incidents never close one.

use crate::DomainError;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentState {
    /// Found and not yet acted on.
    Open,
    /// Someone is acting on it.
    Mitigating,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 3] = [
        IncidentState::Open,
        IncidentState::Mitigating,
        IncidentState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Mitigating => "mitigating",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "status",
                    format!("`{s}` is not one of open, mitigating, resolved"),
                )
            })
    }

    /// Checks a change to this state: resolving needs a resolution.
    pub fn check_change(self, resolution: Option<&str>) -> Result<(), DomainError> {
        if self == IncidentState::Resolved && resolution.is_none_or(|r| r.trim().is_empty()) {
            return Err(DomainError::invalid(
                "resolution",
                "say how the incident was resolved",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_resolving_needs_a_resolution() {
        for s in IncidentState::ALL {
            assert_eq!(IncidentState::parse(s.as_str()).unwrap(), s);
        }
        assert!(
            IncidentState::parse("closed")
                .unwrap_err()
                .to_string()
                .contains("status")
        );
        assert!(IncidentState::Resolved.check_change(None).is_err());
        assert!(IncidentState::Resolved.check_change(Some(" ")).is_err());
        assert!(
            IncidentState::Resolved
                .check_change(Some("re-ranked"))
                .is_ok()
        );
        assert!(IncidentState::Mitigating.check_change(None).is_ok());
    }
}
