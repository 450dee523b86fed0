//! A busy stream whose seen set outgrows its cursor document: the oldest buckets move to seen
//! pages beside the cursor, so sweeps keep filtering re-reads instead of re-emitting whole
//! buckets, the document stays under its bound, and nothing is lost either way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::cursor::{Cursor, CursorConfig};
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::store::{CursorStore, StoreError, StoredCursor};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{GroundTruthStream, SimConfig, TenantSpec};

/// The SQLite store without its seen pages: what every store did before them.
struct WithoutPages(SqliteStore);

#[async_trait]
impl CursorStore for WithoutPages {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        self.0.load(tenant, stream).await
    }
    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        self.0.commit(tenant, stream, expected, doc).await
    }
    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        self.0.purge(tenant).await
    }
}

struct Outcome {
    generated: usize,
    missing: usize,
    emitted: usize,
    duplicates: usize,
    doc_bytes: usize,
    paged_buckets: usize,
}

const MAX_SEEN_BYTES: usize = 4096;

async fn run(paged: bool) -> Outcome {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 0.0;
    spec.audits_per_hour = 900.0;
    // The default delay model: most records within minutes, a tail of hours.
    let env = common::start(SimConfig::new(5, vec![spec]), Rate::REPORTS_PER_TENANT).await;
    let spec = env.specs[0].clone();
    let store = SqliteStore::in_memory().unwrap();
    let cursors: Arc<dyn CursorStore> = if paged {
        Arc::new(store.clone())
    } else {
        Arc::new(WithoutPages(store.clone()))
    };
    let sink = Arc::new(MemorySink::new());
    let cfg = PollConfig {
        cursor: CursorConfig {
            initial_lookback_secs: 3600,
            max_seen_bytes: MAX_SEEN_BYTES,
            ..CursorConfig::default()
        },
        ..PollConfig::default()
    };
    let ctx = PollContext {
        client: env.client.clone(),
        cursors,
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: cfg.validated().unwrap(),
        hook: None,
    };
    let job = PollJob {
        tenant_id: spec.tenant_id.clone(),
        cloud: spec.cloud,
        stream: Stream::DirectoryAudits,
        include_noninteractive: false,
        retention_days: None,
    };
    let start = env.clock.now();
    let end = start + TimeDelta::hours(6);
    let mut doc_bytes = 0;
    while env.clock.now() < end {
        let cycle = env.clock.now();
        poll(&ctx, &job, cycle + TimeDelta::minutes(4))
            .await
            .unwrap();
        let stored = store
            .load(&job.tenant_id, job.stream)
            .await
            .unwrap()
            .unwrap();
        doc_bytes = doc_bytes.max(serde_json::to_string(&stored.doc).unwrap().len());
        env.clock.advance_to(cycle + TimeDelta::minutes(5));
    }
    let finish = env.clock.now();
    let stored = store
        .load(&job.tenant_id, job.stream)
        .await
        .unwrap()
        .unwrap();
    let cursor = Cursor::from_doc(&stored.doc).unwrap();
    let origin = cursor.origin.unwrap();
    let paged_buckets = cursor
        .sources
        .values()
        .flat_map(|s| s.buckets.values())
        .filter(|b| b.paged)
        .count();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in sink.events() {
        let id = e["metadata"]["original_event_uid"]
            .as_str()
            .unwrap()
            .to_string();
        *seen.entry(id).or_default() += 1;
    }
    let truth: Vec<_> = env
        .sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::DirectoryAudits, finish)
        .into_iter()
        .filter(|ev| ev.event_time >= origin && ev.visible_at <= finish - TimeDelta::hours(1))
        .collect();
    let missing = truth.iter().filter(|ev| !seen.contains_key(&ev.id)).count();
    env.sim.shutdown().await;
    Outcome {
        generated: truth.len(),
        missing,
        emitted: seen.values().sum(),
        duplicates: seen.values().map(|n| n - 1).sum(),
        doc_bytes,
        paged_buckets,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_cursor_pages_its_seen_set_instead_of_re_emitting_buckets() {
    let with = run(true).await;
    let without = run(false).await;
    for (name, o) in [("with pages", &with), ("without pages", &without)] {
        println!(
            "{name}: generated {}, missing {}, emitted {}, duplicates {}, largest cursor {} B, paged buckets {}",
            o.generated, o.missing, o.emitted, o.duplicates, o.doc_bytes, o.paged_buckets
        );
        assert!(o.generated > 3000, "{name}: a meaningful volume");
        assert_eq!(o.missing, 0, "{name}: nothing is lost");
    }
    // The bound is on the document: the seen sets plus a few hundred bytes of positions.
    // (Without pages, count-only buckets cost about 30 bytes each and cannot shrink.)
    assert!(
        with.doc_bytes <= MAX_SEEN_BYTES + 1024,
        "{} B",
        with.doc_bytes
    );
    assert!(with.paged_buckets > 100, "the oldest buckets were paged");
    assert_eq!(without.paged_buckets, 0);
    // Without pages, sweeps over count-only buckets that gained a late record re-emit them
    // whole; with pages every re-read is filtered by fingerprint.
    assert!(
        without.duplicates > 10 * with.duplicates.max(1),
        "with {} vs without {}",
        with.duplicates,
        without.duplicates
    );
    assert!(
        with.duplicates * 1000 <= with.emitted,
        "at most 0.1 % duplicates with pages: {} of {}",
        with.duplicates,
        with.emitted
    );
}
