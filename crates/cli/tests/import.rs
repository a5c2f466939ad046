//! `candor import events` as an operator runs it: the real binary on a fresh SQLite data dir.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

mod common;

use common::{Dir, candor, text};

fn temp(name: &str) -> Dir {
    common::temp("import", name)
}

/// The `--json` summary printed on stdout.
fn summary(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Orders are kept under a contract purpose; views only with consent, which nobody here gave.
fn setup_files(dir: &Path) -> (String, String) {
    let purposes = dir.join("purposes.json");
    std::fs::write(
        &purposes,
        json!([
            {"id": "order_fulfilment", "title": "Orders", "description": "We keep orders to ship them.", "legal_basis": "contract", "categories": ["purchase", "location"]},
            {"id": "personalization", "title": "Recommendations", "description": "We suggest products from what you view.", "legal_basis": "consent", "categories": ["browsing", "purchase"]}
        ])
        .to_string(),
    )
    .unwrap();
    let inventory = dir.join("inventory.json");
    std::fs::write(
        &inventory,
        json!({
            "undeclared_events": "reject",
            "events": {
                "track:Order Completed": {"category": "purchase", "purposes": ["order_fulfilment"], "properties": {
                    "sku": {"category": "purchase", "purposes": ["order_fulfilment"]},
                    "quantity": {"category": "purchase", "purposes": ["order_fulfilment"]},
                    "price": {"category": "purchase", "purposes": ["order_fulfilment"]},
                    "country": {"category": "location", "purposes": ["order_fulfilment"]}}},
                "track:Product Viewed": {"category": "browsing", "purposes": ["personalization"], "properties": {
                    "sku": {"category": "browsing", "purposes": ["personalization"]}}}
            }
        })
        .to_string(),
    )
    .unwrap();
    (
        purposes.to_str().unwrap().to_owned(),
        inventory.to_str().unwrap().to_owned(),
    )
}

/// 200 rows: every 10th a cancellation (`C` invoice), every 7th without a customer, every 13th
/// a `Product Viewed` (consent only), every 50th with a broken date, the rest orders.
fn generated_csv(path: &Path) -> Expected {
    let mut s = String::from("invoice,event,customer,sku,qty,price,country,date,note\n");
    let mut e = Expected::default();
    for i in 0..200u32 {
        let invoice = if i % 10 == 0 {
            format!("C{i}")
        } else {
            format!("{}", 1000 + i)
        };
        let customer = if i % 7 == 0 {
            String::new()
        } else {
            format!("cust-{}", i % 23)
        };
        let event = if i % 13 == 0 {
            "Product Viewed"
        } else {
            "Order Completed"
        };
        let date = if i % 50 == 1 {
            "not a date".to_owned()
        } else {
            format!("2011-03-{:02} 10:{:02}:00", 1 + i % 28, i % 60)
        };
        s.push_str(&format!(
            "{invoice},{event},{customer},SKU{},{},{}.5,\"United Kingdom\",{date},\"free, text\"\n",
            i % 17,
            1 + i % 5,
            i % 9
        ));
        e.rows += 1;
        if i % 10 == 0 || i % 7 == 0 {
            e.filtered += 1;
        } else if i % 50 == 1 {
            e.bad_time.push(u64::from(i) + 2);
        } else if i % 13 == 0 {
            e.without_consent += 1;
        } else {
            e.stored += 1;
        }
    }
    std::fs::write(path, s).unwrap();
    e
}

#[derive(Default, Debug)]
struct Expected {
    rows: u64,
    filtered: u64,
    stored: u64,
    without_consent: u64,
    bad_time: Vec<u64>,
}

const MAPPING: &[&str] = &[
    "--event-column",
    "event",
    "--user-id-column",
    "customer",
    "--timestamp-column",
    "date",
    "--timestamp-format",
    "[year]-[month]-[day] [hour]:[minute]:[second]",
    "--property",
    "sku=sku",
    "--property",
    "quantity=qty",
    "--property",
    "price=price",
    "--property",
    "country=country",
    "--where-not",
    "invoice^C",
    "--where",
    "customer!=",
    "--batch-size",
    "40",
    "--json",
];

fn import(data: &Path, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "events", file.to_str().unwrap()];
    args.extend_from_slice(MAPPING);
    args.extend_from_slice(extra);
    candor(data, &args)
}

fn totals(v: &Value) -> (u64, u64, u64, u64, u64, u64) {
    let t = &v["totals"];
    let g = |k: &str| t[k].as_u64().unwrap();
    (
        g("rows_read"),
        g("filtered_out"),
        g("stored"),
        g("without_consent"),
        g("duplicates"),
        g("rejected"),
    )
}

#[test]
fn csv_import_counts_consent_duplicates_and_resume() {
    let dir = temp("csv");
    let data = dir.path().join("data");
    let (purposes, inventory) = setup_files(dir.path());
    let file = dir.path().join("orders.csv");
    let e = generated_csv(&file);
    let setup = ["--purposes", &purposes, "--inventory", &inventory];

    let v = summary(&import(&data, &file, &setup));
    assert_eq!(v["status"], "finished");
    assert_eq!(
        totals(&v),
        (
            e.rows,
            e.filtered,
            e.stored,
            e.without_consent,
            0,
            e.bad_time.len() as u64
        ),
        "{v}"
    );
    let bad = &v["totals"]["rejected_by_reason"]["invalid_timestamp"];
    assert_eq!(bad["count"], e.bad_time.len() as u64, "{v}");
    assert_eq!(bad["first_lines"], json!(e.bad_time), "{v}");
    assert!(
        bad["example"].as_str().unwrap().contains("not a date"),
        "{v}"
    );

    // Importing again stores nothing twice.
    let v = summary(&import(&data, &file, &[]));
    assert_eq!(
        totals(&v),
        (
            e.rows,
            e.filtered,
            0,
            0,
            e.stored + e.without_consent,
            e.bad_time.len() as u64
        ),
        "{v}"
    );

    // Interrupted after 70 rows, then resumed: the same totals as one run, on a fresh store.
    let data2 = dir.path().join("data2");
    let v = summary(&import(
        &data2,
        &file,
        &[&setup[..], &["--limit", "70"]].concat(),
    ));
    assert_eq!(v["status"], "stopped at --limit");
    assert_eq!(v["totals"]["rows_read"], 70);
    let o = import(&data2, &file, &[]);
    assert!(
        !o.status.success() && text(&o).contains("--resume"),
        "an unfinished checkpoint must not be silently ignored: {}",
        text(&o)
    );
    let v = summary(&import(&data2, &file, &["--resume", "--limit", "55"]));
    assert_eq!(v["totals"]["rows_read"], 125);
    let v = summary(&import(&data2, &file, &["--resume"]));
    assert_eq!(v["status"], "finished");
    assert_eq!(
        totals(&v),
        (
            e.rows,
            e.filtered,
            e.stored,
            e.without_consent,
            0,
            e.bad_time.len() as u64
        ),
        "{v}"
    );
    let o = import(&data2, &file, &["--resume"]);
    assert!(!o.status.success() && text(&o).contains("--restart"));

    // Nothing identifying reaches the database file: customers are pseudonymized.
    let mut bytes = std::fs::read(data.join("candor.db")).unwrap();
    bytes.extend(std::fs::read(data.join("candor.db-wal")).unwrap_or_default());
    assert!(
        !bytes.windows(7).any(|w| w == b"cust-12"),
        "external ids must not be stored"
    );
}

#[test]
fn bad_input_fails_clearly_or_is_counted() {
    let dir = temp("bad");
    let data = dir.path().join("data");
    let (purposes, inventory) = setup_files(dir.path());
    let file = dir.path().join("orders.csv");
    generated_csv(&file);

    let o = candor(
        &data,
        &[
            "import",
            "events",
            file.to_str().unwrap(),
            "--event",
            "Order Completed",
            "--user-id-column",
            "customer",
            "--property",
            "sku=StockCode",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("`StockCode`") && t.contains("invoice, event, customer, sku"),
        "names the column and lists the available ones: {t}"
    );

    let missing = dir.path().join("missing.csv");
    let o = candor(
        &data,
        &[
            "import",
            "events",
            missing.to_str().unwrap(),
            "--event",
            "x",
            "--user-id-column",
            "customer",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing.csv"), "{}", text(&o));

    // Invalid UTF-8, a short row and an undeclared event are counted with their lines.
    let odd = dir.path().join("odd.csv");
    let mut body = b"event,customer,sku\nOrder Completed,c1,A\n".to_vec();
    body.extend_from_slice(b"Order Completed,c\xff\xfe,B\n");
    body.extend_from_slice(b"Order Completed,c3\n");
    body.extend_from_slice(b"Refund Issued,c4,D\n");
    body.extend_from_slice(b"Order Completed,c5,E\n");
    std::fs::write(&odd, body).unwrap();
    let o = candor(
        &data,
        &[
            "import",
            "events",
            odd.to_str().unwrap(),
            "--event-column",
            "event",
            "--user-id-column",
            "customer",
            "--property",
            "sku=sku",
            "--purposes",
            &purposes,
            "--inventory",
            &inventory,
            "--json",
        ],
    );
    let v = summary(&o);
    let r = &v["totals"]["rejected_by_reason"];
    assert_eq!(v["totals"]["stored"], 2, "{v}");
    assert_eq!(r["invalid_utf8"]["first_lines"], json!([3]), "{v}");
    assert_eq!(r["wrong_field_count"]["first_lines"], json!([4]), "{v}");
    assert_eq!(r["undeclared_event"]["first_lines"], json!([5]), "{v}");

    // JSON Lines: messages as they are, a `--type` default, broken lines counted.
    let jl = dir.path().join("events.jsonl");
    std::fs::write(
        &jl,
        "{\"event\":\"Order Completed\",\"userId\":\"u1\",\"properties\":{\"sku\":\"A\",\"colour\":\"red\"}}\n\
         not json\n\
         \n\
         {\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u2\",\"timestamp\":\"2011-01-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let v = summary(&candor(
        &data,
        &["import", "events", jl.to_str().unwrap(), "--json"],
    ));
    assert_eq!(v["totals"]["stored"], 2, "{v}");
    assert_eq!(v["totals"]["properties_dropped"], 1, "{v}");
    assert_eq!(
        v["totals"]["rejected_by_reason"]["malformed_message"]["first_lines"],
        json!([2]),
        "{v}"
    );
}

fn shared_data() -> PathBuf {
    std::env::var_os("CANDOR_SHARED_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
        PathBuf::from,
    )
}

#[test]
fn online_retail_sample_imports_as_documented() {
    let src = shared_data().join("online-retail/online_retail.csv");
    let text_all = std::fs::read_to_string(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (set CANDOR_SHARED_DATA)", src.display()));
    let dir = temp("retail");
    let sample = dir.path().join("online_retail_head.csv");
    let head: Vec<&str> = text_all.lines().take(3001).collect();
    std::fs::write(&sample, head.join("\n") + "\n").unwrap();

    // The expected counts, computed independently of the importer.
    let mut expected = 0u64;
    for line in &head[1..] {
        // No quoted commas in this stretch of the file except in descriptions; split from the
        // end, where the fixed-format columns are.
        let f: Vec<&str> = line.rsplitn(5, ',').collect();
        let (country, customer, _price, _date) = (f[0], f[1], f[2], f[3]);
        let start: Vec<&str> = f[4].splitn(3, ',').collect();
        let qty: i64 = f[4].rsplit(',').next().unwrap().parse().unwrap();
        assert!(!country.is_empty());
        if qty > 0 && !start[0].starts_with('C') && !customer.is_empty() {
            expected += 1;
        }
    }

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples");
    let o = candor(
        &dir.path().join("data"),
        &[
            "import",
            "events",
            sample.to_str().unwrap(),
            "--purposes",
            &format!("{root}/online-retail-purposes.json"),
            "--inventory",
            &format!("{root}/online-retail-inventory.json"),
            "--event",
            "Order Completed",
            "--user-id-column",
            "CustomerID",
            "--timestamp-column",
            "InvoiceDate",
            "--timestamp-format",
            "[year]-[month]-[day] [hour]:[minute]:[second]",
            "--property",
            "sku=StockCode:string",
            "--property",
            "quantity=Quantity:number",
            "--property",
            "price=UnitPrice:number",
            "--property",
            "country=Country",
            "--where",
            "Quantity>0",
            "--where-not",
            "InvoiceNo^C",
            "--where",
            "CustomerID!=",
            "--json",
        ],
    );
    let v = summary(&o);
    let t = &v["totals"];
    assert_eq!(t["rows_read"], 3000, "{v}");
    assert_eq!(t["stored"], expected, "{v}");
    assert_eq!(t["filtered_out"], 3000 - expected, "{v}");
    assert_eq!(t["rejected"], 0, "{v}");
    assert_eq!(t["properties_dropped"], 0, "{v}");
}

#[test]
fn setup_files_are_checked_before_anything_is_applied() {
    let dir = temp("setup");
    let data = dir.path().join("data");
    let (purposes, inventory) = setup_files(dir.path());
    let file = dir.path().join("orders.csv");
    generated_csv(&file);
    // A plan naming a purpose that neither the store nor the purposes file declares.
    let bad_plan = dir.path().join("bad-inventory.json");
    std::fs::write(
        &bad_plan,
        json!({"events": {"track:Order Completed": {"category": "purchase", "purposes": ["billing"]}}})
            .to_string(),
    )
    .unwrap();
    let o = import(
        &data,
        &file,
        &[
            "--purposes",
            &purposes,
            "--inventory",
            bad_plan.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("billing") && !text(&o).contains("declared purpose"),
        "{}",
        text(&o)
    );
    // Nothing was applied: the store's audit log holds no purpose declaration.
    let o = candor(&data, &["audit-log", "verify"]);
    assert!(
        o.status.success() && text(&o).contains("intact: 0 entries"),
        "{}",
        text(&o)
    );
    // The good files apply, and the rows go in.
    let v = summary(&import(
        &data,
        &file,
        &["--purposes", &purposes, "--inventory", &inventory],
    ));
    assert_eq!(v["status"], "finished", "{v}");
}

#[test]
fn a_material_change_asks_for_consent_only_where_consent_is_the_basis() {
    let dir = temp("material");
    let data = dir.path().join("data");
    let (purposes, inventory) = setup_files(dir.path());
    let file = dir.path().join("orders.csv");
    generated_csv(&file);
    let setup = ["--purposes", &purposes, "--inventory", &inventory];
    summary(&import(&data, &file, &setup));
    // Both purposes gain a category: a material change of each.
    let wider = dir.path().join("wider.json");
    std::fs::write(
        &wider,
        json!([
            {"id": "order_fulfilment", "title": "Orders", "description": "We keep orders to ship them.", "legal_basis": "contract", "categories": ["purchase", "location", "contact"]},
            {"id": "personalization", "title": "Recommendations", "description": "We suggest products from what you view.", "legal_basis": "consent", "categories": ["browsing", "purchase", "location"]}
        ])
        .to_string(),
    )
    .unwrap();
    let o = import(
        &data,
        &file,
        &["--purposes", wider.to_str().unwrap(), "--restart"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let said = |id: &str| {
        err.lines()
            .find(|l| l.contains(&format!("`{id}`")))
            .unwrap_or_else(|| panic!("nothing said about {id}: {err}"))
            .to_owned()
    };
    let contract = said("order_fulfilment");
    assert!(
        contract.contains("material change") && !contract.contains("consent must be asked"),
        "{contract}"
    );
    assert!(contract.contains("contract"), "{contract}");
    assert!(
        said("personalization").contains("consent must be asked again"),
        "{err}"
    );
}

#[test]
fn a_forced_number_that_is_not_one_is_rejected_with_its_line_and_field() {
    let dir = temp("number");
    let data = dir.path().join("data");
    let (purposes, inventory) = setup_files(dir.path());
    let file = dir.path().join("orders.csv");
    std::fs::write(
        &file,
        "event,customer,sku,price\n\
         Order Completed,c1,A,2.5\n\
         Order Completed,c2,B,31/02/2026\n\
         Order Completed,c3,C,4\n",
    )
    .unwrap();
    let args = [
        "import",
        "events",
        file.to_str().unwrap(),
        "--event-column",
        "event",
        "--user-id-column",
        "customer",
        "--property",
        "sku=sku:string",
        "--property",
        "price=price:number",
        "--purposes",
        &purposes,
        "--inventory",
        &inventory,
    ];
    let v = summary(&candor(&data, &[&args[..], &["--json"]].concat()));
    assert_eq!(v["totals"]["stored"], 2, "{v}");
    let bad = &v["totals"]["rejected_by_reason"]["invalid_number"];
    assert_eq!(bad["first_lines"], json!([3]), "{v}");
    let example = bad["example"].as_str().unwrap();
    assert!(
        example.contains("price") && example.contains("31/02/2026"),
        "{example}"
    );
    // The text summary names the one line in the singular.
    let o = candor(&dir.path().join("data2"), &args);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("first at line 3: "), "{out}");
    assert!(!out.contains("first at lines 3"), "{out}");
}
