//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`: a forbidden edge
//! fails this test, naming the crate, the dependency and the rule.
//!
//! Rules (every kind of dependency counts: normal, build and dev):
//! - `candor-domain` is the pure core: it depends on no other Candor crate and on nothing that
//!   does I/O (no database, HTTP, async runtime or file-watching crate).
//! - Only `candor-http` knows HTTP: no other crate depends on axum, tower-http, utoipa-axum or
//!   utoipa-swagger-ui.
//! - Only `candor-store` knows SQL: no other crate depends on sqlx or rusqlite.
//! - Candor's own crates form layers, and dependencies point down only.

use std::collections::BTreeMap;
use std::process::Command;

/// Each crate of ours, with the layer it sits in: a crate may depend only on crates of a
/// strictly lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("candor-domain", 0),
    ("candor-fairness", 0),
    ("candor-recommend", 0),
    ("candor-demo", 0),
    ("candor-analytics", 0),
    ("candor-store", 1),
    ("candor-web", 1),
    ("candor-app", 2),
    ("candor-http", 3),
    ("candor", 4),
    ("candor-bench", 4),
];

const IO_CRATES: &[&str] = &[
    "sqlx",
    "rusqlite",
    "tokio",
    "axum",
    "hyper",
    "reqwest",
    "tower",
    "tower-http",
    "metrics-exporter-prometheus",
];
const HTTP_CRATES: &[&str] = &["axum", "tower-http", "utoipa-axum", "utoipa-swagger-ui"];
const SQL_CRATES: &[&str] = &["sqlx", "rusqlite"];

/// (crate, dependency) for every dependency of every workspace member.
fn edges() -> Vec<(String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut edges = Vec::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        for dep in package["dependencies"].as_array().expect("dependencies") {
            // A crate's dev-dependency on itself (to switch on its own test features) is no edge.
            let dep = dep["name"].as_str().expect("dependency name").to_owned();
            if dep != name {
                edges.push((name.clone(), dep));
            }
        }
    }
    edges
}

/// Every rule an edge breaks, in words.
fn violations(edges: &[(String, String)]) -> Vec<String> {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut found = Vec::new();
    for (from, to) in edges {
        if from == "candor-domain" && (IO_CRATES.contains(&to.as_str()) || to.starts_with("candor"))
        {
            found.push(format!(
                "{from} -> {to}: the domain crate does no I/O and depends on no Candor crate"
            ));
        }
        if from != "candor-http" && HTTP_CRATES.contains(&to.as_str()) {
            found.push(format!("{from} -> {to}: only candor-http knows HTTP"));
        }
        if from != "candor-store" && SQL_CRATES.contains(&to.as_str()) {
            found.push(format!("{from} -> {to}: only candor-store knows SQL"));
        }
        if let (Some(&a), Some(&b)) = (layer.get(from.as_str()), layer.get(to.as_str()))
            && b >= a
        {
            found.push(format!(
                "{from} -> {to}: dependencies point down the layers ({from} is layer {a}, {to} layer {b})"
            ));
        }
    }
    found
}

#[test]
fn the_workspace_keeps_its_dependency_rules() {
    let edges = edges();
    let ours: Vec<&str> = {
        let mut v: Vec<&str> = edges.iter().map(|(from, _)| from.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for (name, _) in LAYERS {
        assert!(
            ours.contains(name),
            "{name} is listed in LAYERS but not in the workspace"
        );
    }
    for name in &ours {
        assert!(
            LAYERS.iter().any(|(n, _)| n == name),
            "{name} is a workspace crate without a layer: add it to LAYERS and ARCHITECTURE.md"
        );
    }
    let found = violations(&edges);
    assert!(found.is_empty(), "forbidden edges:\n{}", found.join("\n"));
}

#[test]
fn each_rule_catches_the_edge_it_forbids() {
    let edge = |a: &str, b: &str| vec![(a.to_owned(), b.to_owned())];
    for (edges, rule) in [
        (edge("candor-domain", "sqlx"), "does no I/O"),
        (edge("candor-domain", "candor-store"), "does no I/O"),
        (edge("candor-app", "axum"), "only candor-http knows HTTP"),
        (edge("candor-web", "axum"), "only candor-http knows HTTP"),
        (edge("candor-app", "sqlx"), "only candor-store knows SQL"),
        (
            edge("candor-http", "rusqlite"),
            "only candor-store knows SQL",
        ),
        (edge("candor-store", "candor-app"), "point down the layers"),
        (edge("candor-app", "candor-http"), "point down the layers"),
    ] {
        let found = violations(&edges);
        assert!(
            found.iter().any(|f| f.contains(rule)),
            "{edges:?} should break `{rule}`: {found:?}"
        );
    }
    assert!(violations(&edge("candor-http", "axum")).is_empty());
    assert!(violations(&edge("candor-app", "candor-store")).is_empty());
}
