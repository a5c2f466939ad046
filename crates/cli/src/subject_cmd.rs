//! `candor subject ...`: a person's rights from the command line (export, erase, verify a
//! receipt), over the same use cases as the API.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candor_app::{App, Config};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum SubjectCommand {
    /// Export everything held on a subject (audited as data access).
    Export {
        /// The subject's user id, as your systems know it.
        id: String,
        /// `json` (one document) or `csv` (a zip of one CSV file per section).
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
        /// Write here instead of standard output (required for csv).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase a subject (or every id in --file, one per line) and print the signed receipt.
    Erase {
        /// The subject's user id.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        id: Option<String>,
        /// A file of user ids, one per line (blank lines and `#` comments skipped).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Drop and count later events for the subject at ingestion.
        #[arg(long)]
        suppress: bool,
        /// Write the receipt(s) into this directory, one `<request id>.json` each.
        #[arg(long)]
        receipts: Option<PathBuf>,
    },
    /// Print a signed link to the subject's preference center (valid for --ttl; raise
    /// `pages.link_key_id` to revoke every link issued).
    Link {
        /// The subject's user id.
        id: String,
        /// How long it is valid: 7d, 12h, 30m or seconds (at most 90 days).
        #[arg(long, default_value = "7d")]
        ttl: String,
    },
    /// Check an erasure receipt offline: its signature and every field.
    VerifyReceipt {
        file: PathBuf,
        /// The server's public key (64 hex characters, from
        /// `/.well-known/candor-receipt-key`); default: derived from this node's master key.
        #[arg(long)]
        public_key: Option<String>,
    },
}

pub async fn run(config: Config, cmd: SubjectCommand) -> Result<std::process::ExitCode> {
    if let SubjectCommand::VerifyReceipt { file, public_key } = cmd {
        return verify(&config, &file, public_key.as_deref());
    }
    let app = App::open(config).await?;
    let result = match cmd {
        SubjectCommand::Export { id, format, out } => export(&app, &id, &format, out).await,
        SubjectCommand::Erase {
            id,
            file,
            suppress,
            receipts,
        } => erase(&app, id, file, suppress, receipts).await,
        SubjectCommand::Link { id, ttl } => link(&app, &id, &ttl),
        SubjectCommand::VerifyReceipt { .. } => unreachable!("handled above"),
    };
    app.close().await;
    result.map(|()| std::process::ExitCode::SUCCESS)
}

fn link(app: &App, id: &str, ttl: &str) -> Result<()> {
    let ttl = candor_app::access::links::parse_ttl(ttl)?;
    let link = app.issue_subject_link(id, Some(ttl))?;
    println!("{}", link.url);
    eprintln!(
        "valid until {}",
        candor_domain::format_micros(link.expires_at)
    );
    Ok(())
}

async fn export(app: &App, id: &str, format: &str, out: Option<PathBuf>) -> Result<()> {
    let export = app.export_subject("cli", id).await?;
    let bytes = if format == "csv" {
        if out.is_none() {
            bail!("a csv export is a zip file: pass --out FILE.zip");
        }
        export.to_csv_zip()?
    } else {
        export.to_json().into_bytes()
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("export written to {}", path.display());
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

async fn erase(
    app: &App,
    id: Option<String>,
    file: Option<PathBuf>,
    suppress: bool,
    receipts: Option<PathBuf>,
) -> Result<()> {
    let save = |request_id: &str, body: &str| -> Result<()> {
        if let Some(dir) = &receipts {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{request_id}.json"));
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    };
    if let Some(id) = id {
        let done = app.erase_subject("cli", &id, suppress).await?;
        save(&done.receipt.request_id, &done.body)?;
        println!("{}", done.body);
        if !done.erased_now {
            eprintln!("(already erased: this is the first receipt)");
        }
        return Ok(());
    }
    let path = file.expect("clap requires an id or --file");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let started = std::time::Instant::now();
    let report = app.erase_subjects("cli", &ids, suppress).await?;
    for r in &report.receipts {
        save(&r.request_id, &serde_json::to_string_pretty(r)?)?;
    }
    println!(
        "{} erased, {} already erased, {} unknown, in {:.2} s",
        report.erased,
        report.already_erased,
        report.unknown.len(),
        started.elapsed().as_secs_f64()
    );
    for i in &report.unknown {
        println!("unknown: line with id #{}", i + 1);
    }
    Ok(())
}

fn verify(
    config: &Config,
    file: &PathBuf,
    public_key: Option<&str>,
) -> Result<std::process::ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let key = match public_key {
        Some(hex) => candor_domain::receipt::parse_public_key(hex)?,
        None => {
            let master = config
                .master_key()
                .context("no --public-key given and this node's master key is not available")?;
            let signer = candor_domain::ReceiptSigner::from_master(&master);
            candor_domain::receipt::parse_public_key(&signer.public_key_hex())?
        }
    };
    match candor_domain::receipt::verify(&text, &key) {
        Ok(r) => {
            println!(
                "valid: receipt {} for subject {} erased at {}, signed by {}",
                r.request_id, r.subject_key, r.erased_at, r.key_id
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("INVALID: {e}");
            Ok(std::process::ExitCode::from(1))
        }
    }
}
