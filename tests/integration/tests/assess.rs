//! The Identity Security Assessment against the simulator: a P1 tenant with busy sign-ins and
//! a tenant without P1, each snapshotted and polled like the pipeline does, then assessed
//! from the OCSF events delivered. Their reports validate against the repository's JSON
//! Schema, their findings against OCSF 1.8.0, and they differ where their data differ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::assess::{self, FindingKind, InputBuilder, Report, Section, TenantInfo};
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{SimConfig, TenantSpec};
use serde_json::Value;

fn report_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/schemas/assessment-report.schema.json");
    let schema = common::ocsf::read_json(&path);
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

struct Tenant {
    spec: TenantSpec,
    report: Report,
    /// The simulator's own directory of the tenant (the ground truth).
    users: Vec<itdr_sim::InvUser>,
}

async fn assess_all(specs: Vec<TenantSpec>) -> Vec<Tenant> {
    let env = common::start(SimConfig::new(13, specs), Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig::default().validated().unwrap(),
        hook: None,
    };
    for spec in &env.specs {
        let job = |stream| PollJob {
            tenant_id: spec.tenant_id.clone(),
            cloud: Cloud::Global,
            stream,
            include_noninteractive: false,
            retention_days: None,
        };
        // Sign-ins first (refused without P1), then every inventory snapshot to completion.
        let started = env.clock.now();
        let _ = poll(
            &ctx,
            &job(Stream::Signins),
            started + TimeDelta::minutes(14),
        )
        .await;
        for stream in Stream::INVENTORY {
            let mut done = false;
            for _ in 0..500 {
                let started = env.clock.now();
                let out = poll(&ctx, &job(stream), started + TimeDelta::minutes(14))
                    .await
                    .unwrap_or_else(|e| panic!("{stream}: {e}"));
                if out.pass_complete {
                    done = true;
                    break;
                }
                env.clock.advance_to(started + TimeDelta::minutes(5));
            }
            assert!(done, "{stream} never completed");
        }
    }
    let events = sink.events();
    let mut out = Vec::new();
    for spec in &env.specs {
        let mut b = InputBuilder::new(&spec.tenant_id);
        for e in &events {
            b.push(e);
        }
        let degraded = assess::input::degradations(&store, &spec.tenant_id)
            .await
            .unwrap();
        let input = b.finish(degraded);
        let tenant = TenantInfo {
            id: spec.tenant_id.clone(),
            domain: Some(spec.domain.clone()),
            org: None,
        };
        let report = assess::assess(&input, tenant, env.clock.now(), None);
        out.push(Tenant {
            spec: spec.clone(),
            report,
            users: env.sim.inventory(&spec.tenant_id).unwrap().users,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_and_no_p1_tenants_get_valid_reports_that_differ_where_their_data_differ() {
    // Sign-in volume stays modest: the first poll reads the simulator's whole history.
    let mut busy = TenantSpec::new(0, Cloud::Global);
    busy.signins_per_hour = 150.0;
    let mut no_p1 = TenantSpec::new(1, Cloud::Global);
    no_p1.has_p1 = false;
    let tenants = assess_all(vec![busy, no_p1]).await;
    let schema = report_schema();
    for t in &tenants {
        let json = serde_json::to_value(&t.report).unwrap();
        let errs = schema_errors(&schema, &json);
        assert!(errs.is_empty(), "{}: {errs:?}", t.spec.domain);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, t.report);
        for e in assess::ocsf::finding_events(&t.report, Cloud::Global) {
            let errs = common::ocsf::all_errors(&e);
            assert!(errs.is_empty(), "{errs:?}\n{e:#}");
        }
        assert_eq!(t.report.sections.len(), Section::ALL.len());
        assert!(t.report.inventory.users > 0);
        assert!(!t.report.apps.is_empty());
    }
    let (p1, np) = (&tenants[0].report, &tenants[1].report);

    // Sign-in based parts: measured with P1, "not assessed" without.
    let n = p1.coverage.sign_ins.expect("P1 tenant has sign-in logs");
    assert!(n > 100, "{n} sign-ins");
    assert!(!p1.charts.sign_ins_by_protocol.is_empty());
    let legacy = p1.section(Section::LegacyAuth).unwrap();
    assert!(legacy.not_assessed.is_empty(), "{legacy:?}");
    assert!(p1.coverage.mfa_registration && p1.coverage.last_sign_in);
    assert_eq!(np.coverage.sign_ins, None);
    assert!(np.charts.sign_ins_by_protocol.is_empty());
    assert!(np.charts.mfa_coverage.is_empty());
    let kinds = |r: &Report, s: Section| -> Vec<FindingKind> {
        r.section(s)
            .unwrap()
            .not_assessed
            .iter()
            .map(|n| n.kind)
            .collect()
    };
    assert_eq!(
        kinds(np, Section::LegacyAuth),
        vec![FindingKind::LegacySignIns]
    );
    assert!(kinds(np, Section::Mfa).contains(&FindingKind::NoMfa));
    assert!(
        !np.coverage.degraded.is_empty(),
        "the store's degradations are shown"
    );
    let html = assess::html::render(np);
    assert!(html.contains("no-sign-in-logs"));

    // The simulator's P1 tenant has legacy sign-ins (about 2 % of them): they are found, with
    // their users, and the protocol chart counts them.
    if let Some(f) = p1.finding(FindingKind::LegacySignIns) {
        let legacy_chart: u64 = p1
            .charts
            .sign_ins_by_protocol
            .iter()
            .filter(|(k, _)| assess::is_legacy_client(k))
            .map(|(_, n)| n)
            .sum();
        assert!(
            legacy_chart >= f.count,
            "{legacy_chart} sign-ins, {} users",
            f.count
        );
        assert!(!f.evidence.is_empty());
    } else {
        panic!("no legacy sign-ins found among {n}");
    }

    browser_checks(&[("p1-tenant", p1), ("no-p1-tenant", np)]);

    // Disabled-but-licensed, checked against the simulator's own directory.
    for t in &tenants {
        let expected = t
            .users
            .iter()
            .filter(|u| {
                !u.enabled
                    && !u.licences.is_empty()
                    && !matches!(u.purpose, Some("shared" | "room" | "equipment"))
            })
            .count() as u64;
        let got = t
            .report
            .finding(FindingKind::DisabledLicensed)
            .map_or(0, |f| f.count);
        assert_eq!(got, expected, "{}", t.spec.domain);
    }
}

/// Headless Chromium (from the system packages: `make tools` installs it), or the reason it
/// cannot run. Set `ITDR_SKIP_BROWSER=1` to skip the browser checks on a machine without it.
fn chromium() -> Option<std::path::PathBuf> {
    if std::env::var_os("ITDR_SKIP_BROWSER").is_some() {
        return None;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    panic!(
        "headless Chromium not found: run `make tools` (apt-get install chromium), or set ITDR_SKIP_BROWSER=1"
    );
}

/// Runs Chromium headless on a local file, with everything that could reach the network off.
fn run_chromium(bin: &std::path::Path, profile: &std::path::Path, args: &[String]) -> String {
    let out = std::process::Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-breakpad",
            "--metrics-recording-only",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Measures the rendered page: which sections and charts exist, their drawn size, and every
/// element that sticks out of the viewport. Appended to a copy of the report (the report itself
/// has no scripts).
const PROBE: &str = r##"<script>
(function(){
  var ids = ["summary","top-fixes","score-overall","section-inventory","section-mfa","section-legacy_auth",
    "section-permissions","section-apps","chart-users-by-state","chart-mfa-coverage",
    "chart-sign-ins-by-protocol","chart-apps-by-permission-class"];
  var missing = ids.filter(function(id){ return !document.getElementById(id); });
  var vw = document.documentElement.clientWidth;
  var charts = Array.prototype.map.call(document.querySelectorAll("figure.chart"), function(f){
    var r = f.querySelector("svg").getBoundingClientRect();
    return {id: f.id, width: Math.round(r.width), height: Math.round(r.height),
      bars: f.querySelectorAll("rect").length};
  });
  var over = [];
  Array.prototype.forEach.call(document.querySelectorAll("body *"), function(e){
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) {
      over.push(e.tagName + "#" + e.id + "." + (e.getAttribute("class") || "") + " right=" + Math.round(r.right));
    }
  });
  var res = {missing: missing, charts: charts, overflowing: over.slice(0, 20), viewport: vw,
    scroll_width: document.documentElement.scrollWidth,
    findings: document.querySelectorAll(".finding").length};
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(res).replace(/&/g, "\\u0026").replace(/</g, "\\u003c").replace(/>/g, "\\u003e");
  document.body.appendChild(pre);
})();
</script>"##;

fn probe(
    bin: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    html: &str,
    width: u32,
) -> Value {
    let page = dir.join(format!("{name}-probe.html"));
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let dom = run_chromium(
        bin,
        &dir.join("profile"),
        &[
            format!("--window-size={width},1200"),
            "--dump-dom".into(),
            format!("file://{}", page.display()),
        ],
    );
    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(dom[start..end].trim()).unwrap()
}

/// Loads each report in headless Chromium: every section and chart is there and drawn, nothing
/// overflows an A4-wide page or a laptop screen, and a screenshot of each is kept under
/// `target/tmp/assessment/`.
fn browser_checks(reports: &[(&str, &Report)]) {
    let Some(bin) = chromium() else { return };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("assessment");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, report) in reports {
        let html = assess::html::render(report);
        std::fs::write(dir.join(format!("{name}.html")), &html).unwrap();
        // 794 px: an A4 page at 96 dpi; 1280: a laptop.
        for width in [794, 1280] {
            let r = probe(&bin, &dir, name, &html, width);
            assert_eq!(r["missing"], serde_json::json!([]), "{name} @{width}: {r}");
            let charts = r["charts"].as_array().unwrap();
            assert_eq!(charts.len(), 4, "{name}: {r}");
            for c in charts {
                assert!(c["width"].as_u64().unwrap() > 200, "{name}: {c}");
                assert!(c["height"].as_u64().unwrap() > 20, "{name}: {c}");
            }
            assert_eq!(
                r["overflowing"],
                serde_json::json!([]),
                "{name} @{width}: {r}"
            );
            assert!(
                r["scroll_width"].as_u64() <= r["viewport"].as_u64(),
                "{name} @{width}: {r}"
            );
            assert_eq!(
                r["findings"].as_u64(),
                Some(report.findings.len() as u64),
                "{name}"
            );
        }
        let shot = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            &bin,
            &dir.join("profile"),
            &[
                "--window-size=1024,2400".into(),
                format!("--screenshot={}", shot.display()),
                format!("file://{}", dir.join(format!("{name}.html")).display()),
            ],
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: screenshot"
        );
    }
}
