//! Cross-node change notifications.
//!
//! Invariant: a node either receives every change committed by other nodes, or is told `Resync`
//! (the connection dropped and notifications may have been lost) and must refresh everything it
//! caches. There is no silent gap.

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use crate::{Backend, CHANGE_CHANNEL, Result, Store};

/// What another node changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The consent history of this subject key grew.
    Consent(String),
    Purposes,
    Keys,
    /// A webhook was created or deactivated.
    Webhooks,
    /// Journey definitions changed.
    Journeys,
    Inventory,
    /// The active model changed.
    Model,
    /// An alert was raised, escalated or cleared (scale-backs changed).
    Alerts,
    /// A subject's preferences changed.
    Preferences(String),
    /// A subject was erased: forget everything cached about them.
    Erased(String),
    /// Node `origin` stored item events of these subjects, or linked a session to them
    /// (announced right after its commit, see [`Store::announce_histories`]).
    Histories {
        origin: u64,
        subjects: Vec<String>,
    },
    /// Node `origin`'s retention pass removed `category` events before `cutoff`; an empty
    /// category means anonymous session data.
    Retention {
        origin: u64,
        category: String,
        cutoff: candor_domain::Micros,
    },
    /// Notifications may have been missed: refresh all caches.
    Resync,
}

/// The notice of a retention pass by node `origin` over `category` before `cutoff`.
pub(crate) fn retention_notice(
    origin: u64,
    category: &str,
    cutoff: candor_domain::Micros,
) -> String {
    format!("retention:{origin:x}:{cutoff}:{category}")
}

/// Longest payload PostgreSQL accepts is 8000 bytes; history announcements stay below it.
const MAX_PAYLOAD: usize = 7900;

fn parse(payload: &str) -> Option<Change> {
    if let Some(rest) = payload.strip_prefix("history:") {
        let (origin, keys) = rest.split_once(':')?;
        return Some(Change::Histories {
            origin: u64::from_str_radix(origin, 16).ok()?,
            subjects: keys.split(',').map(str::to_owned).collect(),
        });
    }
    if let Some(rest) = payload.strip_prefix("retention:") {
        let mut parts = rest.splitn(3, ':');
        let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
        let cutoff = parts.next()?.parse().ok()?;
        return Some(Change::Retention {
            origin,
            cutoff,
            category: parts.next()?.to_owned(),
        });
    }
    match payload {
        "purposes" => Some(Change::Purposes),
        "inventory" => Some(Change::Inventory),
        "model" => Some(Change::Model),
        "alerts" => Some(Change::Alerts),
        "keys" => Some(Change::Keys),
        "webhooks" => Some(Change::Webhooks),
        "journeys" => Some(Change::Journeys),
        other => other
            .strip_prefix("consent:")
            .map(|k| Change::Consent(k.to_owned()))
            .or_else(|| {
                other
                    .strip_prefix("prefs:")
                    .map(|k| Change::Preferences(k.to_owned()))
            })
            .or_else(|| {
                other
                    .strip_prefix("erased:")
                    .map(|k| Change::Erased(k.to_owned()))
            }),
    }
}

impl Store {
    /// Announces many changes inside the transaction that made them (PostgreSQL only: an
    /// embedded SQLite store has exactly one node), one statement per chunk instead of one per
    /// change. Audited changes pass theirs to [`Store::audited`] as its notices.
    pub(crate) async fn notify_many(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        payloads: &[String],
    ) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        for chunk in payloads.chunks(crate::ingest::CHUNK) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${})", i + 2)).collect();
            let sql = format!(
                "SELECT pg_notify($1, t.v) FROM (VALUES {}) AS t(v)",
                values.join(",")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(CHANGE_CHANNEL);
            for p in chunk {
                q = q.bind(p);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Tells other nodes (PostgreSQL only) that node `origin` just committed item events of, or
    /// links to, these subjects, so that they drop what they hold of their histories. Sent after
    /// the commit, not inside it (the ingest transaction is shared by many requests): a node
    /// that stops between the two leaves the others to `recommend.history_cache_ttl_ms`.
    pub async fn announce_histories(&self, origin: u64, subjects: &[String]) -> Result<()> {
        if self.backend != Backend::Postgres || subjects.is_empty() {
            return Ok(());
        }
        let mut payloads = Vec::new();
        let mut current = String::new();
        for s in subjects {
            if !current.is_empty() && current.len() + s.len() + 1 > MAX_PAYLOAD {
                payloads.push(std::mem::take(&mut current));
            }
            if current.is_empty() {
                current = format!("history:{origin:x}:{s}");
            } else {
                current.push(',');
                current.push_str(s);
            }
        }
        payloads.push(current);
        let mut tx = self.pool.begin().await?;
        self.notify_many(&mut tx, &payloads).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts listening for changes made by other nodes. On SQLite (one node) the channel stays
    /// open and silent.
    pub async fn listen_changes(&self) -> Result<mpsc::Receiver<Change>> {
        let (tx, rx) = mpsc::channel(1024);
        if self.backend != Backend::Postgres {
            tokio::spawn(async move { tx.closed().await });
            return Ok(rx);
        }
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANGE_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                // try_recv yields Ok(None) when the connection was lost; the next call reconnects.
                let change = match listener.try_recv().await {
                    Ok(Some(n)) => match parse(n.payload()) {
                        Some(c) => c,
                        None => continue,
                    },
                    Ok(None) => Change::Resync,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener error; resyncing");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        Change::Resync
                    }
                };
                if tx.send(change).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(parse("keys"), Some(Change::Keys));
        assert_eq!(parse("webhooks"), Some(Change::Webhooks));
        assert_eq!(parse("journeys"), Some(Change::Journeys));
        assert_eq!(parse("consent:ab"), Some(Change::Consent("ab".into())));
        assert_eq!(parse("other"), None);
        assert_eq!(
            parse("history:1f:ab,cd"),
            Some(Change::Histories {
                origin: 31,
                subjects: vec!["ab".into(), "cd".into()]
            })
        );
        assert_eq!(
            parse("retention:a:-5:sensitive:health"),
            Some(Change::Retention {
                origin: 10,
                cutoff: -5,
                category: "sensitive:health".into()
            })
        );
        assert_eq!(
            parse("retention:a:7:"),
            Some(Change::Retention {
                origin: 10,
                cutoff: 7,
                category: String::new()
            })
        );
        assert_eq!(parse("history:zz:ab"), None);
    }
}
