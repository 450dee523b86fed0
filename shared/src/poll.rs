//! One poll of one (tenant, stream): load cursor, fetch, filter, normalize, deliver, commit.
//!
//! The ordering, and why it loses nothing, is written down in `cursor.md`. This module is the
//! same in the embedded runner and in the Lambda pollers; only the adapters behind
//! [`PollContext`] differ.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchLimits, into_envelopes};
use crate::cloud::Cloud;
use crate::cursor::{Cursor, CursorConfig, CursorError, Key, PassKind, SeenSet, Slice};
use crate::graph::{GraphClient, GraphError, Priority, Tenant, filter_time};
use crate::ocsf::{NormalizeOptions, normalize, parse_time_ms};
use crate::store::{
    CursorStore, DeadLetter, DeadLetterSink, EventSink, HealthState, SinkError, StoreError,
};
use crate::stream::Stream;

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
        }
    }
}

impl PollConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        self.cursor.validate()?;
        if self.page_size == 0 || self.page_size > 1000 {
            return Err("page_size must be between 1 and 1000 (Graph's maximum)".into());
        }
        if self.max_message_events == 0 || self.max_message_bytes < 4096 {
            return Err("max_message_events must be >= 1 and max_message_bytes >= 4096".into());
        }
        if !(1..=90).contains(&self.retention_days) {
            return Err("retention_days must be between 1 and 90".into());
        }
        if self.sweep_budget_secs == 0 {
            return Err("sweep_budget_secs must be at least 1".into());
        }
        Ok(())
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
    /// Graph client.
    pub graph: Arc<GraphClient>,
    /// Cursor store.
    pub cursors: Arc<dyn CursorStore>,
    /// Event sink.
    pub sink: Arc<dyn EventSink>,
    /// Dead-letter sink.
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// Poller tunables.
    pub config: PollConfig,
    /// Optional step hook.
    pub hook: Option<Arc<dyn StepHook>>,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PollOutcome {
    /// Records returned by Graph (re-reads included).
    pub fetched: usize,
    /// Events delivered.
    pub emitted: usize,
    /// Records dropped because they were emitted before.
    pub duplicates_filtered: usize,
    /// Records set aside as dead letters.
    pub dead_lettered: usize,
    /// Slices completed and committed.
    pub slices: usize,
    /// Whether the pass finished.
    pub pass_complete: bool,
    /// Whether this poll ran (part of) a sweep.
    pub sweep: bool,
    /// Newest event time delivered.
    pub newest_event: Option<DateTime<Utc>>,
    /// Delay between event time and delivery, in seconds, for each delivered event that did
    /// not come from the stream's onboarding backfill (history is not late delivery).
    #[serde(skip)]
    pub freshness_secs: Vec<u32>,
    /// Whether the poll stopped early at its deadline (the rest is left for the next poll).
    pub stopped_at_deadline: bool,
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
    /// Microsoft Graph failed.
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    /// The cursor store failed or the compare-and-set lost.
    #[error("cursor store: {0}")]
    Store(#[from] StoreError),
    /// Delivery failed; nothing of the slice was committed.
    #[error("delivery: {0}")]
    Sink(#[from] SinkError),
    /// The cursor refused to move.
    #[error("cursor: {0}")]
    Cursor(#[from] CursorError),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A simulated crash (tests).
    #[error("{0}")]
    Crash(#[from] Crash),
}

impl PollError {
    /// A short stable label for health and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Graph(g) => g.kind(),
            PollError::Store(StoreError::Conflict { .. }) => "cursor_conflict",
            PollError::Store(_) => "store",
            PollError::Sink(_) => "sink",
            PollError::Cursor(_) => "cursor",
            PollError::Config(_) => "config",
            PollError::Crash(_) => "crash",
        }
    }

    /// Whether the next scheduled poll may succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        match self {
            PollError::Graph(g) => g.is_retryable(),
            PollError::Store(s) => s.is_retryable() || matches!(s, StoreError::Conflict { .. }),
            PollError::Sink(_) | PollError::Crash(_) => true,
            PollError::Cursor(_) | PollError::Config(_) => false,
        }
    }

    /// The tenant health this failure implies.
    pub fn health_state(&self) -> HealthState {
        use crate::auth::AuthError as A;
        match self {
            PollError::Graph(GraphError::ConsentRevoked) => HealthState::ConsentRevoked,
            PollError::Graph(GraphError::LicenceRequired) => HealthState::LicenceMissing,
            PollError::Graph(GraphError::Forbidden { .. }) => HealthState::PermissionMissing,
            PollError::Graph(GraphError::Auth(a)) => match a {
                A::AppNotInTenant { .. } => HealthState::Offboarded,
                A::ConsentRevoked | A::ConsentMissing { .. } | A::AppDisabled { .. } => {
                    HealthState::ConsentRevoked
                }
                A::InvalidSecret { .. }
                | A::SecretExpired { .. }
                | A::InvalidCertificate { .. }
                | A::AssertionRejected { .. }
                | A::BadCredential { .. } => HealthState::CredentialsExpired,
                _ => HealthState::Degraded,
            },
            _ => HealthState::Degraded,
        }
    }
}

/// One query source of a stream (sign-ins have two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Key of the source's seen set in the cursor.
    pub name: &'static str,
    /// Graph path, e.g. `v1.0/auditLogs/signIns`.
    pub path: &'static str,
    /// Extra `$filter` clause.
    pub filter: Option<&'static str>,
}

/// The sources a job reads.
pub fn sources(cloud: Cloud, stream: Stream, include_noninteractive: bool) -> Vec<Source> {
    match stream {
        Stream::DirectoryAudits => vec![Source {
            name: "directory_audits",
            path: "v1.0/auditLogs/directoryAudits",
            filter: None,
        }],
        Stream::Signins => {
            // v1.0 returns interactive sign-ins only; beta without an event-type filter returns
            // the same set, and is what the US Government clouds document.
            let mut v = vec![if cloud.signins_v1_available() {
                Source {
                    name: "signins.interactive",
                    path: "v1.0/auditLogs/signIns",
                    filter: None,
                }
            } else {
                Source {
                    name: "signins.interactive",
                    path: "beta/auditLogs/signIns",
                    filter: None,
                }
            }];
            if include_noninteractive {
                v.push(Source {
                    name: "signins.other",
                    path: "beta/auditLogs/signIns",
                    filter: Some("signInEventTypes/any(t: t ne 'interactiveUser')"),
                });
            }
            v
        }
    }
}

struct Fetched {
    records: Vec<serde_json::Value>,
    keys: Vec<(String, DateTime<Utc>)>,
    complete: bool,
    api_version: &'static str,
}

/// Runs one poll of `job` until its pass completes or `deadline` comes.
pub async fn poll(
    ctx: &PollContext,
    job: &PollJob,
    deadline: DateTime<Utc>,
) -> Result<PollOutcome, PollFailure> {
    let mut out = PollOutcome::default();
    match poll_inner(ctx, job, deadline, &mut out).await {
        Ok(()) => Ok(out),
        Err(error) => Err(PollFailure {
            error,
            progress: out,
        }),
    }
}

fn hook(ctx: &PollContext, step: Step) -> Result<(), PollError> {
    match &ctx.hook {
        Some(h) => h.at(step).map_err(PollError::from),
        None => Ok(()),
    }
}

async fn poll_inner(
    ctx: &PollContext,
    job: &PollJob,
    deadline: DateTime<Utc>,
    out: &mut PollOutcome,
) -> Result<(), PollError> {
    ctx.config.validate().map_err(PollError::Config)?;
    if !job.cloud.audit_logs_available() {
        return Err(GraphError::Unsupported("auditLogs").into());
    }
    let cfg = &ctx.config;
    let clock = ctx.graph.clock().clone();
    let tenant = Tenant {
        id: job.tenant_id.clone(),
        cloud: job.cloud,
    };
    let stored = ctx.cursors.load(&job.tenant_id, job.stream).await?;
    let (mut version, old) = match &stored {
        Some(s) => (Some(s.version), Some(Cursor::from_doc(&s.doc)?)),
        None => (None, None),
    };
    hook(ctx, Step::Loaded)?;
    let now = clock.now();
    let retention_days = job
        .retention_days
        .filter(|d| (1..=90).contains(d))
        .unwrap_or(cfg.retention_days);
    let retention_floor = now - TimeDelta::days(i64::from(retention_days)) + TimeDelta::minutes(10);
    let mut cursor = Cursor::begin(old.as_ref(), now, retention_floor, &cfg.cursor);
    out.sweep = cursor.sweep.is_some() || cursor.pass.as_ref().is_some_and(|p| p.sweep);
    if let Some(sw) = &cursor.sweep
        && old.as_ref().is_none_or(|o| o.sweep.is_none())
    {
        tracing::debug!(tenant = %job.tenant_id, stream = %job.stream, lower = %sw.lower, "sweep started");
    }
    let srcs = sources(job.cloud, job.stream, job.include_noninteractive);
    let mut committed = old;
    if committed.is_none() {
        // A new stream: pin its origin at once, so a crash before the first slice is delivered
        // does not move the start of the stream (and of its backfill) later.
        version = Some(
            ctx.cursors
                .commit(&job.tenant_id, job.stream, version, &cursor.to_doc())
                .await?,
        );
        committed = Some(cursor.clone());
    }

    // Sweeps and backfills get a bounded share of each poll, and background pacing, so a
    // tenant that is catching up never holds back its own fresh events or other tenants'.
    // The budget starts with the first sweep slice, after the regular pass.
    let sweep_budget =
        TimeDelta::seconds(i64::try_from(cfg.sweep_budget_secs).unwrap_or(i64::MAX / 2));
    let mut sweep_deadline: Option<DateTime<Utc>> = None;
    while let Some((slice, kind)) = cursor.next_slice(&cfg.cursor) {
        let (slice_deadline, priority) = match kind {
            PassKind::Regular => (deadline, Priority::Regular),
            PassKind::Sweep => (
                *sweep_deadline.get_or_insert_with(|| deadline.min(clock.now() + sweep_budget)),
                Priority::Background,
            ),
        };
        if clock.now() >= slice_deadline {
            // Whatever was done is committed (the previous slice saw this coming).
            out.stopped_at_deadline = true;
            return Ok(());
        }
        // Fetch every source of the slice.
        let mut fetched: Vec<(Source, Fetched)> = Vec::new();
        let mut failure: Option<GraphError> = None;
        for src in &srcs {
            let f = fetch_source(
                ctx,
                &tenant,
                job.stream,
                src,
                &slice,
                slice_deadline,
                priority,
            )
            .await;
            let stop = f.1.is_some();
            fetched.push((src.clone(), f.0));
            if let Some(e) = f.1 {
                failure = Some(e);
            }
            if stop {
                break;
            }
        }
        hook(ctx, Step::Fetched)?;
        let all_complete = failure.is_none() && fetched.iter().all(|(_, f)| f.complete);

        // The onboarding backfill is the sweep that runs before any sweep has completed.
        let backfill = kind == PassKind::Sweep && cursor.last_sweep_start.is_none();
        // Filter, normalize, deliver.
        let mut events = Vec::new();
        let mut letters = Vec::new();
        let mut emitted_idx: Vec<Vec<usize>> = Vec::new();
        let now = clock.now();
        for (src, f) in &fetched {
            let seen = cursor.sources.get(src.name).cloned().unwrap_or_default();
            let keys: Vec<Key<'_>> = f
                .keys
                .iter()
                .map(|(id, time)| Key { id, time: *time })
                .collect();
            let new = seen.filter_new(&keys, slice.lower, slice.upper, &cfg.cursor);
            out.fetched += f.records.len();
            out.duplicates_filtered += f.records.len() - new.len();
            let opts = NormalizeOptions {
                include_raw: cfg.include_raw,
                raw_max_bytes: cfg.raw_max_bytes,
                product_version: f.api_version.to_string(),
                ..NormalizeOptions::new(&job.tenant_id, job.cloud)
            };
            for i in &new {
                let (Some(record), Some((_, time))) = (f.records.get(*i), f.keys.get(*i)) else {
                    continue;
                };
                match normalize(job.stream, record, &opts) {
                    Ok(ev) => {
                        events.push(ev);
                        if !backfill {
                            let lag = (now - *time).num_seconds().max(0);
                            out.freshness_secs
                                .push(u32::try_from(lag).unwrap_or(u32::MAX));
                        }
                        out.newest_event = Some(out.newest_event.map_or(*time, |t| t.max(*time)));
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %job.tenant_id, stream = %job.stream, reason = %e, "record could not be normalized; dead-lettered");
                        letters.push(DeadLetter {
                            tenant_id: job.tenant_id.clone(),
                            stream: job.stream,
                            reason: e.to_string(),
                            record: record.clone(),
                            at: now,
                        });
                    }
                }
            }
            emitted_idx.push(new);
        }
        let limits = BatchLimits {
            max_bytes: cfg.max_message_bytes,
            max_events: cfg.max_message_events,
        };
        let batches = into_envelopes(&job.tenant_id, job.stream, events, &limits)
            .map_err(|e| PollError::Config(e.to_string()))?;
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
        let delivered = sent > 0 || !letters.is_empty();
        hook(ctx, Step::Sent)?;

        // Record what was delivered, then commit. A slice that delivered nothing may wait for
        // a later commit: losing it in a crash only means reading it again.
        for ((src, f), new) in fetched.iter().zip(&emitted_idx) {
            let keys: Vec<Key<'_>> = f
                .keys
                .iter()
                .map(|(id, time)| Key { id, time: *time })
                .collect();
            let seen: &mut SeenSet = cursor.sources.entry(src.name.to_string()).or_default();
            if f.complete && failure.is_none() {
                seen.record(&keys, new, slice.lower, slice.upper, &cfg.cursor);
            } else {
                seen.record_partial(&keys, new, &cfg.cursor);
            }
        }
        if matches!(failure, Some(GraphError::DeadlineExceeded)) {
            // The slice did not fit in this poll: try a narrower one next time.
            cursor.shrink(kind, &cfg.cursor);
        }
        if all_complete {
            cursor.complete_slice(&slice, kind);
            out.slices += 1;
            if kind == PassKind::Sweep && cursor.sweep.is_none() {
                tracing::debug!(tenant = %job.tenant_id, stream = %job.stream, started = ?cursor.last_sweep_start, "sweep completed");
            }
        }
        let next_deadline = match cursor.next_slice(&cfg.cursor) {
            None => None,
            Some((_, PassKind::Regular)) => Some(deadline),
            Some((_, PassKind::Sweep)) => Some(sweep_deadline.unwrap_or(deadline)),
        };
        let last = failure.is_some()
            || clock.now() >= deadline
            || next_deadline.is_none_or(|d| clock.now() >= d);
        if delivered || last {
            cursor.prune(&cfg.cursor);
            Cursor::check_advance(committed.as_ref(), &cursor)?;
            let new_version = ctx
                .cursors
                .commit(&job.tenant_id, job.stream, version, &cursor.to_doc())
                .await?;
            version = Some(new_version);
            committed = Some(cursor.clone());
            hook(ctx, Step::Committed)?;
        }

        if let Some(e) = failure {
            if matches!(e, GraphError::DeadlineExceeded) {
                out.stopped_at_deadline = true;
                return Ok(());
            }
            return Err(e.into());
        }
        if clock.now() >= deadline {
            out.stopped_at_deadline = cursor.pass.is_some() || cursor.sweep.is_some();
            return Ok(());
        }
    }
    out.pass_complete = true;
    Ok(())
}

async fn fetch_source(
    ctx: &PollContext,
    tenant: &Tenant,
    stream: Stream,
    src: &Source,
    slice: &Slice,
    deadline: DateTime<Utc>,
    priority: Priority,
) -> (Fetched, Option<GraphError>) {
    let prop = stream.time_property();
    let mut filter = format!(
        "{prop} ge {} and {prop} le {}",
        filter_time(slice.lower),
        filter_time(slice.upper)
    );
    if let Some(extra) = src.filter {
        filter.push_str(" and ");
        filter.push_str(extra);
    }
    let api_version = if src.path.starts_with("beta") {
        "beta"
    } else {
        "v1.0"
    };
    let mut f = Fetched {
        records: Vec::new(),
        keys: Vec::new(),
        complete: false,
        api_version,
    };
    let first = match GraphClient::url(
        tenant,
        src.path,
        &[
            ("$filter", filter),
            ("$top", ctx.config.page_size.to_string()),
        ],
    ) {
        Ok(u) => u,
        Err(e) => return (f, Some(e)),
    };
    let mut next = Some(first);
    while let Some(url) = next {
        match ctx
            .graph
            .get_page_as(tenant, &url, deadline, priority)
            .await
        {
            Ok(page) => {
                for record in page.value {
                    let key = record_key(&record, prop, slice.lower);
                    f.keys.push(key);
                    f.records.push(record);
                }
                next = page.next_link;
            }
            Err(e) => return (f, Some(e)),
        }
    }
    f.complete = true;
    (f, None)
}

/// The dedupe key of a record: its `id` and event time. A record without an id gets a
/// surrogate id from its content; one without a readable time is bucketed at `fallback`.
fn record_key(
    record: &serde_json::Value,
    time_prop: &str,
    fallback: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let id = match record.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.trim().is_empty() => id.to_string(),
        _ => {
            use sha2::Digest;
            let bytes = serde_json::to_vec(record).unwrap_or_default();
            format!("content:{}", hex::encode(sha2::Sha256::digest(&bytes)))
        }
    };
    let time = record
        .get(time_prop)
        .and_then(|v| v.as_str())
        .and_then(parse_time_ms)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(fallback);
    (id, time)
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
    fn us_government_sign_ins_use_beta_and_others_v1() {
        let g = sources(Cloud::Global, Stream::Signins, true);
        assert_eq!(g[0].path, "v1.0/auditLogs/signIns");
        assert_eq!(g[1].path, "beta/auditLogs/signIns");
        let h = sources(Cloud::GccHigh, Stream::Signins, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].path, "beta/auditLogs/signIns");
        assert_eq!(sources(Cloud::Dod, Stream::DirectoryAudits, true).len(), 1);
    }

    #[test]
    fn record_keys_fall_back_without_losing_the_record() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let (id, t) = record_key(
            &serde_json::json!({"id": "a", "createdDateTime": "2024-05-01T19:15:41.6195833Z"}),
            "createdDateTime",
            t0,
        );
        assert_eq!(id, "a");
        assert_eq!(t.timestamp_millis(), 1_714_590_941_619);
        let (id, t) = record_key(&serde_json::json!({"x": 1}), "createdDateTime", t0);
        assert!(id.starts_with("content:"));
        assert_eq!(t, t0);
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5, 1, 3], 50.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3, 4, 100], 99.0), Some(100));
    }
}
