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
    Inventory,
    /// The active model changed.
    Model,
    /// A subject's preferences changed.
    Preferences(String),
    /// Notifications may have been missed: refresh all caches.
    Resync,
}

fn parse(payload: &str) -> Option<Change> {
    match payload {
        "purposes" => Some(Change::Purposes),
        "inventory" => Some(Change::Inventory),
        "model" => Some(Change::Model),
        "keys" => Some(Change::Keys),
        other => other
            .strip_prefix("consent:")
            .map(|k| Change::Consent(k.to_owned()))
            .or_else(|| {
                other
                    .strip_prefix("prefs:")
                    .map(|k| Change::Preferences(k.to_owned()))
            }),
    }
}

impl Store {
    /// Announces many changes inside the transaction that made them (PostgreSQL only), one
    /// statement per chunk instead of one per change.
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
        assert_eq!(parse("consent:ab"), Some(Change::Consent("ab".into())));
        assert_eq!(parse("other"), None);
    }
}
