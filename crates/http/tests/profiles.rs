//! Profiles and segments end to end, on SQLite and PostgreSQL: consented data only, revocation
//! on the next request, declared over inferred, provenance, lifecycle on controlled timestamps,
//! rule segments with explanations, and refusal of protected and sensitive attributes.

mod common;

use std::sync::Arc;

use candor_app::ManualClock;
use candor_domain::{MICROS_PER_DAY, Micros, format_micros, parse_rfc3339};
use candor_store::testing::TestDb;
use candor_store::{CatalogCategory, Item, both_stores};
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

fn now() -> Micros {
    parse_rfc3339("2030-06-01T00:00:00Z").unwrap()
}

/// A node on a fixed clock with a small catalog and a tracking plan whose orders carry items,
/// prices and quantities.
async fn setup(db: &TestDb) -> Node {
    let clock = Arc::new(ManualClock::new(now()));
    let node = Node::start_with(db, clock, |c| c.ingest.retention_interval_secs = 0).await;
    node.declare_shop_plan("reject").await;
    let p = |cat: &str, purposes: &[&str]| json!({"category": cat, "purposes": purposes});
    let inventory = json!({
        "events": {
            "track:Product Viewed": {"category": "browsing", "purposes": ["personalization", "analytics"], "properties": {
                "product_id": p("browsing", &["personalization", "analytics"]),
                "price": p("browsing", &["personalization"])}},
            "track:Order Completed": {"category": "purchase", "purposes": ["order_fulfilment"], "properties": {
                "order_id": p("purchase", &["order_fulfilment"]),
                "product_id": p("purchase", &["order_fulfilment"]),
                "price": p("purchase", &["order_fulfilment"]),
                "quantity": p("purchase", &["order_fulfilment"])}}
        },
        "traits": {
            "favorite_category": p("declared_preference", &["personalization"]),
            "gender": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true},
            "income_bracket": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true}
        }
    });
    let (s, v) = node
        .send(
            Method::PUT,
            "/v1/admin/inventory",
            Some(&node.admin),
            Some(inventory),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let cat = |id: &str, name: &str, sensitive: Option<&str>| CatalogCategory {
        id: id.into(),
        name: name.into(),
        sensitive_kind: sensitive.map(Into::into),
    };
    let item = |id: &str, category: &str, price_cents: i64| Item {
        id: id.into(),
        name: id.into(),
        category_id: category.into(),
        price_cents,
        ..Default::default()
    };
    node.app
        .upsert_catalog(
            "test",
            &[
                cat("garden", "Garden", None),
                cat("kitchen", "Kitchen", None),
                cat("health", "Health", Some("health")),
            ],
            &[
                item("SKU-G", "garden", 1500),
                item("SKU-K", "kitchen", 2500),
                item("SKU-H", "health", 999),
            ],
        )
        .await
        .unwrap();
    node
}

fn at(days_ago: i64) -> String {
    format_micros(now() - days_ago * MICROS_PER_DAY)
}

fn view(user: &str, id: &str, sku: &str, days_ago: i64) -> Value {
    json!({"type": "track", "event": "Product Viewed", "userId": user, "messageId": id,
           "timestamp": at(days_ago), "properties": {"product_id": sku}})
}

fn order(user: &str, id: &str, sku: &str, days_ago: i64, price: f64, qty: i64) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": id,
           "timestamp": at(days_ago),
           "properties": {"order_id": id, "product_id": sku, "price": price, "quantity": qty}})
}

async fn batch(node: &Node, messages: Vec<Value>) {
    let resp = node
        .http
        .post(node.url("/v1/batch"))
        .basic_auth(&node.ingest, Some(""))
        .json(&json!({ "batch": messages }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rejected"], json!([]), "{v}");
}

async fn profile(node: &Node, user: &str) -> Value {
    let (s, v) = node
        .get(&format!("/v1/subjects/{user}/profile"), &node.recommend)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

both_stores!(
    profiles_use_consented_data_only_and_follow_revocation,
    |db: TestDb| async move {
        let node = setup(&db).await;
        // Orders are kept for fulfilment (contract) without consent, but they do not shape a
        // profile until the person allows a purpose they could refuse.
        batch(&node, vec![order("bob", "b-o1", "SKU-G", 3, 15.0, 1)]).await;
        let bob = profile(&node, "bob").await;
        assert_eq!(bob["events_used"], 0, "{bob}");
        assert_eq!(bob["events_ignored_without_consent"], 1);
        assert_eq!(bob["interests"], json!([]));
        assert_eq!(bob["lifecycle"]["segment"], "unknown");

        node.decide("alice", "personalization", "granted").await;
        batch(
            &node,
            vec![
                view("alice", "a-v1", "SKU-G", 1),
                view("alice", "a-v2", "SKU-G", 2),
                view("alice", "a-v3", "SKU-K", 40),
                view("alice", "a-v4", "SKU-H", 0),
                order("alice", "a-o1", "SKU-G", 12, 15.0, 2),
            ],
        )
        .await;
        let p = profile(&node, "alice").await;
        assert_eq!(p["events_used"], 5, "{p}");
        assert_eq!(
            p["purposes_used"],
            json!(["order_fulfilment", "personalization"])
        );
        let interests = p["interests"].as_array().unwrap();
        let cats: Vec<&str> = interests
            .iter()
            .map(|i| i["category"].as_str().unwrap())
            .collect();
        assert_eq!(cats, ["garden", "kitchen"], "health is never inferred: {p}");
        let garden = &interests[0];
        assert_eq!(garden["source"], "inferred");
        assert_eq!(garden["name"], "Garden");
        assert_eq!(
            (
                garden["evidence"]["views"].as_u64(),
                garden["evidence"]["purchases"].as_u64()
            ),
            (Some(2), Some(1))
        );
        assert_eq!(
            garden["evidence"]["purposes"],
            json!(["order_fulfilment", "personalization"])
        );
        assert_eq!(garden["evidence"]["last_seen"], at(1));
        assert!(garden["score"].as_f64().unwrap() > 0.9, "{garden}");
        assert_eq!(p["rfm"]["orders"], 1);
        assert_eq!(p["rfm"]["spend"], 30.0, "price x quantity");
        assert_eq!(p["rfm"]["days_since_last_purchase"], 12);
        assert_eq!(p["rfm"]["source"], "inferred");
        assert_eq!(p["attributes"]["rfm.frequency"], 1);
        assert!(p["attributes"].get("affinity.health").is_none());

        // Revoked: the very next request ignores everything personalization allowed.
        node.decide("alice", "personalization", "denied").await;
        let p = profile(&node, "alice").await;
        assert_eq!(p["events_used"], 0, "{p}");
        assert_eq!(p["events_ignored_without_consent"], 5);
        assert_eq!(p["interests"], json!([]));
        assert_eq!(p["rfm"]["orders"], 0);
        assert_eq!(p["lifecycle"]["segment"], "unknown");

        // Someone Candor never heard of has an empty profile, not an error.
        let nobody = profile(&node, "nobody-at-all").await;
        assert_eq!(nobody["events_used"], 0);
        assert_eq!(
            nobody["lifecycle"]["explanation"],
            "no consented activity on record: unknown"
        );

        // Narrowing to one purpose; an undeclared one is a typed error.
        node.decide("alice", "personalization", "granted").await;
        let (s, v) = node
            .get(
                "/v1/subjects/alice/profile?purpose=analytics",
                &node.recommend,
            )
            .await;
        assert_eq!((s, v["events_used"].as_u64()), (200, Some(0)), "{v}");
        let (s, v) = node
            .get("/v1/subjects/alice/profile?purpose=nope", &node.recommend)
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("unknown_purpose"))
        );
        let (s, v) = node
            .get("/v1/subjects/alice/profile?colour=red", &node.recommend)
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_query"))
        );
        node.stop().await;
    }
);

both_stores!(
    declared_interests_outrank_inferred,
    |db: TestDb| async move {
        let node = setup(&db).await;
        node.decide("carol", "personalization", "granted").await;
        let mut messages: Vec<Value> = (0..6)
            .map(|i| view("carol", &format!("c-v{i}"), "SKU-G", i))
            .collect();
        messages.push(
            json!({"type": "identify", "userId": "carol", "messageId": "c-id",
        "timestamp": at(3), "traits": {"favorite_category": "Kitchen", "gender": "female"}}),
        );
        batch(&node, messages).await;
        let key = node.app.subject_key("carol").unwrap();
        node.app
            .raw_store()
            .set_declared_interests(key.as_str(), &["health".to_owned()])
            .await
            .unwrap();
        let p = profile(&node, "carol").await;
        let interests = p["interests"].as_array().unwrap();
        let order: Vec<(&str, &str)> = interests
            .iter()
            .map(|i| {
                (
                    i["category"].as_str().unwrap(),
                    i["source"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("health", "declared"),
                ("kitchen", "declared"),
                ("garden", "inferred")
            ],
            "{p}"
        );
        let kitchen = &interests[1];
        assert_eq!(kitchen["declared_via"], "trait:favorite_category");
        assert_eq!(kitchen["declared_purposes"], json!(["personalization"]));
        assert_eq!(
            (kitchen["rank"].as_u64(), kitchen["score"].as_f64()),
            (Some(2), Some(1.0))
        );
        assert!(interests[2]["score"].as_f64().unwrap() <= 1.0);
        assert_eq!(
            interests[0]["sensitive"], true,
            "shown to the person, never used by rules"
        );
        let attrs = &p["attributes"];
        assert_eq!(attrs["declared.kitchen"], true);
        assert_eq!(attrs["interest.top"], "kitchen", "{attrs}");
        assert!(attrs.get("declared.health").is_none() && attrs.get("affinity.health").is_none());
        assert!(
            !p.to_string().contains("female"),
            "protected traits never reach a profile"
        );

        // Declared interests need consent as much as behavior does.
        node.decide("carol", "personalization", "denied").await;
        let p = profile(&node, "carol").await;
        assert_eq!(p["interests"], json!([]), "{p}");
        node.stop().await;
    }
);

both_stores!(
    lifecycle_segments_on_controlled_timestamps,
    |db: TestDb| async move {
        let node = setup(&db).await;
        for u in ["new-1", "active-1", "risk-1", "lapsed-1", "browser-1"] {
            node.decide(u, "personalization", "granted").await;
        }
        batch(
            &node,
            vec![
                view("new-1", "n1", "SKU-G", 5),
                order("new-1", "n2", "SKU-G", 2, 15.0, 1),
                order("active-1", "a1", "SKU-G", 200, 15.0, 1),
                order("active-1", "a2", "SKU-G", 80, 15.0, 1),
                order("active-1", "a3", "SKU-K", 60, 25.0, 2),
                order("active-1", "a4", "SKU-G", 30, 15.0, 1),
                order("active-1", "a5", "SKU-G", 12, 15.0, 1),
                order("risk-1", "r1", "SKU-G", 200, 15.0, 1),
                order("risk-1", "r2", "SKU-G", 80, 15.0, 1),
                order("lapsed-1", "l1", "SKU-G", 300, 15.0, 1),
                view("lapsed-1", "l2", "SKU-G", 10),
                view("browser-1", "w1", "SKU-K", 100),
                view("browser-1", "w2", "SKU-K", 3),
            ],
        )
        .await;
        let seg = |user: &'static str| {
            let node = &node;
            async move {
                let (s, v) = node
                    .get(&format!("/v1/subjects/{user}/segments"), &node.recommend)
                    .await;
                assert_eq!(s, 200, "{v}");
                v
            }
        };
        let v = seg("new-1").await;
        assert_eq!(v["lifecycle"]["segment"], "new", "{v}");
        assert_eq!(
            v["lifecycle"]["explanation"],
            "first seen 5 days ago (within 30 days) and 1 order so far: new"
        );
        let v = seg("active-1").await;
        assert_eq!(
            v["lifecycle"]["explanation"],
            "last purchase 12 days ago (within 45 days) and 4 orders in 90 days: active"
        );
        assert_eq!(
            v["rfm"],
            json!({"recency": 5, "frequency": 4, "monetary": 3})
        );
        let v = seg("risk-1").await;
        assert_eq!(v["lifecycle"]["segment"], "at_risk", "{v}");
        assert!(
            v["lifecycle"]["explanation"]
                .as_str()
                .unwrap()
                .starts_with("last purchase 80 days ago (more than 45 days)")
        );
        let v = seg("lapsed-1").await;
        assert_eq!(
            v["lifecycle"]["segment"], "lapsed",
            "recent browsing is not a purchase: {v}"
        );
        let v = seg("browser-1").await;
        assert_eq!(
            v["lifecycle"]["explanation"],
            "no purchases, last activity 3 days ago (within 45 days) and 0 orders in 90 days: active"
        );
        let p = profile(&node, "active-1").await;
        assert_eq!(p["rfm"]["spend"], 110.0, "{}", p["rfm"]);
        assert_eq!(p["rfm"]["orders_90d"], 4);
        node.stop().await;
    }
);

async fn create(node: &Node, rule: Value) -> (u16, Value) {
    node.post(
        "/v1/admin/segments",
        &node.admin,
        json!({"name": "Test segment", "description": "for tests", "rule": rule}),
    )
    .await
}

both_stores!(
    rule_segments_explain_membership_and_refuse_protected_data,
    |db: TestDb| async move {
        let node = setup(&db).await;
        node.decide("dana", "personalization", "granted").await;
        batch(
            &node,
            vec![
                order("dana", "d1", "SKU-G", 20, 15.0, 1),
                order("dana", "d2", "SKU-G", 15, 15.0, 1),
                order("dana", "d3", "SKU-G", 10, 15.0, 1),
                view("dana", "d4", "SKU-K", 1),
            ],
        )
        .await;

        let rule = json!({"all": [
        {"attribute": "rfm.frequency", "op": ">=", "value": 3},
        {"attribute": "affinity.garden", "op": ">", "value": 0.2}]});
        let (s, fans) = node
            .post(
                "/v1/admin/segments",
                &node.admin,
                json!({"name": "Garden regulars", "rule": rule}),
            )
            .await;
        assert_eq!(s, 201, "{fans}");
        assert_eq!(fans["rule"], rule);
        assert_eq!(fans["problem"], Value::Null);
        let id = fans["id"].as_str().unwrap().to_owned();
        let (s, other) = create(
            &node,
            json!({"any": [{"attribute": "lifecycle", "op": "in", "value": ["lapsed", "at_risk"]},
                       {"attribute": "declared.kitchen", "op": "==", "value": true}]}),
        )
        .await;
        assert_eq!(s, 201, "{other}");

        let (s, list) = node.get("/v1/admin/segments", &node.admin).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);
        let (s, one) = node
            .get(&format!("/v1/admin/segments/{id}"), &node.admin)
            .await;
        assert_eq!((s, one["name"].as_str()), (200, Some("Garden regulars")));

        let (_, v) = node
            .get("/v1/subjects/dana/segments", &node.recommend)
            .await;
        assert_eq!(v["lifecycle"]["segment"], "active", "{v}");
        let members = v["segments"].as_array().unwrap();
        assert_eq!(members.len(), 1, "only the matching segment: {v}");
        assert_eq!(members[0]["id"], id.as_str());
        let why = members[0]["explanation"].as_str().unwrap();
        assert!(
            why == "rfm.frequency is 3, which is >= 3 and affinity.garden is 0.8971, which is > 0.2",
            "{why}"
        );

        // Refused: protected attributes (fixed list and the tracking plan) and sensitive categories.
        for (rule, named) in [
            (
                json!({"attribute": "gender", "op": "==", "value": "female"}),
                "`gender` is a protected attribute",
            ),
            (
                json!({"all": [{"attribute": "orders", "op": ">", "value": 0}, {"attribute": "age_band", "op": "in", "value": ["18-24"]}]}),
                "rule.all[1].attribute",
            ),
            (
                json!({"attribute": "income_bracket", "op": "==", "value": "high"}),
                "`income_bracket` is a protected attribute",
            ),
            (
                json!({"attribute": "affinity.health", "op": ">", "value": 0.1}),
                "sensitive category `health`",
            ),
            (
                json!({"attribute": "declared.sensitive:religion", "op": "==", "value": true}),
                "sensitive",
            ),
            (
                json!({"attribute": "interest.top", "op": "==", "value": "Health"}),
                "sensitive category",
            ),
        ] {
            let (s, v) = create(&node, rule.clone()).await;
            assert_eq!(s, 422, "{rule}: {v}");
            assert_eq!(v["error"]["code"], "invalid_field");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(named), "{rule}: {msg}");
        }

        // Malformed input is a typed error naming the fault.
        let big: Vec<String> = (0..100).map(|i| format!("{i:0>95}")).collect();
        for (rule, fault) in [
            (json!("all"), "must be an object"),
            (json!({"all": []}), "rule.all"),
            (
                json!({"attribute": "orders", "op": "=~", "value": 1}),
                "`=~` is not one of",
            ),
            (
                json!({"attribute": "shoe_size", "op": ">", "value": 1}),
                "unknown attribute `shoe_size`",
            ),
            (
                json!({"attribute": "orders", "op": ">", "value": "many"}),
                "compared with a number",
            ),
            (
                json!({"attribute": "interest.top", "op": "in", "value": big}),
                "a rule may be at most",
            ),
        ] {
            let (s, v) = create(&node, rule.clone()).await;
            assert_eq!(s, 422, "{rule}: {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(fault),
                "{rule}: {v}"
            );
        }
        let (s, v) = node
            .post("/v1/admin/segments", &node.admin, json!({"name": "x"}))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_body")),
            "{v}"
        );
        let (s, v) = node
            .post(
                "/v1/admin/segments",
                &node.admin,
                json!({"name": " ", "rule": rule}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        let resp = node
            .http
            .post(node.url("/v1/admin/segments"))
            .bearer_auth(&node.admin)
            .header("content-type", "application/json")
            .body("{\"rule\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);

        // Creation and deletion are audited.
        let (s, v) = node
            .send(
                Method::DELETE,
                &format!("/v1/admin/segments/{id}"),
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 204, "{v}");
        let (s, v) = node
            .get(&format!("/v1/admin/segments/{id}"), &node.admin)
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
        let (s, _) = node
            .send(
                Method::DELETE,
                &format!("/v1/admin/segments/{id}"),
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 404);
        let (_, v) = node
            .get("/v1/subjects/dana/segments", &node.recommend)
            .await;
        assert_eq!(v["segments"], json!([]), "{v}");
        let (_, log) = node.get("/v1/audit/log", &node.auditor).await;
        let actions: Vec<(&str, &str)> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with("segment."))
            .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
            .collect();
        assert!(
            actions.contains(&("segment.create", id.as_str())),
            "{actions:?}"
        );
        assert!(
            actions.contains(&("segment.delete", id.as_str())),
            "{actions:?}"
        );
        let (_, verify) = node.get("/v1/audit/verify", &node.auditor).await;
        assert_eq!(verify["broken"], Value::Null, "{verify}");
        node.stop().await;
    }
);

both_stores!(
    aggregate_only_consent_builds_no_profile_and_no_segment,
    |db: TestDb| async move {
        let node = setup(&db).await;
        let (s, v) = node.get("/v1/purposes", &node.admin).await;
        assert_eq!(s, 200, "{v}");
        let flag = |id: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|p| p["id"] == id)
                .unwrap()["person_level"]
                .clone()
        };
        assert_eq!(
            (flag("personalization"), flag("analytics")),
            (json!(true), json!(false))
        );
        let (s, seg) = create(
            &node,
            json!({"any": [{"attribute": "affinity.garden", "op": ">", "value": 0},
                           {"attribute": "affinity.kitchen", "op": ">", "value": 0}]}),
        )
        .await;
        assert_eq!(s, 201, "{seg}");
        // A customer who allows only aggregate analytics: orders (contract) and views (analytics).
        node.decide("erin", "analytics", "granted").await;
        node.decide("erin", "personalization", "denied").await;
        batch(
            &node,
            vec![
                order("erin", "e1", "SKU-G", 5, 15.0, 1),
                view("erin", "e2", "SKU-G", 2),
            ],
        )
        .await;
        // An anonymous visitor with analytics consent only.
        node.decide("anon-1", "analytics", "granted").await;
        let mut anon = view("x", "a1", "SKU-K", 1);
        let m = anon.as_object_mut().unwrap();
        m.remove("userId");
        m.insert("anonymousId".into(), json!("anon-1"));
        batch(&node, vec![anon]).await;
        for user in ["erin", "anon-1"] {
            let p = profile(&node, user).await;
            assert_eq!(p["events_used"], 0, "{p}");
            assert_eq!(p["purposes_used"], json!([]), "{p}");
            assert_eq!(p["interests"], json!([]), "{p}");
            assert_eq!(p["lifecycle"]["segment"], "unknown", "{p}");
            let (s, v) = node
                .get(&format!("/v1/subjects/{user}/segments"), &node.recommend)
                .await;
            assert_eq!((s, v["segments"].clone()), (200, json!([])), "{v}");
        }
        // Personalization makes the same data count.
        node.decide("erin", "personalization", "granted").await;
        let p = profile(&node, "erin").await;
        assert_eq!(
            p["purposes_used"],
            json!(["order_fulfilment", "personalization"]),
            "{p}"
        );
        node.stop().await;
    }
);
