//! Server-rendered pages over real HTTP, and in real Chromium.
//!
//! The browser test needs Node.js, `/usr/bin/chromium` and the packages in `tests/browser`
//! (`npm ci --prefix tests/browser`, which `.ci/run` does; this test runs it too when
//! `node_modules` is missing). Screenshots go to `target/screenshots/`.

mod common;

use candor_store::both_stores;
use candor_store::testing::TestDb;
use candor_web::headers::{CACHE_CONTROL, Cache, SECURITY_HEADERS};
use candor_web::layout::{FAVICON, FAVICON_PATH, STYLESHEET, stylesheet_href};
use common::Node;
use serde_json::json;

fn browser() -> common::NodePackage {
    common::NodePackage::installed("browser", &["@axe-core/playwright", "playwright-core"])
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

both_stores!(privacy_page_lists_every_purpose, |db: TestDb| async move {
    let node = Node::start(&db).await;
    let empty = node.http.get(node.url("/privacy")).send().await.unwrap();
    assert_eq!(empty.status(), 200);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("No purposes are declared yet.")
    );

    node.declare_purposes().await;
    // A hostile title goes through the admin API like any other and must come out as text.
    let (s, v) = node
        .post(
            "/v1/admin/purposes",
            &node.admin,
            json!({"id": "hostile", "title": "<script>alert(1)</script>", "description": "Escaping check.", "legal_basis": "legitimate_interest", "categories": ["device"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let resp = node.http.get(node.url("/privacy")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(header(&resp, name), *value, "{name}");
    }
    assert_eq!(header(&resp, CACHE_CONTROL), Cache::Public.header_value());
    assert!(header(&resp, "x-request-id").len() >= 32);
    let html = resp.text().await.unwrap();
    for title in [
        "Recommendations for you",
        "Site analytics",
        "Advertising partners",
        "Delivering your orders",
    ] {
        assert!(html.contains(&format!(">{title}</h3>")), "{title} listed");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    assert!(html.contains("Only with your permission; you can withdraw it at any time."));
    assert!(html.contains(&stylesheet_href()));

    // Pages stay out of the API's description.
    let (_, spec) = node
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert!(spec["paths"].get("/privacy").is_none());
    node.stop().await;
});

both_stores!(
    assets_are_served_with_their_types,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        let resp = node
            .http
            .get(node.url(&stylesheet_href()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-type"), "text/css; charset=utf-8");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&resp, CACHE_CONTROL),
            Cache::Immutable.header_value()
        );
        // The CSP is for documents; a stylesheet does not carry one.
        assert!(resp.headers().get("content-security-policy").is_none());
        assert_eq!(resp.text().await.unwrap(), STYLESHEET);

        let icon = node.http.get(node.url(FAVICON_PATH)).send().await.unwrap();
        assert_eq!(icon.status(), 200);
        assert_eq!(header(&icon, "content-type"), "image/svg+xml");
        assert_eq!(icon.text().await.unwrap(), FAVICON);

        // Unknown paths keep the API's JSON 404, without page headers.
        let missing = node
            .http
            .get(node.url("/privacy/nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert!(missing.headers().get("content-security-policy").is_none());
        node.stop().await;
    }
);

/// Runs `tests/browser/privacy.mjs` in Chromium against a live node. SQLite only: the browser
/// sees the same HTML from either store, and the test above already covers both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_page_passes_axe_and_keyboard_checks_in_chromium() {
    let browser = browser();
    let db = TestDb::new(candor_store::Backend::Sqlite).await;
    let node = Node::start(&db).await;
    node.declare_purposes().await;
    // A revised purpose (version 2, with its change note) and a long unbroken title, the cases
    // most likely to break the layout.
    let (s, v) = node
        .send(
            reqwest::Method::PUT,
            "/v1/admin/purposes/personalization",
            Some(&node.admin),
            Some(json!({"id": "personalization", "title": "Recommendations for you", "description": "We use what you browse and buy to suggest products.\nWe never use health data unless you opt in.", "legal_basis": "consent", "categories": ["browsing", "purchase", "declared_preference", "sensitive:health"], "expires_after_days": 365, "change_note": "It can now also use the interests you tell us and, if you opt in, health data."})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = node
        .post(
            "/v1/admin/purposes",
            &node.admin,
            json!({"id": "fraud_checks", "title": "Fraud-prevention-and-payment-security-checks-required-by-our-payment-providers", "description": "We check orders for signs of fraud, as payment law requires.", "legal_basis": "legal_obligation", "categories": ["purchase", "device", "location"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let out_dir = common::workspace().join("target/screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    for shot in ["privacy.png", "privacy-mobile.png"] {
        // A stale screenshot must not stand in for one this run failed to take.
        let _ = std::fs::remove_file(out_dir.join(shot));
    }
    let (ok, log) = browser
        .run(
            "privacy.mjs",
            vec![node.base.clone(), out_dir.display().to_string()],
        )
        .await;
    assert!(ok, "browser checks failed:\n{log}");
    for shot in ["privacy.png", "privacy-mobile.png"] {
        let path = out_dir.join(shot);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        assert!(len > 10_000, "{shot} is {len} bytes; nothing rendered?");
    }
    node.stop().await;
}
