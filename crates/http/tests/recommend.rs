//! Explained recommendations end to end, on SQLite and PostgreSQL, over the demo shop.

mod common;

use std::time::{Duration, Instant};

use candor_domain::PurposeId;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::json;

async fn shop(db: &TestDb) -> Node {
    let node = Node::start(db).await;
    let cfg = candor_app::demo::DemoConfig {
        customers: 300,
        products: 400,
        now_unix: node.app.now() / 1_000_000,
        ..Default::default()
    };
    candor_app::demo::load(&node.app, &cfg, |_, _| {})
        .await
        .unwrap();
    node
}

/// A demo customer who currently allows personalization and has behavior on file.
async fn consenting_customer(node: &Node) -> String {
    let p = PurposeId::parse("personalization").unwrap();
    for i in 1..=300 {
        let id = format!("cust-{i:04}");
        let key = node.app.subject_key(&id).unwrap();
        if node.app.consent_status(&key, &p).await.unwrap().allows()
            && node
                .app
                .store
                .item_events(key.as_str(), 5)
                .await
                .unwrap()
                .len()
                >= 3
        {
            return id;
        }
    }
    panic!("no consenting customer in the demo shop");
}

fn rec_path(id: &str, rest: &str) -> String {
    format!("/v1/recommendations/{id}?surface=home{rest}")
}

both_stores!(
    explained_recommendations_follow_consent_level_and_filters,
    |db: TestDb| async move {
        let node = shop(&db).await;
        let cust = consenting_customer(&node).await;

        // Before any training: popularity, and it says so.
        let (s, v) = node.get(&rec_path(&cust, ""), &node.recommend).await;
        assert_eq!(s, 200, "{v}");
        assert!(
            v["fallback"].as_str().unwrap().contains("no model trained"),
            "{v}"
        );

        let (s, trained) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 201, "{trained}");
        assert!(
            trained["subjects_excluded_without_consent"]
                .as_u64()
                .unwrap()
                > 0,
            "subjects without consent are left out: {trained}"
        );
        let version = trained["version"].as_str().unwrap().to_owned();

        // New subjects start at basic; the person moves to full.
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(prefs["level"], "basic");
        let (s, prefs) = node
            .send(
                Method::PUT,
                &format!("/v1/subjects/{cust}/preferences"),
                Some(&node.recommend),
                Some(json!({"level": "full", "declared_interests": ["garden"]})),
            )
            .await;
        assert_eq!(s, 200, "{prefs}");
        let (_, v) = node.get(&rec_path(&cust, "&k=8"), &node.recommend).await;
        assert_eq!(
            (v["level_applied"].as_str(), v["model_version"].as_str()),
            (Some("full"), Some(version.as_str())),
            "{v}"
        );
        assert_eq!(
            v["confidence_calibrated"], true,
            "training fits a calibration"
        );
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 8);
        for it in items {
            assert!(
                !it["reasons"].as_array().unwrap().is_empty()
                    && !it["purposes"].as_array().unwrap().is_empty(),
                "{it}"
            );
            assert_ne!(
                it["category"], "pharmacy",
                "sensitive category without opt-in"
            );
        }
        let reasons: Vec<&str> = items
            .iter()
            .flat_map(|i| {
                i["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
            })
            .collect();
        assert!(
            reasons.iter().any(|r| r.starts_with("Because you")),
            "behavioral reasons at full: {reasons:?}"
        );
        assert!(v["filters"].as_array().unwrap().iter().any(|f| {
            f.as_str()
                .unwrap()
                .contains("sensitive categories excluded")
        }));

        // Revocation takes effect on the very next request.
        node.decide(&cust, "personalization", "denied").await;
        let (_, v) = node.get(&rec_path(&cust, ""), &node.recommend).await;
        assert_eq!(v["level_applied"], "off", "{v}");
        let all_popular = v["items"].as_array().unwrap().iter().all(|i| {
            i["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| !r.as_str().unwrap().starts_with("Because you"))
        });
        assert!(all_popular, "nothing personal after revocation: {v}");
        node.decide(&cust, "personalization", "granted").await;

        // A quiet period makes answers non-personal while it lasts.
        let from = candor_domain::format_micros(node.app.now() - 60_000_000);
        let until = candor_domain::format_micros(node.app.now() + 3_600_000_000);
        node.send(Method::PUT, &format!("/v1/subjects/{cust}/preferences"), Some(&node.recommend), Some(json!({"level": "full", "quiet_periods": [{"from": from, "until": until, "label": "Mother's Day"}]}))).await;
        let (_, v) = node.get(&rec_path(&cust, ""), &node.recommend).await;
        assert_eq!(
            (v["level_applied"].as_str(), v["fallback"].as_str()),
            (Some("off"), Some("quiet period")),
            "{v}"
        );

        // Sensitive categories appear only with an explicit opt-in.
        node.send(Method::PUT, &format!("/v1/subjects/{cust}/preferences"), Some(&node.recommend), Some(json!({"level": "basic", "declared_interests": ["pharmacy"], "sensitive_opt_ins": ["pharmacy"]}))).await;
        let (_, v) = node.get(&rec_path(&cust, "&k=5"), &node.recommend).await;
        assert!(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["category"] == "pharmacy"),
            "opted-in sensitive interest is served: {v}"
        );

        // Context: the item on screen is never recommended back.
        let first = v["items"][0]["item_id"].as_str().unwrap().to_owned();
        let (s, v) = node.post(&format!("/v1/recommendations/{cust}"), &node.recommend, json!({"surface": "product", "k": 5, "context": {"current_item": first, "cart": []}})).await;
        assert_eq!(s, 200, "{v}");
        assert!(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["item_id"] != first.as_str())
        );

        // An unknown subject gets a non-personal answer, not an error.
        let (s, v) = node
            .get(&rec_path("nobody-we-know", ""), &node.recommend)
            .await;
        assert_eq!((s, v["level_applied"].as_str()), (200, Some("off")));

        // Every response is a pseudonymous decision with positions, for the fairness audit.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = node
                .app
                .store
                .protected_decision_log(Some("home"), 0)
                .await
                .unwrap();
            if log.len() >= 8 {
                assert!(log.iter().all(|d| d.subject_key.len() == 64));
                break;
            }
            assert!(Instant::now() < deadline, "decisions not logged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node.stop().await;
    }
);

both_stores!(
    bad_requests_and_corrupt_models_are_refused,
    |db: TestDb| async move {
        let node = shop(&db).await;
        let (_, trained) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&node.admin),
                None,
            )
            .await;
        let good = trained["version"].as_str().unwrap().to_owned();
        let cases = [
        (node.get(&rec_path("c", "&k=0"), &node.recommend).await, 422, "invalid_field"),
        (node.get(&rec_path("c", "&k=500"), &node.recommend).await, 422, "invalid_field"),
        (node.get(&rec_path("c", "&k=abc"), &node.recommend).await, 400, "invalid_query"),
        (node.get("/v1/recommendations/c?surface=billboard", &node.recommend).await, 422, "invalid_field"),
        (node.get("/v1/recommendations/c", &node.recommend).await, 400, "invalid_query"),
        (node.send(Method::PUT, "/v1/subjects/c/preferences", Some(&node.recommend), Some(json!({"level": "max"}))).await, 422, "invalid_field"),
        (node.send(Method::PUT, "/v1/subjects/c/preferences", Some(&node.recommend), Some(json!({"level": "basic", "declared_interests": ["moon"]}))).await, 422, "invalid_field"),
        (node.send(Method::PUT, "/v1/subjects/c/preferences", Some(&node.recommend), Some(json!({"level": "basic", "sensitive_opt_ins": ["garden"]}))).await, 422, "invalid_field"),
        (node.send(Method::PUT, "/v1/subjects/c/preferences", Some(&node.recommend), Some(json!({"level": "basic", "quiet_periods": [{"from": "tomorrow", "until": "later"}]}))).await, 422, "invalid_field"),
        (node.send(Method::POST, "/v1/admin/models/nope/activate", Some(&node.admin), None).await, 404, "not_found"),
    ];
        for (i, ((status, body), want, code)) in cases.iter().enumerate() {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (want, Some(*code)),
                "case {i}: {body}"
            );
        }

        // A stored model whose bytes were damaged is refused; the current one keeps serving.
        let mut damaged = node.app.store.model_version(&good).await.unwrap().unwrap();
        damaged.version = "item-knn-damaged".into();
        damaged.body = damaged.body.chars().rev().collect();
        node.app
            .store
            .save_model(
                &damaged,
                &candor_domain::AuditDraft::new("test", "model.train", "x", json!({})),
            )
            .await
            .unwrap();
        let (s, v) = node
            .send(
                Method::POST,
                "/v1/admin/models/item-knn-damaged/activate",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        let (_, v) = node.get(&rec_path("c", ""), &node.recommend).await;
        assert_eq!(v["model_version"], good.as_str());
        let (_, models) = node.get("/v1/admin/models", &node.admin).await;
        assert_eq!(
            models
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["active"] == true)
                .count(),
            1
        );
        node.stop().await;
    }
);

both_stores!(
    low_confidence_answers_fall_back_and_say_so,
    |db: TestDb| async move {
        let node = Node::start_with(&db, std::sync::Arc::new(candor_app::SystemClock), |c| {
            c.recommend.low_confidence = 0.99
        })
        .await;
        let cfg = candor_app::demo::DemoConfig {
            customers: 300,
            products: 400,
            now_unix: node.app.now() / 1_000_000,
            ..Default::default()
        };
        candor_app::demo::load(&node.app, &cfg, |_, _| {})
            .await
            .unwrap();
        let cust = consenting_customer(&node).await;
        node.send(
            Method::POST,
            "/v1/admin/models/train",
            Some(&node.admin),
            None,
        )
        .await;
        node.send(
            Method::PUT,
            &format!("/v1/subjects/{cust}/preferences"),
            Some(&node.recommend),
            Some(json!({"level": "full"})),
        )
        .await;
        let (_, v) = node.get(&rec_path(&cust, ""), &node.recommend).await;
        assert_eq!(v["level_applied"], "off", "{v}");
        assert!(
            v["fallback"]
                .as_str()
                .unwrap()
                .contains("confidence threshold"),
            "{v}"
        );
        node.stop().await;
    }
);
