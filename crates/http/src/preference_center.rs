//! The preference center's handlers: a person's own page, reached through a signed link.
//!
//! The link's token becomes an HttpOnly, SameSite=Strict cookie scoped to the page's path; every
//! request re-verifies it, so rotating the link key ends every session at once. Forms carry a
//! CSRF token bound to that cookie. Every change is made through the same use cases as the API
//! with source `preference_center`, and the page is answered with a redirect (post, redirect,
//! get) so a reload does not send a form again.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use candor_app::personalization::recommend::RecommendRequest;
use candor_app::rights::{NewRequest, SubjectRef};
use candor_app::{AppError, ConsentRequest};
use candor_domain::preferences::{Level, PreferenceSource, PreferencesPatch, QuietPeriod};
use candor_domain::{Micros, SubjectKey};
use candor_web::csrf::{self, CsrfKey};
use candor_web::headers::Cache;
use candor_web::i18n::{Lang, M};
use candor_web::pages::preferences::{
    self as page, FieldError, LevelPreview, Notice, PATH, PreferenceCenter, PreviewItem,
    PurposeChoice, RequestLine, Shown,
};
use serde::Deserialize;

use crate::AppState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "candor_pc";
/// How the page acts in the audit log and consent proofs.
const ACTOR: &str = "preference_center";
/// What possession of the link counts as, recorded on requests made from the page.
const VERIFICATION: &str = "signed preference-center link";
const CSRF_TTL: Micros = 2 * 3_600_000_000;
const DAY: Micros = 86_400_000_000;

type Fields = Vec<(String, String)>;

pub fn routes(max_form_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(candor_app::access::links::LINK_PATH, get(open))
        .route(PATH, get(show))
        .route(&format!("{PATH}/consents"), axum::routing::post(consents))
        .route(&format!("{PATH}/level"), axum::routing::post(level))
        .route(
            &format!("{PATH}/too-personal"),
            axum::routing::post(too_personal),
        )
        .route(&format!("{PATH}/quiet"), axum::routing::post(add_quiet))
        .route(&format!("{PATH}/interests"), axum::routing::post(interests))
        .route(
            &format!("{PATH}/quiet/remove"),
            axum::routing::post(remove_quiet),
        )
        .route(&format!("{PATH}/export"), get(export))
        .route(&format!("{PATH}/erase"), get(erase_confirm).post(erase))
        .layer(axum::extract::DefaultBodyLimit::max(max_form_bytes))
}

#[derive(Deserialize)]
struct OpenQuery {
    token: Option<String>,
    lang: Option<String>,
}

#[derive(Deserialize)]
struct PageQuery {
    lang: Option<String>,
    done: Option<String>,
    format: Option<String>,
}

fn lang_of(choice: Option<&str>, headers: &HeaderMap) -> Lang {
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(choice, accept)
}

fn html(status: StatusCode, markup: candor_web::Markup) -> Response {
    (
        status,
        [(CACHE_CONTROL, Cache::Personal.header_value())],
        Html(markup.into_string()),
    )
        .into_response()
}

/// The one answer to every refused link or missing session: it says nothing about the subject.
fn link_invalid(lang: Lang) -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        page::message(lang, M::LinkInvalidTitle, M::LinkInvalidText, false),
    )
}

fn internal(lang: Lang, e: AppError) -> Response {
    tracing::error!(error = %e, "preference center failed");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page::message(lang, M::FailedTitle, M::FailedText, true),
    )
}

/// The signed-in person: the subject the cookie's token names, and the token (the CSRF session).
struct Session {
    subject: SubjectKey,
    token: String,
}

fn session(app: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))?
        .to_owned();
    let subject = app.open_subject_link(&token).ok()?;
    Some(Session { subject, token })
}

fn csrf_key(app: &AppState) -> CsrfKey {
    CsrfKey::new(&app.page_csrf_secret()).expect("32 bytes")
}

fn cookie(app: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if app.config().pages.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path={PATH}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("token characters are cookie-safe")
}

/// `GET /preferences/open?token=...`: checks the link, sets the session cookie, moves on.
async fn open(State(app): State<AppState>, headers: HeaderMap, q: Query<OpenQuery>) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let Some(token) = q.token.as_deref() else {
        return link_invalid(lang);
    };
    if app.open_subject_link(token).is_err() {
        return link_invalid(lang);
    }
    let expires_at: Micros = token
        .split('.')
        .nth(2)
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let max_age = ((expires_at - app.now()) / 1_000_000).max(0);
    let mut resp = html(StatusCode::OK, page::opening(lang));
    resp.headers_mut()
        .insert(SET_COOKIE, cookie(&app, token, max_age));
    resp
}

/// Reads the form, checks the session and its CSRF token. `Err` is the page to answer with:
/// the link page (no session), 403 (bad token), 413 (too large). Nothing has changed then.
fn checked(
    app: &AppState,
    headers: &HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Result<(Session, Lang, Fields), Box<Response>> {
    let fallback = lang_of(None, headers);
    let fields = match form {
        Ok(Form(f)) => f,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Box::new(html(
                StatusCode::PAYLOAD_TOO_LARGE,
                page::message(fallback, M::TooLargeTitle, M::TooLargeText, true),
            )));
        }
        Err(_) => {
            return Err(Box::new(html(
                StatusCode::BAD_REQUEST,
                page::message(fallback, M::ForbiddenTitle, M::ForbiddenText, true),
            )));
        }
    };
    let lang = lang_of(field(&fields, "lang"), headers);
    let Some(session) = session(app, headers) else {
        return Err(Box::new(link_invalid(lang)));
    };
    let token = field(&fields, csrf::FIELD).unwrap_or("");
    if csrf::verify(&csrf_key(app), &session.token, token, app.now()).is_err() {
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            page::message(lang, M::ForbiddenTitle, M::ForbiddenText, true),
        )));
    }
    Ok((session, lang, fields))
}

fn done(lang: Lang, notice: Notice) -> Response {
    Redirect::to(&format!(
        "{PATH}?lang={}&done={}",
        lang.code(),
        notice.code()
    ))
    .into_response()
}

/// Everything the page shows, read live.
async fn center(
    app: &AppState,
    s: &Session,
    lang: Lang,
    notice: Option<Notice>,
    error: Option<FieldError>,
) -> Result<PreferenceCenter, AppError> {
    let purposes = app
        .subject_consents(&s.subject)
        .await?
        .into_iter()
        .map(|pc| PurposeChoice {
            purpose: pc.purpose,
            status: pc.status,
        })
        .collect();
    let prefs = app.preferences(&s.subject).await?;
    let surface = app
        .config()
        .recommend
        .surfaces
        .first()
        .cloned()
        .unwrap_or_else(|| "home".into());
    let mut previews = Vec::new();
    for level in [Level::Off, Level::Basic, Level::Full] {
        let r = app
            .recommend(
                &s.subject,
                &RecommendRequest {
                    surface: surface.clone(),
                    k: Some(5),
                    preview: Some(level),
                    ..Default::default()
                },
            )
            .await?;
        previews.push(LevelPreview {
            level,
            note: r.fallback,
            items: r
                .items
                .into_iter()
                .map(|i| PreviewItem {
                    title: i.title,
                    reasons: i.reasons,
                })
                .collect(),
        });
    }
    let (held, shown) = match app.export_subject(ACTOR, &s.subject).await {
        Ok(export) => summarize(&export.document),
        Err(AppError::NotFound { .. }) => (vec![], vec![]),
        Err(e) => return Err(e),
    };
    let requests = app
        .subject_requests(&s.subject)
        .await?
        .into_iter()
        .map(|r| RequestLine {
            kind: r.row.kind.clone(),
            status: r.row.status.clone(),
            due_at: r.due_at,
        })
        .collect();
    Ok(PreferenceCenter {
        lang,
        csrf: csrf::issue(&csrf_key(app), &s.token, app.now(), CSRF_TTL),
        purposes,
        level: prefs.level,
        previews,
        quiet: prefs.quiet_periods.clone(),
        categories: app.serving().categories(),
        declared_interests: prefs.declared_interests.clone(),
        sensitive_opt_ins: prefs.sensitive_opt_ins.clone(),
        held,
        shown,
        requests,
        notice,
        error,
    })
}

/// The export's sections with their sizes, and the last ten items shown.
fn summarize(doc: &serde_json::Value) -> (Vec<(String, usize)>, Vec<Shown>) {
    let held = doc
        .as_object()
        .map(|o| {
            // `about` describes the document itself, not data held.
            o.iter()
                .filter(|(k, _)| k.as_str() != "about")
                .filter_map(|(k, v)| match v {
                    serde_json::Value::Array(a) => Some((k.replace('_', " "), a.len())),
                    serde_json::Value::Object(m) if !m.is_empty() => {
                        Some((k.replace('_', " "), m.len()))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    let mut shown: Vec<Shown> = doc["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| Shown {
                    item: text(d, "item_id"),
                    surface: text(d, "surface"),
                    at: text(d, "at").chars().take(10).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    shown.reverse();
    shown.truncate(10);
    (held, shown)
}

async fn render(
    app: &AppState,
    s: &Session,
    lang: Lang,
    status: StatusCode,
    notice: Option<Notice>,
    error: Option<FieldError>,
) -> Response {
    match center(app, s, lang, notice, error).await {
        Ok(c) => html(status, page::preference_center(&c)),
        Err(e) => internal(lang, e),
    }
}

async fn show(State(app): State<AppState>, headers: HeaderMap, q: Query<PageQuery>) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let Some(s) = session(&app, &headers) else {
        return link_invalid(lang);
    };
    let notice = q.done.as_deref().and_then(Notice::parse);
    render(&app, &s, lang, StatusCode::OK, notice, None).await
}

fn invalid(field: &str, message: M) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message,
        entered: vec![],
    }
}

async fn consents(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let mut choices = Vec::new();
    for (k, v) in &fields {
        let Some(pid) = k.strip_prefix("purpose.") else {
            continue;
        };
        let grant = match v.as_str() {
            "grant" => true,
            "deny" => false,
            _ => return bad(&app, &s, lang, invalid(k, M::UnknownChoice)).await,
        };
        choices.push((pid.to_owned(), grant));
    }
    let template = ConsentRequest {
        source: "preference_center".into(),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
        ..Default::default()
    };
    match app
        .record_consent_choices(ACTOR, &s.subject, &choices, template)
        .await
    {
        Ok(Some(_)) => done(lang, Notice::Saved),
        Ok(None) => done(lang, Notice::NothingChanged),
        Err(AppError::UnknownPurpose(p)) => {
            bad(
                &app,
                &s,
                lang,
                invalid(&format!("purpose.{p}"), M::UnknownChoice),
            )
            .await
        }
        Err(e) => internal(lang, e),
    }
}

/// The page again, with the refused field marked: 422.
async fn bad(app: &AppState, s: &Session, lang: Lang, error: FieldError) -> Response {
    render(
        app,
        s,
        lang,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(error),
    )
    .await
}

/// Applies a preferences change; "nothing changed" when it would store what is already there.
async fn change_preferences(
    app: &AppState,
    s: &Session,
    lang: Lang,
    patch: PreferencesPatch,
) -> Response {
    let current = match app.preferences(&s.subject).await {
        Ok(p) => p,
        Err(e) => return internal(lang, e),
    };
    if patch.clone().apply(&current) == *current {
        return done(lang, Notice::NothingChanged);
    }
    match app
        .update_preferences(ACTOR, &s.subject, patch, PreferenceSource::PreferenceCenter)
        .await
    {
        Ok(_) => done(lang, Notice::Saved),
        Err(e) => internal(lang, e),
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn level(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let Some(level) = field(&fields, "level").and_then(|l| Level::parse(l).ok()) else {
        return bad(&app, &s, lang, invalid("level", M::UnknownChoice)).await;
    };
    let patch = PreferencesPatch {
        level: Some(level),
        ..Default::default()
    };
    change_preferences(&app, &s, lang, patch).await
}

/// "This feels too personal": one step down, until a feedback use case exists.
async fn too_personal(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, _) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let current = match app.preferences(&s.subject).await {
        Ok(p) => p.level,
        Err(e) => return internal(lang, e),
    };
    let patch = PreferencesPatch {
        level: Some(current.lower()),
        ..Default::default()
    };
    change_preferences(&app, &s, lang, patch).await
}

/// Declared interests and sensitive opt-ins, both replaced by what the form ticks.
async fn interests(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let categories = app.serving().categories();
    let picked = |name: &str, sensitive: bool| -> Option<Vec<String>> {
        fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                categories
                    .iter()
                    .find(|c| &c.0 == v && c.2 == sensitive)
                    .map(|c| c.0.clone())
            })
            .collect()
    };
    let (Some(declared), Some(sensitive)) = (picked("interest", false), picked("sensitive", true))
    else {
        return bad(&app, &s, lang, invalid("interests", M::UnknownChoice)).await;
    };
    let patch = PreferencesPatch {
        declared_interests: Some(declared),
        sensitive_opt_ins: Some(sensitive),
        ..Default::default()
    };
    change_preferences(&app, &s, lang, patch).await
}

fn day(s: &str) -> Option<Micros> {
    if s.len() != 10 {
        return None;
    }
    candor_domain::parse_rfc3339(&format!("{s}T00:00:00Z")).ok()
}

async fn add_quiet(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    // A refused date comes back with what was typed, so only the marked field needs fixing.
    let typed = |field: &str, message: M| FieldError {
        entered: fields
            .iter()
            .filter(|(k, _)| k == "from" || k == "until")
            .cloned()
            .collect(),
        ..invalid(field, message)
    };
    let label = match field(&fields, "occasion") {
        Some("mothers_day") => M::MothersDay,
        Some("fathers_day") => M::FathersDay,
        Some("valentines_day") => M::Valentines,
        Some("custom") => M::Custom,
        _ => return bad(&app, &s, lang, invalid("occasion", M::UnknownChoice)).await,
    };
    let Some(from) = field(&fields, "from").and_then(day) else {
        return bad(&app, &s, lang, typed("from", M::BadDate)).await;
    };
    // The end date is inclusive: the period runs to the end of that day.
    let until = match field(&fields, "until").and_then(day) {
        Some(u) if u >= from => u + DAY,
        _ => return bad(&app, &s, lang, typed("until", M::BadDate)).await,
    };
    let current = match app.preferences(&s.subject).await {
        Ok(p) => p,
        Err(e) => return internal(lang, e),
    };
    let period = QuietPeriod {
        from,
        until,
        label: Some(label.text(lang).to_owned()),
    };
    let mut quiet = current.quiet_periods.clone();
    if !quiet.contains(&period) {
        quiet.push(period);
    }
    let patch = PreferencesPatch {
        quiet_periods: Some(quiet),
        ..Default::default()
    };
    change_preferences(&app, &s, lang, patch).await
}

async fn remove_quiet(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let current = match app.preferences(&s.subject).await {
        Ok(p) => p,
        Err(e) => return internal(lang, e),
    };
    let mut quiet = current.quiet_periods.clone();
    // An index already removed (a double submit) changes nothing.
    if let Some(i) = field(&fields, "index").and_then(|i| i.parse::<usize>().ok())
        && i < quiet.len()
    {
        quiet.remove(i);
    }
    let patch = PreferencesPatch {
        quiet_periods: Some(quiet),
        ..Default::default()
    };
    change_preferences(&app, &s, lang, patch).await
}

/// Files an access or erasure request for the page's person, verified by the link.
async fn file_request(app: &AppState, s: &Session, kind: &str) -> Result<(), AppError> {
    app.create_request(
        ACTOR,
        NewRequest {
            subject: SubjectRef::Key(s.subject.clone()),
            kind: kind.into(),
            jurisdiction: None,
            channel: Some("web".into()),
            verification_method: Some(VERIFICATION.into()),
            details: None,
            received_at: None,
        },
    )
    .await
    .map(|_| ())
}

async fn export(State(app): State<AppState>, headers: HeaderMap, q: Query<PageQuery>) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let Some(s) = session(&app, &headers) else {
        return link_invalid(lang);
    };
    let csv = q.format.as_deref() == Some("csv");
    let export = match app.export_subject(ACTOR, &s.subject).await {
        Ok(e) => e,
        Err(e) => return internal(lang, e),
    };
    if let Err(e) = file_request(&app, &s, "access").await {
        return internal(lang, e);
    }
    let (kind, name, body) = if csv {
        match export.to_csv_zip() {
            Ok(zip) => ("application/zip", "my-data.zip", zip),
            Err(e) => return internal(lang, e),
        }
    } else {
        (
            "application/json",
            "my-data.json",
            export.to_json().into_bytes(),
        )
    };
    (
        [
            (CONTENT_TYPE, kind.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (CACHE_CONTROL, Cache::Personal.header_value().to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn erase_confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    q: Query<PageQuery>,
) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let Some(s) = session(&app, &headers) else {
        return link_invalid(lang);
    };
    let token = csrf::issue(&csrf_key(&app), &s.token, app.now(), CSRF_TTL);
    html(StatusCode::OK, page::erase_confirm(lang, &token))
}

async fn erase(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let (s, lang, fields) = match checked(&app, &headers, form) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let suppress = field(&fields, "suppress") == Some("yes");
    if let Err(e) = file_request(&app, &s, "erasure").await {
        return internal(lang, e);
    }
    match app.erase_subject(ACTOR, &s.subject, suppress).await {
        Ok(outcome) => {
            let mut resp = html(
                StatusCode::OK,
                page::erased(lang, &outcome.receipt.request_id),
            );
            // The session ends with the data: the cookie is dropped.
            resp.headers_mut().insert(SET_COOKIE, cookie(&app, "", 0));
            resp
        }
        Err(e) => internal(lang, e),
    }
}
