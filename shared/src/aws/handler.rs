//! The Lambda handlers as library functions, and the contexts they run with (built once per
//! cold start, reused by every warm invocation).
//!
//! Poller ([`handle_jobs`]): jobs of a batch run one at a time, against one deadline: the
//! Lambda's remaining time less a margin kept for delivering and committing what was fetched.
//! Per job:
//! 1. parse the body; refuse a job of another cloud group (sovereignty) before reading anything;
//! 2. read the tenant from the registry (skip it if gone, disabled or offboarded; refuse it if
//!    its registered cloud belongs to another group);
//! 3. credential from Secrets Manager (cached), token, then [`poll`]: fetch, send, commit;
//! 4. record the tenant's health.
//!
//! What goes into `batchItemFailures` (SQS redelivers it after the visibility timeout, and
//! moves it to the jobs DLQ after the queue's `maxReceiveCount`):
//! - refused jobs (wrong cloud group) and malformed bodies: they need an operator;
//! - infrastructure failures where an early retry helps (registry, cursor store, sink, Secrets
//!   Manager unavailable);
//! - jobs not started because the batch ran out of time.
//!
//! A poll failing on the tenant's side (throttled, consent revoked, licence missing, bad
//! credential) is recorded in the tenant's health and the message is acknowledged: the next
//! schedule slot polls again, and the cursor makes sure nothing is lost meanwhile. A poll that
//! stops at the deadline commits exactly what it delivered and succeeds.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::config::{ConfigError, PollerConfig, SchedulerConfig};
use super::dynamo::{DynamoCursorStore, DynamoRegistry};
use super::jobs::{JobMessage, JobQueues, ScheduleError, ScheduleSummary, fan_out};
use super::secrets::{CredentialSource, SecretError, SecretsManagerSource};
use super::sqs::{SqsDeadLetterSink, SqsEventSink, SqsSender};
use crate::auth::{PerTenantTokens, TokenClient};
use crate::clock::{SharedClock, to_delta};
use crate::cloud::CloudGroup;
use crate::graph::{GraphClient, Pacer, Rate};
use crate::http::{Transport, TransportError};
use crate::poll::{PollContext, PollError, PollJob, poll};
use crate::store::{HealthState, HealthUpdate, StoreError, TenantRegistry};

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
    /// Tenant registry.
    pub registry: Arc<dyn TenantRegistry>,
    /// App credentials.
    pub credentials: Arc<dyn CredentialSource>,
    /// Token source the Graph client uses; the job's tenant is mapped to its app before polling.
    pub tokens: Arc<PerTenantTokens>,
    /// The poll adapters and tunables.
    pub poll: PollContext,
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
    /// clients from `sdk`, one HTTP transport, token client and Graph client, a per-tenant
    /// pacer (Microsoft's 5 per 10 s) and this instance's app-wide budget.
    pub fn from_config(
        cfg: &PollerConfig,
        sdk: &SdkConfig,
        clock: SharedClock,
    ) -> Result<Self, InitError> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = SqsSender::new(aws_sdk_sqs::Client::new(sdk));
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let transport = Transport::new(GRAPH_REQUEST_TIMEOUT, cfg.endpoint_override.clone())?;
        let tokens = Arc::new(PerTenantTokens::new(TokenClient::new(
            transport.clone(),
            clock.clone(),
        )));
        let graph = Arc::new(
            GraphClient::new(
                transport,
                tokens.clone(),
                clock.clone(),
                Pacer::new(clock.clone(), Rate::REPORTS_PER_TENANT, None),
            )
            .with_budget(app_budget(clock.clone(), cfg.app_rate())),
        );
        Ok(Self {
            group: cfg.cloud_group,
            registry: Arc::new(DynamoRegistry::new(ddb.clone(), &cfg.registry_table)),
            credentials: Arc::new(SecretsManagerSource::new(
                secrets,
                &cfg.secret_prefix,
                cfg.cloud_group,
                cfg.secret_ttl(),
                clock.clone(),
            )),
            tokens,
            poll: PollContext {
                graph,
                cursors: Arc::new(DynamoCursorStore::new(ddb, &cfg.cursor_table)),
                sink: Arc::new(SqsEventSink::new(sqs.clone(), &cfg.events_queue_url)),
                dead_letters: Arc::new(SqsDeadLetterSink::new(sqs, &cfg.dead_letters_queue_url)),
                config: cfg.poll.clone(),
                hook: None,
            },
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

/// How one job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Polled (completely or up to the deadline) and committed.
    Polled,
    /// Acknowledged without polling (tenant gone, disabled or offboarded).
    Skipped,
    /// The poll failed on the tenant's side; recorded in health and acknowledged.
    TenantFailure,
    /// Reported in `batchItemFailures`.
    Failed,
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
        if run_job(ctx, record, deadline).await == JobStatus::Failed {
            resp.add_failure(id);
        }
    }
    resp
}

/// Runs one job and says how it ended (logging the reason).
pub async fn run_job(
    ctx: &PollerContext,
    record: &SqsMessage,
    deadline: DateTime<Utc>,
) -> JobStatus {
    let id = record.message_id.as_deref().unwrap_or_default();
    let job = match JobMessage::parse(record.body.as_deref().unwrap_or_default()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(message_id = %id, reason = %e, "job refused: malformed message");
            return JobStatus::Failed;
        }
    };
    let span =
        tracing::info_span!("job", tenant = %job.tenant_id, stream = %job.stream, slot = job.slot);
    let _g = span.enter();
    if job.cloud.group() != ctx.group {
        tracing::error!(
            message_id = %id,
            cloud = job.cloud.as_str(),
            poller_group = ctx.group.as_str(),
            reason = "cloud_group_mismatch",
            "job refused: the tenant's cloud belongs to another cloud group (sovereignty); check the scheduler's queue routing"
        );
        return JobStatus::Failed;
    }
    let tenant = match ctx.registry.get(&job.tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::info!("tenant is no longer registered; job dropped");
            return JobStatus::Skipped;
        }
        Err(e) => {
            tracing::warn!(error = %e, "registry read failed; job left for redelivery");
            return JobStatus::Failed;
        }
    };
    if tenant.cloud.group() != ctx.group {
        tracing::error!(
            message_id = %id,
            cloud = tenant.cloud.as_str(),
            poller_group = ctx.group.as_str(),
            reason = "cloud_group_mismatch",
            "job refused: the registered tenant's cloud belongs to another cloud group (sovereignty)"
        );
        return JobStatus::Failed;
    }
    if !tenant.enabled || tenant.health.state == HealthState::Offboarded {
        tracing::info!("tenant is disabled or offboarded; job dropped");
        return JobStatus::Skipped;
    }
    if !tenant.streams.contains(&job.stream) {
        tracing::info!("stream is no longer enabled for the tenant; job dropped");
        return JobStatus::Skipped;
    }
    let app = match ctx.credentials.app_credential(&tenant.app_ref).await {
        Ok(a) => a,
        Err(e) => return credential_failure(ctx, &job, &e).await,
    };
    ctx.tokens.set(&tenant.tenant_id, app);
    let throttled_before = ctx.poll.graph.stats(&tenant.tenant_id).throttled;
    let started = std::time::Instant::now();
    let pjob = PollJob {
        tenant_id: tenant.tenant_id.clone(),
        cloud: tenant.cloud,
        stream: job.stream,
        include_noninteractive: tenant.include_noninteractive,
        retention_days: tenant.health.retention_days,
    };
    let result = poll(&ctx.poll, &pjob, deadline).await;
    let throttled = ctx.poll.graph.stats(&tenant.tenant_id).throttled > throttled_before;
    let now = ctx.clock.now();
    match result {
        Ok(o) => {
            tracing::info!(
                fetched = o.fetched,
                emitted = o.emitted,
                duplicates = o.duplicates_filtered,
                dead_lettered = o.dead_lettered,
                slices = o.slices,
                pass_complete = o.pass_complete,
                stopped_at_deadline = o.stopped_at_deadline,
                throttled,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job polled"
            );
            record_health(
                ctx,
                &tenant.tenant_id,
                HealthUpdate::Success {
                    at: now,
                    newest_event: o.newest_event,
                    throttled,
                },
            )
            .await;
            JobStatus::Polled
        }
        Err(f) => {
            let kind = f.error.kind();
            let redeliver = matches!(
                f.error,
                PollError::Sink(_) | PollError::Store(StoreError::Backend(_))
            );
            if redeliver {
                tracing::warn!(kind, error = %f.error, emitted = f.progress.emitted, "poll failed on our side; job left for redelivery");
            } else {
                tracing::warn!(kind, error = %f.error, emitted = f.progress.emitted, "poll failed; recorded in tenant health");
            }
            if !matches!(f.error, PollError::Store(StoreError::Conflict { .. })) {
                record_health(
                    ctx,
                    &tenant.tenant_id,
                    HealthUpdate::Failure {
                        at: now,
                        kind: kind.to_string(),
                        state: f.error.health_state(),
                    },
                )
                .await;
            }
            if redeliver {
                JobStatus::Failed
            } else {
                JobStatus::TenantFailure
            }
        }
    }
}

async fn credential_failure(ctx: &PollerContext, job: &JobMessage, e: &SecretError) -> JobStatus {
    if e.is_retryable() {
        tracing::warn!(kind = e.kind(), error = %e, "credential unavailable; job left for redelivery");
        return JobStatus::Failed;
    }
    tracing::error!(kind = e.kind(), error = %e, "credential unusable; operator action needed");
    record_health(
        ctx,
        &job.tenant_id,
        HealthUpdate::Failure {
            at: ctx.clock.now(),
            kind: e.kind().to_string(),
            state: HealthState::CredentialsExpired,
        },
    )
    .await;
    JobStatus::TenantFailure
}

async fn record_health(ctx: &PollerContext, tenant_id: &str, update: HealthUpdate) {
    match ctx.registry.update_health(tenant_id, &update).await {
        Ok(h) => {
            // The stack's TenantsUnhealthy alarm reads this line (Embedded Metric Format).
            println!(
                "{}",
                crate::aws::metrics::tenants_unhealthy_line(
                    ctx.group,
                    crate::aws::metrics::is_unhealthy(&h),
                    ctx.clock.now()
                )
            );
        }
        Err(e) => tracing::warn!(error = %e, "tenant health could not be recorded"),
    }
}

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
    /// The clock used when the event carries no time.
    pub clock: SharedClock,
}

impl SchedulerContext {
    /// Builds the context from a validated configuration.
    pub fn from_config(cfg: &SchedulerConfig, sdk: &SdkConfig, clock: SharedClock) -> Self {
        Self {
            registry: DynamoRegistry::new(aws_sdk_dynamodb::Client::new(sdk), &cfg.registry_table),
            queues: JobQueues {
                sender: SqsSender::new(aws_sdk_sqs::Client::new(sdk)),
                commercial_url: cfg.jobs_queue_commercial_url.clone(),
                usgov_url: cfg.jobs_queue_usgov_url.clone(),
            },
            slot_secs: cfg.slot_secs,
            page_size: 100,
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
    match fan_out(&ctx.registry, &ctx.queues, at, ctx.slot_secs, ctx.page_size).await {
        Ok(s) => {
            tracing::info!(
                slot = s.slot,
                tenants = s.tenants,
                skipped = s.skipped,
                corrupt = s.corrupt,
                commercial_jobs = s.commercial_jobs,
                usgov_jobs = s.usgov_jobs,
                unserved_jobs = s.unserved_jobs,
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
