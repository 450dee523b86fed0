//! The Office 365 Management Activity API as windowed sources of the unified audit stream: one
//! source per content type (`Audit.Exchange`, `Audit.AzureActiveDirectory`, `Audit.General`,
//! and `Audit.SharePoint` when configured), each with its own seen set
//! (`unified_audit.exchange`, …).
//!
//! # The window axis is availability
//! A content listing (`GET …/subscriptions/content?contentType&startTime&endTime`) selects
//! blobs by `contentCreated`, the time the blob became available, not by event time. The
//! records of a blob are the events it carries, in any order, possibly older than those of an
//! earlier blob. So a record's place on the window axis ([`Record::at`]) is its blob's
//! `contentCreated`; its `event_time` is its `CreationTime` (freshness); its dedupe id is its
//! `Id`. A late event arrives in a late blob: nothing reads deep into the past for it.
//!
//! # Windows the API accepts
//! The engine's slice is `[lower, upper]`, both inclusive, at any precision. The API takes
//! `startTime` inclusive and `endTime` exclusive, at whole seconds
//! (`YYYY-MM-DDTHH:MM:SS`), at most 24 hours apart, with `startTime` at most 7 days back.
//! [`api_windows`] turns a slice into such windows: `startTime = floor(lower)`, `endTime =
//! floor(upper) + 1 s` (so a blob created at `upper` itself is listed), cut into pieces of at
//! most 24 hours, the start clamped to the API's 7 days less a margin (content that old has
//! expired). The listing may then hold blobs created just outside the slice (within the
//! second at either end); they belong to the neighbouring slice, which lists them too, and are
//! dropped here, so re-reading a window always yields the same records at the same places.
//!
//! # Paging, blobs, loss
//! Listings are paged by a `NextPageUri` header (`NextPageUrl` in one Microsoft article; both
//! are accepted, in any case), followed only on the tenant's own Management host
//! ([`ApiClient::validate_link`]); so is every `contentUri`. The client adds
//! `PublisherIdentifier` to each request. A blob that cannot be fetched is retried (the
//! client's own retries, then once more after the window's other blobs) and, when it is lost
//! for good, it is returned in [`Fetched::lost`] with a reason, which the engine sends to the
//! dead-letter sink and counts: expired (`AF20051`), not found (`AF20050`, 404), an invalid id
//! (`AF20052`), a `contentUri` outside the tenant's cloud (never requested), a body that is
//! not a JSON array, or a failure that outlived the retries. Throttling (`AF429`, sent with
//! HTTP 403 and no `Retry-After`), the deadline and tenant-wide failures (consent, permission,
//! subscription) stop the fetch instead: the slice stays open and is read again later.
//!
//! # Subscriptions
//! Each content type needs its own subscription per tenant ([`start_subscription`],
//! [`list_subscriptions`], [`stop_subscription`]). Onboarding and preflight start them; a
//! listing that answers `AF20022` (no subscription) starts it and lists again. A tenant whose
//! unified audit log is off ([`SourceError::AuditingDisabled`]) and a subscription an
//! administrator disabled (`AF20023`, [`SourceError::SubscriptionDisabled`]) are errors the
//! job runner records in the tenant's health; preflight explains them.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::{Fetched, LostContent, Record, SourceSpec, Window, WindowedSource};
use crate::client::{ApiClient, Bucket, Call, CallCost, Priority, SourceError, Tenant};
use crate::cloud::{Api, Cloud};
use crate::ocsf::{NormalizeError, NormalizeOptions, normalize_unified_audit, parse_time_ms};
use crate::stream::Stream;

/// The widest window the content listing accepts.
pub const MAX_API_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How far back the content listing reaches: the API keeps content 7 days.
pub const API_RETENTION: TimeDelta = TimeDelta::days(7);

/// Kept between a window's start and the API's 7-day limit, so a request sent a little later
/// than planned is not refused (content that close to 7 days old is expiring anyway).
pub const RETENTION_EDGE_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// A Management Activity content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContentType {
    /// `Audit.Exchange`: mailbox and Exchange admin activity (inbox rules, forwarding,
    /// permissions, transport rules, `MailItemsAccessed`).
    #[serde(rename = "Audit.Exchange")]
    Exchange,
    /// `Audit.AzureActiveDirectory`: Entra ID sign-ins (`UserLoggedIn`, `UserLoginFailed`) and
    /// directory changes (consent, applications).
    #[serde(rename = "Audit.AzureActiveDirectory")]
    AzureActiveDirectory,
    /// `Audit.General`: every other workload (Power Automate, Teams, Forms, …).
    #[serde(rename = "Audit.General")]
    General,
    /// `Audit.SharePoint`: SharePoint and OneDrive (large volume; off by default).
    #[serde(rename = "Audit.SharePoint")]
    SharePoint,
}

impl ContentType {
    /// Every content type the stream can read.
    pub const ALL: [ContentType; 4] = [
        ContentType::Exchange,
        ContentType::AzureActiveDirectory,
        ContentType::General,
        ContentType::SharePoint,
    ];

    /// The API's name of the content type.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Exchange => "Audit.Exchange",
            ContentType::AzureActiveDirectory => "Audit.AzureActiveDirectory",
            ContentType::General => "Audit.General",
            ContentType::SharePoint => "Audit.SharePoint",
        }
    }

    /// The key of the content type's seen set in the unified audit stream's cursor.
    pub fn source_name(self) -> &'static str {
        match self {
            ContentType::Exchange => "unified_audit.exchange",
            ContentType::AzureActiveDirectory => "unified_audit.azure_active_directory",
            ContentType::General => "unified_audit.general",
            ContentType::SharePoint => "unified_audit.sharepoint",
        }
    }

    /// The content type an API name denotes (case-insensitive).
    pub fn parse(s: &str) -> Option<ContentType> {
        ContentType::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the unified audit stream reads (`[poll.unified_audit]`, or `unified_audit` in
/// `ITDR_POLL_CONFIG`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnifiedAuditConfig {
    /// Also read `Audit.SharePoint` (SharePoint and OneDrive file activity: a large volume,
    /// off by default).
    pub sharepoint: bool,
}

impl UnifiedAuditConfig {
    /// The content types read, in a stable order.
    pub fn content_types(&self) -> Vec<ContentType> {
        let mut v = vec![
            ContentType::Exchange,
            ContentType::AzureActiveDirectory,
            ContentType::General,
        ];
        if self.sharepoint {
            v.push(ContentType::SharePoint);
        }
        v
    }
}

/// One content type of the Management Activity API, read as a windowed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementActivitySource {
    spec: SourceSpec,
    /// The content type listed.
    pub content_type: ContentType,
}

impl ManagementActivitySource {
    /// The source of one content type.
    pub fn new(content_type: ContentType) -> Self {
        Self {
            spec: SourceSpec {
                stream: Stream::UnifiedAudit,
                name: content_type.source_name(),
                api: Api::ManagementActivity,
                bucket: Bucket::ManagementActivity,
            },
            content_type,
        }
    }

    /// The sources of the unified audit stream for a tenant of `cloud`; refused where the
    /// cloud has no documented Management Activity host (China).
    pub fn for_config(
        cloud: Cloud,
        cfg: &UnifiedAuditConfig,
    ) -> Result<Vec<ManagementActivitySource>, SourceError> {
        if Api::ManagementActivity.host(cloud).is_none() {
            return Err(SourceError::Unsupported(Api::ManagementActivity.as_str()));
        }
        Ok(cfg
            .content_types()
            .into_iter()
            .map(ManagementActivitySource::new)
            .collect())
    }
}

/// One content-listing window as the API takes it: `start` inclusive, `end` exclusive, whole
/// seconds, at most [`MAX_API_WINDOW`] apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiWindow {
    /// `startTime` (inclusive).
    pub start: DateTime<Utc>,
    /// `endTime` (exclusive).
    pub end: DateTime<Utc>,
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// The API windows that list every blob created in `[lower, upper]` (see the module docs),
/// as of `now`. Empty when the whole slice is older than the API keeps content.
pub fn api_windows(
    lower: DateTime<Utc>,
    upper: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ApiWindow> {
    let oldest = floor_second(now - API_RETENTION + RETENTION_EDGE_MARGIN) + TimeDelta::seconds(1);
    let start = floor_second(lower).max(oldest);
    let end = floor_second(upper) + TimeDelta::seconds(1);
    let mut out = Vec::new();
    let mut s = start;
    while s < end {
        let e = (s + MAX_API_WINDOW).min(end);
        out.push(ApiWindow { start: s, end: e });
        s = e;
    }
    out
}

/// A time as the content listing takes it: `YYYY-MM-DDTHH:MM:SS`, UTC, no zone suffix.
pub fn api_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The path of an operation of the activity feed of `tenant`.
fn feed_path(tenant: &Tenant, operation: &str) -> String {
    format!("api/v1.0/{}/activity/feed/{operation}", tenant.id)
}

fn call<'a>(
    tenant: &'a Tenant,
    url: &'a Url,
    method: reqwest::Method,
    deadline: DateTime<Utc>,
    priority: Priority,
) -> Call<'a> {
    Call {
        tenant,
        api: Api::ManagementActivity,
        bucket: Bucket::ManagementActivity,
        method,
        url,
        deadline,
        priority,
    }
}

fn json_body(http: &crate::http::HttpResponse) -> Result<Value, SourceError> {
    serde_json::from_slice::<Value>(&http.body)
        .map_err(|e| crate::client::error::decode_error(&e, &http.body))
}

/// What starting a subscription found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOutcome {
    /// The subscription is enabled now (started, or started again).
    Started,
    /// It was enabled already (`AF20024`, which some tenants answer to a repeated start).
    AlreadyEnabled,
}

/// Starts (or re-enables) the subscription to `content_type` for `tenant`.
pub async fn start_subscription(
    client: &ApiClient,
    tenant: &Tenant,
    content_type: ContentType,
    deadline: DateTime<Utc>,
) -> Result<StartOutcome, SourceError> {
    let url = ApiClient::url(
        tenant,
        Api::ManagementActivity,
        &feed_path(tenant, "subscriptions/start"),
        &[("contentType", content_type.as_str().to_string())],
    )?;
    let c = call(
        tenant,
        &url,
        reqwest::Method::POST,
        deadline,
        Priority::Regular,
    );
    match client.send(&c).await {
        Ok(_) => Ok(StartOutcome::Started),
        Err(SourceError::BadRequest { code, .. }) if code.eq_ignore_ascii_case("AF20024") => {
            Ok(StartOutcome::AlreadyEnabled)
        }
        Err(e) => Err(e),
    }
}

/// Stops the subscription to `content_type` for `tenant` (offboarding). Content produced
/// while stopped can never be retrieved. A subscription that does not exist is not an error.
pub async fn stop_subscription(
    client: &ApiClient,
    tenant: &Tenant,
    content_type: ContentType,
    deadline: DateTime<Utc>,
) -> Result<(), SourceError> {
    let url = ApiClient::url(
        tenant,
        Api::ManagementActivity,
        &feed_path(tenant, "subscriptions/stop"),
        &[("contentType", content_type.as_str().to_string())],
    )?;
    let c = call(
        tenant,
        &url,
        reqwest::Method::POST,
        deadline,
        Priority::Regular,
    );
    match client.send(&c).await {
        Ok(_) | Err(SourceError::SubscriptionMissing) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One subscription as `subscriptions/list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    /// The content type, as the API names it.
    pub content_type: String,
    /// `enabled` or `disabled`.
    pub status: String,
}

impl SubscriptionInfo {
    /// Whether the subscription is enabled.
    pub fn enabled(&self) -> bool {
        self.status.eq_ignore_ascii_case("enabled")
    }
}

/// The tenant's subscriptions.
pub async fn list_subscriptions(
    client: &ApiClient,
    tenant: &Tenant,
    deadline: DateTime<Utc>,
) -> Result<Vec<SubscriptionInfo>, SourceError> {
    let url = ApiClient::url(
        tenant,
        Api::ManagementActivity,
        &feed_path(tenant, "subscriptions/list"),
        &[],
    )?;
    let c = call(
        tenant,
        &url,
        reqwest::Method::GET,
        deadline,
        Priority::Regular,
    );
    let (_, body) = client.send_with(&c, json_body).await?;
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default()
    };
    Ok(body
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| SubscriptionInfo {
                    content_type: text(s, "contentType"),
                    status: text(s, "status"),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// One entry of a content listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentItem {
    /// `contentId` (opaque).
    pub content_id: Option<String>,
    /// `contentUri`, as listed (not yet checked).
    pub content_uri: Option<String>,
    /// `contentCreated`: when the blob became available (the window axis).
    pub created: Option<DateTime<Utc>>,
    /// `contentExpiration`.
    pub expiration: Option<DateTime<Utc>>,
    /// The entry as listed (for a dead letter).
    pub raw: Value,
}

impl ContentItem {
    fn from_listing(raw: Value) -> ContentItem {
        let text = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let time = |k: &str| {
            text(k)
                .as_deref()
                .and_then(parse_time_ms)
                .and_then(DateTime::from_timestamp_millis)
        };
        ContentItem {
            content_id: text("contentId"),
            content_uri: text("contentUri"),
            created: time("contentCreated"),
            expiration: time("contentExpiration"),
            raw,
        }
    }
}

/// One page of a content listing.
#[derive(Debug, Default)]
pub struct ContentPage {
    /// The entries, in the order they became available.
    pub items: Vec<ContentItem>,
    /// The validated `NextPageUri`.
    pub next: Option<Url>,
    /// What the page cost.
    pub cost: CallCost,
}

/// The paging header: `NextPageUri` (reference) or `NextPageUrl` (troubleshooting article);
/// header names are case-insensitive.
fn next_page_link(http: &crate::http::HttpResponse) -> Option<&str> {
    http.header("NextPageUri")
        .or_else(|| http.header("NextPageUrl"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Reads one page of a content listing.
pub async fn list_content_page(
    client: &ApiClient,
    tenant: &Tenant,
    url: &Url,
    deadline: DateTime<Utc>,
    priority: Priority,
) -> Result<ContentPage, SourceError> {
    let c = call(tenant, url, reqwest::Method::GET, deadline, priority);
    let (resp, body) = client.send_with(&c, json_body).await?;
    let next = match next_page_link(&resp.http) {
        Some(link) => Some(ApiClient::validate_link(
            tenant,
            Api::ManagementActivity,
            link,
        )?),
        None => None,
    };
    let items = match body {
        Value::Array(items) => items.into_iter().map(ContentItem::from_listing).collect(),
        // Not a listing at all: a decoding problem of the page, read again later.
        _ => {
            return Err(SourceError::Decode {
                offset: 0,
                line: 1,
                column: 1,
            });
        }
    };
    Ok(ContentPage {
        items,
        next,
        cost: resp.cost,
    })
}

/// The first page's URL of the listing of `content_type` over `w`.
pub fn content_listing_url(
    tenant: &Tenant,
    content_type: ContentType,
    w: &ApiWindow,
) -> Result<Url, SourceError> {
    ApiClient::url(
        tenant,
        Api::ManagementActivity,
        &feed_path(tenant, "subscriptions/content"),
        &[
            ("contentType", content_type.as_str().to_string()),
            ("startTime", api_time(w.start)),
            ("endTime", api_time(w.end)),
        ],
    )
}

/// Whether content of `content_type` became available in the last 24 hours before `now`
/// (preflight): the first non-empty page answers, at most `max_pages` pages are read.
pub async fn any_content(
    client: &ApiClient,
    tenant: &Tenant,
    content_type: ContentType,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    max_pages: usize,
) -> Result<bool, SourceError> {
    let w = ApiWindow {
        start: floor_second(now - MAX_API_WINDOW) + TimeDelta::seconds(1),
        end: floor_second(now) + TimeDelta::seconds(1),
    };
    let mut next = Some(content_listing_url(tenant, content_type, &w)?);
    let mut pages = 0;
    while let Some(url) = next {
        let page = list_content_page(client, tenant, &url, deadline, Priority::Regular).await?;
        if !page.items.is_empty() {
            return Ok(true);
        }
        pages += 1;
        if pages >= max_pages {
            break;
        }
        next = page.next;
    }
    Ok(false)
}

/// How a blob fetch failed.
enum BlobFailure {
    /// Lost for good: report it.
    Lost(String),
    /// Worth one more try after the window's other blobs.
    Retry(SourceError),
    /// Stop the fetch: the slice is read again later.
    Stop(SourceError),
}

fn blob_failure(e: SourceError) -> BlobFailure {
    match e {
        SourceError::ContentUnavailable { code } => {
            BlobFailure::Lost(format!("content unavailable ({code})"))
        }
        SourceError::NotFound { code } => BlobFailure::Lost(format!("content not found ({code})")),
        SourceError::ResponseTooLarge { limit_bytes } => BlobFailure::Lost(format!(
            "content larger than the {limit_bytes}-byte response limit"
        )),
        SourceError::BadRequest { status, code } => BlobFailure::Lost(format!(
            "content request refused with HTTP {status} ({code})"
        )),
        e @ (SourceError::Transient { .. } | SourceError::Decode { .. }) => BlobFailure::Retry(e),
        e => BlobFailure::Stop(e),
    }
}

impl ManagementActivitySource {
    /// Lists every blob of the slice, starting the subscription when the API says there is
    /// none.
    async fn list_slice(
        &self,
        client: &ApiClient,
        window: &Window<'_>,
        f: &mut Fetched,
    ) -> Result<Vec<ContentItem>, SourceError> {
        let tenant = window.tenant;
        let now = client.clock().now();
        let mut items = Vec::new();
        let mut started = false;
        for w in api_windows(window.lower, window.upper, now) {
            let mut next = Some(content_listing_url(tenant, self.content_type, &w)?);
            while let Some(url) = next {
                match list_content_page(client, tenant, &url, window.deadline, window.priority)
                    .await
                {
                    Ok(page) => {
                        f.cost.add(page.cost);
                        items.extend(page.items);
                        next = page.next;
                    }
                    Err(SourceError::SubscriptionMissing) if !started => {
                        // Onboarding should have started it; start it now and list again.
                        start_subscription(client, tenant, self.content_type, window.deadline)
                            .await?;
                        tracing::info!(tenant = %tenant.id, content_type = %self.content_type, "started the Management Activity subscription; its first content can take up to 12 hours");
                        started = true;
                        next = Some(url);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // Keep the slice's blobs (the API's whole seconds reach just past it), each once.
        let mut ids = HashSet::new();
        items.retain(|i| {
            i.created
                .is_none_or(|c| window.lower <= c && c <= window.upper)
                && i.content_id
                    .as_ref()
                    .is_none_or(|id| ids.insert(id.clone()))
        });
        Ok(items)
    }

    /// Fetches one blob's records.
    async fn fetch_blob(
        &self,
        client: &ApiClient,
        window: &Window<'_>,
        item: &ContentItem,
        f: &mut Fetched,
    ) -> Result<Vec<Value>, BlobFailure> {
        let Some(uri) = item.content_uri.as_deref() else {
            return Err(BlobFailure::Lost(
                "listing entry without a contentUri".into(),
            ));
        };
        let url = ApiClient::validate_link(window.tenant, Api::ManagementActivity, uri).map_err(
            |e| {
                tracing::error!(tenant = %window.tenant.id, content_type = %self.content_type, error = %e, "content URI outside the tenant's cloud refused");
                BlobFailure::Lost(format!("contentUri refused, never requested: {e}"))
            },
        )?;
        let c = call(
            window.tenant,
            &url,
            reqwest::Method::GET,
            window.deadline,
            window.priority,
        );
        match client.send_with(&c, json_body).await {
            Ok((resp, Value::Array(records))) => {
                f.cost.add(resp.cost);
                Ok(records)
            }
            Ok((resp, _)) => {
                f.cost.add(resp.cost);
                Err(BlobFailure::Lost("content is not a JSON array".into()))
            }
            Err(e) => Err(blob_failure(e)),
        }
    }

    fn lost(&self, item: &ContentItem, reason: String) -> LostContent {
        let mut content = match &item.raw {
            Value::Object(o) => o.clone(),
            _ => serde_json::Map::new(),
        };
        content
            .entry("contentType".to_string())
            .or_insert_with(|| Value::from(self.content_type.as_str()));
        LostContent {
            reason,
            content: Value::Object(content),
        }
    }

    fn push_records(
        &self,
        item: &ContentItem,
        records: Vec<Value>,
        fallback: DateTime<Utc>,
        ids: &mut HashSet<String>,
        f: &mut Fetched,
    ) {
        let at = item.created.unwrap_or(fallback);
        for raw in records {
            let id = match raw.get("Id").and_then(Value::as_str).map(str::trim) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => super::graph_logs::content_id(&raw),
            };
            // The same record in two blobs of the window: once is enough.
            if !ids.insert(id.clone()) {
                continue;
            }
            let event_time = raw
                .get("CreationTime")
                .and_then(Value::as_str)
                .and_then(parse_time_ms)
                .and_then(DateTime::from_timestamp_millis);
            f.records.push(Record {
                id,
                at,
                event_time,
                raw,
                seen_set: None,
                product_version: None,
            });
        }
    }
}

#[async_trait]
impl WindowedSource for ManagementActivitySource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    fn product_version(&self) -> &'static str {
        "v1.0"
    }

    async fn fetch(&self, client: &ApiClient, window: &Window<'_>) -> Fetched {
        let mut f = Fetched::default();
        let items = match self.list_slice(client, window, &mut f).await {
            Ok(items) => items,
            Err(e) => {
                f.error = Some(e);
                return f;
            }
        };
        let mut ids = HashSet::new();
        let mut again = Vec::new();
        for item in &items {
            match self.fetch_blob(client, window, item, &mut f).await {
                Ok(records) => self.push_records(item, records, window.lower, &mut ids, &mut f),
                Err(BlobFailure::Lost(reason)) => f.lost.push(self.lost(item, reason)),
                Err(BlobFailure::Retry(_)) => again.push(item),
                Err(BlobFailure::Stop(e)) => {
                    f.error = Some(e);
                    return f;
                }
            }
        }
        // One more try for the blobs that failed, after the others.
        for item in again {
            match self.fetch_blob(client, window, item, &mut f).await {
                Ok(records) => self.push_records(item, records, window.lower, &mut ids, &mut f),
                Err(BlobFailure::Lost(reason)) => f.lost.push(self.lost(item, reason)),
                Err(BlobFailure::Retry(e)) => f
                    .lost
                    .push(self.lost(item, format!("content failed after retries: {e}"))),
                Err(BlobFailure::Stop(e)) => {
                    f.error = Some(e);
                    return f;
                }
            }
        }
        for l in &f.lost {
            tracing::error!(tenant = %window.tenant.id, content_type = %self.content_type, reason = %l.reason, "content blob lost; dead-lettered");
        }
        f
    }

    fn normalize(&self, record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError> {
        normalize_unified_audit(record, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn content_types_have_stable_names_and_seen_set_keys() {
        for c in ContentType::ALL {
            assert_eq!(ContentType::parse(c.as_str()), Some(c));
            assert!(c.source_name().starts_with("unified_audit."));
            assert_eq!(serde_json::to_value(c).ok(), Some(Value::from(c.as_str())));
        }
        assert_eq!(
            ContentType::parse("audit.exchange"),
            Some(ContentType::Exchange)
        );
        assert_eq!(ContentType::parse("DLP.All"), None);
        let default = UnifiedAuditConfig::default().content_types();
        assert_eq!(default.len(), 3);
        assert!(
            !default.contains(&ContentType::SharePoint),
            "SharePoint is off by default"
        );
        assert!(
            UnifiedAuditConfig { sharepoint: true }
                .content_types()
                .contains(&ContentType::SharePoint)
        );
    }

    #[test]
    fn sources_exist_where_the_cloud_has_a_management_host() {
        let cfg = UnifiedAuditConfig::default();
        for cloud in [Cloud::Global, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod] {
            let s = ManagementActivitySource::for_config(cloud, &cfg).unwrap_or_default();
            assert_eq!(s.len(), 3, "{cloud}");
            for src in &s {
                assert_eq!(src.spec().api, Api::ManagementActivity);
                assert_eq!(src.spec().bucket, Bucket::ManagementActivity);
                assert_eq!(src.spec().stream, Stream::UnifiedAudit);
            }
        }
        assert!(matches!(
            ManagementActivitySource::for_config(Cloud::China, &cfg),
            Err(SourceError::Unsupported(_))
        ));
    }

    #[test]
    fn windows_cover_the_slice_with_whole_seconds_and_an_exclusive_end() {
        let now = t("2026-06-10T12:00:00Z");
        let w = api_windows(
            t("2026-06-10T11:00:00.250Z"),
            t("2026-06-10T11:30:00.750Z"),
            now,
        );
        assert_eq!(
            w,
            vec![ApiWindow {
                start: t("2026-06-10T11:00:00Z"),
                end: t("2026-06-10T11:30:01Z"),
            }]
        );
        // A blob created exactly at the slice's (inclusive) upper bound is listed: the
        // (exclusive) end lies a second later.
        assert!(w[0].end > t("2026-06-10T11:30:00.750Z"));
        assert_eq!(api_time(w[0].start), "2026-06-10T11:00:00");
        assert_eq!(api_time(w[0].end), "2026-06-10T11:30:01");
        // Two adjacent slices share their boundary; together they list it (dedupe drops one).
        let a = api_windows(t("2026-06-10T10:00:00Z"), t("2026-06-10T11:00:00Z"), now);
        let b = api_windows(t("2026-06-10T11:00:00Z"), t("2026-06-10T11:30:00Z"), now);
        assert!(a[0].end > b[0].start);
    }

    #[test]
    fn windows_are_at_most_a_day_and_never_older_than_seven_days() {
        let now = t("2026-06-10T12:00:00Z");
        // A 3-day slice becomes three windows of at most 24 h, contiguous.
        let w = api_windows(t("2026-06-05T00:00:00Z"), t("2026-06-08T00:00:00Z"), now);
        assert_eq!(w.len(), 4);
        for pair in w.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for x in &w {
            assert!(x.end - x.start <= MAX_API_WINDOW);
            assert!(x.start < x.end);
        }
        assert_eq!(w[0].start, t("2026-06-05T00:00:00Z"));
        assert_eq!(w[3].end, t("2026-06-08T00:00:01Z"));
        // A slice reaching past 7 days is clamped to the API's limit (less a margin).
        let w = api_windows(t("2026-06-01T00:00:00Z"), t("2026-06-04T00:00:00Z"), now);
        assert!(w[0].start >= now - API_RETENTION + RETENTION_EDGE_MARGIN);
        assert!(w[0].start <= now - API_RETENTION + RETENTION_EDGE_MARGIN + TimeDelta::seconds(1));
        // Entirely too old: nothing to ask.
        assert!(api_windows(t("2026-05-01T00:00:00Z"), t("2026-05-02T00:00:00Z"), now).is_empty());
    }

    #[test]
    fn blob_failures_are_lost_retried_or_stop_the_fetch() {
        let lost = |e| matches!(blob_failure(e), BlobFailure::Lost(_));
        let retry = |e| matches!(blob_failure(e), BlobFailure::Retry(_));
        let stop = |e| matches!(blob_failure(e), BlobFailure::Stop(_));
        assert!(lost(SourceError::ContentUnavailable {
            code: "AF20051".into()
        }));
        assert!(lost(SourceError::NotFound {
            code: "http_404".into()
        }));
        assert!(retry(SourceError::Transient {
            status: Some(500),
            retry_after: None,
            detail: "AF50000".into()
        }));
        assert!(stop(SourceError::Throttled { retry_after: None }));
        assert!(stop(SourceError::DeadlineExceeded { cause: None }));
        assert!(stop(SourceError::ConsentRevoked));
        assert!(stop(SourceError::SubscriptionDisabled));
    }

    #[test]
    fn listing_entries_are_read_defensively() {
        let i = ContentItem::from_listing(serde_json::json!({
            "contentType": "Audit.Exchange",
            "contentId": "20240501013051748005825$20240501013051748005825$audit_exchange$Audit_Exchange$na0035",
            "contentUri": "https://manage.office.com/api/v1.0/t/activity/feed/audit/x",
            "contentCreated": "2024-05-01T01:30:51.748Z",
            "contentExpiration": "2024-05-08T01:30:51.748Z"
        }));
        assert_eq!(i.created, Some(t("2024-05-01T01:30:51.748Z")));
        assert_eq!(i.expiration, Some(t("2024-05-08T01:30:51.748Z")));
        let bad = ContentItem::from_listing(serde_json::json!({"contentCreated": "soon"}));
        assert_eq!((bad.created, bad.content_uri), (None, None));
    }
}
