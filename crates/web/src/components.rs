//! Pieces more than one page shows, and the plain-language words for domain values.
//!
//! The wording lives here, next to the markup, so every page describes a legal basis or a data
//! category the same way.

use candor_domain::{DataCategory, LegalBasis, Purpose};
use maud::{Markup, html};

/// What a legal basis means for the person reading, and what they can do about it.
pub fn legal_basis_explanation(basis: LegalBasis) -> &'static str {
    match basis {
        LegalBasis::Consent => "Only with your permission; you can withdraw it at any time.",
        LegalBasis::LegitimateInterest => {
            "We do this because it is in our legitimate interest and does not override your rights; you can object at any time and we will stop."
        }
        LegalBasis::Contract => {
            "We need this to provide what you asked us for, such as delivering an order. It is not optional while you use the service."
        }
        LegalBasis::LegalObligation => {
            "The law requires us to do this, so it happens whatever you choose."
        }
    }
}

/// A category's name as a person would say it.
pub fn category_name(category: &DataCategory) -> String {
    match category {
        DataCategory::Browsing => "Browsing activity".into(),
        DataCategory::Purchase => "Purchases".into(),
        DataCategory::DeclaredPreference => "Preferences you tell us".into(),
        DataCategory::Contact => "Contact details".into(),
        DataCategory::Location => "Location".into(),
        DataCategory::Demographic => "Demographic information".into(),
        DataCategory::Device => "Device information".into(),
        DataCategory::Sensitive(kind) => format!("Sensitive: {}", kind.replace('_', " ")),
    }
}

/// What a category covers, in one sentence.
pub fn category_description(category: &DataCategory) -> String {
    match category {
        DataCategory::Browsing => "The pages and products you look at on our site.".into(),
        DataCategory::Purchase => "What you buy from us, and when.".into(),
        DataCategory::DeclaredPreference => {
            "Interests and choices you have told us about yourself.".into()
        }
        DataCategory::Contact => {
            "Your name, email address, phone number or postal address. Stored encrypted.".into()
        }
        DataCategory::Location => "Where you are, such as your city or region.".into(),
        DataCategory::Demographic => "Facts such as your age group.".into(),
        DataCategory::Device => "The browser and device you use.".into(),
        DataCategory::Sensitive(kind) => format!(
            "Information about your {}. Never used unless you explicitly opt in.",
            kind.replace('_', " ")
        ),
    }
}

/// The data categories a purpose may use, as a definition list: name, then what it covers.
pub fn category_list(categories: &[DataCategory]) -> Markup {
    html! {
        dl class="categories" {
            @for c in categories {
                dt { (category_name(c)) }
                dd { (category_description(c)) }
            }
        }
    }
}

/// A badge for something a person may want to know before agreeing. Its text says what it
/// means; the colour only draws the eye.
pub fn flag(text: &str) -> Markup {
    html! { li class="flag" { (text) } }
}

/// The anchor id of a purpose's card. Purpose ids are `[a-z0-9_-]`, so this is a valid id.
pub fn purpose_anchor(purpose: &Purpose) -> String {
    format!("purpose-{}", purpose.id)
}

fn days(n: u32) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// One purpose, everything a person needs to decide about it. Its title is an `<h3>`: cards sit
/// under a section heading.
pub fn purpose_card(p: &Purpose) -> Markup {
    let anchor = purpose_anchor(p);
    let title_id = format!("{anchor}-title");
    html! {
        article class="purpose" id=(anchor) aria-labelledby=(title_id) {
            div class="purpose-head" {
                h3 id=(title_id) { (p.title) }
                p class="purpose-version" { "Version " (p.version) }
            }
            @if p.sale_or_sharing || p.non_essential_tracking {
                ul class="flags" aria-label="Before you agree" {
                    @if p.sale_or_sharing { (flag("Shares data with other companies")) }
                    @if p.non_essential_tracking { (flag("Non-essential tracking")) }
                }
            }
            div class="purpose-description" {
                // Descriptions may hold line breaks; each line is a paragraph.
                @for para in p.description.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    p { (para) }
                }
            }
            @if let Some(note) = &p.change_note {
                div class="note" {
                    p { strong { "What changed in version " (p.version) ": " } (note) }
                }
            }
            dl class="facts" {
                dt { "Why we may do this" }
                dd { (legal_basis_explanation(p.legal_basis)) }
                dt { "Data it may use" }
                dd { (category_list(&p.categories)) }
                dt { "Sold or shared" }
                dd {
                    @if p.sale_or_sharing {
                        "Yes: data is sold to or shared with other companies. A Global Privacy Control or Do Not Track signal from your browser counts as saying no."
                    } @else {
                        "No: this purpose does not sell your data or share it with other companies."
                    }
                }
                dt { "About you as a person" }
                dd {
                    @if p.person_level {
                        "Yes: this purpose may build a profile of you, such as your interests and how recently you bought something."
                    } @else {
                        "No: your data only counts in totals and averages, never in a profile of you."
                    }
                }
                dt { "Non-essential tracking" }
                dd {
                    @if p.non_essential_tracking {
                        "Yes: the service works without it. A Global Privacy Control or Do Not Track signal from your browser counts as saying no."
                    } @else {
                        "No."
                    }
                }
                @if let Some(n) = p.expires_after_days {
                    dt { "How long permission lasts" }
                    dd { (days(n)) ", then we ask you again." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_domain::PurposeDraft;

    fn purpose(edit: impl FnOnce(&mut PurposeDraft)) -> Purpose {
        let mut d = PurposeDraft {
            id: "personalization".into(),
            title: "Recommendations".into(),
            description: "We suggest products.".into(),
            legal_basis: "consent".into(),
            categories: vec!["browsing".into()],
            ..PurposeDraft::default()
        };
        edit(&mut d);
        d.validate().unwrap()
    }

    #[test]
    fn the_consent_wording_says_permission_can_be_withdrawn() {
        assert_eq!(
            legal_basis_explanation(LegalBasis::Consent),
            "Only with your permission; you can withdraw it at any time."
        );
        assert!(legal_basis_explanation(LegalBasis::LegitimateInterest).contains("object"));
        assert!(legal_basis_explanation(LegalBasis::LegalObligation).contains("law"));
    }

    #[test]
    fn no_category_is_shown_by_its_code_name() {
        for c in [
            DataCategory::Browsing,
            DataCategory::Purchase,
            DataCategory::DeclaredPreference,
            DataCategory::Contact,
            DataCategory::Location,
            DataCategory::Demographic,
            DataCategory::Device,
        ] {
            assert_ne!(category_name(&c), c.to_string());
            assert!(!category_name(&c).contains('_'));
        }
        let health = DataCategory::parse("sensitive:mental_health").unwrap();
        assert_eq!(category_name(&health), "Sensitive: mental health");
        assert!(category_description(&health).contains("explicitly opt in"));
    }

    #[test]
    fn flags_are_stated_in_words_whichever_way_they_go() {
        let plain = purpose_card(&purpose(|_| {})).into_string();
        assert!(plain.contains("No: this purpose does not sell"));
        assert!(!plain.contains("class=\"flags\""));
        assert!(!plain.contains("How long permission lasts"));
        assert!(plain.contains("never in a profile of you"));

        let flagged = purpose_card(&purpose(|d| {
            d.sale_or_sharing = true;
            d.non_essential_tracking = true;
            d.expires_after_days = Some(1);
            d.person_level = true;
        }))
        .into_string();
        assert!(flagged.contains(r#"<li class="flag">Shares data with other companies</li>"#));
        assert!(flagged.contains(r#"<li class="flag">Non-essential tracking</li>"#));
        assert!(flagged.contains("Global Privacy Control"));
        assert!(flagged.contains("Do Not Track"));
        assert!(flagged.contains("1 day, then we ask you again."));
        assert!(flagged.contains("may build a profile of you"));
    }

    #[test]
    fn description_lines_become_paragraphs() {
        let card =
            purpose_card(&purpose(|d| d.description = "First.\n\nSecond.".into())).into_string();
        assert!(card.contains("<p>First.</p><p>Second.</p>"));
    }
}
