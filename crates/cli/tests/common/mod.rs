//! Running the real `candor` binary on a throwaway data directory.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub use candor_store::testing::TempDir as Dir;

/// A fresh directory named after the test file (`prefix`) and case (`name`).
pub fn temp(prefix: &str, name: &str) -> Dir {
    Dir::new(&format!("{prefix}-{name}"))
}

/// Runs `candor ARGS` with `data_dir` as its data directory and no ambient configuration.
pub fn candor(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(args)
        .env_remove("CANDOR_CONFIG")
        .env_remove("CANDOR_DATABASE_URL")
        .env("CANDOR_DATA_DIR", data_dir)
        .env("CANDOR_LOG__LEVEL", "warn")
        .output()
        .expect("run candor")
}

/// Standard output and error together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
