//! The preference center over real HTTP: signed links, every form, and what each change does to
//! the very next API answer. The Chromium run (keyboard, axe, screenshots, downloads) is
//! `preference_center_in_chromium` below, driving `tests/browser/preferences.mjs`.

mod common;

use std::sync::Arc;

use candor_app::{ManualClock, SystemClock};
use candor_domain::PurposeId;
use candor_store::both_stores;
use candor_store::testing::TestDb;
use common::Node;
use reqwest::Method;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// A client that never follows redirects, so each answer can be looked at.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn link(node: &Node, id: &str, ttl: Option<&str>) -> String {
    let body = match ttl {
        Some(t) => json!({"ttl": t}),
        None => json!({}),
    };
    let (s, v) = node
        .post(&format!("/v1/subjects/{id}/link"), &node.rights, body)
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    // The configured bind address is not the test's ephemeral port: keep the path.
    let path = &url[url.find("/preferences/open").unwrap()..];
    node.url(path)
}

/// Opens `url` and returns the session cookie (`name=value`).
async fn open(url: &str) -> String {
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/preferences"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let body = resp.text().await.unwrap();
    assert!(
        body.contains(r#"http-equiv="refresh" content="0;url=/preferences?lang=en""#),
        "{body}"
    );
    set.split(';').next().unwrap().to_owned()
}

async fn page(node: &Node, cookie: &str, query: &str) -> (u16, String) {
    let resp = client()
        .get(node.url(&format!("/preferences{query}")))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `application/x-www-form-urlencoded`, as a browser sends it.
fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let at = html.find(marker).expect("a csrf field") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// Posts a form from the page; returns status, `Location` and body.
async fn submit(
    node: &Node,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let resp = client()
        .post(node.url(path))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, resp.text().await.unwrap())
}

async fn history_len(node: &Node, id: &str) -> usize {
    let key = node.app.subject_key(id).unwrap();
    node.app.consent_history(&key).await.unwrap().len()
}

both_stores!(refused_links_all_look_the_same, |db: TestDb| async move {
    let clock = Arc::new(ManualClock::new(1_767_225_600_000_000));
    let node = Node::start_with_clock(&db, clock.clone()).await;
    node.declare_purposes().await;
    node.decide("cust-1", "analytics", "granted").await;

    let good = link(&node, "cust-1", Some("1h")).await;
    let cookie = open(&good).await;
    let (s, html) = page(&node, &cookie, "").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("<legend>Site analytics</legend>"));

    // A forged signature, a made-up subject, garbage and no token at all: one answer, the same
    // bytes, with no hint whether anyone is behind the link.
    let token = good.split("token=").nth(1).unwrap().to_owned();
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let stranger = token.replacen(token.split('.').nth(1).unwrap(), &"0".repeat(64), 1);
    let mut answers = Vec::new();
    for t in [forged.as_str(), stranger.as_str(), "garbage", ""] {
        let resp = client()
            .get(node.url(&format!("/preferences/open?token={t}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().get(SET_COOKIE).is_none());
        answers.push(resp.text().await.unwrap());
    }
    assert!(answers[0].contains("This link is no longer valid"));
    assert!(answers[0].contains("Ask us for a new one"));
    assert!(answers.iter().all(|a| a == &answers[0]));

    // A forged cookie gets the same page; so does the real one once the link expired.
    let (s, html) = page(&node, &format!("candor_pc={forged}"), "").await;
    assert_eq!((s, html == answers[0]), (401, true));
    clock.advance(3_600_000_000);
    let (s, html) = page(&node, &cookie, "").await;
    assert_eq!((s, html == answers[0]), (401, true), "expired");
    let resp = client().get(&good).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Links live at most 90 days; a bad ttl names the field.
    let (s, v) = node
        .post(
            "/v1/subjects/cust-1/link",
            &node.rights,
            json!({"ttl": "91d"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("ttl"),
        "{v}"
    );
    node.stop().await;
});

both_stores!(
    page_forms_change_the_next_api_answer,
    |db: TestDb| async move {
        let node = Node::start_with_clock(&db, Arc::new(SystemClock)).await;
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
        let p = PurposeId::parse("personalization").unwrap();
        let mut cust = None;
        for i in 1..=300 {
            let id = format!("cust-{i:04}");
            let key = node.app.subject_key(&id).unwrap();
            if node.app.consent_status(&key, &p).await.unwrap().allows()
                && node.app.permitted_item_events(&key, 5).await.unwrap().len() >= 3
            {
                cust = Some(id);
                break;
            }
        }
        let cust = cust.expect("a consenting customer");
        let rec = format!("/v1/recommendations/{cust}?surface=home");
        let cookie = open(&link(&node, &cust, None).await).await;

        // Level full through the page; the API answers personally at once.
        let (_, html) = page(&node, &cookie, "").await;
        let csrf = csrf_of(&html);
        let (s, loc, _) = submit(
            &node,
            &cookie,
            "/preferences/level",
            &[("csrf_token", &csrf), ("level", "full"), ("lang", "en")],
        )
        .await;
        assert_eq!((s, loc.as_str()), (303, "/preferences?lang=en&done=saved"));
        let (_, v) = node.get(&rec, &node.recommend).await;
        assert_eq!(v["level_applied"], "full", "{v}");
        let (_, html) = page(&node, &cookie, "?done=saved").await;
        assert!(html.contains("Saved. Your choice applies from the next request on."));
        assert!(
            html.contains("Full: also what you browse and buy (your choice)"),
            "the preview marks the chosen level"
        );

        // Withdrawing consent on the page: the very next recommendation is non-personal.
        let before = history_len(&node, &cust).await;
        let deny = [
            ("csrf_token", csrf.as_str()),
            ("purpose.personalization", "deny"),
            ("lang", "en"),
        ];
        let (s, loc, _) = submit(&node, &cookie, "/preferences/consents", &deny).await;
        assert_eq!((s, loc.as_str()), (303, "/preferences?lang=en&done=saved"));
        let (_, v) = node.get(&rec, &node.recommend).await;
        assert_eq!(v["level_applied"], "off", "{v}");
        let key = node.app.subject_key(&cust).unwrap();
        let history = node.app.consent_history(&key).await.unwrap();
        assert_eq!(history.len(), before + 1);
        assert_eq!(history.last().unwrap().source.as_str(), "preference_center");
        // The same form again records nothing more.
        let (s, loc, _) = submit(&node, &cookie, "/preferences/consents", &deny).await;
        assert_eq!(
            (s, loc.as_str()),
            (303, "/preferences?lang=en&done=unchanged")
        );
        assert_eq!(
            history_len(&node, &cust).await,
            before + 1,
            "a double submit is idempotent"
        );
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/consents",
            &[("csrf_token", &csrf), ("purpose.personalization", "grant")],
        )
        .await;
        assert_eq!(s, 303);
        let (_, v) = node.get(&rec, &node.recommend).await;
        assert_eq!(v["level_applied"], "full", "{v}");

        // Without a valid CSRF token: 403, nothing changes.
        let n = history_len(&node, &cust).await;
        for bad in ["", "1.AAAA", &csrf[..csrf.len() - 1]] {
            let (s, _, body) = submit(
                &node,
                &cookie,
                "/preferences/consents",
                &[("csrf_token", bad), ("purpose.personalization", "deny")],
            )
            .await;
            assert_eq!(s, 403, "{bad}");
            assert!(body.contains("Nothing was changed."));
        }
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/level",
            &[("purpose.personalization", "deny"), ("level", "off")],
        )
        .await;
        assert_eq!(s, 403);
        assert_eq!(history_len(&node, &cust).await, n);
        let (_, v) = node.get(&rec, &node.recommend).await;
        assert_eq!(v["level_applied"], "full", "{v}");

        // Unknown values: 422, the page again with the error beside its field.
        let (s, _, body) = submit(
            &node,
            &cookie,
            "/preferences/level",
            &[("csrf_token", &csrf), ("level", "maximum")],
        )
        .await;
        assert_eq!(s, 422);
        assert!(body.contains(r#"<p class="field-error" id="error-level"><strong>Error:</strong> This is not one of the choices offered.</p>"#), "{body}");
        let (s, _, body) = submit(
            &node,
            &cookie,
            "/preferences/consents",
            &[("csrf_token", &csrf), ("purpose.nonexistent", "grant")],
        )
        .await;
        assert_eq!(s, 422);
        assert!(body.contains("role=\"alert\""));
        let (s, _, body) = submit(
            &node,
            &cookie,
            "/preferences/quiet",
            &[
                ("csrf_token", &csrf),
                ("occasion", "mothers_day"),
                ("from", "2026-13-01"),
                ("until", "2026-05-10"),
            ],
        )
        .await;
        assert_eq!(s, 422);
        assert!(
            body.contains(
                r#"value="2026-13-01" required aria-invalid="true" aria-describedby="error-from""#
            ),
            "{body}"
        );
        assert!(
            body.contains(r#"value="2026-05-10""#),
            "the other field keeps its text"
        );
        assert_eq!(history_len(&node, &cust).await, n);

        // Oversized forms: 413, nothing read.
        let big = "x".repeat(node.app.config().pages.max_form_bytes + 1);
        let (s, _, body) = submit(
            &node,
            &cookie,
            "/preferences/level",
            &[("csrf_token", &csrf), ("level", "off"), ("pad", &big)],
        )
        .await;
        assert_eq!(s, 413);
        assert!(body.contains("This form is too large"));

        // A quiet period from the page is honoured by the API at once; the page lists it.
        let today: String = candor_domain::format_micros(node.app.now())
            .chars()
            .take(10)
            .collect();
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/quiet",
            &[
                ("csrf_token", &csrf),
                ("occasion", "mothers_day"),
                ("from", &today),
                ("until", &today),
                ("lang", "de"),
            ],
        )
        .await;
        assert_eq!(s, 303);
        let (_, v) = node.get(&rec, &node.recommend).await;
        assert_eq!(
            (v["level_applied"].as_str(), v["fallback"].as_str()),
            (Some("off"), Some("quiet period")),
            "{v}"
        );
        let (_, html) = page(&node, &cookie, "?lang=de").await;
        assert!(
            html.contains(&format!("Muttertag: {today} – {today}")),
            "{html}"
        );
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/quiet/remove",
            &[("csrf_token", &csrf), ("index", "0")],
        )
        .await;
        assert_eq!(s, 303);
        let (s, loc, _) = submit(
            &node,
            &cookie,
            "/preferences/quiet/remove",
            &[("csrf_token", &csrf), ("index", "0")],
        )
        .await;
        assert_eq!(
            (s, loc.as_str()),
            (303, "/preferences?lang=en&done=unchanged")
        );

        // Interests and sensitive opt-ins: what the form ticks replaces both lists; an unknown or
        // misfiled category is a 422 and changes nothing.
        let (_, html) = page(&node, &cookie, "").await;
        assert!(
            html.contains(r#"name="sensitive" value="pharmacy""#),
            "the sensitive category is offered apart"
        );
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/interests",
            &[
                ("csrf_token", &csrf),
                ("interest", "garden"),
                ("sensitive", "pharmacy"),
            ],
        )
        .await;
        assert_eq!(s, 303);
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(
            (
                prefs["declared_interests"].clone(),
                prefs["sensitive_opt_ins"].clone()
            ),
            (json!(["garden"]), json!(["pharmacy"])),
            "{prefs}"
        );
        for bad in [("interest", "pharmacy"), ("interest", "no_such_category")] {
            let (s, _, body) = submit(
                &node,
                &cookie,
                "/preferences/interests",
                &[("csrf_token", &csrf), bad],
            )
            .await;
            assert_eq!(s, 422, "{bad:?}");
            assert!(body.contains(r#"id="error-interests""#));
        }
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(prefs["sensitive_opt_ins"], json!(["pharmacy"]));

        // "Too personal" lowers the level one step.
        let (s, _, _) = submit(
            &node,
            &cookie,
            "/preferences/too-personal",
            &[("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(s, 303);
        let (_, prefs) = node
            .get(&format!("/v1/subjects/{cust}/preferences"), &node.recommend)
            .await;
        assert_eq!(prefs["level"], "basic", "{prefs}");

        // Export: a parseable document about this subject, and an access request verified by the
        // link.
        let resp = client()
            .get(node.url("/preferences/export?format=json"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment")
        );
        let doc: Value = resp.json().await.unwrap();
        assert!(
            doc["consents"].as_array().is_some_and(|c| !c.is_empty()),
            "{doc}"
        );
        let resp = client()
            .get(node.url("/preferences/export?format=csv"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/zip");
        assert_eq!(&resp.bytes().await.unwrap()[..2], b"PK");
        let (_, reqs) = node.get("/v1/admin/requests", &node.rights).await;
        let reqs = reqs.as_array().cloned().unwrap_or_default();
        assert!(
            reqs.iter().any(|r| r["kind"] == "access"
                && r["verification_method"] == "signed preference-center link"
                && r["channel"] == "web"),
            "{reqs:?}"
        );

        // Erase, with its confirmation step: the subject is gone from the API, the session ends.
        let (s, confirm) = page(&node, &cookie, "/erase").await;
        assert_eq!(s, 200);
        let csrf = csrf_of(&confirm);
        let resp = client()
            .post(node.url("/preferences/erase"))
            .header(COOKIE, &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf_token", csrf.as_str()), ("suppress", "yes")]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()[SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("Your data has been erased.")
        );
        let (_, v) = node.get(&rec, &node.recommend).await;
        let items = v["items"].as_array().unwrap();
        assert!(
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| i["data_categories"].as_array().unwrap().is_empty()),
            "nothing of the person is used after erasure: {v}"
        );
        let (s, _) = page(&node, &cookie, "").await;
        assert_eq!(
            s, 200,
            "the cookie is dropped by the browser; the link itself stays signed"
        );
        let (s, receipt) = node
            .get(&format!("/v1/subjects/{cust}/erasure"), &node.rights)
            .await;
        assert_eq!(s, 200, "{receipt}");
        // What is left is what the receipt says is kept (consent proof, the requests): no events, no
        // contact values, default preferences.
        let (s, v) = node
            .get(&format!("/v1/subjects/{cust}/export"), &node.rights)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (
                v["events"].as_array().map(Vec::len),
                v["contact"].as_array().map(Vec::len)
            ),
            (Some(0), Some(0)),
            "{v}"
        );
        assert_eq!(v["preferences"]["quiet_periods"], json!([]));
        assert!(
            v["rights_requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "erasure"
                    && r["verification_method"] == "signed preference-center link")
        );
        node.stop().await;
    }
);

/// Runs `tests/browser/preferences.mjs` in Chromium. SQLite only: the HTML is the same from
/// either store, and the tests above cover both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preference_center_in_chromium() {
    let browser =
        common::NodePackage::installed("browser", &["@axe-core/playwright", "playwright-core"]);
    let db = TestDb::new(candor_store::Backend::Sqlite).await;
    let node = Node::start(&db).await;
    node.load_demo(120, 200).await;
    let (s, v) = node
        .send(
            Method::POST,
            "/v1/admin/models/train",
            Some(&node.admin),
            None,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let p = PurposeId::parse("personalization").unwrap();
    let mut cust = None;
    for i in 1..=120 {
        let id = format!("cust-{i:04}");
        let key = node.app.subject_key(&id).unwrap();
        if node.app.consent_status(&key, &p).await.unwrap().allows()
            && node.app.permitted_item_events(&key, 5).await.unwrap().len() >= 3
        {
            cust = Some(id);
            break;
        }
    }
    let cust = cust.expect("a consenting customer");
    let url = link(&node, &cust, None).await;
    let out_dir = common::workspace().join("target/screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shots: Vec<String> = ["en", "de", "fr"]
        .iter()
        .flat_map(|l| {
            [
                format!("preferences-{l}.png"),
                format!("preferences-{l}-mobile.png"),
            ]
        })
        .chain(
            [
                "preferences-error.png",
                "preferences-erase.png",
                "preferences-link-invalid.png",
            ]
            .map(String::from),
        )
        .collect();
    for shot in &shots {
        let _ = std::fs::remove_file(out_dir.join(shot));
    }
    let (ok, log) = browser
        .run(
            "preferences.mjs",
            vec![
                node.base.clone(),
                url,
                out_dir.display().to_string(),
                cust.clone(),
                node.recommend.clone(),
                node.rights.clone(),
            ],
        )
        .await;
    assert!(ok, "browser checks failed:\n{log}");
    println!("{log}");
    for shot in &shots {
        let len = std::fs::metadata(out_dir.join(shot))
            .unwrap_or_else(|e| panic!("{shot}: {e}"))
            .len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
    node.stop().await;
}

/// Runs `tests/browser/banner.mjs`: the consent banner on a shop page (`http://shop.localhost`,
/// fulfilled by the browser driver and allowed by `browser.allowed_origins`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_banner_in_chromium() {
    let browser =
        common::NodePackage::installed("browser", &["@axe-core/playwright", "playwright-core"]);
    let db = TestDb::new(candor_store::Backend::Sqlite).await;
    let node = Node::start_with(&db, Arc::new(SystemClock), |c| {
        c.browser.allowed_origins = vec!["http://shop.localhost".into()];
    })
    .await;
    node.declare_purposes().await;
    let out_dir = common::workspace().join("target/screenshots");
    let shots = ["banner.png", "banner-choose.png", "banner-gpc.png"];
    for shot in shots {
        let _ = std::fs::remove_file(out_dir.join(shot));
    }
    let (ok, log) = browser
        .run(
            "banner.mjs",
            vec![
                node.base.clone(),
                node.site.clone(),
                node.rights.clone(),
                out_dir.display().to_string(),
            ],
        )
        .await;
    assert!(ok, "banner checks failed:\n{log}");
    println!("{log}");
    for shot in shots {
        assert!(
            std::fs::metadata(out_dir.join(shot)).unwrap().len() > 5_000,
            "{shot}"
        );
    }
    node.stop().await;
}

both_stores!(
    banner_writes_need_the_served_notice_and_a_site_key,
    |db: TestDb| async move {
        let node = Node::start(&db).await;
        node.declare_purposes().await;
        let (s, cfg) = node
            .send(Method::GET, "/v1/banner/config?lang=de", None, None)
            .await;
        assert_eq!(s, 200, "{cfg}");
        assert_eq!(
            cfg["first_layer"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["label"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["Alle akzeptieren", "Alle ablehnen", "Auswählen"]
        );
        assert!(
            cfg["first_layer"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["style"] == "equal")
        );
        assert!(
            cfg["purposes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["selected"] == false)
        );
        assert!(
            cfg["purposes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["id"] != "order_fulfilment"),
            "only consent purposes"
        );
        let hash = cfg["notice_hash"].as_str().unwrap().to_owned();
        let body = |h: &str, lang: &str| json!({"anonymous_id": "anon-7", "lang": lang, "notice_hash": h, "consents": [{"purpose": "analytics", "decision": "granted"}]});

        // A proof of a notice never served, or served in another language, is refused; nothing stored.
        for (h, lang) in [("sha256:00@00", "de"), (hash.as_str(), "en")] {
            let (s, v) = node
                .post("/v1/banner/consents", &node.site, body(h, lang))
                .await;
            assert_eq!(s, 422, "{v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("notice_hash"),
                "{v}"
            );
        }
        assert_eq!(node.state("anon-7", "analytics").await, "not_asked");
        // A site key does nothing else: not the subject API, not reading.
        let (s, _) = node
            .post(
                "/v1/subjects/anon-7/consents",
                &node.site,
                json!({"source": "api", "consents": []}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, v) = node
            .post("/v1/banner/consents", &node.site, body(&hash, "de"))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["recorded"][0]["source"], "banner");
        assert_eq!(v["recorded"][0]["proof"]["notice_hash"], hash.as_str());
        assert_eq!(node.state("anon-7", "analytics").await, "granted");
        // A revised purpose changes the version: the old notice is no longer accepted.
        let (s, _) = node.send(Method::PUT, "/v1/admin/purposes/analytics", Some(&node.admin), Some(json!({"id": "analytics", "title": "Site analytics", "description": "We count visits and clicks.", "legal_basis": "consent", "categories": ["browsing", "device"], "change_note": "Now also device data."}))).await;
        assert_eq!(s, 200);
        let (s, _) = node
            .post("/v1/banner/consents", &node.site, body(&hash, "de"))
            .await;
        assert_eq!(s, 422);
        let script = node.http.get(node.url("/consent.js")).send().await.unwrap();
        assert_eq!(
            script.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        node.stop().await;
    }
);
