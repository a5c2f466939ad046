//! `candor bench recommend`: live recommendation latency in-process and over HTTP.
//!
//! A throwaway node (temporary SQLite data dir, or a throwaway PostgreSQL database created and
//! dropped with `--postgres URL`) gets a synthetic shop through the public App/Store API: a
//! catalog of `--items` items in `--categories` categories (one sensitive, "health"), consent
//! for a share of `--subjects` subjects, behavioral events (views and purchases clustered on a
//! few favourite categories per subject), and preferences for the subjects that are queried
//! (most `full`, some `basic` with declared interests, some `off`, a few opted into health).
//! Population time is measured per step. Then `App::train` fits item-kNN, and:
//!
//! - in-process: `App::recommend` (consent, level, quiet periods, the subject's history —
//!   read from the store on first use, then kept in memory and noted on ingestion —, sensitive
//!   exclusion, owned items, MMR + category cap + exploration slot, explanations, asynchronous
//!   decision log) timed per request, by level: first use (the warm-up pass) and warm, plus the
//!   store's history read alone (`Store::item_events`) for the same subjects;
//! - over HTTP: `GET /v1/recommendations/{id}?surface=home&k=10` with a `recommend` key from
//!   `--clients` concurrent clients on loopback. Clients share this process and the cores with
//!   the server, so the figure is conservative for the server alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use candor_app::ingest::RawMessage;
use candor_app::personalization::recommend::RecommendRequest;
use candor_app::{App, Config};
use candor_domain::inventory::Inventory;
use candor_domain::preferences::{Level, Preferences};
use candor_domain::{ConsentDecision, PurposeDraft, PurposeId, Scope, SubjectKey};
use candor_store::{CatalogCategory, Item};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct RecommendBenchArgs {
    /// Catalog size.
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Categories (one of them, "health", is sensitive).
    #[arg(long, default_value_t = 36)]
    pub categories: usize,
    /// Subjects with events (use --subjects 1000000 for the 1M-subject run).
    #[arg(long, default_value_t = 100_000)]
    pub subjects: usize,
    /// Mean behavioral events per subject (uniform in 1..=2*mean-1).
    #[arg(long, default_value_t = 10)]
    pub events_per_subject: usize,
    /// Share of subjects who granted the recommendation purpose.
    #[arg(long, default_value_t = 0.9)]
    pub consent_share: f64,
    /// Subjects whose preferences are set and who are queried (the first N subjects): 80%
    /// `full`, 10% `basic` with declared interests, 10% `off`; 5% opted into health.
    #[arg(long, default_value_t = 20_000)]
    pub served: usize,
    /// In-process requests to time (after one warm-up pass over the served subjects).
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// HTTP requests to send in total.
    #[arg(long, default_value_t = 100_000)]
    pub http_requests: usize,
    /// Concurrent HTTP clients (comma list runs each in turn).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub clients: Vec<usize>,
    /// Skip the HTTP part.
    #[arg(long)]
    pub no_http: bool,
    /// Keep the server running after the measurements (for external load generators such as
    /// wrk) for this many seconds; prints the address and key first.
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Concurrent writers while populating consent and preferences.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Events per ingest batch while populating (at most 2,500, as for `/v1/batch`).
    #[arg(long, default_value_t = 2_500)]
    pub event_chunk: usize,
    /// Subjects per bulk consent import and per bulk preferences transaction.
    #[arg(long, default_value_t = 2_000)]
    pub bulk_chunk: usize,
    /// `recommend.low_confidence` for the run. Default 0: on a synthetic 100k-item shop the
    /// calibrated confidence of every personal answer is below the serving default (0.005), so
    /// every answer would fall back to popularity and the personal path would not be measured.
    #[arg(long, default_value_t = 0.0)]
    pub low_confidence: f32,
    /// Run on a throwaway database created (and dropped) on this PostgreSQL server, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub postgres: Option<String>,
}

/// A cheap deterministic mixer (SplitMix64 finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn category_id(c: usize) -> String {
    if c == 0 {
        "health".into()
    } else {
        format!("cat-{c:02}")
    }
}

fn item_id(i: usize) -> String {
    format!("sku-{i:06}")
}

/// Items of category `c` are `c, c + n_cat, c + 2 n_cat, ...`; popularity within a category is
/// skewed towards low ranks.
fn item_in(c: usize, rank: usize, n_cat: usize, n_items: usize) -> usize {
    let per = n_items.div_ceil(n_cat);
    (c + (rank % per) * n_cat).min(n_items - 1)
}

fn skewed_rank(h: u64, per: usize) -> usize {
    // square of a uniform: P(rank < x) = sqrt(x/per), a long tail
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    ((u * u) * per as f64) as usize
}

/// The favourite categories of subject `s` (never the sensitive one, except for 2%).
fn favourites(s: usize, n_cat: usize) -> [usize; 3] {
    let h = mix(s as u64 ^ 0xfa70);
    let pick = |k: u64| 1 + ((h >> (k * 16)) as usize % (n_cat - 1));
    let mut f = [pick(0), pick(1), pick(2)];
    if h.is_multiple_of(50) {
        f[2] = 0;
    }
    f
}

/// The subject's behavioural events as Segment track messages, oldest first, spread over the
/// last 90 days (within the default browsing retention).
fn events_of(s: usize, args: &RecommendBenchArgs, now: i64, out: &mut Vec<RawMessage>) {
    let h = mix(s as u64);
    let n = 1 + (h as usize % (2 * args.events_per_subject - 1).max(1));
    let fav = favourites(s, args.categories);
    let per = args.items.div_ceil(args.categories);
    let mut at = now - 89 * 86_400_000_000 + (h >> 20) as i64 % 86_400_000_000;
    for e in 0..n {
        let r = mix(h ^ (e as u64 + 1));
        let c = if r % 10 < 8 {
            fav[(r >> 8) as usize % 3]
        } else {
            (r >> 16) as usize % args.categories
        };
        let item = item_in(c, skewed_rank(mix(r), per), args.categories, args.items);
        let purchase = (r >> 40).is_multiple_of(10);
        at += 1_000_000 + ((r >> 24) % 3_600_000_000) as i64;
        let message = json!({
            "type": "track",
            "userId": format!("user-{s}"),
            "event": if purchase { "Order Completed" } else { "Product Viewed" },
            "properties": {"product_id": item_id(item)},
            "timestamp": candor_domain::format_micros(at.min(now - 1)),
            "messageId": format!("bench-{s}-{e}"),
        });
        out.push(RawMessage {
            bytes: message.to_string().len(),
            json: Ok(message),
        });
    }
}

/// What the bench's events may carry: product views (browsing) and orders (purchases), each
/// with its product id, all for the recommendation purpose.
fn inventory() -> Result<Inventory> {
    let event = |category: &str| {
        let spec = |c: &str| json!({"category": c, "purposes": ["personalization"]});
        json!({"category": category, "purposes": ["personalization"], "properties": {"product_id": spec(category)}})
    };
    let plan = json!({
        "undeclared_events": "reject",
        "events": {"track:Product Viewed": event("browsing"), "track:Order Completed": event("purchase")},
    });
    Ok(serde_json::from_value(plan)?)
}

fn preferences_of(s: usize, n_cat: usize) -> Preferences {
    let h = mix(s as u64 ^ 0x9e5);
    let fav = favourites(s, n_cat);
    let level = match h % 10 {
        0 => Level::Off,
        1 => Level::Basic,
        _ => Level::Full,
    };
    Preferences {
        level,
        declared_interests: if level == Level::Basic || (h >> 8).is_multiple_of(3) {
            let mut d: Vec<String> = fav
                .iter()
                .filter(|&&c| c != 0)
                .take(2)
                .map(|&c| category_id(c))
                .collect();
            d.sort();
            d.dedup();
            d
        } else {
            vec![]
        },
        sensitive_opt_ins: if (h >> 16).is_multiple_of(20) {
            vec!["health".into()]
        } else {
            vec![]
        },
        quiet_periods: vec![],
        hidden_items: vec![],
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn print_hist(label: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        println!("{label}: no samples");
        return;
    }
    println!(
        "{label}: n {}, mean {:.0} µs, p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        h.len(),
        h.mean(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

pub async fn run(mut config: Config, args: RecommendBenchArgs) -> Result<()> {
    ensure!(
        args.items >= args.categories && args.categories >= 4,
        "need at least 4 categories and as many items"
    );
    ensure!(
        args.subjects >= 1 && args.served >= 1 && args.served <= args.subjects,
        "--served must be between 1 and --subjects"
    );
    ensure!(args.events_per_subject >= 1, "--events-per-subject >= 1");
    config.ingest.retention_interval_secs = 0;
    config.recommend.train_interval_secs = 0;
    config.recommend.low_confidence = args.low_confidence;
    crate::common::on_throwaway_store(config, "recommend", args.postgres.as_ref(), |app| {
        bench(app, &args)
    })
    .await
}

async fn bench(app: Arc<App>, args: &RecommendBenchArgs) -> Result<()> {
    let backend = app.store_backend();
    println!(
        "store: {backend}; {} items in {} categories (health sensitive), {} subjects ({:.0}% consented, ~{} events each), {} served subjects",
        args.items,
        args.categories,
        args.subjects,
        args.consent_share * 100.0,
        args.events_per_subject,
        args.served
    );
    app.create_purpose(
        "bench",
        &PurposeDraft {
            id: "personalization".into(),
            title: "Recommendations".into(),
            description: "We use what you browse and buy to suggest products.".into(),
            legal_basis: "consent".into(),
            categories: vec![
                "browsing".into(),
                "purchase".into(),
                "declared_preference".into(),
            ],
            expires_after_days: Some(365),
            ..Default::default()
        },
    )
    .await?;
    let pid = PurposeId::parse("personalization")?;
    let total = Instant::now();

    // 1. Catalog.
    let t = Instant::now();
    let cats: Vec<CatalogCategory> = (0..args.categories)
        .map(|c| CatalogCategory {
            id: category_id(c),
            name: if c == 0 {
                "Health".into()
            } else {
                format!("Category {c}")
            },
            sensitive_kind: (c == 0).then(|| "health".into()),
        })
        .collect();
    let items: Vec<Item> = (0..args.items)
        .map(|i| Item {
            id: item_id(i),
            name: format!("Product {i}"),
            category_id: category_id(i % args.categories),
            price_cents: 100 + (mix(i as u64) % 10_000) as i64,
            ..Default::default()
        })
        .collect();
    app.upsert_catalog("bench", &cats, &items).await?;
    drop(items);
    println!(
        "populate: catalog of {} items in {:.1} s",
        args.items,
        t.elapsed().as_secs_f64()
    );

    // 2. Subject keys (HMAC pseudonyms of user-{i}).
    let t = Instant::now();
    let keys: Arc<Vec<SubjectKey>> = Arc::new(
        (0..args.subjects)
            .map(|i| app.subject_key(&format!("user-{i}")))
            .collect::<candor_app::Result<_>>()?,
    );
    println!(
        "populate: {} pseudonyms in {:.1} s",
        args.subjects,
        t.elapsed().as_secs_f64()
    );

    // 3. Consent (`App::import_consents_bulk`: audited per subject, many subjects per
    // transaction), several writers.
    let t = Instant::now();
    let granted: Arc<Vec<usize>> = Arc::new(
        (0..args.subjects)
            .filter(|&i| (mix(i as u64 ^ 0xc0) % 1000) as f64 / 1000.0 < args.consent_share)
            .collect(),
    );
    let now = app.now();
    let next = Arc::new(AtomicUsize::new(0));
    let chunk = args.bulk_chunk.max(1);
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (app, next, keys, granted, pid) = (
            app.clone(),
            next.clone(),
            keys.clone(),
            granted.clone(),
            pid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(chunk, Ordering::Relaxed);
                if from >= granted.len() {
                    return anyhow::Ok(());
                }
                let subjects: Vec<_> = granted[from..(from + chunk).min(granted.len())]
                    .iter()
                    .map(|&i| {
                        (
                            keys[i].clone(),
                            vec![(
                                pid.clone(),
                                ConsentDecision::Granted,
                                now - 100 * 86_400_000_000,
                            )],
                        )
                    })
                    .collect();
                app.import_consents_bulk("bench", &subjects).await?;
                if from / 100_000 != (from + chunk) / 100_000 {
                    eprintln!("  consent: {} subjects", from + chunk);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let consent_s = t.elapsed().as_secs_f64();
    println!(
        "populate: consent for {} subjects in {consent_s:.1} s ({:.0} subjects/s; App::import_consents_bulk, {chunk} subjects per transaction, {} writers)",
        granted.len(),
        granted.len() as f64 / consent_s,
        args.writers.max(1)
    );

    // 4. Events, through the ingest gate (tracking plan, consent, pseudonymization) in
    // batches as `/v1/batch` takes them, from several writers.
    let t = Instant::now();
    app.set_inventory("bench", inventory()?).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let chunk = args
        .event_chunk
        .clamp(1, candor_app::ingest::MAX_BATCH_MESSAGES);
    let per_task = (chunk / args.events_per_subject.max(1)).max(1);
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (app, next, args) = (app.clone(), next.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let mut stored = 0usize;
            let mut buf = Vec::with_capacity(chunk + 64);
            loop {
                let from = next.fetch_add(per_task, Ordering::Relaxed);
                if from >= args.subjects {
                    return anyhow::Ok(stored);
                }
                for s in from..(from + per_task).min(args.subjects) {
                    events_of(s, &args, now, &mut buf);
                }
                while !buf.is_empty() {
                    let n = buf.len().min(candor_app::ingest::MAX_BATCH_MESSAGES);
                    let batch: Vec<RawMessage> = buf.drain(..n).collect();
                    let report = app.ingest(batch, None).await?;
                    ensure!(
                        report.rejected.is_empty(),
                        "bench events rejected: {:?}",
                        report.rejected.first()
                    );
                    stored += report.stored;
                }
                if from / 100_000 != (from + per_task) / 100_000 {
                    eprintln!("  events: {} subjects", from + per_task);
                }
            }
        }));
    }
    let mut n_events = 0usize;
    for t in tasks {
        n_events += t.await??;
    }
    let events_s = t.elapsed().as_secs_f64();
    println!(
        "populate: {n_events} events kept by the ingest gate in {events_s:.1} s ({:.0} events/s)",
        n_events as f64 / events_s
    );

    // 5. Train (this also loads the catalog into serving, which preferences validate against).
    let t = Instant::now();
    let report = app.train("bench", &|m| eprintln!("  train: {m}")).await?;
    println!(
        "train: item-kNN on {} subjects ({} excluded without consent), {} interactions, {} items in {:.1} s; RSS {:.0} MiB",
        report.subjects,
        report.subjects_excluded_without_consent,
        report.interactions,
        report.items,
        t.elapsed().as_secs_f64(),
        rss_mib()
    );

    // 6. Preferences of the served subjects, validated against the serving catalog and audited
    // per subject (`App::set_preferences_bulk`, many subjects per transaction).
    let via_app = args.served.min(20);
    let t = Instant::now();
    for (i, key) in keys.iter().enumerate().take(via_app) {
        app.set_preferences(
            "bench",
            key,
            preferences_of(i, args.categories),
            candor_domain::preferences::PreferenceSource::Api,
        )
        .await?;
    }
    println!(
        "populate: App::set_preferences: {via_app} calls, {:.1} ms each",
        t.elapsed().as_secs_f64() * 1000.0 / via_app.max(1) as f64
    );
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(via_app));
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (app, next, keys) = (app.clone(), next.clone(), keys.clone());
        let (served, n_cat) = (args.served, args.categories);
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(chunk, Ordering::Relaxed);
                if from >= served {
                    return anyhow::Ok(());
                }
                let subjects: Vec<_> = (from..(from + chunk).min(served))
                    .map(|i| (keys[i].clone(), preferences_of(i, n_cat)))
                    .collect();
                app.set_preferences_bulk(
                    "bench",
                    &subjects,
                    candor_domain::preferences::PreferenceSource::Api,
                )
                .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let prefs_s = t.elapsed().as_secs_f64();
    println!(
        "populate: preferences for {} more subjects (App::set_preferences_bulk, {chunk} per transaction) in {prefs_s:.1} s ({:.0}/s)",
        args.served - via_app,
        (args.served - via_app) as f64 / prefs_s
    );
    println!(
        "populate: total {:.1} s; RSS {:.0} MiB",
        total.elapsed().as_secs_f64(),
        rss_mib()
    );
    if backend == "sqlite" {
        let db = app.config().data_dir.join("candor.db");
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        println!(
            "database file {:.0} MiB (+ WAL {:.0} MiB)",
            size(&db) as f64 / 1048576.0,
            size(&db.with_extension("db-wal")) as f64 / 1048576.0
        );
    }

    // Decisions are logged off the request path, as in `candor serve`.
    let background = app.start_background().await?;

    // 7. In-process: warm-up pass (consent + preference caches, as a running node has them),
    // then timed requests over the served subjects in a scrambled order.
    let req = RecommendRequest {
        surface: "home".into(),
        k: Some(10),
        ..Default::default()
    };
    let t = Instant::now();
    let mut levels = [0usize; 3];
    let mut short = 0usize;
    let mut first_use = Histogram::<u64>::new(3)?;
    for key in &keys[..args.served] {
        let s = Instant::now();
        let r = app.recommend(key, &req).await?;
        first_use.record(s.elapsed().as_micros() as u64)?;
        levels[r.level_applied as usize] += 1;
        if r.items.len() < 10 {
            short += 1;
        }
        ensure!(
            r.items.iter().all(|i| i.category != "health") || preferences_of_key(&app, key).await?,
            "a health item was recommended without an opt-in"
        );
    }
    let (held, cost) = app.history_cache_len();
    println!(
        "warm-up pass over {} served subjects in {:.1} s; levels applied: off {}, basic {}, full {}; {short} lists shorter than k = 10; histories in memory: {held} subjects, {cost} events+bookkeeping",
        args.served,
        t.elapsed().as_secs_f64(),
        levels[0],
        levels[1],
        levels[2]
    );
    print_hist(
        "  first use (consent, preferences and history loaded from the store)",
        &first_use,
    );
    let mut all = Histogram::<u64>::new(3)?;
    let mut by_level = [
        Histogram::<u64>::new(3)?,
        Histogram::<u64>::new(3)?,
        Histogram::<u64>::new(3)?,
    ];
    let started = Instant::now();
    for n in 0..args.requests {
        let key = &keys[(mix(n as u64) % args.served as u64) as usize];
        let s = Instant::now();
        let r = app.recommend(key, &req).await?;
        let us = s.elapsed().as_micros() as u64;
        all.record(us)?;
        by_level[r.level_applied as usize].record(us)?;
    }
    let el = started.elapsed().as_secs_f64();
    println!(
        "\nin-process App::recommend, 1 task, {} requests in {el:.2} s ({:.0} req/s):",
        args.requests,
        args.requests as f64 / el
    );
    print_hist("  all levels            [target p99 <= 1000 µs]", &all);
    print_hist("  level full (history)", &by_level[2]);
    print_hist("  level basic", &by_level[1]);
    print_hist("  level off", &by_level[0]);
    let mut cached = Histogram::<u64>::new(3)?;
    for n in 0..args.requests.min(20_000) {
        let key = &keys[(mix(n as u64) % args.served as u64) as usize];
        let s = Instant::now();
        std::hint::black_box(app.preferences(key).await?);
        std::hint::black_box(app.consent_status(key, &pid).await?);
        cached.record(s.elapsed().as_nanos() as u64)?;
    }
    println!(
        "  of which preferences + consent (cached): p50 {} ns, p99 {} ns",
        cached.value_at_quantile(0.5),
        cached.value_at_quantile(0.99)
    );
    println!("RSS {:.0} MiB", rss_mib());

    // 8. Over HTTP.
    let server =
        crate::common::LoopbackServer::start(&app, Scope::Recommend, "bench-recommend").await?;
    let (addr, key) = (server.addr, server.secret.clone());
    if !args.no_http {
        for &clients in &args.clients {
            http_run(addr, &key, clients.max(1), args).await?;
        }
    }
    if args.hold_secs > 0 {
        println!(
            "\nholding the server for {} s: http://{addr}/v1/recommendations/user-N?surface=home&k=10 (N < {}), Authorization: Bearer {}",
            args.hold_secs, args.served, key
        );
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    server.stop().await;
    background.shutdown().await;
    Ok(())
}

async fn preferences_of_key(app: &Arc<App>, key: &SubjectKey) -> Result<bool> {
    Ok(app
        .preferences(key)
        .await?
        .sensitive_opt_ins
        .iter()
        .any(|c| c == "health"))
}

async fn http_run(
    addr: std::net::SocketAddr,
    secret: &str,
    clients: usize,
    args: &RecommendBenchArgs,
) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let total = args.http_requests as u64;
    // warm the connections
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let (next, secret, served) = (next.clone(), secret.to_owned(), args.served as u64);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut bytes = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok((h, bytes));
                }
                let user = mix(n ^ 0x477) % served;
                let url = format!("http://{addr}/v1/recommendations/user-{user}?surface=home&k=10");
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
                bytes += body.len();
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut bytes = 0;
    for t in tasks {
        let (h, b) = t.await??;
        hist.add(h)?;
        bytes += b;
    }
    let el = started.elapsed().as_secs_f64();
    println!(
        "\nHTTP GET /v1/recommendations/{{id}}?surface=home&k=10, {clients} clients (in this process): {} requests in {el:.2} s: {:.0} req/s  [target >= 10000 req/s], p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  [target p99 <= 10 ms]; mean body {:.0} bytes; RSS {:.0} MiB",
        hist.len(),
        hist.len() as f64 / el,
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.max()),
        bytes as f64 / hist.len().max(1) as f64,
        rss_mib()
    );
    Ok(())
}
