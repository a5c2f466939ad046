//! The serving pipeline: candidates -> filters -> diversity re-ranking -> explanations.
//!
//! The serving order, enforced here: the caller has already checked consent for the purpose and
//! passes only consented data (`Request::history` is empty without consent for behavioural
//! personalization); then the personalization level picks the sources that may be used
//! (`off`: popularity only; `basic`: declared interests + popularity; `full`: individual
//! behaviour too); then sensitive categories are removed unless the subject opted in; then
//! items already owned or in the history; quiet periods are the caller's (no call is made).
//! Then MMR re-ranking with category caps and one exploration slot, then explanations.
//!
//! Invariants: a response never contains an item of a sensitive category the subject did not
//! opt into, nor an owned item; at level `off` no reason or data category refers to the
//! subject; every item carries at least one reason, the data categories and purposes used,
//! a confidence in [0, 1] and the model version. A reason names a history entry only with the
//! entry's own interaction (viewed, added to the cart, bought) and data category, and only if
//! that entry's part of the score is at least [`REASON_MIN_SHARE`] of it. Work per request is proportional to
//! history x neighbours + candidates, never to the catalogue size.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::error::{RecError, Result};
use crate::kernels::dot;
use crate::models::knn::event_ages;
use crate::models::{Als, FoldIn, ItemKnn, blend::scale_to_max, top_k};
use crate::rng::SplitMix64;

/// The subject's own choice of how personal recommendations may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Non-personal only (popularity).
    Off,
    /// Declared preferences and categories only.
    Basic,
    /// Individual behaviour too.
    Full,
}

/// What the engine knows about items.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub item_ids: Vec<String>,
    pub titles: Vec<String>,
    /// Primary category of each item.
    pub item_category: Vec<u32>,
    pub category_names: Vec<String>,
    /// Per category: sensitive (e.g. health), excluded unless the subject opted in.
    pub category_sensitive: Vec<bool>,
    /// Provider group of each item for exposure constraints (e.g. small vs large sellers);
    /// empty = no groups.
    pub item_group: Vec<u32>,
}

/// Tunables of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Candidates kept before re-ranking.
    pub candidates: usize,
    /// MMR trade-off: 1 = relevance only, 0 = diversity only.
    pub mmr_lambda: f32,
    /// At most this many items of one category in a response.
    pub category_cap: usize,
    /// Reserve the last slot for an item from a category not otherwise shown.
    pub exploration_slot: bool,
    /// What every history entry is when a request gives no [`Request::history_kinds`] (a data
    /// set of one kind, such as purchases).
    pub behaviour: Interaction,
    /// Purpose under which recommendations are made.
    pub purpose: String,
    /// Fairness of exposure: `group_min_slots[g]` items of provider group `g` in every
    /// response, when the candidate pool has them (empty = no constraint).
    pub group_min_slots: Vec<usize>,
    /// Fairness of exposure as shares: `group_min_share[g]` of every response's slots (rounded
    /// up) go to group `g` when the pool has such items; when set, it replaces
    /// `group_min_slots`.
    pub group_min_share: Vec<f32>,
    /// Level `basic`: an item's trending score is multiplied by `1 + boost x` the share of the
    /// person's declared interests it matches (0 = trending alone).
    pub basic_match_boost: f32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            candidates: 100,
            mmr_lambda: 0.7,
            category_cap: 3,
            exploration_slot: true,
            behaviour: Interaction::Purchased,
            purpose: "recommendations".into(),
            group_min_slots: Vec::new(),
            group_min_share: Vec::new(),
            basic_match_boost: 1.0,
        }
    }
}

/// What the subject did with an item of their history. It decides the words of a reason and
/// the data category the reason says was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interaction {
    /// Looked at the item (browsing data), including the item on screen now.
    Viewed,
    /// Put it in the cart (browsing data).
    AddedToCart,
    /// Bought it (purchase data).
    Purchased,
}

impl Interaction {
    const ALL: [Interaction; 3] = [
        Interaction::Viewed,
        Interaction::AddedToCart,
        Interaction::Purchased,
    ];

    /// The data category an interaction of this kind is.
    pub fn data_category(self) -> &'static str {
        match self {
            Interaction::Viewed | Interaction::AddedToCart => "browsing",
            Interaction::Purchased => "purchase",
        }
    }

    fn because(self, title: &str) -> String {
        format!("Because you {}", self.did(title))
    }

    /// "Because you viewed X and Y", or "... viewed X and bought Y" when the kinds differ.
    fn because_both(self, title: &str, other: Interaction, other_title: &str) -> String {
        if self == other {
            format!("{} and {other_title}", self.because(title))
        } else {
            format!("{} and {}", self.because(title), other.did(other_title))
        }
    }

    fn did(self, title: &str) -> String {
        match self {
            Interaction::Viewed => format!("viewed {title}"),
            Interaction::AddedToCart => format!("added {title} to your cart"),
            Interaction::Purchased => format!("bought {title}"),
        }
    }

    fn things(self) -> &'static str {
        match self {
            Interaction::Viewed => "viewed",
            Interaction::AddedToCart => "added to your cart",
            Interaction::Purchased => "bought",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The caller's consent decisions for the recommendation purpose, per kind of data. The engine
/// checks them again (defence in depth): without `behaviour` the history is never read, and
/// without `declared` the declared interests are never read, whatever the level says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Consent {
    pub behaviour: bool,
    pub declared: bool,
}

/// One request. Indices are item / category indices of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The subject's chosen personalization level.
    pub level: Level,
    pub consent: Consent,
    /// Consented behavioural history, oldest first (empty without consent).
    pub history: &'a [u32],
    /// Times of `history` (or empty).
    pub history_ts: &'a [i64],
    /// What the subject did with each `history` entry (or empty: every entry is
    /// [`ServeConfig::behaviour`]).
    pub history_kinds: &'a [Interaction],
    /// Declared interests (category indices).
    pub declared: &'a [u32],
    /// Sensitive categories the subject explicitly opted into.
    pub sensitive_opt_in: &'a [u32],
    /// Items the subject already owns (besides the history).
    pub owned: &'a [u32],
    pub k: usize,
    /// Seeds the exploration slot (e.g. a hash of subject and day) so a page reload is stable.
    pub seed: u64,
}

/// Why an item was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Similar to an item in the subject's history.
    Because { item: u32, text: String },
    /// Popular in a category the subject declared.
    DeclaredCategory { category: u32, text: String },
    /// Similar to the subject's history as a whole, no one entry of it carrying the score.
    Activity { text: String },
    /// Popular overall.
    Popular { text: String },
    /// The exploration slot.
    Exploration { category: u32, text: String },
}

/// One recommended item with its reasons, data categories, purposes and confidence.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub item: u32,
    pub item_id: String,
    pub score: f32,
    /// Estimated probability the subject engages; see [`Calibration`].
    pub confidence: f32,
    pub reasons: Vec<Reason>,
    pub data_categories: Vec<String>,
    pub purposes: Vec<String>,
    pub exploration: bool,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// The level actually applied: the requested one, lowered where consent is missing.
    pub level: Level,
    pub model_version: String,
    pub calibrated: bool,
    /// True when the exposure constraint changed at least one pick (for the audit log).
    pub fairness_adjusted: bool,
    pub items: Vec<Recommendation>,
}

/// Monotone map from a score to an observed hit rate (isotonic regression, pool adjacent
/// violators), fitted offline on (score, was it a hit) pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Upper score bound of each block, ascending.
    pub upper: Vec<f32>,
    /// Hit rate of each block, non-decreasing.
    pub rate: Vec<f32>,
}

impl Calibration {
    pub fn fit(pairs: &mut [(f32, bool)]) -> Self {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // blocks of (upper score, hits, count), merged while rates decrease
        let mut blocks: Vec<(f32, f64, f64)> = Vec::new();
        for &(s, hit) in pairs.iter() {
            blocks.push((s, f64::from(u8::from(hit)), 1.0));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.1 / a.2 >= b.1 / b.2 {
                    blocks[n - 2] = (b.0, a.1 + b.1, a.2 + b.2);
                    blocks.pop();
                } else {
                    break;
                }
            }
        }
        Calibration {
            upper: blocks.iter().map(|b| b.0).collect(),
            rate: blocks.iter().map(|b| (b.1 / b.2) as f32).collect(),
        }
    }

    /// Fits on the engine's own answers: for each (request, items the subject went on to use,
    /// sorted), every returned item's score paired with whether it was used. Fit on one set of
    /// subjects and check on another (see tests/ml100k.rs).
    pub fn fit_engine<'a>(
        engine: &Engine,
        cases: impl IntoIterator<Item = (Request<'a>, &'a [u32])>,
    ) -> Self {
        let mut pairs = Vec::new();
        for (req, used) in cases {
            for it in engine.recommend(&req).items {
                pairs.push((it.score, used.binary_search(&it.item).is_ok()));
            }
        }
        Calibration::fit(&mut pairs)
    }

    pub fn apply(&self, score: f32) -> f32 {
        if self.rate.is_empty() {
            return 0.0;
        }
        let i = self.upper.partition_point(|&u| u < score);
        self.rate[i.min(self.rate.len() - 1)]
    }
}

/// Hasher for `u32` item keys: one multiply (Fibonacci hashing). Keys are dense indices chosen
/// by us, not by an attacker, so SipHash's flood resistance buys nothing on this hot path.
#[derive(Default)]
struct ItemHasher(u64);

impl Hasher for ItemHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (u64::from(v) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ItemMap<V> = HashMap<u32, V, BuildHasherDefault<ItemHasher>>;
type ItemSet = HashSet<u32, BuildHasherDefault<ItemHasher>>;

/// A candidate and the signals that put it there (each with its share of the score).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    item: u32,
    score: f32,
    behaviour: Option<Behaviour>,
    /// The declared category it matches.
    declared: Option<u32>,
}

/// The behavioural part of a candidate's score and where it came from.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Position in `Request::history` of the entry that contributed most.
    top: u32,
    /// That entry's own part of the score.
    top_part: f32,
    /// The entry that contributed second most, and its part (named beside `top` when it too
    /// carries [`REASON_MIN_SHARE`] of the score).
    second: Option<(u32, f32)>,
    /// The whole behavioural part of the score.
    part: f32,
    /// [`Interaction::bit`]s of every entry that contributed.
    kinds: u8,
}

/// The model that reads a subject's own behaviour at level `full`.
#[derive(Debug, Clone)]
pub enum FullModel {
    Knn(ItemKnn),
    Factors(Factors),
    /// Both, scores scaled to their maximum and mixed (`knn_weight` for kNN).
    Blend {
        knn: ItemKnn,
        factors: Factors,
        knn_weight: f32,
    },
}

impl FullModel {
    fn n_items(&self) -> usize {
        match self {
            FullModel::Knn(m) | FullModel::Blend { knn: m, .. } => m.n_items,
            FullModel::Factors(f) => f.als.n_items,
        }
    }
}

/// ALS item factors with `YᵀY + reg I` cached, so that a subject's factor is folded in from
/// their current history on every request: new events count at once, without retraining,
/// and no subject's trained factor is kept.
#[derive(Debug, Clone)]
pub struct Factors {
    als: Als,
    gram: Vec<f32>,
}

impl Factors {
    /// Drops the trained subject factors (serving folds every subject in) and caches the
    /// Gram matrix.
    pub fn new(mut als: Als) -> Self {
        als.user_factors = Vec::new();
        als.n_users = 0;
        let gram = als.gram();
        Factors { als, gram }
    }

    pub fn als(&self) -> &Als {
        &self.als
    }

    fn item_factor(&self, i: u32) -> Option<&[f32]> {
        ((i as usize) < self.als.n_items).then(|| self.als.item_factor(i))
    }
}

/// Per neighbour of a history: the kNN vote and which entries gave most of it.
#[derive(Debug, Clone, Copy)]
struct Votes {
    sum: f32,
    top: (u32, f32),
    second: Option<(u32, f32)>,
    kinds: u8,
}

/// What explains a factor (or blended) score after the picks are made: the folded-in system
/// and the scales the parts were divided by.
struct FactorExplainer<'m> {
    factors: &'m Factors,
    fold: FoldIn,
    /// The factor scores' scale (their maximum).
    als_max: f32,
    /// kNN's part: the model, its weight, its scale and each entry's age.
    knn: Option<(&'m ItemKnn, f32, f32, Vec<usize>)>,
}

/// A loaded model plus catalogue, ready to answer requests from many threads.
#[derive(Debug, Clone)]
pub struct Engine {
    catalog: Catalog,
    model: Option<FullModel>,
    popularity: Vec<f32>,
    pop_order: Vec<u32>,
    by_category: Vec<Vec<u32>>,
    model_version: String,
    config: ServeConfig,
    calibration: Option<Calibration>,
    /// Per item: whether it may be recommended (empty: every item may).
    servable: Vec<bool>,
    /// Level `basic`'s signals: see [`Engine::with_basic_signals`].
    basic: BasicSignals,
}

/// What level `basic` ranks by: aggregate trending and the match of an item's attributes with
/// the person's declared interests. Nothing in it comes from the person's own behaviour.
#[derive(Debug, Clone, Default)]
struct BasicSignals {
    /// Per item: every category/attribute it carries (empty: its primary category only).
    tags: Vec<Vec<u32>>,
    /// Per item: trending score scaled to [0, 1] (empty: popularity).
    trend: Vec<f32>,
    /// Servable items by trend, best first.
    order: Vec<u32>,
    /// Per category: servable items carrying it, by trend.
    by_tag: Vec<Vec<u32>>,
}

const W_BEHAVIOUR: f32 = 1.0;
/// Declared (zero-party) preferences outrank inferred ones: a declared match adds more
/// than popularity can, and at `basic` it is the whole signal.
const W_DECLARED: f32 = 0.5;
const W_POPULAR: f32 = 0.1;
/// Level `basic`'s largest score (a trending item matching every declared interest).
const W_BASIC: f32 = W_DECLARED + W_POPULAR;
/// A history entry is named as a reason only if its own part is at least this share of the
/// item's score: a trace of similarity under an item that is there for its popularity does not
/// explain it.
const REASON_MIN_SHARE: f32 = 0.2;

impl Engine {
    /// `counts[i]` is the (consented, aggregate) popularity of item `i`; `knn` the behavioural
    /// model (None: levels above `off` use declared interests only).
    pub fn new(
        catalog: Catalog,
        counts: &[u32],
        knn: Option<ItemKnn>,
        model_version: String,
        config: ServeConfig,
    ) -> Result<Self> {
        Engine::with_model(
            catalog,
            counts,
            knn.map(FullModel::Knn),
            model_version,
            config,
        )
    }

    /// [`Engine::new`] with any model for level `full` (kNN, factors or a blend).
    pub fn with_model(
        catalog: Catalog,
        counts: &[u32],
        model: Option<FullModel>,
        model_version: String,
        config: ServeConfig,
    ) -> Result<Self> {
        let n = catalog.item_ids.len();
        if catalog.titles.len() != n || catalog.item_category.len() != n || counts.len() != n {
            return Err(RecError::Invalid(
                "catalogue columns differ in length".into(),
            ));
        }
        if !catalog.item_group.is_empty() && catalog.item_group.len() != n {
            return Err(RecError::Invalid(
                "item_group must be empty or one per item".into(),
            ));
        }
        if catalog.category_sensitive.len() != catalog.category_names.len()
            || catalog
                .item_category
                .iter()
                .any(|&c| c as usize >= catalog.category_names.len())
        {
            return Err(RecError::Invalid("category index out of range".into()));
        }
        if let Some(m) = &model
            && m.n_items() > n
        {
            return Err(RecError::Invalid(format!(
                "the model has {} items, the catalogue {n}",
                m.n_items()
            )));
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
        let popularity: Vec<f32> = counts.iter().map(|&c| c as f32 / max).collect();
        let mut pop_order: Vec<u32> = (0..n as u32).collect();
        pop_order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
        let mut by_category = vec![Vec::new(); catalog.category_names.len()];
        for &i in &pop_order {
            by_category[catalog.item_category[i as usize] as usize].push(i);
        }
        Engine {
            catalog,
            model,
            popularity,
            pop_order,
            by_category,
            model_version,
            config,
            calibration: None,
            servable: Vec::new(),
            basic: BasicSignals::default(),
        }
        .with_basic_signals(Vec::new(), Vec::new())
    }

    /// Level `basic`'s signals: `tags[i]`, every category (or attribute value indexed like a
    /// category) item `i` carries, for content matching with declared interests (empty: the
    /// primary category only); `trending[i]`, an aggregate trending score
    /// ([`crate::models::trending`]; empty: popularity).
    pub fn with_basic_signals(mut self, tags: Vec<Vec<u32>>, trending: Vec<f32>) -> Result<Self> {
        let n = self.catalog.item_ids.len();
        let n_cat = self.catalog.category_names.len();
        if (!tags.is_empty() && tags.len() != n)
            || tags.iter().flatten().any(|&c| c as usize >= n_cat)
            || (!trending.is_empty() && trending.len() != n)
        {
            return Err(RecError::Invalid(
                "basic signals: one tag list and one trending score per item, tags in range".into(),
            ));
        }
        let mut trend = trending;
        if trend.is_empty() {
            trend = self.popularity.clone();
        } else {
            scale_to_max(&mut trend);
        }
        let mut order: Vec<u32> = (0..n as u32).filter(|&i| self.is_servable(i)).collect();
        order.sort_by(|&a, &b| {
            trend[b as usize]
                .total_cmp(&trend[a as usize])
                .then(a.cmp(&b))
        });
        let mut by_tag = vec![Vec::new(); n_cat];
        for &i in &order {
            match tags.get(i as usize) {
                Some(t) if !t.is_empty() => t.iter().for_each(|&c| by_tag[c as usize].push(i)),
                _ => by_tag[self.catalog.item_category[i as usize] as usize].push(i),
            }
        }
        self.basic = BasicSignals {
            tags,
            trend,
            order,
            by_tag,
        };
        Ok(self)
    }

    /// Items marked `false` (out of stock, withdrawn, deleted) are never recommended, whatever
    /// the model says; they keep their index, so histories and models still line up.
    pub fn with_servable(mut self, servable: Vec<bool>) -> Result<Self> {
        if servable.len() != self.catalog.item_ids.len() {
            return Err(RecError::Invalid(
                "servable must have one entry per item".into(),
            ));
        }
        self.pop_order.retain(|&i| servable[i as usize]);
        for items in &mut self.by_category {
            items.retain(|&i| servable[i as usize]);
        }
        self.basic.order.retain(|&i| servable[i as usize]);
        for items in &mut self.basic.by_tag {
            items.retain(|&i| servable[i as usize]);
        }
        self.servable = servable;
        Ok(self)
    }

    fn is_servable(&self, i: u32) -> bool {
        self.servable.get(i as usize).copied().unwrap_or(true)
    }

    /// An engine over a loaded model file. The catalogue must list exactly the file's items in
    /// the same order (indices are shared), else the file belongs to another catalogue and is
    /// refused. Item-kNN, ALS and blend files serve `full`; any other kind is refused (a
    /// popularity or content file cannot serve individual behaviour, and must not pass for a
    /// model that does).
    pub fn from_model_file(
        catalog: Catalog,
        counts: &[u32],
        file: &crate::codec::ModelFile,
        config: ServeConfig,
    ) -> Result<Self> {
        // Items added since training come after the model's own, in place: they have no
        // neighbours yet and are served by popularity and declared categories until the next
        // training run.
        if !catalog.item_ids.starts_with(&file.meta.item_ids) {
            return Err(RecError::Invalid(format!(
                "model {} was trained on a different item list than this catalogue",
                file.meta.version
            )));
        }
        use crate::models::Model;
        let n = catalog.item_ids.len();
        let model = match &file.model {
            Model::ItemKnn(m) => FullModel::Knn(m.grown(n)),
            Model::Als(m) => FullModel::Factors(Factors::new(m.clone())),
            Model::Blend(b) => FullModel::Blend {
                knn: b.knn.grown(n),
                factors: Factors::new(b.als.clone()),
                knn_weight: b.knn_weight,
            },
            other => {
                return Err(RecError::Invalid(format!(
                    "model {} is a {} model, which cannot serve level full; serving needs item-knn, als or blend",
                    file.meta.version,
                    other.kind().name()
                )));
            }
        };
        Engine::with_model(
            catalog,
            counts,
            Some(model),
            file.meta.version.clone(),
            config,
        )
    }

    pub fn with_calibration(mut self, c: Calibration) -> Self {
        self.calibration = Some(c);
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What the subject did with `history[n]`.
    fn kind_of(&self, req: &Request<'_>, n: usize) -> Interaction {
        req.history_kinds
            .get(n)
            .copied()
            .unwrap_or(self.config.behaviour)
    }

    fn allowed_category(&self, c: u32, req: &Request<'_>) -> bool {
        !self.catalog.category_sensitive[c as usize] || req.sensitive_opt_in.contains(&c)
    }

    /// Runs the whole pipeline for one request.
    pub fn recommend(&self, req: &Request<'_>) -> Response {
        let use_behaviour = req.level == Level::Full && req.consent.behaviour;
        let use_declared = req.level >= Level::Basic && req.consent.declared;
        let level = if use_behaviour {
            Level::Full
        } else if use_declared {
            Level::Basic
        } else {
            Level::Off
        };
        let blocked: ItemSet = req.history.iter().chain(req.owned).copied().collect();
        let admissible = |i: u32| {
            (i as usize) < self.popularity.len()
                && self.is_servable(i)
                && !blocked.contains(&i)
                && self.allowed_category(self.catalog.item_category[i as usize], req)
        };
        let mut cands: ItemMap<Candidate> = ItemMap::default();
        cands.reserve(4 * self.config.candidates);

        // 1. behaviour (level full only, and only with a consented history)
        let mut explainer = None;
        if use_behaviour && let Some(model) = &self.model {
            match model {
                FullModel::Knn(knn) => self.knn_candidates(knn, req, &admissible, &mut cands),
                FullModel::Factors(f) => {
                    explainer = self.factor_candidates(f, None, req, &admissible, &mut cands)
                }
                FullModel::Blend {
                    knn,
                    factors,
                    knn_weight,
                } => {
                    explainer = self.factor_candidates(
                        factors,
                        Some((knn, *knn_weight)),
                        req,
                        &admissible,
                        &mut cands,
                    )
                }
            }
        }
        // 2. declared interests: at basic, content matching over trending items; at full, the
        // most popular items of each declared category join the behavioural candidates
        if level == Level::Basic && !req.declared.is_empty() {
            self.basic_candidates(req, &admissible, &mut cands);
        } else if use_declared && !req.declared.is_empty() {
            let per = self.config.candidates / req.declared.len() + 1;
            for &c in req.declared {
                if c as usize >= self.by_category.len() || !self.allowed_category(c, req) {
                    continue;
                }
                for &i in self.by_category[c as usize]
                    .iter()
                    .filter(|&&i| admissible(i))
                    .take(per)
                {
                    let e = cands.entry(i).or_insert(Candidate {
                        item: i,
                        score: W_POPULAR * self.popularity[i as usize],
                        behaviour: None,
                        declared: None,
                    });
                    if e.declared.is_none() {
                        e.score += W_DECLARED;
                        e.declared = Some(c);
                    }
                }
            }
        }
        // 3. popularity fills whatever is left (every level), skipping categories that already
        // hold `category_cap` candidates: the re-ranker could not use more of them.
        let cap = self.config.category_cap.max(1);
        let n_categories = self.catalog.category_names.len();
        let mut per_category = vec![0usize; n_categories];
        for &i in cands.keys() {
            per_category[self.catalog.item_category[i as usize] as usize] += 1;
        }
        // A category is closed when it is full or not allowed (sensitive without opt-in): once
        // all are, nothing more can be added, so the scan of the whole popularity order stops
        // (it used to run to the end whenever a sensitive category was excluded).
        let mut closed = (0..n_categories)
            .filter(|&c| per_category[c] >= cap || !self.allowed_category(c as u32, req))
            .count();
        let mut filled = 0;
        for &i in &self.pop_order {
            if filled >= self.config.candidates.max(req.k * 2) || closed == n_categories {
                break;
            }
            let c = self.catalog.item_category[i as usize] as usize;
            if per_category[c] >= cap || cands.contains_key(&i) || !admissible(i) {
                continue;
            }
            cands.insert(
                i,
                Candidate {
                    item: i,
                    score: W_POPULAR * self.popularity[i as usize],
                    behaviour: None,
                    declared: None,
                },
            );
            per_category[c] += 1;
            if per_category[c] == cap {
                closed += 1;
            }
            filled += 1;
        }
        let mut pool: Vec<Candidate> = cands.into_values().collect();
        pool.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        // MMR never takes more than `category_cap` items of one category, so more of them in
        // the pool only crowd out other categories (and left answers short of k when declared
        // interests filled the pool).
        let cap = self.config.category_cap.max(1);
        let mut in_pool = vec![0usize; n_categories];
        pool.retain(|c| {
            let n = &mut in_pool[self.catalog.item_category[c.item as usize] as usize];
            *n += 1;
            *n <= cap
        });
        pool.truncate(self.config.candidates.max(req.k * 4));

        // 4. diversity: MMR on category overlap, with a per-category cap
        let (mut picked, fairness_adjusted) = self.mmr(&pool, req.k);
        if let Some(x) = &explainer {
            for c in &mut picked {
                if let Some(b) = &mut c.behaviour {
                    *b = x.attribute(c.item, b.part, req, self);
                }
            }
        }
        let head = &picked[..picked.len().min(req.k.saturating_sub(1))];
        // 5. one exploration slot: a popular item from a category not shown yet; when no such
        // category is admissible the slot goes back to the relevance ranking
        // The slot never takes the place of an item an exposure floor needs.
        let floors_kept =
            !self.floors_met(&picked, picked.len()) || self.floors_met(head, picked.len());
        let explored = (self.config.exploration_slot && req.k >= 3 && floors_kept)
            .then(|| self.exploration(head, req, &admissible))
            .flatten();
        let items: Vec<Recommendation> = match explored {
            Some(rec) => head
                .iter()
                .map(|c| self.explain(c, req))
                .chain(std::iter::once(rec))
                .collect(),
            None => picked.iter().map(|c| self.explain(c, req)).collect(),
        };
        let personal = level != Level::Off;
        Response {
            level,
            // A non-personal answer ranks by popularity alone: it names that, not the
            // personal model it was read from, and claims no calibration (the calibration
            // was fitted on personal scores).
            model_version: if personal {
                self.model_version.clone()
            } else {
                format!("popularity ({})", self.model_version)
            },
            calibrated: personal && self.calibration.is_some(),
            fairness_adjusted,
            items: items
                .into_iter()
                .map(|mut r| {
                    if !personal {
                        r.confidence = uncalibrated(r.score);
                    }
                    r
                })
                .collect(),
        }
    }

    /// Level `basic`: the most trending items and the most trending of each declared
    /// category, each scored `trend x (1 + boost x share of declared interests matched)`.
    fn basic_candidates(
        &self,
        req: &Request<'_>,
        admissible: &dyn Fn(u32) -> bool,
        cands: &mut ItemMap<Candidate>,
    ) {
        let b = &self.basic;
        let declared: Vec<u32> = req
            .declared
            .iter()
            .copied()
            .filter(|&c| (c as usize) < b.by_tag.len() && self.allowed_category(c, req))
            .collect();
        let per = self.config.candidates / declared.len().max(1) + 1;
        let pool = b.order.iter().take(4 * self.config.candidates).chain(
            declared
                .iter()
                .flat_map(|&c| b.by_tag[c as usize].iter().take(per)),
        );
        let boost = self.config.basic_match_boost;
        for &i in pool {
            if cands.contains_key(&i) || !admissible(i) {
                continue;
            }
            let tags: &[u32] = match b.tags.get(i as usize) {
                Some(t) if !t.is_empty() => t,
                _ => std::slice::from_ref(&self.catalog.item_category[i as usize]),
            };
            let matched = declared.iter().find(|c| tags.contains(c)).copied();
            let share = declared.iter().filter(|c| tags.contains(c)).count() as f32
                / declared.len().max(1) as f32;
            let score = W_BASIC * b.trend[i as usize] * (1.0 + boost * share) / (1.0 + boost);
            cands.insert(
                i,
                Candidate {
                    item: i,
                    score,
                    behaviour: None,
                    declared: matched,
                },
            );
        }
    }

    /// kNN votes of the history's neighbours, each with the entries that gave most of it.
    fn knn_votes(&self, knn: &ItemKnn, req: &Request<'_>, ages: &[usize]) -> ItemMap<Votes> {
        let mut raw: ItemMap<Votes> = ItemMap::default();
        raw.reserve(req.history.len() * 16);
        for (n, (&h, &age)) in req.history.iter().zip(ages).enumerate() {
            if h as usize >= knn.n_items {
                continue;
            }
            let kind = self.kind_of(req, n).bit();
            let r = knn.recency_weight(age);
            let (nb, sim) = knn.neighbours(h);
            for (&j, &s) in nb.iter().zip(sim) {
                let c = r * s;
                let e = raw.entry(j).or_insert(Votes {
                    sum: 0.0,
                    top: (n as u32, 0.0),
                    second: None,
                    kinds: 0,
                });
                e.sum += c;
                if c > 0.0 {
                    e.kinds |= kind;
                }
                if c > e.top.1 {
                    e.second = Some(e.top).filter(|t| t.1 > 0.0);
                    e.top = (n as u32, c);
                } else if c > e.second.map_or(0.0, |t| t.1) {
                    e.second = Some((n as u32, c));
                }
            }
        }
        raw
    }

    fn knn_candidates(
        &self,
        knn: &ItemKnn,
        req: &Request<'_>,
        admissible: &dyn Fn(u32) -> bool,
        cands: &mut ItemMap<Candidate>,
    ) {
        let mut ages = Vec::new();
        event_ages(req.history.len(), req.history_ts, &mut ages);
        let raw = self.knn_votes(knn, req, &ages);
        let max = raw.values().map(|v| v.sum).fold(0f32, f32::max);
        if max <= 0.0 {
            return;
        }
        for (j, v) in raw {
            if admissible(j) {
                let part = W_BEHAVIOUR * v.sum / max;
                cands.insert(
                    j,
                    Candidate {
                        item: j,
                        score: part + W_POPULAR * self.popularity[j as usize],
                        behaviour: Some(Behaviour {
                            top: v.top.0,
                            top_part: W_BEHAVIOUR * v.top.1 / max,
                            second: v.second.map(|(n, c)| (n, W_BEHAVIOUR * c / max)),
                            part,
                            kinds: v.kinds,
                        }),
                        declared: None,
                    },
                );
            }
        }
    }

    /// Candidates from a factor model (optionally blended with kNN): the subject is folded in
    /// from their history against the cached Gram matrix, every item is scored (`O(items x
    /// factors)`), and the best `candidates` admissible ones are kept. Their reasons are worked
    /// out after the picks ([`FactorExplainer::attribute`]), only for the items shown.
    fn factor_candidates<'m>(
        &self,
        factors: &'m Factors,
        knn: Option<(&'m ItemKnn, f32)>,
        req: &Request<'_>,
        admissible: &dyn Fn(u32) -> bool,
        cands: &mut ItemMap<Candidate>,
    ) -> Option<FactorExplainer<'m>> {
        let fold = factors.als.fold_in_with(&factors.gram, req.history).ok()?;
        let k = factors.als.factors();
        let mut scores = vec![0f32; self.popularity.len()];
        for (s, y) in scores
            .iter_mut()
            .zip(factors.als.item_factors.chunks_exact(k))
        {
            *s = dot(&fold.x, y);
        }
        let als_max = scores.iter().copied().fold(0f32, f32::max);
        scale_to_max(&mut scores);
        let knn = match knn {
            Some((m, w)) => {
                let mut ages = Vec::new();
                event_ages(req.history.len(), req.history_ts, &mut ages);
                let votes = self.knn_votes(m, req, &ages);
                let max = votes.values().map(|v| v.sum).fold(0f32, f32::max);
                for s in scores.iter_mut() {
                    *s *= 1.0 - w;
                }
                if max > 0.0 {
                    for (j, v) in votes {
                        if let Some(s) = scores.get_mut(j as usize) {
                            *s += w * v.sum.max(0.0) / max;
                        }
                    }
                }
                Some((m, w, max, ages))
            }
            None => None,
        };
        let best = top_k(&scores, self.config.candidates, |j| !admissible(j));
        for (j, part) in best {
            if part <= 0.0 {
                break;
            }
            let part = W_BEHAVIOUR * part;
            cands.insert(
                j,
                Candidate {
                    item: j,
                    score: part + W_POPULAR * self.popularity[j as usize],
                    behaviour: Some(Behaviour {
                        top: 0,
                        top_part: 0.0,
                        second: None,
                        part,
                        kinds: 0,
                    }),
                    declared: None,
                },
            );
        }
        Some(FactorExplainer {
            factors,
            fold,
            als_max,
            knn,
        })
    }

    /// Items each group must get in an answer of `slots` items.
    fn group_floors(&self, slots: usize) -> Vec<usize> {
        if self.config.group_min_share.is_empty() {
            return self.config.group_min_slots.clone();
        }
        self.config
            .group_min_share
            .iter()
            .map(|s| (s * slots as f32 - 1e-4).ceil().max(0.0) as usize)
            .collect()
    }

    /// Whether `picked` holds every group's floor for an answer of `slots` items.
    fn floors_met(&self, picked: &[Candidate], slots: usize) -> bool {
        self.group_floors(slots).iter().enumerate().all(|(g, &m)| {
            picked
                .iter()
                .filter(|c| self.catalog.item_group.get(c.item as usize) == Some(&(g as u32)))
                .count()
                >= m
        })
    }

    /// Greedy MMR: relevance minus redundancy (same category), under the category cap and the
    /// group exposure floors. Returns the picks and whether a floor changed any pick.
    fn mmr(&self, pool: &[Candidate], slots: usize) -> (Vec<Candidate>, bool) {
        let lambda = self.config.mmr_lambda;
        let mins = &self.group_floors(slots);
        let group = |i: u32| self.catalog.item_group.get(i as usize).copied();
        let mut chosen: Vec<Candidate> = Vec::with_capacity(slots);
        // Per category, indexed by category (a hash map here was a tenth of a request).
        let mut per_cat = vec![0usize; self.catalog.category_names.len()];
        let mut per_group = vec![0usize; mins.len()];
        let mut used = vec![false; pool.len()];
        let mut adjusted = false;
        let top = pool.first().map_or(1.0, |c| c.score.max(f32::EPSILON));
        while chosen.len() < slots {
            let pick = |only_short_groups: bool| {
                let mut best: Option<(usize, f32)> = None;
                for (n, c) in pool.iter().enumerate() {
                    let taken = per_cat[self.catalog.item_category[c.item as usize] as usize];
                    if used[n] || taken >= self.config.category_cap {
                        continue;
                    }
                    if only_short_groups
                        && !group(c.item).is_some_and(|g| {
                            (g as usize) < mins.len() && per_group[g as usize] < mins[g as usize]
                        })
                    {
                        continue;
                    }
                    let redundancy = if taken > 0 { 1.0 } else { 0.0 };
                    let v = lambda * c.score / top - (1.0 - lambda) * redundancy;
                    if best.is_none_or(|(_, b)| v > b) {
                        best = Some((n, v));
                    }
                }
                best.map(|b| b.0)
            };
            let deficit: usize = mins
                .iter()
                .zip(&per_group)
                .map(|(m, c)| m.saturating_sub(*c))
                .sum();
            let free = pick(false);
            // when the remaining slots are all needed to meet the floors, pick only from groups
            // below their floor; if the pool has none of them the floor cannot be met
            let n = if deficit > 0 && deficit >= slots - chosen.len() {
                match pick(true) {
                    Some(n) => {
                        adjusted |= Some(n) != free;
                        Some(n)
                    }
                    None => free,
                }
            } else {
                free
            };
            let Some(n) = n else { break };
            used[n] = true;
            per_cat[self.catalog.item_category[pool[n].item as usize] as usize] += 1;
            if let Some(g) = group(pool[n].item).filter(|&g| (g as usize) < per_group.len()) {
                per_group[g as usize] += 1;
            }
            chosen.push(pool[n]);
        }
        (chosen, adjusted)
    }

    fn exploration(
        &self,
        picked: &[Candidate],
        req: &Request<'_>,
        admissible: &dyn Fn(u32) -> bool,
    ) -> Option<Recommendation> {
        let shown: Vec<u32> = picked
            .iter()
            .map(|c| self.catalog.item_category[c.item as usize])
            .collect();
        let open: Vec<u32> = (0..self.by_category.len() as u32)
            .filter(|&c| {
                !shown.contains(&c)
                    && self.allowed_category(c, req)
                    && !self.by_category[c as usize].is_empty()
            })
            .collect();
        if open.is_empty() {
            return None;
        }
        let mut rng = SplitMix64::for_stream(req.seed, 0x5EED_0E7A);
        let start = (rng.next_u64() % open.len() as u64) as usize;
        for off in 0..open.len() {
            let c = open[(start + off) % open.len()];
            // among the category's 10 most popular, so exploration stays reasonable
            if let Some(&i) = self.by_category[c as usize]
                .iter()
                .take(10)
                .find(|&&i| admissible(i) && !picked.iter().any(|p| p.item == i))
            {
                let name = &self.catalog.category_names[c as usize];
                return Some(Recommendation {
                    item: i,
                    item_id: self.catalog.item_ids[i as usize].clone(),
                    score: W_POPULAR * self.popularity[i as usize],
                    confidence: self.confidence(W_POPULAR * self.popularity[i as usize]),
                    reasons: vec![Reason::Exploration {
                        category: c,
                        text: format!("Something different: popular in {name}"),
                    }],
                    data_categories: Vec::new(),
                    // Chosen from popularity alone: no personal data, so no purpose used it.
                    purposes: Vec::new(),
                    exploration: true,
                });
            }
        }
        None
    }

    fn confidence(&self, score: f32) -> f32 {
        match &self.calibration {
            Some(c) => c.apply(score),
            None => uncalibrated(score),
        }
    }

    /// Reasons in order of their share of the score; data categories of every signal used.
    /// A history entry is named only when its own part is at least [`REASON_MIN_SHARE`] of the
    /// score; behaviour that shaped the score without such an entry is described as a whole,
    /// and its data categories are listed either way.
    fn explain(&self, c: &Candidate, req: &Request<'_>) -> Recommendation {
        // (share of the score, the reason if it is worth naming, data categories it used)
        let mut parts: Vec<(f32, Option<Reason>, Vec<&'static str>)> = Vec::with_capacity(2);
        if let Some(b) = c.behaviour {
            let used: Vec<Interaction> = Interaction::ALL
                .into_iter()
                .filter(|k| b.kinds & k.bit() != 0)
                .collect();
            let mut categories: Vec<&'static str> = Vec::with_capacity(2);
            let top = b.top as usize;
            let named = (b.top_part >= REASON_MIN_SHARE * c.score)
                .then(|| req.history.get(top).copied())
                .flatten();
            let also = b
                .second
                .filter(|&(_, p)| p >= REASON_MIN_SHARE * c.score)
                .and_then(|(n, _)| Some((n as usize, *req.history.get(n as usize)?)))
                .filter(|&(_, item)| named.is_some_and(|t| t != item));
            let reason = if let Some(item) = named {
                let kind = self.kind_of(req, top);
                categories.push(kind.data_category());
                let title = &self.catalog.titles[item as usize];
                let text = match also {
                    Some((n, other)) => {
                        let other_kind = self.kind_of(req, n);
                        if !categories.contains(&other_kind.data_category()) {
                            categories.push(other_kind.data_category());
                        }
                        kind.because_both(title, other_kind, &self.catalog.titles[other as usize])
                    }
                    None => kind.because(title),
                };
                Some(Reason::Because { item, text })
            } else if b.part >= REASON_MIN_SHARE * c.score {
                let things: Vec<&str> = used.iter().map(|k| k.things()).collect();
                Some(Reason::Activity {
                    text: format!("Because of several things you {}", words(&things)),
                })
            } else {
                // Too small a part to explain the item, but the data was still used.
                None
            };
            for k in &used {
                if !categories.contains(&k.data_category()) {
                    categories.push(k.data_category());
                }
            }
            parts.push((b.part, reason, categories));
        }
        if let Some(category) = c.declared {
            let name = &self.catalog.category_names[category as usize];
            let text = if c.behaviour.is_some() {
                format!("In {name}, which you told us you like")
            } else {
                format!("Popular in {name}, which you told us you like")
            };
            parts.push((
                W_DECLARED,
                Some(Reason::DeclaredCategory { category, text }),
                vec!["declared_preference"],
            ));
        }
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut reasons = Vec::with_capacity(parts.len().max(1));
        let mut data_categories: Vec<String> = Vec::new();
        for (_, reason, cats) in parts {
            reasons.extend(reason);
            for cat in cats {
                if !data_categories.iter().any(|d| d == cat) {
                    data_categories.push(cat.to_owned());
                }
            }
        }
        if reasons.is_empty() {
            reasons.push(Reason::Popular {
                text: "Popular right now".into(),
            });
        }
        Recommendation {
            item: c.item,
            item_id: self.catalog.item_ids[c.item as usize].clone(),
            score: c.score,
            confidence: self.confidence(c.score),
            // The purpose is named only where its data was used: a popular item uses no one's.
            purposes: if data_categories.is_empty() {
                Vec::new()
            } else {
                vec![self.config.purpose.clone()]
            },
            reasons,
            data_categories,
            exploration: false,
        }
    }
}

impl FactorExplainer<'_> {
    /// Each history entry's part of item `j`'s behavioural score, in the score's own units:
    /// the factor part is exact (the fold-in is linear in the entries, [`FoldIn::parts`]),
    /// the kNN part is the entry's vote. The entries with the largest parts are the reason.
    fn attribute(&self, j: u32, part: f32, req: &Request<'_>, engine: &Engine) -> Behaviour {
        let w = self.knn.as_ref().map_or(0.0, |k| k.1);
        let mut parts = match (self.factors.item_factor(j), self.als_max > 0.0) {
            (Some(y), true) => self
                .fold
                .parts(&self.factors.als.item_factors, req.history, y)
                .into_iter()
                .map(|p| (1.0 - w) * p / self.als_max)
                .collect(),
            _ => vec![0.0; req.history.len()],
        };
        if let Some((knn, w, max, ages)) = &self.knn
            && *max > 0.0
        {
            for (n, (&h, &age)) in req.history.iter().zip(ages).enumerate() {
                if h as usize >= knn.n_items {
                    continue;
                }
                let (nb, sim) = knn.neighbours(h);
                if let Some(p) = nb.iter().position(|&x| x == j) {
                    parts[n] += w * knn.recency_weight(age) * sim[p] / max;
                }
            }
        }
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by(|&a, &b| parts[b].total_cmp(&parts[a]).then(a.cmp(&b)));
        let kinds = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > 0.0)
            .fold(0u8, |k, (n, _)| k | engine.kind_of(req, n).bit());
        let at = |r: usize| {
            order
                .get(r)
                .map(|&n| (n as u32, W_BEHAVIOUR * parts[n]))
                .filter(|p| p.1 > 0.0)
        };
        let (top, top_part) = at(0).unwrap_or((0, 0.0));
        Behaviour {
            top,
            top_part,
            second: at(1),
            part,
            kinds,
        }
    }
}

/// Without a calibration: the share of the maximum attainable score, flagged in the response.
fn uncalibrated(score: f32) -> f32 {
    (score / (W_BEHAVIOUR + W_DECLARED + W_POPULAR)).clamp(0.0, 1.0)
}

/// "a", "a and b", "a, b and c".
fn words(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Interactions;
    use crate::models::KnnParams;

    /// 8 items: 0-2 garden, 3-5 kitchen, 6-7 health (sensitive).
    fn engine() -> Engine {
        let catalog = Catalog {
            item_ids: (0..8).map(|i| format!("sku{i}")).collect(),
            titles: (0..8).map(|i| format!("Item {i}")).collect(),
            item_category: vec![0, 0, 0, 1, 1, 1, 2, 2],
            category_names: vec!["Garden".into(), "Kitchen".into(), "Health".into()],
            category_sensitive: vec![false, false, true],
            item_group: vec![0, 0, 0, 0, 0, 1, 0, 0],
        };
        let train = Interactions::from_rows(
            8,
            &[
                vec![0, 1, 6],
                vec![0, 1, 2],
                vec![0, 6],
                vec![3, 4],
                vec![3, 5],
                vec![1, 7],
            ],
        )
        .unwrap();
        let knn = ItemKnn::fit(&train, KnnParams::implicit_cosine());
        let counts = train.col_counts();
        Engine::new(
            catalog,
            &counts,
            Some(knn),
            "item-knn-test".into(),
            ServeConfig::default(),
        )
        .unwrap()
    }

    fn req(level: Level) -> Request<'static> {
        Request {
            level,
            consent: Consent {
                behaviour: true,
                declared: true,
            },
            history: &[0],
            history_ts: &[],
            history_kinds: &[],
            declared: &[1],
            sensitive_opt_in: &[],
            owned: &[],
            k: 4,
            seed: 1,
        }
    }

    #[test]
    fn full_level_explains_behaviour_and_never_shows_sensitive_or_owned() {
        let e = engine();
        let r = e.recommend(&Request {
            owned: &[1],
            ..req(Level::Full)
        });
        assert_eq!(r.items.len(), 4);
        for it in &r.items {
            assert!(
                it.item != 0 && it.item != 1,
                "owned or history item returned"
            );
            assert!(
                e.catalog().item_category[it.item as usize] != 2,
                "sensitive item returned"
            );
            assert!(!it.reasons.is_empty() && !it.purposes.is_empty());
            assert!((0.0..=1.0).contains(&it.confidence));
        }
        // item 2 co-occurs with 0: explained by it
        let two = r
            .items
            .iter()
            .find(|i| i.item == 2)
            .expect("item 2 recommended");
        assert!(
            matches!(&two.reasons[0], Reason::Because { item: 0, text } if text == "Because you bought Item 0")
        );
        assert_eq!(two.data_categories, vec!["purchase".to_string()]);
        // garden and kitchen are shown and health is not admissible: no exploration slot
        assert!(r.items.iter().all(|i| !i.exploration));
        // with an opt-in, health items may appear (6 co-occurs with 0)
        let r = e.recommend(&Request {
            sensitive_opt_in: &[2],
            ..req(Level::Full)
        });
        assert!(r.items.iter().any(|i| i.item == 6));
        // An item shaped by personal data names the purpose that allowed it.
        assert!(
            r.items
                .iter()
                .filter(|i| !i.data_categories.is_empty())
                .all(|i| i.purposes == ["recommendations"]),
            "{r:?}"
        );
        // a short history fills the last slot with exploration when a category is open
        let r = e.recommend(&Request {
            k: 3,
            history: &[3],
            declared: &[],
            ..req(Level::Full)
        });
        let last = r.items.last().unwrap();
        assert!(last.exploration, "{r:?}");
        assert_eq!(e.catalog().item_category[last.item as usize], 0);
    }

    #[test]
    fn lower_levels_do_not_use_behaviour() {
        let e = engine();
        let basic = e.recommend(&req(Level::Basic));
        assert!(
            basic
                .items
                .iter()
                .all(|i| !i.data_categories.iter().any(|d| d == "purchase"))
        );
        assert!(matches!(
            &basic.items[0].reasons[0],
            Reason::DeclaredCategory { category: 1, text } if text == "Popular in Kitchen, which you told us you like"
        ));
        let off = e.recommend(&req(Level::Off));
        assert!(off.items.iter().all(|i| i.data_categories.is_empty()));
        // Nothing personal was used, so no purpose is named and the personal model is not.
        assert!(off.items.iter().all(|i| i.purposes.is_empty()), "{off:?}");
        assert!(
            off.model_version.starts_with("popularity"),
            "{}",
            off.model_version
        );
        assert!(!off.calibrated);
        assert!(off.items.iter().all(|i| matches!(
            i.reasons[0],
            Reason::Popular { .. } | Reason::Exploration { .. }
        )));
    }

    #[test]
    fn missing_consent_lowers_the_level() {
        let e = engine();
        let no_behaviour = Consent {
            behaviour: false,
            declared: true,
        };
        let r = e.recommend(&Request {
            consent: no_behaviour,
            ..req(Level::Full)
        });
        assert_eq!(r.level, Level::Basic);
        assert!(
            r.items
                .iter()
                .all(|i| !i.data_categories.iter().any(|d| d == "purchase"))
        );
        let r = e.recommend(&Request {
            consent: Consent::default(),
            ..req(Level::Full)
        });
        assert_eq!(r.level, Level::Off);
        assert!(r.items.iter().all(|i| i.data_categories.is_empty()));
    }

    #[test]
    fn exposure_floor_brings_in_the_small_group() {
        let mut e = engine();
        e.config.exploration_slot = false;
        let plain = e.recommend(&req(Level::Full));
        assert!(!plain.fairness_adjusted);
        e.config.group_min_slots = vec![0, 1];
        let r = e.recommend(&req(Level::Full));
        assert!(r.items.iter().any(|i| i.item == 5), "{r:?}");
        assert_eq!(r.items.len(), plain.items.len());
    }

    #[test]
    fn engine_from_model_file_checks_the_item_list() {
        let e = engine();
        let Some(FullModel::Knn(knn)) = e.model.clone() else {
            panic!("a kNN engine")
        };
        let ids = e.catalog().item_ids.clone();
        let file = crate::codec::ModelFile::new(
            crate::models::Model::ItemKnn(knn),
            ids,
            vec!["purchase".into()],
            vec!["recommendations".into()],
            0,
        )
        .unwrap();
        let counts = vec![1; 8];
        let ok =
            Engine::from_model_file(e.catalog().clone(), &counts, &file, ServeConfig::default())
                .unwrap();
        let r = ok.recommend(&req(Level::Full));
        assert_eq!(r.model_version, file.meta.version);
        let mut other = e.catalog().clone();
        other.item_ids.swap(0, 1);
        assert!(Engine::from_model_file(other, &counts, &file, ServeConfig::default()).is_err());
        // An item added after training: the model still serves, the new item has no neighbours.
        let mut grown = e.catalog().clone();
        grown.item_ids.push("new".into());
        grown.titles.push("New".into());
        grown.item_category.push(0);
        grown.item_group.push(0);
        let mut counts9 = counts.clone();
        counts9.push(100);
        let g = Engine::from_model_file(grown, &counts9, &file, ServeConfig::default()).unwrap();
        let Some(FullModel::Knn(knn)) = &g.model else {
            panic!("a kNN engine")
        };
        assert_eq!(knn.n_items, 9);
        assert!(knn.neighbours(8).0.is_empty());
        let r = g.recommend(&req(Level::Off));
        assert!(
            r.items.iter().any(|i| i.item == 8),
            "the popular new item is served"
        );
    }

    #[test]
    fn unservable_items_are_never_recommended() {
        let e = engine();
        let all: Vec<u32> = e
            .recommend(&req(Level::Full))
            .items
            .iter()
            .map(|i| i.item)
            .collect();
        assert!(!all.is_empty());
        let mut servable = vec![true; e.catalog().item_ids.len()];
        for &i in &all {
            servable[i as usize] = false;
        }
        let e = e.with_servable(servable.clone()).unwrap();
        for level in [Level::Off, Level::Basic, Level::Full] {
            let r = e.recommend(&req(level));
            assert!(
                r.items.iter().all(|i| servable[i.item as usize]),
                "{level:?}: {:?}",
                r.items
            );
        }
    }

    #[test]
    fn category_cap_holds() {
        let mut e = engine();
        e.config.category_cap = 1;
        e.config.exploration_slot = false;
        let r = e.recommend(&Request {
            k: 3,
            ..req(Level::Full)
        });
        let mut cats: Vec<u32> = r
            .items
            .iter()
            .map(|i| e.catalog().item_category[i.item as usize])
            .collect();
        cats.sort();
        cats.dedup();
        assert_eq!(cats.len(), r.items.len());
    }

    #[test]
    fn declared_interests_larger_than_the_pool_still_fill_k() {
        // 3 categories of 50 items; the person declares category 0, whose 50 items alone would
        // fill a pool of 20 candidates; the cap of 3 per category must not leave the answer short.
        let n = 150;
        let catalog = Catalog {
            item_ids: (0..n).map(|i| format!("i{i}")).collect(),
            titles: (0..n).map(|i| format!("Item {i}")).collect(),
            item_category: (0..n).map(|i| (i / 50) as u32).collect(),
            category_names: vec!["a".into(), "b".into(), "c".into()],
            category_sensitive: vec![false; 3],
            item_group: Vec::new(),
        };
        let counts: Vec<u32> = (0..n).map(|i| (n - i) as u32).collect();
        let config = ServeConfig {
            candidates: 20,
            ..ServeConfig::default()
        };
        let e = Engine::new(catalog, &counts, None, "v".into(), config).unwrap();
        let r = e.recommend(&Request {
            level: Level::Basic,
            consent: Consent {
                behaviour: false,
                declared: true,
            },
            history: &[],
            history_ts: &[],
            history_kinds: &[],
            declared: &[0],
            sensitive_opt_in: &[],
            owned: &[],
            k: 8,
            seed: 1,
        });
        assert_eq!(r.items.len(), 8);
        let from_declared = r.items.iter().filter(|i| i.item < 50).count();
        assert_eq!(
            from_declared, 3,
            "the declared category fills its cap, others fill the rest"
        );
    }

    #[test]
    fn reasons_name_the_interaction_and_its_data_category() {
        let e = engine();
        let reason_for = |kind: Interaction| {
            let r = e.recommend(&Request {
                history_kinds: &[kind],
                declared: &[],
                ..req(Level::Full)
            });
            let two = r.items.into_iter().find(|i| i.item == 2).expect("item 2");
            let Reason::Because { item: 0, text } = &two.reasons[0] else {
                panic!("{two:?}")
            };
            (text.clone(), two.data_categories)
        };
        assert_eq!(
            reason_for(Interaction::Purchased),
            ("Because you bought Item 0".into(), vec!["purchase".into()])
        );
        assert_eq!(
            reason_for(Interaction::Viewed),
            ("Because you viewed Item 0".into(), vec!["browsing".into()])
        );
        assert_eq!(
            reason_for(Interaction::AddedToCart),
            (
                "Because you added Item 0 to your cart".into(),
                vec!["browsing".into()]
            )
        );
        // A history of mixed kinds: each item is explained by its own interaction.
        let mut e = engine();
        e.config.behaviour = Interaction::Viewed;
        let r = e.recommend(&Request {
            history: &[0, 3],
            history_ts: &[10, 10],
            history_kinds: &[Interaction::Viewed, Interaction::Purchased],
            declared: &[],
            k: 4,
            ..req(Level::Full)
        });
        let because = |i: u32| {
            r.items
                .iter()
                .find(|it| it.item == i)
                .map(|it| (it.reasons[0].clone(), it.data_categories.clone()))
        };
        assert_eq!(
            because(2),
            Some((
                Reason::Because {
                    item: 0,
                    text: "Because you viewed Item 0".into()
                },
                vec!["browsing".into()]
            )),
            "{r:?}"
        );
        assert_eq!(
            because(4),
            Some((
                Reason::Because {
                    item: 3,
                    text: "Because you bought Item 3".into()
                },
                vec!["purchase".into()]
            )),
            "{r:?}"
        );
    }

    /// Item 2 goes with item 0 (ten baskets); item 5 is popular and shares one basket with 0.
    fn weak_link_engine() -> Engine {
        let n = 8;
        let mut rows = vec![vec![0, 2]; 10];
        rows.push(vec![0, 5]);
        rows.extend(std::iter::repeat_n(vec![5, 6], 100));
        let train = Interactions::from_rows(n, &rows).unwrap();
        let catalog = Catalog {
            item_ids: (0..n).map(|i| format!("sku{i}")).collect(),
            titles: (0..n).map(|i| format!("Item {i}")).collect(),
            item_category: (0..n as u32).collect(),
            category_names: (0..n).map(|i| format!("Cat {i}")).collect(),
            category_sensitive: vec![false; n],
            item_group: Vec::new(),
        };
        let config = ServeConfig {
            exploration_slot: false,
            ..ServeConfig::default()
        };
        let knn = ItemKnn::fit(&train, KnnParams::default());
        Engine::new(catalog, &train.col_counts(), Some(knn), "v".into(), config).unwrap()
    }

    #[test]
    fn a_reason_names_only_an_interaction_that_carries_the_score() {
        let e = weak_link_engine();
        let r = e.recommend(&Request {
            history: &[0],
            declared: &[],
            k: 3,
            ..req(Level::Full)
        });
        let item = |i: u32| r.items.iter().find(|it| it.item == i).expect("recommended");
        assert!(
            matches!(&item(2).reasons[..], [Reason::Because { item: 0, .. }]),
            "{r:?}"
        );
        // Item 5 is here for its popularity; its link to item 0 is a trace, not a reason.
        let five = item(5);
        assert!(
            matches!(&five.reasons[..], [Reason::Popular { text }] if text == "Popular right now"),
            "{five:?}"
        );
        // The trace of behaviour was still used, so its data category is still listed.
        assert_eq!(five.data_categories, vec!["purchase".to_string()]);
    }

    #[test]
    fn behaviour_spread_over_many_entries_is_described_as_a_whole() {
        // Item 7 goes with each of items 0-5 once; a basket of all six (one time) points to it
        // with six equal votes, none of which carries a fifth of its score.
        let n = 8;
        let rows: Vec<Vec<u32>> = (0..6).map(|i| vec![i, 7]).collect();
        let train = Interactions::from_rows(n, &rows).unwrap();
        let catalog = Catalog {
            item_ids: (0..n).map(|i| format!("sku{i}")).collect(),
            titles: (0..n).map(|i| format!("Item {i}")).collect(),
            item_category: vec![0; n],
            category_names: vec!["All".into()],
            category_sensitive: vec![false],
            item_group: Vec::new(),
        };
        let knn = ItemKnn::fit(&train, KnnParams::default());
        let e = Engine::new(
            catalog,
            &train.col_counts(),
            Some(knn),
            "v".into(),
            ServeConfig::default(),
        )
        .unwrap();
        use Interaction::{Purchased, Viewed};
        let r = e.recommend(&Request {
            history: &[0, 1, 2, 3, 4, 5],
            history_ts: &[7; 6],
            history_kinds: &[Viewed, Purchased, Viewed, Purchased, Viewed, Viewed],
            declared: &[],
            k: 1,
            ..req(Level::Full)
        });
        let seven = &r.items[0];
        assert_eq!(seven.item, 7, "{r:?}");
        assert_eq!(
            seven.reasons,
            vec![Reason::Activity {
                text: "Because of several things you viewed and bought".into()
            }]
        );
        assert_eq!(seven.data_categories, vec!["browsing", "purchase"]);
        assert_eq!(words(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn isotonic_calibration_is_monotone() {
        let mut pairs = vec![
            (0.1, false),
            (0.2, true),
            (0.3, false),
            (0.4, true),
            (0.5, true),
        ];
        let c = Calibration::fit(&mut pairs);
        assert!(c.rate.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(c.apply(0.05), 0.0);
        assert_eq!(c.apply(0.5), 1.0);
        assert!((c.apply(0.25) - 0.5).abs() < 1e-6);
    }
}
