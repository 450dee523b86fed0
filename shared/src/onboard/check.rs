//! The preflight checks, by id.

use serde::{Deserialize, Serialize};

use crate::health::HealthState;

/// One preflight check. The order of [`CheckId::ALL`] is the order they run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// The tenant's national cloud, and whether this deployment serves it.
    Cloud,
    /// A token can be had with the configured app credential.
    Credential,
    /// The token carries application permissions at all (admin consent).
    Consent,
    /// The granted permissions against the required and recommended ones.
    Permissions,
    /// Sign-in logs are readable (Entra ID P1/P2), and the retention that implies.
    SigninLicence,
    /// At least one active Exchange Online plan.
    ExchangeLicence,
    /// Directory audits and sign-ins of the last 24 hours come back.
    #[serde(rename = "data_24h")]
    Data24h,
    /// How many members have a Microsoft-registered MFA method.
    MfaRegistration,
    /// Unified audit logging is on (a Management Activity subscription can be started).
    AuditLog,
    /// The Management Activity subscriptions of every content type read are enabled.
    AuditSubscriptions,
    /// Unified audit content became available in the last 24 hours.
    AuditContent,
}

impl CheckId {
    /// Every check, in the order preflight runs them.
    pub const ALL: [CheckId; 11] = [
        CheckId::Cloud,
        CheckId::Credential,
        CheckId::Consent,
        CheckId::Permissions,
        CheckId::SigninLicence,
        CheckId::ExchangeLicence,
        CheckId::Data24h,
        CheckId::MfaRegistration,
        CheckId::AuditLog,
        CheckId::AuditSubscriptions,
        CheckId::AuditContent,
    ];

    /// Stable id (reports, `--json`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Cloud => "cloud",
            CheckId::Credential => "credential",
            CheckId::Consent => "consent",
            CheckId::Permissions => "permissions",
            CheckId::SigninLicence => "signin_licence",
            CheckId::ExchangeLicence => "exchange_licence",
            CheckId::Data24h => "data_24h",
            CheckId::MfaRegistration => "mfa_registration",
            CheckId::AuditLog => "audit_log",
            CheckId::AuditSubscriptions => "audit_subscriptions",
            CheckId::AuditContent => "audit_content",
        }
    }

    /// The failure label a tenant's health shows when this check blocks it.
    pub fn failure_label(self) -> &'static str {
        match self {
            CheckId::Cloud => "preflight_cloud",
            CheckId::Credential => "preflight_credential",
            CheckId::Consent => "preflight_consent",
            CheckId::Permissions => "preflight_permissions",
            CheckId::SigninLicence => "preflight_signin_licence",
            CheckId::ExchangeLicence => "preflight_exchange_licence",
            CheckId::Data24h => "preflight_data_24h",
            CheckId::MfaRegistration => "preflight_mfa_registration",
            CheckId::AuditLog => "preflight_audit_log",
            CheckId::AuditSubscriptions => "preflight_audit_subscriptions",
            CheckId::AuditContent => "preflight_audit_content",
        }
    }

    /// The health a failure of this check implies when nothing more precise is known.
    pub fn implied_state(self) -> HealthState {
        match self {
            CheckId::Credential => HealthState::CredentialsExpired,
            CheckId::Consent => HealthState::ConsentRevoked,
            CheckId::Permissions => HealthState::PermissionMissing,
            CheckId::SigninLicence => HealthState::LicenceMissing,
            CheckId::Data24h | CheckId::AuditContent => HealthState::NoData,
            CheckId::AuditLog | CheckId::AuditSubscriptions => HealthState::PermissionMissing,
            CheckId::Cloud | CheckId::ExchangeLicence | CheckId::MfaRegistration => {
                HealthState::Degraded
            }
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_their_stable_names() {
        for c in CheckId::ALL {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::String(c.as_str().into()))
            );
            assert_eq!(c.failure_label(), format!("preflight_{}", c.as_str()));
        }
    }
}
