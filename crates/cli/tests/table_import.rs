//! `candor import catalog` and `candor import consents` as an operator runs them: the real
//! binary on a fresh SQLite data dir, then the stored result read back through the app.

use std::path::Path;
use std::process::Output;

use candor_app::{App, Config};
use serde_json::{Value, json};

mod common;

use common::{Dir, candor, text};

fn summary(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

async fn open(data: &Path) -> std::sync::Arc<App> {
    App::open(Config {
        data_dir: data.to_owned(),
        ..Config::default()
    })
    .await
    .unwrap()
}

const SHOPIFY_HEADER: &str = "Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Fulfillment Service,Variant Price,Variant Compare At Price,Image Src,Image Position,Status";

#[test]
fn shopify_export_merchant_center_feed_and_csv_with_bad_rows() {
    let dir = Dir::new("table-import-catalog");
    let data = dir.path().join("data");
    // Two products: a shirt with two variants (the second row leaves product fields empty, as
    // Shopify writes them), an extra image row, and a sold-out mug.
    let shopify = dir.path().join("products_export.csv");
    std::fs::write(
        &shopify,
        format!(
            "{SHOPIFY_HEADER}\n\
             linen-shirt,Linen Shirt,<p>Cool</p>,Acme,Apparel & Accessories > Clothing > Shirts,Shirts,\"summer, linen\",true,Size,S,SHIRT-S,200,shopify,5,deny,manual,39.00,,https://cdn.example/shirt.jpg,1,active\n\
             linen-shirt,,,,,,,,,M,SHIRT-M,200,shopify,0,deny,manual,39.00,,,,\n\
             linen-shirt,,,,,,,,,,,,,,,,,,https://cdn.example/shirt-2.jpg,2,\n\
             mug,Mug,,Acme,,Kitchen,,true,Title,Default Title,MUG-1,300,shopify,0,deny,manual,12.50,,,,active\n"
        ),
    )
    .unwrap();
    let v = summary(&candor(
        &data,
        &[
            "import",
            "catalog",
            shopify.to_str().unwrap(),
            "--format",
            "shopify",
            "--json",
        ],
    ));
    let t = &v["totals"];
    assert_eq!(
        (
            t["rows_read"].as_u64(),
            t["skipped"].as_u64(),
            t["written"].as_u64(),
            t["rejected"].as_u64()
        ),
        (Some(4), Some(1), Some(3), Some(0)),
        "{v}"
    );

    // A Merchant Center feed: tab-separated, price with its currency.
    let gmc = dir.path().join("feed.tsv");
    std::fs::write(
        &gmc,
        "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tbrand\tgoogle_product_category\tproduct_type\tgtin\tcondition\n\
         G-1\tGarden hose\tA hose\thttps://shop.example/g1\thttps://cdn.example/g1.jpg\tin stock\t15.00 USD\tHoseCo\t2962\tHome & Garden > Watering\t0001234567890\tnew\n\
         G-2\tSprinkler\tSprays\thttps://shop.example/g2\thttps://cdn.example/g2.jpg\tout of stock\t9.99 GBP\tHoseCo\t2962\tHome & Garden > Watering\t\tnew\n\
         G-3\tBad price\tx\thttps://shop.example/g3\t\tin stock\tfree\tHoseCo\t2962\tHome & Garden\t\tnew\n",
    )
    .unwrap();
    let v = summary(&candor(
        &data,
        &["import", "catalog", gmc.to_str().unwrap(), "--json"],
    ));
    let t = &v["totals"];
    assert_eq!(
        (t["written"].as_u64(), t["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(
        t["rejected_by_field"]["price"]["first_lines"],
        json!([4]),
        "{v}"
    );

    // A plain CSV with mapped columns and one row per kind of mistake.
    let csv = dir.path().join("items.csv");
    std::fs::write(
        &csv,
        "sku,name,cat,amount,cur,colour\n\
         C-1,Pan,Home > Kitchen,20,EUR,black\n\
         ,No id,Home,1,EUR,\n\
         C-3,Bad currency,Home,1,ZZZ,\n\
         C-4,Too deep,A > B > C > D > E > F > G,1,EUR,\n",
    )
    .unwrap();
    let v = summary(&candor(
        &data,
        &[
            "import",
            "catalog",
            csv.to_str().unwrap(),
            "--map",
            "id=sku",
            "--map",
            "title=name",
            "--map",
            "category=cat",
            "--map",
            "price=amount",
            "--map",
            "currency=cur",
            "--attribute",
            "colour=colour",
            "--json",
        ],
    ));
    let t = &v["totals"];
    assert_eq!(
        (t["written"].as_u64(), t["rejected"].as_u64()),
        (Some(1), Some(3)),
        "{v}"
    );
    for (field, line) in [("id", 3), ("currency", 4), ("category", 5)] {
        assert_eq!(
            t["rejected_by_field"][field]["first_lines"],
            json!([line]),
            "{field}: {v}"
        );
    }
    // A mapping that names a missing column is refused before anything is read.
    let o = candor(
        &data,
        &[
            "import",
            "catalog",
            csv.to_str().unwrap(),
            "--map",
            "id=nope",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("unknown column `nope`"),
        "{}",
        text(&o)
    );

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let app = open(&data).await;
        let s = app.catalog_item("SHIRT-S").await.unwrap();
        assert_eq!(s.item.name, "Linen Shirt");
        assert_eq!(
            s.category_path,
            ["Apparel & Accessories", "Clothing", "Shirts"]
        );
        assert_eq!(
            (s.item.price_cents, s.item.brand.as_deref()),
            (3900, Some("Acme"))
        );
        assert!(s.item.available);
        let m = app.catalog_item("SHIRT-M").await.unwrap();
        assert_eq!(
            m.item.name, "Linen Shirt",
            "variant rows inherit the product's title"
        );
        assert!(!m.item.available, "no stock, no overselling");
        assert_eq!(
            m.item.image_url.as_deref(),
            Some("https://cdn.example/shirt.jpg")
        );
        let mug = app.catalog_item("MUG-1").await.unwrap();
        assert_eq!(mug.category_path, ["Kitchen"]);
        let g1 = app.catalog_item("G-1").await.unwrap();
        assert_eq!(
            (g1.item.price_cents, g1.item.currency.as_str()),
            (1500, "USD")
        );
        assert_eq!(g1.category_path, ["Home & Garden", "Watering"]);
        let attrs: Value = serde_json::from_str(&g1.item.attributes).unwrap();
        assert_eq!(attrs["gtin"], "0001234567890");
        assert!(!app.catalog_item("G-2").await.unwrap().item.available);
        let c1 = app.catalog_item("C-1").await.unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&c1.item.attributes).unwrap(),
            json!({"colour": "black"})
        );
        assert!(app.catalog_item("C-3").await.is_err());
        app.close().await;
    });
}

#[test]
fn consent_export_with_proof_unknown_purposes_and_future_times() {
    let dir = Dir::new("table-import-consents");
    let data = dir.path().join("data");
    let purposes = dir.path().join("purposes.json");
    std::fs::write(
        &purposes,
        json!([
            {"id": "personalization", "title": "Recommendations", "description": "We suggest products.", "legal_basis": "consent", "categories": ["browsing"]},
            {"id": "marketing_email", "title": "Newsletter", "description": "We email offers.", "legal_basis": "consent", "categories": ["contact"]},
            {"id": "order_fulfilment", "title": "Orders", "description": "We ship orders.", "legal_basis": "contract", "categories": ["purchase"]}
        ])
        .to_string(),
    )
    .unwrap();
    // A typical CMP export: one row per person, one column per CMP purpose, with proof.
    let export = dir.path().join("cmp-export.csv");
    std::fs::write(
        &export,
        "user_id,consent_date,ip_address,user_agent,personalisation,email_marketing,analytics\n\
         u-1,2024-03-01T10:00:00Z,203.0.113.7,Mozilla/5.0,true,false,\n\
         u-2,2024-03-02T11:00:00Z,,,false,true,\n\
         u-3,2999-01-01T00:00:00Z,,,true,,\n\
         u-4,yesterday,,,true,,\n\
         u-5,2024-03-05T12:00:00Z,,,maybe,,\n",
    )
    .unwrap();
    let o = candor(
        &data,
        &[
            "import",
            "consents",
            export.to_str().unwrap(),
            "--purposes",
            purposes.to_str().unwrap(),
            "--timestamp-column",
            "consent_date",
            "--ip-column",
            "ip_address",
            "--user-agent-column",
            "user_agent",
            "--purpose-decision",
            "personalization=personalisation",
            "--purpose-decision",
            "marketing_email=email_marketing",
            "--json",
        ],
    );
    let v = summary(&o);
    let t = &v["totals"];
    assert_eq!(
        (
            t["rows_read"].as_u64(),
            t["written"].as_u64(),
            t["subjects"].as_u64(),
            t["rejected"].as_u64()
        ),
        (Some(5), Some(4), Some(2), Some(3)),
        "{v}"
    );
    assert_eq!(t["rejected_by_field"]["timestamp"]["count"], 2, "{v}");
    assert_eq!(
        t["rejected_by_field"]["timestamp"]["first_lines"],
        json!([4, 5]),
        "{v}"
    );
    assert_eq!(
        t["rejected_by_field"]["decision"]["first_lines"],
        json!([6]),
        "{v}"
    );

    // Long format (one decision per row) with a purpose name the CMP uses and one we never
    // declared, as JSON Lines.
    let lines = dir.path().join("decisions.jsonl");
    std::fs::write(
        &lines,
        [
            json!({"user_id": "u-9", "purpose": "recs", "decision": "granted", "timestamp": "2024-05-01T00:00:00Z", "token": "doi-123"}),
            json!({"user_id": "u-9", "purpose": "profiling_for_ads", "decision": "granted", "timestamp": "2024-05-01T00:00:00Z"}),
            json!({"user_id": "u-9", "purpose": "order_fulfilment", "decision": "denied", "timestamp": "2024-05-01T00:00:00Z"}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n"),
    )
    .unwrap();
    let v = summary(&candor(
        &data,
        &[
            "import",
            "consents",
            lines.to_str().unwrap(),
            "--purpose-map",
            "recs=personalization",
            "--token-column",
            "token",
            "--json",
        ],
    ));
    let t = &v["totals"];
    assert_eq!(
        (t["written"].as_u64(), t["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{v}"
    );
    assert_eq!(
        t["rejected_by_field"]["purpose"]["first_lines"],
        json!([2, 3]),
        "{v}"
    );

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let app = open(&data).await;
        let key = |id: &str| app.subject_key(id).unwrap();
        let records = app.consent_history(&key("u-1")).await.unwrap();
        assert_eq!(records.len(), 2);
        for r in &records {
            assert_eq!(r.source.as_str(), "import");
            assert_eq!(candor_domain::format_micros(r.at), "2024-03-01T10:00:00Z");
            assert_eq!(r.proof.user_agent.as_deref(), Some("Mozilla/5.0"));
            let ip = r.proof.ip_hash.as_deref().unwrap();
            assert!(
                !ip.contains("203.0.113.7"),
                "the address is kept only as a keyed hash"
            );
        }
        let by_purpose = |p: &str| {
            records
                .iter()
                .find(|r| r.purpose.as_str() == p)
                .unwrap()
                .decision
                .as_str()
        };
        assert_eq!(
            (by_purpose("personalization"), by_purpose("marketing_email")),
            ("granted", "denied")
        );
        let u9 = app.consent_history(&key("u-9")).await.unwrap();
        assert_eq!(u9.len(), 1);
        assert_eq!(u9[0].proof.double_opt_in_token.as_deref(), Some("doi-123"));
        assert!(
            app.consent_history(&key("u-3")).await.unwrap().is_empty(),
            "future rows store nothing"
        );
        // Each person of each batch has an audit entry.
        let audit = app.recent_audit_entries(100).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.action == "consent.import")
                .count(),
            3
        );
        app.close().await;
    });
}
