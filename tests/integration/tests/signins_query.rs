//! The sign-ins stream reads every sign-in type with one Graph query per window (one request
//! per idle poll), keeps the interactive and the other types in their own seen sets, and
//! falls back to the two separate queries when Graph refuses the combined filter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::cursor::{Cursor, CursorConfig};
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::store::CursorStore;
use itdr_shared::{Cloud, Stream};
use itdr_sim::{Faults, GroundTruthStream, SimConfig, TenantSpec};

struct Setup {
    env: common::Env,
    ctx: PollContext,
    sink: Arc<MemorySink>,
    store: SqliteStore,
    job: PollJob,
}

async fn setup(cloud: Cloud, signins_per_hour: f64) -> Setup {
    let mut spec = TenantSpec::new(0, cloud);
    spec.signins_per_hour = signins_per_hour;
    spec.audits_per_hour = 0.0;
    let env = common::start(
        SimConfig::new(7, vec![spec.clone()]),
        Rate::REPORTS_PER_TENANT,
    )
    .await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig {
            cursor: CursorConfig {
                initial_lookback_secs: 3600,
                ..CursorConfig::default()
            },
            ..PollConfig::default()
        }
        .validated()
        .unwrap(),
        hook: None,
    };
    let job = PollJob {
        tenant_id: spec.tenant_id.clone(),
        cloud,
        stream: Stream::Signins,
        include_noninteractive: true,
        retention_days: None,
    };
    Setup {
        env,
        ctx,
        sink,
        store,
        job,
    }
}

impl Setup {
    /// Polls once, then moves the clock 5 minutes on; returns the sign-in requests it made.
    async fn cycle(&self) -> Vec<itdr_sim::LoggedRequest> {
        let before = self.env.sim.request_log().len();
        let start = self.env.clock.now();
        poll(&self.ctx, &self.job, start + TimeDelta::minutes(4))
            .await
            .unwrap();
        self.env.clock.advance_to(start + TimeDelta::minutes(5));
        self.env.sim.request_log()[before..]
            .iter()
            .filter(|r| r.path.ends_with("/auditLogs/signIns"))
            .cloned()
            .collect()
    }

    /// Delivered copies per source id.
    fn delivered(&self) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for e in self.sink.events() {
            let id = e["metadata"]["original_event_uid"]
                .as_str()
                .unwrap()
                .to_string();
            *out.entry(id).or_default() += 1;
        }
        out
    }

    /// Every sign-in (all types) at or after `from` that became visible within 20 minutes
    /// and a poll ago (so a regular pass, which reaches 30 minutes back, read it) was
    /// delivered once.
    fn assert_all_delivered_once(&self, from: chrono::DateTime<chrono::Utc>) {
        let now = self.env.clock.now();
        let delivered = self.delivered();
        let truth: Vec<_> = self
            .env
            .sim
            .ground_truth(&self.job.tenant_id, GroundTruthStream::SignIns, now)
            .into_iter()
            .filter(|e| {
                e.event_time >= from
                    && e.visible_at <= now - TimeDelta::minutes(6)
                    && e.visible_at - e.event_time <= TimeDelta::minutes(20)
            })
            .collect();
        let types: std::collections::BTreeSet<&str> =
            truth.iter().map(|e| e.event_type.as_str()).collect();
        assert!(
            types.len() >= 3,
            "several sign-in types were generated: {types:?}"
        );
        for e in &truth {
            assert_eq!(
                delivered.get(&e.id),
                Some(&1),
                "{} ({}) delivered once",
                e.id,
                e.event_type
            );
        }
    }

    async fn cursor(&self) -> Cursor {
        let c = self
            .store
            .load(&self.job.tenant_id, Stream::Signins)
            .await
            .unwrap()
            .unwrap();
        Cursor::from_doc(&c.doc).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sign_in_type_comes_from_one_query_and_an_idle_poll_costs_one_request() {
    let s = setup(Cloud::Global, 600.0).await;
    let first = s.cycle().await;
    assert!(
        first.iter().all(|r| r.path.starts_with("/beta/")
            && r.query.contains("nonInteractiveUser")
            && r.query.contains("interactiveUser")),
        "one beta query for every type: {:?}",
        first.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    for _ in 0..5 {
        s.cycle().await;
    }
    s.assert_all_delivered_once(s.cursor().await.origin.unwrap());
    // Each type's records are in the seen set the two separate queries used.
    let c = s.cursor().await;
    for set in ["signins.interactive", "signins.other"] {
        let n: u32 = c.sources[set].buckets.values().map(|b| b.count).sum();
        assert!(n > 0, "{set} holds what was emitted");
    }
    assert!(!c.sources.contains_key("signins"));

    // A quiet tenant: one request per regular poll (no sweep is due within the hour).
    let quiet = setup(Cloud::Global, 0.0).await;
    quiet.cycle().await;
    for _ in 0..6 {
        let requests = quiet.cycle().await;
        assert_eq!(requests.len(), 1, "one request per idle poll: {requests:?}");
        assert_eq!(requests[0].status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_combined_filter_falls_back_to_two_queries_without_losing_a_window() {
    // GCC High, so this process's memory of the refusal does not touch the other test.
    let s = setup(Cloud::GccHigh, 600.0).await;
    s.env.sim.set_faults(
        &s.job.tenant_id,
        Faults {
            refuse_or_in_any: true,
            ..Faults::default()
        },
    );
    let first = s.cycle().await;
    assert_eq!(first[0].status, 400, "the combined filter was tried first");
    assert!(
        first[1..].iter().all(|r| r.status == 200
            && !r
                .query
                .replace('+', " ")
                .replace("%20", " ")
                .contains(" or ")),
        "then the two queries: {:?}",
        first
            .iter()
            .map(|r| (&r.path, r.status))
            .collect::<Vec<_>>()
    );
    for _ in 0..5 {
        let requests = s.cycle().await;
        assert!(
            requests.iter().all(|r| r.status == 200),
            "the refusal is remembered: {requests:?}"
        );
    }
    s.assert_all_delivered_once(s.cursor().await.origin.unwrap());
    let c = s.cursor().await;
    for set in ["signins.interactive", "signins.other"] {
        assert!(c.sources.contains_key(set), "{set}");
    }
}
