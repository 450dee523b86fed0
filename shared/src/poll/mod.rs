//! One poll of one (tenant, stream): load the cursor, then for each slice fetch → select what is
//! new → normalize → deliver → commit.
//!
//! The ordering, and why it loses nothing, is written down in `cursor/cursor.md`. The engine is
//! the same for every windowed source ([`crate::source::WindowedSource`]), in the embedded
//! runner and in the Lambda pollers alike; only the adapters behind [`PollContext`] differ.
//! Snapshot streams have their own engine in [`snapshot`].

pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchError, BatchLimits, into_envelopes};
use crate::client::{ApiClient, Priority, SourceError, Tenant};
use crate::cloud::Cloud;
use crate::cursor::{
    ConfigError, Cursor, CursorConfig, CursorError, Key, PageWork, PassKind, SeenSet, Slice,
    check_range, secs, seen::fingerprint,
};
use crate::health::FailureKind;
use crate::ocsf::NormalizeOptions;
use crate::source::{Fetched, Sources, UnifiedAuditConfig, Window, WindowedSource, sources_with};
use crate::store::{CursorStore, DeadLetter, DeadLetterSink, EventSink, SinkError, StoreError};
use crate::stream::Stream;

/// The most records a starting sweep's window may be known to hold for it to do the regular
/// pass's work too: three quarters of a page, so it stays one request per source when a few
/// late records have arrived since.
pub fn fold_below(page_size: u32) -> u64 {
    u64::from(page_size) * 3 / 4
}

/// Widest slice of a stream with a source that reads its whole window at once (the
/// Management Activity API's content): what a poller holds of it stays bounded.
pub const UNPAGED_SLICE_SECS: u64 = 3 * 3600;

/// Tunables of the poller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Cursor rules.
    pub cursor: CursorConfig,
    /// `$top` for Graph requests (1..=1000).
    pub page_size: u32,
    /// Envelope cap in bytes.
    pub max_message_bytes: usize,
    /// Envelope cap in events.
    pub max_message_events: usize,
    /// Whether events carry the raw record in `raw_data`.
    pub include_raw: bool,
    /// Cap for `raw_data`.
    pub raw_max_bytes: usize,
    /// How far back the tenant's logs are retained (30 days with P1/P2, 7 without), when the
    /// tenant's record does not say.
    pub retention_days: u32,
    /// Most time one poll spends on sweeps and backfills, after its regular pass.
    pub sweep_budget_secs: u64,
    /// How often a snapshot stream (an inventory) is read again in full.
    pub snapshot_interval_secs: u64,
    /// Which Management Activity content types the unified audit stream reads.
    pub unified_audit: UnifiedAuditConfig,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            cursor: CursorConfig::default(),
            page_size: 1000,
            max_message_bytes: crate::batch::DEFAULT_MAX_BYTES,
            max_message_events: crate::batch::DEFAULT_MAX_EVENTS,
            include_raw: false,
            raw_max_bytes: crate::ocsf::DEFAULT_RAW_MAX_BYTES,
            retention_days: 30,
            sweep_budget_secs: 240,
            snapshot_interval_secs: 86_400,
            unified_audit: UnifiedAuditConfig::default(),
        }
    }
}

impl PollConfig {
    /// Checks every value against its range (upper bounds included).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cursor.validate()?;
        check_range("page_size", u64::from(self.page_size), 1, 1000)?;
        check_range(
            "max_message_bytes",
            self.max_message_bytes as u64,
            4096,
            1024 * 1024,
        )?;
        check_range(
            "max_message_events",
            self.max_message_events as u64,
            1,
            10_000,
        )?;
        check_range("raw_max_bytes", self.raw_max_bytes as u64, 0, 1024 * 1024)?;
        check_range("retention_days", u64::from(self.retention_days), 1, 90)?;
        check_range("sweep_budget_secs", self.sweep_budget_secs, 1, 3600)?;
        check_range(
            "snapshot_interval_secs",
            self.snapshot_interval_secs,
            300,
            7 * 86_400,
        )?;
        Ok(())
    }

    /// The configuration, checked once: what a [`PollContext`] holds.
    pub fn validated(self) -> Result<ValidPollConfig, ConfigError> {
        self.validate()?;
        Ok(ValidPollConfig(self))
    }
}

/// A [`PollConfig`] that passed [`PollConfig::validate`]; only [`PollConfig::validated`]
/// makes one, so polls never validate again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidPollConfig(PollConfig);

impl std::ops::Deref for ValidPollConfig {
    type Target = PollConfig;
    fn deref(&self) -> &PollConfig {
        &self.0
    }
}

/// What to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollJob {
    /// Tenant GUID.
    pub tenant_id: String,
    /// The tenant's cloud.
    pub cloud: Cloud,
    /// The stream.
    pub stream: Stream,
    /// Whether to read non-interactive, service-principal and managed-identity sign-ins.
    pub include_noninteractive: bool,
    /// The tenant's log retention in days when known (its health record); otherwise
    /// [`PollConfig::retention_days`]. No pass reaches further back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

/// A place in the poll where a test may simulate a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// After the cursor was loaded.
    Loaded,
    /// After a slice was fetched, before anything was sent.
    Fetched,
    /// After events were delivered, before the cursor was committed.
    Sent,
    /// After the cursor was committed.
    Committed,
}

/// Injected behaviour between steps (tests use it to crash at any point).
pub trait StepHook: Send + Sync {
    /// Called at `step`; an error aborts the poll at once, as a crash would.
    fn at(&self, step: Step) -> Result<(), Crash>;
}

/// A simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("simulated crash at {0:?}")]
pub struct Crash(pub Step);

/// The adapters a poll runs against.
#[derive(Clone)]
pub struct PollContext {
    /// The client of Microsoft's APIs.
    pub client: Arc<ApiClient>,
    /// Cursor store.
    pub cursors: Arc<dyn CursorStore>,
    /// Event sink.
    pub sink: Arc<dyn EventSink>,
    /// Dead-letter sink.
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// Poller tunables, validated.
    pub config: ValidPollConfig,
    /// Optional step hook.
    pub hook: Option<Arc<dyn StepHook>>,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PollOutcome {
    /// Records returned by Microsoft (re-reads included).
    pub fetched: usize,
    /// Events delivered.
    pub emitted: usize,
    /// Records dropped because they were emitted before.
    pub duplicates_filtered: usize,
    /// Records set aside as dead letters.
    pub dead_lettered: usize,
    /// Requests sent to Microsoft (retries included).
    pub requests: u32,
    /// Of those, answered with a throttling response.
    pub throttled: u32,
    /// Slices completed and committed.
    pub slices: usize,
    /// Whether every pass of the poll finished.
    pub pass_complete: bool,
    /// Whether this poll ran (part of) a sweep or backfill.
    pub background: bool,
    /// Newest event time delivered.
    pub newest_event: Option<DateTime<Utc>>,
    /// Delay between event time and delivery, in seconds, for each delivered event that did
    /// not come from the stream's onboarding backfill (history is not late delivery).
    #[serde(skip)]
    pub freshness_secs: Vec<u32>,
    /// Whether the poll stopped early at its deadline (the rest is left for the next poll).
    pub stopped_at_deadline: bool,
    /// Paging links refused because they pointed outside the tenant's cloud. The records
    /// before them were delivered; later passes read the window again.
    pub links_refused: u32,
    /// Content lost for good (an expired or vanished Management Activity blob), each sent to
    /// the dead-letter sink with its reason (and counted in `dead_lettered` too).
    pub content_lost: usize,
}

/// Why a poll failed. Work delivered and committed before the failure is in `progress`.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PollFailure {
    /// The cause.
    #[source]
    pub error: PollError,
    /// What was done before it.
    pub progress: PollOutcome,
}

/// Causes of a failed poll.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// A Microsoft API failed.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// The cursor store failed or the compare-and-set lost.
    #[error("cursor store: {0}")]
    Store(#[from] StoreError),
    /// Delivery failed; nothing of the slice was committed.
    #[error("delivery: {0}")]
    Sink(#[from] SinkError),
    /// The cursor refused to move, or cannot be read or written.
    #[error("cursor: {0}")]
    Cursor(#[from] CursorError),
    /// Events could not be put in envelopes (the limits are checked at startup).
    #[error("batching: {0}")]
    Batch(#[from] BatchError),
    /// A simulated crash (tests).
    #[error("{0}")]
    Crash(#[from] Crash),
}

impl PollError {
    /// The failure kind (health, metrics, the job runner's disposition).
    pub fn kind(&self) -> FailureKind {
        match self {
            PollError::Source(e) => e.kind(),
            PollError::Store(StoreError::Conflict { .. }) => FailureKind::CursorConflict,
            PollError::Store(StoreError::Backend(_)) => FailureKind::Store,
            // Stored data that cannot be used needs an operator, not a retry.
            PollError::Store(
                StoreError::Corrupt(_) | StoreError::Invalid(_) | StoreError::UnknownTenant(_),
            ) => FailureKind::Cursor,
            PollError::Sink(_) => FailureKind::Sink,
            PollError::Cursor(_) => FailureKind::Cursor,
            PollError::Batch(_) => FailureKind::Config,
            PollError::Crash(_) => FailureKind::Crash,
        }
    }
}

/// Runs one poll of `job` until its passes complete or `deadline` comes.
pub async fn poll(
    ctx: &PollContext,
    job: &PollJob,
    deadline: DateTime<Utc>,
) -> Result<PollOutcome, PollFailure> {
    let mut out = PollOutcome::default();
    let result = match sources_with(
        job.stream,
        job.cloud,
        job.include_noninteractive,
        &ctx.config.unified_audit,
    ) {
        Ok(Sources::Windowed(sources)) => {
            poll_windowed(ctx, job, &sources, deadline, &mut out).await
        }
        Ok(Sources::Snapshot(source)) => {
            snapshot::poll_snapshot(ctx, job, source.as_ref(), deadline, &mut out).await
        }
        Err(e) => Err(PollError::Source(e)),
    };
    match result {
        Ok(()) => Ok(out),
        Err(error) => Err(PollFailure {
            error,
            progress: out,
        }),
    }
}

pub(crate) fn hook(ctx: &PollContext, step: Step) -> Result<(), PollError> {
    match &ctx.hook {
        Some(h) => h.at(step).map_err(PollError::from),
        None => Ok(()),
    }
}

/// The cursor of a poll in progress and what is committed of it.
struct CursorState {
    cursor: Cursor,
    committed: Option<Cursor>,
    version: Option<u64>,
}

impl CursorState {
    /// Loads the stored cursor and starts this poll's passes; a new stream's cursor is
    /// committed at once, so a crash before its first slice does not move its origin later.
    async fn begin(ctx: &PollContext, job: &PollJob) -> Result<CursorState, PollError> {
        let cfg = &ctx.config;
        let stored = ctx.cursors.load(&job.tenant_id, job.stream).await?;
        let (version, old) = match &stored {
            Some(s) => (Some(s.version), Some(Cursor::from_doc(&s.doc)?)),
            None => (None, None),
        };
        hook(ctx, Step::Loaded)?;
        let now = ctx.client.clock().now();
        let retention_days = job
            .retention_days
            .filter(|d| (1..=90).contains(d))
            .unwrap_or(cfg.retention_days);
        // A stream whose API keeps less (the Management Activity API: 7 days) never reaches
        // further back than that, whatever the licence.
        let retention_days = job
            .stream
            .max_retention_days()
            .map_or(retention_days, |max| retention_days.min(max));
        let retention_floor =
            now - TimeDelta::days(i64::from(retention_days)) + TimeDelta::minutes(10);
        // Deep sweeps of the fleet's streams spread over their interval, by tenant and stream.
        let phase = u64::from(fingerprint(&format!("{}#{}", job.tenant_id, job.stream)));
        let mut cursor =
            Cursor::begin_spread(old.as_ref(), now, retention_floor, &cfg.cursor, phase);
        // A sweep that starts now and is known to hold less than most of a page does the
        // regular pass's work in the same request.
        let sweep_lower = cursor.sweep.as_ref().map(|s| s.lower);
        if let Some(lower) = sweep_lower
            && cursor.regular_foldable(now)
            && cursor
                .known_records_since(lower, cfg.cursor.bucket_secs)
                .is_some_and(|n| n <= fold_below(cfg.page_size))
        {
            cursor.fold_regular(now);
        }
        if let Some(sw) = &cursor.sweep
            && old.as_ref().is_none_or(|o| o.sweep.is_none())
        {
            tracing::debug!(tenant = %job.tenant_id, stream = %job.stream, lower = %sw.lower, "sweep started");
        }
        let mut state = CursorState {
            cursor,
            committed: old,
            version,
        };
        if state.committed.is_none() {
            state.commit(ctx, job).await?;
        }
        Ok(state)
    }

    /// Prunes the seen sets (moving the oldest buckets to the store's seen pages, written
    /// first), checks the cursor only moves forward, and commits it with a compare-and-set on
    /// the version loaded. Pages the committed cursor no longer needs are deleted after.
    async fn commit(&mut self, ctx: &PollContext, job: &PollJob) -> Result<(), PollError> {
        let pages = ctx.cursors.seen_pages();
        let work = match pages {
            Some(_) => self.cursor.prune_paged(&ctx.config.cursor),
            None => {
                self.cursor.prune(&ctx.config.cursor);
                PageWork::default()
            }
        };
        Cursor::check_advance(self.committed.as_ref(), &self.cursor)?;
        let doc = self.cursor.to_doc()?;
        if let Some(pages) = pages
            && !work.put.is_empty()
        {
            pages
                .put_pages(&job.tenant_id, job.stream, &work.put)
                .await?;
        }
        let version = ctx
            .cursors
            .commit(&job.tenant_id, job.stream, self.version, &doc)
            .await?;
        self.version = Some(version);
        self.committed = Some(self.cursor.clone());
        if let Some(pages) = pages
            && !work.delete.is_empty()
            && let Err(e) = pages
                .delete_pages(&job.tenant_id, job.stream, &work.delete)
                .await
        {
            // Only storage is lost: no cursor refers to these pages any more.
            tracing::warn!(tenant = %job.tenant_id, stream = %job.stream, error = %e, pages = work.delete.len(), "seen pages not deleted");
        }
        Ok(())
    }

    /// Loads the seen pages a slice's records fall into, so duplicates are filtered against
    /// every fingerprint, not only those kept in the cursor document.
    async fn hydrate(
        &mut self,
        ctx: &PollContext,
        job: &PollJob,
        read: &SliceRead<'_>,
    ) -> Result<(), PollError> {
        let Some(pages) = ctx.cursors.seen_pages() else {
            return Ok(());
        };
        let bucket_secs = ctx.config.cursor.bucket_secs;
        for ((_, f, _), sets) in read.fetched.iter().zip(&read.sets) {
            for (name, idxs) in sets {
                let Some(seen) = self.cursor.sources.get_mut(*name) else {
                    continue;
                };
                let times = idxs
                    .iter()
                    .filter_map(|i| f.records.get(*i))
                    .map(|r| SeenSet::index_of(r.at, bucket_secs));
                let (Some(lo), Some(hi)) = (times.clone().min(), times.max()) else {
                    continue;
                };
                let wanted = seen.unloaded(lo, hi);
                let (Some(from), Some(to)) = (wanted.first(), wanted.last()) else {
                    continue;
                };
                for (idx, fps) in pages
                    .load_pages(&job.tenant_id, job.stream, name, *from, *to)
                    .await?
                {
                    if let Some(b) = seen.buckets.get_mut(&idx)
                        && b.paged
                        && b.fps.is_none()
                    {
                        b.count = u32::try_from(fps.len()).unwrap_or(u32::MAX);
                        b.fps = Some(fps);
                    }
                }
            }
        }
        Ok(())
    }
}

/// How one slice is read: by when, at which priority, and whether it is onboarding history.
#[derive(Debug, Clone, Copy)]
struct SlicePlan {
    deadline: DateTime<Utc>,
    priority: Priority,
    /// The stream's onboarding backfill (the sweep that runs before any sweep completed):
    /// its events are history, not late deliveries, and do not count for freshness.
    backfill: bool,
}

/// What a slice's sources returned.
struct SliceRead<'s> {
    /// Each source fetched, with what it read, and whether that was the whole slice in this
    /// one read (a new slice, read to its last page without a failure).
    fetched: Vec<(&'s dyn WindowedSource, Fetched, bool)>,
    /// For each source, its records by seen set ([`by_set`]), computed once per slice.
    sets: Vec<Vec<(&'static str, Vec<usize>)>>,
    /// The first failure that keeps the slice open, if any.
    failure: Option<SourceError>,
    /// Sources that stopped at a refused paging link.
    refused: u32,
    /// Sources with more of the slice to read, by seen-set key, with where each continues
    /// (`None`: from its first page). Empty when every source finished the slice.
    pending: BTreeMap<String, Option<String>>,
    /// A stored continuation was refused: the slice is to be cut again, narrower.
    stale: bool,
}

impl SliceRead<'_> {
    /// Whether the slice is done: every source read it to its end, or stopped only at a
    /// refused paging link. Such a link is never followed, so retrying the slice could block
    /// its pass forever; it is reported instead, and later passes read the window again.
    fn complete(&self) -> bool {
        self.failure.is_none() && self.pending.is_empty()
    }

    /// Whether any source saved a place to continue from (the slice made progress).
    fn progressed(&self) -> bool {
        self.pending.values().any(Option::is_some)
    }
}

/// Whether a source's failure ends the slice for every source (no time left, throttled, the
/// tenant's credential or consent), rather than only for that source.
pub(crate) fn stops_the_slice(e: &SourceError) -> bool {
    match e {
        SourceError::DeadlineExceeded { .. }
        | SourceError::Throttled { .. }
        | SourceError::Unauthorized { .. }
        | SourceError::ConsentRevoked
        | SourceError::LicenceRequired
        | SourceError::AuditingDisabled
        | SourceError::PublisherIdMissing
        | SourceError::Auth(_) => true,
        SourceError::Forbidden { .. }
        | SourceError::NotFound { .. }
        | SourceError::BadRequest { .. }
        | SourceError::Transient { .. }
        | SourceError::Decode { .. }
        | SourceError::ForeignLink { .. }
        | SourceError::ResponseTooLarge { .. }
        | SourceError::SubscriptionMissing
        | SourceError::SubscriptionDisabled
        | SourceError::ContentUnavailable { .. }
        | SourceError::Unsupported(_) => false,
    }
}

async fn poll_windowed(
    ctx: &PollContext,
    job: &PollJob,
    sources: &[Arc<dyn WindowedSource>],
    deadline: DateTime<Utc>,
    out: &mut PollOutcome,
) -> Result<(), PollError> {
    let cfg = &ctx.config;
    let clock = ctx.client.clock().clone();
    let tenant = Tenant {
        id: job.tenant_id.clone(),
        cloud: job.cloud,
    };
    let mut state = CursorState::begin(ctx, job).await?;
    out.background = state.cursor.sweep.is_some();
    // A source that reads its whole window at once holds a slice in memory: its slices stay
    // narrow.
    let ccfg = if sources.iter().all(|s| s.delivers_pages()) {
        cfg.cursor.clone()
    } else {
        CursorConfig {
            slice_secs: cfg.cursor.slice_secs.min(UNPAGED_SLICE_SECS),
            ..cfg.cursor.clone()
        }
    };
    // Whether any page was delivered: a poll that delivered pages worked, even when it
    // completed no slice.
    let mut progressed = false;
    // Sweeps and backfills get a bounded share of each poll, and background pacing, so a
    // tenant that is catching up never holds back its own fresh events or other tenants'.
    // The budget starts with the first sweep slice, after the regular pass.
    let sweep_budget = secs(cfg.sweep_budget_secs);
    let mut sweep_deadline: Option<DateTime<Utc>> = None;
    while let Some((slice, kind)) = state.cursor.next_slice(&ccfg) {
        let plan = match kind {
            PassKind::Regular => SlicePlan {
                deadline,
                priority: Priority::Regular,
                backfill: false,
            },
            PassKind::Sweep => SlicePlan {
                deadline: *sweep_deadline
                    .get_or_insert_with(|| deadline.min(clock.now() + sweep_budget)),
                priority: Priority::Background,
                backfill: state.cursor.last_sweep_start.is_none(),
            },
        };
        if clock.now() >= plan.deadline {
            // Whatever was done is committed (the previous slice saw this coming).
            out.stopped_at_deadline = true;
            return Ok(());
        }
        let read = fetch(ctx, &tenant, sources, &slice, &plan).await;
        hook(ctx, Step::Fetched)?;
        state.hydrate(ctx, job, &read).await?;
        let new = select_new(&state.cursor, &read, &slice, &cfg.cursor, out);
        let delivered = deliver(ctx, job, &read, &new, &plan, out).await?;
        hook(ctx, Step::Sent)?;

        // Record what was delivered, then commit. A slice that delivered nothing may wait for
        // a later commit: losing it in a crash only means reading it again.
        record_seen(&mut state.cursor, &read, &new, &slice, &cfg.cursor);
        out.links_refused = out.links_refused.saturating_add(read.refused);
        if matches!(read.failure, Some(SourceError::DeadlineExceeded { .. })) && !read.progressed()
        {
            // The slice did not fit in this poll and kept no place to continue from: try a
            // narrower one next time.
            state.cursor.shrink(kind, &ccfg);
        }
        if read.stale {
            // What the other sources delivered is recorded; the slice is read again from its
            // lower bound, half as wide (duplicates are filtered, nothing is lost).
            state.cursor.release_slice(kind);
            state.cursor.shrink(kind, &ccfg);
        } else if read.complete() {
            state.cursor.complete_slice(&slice, kind);
            out.slices += 1;
            if kind == PassKind::Sweep && state.cursor.sweep.is_none() {
                tracing::debug!(tenant = %job.tenant_id, stream = %job.stream, started = ?state.cursor.last_sweep_start, "sweep completed");
            }
        } else if read.progressed() {
            progressed = true;
            // Pages delivered, more to read: the slice stays open where each source stopped.
            let pending = read.pending.clone();
            state.cursor.hold_slice(&slice, kind, pending);
        } else if slice.resume.is_some() {
            // An open slice that kept no place to continue from is cut again (narrower if it
            // ran out of time), as a new slice.
            state.cursor.release_slice(kind);
        }
        let next_deadline = match state.cursor.next_slice(&ccfg) {
            None => None,
            Some((_, PassKind::Regular)) => Some(deadline),
            Some((_, PassKind::Sweep)) => Some(sweep_deadline.unwrap_or(deadline)),
        };
        let last = read.failure.is_some()
            || clock.now() >= deadline
            || next_deadline.is_none_or(|d| clock.now() >= d);
        if delivered || last {
            state.commit(ctx, job).await?;
            hook(ctx, Step::Committed)?;
        }
        if let Some(e) = read.failure {
            if let SourceError::DeadlineExceeded { cause } = e {
                out.stopped_at_deadline = true;
                // A poll that completed no slice because throttling, timeouts or 5xx used up
                // its time did not work: its cause goes to the tenant's health.
                if out.slices == 0 && !progressed && cause.is_some() {
                    return Err(SourceError::DeadlineExceeded { cause }.into());
                }
                return Ok(());
            }
            return Err(e.into());
        }
        if clock.now() >= deadline {
            out.stopped_at_deadline = state.cursor.pass.is_some() || state.cursor.sweep.is_some();
            return Ok(());
        }
    }
    out.pass_complete = true;
    Ok(())
}

/// Fetch: every source of the stream still to read in the slice, each from where it stopped,
/// up to a page's worth of records each (the engine delivers and commits page by page). A
/// failure of one source (a 5xx, a refused link) does not keep the others from being read;
/// one that concerns them all (no time left, throttling, the tenant's credential) stops the
/// slice. A stored continuation Microsoft no longer accepts marks the read stale: the caller
/// cuts the slice again, narrower (duplicates, filtered, never loss).
async fn fetch<'s>(
    ctx: &PollContext,
    tenant: &Tenant,
    sources: &'s [Arc<dyn WindowedSource>],
    slice: &Slice,
    plan: &SlicePlan,
) -> SliceRead<'s> {
    let window = Window {
        tenant,
        lower: slice.lower,
        upper: slice.upper,
        deadline: plan.deadline,
        priority: plan.priority,
        page_size: ctx.config.page_size,
        resume: None,
        max_records: Some(ctx.config.page_size as usize),
    };
    let mut read = SliceRead {
        fetched: Vec::with_capacity(sources.len()),
        sets: Vec::with_capacity(sources.len()),
        failure: None,
        refused: 0,
        pending: BTreeMap::new(),
        stale: false,
    };
    let mut stopped = false;
    for source in sources {
        let name = source.spec().name;
        let Some(resume) = slice.resume_of(name) else {
            // This source finished the slice in an earlier round.
            continue;
        };
        if stopped {
            read.pending
                .insert(name.to_string(), resume.map(str::to_string));
            continue;
        }
        let w = Window {
            resume,
            ..window.clone()
        };
        let mut f = source.fetch(&ctx.client, &w).await;
        if resume.is_some()
            && f.records.is_empty()
            && matches!(
                f.error,
                Some(
                    SourceError::BadRequest { .. }
                        | SourceError::NotFound { .. }
                        | SourceError::ForeignLink { .. }
                )
            )
        {
            // Microsoft no longer accepts the link (an expired token): the slice is cut again,
            // narrower, so a slice whose paging outlives its links still makes progress.
            tracing::warn!(tenant = %tenant.id, source = name, "a stored paging link was refused; reading the slice again, narrower");
            read.stale = true;
            read.sets.push(Vec::new());
            read.fetched.push((
                source.as_ref(),
                Fetched {
                    cost: f.cost,
                    ..Fetched::default()
                },
                false,
            ));
            continue;
        }
        let failure = f.error.take();
        if f.next.is_some()
            || (failure.is_some() && !matches!(failure, Some(SourceError::ForeignLink { .. })))
        {
            read.pending.insert(name.to_string(), f.next.take());
        }
        let whole = slice.resume.is_none() && failure.is_none() && !read.pending.contains_key(name);
        read.sets.push(by_set(source.as_ref(), &f));
        read.fetched.push((source.as_ref(), f, whole));
        let Some(e) = failure else { continue };
        if matches!(e, SourceError::ForeignLink { .. }) {
            read.refused = read.refused.saturating_add(1);
            continue;
        }
        stopped = stops_the_slice(&e);
        if read.failure.is_none() {
            read.failure = Some(e);
        }
    }
    read
}

/// The keys of the records at `idxs`.
fn keys<'f>(f: &'f Fetched, idxs: &[usize]) -> Vec<Key<'f>> {
    idxs.iter()
        .filter_map(|i| f.records.get(*i))
        .map(|r| Key {
            id: &r.id,
            time: r.at,
        })
        .collect()
}

/// A source's records by seen set: every set the source declares (a complete read covers
/// each, even one it found no record in), with the indices of its records.
fn by_set(source: &dyn WindowedSource, f: &Fetched) -> Vec<(&'static str, Vec<usize>)> {
    let mut sets: Vec<(&'static str, Vec<usize>)> = source
        .seen_sets()
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    for (i, r) in f.records.iter().enumerate() {
        let set = r.set(source.spec());
        match sets.iter_mut().find(|(s, _)| *s == set) {
            Some((_, v)) => v.push(i),
            None => sets.push((set, vec![i])),
        }
    }
    sets
}

/// Select: per source, the indices of the records not emitted before.
fn select_new(
    cursor: &Cursor,
    read: &SliceRead<'_>,
    slice: &Slice,
    cfg: &CursorConfig,
    out: &mut PollOutcome,
) -> Vec<Vec<usize>> {
    read.fetched
        .iter()
        .zip(&read.sets)
        .map(|((_, f, whole), sets)| {
            out.fetched += f.records.len();
            out.requests = out.requests.saturating_add(f.cost.requests);
            out.throttled = out.throttled.saturating_add(f.cost.throttled);
            let mut new = Vec::new();
            for (set, idxs) in sets {
                let keys = keys(f, idxs);
                let empty = SeenSet::default();
                // Nothing emitted yet: every distinct id is new.
                let seen = cursor.sources.get(*set).unwrap_or(&empty);
                // Only a whole read of the slice re-reads every record of its buckets.
                let picked = if *whole {
                    seen.filter_new(&keys, slice.lower, slice.upper, cfg)
                } else {
                    seen.filter_new_partial(&keys, cfg)
                };
                new.extend(picked.into_iter().filter_map(|k| idxs.get(k).copied()));
            }
            new.sort_unstable();
            out.duplicates_filtered += f.records.len() - new.len();
            new
        })
        .collect()
}

/// Normalize and deliver: the new records to OCSF (failures become dead letters), batched
/// into envelopes, sent, and waited for until durable. Returns whether anything was delivered.
async fn deliver(
    ctx: &PollContext,
    job: &PollJob,
    read: &SliceRead<'_>,
    new: &[Vec<usize>],
    plan: &SlicePlan,
    out: &mut PollOutcome,
) -> Result<bool, PollError> {
    let cfg = &ctx.config;
    let now = ctx.client.clock().now();
    let mut events = Vec::new();
    let mut letters = Vec::new();
    for ((source, f, _), new) in read.fetched.iter().zip(new) {
        // Content the source could never read: reported, not skipped.
        for lost in &f.lost {
            letters.push(DeadLetter {
                tenant_id: job.tenant_id.clone(),
                stream: job.stream,
                reason: format!("content lost ({}): {}", source.spec().name, lost.reason),
                record: lost.content.clone(),
                at: now,
            });
            out.content_lost += 1;
        }
        let opts = NormalizeOptions {
            include_raw: cfg.include_raw,
            raw_max_bytes: cfg.raw_max_bytes,
            product_version: source.product_version().to_string(),
            ..NormalizeOptions::new(&job.tenant_id, job.cloud)
        };
        // Records whose event carries another product version than the source's (the
        // combined sign-ins query's fallback reads interactive sign-ins from v1.0).
        let mut other_version: Option<NormalizeOptions> = None;
        for record in new.iter().filter_map(|i| f.records.get(*i)) {
            let opts = match record.product_version {
                Some(v) if v != opts.product_version => {
                    let o = other_version.get_or_insert_with(|| NormalizeOptions {
                        product_version: v.to_string(),
                        ..opts.clone()
                    });
                    if o.product_version != v {
                        o.product_version = v.to_string();
                    }
                    &*o
                }
                _ => &opts,
            };
            match source.normalize(&record.raw, opts) {
                Ok(ev) => {
                    events.push(ev);
                    if let Some(time) = record.event_time {
                        if !plan.backfill {
                            let lag = (now - time).num_seconds().max(0);
                            out.freshness_secs
                                .push(u32::try_from(lag).unwrap_or(u32::MAX));
                        }
                        out.newest_event = Some(out.newest_event.map_or(time, |t| t.max(time)));
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant = %job.tenant_id, stream = %job.stream, reason = %e, "record could not be normalized; dead-lettered");
                    letters.push(DeadLetter {
                        tenant_id: job.tenant_id.clone(),
                        stream: job.stream,
                        reason: e.to_string(),
                        record: record.raw.clone(),
                        at: now,
                    });
                }
            }
        }
    }
    let limits = BatchLimits {
        max_bytes: cfg.max_message_bytes,
        max_events: cfg.max_message_events,
    };
    let batches = into_envelopes(&job.tenant_id, job.stream, events, &limits)?;
    let sent: usize = batches.envelopes.iter().map(|e| e.events.len()).sum();
    for o in batches.oversize {
        letters.push(o.into_dead_letter(&job.tenant_id, job.stream, now));
    }
    if !letters.is_empty() {
        ctx.dead_letters.put(&letters).await?;
    }
    if !batches.envelopes.is_empty() {
        ctx.sink.send(&batches.envelopes).await?;
    }
    out.emitted += sent;
    out.dead_lettered += letters.len();
    Ok(sent > 0 || !letters.is_empty())
}

/// Records in each source's seen set what was delivered: a source that read the whole slice
/// at once replaces the buckets it covered; one that read part of it (some pages, or stopped)
/// only adds what it emitted.
fn record_seen(
    cursor: &mut Cursor,
    read: &SliceRead<'_>,
    new: &[Vec<usize>],
    slice: &Slice,
    cfg: &CursorConfig,
) {
    let all_read = read.failure.is_none();
    for (((_, f, whole), sets), new) in read.fetched.iter().zip(&read.sets).zip(new) {
        for (set, idxs) in sets {
            let keys = keys(f, idxs);
            // `new` and `idxs` are ascending: the emitted records' positions in `keys`.
            let emitted: Vec<usize> = idxs
                .iter()
                .enumerate()
                .filter(|(_, i)| new.binary_search(i).is_ok())
                .map(|(pos, _)| pos)
                .collect();
            let seen = cursor.sources.entry(set.to_string()).or_default();
            if *whole && all_read {
                seen.record(&keys, &emitted, slice.lower, slice.upper, cfg);
            } else {
                seen.record_partial(&keys, &emitted, cfg);
            }
        }
    }
}

/// Percentile (0–100) of a list of seconds, or `None` when empty.
pub fn percentile(values: &[u32], p: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v.get(rank.min(v.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5, 1, 3], 50.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 99.0), Some(100));
    }

    #[test]
    fn configuration_is_bounded_above() {
        assert!(PollConfig::default().validated().is_ok());
        let c = PollConfig {
            sweep_budget_secs: 86_400,
            ..PollConfig::default()
        };
        assert_eq!(
            c.validated().err().map(|e| e.field),
            Some("sweep_budget_secs")
        );
        let c = PollConfig {
            page_size: 5000,
            ..PollConfig::default()
        };
        assert_eq!(c.validate().err().map(|e| e.field), Some("page_size"));
    }
}
