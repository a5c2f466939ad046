//! Storing ingested messages.
//!
//! Invariants:
//! - A batch is one transaction: its message ids are claimed first (`messages_seen`), and only
//!   the rows of messages that were new are written, so a retried batch stores nothing twice and
//!   a failed batch stores nothing at all.
//! - Contact values arrive here already sealed; this module never sees plaintext identifiers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use candor_domain::{AuditDraft, Micros};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::writer::{Done, Job};
use crate::{Backend, Result, Store, StoreError};

/// A behavioral event row, already minimized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub subject_key: String,
    pub anonymous: bool,
    pub kind: String,
    pub name: String,
    pub item_id: String,
    pub category: String,
    pub purpose: String,
    /// Kept properties as JSON; contact values inside are sealed.
    pub properties: String,
    pub at: Micros,
}

/// Everything one new message writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedMessage {
    pub message_id: String,
    pub event: Option<NewEvent>,
    /// (subject, field, sealed hex)
    pub contacts: Vec<(String, String, String)>,
    /// (subject, attribute, value), for fairness audits only.
    pub protected: Vec<(String, String, String)>,
    /// (subject, inventory key, sealed payload hex)
    pub quarantine: Option<(String, String, String)>,
    /// (anonymous key, known subject key, purposes the known subject allows)
    pub link: Option<(String, String, Vec<String>)>,
}

impl PreparedMessage {
    /// Every subject whose data this message would write.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        let event = self.event.iter().map(|e| e.subject_key.as_str());
        let contacts = self.contacts.iter().map(|(s, _, _)| s.as_str());
        let protected = self.protected.iter().map(|(s, _, _)| s.as_str());
        let quarantine = self.quarantine.iter().map(|(s, _, _)| s.as_str());
        let link = self
            .link
            .iter()
            .flat_map(|(anon, known, _)| [anon.as_str(), known.as_str()]);
        event
            .chain(contacts)
            .chain(protected)
            .chain(quarantine)
            .chain(link)
    }
}

/// The messages of one request, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestBatch {
    pub messages: Vec<PreparedMessage>,
    pub received_at: Micros,
}

/// Per message of the batch, in order: `duplicate` if it had been seen before (in an earlier
/// request or earlier in this batch) and was skipped; `suppressed` if it was new but is about
/// a subject on the suppression list (erased with suppress), so nothing of it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestResult {
    pub duplicate: Vec<bool>,
    pub suppressed: Vec<bool>,
}

/// Rows per multi-row INSERT; keeps every statement well under both backends' parameter limits.
pub(crate) const CHUNK: usize = 100;

/// `$1, $2, ..` (or `?, ?, ..` on SQLite) for an `IN (..)` list.
pub(crate) fn in_list(backend: Backend, n: usize) -> String {
    let row = placeholders(backend, 1, n);
    row[1..row.len() - 1].to_owned()
}

/// `(..),(..)` for a multi-row statement. SQLite gets anonymous `?` parameters: sqlx binds a
/// named one (`$n`) by looking its name up, which SQLite answers by scanning the statement's
/// parameter list, so a 1,200-parameter INSERT spent most of its binding time in that scan.
pub(crate) fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// A multi-row INSERT whose text is written once for both backends and for any row count.
pub(crate) struct Insert {
    head: &'static str,
    cols: usize,
    tail: &'static str,
}

impl Insert {
    pub(crate) fn sql(&self, backend: Backend, rows: usize) -> String {
        format!(
            "{} VALUES {}{}",
            self.head,
            placeholders(backend, rows, self.cols),
            self.tail
        )
    }
}

pub(crate) const DATA_KEY: Insert = Insert {
    head: "INSERT INTO subject_data_keys (subject_key, wrapped, created_at)",
    cols: 3,
    tail: " ON CONFLICT (subject_key) DO NOTHING",
};
pub(crate) const CLAIM: Insert = Insert {
    head: "INSERT INTO messages_seen (message_id, received_at)",
    cols: 2,
    tail: " ON CONFLICT (message_id) DO NOTHING",
};
/// SQLite's subject index (`sqlite_writer`); an entry may already be there (a pass over the
/// table added it).
pub(crate) const ENTRY: Insert = Insert {
    head: "INSERT INTO event_subjects (subject_key, at, event_id)",
    cols: 3,
    tail: " ON CONFLICT DO NOTHING",
};
pub(crate) const EVENT: Insert = Insert {
    head: "INSERT INTO events (subject_key, kind, item_id, quantity, at, message_id, name, category, purpose, properties, received_at, anonymous)",
    cols: 12,
    tail: "",
};
pub(crate) const CONTACT: Insert = Insert {
    head: "INSERT INTO contact_fields (subject_key, field, sealed, updated_at)",
    cols: 4,
    tail: " ON CONFLICT (subject_key, field) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
};
pub(crate) const PROTECTED: Insert = Insert {
    head: "INSERT INTO protected_attributes (subject_key, attribute, value)",
    cols: 3,
    tail: " ON CONFLICT (subject_key, attribute) DO UPDATE SET value = excluded.value",
};
pub(crate) const QUARANTINE: Insert = Insert {
    head: "INSERT INTO quarantined_events (message_id, subject_key, inventory_key, sealed_payload, received_at)",
    cols: 5,
    tail: "",
};
pub(crate) const LINK: Insert = Insert {
    head: "INSERT INTO identity_links (anonymous_key, subject_key, at)",
    cols: 3,
    tail: " ON CONFLICT (anonymous_key, subject_key) DO NOTHING",
};
/// Session data joins the profile only for purposes the known person allows; the rest stays
/// session-scoped until the anonymous retention removes it.
pub(crate) const LINK_EVENTS: &str = "UPDATE events SET subject_key = $1, anonymous = 0 \
     WHERE id IN (SELECT event_id FROM event_subjects WHERE subject_key = $2) \
     AND subject_key = $2 AND anonymous = 1 AND purpose = $3";

/// (subject, wrapped candidate key, offered at)
pub(crate) type OfferedKey<'j> = (&'j str, &'j str, Micros);

/// The data keys a group offers: the first candidate per subject, in subject order. A
/// suppressed subject gets no key: nothing of theirs will be sealed again.
pub(crate) fn offered_keys<'j>(jobs: &'j [Job], suppressed: &HashSet<&str>) -> Vec<OfferedKey<'j>> {
    let mut offered: BTreeMap<&str, (&str, Micros)> = BTreeMap::new();
    for job in jobs {
        if let Job::DataKeys(keys, at) = job {
            for (subject, wrapped) in keys {
                if !suppressed.contains(subject.as_str()) {
                    offered.entry(subject).or_insert((wrapped, *at));
                }
            }
        }
    }
    offered.into_iter().map(|(s, (w, at))| (s, w, at)).collect()
}

/// Every subject a group would write for (messages and data keys), sorted, each once: what is
/// checked against the suppression list inside the group's transaction.
pub(crate) fn group_subjects(jobs: &[Job]) -> Vec<&str> {
    let mut subjects: Vec<&str> = Vec::new();
    for job in jobs {
        match job {
            Job::Ingest(b) => subjects.extend(b.messages.iter().flat_map(|m| m.subjects())),
            Job::DataKeys(keys, _) => subjects.extend(keys.iter().map(|(s, _)| s.as_str())),
            Job::IndexEvents => {}
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

/// Whether anyone is on the suppression list at all: the common answer is no, and then a
/// group pays one lookup instead of one per subject.
/// (A count of at most one row, so both backends answer a BIGINT.)
pub(crate) const ANY_SUPPRESSED: &str =
    "SELECT COUNT(*) AS n FROM (SELECT 1 FROM suppressed_subjects LIMIT 1) s";

fn batches(jobs: &[Job]) -> impl Iterator<Item = &IngestBatch> + Clone {
    jobs.iter().filter_map(|j| match j {
        Job::Ingest(b) => Some(b.as_ref()),
        Job::DataKeys(..) | Job::IndexEvents => None,
    })
}

/// The message ids a group claims, each once, in key order (so concurrent groups on
/// PostgreSQL cannot deadlock each other).
pub(crate) fn claims(jobs: &[Job]) -> Vec<(&str, Micros)> {
    let mut claim: Vec<(&str, Micros)> = batches(jobs)
        .flat_map(|b| {
            b.messages
                .iter()
                .map(|m| (m.message_id.as_str(), b.received_at))
        })
        .collect();
    claim.sort_by_key(|(id, _)| *id);
    claim.dedup_by_key(|(id, _)| *id);
    claim
}

/// The messages to write given the ids that were newly claimed and the suppressed subjects,
/// and per batch what happened to each message. A message id repeated in the group counts once:
/// the first occurrence wins. A new message about a suppressed subject writes nothing.
pub(crate) fn split_fresh<'j>(
    jobs: &'j [Job],
    mut claimed: HashSet<&str>,
    suppressed: &HashSet<&str>,
) -> (Vec<(&'j PreparedMessage, Micros)>, Vec<IngestResult>) {
    let mut fresh = Vec::new();
    let mut results = Vec::new();
    for b in batches(jobs) {
        let mut r = IngestResult {
            duplicate: Vec::with_capacity(b.messages.len()),
            suppressed: Vec::with_capacity(b.messages.len()),
        };
        for m in &b.messages {
            let new = claimed.remove(m.message_id.as_str());
            let blocked =
                new && !suppressed.is_empty() && m.subjects().any(|s| suppressed.contains(s));
            if new && !blocked {
                fresh.push((m, b.received_at));
            }
            r.duplicate.push(!new);
            r.suppressed.push(blocked);
        }
        results.push(r);
    }
    (fresh, results)
}

/// Each job's answer, in order. A data key asked for a suppressed subject is `None`.
pub(crate) fn answers(
    jobs: &[Job],
    results: Vec<IngestResult>,
    stored_keys: &HashMap<&str, String>,
) -> Vec<Done> {
    let mut results = results.into_iter();
    jobs.iter()
        .map(|j| match j {
            Job::Ingest(_) => Done::Ingest(results.next().expect("one per batch")),
            Job::DataKeys(asked, _) => Done::DataKeys(
                asked
                    .iter()
                    .map(|(subject, _)| stored_keys.get(subject.as_str()).cloned())
                    .collect(),
            ),
            Job::IndexEvents => Done::Indexed,
        })
        .collect()
}

/// ((subject, field), (sealed, updated at))
pub(crate) type ContactRow<'m> = ((&'m str, &'m str), (&'m str, Micros));

/// Contact fields to upsert: later messages override earlier ones, and one row per key keeps
/// a multi-row upsert legal on PostgreSQL, which refuses to update a row twice in a statement.
pub(crate) fn latest_contacts<'m>(fresh: &[(&'m PreparedMessage, Micros)]) -> Vec<ContactRow<'m>> {
    let mut contacts = BTreeMap::new();
    for (m, at) in fresh {
        for (subject, field, sealed) in &m.contacts {
            contacts.insert((subject.as_str(), field.as_str()), (sealed.as_str(), *at));
        }
    }
    contacts.into_iter().collect()
}

/// Protected attributes to upsert, one row per key as for `latest_contacts`.
pub(crate) fn latest_protected<'m>(
    fresh: &[(&'m PreparedMessage, Micros)],
) -> Vec<((&'m str, &'m str), &'m str)> {
    let mut protected = BTreeMap::new();
    for (m, _) in fresh {
        for (subject, attribute, value) in &m.protected {
            protected.insert((subject.as_str(), attribute.as_str()), value.as_str());
        }
    }
    protected.into_iter().collect()
}

impl Store {
    /// Writes a batch atomically; see the module invariants. Concurrent batches share a
    /// transaction (`writer`), and one that lost a deadlock or found the database busy is
    /// retried.
    pub async fn ingest(&self, batch: Arc<IngestBatch>) -> Result<IngestResult> {
        match self.submit(Job::Ingest(batch)).await? {
            Done::Ingest(r) => Ok(r),
            _ => unreachable!("an ingest job is answered with its result"),
        }
    }

    /// The wrapped data keys of subjects, creating each from its candidate if it has none yet.
    /// Returns the stored keys in the order asked, so concurrent creators (other requests, other
    /// nodes) converge on a single key per subject.
    /// A subject's wrapped data key if one exists (never creates one): for reading what was
    /// sealed, where a missing key means the sealed values are gone for good.
    pub async fn wrapped_data_key(&self, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT wrapped FROM subject_data_keys WHERE subject_key = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("wrapped")).transpose()?)
    }

    /// `None` for a subject on the suppression list, who gets no key.
    pub async fn data_keys(
        &self,
        candidates: Vec<(String, String)>,
        at: Micros,
    ) -> Result<Vec<Option<String>>> {
        match self.submit(Job::DataKeys(candidates, at)).await? {
            Done::DataKeys(k) => Ok(k),
            _ => unreachable!("a data key job is answered with its keys"),
        }
    }

    /// Writes jobs in one transaction on PostgreSQL and answers each, in order.
    pub(crate) async fn write_jobs_in(
        &self,
        mut tx: Transaction<'_, Any>,
        jobs: &[Job],
    ) -> Result<Vec<Done>> {
        // Shared with every other ingest transaction, exclusive to an erasure: a group either
        // commits before an erasure starts (and the erasure removes what it wrote) or reads
        // the suppression list after the erasure committed.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(crate::rights::ERASURE_LOCK)
            .execute(&mut *tx)
            .await?;
        let suppressed = self.suppressed_in(&mut tx, group_subjects(jobs)).await?;
        let stored_keys = self
            .write_data_keys(&mut tx, offered_keys(jobs, &suppressed))
            .await?;
        let claimed = self.claim_messages(&mut tx, claims(jobs)).await?;
        let (fresh, results) = split_fresh(jobs, claimed, &suppressed);
        self.write_messages(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(answers(jobs, results, &stored_keys))
    }

    /// Which of `subjects` are on the suppression list, read inside the group's transaction.
    async fn suppressed_in<'j>(
        &self,
        tx: &mut Transaction<'_, Any>,
        subjects: Vec<&'j str>,
    ) -> Result<HashSet<&'j str>> {
        let mut found = HashSet::new();
        let any: i64 = sqlx::query(ANY_SUPPRESSED)
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
        if any == 0 {
            return Ok(found);
        }
        for chunk in subjects.chunks(CHUNK) {
            let sql = format!(
                "SELECT subject_key FROM suppressed_subjects WHERE subject_key IN ({})",
                in_list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for s in chunk {
                q = q.bind(*s);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let key: String = row.try_get("subject_key")?;
                if let Some(s) = chunk.iter().find(|s| **s == key) {
                    found.insert(*s);
                }
            }
        }
        Ok(found)
    }

    async fn write_data_keys<'j>(
        &self,
        tx: &mut Transaction<'_, Any>,
        offered: Vec<OfferedKey<'j>>,
    ) -> Result<HashMap<&'j str, String>> {
        let mut stored = HashMap::with_capacity(offered.len());
        for chunk in offered.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(DATA_KEY.sql(self.backend, chunk.len())));
            for (subject, wrapped, at) in chunk {
                q = q.bind(*subject).bind(*wrapped).bind(*at);
            }
            q.execute(&mut **tx).await?;
            let sql = format!(
                "SELECT subject_key, wrapped FROM subject_data_keys WHERE subject_key IN ({})",
                in_list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (subject, _, _) in chunk {
                q = q.bind(*subject);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let subject: String = row.try_get("subject_key")?;
                let (key, _, _) = offered
                    .iter()
                    .find(|(s, _, _)| *s == subject)
                    .expect("only offered subjects are selected");
                stored.insert(*key, row.try_get("wrapped")?);
            }
        }
        Ok(stored)
    }

    /// Claims message ids and returns those that were new.
    async fn claim_messages<'m>(
        &self,
        tx: &mut Transaction<'_, Any>,
        claim: Vec<(&'m str, Micros)>,
    ) -> Result<HashSet<&'m str>> {
        let mut new_ids = HashSet::with_capacity(claim.len());
        for chunk in claim.chunks(CHUNK) {
            let sql = CLAIM.sql(self.backend, chunk.len()) + " RETURNING message_id";
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, at) in chunk {
                q = q.bind(*id).bind(*at);
            }
            let returned: HashSet<String> = q
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| r.try_get("message_id"))
                .collect::<std::result::Result<_, _>>()?;
            new_ids.extend(
                chunk
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| returned.contains(*id)),
            );
        }
        Ok(new_ids)
    }

    /// Writes the rows of new messages: events, contact fields, protected attributes,
    /// quarantine, identity links.
    async fn write_messages(
        &self,
        tx: &mut Transaction<'_, Any>,
        fresh: &[(&PreparedMessage, Micros)],
    ) -> Result<()> {
        let events: Vec<(&str, &NewEvent, Micros)> = fresh
            .iter()
            .filter_map(|(m, at)| m.event.as_ref().map(|e| (m.message_id.as_str(), e, *at)))
            .collect();
        for chunk in events.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(EVENT.sql(self.backend, chunk.len())));
            for (id, e, received_at) in chunk {
                q = q
                    .bind(&e.subject_key)
                    .bind(&e.kind)
                    .bind(&e.item_id)
                    .bind(1i64)
                    .bind(e.at)
                    .bind(*id)
                    .bind(&e.name)
                    .bind(&e.category)
                    .bind(&e.purpose)
                    .bind(&e.properties)
                    .bind(*received_at)
                    .bind(crate::bool_to_db(e.anonymous));
            }
            q.execute(&mut **tx).await?;
        }
        let contacts = latest_contacts(fresh);
        for chunk in contacts.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(CONTACT.sql(self.backend, chunk.len())));
            for ((subject, field), (sealed, at)) in chunk {
                q = q.bind(*subject).bind(*field).bind(*sealed).bind(*at);
            }
            q.execute(&mut **tx).await?;
        }
        let protected = latest_protected(fresh);
        for chunk in protected.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(PROTECTED.sql(self.backend, chunk.len())));
            for ((subject, attribute), value) in chunk {
                q = q.bind(*subject).bind(*attribute).bind(*value);
            }
            q.execute(&mut **tx).await?;
        }
        for (m, at) in fresh {
            if let Some((subject, key, sealed)) = &m.quarantine {
                sqlx::query(AssertSqlSafe(QUARANTINE.sql(self.backend, 1)))
                    .bind(&m.message_id)
                    .bind(subject)
                    .bind(key)
                    .bind(sealed)
                    .bind(*at)
                    .execute(&mut **tx)
                    .await?;
            }
            if let Some((anon, known, purposes)) = &m.link {
                link_in_tx(tx, anon, known, purposes, *at).await?;
            }
        }
        Ok(())
    }

    /// Adds to the tracking plan's live counters, in key order (so concurrent flushes from
    /// several nodes cannot deadlock).
    pub async fn add_inventory_counts(
        &self,
        counts: &BTreeMap<(String, String), i64>,
    ) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for ((key, counter), n) in counts {
            sqlx::query("INSERT INTO inventory_counts (event_key, counter, value) VALUES ($1, $2, $3) ON CONFLICT (event_key, counter) DO UPDATE SET value = inventory_counts.value + excluded.value")
                .bind(key)
                .bind(counter)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sealed contact fields of a subject: (field, sealed hex).
    pub async fn contact_fields(&self, subject: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT field, sealed FROM contact_fields WHERE subject_key = $1 ORDER BY field",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("field")?, r.try_get("sealed")?)))
            .collect()
    }

    /// Stored events of a subject, oldest first: (kind, name, category, purpose, properties, at).
    /// For tests that check what ingestion stored; product code reads events with permits.
    #[cfg(feature = "testing")]
    pub async fn subject_events(
        &self,
        subject: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, String, String, String, Micros)>> {
        let rows = self
            .subject_rows(subject, limit, |of_subject| {
                format!(
                    "SELECT e.kind, e.name, e.category, e.purpose, e.properties, e.at FROM events e \
                     WHERE {of_subject} ORDER BY e.at, e.id LIMIT $2"
                )
            })
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("kind")?,
                    r.try_get("name")?,
                    r.try_get("category")?,
                    r.try_get("purpose")?,
                    r.try_get("properties")?,
                    r.try_get("at")?,
                ))
            })
            .collect()
    }

    pub async fn quarantined_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM quarantined_events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn inventory_body(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM inventory WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("body").map_err(StoreError::from))
            .transpose()
    }

    /// Replaces the tracking plan, audited.
    pub async fn set_inventory(
        &self,
        body: &str,
        at: Micros,
        audit_draft: &AuditDraft,
    ) -> Result<()> {
        self.audited(
            at,
            body,
            |tx, body| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO inventory (id, body, updated_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at")
                        .bind(body)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            },
            |_| audit_draft,
            &["inventory".to_owned()],
        )
        .await?;
        Ok(())
    }

    /// Live counts: (event key, counter, value).
    pub async fn inventory_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT event_key, counter, value FROM inventory_counts ORDER BY event_key, counter",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("event_key")?,
                    r.try_get("counter")?,
                    r.try_get("value")?,
                ))
            })
            .collect()
    }
}

async fn link_in_tx(
    tx: &mut Transaction<'_, Any>,
    anon: &str,
    known: &str,
    purposes: &[String],
    at: Micros,
) -> Result<()> {
    let backend = Backend::of(tx);
    sqlx::query(AssertSqlSafe(LINK.sql(backend, 1)))
        .bind(anon)
        .bind(known)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    for p in purposes {
        sqlx::query(LINK_EVENTS)
            .bind(known)
            .bind(anon)
            .bind(p)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Subject key that anonymized rows carry: they still count in aggregates but belong to no one.
pub const ANONYMIZED: &str = "anonymized";

/// What one step of a retention pass does to the events it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionAction {
    Delete,
    /// Cut loose from the subject, properties dropped (kept for aggregates).
    Anonymize,
}

/// One rule applied at one cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionStep {
    pub category: String,
    pub cutoff: Micros,
    pub action: RetentionAction,
}

/// A whole retention pass, worked out by the caller from its rules and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPass {
    pub steps: Vec<RetentionStep>,
    /// Session data of visitors never linked to a known subject, received before this.
    pub anonymous_before: Micros,
    /// Message ids remembered for deduplication, received before this.
    pub message_ids_before: Micros,
    /// The node running the pass, named in its announcements.
    pub origin: u64,
}

/// What a pass removed: one count per step, in order, then the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    pub steps: Vec<u64>,
    pub anonymous_sessions_deleted: u64,
    pub message_ids_forgotten: u64,
}

impl Store {
    /// Runs a whole retention pass in one transaction with its audit entry (`draft` sees the
    /// counts) and its announcements to other nodes, so a pass is either done and recorded
    /// or not done at all.
    pub async fn run_retention(
        &self,
        pass: &RetentionPass,
        at: Micros,
        draft: impl FnOnce(&RetentionCounts) -> AuditDraft,
    ) -> Result<RetentionCounts> {
        let backend = self.backend;
        let mut notices: Vec<String> = pass
            .steps
            .iter()
            .map(|s| crate::changes::retention_notice(pass.origin, &s.category, s.cutoff))
            .collect();
        notices.push(crate::changes::retention_notice(
            pass.origin,
            "",
            pass.anonymous_before,
        ));
        let (counts, _) = self
            .audited(
                at,
                pass,
                |tx, pass| {
                    Box::pin(async move {
                        let mut counts = RetentionCounts::default();
                        for step in &pass.steps {
                            let n = match step.action {
                                RetentionAction::Delete => {
                                    retire_in_tx(tx, backend, "DELETE FROM events", "category = $1 AND at < $2", |q| {
                                        q.bind(step.category.clone()).bind(step.cutoff)
                                    })
                                    .await?
                                }
                                RetentionAction::Anonymize => {
                                    retire_in_tx(
                                        tx,
                                        backend,
                                        "UPDATE events SET subject_key = $3, properties = '{}', message_id = NULL",
                                        "category = $1 AND at < $2 AND subject_key <> $3",
                                        |q| {
                                            q.bind(step.category.clone())
                                                .bind(step.cutoff)
                                                .bind(ANONYMIZED.to_owned())
                                        },
                                    )
                                    .await?
                                }
                            };
                            counts.steps.push(n);
                        }
                        counts.anonymous_sessions_deleted = retire_in_tx(
                            tx,
                            backend,
                            "DELETE FROM events",
                            "anonymous = 1 AND received_at < $1",
                            |q| q.bind(pass.anonymous_before),
                        )
                        .await?;
                        counts.message_ids_forgotten =
                            sqlx::query("DELETE FROM messages_seen WHERE received_at < $1")
                                .bind(pass.message_ids_before)
                                .execute(&mut **tx)
                                .await?
                                .rows_affected();
                        Ok(counts)
                    })
                },
                draft,
                &notices,
            )
            .await?;
        Ok(counts)
    }
}
/// Runs `change WHERE filter` on events inside `tx` with, on SQLite, the removal of the rows'
/// subject-index entries, so no pseudonymous key is left pointing at events that are gone or
/// no longer its own. (PostgreSQL's index is maintained by the database.)
async fn retire_in_tx<'q>(
    tx: &mut sqlx::Transaction<'static, Any>,
    backend: Backend,
    change: &str,
    filter: &str,
    bind: impl Fn(
        sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
) -> Result<u64> {
    if backend == Backend::Sqlite {
        let sql = format!(
            "DELETE FROM event_subjects WHERE (subject_key, at, event_id) IN \
             (SELECT subject_key, at, id FROM events WHERE {filter})"
        );
        bind(sqlx::query(AssertSqlSafe(sql)))
            .execute(&mut **tx)
            .await?;
    }
    let r = bind(sqlx::query(AssertSqlSafe(format!(
        "{change} WHERE {filter}"
    ))))
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}
