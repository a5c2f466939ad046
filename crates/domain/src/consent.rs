//! Consent records and the state derived from them.
//!
//! Invariants:
//! - Records are append-only facts; the current state of a (subject, purpose) pair is always the
//!   latest record by sequence number, never a mutable flag.
//! - A grant counts only for the purpose version it was given for, only until it expires, and
//!   only for purposes whose legal basis is consent. `ConsentStatus::allows` is the single
//!   yes/no answer every data path must ask.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{DomainError, LegalBasis, MICROS_PER_DAY, Micros, Purpose, PurposeId, SubjectKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDecision {
    Granted,
    Denied,
    /// The person restricted processing for the purpose (GDPR art. 18): the data is kept but
    /// the purpose may not use it, whatever was granted, until the restriction is lifted.
    Restricted,
    /// A restriction was lifted: the grant or denial before it decides again.
    RestrictionLifted,
}

impl ConsentDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentDecision::Granted => "granted",
            ConsentDecision::Denied => "denied",
            ConsentDecision::Restricted => "restricted",
            ConsentDecision::RestrictionLifted => "restriction_lifted",
        }
    }

    /// Whether this record is about a restriction rather than a grant or denial.
    pub fn is_restriction(self) -> bool {
        matches!(
            self,
            ConsentDecision::Restricted | ConsentDecision::RestrictionLifted
        )
    }

    /// Any decision as stored, restrictions included.
    pub fn from_stored(s: &str) -> Result<Self, DomainError> {
        match s {
            "restricted" => Ok(ConsentDecision::Restricted),
            "restriction_lifted" => Ok(ConsentDecision::RestrictionLifted),
            other => Self::parse(other),
        }
    }

    /// A decision a person gives: granted or denied (restrictions are a rights request).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "granted" => Ok(ConsentDecision::Granted),
            "denied" => Ok(ConsentDecision::Denied),
            _ => Err(DomainError::invalid(
                "decision",
                format!("`{s}` is not `granted` or `denied`"),
            )),
        }
    }
}

/// Where a consent decision came from, kept as part of its proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    Banner,
    PreferenceCenter,
    Api,
    Import,
    /// Recorded on the person's behalf from a `Sec-GPC: 1` header.
    Gpc,
    /// Recorded on the person's behalf from a `DNT: 1` header.
    Dnt,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Banner => "banner",
            ConsentSource::PreferenceCenter => "preference_center",
            ConsentSource::Api => "api",
            ConsentSource::Import => "import",
            ConsentSource::Gpc => "gpc",
            ConsentSource::Dnt => "dnt",
        }
    }
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(match s {
            "banner" => ConsentSource::Banner,
            "preference_center" => ConsentSource::PreferenceCenter,
            "api" => ConsentSource::Api,
            "import" => ConsentSource::Import,
            "gpc" => ConsentSource::Gpc,
            "dnt" => ConsentSource::Dnt,
            _ => {
                return Err(DomainError::invalid(
                    "source",
                    format!("`{s}` is not one of banner, preference_center, api, import"),
                ));
            }
        })
    }
}

/// Evidence that a decision was really made by the person: never the raw IP, only its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentProof {
    pub ip_hash: Option<String>,
    pub user_agent: Option<String>,
    pub double_opt_in_token: Option<String>,
    /// What a banner showed: `sha256:<hex of the exact notice text>@<config version>`.
    pub notice_hash: Option<String>,
}

/// A decision about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    pub subject: SubjectKey,
    pub purpose: PurposeId,
    pub decision: ConsentDecision,
    pub at: Micros,
    pub source: ConsentSource,
    pub policy_version: u32,
    pub proof: ConsentProof,
}

/// A stored, immutable consent record. `seq` orders all records of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub seq: i64,
    pub subject: SubjectKey,
    pub purpose: PurposeId,
    pub decision: ConsentDecision,
    pub at: Micros,
    pub source: ConsentSource,
    pub policy_version: u32,
    pub proof: ConsentProof,
}

/// What the latest record says for one purpose, the only part of history that decides the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestDecision {
    pub seq: i64,
    pub decision: ConsentDecision,
    pub at: Micros,
    pub policy_version: u32,
}

/// The consent state of one subject: the latest decision per purpose, folded from history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectConsents {
    latest: HashMap<PurposeId, LatestDecision>,
    /// The latest restriction record per purpose (restricted or lifted), kept apart so a
    /// lifted restriction gives the earlier grant back.
    restrictions: HashMap<PurposeId, LatestDecision>,
}

/// The answer to "may this purpose use this subject's data now?", with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Explicitly granted for the current version and not expired.
    Granted {
        since: Micros,
        expires_at: Option<Micros>,
        /// The purpose version the grant was given for (the current one).
        consented_version: u32,
    },
    /// Contract or legal obligation: no consent needed, no opt-out possible.
    NotRequired,
    /// Legitimate interest and the person has not objected.
    LegitimateInterest,
    Denied {
        since: Micros,
    },
    /// Never asked (or never answered): opt-in means no.
    NotAsked,
    /// Granted once, but the grant is older than the purpose's `expires_after_days`.
    Expired {
        at: Micros,
    },
    /// Granted for an older version of a purpose that has since changed materially.
    NeedsRenewal {
        consented_version: u32,
        current_version: u32,
    },
    /// The person restricted processing for this purpose: nothing may use the data.
    Restricted {
        since: Micros,
    },
}

impl ConsentStatus {
    /// The one yes/no every data path must respect.
    pub fn allows(&self) -> bool {
        matches!(
            self,
            ConsentStatus::Granted { .. }
                | ConsentStatus::NotRequired
                | ConsentStatus::LegitimateInterest
        )
    }
    pub fn name(&self) -> &'static str {
        match self {
            ConsentStatus::Granted { .. } => "granted",
            ConsentStatus::NotRequired => "not_required",
            ConsentStatus::LegitimateInterest => "legitimate_interest",
            ConsentStatus::Denied { .. } => "denied",
            ConsentStatus::NotAsked => "not_asked",
            ConsentStatus::Expired { .. } => "expired",
            ConsentStatus::NeedsRenewal { .. } => "needs_renewal",
            ConsentStatus::Restricted { .. } => "restricted",
        }
    }
}

impl SubjectConsents {
    pub fn from_history<'a>(records: impl IntoIterator<Item = &'a ConsentRecord>) -> Self {
        let mut s = SubjectConsents::default();
        for r in records {
            s.apply(r);
        }
        s
    }

    /// Folds one record in. Out-of-order or repeated delivery (a cache refresh racing a
    /// notification) is harmless: an older sequence number never overwrites a newer one.
    pub fn apply(&mut self, r: &ConsentRecord) {
        let next = LatestDecision {
            seq: r.seq,
            decision: r.decision,
            at: r.at,
            policy_version: r.policy_version,
        };
        let slot = if r.decision.is_restriction() {
            &mut self.restrictions
        } else {
            &mut self.latest
        };
        match slot.get_mut(&r.purpose) {
            Some(cur) if cur.seq >= r.seq => {}
            Some(cur) => *cur = next,
            None => {
                slot.insert(r.purpose.clone(), next);
            }
        }
    }

    /// Since when processing for `purpose` is restricted, if it is.
    pub fn restricted_since(&self, purpose: &PurposeId) -> Option<Micros> {
        self.restrictions
            .get(purpose)
            .filter(|d| d.decision == ConsentDecision::Restricted)
            .map(|d| d.at)
    }

    pub fn latest(&self, purpose: &PurposeId) -> Option<&LatestDecision> {
        self.latest.get(purpose)
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.restrictions.is_empty()
    }

    /// Derives the state of `purpose` for this subject at time `now`. A restriction outranks
    /// every legal basis and every grant: the purpose may not use the data while it lasts.
    pub fn status(&self, purpose: &Purpose, now: Micros) -> ConsentStatus {
        match self.restricted_since(&purpose.id) {
            Some(since) => ConsentStatus::Restricted { since },
            None => status_of(purpose, self.latest.get(&purpose.id), now),
        }
    }
}

/// The state rule itself, shared by the cache and by anyone holding only the latest decision.
pub fn status_of(purpose: &Purpose, latest: Option<&LatestDecision>, now: Micros) -> ConsentStatus {
    match purpose.legal_basis {
        LegalBasis::Contract | LegalBasis::LegalObligation => ConsentStatus::NotRequired,
        LegalBasis::LegitimateInterest => match latest {
            Some(d) if d.decision == ConsentDecision::Denied => {
                ConsentStatus::Denied { since: d.at }
            }
            _ => ConsentStatus::LegitimateInterest,
        },
        LegalBasis::Consent => match latest {
            None => ConsentStatus::NotAsked,
            Some(d) if d.decision == ConsentDecision::Denied => {
                ConsentStatus::Denied { since: d.at }
            }
            Some(d) if d.policy_version < purpose.version => ConsentStatus::NeedsRenewal {
                consented_version: d.policy_version,
                current_version: purpose.version,
            },
            Some(d) => {
                let expires_at = purpose
                    .expires_after_days
                    .map(|days| d.at.saturating_add(i64::from(days) * MICROS_PER_DAY));
                match expires_at {
                    Some(at) if now >= at => ConsentStatus::Expired { at },
                    _ => ConsentStatus::Granted {
                        since: d.at,
                        expires_at,
                        consented_version: d.policy_version,
                    },
                }
            }
        },
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The purpose fixture of the domain's tests: `id` on `basis`, using `categories`.
    pub(crate) fn purpose(id: &str, basis: &str, categories: &[&str]) -> Purpose {
        crate::PurposeDraft {
            id: id.into(),
            title: format!("Purpose {id}"),
            description: format!("What {id} does with your data, in plain words."),
            legal_basis: basis.into(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    /// Purposes by id, as the app holds them.
    pub(crate) fn purposes(list: &[Purpose]) -> std::collections::BTreeMap<PurposeId, Purpose> {
        list.iter().map(|p| (p.id.clone(), p.clone())).collect()
    }

    /// A subject who granted `purpose` (version 1) at time 0.
    pub(crate) fn granted(purpose: &str) -> SubjectConsents {
        granted_all(&[purpose])
    }

    /// A subject who granted each of `purposes` (version 1) at time 0.
    pub(crate) fn granted_all(purposes: &[&str]) -> SubjectConsents {
        let records: Vec<ConsentRecord> = purposes
            .iter()
            .zip(1..)
            .map(|(purpose, seq)| ConsentRecord {
                seq,
                subject: SubjectKey::parse(&"a".repeat(64)).unwrap(),
                purpose: PurposeId::parse(purpose).unwrap(),
                decision: ConsentDecision::Granted,
                at: 0,
                source: ConsentSource::Api,
                policy_version: 1,
                proof: ConsentProof::default(),
            })
            .collect();
        SubjectConsents::from_history(&records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PurposeDraft, subject::tests::key};

    fn purpose(basis: &str, expires: Option<u32>) -> Purpose {
        PurposeDraft {
            id: "personalization".into(),
            title: "Recommendations".into(),
            description: "Suggestions from what you browse.".into(),
            legal_basis: basis.into(),
            categories: vec!["browsing".into()],
            expires_after_days: expires,
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    fn rec(seq: i64, decision: ConsentDecision, at: Micros, version: u32) -> ConsentRecord {
        ConsentRecord {
            seq,
            subject: key("alice"),
            purpose: PurposeId::parse("personalization").unwrap(),
            decision,
            at,
            source: ConsentSource::Api,
            policy_version: version,
            proof: ConsentProof::default(),
        }
    }

    use ConsentDecision::{Denied, Granted, Restricted, RestrictionLifted};

    #[test]
    fn opt_in_means_no_until_granted_and_latest_wins() {
        let p = purpose("consent", None);
        let s = SubjectConsents::default();
        assert_eq!(s.status(&p, 0), ConsentStatus::NotAsked);
        assert!(!s.status(&p, 0).allows());
        let s = SubjectConsents::from_history(&[rec(1, Granted, 10, 1), rec(2, Denied, 20, 1)]);
        assert_eq!(s.status(&p, 30), ConsentStatus::Denied { since: 20 });
        // A late-arriving older record does not resurrect the grant.
        let mut s2 = s.clone();
        s2.apply(&rec(1, Granted, 10, 1));
        assert_eq!(s2, s);
    }

    #[test]
    fn grants_expire_and_material_changes_need_renewal() {
        let p = purpose("consent", Some(1));
        let s = SubjectConsents::from_history(&[rec(1, Granted, 0, 1)]);
        assert!(s.status(&p, MICROS_PER_DAY - 1).allows());
        assert_eq!(
            s.status(&p, MICROS_PER_DAY),
            ConsentStatus::Expired { at: MICROS_PER_DAY }
        );
        let mut v2 = purpose("consent", None);
        v2.version = 2;
        assert_eq!(
            s.status(&v2, 5),
            ConsentStatus::NeedsRenewal {
                consented_version: 1,
                current_version: 2
            }
        );
        let renewed =
            SubjectConsents::from_history(&[rec(1, Granted, 0, 1), rec(3, Granted, 9, 2)]);
        assert!(renewed.status(&v2, 10).allows());
    }

    #[test]
    fn collection_gate_needs_a_covering_allowed_purpose() {
        let p = purpose("consent", None);
        let none = SubjectConsents::default();
        let granted = SubjectConsents::from_history(&[rec(1, Granted, 0, 1)]);
        let key = SubjectKey::parse(&"b".repeat(64)).unwrap();
        let browsing = &crate::DataCategory::Browsing;
        assert!(none.permits(&key, [&p], 1).covering(browsing).is_none());
        assert!(granted.permits(&key, [&p], 1).covering(browsing).is_some());
        let contact = &crate::DataCategory::Contact;
        assert!(granted.permits(&key, [&p], 1).covering(contact).is_none());
    }

    #[test]
    fn legal_bases_other_than_consent() {
        let empty = SubjectConsents::default();
        assert_eq!(
            empty.status(&purpose("contract", None), 0),
            ConsentStatus::NotRequired
        );
        let li = purpose("legitimate_interest", None);
        assert!(empty.status(&li, 0).allows());
        let objected = SubjectConsents::from_history(&[rec(1, Denied, 5, 1)]);
        assert!(!objected.status(&li, 6).allows());
    }

    #[test]
    fn a_restriction_outranks_every_grant_and_lifting_it_gives_the_grant_back() {
        let p = purpose("consent", None);
        let contract = purpose("contract", None);
        let key = SubjectKey::parse(&"c".repeat(64)).unwrap();
        let history = [rec(1, Granted, 0, 1), rec(2, Restricted, 5, 1)];
        let s = SubjectConsents::from_history(&history);
        assert_eq!(s.status(&p, 6), ConsentStatus::Restricted { since: 5 });
        assert!(
            s.permit(&key, &p, 6).is_none(),
            "no permit while restricted"
        );
        assert!(
            !s.status(&contract, 6).allows(),
            "it outranks a contract basis too"
        );
        let lifted = SubjectConsents::from_history(&[
            rec(1, Granted, 0, 1),
            rec(2, Restricted, 5, 1),
            rec(3, RestrictionLifted, 7, 1),
        ]);
        assert!(
            lifted.status(&p, 8).allows(),
            "the earlier grant decides again"
        );
        // A grant given while restricted does not lift the restriction.
        let regranted =
            SubjectConsents::from_history(&[rec(2, Restricted, 5, 1), rec(4, Granted, 9, 1)]);
        assert!(!regranted.status(&p, 10).allows());
        assert!(
            ConsentDecision::parse("restricted").is_err(),
            "not a person's decision"
        );
        assert_eq!(
            ConsentDecision::from_stored("restriction_lifted").unwrap(),
            RestrictionLifted
        );
    }
}
