//! Feedback on answers, the trust survey and KPIs, and the human review queue, over HTTP on
//! both stores.

mod common;

use std::sync::Arc;

use candor_app::SystemClock;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

/// A demo customer who allows personalization and has behaviour on file, at level full.
async fn customer_at_full(node: &Node) -> String {
    let id = common::consenting_customer(node).await;
    let (s, v) = node
        .send(
            Method::PATCH,
            &format!("/v1/subjects/{id}/preferences"),
            Some(&node.consent),
            Some(json!({"level": "full", "source": "preference_center"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    id
}

async fn answer(node: &Node, id: &str) -> Value {
    let (s, v) = node
        .get(
            &format!("/v1/recommendations/{id}?surface=home&k=6"),
            &node.recommend,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn items(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn feedback(node: &Node, body: Value) -> (u16, Value) {
    node.post("/v1/feedback", &node.recommend, body).await
}

both_stores!(
    feedback_lowers_the_level_hides_items_is_exported_counted_and_erased,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.load_demo(300, 400).await;
        let (s, v) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let cust = customer_at_full(&node).await;
        let first = answer(&node, &cust).await;
        let decision = first["decision_id"].as_str().unwrap().to_owned();
        assert!(decision.starts_with("ans_"), "{first}");
        let shown = items(&first);

        // Thumbs down hides the item (at once, before the decision log's writer caught up).
        let (s, v) = feedback(
            &node,
            json!({"user_id": cust, "decision_id": decision, "item_id": shown[0], "kind": "thumbs_down"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["item_hidden"], true, "{v}");
        let next = answer(&node, &cust).await;
        assert!(!items(&next).contains(&shown[0]), "{next}");
        assert!(
            next["filters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().contains("marked not for you")),
            "{next}"
        );

        // Too personal: one step down, confirmed in the answer and the preferences.
        let (s, v) = feedback(
            &node,
            json!({"user_id": cust, "decision_id": decision, "kind": "too_personal"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(
            (v["level_before"].as_str(), v["level_after"].as_str()),
            (Some("full"), Some("basic"))
        );
        assert!(
            v["applied"][0]
                .as_str()
                .unwrap()
                .contains("lowered from full to basic")
        );
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(prefs["level"], "basic");
        assert_eq!(prefs["hidden_items"], json!([shown[0]]));
        assert_eq!(answer(&node, &cust).await["level_applied"], "basic");

        // A complaint keeps its text, sealed, and the person sees it in their export.
        let (s, v) = feedback(
            &node,
            json!({"user_id": cust, "decision_id": decision, "kind": "complaint", "text": "You showed me pharmacy items in public."}),
        )
        .await;
        assert_eq!(s, 201, "{v}");

        // Bad input names the field, and changes nothing.
        let other = answer(&node, "cust-0002").await;
        let other_id = other["decision_id"].as_str().unwrap();
        for (body, status, needle) in [
            (
                json!({"user_id": cust, "decision_id": "nope", "kind": "thumbs_up", "item_id": shown[1]}),
                422,
                "decision_id",
            ),
            (
                json!({"user_id": cust, "decision_id": format!("ans_{}", "0".repeat(32)), "kind": "thumbs_up", "item_id": shown[1]}),
                404,
                "decision",
            ),
            (
                json!({"user_id": cust, "decision_id": other_id, "kind": "too_personal"}),
                404,
                "decision",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "thumbs_up", "item_id": "not-shown"}),
                422,
                "item_id",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "thumbs_up"}),
                422,
                "item_id",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "meh"}),
                422,
                "kind",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "complaint"}),
                422,
                "text",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "too_personal", "text": "hi"}),
                422,
                "text",
            ),
            (
                json!({"user_id": cust, "decision_id": decision, "kind": "too_personal", "extra": 1}),
                422,
                "extra",
            ),
        ] {
            let (s, v) = feedback(&node, body.clone()).await;
            assert_eq!(s, status, "{body} -> {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(needle),
                "{body} -> {v}"
            );
        }
        let (s, _) = node.post("/v1/feedback", &node.consent, json!({})).await;
        assert_eq!(s, 403);
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(
            (
                prefs["level"].as_str(),
                prefs["hidden_items"].as_array().unwrap().len()
            ),
            (Some("basic"), 1)
        );

        // A revocation counts from the next request: hiding no longer uses their preferences.
        let (s, v) = node.decide(&cust, "personalization", "denied").await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = feedback(
            &node,
            json!({"user_id": cust, "decision_id": decision, "item_id": shown[1], "kind": "not_relevant"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["item_hidden"], false, "{v}");
        assert!(
            v["applied"][0].as_str().unwrap().contains("no consent"),
            "{v}"
        );
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(prefs["hidden_items"], json!([shown[0]]));

        // The trust survey, bounded.
        for score in [10, 9, 3] {
            let (s, v) = node
                .post(
                    "/v1/surveys",
                    &node.recommend,
                    json!({"user_id": cust, "survey": "trust", "score": score}),
                )
                .await;
            assert_eq!(s, 204, "{v}");
        }
        for bad in [json!(11), json!(-1), json!(7.5), json!("9")] {
            let (s, v) = node
                .post(
                    "/v1/surveys",
                    &node.recommend,
                    json!({"user_id": cust, "survey": "trust", "score": bad}),
                )
                .await;
            assert_eq!(s, 422, "{bad} -> {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("score"));
        }

        // KPIs come from the counts written with each row.
        let (s, k) = node.get("/v1/kpis?days=7", &node.auditor).await;
        assert_eq!(s, 200, "{k}");
        let kind = |list: &Value, kind: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|f| f["kind"] == kind)
                .map(|f| f["count"].as_i64().unwrap())
                .unwrap()
        };
        assert_eq!(kind(&k["feedback"], "thumbs_down"), 1, "{k}");
        assert_eq!(kind(&k["feedback"], "not_relevant"), 1);
        assert_eq!(kind(&k["feedback"], "too_personal"), 1);
        assert_eq!(kind(&k["feedback"], "complaint"), 1);
        assert_eq!(k["levels_lowered_by_feedback"], 1);
        // The customer got three answers from the model (full, full, then basic after "too
        // personal"); cust-0002's answer was popularity and counts under its own version.
        let model = first["model_version"].as_str().unwrap();
        let by_model = k["by_model"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dimension"] == format!("model:{model}"))
            .cloned()
            .unwrap_or_else(|| panic!("{k}"));
        let answers = by_model["answers"].as_i64().unwrap();
        assert_eq!(answers, 3, "{k}");
        assert_eq!(k["answers"], 4, "{k}");
        let rate = by_model["too_personal_rate"].as_f64().unwrap();
        assert!((rate - 1.0 / answers as f64).abs() < 1e-12, "{k}");
        assert_eq!(k["trust"]["answers"], 3);
        assert!(
            (k["trust"]["nps"].as_f64().unwrap() - 100.0 / 3.0).abs() < 1e-9,
            "{k}"
        );
        assert!((k["trust"]["mean"].as_f64().unwrap() - 22.0 / 3.0).abs() < 1e-9);
        assert!(
            k["preference_changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["kind"] == "feedback" && p["count"] == 2),
            "{k}"
        );
        let (s, v) = node.get("/v1/kpis?days=0", &node.auditor).await;
        assert_eq!(s, 422, "{v}");
        let (s, _) = node.get("/v1/kpis", &node.recommend).await;
        assert_eq!(s, 403);

        // The export carries every piece of feedback, the complaint opened, and the answers.
        let (s, export) = node
            .get(&format!("/v1/subjects/{cust}/export"), &node.rights)
            .await;
        assert_eq!(s, 200);
        let given = export["feedback"].as_array().unwrap();
        assert_eq!(given.len(), 4, "{}", export["feedback"]);
        assert_eq!(given[2]["text"], "You showed me pharmacy items in public.");
        assert_eq!(export["survey_answers"].as_array().unwrap().len(), 3);
        assert!(
            export["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["decision_id"] == decision)
        );

        // Erasure takes the feedback and survey answers with it.
        let (s, receipt) = node
            .send(
                Method::DELETE,
                &format!("/v1/subjects/{cust}"),
                Some(&node.rights),
                None,
            )
            .await;
        assert_eq!(s, 201, "{receipt}");
        let part = |artifact: &str| {
            receipt["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["artifact"] == artifact)
                .map(|p| p["count"].as_i64().unwrap())
                .unwrap_or_else(|| panic!("no {artifact}: {receipt}"))
        };
        assert_eq!((part("feedback"), part("survey_answers")), (4, 3));
        let (s, v) = feedback(
            &node,
            json!({"user_id": cust, "decision_id": decision, "kind": "too_personal"}),
        )
        .await;
        assert_eq!(
            s, 404,
            "an erased subject's answers are no longer theirs: {v}"
        );
        node.stop().await;
    }
);

both_stores!(
    a_model_waits_for_another_persons_approval_and_a_rejection_keeps_the_old_one,
    |db: TestDb| async move {
        let node = Node::start_with(&db, Arc::new(SystemClock), |c| {
            c.review.model_activation = candor_domain::review::RuleMode::Review;
        })
        .await;
        node.load_demo(300, 400).await;
        let cust = customer_at_full(&node).await;
        let ann_admin = node
            .app
            .create_key_for(
                "test",
                "ann admin",
                candor_domain::Scope::Admin,
                Some("ann@shop"),
            )
            .await
            .unwrap()
            .secret;
        let ann_reviewer = node
            .app
            .create_key_for(
                "test",
                "ann reviewer",
                candor_domain::Scope::Reviewer,
                Some("ann@shop"),
            )
            .await
            .unwrap()
            .secret;

        // Training stores the model and holds its activation.
        let (s, trained) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&ann_admin),
                None,
            )
            .await;
        assert_eq!(s, 201, "{trained}");
        assert_eq!(trained["activated"], false, "{trained}");
        let review = trained["review"].as_str().unwrap().to_owned();
        let version = trained["version"].as_str().unwrap().to_owned();
        let held = answer(&node, &cust).await;
        assert_ne!(
            held["model_version"],
            version.as_str(),
            "a held model is not served"
        );
        assert!(
            held["fallback"]
                .as_str()
                .unwrap()
                .contains(&format!("model {version} awaits human review ({review})")),
            "{held}"
        );

        let (s, card) = node
            .get(&format!("/v1/reviews/{review}"), &node.reviewer)
            .await;
        assert_eq!(s, 200, "{card}");
        assert_eq!(
            (card["state"].as_str(), card["kind"].as_str()),
            (Some("pending"), Some("model_activation"))
        );
        assert!(
            card["card"]["explanation"]
                .as_str()
                .unwrap()
                .contains(&version)
        );
        assert!(
            card["card"]["consent_basis"]
                .as_str()
                .unwrap()
                .contains("personalization")
        );
        let (s, list) = node.get("/v1/reviews?state=pending", &node.auditor).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        // Asking again while one is pending waits on the same item, not a second one.
        let (s, v) = node
            .send(
                Method::POST,
                &format!("/v1/admin/models/{version}/activate"),
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!((s, v["id"].as_str()), (202, Some(review.as_str())), "{v}");
        let (_, list) = node.get("/v1/reviews", &node.auditor).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        let decide = |key: String, body: Value| {
            let node = &node;
            let review = review.clone();
            async move {
                node.post(&format!("/v1/reviews/{review}/decision"), &key, body)
                    .await
            }
        };
        let why = "validation figures are fine and fairness unchanged";
        // No admin bypass; no reason, no decision; not one's own request, with any of one's keys.
        let (s, v) = decide(
            node.admin.clone(),
            json!({"verdict": "approve", "reason": why}),
        )
        .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = decide(
            node.reviewer.clone(),
            json!({"verdict": "approve", "reason": "ok"}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("reason_required")),
            "{v}"
        );
        let (s, v) = decide(node.reviewer.clone(), json!({"verdict": "approve"})).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("reason_required")),
            "{v}"
        );
        let (s, v) = decide(
            ann_reviewer.clone(),
            json!({"verdict": "approve", "reason": why}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("own_request")),
            "{v}"
        );
        let (s, v) = decide(
            node.reviewer.clone(),
            json!({"verdict": "maybe", "reason": why}),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(
            answer(&node, &cust).await["model_version"],
            held["model_version"]
        );

        // Another reviewer rejects: the old model keeps serving; deciding again is a conflict.
        let (s, v) = decide(
            node.reviewer.clone(),
            json!({"verdict": "reject", "reason": "the card shows no validation figures"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "rejected");
        let (s, v) = decide(
            node.reviewer.clone(),
            json!({"verdict": "approve", "reason": why}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("already_decided")),
            "{v}"
        );
        assert_eq!(
            answer(&node, &cust).await["model_version"],
            held["model_version"]
        );

        // A new request, approved by someone else, serves at once.
        let (s, again) = node
            .send(
                Method::POST,
                &format!("/v1/admin/models/{version}/activate"),
                Some(&ann_admin),
                None,
            )
            .await;
        assert_eq!(s, 202, "{again}");
        let second = again["id"].as_str().unwrap().to_owned();
        let (s, v) = node
            .post(
                &format!("/v1/reviews/{second}/decision"),
                &node.reviewer,
                json!({"verdict": "approve", "reason": why}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let served = answer(&node, &cust).await;
        assert_eq!(served["model_version"], version.as_str(), "{served}");
        assert_eq!(served["level_applied"], "full");
        assert!(served["fallback"].is_null(), "{served}");

        // Decisions are audited and exported as labelled feedback.
        let (_, log) = node.get("/v1/audit/log?limit=20", &node.auditor).await;
        let decided: Vec<&Value> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "review.decide")
            .collect();
        assert_eq!(decided.len(), 2, "{log}");
        let resp = node
            .http
            .get(node.url("/v1/reviews/decisions.jsonl"))
            .bearer_auth(&node.auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let lines: Vec<Value> = resp
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines.iter().any(|l| l["label"] == "rejected"
                && l["reason"] == "the card shows no validation figures")
        );
        node.stop().await;
    }
);

both_stores!(
    break_glass_serves_alone_with_a_reason_and_tells_every_webhook,
    |db: TestDb| async move {
        let node = Node::start_with(&db, Arc::new(SystemClock), |c| {
            c.review.model_activation = candor_domain::review::RuleMode::Review;
        })
        .await;
        node.load_demo(120, 200).await;
        let (url, received) = common::receiver().await;
        let (s, hook) = node
            .post("/v1/admin/webhooks", &node.admin, json!({"url": url}))
            .await;
        assert_eq!(s, 201, "{hook}");
        let reviewer = node
            .app
            .create_key_for(
                "test",
                "on call",
                candor_domain::Scope::Reviewer,
                Some("sam@shop"),
            )
            .await
            .unwrap();
        let (_, trained) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&node.admin),
                None,
            )
            .await;
        let review = trained["review"].as_str().unwrap();
        let (s, v) = node
            .post(
                &format!("/v1/reviews/{review}/decision"),
                &reviewer.secret,
                json!({"verdict": "override", "reason": "x"}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("reason_required")),
            "{v}"
        );
        let (s, v) = node
            .post(
                &format!("/v1/reviews/{review}/decision"),
                &reviewer.secret,
                json!({"verdict": "override", "reason": "the old model fails on the new catalog; nobody else is on call"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "overridden");
        assert_eq!(
            v["decided_by"],
            format!("holder:sam@shop/key:{}", reviewer.id)
        );
        // The other reviewers learn of it: every webhook gets the break-glass event.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let event = loop {
            let found = received
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["type"] == "review.break_glass")
                .cloned();
            if let Some(e) = found {
                break e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no break-glass event delivered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(event["review"]["id"], review);
        assert!(
            event["review"]["reason"]
                .as_str()
                .unwrap()
                .contains("nobody else is on call")
        );
        let models = node.app.model_versions().await.unwrap();
        assert!(
            models
                .iter()
                .any(|m| m.active && m.version == trained["version"].as_str().unwrap())
        );
        node.stop().await;
    }
);

/// `n` answers on `surface` for demo customers from `first` on, with "too personal" feedback on
/// the first `complaints` of them.
async fn answers_with_feedback(
    node: &Node,
    surface: &str,
    first: usize,
    n: usize,
    complaints: usize,
) {
    for i in 0..n {
        let id = format!("cust-{:04}", first + i);
        let (s, v) = node
            .get(
                &format!("/v1/recommendations/{id}?surface={surface}&k=3"),
                &node.recommend,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        if i < complaints {
            let (s, f) = feedback(
                node,
                json!({"user_id": id, "decision_id": v["decision_id"], "kind": "too_personal"}),
            )
            .await;
            assert_eq!(s, 201, "{f}");
        }
    }
}

both_stores!(
    a_rise_in_too_personal_feedback_scales_one_surface_back_in_steps_until_a_person_clears_it,
    |db: TestDb| async move {
        const DAY: i64 = 86_400_000_000;
        // Two weeks of quiet history, then today.
        let today = candor_domain::parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        let clock = Arc::new(candor_app::ManualClock::new(today - 14 * DAY));
        let node = Node::start_with_clock(&db, clock.clone()).await;
        node.load_demo(300, 400).await;
        let (s, v) = node
            .send(
                Method::POST,
                "/v1/admin/models/train",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (url, received) = common::receiver().await;
        let (s, v) = node
            .post("/v1/admin/webhooks", &node.admin, json!({"url": url}))
            .await;
        assert_eq!(s, 201, "{v}");

        // Bad rules are refused naming the field, and the rules in force stay.
        let rule =
            json!({"metric": "too_personal", "min_sample": 20, "min_rise": 0.05, "min_ratio": 2.0});
        let (s, v) = node
            .send(
                Method::PUT,
                "/v1/admin/alerts/rules",
                Some(&node.admin),
                Some(json!({"rules": [rule]})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        for (bad, field) in [
            (
                json!({"metric": "too_personal", "min_sample": 20, "min_rise": -0.05, "min_ratio": 2.0}),
                "rules[0].min_rise",
            ),
            (
                json!({"metric": "vibes", "min_sample": 20, "min_rise": 0.05, "min_ratio": 2.0}),
                "rules[0].metric",
            ),
            (
                json!({"metric": "too_personal", "min_sample": 0, "min_rise": 0.05, "min_ratio": 2.0}),
                "rules[0].min_sample",
            ),
        ] {
            let (s, v) = node
                .send(
                    Method::PUT,
                    "/v1/admin/alerts/rules",
                    Some(&node.admin),
                    Some(json!({"rules": [bad]})),
                )
                .await;
            assert_eq!(s, 422, "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{v}"
            );
        }
        let (_, rules) = node.get("/v1/admin/alerts/rules", &node.admin).await;
        assert_eq!(rules["rules"][0]["min_rise"], 0.05, "{rules}");

        // Fourteen quiet days: 25 answers a day on home, one "too personal" every other day.
        for d in 0..14 {
            clock.set(today - (14 - d) * DAY);
            answers_with_feedback(&node, "home", 100 + d as usize * 10, 25, (d % 2) as usize).await;
        }
        clock.set(today);
        let viewer = customer_at_full(&node).await;
        assert_eq!(answer(&node, &viewer).await["level_applied"], "full");
        let (s, none) = node
            .send(
                Method::POST,
                "/v1/admin/alerts/evaluate",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!((s, none.as_array().unwrap().len()), (200, 0), "{none}");

        // Today: 25 answers on home, 8 of them "too personal" (32% against about 2%).
        answers_with_feedback(&node, "home", 250, 25, 8).await;
        let (s, raised) = node
            .send(
                Method::POST,
                "/v1/admin/alerts/evaluate",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{raised}");
        let raised = raised.as_array().unwrap();
        assert_eq!(raised.len(), 1, "{raised:?}");
        let alert = raised[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            (
                raised[0]["surface"].as_str(),
                raised[0]["scale_back_to"].as_str()
            ),
            (Some("home"), Some("basic"))
        );
        assert!(raised[0]["observed"].as_f64().unwrap() > 0.3);
        assert!(raised[0]["expected"].as_f64().unwrap() < 0.05, "{raised:?}");

        // Home answers are capped at basic and say why; another surface is untouched.
        let capped = answer(&node, &viewer).await;
        assert_eq!(capped["level_applied"], "basic", "{capped}");
        assert!(
            capped["filters"].as_array().unwrap().iter().any(|f| f
                .as_str()
                .unwrap()
                .contains(&format!("scaled back to basic by alert {alert}"))),
            "{capped}"
        );
        assert!(
            capped["filters"]
                .to_string()
                .contains("because of an alert's scale-back"),
            "{capped}"
        );
        let (_, product) = node
            .get(
                &format!("/v1/recommendations/{viewer}?surface=product&k=3"),
                &node.recommend,
            )
            .await;
        assert_eq!(product["level_applied"], "full", "{product}");

        // The same evaluation again changes nothing: no new answers since the step.
        let (_, again) = node
            .send(
                Method::POST,
                "/v1/admin/alerts/evaluate",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(again.as_array().unwrap().len(), 0, "{again}");
        // It goes on: the next step is off.
        answers_with_feedback(&node, "home", 280, 20, 8).await;
        let (_, stepped) = node
            .send(
                Method::POST,
                "/v1/admin/alerts/evaluate",
                Some(&node.admin),
                None,
            )
            .await;
        assert_eq!(stepped[0]["scale_back_to"], "off", "{stepped}");
        assert_eq!(answer(&node, &viewer).await["level_applied"], "off");

        // Every step reached the webhooks.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "alert.fired")
            .count()
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "alert.fired not delivered twice"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // Only a person lifts it, with a reason.
        let clear = format!("/v1/alerts/{alert}/clear");
        let (s, _) = node
            .post(
                &clear,
                &node.auditor,
                json!({"reason": "looked at it, fine"}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, v) = node
            .post(&clear, &node.admin, json!({"reason": "ok"}))
            .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(answer(&node, &viewer).await["level_applied"], "off");
        let (s, v) = node
            .post(
                &clear,
                &node.admin,
                json!({"reason": "the pharmacy banner that upset people is gone"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "cleared");
        assert_eq!(answer(&node, &viewer).await["level_applied"], "full");
        let (s, v) = node
            .post(
                &clear,
                &node.admin,
                json!({"reason": "the pharmacy banner is gone"}),
            )
            .await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = node
            .post(
                "/v1/alerts/alr_nope/clear",
                &node.admin,
                json!({"reason": "nothing to clear here"}),
            )
            .await;
        assert_eq!(s, 404, "{v}");
        let (_, list) = node.get("/v1/alerts", &node.auditor).await;
        assert_eq!(
            list[0]["cleared_by"]
                .as_str()
                .map(|a| a.starts_with("key:")),
            Some(true),
            "{list}"
        );
        let (_, log) = node.get("/v1/audit/log?limit=10", &node.auditor).await;
        assert!(log.to_string().contains("alert.clear") && log.to_string().contains("alert.raise"));
        node.stop().await;
    }
);
