//! The HTTP API end to end, over loopback, on SQLite and PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_domain::Scope;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

/// Fills `{param}` segments of an OpenAPI path with harmless values.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

both_stores!(
    every_route_refuses_missing_wrong_and_wrong_scope_keys,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        let (_, spec) = node.send(Method::GET, "/openapi.json", None, None).await;
        let keys = [
            (Scope::Admin, &node.admin),
            (Scope::Recommend, &node.recommend),
            (Scope::Consent, &node.consent),
            (Scope::Auditor, &node.auditor),
            (Scope::Ingest, &node.ingest),
            (Scope::Rights, &node.rights),
            (Scope::Analytics, &node.analytics),
            (Scope::Site, &node.site),
            (Scope::Reviewer, &node.reviewer),
        ];
        let mut protected = 0;
        let mut public = 0;
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().unwrap() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let url = concrete(path);
                let body = if m == Method::POST || m == Method::PUT || m == Method::PATCH {
                    Some(json!({}))
                } else {
                    None
                };
                // A route may accept one of several scopes (`["reviewer", "auditor"]`).
                let accepted: Vec<Scope> = op["security"][0]["api_key"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|s| Scope::parse(s.as_str().unwrap()).unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                match accepted.first() {
                    None => {
                        let (status, _) = node.send(m.clone(), &url, None, body.clone()).await;
                        assert!(
                            status != 401 && status != 403,
                            "{method} {path} is public but answered {status}"
                        );
                        public += 1;
                    }
                    Some(_) => {
                        let (status, v) = node.send(m.clone(), &url, None, body.clone()).await;
                        assert_eq!(status, 401, "{method} {path} without a key: {v}");
                        assert_eq!(v["error"]["code"], "unauthorized");
                        let (status, _) = node
                            .send(
                                m.clone(),
                                &url,
                                Some("cnd_admin_not-a-real-key"),
                                body.clone(),
                            )
                            .await;
                        assert_eq!(status, 401, "{method} {path} with a wrong key");
                        for (held, secret) in &keys {
                            if !accepted.iter().any(|scope| held.permits(*scope)) {
                                let (status, v) =
                                    node.send(m.clone(), &url, Some(secret), body.clone()).await;
                                assert_eq!(status, 403, "{method} {path} with a {held:?} key: {v}");
                                assert_eq!(v["error"]["code"], "forbidden");
                            }
                        }
                        protected += 1;
                    }
                }
            }
        }
        assert!(
            protected >= 14 && public >= 4,
            "walked {protected} protected and {public} public operations"
        );
        node.stop().await;
    }
);

both_stores!(consent_flow_history_and_state, |db: TestDb| async move {
    let node = Node::start(&db).await;
    node.declare_purposes().await;
    let (status, purposes) = node.send(Method::GET, "/v1/purposes", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(purposes.as_array().unwrap().len(), 4);

    assert_eq!(node.state("alice", "personalization").await, "not_asked");
    assert_eq!(
        node.state("alice", "order_fulfilment").await,
        "not_required"
    );
    let (status, v) = node.decide("alice", "personalization", "granted").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["recorded"][0]["decision"], "granted");
    assert!(
        v["recorded"][0]["proof"]["ip_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64 && !h.contains("127.0.0.1"))
    );
    assert_eq!(node.state("alice", "personalization").await, "granted");
    node.decide("alice", "personalization", "denied").await;
    assert_eq!(node.state("alice", "personalization").await, "denied");
    let (_, history) = node
        .get("/v1/subjects/alice/consents/history", &node.recommend)
        .await;
    let decisions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["granted", "denied"]);
    // The subject key is a pseudonym: the external id appears nowhere in it.
    let (_, v) = node
        .get("/v1/subjects/alice/consents", &node.recommend)
        .await;
    assert_eq!(v["subject_key"].as_str().unwrap().len(), 64);
    node.stop().await;
});

both_stores!(
    revocation_applies_to_every_request_that_starts_after_it_returns,
    |db: TestDb| async move {
        let node = Arc::new(Node::start(&db).await);
        node.declare_purposes().await;
        node.decide("bob", "personalization", "granted").await;
        let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (node, seen, stop) = (node.clone(), seen.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let started = Instant::now();
                    let state = node.state("bob", "personalization").await;
                    seen.lock().unwrap().push((started, state));
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, _) = node.decide("bob", "personalization", "denied").await;
        assert_eq!(status, 200);
        let returned = Instant::now();
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            r.await.unwrap();
        }
        let seen = seen.lock().unwrap();
        let after: Vec<_> = seen.iter().filter(|(t, _)| *t > returned).collect();
        let before_granted = seen
            .iter()
            .filter(|(t, s)| *t < returned && s == "granted")
            .count();
        assert!(
            after.len() >= 5 && before_granted >= 1,
            "{} reads after, {before_granted} granted before",
            after.len()
        );
        assert!(
            after.iter().all(|(_, s)| s == "denied"),
            "a request that started after the revocation returned still saw a grant"
        );
    }
);

both_stores!(
    bad_input_gets_typed_errors_and_stores_nothing,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        node.decide("carol", "personalization", "granted").await;
        let audit_before = node.app.verify_audit_log().await.unwrap().entries;
        let path = "/v1/subjects/carol/consents";
        let raw = |body: &'static [u8], ctype: Option<&'static str>| {
            let mut r = node
                .http
                .post(node.url(path))
                .bearer_auth(&node.consent)
                .body(body);
            if let Some(c) = ctype {
                r = r.header("content-type", c);
            }
            async move {
                let resp = r.send().await.unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            }
        };
        let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (400, "malformed_json", raw(b"{\"source\": ", Some("application/json")).await),
        (400, "malformed_json", raw(b"{\"source\": \"api\xff\"}", Some("application/json")).await),
        (415, "unsupported_media_type", raw(b"{}", None).await),
        (422, "invalid_body", node.post(path, &node.consent, json!({"source": 7})).await),
        (422, "invalid_body", node.post(path, &node.consent, json!({"source": "api", "consents": [], "extra": 1})).await),
        (422, "unknown_purpose", node.post(path, &node.consent, json!({"source": "api", "consents": [{"purpose": "personalization", "decision": "denied"}, {"purpose": "mind_reading", "decision": "granted"}]})).await),
        (422, "invalid_field", node.post(path, &node.consent, json!({"source": "api", "consents": [{"purpose": "personalization", "decision": "maybe"}]})).await),
        (422, "invalid_field", node.post(path, &node.consent, json!({"source": "telepathy", "consents": [{"purpose": "personalization", "decision": "denied"}]})).await),
        (422, "invalid_field", node.post(path, &node.consent, json!({"source": "api", "consents": [{"purpose": "order_fulfilment", "decision": "denied"}]})).await),
        (422, "invalid_field", node.post(path, &node.consent, json!({"source": "api", "consents": []})).await),
        (413, "payload_too_large", node.post(path, &node.consent, json!({"source": "x".repeat(100_000)})).await),
        (422, "invalid_field", node.post(&format!("/v1/subjects/{}/consents", "z".repeat(300)), &node.consent, json!({"source": "api", "consents": [{"purpose": "personalization", "decision": "denied"}]})).await),
        (422, "invalid_field", node.post("/v1/admin/keys", &node.admin, json!({"name": "x", "scope": "root"})).await),
        (422, "invalid_field", node.post("/v1/admin/purposes", &node.admin, json!({"id": "Bad Id", "title": "t", "description": "d", "legal_basis": "consent", "categories": ["browsing"]})).await),
        (422, "invalid_field", node.post("/v1/admin/purposes", &node.admin, json!({"id": "x", "title": "t", "description": "d", "legal_basis": "consent", "categories": ["gossip"]})).await),
        (409, "conflict", node.post("/v1/admin/purposes", &node.admin, json!({"id": "analytics", "title": "t", "description": "d", "legal_basis": "consent", "categories": ["browsing"]})).await),
        (422, "invalid_field", node.post("/v1/admin/webhooks", &node.admin, json!({"url": "ftp://example"})).await),
        (400, "invalid_query", node.get("/v1/audit/log?limit=abc", &node.auditor).await),
        (400, "invalid_query", node.get("/v1/audit/log?limit=0", &node.auditor).await),
        (404, "not_found", node.get("/v1/nothing-here", &node.admin).await),
        (405, "method_not_allowed", node.send(Method::DELETE, "/v1/purposes", None, None).await),
        (404, "not_found", node.send(Method::DELETE, "/v1/admin/keys/key_missing", Some(&node.admin), None).await),
    ];
        for (i, (status, code, (got_status, body))) in cases.iter().enumerate() {
            assert_eq!(
                (got_status, body["error"]["code"].as_str()),
                (status, Some(*code)),
                "case {i}: {body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "case {i}: {body}"
            );
        }
        // Nothing partial: the mixed valid+invalid batch stored nothing, the grant still stands.
        assert_eq!(node.state("carol", "personalization").await, "granted");
        let (_, history) = node.get(&format!("{path}/history"), &node.recommend).await;
        assert_eq!(history.as_array().unwrap().len(), 1);
        assert_eq!(
            node.app.verify_audit_log().await.unwrap().entries,
            audit_before
        );
        node.stop().await;
    }
);

both_stores!(
    privacy_signals_are_recorded_as_opt_outs,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let resp = node
        .http
        .post(node.url("/v1/subjects/dave/consents"))
        .bearer_auth(&node.consent)
        .header("Sec-GPC", "1")
        .json(&json!({"source": "banner", "consents": [{"purpose": "ads_sharing", "decision": "granted"}, {"purpose": "personalization", "decision": "granted"}]}))
        .send()
        .await
        .unwrap();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["overridden_by_signal"],
            json!([{"purpose": "ads_sharing", "signal": "gpc"}])
        );
        assert_eq!(node.state("dave", "ads_sharing").await, "denied");
        assert_eq!(node.state("dave", "personalization").await, "granted");
        // GPC also opts out of non-essential tracking the request did not mention.
        assert_eq!(node.state("dave", "analytics").await, "denied");
        // DNT with no decisions at all records the opt-out of tracking and of sharing.
        let resp = node
            .http
            .post(node.url("/v1/subjects/erin/consents"))
            .bearer_auth(&node.consent)
            .header("DNT", "1")
            .json(&json!({"source": "banner"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(node.state("erin", "analytics").await, "denied");
        assert_eq!(node.state("erin", "ads_sharing").await, "denied");
        assert_eq!(node.state("erin", "order_fulfilment").await, "not_required");
        let sources = |history: Value| -> Vec<(String, String)> {
            history
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap().to_owned();
                    (s("purpose"), s("source"))
                })
                .collect()
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect()
        };
        let (_, history) = node
            .get("/v1/subjects/dave/consents/history", &node.recommend)
            .await;
        assert_eq!(
            sources(history),
            pairs(&[
                ("ads_sharing", "gpc"),
                ("personalization", "banner"),
                ("analytics", "gpc")
            ])
        );
        let (_, history) = node
            .get("/v1/subjects/erin/consents/history", &node.recommend)
            .await;
        let mut erin = sources(history);
        erin.sort();
        assert_eq!(erin, pairs(&[("ads_sharing", "dnt"), ("analytics", "dnt")]));
        node.stop().await;
    }
);

both_stores!(
    consent_expires_and_material_changes_need_renewal,
    |db: TestDb| async move {
        let clock = Arc::new(candor_app::ManualClock::new(1_700_000_000_000_000));
        let node = Node::start_with_clock(&db, clock.clone()).await;
        node.declare_purposes().await;
        node.decide("erin", "personalization", "granted").await;
        node.decide("erin", "analytics", "granted").await;
        clock.advance(366 * candor_domain::MICROS_PER_DAY);
        assert_eq!(node.state("erin", "personalization").await, "expired");
        assert_eq!(
            node.state("erin", "analytics").await,
            "granted",
            "analytics has no expiry"
        );

        let wider = json!({"id": "analytics", "title": "Site analytics", "description": "We count visits to improve the shop.", "legal_basis": "consent", "categories": ["browsing", "location"], "non_essential_tracking": true});
        let (status, v) = node
            .send(
                Method::PUT,
                "/v1/admin/purposes/analytics",
                Some(&node.admin),
                Some(wider),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["material"], true);
        assert_eq!(v["purpose"]["version"], 2);
        assert!(
            v["purpose"]["change_note"]
                .as_str()
                .unwrap()
                .contains("location")
        );
        assert_eq!(node.state("erin", "analytics").await, "needs_renewal");
        node.decide("erin", "analytics", "granted").await;
        assert_eq!(node.state("erin", "analytics").await, "granted");
        let (_, history) = node
            .get("/v1/admin/purposes/analytics/history", &node.admin)
            .await;
        assert_eq!(history.as_array().unwrap().len(), 2);
        node.stop().await;
    }
);

both_stores!(
    webhooks_are_signed_retried_and_logged,
    |db: TestDb| async move {
        use axum::http::{HeaderMap, StatusCode};
        let received: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let receiver = {
            let (received, calls) = (received.clone(), calls.clone());
            axum::Router::new().route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let (received, calls) = (received.clone(), calls.clone());
                    async move {
                        // Fail the first attempt to exercise the retry.
                        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        received.lock().unwrap().push((headers, body));
                        StatusCode::NO_CONTENT
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let (status, hook) = node
            .post("/v1/admin/webhooks", &node.admin, json!({"url": hook_url}))
            .await;
        assert_eq!(status, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_owned();
        node.decide("frank", "personalization", "granted").await;

        let deadline = Instant::now() + Duration::from_secs(10);
        while received.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "webhook not delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (headers, body) = received.lock().unwrap()[0].clone();
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(payload["type"], "consent.changed");
        assert_eq!(payload["changes"][0]["purpose"], "personalization");
        let sig = headers["candor-signature"].to_str().unwrap();
        let t: i64 = sig
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse()
            .unwrap();
        assert_eq!(
            sig,
            candor_domain::webhook::signature(&secret, t, body.as_bytes())
        );

        let id = hook["id"].as_str().unwrap();
        // The receiver sees the request a moment before Candor records the 2xx.
        let log = loop {
            let (_, log) = node
                .get(&format!("/v1/admin/webhooks/{id}/deliveries"), &node.admin)
                .await;
            if log[0]["status"] != "pending" || Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(log[0]["status"], "delivered");
        assert_eq!(log[0]["attempts"], 2);
        node.stop().await;
    }
);

both_stores!(
    audit_log_records_changes_and_detects_tampering,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        node.decide("gina", "personalization", "granted").await;
        let (status, v) = node.get("/v1/audit/verify", &node.auditor).await;
        assert_eq!(status, 200);
        assert_eq!(v["valid"], true, "{v}");
        let (_, log) = node.get("/v1/audit/log?limit=3", &node.admin).await;
        assert_eq!(log[0]["action"], "consent.change");
        let entries = v["entries"].as_i64().unwrap();
        assert!(
            entries >= 9,
            "4 keys + 4 purposes + 1 consent change: {entries}"
        );

        // Tamper with the database behind Candor's back.
        let store = db.store().await.unwrap();
        store.checkpoint().await.unwrap();
        let (_, v) = node.get("/v1/audit/verify", &node.auditor).await;
        assert_eq!(v["valid"], true);
        node.stop().await;
        tamper(
            &db,
            "UPDATE audit_log SET target = 'someone-else' WHERE seq = 3",
        )
        .await;
        let node = Node::start(&db).await;
        let (_, v) = node.get("/v1/audit/verify", &node.auditor).await;
        assert_eq!(
            (v["valid"].as_bool(), v["first_broken_seq"].as_i64()),
            (Some(false), Some(3)),
            "{v}"
        );
        node.stop().await;
    }
);

async fn tamper(db: &TestDb, sql: &'static str) {
    candor_store::testing::execute_raw(&db.url, sql)
        .await
        .unwrap();
}

both_stores!(
    health_readiness_metrics_and_request_ids,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        node.decide("hank", "personalization", "granted").await;
        let (status, v) = node.send(Method::GET, "/healthz", None, None).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
        let (status, v) = node.send(Method::GET, "/readyz", None, None).await;
        assert_eq!(
            (status, v["store"].as_str()),
            (200, Some(db.backend().name()))
        );
        let resp = node.http.get(node.url("/metrics")).send().await.unwrap();
        assert!(resp.headers().contains_key("x-request-id"));
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("candor_http_requests_total")
                && text.contains("candor_consent_changes_total"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/v1/subjects/{id}/consents\""),
            "metrics use route templates, not subject ids"
        );
        assert!(!text.contains("hank"));
        let (status, spec) = node.send(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(status, 200);
        assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
        node.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_changes_reach_other_nodes_within_100ms_on_postgres() {
    let db = TestDb::new(candor_store::Backend::Postgres).await;
    let a = Node::start(&db).await;
    let b = Node::start(&db).await;
    a.declare_purposes().await;
    // Purpose declarations reach node B through the same notification channel.
    let deadline = Instant::now() + Duration::from_secs(2);
    while b.app.purposes().len() < 4 {
        assert!(Instant::now() < deadline, "purposes did not reach node B");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.decide("ivy", "personalization", "granted").await;
    // Node B caches the grant.
    while b.state("ivy", "personalization").await != "granted" {
        assert!(Instant::now() < deadline);
    }
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        let decision = if round % 2 == 0 { "denied" } else { "granted" };
        a.decide("ivy", "personalization", decision).await;
        let start = Instant::now();
        let key = b.app.subject_key("ivy").unwrap();
        let pid = candor_domain::PurposeId::parse("personalization").unwrap();
        loop {
            let s = b.app.consent_status(&key, &pid).await.unwrap();
            if s.name() == decision {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_millis(100),
                "node B still saw {} after {:?}",
                s.name(),
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        worst = worst.max(start.elapsed());
    }
    eprintln!("worst cross-node propagation: {worst:?}");
    // A key revoked through node A stops working on node B too.
    let b_key = b.app.authenticate(&b.recommend).unwrap();
    let (status, _) = a
        .send(
            Method::DELETE,
            &format!("/v1/admin/keys/{}", b_key.id),
            Some(&a.admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let start = Instant::now();
    while b.app.authenticate(&b.recommend).is_some() {
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "revoked key still accepted by node B"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (status, _) = b.get("/v1/subjects/ivy/consents", &b.recommend).await;
    assert_eq!(status, 401);
    a.stop().await;
    b.stop().await;
}

both_stores!(
    fairness_audit_of_the_decision_log_opens_and_tracks_incidents,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.load_demo(300, 200).await;

        let (status, v) = node
            .send(
                Method::GET,
                "/v1/audit/fairness/latest",
                Some(&node.auditor),
                None,
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (404, Some("not_found"))
        );

        let (status, run) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"attributes": ["sex"], "surface": "offer", "since_days": 365}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        let keys: Vec<&str> = run["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert!(
            keys.contains(&"four_fifths:sex"),
            "the planted bias against women is found: {keys:?}"
        );
        let opened = run["incidents_opened"].as_array().unwrap().len();
        assert_eq!(opened, keys.len());

        // A second run updates the same incidents instead of opening duplicates.
        let (_, again) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"attributes": ["sex"], "surface": "offer", "since_days": 365}),
            )
            .await;
        assert_eq!(again["incidents_opened"].as_array().unwrap().len(), 0);
        assert_eq!(again["incidents_updated"].as_array().unwrap().len(), opened);

        let (_, open) = node
            .get("/v1/audit/incidents?status=open", &node.auditor)
            .await;
        let incident = open
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["finding_key"] == "four_fifths:sex")
            .unwrap()
            .clone();
        assert!(incident["summary"].as_str().unwrap().contains("female"));
        let id = incident["id"].as_i64().unwrap();
        let path = format!("/v1/audit/incidents/{id}");
        let (status, v) = node
            .send(
                Method::PATCH,
                &path,
                Some(&node.admin),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "resolving needs a resolution"
        );
        let (status, v) = node.send(Method::PATCH, &path, Some(&node.admin), Some(json!({"status": "mitigating", "action_taken": "Premium offer rule paused; reweighing the training data."}))).await;
        assert_eq!(
            (status, v["status"].as_str()),
            (200, Some("mitigating")),
            "{v}"
        );
        let (status, v) = node.send(Method::PATCH, &path, Some(&node.admin), Some(json!({"status": "resolved", "resolution": "Retrained with reweighing; re-audit passed."}))).await;
        assert_eq!(
            (
                status,
                v["status"].as_str(),
                v["action_taken"].as_str().is_some()
            ),
            (200, Some("resolved"), true)
        );
        let (status, _) = node
            .send(
                Method::PATCH,
                "/v1/audit/incidents/999999",
                Some(&node.admin),
                Some(json!({"status": "open"})),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = node
            .get("/v1/audit/incidents?status=maybe", &node.auditor)
            .await;
        assert_eq!(status, 422);

        let (status, doc) = node.get("/v1/audit/fairness/latest", &node.auditor).await;
        assert_eq!(status, 200);
        assert_eq!(doc["report"]["schema_version"], 1);
        let html = node
            .http
            .get(node.url("/v1/audit/fairness/latest?format=html"))
            .bearer_auth(&node.auditor)
            .send()
            .await
            .unwrap();
        assert!(
            html.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = html.text().await.unwrap();
        assert!(
            body.contains("<svg") && body.contains("four-fifths"),
            "HTML report with charts"
        );
        let (status, _) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"attributes": []}),
            )
            .await;
        assert_eq!(status, 422);
        let (status, _) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"since_days": 0}),
            )
            .await;
        assert_eq!(status, 422);
        node.stop().await;
    }
);

both_stores!(
    scheduled_fairness_audits_run_on_their_own,
    |db: TestDb| async move {
        let node = Node::start_with(&db, Arc::new(candor_app::SystemClock), |c| {
            c.fairness.audit_interval_secs = 1;
            c.fairness.attributes = vec!["sex".into()];
            c.fairness.lookback_days = 365;
        })
        .await;
        node.load_demo(200, 100).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, doc) = node.get("/v1/audit/fairness/latest", &node.auditor).await;
            if status == 200 {
                assert_eq!(doc["report"]["input"]["attributes"], json!(["sex"]));
                break;
            }
            assert!(Instant::now() < deadline, "no scheduled audit ran");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, log) = node.get("/v1/audit/log?limit=50", &node.auditor).await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "fairness.audit" && e["actor"] == "scheduler")
        );
        node.stop().await;
    }
);

/// A key of `scope` made over the admin API (its secret).
async fn key_of(node: &Node, scope: &str) -> String {
    let (s, v) = node
        .post(
            "/v1/admin/keys",
            &node.admin,
            json!({"name": format!("{scope} key"), "scope": scope}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

both_stores!(
    consent_writes_and_level_changes_need_the_consent_scope,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let consent = key_of(&node, "consent").await;
        let grant = json!({"source": "api", "consents": [{"purpose": "personalization", "decision": "granted"}]});
        let full = json!({"level": "full", "source": "preference_center"});
        // A recommendation key may ask, not decide.
        let (s, v) = node
            .post(
                "/v1/subjects/alice/consents",
                &node.recommend,
                grant.clone(),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{v}"
        );
        for m in [Method::PUT, Method::PATCH] {
            let (s, v) = node
                .send(
                    m.clone(),
                    "/v1/subjects/alice/preferences",
                    Some(&node.recommend),
                    Some(full.clone()),
                )
                .await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{m} {v}"
            );
        }
        assert_eq!(node.state("alice", "personalization").await, "not_asked");
        // A consent key may record decisions and set the level, and only that.
        let (s, v) = node
            .post("/v1/subjects/alice/consents", &consent, grant)
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = node
            .get("/v1/recommendations/alice?surface=home", &consent)
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = node
            .send(
                Method::PUT,
                "/v1/subjects/alice/preferences",
                Some(&consent),
                Some(full),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["level"].as_str(), v["source"].as_str()),
            (Some("full"), Some("preference_center")),
            "{v}"
        );
        // The change to `full` is on record as the person's choice, with where it was made.
        let (s, log) = node.get("/v1/audit/log?limit=20", &node.auditor).await;
        assert_eq!(s, 200, "{log}");
        let last = log
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "preferences.update")
            .unwrap();
        assert_eq!(last["details"]["source"], "preference_center", "{last}");
        assert_eq!(last["details"]["level"], "full", "{last}");
        // The source is required and validated.
        for (body, field) in [
            (json!({"level": "full"}), "source"),
            (json!({"level": "full", "source": "gossip"}), "source"),
            (json!({"level": "full", "source": "gpc"}), "source"),
        ] {
            let (s, v) = node
                .send(
                    Method::PUT,
                    "/v1/subjects/alice/preferences",
                    Some(&consent),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (422, Some("invalid_field")),
                "{body}: {v}"
            );
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{v}"
            );
        }
        node.stop().await;
    }
);

both_stores!(
    patch_preferences_changes_only_the_fields_given,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let consent = key_of(&node, "consent").await;
        let cat = |id: &str, sensitive: Option<&str>| candor_store::CatalogCategory {
            id: id.into(),
            name: id.into(),
            sensitive_kind: sensitive.map(Into::into),
        };
        node.app
            .upsert_catalog(
                "test",
                &[
                    cat("garden", None),
                    cat("kitchen", None),
                    cat("pharmacy", Some("health")),
                ],
                &[candor_store::Item {
                    id: "SKU-G".into(),
                    name: "g".into(),
                    category_id: "garden".into(),
                    price_cents: 100,
                    ..Default::default()
                }],
            )
            .await
            .unwrap();
        let path = "/v1/subjects/bea/preferences";
        let (s, v) = node
            .send(Method::PUT, path, Some(&consent), Some(json!({
                "level": "basic", "source": "api", "declared_interests": ["garden"],
                "sensitive_opt_ins": ["pharmacy"],
                "quiet_periods": [{"from": "2030-01-01T00:00:00Z", "until": "2030-01-02T00:00:00Z"}]})))
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = node
            .send(
                Method::PATCH,
                path,
                Some(&consent),
                Some(json!({"level": "full", "source": "preference_center"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["level"], "full");
        assert_eq!(v["declared_interests"], json!(["garden"]), "{v}");
        assert_eq!(v["sensitive_opt_ins"], json!(["pharmacy"]), "{v}");
        assert_eq!(v["quiet_periods"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["source"], "preference_center");
        let (s, v) = node
            .send(Method::PATCH, path, Some(&consent), Some(json!({"declared_interests": ["kitchen"], "quiet_periods": [], "source": "api"})))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["level"].as_str(), v["declared_interests"].clone()),
            (Some("full"), json!(["kitchen"])),
            "{v}"
        );
        assert_eq!(v["quiet_periods"], json!([]), "{v}");
        let (_, now) = node.get(path, &node.recommend).await;
        assert_eq!(now["sensitive_opt_ins"], json!(["pharmacy"]), "{now}");
        // Validated exactly like PUT, and nothing changes on a refusal.
        for (body, field) in [
            (json!({"level": "max", "source": "api"}), "level"),
            (
                json!({"declared_interests": ["moon"], "source": "api"}),
                "declared_interests",
            ),
            (
                json!({"sensitive_opt_ins": ["garden"], "source": "api"}),
                "sensitive_opt_ins",
            ),
            (
                json!({"quiet_periods": [{"from": "tomorrow", "until": "later"}], "source": "api"}),
                "quiet_periods",
            ),
            (json!({"level": "off"}), "source"),
        ] {
            let (s, v) = node
                .send(Method::PATCH, path, Some(&consent), Some(body.clone()))
                .await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (422, Some("invalid_field")),
                "{body}: {v}"
            );
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{field}: {v}"
            );
        }
        let (s, v) = node
            .send(
                Method::PATCH,
                path,
                Some(&consent),
                Some(json!({"levle": "off", "source": "api"})),
            )
            .await;
        assert_eq!(s, 422, "unknown fields are refused: {v}");
        let (_, after) = node.get(path, &node.recommend).await;
        assert_eq!(
            (after["level"].as_str(), after["declared_interests"].clone()),
            (Some("full"), json!(["kitchen"])),
            "{after}"
        );
        node.stop().await;
    }
);

both_stores!(
    fairness_audits_run_per_surface_and_latest_is_per_surface,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.load_demo(300, 200).await;
        // Served recommendations: ranked, no outcome (the demo's offers have outcomes).
        let mut rows = Vec::new();
        for i in 1..=300 {
            let key = node.app.subject_key(&format!("cust-{i:04}")).unwrap();
            for pos in 1..=5 {
                rows.push(candor_store::DecisionRow {
                    subject_key: key.to_string(),
                    surface: "home".into(),
                    item_id: format!("p-{pos}"),
                    selected: true,
                    outcome: None,
                    score: Some(0.5),
                    model_version: "test".into(),
                    at: node.app.now(),
                    position: Some(pos),
                    answer_id: None,
                });
            }
        }
        node.app.import_decisions("test", &rows).await.unwrap();

        // A scheduled-style run (no surface) audits each surface on its own.
        let (status, run) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"attributes": ["sex"], "since_days": 365}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        let runs = run["runs"].as_array().unwrap();
        let surfaces: Vec<&str> = runs
            .iter()
            .map(|r| r["surface"].as_str().unwrap())
            .collect();
        assert_eq!(surfaces, ["home", "offer"]);
        let keys = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|f| f["key"].as_str().unwrap().to_owned())
                .collect()
        };
        assert!(
            !keys(&runs[0]["findings"])
                .iter()
                .any(|k| k.starts_with("equal_opportunity")),
            "no outcomes on home: {:?}",
            keys(&runs[0]["findings"])
        );
        assert!(keys(&runs[1]["findings"]).contains(&"four_fifths:sex".to_owned()));
        assert!(keys(&run["findings"]).contains(&"four_fifths:sex".to_owned()));

        // An all-clear on one surface does not hide another surface's findings.
        let (status, home) = node
            .post(
                "/v1/audit/fairness/runs",
                &node.admin,
                json!({"attributes": ["sex"], "surface": "home", "since_days": 365}),
            )
            .await;
        assert_eq!(status, 201, "{home}");
        let (status, doc) = node
            .get("/v1/audit/fairness/latest?surface=offer", &node.auditor)
            .await;
        assert_eq!(status, 200, "{doc}");
        assert_eq!(doc["report"]["scope"]["surface"], "offer");
        assert!(doc["report"]["scope"]["since"].is_string());
        assert!(keys(&doc["findings"]).contains(&"four_fifths:sex".to_owned()));
        let (_, all) = node.get("/v1/audit/fairness/latest", &node.auditor).await;
        let latest: Vec<&str> = all["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["surface"].as_str().unwrap())
            .collect();
        assert_eq!(latest, ["home", "offer"]);
        assert!(keys(&all["findings"]).contains(&"four_fifths:sex".to_owned()));
        let html = node
            .http
            .get(node.url("/v1/audit/fairness/latest?surface=offer&format=html"))
            .bearer_auth(&node.auditor)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("Surface:</b> offer"), "surface on the page");
        node.stop().await;
    }
);
