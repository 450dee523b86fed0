//! End to end against moto and the Microsoft simulator: scheduler -> FIFO jobs queues ->
//! poller / poller-gcch handlers -> events queue, with sovereignty refusals, the Lambda's
//! remaining time, the fleet-wide rate budget, and the real-shaped event fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_aws_tests::{
    AwsFixture, CURSOR_TABLE, LogCapture, REGISTRY_TABLE, SECRET_PREFIX, attr, sqs_event,
};
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::aws::handler::{PollerContext, SchedulerContext, handle_jobs, handle_schedule};
use itdr_shared::clock::{Clock, ManualClock, SharedClock};
use itdr_shared::store::{
    CursorStore, Envelope, Health, HealthState, TenantRecord, TenantRegistry,
};
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{GroundTruthStream, SimConfig, SimHandle, Simulator, TenantSpec};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

struct World {
    f: AwsFixture,
    sim: SimHandle,
    clock: ManualClock,
    specs: Vec<TenantSpec>,
}

async fn start_sim(specs: &[TenantSpec], shared: SharedClock) -> SimHandle {
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    Simulator::start(SimConfig::new(7, specs.to_vec()), shared, bind)
        .await
        .unwrap()
}

/// Registers the simulator's tenants (one app reference and secret per tenant, since the
/// simulator gives each tenant its own client secret).
async fn register(f: &AwsFixture, specs: &[TenantSpec], enabled: bool, at: DateTime<Utc>) {
    register_streams(f, specs, enabled, at, &Stream::ALL).await;
}

/// [`register`] with the given streams.
async fn register_streams(
    f: &AwsFixture,
    specs: &[TenantSpec],
    enabled: bool,
    at: DateTime<Utc>,
    streams: &[Stream],
) {
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    for s in specs {
        let app_ref = format!("sim-{}", s.tenant_id);
        reg.insert(&TenantRecord {
            tenant_id: s.tenant_id.clone(),
            domain: Some(s.domain.clone()),
            org: None,
            cloud: s.cloud,
            app_ref: app_ref.clone(),
            streams: streams.to_vec(),
            include_noninteractive: true,
            enabled,
            health: Health::default(),
            created_at: at,
        })
        .await
        .unwrap();
        f.put_secret(
            &format!("{SECRET_PREFIX}/{}/{app_ref}", s.cloud.group()),
            &serde_json::json!({"client_id": s.app_id, "client_secret": s.client_secret})
                .to_string(),
        )
        .await;
    }
}

async fn world(specs: Vec<TenantSpec>) -> World {
    let f = AwsFixture::start().await;
    let clock = ManualClock::new(t0());
    let sim = start_sim(&specs, Arc::new(clock.clone())).await;
    register(&f, &specs, true, clock.now()).await;
    World {
        f,
        sim,
        clock,
        specs,
    }
}

fn poller(
    w_f: &AwsFixture,
    sim: &SimHandle,
    clock: SharedClock,
    group: CloudGroup,
    share: u32,
    poll: &serde_json::Value,
) -> PollerContext {
    let cfg = w_f.poller_config(group, share, poll, &sim.base_url());
    PollerContext::from_config(&cfg, &w_f.sdk, clock).unwrap()
}

fn scheduler(f: &AwsFixture, clock: SharedClock) -> SchedulerContext {
    SchedulerContext::from_config(&f.scheduler_config(), &f.sdk, clock)
}

fn schedule_event(at: DateTime<Utc>) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../events/scheduler-eventbridge.json")).unwrap();
    v["time"] = serde_json::json!(at.to_rfc3339());
    v
}

fn envelopes(msgs: &[Message]) -> Vec<Envelope> {
    msgs.iter()
        .map(|m| {
            // Every message honours the queue contract (`contract/`).
            let wrong = itdr_aws_tests::queue_contract::envelope_message_errors(m);
            assert!(wrong.is_empty(), "queue contract: {wrong:?}");
            let e: Envelope = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(attr(m, "tenant_id").as_deref(), Some(e.tenant_id.as_str()));
            assert_eq!(attr(m, "stream").as_deref(), Some(e.stream.as_str()));
            e
        })
        .collect()
}

fn sys_attr(m: &Message, name: MessageSystemAttributeName) -> Option<String> {
    m.attributes().and_then(|a| a.get(&name)).cloned()
}

fn capture_logs() -> (LogCapture, tracing::subscriber::DefaultGuard) {
    let logs = LogCapture::default();
    let writer = logs.clone();
    let guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish(),
    );
    (logs, guard)
}

fn small_poll() -> serde_json::Value {
    serde_json::json!({"cursor": {"initial_lookback_secs": 3600}})
}

#[tokio::test]
async fn scheduler_to_both_pollers_to_events_queue() {
    let (logs, _g) = capture_logs();
    let mut specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
    ];
    specs[0].audits_per_hour = 60.0;
    specs[1].audits_per_hour = 60.0;
    let w = world(specs).await;
    // A disabled tenant is skipped by the scheduler.
    let disabled = TenantSpec::new(2, Cloud::Global);
    register(&w.f, std::slice::from_ref(&disabled), false, t0()).await;

    let sched = scheduler(&w.f, Arc::new(w.clock.clone()));
    let s = handle_schedule(schedule_event(t0()), &sched).await.unwrap();
    assert_eq!((s.commercial_jobs, s.usgov_jobs, s.skipped), (3, 3, 1));
    // A retried schedule invocation in the same slot adds nothing (deduplication ids).
    handle_schedule(schedule_event(t0() + TimeDelta::seconds(30)), &sched)
        .await
        .unwrap();
    let jobs_c = w.f.drain(&w.f.queues.jobs_commercial).await;
    let jobs_u = w.f.drain(&w.f.queues.jobs_usgov).await;
    assert_eq!((jobs_c.len(), jobs_u.len()), (3, 3));
    for (m, tenant) in jobs_c
        .iter()
        .map(|m| (m, &w.specs[0].tenant_id))
        .chain(jobs_u.iter().map(|m| (m, &w.specs[1].tenant_id)))
    {
        let group = sys_attr(m, MessageSystemAttributeName::MessageGroupId).unwrap();
        let stream = attr(m, "stream").unwrap();
        let key = if ["signins", "directory_audits"].contains(&stream.as_str()) {
            "reports"
        } else {
            stream.as_str()
        };
        assert_eq!(group, format!("{tenant}#{key}"));
        let dedup = sys_attr(m, MessageSystemAttributeName::MessageDeduplicationId).unwrap();
        assert_eq!(
            dedup,
            format!("{tenant}#{stream}#{}", t0().timestamp() / 300)
        );
    }

    // Each poller gets its own jobs plus one of the other group's (misrouted).
    let poll = small_poll();
    let commercial = poller(
        &w.f,
        &w.sim,
        Arc::new(w.clock.clone()),
        CloudGroup::Commercial,
        48,
        &poll,
    );
    let gcch = poller(
        &w.f,
        &w.sim,
        Arc::new(w.clock.clone()),
        CloudGroup::UsGov,
        48,
        &poll,
    );
    let mut to_c = jobs_c.clone();
    to_c.push(jobs_u[0].clone());
    let mut to_u = jobs_u.clone();
    to_u.push(jobs_c[0].clone());
    let rc = handle_jobs(
        sqs_event(&w.f.queues.jobs_commercial, &to_c),
        &commercial,
        Duration::from_secs(600),
    )
    .await;
    let ru = handle_jobs(
        sqs_event(&w.f.queues.jobs_usgov, &to_u),
        &gcch,
        Duration::from_secs(600),
    )
    .await;
    let ids = |r: &aws_lambda_events::event::sqs::SqsBatchResponse| {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&rc), vec![jobs_u[0].message_id().unwrap().to_string()]);
    assert_eq!(ids(&ru), vec![jobs_c[0].message_id().unwrap().to_string()]);
    let text = logs.text();
    assert_eq!(
        text.matches("cloud_group_mismatch").count(),
        2,
        "refusals are logged with a reason"
    );
    assert!(text.contains("sovereignty"));
    for s in &w.specs {
        assert!(
            !text.contains(&s.client_secret),
            "a client secret was logged"
        );
    }

    // Events: every envelope well-formed, events unique, from the right tenant, covering what
    // Microsoft had made visible in the window.
    let envs = envelopes(&w.f.drain(&w.f.queues.events).await);
    let mut uids = HashSet::new();
    let mut by_key: HashMap<(String, Stream), HashSet<String>> = HashMap::new();
    for e in &envs {
        assert_eq!(e.envelope_version, 1);
        for ev in &e.events {
            assert!(uids.insert(ev["metadata"]["uid"].as_str().unwrap().to_string()));
            assert_eq!(
                ev["metadata"]["tenant_uid"].as_str(),
                Some(e.tenant_id.as_str())
            );
            by_key
                .entry((e.tenant_id.clone(), e.stream))
                .or_default()
                .insert(
                    ev["metadata"]["original_event_uid"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
        }
    }
    let now = w.clock.now();
    for s in &w.specs {
        for (stream, truth) in [
            (Stream::Signins, GroundTruthStream::SignIns),
            (Stream::DirectoryAudits, GroundTruthStream::DirectoryAudits),
        ] {
            let got = by_key
                .get(&(s.tenant_id.clone(), stream))
                .cloned()
                .unwrap_or_default();
            let expected: Vec<_> = w
                .sim
                .ground_truth(&s.tenant_id, truth, now)
                .into_iter()
                .filter(|t| {
                    t.event_time >= t0() - TimeDelta::minutes(50)
                        && t.visible_at <= t0() - TimeDelta::minutes(1)
                })
                .collect();
            assert!(
                !expected.is_empty(),
                "{} {stream}: no ground truth",
                s.cloud
            );
            let missing = expected.iter().filter(|t| !got.contains(&t.id)).count();
            assert_eq!(
                missing,
                0,
                "{} {stream}: {missing} of {} missing",
                s.cloud,
                expected.len()
            );
        }
    }
    // The unified audit stream: every record of a blob that became available since the first
    // poll's reach (its window is on availability time) arrived through both pollers.
    for s in &w.specs {
        let got = by_key
            .get(&(s.tenant_id.clone(), Stream::UnifiedAudit))
            .cloned()
            .unwrap_or_default();
        let expected: Vec<_> = [
            GroundTruthStream::AuditExchange,
            GroundTruthStream::AuditAzureActiveDirectory,
            GroundTruthStream::AuditGeneral,
        ]
        .into_iter()
        .flat_map(|gt| w.sim.ground_truth(&s.tenant_id, gt, now))
        .filter(|t| {
            t.content_created
                .is_some_and(|c| c >= t0() - TimeDelta::minutes(50))
                && t.visible_at <= t0() - TimeDelta::minutes(1)
        })
        .collect();
        assert!(
            !expected.is_empty(),
            "{} unified_audit: no ground truth",
            s.cloud
        );
        let missing = expected.iter().filter(|t| !got.contains(&t.id)).count();
        assert_eq!(
            missing,
            0,
            "{} unified_audit: {missing} of {} missing",
            s.cloud,
            expected.len()
        );
    }
    // Sovereignty on the wire: each tenant's calls went to its own cloud's hosts only.
    for r in w.sim.request_log() {
        match r.tenant_id.as_deref() {
            Some(t) if t == w.specs[1].tenant_id => assert!(r.host.ends_with(".us"), "{}", r.host),
            Some(t) if t == w.specs[0].tenant_id => assert!(r.host.ends_with(".com"), "{}", r.host),
            _ => {}
        }
    }

    // Cursors committed and health recorded.
    let cursors = DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE);
    let reg = DynamoRegistry::new(w.f.ddb.clone(), REGISTRY_TABLE);
    for s in &w.specs {
        for stream in Stream::ALL {
            let c = cursors.load(&s.tenant_id, stream).await.unwrap();
            assert!(c.is_some_and(|c| c.version >= 1), "{} {stream}", s.cloud);
        }
        let h = reg.get(&s.tenant_id).await.unwrap().unwrap().health;
        assert_eq!(h.state, HealthState::Healthy, "{}", s.cloud);
        assert_eq!(h.consecutive_failures, 0);
        assert!(h.last_success.is_some());
    }
    let h = reg.get(&disabled.tenant_id).await.unwrap().unwrap().health;
    assert_eq!(h.state, HealthState::Pending);
    assert!(w.f.drain(&w.f.queues.dead_letters).await.is_empty());
}

#[tokio::test]
async fn remaining_time_stops_early_and_commits_exactly_what_was_sent() {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 600.0;
    let w = world(vec![spec]).await;
    let tenant = w.specs[0].tenant_id.clone();
    // The backfill may use the whole invocation here: this is about the Lambda's remaining time.
    let poll = serde_json::json!({"page_size": 20, "sweep_budget_secs": 900, "cursor": {"initial_lookback_secs": 3 * 3600}});
    let ctx = poller(
        &w.f,
        &w.sim,
        Arc::new(w.clock.clone()),
        CloudGroup::Commercial,
        48,
        &poll,
    );
    let sched = scheduler(&w.f, Arc::new(w.clock.clone()));
    let cursors = DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE);

    handle_schedule(schedule_event(w.clock.now()), &sched)
        .await
        .unwrap();
    let jobs: Vec<Message> =
        w.f.drain(&w.f.queues.jobs_commercial)
            .await
            .into_iter()
            .filter(|m| attr(m, "stream").as_deref() == Some("signins"))
            .collect();
    assert_eq!(jobs.len(), 1);
    // 60 s left: with Microsoft's 5 requests per 10 s per tenant, far too little for ~90 pages.
    let started = w.clock.now();
    let r = handle_jobs(
        sqs_event(&w.f.queues.jobs_commercial, &jobs),
        &ctx,
        Duration::from_secs(60),
    )
    .await;
    assert!(r.batch_item_failures.is_empty(), "the job succeeded");
    assert!(
        w.clock.now() <= started + TimeDelta::seconds(60),
        "stopped in time"
    );
    let first: Vec<Envelope> = envelopes(&w.f.drain(&w.f.queues.events).await);
    let n1: usize = first.iter().map(|e| e.events.len()).sum();
    let c1 = cursors
        .load(&tenant, Stream::Signins)
        .await
        .unwrap()
        .unwrap();
    assert!(n1 > 0, "what was fetched was sent");
    let truth_total = w
        .sim
        .ground_truth(&tenant, GroundTruthStream::SignIns, started)
        .into_iter()
        .filter(|t| t.event_time >= started - TimeDelta::hours(3) && t.visible_at <= started)
        .count();
    assert!(n1 < truth_total, "stopped early: {n1} of {truth_total}");

    // The next slot's job continues from the committed cursor: nothing is sent twice, the rest
    // arrives.
    w.clock.advance(Duration::from_secs(300));
    handle_schedule(schedule_event(w.clock.now()), &sched)
        .await
        .unwrap();
    let jobs: Vec<Message> =
        w.f.drain(&w.f.queues.jobs_commercial)
            .await
            .into_iter()
            .filter(|m| attr(m, "stream").as_deref() == Some("signins"))
            .collect();
    let r = handle_jobs(
        sqs_event(&w.f.queues.jobs_commercial, &jobs),
        &ctx,
        Duration::from_secs(900),
    )
    .await;
    assert!(r.batch_item_failures.is_empty());
    let second = envelopes(&w.f.drain(&w.f.queues.events).await);
    let c2 = cursors
        .load(&tenant, Stream::Signins)
        .await
        .unwrap()
        .unwrap();
    assert!(c2.version > c1.version);
    let mut seen = HashSet::new();
    let mut dupes = 0;
    for e in first.iter().chain(&second) {
        for ev in &e.events {
            if !seen.insert(
                ev["metadata"]["original_event_uid"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ) {
                dupes += 1;
            }
        }
    }
    assert_eq!(
        dupes, 0,
        "the first run's events were committed, not re-sent"
    );
    let missing = w
        .sim
        .ground_truth(&tenant, GroundTruthStream::SignIns, started)
        .into_iter()
        .filter(|t| {
            t.event_time >= started - TimeDelta::minutes(170)
                && t.visible_at <= started - TimeDelta::minutes(1)
        })
        .filter(|t| !seen.contains(&t.id))
        .count();
    assert_eq!(missing, 0);
}

/// Runs `batches` on `instances` concurrent poller contexts, each instance taking its batches
/// one after the other (as one Lambda instance does).
async fn run_fleet(contexts: &[PollerContext], queue_url: &str, jobs: &[Message]) -> usize {
    // Jobs sorted by stream then tenant, batches of 10; instance i takes a sign-ins batch and
    // then a directory-audits batch of other tenants, as SQS would spread them.
    let mut jobs = jobs.to_vec();
    jobs.sort_by_key(|m| (attr(m, "stream"), attr(m, "tenant_id")));
    let batches: Vec<SqsEvent> = jobs.chunks(10).map(|c| sqs_event(queue_url, c)).collect();
    let n = contexts.len();
    let half = batches.len() / 2;
    let per_instance: Vec<Vec<SqsEvent>> = (0..n)
        .map(|i| {
            batches
                .iter()
                .enumerate()
                .filter(|(b, _)| {
                    if *b < half {
                        b % n == i
                    } else {
                        (b - half + 1) % n == i
                    }
                })
                .map(|(_, e)| e.clone())
                .collect()
        })
        .collect();
    let runs = contexts
        .iter()
        .zip(per_instance)
        .map(|(ctx, events)| async move {
            let mut failures = 0;
            for e in events {
                failures += handle_jobs(e, ctx, Duration::from_secs(900))
                    .await
                    .batch_item_failures
                    .len();
            }
            failures
        });
    let mut set = Vec::new();
    for r in runs {
        set.push(r);
    }
    let results = join_all(set).await;
    results.into_iter().sum()
}

/// Polls futures concurrently on the current task.
async fn join_all<F: std::future::Future<Output = usize>>(futs: Vec<F>) -> Vec<usize> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<usize>> = vec![None; futs.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// What a fleet run measured.
struct FleetRun {
    failures: usize,
    app_429: u64,
    graph_requests: u64,
    virtual_secs: i64,
}

/// One schedule slot of `specs` (sign-ins and directory audits) on `INSTANCES` concurrent
/// poller instances, each pacing every app registration at `per_instance` requests per 10 s.
async fn fleet_run(
    f: &AwsFixture,
    specs: &[TenantSpec],
    per_instance: u32,
    label: &str,
) -> FleetRun {
    // Virtual time shared by the simulator and the pollers: it moves only when someone
    // waits, so an unpaced fleet sends everything in one instant (the harshest burst), and
    // a paced one moves time forward only by its own pacing.
    let clock: SharedClock = Arc::new(ManualClock::new(t0()));
    let sim = start_sim(specs, clock.clone()).await;
    // Graph streams only: this is about Graph's app-wide limit.
    register_streams(
        f,
        specs,
        true,
        t0(),
        &[Stream::Signins, Stream::DirectoryAudits],
    )
    .await;
    let poll = small_poll();
    let contexts: Vec<PollerContext> = (0..INSTANCES)
        .map(|_| {
            poller(
                f,
                &sim,
                clock.clone(),
                CloudGroup::Commercial,
                per_instance,
                &poll,
            )
        })
        .collect();
    handle_schedule(schedule_event(t0()), &scheduler(f, clock.clone()))
        .await
        .unwrap();
    let jobs = f.drain(&f.queues.jobs_commercial).await;
    assert_eq!(jobs.len(), specs.len() * 2);
    let real = Instant::now();
    let failures = run_fleet(&contexts, &f.queues.jobs_commercial, &jobs).await;
    let c = sim.counters();
    let graph_requests: u64 = sim
        .request_log()
        .iter()
        .filter(|r| r.host.starts_with("graph"))
        .count() as u64;
    let virtual_secs = (clock.now() - t0()).num_seconds();
    eprintln!(
        "{label}: {graph_requests} graph requests over {virtual_secs} s of clock time in {:.1} s; app-level 429s {}, tenant-level 429s {}",
        real.elapsed().as_secs_f64(),
        c.throttled_app_level,
        c.throttled_tenant_level.values().sum::<u64>()
    );
    sim.shutdown().await;
    FleetRun {
        failures,
        app_429: c.throttled_app_level,
        graph_requests,
        virtual_secs,
    }
}

/// Concurrent poller instances of the fleet tests.
const INSTANCES: u32 = 4;

/// 60 tenants on one app, 4 concurrent poller instances each pacing at its share
/// floor(0.8 x 122 / 4) = 24 requests per 10 s: the simulator never answers an app-level 429.
/// Control: the same fleet with every instance believing it has the whole limit does get
/// app-level 429s, so the test can tell the difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_stays_under_the_app_wide_limit() {
    let share = (0.8 * 122.0 / f64::from(INSTANCES)).floor() as u32;
    assert_eq!(share, 24);
    // One hourly slice per job: sign-ins 2 requests, directory audits 1, about 180 in all, and
    // never more than Microsoft's 5 per tenant, so only the app-wide limit is in play.
    let specs: Vec<TenantSpec> = (0..60).map(|i| TenantSpec::new(i, Cloud::Global)).collect();
    let mut f = AwsFixture::start().await;
    let budgeted = fleet_run(&f, &specs, share, "budgeted").await;
    f.reset().await;
    let control = fleet_run(&f, &specs, 122, "control").await;
    assert_eq!(budgeted.failures, 0);
    assert_eq!(
        budgeted.app_429, 0,
        "the budgeted fleet never hit the app-wide limit"
    );
    assert!(
        budgeted.graph_requests > 122,
        "the fleet needed more than one window's worth: {}",
        budgeted.graph_requests
    );
    assert!(
        control.app_429 > 0,
        "the unbudgeted control fleet is throttled app-wide"
    );
}

/// Scale-out: the same 60 tenants split over two app registrations of the group. Each
/// registration has its own app-wide limit, and each instance paces each app at its share, so
/// the slot's work takes less time, still without one app-level 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_app_registrations_double_the_fleet_budget() {
    // A small share per app, so that the app windows (not the instances' other waits) bound
    // how long the slot's work takes.
    let share = 6;
    let one_app: Vec<TenantSpec> = (0..60).map(|i| TenantSpec::new(i, Cloud::Global)).collect();
    let mut two_apps = one_app.clone();
    for s in two_apps.iter_mut().skip(30) {
        s.app_id = "5d9a7c3e-2b41-4f8e-9c06-1a2b3c4d5e6f".into();
        s.client_secret = "sim~commercial-b~secret".into();
    }
    let mut f = AwsFixture::start().await;
    let single = fleet_run(&f, &one_app, share, "one app").await;
    f.reset().await;
    let double = fleet_run(&f, &two_apps, share, "two apps").await;
    for run in [&single, &double] {
        assert_eq!(run.failures, 0);
        assert_eq!(run.app_429, 0, "no app-level 429");
    }
    assert!(
        (double.graph_requests as f64) > 0.9 * single.graph_requests as f64,
        "the same work: {} vs {}",
        double.graph_requests,
        single.graph_requests
    );
    // Not half: an instance sends one request at a time, so while it waits for one app's
    // window it sends nothing for the other (measured: 160 s against 220 s).
    assert!(
        (double.virtual_secs as f64) < 0.85 * single.virtual_secs as f64,
        "two apps finish the slot sooner: {} s vs {} s",
        double.virtual_secs,
        single.virtual_secs
    );
}

#[tokio::test]
async fn real_shaped_event_fixtures_drive_the_handlers() {
    let f = AwsFixture::start().await;
    let clock = ManualClock::new(t0());
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    // The fixture's commercial job names a tenant that is registered but disabled.
    let rec = TenantRecord {
        tenant_id: "0b3a4c1e-2f6d-4a8b-9c7e-1d2f3a4b5c6d".into(),
        domain: None,
        org: None,
        cloud: Cloud::Global,
        app_ref: "default".into(),
        streams: Stream::ALL.to_vec(),
        include_noninteractive: false,
        enabled: false,
        health: Health::default(),
        created_at: t0(),
    };
    reg.insert(&rec).await.unwrap();

    let ctx = poller(
        &f,
        &start_sim(&[], Arc::new(clock.clone())).await,
        Arc::new(clock.clone()),
        CloudGroup::Commercial,
        24,
        &small_poll(),
    );
    let event: SqsEvent =
        serde_json::from_str(include_str!("../events/sqs-jobs-commercial.json")).unwrap();
    assert_eq!(event.records.len(), 3);
    let r = handle_jobs(event, &ctx, Duration::from_secs(60)).await;
    let failed: Vec<_> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // Malformed body and a GCC High job: refused; the disabled tenant's job: acknowledged.
    assert_eq!(
        failed,
        [
            "5f9b0c2a-7e41-4d8a-b6f3-2a9c1e0d4b7f",
            "c3d2e1f0-8a7b-4c6d-9e5f-0a1b2c3d4e5f"
        ]
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], failed[0]);
    // The GCC High fixture parses too, and the scheduler fixture's time picks the slot.
    let gcch: SqsEvent =
        serde_json::from_str(include_str!("../events/sqs-jobs-usgov.json")).unwrap();
    assert_eq!(gcch.records.len(), 1);
    let sched: serde_json::Value =
        serde_json::from_str(include_str!("../events/scheduler-eventbridge.json")).unwrap();
    let at =
        itdr_shared::aws::handler::schedule_time(&sched, &(Arc::new(clock.clone()) as SharedClock));
    assert_eq!(at.to_rfc3339(), "2026-06-01T12:00:00+00:00");
}

#[tokio::test]
async fn a_commercial_only_stack_schedules_its_tenants_and_reports_the_others() {
    let (logs, _g) = capture_logs();
    let specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
    ];
    let w = world(specs).await;
    // The template passes an empty US Government queue URL to a commercial-only stack.
    let mut env = w.f.scheduler_env();
    env.insert("ITDR_JOBS_QUEUE_USGOV_URL".into(), String::new());
    let cfg = itdr_shared::aws::config::SchedulerConfig::from_lookup(&|k| env.get(k).cloned())
        .expect("a single-group stack's scheduler starts");
    assert_eq!(cfg.jobs_queue_usgov_url, None);
    let sched = SchedulerContext::from_config(&cfg, &w.f.sdk, Arc::new(w.clock.clone()));
    let s = handle_schedule(schedule_event(t0()), &sched).await.unwrap();
    assert_eq!(
        (s.commercial_jobs, s.usgov_jobs, s.unserved_jobs),
        (3, 0, 3)
    );
    assert_eq!(w.f.drain(&w.f.queues.jobs_commercial).await.len(), 3);
    assert!(w.f.drain(&w.f.queues.jobs_usgov).await.is_empty());
    assert!(logs.text().contains("does not run are registered"));
}
