//! A real Candor node on loopback for tests: real store, real HTTP.
#![allow(dead_code)]

use std::sync::Arc;

use candor_app::testing::TempDir;
use candor_app::{App, Clock, Config, SystemClock};
use candor_domain::Scope;
use candor_store::testing::TestDb;
use serde_json::{Value, json};

pub struct Node {
    pub base: String,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    pub admin: String,
    pub recommend: String,
    pub consent: String,
    pub auditor: String,
    pub ingest: String,
    pub rights: String,
    pub analytics: String,
    pub site: String,
    pub reviewer: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Option<candor_app::Background>,
    _dir: TempDir,
}

pub use candor_app::testing::config;

impl Node {
    pub async fn start(db: &TestDb) -> Node {
        Self::start_with_clock(db, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(db: &TestDb, clock: Arc<dyn Clock>) -> Node {
        Self::start_with(db, clock, |_| {}).await
    }

    /// Starts a node whose configuration `tweak` adjusts.
    pub async fn start_with(
        db: &TestDb,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut Config),
    ) -> Node {
        let dir = TempDir::new("node");
        let mut cfg = config(db, dir.path());
        tweak(&mut cfg);
        let app = App::open_with_clock(cfg, clock).await.expect("open app");
        let background = app.start_background().await.expect("background");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(candor_http::serve(
            app.clone(),
            listener,
            std::future::pending(),
        ));
        let key = |scope| {
            let app = app.clone();
            async move {
                app.create_key("test", &format!("{scope:?}"), scope)
                    .await
                    .unwrap()
                    .secret
            }
        };
        Node {
            admin: key(Scope::Admin).await,
            recommend: key(Scope::Recommend).await,
            consent: key(Scope::Consent).await,
            auditor: key(Scope::Auditor).await,
            ingest: key(Scope::Ingest).await,
            rights: key(Scope::Rights).await,
            analytics: key(Scope::Analytics).await,
            site: key(Scope::Site).await,
            reviewer: key(Scope::Reviewer).await,
            base,
            app,
            http: reqwest::Client::new(),
            server,
            background: Some(background),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends Segment messages with the write key as the Basic user name, as Segment libraries do.
    pub async fn ingest(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .basic_auth(&self.ingest, Some(""))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json"))
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(key), Some(body))
            .await
    }

    /// Declares the purposes most tests use.
    pub async fn declare_purposes(&self) {
        for body in [
            json!({"id": "personalization", "title": "Recommendations for you", "description": "We use what you browse and buy to suggest products.", "legal_basis": "consent", "categories": ["browsing", "purchase"], "expires_after_days": 365, "person_level": true}),
            json!({"id": "analytics", "title": "Site analytics", "description": "We count visits to improve the shop.", "legal_basis": "consent", "categories": ["browsing"], "non_essential_tracking": true}),
            json!({"id": "ads_sharing", "title": "Advertising partners", "description": "We share what you browse with ad partners.", "legal_basis": "consent", "categories": ["browsing"], "sale_or_sharing": true, "person_level": true}),
            json!({"id": "order_fulfilment", "title": "Delivering your orders", "description": "We need your address to ship orders.", "legal_basis": "contract", "categories": ["purchase", "contact"]}),
        ] {
            let (status, resp) = self.post("/v1/admin/purposes", &self.admin, body).await;
            assert_eq!(status, 201, "{resp}");
        }
    }

    /// Purposes and a tracking plan for a small shop: product views (personalization,
    /// analytics), orders (contract), page views (analytics), contact traits (encrypted),
    /// a protected gender trait (fairness audits only), and `context.ip` as contact data.
    pub async fn declare_shop_plan(&self, undeclared: &str) {
        for body in [
            json!({"id": "personalization", "title": "Recommendations", "description": "We use what you browse and buy to suggest products.", "legal_basis": "consent", "categories": ["browsing", "purchase", "declared_preference"], "person_level": true}),
            json!({"id": "analytics", "title": "Analytics", "description": "We count visits.", "legal_basis": "consent", "categories": ["browsing"], "non_essential_tracking": true}),
            json!({"id": "order_fulfilment", "title": "Orders", "description": "We need your details to ship orders.", "legal_basis": "contract", "categories": ["purchase", "contact"]}),
            json!({"id": "fairness_audit", "title": "Fairness checks", "description": "We check our decisions treat groups fairly.", "legal_basis": "legal_obligation", "categories": ["demographic"]}),
        ] {
            let (s, v) = self.post("/v1/admin/purposes", &self.admin, body).await;
            assert_eq!(s, 201, "{v}");
        }
        let inventory = json!({
            "undeclared_events": undeclared,
            "events": {
                "track:Product Viewed": {"category": "browsing", "purposes": ["personalization", "analytics"], "properties": {
                    "product_id": {"category": "browsing", "purposes": ["personalization", "analytics"]},
                    "price": {"category": "browsing", "purposes": ["personalization"]}}},
                "track:Order Completed": {"category": "purchase", "purposes": ["order_fulfilment"], "properties": {
                    "order_id": {"category": "purchase", "purposes": ["order_fulfilment"]},
                    "email": {"category": "contact", "purposes": ["order_fulfilment"]}}},
                "page": {"category": "browsing", "purposes": ["analytics"], "properties": {"url": {"category": "browsing", "purposes": ["analytics"]}}}
            },
            "traits": {
                "email": {"category": "contact", "purposes": ["order_fulfilment"]},
                "favorite_category": {"category": "declared_preference", "purposes": ["personalization"]},
                "gender": {"category": "demographic", "purposes": ["fairness_audit"], "protected": true}
            },
            "context": {"ip": {"category": "contact", "purposes": ["order_fulfilment"]}}
        });
        let (s, v) = self
            .send(
                reqwest::Method::PUT,
                "/v1/admin/inventory",
                Some(&self.admin),
                Some(inventory),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn decide(&self, subject: &str, purpose: &str, decision: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/subjects/{subject}/consents"),
            &self.consent,
            json!({"source": "api", "consents": [{"purpose": purpose, "decision": decision}]}),
        )
        .await
    }

    pub async fn state(&self, subject: &str, purpose: &str) -> String {
        let (status, v) = self
            .get(&format!("/v1/subjects/{subject}/consents"), &self.recommend)
            .await;
        assert_eq!(status, 200, "{v}");
        v["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"]["id"] == purpose)
            .map(|p| p["consent"]["state"].as_str().unwrap().to_owned())
            .expect("purpose listed")
    }

    pub async fn stop(mut self) {
        self.server.abort();
        if let Some(b) = self.background.take() {
            b.shutdown().await;
        }
        self.app.close().await;
    }
}

/// A Node.js package of the repository's `tests/` folder (a real client library or a browser
/// driver), installed on first use.
pub struct NodePackage {
    pub dir: std::path::PathBuf,
}

impl NodePackage {
    /// `tests/<name>`, after `npm ci` there unless `marker` (a path under `node_modules`)
    /// shows it is installed already.
    pub fn installed(name: &str, markers: &[&str]) -> NodePackage {
        // The two store variants of a test run at once; two `npm ci` in one folder would race.
        static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = workspace().join("tests").join(name);
        if !markers
            .iter()
            .all(|m| dir.join("node_modules").join(m).exists())
        {
            let out = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .expect("npm is required for the Node.js client tests");
            assert!(
                out.status.success(),
                "npm ci in tests/{name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        NodePackage { dir }
    }

    /// Runs `node SCRIPT ARGS...` in the package off the async runtime: (succeeded, output).
    pub async fn run(&self, script: &str, args: Vec<String>) -> (bool, String) {
        let (dir, script) = (self.dir.clone(), script.to_owned());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg(script)
                .args(args)
                .current_dir(dir)
                .output()
                .expect("node is required")
        })
        .await
        .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), log)
    }
}

/// The workspace root.
pub fn workspace() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Node {
    /// Loads the demo shop (`customers` customers, `products` products, dated up to the node's
    /// now) through the product's use cases, as `candor demo` does.
    pub async fn load_demo(&self, customers: usize, products: usize) {
        let cfg = candor_app::demo::DemoConfig {
            customers,
            products,
            now_unix: self.app.now() / 1_000_000,
            ..Default::default()
        };
        candor_app::demo::load(&self.app, &cfg, |_, _| {})
            .await
            .unwrap();
    }
}

/// A local receiver that keeps every body posted to `/hook`.
pub async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let received: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let received = received.clone();
                async move {
                    received
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// A demo customer who currently allows personalization and has behavior on file.
pub async fn consenting_customer(node: &Node) -> String {
    let p = candor_domain::PurposeId::parse("personalization").unwrap();
    for i in 1..=300 {
        let id = format!("cust-{i:04}");
        let key = node.app.subject_key(&id).unwrap();
        if node.app.consent_status(&key, &p).await.unwrap().allows()
            && node.app.permitted_item_events(&key, 5).await.unwrap().len() >= 3
        {
            return id;
        }
    }
    panic!("no consenting customer in the demo shop");
}
