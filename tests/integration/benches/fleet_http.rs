//! The fleet simulation's agreement run: the same tenants and hours measured twice, once by
//! the real pipeline over HTTP (`itdr run` with a `[simulator]` section: the scheduler loop,
//! the job runner, the poller, the Graph client and the simulator's HTTP server, on a scaled
//! clock) and once by the fleet simulation (`tests/common/fleet.rs`, no HTTP, a virtual
//! clock). The simulation's figures stand for a fleet only if the two agree
//! (`tests/integration/FLEET.md`, "Agreement with HTTP").
//!
//! Both runs: `FLEET_HTTP_TENANTS` tenants (default 200) of the mix, global cloud, the
//! simulator's business hours per tenant, all onboarded at the start with an hour of history,
//! default cadence and poll settings, `FLEET_HTTP_HOURS` measured hours (default 3) from
//! Monday 00:00 UTC, sign-ins and directory audits only. `itdr run` runs at
//! `FLEET_HTTP_SPEED` simulated seconds per real second (default 60) with 16 tenants at once
//! and a 100 / 10 s app share; the simulation gives its one app 16 instances at 6 / 10 s.
//!
//! Needs the `itdr` binary of `make bench` (`target/bench-run/itdr`, or `ITDR_BIN`). Run with
//! `cargo bench -p itdr-integration-tests --bench fleet_http` (or `make bench`). Prints both
//! columns and writes `target/bench-fleet-http.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/fleet.rs"]
mod fleet;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fleet::{FleetConfig, audit_rate, mix_rate};
use itdr_shared::Cloud;
use itdr_sim::{TenantSpec, utc_offset_hours};
use serde_json::{Value, json};

const COMMAND: &str = "cargo bench -p itdr-integration-tests --bench fleet_http";
const SEED: u64 = 20_261_129;
const CONCURRENT: usize = 16;
const APP_SHARE: u32 = 100;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The `itdr run` configuration of the agreement run.
fn config(dir: &Path, tenants: usize, hours: f64, speed: f64) -> String {
    let mut s = format!(
        "# The fleet agreement run (tests/integration/benches/fleet_http.rs).\n\
         [store]\npath = {db:?}\nfresh = true\n\n\
         [output]\nevents = {events:?}\ndead_letters = {dead:?}\ntruncate = true\n\n\
         [schedule]\ninterval_secs = 300\nstop_after_secs = {stop}\n\
         max_concurrent_tenants = {CONCURRENT}\napp_requests_per_10s = {APP_SHARE}\n\n\
         [poll.cursor]\ninitial_lookback_secs = 3600\n\n\
         [simulator]\nseed = {SEED}\nspeed = {speed}\nstart = \"{start}\"\n\
         streams = [\"signins\", \"directory_audits\"]\n",
        db = dir.join("itdr.db").display().to_string(),
        events = dir.join("events.ndjson").display().to_string(),
        dead = dir.join("dead-letters.ndjson").display().to_string(),
        stop = (hours * 3600.0).round() as u64,
        start = fleet::start().to_rfc3339(),
    );
    for i in 0..tenants {
        let rate = mix_rate(i);
        s.push_str(&format!(
            "\n[[simulator.tenants]]\norg = \"Fleet tenant {i}\"\ncloud = \"global\"\n\
             signins_per_hour = {rate:.1}\naudits_per_hour = {:.1}\n",
            audit_rate(rate)
        ));
    }
    s
}

/// One figure of both runs, and whether they agree within `tolerance` (relative) or `slack`
/// (absolute, in the figure's unit).
struct Pair {
    metric: &'static str,
    unit: &'static str,
    http: f64,
    sim: f64,
    tolerance: f64,
    slack: f64,
}

impl Pair {
    fn agrees(&self) -> bool {
        let diff = (self.http - self.sim).abs();
        diff <= self.slack || diff <= self.tolerance * self.http.abs().max(self.sim.abs())
    }
    fn rule(&self) -> String {
        if self.slack > 0.0 {
            format!(
                "within {:.0} % or {} {}",
                self.tolerance * 100.0,
                self.slack,
                self.unit
            )
        } else {
            format!("within {:.0} %", self.tolerance * 100.0)
        }
    }
}

fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet_http: run it with `cargo bench` (an optimised build)");
        return;
    }
    let tenants = env_num("FLEET_HTTP_TENANTS", 200.0).max(1.0) as usize;
    let hours = env_num("FLEET_HTTP_HOURS", 3.0).max(1.0).round();
    let speed = env_num("FLEET_HTTP_SPEED", 60.0).max(1.0);
    let target = target_dir();
    let bin = std::env::var_os("ITDR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("bench-run/itdr"));
    if !bin.is_file() {
        eprintln!(
            "fleet_http: {} is missing: build it first (`cargo build --profile bench-run -p itdr-cli`, as `make bench` does)",
            bin.display()
        );
        std::process::exit(2);
    }
    let dir = target.join("fleet-http");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("config.toml");
    std::fs::write(&cfg_path, config(&dir, tenants, hours, speed)).unwrap();
    println!(
        "fleet agreement: {tenants} tenants, {hours} h from {} (Monday), 5-minute schedule; itdr run at {speed}x",
        fleet::start()
    );

    // The real pipeline over HTTP.
    let started = Instant::now();
    let out = Command::new(&bin)
        .arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--json")
        .env("RUST_LOG", "error")
        .output()
        .expect("itdr run starts");
    let http_secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("itdr run failed: {}", out.status);
    }
    std::fs::write(dir.join("summary.json"), &out.stdout).unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("itdr run --json");
    let r = &summary["reports"];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let tenant_hours = tenants as f64 * hours;
    let lost: u64 = summary["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["lost"].as_u64()).sum())
        .unwrap_or(0);
    let http_clock_h = num(&summary["clock_secs"]) / 3600.0;

    // The fleet simulation of the same tenants and hours.
    let mut cfg = FleetConfig::new(tenants);
    cfg.tenants_per_app = tenants;
    cfg.instances_per_app = CONCURRENT;
    cfg.app_share = Some(APP_SHARE / CONCURRENT as u32);
    cfg.warmup_hours = 0;
    cfg.hours = hours as i64;
    cfg.backfill = false;
    cfg.seen_every = 0;
    cfg.onboard_at_start = true;
    cfg.utc_offsets = Some(
        (0..tenants)
            .map(|i| utc_offset_hours(SEED, &TenantSpec::new(i as u32, Cloud::Global)))
            .collect(),
    );
    let started = Instant::now();
    let f = fleet::run(&cfg);
    let sim_secs = started.elapsed().as_secs_f64();

    let pairs = [
        Pair {
            metric: "requests_per_tenant_hour",
            unit: "requests",
            http: num(&r["requests"]) / tenant_hours,
            sim: f.requests_per_tenant_hour(),
            tolerance: 0.15,
            slack: 0.0,
        },
        Pair {
            metric: "polls_per_tenant_hour",
            unit: "polls",
            http: num(&r["polls"]) / tenant_hours,
            sim: f.jobs as f64 / tenant_hours,
            tolerance: 0.10,
            slack: 0.0,
        },
        Pair {
            metric: "events_per_tenant_hour",
            unit: "events",
            http: num(&r["emitted"]) / tenant_hours,
            sim: f.events_delivered as f64 / tenant_hours,
            tolerance: 0.15,
            slack: 0.0,
        },
        Pair {
            metric: "app_429s",
            unit: "429s",
            http: num(&summary["app_level_429"]),
            sim: f.app_429s as f64,
            tolerance: 0.0,
            slack: 0.0,
        },
        Pair {
            metric: "freshness_visible_p50_s",
            unit: "s",
            http: num(&r["from_visible_p50_secs"]),
            sim: f.fresh_visible.pct(50.0),
            tolerance: 0.30,
            slack: 60.0,
        },
        Pair {
            metric: "freshness_visible_p99_s",
            unit: "s",
            http: num(&r["from_visible_p99_secs"]),
            sim: f.fresh_visible.pct(99.0),
            tolerance: 0.30,
            slack: 60.0,
        },
        Pair {
            metric: "freshness_event_p50_s",
            unit: "s",
            http: num(&r["freshness_p50_secs"]),
            sim: f.fresh_event.pct(50.0),
            tolerance: 0.30,
            slack: 60.0,
        },
    ];
    let agree = pairs.iter().all(Pair::agrees) && lost == 0 && f.lost == 0;
    let mut out = Vec::new();
    println!(
        "{:<28} {:>12} {:>12}  {:<26} agree",
        "figure", "itdr run", "simulation", "rule"
    );
    for p in &pairs {
        println!(
            "{:<28} {:>12.3} {:>12.3}  {:<26} {}",
            p.metric,
            p.http,
            p.sim,
            p.rule(),
            if p.agrees() { "yes" } else { "no" }
        );
        for (side, v) in [("http", p.http), ("sim", p.sim)] {
            out.push(json!({
                "name": format!("fleet.{side}.{tenants}.{}", p.metric),
                "value": round3(v),
                "unit": p.unit,
                "command": COMMAND,
            }));
        }
    }
    out.push(json!({
        "name": "fleet.agreement",
        "value": u8::from(agree),
        "unit": "1 = agree",
        "command": COMMAND,
        "target": "= 1",
        "meets": agree,
    }));
    println!(
        "itdr run: {http_secs:.0} s real for {http_clock_h:.2} simulated h, lost {lost}; simulation: {sim_secs:.1} s, lost {}",
        f.lost
    );
    println!("agreement: {}", if agree { "yes" } else { "NO: see above" });
    let path = target.join("bench-fleet-http.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("wrote target/bench-fleet-http.json");
}
