//! The client-credentials token client with its per-tenant cache.
//!
//! [`TokenClient::token`] posts to the tenant's v2.0 token endpoint on the tenant's cloud,
//! authenticating with a client secret or a signed certificate assertion, and caches the
//! result per (tenant, client ID, cloud, scope). A cached token is handed out until
//! `expires_at - renew_margin` (`expires_at` comes from `expires_in`, measured with the
//! injected clock from the moment the request was sent; lifetimes vary, so 3600 s is never
//! assumed). Concurrent callers for the same key wait for one fetch instead of each fetching.
//!
//! If a renewal fails with a retryable error while the previous token is still valid, that
//! token keeps being served; a permanent failure (consent revoked, app removed, …) drops it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::clock::{SharedClock, to_delta};
use crate::cloud::Cloud;
use crate::http::Transport;

use super::assertion::{CLIENT_ASSERTION_TYPE, client_assertion};
use super::credential::{AppCredential, ClientCredential};
use super::error::{AuthError, ErrorBody, classify_failure, decode_error, sanitize_id};
use super::secret::SecretString;
use super::token::AccessToken;
use crate::cloud::Api;

/// Default time before expiry at which a cached token is replaced.
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A cached token past its renewal time is still served after a retryable renewal failure,
/// as long as it is at least this far from expiry.
const STALE_SERVE_MARGIN: TimeDelta = TimeDelta::seconds(30);

/// Cache key: tenant (lower-cased), client ID, cloud, scope.
type CacheKey = (String, String, Cloud, Api);

/// Fetches and caches app-only tokens for many tenants.
pub struct TokenClient {
    transport: Transport,
    clock: SharedClock,
    cache: Mutex<HashMap<CacheKey, AccessToken>>,
    /// One async gate per key, so that concurrent callers share one fetch.
    gates: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
    renew_margin: Duration,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("cached_tokens", &lock(&self.cache).len())
            .field("renew_margin", &self.renew_margin)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token_type: String,
    expires_in: ExpiresIn,
    access_token: String,
}

/// `expires_in` is a number on the v2.0 endpoint; accept the v1 string form too.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Seconds(u64),
    Text(String),
}

impl TokenClient {
    /// A client using `transport` and `clock`, renewing tokens [`DEFAULT_RENEW_MARGIN`]
    /// before expiry.
    pub fn new(transport: Transport, clock: SharedClock) -> Self {
        Self {
            transport,
            clock,
            cache: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            renew_margin: DEFAULT_RENEW_MARGIN,
        }
    }

    /// Sets how long before expiry a cached token is replaced.
    pub fn with_renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = margin;
        self
    }

    /// The renewal margin in use.
    pub fn renew_margin(&self) -> Duration {
        self.renew_margin
    }

    /// A token for `app` in `tenant` (GUID or verified domain) on `cloud`, for `scope`: from
    /// the cache while it is fresh, otherwise fetched within the transport's timeout.
    pub async fn token(
        &self,
        cloud: Cloud,
        tenant: &str,
        app: &AppCredential,
        scope: Api,
    ) -> Result<AccessToken, AuthError> {
        self.token_before(cloud, tenant, app, scope, None).await
    }

    /// [`TokenClient::token`], with a fetch that gives up at `deadline` (the request times out
    /// after the lesser of the transport's timeout and the time left).
    pub async fn token_before(
        &self,
        cloud: Cloud,
        tenant: &str,
        app: &AppCredential,
        scope: Api,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<AccessToken, AuthError> {
        if let Some(app_group) = app.group
            && app_group != cloud.group()
        {
            return Err(AuthError::CloudMismatch { app_group, cloud });
        }
        validate_tenant(tenant)?;
        let key: CacheKey = (
            tenant.to_ascii_lowercase(),
            app.client_id.clone(),
            cloud,
            scope,
        );
        if let Some(t) = self.fresh(&key) {
            return Ok(t);
        }
        let gate = {
            let mut gates = lock(&self.gates);
            gates.entry(key.clone()).or_default().clone()
        };
        let _turn = gate.lock().await;
        // Another caller may have fetched while we waited.
        if let Some(t) = self.fresh(&key) {
            return Ok(t);
        }
        let time_left = deadline.map(|d| (d - self.clock.now()).to_std().unwrap_or_default());
        match self.fetch(cloud, tenant, app, scope, time_left).await {
            Ok(t) => {
                lock(&self.cache).insert(key, t.clone());
                Ok(t)
            }
            Err(e) if e.is_retryable() => {
                let now = self.clock.now();
                let stale = lock(&self.cache)
                    .get(&key)
                    .filter(|t| now + STALE_SERVE_MARGIN < t.expires_at)
                    .cloned();
                match stale {
                    Some(t) => {
                        tracing::warn!(
                            cloud = %cloud, tenant, client_id = %app.client_id, scope = %scope,
                            kind = e.kind().as_str(), expires_at = %t.expires_at,
                            "token renewal failed; serving the previous token until it expires"
                        );
                        Ok(t)
                    }
                    None => Err(e),
                }
            }
            Err(e) => {
                lock(&self.cache).remove(&key);
                Err(e)
            }
        }
    }

    /// Drops every cached token of `client_id` in `tenant` on `cloud` (call after Graph
    /// answers 401 to a token that looked valid).
    pub fn invalidate(&self, cloud: Cloud, tenant: &str, client_id: &str) {
        let tenant = tenant.to_ascii_lowercase();
        lock(&self.cache)
            .retain(|(t, c, cl, _), _| !(*t == tenant && c == client_id && *cl == cloud));
    }

    fn fresh(&self, key: &CacheKey) -> Option<AccessToken> {
        let now = self.clock.now();
        let margin = to_delta(self.renew_margin);
        lock(&self.cache)
            .get(key)
            .filter(|t| t.is_fresh(now, margin))
            .cloned()
    }

    async fn fetch(
        &self,
        cloud: Cloud,
        tenant: &str,
        app: &AppCredential,
        scope: Api,
        time_left: Option<Duration>,
    ) -> Result<AccessToken, AuthError> {
        let scope_value = scope
            .scope(cloud)
            .ok_or(AuthError::ScopeUnavailable { cloud, scope })?;
        let token_url = cloud.token_url(tenant);
        let url = Url::parse(&token_url).map_err(|_| invalid_tenant(tenant))?;
        let sent_at = self.clock.now();
        let assertion: SecretString;
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", app.client_id.as_str()),
            ("scope", scope_value.as_str()),
            ("grant_type", "client_credentials"),
        ];
        match &app.credential {
            ClientCredential::Secret(secret) => form.push(("client_secret", secret.expose())),
            ClientCredential::Certificate(cert) => {
                assertion = client_assertion(cert, &app.client_id, &token_url, sent_at)?;
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let resp = self
            .transport
            .send_within(Method::POST, &url, headers, Some(&form), time_left)
            .await
            .inspect_err(|e| {
                tracing::warn!(cloud = %cloud, tenant, client_id = %app.client_id, scope = %scope,
                    error = %e, "token request not completed");
            })?;

        if resp.status != 200 {
            let e = classify_failure(
                resp.status,
                resp.header("retry-after"),
                &resp.body,
                self.clock.now(),
            );
            let ids = serde_json::from_slice::<ErrorBody>(&resp.body).unwrap_or_default();
            tracing::warn!(
                cloud = %cloud, tenant, client_id = %app.client_id, scope = %scope,
                status = resp.status, kind = e.kind().as_str(), aadsts = e.aadsts_code(),
                trace_id = sanitize_id(ids.trace_id.as_deref()),
                correlation_id = sanitize_id(ids.correlation_id.as_deref()),
                "token request refused"
            );
            return Err(e);
        }

        let parsed: TokenResponse = serde_json::from_slice(&resp.body)
            .map_err(|e| decode_error(resp.status, &resp.body, &e))?;
        if !parsed.token_type.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MalformedToken {
                reason: "token_type is not Bearer",
            });
        }
        let expires_in = match parsed.expires_in {
            ExpiresIn::Seconds(s) => s,
            ExpiresIn::Text(s) => s.trim().parse().map_err(|_| AuthError::MalformedToken {
                reason: "expires_in is not a number of seconds",
            })?,
        };
        let token = AccessToken::from_jwt(
            SecretString::new(parsed.access_token),
            expires_in,
            sent_at,
        )
        .inspect_err(|e| {
            tracing::warn!(cloud = %cloud, tenant, client_id = %app.client_id, scope = %scope,
                    kind = e.kind().as_str(), "token issued but unusable");
        })?;
        tracing::debug!(
            cloud = %cloud, tenant, client_id = %app.client_id, scope = %scope,
            expires_in, roles = token.roles.len(), "token fetched"
        );
        Ok(token)
    }
}

/// Accepts a tenant GUID or domain name: ASCII letters, digits, `.`, `-`, at most 253 bytes.
/// Anything else could change the token URL's path.
fn validate_tenant(tenant: &str) -> Result<(), AuthError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 253
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid_tenant(tenant))
    }
}

fn invalid_tenant(tenant: &str) -> AuthError {
    AuthError::InvalidTenant {
        tenant: tenant
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent across a panic in another holder: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::credential::tests::test_cert;
    use crate::auth::token::tests::{fake_jwt, t0};
    use crate::clock::ManualClock;
    use crate::http::EndpointOverride;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A request seen by the test server.
    #[derive(Debug, Clone)]
    pub(crate) struct Seen {
        pub method: String,
        pub path: String,
        pub host: String,
        pub content_type: String,
        pub form: Vec<(String, String)>,
    }

    impl Seen {
        pub fn field(&self, name: &str) -> Option<&str> {
            self.form
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    type Responder = Arc<dyn Fn(usize) -> (u16, String) + Send + Sync>;

    /// A one-route HTTP/1.1 server on 127.0.0.1 that answers each connection with
    /// `respond(request_index)` and records the requests.
    pub(crate) async fn serve(respond: Responder) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let header_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p + 4);
                    }
                };
                let Some(header_end) = header_end else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or_default().to_string();
                let mut headers = HashMap::new();
                for l in lines {
                    if let Some((k, v)) = l.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < header_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = &buf[header_end..(header_end + len).min(buf.len())];
                let mut parts = request_line.split(' ');
                let seen = Seen {
                    method: parts.next().unwrap_or_default().to_string(),
                    path: parts.next().unwrap_or_default().to_string(),
                    host: headers.get("host").cloned().unwrap_or_default(),
                    content_type: headers.get("content-type").cloned().unwrap_or_default(),
                    form: url::form_urlencoded::parse(body).into_owned().collect(),
                };
                let index = {
                    let mut l = log.lock().expect("log");
                    l.push(seen);
                    l.len() - 1
                };
                let (status, body) = respond(index);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 7\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (format!("http://{addr}"), seen)
    }

    pub(crate) fn token_body(roles: &[&str], expires_in: u64) -> String {
        let jwt = fake_jwt(&serde_json::json!({
            "aud": "https://graph.microsoft.us",
            "tid": "0d3c0000-aaaa-bbbb-cccc-000000000001",
            "roles": roles,
        }));
        serde_json::json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": jwt})
            .to_string()
    }

    fn client(base: &str, clock: &ManualClock) -> TokenClient {
        let o = EndpointOverride::parse(base).expect("override");
        let t = Transport::new(Duration::from_secs(5), Some(o)).expect("transport");
        TokenClient::new(t, Arc::new(clock.clone()))
    }

    fn secret_app() -> AppCredential {
        AppCredential::with_secret(
            "aaaaaaaa-0000-0000-0000-00000000c11e",
            SecretString::new("TOP~SECRET~value"),
        )
    }

    use crate::cloud::CloudGroup;

    const TENANT: &str = "contoso.onmicrosoft.us";

    #[tokio::test]
    async fn an_app_of_another_cloud_group_never_reaches_the_login_host() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 3600))
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let commercial = secret_app().for_group(CloudGroup::Commercial);
        let e = c
            .token(Cloud::GccHigh, TENANT, &commercial, Api::Graph)
            .await
            .expect_err("refused");
        assert!(matches!(e, AuthError::CloudMismatch { .. }), "{e:?}");
        assert!(!e.is_retryable());
        assert!(seen.lock().expect("seen").is_empty(), "nothing was sent");
        // The app of the tenant's own group is used as usual.
        let usgov = secret_app().for_group(CloudGroup::UsGov);
        assert!(
            c.token(Cloud::GccHigh, TENANT, &usgov, Api::Graph)
                .await
                .is_ok()
        );
        assert_eq!(
            seen.lock().expect("seen")[0].host,
            "login.microsoftonline.us"
        );
    }

    #[tokio::test]
    async fn secret_request_reaches_the_clouds_login_host_with_the_documented_form() {
        let (base, seen) = serve(Arc::new(|_| {
            (
                200,
                token_body(&["AuditLog.Read.All", "Directory.Read.All"], 4321),
            )
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let t = c
            .token(Cloud::GccHigh, TENANT, &secret_app(), Api::Graph)
            .await
            .expect("token");
        assert!(
            t.missing_roles(crate::auth::REQUIRED_GRAPH_ROLES)
                .is_empty()
        );
        assert_eq!(t.expires_at, t0() + TimeDelta::seconds(4321));
        assert_eq!(
            t.tenant_id.as_deref(),
            Some("0d3c0000-aaaa-bbbb-cccc-000000000001")
        );

        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.host, "login.microsoftonline.us");
        assert_eq!(r.path, "/contoso.onmicrosoft.us/oauth2/v2.0/token");
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            r.field("client_id"),
            Some("aaaaaaaa-0000-0000-0000-00000000c11e")
        );
        assert_eq!(
            r.field("scope"),
            Some("https://graph.microsoft.us/.default")
        );
        assert_eq!(r.field("grant_type"), Some("client_credentials"));
        assert_eq!(r.field("client_secret"), Some("TOP~SECRET~value"));
        assert_eq!(r.field("client_assertion"), None);
    }

    #[tokio::test]
    async fn certificate_request_sends_a_signed_assertion_for_the_token_url() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 3600))
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let app = AppCredential::with_certificate("cert-app", test_cert());
        let tenant = "0d3c0000-aaaa-bbbb-cccc-000000000001";
        c.token(Cloud::China, tenant, &app, Api::Graph)
            .await
            .expect("token");
        let r = seen.lock().expect("seen")[0].clone();
        assert_eq!(r.host, "login.chinacloudapi.cn");
        assert_eq!(r.path, format!("/{tenant}/oauth2/v2.0/token"));
        assert_eq!(
            r.field("scope"),
            Some("https://microsoftgraph.chinacloudapi.cn/.default")
        );
        assert_eq!(r.field("client_secret"), None);
        assert_eq!(
            r.field("client_assertion_type"),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        let jwt = r.field("client_assertion").expect("assertion");
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).expect("payload"))
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(claims["aud"], Cloud::China.token_url(tenant));
        assert_eq!(claims["iss"], "cert-app");
        assert_eq!(claims["nbf"], t0().timestamp());
    }

    #[tokio::test]
    async fn cache_serves_until_the_renewal_margin_then_refetches() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 4500))
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let app = secret_app();
        let count = || seen.lock().expect("seen").len();
        c.token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect("1");
        assert_eq!(count(), 1);
        // 75 min lifetime, 5 min margin: served from cache up to 70 min.
        clock.advance(Duration::from_secs(69 * 60 + 59));
        c.token(Cloud::Global, "CONTOSO.com", &app, Api::Graph)
            .await
            .expect("2");
        assert_eq!(count(), 1);
        clock.advance(Duration::from_secs(1));
        c.token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect("3");
        assert_eq!(count(), 2);
        // Another cloud, tenant or scope is another key.
        c.token(Cloud::Gcc, "contoso.com", &app, Api::Graph)
            .await
            .expect("4");
        c.token(Cloud::Global, "fabrikam.com", &app, Api::Graph)
            .await
            .expect("5");
        c.token(Cloud::Global, "contoso.com", &app, Api::ManagementActivity)
            .await
            .expect("6");
        assert_eq!(count(), 5);
        let mgmt = seen.lock().expect("seen")[4].clone();
        assert_eq!(
            mgmt.field("scope"),
            Some("https://manage.office.com/.default")
        );
        // invalidate drops the tenant's tokens.
        c.invalidate(Cloud::Global, "Contoso.com", &app.client_id);
        c.token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect("7");
        assert_eq!(count(), 6);
        c.token(Cloud::Gcc, "contoso.com", &app, Api::Graph)
            .await
            .expect("8");
        assert_eq!(count(), 6, "other clouds untouched");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 3600))
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = Arc::new(client(&base, &clock));
        let app = secret_app();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = c.clone();
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                c.token(Cloud::Global, "contoso.com", &app, Api::Graph)
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("token");
        }
        assert_eq!(seen.lock().expect("seen").len(), 1);
    }

    #[tokio::test]
    async fn failures_are_classified_and_never_leak_secrets() {
        let responses: Vec<(u16, String)> = vec![
            (401, r#"{"error":"invalid_client","error_description":"AADSTS7000222: TOP~SECRET~value expired","error_codes":[7000222],"trace_id":"0b3e6c1a-1111-2222-3333-444455556666"}"#.into()),
            (400, r#"{"error":"unauthorized_client","error_codes":[700016]}"#.into()),
            (429, String::new()),
            (200, token_body(&[], 3600)),
            (200, "{\"token_type\":\"Bearer\",\n\"access_token\": TOP~SECRET~value}".into()),
        ];
        let responses = Arc::new(responses);
        let r2 = responses.clone();
        let (base, _) = serve(Arc::new(move |i| r2[i.min(r2.len() - 1)].clone())).await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let app = secret_app();
        let mut kinds = Vec::new();
        for _ in 0..responses.len() {
            let e = c
                .token(Cloud::Global, "contoso.com", &app, Api::Graph)
                .await
                .expect_err("fails");
            let shown = format!("{e} {e:?} {}", e.remedy());
            assert!(!shown.contains("TOP~SECRET"), "{shown}");
            kinds.push(e.kind().as_str());
            if let AuthError::Transient { retry_after, .. } = e {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
        }
        assert_eq!(
            kinds,
            [
                "secret_expired",
                "app_not_in_tenant",
                "transient",
                "consent_revoked",
                "decode"
            ]
        );
    }

    #[tokio::test]
    async fn stale_token_is_served_through_a_transient_renewal_failure_only() {
        let (base, seen) = serve(Arc::new(|i| match i {
            0 => (200, token_body(&["AuditLog.Read.All"], 3600)),
            1 => (503, String::new()),
            _ => (
                400,
                r#"{"error":"unauthorized_client","error_codes":[700016]}"#.into(),
            ),
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let app = secret_app();
        let first = c
            .token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect("1");
        clock.advance(Duration::from_secs(56 * 60));
        let again = c
            .token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect("stale");
        assert_eq!(again.expires_at, first.expires_at);
        let e = c
            .token(Cloud::Global, "contoso.com", &app, Api::Graph)
            .await
            .expect_err("gone");
        assert!(e.is_offboarding());
        assert_eq!(seen.lock().expect("seen").len(), 3);
    }

    #[tokio::test]
    async fn bad_tenants_and_missing_apis_are_refused_before_sending() {
        let (base, seen) = serve(Arc::new(|_| {
            (200, token_body(&["AuditLog.Read.All"], 3600))
        }))
        .await;
        let clock = ManualClock::new(t0());
        let c = client(&base, &clock);
        let app = secret_app();
        for bad in [
            "",
            "contoso.com/../x",
            "a?b",
            "a#b",
            "t%2F",
            ".hidden",
            "tenant name",
        ] {
            let e = c
                .token(Cloud::Global, bad, &app, Api::Graph)
                .await
                .expect_err(bad);
            assert_eq!(e.kind().as_str(), "invalid_tenant", "{bad}");
        }
        let e = c
            .token(Cloud::China, "contoso.cn", &app, Api::ManagementActivity)
            .await
            .expect_err("no management API in China");
        assert_eq!(e.kind().as_str(), "scope_unavailable");
        assert!(seen.lock().expect("seen").is_empty());
    }

    #[tokio::test]
    async fn unreachable_login_host_is_a_retryable_transport_error() {
        // Bind then drop a listener to get a closed loopback port.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        let clock = ManualClock::new(t0());
        let c = client(&format!("http://127.0.0.1:{port}"), &clock);
        let e = c
            .token(Cloud::Global, "contoso.com", &secret_app(), Api::Graph)
            .await
            .expect_err("closed port");
        assert_eq!(e.kind().as_str(), "transport");
        assert!(e.is_retryable());
        assert!(!format!("{e} {e:?}").contains("TOP~SECRET"));
    }
}
