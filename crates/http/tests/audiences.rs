//! Advertising audiences over real HTTP, on both stores: only members who granted the
//! sale/sharing purpose and sent no GPC signal, as SHA-256 of normalized emails; counts
//! excluded by reason in the answer and the audit log; a revocation becomes a removal in the
//! next sync; CSV and signed webhook delivery.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use serde_json::{Value, json};
use sha2::Digest;

fn sha(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/audiences",
            axum::routing::post(move |body: String| {
                let received = received.clone();
                async move {
                    received
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/audiences", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn export(node: &Node, segment: &str, body: Value) -> (u16, Value) {
    node.post(
        &format!("/v1/admin/audiences/{segment}/exports"),
        &node.admin,
        body,
    )
    .await
}

both_stores!(
    audiences_hold_only_consented_people_and_revocations_become_removals,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_shop_plan("reject").await;
        let (s, v) = node.post("/v1/admin/purposes", &node.admin, json!({"id": "ads_sharing", "title": "Advertising partners", "description": "We share a hash of your email with ad platforms.", "legal_basis": "consent", "categories": ["contact"], "sale_or_sharing": true})).await;
        assert_eq!(s, 201, "{v}");
        for (user, email) in [
            ("alice", "  Alice@Example.com "),
            ("bob", "bob@example.com"),
            ("carol", "carol@example.com"),
        ] {
            node.decide(user, "personalization", "granted").await;
            let (s, v) = node.ingest("/v1/batch", json!({"batch": [
                {"type": "identify", "userId": user, "messageId": format!("{user}-id"), "traits": {"email": email}},
                {"type": "track", "event": "Product Viewed", "userId": user, "messageId": format!("{user}-v"), "properties": {"product_id": "p1"}}]})).await;
            assert_eq!(s, 200, "{v}");
        }
        node.decide("alice", "ads_sharing", "granted").await;
        node.decide("carol", "ads_sharing", "granted").await;
        // Carol's browser then sends Global Privacy Control: an opt-out of sale and sharing.
        let resp = node
            .http
            .post(node.url("/v1/subjects/carol/consents"))
            .bearer_auth(&node.consent)
            .header("sec-gpc", "1")
            .json(&json!({"source": "banner", "consents": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(node.state("carol", "ads_sharing").await, "denied");

        // A segment on a protected attribute cannot exist, so it can never be exported.
        let (s, v) = node.post("/v1/admin/segments", &node.admin, json!({"name": "Women", "rule": {"attribute": "gender", "op": "==", "value": "female"}})).await;
        assert_eq!(s, 422, "{v}");
        let (s, seg) = node.post("/v1/admin/segments", &node.admin, json!({"name": "Browsers", "rule": {"attribute": "events", "op": ">=", "value": 1}})).await;
        assert_eq!(s, 201, "{seg}");
        let seg = seg["id"].as_str().unwrap().to_owned();

        let (s, v) = export(&node, &seg, json!({"platform": "tiktok"})).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        let (s, v) = export(&node, "seg_missing", json!({"platform": "meta"})).await;
        assert_eq!(s, 404, "{v}");
        let (s, v) = export(
            &node,
            &seg,
            json!({"platform": "meta", "delivery": "webhook"}),
        )
        .await;
        assert_eq!(s, 422, "no audiences webhook yet: {v}");

        let (s, first) = export(&node, &seg, json!({"platform": "meta"})).await;
        assert_eq!(s, 200, "{first}");
        assert_eq!(first["included"], 1, "{first}");
        assert_eq!(
            first["excluded"],
            json!({"gpc_opt_out": 1, "no_sale_sharing_consent": 1})
        );
        assert_eq!(
            first["members"],
            json!([{"email_sha256": sha("alice@example.com"), "phone_sha256": null}])
        );
        assert_eq!(first["add"], first["members"]);
        assert_eq!(first["remove"], json!([]));
        assert!(
            !first.to_string().contains("alice@"),
            "no clear contact leaves"
        );

        // Alice revokes: the next sync removes her.
        node.decide("alice", "ads_sharing", "denied").await;
        let resp = node
            .http
            .post(node.url(&format!("/v1/admin/audiences/{seg}/exports?format=csv")))
            .bearer_auth(&node.admin)
            .json(&json!({"platform": "meta"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = resp.text().await.unwrap();
        assert_eq!(
            csv,
            format!(
                "action,email_sha256,phone_sha256\nremove,{},\n",
                sha("alice@example.com")
            )
        );

        // By signed webhook: nothing left to add or remove, and the counts travel with it.
        let (url, got) = receiver().await;
        let (s, v) = node
            .post(
                "/v1/admin/webhooks",
                &node.admin,
                json!({"url": url, "kind": "audiences"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (s, third) = export(
            &node,
            &seg,
            json!({"platform": "google", "delivery": "webhook"}),
        )
        .await;
        assert_eq!(s, 200, "{third}");
        assert_eq!(
            (
                third["included"].as_u64(),
                third["delivered_by_webhook"].as_bool()
            ),
            (Some(0), Some(true))
        );
        assert_eq!(
            third["excluded"],
            json!({"gpc_opt_out": 1, "no_sale_sharing_consent": 2})
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sync = got.lock().unwrap()[0].clone();
        assert_eq!(sync["type"], "audience.sync");
        assert_eq!(
            sync["counts"]["excluded"]["no_sale_sharing_consent"], 2,
            "{sync}"
        );
        assert_eq!(
            (
                sync["add"].as_array().unwrap().len(),
                sync["remove"].as_array().unwrap().len()
            ),
            (0, 0)
        );

        let (_, log) = node.get("/v1/audit/log", &node.auditor).await;
        let exports = log.to_string().matches("audience.export").count();
        assert_eq!(exports, 3, "every export is audited: {log}");
        node.stop().await;
    }
);
