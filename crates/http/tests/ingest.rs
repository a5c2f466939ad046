//! Segment-compatible ingestion end to end, on SQLite and PostgreSQL.

mod common;

use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

const EMAIL: &str = "alice.plaintext@example.com";
const IP: &str = "203.0.113.77";

async fn setup(db: &TestDb, undeclared: &str) -> Node {
    let node = Node::start(db).await;
    node.declare_shop_plan(undeclared).await;
    node
}

async fn ingest(node: &Node, path: &str, body: Value) -> (u16, Value) {
    // Segment libraries send the write key as the Basic user name.
    let resp = node
        .http
        .post(node.url(path))
        .basic_auth(&node.ingest, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn viewed(user: &str, id: &str) -> Value {
    json!({"type": "track", "event": "Product Viewed", "userId": user, "messageId": id, "properties": {"product_id": "SKU-1", "price": 12.5, "shoe_size": 42}})
}

both_stores!(
    consent_gate_minimization_and_revocation,
    |db: TestDb| async move {
        let node = setup(&db, "reject").await;
        let (s, v) = ingest(&node, "/v1/track", viewed("user-ext-1", "m1")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["accepted"].as_u64(),
                v["stored"].as_u64(),
                v["without_consent"].as_u64()
            ),
            (Some(1), Some(0), Some(1)),
            "no consent: counted, not stored"
        );

        node.decide("user-ext-1", "personalization", "granted")
            .await;
        let (_, v) = ingest(&node, "/v1/track", viewed("user-ext-1", "m2")).await;
        assert_eq!(v["stored"], 1, "{v}");
        assert_eq!(
            v["properties_dropped"], 1,
            "the undeclared shoe_size is dropped"
        );
        let key = node.app.subject_key("user-ext-1").unwrap();
        let events = node
            .app
            .raw_store()
            .subject_events(key.as_str(), 10)
            .await
            .unwrap();
        let props: Value = serde_json::from_str(&events[0].4).unwrap();
        assert_eq!(props, json!({"product_id": "SKU-1", "price": 12.5}));
        assert_eq!(
            (events[0].2.as_str(), events[0].3.as_str()),
            ("browsing", "personalization")
        );

        // Revoked: the very next message is not stored.
        node.decide("user-ext-1", "personalization", "denied").await;
        let (_, v) = ingest(&node, "/v1/track", viewed("user-ext-1", "m3")).await;
        assert_eq!(
            (v["stored"].as_u64(), v["without_consent"].as_u64()),
            (Some(0), Some(1))
        );

        // Analytics alone keeps the event but not the price, which only personalization may use.
        node.decide("user-ext-1", "analytics", "granted").await;
        let (_, v) = ingest(&node, "/v1/track", viewed("user-ext-1", "m4")).await;
        assert_eq!(v["stored"], 1);
        let events = node
            .app
            .raw_store()
            .subject_events(key.as_str(), 10)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&events[1].4).unwrap(),
            json!({"product_id": "SKU-1"})
        );

        let (_, inv) = node.get("/v1/admin/inventory", &node.admin).await;
        let counts = &inv["counts"]["track:Product Viewed"];
        assert_eq!(
            (
                counts["events_stored"].as_i64(),
                counts["events_without_consent"].as_i64()
            ),
            (Some(2), Some(2)),
            "{inv}"
        );
        assert_eq!(counts["dropped:shoe_size:undeclared"], 2);
        assert_eq!(counts["dropped:price:no_consent"], 1);
        assert_eq!(counts["kept:product_id"], 2, "{inv}");
        node.stop().await;
    }
);

both_stores!(
    contact_data_is_encrypted_and_protected_attributes_kept_apart,
    |db: TestDb| async move {
        let node = setup(&db, "reject").await;
        let (s, v) = ingest(&node, "/v1/identify", json!({"userId": "user-ext-2", "traits": {"email": EMAIL, "gender": "female", "favorite_category": "garden"}, "context": {"ip": IP}})).await;
        assert_eq!(s, 200, "{v}");
        let (_, v) = ingest(&node, "/v1/track", json!({"userId": "user-ext-2", "event": "Order Completed", "properties": {"order_id": "o-1", "email": EMAIL}, "context": {"ip": IP}})).await;
        assert_eq!(
            v["stored"], 1,
            "orders are kept under the contract purpose without consent: {v}"
        );
        let key = node.app.subject_key("user-ext-2").unwrap();
        let contacts = node
            .app
            .raw_store()
            .contact_fields(key.as_str())
            .await
            .unwrap();
        assert_eq!(
            contacts.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["email"]
        );
        assert!(!contacts[0].1.contains("example"));
        let events = node
            .app
            .raw_store()
            .subject_events(key.as_str(), 10)
            .await
            .unwrap();
        let order = events.iter().find(|e| e.1 == "Order Completed").unwrap();
        let props: Value = serde_json::from_str(&order.4).unwrap();
        assert!(
            props["email"]["$sealed"].is_string() && props["context"]["ip"]["$sealed"].is_string(),
            "{props}"
        );
        assert!(
            !events.iter().any(|e| e.0 == "identify"),
            "favorite_category needs personalization consent"
        );
        let log = node
            .app
            .raw_store()
            .protected_decision_log(None, 0)
            .await
            .unwrap();
        assert!(log.is_empty(), "no decisions yet");

        // Nothing identifying in the database files.
        if let Some(path) = db.sqlite_path() {
            node.app.raw_store().checkpoint().await.unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
            for needle in [EMAIL, IP, "user-ext-2"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} found in the database file"
                );
            }
        }
        node.stop().await;
    }
);

both_stores!(
    batches_dedupe_and_report_bad_messages_by_index,
    |db: TestDb| async move {
        let node = setup(&db, "reject").await;
        node.decide("u3", "personalization", "granted").await;
        let now = "2026-01-01T00:00:00Z";
        let batch = json!({"sentAt": now, "batch": [
            viewed("u3", "b1"),
            {"type": "track", "event": "Product Viewed", "messageId": "b2"},
            {"type": "track", "event": "Mystery Event", "userId": "u3", "messageId": "b3"},
            {"type": "page", "userId": "u3", "messageId": "b4", "timestamp": "2999-01-01T00:00:00Z"},
            {"type": "track", "event": "Product Viewed", "userId": "u3", "messageId": "b5", "properties": {"blob": "x".repeat(40_000)}},
            {"type": "shout", "userId": "u3"},
            viewed("u3", "b7")
        ]});
        let (s, v) = ingest(&node, "/v1/batch", batch.clone()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["accepted"].as_u64(), v["stored"].as_u64()),
            (Some(2), Some(2)),
            "{v}"
        );
        let codes: Vec<(u64, &str)> = v["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            codes,
            [
                (1, "invalid_message"),
                (2, "undeclared_event"),
                (3, "invalid_message"),
                (4, "message_too_large"),
                (5, "invalid_message")
            ]
        );
        assert!(
            v["rejected"][0]["message"]
                .as_str()
                .unwrap()
                .contains("userId")
        );
        let (_, again) = ingest(&node, "/v1/batch", batch).await;
        assert_eq!(
            (again["stored"].as_u64(), again["duplicates"].as_u64()),
            (Some(0), Some(2)),
            "a retried batch stores nothing twice"
        );

        let raw = |body: Vec<u8>, path: &'static str| {
            let req = node
                .http
                .post(node.url(path))
                .basic_auth(&node.ingest, Some(""))
                .header("content-type", "application/json")
                .body(body);
            async move {
                let r = req.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let cases = [
        (raw(b"{\"batch\": [".to_vec(), "/v1/batch").await, 400, "malformed_json"),
        (raw(b"{\"userId\": \"\xff\"}".to_vec(), "/v1/track").await, 400, "malformed_json"),
        (raw(b"{\"batch\": []}".to_vec(), "/v1/batch").await, 422, "invalid_batch"),
        (raw(b"{\"batch\": 5}".to_vec(), "/v1/batch").await, 422, "invalid_body"),
        (raw(serde_json::to_vec(&json!({"batch": [viewed("u3", "x")], "pad": "y".repeat(600_000)})).unwrap(), "/v1/batch").await, 413, "payload_too_large"),
        (raw(serde_json::to_vec(&json!({"userId": "u3", "event": "x", "properties": {"p": "z".repeat(40_000)}})).unwrap(), "/v1/track").await, 413, "payload_too_large"),
        (raw(b"{\"event\": \"Product Viewed\"}".to_vec(), "/v1/track").await, 422, "invalid_message"),
        (raw(b"{\"userId\": \"u3\", \"event\": \"Mystery\"}".to_vec(), "/v1/track").await, 422, "undeclared_event"),
    ];
        for (i, ((status, body), want_status, want_code)) in cases.iter().enumerate() {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (want_status, Some(*want_code)),
                "case {i}: {body}"
            );
        }
        // Write keys: in the body works; a key of another scope does not.
        let (s, _) = node.send(Method::POST, "/v1/track", None, Some(json!({"writeKey": node.ingest, "userId": "u3", "event": "Product Viewed", "messageId": "wk"}))).await;
        assert_eq!(s, 200);
        let (s, _) = node
            .send(
                Method::POST,
                "/v1/track",
                Some(&node.recommend),
                Some(viewed("u3", "rk")),
            )
            .await;
        assert_eq!(s, 403);
        let key = node.app.subject_key("u3").unwrap();
        assert_eq!(
            node.app
                .raw_store()
                .subject_events(key.as_str(), 100)
                .await
                .unwrap()
                .len(),
            3,
            "b1, b7 and wk; nothing from rejected messages"
        );
        node.stop().await;
    }
);

both_stores!(
    undeclared_events_can_be_quarantined_sealed,
    |db: TestDb| async move {
        let node = setup(&db, "quarantine").await;
        let (s, v) = ingest(
            &node,
            "/v1/track",
            json!({"userId": "u4", "event": "Mystery Event", "properties": {"email": EMAIL}}),
        )
        .await;
        assert_eq!((s, v["quarantined"].as_u64()), (200, Some(1)), "{v}");
        assert_eq!(node.app.raw_store().quarantined_count().await.unwrap(), 1);
        let (_, inv) = node.get("/v1/admin/inventory", &node.admin).await;
        assert_eq!(
            inv["counts"]["track:Mystery Event"]["events_quarantined"],
            1
        );
        if let Some(path) = db.sqlite_path() {
            node.app.raw_store().checkpoint().await.unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()),
                "quarantined payloads are sealed"
            );
        }
        node.stop().await;
    }
);

both_stores!(
    anonymous_sessions_join_the_profile_only_with_consent,
    |db: TestDb| async move {
        let node = setup(&db, "reject").await;
        // The visitor accepts analytics and personalization in the banner, anonymously.
        node.decide("anon-123", "personalization", "granted").await;
        node.decide("anon-123", "analytics", "granted").await;
        let (_, v) = ingest(&node, "/v1/track", json!({"anonymousId": "anon-123", "event": "Product Viewed", "properties": {"product_id": "SKU-9"}})).await;
        assert_eq!(v["stored"], 1);
        let (_, v) = ingest(
            &node,
            "/v1/page",
            json!({"anonymousId": "anon-123", "properties": {"url": "/garden"}}),
        )
        .await;
        assert_eq!(v["stored"], 1, "{v}");
        let anon = node.app.subject_key("anon-123").unwrap();
        let known = node.app.subject_key("user-ext-5").unwrap();
        // The known person allows personalization but not analytics.
        node.decide("user-ext-5", "personalization", "granted")
            .await;
        let (_, v) = ingest(&node, "/v1/identify", json!({"userId": "user-ext-5", "anonymousId": "anon-123", "traits": {"favorite_category": "garden"}})).await;
        assert_eq!(v["stored"], 1, "{v}");
        let moved = node
            .app
            .raw_store()
            .subject_events(known.as_str(), 10)
            .await
            .unwrap();
        assert!(
            moved.iter().any(|e| e.1 == "Product Viewed"),
            "personalization data joined the profile"
        );
        assert!(
            !moved.iter().any(|e| e.0 == "page"),
            "analytics-only session data did not"
        );
        assert_eq!(
            node.app
                .raw_store()
                .subject_events(anon.as_str(), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        node.stop().await;
    }
);

both_stores!(
    retention_deletes_and_anonymizes_by_category,
    |db: TestDb| async move {
        let node = setup(&db, "reject").await;
        node.decide("u6", "personalization", "granted").await;
        let days_ago = |d: i64| {
            candor_domain::format_micros(node.app.now() - d * candor_domain::MICROS_PER_DAY)
        };
        let batch = json!({"batch": [
            {"type": "track", "event": "Product Viewed", "userId": "u6", "timestamp": days_ago(100), "properties": {"product_id": "old"}},
            {"type": "track", "event": "Product Viewed", "userId": "u6", "timestamp": days_ago(1), "properties": {"product_id": "new"}},
            {"type": "track", "event": "Order Completed", "userId": "u6", "timestamp": days_ago(200), "properties": {"order_id": "o-old"}},
            {"type": "track", "event": "Order Completed", "userId": "u6", "timestamp": days_ago(2), "properties": {"order_id": "o-new"}}
        ]});
        let (_, v) = ingest(&node, "/v1/batch", batch).await;
        assert_eq!(v["stored"], 4, "{v}");
        let (s, r) = node
            .send(
                Method::POST,
                "/v1/admin/retention/run",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["report"]["deleted"], json!([["browsing", 1]]));
        assert_eq!(r["report"]["anonymized"], json!([["purchase", 1]]));
        let key = node.app.subject_key("u6").unwrap();
        let left: Vec<String> = node
            .app
            .raw_store()
            .subject_events(key.as_str(), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.4)
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|p| p.contains("new")));
        let (_, log) = node.get("/v1/audit/log?limit=1", &node.auditor).await;
        assert_eq!(log[0]["action"], "retention.run");
        node.stop().await;
    }
);

both_stores!(
    concurrent_batches_and_repeated_ids_within_a_batch,
    |db: TestDb| async move {
        let node = std::sync::Arc::new(setup(&db, "reject").await);
        node.decide("u7", "personalization", "granted").await;
        let (_, v) = ingest(
            &node,
            "/v1/batch",
            json!({"batch": [viewed("u7", "same"), viewed("u7", "same"), viewed("u7", "other")]}),
        )
        .await;
        assert_eq!(
            (v["stored"].as_u64(), v["duplicates"].as_u64()),
            (Some(2), Some(1)),
            "a repeated id inside one batch counts once: {v}"
        );

        // Concurrent batches touching the same counters and subjects must all succeed (this
        // deadlocked on PostgreSQL when counter rows were locked in hash order).
        let mut tasks = Vec::new();
        for t in 0..8 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
            let batch: Vec<Value> = (0..50)
                .map(|i| {
                    let user = format!("u7-{}", i % 5);
                    if i % 2 == 0 { viewed(&user, &format!("c{t}-{i}")) } else { json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": format!("c{t}-{i}"), "properties": {"order_id": i, "email": EMAIL, "junk": 1}}) }
                })
                .collect();
            ingest(&node, "/v1/batch", json!({"batch": batch})).await
        }));
        }
        for t in tasks {
            let (s, v) = t.await.unwrap();
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["accepted"], 50, "{v}");
        }
        let (_, inv) = node.get("/v1/admin/inventory", &node.admin).await;
        assert_eq!(
            inv["counts"]["track:Order Completed"]["events_stored"], 200,
            "{inv}"
        );
    }
);
