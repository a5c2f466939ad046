//! # candor-demo: a synthetic shop with a planted bias
//!
//! [`generate`] builds a complete, fictional shop from a [`DemoConfig`]: a category tree with one
//! sensitive category, a product catalog, customers with declared interests, demographics and
//! consent histories, a behavioral event stream (views, add-to-carts, purchases), and a log of
//! decisions for a `premium_credit` offer that contains a **deliberately planted bias** so that
//! Candor's fairness audit has something to find. No real person's data is involved: names are
//! drawn from generic lists and every email address uses the reserved `example.*` domains.
//!
//! ## Invariants
//!
//! * **Deterministic.** The output is a pure function of the config: the same config gives
//!   byte-for-byte identical data on every platform, compiler and crate version. The generator
//!   uses its own PRNG (xoshiro256** seeded through SplitMix64, one independent stream per
//!   entity) and computes with IEEE-754 basic operations only (its own `exp`; no libm), and
//!   never iterates a hash map into the output.
//! * **No I/O, no clock, no global state.** The caller passes `now_unix`; nothing is read from the
//!   environment, the file system, the network or the system clock.
//! * Every id is unique: categories (`"garden"`), products (`"SKU-00001"`), customers
//!   (`"cust-0001"`), emails; product names are unique too.
//! * Exactly one category is sensitive: `pharmacy` ("Health & Pharmacy", `sensitive: "health"`).
//! * Events reference existing customers and products, lie in
//!   `[now_unix - days * 86400, now_unix]`, never precede the customer's signup, and are sorted by
//!   time (stable: a customer's events keep their causal order view -> add to cart -> purchase).
//! * Every customer's consent timeline is chronological, starts at their first visit in the
//!   period (never before signup), and never contains `order_fulfilment` (a contract purpose
//!   needs no consent). Consent is never pre-ticked: each consent purpose is granted
//!   independently at a realistic opt-in rate, and some customers later revoke (a later
//!   `granted: false` choice) or opt in later from the preference center.
//! * Offer decisions lie in the period, after signup, and are sorted by time.
//!
//! ## Shape of the data (default config: 3 000 products, 2 000 customers, 180 days)
//!
//! * 11 categories; prices are log-normal around a per-category median and rounded to price
//!   points (`x.99`); within each category product popularity is Zipf-like (weight `1/rank`).
//! * Customers declare 0-3 interests; those without declared interests have latent ones. About
//!   70% of customers drift towards an undeclared category over time. Views concentrate on
//!   interests; add-to-cart and purchase are small fractions of views; about a third of customers
//!   are one-time visitors, the rest return repeatedly.
//! * Lifecycle spread by last activity: new (signed up in the last sixth of the period), active
//!   (active in the last 14/180 of the period), at risk (last active between 1/6 and 1/2 of the
//!   period ago), lapsed (last active more than half the period ago).
//! * About 60k-120k events for the default config.
//!
//! ## The planted bias (for the fairness audit to find)
//!
//! `offer_decisions` records 1-3 decisions per customer about the `premium_credit` offer. Each
//! decision has a latent `score` in `[0, 1]` computed from behavior only (purchases plus noise),
//! so scores are distributed identically across sexes. Then:
//!
//! * **Selection** happens with probability `logistic(8 * (score - 0.55))` times a factor that
//!   is [`PLANTED_FEMALE_SELECTION_FACTOR`] (`0.6`) for customers with `sex == "female"` and `1.0`
//!   for everyone else. At equal score, women are therefore selected about 0.6 times as often as
//!   men: the selection-rate ratio fails the four-fifths rule (disparate impact).
//! * **`converted`** is the ground-truth outcome label: whether the customer would take up the
//!   offer within 30 days. In this demo it is observed for every decision (as if from a
//!   randomized hold-out), with probability `0.05 + 0.6 * score` independent of sex. Conversion
//!   given selection is hence about equal across sexes, while the true-positive rate
//!   `P(selected | converted)` is about 0.6 times lower for women: equal opportunity is violated
//!   as well, and the gap cannot be explained by the score.
//! * **Proxy:** the first digit of `zip` is determined by `region` (see [`zip_region`]), so `zip`
//!   is a perfect proxy for `region`; a proxy detector should flag it. First names are also drawn
//!   from sex-specific lists, a realistic (weaker) proxy for `sex`.
//!
//! Protected attributes live in [`Demographics`], separate from behavior, as Candor requires.

#![forbid(unsafe_code)]

mod rng;
mod words;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::rng::{Rng, exp, logistic};
use crate::words::{
    AGE_BANDS, CATEGORIES, CategorySpec, EMAIL_DOMAINS, FEMALE_FIRST_NAMES, LAST_NAMES,
    MALE_FIRST_NAMES, NEUTRAL_FIRST_NAMES, REGIONS, SEXES,
};

const DAY: i64 = 86_400;

// Independent PRNG streams, one per kind of entity.
const STREAM_CATALOG: u64 = 1;
const STREAM_CUSTOMER: u64 = 2;
const STREAM_EVENTS: u64 = 3;
const STREAM_OFFERS: u64 = 4;

/// The id of the offer in [`OfferDecision::offer`].
pub const PREMIUM_CREDIT_OFFER: &str = "premium_credit";

/// The id of the one sensitive category (`sensitive: "health"`).
pub const SENSITIVE_CATEGORY_ID: &str = "pharmacy";

/// The planted bias: at equal score, customers with `sex == "female"` are selected for the
/// `premium_credit` offer with this factor times the probability of everyone else.
pub const PLANTED_FEMALE_SELECTION_FACTOR: f64 = 0.6;

/// What to generate. `now_unix` is the end of the period; nothing reads the clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoConfig {
    pub seed: u64,
    pub products: usize,
    pub customers: usize,
    /// Length of the simulated period ending at `now_unix`.
    pub days: u32,
    pub now_unix: i64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 42,
            products: 3000,
            customers: 2000,
            days: 180,
            // 2026-01-01T00:00:00Z
            now_unix: 1_767_225_600,
        }
    }
}

impl DemoConfig {
    /// First second of the simulated period: `now_unix - days * 86400`.
    pub fn period_start(&self) -> i64 {
        self.now_unix.saturating_sub(i64::from(self.days) * DAY)
    }
}

/// The generated shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoData {
    pub categories: Vec<Category>,
    pub products: Vec<Product>,
    pub customers: Vec<Customer>,
    /// Sorted by `at_unix`.
    pub events: Vec<Event>,
    /// Sorted by `at_unix`.
    pub offer_decisions: Vec<OfferDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Stable id, e.g. `"garden"`, `"pet_supplies"`.
    pub id: String,
    /// Display name, e.g. `"Garden"`.
    pub name: String,
    /// The sensitive data kind (`"health"`) for exactly one category, `None` otherwise.
    pub sensitive: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// `"SKU-00001"`, ...
    pub id: String,
    /// Unique, plausible name such as `"Cedar Planter Box"`.
    pub name: String,
    /// A [`Category::id`].
    pub category: String,
    pub price_cents: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// `"cust-0001"`, ...
    pub external_id: String,
    /// Unique, always at a reserved `example.com`/`.org`/`.net` domain.
    pub email: String,
    pub name: String,
    /// Five digits; the first digit determines `demographics.region` (planted proxy).
    pub zip: String,
    /// Category ids the customer said they like (0-3, in catalog order).
    pub declared_interests: Vec<String>,
    /// Protected attributes: for fairness auditing only, never model features.
    pub demographics: Demographics,
    /// Chronological consent history (consent purposes only).
    pub consents: Vec<ConsentChoice>,
    /// May lie before the period (existing customers) or inside it (new customers).
    pub signup_unix: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demographics {
    /// `"female"`, `"male"` or `"nonbinary"`.
    pub sex: String,
    /// `"18-24"`, `"25-34"`, `"35-44"`, `"45-54"`, `"55-64"` or `"65+"`.
    pub age_band: String,
    /// `"northeast"`, `"southeast"`, `"midwest"`, `"southwest"` or `"west"`.
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChoice {
    /// A [`DemoPurpose::id`] whose legal basis is consent.
    pub purpose: String,
    pub granted: bool,
    pub at_unix: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    View,
    AddToCart,
    Purchase,
}

impl EventKind {
    /// `"view"`, `"add_to_cart"` or `"purchase"` (the serde names).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::AddToCart => "add_to_cart",
            EventKind::Purchase => "purchase",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// A [`Customer::external_id`].
    pub customer: String,
    pub kind: EventKind,
    /// A [`Product::id`].
    pub product: String,
    pub at_unix: i64,
    /// 1 for views; units added or bought otherwise.
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferDecision {
    /// A [`Customer::external_id`].
    pub customer: String,
    /// Always [`PREMIUM_CREDIT_OFFER`].
    pub offer: String,
    /// Whether the customer was shown the offer (biased, see the crate docs).
    pub selected: bool,
    /// Ground-truth outcome label, observed for everyone (see the crate docs).
    pub converted: bool,
    /// Latent score in `[0, 1]`, rounded to 4 decimals, independent of sex.
    pub score: f64,
    pub at_unix: i64,
}

/// A purpose the demo shop declares. Static data, so it has no `Deserialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoPurpose {
    pub id: &'static str,
    pub title: &'static str,
    /// Plain language a customer understands.
    pub description: &'static str,
    /// `"consent"`, `"legitimate_interest"` or `"contract"`.
    pub legal_basis: &'static str,
    /// Data categories the purpose may use (`browsing`, `purchase`, `declared_preference`,
    /// `contact`).
    pub categories: &'static [&'static str],
    /// Whether data is sold or shared for cross-context advertising (GPC and DNT opt out).
    pub sale_or_sharing: bool,
    /// Whether the purpose is non-essential tracking (GPC and DNT opt out).
    pub non_essential_tracking: bool,
    /// Whether the purpose may build a person-level profile (aggregate-only if not).
    pub person_level: bool,
    /// Consent must be renewed after this many days.
    pub expires_after_days: Option<u32>,
}

/// The purposes the demo shop declares. All but `order_fulfilment` (contract) need consent.
pub const PURPOSES: &[DemoPurpose] = &[
    DemoPurpose {
        id: "personalization",
        title: "Personalized recommendations",
        description: "We use what you look at, what you buy and the interests you tell us about \
                      to suggest products you are likely to enjoy. You can switch this off at any \
                      time; you will then see the same suggestions as everyone else. We ask you \
                      again after a year.",
        legal_basis: "consent",
        categories: &["browsing", "purchase", "declared_preference"],
        sale_or_sharing: false,
        non_essential_tracking: false,
        person_level: true,
        expires_after_days: Some(365),
    },
    DemoPurpose {
        id: "analytics",
        title: "Shop statistics",
        description: "We count page views and purchases to understand how the shop is used and \
                      to fix what does not work. We only look at the results in aggregate, never \
                      at you as a person.",
        legal_basis: "consent",
        categories: &["browsing", "purchase"],
        sale_or_sharing: false,
        non_essential_tracking: true,
        person_level: false,
        expires_after_days: Some(395),
    },
    DemoPurpose {
        id: "email_marketing",
        title: "Offers by email",
        description: "We send you occasional emails about offers and new products that match \
                      the interests you told us about. Every email has a one-click unsubscribe \
                      link. We ask you again after two years.",
        legal_basis: "consent",
        categories: &["contact", "declared_preference"],
        sale_or_sharing: false,
        non_essential_tracking: false,
        person_level: true,
        expires_after_days: Some(730),
    },
    DemoPurpose {
        id: "ads_sharing",
        title: "Sharing with advertising partners",
        description: "We share what you look at and buy, and a scrambled form of your email \
                      address, with advertising partners so they can show you our ads on other \
                      websites. Some laws call this selling or sharing your personal data.",
        legal_basis: "consent",
        categories: &["browsing", "purchase", "contact"],
        sale_or_sharing: true,
        non_essential_tracking: true,
        person_level: true,
        expires_after_days: Some(395),
    },
    DemoPurpose {
        id: "order_fulfilment",
        title: "Processing your orders",
        description: "We use your contact details and what you ordered to deliver it, send \
                      receipts and handle returns. This is needed to carry out your order, so it \
                      does not depend on your consent.",
        legal_basis: "contract",
        categories: &["purchase", "contact"],
        sale_or_sharing: false,
        non_essential_tracking: false,
        person_level: false,
        expires_after_days: None,
    },
    DemoPurpose {
        id: "fairness_audit",
        title: "Checking we treat everyone fairly",
        description: "If you tell us your sex, age band or region, we use them only to check \
                      that our offers and suggestions do not treat groups of people unfairly. \
                      They are never used to decide what you see, and you can object at any \
                      time.",
        legal_basis: "legitimate_interest",
        categories: &["demographic"],
        sale_or_sharing: false,
        non_essential_tracking: false,
        person_level: false,
        expires_after_days: None,
    },
];

/// Looks up a declared purpose by id.
pub fn purpose(id: &str) -> Option<&'static DemoPurpose> {
    PURPOSES.iter().find(|p| p.id == id)
}

/// The region a generated ZIP code belongs to (the planted proxy), or `None` if `zip` is empty
/// or does not start with a digit.
pub fn zip_region(zip: &str) -> Option<&'static str> {
    let first = zip.chars().next()?;
    REGIONS
        .iter()
        .find(|(_, _, digits)| digits.contains(&first))
        .map(|(region, _, _)| *region)
}

/// How each consent purpose is answered: (id, opt-in rate, revoke rate among those who opted
/// in, later opt-in rate among those who declined).
const CONSENT_PLAN: &[(&str, f64, f64, f64)] = &[
    ("personalization", 0.65, 0.08, 0.06),
    ("analytics", 0.50, 0.06, 0.04),
    ("email_marketing", 0.40, 0.18, 0.05),
    ("ads_sharing", 0.15, 0.25, 0.02),
];

/// Generates the whole demo shop. Pure and deterministic (see the crate docs); the default
/// config takes well under a second in a release build.
pub fn generate(cfg: &DemoConfig) -> DemoData {
    let catalog = build_catalog(cfg);
    let period = Period {
        start: cfg.period_start(),
        end: cfg.now_unix,
    };

    let mut customers = Vec::with_capacity(cfg.customers);
    let mut events = Vec::new();
    let mut offer_decisions = Vec::with_capacity(cfg.customers * 2);
    for idx in 0..cfg.customers {
        let profile = build_customer(cfg.seed, idx, period);
        let purchases = customer_events(cfg.seed, idx, &profile, &catalog, period, &mut events);
        customer_offers(cfg.seed, idx, &profile, purchases, &mut offer_decisions);
        customers.push(profile.customer);
    }
    // Stable sorts: ties keep generation order, which is itself deterministic.
    events.sort_by_key(|e| e.at_unix);
    offer_decisions.sort_by_key(|d| d.at_unix);

    let categories = CATEGORIES
        .iter()
        .map(|c| Category {
            id: c.id.to_owned(),
            name: c.name.to_owned(),
            sensitive: c.sensitive.map(str::to_owned),
        })
        .collect();

    DemoData {
        categories,
        products: catalog.products,
        customers,
        events,
        offer_decisions,
    }
}

#[derive(Debug, Clone, Copy)]
struct Period {
    start: i64,
    end: i64,
}

impl Period {
    fn len(self) -> i64 {
        self.end - self.start
    }
    /// The instant `num/den` of the period before its end.
    fn before_end(self, num: i64, den: i64) -> i64 {
        self.end - self.len() * num / den
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog

struct Catalog {
    products: Vec<Product>,
    /// Per category (same order as `CATEGORIES`): product indices by popularity rank and the
    /// cumulative Zipf weights used to draw them.
    pools: Vec<Pool>,
}

#[derive(Default)]
struct Pool {
    ranked: Vec<usize>,
    cumulative: Vec<f64>,
}

impl Pool {
    fn draw(&self, rng: &mut Rng) -> usize {
        self.ranked[rng.cumulative_index(&self.cumulative)]
    }
}

fn build_catalog(cfg: &DemoConfig) -> Catalog {
    let mut rng = Rng::derive(cfg.seed, STREAM_CATALOG, 0);
    let shares: Vec<f64> = CATEGORIES.iter().map(|c| c.catalog_share).collect();
    let mut used_names = HashSet::with_capacity(cfg.products);
    let mut pools: Vec<Pool> = CATEGORIES.iter().map(|_| Pool::default()).collect();
    let mut products = Vec::with_capacity(cfg.products);
    for i in 0..cfg.products {
        // The first products cover every category once, so no category is empty.
        let c = if i < CATEGORIES.len() {
            i
        } else {
            rng.weighted(&shares).unwrap_or(0)
        };
        let spec = &CATEGORIES[c];
        let name = product_name(&mut rng, spec, &mut used_names);
        let z = rng.normal().clamp(-3.0, 3.5);
        let price_cents = price_point(spec.median_price_cents * exp(spec.price_sigma * z));
        pools[c].ranked.push(i);
        products.push(Product {
            id: format!("SKU-{:05}", i + 1),
            name,
            category: spec.id.to_owned(),
            price_cents,
        });
    }
    for pool in &mut pools {
        rng.shuffle(&mut pool.ranked);
        let mut total = 0.0;
        pool.cumulative = (0..pool.ranked.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0);
                total
            })
            .collect();
    }
    Catalog { products, pools }
}

fn product_name(rng: &mut Rng, spec: &CategorySpec, used: &mut HashSet<String>) -> String {
    let mut candidate = String::new();
    for _ in 0..16 {
        let adjective = spec.adjectives[rng.index(spec.adjectives.len())];
        let noun = spec.nouns[rng.index(spec.nouns.len())];
        let variant = spec.variants[rng.index(spec.variants.len())];
        candidate = format!("{}{adjective} {noun}{variant}", spec.prefix);
        if used.insert(candidate.clone()) {
            return candidate;
        }
    }
    // Large catalogs exhaust the combinations: number the last candidate.
    for n in 2u64.. {
        let numbered = format!("{candidate} No. {n}");
        if used.insert(numbered.clone()) {
            return numbered;
        }
    }
    unreachable!("u64 range exhausted")
}

/// Rounds to a shop price point: `x.49`/`x.99` below $10, `x.99` below $100, `x4.99`/`x9.99`
/// above.
fn price_point(cents: f64) -> u32 {
    let c = cents.clamp(100.0, 5_000_000.0);
    let step = if c < 1_000.0 {
        50.0
    } else if c < 10_000.0 {
        100.0
    } else {
        500.0
    };
    ((c / step).round() * step - 1.0).max(99.0) as u32
}

// ---------------------------------------------------------------------------------------------
// Customers

struct Profile {
    customer: Customer,
    female: bool,
    first_active: i64,
    last_active: i64,
    one_time: bool,
    sessions: u32,
    /// Base category weights (same order as `CATEGORIES`).
    weights: Vec<f64>,
    /// Declared or latent interests.
    interested: Vec<bool>,
    /// A category the customer drifts towards: weight grows linearly over the activity window.
    drift: Option<(usize, f64)>,
}

impl Profile {
    fn weights_at(&self, t: i64, available: &[bool]) -> Vec<f64> {
        let mut w = self.weights.clone();
        if let Some((c, strength)) = self.drift {
            let span = (self.last_active - self.first_active).max(1) as f64;
            let frac = ((t - self.first_active) as f64 / span).clamp(0.0, 1.0);
            w[c] += strength * frac;
        }
        for (w, &ok) in w.iter_mut().zip(available) {
            if !ok {
                *w = 0.0;
            }
        }
        w
    }
}

fn pick<'a>(rng: &mut Rng, table: &[(&'a str, f64)]) -> &'a str {
    let weights: Vec<f64> = table.iter().map(|(_, w)| *w).collect();
    table[rng.weighted(&weights).unwrap_or(0)].0
}

fn email_part(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn build_customer(seed: u64, idx: usize, period: Period) -> Profile {
    let mut rng = Rng::derive(seed, STREAM_CUSTOMER, idx as u64);
    let n = idx + 1;

    // Demographics and identity.
    let sex = pick(&mut rng, SEXES);
    let age_band = pick(&mut rng, AGE_BANDS);
    let region_weights: Vec<f64> = REGIONS.iter().map(|r| r.1).collect();
    let (region, _, zip_digits) = REGIONS[rng.weighted(&region_weights).unwrap_or(0)];
    let zip = format!(
        "{}{:04}",
        zip_digits[rng.index(zip_digits.len())],
        rng.below(10_000)
    );
    let first_names = match sex {
        "female" => FEMALE_FIRST_NAMES,
        "male" => MALE_FIRST_NAMES,
        _ => NEUTRAL_FIRST_NAMES,
    };
    let first = first_names[rng.index(first_names.len())];
    let last = LAST_NAMES[rng.index(LAST_NAMES.len())];
    let domain = EMAIL_DOMAINS[rng.index(EMAIL_DOMAINS.len())];
    let email = format!("{}.{}{n}@{domain}", email_part(first), email_part(last));

    // Lifecycle: pick the segment, then the last activity, then the signup.
    let p6 = period.before_end(1, 6);
    let (new, last_active) = match rng.f64() {
        u if u < 0.15 => (true, 0),
        u if u < 0.60 => (false, rng.range_i64(period.before_end(14, 180), period.end)),
        u if u < 0.80 => (false, rng.range_i64(period.before_end(1, 2), p6)),
        _ => (false, rng.range_i64(period.start, period.before_end(1, 2))),
    };
    let (signup_unix, last_active) = if new {
        let signup = rng.range_i64(p6, period.end);
        (signup, rng.range_i64(signup, period.end))
    } else if rng.chance(0.55) {
        (period.start - rng.range_i64(DAY, 730 * DAY), last_active)
    } else {
        (
            rng.range_i64(period.start, last_active.min(p6)),
            last_active,
        )
    };
    let first_active = signup_unix.max(period.start);

    // Interests: declared ones, latent ones for customers who declare none, and a drift.
    let n_cat = CATEGORIES.len();
    let mut weights: Vec<f64> = CATEGORIES
        .iter()
        .map(|c| 0.035 * c.interest_weight)
        .collect();
    let mut interested = vec![false; n_cat];
    let declared_count = match rng.f64() {
        u if u < 0.20 => 0,
        u if u < 0.55 => 1,
        u if u < 0.85 => 2,
        _ => 3,
    };
    let hidden_count = if declared_count == 0 {
        1 + rng.index(2)
    } else {
        0
    };
    let mut popularity: Vec<f64> = CATEGORIES.iter().map(|c| c.interest_weight).collect();
    let mut declared_interests = Vec::new();
    for k in 0..declared_count + hidden_count {
        let Some(c) = rng.weighted(&popularity) else {
            break;
        };
        popularity[c] = 0.0;
        interested[c] = true;
        weights[c] += 3.0 + 3.0 * rng.f64();
        if k < declared_count {
            declared_interests.push(c);
        }
    }
    declared_interests.sort_unstable();
    let drift = if rng.chance(0.7) {
        rng.weighted(&popularity)
            .map(|c| (c, 1.5 + 3.5 * rng.f64()))
    } else {
        None
    };

    // Activity volume: one-time visitors versus returning customers.
    let one_time = rng.chance(0.35);
    let window = (last_active - first_active) as f64 / period.len().max(1) as f64;
    let sessions = if one_time {
        1 + rng.below(2) as u32
    } else {
        let volume = 15.0 * exp(0.5 * rng.normal()) * (0.35 + 0.65 * window);
        2 + volume.round() as u32
    };

    let consents = consent_history(&mut rng, first_active, period.end);

    Profile {
        customer: Customer {
            external_id: format!("cust-{n:04}"),
            email,
            name: format!("{first} {last}"),
            zip,
            declared_interests: declared_interests
                .into_iter()
                .map(|c| CATEGORIES[c].id.to_owned())
                .collect(),
            demographics: Demographics {
                sex: sex.to_owned(),
                age_band: age_band.to_owned(),
                region: region.to_owned(),
            },
            consents,
            signup_unix,
        },
        female: sex == "female",
        first_active,
        last_active,
        one_time,
        sessions,
        weights,
        interested,
        drift,
    }
}

/// The banner answer at the first visit (every consent purpose, independently, never
/// pre-ticked), then possibly one later change per purpose.
fn consent_history(rng: &mut Rng, first_seen: i64, end: i64) -> Vec<ConsentChoice> {
    let mut choices = Vec::with_capacity(CONSENT_PLAN.len() + 2);
    let mut changes = Vec::new();
    for &(purpose, opt_in, revoke, later_opt_in) in CONSENT_PLAN {
        let granted = rng.chance(opt_in);
        choices.push(ConsentChoice {
            purpose: purpose.to_owned(),
            granted,
            at_unix: first_seen,
        });
        let change = if granted { revoke } else { later_opt_in };
        if rng.chance(change) {
            let at = rng.range_i64((first_seen + 3600).min(end), end);
            changes.push(ConsentChoice {
                purpose: purpose.to_owned(),
                granted: !granted,
                at_unix: at,
            });
        }
    }
    changes.sort_by_key(|c| c.at_unix);
    choices.extend(changes);
    choices
}

// ---------------------------------------------------------------------------------------------
// Events

/// Appends the customer's events (in time order) and returns the number of purchase events.
fn customer_events(
    seed: u64,
    idx: usize,
    profile: &Profile,
    catalog: &Catalog,
    period: Period,
    out: &mut Vec<Event>,
) -> u32 {
    let mut rng = Rng::derive(seed, STREAM_EVENTS, idx as u64);
    let available: Vec<bool> = catalog.pools.iter().map(|p| !p.ranked.is_empty()).collect();
    if !available.contains(&true) {
        return 0;
    }
    let customer = &profile.customer.external_id;
    let mut starts: Vec<i64> = (0..profile.sessions)
        .map(|_| rng.range_i64(profile.first_active, profile.last_active))
        .collect();
    starts.sort_unstable();
    // The last session happens at the last activity, which defines the lifecycle stage.
    if let Some(last) = starts.last_mut() {
        *last = profile.last_active;
    }
    let cart_rate = if profile.one_time { 0.15 } else { 0.08 };
    let checkout_rate = if profile.one_time { 0.8 } else { 0.6 };
    let mut purchases = 0;
    let mut prev_end = i64::MIN;
    let mut cart: Vec<(usize, u32)> = Vec::new();
    for start in starts {
        let mut t = if start <= prev_end {
            prev_end + rng.range_i64(600, 4 * 3600)
        } else {
            start
        };
        if t > period.end {
            break;
        }
        let weights = profile.weights_at(t, &available);
        let Some(session_category) = rng.weighted(&weights) else {
            break;
        };
        let views = 1 + rng.geometric(0.3, 30);
        cart.clear();
        for _ in 0..views {
            let c = if rng.chance(0.8) {
                session_category
            } else {
                rng.weighted(&weights).unwrap_or(session_category)
            };
            let product = catalog.pools[c].draw(&mut rng);
            out.push(event(
                customer,
                EventKind::View,
                catalog,
                product,
                t,
                1,
                period,
            ));
            let boost = if profile.interested[c] { 1.6 } else { 1.0 };
            if rng.chance(cart_rate * boost) && !cart.iter().any(|&(p, _)| p == product) {
                t += rng.range_i64(5, 90);
                let quantity = quantity(&mut rng, &CATEGORIES[c]);
                out.push(event(
                    customer,
                    EventKind::AddToCart,
                    catalog,
                    product,
                    t,
                    quantity,
                    period,
                ));
                cart.push((product, quantity));
            }
            t += rng.range_i64(15, 240);
        }
        if !cart.is_empty() && rng.chance(checkout_rate) {
            t += rng.range_i64(60, 600);
            for &(product, quantity) in &cart {
                if rng.chance(0.9) {
                    out.push(event(
                        customer,
                        EventKind::Purchase,
                        catalog,
                        product,
                        t,
                        quantity,
                        period,
                    ));
                    purchases += 1;
                }
            }
        }
        prev_end = t;
    }
    purchases
}

fn event(
    customer: &str,
    kind: EventKind,
    catalog: &Catalog,
    product: usize,
    t: i64,
    quantity: u32,
    period: Period,
) -> Event {
    Event {
        customer: customer.to_owned(),
        kind,
        product: catalog.products[product].id.clone(),
        at_unix: t.min(period.end),
        quantity,
    }
}

fn quantity(rng: &mut Rng, spec: &CategorySpec) -> u32 {
    let u = rng.f64();
    if spec.consumable {
        if u < 0.7 {
            1
        } else if u < 0.9 {
            2
        } else {
            3
        }
    } else if u < 0.92 {
        1
    } else {
        2
    }
}

// ---------------------------------------------------------------------------------------------
// Offer decisions (the planted bias)

fn customer_offers(
    seed: u64,
    idx: usize,
    profile: &Profile,
    purchases: u32,
    out: &mut Vec<OfferDecision>,
) {
    let mut rng = Rng::derive(seed, STREAM_OFFERS, idx as u64);
    // Behavior-only base score: independent of every protected attribute.
    let engagement = f64::from(purchases.min(8)) / 8.0;
    let base = 0.1 + 0.25 * (rng.f64() + rng.f64()) + 0.35 * engagement;
    let factor = if profile.female {
        PLANTED_FEMALE_SELECTION_FACTOR
    } else {
        1.0
    };
    let n = 1 + rng.below(3);
    let mut times: Vec<i64> = (0..n)
        .map(|_| rng.range_i64(profile.first_active, profile.last_active))
        .collect();
    times.sort_unstable();
    for at_unix in times {
        let raw = (base + 0.05 * rng.normal()).clamp(0.0, 1.0);
        let score = (raw * 10_000.0).round() / 10_000.0;
        let selected = rng.chance(logistic(8.0 * (score - 0.55)) * factor);
        let converted = rng.chance(0.05 + 0.6 * score);
        out.push(OfferDecision {
            customer: profile.customer.external_id.clone(),
            offer: PREMIUM_CREDIT_OFFER.to_owned(),
            selected,
            converted,
            score,
            at_unix,
        });
    }
}
