//! Where app credentials come from: the [`CredentialSource`] trait, its errors, and an
//! in-memory implementation for configurations that hold their credentials (the embedded
//! runner, tests). The AWS implementation reads Secrets Manager (`crate::aws::secrets`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{AppCredential, AuthError};
use crate::health::FailureKind;

/// Why a credential could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The app reference cannot be part of a secret name.
    #[error(
        "app reference {app_ref:?} is not a valid secret name part (letters, digits, _+=.@- only)"
    )]
    BadReference {
        /// The reference.
        app_ref: String,
    },
    /// No such secret.
    #[error("secret {name} does not exist")]
    NotFound {
        /// Secret name.
        name: String,
    },
    /// The function's role may not read the secret.
    #[error("access to secret {name} was denied")]
    AccessDenied {
        /// Secret name.
        name: String,
    },
    /// The secret is not in the expected JSON shape.
    #[error("secret {name} is malformed: {reason}")]
    Malformed {
        /// Secret name.
        name: String,
        /// A fixed description, never quoting the value.
        reason: &'static str,
    },
    /// The certificate or key in the secret is unusable.
    #[error("secret {name} holds an unusable certificate credential: {source}")]
    Credential {
        /// Secret name.
        name: String,
        /// The check that failed (fixed messages only).
        #[source]
        source: AuthError,
    },
    /// The secret store failed (network, throttling, service error). Retryable.
    #[error("secret store failed for {name}: {detail}")]
    Backend {
        /// Secret name.
        name: String,
        /// Operation and error code.
        detail: String,
    },
}

impl SecretError {
    /// Whether a later attempt may succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretError::Backend { .. })
    }

    /// The failure kind for health and metrics.
    pub fn kind(&self) -> FailureKind {
        match self {
            SecretError::BadReference { .. } => FailureKind::SecretBadReference,
            SecretError::NotFound { .. } => FailureKind::SecretNotFound,
            SecretError::AccessDenied { .. } => FailureKind::SecretAccessDenied,
            SecretError::Malformed { .. } => FailureKind::SecretMalformed,
            SecretError::Credential { .. } => FailureKind::SecretBadCertificate,
            SecretError::Backend { .. } => FailureKind::SecretBackend,
        }
    }
}

/// Where the poller gets the credential of an app registration.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credential named by `app_ref`.
    async fn app_credential(&self, app_ref: &str) -> Result<AppCredential, SecretError>;
}

/// Credentials held in memory, by app reference.
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials {
    apps: BTreeMap<String, AppCredential>,
}

impl StaticCredentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the credential of `app_ref`.
    pub fn insert(&mut self, app_ref: impl Into<String>, app: AppCredential) {
        self.apps.insert(app_ref.into(), app);
    }

    /// Whether `app_ref` is known.
    pub fn contains(&self, app_ref: &str) -> bool {
        self.apps.contains_key(app_ref)
    }
}

#[async_trait]
impl CredentialSource for StaticCredentials {
    async fn app_credential(&self, app_ref: &str) -> Result<AppCredential, SecretError> {
        self.apps
            .get(app_ref)
            .cloned()
            .ok_or_else(|| SecretError::NotFound {
                name: app_ref.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SecretString;

    #[tokio::test]
    async fn static_credentials_serve_what_they_hold() {
        let mut c = StaticCredentials::new();
        c.insert(
            "commercial",
            AppCredential::with_secret("app", SecretString::new("s")),
        );
        assert!(c.app_credential("commercial").await.is_ok());
        let e = c.app_credential("usgov").await.err();
        assert_eq!(e.map(|e| e.kind()), Some(FailureKind::SecretNotFound));
    }
}
