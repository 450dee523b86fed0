//! The Graph audit logs as windowed sources: `auditLogs/signIns` (interactive; and, through the
//! beta event-type filter, non-interactive, service-principal and managed-identity sign-ins)
//! and `auditLogs/directoryAudits`.
//!
//! The window axis is event time (`createdDateTime`, `activityDateTime`), filtered with `ge`
//! and `le` (Graph documents no `gt`/`lt`), paged with `@odata.nextLink` followed verbatim on the
//! tenant's Graph host. Requests count against the reporting bucket (5 per 10 s per tenant).

use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Fetched, Record, SourceSpec, Window, WindowedSource};
use crate::client::{ApiClient, Bucket, SourceError};
use crate::cloud::{Api, Cloud};
use crate::ocsf::{NormalizeError, NormalizeOptions, parse_time_ms};
use crate::stream::Stream;

/// One Graph audit-log query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphLogSource {
    spec: SourceSpec,
    /// Graph path, e.g. `v1.0/auditLogs/signIns`.
    pub path: &'static str,
    /// Extra `$filter` clause.
    pub filter: Option<&'static str>,
    /// The record property the window is on.
    pub time_property: &'static str,
}

impl GraphLogSource {
    /// The sources of `stream` for a tenant of `cloud`. Sign-ins: v1.0 returns interactive
    /// sign-ins only; beta without an event-type filter returns the same set and is what the US
    /// Government clouds document; the other sign-in types come from beta with the event-type
    /// filter, when `include_noninteractive`.
    pub fn for_stream(
        stream: Stream,
        cloud: Cloud,
        include_noninteractive: bool,
    ) -> Result<Vec<GraphLogSource>, SourceError> {
        if !cloud.audit_logs_available() {
            return Err(SourceError::Unsupported("auditLogs"));
        }
        let spec = |name| SourceSpec {
            stream,
            name,
            api: Api::Graph,
            bucket: Bucket::Reports,
        };
        Ok(match stream {
            Stream::DirectoryAudits => vec![GraphLogSource {
                spec: spec("directory_audits"),
                path: "v1.0/auditLogs/directoryAudits",
                filter: None,
                time_property: "activityDateTime",
            }],
            Stream::Signins => {
                let mut v = vec![GraphLogSource {
                    spec: spec("signins.interactive"),
                    path: if cloud.signins_v1_available() {
                        "v1.0/auditLogs/signIns"
                    } else {
                        "beta/auditLogs/signIns"
                    },
                    filter: None,
                    time_property: "createdDateTime",
                }];
                if include_noninteractive {
                    v.push(GraphLogSource {
                        spec: spec("signins.other"),
                        path: "beta/auditLogs/signIns",
                        filter: Some("signInEventTypes/any(t: t ne 'interactiveUser')"),
                        time_property: "createdDateTime",
                    });
                }
                v
            }
            // Not a Graph audit log: the Management Activity API serves it, and inventory
            // streams are snapshots.
            Stream::UnifiedAudit
            | Stream::Users
            | Stream::Apps
            | Stream::Roles
            | Stream::Mfa
            | Stream::ConditionalAccess
            | Stream::InboxRules => Vec::new(),
        })
    }

    /// The `$filter` of a window.
    pub fn window_filter(&self, lower: DateTime<Utc>, upper: DateTime<Utc>) -> String {
        let prop = self.time_property;
        let mut filter = format!(
            "{prop} ge {} and {prop} le {}",
            filter_time(lower),
            filter_time(upper)
        );
        if let Some(extra) = self.filter {
            filter.push_str(" and ");
            filter.push_str(extra);
        }
        filter
    }
}

#[async_trait]
impl WindowedSource for GraphLogSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    fn product_version(&self) -> &'static str {
        if self.path.starts_with("beta") {
            "beta"
        } else {
            "v1.0"
        }
    }

    fn delivers_pages(&self) -> bool {
        true
    }

    async fn fetch(&self, client: &ApiClient, window: &Window<'_>) -> Fetched {
        let mut f = Fetched::default();
        // A stored continuation is a link Graph gave for this query: it is checked like any
        // paging link before it is requested.
        let resumed = window.resume.is_some();
        let first = match window.resume {
            Some(link) => ApiClient::validate_link(window.tenant, Api::Graph, link),
            None => ApiClient::url(
                window.tenant,
                Api::Graph,
                self.path,
                &[
                    ("$filter", self.window_filter(window.lower, window.upper)),
                    ("$top", window.page_size.to_string()),
                ],
            ),
        };
        let first = match first {
            Ok(u) => u,
            Err(e) => {
                f.error = Some(e);
                return f;
            }
        };
        let mut pages = 0u32;
        let mut next = Some(first);
        while let Some(url) = next {
            match client
                .get_page_as(
                    window.tenant,
                    self.spec.bucket,
                    &url,
                    window.deadline,
                    window.priority,
                )
                .await
            {
                Ok(page) => {
                    pages += 1;
                    f.cost.add(page.cost);
                    for raw in page.value {
                        let (id, time) = record_key(&raw, self.time_property, window.lower);
                        f.records.push(Record {
                            id,
                            at: time,
                            event_time: Some(time),
                            raw,
                            seen_set: None,
                            product_version: None,
                        });
                    }
                    if let Some(refused) = page.refused_link {
                        f.error = Some(refused);
                        return f;
                    }
                    next = page.next_link;
                    if let Some(link) = &next
                        && window.max_records.is_some_and(|m| f.records.len() >= m)
                    {
                        f.next = Some(link.to_string());
                        return f;
                    }
                }
                Err(e) => {
                    // Retry from the request that failed, once the window has progress.
                    if pages > 0 || resumed {
                        f.next = Some(url.to_string());
                    }
                    f.error = Some(e);
                    return f;
                }
            }
        }
        f
    }

    fn normalize(&self, record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError> {
        crate::ocsf::normalize(self.spec.stream, record, opts)
    }
}

/// Seen set of interactive sign-ins.
pub const INTERACTIVE_SET: &str = "signins.interactive";
/// Seen set of the other sign-in types (non-interactive, service principal, managed
/// identity).
pub const OTHER_SET: &str = "signins.other";

/// The one beta query that returns every sign-in type (OData `or` inside the documented
/// `signInEventTypes/any` lambda, whose documented operators are `eq` and `ne`).
const ALL_TYPES: &str = "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser' or t eq 'servicePrincipal' or t eq 'managedIdentity')";

/// Clouds where Graph refused [`ALL_TYPES`] (a 400), one bit per [`Cloud`]: this process
/// reads their sign-ins with the two queries instead.
static REFUSED: AtomicU8 = AtomicU8::new(0);

fn cloud_bit(cloud: Cloud) -> u8 {
    match cloud {
        Cloud::Global => 1,
        Cloud::Gcc => 2,
        Cloud::GccHigh => 4,
        Cloud::Dod => 8,
        Cloud::China => 16,
    }
}

/// Every sign-in type of a tenant through **one** query per window: an idle poll of the
/// sign-ins stream costs one request instead of two. Records are kept in the seen sets the
/// two separate queries used (interactive and other types), so cursors need no migration and
/// a fallback filters exactly as before. When Graph refuses the combined filter (HTTP 400,
/// nothing read), the same window is read at once with the two queries, and this process
/// keeps using them for that cloud.
#[derive(Debug, Clone)]
pub struct SignInsSource {
    spec: SourceSpec,
    combined: GraphLogSource,
    interactive: GraphLogSource,
    other: GraphLogSource,
}

impl SignInsSource {
    /// The combined source for a tenant of `cloud`; `None` where Graph has no audit logs.
    pub fn new(cloud: Cloud) -> Result<SignInsSource, SourceError> {
        let mut two = GraphLogSource::for_stream(Stream::Signins, cloud, true)?.into_iter();
        let (Some(interactive), Some(other)) = (two.next(), two.next()) else {
            return Err(SourceError::Unsupported("auditLogs"));
        };
        let spec = SourceSpec {
            name: "signins",
            ..other.spec
        };
        Ok(SignInsSource {
            spec,
            combined: GraphLogSource {
                spec,
                path: "beta/auditLogs/signIns",
                filter: Some(ALL_TYPES),
                time_property: "createdDateTime",
            },
            interactive,
            other,
        })
    }

    /// Whether this process reads `cloud`'s sign-ins with two queries (Graph refused one).
    pub fn refused(cloud: Cloud) -> bool {
        REFUSED.load(Ordering::Relaxed) & cloud_bit(cloud) != 0
    }

    /// The seen set of a beta sign-in: interactive when its types include `interactiveUser`
    /// (or it names none), else the other types'.
    fn set_of(record: &Value) -> &'static str {
        match record.get("signInEventTypes").and_then(Value::as_array) {
            Some(types)
                if !types.is_empty()
                    && !types.iter().any(|t| t.as_str() == Some("interactiveUser")) =>
            {
                OTHER_SET
            }
            _ => INTERACTIVE_SET,
        }
    }

    /// The two queries, one after the other, from `part` on: the second is read unless the
    /// first failed in a way that stops every source of the slice (no time left, throttled,
    /// credentials) or has more pages to read. The continuation names the query it belongs to
    /// (`interactive <link>`, `other <link>`, or `other` for the second from its start).
    async fn fetch_two(
        &self,
        client: &ApiClient,
        window: &Window<'_>,
        part: TwoPart<'_>,
    ) -> Fetched {
        let mut f = Fetched::default();
        let other_from = match part {
            TwoPart::Interactive(link) => {
                let w = Window {
                    resume: link,
                    ..window.clone()
                };
                f = self.interactive.fetch(client, &w).await;
                let version = self.interactive.product_version();
                for r in &mut f.records {
                    r.seen_set = Some(INTERACTIVE_SET);
                    r.product_version = Some(version);
                }
                if let Some(next) = f.next.take() {
                    f.next = Some(format!("{INTERACTIVE_PART}{next}"));
                    return f;
                }
                if f.error.as_ref().is_some_and(crate::poll::stops_the_slice) {
                    return f;
                }
                if f.error.is_none() && window.max_records.is_some_and(|m| f.records.len() >= m) {
                    f.next = Some(OTHER_START.to_string());
                    return f;
                }
                None
            }
            TwoPart::Other(link) => link,
        };
        let w = Window {
            resume: other_from,
            ..window.clone()
        };
        let mut g = self.other.fetch(client, &w).await;
        for r in &mut g.records {
            r.seen_set = Some(OTHER_SET);
        }
        f.records.append(&mut g.records);
        f.lost.append(&mut g.lost);
        f.cost.add(g.cost);
        if let Some(next) = g.next {
            f.next = Some(format!("{OTHER_PART}{next}"));
        }
        // A failure keeps the slice open; a refused link alone does not.
        f.error = match (f.error.take(), g.error) {
            (Some(SourceError::ForeignLink { .. }), Some(e)) | (None, Some(e)) => Some(e),
            (first, _) => first,
        };
        f
    }
}

/// Where the two sign-in queries continue ([`SignInsSource::fetch_two`]).
#[derive(Debug, Clone, Copy)]
enum TwoPart<'a> {
    /// The interactive query (from this link, or its start), then the other.
    Interactive(Option<&'a str>),
    /// The other types' query (from this link, or its start).
    Other(Option<&'a str>),
}

/// Prefix of a continuation in the interactive query of the two.
const INTERACTIVE_PART: &str = "interactive ";
/// Prefix of a continuation in the other types' query of the two.
const OTHER_PART: &str = "other ";
/// The continuation that starts the other types' query from its first page.
const OTHER_START: &str = "other";

#[async_trait]
impl WindowedSource for SignInsSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    fn product_version(&self) -> &'static str {
        "beta"
    }

    fn seen_sets(&self) -> Vec<&'static str> {
        vec![INTERACTIVE_SET, OTHER_SET]
    }

    fn delivers_pages(&self) -> bool {
        true
    }

    async fn fetch(&self, client: &ApiClient, window: &Window<'_>) -> Fetched {
        let cloud = window.tenant.cloud;
        match window.resume {
            Some(r) if r.starts_with(INTERACTIVE_PART) => {
                let link = r.trim_start_matches(INTERACTIVE_PART);
                return self
                    .fetch_two(client, window, TwoPart::Interactive(Some(link)))
                    .await;
            }
            Some(OTHER_START) => {
                return self.fetch_two(client, window, TwoPart::Other(None)).await;
            }
            Some(r) if r.starts_with(OTHER_PART) => {
                let link = r.trim_start_matches(OTHER_PART);
                return self
                    .fetch_two(client, window, TwoPart::Other(Some(link)))
                    .await;
            }
            // A link of the combined query: continued below.
            Some(_) => {}
            None if Self::refused(cloud) => {
                return self
                    .fetch_two(client, window, TwoPart::Interactive(None))
                    .await;
            }
            None => {}
        }
        let mut f = self.combined.fetch(client, window).await;
        if window.resume.is_none()
            && f.records.is_empty()
            && matches!(f.error, Some(SourceError::BadRequest { status: 400, .. }))
        {
            REFUSED.fetch_or(cloud_bit(cloud), Ordering::Relaxed);
            tracing::warn!(cloud = ?cloud, "Graph refused the combined sign-in type filter; reading sign-ins with two queries");
            let mut g = self
                .fetch_two(client, window, TwoPart::Interactive(None))
                .await;
            g.cost.add(f.cost);
            return g;
        }
        for r in &mut f.records {
            r.seen_set = Some(Self::set_of(&r.raw));
        }
        f
    }

    fn normalize(&self, record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError> {
        crate::ocsf::normalize(self.spec.stream, record, opts)
    }
}

/// Formats a time for a Graph `$filter` (UTC, millisecond precision).
pub fn filter_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The dedupe key of a record: its `id` and event time. A record without an id gets a
/// surrogate id from its content; one without a readable time is bucketed at `fallback`.
pub fn record_key(
    record: &Value,
    time_prop: &str,
    fallback: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let id = match record.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.trim().is_empty() => id.to_string(),
        _ => content_id(record),
    };
    let time = record
        .get(time_prop)
        .and_then(|v| v.as_str())
        .and_then(parse_time_ms)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(fallback);
    (id, time)
}

/// A surrogate id for a record without one: the SHA-256 of its JSON.
pub fn content_id(record: &Value) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    format!("content:{}", hex::encode(sha2::Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_government_sign_ins_use_beta_and_others_v1() {
        let g =
            GraphLogSource::for_stream(Stream::Signins, Cloud::Global, true).unwrap_or_default();
        assert_eq!(g[0].path, "v1.0/auditLogs/signIns");
        assert_eq!(g[1].path, "beta/auditLogs/signIns");
        assert_eq!(g[1].product_version(), "beta");
        let h =
            GraphLogSource::for_stream(Stream::Signins, Cloud::GccHigh, false).unwrap_or_default();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].path, "beta/auditLogs/signIns");
        assert_eq!(
            GraphLogSource::for_stream(Stream::DirectoryAudits, Cloud::Dod, true)
                .map(|v| v.len())
                .ok(),
            Some(1)
        );
        assert!(matches!(
            GraphLogSource::for_stream(Stream::Signins, Cloud::China, true),
            Err(SourceError::Unsupported(_))
        ));
        for s in g {
            assert_eq!(s.spec().api, Api::Graph);
            assert_eq!(s.spec().bucket, Bucket::Reports);
        }
    }

    #[test]
    fn window_filters_use_ge_and_le_on_the_time_property() {
        let s =
            GraphLogSource::for_stream(Stream::Signins, Cloud::Global, true).unwrap_or_default();
        let lo = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let hi = DateTime::from_timestamp(1_780_003_600, 0).unwrap_or_default();
        assert_eq!(
            s[1].window_filter(lo, hi),
            "createdDateTime ge 2026-05-28T20:26:40.000Z and createdDateTime le 2026-05-28T21:26:40.000Z and signInEventTypes/any(t: t ne 'interactiveUser')"
        );
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
}
