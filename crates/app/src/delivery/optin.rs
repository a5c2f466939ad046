//! Double opt-in for email: a confirmation message with a one-time token, and its confirmation,
//! which records the email purpose's grant with the token's hash as proof.
//!
//! Invariants: only the token's SHA-256 is stored; a token confirms once, before it expires;
//! the confirmation message goes through the message outbox (signed webhook) in the same
//! transaction as the pending confirmation; the grant is an ordinary consent record (audited,
//! announced, effective on the next request), whose proof says `double_opt_in:sha256:<hex>`.

use candor_domain::SubjectKey;
use candor_store::OutboxEvent;
use serde_json::json;
use sha2::Digest;

use crate::consent::ConsentRequest;
use crate::{App, AppError, Result};

/// A confirmation on its way: when its token stops working.
#[derive(Debug, Clone)]
pub struct PendingConfirmation {
    pub purpose: String,
    pub expires_at: candor_domain::Micros,
}

fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl App {
    /// The purpose email messages need (`journeys.channel_purposes.email`), declared.
    fn email_purpose(&self) -> Result<String> {
        self.channel_purpose("email").ok_or_else(|| {
            AppError::invalid(
                "journeys.channel_purposes.email",
                "email has no declared consent purpose; declare it first",
            )
        })
    }

    /// Sends `external_id` a confirmation message (template `double_opt_in`, with a one-time
    /// token) through the message webhooks.
    pub async fn request_email_confirmation(
        &self,
        subject: &SubjectKey,
        external_id: &str,
    ) -> Result<PendingConfirmation> {
        let purpose = self.email_purpose()?;
        if !self
            .store
            .list_webhooks()
            .await?
            .iter()
            .any(|w| w.active && w.kind == "messages")
        {
            return Err(AppError::invalid(
                "webhooks",
                "no active webhook of kind `messages` would deliver the confirmation",
            ));
        }
        let now = self.now();
        let expires_at =
            now + i64::from(self.config.journeys.confirmation_ttl_hours) * 3_600_000_000;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let id = crate::new_id("msg");
        let payload = json!({
            "id": id,
            "type": "message.send",
            "created_at": candor_domain::format_micros(now),
            "channel": "email",
            "template": "double_opt_in",
            "token": token,
            "purpose": purpose,
            "reasons": ["You asked for our emails: confirm this address to start them"],
            "expires_at": candor_domain::format_micros(expires_at),
            "subject_key": subject,
        });
        let event = OutboxEvent {
            id,
            event_type: "message.send".into(),
            payload: payload.to_string(),
            sealed_external_id: Some(self.seal_external_id(subject, external_id).await?),
            subject_key: Some(subject.to_string()),
        };
        self.store
            .create_email_confirmation(
                &token_hash(&token),
                subject.as_str(),
                now,
                expires_at,
                &event,
            )
            .await?;
        Ok(PendingConfirmation {
            purpose,
            expires_at,
        })
    }

    /// Confirms a token: records the email purpose's grant for its subject, with the token's
    /// hash as proof. An unknown, used or expired token is `NotFound` (one answer for all).
    pub async fn confirm_email(
        &self,
        token: &str,
        ip: Option<std::net::IpAddr>,
        user_agent: Option<String>,
    ) -> Result<crate::ConsentOutcome> {
        let purpose = self.email_purpose()?;
        let hash = token_hash(token);
        let not_found = || AppError::NotFound {
            what: "confirmation",
            id: "token".into(),
        };
        if token.len() != 64 {
            return Err(not_found());
        }
        let subject = self
            .store
            .use_email_confirmation(&hash, self.now())
            .await?
            .ok_or_else(not_found)?;
        let subject = SubjectKey::parse(&subject)?;
        let req = ConsentRequest {
            external_id: None,
            changes: vec![(purpose, "granted".into())],
            source: "api".into(),
            user_agent: user_agent.map(|u| u.chars().take(512).collect()),
            double_opt_in_token: Some(format!("double_opt_in:sha256:{hash}")),
            notice_hash: None,
            ip,
            signals: Default::default(),
        };
        self.record_consents("double_opt_in", &subject, req).await
    }
}
