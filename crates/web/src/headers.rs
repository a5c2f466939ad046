//! The headers every HTML page is served with, as data, so the http crate applies them in one
//! place and tests can compare against the same constants.
//!
//! Names are lowercase, as HTTP/2 requires and `http::HeaderName::from_static` accepts.

/// Nothing may load unless listed: styles and images only from this origin, no scripts at all
/// (pages work without JavaScript), forms post only back here, and no page may be framed.
/// `style-src 'self'` without `'unsafe-inline'` is why pages carry no `style` attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers for every `text/html` response, whatever the page.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    // Older browsers ignore `frame-ancestors`; this says the same to them.
    ("x-frame-options", "DENY"),
];

pub const CACHE_CONTROL: &str = "cache-control";

/// How a page may be cached. Pages declare it; anything that does not is [`Cache::Personal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Shows a person's own data (consents, preferences): never stored by any cache, so a shared
    /// computer or proxy cannot replay it to someone else.
    Personal,
    /// The same for everyone (the privacy notice). Shared caches may keep it for a minute: a
    /// revised purpose shows within that minute, which is long enough to absorb a burst of
    /// visitors and short enough that the notice people read is the one in force.
    Public,
    /// Content addressed by a version in its URL (the stylesheet): a new version gets a new URL,
    /// so an old copy may be kept as long as a browser likes.
    Immutable,
    /// A static asset whose URL does not change with it (the icon): a day.
    Asset,
}

impl Cache {
    pub fn header_value(self) -> &'static str {
        match self {
            Cache::Personal => "no-store",
            Cache::Public => "public, max-age=60",
            Cache::Immutable => "public, max-age=31536000, immutable",
            Cache::Asset => "public, max-age=86400",
        }
    }
}

pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";
pub const CSS_CONTENT_TYPE: &str = "text/css; charset=utf-8";
pub const SVG_CONTENT_TYPE: &str = "image/svg+xml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_script_and_no_inline_style() {
        let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
        assert!(directives.contains(&"default-src 'none'"));
        assert!(directives.contains(&"style-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(directives.contains(&"frame-ancestors 'none'"));
    }

    #[test]
    fn header_names_are_lowercase_and_unique() {
        let mut names: Vec<&str> = SECURITY_HEADERS.iter().map(|(n, _)| *n).collect();
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| !b.is_ascii_uppercase()))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SECURITY_HEADERS.len());
    }

    #[test]
    fn personal_pages_are_never_stored() {
        assert_eq!(Cache::Personal.header_value(), "no-store");
    }
}
