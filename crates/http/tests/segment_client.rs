//! The official `@segment/analytics-node` client, unchanged, pointed at Candor's host.
//!
//! Needs Node.js and the package installed in `tests/segment` (`npm ci --prefix tests/segment`,
//! which `.ci/run` does; this test runs it too when `node_modules` is missing).

mod common;

use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use serde_json::Value;

both_stores!(
    official_segment_node_client_delivers_unchanged,
    |db: TestDb| async move {
        let client = common::NodePackage::installed("segment", &["@segment/analytics-node"]);
        let node = Node::start(&db).await;
        node.declare_shop_plan("reject").await;
        node.decide("seg-user-1", "personalization", "granted")
            .await;
        node.decide("seg-user-1", "analytics", "granted").await;

        let (ok, log) = client
            .run("send.mjs", vec![node.base.clone(), node.ingest.clone()])
            .await;
        assert!(ok, "client failed:\n{log}");
        assert!(
            log.contains("/v1/batch"),
            "the client posts to /v1/batch:\n{log}"
        );

        let subject = node.app.subject_key("seg-user-1").unwrap();
        let events = node
            .app
            .raw_store()
            .subject_events(subject.as_str(), 100)
            .await
            .unwrap();
        let views: Vec<Value> = events
            .iter()
            .filter(|e| e.1 == "Product Viewed")
            .map(|e| serde_json::from_str(&e.4).unwrap())
            .collect();
        assert_eq!(views.len(), 4, "track x4 delivered: {events:?}");
        assert!(
            views.iter().all(|p| p.get("color").is_none()),
            "undeclared `color` dropped"
        );
        assert!(events.iter().any(|e| e.0 == "page"), "page delivered");
        assert!(
            events.iter().any(|e| e.0 == "identify"),
            "identify delivered (favorite_category kept)"
        );
        let contacts = node
            .app
            .raw_store()
            .contact_fields(subject.as_str())
            .await
            .unwrap();
        assert_eq!(contacts.len(), 1, "email trait stored encrypted");
        let (_, inv) = node.get("/v1/admin/inventory", &node.admin).await;
        assert_eq!(
            inv["counts"]["track:Product Viewed"]["dropped:color:undeclared"],
            1
        );
        node.stop().await;
    }
);
