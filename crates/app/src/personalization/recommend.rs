//! Serving recommendations, training models, and people's preferences.
//!
//! Invariants:
//! - A request reads a subject's behavior only if the recommendation purpose is allowed for them
//!   now and their level is `full`; declared interests only if allowed and their level is at least
//!   `basic`; otherwise the answer is non-personal. Quiet periods force non-personal answers.
//!   Every answer says which level and filters applied, and is logged as a decision.
//! - Training reads only events of subjects who allow the recommendation purpose at training time,
//!   and only categories that purpose may use; a revoked subject is absent from the next model, and
//!   their history is never read at serving time after the revocation.
//! - The active engine is swapped atomically; a model that does not load or does not fit the
//!   catalog is refused and the previous engine keeps serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use candor_domain::preferences::Level;
use candor_domain::{AuditDraft, ConsentStatus, DataCategory, PurposeId, SubjectKey};
use candor_recommend::codec::ModelFile;
use candor_recommend::select::{SelectParams, select};
use candor_recommend::serve::{self, Catalog, Engine, ServeConfig};
use candor_store::{DecisionRow, ModelVersion};
use serde_json::json;

use super::DecisionLog;
use super::history::History;
use crate::governance::reviews::Requested;
use crate::{App, AppError, Result};

/// The engine in force and how to map ids to its indices.
pub struct Serving {
    engine: Engine,
    item_index: HashMap<String, u32>,
    category_ids: Vec<String>,
    category_index: HashMap<String, u32>,
    model_version: Option<String>,
    /// Names this catalog's item list (see [`GENERATIONS`]).
    generation: u64,
    /// Why the answer is popularity-only, when it is.
    pub note: Option<String>,
    /// Items that carry the configured exposure group attribute at all.
    grouped_items: usize,
}

/// Histories, their times (when asked for), popularity counts, subjects left out for lack of
/// consent.
type TrainingData = (Vec<Vec<u32>>, Vec<Vec<i64>>, Vec<u32>, usize);

/// Subjects per page when training reads events and consent (two reads per page).
const TRAINING_PAGE: i64 = 2000;

/// Serving generations: one number per distinct item list, so that what is kept as item indices
/// (subjects' histories in memory) is never read against another catalog. Only uniqueness
/// matters, so one counter serves every `App` of the process.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Serving {
    /// Before the first load: an empty catalog.
    pub(crate) fn empty() -> Serving {
        let catalog = Catalog {
            item_ids: vec![],
            titles: vec![],
            item_category: vec![],
            category_names: vec![],
            category_sensitive: vec![],
            item_group: vec![],
        };
        Serving {
            engine: Engine::new(catalog, &[], None, "none".into(), ServeConfig::default())
                .expect("an empty catalog is valid"),
            item_index: HashMap::new(),
            category_ids: vec![],
            category_index: HashMap::new(),
            model_version: None,
            generation: 0,
            note: Some("starting".into()),
            grouped_items: 0,
        }
    }

    pub fn model_version(&self) -> Option<&str> {
        self.model_version.as_deref()
    }

    /// The catalog's categories in catalog order: (id, display name, sensitive), for a person
    /// choosing interests and sensitive opt-ins.
    pub fn categories(&self) -> Vec<(String, String, bool)> {
        let catalog = self.engine.catalog();
        self.category_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    catalog.category_names[i].clone(),
                    catalog.category_sensitive[i],
                )
            })
            .collect()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the catalog has this category, and whether it is sensitive.
    pub(crate) fn category(&self, id: &str) -> Option<bool> {
        let i = *self.category_index.get(id)?;
        Some(self.engine.catalog().category_sensitive[i as usize])
    }

    pub(crate) fn item_index(&self, item_id: &str) -> Option<u32> {
        self.item_index.get(item_id).copied()
    }
}

/// What a client asks for.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    pub surface: String,
    pub k: Option<usize>,
    /// The item the person is looking at now.
    pub current_item: Option<String>,
    pub cart: Vec<String>,
    /// Answer as if the person had chosen this level (the preference center's preview): consent
    /// and quiet periods still apply, and nothing is written to the decision log, because the
    /// person is shown what a choice would change, not offered anything.
    pub preview: Option<Level>,
}

#[derive(Debug, Clone)]
pub struct RecommendedItem {
    pub item_id: String,
    pub title: String,
    pub category: String,
    pub score: f32,
    pub confidence: f32,
    /// Plain-language reasons, most important first.
    pub reasons: Vec<String>,
    pub data_categories: Vec<String>,
    pub purposes: Vec<String>,
    pub exploration: bool,
}

#[derive(Debug, Clone)]
pub struct Recommendations {
    pub subject_key: String,
    pub surface: String,
    pub level_requested: Level,
    pub level_applied: Level,
    pub model_version: String,
    /// Whether `confidence` is a calibrated probability of engagement (fitted on held-out data).
    pub confidence_calibrated: bool,
    /// Whether the exposure constraint (`recommend.exposure`) changed a pick.
    pub fairness_adjusted: bool,
    /// Set when the answer is non-personal for a reason the person or operator should know.
    pub fallback: Option<String>,
    /// Every rule that shaped this answer, in the order applied.
    pub filters: Vec<String>,
    pub items: Vec<RecommendedItem>,
    /// Names this answer in the decision log, so feedback can refer back to it; `None` for a
    /// preview, which is not logged.
    pub decision_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub version: String,
    pub subjects: usize,
    pub subjects_excluded_without_consent: usize,
    pub interactions: usize,
    pub items: usize,
    pub activated: bool,
    /// The review item the activation waits on, when the review rule holds it.
    pub review: Option<String>,
}

/// The catalog in the engine's terms, and how to map ids to its indices.
struct EngineCatalog {
    catalog: Catalog,
    item_index: HashMap<String, u32>,
    category_ids: Vec<String>,
    category_index: HashMap<String, u32>,
    /// Per engine index: available and not deleted.
    servable: Vec<bool>,
    /// Items that carry the exposure group attribute.
    grouped_items: usize,
}

fn decode_model(m: &ModelVersion) -> Result<ModelFile> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&m.body)
        .map_err(|_| {
            AppError::invalid(
                "model",
                format!("model {} is not readable (bad encoding)", m.version),
            )
        })?;
    ModelFile::from_bytes(&bytes)
        .map_err(|e| AppError::invalid("model", format!("model {} is corrupt: {e}", m.version)))
}

fn serve_config(app: &App) -> ServeConfig {
    let r = &app.config.recommend;
    ServeConfig {
        // groups are numbered in `min_share` order; the last group (other values) is free
        group_min_share: r.exposure.min_share.values().map(|&s| s as f32).collect(),
        mmr_lambda: r.mmr_lambda,
        category_cap: r.category_cap,
        exploration_slot: r.exploration_slot,
        // Every request says what each history entry is; this only covers a caller that
        // does not.
        behaviour: serve::Interaction::Viewed,
        purpose: r.purpose.clone(),
        ..ServeConfig::default()
    }
}

impl App {
    /// The catalog as the engine sees it. With `order` (a model's item list), those items come
    /// first in that order and items added since follow in id order, so the model still fits;
    /// otherwise every item in id order. Tombstones keep their place and are not servable.
    async fn catalog_for_engine(&self, order: Option<&[String]>) -> Result<EngineCatalog> {
        let (items, cats) = self.store.catalog().await?;
        let category_index: HashMap<String, u32> = cats
            .iter()
            .enumerate()
            .map(|(i, c)| (c.0.clone(), i as u32))
            .collect();
        // An item flagged sensitive makes its category sensitive: serving judges sensitivity
        // per category, and the safe side is to exclude more.
        let mut category_sensitive: Vec<bool> = cats.iter().map(|c| c.2.is_some()).collect();
        for i in &items {
            if i.sensitive_kind.is_some()
                && let Some(&c) = category_index.get(&i.category_id)
            {
                category_sensitive[c as usize] = true;
            }
        }
        let mut catalog = Catalog {
            item_ids: Vec::with_capacity(items.len()),
            titles: Vec::with_capacity(items.len()),
            item_category: Vec::with_capacity(items.len()),
            category_names: cats.iter().map(|c| c.1.clone()).collect(),
            category_sensitive,
            item_group: Vec::new(),
        };
        let exposure = &self.config.recommend.exposure;
        let groups: HashMap<&str, u32> = exposure
            .min_share
            .keys()
            .enumerate()
            .map(|(g, k)| (k.as_str(), g as u32))
            .collect();
        let other_group = groups.len() as u32;
        let mut grouped_items = 0;
        let mut servable = Vec::with_capacity(items.len());
        let mut item_index = HashMap::with_capacity(items.len());
        let by_id: HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(n, i)| (i.id.as_str(), n))
            .collect();
        let mut placed = vec![false; items.len()];
        let ordered = order
            .unwrap_or_default()
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .chain(0..items.len());
        for n in ordered {
            if std::mem::replace(&mut placed[n], true) {
                continue;
            }
            let i = &items[n];
            let Some(&c) = category_index.get(&i.category_id) else {
                continue;
            };
            // The engine's index is the position in `item_ids`, which skips unusable items.
            item_index.insert(i.id.clone(), catalog.item_ids.len() as u32);
            catalog.item_ids.push(i.id.clone());
            catalog.titles.push(i.name.clone());
            catalog.item_category.push(c);
            if !groups.is_empty() {
                let value = exposure.group_of(i.brand.as_deref(), &i.category_id, &i.attributes);
                grouped_items += usize::from(value.is_some());
                catalog.item_group.push(
                    value
                        .and_then(|v| groups.get(v.as_str()).copied())
                        .unwrap_or(other_group),
                );
            }
            servable.push(i.servable);
        }
        Ok(EngineCatalog {
            catalog,
            item_index,
            category_ids: cats.into_iter().map(|c| c.0).collect(),
            category_index,
            servable,
            grouped_items,
        })
    }

    /// At start: an exposure group attribute that no item of a non-empty catalog carries is a
    /// configuration error (a typo would otherwise silently constrain nothing).
    pub(crate) fn check_exposure_groups(&self) -> Result<()> {
        let exposure = &self.config.recommend.exposure;
        let serving = self.serving();
        if !exposure.group_attribute.is_empty()
            && !serving.engine.catalog().item_ids.is_empty()
            && serving.grouped_items == 0
        {
            return Err(crate::config::ConfigError::Invalid {
                key: "recommend.exposure.group_attribute",
                message: format!(
                    "no item of the catalog has the attribute `{}`",
                    exposure.group_attribute
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Rebuilds the engine from the active model (or popularity alone) and swaps it in.
    pub(crate) async fn reload_serving(&self) -> Result<()> {
        let active = self.store.active_model().await?;
        let file = active.as_ref().map(decode_model).transpose();
        let order = match &file {
            Ok(Some(f)) => Some(f.meta.item_ids.as_slice()),
            _ => None,
        };
        let EngineCatalog {
            catalog,
            item_index,
            category_ids,
            category_index,
            servable,
            grouped_items,
        } = self.catalog_for_engine(order).await?;
        let built = match (&active, file) {
            (Some(m), Ok(Some(f))) => self
                .engine_from(&catalog, m, &f)
                .map(|e| (e, Some(m.version.clone()), None)),
            (Some(_), Err(e)) => Err(e),
            _ => Err(AppError::invalid("model", "no model has been trained yet")),
        };
        let (engine, model_version, note) = match built {
            Ok(x) => x,
            Err(e) => {
                if active.is_some() {
                    tracing::error!(error = %e, "the active model cannot serve; answering with popularity");
                }
                let counts = self.popularity_counts(&item_index).await?;
                let engine = Engine::new(
                    catalog,
                    &counts,
                    None,
                    "popularity-untrained".into(),
                    serve_config(self),
                )
                .map_err(|e| AppError::Internal(e.to_string()))?;
                let note = match active {
                    Some(_) => format!(
                        "the active model cannot serve ({e}); non-personal popularity until a new model is trained"
                    ),
                    None => match self
                        .store
                        .reviews(Some("pending"), None, 1)
                        .await?
                        .into_iter()
                        .find(|r| r.kind == "model_activation")
                    {
                        Some(r) => format!(
                            "model {} awaits human review ({}); popularity and declared interests until a reviewer approves it",
                            r.target, r.id
                        ),
                        None => "no model trained yet; popularity and declared interests only"
                            .to_owned(),
                    },
                };
                (engine, None, Some(note))
            }
        };
        let engine = engine
            .with_servable(servable)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let previous = self.serving();
        let generation = if previous.engine.catalog().item_ids == engine.catalog().item_ids {
            previous.generation
        } else {
            GENERATIONS.fetch_add(1, Ordering::Relaxed)
        };
        *self.personalization.serving.write().expect("serving lock") = Arc::new(Serving {
            engine,
            item_index,
            category_ids,
            category_index,
            model_version,
            generation,
            note,
            grouped_items,
        });
        Ok(())
    }

    fn engine_from(&self, catalog: &Catalog, m: &ModelVersion, file: &ModelFile) -> Result<Engine> {
        let mut counts: Vec<u32> = serde_json::from_str(&m.counts).map_err(|_| {
            AppError::invalid(
                "model",
                format!("model {} has unreadable popularity counts", m.version),
            )
        })?;
        // Items added since training have no counts yet.
        if counts.len() < catalog.item_ids.len() {
            counts.resize(catalog.item_ids.len(), 0);
        }
        let engine = Engine::from_model_file(catalog.clone(), &counts, file, serve_config(self))
            .map_err(|e| AppError::invalid("model", e.to_string()))?;
        Ok(match m.calibration.as_str() {
            "" => engine,
            json => engine.with_calibration(serde_json::from_str(json).map_err(|_| {
                AppError::invalid(
                    "model",
                    format!("model {} has an unreadable calibration", m.version),
                )
            })?),
        })
    }

    /// Items in the catalog serving answers from (tombstones included).
    pub fn serving_items(&self) -> usize {
        self.serving().engine.catalog().item_ids.len()
    }

    pub fn serving(&self) -> Arc<Serving> {
        self.personalization
            .serving
            .read()
            .expect("serving lock")
            .clone()
    }

    /// Consented interaction histories (item indices, oldest first) per subject, and counts.
    /// Events and consent records are read a page of subjects at a time, so only the compact
    /// histories are held, and a page costs two reads whatever its size.
    async fn training_data(
        &self,
        item_index: &HashMap<String, u32>,
        page_subjects: i64,
    ) -> Result<(Vec<Vec<u32>>, Vec<u32>, usize)> {
        let (histories, _, counts, excluded) = self
            .training_data_timed(item_index, page_subjects, false)
            .await?;
        Ok((histories, counts, excluded))
    }

    /// [`App::training_data`] with each history entry's time when `timed` (model selection
    /// cuts its validation slice by time and weighs recency).
    async fn training_data_timed(
        &self,
        item_index: &HashMap<String, u32>,
        page_subjects: i64,
        timed: bool,
    ) -> Result<TrainingData> {
        let purpose_id = PurposeId::parse(&self.config.recommend.purpose)?;
        let purposes = self.purposes();
        let purpose = purposes.get(&purpose_id);
        let mut counts = vec![0u32; item_index.len()];
        let mut histories = Vec::new();
        let mut times = Vec::new();
        let mut excluded = 0;
        let mut after = String::new();
        loop {
            let page = self.store.item_events_page(&after, page_subjects).await?;
            let names = page.subjects();
            let Some(&last) = names.last() else {
                break;
            };
            let previous = std::mem::replace(&mut after, last.to_owned());
            let keys: Vec<SubjectKey> = names
                .iter()
                .filter_map(|k| SubjectKey::parse(k).ok())
                .collect();
            if keys.len() != names.len() {
                return Err(AppError::Internal(format!(
                    "a stored subject key between {previous:?} and {after:?} is malformed"
                )));
            }
            let permits = match purpose {
                Some(p) => self.permits_between(&previous, &after, &keys, p).await?,
                None => vec![None; keys.len()],
            };
            for (events, permit) in page.permitted(&permits).into_iter().zip(&permits) {
                if permit.is_none() {
                    excluded += 1;
                    continue;
                }
                let (row, at): (Vec<u32>, Vec<i64>) = events
                    .iter()
                    .filter_map(|e| item_index.get(&e.item_id).map(|&i| (i, e.at)))
                    .unzip();
                for &it in &row {
                    counts[it as usize] += 1;
                }
                if !row.is_empty() {
                    histories.push(row);
                    if timed {
                        times.push(at);
                    }
                }
            }
        }
        Ok((histories, times, counts, excluded))
    }

    async fn popularity_counts(&self, item_index: &HashMap<String, u32>) -> Result<Vec<u32>> {
        Ok(self.training_data(item_index, TRAINING_PAGE).await?.1)
    }

    /// Trains item-kNN and ALS on consented data, chooses kNN, ALS or a blend of them on a
    /// validation slice cut by time from that data (`candor_recommend::select`), stores the
    /// chosen model with the choice and its figures, and activates it.
    pub async fn train(
        &self,
        actor: &str,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<TrainReport> {
        progress("reading the catalog and consented events");
        let EngineCatalog {
            catalog,
            item_index,
            ..
        } = self.catalog_for_engine(None).await?;
        if catalog.item_ids.is_empty() {
            return Err(AppError::invalid(
                "catalog",
                "the catalog is empty; nothing to train on",
            ));
        }
        let (histories, times, counts, excluded) = self
            .training_data_timed(&item_index, TRAINING_PAGE, true)
            .await?;
        let interactions: usize = histories.iter().map(Vec::len).sum();
        progress(&format!(
            "fitting item-kNN and ALS on {} subjects, {interactions} interactions, and choosing between them",
            histories.len()
        ));
        let n_items = catalog.item_ids.len();
        let subjects = histories.len();
        let (sel_catalog, sel_config) = (catalog.clone(), serve_config(self));
        let params = SelectParams {
            choice: self.config.recommend.model,
            ..SelectParams::default()
        };
        let selected = tokio::task::spawn_blocking(move || {
            select(&sel_catalog, &histories, &times, &sel_config, &params)
        })
        .await
        .map_err(|e| AppError::Internal(format!("model training stopped: {e}")))?
        .map_err(|e| AppError::Internal(format!("model training failed: {e}")))?;
        let kind = selected.model.kind().name();
        let training = json!({ "selection": selected.selection });
        let file = ModelFile::new(
            selected.model,
            catalog.item_ids.clone(),
            vec!["browsing".into(), "purchase".into()],
            vec![self.config.recommend.purpose.clone()],
            (self.now() / 1_000_000) as u64,
        )
        .map_err(|e| AppError::Internal(format!("model file of the {kind} model: {e}")))?;
        let bytes = file
            .to_bytes()
            .map_err(|e| AppError::Internal(format!("model file of the {kind} model: {e}")))?;
        let version = ModelVersion {
            version: file.meta.version.clone(),
            kind: kind.into(),
            created_at: self.now(),
            subjects: subjects as i64,
            interactions: interactions as i64,
            items: n_items as i64,
            counts: serde_json::to_string(&counts)
                .map_err(|e| AppError::Internal(format!("popularity counts: {e}")))?,
            body: base64::engine::general_purpose::STANDARD.encode(bytes),
            calibration: serde_json::to_string(&selected.calibration)
                .map_err(|e| AppError::Internal(format!("calibration: {e}")))?,
            training: training.to_string(),
            active: false,
        };
        progress("storing the model");
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::ModelTrain,
            &version.version,
            json!({"interactions": interactions, "subjects_excluded_without_consent": excluded, "items": n_items, "kind": kind, "training": training}),
        );
        self.store.save_model(&version, &audit).await?;
        let review = match self
            .request_model_activation(actor, &version.version)
            .await?
        {
            Requested::Applied => None,
            Requested::Held(item) => Some(item.id),
        };
        Ok(TrainReport {
            version: version.version,
            subjects,
            subjects_excluded_without_consent: excluded,
            interactions,
            items: n_items,
            activated: review.is_none(),
            review,
        })
    }

    /// The stored model `version`, after proving it loads and fits the catalog.
    pub(crate) async fn checked_model(&self, version: &str) -> Result<ModelVersion> {
        let m = self
            .store
            .model_version(version)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "model version",
                id: version.to_owned(),
            })?;
        let file = decode_model(&m)?;
        let EngineCatalog { catalog, .. } =
            self.catalog_for_engine(Some(&file.meta.item_ids)).await?;
        self.engine_from(&catalog, &m, &file)?;
        Ok(m)
    }

    /// Switches serving to `version` after proving it loads and fits the catalog. Callers
    /// outside the review queue go through [`App::request_model_activation`].
    pub(crate) async fn activate_model(&self, actor: &str, version: &str) -> Result<()> {
        let m = self.checked_model(version).await?;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::ModelActivate,
            version,
            json!({"kind": m.kind}),
        );
        self.store
            .activate_model(version, self.now(), &audit)
            .await?;
        self.reload_serving().await
    }

    pub async fn model_versions(&self) -> Result<Vec<ModelVersion>> {
        Ok(self.store.model_versions().await?)
    }

    /// Recommendations for one subject, with every filter applied in the serving order:
    /// consent, level, quiet periods, sensitive categories, owned items.
    pub async fn recommend(
        &self,
        subject: &SubjectKey,
        req: &RecommendRequest,
    ) -> Result<Recommendations> {
        let cfg = &self.config.recommend;
        if !cfg.surfaces.iter().any(|s| s == &req.surface) {
            return Err(AppError::invalid(
                "surface",
                format!(
                    "`{}` is not one of {}",
                    req.surface,
                    cfg.surfaces.join(", ")
                ),
            ));
        }
        let k = req.k.unwrap_or(cfg.default_k);
        if k == 0 || k > cfg.max_k {
            return Err(AppError::invalid(
                "k",
                format!("must be between 1 and {}", cfg.max_k),
            ));
        }
        let serving = self.serving();
        let now = self.now();
        let mut filters = Vec::new();
        let mut fallback = serving.note.clone();

        // 1. Consent for the purpose.
        let purposes = self.purposes();
        let purpose = purposes.get(&PurposeId::parse(&cfg.purpose)?);
        let (permit, status) = match purpose {
            Some(p) => {
                let (permit, status) = self.permit_and_status(subject, p).await?;
                (permit, Some(status))
            }
            None => (None, None),
        };
        filters.push(consent_story(&cfg.purpose, status.as_ref()));
        // Recommending to a person is person-level use: a purpose that may only feed totals
        // never personalizes an answer, whatever its consent says.
        let permit = match permit {
            Some(p) if !p.is_person_level() => {
                filters.push(format!(
                    "`{}` may only feed totals (not person-level), so nothing personal is used",
                    cfg.purpose
                ));
                None
            }
            other => other,
        };
        let may = |c: DataCategory| permit.is_some_and(|p| p.covers(&c));
        let consent = serve::Consent {
            behaviour: may(DataCategory::Browsing) || may(DataCategory::Purchase),
            declared: may(DataCategory::DeclaredPreference),
        };

        // 2. The person's level, then quiet periods.
        let mut prefs = self.preferences(subject).await?;
        if let Some(preview) = req.preview {
            std::sync::Arc::make_mut(&mut prefs).level = preview;
        }
        let mut level = prefs.level;
        // What, besides consent, made the applied level lower than the chosen one.
        let mut lowered_by: Option<&str> = None;
        if let Some(q) = prefs.quiet_at(now) {
            filters.push(format!(
                "quiet period{} until {}: non-personal",
                q.label
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                candor_domain::format_micros(q.until)
            ));
            fallback = Some("quiet period".into());
            lowered_by = Some("a quiet period");
            level = Level::Off;
        }
        // An alert's scale-back caps every answer on the surface until a person clears it.
        if let Some(sb) = self.scale_back(&req.surface)
            && level > sb.cap
        {
            filters.push(sb.line);
            fallback = Some(format!("scaled back by alert {}", sb.alert_id));
            lowered_by = Some("an alert's scale-back");
            level = sb.cap;
        }
        // The level line is written once the applied level is known (below), here in order.
        let level_line_at = filters.len();

        // History is read only when it may be used; memory keeps none of a subject whose
        // consent no longer allows it.
        let mut history = History::default();
        if consent.behaviour && level == Level::Full {
            let p = permit
                .as_ref()
                .expect("behaviour is used only with a permit");
            history = self.subject_history(p, &serving).await?;
            let on_screen = req
                .current_item
                .iter()
                .map(|id| (id, serve::Interaction::Viewed));
            let cart = req
                .cart
                .iter()
                .map(|id| (id, serve::Interaction::AddedToCart));
            for (id, kind) in on_screen.chain(cart) {
                if let Some(i) = serving.item_index(id) {
                    history.items.push(i);
                    history.ts.push(now / 1_000_000);
                    history.kinds.push(kind);
                }
            }
        } else if !consent.behaviour {
            self.forget_history(subject);
        }
        let History {
            items: history,
            ts: history_ts,
            kinds: history_kinds,
            mut owned,
        } = history;
        // The item on screen and the cart are never recommended back.
        owned.extend(
            req.current_item
                .iter()
                .chain(req.cart.iter())
                .filter_map(|id| serving.item_index.get(id).copied()),
        );
        // Items the person marked "not for me" are declared preference data: left out where
        // declared preferences may be used.
        let hidden = if consent.declared && level >= Level::Basic {
            let before = owned.len();
            owned.extend(
                prefs
                    .hidden_items
                    .iter()
                    .filter_map(|id| serving.item_index.get(id).copied()),
            );
            owned.len() - before
        } else {
            0
        };
        let declared: Vec<u32> = prefs
            .declared_interests
            .iter()
            .filter_map(|c| serving.category_index.get(c).copied())
            .collect();
        let sensitive_opt_in: Vec<u32> = prefs
            .sensitive_opt_ins
            .iter()
            .filter_map(|c| serving.category_index.get(c).copied())
            .collect();
        let engine_level = match level {
            Level::Off => serve::Level::Off,
            Level::Basic => serve::Level::Basic,
            Level::Full => serve::Level::Full,
        };
        let seed = u64::from_str_radix(&subject.as_str()[..16], 16).unwrap_or(0)
            ^ (now as u64 / 86_400_000_000);
        let ask = |lvl| serve::Request {
            level: lvl,
            consent,
            history: &history,
            history_ts: &history_ts,
            history_kinds: &history_kinds,
            declared: &declared,
            sensitive_opt_in: &sensitive_opt_in,
            owned: &owned,
            k,
            seed,
        };
        let mut resp = serving.engine.recommend(&ask(engine_level));
        // Only a calibrated confidence is a probability worth comparing to the threshold.
        if resp.level != serve::Level::Off
            && resp.calibrated
            && cfg.low_confidence > 0.0
            && resp.items.iter().all(|i| i.confidence < cfg.low_confidence)
        {
            resp = serving.engine.recommend(&ask(serve::Level::Off));
            fallback = Some(format!(
                "personal results were below the confidence threshold {}: non-personal instead",
                cfg.low_confidence
            ));
            lowered_by = Some("low confidence");
        }
        let confidence_calibrated = resp.calibrated;
        let fairness_adjusted = resp.fairness_adjusted;
        let applied = match resp.level {
            serve::Level::Off => Level::Off,
            serve::Level::Basic => Level::Basic,
            serve::Level::Full => Level::Full,
        };
        let why_lower = if let Some(why) = lowered_by {
            why
        } else if permit.is_none() && status.as_ref().is_some_and(ConsentStatus::allows) {
            "an aggregate-only purpose"
        } else if permit.is_none() {
            "no consent"
        } else {
            "no data this level may use"
        };
        filters.insert(
            level_line_at,
            if applied == prefs.level {
                format!("personalization level: {}", prefs.level.as_str())
            } else {
                format!(
                    "personalization level: {} chosen, {} applied because of {why_lower}",
                    prefs.level.as_str(),
                    applied.as_str()
                )
            },
        );
        let excluded: Vec<&str> = serving
            .category_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                serving.engine.catalog().category_sensitive[*i]
                    && !sensitive_opt_in.contains(&(*i as u32))
            })
            .map(|(_, c)| c.as_str())
            .collect();
        if !excluded.is_empty() {
            filters.push(format!(
                "sensitive categories excluded (no opt-in): {}",
                excluded.join(", ")
            ));
        }
        if hidden > 0 {
            filters.push(format!(
                "{hidden} item{} you marked not for you left out",
                if hidden == 1 { "" } else { "s" }
            ));
        }
        filters.push(format!(
            "{} owned or on-screen items excluded",
            owned.len() - hidden
        ));
        filters.push(format!(
            "diversity re-ranking: MMR lambda {}, at most {} per category{}",
            cfg.mmr_lambda,
            cfg.category_cap,
            if cfg.exploration_slot {
                ", one exploration slot"
            } else {
                ""
            }
        ));
        let exposure = &cfg.exposure;
        if !exposure.min_share.is_empty() {
            let floors: Vec<String> = exposure
                .min_share
                .iter()
                .map(|(g, s)| format!("{:.0}% {g}", s * 100.0))
                .collect();
            filters.push(format!(
                "exposure by {}: at least {} of each answer when available; {}",
                exposure.group_attribute,
                floors.join(", "),
                if fairness_adjusted {
                    "this answer was adjusted to meet it"
                } else {
                    "this answer met it without adjustment"
                }
            ));
        }
        let catalog = serving.engine.catalog();
        let items: Vec<RecommendedItem> = resp
            .items
            .into_iter()
            .map(|r| RecommendedItem {
                title: catalog.titles[r.item as usize].clone(),
                category: serving.category_ids[catalog.item_category[r.item as usize] as usize]
                    .clone(),
                item_id: r.item_id,
                score: r.score,
                confidence: r.confidence,
                reasons: r.reasons.into_iter().map(reason_text).collect(),
                data_categories: r.data_categories,
                purposes: r.purposes,
                exploration: r.exploration,
            })
            .collect();
        let model_version = resp.model_version;
        let decision_id = req.preview.is_none().then(new_decision_id);
        if let Some(answer_id) = &decision_id {
            self.log_decisions(items.iter().enumerate().map(|(pos, it)| DecisionRow {
                subject_key: subject.to_string(),
                surface: req.surface.clone(),
                item_id: it.item_id.clone(),
                selected: true,
                outcome: None,
                score: Some(f64::from(it.score)),
                model_version: model_version.clone(),
                at: now,
                position: Some(pos as i64 + 1),
                answer_id: Some(answer_id.clone()),
            }))
            .await?;
        }
        metrics::counter!("candor_recommendations_total", "level" => applied.as_str(), "surface" => req.surface.clone()).increment(1);
        Ok(Recommendations {
            subject_key: subject.to_string(),
            surface: req.surface.clone(),
            level_requested: prefs.level,
            level_applied: applied,
            model_version,
            confidence_calibrated,
            fairness_adjusted,
            fallback,
            filters,
            items,
            decision_id,
        })
    }

    /// Records a response's items as decisions: through the background writer when it runs,
    /// else directly. When the writer's queue is full the request waits for room: writing its
    /// own rows beside the writer made every such request queue for SQLite's write lock, and
    /// SQLite's busy handler sleeps in steps of up to 100 ms (multi-second stalls under load).
    /// Brings decisions another system made (an earlier engine, the demo's offer history) into
    /// the decision log, audited as one import, so fairness audits can see them.
    pub async fn import_decisions(&self, actor: &str, rows: &[DecisionRow]) -> Result<()> {
        for (n, r) in rows.iter().enumerate() {
            if SubjectKey::parse(&r.subject_key).is_err() || r.surface.is_empty() {
                return Err(AppError::invalid(
                    format!("decisions[{n}]"),
                    "needs a subject key and a surface",
                ));
            }
        }
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::DecisionsImport,
            "decision_log",
            json!({"decisions": rows.len()}),
        );
        Ok(self.store.import_decisions(rows, self.now(), audit).await?)
    }

    async fn log_decisions(&self, rows: impl Iterator<Item = DecisionRow>) -> Result<()> {
        use tokio::sync::mpsc::error::{SendError, TrySendError};
        let rows: Vec<DecisionRow> = rows.collect();
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self
            .personalization
            .decisions_tx
            .lock()
            .expect("decision log lock")
            .clone();
        let unsent = match tx {
            Some(tx) => match tx.try_send(DecisionLog::Rows(rows)) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m)) => match tx.send(m).await {
                    Ok(()) => return Ok(()),
                    Err(SendError(m)) => m,
                },
                Err(TrySendError::Closed(m)) => m,
            },
            None => DecisionLog::Rows(rows),
        };
        let DecisionLog::Rows(unsent) = unsent else {
            return Ok(());
        };
        Ok(self.store.insert_decisions(&unsent).await?)
    }
}

/// A fresh answer id: 128 random bits, so an id names one answer and cannot be guessed.
pub(crate) fn new_decision_id() -> String {
    format!("ans_{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Whether `id` has the shape [`new_decision_id`] makes.
pub(crate) fn is_decision_id(id: &str) -> bool {
    id.strip_prefix("ans_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the consent state of the recommendation purpose means for this answer, in words.
fn consent_story(purpose: &str, status: Option<&ConsentStatus>) -> String {
    let nothing = "so nothing personal is used";
    let state = match status {
        None => format!("not declared, {nothing}"),
        Some(ConsentStatus::Granted { .. }) => "granted".into(),
        Some(ConsentStatus::NotRequired) => "not required (strictly necessary)".into(),
        Some(ConsentStatus::LegitimateInterest) => "legitimate interest, not objected to".into(),
        Some(ConsentStatus::Denied { .. }) => format!("denied, {nothing}"),
        Some(ConsentStatus::NotAsked) => format!("not given, {nothing}"),
        Some(ConsentStatus::Expired { at }) => format!(
            "expired on {}; it must be given again, {nothing}",
            candor_domain::format_micros(*at)
        ),
        Some(ConsentStatus::NeedsRenewal {
            consented_version,
            current_version,
        }) => format!(
            "the purpose changed (v{current_version}); the consent given for v{consented_version} must be renewed, {nothing}"
        ),
        Some(ConsentStatus::Restricted { since }) => format!(
            "restricted at your request since {}, {nothing}",
            candor_domain::format_micros(*since)
        ),
    };
    format!("consent for `{purpose}`: {state}")
}

fn reason_text(r: serve::Reason) -> String {
    match r {
        serve::Reason::Because { text, .. }
        | serve::Reason::DeclaredCategory { text, .. }
        | serve::Reason::Activity { text }
        | serve::Reason::Popular { text }
        | serve::Reason::Exploration { text, .. } => text,
    }
}

#[cfg(test)]
mod tests {
    use candor_domain::{ConsentDecision, PurposeId};
    use candor_store::testing::TestDb;
    use candor_store::{CatalogCategory, EventRow, Item, both_stores};

    use base64::Engine as _;
    use candor_store::ModelVersion;

    use crate::App;

    /// 6 garden items and 23 subjects: a third granted personalization, a third denied, a third
    /// never asked; browsing and (not usable by the purpose) purchase events.
    async fn small_shop(db: &TestDb) -> (std::sync::Arc<App>, crate::testing::TempDir) {
        let dir = crate::testing::TempDir::new("train-pages");
        let app = App::open(crate::testing::config(db, dir.path()))
            .await
            .unwrap();
        app.create_purpose(
            "test",
            &crate::testing::purpose("personalization", &["browsing"]),
        )
        .await
        .unwrap();
        let items: Vec<Item> = (0..6)
            .map(|i| Item {
                id: format!("sku-{i}"),
                name: format!("Item {i}"),
                category_id: "garden".into(),
                price_cents: 100,
                ..Default::default()
            })
            .collect();
        let garden = CatalogCategory {
            id: "garden".into(),
            name: "Garden".into(),
            sensitive_kind: None,
        };
        app.upsert_catalog("test", &[garden], &items).await.unwrap();
        // 23 subjects: a third granted, a third denied, a third never asked; browsing and
        // (not usable by the purpose) purchase events.
        let pid = PurposeId::parse("personalization").unwrap();
        let mut events = Vec::new();
        let mut decisions = Vec::new();
        for s in 0..23 {
            let key = app.subject_key(&format!("s{s}")).unwrap();
            match s % 3 {
                0 => decisions.push((
                    key.clone(),
                    vec![(pid.clone(), ConsentDecision::Granted, 1)],
                )),
                1 => decisions.push((key.clone(), vec![(pid.clone(), ConsentDecision::Denied, 1)])),
                _ => {}
            }
            for e in 0..(1 + s % 4) {
                events.push(EventRow {
                    subject_key: key.to_string(),
                    kind: "view".into(),
                    item_id: format!("sku-{}", (s + e) % 6),
                    quantity: 1,
                    at: 10 + e as i64,
                    category: if e == 2 { "purchase" } else { "browsing" }.into(),
                    purpose: "personalization".into(),
                });
            }
        }
        app.import_consents_bulk("test", &decisions).await.unwrap();
        app.store.insert_events(&events).await.unwrap();
        app.reload_serving().await.unwrap();
        (app, dir)
    }

    both_stores!(
        training_reads_the_same_data_whatever_the_page_size,
        |db: TestDb| async move {
            let (app, _dir) = small_shop(&db).await;
            let index = app.serving().item_index.clone();
            let whole = app.training_data(&index, 1000).await.unwrap();
            assert_eq!(whole.2, 15, "denied and never-asked subjects are left out");
            assert_eq!(whole.0.len(), 8);
            assert_eq!(
                whole.1.iter().sum::<u32>() as usize,
                whole.0.iter().map(Vec::len).sum::<usize>()
            );
            for page in [1, 2, 5] {
                assert_eq!(
                    app.training_data(&index, page).await.unwrap(),
                    whole,
                    "page {page}"
                );
            }
            app.store.close().await;
        }
    );

    both_stores!(
        a_model_that_cannot_serve_full_is_refused_at_activation,
        |db: TestDb| async move {
            let (app, _dir) = small_shop(&db).await;
            let trained = app.train("test", &|_| {}).await.unwrap();
            let ids = app.serving().engine.catalog().item_ids.clone();
            let wrong = candor_recommend::codec::ModelFile::new(
                candor_recommend::models::Model::Popularity(candor_recommend::models::Popularity {
                    counts: vec![1; ids.len()],
                }),
                ids.clone(),
                vec![],
                vec![],
                0,
            )
            .unwrap();
            let stored = app
                .store
                .model_version(&trained.version)
                .await
                .unwrap()
                .unwrap();
            let version = ModelVersion {
                version: wrong.meta.version.clone(),
                kind: "popularity".into(),
                body: base64::engine::general_purpose::STANDARD.encode(wrong.to_bytes().unwrap()),
                ..stored
            };
            let audit = candor_domain::AuditDraft::new(
                "test",
                candor_domain::AuditAction::ModelTrain,
                &version.version,
                serde_json::json!({}),
            );
            app.store.save_model(&version, &audit).await.unwrap();
            let err = app
                .activate_model("test", &version.version)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("cannot serve level full"), "{err}");
            assert_eq!(
                app.serving().model_version(),
                Some(trained.version.as_str()),
                "the previous model keeps serving"
            );
            app.store.close().await;
        }
    );

    both_stores!(
        an_exposure_attribute_no_item_has_is_refused_at_start,
        |db: TestDb| async move {
            let (app, dir) = small_shop(&db).await;
            app.store.close().await;
            let mut config = crate::testing::config(&db, dir.path());
            config.recommend.exposure.group_attribute = "brand".into();
            config.recommend.exposure.min_share = [("acme".to_owned(), 0.2)].into();
            let err = match App::open(config).await {
                Ok(_) => panic!("a group attribute no item has must not start"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("recommend.exposure.group_attribute") && err.contains("brand"),
                "{err}"
            );
        }
    );
}
