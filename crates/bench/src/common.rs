//! What every benchmark shares: the subcommands, throwaway stores, a loopback server, and the
//! consent benchmark.
//!
//! Benchmarks run on a throwaway store in a temporary directory (or the configured PostgreSQL
//! when `--postgres` is given), never on the operator's data.

use std::time::{Duration, Instant};

use anyhow::Result;
use candor_app::{App, Config};
use candor_domain::{PurposeDraft, PurposeId, Scope};
use clap::Subcommand;
use hdrhistogram::Histogram;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// In-memory consent check (target < 1 µs) and grant/revoke round trips over HTTP.
    Consent {
        /// Subjects with consent history in the cache.
        #[arg(long, default_value_t = 20_000)]
        subjects: usize,
        /// Cached checks to time.
        #[arg(long, default_value_t = 5_000_000)]
        checks: usize,
        /// Grant/revoke round trips over HTTP.
        #[arg(long, default_value_t = 2_000)]
        round_trips: usize,
    },
    /// Sustained ingestion through /v1/batch (target >= 100,000 events/s) with latency and RSS.
    Ingest(crate::ingest::IngestBenchArgs),
    /// Live recommendations on a 100k-item catalog: in-process `App::recommend` latency
    /// (target p99 <= 1 ms) and over HTTP (target >= 10,000 req/s at p99 <= 10 ms).
    Recommend(crate::recommend::RecommendBenchArgs),
    /// Subject rights at scale: export (target < 200 ms for 10k events), erasure (p99 < 100 ms
    /// at 10k events; bulk >= 1,000 subjects/s) and ingestion beside erasures.
    Rights(crate::rights::RightsBenchArgs),
    /// Bulk catalog upsert of 1M items (target >= 50,000 items/s) while serving continues, with
    /// serving p99 during the upsert against its quiet figure (target within 2x).
    Catalog(crate::catalog::CatalogBenchArgs),
    /// A DP histogram over 10M events by 50 segments (target < 1 s) beside pandas, and the
    /// transparency report of a year at 1M subjects (target < 10 s).
    Analytics(crate::analytics::AnalyticsBenchArgs),
    /// The preference center on a large store: `GET /preferences` p99 (target < 50 ms at 1M
    /// subjects).
    Pages(crate::pages::PagesBenchArgs),
    /// Feedback on answers (target >= 20,000/s) and KPI reads (target < 10 ms).
    Feedback(crate::feedback::FeedbackBenchArgs),
    /// Journey evaluation: one run over every subject's position (target >= 50,000
    /// subject-steps/s).
    Journeys(crate::journeys::JourneysBenchArgs),
}

pub async fn run(config: Config, cmd: BenchCommand) -> Result<std::process::ExitCode> {
    match cmd {
        BenchCommand::Consent {
            subjects,
            checks,
            round_trips,
        } => consent(config, subjects, checks, round_trips).await?,
        BenchCommand::Ingest(args) => crate::ingest::run(config, args).await?,
        BenchCommand::Recommend(args) => crate::recommend::run(config, args).await?,
        BenchCommand::Rights(args) => crate::rights::run(config, args).await?,
        BenchCommand::Catalog(args) => crate::catalog::run(config, args).await?,
        BenchCommand::Analytics(args) => crate::analytics::run(config, args).await?,
        BenchCommand::Pages(args) => crate::pages::run(config, args).await?,
        BenchCommand::Feedback(args) => crate::feedback::run(config, args).await?,
        BenchCommand::Journeys(args) => crate::journeys::run(config, args).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs a benchmark `body` on a throwaway store: a temporary data dir, and either the embedded
/// SQLite file in it or, with `postgres` (an admin URL), a fresh PostgreSQL database created
/// first and dropped after. `body` gets the node opened on it, with no webhooks, no configured
/// tracking plan and an ephemeral port; the node is closed and everything cleaned up whatever
/// `body` returns.
pub(crate) async fn on_throwaway_store<T, F, Fut>(
    mut config: Config,
    label: &str,
    postgres: Option<&String>,
    body: F,
) -> Result<T>
where
    F: FnOnce(std::sync::Arc<App>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    config.webhooks.enabled = false;
    config.server.bind = "127.0.0.1:0".into();
    config.inventory = None;
    use anyhow::Context as _;
    let id = std::process::id();
    let dir = candor_store::testing::TempDir::new(&format!("bench-{label}"));
    config.data_dir = dir.path().to_owned();
    let mut pg: Option<(String, String)> = None;
    if let Some(admin) = postgres {
        let name = format!("candor_bench_{label}_{id}");
        candor_store::testing::create_postgres_database(admin, &name)
            .await
            .context("creating a throwaway database through --postgres")?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        config.database_url = format!("{base}/{name}");
        config.privacy.pseudonymization_key = Some(candor_app::config::Secret::new(
            "bench-pseudonymization-key-0123456789abcdef",
        ));
        config.privacy.master_key = Some(candor_app::config::Secret::new(hex::encode([7u8; 32])));
        pg = Some((admin.clone(), name));
    } else {
        config.database_url = String::new();
    }
    let result = match App::open(config).await {
        Ok(app) => {
            let result = body(app.clone()).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), app.close()).await;
            result
        }
        Err(e) => Err(e.into()),
    };
    if let Some((admin, name)) = pg
        && let Err(e) = candor_store::testing::drop_postgres_database(&admin, &name).await
    {
        eprintln!("could not drop the throwaway database {name}: {e:#}");
    }
    drop(dir);
    result
}

/// A node serving the HTTP API on a loopback port for a benchmark, with a key of one scope.
pub(crate) struct LoopbackServer {
    pub addr: std::net::SocketAddr,
    pub secret: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LoopbackServer {
    pub(crate) async fn start(app: &std::sync::Arc<App>, scope: Scope, name: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let secret = app.create_key("bench", name, scope).await?.secret;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(candor_http::serve(app.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Ok(LoopbackServer {
            addr,
            secret,
            stop,
            server,
        })
    }

    /// Stops accepting and gives in-flight requests up to five seconds.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64
}

async fn consent(
    mut config: Config,
    subjects: usize,
    checks: usize,
    round_trips: usize,
) -> Result<()> {
    let dir = candor_store::testing::TempDir::new("bench-consent");
    config.data_dir = dir.path().to_owned();
    config.webhooks.enabled = false;
    let app = App::open(config).await?;
    println!("store: {}", app.store_backend());
    let purpose = app
        .create_purpose(
            "bench",
            &PurposeDraft {
                id: "personalization".into(),
                title: "Recommendations".into(),
                description: "Suggestions from what you browse.".into(),
                legal_basis: "consent".into(),
                categories: vec!["browsing".into()],
                expires_after_days: Some(365),
                ..Default::default()
            },
        )
        .await?;
    let pid = PurposeId::parse("personalization")?;

    // Populate: every subject granted, every third one revoked again.
    let t = Instant::now();
    let mut keys = Vec::with_capacity(subjects);
    for i in 0..subjects {
        let key = app.subject_key(&format!("user-{i}"))?;
        let now = app.now();
        let mut decisions = vec![(pid.clone(), candor_domain::ConsentDecision::Granted, now)];
        if i % 3 == 0 {
            decisions.push((pid.clone(), candor_domain::ConsentDecision::Denied, now + 1));
        }
        app.import_consents("bench", &key, &decisions).await?;
        keys.push(key);
    }
    println!(
        "populated {subjects} subjects in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Warm the cache the way serving does: the first check of a subject loads its history.
    for k in &keys {
        app.consent_status(k, &pid).await?;
    }

    // In-process: the cached check every data path asks.
    let now = app.now();
    let mut allowed = 0usize;
    let t = Instant::now();
    for i in 0..checks {
        let k = &keys[(i.wrapping_mul(2_654_435_761)) % keys.len()];
        if app
            .cached_consent_status(k, &purpose, now)
            .is_some_and(|s| s.allows())
        {
            allowed += 1;
        }
    }
    let per = t.elapsed().as_nanos() as f64 / checks as f64;
    // Two of every three subjects kept their grant; a miss or a wrong answer would show here.
    let expected = checks as f64 * 2.0 / 3.0;
    anyhow::ensure!(
        (allowed as f64 - expected).abs() < checks as f64 * 0.01,
        "expected about {expected:.0} allowed checks, got {allowed}"
    );
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..200_000usize {
        let k = &keys[(i.wrapping_mul(40_503)) % keys.len()];
        let s = Instant::now();
        std::hint::black_box(app.cached_consent_status(k, &purpose, now));
        h.record(s.elapsed().as_nanos() as u64)?;
    }
    println!(
        "consent check (in-memory, {subjects} subjects, 1 thread): mean {per:.0} ns, p50 {:.0} ns, p99 {:.0} ns  [target < 1000 ns]  ({allowed} allowed of {checks})",
        pct(&h, 0.5),
        pct(&h, 0.99)
    );

    // Over HTTP: POST grant then POST revoke, sequentially, on loopback.
    let server = LoopbackServer::start(&app, Scope::Consent, "bench").await?;
    let addr = server.addr;
    let client = reqwest::Client::new();
    let mut h = Histogram::<u64>::new(3)?;
    let t = Instant::now();
    for i in 0..round_trips {
        let url = format!("http://{addr}/v1/subjects/rt-{}/consents", i % 100);
        let s = Instant::now();
        for decision in ["granted", "denied"] {
            let r = client
                .post(&url)
                .bearer_auth(&server.secret)
                .json(&serde_json::json!({"source": "api", "consents": [{"purpose": "personalization", "decision": decision}]}))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "round trip failed: {}", r.status());
        }
        h.record(s.elapsed().as_micros() as u64)?;
    }
    let total = t.elapsed();
    println!(
        "grant+revoke round trip over HTTP ({}): {round_trips} pairs in {:.2} s, {:.0} pairs/s, p50 {:.2} ms, p99 {:.2} ms",
        app.store_backend(),
        total.as_secs_f64(),
        round_trips as f64 / total.as_secs_f64(),
        pct(&h, 0.5) / 1000.0,
        pct(&h, 0.99) / 1000.0
    );
    server.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), app.close()).await;
    drop(dir);
    Ok(())
}
