//! The room on both stores: the ledger (refusal spends nothing, a restart keeps the remaining
//! budget, a tampered row is found) and reads through the analytics permit.

use candor_domain::{ConsentDecision, PurposeId};
use candor_store::testing::{TestDb, execute_raw};
use candor_store::{EventRow, both_stores};

use super::QueryRequest;
use crate::testing::{TempDir, config, purpose};
use crate::{App, AppError, ConsentRequest};

/// A node whose analytics budget is `budget` ε, with the analytics purpose and `n` subjects,
/// the even ones granted; subject i has 1 + i % 3 browsing events.
async fn node(db: &TestDb, dir: &TempDir, budget: f64, n: usize) -> std::sync::Arc<App> {
    let mut c = config(db, dir.path());
    c.analytics.budget_epsilon = budget;
    let app = App::open(c).await.unwrap();
    if app.purposes().is_empty() {
        app.create_purpose("test", &purpose("analytics", &["browsing"]))
            .await
            .unwrap();
        let pid = PurposeId::parse("analytics").unwrap();
        let mut decisions = Vec::new();
        let mut events = Vec::new();
        for s in 0..n {
            let key = app.subject_key(&format!("s{s}")).unwrap();
            if s % 2 == 0 {
                decisions.push((
                    key.clone(),
                    vec![(pid.clone(), ConsentDecision::Granted, 1)],
                ));
            }
            for e in 0..(1 + s % 3) {
                events.push(EventRow {
                    subject_key: key.to_string(),
                    kind: "Product Viewed".into(),
                    item_id: format!("sku-{e}"),
                    quantity: 1,
                    at: app.now() - 1000 - e as i64,
                    category: "browsing".into(),
                    purpose: "analytics".into(),
                });
            }
        }
        app.import_consents_bulk("test", &decisions).await.unwrap();
        app.raw_store().insert_events(&events).await.unwrap();
    }
    app
}

fn histogram(epsilon: f64) -> QueryRequest {
    QueryRequest {
        group_by: vec!["event".into()],
        groups: [(
            "event".to_owned(),
            vec!["Product Viewed".to_owned(), "Order Completed".to_owned()],
        )]
        .into(),
        epsilon: Some(epsilon),
        max_rows: Some(3),
        max_groups: Some(1),
        since: Some("2000-01-01T00:00:00Z".into()),
        ..QueryRequest::default()
    }
}

both_stores!(
    a_refused_query_spends_nothing_and_a_restart_keeps_the_remaining_budget,
    |db: TestDb| async move {
        let dir = TempDir::new("ledger");
        let app = node(&db, &dir, 1.0, 4).await;
        let first = app.run_query("key_a", &histogram(0.6)).await.unwrap();
        assert!((first.quote.epsilon - 0.6).abs() < 1e-6);
        let before = app.budget("key_a", None).await.unwrap();
        assert!(
            (before.accounts[0].remaining_epsilon - 0.4).abs() < 1e-6,
            "{before:?}"
        );
        // The quote says it does not fit; running it is refused; nothing is spent.
        let quote = app.quote_query("key_a", &histogram(0.5)).await.unwrap();
        assert!(!quote.fits);
        let refused = app.run_query("key_a", &histogram(0.5)).await;
        assert!(
            matches!(refused, Err(AppError::OverBudget(_))),
            "{refused:?}"
        );
        let after = app.budget("key_a", None).await.unwrap();
        assert_eq!(after, before);
        assert_eq!(after.charges.len(), 1);
        // Another key has its own budget.
        app.run_query("key_b", &histogram(0.5)).await.unwrap();
        // Deleting data (here retention, as an erasure would) refunds nothing.
        let old = EventRow {
            subject_key: app.subject_key("s0").unwrap().to_string(),
            kind: "Product Viewed".into(),
            item_id: "sku-old".into(),
            quantity: 1,
            at: app.now() - 400 * candor_domain::MICROS_PER_DAY,
            category: "browsing".into(),
            purpose: "analytics".into(),
        };
        app.raw_store().insert_events(&[old]).await.unwrap();
        let retention = app.run_retention("test").await.unwrap();
        assert!(
            retention.deleted.iter().any(|(_, n)| *n > 0),
            "{retention:?}"
        );
        assert_eq!(app.budget("key_a", None).await.unwrap(), before);
        // More than the whole budget is a bad request, not a refusal.
        match app.quote_query("key_a", &histogram(5.0)).await {
            Err(AppError::Invalid { field, .. }) => assert_eq!(field, "epsilon"),
            other => panic!("{other:?}"),
        }
        app.close().await;
        drop(app);
        let again = node(&db, &dir, 1.0, 4).await;
        assert_eq!(again.budget("key_a", None).await.unwrap(), before);
        assert!(again.run_query("key_a", &histogram(0.5)).await.is_err());
        again.run_query("key_a", &histogram(0.4)).await.unwrap();
        let v = again.verify_budget_ledger().await.unwrap();
        assert_eq!((v.rows, v.broken), (3, None));
        again.close().await;
    }
);

both_stores!(a_tampered_ledger_row_is_found, |db: TestDb| async move {
    let dir = TempDir::new("ledger-tamper");
    let app = node(&db, &dir, 2.0, 2).await;
    for _ in 0..3 {
        app.run_query("key_a", &histogram(0.5)).await.unwrap();
    }
    assert!(app.verify_budget_ledger().await.unwrap().broken.is_none());
    // Lowering a stored ε to free budget.
    execute_raw(
        &db.url,
        "UPDATE budget_ledger SET epsilon = 0.01 WHERE seq = 2",
    )
    .await
    .unwrap();
    let v = app.verify_budget_ledger().await.unwrap();
    assert_eq!(v.broken.as_ref().map(|b| b.seq), Some(2), "{v:?}");
    execute_raw(
        &db.url,
        "UPDATE budget_ledger SET epsilon = 0.5 WHERE seq = 2",
    )
    .await
    .unwrap();
    assert!(app.verify_budget_ledger().await.unwrap().broken.is_none());
    // Rewriting the sealed details too breaks the chain.
    execute_raw(
            &db.url,
            "UPDATE budget_ledger SET epsilon = 0.01, details = REPLACE(details, '0.5', '0.01') WHERE seq = 2",
        )
        .await
        .unwrap();
    assert!(app.verify_budget_ledger().await.unwrap().broken.is_some());
    // Deleting the newest row is caught by the head.
    execute_raw(&db.url, "UPDATE budget_ledger SET epsilon = 0.5, details = REPLACE(details, '0.01', '0.5') WHERE seq = 2")
            .await
            .unwrap();
    execute_raw(&db.url, "DELETE FROM budget_ledger WHERE seq = 3")
        .await
        .unwrap();
    let v = app.verify_budget_ledger().await.unwrap();
    assert_eq!(v.broken.map(|b| b.seq), Some(3));
    app.close().await;
});

both_stores!(
    queries_count_only_permitted_rows_and_a_revocation_counts_at_once,
    |db: TestDb| async move {
        let dir = TempDir::new("analytics-permit");
        // A large budget, so the noise (scale 3 / 100) cannot hide a difference of one row.
        let app = node(&db, &dir, 1000.0, 30).await;
        let truth = |granted: &dyn Fn(usize) -> bool| -> f64 {
            (0..30)
                .filter(|s| granted(*s))
                .map(|s| (1 + s % 3) as f64)
                .sum()
        };
        let mut q = histogram(100.0);
        q.groups.clear();
        q.group_by = vec!["category".into()];
        let answer = app.run_query("key_a", &q).await.unwrap();
        let browsing = answer
            .cells
            .iter()
            .find(|c| c.labels == ["browsing"])
            .unwrap();
        assert!(
            (browsing.value.unwrap() - truth(&|s| s % 2 == 0)).abs() < 1.0,
            "{browsing:?}"
        );
        let [lo, hi] = browsing.ci.unwrap();
        assert!(lo < browsing.value.unwrap() && browsing.value.unwrap() < hi);
        assert_eq!(answer.subjects_read, 15);
        // Subject 0 (one event) withdraws; the very next query leaves it out.
        let key = app.subject_key("s0").unwrap();
        app.record_consents(
            "test",
            &key,
            ConsentRequest {
                changes: vec![("analytics".into(), "denied".into())],
                source: "api".into(),
                ..ConsentRequest::default()
            },
        )
        .await
        .unwrap();
        let answer = app.run_query("key_a", &q).await.unwrap();
        let browsing = answer
            .cells
            .iter()
            .find(|c| c.labels == ["browsing"])
            .unwrap();
        assert_eq!(answer.subjects_read, 14);
        assert!((browsing.value.unwrap() - truth(&|s| s % 2 == 0 && s != 0)).abs() < 1.0);
        // An exact answer for an auditor needs a reason and is audited.
        assert!(app.exact_query("auditor_1", "why", &q).await.is_err());
        let exact = app
            .exact_query("auditor_1", "checking the DP release of ticket 42", &q)
            .await
            .unwrap();
        let row = exact.cells.iter().find(|c| c.0 == ["browsing"]).unwrap();
        assert_eq!(row.1, truth(&|s| s % 2 == 0 && s != 0));
        let entries = app.recent_audit_entries(5).await.unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.seq == exact.audit_seq && e.action == "analytics.exact")
        );
        app.close().await;
    }
);

both_stores!(
    a_published_report_is_signed_stored_and_a_changed_one_fails_its_check,
    |db: TestDb| async move {
        let dir = TempDir::new("report");
        let app = node(&db, &dir, 2.0, 40).await;
        let year = &candor_domain::format_micros(app.now())[..4];
        app.run_retention("test").await.unwrap();
        // Rights requests come from the rights room: one completed, one waiting.
        for (who, verified) in [("ann", true), ("bo", false)] {
            let r = app
                .create_request(
                    "test",
                    crate::rights::NewRequest {
                        subject: who.into(),
                        kind: "access".into(),
                        jurisdiction: None,
                        channel: None,
                        verification_method: verified.then(|| "email link".into()),
                        details: None,
                        received_at: None,
                    },
                )
                .await
                .unwrap();
            if verified {
                let update = crate::rights::RequestUpdate {
                    status: Some("completed".into()),
                    ..Default::default()
                };
                app.update_request("test", &r.row.id, update).await.unwrap();
            }
        }
        let published = app.publish_transparency_report("test", year).await.unwrap();
        let r = &published.report;
        assert_eq!(r.purposes.len(), 1);
        // 20 of 40 granted; the noise has scale 2 / 0.5 = 4, so only a gross error fails here.
        // The share itself is checked against 3,000 people in the HTTP crate's browser test.
        assert!((r.purposes[0].granted - 20.0).abs() < 60.0, "{r:?}");
        let rights = r.rights.as_ref().expect("rights figures");
        assert_eq!(rights.received, vec![("access".to_owned(), 2)]);
        assert_eq!(rights.fulfilled, 1);
        assert!(rights.median_days.is_some_and(|d| (0.0..1.0).contains(&d)));
        assert_eq!(
            r.retention.runs, 1,
            "the retention run is counted from the audit log"
        );
        assert_eq!(r.data_categories[0].category, "browsing");
        let back = app.published_transparency_report(year).await.unwrap();
        assert!(back.valid);
        assert_eq!(back.report, published.report);
        // The report's privacy cost is in the ledger.
        let spent = app
            .budget(crate::analytics::report::REPORT_ANALYST, None)
            .await
            .unwrap();
        assert!((spent.accounts.iter().map(|a| a.spent_epsilon).sum::<f64>() - 0.5).abs() < 1e-9);
        execute_raw(
            &db.url,
            "UPDATE transparency_reports SET body = REPLACE(body, '\"approvals\":0', '\"approvals\":7')",
        )
        .await
        .unwrap();
        let changed = app.published_transparency_report(year).await.unwrap();
        assert!(!changed.valid);
        assert_eq!(changed.report.approvals, 7);
        assert!(matches!(
            app.published_transparency_report("20x6").await,
            Err(AppError::Invalid { .. })
        ));
        app.close().await;
    }
);
