//! The one job runner: used by the Lambda pollers and by `itdr run` alike, so both follow the
//! same rules.
//!
//! A job is one (tenant, stream). The runner:
//! 1. refuses a job whose scheduled cloud belongs to a group this deployment does not serve
//!    (sovereignty), before reading anything;
//! 2. reads the tenant from the registry: skips it if gone, disabled or offboarded, or if the
//!    stream is no longer enabled; refuses it if its registered cloud is of another group;
//! 3. primes the credential of the tenant's app (from the [`CredentialSource`]);
//! 4. polls ([`crate::poll::poll`]): fetch, deliver, commit;
//! 5. turns the outcome into exactly one [`Disposition`] and records the tenant's health.
//!
//! Which failure leads where is decided in one place, [`handling`], by an exhaustive match on
//! [`FailureKind`]: a new kind does not compile until someone decides whether it is redelivered,
//! recorded in health, or ignored.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::auth::{CredentialSource, PerTenantTokens};
use crate::cloud::{Cloud, CloudGroup};
use crate::health::{FailureKind, HealthState, HealthUpdate};
use crate::poll::{PollContext, PollJob, PollOutcome, poll};
use crate::store::TenantRegistry;
use crate::stream::Stream;
use crate::telemetry::{Event, RefusalReason, Telemetry};

/// Everything a job needs, built once per process (a Lambda container, an `itdr run`).
#[derive(Clone)]
pub struct JobEnv {
    /// The cloud groups this deployment serves here (a poller serves one).
    pub served: Vec<CloudGroup>,
    /// Tenant registry.
    pub registry: Arc<dyn TenantRegistry>,
    /// App credentials by the tenant's `app_ref`.
    pub credentials: Arc<dyn CredentialSource>,
    /// The token source of the poll context's client: the tenant's app is set here.
    pub tokens: Arc<PerTenantTokens>,
    /// The poll adapters and tunables.
    pub poll: PollContext,
    /// Where named events go.
    pub telemetry: Arc<dyn Telemetry>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// Tenant GUID.
    pub tenant_id: String,
    /// The stream to poll.
    pub stream: Stream,
    /// The tenant's cloud when the job was scheduled, if the job says.
    pub cloud: Option<Cloud>,
    /// The queue message that carried the job, if any (for logs and refusals).
    pub message_id: Option<String>,
}

/// What to do with the job's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: acknowledge it (health was recorded where it applies).
    Acknowledge,
    /// Leave it for redelivery: our side failed and an early retry may help.
    Redeliver,
    /// Refused: an operator must act (sovereignty); it goes on to the dead-letter queue.
    Refuse,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Polled, completely or up to the deadline, and committed.
    Polled,
    /// Not polled: the tenant is gone, disabled or offboarded, or the stream is off.
    Skipped,
    /// The poll failed; recorded in the tenant's health.
    Failed(FailureKind),
    /// Another poller committed the cursor first.
    Conflicted,
    /// Our side failed; left for redelivery.
    Deferred(FailureKind),
    /// Refused before reading anything.
    Refused(RefusalReason),
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// What to do with the message.
    pub disposition: Disposition,
    /// How it ended.
    pub status: JobStatus,
    /// What the poll did (on failure, what it did before).
    pub outcome: PollOutcome,
    /// The tenant's state after the job, when health was recorded.
    pub health: Option<HealthState>,
}

impl JobReport {
    fn new(disposition: Disposition, status: JobStatus) -> Self {
        JobReport {
            disposition,
            status,
            outcome: PollOutcome::default(),
            health: None,
        }
    }
}

/// What a failure of a kind means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Our infrastructure failed; the job is redelivered (nothing was committed past what was
    /// delivered, so retrying early loses nothing).
    Redeliver,
    /// Another poller won the cursor; it records the health. Acknowledge, record nothing.
    Ignore,
    /// Microsoft was unavailable; record the tenant's health and acknowledge (the next
    /// schedule slot polls again; the cursor makes sure nothing is lost meanwhile).
    RecordUnavailable,
    /// A problem on the tenant's side (consent, licence, permission, credential); record it
    /// and acknowledge.
    RecordTenantFailure,
}

/// The one place that decides what a failure means for a job.
pub fn handling(kind: FailureKind) -> Handling {
    match kind {
        FailureKind::Store
        | FailureKind::Sink
        | FailureKind::SecretBackend
        | FailureKind::Crash => Handling::Redeliver,
        FailureKind::CursorConflict => Handling::Ignore,
        FailureKind::Throttled
        | FailureKind::Transient
        | FailureKind::Decode
        | FailureKind::ResponseTooLarge
        | FailureKind::ForeignLink
        | FailureKind::Deadline
        | FailureKind::Transport
        | FailureKind::UnexpectedStatus
        | FailureKind::MalformedToken
        | FailureKind::ContentUnavailable => Handling::RecordUnavailable,
        FailureKind::Unauthorized
        | FailureKind::ConsentRevoked
        | FailureKind::LicenceRequired
        | FailureKind::Forbidden
        | FailureKind::NotFound
        | FailureKind::BadRequest
        | FailureKind::Unsupported
        | FailureKind::AuditingDisabled
        | FailureKind::SubscriptionMissing
        | FailureKind::SubscriptionDisabled
        | FailureKind::BadCredential
        | FailureKind::InvalidTenant
        | FailureKind::ScopeUnavailable
        | FailureKind::AppNotInTenant
        | FailureKind::ConsentMissing
        | FailureKind::AppDisabled
        | FailureKind::InvalidSecret
        | FailureKind::SecretExpired
        | FailureKind::InvalidCertificate
        | FailureKind::TenantNotFound
        | FailureKind::WrongCloud
        | FailureKind::AssertionRejected
        | FailureKind::CredentialCloudMismatch
        | FailureKind::Rejected
        | FailureKind::SecretBadReference
        | FailureKind::SecretNotFound
        | FailureKind::SecretAccessDenied
        | FailureKind::SecretMalformed
        | FailureKind::SecretBadCertificate
        | FailureKind::Cursor
        | FailureKind::Config
        | FailureKind::Preflight(_)
        | FailureKind::Unrecognized => Handling::RecordTenantFailure,
    }
}

/// Runs one job until `deadline` and says what to do with its message.
pub async fn run_job(env: &JobEnv, req: &JobRequest, deadline: DateTime<Utc>) -> JobReport {
    let clock = env.poll.client.clock().clone();
    let message_id = req.message_id.as_deref().unwrap_or_default();
    let refuse = || {
        env.telemetry.emit(
            &Event::JobRefused {
                reason: RefusalReason::CloudGroupMismatch,
                message_id,
            },
            clock.now(),
        );
        JobReport::new(
            Disposition::Refuse,
            JobStatus::Refused(RefusalReason::CloudGroupMismatch),
        )
    };
    if let Some(cloud) = req.cloud
        && !env.served.contains(&cloud.group())
    {
        tracing::error!(tenant = %req.tenant_id, cloud = cloud.as_str(), "the job's cloud belongs to another cloud group (sovereignty); check the scheduler's queue routing");
        return refuse();
    }
    let tenant = match env.registry.get(&req.tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::info!(tenant = %req.tenant_id, "tenant is no longer registered; job dropped");
            return JobReport::new(Disposition::Acknowledge, JobStatus::Skipped);
        }
        Err(e) => {
            tracing::warn!(tenant = %req.tenant_id, error = %e, "registry read failed");
            return deferred(env, req, FailureKind::Store, PollOutcome::default());
        }
    };
    if !env.served.contains(&tenant.cloud.group()) {
        tracing::error!(tenant = %req.tenant_id, cloud = tenant.cloud.as_str(), "the registered tenant's cloud belongs to another cloud group (sovereignty)");
        return refuse();
    }
    if !tenant.enabled || tenant.health.state == HealthState::Offboarded {
        tracing::info!(tenant = %req.tenant_id, "tenant is disabled or offboarded; job dropped");
        return JobReport::new(Disposition::Acknowledge, JobStatus::Skipped);
    }
    if !tenant.streams.contains(&req.stream) {
        tracing::info!(tenant = %req.tenant_id, stream = %req.stream, "stream is no longer enabled for the tenant; job dropped");
        return JobReport::new(Disposition::Acknowledge, JobStatus::Skipped);
    }
    let app = match env.credentials.app_credential(&tenant.app_ref).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(tenant = %req.tenant_id, kind = %e.kind(), error = %e, "app credential unavailable");
            return failed(env, req, e.kind(), PollOutcome::default()).await;
        }
    };
    env.tokens.set(&tenant.tenant_id, app);
    let job = PollJob {
        tenant_id: tenant.tenant_id.clone(),
        cloud: tenant.cloud,
        stream: req.stream,
        include_noninteractive: tenant.include_noninteractive,
        retention_days: tenant.health.retention_days,
    };
    let started = std::time::Instant::now();
    match poll(&env.poll, &job, deadline).await {
        Ok(outcome) => {
            env.telemetry.emit(
                &Event::PollCompleted {
                    tenant: &req.tenant_id,
                    stream: req.stream,
                    outcome: &outcome,
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                },
                clock.now(),
            );
            let update = HealthUpdate::Success {
                stream: req.stream,
                at: clock.now(),
                newest_event: outcome.newest_event,
                // Microsoft answered 429 at least once; the stream shows degraded when that
                // persists over several polls.
                throttled: outcome.throttled > 0,
            };
            let health = record_health(env, &req.tenant_id, &update).await;
            JobReport {
                disposition: Disposition::Acknowledge,
                status: JobStatus::Polled,
                outcome,
                health,
            }
        }
        Err(f) => failed(env, req, f.error.kind(), f.progress).await,
    }
}

fn deferred(env: &JobEnv, req: &JobRequest, kind: FailureKind, outcome: PollOutcome) -> JobReport {
    env.telemetry.emit(
        &Event::JobDeferred {
            tenant: &req.tenant_id,
            stream: req.stream,
            kind,
        },
        env.poll.client.clock().now(),
    );
    JobReport {
        outcome,
        ..JobReport::new(Disposition::Redeliver, JobStatus::Deferred(kind))
    }
}

async fn failed(
    env: &JobEnv,
    req: &JobRequest,
    kind: FailureKind,
    outcome: PollOutcome,
) -> JobReport {
    let now = env.poll.client.clock().now();
    let emitted = outcome.emitted;
    match handling(kind) {
        Handling::Redeliver => deferred(env, req, kind, outcome),
        Handling::Ignore => {
            env.telemetry.emit(
                &Event::CursorConflicted {
                    tenant: &req.tenant_id,
                    stream: req.stream,
                },
                now,
            );
            JobReport {
                outcome,
                ..JobReport::new(Disposition::Acknowledge, JobStatus::Conflicted)
            }
        }
        h @ (Handling::RecordUnavailable | Handling::RecordTenantFailure) => {
            let event = if h == Handling::RecordUnavailable {
                Event::SourceUnavailable {
                    tenant: &req.tenant_id,
                    stream: req.stream,
                    kind,
                    emitted,
                }
            } else {
                Event::PollFailed {
                    tenant: &req.tenant_id,
                    stream: req.stream,
                    kind,
                    emitted,
                }
            };
            env.telemetry.emit(&event, now);
            let update = HealthUpdate::Failure {
                stream: req.stream,
                at: now,
                kind,
            };
            let health = record_health(env, &req.tenant_id, &update).await;
            JobReport {
                disposition: Disposition::Acknowledge,
                status: JobStatus::Failed(kind),
                outcome,
                health,
            }
        }
    }
}

async fn record_health(env: &JobEnv, tenant: &str, update: &HealthUpdate) -> Option<HealthState> {
    match env.registry.update_health(tenant, update).await {
        Ok(h) => {
            env.telemetry.emit(
                &Event::TenantHealthRecorded {
                    tenant,
                    state: h.state,
                },
                env.poll.client.clock().now(),
            );
            Some(h.state)
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "tenant health could not be recorded");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_failures_are_redelivered() {
        for k in FailureKind::SIMPLE {
            let h = handling(k);
            let ours = matches!(
                k,
                FailureKind::Store
                    | FailureKind::Sink
                    | FailureKind::SecretBackend
                    | FailureKind::Crash
            );
            assert_eq!(h == Handling::Redeliver, ours, "{k:?}");
        }
        assert_eq!(handling(FailureKind::CursorConflict), Handling::Ignore);
        assert_eq!(
            handling(FailureKind::ConsentRevoked),
            Handling::RecordTenantFailure
        );
        assert_eq!(
            handling(FailureKind::Transient),
            Handling::RecordUnavailable
        );
    }
}
