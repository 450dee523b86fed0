//! Page-by-page delivery: a slice of many pages is delivered and committed one page at a time,
//! a crash between two pages costs nothing already delivered (the next poll continues from the
//! stored paging link), and a stored link Microsoft no longer accepts makes the slice be read
//! again, narrower, losing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::cursor::{Cursor, CursorConfig, Pass};
use itdr_shared::embedded::{MemoryDeadLetters, SqliteStore};
use itdr_shared::poll::{Crash, PollConfig, PollContext, PollJob, Step, StepHook, poll};
use itdr_shared::store::{CursorStore, Envelope, EventSink, SinkError};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{DelayModel, Faults, GroundTruthStream, SimConfig, SimHandle, TenantSpec};

/// Records every delivery: how many events each `send` carried, and the events.
#[derive(Default)]
struct CountingSink {
    sends: Mutex<Vec<usize>>,
    events: Mutex<Vec<serde_json::Value>>,
}

#[async_trait]
impl EventSink for CountingSink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let n = envelopes.iter().map(|e| e.events.len()).sum();
        self.sends.lock().unwrap().push(n);
        let mut events = self.events.lock().unwrap();
        for e in envelopes {
            events.extend(e.events.iter().cloned());
        }
        Ok(())
    }
}

impl CountingSink {
    /// How many times each source record was delivered.
    fn deliveries(&self) -> HashMap<String, u32> {
        let mut n = HashMap::new();
        for e in self.events.lock().unwrap().iter() {
            if let Some(id) = e["metadata"]["original_event_uid"].as_str() {
                *n.entry(id.to_string()).or_insert(0) += 1;
            }
        }
        n
    }
}

/// Crashes at the `n`-th commit of the poll (1-based), once.
struct CrashAtCommit {
    n: u32,
    seen: Mutex<u32>,
}

impl StepHook for CrashAtCommit {
    fn at(&self, step: Step) -> Result<(), Crash> {
        if step == Step::Committed {
            let mut seen = self.seen.lock().unwrap();
            *seen += 1;
            if *seen == self.n {
                return Err(Crash(step));
            }
        }
        Ok(())
    }
}

/// After the first delivery of the poll, every Graph request of the tenant fails with a 5xx.
struct FailAfterFirstPage {
    sim: SimHandle,
    tenant: String,
    armed: Mutex<bool>,
}

impl StepHook for FailAfterFirstPage {
    fn at(&self, step: Step) -> Result<(), Crash> {
        let mut armed = self.armed.lock().unwrap();
        if step == Step::Sent && !*armed {
            *armed = true;
            self.sim.set_faults(
                &self.tenant,
                Faults {
                    http_5xx_burst: 10_000,
                    ..Faults::default()
                },
            );
        }
        Ok(())
    }
}

fn open_links(p: &Option<Pass>) -> Vec<String> {
    p.as_ref()
        .and_then(|p| p.open.as_ref())
        .map(|o| o.pending.values().flatten().cloned().collect())
        .unwrap_or_default()
}

struct Case {
    env: common::Env,
    store: SqliteStore,
    sink: Arc<CountingSink>,
    job: PollJob,
    cfg: PollConfig,
}

/// A tenant with 2,000 sign-ins an hour and no ingestion delay, polled with pages of 50: the
/// first poll's regular pass (its last 30 minutes, several hundred sign-ins of every type) takes many pages.
async fn case(seed: u64) -> Case {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 2000.0;
    let mut sim = SimConfig::new(seed, vec![spec]);
    sim.delay = DelayModel::none();
    let env = common::start(sim, Rate::REPORTS_PER_TENANT).await;
    let job = PollJob {
        tenant_id: env.specs[0].tenant_id.clone(),
        cloud: Cloud::Global,
        stream: Stream::Signins,
        include_noninteractive: true,
        retention_days: None,
    };
    let cfg = PollConfig {
        page_size: 50,
        cursor: CursorConfig {
            initial_lookback_secs: 1800,
            ..CursorConfig::default()
        },
        ..PollConfig::default()
    };
    Case {
        env,
        store: SqliteStore::in_memory().unwrap(),
        sink: Arc::new(CountingSink::default()),
        job,
        cfg,
    }
}

impl Case {
    fn context(&self, hook: Option<Arc<dyn StepHook>>) -> PollContext {
        PollContext {
            client: self.env.client.clone(),
            cursors: Arc::new(self.store.clone()),
            sink: self.sink.clone(),
            dead_letters: Arc::new(MemoryDeadLetters::new()),
            config: self.cfg.clone().validated().unwrap(),
            hook,
        }
    }

    /// A poll that crashes after its `n`-th commit; whether it crashed.
    async fn poll_crashing_at_commit(&self, n: u32) -> bool {
        let hook = Arc::new(CrashAtCommit {
            n,
            seen: Mutex::new(0),
        });
        poll(
            &self.context(Some(hook)),
            &self.job,
            self.env.clock.now() + TimeDelta::minutes(4),
        )
        .await
        .is_err()
    }

    /// A poll without crashes, which must complete every pass; when it started.
    async fn poll_to_the_end(&self) -> chrono::DateTime<chrono::Utc> {
        let started = self.env.clock.now();
        let ok = poll(
            &self.context(None),
            &self.job,
            started + TimeDelta::minutes(4),
        )
        .await
        .unwrap();
        assert!(ok.pass_complete, "{ok:?}");
        started
    }

    async fn cursor(&self) -> (Cursor, u64) {
        let s = self
            .store
            .load(&self.job.tenant_id, self.job.stream)
            .await
            .unwrap()
            .unwrap();
        (Cursor::from_doc(&s.doc).unwrap(), s.version)
    }

    /// Every sign-in from the stream's origin that existed at `until`.
    fn truth(
        &self,
        origin: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> HashSet<String> {
        self.env
            .sim
            .ground_truth(&self.job.tenant_id, GroundTruthStream::SignIns, until)
            .into_iter()
            .filter(|e| e.event_time >= origin)
            .map(|e| e.id)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_pages_of_a_slice_loses_nothing_and_repeats_nothing() {
    let c = case(31).await;
    c.env.clock.advance(std::time::Duration::from_secs(3600));
    // Crash after the third page's commit.
    assert!(
        c.poll_crashing_at_commit(3).await,
        "the hook crashed the poll"
    );
    let (cursor, _) = c.cursor().await;
    let links = open_links(&cursor.pass);
    assert_eq!(links.len(), 1, "the slice is held open: {:?}", cursor.pass);
    assert!(
        links[0].contains("skiptoken"),
        "where the sign-ins query continues: {}",
        links[0]
    );
    let delivered_before = c.sink.deliveries().len();
    assert!(
        delivered_before >= 40,
        "pages before the crash were delivered"
    );

    // The next poll continues the slice, then the rest of the passes.
    let resumed_at = c.poll_to_the_end().await;
    let origin = cursor.origin.unwrap();
    let truth = c.truth(origin, resumed_at);
    let deliveries = c.sink.deliveries();
    let missing: Vec<_> = truth
        .iter()
        .filter(|id| !deliveries.contains_key(*id))
        .collect();
    assert!(truth.len() > 200, "a slice of many pages ({})", truth.len());
    assert!(
        missing.is_empty(),
        "{} of {} lost",
        missing.len(),
        truth.len()
    );
    let repeated: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "pages committed before the crash are not read again: {} repeated",
        repeated.len()
    );
    // Page by page: no delivery carried more than one page of each sign-in query.
    let sends = c.sink.sends.lock().unwrap().clone();
    assert!(sends.len() >= truth.len() / 50, "{sends:?}");
    assert!(sends.iter().all(|n| *n <= 50), "{sends:?}");
    c.env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_link_that_is_refused_reads_the_slice_again_without_loss() {
    let c = case(32).await;
    c.env.clock.advance(std::time::Duration::from_secs(3600));
    assert!(
        c.poll_crashing_at_commit(2).await,
        "the hook crashed the poll"
    );
    // The stored link goes stale: its token is no longer accepted (HTTP 400).
    let (mut cursor, version) = c.cursor().await;
    let open = cursor
        .pass
        .as_mut()
        .and_then(|p| p.open.as_mut())
        .expect("a slice held open");
    let mut stale = 0;
    for link in open.pending.values_mut().flatten() {
        let at = link.find("skiptoken=").expect("a paging link") + "skiptoken=".len();
        link.replace_range(at.., "expired");
        stale += 1;
    }
    assert_eq!(stale, 1);
    c.store
        .commit(
            &c.job.tenant_id,
            c.job.stream,
            Some(version),
            &cursor.to_doc().unwrap(),
        )
        .await
        .unwrap();

    let resumed_at = c.poll_to_the_end().await;
    let truth = c.truth(cursor.origin.unwrap(), resumed_at);
    let deliveries = c.sink.deliveries();
    let missing = truth
        .iter()
        .filter(|id| !deliveries.contains_key(*id))
        .count();
    assert_eq!(missing, 0, "nothing lost of {}", truth.len());
    // The slice was cut again, narrower, from its lower bound; the seen set kept what was
    // delivered from being delivered twice.
    let repeated = deliveries.values().filter(|n| **n > 1).count();
    assert_eq!(repeated, 0);
    let (after, _) = c.cursor().await;
    assert!(open_links(&after.pass).is_empty());
    c.env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_delivered_pages_before_5xx_used_up_its_time_did_work() {
    let c = case(33).await;
    c.env.clock.advance(std::time::Duration::from_secs(3600));
    let hook = Arc::new(FailAfterFirstPage {
        sim: c.env.sim.clone(),
        tenant: c.job.tenant_id.clone(),
        armed: Mutex::new(false),
    });
    let out = poll(
        &c.context(Some(hook)),
        &c.job,
        c.env.clock.now() + TimeDelta::seconds(60),
    )
    .await
    .expect("pages were delivered: the poll worked, and stopped at its deadline");
    assert!(out.stopped_at_deadline, "{out:?}");
    assert!(
        out.emitted > 0 && out.emitted <= 50,
        "one page: {}",
        out.emitted
    );
    let (cursor, _) = c.cursor().await;
    assert_eq!(
        open_links(&cursor.pass).len(),
        1,
        "the slice waits where it stopped"
    );
    // With 5xx from the first request, nothing is delivered: the poll did not work, and says
    // why (as before page-by-page delivery).
    let fresh = case(34).await;
    fresh
        .env
        .clock
        .advance(std::time::Duration::from_secs(3600));
    fresh.env.sim.set_faults(
        &fresh.job.tenant_id,
        Faults {
            http_5xx_burst: 10_000,
            ..Faults::default()
        },
    );
    let failed = poll(
        &fresh.context(None),
        &fresh.job,
        fresh.env.clock.now() + TimeDelta::seconds(60),
    )
    .await;
    assert!(failed.is_err(), "{failed:?}");
    // Once Graph answers again, the first tenant's slice continues and nothing is lost.
    c.env.sim.set_faults(&c.job.tenant_id, Faults::default());
    let resumed_at = c.poll_to_the_end().await;
    let truth = c.truth(cursor.origin.unwrap(), resumed_at);
    let deliveries = c.sink.deliveries();
    assert!(truth.iter().all(|id| deliveries.contains_key(id)));
    c.env.sim.shutdown().await;
    fresh.env.sim.shutdown().await;
}
