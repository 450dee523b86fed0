//! `itdr assess` end to end: a short simulated run with `[output] reports` writes one report
//! per tenant at the end; `itdr assess` then rebuilds a tenant's report, compares it with the
//! earlier one and appends the findings to the events file as OCSF Compliance Findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn itdr(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_itdr"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("itdr runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

const CONFIG: &str = r#"
[store]
path = "out/itdr.db"
fresh = true

[output]
events = "out/events.ndjson"
dead_letters = "out/dead-letters.ndjson"
truncate = true
reports = "out/reports"

[schedule]
interval_secs = 300
stop_after_secs = 3600

[poll.cursor]
initial_lookback_secs = 3600
sweep_interval_secs = 3600

[management_activity]
publisher_id = "3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1"

[simulator]
seed = 5
speed = 3600
start = "2026-11-02T09:00:00Z"

[[simulator.tenants]]
org = "With P1"
cloud = "global"

[[simulator.tenants]]
org = "Without P1"
cloud = "global"
p1 = false
"#;

fn reports(dir: &Path) -> Vec<serde_json::Value> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("out/reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    v.sort_by_key(|r: &serde_json::Value| r["tenant"]["org"].to_string());
    v
}

fn findings_in_events(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("out/events.ndjson"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"class_uid\":2003"))
        .count()
}

#[test]
fn run_writes_a_report_per_tenant_and_assess_compares_with_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.toml"), CONFIG).unwrap();
    let out = itdr(&["run", "--config", "run.toml", "--json"], dir.path());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));

    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../shared/schemas/assessment-report.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let first = reports(dir.path());
    assert_eq!(first.len(), 2, "one report per tenant");
    for r in &first {
        let errs: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errs.is_empty(), "{errs:?}");
        let id = r["tenant"]["id"].as_str().unwrap();
        let name = r["tenant"]["domain"].as_str().unwrap_or(id);
        let html =
            std::fs::read_to_string(dir.path().join(format!("out/reports/{name}.html"))).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("section-legacy_auth"));
        assert!(r["changes"].is_null(), "nothing to compare with yet");
    }
    let (p1, no_p1) = (&first[0], &first[1]);
    assert_eq!(p1["tenant"]["org"], "With P1");
    assert!(p1["coverage"]["sign_ins"].as_u64().unwrap() > 0);
    assert!(no_p1["coverage"]["sign_ins"].is_null());
    let emitted = findings_in_events(dir.path());
    let total_findings: usize = first
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(emitted, total_findings, "every finding is an OCSF event");

    // Again for one tenant, by GUID: compared with the report the run wrote.
    let id = p1["tenant"]["id"].as_str().unwrap();
    let out = itdr(
        &["assess", "--config", "run.toml", "--tenant", id, "--json"],
        dir.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written[0]["tenant_id"], id);
    assert_eq!(written[0]["compared"], true);
    let again = reports(dir.path());
    let changes = &again[0]["changes"];
    assert_eq!(
        changes["still_open"].as_array().unwrap().len(),
        p1["findings"].as_array().unwrap().len(),
        "same data, same findings: all still open, none fixed or new"
    );
    assert_eq!(changes["fixed"], serde_json::json!([]));
    assert_eq!(changes["new"], serde_json::json!([]));
    assert!(findings_in_events(dir.path()) > emitted);

    let out = itdr(
        &[
            "assess",
            "--config",
            "run.toml",
            "--tenant",
            "nobody.example",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not registered"),
        "{}",
        text(&out.stderr)
    );
}
