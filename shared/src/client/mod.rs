//! The client of Microsoft's REST APIs (Graph, the Management Activity API): app-only calls
//! with paging, throttling, retries and deadlines. One driver for every source; each source
//! decodes its own records.
//!
//! - Every URL is built from the tenant's [`Cloud`] and the [`Api`] it calls. Paging links
//!   (`@odata.nextLink`, `NextPageUri`) and content URIs are followed only when their scheme is
//!   `https` and their host is that API's host in the tenant's own cloud; anything else is
//!   [`SourceError::ForeignLink`] and is never requested.
//! - Tokens come from the injected [`TokenSource`] for the API's scope in the tenant's cloud.
//! - 429 and 503 honour `Retry-After`; without it the client backs off exponentially with full
//!   jitter, first retry at least 5 s later ([`Backoff`]). The throttled tenant's [`Bucket`] in
//!   the [`Pacer`] is blocked for the same time, so concurrent calls for that tenant wait too.
//! - Every call has a deadline (the Lambda's remaining time). When a wait would pass it, the
//!   call returns [`SourceError::DeadlineExceeded`] instead of being killed mid-flight.
//! - All waiting goes through the injected clock.
//! - Every Management Activity API request carries `PublisherIdentifier` (our own tenant GUID,
//!   from the deployment's configuration): Microsoft rate-limits by it, and requests without it
//!   share one common quota. The client adds it to each request (paging links and content URIs
//!   included), and refuses the call with [`SourceError::PublisherIdMissing`] when it has none.

pub mod error;
pub mod pacing;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::auth::{AccessToken, TokenSource};
use crate::clock::SharedClock;
use crate::cloud::{Api, Cloud};
use crate::health::FailureKind;
use crate::http::{HttpResponse, Transport, TransportError};

pub use error::SourceError;
pub use pacing::{
    BACKGROUND_RESERVE, Backoff, Bucket, PaceError, Pacer, Priority, Rate, RequestBudget, Slot,
};

/// The tenant a call is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant GUID.
    pub id: String,
    /// The tenant's national cloud.
    pub cloud: Cloud,
}

/// One page of a Graph collection.
#[derive(Debug, Default)]
pub struct Page {
    /// The records on the page (possibly none, even when more pages follow).
    pub value: Vec<serde_json::Value>,
    /// The validated link to the next page.
    pub next_link: Option<Url>,
    /// A link to the next page that was refused (another host): the page's records are kept,
    /// the rest of the collection cannot be read safely.
    pub refused_link: Option<SourceError>,
    /// Size of the response body in bytes.
    pub bytes: usize,
    /// What getting the page cost.
    pub cost: CallCost,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// The error body Graph and the Management Activity API share: `{"error":{"code","message"}}`.
#[derive(Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) error: ErrorInner,
}

#[derive(Deserialize, Default)]
pub(crate) struct ErrorInner {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// Counters of what one client did (for summaries and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// 429 responses received.
    pub throttled: u64,
    /// Retries made (any cause).
    pub retries: u64,
}

/// What one call cost: HTTP requests sent (retries included) and throttling answers among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCost {
    /// Requests sent.
    pub requests: u32,
    /// Of those, answered with a throttling response.
    pub throttled: u32,
}

impl CallCost {
    /// Adds another call's cost.
    pub fn add(&mut self, other: CallCost) {
        self.requests = self.requests.saturating_add(other.requests);
        self.throttled = self.throttled.saturating_add(other.throttled);
    }
}

/// One call: which API, which throttling bucket, which URL, by when.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The tenant the call is for (its cloud decides the host and the token).
    pub tenant: &'a Tenant,
    /// The API called.
    pub api: Api,
    /// The throttling budget the request is counted in.
    pub bucket: Bucket,
    /// GET, POST, PATCH or DELETE.
    pub method: reqwest::Method,
    /// The URL; its host must be the API's host in the tenant's cloud.
    pub url: &'a Url,
    /// Give up when this passes.
    pub deadline: DateTime<Utc>,
    /// Pacing priority (sweeps and backfills are background).
    pub priority: Priority,
}

impl<'a> Call<'a> {
    /// A regular-priority GET.
    pub fn get(
        tenant: &'a Tenant,
        api: Api,
        bucket: Bucket,
        url: &'a Url,
        deadline: DateTime<Utc>,
    ) -> Self {
        Call {
            tenant,
            api,
            bucket,
            method: reqwest::Method::GET,
            url,
            deadline,
            priority: Priority::Regular,
        }
    }

    /// The same call at another pacing priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// A successful response (2xx), its body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// The response.
    pub http: HttpResponse,
    /// What it cost.
    pub cost: CallCost,
}

/// Classifies a non-2xx response of an API into an error.
type Classifier = fn(u16, &ErrorInner, Option<Duration>) -> SourceError;

/// The client of Microsoft's APIs. Cheap to share behind an `Arc`.
pub struct ApiClient {
    transport: Transport,
    tokens: Arc<dyn TokenSource>,
    clock: SharedClock,
    pacer: Arc<Pacer>,
    budget: Option<Arc<dyn RequestBudget>>,
    backoff: Backoff,
    rng: Mutex<StdRng>,
    stats: Mutex<std::collections::HashMap<String, CallStats>>,
    publisher_id: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client using `transport`, `tokens` and `pacer`, waiting through `clock`. Build one
    /// with [`crate::stack::StackBuilder`] rather than by hand.
    pub fn new(
        transport: Transport,
        tokens: Arc<dyn TokenSource>,
        clock: SharedClock,
        pacer: Arc<Pacer>,
    ) -> Self {
        Self {
            transport,
            tokens,
            clock,
            pacer,
            budget: None,
            backoff: Backoff::default(),
            rng: Mutex::new(StdRng::from_os_rng()),
            stats: Mutex::new(Default::default()),
            publisher_id: None,
        }
    }

    /// Sets the `PublisherIdentifier` every Management Activity API request carries: the
    /// vendor's own tenant GUID (not the app id, not the customer's tenant).
    pub fn with_publisher_id(mut self, publisher_id: Option<String>) -> Self {
        self.publisher_id = publisher_id
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        self
    }

    /// The configured `PublisherIdentifier`, if any.
    pub fn publisher_id(&self) -> Option<&str> {
        self.publisher_id.as_deref()
    }

    /// The URL actually requested for `call`: Management Activity API calls get our
    /// `PublisherIdentifier` unless the URL already carries it (a paging link we followed).
    fn request_url(&self, call: &Call<'_>) -> Result<Url, SourceError> {
        if call.api != Api::ManagementActivity {
            return Ok(call.url.clone());
        }
        let publisher = self
            .publisher_id
            .as_deref()
            .ok_or(SourceError::PublisherIdMissing)?;
        let mut url = call.url.clone();
        let present = url
            .query_pairs()
            .any(|(k, _)| k.eq_ignore_ascii_case("PublisherIdentifier"));
        if !present {
            url.query_pairs_mut()
                .append_pair("PublisherIdentifier", publisher);
        }
        Ok(url)
    }

    /// Adds a fleet-wide request budget consulted before every request of the reporting
    /// bucket (Microsoft's per-app limit across all tenants).
    pub fn with_budget(mut self, budget: Arc<dyn RequestBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Replaces the backoff policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seeds the jitter (tests).
    pub fn with_jitter_seed(self, seed: u64) -> Self {
        if let Ok(mut r) = self.rng.lock() {
            *r = StdRng::seed_from_u64(seed);
        }
        self
    }

    /// The clock this client waits on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The pacer this client uses.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// The token source this client uses.
    pub fn tokens(&self) -> &Arc<dyn TokenSource> {
        &self.tokens
    }

    /// Counters for one tenant.
    pub fn stats(&self, tenant_id: &str) -> CallStats {
        self.stats
            .lock()
            .map(|s| s.get(tenant_id).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    fn bump(&self, tenant_id: &str, f: impl FnOnce(&mut CallStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(s.entry(tenant_id.to_string()).or_default());
        }
    }

    /// The URL of `path` on `api`'s host in the tenant's cloud, with query pairs.
    pub fn url(
        tenant: &Tenant,
        api: Api,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Url, SourceError> {
        let host = api
            .host(tenant.cloud)
            .ok_or(SourceError::Unsupported(api.as_str()))?;
        let base = format!("https://{host}/{}", path.trim_start_matches('/'));
        let mut url = Url::parse(&base).map_err(|_| SourceError::BadRequest {
            status: 0,
            code: "invalid_path".into(),
        })?;
        if !query.is_empty() {
            // Graph expects `$filter=...` with spaces encoded; keep `$` literal.
            let q = query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
                .collect::<Vec<_>>()
                .join("&");
            url.set_query(Some(&q));
        }
        Ok(url)
    }

    /// Checks that `link` may be followed for `tenant` on `api`: `https`, no port, no user
    /// information, and exactly the API's host in the tenant's cloud.
    pub fn validate_link(tenant: &Tenant, api: Api, link: &str) -> Result<Url, SourceError> {
        let expected = api.host(tenant.cloud).unwrap_or("<none>");
        let url = Url::parse(link).map_err(|_| SourceError::ForeignLink {
            api,
            host: "<unparseable>".into(),
            expected,
        })?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if url.scheme() != "https"
            || !host.eq_ignore_ascii_case(expected)
            || url.port().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(SourceError::ForeignLink {
                api,
                host: if url.scheme() == "https" {
                    host
                } else {
                    format!("{}://{host}", url.scheme())
                },
                expected,
            });
        }
        Ok(url)
    }

    /// Sends `call`, retrying retryable failures within its deadline, and returns the first
    /// 2xx response. Other responses become errors the way the call's API reports them.
    pub async fn send(&self, call: &Call<'_>) -> Result<Response, SourceError> {
        self.send_with(call, |_| Ok(()))
            .await
            .map(|(resp, ())| resp)
    }

    /// Like [`ApiClient::send`], decoding the response with `parse` inside the retry loop: a
    /// body that fails to decode with a retryable error (truncated JSON) is fetched again.
    pub async fn send_with<T>(
        &self,
        call: &Call<'_>,
        parse: impl Fn(&HttpResponse) -> Result<T, SourceError>,
    ) -> Result<(Response, T), SourceError> {
        self.send_inner(call, None, parse).await
    }

    /// Sends `call` with a JSON request body (Graph's PATCH and POST actions), retrying
    /// retryable failures within its deadline like [`ApiClient::send`]. Only idempotent writes
    /// belong here: a retried request may reach Microsoft twice.
    pub async fn send_json(
        &self,
        call: &Call<'_>,
        body: &serde_json::Value,
    ) -> Result<Response, SourceError> {
        let bytes = serde_json::to_vec(body).map_err(|_| SourceError::BadRequest {
            status: 0,
            code: "unencodable_body".into(),
        })?;
        self.send_inner(call, Some(&bytes), |_| Ok(()))
            .await
            .map(|(resp, ())| resp)
    }

    async fn send_inner<T>(
        &self,
        call: &Call<'_>,
        body: Option<&[u8]>,
        parse: impl Fn(&HttpResponse) -> Result<T, SourceError>,
    ) -> Result<(Response, T), SourceError> {
        let classify: Classifier = match call.api {
            Api::Graph => classify_graph,
            Api::ManagementActivity => classify_management,
        };
        let tenant = call.tenant;
        let mut cost = CallCost::default();
        let mut attempt: u32 = 0;
        let mut reauthorized = false;
        loop {
            let result = self
                .try_once(call, body, classify, &mut cost)
                .await
                .and_then(|http| parse(&http).map(|t| (http, t)));
            let err = match result {
                Ok((http, t)) => {
                    return Ok((
                        Response {
                            status: http.status,
                            http,
                            cost,
                        },
                        t,
                    ));
                }
                Err(e) => e,
            };
            match &err {
                SourceError::Unauthorized { .. } if !reauthorized => {
                    // A rejected token: drop it and try once with a fresh one.
                    self.tokens.invalidate(tenant.cloud, &tenant.id);
                    reauthorized = true;
                    continue;
                }
                SourceError::Unauthorized { .. } => return Err(err),
                SourceError::DeadlineExceeded { .. } => return Err(err),
                e if !e.is_retryable() => return Err(err),
                _ => {}
            }
            attempt += 1;
            if attempt >= self.backoff.max_attempts {
                return Err(err);
            }
            let wait = match err.retry_after() {
                Some(ra) => ra,
                None => {
                    let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    self.backoff.delay(attempt - 1, &mut *rng)
                }
            };
            let now = self.clock.now();
            let until = pacing::saturating_after(now, wait);
            if matches!(err, SourceError::Throttled { .. }) {
                self.pacer.block_tenant(call.bucket, &tenant.id, until);
            }
            if until > call.deadline {
                tracing::warn!(tenant = %tenant.id, api = %call.api, kind = %err.kind(), "retry would pass the deadline");
                return Err(SourceError::DeadlineExceeded {
                    cause: Some(err.kind()),
                });
            }
            tracing::warn!(tenant = %tenant.id, api = %call.api, kind = %err.kind(), attempt, wait_ms = wait.as_millis() as u64, "request failed, retrying");
            self.bump(&tenant.id, |s| s.retries += 1);
            self.clock.sleep(wait).await;
        }
    }

    async fn try_once(
        &self,
        call: &Call<'_>,
        body: Option<&[u8]>,
        classify: Classifier,
        cost: &mut CallCost,
    ) -> Result<HttpResponse, SourceError> {
        let tenant = call.tenant;
        if self.clock.now() >= call.deadline {
            return Err(SourceError::DeadlineExceeded { cause: None });
        }
        let token = self
            .tokens
            .token(tenant.cloud, &tenant.id, call.api, call.deadline)
            .await?;
        if token.roles.is_empty() {
            return Err(SourceError::ConsentRevoked);
        }
        let paced = |e: PaceError| match e {
            PaceError::Deadline { blocked } => SourceError::DeadlineExceeded {
                cause: blocked.then_some(FailureKind::Throttled),
            },
        };
        let url = self.request_url(call)?;
        // The tenant's reporting requests count in the window of the app registration that
        // serves it (each registration has its own app-wide limit).
        let app = self.tokens.app_id(&tenant.id).unwrap_or_default();
        self.pacer.assign(&tenant.id, &app);
        let slot = self
            .pacer
            .acquire_as(call.bucket, &tenant.id, call.deadline, call.priority)
            .await
            .map_err(paced)?;
        if call.bucket == Bucket::Reports
            && let Some(b) = &self.budget
        {
            b.acquire(&app, call.deadline).await.map_err(paced)?;
        }
        let headers = request_headers(&token)?;
        self.bump(&tenant.id, |s| s.requests += 1);
        cost.requests = cost.requests.saturating_add(1);
        let expected = call.api.host(tenant.cloud).unwrap_or("<none>");
        let time_left = (call.deadline - self.clock.now())
            .to_std()
            .unwrap_or_default();
        let sent = self
            .transport
            .send_body_within(
                call.method.clone(),
                &url,
                headers,
                body.map(|b| ("application/json", b.to_vec())),
                Some(time_left),
            )
            .await;
        self.pacer.settle(&slot);
        let resp = sent.map_err(|e| match e {
            TransportError::Timeout { .. } => SourceError::Transient {
                status: None,
                retry_after: None,
                detail: "timeout".into(),
            },
            TransportError::Connect { kind, .. } => SourceError::Transient {
                status: None,
                retry_after: None,
                detail: kind,
            },
            TransportError::ForeignHost { host } => SourceError::ForeignLink {
                api: call.api,
                host,
                expected,
            },
            TransportError::BadUrl => SourceError::ForeignLink {
                api: call.api,
                host: "<bad url>".into(),
                expected,
            },
            TransportError::BodyTooLarge { limit_bytes, .. } => {
                SourceError::ResponseTooLarge { limit_bytes }
            }
        })?;
        let now = self.clock.now();
        let retry_after = resp
            .header("retry-after")
            .and_then(|v| pacing::parse_retry_after(v, now));
        if (200..=299).contains(&resp.status) {
            return Ok(resp);
        }
        let err = classify(resp.status, &error_inner(call.api, &resp.body), retry_after);
        if let SourceError::Throttled { retry_after } = &err {
            self.bump(&tenant.id, |s| s.throttled += 1);
            cost.throttled = cost.throttled.saturating_add(1);
            if let (Some(ra), Some(b)) = (retry_after, &self.budget)
                && call.bucket == Bucket::Reports
                && is_app_scope(resp.header("x-ms-throttle-scope"))
            {
                b.block_until(&app, pacing::saturating_after(now, *ra));
            }
        }
        Err(err)
    }

    /// GETs one page of a Graph collection (`value` and `@odata.nextLink`), retrying
    /// retryable failures within `deadline`.
    pub async fn get_page(
        &self,
        tenant: &Tenant,
        url: &Url,
        deadline: DateTime<Utc>,
    ) -> Result<Page, SourceError> {
        self.get_page_as(tenant, Bucket::Reports, url, deadline, Priority::Regular)
            .await
    }

    /// [`ApiClient::get_page`] counted in `bucket`, at a pacing priority (sweeps and backfills
    /// are [`Priority::Background`]).
    pub async fn get_page_as(
        &self,
        tenant: &Tenant,
        bucket: Bucket,
        url: &Url,
        deadline: DateTime<Utc>,
        priority: Priority,
    ) -> Result<Page, SourceError> {
        let call = Call::get(tenant, Api::Graph, bucket, url, deadline).with_priority(priority);
        let (resp, page) = self
            .send_with(&call, |http| Self::parse_page(tenant, &http.body))
            .await?;
        Ok(Page {
            cost: resp.cost,
            ..page
        })
    }

    /// Reads the body of a Graph collection page: its records and its validated
    /// `@odata.nextLink` (a link outside the tenant's cloud is refused and logged). `cost` is
    /// left at zero. A body that is not a page is [`SourceError::Decode`], which names a
    /// position, never the body.
    pub fn parse_page(tenant: &Tenant, body: &[u8]) -> Result<Page, SourceError> {
        let raw =
            serde_json::from_slice::<RawPage>(body).map_err(|e| error::decode_error(&e, body))?;
        let (next_link, refused_link) = match raw.next_link {
            Some(l) => match Self::validate_link(tenant, Api::Graph, &l) {
                Ok(u) => (Some(u), None),
                Err(e) => {
                    refused_link_logged(tenant, &e);
                    (None, Some(e))
                }
            },
            None => (None, None),
        };
        Ok(Page {
            value: raw.value,
            next_link,
            refused_link,
            bytes: body.len(),
            cost: CallCost::default(),
        })
    }

    /// Follows a Graph collection from `first` to its last page, returning every record. Stops
    /// at the first error (pages already fetched are lost to the caller: use
    /// [`Self::get_page_as`] for resumable work).
    pub async fn get_all(
        &self,
        tenant: &Tenant,
        bucket: Bucket,
        first: &Url,
        deadline: DateTime<Utc>,
    ) -> Result<Vec<serde_json::Value>, SourceError> {
        let mut out = Vec::new();
        let mut next = Some(first.clone());
        while let Some(url) = next {
            let page = self
                .get_page_as(tenant, bucket, &url, deadline, Priority::Regular)
                .await?;
            out.extend(page.value);
            if let Some(e) = page.refused_link {
                return Err(e);
            }
            next = page.next_link;
        }
        Ok(out)
    }
}

/// The headers of an API call: the bearer token, marked sensitive so that HTTP stacks and
/// `Debug` output never show it, and `Accept: application/json`.
fn request_headers(token: &AccessToken) -> Result<HeaderMap, SourceError> {
    let mut bearer =
        HeaderValue::from_str(&format!("Bearer {}", token.secret.expose())).map_err(|_| {
            SourceError::Unauthorized {
                code: "malformed_token".into(),
            }
        })?;
    bearer.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(headers)
}

/// A refused paging link is an error an operator must see: it names the host (never the
/// query, which may hold tokens).
pub fn refused_link_logged(tenant: &Tenant, e: &SourceError) {
    if let SourceError::ForeignLink {
        api,
        host,
        expected,
    } = e
    {
        tracing::error!(
            tenant = %tenant.id,
            api = %api,
            host = %host,
            expected = %expected,
            "refused a paging link to a host outside the tenant's cloud; the rest of that collection was not read"
        );
    }
}

fn is_app_scope(scope: Option<&str>) -> bool {
    // `x-ms-throttle-scope: <Scope>/<Limit>/<AppId>/<TenantId>`; an app-wide scope names no tenant.
    scope.is_some_and(|s| {
        let parts: Vec<&str> = s.split('/').collect();
        parts.len() >= 3 && parts.get(3).is_none_or(|t| t.is_empty())
    })
}

/// The error of a non-2xx response of `api` with status `status` and body `body`, given the
/// response's parsed `Retry-After`. The error names codes and statuses only, never the body's
/// message.
pub fn classify_response(
    api: Api,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> SourceError {
    let err = error_inner(api, body);
    match api {
        Api::Graph => classify_graph(status, &err, retry_after),
        Api::ManagementActivity => classify_management(status, &err, retry_after),
    }
}

/// The `error` object of an error response of `api`.
fn error_inner(api: Api, body: &[u8]) -> ErrorInner {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => b.error,
        // A non-JSON error of the Management Activity API (the audit-log-off answer has been
        // seen as text): its start is kept for classification only, never stored.
        Err(_) if api == Api::ManagementActivity => ErrorInner {
            code: String::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(MAX_CLASSIFIED_TEXT)])
                .into_owned(),
        },
        Err(_) => ErrorInner::default(),
    }
}

/// Graph's error responses.
fn classify_graph(status: u16, err: &ErrorInner, retry_after: Option<Duration>) -> SourceError {
    let code = sanitize_code(&err.code).unwrap_or_else(|| format!("http_{status}"));
    match status {
        401 => {
            if err.message.contains("scp or roles claim") {
                SourceError::ConsentRevoked
            } else {
                SourceError::Unauthorized { code }
            }
        }
        403 => {
            if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant" {
                SourceError::LicenceRequired
            } else if err.message.contains("scp or roles claim") {
                SourceError::ConsentRevoked
            } else {
                SourceError::Forbidden { code }
            }
        }
        404 => SourceError::NotFound { code },
        429 => SourceError::Throttled { retry_after },
        408 | 500..=599 => SourceError::Transient {
            status: Some(status),
            retry_after: if status == 503 || status == 504 || status == 500 {
                retry_after
            } else {
                None
            },
            detail: code,
        },
        _ => SourceError::BadRequest { status, code },
    }
}

/// How much of a non-JSON error body is read to classify it.
const MAX_CLASSIFIED_TEXT: usize = 4096;

/// The Management Activity API's error responses (`{"error":{"code":"AFnnnnn","message"}}`),
/// by code first, whatever the HTTP status:
/// - `AF429` (throttled; sent with HTTP 403 and no `Retry-After`) and HTTP 429: throttled;
/// - `AF50000`: internal error, retried;
/// - `AF20022` / `AF20023`: no subscription / subscription disabled by an administrator;
/// - `AF20050` / `AF20051` / `AF20052`: content not found / expired / invalid id;
/// - `AF10001`: the token lacks `ActivityFeed.Read` (a missing permission);
/// - a non-AF answer naming `DataServiceException … does not exist`: the tenant's unified
///   audit log is off (Microsoft's troubleshooting guide shows this odd shape on a
///   subscription start);
/// - anything else: Graph's rules by status.
fn classify_management(
    status: u16,
    err: &ErrorInner,
    retry_after: Option<Duration>,
) -> SourceError {
    let code = err.code.trim();
    let is = |c: &str| code.eq_ignore_ascii_case(c);
    if status == 429 || is("AF429") {
        return SourceError::Throttled { retry_after };
    }
    if is("AF50000") {
        return SourceError::Transient {
            status: Some(status),
            retry_after,
            detail: "AF50000".into(),
        };
    }
    if is("AF20022") {
        return SourceError::SubscriptionMissing;
    }
    if is("AF20023") {
        return SourceError::SubscriptionDisabled;
    }
    if is("AF20050") || is("AF20051") || is("AF20052") {
        return SourceError::ContentUnavailable {
            code: code.to_ascii_uppercase(),
        };
    }
    if is("AF10001") {
        return SourceError::Forbidden {
            code: "AF10001".into(),
        };
    }
    if is_auditing_disabled(code, &err.message) {
        return SourceError::AuditingDisabled;
    }
    classify_graph(status, err, retry_after)
}

/// The audit-log-off answer: not an AF code, and a text naming the compliance service's
/// `DataServiceException` with "Tenant … does not exist".
fn is_auditing_disabled(code: &str, message: &str) -> bool {
    let af = code.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AF"))
        && code[2..].bytes().all(|b| b.is_ascii_digit());
    if af {
        return false;
    }
    let text = format!("{code} {message}").to_ascii_lowercase();
    text.contains("dataserviceexception") && text.contains("does not exist")
}

/// Longest Graph error `code` kept for errors and logs. Microsoft's codes are short
/// identifiers (`Authorization_RequestDenied`, `activityLimitReached`).
const MAX_CODE_LEN: usize = 64;

/// Reduces Graph's error `code` (response-body input) to a bounded, log-safe token: at most
/// [`MAX_CODE_LEN`] characters of `[A-Za-z0-9_.-]`, every other character replaced by `_`
/// (so no newline, control character, markup or long payload reaches a log line). `None` for
/// an empty code.
fn sanitize_code(code: &str) -> Option<String> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    Some(
        code.chars()
            .take(MAX_CODE_LEN)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// Percent-encodes a query value: spaces as `%20`, reserved characters encoded; `$`, `:`, `(`,
/// `)` and `/` kept readable (the URL parser encodes `'` as `%27`, which Graph decodes).
fn encode_query_value(v: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'$')
        .remove(b':')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'/');
    utf8_percent_encode(v, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::health::FailureKind;
    use chrono::TimeDelta;

    fn tenant(cloud: Cloud) -> Tenant {
        Tenant {
            id: "00000000-0000-0000-0000-000000000001".into(),
            cloud,
        }
    }

    #[test]
    fn parse_page_keeps_records_and_checks_the_next_link() {
        let t = tenant(Cloud::Global);
        let body = br#"{"value":[{"id":"a"},{"id":"b"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x"}"#;
        let page = ApiClient::parse_page(&t, body).unwrap_or_default();
        assert_eq!(page.value.len(), 2);
        assert_eq!(page.bytes, body.len());
        assert_eq!(
            page.next_link.as_ref().and_then(Url::host_str),
            Some("graph.microsoft.com")
        );
        // A link to another cloud's host: the records stay, the link is refused.
        let body =
            br#"{"value":[{"id":"a"}],"@odata.nextLink":"https://graph.microsoft.us/v1.0/x"}"#;
        let page = ApiClient::parse_page(&t, body).unwrap_or_default();
        assert_eq!(page.value.len(), 1);
        assert!(page.next_link.is_none());
        assert!(matches!(
            page.refused_link,
            Some(SourceError::ForeignLink { .. })
        ));
        // Not a page: a decode error at a position, without the body.
        let e = ApiClient::parse_page(&t, br#"{"value":"secret-user@contoso.com"}"#).err();
        assert!(matches!(e, Some(SourceError::Decode { .. })), "{e:?}");
        assert!(!format!("{e:?}").contains("secret-user"));
    }

    #[test]
    fn classify_response_reads_codes_never_messages() {
        let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"secret-user@contoso.com"}}"#;
        let e = classify_response(Api::Graph, 403, body, None);
        assert!(
            matches!(&e, SourceError::Forbidden { code } if code == "Authorization_RequestDenied"),
            "{e:?}"
        );
        assert!(!format!("{e} {e:?}").contains("secret-user"));
        let e = classify_response(
            Api::ManagementActivity,
            403,
            br#"{"error":{"code":"AF429","message":"too many"}}"#,
            None,
        );
        assert!(matches!(e, SourceError::Throttled { .. }), "{e:?}");
        let e = classify_response(Api::Graph, 503, b"<html>", Some(Duration::from_secs(3)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn next_link_must_stay_on_the_tenants_graph_host() {
        let t = tenant(Cloud::GccHigh);
        assert!(
            ApiClient::validate_link(
                &t,
                Api::Graph,
                "https://graph.microsoft.us/beta/auditLogs/signIns?$skiptoken=x"
            )
            .is_ok()
        );
        for bad in [
            "https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken=x",
            "http://graph.microsoft.us/beta/auditLogs/signIns",
            "https://graph.microsoft.us.evil.example/beta",
            "https://graph.microsoft.us:8443/beta",
            "https://user@graph.microsoft.us/beta",
            "https://:pw@graph.microsoft.us/beta",
            "https://evil.example/https://graph.microsoft.us/",
            "/relative/only",
        ] {
            let r = ApiClient::validate_link(&t, Api::Graph, bad);
            assert!(
                matches!(r, Err(SourceError::ForeignLink { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn urls_use_the_clouds_graph_host_and_encode_filters() {
        let t = tenant(Cloud::Dod);
        let u = ApiClient::url(
            &t,
            Api::Graph,
            "beta/auditLogs/signIns",
            &[(
                "$filter",
                "createdDateTime ge 2026-01-01T00:00:00.000Z and signInEventTypes/any(t: t ne 'interactiveUser')"
                    .to_string(),
            )],
        )
        .map(|u| u.to_string())
        .unwrap_or_default();
        assert!(u.starts_with("https://dod-graph.microsoft.us/beta/auditLogs/signIns?$filter=createdDateTime%20ge%202026-01-01T00:00:00.000Z%20and%20signInEventTypes/any(t:%20t%20ne%20%27interactiveUser%27)"), "{u}");
    }

    #[test]
    fn error_mapping() {
        let e = |code: &str, message: &str| ErrorInner {
            code: code.into(),
            message: message.into(),
        };
        assert!(matches!(
            classify_graph(
                403,
                &e("Authentication_RequestFromNonPremiumTenantOrB2CTenant", ""),
                None
            ),
            SourceError::LicenceRequired
        ));
        assert!(matches!(
            classify_graph(
                401,
                &e(
                    "InvalidAuthenticationToken",
                    "Either scp or roles claim need to be present in the token."
                ),
                None
            ),
            SourceError::ConsentRevoked
        ));
        assert!(matches!(
            classify_graph(
                403,
                &e("Authorization_RequestDenied", "Insufficient privileges"),
                None
            ),
            SourceError::Forbidden { .. }
        ));
        assert!(matches!(
            classify_graph(404, &e("", ""), None),
            SourceError::NotFound { .. }
        ));
        let t = classify_graph(
            503,
            &e("serviceNotAvailable", ""),
            Some(Duration::from_secs(3)),
        );
        assert!(t.is_retryable());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert!(matches!(
            classify_graph(400, &e("BadRequest", ""), None),
            SourceError::BadRequest { .. }
        ));
        assert!(matches!(
            classify_graph(429, &e("", ""), Some(Duration::from_secs(2))),
            SourceError::Throttled {
                retry_after: Some(_)
            }
        ));
        // The Management Activity API throttles with AF429 on a 403, without Retry-After.
        assert!(matches!(
            classify_management(403, &e("AF429", "Too many requests. Method=GetBlob"), None),
            SourceError::Throttled { retry_after: None }
        ));
        assert!(matches!(
            classify_management(403, &e("AF10001", ""), None),
            SourceError::Forbidden { .. }
        ));
        assert!(classify_management(500, &e("AF50000", ""), None).is_retryable());
        assert!(is_app_scope(Some("Application/Limit/appid/")));
        assert!(!is_app_scope(Some("Application/Limit/appid/tenantid")));
    }

    #[test]
    fn management_activity_errors_are_classified_by_code() {
        let e = |code: &str, message: &str| ErrorInner {
            code: code.into(),
            message: message.into(),
        };
        let kind = |status, code: &str, message: &str| {
            classify_management(status, &e(code, message), None).kind()
        };
        assert_eq!(
            kind(400, "AF20022", "No subscription found"),
            FailureKind::SubscriptionMissing
        );
        assert_eq!(
            kind(400, "af20023", "The subscription was disabled."),
            FailureKind::SubscriptionDisabled
        );
        for code in ["AF20050", "AF20051", "AF20052"] {
            let err = classify_management(404, &e(code, "x"), None);
            assert_eq!(err.kind(), FailureKind::ContentUnavailable, "{code}");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(code));
        }
        assert_eq!(kind(403, "AF10001", ""), FailureKind::Forbidden);
        // The audit-log-off answer of a subscription start: not an AF code, an odd message.
        assert_eq!(
            kind(
                400,
                "StartSubscription [CorrId=5b0cd2a6][TenantId=72f988bf,ContentType=Audit.Exchange][AppId=x]",
                "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 72f988bf does not exist."
            ),
            FailureKind::AuditingDisabled
        );
        assert_eq!(
            kind(
                400,
                "",
                "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant x does not exist."
            ),
            FailureKind::AuditingDisabled
        );
        // AF20011 (tenant deleted) is not the audit log being off.
        assert_ne!(
            kind(400, "AF20011", "Tenant does not exist or was deleted"),
            FailureKind::AuditingDisabled
        );
        // Window and paging errors are our own bad request.
        assert_eq!(
            kind(400, "AF20055", "window too long"),
            FailureKind::BadRequest
        );
        assert_eq!(kind(400, "AF20030", ""), FailureKind::BadRequest);
    }

    #[test]
    fn management_requests_carry_the_publisher_identifier() {
        let t = tenant(Cloud::Global);
        let pacer = Pacer::new(
            Arc::new(crate::clock::ManualClock::new(t0())),
            Rate::REPORTS_PER_TENANT,
            None,
        );
        let client = ApiClient::new(
            Transport::new(Duration::from_secs(5), None).unwrap_or_else(|_| panic!("transport")),
            Arc::new(FixedTokens),
            Arc::new(crate::clock::ManualClock::new(t0())),
            pacer,
        );
        let url = ApiClient::url(
            &t,
            Api::ManagementActivity,
            "api/v1.0/x/activity/feed/subscriptions/list",
            &[],
        )
        .unwrap_or_else(|_| panic!("url"));
        let call = Call::get(
            &t,
            Api::ManagementActivity,
            Bucket::ManagementActivity,
            &url,
            t0(),
        );
        assert!(matches!(
            client.request_url(&call),
            Err(SourceError::PublisherIdMissing)
        ));
        let client =
            client.with_publisher_id(Some(" 0A5F3E42-0000-4000-8000-000000000001 ".into()));
        let sent = client
            .request_url(&call)
            .map(|u| u.to_string())
            .unwrap_or_default();
        assert!(
            sent.ends_with("?PublisherIdentifier=0a5f3e42-0000-4000-8000-000000000001"),
            "{sent}"
        );
        // A paging link that already carries it is sent as is.
        let link = Url::parse("https://manage.office.com/api/v1/x/activity/feed/subscriptions/content?nextPage=abc&publisheridentifier=0a5f3e42-0000-4000-8000-000000000001")
            .unwrap_or_else(|_| panic!("link"));
        let call = Call::get(
            &t,
            Api::ManagementActivity,
            Bucket::ManagementActivity,
            &link,
            t0(),
        );
        assert_eq!(client.request_url(&call).ok(), Some(link.clone()));
        // Graph calls never get it.
        let g = signins_url(&t);
        let call = Call::get(&t, Api::Graph, Bucket::Reports, &g, t0());
        assert_eq!(client.request_url(&call).ok(), Some(g));
    }

    #[test]
    fn error_codes_from_bodies_are_reduced_to_safe_bounded_tokens() {
        let e = |code: &str| ErrorInner {
            code: code.into(),
            message: String::new(),
        };
        let hostile = format!("Bad\nCode <script>\u{1b}[31m{}", "A".repeat(500));
        for status in [400, 401, 403, 404, 503] {
            let err = classify_graph(status, &e(&hostile), None);
            let code = match &err {
                SourceError::BadRequest { code, .. }
                | SourceError::Unauthorized { code }
                | SourceError::Forbidden { code }
                | SourceError::NotFound { code }
                | SourceError::Transient { detail: code, .. } => code.clone(),
                other => panic!("{other:?}"),
            };
            assert!(code.len() <= MAX_CODE_LEN, "{status}: {} chars", code.len());
            assert!(code.starts_with("Bad_Code__script_"), "{code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                "{code:?}"
            );
            let shown = err.to_string();
            assert!(!shown.contains('\n') && !shown.contains('<') && !shown.contains('\u{1b}'));
        }
        // Real codes pass unchanged, so classification by code still works.
        assert_eq!(
            sanitize_code("Authorization_RequestDenied").as_deref(),
            Some("Authorization_RequestDenied")
        );
        assert_eq!(
            sanitize_code("UnknownError.v2-x").as_deref(),
            Some("UnknownError.v2-x")
        );
        assert_eq!(sanitize_code("  "), None);
        assert!(matches!(
            classify_graph(404, &e(" "), None),
            SourceError::NotFound { code } if code == "http_404"
        ));
        assert_eq!(sanitize_code("é").as_deref(), Some("_"));
    }

    fn token() -> AccessToken {
        let now = chrono::DateTime::UNIX_EPOCH;
        AccessToken {
            secret: crate::auth::SecretString::new("eyJ0.TOKEN-SECRET.sig"),
            issued_at: now,
            expires_at: DateTime::<Utc>::MAX_UTC,
            roles: vec!["AuditLog.Read.All".into(), "Directory.Read.All".into()],
            tenant_id: None,
        }
    }

    #[test]
    fn the_authorization_header_is_marked_sensitive() {
        let headers = request_headers(&token()).unwrap_or_default();
        let auth = headers.get(AUTHORIZATION);
        assert!(auth.is_some_and(HeaderValue::is_sensitive), "{auth:?}");
        assert!(!format!("{headers:?}").contains("TOKEN-SECRET"));
        assert_eq!(
            headers.get(ACCEPT).and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }

    /// Always hands out [`token`].
    struct FixedTokens;

    #[async_trait::async_trait]
    impl TokenSource for FixedTokens {
        async fn token(
            &self,
            _cloud: Cloud,
            _tenant: &str,
            _api: Api,
            _deadline: DateTime<Utc>,
        ) -> Result<AccessToken, crate::auth::AuthError> {
            Ok(token())
        }
        fn invalidate(&self, _cloud: Cloud, _tenant: &str) {}
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    async fn client_for(
        server: &crate::http::tests::Served,
        max_body_bytes: u64,
    ) -> (ApiClient, crate::clock::ManualClock) {
        let clock = crate::clock::ManualClock::new(t0());
        let transport = Transport::new(Duration::from_secs(20), Some(server.endpoint()))
            .map(|t| t.with_max_body_bytes(max_body_bytes));
        let Ok(transport) = transport else {
            panic!("transport")
        };
        let shared: SharedClock = Arc::new(clock.clone());
        let pacer = Pacer::new(Arc::clone(&shared), Rate::REPORTS_PER_TENANT, None);
        let client =
            ApiClient::new(transport, Arc::new(FixedTokens), shared, pacer).with_jitter_seed(1);
        (client, clock)
    }

    fn signins_url(t: &Tenant) -> Url {
        ApiClient::url(t, Api::Graph, "v1.0/auditLogs/signIns", &[])
            .unwrap_or_else(|_| panic!("url"))
    }

    #[tokio::test]
    async fn a_hostile_retry_after_neither_panics_nor_freezes_the_tenant() {
        use crate::http::tests::{Reply, serve};
        for ra in [
            "1e20",
            "100000",
            "99999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let server = serve(move |_| Reply {
                headers: vec![("retry-after", ra.to_string())],
                ..Reply::json(429, r#"{"error":{"code":"TooManyRequests"}}"#)
            })
            .await;
            let (client, clock) = client_for(&server, crate::http::DEFAULT_MAX_BODY_BYTES).await;
            let t = tenant(Cloud::Global);
            let deadline = t0() + TimeDelta::seconds(60);
            let r = client.get_page(&t, &signins_url(&t), deadline).await;
            assert!(
                matches!(r, Err(SourceError::DeadlineExceeded { .. })),
                "{ra}: {r:?}"
            );
            assert_eq!(client.stats(&t.id).throttled, 1);
            // The tenant's bucket is held for the capped wait only.
            let later = t0() + TimeDelta::hours(1);
            assert!(client.pacer().acquire(&t.id, later).await.is_ok());
            assert_eq!(
                clock.now(),
                t0() + TimeDelta::seconds(pacing::MAX_RETRY_AFTER.as_secs() as i64),
                "{ra}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_page_fails_at_once_without_retries() {
        use crate::http::tests::{Framing, Reply, serve};
        let server = serve(|_| Reply {
            filler: 4 * 1024 * 1024,
            framing: Framing::Chunked,
            ..Reply::json(200, r#"{"value":[{"id":"#)
        })
        .await;
        let (client, clock) = client_for(&server, 1024 * 1024).await;
        let t = tenant(Cloud::Global);
        let r = client
            .get_page(&t, &signins_url(&t), t0() + TimeDelta::minutes(10))
            .await;
        let Err(e) = r else {
            panic!("an oversized page was accepted")
        };
        assert!(
            matches!(e, SourceError::ResponseTooLarge { limit_bytes } if limit_bytes == 1024 * 1024),
            "{e:?}"
        );
        assert!(!e.is_retryable());
        assert_eq!(e.kind(), FailureKind::ResponseTooLarge);
        let stats = client.stats(&t.id);
        assert_eq!((stats.requests, stats.retries), (1, 0));
        assert_eq!(clock.now(), t0(), "no backoff");
        assert_eq!(
            server.connections.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }
}
