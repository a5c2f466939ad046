//! The README's commands, run in order on a demo as a new user would run them: the quick
//! start's `curl` calls against `candor demo`, then the "Running for real" commands that apply to
//! a demo (with its `--config`). Each must succeed; the commands are read from README.md itself,
//! so the README cannot drift from what works.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The lines of the first ```sh block after `marker` in the README, comments stripped.
fn sh_block_after(readme: &str, marker: &str) -> Vec<String> {
    let rest = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no `{marker}`"))..];
    let start = rest.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let block = &rest[start..start + rest[start..].find("```").expect("closed block")];
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        // Continuation lines join the command before them.
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
        .into_iter()
        .map(|l| match l.find("  #") {
            Some(i) => l[..i].trim().to_owned(),
            None => l.trim().to_owned(),
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The value printed after `label` in the demo's banner.
fn banner_value(banner: &str, label: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in the demo banner:\n{banner}"))
        .trim()
        .to_owned()
}

#[test]
fn the_readme_commands_work_on_the_demo() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let dir = common::temp("readme", "walk");
    let data = dir.path().join("demo");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args([
            "demo",
            "--port",
            &port,
            "--customers",
            "200",
            "--products",
            "400",
        ])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("CANDOR_CONFIG")
        .env("CANDOR_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut banner = String::new();
    let mut out = BufReader::new(demo.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = demo.kill();
            panic!("the demo stopped before serving:\n{banner}");
        }
        banner.push_str(&line);
        if line.starts_with("serving on") {
            break;
        }
    }
    let keys = [
        ("$ADMIN_KEY", banner_value(&banner, "admin key")),
        ("$INGEST_KEY", banner_value(&banner, "ingestion write key")),
        ("$RECOMMEND_KEY", banner_value(&banner, "recommend key")),
        ("$CONSENT_KEY", banner_value(&banner, "consent key")),
        ("$AUDITOR_KEY", banner_value(&banner, "auditor key")),
        ("$RIGHTS_KEY", banner_value(&banner, "rights key")),
    ];
    let config = data.join("candor.toml");

    let mut failures = Vec::new();
    let mut run = |shown: &str, command: String| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(dir.path())
            .env_remove("CANDOR_CONFIG")
            .env("CANDOR_LOG__LEVEL", "warn")
            .output()
            .expect("run sh");
        if !o.status.success() {
            failures.push(format!(
                "`{shown}` failed ({}):\n{}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    };

    // 1. The quick start's calls, against the demo on its port; an HTTP error fails the call.
    let quick = sh_block_after(&readme, "and try, for example:");
    assert!(quick.len() >= 5, "{quick:?}");
    for line in &quick {
        assert!(line.starts_with("curl "), "not a curl call: {line}");
        let mut command = line
            .replacen("curl ", "curl -sS --fail-with-body -o /dev/null ", 1)
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        for (var, value) in &keys {
            command = command.replace(var, value);
        }
        // `> report.html` already sends the body somewhere; keep the README's redirect.
        if command.contains("> ") {
            command = command.replacen(" -o /dev/null", "", 1);
        }
        run(line, command);
    }

    // 2. "Running for real", where a command applies to a demo: with the demo's config file.
    let real = sh_block_after(&readme, "## Running for real");
    let mut walked = 0;
    for line in &real {
        let args = line.strip_prefix("candor ").expect("a candor command");
        // A server (the demo already serves), and commands that need files of your own.
        if args.starts_with("serve")
            || args.starts_with("import ")
            || args.starts_with("eval ")
            || args.starts_with("audit fairness ")
        {
            continue;
        }
        let args = args.replace("--config candor.toml", "");
        run(
            line,
            format!(
                "{} --config {} {args}",
                env!("CARGO_BIN_EXE_candor"),
                config.display()
            ),
        );
        walked += 1;
    }
    assert!(walked >= 5, "{real:?}");
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
