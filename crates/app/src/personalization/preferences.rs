//! A person's own settings: personalization level, declared interests, sensitive-category
//! opt-ins and quiet periods.
//!
//! Invariants: preferences are validated against the catalog (declared interests must exist,
//! sensitive opt-ins must name sensitive categories) before they are stored; every change is
//! audited in the same transaction and drops the cached copy, so the next answer sees it.

use std::sync::Arc;

use candor_domain::preferences::{PreferenceSource, Preferences, PreferencesPatch, QuietPeriod};
use candor_domain::{AuditDraft, SubjectKey};
use candor_store::PreferencesUpdate;
use serde_json::json;

use crate::{App, AppError, Result};

impl App {
    /// A subject's preferences (defaults for a subject who set none).
    pub async fn preferences(&self, subject: &SubjectKey) -> Result<Arc<Preferences>> {
        if let Some(p) = self
            .personalization
            .prefs
            .read()
            .expect("prefs lock")
            .get(subject.as_str())
        {
            return Ok(p.clone());
        }
        let mut prefs: Preferences = match self.store.preferences_body(subject.as_str()).await? {
            Some(body) => serde_json::from_str(&body)
                .map_err(|e| AppError::Internal(format!("stored preferences unreadable: {e}")))?,
            None => Preferences::default(),
        };
        if prefs.declared_interests.is_empty() {
            prefs.declared_interests = self.store.declared_interests(subject.as_str()).await?;
        }
        let prefs = Arc::new(prefs);
        let mut cache = self.personalization.prefs.write().expect("prefs lock");
        if cache.len() > 1_000_000 {
            cache.clear();
        }
        cache.insert(subject.as_str().to_owned(), prefs.clone());
        Ok(prefs)
    }

    pub(crate) fn invalidate_preferences(&self, subject: &str) {
        self.personalization
            .prefs
            .write()
            .expect("prefs lock")
            .remove(subject);
    }

    /// Replaces a subject's preferences after checking them against the catalog. `source` says
    /// where the person made the change; it is kept in the audit entry.
    pub async fn set_preferences(
        &self,
        actor: &str,
        subject: &SubjectKey,
        prefs: Preferences,
        source: PreferenceSource,
    ) -> Result<Arc<Preferences>> {
        self.set_preferences_bulk(actor, &[(subject.clone(), prefs)], source)
            .await?;
        self.preferences(subject).await
    }

    /// Changes only the fields `patch` names; the result is checked and audited exactly as
    /// [`App::set_preferences`] checks and audits a replacement.
    pub async fn update_preferences(
        &self,
        actor: &str,
        subject: &SubjectKey,
        patch: PreferencesPatch,
        source: PreferenceSource,
    ) -> Result<Arc<Preferences>> {
        let current = self.preferences(subject).await?;
        let next = patch.apply(&current);
        self.set_preferences(actor, subject, next, source).await
    }

    /// Replaces many subjects' preferences in one transaction (imports, benchmarks), each
    /// checked against the catalog and audited as [`App::set_preferences`] does; all or none.
    pub async fn set_preferences_bulk(
        &self,
        actor: &str,
        subjects: &[(SubjectKey, Preferences)],
        source: PreferenceSource,
    ) -> Result<()> {
        // The serving state holds the catalog's categories (reloaded whenever the catalog or the
        // model changes), so validation reads no table.
        let serving = self.serving();
        let mut updates = Vec::with_capacity(subjects.len());
        for (subject, prefs) in subjects {
            prefs.validate(
                |c| serving.category(c).is_some(),
                |c| serving.category(c) == Some(true),
            )?;
            updates.push(PreferencesUpdate {
                subject: subject.to_string(),
                body: serde_json::to_string(prefs)
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                interests: prefs.declared_interests.clone(),
                source: source.as_str().into(),
                audit: AuditDraft::new(
                    actor,
                    candor_domain::AuditAction::PreferencesUpdate,
                    subject.as_str(),
                    json!({"level": prefs.level, "source": source.as_str(), "declared_interests": prefs.declared_interests.len(), "sensitive_opt_ins": prefs.sensitive_opt_ins, "quiet_periods": prefs.quiet_periods.len()}),
                ),
            });
        }
        self.store
            .set_preferences_bulk(&updates, self.now())
            .await?;
        for (subject, _) in subjects {
            self.invalidate_preferences(subject.as_str());
        }
        Ok(())
    }
}

/// Parses a quiet period given as RFC 3339 strings; an error names `quiet_periods.from` or
/// `quiet_periods.until`.
pub fn quiet_period(from: &str, until: &str, label: Option<String>) -> Result<QuietPeriod> {
    let at = |field: &str, s: &str| {
        candor_domain::parse_rfc3339(s).map_err(|_| {
            AppError::invalid(
                format!("quiet_periods.{field}"),
                format!("`{s}` is not an RFC 3339 time"),
            )
        })
    };
    Ok(QuietPeriod {
        from: at("from", from)?,
        until: at("until", until)?,
        label,
    })
}
