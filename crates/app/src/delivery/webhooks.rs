//! Consent-change webhooks: registration and at-least-once delivery with backoff.
//!
//! Invariant: a delivery is marked delivered only after a 2xx answer; anything else is retried
//! with exponential backoff until `max_attempts`, and every attempt's result is kept in the
//! delivery log.

use candor_domain::AuditDraft;
use candor_domain::webhook::{retry_delay_secs, signature};
use candor_store::{Delivery, DeliveryOutcome, Webhook};
use serde_json::json;

use crate::{App, AppError, Result};

/// A new webhook; `secret` is shown once so the receiver can verify signatures.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    pub secret: String,
}

fn validate_url(url: &str) -> Result<()> {
    let ok_scheme = url.starts_with("http://") || url.starts_with("https://");
    let host = url.split("://").nth(1).unwrap_or("");
    if !ok_scheme
        || url.len() > 2048
        || host.is_empty()
        || host.starts_with('/')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AppError::invalid(
            "url",
            "must be an http:// or https:// URL of at most 2048 characters",
        ));
    }
    if host.split('/').next().is_some_and(|h| h.contains('@')) {
        return Err(AppError::invalid(
            "url",
            "must not carry credentials; verify the Candor-Signature header instead",
        ));
    }
    Ok(())
}

impl App {
    /// Registers a webhook. `kind` is `changes` (consent and subject changes), `audiences`
    /// (advertising audience syncs) or `messages`
    /// (journey messages, for the team's sender; they always carry the external id). With
    /// `include_external_id`, each delivery about one subject also carries the id the shop
    /// knows them by (sealed until the moment it is sent), so an email tool can act on it.
    pub async fn create_webhook(
        &self,
        actor: &str,
        url: &str,
        include_external_id: bool,
        kind: &str,
    ) -> Result<CreatedWebhook> {
        validate_url(url)?;
        if !["changes", "messages", "audiences"].contains(&kind) {
            return Err(AppError::invalid(
                "kind",
                format!("`{kind}` is not changes, messages or audiences"),
            ));
        }
        // A sender cannot send without knowing to whom.
        let include_external_id = include_external_id || kind == "messages";
        if url.starts_with("https://") {
            // This build's HTTP client is plain HTTP only; refuse rather than fail every delivery.
            return Err(AppError::invalid(
                "url",
                "https webhooks are not supported by this build yet; use an http:// endpoint on a trusted network",
            ));
        }
        let id = format!("wh_{}", hex::encode(rand::random::<[u8; 8]>()));
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>()));
        let hook = Webhook {
            id: id.clone(),
            url: url.to_owned(),
            secret: secret.clone(),
            active: true,
            created_at: self.now(),
            include_external_id,
            kind: kind.to_owned(),
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::WebhookCreate,
            &id,
            json!({"url": url, "include_external_id": include_external_id, "kind": kind}),
        );
        self.store.create_webhook(&hook, &audit).await?;
        self.reload_webhooks().await?;
        Ok(CreatedWebhook {
            id,
            url: url.to_owned(),
            secret,
        })
    }

    /// Re-reads which webhooks are active; called at start, after every local change and when
    /// another node announces one.
    pub(crate) async fn reload_webhooks(&self) -> Result<()> {
        let wants = self
            .store
            .list_webhooks()
            .await?
            .iter()
            .any(|w| w.active && w.include_external_id);
        self.delivery
            .wants_external_ids
            .store(wants, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether some active webhook takes the subject's external id.
    pub(crate) fn webhooks_want_external_ids(&self) -> bool {
        self.delivery
            .wants_external_ids
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.store.list_webhooks().await?)
    }

    pub async fn delete_webhook(&self, actor: &str, id: &str) -> Result<()> {
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::WebhookDelete,
            id,
            json!({}),
        );
        self.store
            .deactivate_webhook(id, self.now(), &audit)
            .await?;
        self.reload_webhooks().await
    }

    pub async fn webhook_deliveries(&self, id: &str, limit: i64) -> Result<Vec<Delivery>> {
        if !self.list_webhooks().await?.iter().any(|w| w.id == id) {
            return Err(AppError::NotFound {
                what: "webhook",
                id: id.to_owned(),
            });
        }
        Ok(self
            .store
            .webhook_deliveries(id, limit.clamp(1, 500))
            .await?)
    }

    /// Attempts every due delivery once. Returns how many were attempted.
    pub async fn deliver_due_webhooks(&self) -> Result<usize> {
        let due = self.store.due_deliveries(self.now(), 64).await?;
        for d in &due {
            let outcome = self.attempt(d).await;
            self.store
                .record_delivery(d.id, &outcome, self.now())
                .await?;
            let result = match &outcome {
                DeliveryOutcome::Delivered { .. } => "delivered",
                DeliveryOutcome::Retry { .. } => "retry",
                DeliveryOutcome::GaveUp { .. } => "failed",
            };
            metrics::counter!("candor_webhook_attempts_total", "result" => result).increment(1);
            // A journey message's row follows its delivery: a failed one no longer counts
            // against the person's frequency caps.
            if d.event_type.starts_with("message.") && result != "retry" {
                self.store
                    .message_delivery_outcome(&d.event_id, result == "delivered", self.now())
                    .await?;
            }
        }
        Ok(due.len())
    }

    /// The body of a delivery as sent: the stored payload, plus the subject's external id for
    /// a webhook that includes it, opened with the subject's data key just now. If the key is
    /// gone (the subject was erased), the id stays unreadable and the body says so.
    async fn body(&self, d: &Delivery) -> String {
        let Some(sealed) = &d.sealed_external_id else {
            return d.payload.clone();
        };
        let Ok(mut payload) = serde_json::from_str::<serde_json::Value>(&d.payload) else {
            return d.payload.clone();
        };
        let subject = payload["subject_key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let opened = self.open_external_id(&subject, sealed).await;
        if let Some(o) = payload.as_object_mut() {
            match opened {
                Some(id) => o.insert("external_id".into(), json!(id)),
                None => o.insert("external_id_unavailable".into(), json!(true)),
            };
        }
        payload.to_string()
    }

    async fn attempt(&self, d: &Delivery) -> DeliveryOutcome {
        let now = self.now();
        let body = self.body(d).await;
        let sig = signature(&d.secret, now / 1_000_000, body.as_bytes());
        let sent = self
            .delivery
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("candor-signature", sig)
            .header("candor-event-id", &d.event_id)
            .header("candor-event-type", &d.event_type)
            .body(body)
            .send()
            .await;
        let (code, error) = match sent {
            Ok(resp) if resp.status().is_success() => {
                return DeliveryOutcome::Delivered {
                    status_code: i64::from(resp.status().as_u16()),
                };
            }
            Ok(resp) => (
                Some(i64::from(resp.status().as_u16())),
                format!("receiver answered {}", resp.status()),
            ),
            Err(e) => (None, format!("request failed: {}", e.without_url())),
        };
        let attempt = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
        if attempt >= self.config.webhooks.max_attempts {
            return DeliveryOutcome::GaveUp {
                status_code: code,
                error,
            };
        }
        // Jitter spreads retries from many nodes so a recovering receiver is not stampeded.
        let base = retry_delay_secs(attempt) as i64 * 1_000_000;
        let jitter = (rand::random::<u32>() % 250_000) as i64;
        DeliveryOutcome::Retry {
            status_code: code,
            error,
            next_attempt_at: now + base + jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_checked() {
        assert!(super::validate_url("http://127.0.0.1:9000/hook").is_ok());
        for bad in [
            "ftp://x",
            "http://",
            "http:///x",
            "http://u:p@h/x",
            "http://h/ x",
            "",
        ] {
            assert!(super::validate_url(bad).is_err(), "{bad}");
        }
    }
}
