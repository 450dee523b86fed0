//! `cargo bench --profile bench-run -p itdr-aws-tests --bench fanout`: the scheduler's fan-out
//! of 10,000 tenants against moto.
//!
//! Seeds the DynamoDB registry (moto) with `FANOUT_TENANTS` tenants (default 10,000; nine in
//! ten commercial, one in ten GCC High, every log stream) as the registry stores them
//! (`DynamoRegistry::item_of`, written with BatchWriteItem; not timed), then runs the real
//! scheduler handler (`handle_schedule`, what the scheduler Lambda calls) once for one slot and
//! times it: wall time, messages sent, registry pages and `SendMessageBatch` calls, and the CPU
//! seconds of this process (the scheduler) and of moto meanwhile. Then it checks the jobs
//! queues hold exactly the jobs sent, and that jobs received from them parse.
//!
//! moto is Python and answers one request at a time: its CPU share says how much of the wall
//! time is the emulator rather than the scheduler. Released moto reads every message of a
//! queue several times for each message sent to it, so 30,000 jobs would cost hours; `make
//! bench` runs it through `scripts/moto-server-bench.py` (`ITDR_MOTO_SERVER`), which removes
//! those scans and nothing else. No consumers drain the queues while the scheduler sends: on
//! AWS the pollers do not slow the scheduler down, while here their requests would share
//! moto's one core with it.
//!
//! Writes `target/bench-fanout.json` (`[{name, value, unit, command, target?, meets?}]`).
//! Target (issue 14): fan-out of 10,000 tenants <= 5 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use itdr_aws_tests::AwsFixture;
use itdr_shared::aws::dynamo::DynamoRegistry;
use itdr_shared::aws::handler::{SchedulerContext, handle_schedule};
use itdr_shared::aws::jobs::JobMessage;
use itdr_shared::clock::{ManualClock, SharedClock};
use itdr_shared::health::Health;
use itdr_shared::store::{TenantRecord, TenantRegistry};
use itdr_shared::{Cloud, Stream};
use serde_json::{Value, json};

/// The command, with the profile this binary was built with (`make bench`: bench-run; an
/// unoptimised build says so).
const COMMAND: &str = if cfg!(debug_assertions) {
    "cargo bench --profile dev -p itdr-aws-tests --bench fanout (unoptimised build)"
} else {
    "cargo bench --profile bench-run -p itdr-aws-tests --bench fanout"
};

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat` (Linux).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn tenant(i: usize, at: DateTime<Utc>) -> TenantRecord {
    let cloud = if i % 10 == 9 {
        Cloud::GccHigh
    } else {
        Cloud::Global
    };
    TenantRecord {
        tenant_id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
        domain: Some(format!("tenant{i}.example.com")),
        org: None,
        cloud,
        app_ref: "bench-app".to_string(),
        streams: Stream::ALL.to_vec(),
        include_noninteractive: true,
        enabled: true,
        health: Health::default(),
        created_at: at,
    }
}

async fn queue_count(f: &AwsFixture, url: &str) -> usize {
    let out = f
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Receives up to ten jobs from a queue (left in flight) and parses them.
async fn sample_jobs(f: &AwsFixture, url: &str) -> Vec<JobMessage> {
    let out = f
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| JobMessage::parse(m.body().unwrap_or_default()).unwrap())
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

fn figure(name: String, value: f64, unit: &str) -> Value {
    json!({"name": name, "value": value, "unit": unit, "command": COMMAND})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("FANOUT_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let f = AwsFixture::start().await;
    let moto_pid = f.moto.pid().to_string();
    let at: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();

    let seed_start = Instant::now();
    // Seeded with BatchWriteItem, 25 records at a time: moto copies the whole table in every
    // transaction, so 10,000 onboardings through `insert` would take hours (and its server is
    // not safe under concurrent transactions). The fan-out only reads the records.
    let table = itdr_aws_tests::REGISTRY_TABLE;
    let mut pending: Vec<WriteRequest> = (0..n)
        .map(|i| {
            let item = DynamoRegistry::item_of(&tenant(i, at)).unwrap();
            let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    while !pending.is_empty() {
        let batch: Vec<WriteRequest> = pending.drain(..pending.len().min(25)).collect();
        let out = f
            .ddb
            .batch_write_item()
            .request_items(table, batch)
            .send()
            .await
            .unwrap();
        if let Some(left) = out.unprocessed_items().and_then(|u| u.get(table)) {
            pending.extend(left.iter().cloned());
        }
    }
    let listed = DynamoRegistry::new(f.ddb.clone(), table)
        .list()
        .await
        .unwrap()
        .len();
    assert_eq!(listed, n, "every seeded tenant is in the registry");
    let seed_secs = seed_start.elapsed().as_secs_f64();
    println!("seeded {n} tenants into the moto registry in {seed_secs:.1} s (not timed)");

    let clock: SharedClock = Arc::new(ManualClock::new(at));
    let ctx = SchedulerContext::from_config(&f.scheduler_config(), &f.sdk, clock);
    let event = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "time": at.to_rfc3339(), "detail": {}});
    let self_pid = std::process::id().to_string();
    let (moto0, self0) = (cpu_secs(&moto_pid), cpu_secs(&self_pid));
    let started = Instant::now();
    let summary = handle_schedule(event, &ctx).await.unwrap();
    let wall = started.elapsed();
    let (moto1, self1) = (cpu_secs(&moto_pid), cpu_secs(&self_pid));

    let sent = summary.commercial_jobs + summary.usgov_jobs;
    assert_eq!(summary.tenants, n, "the scheduler read every tenant");
    assert_eq!(
        sent,
        n * Stream::ALL.len(),
        "one job per tenant and log stream"
    );
    let (commercial, usgov) = (
        queue_count(&f, &f.queues.jobs_commercial).await,
        queue_count(&f, &f.queues.jobs_usgov).await,
    );
    assert_eq!(
        (commercial, usgov),
        (summary.commercial_jobs, summary.usgov_jobs),
        "each jobs queue holds the jobs sent to it"
    );
    for (url, cloud) in [
        (&f.queues.jobs_commercial, Cloud::Global),
        (&f.queues.jobs_usgov, Cloud::GccHigh),
    ] {
        let jobs = sample_jobs(&f, url).await;
        assert!(!jobs.is_empty(), "jobs can be received from {url}");
        assert!(
            jobs.iter()
                .all(|j| j.cloud == cloud && j.slot == summary.slot),
            "jobs on {url} are for this slot and the queue's cloud"
        );
    }

    let wall_s = wall.as_secs_f64();
    let target = Duration::from_secs(5);
    println!(
        "scheduler fan-out of {n} tenants: {wall_s:.2} s wall, {sent} jobs sent ({} commercial, {} US Government), target <= {} s",
        summary.commercial_jobs,
        summary.usgov_jobs,
        target.as_secs()
    );
    println!(
        "  {} registry pages, {} SendMessageBatch calls",
        summary.registry_pages, summary.send_calls
    );
    let mut figures = vec![
        json!({"name": format!("fanout.{n}.wall_s"), "value": wall_s, "unit": "s",
               "command": COMMAND, "target": "<= 5 s", "meets": wall <= target}),
        figure(format!("fanout.{n}.messages_sent"), sent as f64, "messages"),
        figure(
            format!("fanout.{n}.registry_pages"),
            summary.registry_pages as f64,
            "pages",
        ),
        figure(
            format!("fanout.{n}.send_calls"),
            summary.send_calls as f64,
            "SendMessageBatch calls",
        ),
        figure(format!("fanout.{n}.seed_s"), seed_secs, "s (not timed)"),
    ];
    if let (Some(a), Some(b)) = (self0, self1) {
        println!("  this process's CPU (the scheduler): {:.2} s", b - a);
        figures.push(figure(
            format!("fanout.{n}.process_cpu_s"),
            b - a,
            "s (scheduler)",
        ));
    }
    if let (Some(a), Some(b)) = (moto0, moto1) {
        let share = (b - a) / wall_s * 100.0;
        println!(
            "  moto CPU meanwhile: {:.2} s ({share:.0} % of the wall time; moto is Python, serving one request at a time)",
            b - a
        );
        figures.push(figure(format!("fanout.{n}.moto_cpu_s"), b - a, "s"));
        figures.push(figure(
            format!("fanout.{n}.moto_cpu_share"),
            share,
            "% of wall",
        ));
    }
    let path = target_dir().join("bench-fanout.json");
    std::fs::write(&path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    println!("figures written to {}", path.display());
}
