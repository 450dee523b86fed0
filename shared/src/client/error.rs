//! Typed errors of the Microsoft APIs (Graph, the Management Activity API), each classified
//! retryable or permanent, with its [`FailureKind`].

use std::time::Duration;

use crate::auth::AuthError;
use crate::cloud::Api;
use crate::health::FailureKind;

/// Everything that can go wrong calling a Microsoft API for one tenant.
///
/// No variant carries a response body, a token or a URL query: only status codes, Graph's
/// error `code` (a short identifier), hosts and byte offsets.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// 429: the request budget is spent. `retry_after` is Microsoft's `Retry-After`, if any.
    #[error("throttled by Microsoft (retry after {retry_after:?})")]
    Throttled {
        /// The wait Microsoft asked for.
        retry_after: Option<Duration>,
    },
    /// 401 for a reason other than missing consent (expired or rejected token).
    #[error("unauthorized ({code})")]
    Unauthorized {
        /// Graph's error code.
        code: String,
    },
    /// The app's admin consent is gone: the token has no roles, or Graph says so.
    #[error("admin consent revoked: the token carries no application permissions")]
    ConsentRevoked,
    /// 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`: the tenant lacks an
    /// Entra ID P1/P2 licence for sign-in logs.
    #[error("licence required: the tenant has no Microsoft Entra ID P1/P2 licence")]
    LicenceRequired,
    /// 403 for a missing permission (`Authorization_RequestDenied`).
    #[error("forbidden ({code}): a required application permission is missing")]
    Forbidden {
        /// Graph's error code.
        code: String,
    },
    /// 404.
    #[error("not found ({code})")]
    NotFound {
        /// Graph's error code.
        code: String,
    },
    /// 400 or another 4xx: our request is wrong; retrying will not help.
    #[error("request rejected with HTTP {status} ({code})")]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// Graph's error code.
        code: String,
    },
    /// 5xx, timeouts and connection failures.
    #[error("transient failure{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transient {
        /// HTTP status, when a response came back.
        status: Option<u16>,
        /// `Retry-After` on a 503, if any.
        retry_after: Option<Duration>,
        /// Short description without any URL or body.
        detail: String,
    },
    /// The body is not the JSON the API promised (truncated or garbled).
    #[error("response is not valid JSON at byte {offset} (line {line}, column {column})")]
    Decode {
        /// Byte offset of the first problem.
        offset: usize,
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
    },
    /// A paging link or content URI pointing outside the API's host in the tenant's cloud
    /// (`@odata.nextLink`, `NextPageUri`, `contentUri`). Never followed.
    #[error("refused link to {host:?}: not this tenant's {api} host {expected}")]
    ForeignLink {
        /// The API the link was for.
        api: Api,
        /// The host the link pointed to (or the scheme problem).
        host: String,
        /// The API's host in the tenant's cloud.
        expected: &'static str,
    },
    /// The response body exceeded the transport's size cap. Permanent for this request: the
    /// same request would return the same body.
    #[error("response exceeds the {limit_bytes}-byte body limit")]
    ResponseTooLarge {
        /// The cap, in bytes.
        limit_bytes: u64,
    },
    /// The call's deadline would pass before a retry or wait could finish. `cause` is what
    /// made the call wait that long (throttling, timeouts, 5xx), when something did: a poll
    /// that got nowhere because of it reports the cause, not just the deadline.
    #[error("deadline reached before the call could complete{}", cause.map(|c| format!(" (after {c})")).unwrap_or_default())]
    DeadlineExceeded {
        /// The failure that used up the time, if any.
        cause: Option<FailureKind>,
    },
    /// Acquiring the app-only token failed.
    #[error("token acquisition failed: {0}")]
    Auth(#[from] AuthError),
    /// This cloud does not serve the requested API.
    #[error("{0} is not available in this national cloud")]
    Unsupported(&'static str),
    /// The Management Activity API says the tenant's unified audit log is off: starting a
    /// subscription fails with `…DataServiceException: Tenant <id> does not exist.`
    #[error("the tenant's unified audit log is off (Management Activity API)")]
    AuditingDisabled,
    /// AF20022: no subscription for the content type.
    #[error("no Management Activity subscription for the content type (AF20022)")]
    SubscriptionMissing,
    /// AF20023: a tenant or service administrator disabled the subscription.
    #[error("the Management Activity subscription was disabled by an administrator (AF20023)")]
    SubscriptionDisabled,
    /// AF20050 (not found), AF20051 (expired, older than 7 days) or AF20052 (invalid id): the
    /// content blob cannot be fetched, now or later.
    #[error("content blob unavailable ({code})")]
    ContentUnavailable {
        /// The Management Activity API's error code.
        code: String,
    },
    /// A Management Activity call without our publisher tenant id (`PublisherIdentifier`),
    /// which every request must carry: the deployment's configuration lacks it.
    #[error("no publisher identifier is configured for the Management Activity API")]
    PublisherIdMissing,
}

impl SourceError {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Throttled { .. }
            | SourceError::Transient { .. }
            | SourceError::Decode { .. }
            | SourceError::DeadlineExceeded { .. } => true,
            SourceError::Unauthorized { .. } => true,
            SourceError::Auth(a) => a.is_retryable(),
            SourceError::ConsentRevoked
            | SourceError::LicenceRequired
            | SourceError::Forbidden { .. }
            | SourceError::NotFound { .. }
            | SourceError::BadRequest { .. }
            | SourceError::ForeignLink { .. }
            | SourceError::ResponseTooLarge { .. }
            | SourceError::Unsupported(_)
            | SourceError::AuditingDisabled
            | SourceError::SubscriptionMissing
            | SourceError::SubscriptionDisabled
            | SourceError::ContentUnavailable { .. }
            | SourceError::PublisherIdMissing => false,
        }
    }

    /// The failure kind for health records and metrics.
    pub fn kind(&self) -> FailureKind {
        match self {
            SourceError::Throttled { .. } => FailureKind::Throttled,
            SourceError::Unauthorized { .. } => FailureKind::Unauthorized,
            SourceError::ConsentRevoked => FailureKind::ConsentRevoked,
            SourceError::LicenceRequired => FailureKind::LicenceRequired,
            SourceError::Forbidden { .. } => FailureKind::Forbidden,
            SourceError::NotFound { .. } => FailureKind::NotFound,
            SourceError::BadRequest { .. } => FailureKind::BadRequest,
            SourceError::Transient { .. } => FailureKind::Transient,
            SourceError::Decode { .. } => FailureKind::Decode,
            SourceError::ForeignLink { .. } => FailureKind::ForeignLink,
            SourceError::ResponseTooLarge { .. } => FailureKind::ResponseTooLarge,
            SourceError::DeadlineExceeded { cause } => cause.unwrap_or(FailureKind::Deadline),
            SourceError::Auth(a) => a.kind(),
            SourceError::Unsupported(_) => FailureKind::Unsupported,
            SourceError::AuditingDisabled => FailureKind::AuditingDisabled,
            SourceError::SubscriptionMissing => FailureKind::SubscriptionMissing,
            SourceError::SubscriptionDisabled => FailureKind::SubscriptionDisabled,
            SourceError::ContentUnavailable { .. } => FailureKind::ContentUnavailable,
            SourceError::PublisherIdMissing => FailureKind::Config,
        }
    }

    /// The wait Microsoft asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SourceError::Throttled { retry_after } | SourceError::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// Builds a [`SourceError::Decode`] from a serde_json error and the body it failed on, without
/// keeping any of the body.
pub fn decode_error(err: &serde_json::Error, body: &[u8]) -> SourceError {
    let line = err.line();
    let column = err.column();
    SourceError::Decode {
        offset: crate::http::json_error_offset(body, line, column),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(SourceError::Throttled { retry_after: None }.is_retryable());
        assert!(!SourceError::LicenceRequired.is_retryable());
        assert!(!SourceError::ConsentRevoked.is_retryable());
        assert!(
            !SourceError::ForeignLink {
                api: Api::Graph,
                host: "x".into(),
                expected: "graph.microsoft.com"
            }
            .is_retryable()
        );
        assert_eq!(
            SourceError::LicenceRequired.kind(),
            FailureKind::LicenceRequired
        );
    }

    #[test]
    fn decode_offset_points_at_the_truncation_and_hides_the_body() {
        let body = br#"{"value":[{"id":"secret-user@contoso.com","x":"#;
        let err = serde_json::from_slice::<serde_json::Value>(body).err();
        let Some(err) = err else { panic!("must fail") };
        let g = decode_error(&err, body);
        let SourceError::Decode { offset, .. } = g else {
            panic!("decode")
        };
        assert!(offset + 1 >= body.len() && offset <= body.len(), "{offset}");
        assert!(!g.to_string().contains("contoso"));
    }
}
