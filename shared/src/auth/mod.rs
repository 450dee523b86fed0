//! App-only tokens for Microsoft Graph and the Management Activity API, per tenant and per
//! national cloud, with the OAuth 2.0 client-credentials grant.
//!
//! * [`AppCredential`]: a client ID with a client secret or a certificate and RSA key.
//! * [`TokenClient`]: fetches tokens from the tenant's cloud's token endpoint and caches them
//!   until shortly before expiry.
//! * [`AccessToken`]: the token, its expiry and its application `roles`; a token without roles
//!   (consent revoked) is refused as [`AuthError::ConsentRevoked`].
//! * [`AuthError`]: every failure, classified from Microsoft's `error` and `error_codes`, with
//!   a retry verdict, a stable kind and an operator remedy.
//! * [`TokenSource`]: what the Graph client depends on; [`StaticAppTokens`] implements it with
//!   one app registration for every tenant of a cloud.
//!
//! Secrets, assertions and tokens are wrapped in [`SecretString`], which never prints its
//! value; no error or log line carries one, nor a response body.

mod assertion;
mod client;
mod credential;
mod credentials;
mod error;
mod secret;
mod token;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::cloud::Cloud;

pub use crate::cloud::Api;
pub use assertion::{ASSERTION_LIFETIME, CLIENT_ASSERTION_TYPE, client_assertion};
pub use client::{DEFAULT_RENEW_MARGIN, TokenClient};
pub use credential::{AppCredential, CertificateCredential, ClientCredential};
pub use credentials::{CredentialSource, SecretError, StaticCredentials};
pub use error::AuthError;
pub use secret::SecretString;
pub use token::{AccessToken, REQUIRED_GRAPH_ROLES, ROLE_PURPOSES, role_purpose};

/// Where the API client gets app-only tokens.
///
/// Implementations cache tokens and renew them before expiry, so callers may ask before every
/// request. The returned token is guaranteed to carry at least one application role; compare
/// [`AccessToken::missing_roles`] with [`REQUIRED_GRAPH_ROLES`] to detect partial consent.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for `api` in `tenant` (GUID or verified domain) on `cloud`; a fetch gives up at
    /// `deadline`.
    async fn token(
        &self,
        cloud: Cloud,
        tenant: &str,
        api: Api,
        deadline: DateTime<Utc>,
    ) -> Result<AccessToken, AuthError>;

    /// Forgets cached tokens for `tenant` on `cloud`. Call when Graph answers 401 to a token
    /// from this source; the next [`TokenSource::token`] fetches a new one.
    fn invalidate(&self, cloud: Cloud, tenant: &str);

    /// The client id of the app registration that serves `tenant`, when known: request
    /// budgets are per app registration.
    fn app_id(&self, _tenant: &str) -> Option<String> {
        None
    }
}

/// One app registration used for every tenant it serves (the multi-tenant app of a cloud
/// group).
#[derive(Debug)]
pub struct StaticAppTokens {
    /// The caching token client.
    pub client: TokenClient,
    /// The app registration.
    pub app: AppCredential,
}

impl StaticAppTokens {
    /// A token source for `app` through `client`.
    pub fn new(client: TokenClient, app: AppCredential) -> Self {
        Self { client, app }
    }
}

#[async_trait]
impl TokenSource for StaticAppTokens {
    async fn token(
        &self,
        cloud: Cloud,
        tenant: &str,
        api: Api,
        deadline: DateTime<Utc>,
    ) -> Result<AccessToken, AuthError> {
        self.client
            .token_before(cloud, tenant, &self.app, api, Some(deadline))
            .await
    }

    fn invalidate(&self, cloud: Cloud, tenant: &str) {
        self.client.invalidate(cloud, tenant, &self.app.client_id);
    }

    fn app_id(&self, _tenant: &str) -> Option<String> {
        Some(self.app.client_id.to_ascii_lowercase())
    }
}

/// App registrations chosen per tenant: each tenant names the app (credential reference) that
/// serves it. Used where one deployment holds several app registrations (one per cloud group,
/// or per MSP).
#[derive(Debug)]
pub struct PerTenantTokens {
    client: TokenClient,
    apps: std::sync::RwLock<std::collections::HashMap<String, AppCredential>>,
}

impl PerTenantTokens {
    /// An empty source using `client`.
    pub fn new(client: TokenClient) -> Self {
        Self {
            client,
            apps: Default::default(),
        }
    }

    /// Sets the app that serves `tenant`.
    pub fn set(&self, tenant: &str, app: AppCredential) {
        if let Ok(mut m) = self.apps.write() {
            m.insert(tenant.to_ascii_lowercase(), app);
        }
    }

    fn app(&self, tenant: &str) -> Option<AppCredential> {
        self.apps
            .read()
            .ok()
            .and_then(|m| m.get(&tenant.to_ascii_lowercase()).cloned())
    }
}

#[async_trait]
impl TokenSource for PerTenantTokens {
    async fn token(
        &self,
        cloud: Cloud,
        tenant: &str,
        api: Api,
        deadline: DateTime<Utc>,
    ) -> Result<AccessToken, AuthError> {
        let app = self.app(tenant).ok_or_else(|| AuthError::BadCredential {
            reason: "no app credential is configured for this tenant",
        })?;
        self.client
            .token_before(cloud, tenant, &app, api, Some(deadline))
            .await
    }

    fn invalidate(&self, cloud: Cloud, tenant: &str) {
        if let Some(app) = self.app(tenant) {
            self.client.invalidate(cloud, tenant, &app.client_id);
        }
    }

    fn app_id(&self, tenant: &str) -> Option<String> {
        self.app(tenant).map(|a| a.client_id.to_ascii_lowercase())
    }
}

/// Base64url without padding (JWS encoding).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::client::tests::{serve, token_body};
    use crate::auth::token::tests::t0;
    use crate::clock::ManualClock;
    use crate::http::{EndpointOverride, Transport};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn static_app_tokens_serve_graph_tokens_and_invalidate() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 3600))
        }))
        .await;
        let transport = Transport::new(
            Duration::from_secs(5),
            Some(EndpointOverride::parse(&base).expect("override")),
        )
        .expect("transport");
        let clock = ManualClock::new(t0());
        let app = AppCredential::with_secret("app-1", SecretString::new("SECRET-xyz"));
        let tokens = StaticAppTokens::new(TokenClient::new(transport, Arc::new(clock)), app);
        assert!(!format!("{tokens:?}").contains("SECRET-xyz"));
        let source: &dyn TokenSource = &tokens;
        let t = source
            .token(
                Cloud::Dod,
                "contoso.us",
                Api::Graph,
                t0() + chrono::TimeDelta::minutes(5),
            )
            .await
            .expect("token");
        source
            .token(
                Cloud::Dod,
                "contoso.us",
                Api::Graph,
                t0() + chrono::TimeDelta::minutes(5),
            )
            .await
            .expect("cached");
        assert_eq!(seen.lock().expect("seen").len(), 1);
        source.invalidate(Cloud::Dod, "contoso.us");
        source
            .token(
                Cloud::Dod,
                "contoso.us",
                Api::Graph,
                t0() + chrono::TimeDelta::minutes(5),
            )
            .await
            .expect("refetched");
        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].host, "login.microsoftonline.us");
        assert_eq!(
            seen[0].field("scope"),
            Some("https://dod-graph.microsoft.us/.default")
        );
        assert_eq!(
            t.missing_roles(REQUIRED_GRAPH_ROLES),
            vec!["Directory.Read.All"]
        );
    }
}
