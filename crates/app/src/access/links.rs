//! Signed preference-center links: issued to staff (CLI, admin API) for one subject, opened by
//! the person. Possession of a valid link is the identity check for what the page does.
//!
//! Invariants: the link key is derived from the master key and `pages.link_key_id`, so raising
//! the id revokes every earlier link on every node; a refused link says nothing about the
//! subject (see `candor_domain::link`).

use candor_domain::link::{LinkError, LinkKey, PREFERENCE_CENTER_SCOPE};
use candor_domain::{Micros, SubjectKey};

use crate::rights::SubjectRef;
use crate::{App, AppError, Result};

/// Longest a link may live: 90 days. A forwarded email should not open a person's data forever.
pub const MAX_LINK_TTL: Micros = 90 * 86_400_000_000;

/// A link as handed to staff.
#[derive(Debug, Clone)]
pub struct SubjectLink {
    pub url: String,
    pub token: String,
    pub expires_at: Micros,
}

/// Where a link is opened: the page exchanges the token for a cookie and redirects.
pub const LINK_PATH: &str = "/preferences/open";

pub(crate) struct LinkKeys {
    link: LinkKey,
    csrf: [u8; 32],
}

impl LinkKeys {
    pub(crate) fn new(master: &candor_domain::envelope::SecretKey, key_id: u32) -> Self {
        LinkKeys {
            link: LinkKey::derive(master, key_id),
            csrf: master.derive(b"candor-page-csrf-v1"),
        }
    }
}

impl App {
    /// A signed link to the preference center for one subject, valid for `ttl` (default
    /// `pages.link_ttl_hours`, at most [`MAX_LINK_TTL`]).
    pub fn issue_subject_link(
        &self,
        subject: impl Into<SubjectRef>,
        ttl: Option<Micros>,
    ) -> Result<SubjectLink> {
        let key = match subject.into() {
            SubjectRef::External(id) => self.subject_key(&id)?,
            SubjectRef::Key(k) => k,
        };
        let ttl = ttl.unwrap_or(Micros::from(self.config.pages.link_ttl_hours) * 3_600_000_000);
        if ttl <= 0 || ttl > MAX_LINK_TTL {
            return Err(AppError::invalid(
                "ttl",
                "must be more than 0 and at most 90 days",
            ));
        }
        let expires_at = self.now().saturating_add(ttl);
        let token = self
            .access
            .links
            .link
            .issue(PREFERENCE_CENTER_SCOPE, &key, expires_at);
        let base = match self.config.pages.public_url.trim_end_matches('/') {
            "" => format!("http://{}", self.config.server.bind),
            url => url.to_owned(),
        };
        Ok(SubjectLink {
            url: format!("{base}{LINK_PATH}?token={token}"),
            token,
            expires_at,
        })
    }

    /// The subject a preference-center token names, if it is valid now.
    pub fn open_subject_link(&self, token: &str) -> std::result::Result<SubjectKey, LinkError> {
        let r = self
            .access
            .links
            .link
            .verify(PREFERENCE_CENTER_SCOPE, token, self.now());
        if let Err(e) = &r {
            // The kind only: the token itself would let a log reader open the page.
            tracing::info!(reason = %e, "preference-center link refused");
        }
        r
    }

    /// The secret page forms' CSRF tokens are signed with (derived from the master key, so every
    /// node accepts every other node's forms).
    pub fn page_csrf_secret(&self) -> [u8; 32] {
        self.access.links.csrf
    }
}

/// Parses `7d`, `12h`, `30m` or plain seconds into microseconds.
pub fn parse_ttl(s: &str) -> Result<Micros> {
    let bad = || {
        AppError::invalid(
            "ttl",
            format!("`{s}` is not a duration like 7d, 12h or 30m"),
        )
    };
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs * 1_000_000).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_days_hours_minutes_and_seconds() {
        assert_eq!(parse_ttl("7d").unwrap(), 7 * 86_400_000_000);
        assert_eq!(parse_ttl("12h").unwrap(), 12 * 3_600_000_000);
        assert_eq!(parse_ttl("30m").unwrap(), 30 * 60_000_000);
        assert_eq!(parse_ttl("90").unwrap(), 90_000_000);
        for bad in ["", "d", "7w", "x7d", "99999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
