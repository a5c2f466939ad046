//! Journeys over real HTTP with a manual clock, on both stores: a follow-up after two
//! engagements with a topic, and every boundary at send time (channel consent, quiet hours in
//! the person's time zone, a sensitive date they opted out of), and a restart mid-journey that
//! sends nothing twice. Messages reach a real receiver through the signed webhook outbox.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_app::ManualClock;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;

/// A local sender that keeps every message body posted to `/send`, with its signature header.
async fn sender() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/send",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let received = received.clone();
                async move {
                    assert!(headers.contains_key("candor-signature"));
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
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn start(db: &TestDb, clock: Arc<ManualClock>) -> Node {
    Node::start_with(db, clock, |c| {
        // Runs are driven through the API so the test decides when time has passed.
        c.journeys.enabled = false;
    })
    .await
}

fn follow_up() -> Value {
    json!({
        "id": "garden-follow-up", "name": "Garden follow-up", "purpose": "personalization",
        "trigger": {"type": "event", "event": "Product Viewed"},
        "exits": [{"type": "event", "event": "Order Completed"}],
        "steps": [
            {"type": "wait", "id": "wait-a-day", "minutes": 1440},
            {"type": "branch", "id": "engaged-twice", "condition": {"type": "engaged", "topic": "Garden", "at_least": 2, "within_days": 7},
             "then": "follow-up", "otherwise": "done"},
            {"type": "message", "id": "follow-up", "channel": "email", "template": "garden-ideas", "personalize": "declared", "next": "done"},
            {"type": "wait", "id": "done", "minutes": 1}
        ]
    })
}

fn mothers_day() -> Value {
    json!({
        "id": "mothers-day", "name": "Mother's Day gifts", "purpose": "personalization",
        "trigger": {"type": "event", "event": "Order Completed"},
        "steps": [{"type": "message", "id": "gift-ideas", "channel": "email", "template": "mothers-day-gifts", "theme": "Mother's Day"}]
    })
}

async fn setup(node: &Node, sender_url: &str) {
    node.declare_shop_plan("reject").await;
    let (s, v) = node
        .post("/v1/admin/purposes", &node.admin, json!({"id": "email_marketing", "title": "News by email", "description": "We email you news and ideas.", "legal_basis": "consent", "categories": ["contact"]}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = node
        .post(
            "/v1/admin/webhooks",
            &node.admin,
            json!({"url": sender_url, "kind": "messages"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let items = json!([
        {"id": "g1", "title": "Trowel", "category": "Garden", "price": 9.5},
        {"id": "g2", "title": "Seeds", "category": "Garden", "price": 3.0},
        {"id": "k1", "title": "Pan", "category": "Kitchen", "price": 20.0}
    ]);
    let (s, v) = node
        .send(
            Method::PUT,
            "/v1/admin/catalog/items",
            Some(&node.admin),
            Some(items),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for j in [follow_up(), mothers_day()] {
        let (s, v) = node.post("/v1/admin/journeys", &node.admin, j).await;
        assert_eq!(s, 201, "{v}");
    }
}

async fn view(node: &Node, user: &str, items: &[&str], at: &str) {
    let batch: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| json!({"type": "track", "event": "Product Viewed", "userId": user, "messageId": format!("{user}-{at}-{i}"), "timestamp": at, "properties": {"product_id": item}}))
        .collect();
    let (s, v) = node.ingest("/v1/batch", json!({"batch": batch})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stored"], items.len(), "{v}");
}

async fn run(node: &Node) -> Value {
    let (s, v) = node
        .post("/v1/admin/journeys/run", &node.admin, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn messages(node: &Node, journey: &str, user: &str) -> Vec<Value> {
    let (s, v) = node
        .get(
            &format!("/v1/admin/journeys/{journey}/messages?subject={user}"),
            &node.admin,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// Waits until the sender holds `n` messages, then a little longer to see no more arrive.
async fn received(bodies: &Arc<Mutex<Vec<Value>>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while bodies.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    bodies.lock().unwrap().clone()
}

fn to(bodies: &[Value], user: &str) -> usize {
    bodies.iter().filter(|b| b["external_id"] == user).count()
}

both_stores!(
    a_journey_respects_every_boundary_and_a_restart_sends_nothing_twice,
    |db: TestDb| async move {
        // Friday 2027-05-07, 10:00 UTC; Mother's Day is Sunday the 9th.
        let t0 = candor_domain::parse_rfc3339("2027-05-07T10:00:00Z").unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let (url, bodies) = sender().await;
        let node = start(&db, clock.clone()).await;
        setup(&node, &url).await;

        for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            node.decide(user, "personalization", "granted").await;
            if user != "bob" {
                let (s, v) = node.decide(user, "email_marketing", "granted").await;
                assert_eq!(s, 200, "{v}");
            }
        }
        // Carol lives in Los Angeles: 10:00 UTC there is 03:00, in quiet hours (21:00-08:00).
        let (s, v) = node
            .send(
                Method::PUT,
                "/v1/subjects/carol/time-zone",
                Some(&node.consent),
                Some(json!({"time_zone": "America/Los_Angeles"})),
            )
            .await;
        assert_eq!(s, 204, "{v}");
        // Dave opted out of Mother's Day (Sunday 9 May) in the preference center.
        let (s, v) = node
            .send(Method::PUT, "/v1/subjects/dave/preferences", Some(&node.consent), Some(json!({
                "source": "preference_center", "level": "basic",
                "quiet_periods": [{"from": "2027-05-09T00:00:00Z", "until": "2027-05-10T00:00:00Z", "label": "Mother's Day"}]})))
            .await;
        assert_eq!(s, 200, "{v}");

        let at = "2027-05-07T09:00:00Z";
        for user in ["alice", "bob", "carol", "erin"] {
            view(&node, user, &["g1", "g2"], at).await;
        }
        // Frank engaged once only, with the topic; once more with another one.
        view(&node, "frank", &["g1", "k1"], at).await;
        let (s, v) = node.ingest("/v1/batch", json!({"batch": [
            {"type": "track", "event": "Order Completed", "userId": "dave", "messageId": "dave-order", "timestamp": at, "properties": {"order_id": "o1"}}]})).await;
        assert_eq!(s, 200, "{v}");

        let first = run(&node).await;
        assert_eq!(first["sent"], 0, "everyone waits a day first: {first}");
        assert_eq!(first["suppressed"], 1, "{first}");
        let dave = messages(&node, "mothers-day", "dave").await;
        assert_eq!(dave.len(), 1);
        assert_eq!(dave[0]["status"], "suppressed");
        assert_eq!(dave[0]["reason"], "sensitive_date", "{dave:?}");

        // Restart mid-journey: a new node on the same store takes over.
        node.stop().await;
        clock.advance(24 * HOUR + 60_000_000);
        let node = start(&db, clock.clone()).await;
        let second = run(&node).await;
        assert_eq!(second["sent"], 2, "alice and erin: {second}");
        assert_eq!(second["deferred"], 1, "carol: {second}");
        assert_eq!(second["suppressed"], 1, "bob: {second}");
        let again = run(&node).await;
        assert_eq!(
            (again["sent"].as_u64(), again["steps"].as_u64()),
            (Some(0), Some(0)),
            "{again}"
        );

        let alice = messages(&node, "garden-follow-up", "alice").await;
        assert_eq!(alice.len(), 1, "{alice:?}");
        assert!(
            alice[0]["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("email_marketing")),
            "{alice:?}"
        );
        assert_eq!(alice[0]["personalization"], "declared");
        let bob = messages(&node, "garden-follow-up", "bob").await;
        assert_eq!(
            (bob.len(), bob[0]["reason"].as_str()),
            (1, Some("no_channel_consent"))
        );
        assert!(
            messages(&node, "garden-follow-up", "frank")
                .await
                .is_empty(),
            "one engagement with the topic is not two"
        );
        let carol = messages(&node, "garden-follow-up", "carol").await;
        assert_eq!(carol[0]["status"], "deferred", "{carol:?}");
        assert!(
            carol[0]["reason"]
                .as_str()
                .unwrap()
                .contains("2027-05-08T15:00:00Z"),
            "08:00 in Los Angeles: {carol:?}"
        );

        // The quiet hours end at 08:00 local, 15:00 UTC: carol's message goes then, not before.
        clock.advance(4 * HOUR);
        assert_eq!(run(&node).await["sent"], 0);
        clock.advance(2 * HOUR);
        assert_eq!(run(&node).await["sent"], 1);
        assert_eq!(
            messages(&node, "garden-follow-up", "carol").await[0]["status"],
            "queued"
        );

        let got = received(&bodies, 3).await;
        assert_eq!(got.len(), 3, "{got:?}");
        for (user, n) in [
            ("alice", 1),
            ("erin", 1),
            ("carol", 1),
            ("bob", 0),
            ("dave", 0),
            ("frank", 0),
        ] {
            assert_eq!(to(&got, user), n, "{user}: {got:?}");
        }
        let a = got.iter().find(|b| b["external_id"] == "alice").unwrap();
        assert_eq!(
            (
                a["type"].as_str(),
                a["channel"].as_str(),
                a["template"].as_str()
            ),
            (Some("message.send"), Some("email"), Some("garden-ideas"))
        );
        // Delivered messages say so; one more run sends nothing.
        let deadline = Instant::now() + Duration::from_secs(5);
        while messages(&node, "garden-follow-up", "alice").await[0]["status"] != "delivered"
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            messages(&node, "garden-follow-up", "alice").await[0]["status"],
            "delivered"
        );
        assert_eq!(run(&node).await["sent"], 0);

        // What journeys hold is in the person's export, and erasure removes it.
        let (s, export) = node.get("/v1/subjects/carol/export", &node.rights).await;
        assert_eq!(s, 200, "{export}");
        assert_eq!(export["journeys"]["time_zone"], "America/Los_Angeles");
        assert_eq!(
            export["journeys"]["messages"][0]["status"]
                .as_str()
                .map(|s| s == "queued" || s == "delivered"),
            Some(true),
            "{}",
            export["journeys"]
        );
        let (s, receipt) = node
            .send(
                Method::DELETE,
                "/v1/subjects/carol",
                Some(&node.rights),
                None,
            )
            .await;
        assert_eq!(s, 201, "{receipt}");
        assert!(
            messages(&node, "garden-follow-up", "carol")
                .await
                .is_empty()
        );
        let (_, export) = node.get("/v1/subjects/carol/export", &node.rights).await;
        assert_eq!(
            export["journeys"],
            json!({"time_zone": null, "positions": [], "messages": []})
        );
        node.stop().await;
    }
);

both_stores!(
    a_revoked_channel_consent_stops_the_next_message,
    |db: TestDb| async move {
        let t0 = candor_domain::parse_rfc3339("2027-05-07T10:00:00Z").unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let (url, _bodies) = sender().await;
        let node = start(&db, clock.clone()).await;
        setup(&node, &url).await;
        node.decide("gina", "personalization", "granted").await;
        node.decide("gina", "email_marketing", "granted").await;
        view(&node, "gina", &["g1", "g2"], "2027-05-07T09:00:00Z").await;
        run(&node).await;
        clock.advance(24 * HOUR + 60_000_000);
        // Revoked just before the message would go: the very next run suppresses it.
        node.decide("gina", "email_marketing", "denied").await;
        let r = run(&node).await;
        assert_eq!(
            (r["sent"].as_u64(), r["suppressed"].as_u64()),
            (Some(0), Some(1)),
            "{r}"
        );
        let m = messages(&node, "garden-follow-up", "gina").await;
        assert_eq!(m[0]["reason"], "no_channel_consent");
        node.stop().await;
    }
);

both_stores!(
    faulty_journeys_get_422_naming_the_step,
    |db: TestDb| async move {
        let (url, _) = sender().await;
        let node = start(&db, Arc::new(ManualClock::new(0))).await;
        setup(&node, &url).await;
        let base = |steps: Value| {
            json!({"id": "bad", "name": "Bad", "purpose": "personalization",
            "trigger": {"type": "event", "event": "Product Viewed"}, "steps": steps})
        };
        for (steps, field, says) in [
            (
                json!([{"type": "message", "id": "fax-it", "channel": "fax", "template": "t"}]),
                "steps[0]",
                "`fax-it`",
            ),
            (
                json!([{"type": "wait", "id": "w", "minutes": 5}, {"type": "message", "id": "buzz", "channel": "sms", "template": "t"}]),
                "steps[1]",
                "no consent purpose",
            ),
            (
                json!([{"type": "message", "id": "a", "channel": "email", "template": "t", "next": "b"},
                    {"type": "branch", "id": "b", "condition": {"type": "engaged", "topic": "Garden", "at_least": 1, "within_days": 1}, "then": "a", "otherwise": "a"}]),
                "steps[0]",
                "cycle without a wait",
            ),
        ] {
            let (s, v) = node
                .post("/v1/admin/journeys", &node.admin, base(steps))
                .await;
            assert_eq!(s, 422, "{v}");
            assert_eq!(v["error"]["code"], "invalid_field");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(field) && message.contains(says),
                "{message}"
            );
        }
        let (s, v) = node
            .post("/v1/admin/journeys", &node.admin, json!({"id": "x"}))
            .await;
        assert_eq!(s, 422, "{v}");
        let (s, v) = node
            .send(
                Method::PUT,
                "/v1/subjects/x/time-zone",
                Some(&node.consent),
                Some(json!({"time_zone": "Mars/Olympus"})),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        let (_, list) = node.get("/v1/admin/journeys", &node.admin).await;
        assert_eq!(
            list.as_array().unwrap().len(),
            2,
            "nothing stored by a bad request: {list}"
        );
        node.stop().await;
    }
);

both_stores!(
    double_opt_in_grants_email_only_after_the_token_comes_back,
    |db: TestDb| async move {
        let (url, bodies) = sender().await;
        let node = start(&db, Arc::new(ManualClock::new(1_800_000_000_000_000))).await;
        // Without a messages webhook nobody would receive the confirmation.
        node.declare_shop_plan("reject").await;
        node.post("/v1/admin/purposes", &node.admin, json!({"id": "email_marketing", "title": "News by email", "description": "We email you news and ideas.", "legal_basis": "consent", "categories": ["contact"]})).await;
        let (s, v) = node
            .post(
                "/v1/subjects/hana/email-confirmations",
                &node.consent,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        node.post(
            "/v1/admin/webhooks",
            &node.admin,
            json!({"url": url, "kind": "messages"}),
        )
        .await;

        let (s, v) = node
            .post(
                "/v1/subjects/hana/email-confirmations",
                &node.consent,
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["purpose"], "email_marketing");
        assert_eq!(
            node.state("hana", "email_marketing").await,
            "not_asked",
            "nothing granted yet"
        );
        let got = received(&bodies, 1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0]["template"].as_str(), got[0]["external_id"].as_str()),
            (Some("double_opt_in"), Some("hana"))
        );
        let token = got[0]["token"].as_str().unwrap().to_owned();

        for bad in ["nope".to_owned(), "0".repeat(64)] {
            let (s, v) = node
                .send(
                    Method::POST,
                    "/v1/email/confirm",
                    None,
                    Some(json!({"token": bad})),
                )
                .await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{v}"
            );
        }
        assert_eq!(node.state("hana", "email_marketing").await, "not_asked");
        let (s, v) = node
            .send(
                Method::POST,
                "/v1/email/confirm",
                None,
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert!(
            v["proof"]
                .as_str()
                .unwrap()
                .starts_with("double_opt_in:sha256:"),
            "{v}"
        );
        assert_eq!(node.state("hana", "email_marketing").await, "granted");
        let (_, history) = node
            .get("/v1/subjects/hana/consents/history", &node.recommend)
            .await;
        assert!(
            history.to_string().contains("double_opt_in:sha256:"),
            "{history}"
        );
        assert!(
            !history.to_string().contains(&token),
            "only the hash is kept"
        );
        // A token confirms once.
        let (s, _) = node
            .send(
                Method::POST,
                "/v1/email/confirm",
                None,
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(s, 404);
        node.stop().await;
    }
);
