//! Shared set-up for the integration tests: a simulator on a manual clock and a Graph client
//! pointed at it through the loopback endpoint override.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ocsf;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use itdr_shared::auth::{AppCredential, PerTenantTokens, SecretString, TokenClient};
use itdr_shared::clock::{ManualClock, SharedClock};
use itdr_shared::graph::{GraphClient, Pacer, Rate};
use itdr_shared::http::{EndpointOverride, Transport};
use itdr_sim::{SimConfig, SimHandle, Simulator, TenantSpec};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

pub struct Env {
    pub sim: SimHandle,
    pub clock: ManualClock,
    pub graph: Arc<GraphClient>,
    pub tokens: Arc<PerTenantTokens>,
    pub specs: Vec<TenantSpec>,
}

pub async fn start(cfg: SimConfig, tenant_rate: Rate) -> Env {
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock.clone());
    let specs = cfg.tenants.clone();
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(cfg, shared.clone(), bind).await.unwrap();
    let transport = Transport::new(
        Duration::from_secs(30),
        Some(EndpointOverride::parse(&sim.base_url()).unwrap()),
    )
    .unwrap();
    let tokens = Arc::new(PerTenantTokens::new(TokenClient::new(
        transport.clone(),
        shared.clone(),
    )));
    for s in &specs {
        tokens.set(
            &s.tenant_id,
            AppCredential::with_secret(
                s.app_id.clone(),
                SecretString::new(s.client_secret.clone()),
            ),
        );
    }
    let pacer = Pacer::new(shared.clone(), tenant_rate, None);
    let graph =
        Arc::new(GraphClient::new(transport, tokens.clone(), shared, pacer).with_jitter_seed(11));
    Env {
        sim,
        clock,
        graph,
        tokens,
        specs,
    }
}
