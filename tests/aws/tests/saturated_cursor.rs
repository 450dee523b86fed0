//! Busy tenants on DynamoDB: a cursor never outgrows an item, however busy the stream, because
//! the oldest seen-set buckets move to seen pages beside it (`cursor.md`, *Seen pages*).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_aws_tests::AwsFixture;
use itdr_shared::aws::dynamo::DynamoCursorStore;
use itdr_shared::client::Rate;
use itdr_shared::clock::{Clock, ManualClock, SharedClock};
use itdr_shared::cursor::{Cursor, CursorConfig, Key, SeenSet};
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::store::CursorStore;
use itdr_shared::{Cloud, Stream};
use itdr_sim::{GroundTruthStream, SimConfig, Simulator, TenantSpec};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

/// DynamoDB's item size limit.
const ITEM_LIMIT: usize = 400 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_a_100k_per_hour_stream_fits_one_item_and_its_pages() {
    let f = AwsFixture::start().await;
    f.create_store_tables("sat-registry", "sat-cursors").await;
    let store = DynamoCursorStore::new(f.ddb.clone(), "sat-cursors");
    let cfg = CursorConfig::default();
    // 24 hours of 100,000 sign-ins an hour, all delivered and recorded: the seen set of one
    // source over the whole sweep horizon.
    let now = t0();
    let from = now - TimeDelta::hours(24);
    let ids: Vec<String> = (0..2_400_000).map(|i| format!("signin-{i:08}")).collect();
    let keys: Vec<Key<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Key {
            id,
            time: from + TimeDelta::milliseconds(i as i64 * 36),
        })
        .collect();
    let mut c = Cursor::begin(None, now, now - TimeDelta::days(30), &cfg);
    c.pass = None;
    c.last_sweep_start = Some(now);
    c.watermark = now;
    let all: Vec<usize> = (0..keys.len()).collect();
    let seen = c.sources.entry("signins.interactive".into()).or_default();
    seen.record(&keys, &all, from, now, &cfg);
    // What the old bound (on raw fingerprint bytes) would have kept is far past an item.
    assert!(seen.fingerprint_bytes() > 9_000_000);

    let work = c.prune_paged(&cfg);
    let doc = c.to_doc().unwrap();
    let doc_len = serde_json::to_string(&doc).unwrap().len();
    println!(
        "cursor document {doc_len} B, {} pages written, {} fingerprints kept inline",
        work.put.len(),
        c.sources["signins.interactive"].fingerprint_bytes() / 4
    );
    assert!(doc_len <= cfg.max_seen_bytes + 4096, "{doc_len} B");
    assert!(doc_len < ITEM_LIMIT);
    let pages = store.seen_pages().unwrap();
    pages
        .put_pages("t-busy", Stream::Signins, &work.put)
        .await
        .unwrap();
    // The commit that would have failed on every retry now lands.
    assert_eq!(
        store
            .commit("t-busy", Stream::Signins, None, &doc)
            .await
            .unwrap(),
        1
    );
    // A sweep slice over an old hour finds every fingerprint it needs in the pages.
    let back = Cursor::from_doc(
        &store
            .load("t-busy", Stream::Signins)
            .await
            .unwrap()
            .unwrap()
            .doc,
    )
    .unwrap();
    let s = &back.sources["signins.interactive"];
    let (lo, hi) = (from + TimeDelta::hours(2), from + TimeDelta::hours(3));
    let (a, b) = (
        SeenSet::index_of(lo, cfg.bucket_secs),
        SeenSet::index_of(hi, cfg.bucket_secs) - 1,
    );
    let wanted = s.unloaded(a, b);
    assert_eq!(wanted.len(), 60);
    let loaded = pages
        .load_pages("t-busy", Stream::Signins, "signins.interactive", a, b)
        .await
        .unwrap();
    assert_eq!(loaded.len(), 60);
    let mut hydrated = s.clone();
    for (idx, fps) in loaded {
        hydrated.buckets.get_mut(&idx).unwrap().fps = Some(fps);
    }
    let hour: Vec<Key<'_>> = keys
        .iter()
        .copied()
        .filter(|k| k.time >= lo && k.time < hi)
        .collect();
    assert_eq!(hour.len(), 100_000);
    assert!(
        hydrated.filter_new(&hour, lo, hi, &cfg).is_empty(),
        "a re-read of an old hour emits nothing again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_stream_polled_on_dynamodb_pages_its_seen_set_and_loses_nothing() {
    let f = AwsFixture::start().await;
    f.create_store_tables("poll-registry", "poll-cursors").await;
    let store = DynamoCursorStore::new(f.ddb.clone(), "poll-cursors");
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.signins_per_hour = 0.0;
    spec.audits_per_hour = 600.0;
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock.clone());
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(SimConfig::new(9, vec![spec.clone()]), shared.clone(), bind)
        .await
        .unwrap();
    let stack = sim
        .stack_builder(shared)
        .reports_per_tenant(Rate::REPORTS_PER_TENANT)
        .build()
        .unwrap();
    stack.tokens.set(&spec.tenant_id, spec.app_credential());
    let sink = Arc::new(MemorySink::new());
    let max_seen_bytes = 2048;
    let ctx = PollContext {
        client: stack.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig {
            cursor: CursorConfig {
                initial_lookback_secs: 3600,
                max_seen_bytes,
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
        cloud: spec.cloud,
        stream: Stream::DirectoryAudits,
        include_noninteractive: false,
        retention_days: None,
    };
    let end = clock.now() + TimeDelta::hours(4);
    while clock.now() < end {
        let cycle = clock.now();
        poll(&ctx, &job, cycle + TimeDelta::minutes(4))
            .await
            .unwrap();
        let doc = store
            .load(&job.tenant_id, job.stream)
            .await
            .unwrap()
            .unwrap()
            .doc;
        let len = serde_json::to_string(&doc).unwrap().len();
        assert!(len <= max_seen_bytes + 1024, "{len} B");
        clock.advance_to(cycle + TimeDelta::minutes(5));
    }
    let finish = clock.now();
    let c = Cursor::from_doc(
        &store
            .load(&job.tenant_id, job.stream)
            .await
            .unwrap()
            .unwrap()
            .doc,
    )
    .unwrap();
    let paged = c
        .sources
        .values()
        .flat_map(|s| s.buckets.values())
        .filter(|b| b.paged)
        .count();
    assert!(paged > 50, "the oldest buckets were paged ({paged})");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in sink.events() {
        *seen
            .entry(
                e["metadata"]["original_event_uid"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default() += 1;
    }
    let origin = c.origin.unwrap();
    let truth: Vec<_> = sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::DirectoryAudits, finish)
        .into_iter()
        .filter(|ev| ev.event_time >= origin && ev.visible_at <= finish - TimeDelta::hours(1))
        .collect();
    assert!(truth.len() > 1500);
    let missing = truth.iter().filter(|ev| !seen.contains_key(&ev.id)).count();
    let dups: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "generated {}, missing {missing}, duplicates {dups}, paged buckets {paged}",
        truth.len()
    );
    assert_eq!(missing, 0);
    assert_eq!(dups, 0, "re-reads are filtered by the paged fingerprints");
    // Offboarding with purge leaves no page behind.
    store.purge(&job.tenant_id).await.unwrap();
    let left = store
        .seen_pages()
        .unwrap()
        .load_pages(&job.tenant_id, job.stream, "directory_audits", 0, i64::MAX)
        .await
        .unwrap();
    assert!(left.is_empty());
    sim.shutdown().await;
}
