//! `candor-bench journeys`: journey evaluation in subject-steps per second (target >= 50,000).
//!
//! A throwaway node gets `--subjects` subjects who granted personalization, analytics and
//! email, and `--events` product views through the ingest gate; a journey triggered by those
//! views (entry, a branch on "one or more engagements with `cat-0` in 7 days", an email, a
//! final wait) enters each of them at ingest. Then one `App::run_journeys` walks every subject
//! through it and is timed: each step reads what it needs (the branch reads the subject's
//! events with a permit, the message asks the email permit, preferences, time zone and caps)
//! and writes the position, the message and its outbox rows. Quiet hours and caps are off, so
//! the figure does not depend on the hour the benchmark runs at.

use std::time::Instant;

use anyhow::{Result, ensure};
use candor_app::{App, Config};
use candor_domain::{ConsentDecision, PurposeId};
use candor_store::{CatalogCategory, Item};
use clap::Args;
use serde_json::json;

use crate::rights::{background_batch, grant_all, ingest_all};

#[derive(Args, Debug, Clone)]
pub struct JourneysBenchArgs {
    #[arg(long, default_value_t = 20_000)]
    pub subjects: usize,
    /// Product views, spread over the subjects (each subject needs one to enter).
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    #[arg(long)]
    pub postgres: Option<String>,
}

pub async fn run(mut config: Config, args: JourneysBenchArgs) -> Result<()> {
    config.journeys.enabled = false;
    config.journeys.quiet_hours_start = String::new();
    config.journeys.cap_per_channel = 0;
    config.journeys.cap_all_channels = 0;
    crate::common::on_throwaway_store(config, "journeys", args.postgres.as_ref(), |app| {
        bench(app, args.clone())
    })
    .await
}

async fn bench(app: std::sync::Arc<App>, args: JourneysBenchArgs) -> Result<()> {
    println!(
        "store: {}; {} subjects, {} events",
        app.store_backend(),
        args.subjects,
        args.events
    );
    let mut purposes = crate::ingest::purposes();
    purposes.push(candor_domain::PurposeDraft {
        id: "email_marketing".into(),
        title: "News by email".into(),
        description: "We email you news and ideas.".into(),
        legal_basis: "consent".into(),
        categories: vec!["contact".into()],
        ..Default::default()
    });
    for d in purposes {
        app.create_purpose("bench", &d).await?;
    }
    app.set_inventory("bench", crate::ingest::inventory()?)
        .await?;
    let cats: Vec<CatalogCategory> = (0..10)
        .map(|c| CatalogCategory {
            id: format!("cat-{c}"),
            name: format!("Category {c}"),
            sensitive_kind: None,
        })
        .collect();
    let items: Vec<Item> = (0..5000)
        .map(|i| Item {
            id: format!("sku-{i}"),
            name: format!("Product {i}"),
            category_id: format!("cat-{}", i % 10),
            price_cents: 1000,
            ..Default::default()
        })
        .collect();
    app.upsert_catalog("bench", &cats, &items).await?;
    app.define_journey(
        "bench",
        json!({
            "id": "follow-up", "name": "Follow-up", "purpose": "personalization",
            "trigger": {"type": "event", "event": "Product Viewed"},
            "steps": [
                {"type": "branch", "id": "engaged", "condition": {"type": "engaged", "topic": "cat-0", "at_least": 1, "within_days": 7}, "then": "mail", "otherwise": "done"},
                {"type": "message", "id": "mail", "channel": "email", "template": "ideas", "personalize": "declared"},
                {"type": "wait", "id": "done", "minutes": 1}
            ]
        }),
    )
    .await?;
    let t = Instant::now();
    grant_all(&app, (0..args.subjects).map(|i| format!("user-{i}"))).await?;
    let email = PurposeId::parse("email_marketing")?;
    let now = app.now();
    let mut chunk = Vec::new();
    for i in 0..args.subjects {
        chunk.push((
            app.subject_key(&format!("user-{i}"))?,
            vec![(email.clone(), ConsentDecision::Granted, now)],
        ));
        if chunk.len() == 2000 {
            app.import_consents_bulk("bench", &chunk).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        app.import_consents_bulk("bench", &chunk).await?;
    }
    let ts = candor_domain::format_micros(app.now());
    for b in 0..args.events / 100 {
        ingest_all(&app, background_batch(b, 100, args.subjects, &ts)?).await?;
    }
    println!("loaded in {:.1} s (not timed)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let run = app.run_journeys().await?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(run.steps > 0, "no subject entered the journey");
    println!(
        "one run: {} subject-steps in {secs:.2} s = {:.0} subject-steps/s (target >= 50,000); {} sent, {} suppressed, {} finished",
        run.steps,
        run.steps as f64 / secs,
        run.sent,
        run.suppressed,
        run.finished
    );
    Ok(())
}
