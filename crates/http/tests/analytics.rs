//! Private analytics over real HTTP on both stores: quotes, queries with noise scale and
//! intervals, the budget, refusals that spend nothing, exact aggregates for auditors, and bad
//! input.

mod common;

use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use serde_json::{Value, json};

/// 12 subjects viewing products (u0..u11), the even ones granting analytics; each views
/// 1 + i % 3 products.
async fn shop(node: &Node) {
    node.declare_shop_plan("reject").await;
    let mut batch = Vec::new();
    for i in 0..12 {
        let id = format!("u{i}");
        let decision = if i % 2 == 0 { "granted" } else { "denied" };
        let (s, v) = node.decide(&id, "analytics", decision).await;
        assert_eq!(s, 200, "{v}");
        for p in 0..(1 + i % 3) {
            batch.push(json!({"type": "track", "event": "Product Viewed", "userId": id, "properties": {"product_id": format!("p{p}")}}));
        }
    }
    let (s, v) = node.ingest("/v1/batch", json!({"batch": batch})).await;
    assert_eq!(s, 200, "{v}");
}

fn histogram(extra: Value) -> Value {
    let mut q = json!({
        "group_by": ["event"],
        "groups": {"event": ["Product Viewed", "Order Completed"]},
        "since": "2000-01-01T00:00:00Z",
        "max_rows": 3,
        "max_groups": 1,
    });
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

both_stores!(
    an_analyst_is_quoted_first_then_charged_and_a_query_past_budget_spends_nothing,
    |db: TestDb| async move {
        let node = Node::start_with(&db, std::sync::Arc::new(candor_app::SystemClock), |c| {
            c.analytics.budget_epsilon = 1.0;
        })
        .await;
        shop(&node).await;
        // "±50 at 95%": the cost is shown before anything runs (sensitivity 3: max_rows 3).
        let (s, quote) = node
            .post(
                "/v1/analytics/quote",
                &node.analytics,
                histogram(json!({"accuracy": {"half_width": 50.0, "confidence": 0.95}})),
            )
            .await;
        assert_eq!(s, 200, "{quote}");
        let want = 3.0 * 20f64.ln() / 50.0;
        assert!(
            (quote["epsilon"].as_f64().unwrap() - want).abs() < 1e-6,
            "{quote}"
        );
        assert!((quote["half_width"].as_f64().unwrap() - 50.0).abs() < 1e-6);
        assert_eq!(quote["fits"], true);
        let (_, budget) = node.get("/v1/analytics/budget", &node.analytics).await;
        assert_eq!(
            budget["charges"].as_array().unwrap().len(),
            0,
            "a quote spends nothing"
        );

        let (s, answer) = node
            .post(
                "/v1/analytics/query",
                &node.analytics,
                histogram(json!({"epsilon": 0.75})),
            )
            .await;
        assert_eq!(s, 200, "{answer}");
        let cells = answer["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 2);
        for c in cells {
            assert!(
                (c["noise_scale"].as_f64().unwrap() - 4.0).abs() < 1e-6,
                "{c}"
            );
            let status = c["status"].as_str().unwrap();
            if status == "shown" {
                let (v, ci) = (c["value"].as_f64().unwrap(), c["ci"].as_array().unwrap());
                assert!(ci[0].as_f64().unwrap() < v && v < ci[1].as_f64().unwrap());
            } else {
                assert!(c["value"].is_null() && c["ci"].is_null(), "{c}");
            }
        }
        assert!((answer["cost"]["epsilon"].as_f64().unwrap() - 0.75).abs() < 1e-9);

        // 0.5 more does not fit: 409, and the budget is as it was.
        let (_, before) = node.get("/v1/analytics/budget", &node.analytics).await;
        let (s, v) = node
            .post(
                "/v1/analytics/query",
                &node.analytics,
                histogram(json!({"epsilon": 0.5})),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("over_budget")),
            "{v}"
        );
        let (_, after) = node.get("/v1/analytics/budget", &node.analytics).await;
        assert_eq!(before, after);
        assert_eq!(after["charges"].as_array().unwrap().len(), 1);
        assert!((after["accounts"][0]["remaining_epsilon"].as_f64().unwrap() - 0.25).abs() < 1e-9);
        assert_eq!(
            after["charges"][0]["query"]["groups"]["event"][0],
            "Product Viewed"
        );

        // Auditors: exact figures with a reason (audited); the ledger verifies.
        let (s, exact) = node
            .post("/v1/analytics/exact", &node.auditor, json!({"reason": "checking ticket 42's release", "query": histogram(json!({"epsilon": 1.0}))}))
            .await;
        assert_eq!(s, 200, "{exact}");
        // Granted subjects u0, u2, .., u10 viewed 1 + i % 3 products each.
        let truth: f64 = (0..12)
            .filter(|i| i % 2 == 0)
            .map(|i| (1 + i % 3) as f64)
            .sum();
        assert_eq!(exact["cells"][0]["rows"].as_f64(), Some(truth));
        let (_, log) = node.get("/v1/audit/log?limit=5", &node.auditor).await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "analytics.exact"
                    && e["details"]["reason"] == "checking ticket 42's release")
        );
        let (s, v) = node.get("/v1/analytics/ledger/verify", &node.auditor).await;
        assert_eq!(
            (s, v["valid"].as_bool(), v["rows"].as_i64()),
            (200, Some(true), Some(1)),
            "{v}"
        );
    }
);

both_stores!(
    bad_queries_get_a_422_naming_the_field_and_other_scopes_a_403,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        shop(&node).await;
        let cases = [
            (histogram(json!({"epsilon": 0.0})), "epsilon"),
            (histogram(json!({"epsilon": -1.0})), "epsilon"),
            (histogram(json!({})), "epsilon"),
            (
                histogram(json!({"epsilon": 0.5, "metric": "heartbeats"})),
                "metric",
            ),
            (
                histogram(json!({"epsilon": 0.5, "group_by": ["shoe_size"]})),
                "group_by",
            ),
            (
                histogram(json!({"epsilon": 0.5, "groups": {}, "group_by": ["item"]})),
                "groups.item",
            ),
            (
                histogram(json!({"accuracy": {"half_width": 0.001, "confidence": 0.95}})),
                "accuracy",
            ),
            (
                histogram(json!({"accuracy": {"half_width": 5.0, "confidence": 1.5}})),
                "confidence",
            ),
            (
                histogram(json!({"epsilon": 0.5, "mechanism": "coin"})),
                "mechanism",
            ),
            (
                histogram(json!({"epsilon": 0.5, "aggregate": "sum", "metric": "quantity"})),
                "lower",
            ),
        ];
        for (body, field) in cases {
            for path in ["/v1/analytics/quote", "/v1/analytics/query"] {
                let (s, v) = node.post(path, &node.analytics, body.clone()).await;
                assert_eq!(s, 422, "{path} {body}: {v}");
                assert_eq!(v["error"]["code"], "invalid_field");
                let message = v["error"]["message"].as_str().unwrap();
                assert!(message.contains(field), "{field} not named in {message}");
            }
        }
        // A non-finite epsilon cannot even be written in JSON; an unknown field is refused.
        let (s, v) = node
            .post(
                "/v1/analytics/query",
                &node.analytics,
                json!({"epsilon": 1, "colour": "red"}),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        let (_, b) = node.get("/v1/analytics/budget", &node.analytics).await;
        assert_eq!(
            b["charges"].as_array().unwrap().len(),
            0,
            "no bad request spent anything"
        );
        let (s, v) = node
            .get("/v1/analytics/budget?period=2026-13", &node.analytics)
            .await;
        assert_eq!(s, 422, "{v}");
        for key in [&node.admin, &node.recommend, &node.auditor] {
            let (s, v) = node
                .post(
                    "/v1/analytics/query",
                    key,
                    histogram(json!({"epsilon": 0.5})),
                )
                .await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{v}"
            );
        }
        let (s, _) = node
            .post(
                "/v1/analytics/exact",
                &node.analytics,
                json!({"reason": "x".repeat(20), "query": {}}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, v) = node
            .post(
                "/v1/analytics/exact",
                &node.auditor,
                json!({"reason": "because", "query": histogram(json!({}))}),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("reason"));
    }
);

fn this_year(node: &Node) -> String {
    candor_domain::format_micros(node.app.now())[..4].to_owned()
}

both_stores!(
    a_transparency_report_is_published_signed_and_served_as_json_and_html,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        shop(&node).await;
        let year = this_year(&node);
        let (s, v) = node
            .post(
                "/v1/analytics/reports/transparency",
                &node.analytics,
                json!({"period": year}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = node
            .post(
                "/v1/analytics/reports/transparency",
                &node.admin,
                json!({"period": "20x6"}),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("period"));
        let (s, published) = node
            .post(
                "/v1/analytics/reports/transparency",
                &node.admin,
                json!({"period": year}),
            )
            .await;
        assert_eq!(s, 201, "{published}");
        let purposes = published["report"]["purposes"].as_array().unwrap();
        assert_eq!(purposes.len(), 4);
        assert!(published["report"]["rights"].is_null());
        let (s, read) = node
            .get(
                &format!("/v1/analytics/reports/transparency/{year}"),
                &node.auditor,
            )
            .await;
        assert_eq!(s, 200, "{read}");
        assert_eq!(read["valid"], true);
        assert_eq!(read["signature"], published["signature"]);
        assert_eq!(read["report"], published["report"]);
        let (_, log) = node.get("/v1/audit/log?limit=5", &node.auditor).await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "analytics.report")
        );
        let page = node
            .http
            .get(node.url(&format!("/reports/transparency/{year}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        let html = page.text().await.unwrap();
        // Twelve people are close to the noise: whether a share is shown is the noise's draw
        // (the DP library takes no seed), so the page must agree with the signed report.
        let shown = purposes.iter().any(|p| !p["rate"].is_null());
        assert_eq!(
            html.contains("Too few people were asked to show consent shares."),
            !shown,
            "{published}"
        );
        assert_eq!(html.contains("<svg class=\"chart\""), shown);
        assert!(html.contains("needs no consent"));
        assert!(html.contains("No records of rights requests for this period."));
        assert!(html.contains(published["signature"].as_str().unwrap()));
        let (s, _) = node
            .get("/v1/analytics/reports/transparency/1999", &node.auditor)
            .await;
        assert_eq!(s, 404);
    }
);

/// Runs `tests/browser/transparency.mjs` in Chromium against a live node (SQLite: the page is
/// the same from either store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparency_report_passes_axe_and_layout_checks_in_chromium() {
    let browser =
        common::NodePackage::installed("browser", &["@axe-core/playwright", "playwright-core"]);
    let db = TestDb::new(candor_store::Backend::Sqlite).await;
    let node = Node::start(&db).await;
    shop(&node).await;
    // Enough people for the private consent shares to rise above their noise: 2 in 3 allow
    // analytics.
    let decide = |p: &str, yes: bool| {
        let d = if yes {
            candor_domain::ConsentDecision::Granted
        } else {
            candor_domain::ConsentDecision::Denied
        };
        (candor_domain::PurposeId::parse(p).unwrap(), d, 1)
    };
    let decisions: Vec<_> = (0..3000)
        .map(|i| {
            let key = node.app.subject_key(&format!("bulk-{i}")).unwrap();
            (
                key,
                vec![
                    decide("analytics", i % 3 != 0),
                    decide("personalization", i % 2 == 0),
                ],
            )
        })
        .collect();
    node.app
        .import_consents_bulk("test", &decisions)
        .await
        .unwrap();
    let year = this_year(&node);
    let (s, v) = node
        .post(
            "/v1/analytics/reports/transparency",
            &node.admin,
            json!({"period": year}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let analytics = &v["report"]["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "analytics")
        .unwrap()
        .clone();
    let rate = analytics["rate"].as_f64().unwrap_or_else(|| panic!("{v}"));
    assert!((rate - 2.0 / 3.0).abs() < 0.05, "{analytics}");
    let out_dir = common::workspace().join("target/screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    for shot in ["transparency.png", "transparency-mobile.png"] {
        let _ = std::fs::remove_file(out_dir.join(shot));
    }
    let (ok, log) = browser
        .run(
            "transparency.mjs",
            vec![node.base.clone(), year, out_dir.display().to_string()],
        )
        .await;
    assert!(ok, "browser checks failed:\n{log}");
    for shot in ["transparency.png", "transparency-mobile.png"] {
        let len = std::fs::metadata(out_dir.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes; nothing rendered?");
    }
}
