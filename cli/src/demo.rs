//! The simulated world of a `[simulator]` run: the Microsoft simulator, its tenants and its
//! ground truth, as much of it as `itdr run` needs. Built with the `sim` feature (the default);
//! without it `Demo` has no values, so a `[simulator]` section is refused at startup with a
//! clear error and every other path compiles unchanged.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use itdr_shared::Stream;
use itdr_shared::auth::AppCredential;
use itdr_shared::clock::SharedClock;
use itdr_shared::cursor::{Cursor, CursorConfig};
use itdr_shared::source::UnifiedAuditConfig;

use crate::config::SimulatorConfig;

/// One simulated tenant, as the run registers it.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
#[derive(Debug, Clone)]
pub struct DemoTenant {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Its verified domain.
    pub domain: String,
    /// Its national cloud.
    pub cloud: itdr_shared::Cloud,
    /// The simulated app's credential for its cloud group.
    pub credential: AppCredential,
}

/// What the summary compares for one (tenant, stream).
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub struct Compare<'a> {
    /// Tenant GUID.
    pub tenant_id: &'a str,
    /// The stream.
    pub stream: Stream,
    /// Whether the tenant reads non-interactive sign-ins.
    pub include_noninteractive: bool,
    /// The unified audit content types read.
    pub unified_audit: &'a UnifiedAuditConfig,
    /// The stream's origin (its first poll's reach).
    pub origin: DateTime<Utc>,
    /// The stream's cursor at the end of the run: what it promises.
    pub cursor: &'a Cursor,
    /// The cursor rules the run used.
    pub cursor_config: &'a CursorConfig,
    /// The start of the run: events visible before it are history, read by the first poll,
    /// and do not count for freshness (as the poller's own freshness leaves out backfills).
    pub start: DateTime<Utc>,
    /// The end of the run.
    pub end: DateTime<Utc>,
}

/// When each delivered event, by (tenant, source id), reached the events file (the end of the
/// cycle that wrote it).
pub type Deliveries = HashMap<(String, String), DateTime<Utc>>;

/// Generated, pending (not yet promised) and lost events of one (tenant, stream), and how
/// long the delivered ones took from becoming visible at Microsoft.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Events the simulator generated in the stream's reach and made visible by the end.
    pub generated: usize,
    /// Not delivered, and not yet promised (visible after the last sweep started).
    pub pending: usize,
    /// Not delivered although promised: lost.
    pub lost: usize,
    /// Seconds from becoming visible at Microsoft to delivery, per delivered event (its first
    /// delivery).
    pub from_visible_secs: Vec<u32>,
}

#[cfg(feature = "sim")]
mod imp {
    use std::net::SocketAddr;

    use anyhow::Context;
    use itdr_sim::{GroundTruthStream, SimConfig, SimHandle, Simulator, TenantSpec};

    use super::*;

    /// The running simulator and its tenants.
    pub struct Demo {
        handle: SimHandle,
        tenants: Vec<DemoTenant>,
        specs: Vec<TenantSpec>,
    }

    impl Demo {
        /// Starts the simulator on a loopback port with `cfg`'s tenants.
        pub async fn start(cfg: &SimulatorConfig, clock: SharedClock) -> anyhow::Result<Demo> {
            let specs: Vec<TenantSpec> = cfg
                .tenants
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut spec = TenantSpec::new(u32::try_from(i).unwrap_or(0), t.cloud);
                    spec.signins_per_hour = t.signins_per_hour;
                    spec.audits_per_hour = t.audits_per_hour;
                    spec.has_p1 = t.p1;
                    spec.has_p2 = t.p2;
                    spec
                })
                .collect();
            let tenants = specs
                .iter()
                .map(|s| DemoTenant {
                    tenant_id: s.tenant_id.clone(),
                    domain: s.domain.clone(),
                    cloud: s.cloud,
                    credential: s.app_credential(),
                })
                .collect();
            let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
            let handle = Simulator::start(SimConfig::new(cfg.seed, specs.clone()), clock, bind)
                .await
                .context("cannot start the simulator")?;
            Ok(Demo {
                handle,
                tenants,
                specs,
            })
        }

        /// The demo's compromise in `tenant`: the owner of a malicious rule forwarding mail
        /// outside, once the customer granted the write permissions containment needs.
        /// `None` when the tenant has no such rule.
        pub fn compromised_user_with_write_consent(&self, tenant: &str) -> Option<String> {
            let spec = self.specs.iter().find(|s| s.tenant_id == tenant)?;
            let inv = self.handle.inventory(tenant)?;
            let (owner, _) = inv.malicious_rules().into_iter().find(|(u, r)| {
                inv.rules[u].iter().any(|x| {
                    x["id"] == serde_json::json!(r) && x["actions"].get("forwardTo").is_some()
                })
            })?;
            let mut roles = spec.roles.clone();
            roles.extend(
                ["User.RevokeSessions.All", "MailboxSettings.ReadWrite"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            self.handle.set_roles(tenant, roles);
            Some(owner)
        }

        /// The simulator's base URL (every Microsoft host is routed there).
        pub fn base_url(&self) -> String {
            self.handle.base_url()
        }

        /// The simulated tenants, in the configuration's order.
        pub fn tenants(&self) -> &[DemoTenant] {
            &self.tenants
        }

        /// Revokes the admin consent of `tenant`.
        pub fn revoke_consent(&self, tenant: &str) {
            self.handle.revoke_consent(tenant);
        }

        /// 429s the simulator sent `tenant` for its per-tenant limit.
        pub fn throttled_tenant_level(&self, tenant: &str) -> u64 {
            self.handle
                .counters()
                .throttled_tenant_level
                .get(tenant)
                .copied()
                .unwrap_or(0)
        }

        /// 429s the simulator sent for the app-wide limit.
        pub fn throttled_app_level(&self) -> u64 {
            self.handle.counters().throttled_app_level
        }

        /// Compares what was delivered (`delivered`: (tenant, source id)) with the ground truth.
        pub fn compare(&self, c: &Compare<'_>, delivered: &Deliveries) -> Comparison {
            let gts = ground_truth_streams(c.stream, c.unified_audit);
            // The stream's window axis: event time for Graph, the blob's availability
            // (`contentCreated`) for the Management Activity API.
            let axis = |e: &itdr_sim::TruthEvent| e.content_created.unwrap_or(e.event_time);
            let truth: Vec<_> = gts
                .iter()
                .flat_map(|gt| self.handle.ground_truth(c.tenant_id, *gt, c.end))
                .filter(|e| axis(e) >= c.origin && e.visible_at <= c.end)
                .filter(|e| {
                    c.stream != Stream::Signins
                        || c.include_noninteractive
                        || e.event_type == "interactiveUser"
                })
                .collect();
            let (mut pending, mut lost) = (0, 0);
            let mut from_visible_secs = Vec::new();
            for e in &truth {
                if let Some(at) = delivered.get(&(c.tenant_id.to_string(), e.id.clone())) {
                    if e.visible_at >= c.start {
                        let secs = (*at - e.visible_at).num_seconds().max(0);
                        from_visible_secs.push(u32::try_from(secs).unwrap_or(u32::MAX));
                    }
                    continue;
                }
                // The promise: an event is delivered by the first sweep that starts after it
                // became visible and reaches back far enough (`cursor.md`).
                let promised = c.cursor.promises(axis(e), e.visible_at, c.cursor_config);
                if promised {
                    lost += 1;
                } else {
                    pending += 1;
                }
            }
            Comparison {
                generated: truth.len(),
                pending,
                lost,
                from_visible_secs,
            }
        }

        /// Stops the simulator.
        pub async fn shutdown(self) {
            self.handle.shutdown().await;
        }
    }

    /// The simulator's ground truth behind a stream: its Graph log, or the unified audit
    /// log's content types the deployment reads. Inventory streams have none.
    fn ground_truth_streams(
        stream: Stream,
        unified_audit: &UnifiedAuditConfig,
    ) -> Vec<GroundTruthStream> {
        match stream {
            Stream::Signins => vec![GroundTruthStream::SignIns],
            Stream::DirectoryAudits => vec![GroundTruthStream::DirectoryAudits],
            Stream::UnifiedAudit => GroundTruthStream::UNIFIED_AUDIT
                .into_iter()
                .filter(|gt| {
                    unified_audit
                        .content_types()
                        .iter()
                        .any(|ct| gt.content_type() == Some(ct.as_str()))
                })
                .collect(),
            Stream::Users
            | Stream::Apps
            | Stream::Roles
            | Stream::Mfa
            | Stream::ConditionalAccess
            | Stream::InboxRules => Vec::new(),
        }
    }
}

#[cfg(not(feature = "sim"))]
mod imp {
    use super::*;

    /// No simulator in this build: no value of this type exists.
    pub enum Demo {}

    impl Demo {
        /// Refuses: this build has no simulator.
        pub async fn start(_cfg: &SimulatorConfig, _clock: SharedClock) -> anyhow::Result<Demo> {
            Err(anyhow::anyhow!(
                "[simulator] needs the simulator, and this itdr was built without it (cargo feature `sim`)"
            ))
        }

        /// Unreachable: no value exists.
        pub fn base_url(&self) -> String {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn tenants(&self) -> &[DemoTenant] {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn revoke_consent(&self, _tenant: &str) {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn throttled_tenant_level(&self, _tenant: &str) -> u64 {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn throttled_app_level(&self) -> u64 {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn compare(&self, _c: &Compare<'_>, _d: &Deliveries) -> Comparison {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn compromised_user_with_write_consent(&self, _tenant: &str) -> Option<String> {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub async fn shutdown(self) {
            match self {}
        }
    }
}

pub use imp::Demo;
