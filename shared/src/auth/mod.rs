//! TEMPORARY local stub (not committed) matching the spec'd API, replaced by the auth branch.
use crate::cloud::Cloud;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
#[derive(Clone)]
pub struct SecretString(String);
impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: SecretString,
    pub expires_at: DateTime<Utc>,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("consent revoked")]
    ConsentRevoked,
    #[error("transient")]
    Transient {
        status: Option<u16>,
        retry_after: Option<std::time::Duration>,
    },
}
impl AuthError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::Transient { .. })
    }
    pub fn kind(&self) -> &'static str {
        "auth"
    }
}
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn graph_token(&self, cloud: Cloud, tenant: &str) -> Result<AccessToken, AuthError>;
    fn invalidate(&self, cloud: Cloud, tenant: &str);
}
