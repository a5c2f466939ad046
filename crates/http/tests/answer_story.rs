//! Every recommendation answer tells one consistent story of what was applied: the consent state
//! of its purpose in words, the level chosen and the level applied (and why they differ), and
//! items that name a purpose and a calibrated model only when personal data shaped them. Checked
//! over every combination of level × consent state × quiet period, on both stores.

mod common;

use std::sync::Arc;

use candor_app::ManualClock;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
/// 2026-06-01T00:00:00Z.
const NOW: i64 = 1_780_272_000_000_000;

/// The subjects of the story, named after the consent state each ends in.
const STATES: [&str; 5] = ["granted", "denied", "not_asked", "expired", "needs_renewal"];

fn subject(state: &str) -> String {
    format!("story-{state}")
}

/// Revises the `personalization` purpose as an operator would: its current declaration from
/// the public list, changed by `edit`, put back through the admin API.
async fn revise_personalization(node: &Node, edit: impl FnOnce(&mut Value)) {
    let (_, list) = node.send(Method::GET, "/v1/purposes", None, None).await;
    let mut p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "personalization")
        .expect("personalization is declared")
        .clone();
    let o = p.as_object_mut().unwrap();
    o.remove("version");
    o.remove("change_note");
    edit(&mut p);
    let (s, v) = node
        .send(
            Method::PUT,
            "/v1/admin/purposes/personalization",
            Some(&node.admin),
            Some(p),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

async fn decide(node: &Node, id: &str, purpose: &str, decision: &str) {
    let (s, v) = node.decide(id, purpose, decision).await;
    assert_eq!(s, 200, "{v}");
}

both_stores!(
    every_answer_tells_one_story_of_consent_level_and_quiet_period,
    |db: TestDb| async move {
        let clock = Arc::new(ManualClock::new(NOW));
        let node = Node::start_with_clock(&db, clock.clone()).await;
        node.load_demo(150, 300).await;
        node.app.train("test", &|_| {}).await.unwrap();
        let (s, popular) = node
            .get(
                "/v1/recommendations/nobody?surface=home&k=6",
                &node.recommend,
            )
            .await;
        assert_eq!(s, 200, "{popular}");
        let items: Vec<String> = popular["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_str().unwrap().to_owned())
            .collect();
        let liked = popular["items"][0]["category"].as_str().unwrap().to_owned();

        // Everyone browses while some purpose allows it: personalization for four of them, only
        // aggregate analytics for the one who is never asked about personalization.
        for state in STATES {
            let id = subject(state);
            let purpose = if state == "not_asked" {
                "analytics"
            } else {
                "personalization"
            };
            decide(&node, &id, purpose, "granted").await;
            let batch: Vec<Value> = items
                .iter()
                .take(3)
                .enumerate()
                .map(|(n, item)| {
                    json!({"type": "track", "userId": id, "event": "Product Viewed",
                           "properties": {"product_id": item}, "messageId": format!("{id}-{n}")})
                })
                .collect();
            let (s, v) = node.ingest("/v1/batch", json!({"batch": batch})).await;
            assert_eq!((s, v["stored"].as_u64()), (200, Some(3)), "{v}");
        }
        decide(&node, &subject("denied"), "personalization", "denied").await;
        // A material change (a new data category) asks everyone for fresh consent...
        revise_personalization(&node, |p| {
            p["categories"]
                .as_array_mut()
                .unwrap()
                .push(json!("location"));
        })
        .await;
        // ...which one gives again, and one gives again with a grant from over a year ago.
        decide(&node, &subject("granted"), "personalization", "granted").await;
        let key = node.app.subject_key(&subject("expired")).unwrap();
        let pid = candor_domain::PurposeId::parse("personalization").unwrap();
        node.app
            .import_consents(
                "test",
                &key,
                &[(
                    pid,
                    candor_domain::ConsentDecision::Granted,
                    NOW - 400 * DAY,
                )],
            )
            .await
            .unwrap();
        clock.advance(1_000_000);

        let (s, consents) = node
            .get(
                &format!("/v1/subjects/{}/consents", subject("granted")),
                &node.recommend,
            )
            .await;
        assert_eq!(s, 200);
        let granted = consents["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"]["id"] == "personalization")
            .unwrap();
        assert_eq!(granted["consent"]["state"], "granted");
        assert_eq!(granted["consent"]["consented_version"], 2, "{granted}");

        let mut checked = 0;
        for state in STATES {
            let id = subject(state);
            for level in ["off", "basic", "full"] {
                for quiet in [false, true] {
                    let quiet_periods = if quiet {
                        json!([{"from": candor_domain::format_micros(NOW - DAY), "until": candor_domain::format_micros(NOW + DAY), "label": "holiday"}])
                    } else {
                        json!([])
                    };
                    let (s, v) = node
                        .send(
                            Method::PUT,
                            &format!("/v1/subjects/{id}/preferences"),
                            Some(&node.consent),
                            Some(json!({"level": level, "declared_interests": [liked], "quiet_periods": quiet_periods, "source": "api"})),
                        )
                        .await;
                    assert_eq!(s, 200, "{v}");
                    let (s, answer) = node
                        .get(
                            &format!("/v1/recommendations/{id}?surface=home&k=6"),
                            &node.recommend,
                        )
                        .await;
                    assert_eq!(s, 200, "{answer}");
                    one_story(state, level, quiet, &answer);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 30);
        node.stop().await;
    }
);

/// The checks every answer must pass, whatever the combination.
fn one_story(state: &str, chosen: &str, quiet: bool, a: &Value) {
    let ctx = format!("{state} / {chosen} / quiet {quiet}: {a:#}");
    let filters: Vec<&str> = a["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let applied = a["level_applied"].as_str().unwrap();
    assert_eq!(a["level_requested"], chosen, "{ctx}");

    // The consent line says what the state is, in words.
    let consent = filters
        .iter()
        .find(|f| f.starts_with("consent for `personalization`"))
        .unwrap_or_else(|| panic!("no consent line: {ctx}"));
    let expected = match state {
        "granted" => "granted",
        "denied" => "denied",
        "not_asked" => "not given",
        "expired" => "expired",
        "needs_renewal" => "the purpose changed (v2)",
        _ => unreachable!(),
    };
    assert!(consent.contains(expected), "{consent}: {ctx}");

    // Exactly one level line; it names the applied level, and why it differs from the chosen.
    let levels: Vec<&&str> = filters
        .iter()
        .filter(|f| f.starts_with("personalization level"))
        .collect();
    assert_eq!(levels.len(), 1, "{ctx}");
    if applied == chosen {
        assert_eq!(
            *levels[0],
            format!("personalization level: {chosen}"),
            "{ctx}"
        );
    } else {
        assert!(
            levels[0].contains(&format!("{chosen} chosen, {applied} applied because of")),
            "{ctx}"
        );
    }

    // What may apply: nothing personal without the permit, or in a quiet period.
    let allowed = state == "granted" && !quiet;
    if !allowed {
        assert_eq!(applied, "off", "{ctx}");
    }
    if quiet {
        assert!(
            filters.iter().any(|f| f.starts_with("quiet period")),
            "{ctx}"
        );
        if chosen != "off" {
            assert!(levels[0].ends_with("a quiet period"), "{ctx}");
        }
    }
    let order = ["off", "basic", "full"];
    let rank = |l: &str| order.iter().position(|o| *o == l).unwrap();
    assert!(rank(applied) <= rank(chosen), "{ctx}");

    let items = a["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{ctx}");
    if applied == "off" {
        // A non-personal answer names no purpose, no personal model and no calibration.
        assert!(
            a["model_version"]
                .as_str()
                .unwrap()
                .starts_with("popularity"),
            "{ctx}"
        );
        assert_eq!(a["confidence_calibrated"], false, "{ctx}");
        for it in items {
            assert_eq!(it["purposes"], json!([]), "{ctx}");
            assert_eq!(it["data_categories"], json!([]), "{ctx}");
        }
    }
    for it in items {
        let used: Vec<&str> = it["data_categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        // Purposes are named exactly where personal data was used.
        if used.is_empty() {
            assert_eq!(it["purposes"], json!([]), "{ctx}");
        } else {
            assert_eq!(it["purposes"], json!(["personalization"]), "{ctx}");
        }
        if applied != "full" {
            assert!(
                !used.iter().any(|c| *c == "browsing" || *c == "purchase"),
                "behaviour used below full: {ctx}"
            );
        }
    }
}

both_stores!(
    an_aggregate_only_purpose_never_personalizes_an_answer,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.load_demo(150, 300).await;
        node.app.train("test", &|_| {}).await.unwrap();
        decide(&node, "agg-1", "personalization", "granted").await;
        let (s, v) = node
            .send(
                Method::PUT,
                "/v1/subjects/agg-1/preferences",
                Some(&node.consent),
                Some(json!({"level": "full", "source": "api"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (_, before) = node
            .get(
                "/v1/recommendations/agg-1?surface=home&k=5",
                &node.recommend,
            )
            .await;
        assert_ne!(before["level_applied"], "off", "{before}");
        // The operator marks the purpose aggregate-only: answers stop being personal at once.
        revise_personalization(&node, |p| {
            p["person_level"] = json!(false);
        })
        .await;
        let (_, after) = node
            .get(
                "/v1/recommendations/agg-1?surface=home&k=5",
                &node.recommend,
            )
            .await;
        assert_eq!(after["level_applied"], "off", "{after}");
        let filters = after["filters"].to_string();
        assert!(filters.contains("may only feed totals"), "{filters}");
        assert!(filters.contains("an aggregate-only purpose"), "{filters}");
        node.stop().await;
    }
);
