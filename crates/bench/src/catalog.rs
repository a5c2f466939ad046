//! `candor-bench catalog`: bulk catalog upsert (target >= 50,000 items/s for 1M items) while
//! serving continues, with serving p99 during the upsert against its quiet figure in the same
//! run (target: within 2x).
//!
//! Items go through `App::upsert_items` (the API's and the import's validation, the audited
//! store write) in batches with `Refresh::Soon`, so the node's `catalog-refresh` job reloads
//! serving about once a second while the feed is coming in; recommendations are asked over HTTP
//! by concurrent clients the whole time. Printed: items/s (wall clock, and time inside the use
//! case), serving p50/p99 quiet and during the upsert, and how many items serving had at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use candor_app::personalization::catalog::{MAX_ITEMS_PER_REQUEST, OnError, Refresh};
use candor_app::{App, Config};
use candor_domain::Scope;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct CatalogBenchArgs {
    /// Items upserted while serving.
    #[arg(long, default_value_t = 1_000_000)]
    pub items: usize,
    /// Items in the catalog before (what serving answers from at first).
    #[arg(long, default_value_t = 50_000)]
    pub base_items: usize,
    #[arg(long, default_value_t = 500)]
    pub categories: usize,
    /// Items per `App::upsert_items` call (at most 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Concurrent HTTP clients asking for recommendations.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Seconds of quiet serving measured first.
    #[arg(long, default_value_t = 5)]
    pub quiet_secs: u64,
    /// Run on a throwaway database of this PostgreSQL server (admin URL) instead of SQLite.
    #[arg(long)]
    pub postgres: Option<String>,
}

fn item(n: usize, categories: usize) -> Value {
    let c = n % categories;
    let colour = ["red", "green", "blue"][n % 3];
    json!({
        "id": format!("sku-{n:08}"),
        "title": format!("Product {n}"),
        "category": format!("Department {} > Category {c}", c % 20),
        "price": (n % 10_000) as f64 / 100.0 + 1.0,
        "currency": "EUR",
        "availability": if n.is_multiple_of(17) { "out_of_stock" } else { "in_stock" },
        "brand": format!("Brand {}", n % 300),
        "attributes": {"colour": colour}
    })
}

pub async fn run(mut config: Config, args: CatalogBenchArgs) -> Result<()> {
    ensure!(
        (1..=MAX_ITEMS_PER_REQUEST).contains(&args.batch),
        "--batch must be 1-{MAX_ITEMS_PER_REQUEST}"
    );
    ensure!(
        args.clients >= 1 && args.categories >= 1,
        "--clients and --categories >= 1"
    );
    config.ingest.retention_interval_secs = 0;
    config.recommend.train_interval_secs = 0;
    crate::common::on_throwaway_store(config, "catalog", args.postgres.as_ref(), |app| {
        bench(app, &args)
    })
    .await
}

/// Clients asking for recommendations until `stop`; latencies in µs.
fn serve_load(
    addr: std::net::SocketAddr,
    secret: &str,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Result<Histogram<u64>>>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..clients)
        .map(|_| {
            let (next, stop, secret) = (next.clone(), stop.clone(), secret.to_owned());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()?;
                let mut h = Histogram::<u64>::new(3)?;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let url = format!(
                        "http://{addr}/v1/recommendations/visitor-{}?surface=home&k=10",
                        n % 1000
                    );
                    let s = Instant::now();
                    let resp = http.get(&url).bearer_auth(&secret).send().await?;
                    let status = resp.status();
                    let body = resp.bytes().await?;
                    h.record(s.elapsed().as_micros() as u64)?;
                    ensure!(
                        status.is_success(),
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                Ok(h)
            })
        })
        .collect()
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Result<Histogram<u64>>>>,
) -> Result<Histogram<u64>> {
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await??)?;
    }
    Ok(all)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn bench(app: Arc<App>, args: &CatalogBenchArgs) -> Result<()> {
    println!(
        "store: {}; {} base items, then {} items in batches of {} over {} categories; {} HTTP clients",
        app.store_backend(),
        args.base_items,
        args.items,
        args.batch,
        args.categories,
        args.clients
    );
    let background = app.start_background().await?;
    let started = Instant::now();
    let base: Vec<usize> = (0..args.base_items).collect();
    for chunk in base.chunks(args.batch) {
        let rows: Vec<Value> = chunk.iter().map(|&n| item(n, args.categories)).collect();
        app.upsert_items("bench", &rows, OnError::RejectAll, Refresh::Soon)
            .await?;
    }
    app.refresh_serving_if_stale().await?;
    println!(
        "base catalog: {} items in {:.1} s",
        args.base_items,
        started.elapsed().as_secs_f64()
    );
    let server = crate::common::LoopbackServer::start(&app, Scope::Recommend, "bench").await?;

    // 1. Quiet serving.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = serve_load(server.addr, &server.secret, args.clients, stop.clone());
    tokio::time::sleep(Duration::from_secs(args.quiet_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let quiet = collect(tasks).await?;

    // 2. The same load while the feed comes in.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = serve_load(server.addr, &server.secret, args.clients, stop.clone());
    let started = Instant::now();
    let mut in_use_case = Duration::ZERO;
    let mut upserted = 0usize;
    let ids: Vec<usize> = (args.base_items..args.base_items + args.items).collect();
    for chunk in ids.chunks(args.batch) {
        let rows: Vec<Value> = chunk.iter().map(|&n| item(n, args.categories)).collect();
        let t = Instant::now();
        let r = app
            .upsert_items("bench", &rows, OnError::RejectAll, Refresh::Soon)
            .await?;
        in_use_case += t.elapsed();
        upserted += r.upserted;
    }
    let wall = started.elapsed().as_secs_f64();
    // Serving has the whole feed once the refresh job ran after the last batch.
    let until_served = Instant::now();
    let expected = args.base_items + args.items;
    while app.serving_items() < expected {
        ensure!(
            until_served.elapsed() < Duration::from_secs(120),
            "serving did not pick the feed up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lag = until_served.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = collect(tasks).await?;
    server.stop().await;
    background.shutdown().await;

    println!(
        "catalog upsert: {upserted} items in {wall:.2} s: {:.0} items/s wall clock, {:.0} items/s inside App::upsert_items  [target >= 50000 items/s]; serving had all {expected} items {lag:.2} s after the last batch",
        upserted as f64 / wall,
        upserted as f64 / in_use_case.as_secs_f64()
    );
    let q99 = quiet.value_at_quantile(0.99);
    let d99 = during.value_at_quantile(0.99);
    println!(
        "serving GET /v1/recommendations (k=10) quiet: {} requests, p50 {:.2} ms, p99 {:.2} ms",
        quiet.len(),
        ms(quiet.value_at_quantile(0.5)),
        ms(q99)
    );
    println!(
        "serving during the upsert: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; p99 ratio {:.2}x  [target <= 2x]",
        during.len(),
        ms(during.value_at_quantile(0.5)),
        ms(d99),
        ms(during.max()),
        d99 as f64 / q99.max(1) as f64
    );
    Ok(())
}
