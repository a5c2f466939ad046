//! `candor-bench pages`: the preference center's render time on a large store.
//!
//! A throwaway node gets `--subjects` consenting subjects and `--events` events through the
//! ingest gate (as `candor-bench rights` loads them), then `--requests` `GET /preferences` over
//! loopback HTTP, each for a random one of `--sampled` subjects holding a signed link, one
//! request at a time. Timed from request to the last byte of the page; the target is p99 < 50 ms
//! at 1M subjects. Each page computes three live previews, the export summary and the requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use candor_app::{App, Config};
use candor_domain::Scope;
use candor_store::{CatalogCategory, Item};
use clap::Args;
use hdrhistogram::Histogram;

use crate::rights::{background_batch, grant_all, ingest_all, ms};

#[derive(Args, Debug, Clone)]
pub struct PagesBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub subjects: usize,
    /// Background events, spread over the subjects.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Subjects given a link, the pages rendered are theirs.
    #[arg(long, default_value_t = 200)]
    pub sampled: usize,
    #[arg(long, default_value_t = 2_000)]
    pub requests: usize,
    #[arg(long)]
    pub postgres: Option<String>,
}

pub async fn run(config: Config, args: PagesBenchArgs) -> Result<()> {
    ensure!(
        args.subjects >= args.sampled && args.sampled >= 1,
        "--sampled must be 1..=--subjects"
    );
    crate::common::on_throwaway_store(config, "pages", args.postgres.as_ref(), |app| {
        bench(app, args.clone())
    })
    .await
}

async fn bench(app: Arc<App>, args: PagesBenchArgs) -> Result<()> {
    println!(
        "store: {}; {} subjects, {} events",
        app.store_backend(),
        args.subjects,
        args.events
    );
    for d in crate::ingest::purposes() {
        app.create_purpose("bench", &d).await?;
    }
    app.set_inventory("bench", crate::ingest::inventory()?)
        .await?;
    // The products the generated events name (sku-0..499), in ten categories, so previews and
    // explanations have something to show.
    let cats: Vec<CatalogCategory> = (0..10)
        .map(|c| CatalogCategory {
            id: format!("cat-{c}"),
            name: format!("Category {c}"),
            sensitive_kind: None,
        })
        .collect();
    let items: Vec<Item> = (0..500)
        .map(|i| Item {
            id: format!("sku-{i}"),
            name: format!("Product {i}"),
            category_id: format!("cat-{}", i % 10),
            price_cents: 1000,
            ..Default::default()
        })
        .collect();
    app.upsert_catalog("bench", &cats, &items).await?;
    let t = Instant::now();
    grant_all(&app, (0..args.subjects).map(|i| format!("user-{i}"))).await?;
    let ts = candor_domain::format_micros(app.now());
    let batches = args.events / 100;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, next, ts) = (app.clone(), next.clone(), ts.clone());
        let subjects = args.subjects;
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(5, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let mut messages = Vec::new();
                for k in b..(b + 5).min(batches) {
                    messages.extend(background_batch(k, 100, subjects, &ts)?);
                }
                ingest_all(&app, messages).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let report = app.train("bench", &|_| {}).await?;
    println!(
        "loaded and trained ({} subjects, {} interactions) in {:.1} s (not timed)",
        report.subjects,
        report.interactions,
        t.elapsed().as_secs_f64()
    );

    let server = crate::common::LoopbackServer::start(&app, Scope::Auditor, "pages").await?;
    let client = reqwest::Client::new();
    let step = args.subjects / args.sampled;
    let cookies: Vec<String> = (0..args.sampled)
        .map(|i| {
            let link = app.issue_subject_link(&format!("user-{}", i * step), None)?;
            Ok(format!("candor_pc={}", link.token))
        })
        .collect::<Result<_>>()?;
    let url = format!("http://{}/preferences", server.addr);
    let get = |cookie: &str| {
        let req = client.get(&url).header("cookie", cookie).send();
        async move {
            let resp = req.await?;
            ensure!(resp.status() == 200, "page answered {}", resp.status());
            Ok(resp.bytes().await?.len())
        }
    };
    // Warm-up: every sampled subject once (consent and preference caches, as a live node has).
    for c in &cookies {
        get(c).await?;
    }
    let mut h = Histogram::<u64>::new(3)?;
    let mut bytes = 0usize;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..args.requests {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let c = &cookies[(seed % cookies.len() as u64) as usize];
        let t = Instant::now();
        bytes += get(c).await?;
        h.record(t.elapsed().as_micros() as u64)?;
    }
    server.stop().await;
    println!(
        "GET /preferences x {} ({} KB average): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 50 ms)",
        args.requests,
        bytes / args.requests / 1024,
        ms(&h, 0.5),
        ms(&h, 0.99),
        h.max() as f64 / 1000.0
    );
    Ok(())
}
