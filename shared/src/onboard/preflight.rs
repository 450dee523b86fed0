//! Preflight: every prerequisite of a tenant checked before the first poll, each with a plain
//! remedy. Most onboarding failures are prerequisite failures (consent, licences, permissions,
//! cloud), not enablement failures; this finds them up front.
//!
//! The checks, in order (a check that needs a token is skipped when there is none):
//! 1. `cloud`: the tenant's national cloud, whether it matches the registered one, and whether
//!    this deployment serves it.
//! 2. `credential`: a token can be had with the configured app credential (AADSTS codes mapped
//!    to remedies: app removed or never consented, secret expired or wrong, wrong cloud).
//! 3. `consent`: the token carries application permissions at all.
//! 4. `permissions`: the token's roles against the required and recommended ones.
//! 5. `signin_licence`: sign-in logs are readable (Entra ID P1/P2) and the retention implied.
//! 6. `exchange_licence`: at least one active Exchange Online plan in `subscribedSkus`.
//! 7. `data_24h`: directory audits and sign-ins of the last 24 hours actually come back.
//! 8. `mfa_registration`: how many members have a Microsoft-registered MFA method (third-party
//!    MFA products often do not register one).
//!
//! Requests are paced like the poller's (5 per 10 s per tenant), and no token, secret or
//! response body reaches the report.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{
    AccessToken, AppCredential, AuthError, REQUIRED_GRAPH_ROLES, Scope, StaticAppTokens,
    TokenClient, role_purpose,
};
use crate::clock::SharedClock;
use crate::cloud::{Cloud, CloudGroup};
use crate::graph::{GraphClient, GraphError, Pacer, Rate, Tenant, filter_time};
use crate::http::Transport;
use crate::poll::sources;
use crate::store::HealthState;
use crate::stream::Stream;

use super::discovery::Discovery;

/// Roles the pipeline can work without, each with what is lost without it.
pub const RECOMMENDED_ROLES: &[&str] = &[
    "User.EnableDisableAccount.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "MailboxSettings.Read",
];

/// Retention of sign-in and audit logs with Entra ID P1/P2.
pub const RETENTION_DAYS_PREMIUM: u32 = 30;
/// Retention of audit logs on Entra ID Free.
pub const RETENTION_DAYS_FREE: u32 = 7;
/// Share of members without a Microsoft-registered MFA method above which the third-party MFA
/// note is shown.
pub const MFA_GAP_WARN_SHARE: f64 = 0.5;

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
    /// Stable identifier (`cloud`, `credential`, …).
    pub id: String,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (absent on a pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
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
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
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
}

struct Ctx {
    graph: GraphClient,
    tenant: Tenant,
    clock: SharedClock,
}

impl Ctx {
    fn deadline(&self) -> DateTime<Utc> {
        self.clock.now() + TimeDelta::seconds(90)
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<serde_json::Value>, GraphError> {
        let url = GraphClient::url(&self.tenant, path, query)?;
        let page = self
            .graph
            .get_page(&self.tenant, &url, self.deadline())
            .await?;
        Ok(page.value)
    }
}

fn check(id: &str, status: Status, detail: impl Into<String>, remedy: Option<String>) -> Check {
    Check {
        id: id.to_string(),
        status,
        detail: detail.into(),
        remedy,
    }
}

fn skip(id: &str, why: &str) -> Check {
    check(id, Status::Skip, why, None)
}

/// Runs every check against the tenant's real endpoints (or a loopback simulator behind the
/// transport's override).
pub async fn run(transport: Transport, clock: SharedClock, req: Request) -> Report {
    let d = &req.discovery;
    let cloud = d.cloud;
    let mut checks = Vec::new();
    let mut state: Option<HealthState> = None;
    let fail_state = |s: HealthState, state: &mut Option<HealthState>| {
        if state.is_none() {
            *state = Some(s);
        }
    };

    // 1. Cloud.
    let scopes = format!(
        "tenant_region_scope {}, sub-scope {}",
        d.region_scope.as_deref().unwrap_or("-"),
        d.region_sub_scope.as_deref().unwrap_or("-")
    );
    let served = req.served.contains(&cloud.group());
    let cloud_check = match req.registered_cloud {
        Some(reg) if reg != cloud => check(
            "cloud",
            Status::Fail,
            format!(
                "registered as {} but its OpenID configuration says {} ({scopes})",
                reg.label(),
                cloud.label()
            ),
            Some(format!(
                "the tenant is in the wrong cloud in the registry: remove it and add it again (`itdr tenants remove --purge`, then `itdr tenants add`), which detects the cloud; it will be polled by the {} poller",
                cloud.group()
            )),
        ),
        _ if !served => check(
            "cloud",
            Status::Fail,
            format!(
                "{} ({scopes}); this deployment does not run the {} poller",
                cloud.label(),
                cloud.group()
            ),
            Some(format!(
                "deploy the {} poller (infra Deployment=full or {}) and configure its app registration; {} tenants cannot be served from the {} poller",
                cloud.group(),
                cloud.group(),
                cloud.label(),
                req.served
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ")
            )),
        ),
        _ => check(
            "cloud",
            Status::Pass,
            format!(
                "{} ({scopes}); served by the {} poller",
                cloud.label(),
                cloud.group()
            ),
            None,
        ),
    };
    let cloud_ok = cloud_check.status == Status::Pass;
    if !cloud_ok {
        fail_state(HealthState::Pending, &mut state);
    }
    checks.push(cloud_check);
    let audit_available = cloud.audit_logs_available();

    // 2. Credential and token.
    let token_client = TokenClient::new(transport.clone(), clock.clone());
    let mut token: Option<AccessToken> = None;
    let mut consent_revoked = false;
    match &req.app {
        None => {
            checks.push(check(
                "credential",
                Status::Fail,
                format!(
                    "no app credential named {:?} is configured for the {} poller",
                    req.app_ref,
                    cloud.group()
                ),
                Some(format!(
                    "add [apps.{}] with the client id and secret (or certificate) of the {} app registration to the configuration",
                    req.app_ref,
                    cloud.group()
                )),
            ));
            fail_state(HealthState::CredentialsExpired, &mut state);
        }
        Some(app) if cloud_ok || req.registered_cloud.is_some_and(|r| r != cloud) => {
            let issued = check(
                "credential",
                Status::Pass,
                format!(
                    "app {} got a Graph token from {}",
                    app.client_id,
                    cloud.login_host()
                ),
                None,
            );
            match token_client
                .token(cloud, &d.tenant_id, app, Scope::Graph)
                .await
            {
                Ok(t) => {
                    checks.push(issued);
                    token = Some(t);
                }
                // A token without roles: the credential works, the consent is what is missing.
                Err(AuthError::ConsentRevoked) => {
                    checks.push(issued);
                    consent_revoked = true;
                }
                Err(e) => {
                    let (detail, remedy, s) = describe_auth(&e, cloud);
                    checks.push(check("credential", Status::Fail, detail, Some(remedy)));
                    fail_state(s, &mut state);
                }
            }
        }
        Some(_) => checks.push(skip("credential", "skipped: the cloud check failed")),
    }

    // 3. Consent.
    let have_token = token.is_some();
    if consent_revoked {
        checks.push(check(
            "consent",
            Status::Fail,
            "the token carries no application permissions: admin consent was never granted or has been revoked",
            Some("ask the customer's Global Administrator to grant admin consent to the app again (the consent link of the onboarding guide), then run `itdr tenants reauthorize`".to_string()),
        ));
        fail_state(HealthState::ConsentRevoked, &mut state);
    } else if let Some(t) = &token {
        checks.push(check(
            "consent",
            Status::Pass,
            format!(
                "admin consent present: {} application permissions",
                t.roles.len()
            ),
            None,
        ));
    } else {
        checks.push(skip("consent", "skipped: no token"));
    }

    // 4. Permissions.
    let granted = token.as_ref().map(|t| t.roles.clone()).unwrap_or_default();
    let missing = |list: &[&str]| -> Vec<MissingRole> {
        list.iter()
            .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
            .map(|r| MissingRole {
                role: (*r).to_string(),
                purpose: role_purpose(r).to_string(),
            })
            .collect()
    };
    let missing_required = if have_token {
        missing(REQUIRED_GRAPH_ROLES)
    } else {
        Vec::new()
    };
    let mut missing_recommended = if have_token {
        missing(RECOMMENDED_ROLES)
    } else {
        Vec::new()
    };
    let reads_orgs = ["Organization.Read.All", "Directory.Read.All"]
        .iter()
        .any(|r| granted.iter().any(|g| g.eq_ignore_ascii_case(r)));
    if have_token && !reads_orgs {
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
    if !have_token {
        checks.push(skip("permissions", "skipped: no token"));
    } else if !missing_required.is_empty() {
        checks.push(check(
            "permissions",
            Status::Fail,
            format!("missing required: {}", list(&missing_required)),
            Some(format!(
                "partial consent: the customer's Global Administrator must grant admin consent again so the app's current permissions are all granted (missing {}), then run `itdr tenants reauthorize`",
                missing_required
                    .iter()
                    .map(|r| r.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ));
        fail_state(HealthState::PermissionMissing, &mut state);
    } else if !missing_recommended.is_empty() {
        checks.push(check(
            "permissions",
            Status::Warn,
            format!(
                "required permissions granted; missing recommended: {}",
                list(&missing_recommended)
            ),
            Some("re-grant admin consent to add the missing permissions; ingestion works without them, response actions do not".to_string()),
        ));
    } else {
        checks.push(check(
            "permissions",
            Status::Pass,
            format!(
                "all {} required and {} recommended permissions granted",
                REQUIRED_GRAPH_ROLES.len(),
                RECOMMENDED_ROLES.len()
            ),
            None,
        ));
    }

    let ctx = match (&token, &req.app) {
        (Some(_), Some(app)) => {
            let pacer = Pacer::new(clock.clone(), Rate::REPORTS_PER_TENANT, None);
            // The same client: its cached token is reused.
            let source = StaticAppTokens::new(token_client, app.clone());
            let graph = GraphClient::new(transport.clone(), Arc::new(source), clock.clone(), pacer)
                .with_backoff(crate::graph::Backoff {
                    floor: Duration::from_secs(1),
                    base: Duration::from_secs(2),
                    cap: Duration::from_secs(20),
                    max_attempts: 3,
                });
            Some(Ctx {
                graph,
                tenant: Tenant {
                    id: d.tenant_id.clone(),
                    cloud,
                },
                clock: clock.clone(),
            })
        }
        _ => None,
    };
    let since = clock.now() - TimeDelta::hours(24);
    let wants_signins = req.streams.contains(&Stream::Signins);

    // 5. Sign-in logs licence (and sign-ins of the last 24 h for check 7).
    let mut retention_days = None;
    let mut signins_24h: Option<usize> = None;
    let mut signin_licence_missing = false;
    match &ctx {
        None => checks.push(skip("signin_licence", "skipped: no usable token")),
        Some(_) if !audit_available => checks.push(check(
            "signin_licence",
            Status::Fail,
            format!("{} has no audit log API in Microsoft Graph", cloud.label()),
            Some("this cloud cannot be polled for sign-ins and directory audits".into()),
        )),
        Some(c) => {
            let path = sources(cloud, Stream::Signins, false)
                .first()
                .map(|s| s.path)
                .unwrap_or("v1.0/auditLogs/signIns");
            let q = [
                (
                    "$filter",
                    format!("createdDateTime ge {}", filter_time(since)),
                ),
                ("$top", "1".to_string()),
            ];
            match c.get(path, &q).await {
                Ok(v) => {
                    retention_days = Some(RETENTION_DAYS_PREMIUM);
                    signins_24h = Some(v.len());
                    checks.push(check(
                        "signin_licence",
                        Status::Pass,
                        format!(
                            "sign-in logs readable (Entra ID P1/P2): sign-ins and audit logs are kept {RETENTION_DAYS_PREMIUM} days, so the first poll backfills {RETENTION_DAYS_PREMIUM} days"
                        ),
                        None,
                    ));
                }
                Err(GraphError::LicenceRequired) => {
                    retention_days = Some(RETENTION_DAYS_FREE);
                    signin_licence_missing = true;
                    let detail = format!(
                        "Graph refuses sign-in logs with 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant: the tenant has no Microsoft Entra ID P1/P2. No sign-ins can be read, and directory audits are kept only {RETENTION_DAYS_FREE} days (backfill reaches {RETENTION_DAYS_FREE} days)"
                    );
                    let remedy = "assign Entra ID P1 or P2 in the tenant (included in Microsoft 365 Business Premium, E3 and E5); sign-in logs become readable once the licence is active".to_string();
                    if wants_signins {
                        checks.push(check("signin_licence", Status::Fail, detail, Some(remedy)));
                        fail_state(HealthState::LicenceMissing, &mut state);
                    } else {
                        checks.push(check("signin_licence", Status::Warn, detail, Some(remedy)));
                    }
                }
                Err(e) => {
                    let (detail, remedy, s) = describe_graph(&e, "sign-in logs", cloud);
                    checks.push(check("signin_licence", Status::Fail, detail, Some(remedy)));
                    fail_state(s, &mut state);
                }
            }
        }
    }

    // 6. Exchange Online licence.
    let mut exchange_missing = false;
    match &ctx {
        None => checks.push(skip("exchange_licence", "skipped: no usable token")),
        Some(c) => match c.get("v1.0/subscribedSkus", &[]).await {
            Ok(skus) => {
                let found = exchange_plans(&skus);
                if let Some((sku, plan)) = found.active.first() {
                    checks.push(check(
                        "exchange_licence",
                        Status::Pass,
                        format!("active Exchange Online plan {plan} in SKU {sku}"),
                        None,
                    ));
                } else if let Some((sku, plan)) = found.grace.first() {
                    checks.push(check(
                        "exchange_licence",
                        Status::Warn,
                        format!("Exchange Online plan {plan} in SKU {sku} is in its grace period (capabilityStatus Warning)"),
                        Some("renew the subscription: when it lapses, Exchange audit events stop".into()),
                    ));
                } else {
                    exchange_missing = true;
                    let foundation = if found.foundation_only {
                        " (only EXCHANGE_S_FOUNDATION, which does not provide a mailbox)"
                    } else {
                        ""
                    };
                    checks.push(check(
                        "exchange_licence",
                        Status::Fail,
                        format!("no active Exchange Online licence in subscribedSkus{foundation}"),
                        Some("assign at least one Exchange Online licence (an EXCHANGE_S_* plan such as Exchange Online Plan 1/2, or a Microsoft 365 suite with Exchange); without it Microsoft 365 audit events such as inbox-rule changes are not recorded".into()),
                    ));
                    fail_state(HealthState::LicenceMissing, &mut state);
                }
            }
            Err(GraphError::Forbidden { .. }) => checks.push(check(
                "exchange_licence",
                Status::Warn,
                "cannot read subscribedSkus: neither Organization.Read.All nor Directory.Read.All is granted",
                Some("grant Organization.Read.All to let preflight check licences, or confirm an Exchange Online licence in the Microsoft 365 admin centre".into()),
            )),
            Err(e) => {
                let (detail, remedy, _) = describe_graph(&e, "subscribedSkus", cloud);
                checks.push(check("exchange_licence", Status::Warn, detail, Some(remedy)));
            }
        },
    }

    // 7. Data in the last 24 hours.
    match &ctx {
        Some(c) if audit_available => {
            let q = [
                (
                    "$filter",
                    format!("activityDateTime ge {}", filter_time(since)),
                ),
                ("$top", "1".to_string()),
            ];
            let audits = c.get("v1.0/auditLogs/directoryAudits", &q).await;
            match audits {
                Err(e) => {
                    let (detail, remedy, s) = describe_graph(&e, "directory audits", cloud);
                    checks.push(check("data_24h", Status::Fail, detail, Some(remedy)));
                    fail_state(s, &mut state);
                }
                Ok(a) => {
                    let has_audits = !a.is_empty();
                    let has_signins = signins_24h.is_some_and(|n| n > 0);
                    let mut causes = vec![
                        "audit logging is disabled in Microsoft 365: check the audit log status in the Microsoft Purview portal (Audit) and turn recording on".to_string(),
                        "roles were removed from the Exchange role group Organization Management (it needs Audit Logs, Mail Recipients, Organization Configuration, Transport Rules and Role Management, with Exchange Administrator assigned): restore them".to_string(),
                    ];
                    if exchange_missing {
                        causes.push(
                            "found: the tenant has no Exchange Online licence (see exchange_licence)"
                                .into(),
                        );
                    } else {
                        causes.push("confirm at least one Exchange Online licence".into());
                    }
                    if !missing_required.is_empty() {
                        causes.push(
                            "found: required permissions are missing (see permissions)".into(),
                        );
                    }
                    causes.push("a newly consented tenant can take up to 24 hours (longer for legacy tenants) before data appears: check again tomorrow".into());
                    let seen = |b: bool| if b { "yes" } else { "none" };
                    let detail = format!(
                        "directory audits in the last 24 h: {}; sign-ins in the last 24 h: {}",
                        seen(has_audits),
                        match signins_24h {
                            Some(n) => seen(n > 0).to_string(),
                            None if signin_licence_missing => "not readable (no P1/P2)".into(),
                            None => "not checked".into(),
                        }
                    );
                    if has_audits && (has_signins || !wants_signins || signins_24h.is_none()) {
                        checks.push(check("data_24h", Status::Pass, detail, None));
                    } else {
                        checks.push(check(
                            "data_24h",
                            Status::Warn,
                            format!("no data in 24 h: {detail}"),
                            Some(format!("likely causes: {}", causes.join("; "))),
                        ));
                    }
                }
            }
        }
        _ => checks.push(skip("data_24h", "skipped: no usable token")),
    }

    // 8. MFA registration.
    match &ctx {
        None => checks.push(skip("mfa_registration", "skipped: no usable token")),
        Some(c) => {
            let url = GraphClient::url(
                &c.tenant,
                "v1.0/reports/authenticationMethods/userRegistrationDetails",
                &[],
            );
            let all = match url {
                Ok(u) => c.graph.get_all(&c.tenant, &u, c.deadline()).await,
                Err(e) => Err(e),
            };
            match all {
                Ok(users) => checks.push(mfa_check(&users)),
                Err(GraphError::LicenceRequired) => checks.push(check(
                    "mfa_registration",
                    Status::Skip,
                    "the MFA registration report needs Entra ID P1/P2",
                    None,
                )),
                Err(e) => {
                    let (detail, remedy, _) =
                        describe_graph(&e, "the MFA registration report", cloud);
                    checks.push(check(
                        "mfa_registration",
                        Status::Warn,
                        detail,
                        Some(remedy),
                    ));
                }
            }
        }
    }

    let blockers = checks.iter().filter(|c| c.status == Status::Fail).count();
    Report {
        tenant_id: d.tenant_id.clone(),
        domain: d.domain.clone(),
        cloud,
        cloud_label: cloud.label().to_string(),
        poller: cloud.group().as_str().to_string(),
        granted_roles: granted,
        missing_required,
        missing_recommended,
        retention_days,
        checks,
        blockers,
        implied_state: if blockers == 0 {
            HealthState::Pending
        } else {
            state.unwrap_or(HealthState::Degraded)
        },
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

/// The MFA note: members (not guests) without a Microsoft-registered MFA method.
pub fn mfa_check(users: &[serde_json::Value]) -> Check {
    let members: Vec<&serde_json::Value> = users
        .iter()
        .filter(|u| u["userType"].as_str() != Some("guest"))
        .collect();
    if members.is_empty() {
        return check(
            "mfa_registration",
            Status::Skip,
            "the MFA registration report lists no members",
            None,
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
        check(
            "mfa_registration",
            Status::Warn,
            detail,
            Some("if the customer uses a third-party MFA product, it usually does not register on the user object, so these users look unprotected here: record the third-party MFA in the customer's runbook. Users with a Microsoft-registered factor (Authenticator, Windows Hello, FIDO2 key) show as registered".into()),
        )
    } else {
        check("mfa_registration", Status::Pass, detail, None)
    }
}

/// Detail, remedy and implied health state of a token failure.
fn describe_auth(e: &AuthError, cloud: Cloud) -> (String, String, HealthState) {
    let state = match e {
        AuthError::AppNotInTenant { .. } => HealthState::Offboarded,
        AuthError::ConsentMissing { .. }
        | AuthError::AppDisabled { .. }
        | AuthError::ConsentRevoked => HealthState::ConsentRevoked,
        AuthError::InvalidSecret { .. }
        | AuthError::SecretExpired { .. }
        | AuthError::InvalidCertificate { .. }
        | AuthError::AssertionRejected { .. }
        | AuthError::BadCredential { .. } => HealthState::CredentialsExpired,
        _ => HealthState::Degraded,
    };
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

/// Detail, remedy and implied health state of a Graph failure on `what`.
fn describe_graph(e: &GraphError, what: &str, cloud: Cloud) -> (String, String, HealthState) {
    match e {
        GraphError::Forbidden { code } => (
            format!("reading {what} is forbidden ({code})"),
            "a required application permission is missing: re-grant admin consent".into(),
            HealthState::PermissionMissing,
        ),
        GraphError::ConsentRevoked => (
            format!("reading {what}: {e}"),
            "ask the customer's Global Administrator to grant admin consent again".into(),
            HealthState::ConsentRevoked,
        ),
        GraphError::Throttled { .. } => (
            format!("reading {what}: {e}"),
            "Microsoft is throttling the app: run preflight again in a few minutes".into(),
            HealthState::Degraded,
        ),
        GraphError::Auth(a) => {
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
