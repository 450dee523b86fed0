//! The HTTP server: one axum listener on a loopback address that plays every Microsoft host,
//! dispatching on the `Host` header. Also holds the shared state, the request log and the
//! counters, and the [`SimHandle`] tests use to steer the simulator.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use chrono::{DateTime, Utc};
use itdr_shared::Cloud;
use itdr_shared::clock::SharedClock;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ring::hmac;
use ring::rand::SecureRandom;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::audit_gen::{AuditGen, Ct};
use crate::config::{Faults, ManagementConfig, SimConfig, ThrottleConfig};
use crate::generator::{Generator, GroundTruthStream, TruthEvent};
use crate::throttle::Throttle;
use crate::{auth, graph, management, openid};

/// Access tokens kept for [`SimHandle::issued_tokens`].
const MAX_ISSUED_KEPT: usize = 10_000;

/// A response before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    pub(crate) fn text(status: u16, s: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: s.as_bytes().to_vec(),
        }
    }

    pub(crate) fn with_header(mut self, k: &'static str, v: String) -> Self {
        self.headers.push((k, v));
        self
    }

    fn into_response(self) -> Response<Body> {
        let mut b = Response::builder().status(self.status);
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Body::from(self.body))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// One request as the simulator saw it. Never holds headers, bodies, secrets or tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Simulated time of the request.
    pub at: DateTime<Utc>,
    /// `Host` header without port, lowercase.
    pub host: String,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Tenant the request was attributed to (token `tid`, or the token endpoint's tenant).
    pub tenant_id: Option<String>,
    /// Response status.
    pub status: u16,
}

/// Request counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request received.
    pub total_requests: u64,
    /// Requests attributed to each tenant (token and Graph).
    pub per_tenant_requests: BTreeMap<String, u64>,
    /// 429s from the per-app-per-tenant limit (5 per 10 s), per tenant.
    pub throttled_tenant_level: BTreeMap<String, u64>,
    /// 429s from the per-app limit across tenants (122 per 10 s), in total.
    pub throttled_app_level: u64,
    /// 503s injected by [`Faults::http_5xx_burst`].
    pub injected_5xx: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Requests whose `Host` is not a Microsoft host the simulator plays.
    pub unknown_host: u64,
}

/// Mutable per-tenant state (changed through [`SimHandle`]).
#[derive(Debug, Clone)]
pub(crate) struct TenantState {
    pub roles: Vec<String>,
    pub has_p1: bool,
    pub has_p2: bool,
    pub faults: Faults,
    pub consent_revoked: bool,
    pub sp_removed: bool,
    pub secret_expired: bool,
    /// Unified audit logging on.
    pub audit_log_enabled: bool,
    /// Management Activity subscriptions by content type.
    pub subscriptions: BTreeMap<Ct, SubState>,
    /// Application permissions on the Office 365 Management APIs.
    pub management_roles: Vec<String>,
}

/// A Management Activity subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Enabled; content created before `since` is not listed.
    Enabled { since: DateTime<Utc> },
    /// Disabled by an administrator (`AF20023`).
    Disabled,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct SimState {
    pub clock: SharedClock,
    pub throttle_cfg: ThrottleConfig,
    pub events: Generator,
    pub audit: AuditGen,
    pub management: ManagementConfig,
    pub management_hits: Mutex<HashMap<String, std::collections::VecDeque<i64>>>,
    tenants: Vec<Mutex<TenantState>>,
    by_id: HashMap<String, usize>,
    by_domain: HashMap<String, usize>,
    pub token_key: hmac::Key,
    pub skip_key: hmac::Key,
    token_rng: Mutex<ChaCha8Rng>,
    pub throttle: Mutex<Throttle>,
    log: Mutex<Vec<LoggedRequest>>,
    counters: Mutex<Counters>,
    /// The most recent access tokens issued (tests look for them where they must not be).
    issued: Mutex<std::collections::VecDeque<String>>,
    pub inventory: crate::inventory::InventoryState,
    /// What response actions changed (`crate::respond`).
    pub respond: crate::respond::RespondState,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimState {
    fn new(cfg: SimConfig, clock: SharedClock) -> std::io::Result<Self> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        let mut by_id = HashMap::new();
        let mut by_domain = HashMap::new();
        for (i, t) in cfg.tenants.iter().enumerate() {
            if by_id.insert(t.tenant_id.to_ascii_lowercase(), i).is_some() {
                return Err(invalid(format!("duplicate tenant id {}", t.tenant_id)));
            }
            if by_domain.insert(t.domain.to_ascii_lowercase(), i).is_some() {
                return Err(invalid(format!("duplicate tenant domain {}", t.domain)));
            }
        }
        let sys = ring::rand::SystemRandom::new();
        let mut k1 = [0u8; 32];
        let mut k2 = [0u8; 32];
        sys.fill(&mut k1)
            .and_then(|_| sys.fill(&mut k2))
            .map_err(|_| std::io::Error::other("no system randomness"))?;
        let start = clock.now();
        let history = if cfg.history < chrono::Duration::zero() {
            chrono::Duration::zero()
        } else {
            cfg.history
        };
        let history_start = start - history;
        Ok(Self {
            events: Generator::new(cfg.seed, &cfg.tenants, cfg.delay.clone(), history_start),
            audit: AuditGen::default(),
            management: cfg.management.clone(),
            management_hits: Mutex::new(HashMap::new()),
            tenants: cfg
                .tenants
                .iter()
                .map(|t| {
                    let subscriptions = if t.subscribed && t.audit_log_enabled {
                        Ct::ALL
                            .into_iter()
                            .map(|c| {
                                (
                                    c,
                                    SubState::Enabled {
                                        since: history_start,
                                    },
                                )
                            })
                            .collect()
                    } else {
                        BTreeMap::new()
                    };
                    Mutex::new(TenantState {
                        roles: t.roles.clone(),
                        has_p1: t.has_p1,
                        has_p2: t.has_p2,
                        faults: t.faults.clone(),
                        consent_revoked: false,
                        sp_removed: false,
                        secret_expired: false,
                        audit_log_enabled: t.audit_log_enabled,
                        subscriptions,
                        management_roles: t.management_roles.clone(),
                    })
                })
                .collect(),
            by_id,
            by_domain,
            token_key: hmac::Key::new(hmac::HMAC_SHA256, &k1),
            skip_key: hmac::Key::new(hmac::HMAC_SHA256, &k2),
            token_rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7070_6b65_6e73)),
            throttle_cfg: cfg.throttle,
            clock,
            throttle: Mutex::new(Throttle::default()),
            log: Mutex::new(Vec::new()),
            counters: Mutex::new(Counters::default()),
            issued: Mutex::new(std::collections::VecDeque::new()),
            inventory: Default::default(),
            respond: Default::default(),
        })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A tenant by GUID or verified domain (case-insensitive).
    pub(crate) fn find_tenant(&self, s: &str) -> Option<usize> {
        let s = s.to_ascii_lowercase();
        self.by_id
            .get(&s)
            .or_else(|| self.by_domain.get(&s))
            .copied()
    }

    /// A snapshot of a tenant's mutable state.
    pub(crate) fn tenant(&self, idx: usize) -> TenantState {
        lock(&self.tenants[idx]).clone()
    }

    /// Runs `f` on a tenant's mutable state.
    pub(crate) fn with_tenant<R>(&self, idx: usize, f: impl FnOnce(&mut TenantState) -> R) -> R {
        f(&mut lock(&self.tenants[idx]))
    }

    pub(crate) fn token_rng(&self) -> MutexGuard<'_, ChaCha8Rng> {
        lock(&self.token_rng)
    }

    pub(crate) fn count_token_issued(&self, token: &str) {
        lock(&self.counters).tokens_issued += 1;
        let mut issued = lock(&self.issued);
        if issued.len() == MAX_ISSUED_KEPT {
            issued.pop_front();
        }
        issued.push_back(token.to_string());
    }

    pub(crate) fn count_429(&self, tenant: &str, app_level: bool) {
        let mut c = lock(&self.counters);
        if app_level {
            c.throttled_app_level += 1;
        } else {
            *c.throttled_tenant_level
                .entry(tenant.to_string())
                .or_default() += 1;
        }
    }

    pub(crate) fn count_5xx(&self) {
        lock(&self.counters).injected_5xx += 1;
    }
}

async fn handle(
    State(st): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let raw_host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.host())
        .unwrap_or("");
    let host = strip_port(raw_host).to_ascii_lowercase();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let at = st.now();
    let is_login = Cloud::ALL.iter().any(|c| c.login_host() == host);
    let is_graph = Cloud::from_graph_host(&host).is_some();
    let is_management = management::cloud_of_host(&host).is_some();
    let (reply, tenant) = if is_login {
        login(&st, &host, &method, &path, &headers, &body)
    } else if is_graph && crate::respond::is_route(&method, &path) {
        crate::respond::handle(&st, &host, &method, &path, &headers, &body)
    } else if is_graph {
        graph::handle(&st, &host, &method, &path, &query, &headers).await
    } else if is_management {
        management::handle(&st, &host, &method, &path, &query, &headers)
    } else {
        tracing::warn!(host = %host, path = %path, "request for a host the simulator does not play");
        lock(&st.counters).unknown_host += 1;
        (
            Reply::text(
                421,
                &format!("misdirected request: the simulator does not serve host {host:?}"),
            ),
            None,
        )
    };
    {
        let mut c = lock(&st.counters);
        c.total_requests += 1;
        if let Some(t) = &tenant {
            *c.per_tenant_requests.entry(t.clone()).or_default() += 1;
        }
    }
    lock(&st.log).push(LoggedRequest {
        at,
        host,
        method: method.to_string(),
        path,
        query,
        tenant_id: tenant,
        status: reply.status,
    });
    reply.into_response()
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h;
    }
    h.rsplit_once(':').map_or(h, |(a, _)| a)
}

fn login(
    st: &SimState,
    host: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Reply, Option<String>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => {
            if method != Method::POST {
                let r = auth::aad_error_reply(
                    host,
                    st.now(),
                    405,
                    "invalid_request",
                    900561,
                    "The endpoint only accepts POST requests.",
                );
                return (r, None);
            }
            auth::token_endpoint(st, host, tenant, headers, body)
        }
        [tenant, "v2.0", ".well-known", "openid-configuration"] if method == Method::GET => {
            openid::configuration(st, host, tenant)
        }
        _ => (Reply::text(404, "not found"), None),
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `bind` (a loopback address; port 0 picks a free port) and serves until
    /// [`SimHandle::shutdown`]. Fails on a non-loopback address or an invalid configuration
    /// (duplicate tenant ids or domains).
    pub async fn start(
        cfg: SimConfig,
        clock: SharedClock,
        bind: SocketAddr,
    ) -> std::io::Result<SimHandle> {
        if !bind.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the simulator only binds loopback addresses",
            ));
        }
        let state = Arc::new(SimState::new(cfg, clock)?);
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(SimHandle {
            state,
            addr,
            stop: Arc::new(Mutex::new(Some((tx, task)))),
        })
    }
}

/// A handle on a running simulator: inspect what it saw and steer its tenants.
#[derive(Clone)]
pub struct SimHandle {
    state: Arc<SimState>,
    addr: SocketAddr,
    #[allow(clippy::type_complexity)]
    stop: Arc<Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for the client's endpoint override.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The library's client-stack builder on `clock`, its Microsoft hosts sent to this
    /// simulator (the one way tests and benches build a client).
    pub fn stack_builder(
        &self,
        clock: itdr_shared::clock::SharedClock,
    ) -> itdr_shared::stack::StackBuilder {
        itdr_shared::stack::StackBuilder::new(clock)
            .endpoint_override(itdr_shared::http::EndpointOverride::parse(&self.base_url()).ok())
    }

    /// Every request so far, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        lock(&self.state.log).clone()
    }

    /// The access tokens issued so far (the last 10,000), oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).iter().cloned().collect()
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        lock(&self.state.counters).clone()
    }

    /// The simulated time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    fn on(&self, tenant_id: &str, f: impl FnOnce(&mut TenantState)) {
        match self.state.find_tenant(tenant_id) {
            Some(i) => self.state.with_tenant(i, f),
            None => tracing::warn!(tenant_id, "simulator: no such tenant"),
        }
    }

    /// Revokes admin consent: tokens are still issued but carry no `roles` claim, so Graph
    /// answers 401 "Either scp or roles claim need to be present in the token."
    pub fn revoke_consent(&self, tenant_id: &str) {
        self.on(tenant_id, |t| t.consent_revoked = true);
    }

    /// Restores consent after [`SimHandle::revoke_consent`].
    pub fn restore_consent(&self, tenant_id: &str) {
        self.on(tenant_id, |t| t.consent_revoked = false);
    }

    /// Deletes the app's service principal: token requests fail with AADSTS700016.
    pub fn remove_service_principal(&self, tenant_id: &str) {
        self.on(tenant_id, |t| t.sp_removed = true);
    }

    /// Expires the client secret: token requests with it fail with AADSTS7000222.
    pub fn expire_secret(&self, tenant_id: &str) {
        self.on(tenant_id, |t| t.secret_expired = true);
    }

    /// Replaces the consented application permissions (new tokens carry them).
    pub fn set_roles(&self, tenant_id: &str, roles: Vec<String>) {
        self.on(tenant_id, |t| t.roles = roles);
    }

    /// Replaces the tenant's injected faults.
    pub fn set_faults(&self, tenant_id: &str, f: Faults) {
        self.on(tenant_id, |t| t.faults = f);
    }

    /// The tenant's injected faults as they stand (counters decrement as faults are used).
    pub fn faults(&self, tenant_id: &str) -> Option<Faults> {
        self.state
            .find_tenant(tenant_id)
            .map(|i| self.state.with_tenant(i, |t| t.faults.clone()))
    }

    /// Grants or removes Entra ID P1 (sign-in logs, 30-day retention).
    pub fn set_p1(&self, tenant_id: &str, has: bool) {
        self.on(tenant_id, |t| t.has_p1 = has);
    }

    /// Grants or removes Entra ID P2 (risk fields not hidden).
    pub fn set_p2(&self, tenant_id: &str, has: bool) {
        self.on(tenant_id, |t| t.has_p2 = has);
    }

    /// A copy of a tenant's identity inventory (built on first use); `None` for an unknown
    /// tenant.
    pub fn inventory(&self, tenant_id: &str) -> Option<crate::Inventory> {
        let model = self.inventory_model(tenant_id)?;
        Some(lock(&model).clone())
    }

    /// Changes a tenant's identity inventory (a new Global Administrator, a forwarding rule, a
    /// removed user...); later requests see the change.
    pub fn edit_inventory(&self, tenant_id: &str, f: impl FnOnce(&mut crate::Inventory)) {
        if let Some(model) = self.inventory_model(tenant_id) {
            f(&mut lock(&model));
        }
    }

    fn inventory_model(&self, tenant_id: &str) -> Option<Arc<Mutex<crate::Inventory>>> {
        let st = &self.state;
        let idx = st.find_tenant(tenant_id)?;
        let model = &st.events.tenants[idx];
        Some(st.inventory.model(idx, || {
            crate::Inventory::build(&model.spec, &model.users, st.now())
        }))
    }

    /// Every event generated for a tenant's stream with `history start <= event_time <=
    /// until`, newest first, whether visible yet or not. Empty for an unknown tenant. For the
    /// unified audit log's content types: every record of the blobs created in `[history
    /// start, until]` (once, whichever blobs repeat it), with the blob's `contentCreated`.
    pub fn ground_truth(
        &self,
        tenant_id: &str,
        stream: GroundTruthStream,
        until: DateTime<Utc>,
    ) -> Vec<TruthEvent> {
        let Some(i) = self.state.find_tenant(tenant_id) else {
            return Vec::new();
        };
        match Ct::from_truth(stream) {
            Some(ct) => self.state.audit.truth(
                &self.state.events.tenants[i],
                i,
                ct,
                self.state.events.history_start_ticks / 10_000,
                until,
                &self.state.management.listing_lag,
            ),
            None => self.state.events.truth(i, stream, until),
        }
    }

    /// Turns the tenant's unified audit logging on or off. Off removes its Management Activity
    /// subscriptions (no content is recorded), and starting one fails.
    pub fn set_audit_log(&self, tenant_id: &str, enabled: bool) {
        self.on(tenant_id, |t| {
            t.audit_log_enabled = enabled;
            if !enabled {
                t.subscriptions.clear();
            }
        });
    }

    /// An administrator disables the tenant's subscription to `content_type`
    /// (`Audit.Exchange`, …): listings answer `AF20023` and a start cannot re-enable it.
    pub fn disable_subscription(&self, tenant_id: &str, content_type: &str) {
        if let Some(ct) = Ct::from_name(content_type) {
            self.on(tenant_id, |t| {
                t.subscriptions.insert(ct, SubState::Disabled);
            });
        }
    }

    /// Removes the tenant's subscription to `content_type` (as if never started).
    pub fn remove_subscription(&self, tenant_id: &str, content_type: &str) {
        if let Some(ct) = Ct::from_name(content_type) {
            self.on(tenant_id, |t| {
                t.subscriptions.remove(&ct);
            });
        }
    }

    /// The tenant's subscriptions: (content type, `enabled` or `disabled`).
    pub fn subscriptions(&self, tenant_id: &str) -> Vec<(String, String)> {
        match self.state.find_tenant(tenant_id) {
            Some(i) => self
                .state
                .tenant(i)
                .subscriptions
                .iter()
                .map(|(c, s)| {
                    let status = match s {
                        SubState::Enabled { .. } => "enabled",
                        SubState::Disabled => "disabled",
                    };
                    (c.name().to_string(), status.to_string())
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Replaces the consented permissions on the Office 365 Management APIs.
    pub fn set_management_roles(&self, tenant_id: &str, roles: Vec<String>) {
        self.on(tenant_id, |t| t.management_roles = roles);
    }

    /// The types of a user's registered authentication methods (`phoneAuthenticationMethod`,
    /// …), as response actions left them; empty for an unknown tenant.
    pub fn auth_methods(&self, tenant_id: &str, user_id: &str) -> Vec<String> {
        self.state
            .find_tenant(tenant_id)
            .map(|i| self.state.respond.method_types(i, user_id))
            .unwrap_or_default()
    }

    /// When a user's sign-in sessions were last revoked through the API.
    pub fn sessions_revoked_at(&self, tenant_id: &str, user_id: &str) -> Option<DateTime<Utc>> {
        let i = self.state.find_tenant(tenant_id)?;
        self.state.respond.revoked_at(i, user_id)
    }

    /// Stops the server (open connections get two seconds to finish).
    pub async fn shutdown(self) {
        let stop = lock(&self.stop).take();
        if let Some((tx, mut task)) = stop {
            let _ = tx.send(());
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
