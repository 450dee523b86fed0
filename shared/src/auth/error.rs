//! Token-acquisition errors and the classification of Microsoft identity-platform error
//! responses.
//!
//! Classification uses only the `error` field and the numeric `error_codes` of the error body,
//! never `error_description` (Microsoft warns that its text changes). No variant carries the
//! response body, a secret, a client assertion or a token: a body that cannot be parsed is
//! reported by byte offset only, because even a JSON parser's message can quote input.
//!
//! Every variant has a stable [`AuthError::kind`] for health pages and metrics, an
//! [`AuthError::is_retryable`] verdict for the poller's backoff, and an operator-facing
//! [`AuthError::remedy`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::http::TransportError;

use crate::cloud::{Api, Cloud, CloudGroup};
use crate::health::FailureKind;

/// Why an app-only token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The configured certificate or key cannot be used (nothing was sent).
    #[error("credential unusable: {reason}")]
    BadCredential {
        /// Fixed description; never quotes key or certificate material.
        reason: &'static str,
    },
    /// The tenant is not a GUID or domain name (nothing was sent).
    #[error("tenant identifier {tenant:?} is not a tenant GUID or domain name")]
    InvalidTenant {
        /// The refused identifier, reduced to printable ASCII and at most 64 characters.
        tenant: String,
    },
    /// The requested resource has no endpoint in this cloud (nothing was sent).
    #[error("the {scope} API has no endpoint in the {cloud} cloud")]
    ScopeUnavailable {
        /// The tenant's cloud.
        cloud: Cloud,
        /// The resource asked for.
        scope: Api,
    },
    /// AADSTS700016: the app has no service principal in the tenant (deleted, never consented,
    /// wrong tenant or wrong app ID). Treat the tenant as offboarded.
    #[error(
        "AADSTS{code}: the app is not present in the tenant (service principal removed or never consented)"
    )]
    AppNotInTenant {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS65001: consent has not been granted.
    #[error("AADSTS{code}: admin consent has not been granted to the app")]
    ConsentMissing {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS7000112: the app is disabled in the tenant.
    #[error("AADSTS{code}: the app is disabled in the tenant")]
    AppDisabled {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS7000215: the client secret is wrong.
    #[error("AADSTS{code}: invalid client secret")]
    InvalidSecret {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS7000222: the client secret has expired.
    #[error("AADSTS{code}: the client secret has expired")]
    SecretExpired {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS700027: the assertion's certificate is unknown to the app or the signature fails.
    #[error("AADSTS{code}: the client certificate was not accepted")]
    InvalidCertificate {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS90002: the tenant was not found on this login host: wrong cloud or bad tenant.
    #[error(
        "AADSTS{code}: tenant not found on this cloud's login host (wrong cloud or bad tenant)"
    )]
    TenantNotFound {
        /// AADSTS code.
        code: u32,
    },
    /// AADSTS900382, 1002012, 500011, 70011: scope, resource or cross-cloud request refused,
    /// which for a poller means the tenant lives in another national cloud.
    #[error("AADSTS{code}: request refused as cross-cloud or invalid for this cloud")]
    WrongCloud {
        /// AADSTS code.
        code: u32,
    },
    /// The tenant's app registration belongs to another cloud group than the tenant: its
    /// credential is not sent (sovereignty).
    #[error(
        "the app registration belongs to the {app_group} cloud group, the tenant to {cloud}: its credential is not sent there"
    )]
    CloudMismatch {
        /// The app's cloud group.
        app_group: CloudGroup,
        /// The tenant's cloud.
        cloud: Cloud,
    },
    /// AADSTS50012, 50013, 500133: the client assertion is invalid or expired (clock skew,
    /// signature).
    #[error("AADSTS{code}: the client assertion was rejected")]
    AssertionRejected {
        /// AADSTS code.
        code: u32,
    },
    /// A token was issued but carries no `roles` claim: admin consent was revoked while the
    /// service principal remains. The token is not usable.
    #[error("token issued without application roles: admin consent was revoked")]
    ConsentRevoked,
    /// Any other 4xx refusal.
    #[error("token request refused (HTTP {status}, error {error:?}, codes {codes:?})")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` field (only `[a-z0-9_]`, else `unrecognised`).
        error: String,
        /// The `error_codes` (AADSTS numbers).
        codes: Vec<u32>,
    },
    /// Throttled (429) or a server-side failure (5xx): retry after a delay.
    #[error("login service unavailable or throttling (HTTP {status})")]
    Transient {
        /// HTTP status.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// No HTTP response (connection, timeout) or a refused target.
    #[error("token request not completed: {0}")]
    Transport(#[source] TransportError),
    /// The response body is not the JSON expected.
    #[error(
        "unreadable token endpoint response (HTTP {status}, {category} error at byte {offset})"
    )]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// Byte offset of the parse failure in the body.
        offset: usize,
        /// `syntax`, `data`, `eof` or `io`.
        category: &'static str,
    },
    /// The access token is not a decodable JWT.
    #[error("access token is not a readable JWT: {reason}")]
    MalformedToken {
        /// Fixed description; never quotes the token.
        reason: &'static str,
    },
    /// A status the token endpoint does not document (1xx, 3xx, 2xx other than 200).
    #[error("unexpected HTTP {status} from the token endpoint")]
    UnexpectedStatus {
        /// HTTP status.
        status: u16,
    },
}

impl AuthError {
    /// Whether retrying the same request later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            AuthError::Transient { .. } | AuthError::Decode { .. } => true,
            AuthError::Transport(e) => matches!(
                e,
                TransportError::Timeout { .. } | TransportError::Connect { .. }
            ),
            AuthError::BadCredential { .. }
            | AuthError::InvalidTenant { .. }
            | AuthError::ScopeUnavailable { .. }
            | AuthError::AppNotInTenant { .. }
            | AuthError::ConsentMissing { .. }
            | AuthError::AppDisabled { .. }
            | AuthError::InvalidSecret { .. }
            | AuthError::SecretExpired { .. }
            | AuthError::InvalidCertificate { .. }
            | AuthError::TenantNotFound { .. }
            | AuthError::WrongCloud { .. }
            | AuthError::CloudMismatch { .. }
            | AuthError::AssertionRejected { .. }
            | AuthError::ConsentRevoked
            | AuthError::Rejected { .. }
            | AuthError::MalformedToken { .. }
            | AuthError::UnexpectedStatus { .. } => false,
        }
    }

    /// The failure kind for health pages and metric labels.
    pub fn kind(&self) -> FailureKind {
        match self {
            AuthError::BadCredential { .. } => FailureKind::BadCredential,
            AuthError::InvalidTenant { .. } => FailureKind::InvalidTenant,
            AuthError::ScopeUnavailable { .. } => FailureKind::ScopeUnavailable,
            AuthError::AppNotInTenant { .. } => FailureKind::AppNotInTenant,
            AuthError::ConsentMissing { .. } => FailureKind::ConsentMissing,
            AuthError::AppDisabled { .. } => FailureKind::AppDisabled,
            AuthError::InvalidSecret { .. } => FailureKind::InvalidSecret,
            AuthError::SecretExpired { .. } => FailureKind::SecretExpired,
            AuthError::InvalidCertificate { .. } => FailureKind::InvalidCertificate,
            AuthError::TenantNotFound { .. } => FailureKind::TenantNotFound,
            AuthError::WrongCloud { .. } => FailureKind::WrongCloud,
            AuthError::CloudMismatch { .. } => FailureKind::CredentialCloudMismatch,
            AuthError::AssertionRejected { .. } => FailureKind::AssertionRejected,
            AuthError::ConsentRevoked => FailureKind::ConsentRevoked,
            AuthError::Rejected { .. } => FailureKind::Rejected,
            AuthError::Transient { .. } => FailureKind::Transient,
            AuthError::Transport(_) => FailureKind::Transport,
            AuthError::Decode { .. } => FailureKind::Decode,
            AuthError::MalformedToken { .. } => FailureKind::MalformedToken,
            AuthError::UnexpectedStatus { .. } => FailureKind::UnexpectedStatus,
        }
    }

    /// The AADSTS code behind the error, where Microsoft gave one.
    pub fn aadsts_code(&self) -> Option<u32> {
        match self {
            AuthError::AppNotInTenant { code }
            | AuthError::ConsentMissing { code }
            | AuthError::AppDisabled { code }
            | AuthError::InvalidSecret { code }
            | AuthError::SecretExpired { code }
            | AuthError::InvalidCertificate { code }
            | AuthError::TenantNotFound { code }
            | AuthError::WrongCloud { code }
            | AuthError::AssertionRejected { code } => Some(*code),
            AuthError::Rejected { codes, .. } => codes.first().copied(),
            _ => None,
        }
    }

    /// Whether the error means the tenant has removed the app (offboarded itself).
    pub fn is_offboarding(&self) -> bool {
        matches!(self, AuthError::AppNotInTenant { .. })
    }

    /// What an operator should do, in plain words.
    pub fn remedy(&self) -> &'static str {
        match self {
            AuthError::BadCredential { .. } => {
                "fix the configured credential: a PEM certificate with its matching RSA private key (PKCS#8 or PKCS#1, at least 2048 bits)"
            }
            AuthError::InvalidTenant { .. } => {
                "fix the tenant identifier: use the tenant GUID or a verified domain"
            }
            AuthError::ScopeUnavailable { .. } => {
                "this API does not exist in the tenant's cloud: use another source for this tenant"
            }
            AuthError::AppNotInTenant { .. } => {
                "the app is gone from the customer's tenant: treat the tenant as offboarded, or ask the customer's admin to grant consent again"
            }
            AuthError::ConsentMissing { .. } => {
                "the customer's admin must grant admin consent to the app"
            }
            AuthError::AppDisabled { .. } => {
                "the customer's admin disabled the app: ask them to enable it again"
            }
            AuthError::InvalidSecret { .. } => {
                "the client secret is wrong: check the configured secret or rotate the client secret"
            }
            AuthError::SecretExpired { .. } => {
                "the client secret expired: rotate the client secret"
            }
            AuthError::InvalidCertificate { .. } => {
                "the certificate is not registered on the app or does not match the key: upload the certificate to the app registration or fix the configured one"
            }
            AuthError::TenantNotFound { .. } => {
                "the tenant is unknown on this cloud's login host: check the tenant ID, or re-detect its national cloud"
            }
            AuthError::CloudMismatch { .. } => {
                "the tenant is registered with an app registration of another cloud group: register it with the app of its own group (`itdr tenants add --app`), which preflight checks"
            }
            AuthError::WrongCloud { .. } => {
                "the tenant is in another national cloud: re-detect its cloud"
            }
            AuthError::AssertionRejected { .. } => {
                "the client assertion was refused: check this host's clock (skew) and the configured certificate"
            }
            AuthError::ConsentRevoked => "the customer's admin must grant consent again",
            AuthError::Rejected { .. } => {
                "the token request was refused: look up the AADSTS code in Microsoft's error reference"
            }
            AuthError::Transient { .. } => {
                "Microsoft's login service is throttling or failing: retry with backoff"
            }
            AuthError::Transport(_) => {
                "the login host could not be reached: check network egress, then retry"
            }
            AuthError::Decode { .. } => {
                "the login service sent an unreadable answer: retry, and check for an intercepting proxy if it persists"
            }
            AuthError::MalformedToken { .. } => {
                "the issued token could not be read: check that the scope is a Microsoft Graph or Management API scope"
            }
            AuthError::UnexpectedStatus { .. } => {
                "the token endpoint answered with an unexpected status: check for an intercepting proxy"
            }
        }
    }
}

impl From<TransportError> for AuthError {
    fn from(e: TransportError) -> Self {
        AuthError::Transport(e)
    }
}

/// The fields of Microsoft's token error body that classification and logging may use.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_codes: Option<Vec<u64>>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl ErrorBody {
    /// The codes that fit an AADSTS number.
    pub fn codes(&self) -> Vec<u32> {
        self.error_codes
            .iter()
            .flatten()
            .filter_map(|c| u32::try_from(*c).ok())
            .collect()
    }
}

/// Classifies a non-200 response from the token endpoint.
pub(crate) fn classify_failure(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> AuthError {
    if status == 429 || status >= 500 {
        return AuthError::Transient {
            status,
            retry_after: parse_retry_after(retry_after, now),
        };
    }
    if !(400..500).contains(&status) {
        return AuthError::UnexpectedStatus { status };
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => classify_error_body(status, &parsed),
        Err(e) => decode_error(status, body, &e),
    }
}

/// Maps a parsed 4xx error body to a variant, on `error` and `error_codes` only.
pub(crate) fn classify_error_body(status: u16, body: &ErrorBody) -> AuthError {
    let codes = body.codes();
    for &code in &codes {
        let mapped = match code {
            700016 => Some(AuthError::AppNotInTenant { code }),
            65001 => Some(AuthError::ConsentMissing { code }),
            7000112 => Some(AuthError::AppDisabled { code }),
            7000215 => Some(AuthError::InvalidSecret { code }),
            7000222 => Some(AuthError::SecretExpired { code }),
            700027 => Some(AuthError::InvalidCertificate { code }),
            90002 => Some(AuthError::TenantNotFound { code }),
            900382 | 1002012 | 500011 | 70011 => Some(AuthError::WrongCloud { code }),
            50012 | 50013 | 500133 => Some(AuthError::AssertionRejected { code }),
            _ => None,
        };
        if let Some(e) = mapped {
            return e;
        }
    }
    let error = sanitize_error_code(body.error.as_deref());
    if error == "temporarily_unavailable" {
        return AuthError::Transient {
            status,
            retry_after: None,
        };
    }
    AuthError::Rejected {
        status,
        error,
        codes,
    }
}

/// A JSON failure reported by position only.
pub(crate) fn decode_error(status: u16, body: &[u8], e: &serde_json::Error) -> AuthError {
    let category = match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "eof",
    };
    AuthError::Decode {
        status,
        offset: crate::http::json_error_offset(body, e.line(), e.column()),
        category,
    }
}

/// Keeps an OAuth `error` value only if it looks like one (`[a-z0-9_]`, at most 64 bytes).
fn sanitize_error_code(error: Option<&str>) -> String {
    match error {
        Some(e)
            if !e.is_empty()
                && e.len() <= 64
                && e.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            e.to_string()
        }
        Some(_) => "unrecognised".to_string(),
        None => "missing".to_string(),
    }
}

/// Keeps a trace or correlation id for logging only if it is GUID-shaped.
pub(crate) fn sanitize_id(id: Option<&str>) -> Option<&str> {
    id.filter(|s| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })
}

/// Parses `Retry-After` as delta-seconds or an HTTP date (relative to `now`), clamped like
/// every other `Retry-After` (`client::pacing::parse_retry_after`).
pub(crate) fn parse_retry_after(value: Option<&str>, now: DateTime<Utc>) -> Option<Duration> {
    crate::client::pacing::parse_retry_after(value?, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn the_token_endpoints_retry_after_is_clamped_too() {
        let max = crate::client::pacing::MAX_RETRY_AFTER;
        assert_eq!(parse_retry_after(Some("100000"), t0()), Some(max));
        assert_eq!(parse_retry_after(Some("1e20"), t0()), Some(max));
        assert_eq!(
            parse_retry_after(Some("17"), t0()),
            Some(Duration::from_secs(17))
        );
        assert_eq!(parse_retry_after(None, t0()), None);
    }

    fn body(error: &str, code: u64) -> Vec<u8> {
        format!(
            r#"{{"error":"{error}","error_description":"AADSTS{code}: SECRET-DESCRIPTION-TEXT with trace","error_codes":[{code}],"timestamp":"2026-01-01 00:00:00Z","trace_id":"0b3e6c1a-1111-2222-3333-444455556666","correlation_id":"9f1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff","error_uri":"https://login.microsoftonline.com/error?code={code}"}}"#
        )
        .into_bytes()
    }

    fn classify(status: u16, b: &[u8]) -> AuthError {
        classify_failure(status, None, b, t0())
    }

    #[test]
    fn every_documented_code_maps_to_its_variant() {
        let cases: &[(&str, u64, &str)] = &[
            ("unauthorized_client", 700016, "app_not_in_tenant"),
            ("invalid_grant", 65001, "consent_missing"),
            ("unauthorized_client", 7000112, "app_disabled"),
            ("invalid_client", 7000215, "invalid_secret"),
            ("invalid_client", 7000222, "secret_expired"),
            ("invalid_client", 700027, "invalid_certificate"),
            ("invalid_request", 90002, "tenant_not_found"),
            ("invalid_request", 900382, "wrong_cloud"),
            ("invalid_scope", 1002012, "wrong_cloud"),
            ("invalid_resource", 500011, "wrong_cloud"),
            ("invalid_scope", 70011, "wrong_cloud"),
            ("invalid_client", 50012, "assertion_rejected"),
            ("invalid_client", 50013, "assertion_rejected"),
            ("invalid_client", 500133, "assertion_rejected"),
        ];
        for (error, code, kind) in cases {
            let e = classify(400, &body(error, *code));
            assert_eq!(e.kind().as_str(), *kind, "code {code}");
            assert_eq!(e.aadsts_code(), Some(*code as u32), "code {code}");
            assert!(!e.is_retryable(), "code {code}");
            let shown = e.to_string();
            assert!(shown.contains(&code.to_string()), "{shown}");
            assert!(!shown.contains("SECRET-DESCRIPTION-TEXT"), "{shown}");
            assert!(!format!("{e:?}").contains("SECRET-DESCRIPTION-TEXT"));
            assert!(!e.remedy().is_empty());
        }
        assert!(classify(400, &body("unauthorized_client", 700016)).is_offboarding());
    }

    #[test]
    fn classification_ignores_the_description_text() {
        // A description that names a known code while error_codes says something else.
        let b = br#"{"error":"invalid_client","error_description":"AADSTS7000222: expired","error_codes":[7000215]}"#;
        assert_eq!(classify(401, b).kind().as_str(), "invalid_secret");
        let b = br#"{"error":"invalid_client","error_description":"AADSTS700016: gone"}"#;
        let e = classify(400, b);
        assert_eq!(e.kind().as_str(), "rejected");
        assert!(
            matches!(e, AuthError::Rejected { status: 400, ref error, ref codes } if error == "invalid_client" && codes.is_empty())
        );
    }

    #[test]
    fn unknown_codes_are_rejected_with_the_codes() {
        let e = classify(400, &body("invalid_request", 9_999_999));
        assert!(
            matches!(&e, AuthError::Rejected { status: 400, error, codes } if error == "invalid_request" && codes == &[9_999_999])
        );
        assert_eq!(e.aadsts_code(), Some(9_999_999));
        // A strange `error` value is not echoed.
        let e = classify(
            400,
            br#"{"error":"<script>steal()</script>","error_codes":[]}"#,
        );
        assert!(matches!(&e, AuthError::Rejected { error, .. } if error == "unrecognised"));
        assert!(!e.to_string().contains("script"));
        // The first known code wins.
        let b = br#"{"error":"invalid_client","error_codes":[123,7000222]}"#;
        assert_eq!(classify(400, b).kind().as_str(), "secret_expired");
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        let e = classify_failure(429, Some("17"), b"", t0());
        assert!(matches!(
            e,
            AuthError::Transient { status: 429, retry_after: Some(d) } if d == Duration::from_secs(17)
        ));
        assert!(e.is_retryable());
        let e = classify_failure(503, Some("Thu, 01 Jan 2026 00:01:00 GMT"), b"<html>", t0());
        assert!(matches!(
            e,
            AuthError::Transient { status: 503, retry_after: Some(d) } if d == Duration::from_secs(60)
        ));
        assert!(classify(500, b"").is_retryable());
        let b = br#"{"error":"temporarily_unavailable","error_codes":[]}"#;
        assert!(classify(400, b).is_retryable());
        assert_eq!(classify(302, b"").kind().as_str(), "unexpected_status");
    }

    #[test]
    fn garbage_body_is_decode_with_offset_and_no_body_text() {
        let b =
            b"{\"error\":\"invalid_client\",\n  \"error_codes\": [7000215, GARBAGE-SECRET-abc]}";
        let e = classify(400, b);
        let AuthError::Decode {
            status,
            offset,
            category,
        } = e
        else {
            panic!("expected Decode, got {e:?}")
        };
        assert_eq!(status, 400);
        assert_eq!(category, "syntax");
        let expected = b.iter().position(|c| *c == b'G').unwrap_or(usize::MAX);
        assert_eq!(offset, expected);
        let e = classify(400, b);
        assert!(e.is_retryable());
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("GARBAGE"), "{shown}");
            assert!(!shown.contains("invalid_client"), "{shown}");
        }
        // Data errors (which serde would describe by quoting the value) are reported by position.
        let b = br#"{"error": {"nested": "LEAKED-VALUE"}}"#;
        let e = classify(400, b);
        assert!(
            matches!(
                e,
                AuthError::Decode {
                    category: "data",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!format!("{e} {e:?}").contains("LEAKED-VALUE"));
        // HTML and empty bodies.
        assert!(matches!(
            classify(401, b"<html>login</html>"),
            AuthError::Decode { offset: 0, .. }
        ));
        assert!(matches!(
            classify(400, b""),
            AuthError::Decode {
                category: "eof",
                ..
            }
        ));
    }

    #[test]
    fn offsets_follow_lines() {
        let body = b"ab\ncd\nef";
        assert_eq!(crate::http::json_error_offset(body, 1, 1), 0);
        assert_eq!(crate::http::json_error_offset(body, 2, 2), 4);
        assert_eq!(crate::http::json_error_offset(body, 3, 1), 6);
        assert_eq!(crate::http::json_error_offset(body, 9, 9), body.len());
    }

    #[test]
    fn ids_are_logged_only_when_guid_shaped() {
        assert_eq!(sanitize_id(Some("0b3e6c1a-1111")), Some("0b3e6c1a-1111"));
        assert_eq!(sanitize_id(Some("token=abc")), None);
        assert_eq!(sanitize_id(None), None);
    }

    #[test]
    fn kinds_are_distinct() {
        let all = [
            AuthError::BadCredential { reason: "x" },
            AuthError::InvalidTenant { tenant: "x".into() },
            AuthError::ScopeUnavailable {
                cloud: Cloud::China,
                scope: Api::ManagementActivity,
            },
            AuthError::AppNotInTenant { code: 1 },
            AuthError::ConsentMissing { code: 1 },
            AuthError::AppDisabled { code: 1 },
            AuthError::InvalidSecret { code: 1 },
            AuthError::SecretExpired { code: 1 },
            AuthError::InvalidCertificate { code: 1 },
            AuthError::TenantNotFound { code: 1 },
            AuthError::WrongCloud { code: 1 },
            AuthError::CloudMismatch {
                app_group: CloudGroup::Commercial,
                cloud: Cloud::GccHigh,
            },
            AuthError::AssertionRejected { code: 1 },
            AuthError::ConsentRevoked,
            AuthError::Rejected {
                status: 400,
                error: "x".into(),
                codes: vec![],
            },
            AuthError::Transient {
                status: 503,
                retry_after: None,
            },
            AuthError::Transport(TransportError::Timeout { host: "h".into() }),
            AuthError::Decode {
                status: 200,
                offset: 0,
                category: "eof",
            },
            AuthError::MalformedToken { reason: "x" },
            AuthError::UnexpectedStatus { status: 302 },
        ];
        let mut kinds: Vec<&str> = all.iter().map(|e| e.kind().as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
        assert!(AuthError::Transport(TransportError::Timeout { host: "h".into() }).is_retryable());
        assert!(!AuthError::Transport(TransportError::BadUrl).is_retryable());
    }
}
