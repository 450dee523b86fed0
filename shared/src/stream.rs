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
}

impl Stream {
    /// Every stream, in a stable order.
    pub const ALL: [Stream; 2] = [Stream::Signins, Stream::DirectoryAudits];

    /// Stable name used in config, the cursor store, queue attributes and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Signins => "signins",
            Stream::DirectoryAudits => "directory_audits",
        }
    }

    /// The Graph log name (`metadata.log_name` in OCSF).
    pub fn log_name(self) -> &'static str {
        match self {
            Stream::Signins => "signIns",
            Stream::DirectoryAudits => "directoryAudits",
        }
    }

    /// The record property Graph filters this stream's time on.
    pub fn time_property(self) -> &'static str {
        match self {
            Stream::Signins => "createdDateTime",
            Stream::DirectoryAudits => "activityDateTime",
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
#[error("unknown stream {0:?}: expected signins or directory_audits")]
pub struct UnknownStream(pub String);

impl FromStr for Stream {
    type Err = UnknownStream;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "signins" | "sign_ins" => Ok(Stream::Signins),
            "directory_audits" | "directoryaudits" | "audits" => Ok(Stream::DirectoryAudits),
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
    }
}
