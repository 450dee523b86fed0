//! Typed Graph errors, each classified retryable or permanent.

use std::time::Duration;

use crate::auth::AuthError;

/// Everything that can go wrong calling Microsoft Graph for one tenant.
///
/// No variant carries a response body, a token or a URL query: only status codes, Graph's
/// error `code` (a short identifier), hosts and byte offsets.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// 429: the request budget is spent. `retry_after` is Microsoft's `Retry-After`, if any.
    #[error("throttled by Microsoft Graph (retry after {retry_after:?})")]
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
    /// The body is not the JSON Graph promised (truncated or garbled).
    #[error("response is not valid JSON at byte {offset} (line {line}, column {column})")]
    Decode {
        /// Byte offset of the first problem.
        offset: usize,
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
    },
    /// An `@odata.nextLink` pointing outside the tenant's own Graph host. Never followed.
    #[error("refused nextLink to {host:?}: not this tenant's Graph host {expected}")]
    ForeignNextLink {
        /// The host the link pointed to (or the scheme problem).
        host: String,
        /// The tenant's Graph host.
        expected: &'static str,
    },
    /// The response body exceeded the transport's size cap. Permanent for this request: the
    /// same request would return the same body.
    #[error("response exceeds the {limit_bytes}-byte body limit")]
    ResponseTooLarge {
        /// The cap, in bytes.
        limit_bytes: u64,
    },
    /// The call's deadline would pass before a retry or wait could finish.
    #[error("deadline reached before the call could complete")]
    DeadlineExceeded,
    /// Acquiring the app-only token failed.
    #[error("token acquisition failed: {0}")]
    Auth(#[from] AuthError),
    /// This cloud does not serve the requested API.
    #[error("{0} is not available in this national cloud")]
    Unsupported(&'static str),
}

impl GraphError {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Throttled { .. }
            | GraphError::Transient { .. }
            | GraphError::Decode { .. }
            | GraphError::DeadlineExceeded => true,
            GraphError::Unauthorized { .. } => true,
            GraphError::Auth(a) => a.is_retryable(),
            GraphError::ConsentRevoked
            | GraphError::LicenceRequired
            | GraphError::Forbidden { .. }
            | GraphError::NotFound { .. }
            | GraphError::BadRequest { .. }
            | GraphError::ForeignNextLink { .. }
            | GraphError::ResponseTooLarge { .. }
            | GraphError::Unsupported(_) => false,
        }
    }

    /// A short stable name for health records and metrics (bounded label values).
    pub fn kind(&self) -> &'static str {
        match self {
            GraphError::Throttled { .. } => "throttled",
            GraphError::Unauthorized { .. } => "unauthorized",
            GraphError::ConsentRevoked => "consent_revoked",
            GraphError::LicenceRequired => "licence_required",
            GraphError::Forbidden { .. } => "forbidden",
            GraphError::NotFound { .. } => "not_found",
            GraphError::BadRequest { .. } => "bad_request",
            GraphError::Transient { .. } => "transient",
            GraphError::Decode { .. } => "decode",
            GraphError::ForeignNextLink { .. } => "foreign_next_link",
            GraphError::ResponseTooLarge { .. } => "response_too_large",
            GraphError::DeadlineExceeded => "deadline",
            GraphError::Auth(a) => a.kind(),
            GraphError::Unsupported(_) => "unsupported",
        }
    }

    /// The wait Microsoft asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Throttled { retry_after } | GraphError::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// Builds a [`GraphError::Decode`] from a serde_json error and the body it failed on, without
/// keeping any of the body.
pub fn decode_error(err: &serde_json::Error, body: &[u8]) -> GraphError {
    let line = err.line();
    let column = err.column();
    GraphError::Decode {
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
        assert!(GraphError::Throttled { retry_after: None }.is_retryable());
        assert!(!GraphError::LicenceRequired.is_retryable());
        assert!(!GraphError::ConsentRevoked.is_retryable());
        assert!(
            !GraphError::ForeignNextLink {
                host: "x".into(),
                expected: "graph.microsoft.com"
            }
            .is_retryable()
        );
        assert_eq!(GraphError::LicenceRequired.kind(), "licence_required");
    }

    #[test]
    fn decode_offset_points_at_the_truncation_and_hides_the_body() {
        let body = br#"{"value":[{"id":"secret-user@contoso.com","x":"#;
        let err = serde_json::from_slice::<serde_json::Value>(body).err();
        let Some(err) = err else { panic!("must fail") };
        let g = decode_error(&err, body);
        let GraphError::Decode { offset, .. } = g else {
            panic!("decode")
        };
        assert!(offset + 1 >= body.len() && offset <= body.len(), "{offset}");
        assert!(!g.to_string().contains("contoso"));
    }
}
