//! `itdr run`: the scheduler and pollers in-process, on the embedded store and NDJSON files.
//! With a `[simulator]` section it first starts the Microsoft simulator in accelerated time and
//! registers its tenants, so `make run` exercises the whole pipeline on one machine.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::{DateTime, TimeDelta, Utc};
use itdr_shared::Stream;
use itdr_shared::auth::StaticCredentials;
use itdr_shared::client::{ApiClient, Rate};
use itdr_shared::clock::{ScaledClock, SharedClock, SystemClock};
use itdr_shared::cursor::Cursor;
use itdr_shared::embedded::{NdjsonDeadLetters, NdjsonSink, SqliteStore};
use itdr_shared::health::FailureKind;
use itdr_shared::http::EndpointOverride;
use itdr_shared::poll::{PollContext, percentile};
use itdr_shared::runner::{JobEnv, JobRequest, JobStatus, run_job};
use itdr_shared::stack::StackBuilder;
use itdr_shared::store::{
    CursorStore, Health, HealthState, HealthUpdate, TenantRecord, TenantRegistry,
};
use itdr_shared::telemetry::LogTelemetry;
use serde::Serialize;

use crate::config::RunConfig;
use crate::demo::{Compare, Demo};

/// Per (tenant, stream) totals for the summary.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StreamTotals {
    /// Events delivered.
    pub emitted: usize,
    /// Records filtered as already emitted.
    pub duplicates: usize,
    /// Dead letters.
    pub dead_letters: usize,
    /// Polls run.
    pub polls: usize,
    /// Failed polls.
    pub failures: usize,
    /// Requests the stream's polls sent.
    pub requests: u64,
    /// Freshness samples (seconds from event time to delivery).
    #[serde(skip)]
    pub freshness: Vec<u32>,
    /// Last error kind.
    pub last_error: Option<FailureKind>,
}

/// The run's summary (printed as a table, or JSON with `--json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Rows per tenant and stream.
    pub rows: Vec<SummaryRow>,
    /// Simulated (or real) time covered.
    pub clock_secs: i64,
    /// Real seconds taken.
    pub real_secs: f64,
    /// App-level 429s the simulator saw (0 when no simulator).
    pub app_level_429: u64,
    /// Whether a simulator's ground truth was compared.
    pub compared: bool,
    /// The identity inventory of each tenant (`crate::inventory`).
    pub inventory: Vec<crate::inventory::InventoryRow>,
    /// Jobs that crashed (a bug: the run exits with an error).
    pub crashed_jobs: usize,
    /// The Graph report streams (sign-ins, directory audits) of every tenant together: what
    /// the fleet simulation measures (`tests/integration/FLEET.md`).
    pub reports: ReportTotals,
    /// The demo containment at the end of a simulator run (`crate::respond::demo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containment: Option<crate::respond::Demo>,
}

/// The Graph report streams of every tenant together.
#[derive(Debug, Default, Serialize)]
pub struct ReportTotals {
    /// Requests their polls sent.
    pub requests: u64,
    /// Events delivered.
    pub emitted: usize,
    /// Polls run.
    pub polls: usize,
    /// Seconds from an event's time to its delivery, p50 (backfills left out).
    pub freshness_p50_secs: Option<u32>,
    /// The same, p99.
    pub freshness_p99_secs: Option<u32>,
    /// With a simulator: seconds from an event becoming visible to its delivery, p50.
    pub from_visible_p50_secs: Option<u32>,
    /// The same, p99.
    pub from_visible_p99_secs: Option<u32>,
}

/// One summary row.
#[derive(Debug, Serialize)]
pub struct SummaryRow {
    /// Organization.
    pub org: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Cloud.
    pub cloud: String,
    /// Stream.
    pub stream: String,
    /// With a simulator: events it generated since the stream's origin that were visible by
    /// the end of the run.
    pub generated: Option<usize>,
    /// Of those, not delivered yet, and not yet owed: no sweep has started since they became
    /// visible (the next sweep will read them).
    pub pending: Option<usize>,
    /// Of those, not delivered although a completed sweep started after they became visible:
    /// events the pipeline lost. Always expected to be 0.
    pub lost: Option<usize>,
    /// Events delivered.
    pub emitted: usize,
    /// Graph requests for the tenant (all streams).
    pub requests: u64,
    /// Requests of this stream's polls.
    pub stream_requests: u64,
    /// 429s for the tenant (all streams).
    pub throttled: u64,
    /// Duplicates filtered.
    pub duplicates: usize,
    /// Dead letters.
    pub dead_letters: usize,
    /// Freshness p50 in seconds.
    pub freshness_p50_secs: Option<u32>,
    /// Freshness p99 in seconds.
    pub freshness_p99_secs: Option<u32>,
    /// With a simulator: seconds from an event becoming visible at Microsoft to the end of the
    /// cycle that delivered it, p50 (the event's own time is minutes to hours earlier).
    pub from_visible_p50_secs: Option<u32>,
    /// The same, p99.
    pub from_visible_p99_secs: Option<u32>,
    /// Health state at the end.
    pub health: String,
    /// Last error kind.
    pub last_error: Option<String>,
}

/// How often (clock time) the events file is read for delivery times while jobs run.
const DELIVERY_SCAN: Duration = Duration::from_secs(10);

/// When each event reached the events file: the file is read every [`DELIVERY_SCAN`] while the
/// jobs run and after every cycle, from where the last read stopped, and each new event gets
/// the time of the read (the simulator run only).
struct DeliveryLog {
    path: std::path::PathBuf,
    /// The events file, open from the first read that found it.
    reader: Option<std::io::BufReader<std::fs::File>>,
    /// The start of a line still being written, completed by a later read.
    partial: Vec<u8>,
    at: crate::demo::Deliveries,
}

impl DeliveryLog {
    fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_path_buf(),
            reader: None,
            partial: Vec::new(),
            at: Default::default(),
        }
    }

    /// Reads the complete lines appended since the last call; their events were delivered by
    /// `now`. An event delivered again keeps its first time.
    fn scan(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        use std::io::BufRead;
        let unreadable =
            |e: std::io::Error| anyhow!("cannot read {}: {}", self.path.display(), e.kind());
        let reader = match &mut self.reader {
            Some(r) => r,
            None => match std::fs::File::open(&self.path) {
                Ok(f) => self.reader.insert(std::io::BufReader::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(unreadable(e)),
            },
        };
        loop {
            let n = reader
                .read_until(b'\n', &mut self.partial)
                .map_err(unreadable)?;
            // A line still being written stays in `partial`; the next read completes it.
            if n == 0 || self.partial.last() != Some(&b'\n') {
                return Ok(());
            }
            if let Ok(ev) = serde_json::from_slice::<serde_json::Value>(&self.partial) {
                let m = &ev["metadata"];
                if let (Some(t), Some(id)) =
                    (m["tenant_uid"].as_str(), m["original_event_uid"].as_str())
                {
                    self.at
                        .entry((t.to_string(), id.to_string()))
                        .or_insert(now);
                }
            }
            self.partial.clear();
        }
    }
}

struct Runtime {
    cfg: RunConfig,
    clock: SharedClock,
    store: SqliteStore,
    env: JobEnv,
    client: Arc<ApiClient>,
    sim: Option<Demo>,
}

async fn setup(cfg: RunConfig) -> anyhow::Result<Runtime> {
    if cfg.store.fresh {
        for suffix in ["", "-wal", "-shm"] {
            let p = format!("{}{suffix}", cfg.store.path.display());
            let _ = std::fs::remove_file(p);
        }
    }
    if let Some(parent) = cfg.store.path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if cfg.output.truncate {
        let _ = std::fs::remove_file(&cfg.output.events);
        let _ = std::fs::remove_file(&cfg.output.dead_letters);
    }
    let store = SqliteStore::open(&cfg.store.path)
        .map_err(|e| anyhow!("cannot open the store {}: {e}", cfg.store.path.display()))?;

    let (clock, sim): (SharedClock, Option<Demo>) = match &cfg.simulator {
        Some(s) => {
            let clock: SharedClock = Arc::new(ScaledClock::new(s.start, s.speed));
            let demo = Demo::start(s, clock.clone()).await?;
            (clock, Some(demo))
        }
        None => (Arc::new(SystemClock), None),
    };

    let endpoint = match (&sim, &cfg.endpoint_override) {
        (Some(h), _) => Some(EndpointOverride::parse(&h.base_url())?),
        (None, Some(o)) => Some(EndpointOverride::parse(o)?),
        (None, None) => None,
    };
    let stack = StackBuilder::new(clock.clone())
        .endpoint_override(endpoint)
        .request_timeout(Duration::from_secs(60))
        .app_rate(Some(Rate {
            requests: cfg.schedule.app_requests_per_10s,
            window: Duration::from_secs(10),
        }))
        .publisher_id(cfg.management_activity.publisher_id.clone())
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))?;

    // App credentials by reference: the configured apps, and the simulator's app per group.
    let mut credentials = StaticCredentials::new();
    for (name, app) in &cfg.apps {
        credentials.insert(name.clone(), app.credential(name)?);
    }
    if let (Some(s), Some(demo)) = (&cfg.simulator, &sim) {
        for (t, spec) in s.tenants.iter().zip(demo.tenants()) {
            let app_ref = format!("sim:{}", spec.cloud.group());
            let record = TenantRecord {
                tenant_id: spec.tenant_id.clone(),
                domain: Some(spec.domain.clone()),
                org: Some(t.org.clone()),
                cloud: spec.cloud,
                app_ref: app_ref.clone(),
                streams: s.streams.clone(),
                include_noninteractive: true,
                enabled: true,
                health: Health::default(),
                created_at: clock.now(),
            };
            if store.get(&record.tenant_id).await?.is_none() {
                store.insert(&record).await?;
            }
            credentials.insert(app_ref, spec.credential.clone());
        }
    }

    let sink = Arc::new(
        NdjsonSink::open(&cfg.output.events)
            .map_err(|e| anyhow!("cannot open {}: {e}", cfg.output.events.display()))?,
    );
    let dead = Arc::new(
        NdjsonDeadLetters::open(&cfg.output.dead_letters)
            .map_err(|e| anyhow!("cannot open {}: {e}", cfg.output.dead_letters.display()))?,
    );
    let env = JobEnv {
        served: cfg.deployment.groups.clone(),
        registry: Arc::new(store.clone()),
        credentials: Arc::new(credentials),
        tokens: stack.tokens.clone(),
        poll: PollContext {
            client: stack.client.clone(),
            cursors: Arc::new(store.clone()),
            sink,
            dead_letters: dead,
            config: cfg
                .poll
                .clone()
                .validated()
                .map_err(|e| anyhow!("[poll] {e}"))?,
            hook: None,
        },
        telemetry: Arc::new(LogTelemetry),
    };
    Ok(Runtime {
        cfg,
        clock,
        store,
        env,
        client: stack.client,
        sim,
    })
}

/// Runs the configured schedule. `once` runs a single cycle.
pub async fn run(cfg: RunConfig, once: bool, json: bool) -> anyhow::Result<Summary> {
    let rt = setup(cfg).await?;
    let start_real = Instant::now();
    let start = rt.clock.now();
    let stop_at = rt
        .cfg
        .schedule
        .stop_after_secs
        .map(|s| start + TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2)));
    let interval = Duration::from_secs(rt.cfg.schedule.interval_secs);
    let mut totals: BTreeMap<(String, Stream), StreamTotals> = BTreeMap::new();
    let mut crashes = 0usize;
    let revocations: Vec<(String, DateTime<Utc>)> = match (&rt.cfg.simulator, &rt.sim) {
        (Some(s), Some(demo)) => s
            .tenants
            .iter()
            .zip(demo.tenants())
            .filter_map(|(t, spec)| {
                t.revoke_consent_after_secs.map(|after| {
                    (
                        spec.tenant_id.clone(),
                        start + TimeDelta::seconds(i64::try_from(after).unwrap_or(0)),
                    )
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut revoked = std::collections::HashSet::new();
    let mut deliveries = rt
        .sim
        .as_ref()
        .map(|_| DeliveryLog::new(&rt.cfg.output.events));
    let tty = std::io::stderr().is_terminal() && !json;
    let mut cycle = 0u64;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    loop {
        let cycle_start = rt.clock.now();
        if stop_at.is_some_and(|s| cycle_start >= s)
            || stop.load(std::sync::atomic::Ordering::SeqCst)
        {
            break;
        }
        if let Some(h) = &rt.sim {
            for (tenant, at) in &revocations {
                if cycle_start >= *at && revoked.insert(tenant.clone()) {
                    h.revoke_consent(tenant);
                }
            }
        }
        cycle += 1;
        let deadline = cycle_start + itdr_shared::clock::to_delta(interval);
        let tenants: Vec<TenantRecord> = rt
            .store
            .list()
            .await?
            .into_iter()
            .filter(|t| t.enabled && t.health.state != HealthState::Offboarded)
            // A tenant of a cloud group this deployment does not serve is never polled here.
            .filter(|t| rt.env.served.contains(&t.cloud.group()))
            .collect();
        let sem = Arc::new(tokio::sync::Semaphore::new(
            rt.cfg.schedule.max_concurrent_tenants,
        ));
        // Adaptive polling: a quiet stream is polled every few cycles (`schedule.rs`).
        let cadence = rt.cfg.schedule.cadence();
        let slot = u64::try_from(cycle_start.timestamp()).unwrap_or(0) / interval.as_secs().max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for t in tenants {
            let due: Vec<Stream> = t
                .streams
                .iter()
                .copied()
                .filter(|s| cadence.due(&t, *s, slot, interval.as_secs(), cycle_start))
                .collect();
            let env = rt.env.clone();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                // The tenant's streams run side by side; they share its request pacing.
                let mut streams = tokio::task::JoinSet::new();
                let mut requests = std::collections::HashMap::new();
                for stream in due {
                    let env = env.clone();
                    let req = JobRequest {
                        tenant_id: t.tenant_id.clone(),
                        stream,
                        cloud: Some(t.cloud),
                        message_id: None,
                    };
                    let task = req.clone();
                    let handle = streams.spawn(async move {
                        let report = run_job(&env, &task, deadline).await;
                        (task, report)
                    });
                    requests.insert(handle.id(), req);
                }
                let mut results = Vec::new();
                let mut crashed = Vec::new();
                while let Some(joined) = streams.join_next_with_id().await {
                    match joined {
                        Ok((_, r)) => results.push(r),
                        Err(e) => {
                            tracing::error!(tenant = %t.tenant_id, error = %e, "a stream's job crashed");
                            crashed.extend(requests.remove(&e.id()));
                        }
                    }
                }
                (results, crashed)
            });
        }
        loop {
            // With a simulator, the events file is read every few simulated seconds while
            // the jobs run, so an event's delivery time is when it reached the file, not the
            // cycle's end.
            let joined = match deliveries.as_mut() {
                Some(d) => tokio::select! {
                    j = tasks.join_next() => j,
                    () = rt.clock.sleep(DELIVERY_SCAN) => {
                        d.scan(rt.clock.now())?;
                        continue;
                    }
                },
                None => tasks.join_next().await,
            };
            let Some(joined) = joined else {
                break;
            };
            let (results, crashed) = match joined {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "a tenant's task crashed");
                    crashes += 1;
                    continue;
                }
            };
            for req in crashed {
                // A crashed job is a failure the operator must see: in the tenant's health,
                // and in the exit code.
                crashes += 1;
                let update = HealthUpdate::Failure {
                    stream: req.stream,
                    at: rt.clock.now(),
                    kind: FailureKind::Crash,
                };
                if let Err(e) = rt.store.update_health(&req.tenant_id, &update).await {
                    tracing::error!(tenant = %req.tenant_id, error = %e, "health of a crashed job could not be recorded");
                }
                let tot = totals.entry((req.tenant_id, req.stream)).or_default();
                tot.polls += 1;
                tot.failures += 1;
                tot.last_error = Some(FailureKind::Crash);
            }
            for (req, report) in results {
                let tot = totals.entry((req.tenant_id, req.stream)).or_default();
                tot.polls += 1;
                match report.status {
                    JobStatus::Failed(kind) | JobStatus::Deferred(kind) => {
                        tot.failures += 1;
                        tot.last_error = Some(kind);
                    }
                    JobStatus::Polled
                    | JobStatus::Skipped
                    | JobStatus::Conflicted
                    | JobStatus::Refused(_) => {}
                }
                let o = report.outcome;
                tot.emitted += o.emitted;
                tot.requests += u64::from(o.requests);
                tot.duplicates += o.duplicates_filtered;
                tot.dead_letters += o.dead_lettered;
                tot.freshness.extend(o.freshness_secs);
            }
        }
        if let Some(d) = &mut deliveries {
            d.scan(rt.clock.now())?;
        }
        let emitted: usize = totals.values().map(|t| t.emitted).sum();
        let elapsed = rt.clock.now() - start;
        let line = format!(
            "cycle {cycle}: clock +{:02}:{:02} h, {emitted} events emitted",
            elapsed.num_hours(),
            elapsed.num_minutes() % 60
        );
        if tty {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else if !json && cycle % 12 == 1 {
            eprintln!("{line}");
        }
        if once {
            break;
        }
        let next = cycle_start + itdr_shared::clock::to_delta(interval);
        let now = rt.clock.now();
        if next > now {
            rt.clock
                .sleep((next - now).to_std().unwrap_or_default())
                .await;
        }
    }
    if tty {
        eprintln!();
    }
    let mut summary = summarize(
        &rt,
        &totals,
        deliveries.map(|d| d.at).as_ref(),
        start,
        start_real,
    )
    .await?;
    summary.crashed_jobs = crashes;
    if let Some(dir) = &rt.cfg.output.reports {
        let tenants = itdr_shared::store::TenantRegistry::list(&rt.store).await?;
        let w = crate::assess::write_reports(
            &rt.store,
            &tenants,
            &rt.cfg.output.events,
            dir,
            rt.clock.now(),
            true,
        )
        .await?;
        if !json {
            crate::assess::print_written(&w);
        }
    }
    if let Some(h) = rt.sim {
        if let (Some(tenant), Some(s)) = (h.tenants().first(), &rt.cfg.simulator) {
            let org = s.tenants.first().map(|t| t.org.clone()).unwrap_or_default();
            summary.containment = crate::respond::demo(
                &h,
                tenant,
                rt.client.clone(),
                &rt.env.tokens,
                &rt.store,
                rt.env.poll.sink.clone(),
                &org,
                &rt.cfg.respond,
            )
            .await;
        }
        h.shutdown().await;
    }
    Ok(summary)
}

async fn summarize(
    rt: &Runtime,
    totals: &BTreeMap<(String, Stream), StreamTotals>,
    delivered: Option<&crate::demo::Deliveries>,
    start: DateTime<Utc>,
    start_real: Instant,
) -> anyhow::Result<Summary> {
    let mut rows = Vec::new();
    let mut reports = ReportTotals::default();
    let (mut report_fresh, mut report_visible) = (Vec::new(), Vec::new());
    let end = rt.clock.now();
    for t in rt.store.list().await? {
        let stats = rt.client.stats(&t.tenant_id);
        let sim_429 = rt
            .sim
            .as_ref()
            .map(|h| h.throttled_tenant_level(&t.tenant_id))
            .unwrap_or(stats.throttled);
        for stream in &t.streams {
            let tot = totals
                .get(&(t.tenant_id.clone(), *stream))
                .cloned()
                .unwrap_or_default();
            // Sign-ins Microsoft refuses to serve (no P1 licence) cannot be compared.
            let unavailable = tot.last_error == Some(FailureKind::LicenceRequired);
            let cursor = rt
                .store
                .load(&t.tenant_id, *stream)
                .await?
                .and_then(|c| Cursor::from_doc(&c.doc).ok());
            let (generated, pending, lost, from_visible) = match (&rt.sim, delivered, cursor) {
                (Some(h), Some(ids), Some(cursor)) if !unavailable && !stream.is_inventory() => {
                    let c = h.compare(
                        &Compare {
                            tenant_id: &t.tenant_id,
                            stream: *stream,
                            include_noninteractive: t.include_noninteractive,
                            unified_audit: &rt.cfg.poll.unified_audit,
                            origin: cursor.origin.unwrap_or(start),
                            cursor: &cursor,
                            cursor_config: &rt.cfg.poll.cursor,
                            start,
                            end,
                        },
                        ids,
                    );
                    (
                        Some(c.generated),
                        Some(c.pending),
                        Some(c.lost),
                        c.from_visible_secs,
                    )
                }
                _ => (None, None, None, Vec::new()),
            };
            if matches!(stream, Stream::Signins | Stream::DirectoryAudits) {
                reports.requests += tot.requests;
                reports.emitted += tot.emitted;
                reports.polls += tot.polls;
                report_fresh.extend_from_slice(&tot.freshness);
                report_visible.extend_from_slice(&from_visible);
            }
            rows.push(SummaryRow {
                org: t.org.clone().unwrap_or_default(),
                tenant_id: t.tenant_id.clone(),
                cloud: t.cloud.as_str().to_string(),
                stream: stream.as_str().to_string(),
                generated,
                pending,
                lost,
                emitted: tot.emitted,
                requests: stats.requests,
                stream_requests: tot.requests,
                throttled: sim_429.max(stats.throttled),
                duplicates: tot.duplicates,
                dead_letters: tot.dead_letters,
                freshness_p50_secs: percentile(&tot.freshness, 50.0),
                freshness_p99_secs: percentile(&tot.freshness, 99.0),
                from_visible_p50_secs: percentile(&from_visible, 50.0),
                from_visible_p99_secs: percentile(&from_visible, 99.0),
                health: t.health.state.as_str().to_string(),
                last_error: tot.last_error.map(|k| k.as_str().to_string()),
            });
        }
    }
    reports.freshness_p50_secs = percentile(&report_fresh, 50.0);
    reports.freshness_p99_secs = percentile(&report_fresh, 99.0);
    reports.from_visible_p50_secs = percentile(&report_visible, 50.0);
    reports.from_visible_p99_secs = percentile(&report_visible, 99.0);
    Ok(Summary {
        rows,
        reports,
        clock_secs: (rt.clock.now() - start).num_seconds(),
        real_secs: start_real.elapsed().as_secs_f64(),
        app_level_429: rt.sim.as_ref().map(Demo::throttled_app_level).unwrap_or(0),
        compared: rt.sim.is_some(),
        inventory: crate::inventory::rows(&rt.store, &rt.store.list().await?).await?,
        crashed_jobs: 0,
        containment: None,
    })
}

fn fmt_secs(s: Option<u32>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{:.1}h", f64::from(s) / 3600.0),
    }
}

/// Prints the summary as a table.
pub fn print_table(s: &Summary) {
    println!(
        "{:<42} {:<9} {:<17} {:>9} {:>7} {:>4} {:>7} {:>6} {:>5} {:>7} {:>4} {:>6} {:>6} {:>6} {:>6}  {:<16}",
        "organization",
        "cloud",
        "stream",
        "generated",
        "pending",
        "lost",
        "events",
        "reqs",
        "429s",
        "dups",
        "dead",
        "p50",
        "p99",
        "vis50",
        "vis99",
        "health"
    );
    for r in &s.rows {
        let mut org = r.org.clone();
        if org.len() > 42 {
            org.truncate(41);
            org.push('~');
        }
        let health = match &r.last_error {
            Some(e) if r.health != "healthy" => format!("{} ({e})", r.health),
            _ => r.health.clone(),
        };
        let opt = |v: Option<usize>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
        println!(
            "{:<42} {:<9} {:<17} {:>9} {:>7} {:>4} {:>7} {:>6} {:>5} {:>7} {:>4} {:>6} {:>6} {:>6} {:>6}  {:<16}",
            org,
            r.cloud,
            r.stream,
            opt(r.generated),
            opt(r.pending),
            opt(r.lost),
            r.emitted,
            r.requests,
            r.throttled,
            r.duplicates,
            r.dead_letters,
            fmt_secs(r.freshness_p50_secs),
            fmt_secs(r.freshness_p99_secs),
            fmt_secs(r.from_visible_p50_secs),
            fmt_secs(r.from_visible_p99_secs),
            health
        );
    }
    let total: usize = s.rows.iter().map(|r| r.emitted).sum();
    println!(
        "\n{total} events over {:.1} h of clock time in {:.1} s; app-level 429s: {}",
        s.clock_secs as f64 / 3600.0,
        s.real_secs,
        s.app_level_429
    );
    if s.compared {
        println!(
            "generated: events the simulator made visible since each stream began; pending: not delivered yet, and no sweep has started since they appeared; lost: not delivered although a completed sweep started after they appeared (must be 0)"
        );
        println!(
            "p50/p99: from the event's own time to its delivery; vis50/vis99: from the moment Microsoft made it visible to the end of the cycle that delivered it"
        );
    }
    crate::inventory::print_rows(&s.inventory);
    if let Some(d) = &s.containment {
        crate::respond::print_demo(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(tenant: &str, id: &str) -> String {
        format!(
            "{{\"metadata\":{{\"tenant_uid\":\"{tenant}\",\"original_event_uid\":\"{id}\"}}}}\n"
        )
    }

    #[test]
    fn delivery_times_are_those_of_the_read_that_saw_the_whole_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.ndjson");
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        let mut log = DeliveryLog::new(&path);
        // Before the sink created the file: nothing yet, no error.
        log.scan(t(1))?;
        assert!(log.at.is_empty());

        let mut file = std::fs::File::create(&path)?;
        let second = line("t1", "b");
        let (head, tail) = second.split_at(20);
        write!(file, "{}not json\n{head}", line("t1", "a"))?;
        file.flush()?;
        log.scan(t(10))?;
        assert_eq!(log.at.len(), 1, "the half-written line waits");
        assert_eq!(log.at[&("t1".to_string(), "a".to_string())], t(10));

        write!(file, "{tail}{}", line("t1", "a"))?;
        file.flush()?;
        log.scan(t(20))?;
        assert_eq!(log.at.len(), 2);
        assert_eq!(log.at[&("t1".to_string(), "b".to_string())], t(20));
        assert_eq!(
            log.at[&("t1".to_string(), "a".to_string())],
            t(10),
            "an event delivered again keeps its first time"
        );
        Ok(())
    }
}
