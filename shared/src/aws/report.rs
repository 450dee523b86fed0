//! The report function: the Identity Security Assessment on AWS, one function per cloud
//! group (`functions/report`, `functions/report-gcch`), invoked daily by EventBridge.
//!
//! Each run reports every enabled tenant of its group whose inventory has completed at least
//! once (its summaries exist) and whose last report is older than the interval (7 days by
//! default; the first report as soon as the first complete inventory exists). For a tenant:
//! 1. the inventory is read again, read-only, with the same snapshot sources and OCSF mapping
//!    as the pollers (users, apps, roles, MFA, conditional access; the tenant's app and the
//!    one client stack, each source on its own pacing bucket), and fed to
//!    [`InputBuilder`]: no cursor moves, nothing of it goes to the events queue;
//! 2. the sign-ins of the last 30 days come from the pollers' daily digests
//!    ([`crate::assess::digest`]); what the inventory could not read from its summaries;
//! 3. the previous report (its JSON in S3, named by the registry's `report_state`) is what
//!    "changed since" compares with;
//! 4. HTML and JSON go to this group's bucket under `reports/<tenant>/<yyyy-mm-dd>/`, with
//!    SSE-KMS; the findings go to the events queue as OCSF 2003 Compliance Findings in the
//!    queue contract's envelope (stream `users`, `metadata.log_name`
//!    `identity_security_assessment`);
//! 5. the organization's contact (registry `contact_email`) gets an email through SES with
//!    the score, the five urgent fixes and a presigned link to the HTML that expires; a
//!    tenant without a contact is logged and counted, not an error;
//! 6. the registry's `report_state` records the report. A failure at any step leaves it
//!    unrecorded: the next daily run builds the report again (an email may then be sent
//!    twice, never not at all).
//!
//! Sovereignty: the function lists only its own group's tenants, refuses an on-demand request
//! (`{"tenant_id": ...}`) for another group's tenant, and holds only its own bucket, secrets
//! prefix and (in the template) permissions.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::config::{AWS_MAX_ENVELOPE_BYTES, ConfigError, ReportConfig};
use super::dynamo::report_state::{LastReport, ReportMeta};
use super::dynamo::{DynamoCursorStore, DynamoRegistry};
use super::handler::{InitError, app_budget, schedule_time};
use super::secrets::SecretsManagerSource;
use super::sqs::{SqsEventSink, SqsSender};
use crate::assess::digest::DigestStore;
use crate::assess::{self, InputBuilder, Report, TenantInfo};
use crate::auth::CredentialSource;
use crate::batch::{BatchLimits, into_envelopes};
use crate::client::{ApiClient, Tenant};
use crate::clock::{SharedClock, to_delta};
use crate::cloud::CloudGroup;
use crate::health::HealthState;
use crate::inventory::InventoryStore;
use crate::ocsf::NormalizeOptions;
use crate::source::{Change, SnapshotRead, Sources, sources_for};
use crate::stack::StackBuilder;
use crate::store::{EventSink, StoreError, TenantRecord, TenantRegistry};
use crate::stream::Stream;
use crate::telemetry::{EmfTelemetry, Event, Telemetry};

/// The inventory streams the assessment reads (inbox rules are not needed).
pub const ASSESSED_STREAMS: [Stream; 5] = [
    Stream::Users,
    Stream::Apps,
    Stream::Roles,
    Stream::Mfa,
    Stream::ConditionalAccess,
];
/// The envelope stream the findings travel on (with `metadata.log_name`
/// `identity_security_assessment`, see `contract/README.md`).
pub const FINDINGS_STREAM: Stream = Stream::Users;
/// Time kept back from the invocation's remaining time.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(20);
/// Parts of one snapshot read at most (a guard against a source that never completes).
const MAX_PARTS: usize = 10_000;

/// The S3 key prefix of a tenant's report of `day`.
pub fn report_prefix(tenant_id: &str, at: DateTime<Utc>) -> String {
    format!(
        "reports/{}/{}/",
        tenant_id.to_ascii_lowercase(),
        at.format("%Y-%m-%d")
    )
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An on-demand request named a tenant this function does not serve, or none registered.
    #[error("tenant {tenant} is not a registered tenant of this cloud group (sovereignty)")]
    Refused {
        /// Tenant GUID.
        tenant: String,
    },
    /// The registry could not be listed.
    #[error("registry: {0}")]
    Registry(#[from] StoreError),
    /// Some tenants' reports failed (each logged and counted with its step).
    #[error("{failed} of {due} due reports failed")]
    Failed {
        /// Reports that failed.
        failed: usize,
        /// Reports due.
        due: usize,
    },
}

impl ReportError {
    /// A short stable label (the Lambda error type).
    pub fn kind(&self) -> &'static str {
        match self {
            ReportError::Refused { .. } => "Refused",
            ReportError::Registry(_) => "Registry",
            ReportError::Failed { .. } => "ReportsFailed",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    /// Tenants of this group considered.
    pub tenants: usize,
    /// Skipped: no complete inventory yet.
    pub no_inventory: usize,
    /// Skipped: the last report is recent enough.
    pub not_due: usize,
    /// Reports written.
    pub written: Vec<WrittenReport>,
    /// Reports left for the next run (out of time).
    pub deferred: usize,
}

/// One report written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenReport {
    /// Tenant GUID.
    pub tenant_id: String,
    /// S3 key of the HTML.
    pub html_key: String,
    /// S3 key of the JSON.
    pub json_key: String,
    /// Findings (also sent to the events queue).
    pub findings: usize,
    /// Overall score.
    pub overall_score: Option<u32>,
    /// Whether it was compared with a previous report.
    pub compared: bool,
    /// Whether the contact was emailed.
    pub emailed: bool,
}

/// A failed step of one tenant's report: the step's label and a message naming no content.
#[derive(Debug)]
struct StepError(&'static str, String);

/// Everything a report invocation needs, built once per container.
pub struct ReportContext {
    /// The group served.
    pub group: CloudGroup,
    /// Tenant registry (records, contact, report state).
    pub registry: DynamoRegistry,
    /// Cursor table (inventory summaries, sign-in digests).
    pub cursors: Arc<DynamoCursorStore>,
    /// The tenants' app credentials.
    pub credentials: Arc<dyn CredentialSource>,
    /// The tenant's app is set here.
    pub tokens: Arc<crate::auth::PerTenantTokens>,
    /// Microsoft's APIs.
    pub client: Arc<ApiClient>,
    /// The events queue.
    pub events: Arc<dyn EventSink>,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SES v2.
    pub ses: aws_sdk_sesv2::Client,
    /// The group's bucket.
    pub bucket: String,
    /// SSE-KMS key.
    pub kms_key: Option<String>,
    /// SES sender.
    pub sender: String,
    /// Days between reports.
    pub interval_days: u32,
    /// Lifetime of the emailed link.
    pub link_expiry: Duration,
    /// Named events.
    pub telemetry: Arc<dyn Telemetry>,
    /// Clock.
    pub clock: SharedClock,
}

impl std::fmt::Debug for ReportContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportContext")
            .field("group", &self.group)
            .field("bucket", &self.bucket)
            .field("interval_days", &self.interval_days)
            .finish_non_exhaustive()
    }
}

/// The S3 client of `sdk`; path-style addressing against a local emulator.
pub fn s3_client(sdk: &SdkConfig, local: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(local)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl ReportContext {
    /// Builds the context from a validated configuration. `local`: the SDK talks to a local
    /// emulator (path-style S3 addressing).
    pub fn from_config(
        cfg: &ReportConfig,
        sdk: &SdkConfig,
        clock: SharedClock,
        local: bool,
    ) -> Result<Self, InitError> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = SqsSender::new(aws_sdk_sqs::Client::new(sdk));
        let stack = StackBuilder::new(clock.clone())
            .endpoint_override(cfg.endpoint_override.clone())
            .request_timeout(super::handler::GRAPH_REQUEST_TIMEOUT)
            .budget(app_budget(clock.clone(), cfg.app_rate()))
            .build()?;
        Ok(Self {
            group: cfg.cloud_group,
            registry: DynamoRegistry::new(ddb.clone(), &cfg.registry_table),
            cursors: Arc::new(DynamoCursorStore::new(ddb, &cfg.cursor_table)),
            credentials: Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                &cfg.secret_prefix,
                cfg.cloud_group,
                cfg.secret_ttl(),
                clock.clone(),
            )),
            tokens: stack.tokens.clone(),
            client: stack.client.clone(),
            events: Arc::new(SqsEventSink::new(sqs, &cfg.events_queue_url)),
            s3: s3_client(sdk, local),
            ses: aws_sdk_sesv2::Client::new(sdk),
            bucket: cfg.reports_bucket.clone(),
            kms_key: cfg.kms_key.clone(),
            sender: cfg.sender.clone(),
            interval_days: cfg.interval_days,
            link_expiry: Duration::from_secs(cfg.link_expiry_secs),
            telemetry: Arc::new(EmfTelemetry {
                group: cfg.cloud_group,
            }),
            clock,
        })
    }
}

/// Runs one invocation: `event` is the EventBridge scheduled event (its `time` is the run's
/// time, so "due" is decided against the schedule, not the clock), or `{"tenant_id": ...}`
/// to report one tenant of this group now, due or not.
pub async fn handle_report(
    event: &Value,
    ctx: &ReportContext,
    remaining: Duration,
) -> Result<ReportSummary, ReportError> {
    let now = schedule_time(event, &ctx.clock);
    let margin = DEADLINE_MARGIN.min(remaining / 4);
    let deadline = ctx.clock.now() + to_delta(remaining.saturating_sub(margin));
    let requested = event.get("tenant_id").and_then(Value::as_str);
    let tenants: Vec<TenantRecord> = match requested {
        Some(id) => {
            let t = ctx.registry.get(id).await?;
            match t {
                Some(t) if t.cloud.group() == ctx.group => vec![t],
                _ => {
                    tracing::error!(tenant = %id, group = ctx.group.as_str(), "report refused: not a registered tenant of this cloud group");
                    return Err(ReportError::Refused { tenant: id.into() });
                }
            }
        }
        None => ctx
            .registry
            .list()
            .await?
            .into_iter()
            .filter(|t| t.cloud.group() == ctx.group)
            .collect(),
    };
    let mut summary = ReportSummary::default();
    let (mut due, mut failed) = (0usize, 0usize);
    for t in &tenants {
        if !t.enabled || t.health.state == HealthState::Offboarded {
            continue;
        }
        summary.tenants += 1;
        if ctx.clock.now() >= deadline {
            summary.deferred += 1;
            continue;
        }
        let id = t.tenant_id.as_str();
        let prepared = prepare(ctx, t, now, requested.is_some()).await;
        let meta = match prepared {
            Ok(Some(m)) => m,
            Ok(None) => {
                summary.no_inventory += 1;
                continue;
            }
            Err(StepError("not_due", _)) => {
                summary.not_due += 1;
                continue;
            }
            Err(StepError(step, e)) => {
                due += 1;
                failed += 1;
                fail(ctx, id, step, &e);
                continue;
            }
        };
        due += 1;
        match report_tenant(ctx, t, meta, now, deadline).await {
            Ok(w) => {
                ctx.telemetry.emit(
                    &Event::ReportWritten {
                        tenant: id,
                        findings: w.findings,
                        emailed: w.emailed,
                    },
                    ctx.clock.now(),
                );
                summary.written.push(w);
            }
            Err(StepError(step, e)) => {
                failed += 1;
                fail(ctx, id, step, &e);
            }
        }
    }
    tracing::info!(
        group = ctx.group.as_str(),
        tenants = summary.tenants,
        written = summary.written.len(),
        not_due = summary.not_due,
        no_inventory = summary.no_inventory,
        deferred = summary.deferred,
        failed,
        "report run finished"
    );
    if failed > 0 {
        return Err(ReportError::Failed { failed, due });
    }
    Ok(summary)
}

fn fail(ctx: &ReportContext, tenant: &str, step: &'static str, error: &str) {
    tracing::error!(tenant = %tenant, step, error = %error, "assessment report failed; the next run tries again");
    ctx.telemetry
        .emit(&Event::ReportFailed { tenant, step }, ctx.clock.now());
}

/// The tenant's report state if a report is due: `Ok(None)` when its inventory never
/// completed, `Err(not_due)` when the last report is recent enough.
async fn prepare(
    ctx: &ReportContext,
    t: &TenantRecord,
    now: DateTime<Utc>,
    force: bool,
) -> Result<Option<ReportMeta>, StepError> {
    let summaries = ctx
        .cursors
        .summaries(&t.tenant_id)
        .await
        .map_err(|e| StepError("inventory", e.to_string()))?;
    if !summaries.keys().any(|s| ASSESSED_STREAMS.contains(s)) {
        return Ok(None);
    }
    let meta = ctx
        .registry
        .report_meta(&t.tenant_id)
        .await
        .map_err(|e| StepError("registry", e.to_string()))?
        .unwrap_or_default();
    let interval = chrono::Duration::days(i64::from(ctx.interval_days));
    let due = force
        || meta
            .last_report
            .as_ref()
            .is_none_or(|l| now - l.at >= interval);
    if !due {
        return Err(StepError("not_due", String::new()));
    }
    Ok(Some(meta))
}

/// Reads the tenant's inventory again with the snapshot sources into `b`.
async fn read_inventory(
    ctx: &ReportContext,
    t: &TenantRecord,
    deadline: DateTime<Utc>,
    b: &mut InputBuilder,
) -> Result<(), StepError> {
    let step = |e: String| StepError("inventory", e);
    let app = ctx
        .credentials
        .app_credential(&t.app_ref)
        .await
        .map_err(|e| StepError("credentials", e.to_string()))?;
    ctx.tokens.set(&t.tenant_id, app);
    let tenant = Tenant {
        id: t.tenant_id.clone(),
        cloud: t.cloud,
    };
    for stream in ASSESSED_STREAMS {
        if !t.streams.contains(&stream) {
            continue;
        }
        let Ok(Sources::Snapshot(source)) = sources_for(stream, t.cloud, false) else {
            continue;
        };
        let opts = NormalizeOptions {
            observed_at: Some(ctx.clock.now()),
            ..NormalizeOptions::new(&t.tenant_id, t.cloud)
        };
        let mut state: Option<Value> = None;
        for _ in 0..MAX_PARTS {
            let page = source
                .read(&ctx.client, &tenant, state.as_ref(), deadline)
                .await
                .map_err(|e| step(format!("{stream}: {e}")))?;
            let (items, next, done) = match page.read {
                SnapshotRead::Full {
                    items,
                    state,
                    complete,
                } => (items, state, complete),
                SnapshotRead::Delta { changed, .. } => (changed, None, true),
                SnapshotRead::Unavailable => (Vec::new(), None, true),
            };
            for item in &items {
                match source.normalize(item, Change::Unchanged, &opts) {
                    Ok(evs) => evs.iter().for_each(|e| b.push(e)),
                    // Names a field, never a value; the object is left out of the report.
                    Err(e) => {
                        tracing::warn!(tenant = %t.tenant_id, stream = %stream, error = %e, "inventory object not mapped")
                    }
                }
            }
            if done || next.is_none() || next == state {
                break;
            }
            state = next;
        }
    }
    Ok(())
}

async fn report_tenant(
    ctx: &ReportContext,
    t: &TenantRecord,
    meta: ReportMeta,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<WrittenReport, StepError> {
    let id = t.tenant_id.as_str();
    let mut b = InputBuilder::new(id);
    read_inventory(ctx, t, deadline, &mut b).await?;
    let today = ctx.clock.now().date_naive();
    let from = today - chrono::Duration::days(assess::input::WINDOW_DAYS + 1);
    let days = ctx
        .cursors
        .days(id, from, today)
        .await
        .map_err(|e| StepError("digest", e.to_string()))?;
    days.into_iter().for_each(|d| b.push_digest(d));
    let degraded = assess::input::degradations(ctx.cursors.as_ref(), id)
        .await
        .map_err(|e| StepError("inventory", e.to_string()))?;
    let input = b.finish(degraded);
    let previous = match &meta.last_report {
        Some(l) => previous_report(ctx, &l.key).await?,
        None => None,
    };
    let info = TenantInfo {
        id: id.to_string(),
        domain: t.domain.clone(),
        org: t.org.clone(),
    };
    let report = assess::assess(&input, info, now, previous.as_ref());
    let html = assess::html::render(&report);
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|_| StepError("render", "report could not be encoded".into()))?;
    let prefix = report_prefix(id, now);
    let html_key = format!("{prefix}assessment.html");
    let json_key = format!("{prefix}assessment.json");
    put(
        ctx,
        &html_key,
        html.into_bytes(),
        "text/html; charset=utf-8",
    )
    .await?;
    put(ctx, &json_key, json, "application/json").await?;

    let events = assess::ocsf::finding_events(&report, t.cloud);
    let limits = BatchLimits {
        max_bytes: AWS_MAX_ENVELOPE_BYTES,
        max_events: crate::batch::DEFAULT_MAX_EVENTS,
    };
    let batches = into_envelopes(id, FINDINGS_STREAM, events, &limits)
        .map_err(|e| StepError("findings", e.to_string()))?;
    if !batches.oversize.is_empty() {
        tracing::warn!(tenant = %id, oversize = batches.oversize.len(), "findings too large for a message were left out of the queue (they are in the report)");
    }
    if !batches.envelopes.is_empty() {
        ctx.events
            .send(&batches.envelopes)
            .await
            .map_err(|e| StepError("findings", e.to_string()))?;
    }

    let emailed = match &meta.contact_email {
        Some(to) => {
            let link = presign(ctx, &html_key).await?;
            send_email(ctx, to, &report, &link).await?;
            true
        }
        None => {
            tracing::warn!(tenant = %id, "no contact address registered (itdr tenants remap --contact); report written, not emailed");
            false
        }
    };
    ctx.registry
        .record_report(
            id,
            &LastReport {
                at: now,
                key: json_key.clone(),
            },
        )
        .await
        .map_err(|e| StepError("state", e.to_string()))?;
    Ok(WrittenReport {
        tenant_id: id.to_string(),
        html_key,
        json_key,
        findings: report.findings.len(),
        overall_score: report.overall_score,
        compared: report.changes.is_some(),
        emailed,
    })
}

async fn put(
    ctx: &ReportContext,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), StepError> {
    let mut req = ctx
        .s3
        .put_object()
        .bucket(&ctx.bucket)
        .key(key)
        .content_type(content_type)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .body(aws_sdk_s3::primitives::ByteStream::from(body));
    if let Some(k) = &ctx.kms_key {
        req = req.ssekms_key_id(k);
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| StepError("store", super::describe("S3 PutObject", &e)))
}

/// The previous report's JSON; a missing or unreadable one means "no comparison".
async fn previous_report(ctx: &ReportContext, key: &str) -> Result<Option<Report>, StepError> {
    let resp = ctx
        .s3
        .get_object()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await;
    let out = match resp {
        Ok(o) => o,
        Err(e) if super::error_code(&e) == Some("NoSuchKey") => {
            tracing::warn!(key = %key, "previous report is gone (lifecycle expiry?); not comparing");
            return Ok(None);
        }
        Err(e) => return Err(StepError("store", super::describe("S3 GetObject", &e))),
    };
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|_| StepError("store", "S3 GetObject: body could not be read".into()))?
        .into_bytes();
    match serde_json::from_slice::<Report>(&bytes) {
        Ok(r) => Ok(Some(r)),
        Err(_) => {
            tracing::warn!(key = %key, "previous report is not a report this version reads; not comparing");
            Ok(None)
        }
    }
}

async fn presign(ctx: &ReportContext, key: &str) -> Result<String, StepError> {
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(ctx.link_expiry)
        .map_err(|_| StepError("email", "link expiry is not presignable".into()))?;
    ctx.s3
        .get_object()
        .bucket(&ctx.bucket)
        .key(key)
        .presigned(cfg)
        .await
        .map(|p| p.uri().to_string())
        .map_err(|e| StepError("email", super::describe("S3 presign", &e)))
}

/// The email's subject, plain text and HTML bodies.
pub fn email_bodies(
    report: &Report,
    link: &str,
    expires: DateTime<Utc>,
) -> (String, String, String) {
    use crate::assess::html::escape;
    let who = report
        .tenant
        .org
        .clone()
        .or_else(|| report.tenant.domain.clone())
        .unwrap_or_else(|| report.tenant.id.clone());
    let score = report
        .overall_score
        .map_or_else(|| "not available".to_string(), |s| format!("{s}/100"));
    let fixes: Vec<String> = report
        .top_fixes
        .iter()
        .filter_map(|k| report.finding(*k))
        .map(|f| format!("[{}] {}", f.severity.caption(), f.title))
        .collect();
    let until = expires.format("%Y-%m-%d %H:%M UTC");
    let subject = format!("Identity Security Assessment: {who} scores {score}");
    let mut text = format!("Identity Security Assessment of {who}\n\nOverall score: {score}\n\n");
    let mut html = format!(
        "<p>Identity Security Assessment of <b>{}</b></p><p>Overall score: <b>{}</b></p>",
        escape(&who),
        escape(&score)
    );
    if fixes.is_empty() {
        text.push_str("No urgent fixes.\n");
        html.push_str("<p>No urgent fixes.</p>");
    } else {
        text.push_str("The most urgent fixes:\n");
        html.push_str("<p>The most urgent fixes:</p><ol>");
        for (i, f) in fixes.iter().enumerate() {
            text.push_str(&format!("{}. {f}\n", i + 1));
            html.push_str(&format!("<li>{}</li>", escape(f)));
        }
        html.push_str("</ol>");
    }
    text.push_str(&format!(
        "\nThe full report (the link works until {until}):\n{link}\n"
    ));
    html.push_str(&format!(
        "<p><a href=\"{}\">The full report</a> (the link works until {until}).</p>",
        escape(link)
    ));
    (subject, text, html)
}

async fn send_email(
    ctx: &ReportContext,
    to: &str,
    report: &Report,
    link: &str,
) -> Result<(), StepError> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let expires = ctx.clock.now() + to_delta(ctx.link_expiry);
    let (subject, text, html) = email_bodies(report, link, expires);
    let content = |s: String| {
        Content::builder()
            .data(s)
            .charset("UTF-8")
            .build()
            .map_err(|_| StepError("email", "email content could not be built".into()))
    };
    let message = Message::builder()
        .subject(content(subject)?)
        .body(
            Body::builder()
                .text(content(text)?)
                .html(content(html)?)
                .build(),
        )
        .build();
    ctx.ses
        .send_email()
        .from_email_address(&ctx.sender)
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| StepError("email", super::describe("SES SendEmail", &e)))
}

/// Runs the report function for `group`: tracing for Lambda, configuration validated and the
/// context built once at cold start, then the EventBridge handler.
pub async fn run_report(group: CloudGroup) -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
    lambda_runtime::tracing::init_default_subscriber();
    let cfg = ReportConfig::from_env(group).inspect_err(|e: &ConfigError| {
        tracing::error!(error = %e, "invalid configuration; fix the environment and redeploy");
    })?;
    let sdk = super::sdk_config(&super::AwsEndpoint::Default).await;
    let ctx = ReportContext::from_config(&cfg, &sdk, Arc::new(crate::clock::SystemClock), false)
        .inspect_err(|e| tracing::error!(kind = e.kind(), error = %e, "cold start failed"))?;
    let ctx = Arc::new(ctx);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            handle_report(&event.payload, &ctx, remaining)
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_tenant_and_day() {
        let at = DateTime::parse_from_rfc3339("2026-03-05T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            report_prefix("AbC-1", at),
            "reports/abc-1/2026-03-05/".to_string()
        );
    }

    #[test]
    fn the_configuration_is_validated() {
        let base = |k: &str| -> Option<String> {
            Some(
                match k {
                    "ITDR_CLOUD_GROUP" => "usgov",
                    "ITDR_REGISTRY_TABLE" => "itdr-tenants",
                    "ITDR_CURSOR_TABLE" => "itdr-cursors",
                    "ITDR_EVENTS_QUEUE_URL" => {
                        "https://sqs.us-gov-west-1.amazonaws.com/1/itdr-events"
                    }
                    "ITDR_SECRET_PREFIX" => "itdr",
                    "ITDR_REPORTS_BUCKET" => "itdr-reports-usgov",
                    "ITDR_REPORT_SENDER" => "reports@itdr.example",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = ReportConfig::from_lookup(CloudGroup::UsGov, &base).unwrap();
        assert_eq!(c.interval_days, 7);
        assert_eq!(c.link_expiry_secs, 604_800);
        assert!(ReportConfig::from_lookup(CloudGroup::Commercial, &base).is_err());
        let over = |k: &str| match k {
            "ITDR_REPORT_LINK_EXPIRY_SECS" => Some("604801".to_string()),
            _ => base(k),
        };
        assert!(ReportConfig::from_lookup(CloudGroup::UsGov, &over).is_err());
        let bad_bucket = |k: &str| match k {
            "ITDR_REPORTS_BUCKET" => Some("Not_A_Bucket".to_string()),
            _ => base(k),
        };
        assert!(ReportConfig::from_lookup(CloudGroup::UsGov, &bad_bucket).is_err());
    }

    #[test]
    fn the_email_escapes_and_lists_the_urgent_fixes() {
        let input = crate::assess::Input::default();
        let info = TenantInfo {
            id: "t".into(),
            domain: None,
            org: Some("<Contoso & Co>".into()),
        };
        let report = assess::assess(&input, info, Utc::now(), None);
        let (subject, text, html) =
            email_bodies(&report, "https://x.example/r?a=1&b=2", Utc::now());
        assert!(subject.contains("<Contoso & Co>"));
        assert!(text.contains("https://x.example/r?a=1&b=2"));
        assert!(html.contains("&lt;Contoso &amp; Co&gt;"));
        assert!(html.contains("a=1&amp;b=2"));
        assert!(!html.contains("<Contoso"));
    }
}
