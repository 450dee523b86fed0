//! `make inventory-bench`: the identity inventory of a large tenant (10,000 users, 5,000
//! mailboxes) read from the simulator on a virtual clock, optimised, with its figures: requests
//! per budget, the busiest windows, simulated hours until every stream completed, wall time,
//! and memory (peak resident set of this process, which also holds the simulator, and the
//! size of what the inventory store keeps per object).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::inventory::InventoryStore;
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{LoggedRequest, SimConfig, TenantSpec};

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn class_of(r: &LoggedRequest) -> &'static str {
    let p = r.path.to_ascii_lowercase();
    if p.contains("/mailboxsettings") || p.contains("/mailfolders") {
        "outlook"
    } else if r.query.to_ascii_lowercase().contains("signinactivity") {
        "signin_activity"
    } else if p.contains("/reports/") {
        "reports"
    } else if p.contains("/oauth2/") || p.contains("/token") {
        "token"
    } else {
        "directory"
    }
}

fn busiest(log: &[&LoggedRequest], window: TimeDelta) -> usize {
    let (mut best, mut start) = (0, 0);
    for end in 0..log.len() {
        while log[end].at - log[start].at >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (users, mailboxes) = (10_000usize, 5_000usize);
    let mut spec = TenantSpec::new(3, Cloud::Global);
    spec.users = users;
    spec.signins_per_hour = 1.0;
    spec.audits_per_hour = 1.0;
    let env = common::start(SimConfig::new(12, vec![spec]), Rate::REPORTS_PER_TENANT).await;
    let t = env.specs[0].tenant_id.clone();
    env.sim.edit_inventory(&t, |inv| {
        let mut n = 0;
        for u in &mut inv.users {
            if u.purpose.is_some() {
                n += 1;
                if n > mailboxes {
                    u.purpose = None;
                    u.mail = None;
                }
            }
        }
    });
    let hwm_before = vm_hwm_kib().unwrap_or(0);
    let store = SqliteStore::in_memory().unwrap();
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: Arc::new(MemorySink::new()),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig::default().validated().unwrap(),
        hook: None,
    };
    let start = env.clock.now();
    let wall = Instant::now();
    let mut polls: BTreeMap<Stream, (usize, TimeDelta)> = BTreeMap::new();
    for stream in Stream::INVENTORY {
        let job = PollJob {
            tenant_id: t.clone(),
            cloud: Cloud::Global,
            stream,
            include_noninteractive: false,
            retention_days: None,
        };
        let s0 = env.clock.now();
        let mut n = 0;
        loop {
            let began = env.clock.now();
            let out = poll(&ctx, &job, began + TimeDelta::minutes(14))
                .await
                .unwrap();
            n += 1;
            if out.pass_complete {
                break;
            }
            env.clock.advance_to(began + TimeDelta::minutes(5));
        }
        polls.insert(stream, (n, env.clock.now() - s0));
    }
    let simulated = env.clock.now() - start;
    let wall = wall.elapsed();
    let log = env.sim.request_log();
    let log: Vec<&LoggedRequest> = log.iter().filter(|l| l.at >= start).collect();
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &log {
        *by_class.entry(class_of(l)).or_default() += 1;
    }
    let of = |c: &str| -> Vec<&LoggedRequest> {
        log.iter().copied().filter(|l| class_of(l) == c).collect()
    };
    let mut kept = 0usize;
    let mut objects = 0usize;
    for s in Stream::INVENTORY {
        for (id, k) in store.known(&t, s).await.unwrap() {
            objects += 1;
            kept += id.len() + 16 + k.tags.iter().map(|t| t.len() + 3).sum::<usize>();
        }
    }
    let hwm_after = vm_hwm_kib().unwrap_or(0);
    println!("inventory of {users} users and {mailboxes} mailboxes:");
    println!(
        "  requests: {} in total; by budget: {by_class:?}",
        log.len()
    );
    println!(
        "  busiest windows: directory {}/10 s, outlook {}/10 s, signInActivity {}/60 s, reporting {}/10 s",
        busiest(&of("directory"), TimeDelta::seconds(10)),
        busiest(&of("outlook"), TimeDelta::seconds(10)),
        busiest(&of("signin_activity"), TimeDelta::seconds(60)),
        busiest(
            &log.iter()
                .copied()
                .filter(|l| matches!(class_of(l), "reports" | "signin_activity"))
                .collect::<Vec<_>>(),
            TimeDelta::seconds(10)
        ),
    );
    for (s, (n, d)) in &polls {
        println!(
            "  {s}: {n} polls, {:.2} simulated hours",
            d.num_seconds() as f64 / 3600.0
        );
    }
    println!(
        "  simulated time until every stream completed: {:.2} h; wall time {:.1} s",
        simulated.num_seconds() as f64 / 3600.0,
        wall.as_secs_f64()
    );
    println!(
        "  inventory store: {objects} objects, about {} KiB of ids, digests and tags",
        kept / 1024
    );
    println!(
        "  peak resident set: {} MiB before the run (simulator built), {} MiB after",
        hwm_before / 1024,
        hwm_after / 1024
    );
}
