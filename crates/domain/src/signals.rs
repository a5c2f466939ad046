//! Browser privacy signals.
//!
//! Invariant: a signal can only take permission away. `Sec-GPC: 1` and `DNT: 1` each opt a
//! person out of every purpose flagged `sale_or_sharing` and of every purpose flagged
//! `non_essential_tracking`. Neither can grant anything, and neither touches strictly necessary
//! purposes (contract, legal obligation), which cannot carry either flag.
//!
//! Why DNT also covers sale and sharing: Do-Not-Track asks that data about a person not be
//! collected across contexts or handed to others, and selling or sharing it for cross-context
//! advertising is exactly that; reading the signal narrowly would keep a permission the person
//! asked to withdraw. GPC is the signal privacy laws name for sale and sharing, so when both are
//! sent the opt-out is recorded as GPC's.

use crate::{ConsentSource, Purpose};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivacySignals {
    pub gpc: bool,
    pub dnt: bool,
}

impl PrivacySignals {
    /// Reads the header values as browsers send them ("1" means on).
    pub fn from_headers(sec_gpc: Option<&str>, dnt: Option<&str>) -> Self {
        let on = |v: Option<&str>| v.map(str::trim) == Some("1");
        PrivacySignals {
            gpc: on(sec_gpc),
            dnt: on(dnt),
        }
    }

    /// The signal that opts this person out of `purpose`, if any.
    pub fn opts_out_of(&self, purpose: &Purpose) -> Option<ConsentSource> {
        let covered = purpose.sale_or_sharing || purpose.non_essential_tracking;
        if purpose.legal_basis.is_strictly_necessary() || !covered {
            None
        } else if self.gpc {
            Some(ConsentSource::Gpc)
        } else if self.dnt {
            Some(ConsentSource::Dnt)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PurposeDraft;

    fn purpose(sale: bool, tracking: bool, basis: &str) -> Result<Purpose, crate::DomainError> {
        PurposeDraft {
            id: "p".into(),
            title: "t".into(),
            description: "d".into(),
            legal_basis: basis.into(),
            categories: vec!["browsing".into()],
            sale_or_sharing: sale,
            non_essential_tracking: tracking,
            ..Default::default()
        }
        .validate()
    }

    #[test]
    fn headers_are_on_only_when_they_say_1() {
        assert_eq!(
            PrivacySignals::from_headers(Some("1"), Some(" 1 ")),
            PrivacySignals {
                gpc: true,
                dnt: true
            }
        );
        assert_eq!(
            PrivacySignals::from_headers(Some("0"), None),
            PrivacySignals::default()
        );
    }

    #[test]
    fn each_signal_opts_out_of_sale_sharing_and_tracking_but_never_necessary_purposes() {
        let flags = [(false, false), (true, false), (false, true), (true, true)];
        let bases = [
            "consent",
            "legitimate_interest",
            "contract",
            "legal_obligation",
        ];
        let mut checked = 0;
        for basis in bases {
            for (sale, tracking) in flags {
                let p = match purpose(sale, tracking, basis) {
                    Ok(p) => p,
                    Err(_) => {
                        // The flags describe optional processing: a strictly necessary purpose
                        // cannot be declared with either, so no signal can reach one.
                        assert!(
                            matches!(basis, "contract" | "legal_obligation") && (sale || tracking)
                        );
                        continue;
                    }
                };
                for (gpc, dnt) in flags {
                    let s = PrivacySignals { gpc, dnt };
                    let expected = if p.legal_basis.is_strictly_necessary() || !(sale || tracking) {
                        None
                    } else if gpc {
                        Some(ConsentSource::Gpc)
                    } else if dnt {
                        Some(ConsentSource::Dnt)
                    } else {
                        None
                    };
                    assert_eq!(
                        s.opts_out_of(&p),
                        expected,
                        "{basis}, sale_or_sharing={sale}, non_essential_tracking={tracking}, gpc={gpc}, dnt={dnt}"
                    );
                    checked += 1;
                }
            }
        }
        // 2 refusable bases x 4 flag sets + 2 necessary bases x 1 flag set, x 4 signal sets
        assert_eq!(checked, 40);
    }

    #[test]
    fn gpc_alone_opts_out_of_a_tracking_only_purpose() {
        let analytics = purpose(false, true, "consent").unwrap();
        let gpc = PrivacySignals::from_headers(Some("1"), None);
        assert_eq!(gpc.opts_out_of(&analytics), Some(ConsentSource::Gpc));
        let sharing = purpose(true, false, "consent").unwrap();
        let dnt = PrivacySignals::from_headers(None, Some("1"));
        assert_eq!(dnt.opts_out_of(&sharing), Some(ConsentSource::Dnt));
    }
}
