//! Preflight: every prerequisite of a tenant checked before the first poll, each with a plain
//! remedy. Most onboarding failures are prerequisite failures (consent, licences, permissions,
//! cloud), not enablement failures; this finds them up front.
//!
//! The checks run in the order of [`CheckId::ALL`], one function each; a check that needs a
//! token is skipped when there is none:
//! 1. [`cloud_check`]: the tenant's national cloud, whether it matches the registered one, and
//!    whether this deployment serves it.
//! 2. credential: a token can be had with the configured app credential (AADSTS codes mapped
//!    to remedies: app removed or never consented, secret expired or wrong, wrong cloud).
//! 3. [`consent_check`]: the token carries application permissions at all.
//! 4. [`permissions_check`]: the token's roles against the required and recommended ones.
//! 5. [`signin_licence_check`]: sign-in logs are readable (Entra ID P1/P2) and the retention
//!    implied.
//! 6. [`exchange_licence_check`]: at least one active Exchange Online plan in `subscribedSkus`.
//! 7. [`data_24h_check`]: directory audits and sign-ins of the last 24 hours come back
//!    (following pages: Graph may answer an empty first page with a `nextLink`).
//! 8. [`mfa_check`]: how many members have a Microsoft-registered MFA method (third-party
//!    MFA products often do not register one).
//! 9. [`audit_log_check`]: unified audit logging is on. Preflight starts the Management
//!    Activity subscription of every content type the unified audit stream reads (onboarding
//!    needs them, and a start is the one call that tells an audit log that is off).
//! 10. [`audit_subscriptions_check`]: every subscription is enabled (listed after the starts);
//!     one an administrator disabled (`AF20023`) or a missing `ActivityFeed.Read` is a blocker.
//! 11. [`audit_content_check`]: Unified Audit Log content became available in the last 24
//!     hours; when none did, the likely causes are listed.
//!
//! The data-gathering steps are separate from the decisions, which are pure functions with
//! unit tests. Requests are paced like the poller's (5 per 10 s per tenant), and no token,
//! secret or response body reaches the report.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{AccessToken, AppCredential, AuthError, REQUIRED_GRAPH_ROLES, role_purpose};
use crate::client::{ApiClient, Bucket, Priority, SourceError, Tenant};
use crate::cloud::{Api, Cloud, CloudGroup};
use crate::health::HealthState;
use crate::source::GraphLogSource;
use crate::source::graph_logs::filter_time;
use crate::source::management_activity::{
    self, ContentType, StartOutcome, SubscriptionInfo, UnifiedAuditConfig,
};
use crate::stack::ClientStack;
use crate::stream::Stream;

use super::CheckId;
use super::discovery::Discovery;

/// Roles the pipeline can work without, each with what is lost without it.
pub const RECOMMENDED_ROLES: &[&str] = &[
    "User.EnableDisableAccount.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "MailboxSettings.Read",
    "Policy.Read.All",
];

/// Permissions the identity inventory needs, each with the broader permissions that also
/// grant it: without any of them, that inventory stream cannot run (required).
pub const INVENTORY_REQUIRED_ROLES: &[(&str, &[&str])] = &[
    (
        "User.Read.All",
        &["Directory.Read.All", "User.ReadWrite.All"],
    ),
    (
        "Application.Read.All",
        &["Directory.Read.All", "Application.ReadWrite.All"],
    ),
    (
        "RoleManagement.Read.Directory",
        &["Directory.Read.All", "RoleManagement.Read.All"],
    ),
];

/// Retention of sign-in and audit logs with Entra ID P1/P2.
pub const RETENTION_DAYS_PREMIUM: u32 = 30;
/// Retention of audit logs on Entra ID Free.
pub const RETENTION_DAYS_FREE: u32 = 7;
/// Share of members without a Microsoft-registered MFA method above which the third-party MFA
/// note is shown.
pub const MFA_GAP_WARN_SHARE: f64 = 0.5;
/// Pages preflight follows at most when looking for one record of the last 24 hours.
pub const MAX_PROBE_PAGES: usize = 10;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but something is missing or worth a look.
    Warn,
    /// A blocker: polling will fail or miss data until it is fixed.
    Fail,
    /// Not run (an earlier check failed).
    Skip,
}

impl Status {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (absent on a pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The tenant health a failure implies (`None` when it passes, warns, or is skipped).
    #[serde(skip)]
    pub implies: Option<HealthState>,
}

impl Check {
    fn new(
        id: CheckId,
        status: Status,
        detail: impl Into<String>,
        remedy: Option<String>,
    ) -> Check {
        Check {
            id,
            status,
            detail: detail.into(),
            remedy,
            implies: None,
        }
    }

    fn pass(id: CheckId, detail: impl Into<String>) -> Check {
        Check::new(id, Status::Pass, detail, None)
    }

    fn warn(id: CheckId, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, detail, Some(remedy.into()))
    }

    fn fail(
        id: CheckId,
        detail: impl Into<String>,
        remedy: impl Into<String>,
        implies: HealthState,
    ) -> Check {
        Check {
            implies: Some(implies),
            ..Check::new(id, Status::Fail, detail, Some(remedy.into()))
        }
    }

    fn skip(id: CheckId, why: &str) -> Check {
        Check::new(id, Status::Skip, why, None)
    }
}

/// A missing role and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRole {
    /// The application permission.
    pub role: String,
    /// What the pipeline uses it for.
    pub purpose: String,
}

/// The whole preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Tenant GUID.
    pub tenant_id: String,
    /// The domain asked for, if any.
    pub domain: Option<String>,
    /// The tenant's cloud (from its OpenID configuration).
    pub cloud: Cloud,
    /// Human name of the cloud.
    pub cloud_label: String,
    /// The poller group that serves the cloud (`commercial`, `usgov`).
    pub poller: String,
    /// Application permissions the token carries.
    pub granted_roles: Vec<String>,
    /// Required permissions the token lacks.
    pub missing_required: Vec<MissingRole>,
    /// Recommended permissions the token lacks.
    pub missing_recommended: Vec<MissingRole>,
    /// Log retention implied by the licence, when known.
    pub retention_days: Option<u32>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Number of failed checks.
    pub blockers: usize,
    /// The tenant health the result implies (`pending` when nothing blocks).
    pub implied_state: HealthState,
}

impl Report {
    /// A check by id.
    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The first check that blocks polling.
    pub fn first_blocker(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == Status::Fail)
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Request {
    /// The tenant as discovered.
    pub discovery: Discovery,
    /// The cloud the registry holds for it, if it is registered.
    pub registered_cloud: Option<Cloud>,
    /// The poller groups this deployment runs.
    pub served: Vec<CloudGroup>,
    /// The streams that will be polled.
    pub streams: Vec<Stream>,
    /// The app credential for the tenant's cloud group, if one is configured.
    pub app: Option<AppCredential>,
    /// Name of the credential (for messages).
    pub app_ref: String,
    /// The content types the unified audit stream reads (their subscriptions are started).
    pub unified_audit: UnifiedAuditConfig,
}

/// Graph reads for the checks that need a token.
struct Probe<'a> {
    client: &'a ApiClient,
    tenant: Tenant,
}

impl Probe<'_> {
    fn deadline(&self) -> DateTime<Utc> {
        self.client.clock().now() + TimeDelta::seconds(90)
    }

    /// The first page of `path` with `query`.
    async fn first_page(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<serde_json::Value>, SourceError> {
        let url = ApiClient::url(&self.tenant, Api::Graph, path, query)?;
        let page = self
            .client
            .get_page_as(
                &self.tenant,
                Bucket::Reports,
                &url,
                self.deadline(),
                Priority::Regular,
            )
            .await?;
        Ok(page.value)
    }

    /// Whether `path` with `query` holds any record, following up to [`MAX_PROBE_PAGES`]
    /// pages (Graph may answer empty pages that carry a `nextLink`).
    async fn any(&self, path: &str, query: &[(&str, String)]) -> Result<bool, SourceError> {
        let mut next = Some(ApiClient::url(&self.tenant, Api::Graph, path, query)?);
        let mut pages = 0;
        while let Some(url) = next {
            let page = self
                .client
                .get_page_as(
                    &self.tenant,
                    Bucket::Reports,
                    &url,
                    self.deadline(),
                    Priority::Regular,
                )
                .await?;
            if !page.value.is_empty() {
                return Ok(true);
            }
            pages += 1;
            if pages >= MAX_PROBE_PAGES {
                break;
            }
            next = page.next_link;
        }
        Ok(false)
    }

    /// Starts the subscription of each content type, lists them, and looks for content of
    /// the last 24 hours in each one that is enabled.
    async fn unified_audit(&self, content_types: &[ContentType]) -> AuditFindings {
        let mut starts = Vec::new();
        for ct in content_types {
            let r = management_activity::start_subscription(
                self.client,
                &self.tenant,
                *ct,
                self.deadline(),
            )
            .await;
            starts.push((*ct, r));
        }
        let any_started = starts.iter().any(|(_, r)| r.is_ok());
        let listed = if any_started {
            Some(
                management_activity::list_subscriptions(self.client, &self.tenant, self.deadline())
                    .await,
            )
        } else {
            None
        };
        let mut content = Vec::new();
        for (ct, r) in &starts {
            if r.is_ok() {
                let now = self.client.clock().now();
                let found = management_activity::any_content(
                    self.client,
                    &self.tenant,
                    *ct,
                    now,
                    self.deadline(),
                    MAX_PROBE_PAGES,
                )
                .await;
                content.push((*ct, found));
            }
        }
        AuditFindings {
            starts,
            listed,
            content,
        }
    }

    /// Every page of `path`.
    async fn all(&self, path: &str) -> Result<Vec<serde_json::Value>, SourceError> {
        let url = ApiClient::url(&self.tenant, Api::Graph, path, &[])?;
        self.client
            .get_all(&self.tenant, Bucket::Reports, &url, self.deadline())
            .await
    }
}

/// Runs every check against the tenant's real endpoints (or a loopback simulator behind the
/// stack's endpoint override). The stack's token source is given the request's app for the
/// tenant.
pub async fn run(stack: &ClientStack, req: Request) -> Report {
    let d = &req.discovery;
    let cloud = d.cloud;
    let mut checks = vec![cloud_check(d, req.registered_cloud, &req.served)];
    let cloud_ok = checks[0].status == Status::Pass;

    // 2. Credential and token.
    let (credential, token, consent_revoked) = match &req.app {
        None => (
            Check::fail(
                CheckId::Credential,
                format!(
                    "no app credential named {:?} is configured for the {} poller",
                    req.app_ref,
                    cloud.group()
                ),
                format!(
                    "add [apps.{}] with the client id and secret (or certificate) of the {} app registration to the configuration",
                    req.app_ref,
                    cloud.group()
                ),
                HealthState::CredentialsExpired,
            ),
            None,
            false,
        ),
        Some(app) if cloud_ok || req.registered_cloud.is_some_and(|r| r != cloud) => {
            stack.tokens.set(&d.tenant_id, app.clone());
            let result = stack
                .client
                .tokens()
                .token(
                    cloud,
                    &d.tenant_id,
                    Api::Graph,
                    stack.clock.now() + TimeDelta::seconds(90),
                )
                .await;
            credential_check(&result, app, cloud)
        }
        Some(_) => (
            Check::skip(CheckId::Credential, "skipped: the cloud check failed"),
            None,
            false,
        ),
    };
    checks.push(credential);
    checks.push(consent_check(token.as_ref(), consent_revoked));
    let granted = token.as_ref().map(|t| t.roles.clone()).unwrap_or_default();
    let (permissions, missing_required, missing_recommended) =
        permissions_check(token.as_ref().map(|_| granted.as_slice()));
    checks.push(permissions);

    let probe = token.as_ref().map(|_| Probe {
        client: &stack.client,
        tenant: Tenant {
            id: d.tenant_id.clone(),
            cloud,
        },
    });
    let since = stack.clock.now() - TimeDelta::hours(24);
    let wants_signins = req.streams.contains(&Stream::Signins);

    // 5. Sign-in logs licence, and whether sign-ins of the last 24 h exist (for check 7).
    let signins = match &probe {
        Some(p) if cloud.audit_logs_available() => {
            let path = GraphLogSource::for_stream(Stream::Signins, cloud, false)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map_or("v1.0/auditLogs/signIns", |s| s.path);
            let q = [
                (
                    "$filter",
                    format!("createdDateTime ge {}", filter_time(since)),
                ),
                ("$top", "1".to_string()),
            ];
            Some(p.any(path, &q).await)
        }
        _ => None,
    };
    let licence = signin_licence_check(probe.is_some(), cloud, signins.as_ref(), wants_signins);
    checks.push(licence.check);

    // 6. Exchange Online licence.
    let exchange = match &probe {
        None => Check::skip(CheckId::ExchangeLicence, "skipped: no usable token"),
        Some(p) => exchange_licence_check(&p.first_page("v1.0/subscribedSkus", &[]).await, cloud),
    };
    let exchange_missing = exchange.status == Status::Fail;
    checks.push(exchange);

    // 7. Data in the last 24 hours.
    let data = match &probe {
        Some(p) if cloud.audit_logs_available() => {
            let q = [
                (
                    "$filter",
                    format!("activityDateTime ge {}", filter_time(since)),
                ),
                ("$top", "1".to_string()),
            ];
            let audits = p.any("v1.0/auditLogs/directoryAudits", &q).await;
            data_24h_check(
                &audits,
                &DataContext {
                    signins_24h: licence.signins_24h,
                    signin_licence_missing: licence.licence_missing,
                    wants_signins,
                    exchange_missing,
                    permissions_missing: !missing_required.is_empty(),
                },
                cloud,
            )
        }
        _ => Check::skip(CheckId::Data24h, "skipped: no usable token"),
    };
    checks.push(data);

    // 8. MFA registration.
    let mfa = match &probe {
        None => Check::skip(CheckId::MfaRegistration, "skipped: no usable token"),
        Some(p) => match p
            .all("v1.0/reports/authenticationMethods/userRegistrationDetails")
            .await
        {
            Ok(users) => mfa_check(&users),
            Err(SourceError::LicenceRequired) => Check::new(
                CheckId::MfaRegistration,
                Status::Skip,
                "the MFA registration report needs Entra ID P1/P2",
                None,
            ),
            Err(e) => {
                let (detail, remedy, _) = describe_source(&e, "the MFA registration report", cloud);
                Check::warn(CheckId::MfaRegistration, detail, remedy)
            }
        },
    };
    checks.push(mfa);

    // 9-11. The Unified Audit Log (Management Activity API).
    let wants_unified = req.streams.contains(&Stream::UnifiedAudit);
    let audit = match &probe {
        Some(p) if wants_unified && Api::ManagementActivity.host(cloud).is_some() => {
            Some(p.unified_audit(&req.unified_audit.content_types()).await)
        }
        _ => None,
    };
    let why_not = if !wants_unified {
        "skipped: the unified_audit stream is not polled for this tenant"
    } else if probe.is_none() {
        "skipped: no usable token"
    } else {
        "skipped: see audit_log"
    };
    match &audit {
        Some(a) => {
            checks.push(audit_log_check(&a.starts));
            checks.push(audit_subscriptions_check(&a.starts, a.listed.as_ref()));
            checks.push(audit_content_check(&a.content, &a.starts, exchange_missing));
        }
        None if wants_unified && probe.is_some() => {
            checks.push(Check::fail(
                CheckId::AuditLog,
                format!("{} has no Office 365 Management Activity API", cloud.label()),
                "this cloud's Unified Audit Log (Exchange, inbox rules) cannot be polled: remove the unified_audit stream from the tenant",
                HealthState::Degraded,
            ));
            checks.push(Check::skip(CheckId::AuditSubscriptions, why_not));
            checks.push(Check::skip(CheckId::AuditContent, why_not));
        }
        None => {
            for id in [
                CheckId::AuditLog,
                CheckId::AuditSubscriptions,
                CheckId::AuditContent,
            ] {
                checks.push(Check::skip(id, why_not));
            }
        }
    }

    let blockers = checks.iter().filter(|c| c.status == Status::Fail).count();
    let implied_state = if blockers == 0 {
        HealthState::Pending
    } else {
        checks
            .iter()
            .find_map(|c| c.implies)
            .unwrap_or(HealthState::Degraded)
    };
    Report {
        tenant_id: d.tenant_id.clone(),
        domain: d.domain.clone(),
        cloud,
        cloud_label: cloud.label().to_string(),
        poller: cloud.group().as_str().to_string(),
        granted_roles: granted,
        missing_required,
        missing_recommended,
        retention_days: licence.retention_days,
        checks,
        blockers,
        implied_state,
    }
}

/// Check 1: The tenant's cloud against the registry and what this deployment serves.
pub fn cloud_check(d: &Discovery, registered: Option<Cloud>, served: &[CloudGroup]) -> Check {
    let cloud = d.cloud;
    let scopes = format!(
        "tenant_region_scope {}, sub-scope {}",
        d.region_scope.as_deref().unwrap_or("-"),
        d.region_sub_scope.as_deref().unwrap_or("-")
    );
    match registered {
        Some(reg) if reg != cloud => Check::fail(
            CheckId::Cloud,
            format!(
                "registered as {} but its OpenID configuration says {} ({scopes})",
                reg.label(),
                cloud.label()
            ),
            format!(
                "the tenant is in the wrong cloud in the registry: remove it and add it again (`itdr tenants remove --purge`, then `itdr tenants add`), which detects the cloud; it will be polled by the {} poller",
                cloud.group()
            ),
            HealthState::Pending,
        ),
        _ if !served.contains(&cloud.group()) => Check::fail(
            CheckId::Cloud,
            format!(
                "{} ({scopes}); this deployment does not run the {} poller",
                cloud.label(),
                cloud.group()
            ),
            format!(
                "deploy the {} poller (infra Deployment=full or {}) and configure its app registration; {} tenants cannot be served from the {} poller",
                cloud.group(),
                cloud.group(),
                cloud.label(),
                served
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            HealthState::Pending,
        ),
        _ => Check::pass(
            CheckId::Cloud,
            format!(
                "{} ({scopes}); served by the {} poller",
                cloud.label(),
                cloud.group()
            ),
        ),
    }
}

/// Check 2: The token request's outcome: the check, the token, and whether the credential worked
/// but the token carries no roles (consent revoked).
pub fn credential_check(
    result: &Result<AccessToken, AuthError>,
    app: &AppCredential,
    cloud: Cloud,
) -> (Check, Option<AccessToken>, bool) {
    let issued = Check::pass(
        CheckId::Credential,
        format!(
            "app {} got a Graph token from {}",
            app.client_id,
            cloud.login_host()
        ),
    );
    match result {
        Ok(t) => (issued, Some(t.clone()), false),
        // A token without roles: the credential works, the consent is what is missing.
        Err(AuthError::ConsentRevoked) => (issued, None, true),
        Err(e) => {
            let (detail, remedy, s) = describe_auth(e, cloud);
            (
                Check::fail(CheckId::Credential, detail, remedy, s),
                None,
                false,
            )
        }
    }
}

/// Check 3: Admin consent: the token carries application permissions.
pub fn consent_check(token: Option<&AccessToken>, revoked: bool) -> Check {
    if revoked {
        return Check::fail(
            CheckId::Consent,
            "the token carries no application permissions: admin consent was never granted or has been revoked",
            "ask the customer's Global Administrator to grant admin consent to the app again (the consent link of the onboarding guide), then run `itdr tenants reauthorize`",
            HealthState::ConsentRevoked,
        );
    }
    match token {
        Some(t) => Check::pass(
            CheckId::Consent,
            format!(
                "admin consent present: {} application permissions",
                t.roles.len()
            ),
        ),
        None => Check::skip(CheckId::Consent, "skipped: no token"),
    }
}

/// Check 4: The granted roles (`None`: no token) against the required and recommended ones.
pub fn permissions_check(
    granted: Option<&[String]>,
) -> (Check, Vec<MissingRole>, Vec<MissingRole>) {
    let Some(granted) = granted else {
        return (
            Check::skip(CheckId::Permissions, "skipped: no token"),
            Vec::new(),
            Vec::new(),
        );
    };
    let has = |r: &str| granted.iter().any(|g| g.eq_ignore_ascii_case(r));
    let missing = |list: &[&str]| -> Vec<MissingRole> {
        list.iter()
            .filter(|r| !has(r))
            .map(|r| MissingRole {
                role: (*r).to_string(),
                purpose: role_purpose(r).to_string(),
            })
            .collect()
    };
    let mut missing_required = missing(REQUIRED_GRAPH_ROLES);
    for (role, also) in INVENTORY_REQUIRED_ROLES {
        if !has(role) && !also.iter().any(|a| has(a)) {
            missing_required.push(MissingRole {
                role: (*role).to_string(),
                purpose: role_purpose(role).to_string(),
            });
        }
    }
    let mut missing_recommended = missing(RECOMMENDED_ROLES);
    if !has("Organization.Read.All") && !has("Directory.Read.All") {
        missing_recommended.push(MissingRole {
            role: "Organization.Read.All".into(),
            purpose: role_purpose("Organization.Read.All").into(),
        });
    }
    let list = |m: &[MissingRole]| {
        m.iter()
            .map(|r| format!("{} ({})", r.role, r.purpose))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let check = if !missing_required.is_empty() {
        Check::fail(
            CheckId::Permissions,
            format!("missing required: {}", list(&missing_required)),
            format!(
                "partial consent: the customer's Global Administrator must grant admin consent again so the app's current permissions are all granted (missing {}), then run `itdr tenants reauthorize`",
                missing_required
                    .iter()
                    .map(|r| r.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            HealthState::PermissionMissing,
        )
    } else if !missing_recommended.is_empty() {
        Check::warn(
            CheckId::Permissions,
            format!(
                "required permissions granted; missing recommended: {}",
                list(&missing_recommended)
            ),
            "re-grant admin consent to add the missing permissions; ingestion works without them, response actions do not",
        )
    } else {
        Check::pass(
            CheckId::Permissions,
            format!(
                "all {} required and {} recommended permissions granted",
                REQUIRED_GRAPH_ROLES.len(),
                RECOMMENDED_ROLES.len()
            ),
        )
    };
    (check, missing_required, missing_recommended)
}

/// What the sign-in licence check found.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenceFinding {
    /// The check.
    pub check: Check,
    /// The retention the licence implies, when known.
    pub retention_days: Option<u32>,
    /// Whether sign-ins of the last 24 hours exist (`None`: not readable or not checked).
    pub signins_24h: Option<bool>,
    /// Whether Graph refused sign-in logs for want of P1/P2.
    pub licence_missing: bool,
}

/// Check 5: Sign-in logs readable (Entra ID P1/P2): `probe` is whether a token was had, `signins`
/// the outcome of looking for a sign-in of the last 24 hours.
pub fn signin_licence_check(
    probe: bool,
    cloud: Cloud,
    signins: Option<&Result<bool, SourceError>>,
    wants_signins: bool,
) -> LicenceFinding {
    let finding = |check, retention_days, signins_24h, licence_missing| LicenceFinding {
        check,
        retention_days,
        signins_24h,
        licence_missing,
    };
    if !probe {
        return finding(
            Check::skip(CheckId::SigninLicence, "skipped: no usable token"),
            None,
            None,
            false,
        );
    }
    match signins {
        None => finding(
            Check::fail(
                CheckId::SigninLicence,
                format!("{} has no audit log API in Microsoft Graph", cloud.label()),
                "this cloud cannot be polled for sign-ins and directory audits",
                HealthState::Degraded,
            ),
            None,
            None,
            false,
        ),
        Some(Ok(any)) => finding(
            Check::pass(
                CheckId::SigninLicence,
                format!(
                    "sign-in logs readable (Entra ID P1/P2): sign-ins and audit logs are kept {RETENTION_DAYS_PREMIUM} days, so the first poll backfills {RETENTION_DAYS_PREMIUM} days"
                ),
            ),
            Some(RETENTION_DAYS_PREMIUM),
            Some(*any),
            false,
        ),
        Some(Err(SourceError::LicenceRequired)) => {
            let detail = format!(
                "Graph refuses sign-in logs with 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant: the tenant has no Microsoft Entra ID P1/P2. No sign-ins can be read, and directory audits are kept only {RETENTION_DAYS_FREE} days (backfill reaches {RETENTION_DAYS_FREE} days)"
            );
            let remedy = "assign Entra ID P1 or P2 in the tenant (included in Microsoft 365 Business Premium, E3 and E5); sign-in logs become readable once the licence is active";
            let check = if wants_signins {
                Check::fail(
                    CheckId::SigninLicence,
                    detail,
                    remedy,
                    HealthState::LicenceMissing,
                )
            } else {
                Check::warn(CheckId::SigninLicence, detail, remedy)
            };
            finding(check, Some(RETENTION_DAYS_FREE), None, true)
        }
        Some(Err(e)) => {
            let (detail, remedy, s) = describe_source(e, "sign-in logs", cloud);
            finding(
                Check::fail(CheckId::SigninLicence, detail, remedy, s),
                None,
                None,
                false,
            )
        }
    }
}

/// Check 6: An active Exchange Online plan in `subscribedSkus`.
pub fn exchange_licence_check(
    skus: &Result<Vec<serde_json::Value>, SourceError>,
    cloud: Cloud,
) -> Check {
    match skus {
        Ok(skus) => {
            let found = exchange_plans(skus);
            if let Some((sku, plan)) = found.active.first() {
                Check::pass(
                    CheckId::ExchangeLicence,
                    format!("active Exchange Online plan {plan} in SKU {sku}"),
                )
            } else if let Some((sku, plan)) = found.grace.first() {
                Check::warn(
                    CheckId::ExchangeLicence,
                    format!(
                        "Exchange Online plan {plan} in SKU {sku} is in its grace period (capabilityStatus Warning)"
                    ),
                    "renew the subscription: when it lapses, Exchange audit events stop",
                )
            } else {
                let foundation = if found.foundation_only {
                    " (only EXCHANGE_S_FOUNDATION, which does not provide a mailbox)"
                } else {
                    ""
                };
                Check::fail(
                    CheckId::ExchangeLicence,
                    format!("no active Exchange Online licence in subscribedSkus{foundation}"),
                    "assign at least one Exchange Online licence (an EXCHANGE_S_* plan such as Exchange Online Plan 1/2, or a Microsoft 365 suite with Exchange); without it Microsoft 365 audit events such as inbox-rule changes are not recorded",
                    HealthState::LicenceMissing,
                )
            }
        }
        Err(SourceError::Forbidden { .. }) => Check::warn(
            CheckId::ExchangeLicence,
            "cannot read subscribedSkus: neither Organization.Read.All nor Directory.Read.All is granted",
            "grant Organization.Read.All to let preflight check licences, or confirm an Exchange Online licence in the Microsoft 365 admin centre",
        ),
        Err(e) => {
            let (detail, remedy, _) = describe_source(e, "subscribedSkus", cloud);
            Check::warn(CheckId::ExchangeLicence, detail, remedy)
        }
    }
}

/// What the earlier checks found that explains missing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataContext {
    /// Whether sign-ins of the last 24 hours exist (`None`: not readable or not checked).
    pub signins_24h: Option<bool>,
    /// Whether Graph refused sign-in logs for want of P1/P2.
    pub signin_licence_missing: bool,
    /// Whether the tenant's sign-ins will be polled.
    pub wants_signins: bool,
    /// Whether the Exchange licence check failed.
    pub exchange_missing: bool,
    /// Whether required permissions are missing.
    pub permissions_missing: bool,
}

/// Check 7: Data of the last 24 hours: `audits` is whether a directory audit of the last 24 hours
/// exists. When none does, the likely causes are listed.
pub fn data_24h_check(
    audits: &Result<bool, SourceError>,
    ctx: &DataContext,
    cloud: Cloud,
) -> Check {
    let has_audits = match audits {
        Err(e) => {
            let (detail, remedy, s) = describe_source(e, "directory audits", cloud);
            return Check::fail(CheckId::Data24h, detail, remedy, s);
        }
        Ok(a) => *a,
    };
    let has_signins = ctx.signins_24h == Some(true);
    let mut causes = vec![
        "audit logging is disabled in Microsoft 365: check the audit log status in the Microsoft Purview portal (Audit) and turn recording on".to_string(),
        "roles were removed from the Exchange role group Organization Management (it needs Audit Logs, Mail Recipients, Organization Configuration, Transport Rules and Role Management, with Exchange Administrator assigned): restore them".to_string(),
    ];
    if ctx.exchange_missing {
        causes
            .push("found: the tenant has no Exchange Online licence (see exchange_licence)".into());
    } else {
        causes.push("confirm at least one Exchange Online licence".into());
    }
    if ctx.permissions_missing {
        causes.push("found: required permissions are missing (see permissions)".into());
    }
    causes.push("a newly consented tenant can take up to 24 hours (longer for legacy tenants) before data appears: check again tomorrow".into());
    let seen = |b: bool| if b { "yes" } else { "none" };
    let detail = format!(
        "directory audits in the last 24 h: {}; sign-ins in the last 24 h: {}",
        seen(has_audits),
        match ctx.signins_24h {
            Some(b) => seen(b).to_string(),
            None if ctx.signin_licence_missing => "not readable (no P1/P2)".into(),
            None => "not checked".into(),
        }
    );
    if has_audits && (has_signins || !ctx.wants_signins || ctx.signins_24h.is_none()) {
        Check::pass(CheckId::Data24h, detail)
    } else {
        Check::warn(
            CheckId::Data24h,
            format!("no data in 24 h: {detail}"),
            format!("likely causes: {}", causes.join("; ")),
        )
    }
}

/// Exchange Online plans found in `subscribedSkus`: `(skuPartNumber, servicePlanName)`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExchangePlans {
    /// Provisioned plans on SKUs with `capabilityStatus` Enabled.
    pub active: Vec<(String, String)>,
    /// Provisioned plans on SKUs in their grace period (`Warning`).
    pub grace: Vec<(String, String)>,
    /// Only `EXCHANGE_S_FOUNDATION` was found (no mailbox).
    pub foundation_only: bool,
}

/// Looks for `EXCHANGE_S_*` service plans (other than the foundation plan) with
/// `provisioningStatus` Success.
pub fn exchange_plans(skus: &[serde_json::Value]) -> ExchangePlans {
    let mut out = ExchangePlans::default();
    let mut foundation = false;
    for sku in skus {
        let status = sku["capabilityStatus"].as_str().unwrap_or("");
        let part = sku["skuPartNumber"].as_str().unwrap_or("?").to_string();
        let plans = sku["servicePlans"].as_array().cloned().unwrap_or_default();
        for p in plans {
            let name = p["servicePlanName"].as_str().unwrap_or("");
            let ok = p["provisioningStatus"].as_str() == Some("Success");
            if !name.to_ascii_uppercase().starts_with("EXCHANGE_S_") || !ok {
                continue;
            }
            if name.eq_ignore_ascii_case("EXCHANGE_S_FOUNDATION") {
                foundation = true;
                continue;
            }
            match status {
                "Enabled" => out.active.push((part.clone(), name.to_string())),
                "Warning" => out.grace.push((part.clone(), name.to_string())),
                _ => {}
            }
        }
    }
    out.foundation_only = foundation && out.active.is_empty() && out.grace.is_empty();
    out
}

/// Check 8: The MFA note: members (not guests) without a Microsoft-registered MFA method.
pub fn mfa_check(users: &[serde_json::Value]) -> Check {
    let members: Vec<&serde_json::Value> = users
        .iter()
        .filter(|u| u["userType"].as_str() != Some("guest"))
        .collect();
    if members.is_empty() {
        return Check::skip(
            CheckId::MfaRegistration,
            "the MFA registration report lists no members",
        );
    }
    let without = members
        .iter()
        .filter(|u| u["isMfaRegistered"].as_bool() != Some(true))
        .count();
    let share = without as f64 / members.len() as f64;
    let detail = format!(
        "{without} of {} members have no Microsoft-registered MFA method",
        members.len()
    );
    if share > MFA_GAP_WARN_SHARE {
        Check::warn(
            CheckId::MfaRegistration,
            detail,
            "if the customer uses a third-party MFA product, it usually does not register on the user object, so these users look unprotected here: record the third-party MFA in the customer's runbook. Users with a Microsoft-registered factor (Authenticator, Windows Hello, FIDO2 key) show as registered",
        )
    } else {
        Check::pass(CheckId::MfaRegistration, detail)
    }
}

/// What preflight found out about the Unified Audit Log.
struct AuditFindings {
    /// The outcome of starting each content type's subscription.
    starts: Vec<(ContentType, Result<StartOutcome, SourceError>)>,
    /// The subscriptions listed afterwards (when any start worked).
    listed: Option<Result<Vec<SubscriptionInfo>, SourceError>>,
    /// Whether content became available in the last 24 hours, per enabled content type.
    content: Vec<(ContentType, Result<bool, SourceError>)>,
}

/// The seed's remedy for missing Unified Audit Log data: the audit log, the role group, the
/// licence.
const AUDIT_PREREQUISITES: &str = "check that audit logging is on (Microsoft Purview portal, Audit: start recording user and admin activity; or `Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true` in Exchange Online PowerShell; it can take up to 60 minutes to take effect), that the Exchange role group Organization Management has the Audit Logs, Mail Recipients, Organization Configuration, Transport Rules and Role Management roles with Exchange Administrator assigned, and that at least one Exchange Online licence is active";

/// Check 9: unified audit logging is on: a subscription start either works (the log is on), or
/// answers the compliance service's "tenant does not exist" (the log is off).
pub fn audit_log_check(starts: &[(ContentType, Result<StartOutcome, SourceError>)]) -> Check {
    if starts.iter().any(|(_, r)| r.is_ok()) {
        return Check::pass(
            CheckId::AuditLog,
            "unified audit logging is on: Management Activity subscriptions can be started",
        );
    }
    if starts
        .iter()
        .any(|(_, r)| matches!(r, Err(SourceError::AuditingDisabled)))
    {
        return Check::fail(
            CheckId::AuditLog,
            "unified audit logging is off: Microsoft refused to start a Management Activity subscription (DataServiceException: the tenant does not exist for the audit service), so no Exchange, inbox-rule or audit-log sign-in events are recorded",
            format!(
                "turn auditing on: {AUDIT_PREREQUISITES}; then run `itdr tenants reauthorize`, which starts the subscriptions"
            ),
            HealthState::PermissionMissing,
        );
    }
    match starts.iter().find_map(|(_, r)| r.as_ref().err()) {
        Some(e) => Check::skip(
            CheckId::AuditLog,
            &format!("could not tell whether audit logging is on: {e} (see audit_subscriptions)"),
        ),
        None => Check::skip(CheckId::AuditLog, "no content type to subscribe to"),
    }
}

/// Check 10: every subscription is enabled. A start that worked and a listing that says
/// `enabled` pass; `AF20023` (an administrator disabled it) and a missing `ActivityFeed.Read`
/// block.
pub fn audit_subscriptions_check(
    starts: &[(ContentType, Result<StartOutcome, SourceError>)],
    listed: Option<&Result<Vec<SubscriptionInfo>, SourceError>>,
) -> Check {
    let listed_status = |ct: ContentType| -> Option<bool> {
        match listed {
            Some(Ok(v)) => v
                .iter()
                .find(|s| ContentType::parse(&s.content_type) == Some(ct))
                .map(SubscriptionInfo::enabled),
            _ => None,
        }
    };
    let mut enabled = Vec::new();
    let mut disabled = Vec::new();
    let mut forbidden = false;
    let mut no_publisher = false;
    let mut audit_off = false;
    let mut other: Option<String> = None;
    for (ct, r) in starts {
        match r {
            Ok(outcome) if listed_status(*ct) != Some(false) => enabled.push(format!(
                "{ct} ({})",
                match outcome {
                    StartOutcome::Started => "started now",
                    StartOutcome::AlreadyEnabled => "already enabled",
                }
            )),
            Ok(_) | Err(SourceError::SubscriptionDisabled) => disabled.push(ct.as_str()),
            Err(SourceError::Forbidden { .. }) => forbidden = true,
            Err(SourceError::PublisherIdMissing) => no_publisher = true,
            Err(SourceError::AuditingDisabled) => audit_off = true,
            Err(e) => {
                other.get_or_insert_with(|| format!("{ct}: {e}"));
            }
        }
    }
    if let Some(Err(e)) = listed {
        other.get_or_insert_with(|| format!("listing the subscriptions: {e}"));
    }
    if no_publisher {
        return Check::fail(
            CheckId::AuditSubscriptions,
            "this deployment has no publisher identifier for the Management Activity API",
            "set your own tenant id as [management_activity] publisher_id in the configuration (ITDR_PUBLISHER_ID for the Lambda pollers); Microsoft counts the API's rate limits by it",
            HealthState::Degraded,
        );
    }
    if forbidden {
        return Check::fail(
            CheckId::AuditSubscriptions,
            "the app has no ActivityFeed.Read permission on the Office 365 Management APIs (AF10001)",
            "add the application permission ActivityFeed.Read (Office 365 Management APIs) to the app registration, then ask the customer's Global Administrator to grant admin consent again and run `itdr tenants reauthorize`",
            HealthState::PermissionMissing,
        );
    }
    if !disabled.is_empty() {
        return Check::fail(
            CheckId::AuditSubscriptions,
            format!(
                "subscription disabled by a tenant or service administrator (AF20023): {}",
                disabled.join(", ")
            ),
            format!(
                "ask the customer's administrator to re-enable it: {AUDIT_PREREQUISITES}; then run `itdr tenants reauthorize`, which starts the subscriptions again"
            ),
            HealthState::PermissionMissing,
        );
    }
    if audit_off && enabled.is_empty() {
        return Check::skip(
            CheckId::AuditSubscriptions,
            "no subscription can be started while audit logging is off (see audit_log)",
        );
    }
    if let Some(e) = other {
        return Check::warn(
            CheckId::AuditSubscriptions,
            format!("could not confirm every subscription: {e}"),
            "retry preflight in a few minutes; if it persists, check network egress to the Management Activity API host",
        );
    }
    Check::pass(
        CheckId::AuditSubscriptions,
        format!("subscriptions enabled: {}", enabled.join(", ")),
    )
}

/// Check 11: Unified Audit Log content of the last 24 hours. When none arrived, the likely
/// causes are listed: subscriptions started just now (the first content can take up to 12
/// hours), audit logging, the Organization Management role group, the Exchange licence.
pub fn audit_content_check(
    content: &[(ContentType, Result<bool, SourceError>)],
    starts: &[(ContentType, Result<StartOutcome, SourceError>)],
    exchange_missing: bool,
) -> Check {
    if content.is_empty() {
        return Check::skip(CheckId::AuditContent, "skipped: no enabled subscription");
    }
    if let Some((ct, Err(e))) = content.iter().find(|(_, r)| r.is_err()) {
        return Check::warn(
            CheckId::AuditContent,
            format!("could not list {ct} content: {e}"),
            "retry preflight in a few minutes",
        );
    }
    let detail = content
        .iter()
        .map(|(ct, r)| {
            format!(
                "{ct}: {}",
                if matches!(r, Ok(true)) { "yes" } else { "none" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if content.iter().any(|(_, r)| matches!(r, Ok(true))) {
        return Check::pass(
            CheckId::AuditContent,
            format!("unified audit content in the last 24 h: {detail}"),
        );
    }
    let mut causes = Vec::new();
    if starts
        .iter()
        .any(|(_, r)| matches!(r, Ok(StartOutcome::Started)))
    {
        causes.push("found: the subscriptions were started just now, and Microsoft can take up to 12 hours to deliver their first content: check again later".to_string());
    }
    causes.push("audit logging is disabled in Microsoft 365: check the audit log status in the Microsoft Purview portal (Audit) and turn recording on".to_string());
    causes.push("roles were removed from the Exchange role group Organization Management (it needs Audit Logs, Mail Recipients, Organization Configuration, Transport Rules and Role Management, with Exchange Administrator assigned): restore them".to_string());
    if exchange_missing {
        causes
            .push("found: the tenant has no Exchange Online licence (see exchange_licence)".into());
    } else {
        causes.push("confirm at least one Exchange Online licence".into());
    }
    causes.push("a newly consented tenant can take up to 24 hours before data appears".into());
    Check::warn(
        CheckId::AuditContent,
        format!("no unified audit content in 24 h: {detail}"),
        format!("likely causes: {}", causes.join("; ")),
    )
}

/// Detail, remedy and implied health state of a token failure.
fn describe_auth(e: &AuthError, cloud: Cloud) -> (String, String, HealthState) {
    let state = e.kind().health_state();
    let remedy = match e {
        AuthError::AppNotInTenant { .. } => format!(
            "the app has no service principal in this tenant: admin consent was never granted, the customer removed the app, or the credential is the app of another cloud ({} tenants need the {} app registration). Ask the customer's Global Administrator to grant consent; until then the tenant is offboarded",
            cloud.label(),
            cloud.group()
        ),
        AuthError::ConsentMissing { .. } => {
            "admin consent is missing: ask the customer's Global Administrator to grant admin consent to the app".into()
        }
        AuthError::SecretExpired { .. } => {
            "the client secret expired: create a new secret on the app registration and update the configured credential (or move to a certificate)".into()
        }
        AuthError::InvalidSecret { .. } => {
            "the client secret is wrong: configure the secret's value (not its ID) of this app registration".into()
        }
        AuthError::TenantNotFound { .. } | AuthError::WrongCloud { .. } => format!(
            "the login host of {} does not accept this tenant: the tenant is in another national cloud or the credential belongs to another cloud; re-register the tenant so its cloud is detected",
            cloud.label()
        ),
        other => other.remedy().to_string(),
    };
    (e.to_string(), remedy, state)
}

/// Detail, remedy and implied health state of a failure reading `what`.
fn describe_source(e: &SourceError, what: &str, cloud: Cloud) -> (String, String, HealthState) {
    match e {
        SourceError::Forbidden { code } => (
            format!("reading {what} is forbidden ({code})"),
            "a required application permission is missing: re-grant admin consent".into(),
            HealthState::PermissionMissing,
        ),
        SourceError::ConsentRevoked => (
            format!("reading {what}: {e}"),
            "ask the customer's Global Administrator to grant admin consent again".into(),
            HealthState::ConsentRevoked,
        ),
        SourceError::Throttled { .. } => (
            format!("reading {what}: {e}"),
            "Microsoft is throttling the app: run preflight again in a few minutes".into(),
            HealthState::Degraded,
        ),
        SourceError::Auth(a) => {
            let (d, r, s) = describe_auth(a, cloud);
            (format!("reading {what}: {d}"), r, s)
        }
        _ => (
            format!("reading {what}: {e}"),
            "retry later; if it persists, check network egress to Microsoft Graph".into(),
            HealthState::Degraded,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_permissions_are_required_or_recommended_with_what_is_lost() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Directory.Read.All grants users, apps and roles; Policy.Read.All is recommended.
        let granted = roles(&["AuditLog.Read.All", "Directory.Read.All"]);
        let (check, req, rec) = permissions_check(Some(&granted));
        assert!(req.is_empty(), "{req:?}");
        let policy = rec.iter().find(|m| m.role == "Policy.Read.All").unwrap();
        assert!(policy.purpose.contains("conditional access"));
        let mailbox = rec
            .iter()
            .find(|m| m.role == "MailboxSettings.Read")
            .unwrap();
        assert!(mailbox.purpose.contains("inbox rules"));
        assert!(check.detail.contains("Policy.Read.All"));
        // Without Directory.Read.All, each narrower inventory permission is named.
        let granted = roles(&["AuditLog.Read.All", "User.Read.All"]);
        let (_, req, _) = permissions_check(Some(&granted));
        let names: Vec<&str> = req.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "Directory.Read.All",
                "Application.Read.All",
                "RoleManagement.Read.Directory"
            ]
        );
        assert!(req[2].purpose.contains("Global Administrator"));
    }

    #[test]
    fn exchange_is_found_by_plan_prefix_and_foundation_does_not_count() {
        let plan = |n: &str, s: &str| json!({"servicePlanName": n, "provisioningStatus": s});
        let sku = |part: &str, status: &str, plans: Vec<serde_json::Value>| json!({"skuPartNumber": part, "capabilityStatus": status, "servicePlans": plans});
        let none = exchange_plans(&[sku(
            "TEAMS_EXPLORATORY",
            "Enabled",
            vec![
                plan("EXCHANGE_S_FOUNDATION", "Success"),
                plan("TEAMS1", "Success"),
            ],
        )]);
        assert!(none.active.is_empty() && none.foundation_only);
        let std = exchange_plans(&[sku(
            "EXCHANGESTANDARD",
            "Enabled",
            vec![plan("EXCHANGE_S_STANDARD", "Success")],
        )]);
        assert_eq!(std.active.len(), 1);
        let disabled = exchange_plans(&[sku(
            "ENTERPRISEPACK",
            "Enabled",
            vec![plan("EXCHANGE_S_ENTERPRISE", "Disabled")],
        )]);
        assert!(disabled.active.is_empty() && !disabled.foundation_only);
        let suspended = exchange_plans(&[sku(
            "ENTERPRISEPACK",
            "Suspended",
            vec![plan("EXCHANGE_S_ENTERPRISE", "Success")],
        )]);
        assert!(suspended.active.is_empty() && suspended.grace.is_empty());
        let grace = exchange_plans(&[sku(
            "ENTERPRISEPACK",
            "Warning",
            vec![plan("EXCHANGE_S_ENTERPRISE", "Success")],
        )]);
        assert_eq!(grace.grace.len(), 1);
    }

    fn starts(
        v: Vec<Result<StartOutcome, SourceError>>,
    ) -> Vec<(ContentType, Result<StartOutcome, SourceError>)> {
        [
            ContentType::Exchange,
            ContentType::AzureActiveDirectory,
            ContentType::General,
        ]
        .into_iter()
        .zip(v)
        .collect()
    }

    #[test]
    fn an_audit_log_that_is_off_blocks_with_the_seeds_remedy() {
        let off = starts(vec![
            Err(SourceError::AuditingDisabled),
            Err(SourceError::AuditingDisabled),
            Err(SourceError::AuditingDisabled),
        ]);
        let c = audit_log_check(&off);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.implies, Some(HealthState::PermissionMissing));
        let remedy = c.remedy.unwrap_or_default();
        for must in [
            "audit",
            "Organization Management",
            "Exchange Online licence",
            "reauthorize",
        ] {
            assert!(remedy.contains(must), "{must}: {remedy}");
        }
        assert_eq!(audit_subscriptions_check(&off, None).status, Status::Skip);
        assert_eq!(audit_content_check(&[], &off, false).status, Status::Skip);
        let on = starts(vec![
            Ok(StartOutcome::AlreadyEnabled),
            Ok(StartOutcome::Started),
            Ok(StartOutcome::AlreadyEnabled),
        ]);
        assert_eq!(audit_log_check(&on).status, Status::Pass);
        let unknown = starts(vec![Err(SourceError::Throttled { retry_after: None })]);
        assert_eq!(audit_log_check(&unknown).status, Status::Skip);
    }

    #[test]
    fn disabled_subscriptions_and_a_missing_permission_block() {
        let info = |ct: &str, status: &str| SubscriptionInfo {
            content_type: ct.into(),
            status: status.into(),
        };
        let ok = starts(vec![
            Ok(StartOutcome::AlreadyEnabled),
            Ok(StartOutcome::Started),
            Ok(StartOutcome::AlreadyEnabled),
        ]);
        let all_on = Ok(vec![
            info("Audit.Exchange", "enabled"),
            info("Audit.AzureActiveDirectory", "enabled"),
            info("Audit.General", "enabled"),
        ]);
        let c = audit_subscriptions_check(&ok, Some(&all_on));
        assert_eq!(c.status, Status::Pass, "{}", c.detail);
        assert!(
            c.detail
                .contains("Audit.AzureActiveDirectory (started now)")
        );
        let disabled = starts(vec![
            Ok(StartOutcome::AlreadyEnabled),
            Err(SourceError::SubscriptionDisabled),
            Ok(StartOutcome::AlreadyEnabled),
        ]);
        let c = audit_subscriptions_check(&disabled, Some(&all_on));
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("AF20023") && c.detail.contains("Audit.AzureActiveDirectory"));
        assert!(
            c.remedy
                .unwrap_or_default()
                .contains("Organization Management")
        );
        // Listed as disabled although the start answered.
        let listed_off = Ok(vec![info("Audit.General", "disabled")]);
        assert_eq!(
            audit_subscriptions_check(&ok, Some(&listed_off)).status,
            Status::Fail
        );
        let forbidden = starts(vec![Err(SourceError::Forbidden {
            code: "AF10001".into(),
        })]);
        let c = audit_subscriptions_check(&forbidden, None);
        assert_eq!(c.status, Status::Fail);
        assert!(c.remedy.unwrap_or_default().contains("ActivityFeed.Read"));
        let no_publisher = starts(vec![Err(SourceError::PublisherIdMissing)]);
        assert!(
            audit_subscriptions_check(&no_publisher, None)
                .remedy
                .unwrap_or_default()
                .contains("publisher_id")
        );
    }

    #[test]
    fn no_content_lists_the_likely_causes() {
        let started = starts(vec![Ok(StartOutcome::Started)]);
        let none = vec![(ContentType::Exchange, Ok(false))];
        let c = audit_content_check(&none, &started, true);
        assert_eq!(c.status, Status::Warn);
        let remedy = c.remedy.unwrap_or_default();
        for must in [
            "12 hours",
            "audit logging",
            "Organization Management",
            "no Exchange Online licence",
        ] {
            assert!(remedy.contains(must), "{must}: {remedy}");
        }
        let some = vec![
            (ContentType::Exchange, Ok(false)),
            (ContentType::AzureActiveDirectory, Ok(true)),
        ];
        let c = audit_content_check(&some, &started, false);
        assert_eq!(c.status, Status::Pass);
        assert!(c.detail.contains("Audit.Exchange: none"));
    }

    #[test]
    fn the_mfa_note_appears_when_most_members_have_no_registered_method() {
        let u = |t: &str, reg: bool| json!({"userType": t, "isMfaRegistered": reg});
        let mostly = vec![
            u("member", true),
            u("member", true),
            u("member", false),
            u("guest", false),
        ];
        assert_eq!(mfa_check(&mostly).status, Status::Pass);
        let third_party = vec![
            u("member", false),
            u("member", false),
            u("member", true),
            u("guest", true),
        ];
        let c = mfa_check(&third_party);
        assert_eq!(c.status, Status::Warn);
        assert!(c.remedy.unwrap_or_default().contains("third-party MFA"));
        assert_eq!(mfa_check(&[u("guest", false)]).status, Status::Skip);
    }
}
