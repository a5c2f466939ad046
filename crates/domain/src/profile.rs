//! Profiles and segments: what Candor may say about a subject, built only from consented data.
//!
//! Invariants:
//! - A piece of stored data shapes a profile only if [`profiling_basis`] finds a purpose that
//!   allows it *now*: the purpose it was stored under must still be allowed and may use its data
//!   category; data held for a strictly necessary purpose (contract, legal obligation), and older
//!   rows that carry no purpose, count only if the subject also allows a purpose they could refuse
//!   that may use that category. Only person-level purposes ([`crate::Purpose::person_level`])
//!   count: data stored under an aggregate-only purpose (analytics) never shapes a profile, and
//!   an aggregate-only permit never justifies necessary or unlabelled data. Revoking consent
//!   removes data from the very next profile.
//! - Declared (zero-party) interests always outrank inferred ones.
//! - Sensitive categories (`sensitive:*` data, or catalog categories with a sensitive kind) never
//!   become inferred affinities and are never rule attributes.
//! - A rule segment can never reference a protected attribute (the fixed list
//!   [`PROTECTED_ATTRIBUTES`] plus whatever the tracking plan declares protected) nor a sensitive
//!   category; [`parse_rule`] refuses such a rule, naming the attribute.
//! - Every attribute says where it came from, and every segment membership explains itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::inventory::Inventory;
use crate::{DataCategory, DomainError, MICROS_PER_DAY, Micros, Permits, PurposeId};

/// Half-life of an event's weight in an inferred affinity.
pub const AFFINITY_HALF_LIFE_DAYS: f64 = 30.0;
/// Weights of actions in an inferred affinity.
pub const VIEW_WEIGHT: f64 = 1.0;
pub const CART_WEIGHT: f64 = 2.0;
pub const PURCHASE_WEIGHT: f64 = 4.0;
/// Lifecycle thresholds (days). See `docs/PROFILES.md`.
pub const NEW_WITHIN_DAYS: i64 = 30;
pub const ACTIVE_WITHIN_DAYS: i64 = 45;
pub const AT_RISK_WITHIN_DAYS: i64 = 120;

/// Attribute names (or name parts) a segment may never use: protected characteristics and
/// their well-known proxies. The tracking plan's `protected` declarations are added to these.
pub const PROTECTED_ATTRIBUTES: &[&str] = &[
    "sex",
    "gender",
    "age",
    "age_band",
    "birth_date",
    "date_of_birth",
    "birthday",
    "birth_year",
    "ethnicity",
    "ethnic_origin",
    "race",
    "religion",
    "belief",
    "disability",
    "pregnancy",
    "maternity",
    "marital_status",
    "sexual_orientation",
    "gender_identity",
    "nationality",
    "national_origin",
    "citizenship",
    "political_opinion",
    "trade_union",
    "health",
    "genetic",
    "biometric",
    "region",
    "zip",
    "zip_code",
    "postal_code",
];

/// Names of events that mean a purchase (Segment e-commerce spec and common variants).
const PURCHASE_NAMES: &[&str] = &[
    "order completed",
    "product purchased",
    "purchase",
    "purchased",
    "checkout completed",
];
const VIEW_NAMES: &[&str] = &["product viewed", "product clicked", "view"];
const CART_NAMES: &[&str] = &["product added", "add to cart", "added to cart"];

// ---------------------------------------------------------------------------------------------
// Inputs

/// A catalog category as profiles see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryInfo {
    pub id: String,
    pub name: String,
    pub sensitive: bool,
}

/// One stored event, joined with its item's catalog data where the item is known.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEvent {
    pub kind: String,
    pub name: String,
    /// The data category it was stored as (`""` on rows older than ingestion).
    pub data_category: String,
    /// The purpose it was stored under (`""` on rows older than ingestion).
    pub purpose: String,
    pub properties: Value,
    pub quantity: i64,
    pub at: Micros,
    pub item_category: Option<CategoryInfo>,
    pub item_price_cents: Option<i64>,
}

impl ProfileEvent {
    /// Alias and group messages record who is who, not behaviour: no profile counts them.
    pub fn is_identity_link(&self) -> bool {
        matches!(self.kind.as_str(), "alias" | "group")
    }

    /// The data category the event counts as: as stored, or for rows older than ingestion
    /// (stored without one) purchase for purchases and browsing for everything else.
    pub fn effective_category(&self) -> DataCategory {
        DataCategory::parse(&self.data_category).unwrap_or(
            match Action::of(&self.kind, &self.name) {
                Action::Purchase => DataCategory::Purchase,
                _ => DataCategory::Browsing,
            },
        )
    }
}

/// Everything a profile is built from. `declared` are the subject's stored declared interests.
pub struct ProfileInput<'a> {
    pub events: &'a [ProfileEvent],
    pub declared: &'a [CategoryInfo],
    pub catalog: &'a BTreeMap<String, CategoryInfo>,
    pub inventory: &'a Inventory,
    /// What the subject's consent allows now: the only source of what may shape the profile.
    pub permits: &'a Permits<'a>,
    /// Stored events the read left out because no permit covers them at all.
    pub withheld: u64,
    pub now: Micros,
    /// Only data usable for this purpose (e.g. `personalization`); `None`: any allowed purpose.
    pub for_purpose: Option<&'a PurposeId>,
}

/// The purposes under which stored data of `category`, stored under `stored` (may be empty),
/// may shape a profile now; `None` if none may. See the module invariants.
pub fn profiling_basis(
    stored: &str,
    category: &DataCategory,
    permits: &Permits<'_>,
    for_purpose: Option<&PurposeId>,
) -> Option<Vec<PurposeId>> {
    let mut basis = Vec::new();
    if !stored.is_empty() {
        let p = permits
            .iter()
            .find(|p| p.purpose().as_str() == stored)
            .filter(|p| p.covers(category))?;
        if !p.is_strictly_necessary() {
            // Collected for a purpose the person could refuse: usable for that purpose only, and
            // only if that purpose looks at the person (aggregate-only data stays aggregate).
            if !p.is_person_level() {
                return None;
            }
            return for_purpose
                .is_none_or(|f| f == p.purpose())
                .then(|| vec![p.purpose().clone()]);
        }
        basis.push(p.purpose().clone());
    }
    // Strictly necessary (or unlabelled) data: only with a person-level purpose the person
    // could refuse.
    let q = permits.iter().find(|q| {
        q.is_person_level() && q.covers(category) && for_purpose.is_none_or(|f| f == q.purpose())
    })?;
    if !basis.contains(q.purpose()) {
        basis.push(q.purpose().clone());
    }
    Some(basis)
}

// ---------------------------------------------------------------------------------------------
// The profile

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Declared,
    Inferred,
}

/// What an attribute was built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    pub events: u64,
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
    pub purposes: BTreeSet<PurposeId>,
    pub first_seen: Option<Micros>,
    pub last_seen: Option<Micros>,
}

impl Evidence {
    fn add(&mut self, action: Action, at: Micros, basis: &[PurposeId]) {
        self.events += 1;
        match action {
            Action::View => self.views += 1,
            Action::Cart => self.carts += 1,
            Action::Purchase => self.purchases += 1,
            Action::Other => {}
        }
        self.purposes.extend(basis.iter().cloned());
        self.first_seen = Some(self.first_seen.map_or(at, |f| f.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |l| l.max(at)));
    }
}

/// One interest: declared by the person, or inferred from behavior.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interest {
    pub category: String,
    pub name: String,
    pub source: Source,
    pub rank: usize,
    /// 1.0 for declared interests; the decayed share of behavior for inferred ones.
    pub score: f64,
    /// For declared interests: what behavior alone would have scored.
    pub inferred_score: Option<f64>,
    /// How it was declared (`preference` or `trait:<name>`), for declared interests.
    pub declared_via: Option<String>,
    /// Declared sensitive interests are shown to the person but never used by rules.
    pub sensitive: bool,
    /// Purposes allowing the declaration (declared interests).
    pub declared_purposes: BTreeSet<PurposeId>,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RfmScores {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

/// Recency, frequency, monetary value, from consented purchase and activity events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfm {
    pub source: Source,
    /// Distinct orders (by `order_id`, else by time; see `OrderKey`), not order lines.
    pub orders: u64,
    pub orders_90d: u64,
    pub orders_365d: u64,
    pub spend_cents: i64,
    pub spend_365d_cents: i64,
    pub days_since_last_purchase: Option<i64>,
    pub days_since_last_seen: Option<i64>,
    pub days_since_first_seen: Option<i64>,
    pub scores: RfmScores,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    New,
    Active,
    AtRisk,
    Lapsed,
    Unknown,
}

impl Lifecycle {
    pub const NAMES: &'static [&'static str] = &["new", "active", "at_risk", "lapsed", "unknown"];
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::New => "new",
            Lifecycle::Active => "active",
            Lifecycle::AtRisk => "at_risk",
            Lifecycle::Lapsed => "lapsed",
            Lifecycle::Unknown => "unknown",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Lifecycle::AtRisk => "at risk",
            other => other.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleSegment {
    pub segment: Lifecycle,
    pub explanation: String,
}

/// A subject's profile at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub computed_at: Micros,
    pub purposes_used: BTreeSet<PurposeId>,
    pub events_used: u64,
    /// Stored events left out because no purpose allows them now.
    pub events_ignored_without_consent: u64,
    pub interests: Vec<Interest>,
    pub rfm: Rfm,
    pub lifecycle: LifecycleSegment,
    /// The flat attributes rule segments may reference.
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    View,
    Cart,
    Purchase,
    Other,
}

impl Action {
    fn of(kind: &str, name: &str) -> Action {
        let name = name.to_ascii_lowercase();
        match kind {
            "purchase" => Action::Purchase,
            "view" => Action::View,
            "add_to_cart" => Action::Cart,
            "track" if PURCHASE_NAMES.contains(&name.as_str()) => Action::Purchase,
            "track" if VIEW_NAMES.contains(&name.as_str()) => Action::View,
            "track" if CART_NAMES.contains(&name.as_str()) => Action::Cart,
            _ => Action::Other,
        }
    }
    fn weight(self) -> f64 {
        match self {
            Action::View => VIEW_WEIGHT,
            Action::Cart => CART_WEIGHT,
            Action::Purchase => PURCHASE_WEIGHT,
            Action::Other => 0.0,
        }
    }
}

/// Matches a declared or reported category value to the catalog (by id, then by name).
fn match_category(value: &str, catalog: &BTreeMap<String, CategoryInfo>) -> Option<CategoryInfo> {
    let v = value.trim();
    if v.is_empty() || v.len() > 100 {
        return None;
    }
    if let Some(c) = catalog.get(v) {
        return Some(c.clone());
    }
    if let Some(c) = catalog
        .values()
        .find(|c| c.name.eq_ignore_ascii_case(v) || c.id.eq_ignore_ascii_case(v))
    {
        return Some(c.clone());
    }
    let id: String = v
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    Some(CategoryInfo {
        sensitive: id.starts_with("sensitive"),
        id,
        name: v.to_owned(),
    })
}

fn days_between(earlier: Micros, now: Micros) -> i64 {
    (now - earlier).max(0) / MICROS_PER_DAY
}

/// Which order a purchase event is a line of: its `order_id` property (text or number), else
/// its time, since the lines of one order are sent at the moment it is placed (an invoice
/// export gives each line the invoice's time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum OrderKey {
    Id(String),
    At(Micros),
}

impl OrderKey {
    fn of(e: &ProfileEvent) -> OrderKey {
        let id = match e.properties.get("order_id") {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        match id {
            Some(id) if !id.is_empty() => OrderKey::Id(id),
            _ => OrderKey::At(e.at),
        }
    }
}

/// Money of a purchase in cents: `price_cents`, else `price` (currency units), else the
/// catalog price; times `quantity` (the property, else the stored quantity, at least 1).
fn purchase_cents(e: &ProfileEvent) -> i64 {
    let props = e.properties.as_object();
    let prop = |k: &str| props.and_then(|p| p.get(k));
    let unit = prop("price_cents")
        .and_then(Value::as_i64)
        .or_else(|| {
            prop("price")
                .and_then(Value::as_f64)
                .filter(|p| p.is_finite())
                .map(|p| (p * 100.0).round() as i64)
        })
        .or(e.item_price_cents)
        .unwrap_or(0)
        .clamp(0, 1_000_000_000);
    let qty = prop("quantity")
        .and_then(Value::as_i64)
        .unwrap_or(e.quantity)
        .clamp(1, 10_000);
    unit * qty
}

/// RFM scores on fixed, documented thresholds (a single profile has no population to rank in).
pub fn rfm_scores(
    days_since_last_purchase: Option<i64>,
    orders_365d: u64,
    spend_365d_cents: i64,
) -> RfmScores {
    let recency = match days_since_last_purchase {
        Some(d) if d <= 14 => 5,
        Some(d) if d <= 30 => 4,
        Some(d) if d <= 90 => 3,
        Some(d) if d <= 180 => 2,
        _ => 1,
    };
    let frequency = match orders_365d {
        n if n >= 10 => 5,
        n if n >= 5 => 4,
        n if n >= 3 => 3,
        2 => 2,
        _ => 1,
    };
    let monetary = match spend_365d_cents {
        c if c >= 100_000 => 5,
        c if c >= 25_000 => 4,
        c if c >= 10_000 => 3,
        c if c >= 2_500 => 2,
        _ => 1,
    };
    RfmScores {
        recency,
        frequency,
        monetary,
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn ago(days: i64) -> String {
    match days {
        0 => "today".into(),
        1 => "1 day ago".into(),
        d => format!("{d} days ago"),
    }
}

/// Lifecycle segment from recency and frequency, with the reason in words.
pub fn classify_lifecycle(rfm: &Rfm) -> LifecycleSegment {
    let (Some(last_seen), Some(first_seen)) = (rfm.days_since_last_seen, rfm.days_since_first_seen)
    else {
        return LifecycleSegment {
            segment: Lifecycle::Unknown,
            explanation: "no consented activity on record: unknown".into(),
        };
    };
    let orders_90 = plural(rfm.orders_90d, "order", "orders");
    if first_seen <= NEW_WITHIN_DAYS && rfm.orders <= 1 {
        return LifecycleSegment {
            segment: Lifecycle::New,
            explanation: format!(
                "first seen {} (within {NEW_WITHIN_DAYS} days) and {} so far: new",
                ago(first_seen),
                plural(rfm.orders, "order", "orders")
            ),
        };
    }
    let (days, what) = match rfm.days_since_last_purchase {
        Some(d) => (d, format!("last purchase {}", ago(d))),
        None => (
            last_seen,
            format!("no purchases, last activity {}", ago(last_seen)),
        ),
    };
    let (segment, bound) = if days <= ACTIVE_WITHIN_DAYS {
        (
            Lifecycle::Active,
            format!("within {ACTIVE_WITHIN_DAYS} days"),
        )
    } else if days <= AT_RISK_WITHIN_DAYS {
        (
            Lifecycle::AtRisk,
            format!("more than {ACTIVE_WITHIN_DAYS} days"),
        )
    } else {
        (
            Lifecycle::Lapsed,
            format!("more than {AT_RISK_WITHIN_DAYS} days"),
        )
    };
    LifecycleSegment {
        segment,
        explanation: format!(
            "{what} ({bound}) and {orders_90} in 90 days: {}",
            segment.words()
        ),
    }
}

#[derive(Default)]
struct CategoryAcc {
    info: Option<CategoryInfo>,
    weight: f64,
    evidence: Evidence,
}

/// Builds a profile; see the module invariants.
pub fn build_profile(input: &ProfileInput<'_>) -> Profile {
    let now = input.now;
    let mut purposes_used = BTreeSet::new();
    let mut used = 0u64;
    let mut ignored = input.withheld;
    let mut activity = Evidence::default();
    // order -> time of its latest line; an order of several lines is one order
    let mut orders: BTreeMap<OrderKey, Micros> = BTreeMap::new();
    let (mut spend, mut spend_365) = (0i64, 0i64);
    let mut last_purchase: Option<Micros> = None;
    let mut by_category: BTreeMap<String, CategoryAcc> = BTreeMap::new();
    // trait name -> (values, purposes, at) of the latest identify carrying it.
    let mut trait_prefs: BTreeMap<String, (Vec<String>, Vec<PurposeId>, Micros)> = BTreeMap::new();

    for e in input.events {
        if matches!(e.kind.as_str(), "identify") {
            collect_trait_preferences(e, input, &mut trait_prefs);
            continue;
        }
        if e.is_identity_link() {
            continue;
        }
        let action = Action::of(&e.kind, &e.name);
        let category = e.effective_category();
        let Some(basis) = profiling_basis(&e.purpose, &category, input.permits, input.for_purpose)
        else {
            ignored += 1;
            continue;
        };
        used += 1;
        purposes_used.extend(basis.iter().cloned());
        activity.add(action, e.at, &basis);
        if action == Action::Purchase {
            let cents = purchase_cents(e);
            let at = orders.entry(OrderKey::of(e)).or_insert(e.at);
            *at = (*at).max(e.at);
            spend += cents;
            if days_between(e.at, now) <= 365 {
                spend_365 += cents;
            }
            last_purchase = Some(last_purchase.map_or(e.at, |l| l.max(e.at)));
        }
        // Inferred affinity: never from sensitive data or sensitive catalog categories.
        if category.is_sensitive() || action.weight() == 0.0 {
            continue;
        }
        let item_category = e.item_category.clone().or_else(|| {
            e.properties
                .get("category")
                .and_then(Value::as_str)
                .and_then(|v| match_category(v, input.catalog))
        });
        let Some(cat) = item_category else { continue };
        if cat.sensitive {
            continue;
        }
        let age_days = (now - e.at).max(0) as f64 / MICROS_PER_DAY as f64;
        let decayed = action.weight() * 0.5f64.powf(age_days / AFFINITY_HALF_LIFE_DAYS);
        let acc = by_category.entry(cat.id.clone()).or_default();
        acc.weight += decayed;
        acc.evidence.add(action, e.at, &basis);
        acc.info.get_or_insert(cat);
    }

    let total: f64 = by_category.values().map(|a| a.weight).sum();
    let mut inferred: Vec<(String, CategoryAcc, f64)> = by_category
        .into_iter()
        .map(|(id, acc)| {
            let score = if total > 0.0 { acc.weight / total } else { 0.0 };
            (id, acc, round4(score))
        })
        .collect();
    inferred.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));

    // Declared interests: stored preferences and declared-preference traits, each only while a
    // purpose allows declared preferences to be used.
    let mut declared: BTreeMap<String, (CategoryInfo, String, BTreeSet<PurposeId>)> =
        BTreeMap::new();
    if let Some(basis) = profiling_basis(
        "",
        &DataCategory::DeclaredPreference,
        input.permits,
        input.for_purpose,
    ) {
        for c in input.declared {
            declared.entry(c.id.clone()).or_insert_with(|| {
                (
                    c.clone(),
                    "preference".into(),
                    basis.iter().cloned().collect(),
                )
            });
        }
    }
    for (name, (values, basis, _)) in &trait_prefs {
        for v in values {
            if let Some(c) = match_category(v, input.catalog) {
                declared.entry(c.id.clone()).or_insert_with(|| {
                    (c, format!("trait:{name}"), basis.iter().cloned().collect())
                });
            }
        }
    }
    for (_, _, basis) in declared.values() {
        purposes_used.extend(basis.iter().cloned());
    }

    let mut interests = Vec::new();
    let mut declared_list: Vec<_> = declared.into_values().collect();
    // Every declared interest scores 1.0; among them the one behavior backs most comes first
    // (no behavior counts as 0), then by name so the order is stable.
    let backing = |id: &str| {
        inferred
            .iter()
            .find(|(i, _, _)| i == id)
            .map_or(0.0, |(_, _, score)| *score)
    };
    declared_list.sort_by(|a, b| {
        backing(&b.0.id)
            .total_cmp(&backing(&a.0.id))
            .then_with(|| a.0.name.cmp(&b.0.name))
            .then_with(|| a.0.id.cmp(&b.0.id))
    });
    for (info, via, basis) in declared_list {
        let behavior = inferred.iter().position(|(id, _, _)| *id == info.id);
        let (inferred_score, evidence) = match behavior {
            Some(i) => {
                let (_, acc, score) = inferred.remove(i);
                (Some(score), acc.evidence)
            }
            None => (None, Evidence::default()),
        };
        interests.push(Interest {
            rank: interests.len() + 1,
            category: info.id,
            name: info.name,
            source: Source::Declared,
            score: 1.0,
            inferred_score,
            declared_via: Some(via),
            sensitive: info.sensitive,
            declared_purposes: basis,
            evidence,
        });
    }
    for (id, acc, score) in inferred {
        let info = acc.info.unwrap_or(CategoryInfo {
            id: id.clone(),
            name: id.clone(),
            sensitive: false,
        });
        interests.push(Interest {
            rank: interests.len() + 1,
            category: id,
            name: info.name,
            source: Source::Inferred,
            score,
            inferred_score: None,
            declared_via: None,
            sensitive: false,
            declared_purposes: BTreeSet::new(),
            evidence: acc.evidence,
        });
    }

    let days_since_last_purchase = last_purchase.map(|l| days_between(l, now));
    let within = |days: i64| {
        orders
            .values()
            .filter(|&&at| days_between(at, now) <= days)
            .count()
    };
    let orders_365 = within(365) as u64;
    let rfm = Rfm {
        source: Source::Inferred,
        orders: orders.len() as u64,
        orders_90d: within(90) as u64,
        orders_365d: orders_365,
        spend_cents: spend,
        spend_365d_cents: spend_365,
        days_since_last_purchase,
        days_since_last_seen: activity.last_seen.map(|l| days_between(l, now)),
        days_since_first_seen: activity.first_seen.map(|f| days_between(f, now)),
        scores: rfm_scores(days_since_last_purchase, orders_365, spend_365),
        evidence: activity,
    };
    let lifecycle = classify_lifecycle(&rfm);
    let attributes = Attributes::of(&rfm, &lifecycle, &interests);
    Profile {
        computed_at: now,
        purposes_used,
        events_used: used,
        events_ignored_without_consent: ignored,
        interests,
        rfm,
        lifecycle,
        attributes,
    }
}

fn collect_trait_preferences(
    e: &ProfileEvent,
    input: &ProfileInput<'_>,
    out: &mut BTreeMap<String, (Vec<String>, Vec<PurposeId>, Micros)>,
) {
    let Some(props) = e.properties.as_object() else {
        return;
    };
    for (name, value) in props {
        let Some(spec) = input.inventory.traits.get(name) else {
            continue;
        };
        if spec.protected || spec.category != DataCategory::DeclaredPreference {
            continue;
        }
        // The trait's own purposes decide, each checked as the stored purpose would be.
        let basis = spec.purposes.iter().find_map(|p| {
            profiling_basis(p.as_str(), &spec.category, input.permits, input.for_purpose)
        });
        let Some(basis) = basis else { continue };
        let values: Vec<String> = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .take(20)
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        match out.get(name) {
            Some((_, _, at)) if *at > e.at => {}
            _ => {
                out.insert(name.clone(), (values, basis, e.at));
            }
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

// ---------------------------------------------------------------------------------------------
// Attributes

/// A value a rule compares against.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// Whole numbers are written as integers (`3`, not `3.0`), so rules read back as written.
fn num_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

impl AttrValue {
    fn to_json(&self) -> Value {
        match self {
            AttrValue::Number(n) => num_json(*n),
            AttrValue::Text(s) => Value::String(s.clone()),
            AttrValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Number(n) => f.write_str(&fmt_number(*n)),
            AttrValue::Text(s) => write!(f, "`{s}`"),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn fmt_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The flat attributes of a profile that rules may reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<String, AttrValue>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrType {
    Number,
    Text,
    Bool,
}

/// Attributes with fixed names, and their types.
const FIXED_ATTRIBUTES: &[(&str, AttrType)] = &[
    ("rfm.recency", AttrType::Number),
    ("rfm.frequency", AttrType::Number),
    ("rfm.monetary", AttrType::Number),
    ("lifecycle", AttrType::Text),
    ("orders", AttrType::Number),
    ("orders_90d", AttrType::Number),
    ("orders_365d", AttrType::Number),
    ("spend", AttrType::Number),
    ("spend_365d", AttrType::Number),
    ("days_since_last_purchase", AttrType::Number),
    ("days_since_last_seen", AttrType::Number),
    ("days_since_first_seen", AttrType::Number),
    ("events", AttrType::Number),
    ("interest.top", AttrType::Text),
];

fn attr_type(name: &str) -> Option<AttrType> {
    if let Some((_, t)) = FIXED_ATTRIBUTES.iter().find(|(n, _)| *n == name) {
        return Some(*t);
    }
    match name.split_once('.') {
        Some(("affinity", c)) if !c.is_empty() => Some(AttrType::Number),
        Some(("declared", c)) if !c.is_empty() => Some(AttrType::Bool),
        _ => None,
    }
}

impl Attributes {
    fn of(rfm: &Rfm, lifecycle: &LifecycleSegment, interests: &[Interest]) -> Attributes {
        let mut m = BTreeMap::new();
        let n = |v: f64| AttrValue::Number(v);
        m.insert("rfm.recency".into(), n(rfm.scores.recency.into()));
        m.insert("rfm.frequency".into(), n(rfm.scores.frequency.into()));
        m.insert("rfm.monetary".into(), n(rfm.scores.monetary.into()));
        m.insert(
            "lifecycle".into(),
            AttrValue::Text(lifecycle.segment.as_str().into()),
        );
        m.insert("orders".into(), n(rfm.orders as f64));
        m.insert("orders_90d".into(), n(rfm.orders_90d as f64));
        m.insert("orders_365d".into(), n(rfm.orders_365d as f64));
        m.insert("spend".into(), n(rfm.spend_cents as f64 / 100.0));
        m.insert("spend_365d".into(), n(rfm.spend_365d_cents as f64 / 100.0));
        m.insert("events".into(), n(rfm.evidence.events as f64));
        for (k, v) in [
            ("days_since_last_purchase", rfm.days_since_last_purchase),
            ("days_since_last_seen", rfm.days_since_last_seen),
            ("days_since_first_seen", rfm.days_since_first_seen),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), n(v as f64));
            }
        }
        for i in interests.iter().filter(|i| !i.sensitive) {
            m.insert(format!("affinity.{}", i.category), n(i.score));
            if i.source == Source::Declared {
                m.insert(format!("declared.{}", i.category), AttrValue::Bool(true));
            }
        }
        if let Some(top) = interests.iter().find(|i| !i.sensitive) {
            m.insert("interest.top".into(), AttrValue::Text(top.category.clone()));
        }
        Attributes(m)
    }

    /// The value of an attribute; affinities default to 0 and declarations to false.
    pub fn get(&self, name: &str) -> Option<AttrValue> {
        if let Some(v) = self.0.get(name) {
            return Some(v.clone());
        }
        match attr_type(name) {
            Some(AttrType::Number) if name.starts_with("affinity.") => Some(AttrValue::Number(0.0)),
            Some(AttrType::Bool) => Some(AttrValue::Bool(false)),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &AttrValue)> {
        self.0.iter()
    }
}

// ---------------------------------------------------------------------------------------------
// Rules

pub const MAX_RULE_BYTES: usize = 8 * 1024;
pub const MAX_RULE_DEPTH: usize = 6;
pub const MAX_RULE_CONDITIONS: usize = 50;
pub const MAX_IN_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
}

impl Op {
    pub const NAMES: &'static [&'static str] = &["==", "!=", ">", ">=", "<", "<=", "in"];
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "in" => Op::In,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        Op::NAMES[self as usize]
    }
}

/// A rule segment's definition: conditions over profile attributes, combined with all/any.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Cond {
        attribute: String,
        op: Op,
        value: RuleValue,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleValue {
    One(AttrValue),
    List(Vec<AttrValue>),
}

/// What a rule may not reference beyond the fixed lists: the tracking plan's protected names and
/// the catalog's sensitive categories (ids and names, compared case-insensitively).
#[derive(Debug, Clone, Default)]
pub struct RuleLimits {
    pub protected: BTreeSet<String>,
    pub sensitive_categories: BTreeSet<String>,
}

impl RuleLimits {
    /// Protected names from a tracking plan, sensitive categories from a catalog.
    pub fn new<'a>(
        inventory: &Inventory,
        catalog: impl IntoIterator<Item = &'a CategoryInfo>,
    ) -> Self {
        let mut protected = BTreeSet::new();
        for (name, spec) in inventory
            .traits
            .iter()
            .chain(inventory.context.iter())
            .chain(inventory.events.values().flat_map(|e| e.properties.iter()))
        {
            if spec.protected || spec.category.is_sensitive() {
                protected.insert(name.to_lowercase());
            }
        }
        let sensitive_categories = catalog
            .into_iter()
            .filter(|c| c.sensitive)
            .flat_map(|c| [c.id.to_lowercase(), c.name.to_lowercase()])
            .collect();
        RuleLimits {
            protected,
            sensitive_categories,
        }
    }

    /// Why `attribute` may never be used by a segment, if it may not.
    fn refusal(&self, attribute: &str) -> Option<String> {
        let lower = attribute.to_lowercase();
        if let Some((_, cat)) = lower.split_once('.')
            && self.sensitive_categories.contains(cat)
        {
            return Some(format!(
                "`{attribute}` refers to the sensitive category `{cat}`; segments may never use sensitive categories"
            ));
        }
        for part in lower.split('.') {
            if part.starts_with("sensitive") {
                return Some(format!(
                    "`{attribute}` refers to a sensitive category; segments may never use sensitive data"
                ));
            }
            let p = part.replace('-', "_");
            if PROTECTED_ATTRIBUTES.contains(&p.as_str()) || self.protected.contains(part) {
                return Some(format!(
                    "`{attribute}` is a protected attribute (`{part}`); segments may never use protected attributes or their proxies, which Candor holds for fairness audits only"
                ));
            }
        }
        None
    }
}

fn invalid(at: impl Into<String>, reason: impl Into<String>) -> DomainError {
    DomainError::invalid(at, reason)
}

/// Parses and validates a rule; every error names the part of the rule at fault.
pub fn parse_rule(v: &Value, limits: &RuleLimits) -> Result<Rule, DomainError> {
    let bytes = v.to_string().len();
    if bytes > MAX_RULE_BYTES {
        return Err(invalid(
            "rule",
            format!("is {bytes} bytes; a rule may be at most {MAX_RULE_BYTES}"),
        ));
    }
    let mut conditions = 0;
    parse_node(v, "rule", 1, limits, &mut conditions)
}

fn parse_node(
    v: &Value,
    at: &str,
    depth: usize,
    limits: &RuleLimits,
    conditions: &mut usize,
) -> Result<Rule, DomainError> {
    if depth > MAX_RULE_DEPTH {
        return Err(invalid(
            at,
            format!("rules may nest at most {MAX_RULE_DEPTH} levels deep"),
        ));
    }
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            at,
            "must be an object: {\"all\": [...]}, {\"any\": [...]} or {\"attribute\", \"op\", \"value\"}",
        ));
    };
    for group in ["all", "any"] {
        if let Some(list) = obj.get(group) {
            if obj.len() != 1 {
                return Err(invalid(
                    at,
                    format!("`{group}` must be the only key of its object"),
                ));
            }
            let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
                return Err(invalid(
                    format!("{at}.{group}"),
                    "must be a non-empty array of rules",
                ));
            };
            let rules = list
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    parse_node(
                        r,
                        &format!("{at}.{group}[{i}]"),
                        depth + 1,
                        limits,
                        conditions,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if group == "all" {
                Rule::All(rules)
            } else {
                Rule::Any(rules)
            });
        }
    }
    *conditions += 1;
    if *conditions > MAX_RULE_CONDITIONS {
        return Err(invalid(
            at,
            format!("a rule may have at most {MAX_RULE_CONDITIONS} conditions"),
        ));
    }
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "attribute" | "op" | "value"))
    {
        return Err(invalid(
            format!("{at}.{k}"),
            "unknown key; a condition has `attribute`, `op` and `value` (groups use `all` or `any`)",
        ));
    }
    let attribute = match obj.get("attribute") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 100
                && s.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':')
                }) =>
        {
            s.clone()
        }
        Some(_) => {
            return Err(invalid(
                format!("{at}.attribute"),
                "must be 1-100 characters of letters, digits, `_`, `.`, `-` or `:`",
            ));
        }
        None => return Err(invalid(format!("{at}.attribute"), "is required")),
    };
    let attr_at = format!("{at}.attribute");
    if let Some(why) = limits.refusal(&attribute) {
        return Err(invalid(attr_at, why));
    }
    let Some(ty) = attr_type(&attribute) else {
        let known: Vec<&str> = FIXED_ATTRIBUTES.iter().map(|(n, _)| *n).collect();
        return Err(invalid(
            attr_at,
            format!(
                "unknown attribute `{attribute}`; known: {}, affinity.<category>, declared.<category>",
                known.join(", ")
            ),
        ));
    };
    let op_at = format!("{at}.op");
    let op = match obj.get("op") {
        Some(Value::String(s)) => Op::parse(s).ok_or_else(|| {
            invalid(
                &op_at,
                format!("`{s}` is not one of {}", Op::NAMES.join(" ")),
            )
        })?,
        Some(_) => return Err(invalid(op_at, "must be a string")),
        None => return Err(invalid(op_at, "is required")),
    };
    let value_at = format!("{at}.value");
    let Some(raw) = obj.get("value") else {
        return Err(invalid(value_at, "is required"));
    };
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    if ordering && ty != AttrType::Number {
        return Err(invalid(
            op_at,
            format!(
                "`{}` compares numbers; `{attribute}` is not a number",
                op.as_str()
            ),
        ));
    }
    let scalar = |v: &Value, at: &str| -> Result<AttrValue, DomainError> {
        let value = match (ty, v) {
            (AttrType::Number, Value::Number(n)) => AttrValue::Number(
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| invalid(at, "must be a finite number"))?,
            ),
            (AttrType::Text, Value::String(s)) if !s.is_empty() && s.len() <= 100 => {
                AttrValue::Text(s.clone())
            }
            (AttrType::Bool, Value::Bool(b)) => AttrValue::Bool(*b),
            _ => {
                let expected = match ty {
                    AttrType::Number => "a number",
                    AttrType::Text => "a string of 1-100 characters",
                    AttrType::Bool => "true or false",
                };
                return Err(invalid(
                    at,
                    format!("`{attribute}` is compared with {expected}"),
                ));
            }
        };
        if let AttrValue::Text(s) = &value {
            if attribute == "lifecycle" && !Lifecycle::NAMES.contains(&s.as_str()) {
                return Err(invalid(
                    at,
                    format!("`{s}` is not one of {}", Lifecycle::NAMES.join(", ")),
                ));
            }
            if let Some(why) = limits.refusal(&format!("value.{s}")) {
                return Err(invalid(at, why.replace("`value.", "`")));
            }
        }
        Ok(value)
    };
    let value = if op == Op::In {
        let Some(list) = raw
            .as_array()
            .filter(|l| !l.is_empty() && l.len() <= MAX_IN_VALUES)
        else {
            return Err(invalid(
                value_at,
                format!("`in` needs an array of 1-{MAX_IN_VALUES} values"),
            ));
        };
        RuleValue::List(
            list.iter()
                .enumerate()
                .map(|(i, v)| scalar(v, &format!("{value_at}[{i}]")))
                .collect::<Result<_, _>>()?,
        )
    } else {
        RuleValue::One(scalar(raw, &value_at)?)
    };
    Ok(Rule::Cond {
        attribute,
        op,
        value,
    })
}

/// Whether a rule holds for a profile, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub holds: bool,
    pub explanation: String,
}

impl Rule {
    pub fn to_json(&self) -> Value {
        let scalar = AttrValue::to_json;
        match self {
            Rule::All(r) => {
                serde_json::json!({"all": r.iter().map(Rule::to_json).collect::<Vec<_>>()})
            }
            Rule::Any(r) => {
                serde_json::json!({"any": r.iter().map(Rule::to_json).collect::<Vec<_>>()})
            }
            Rule::Cond {
                attribute,
                op,
                value,
            } => serde_json::json!({
                "attribute": attribute,
                "op": op.as_str(),
                "value": match value {
                    RuleValue::One(v) => scalar(v),
                    RuleValue::List(l) => Value::Array(l.iter().map(scalar).collect()),
                },
            }),
        }
    }

    pub fn evaluate(&self, attrs: &Attributes) -> Verdict {
        match self {
            Rule::All(rules) => {
                let verdicts: Vec<Verdict> = rules.iter().map(|r| r.evaluate(attrs)).collect();
                match verdicts.iter().find(|v| !v.holds) {
                    Some(failing) => failing.clone(),
                    None => Verdict {
                        holds: true,
                        explanation: join(&verdicts, " and "),
                    },
                }
            }
            Rule::Any(rules) => {
                let verdicts: Vec<Verdict> = rules.iter().map(|r| r.evaluate(attrs)).collect();
                match verdicts.iter().find(|v| v.holds) {
                    Some(holding) => holding.clone(),
                    None => Verdict {
                        holds: false,
                        explanation: format!("none holds: {}", join(&verdicts, "; ")),
                    },
                }
            }
            Rule::Cond {
                attribute,
                op,
                value,
            } => {
                let Some(actual) = attrs.get(attribute) else {
                    return Verdict {
                        holds: false,
                        explanation: format!("{attribute} is not known for this subject"),
                    };
                };
                let holds = compare(&actual, *op, value);
                let expected = match value {
                    RuleValue::One(v) => v.to_string(),
                    RuleValue::List(l) => format!(
                        "[{}]",
                        l.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let not = if holds { "" } else { "not " };
                Verdict {
                    holds,
                    explanation: format!(
                        "{attribute} is {actual}, which is {not}{} {expected}",
                        op.as_str()
                    ),
                }
            }
        }
    }
}

fn join(verdicts: &[Verdict], sep: &str) -> String {
    verdicts
        .iter()
        .map(|v| v.explanation.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

fn compare(actual: &AttrValue, op: Op, expected: &RuleValue) -> bool {
    use AttrValue::{Bool, Number, Text};
    match (op, expected) {
        (Op::In, RuleValue::List(list)) => list.iter().any(|v| eq(actual, v)),
        (_, RuleValue::List(_)) | (Op::In, RuleValue::One(_)) => false,
        (Op::Eq, RuleValue::One(v)) => eq(actual, v),
        (Op::Ne, RuleValue::One(v)) => !eq(actual, v),
        (_, RuleValue::One(v)) => match (actual, v) {
            (Number(a), Number(b)) => match op {
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                _ => false,
            },
            (Text(_) | Bool(_), _) | (Number(_), _) => false,
        },
    }
}

fn eq(a: &AttrValue, b: &AttrValue) -> bool {
    match (a, b) {
        (AttrValue::Number(x), AttrValue::Number(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::tests_support::{self, granted};
    use crate::inventory::PropertySpec;
    use crate::{Purpose, SubjectConsents};
    use serde_json::json;

    const NOW: Micros = 1_000 * MICROS_PER_DAY;

    fn purposes() -> BTreeMap<PurposeId, Purpose> {
        let mut personalization = tests_support::purpose(
            "personalization",
            "consent",
            &["browsing", "purchase", "declared_preference"],
        );
        personalization.person_level = true;
        tests_support::purposes(&[
            personalization,
            tests_support::purpose("fulfilment", "contract", &["purchase", "contact"]),
            tests_support::purpose("analytics", "consent", &["browsing", "purchase"]),
        ])
    }

    fn cat(id: &str, sensitive: bool) -> CategoryInfo {
        CategoryInfo {
            id: id.into(),
            name: id[..1].to_uppercase() + &id[1..],
            sensitive,
        }
    }

    fn ev(
        name: &str,
        purpose: &str,
        days_ago: i64,
        category: Option<CategoryInfo>,
    ) -> ProfileEvent {
        let data = if name == "Order Completed" {
            "purchase"
        } else {
            "browsing"
        };
        ProfileEvent {
            kind: "track".into(),
            name: name.into(),
            data_category: data.into(),
            purpose: purpose.into(),
            properties: json!({"price": 20.0, "quantity": 2}),
            quantity: 1,
            at: NOW - days_ago * MICROS_PER_DAY,
            item_category: category,
            item_price_cents: Some(999),
        }
    }

    fn build(
        events: &[ProfileEvent],
        declared: &[CategoryInfo],
        consents: &SubjectConsents,
    ) -> Profile {
        let ps = purposes();
        let catalog: BTreeMap<String, CategoryInfo> = [cat("garden", false), cat("health", true)]
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut inventory = Inventory::default();
        inventory.traits.insert(
            "favorite_category".into(),
            PropertySpec {
                category: DataCategory::DeclaredPreference,
                purposes: vec![PurposeId::parse("personalization").unwrap()],
                protected: false,
            },
        );
        let subject = crate::SubjectKey::parse(&"c".repeat(64)).unwrap();
        let permits = consents.permits(&subject, ps.values(), NOW);
        build_profile(&ProfileInput {
            events,
            declared,
            catalog: &catalog,
            inventory: &inventory,
            permits: &permits,
            withheld: 0,
            now: NOW,
            for_purpose: None,
        })
    }

    #[test]
    fn only_consented_data_counts_and_necessary_data_needs_a_refusable_purpose() {
        let events = [
            ev(
                "Product Viewed",
                "personalization",
                1,
                Some(cat("garden", false)),
            ),
            ev(
                "Order Completed",
                "fulfilment",
                2,
                Some(cat("garden", false)),
            ),
            ev("Product Viewed", "", 3, Some(cat("kitchen", false))),
        ];
        let none = build(
            &events,
            &[cat("garden", false)],
            &SubjectConsents::default(),
        );
        assert_eq!(none.events_used, 0);
        assert_eq!(none.events_ignored_without_consent, 3);
        assert!(none.interests.is_empty(), "declared needs consent too");
        assert_eq!(none.lifecycle.segment, Lifecycle::Unknown);

        let yes = build(&events, &[], &granted("personalization"));
        assert_eq!(yes.events_used, 3);
        assert_eq!(yes.rfm.orders, 1);
        assert_eq!(
            yes.rfm.spend_cents, 4000,
            "price x quantity from properties"
        );
        let purposes: Vec<_> = yes.purposes_used.iter().map(|p| p.as_str()).collect();
        assert_eq!(purposes, ["fulfilment", "personalization"]);
        let garden = &yes.interests[0];
        assert_eq!(
            (garden.category.as_str(), garden.source),
            ("garden", Source::Inferred)
        );
        assert_eq!((garden.evidence.views, garden.evidence.purchases), (1, 1));
        assert!(garden.score > yes.interests[1].score);
    }

    #[test]
    fn aggregate_only_purposes_never_shape_a_person_level_profile() {
        let events = [
            ev("Product Viewed", "analytics", 1, Some(cat("garden", false))),
            ev(
                "Order Completed",
                "analytics",
                2,
                Some(cat("garden", false)),
            ),
            ev(
                "Order Completed",
                "fulfilment",
                3,
                Some(cat("garden", false)),
            ),
            ev("Product Viewed", "", 4, Some(cat("kitchen", false))),
        ];
        // Analytics is granted, personalization is not: nothing is about the person.
        let only_analytics = build(&events, &[cat("garden", false)], &granted("analytics"));
        assert_eq!(only_analytics.events_used, 0, "{only_analytics:?}");
        assert_eq!(only_analytics.events_ignored_without_consent, 4);
        assert!(only_analytics.purposes_used.is_empty());
        assert!(only_analytics.interests.is_empty());
        assert_eq!(only_analytics.rfm.orders, 0);
        assert_eq!(only_analytics.lifecycle.segment, Lifecycle::Unknown);

        // With personalization granted too, data stored under analytics still stays out.
        let both = tests_support::granted_all(&["analytics", "personalization"]);
        let profile = build(&events, &[], &both);
        assert_eq!(
            profile.events_used, 2,
            "fulfilment and unlabelled rows only"
        );
        let purposes: Vec<_> = profile.purposes_used.iter().map(|p| p.as_str()).collect();
        assert_eq!(purposes, ["fulfilment", "personalization"]);
    }

    #[test]
    fn declared_outranks_inferred_and_sensitive_is_never_inferred() {
        let yes = granted("personalization");
        let mut events: Vec<_> = (0..10)
            .map(|d| {
                ev(
                    "Product Viewed",
                    "personalization",
                    d,
                    Some(cat("garden", false)),
                )
            })
            .collect();
        events.push(ev(
            "Product Viewed",
            "personalization",
            0,
            Some(cat("health", true)),
        ));
        let mut sensitive_data = ev(
            "Product Viewed",
            "personalization",
            0,
            Some(cat("tools", false)),
        );
        sensitive_data.data_category = "sensitive:health".into();
        events.push(sensitive_data);
        let mut identify = ev("", "personalization", 5, None);
        identify.kind = "identify".into();
        identify.properties = json!({"favorite_category": "Books"});
        events.push(identify);
        let p = build(&events, &[cat("kitchen", false)], &yes);
        let order: Vec<_> = p
            .interests
            .iter()
            .map(|i| (i.category.as_str(), i.source))
            .collect();
        assert_eq!(
            order,
            [
                ("books", Source::Declared),
                ("kitchen", Source::Declared),
                ("garden", Source::Inferred)
            ]
        );
        assert_eq!(
            p.interests[0].declared_via.as_deref(),
            Some("trait:favorite_category")
        );
        assert_eq!(p.interests[2].score, 1.0, "health never enters the shares");
        assert!(p.attributes.get("affinity.health") == Some(AttrValue::Number(0.0)));
        assert_eq!(
            p.attributes.get("declared.kitchen"),
            Some(AttrValue::Bool(true))
        );
        assert_eq!(
            p.attributes.get("interest.top"),
            Some(AttrValue::Text("books".into()))
        );
    }

    #[test]
    fn orders_are_distinct_order_ids_and_lines_without_one_group_by_time() {
        let yes = granted("personalization");
        let line = |order: Option<&str>, days_ago: i64| {
            let mut e = ev("Order Completed", "personalization", days_ago, None);
            if let Some(id) = order {
                e.properties["order_id"] = json!(id);
            }
            e
        };
        // One order of two lines, then another order the same day.
        let p = build(&[line(Some("o-1"), 3), line(Some("o-1"), 3)], &[], &yes);
        assert_eq!((p.rfm.orders, p.rfm.orders_90d), (1, 1));
        assert_eq!(p.rfm.spend_cents, 8000, "every line still counts as spend");
        let p = build(
            &[
                line(Some("o-1"), 3),
                line(Some("o-1"), 3),
                line(Some("o-2"), 3),
            ],
            &[],
            &yes,
        );
        assert_eq!(p.rfm.orders, 2);
        // A numeric id is the same order as its text.
        let mut numeric = line(None, 3);
        numeric.properties["order_id"] = json!(7);
        let p = build(&[numeric, line(Some("7"), 3)], &[], &yes);
        assert_eq!(p.rfm.orders, 1);
        // Without an id, lines at the same moment are one order; at other moments, others.
        let p = build(&[line(None, 3), line(None, 3), line(None, 200)], &[], &yes);
        assert_eq!(
            (p.rfm.orders, p.rfm.orders_90d, p.rfm.orders_365d),
            (2, 1, 2)
        );
    }

    #[test]
    fn the_top_interest_is_the_strongest_declared_one() {
        let yes = granted("personalization");
        let events: Vec<_> = (0..5)
            .map(|d| {
                ev(
                    "Product Viewed",
                    "personalization",
                    d,
                    Some(cat("garden", false)),
                )
            })
            .chain([ev(
                "Product Viewed",
                "personalization",
                1,
                Some(cat("books", false)),
            )])
            .collect();
        let declared = [cat("books", false), cat("garden", false), cat("art", false)];
        let p = build(&events, &declared, &yes);
        let order: Vec<_> = p.interests.iter().map(|i| i.category.as_str()).collect();
        assert_eq!(order, ["garden", "books", "art"]);
        let ranks: Vec<_> = p.interests.iter().map(|i| i.rank).collect();
        assert_eq!(ranks, [1, 2, 3]);
        assert_eq!(
            p.attributes.get("interest.top"),
            Some(AttrValue::Text("garden".into()))
        );
    }

    #[test]
    fn affinity_decays_with_recency() {
        let yes = granted("personalization");
        let events = [
            ev(
                "Product Viewed",
                "personalization",
                0,
                Some(cat("garden", false)),
            ),
            ev(
                "Product Viewed",
                "personalization",
                30,
                Some(cat("kitchen", false)),
            ),
        ];
        let p = build(&events, &[], &yes);
        // Weights 1 and 0.5: shares 2/3 and 1/3.
        assert_eq!(p.interests[0].score, 0.6667);
        assert_eq!(p.interests[1].score, 0.3333);
    }

    fn rfm_with(
        first: Option<i64>,
        last: Option<i64>,
        purchase: Option<i64>,
        orders: u64,
        o90: u64,
    ) -> Rfm {
        Rfm {
            source: Source::Inferred,
            orders,
            orders_90d: o90,
            orders_365d: orders,
            spend_cents: 0,
            spend_365d_cents: 0,
            days_since_last_purchase: purchase,
            days_since_last_seen: last,
            days_since_first_seen: first,
            scores: rfm_scores(purchase, orders, 0),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn lifecycle_thresholds_and_explanations() {
        let c = |r: &Rfm| classify_lifecycle(r);
        assert_eq!(
            c(&rfm_with(None, None, None, 0, 0)).segment,
            Lifecycle::Unknown
        );
        let new = c(&rfm_with(Some(5), Some(1), Some(1), 1, 1));
        assert_eq!(new.segment, Lifecycle::New);
        assert_eq!(
            new.explanation,
            "first seen 5 days ago (within 30 days) and 1 order so far: new"
        );
        let active = c(&rfm_with(Some(200), Some(12), Some(12), 6, 4));
        assert_eq!(
            active.explanation,
            "last purchase 12 days ago (within 45 days) and 4 orders in 90 days: active"
        );
        assert_eq!(
            c(&rfm_with(Some(200), Some(45), Some(45), 6, 1)).segment,
            Lifecycle::Active
        );
        assert_eq!(
            c(&rfm_with(Some(200), Some(46), Some(46), 6, 1)).segment,
            Lifecycle::AtRisk
        );
        assert_eq!(
            c(&rfm_with(Some(200), Some(120), Some(120), 6, 0)).segment,
            Lifecycle::AtRisk
        );
        let lapsed = c(&rfm_with(Some(400), Some(10), Some(121), 6, 0));
        assert_eq!(lapsed.segment, Lifecycle::Lapsed);
        assert!(lapsed.explanation.contains("more than 120 days"));
        let browser = c(&rfm_with(Some(100), Some(3), None, 0, 0));
        assert_eq!(
            browser.explanation,
            "no purchases, last activity 3 days ago (within 45 days) and 0 orders in 90 days: active"
        );
    }

    #[test]
    fn rfm_scores_use_fixed_thresholds() {
        assert_eq!(
            rfm_scores(Some(3), 10, 100_000),
            RfmScores {
                recency: 5,
                frequency: 5,
                monetary: 5
            }
        );
        assert_eq!(
            rfm_scores(Some(60), 3, 10_000),
            RfmScores {
                recency: 3,
                frequency: 3,
                monetary: 3
            }
        );
        assert_eq!(
            rfm_scores(None, 0, 0),
            RfmScores {
                recency: 1,
                frequency: 1,
                monetary: 1
            }
        );
    }

    fn limits() -> RuleLimits {
        let mut inv = Inventory::default();
        inv.traits.insert(
            "income_bracket".into(),
            PropertySpec {
                category: DataCategory::Demographic,
                purposes: vec![PurposeId::parse("personalization").unwrap()],
                protected: true,
            },
        );
        RuleLimits::new(&inv, &[cat("garden", false), cat("health", true)])
    }

    fn err(rule: Value) -> String {
        parse_rule(&rule, &limits()).unwrap_err().to_string()
    }

    #[test]
    fn rules_parse_evaluate_and_explain() {
        let rule = parse_rule(
            &json!({"all": [{"attribute": "rfm.frequency", "op": ">=", "value": 3},
                            {"any": [{"attribute": "affinity.garden", "op": ">", "value": 0.2},
                                     {"attribute": "lifecycle", "op": "in", "value": ["new", "active"]}]}]}),
            &limits(),
        )
        .unwrap();
        assert_eq!(
            parse_rule(&rule.to_json(), &limits()).unwrap(),
            rule,
            "round trip"
        );
        let mut m = BTreeMap::new();
        m.insert("rfm.frequency".to_string(), AttrValue::Number(5.0));
        m.insert("affinity.garden".to_string(), AttrValue::Number(0.5));
        m.insert("lifecycle".to_string(), AttrValue::Text("lapsed".into()));
        let v = rule.evaluate(&Attributes(m.clone()));
        assert!(v.holds);
        assert_eq!(
            v.explanation,
            "rfm.frequency is 5, which is >= 3 and affinity.garden is 0.5, which is > 0.2"
        );
        m.insert("rfm.frequency".to_string(), AttrValue::Number(2.0));
        let v = rule.evaluate(&Attributes(m));
        assert!(!v.holds);
        assert_eq!(v.explanation, "rfm.frequency is 2, which is not >= 3");
        let none = parse_rule(
            &json!({"attribute": "affinity.kitchen", "op": ">", "value": 0}),
            &limits(),
        )
        .unwrap();
        assert!(
            !none.evaluate(&Attributes::default()).holds,
            "missing affinity is 0"
        );
        let unknown = parse_rule(
            &json!({"attribute": "days_since_last_purchase", "op": "<", "value": 9}),
            &limits(),
        )
        .unwrap();
        assert_eq!(
            unknown.evaluate(&Attributes::default()).explanation,
            "days_since_last_purchase is not known for this subject"
        );
    }

    #[test]
    fn protected_and_sensitive_attributes_are_refused_by_name() {
        let e = err(
            json!({"all": [{"attribute": "orders", "op": ">", "value": 1}, {"attribute": "gender", "op": "==", "value": "f"}]}),
        );
        assert!(
            e.contains("rule.all[1].attribute") && e.contains("`gender` is a protected attribute"),
            "{e}"
        );
        assert!(
            err(json!({"attribute": "profile.Age_Band", "op": "==", "value": "x"}))
                .contains("protected")
        );
        assert!(
            err(json!({"attribute": "income_bracket", "op": "==", "value": "x"}))
                .contains("`income_bracket` is a protected")
        );
        let e = err(json!({"attribute": "affinity.health", "op": ">", "value": 0}));
        assert!(e.contains("sensitive category `health`"), "{e}");
        assert!(
            err(json!({"attribute": "affinity.sensitive:health", "op": ">", "value": 0}))
                .contains("sensitive")
        );
        let e = err(json!({"attribute": "interest.top", "op": "==", "value": "Health"}));
        assert!(e.contains("rule.value") && e.contains("sensitive"), "{e}");
    }

    #[test]
    fn malformed_rules_name_the_fault() {
        assert!(err(json!([])).contains("invalid rule: must be an object"));
        assert!(err(json!({"all": []})).contains("rule.all"));
        assert!(
            err(json!({"attribute": "orders", "op": "~", "value": 1}))
                .contains("`~` is not one of")
        );
        assert!(
            err(json!({"attribute": "shoe_size", "op": ">", "value": 1}))
                .contains("unknown attribute `shoe_size`")
        );
        assert!(
            err(json!({"attribute": "orders", "op": ">", "value": "1"}))
                .contains("compared with a number")
        );
        assert!(
            err(json!({"attribute": "lifecycle", "op": ">", "value": 1}))
                .contains("compares numbers")
        );
        assert!(
            err(json!({"attribute": "lifecycle", "op": "==", "value": "vip"}))
                .contains("not one of new")
        );
        assert!(
            err(json!({"attribute": "orders", "op": ">", "value": 1, "x": 1})).contains("rule.x")
        );
        assert!(
            err(json!({"attribute": "orders", "op": "in", "value": 1}))
                .contains("`in` needs an array")
        );
        let mut deep = json!({"attribute": "orders", "op": ">", "value": 1});
        for _ in 0..MAX_RULE_DEPTH {
            deep = json!({"all": [deep]});
        }
        assert!(err(deep).contains("nest at most"));
        let many: Vec<Value> = (0..=MAX_RULE_CONDITIONS)
            .map(|_| json!({"attribute": "orders", "op": ">", "value": 1}))
            .collect();
        assert!(err(json!({"any": many})).contains("at most 50 conditions"));
        let big: Vec<Value> = (0..90).map(|i| json!(format!("{i:0>90}"))).collect();
        assert!(
            err(json!({"attribute": "interest.top", "op": "in", "value": big})).contains("bytes")
        );
    }
}
