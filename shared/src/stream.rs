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
}

impl Stream {
    /// Every stream, in a stable order.
    pub const ALL: [Stream; 3] = [
        Stream::Signins,
        Stream::DirectoryAudits,
        Stream::UnifiedAudit,
    ];

    /// Stable name used in config, the cursor store, queue attributes and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Signins => "signins",
            Stream::DirectoryAudits => "directory_audits",
            Stream::UnifiedAudit => "unified_audit",
        }
    }

    /// The Graph log name (`metadata.log_name` in OCSF).
    pub fn log_name(self) -> &'static str {
        match self {
            Stream::Signins => "signIns",
            Stream::DirectoryAudits => "directoryAudits",
            Stream::UnifiedAudit => "unifiedAuditLog",
        }
    }

    /// The record property holding the event time (Graph filters its streams on it; the
    /// Management Activity API windows on content availability instead).
    pub fn time_property(self) -> &'static str {
        match self {
            Stream::Signins => "createdDateTime",
            Stream::DirectoryAudits => "activityDateTime",
            Stream::UnifiedAudit => "CreationTime",
        }
    }

    /// The longest the stream's API keeps records, in days, when it is shorter than any
    /// licence's retention: the Management Activity API lists content of the last 7 days only,
    /// so no pass of the unified audit stream reaches further back.
    pub fn max_retention_days(self) -> Option<u32> {
        match self {
            Stream::Signins | Stream::DirectoryAudits => None,
            Stream::UnifiedAudit => Some(7),
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
#[error("unknown stream {0:?}: expected signins, directory_audits or unified_audit")]
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
            _ => Err(UnknownStream(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Stream::ALL {
            assert_eq!(s.as_str().parse::<Stream>().ok(), Some(s));
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
