//! App credentials from Secrets Manager.
//!
//! A tenant's `app_ref` names an app registration; its secret is
//! `{prefix}/{cloud group}/{app_ref}` (for example `itdr/usgov/default`), so each poller's IAM
//! policy can be scoped to its own group's prefix. The secret string is JSON, either
//! `{"client_id": "...", "client_secret": "..."}` or
//! `{"client_id": "...", "certificate_pem": "...", "private_key_pem": "..."}`.
//!
//! Credentials are cached per secret name for a TTL (measured on the injected clock), so a
//! warm Lambda container reads each secret once per TTL; a rotated secret is picked up after at
//! most one TTL. If a refresh fails for a retryable reason, the expired entry keeps being served
//! and the failure is logged as a warning.
//!
//! The secret value goes from the SDK straight into [`SecretString`] or a
//! [`CertificateCredential`]; errors carry the secret's name and a fixed reason, never a value
//! or a parser message (which could quote one).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};

use super::{describe, error_code};
use crate::auth::{
    AppCredential, CertificateCredential, CredentialSource, SecretError, SecretString,
};
use crate::clock::{SharedClock, to_delta};
use crate::cloud::CloudGroup;

struct Cached {
    credential: AppCredential,
    fetched_at: DateTime<Utc>,
}

/// [`CredentialSource`] on Secrets Manager with a TTL cache.
pub struct SecretsManagerSource {
    client: Client,
    prefix: String,
    group: CloudGroup,
    ttl: Duration,
    clock: SharedClock,
    cache: Mutex<HashMap<String, Cached>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SecretsManagerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerSource")
            .field("prefix", &self.prefix)
            .field("group", &self.group)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerSource {
    /// A source reading `{prefix}/{group}/{app_ref}`, caching each credential for `ttl`.
    pub fn new(
        client: Client,
        prefix: impl Into<String>,
        group: CloudGroup,
        ttl: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            client,
            prefix: prefix.into().trim_end_matches('/').to_string(),
            group,
            ttl,
            clock,
            cache: Mutex::new(HashMap::new()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The secret name of `app_ref`.
    pub fn secret_name(&self, app_ref: &str) -> Result<String, SecretError> {
        let ok = !app_ref.is_empty()
            && app_ref.len() <= 128
            && app_ref
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=.@-".contains(c));
        if !ok {
            return Err(SecretError::BadReference {
                app_ref: app_ref.chars().take(64).collect(),
            });
        }
        Ok(format!("{}/{}/{app_ref}", self.prefix, self.group.as_str()))
    }

    /// `GetSecretValue` calls made so far (for tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, name: &str, fresh_only: bool) -> Option<AppCredential> {
        let now = self.clock.now();
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(name).and_then(|c| {
            (!fresh_only || now < c.fetched_at + to_delta(self.ttl)).then(|| c.credential.clone())
        })
    }

    async fn fetch(&self, name: &str) -> Result<AppCredential, SecretError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some("ResourceNotFoundException") => SecretError::NotFound {
                    name: name.to_string(),
                },
                Some("AccessDeniedException") => SecretError::AccessDenied {
                    name: name.to_string(),
                },
                Some("DecryptionFailure") => SecretError::AccessDenied {
                    name: name.to_string(),
                },
                _ => SecretError::Backend {
                    name: name.to_string(),
                    detail: describe("GetSecretValue", &e),
                },
            })?;
        let raw = SecretString::new(out.secret_string().unwrap_or_default());
        drop(out);
        parse_secret(name, &raw)
    }
}

/// Parses the secret JSON into a credential. Errors never quote the input.
pub fn parse_secret(name: &str, raw: &SecretString) -> Result<AppCredential, SecretError> {
    let malformed = |reason| SecretError::Malformed {
        name: name.to_string(),
        reason,
    };
    if raw.is_empty() {
        return Err(malformed("the secret has no string value"));
    }
    let v: serde_json::Value = serde_json::from_str(raw.expose())
        .map_err(|_| malformed("the secret string is not JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("the secret string is not a JSON object"))?;
    let text = |key: &str| -> Result<Option<SecretString>, SecretError> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                Ok(Some(SecretString::new(s.clone())))
            }
            Some(_) => Err(malformed("a field is empty or not a string")),
        }
    };
    const KNOWN: [&str; 4] = [
        "client_id",
        "client_secret",
        "certificate_pem",
        "private_key_pem",
    ];
    if obj.keys().any(|k| !KNOWN.contains(&k.as_str())) {
        return Err(malformed(
            "unexpected field (expected client_id with client_secret, or client_id with certificate_pem and private_key_pem)",
        ));
    }
    let client_id = text("client_id")?
        .ok_or_else(|| malformed("client_id is missing"))?
        .expose()
        .to_string();
    match (
        text("client_secret")?,
        text("certificate_pem")?,
        text("private_key_pem")?,
    ) {
        (Some(secret), None, None) => Ok(AppCredential::with_secret(client_id, secret)),
        (None, Some(cert), Some(key)) => {
            let c =
                CertificateCredential::from_pem(cert.expose().as_bytes(), key.expose().as_bytes())
                    .map_err(|source| SecretError::Credential {
                        name: name.to_string(),
                        source,
                    })?;
            Ok(AppCredential::with_certificate(client_id, c))
        }
        (None, None, None) => Err(malformed(
            "no credential: client_secret, or certificate_pem and private_key_pem, is required",
        )),
        _ => Err(malformed(
            "ambiguous credential: give client_secret alone, or certificate_pem with private_key_pem",
        )),
    }
}

#[async_trait]
impl CredentialSource for SecretsManagerSource {
    async fn app_credential(&self, app_ref: &str) -> Result<AppCredential, SecretError> {
        let name = self.secret_name(app_ref)?;
        if let Some(c) = self.cached(&name, true) {
            return Ok(c);
        }
        match self.fetch(&name).await.map(|c| c.for_group(self.group)) {
            Ok(c) => {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(
                    name,
                    Cached {
                        credential: c.clone(),
                        fetched_at: self.clock.now(),
                    },
                );
                Ok(c)
            }
            Err(e) if e.is_retryable() => match self.cached(&name, false) {
                Some(stale) => {
                    tracing::warn!(secret = %name, error = %e, "secret refresh failed; serving the cached credential");
                    Ok(stale)
                }
                None => Err(e),
            },
            Err(e) => {
                // A deleted or broken secret must not keep being served.
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.remove(&name);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ClientCredential;

    #[test]
    fn secret_shapes() {
        let ok = parse_secret(
            "n",
            &SecretString::new(r#"{"client_id":"app","client_secret":"VALUE-123"}"#),
        );
        assert!(matches!(
            ok.map(|c| c.credential),
            Ok(ClientCredential::Secret(_))
        ));
        for bad in [
            "",
            "VALUE-123 not json",
            r#"["VALUE-123"]"#,
            r#"{"client_id":"app"}"#,
            r#"{"client_id":"app","client_secret":"VALUE-123","extra":"VALUE-123"}"#,
            r#"{"client_id":"app","client_secret":"VALUE-123","certificate_pem":"VALUE-123"}"#,
            r#"{"client_id":"app","certificate_pem":"VALUE-123","private_key_pem":"VALUE-123"}"#,
            r#"{"client_id":"app","client_secret":12345}"#,
        ] {
            let e = parse_secret("itdr/commercial/x", &SecretString::new(bad));
            let Err(e) = e else { panic!("accepted {bad}") };
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("VALUE-123"), "{shown}");
            assert!(!shown.contains("12345"), "{shown}");
            assert!(!e.is_retryable());
        }
    }
}
