//! The app-only access token, its application roles, and the roles the pipeline needs.
//!
//! After every fetch the token's JWT payload is decoded (no signature check: the token is
//! meant for Graph, not for us) to read `roles` and `tid`. A token without any role means that
//! admin consent was revoked while the service principal stayed: it is reported as
//! [`AuthError::ConsentRevoked`] rather than handed out. Partial consent is visible through
//! [`AccessToken::missing_roles`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::HeaderValue;
use serde::Deserialize;

use super::error::AuthError;
use super::secret::SecretString;

/// Application roles without which Graph audit-log polling cannot work.
pub const REQUIRED_GRAPH_ROLES: &[&str] = &["AuditLog.Read.All", "Directory.Read.All"];

/// Every application role the service may ask a customer to consent to, with its purpose.
pub const ROLE_PURPOSES: &[(&str, &str)] = &[
    ("AuditLog.Read.All", "read sign-in and directory audit logs"),
    (
        "Directory.Read.All",
        "resolve directory objects; required together with AuditLog.Read.All to read sign-ins",
    ),
    ("Organization.Read.All", "read licences (subscribedSkus)"),
    (
        "User.Read.All",
        "inventory: read users, their licences and account state for the billable count (Directory.Read.All also grants it)",
    ),
    (
        "User.EnableDisableAccount.All",
        "disable compromised accounts",
    ),
    (
        "UserAuthenticationMethod.ReadWrite.All",
        "reset authentication methods during containment",
    ),
    (
        "MailboxSettings.Read",
        "inventory: read every mailbox's inbox rules and its purpose; without it, rules set before onboarding go unseen and shared mailboxes cannot be told from users (billing)",
    ),
    (
        "Policy.Read.All",
        "inventory: read conditional access policies, their exclusions and security defaults; without it, MFA exclusions go unseen",
    ),
    (
        "Application.Read.All",
        "inventory: read apps, their consent grants, permissions and credentials (Directory.Read.All also grants it)",
    ),
    (
        "RoleManagement.Read.Directory",
        "inventory: read who holds Global Administrator and the other roles (Directory.Read.All also grants it)",
    ),
    (
        "ActivityFeed.Read",
        "read the Office 365 Management Activity API",
    ),
];

/// What the pipeline uses an application role for (for consent and health pages).
pub fn role_purpose(role: &str) -> &'static str {
    ROLE_PURPOSES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, p)| *p)
        .unwrap_or("not used by the ingestion pipeline")
}

/// An app-only access token. `Debug` never shows the token itself.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub secret: SecretString,
    /// When it was fetched (by the injected clock).
    pub issued_at: DateTime<Utc>,
    /// `issued_at + expires_in`.
    pub expires_at: DateTime<Utc>,
    /// The `roles` claim: application permissions granted in the tenant.
    pub roles: Vec<String>,
    /// The `tid` claim: the tenant GUID the token was issued in.
    pub tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    tid: Option<String>,
}

impl AccessToken {
    /// Builds a token from the endpoint's `access_token` and `expires_in`, fetched at `now`.
    /// Fails with [`AuthError::ConsentRevoked`] if the token grants no application role.
    pub fn from_jwt(
        raw: SecretString,
        expires_in_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<Self, AuthError> {
        let claims = decode_claims(raw.expose())?;
        let roles = claims.roles.unwrap_or_default();
        if roles.is_empty() {
            return Err(AuthError::ConsentRevoked);
        }
        let lifetime = TimeDelta::try_seconds(i64::try_from(expires_in_secs).unwrap_or(i64::MAX))
            .unwrap_or(TimeDelta::MAX);
        Ok(Self {
            secret: raw,
            issued_at: now,
            expires_at: now
                .checked_add_signed(lifetime)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            roles,
            tenant_id: claims.tid,
        })
    }

    /// The roles of `required` that this token does not carry.
    pub fn missing_roles(&self, required: &[&str]) -> Vec<String> {
        required
            .iter()
            .filter(|r| !self.has_role(r))
            .map(|r| r.to_string())
            .collect()
    }

    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// When the token should be replaced: `margin` before expiry, but never earlier than half
    /// its lifetime (so a short-lived token is not refetched on every call).
    pub fn renew_at(&self, margin: TimeDelta) -> DateTime<Utc> {
        let half = (self.expires_at - self.issued_at) / 2;
        self.expires_at - margin.min(half).max(TimeDelta::zero())
    }

    /// Whether the token can still be handed out at `now`.
    pub fn is_fresh(&self, now: DateTime<Utc>, margin: TimeDelta) -> bool {
        now < self.renew_at(margin)
    }

    /// An `Authorization: Bearer …` value, marked sensitive so HTTP stacks do not log it.
    pub fn authorization_header(&self) -> Result<HeaderValue, AuthError> {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", self.secret.expose())).map_err(|_| {
                AuthError::MalformedToken {
                    reason: "the token contains characters not allowed in an HTTP header",
                }
            })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Decodes the payload of a compact JWS without verifying it.
fn decode_claims(jwt: &str) -> Result<Claims, AuthError> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken {
            reason: "not a three-part signed JWT",
        });
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| AuthError::MalformedToken {
            reason: "payload is not base64url",
        })?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken {
        reason: "payload is not a JSON claims object with string roles",
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// An unsigned-looking JWT with the given claims (the signature is never checked).
    pub(crate) fn fake_jwt(claims: &serde_json::Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{p}.c2lnbmF0dXJlLVNFQ1JFVA")
    }

    #[test]
    fn roles_and_tid_are_read() {
        let jwt = fake_jwt(&serde_json::json!({
            "aud": "https://graph.microsoft.com",
            "tid": "72f988bf-0000-0000-0000-000000000000",
            "roles": ["AuditLog.Read.All", "User.Read.All"],
        }));
        let t = AccessToken::from_jwt(SecretString::new(jwt.clone()), 4500, t0()).expect("token");
        assert_eq!(t.roles, vec!["AuditLog.Read.All", "User.Read.All"]);
        assert_eq!(
            t.tenant_id.as_deref(),
            Some("72f988bf-0000-0000-0000-000000000000")
        );
        assert_eq!(t.expires_at, t0() + TimeDelta::seconds(4500));
        assert_eq!(
            t.missing_roles(REQUIRED_GRAPH_ROLES),
            vec!["Directory.Read.All"]
        );
        assert!(t.missing_roles(&["User.Read.All"]).is_empty());
        let shown = format!("{t:?}");
        assert!(!shown.contains(&jwt), "{shown}");
        assert!(!shown.contains("c2lnbmF0dXJlLVNFQ1JFVA"));
        let h = t.authorization_header().expect("header");
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("c2lnbmF0dXJlLVNFQ1JFVA"));
    }

    #[test]
    fn no_roles_means_consent_revoked() {
        for claims in [
            serde_json::json!({"tid": "t", "aud": "https://graph.microsoft.com"}),
            serde_json::json!({"tid": "t", "roles": []}),
        ] {
            let jwt = fake_jwt(&claims);
            let e = AccessToken::from_jwt(SecretString::new(jwt), 3600, t0()).expect_err("revoked");
            assert!(matches!(e, AuthError::ConsentRevoked));
            assert_eq!(e.kind().as_str(), "consent_revoked");
            assert_eq!(e.remedy(), "the customer's admin must grant consent again");
        }
    }

    #[test]
    fn malformed_tokens_fail_without_echoing_the_token() {
        let not_json = format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode("SECRET-PAYLOAD-not-json")
        );
        let wrong_roles = fake_jwt(&serde_json::json!({"roles": "SECRET-ROLE-STRING"}));
        for raw in [
            "SECRET-opaque-token".to_string(),
            "a.b.c.d.SECRET-jwe".to_string(),
            "a.SECRET!!notbase64.c".to_string(),
            not_json,
            wrong_roles,
        ] {
            let e = AccessToken::from_jwt(SecretString::new(raw.clone()), 3600, t0())
                .expect_err("malformed");
            assert_eq!(e.kind().as_str(), "malformed_token", "{raw}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
    }

    #[test]
    fn renewal_respects_margin_and_short_lifetimes() {
        let jwt = fake_jwt(&serde_json::json!({"roles": ["AuditLog.Read.All"]}));
        let margin = TimeDelta::minutes(5);
        let t = AccessToken::from_jwt(SecretString::new(jwt.clone()), 3900, t0()).expect("token");
        assert_eq!(t.renew_at(margin), t0() + TimeDelta::minutes(60));
        assert!(t.is_fresh(t0() + TimeDelta::minutes(59), margin));
        assert!(!t.is_fresh(t0() + TimeDelta::minutes(60), margin));
        // A two-minute token renews at half its life, not before it is issued.
        let short = AccessToken::from_jwt(SecretString::new(jwt), 120, t0()).expect("token");
        assert_eq!(short.renew_at(margin), t0() + TimeDelta::minutes(1));
    }

    #[test]
    fn role_table_covers_required_roles() {
        for r in REQUIRED_GRAPH_ROLES {
            assert_ne!(role_purpose(r), role_purpose("Unknown.Role"));
        }
        assert!(role_purpose("MailboxSettings.Read").contains("inbox rules"));
        assert!(role_purpose("Policy.Read.All").contains("conditional access"));
        assert_eq!(
            role_purpose("ActivityFeed.Read"),
            "read the Office 365 Management Activity API"
        );
    }
}
