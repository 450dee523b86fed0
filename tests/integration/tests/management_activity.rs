//! The unified audit stream against the simulator's Management Activity API: paging and blob
//! fetch, windows on availability time with late and out-of-order content, a crash between
//! blob fetch and commit, lost content reported, throttling, subscriptions and the health of
//! a tenant whose audit log is off, the sovereignty of the US Government content hosts, and
//! slices of at most 3 hours for this source, which reads each slice's listing whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use itdr_shared::auth::StaticCredentials;
use itdr_shared::client::{Priority, Rate, Tenant};
use itdr_shared::clock::Clock;
use itdr_shared::cursor::{Cursor, CursorConfig};
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::health::{FailureKind, HealthState};
use itdr_shared::poll::{Crash, PollConfig, PollContext, PollJob, Step, StepHook, poll};
use itdr_shared::runner::{JobEnv, JobRequest, JobStatus, run_job};
use itdr_shared::source::management_activity::{
    ContentType, ManagementActivitySource, StartOutcome, list_subscriptions, start_subscription,
    stop_subscription,
};
use itdr_shared::source::{Window, WindowedSource};
use itdr_shared::store::{CursorStore, Health, TenantRecord, TenantRegistry};
use itdr_shared::telemetry::LogTelemetry;
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{Faults, GroundTruthStream, SimConfig, TenantSpec, TruthEvent};

fn tenant(spec: &TenantSpec) -> Tenant {
    Tenant {
        id: spec.tenant_id.clone(),
        cloud: spec.cloud,
    }
}

fn job(spec: &TenantSpec) -> PollJob {
    PollJob {
        tenant_id: spec.tenant_id.clone(),
        cloud: spec.cloud,
        stream: Stream::UnifiedAudit,
        include_noninteractive: true,
        retention_days: None,
    }
}

struct Harness {
    env: common::Env,
    store: SqliteStore,
    sink: Arc<MemorySink>,
    dead: Arc<MemoryDeadLetters>,
    ctx: PollContext,
}

async fn harness(mut cfg: SimConfig, poll_cfg: PollConfig) -> Harness {
    // Half a day of history is all these tests read (the ground truth walks all of it).
    cfg.history = TimeDelta::hours(12);
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let dead = Arc::new(MemoryDeadLetters::new());
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: dead.clone(),
        config: poll_cfg.validated().unwrap(),
        hook: None,
    };
    Harness {
        env,
        store,
        sink,
        dead,
        ctx,
    }
}

fn small_poll() -> PollConfig {
    PollConfig {
        cursor: CursorConfig {
            initial_lookback_secs: 3 * 3600,
            ..CursorConfig::default()
        },
        ..PollConfig::default()
    }
}

/// The ground truth of the default content types (Exchange, Entra ID, General).
fn truth(h: &Harness, spec: &TenantSpec, until: DateTime<Utc>) -> Vec<TruthEvent> {
    [
        GroundTruthStream::AuditExchange,
        GroundTruthStream::AuditAzureActiveDirectory,
        GroundTruthStream::AuditGeneral,
    ]
    .into_iter()
    .flat_map(|s| h.env.sim.ground_truth(&spec.tenant_id, s, until))
    .collect()
}

/// The Exchange records of the ground truth whose content was created in `[lower, upper]` and
/// that were visible by `now`.
fn visible_exchange(
    h: &Harness,
    spec: &TenantSpec,
    lower: DateTime<Utc>,
    upper: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<TruthEvent> {
    h.env
        .sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::AuditExchange, now)
        .into_iter()
        .filter(|e| {
            let c = e.content_created.unwrap();
            c >= lower && c <= upper && e.visible_at <= now
        })
        .collect()
}

fn delivered(sink: &MemorySink) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for e in sink.events() {
        *out.entry(
            e["metadata"]["original_event_uid"]
                .as_str()
                .unwrap()
                .to_string(),
        )
        .or_default() += 1;
    }
    out
}

async fn origin(h: &Harness, spec: &TenantSpec) -> DateTime<Utc> {
    let c = h
        .store
        .load(&spec.tenant_id, Stream::UnifiedAudit)
        .await
        .unwrap()
        .unwrap();
    Cursor::from_doc(&c.doc).unwrap().origin.unwrap()
}

#[tokio::test]
async fn listings_are_paged_and_every_blob_of_the_window_is_fetched_once() {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.exchange_per_hour = 300.0;
    let mut cfg = SimConfig::new(21, vec![spec.clone()]);
    cfg.management.page_size = 4;
    let h = harness(cfg, small_poll()).await;
    h.env.clock.advance(std::time::Duration::from_secs(3600));
    let now = h.env.clock.now();
    let t = tenant(&spec);
    let window = Window {
        tenant: &t,
        lower: now - TimeDelta::hours(6),
        upper: now,
        deadline: now + TimeDelta::minutes(10),
        priority: Priority::Regular,
        page_size: 1000,
        resume: None,
        max_records: None,
    };
    let source = ManagementActivitySource::new(ContentType::Exchange);
    let f = source.fetch(&h.env.client, &window).await;
    assert!(f.error.is_none(), "{:?}", f.error);
    assert!(f.lost.is_empty());
    let got: HashSet<&str> = f.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(got.len(), f.records.len(), "each record once");
    let expected = visible_exchange(&h, &spec, window.lower, window.upper, now);
    assert!(expected.len() > 100, "{}", expected.len());
    let missing = expected
        .iter()
        .filter(|e| !got.contains(e.id.as_str()))
        .count();
    assert_eq!(missing, 0, "of {}", expected.len());
    // Each record sits at its blob's availability time; its event time is earlier.
    for r in &f.records {
        assert!(r.at >= window.lower && r.at <= window.upper);
        assert!(r.event_time.unwrap() <= r.at);
    }
    // Paged with NextPageUri (the /api/v1/ form), and every request carried our publisher id.
    let log = h.env.sim.request_log();
    let mgmt: Vec<_> = log
        .iter()
        .filter(|r| r.host == "manage.office.com")
        .collect();
    assert!(
        mgmt.iter()
            .any(|r| r.query.contains("nextPage=") && r.path.starts_with("/api/v1/"))
    );
    assert!(mgmt.iter().filter(|r| r.path.contains("/audit/")).count() > 10);
    for r in &mgmt {
        assert!(
            r.query
                .contains(&format!("PublisherIdentifier={}", common::PUBLISHER_ID)),
            "{} {}",
            r.path,
            r.query
        );
        assert_eq!(r.status, 200, "{} {}", r.path, r.query);
    }
}

/// Crashes at `Fetched` or at `Sent` (after the blobs were fetched, before the commit) with
/// probability 0.3.
struct CrashAfterFetch {
    rng: Mutex<rand::rngs::StdRng>,
    crashes: Mutex<u64>,
}

impl StepHook for CrashAfterFetch {
    fn at(&self, step: Step) -> Result<(), Crash> {
        use rand::Rng;
        if matches!(step, Step::Fetched | Step::Sent) && self.rng.lock().unwrap().random_bool(0.3) {
            *self.crashes.lock().unwrap() += 1;
            return Err(Crash(step));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_out_of_order_content_and_crashes_between_fetch_and_commit_lose_nothing() {
    let mut spec = TenantSpec::new(1, Cloud::Global);
    spec.exchange_per_hour = 60.0;
    spec.general_per_hour = 20.0;
    spec.aad_per_hour = Some(80.0);
    let cfg = SimConfig::new(22, vec![spec.clone()]);
    // A 4-hour horizon covers the simulator's listing lag (at most an hour) and keeps the
    // sweeps short.
    let poll_cfg = PollConfig {
        cursor: CursorConfig {
            initial_lookback_secs: 3 * 3600,
            horizon_secs: 4 * 3600,
            ..CursorConfig::default()
        },
        ..PollConfig::default()
    };
    let mut h = harness(cfg, poll_cfg).await;
    let hook = Arc::new(CrashAfterFetch {
        rng: Mutex::new(rand::SeedableRng::seed_from_u64(5)),
        crashes: Mutex::new(0),
    });
    h.ctx.hook = Some(hook.clone());
    let j = job(&spec);
    let start = h.env.clock.now();
    // Six simulated hours of 5-minute polls, crashing now and then after the fetch.
    while h.env.clock.now() < start + TimeDelta::hours(6) {
        let cycle = h.env.clock.now();
        let _ = poll(&h.ctx, &j, cycle + TimeDelta::minutes(5)).await;
        h.env.clock.advance_to(cycle + TimeDelta::minutes(5));
    }
    // Then without crashes until a sweep has started after everything became visible.
    h.ctx.hook = None;
    while h.env.clock.now() < start + TimeDelta::hours(8) {
        let cycle = h.env.clock.now();
        let out = poll(&h.ctx, &j, cycle + TimeDelta::minutes(5))
            .await
            .unwrap();
        assert_eq!(out.content_lost, 0);
        h.env.clock.advance_to(cycle + TimeDelta::minutes(5));
    }
    let end = h.env.clock.now();
    let origin = origin(&h, &spec).await;
    assert!(origin <= start - TimeDelta::hours(2), "{origin}");
    let seen = delivered(&h.sink);
    let expected: Vec<TruthEvent> = truth(&h, &spec, end)
        .into_iter()
        .filter(|e| {
            e.content_created.unwrap() >= origin && e.visible_at <= end - TimeDelta::hours(1)
        })
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !seen.contains_key(&e.id))
        .collect();
    assert!(expected.len() > 600, "{}", expected.len());
    assert!(*hook.crashes.lock().unwrap() > 20);
    assert!(
        missing.is_empty(),
        "{} of {} lost, e.g. {:?}",
        missing.len(),
        expected.len(),
        missing.first()
    );
    // Late content: events older than the stream's origin arrived in blobs made available after
    // it, and were delivered without reading before the origin.
    let late = expected.iter().filter(|e| e.event_time < origin).count();
    assert!(late > 0, "the simulator delivers late content");
    // Out of order: a later blob held an older event than an earlier blob.
    let mut by_blob: Vec<&TruthEvent> = expected.iter().collect();
    by_blob.sort_by_key(|e| e.content_created);
    assert!(
        by_blob
            .windows(2)
            .any(|w| w[1].event_time < w[0].event_time)
    );
    // The crashes cost duplicates only.
    let dups: u32 = seen.values().map(|n| n - 1).sum();
    assert!(dups > 0, "crashes after sending re-send");
    // Every listing window met the API's rules (the simulator refuses others with 400).
    for r in h
        .env
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content"))
    {
        assert_eq!(r.status, 200, "{}", r.query);
    }
    // Every event is valid OCSF for its class and profiles.
    for e in h.sink.events().iter().step_by(7).take(400) {
        let errs = common::ocsf::all_errors(e);
        assert!(errs.is_empty(), "{errs:?}\n{e:#}");
    }
}

#[tokio::test]
async fn expired_and_failing_blobs_are_retried_then_reported_never_skipped() {
    let mut spec = TenantSpec::new(2, Cloud::Global);
    spec.exchange_per_hour = 120.0;
    let cfg = SimConfig::new(23, vec![spec.clone()]);
    let h = harness(cfg, small_poll()).await;
    // A blob that fails twice with AF50000 is retried and read; two expire for good.
    h.env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            management_5xx_burst: 0,
            expired_content: 2,
            ..Faults::default()
        },
    );
    let j = job(&spec);
    let now = h.env.clock.now();
    let out = poll(&h.ctx, &j, now + TimeDelta::minutes(5)).await.unwrap();
    assert_eq!(out.content_lost, 2);
    assert!(out.dead_lettered >= 2);
    let letters = h.dead.letters();
    let lost: Vec<_> = letters
        .iter()
        .filter(|l| l.reason.starts_with("content lost"))
        .collect();
    assert_eq!(lost.len(), 2);
    for l in &lost {
        assert!(l.reason.contains("AF20051"), "{}", l.reason);
        assert!(l.reason.contains("unified_audit."), "{}", l.reason);
        assert!(l.record["contentId"].is_string());
        assert!(l.record["contentType"].is_string());
        assert_eq!(l.stream, Stream::UnifiedAudit);
    }
    assert!(out.emitted > 0, "the other blobs were delivered");

    // Transient failures: retried, nothing lost.
    h.env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            management_5xx_burst: 2,
            ..Faults::default()
        },
    );
    h.env.clock.advance(std::time::Duration::from_secs(600));
    let now = h.env.clock.now();
    let out = poll(&h.ctx, &j, now + TimeDelta::minutes(5)).await.unwrap();
    assert_eq!(out.content_lost, 0);
}

#[tokio::test]
async fn af429_on_a_403_is_throttling_backed_off_without_retry_after() {
    let spec = TenantSpec::new(3, Cloud::Global);
    let cfg = SimConfig::new(24, vec![spec.clone()]);
    let h = harness(cfg, small_poll()).await;
    h.env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            af429_burst: 2,
            ..Faults::default()
        },
    );
    let before = h.env.clock.now();
    let out = poll(&h.ctx, &job(&spec), before + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(out.throttled, 2);
    assert!(out.emitted > 0);
    let log = h.env.sim.request_log();
    let throttled: Vec<_> = log.iter().filter(|r| r.status == 403).collect();
    assert_eq!(throttled.len(), 2);
    // No Retry-After: the client's own backoff (at least 5 s before the first retry).
    assert!(h.env.clock.now() - before >= TimeDelta::seconds(10));
    assert_eq!(
        h.env.sim.counters().throttled_tenant_level[&spec.tenant_id],
        2
    );
}

async fn job_env(h: &Harness, specs: &[TenantSpec]) -> JobEnv {
    let mut creds = StaticCredentials::new();
    for s in specs {
        let app_ref = format!("app-{}", s.tenant_id);
        creds.insert(app_ref.clone(), s.app_credential());
        h.store
            .insert(&TenantRecord {
                tenant_id: s.tenant_id.clone(),
                domain: Some(s.domain.clone()),
                org: None,
                cloud: s.cloud,
                app_ref,
                streams: vec![Stream::UnifiedAudit],
                include_noninteractive: true,
                enabled: true,
                health: Health::default(),
                created_at: h.env.clock.now(),
            })
            .await
            .unwrap();
    }
    JobEnv {
        served: vec![CloudGroup::Commercial, CloudGroup::UsGov],
        registry: Arc::new(h.store.clone()),
        credentials: Arc::new(creds),
        tokens: h.env.tokens.clone(),
        poll: h.ctx.clone(),
        telemetry: Arc::new(LogTelemetry),
    }
}

#[tokio::test]
async fn audit_log_off_and_disabled_subscriptions_are_health_states_and_a_missing_one_is_started() {
    let mut off = TenantSpec::new(4, Cloud::Global);
    off.audit_log_enabled = false;
    let disabled = TenantSpec::new(5, Cloud::Gcc);
    let mut missing = TenantSpec::new(6, Cloud::Global);
    missing.subscribed = false;
    let specs = vec![off.clone(), disabled.clone(), missing.clone()];
    let h = harness(SimConfig::new(25, specs.clone()), small_poll()).await;
    h.env
        .sim
        .disable_subscription(&disabled.tenant_id, "Audit.AzureActiveDirectory");
    let env = job_env(&h, &specs).await;
    let deadline = h.env.clock.now() + TimeDelta::minutes(5);
    let run = |s: &TenantSpec| JobRequest {
        tenant_id: s.tenant_id.clone(),
        stream: Stream::UnifiedAudit,
        cloud: Some(s.cloud),
        message_id: None,
    };

    let r = run_job(&env, &run(&off), deadline).await;
    assert_eq!(r.status, JobStatus::Failed(FailureKind::AuditingDisabled));
    let t = h.store.get(&off.tenant_id).await.unwrap().unwrap();
    assert_eq!(t.health.state, HealthState::PermissionMissing);
    assert_eq!(
        t.health.last_error_kind,
        Some(FailureKind::AuditingDisabled)
    );

    let r = run_job(&env, &run(&disabled), deadline).await;
    assert_eq!(
        r.status,
        JobStatus::Failed(FailureKind::SubscriptionDisabled)
    );
    let t = h.store.get(&disabled.tenant_id).await.unwrap().unwrap();
    assert_eq!(t.health.state, HealthState::PermissionMissing);
    assert_eq!(
        t.health.streams[&Stream::UnifiedAudit].last_error_kind,
        Some(FailureKind::SubscriptionDisabled)
    );

    // No subscription yet (AF20022): the poll starts it and carries on.
    assert!(h.env.sim.subscriptions(&missing.tenant_id).is_empty());
    let r = run_job(&env, &run(&missing), deadline).await;
    assert_eq!(r.status, JobStatus::Polled);
    let subs = h.env.sim.subscriptions(&missing.tenant_id);
    assert_eq!(subs.len(), 3, "{subs:?}");
    assert!(subs.iter().all(|(_, s)| s == "enabled"));
    let t = h.store.get(&missing.tenant_id).await.unwrap().unwrap();
    assert_eq!(t.health.state, HealthState::Healthy);
}

#[tokio::test]
async fn subscriptions_start_list_and_stop() {
    let mut spec = TenantSpec::new(7, Cloud::Dod);
    spec.subscribed = false;
    let h = harness(SimConfig::new(26, vec![spec.clone()]), small_poll()).await;
    let t = tenant(&spec);
    let deadline = h.env.clock.now() + TimeDelta::minutes(5);
    let c = &h.env.client;
    assert!(
        list_subscriptions(c, &t, deadline)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        start_subscription(c, &t, ContentType::Exchange, deadline)
            .await
            .unwrap(),
        StartOutcome::Started
    );
    // A repeated start (AF20024) is not an error.
    assert_eq!(
        start_subscription(c, &t, ContentType::Exchange, deadline)
            .await
            .unwrap(),
        StartOutcome::AlreadyEnabled
    );
    let subs = list_subscriptions(c, &t, deadline).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert!(subs[0].enabled() && subs[0].content_type == "Audit.Exchange");
    stop_subscription(c, &t, ContentType::Exchange, deadline)
        .await
        .unwrap();
    stop_subscription(c, &t, ContentType::Exchange, deadline)
        .await
        .unwrap();
    assert!(
        list_subscriptions(c, &t, deadline)
            .await
            .unwrap()
            .is_empty()
    );
    // DoD: its own login and Management hosts only, with the Management token scope.
    for r in h.env.sim.request_log() {
        assert!(
            r.host == "login.microsoftonline.us" || r.host == "manage.protection.apps.mil",
            "{}",
            r.host
        );
    }
}

#[tokio::test]
async fn a_gcc_high_tenants_content_comes_from_its_own_host_and_foreign_content_is_refused() {
    let mut spec = TenantSpec::new(8, Cloud::GccHigh);
    spec.exchange_per_hour = 80.0;
    let h = harness(SimConfig::new(27, vec![spec.clone()]), small_poll()).await;
    let j = job(&spec);
    let now = h.env.clock.now();
    let out = poll(&h.ctx, &j, now + TimeDelta::minutes(5)).await.unwrap();
    assert!(out.emitted > 0);
    assert_eq!(out.content_lost, 0);
    // A listing that names content on the commercial host: refused, never requested, reported.
    h.env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            foreign_content_uri: 3,
            ..Faults::default()
        },
    );
    h.env.clock.advance(std::time::Duration::from_secs(900));
    let now = h.env.clock.now();
    let out = poll(&h.ctx, &j, now + TimeDelta::minutes(5)).await.unwrap();
    assert!(out.content_lost > 0);
    let lost: Vec<_> = h
        .dead
        .letters()
        .into_iter()
        .filter(|l| l.reason.starts_with("content lost"))
        .collect();
    assert!(!lost.is_empty());
    for l in &lost {
        assert!(
            l.reason.contains("refused, never requested"),
            "{}",
            l.reason
        );
        assert!(
            l.record["contentUri"]
                .as_str()
                .unwrap()
                .starts_with("https://manage.office.com/")
        );
    }
    for r in h.env.sim.request_log() {
        assert!(
            r.host == "login.microsoftonline.us" || r.host == "manage.office365.us",
            "a GCC High request went to {}",
            r.host
        );
    }
    assert!(
        h.env
            .sim
            .request_log()
            .iter()
            .any(|r| r.host == "manage.office365.us" && r.path.contains("/audit/"))
    );
}

/// Pulls a `name=value` query parameter out of a logged query and parses it as a listing time.
fn listing_time(query: &str, name: &str) -> DateTime<Utc> {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {query}"));
    let text = raw.replace("%3A", ":").replace("%3a", ":");
    chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|e| panic!("{name}={raw}: {e}"))
        .and_utc()
}

#[tokio::test]
async fn a_source_that_reads_its_window_whole_gets_slices_of_at_most_three_hours() {
    // Week-wide slices are the default because page-by-page sources deliver as they read; the
    // Management Activity API's listing is read whole for each slice, so its slices stay at
    // UNPAGED_SLICE_SECS (3 h).
    let defaults = CursorConfig::default();
    assert!(defaults.slice_secs > itdr_shared::poll::UNPAGED_SLICE_SECS);
    let mut spec = TenantSpec::new(3, Cloud::Global);
    spec.exchange_per_hour = 60.0;
    let cfg = SimConfig::new(23, vec![spec.clone()]);
    let poll_cfg = PollConfig {
        cursor: CursorConfig {
            initial_lookback_secs: 12 * 3600,
            ..defaults
        },
        ..PollConfig::default()
    };
    let h = harness(cfg, poll_cfg).await;
    let now = h.env.clock.now();
    let out = poll(&h.ctx, &job(&spec), now + TimeDelta::minutes(10))
        .await
        .unwrap();
    assert_eq!(out.content_lost, 0);
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = h
        .env
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content") && r.query.contains("startTime="))
        .map(|r| {
            (
                listing_time(&r.query, "startTime"),
                listing_time(&r.query, "endTime"),
            )
        })
        .collect();
    windows.sort();
    windows.dedup();
    // Half a day read in slices of at most 3 hours, one after the other.
    assert!(windows.len() >= 4, "{windows:?}");
    // (`endTime` is exclusive and rounded up to the second.)
    for (start, end) in &windows {
        assert!(
            *end - *start <= TimeDelta::hours(3) + TimeDelta::seconds(1),
            "{start} .. {end}"
        );
    }
    let first = windows.first().map(|w| w.0).unwrap();
    assert!(
        first <= now - TimeDelta::hours(12) + TimeDelta::minutes(1),
        "{first}"
    );
    // And nothing of the half day was lost to the narrower slices.
    let seen = delivered(&h.sink);
    let expected = visible_exchange(&h, &spec, first, now, now);
    assert!(expected.len() > 300, "{}", expected.len());
    let missing = expected
        .iter()
        .filter(|e| !seen.contains_key(&e.id))
        .count();
    assert_eq!(missing, 0, "of {}", expected.len());
}
