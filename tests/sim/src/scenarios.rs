//! Ready-made tenants for onboarding and preflight: one per prerequisite problem the field
//! guide lists, plus one healthy tenant per cloud. `itdr sim --scenarios` serves them, and the
//! onboarding tests use the same list.

use itdr_shared::Cloud;

use crate::config::TenantSpec;
use crate::server::SimHandle;

/// What a scenario tenant plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Nothing wrong.
    None,
    /// No Entra ID P1/P2: sign-in logs answer 403.
    NoP1,
    /// No Exchange Online licence (only the foundation plan).
    NoExchange,
    /// Admin consent granted for AuditLog.Read.All only.
    PartialConsent,
    /// Admin consent revoked: tokens carry no roles.
    ConsentRevoked,
    /// The app's client secret has expired.
    SecretExpired,
    /// The app's service principal was deleted from the tenant (AADSTS700016).
    AppRemoved,
    /// No sign-ins or audit events at all.
    NoData,
    /// Most users have no Microsoft-registered MFA method (a third-party MFA product).
    ThirdPartyMfa,
    /// Unified audit logging is off: Management Activity subscriptions cannot be started.
    AuditLogOff,
    /// An administrator disabled the `Audit.Exchange` subscription (`AF20023`).
    SubscriptionDisabled,
}

/// One scenario tenant.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (`healthy`, `no-p1`, …).
    pub name: &'static str,
    /// The problem it plays.
    pub problem: Problem,
    /// The tenant.
    pub spec: TenantSpec,
}

impl Scenario {
    /// Applies the scenario's runtime state (revoked consent, removed app, expired secret) to
    /// a running simulator.
    pub fn apply(&self, sim: &SimHandle) {
        let id = &self.spec.tenant_id;
        match self.problem {
            Problem::ConsentRevoked => sim.revoke_consent(id),
            Problem::SecretExpired => sim.expire_secret(id),
            Problem::AppRemoved => sim.remove_service_principal(id),
            Problem::SubscriptionDisabled => sim.disable_subscription(id, "Audit.Exchange"),
            _ => {}
        }
    }
}

/// The onboarding scenarios: a healthy tenant in each of the four clouds that Graph audit logs
/// serve, and one commercial tenant per problem.
pub fn onboarding_scenarios() -> Vec<Scenario> {
    let plan: [(&'static str, Cloud, Problem); 14] = [
        ("healthy", Cloud::Global, Problem::None),
        ("gcc", Cloud::Gcc, Problem::None),
        ("gcc-high", Cloud::GccHigh, Problem::None),
        ("dod", Cloud::Dod, Problem::None),
        ("no-p1", Cloud::Global, Problem::NoP1),
        ("no-exchange", Cloud::Global, Problem::NoExchange),
        ("partial-consent", Cloud::Global, Problem::PartialConsent),
        ("consent-revoked", Cloud::Global, Problem::ConsentRevoked),
        ("secret-expired", Cloud::Global, Problem::SecretExpired),
        ("app-removed", Cloud::Global, Problem::AppRemoved),
        ("no-data", Cloud::Global, Problem::NoData),
        ("third-party-mfa", Cloud::Global, Problem::ThirdPartyMfa),
        ("audit-log-off", Cloud::Global, Problem::AuditLogOff),
        (
            "subscription-disabled",
            Cloud::Global,
            Problem::SubscriptionDisabled,
        ),
    ];
    plan.iter()
        .enumerate()
        .map(|(i, (name, cloud, problem))| {
            let mut spec = TenantSpec::new(u32::try_from(i).unwrap_or(0), *cloud);
            match problem {
                Problem::NoP1 => spec.has_p1 = false,
                Problem::NoExchange => spec.exchange_licence = false,
                Problem::PartialConsent => spec.roles = vec!["AuditLog.Read.All".to_string()],
                Problem::NoData => {
                    spec.signins_per_hour = 0.0;
                    spec.audits_per_hour = 0.0;
                    spec.exchange_per_hour = 0.0;
                    spec.general_per_hour = 0.0;
                    spec.sharepoint_per_hour = 0.0;
                }
                Problem::AuditLogOff => spec.audit_log_enabled = false,
                Problem::ThirdPartyMfa => spec.mfa_registered_share = 0.05,
                _ => {}
            }
            Scenario {
                name,
                problem: *problem,
                spec,
            }
        })
        .collect()
}
