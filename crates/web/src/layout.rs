//! The document shell every page is rendered into, and the one stylesheet.

use maud::{DOCTYPE, Markup, html};

use crate::i18n::{Lang, M};

/// The whole stylesheet. Kept in its own file for editing; served from memory.
pub const STYLESHEET: &str = include_str!("candor.css");

/// Where [`STYLESHEET`] is served.
pub const STYLESHEET_PATH: &str = "/assets/candor.css";

/// Changes whenever the stylesheet does, so its URL can be cached as immutable.
pub const STYLESHEET_VERSION: u64 = fnv1a(STYLESHEET.as_bytes());

/// The site icon, a "C" on the header's colour. Linked from every page so browsers do not ask
/// for `/favicon.ico`, which would be a 404 in every page's console.
pub const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#12263f"/><path d="M22 10.5a8 8 0 1 0 0 11" fill="none" stroke="#fff" stroke-width="3.5" stroke-linecap="round"/></svg>"##;

/// Where [`FAVICON`] is served.
pub const FAVICON_PATH: &str = "/assets/favicon.svg";

/// The id of `<main>`, the skip link's target.
pub const MAIN_ID: &str = "main";

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The stylesheet's versioned URL.
pub fn stylesheet_href() -> String {
    format!("{STYLESHEET_PATH}?v={STYLESHEET_VERSION:016x}")
}

/// A complete HTML document: `title` names the page (the site name is added), `main` is its
/// content. Everything a page shows goes through here, so landmarks, the skip link and the
/// stylesheet are the same on every page.
pub fn page(title: &str, main: Markup) -> Markup {
    page_in(Lang::En, title, None, main)
}

/// [`page`] in `lang`: the shell's own words come from the catalog, and when `switcher` names
/// the page's path the header offers the other languages as links to it.
pub fn page_in(lang: Lang, title: &str, switcher: Option<&str>, main: Markup) -> Markup {
    page_with_head(lang, title, switcher, html! {}, main)
}

/// [`page_in`] with extra `<head>` elements (a `meta` refresh; never a script or style).
pub fn page_with_head(
    lang: Lang,
    title: &str,
    switcher: Option<&str>,
    head: Markup,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Candor" }
                link rel="stylesheet" href=(stylesheet_href());
                link rel="icon" href=(FAVICON_PATH) type="image/svg+xml";
                meta name="referrer" content="no-referrer";
                (head)
            }
            body {
                a class="skip-link" href={ "#" (MAIN_ID) } { (M::Skip.text(lang)) }
                header class="site-header" {
                    div class="wrap" {
                        p class="brand" { a href="/privacy" { (M::Brand.text(lang)) } }
                        @if let Some(path) = switcher {
                            nav class="languages" aria-label=(M::LanguageNav.text(lang)) {
                                ul {
                                    @for l in Lang::ALL {
                                        li {
                                            @if l == lang {
                                                a href={ (path) "?lang=" (l.code()) } lang=(l.code()) hreflang=(l.code()) aria-current="true" { (l.name()) }
                                            } @else {
                                                a href={ (path) "?lang=" (l.code()) } lang=(l.code()) hreflang=(l.code()) { (l.name()) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                // tabindex=-1 lets the skip link move keyboard focus here, not just scroll.
                main id=(MAIN_ID) tabindex="-1" {
                    div class="wrap" { (main) }
                }
                footer class="site-footer" {
                    div class="wrap" {
                        p { (M::Footer.text(lang)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> String {
        page("Test <page>", html! { p { "hello" } }).into_string()
    }

    #[test]
    fn the_shell_has_language_charset_viewport_and_landmarks() {
        let d = doc();
        assert!(d.starts_with("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"));
        assert!(
            d.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
        );
        assert!(d.contains("<title>Test &lt;page&gt; · Candor</title>"));
        for landmark in ["<header ", "<main ", "<footer "] {
            assert_eq!(d.matches(landmark).count(), 1, "{landmark}");
        }
    }

    #[test]
    fn the_skip_link_comes_first_and_targets_main() {
        let d = doc();
        let body = &d[d.find("<body>").unwrap() + "<body>".len()..];
        assert!(body.starts_with(r##"<a class="skip-link" href="#main">"##));
        assert!(d.contains(r#"<main id="main" tabindex="-1">"#));
    }

    #[test]
    fn pages_link_the_versioned_stylesheet_and_carry_no_inline_style_or_script() {
        let d = doc();
        assert!(d.contains(&format!(
            r#"href="/assets/candor.css?v={STYLESHEET_VERSION:016x}""#
        )));
        assert!(!d.contains("<style"));
        assert!(!d.contains("style="));
        assert!(!d.contains("<script"));
    }

    #[test]
    fn the_stylesheet_shows_focus_and_has_no_imports() {
        assert!(STYLESHEET.contains(":focus-visible"));
        // An @import or url() would need another CSP source or break under `img-src 'self'`.
        assert!(!STYLESHEET.contains("@import"));
        assert!(!STYLESHEET.contains("url("));
    }

    #[test]
    fn the_version_follows_the_content() {
        assert_ne!(fnv1a(b"a { color: red }"), fnv1a(b"a { color: blue }"));
        assert_eq!(STYLESHEET_VERSION, fnv1a(STYLESHEET.as_bytes()));
    }
}
