//! A local simulator of the Microsoft identity platform, Microsoft Graph and the Office 365
//! Management Activity API for every national cloud, for tests and `itdr sim`.
//!
//! One axum server on a loopback address plays every Microsoft login, Graph and Management
//! Activity host; it picks
//! the host from the `Host` header, as the client's endpoint override sends it. It issues
//! app-only tokens (client secret or certificate assertion), serves seeded, deterministic
//! sign-in and directory-audit logs with Microsoft's paging, filtering, retention, licence
//! rules, ingestion delay and reports throttling, answers the OpenID configuration, licence and
//! MFA-registration endpoints, serves the Unified Audit Log in content blobs that become
//! available late and out of order (subscriptions, paged listings, expiry, `AF429`
//! throttling, audit log off; see `management.rs`), and injects faults on demand. Simulated time comes from an
//! injected [`itdr_shared::clock::Clock`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use itdr_shared::{Cloud, clock::ManualClock};
//! use itdr_sim::{SimConfig, Simulator, TenantSpec};
//! let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
//! let cfg = SimConfig::new(42, vec![TenantSpec::new(0, Cloud::Global)]);
//! let sim = Simulator::start(cfg, clock, "127.0.0.1:0".parse().map_err(std::io::Error::other)?).await?;
//! println!("endpoint override: {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod audit_gen;
mod auth;
mod catalog;
mod config;
mod filter;
mod generator;
mod graph;
mod inventory;
mod management;
mod openid;
mod respond;
mod scenarios;
mod server;
mod throttle;

pub use auth::cert_thumbprint_sha256;
pub use config::{
    DEFAULT_ROLES, DelayModel, Faults, ManagementConfig, SimConfig, TenantSpec, ThrottleConfig,
};
pub use generator::{
    GroundTruthStream, SIGNIN_EVENT_TYPES, TruthEvent, activity_factor, utc_offset_hours,
};
pub use inventory::{GLOBAL_ADMIN, InvUser, Inventory};
pub use scenarios::{Problem, Scenario, onboarding_scenarios};
pub use server::{Counters, LoggedRequest, SimHandle, Simulator};
