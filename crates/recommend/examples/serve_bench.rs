//! In-process latency of the full serving pipeline on a synthetic 100,000-item catalogue.
//!
//! cargo run --release -p candor-recommend --example serve_bench -- [--items 100000]
//!     [--users 50000] [--requests 20000] [--threads 2] [--model 0|1|2]
//! (`--model`: 0 item-kNN, 1 ALS folded in per request, 2 kNN/ALS blend w=0.5)
//!
//! Each request runs consent-level source selection, sensitive/owned filters, kNN candidate
//! generation from the history, declared-interest candidates, MMR with category caps, the
//! exploration slot, the small-seller exposure floor and explanations; nothing is cached
//! between requests. One thread issues
//! requests (latency, not throughput); the kNN fit uses `--threads`.

use std::time::Instant;

use candor_recommend::matrix::Interactions;
use candor_recommend::models::{ItemKnn, KnnParams};
use candor_recommend::serve::{Catalog, Consent, Engine, Level, Request, ServeConfig};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let n_items = arg("--items", 100_000);
    let n_users = arg("--users", 50_000);
    let n_requests = arg("--requests", 20_000);
    let threads = arg("--threads", 2);
    let model_kind = arg("--model", 0);
    let n_cats = 50usize;
    let mut rng = Rng(0x00C0_FFEE);

    // catalogue: category 49 is sensitive ("Health")
    let item_category: Vec<u32> = (0..n_items).map(|_| rng.below(n_cats) as u32).collect();
    let mut by_cat: Vec<Vec<u32>> = vec![Vec::new(); n_cats];
    for (i, &c) in item_category.iter().enumerate() {
        by_cat[c as usize].push(i as u32);
    }
    let catalog = Catalog {
        item_ids: (0..n_items).map(|i| format!("SKU-{i:06}")).collect(),
        titles: (0..n_items).map(|i| format!("Product {i}")).collect(),
        item_category: item_category.clone(),
        category_names: (0..n_cats)
            .map(|c| {
                if c == 49 {
                    "Health".to_string()
                } else {
                    format!("Category {c}")
                }
            })
            .collect(),
        category_sensitive: (0..n_cats).map(|c| c == 49).collect(),
        // 10% of items come from small sellers (group 1), guaranteed 2 of the 10 slots
        item_group: (0..n_items).map(|i| u32::from(i % 10 == 0)).collect(),
    };

    // users: 1-3 favourite categories, 5-40 items, skewed popularity inside a category
    let mut histories: Vec<Vec<u32>> = Vec::with_capacity(n_users);
    let mut favourites: Vec<Vec<u32>> = Vec::with_capacity(n_users);
    for _ in 0..n_users {
        let favs: Vec<u32> = (0..1 + rng.below(3))
            .map(|_| rng.below(n_cats) as u32)
            .collect();
        let len = 5 + rng.below(36);
        let mut h = Vec::with_capacity(len);
        for _ in 0..len {
            let c = favs[rng.below(favs.len())] as usize;
            let pool = &by_cat[c];
            let idx = ((pool.len() as f64) * rng.unit().powi(3)) as usize;
            h.push(pool[idx.min(pool.len() - 1)]);
        }
        histories.push(h);
        favourites.push(favs);
    }
    let train = Interactions::from_rows(n_items, &histories).expect("valid synthetic data");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let t = Instant::now();
    let knn = pool.install(|| ItemKnn::fit(&train, KnnParams::default()));
    let fit_s = t.elapsed().as_secs_f64();
    let counts = train.col_counts();
    // exposure floor: 2 of 10 slots for small sellers, as a fairness constraint would set it
    let config = ServeConfig {
        group_min_slots: vec![0, 2],
        ..ServeConfig::default()
    };
    use candor_recommend::serve::{Factors, FullModel};
    let als = || {
        pool.install(|| {
            candor_recommend::models::Als::fit(
                &train,
                candor_recommend::models::AlsParams::default(),
            )
        })
        .expect("als")
    };
    let (model, name) = match model_kind {
        0 => (FullModel::Knn(knn), "item-knn-bench"),
        1 => (FullModel::Factors(Factors::new(als())), "als-bench"),
        _ => (
            FullModel::Blend {
                knn,
                factors: Factors::new(als()),
                knn_weight: 0.5,
            },
            "blend-bench",
        ),
    };
    println!("model {name}");
    let engine =
        Engine::with_model(catalog, &counts, Some(model), name.into(), config).expect("engine");

    let mut lat_us: Vec<f64> = Vec::with_capacity(n_requests);
    let mut sample = None;
    let mut checksum = 0u64;
    let mut adjusted = 0usize;
    for n in 0..(n_requests + 1000) {
        let u = rng.below(n_users);
        let history = train.row(u);
        let level = match rng.below(10) {
            0 => Level::Off,
            1 | 2 => Level::Basic,
            _ => Level::Full,
        };
        let declared: &[u32] = &favourites[u][..1];
        let req = Request {
            level,
            consent: Consent {
                behaviour: true,
                declared: true,
            },
            history: if level == Level::Full { history } else { &[] },
            history_ts: &[],
            history_kinds: &[],
            declared,
            sensitive_opt_in: &[],
            owned: &[],
            k: 10,
            seed: n as u64,
        };
        let t = Instant::now();
        let resp = engine.recommend(&req);
        let us = t.elapsed().as_secs_f64() * 1e6;
        adjusted += usize::from(resp.fairness_adjusted);
        checksum = checksum.wrapping_add(resp.items.iter().map(|i| i.item as u64).sum::<u64>());
        if n >= 1000 {
            lat_us.push(us);
        }
        if n == 1000 + 7 && level == Level::Full
            || sample.is_none() && n > 1000 && level == Level::Full
        {
            sample = Some(resp);
        }
    }
    lat_us.sort_by(f64::total_cmp);
    let q = |p: f64| lat_us[((lat_us.len() as f64 * p) as usize).min(lat_us.len() - 1)];
    let mean = lat_us.iter().sum::<f64>() / lat_us.len() as f64;
    println!(
        "catalogue {n_items} items / {n_cats} categories, {n_users} synthetic users, {} nnz; kNN fit {:.2}s on {threads} threads",
        train.nnz(),
        fit_s
    );
    println!(
        "{} requests (70% full, 20% basic, 10% off), k=10, 1 thread: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us, mean {:.0} us (checksum {checksum}); exposure floor changed {adjusted} responses",
        lat_us.len(),
        q(0.50),
        q(0.90),
        q(0.99),
        lat_us[lat_us.len() - 1],
        mean
    );
    if let Some(s) = sample {
        println!(
            "sample response: {}",
            serde_json::to_string_pretty(&s).expect("json")
        );
    }
}
