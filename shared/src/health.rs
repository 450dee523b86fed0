//! Tenant health: what operators see, per stream and for the tenant as a whole, and the typed
//! failure kinds that feed it.
//!
//! Every failure the pipeline can meet has a [`FailureKind`]. Errors produce their kind with an
//! exhaustive `match`, so a new error variant cannot compile until someone decides its kind;
//! strings appear only at the storage and log edge ([`FailureKind::as_str`]).
//!
//! Health is kept per stream ([`StreamHealth`]); the tenant's [`HealthState`] is derived from
//! its streams (the worst of them, or `no_data` when every stream works but no event came for
//! 24 hours). Updating one stream therefore never hides another stream's failure, whatever the
//! order in which the streams' jobs finish.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::stream::Stream;

/// Lifecycle and health of a tenant, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    /// How bad the state is: the tenant shows the worst state of its streams.
    pub fn severity(self) -> u8 {
        match self {
            HealthState::Pending => 0,
            HealthState::Healthy => 1,
            HealthState::NoData => 2,
            HealthState::Degraded => 3,
            HealthState::LicenceMissing => 4,
            HealthState::PermissionMissing => 5,
            HealthState::CredentialsExpired => 6,
            HealthState::ConsentRevoked => 7,
            HealthState::Offboarded => 8,
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a poll, a credential or a check failed: a bounded, typed label for health records,
/// logs and metric dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    // Microsoft APIs.
    /// 429 (or the Management Activity API's AF429).
    Throttled,
    /// 401 for another reason than consent.
    Unauthorized,
    /// The app's admin consent is gone.
    ConsentRevoked,
    /// The tenant lacks the licence the API needs (Entra ID P1/P2 for sign-in logs).
    LicenceRequired,
    /// 403: a permission is missing.
    Forbidden,
    /// 404.
    NotFound,
    /// Our request was refused (400 or another 4xx).
    BadRequest,
    /// 5xx, timeouts, connection failures.
    Transient,
    /// A body that is not the JSON promised.
    Decode,
    /// A response body larger than the configured cap.
    ResponseTooLarge,
    /// A paging link or content URI to a host outside the tenant's cloud (never followed).
    ForeignLink,
    /// The deadline came before the call could complete.
    Deadline,
    /// The tenant's cloud does not offer the API.
    Unsupported,
    /// The tenant's unified audit log is off (Management Activity API).
    AuditingDisabled,
    /// No subscription for the content type (Management Activity API, AF20022).
    SubscriptionMissing,
    /// An admin disabled the subscription (Management Activity API, AF20023).
    SubscriptionDisabled,
    /// Content expired or vanished before it could be fetched.
    ContentUnavailable,
    // Token acquisition.
    /// The configured credential is unusable (bad PEM, missing).
    BadCredential,
    /// The tenant id or domain is malformed.
    InvalidTenant,
    /// The cloud has no such API to ask a token for.
    ScopeUnavailable,
    /// AADSTS700016: the app is not in the tenant (removed: offboarded).
    AppNotInTenant,
    /// Admin consent was never given.
    ConsentMissing,
    /// The tenant disabled the app.
    AppDisabled,
    /// Wrong client secret.
    InvalidSecret,
    /// The client secret expired.
    SecretExpired,
    /// The certificate was not accepted.
    InvalidCertificate,
    /// The tenant does not exist in this cloud.
    TenantNotFound,
    /// The app or tenant belongs to another cloud.
    WrongCloud,
    /// The client assertion was rejected (clock skew, signature).
    AssertionRejected,
    /// The tenant's app registration belongs to another cloud group (never sent).
    CredentialCloudMismatch,
    /// The token endpoint refused for a reason without its own kind.
    Rejected,
    /// The token request could not be sent.
    Transport,
    /// The token is not a readable JWT.
    MalformedToken,
    /// The token endpoint answered with an undocumented status.
    UnexpectedStatus,
    // Secrets.
    /// The credential reference is malformed.
    SecretBadReference,
    /// No secret under the reference.
    SecretNotFound,
    /// The secret store refused access.
    SecretAccessDenied,
    /// The secret is not a credential document.
    SecretMalformed,
    /// The secret's certificate or key is unusable.
    SecretBadCertificate,
    /// The secret store is unavailable.
    SecretBackend,
    // Our side.
    /// Another poller committed the same cursor first.
    CursorConflict,
    /// The cursor or registry store failed.
    Store,
    /// Delivery to the events queue failed.
    Sink,
    /// The stored cursor is unreadable, or would move backwards.
    Cursor,
    /// A simulated crash (tests).
    Crash,
    /// Our configuration cannot work (caught at startup; seen here only if a check is missing).
    Config,
    /// A preflight check failed.
    Preflight(crate::onboard::CheckId),
    /// A label written by another version of this software.
    Unrecognized,
}

impl FailureKind {
    /// Every kind that is not parameterized (for exhaustive tests and label round trips).
    pub const SIMPLE: [FailureKind; 46] = [
        FailureKind::Throttled,
        FailureKind::Unauthorized,
        FailureKind::ConsentRevoked,
        FailureKind::LicenceRequired,
        FailureKind::Forbidden,
        FailureKind::NotFound,
        FailureKind::BadRequest,
        FailureKind::Transient,
        FailureKind::Decode,
        FailureKind::ResponseTooLarge,
        FailureKind::ForeignLink,
        FailureKind::Deadline,
        FailureKind::Unsupported,
        FailureKind::AuditingDisabled,
        FailureKind::SubscriptionMissing,
        FailureKind::SubscriptionDisabled,
        FailureKind::ContentUnavailable,
        FailureKind::BadCredential,
        FailureKind::InvalidTenant,
        FailureKind::ScopeUnavailable,
        FailureKind::AppNotInTenant,
        FailureKind::ConsentMissing,
        FailureKind::AppDisabled,
        FailureKind::InvalidSecret,
        FailureKind::SecretExpired,
        FailureKind::InvalidCertificate,
        FailureKind::TenantNotFound,
        FailureKind::WrongCloud,
        FailureKind::AssertionRejected,
        FailureKind::CredentialCloudMismatch,
        FailureKind::Rejected,
        FailureKind::Transport,
        FailureKind::MalformedToken,
        FailureKind::UnexpectedStatus,
        FailureKind::SecretBadReference,
        FailureKind::SecretNotFound,
        FailureKind::SecretAccessDenied,
        FailureKind::SecretMalformed,
        FailureKind::SecretBadCertificate,
        FailureKind::SecretBackend,
        FailureKind::CursorConflict,
        FailureKind::Store,
        FailureKind::Sink,
        FailureKind::Cursor,
        FailureKind::Crash,
        FailureKind::Config,
    ];

    /// The stable label (health records, logs, metric dimensions).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Throttled => "throttled",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::ConsentRevoked => "consent_revoked",
            FailureKind::LicenceRequired => "licence_required",
            FailureKind::Forbidden => "forbidden",
            FailureKind::NotFound => "not_found",
            FailureKind::BadRequest => "bad_request",
            FailureKind::Transient => "transient",
            FailureKind::Decode => "decode",
            FailureKind::ResponseTooLarge => "response_too_large",
            FailureKind::ForeignLink => "foreign_next_link",
            FailureKind::Deadline => "deadline",
            FailureKind::Unsupported => "unsupported",
            FailureKind::AuditingDisabled => "auditing_disabled",
            FailureKind::SubscriptionMissing => "subscription_missing",
            FailureKind::SubscriptionDisabled => "subscription_disabled",
            FailureKind::ContentUnavailable => "content_unavailable",
            FailureKind::BadCredential => "bad_credential",
            FailureKind::InvalidTenant => "invalid_tenant",
            FailureKind::ScopeUnavailable => "scope_unavailable",
            FailureKind::AppNotInTenant => "app_not_in_tenant",
            FailureKind::ConsentMissing => "consent_missing",
            FailureKind::AppDisabled => "app_disabled",
            FailureKind::InvalidSecret => "invalid_secret",
            FailureKind::SecretExpired => "secret_expired",
            FailureKind::InvalidCertificate => "invalid_certificate",
            FailureKind::TenantNotFound => "tenant_not_found",
            FailureKind::WrongCloud => "wrong_cloud",
            FailureKind::AssertionRejected => "assertion_rejected",
            FailureKind::CredentialCloudMismatch => "credential_cloud_mismatch",
            FailureKind::Rejected => "rejected",
            FailureKind::Transport => "transport",
            FailureKind::MalformedToken => "malformed_token",
            FailureKind::UnexpectedStatus => "unexpected_status",
            FailureKind::SecretBadReference => "secret_bad_reference",
            FailureKind::SecretNotFound => "secret_not_found",
            FailureKind::SecretAccessDenied => "secret_access_denied",
            FailureKind::SecretMalformed => "secret_malformed",
            FailureKind::SecretBadCertificate => "secret_bad_certificate",
            FailureKind::SecretBackend => "secret_backend",
            FailureKind::CursorConflict => "cursor_conflict",
            FailureKind::Store => "store",
            FailureKind::Sink => "sink",
            FailureKind::Cursor => "cursor",
            FailureKind::Crash => "crash",
            FailureKind::Config => "config",
            FailureKind::Preflight(check) => check.failure_label(),
            FailureKind::Unrecognized => "unrecognized",
        }
    }

    /// The kind a stored label names; labels this version does not know read as
    /// [`FailureKind::Unrecognized`] rather than making the record unreadable.
    pub fn from_label(label: &str) -> FailureKind {
        if let Some(k) = FailureKind::SIMPLE.iter().find(|k| k.as_str() == label) {
            return *k;
        }
        crate::onboard::CheckId::ALL
            .iter()
            .find(|c| c.failure_label() == label)
            .map_or(FailureKind::Unrecognized, |c| FailureKind::Preflight(*c))
    }

    /// The tenant health a failure of this kind implies.
    pub fn health_state(self) -> HealthState {
        match self {
            FailureKind::ConsentRevoked
            | FailureKind::ConsentMissing
            | FailureKind::AppDisabled => HealthState::ConsentRevoked,
            FailureKind::AppNotInTenant => HealthState::Offboarded,
            FailureKind::LicenceRequired => HealthState::LicenceMissing,
            FailureKind::Forbidden
            | FailureKind::AuditingDisabled
            | FailureKind::SubscriptionMissing
            | FailureKind::SubscriptionDisabled => HealthState::PermissionMissing,
            FailureKind::BadCredential
            | FailureKind::InvalidSecret
            | FailureKind::SecretExpired
            | FailureKind::InvalidCertificate
            | FailureKind::AssertionRejected
            | FailureKind::CredentialCloudMismatch
            | FailureKind::SecretBadReference
            | FailureKind::SecretNotFound
            | FailureKind::SecretAccessDenied
            | FailureKind::SecretMalformed
            | FailureKind::SecretBadCertificate => HealthState::CredentialsExpired,
            FailureKind::Preflight(check) => check.implied_state(),
            FailureKind::Throttled
            | FailureKind::Unauthorized
            | FailureKind::NotFound
            | FailureKind::BadRequest
            | FailureKind::Transient
            | FailureKind::Decode
            | FailureKind::ResponseTooLarge
            | FailureKind::ForeignLink
            | FailureKind::Deadline
            | FailureKind::Unsupported
            | FailureKind::ContentUnavailable
            | FailureKind::InvalidTenant
            | FailureKind::ScopeUnavailable
            | FailureKind::TenantNotFound
            | FailureKind::WrongCloud
            | FailureKind::Rejected
            | FailureKind::Transport
            | FailureKind::MalformedToken
            | FailureKind::UnexpectedStatus
            | FailureKind::SecretBackend
            | FailureKind::CursorConflict
            | FailureKind::Store
            | FailureKind::Sink
            | FailureKind::Cursor
            | FailureKind::Crash
            | FailureKind::Config
            | FailureKind::Unrecognized => HealthState::Degraded,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Ok(FailureKind::from_label(&label))
    }
}

/// Consecutive polls of a stream that met throttling before the stream shows `degraded`: a
/// single 429 that the client waited out is normal operation, throttling that persists is not.
pub const THROTTLED_POLLS_DEGRADED: u32 = 3;

/// Health of one stream of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamHealth {
    /// The stream's state after its last poll.
    pub state: HealthState,
    /// Its last successful poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    /// Kind of its last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<FailureKind>,
    /// When it last failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failed polls since its last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Consecutive successful polls that met throttling.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_polls: u32,
    /// The last poll that delivered at least one event (the scheduler polls a stream quiet
    /// since then less often; see `schedule.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<DateTime<Utc>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Health of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The tenant's state: the worst of its streams (see the module docs).
    pub state: HealthState,
    /// Last fully successful poll of any stream.
    pub last_success: Option<DateTime<Utc>>,
    /// Kind of the last failure of any stream.
    pub last_error_kind: Option<FailureKind>,
    /// When the last failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failed polls since the last success, for the stream that fails longest.
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
    /// Health per stream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<Stream, StreamHealth>,
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
            streams: BTreeMap::new(),
        }
    }
}

impl Health {
    /// Forgets every stream's state: the tenant starts again as `pending` (after a
    /// re-authorization or a preflight without blockers).
    pub fn reset(&mut self) {
        self.state = HealthState::Pending;
        self.consecutive_failures = 0;
        self.streams.clear();
    }
}

/// A change to a tenant's health after one job of one stream.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthUpdate {
    /// A poll succeeded; `newest_event` is the newest event time emitted, if any.
    Success {
        /// The stream polled.
        stream: Stream,
        /// When.
        at: DateTime<Utc>,
        /// Newest event time emitted by this poll.
        newest_event: Option<DateTime<Utc>>,
        /// Whether Microsoft throttled the poll (it still completed); the stream shows
        /// `degraded` once [`THROTTLED_POLLS_DEGRADED`] polls in a row were throttled.
        throttled: bool,
    },
    /// A poll failed.
    Failure {
        /// The stream polled.
        stream: Stream,
        /// When.
        at: DateTime<Utc>,
        /// What failed.
        kind: FailureKind,
    },
}

/// Applies a health update to a health record (shared by every registry implementation).
pub fn apply_health(h: &Health, update: &HealthUpdate) -> Health {
    let mut h = h.clone();
    match update {
        HealthUpdate::Success {
            stream,
            at,
            newest_event,
            throttled,
        } => {
            h.last_success = Some(h.last_success.map_or(*at, |p| p.max(*at)));
            h.first_success.get_or_insert(*at);
            if let Some(e) = newest_event {
                h.last_event_at = Some(h.last_event_at.map_or(*e, |p| p.max(*e)));
            }
            let s = h.streams.entry(*stream).or_insert_with(|| StreamHealth {
                state: HealthState::Pending,
                last_success: None,
                last_error_kind: None,
                last_error_at: None,
                consecutive_failures: 0,
                throttled_polls: 0,
                last_delivery_at: None,
            });
            s.throttled_polls = if *throttled {
                s.throttled_polls.saturating_add(1)
            } else {
                0
            };
            s.state = if s.throttled_polls >= THROTTLED_POLLS_DEGRADED {
                HealthState::Degraded
            } else {
                HealthState::Healthy
            };
            s.last_success = Some(*at);
            s.consecutive_failures = 0;
            if newest_event.is_some() {
                s.last_delivery_at = Some(*at);
            }
            h.state = derive_state(&h, *at);
        }
        HealthUpdate::Failure { stream, at, kind } => {
            h.last_error_kind = Some(*kind);
            h.last_error_at = Some(*at);
            let s = h.streams.entry(*stream).or_insert_with(|| StreamHealth {
                state: HealthState::Pending,
                last_success: None,
                last_error_kind: None,
                last_error_at: None,
                consecutive_failures: 0,
                throttled_polls: 0,
                last_delivery_at: None,
            });
            s.state = kind.health_state();
            s.last_error_kind = Some(*kind);
            s.last_error_at = Some(*at);
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            if *kind == FailureKind::LicenceRequired {
                // Graph refused sign-in logs for want of P1/P2: audit logs are kept 7 days.
                h.retention_days = Some(7);
            }
            h.state = derive_state(&h, *at);
        }
    }
    h.consecutive_failures = h
        .streams
        .values()
        .map(|s| s.consecutive_failures)
        .max()
        .unwrap_or(0);
    h
}

/// The tenant's state: the worst stream state, or `no_data` when that is `healthy` and no
/// event came for 24 hours (since the newest one, or since polling began if none ever came).
fn derive_state(h: &Health, now: DateTime<Utc>) -> HealthState {
    let worst = h
        .streams
        .values()
        .map(|s| s.state)
        .max_by_key(|s| s.severity())
        .unwrap_or(HealthState::Pending);
    if worst != HealthState::Healthy {
        return worst;
    }
    let day = chrono::TimeDelta::hours(24);
    let stale = match (h.last_event_at, h.first_success) {
        (Some(e), _) => now - e > day,
        (None, Some(first)) => now - first > day,
        (None, None) => false,
    };
    if stale {
        HealthState::NoData
    } else {
        HealthState::Healthy
    }
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

    fn ok(stream: Stream, at: i64, newest: Option<i64>, throttled: bool) -> HealthUpdate {
        HealthUpdate::Success {
            stream,
            at: t(at),
            newest_event: newest.map(t),
            throttled,
        }
    }

    fn fail(stream: Stream, at: i64, kind: FailureKind) -> HealthUpdate {
        HealthUpdate::Failure {
            stream,
            at: t(at),
            kind,
        }
    }

    #[test]
    fn health_moves_through_its_states() {
        let s = Stream::Signins;
        let h = Health::default();
        assert_eq!(h.state, HealthState::Pending);
        let h = apply_health(&h, &ok(s, 0, Some(0), false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(s, 1, None, true));
        assert_eq!(
            h.state,
            HealthState::Healthy,
            "one throttled poll is normal"
        );
        let h = apply_health(&h, &ok(s, 1, None, true));
        let h = apply_health(&h, &ok(s, 1, None, true));
        assert_eq!(h.state, HealthState::Degraded, "throttling persists");
        let h = apply_health(&h, &ok(s, 25, None, false));
        assert_eq!(h.state, HealthState::NoData, "no event for 24 h");
        let h = apply_health(&h, &ok(s, 26, Some(26), false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &fail(s, 27, FailureKind::LicenceRequired));
        assert_eq!(h.state, HealthState::LicenceMissing);
        assert_eq!(h.retention_days, Some(7));
        assert_eq!(h.consecutive_failures, 1);
        assert_eq!(h.last_success, Some(t(26)));
        assert_eq!(h.last_error_kind, Some(FailureKind::LicenceRequired));
    }

    #[test]
    fn a_tenant_that_never_had_an_event_is_no_data_after_a_day() {
        let s = Stream::DirectoryAudits;
        let h = apply_health(&Health::default(), &ok(s, 0, None, false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(s, 23, None, false));
        assert_eq!(h.state, HealthState::Healthy);
        let h = apply_health(&h, &ok(s, 25, None, false));
        assert_eq!(h.state, HealthState::NoData);
        assert_eq!(h.first_success, Some(t(0)));
    }

    #[test]
    fn one_streams_success_never_hides_anothers_failure_whatever_the_order() {
        let a = fail(Stream::Signins, 1, FailureKind::LicenceRequired);
        let b = ok(Stream::DirectoryAudits, 1, Some(1), false);
        let ab = apply_health(&apply_health(&Health::default(), &a), &b);
        let ba = apply_health(&apply_health(&Health::default(), &b), &a);
        assert_eq!(ab.state, HealthState::LicenceMissing);
        assert_eq!(ba.state, HealthState::LicenceMissing);
        assert_eq!(
            ab.last_success,
            Some(t(1)),
            "the working stream's success counts"
        );
        assert_eq!(
            ab.streams[&Stream::DirectoryAudits].state,
            HealthState::Healthy
        );
        // Once the failing stream works again, the tenant is healthy.
        let h = apply_health(&ab, &ok(Stream::Signins, 2, Some(2), false));
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!(h.consecutive_failures, 0);
    }

    #[test]
    fn labels_round_trip_and_unknown_labels_stay_readable() {
        for k in FailureKind::SIMPLE {
            assert_eq!(FailureKind::from_label(k.as_str()), k);
        }
        for c in crate::onboard::CheckId::ALL {
            let k = FailureKind::Preflight(c);
            assert_eq!(FailureKind::from_label(k.as_str()), k);
        }
        assert_eq!(
            FailureKind::from_label("something_new"),
            FailureKind::Unrecognized
        );
        let h: Health = serde_json::from_value(serde_json::json!({
            "state": "degraded", "last_success": null, "last_error_kind": "throttled",
            "last_error_at": null, "consecutive_failures": 2, "last_event_at": null
        }))
        .unwrap_or_default();
        assert_eq!(h.last_error_kind, Some(FailureKind::Throttled));
        assert_eq!(h.consecutive_failures, 2);
    }

    #[test]
    fn every_simple_kind_has_a_distinct_label() {
        let mut labels: Vec<&str> = FailureKind::SIMPLE.iter().map(|k| k.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), FailureKind::SIMPLE.len());
    }
}
