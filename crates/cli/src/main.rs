//! `candor`: the one binary. Parses arguments, sets up logging, and calls the app layer.
//!
//! Invariant: no command here holds business logic; each is a few lines over `candor-app`.
#![forbid(unsafe_code)]

mod audit_cmd;
mod eval_cmd;
mod import_cmd;
mod subject_cmd;
mod table_import;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candor_app::{App, Config};
use candor_domain::Scope;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "candor",
    version,
    about = "Ethical-by-construction personalization engine"
)]
struct Cli {
    /// Configuration file (TOML). CANDOR_* environment variables override it.
    #[arg(long, global = true, env = "CANDOR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve,
    /// Create a fresh data directory, load the synthetic demo shop, and serve it.
    Demo(DemoArgs),
    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Fairness and bias audits.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The tamper-evident audit log.
    #[command(subcommand, name = "audit-log")]
    AuditLog(AuditLogCommand),
    /// Offline evaluation of the recommendation models under protocol EVAL-1.
    Eval(Box<eval_cmd::EvalArgs>),
    /// Train a recommendation model on consented data and activate it (no restart needed).
    Train,
    /// Retention rules.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Bulk import of historical data through the same consent gate as live ingestion.
    #[command(subcommand)]
    Import(import_cmd::ImportCommand),
    /// A person's rights: export, erase, and verify an erasure receipt.
    #[command(subcommand)]
    Subject(subject_cmd::SubjectCommand),
    /// Reports generated from the records.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Generate the transparency report of a year from the records, sign and store it, and
    /// print it (its consent rates are differentially private and charged to the ledger).
    Transparency {
        /// The year, like 2026.
        #[arg(long)]
        period: String,
        /// `json` or `html`.
        #[arg(long, default_value = "json", value_parser = ["json", "html"])]
        format: String,
        /// Write it here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
struct DemoArgs {
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Must not exist or be empty; default: a new directory under the system temp dir.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 2000)]
    customers: usize,
    #[arg(long, default_value_t = 3000)]
    products: usize,
    /// Load the data, print the summary, and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) or fail naming what is wrong.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        /// What the key may do (one scope per key).
        #[arg(long, value_parser = scope_values())]
        scope: String,
        #[arg(long)]
        name: String,
        /// The person who holds the key (an email or staff id): their keys count as one
        /// identity in the review queue.
        #[arg(long)]
        holder: Option<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Audit any CSV of decisions (from any system) by group.
    Fairness(Box<audit_cmd::FairnessArgs>),
    /// Audit Candor's own decision log by protected group; findings open or update incidents.
    Run {
        /// Protected attributes to slice by (default: `fairness.attributes`).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Only decisions of this surface (default: every surface, each audited on its own).
        #[arg(long)]
        surface: Option<String>,
        /// Days back to audit (default: `fairness.lookback_days`).
        #[arg(long)]
        since_days: Option<u32>,
        /// Members a group needs to be the four-fifths reference group.
        #[arg(long, default_value_t = candor_fairness::DEFAULT_MIN_REFERENCE_SIZE)]
        min_reference_size: u64,
        /// Also write the report: `.html` for the readable report, anything else for JSON.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete or anonymize data past its retention period now, and report what was removed.
    Run,
}

#[derive(Subcommand)]
enum AuditLogCommand {
    /// Recompute the hash chain; exit 1 naming the first broken entry.
    Verify,
}

/// The scopes as `--scope` values, each with what it allows (listed by `--help`).
fn scope_values() -> clap::builder::PossibleValuesParser {
    Scope::ALL
        .map(|s| clap::builder::PossibleValue::new(s.as_str()).help(s.description()))
        .into()
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Command::Audit(AuditCommand::Fairness(args)) = &cli.command {
        // Works on any CSV without a store or configuration.
        audit_cmd::run_fairness(args)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Command::Eval(args) = &cli.command {
        // Reads public data sets only; no store or configuration needed.
        eval_cmd::run_eval(args)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Command::Config(ConfigCommand::Check) = cli.command {
        // A check only reads: `Config::database_url` would create the data directory.
        println!(
            "# effective configuration (secrets masked)\n{}",
            config.redacted()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    init_logging(&config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Demo(args) => demo(config, args).await,
            Command::Keys(cmd) => keys(config, cmd).await,
            Command::AuditLog(AuditLogCommand::Verify) => verify(config).await,
            Command::Audit(AuditCommand::Run {
                groups,
                surface,
                since_days,
                min_reference_size,
                output,
            }) => {
                audit_run(
                    config,
                    groups,
                    surface,
                    since_days,
                    min_reference_size,
                    output,
                )
                .await
            }
            Command::Audit(AuditCommand::Fairness(_)) => unreachable!("handled above"),
            Command::Import(cmd) => import_cmd::run(config, cmd).await,
            Command::Config(_) | Command::Eval(_) => unreachable!("handled above"),
            Command::Train => train(config).await,
            Command::Retention(RetentionCommand::Run) => retention(config).await,
            Command::Subject(cmd) => subject_cmd::run(config, cmd).await,
            Command::Report(ReportCommand::Transparency {
                period,
                format,
                output,
            }) => transparency(config, &period, &format, output).await,
        }
    })
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    // Colour codes are for people at a terminal; in files and log shippers they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format {
        candor_app::config::LogFormat::Json => builder.json().init(),
        candor_app::config::LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Listens on `addr`, or says which address is taken and how to choose another.
async fn listen(addr: std::net::SocketAddr, other: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({other})"))
}

async fn serve_app(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
) -> Result<std::process::ExitCode> {
    let addr = listener.local_addr()?;
    let background = app.start_background().await?;
    tracing::info!(%addr, store = app.store_backend(), "candor serving");
    let grace = std::time::Duration::from_secs(app.config().server.shutdown_grace_secs);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(candor_http::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    tokio::select! {
        result = &mut server => result??,
        _ = shutdown_signal() => {
            let _ = stop.send(());
            // In-flight requests get `grace` to finish; then the rest are dropped.
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result??,
                Err(_) => {
                    tracing::warn!("grace period over; dropping remaining connections");
                    server.abort();
                }
            }
        }
    }
    background.shutdown().await;
    app.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(config: Config) -> Result<std::process::ExitCode> {
    let listener = listen(config.bind_addr(), "set server.bind to another address").await?;
    let app = App::open(config).await?;
    serve_app(app, listener).await
}

async fn demo(mut config: Config, args: DemoArgs) -> Result<std::process::ExitCode> {
    // Bound before anything is loaded: a busy port should cost a second, not the whole load.
    let listener = if args.no_serve {
        None
    } else {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
        Some(listen(addr, "pass --port N to use another port").await?)
    };
    let dir = match args.data_dir {
        Some(d) => {
            if d.exists() && d.read_dir()?.next().is_some() {
                bail!(
                    "{} is not empty; the demo needs a fresh data directory",
                    d.display()
                );
            }
            d
        }
        None => std::env::temp_dir().join(format!(
            "candor-demo-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
        )),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    config.data_dir = dir.clone();
    config.database_url = String::new();
    config.server.bind = format!("127.0.0.1:{}", args.port);
    config.retention = candor_app::demo::retention_rules();
    // Other commands (`retention run`, `train`, `audit-log verify`) run against the demo with
    // this file, so they apply the demo's rules too.
    let config_file = dir.join("candor.toml");
    std::fs::write(&config_file, demo_config_toml(&config))
        .with_context(|| format!("writing {}", config_file.display()))?;
    let app = App::open(config).await?;

    let now_day = app.now() / 1_000_000 / 86_400 * 86_400;
    let cfg = candor_app::demo::DemoConfig {
        seed: args.seed,
        customers: args.customers,
        products: args.products,
        now_unix: now_day,
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(cfg.customers as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "loading demo shop {bar:40} {pos}/{len} customers ({eta})",
    )?);
    let summary =
        candor_app::demo::load(&app, &cfg, |done, _| bar.set_position(done as u64)).await?;
    bar.finish_and_clear();
    // A very small demo may have nothing to train on or audit: say so and serve anyway.
    let base = format!("http://127.0.0.1:{}", args.port);
    let model = match app.train("demo", &|_| {}).await {
        Ok(m) => format!(
            "{} trained on {} consenting customers ({} chose the `full` level){}",
            m.version,
            m.subjects,
            summary.chose_full,
            match &m.review {
                None => String::new(),
                Some(id) => format!(
                    "\n                      held for human review as {id}: until a reviewer approves it, answers use popularity and declared interests only.\n                      approve: curl -X POST -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n                        -d '{{\"verdict\":\"approve\",\"reason\":\"checked the card: figures and consent basis\"}}' {base}/v1/reviews/{id}/decision",
                    summary.reviewer_key.secret
                ),
            }
        ),
        Err(e) => format!("not trained ({e})"),
    };
    let audit = match app
        .run_fairness("demo", &app.default_fairness_request())
        .await
    {
        Ok(a) => format!(
            "{} findings on {} decisions, opened as bias incidents",
            a.findings.len(),
            a.decisions
        ),
        Err(e) => format!("not run ({e})"),
    };

    println!("Candor demo: a synthetic shop, loaded through the same consent rules as real data");
    println!("  data directory      {}", dir.display());
    println!(
        "  config              {} (pass it as --config to other commands)",
        config_file.display()
    );
    println!(
        "  retention           the demo keeps events {} days (its data spans {}); the default rules are shorter",
        candor_app::demo::RETENTION_DAYS,
        cfg.days
    );
    println!("  purposes            {}", summary.purposes);
    println!(
        "  products            {} in {} categories (one sensitive: `{}`, health data)",
        summary.products,
        summary.categories,
        candor_app::demo::SENSITIVE_CATEGORY_ID
    );
    println!(
        "  customers           {} with {} consent records",
        summary.customers, summary.consent_records
    );
    println!(
        "  events kept         {} (dropped for lack of consent: {})",
        summary.events_kept, summary.events_dropped_without_consent
    );
    println!(
        "  offer decisions     {} (with a planted bias for the fairness audit to find)",
        summary.decisions
    );
    println!("  model               {model}");
    println!("  fairness audit      {audit}");
    println!();
    println!("  API                 {base}");
    println!("  API docs            {base}/docs/");
    println!("  OpenAPI             {base}/openapi.json");
    println!("  metrics             {base}/metrics");
    println!();
    println!("  admin key           {}", summary.admin_key.secret);
    println!("  ingestion write key {}", summary.ingest_key.secret);
    println!("  recommend key       {}", summary.recommend_key.secret);
    println!("  consent key         {}", summary.consent_key.secret);
    println!("  auditor key         {}", summary.auditor_key.secret);
    println!("  rights key          {}", summary.rights_key.secret);
    println!("  reviewer key        {}", summary.reviewer_key.secret);
    println!();
    let rk = &summary.recommend_key.secret;
    println!("  try:");
    println!("    curl -H 'Authorization: Bearer {rk}' {base}/v1/subjects/cust-0001/consents");
    println!(
        "    curl -H 'Authorization: Bearer {rk}' '{base}/v1/recommendations/cust-0001?surface=home&k=5'"
    );
    println!(
        "    curl -H 'Authorization: Bearer {}' '{base}/v1/audit/fairness/latest?format=html' > report.html",
        summary.auditor_key.secret
    );
    let Some(listener) = listener else {
        return Ok(std::process::ExitCode::SUCCESS);
    };
    println!("\nserving on {base} (Ctrl-C to stop)");
    serve_app(app, listener).await
}

/// The demo's configuration file: its data directory, address and retention rules.
fn demo_config_toml(config: &Config) -> String {
    let mut text = format!(
        "# Written by `candor demo`. Use it with other commands: candor --config THIS_FILE ...\n\
         data_dir = {:?}\n\n[server]\nbind = {:?}\n",
        config.data_dir.display().to_string(),
        config.server.bind
    );
    for r in &config.retention {
        text.push_str(&format!("\n[[retention]]\ncategory = {:?}\n", r.category));
        if let Some(d) = r.delete_after_days {
            text.push_str(&format!("delete_after_days = {d}\n"));
        }
        if let Some(d) = r.anonymize_after_days {
            text.push_str(&format!("anonymize_after_days = {d}\n"));
        }
    }
    text
}

async fn keys(config: Config, cmd: KeysCommand) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    match cmd {
        KeysCommand::Create {
            scope,
            name,
            holder,
        } => {
            let scope = Scope::parse(&scope).map_err(candor_app::AppError::from)?;
            let k = app
                .create_key_for("cli", &name, scope, holder.as_deref())
                .await?;
            println!("created {} key `{}` ({})", k.scope.as_str(), k.name, k.id);
            println!("secret (shown once, store it now): {}", k.secret);
        }
        KeysCommand::List => {
            println!(
                "{:<22} {:<10} {:<20} {:<24} status",
                "id", "scope", "prefix", "name"
            );
            for k in app.list_keys().await? {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<22} {:<10} {:<20} {:<24} {status}",
                    k.id,
                    k.scope.as_str(),
                    k.prefix,
                    k.name
                );
            }
        }
        KeysCommand::Revoke { id } => {
            app.revoke_key("cli", &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn audit_run(
    config: Config,
    groups: Vec<String>,
    surface: Option<String>,
    since_days: Option<u32>,
    min_reference_size: u64,
    output: Option<PathBuf>,
) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    let mut req = app.default_fairness_request();
    req.min_reference_size = min_reference_size;
    if !groups.is_empty() {
        req.attributes = groups;
    }
    req.surface = surface;
    if let Some(days) = since_days {
        req.since = app.now() - i64::from(days) * candor_domain::MICROS_PER_DAY;
    }
    // Without --surface every surface in the window is audited, each as its own run.
    let runs = app.run_fairness("cli", &req).await?;
    for run in &runs.runs {
        println!(
            "\n{}: audited {} decisions by {} (run {})",
            run.surface,
            run.decisions,
            req.attributes.join(" x "),
            run.run_id
        );
        if run.findings.is_empty() {
            println!("no findings above the thresholds");
        }
        for f in &run.findings {
            println!(
                "\n[{:?}] {}\n  {}\n  what to do: {}",
                f.severity, f.key, f.summary, f.action
            );
        }
        println!(
            "\nincidents opened: {:?}, updated: {:?}",
            run.incidents_opened, run.incidents_updated
        );
        if let Some(path) = &output {
            // Several surfaces: one file each, `report-offer.html`, `report-home.html`, ...
            let path = if runs.runs.len() > 1 {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let name = match path.extension() {
                    Some(e) => format!("{stem}-{}.{}", run.surface, e.to_string_lossy()),
                    None => format!("{stem}-{}", run.surface),
                };
                path.with_file_name(name)
            } else {
                path.clone()
            };
            let body = if path.extension().is_some_and(|e| e == "html") {
                candor_fairness::render_html(&run.report, &run.findings)
            } else {
                candor_fairness::render_json(&run.report, &run.findings)
            };
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
            println!("report written to {}", path.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn train(config: Config) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let report = app
        .train("cli", &|stage| spinner.set_message(stage.to_owned()))
        .await?;
    spinner.finish_and_clear();
    println!(
        "trained {} on {} consenting subjects ({} interactions, {} items); {} subjects left out for lack of consent; {}",
        report.version,
        report.subjects,
        report.interactions,
        report.items,
        report.subjects_excluded_without_consent,
        match &report.review {
            None => "active now".to_owned(),
            Some(id) => format!(
                "held for human review as {id} (a reviewer decides: POST /v1/reviews/{id}/decision)"
            ),
        }
    );
    Ok(std::process::ExitCode::SUCCESS)
}

async fn retention(config: Config) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    let r = app.run_retention("cli").await?;
    for (category, n) in &r.deleted {
        println!("deleted    {n:>8} {category} events past retention");
    }
    for (category, n) in &r.anonymized {
        println!("anonymized {n:>8} {category} events past retention");
    }
    println!(
        "deleted    {:>8} events of never-identified visitors",
        r.anonymous_sessions_deleted
    );
    Ok(std::process::ExitCode::SUCCESS)
}

async fn transparency(
    config: Config,
    period: &str,
    format: &str,
    output: Option<PathBuf>,
) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    let p = app.publish_transparency_report("cli", period).await?;
    let text = match format {
        "html" => candor_web::pages::transparency(&p.report, &p.signature, p.valid).into_string(),
        _ => serde_json::to_string_pretty(&serde_json::json!({
            "id": p.id,
            "signature": p.signature,
            "report": p.report,
        }))?,
    };
    match output {
        Some(path) => {
            std::fs::write(&path, text)?;
            eprintln!(
                "stored {} (signature {}); wrote {}",
                p.id,
                p.signature,
                path.display()
            );
        }
        None => println!("{text}"),
    }
    app.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Verifies the audit log and the privacy-budget ledger, both hash chains.
async fn verify(config: Config) -> Result<std::process::ExitCode> {
    let app = App::open(config).await?;
    let v = app.verify_audit_log().await?;
    let l = app.verify_budget_ledger().await?;
    let mut ok = true;
    match v.broken {
        None => println!(
            "audit log intact: {} entries, head {}",
            v.entries, v.head_hash
        ),
        Some(b) => {
            println!("audit log BROKEN at entry {}: {}", b.seq, b.reason);
            ok = false;
        }
    }
    match l.broken {
        None => println!(
            "budget ledger intact: {} rows, head {}",
            l.rows, l.head_hash
        ),
        Some(b) => {
            println!("budget ledger BROKEN at row {}: {}", b.seq, b.reason);
            ok = false;
        }
    }
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
