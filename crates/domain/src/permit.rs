//! Permits: the one answer to "may this purpose use this category of this subject's data now".
//!
//! Invariants:
//! - A [`Permit`] exists only if the subject's consent state allowed its purpose when it was
//!   decided: its fields are private and the only constructor is [`SubjectConsents::permit`]
//!   (and [`SubjectConsents::permits`], which calls it per purpose). No other crate can make one.
//! - [`Permit::covers`] is the category rule: a purpose may use exactly the data categories it
//!   declares. Every read of behavioural data takes permits and filters with it, so the rule is
//!   written once.
//! - A permit is a snapshot: it says what was allowed at [`Permit::decided_at`]. It borrows the
//!   subject key and the purpose it was decided for, so it lives no longer than the request or
//!   training page that asked; the next one asks again, and a revocation takes effect on the
//!   very next request. Borrowing also makes a permit free to make on the ingest hot path.
//!
//! A read of behavioural data cannot be written without one. This does not compile, because a
//! permit cannot be made outside this crate:
//!
//! ```compile_fail,E0451
//! fn forge<'a>(
//!     subject: &'a candor_domain::SubjectKey,
//!     purpose: &'a candor_domain::Purpose,
//! ) -> candor_domain::Permit<'a> {
//!     candor_domain::Permit { subject, purpose, decided_at: 0 }
//! }
//! ```

use crate::{ConsentStatus, DataCategory, Micros, Purpose, PurposeId, SubjectConsents, SubjectKey};

/// Proof that `purpose` may use its categories of `subject`'s data, as decided at `decided_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit<'a> {
    subject: &'a SubjectKey,
    purpose: &'a Purpose,
    decided_at: Micros,
}

impl<'a> Permit<'a> {
    pub fn subject(&self) -> &'a SubjectKey {
        self.subject
    }

    pub fn purpose(&self) -> &'a PurposeId {
        &self.purpose.id
    }

    /// When the consent state was asked.
    pub fn decided_at(&self) -> Micros {
        self.decided_at
    }

    /// The categories the purpose may use.
    pub fn categories(&self) -> &'a [DataCategory] {
        &self.purpose.categories
    }

    /// Whether the purpose needs no consent (contract, legal obligation): such a permit cannot
    /// be withdrawn by the person, so it alone never justifies personal profiling.
    pub fn is_strictly_necessary(&self) -> bool {
        self.purpose.legal_basis.is_strictly_necessary()
    }

    /// Whether this permit may shape a person-level profile on its own: its purpose is declared
    /// `person_level` and the person could refuse it. Aggregate-only permits (analytics) never
    /// count for a profile or a segment.
    pub fn is_person_level(&self) -> bool {
        self.purpose.builds_person_profile()
    }

    /// Whether the purpose is declared sale or sharing (advertising audiences need one).
    pub fn is_sale_or_sharing(&self) -> bool {
        self.purpose.sale_or_sharing
    }

    /// The category rule: may this permit's purpose use data of `category`?
    pub fn covers(&self, category: &DataCategory) -> bool {
        self.purpose.categories.contains(category)
    }

    /// [`Permit::covers`] for a category as stored (its canonical name). An unknown name is
    /// covered by nothing.
    pub fn covers_name(&self, category: &str) -> bool {
        self.purpose.categories.iter().any(|c| c.is_named(category))
    }
}

/// Every permit a subject's consent state grants now, in the order the purposes were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permits<'a> {
    subject: &'a SubjectKey,
    list: Vec<Permit<'a>>,
}

impl<'a> Permits<'a> {
    pub fn subject(&self) -> &'a SubjectKey {
        self.subject
    }

    pub fn get(&self, purpose: &PurposeId) -> Option<&Permit<'a>> {
        self.list.iter().find(|p| p.purpose() == purpose)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permit<'a>> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first permit, in purpose order, that covers `category`.
    pub fn covering(&self, category: &DataCategory) -> Option<&Permit<'a>> {
        self.list.iter().find(|p| p.covers(category))
    }

    /// The first of `ids` (in that order) whose permit covers `category`.
    pub fn first_covering<'i>(
        &self,
        ids: &'i [PurposeId],
        category: &DataCategory,
    ) -> Option<&'i PurposeId> {
        ids.iter()
            .find(|id| self.get(id).is_some_and(|p| p.covers(category)))
    }

    /// Whether any permit covers a category stored as `category`.
    pub fn cover_name(&self, category: &str) -> bool {
        self.list.iter().any(|p| p.covers_name(category))
    }
}

impl SubjectConsents {
    /// A permit for `purpose` over `subject`'s data if this consent state allows it at `now`.
    pub fn permit<'a>(
        &self,
        subject: &'a SubjectKey,
        purpose: &'a Purpose,
        now: Micros,
    ) -> Option<Permit<'a>> {
        self.permit_with_status(subject, purpose, now).0
    }

    /// [`SubjectConsents::permit`] and the state it was decided from, derived once.
    pub fn permit_with_status<'a>(
        &self,
        subject: &'a SubjectKey,
        purpose: &'a Purpose,
        now: Micros,
    ) -> (Option<Permit<'a>>, ConsentStatus) {
        let status = self.status(purpose, now);
        let permit = status.allows().then_some(Permit {
            subject,
            purpose,
            decided_at: now,
        });
        (permit, status)
    }

    /// Every permit this state grants at `now`, one per allowed purpose, in `purposes` order.
    pub fn permits<'a>(
        &self,
        subject: &'a SubjectKey,
        purposes: impl IntoIterator<Item = &'a Purpose>,
        now: Micros,
    ) -> Permits<'a> {
        Permits {
            subject,
            list: purposes
                .into_iter()
                .filter_map(|p| self.permit(subject, p, now))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LegalBasis;
    use crate::consent::tests_support::{granted, purpose};

    fn key() -> SubjectKey {
        SubjectKey::parse(&"a".repeat(64)).unwrap()
    }

    #[test]
    fn a_permit_exists_only_for_an_allowed_purpose_and_covers_only_its_categories() {
        let p = purpose("personalization", "consent", &["browsing"]);
        assert!(SubjectConsents::default().permit(&key(), &p, 1).is_none());
        let k = key();
        let permit = granted("personalization").permit(&k, &p, 1).unwrap();
        assert!(permit.covers(&DataCategory::Browsing));
        assert!(permit.covers_name("browsing"));
        assert!(!permit.covers(&DataCategory::Purchase));
        assert!(!permit.covers_name("purchase") && !permit.covers_name("nonsense"));
        assert_eq!(permit.decided_at(), 1);
        assert!(!permit.is_strictly_necessary());
    }

    #[test]
    fn permits_follow_purpose_order_and_strictly_necessary_purposes_need_no_record() {
        let contract = purpose("orders", "contract", &["purchase", "contact"]);
        assert_eq!(contract.legal_basis, LegalBasis::Contract);
        let ads = purpose("ads", "consent", &["browsing", "purchase"]);
        let perso = purpose("personalization", "consent", &["browsing", "purchase"]);
        let k = key();
        let permits = granted("personalization").permits(&k, [&contract, &ads, &perso], 5);
        assert!(permits.get(&ads.id).is_none(), "never granted");
        assert!(permits.get(&contract.id).unwrap().is_strictly_necessary());
        assert_eq!(
            permits.covering(&DataCategory::Purchase).unwrap().purpose(),
            &contract.id
        );
        let ids = [ads.id.clone(), perso.id.clone()];
        assert_eq!(
            permits.first_covering(&ids, &DataCategory::Purchase),
            Some(&perso.id)
        );
        assert!(
            permits
                .first_covering(std::slice::from_ref(&ads.id), &DataCategory::Browsing)
                .is_none()
        );
        assert!(permits.cover_name("contact") && !permits.cover_name("location"));
    }
}
