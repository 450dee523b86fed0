//! Sources: where a stream's records come from. The seam between the poll engine and
//! Microsoft's APIs (see `ADDING_A_SOURCE.md` beside this file).
//!
//! A stream has one or more sources, each with its own seen set in the stream's cursor. There
//! are two kinds:
//! - [`WindowedSource`]: answers "the records in this window" of a time axis. The poll engine
//!   (`crate::poll`) cuts passes into slices, asks every source of the stream for the slice,
//!   drops what was already emitted, normalizes, delivers, and commits the cursor. The window
//!   axis is the source's own: event time for the Graph audit logs, availability time for the
//!   Management Activity API's content listings.
//! - [`SnapshotSource`]: answers "the current state, or what changed since this token". The
//!   snapshot engine (`crate::poll::snapshot`) compares it with what the last snapshot held
//!   and emits inventory and change events; its cursor is a
//!   [`SnapshotCursor`](crate::poll::snapshot::SnapshotCursor), not a windowed one.
//!
//! Every source declares, in its [`SourceSpec`], the stream it feeds, the key of its seen set,
//! the [`Api`] it calls (whose host and token scope come from the tenant's `Cloud`), and the
//! throttling [`Bucket`] its requests count against; and it maps its records to OCSF.

pub mod graph_logs;
pub mod inventory;
pub mod management_activity;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::{Api, Cloud};
use crate::inventory::Degradation;
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::stream::Stream;

pub use graph_logs::{GraphLogSource, SignInsSource};
pub use management_activity::{ContentType, ManagementActivitySource, UnifiedAuditConfig};

/// What a source is: the stream it feeds, its seen-set key, its API and its throttling budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSpec {
    /// The stream (and so the cursor) the source feeds.
    pub stream: Stream,
    /// Key of the source's seen set in its stream's cursor, e.g. `signins.interactive`.
    pub name: &'static str,
    /// The API it calls: the host and the token scope come from the tenant's cloud.
    pub api: Api,
    /// The throttling budget its requests count against.
    pub bucket: Bucket,
}

/// One slice of a window to read.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// Lower bound on the source's window axis (inclusive).
    pub lower: DateTime<Utc>,
    /// Upper bound (inclusive).
    pub upper: DateTime<Utc>,
    /// Give up when this passes.
    pub deadline: DateTime<Utc>,
    /// Pacing priority: sweeps and backfills are background work.
    pub priority: Priority,
    /// Records per page, where the API lets the caller choose.
    pub page_size: u32,
    /// Where to continue: a continuation this source returned in [`Fetched::next`] for the
    /// same window, or `None` to read from the window's first page.
    pub resume: Option<&'a str>,
    /// Stop after the page on which this many records have been read and return where to
    /// continue in [`Fetched::next`], so a large window is delivered page by page (`None`: read
    /// the whole window). A source that cannot stop part-way reads the whole window.
    pub max_records: Option<usize>,
}

/// One record as a windowed source fetched it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's id (Microsoft's `id`, or a content hash when it has none): the dedupe key.
    pub id: String,
    /// Its place on the source's window axis; the seen set buckets it there. Re-reading the
    /// same window returns the record at the same place.
    pub at: DateTime<Utc>,
    /// When the event happened, when the record says (freshness is measured from it).
    pub event_time: Option<DateTime<Utc>>,
    /// The record as Microsoft returned it.
    pub raw: Value,
    /// The seen set it belongs to, when its source keeps several
    /// ([`WindowedSource::seen_sets`]); `None`: the source's own (`spec().name`).
    pub seen_set: Option<&'static str>,
    /// `metadata.product.version` of its event, when it differs from the source's
    /// ([`WindowedSource::product_version`]).
    pub product_version: Option<&'static str>,
}

impl Record {
    /// The seen set this record is filtered against and recorded in.
    pub fn set(&self, spec: &SourceSpec) -> &'static str {
        self.seen_set.unwrap_or(spec.name)
    }
}

/// What one fetch of a window got: every record read, what it cost, what was lost for good,
/// and the error that stopped it (`None`: the window was read completely).
#[derive(Debug, Default)]
pub struct Fetched {
    /// Records in the order read.
    pub records: Vec<Record>,
    /// Requests made and throttling met.
    pub cost: CallCost,
    /// Why reading stopped before the window was complete.
    pub error: Option<SourceError>,
    /// Content the window holds but that can never be read (an expired or vanished blob of the
    /// Management Activity API, after retries). The engine sends each to the dead-letter sink
    /// with its reason and counts it ([`crate::poll::PollOutcome::content_lost`]): reported,
    /// never skipped silently. Reading the window again may report it again.
    pub lost: Vec<LostContent>,
    /// Where to continue reading the window (for [`Window::resume`]): set when the source
    /// stopped at [`Window::max_records`], or when an error stopped it after it had read a
    /// page (the request that failed, to retry). Only links the source validated.
    pub next: Option<String>,
}

/// Content a source knows exists but cannot read.
#[derive(Debug, Clone, PartialEq)]
pub struct LostContent {
    /// Why it is lost (an error kind and code; never a response body).
    pub reason: String,
    /// What is known of it (the listing entry: content type, id, URI, times).
    pub content: Value,
}

impl Fetched {
    /// Whether every record of the window was read.
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.next.is_none()
    }
}

/// A source that answers "the records in this window".
#[async_trait]
pub trait WindowedSource: Send + Sync + fmt::Debug {
    /// What the source is.
    fn spec(&self) -> &SourceSpec;

    /// `metadata.product.version` of its events (e.g. the Graph API version), or `""`.
    fn product_version(&self) -> &'static str {
        ""
    }

    /// The seen sets its records go to: its own (`spec().name`) unless one query serves
    /// several sets (the combined sign-ins query keeps the interactive and the other sign-in
    /// types apart, as their own queries did). A complete read covers every one of them.
    fn seen_sets(&self) -> Vec<&'static str> {
        vec![self.spec().name]
    }

    /// Whether `fetch` stops at [`Window::max_records`] and continues from
    /// [`Window::resume`], so a slice of any width is delivered page by page. A source that
    /// reads its whole window at once gets slices of at most `UNPAGED_SLICE_SECS`
    /// (`crate::poll`), whatever `slice_secs` says, to bound what a poller holds.
    fn delivers_pages(&self) -> bool {
        false
    }

    /// Reads every record whose place on the window axis is in `[window.lower,
    /// window.upper]`. Returns what it read even when it fails part-way; the engine then keeps
    /// the slice open and reads it again later (records already emitted are filtered).
    async fn fetch(&self, client: &ApiClient, window: &Window<'_>) -> Fetched;

    /// The record's OCSF event.
    fn normalize(&self, record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError>;
}

/// One item of a snapshot: an object's id, a digest of what the inventory keeps of it, the
/// record itself, and the tags the inventory's summary counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotItem {
    /// The object's id.
    pub id: String,
    /// A digest of the object's relevant state: a change of digest is a change event.
    pub digest: u64,
    /// The object as read (possibly joined from several calls).
    pub raw: Value,
    /// Short labels the per-stream summary counts (`billable`, `no_mfa`, `flagged`, ...).
    pub tags: Vec<String>,
}

/// One read of a snapshot source: what it returned, what it cost, and what it could not read
/// (an optional permission or licence missing: the stream goes on without it).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPage {
    /// The objects read.
    pub read: SnapshotRead,
    /// Requests sent and throttling met.
    pub cost: CallCost,
    /// Parts of the stream read without an optional permission or licence.
    pub degraded: Vec<Degradation>,
}

impl SnapshotPage {
    /// A page without degradation.
    pub fn new(read: SnapshotRead, cost: CallCost) -> Self {
        SnapshotPage {
            read,
            cost,
            degraded: Vec::new(),
        }
    }

    /// The whole current state in one read, without degradation.
    pub fn whole(items: Vec<SnapshotItem>, cost: CallCost) -> Self {
        Self::new(
            SnapshotRead::Full {
                items,
                state: None,
                complete: true,
            },
            cost,
        )
    }
}

/// What a snapshot read returned.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotRead {
    /// The whole current state, or the next part of it (`complete: false`: call again with
    /// `state` to continue).
    Full {
        /// Objects read.
        items: Vec<SnapshotItem>,
        /// Where to continue (a paging or delta token, or the source's own progress), if any.
        state: Option<Value>,
        /// Whether this was the last part of the snapshot.
        complete: bool,
    },
    /// What changed since the state given (a delta query).
    Delta {
        /// Objects added or changed.
        changed: Vec<SnapshotItem>,
        /// Ids of objects removed.
        removed: Vec<String>,
        /// The state to ask from next time.
        state: Option<Value>,
    },
    /// Nothing could be read (an optional permission or licence is missing; the page's
    /// `degraded` says which): what is known stays as it is until the next snapshot is due.
    Unavailable,
}

/// How an object changed between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Seen in the stream's first complete snapshot: part of the baseline, not a change.
    Baseline,
    /// Seen for the first time.
    Appeared,
    /// Its digest changed.
    Changed,
    /// Gone.
    Disappeared,
    /// Unchanged (the inventory event of a full snapshot).
    Unchanged,
}

/// A source that answers "the current state, or what changed since this token".
#[async_trait]
pub trait SnapshotSource: Send + Sync + fmt::Debug {
    /// What the source is.
    fn spec(&self) -> &SourceSpec;

    /// Reads the current state (`state` is `None`, or the source no longer accepts it), the
    /// next part of a snapshot in progress, or the changes since `state`.
    async fn read(
        &self,
        client: &ApiClient,
        tenant: &Tenant,
        state: Option<&Value>,
        deadline: DateTime<Utc>,
    ) -> Result<SnapshotPage, SourceError>;

    /// How many parts of a snapshot one poll reads at most (`None`: until complete or the
    /// deadline). A source that spreads a large snapshot over the day (inbox rules) returns
    /// a small number and reads a bounded part each time.
    fn max_parts_per_poll(&self) -> Option<usize> {
        None
    }

    /// The summary tag whose count is the tenant's daily billable figure (the users stream).
    fn usage_tag(&self) -> Option<&'static str> {
        None
    }

    /// The OCSF events for one object and how it changed. For a disappeared object only its id
    /// is known (`item.raw` is `null`).
    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError>;
}

/// The sources of a job: windowed or snapshot.
#[derive(Debug, Clone)]
pub enum Sources {
    /// A windowed stream's sources, each with its own seen set.
    Windowed(Vec<Arc<dyn WindowedSource>>),
    /// A snapshot stream's source.
    Snapshot(Arc<dyn SnapshotSource>),
}

/// Which sources serve `stream` for a tenant of `cloud`, with the default unified audit
/// content types. The one place where streams meet the APIs behind them.
pub fn sources_for(
    stream: Stream,
    cloud: Cloud,
    include_noninteractive: bool,
) -> Result<Sources, SourceError> {
    sources_with(
        stream,
        cloud,
        include_noninteractive,
        &UnifiedAuditConfig::default(),
    )
}

/// [`sources_for`] with the deployment's unified audit settings (which content types).
pub fn sources_with(
    stream: Stream,
    cloud: Cloud,
    include_noninteractive: bool,
    unified_audit: &UnifiedAuditConfig,
) -> Result<Sources, SourceError> {
    match stream {
        // Every sign-in type through one query (one request per idle poll).
        Stream::Signins if include_noninteractive => Ok(Sources::Windowed(vec![Arc::new(
            SignInsSource::new(cloud)?,
        )])),
        Stream::Signins | Stream::DirectoryAudits => Ok(Sources::Windowed(
            GraphLogSource::for_stream(stream, cloud, include_noninteractive)?
                .into_iter()
                .map(|s| Arc::new(s) as Arc<dyn WindowedSource>)
                .collect(),
        )),
        Stream::Users => Ok(Sources::Snapshot(Arc::new(inventory::UsersSource::new()))),
        Stream::Apps => Ok(Sources::Snapshot(Arc::new(inventory::AppsSource::new()))),
        Stream::Roles => Ok(Sources::Snapshot(Arc::new(inventory::RolesSource::new()))),
        Stream::Mfa => Ok(Sources::Snapshot(Arc::new(inventory::MfaSource::new()))),
        Stream::ConditionalAccess => Ok(Sources::Snapshot(Arc::new(
            inventory::ConditionalAccessSource::new(),
        ))),
        Stream::InboxRules => Ok(Sources::Snapshot(Arc::new(
            inventory::InboxRulesSource::new(),
        ))),
        Stream::UnifiedAudit => Ok(Sources::Windowed(
            ManagementActivitySource::for_config(cloud, unified_audit)?
                .into_iter()
                .map(|s| Arc::new(s) as Arc<dyn WindowedSource>)
                .collect(),
        )),
    }
}

/// The APIs the sources of `stream` call (the tokens a job needs).
pub fn apis_for(stream: Stream, cloud: Cloud) -> Vec<Api> {
    match sources_for(stream, cloud, true) {
        Ok(Sources::Windowed(v)) => {
            let mut apis: Vec<Api> = v.iter().map(|s| s.spec().api).collect();
            apis.sort_unstable();
            apis.dedup();
            apis
        }
        Ok(Sources::Snapshot(s)) => vec![s.spec().api],
        Err(_) => Vec::new(),
    }
}
