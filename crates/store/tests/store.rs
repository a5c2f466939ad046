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

fn audit(action: &str) -> AuditDraft {
    AuditDraft::new("test", action, "t", json!({}))
}

both_stores!(purposes_consents_and_audit_chain, |db: TestDb| async move {
    let store = db.store().await.unwrap();
    let p = purpose_draft("personalization").validate().unwrap();
    store
        .create_purpose(&p, 1, &audit("purpose.create"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_purpose(&p, 2, &audit("purpose.create")).await,
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
            },
            &audit("webhook.create"),
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
    };
    let stored = store
        .append_consents(
            &alice,
            &[grant, revoke],
            11,
            &audit("consent.change"),
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
            .append_consents(&alice, &[bad], 12, &audit("consent.change"), None)
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
                s.append_audit(i, &audit("x")).await.unwrap()
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
