//! The telemetry streams, each with its own cursor per tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stream of records pulled from Microsoft for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Graph `/auditLogs/signIns` (interactive, plus non-interactive, service-principal and
    /// managed-identity sign-ins through the beta event-type filter).
    Signins,
    /// Graph `/auditLogs/directoryAudits`.
    DirectoryAudits,
    /// The Unified Audit Log through the Office 365 Management Activity API (Exchange, Entra ID
    /// and general workloads; SharePoint when configured), windowed on content availability.
    UnifiedAudit,
    /// Inventory: every user (members and guests), licences, last sign-in, mailbox purpose.
    Users,
    /// Inventory: service principals with their delegated and application permissions.
    Apps,
    /// Inventory: directory role holders (Global Administrator and the other roles).
    Roles,
    /// Inventory: per-user authentication method registration.
    Mfa,
    /// Inventory: conditional access policies and security defaults.
    ConditionalAccess,
    /// Inventory: every mailbox's inbox rules.
    InboxRules,
}

impl Stream {
    /// The log streams (windowed on time: the two Graph logs and the Unified Audit Log), in a
    /// stable order.
    pub const ALL: [Stream; 3] = [
        Stream::Signins,
        Stream::DirectoryAudits,
        Stream::UnifiedAudit,
    ];

    /// The inventory streams (snapshots of what is), in a stable order.
    pub const INVENTORY: [Stream; 6] = [
        Stream::Users,
        Stream::Apps,
        Stream::Roles,
        Stream::Mfa,
        Stream::ConditionalAccess,
        Stream::InboxRules,
    ];

    /// Every stream, logs then inventory: what a new tenant gets by default.
    pub const EVERY: [Stream; 9] = [
        Stream::Signins,
        Stream::DirectoryAudits,
        Stream::UnifiedAudit,
        Stream::Users,
        Stream::Apps,
        Stream::Roles,
        Stream::Mfa,
        Stream::ConditionalAccess,
        Stream::InboxRules,
    ];

    /// Whether this is an inventory (snapshot) stream.
    pub fn is_inventory(self) -> bool {
        Stream::INVENTORY.contains(&self)
    }

    /// Stable name used in config, the cursor store, queue attributes and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Signins => "signins",
            Stream::DirectoryAudits => "directory_audits",
            Stream::Users => "users",
            Stream::Apps => "apps",
            Stream::Roles => "roles",
            Stream::Mfa => "mfa",
            Stream::ConditionalAccess => "conditional_access",
            Stream::InboxRules => "inbox_rules",
            Stream::UnifiedAudit => "unified_audit",
        }
    }

    /// The Graph log name (`metadata.log_name` in OCSF); for an inventory, the collection.
    pub fn log_name(self) -> &'static str {
        match self {
            Stream::Signins => "signIns",
            Stream::DirectoryAudits => "directoryAudits",
            Stream::Users => "users",
            Stream::Apps => "servicePrincipals",
            Stream::Roles => "roleAssignments",
            Stream::Mfa => "userRegistrationDetails",
            Stream::ConditionalAccess => "conditionalAccessPolicies",
            Stream::InboxRules => "messageRules",
            Stream::UnifiedAudit => "unifiedAuditLog",
        }
    }

    /// The record property holding the event time (Graph filters its streams on it; the
    /// Management Activity API windows on content availability instead; `""` for an
    /// inventory, which has no event time).
    pub fn time_property(self) -> &'static str {
        match self {
            Stream::Signins => "createdDateTime",
            Stream::DirectoryAudits => "activityDateTime",
            Stream::UnifiedAudit => "CreationTime",
            Stream::Users
            | Stream::Apps
            | Stream::Roles
            | Stream::Mfa
            | Stream::ConditionalAccess
            | Stream::InboxRules => "",
        }
    }

    /// The longest the stream's API keeps records, in days, when it is shorter than any
    /// licence's retention: the Management Activity API lists content of the last 7 days only,
    /// so no pass of the unified audit stream reaches further back.
    pub fn max_retention_days(self) -> Option<u32> {
        match self {
            Stream::UnifiedAudit => Some(7),
            Stream::Signins | Stream::DirectoryAudits => None,
            Stream::Users
            | Stream::Apps
            | Stream::Roles
            | Stream::Mfa
            | Stream::ConditionalAccess
            | Stream::InboxRules => None,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stream name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown stream {0:?}: expected signins, directory_audits, unified_audit, users, apps, roles, mfa, conditional_access or inbox_rules"
)]
pub struct UnknownStream(pub String);

impl FromStr for Stream {
    type Err = UnknownStream;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "signins" | "sign_ins" => Ok(Stream::Signins),
            "directory_audits" | "directoryaudits" | "audits" => Ok(Stream::DirectoryAudits),
            "unified_audit" | "unifiedaudit" | "unified_audit_log" | "management_activity" => {
                Ok(Stream::UnifiedAudit)
            }
            "users" => Ok(Stream::Users),
            "apps" | "applications" => Ok(Stream::Apps),
            "roles" | "admins" => Ok(Stream::Roles),
            "mfa" => Ok(Stream::Mfa),
            "conditional_access" | "ca" => Ok(Stream::ConditionalAccess),
            "inbox_rules" | "inboxrules" | "rules" => Ok(Stream::InboxRules),
            _ => Err(UnknownStream(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Stream::EVERY {
            assert_eq!(s.as_str().parse::<Stream>().ok(), Some(s));
            assert_eq!(s.is_inventory(), !Stream::ALL.contains(&s));
        }
        assert!("mail".parse::<Stream>().is_err());
        assert_eq!(Stream::DirectoryAudits.time_property(), "activityDateTime");
        assert_eq!(
            "unified-audit".parse::<Stream>().ok(),
            Some(Stream::UnifiedAudit)
        );
        assert_eq!(Stream::UnifiedAudit.max_retention_days(), Some(7));
        assert_eq!(Stream::Signins.max_retention_days(), None);
    }
}
