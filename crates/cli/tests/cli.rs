//! The `candor` binary as an operator runs it: real processes, a real SQLite file.

use std::process::Command;

mod common;

use common::{Dir, candor, text};

fn temp(name: &str) -> Dir {
    common::temp("cli", name)
}

#[test]
fn config_check_masks_secrets_and_names_bad_files() {
    let dir = temp("config");
    let file = dir.path().join("candor.toml");
    std::fs::write(&file, "[privacy]\npseudonymization_key = \"super-secret-pseudonymization-key-123456\"\n[server]\nbind = \"127.0.0.1:9999\"\n").unwrap();
    let o = candor(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "check"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("127.0.0.1:9999") && out.contains("***") && !out.contains("super-secret"),
        "{out}"
    );

    std::fs::write(&file, "[server]\nbind = 9999\n").unwrap();
    let o = candor(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("candor.toml") && text(&o).contains("bind"),
        "{}",
        text(&o)
    );
    let o = candor(
        dir.path(),
        &["--config", "/nonexistent/candor.toml", "config", "check"],
    );
    assert!(!o.status.success() && text(&o).contains("/nonexistent/candor.toml"));
}

#[test]
fn keys_are_created_listed_and_revoked_without_showing_secrets_again() {
    let dir = temp("keys");
    let o = candor(
        dir.path(),
        &["keys", "create", "--scope", "admin", "--name", "ops"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("cnd_admin_"))
        .expect("secret printed")
        .to_owned();
    let id = out.split(['(', ')']).nth(1).unwrap().to_owned();
    let list = text(&candor(dir.path(), &["keys", "list"]));
    assert!(
        list.contains("ops") && list.contains("active") && !list.contains(&secret),
        "{list}"
    );
    assert!(
        candor(dir.path(), &["keys", "revoke", &id])
            .status
            .success()
    );
    assert!(text(&candor(dir.path(), &["keys", "list"])).contains("revoked"));
    let o = candor(dir.path(), &["keys", "revoke", &id]);
    assert!(!o.status.success() && text(&o).contains("not found"));
    let o = candor(
        dir.path(),
        &["keys", "create", "--scope", "root", "--name", "x"],
    );
    assert!(!o.status.success() && text(&o).contains("scope"));
}

#[tokio::test]
async fn audit_log_verify_names_the_altered_and_the_deleted_entry() {
    let dir = temp("audit");
    for name in ["a", "b", "c", "d"] {
        assert!(
            candor(
                dir.path(),
                &["keys", "create", "--scope", "auditor", "--name", name]
            )
            .status
            .success()
        );
    }
    let o = candor(dir.path(), &["audit-log", "verify"]);
    assert!(
        o.status.success() && text(&o).contains("intact: 4 entries"),
        "{}",
        text(&o)
    );

    let url = format!("sqlite://{}", dir.path().join("candor.db").display());
    let exec = |sql: &'static str| {
        let url = url.clone();
        async move {
            candor_store::testing::execute_raw(&url, sql).await.unwrap();
        }
    };
    exec(
        "UPDATE audit_log SET details = '{\"name\":\"mallory\",\"scope\":\"admin\"}' WHERE seq = 2",
    )
    .await;
    let o = candor(dir.path(), &["audit-log", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("BROKEN at entry 2"), "{}", text(&o));

    let dir2 = temp("audit-delete");
    for name in ["a", "b", "c"] {
        candor(
            dir2.path(),
            &["keys", "create", "--scope", "auditor", "--name", name],
        );
    }
    let url2 = format!("sqlite://{}", dir2.path().join("candor.db").display());
    candor_store::testing::execute_raw(&url2, "DELETE FROM audit_log WHERE seq = 3")
        .await
        .unwrap();
    let o = candor(dir2.path(), &["audit-log", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("BROKEN at entry 3"), "{}", text(&o));
}

/// `candor demo` with a small shop in `target`, plus `extra` arguments.
fn small_demo(target: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "demo",
        "--customers",
        "150",
        "--products",
        "300",
        "--data-dir",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(target.display().to_string());
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[test]
fn demo_loads_a_fresh_directory_and_refuses_a_used_one() {
    let dir = temp("demo");
    let target = dir.path().join("shop");
    let o = candor(
        dir.path(),
        &small_demo(&target, &["--no-serve"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for needle in [
        "customers           150",
        "admin key           cnd_admin_",
        "ingestion write key cnd_ingest_",
        "/openapi.json",
        "events kept",
        // the id a client sends to opt in, not a name the API does not know
        "one sensitive: `pharmacy`",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    let o = candor(
        dir.path(),
        &["demo", "--no-serve", "--data-dir", target.to_str().unwrap()],
    );
    assert!(!o.status.success() && text(&o).contains("not empty"));
    // A model trains on the demo's consented data; its activation waits for a reviewer (the
    // demo's first model already does: the same data gives the same version and item).
    let o = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["train"])
        .env("CANDOR_DATA_DIR", &target)
        .env("CANDOR_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("held for human review as rev_"),
        "{}",
        text(&o)
    );
    // The demo's own log is intact.
    let o = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["audit-log", "verify"])
        .env("CANDOR_DATA_DIR", &target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Retention with the demo's config file keeps every event: the demo's data spans 180 days,
    // past the default 90-day browsing rule, so it runs with rules of its own.
    let config = target.join("candor.toml");
    assert!(out.contains(config.to_str().unwrap()), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["--config", config.to_str().unwrap(), "retention", "run"])
        .env("CANDOR_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let report = text(&o);
    assert!(o.status.success(), "{report}");
    assert!(
        report.contains("deleted           0 browsing events"),
        "the demo lost events to retention:\n{report}"
    );
}

#[test]
fn config_check_creates_nothing() {
    let dir = temp("config-nothing");
    let data = dir.path().join("not-yet");
    let o = candor(&data, &["config", "check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not-yet"), "{}", text(&o));
    assert!(!data.exists(), "config check created {}", data.display());
}

#[test]
fn keys_create_help_lists_every_scope_and_what_it_allows() {
    let dir = temp("keys-help");
    let o = candor(dir.path(), &["keys", "create", "--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for scope in candor_domain::Scope::ALL {
        let line = out
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("- {}:", scope.as_str()))
            })
            .unwrap_or_else(|| panic!("`{}` not listed:\n{out}", scope.as_str()));
        assert!(line.contains(scope.description()), "{line}");
    }
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let dir = temp("ansi");
    let o = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["keys", "list"])
        .env_remove("CANDOR_CONFIG")
        .env("CANDOR_DATA_DIR", dir.path())
        .env("CANDOR_LOG__LEVEL", "debug")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!o.stderr.is_empty(), "debug logging printed nothing");
    assert!(
        !o.stderr.contains(&0x1b),
        "escape codes in piped logs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn demo_on_a_busy_port_fails_before_loading_anything() {
    let dir = temp("demo-port");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let target = dir.path().join("shop");
    let started = std::time::Instant::now();
    let o = candor(
        dir.path(),
        &small_demo(&target, &["--port", &port])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!("127.0.0.1:{port}")) && t.contains("--port"),
        "names the address and the way out: {t}"
    );
    assert!(!target.exists(), "the demo loaded data before binding");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
