//! `candor bench ingest`: sustained ingestion throughput through `/v1/batch` over loopback.
//!
//! A throwaway node (temporary SQLite data dir, or a throwaway PostgreSQL database created and
//! dropped with `--postgres URL`) gets purposes, a tracking plan, and consent grants for a share
//! of the subjects; then K concurrent HTTP clients send batches of Segment messages, the way
//! analytics libraries do, for a fixed event count or duration. Client and server share this
//! process (and the machine's cores), so the figure is conservative for the server alone.
//!
//! Printed: events/s sustained, batch latency p50/p99, the outcome totals the server reported
//! (checked: nothing rejected, no duplicates, stored + without consent = sent), and RSS at start,
//! middle and end.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use candor_app::{App, Config};
use candor_domain::inventory::Inventory;
use candor_domain::{ConsentDecision, PurposeDraft, PurposeId, Scope};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct IngestBenchArgs {
    /// Events to send (ignored with --duration-secs).
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Send for this long instead of a fixed count.
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Distinct subjects the events are spread over.
    #[arg(long, default_value_t = 50_000)]
    pub subjects: usize,
    /// Share of subjects who granted the consent purposes (the rest exercise the
    /// without-consent path).
    #[arg(long, default_value_t = 0.8)]
    pub consent_share: f64,
    /// Messages per /v1/batch request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Share of messages carrying `context.ip` (declared as contact data, so encrypted).
    #[arg(long, default_value_t = 1.0)]
    pub ip_share: f64,
    /// Run on a throwaway database created (and dropped) on this PostgreSQL server, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub postgres: Option<String>,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this process has used (user + system), in seconds.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_cpu(&s).map(|(_, cpu)| cpu))
        .unwrap_or(0.0)
}

/// The name and CPU seconds (user + system) in a `/proc/.../stat` line: fields 14 and 15, in
/// clock ticks (100 per second on Linux), after the parenthesized name.
fn stat_cpu(stat: &str) -> Option<(&str, f64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((&stat[open + 1..close], (ticks(11)? + ticks(12)?) / 100.0))
}

/// CPU seconds used so far by each kind of thread (by name: the runtime's workers, the SQLite
/// ingest writer, the SQLite pool's connection workers, ...).
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut by = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        if let Some((name, cpu)) = stat_cpu(&stat) {
            *by.entry(name.to_owned()).or_default() += cpu;
        }
    }
    by
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(crate) fn purposes() -> Vec<PurposeDraft> {
    let d = |id: &str, basis: &str, cats: &[&str], title: &str, desc: &str| PurposeDraft {
        id: id.into(),
        title: title.into(),
        description: desc.into(),
        legal_basis: basis.into(),
        categories: cats.iter().map(|c| (*c).to_owned()).collect(),
        expires_after_days: Some(365),
        ..Default::default()
    };
    vec![
        d(
            "personalization",
            "consent",
            &["browsing", "purchase", "declared_preference"],
            "Recommendations",
            "We use what you browse and buy to suggest products.",
        ),
        d(
            "analytics",
            "consent",
            &["browsing"],
            "Analytics",
            "We count visits.",
        ),
        d(
            "order_fulfilment",
            "contract",
            &["purchase", "contact"],
            "Orders",
            "We need your details to ship orders.",
        ),
    ]
}

pub(crate) fn inventory() -> Result<Inventory> {
    Ok(serde_json::from_value(json!({
        "undeclared_events": "reject",
        "events": {
            "track:Product Viewed": {"category": "browsing", "purposes": ["personalization", "analytics"], "properties": {
                "product_id": {"category": "browsing", "purposes": ["personalization", "analytics"]},
                "price": {"category": "browsing", "purposes": ["personalization"]},
                "category": {"category": "browsing", "purposes": ["personalization"]}}},
            "track:Product Added": {"category": "browsing", "purposes": ["personalization"], "properties": {
                "product_id": {"category": "browsing", "purposes": ["personalization"]},
                "quantity": {"category": "browsing", "purposes": ["personalization"]}}},
            "track:Order Completed": {"category": "purchase", "purposes": ["order_fulfilment"], "properties": {
                "order_id": {"category": "purchase", "purposes": ["order_fulfilment"]},
                "revenue": {"category": "purchase", "purposes": ["order_fulfilment"]}}}
        },
        "traits": {
            "email": {"category": "contact", "purposes": ["order_fulfilment"]},
            "favorite_category": {"category": "declared_preference", "purposes": ["personalization"]}
        },
        "context": {"ip": {"category": "contact", "purposes": ["order_fulfilment"]}}
    }))?)
}

/// A cheap deterministic mixer so message content varies without a RNG dependency.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A message id as `@segment/analytics-node` makes them (its `createMessageId`):
/// `node-next-<milliseconds since the epoch>-<UUID v4>`. Ids therefore arrive roughly in time
/// order with a random tail, as from the library. The UUID carries all 64 bits of `mix(n)` (a
/// bijection), so no two messages of a run share one.
fn message_id(n: u64, millis: u128) -> String {
    let (a, b) = (mix(n), mix(n ^ 0x9e37_79b9_7f4a_7c15));
    format!(
        "node-next-{millis}-{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (((a >> 12) & 0xf) << 10) | ((b >> 54) & 0x3ff),
        b & 0xffff_ffff_ffff
    )
}

/// The JSON body of batch `b`: messages `b*size .. b*size+size`, about 1% identify, the rest
/// track (views, adds to cart, orders), with declared and undeclared properties.
pub(crate) fn batch_body(
    b: u64,
    size: usize,
    subjects: usize,
    ip_share: f64,
    timestamp: &str,
) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut s = String::with_capacity(size * 390 + 64);
    s.push_str("{\"batch\":[");
    for j in 0..size as u64 {
        let n = b * size as u64 + j;
        let h = mix(n);
        if j > 0 {
            s.push(',');
        }
        let user = h % subjects as u64;
        let id = message_id(n, millis);
        let ip = if ((h >> 40) % 1000) as f64 / 1000.0 < ip_share {
            format!(
                ",\"context\":{{\"ip\":\"10.{}.{}.{}\"}}",
                (h >> 8) & 255,
                (h >> 16) & 255,
                (h >> 24) & 255
            )
        } else {
            String::new()
        };
        let roll = (h >> 20) % 100;
        if roll == 0 {
            let _ = write!(
                s,
                "{{\"type\":\"identify\",\"messageId\":\"{id}\",\"userId\":\"user-{user}\",\"timestamp\":\"{timestamp}\",\"traits\":{{\"email\":\"user-{user}@example.com\",\"favorite_category\":\"garden\",\"plan\":\"pro\"}}{ip}}}"
            );
        } else if roll < 6 {
            let _ = write!(
                s,
                "{{\"type\":\"track\",\"event\":\"Order Completed\",\"messageId\":\"{id}\",\"userId\":\"user-{user}\",\"timestamp\":\"{timestamp}\",\"properties\":{{\"order_id\":\"o-{n}\",\"revenue\":{}.{:02},\"coupon\":\"SPRING\"}}{ip}}}",
                (h >> 32) % 500,
                (h >> 44) % 100
            );
        } else if roll < 20 {
            let _ = write!(
                s,
                "{{\"type\":\"track\",\"event\":\"Product Added\",\"messageId\":\"{id}\",\"userId\":\"user-{user}\",\"timestamp\":\"{timestamp}\",\"properties\":{{\"product_id\":\"sku-{}\",\"quantity\":{},\"cart_id\":\"c-{user}\"}}{ip}}}",
                (h >> 32) % 100_000,
                1 + (h >> 50) % 4
            );
        } else {
            let _ = write!(
                s,
                "{{\"type\":\"track\",\"event\":\"Product Viewed\",\"messageId\":\"{id}\",\"userId\":\"user-{user}\",\"timestamp\":\"{timestamp}\",\"properties\":{{\"product_id\":\"sku-{}\",\"price\":{}.{:02},\"category\":\"garden\",\"shoe_size\":{},\"referrer\":\"https://search.example/q\"}}{ip}}}",
                (h >> 32) % 100_000,
                (h >> 44) % 200,
                (h >> 52) % 100,
                36 + (h >> 56) % 12
            );
        }
    }
    s.push_str("]}");
    s
}

#[derive(Default)]
struct Outcomes {
    accepted: AtomicU64,
    stored: AtomicU64,
    without_consent: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    properties_dropped: AtomicU64,
}

pub async fn run(config: Config, args: IngestBenchArgs) -> Result<()> {
    ensure!((1..=2500).contains(&args.batch), "--batch must be 1-2500");
    ensure!(
        args.clients >= 1 && args.subjects >= 1,
        "--clients and --subjects must be >= 1"
    );
    crate::common::on_throwaway_store(config, "ingest", args.postgres.as_ref(), |app| {
        bench(app, &args)
    })
    .await
}

async fn bench(app: Arc<App>, args: &IngestBenchArgs) -> Result<()> {
    let backend = app.store_backend();
    println!(
        "store: {backend}; {} subjects ({:.0}% with consent), batches of {}, {} clients, context.ip on {:.0}% of messages",
        args.subjects,
        args.consent_share * 100.0,
        args.batch,
        args.clients,
        args.ip_share * 100.0
    );
    for d in purposes() {
        app.create_purpose("bench", &d).await?;
    }
    app.set_inventory("bench", inventory()?).await?;

    // Consent as people would have given it: for the first share of subjects, both consent
    // purposes granted (imported, with the import source recorded).
    let t = Instant::now();
    let granted = (args.subjects as f64 * args.consent_share).round() as usize;
    let ids = [
        PurposeId::parse("personalization")?,
        PurposeId::parse("analytics")?,
    ];
    let now = app.now();
    // A few writers in parallel; the store serializes audit appends anyway.
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let app = app.clone();
        let next = next.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= granted {
                    return anyhow::Ok(());
                }
                let key = app.subject_key(&format!("user-{i}"))?;
                let decisions: Vec<_> = ids
                    .iter()
                    .map(|p| (p.clone(), ConsentDecision::Granted, now))
                    .collect();
                app.import_consents("bench", &key, &decisions).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "granted consent for {granted} subjects in {:.1} s (not timed below)",
        t.elapsed().as_secs_f64()
    );

    let server = crate::common::LoopbackServer::start(&app, Scope::Ingest, "bench-ingest").await?;
    let (addr, key) = (server.addr, server.secret.clone());

    let total_batches = match args.duration_secs {
        Some(_) => u64::MAX,
        None => args.events.div_ceil(args.batch as u64),
    };
    let deadline = args
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let next_batch = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Outcomes::default());
    let timestamp = candor_domain::format_micros(app.now());
    let url = format!("http://{addr}/v1/batch");
    let rss_start = rss_kib();
    let rss_peak = Arc::new(AtomicU64::new(rss_start));
    let rss_mid = Arc::new(AtomicU64::new(0));
    let done_batches = Arc::new(AtomicU64::new(0));

    // Memory sampler: peak, and the value when half the work is done.
    let sampler = {
        let peak = rss_peak.clone();
        let mid = rss_mid.clone();
        let done = done_batches.clone();
        let half_at = args
            .duration_secs
            .map(|s| Instant::now() + Duration::from_secs(s / 2));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let r = rss_kib();
                peak.fetch_max(r, Ordering::Relaxed);
                let half = match half_at {
                    Some(t) => Instant::now() >= t,
                    None => done.load(Ordering::Relaxed) * 2 >= total_batches,
                };
                if half && mid.load(Ordering::Relaxed) == 0 {
                    mid.store(r, Ordering::Relaxed);
                }
            }
        })
    };

    let started = Instant::now();
    let cpu_start = cpu_secs();
    let threads_start = cpu_by_thread();
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let url = url.clone();
        let secret = key.clone();
        let next_batch = next_batch.clone();
        let outcomes = outcomes.clone();
        let done = done_batches.clone();
        let timestamp = timestamp.clone();
        let a = args.clone();
        clients.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut sent = 0u64;
            loop {
                let b = next_batch.fetch_add(1, Ordering::Relaxed);
                if b >= total_batches || deadline.is_some_and(|d| Instant::now() >= d) {
                    return anyhow::Ok((h, sent));
                }
                let size = if deadline.is_none() {
                    (a.events - b * a.batch as u64).min(a.batch as u64) as usize
                } else {
                    a.batch
                };
                let body = batch_body(b, size, a.subjects, a.ip_share, &timestamp);
                let s = Instant::now();
                let resp = http
                    .post(&url)
                    .basic_auth(&secret, Some(""))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = resp.status();
                let bytes = resp.bytes().await?;
                h.record(s.elapsed().as_micros() as u64)?;
                ensure!(
                    status.is_success(),
                    "batch {b}: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                let v: Value = serde_json::from_slice(&bytes)?;
                let get = |k: &str| v[k].as_u64().unwrap_or(0);
                outcomes
                    .accepted
                    .fetch_add(get("accepted"), Ordering::Relaxed);
                outcomes.stored.fetch_add(get("stored"), Ordering::Relaxed);
                outcomes
                    .without_consent
                    .fetch_add(get("without_consent"), Ordering::Relaxed);
                outcomes
                    .duplicates
                    .fetch_add(get("duplicates"), Ordering::Relaxed);
                outcomes
                    .properties_dropped
                    .fetch_add(get("properties_dropped"), Ordering::Relaxed);
                outcomes.rejected.fetch_add(
                    v["rejected"].as_array().map_or(0, Vec::len) as u64,
                    Ordering::Relaxed,
                );
                sent += size as u64;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut sent = 0u64;
    for c in clients {
        let (h, n) = c.await??;
        hist.add(h)?;
        sent += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_start;
    let mut threads = cpu_by_thread();
    for (name, before) in threads_start {
        *threads.entry(name).or_default() -= before;
    }
    let rss_end = rss_kib();
    sampler.abort();
    let o = &outcomes;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "sent {sent} events in {} requests in {elapsed:.1} s: {:.0} events/s sustained  [target >= 100000/s]",
        hist.len(),
        sent as f64 / elapsed
    );
    println!(
        "CPU (client + server): {:.2} cores busy on average, {:.1} µs of CPU per event (100,000 events/s on 2 cores allows at most 20)",
        cpu / elapsed,
        cpu * 1e6 / sent as f64
    );
    let per_thread: Vec<String> = threads
        .iter()
        .filter(|(_, cpu)| **cpu > 0.0)
        .map(|(name, cpu)| format!("{name} {:.1}", cpu * 1e6 / sent as f64))
        .collect();
    println!("  µs per event by thread: {}", per_thread.join(", "));
    println!(
        "batch latency ({} events): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.batch,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    println!(
        "outcomes: accepted {}, stored {}, without consent {}, duplicates {}, rejected {}, properties dropped {}",
        load(&o.accepted),
        load(&o.stored),
        load(&o.without_consent),
        load(&o.duplicates),
        load(&o.rejected),
        load(&o.properties_dropped)
    );
    let mid = match load(&rss_mid) {
        0 => rss_end,
        m => m,
    };
    println!(
        "RSS (client + server, one process): start {:.0} MiB, middle {:.0} MiB, end {:.0} MiB, peak {:.0} MiB",
        mib(rss_start),
        mib(mid),
        mib(rss_end),
        mib(load(&rss_peak))
    );
    if app.store_backend() == "sqlite" {
        let db = app.config().data_dir.join("candor.db");
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        println!(
            "database file {:.0} MiB (+ WAL {:.0} MiB)",
            size(&db) as f64 / 1048576.0,
            size(&db.with_extension("db-wal")) as f64 / 1048576.0
        );
    }
    server.stop().await;
    ensure!(
        load(&o.rejected) == 0 && load(&o.duplicates) == 0,
        "the bench expects no rejections and no duplicates"
    );
    ensure!(
        load(&o.stored) + load(&o.without_consent) == sent,
        "every event must be stored or counted without consent"
    );
    Ok(())
}
