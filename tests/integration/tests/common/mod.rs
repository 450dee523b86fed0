//! Shared set-up for the integration tests: a simulator on a manual clock and an API client
//! pointed at it through the loopback endpoint override.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ocsf;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itdr_shared::auth::PerTenantTokens;
use itdr_shared::client::{ApiClient, Rate};
use itdr_shared::clock::{ManualClock, SharedClock};
use itdr_sim::{SimConfig, SimHandle, Simulator, TenantSpec};

/// Our own tenant id, sent as `PublisherIdentifier` on every Management Activity request.
pub const PUBLISHER_ID: &str = "0a5f3e42-7c1d-4b8e-9f60-5d2c8e4a1b37";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

pub struct Env {
    pub sim: SimHandle,
    pub clock: ManualClock,
    pub client: Arc<ApiClient>,
    pub tokens: Arc<PerTenantTokens>,
    pub specs: Vec<TenantSpec>,
}

pub async fn start(cfg: SimConfig, tenant_rate: Rate) -> Env {
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock.clone());
    let specs = cfg.tenants.clone();
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(cfg, shared.clone(), bind).await.unwrap();
    let stack = sim
        .stack_builder(shared)
        .reports_per_tenant(tenant_rate)
        .publisher_id(Some(PUBLISHER_ID.to_string()))
        .jitter_seed(11)
        .build()
        .unwrap();
    for s in &specs {
        stack.tokens.set(&s.tenant_id, s.app_credential());
    }
    Env {
        sim,
        clock,
        client: stack.client,
        tokens: stack.tokens,
        specs,
    }
}
