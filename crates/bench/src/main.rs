//! `candor-bench`: Candor's benchmarks, kept out of the server binary.
//!
//! Each subcommand runs on a throwaway store (a temporary data directory, or a throwaway
//! PostgreSQL database with `--postgres URL`), drives the product only through its use cases
//! and its HTTP API, and prints figures against the targets recorded in `docs/BENCHMARKS.md`.
//! Run it in release mode: `cargo run --release -p candor-bench -- ingest --events 2000000`.
#![forbid(unsafe_code)]

mod analytics;
mod catalog;
mod common;
mod feedback;
mod ingest;
mod journeys;
mod pages;
mod recommend;
mod rights;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candor_app::Config;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "candor-bench", version, about = "Candor's benchmarks")]
struct Cli {
    /// Configuration file (TOML) whose settings the throwaway node starts from. CANDOR_*
    /// environment variables override it.
    #[arg(long, global = true, env = "CANDOR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: common::BenchCommand,
}

/// Exit 0 with the figures printed, or 2 with the reason the benchmark could not run.
fn main() -> std::process::ExitCode {
    run(Cli::parse()).unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        std::process::ExitCode::from(2)
    })
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(common::run(config, cli.command))
}
