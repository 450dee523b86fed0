//! The fleet simulation: many tenants polled on a virtual clock, without HTTP, by the real code
//! that decides the requests. Shared by `benches/fleet.rs` (the figures of `make bench`) and
//! `tests/fleet.rs` (a short seeded run in `make test`).
//!
//! Real code, called as the poller calls it:
//! - scheduling: [`Cadence::due`] on a [`TenantRecord`] whose health is kept by
//!   [`apply_health`] after every poll (adaptive polling, maximum staleness, per-stream phase);
//! - cursors: [`Cursor::begin_spread`] (with the poller's per-stream phase), `next_slice`,
//!   `complete_slice`, `shrink`, `prune_paged`, for every stream of every tenant, with the
//!   default [`PollConfig`] (30 min lookback, hourly sweeps over 6 h and a deep one over 24 h
//!   every 6 h, 3 h slices, 240 s sweep budget per poll, background priority for sweeps);
//! - sign-ins read with one query for every type (`SignInsSource`), paged over both types'
//!   records, kept apart per seen set;
//! - pacing: one [`Pacer`] per poller instance on its own [`ManualClock`], with the per-tenant
//!   window (5 per 11 s), the per-app window at `floor(0.8 x 122 / C)` and the background
//!   reserve; every request waits in `Pacer::acquire_as` and is settled when its response came.
//!
//! Modelled (not the real code):
//! - the poll loop around the cursor (`poll/mod.rs::poll_windowed`: slice order, the sweep
//!   deadline, pages delivered one by one, a slice cut short between pages held open and
//!   continued from the same snapshot, one cut short before its first page shrinks) and the job runner (jobs of a batch one
//!   after the other against one Lambda deadline, `timeout - 10 s`);
//! - Lambda: `C` poller instances per app registration, each running a batch of up to
//!   `batch_size` jobs at a time; a tenant's two report streams never run at once (FIFO group:
//!   a poller takes the first job whose tenant has none in flight, as SQS FIFO hands out no
//!   message of a group that has one in flight);
//! - Microsoft: per tenant and hour, events as the simulator generates them (`tests/sim`:
//!   business-hours factor 1.7 / 0.8 / 0.3 by the tenant's local hour, 0.4 on Saturdays and
//!   Sundays (UTC), +-20 % per hour, sign-in types 70 % interactive, 25 % non-interactive, 4 %
//!   service principal, 1 % managed identity)
//!   with the simulator's default `DelayModel` (late arrival), or another (`FleetConfig::delay`). A request returns up to
//!   `page_size` records of those visible when the query's first page was asked for, and takes
//!   0.3 s + 1 ms per record. Any request of an app registration that is the 123rd or later in a
//!   10 s window is an app-level 429 (counted over the time-ordered arrival log; the pacing is
//!   not told, so the count is what the design allows, not hidden by a retry).
//! - delivery: each page's records are delivered when its response came; each event's first
//!   delivery gives its freshness. On every `seen_every`-th
//!   tenant the real seen set (`SeenSet::filter_new`, `record`, pruning) decides instead what is
//!   new (with seen pages, as the SQLite and DynamoDB stores keep them), and its decisions are
//!   compared with the model's.
//!
//! Left out: the unified audit log (the Management Activity API has its own budget), inventory
//! streams, failures and throttling answers other than counting them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_shared::Cloud;
use itdr_shared::client::pacing::{Bucket, Pacer, Priority, Rate};
use itdr_shared::clock::{Clock, ManualClock, SharedClock};
use itdr_shared::cursor::seen::fingerprint;
use itdr_shared::cursor::{Cursor, CursorConfig, Key, PassKind, SeenSet};
use itdr_shared::health::{Health, HealthUpdate, apply_health};
use itdr_shared::poll::{PollConfig, fold_below};
use itdr_shared::schedule::Cadence;
use itdr_shared::store::TenantRecord;
use itdr_shared::stream::Stream;
use itdr_sim::{DelayModel, activity_factor};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Microsoft's app-wide limit on the reporting APIs.
pub const APP_LIMIT: usize = 122;
/// Microsoft's per-tenant limit on the reporting APIs.
pub const TENANT_LIMIT: usize = 5;
const WINDOW_MS: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;
/// Events visible this long before the end must have been delivered: a late event is read by
/// the first sweep that starts after it became visible, and sweeps start at most a sweep
/// interval (1 h) after the last one, at the stream's next poll (a quiet stream is polled
/// every 30 minutes), and take some minutes.
pub const LOSS_MARGIN_MS: i64 = 2 * HOUR_MS;

/// How far into the queue a poller looks for a job of a tenant that is not busy (SQS FIFO
/// skips the message groups that have a message in flight).
const FIFO_SCAN: usize = 64;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Tenants of the small-business mix (the backfill tenant comes on top).
    pub tenants: usize,
    /// Tenants per app registration: the number of apps is `ceil(tenants / this)`, tenants
    /// assigned to the least-loaded app.
    pub tenants_per_app: usize,
    /// Poller instances (Lambda concurrency) per app registration.
    pub instances_per_app: usize,
    /// Jobs per poller invocation.
    pub batch_size: usize,
    /// Poller timeout (s); a batch's deadline is this less 10 s.
    pub timeout_secs: i64,
    /// Hours of warm-up before the measured window (tenants onboarded over its first hour
    /// with one hour of history, so cursors, seen sets and sweep phases are in steady state).
    pub warmup_hours: i64,
    /// Measured hours.
    pub hours: i64,
    /// Seed of the event model.
    pub seed: u64,
    /// Schedule slot (s).
    pub slot_secs: u64,
    /// Adaptive polling.
    pub cadence: Cadence,
    /// Poller settings (cursor rules, page size, sweep budget).
    pub poll: PollConfig,
    /// Onboard one busy tenant with a 30-day backfill an hour into the measured window.
    pub backfill: bool,
    /// Every n-th tenant runs the real seen set (0: none).
    pub seen_every: usize,
    /// Requests per 10 s per instance and app instead of `floor(0.8 x 122 / C)` (to show
    /// that the model sees a fleet that overruns the app's limit).
    pub app_share: Option<u32>,
    /// Every tenant onboarded at the start (as `itdr run` registers its simulated tenants),
    /// instead of over the first hour.
    pub onboard_at_start: bool,
    /// Each tenant's UTC offset in hours (its business hours), instead of the model's own
    /// spread: the agreement run gives the simulator's.
    pub utc_offsets: Option<Vec<i64>>,
    /// When events become visible (late arrival): the simulator's default, or Microsoft's
    /// published latencies (`DelayModel::published`).
    pub delay: DelayModel,
}

impl FleetConfig {
    /// The defaults of a deployment: 5-minute schedule, default cadence and poll settings,
    /// 300 tenants and 24 instances per app, batches of 5, 300 s timeout. An instance sends
    /// one request at a time and a sweep keeps to its tenant's 5 per 11 s (4 as background), so
    /// one instance moves about 0.4 requests/s during sweeps: it takes about 24 of them to use
    /// an app's `0.8 x 122` per 10 s (each then keeps to `floor(97.6 / 24) = 4`).
    pub fn new(tenants: usize) -> Self {
        Self {
            tenants,
            tenants_per_app: 300,
            instances_per_app: 24,
            batch_size: 5,
            timeout_secs: 300,
            warmup_hours: 24,
            hours: 24,
            seed: 14,
            slot_secs: 300,
            cadence: Cadence::default(),
            poll: PollConfig::default(),
            backfill: true,
            seen_every: 50,
            app_share: None,
            onboard_at_start: false,
            utc_offsets: None,
            delay: DelayModel::default(),
        }
    }

    /// Apps used.
    pub fn apps(&self) -> usize {
        self.tenants.div_ceil(self.tenants_per_app.max(1)).max(1)
    }

    /// Requests per 10 s each instance keeps to per app (`RATE_BUDGET.md`).
    pub fn share(&self) -> u32 {
        if let Some(s) = self.app_share {
            return s;
        }
        ((0.8 * APP_LIMIT as f64) / self.instances_per_app.max(1) as f64).floor() as u32
    }
}

/// Sign-ins per hour of tenant `i` in the mix: 60 % at 20, 30 % at 100, 8 % at 400,
/// 2 % at 2,000 (exact for every 50 consecutive tenants).
pub fn mix_rate(i: usize) -> f64 {
    match (i * 37) % 50 {
        0..30 => 20.0,
        30..45 => 100.0,
        45..49 => 400.0,
        _ => 2000.0,
    }
}

/// Directory audits per hour: a small rate growing with the tenant (1 per 20 sign-ins, at
/// least 1): 1, 5, 20, 100 for the four classes.
pub fn audit_rate(signins: f64) -> f64 {
    (signins / 20.0).max(1.0)
}

/// What the simulation measured (over the measured window).
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub tenants: usize,
    pub apps: usize,
    pub hours: f64,
    pub requests: u64,
    pub requests_per_app: Vec<u64>,
    pub app_429s: u64,
    pub tenant_429s: u64,
    pub peak_app_window: usize,
    pub jobs: u64,
    pub events_delivered: u64,
    pub backlog_requests: u64,
    pub backlog_records: u64,
    pub backfill_catchup_h: Option<f64>,
    pub fresh_visible: Hist,
    pub fresh_event: Hist,
    /// Longest wait between two polls of one stream (s), after its tenant's onboarding.
    pub max_poll_gap_s: i64,
    /// Events visible [`LOSS_MARGIN_MS`] before the end, after their stream's origin, never
    /// delivered (streams whose first backfill is still running are left out).
    pub lost: u64,
    /// Seen-set tenants: records the seen set called new though already delivered.
    pub seen_duplicates: u64,
    /// Seen-set tenants: records the seen set filtered though never delivered.
    pub seen_missed: u64,
    /// Seen-set tenants: records it judged.
    pub seen_judged: u64,
    /// Process CPU seconds of the whole run (warm-up included).
    pub cpu_s: f64,
    /// Tenant-days simulated (warm-up included).
    pub tenant_days_total: f64,
}

impl Figures {
    pub fn ceiling_used_pct(&self) -> f64 {
        let windows = self.hours * 360.0;
        let busiest = self.requests_per_app.iter().copied().max().unwrap_or(0) as f64;
        100.0 * busiest / (windows * APP_LIMIT as f64)
    }
    pub fn tenant_hours(&self) -> f64 {
        self.tenants as f64 * self.hours
    }
    pub fn requests_per_tenant_hour(&self) -> f64 {
        self.requests as f64 / self.tenant_hours()
    }
    pub fn jobs_per_tenant_day(&self) -> f64 {
        self.jobs as f64 / self.tenant_hours() * 24.0
    }
    pub fn events_per_tenant_day(&self) -> f64 {
        self.events_delivered as f64 / self.tenant_hours() * 24.0
    }
    pub fn events_per_request_backlog(&self) -> f64 {
        self.backlog_records as f64 / self.backlog_requests.max(1) as f64
    }
    pub fn cpu_s_per_tenant_day(&self) -> f64 {
        self.cpu_s / self.tenant_days_total.max(1e-9)
    }
    pub fn tenants_per_app(&self) -> f64 {
        self.tenants as f64 / self.apps.max(1) as f64
    }
}

/// A histogram of seconds (1 s bins up to two days).
#[derive(Debug, Clone)]
pub struct Hist {
    bins: Vec<u64>,
    n: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            bins: vec![0; 2 * 86_400 + 1],
            n: 0,
        }
    }
}

impl Hist {
    fn add(&mut self, ms: i64) {
        let s = (ms.max(0) / 1000).min(2 * 86_400) as usize;
        self.bins[s] += 1;
        self.n += 1;
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    /// The `p`-th percentile (0..=100), in seconds.
    pub fn pct(&self, p: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let want = ((p / 100.0) * self.n as f64).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (s, c) in self.bins.iter().enumerate() {
            acc += c;
            if acc >= want {
                return s as f64;
            }
        }
        self.bins.len() as f64
    }
}

/// One event of the model: offset in its hour, visibility delay, sign-in type.
#[derive(Debug, Clone, Copy)]
struct Ev {
    off_ms: u32,
    delay_s: u16,
    kind: u8,
    done: bool,
}

/// A record read: its hour, its index in the hour (`None`: an hour no longer tracked), event
/// time and visibility time (ms).
type Read = (i64, Option<u32>, i64, i64);

/// The sources of a stream: interactive sign-ins, the other sign-in types (the beta source),
/// directory audits.
const SOURCES: [&str; 3] = [
    "signins.interactive",
    "signins.noninteractive",
    "directory_audits",
];

/// The model's paging link: the snapshot time of the chain's first page and the pages read.
fn parse_link(link: &str) -> Option<(i64, usize)> {
    let (first, done) = link.split_once(':')?;
    Some((first.parse().ok()?, done.parse().ok()?))
}

fn sources_of(stream: Stream) -> &'static [usize] {
    match stream {
        Stream::Signins => &[0, 1],
        _ => &[2],
    }
}

fn stream_code(source: usize) -> u8 {
    u8::from(source == 2)
}

fn source_has(source: usize, kind: u8) -> bool {
    match source {
        0 => kind == 0,
        1 => kind != 0,
        _ => true,
    }
}

fn delay_sample(model: &DelayModel, rng: &mut StdRng) -> u16 {
    let total: f64 = model.ranges.iter().map(|r| r.0.max(0.0)).sum();
    if model.ranges.is_empty() || total <= 0.0 {
        return 0;
    }
    let mut x = rng.random::<f64>() * total;
    let mut chosen = &model.ranges[model.ranges.len() - 1];
    for r in &model.ranges {
        if x < r.0.max(0.0) {
            chosen = r;
            break;
        }
        x -= r.0.max(0.0);
    }
    let lo = chosen.1.as_secs();
    let hi = chosen.2.as_secs().max(lo);
    rng.random_range(lo..=hi).min(u64::from(u16::MAX)) as u16
}

struct Tenant {
    rec: TenantRecord,
    rate: f64,
    utc_offset_h: i64,
    app: usize,
    onboard_ms: i64,
    /// Per stream: the lower bound of its first pass (nothing before it is due).
    origin_ms: [i64; 2],
    cursors: [Option<Cursor>; 2],
    /// Per stream: whether its first backfill completed.
    backfilled: [bool; 2],
    last_poll_ms: [Option<i64>; 2],
    busy_until_ms: i64,
    seen: bool,
    backfill: bool,
}

struct Instance {
    clock: Arc<ManualClock>,
    pacer: Arc<Pacer>,
}

#[derive(Clone, Copy)]
struct Job {
    tenant: usize,
    stream: Stream,
}

struct World {
    cfg: FleetConfig,
    delay: DelayModel,
    hours: HashMap<(u32, u8, i64), Vec<Ev>>,
    cache_floor_hour: i64,
    tenants: Vec<Tenant>,
    measure_from_ms: i64,
    measure_to_ms: i64,
    app_log: Vec<Vec<i64>>,
    tenant_log: HashMap<usize, VecDeque<i64>>,
    /// Seen pages of the seen-set tenants: (tenant, source, bucket) -> fingerprints.
    pages: HashMap<(usize, usize, i64), Vec<u32>>,
    f: Figures,
    rt: tokio::runtime::Runtime,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap()
}

/// A Monday, so the simulated days are weekdays.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl World {
    fn generate(&self, tenant: usize, stream: u8, hour: i64) -> Vec<Ev> {
        let t = &self.tenants[tenant];
        let seed = splitmix(
            self.cfg.seed
                ^ splitmix(tenant as u64)
                ^ splitmix(hour as u64 ^ (u64::from(stream) << 60)),
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let rate = if stream == 0 {
            t.rate
        } else {
            audit_rate(t.rate)
        };
        // The simulator's own daily and weekly shape.
        let factor = activity_factor(at(hour * HOUR_MS), t.utc_offset_h);
        let mean = rate * factor * rng.random_range(0.8..1.2);
        let n = mean.floor() as usize + usize::from(rng.random_bool(mean.fract().clamp(0.0, 1.0)));
        let mut evs: Vec<Ev> = (0..n)
            .map(|_| {
                let off_ms = rng.random_range(0..HOUR_MS as u32);
                let kind = if stream == 0 {
                    match rng.random_range(0..100u32) {
                        0..70 => 0,
                        70..95 => 1,
                        95..99 => 2,
                        _ => 3,
                    }
                } else {
                    0
                };
                Ev {
                    off_ms,
                    delay_s: delay_sample(&self.delay, &mut rng),
                    kind,
                    done: false,
                }
            })
            .collect();
        evs.sort_by_key(|e| e.off_ms);
        evs
    }

    /// The records of `source` of `tenant` in `[lo, hi]` (event time) visible at `now`:
    /// `(hour, index in hour)`; hours before the cache floor are generated and not tracked
    /// (`None` index).
    fn query(
        &mut self,
        tenant: usize,
        source: usize,
        lo: i64,
        hi: i64,
        now: i64,
        out: &mut Vec<Read>,
    ) {
        out.clear();
        let stream = stream_code(source);
        for hour in lo.div_euclid(HOUR_MS)..=hi.div_euclid(HOUR_MS) {
            let base = hour * HOUR_MS;
            let transient;
            let evs: &Vec<Ev> = if hour >= self.cache_floor_hour {
                if !self.hours.contains_key(&(tenant as u32, stream, hour)) {
                    let g = self.generate(tenant, stream, hour);
                    self.hours.insert((tenant as u32, stream, hour), g);
                }
                &self.hours[&(tenant as u32, stream, hour)]
            } else {
                transient = self.generate(tenant, stream, hour);
                &transient
            };
            let tracked = hour >= self.cache_floor_hour;
            let from = evs.partition_point(|e| base + i64::from(e.off_ms) < lo);
            for (i, e) in evs.iter().enumerate().skip(from) {
                let t = base + i64::from(e.off_ms);
                if t > hi {
                    break;
                }
                let vis = t + i64::from(e.delay_s) * 1000;
                if vis <= now && source_has(source, e.kind) {
                    out.push((hour, tracked.then_some(i as u32), t, vis));
                }
            }
        }
    }

    /// One request of `tenant` through `inst`'s pacer; `Err` when no slot before `deadline`.
    fn request(
        &mut self,
        inst: &Instance,
        tenant: usize,
        priority: Priority,
        deadline: DateTime<Utc>,
        records: usize,
    ) -> Result<i64, ()> {
        let tid = self.tenants[tenant].rec.tenant_id.clone();
        let slot = self
            .rt
            .block_on(
                inst.pacer
                    .acquire_as(Bucket::Reports, &tid, deadline, priority),
            )
            .map_err(|_| ())?;
        let sent = ms(inst.clock.now());
        let measured = self.in_measure(sent);
        self.app_log[self.tenants[tenant].app].push(sent);
        let w = self.tenant_log.entry(tenant).or_default();
        while w.front().is_some_and(|t| *t <= sent - WINDOW_MS) {
            w.pop_front();
        }
        if w.len() >= TENANT_LIMIT && measured {
            self.f.tenant_429s += 1;
        }
        w.push_back(sent);
        if self.in_measure(sent) {
            if !self.tenants[tenant].backfill {
                self.f.requests += 1;
            }
            self.f.requests_per_app[self.tenants[tenant].app] += 1;
        }
        inst.clock
            .advance(Duration::from_millis(300 + records as u64));
        inst.pacer.settle(&slot);
        Ok(sent)
    }

    fn in_measure(&self, t: i64) -> bool {
        t >= self.measure_from_ms && t < self.measure_to_ms
    }

    /// One poll of (tenant, stream), as `poll_windowed` runs it.
    fn poll(&mut self, inst: &Instance, job: Job, deadline: DateTime<Utc>) {
        let cfg = self.cfg.poll.clone();
        let ti = job.tenant;
        let si = usize::from(job.stream != Stream::Signins);
        let now = inst.clock.now();
        let now_ms = ms(now);
        if let Some(prev) = self.tenants[ti].last_poll_ms[si]
            && self.in_measure(now_ms)
        {
            self.f.max_poll_gap_s = self.f.max_poll_gap_s.max((now_ms - prev) / 1000);
        }
        self.tenants[ti].last_poll_ms[si] = Some(now_ms);
        let ccfg = if self.tenants[ti].cursors[si].is_none() && !self.tenants[ti].backfill {
            // Warm-up tenants start with an hour of history (steady state comes from the
            // warm-up, not from a 30-day backfill of every tenant).
            CursorConfig {
                initial_lookback_secs: 3600,
                ..cfg.cursor.clone()
            }
        } else {
            cfg.cursor.clone()
        };
        // Deep sweeps spread per tenant and stream, as the poller spreads them.
        let phase = u64::from(fingerprint(&format!("{ti}#{}", job.stream)));
        let mut c = Cursor::begin_spread(
            self.tenants[ti].cursors[si].as_ref(),
            now,
            now - TimeDelta::days(30),
            &ccfg,
            phase,
        );
        // A sweep known to hold less than most of a page does the regular pass's work (as
        // the poller decides from its seen sets' counts; here, what the window holds).
        let sweep_lower = c.sweep.as_ref().map(|s| ms(s.lower));
        if let Some(lo) = sweep_lower
            && c.regular_foldable(now)
        {
            let mut n = 0usize;
            let mut probe = Vec::new();
            for &source in sources_of(job.stream) {
                self.query(ti, source, lo, now_ms, now_ms, &mut probe);
                n += probe.len();
                probe.clear();
            }
            if n as u64 <= fold_below(cfg.page_size) {
                c.fold_regular(now);
            }
        }
        if self.tenants[ti].origin_ms[si] == i64::MIN {
            self.tenants[ti].origin_ms[si] = c.origin.map_or(now_ms, ms);
        }
        let sweep_budget = TimeDelta::seconds(cfg.sweep_budget_secs as i64);
        let mut sweep_deadline: Option<DateTime<Utc>> = None;
        let mut newest: Option<i64> = None;
        let mut buf = Vec::new();
        while let Some((slice, kind)) = c.next_slice(&ccfg) {
            let (dl, priority, backfill) = match kind {
                PassKind::Regular => (deadline, Priority::Regular, false),
                PassKind::Sweep => (
                    *sweep_deadline
                        .get_or_insert_with(|| deadline.min(inst.clock.now() + sweep_budget)),
                    Priority::Background,
                    c.last_sweep_start.is_none(),
                ),
            };
            if inst.clock.now() >= dl {
                break;
            }
            let (lo, hi) = (ms(slice.lower), ms(slice.upper));
            // A slice read in part before continues from its paging link: the same snapshot
            // (records visible when its first page was asked for), from the next page.
            let key = job.stream.to_string();
            let (first_ms, skip) = match slice.resume_of(&key) {
                Some(Some(link)) => parse_link(link).unwrap_or((ms(inst.clock.now()), 0)),
                _ => (ms(inst.clock.now()), 0),
            };
            // Sign-ins: one query returns every type (`SignInsSource`); its records are
            // kept apart per seen set, as the poller keeps them.
            let mut flat: Vec<(usize, Read)> = Vec::new();
            for &source in sources_of(job.stream) {
                self.query(ti, source, lo, hi, first_ms, &mut buf);
                flat.extend(buf.drain(..).map(|r| (source, r)));
            }
            let n = flat.len();
            let page = cfg.page_size.max(1) as usize;
            let pages = n.div_ceil(page).max(1);
            // Page by page: each page is delivered (and committed) as it comes.
            let mut done = skip;
            for p in skip..pages {
                if p > skip && inst.clock.now() >= dl {
                    break;
                }
                let recs = flat.get(p * page..((p + 1) * page).min(n)).unwrap_or(&[]);
                if self.request(inst, ti, priority, dl, recs.len()).is_err() {
                    break;
                }
                if self.tenants[ti].backfill && backfill {
                    self.f.backlog_requests += 1;
                    self.f.backlog_records += recs.len() as u64;
                }
                done = p + 1;
                // A whole read: a new slice read to its end in one round.
                let whole =
                    (slice.resume.is_none() && pages == 1).then_some((slice.lower, slice.upper));
                let delivered_ms = ms(inst.clock.now()) + 50;
                for &source in sources_of(job.stream) {
                    let mine: Vec<Read> = recs
                        .iter()
                        .filter(|(s, _)| *s == source)
                        .map(|(_, r)| *r)
                        .collect();
                    if self.tenants[ti].seen {
                        self.judge_seen(ti, source, &mut c, &mine, whole, &ccfg);
                    }
                    for &(hour, idx, t, vis) in &mine {
                        let Some(idx) = idx else { continue };
                        let key = (ti as u32, stream_code(source), hour);
                        let e = &mut self.hours.get_mut(&key).unwrap()[idx as usize];
                        if e.done {
                            continue;
                        }
                        e.done = true;
                        newest = Some(newest.map_or(t, |n| n.max(t)));
                        if self.in_measure(delivered_ms) && !self.tenants[ti].backfill {
                            self.f.events_delivered += 1;
                            if !backfill {
                                self.f.fresh_visible.add(delivered_ms - vis);
                                self.f.fresh_event.add(delivered_ms - t);
                            }
                        }
                    }
                }
                inst.clock.advance(Duration::from_millis(50));
            }
            if done < pages {
                if done > skip || skip > 0 {
                    // Pages delivered, more to read: the slice stays open.
                    let pending = BTreeMap::from([(key, Some(format!("{first_ms}:{done}")))]);
                    c.hold_slice(&slice, kind, pending);
                } else {
                    c.shrink(kind, &ccfg);
                }
                break;
            }
            let was_backfilling = c.last_sweep_start.is_none();
            c.complete_slice(&slice, kind);
            if was_backfilling && c.last_sweep_start.is_some() {
                let t = &mut self.tenants[ti];
                t.backfilled[si] = true;
                if t.backfill && t.backfilled.iter().all(|b| *b) {
                    // Both streams' backfills are done: the tenant caught up.
                    let took = ms(inst.clock.now()) - t.onboard_ms;
                    self.f.backfill_catchup_h = Some(took as f64 / HOUR_MS as f64);
                }
            }
            if inst.clock.now() >= deadline {
                break;
            }
        }
        // Commit: seen pages first, then the cursor, then the pages it no longer refers to.
        let work = c.prune_paged(&ccfg);
        for page in work.put {
            let source = SOURCES.iter().position(|s| *s == page.source).unwrap_or(0);
            self.pages.insert((ti, source, page.bucket), page.fps);
        }
        for (name, bucket) in work.delete {
            let source = SOURCES.iter().position(|s| *s == name).unwrap_or(0);
            self.pages.remove(&(ti, source, bucket));
        }
        self.tenants[ti].cursors[si] = Some(c);
        let t = &mut self.tenants[ti];
        t.rec.health = apply_health(
            &t.rec.health,
            &HealthUpdate::Success {
                stream: job.stream,
                at: now,
                newest_event: newest.map(at),
                throttled: false,
            },
        );
    }

    /// The real seen set's verdict on a read, against the model's: what it calls new must be
    /// what was never delivered.
    fn judge_seen(
        &mut self,
        ti: usize,
        source: usize,
        c: &mut Cursor,
        recs: &[Read],
        // The slice's bounds when the read is the whole slice; `None`: part of it (pages).
        whole: Option<(DateTime<Utc>, DateTime<Utc>)>,
        cfg: &CursorConfig,
    ) {
        let ids: Vec<String> = recs
            .iter()
            .map(|(h, i, t, _)| format!("{ti}:{source}:{h}:{}:{t}", i.unwrap_or(u32::MAX)))
            .collect();
        let keys: Vec<Key<'_>> = recs
            .iter()
            .zip(&ids)
            .map(|((_, _, t, _), id)| Key { id, time: at(*t) })
            .collect();
        let seen: &mut SeenSet = c.sources.entry(SOURCES[source].to_string()).or_default();
        // Load the seen pages of the buckets the records fall into, as the poller does.
        if let (Some(a), Some(b)) = (keys.first(), keys.last()) {
            let (a, b) = (
                SeenSet::index_of(a.time, cfg.bucket_secs),
                SeenSet::index_of(b.time, cfg.bucket_secs),
            );
            for idx in seen.unloaded(a, b) {
                if let (Some(fps), Some(bucket)) = (
                    self.pages.get(&(ti, source, idx)),
                    seen.buckets.get_mut(&idx),
                ) {
                    bucket.count = u32::try_from(fps.len()).unwrap_or(u32::MAX);
                    bucket.fps = Some(fps.clone());
                }
            }
        }
        let new = match whole {
            Some((lower, upper)) => seen.filter_new(&keys, lower, upper, cfg),
            None => seen.filter_new_partial(&keys, cfg),
        };
        let mut is_new = vec![false; recs.len()];
        for i in &new {
            is_new[*i] = true;
        }
        for (k, &(hour, idx, _, _)) in recs.iter().enumerate() {
            let Some(idx) = idx else { continue };
            let done = self.hours[&(ti as u32, stream_code(source), hour)][idx as usize].done;
            self.f.seen_judged += 1;
            match (is_new[k], done) {
                (true, true) => self.f.seen_duplicates += 1,
                (false, false) => self.f.seen_missed += 1,
                _ => {}
            }
        }
        match whole {
            Some((lower, upper)) => seen.record(&keys, &new, lower, upper, cfg),
            None => seen.record_partial(&keys, &new, cfg),
        }
    }

    /// Forgets hours no pass can read again, counting their undelivered events as lost.
    fn prune_hours(&mut self, now_ms: i64) {
        let keep = (now_ms - 27 * HOUR_MS).div_euclid(HOUR_MS);
        // Older hours are generated again when read (a backfill), but no longer tracked.
        self.cache_floor_hour = self.cache_floor_hour.max(keep);
        let check_until = self.measure_to_ms - LOSS_MARGIN_MS;
        let tenants = &self.tenants;
        let mut lost = 0;
        self.hours.retain(|(tenant, stream, hour), evs| {
            if *hour >= keep {
                return true;
            }
            let owner = &tenants[*tenant as usize];
            if !owner.backfilled[usize::from(*stream)] {
                // A backfill still in progress is not a loss (its catch-up time is a figure).
                return false;
            }
            let origin = owner.origin_ms[usize::from(*stream)];
            for e in evs.iter() {
                let t = hour * HOUR_MS + i64::from(e.off_ms);
                let vis = t + i64::from(e.delay_s) * 1000;
                if !e.done && t >= origin && vis <= check_until && origin != i64::MIN {
                    lost += 1;
                }
            }
            false
        });
        self.f.lost += lost;
    }
}

/// Runs the fleet and returns its figures.
pub fn run(cfg: &FleetConfig) -> Figures {
    let cpu0 = cpu_seconds();
    let wall0 = std::time::Instant::now();
    let apps = cfg.apps();
    let t0 = ms(start());
    let warm_from = t0;
    let measure_from = t0 + cfg.warmup_hours * HOUR_MS;
    let measure_to = measure_from + cfg.hours * HOUR_MS;
    let n = cfg.tenants + usize::from(cfg.backfill);
    let mut load = vec![0usize; apps];
    let mut tenants = Vec::with_capacity(n);
    for i in 0..n {
        let backfill = i == cfg.tenants;
        // Least-loaded app, as `itdr tenants add` assigns.
        let app = (0..apps).min_by_key(|a| (load[*a], *a)).unwrap_or(0);
        load[app] += 1;
        let onboard_ms = if backfill {
            measure_from + HOUR_MS
        } else if cfg.onboard_at_start {
            warm_from
        } else {
            warm_from + ((i % 12) as i64) * 300_000
        };
        let rate = if backfill { 2000.0 } else { mix_rate(i) };
        tenants.push(Tenant {
            rec: TenantRecord {
                tenant_id: format!("{:08x}-0000-4000-8000-{i:012}", splitmix(i as u64) as u32),
                domain: None,
                org: None,
                cloud: Cloud::Global,
                app_ref: format!("app{app}"),
                streams: vec![Stream::Signins, Stream::DirectoryAudits],
                include_noninteractive: true,
                enabled: true,
                health: Health::default(),
                created_at: at(onboard_ms),
            },
            rate,
            utc_offset_h: cfg
                .utc_offsets
                .as_ref()
                .and_then(|o| o.get(i).copied())
                .unwrap_or([-8i64, -6, -5, -5, 0, 1, 1, 2][splitmix(i as u64 ^ 7) as usize % 8]),
            app,
            onboard_ms,
            origin_ms: [i64::MIN; 2],
            cursors: [None, None],
            backfilled: [false; 2],
            last_poll_ms: [None, None],
            busy_until_ms: 0,
            seen: backfill || (cfg.seen_every > 0 && i % cfg.seen_every == 0),
            backfill,
        });
    }
    let mut world = World {
        cfg: cfg.clone(),
        delay: cfg.delay.clone(),
        hours: HashMap::new(),
        cache_floor_hour: (warm_from - 2 * HOUR_MS).div_euclid(HOUR_MS),
        tenants,
        measure_from_ms: measure_from,
        measure_to_ms: measure_to,
        app_log: vec![Vec::new(); apps],
        tenant_log: HashMap::new(),
        pages: HashMap::new(),
        f: Figures {
            tenants: cfg.tenants,
            apps,
            hours: cfg.hours as f64,
            requests_per_app: vec![0; apps],
            ..Figures::default()
        },
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime"),
    };
    let share = Rate {
        requests: cfg.share(),
        window: Duration::from_secs(10),
    };
    let pools: Vec<Vec<Instance>> = (0..apps)
        .map(|a| {
            (0..cfg.instances_per_app)
                .map(|_| {
                    let clock = Arc::new(ManualClock::new(at(warm_from)));
                    let shared: SharedClock = clock.clone();
                    let pacer = Pacer::new(shared, Rate::REPORTS_PER_TENANT_PACED, Some(share));
                    for t in world.tenants.iter().filter(|t| t.app == a) {
                        pacer.assign(&t.rec.tenant_id, &t.rec.app_ref);
                    }
                    Instance { clock, pacer }
                })
                .collect()
        })
        .collect();
    let mut queues: Vec<VecDeque<Job>> = vec![VecDeque::new(); apps];
    let slot_ms = cfg.slot_secs as i64 * 1000;
    let mut slot_t = warm_from;
    while slot_t < measure_to {
        // The scheduler's plan for this slot.
        let slot = (slot_t / 1000) as u64 / cfg.slot_secs;
        for (i, t) in world.tenants.iter().enumerate() {
            if t.onboard_ms > slot_t {
                continue;
            }
            for stream in [Stream::DirectoryAudits, Stream::Signins] {
                if cfg
                    .cadence
                    .due(&t.rec, stream, slot, cfg.slot_secs, at(slot_t))
                {
                    queues[t.app].push_back(Job { tenant: i, stream });
                    if world.in_measure(slot_t) {
                        world.f.jobs += 1;
                    }
                }
            }
        }
        let next = slot_t + slot_ms;
        // The pollers of each app work until the next slot.
        for (a, pool) in pools.iter().enumerate() {
            while let Some(inst) = pool.iter().min_by_key(|i| i.clock.now()) {
                if queues[a].is_empty() || ms(inst.clock.now()) >= next {
                    break;
                }
                inst.clock.advance_to(at(slot_t));
                let begin = inst.clock.now();
                let deadline = begin + TimeDelta::seconds(cfg.timeout_secs - 10);
                for _ in 0..cfg.batch_size {
                    // SQS FIFO hands out no message of a group with one in flight: the first
                    // job whose tenant is not busy in another instance's batch, else the first.
                    let now_ms = ms(inst.clock.now());
                    let free = queues[a]
                        .iter()
                        .take(FIFO_SCAN)
                        .position(|j| world.tenants[j.tenant].busy_until_ms <= now_ms)
                        .unwrap_or(0);
                    let Some(job) = queues[a].remove(free) else {
                        break;
                    };
                    if inst.clock.now() >= deadline {
                        queues[a].push_front(job);
                        break;
                    }
                    // A tenant's report streams are one FIFO group: one job at a time.
                    inst.clock
                        .advance_to(at(world.tenants[job.tenant].busy_until_ms));
                    world.poll(inst, job, deadline);
                    world.tenants[job.tenant].busy_until_ms = ms(inst.clock.now());
                }
                // An invocation ends; the next starts a little later.
                inst.clock.advance(Duration::from_millis(20));
            }
        }
        world.prune_hours(next);
        slot_t = next;
    }
    world.prune_hours(measure_to + 30 * HOUR_MS);
    // App-level 429s: any request that is the 123rd or later in a 10 s window of its app.
    let mut f = std::mem::take(&mut world.f);
    for log in &mut world.app_log {
        log.sort_unstable();
        let mut lo = 0;
        for hi in 0..log.len() {
            while log[lo] <= log[hi] - WINDOW_MS {
                lo += 1;
            }
            let in_window = hi - lo + 1;
            if log[hi] >= measure_from && log[hi] < measure_to {
                f.peak_app_window = f.peak_app_window.max(in_window);
                if in_window > APP_LIMIT {
                    f.app_429s += 1;
                }
            }
        }
    }
    f.cpu_s = cpu_seconds()
        .map(|c1| c1 - cpu0.unwrap_or(0.0))
        .unwrap_or_else(|| wall0.elapsed().as_secs_f64());
    f.tenant_days_total = n as f64 * (cfg.warmup_hours + cfg.hours) as f64 / 24.0;
    f
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`, 100 ticks/s).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
