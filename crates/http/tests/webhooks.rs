//! Webhooks downstream systems can act on: a material purpose change that moves consenting
//! subjects to `needs_renewal` announces them, in batches, signed like every delivery.

mod common;

use std::time::{Duration, Instant};

use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::{Node, receiver};
use reqwest::Method;
use serde_json::json;

both_stores!(
    a_material_change_announces_every_subject_who_must_renew,
    |db: TestDb| async move {
        let (url, received) = receiver().await;
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let (s, v) = node
            .post("/v1/admin/webhooks", &node.admin, json!({"url": url}))
            .await;
        assert_eq!(s, 201, "{v}");
        for id in ["r-1", "r-2", "r-3"] {
            node.decide(id, "personalization", "granted").await;
        }
        node.decide("r-4", "personalization", "granted").await;
        node.decide("r-4", "personalization", "denied").await;
        // No webhook takes external ids, so recording consent sealed none (and made no key).
        let r1 = node.app.subject_key("r-1").unwrap();
        assert_eq!(
            node.app
                .raw_store()
                .wrapped_data_key(r1.as_str())
                .await
                .unwrap(),
            None
        );
        // A wording change is not material: nobody must renew. A new data category is.
        for (categories, material) in [
            (json!(["browsing", "purchase"]), false),
            (json!(["browsing", "purchase", "location"]), true),
        ] {
            let body = json!({"id": "personalization", "title": "Recommendations for you",
                "description": "We use what you browse and buy to suggest products you may like.",
                "legal_basis": "consent", "categories": categories, "expires_after_days": 365,
                "person_level": true});
            let (s, v) = node
                .send(
                    Method::PUT,
                    "/v1/admin/purposes/personalization",
                    Some(&node.admin),
                    Some(body),
                )
                .await;
            assert_eq!((s, &v["material"]), (200, &json!(material)), "{v}");
        }

        let deadline = Instant::now() + Duration::from_secs(10);
        let renewal = loop {
            let found = received
                .lock()
                .unwrap()
                .iter()
                .find(|p| p["type"] == "consent.needs_renewal")
                .cloned();
            if let Some(p) = found {
                break p;
            }
            assert!(Instant::now() < deadline, "no renewal webhook");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(renewal["purpose"], "personalization");
        assert_eq!(renewal["current_version"], 2);
        let mut keys: Vec<String> = renewal["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["consented_version"], 1);
                s["subject_key"].as_str().unwrap().to_owned()
            })
            .collect();
        keys.sort();
        let mut want: Vec<String> = ["r-1", "r-2", "r-3"]
            .iter()
            .map(|id| node.app.subject_key(id).unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(
            keys, want,
            "the three who granted, not the one who withdrew"
        );
        assert_eq!(
            (renewal["batch"].as_u64(), renewal["batches"].as_u64()),
            (Some(0), Some(1))
        );
        // Each of them is told the same through the consent API.
        assert_eq!(node.state("r-1", "personalization").await, "needs_renewal");
        node.stop().await;
    }
);

both_stores!(
    a_webhook_may_carry_the_external_id_sealed_until_delivery,
    |db: TestDb| async move {
        let (with_url, with_id) = receiver().await;
        let (plain_url, plain) = receiver().await;
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        for (url, include) in [(&with_url, true), (&plain_url, false)] {
            let (s, v) = node
                .post(
                    "/v1/admin/webhooks",
                    &node.admin,
                    json!({"url": url, "include_external_id": include}),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
        node.decide("mail-user-7", "personalization", "granted")
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while with_id.lock().unwrap().is_empty() || plain.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "webhooks not delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let key = node.app.subject_key("mail-user-7").unwrap().to_string();
        let sent = with_id.lock().unwrap()[0].clone();
        assert_eq!(sent["external_id"], "mail-user-7", "{sent}");
        assert_eq!(sent["subject_key"], key.as_str());
        let other = plain.lock().unwrap()[0].clone();
        assert!(other.get("external_id").is_none(), "{other}");
        assert_eq!(other["subject_key"], key.as_str());
        // The id is never stored readable: the outbox row holds it sealed.
        let (_, hooks) = node.get("/v1/admin/webhooks", &node.admin).await;
        assert!(
            hooks
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["include_external_id"] == true)
        );
        if let Some(path) = db.sqlite_path() {
            node.app.raw_store().checkpoint().await.unwrap();
            let bytes = std::fs::read(path).unwrap();
            assert!(
                !bytes.windows(11).any(|w| w == b"mail-user-7"),
                "the external id is in the database file in the clear"
            );
        }
        node.stop().await;
    }
);
