//! The boundaries to storage and delivery, each a narrow trait with an embedded
//! implementation (`crate::embedded`) and an AWS one (functions crates).
//!
//! Contracts:
//! - [`CursorStore::commit`] is a compare-and-set on a version: it succeeds only if the stored
//!   version equals `expected` (`None` = no cursor yet) and then stores version `expected + 1`.
//!   A lost race is [`StoreError::Conflict`], never an overwrite.
//! - [`EventSink::send`] returns only once every event in the batch is durable downstream (or
//!   reports which were not). The poller commits a cursor only after that.
//! - [`TenantRegistry`] holds tenants, their cloud, credential reference, streams and health.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cloud::Cloud;
use crate::stream::Stream;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Compare-and-set lost: someone else committed first.
    #[error("cursor for {tenant}/{stream} changed concurrently (expected version {expected:?})")]
    Conflict {
        /// Tenant id.
        tenant: String,
        /// Stream.
        stream: Stream,
        /// The version this writer expected.
        expected: Option<u64>,
    },
    /// No such tenant.
    #[error("tenant {0} is not registered")]
    UnknownTenant(String),
    /// A tenant id or domain already registered, or an invalid record.
    #[error("invalid registry change: {0}")]
    Invalid(String),
    /// The backend failed (I/O, database, network). Retryable.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }
}

/// A stored cursor: an opaque JSON document and its version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCursor {
    /// The cursor document (see `crate::cursor::Cursor`).
    pub doc: serde_json::Value,
    /// Version for compare-and-set; the first committed version is 1.
    pub version: u64,
}

/// Per (tenant, stream) cursors with versioned compare-and-set.
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// Loads the cursor, or `None` if the stream was never committed.
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError>;
    /// Stores `doc` if the current version is `expected`; returns the new version.
    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError>;
    /// Deletes every cursor of a tenant (offboarding with purge).
    async fn purge(&self, tenant: &str) -> Result<(), StoreError>;
}

/// Lifecycle and health of a tenant, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Registered, never polled yet.
    Pending,
    /// Last poll succeeded.
    Healthy,
    /// Polling works but Microsoft throttles it, or transient failures repeat.
    Degraded,
    /// No data for 24 h although polls succeed.
    NoData,
    /// Admin consent revoked (token has no roles).
    ConsentRevoked,
    /// No Entra ID P1/P2: sign-in logs unavailable.
    LicenceMissing,
    /// The app credential is invalid or expired.
    CredentialsExpired,
    /// Permissions missing (partial consent).
    PermissionMissing,
    /// The service principal is gone, or the operator removed the tenant.
    Offboarded,
}

impl HealthState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Pending => "pending",
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::NoData => "no_data",
            HealthState::ConsentRevoked => "consent_revoked",
            HealthState::LicenceMissing => "licence_missing",
            HealthState::CredentialsExpired => "credentials_expired",
            HealthState::PermissionMissing => "permission_missing",
            HealthState::Offboarded => "offboarded",
        }
    }
}

/// Health of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Current state.
    pub state: HealthState,
    /// Last fully successful poll of any stream.
    pub last_success: Option<DateTime<Utc>>,
    /// Kind of the last error (a bounded label such as `throttled`).
    pub last_error_kind: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failed polls since the last success.
    pub consecutive_failures: u32,
    /// Newest event emitted, by event time.
    pub last_event_at: Option<DateTime<Utc>>,
    /// First successful poll (the start of the "no data for 24 h" clock for a tenant that
    /// never had an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_success: Option<DateTime<Utc>>,
    /// Log retention the tenant's licence implies (30 days with Entra ID P1/P2, 7 without),
    /// learned by preflight or from a licence refusal; `None` until known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: HealthState::Pending,
            last_success: None,
            last_error_kind: None,
            last_error_at: None,
            consecutive_failures: 0,
            last_event_at: None,
            first_success: None,
            retention_days: None,
        }
    }
}

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant GUID (lowercase).
    pub tenant_id: String,
    /// A verified domain, if known.
    pub domain: Option<String>,
    /// The customer organization this tenant maps to (one tenant, one organization).
    pub org: Option<String>,
    /// The tenant's national cloud.
    pub cloud: Cloud,
    /// Reference to the app credential (a name in the credentials file, or a secret ARN).
    pub app_ref: String,
    /// Streams polled for this tenant.
    pub streams: Vec<Stream>,
    /// Whether to read non-interactive / service-principal / managed-identity sign-ins (beta).
    pub include_noninteractive: bool,
    /// Whether polling is enabled (false after offboarding).
    pub enabled: bool,
    /// Health.
    pub health: Health,
    /// When the tenant was registered.
    pub created_at: DateTime<Utc>,
}

/// A change to a tenant's health after a poll.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthUpdate {
    /// A poll succeeded; `newest_event` is the newest event time emitted, if any.
    Success {
        /// When.
        at: DateTime<Utc>,
        /// Newest event time emitted by this poll.
        newest_event: Option<DateTime<Utc>>,
        /// Whether Microsoft throttled the poll (it still completed).
        throttled: bool,
    },
    /// A poll failed.
    Failure {
        /// When.
        at: DateTime<Utc>,
        /// Error kind label.
        kind: String,
        /// The state this failure implies.
        state: HealthState,
    },
}

/// The tenant registry.
#[async_trait]
pub trait TenantRegistry: Send + Sync {
    /// All tenants (enabled or not), ordered by tenant id.
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError>;
    /// One tenant.
    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// Registers a new tenant; refuses an id that is already registered.
    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError>;
    /// Replaces a tenant's record (it must exist).
    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError>;
    /// Applies a health update atomically and returns the new health.
    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError>;
    /// Removes a tenant from the registry entirely.
    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError>;
}

/// Applies a health update to a health record (shared by every registry implementation).
pub fn apply_health(h: &Health, update: &HealthUpdate) -> Health {
    let mut h = h.clone();
    match update {
        HealthUpdate::Success {
            at,
            newest_event,
            throttled,
        } => {
            h.last_success = Some(*at);
            h.first_success.get_or_insert(*at);
            h.consecutive_failures = 0;
            if let Some(e) = newest_event {
                h.last_event_at = Some(h.last_event_at.map_or(*e, |p| p.max(*e)));
            }
            // No event for 24 h: since the newest one, or since polling began if none ever came.
            let day = chrono::TimeDelta::hours(24);
            let stale = match (h.last_event_at, h.first_success) {
                (Some(e), _) => *at - e > day,
                (None, Some(first)) => *at - first > day,
                (None, None) => false,
            };
            h.state = if *throttled {
                HealthState::Degraded
            } else if stale {
                HealthState::NoData
            } else {
                HealthState::Healthy
            };
        }
        HealthUpdate::Failure { at, kind, state } => {
            h.last_error_kind = Some(kind.clone());
            h.last_error_at = Some(*at);
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            h.state = *state;
            if *state == HealthState::LicenceMissing && kind == "licence_required" {
                // Graph refused sign-in logs for want of P1/P2: audit logs are kept 7 days.
                h.retention_days = Some(7);
            }
        }
    }
    h
}

/// Failures delivering events.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Some events could not be delivered after retries; nothing may be committed.
    #[error("{failed} of {total} messages could not be delivered")]
    Partial {
        /// Messages that failed.
        failed: usize,
        /// Messages in the batch.
        total: usize,
    },
    /// The sink is unavailable.
    #[error("event sink failed: {0}")]
    Backend(String),
}

/// A message for the events queue: an envelope with schema version, tenant, stream, events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope schema version.
    pub envelope_version: u32,
    /// OCSF version of the events.
    pub ocsf_version: String,
    /// Tenant GUID.
    pub tenant_id: String,
    /// Stream the events came from.
    pub stream: Stream,
    /// The OCSF events.
    pub events: Vec<serde_json::Value>,
}

/// Where normalized events go (SQS, NDJSON files).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers every envelope durably, or fails saying how many did not make it.
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError>;
}

/// A raw record that could not be normalized, kept for inspection. Its content stays here and
/// never reaches logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Stream.
    pub stream: Stream,
    /// Why normalization failed (names a field, never a value).
    pub reason: String,
    /// The raw Microsoft record.
    pub record: serde_json::Value,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}

/// Where records that cannot be normalized go.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores the dead letters durably.
    async fn put(&self, letters: &[DeadLetter]) -> Result<(), SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::TimeDelta::hours(h)
    }

    fn ok(at: i64, newest: Option<i64>, throttled: bool) -> HealthUpdate {
        HealthUpdate::Success {
            at: t(at),
            newest_event: newest.map(t),
            throttled,
        }
    }

    #[test]
    fn health_moves_through_its_states() {
        let h = Health::default();
        assert_eq!(h.state, HealthState::Pending);
        let h = apply_health(&h, &ok(0, Some(0), false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(1, None, true));
        assert_eq!(h.state, HealthState::Degraded, "throttled but finished");
        let h = apply_health(&h, &ok(25, None, false));
        assert_eq!(h.state, HealthState::NoData, "no event for 24 h");
        let h = apply_health(&h, &ok(26, Some(26), false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(
            &h,
            &HealthUpdate::Failure {
                at: t(27),
                kind: "licence_required".into(),
                state: HealthState::LicenceMissing,
            },
        );
        assert_eq!(h.state, HealthState::LicenceMissing);
        assert_eq!(h.retention_days, Some(7));
        assert_eq!(h.consecutive_failures, 1);
        assert_eq!(h.last_success, Some(t(26)));
    }

    #[test]
    fn a_tenant_that_never_had_an_event_is_no_data_after_a_day() {
        let h = apply_health(&Health::default(), &ok(0, None, false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(23, None, false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(25, None, false));
        assert_eq!(h.state, HealthState::NoData);
        assert_eq!(h.first_success, Some(t(0)));
    }
}
