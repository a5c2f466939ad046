//! The shop's catalog over HTTP, on SQLite and PostgreSQL: bulk upsert as a JSON array and as
//! JSON Lines, typed per-row errors with all-or-nothing and keep-the-rest, list and read, delete,
//! sensitive categories from configuration, and the effect on serving without a restart
//! (unavailable and deleted items are never recommended, new items are, a trained model keeps
//! serving after items are added).

mod common;

use std::sync::Arc;

use candor_app::SystemClock;
use candor_app::config::SensitiveCategory;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

async fn node(db: &TestDb) -> Node {
    Node::start_with(db, Arc::new(SystemClock), |c| {
        c.catalog.max_category_depth = 3;
        c.catalog.sensitive = vec![SensitiveCategory {
            kind: "health".into(),
            paths: vec!["Health > Pharmacy".into()],
        }];
        c.recommend.exploration_slot = false;
        c.recommend.category_cap = 10;
    })
    .await
}

async fn put(node: &Node, query: &str, body: String) -> (u16, Value) {
    let resp = node
        .http
        .put(node.url(&format!("/v1/admin/catalog/items{query}")))
        .bearer_auth(&node.admin)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn recommended(node: &Node) -> Vec<String> {
    let (s, v) = node
        .get(
            "/v1/recommendations/visitor-1?surface=home&k=20",
            &node.recommend,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_owned())
        .collect()
}

fn item(id: &str, category: &str, extra: Value) -> Value {
    let mut v =
        json!({"id": id, "title": format!("Item {id}"), "category": category, "price": 9.5});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

both_stores!(
    catalog_upsert_list_delete_and_serving,
    |db: TestDb| async move {
        let node = node(&db).await;
        let items = json!([
            item(
                "k1",
                "Home > Kitchen",
                json!({"brand": "Acme", "currency": "usd",
            "image_url": "https://img.example/k1.jpg", "attributes": {"colour": "red"}})
            ),
            item(
                "k2",
                "Home > Kitchen",
                json!({"availability": "out_of_stock"})
            ),
            item("g1", "Garden", json!({})),
            item("p1", "Health > Pharmacy > Vitamins", json!({})),
            item("b1", "Books", json!({"sensitive": "health"})),
        ]);
        let (s, v) = put(&node, "", items.to_string()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["received"].as_u64(), v["upserted"].as_u64()),
            (Some(5), Some(5))
        );

        // Read back: one item, and pages in id order.
        let (s, k1) = node.get("/v1/admin/catalog/items/k1", &node.admin).await;
        assert_eq!(s, 200, "{k1}");
        assert_eq!(k1["category"], json!(["Home", "Kitchen"]));
        assert_eq!(
            (k1["price"].as_f64(), k1["currency"].as_str()),
            (Some(9.5), Some("USD"))
        );
        assert_eq!(k1["brand"], "Acme");
        assert_eq!(k1["attributes"], json!({"colour": "red"}));
        assert_eq!(k1["availability"], "in_stock");
        let (_, p1) = node.get("/v1/admin/catalog/items/p1", &node.admin).await;
        assert_eq!(p1["sensitive"], "health", "{p1}");
        let (_, b1) = node.get("/v1/admin/catalog/items/b1", &node.admin).await;
        assert_eq!(b1["sensitive"], "health", "{b1}");
        let (s, page) = node
            .get("/v1/admin/catalog/items?limit=2", &node.admin)
            .await;
        assert_eq!(s, 200, "{page}");
        let ids = |p: &Value| -> Vec<String> {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(&page), ["b1", "g1"]);
        assert_eq!(page["next"], "g1");
        let (_, page2) = node
            .get("/v1/admin/catalog/items?limit=2&after=g1", &node.admin)
            .await;
        assert_eq!(ids(&page2), ["k1", "k2"]);

        // Serving: the out-of-stock item and the sensitive ones are never recommended.
        let recs = recommended(&node).await;
        assert!(
            recs.contains(&"k1".to_owned()) && recs.contains(&"g1".to_owned()),
            "{recs:?}"
        );
        for never in ["k2", "p1", "b1"] {
            assert!(!recs.contains(&never.to_owned()), "{never} in {recs:?}");
        }

        // A new item is served at once; a deleted one is gone from listing and serving at once.
        let (s, v) = put(&node, "", item("n1", "Garden", json!({})).to_string()).await;
        assert_eq!(s, 200, "{v}");
        assert!(recommended(&node).await.contains(&"n1".to_owned()));
        let (s, _) = node
            .send(
                Method::DELETE,
                "/v1/admin/catalog/items/g1",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 204);
        let (s, v) = node
            .send(
                Method::DELETE,
                "/v1/admin/catalog/items/g1",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
        let (s, _) = node.get("/v1/admin/catalog/items/g1", &node.admin).await;
        assert_eq!(s, 404);
        assert!(!recommended(&node).await.contains(&"g1".to_owned()));
        // Back in stock, and upserting a deleted item brings it back.
        let lines = format!(
            "{}\n\n{}\n",
            item("k2", "Home > Kitchen", json!({"availability": "in_stock"})),
            item("g1", "Garden", json!({}))
        );
        let (s, v) = put(&node, "", lines).await;
        assert_eq!((s, v["upserted"].as_u64()), (200, Some(2)), "{v}");
        let recs = recommended(&node).await;
        assert!(
            recs.contains(&"k2".to_owned()) && recs.contains(&"g1".to_owned()),
            "{recs:?}"
        );

        // Every catalog change is in the audit log.
        let (_, log) = node.get("/v1/audit/log?limit=100", &node.auditor).await;
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"catalog.delete") && actions.contains(&"catalog.upsert"),
            "{log}"
        );
        node.stop().await;
    }
);

both_stores!(
    bad_rows_are_named_and_batches_are_all_or_nothing_unless_asked,
    |db: TestDb| async move {
        let node = node(&db).await;
        let batch = json!([
            item("ok1", "Garden", json!({})),
            {"title": "no id", "category": "Garden", "price": 1},
            item("bad-price", "Garden", json!({"price": "cheap"})),
            item("bad-currency", "Garden", json!({"currency": "ZZZ"})),
            item("too-deep", "A > B > C > D", json!({})),
            item("ok2", "Garden", json!({})),
        ]);
        let (s, v) = put(&node, "", batch.to_string()).await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["error"]["code"], "invalid_rows");
        let named: Vec<(u64, &str)> = v["error"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["row"].as_u64().unwrap(), r["field"].as_str().unwrap()))
            .collect();
        assert_eq!(
            named,
            [(1, "id"), (2, "price"), (3, "currency"), (4, "category")]
        );
        let (_, page) = node.get("/v1/admin/catalog/items", &node.admin).await;
        assert_eq!(page["items"], json!([]), "nothing stored: {page}");

        let (s, v) = put(&node, "?on_error=keep_valid", batch.to_string()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["upserted"], 2);
        assert_eq!(v["rejected"].as_array().unwrap().len(), 4);
        let (_, page) = node.get("/v1/admin/catalog/items", &node.admin).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);

        // Malformed bodies are 400s naming the line; an unknown policy is a 400.
        let (s, v) = put(&node, "", "{\"id\": \"x\"}\n{nope\n".into()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("malformed_json"))
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("line 2"),
            "{v}"
        );
        let (s, _) = put(&node, "?on_error=sometimes", "[]".into()).await;
        assert_eq!(s, 400);
        let (s, v) = put(&node, "", "[]".into()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_batch"))
        );
        node.stop().await;
    }
);

both_stores!(
    a_trained_model_keeps_serving_when_items_are_added,
    |db: TestDb| async move {
        let node = node(&db).await;
        node.load_demo(60, 40).await;
        node.app.train("test", &|_| {}).await.unwrap();
        let before = node.app.serving().model_version().map(str::to_owned);
        assert!(before.is_some());
        let (s, v) = put(
            &node,
            "",
            item("brand-new", "Garden", json!({})).to_string(),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            node.app.serving().model_version().map(str::to_owned),
            before,
            "the model still fits the grown catalog"
        );
        // Deleting an item the model knows keeps the model too.
        let (_, page) = node
            .get("/v1/admin/catalog/items?limit=1", &node.admin)
            .await;
        let first = page["items"][0]["id"].as_str().unwrap().to_owned();
        let (s, _) = node
            .send(
                Method::DELETE,
                &format!("/v1/admin/catalog/items/{first}"),
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(
            node.app.serving().model_version().map(str::to_owned),
            before
        );
        node.stop().await;
    }
);

both_stores!(
    a_catalog_batch_may_be_larger_than_other_bodies,
    |db: TestDb| async move {
        // The test node allows 64 KiB bodies elsewhere; a catalog batch has its own limit (16 MiB).
        let node = node(&db).await;
        let rows: Vec<String> = (0..2000)
            .map(|n| {
                item(
                    &format!("bulk-{n:05}"),
                    "Garden",
                    json!({"brand": "A fairly long brand name"}),
                )
                .to_string()
            })
            .collect();
        let body = rows.join("\n");
        assert!(body.len() > 64 * 1024);
        let (s, v) = put(&node, "", body).await;
        assert_eq!((s, v["upserted"].as_u64()), (200, Some(2000)), "{v}");
        node.stop().await;
    }
);

both_stores!(
    bulk_writes_reach_serving_within_seconds,
    |db: TestDb| async move {
        use candor_app::personalization::catalog::{OnError, Refresh};
        let node = node(&db).await;
        let rows: Vec<Value> = (0..50)
            .map(|n| item(&format!("soon-{n}"), "Garden", json!({})))
            .collect();
        let r = node
            .app
            .upsert_items("test", &rows, OnError::RejectAll, Refresh::Soon)
            .await
            .unwrap();
        assert_eq!(r.upserted, 50);
        // Stored at once; served once the catalog-refresh job ran (about a second).
        let (_, page) = node
            .get("/v1/admin/catalog/items?limit=1000", &node.admin)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 50);
        let started = std::time::Instant::now();
        while node.app.serving_items() < 50 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "serving never saw the bulk write"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            recommended(&node)
                .await
                .iter()
                .any(|i| i.starts_with("soon-"))
        );
        node.stop().await;
    }
);
