//! `/privacy`: every declared purpose in plain language. Public, the same for everyone.

use candor_domain::{LegalBasis, Purpose};
use maud::{Markup, html};

use crate::components::{purpose_anchor, purpose_card};
use crate::layout;

/// A section of the notice: the purposes resting on one kind of legal ground.
struct Group {
    id: &'static str,
    heading: &'static str,
    intro: &'static str,
    bases: &'static [LegalBasis],
}

/// Choices first, since those are what a reader can act on; what runs regardless comes last.
const GROUPS: [Group; 3] = [
    Group {
        id: "with-permission",
        heading: "Only with your permission",
        intro: "None of these happen until you agree, and you can withdraw your permission at any time.",
        bases: &[LegalBasis::Consent],
    },
    Group {
        id: "unless-you-object",
        heading: "Unless you object",
        intro: "We do these because they are in our legitimate interest. You can object at any time and we will stop.",
        bases: &[LegalBasis::LegitimateInterest],
    },
    Group {
        id: "always",
        heading: "Needed to serve you, or required by law",
        intro: "These happen without asking: we could not provide the service, or obey the law, without them.",
        bases: &[LegalBasis::Contract, LegalBasis::LegalObligation],
    },
];

/// The privacy notice: `purposes` grouped by what a person can do about them, in the order
/// given within each group.
pub fn privacy(purposes: &[Purpose]) -> Markup {
    let groups: Vec<(&Group, Vec<&Purpose>)> = GROUPS
        .iter()
        .map(|g| {
            let members = purposes
                .iter()
                .filter(|p| g.bases.contains(&p.legal_basis))
                .collect::<Vec<_>>();
            (g, members)
        })
        .filter(|(_, members)| !members.is_empty())
        .collect();
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
                        @for (_, members) in &groups {
                            @for p in members {
                                li { a href={ "#" (purpose_anchor(p)) } { (p.title) } }
                            }
                        }
                    }
                }
                @for (group, members) in &groups {
                    section class="group" aria-labelledby=(group.id) {
                        h2 id=(group.id) { (group.heading) }
                        p class="group-intro" { (group.intro) }
                        ol class="purposes" {
                            @for p in members {
                                li { (purpose_card(p)) }
                            }
                        }
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
    fn purposes_are_grouped_choices_first_in_the_order_given() {
        let html = privacy(&[
            purpose("orders", "Delivering your orders", "contract"),
            purpose("fraud", "Fraud checks", "legal_obligation"),
            purpose("security", "Keeping the site safe", "legitimate_interest"),
            purpose("analytics", "Site analytics", "consent"),
            purpose("ads", "Advertising", "consent"),
        ])
        .into_string();
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let order = [
            at(r#"<h2 id="with-permission">"#),
            at(r#"id="purpose-analytics""#),
            at(r#"id="purpose-ads""#),
            at(r#"<h2 id="unless-you-object">"#),
            at(r#"id="purpose-security""#),
            at(r#"<h2 id="always">"#),
            at(r#"id="purpose-orders""#),
            at(r#"id="purpose-fraud""#),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn a_group_without_purposes_is_left_out() {
        let html = privacy(&[purpose("orders", "Orders", "contract")]).into_string();
        assert!(!html.contains("with-permission"));
        assert!(!html.contains("unless-you-object"));
        assert!(html.contains(r#"<h2 id="always">"#));
    }

    #[test]
    fn every_purpose_is_listed_and_linked_in_order() {
        let html = privacy(&[
            purpose("personalization", "Recommendations for you", "consent"),
            purpose("orders", "Delivering your orders", "contract"),
        ])
        .into_string();
        assert!(html.contains(r#"<article class="purpose" id="purpose-personalization""#));
        assert!(html.contains(r#"<article class="purpose" id="purpose-orders""#));
        assert!(html.contains(r#"<h3 id="purpose-orders-title">Delivering your orders</h3>"#));
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
