//! Poll jobs: the message the scheduler puts on a jobs queue, and the scheduler's fan-out.
//!
//! One job per (tenant, stream) per schedule slot. Jobs queues are FIFO:
//! - `MessageGroupId = {tenant_id}#{group key}`: SQS hands out one message of a group at a
//!   time, so no two pollers ever work the same cursor at once. The group key is the stream,
//!   except for the streams that share Microsoft's per-tenant reporting limit (sign-ins and
//!   directory audits: 5 requests per 10 s per app per tenant), which share the key `reports`:
//!   no two pollers poll them for one tenant at once, so together they stay within that limit
//!   (each poller paces its own requests);
//! - `MessageDeduplicationId = {tenant_id}#{stream}#{slot}` with
//!   `slot = floor(schedule time / slot secs)`: a retried or duplicated schedule invocation
//!   within the 5-minute deduplication window sends nothing new.
//!
//! The job names the tenant's cloud so a poller can refuse another group's job before reading
//! anything; the poller still reads the registry for everything else (a tenant disabled after
//! the job was sent is skipped).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dynamo::DynamoRegistry;
use super::sqs::{OutMessage, SqsError, SqsSender};
use crate::cloud::{Cloud, CloudGroup};
use crate::store::{HealthState, StoreError, TenantRecord};
use crate::stream::Stream;

/// The job message format version.
pub const JOB_VERSION: u32 = 1;

/// A poll job: the body of a jobs-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    /// Format version ([`JOB_VERSION`]).
    pub v: u32,
    /// Tenant GUID.
    pub tenant_id: String,
    /// The tenant's cloud when the job was scheduled.
    pub cloud: Cloud,
    /// The stream to poll.
    pub stream: Stream,
    /// Schedule slot number.
    pub slot: u64,
    /// When the schedule fired.
    pub scheduled_at: DateTime<Utc>,
}

/// A job body that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed job message: {0}")]
pub struct JobError(pub &'static str);

impl JobMessage {
    /// The FIFO message group: one cursor, one poller at a time; the streams of one
    /// per-tenant reporting limit share a group (see the module docs).
    pub fn group_id(&self) -> String {
        let key = match self.stream {
            Stream::Signins | Stream::DirectoryAudits => "reports",
            other => other.as_str(),
        };
        format!("{}#{key}", self.tenant_id)
    }

    /// The FIFO deduplication id: one job per cursor per slot.
    pub fn dedup_id(&self) -> String {
        format!("{}#{}#{}", self.tenant_id, self.stream, self.slot)
    }

    /// Parses a message body.
    pub fn parse(body: &str) -> Result<Self, JobError> {
        let job: JobMessage = serde_json::from_str(body)
            .map_err(|_| JobError("the body is not a job JSON object"))?;
        if job.v != JOB_VERSION {
            return Err(JobError("unsupported job version"));
        }
        if job.tenant_id.is_empty() || job.tenant_id.len() > 64 {
            return Err(JobError("tenant_id is empty or too long"));
        }
        Ok(job)
    }

    /// The jobs-queue message.
    pub fn to_message(&self) -> Result<OutMessage, JobError> {
        let body = serde_json::to_string(self).map_err(|_| JobError("job could not be encoded"))?;
        let mut m = OutMessage::new(body)
            .attr("tenant_id", self.tenant_id.clone())
            .attr("stream", self.stream.as_str());
        m.group_id = Some(self.group_id());
        m.dedup_id = Some(self.dedup_id());
        Ok(m)
    }
}

/// The slot of a schedule time.
pub fn slot_of(at: DateTime<Utc>, slot_secs: u64) -> u64 {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    secs / slot_secs.max(1)
}

/// Whether the scheduler sends jobs for a tenant.
pub fn is_schedulable(t: &TenantRecord) -> bool {
    t.enabled && t.health.state != HealthState::Offboarded && !t.streams.is_empty()
}

/// Jobs to send, per cloud group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Jobs for the commercial jobs queue.
    pub commercial: Vec<JobMessage>,
    /// Jobs for the US Government jobs queue.
    pub usgov: Vec<JobMessage>,
    /// Tenants skipped (disabled, offboarded or without streams).
    pub skipped: usize,
    /// Jobs of quiet streams held back to a later slot (adaptive polling).
    pub quiet: usize,
}

/// One job per (tenant, stream) of every schedulable tenant whose stream is due in this slot
/// (`cadence`: quiet streams every few slots), routed by cloud group.
pub fn plan(
    tenants: &[TenantRecord],
    at: DateTime<Utc>,
    slot_secs: u64,
    cadence: &crate::schedule::Cadence,
) -> Plan {
    let slot = slot_of(at, slot_secs);
    let mut p = Plan::default();
    for t in tenants {
        if !is_schedulable(t) {
            p.skipped += 1;
            continue;
        }
        let mut streams = t.streams.clone();
        streams.sort();
        streams.dedup();
        for stream in streams {
            if !cadence.due(t, stream, slot, slot_secs, at) {
                p.quiet += 1;
                continue;
            }
            let job = JobMessage {
                v: JOB_VERSION,
                tenant_id: t.tenant_id.to_ascii_lowercase(),
                cloud: t.cloud,
                stream,
                slot,
                scheduled_at: at,
            };
            match t.cloud.group() {
                CloudGroup::Commercial => p.commercial.push(job),
                CloudGroup::UsGov => p.usgov.push(job),
            }
        }
    }
    p
}

/// The two jobs queues and the sender.
#[derive(Debug, Clone)]
pub struct JobQueues {
    /// Batch sender.
    pub sender: SqsSender,
    /// Commercial jobs queue URL (FIFO); `None` in a US Government-only stack.
    pub commercial_url: Option<String>,
    /// US Government jobs queue URL (FIFO); `None` in a commercial-only stack.
    pub usgov_url: Option<String>,
}

/// What a schedule run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduleSummary {
    /// The slot.
    pub slot: u64,
    /// Tenant items read (the registry's guard items are not tenants and are not counted).
    pub tenants: usize,
    /// Tenants skipped.
    pub skipped: usize,
    /// Registry items that could not be decoded.
    pub corrupt: usize,
    /// Jobs sent to the commercial queue.
    pub commercial_jobs: usize,
    /// Jobs sent to the US Government queue.
    pub usgov_jobs: usize,
    /// Jobs not sent because this stack does not run their tenant's poller group.
    pub unserved_jobs: usize,
    /// Jobs of quiet streams held back to a later slot (adaptive polling).
    pub quiet_jobs: usize,
    /// Registry pages read.
    pub registry_pages: usize,
    /// `SendMessageBatch` calls made, retries included.
    pub send_calls: usize,
}

/// Why a schedule run failed. A retry is safe: the deduplication ids repeat.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The registry could not be read.
    #[error("registry: {0}")]
    Registry(#[from] StoreError),
    /// Jobs could not be sent.
    #[error("jobs queue ({group}): {source}")]
    Send {
        /// The cloud group whose queue failed.
        group: CloudGroup,
        /// The failure.
        #[source]
        source: SqsError,
    },
    /// A job could not be encoded.
    #[error("{0}")]
    Job(#[from] JobError),
}

impl ScheduleError {
    /// A short stable label (the Lambda error type).
    pub fn kind(&self) -> &'static str {
        match self {
            ScheduleError::Registry(_) => "RegistryUnavailable",
            ScheduleError::Send { .. } => "JobsQueueSendFailed",
            ScheduleError::Job(_) => "JobEncodingFailed",
        }
    }
}

/// Pages through the registry and sends each page's jobs to both queues at once, batches
/// concurrently, while the next page is read. Returns an error if any job was not accepted
/// (after the sender's retries), so the schedule invocation is retried; duplicates are removed
/// by the deduplication ids.
pub async fn fan_out(
    registry: &DynamoRegistry,
    queues: &JobQueues,
    at: DateTime<Utc>,
    slot_secs: u64,
    cadence: &crate::schedule::Cadence,
    page_size: i32,
) -> Result<ScheduleSummary, ScheduleError> {
    let mut summary = ScheduleSummary {
        slot: slot_of(at, slot_secs),
        ..ScheduleSummary::default()
    };
    let mut page = registry.scan_page(None, page_size).await?;
    loop {
        summary.tenants += page.tenants.len() + page.corrupt;
        summary.corrupt += page.corrupt;
        summary.registry_pages += 1;
        let p = plan(&page.tenants, at, slot_secs, cadence);
        summary.skipped += p.skipped;
        summary.quiet_jobs += p.quiet;
        let encode = |jobs: &[JobMessage]| {
            jobs.iter()
                .map(JobMessage::to_message)
                .collect::<Result<Vec<_>, _>>()
        };
        let (commercial, usgov) = (encode(&p.commercial)?, encode(&p.usgov)?);
        let next = page.next.take();
        let read_next = async {
            match next {
                Some(k) => registry.scan_page(Some(k), page_size).await.map(Some),
                None => Ok(None),
            }
        };
        let (c, u, n) = tokio::join!(
            send_group(queues, CloudGroup::Commercial, commercial),
            send_group(queues, CloudGroup::UsGov, usgov),
            read_next,
        );
        let (c, u) = (c?, u?);
        summary.commercial_jobs += c.sent;
        summary.usgov_jobs += u.sent;
        summary.unserved_jobs += c.unserved + u.unserved;
        summary.send_calls += c.calls + u.calls;
        match n? {
            Some(p) => page = p,
            None => break,
        }
    }
    Ok(summary)
}

struct GroupSent {
    sent: usize,
    unserved: usize,
    calls: usize,
}

async fn send_group(
    queues: &JobQueues,
    group: CloudGroup,
    messages: Vec<OutMessage>,
) -> Result<GroupSent, ScheduleError> {
    if messages.is_empty() {
        return Ok(GroupSent {
            sent: 0,
            unserved: 0,
            calls: 0,
        });
    }
    let url = match group {
        CloudGroup::Commercial => queues.commercial_url.as_deref(),
        CloudGroup::UsGov => queues.usgov_url.as_deref(),
    };
    let Some(url) = url else {
        // Retrying cannot help: the registry holds tenants this stack does not serve.
        tracing::error!(
            group = %group,
            jobs = messages.len(),
            "tenants of a cloud group this stack does not run are registered; their jobs were not sent (deploy that group's stack, or offboard them)"
        );
        return Ok(GroupSent {
            sent: 0,
            unserved: messages.len(),
            calls: 0,
        });
    };
    let report = queues
        .sender
        .send_all(url, messages)
        .await
        .map_err(|source| ScheduleError::Send { group, source })?;
    Ok(GroupSent {
        sent: report.sent,
        unserved: 0,
        calls: report.calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Health;

    fn tenant(id: &str, cloud: Cloud, enabled: bool) -> TenantRecord {
        TenantRecord {
            tenant_id: id.into(),
            domain: None,
            org: None,
            cloud,
            app_ref: "default".into(),
            streams: Stream::ALL.to_vec(),
            include_noninteractive: false,
            enabled,
            health: Health::default(),
            created_at: DateTime::from_timestamp(0, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn quiet_streams_are_held_back_and_polled_within_the_maximum_staleness() {
        use crate::health::{HealthUpdate, apply_health};
        let cadence = crate::schedule::Cadence::default();
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        // Polled successfully all along, the last event delivered 5 hours ago.
        let mut quiet = tenant("q", Cloud::Global, true);
        for stream in Stream::ALL {
            for (h, delivered) in [(5, true), (0, false)] {
                quiet.health = apply_health(
                    &quiet.health,
                    &HealthUpdate::Success {
                        stream,
                        at: start - chrono::TimeDelta::hours(h),
                        newest_event: delivered.then_some(start),
                        throttled: false,
                    },
                );
            }
        }
        let mut jobs = 0;
        let mut held = 0;
        for i in 0..6 {
            let at = start + chrono::TimeDelta::seconds(300 * i);
            let p = plan(std::slice::from_ref(&quiet), at, 300, &cadence);
            jobs += p.commercial.len();
            held += p.quiet;
        }
        // Each stream once in the six slots of the 30-minute maximum staleness.
        assert_eq!(jobs, Stream::ALL.len());
        assert_eq!(held, 5 * Stream::ALL.len());
    }

    #[test]
    fn plan_routes_by_group_and_skips_disabled_and_offboarded() {
        let at = DateTime::from_timestamp(1_800_000_123, 0).unwrap_or_default();
        let mut off = tenant("d", Cloud::Global, true);
        off.health.state = HealthState::Offboarded;
        let p = plan(
            &[
                tenant("a", Cloud::Global, true),
                tenant("b", Cloud::GccHigh, true),
                tenant("c", Cloud::Dod, false),
                off,
                tenant("e", Cloud::Gcc, true),
            ],
            at,
            300,
            &crate::schedule::Cadence::default(),
        );
        // Every stream of a tenant is one job (new tenants: every stream is due).
        let per_tenant = Stream::ALL.len();
        assert_eq!(p.commercial.len(), 2 * per_tenant);
        assert_eq!(p.usgov.len(), per_tenant);
        assert_eq!(p.skipped, 2);
        assert!(p.usgov.iter().all(|j| j.tenant_id == "b"));
        let j = &p.commercial[0];
        assert_eq!(j.slot, 1_800_000_123 / 300);
        assert_eq!(j.group_id(), "a#reports");
        let audits = p
            .commercial
            .iter()
            .find(|j| j.tenant_id == "a" && j.stream == Stream::DirectoryAudits)
            .map(JobMessage::group_id);
        assert_eq!(
            audits.as_deref(),
            Some("a#reports"),
            "one reporting limit, one group"
        );
        let unified = p
            .commercial
            .iter()
            .find(|j| j.tenant_id == "a" && j.stream == Stream::UnifiedAudit)
            .map(JobMessage::group_id);
        assert_eq!(unified.as_deref(), Some("a#unified_audit"));
        assert_eq!(j.dedup_id(), format!("a#signins#{}", 1_800_000_123 / 300));
        let m = j.to_message().map_err(|e| e.to_string());
        assert_eq!(
            m.as_ref().map(|m| m.dedup_id.clone()),
            Ok(Some(j.dedup_id()))
        );
        let back = m.and_then(|m| JobMessage::parse(&m.body).map_err(|e| e.to_string()));
        assert_eq!(back.as_ref(), Ok(j));
    }

    #[test]
    fn same_slot_same_dedup_id() {
        let a = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let b = DateTime::from_timestamp(1_800_000_299, 0).unwrap_or_default();
        let c = DateTime::from_timestamp(1_800_000_300, 0).unwrap_or_default();
        assert_eq!(slot_of(a, 300), slot_of(b, 300));
        assert_ne!(slot_of(b, 300), slot_of(c, 300));
    }

    #[test]
    fn malformed_jobs_are_refused() {
        for body in [
            "",
            "{}",
            r#"{"v":2,"tenant_id":"a","cloud":"global","stream":"signins","slot":1,"scheduled_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"v":1,"tenant_id":"a","cloud":"mars","stream":"signins","slot":1,"scheduled_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"v":1,"tenant_id":"a","cloud":"global","stream":"signins","slot":1,"scheduled_at":"2026-01-01T00:00:00Z","x":1}"#,
        ] {
            assert!(JobMessage::parse(body).is_err(), "{body}");
        }
    }
}
