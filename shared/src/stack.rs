//! The one builder of the client stack: HTTP transport → token client → per-tenant app
//! credentials → API client with its pacer and budgets. The Lambda pollers, the CLI, preflight,
//! the tests and the benches all build it here, so they cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{PerTenantTokens, TokenClient};
use crate::client::{ApiClient, Backoff, Pacer, Rate, RequestBudget};
use crate::clock::SharedClock;
use crate::http::{EndpointOverride, Transport, TransportError};

/// Default per-request timeout of Microsoft calls (cut to the time left before a deadline).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the stack is made of.
#[derive(Clone)]
pub struct ClientStack {
    /// The clock every wait goes through.
    pub clock: SharedClock,
    /// The HTTP transport (Microsoft hosts only; a loopback override in tests).
    pub transport: Transport,
    /// App credentials per tenant, and the caching token client behind them.
    pub tokens: Arc<PerTenantTokens>,
    /// The client of Microsoft's APIs.
    pub client: Arc<ApiClient>,
}

impl std::fmt::Debug for ClientStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStack").finish_non_exhaustive()
    }
}

/// Builds a [`ClientStack`].
#[derive(Debug)]
pub struct StackBuilder {
    clock: SharedClock,
    endpoint_override: Option<EndpointOverride>,
    request_timeout: Duration,
    reports_per_tenant: Rate,
    app_rate: Option<Rate>,
    budget: Option<Arc<dyn RequestBudget>>,
    backoff: Option<Backoff>,
    jitter_seed: Option<u64>,
    publisher_id: Option<String>,
}

impl StackBuilder {
    /// A stack on `clock` with the paced per-tenant reporting rate (Microsoft's 5 per 10 s
    /// with a margin), no process-wide window, the default timeout and backoff, and real
    /// Microsoft endpoints.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            endpoint_override: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            reports_per_tenant: Rate::REPORTS_PER_TENANT_PACED,
            app_rate: None,
            budget: None,
            backoff: None,
            jitter_seed: None,
            publisher_id: None,
        }
    }

    /// Our own tenant GUID, sent as `PublisherIdentifier` on every Management Activity API
    /// request (Microsoft's rate limits are counted by it).
    pub fn publisher_id(mut self, publisher_id: Option<String>) -> Self {
        self.publisher_id = publisher_id;
        self
    }

    /// Sends Microsoft's hosts to a loopback simulator instead (tests, local runs).
    pub fn endpoint_override(mut self, o: Option<EndpointOverride>) -> Self {
        self.endpoint_override = o;
        self
    }

    /// The per-request timeout.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// The per-tenant rate of the reporting bucket.
    pub fn reports_per_tenant(mut self, rate: Rate) -> Self {
        self.reports_per_tenant = rate;
        self
    }

    /// A process-wide window on the reporting bucket (this process's share of the app-wide
    /// limit), with a reserve that sweeps and backfills leave to regular passes.
    pub fn app_rate(mut self, rate: Option<Rate>) -> Self {
        self.app_rate = rate;
        self
    }

    /// A fleet-wide budget consulted before every reporting request (and blocked by an
    /// app-scoped 429).
    pub fn budget(mut self, budget: Arc<dyn RequestBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The retry policy.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Seeds the retry jitter (tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Builds the stack.
    pub fn build(self) -> Result<ClientStack, TransportError> {
        let transport = Transport::new(self.request_timeout, self.endpoint_override)?;
        let tokens = Arc::new(PerTenantTokens::new(TokenClient::new(
            transport.clone(),
            self.clock.clone(),
        )));
        let pacer = Pacer::new(self.clock.clone(), self.reports_per_tenant, self.app_rate);
        let mut client =
            ApiClient::new(transport.clone(), tokens.clone(), self.clock.clone(), pacer);
        if let Some(b) = self.budget {
            client = client.with_budget(b);
        }
        if let Some(b) = self.backoff {
            client = client.with_backoff(b);
        }
        if let Some(seed) = self.jitter_seed {
            client = client.with_jitter_seed(seed);
        }
        client = client.with_publisher_id(self.publisher_id);
        Ok(ClientStack {
            clock: self.clock,
            transport,
            tokens,
            client: Arc::new(client),
        })
    }
}
