//! Subject rights end to end over loopback, on SQLite and PostgreSQL: export, erasure with no
//! plaintext left on disk, signed receipts, suppression under concurrent ingestion,
//! restriction on every read path, rectification, and requests with deadlines.

mod common;

use std::sync::Arc;

use candor_app::ManualClock;
use candor_store::testing::TestDb;
use candor_store::{Backend, both_stores};
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

const USER: &str = "erin-8841-unique";
const EMAIL: &str = "erin.quux.unique@example.org";
const IP: &str = "203.0.113.177";
const TRAIT: &str = "zanzibar-unique-trait";

/// A subject with contact data, an IP, a protected trait and browsing, consenting to
/// personalization.
async fn subject_with_data(node: &Node, user: &str) {
    node.declare_shop_plan("reject").await;
    let (s, v) = node.decide(user, "personalization", "granted").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = node
        .ingest(
            "/v1/batch",
            json!({"batch": [
                {"type": "identify", "userId": user, "messageId": format!("{user}-i"),
                 "traits": {"email": EMAIL, "favorite_category": TRAIT, "gender": "f"},
                 "context": {"ip": IP}},
                {"type": "track", "userId": user, "event": "Product Viewed", "messageId": format!("{user}-t1"),
                 "properties": {"product_id": "p-1", "price": 12}, "context": {"ip": IP}},
                {"type": "track", "userId": user, "event": "Order Completed", "messageId": format!("{user}-t2"),
                 "properties": {"order_id": "o-77", "email": EMAIL}, "context": {"ip": IP}},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stored"], 3, "{v}");
}

async fn send(node: &Node, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    node.send(m, path, Some(&node.rights), body).await
}

/// Every byte the store holds: the SQLite files (database, WAL, shared memory) and the node's
/// data directory, or a `pg_dump` of the PostgreSQL database.
async fn stored_bytes(db: &TestDb, node_dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut dirs = vec![node_dir.to_path_buf()];
    match db.backend() {
        Backend::Sqlite => {
            let store = db.store().await.unwrap();
            store.checkpoint().await.unwrap();
            store.close().await;
            dirs.push(db.sqlite_path().unwrap().parent().unwrap().to_path_buf());
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg("--data-only")
                .arg(&db.url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            all.extend(out.stdout);
        }
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                all.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

both_stores!(
    erasure_leaves_no_plaintext_and_copies_stay_sealed,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        subject_with_data(&node, USER).await;

        let (s, export) = send(
            &node,
            Method::GET,
            &format!("/v1/subjects/{USER}/export"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{export}");
        assert_eq!(export["about"]["schema"], "candor.subject-export/1");
        assert_eq!(export["contact"][0]["field"], "email");
        assert_eq!(export["contact"][0]["value"], EMAIL, "decrypted: {export}");
        let events = export["events"].as_array().unwrap();
        assert_eq!(events.len(), 3, "{export}");
        let order = events
            .iter()
            .find(|e| e["name"] == "Order Completed")
            .unwrap();
        assert_eq!(
            order["properties"]["email"], EMAIL,
            "sealed property opened"
        );
        assert_eq!(
            order["properties"]["context"]["ip"], IP,
            "sealed context opened"
        );
        let viewed = events
            .iter()
            .find(|e| e["name"] == "Product Viewed")
            .unwrap();
        assert_eq!(viewed["data_category"], "browsing");
        assert_eq!(viewed["allowed_by"]["purpose"], "personalization");
        assert!(viewed["allowed_by"]["consent_record"].is_i64(), "{viewed}");
        assert_eq!(order["allowed_by"]["basis"], "contract");
        assert_eq!(export["protected_attributes"][0]["attribute"], "gender");
        assert_eq!(export["consent_history"][0]["decision"], "granted");

        let node_dir = node.app.config().data_dir.clone();
        let before = stored_bytes(&db, &node_dir).await;
        assert!(contains(&before, TRAIT), "the trait is held before erasure");
        assert!(
            !contains(&before, EMAIL) && !contains(&before, IP),
            "contact data is sealed at rest"
        );
        // A copy of a sealed value taken before erasure (a backup, say).
        let raw = db.store().await.unwrap();
        let subject = node.app.subject_key(USER).unwrap();
        let copied = raw.contact_fields(subject.as_str()).await.unwrap();
        assert_eq!(copied.len(), 1);

        let (s, receipt) = send(&node, Method::DELETE, &format!("/v1/subjects/{USER}"), None).await;
        assert_eq!(s, 201, "{receipt}");
        let part = |artifact: &str| {
            receipt["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["artifact"] == artifact)
                .cloned()
                .unwrap_or_else(|| panic!("no {artifact} part: {receipt}"))
        };
        assert_eq!(
            part("events")["count"],
            3,
            "contract data goes too: only a legal obligation keeps it"
        );
        assert_eq!(part("legal_obligation_events")["count"], 0);
        assert_eq!(part("events")["status"], "erased");
        assert_eq!(part("data_key")["status"], "shredded");
        assert_eq!(part("contact_fields")["count"], 1);
        assert_eq!(part("protected_attributes")["count"], 1);
        assert_eq!(part("consent_records")["status"], "kept");
        assert_eq!(part("audit_log")["status"], "kept");
        assert_eq!(receipt["subject_key"], subject.as_str());

        let after = stored_bytes(&db, &node_dir).await;
        for secret in [USER, EMAIL, IP, TRAIT] {
            assert!(
                !contains(&after, secret),
                "`{secret}` is still stored after erasure"
            );
        }

        // The sealed copy can no longer be opened: put it back and ask for an export.
        let (field, sealed) = &copied[0];
        candor_store::testing::execute_raw(
            &db.url,
            &format!(
                "INSERT INTO contact_fields (subject_key, field, sealed, updated_at) VALUES ('{}', '{field}', '{sealed}', 0)",
                subject.as_str()
            ),
        )
        .await
        .unwrap();
        let (s, export) = send(
            &node,
            Method::GET,
            &format!("/v1/subjects/{USER}/export"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{export}");
        assert!(
            export["contact"][0]["value"]["unreadable"].is_string(),
            "{export}"
        );
        assert_eq!(export["events"], json!([]), "{export}");
        raw.close().await;
        node.stop().await;
    }
);

both_stores!(
    receipts_verify_are_idempotent_and_unknown_subjects_are_404,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        subject_with_data(&node, "rita").await;
        let (s, first) = send(&node, Method::DELETE, "/v1/subjects/rita", None).await;
        assert_eq!(s, 201, "{first}");
        let (s, again) = send(&node, Method::DELETE, "/v1/subjects/rita", None).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!(first, again, "the first receipt, unchanged");
        // Asking for suppression later erases again, with it.
        let (s, suppressed) = send(
            &node,
            Method::DELETE,
            "/v1/subjects/rita?suppress=true",
            None,
        )
        .await;
        assert_eq!(s, 201, "{suppressed}");
        assert_eq!(suppressed["suppressed"], true);
        let (s, again) = send(
            &node,
            Method::DELETE,
            "/v1/subjects/rita?suppress=true",
            None,
        )
        .await;
        assert_eq!((s, &again), (200, &suppressed));
        let (s, again) = send(&node, Method::DELETE, "/v1/subjects/rita", None).await;
        assert_eq!(
            (s, &again),
            (200, &suppressed),
            "a suppressed subject stays suppressed"
        );
        let (s, stored) = send(&node, Method::GET, "/v1/subjects/rita/erasure", None).await;
        assert_eq!((s, &stored), (200, &suppressed), "the latest receipt");

        let (s, key) = node
            .send(Method::GET, "/.well-known/candor-receipt-key", None, None)
            .await;
        assert_eq!(s, 200);
        let public =
            candor_domain::receipt::parse_public_key(key["public_key"].as_str().unwrap()).unwrap();
        let text = first.to_string();
        assert!(candor_domain::receipt::verify(&text, &public).is_ok());
        let mut tampered = first.clone();
        tampered["parts"][0]["count"] = json!(0);
        let e = candor_domain::receipt::verify(&tampered.to_string(), &public).unwrap_err();
        assert!(e.to_string().contains("parts"), "{e}");

        for path in [
            "/v1/subjects/nobody-here",
            "/v1/subjects/nobody-here/export",
            "/v1/subjects/nobody-here/erasure",
        ] {
            let m = if path.ends_with("here") {
                Method::DELETE
            } else {
                Method::GET
            };
            let (s, v) = send(&node, m, path, None).await;
            assert_eq!(s, 404, "{path}: {v}");
            assert_eq!(v["error"]["code"], "not_found");
        }
        let (s, v) = send(
            &node,
            Method::GET,
            "/v1/subjects/rita/export?format=xml",
            None,
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("format"),
            "{v}"
        );
        let (s, v) = send(
            &node,
            Method::POST,
            "/v1/erasures",
            Some(json!({"ids": []})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        // Staff scopes only: a recommend key cannot export.
        let (s, _) = node.get("/v1/subjects/rita/export", &node.recommend).await;
        assert_eq!(s, 403);
        node.stop().await;
    }
);

both_stores!(
    suppressed_subjects_events_are_dropped_while_and_after_erasure,
    |db: TestDb| async move {
        let node = Arc::new(Node::start(&db).await);
        subject_with_data(&node, "sam").await;
        let sender = {
            let node = node.clone();
            tokio::spawn(async move {
                let mut suppressed = 0;
                for round in 0..40 {
                    let batch: Vec<Value> = (0..25)
                        .map(|i| json!({"type": "track", "userId": "sam", "event": "Product Viewed",
                            "messageId": format!("sam-c-{round}-{i}"), "properties": {"product_id": "p-2"}}))
                        .collect();
                    let (s, v) = node.ingest("/v1/batch", json!({"batch": batch})).await;
                    assert_eq!(s, 200, "{v}");
                    suppressed += v["suppressed"].as_u64().unwrap();
                    tokio::task::yield_now().await;
                }
                suppressed
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (s, receipt) = send(
            &node,
            Method::DELETE,
            "/v1/subjects/sam?suppress=true",
            None,
        )
        .await;
        assert_eq!(s, 201, "{receipt}");
        assert_eq!(receipt["suppressed"], true);
        let suppressed = sender.await.unwrap();
        // After the erasure, more arrive, with contact data that would need a new key.
        let (s, v) = node
            .ingest(
                "/v1/batch",
                json!({"batch": [
                    {"type": "identify", "userId": "sam", "messageId": "sam-late-i", "traits": {"email": EMAIL}},
                    {"type": "track", "userId": "sam", "event": "Product Viewed", "messageId": "sam-late-t", "properties": {"product_id": "p-3"}},
                ]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["stored"].as_u64(), v["suppressed"].as_u64()),
            (Some(0), Some(2)),
            "{v}"
        );
        assert!(
            suppressed > 0,
            "some concurrent batches arrived after the erasure"
        );

        let raw = db.store().await.unwrap();
        let subject = node.app.subject_key("sam").unwrap();
        let held = raw.held_events(subject.as_str(), 10_000).await.unwrap();
        assert!(held.is_empty(), "nothing of sam is stored: {held:?}");
        assert!(
            raw.wrapped_data_key(subject.as_str())
                .await
                .unwrap()
                .is_none(),
            "no new key"
        );
        assert!(
            raw.contact_fields(subject.as_str())
                .await
                .unwrap()
                .is_empty()
        );
        node.app.flush_inventory_counts().await.unwrap();
        let counts = raw.inventory_counts().await.unwrap();
        let dropped: i64 = counts
            .iter()
            .filter(|(_, c, _)| c == "events_suppressed")
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(
            dropped as u64,
            suppressed + 2,
            "every dropped message is counted"
        );
        raw.close().await;
        Arc::into_inner(node).unwrap().stop().await;
    }
);

both_stores!(
    a_restriction_stops_every_use_until_lifted,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        subject_with_data(&node, "rhea").await;
        async fn profile(node: &Node) -> Value {
            node.get("/v1/subjects/rhea/profile", &node.recommend)
                .await
                .1
        }
        assert!(profile(&node).await["events_used"].as_u64().unwrap() > 0);

        let (s, v) = send(
            &node,
            Method::PUT,
            "/v1/subjects/rhea/restrictions/personalization",
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["decision"], "restricted");
        assert_eq!(node.state("rhea", "personalization").await, "restricted");
        assert_eq!(
            profile(&node).await["events_used"],
            0,
            "the very next read obeys it"
        );
        let (s, recs) = node
            .get("/v1/recommendations/rhea?surface=home", &node.recommend)
            .await;
        assert_eq!(s, 200, "{recs}");
        assert!(
            recs.to_string().contains("restricted"),
            "the answer says why: {recs}"
        );
        // A grant while restricted does not lift it.
        node.decide("rhea", "personalization", "granted").await;
        assert_eq!(node.state("rhea", "personalization").await, "restricted");
        // The data is kept.
        let (_, export) = send(&node, Method::GET, "/v1/subjects/rhea/export", None).await;
        assert_eq!(export["events"].as_array().unwrap().len(), 3);

        let (s, v) = send(
            &node,
            Method::DELETE,
            "/v1/subjects/rhea/restrictions/personalization",
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(node.state("rhea", "personalization").await, "granted");
        assert!(profile(&node).await["events_used"].as_u64().unwrap() > 0);

        let (s, v) = send(
            &node,
            Method::PUT,
            "/v1/subjects/rhea/restrictions/no_such_purpose",
            None,
        )
        .await;
        assert_eq!(s, 404, "{v}");
        node.stop().await;
    }
);

both_stores!(
    rectification_reseals_contact_and_rewrites_traits,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        subject_with_data(&node, "remy").await;
        let (s, v) = send(
            &node,
            Method::PATCH,
            "/v1/subjects/remy",
            Some(json!({"contact": {"email": "remy.new@example.org"}, "traits": {"favorite_category": "garden", "gender": "m"}})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["contact_fields"], 1);
        assert_eq!(v["events_rewritten"], 1);
        assert_eq!(v["protected_attributes"], 1);
        let (_, export) = send(&node, Method::GET, "/v1/subjects/remy/export", None).await;
        assert_eq!(export["contact"][0]["value"], "remy.new@example.org");
        let identify = export["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "identify")
            .unwrap()
            .clone();
        assert_eq!(
            identify["properties"]["favorite_category"], "garden",
            "{identify}"
        );
        assert_eq!(export["protected_attributes"][0]["value"], "m");

        for (body, field) in [
            (
                json!({"contact": {"favorite_category": "x"}}),
                "contact.favorite_category",
            ),
            (json!({"traits": {"email": "x@y.z"}}), "traits.email"),
            (json!({"traits": {"shoe_size": 9}}), "traits.shoe_size"),
            (json!({}), "body"),
        ] {
            let (s, v) = send(&node, Method::PATCH, "/v1/subjects/remy", Some(body)).await;
            assert_eq!(s, 422, "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{field}: {v}"
            );
        }
        let (s, _) = send(
            &node,
            Method::PATCH,
            "/v1/subjects/nobody",
            Some(json!({"traits": {"favorite_category": "x"}})),
        )
        .await;
        assert_eq!(s, 404);
        node.stop().await;
    }
);

both_stores!(
    requests_follow_the_legal_calendar,
    |db: TestDb| async move {
        // 2027-01-31T10:00:00Z
        let clock = Arc::new(ManualClock::new(1_801_389_600_000_000));
        let node = Node::start_with_clock(&db, clock.clone()).await;
        let (s, r) = send(&node, Method::POST, "/v1/requests", Some(json!({"subject": "gail", "kind": "erasure", "channel": "email", "verification_method": "reply from the account's address"}))).await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["status"], "identity_verified");
        assert_eq!(
            r["due_at"], "2027-02-28T23:59:59.999999Z",
            "a month from 31 January"
        );
        assert_eq!(r["clock_paused"], false);

        let (s, waiting) = send(
            &node,
            Method::POST,
            "/v1/requests",
            Some(json!({"subject": "hal", "kind": "access", "jurisdiction": "ccpa"})),
        )
        .await;
        assert_eq!(s, 201, "{waiting}");
        assert_eq!(waiting["status"], "received");
        assert_eq!(waiting["clock_paused"], true);

        for (body, field) in [
            (json!({"subject": "x", "kind": "forget"}), "kind"),
            (
                json!({"subject": "x", "kind": "access", "jurisdiction": "lgpd"}),
                "jurisdiction",
            ),
            (json!({"subject": "", "kind": "access"}), "id"),
            (
                json!({"subject": "x", "kind": "access", "channel": "pigeon"}),
                "channel",
            ),
        ] {
            let (s, v) = send(&node, Method::POST, "/v1/requests", Some(body)).await;
            assert_eq!(s, 422, "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{field}: {v}"
            );
        }
        let id = r["id"].as_str().unwrap();
        let (s, v) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{id}"),
            Some(json!({"status": "denied"})),
        )
        .await;
        assert_eq!(s, 422, "a denial needs a reason: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("reason"));

        // 40 days later: overdue, listed, and announced once.
        clock.advance(40 * 86_400 * 1_000_000);
        let (s, list) = send(&node, Method::GET, "/v1/admin/requests?overdue=true", None).await;
        assert_eq!(s, 200, "{list}");
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id], "the paused one is not overdue");
        assert_eq!(node.app.announce_overdue_requests().await.unwrap(), 1);
        assert_eq!(
            node.app.announce_overdue_requests().await.unwrap(),
            0,
            "once"
        );

        let (s, v) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{id}"),
            Some(json!({"extend": true})),
        )
        .await;
        assert_eq!(s, 422, "too late to extend: {v}");
        let (s, done) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{id}"),
            Some(json!({"status": "completed"})),
        )
        .await;
        assert_eq!(s, 200, "{done}");
        assert_eq!(done["status"], "completed");
        assert!(
            (done["fulfilment_days"].as_f64().unwrap() - 40.0).abs() < 1e-6,
            "{done}"
        );
        let (s, v) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{id}"),
            Some(json!({"status": "in_progress"})),
        )
        .await;
        assert_eq!(s, 422, "closed: {v}");

        let hal = waiting["id"].as_str().unwrap();
        let (s, v) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{hal}"),
            Some(json!({"status": "in_progress"})),
        )
        .await;
        assert_eq!(s, 422, "needs verification first: {v}");
        let (s, v) = send(
            &node,
            Method::PATCH,
            &format!("/v1/requests/{hal}"),
            Some(json!({"status": "identity_verified", "verification_method": "id document"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["clock_paused"], false);
        assert_eq!(
            v["due_at"], "2027-04-26T23:59:59.999999Z",
            "45 days counted from verification"
        );
        let (s, v) = send(&node, Method::GET, "/v1/admin/requests?status=bogus", None).await;
        assert_eq!(s, 422, "{v}");
        let (s, _) = send(&node, Method::GET, "/v1/requests/req_nope", None).await;
        assert_eq!(s, 404);
        let (_, metrics) = node.send(Method::GET, "/metrics", None, None).await;
        assert!(
            metrics
                .as_str()
                .unwrap()
                .contains("candor_rights_fulfilment_days"),
            "the KPI is exported"
        );
        node.stop().await;
    }
);

/// PostgreSQL: an erasure on one node clears what another node caches about the subject
/// (here its preferences) through the change feed, without waiting for any TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_erasure_reaches_the_other_nodes_caches() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Node::start(&db).await;
    let b = Node::start(&db).await;
    subject_with_data(&a, "pia").await;
    let (s, v) = a
        .send(
            Method::PUT,
            "/v1/subjects/pia/preferences",
            Some(&a.consent),
            Some(json!({"level": "full", "source": "preference_center"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    async fn level(node: &Node) -> Value {
        node.get("/v1/subjects/pia/preferences", &node.recommend)
            .await
            .1["level"]
            .clone()
    }
    assert_eq!(
        level(&b).await,
        "full",
        "node b holds pia's preferences now"
    );
    let (s, v) = send(&a, Method::DELETE, "/v1/subjects/pia", None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["store"] == "cluster")
            .unwrap()["status"],
        "notified"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while level(&b).await != "basic" {
        assert!(
            std::time::Instant::now() < deadline,
            "node b still serves erased preferences"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    b.stop().await;
    a.stop().await;
}

both_stores!(
    bulk_erasure_counts_each_subjects_rows_to_its_own_receipt,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        subject_with_data(&node, "bea").await;
        let (s, v) = node.decide("cy", "personalization", "granted").await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = node
            .ingest(
                "/v1/batch",
                json!({"batch": [
                    {"type": "track", "anonymousId": "cy-phone", "event": "Product Viewed", "messageId": "cy-a1", "properties": {"product_id": "p-9"}},
                    {"type": "identify", "userId": "cy", "anonymousId": "cy-phone", "messageId": "cy-i", "traits": {"email": "cy@example.org"}},
                    {"type": "track", "userId": "cy", "event": "Product Viewed", "messageId": "cy-t1", "properties": {"product_id": "p-1"}},
                    {"type": "track", "userId": "cy", "event": "Product Viewed", "messageId": "cy-t2", "properties": {"product_id": "p-2"}},
                ]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = send(
            &node,
            Method::POST,
            "/v1/erasures",
            Some(json!({"ids": ["bea", "cy", "nobody", "bea"], "suppress": true})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["erased"], 2, "{v}");
        assert_eq!(v["unknown"], json!([2]), "{v}");
        let receipt = |who: &'static str| {
            let node = &node;
            async move {
                send(
                    node,
                    Method::GET,
                    &format!("/v1/subjects/{who}/erasure"),
                    None,
                )
                .await
                .1
            }
        };
        let count = |r: &Value, artifact: &str| -> i64 {
            r["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["artifact"] == artifact)
                .unwrap()["count"]
                .as_i64()
                .unwrap()
        };
        let bea = receipt("bea").await;
        let cy = receipt("cy").await;
        assert_eq!(count(&bea, "events"), 3, "{bea}");
        assert_eq!(count(&bea, "protected_attributes"), 1);
        assert_eq!(
            count(&cy, "events"),
            2,
            "cy's own events (the session's view joined only if its purpose allows): {cy}"
        );
        assert_eq!(count(&cy, "contact_fields"), 1);
        assert_eq!(count(&bea, "contact_fields"), 1);
        assert!(count(&cy, "identity_links") >= 1, "{cy}");
        let raw = db.store().await.unwrap();
        for who in ["bea", "cy", "cy-phone"] {
            let key = node.app.subject_key(who).unwrap();
            assert!(
                raw.held_events(key.as_str(), 100).await.unwrap().is_empty(),
                "{who}"
            );
            assert!(
                raw.is_suppressed(key.as_str()).await.unwrap(),
                "{who} is suppressed"
            );
        }
        raw.close().await;
        node.stop().await;
    }
);
