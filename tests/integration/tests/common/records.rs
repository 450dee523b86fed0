//! Realistic Graph records from the simulator's generator, fetched the way the poller fetches
//! them (paged Graph calls against the in-process simulator), for the normalization tests and
//! the normalization bench.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_shared::client::{ApiClient, Bucket, Rate, Tenant};
use itdr_shared::clock::{ManualClock, SharedClock};
use itdr_shared::source::graph_logs::filter_time;
use itdr_shared::{Api, Cloud};
use itdr_sim::{DelayModel, SimConfig, Simulator, TenantSpec, ThrottleConfig};
use serde_json::Value;

/// Raw records of both streams.
pub struct Records {
    /// Sign-ins: beta (every event type) and v1.0, from tenants with and without P2.
    pub signins: Vec<Value>,
    /// Directory audits.
    pub audits: Vec<Value>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

/// About `per_stream` records of each stream (a little more: whole pages), from four tenants
/// (commercial, GCC High; with and without P2), over the hours before the simulator's start.
pub async fn fetch(per_stream: usize) -> Records {
    let clouds = [Cloud::Global, Cloud::GccHigh, Cloud::Global, Cloud::Gcc];
    let hours = 6.0;
    let mut specs: Vec<TenantSpec> = clouds
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut s = TenantSpec::new(u32::try_from(i).unwrap(), *c);
            s.has_p2 = i % 2 == 0;
            s.users = 400;
            s
        })
        .collect();
    // Per tenant and stream; beta and v1.0 sign-ins each get half.
    let per_tenant = (per_stream / specs.len()).max(1) as f64;
    for s in &mut specs {
        s.signins_per_hour = per_tenant * 1.15 / hours;
        s.audits_per_hour = per_tenant * 1.15 / hours;
    }
    let mut cfg = SimConfig::new(7, specs.clone());
    cfg.delay = DelayModel::none();
    cfg.throttle = ThrottleConfig::disabled();
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock);
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(cfg, shared.clone(), bind).await.unwrap();
    // The manual clock never moves, so pacing must not wait: a rate nobody reaches.
    let stack = sim
        .stack_builder(shared)
        .request_timeout(Duration::from_secs(60))
        .reports_per_tenant(Rate {
            requests: 1_000_000,
            window: Duration::from_secs(1),
        })
        .build()
        .unwrap();
    for s in &specs {
        stack.tokens.set(&s.tenant_id, s.app_credential());
    }
    let client = stack.client;
    let now = t0();
    let lower = now - TimeDelta::seconds((hours * 3600.0) as i64);
    let deadline = now + TimeDelta::hours(24);
    let mut records = Records {
        signins: Vec::new(),
        audits: Vec::new(),
    };
    for s in &specs {
        let t = Tenant {
            id: s.tenant_id.clone(),
            cloud: s.cloud,
        };
        let window = |field: &str| {
            format!(
                "{field} ge {} and {field} le {}",
                filter_time(lower),
                filter_time(now)
            )
        };
        let mut queries = vec![(
            "v1.0/auditLogs/directoryAudits",
            window("activityDateTime"),
            true,
        )];
        queries.push((
            "beta/auditLogs/signIns",
            format!(
                "{} and signInEventTypes/any(t: t ne 'interactiveUser')",
                window("createdDateTime")
            ),
            false,
        ));
        if s.cloud.signins_v1_available() {
            queries.push(("v1.0/auditLogs/signIns", window("createdDateTime"), false));
        } else {
            queries.push(("beta/auditLogs/signIns", window("createdDateTime"), false));
        }
        for (path, filter, audits) in queries {
            let url = ApiClient::url(
                &t,
                Api::Graph,
                path,
                &[("$filter", filter), ("$top", "1000".into())],
            )
            .unwrap();
            let got = client
                .get_all(&t, Bucket::Reports, &url, deadline)
                .await
                .unwrap();
            if audits {
                records.audits.extend(got);
            } else {
                records.signins.extend(got);
            }
        }
    }
    sim.shutdown().await;
    records
}

/// Every hand-written Graph fixture of a stream directory (`signins`, `directory_audits`).
pub fn fixtures(stream_dir: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/graph")
        .join(stream_dir);
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}
