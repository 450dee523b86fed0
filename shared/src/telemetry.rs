//! Named telemetry events: each one structured log line and, in the Lambda functions, a
//! CloudWatch metric in the Embedded Metric Format (one JSON line on stdout that Lambda's log
//! delivery turns into metrics: no SDK call, no extra latency, no permission).
//!
//! Events are named `<Noun><PastVerb>`; their metric dimensions are bounded (cloud group,
//! stream, failure kind, reason), never a tenant id. The figures `itdr run` prints per tenant
//! and stream are the same ones, so what an operator sees on a laptop can be watched in
//! production. Metric names (namespace [`NAMESPACE`]):
//!
//! | event | metrics (dimensions) |
//! |---|---|
//! | [`Event::PollCompleted`] | `EventsEmitted`, `DuplicatesFiltered`, `DeadLetters`, `ContentLost`, `Requests`, `Throttled`, `FreshnessP50Seconds`, `FreshnessP99Seconds`, `PollDurationMs`, `LinksRefused` (CloudGroup, Stream) |
//! | [`Event::PollFailed`] | `PollFailures` (CloudGroup, Kind) |
//! | [`Event::SourceUnavailable`] | `SourceFailures` (CloudGroup, Kind) |
//! | [`Event::JobRefused`] | `JobsRefused` (CloudGroup, Reason) |
//! | [`Event::JobDeferred`] | `JobsDeferred` (CloudGroup, Kind) |
//! | [`Event::CursorConflicted`] | `CursorConflicts` (CloudGroup, Stream) |
//! | [`Event::TenantHealthRecorded`] | `TenantsUnhealthy` (CloudGroup) |
//! | [`Event::ActionCompleted`] | `ActionsCompleted` (CloudGroup, Outcome) |
//! | [`Event::ActionFailed`] | `ActionsFailed` (CloudGroup, Reason) |

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::cloud::CloudGroup;
use crate::health::{FailureKind, HealthState};
use crate::poll::{PollOutcome, percentile};
use crate::stream::Stream;

/// The metric namespace (the pollers' IAM condition names the same).
pub const NAMESPACE: &str = "ITDR";

/// Why a job was refused without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The job's or the registered tenant's cloud belongs to a group this poller does not
    /// serve (sovereignty).
    CloudGroupMismatch,
    /// The message is not a job.
    Malformed,
}

impl RefusalReason {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::CloudGroupMismatch => "cloud_group_mismatch",
            RefusalReason::Malformed => "malformed",
        }
    }
}

/// Why a response action (the actions functions) did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionFailure {
    /// The tenant belongs to a cloud group this function does not serve (sovereignty);
    /// refused before any credential was loaded or any request sent.
    CloudGroupMismatch,
    /// The message is not an action request.
    Malformed,
    /// The tenant is not registered.
    UnknownTenant,
    /// Refused by a check or a rail (protected account, last Global Administrator, missing
    /// permission, unknown user or rule, unusable credential); recorded, nothing changed.
    Refused,
    /// Every step that was tried failed.
    Failed,
    /// Some step failed or was partial.
    Partial,
    /// Our side or Microsoft's failed before any write; left for redelivery.
    Deferred,
}

impl ActionFailure {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionFailure::CloudGroupMismatch => "cloud_group_mismatch",
            ActionFailure::Malformed => "malformed",
            ActionFailure::UnknownTenant => "unknown_tenant",
            ActionFailure::Refused => "refused",
            ActionFailure::Failed => "failed",
            ActionFailure::Partial => "partial",
            ActionFailure::Deferred => "deferred",
        }
    }
}

/// Metric dimensions of an event: (name, value).
type Dimensions = Vec<(&'static str, &'static str)>;
/// Metric values of an event: (name, value).
type Metrics = Vec<(&'static str, f64)>;

/// Something worth counting happened.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A poll ran to its end or its deadline, and committed what it delivered.
    PollCompleted {
        /// Tenant GUID.
        tenant: &'a str,
        /// Stream.
        stream: Stream,
        /// What it did.
        outcome: &'a PollOutcome,
        /// Wall-clock milliseconds it took.
        elapsed_ms: u64,
    },
    /// A poll failed on the tenant's side (consent, licence, permission, credential);
    /// recorded in the tenant's health.
    PollFailed {
        /// Tenant GUID.
        tenant: &'a str,
        /// Stream.
        stream: Stream,
        /// Why.
        kind: FailureKind,
        /// Events it delivered before failing.
        emitted: usize,
    },
    /// Microsoft did not answer usefully (5xx, timeouts, throttling past the deadline,
    /// garbled or oversized bodies, refused links); recorded in the tenant's health.
    SourceUnavailable {
        /// Tenant GUID.
        tenant: &'a str,
        /// Stream.
        stream: Stream,
        /// Why.
        kind: FailureKind,
        /// Events it delivered before failing.
        emitted: usize,
    },
    /// A job was refused without reading anything; it goes back to the queue (and on to its
    /// dead-letter queue) because an operator must act.
    JobRefused {
        /// Why.
        reason: RefusalReason,
        /// The queue message, when there is one.
        message_id: &'a str,
    },
    /// A job was left for redelivery: our side failed (store, queue, secret store).
    JobDeferred {
        /// Tenant GUID.
        tenant: &'a str,
        /// Stream.
        stream: Stream,
        /// Why.
        kind: FailureKind,
    },
    /// Another poller committed the same cursor first; this one's events were sent
    /// (duplicates), its cursor left alone.
    CursorConflicted {
        /// Tenant GUID.
        tenant: &'a str,
        /// Stream.
        stream: Stream,
    },
    /// A tenant's health was recorded after a job.
    TenantHealthRecorded {
        /// Tenant GUID.
        tenant: &'a str,
        /// Its state now.
        state: HealthState,
    },
    // The Identity Security Assessment on AWS (report function, sign-in digest).
    /// A sign-in digest write failed or timed out; the events were delivered all the same.
    DigestWriteFailed {
        /// Tenant GUID.
        tenant: &'a str,
    },
    /// A tenant's assessment report was written (and emailed when it has a contact).
    ReportWritten {
        /// Tenant GUID.
        tenant: &'a str,
        /// Findings.
        findings: usize,
        /// Whether the contact was emailed (false: no contact address registered).
        emailed: bool,
    },
    /// A tenant's assessment report could not be built, stored or sent.
    ReportFailed {
        /// Tenant GUID.
        tenant: &'a str,
        /// The step that failed (`inventory`, `store`, `email`, ...).
        step: &'static str,
    },
    /// A response action ran to its end (`completed`, `dry_run`), or was a redelivery of one
    /// that already had (`duplicate`).
    ActionCompleted {
        /// Tenant GUID.
        tenant: &'a str,
        /// The action's stable name.
        action: &'static str,
        /// `completed`, `dry_run` or `duplicate`.
        outcome: &'static str,
        /// The action's id (its audit record).
        action_id: &'a str,
    },
    /// A response action did not complete: refused, failed, or left for redelivery.
    ActionFailed {
        /// Tenant GUID or domain as requested (empty when the request was unreadable).
        tenant: &'a str,
        /// The action's stable name (empty when the request was unreadable).
        action: &'static str,
        /// Why.
        reason: ActionFailure,
        /// The queue message or request id.
        request_id: &'a str,
    },
}

impl Event<'_> {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::PollCompleted { .. } => "PollCompleted",
            Event::PollFailed { .. } => "PollFailed",
            Event::SourceUnavailable { .. } => "SourceUnavailable",
            Event::JobRefused { .. } => "JobRefused",
            Event::JobDeferred { .. } => "JobDeferred",
            Event::CursorConflicted { .. } => "CursorConflicted",
            Event::TenantHealthRecorded { .. } => "TenantHealthRecorded",
            Event::DigestWriteFailed { .. } => "DigestWriteFailed",
            Event::ReportWritten { .. } => "ReportWritten",
            Event::ReportFailed { .. } => "ReportFailed",
            Event::ActionCompleted { .. } => "ActionCompleted",
            Event::ActionFailed { .. } => "ActionFailed",
        }
    }

    /// Writes the structured log line.
    pub fn log(&self) {
        match self {
            Event::PollCompleted {
                tenant,
                stream,
                outcome: o,
                elapsed_ms,
            } => tracing::info!(
                event = self.name(),
                tenant = %tenant,
                stream = %stream,
                fetched = o.fetched,
                emitted = o.emitted,
                duplicates = o.duplicates_filtered,
                dead_lettered = o.dead_lettered,
                content_lost = o.content_lost,
                requests = o.requests,
                throttled = o.throttled,
                freshness_p50_secs = percentile(&o.freshness_secs, 50.0),
                freshness_p99_secs = percentile(&o.freshness_secs, 99.0),
                slices = o.slices,
                pass_complete = o.pass_complete,
                stopped_at_deadline = o.stopped_at_deadline,
                links_refused = o.links_refused,
                elapsed_ms,
                "poll completed"
            ),
            Event::PollFailed {
                tenant,
                stream,
                kind,
                emitted,
            } => tracing::warn!(
                event = self.name(),
                tenant = %tenant,
                stream = %stream,
                kind = kind.as_str(),
                emitted,
                "poll failed; recorded in tenant health"
            ),
            Event::SourceUnavailable {
                tenant,
                stream,
                kind,
                emitted,
            } => tracing::warn!(
                event = self.name(),
                tenant = %tenant,
                stream = %stream,
                kind = kind.as_str(),
                emitted,
                "source unavailable; recorded in tenant health"
            ),
            Event::JobRefused { reason, message_id } => tracing::error!(
                event = self.name(),
                reason = reason.as_str(),
                message_id = %message_id,
                "job refused; an operator must act"
            ),
            Event::JobDeferred {
                tenant,
                stream,
                kind,
            } => tracing::warn!(
                event = self.name(),
                tenant = %tenant,
                stream = %stream,
                kind = kind.as_str(),
                "job failed on our side; left for redelivery"
            ),
            Event::CursorConflicted { tenant, stream } => tracing::info!(
                event = self.name(),
                tenant = %tenant,
                stream = %stream,
                "another poller committed this cursor first"
            ),
            Event::TenantHealthRecorded { tenant, state } => tracing::debug!(
                event = self.name(),
                tenant = %tenant,
                state = state.as_str(),
                "tenant health recorded"
            ),
            Event::DigestWriteFailed { tenant } => tracing::warn!(
                event = self.name(),
                tenant = %tenant,
                "sign-in digest not written"
            ),
            Event::ReportWritten {
                tenant,
                findings,
                emailed,
            } => tracing::info!(
                event = self.name(),
                tenant = %tenant,
                findings,
                emailed,
                "assessment report written"
            ),
            Event::ReportFailed { tenant, step } => tracing::error!(
                event = self.name(),
                tenant = %tenant,
                step,
                "assessment report failed"
            ),
            Event::ActionCompleted {
                tenant,
                action,
                outcome,
                action_id,
            } => tracing::info!(
                event = self.name(),
                tenant = %tenant,
                action = *action,
                outcome = *outcome,
                action_id = %action_id,
                "response action completed"
            ),
            Event::ActionFailed {
                tenant,
                action,
                reason,
                request_id,
            } => tracing::error!(
                event = self.name(),
                tenant = %tenant,
                action = *action,
                reason = reason.as_str(),
                request_id = %request_id,
                "response action did not complete"
            ),
        }
    }

    /// The event's metrics and their dimensions (without the cloud group).
    fn metrics(&self) -> (Dimensions, Metrics) {
        match self {
            Event::PollCompleted {
                stream,
                outcome: o,
                elapsed_ms,
                ..
            } => {
                let mut m = vec![
                    ("EventsEmitted", o.emitted as f64),
                    ("DuplicatesFiltered", o.duplicates_filtered as f64),
                    ("DeadLetters", o.dead_lettered as f64),
                    ("ContentLost", o.content_lost as f64),
                    ("Requests", f64::from(o.requests)),
                    ("Throttled", f64::from(o.throttled)),
                    ("PollDurationMs", *elapsed_ms as f64),
                    ("LinksRefused", f64::from(o.links_refused)),
                ];
                if let Some(p) = percentile(&o.freshness_secs, 50.0) {
                    m.push(("FreshnessP50Seconds", f64::from(p)));
                }
                if let Some(p) = percentile(&o.freshness_secs, 99.0) {
                    m.push(("FreshnessP99Seconds", f64::from(p)));
                }
                (vec![("Stream", stream.as_str())], m)
            }
            Event::PollFailed { kind, .. } => {
                (vec![("Kind", kind.as_str())], vec![("PollFailures", 1.0)])
            }
            Event::SourceUnavailable { kind, .. } => {
                (vec![("Kind", kind.as_str())], vec![("SourceFailures", 1.0)])
            }
            Event::JobRefused { reason, .. } => (
                vec![("Reason", reason.as_str())],
                vec![("JobsRefused", 1.0)],
            ),
            Event::JobDeferred { kind, .. } => {
                (vec![("Kind", kind.as_str())], vec![("JobsDeferred", 1.0)])
            }
            Event::CursorConflicted { stream, .. } => (
                vec![("Stream", stream.as_str())],
                vec![("CursorConflicts", 1.0)],
            ),
            Event::TenantHealthRecorded { state, .. } => (
                Vec::new(),
                vec![(
                    "TenantsUnhealthy",
                    f64::from(u8::from(is_unhealthy(*state))),
                )],
            ),
            Event::DigestWriteFailed { .. } => (Vec::new(), vec![("DigestWriteFailures", 1.0)]),
            Event::ReportWritten { emailed, .. } => (
                Vec::new(),
                vec![
                    ("ReportsWritten", 1.0),
                    ("ReportsWithoutContact", f64::from(u8::from(!*emailed))),
                ],
            ),
            // One dimension (the cloud group) only, so one alarm covers every step.
            Event::ReportFailed { .. } => (Vec::new(), vec![("ReportFailures", 1.0)]),
            Event::ActionCompleted { outcome, .. } => {
                (vec![("Outcome", *outcome)], vec![("ActionsCompleted", 1.0)])
            }
            Event::ActionFailed { reason, .. } => (
                vec![("Reason", reason.as_str())],
                vec![("ActionsFailed", 1.0)],
            ),
        }
    }

    /// The Embedded Metric Format document of this event for `group` at `at`: one JSON line.
    pub fn emf_line(&self, group: CloudGroup, at: DateTime<Utc>) -> String {
        let (dims, metrics) = self.metrics();
        let mut doc = Map::new();
        let mut dim_names: Vec<&str> = vec!["CloudGroup"];
        doc.insert("CloudGroup".into(), Value::from(group.as_str()));
        for (k, v) in &dims {
            dim_names.push(k);
            doc.insert((*k).into(), Value::from(*v));
        }
        let defs: Vec<Value> = metrics
            .iter()
            .map(|(name, _)| {
                let unit = if name.ends_with("Ms") {
                    "Milliseconds"
                } else if name.ends_with("Seconds") {
                    "Seconds"
                } else {
                    "Count"
                };
                json!({"Name": name, "Unit": unit})
            })
            .collect();
        for (name, v) in &metrics {
            doc.insert((*name).into(), json!(v));
        }
        doc.insert("event".into(), Value::from(self.name()));
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dim_names],
                    "Metrics": defs,
                }],
            }),
        );
        Value::Object(doc).to_string()
    }
}

/// Whether a tenant state counts as unhealthy for the `TenantsUnhealthy` metric.
pub fn is_unhealthy(state: HealthState) -> bool {
    !matches!(state, HealthState::Healthy | HealthState::Pending)
}

/// Where events go.
pub trait Telemetry: Send + Sync + std::fmt::Debug {
    /// Records one event.
    fn emit(&self, event: &Event<'_>, at: DateTime<Utc>);
}

/// Log lines only (the embedded runner, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogTelemetry;

impl Telemetry for LogTelemetry {
    fn emit(&self, event: &Event<'_>, _at: DateTime<Utc>) {
        event.log();
    }
}

/// Log lines plus an Embedded Metric Format line on stdout (the Lambda functions).
#[derive(Debug, Clone, Copy)]
pub struct EmfTelemetry {
    /// The cloud group this function serves (a metric dimension).
    pub group: CloudGroup,
}

impl Telemetry for EmfTelemetry {
    fn emit(&self, event: &Event<'_>, at: DateTime<Utc>) {
        event.log();
        println!("{}", event.emf_line(self.group, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_completed_poll_becomes_one_emf_document_with_bounded_dimensions() {
        let outcome = PollOutcome {
            emitted: 12,
            duplicates_filtered: 3,
            requests: 4,
            throttled: 1,
            freshness_secs: vec![30, 60, 600],
            ..PollOutcome::default()
        };
        let e = Event::PollCompleted {
            tenant: "00000000-0000-0000-0000-000000000001",
            stream: Stream::Signins,
            outcome: &outcome,
            elapsed_ms: 250,
        };
        let line = e.emf_line(CloudGroup::UsGov, at());
        assert!(!line.contains('\n'));
        assert!(
            !line.contains("00000000-0000-0000-0000-000000000001"),
            "no tenant id"
        );
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["_aws"]["Timestamp"], 1_790_000_000_000i64);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "ITDR");
        assert_eq!(m["Dimensions"][0], json!(["CloudGroup", "Stream"]));
        assert_eq!(v["CloudGroup"], "usgov");
        assert_eq!(v["Stream"], "signins");
        assert_eq!(v["EventsEmitted"], 12.0);
        assert_eq!(v["Requests"], 4.0);
        assert_eq!(v["Throttled"], 1.0);
        assert_eq!(v["FreshnessP99Seconds"], 600.0);
        let names: Vec<&str> = m["Metrics"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["Name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"PollDurationMs") && names.contains(&"FreshnessP50Seconds"));
    }

    #[test]
    fn health_samples_feed_the_unhealthy_tenants_alarm() {
        let line = Event::TenantHealthRecorded {
            tenant: "t",
            state: HealthState::ConsentRevoked,
        }
        .emf_line(CloudGroup::Commercial, at());
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["TenantsUnhealthy"], 1.0);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["CloudGroup"])
        );
        assert!(!is_unhealthy(HealthState::Healthy));
        assert!(!is_unhealthy(HealthState::Pending));
        for s in [
            HealthState::Degraded,
            HealthState::NoData,
            HealthState::ConsentRevoked,
            HealthState::LicenceMissing,
            HealthState::CredentialsExpired,
            HealthState::PermissionMissing,
            HealthState::Offboarded,
        ] {
            assert!(is_unhealthy(s), "{s:?}");
        }
    }

    #[test]
    fn refusals_and_failures_carry_their_reason_as_a_dimension() {
        let v: Value = serde_json::from_str(
            &Event::JobRefused {
                reason: RefusalReason::CloudGroupMismatch,
                message_id: "m-1",
            }
            .emf_line(CloudGroup::Commercial, at()),
        )
        .unwrap_or_default();
        assert_eq!(v["Reason"], "cloud_group_mismatch");
        assert_eq!(v["JobsRefused"], 1.0);
        let v: Value = serde_json::from_str(
            &Event::SourceUnavailable {
                tenant: "t",
                stream: Stream::DirectoryAudits,
                kind: FailureKind::Transient,
                emitted: 0,
            }
            .emf_line(CloudGroup::Commercial, at()),
        )
        .unwrap_or_default();
        assert_eq!(v["Kind"], "transient");
        assert_eq!(v["SourceFailures"], 1.0);
    }
}
