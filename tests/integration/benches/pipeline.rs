//! `make bench`: throughput of the hot paths on this machine, printed as plain lines.
//!
//! - normalize: the hand-written Graph fixtures (every record shape we know), replicated with
//!   fresh ids, through `ocsf::normalize`; records/s and MB/s of input.
//! - poll: one busy tenant (5,000 sign-ins per simulated hour) polled from the simulator on a
//!   manual clock, first poll over a 6-hour lookback: records fetched and events delivered per
//!   second of wall time, end to end (HTTP, JSON, dedupe, OCSF, batching, SQLite cursor).
//!
//! Speed targets live here, never in timed unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, TimeZone, Utc};
use itdr_shared::clock::{Clock, ManualClock, SharedClock};
use itdr_shared::cursor::CursorConfig;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::ocsf::{NormalizeOptions, normalize};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{DelayModel, SimConfig, Simulator, TenantSpec};
use serde_json::Value;

fn fixtures(stream: &str) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/graph")
        .join(stream);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

fn bench_normalize(stream: Stream, dir: &str, n: usize) {
    let base = fixtures(dir);
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r["id"] = Value::String(format!("bench-{i}"));
            r
        })
        .collect();
    let bytes: usize = records
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .sum();
    let opts = NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud::Global);
    let start = Instant::now();
    let mut ok = 0usize;
    for r in &records {
        if normalize(stream, r, &opts).is_ok() {
            ok += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "normalize {:<17} {n} records ({:.1} MB) in {secs:.2} s: {:.0} records/s, {:.1} MB/s ({ok} ok)",
        stream.as_str(),
        bytes as f64 / 1e6,
        n as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

async fn bench_poll() {
    let t0 = Utc.with_ymd_and_hms(2026, 6, 2, 18, 0, 0).single().unwrap();
    let clock = ManualClock::new(t0);
    let shared: SharedClock = Arc::new(clock.clone());
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 5000.0;
    let mut cfg = SimConfig::new(42, vec![spec.clone()]);
    cfg.delay = DelayModel::none();
    let sim = Simulator::start(cfg, shared.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let stack = sim.stack_builder(shared).build().unwrap();
    stack.tokens.set(&spec.tenant_id, spec.app_credential());
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = PollContext {
        client: stack.client.clone(),
        cursors: Arc::new(store),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig {
            cursor: CursorConfig {
                initial_lookback_secs: 6 * 3600,
                ..CursorConfig::default()
            },
            ..PollConfig::default()
        }
        .validated()
        .unwrap(),
        hook: None,
    };
    let job = PollJob {
        tenant_id: spec.tenant_id.clone(),
        cloud: Cloud::Global,
        stream: Stream::Signins,
        include_noninteractive: true,
        retention_days: None,
    };
    let start = Instant::now();
    let out = poll(&ctx, &job, clock.now() + TimeDelta::hours(2))
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "poll      busy tenant (6 h)  {} records fetched, {} events delivered in {secs:.2} s: {:.0} records/s end to end",
        out.fetched,
        out.emitted,
        out.fetched as f64 / secs
    );
    sim.shutdown().await;
}

fn main() {
    bench_normalize(Stream::Signins, "signins", 200_000);
    bench_normalize(Stream::DirectoryAudits, "directory_audits", 200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench_poll());
}
