//! `/preferences`: one person's own page, reached through a signed link. Works without
//! JavaScript: every control is a plain form posting back here with a CSRF token.
//!
//! Invariants: nothing is pre-selected that the person did not choose (a purpose never answered,
//! expired or changed since shows no choice ticked); granting and withdrawing are the same
//! control, one action each; every state is said in words; an error is shown next to its field
//! and the field names it (`aria-invalid`, `aria-describedby`); every string is from the catalog
//! except the operator's own texts (purpose titles, item titles, reasons).

use candor_domain::preferences::{Level, QuietPeriod};
use candor_domain::{ConsentStatus, LegalBasis, Micros, Purpose};
use maud::{Markup, html};

use crate::components::category_list;
use crate::csrf::hidden_field;
use crate::i18n::{Lang, M};
use crate::layout;

/// Where the page lives; every form posts under it.
pub const PATH: &str = "/preferences";

/// One purpose the person can decide about, with where they stand.
#[derive(Debug, Clone)]
pub struct PurposeChoice {
    pub purpose: Purpose,
    pub status: ConsentStatus,
}

/// One suggested item with its reasons.
#[derive(Debug, Clone)]
pub struct PreviewItem {
    pub title: String,
    pub reasons: Vec<String>,
}

/// What the person would see at one level, computed live.
#[derive(Debug, Clone)]
pub struct LevelPreview {
    pub level: Level,
    /// Why this level's answer is not personal, when it is not (no consent, a quiet period).
    pub note: Option<String>,
    pub items: Vec<PreviewItem>,
}

/// An item once shown to the person, from the decision log.
#[derive(Debug, Clone)]
pub struct Shown {
    pub item: String,
    pub surface: String,
    pub at: String,
}

/// One of the person's rights requests.
#[derive(Debug, Clone)]
pub struct RequestLine {
    pub kind: String,
    pub status: String,
    pub due_at: Micros,
}

/// A refused form value: which field (`purpose.<id>`, `level`, `occasion`, `from`, `until`) and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: M,
    /// What the person typed into the refused form's text fields, shown again so they only fix
    /// the marked one.
    pub entered: Vec<(String, String)>,
}

/// What the last action did, shown at the top of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Saved,
    NothingChanged,
}

impl Notice {
    pub fn code(self) -> &'static str {
        match self {
            Notice::Saved => "saved",
            Notice::NothingChanged => "unchanged",
        }
    }
    pub fn parse(s: &str) -> Option<Notice> {
        match s {
            "saved" => Some(Notice::Saved),
            "unchanged" => Some(Notice::NothingChanged),
            _ => None,
        }
    }
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct PreferenceCenter {
    pub lang: Lang,
    pub csrf: String,
    pub purposes: Vec<PurposeChoice>,
    pub level: Level,
    pub previews: Vec<LevelPreview>,
    pub quiet: Vec<QuietPeriod>,
    /// The catalog's categories: (id, name, sensitive).
    pub categories: Vec<(String, String, bool)>,
    pub declared_interests: Vec<String>,
    pub sensitive_opt_ins: Vec<String>,
    /// Sections of the export and how many records each holds.
    pub held: Vec<(String, usize)>,
    pub shown: Vec<Shown>,
    pub requests: Vec<RequestLine>,
    pub notice: Option<Notice>,
    pub error: Option<FieldError>,
}

fn date(at: Micros) -> String {
    candor_domain::format_micros(at).chars().take(10).collect()
}

fn level_text(level: Level) -> M {
    match level {
        Level::Off => M::LevelOff,
        Level::Basic => M::LevelBasic,
        Level::Full => M::LevelFull,
    }
}

fn status_text(status: &ConsentStatus) -> M {
    match status {
        ConsentStatus::Granted { .. } => M::StateGranted,
        ConsentStatus::Denied { .. } => M::StateDenied,
        ConsentStatus::NotAsked => M::StateNotAsked,
        ConsentStatus::Expired { .. } => M::StateExpired,
        ConsentStatus::NeedsRenewal { .. } => M::StateRenewal,
        ConsentStatus::LegitimateInterest => M::StateLegitimate,
        ConsentStatus::NotRequired => M::StateGranted,
        ConsentStatus::Restricted { .. } => M::StateRestricted,
    }
}

/// The form's hidden fields: the CSRF token and the language, so the answer comes back in it.
fn hidden(p: &PreferenceCenter) -> Markup {
    html! {
        (hidden_field(&p.csrf))
        input type="hidden" name="lang" value=(p.lang.code());
    }
}

/// The error for `field`, if it is the refused one, as `(id of the message, markup)`.
fn error_for(p: &PreferenceCenter, field: &str) -> Option<(String, Markup)> {
    let e = p.error.as_ref().filter(|e| e.field == field)?;
    let id = format!("error-{}", field.replace('.', "-"));
    let markup = html! {
        p class="field-error" id=(id) {
            strong { (M::ErrorPrefix.text(p.lang)) } " " (e.message.text(p.lang))
        }
    };
    Some((id, markup))
}

fn purpose_fieldset(p: &PreferenceCenter, c: &PurposeChoice) -> Markup {
    let l = p.lang;
    let name = format!("purpose.{}", c.purpose.id);
    let error = error_for(p, &name);
    let described = error.as_ref().map(|(id, _)| id.clone());
    let (grant_checked, deny_checked) = match c.status {
        ConsentStatus::Granted { .. } => (true, false),
        ConsentStatus::Denied { .. } => (false, true),
        _ => (false, false),
    };
    let deny_label = if c.purpose.legal_basis == LegalBasis::LegitimateInterest {
        M::Object
    } else {
        M::DontAllow
    };
    let base = format!("p-{}", c.purpose.id);
    html! {
        fieldset class="choice" id=(base) aria-describedby=[described.as_deref()] {
            legend { (c.purpose.title) }
            p class="state" { strong { (M::Now.text(l)) } " " (status_text(&c.status).text(l)) }
            @if let ConsentStatus::NeedsRenewal { .. } = c.status {
                @if let Some(note) = &c.purpose.change_note {
                    div class="note" { p { strong { (M::WhatChanged.text(l)) } " " (note) } }
                }
            }
            @for para in c.purpose.description.lines().map(str::trim).filter(|s| !s.is_empty()) {
                p { (para) }
            }
            details {
                summary { (M::DataUsed.text(l)) }
                (category_list(&c.purpose.categories))
            }
            @if let Some((_, markup)) = &error { (markup) }
            div class="options" {
                label class="option" {
                    input type="radio" name=(name) value="grant" checked[grant_checked];
                    span { (M::Allow.text(l)) }
                }
                label class="option" {
                    input type="radio" name=(name) value="deny" checked[deny_checked];
                    span { (deny_label.text(l)) }
                }
            }
        }
    }
}

fn previews(p: &PreferenceCenter) -> Markup {
    let l = p.lang;
    html! {
        h3 { (M::Preview.text(l)) }
        div class="previews" {
            @for pv in &p.previews {
                section class="preview" aria-labelledby={ "preview-" (pv.level.as_str()) } {
                    h4 id={ "preview-" (pv.level.as_str()) } {
                        (level_text(pv.level).text(l))
                        @if pv.level == p.level { " " (M::Chosen.text(l)) }
                    }
                    @if let Some(note) = &pv.note { p class="muted" { (note) } }
                    @if pv.items.is_empty() {
                        p { (M::PreviewEmpty.text(l)) }
                    } @else {
                        ol class="items" { @for it in &pv.items { li { (it.title) } } }
                    }
                }
            }
        }
    }
}

fn interests_section(p: &PreferenceCenter) -> Markup {
    let l = p.lang;
    let error = error_for(p, "interests");
    let boxes = |sensitive: bool, name: &str, chosen: &[String]| {
        html! {
            div class="options" {
                @for (id, label, _) in p.categories.iter().filter(|c| c.2 == sensitive) {
                    label class="option" {
                        input type="checkbox" name=(name) value=(id) checked[chosen.contains(id)];
                        span { (label) }
                    }
                }
            }
        }
    };
    html! {
        section class="group" aria-labelledby="interests" {
            h2 id="interests" { (M::Interests.text(l)) }
            @if let Some((_, markup)) = &error { (markup) }
            form method="post" action={ (PATH) "/interests" } class="stack" {
                (hidden(p))
                fieldset class="choice" aria-describedby=[error.as_ref().map(|(e, _)| e.as_str())] {
                    legend { (M::Interests.text(l)) }
                    p { (M::InterestsIntro.text(l)) }
                    (boxes(false, "interest", &p.declared_interests))
                }
                @if p.categories.iter().any(|c| c.2) {
                    fieldset class="choice" {
                        legend { (M::Sensitive.text(l)) }
                        p { (M::SensitiveIntro.text(l)) }
                        (boxes(true, "sensitive", &p.sensitive_opt_ins))
                    }
                }
                button type="submit" class="button" { (M::SaveInterests.text(l)) }
            }
        }
    }
}

fn quiet_section(p: &PreferenceCenter) -> Markup {
    let l = p.lang;
    let field = |name: &str, label: M, kind: &str| {
        let error = error_for(p, name);
        let id = format!("quiet-{name}");
        let value = p
            .error
            .as_ref()
            .and_then(|e| e.entered.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str());
        html! {
            div class="field" {
                label for=(id) { (label.text(l)) }
                @if let Some((_, markup)) = &error { (markup) }
                input type=(kind) id=(id) name=(name) value=[value] required aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[error.as_ref().map(|(e, _)| e.as_str())];
            }
        }
    };
    let occasion_error = error_for(p, "occasion");
    html! {
        section class="group" aria-labelledby="quiet" {
            h2 id="quiet" { (M::Quiet.text(l)) }
            p class="group-intro" { (M::QuietIntro.text(l)) }
            @if p.quiet.is_empty() {
                p { (M::NoQuiet.text(l)) }
            } @else {
                ul class="quiet-list" {
                    @for (i, q) in p.quiet.iter().enumerate() {
                        li {
                            span { (q.label.as_deref().unwrap_or("")) ": " (date(q.from)) " – " (date(q.until - 1)) }
                            form method="post" action={ (PATH) "/quiet/remove" } class="inline" {
                                (hidden(p))
                                input type="hidden" name="index" value=(i);
                                button type="submit" class="button secondary" aria-label={ (M::Remove.text(l)) ": " (q.label.as_deref().unwrap_or("")) " " (date(q.from)) } { (M::Remove.text(l)) }
                            }
                        }
                    }
                }
            }
            form method="post" action={ (PATH) "/quiet" } class="stack" {
                (hidden(p))
                div class="field" {
                    label for="quiet-occasion" { (M::Occasion.text(l)) }
                    @if let Some((_, markup)) = &occasion_error { (markup) }
                    select id="quiet-occasion" name="occasion" aria-invalid=[occasion_error.as_ref().map(|_| "true")] aria-describedby=[occasion_error.as_ref().map(|(e, _)| e.as_str())] {
                        option value="mothers_day" { (M::MothersDay.text(l)) }
                        option value="fathers_day" { (M::FathersDay.text(l)) }
                        option value="valentines_day" { (M::Valentines.text(l)) }
                        option value="custom" { (M::Custom.text(l)) }
                    }
                }
                (field("from", M::From, "text"))
                (field("until", M::Until, "text"))
                button type="submit" class="button" { (M::AddQuiet.text(l)) }
            }
        }
    }
}

/// The preference center.
pub fn preference_center(p: &PreferenceCenter) -> Markup {
    let l = p.lang;
    let choosable: Vec<&PurposeChoice> = p
        .purposes
        .iter()
        .filter(|c| !c.purpose.legal_basis.is_strictly_necessary())
        .collect();
    let level_error = error_for(p, "level");
    let sections = [
        ("permissions", M::Permissions),
        ("personalization", M::Personalization),
        ("interests", M::Interests),
        ("quiet", M::Quiet),
        ("why", M::Why),
        ("held", M::Held),
        ("your-data", M::YourData),
        ("requests", M::Requests),
    ];
    layout::page_in(
        l,
        M::Title.text(l),
        Some(PATH),
        html! {
            h1 { (M::Title.text(l)) }
            p class="lead" { (M::Lead.text(l)) }
            @if let Some(n) = p.notice {
                div class="notice" role="status" {
                    p { (match n { Notice::Saved => M::Saved, Notice::NothingChanged => M::NothingChanged }.text(l)) }
                }
            }
            @if let Some(e) = &p.error {
                div class="error-summary" role="alert" {
                    p { strong { (M::ErrorPrefix.text(l)) } " " (M::FixBelow.text(l)) " " (e.message.text(l)) }
                }
            }
            nav class="toc" aria-labelledby="toc-title" {
                h2 id="toc-title" { (M::Contents.text(l)) }
                ol { @for (id, m) in sections { li { a href={ "#" (id) } { (m.text(l)) } } } }
            }

            section class="group" aria-labelledby="permissions" {
                h2 id="permissions" { (M::Permissions.text(l)) }
                p class="group-intro" { (M::PermissionsIntro.text(l)) }
                @if choosable.is_empty() {
                    p { (M::NoPurposes.text(l)) }
                } @else {
                    form method="post" action={ (PATH) "/consents" } class="stack" {
                        (hidden(p))
                        @for c in &choosable { (purpose_fieldset(p, c)) }
                        button type="submit" class="button" { (M::SaveChoices.text(l)) }
                    }
                }
            }

            section class="group" aria-labelledby="personalization" {
                h2 id="personalization" { (M::Personalization.text(l)) }
                form method="post" action={ (PATH) "/level" } class="stack" {
                    (hidden(p))
                    fieldset class="choice" aria-describedby=[level_error.as_ref().map(|(e, _)| e.as_str())] {
                        legend { (M::LevelLegend.text(l)) }
                        @if let Some((_, markup)) = &level_error { (markup) }
                        div class="options vertical" {
                            @for level in [Level::Off, Level::Basic, Level::Full] {
                                label class="option" {
                                    input type="radio" name="level" value=(level.as_str()) checked[level == p.level];
                                    span { (level_text(level).text(l)) }
                                }
                            }
                        }
                    }
                    button type="submit" class="button" { (M::SaveLevel.text(l)) }
                }
                (previews(p))
                form method="post" action={ (PATH) "/too-personal" } class="stack" {
                    (hidden(p))
                    p class="muted" id="too-personal-help" { (M::TooPersonalHelp.text(l)) }
                    button type="submit" class="button secondary" aria-describedby="too-personal-help" { (M::TooPersonal.text(l)) }
                }
            }

            @if !p.categories.is_empty() { (interests_section(p)) }
            (quiet_section(p))

            section class="group" aria-labelledby="why" {
                h2 id="why" { (M::Why.text(l)) }
                p class="group-intro" { (M::WhyIntro.text(l)) }
                @if let Some(current) = p.previews.iter().find(|pv| pv.level == p.level) {
                    @if current.items.is_empty() {
                        p { (M::PreviewEmpty.text(l)) }
                    } @else {
                        dl class="facts" {
                            @for it in &current.items {
                                dt { (it.title) }
                                dd { (it.reasons.join("; ")) }
                            }
                        }
                    }
                }
                h3 { (M::RecentShown.text(l)) }
                @if p.shown.is_empty() {
                    p { (M::NoneShown.text(l)) }
                } @else {
                    ul { @for s in &p.shown { li { (s.item) " (" (s.surface) ", " (s.at) ")" } } }
                }
            }

            section class="group" aria-labelledby="held" {
                h2 id="held" { (M::Held.text(l)) }
                p class="group-intro" { (M::HeldIntro.text(l)) }
                ul class="held" {
                    @for (section, n) in &p.held { li { strong { (section) } ": " (n) " " (M::Records.text(l)) } }
                }
            }

            section class="group" aria-labelledby="your-data" {
                h2 id="your-data" { (M::YourData.text(l)) }
                ul class="actions" {
                    li { a class="button" href={ (PATH) "/export?format=json" } download="my-data.json" { (M::DownloadJson.text(l)) } }
                    li { a class="button" href={ (PATH) "/export?format=csv" } download="my-data.zip" { (M::DownloadCsv.text(l)) } }
                }
                p { (M::EraseIntro.text(l)) }
                p { a class="button danger" href={ (PATH) "/erase?lang=" (l.code()) } { (M::Erase.text(l)) } }
            }

            section class="group" aria-labelledby="requests" {
                h2 id="requests" { (M::Requests.text(l)) }
                @if p.requests.is_empty() {
                    p { (M::NoRequests.text(l)) }
                } @else {
                    table {
                        thead { tr { th scope="col" { (M::Kind.text(l)) } th scope="col" { (M::Status.text(l)) } th scope="col" { (M::Due.text(l)) } } }
                        tbody {
                            @for r in &p.requests {
                                tr { td { (r.kind) } td { (r.status) } td { (date(r.due_at)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The answer to a valid link: the cookie is set with it, and a `meta` refresh (with a link for
/// browsers that ignore it) moves on to the page. Not an HTTP redirect: a `SameSite=Strict`
/// cookie is not sent on a redirect that a click in another site's email started, but it is
/// on a navigation this page starts.
pub fn opening(lang: Lang) -> Markup {
    let href = format!("{PATH}?lang={}", lang.code());
    layout::page_with_head(
        lang,
        M::Title.text(lang),
        None,
        html! { meta http-equiv="refresh" content={ "0;url=" (href) }; },
        html! {
            h1 { (M::Title.text(lang)) }
            p { a href=(href) { (M::Continue.text(lang)) } }
        },
    )
}

/// The confirmation step before erasure.
pub fn erase_confirm(lang: Lang, csrf: &str) -> Markup {
    layout::page_in(
        lang,
        M::EraseConfirmTitle.text(lang),
        None,
        html! {
            h1 { (M::EraseConfirmTitle.text(lang)) }
            p class="lead" { (M::EraseConfirmText.text(lang)) }
            form method="post" action={ (PATH) "/erase" } class="stack" {
                (hidden_field(csrf))
                input type="hidden" name="lang" value=(lang.code());
                div class="field checkbox" {
                    input type="checkbox" id="suppress" name="suppress" value="yes";
                    label for="suppress" { (M::EraseSuppress.text(lang)) }
                }
                div class="actions-row" {
                    button type="submit" class="button danger" { (M::EraseYes.text(lang)) }
                    a class="button secondary" href={ (PATH) "?lang=" (lang.code()) } { (M::EraseNo.text(lang)) }
                }
            }
        },
    )
}

/// After erasure: what happened and the receipt's id.
pub fn erased(lang: Lang, receipt_id: &str) -> Markup {
    layout::page_in(
        lang,
        M::Erased.text(lang),
        None,
        html! {
            h1 { (M::Erased.text(lang)) }
            p { (M::ReceiptId.text(lang)) ": " code { (receipt_id) } }
        },
    )
}

/// A plain page with a heading, one paragraph and, when the person has a page to go back to, a
/// link to it: the refused link, the expired form, the oversized form.
pub fn message(lang: Lang, title: M, text: M, back: bool) -> Markup {
    layout::page_in(
        lang,
        title.text(lang),
        None,
        html! {
            h1 { (title.text(lang)) }
            p class="lead" { (text.text(lang)) }
            @if back { p { a href={ (PATH) "?lang=" (lang.code()) } { (M::BackToChoices.text(lang)) } } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_domain::PurposeDraft;

    fn purpose(id: &str, basis: &str, note: Option<&str>) -> Purpose {
        PurposeDraft {
            id: id.into(),
            title: format!("Title {id}"),
            description: "What it does.".into(),
            legal_basis: basis.into(),
            categories: vec!["browsing".into()],
            change_note: note.map(str::to_owned),
            ..PurposeDraft::default()
        }
        .validate()
        .unwrap()
    }

    fn center(statuses: Vec<(Purpose, ConsentStatus)>) -> PreferenceCenter {
        PreferenceCenter {
            lang: Lang::En,
            csrf: "tok".into(),
            purposes: statuses
                .into_iter()
                .map(|(purpose, status)| PurposeChoice { purpose, status })
                .collect(),
            level: Level::Basic,
            previews: vec![],
            quiet: vec![],
            categories: vec![],
            declared_interests: vec![],
            sensitive_opt_ins: vec![],
            held: vec![],
            shown: vec![],
            requests: vec![],
            notice: None,
            error: None,
        }
    }

    #[test]
    fn nothing_is_ticked_that_the_person_did_not_choose() {
        let html = preference_center(&center(vec![
            (purpose("a", "consent", None), ConsentStatus::NotAsked),
            (
                purpose("b", "consent", Some("Now also uses purchases.")),
                ConsentStatus::NeedsRenewal {
                    consented_version: 1,
                    current_version: 2,
                },
            ),
            (
                purpose("c", "consent", None),
                ConsentStatus::Denied { since: 0 },
            ),
            (
                purpose("orders", "contract", None),
                ConsentStatus::NotRequired,
            ),
        ]))
        .into_string();
        // Only the denial the person made is selected among purpose choices (and the level).
        let purpose_checks = html.matches(r#"name="purpose."#).count();
        assert_eq!(
            purpose_checks, 6,
            "two radios for each of the three choosable purposes"
        );
        assert_eq!(
            html.matches("checked").count(),
            2,
            "c's denial and the level"
        );
        assert!(html.contains(r#"name="purpose.c" value="deny" checked"#));
        assert!(html.contains("Now also uses purchases."));
        assert!(
            !html.contains("purpose.orders"),
            "strictly necessary: no choice offered"
        );
        assert!(html.contains("<legend>Title a</legend>"));
    }

    #[test]
    fn an_error_is_shown_next_to_its_field_and_names_it() {
        let mut c = center(vec![(
            purpose("a", "consent", None),
            ConsentStatus::NotAsked,
        )]);
        c.error = Some(FieldError {
            field: "from".into(),
            message: M::BadDate,
            entered: vec![("from".into(), "2026-13-01\"".into())],
        });
        let html = preference_center(&c).into_string();
        let err = html.find(r#"id="error-from""#).unwrap();
        let input = html.find(r#"id="quiet-from""#).unwrap();
        assert!(err < input);
        assert!(html.contains(r#"aria-invalid="true" aria-describedby="error-from""#));
        assert!(html.contains("role=\"alert\""));
        assert!(
            html.contains(r#"value="2026-13-01&quot;""#),
            "typed text comes back, escaped"
        );
    }

    #[test]
    fn the_page_speaks_the_chosen_language() {
        let mut c = center(vec![]);
        c.lang = Lang::De;
        let html = preference_center(&c).into_string();
        assert!(html.contains(r#"<html lang="de">"#));
        assert!(html.contains("Ihre Datenschutz-Einstellungen"));
        assert!(html.contains(r#"aria-current="true">Deutsch"#));
        assert!(!html.contains("<script"));
    }
}
