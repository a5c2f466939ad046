//! The official browser tracking libraries, unchanged, in headless Chromium against Candor, on
//! SQLite and PostgreSQL: Segment's analytics.js 2.0 (`@segment/analytics-next`, settings from
//! Candor as its CDN, the short paths with `text/plain` bodies, batching) and RudderStack's SDK
//! v3 (`@rudderstack/analytics-js`, the long paths with Basic auth). Every call is cross-origin:
//! CORS with preflight for the allowed origin, and a page of another origin stores nothing.
//! `Sec-GPC: 1` takes away the purposes it opts out of.
//!
//! Needs Chromium and the packages of `tests/tracking` (`npm ci --prefix tests/tracking`,
//! which `.ci/run` does; this test runs it too when `node_modules` is missing).

mod common;

use std::sync::Arc;

use candor_app::SystemClock;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn events(node: &Node, user: &str) -> Vec<(String, String)> {
    let subject = node.app.subject_key(user).unwrap();
    node.app
        .raw_store()
        .subject_events(subject.as_str(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.0, e.1))
        .collect()
}

both_stores!(
    official_browser_libraries_deliver_unchanged_across_origins,
    |db: TestDb| async move {
        let client = common::NodePackage::installed(
            "tracking",
            &[
                "@segment/analytics-next",
                "@rudderstack/analytics-js",
                "playwright-core",
            ],
        );
        let port = free_port();
        let node = Node::start_with(&db, Arc::new(SystemClock), |c| {
            c.browser.allowed_origins = vec![format!("http://127.0.0.1:{port}")];
        })
        .await;
        node.declare_shop_plan("reject").await;
        for user in ["ajs-1", "rs-1", "gpc-1", "evil-1"] {
            node.decide(user, "personalization", "granted").await;
            node.decide(user, "analytics", "granted").await;
        }
        let (ok, log) = client
            .run(
                "track.mjs",
                vec![node.base.clone(), node.ingest.clone(), port.to_string()],
            )
            .await;
        assert!(ok, "the browser run failed:\n{log}");
        let result: Value = log
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .map(|r| serde_json::from_str(r).unwrap())
            .unwrap_or_else(|| panic!("no result:\n{log}"));
        let req = |method: &str, path: &str, status: &str| {
            log.lines()
                .any(|l| l == format!("REQ {method} {}{path} {status}", node.base))
        };
        // analytics.js: settings from Candor, then the short paths; batching posts to /v1/b.
        assert!(
            req(
                "GET",
                &format!("/v1/projects/{}/settings", node.ingest),
                "200"
            ),
            "{log}"
        );
        for path in ["/v1/i", "/v1/p", "/v1/t", "/v1/b"] {
            assert!(req("POST", path, "200"), "{path}:\n{log}");
        }
        assert_eq!(result["segment"]["outcome"], "sent", "{log}");
        assert_eq!(result["segment"]["delivered"], 3, "{log}");
        assert_eq!(result["segment_batching"]["delivered"], 1, "{log}");
        // RudderStack: the long paths, with Basic auth (a preflight the allowed origin passes).
        for path in ["/v1/identify", "/v1/page", "/v1/track"] {
            assert!(req("POST", path, "200"), "{path}:\n{log}");
        }
        assert_eq!(result["rudderstack"]["delivered"], 3, "{log}");
        // A page of an origin Candor does not allow cannot read the answer, and nothing of it
        // is stored.
        assert_eq!(result["foreign"]["outcome"], "blocked", "{log}");
        assert_eq!(events(&node, "evil-1").await, vec![]);

        let ajs = events(&node, "ajs-1").await;
        let has = |evs: &[(String, String)], kind: &str, name: &str| {
            evs.iter().any(|(k, n)| k == kind && n == name)
        };
        assert!(ajs.iter().any(|(k, _)| k == "identify"), "{ajs:?}");
        assert!(ajs.iter().any(|(k, _)| k == "page"), "{ajs:?}");
        let views = ajs.iter().filter(|(_, n)| n == "Product Viewed").count();
        assert_eq!(views, 3, "one track and two batched: {ajs:?}");
        let rs = events(&node, "rs-1").await;
        assert!(rs.iter().any(|(k, _)| k == "page"), "{rs:?}");
        assert!(has(&rs, "track", "Product Viewed"), "{rs:?}");
        // Same consents as ajs-1, but Sec-GPC: 1: page views serve analytics only
        // (non-essential tracking), so none is kept; product views also serve
        // personalization, so they are kept for it.
        let gpc = events(&node, "gpc-1").await;
        assert!(!gpc.iter().any(|(k, _)| k == "page"), "{gpc:?}");
        assert!(has(&gpc, "track", "Product Viewed"), "{gpc:?}");
        node.stop().await;
    }
);

both_stores!(
    cors_allows_configured_origins_only_and_never_credentials,
    |db: TestDb| async move {
        let node = Node::start_with(&db, Arc::new(SystemClock), |c| {
            c.browser.allowed_origins = vec!["https://shop.example".into()];
        })
        .await;
        node.declare_shop_plan("reject").await;
        node.decide("c-1", "analytics", "granted").await;
        node.decide("c-1", "personalization", "granted").await;
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        // Preflight from the allowed origin: what it asks for, no credentials.
        let pre = node
            .http
            .request(reqwest::Method::OPTIONS, node.url("/v1/t"))
            .header("Origin", "https://shop.example")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status(), 204);
        assert_eq!(
            header(&pre, "access-control-allow-origin").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            header(&pre, "access-control-allow-headers").as_deref(),
            Some("authorization,content-type")
        );
        assert!(
            header(&pre, "access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
        assert_eq!(header(&pre, "access-control-allow-credentials"), None);
        // A text/plain message from the allowed origin is stored and readable by it.
        let page = |user: &str| {
            serde_json::json!({"writeKey": node.ingest, "type": "page", "name": "Home", "userId": user,
            "properties": {"url": "https://shop.example/"}})
        .to_string()
        };
        let ok = node
            .http
            .post(node.url("/v1/p"))
            .header("Origin", "https://shop.example")
            .header("Content-Type", "text/plain")
            .body(page("c-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(
            header(&ok, "access-control-allow-origin").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(events(&node, "c-1").await.len(), 1);
        // Any other origin: refused before the handler, no CORS headers, nothing stored.
        for (method, path) in [
            (reqwest::Method::POST, "/v1/p"),
            (reqwest::Method::OPTIONS, "/v1/p"),
        ] {
            let r = node
                .http
                .request(method, node.url(path))
                .header("Origin", "https://evil.example")
                .header("Access-Control-Request-Method", "POST")
                .header("Content-Type", "text/plain")
                .body(page("c-1"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403);
            assert_eq!(header(&r, "access-control-allow-origin"), None);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "forbidden");
        }
        assert_eq!(events(&node, "c-1").await.len(), 1, "nothing more stored");
        // Other routes never answer browsers with CORS headers; servers (no Origin) pass as before.
        let r = node
            .http
            .get(node.url("/v1/purposes"))
            .header("Origin", "https://shop.example")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "access-control-allow-origin"), None);
        let (s, _) = node.ingest("/v1/page", serde_json::json!({"type": "page", "name": "Home", "userId": "c-1", "messageId": "srv-1"})).await;
        assert_eq!(s, 200);
        // The settings document: an unknown write key is a 404; a known one names this host.
        let (s, _) = node
            .send(
                reqwest::Method::GET,
                "/v1/projects/cnd_ingest_nope/settings",
                None,
                None,
            )
            .await;
        assert_eq!(s, 404);
        let (s, v) = node
            .send(
                reqwest::Method::GET,
                &format!("/v1/projects/{}/settings", node.ingest),
                None,
                None,
            )
            .await;
        assert_eq!(s, 200);
        let seg = &v["integrations"]["Segment.io"];
        assert_eq!(seg["apiKey"], node.ingest.as_str());
        assert_eq!(
            seg["apiHost"],
            format!("{}/v1", node.base.trim_start_matches("http://"))
        );
        assert_eq!(seg["protocol"], "http");
        // Sec-GPC on the long paths too: a page view (analytics only) is not kept.
        let r = node
        .http
        .post(node.url("/v1/page"))
        .basic_auth(&node.ingest, Some(""))
        .header("Sec-GPC", "1")
        .json(&serde_json::json!({"type": "page", "name": "Home", "userId": "c-1", "messageId": "gpc-1"}))
        .send()
        .await
        .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["stored"].as_u64(), v["without_consent"].as_u64()),
            (Some(0), Some(1)),
            "{v}"
        );
        node.stop().await;
    }
);
