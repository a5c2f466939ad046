//! The consent banner's notice: the exact text a visitor is shown, its configuration version and
//! the hash stored as proof with every decision made on it (the CNIL method).
//!
//! Invariants: the notice is built only here, from the catalog and the declared purposes, and
//! the same function gives the text the banner shows and the hash the server stores, so a proof
//! cannot describe a notice other than the one served. Dark patterns are ruled out by
//! construction: the first layer always has Accept all, Reject all and Choose with one style
//! (`BUTTON_STYLE`), and no purpose is ever pre-selected (`selected` is always false); there is no
//! configuration that could change either.

use sha2::{Digest, Sha256};

use crate::i18n::{Lang, M};

/// The banner script, served at [`SCRIPT_PATH`].
pub const SCRIPT: &str = include_str!("consent.js");
pub const SCRIPT_PATH: &str = "/consent.js";
pub const SCRIPT_CONTENT_TYPE: &str = "text/javascript; charset=utf-8";

/// One purpose as the banner offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannerPurpose {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Sold or shared: a Global Privacy Control signal keeps it off.
    pub sale_or_sharing: bool,
    pub version: u32,
}

/// What the banner shows, with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub lang: Lang,
    pub title: &'static str,
    pub body: &'static str,
    pub accept_all: &'static str,
    pub reject_all: &'static str,
    pub choose: &'static str,
    pub save: &'static str,
    pub gpc_honoured: &'static str,
    pub purposes: Vec<BannerPurpose>,
    /// Changes whenever a purpose is added, removed or revised.
    pub version: String,
    /// `sha256:<hex of the exact text>@<version>`.
    pub hash: String,
}

/// The one style every first-layer button has: equal size, colour and weight.
pub const BUTTON_STYLE: &str = "equal";

/// The notice in `lang` for `purposes` (in the order given).
pub fn notice(lang: Lang, purposes: Vec<BannerPurpose>) -> Notice {
    let mut v = Sha256::new();
    for p in &purposes {
        v.update(format!("{}@{}\n", p.id, p.version).as_bytes());
    }
    let version = hex::encode(&v.finalize()[..8]);
    let mut n = Notice {
        lang,
        title: M::BannerTitle.text(lang),
        body: M::BannerBody.text(lang),
        accept_all: M::AcceptAll.text(lang),
        reject_all: M::RejectAll.text(lang),
        choose: M::Choose.text(lang),
        save: M::SaveChoice.text(lang),
        gpc_honoured: M::GpcHonoured.text(lang),
        purposes,
        version,
        hash: String::new(),
    };
    n.hash = format!(
        "sha256:{}@{}",
        hex::encode(Sha256::digest(text(&n).as_bytes())),
        n.version
    );
    n
}

/// The exact text shown, one element per line, in the order the banner shows it.
pub fn text(n: &Notice) -> String {
    let mut lines = vec![n.title, n.body, n.accept_all, n.reject_all, n.choose];
    for p in &n.purposes {
        lines.push(&p.title);
        lines.push(&p.description);
    }
    lines.push(n.save);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose(id: &str, version: u32) -> BannerPurpose {
        BannerPurpose {
            id: id.into(),
            title: format!("T {id}"),
            description: "D".into(),
            sale_or_sharing: false,
            version,
        }
    }

    #[test]
    fn the_hash_follows_the_text_and_the_version_follows_the_purposes() {
        let a = notice(Lang::En, vec![purpose("a", 1)]);
        assert!(a.hash.starts_with("sha256:") && a.hash.ends_with(&format!("@{}", a.version)));
        assert_eq!(a, notice(Lang::En, vec![purpose("a", 1)]));
        let revised = notice(Lang::En, vec![purpose("a", 2)]);
        assert_ne!(a.version, revised.version);
        let german = notice(Lang::De, vec![purpose("a", 1)]);
        assert_eq!(a.version, german.version);
        assert_ne!(a.hash, german.hash, "another text, another proof");
        let mut retitled = purpose("a", 1);
        retitled.title = "Other".into();
        assert_ne!(a.hash, notice(Lang::En, vec![retitled]).hash);
        assert!(text(&a).contains("Reject all"));
    }

    #[test]
    fn the_script_stays_small_and_never_pre_ticks() {
        // The budget is 10 KB gzipped; the raw size bounds it well below that.
        assert!(SCRIPT.len() < 10_000, "{} bytes", SCRIPT.len());
        assert!(SCRIPT.contains("box.checked = false"));
        assert!(!SCRIPT.contains("checked = true"));
        assert!(SCRIPT.contains("'aria-modal': 'true'"));
    }
}
