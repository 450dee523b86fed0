//! The `itdr` binary end to end: a short accelerated run against the in-process simulator
//! (every event it writes is valid OCSF 1.8.0 and nothing is lost), the tenant registry
//! commands, and clear errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/integration/tests/common/ocsf.rs"]
mod ocsf;

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

[schedule]
interval_secs = 300
stop_after_secs = 21600

[poll.cursor]
initial_lookback_secs = 3600
sweep_interval_secs = 3600

[management_activity]
publisher_id = "3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1"

[simulator]
seed = 3
speed = 3600
start = "2026-11-02T09:00:00Z"

[[simulator.tenants]]
org = "Commercial"
cloud = "global"

[[simulator.tenants]]
org = "Gov"
cloud = "gcc_high"

[[simulator.tenants]]
org = "Revoked"
cloud = "gcc"
revoke_consent_after_secs = 7200
"#;

#[test]
fn a_short_simulated_run_writes_valid_ocsf_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.toml"), CONFIG).unwrap();
    let out = itdr(&["run", "--config", "run.toml", "--json"], dir.path());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = summary["rows"].as_array().unwrap();
    // Three tenants, each with three log streams and six inventory streams.
    assert_eq!(rows.len(), 27);
    let is_log = |r: &&serde_json::Value| {
        ["signins", "directory_audits", "unified_audit"].contains(&r["stream"].as_str().unwrap())
    };
    let logs: Vec<_> = rows.iter().filter(is_log).collect();
    assert_eq!(logs.len(), 9, "three tenants, three log streams");
    for r in &logs {
        assert_eq!(r["lost"], 0, "{r}");
        assert!(r["generated"].as_u64().unwrap() > 0, "{r}");
        // Freshness from visibility is reported beside freshness from the event's own time.
        // (How fresh is timing: at 3,600 simulated seconds per real second, a busy machine
        // moves it by minutes, so its figures belong to `make run` and the benches.)
        // (History read by the first poll does not count for either.)
        if let Some(vis) = r["from_visible_p50_secs"].as_u64() {
            assert!(r["freshness_p50_secs"].as_u64().is_some(), "{r}");
            assert!(r["from_visible_p99_secs"].as_u64().unwrap() >= vis, "{r}");
        }
    }
    assert!(
        logs.iter()
            .any(|r| r["from_visible_p50_secs"].as_u64().is_some()),
        "freshness from visibility is reported"
    );
    // Inventory streams are snapshots: nothing to compare with a ground truth.
    for r in rows.iter().filter(|r| !is_log(r)) {
        assert!(r["lost"].is_null() && r["generated"].is_null(), "{r}");
    }
    let unified: Vec<_> = rows
        .iter()
        .filter(|r| r["stream"] == "unified_audit")
        .collect();
    assert_eq!(unified.len(), 3);
    assert!(
        unified
            .iter()
            .all(|r| r["emitted"].as_u64().unwrap() > 0 && r["dead_letters"] == 0),
        "{unified:?}"
    );
    let revoked: Vec<_> = rows.iter().filter(|r| r["org"] == "Revoked").collect();
    assert!(
        revoked.iter().all(|r| r["health"] == "consent_revoked"),
        "{revoked:?}"
    );
    assert_eq!(summary["app_level_429"], 0);

    let events = std::fs::read_to_string(dir.path().join("out/events.ndjson")).unwrap();
    let mut n = 0;
    for line in events.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        let errs = ocsf::all_errors(&ev);
        assert!(errs.is_empty(), "line {}: {errs:?}", n + 1);
        n += 1;
    }
    assert!(n > 100, "{n} events");
    // Secrets of the simulated apps never reach the outputs.
    assert!(!events.contains("sim~"));
    assert!(!text(&out.stderr).contains("sim~"));
}

#[test]
fn tenants_are_validated_registered_listed_and_offboarded() {
    let dir = tempfile::tempdir().unwrap();
    let db = "reg.db";
    let bad = itdr(
        &[
            "tenants", "--db", db, "add", "--tenant", "contoso", "--org", "X",
        ],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("is not a tenant"),
        "{}",
        text(&bad.stderr)
    );
    let bad = itdr(
        &[
            "tenants",
            "--db",
            db,
            "add",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--org",
            "X",
            "--cloud",
            "global",
            "--domain",
            "not a domain",
        ],
        dir.path(),
    );
    assert!(text(&bad.stderr).contains("is not a domain name"));
    let ok = itdr(
        &[
            "tenants",
            "--db",
            db,
            "add",
            "--tenant",
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "--org",
            "Able Moose",
            "--domain",
            "ablemoose.onmicrosoft.us",
            "--cloud",
            "gcc_high",
        ],
        dir.path(),
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("usgov poller"));
    let dup = itdr(
        &[
            "tenants",
            "--db",
            db,
            "add",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--org",
            "Other",
            "--cloud",
            "gcc_high",
        ],
        dir.path(),
    );
    assert!(!dup.status.success(), "a tenant maps to one organization");
    let list = itdr(&["tenants", "--db", db, "list", "--json"], dir.path());
    let all: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(all[0]["tenant_id"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(all[0]["cloud"], "gcc_high");
    let off = itdr(
        &[
            "tenants",
            "--db",
            db,
            "remove",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ],
        dir.path(),
    );
    assert!(off.status.success());
    let list = itdr(&["tenants", "--db", db, "list", "--json"], dir.path());
    let all: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(all[0]["enabled"], false);
    assert_eq!(all[0]["health"]["state"], "offboarded");
    let purge = itdr(
        &[
            "tenants",
            "--db",
            db,
            "remove",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--purge",
        ],
        dir.path(),
    );
    assert!(purge.status.success());
    let list = itdr(&["tenants", "--db", db, "list", "--json"], dir.path());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn bad_configs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = itdr(&["run", "--config", "nope.toml"], dir.path());
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("cannot read config file nope.toml"));
    std::fs::write(
        dir.path().join("bad.toml"),
        "endpoint_override='http://10.0.0.1:80'\n[store]\npath='x.db'\n[output]\nevents='e'\ndead_letters='d'\n",
    )
    .unwrap();
    let bad = itdr(&["run", "--config", "bad.toml", "--once"], dir.path());
    assert!(!bad.status.success());
    let err = text(&bad.stderr);
    assert!(err.contains("loopback"), "{err}");
}

/// A value that must never be printed: it stands for a client secret in a wrong place.
const SECRET: &str = "Zq9~PASTED.s3cr3t-value_0042";

const BASE: &str =
    "[store]\npath = 'x.db'\n[output]\nevents = 'e.ndjson'\ndead_letters = 'd.ndjson'\n";

#[test]
fn config_errors_never_print_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A secret under a key that does not exist.
        (
            format!("{BASE}[apps.commercial]\nclient_id = 'x'\nclient_secret = \"{SECRET}\"\n"),
            "line 8, column 1",
            "unknown field",
        ),
        // A TOML syntax error on the secret's line.
        (
            format!("{BASE}[apps.commercial]\nclient_id = 'x'\nclient_secret_env = \"{SECRET}\n"),
            "line 8",
            "invalid basic string",
        ),
        // A secret where a number is expected.
        (
            format!("{BASE}[schedule]\ninterval_secs = \"{SECRET}\"\n"),
            "line 7, column 17",
            "invalid type",
        ),
        // A secret pasted into client_secret_env instead of the variable's name.
        (
            format!("{BASE}[apps.commercial]\nclient_id = 'x'\nclient_secret_env = \"{SECRET}\"\n"),
            "[apps.commercial] client_secret_env is not an environment variable name",
            "not to the secret",
        ),
    ];
    for (i, (config, position, what)) in cases.iter().enumerate() {
        let file = format!("c{i}.toml");
        std::fs::write(dir.path().join(&file), config).unwrap();
        for args in [
            vec!["run", "--config", &file, "--once"],
            vec!["--config", &file, "preflight", "--tenant", "contoso.com"],
        ] {
            let out = itdr(&args, dir.path());
            assert!(!out.status.success(), "case {i}: {args:?}");
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            for shown in [&stdout, &stderr] {
                assert!(
                    !shown.contains("s3cr3t") && !shown.contains("PASTED"),
                    "case {i} {args:?} printed the secret: {shown}"
                );
            }
            assert!(stderr.contains(position), "case {i}: {stderr}");
            assert!(stderr.contains(what), "case {i}: {stderr}");
            assert!(stderr.contains(&file), "case {i} names the file: {stderr}");
        }
    }
}

#[test]
fn the_readme_poller_group_names_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for (i, spelling) in ["usgov", "us_gov", "us-gov"].iter().enumerate() {
        // A valid configuration up to a deliberately bad schedule: the error must be about
        // the schedule, i.e. the groups were read.
        let file = format!("g{i}.toml");
        std::fs::write(
            dir.path().join(&file),
            format!(
                "{BASE}[schedule]\ninterval_secs = 0\n[deployment]\ngroups = [\"commercial\", \"{spelling}\"]\n"
            ),
        )
        .unwrap();
        let out = itdr(&["run", "--config", &file, "--once"], dir.path());
        let err = text(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("interval_secs must be between 1 and 86400"),
            "{spelling}: {err}"
        );
    }
}

fn itdr_with_stdin(args: &[&str], dir: &Path, stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_itdr"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("itdr runs");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().expect("itdr ends");
    writer.join().expect("writer").expect("stdin written");
    out
}

const SIGNIN: &str = r#"{"id":"66ea54eb-6301-4ee5-be62-ff5a759b0100","createdDateTime":"2024-05-01T19:15:41.6195833Z","userPrincipalName":"secret.person@contoso.com","userId":"26be570a-ae82-4189-b4e2-a37c6808512d","appDisplayName":"Graph Explorer","resourceDisplayName":"Microsoft Graph","ipAddress":"131.107.159.37","status":{"errorCode":0}}"#;

fn events(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn normalize_reports_non_utf8_and_bad_lines_by_number_keeps_the_rest_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    // A byte-order mark, then a good line, a line that is not UTF-8, one that is not JSON,
    // one without an id, and a last good line without a final line break.
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(SIGNIN.as_bytes());
    input.extend_from_slice(b"\n{\"id\":\"secret caf\xE9\"}\nsecret not json\n\n{\"no\":\"id\"}\n");
    input.extend_from_slice(SIGNIN.as_bytes());
    let out = itdr_with_stdin(
        &["normalize", "--stream", "signins", "--json"],
        dir.path(),
        &input,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let events = events(&out);
    assert_eq!(events.len(), 2, "the first and the last record");
    for ev in &events {
        assert!(ocsf::all_errors(ev).is_empty(), "{ev}");
        assert_eq!(ev["src_endpoint"]["ip"], "131.107.159.37");
    }
    let err = text(&out.stderr);
    assert!(err.contains("line 2: not valid UTF-8"), "{err}");
    assert!(err.contains("line 3: not valid JSON"), "{err}");
    assert!(
        err.contains("line 5: record has no usable \"id\" field"),
        "{err}"
    );
    assert!(!err.contains("secret"), "errors never quote records: {err}");
    let summary: serde_json::Value =
        serde_json::from_str(err.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"records": 5, "events": 2, "errors": 3})
    );
}

#[test]
fn normalize_streams_pages_and_arrays_with_or_without_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<String> = (0..50)
        .map(|i| SIGNIN.replace("0100", &format!("{i:04}")))
        .collect();
    let page = format!(
        "{{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns\",\"value\":[\n{}\n],\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x\"}}",
        records.join(",\n")
    );
    let array = format!("[{}]", records.join(","));
    for input in [
        page.clone(),
        format!("\u{feff}{page}"),
        array.clone(),
        format!("\u{feff}{array}"),
    ] {
        let out = itdr_with_stdin(
            &["normalize", "--stream", "signins", "--raw"],
            dir.path(),
            input.as_bytes(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let events = events(&out);
        assert_eq!(events.len(), 50);
        let uids: std::collections::BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e["metadata"]["original_event_uid"].as_str())
            .collect();
        assert_eq!(uids.len(), 50, "every record once");
        assert!(events.iter().all(|e| e["raw_data"].is_string()));
    }
}
