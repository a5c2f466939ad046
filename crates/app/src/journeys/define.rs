//! Defining journeys (API and file), entering subjects on trigger events, and the person's
//! time zone.
//!
//! Invariant: only a definition the domain validated is stored, and only stored definitions
//! enter anyone; a subject enters a journey once, and only when identified (a message needs
//! someone to send it to).

use std::sync::Arc;

use candor_domain::journey::{Exit, JourneyDefinition, Trigger};
use candor_domain::{AuditDraft, SubjectKey};
use candor_store::{IngestBatch, IngestResult, JourneyRow};
use serde_json::json;

use crate::{App, AppError, Result};

/// A stored journey as the API shows it.
#[derive(Debug, Clone)]
pub struct JourneyInfo {
    pub definition: JourneyDefinition,
    pub active: bool,
    pub created_at: candor_domain::Micros,
    pub updated_at: candor_domain::Micros,
}

/// Journeys in a file: `[[journey]]` tables (TOML) or `{"journeys": [...]}` (JSON).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JourneyFile {
    #[serde(alias = "journey")]
    journeys: Vec<serde_json::Value>,
}

impl App {
    /// The consent purpose a channel's messages need, if the channel has one configured and
    /// the purpose is declared.
    pub(crate) fn channel_purpose(&self, channel: &str) -> Option<String> {
        let id = self.config.journeys.channel_purposes.get(channel)?;
        self.purposes()
            .keys()
            .any(|p| p.as_str() == id)
            .then(|| id.clone())
    }

    /// Validates and stores a journey (replacing one of the same id), audited; it runs from
    /// the next tick on every node. `body` is the definition as JSON.
    pub async fn define_journey(
        &self,
        actor: &str,
        body: serde_json::Value,
    ) -> Result<JourneyInfo> {
        let def: JourneyDefinition = serde_json::from_value(body)
            .map_err(|e| AppError::invalid("journey", e.to_string()))?;
        def.validate(|c| self.channel_purpose(c))?;
        if !self.purposes().keys().any(|p| p.as_str() == def.purpose) {
            return Err(AppError::UnknownPurpose(def.purpose.clone()));
        }
        let Trigger::Event { event } = &def.trigger else {
            unreachable!("validate admits event triggers only");
        };
        let now = self.now();
        let body = serde_json::to_string(&def)
            .map_err(|e| AppError::Internal(format!("journey `{}` as JSON: {e}", def.id)))?;
        let row = JourneyRow {
            id: def.id.clone(),
            body,
            trigger_event: event.clone(),
            active: true,
            created_at: now,
            updated_at: now,
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::JourneyDefine,
            &def.id,
            json!({"name": def.name, "trigger": def.trigger, "steps": def.steps.len()}),
        );
        self.store.save_journey(&row, &audit).await?;
        self.reload_journeys().await?;
        Ok(JourneyInfo {
            definition: def,
            active: true,
            created_at: now,
            updated_at: now,
        })
    }

    /// Installs the journeys of `journeys.file`, if configured. An invalid journey stops the
    /// start, naming the journey and its faulty step.
    pub(crate) async fn install_configured_journeys(&self) -> Result<()> {
        let Some(path) = &self.config.journeys.file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::invalid("journeys.file", format!("{}: {e}", path.display())))?;
        let file: JourneyFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .map_err(|e| AppError::invalid("journeys.file", e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| AppError::invalid("journeys.file", e.to_string()))?
        };
        for (i, j) in file.journeys.into_iter().enumerate() {
            self.define_journey("config", j)
                .await
                .map_err(|e| match e {
                    AppError::Invalid { field, reason } => {
                        AppError::invalid(format!("journeys.file: journey {i}: {field}"), reason)
                    }
                    e => e,
                })?;
        }
        Ok(())
    }

    pub async fn journeys(&self) -> Result<Vec<JourneyInfo>> {
        self.store
            .journeys()
            .await?
            .into_iter()
            .map(|r| {
                Ok(JourneyInfo {
                    definition: serde_json::from_str(&r.body).map_err(|e| {
                        AppError::Internal(format!("stored journey `{}` unreadable: {e}", r.id))
                    })?,
                    active: r.active,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect()
    }

    /// Re-reads the active definitions; at start, after a change, and on another node's notice.
    pub(crate) async fn reload_journeys(&self) -> Result<()> {
        let active = self
            .journeys()
            .await?
            .into_iter()
            .filter(|j| j.active)
            .map(|j| Arc::new(j.definition))
            .collect();
        *self.journeys.active.write().expect("journeys lock") = Arc::new(active);
        Ok(())
    }

    /// After an ingest commit: identified subjects whose stored track events trigger a journey
    /// enter it; those whose events are a journey's exit leave it. `user_ids[i]` is the id the
    /// i-th message of the batch named. Failures are logged, never the ingest's: the events
    /// are stored already.
    pub(crate) async fn note_journey_events(
        &self,
        batch: &IngestBatch,
        user_ids: &[Option<&str>],
        result: &IngestResult,
    ) {
        let active = self.active_journeys();
        if active.is_empty() {
            return;
        }
        let mut entries = Vec::new();
        let mut exits = Vec::new();
        let stored = batch
            .messages
            .iter()
            .zip(user_ids)
            .zip(result.duplicate.iter().zip(&result.suppressed))
            .filter(|(_, (dup, blocked))| !**dup && !**blocked);
        for ((m, user_id), _) in stored {
            let (Some(e), Some(user_id)) = (&m.event, user_id) else {
                continue;
            };
            if e.kind != "track" || e.anonymous {
                continue;
            }
            for j in active.iter() {
                if j.exits.iter().any(|Exit::Event { event }| *event == e.name) {
                    exits.push((j.id.clone(), e.subject_key.clone()));
                } else if matches!(&j.trigger, Trigger::Event { event } if *event == e.name) {
                    entries.push((j.id.clone(), e.subject_key.clone(), *user_id));
                }
            }
        }
        let now = self.now();
        let mut sealed = Vec::with_capacity(entries.len());
        for (journey, subject, user_id) in entries {
            let Ok(key) = SubjectKey::parse(&subject) else {
                continue;
            };
            match self.seal_external_id(&key, user_id).await {
                Ok(s) => sealed.push((journey, subject, Some(s))),
                Err(e) => {
                    tracing::warn!(subject = %subject, error = %e, "journey entry: sealing the id failed")
                }
            }
        }
        if let Err(e) = self.store.enter_journeys(&sealed, now).await {
            tracing::warn!(error = %e, "entering journeys failed");
        }
        if let Err(e) = self.store.exit_journeys(&exits, now).await {
            tracing::warn!(error = %e, "leaving journeys failed");
        }
    }

    /// Sets the IANA time zone a person's calendar days and quiet hours are counted in.
    pub async fn set_time_zone(&self, subject: &SubjectKey, zone: &str) -> Result<()> {
        if zone.len() > 64 || jiff::tz::TimeZone::get(zone).is_err() {
            return Err(AppError::invalid(
                "time_zone",
                format!("`{zone}` is not an IANA time zone such as Europe/Berlin"),
            ));
        }
        self.store
            .set_time_zone(subject.as_str(), zone, self.now())
            .await?;
        Ok(())
    }
}

impl App {
    /// A journey's messages (sent, deferred, suppressed, with reasons), newest first; of one
    /// subject when given.
    pub async fn journey_messages(
        &self,
        journey: &str,
        subject: Option<&SubjectKey>,
        limit: i64,
    ) -> Result<Vec<candor_store::JourneyMessage>> {
        if !self.store.journeys().await?.iter().any(|j| j.id == journey) {
            return Err(AppError::NotFound {
                what: "journey",
                id: journey.to_owned(),
            });
        }
        Ok(self
            .store
            .journey_messages(
                journey,
                subject.map(SubjectKey::as_str),
                limit.clamp(1, 1000),
            )
            .await?)
    }
}
