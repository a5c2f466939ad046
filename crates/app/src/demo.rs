//! Loading the synthetic demo shop into a fresh store.
//!
//! The loader goes through the same rules as real data: purposes are declared through the
//! audited API, consent decisions are appended to the log, and each behavioral event is kept only
//! if, at the time it happened, the customer had allowed a purpose that may use its category.
//! Contact details (name, email, zip) are not stored: nothing in the foundation needs them.

use candor_demo::EventKind;
pub use candor_demo::{DemoConfig, SENSITIVE_CATEGORY_ID};
use candor_domain::consent::purpose_allowing;
use candor_domain::{
    ConsentDecision, DataCategory, Micros, PurposeDraft, PurposeId, Scope, SubjectConsents,
};
use candor_store::{CatalogCategory, DecisionRow, EventRow, Item};
use serde::Serialize;

use crate::{App, CreatedKey, Result};

#[derive(Debug, Clone, Serialize)]
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
    pub auditor_key: CreatedKey,
}

const ACTOR: &str = "demo";
const MICROS: Micros = 1_000_000;

/// Generates the demo shop for `cfg` and loads it. `progress(done, total)` is called per customer.
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
            change_note: None,
        };
        app.create_purpose(ACTOR, &draft).await?;
    }
    let purposes = app.purposes();
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
        })
        .collect();
    app.store.upsert_catalog(&categories, &items).await?;
    // Serving validates and answers against the catalog it holds: load the new one.
    app.reload_serving().await?;
    let personalization = purposes
        .values()
        .find(|p| p.id.as_str() == "personalization")
        .cloned();
    let mut chose_full = 0;

    let mut events_by_customer: std::collections::HashMap<&str, Vec<&candor_demo::Event>> =
        std::collections::HashMap::new();
    for e in &data.events {
        events_by_customer
            .entry(e.customer.as_str())
            .or_default()
            .push(e);
    }
    let now = app.now();
    let (mut consent_records, mut kept, mut dropped, mut interests_kept) = (0, 0, 0, 0);
    let mut batch = Vec::new();
    for (n, c) in data.customers.iter().enumerate() {
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
        let records = if choices.is_empty() {
            vec![]
        } else {
            app.import_consents(ACTOR, &key, &choices).await?
        };
        consent_records += records.len();

        // Replay the consent history alongside the customer's events, in time order.
        let mut state = SubjectConsents::default();
        let mut next = 0;
        for e in events_by_customer
            .get(c.external_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let at = e.at_unix * MICROS;
            while next < records.len() && records[next].at <= at {
                state.apply(&records[next]);
                next += 1;
            }
            let category = match e.kind {
                EventKind::Purchase => DataCategory::Purchase,
                EventKind::View | EventKind::AddToCart => DataCategory::Browsing,
            };
            if let Some(purpose) = purpose_allowing(purposes.values(), &state, &category, at) {
                batch.push(EventRow {
                    subject_key: key.to_string(),
                    kind: e.kind.as_str().to_owned(),
                    item_id: e.product.clone(),
                    quantity: i64::from(e.quantity),
                    at,
                    category: category.to_string(),
                    purpose: purpose.id.to_string(),
                });
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        let current = SubjectConsents::from_history(&records);
        let keep_interests = !c.declared_interests.is_empty()
            && purpose_allowing(
                purposes.values(),
                &current,
                &DataCategory::DeclaredPreference,
                now,
            )
            .is_some();
        if keep_interests {
            app.store
                .set_declared_interests(key.as_str(), &c.declared_interests)
                .await?;
            interests_kept += 1;
        }
        // Simulated choice: two in five customers who allow personalization move to `full`
        // in the preference center (new subjects start at `basic`).
        if n % 5 < 2
            && personalization
                .as_ref()
                .is_some_and(|p| current.status(p, now).allows())
        {
            let prefs = candor_domain::preferences::Preferences {
                level: candor_domain::preferences::Level::Full,
                declared_interests: if keep_interests {
                    c.declared_interests.clone()
                } else {
                    Vec::new()
                },
                ..Default::default()
            };
            app.set_preferences(ACTOR, &key, prefs).await?;
            chose_full += 1;
        }
        // Held for fairness audits only, in their own table.
        let d = &c.demographics;
        app.store
            .protected_set(
                key.as_str(),
                &[
                    ("sex".into(), d.sex.clone()),
                    ("age_band".into(), d.age_band.clone()),
                    ("region".into(), d.region.clone()),
                ],
            )
            .await?;
        if batch.len() >= 5000 {
            app.store.insert_events(&batch).await?;
            batch.clear();
        }
        progress(n + 1, data.customers.len());
    }
    app.store.insert_events(&batch).await?;

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
            })
        })
        .collect::<Result<_>>()?;
    app.store.insert_decisions(&decisions).await?;

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
        auditor_key: app
            .create_key(ACTOR, "demo auditor", Scope::Auditor)
            .await?,
    })
}
