//! The actions functions (`functions/actions`, `functions/actions-gcch`): response actions on
//! AWS, one function per cloud group, fed by its own queue and invokable directly.
//!
//! # The request
//!
//! One JSON object, the body of a message on the group's actions queue or the payload of a
//! direct invocation (unknown keys are refused):
//!
//! ```json
//! {
//!   "request_id": "case-4711-contain",
//!   "tenant": "contoso.onmicrosoft.us",
//!   "cloud": "gcc_high",
//!   "user": "j.doe@contoso.onmicrosoft.us",
//!   "action": "contain",
//!   "reason": "SOC case 4711: impossible travel, then a rule forwarding invoices outside",
//!   "requester": "analyst@soc.example",
//!   "dry_run": false
//! }
//! ```
//!
//! - `tenant`: the registered tenant's GUID or domain. Its registered cloud routes every call.
//! - `cloud` (optional): the cloud the sender believes the tenant is in; a request whose cloud
//!   differs from the registered one is refused.
//! - `user`: object id or user principal name.
//! - `action`: a name (`disable_account`, `enable_account`, `revoke_sessions`,
//!   `disable_forwarding_rules`, `remove_mailbox_forwarding`, `remove_auth_methods`,
//!   `contain`) or an object with its arguments (`{"kind": "disable_rule", "rule_id": "…"}`,
//!   `{"kind": "delete_rule", "rule_id": "…"}`), as [`Action`] serialises.
//! - `reason`, `requester`: mandatory, recorded and emitted.
//! - `dry_run` (default false): read and plan, write nothing.
//! - `request_id` (optional; on the queue, the message id when absent): 1 to 128 of
//!   `A-Z a-z 0-9 - _ . :`. A request id that already ran returns the recorded report without
//!   acting again ([`RequestClaim`]); dry runs are never deduplicated.
//!
//! # What happens
//!
//! The tenant is read from the registry. A tenant of the other cloud group is refused before
//! any credential is loaded or any request is sent: the refusal is recorded in the action log
//! and emitted like any other (log line and `ActionsFailed` metric, reason
//! `cloud_group_mismatch`). Otherwise the request id is claimed, the write app's credential
//! is loaded (`ITDR_WRITE_APP`, else the tenant's own app, from this group's secrets only),
//! and the library's [`Responder`] runs the action: permissions, rails, audit record, steps,
//! OCSF events on the events queue (the pollers' envelope and queue contract).
//!
//! Replies: a direct invocation returns the [`ActionReport`] (a refusal is a report with
//! outcome `refused` and its `error`), or a Lambda error when there is no report (malformed
//! request, unknown tenant, retryable failure). On the queue, only retryable failures go back
//! to the queue (`batchItemFailures`): our side unavailable (registry, action log, secrets,
//! events), a read the action needed failing transiently before any write, or the same
//! request running elsewhere. A refusal (protected account, last Global Administrator,
//! missing permission, unknown tenant or user, wrong cloud group, malformed request) is
//! recorded or logged with its metric and acknowledged: resending it cannot help.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::config::ActionsConfig;
use super::dynamo::{DynamoCursorStore, DynamoRegistry, RequestClaim};
use super::handler::{GRAPH_REQUEST_TIMEOUT, InitError};
use super::secrets::SecretsManagerSource;
use super::sqs::{SqsEventSink, SqsSender};
use super::{AwsEndpoint, sdk_config};
use crate::auth::{CredentialSource, SecretError};
use crate::client::Tenant;
use crate::clock::{SharedClock, SystemClock};
use crate::cloud::{Cloud, CloudGroup};
use crate::respond::{Action, ActionReport, ActionRequest, Outcome, RespondError, Responder};
use crate::stack::{ClientStack, StackBuilder};
use crate::store::{StoreError, TenantRecord, TenantRegistry};
use crate::telemetry::{ActionFailure, EmfTelemetry, Event, Telemetry};

/// Longest request id.
pub const MAX_REQUEST_ID: usize = 128;

/// One action request (the body of an actions-queue message, or a direct invocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionMessage {
    /// Idempotency key: a request id that already ran does not act again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The registered tenant's GUID or domain.
    pub tenant: String,
    /// The cloud the sender believes the tenant is in (checked against the registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Cloud>,
    /// The target user: object id or user principal name.
    pub user: String,
    /// What to do: a name, or an object with `kind` and the action's arguments.
    #[serde(deserialize_with = "action_field")]
    pub action: Action,
    /// Why (mandatory).
    pub reason: String,
    /// Who asks (mandatory).
    pub requester: String,
    /// Read and plan only.
    #[serde(default)]
    pub dry_run: bool,
}

/// `"contain"` is `{"kind": "contain"}`.
fn action_field<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    let v = Value::deserialize(d)?;
    let v = match v {
        Value::String(kind) => serde_json::json!({ "kind": kind }),
        other => other,
    };
    serde_json::from_value(v)
        .map_err(|_| serde::de::Error::custom("action is not one of the response actions"))
}

impl ActionMessage {
    /// Parses a request. The error names what is wrong, never quoting the input.
    pub fn parse(body: &str) -> Result<Self, ActionError> {
        let msg: Self = serde_json::from_str(body).map_err(|e| ActionError::Malformed {
            reason: format!(
                "not an action request ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        })?;
        msg.check()?;
        Ok(msg)
    }

    fn check(&self) -> Result<(), ActionError> {
        if let Some(id) = &self.request_id {
            check_request_id(id)?;
        }
        if self.tenant.trim().is_empty() {
            return Err(ActionError::Malformed {
                reason: "tenant is empty".into(),
            });
        }
        if self.user.trim().is_empty() {
            return Err(ActionError::Malformed {
                reason: "user is empty".into(),
            });
        }
        Ok(())
    }
}

fn check_request_id(id: &str) -> Result<(), ActionError> {
    let ok = (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ActionError::Malformed {
            reason: format!("request_id must be 1 to {MAX_REQUEST_ID} of A-Z a-z 0-9 - _ . :"),
        })
    }
}

/// Why an action request produced no report, or must be retried.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request is not one (the reason never quotes it).
    #[error("malformed action request: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// No registered tenant has that id or domain.
    #[error("tenant {tenant} is not registered")]
    UnknownTenant {
        /// The tenant as requested.
        tenant: String,
    },
    /// The request names a cloud other than the tenant's registered one.
    #[error(
        "the request says tenant {tenant} is in {requested}, the registry says {registered}: refused, nothing was sent"
    )]
    CloudMismatch {
        /// Tenant GUID.
        tenant: String,
        /// The cloud in the request.
        requested: Cloud,
        /// The registered cloud.
        registered: Cloud,
    },
    /// The same request id is running elsewhere (or its attempt died recently).
    #[error("request {request_id} is already running; retry later")]
    InProgress {
        /// The request id.
        request_id: String,
    },
    /// The registry or the action log failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The write app's credential could not be loaded.
    #[error("credential: {0}")]
    Secret(#[from] SecretError),
    /// The responder stopped without a report, or a read it needed failed transiently.
    #[error("{0}")]
    Respond(#[from] RespondError),
}

impl ActionError {
    /// Whether a later attempt may succeed without anyone acting (the queue retries these).
    pub fn is_retryable(&self) -> bool {
        match self {
            ActionError::Malformed { .. }
            | ActionError::UnknownTenant { .. }
            | ActionError::CloudMismatch { .. } => false,
            ActionError::InProgress { .. } => true,
            ActionError::Store(e) => e.is_retryable(),
            ActionError::Secret(e) => e.is_retryable(),
            ActionError::Respond(e) => respond_retryable(e),
        }
    }

    /// A short stable label (the Lambda error type).
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::Malformed { .. } => "MalformedRequest",
            ActionError::UnknownTenant { .. } => "UnknownTenant",
            ActionError::CloudMismatch { .. } => "CloudMismatch",
            ActionError::InProgress { .. } => "InProgress",
            ActionError::Store(_) => "StoreUnavailable",
            ActionError::Secret(e) if e.is_retryable() => "SecretStoreUnavailable",
            ActionError::Secret(_) => "CredentialUnusable",
            ActionError::Respond(e) if respond_retryable(e) => "Deferred",
            ActionError::Respond(_) => "Refused",
        }
    }

    fn failure(&self) -> ActionFailure {
        match self {
            ActionError::Malformed { .. } => ActionFailure::Malformed,
            ActionError::UnknownTenant { .. } => ActionFailure::UnknownTenant,
            ActionError::CloudMismatch { .. } => ActionFailure::CloudGroupMismatch,
            e if e.is_retryable() => ActionFailure::Deferred,
            _ => ActionFailure::Refused,
        }
    }
}

/// Whether an error of the responder is worth retrying: our audit trail unavailable, or a
/// token or read the action needed failing transiently (before any write).
fn respond_retryable(e: &RespondError) -> bool {
    match e {
        RespondError::Audit(s) => s.is_retryable(),
        RespondError::Read { source, .. } => source.is_retryable(),
        RespondError::Token { source, .. } => source.is_retryable(),
        _ => false,
    }
}

/// Everything an actions invocation needs, built once per container.
pub struct ActionsContext {
    /// The cloud group this function serves.
    pub group: CloudGroup,
    registry: DynamoRegistry,
    store: Arc<DynamoCursorStore>,
    credentials: Arc<dyn CredentialSource>,
    stack: ClientStack,
    responder: Responder,
    write_app: Option<String>,
    telemetry: Arc<dyn Telemetry>,
    clock: SharedClock,
    action_timeout: Duration,
}

impl std::fmt::Debug for ActionsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionsContext")
            .field("group", &self.group)
            .field("write_app", &self.write_app)
            .finish_non_exhaustive()
    }
}

impl ActionsContext {
    /// Builds the context from a validated configuration: DynamoDB, SQS and Secrets Manager
    /// clients from `sdk`, the client stack, and a responder serving only `cfg`'s group,
    /// recording in the cursor table and emitting to the events queue.
    pub fn from_config(
        cfg: &ActionsConfig,
        sdk: &SdkConfig,
        clock: SharedClock,
    ) -> Result<Self, InitError> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = SqsSender::new(aws_sdk_sqs::Client::new(sdk));
        let stack = StackBuilder::new(clock.clone())
            .endpoint_override(cfg.endpoint_override.clone())
            .request_timeout(GRAPH_REQUEST_TIMEOUT)
            .build()?;
        let store = Arc::new(DynamoCursorStore::new(ddb.clone(), &cfg.cursor_table));
        let responder = Responder::new(stack.client.clone(), store.clone())
            .with_events(Arc::new(SqsEventSink::new(sqs, &cfg.events_queue_url)))
            .with_protected(cfg.protected.clone())
            .for_group(cfg.cloud_group)
            .with_timeout(cfg.action_timeout());
        Ok(Self {
            group: cfg.cloud_group,
            registry: DynamoRegistry::new(ddb, &cfg.registry_table),
            store,
            credentials: Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                &cfg.secret_prefix,
                cfg.cloud_group,
                cfg.secret_ttl(),
                clock.clone(),
            )),
            stack,
            responder,
            write_app: cfg.write_app.clone(),
            telemetry: Arc::new(EmfTelemetry {
                group: cfg.cloud_group,
            }),
            clock,
            action_timeout: cfg.action_timeout(),
        })
    }

    /// Replaces the telemetry (tests).
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// A `running` claim older than this was abandoned (its attempt cannot still be running).
    fn stale_secs(&self) -> i64 {
        2 * self.action_timeout.as_secs() as i64 + 60
    }

    async fn tenant(&self, msg: &ActionMessage) -> Result<TenantRecord, ActionError> {
        let t = msg.tenant.trim();
        let found = match self.registry.get(&t.to_ascii_lowercase()).await? {
            Some(r) => Some(r),
            None if t.contains('.') => self.registry.find_by_domain(t).await?,
            None => None,
        };
        let record = found.ok_or_else(|| ActionError::UnknownTenant {
            tenant: t.to_string(),
        })?;
        if let Some(requested) = msg.cloud
            && requested != record.cloud
        {
            return Err(ActionError::CloudMismatch {
                tenant: record.tenant_id,
                requested,
                registered: record.cloud,
            });
        }
        Ok(record)
    }
}

/// Runs one request: the report (also recorded, and its events sent), or why there is none.
/// `request_id` defaults to the message's own.
pub async fn handle_request(
    ctx: &ActionsContext,
    msg: &ActionMessage,
    default_request_id: Option<&str>,
) -> Result<ActionReport, ActionError> {
    let request_id = msg.request_id.as_deref().or(default_request_id);
    let result = act(ctx, msg, request_id).await;
    let now = ctx.clock.now();
    let rid = request_id.unwrap_or_default();
    match &result {
        Ok((report, how)) => {
            let event = match (report.outcome, how) {
                (_, Ran::Duplicate) => completed(report, "duplicate"),
                (Outcome::Completed, _) => completed(report, "completed"),
                (Outcome::DryRun, _) => completed(report, "dry_run"),
                (o, _) => Event::ActionFailed {
                    tenant: &report.tenant_id,
                    action: report.action.as_str(),
                    reason: match (o, how) {
                        (_, Ran::OtherGroup) => ActionFailure::CloudGroupMismatch,
                        (Outcome::Failed, _) => ActionFailure::Failed,
                        (Outcome::Partial, _) => ActionFailure::Partial,
                        _ => ActionFailure::Refused,
                    },
                    request_id: rid,
                },
            };
            ctx.telemetry.emit(&event, now);
        }
        Err(e) => {
            tracing::warn!(kind = e.kind(), retryable = e.is_retryable(), error = %e, request_id = %rid, "action request not completed");
            ctx.telemetry.emit(
                &Event::ActionFailed {
                    tenant: msg.tenant.trim(),
                    action: msg.action.as_str(),
                    reason: e.failure(),
                    request_id: rid,
                },
                now,
            );
        }
    }
    result.map(|(r, _)| r)
}

fn completed<'a>(report: &'a ActionReport, outcome: &'static str) -> Event<'a> {
    Event::ActionCompleted {
        tenant: &report.tenant_id,
        action: report.action.as_str(),
        outcome,
        action_id: &report.id,
    }
}

/// How a request came to its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// This attempt ran it (or was refused running it).
    Here,
    /// The request id already ran: the recorded report.
    Duplicate,
    /// Refused: the tenant belongs to the other cloud group.
    OtherGroup,
}

/// The action of one request, and how it came to its report.
async fn act(
    ctx: &ActionsContext,
    msg: &ActionMessage,
    request_id: Option<&str>,
) -> Result<(ActionReport, Ran), ActionError> {
    let record = ctx.tenant(msg).await?;
    let req = ActionRequest {
        tenant: Tenant {
            id: record.tenant_id.clone(),
            cloud: record.cloud,
        },
        organization: record.org.clone().unwrap_or_default(),
        user: msg.user.trim().to_string(),
        action: msg.action.clone(),
        reason: msg.reason.clone(),
        requester: msg.requester.clone(),
        dry_run: msg.dry_run,
    };
    if record.cloud.group() != ctx.group {
        // Sovereignty: no claim, no credential, no request. The responder serves only this
        // group and refuses before asking for a token; the refusal is recorded and emitted.
        tracing::error!(
            tenant = %record.tenant_id,
            cloud = record.cloud.label(),
            group = ctx.group.as_str(),
            "action for a tenant of another cloud group refused (sovereignty)"
        );
        let (report, _) = finish(ctx, None, &req, ctx.responder.run_recorded(&req).await).await?;
        return Ok((report, Ran::OtherGroup));
    }
    let claimed = match request_id {
        Some(id) if !msg.dry_run => {
            match ctx
                .store
                .claim_request(&record.tenant_id, id, ctx.clock.now(), ctx.stale_secs())
                .await?
            {
                RequestClaim::Claimed => Some(id),
                RequestClaim::Done(report) => {
                    tracing::info!(request_id = %id, action_id = %report.id, "request already ran; not acting again");
                    return Ok((*report, Ran::Duplicate));
                }
                RequestClaim::InProgress => {
                    return Err(ActionError::InProgress {
                        request_id: id.to_string(),
                    });
                }
            }
        }
        _ => None,
    };
    let app_ref = ctx.write_app.as_deref().unwrap_or(&record.app_ref);
    let credential = match ctx.credentials.app_credential(app_ref).await {
        Ok(c) => c,
        Err(e) => {
            release(ctx, &record.tenant_id, claimed).await;
            return Err(e.into());
        }
    };
    ctx.stack.tokens.set(&record.tenant_id, credential);
    let result = ctx.responder.run_recorded(&req).await;
    finish(ctx, claimed, &req, result).await
}

/// Settles the claim after the responder: done with the report, or released for a retry.
async fn finish(
    ctx: &ActionsContext,
    claimed: Option<&str>,
    req: &ActionRequest,
    result: Result<(ActionReport, Option<RespondError>), RespondError>,
) -> Result<(ActionReport, Ran), ActionError> {
    match result {
        Ok((report, why)) => {
            if let Some(e) = why.filter(respond_retryable) {
                release(ctx, &req.tenant.id, claimed).await;
                return Err(e.into());
            }
            if let Some(id) = claimed {
                ctx.store.finish_request(id, &report).await?;
            }
            Ok((report, Ran::Here))
        }
        Err(e) => {
            release(ctx, &req.tenant.id, claimed).await;
            Err(e.into())
        }
    }
}

async fn release(ctx: &ActionsContext, tenant: &str, claimed: Option<&str>) {
    if let Some(id) = claimed
        && let Err(e) = ctx.store.release_request(tenant, id).await
    {
        // The claim goes stale and a later attempt takes it over.
        tracing::warn!(request_id = %id, error = %e, "request claim not released");
    }
}

/// Runs a batch from the actions queue, one request at a time. Only retryable failures are
/// reported in `batchItemFailures`; a request that would not start before the Lambda's
/// `remaining` time (less one action's time) is left for redelivery.
pub async fn handle_actions(
    event: SqsEvent,
    ctx: &ActionsContext,
    remaining: Duration,
) -> SqsBatchResponse {
    let started = ctx.clock.now();
    let mut resp = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let elapsed = (ctx.clock.now() - started).to_std().unwrap_or_default();
        if elapsed + ctx.action_timeout > remaining {
            tracing::warn!(message_id = %id, "not enough time left for another action; left for redelivery");
            resp.add_failure(id);
            continue;
        }
        let msg = match ActionMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "malformed action request; acknowledged, not retried");
                ctx.telemetry.emit(
                    &Event::ActionFailed {
                        tenant: "",
                        action: "",
                        reason: ActionFailure::Malformed,
                        request_id: &id,
                    },
                    ctx.clock.now(),
                );
                continue;
            }
        };
        let span = tracing::info_span!("action", message_id = %id, action = msg.action.as_str());
        let result = tracing::Instrument::instrument(
            handle_request(ctx, &msg, (!id.is_empty()).then_some(id.as_str())),
            span,
        )
        .await;
        if let Err(e) = result
            && e.is_retryable()
        {
            resp.add_failure(id);
        }
    }
    resp
}

/// A direct invocation: one request in, its report out.
pub async fn handle_direct(
    payload: Value,
    ctx: &ActionsContext,
) -> Result<ActionReport, ActionError> {
    let msg: ActionMessage = serde_json::to_string(&payload)
        .map_err(|_| ActionError::Malformed {
            reason: "not JSON".into(),
        })
        .and_then(|s| ActionMessage::parse(&s))
        .inspect_err(|e| {
            ctx.telemetry.emit(
                &Event::ActionFailed {
                    tenant: "",
                    action: "",
                    reason: e.failure(),
                    request_id: "",
                },
                ctx.clock.now(),
            );
        })?;
    handle_request(ctx, &msg, None).await
}

/// Any invocation: an SQS event (it has `Records`) gets its batch response, anything else is
/// a direct request and gets its report.
pub async fn handle_invocation(
    event: Value,
    ctx: &ActionsContext,
    remaining: Duration,
) -> Result<Value, ActionError> {
    if event.get("Records").is_some_and(Value::is_array) {
        let sqs: SqsEvent = serde_json::from_value(event).map_err(|_| ActionError::Malformed {
            reason: "an SQS event that does not parse".into(),
        })?;
        let resp = handle_actions(sqs, ctx, remaining).await;
        return serde_json::to_value(resp).map_err(|_| ActionError::Malformed {
            reason: "batch response not encodable".into(),
        });
    }
    let report = handle_direct(event, ctx).await?;
    serde_json::to_value(report).map_err(|_| ActionError::Malformed {
        reason: "report not encodable".into(),
    })
}

/// Runs an actions function for `group`: tracing for Lambda, configuration validated and the
/// context built once at cold start, then the handler for both queue batches and direct
/// invocations.
pub async fn run_actions(group: CloudGroup) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let started = std::time::Instant::now();
    let cfg = ActionsConfig::from_env(group).inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; fix the environment and redeploy");
    })?;
    let sdk = sdk_config(&AwsEndpoint::Default).await;
    let ctx = ActionsContext::from_config(&cfg, &sdk, Arc::new(SystemClock)).inspect_err(|e| {
        tracing::error!(kind = e.kind(), error = %e, "cold start failed");
    })?;
    tracing::info!(
        group = group.as_str(),
        init_ms = started.elapsed().as_millis() as u64,
        "actions function initialised"
    );
    let ctx = Arc::new(ctx);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            // Boxed: the handler's future is deep, and the binaries' `main` need not carry
            // its layout.
            Box::pin(handle_invocation(event.payload, &ctx, remaining))
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.kind().into(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_action_names_or_objects_and_refuse_unknown_keys() {
        let m = ActionMessage::parse(
            r#"{"tenant":"contoso.onmicrosoft.us","cloud":"gcc_high","user":"u@contoso.us",
                "action":"contain","reason":"case 1","requester":"a@soc.example"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.action, Action::Contain);
        assert_eq!(m.cloud, Some(Cloud::GccHigh));
        assert!(!m.dry_run);
        assert_eq!(m.request_id, None);
        let m = ActionMessage::parse(
            r#"{"request_id":"case-1:rule.7","tenant":"t","user":"u","reason":"r","requester":"q",
                "action":{"kind":"disable_rule","rule_id":"AQAAAJ5dZqA="},"dry_run":true}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.action,
            Action::DisableRule {
                rule_id: "AQAAAJ5dZqA=".into()
            }
        );
        assert!(m.dry_run);
        // Round trip: what a sender serialises is what the function reads.
        let again = ActionMessage::parse(&serde_json::to_string(&m).unwrap_or_default());
        assert_eq!(again.ok(), Some(m));

        for bad in [
            r#"{"tenant":"t","user":"u","action":"contain","reason":"r","requester":"q","extra":1}"#,
            r#"{"tenant":"t","user":"u","action":"format_disk","reason":"r","requester":"q"}"#,
            r#"{"tenant":"t","user":"u","action":"disable_rule","reason":"r","requester":"q"}"#,
            r#"{"tenant":" ","user":"u","action":"contain","reason":"r","requester":"q"}"#,
            r#"{"request_id":"a/b","tenant":"t","user":"u","action":"contain","reason":"r","requester":"q"}"#,
            r#"{"tenant":"t","user":"u","action":"contain","reason":"secret-reason","requester":7}"#,
            "not json",
        ] {
            let e = ActionMessage::parse(bad);
            assert!(
                matches!(&e, Err(ActionError::Malformed { .. })),
                "{bad}: {e:?}"
            );
            let text = e.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(
                !text.contains("secret-reason") && !text.contains("format_disk"),
                "{text}"
            );
        }
    }

    #[test]
    fn only_infrastructure_and_transient_failures_are_retried() {
        assert!(!ActionError::UnknownTenant { tenant: "t".into() }.is_retryable());
        assert!(
            !ActionError::CloudMismatch {
                tenant: "t".into(),
                requested: Cloud::Global,
                registered: Cloud::GccHigh
            }
            .is_retryable()
        );
        assert!(
            ActionError::Store(StoreError::Backend("PutItem: timed out".into())).is_retryable()
        );
        assert!(
            ActionError::Respond(RespondError::Audit(StoreError::Backend("x".into())))
                .is_retryable()
        );
        assert!(
            !ActionError::Respond(RespondError::Protected {
                user_id: "u".into(),
                organization: "o".into(),
                action: "contain"
            })
            .is_retryable()
        );
        assert!(
            ActionError::Respond(RespondError::Read {
                tenant: "t".into(),
                what: "user",
                source: crate::client::SourceError::Throttled { retry_after: None },
            })
            .is_retryable()
        );
        assert!(
            ActionError::InProgress {
                request_id: "r".into()
            }
            .is_retryable()
        );
    }
}
