//! Preferences, the model registry, and what serving reads about a subject.
//!
//! Invariant: exactly one model version is active at a time; switching is one transaction
//! (and a notification), so every node moves to the new version together and never serves a
//! half-written model.

use candor_domain::{AuditDraft, Micros, Permit};
use sqlx::{AssertSqlSafe, Row};

use crate::audit::Tx;
use crate::{Result, Store, StoreError};

/// A stored model version. `body` is the model file, base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub version: String,
    pub kind: String,
    pub created_at: Micros,
    pub subjects: i64,
    pub interactions: i64,
    pub items: i64,
    /// JSON array of per-item popularity counts, in the model's item order.
    pub counts: String,
    /// JSON of the fitted confidence calibration, or empty.
    pub calibration: String,
    /// JSON of how the version was trained and chosen (model selection figures, reweighing),
    /// or empty for versions from before migration 0015. Listed with the versions.
    pub training: String,
    pub body: String,
    pub active: bool,
}

/// One behavioral event as serving and training read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemEvent {
    pub subject_key: String,
    pub item_id: String,
    pub category: String,
    pub at: Micros,
    /// The message that brought it (none for rows loaded in bulk); serving's in-memory history
    /// uses it to recognise an event it has already seen.
    pub message_id: Option<String>,
    /// Session data of a visitor not (yet) linked to a known subject.
    pub anonymous: bool,
}

/// One page of training data. Which subjects it covers is public; their events come out only
/// through [`TrainingPage::permitted`], filtered by each subject's permit.
#[derive(Debug, Default)]
pub struct TrainingPage {
    /// By subject, then time.
    rows: Vec<ItemEvent>,
}

impl TrainingPage {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The subjects on this page, in key order, each once.
    pub fn subjects(&self) -> Vec<&str> {
        self.rows
            .chunk_by(|a, b| a.subject_key == b.subject_key)
            .map(|h| h[0].subject_key.as_str())
            .collect()
    }

    /// Each subject's events that its permit covers, oldest first, in [`TrainingPage::subjects`]
    /// order. `permits[i]` belongs to the i-th subject; a subject without one, or whose permit
    /// names someone else, yields nothing.
    pub fn permitted(&self, permits: &[Option<Permit<'_>>]) -> Vec<Vec<&ItemEvent>> {
        self.rows
            .chunk_by(|a, b| a.subject_key == b.subject_key)
            .zip(permits.iter().chain(std::iter::repeat(&None)))
            .map(|(events, permit)| match permit {
                Some(p) if p.subject().as_str() == events[0].subject_key => events
                    .iter()
                    .filter(|e| p.covers_name(&e.category))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// A subject's new preferences (`body` is their JSON) and the audit entry that records them.
#[derive(Debug, Clone)]
pub struct PreferencesUpdate {
    pub subject: String,
    pub body: String,
    pub interests: Vec<String>,
    /// Where the person made the change (counted per source in the KPI read model).
    pub source: String,
    pub audit: AuditDraft,
}

/// Item-event columns, read through the subject index (`s`) joined to the events (`e`).
const ITEM_EVENT_COLUMNS: &str =
    "e.subject_key, e.item_id, e.category, e.at, e.message_id, e.anonymous";
/// Stale index entries (an event since deleted, or moved to another subject) drop out here.
const BY_SUBJECT: &str =
    "event_subjects s JOIN events e ON e.id = s.event_id AND e.subject_key = s.subject_key";

fn decode_item_event(r: &sqlx::any::AnyRow) -> Result<ItemEvent> {
    Ok(ItemEvent {
        subject_key: r.try_get("subject_key")?,
        item_id: r.try_get("item_id")?,
        category: r.try_get("category")?,
        at: r.try_get("at")?,
        message_id: r.try_get("message_id")?,
        anonymous: r.try_get::<i64, _>("anonymous")? != 0,
    })
}

fn decode_model(r: &sqlx::any::AnyRow, with_body: bool) -> Result<ModelVersion> {
    Ok(ModelVersion {
        version: r.try_get("version")?,
        kind: r.try_get("kind")?,
        created_at: r.try_get("created_at")?,
        subjects: r.try_get("subjects")?,
        interactions: r.try_get("interactions")?,
        items: r.try_get("items")?,
        counts: if with_body {
            r.try_get("counts")?
        } else {
            String::new()
        },
        calibration: if with_body {
            r.try_get("calibration")?
        } else {
            String::new()
        },
        training: r.try_get("training")?,
        body: if with_body {
            r.try_get("body")?
        } else {
            String::new()
        },
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

impl Store {
    pub async fn preferences_body(&self, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM subject_preferences WHERE subject_key = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("body").map_err(StoreError::from))
            .transpose()
    }

    /// Stores a subject's preferences (and their declared interests), audited.
    pub async fn set_preferences(
        &self,
        subject: &str,
        body: &str,
        interests: &[String],
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<()> {
        self.set_preferences_bulk(
            &[PreferencesUpdate {
                subject: subject.to_owned(),
                body: body.to_owned(),
                interests: interests.to_vec(),
                source: "api".into(),
                audit: audit_draft.clone(),
            }],
            at,
        )
        .await
    }

    /// Stores many subjects' preferences in one transaction with multi-row statements; each
    /// subject gets its own audit entry (chained in the given order) and notification.
    pub async fn set_preferences_bulk(
        &self,
        updates: &[PreferencesUpdate],
        at: Micros,
    ) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let backend = self.backend;
        let notices: Vec<String> = updates
            .iter()
            .map(|u| format!("prefs:{}", u.subject))
            .collect();
        self.audited_many(
            at,
            updates,
            |tx, updates| Box::pin(write_preferences_in(tx, backend, updates, at)),
            |_| updates.iter().map(|u| &u.audit).collect(),
            &notices,
        )
        .await?;
        Ok(())
    }

    pub async fn declared_interests(&self, subject: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT category_id FROM declared_interests WHERE subject_key = $1 ORDER BY category_id").bind(subject).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| r.try_get("category_id").map_err(StoreError::from))
            .collect()
    }

    /// The subject's item events, newest first: of their newest `limit`, those `permit`
    /// covers. The permit names the subject; nothing else can.
    pub async fn item_events(&self, permit: &Permit<'_>, limit: i64) -> Result<Vec<ItemEvent>> {
        let rows = self
            .subject_rows(permit.subject().as_str(), limit, |of_subject| {
                format!(
                    "SELECT {ITEM_EVENT_COLUMNS} FROM events e WHERE {of_subject} \
                     AND e.item_id <> '' ORDER BY e.at DESC, e.id DESC LIMIT $2"
                )
            })
            .await?;
        let mut events = rows
            .iter()
            .map(decode_item_event)
            .collect::<Result<Vec<_>>>()?;
        events.retain(|e| permit.covers_name(&e.category));
        Ok(events)
    }

    /// Training reads item events of known subjects a page at a time, so memory stays bounded
    /// whatever the store holds: every event of the next `subjects` subjects whose key sorts
    /// after `after` (start with ""), ordered by subject then time. A page never splits a
    /// subject; an empty page means the end. Its events are read out only with permits
    /// ([`TrainingPage::permitted`]).
    pub async fn item_events_page(&self, after: &str, subjects: i64) -> Result<TrainingPage> {
        const KNOWN: &str = "e.item_id <> '' AND e.anonymous = 0 \
             AND s.subject_key <> 'anonymized' AND s.subject_key > $1";
        self.index_events().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ITEM_EVENT_COLUMNS} FROM {BY_SUBJECT} WHERE {KNOWN} AND s.subject_key <= \
             (SELECT MAX(p.subject_key) FROM (SELECT DISTINCT s.subject_key FROM {BY_SUBJECT} \
             WHERE {KNOWN} ORDER BY s.subject_key LIMIT $2) p) \
             ORDER BY s.subject_key, s.at, s.event_id"
        )))
        .bind(after)
        .bind(subjects)
        .fetch_all(&self.pool)
        .await?;
        Ok(TrainingPage {
            rows: rows.iter().map(decode_item_event).collect::<Result<_>>()?,
        })
    }

    /// Catalog: every item, tombstones included (marked not servable), ordered by item id, and
    /// categories (id, name, sensitive kind) ordered by id.
    pub async fn catalog(
        &self,
    ) -> Result<(
        Vec<crate::ServingItem>,
        Vec<(String, String, Option<String>)>,
    )> {
        let items = sqlx::query(
            "SELECT id, name, category_id, available, deleted, sensitive_kind, brand, attributes FROM items ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let cats =
            sqlx::query("SELECT id, name, sensitive_kind FROM catalog_categories ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok((
            items
                .iter()
                .map(|r| {
                    Ok(crate::ServingItem {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        category_id: r.try_get("category_id")?,
                        servable: r.try_get::<i64, _>("available")? != 0
                            && r.try_get::<i64, _>("deleted")? == 0,
                        sensitive_kind: r.try_get("sensitive_kind")?,
                        brand: r.try_get("brand")?,
                        attributes: r.try_get("attributes")?,
                    })
                })
                .collect::<Result<_>>()?,
            cats.iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("name")?,
                        r.try_get("sensitive_kind")?,
                    ))
                })
                .collect::<Result<_>>()?,
        ))
    }

    /// Stores a trained model (inactive until activated).
    pub async fn save_model(&self, m: &ModelVersion, audit_draft: &AuditDraft) -> Result<()> {
        self.audited(
            m.created_at,
            m,
            |tx, m| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO model_versions (version, kind, created_at, subjects, interactions, items, counts, body, calibration, training, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0) ON CONFLICT (version) DO NOTHING")
                        .bind(&m.version)
                        .bind(&m.kind)
                        .bind(m.created_at)
                        .bind(m.subjects)
                        .bind(m.interactions)
                        .bind(m.items)
                        .bind(&m.counts)
                        .bind(&m.body)
                        .bind(&m.calibration)
                        .bind(&m.training)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            },
            |_| audit_draft,
            &[],
        )
        .await?;
        Ok(())
    }

    /// Makes `version` the only active model.
    pub async fn activate_model(
        &self,
        version: &str,
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<()> {
        self.audited(
            at,
            version,
            |tx, version| {
                Box::pin(async move {
                    let exists =
                        sqlx::query("SELECT version FROM model_versions WHERE version = $1")
                            .bind(version)
                            .fetch_optional(&mut **tx)
                            .await?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound {
                            what: "model version",
                            id: version.to_owned(),
                        });
                    }
                    sqlx::query(
                        "UPDATE model_versions SET active = CASE WHEN version = $1 THEN 1 ELSE 0 END",
                    )
                    .bind(version)
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                })
            },
            |_| audit_draft,
            &["model".to_owned()],
        )
        .await?;
        Ok(())
    }

    pub async fn model_version(&self, version: &str) -> Result<Option<ModelVersion>> {
        let row = sqlx::query("SELECT * FROM model_versions WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_model(&r, true)).transpose()
    }

    pub async fn active_model(&self) -> Result<Option<ModelVersion>> {
        let row = sqlx::query("SELECT * FROM model_versions WHERE active = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_model(&r, true)).transpose()
    }

    /// Versions without their bodies, newest first.
    pub async fn model_versions(&self) -> Result<Vec<ModelVersion>> {
        let rows = sqlx::query("SELECT version, kind, created_at, subjects, interactions, items, training, active FROM model_versions ORDER BY created_at DESC").fetch_all(&self.pool).await?;
        rows.iter().map(|r| decode_model(r, false)).collect()
    }

    /// Overwrites a stored model body (tests use this to simulate corruption on disk).
    pub async fn overwrite_model_body(&self, version: &str, body: &str) -> Result<()> {
        sqlx::query("UPDATE model_versions SET body = $1 WHERE version = $2")
            .bind(body)
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Writes preferences (and their declared interests) inside a caller's transaction; the caller
/// audits them (`set_preferences_bulk`, feedback).
pub(crate) async fn write_preferences_in(
    tx: &mut Tx,
    backend: crate::Backend,
    updates: &[PreferencesUpdate],
    at: Micros,
) -> Result<()> {
    let mut by_source: std::collections::BTreeMap<&str, i64> = Default::default();
    for u in updates {
        *by_source.entry(u.source.as_str()).or_default() += 1;
    }
    let counts: Vec<(String, String, i64)> = by_source
        .into_iter()
        .map(|(source, n)| {
            (
                "preference_changes".to_owned(),
                format!("source:{source}"),
                n,
            )
        })
        .collect();
    crate::feedback::add_counts_in(tx, backend, crate::feedback::day_of(at), &counts).await?;
    for chunk in updates.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO subject_preferences (subject_key, body, updated_at) VALUES {} ON CONFLICT (subject_key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            crate::ingest::placeholders(backend, chunk.len(), 3)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for u in chunk {
            q = q.bind(&u.subject).bind(&u.body).bind(at);
        }
        q.execute(&mut **tx).await?;
        let sql = format!(
            "DELETE FROM declared_interests WHERE subject_key IN ({})",
            (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for u in chunk {
            q = q.bind(&u.subject);
        }
        q.execute(&mut **tx).await?;
    }
    let interests: Vec<(&str, &str)> = updates
        .iter()
        .flat_map(|u| u.interests.iter().map(|c| (u.subject.as_str(), c.as_str())))
        .collect();
    for chunk in interests.chunks(crate::ingest::CHUNK) {
        let sql = format!(
            "INSERT INTO declared_interests (subject_key, category_id) VALUES {}",
            crate::ingest::placeholders(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (subject, category) in chunk {
            q = q.bind(*subject).bind(*category);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
