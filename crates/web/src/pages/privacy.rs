//! `/privacy`: every declared purpose in plain language. Public, the same for everyone.

use candor_domain::Purpose;
use maud::{Markup, html};

use crate::components::{purpose_anchor, purpose_card};
use crate::layout;

/// The privacy notice, listing `purposes` in the order given.
pub fn privacy(purposes: &[Purpose]) -> Markup {
    layout::page(
        "How we use your data",
        html! {
            h1 { "How we use your data" }
            p class="lead" {
                "We use personal data only for the purposes below. Each one says what data it may use, "
                "why we are allowed to use it, and what you can do about it."
            }
            @if purposes.is_empty() {
                div class="empty" {
                    p { strong { "No purposes are declared yet." } }
                    p { "Until one is, no personal data is used for anything." }
                }
            } @else {
                nav class="toc" aria-labelledby="toc-title" {
                    h2 id="toc-title" { "Purposes on this page (" (purposes.len()) ")" }
                    ol {
                        @for p in purposes {
                            li { a href={ "#" (purpose_anchor(p)) } { (p.title) } }
                        }
                    }
                }
                ol class="purposes" aria-label="Purposes" {
                    @for p in purposes {
                        li { (purpose_card(p)) }
                    }
                }
            }
            p class="muted" {
                "The same list is available for programs at "
                a href="/v1/purposes" { "/v1/purposes" }
                " (JSON)."
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_domain::PurposeDraft;

    fn purpose(id: &str, title: &str, basis: &str) -> Purpose {
        PurposeDraft {
            id: id.into(),
            title: title.into(),
            description: format!("What {id} does."),
            legal_basis: basis.into(),
            categories: vec!["browsing".into(), "sensitive:health".into()],
            ..PurposeDraft::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn every_purpose_is_listed_and_linked_in_order() {
        let html = privacy(&[
            purpose("personalization", "Recommendations for you", "consent"),
            purpose("orders", "Delivering your orders", "contract"),
        ])
        .into_string();
        let first = html.find(r#"<article class="purpose" id="purpose-personalization""#);
        let second = html.find(r#"<article class="purpose" id="purpose-orders""#);
        assert!(first.unwrap() < second.unwrap());
        assert!(html.contains(r##"<a href="#purpose-orders">Delivering your orders</a>"##));
        assert!(html.contains("Purposes on this page (2)"));
        assert!(html.contains("<dt>Browsing activity</dt>"));
        assert!(html.contains("<dt>Sensitive: health</dt>"));
        assert!(!html.contains("No purposes are declared yet."));
    }

    #[test]
    fn each_legal_basis_is_explained_in_words() {
        let html = privacy(&[
            purpose("a", "A", "consent"),
            purpose("b", "B", "legitimate_interest"),
            purpose("c", "C", "contract"),
            purpose("d", "D", "legal_obligation"),
        ])
        .into_string();
        assert!(html.contains("Only with your permission; you can withdraw it at any time."));
        assert!(html.contains("you can object at any time"));
        assert!(html.contains("such as delivering an order"));
        assert!(html.contains("The law requires us to do this"));
        assert!(!html.contains("legitimate_interest"));
        assert!(!html.contains("legal_obligation"));
    }

    #[test]
    fn hostile_text_is_escaped_everywhere_it_appears() {
        let mut p = purpose("x", "<script>alert(1)</script>", "consent");
        p.description = "\"><img src=x onerror=alert(2)>".into();
        p.change_note = Some("</p><script>alert(3)</script>".into());
        p.version = 2;
        let html = privacy(&[p]).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
        assert!(html.contains("What changed in version 2: </strong>&lt;/p&gt;&lt;script&gt;"));
    }

    #[test]
    fn no_purposes_shows_an_empty_state_not_an_empty_list() {
        let html = privacy(&[]).into_string();
        assert!(html.contains("No purposes are declared yet."));
        assert!(!html.contains("class=\"toc\""));
        assert!(!html.contains("class=\"purposes\""));
        assert!(html.contains("<h1>How we use your data</h1>"));
    }
}
