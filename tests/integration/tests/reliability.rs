//! Regression tests for defects found in review: a poll that gets nowhere must say why in the
//! tenant's health, and a refused paging link must not stall a stream or its other sources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::auth::StaticCredentials;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::health::{FailureKind, Health, HealthState};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::runner::{JobEnv, JobRequest, JobStatus, run_job};
use itdr_shared::store::{TenantRecord, TenantRegistry};
use itdr_shared::telemetry::LogTelemetry;
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{DelayModel, Faults, GroundTruthStream, SimConfig, TenantSpec};

fn context(
    env: &common::Env,
    store: &SqliteStore,
    sink: Arc<MemorySink>,
    cfg: PollConfig,
) -> PollContext {
    PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink,
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: cfg.validated().unwrap(),
        hook: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_completes_nothing_because_of_5xx_reports_the_cause_in_health() {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 60.0;
    let mut cfg = SimConfig::new(7, vec![spec]);
    cfg.delay = DelayModel::none();
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let spec = env.specs[0].clone();
    let store = SqliteStore::in_memory().unwrap();
    store
        .insert(&TenantRecord {
            tenant_id: spec.tenant_id.clone(),
            domain: Some(spec.domain.clone()),
            org: Some("Able Moose".into()),
            cloud: spec.cloud,
            app_ref: "commercial".into(),
            streams: vec![Stream::DirectoryAudits],
            include_noninteractive: true,
            enabled: true,
            health: Health::default(),
            created_at: env.clock.now(),
        })
        .await
        .unwrap();
    let mut credentials = StaticCredentials::new();
    credentials.insert("commercial", spec.app_credential());
    let jobs = JobEnv {
        served: vec![CloudGroup::Commercial],
        registry: Arc::new(store.clone()),
        credentials: Arc::new(credentials),
        tokens: env.tokens.clone(),
        poll: context(
            &env,
            &store,
            Arc::new(MemorySink::new()),
            PollConfig::default(),
        ),
        telemetry: Arc::new(LogTelemetry),
    };
    let req = JobRequest {
        tenant_id: spec.tenant_id.clone(),
        stream: Stream::DirectoryAudits,
        cloud: Some(spec.cloud),
        message_id: None,
    };
    // A healthy poll first.
    let ok = run_job(&jobs, &req, env.clock.now() + TimeDelta::minutes(4)).await;
    assert_eq!(ok.status, JobStatus::Polled);
    assert_eq!(ok.health, Some(HealthState::Healthy));
    // Then Graph answers 503 until the poll's deadline: the poll completes no slice, and the
    // tenant shows the cause instead of a healthy stop at the deadline.
    env.clock.advance(std::time::Duration::from_secs(300));
    env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            http_5xx_burst: 1000,
            ..Faults::default()
        },
    );
    let r = run_job(&jobs, &req, env.clock.now() + TimeDelta::seconds(30)).await;
    assert_eq!(r.status, JobStatus::Failed(FailureKind::Transient), "{r:?}");
    assert_eq!(r.health, Some(HealthState::Degraded));
    let h = store.get(&spec.tenant_id).await.unwrap().unwrap().health;
    assert_eq!(h.last_error_kind, Some(FailureKind::Transient));
    assert!(
        h.last_success.is_some(),
        "the earlier success stays recorded"
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_next_link_is_reported_without_stalling_the_stream_or_its_other_sources() {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 400.0;
    let mut cfg = SimConfig::new(11, vec![spec]);
    cfg.delay = DelayModel::none();
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let spec = env.specs[0].clone();
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let poll_cfg = PollConfig {
        page_size: 20,
        cursor: itdr_shared::cursor::CursorConfig {
            initial_lookback_secs: 3600,
            ..Default::default()
        },
        ..PollConfig::default()
    };
    let ctx = context(&env, &store, sink.clone(), poll_cfg);
    let job = PollJob {
        tenant_id: spec.tenant_id.clone(),
        cloud: spec.cloud,
        stream: Stream::Signins,
        include_noninteractive: true,
        retention_days: None,
    };
    // An hour of sign-ins exists; the first page of the interactive source points its
    // nextLink at a foreign host.
    env.clock.advance(std::time::Duration::from_secs(3600));
    env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            foreign_next_link: 1,
            ..Faults::default()
        },
    );
    let started = env.clock.now();
    let first = poll(&ctx, &job, env.clock.now() + TimeDelta::minutes(10))
        .await
        .expect("a refused link does not fail the poll");
    assert_eq!(first.links_refused, 1);
    assert!(first.pass_complete, "the passes moved on: {first:?}");
    // The other source of the same slice was read: non-interactive sign-ins were delivered.
    let delivered = |sink: &MemorySink| -> HashSet<String> {
        sink.events()
            .iter()
            .filter_map(|e| {
                e["metadata"]["original_event_uid"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let truth = env
        .sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::SignIns, started);
    // The stream's origin is an hour back (its initial lookback).
    let origin = started - TimeDelta::hours(1) + TimeDelta::minutes(1);
    let other: Vec<_> = truth
        .iter()
        .filter(|e| e.event_type != "interactiveUser" && e.event_time >= origin)
        .collect();
    assert!(!other.is_empty());
    let got = delivered(&sink);
    let missed: Vec<_> = other.iter().filter(|e| !got.contains(&e.id)).collect();
    assert!(
        missed.is_empty(),
        "every non-interactive sign-in was delivered in the first poll: {} of {} missed, first {:?}, started {started}, outcome {first:?}",
        missed.len(),
        other.len(),
        missed.first()
    );
    // Later polls (a sweep over the window among them) deliver everything: nothing lost.
    let mut last_start = started;
    for _ in 0..14 {
        env.clock.advance(std::time::Duration::from_secs(300));
        last_start = env.clock.now();
        poll(&ctx, &job, env.clock.now() + TimeDelta::minutes(4))
            .await
            .unwrap();
    }
    let got = delivered(&sink);
    // Everything that existed when the last poll started (no ingestion delay here).
    let truth = env
        .sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::SignIns, last_start);
    let missing: Vec<_> = truth
        .iter()
        .filter(|e| e.event_time >= origin && !got.contains(&e.id))
        .collect();
    assert!(missing.is_empty(), "{} lost", missing.len());
    env.sim.shutdown().await;
}
