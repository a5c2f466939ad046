//! The store's contract, run against both backends.

use candor_domain::audit::ChainVerifier;
use candor_domain::{
    AuditDraft, ConsentDecision, ConsentProof, ConsentSource, ExternalId, NewConsent,
    Pseudonymizer, PurposeDraft, SubjectKey,
};
use candor_store::testing::TestDb;
use candor_store::{OutboxEvent, StoreError, Webhook, both_stores};
use serde_json::json;

fn purpose_draft(id: &str) -> PurposeDraft {
    PurposeDraft {
        id: id.into(),
        title: "Recommendations".into(),
        description: "Suggestions from what you browse.".into(),
        legal_basis: "consent".into(),
        categories: vec!["browsing".into()],
        ..Default::default()
    }
}

fn subject(id: &str) -> SubjectKey {
    Pseudonymizer::new(&[9u8; 32])
        .unwrap()
        .subject_key(&ExternalId::parse(id).unwrap())
}

/// Runs a retention pass of one step (or, with `step: None`, only the message-id window).
async fn retire(
    store: &candor_store::Store,
    step: Option<(candor_store::RetentionAction, &str, i64)>,
    message_ids_before: i64,
) -> candor_store::RetentionCounts {
    let pass = candor_store::RetentionPass {
        steps: step
            .into_iter()
            .map(|(action, category, cutoff)| candor_store::RetentionStep {
                category: category.into(),
                cutoff,
                action,
            })
            .collect(),
        anonymous_before: i64::MIN,
        message_ids_before,
        origin: 0,
    };
    store
        .run_retention(&pass, 1, |_| {
            audit(candor_domain::AuditAction::RetentionRun)
        })
        .await
        .unwrap()
}

fn audit(action: candor_domain::AuditAction) -> AuditDraft {
    AuditDraft::new("test", action, "t", json!({}))
}

both_stores!(purposes_consents_and_audit_chain, |db: TestDb| async move {
    let store = db.store().await.unwrap();
    let p = purpose_draft("personalization").validate().unwrap();
    store
        .create_purpose(&p, 1, &audit(candor_domain::AuditAction::PurposeCreate))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_purpose(&p, 2, &audit(candor_domain::AuditAction::PurposeCreate))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.list_purposes().await.unwrap(), vec![p.clone()]);

    store
        .create_webhook(
            &Webhook {
                id: "wh1".into(),
                url: "http://127.0.0.1:9/".into(),
                secret: "s".into(),
                active: true,
                created_at: 3,
                include_external_id: false,
                kind: "changes".into(),
            },
            &audit(candor_domain::AuditAction::WebhookCreate),
        )
        .await
        .unwrap();

    let alice = subject("alice");
    let grant = NewConsent {
        subject: alice.clone(),
        purpose: p.id.clone(),
        decision: ConsentDecision::Granted,
        at: 10,
        source: ConsentSource::Api,
        policy_version: 1,
        proof: ConsentProof {
            user_agent: Some("ua".into()),
            ..Default::default()
        },
    };
    let revoke = NewConsent {
        decision: ConsentDecision::Denied,
        at: 11,
        ..grant.clone()
    };
    let event = OutboxEvent {
        id: "e1".into(),
        event_type: "consent.changed".into(),
        payload: "{}".into(),
        sealed_external_id: None,
        subject_key: Some(alice.to_string()),
    };
    let stored = store
        .append_consents(
            &alice,
            &[grant, revoke],
            11,
            &audit(candor_domain::AuditAction::ConsentChange),
            Some(&event),
        )
        .await
        .unwrap();
    assert!(stored[0].seq < stored[1].seq);
    let history = store.consent_history(&alice).await.unwrap();
    assert_eq!(history, stored);
    assert!(
        store
            .consent_history(&subject("bob"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.due_deliveries(11, 10).await.unwrap().len(), 1);

    // A consent for an undeclared purpose is refused by the database and leaves nothing behind.
    let bad = NewConsent {
        purpose: candor_domain::PurposeId::parse("nope").unwrap(),
        ..stored_to_new(&stored[0])
    };
    assert!(
        store
            .append_consents(
                &alice,
                &[bad],
                12,
                &audit(candor_domain::AuditAction::ConsentChange),
                None
            )
            .await
            .is_err()
    );
    assert_eq!(store.consent_history(&alice).await.unwrap().len(), 2);

    let entries = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(
        entries.len(),
        3,
        "purpose, webhook and consent change; the failed append left no entry"
    );
    let mut v = ChainVerifier::default();
    for e in &entries {
        v.push(e).unwrap();
    }
    let (seq, hash) = store.audit_head().await.unwrap();
    assert_eq!(v.finish(seq, &hash), Ok(3));
    store.close().await;
});

fn stored_to_new(r: &candor_domain::ConsentRecord) -> NewConsent {
    NewConsent {
        subject: r.subject.clone(),
        purpose: r.purpose.clone(),
        decision: r.decision,
        at: r.at,
        source: r.source,
        policy_version: r.policy_version,
        proof: r.proof.clone(),
    }
}

both_stores!(
    concurrent_audit_appends_keep_one_chain,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.append_audit(i, &audit(candor_domain::AuditAction::ConsentChange))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let entries = store.audit_entries(0, 100).await.unwrap();
        let mut v = ChainVerifier::default();
        for e in &entries {
            v.push(e).unwrap();
        }
        let (seq, hash) = store.audit_head().await.unwrap();
        assert_eq!(v.finish(seq, &hash), Ok(16));
    }
);

/// The subject key tests call `name`.
fn k(name: &str) -> String {
    subject(name).to_string()
}

/// A purpose that may use browsing and purchases and needs no consent record (contract), so a
/// permit for it exists for anyone: tests of reads, not of consent.
fn reading_purpose() -> candor_domain::Purpose {
    PurposeDraft {
        id: "reads".into(),
        title: "Reads".into(),
        description: "Test reads of behavioural data.".into(),
        legal_basis: "contract".into(),
        categories: vec!["browsing".into(), "purchase".into()],
        ..Default::default()
    }
    .validate()
    .unwrap()
}

/// Subject `name`'s item events, read with a permit as serving reads them.
async fn item_events(
    store: &candor_store::Store,
    name: &str,
    limit: i64,
) -> Vec<candor_store::ItemEvent> {
    let (key, purpose) = (subject(name), reading_purpose());
    let permit = candor_domain::SubjectConsents::default()
        .permit(&key, &purpose, 0)
        .unwrap();
    store.item_events(&permit, limit).await.unwrap()
}

fn ingest_batch(ids: &[&str], name: &str, at: i64) -> std::sync::Arc<candor_store::IngestBatch> {
    use candor_store::{IngestBatch, NewEvent, PreparedMessage};
    let subject = k(name);
    let subject = subject.as_str();
    std::sync::Arc::new(IngestBatch {
        received_at: at,
        messages: ids
            .iter()
            .map(|id| PreparedMessage {
                message_id: (*id).to_owned(),
                event: Some(NewEvent {
                    subject_key: subject.into(),
                    anonymous: false,
                    kind: "track".into(),
                    name: "Product Viewed".into(),
                    item_id: format!("item-{id}"),
                    category: "browsing".into(),
                    purpose: "personalization".into(),
                    properties: "{}".into(),
                    at,
                }),
                contacts: vec![(subject.into(), "ip".into(), format!("sealed-{id}"))],
                ..Default::default()
            })
            .collect(),
    })
}

both_stores!(
    concurrent_batches_share_transactions_and_store_each_message_once,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        // 40 requests at once, each with 50 ids, every id sent by two requests: exactly one of
        // the two stores it, the other is told it is a duplicate.
        let mut tasks = Vec::new();
        for r in 0..40u32 {
            let store = store.clone();
            let ids: Vec<String> = (0..50u32).map(|i| format!("m-{}-{i}", r / 2)).collect();
            tasks.push(tokio::spawn(async move {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                store
                    .ingest(ingest_batch(&ids, &format!("s{}", r % 7), 1_000))
                    .await
                    .unwrap()
            }));
        }
        let mut new = 0;
        for t in tasks {
            let result = t.await.unwrap();
            assert_eq!(result.duplicate.len(), 50);
            new += result.duplicate.iter().filter(|d| !**d).count();
        }
        assert_eq!(new, 20 * 50, "each id is new exactly once");
        let counts = store.table_counts().await.unwrap();
        let events = counts.iter().find(|(t, _)| *t == "events").unwrap().1;
        assert_eq!(events, 20 * 50, "no event is stored twice");
        // A retried request stores nothing.
        let again = store
            .ingest(ingest_batch(&["m-0-0", "m-0-1"], "s0", 2_000))
            .await
            .unwrap();
        assert_eq!(again.duplicate, vec![true, true]);
    }
);

both_stores!(
    events_are_found_by_subject_as_soon_as_acknowledged,
    |db: TestDb| async move {
        use candor_store::PreparedMessage;
        let store = db.store().await.unwrap();
        let items = |events: Vec<candor_store::ItemEvent>| {
            let mut ids: Vec<String> = events.into_iter().map(|e| e.item_id).collect();
            ids.sort();
            ids
        };
        // Acknowledged means readable, whether or not the writer has indexed it yet.
        for round in 0..3 {
            let ids: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            store
                .ingest(ingest_batch(&ids, "s1", 1_000 + round))
                .await
                .unwrap();
            assert_eq!(
                item_events(&store, "s1", 100).await.len(),
                5 * (round as usize + 1)
            );
        }
        assert_eq!(store.subject_events(&k("s1"), 100).await.unwrap().len(), 15);
        // Another process on the same database finds them too, though they are in this
        // process's tail, not in the index.
        let other = db.store().await.unwrap();
        assert_eq!(item_events(&other, "s1", 100).await.len(), 15);
        other.close().await;
        assert_eq!(item_events(&store, "s2", 100).await, vec![]);

        // An anonymous session, then a link: its events move to the known subject, index and all.
        let mut session = ingest_batch(&["a1", "a2"], "anon", 2_000).as_ref().clone();
        for m in &mut session.messages {
            let e = m.event.as_mut().unwrap();
            e.anonymous = true;
        }
        store.ingest(std::sync::Arc::new(session)).await.unwrap();
        assert_eq!(
            items(item_events(&store, "anon", 10).await),
            ["item-a1", "item-a2"]
        );
        let link = candor_store::IngestBatch {
            received_at: 3_000,
            messages: vec![PreparedMessage {
                message_id: "link".into(),
                link: Some((k("anon"), k("known"), vec!["personalization".into()])),
                ..Default::default()
            }],
        };
        store.ingest(std::sync::Arc::new(link)).await.unwrap();
        assert_eq!(
            items(item_events(&store, "known", 10).await),
            ["item-a1", "item-a2"]
        );
        assert_eq!(item_events(&store, "anon", 10).await, vec![]);
        assert_eq!(store.subject_index_entries(&k("anon")).await.unwrap(), 0);

        // Retention removes the events and every index entry naming their subject.
        assert_eq!(
            retire(
                &store,
                Some((candor_store::RetentionAction::Anonymize, "browsing", 1_001)),
                i64::MIN
            )
            .await
            .steps[0],
            5
        );
        assert_eq!(item_events(&store, "s1", 100).await.len(), 10);
        assert_eq!(
            retire(
                &store,
                Some((candor_store::RetentionAction::Delete, "browsing", 1_000_000)),
                i64::MIN
            )
            .await
            .steps[0],
            17
        );
        assert_eq!(item_events(&store, "s1", 100).await, vec![]);
        assert_eq!(item_events(&store, "known", 100).await, vec![]);
        assert_eq!(store.subject_index_entries(&k("s1")).await.unwrap(), 0);
        assert_eq!(store.subject_index_entries(&k("known")).await.unwrap(), 0);
        // Training pages see nothing left but the anonymized rows, which belong to no one.
        assert!(store.item_events_page("", 10).await.unwrap().is_empty());
    }
);

both_stores!(
    the_writer_indexes_on_its_own_and_never_for_retired_events,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        let wait_for = |subject: &'static str, want: i64| {
            let store = store.clone();
            async move {
                for _ in 0..100 {
                    if store.subject_index_entries(&k(subject)).await.unwrap() == want {
                        return true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                false
            }
        };
        // No reader asks: the writer adds the entries itself once ingest goes quiet.
        store
            .ingest(ingest_batch(&["i1", "i2", "i3"], "s1", 1_000))
            .await
            .unwrap();
        assert!(wait_for("s1", 3).await, "indexed while idle");

        // Events retired before the writer indexes them (retention found no entries to remove
        // then) must not get entries afterwards: the run notices and drops what it added.
        store
            .ingest(ingest_batch(&["r1", "r2"], "s2", 1_000))
            .await
            .unwrap();
        store
            .ingest(ingest_batch(&["k1"], "s3", 5_000_000))
            .await
            .unwrap();
        assert_eq!(
            retire(
                &store,
                Some((candor_store::RetentionAction::Anonymize, "browsing", 2_000)),
                i64::MIN
            )
            .await
            .steps[0],
            5,
            "s1's three and s2's two"
        );
        // s3's entry comes from the same run as s2's would have.
        assert!(wait_for("s3", 1).await);
        assert_eq!(store.subject_index_entries(&k("s2")).await.unwrap(), 0);
        assert_eq!(store.subject_index_entries(&k("s1")).await.unwrap(), 0);
        assert_eq!(item_events(&store, "s2", 10).await, vec![]);
    }
);

both_stores!(
    data_keys_converge_on_one_key_per_subject,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        let mut tasks = Vec::new();
        for c in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .data_keys(
                        vec![
                            ("a".into(), format!("cand-a-{c}")),
                            ("b".into(), format!("cand-b-{c}")),
                        ],
                        1,
                    )
                    .await
                    .unwrap()
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        assert!(seen.iter().all(|k| k == &seen[0]), "{seen:?}");
        let (a, b) = (
            seen[0][0].as_deref().unwrap(),
            seen[0][1].as_deref().unwrap(),
        );
        assert!(a.starts_with("cand-a-") && b.starts_with("cand-b-"));
        // The same subject twice in one request gets the same key twice.
        let twice = store
            .data_keys(vec![("a".into(), "x".into()), ("a".into(), "y".into())], 2)
            .await
            .unwrap();
        assert_eq!(twice, vec![seen[0][0].clone(), seen[0][0].clone()]);
    }
);

both_stores!(
    message_ids_are_forgotten_after_the_dedup_window,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        store
            .ingest(ingest_batch(&["old"], "s", 1_000))
            .await
            .unwrap();
        store
            .ingest(ingest_batch(&["new"], "s", 5_000))
            .await
            .unwrap();
        assert_eq!(retire(&store, None, 2_000).await.message_ids_forgotten, 1);
        let r = store
            .ingest(ingest_batch(&["old", "new"], "s", 6_000))
            .await
            .unwrap();
        assert_eq!(r.duplicate, vec![false, true]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_does_not_fail_the_requests_grouped_with_it() {
    // PostgreSQL refuses NUL in text, which makes a request fail inside the database.
    let db = TestDb::new(candor_store::Backend::Postgres).await;
    let store = db.store().await.unwrap();
    let mut tasks = Vec::new();
    for r in 0..30u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = if r == 13 {
                format!("bad\0{r}")
            } else {
                format!("good-{r}")
            };
            (r, store.ingest(ingest_batch(&[&id], "s", 1_000)).await)
        }));
    }
    for t in tasks {
        let (r, result) = t.await.unwrap();
        assert_eq!(result.is_err(), r == 13, "request {r}: {result:?}");
    }
    let counts = store.table_counts().await.unwrap();
    assert_eq!(counts.iter().find(|(t, _)| *t == "events").unwrap().1, 29);
}

fn verify_chain(entries: &[candor_domain::audit::AuditEntry], head: (i64, String)) -> i64 {
    let mut v = ChainVerifier::default();
    for e in entries {
        v.push(e).unwrap();
    }
    v.finish(head.0, &head.1).unwrap()
}

both_stores!(
    bulk_consent_imports_audit_every_subject_in_one_chain,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        let p = purpose_draft("personalization").validate().unwrap();
        store
            .create_purpose(&p, 1, &audit(candor_domain::AuditAction::PurposeCreate))
            .await
            .unwrap();
        let import = |i: usize, n: usize| {
            let s = subject(&format!("bulk-{i}"));
            candor_store::ConsentImport {
                records: (0..n)
                    .map(|j| NewConsent {
                        subject: s.clone(),
                        purpose: p.id.clone(),
                        decision: if j % 2 == 0 {
                            ConsentDecision::Granted
                        } else {
                            ConsentDecision::Denied
                        },
                        at: 100 + j as i64,
                        source: ConsentSource::Import,
                        policy_version: 1,
                        proof: ConsentProof::default(),
                    })
                    .collect(),
                audit: AuditDraft::new(
                    "test",
                    candor_domain::AuditAction::ConsentImport,
                    s.as_str(),
                    json!({"n": n}),
                ),
                subject: s,
            }
        };
        // Two concurrent bulk imports of 150 subjects (0-2 records each: chunks of 100 rows
        // are crossed), then one whose last record names an undeclared purpose.
        let mut tasks = Vec::new();
        for half in 0..2 {
            let (store, imports): (_, Vec<_>) = (
                store.clone(),
                (0..150).map(|i| import(half * 150 + i, i % 3)).collect(),
            );
            tasks.push(tokio::spawn(async move {
                let stored = store.import_consents_bulk(&imports, 50).await.unwrap();
                (imports, stored)
            }));
        }
        for t in tasks {
            let (imports, stored) = t.await.unwrap();
            assert_eq!(stored.len(), imports.len());
            for (i, records) in imports.iter().zip(&stored) {
                assert_eq!(records.len(), i.records.len());
                assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));
                assert!(
                    records
                        .iter()
                        .zip(&i.records)
                        .all(|(r, n)| stored_to_new(r) == *n)
                );
                assert_eq!(store.consent_history(&i.subject).await.unwrap(), *records);
            }
        }
        let mut bad: Vec<_> = (0..120).map(|i| import(1000 + i, 1)).collect();
        bad[119].records[0].purpose = candor_domain::PurposeId::parse("nope").unwrap();
        assert!(store.import_consents_bulk(&bad, 60).await.is_err());
        assert!(
            store
                .consent_history(&bad[0].subject)
                .await
                .unwrap()
                .is_empty(),
            "a failed bulk import stores nothing"
        );

        let entries = store.audit_entries(0, 1000).await.unwrap();
        assert_eq!(
            verify_chain(&entries, store.audit_head().await.unwrap()),
            301,
            "the purpose, then one entry per imported subject"
        );
        let targets: std::collections::BTreeSet<&str> = entries[1..]
            .iter()
            .map(|e| {
                assert_eq!(e.action, "consent.import");
                e.target.as_str()
            })
            .collect();
        assert_eq!(targets.len(), 300);
        store.close().await;
    }
);

both_stores!(
    bulk_preferences_events_and_training_pages,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        store
            .upsert_catalog(
                &[candor_store::CatalogCategory {
                    id: "garden".into(),
                    name: "Garden".into(),
                    sensitive_kind: None,
                }],
                &[],
                1,
                audit(candor_domain::AuditAction::CatalogUpsert),
            )
            .await
            .unwrap();
        let update = |i: usize, interests: &[&str]| candor_store::PreferencesUpdate {
            subject: subject(&format!("p-{i}")).to_string(),
            body: format!("{{\"n\":{i}}}"),
            interests: interests.iter().map(|s| (*s).to_owned()).collect(),
            source: "api".into(),
            audit: AuditDraft::new(
                "test",
                candor_domain::AuditAction::PreferencesUpdate,
                "x",
                json!({}),
            ),
        };
        let first: Vec<_> = (0..130).map(|i| update(i, &["garden"])).collect();
        store.set_preferences_bulk(&first, 5).await.unwrap();
        // Replacing keeps one row per subject and replaces the interests.
        let second: Vec<_> = (0..130)
            .map(|i| update(i, if i % 2 == 0 { &[] } else { &["garden"] }))
            .collect();
        store.set_preferences_bulk(&second, 6).await.unwrap();
        for (i, u) in second.iter().enumerate() {
            assert_eq!(
                store.preferences_body(&u.subject).await.unwrap(),
                Some(u.body.clone())
            );
            assert_eq!(
                store.declared_interests(&u.subject).await.unwrap(),
                u.interests,
                "subject {i}"
            );
        }
        let entries = store.audit_entries(0, 1000).await.unwrap();
        assert_eq!(
            verify_chain(&entries, store.audit_head().await.unwrap()),
            261,
            "260 preference updates and the catalog upsert"
        );

        // 37 subjects, 1-9 events each over 3 items, plus rows training never reads.
        let mut rows = Vec::new();
        for s in 0..37 {
            for e in 0..(1 + s % 9) {
                rows.push(candor_store::EventRow {
                    subject_key: subject(&format!("e-{s}")).to_string(),
                    kind: "view".into(),
                    item_id: format!("sku-{}", e % 3),
                    quantity: 1,
                    at: 1000 - e as i64,
                    category: "browsing".into(),
                    purpose: "personalization".into(),
                });
            }
        }
        let unread = |subject_key: &str, item_id: &str| candor_store::EventRow {
            subject_key: subject_key.into(),
            item_id: item_id.into(),
            ..rows[0].clone()
        };
        let extra = [
            unread("anonymized", "sku-1"),
            unread(&rows[0].subject_key, ""),
        ];
        store.insert_events(&rows).await.unwrap();
        store.insert_events(&extra).await.unwrap();
        let mut read = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        let mut after = String::new();
        let mut pages = 0;
        let purpose = reading_purpose();
        loop {
            let page = store.item_events_page(&after, 5).await.unwrap();
            let names = page.subjects();
            let Some(&last) = names.last() else { break };
            after = last.to_owned();
            assert!(names.len() <= 5);
            let keys: Vec<SubjectKey> = names
                .iter()
                .map(|n| SubjectKey::parse(n).unwrap())
                .collect();
            let consents = candor_domain::SubjectConsents::default();
            let mut permits: Vec<_> = keys
                .iter()
                .map(|k| consents.permit(k, &purpose, 0))
                .collect();
            // A subject without a permit yields nothing, whatever the page holds.
            let withheld = permits.len() > 1;
            if withheld {
                permits[1] = None;
            }
            let permitted = page.permitted(&permits);
            assert_eq!(permitted.len(), names.len());
            if withheld {
                assert!(permitted[1].is_empty());
                skipped.push(names[1].to_owned());
            }
            read.extend(permitted.into_iter().flatten().cloned());
            pages += 1;
        }
        assert_eq!(pages, 8, "37 subjects, 5 a page");
        let mut want = rows.clone();
        want.retain(|e| !skipped.contains(&e.subject_key));
        want.sort_by(|a, b| (&a.subject_key, a.at).cmp(&(&b.subject_key, b.at)));
        let got: Vec<_> = read
            .iter()
            .map(|e| (e.subject_key.clone(), e.item_id.clone(), e.at))
            .collect();
        let want: Vec<_> = want
            .iter()
            .map(|e| (e.subject_key.clone(), e.item_id.clone(), e.at))
            .collect();
        assert_eq!(
            got, want,
            "every subject's events, whole, in subject and time order"
        );
        store.close().await;
    }
);

both_stores!(
    a_change_that_fails_inside_the_helper_leaves_no_entry,
    |db: TestDb| async move {
        use candor_domain::AuditAction as A;
        let store = db.store().await.unwrap();
        let p = purpose_draft("personalization").validate().unwrap();
        store
            .create_purpose(&p, 1, &audit(A::PurposeCreate))
            .await
            .unwrap();
        let head = store.audit_head().await.unwrap();

        let missing = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
        assert!(missing(
            store.revoke_key("nope", 2, &audit(A::KeyRevoke)).await
        ));
        assert!(missing(
            store
                .delete_segment("nope", 2, &audit(A::SegmentDelete))
                .await
        ));
        assert!(missing(
            store
                .activate_model("nope", 2, &audit(A::ModelActivate))
                .await
        ));
        assert!(missing(
            store
                .deactivate_webhook("nope", 2, &audit(A::WebhookDelete))
                .await
        ));
        assert!(matches!(
            store
                .update_incident(404, "resolved", None, None, 2, &audit(A::IncidentUpdate))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        let other = purpose_draft("analytics").validate().unwrap();
        assert!(matches!(
            store
                .update_purpose(&other, true, 2, &audit(A::PurposeUpdate))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.create_purpose(&p, 2, &audit(A::PurposeCreate)).await,
            Err(StoreError::Conflict { .. })
        ));

        assert_eq!(store.audit_head().await.unwrap(), head);
        assert_eq!(store.audit_entries(0, 100).await.unwrap().len(), 1);
        assert_eq!(
            store
                .purpose_history("personalization")
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.purpose_history("analytics").await.unwrap().is_empty());
        store.close().await;
    }
);

// The SQLite writer thread and its checkpointer once shared a condvar that a queued job woke
// only one waiter of: when that was the checkpointer, the idle writer slept out its whole
// idle timeout (200 ms) with the job waiting, so every request that found it idle took 200 ms.
// Five writes, each after a short pause (the writer waiting again, behind the checkpointer),
// stay far below 5 x 200 ms even on a busy machine; with the shared condvar they took 720 ms.
both_stores!(
    an_idle_writer_takes_a_job_at_once,
    |db: TestDb| async move {
        let store = db.store().await.unwrap();
        store
            .ingest(ingest_batch(&["warm"], "Warm", 1))
            .await
            .unwrap();
        let mut waited = std::time::Duration::ZERO;
        for i in 0..5 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let t = std::time::Instant::now();
            let id = format!("idle-{i}");
            store
                .ingest(ingest_batch(&[id.as_str()], "Idle", 2))
                .await
                .unwrap();
            waited += t.elapsed();
        }
        assert!(
            waited < std::time::Duration::from_millis(600),
            "five writes to an idle writer took {waited:?}"
        );
        store.close().await;
    }
);
