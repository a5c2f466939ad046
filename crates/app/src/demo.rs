//! Loading the synthetic demo shop into a fresh store, through the same doors as real data.
//!
//! Invariants: the loader uses only the product's own use cases. Purposes are declared through
//! the audited API, the demo's tracking plan is installed like any other, consent histories are
//! imported into the append-only log, and every customer and event arrives as a Segment message
//! through the ingest gate: a customer's traits and events are kept only if, when they are
//! ingested, a purpose they allow may use them. Contact details are sealed with the customer's
//! data key; sex, age band and region are held only as protected attributes for fairness audits.
//! Nothing is written around the gate, so the first real Segment call to the demo is judged by
//! the same plan the demo data was.

use candor_demo::EventKind;
pub use candor_demo::{DemoConfig, SENSITIVE_CATEGORY_ID};
use candor_domain::inventory::Inventory;
use candor_domain::preferences::{Level, PreferenceSource, Preferences};
use candor_domain::{
    ConsentDecision, DataCategory, Micros, PurposeDraft, PurposeId, Scope, SubjectKey,
};
use candor_store::{CatalogCategory, DecisionRow, Item};
use serde_json::{Value, json};

use crate::ingest::{MAX_BATCH_MESSAGES, RawMessage};
use crate::{App, AppError, CreatedKey, Result};

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub purposes: usize,
    pub categories: usize,
    pub products: usize,
    pub customers: usize,
    pub consent_records: usize,
    pub events_kept: usize,
    pub events_dropped_without_consent: usize,
    pub declared_interests_kept: usize,
    /// Customers whose (simulated) choice is the `full` personalization level.
    pub chose_full: usize,
    pub decisions: usize,
    pub admin_key: CreatedKey,
    pub ingest_key: CreatedKey,
    pub recommend_key: CreatedKey,
    /// Records consent decisions and preference changes (a banner or preference center).
    pub consent_key: CreatedKey,
    pub auditor_key: CreatedKey,
    /// Handles subject-rights requests (export, erasure, rectification, restriction).
    pub rights_key: CreatedKey,
    /// Decides what the human review queue holds (the demo's first model waits there).
    pub reviewer_key: CreatedKey,
}

const ACTOR: &str = "demo";

/// Days the demo keeps behavioural data. Its events span the last 180 days (`DemoConfig::days`),
/// longer than the default browsing rule (90 days), which would delete half of them at the first
/// retention pass; the demo therefore runs with rules of its own, written into its config file.
pub const RETENTION_DAYS: u32 = 365;

/// The demo's retention rules: browsing deleted and purchases anonymized after a year.
pub fn retention_rules() -> Vec<crate::config::RetentionRule> {
    vec![
        crate::config::RetentionRule {
            category: "browsing".into(),
            delete_after_days: Some(RETENTION_DAYS),
            anonymize_after_days: None,
        },
        crate::config::RetentionRule {
            category: "purchase".into(),
            delete_after_days: None,
            anonymize_after_days: Some(RETENTION_DAYS),
        },
    ]
}
const MICROS: Micros = 1_000_000;

/// The demo shop's tracking plan: what its storefront sends and which purposes may keep it.
/// Undeclared events are rejected, so a mistyped event name shows at once.
pub fn tracking_plan() -> Result<Inventory> {
    let plan = json!({
        "undeclared_events": "reject",
        "events": {
            "track:Product Viewed": {"category": "browsing", "purposes": ["personalization", "analytics", "ads_sharing"], "properties": {
                "product_id": {"category": "browsing", "purposes": ["personalization", "analytics", "ads_sharing"]},
                "category": {"category": "browsing", "purposes": ["personalization", "analytics"]}}},
            "track:Product Added": {"category": "browsing", "purposes": ["personalization", "analytics"], "properties": {
                "product_id": {"category": "browsing", "purposes": ["personalization", "analytics"]},
                "quantity": {"category": "browsing", "purposes": ["personalization", "analytics"]}}},
            "track:Order Completed": {"category": "purchase", "purposes": ["personalization", "analytics", "order_fulfilment"], "properties": {
                "product_id": {"category": "purchase", "purposes": ["personalization", "analytics", "order_fulfilment"]},
                "quantity": {"category": "purchase", "purposes": ["personalization", "analytics", "order_fulfilment"]},
                "order_id": {"category": "purchase", "purposes": ["order_fulfilment"]},
                "revenue": {"category": "purchase", "purposes": ["analytics", "order_fulfilment"]}}},
            "page": {"category": "browsing", "purposes": ["analytics"], "properties": {
                "url": {"category": "browsing", "purposes": ["analytics"]},
                "path": {"category": "browsing", "purposes": ["analytics"]}}}
        },
        "traits": {
            "email": {"category": "contact", "purposes": ["order_fulfilment", "email_marketing"]},
            "name": {"category": "contact", "purposes": ["order_fulfilment"]},
            "sex": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true},
            "age_band": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true},
            "region": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true}
        },
        "context": {"ip": {"category": "contact", "purposes": ["order_fulfilment"]}}
    });
    serde_json::from_value(plan)
        .map_err(|e| AppError::Internal(format!("the demo's tracking plan does not parse: {e}")))
}

fn raw(message: Value) -> RawMessage {
    RawMessage {
        bytes: message.to_string().len(),
        json: Ok(message),
    }
}

/// The storefront message an event of the generator becomes.
fn event_message(e: &candor_demo::Event, n: usize) -> Value {
    let (name, properties) = match e.kind {
        EventKind::View => ("Product Viewed", json!({"product_id": e.product})),
        EventKind::AddToCart => (
            "Product Added",
            json!({"product_id": e.product, "quantity": e.quantity}),
        ),
        EventKind::Purchase => (
            "Order Completed",
            json!({"product_id": e.product, "quantity": e.quantity, "order_id": format!("order-{}-{}", e.customer, e.at_unix)}),
        ),
    };
    json!({
        "type": "track",
        "userId": e.customer,
        "event": name,
        "properties": properties,
        "timestamp": candor_domain::format_micros(e.at_unix * MICROS),
        "messageId": format!("demo-{}-{n}", e.customer),
    })
}

/// Generates the demo shop for `cfg` and loads it. `progress(done, total)` is called per batch
/// of customers.
pub async fn load(
    app: &App,
    cfg: &DemoConfig,
    progress: impl Fn(usize, usize),
) -> Result<DemoSummary> {
    let data = candor_demo::generate(cfg);
    for p in candor_demo::PURPOSES {
        let draft = PurposeDraft {
            id: p.id.into(),
            title: p.title.into(),
            description: p.description.into(),
            legal_basis: p.legal_basis.into(),
            categories: p.categories.iter().map(|c| (*c).to_owned()).collect(),
            expires_after_days: p.expires_after_days,
            sale_or_sharing: p.sale_or_sharing,
            non_essential_tracking: p.non_essential_tracking,
            person_level: p.person_level,
            change_note: None,
        };
        app.create_purpose(ACTOR, &draft).await?;
    }
    app.set_inventory(ACTOR, tracking_plan()?).await?;
    let categories: Vec<CatalogCategory> = data
        .categories
        .iter()
        .map(|c| CatalogCategory {
            id: c.id.clone(),
            name: c.name.clone(),
            sensitive_kind: c.sensitive.clone(),
        })
        .collect();
    let items: Vec<Item> = data
        .products
        .iter()
        .map(|p| Item {
            id: p.id.clone(),
            name: p.name.clone(),
            category_id: p.category.clone(),
            price_cents: i64::from(p.price_cents),
            ..Default::default()
        })
        .collect();
    app.upsert_catalog(ACTOR, &categories, &items).await?;

    // 1. Consent histories, as a CMP export would bring them.
    let mut keys = Vec::with_capacity(data.customers.len());
    let mut histories = Vec::with_capacity(data.customers.len());
    for c in &data.customers {
        let key = app.subject_key(&c.external_id)?;
        let mut choices: Vec<(PurposeId, ConsentDecision, Micros)> = c
            .consents
            .iter()
            .map(|ch| {
                Ok((
                    PurposeId::parse(&ch.purpose)?,
                    if ch.granted {
                        ConsentDecision::Granted
                    } else {
                        ConsentDecision::Denied
                    },
                    ch.at_unix * MICROS,
                ))
            })
            .collect::<Result<_>>()?;
        choices.sort_by_key(|c| c.2);
        keys.push(key.clone());
        if !choices.is_empty() {
            histories.push((key, choices));
        }
    }
    let mut consent_records = 0;
    for chunk in histories.chunks(500) {
        consent_records += app
            .import_consents_bulk(ACTOR, chunk)
            .await?
            .iter()
            .map(Vec::len)
            .sum::<usize>();
    }

    // 2. Customers (identify) and their events (track), through the ingest gate.
    let mut events_by_customer: std::collections::HashMap<&str, Vec<&candor_demo::Event>> =
        std::collections::HashMap::new();
    for e in &data.events {
        events_by_customer
            .entry(e.customer.as_str())
            .or_default()
            .push(e);
    }
    let (mut kept, mut dropped) = (0, 0);
    let mut batch: Vec<RawMessage> = Vec::with_capacity(MAX_BATCH_MESSAGES);
    let mut track_batch: Vec<RawMessage> = Vec::with_capacity(MAX_BATCH_MESSAGES);
    for (n, c) in data.customers.iter().enumerate() {
        let d = &c.demographics;
        batch.push(raw(json!({
            "type": "identify",
            "userId": c.external_id,
            "traits": {"email": c.email, "name": c.name, "sex": d.sex, "age_band": d.age_band, "region": d.region},
            "timestamp": candor_domain::format_micros(c.signup_unix * MICROS),
            "messageId": format!("demo-{}-identify", c.external_id),
        })));
        for (i, e) in events_by_customer
            .get(c.external_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            track_batch.push(raw(event_message(e, i)));
            if track_batch.len() == MAX_BATCH_MESSAGES {
                let r = ingest_all(app, &mut track_batch).await?;
                (kept, dropped) = (kept + r.0, dropped + r.1);
            }
        }
        if batch.len() == MAX_BATCH_MESSAGES {
            ingest_all(app, &mut batch).await?;
        }
        progress(n + 1, data.customers.len());
    }
    ingest_all(app, &mut batch).await?;
    let r = ingest_all(app, &mut track_batch).await?;
    (kept, dropped) = (kept + r.0, dropped + r.1);

    // 3. Preferences: declared interests where a purpose allows using them, and the simulated
    // choice of two in five customers who allow personalization to move to `full` (new
    // subjects start at `basic`).
    let purposes = app.purposes();
    let personalization = PurposeId::parse("personalization")?;
    let (mut chose_full, mut interests_kept) = (0, 0);
    let mut prefs: Vec<(SubjectKey, Preferences)> = Vec::new();
    for (n, (c, key)) in data.customers.iter().zip(&keys).enumerate() {
        let permits = app.permits(key, &purposes).await?;
        let keep_interests = !c.declared_interests.is_empty()
            && permits
                .covering(&DataCategory::DeclaredPreference)
                .is_some();
        let full = n % 5 < 2 && permits.get(&personalization).is_some();
        if !keep_interests && !full {
            continue;
        }
        interests_kept += usize::from(keep_interests);
        chose_full += usize::from(full);
        prefs.push((
            key.clone(),
            Preferences {
                level: if full { Level::Full } else { Level::Basic },
                declared_interests: if keep_interests {
                    c.declared_interests.clone()
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
        ));
    }
    for chunk in prefs.chunks(500) {
        app.set_preferences_bulk(ACTOR, chunk, PreferenceSource::Import)
            .await?;
    }

    // 4. The offer decisions an earlier system made (with the planted bias), for audits.
    let decisions: Vec<DecisionRow> = data
        .offer_decisions
        .iter()
        .map(|o| {
            Ok(DecisionRow {
                subject_key: app.subject_key(&o.customer)?.to_string(),
                surface: "offer".into(),
                item_id: o.offer.clone(),
                selected: o.selected,
                outcome: Some(o.converted),
                score: Some(o.score),
                model_version: "demo-offer-v1".into(),
                at: o.at_unix * MICROS,
                position: None,
                answer_id: None,
            })
        })
        .collect::<Result<_>>()?;
    app.import_decisions(ACTOR, &decisions).await?;

    Ok(DemoSummary {
        chose_full,
        purposes: purposes.len(),
        categories: categories.len(),
        products: items.len(),
        customers: data.customers.len(),
        consent_records,
        events_kept: kept,
        events_dropped_without_consent: dropped,
        declared_interests_kept: interests_kept,
        decisions: decisions.len(),
        admin_key: app.create_key(ACTOR, "demo admin", Scope::Admin).await?,
        ingest_key: app
            .create_key(ACTOR, "demo ingest (write key)", Scope::Ingest)
            .await?,
        recommend_key: app
            .create_key(ACTOR, "demo recommend", Scope::Recommend)
            .await?,
        consent_key: app
            .create_key(
                ACTOR,
                "demo consent (banner, preference center)",
                Scope::Consent,
            )
            .await?,
        auditor_key: app
            .create_key(ACTOR, "demo auditor", Scope::Auditor)
            .await?,
        rights_key: app
            .create_key(ACTOR, "demo privacy team", Scope::Rights)
            .await?,
        reviewer_key: app
            .create_key_for(
                ACTOR,
                "demo reviewer",
                Scope::Reviewer,
                Some("reviewer@demo"),
            )
            .await?,
    })
}

/// Sends `batch` through the ingest gate and empties it: (stored, without consent). A message
/// the gate rejects is a defect of the demo itself, so it fails the load.
async fn ingest_all(app: &App, batch: &mut Vec<RawMessage>) -> Result<(usize, usize)> {
    if batch.is_empty() {
        return Ok((0, 0));
    }
    let report = app.ingest(std::mem::take(batch), None).await?;
    if let Some(r) = report.rejected.first() {
        return Err(AppError::Internal(format!(
            "the demo sent a message its own tracking plan rejects: {r:?}"
        )));
    }
    Ok((report.stored, report.without_consent))
}
