//! The chaos run: scheduler -> FIFO jobs queues -> poller handlers -> events queue, against
//! moto and the Microsoft simulator, with faults injected at random (seeded) points on both
//! sides, then the invariants checked against the simulator's ground truth.
//!
//! Tenants play three roles:
//! - *healthy*: never faulted; their freshness is measured before and while a neighbour is
//!   broken;
//! - *chaotic*: every job may get simulator faults (429 storms with and without `Retry-After`,
//!   absurd values included; 500/503/504; slow responses past the deadline; truncated and
//!   non-JSON bodies; token expiry and revoked consent mid-paging; a foreign nextLink; AF429
//!   and AF50000 on the Management Activity API), AWS-side faults through decorators over the
//!   real DynamoDB and SQS adapters (`SendMessageBatch` partial failures and outages,
//!   conditional-check conflicts, throttling, a commit that was written but reported failed),
//!   crashes between steps of a poll ([`StepHook`]), SQS redelivery of the same job, two
//!   pollers racing on one job, and pollers whose clock is skewed;
//! - the *neighbour*: healthy during the baseline, hard down (a 429 storm with an absurd
//!   `Retry-After`, then 5xx) during the chaos phase.
//!
//! The run has three phases: a baseline without faults, the chaos phase, and a calm phase in
//! which late events become visible and sweeps catch up. Lost events are those the simulator
//! made visible at least an hour before the end, inside a stream's first reach, that never
//! reached the events queue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::Message;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::aws::handler::{PollerContext, SchedulerContext, handle_jobs, handle_schedule};
use itdr_shared::clock::{Clock, ManualClock, SharedClock};
use itdr_shared::cursor::Cursor;
use itdr_shared::poll::{Crash, Step, StepHook};
use itdr_shared::store::{
    CursorStore, Envelope, EventSink, Health, SinkError, StoreError, StoredCursor, TenantRecord,
    TenantRegistry,
};
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{Faults, GroundTruthStream, SimConfig, SimHandle, Simulator, TenantSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{AwsFixture, CURSOR_TABLE, REGISTRY_TABLE, SECRET_PREFIX, attr, sqs_event};

/// Parameters of one run.
#[derive(Debug, Clone)]
pub struct ChaosParams {
    /// Seed of the simulator and of every fault decision.
    pub seed: u64,
    /// Simulated hours without any fault (the freshness baseline).
    pub baseline_hours: f64,
    /// Simulated hours of chaos.
    pub chaos_hours: f64,
    /// Simulated hours without faults at the end (late events, sweeps).
    pub calm_hours: f64,
    /// Healthy tenants (commercial).
    pub healthy: usize,
    /// Chaotic tenants (the second one, if any, is GCC High).
    pub chaotic: usize,
    /// Probability that a chaotic job gets simulator faults.
    pub fault_p: f64,
    /// Sign-ins per hour of the chaotic tenants (healthy ones have the simulator's default).
    pub chaotic_signins_per_hour: f64,
    /// Whether the faults on our side run too (crashes, racing pollers, SQS and DynamoDB
    /// faults); without them only Microsoft's side and SQS redelivery misbehave.
    pub aws_faults: bool,
}

impl ChaosParams {
    /// The short version run by `make test`.
    pub fn short(seed: u64) -> Self {
        Self {
            seed,
            baseline_hours: 0.5,
            chaos_hours: 1.5,
            calm_hours: 1.5,
            healthy: 1,
            chaotic: 2,
            fault_p: 0.7,
            chaotic_signins_per_hour: 400.0,
            aws_faults: true,
        }
    }

    /// The long version run by `make chaos`.
    pub fn long(seed: u64, chaos_hours: f64) -> Self {
        Self {
            seed,
            baseline_hours: 2.0,
            chaos_hours,
            calm_hours: 3.0,
            healthy: 2,
            chaotic: 3,
            fault_p: 0.7,
            chaotic_signins_per_hour: 600.0,
            aws_faults: true,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    /// Seed.
    pub seed: u64,
    /// Simulated hours in all.
    pub hours: f64,
    /// Tenants.
    pub tenants: usize,
    /// Jobs handled (including redeliveries and racing duplicates).
    pub jobs: u64,
    /// Faults injected (that actually struck) by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Events the simulator made visible in the checked range.
    pub generated: u64,
    /// Events delivered to the events queue (every copy).
    pub emitted: u64,
    /// Distinct events delivered.
    pub distinct: u64,
    /// Checked events never delivered although their stream's cursor promised them (a sweep
    /// that started after they became visible completed: `Cursor::promises`).
    pub lost: u64,
    /// Checked events not delivered yet and not promised yet (visible too close to the end
    /// for a sweep to have started and completed since).
    pub pending: u64,
    /// Streams whose last completed sweep started more than two hours before the end (their
    /// promises would be stale: the check above would prove little for them).
    pub stalled: Vec<String>,
    /// Copies beyond the first.
    pub duplicated: u64,
    /// Committed cursors that moved backwards.
    pub regressions: u64,
    /// What each regression was.
    pub regression_examples: Vec<String>,
    /// Duplicates by tenant role and stream.
    pub duplicates_by: BTreeMap<String, u64>,
    /// Lost events, a few examples (tenant, stream, id, visible at).
    pub lost_examples: Vec<String>,
    /// Healthy tenants' freshness (seconds from visibility to the events queue), p50 and p99,
    /// during the baseline.
    pub fresh_alone: (f64, f64),
    /// The same during the chaos phase, with the neighbour broken.
    pub fresh_neighbour: (f64, f64),
    /// Real time the run took.
    pub real_secs: f64,
    /// Whether our side's faults ran.
    pub aws_faults: bool,
    /// Simulated seconds the jobs of a slot took (the pollers' own waits: pacing,
    /// `Retry-After`), mean and max, by phase.
    pub slot_secs: BTreeMap<&'static str, (f64, f64)>,
}

impl ChaosReport {
    /// Duplicates as a share of distinct events, in percent.
    pub fn duplicate_pct(&self) -> f64 {
        if self.distinct == 0 {
            0.0
        } else {
            100.0 * self.duplicated as f64 / self.distinct as f64
        }
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos run: seed {}, {:.1} simulated hours, {} tenants, {} jobs, {:.0} s{}",
            self.seed,
            self.hours,
            self.tenants,
            self.jobs,
            self.real_secs,
            if self.aws_faults {
                ""
            } else {
                " (Microsoft-side faults and redelivery only)"
            }
        )?;
        writeln!(f, "| fault injected | times |")?;
        writeln!(f, "|---|---:|")?;
        for (k, v) in &self.faults {
            writeln!(f, "| {k} | {v} |")?;
        }
        writeln!(f)?;
        writeln!(f, "| invariant | value |")?;
        writeln!(f, "|---|---:|")?;
        writeln!(f, "| events generated (checked) | {} |", self.generated)?;
        writeln!(
            f,
            "| events emitted (copies / distinct) | {} / {} |",
            self.emitted, self.distinct
        )?;
        writeln!(f, "| lost (must be 0) | {} |", self.lost)?;
        writeln!(
            f,
            "| not delivered yet, not promised yet (visible near the end) | {} |",
            self.pending
        )?;
        writeln!(
            f,
            "| streams whose sweeps stalled (must be 0) | {} |",
            self.stalled.len()
        )?;
        writeln!(
            f,
            "| duplicated (goal <= 0.1 %) | {} ({:.3} %) |",
            self.duplicated,
            self.duplicate_pct()
        )?;
        writeln!(
            f,
            "| cursor regressions (must be 0) | {} |",
            self.regressions
        )?;
        writeln!(
            f,
            "| healthy tenants' freshness p50 / p99, no broken neighbour | {:.0} s / {:.0} s |",
            self.fresh_alone.0, self.fresh_alone.1
        )?;
        writeln!(
            f,
            "| healthy tenants' freshness p50 / p99, broken neighbour | {:.0} s / {:.0} s |",
            self.fresh_neighbour.0, self.fresh_neighbour.1
        )?;
        for (k, (mean, max)) in &self.slot_secs {
            writeln!(
                f,
                "simulated time the jobs of a slot took, {k}: mean {mean:.0} s, max {max:.0} s"
            )?;
        }
        for (k, v) in &self.duplicates_by {
            writeln!(f, "duplicates: {k}: {v}")?;
        }
        for r in &self.regression_examples {
            writeln!(f, "regression: {r}")?;
        }
        for st in &self.stalled {
            writeln!(f, "stalled: {st}")?;
        }
        for l in &self.lost_examples {
            writeln!(f, "lost: {l}")?;
        }
        Ok(())
    }
}

/// Shared fault state: the seeded generator, the counters, the chaotic tenants and the last
/// committed cursor of each stream.
struct Plan {
    rng: Mutex<StdRng>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    chaotic: HashSet<String>,
    enabled: Mutex<bool>,
    aws_faults: bool,
    /// Every committed version of each stream's cursor (the commits of racing pollers are
    /// recorded in whatever order their calls return, so each is checked against the versions
    /// on both sides of it).
    committed: Mutex<HashMap<(String, Stream), BTreeMap<u64, serde_json::Value>>>,
    regressions: Mutex<Vec<String>>,
}

impl Plan {
    fn count(&self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.counts.lock().unwrap().entry(kind).or_default() += n;
        }
    }

    /// Whether a fault of probability `p` strikes an operation on `tenant` now.
    fn roll(&self, tenant: &str, p: f64) -> bool {
        self.aws_faults
            && *self.enabled.lock().unwrap()
            && self.chaotic.contains(tenant)
            && self.rng.lock().unwrap().random_bool(p)
    }

    /// Records a successful commit and checks that it does not move the cursor backwards
    /// from the one committed before it.
    fn committed(&self, tenant: &str, stream: Stream, version: u64, doc: &serde_json::Value) {
        let mut map = self.committed.lock().unwrap();
        let versions = map.entry((tenant.to_string(), stream)).or_default();
        let forward = |a: &serde_json::Value, b: &serde_json::Value| match (
            Cursor::from_doc(a),
            Cursor::from_doc(b),
        ) {
            (Ok(a), Ok(b)) => Cursor::check_advance(Some(&a), &b).map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        let mut problems = Vec::new();
        if versions.contains_key(&version) {
            problems.push(format!("version {version} committed twice"));
        }
        if let Some((v, prev)) = versions.range(..version).next_back()
            && let Err(e) = forward(prev, doc)
        {
            problems.push(format!("v{v} -> v{version}: {e}"));
        }
        if let Some((v, next)) = versions.range(version + 1..).next()
            && let Err(e) = forward(doc, next)
        {
            problems.push(format!("v{version} -> v{v}: {e}"));
        }
        for p in problems {
            self.regressions
                .lock()
                .unwrap()
                .push(format!("commit {tenant} {stream}: {p}"));
        }
        versions.insert(version, doc.clone());
        while versions.len() > 16 {
            versions.pop_first();
        }
    }
}

tokio::task_local! {
    /// The tenant whose job the current task runs (for the crash hook, which is not told).
    static JOB_TENANT: String;
}

/// Crashes the poll between steps: after a slice was fetched (between two pages of a pass),
/// between send and commit, after load and after commit.
struct CrashHook(Arc<Plan>);

impl StepHook for CrashHook {
    fn at(&self, step: Step) -> Result<(), Crash> {
        let tenant = JOB_TENANT.try_with(Clone::clone).unwrap_or_default();
        let (kind, p) = match step {
            Step::Fetched => ("crash between two pages (fetched, not sent)", 0.04),
            Step::Sent => ("crash between send and commit", 0.05),
            Step::Loaded => ("crash after cursor load", 0.02),
            Step::Committed => ("crash after commit", 0.02),
        };
        if self.0.roll(&tenant, p) {
            self.0.count(kind, 1);
            return Err(Crash(step));
        }
        Ok(())
    }
}

/// The events queue sink with `SendMessageBatch` partial failures (the first envelopes go
/// through, the rest fail) and outages.
struct FaultySink {
    inner: Arc<dyn EventSink>,
    plan: Arc<Plan>,
}

#[async_trait]
impl EventSink for FaultySink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let tenant = envelopes
            .first()
            .map(|e| e.tenant_id.clone())
            .unwrap_or_default();
        if self.plan.roll(&tenant, 0.04) {
            self.plan.count("SQS send outage", 1);
            return Err(SinkError::Backend("injected: ServiceUnavailable".into()));
        }
        if envelopes.len() > 1 && self.plan.roll(&tenant, 0.08) {
            let k = self
                .plan
                .rng
                .lock()
                .unwrap()
                .random_range(1..envelopes.len());
            self.plan.count("SendMessageBatch partial failure", 1);
            self.inner.send(&envelopes[..k]).await?;
            return Err(SinkError::Partial {
                failed: envelopes.len() - k,
                total: envelopes.len(),
            });
        }
        self.inner.send(envelopes).await
    }
}

/// The DynamoDB cursor store with conditional-check conflicts, throttling, and a commit that
/// was written but reported failed (a timeout after the write).
struct FaultyCursors {
    inner: Arc<DynamoCursorStore>,
    plan: Arc<Plan>,
}

fn throttled() -> StoreError {
    StoreError::Backend("injected: ProvisionedThroughputExceededException".into())
}

#[async_trait]
impl CursorStore for FaultyCursors {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        if self.plan.roll(tenant, 0.03) {
            self.plan.count("DynamoDB throttling (load)", 1);
            return Err(throttled());
        }
        self.inner.load(tenant, stream).await
    }

    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        if self.plan.roll(tenant, 0.05) {
            self.plan.count("DynamoDB conditional-check conflict", 1);
            return Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                stream,
                expected,
            });
        }
        if self.plan.roll(tenant, 0.04) {
            self.plan.count("DynamoDB throttling (commit)", 1);
            return Err(throttled());
        }
        let written_but_failed = self.plan.roll(tenant, 0.02);
        let r = self.inner.commit(tenant, stream, expected, doc).await;
        if let Ok(v) = &r {
            self.plan.committed(tenant, stream, *v, doc);
            if written_but_failed {
                self.plan
                    .count("DynamoDB commit written, reported failed", 1);
                return Err(throttled());
            }
        }
        r
    }

    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        self.inner.purge(tenant).await
    }

    fn inventory(&self) -> Option<&dyn itdr_shared::inventory::InventoryStore> {
        self.inner.inventory()
    }

    fn seen_pages(&self) -> Option<&dyn itdr_shared::cursor::SeenPages> {
        self.inner.seen_pages()
    }
}

/// A poller's clock off by a fixed amount from the simulator's (Microsoft's) clock.
#[derive(Debug)]
struct SkewedClock {
    inner: ManualClock,
    skew: TimeDelta,
}

#[async_trait]
impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now() + self.skew
    }
    async fn sleep(&self, d: Duration) {
        self.inner.sleep(d).await;
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap()
}

/// The simulator faults a chaotic job may get, by kind.
const SIM_KINDS: [&str; 14] = [
    "429 storm, Retry-After 1-3 s",
    "429 storm, absurd Retry-After",
    "429 storm, no Retry-After",
    "HTTP 500 burst",
    "HTTP 503 burst (Retry-After)",
    "HTTP 504 burst",
    "slow response past the deadline",
    "truncated JSON body",
    "non-JSON body",
    "token expired mid-paging",
    "consent revoked mid-paging",
    "nextLink to a foreign host",
    "AF429 (Management API)",
    "AF50000 (Management API)",
];

const ABSURD_RETRY_AFTER: [&str; 5] = [
    "1e20",
    "100000",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "-5",
    "18446744073709551616",
];

/// Draws the simulator faults of one job; returns them with the kinds drawn and whether the
/// job runs with too little time for a slow response.
fn draw_faults(rng: &mut StdRng) -> (Faults, Vec<&'static str>, bool) {
    let mut f = Faults {
        after_requests: rng.random_range(0..4),
        ..Faults::default()
    };
    let mut kinds = Vec::new();
    let mut slow = false;
    for _ in 0..rng.random_range(1..=2) {
        let kind = SIM_KINDS[rng.random_range(0..SIM_KINDS.len())];
        let n = rng.random_range(1..=6);
        match kind {
            "429 storm, Retry-After 1-3 s" => {
                f.http_429_burst = n;
                f.retry_after_on_429 = Some(rng.random_range(1..=3).to_string());
            }
            "429 storm, absurd Retry-After" => {
                f.http_429_burst = n;
                f.retry_after_on_429 =
                    Some(ABSURD_RETRY_AFTER[rng.random_range(0..ABSURD_RETRY_AFTER.len())].into());
            }
            "429 storm, no Retry-After" => {
                f.http_429_burst = n;
                f.retry_after_on_429 = None;
            }
            "HTTP 500 burst" => {
                f.http_5xx_burst = n;
                f.http_5xx_status = Some(500);
            }
            "HTTP 503 burst (Retry-After)" => {
                f.http_5xx_burst = n;
                f.http_5xx_status = Some(503);
                f.retry_after_on_5xx = Some(rng.random_range(1..=5));
            }
            "HTTP 504 burst" => {
                f.http_5xx_burst = n;
                f.http_5xx_status = Some(504);
            }
            "slow response past the deadline" => slow = true,
            "truncated JSON body" => f.truncate_json = n.min(2),
            "non-JSON body" => f.non_json_body = n.min(2),
            "token expired mid-paging" => f.expired_token = n.min(2),
            "consent revoked mid-paging" => f.consent_revoked_requests = n,
            "nextLink to a foreign host" => f.foreign_next_link = 1,
            "AF429 (Management API)" => f.af429_burst = n,
            _ => f.management_5xx_burst = n,
        }
        kinds.push(kind);
    }
    (f, kinds, slow)
}

/// How many of each drawn kind actually struck: the counters consumed.
fn struck(
    set: &Faults,
    left: &Faults,
    kinds: &[&'static str],
    slow_struck: bool,
) -> Vec<&'static str> {
    kinds
        .iter()
        .copied()
        .filter(|k| match *k {
            "429 storm, Retry-After 1-3 s"
            | "429 storm, absurd Retry-After"
            | "429 storm, no Retry-After" => left.http_429_burst < set.http_429_burst,
            "HTTP 500 burst" | "HTTP 503 burst (Retry-After)" | "HTTP 504 burst" => {
                left.http_5xx_burst < set.http_5xx_burst
            }
            "slow response past the deadline" => slow_struck,
            "truncated JSON body" => left.truncate_json < set.truncate_json,
            "non-JSON body" => left.non_json_body < set.non_json_body,
            "token expired mid-paging" => left.expired_token < set.expired_token,
            "consent revoked mid-paging" => {
                left.consent_revoked_requests < set.consent_revoked_requests
            }
            "nextLink to a foreign host" => left.foreign_next_link < set.foreign_next_link,
            "AF429 (Management API)" => left.af429_burst < set.af429_burst,
            _ => left.management_5xx_burst < set.management_5xx_burst,
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Baseline,
    Chaos,
    Calm,
}

struct Run {
    f: AwsFixture,
    sim: SimHandle,
    clock: ManualClock,
    plan: Arc<Plan>,
    commercial: Vec<PollerContext>,
    skewed: Vec<PollerContext>,
    usgov: PollerContext,
    healthy: Vec<String>,
    chaotic: Vec<String>,
    neighbour: String,
    fault_p: f64,
    /// First delivery time of each event, by (tenant, stream, original id), and copies.
    seen: HashMap<(String, Stream, String), (DateTime<Utc>, u64)>,
    emitted: u64,
    jobs: u64,
    slot_secs: BTreeMap<&'static str, Vec<f64>>,
}

fn poll_config() -> serde_json::Value {
    serde_json::json!({"page_size": 50, "cursor": {"initial_lookback_secs": 3600}})
}

async fn register(f: &AwsFixture, specs: &[TenantSpec], at: DateTime<Utc>) {
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    for s in specs {
        let app_ref = format!("sim-{}", s.tenant_id);
        reg.insert(&TenantRecord {
            tenant_id: s.tenant_id.clone(),
            domain: Some(s.domain.clone()),
            org: None,
            cloud: s.cloud,
            app_ref: app_ref.clone(),
            streams: Stream::ALL.to_vec(),
            include_noninteractive: true,
            enabled: true,
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

fn context(
    f: &AwsFixture,
    sim: &SimHandle,
    clock: SharedClock,
    group: CloudGroup,
    plan: &Arc<Plan>,
) -> PollerContext {
    let cfg = f.poller_config(group, 40, &poll_config(), &sim.base_url());
    let mut ctx = PollerContext::from_config(&cfg, &f.sdk, clock).unwrap();
    ctx.env.poll.cursors = Arc::new(FaultyCursors {
        inner: Arc::new(DynamoCursorStore::new(f.ddb.clone(), CURSOR_TABLE)),
        plan: plan.clone(),
    });
    let real_sink = ctx.env.poll.sink.clone();
    ctx.env.poll.sink = Arc::new(FaultySink {
        inner: real_sink,
        plan: plan.clone(),
    });
    ctx.env.poll.hook = Some(Arc::new(CrashHook(plan.clone())));
    ctx
}

fn failures(r: &SqsBatchResponse) -> usize {
    r.batch_item_failures.len()
}

impl Run {
    async fn start(p: &ChaosParams) -> Self {
        let f = AwsFixture::start().await;
        let clock = ManualClock::new(t0());
        let mut specs = Vec::new();
        let mut idx = 0;
        let mut next = |cloud| {
            idx += 1;
            TenantSpec::new(idx, cloud)
        };
        for _ in 0..p.healthy {
            specs.push(next(Cloud::Global));
        }
        let healthy: Vec<String> = specs.iter().map(|s| s.tenant_id.clone()).collect();
        let mut chaotic = Vec::new();
        for i in 0..p.chaotic {
            let mut s = next(if i == 1 {
                Cloud::GccHigh
            } else {
                Cloud::Global
            });
            s.signins_per_hour = p.chaotic_signins_per_hour;
            s.audits_per_hour = 40.0;
            chaotic.push(s.tenant_id.clone());
            specs.push(s);
        }
        let n = next(Cloud::Global);
        let neighbour = n.tenant_id.clone();
        specs.push(n);
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim = Simulator::start(
            SimConfig::new(p.seed, specs.clone()),
            Arc::new(clock.clone()),
            bind,
        )
        .await
        .unwrap();
        register(&f, &specs, t0()).await;
        let plan = Arc::new(Plan {
            rng: Mutex::new(StdRng::seed_from_u64(p.seed ^ 0x00c4_a05e)),
            counts: Mutex::new(BTreeMap::new()),
            chaotic: chaotic.iter().cloned().collect(),
            enabled: Mutex::new(false),
            aws_faults: p.aws_faults,
            committed: Mutex::new(HashMap::new()),
            regressions: Mutex::new(Vec::new()),
        });
        let shared: SharedClock = Arc::new(clock.clone());
        let commercial = (0..2)
            .map(|_| context(&f, &sim, shared.clone(), CloudGroup::Commercial, &plan))
            .collect();
        let skewed = [TimeDelta::seconds(150), TimeDelta::seconds(-170)]
            .into_iter()
            .map(|skew| {
                let c: SharedClock = Arc::new(SkewedClock {
                    inner: clock.clone(),
                    skew,
                });
                context(&f, &sim, c, CloudGroup::Commercial, &plan)
            })
            .collect();
        let usgov = context(&f, &sim, shared, CloudGroup::UsGov, &plan);
        Self {
            f,
            sim,
            clock,
            plan,
            commercial,
            skewed,
            usgov,
            healthy,
            chaotic,
            neighbour,
            fault_p: p.fault_p,
            seen: HashMap::new(),
            emitted: 0,
            jobs: 0,
            slot_secs: BTreeMap::new(),
        }
    }

    fn rng<R>(&self, f: impl FnOnce(&mut StdRng) -> R) -> R {
        f(&mut self.plan.rng.lock().unwrap())
    }

    /// Runs the jobs of one tenant as one poller instance would, with the chaos of the phase.
    async fn tenant_jobs(
        &self,
        tenant: &str,
        jobs: Vec<Message>,
        queue: &str,
        phase: Phase,
    ) -> u64 {
        let chaotic = phase == Phase::Chaos && self.chaotic.iter().any(|t| t == tenant);
        let neighbour_down = phase == Phase::Chaos && tenant == self.neighbour;
        let usgov = queue == self.f.queues.jobs_usgov;
        let mut handled = 0;
        for m in jobs {
            let home = if usgov {
                &self.usgov
            } else {
                &self.commercial[self.rng(|r| r.random_range(0..2))]
            };
            if neighbour_down {
                // Hard down: a storm with an absurd Retry-After, then 5xx, every job.
                self.sim.set_faults(
                    tenant,
                    Faults {
                        http_429_burst: 40,
                        retry_after_on_429: Some("100000".into()),
                        http_5xx_burst: 40,
                        http_5xx_status: Some(503),
                        af429_burst: 20,
                        management_5xx_burst: 20,
                        ..Faults::default()
                    },
                );
                self.plan.count("neighbour hard down (jobs)", 1);
            }
            if !chaotic {
                let r = handle_jobs(sqs_event(queue, &[m]), home, Duration::from_secs(240)).await;
                let _ = failures(&r);
                handled += 1;
                continue;
            }
            let (mut faults, kinds, slow) = if self.rng(|r| r.random_bool(self.fault_p)) {
                self.rng(draw_faults)
            } else {
                (Faults::default(), Vec::new(), false)
            };
            if slow {
                faults.slow_ms = 1500;
            }
            self.sim.set_faults(tenant, faults.clone());
            let ctx = if !usgov && self.rng(|r| r.random_bool(0.12)) {
                self.plan.count("clock skew (job on a skewed poller)", 1);
                &self.skewed[self.rng(|r| r.random_range(0..2))]
            } else {
                home
            };
            // Slow responses meet a Lambda with little time left.
            let remaining = if slow {
                Duration::from_millis(1200)
            } else {
                Duration::from_secs(240)
            };
            let race = !usgov && self.plan.aws_faults && self.rng(|r| r.random_bool(0.1));
            let r = if race {
                self.plan.count("two pollers racing on one job", 1);
                let other = &self.commercial[self.rng(|r| r.random_range(0..2))];
                let (a, b) = tokio::join!(
                    handle_jobs(sqs_event(queue, std::slice::from_ref(&m)), ctx, remaining),
                    handle_jobs(sqs_event(queue, std::slice::from_ref(&m)), other, remaining),
                );
                handled += 2;
                failures(&a) + failures(&b)
            } else {
                handled += 1;
                failures(
                    &handle_jobs(sqs_event(queue, std::slice::from_ref(&m)), ctx, remaining).await,
                )
            };
            let mut left = self.sim.faults(tenant).unwrap_or_default();
            left.slow_ms = 0;
            for k in struck(&faults, &left, &kinds, slow) {
                self.plan.count(k, 1);
            }
            self.sim.set_faults(tenant, Faults::default());
            // SQS redelivers a failed job after its visibility timeout, and now and then a
            // job that succeeded (at-least-once delivery).
            let redeliver = if r > 0 {
                self.rng(|r| r.random_bool(0.8))
            } else {
                self.rng(|r| r.random_bool(0.12))
            };
            if redeliver {
                self.plan.count("SQS redelivery of the same job", 1);
                handle_jobs(sqs_event(queue, &[m]), home, Duration::from_secs(240)).await;
                handled += 1;
            }
        }
        if neighbour_down {
            self.sim.set_faults(tenant, Faults::default());
        }
        handled
    }

    /// One schedule slot: the scheduler, every tenant's jobs (tenants concurrently, as
    /// separate poller instances), then the events queue drained.
    async fn slot(&mut self, sched: &SchedulerContext, phase: Phase) {
        let start = self.clock.now();
        *self.plan.enabled.lock().unwrap() = phase == Phase::Chaos;
        handle_schedule(schedule_event(start), sched).await.unwrap();
        let mut by_tenant: BTreeMap<String, (String, Vec<Message>)> = BTreeMap::new();
        for queue in [
            self.f.queues.jobs_commercial.clone(),
            self.f.queues.jobs_usgov.clone(),
        ] {
            for m in self.f.drain(&queue).await {
                let t = attr(&m, "tenant_id").unwrap();
                by_tenant
                    .entry(t)
                    .or_insert_with(|| (queue.clone(), Vec::new()))
                    .1
                    .push(m);
            }
        }
        let runs: Vec<_> = by_tenant
            .into_iter()
            .map(|(t, (q, jobs))| {
                let this = &*self;
                JOB_TENANT.scope(t.clone(), async move {
                    this.tenant_jobs(&t, jobs, &q, phase).await
                })
            })
            .collect();
        let handled: u64 = futures_join_all(runs).await.into_iter().sum();
        self.jobs += handled;
        let now = self.clock.now();
        let name = match phase {
            Phase::Baseline => "baseline",
            Phase::Chaos => "chaos",
            Phase::Calm => "calm",
        };
        self.slot_secs
            .entry(name)
            .or_default()
            .push((now - start).num_milliseconds() as f64 / 1000.0);
        let msgs = self.f.drain(&self.f.queues.events).await;
        for m in &msgs {
            let e: Envelope = serde_json::from_str(m.body().unwrap()).unwrap();
            for ev in &e.events {
                let id = ev["metadata"]["original_event_uid"]
                    .as_str()
                    .unwrap()
                    .to_string();
                self.emitted += 1;
                self.seen
                    .entry((e.tenant_id.clone(), e.stream, id))
                    .and_modify(|(_, n)| *n += 1)
                    .or_insert((now, 1));
            }
        }
        self.clock.advance_to(start + TimeDelta::minutes(5));
    }
}

/// Polls futures concurrently on the current task.
async fn futures_join_all<F: std::future::Future<Output = u64>>(futs: Vec<F>) -> Vec<u64> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<u64>> = vec![None; futs.len()];
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

fn schedule_event(at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": "chaos",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": at.to_rfc3339(),
        "region": "us-east-1",
        "resources": [],
        "detail": {}
    })
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Runs the whole chaos run and measures it.
pub async fn run(p: &ChaosParams) -> ChaosReport {
    let real = Instant::now();
    let mut run = Run::start(p).await;
    let sched = SchedulerContext::from_config(
        &run.f.scheduler_config(),
        &run.f.sdk,
        Arc::new(run.clock.clone()),
    );
    let baseline_end = t0() + TimeDelta::seconds((p.baseline_hours * 3600.0) as i64);
    let chaos_end = baseline_end + TimeDelta::seconds((p.chaos_hours * 3600.0) as i64);
    let end = chaos_end + TimeDelta::seconds((p.calm_hours * 3600.0) as i64);
    let cursors = DynamoCursorStore::new(run.f.ddb.clone(), CURSOR_TABLE);
    let mut last: HashMap<(String, Stream), StoredCursor> = HashMap::new();
    let tenants: Vec<String> = run
        .healthy
        .iter()
        .chain(&run.chaotic)
        .chain([&run.neighbour])
        .cloned()
        .collect();
    while run.clock.now() < end {
        let now = run.clock.now();
        let phase = if now < baseline_end {
            Phase::Baseline
        } else if now < chaos_end {
            Phase::Chaos
        } else {
            Phase::Calm
        };
        run.slot(&sched, phase).await;
        if (run.clock.now() - t0()).num_hours() > (now - t0()).num_hours() {
            eprintln!(
                "chaos: {} simulated h, {} jobs, {} events, {:.0} s",
                (run.clock.now() - t0()).num_hours(),
                run.jobs,
                run.emitted,
                real.elapsed().as_secs_f64()
            );
        }
        // Every stored cursor, read back after the slot, is the same or later than before.
        for t in &tenants {
            for s in Stream::ALL {
                let Some(c) = cursors.load(t, s).await.unwrap() else {
                    continue;
                };
                if let Some(prev) = last.get(&(t.clone(), s)) {
                    let backwards = if c.version < prev.version {
                        Some(format!("version {} -> {}", prev.version, c.version))
                    } else {
                        match (Cursor::from_doc(&prev.doc), Cursor::from_doc(&c.doc)) {
                            (Ok(a), Ok(b)) => Cursor::check_advance(Some(&a), &b)
                                .err()
                                .map(|e| e.to_string()),
                            _ => None,
                        }
                    };
                    if let Some(e) = backwards {
                        run.plan.regressions.lock().unwrap().push(format!(
                            "stored {t} {s} v{} -> v{}: {e}",
                            prev.version, c.version
                        ));
                    }
                }
                last.insert((t.clone(), s), c);
            }
        }
    }
    let finish = run.clock.now();

    // Lost: inside the stream's first reach (its origin), promised by its final cursor (a
    // sweep that started after the event became visible completed), never delivered.
    let mut report = ChaosReport {
        seed: p.seed,
        hours: (finish - t0()).num_seconds() as f64 / 3600.0,
        tenants: tenants.len(),
        jobs: run.jobs,
        aws_faults: p.aws_faults,
        ..ChaosReport::default()
    };
    let mut fresh_alone = Vec::new();
    let mut fresh_neighbour = Vec::new();
    for t in &tenants {
        for (stream, truths) in [
            (Stream::Signins, vec![GroundTruthStream::SignIns]),
            (
                Stream::DirectoryAudits,
                vec![GroundTruthStream::DirectoryAudits],
            ),
            (
                Stream::UnifiedAudit,
                vec![
                    GroundTruthStream::AuditExchange,
                    GroundTruthStream::AuditAzureActiveDirectory,
                    GroundTruthStream::AuditGeneral,
                ],
            ),
        ] {
            let Some(cursor) = last
                .get(&(t.clone(), stream))
                .and_then(|c| Cursor::from_doc(&c.doc).ok())
            else {
                report.stalled.push(format!("{t} {stream}: no cursor"));
                continue;
            };
            if cursor
                .last_sweep_start
                .is_none_or(|s| s < finish - TimeDelta::hours(2))
            {
                report.stalled.push(format!(
                    "{t} {stream}: last sweep started {:?}",
                    cursor.last_sweep_start
                ));
            }
            let origin = cursor.origin.unwrap_or(t0() - TimeDelta::minutes(50));
            let cursor_cfg: itdr_shared::cursor::CursorConfig =
                serde_json::from_value(poll_config()["cursor"].clone()).unwrap();
            for gt in truths {
                for ev in run.sim.ground_truth(t, gt, finish) {
                    let axis = ev.content_created.unwrap_or(ev.event_time);
                    if axis < origin || ev.visible_at > finish {
                        continue;
                    }
                    report.generated += 1;
                    match run.seen.get(&(t.clone(), stream, ev.id.clone())) {
                        None if !cursor.promises(axis, ev.visible_at, &cursor_cfg) => {
                            report.pending += 1;
                        }
                        None => {
                            report.lost += 1;
                            if report.lost_examples.len() < 10 {
                                let why = explain_lost(
                                    &run.sim,
                                    &cursors,
                                    last.get(&(t.clone(), stream)),
                                    t,
                                    stream,
                                    &ev,
                                )
                                .await;
                                report.lost_examples.push(format!(
                                    "{t} {stream} {} at {} visible {} ({}); {why}",
                                    ev.id, ev.event_time, ev.visible_at, ev.event_type
                                ));
                            }
                        }
                        Some((at, _)) if run.healthy.contains(t) && ev.visible_at >= t0() => {
                            let secs = (*at - ev.visible_at).num_seconds() as f64;
                            if ev.visible_at < baseline_end {
                                fresh_alone.push(secs);
                            } else if ev.visible_at < chaos_end {
                                fresh_neighbour.push(secs);
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    report.distinct = run.seen.len() as u64;
    report.emitted = run.emitted;
    report.duplicated = run.seen.values().map(|(_, n)| n - 1).sum();
    for ((t, s, _), (_, n)) in &run.seen {
        if *n > 1 {
            let role = if run.healthy.contains(t) {
                "healthy"
            } else if *t == run.neighbour {
                "neighbour"
            } else {
                "chaotic"
            };
            *report
                .duplicates_by
                .entry(format!("{role} {s}"))
                .or_default() += n - 1;
        }
    }
    report.regression_examples = run.plan.regressions.lock().unwrap().clone();
    report.regressions = report.regression_examples.len() as u64;
    report.faults = run.plan.counts.lock().unwrap().clone();
    report.fresh_alone = percentiles(fresh_alone);
    report.fresh_neighbour = percentiles(fresh_neighbour);
    report.real_secs = real.elapsed().as_secs_f64();
    for (k, v) in &run.slot_secs {
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let max = v.iter().copied().fold(0.0, f64::max);
        report.slot_secs.insert(k, (mean, max));
    }
    run.sim.shutdown().await;
    report
}

/// What the run knows of a lost event: whether its fingerprint is in the stream's final seen
/// set (inline or in a page) and how many successful first-page requests of the tenant's
/// sign-in or audit queries covered its time after it became visible.
async fn explain_lost(
    sim: &SimHandle,
    cursors: &DynamoCursorStore,
    stored: Option<&StoredCursor>,
    tenant: &str,
    stream: Stream,
    ev: &itdr_sim::TruthEvent,
) -> String {
    use itdr_shared::cursor::seen::{SeenSet, fingerprint};
    let mut out = Vec::new();
    let fp = fingerprint(&ev.id);
    let idx = SeenSet::index_of(ev.event_time, 60);
    match stored.map(|s| Cursor::from_doc(&s.doc)) {
        Some(Ok(c)) => {
            out.push(format!(
                "cursor v{} watermark {} last_sweep_start {:?} pass {:?} sweep {:?} origin {:?}",
                stored.map_or(0, |s| s.version),
                c.watermark,
                c.last_sweep_start,
                c.pass.as_ref().map(|p| (p.lower, p.upper, p.done_until)),
                c.sweep.as_ref().map(|p| (p.lower, p.upper, p.done_until)),
                c.origin
            ));
            for (name, seen) in &c.sources {
                let state = match seen.buckets.get(&idx) {
                    None => "no bucket".to_string(),
                    Some(b) if b.paged => {
                        let page = cursors
                            .seen_pages()
                            .map(|p| p.load_pages(tenant, stream, name, idx, idx));
                        let page = match page {
                            Some(f) => f.await.ok(),
                            None => None,
                        };
                        format!(
                            "paged, page {:?}",
                            page.map(|v| v.iter().any(|(_, fps)| fps.contains(&fp)))
                        )
                    }
                    Some(b) => format!(
                        "inline n={} fp present {:?}",
                        b.count,
                        b.fps.as_ref().map(|f| f.contains(&fp))
                    ),
                };
                out.push(format!("{name}: {state}"));
            }
        }
        Some(Err(e)) => out.push(format!("cursor unreadable: {e}")),
        None => out.push("no cursor".into()),
    }
    // First-page requests whose window covers the event, answered 200 after it was visible.
    let at = ev.event_time;
    let mut covering = Vec::new();
    for r in sim.request_log() {
        if r.tenant_id.as_deref() != Some(tenant) || r.status != 200 {
            continue;
        }
        let q = percent_decode(&r.query);
        let (Some(ge), Some(le)) = (bound(&q, " ge "), bound(&q, " le ")) else {
            continue;
        };
        if ge <= at && at <= le {
            covering.push(format!(
                "{} {}{}",
                r.at.format("%d %H:%M:%S"),
                r.path,
                if r.at >= ev.visible_at {
                    ""
                } else {
                    " (before visible)"
                }
            ));
        }
    }
    let after = covering
        .iter()
        .filter(|c| !c.ends_with("(before visible)"))
        .count();
    out.push(format!(
        "{} covering 200 requests, {after} after visible: {:?}",
        covering.len(),
        covering.iter().take(12).collect::<Vec<_>>()
    ));
    out.join("; ")
}

fn percent_decode(q: &str) -> String {
    let b = q.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The time after the first `op` (" ge " / " le ") of a `$filter`.
fn bound(q: &str, op: &str) -> Option<DateTime<Utc>> {
    let rest = &q[q.find(op)? + op.len()..];
    let end = rest.find([' ', '&', ')']).unwrap_or(rest.len());
    DateTime::parse_from_rfc3339(&rest[..end])
        .ok()
        .map(|d| d.with_timezone(&Utc))
}
