//! The fleet over a simulated day at steady state, without HTTP: 1,000 and 5,000 tenants of
//! the small-business mix (60 % at 20 sign-ins/h, 30 % at 100, 8 % at 400, 2 % at
//! 2,000), 5-minute schedule, default cadence and poll settings, a warm-up day before the
//! measured one, late arrival per the simulator's default delay model, and one busy tenant
//! onboarded an hour into the measured day with a 30-day backfill. Each size runs again with
//! Microsoft's published latencies (`fleet.N.published.*`), and the first size once more
//! under the default delay model with a regular pass looking back 4 hours instead of 30
//! minutes (`fleet.N.lookback_240m.*`, `FLEET_WIDE_LOOKBACK_SECS`): what freshness under a
//! heavy tail costs. What is real code and what is modelled: `tests/common/fleet.rs`.
//!
//! Run with `cargo bench -p itdr-integration-tests --bench fleet` (or `make bench`).
//! `FLEET_TENANTS` (comma-separated, default `1000,5000`), `FLEET_HOURS` (measured hours,
//! default 24), `FLEET_WARMUP_HOURS` (default 24) and `FLEET_TENANTS_PER_APP` (default 300)
//! change the run, `FLEET_INSTANCES_PER_APP` (default 24) the capacity search's pollers;
//! `FLEET_LOOKBACK_SECS` the regular pass's lookback of all the other runs (default 30 min);
//! `FLEET_CAPACITY=0` skips the search for one app's capacity
//! (`fleet.capacity.tenants_per_app`: one app with 300, 500, ... tenants until it falls
//! behind). Prints a table and writes `target/bench-fleet.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/fleet.rs"]
mod fleet;

use std::time::Instant;

use fleet::{Figures, FleetConfig};
use itdr_sim::DelayModel;
use serde_json::{Value, json};

const COMMAND: &str = "cargo bench -p itdr-integration-tests --bench fleet";

fn env_num(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The adaptive cadence: the default, or `FLEET_QUIET_AFTER_SECS` and
/// `FLEET_MAX_STALENESS_SECS`.
fn cadence() -> itdr_shared::schedule::Cadence {
    let d = itdr_shared::schedule::Cadence::default();
    itdr_shared::schedule::Cadence {
        quiet_after_secs: env_num("FLEET_QUIET_AFTER_SECS", d.quiet_after_secs as i64) as u64,
        max_staleness_secs: env_num("FLEET_MAX_STALENESS_SECS", d.max_staleness_secs as i64) as u64,
    }
}

/// The regular pass's lookback of every run but the wide-lookback one
/// (`FLEET_LOOKBACK_SECS`, default the cursor's 30 minutes).
fn lookback(cfg: &mut FleetConfig) {
    let d = cfg.poll.cursor.lookback_secs;
    cfg.poll.cursor.lookback_secs = env_num("FLEET_LOOKBACK_SECS", d as i64) as u64;
}

fn figure(
    out: &mut Vec<Value>,
    name: String,
    value: f64,
    unit: &str,
    target: Option<(&str, bool)>,
) {
    let value = if value.is_finite() {
        (value * 1000.0).round() / 1000.0
    } else {
        0.0
    };
    let mut o = json!({ "name": name, "value": value, "unit": unit, "command": COMMAND });
    if let Some((t, meets)) = target {
        o["target"] = json!(t);
        o["meets"] = json!(meets);
    }
    out.push(o);
}

fn figures(n: usize, f: &Figures, out: &mut Vec<Value>) {
    let p = |s: &str| format!("fleet.{n}.{s}");
    figure(out, p("apps"), f.apps as f64, "apps", None);
    figure(
        out,
        p("app_429s"),
        f.app_429s as f64,
        "429s",
        Some(("= 0", f.app_429s == 0)),
    );
    figure(out, p("ceiling_used_pct"), f.ceiling_used_pct(), "%", None);
    figure(
        out,
        p("requests_per_tenant_hour"),
        f.requests_per_tenant_hour(),
        "requests",
        None,
    );
    figure(
        out,
        p("jobs_per_tenant_day"),
        f.jobs_per_tenant_day(),
        "jobs",
        None,
    );
    figure(
        out,
        p("events_per_tenant_day"),
        f.events_per_tenant_day(),
        "events",
        None,
    );
    let epr = f.events_per_request_backlog();
    figure(
        out,
        p("events_per_request_backlog"),
        epr,
        "events",
        Some((">= 990", epr >= 990.0)),
    );
    freshness(&p, f, out);
    match f.backfill_catchup_h {
        Some(h) => figure(out, p("backfill_catchup_h"), h, "h", None),
        // Not caught up by the end of the run: at least the time it ran.
        None => figure(
            out,
            p("backfill_catchup_h"),
            (f.hours - 1.0).max(0.0),
            "h (not done)",
            None,
        ),
    }
    figure(
        out,
        p("cpu_s_per_tenant_day"),
        f.cpu_s_per_tenant_day(),
        "s",
        None,
    );
    // As configured for this run (`FLEET_TENANTS_PER_APP`); what one app can serve is
    // `fleet.capacity.tenants_per_app`.
    figure(
        out,
        p("tenants_per_app"),
        f.tenants_per_app(),
        "tenants",
        None,
    );
}

/// Whether one app with `per_app` tenants keeps up at the 5-minute schedule: no app-level
/// 429, nothing lost, no stream waits longer than the maximum staleness and two slots, and
/// the median event is not delayed by more than a minute beyond an unloaded app's.
fn keeps_up(f: &Figures, unloaded_p50: f64) -> bool {
    let staleness = cadence().max_staleness_secs as i64 + 2 * 300;
    f.app_429s == 0
        && f.lost == 0
        && f.max_poll_gap_s <= staleness
        && f.fresh_visible.pct(50.0) <= unloaded_p50 + 60.0
}

/// The most tenants of the mix one app registration (with its 24 pollers) keeps up with:
/// the largest of the candidates, tried in order until one does not keep up.
fn capacity(hours: i64, warmup: i64, out: &mut Vec<Value>) {
    let mut best = 0usize;
    let mut unloaded_p50 = None;
    for per_app in [300usize, 500, 750, 1000, 1250, 1500, 2000] {
        let mut cfg = FleetConfig::new(per_app);
        cfg.tenants_per_app = per_app;
        cfg.instances_per_app = env_num("FLEET_INSTANCES_PER_APP", 24) as usize;
        cfg.cadence = cadence();
        lookback(&mut cfg);
        cfg.hours = hours;
        cfg.warmup_hours = warmup;
        let f = fleet::run(&cfg);
        let p50 = f.fresh_visible.pct(50.0);
        let base = *unloaded_p50.get_or_insert(p50);
        let ok = keeps_up(&f, base);
        println!(
            "  capacity: {per_app} tenants on one app: {}; {:.1} requests per tenant-hour, {:.0} % of the ceiling, longest poll gap {} s, freshness p50 {p50} s, backfill {}",
            if ok { "keeps up" } else { "falls behind" },
            f.requests_per_tenant_hour(),
            f.ceiling_used_pct(),
            f.max_poll_gap_s,
            f.backfill_catchup_h
                .map_or("not done".to_string(), |h| format!("{h:.1} h")),
        );
        if !ok {
            break;
        }
        best = per_app;
    }
    figure(
        out,
        "fleet.capacity.tenants_per_app".into(),
        best as f64,
        "tenants",
        Some((">= 1500", best >= 1500)),
    );
}

/// Freshness from visibility (p50, p99 against the target) and from the event (p50, p99).
fn freshness(p: &dyn Fn(&str) -> String, f: &Figures, out: &mut Vec<Value>) {
    let visible_p99 = f.fresh_visible.pct(99.0);
    for (name, value, target) in [
        ("freshness_visible_p50_s", f.fresh_visible.pct(50.0), None),
        (
            "freshness_visible_p99_s",
            visible_p99,
            Some(("<= 360 s", visible_p99 <= 360.0)),
        ),
        ("freshness_event_p50_s", f.fresh_event.pct(50.0), None),
        ("freshness_event_p99_s", f.fresh_event.pct(99.0), None),
    ] {
        figure(out, p(name), value, "s", target);
    }
}

/// One more run of a fleet under other conditions (`fleet.N.<variant>.*`): freshness and what
/// it cost. Prints its line and keeps the run for the loss check.
fn variant(
    n: usize,
    name: &str,
    label: &str,
    cfg: &FleetConfig,
    out: &mut Vec<Value>,
    rows: &mut Vec<(usize, Figures)>,
) {
    let started = Instant::now();
    let f = fleet::run(cfg);
    let secs = started.elapsed().as_secs_f64();
    let p = |s: &str| format!("fleet.{n}.{name}.{s}");
    freshness(&p, &f, out);
    figure(
        out,
        p("requests_per_tenant_hour"),
        f.requests_per_tenant_hour(),
        "requests",
        None,
    );
    figure(out, p("app_429s"), f.app_429s as f64, "429s", None);
    println!(
        "  {n} tenants, {label}: {secs:.0} s; app-level 429s {}; lost {}",
        f.app_429s, f.lost
    );
    rows.push((n, f));
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet: run it with `cargo bench` (an optimised build)");
        return;
    }
    let sizes: Vec<usize> = std::env::var("FLEET_TENANTS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 5000]);
    let hours = env_num("FLEET_HOURS", 24);
    let warmup = env_num("FLEET_WARMUP_HOURS", 24);
    let per_app = env_num("FLEET_TENANTS_PER_APP", 300) as usize;
    println!(
        "fleet: {hours} h measured after {warmup} h warm-up, 5-minute schedule, default cadence, {per_app} tenants per app, 24 pollers per app"
    );
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for (i, n) in sizes.into_iter().enumerate() {
        let mut cfg = FleetConfig::new(n);
        cfg.hours = hours;
        cfg.warmup_hours = warmup;
        cfg.tenants_per_app = per_app;
        cfg.cadence = cadence();
        lookback(&mut cfg);
        let started = Instant::now();
        let f = fleet::run(&cfg);
        let secs = started.elapsed().as_secs_f64();
        figures(n, &f, &mut out);
        println!(
            "  {n} tenants: {secs:.0} s; peak app window {} of {}; tenant-level 429s {}; longest poll gap {} s; lost {}; seen set: {} judged, {} duplicates, {} missed",
            f.peak_app_window,
            fleet::APP_LIMIT,
            f.tenant_429s,
            f.max_poll_gap_s,
            f.lost,
            f.seen_judged,
            f.seen_duplicates,
            f.seen_missed
        );
        rows.push((n, f));
        // The same fleet with Microsoft's published latencies (P95 2 min, P99 5 min) instead
        // of the simulator's heavy tail: freshness as the documented service delivers it.
        let published = FleetConfig {
            delay: DelayModel::published(),
            ..cfg.clone()
        };
        variant(
            n,
            "published",
            "published latencies",
            &published,
            &mut out,
            &mut rows,
        );
        // The first size once more under the heavy tail, with a regular pass that looks back
        // further (`cursor.lookback_secs`, FLEET_WIDE_LOOKBACK_SECS, default 4 h instead of
        // 30 min): what freshness under that tail costs in requests.
        if i == 0 {
            let lookback = env_num("FLEET_WIDE_LOOKBACK_SECS", 4 * 3600) as u64;
            let mut wide = cfg;
            wide.poll.cursor.lookback_secs = lookback;
            variant(
                n,
                &format!("lookback_{}m", lookback / 60),
                &format!("{} min lookback", lookback / 60),
                &wide,
                &mut out,
                &mut rows,
            );
        }
    }
    if env_num("FLEET_CAPACITY", 1) != 0 {
        capacity(hours, warmup, &mut out);
    }
    println!(
        "{:<44} {:>12} {:<9} {:<10} met",
        "figure", "value", "unit", "target"
    );
    for o in &out {
        println!(
            "{:<44} {:>12} {:<9} {:<10} {}",
            o["name"].as_str().unwrap_or(""),
            o["value"],
            o["unit"].as_str().unwrap_or(""),
            o.get("target").and_then(Value::as_str).unwrap_or(""),
            o.get("meets")
                .map(|m| if m == true { "yes" } else { "no" })
                .unwrap_or("")
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("bench-fleet.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("wrote target/bench-fleet.json");
    for (n, f) in &rows {
        assert_eq!(f.lost, 0, "{n} tenants: events lost");
    }
}
