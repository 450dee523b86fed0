//! The Lambda handlers as library functions, and the contexts they run with (built once per
//! cold start, reused by every warm invocation).
//!
//! Poller ([`handle_jobs`]): jobs of a batch run one at a time, against one deadline: the
//! Lambda's remaining time less a margin kept for delivering and committing what was fetched.
//! Each job goes through the library's one job runner ([`crate::runner::run_job`]), the same
//! as `itdr run`; its [`Disposition`] decides the message's fate:
//! - `Acknowledge`: done. A poll that failed on the tenant's side (throttled, consent revoked,
//!   licence missing, bad credential) is recorded in the tenant's health and acknowledged: the
//!   next schedule slot polls again, and the cursor makes sure nothing is lost meanwhile. A
//!   poll that stops at the deadline commits exactly what it delivered and succeeds.
//! - `Redeliver` and `Refuse` go into `batchItemFailures` (SQS redelivers the message after
//!   the visibility timeout, and moves it to the jobs DLQ after the queue's
//!   `maxReceiveCount`): infrastructure failures where an early retry helps (registry, cursor
//!   store, sink, Secrets Manager unavailable), and refused jobs (another cloud group's, or a
//!   malformed body), which need an operator.
//!
//! Jobs not started because the batch ran out of time are left for redelivery too.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};

use super::config::{ConfigError, PollerConfig, SchedulerConfig};
use super::dynamo::{DynamoCursorStore, DynamoRegistry};
use super::jobs::{JobMessage, JobQueues, ScheduleError, ScheduleSummary, fan_out};
use super::secrets::SecretsManagerSource;
use super::sqs::{SqsDeadLetterSink, SqsEventSink, SqsSender};
use crate::client::{Pacer, Rate};
use crate::clock::{SharedClock, to_delta};
use crate::cloud::CloudGroup;
use crate::http::TransportError;
use crate::poll::PollContext;
use crate::runner::{Disposition, JobEnv, JobReport, JobRequest, run_job};
use crate::stack::StackBuilder;
use crate::telemetry::{EmfTelemetry, Event, RefusalReason};

/// Time kept back from the Lambda's remaining time for delivering and committing the last
/// slice, at most a quarter of the remaining time.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Per-request timeout of Microsoft calls.
pub const GRAPH_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure building a context at cold start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The environment is not a valid configuration.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Transport(#[from] TransportError),
}

impl InitError {
    /// A short stable label (the Lambda error type).
    pub fn kind(&self) -> &'static str {
        match self {
            InitError::Config(_) => "InvalidConfiguration",
            InitError::Transport(_) => "HttpClientInit",
        }
    }
}

/// Everything a poller invocation needs, built once per container.
pub struct PollerContext {
    /// The cloud group this poller serves.
    pub group: CloudGroup,
    /// What every job runs with.
    pub env: JobEnv,
    /// The clock deadlines are measured on.
    pub clock: SharedClock,
    /// Time kept back from the remaining time (capped at a quarter of it).
    pub deadline_margin: Duration,
}

impl std::fmt::Debug for PollerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerContext")
            .field("group", &self.group)
            .field("deadline_margin", &self.deadline_margin)
            .finish_non_exhaustive()
    }
}

impl PollerContext {
    /// Builds the context from a validated configuration: DynamoDB, SQS and Secrets Manager
    /// clients from `sdk`, the client stack (one transport, token client and API client, a
    /// per-tenant pacer and this instance's app-wide budget), and EMF telemetry.
    pub fn from_config(
        cfg: &PollerConfig,
        sdk: &SdkConfig,
        clock: SharedClock,
    ) -> Result<Self, InitError> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = SqsSender::new(aws_sdk_sqs::Client::new(sdk));
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let stack = StackBuilder::new(clock.clone())
            .endpoint_override(cfg.endpoint_override.clone())
            .request_timeout(GRAPH_REQUEST_TIMEOUT)
            .budget(app_budget(clock.clone(), cfg.app_rate()))
            .publisher_id(cfg.publisher_id.clone())
            .build()?;
        let telemetry: Arc<dyn crate::telemetry::Telemetry> = Arc::new(EmfTelemetry {
            group: cfg.cloud_group,
        });
        let cursors = Arc::new(DynamoCursorStore::new(ddb.clone(), &cfg.cursor_table));
        // Delivered sign-ins also go into the daily digest the report function reads.
        let sink = Arc::new(crate::assess::digest::DigestSink::new(
            Arc::new(SqsEventSink::new(sqs.clone(), &cfg.events_queue_url)),
            cursors.clone(),
            telemetry.clone(),
            clock.clone(),
        ));
        let env = JobEnv {
            served: vec![cfg.cloud_group],
            registry: Arc::new(DynamoRegistry::new(ddb.clone(), &cfg.registry_table)),
            credentials: Arc::new(SecretsManagerSource::new(
                secrets,
                &cfg.secret_prefix,
                cfg.cloud_group,
                cfg.secret_ttl(),
                clock.clone(),
            )),
            tokens: stack.tokens.clone(),
            poll: PollContext {
                client: stack.client.clone(),
                cursors,
                sink,
                dead_letters: Arc::new(SqsDeadLetterSink::new(sqs, &cfg.dead_letters_queue_url)),
                config: cfg.poll.clone(),
                hook: None,
            },
            telemetry,
        };
        Ok(Self {
            group: cfg.cloud_group,
            env,
            clock,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        })
    }
}

/// The process-wide app budget: `rate` across every tenant, and a bucket that an app-scoped
/// 429 blocks until its `Retry-After`.
pub fn app_budget(clock: SharedClock, rate: Rate) -> Arc<Pacer> {
    // The budget is keyed by one empty tenant name; its per-tenant window is unlimited.
    let unlimited = Rate {
        requests: u32::MAX,
        window: rate.window,
    };
    Pacer::new(clock, unlimited, Some(rate))
}

/// Runs a batch of poll jobs. Jobs run one at a time; every message ends either acknowledged
/// or in `batchItemFailures`, so one bad job never fails the batch.
pub async fn handle_jobs(
    event: SqsEvent,
    ctx: &PollerContext,
    remaining: Duration,
) -> SqsBatchResponse {
    let margin = ctx.deadline_margin.min(remaining / 4);
    let deadline = ctx.clock.now() + to_delta(remaining.saturating_sub(margin));
    let mut resp = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if ctx.clock.now() >= deadline {
            tracing::warn!(message_id = %id, "out of time before the job started; left for redelivery");
            resp.add_failure(id);
            continue;
        }
        let disposition = run_message(ctx, record, deadline)
            .await
            .map_or(Disposition::Refuse, |r| r.disposition);
        if disposition != Disposition::Acknowledge {
            resp.add_failure(id);
        }
    }
    resp
}

/// Runs the job of one message: `None` when the body is not a job (refused).
pub async fn run_message(
    ctx: &PollerContext,
    record: &SqsMessage,
    deadline: DateTime<Utc>,
) -> Option<JobReport> {
    let id = record.message_id.as_deref().unwrap_or_default();
    let job = match JobMessage::parse(record.body.as_deref().unwrap_or_default()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(message_id = %id, reason = %e, "malformed job message");
            ctx.env.telemetry.emit(
                &Event::JobRefused {
                    reason: RefusalReason::Malformed,
                    message_id: id,
                },
                ctx.clock.now(),
            );
            return None;
        }
    };
    let req = JobRequest {
        tenant_id: job.tenant_id.clone(),
        stream: job.stream,
        cloud: Some(job.cloud),
        message_id: Some(id.to_string()),
    };
    let span = tracing::info_span!("job", tenant = %job.tenant_id, stream = %job.stream, slot = job.slot, message_id = %id);
    Some(tracing::Instrument::instrument(run_job(&ctx.env, &req, deadline), span).await)
}

/// Tenants per registry page the scheduler reads (DynamoDB also ends a page at 1 MB). The next
/// page is read while the jobs of this one are sent.
pub const SCHEDULER_PAGE_SIZE: i32 = 1000;

/// `SendMessageBatch` calls in flight per jobs queue: 10,000 tenants are up to 30,000 jobs in
/// 3,000 batches, which 32 at a time send in about 94 round trips (the jobs queues are
/// high-throughput FIFO queues, whose limit is per message group; `infra/README.md`).
pub const SCHEDULER_SEND_CONCURRENCY: usize = 32;

/// Everything a scheduler invocation needs, built once per container.
#[derive(Debug, Clone)]
pub struct SchedulerContext {
    /// The registry.
    pub registry: DynamoRegistry,
    /// The jobs queues.
    pub queues: JobQueues,
    /// Slot length in seconds.
    pub slot_secs: u64,
    /// Registry page size.
    pub page_size: i32,
    /// Adaptive polling of quiet streams.
    pub cadence: crate::schedule::Cadence,
    /// The clock used when the event carries no time.
    pub clock: SharedClock,
}

impl SchedulerContext {
    /// Builds the context from a validated configuration.
    pub fn from_config(cfg: &SchedulerConfig, sdk: &SdkConfig, clock: SharedClock) -> Self {
        Self {
            registry: DynamoRegistry::new(aws_sdk_dynamodb::Client::new(sdk), &cfg.registry_table),
            queues: JobQueues {
                sender: SqsSender::new(aws_sdk_sqs::Client::new(sdk))
                    .with_concurrency(SCHEDULER_SEND_CONCURRENCY),
                commercial_url: cfg.jobs_queue_commercial_url.clone(),
                usgov_url: cfg.jobs_queue_usgov_url.clone(),
            },
            slot_secs: cfg.slot_secs,
            page_size: SCHEDULER_PAGE_SIZE,
            cadence: cfg.cadence,
            clock,
        }
    }
}

/// The schedule time of a scheduler event: the `time` of an EventBridge scheduled event (or
/// of an EventBridge Scheduler input carrying `<aws.scheduler.scheduled-time>` as `time`), so
/// a retried invocation lands in the same slot; the clock's time otherwise.
pub fn schedule_time(event: &serde_json::Value, clock: &SharedClock) -> DateTime<Utc> {
    event
        .get("time")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| clock.now())
}

/// The scheduler handler: one job per (tenant, stream) to the tenant's group's jobs queue.
pub async fn handle_schedule(
    event: serde_json::Value,
    ctx: &SchedulerContext,
) -> Result<ScheduleSummary, ScheduleError> {
    let at = schedule_time(&event, &ctx.clock);
    let started = std::time::Instant::now();
    match fan_out(
        &ctx.registry,
        &ctx.queues,
        at,
        ctx.slot_secs,
        &ctx.cadence,
        ctx.page_size,
    )
    .await
    {
        Ok(s) => {
            tracing::info!(
                slot = s.slot,
                tenants = s.tenants,
                skipped = s.skipped,
                corrupt = s.corrupt,
                commercial_jobs = s.commercial_jobs,
                usgov_jobs = s.usgov_jobs,
                unserved_jobs = s.unserved_jobs,
                registry_pages = s.registry_pages,
                send_calls = s.send_calls,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "jobs scheduled"
            );
            Ok(s)
        }
        Err(e) => {
            tracing::error!(kind = e.kind(), error = %e, "scheduling failed; the invocation will be retried");
            Err(e)
        }
    }
}
