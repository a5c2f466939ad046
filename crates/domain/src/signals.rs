//! Browser privacy signals.
//!
//! Invariant: a signal can only take permission away. `Sec-GPC: 1` opts out of every purpose
//! that sells or shares data; `DNT: 1` opts out of every non-essential tracking purpose. Neither
//! can grant anything, and neither touches strictly necessary purposes.

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
        if purpose.legal_basis.is_strictly_necessary() {
            None
        } else if self.gpc && purpose.sale_or_sharing {
            Some(ConsentSource::Gpc)
        } else if self.dnt && purpose.non_essential_tracking {
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

    fn purpose(sale: bool, tracking: bool, basis: &str) -> Purpose {
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
        .unwrap()
    }

    #[test]
    fn signals_map_to_the_purposes_they_cover() {
        let s = PrivacySignals::from_headers(Some("1"), None);
        assert_eq!(
            s.opts_out_of(&purpose(true, false, "consent")),
            Some(ConsentSource::Gpc)
        );
        assert_eq!(s.opts_out_of(&purpose(false, true, "consent")), None);
        let d = PrivacySignals::from_headers(Some("0"), Some(" 1 "));
        assert_eq!(
            d.opts_out_of(&purpose(false, true, "consent")),
            Some(ConsentSource::Dnt)
        );
        assert_eq!(d.opts_out_of(&purpose(false, false, "contract")), None);
    }
}
