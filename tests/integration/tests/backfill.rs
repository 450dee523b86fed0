//! Backfill on onboarding: the first polls of a new tenant reach back as far as its retention
//! (30 days with P1/P2, 7 without), a few slices per poll, paced within the per-tenant limit,
//! while every poll still starts with the fresh events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::cursor::Cursor;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::store::CursorStore;
use itdr_shared::{Cloud, Stream};
use itdr_sim::{DelayModel, GroundTruthStream, SimConfig, TenantSpec};

/// The committed cursor of a job's stream.
async fn stored(store: &SqliteStore, job: &PollJob) -> Cursor {
    let c = store
        .load(&job.tenant_id, job.stream)
        .await
        .unwrap()
        .unwrap();
    Cursor::from_doc(&c.doc).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_backfills_the_retention_window_without_holding_back_fresh_events() {
    let mut specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::Global),
    ];
    for s in &mut specs {
        s.signins_per_hour = 12.0;
        s.audits_per_hour = 3.0;
    }
    // The second tenant has no P1: its directory audits go back 7 days only.
    specs[1].has_p1 = false;
    let mut cfg = SimConfig::new(5, specs);
    cfg.delay = DelayModel::none();
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    // A small sweep budget, so the backfill (about 15 pages at this volume) takes several polls.
    let poll_cfg = PollConfig {
        sweep_budget_secs: 10,
        ..PollConfig::default()
    };
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: poll_cfg.validated().unwrap(),
        hook: None,
    };
    let start = env.clock.now();
    let full = PollJob {
        tenant_id: env.specs[0].tenant_id.clone(),
        cloud: Cloud::Global,
        stream: Stream::Signins,
        include_noninteractive: true,
        retention_days: Some(30),
    };
    let free = PollJob {
        tenant_id: env.specs[1].tenant_id.clone(),
        cloud: Cloud::Global,
        stream: Stream::DirectoryAudits,
        include_noninteractive: false,
        retention_days: Some(7),
    };

    // First poll: the regular pass over the last 30 minutes completes, the backfill starts and
    // stops at the sweep budget.
    let first = poll(&ctx, &full, start + TimeDelta::minutes(5))
        .await
        .unwrap();
    let c = stored(&store, &full).await;
    assert!(
        c.pass.is_none(),
        "the regular pass finished in the first poll"
    );
    let backfill = c.sweep.clone().expect("the backfill is under way");
    assert!(backfill.done_until < backfill.upper);
    assert!(first.stopped_at_deadline);
    assert!(
        env.clock.now() - start <= TimeDelta::seconds(10 + 20),
        "the backfill kept to its budget: {}",
        env.clock.now() - start
    );
    let origin = c.origin.unwrap();
    assert!(origin <= start - TimeDelta::days(30) + TimeDelta::minutes(11));
    assert!(origin >= start - TimeDelta::days(30));
    let fresh_truth: HashSet<String> = env
        .sim
        .ground_truth(&full.tenant_id, GroundTruthStream::SignIns, start)
        .into_iter()
        .filter(|e| e.event_time >= start - TimeDelta::minutes(30))
        .map(|e| e.id)
        .collect();
    let emitted_ids = |sink: &MemorySink| -> HashSet<String> {
        sink.events()
            .iter()
            .filter_map(|e| {
                e["metadata"]["original_event_uid"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let after_first = emitted_ids(&sink);
    assert!(!fresh_truth.is_empty());
    assert!(
        fresh_truth.is_subset(&after_first),
        "fresh events are delivered by the first poll"
    );

    // Poll every 5 simulated minutes until both backfills are done.
    let mut polls = 1;
    loop {
        let cycle = env.clock.now();
        let mut done = true;
        for job in [&full, &free] {
            poll(&ctx, job, cycle + TimeDelta::minutes(5))
                .await
                .unwrap();
            let c = stored(&store, job).await;
            done &= c.sweep.is_none();
        }
        polls += 1;
        env.clock.advance_to(cycle + TimeDelta::minutes(5));
        if done {
            break;
        }
        assert!(polls < 200, "the backfill never finished");
    }
    assert!(polls > 3, "a 30-day backfill takes several polls ({polls})");
    let end = env.clock.now();
    let emitted = emitted_ids(&sink);
    for (job, stream, days) in [
        (&full, GroundTruthStream::SignIns, 30),
        (&free, GroundTruthStream::DirectoryAudits, 7),
    ] {
        // The backfill reaches back to the stream's origin: its retention as of its first poll.
        let from = stored(&store, job).await.origin.unwrap();
        assert!(
            from >= start - TimeDelta::days(days),
            "{stream:?} origin {from}"
        );
        assert!(
            from <= start - TimeDelta::days(days) + TimeDelta::minutes(15),
            "{stream:?} origin {from}"
        );
        let truth: Vec<_> = env
            .sim
            .ground_truth(&job.tenant_id, stream, end)
            .into_iter()
            .filter(|e| e.event_time >= from && e.visible_at <= end - TimeDelta::minutes(5))
            .collect();
        assert!(truth.len() > 100, "{} events in the window", truth.len());
        let lost: Vec<_> = truth.iter().filter(|e| !emitted.contains(&e.id)).collect();
        let missing = lost.len();
        assert_eq!(
            missing,
            0,
            "{stream:?}: {missing} of {} not delivered",
            truth.len()
        );
        let oldest = env
            .sim
            .ground_truth(&job.tenant_id, stream, end)
            .into_iter()
            .filter(|e| emitted.contains(&e.id))
            .map(|e| e.event_time)
            .min()
            .unwrap();
        assert!(
            oldest >= start - TimeDelta::days(days),
            "{stream:?}: nothing before the retention ({oldest})"
        );
        assert!(oldest <= start - TimeDelta::days(days) + TimeDelta::hours(12));
    }
    let counters = env.sim.counters();
    assert_eq!(counters.throttled_app_level, 0);
    println!(
        "backfill: {polls} polls, {} events, tenant-level 429s {}",
        sink.events().len(),
        counters.throttled_tenant_level.values().sum::<u64>()
    );
    env.sim.shutdown().await;
}
