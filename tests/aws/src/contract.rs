//! One contract suite for every [`CursorStore`] and [`TenantRegistry`]: the SQLite store (on
//! a file and in memory), the in-memory store and the DynamoDB adapters (on moto) all run the
//! same cases (`tests/store_contract.rs`), so an implementation cannot drift from the
//! contracts documented in `itdr_shared::store`.
//!
//! Each case gets fresh, empty stores from the backend's factory and runs as its own task;
//! [`run`] reports every failing case by name, not just the first. Cases that race writers
//! run them concurrently when the backend can be raced ([`Stores::concurrent`]), one after
//! the other otherwise (moto does not make concurrent conditional writes atomic, as DynamoDB
//! does), so the outcome is checked either way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itdr_shared::cursor::SeenPage;
use itdr_shared::health::FailureKind;
use itdr_shared::store::{
    CursorStore, Health, HealthState, HealthUpdate, StoreError, StoredCursor, TenantRecord,
    TenantRegistry, apply_health,
};
use itdr_shared::{Cloud, Stream};
use serde_json::json;

/// The stores one case runs against, fresh and empty.
#[derive(Clone)]
pub struct Stores {
    /// The cursor store.
    pub cursors: Arc<dyn CursorStore>,
    /// The tenant registry.
    pub registry: Arc<dyn TenantRegistry>,
    /// Whether racing writers may run concurrently (the backend is atomic under concurrency).
    pub concurrent: bool,
}

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One contract case.
pub type Case = fn(Stores) -> CaseFuture;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, by name.
        pub fn cases() -> Vec<(&'static str, Case)> {
            vec![$((stringify!($name), (|s: Stores| -> CaseFuture { Box::pin($name(s)) }) as Case)),*]
        }
    };
}

cases![
    cursor_missing_is_none,
    cursor_first_commit_then_versions_increase,
    cursor_second_first_commit_conflicts,
    cursor_stale_versions_conflict_and_overwrite_nothing,
    cursor_racing_committers_exactly_one_wins,
    cursor_keys_are_independent,
    cursor_purge_removes_one_tenant_only,
    seen_pages_round_trip_by_range,
    seen_pages_large_pages_and_replacement,
    seen_pages_delete_and_purge,
    registry_round_trips_records,
    registry_refuses_duplicate_tenant_id,
    registry_refuses_duplicate_domain_without_case,
    registry_refuses_duplicate_organization_without_case,
    registry_refused_writes_leave_nothing_behind,
    registry_frees_values_on_change_and_delete,
    registry_refuses_invalid_records,
    registry_update_replaces_an_existing_tenant_only,
    registry_update_health_applies_per_stream,
    registry_concurrent_health_updates_are_all_applied,
    registry_list_is_ordered_by_tenant_id,
    registry_delete_removes_the_tenant_only,
];

/// Runs every case against fresh stores from `fresh`; panics naming each failed case.
pub async fn run<F, Fut>(backend: &str, fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    let mut failed = Vec::new();
    for (name, case) in cases() {
        let stores = fresh().await;
        if let Err(e) = tokio::spawn(case(stores)).await {
            eprintln!("store contract [{backend}] {name}: {e}");
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "store contract [{backend}]: {} case(s) failed: {}",
        failed.len(),
        failed.join(", ")
    );
}

const A: &str = "tenant-alpha";
const B: &str = "tenant-bravo";
const C: &str = "tenant-charlie";
const D: &str = "tenant-delta";
const E: &str = "tenant-echo";

/// A timestamp with nanoseconds, so that a store that rounds it is caught.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 123_456_789)
        .unwrap()
}

fn tenant(id: &str, domain: Option<&str>, org: Option<&str>) -> TenantRecord {
    TenantRecord {
        tenant_id: id.to_string(),
        domain: domain.map(str::to_string),
        org: org.map(str::to_string),
        cloud: Cloud::Global,
        app_ref: "default".to_string(),
        streams: vec![Stream::Signins, Stream::DirectoryAudits],
        include_noninteractive: false,
        enabled: true,
        health: Health::default(),
        created_at: at(0),
    }
}

/// A tenant with its own domain and organization, derived from its id.
fn plain(id: &str) -> TenantRecord {
    tenant(
        id,
        Some(&format!("{id}.example")),
        Some(&format!("Org {id}")),
    )
}

/// Asserts `r` is a refusal naming `words` (the field, the tenant holding it).
fn assert_refused(r: Result<(), StoreError>, words: &[&str]) {
    match r {
        Err(StoreError::Invalid(m)) => {
            for w in words {
                assert!(m.contains(w), "refusal {m:?} should name {w:?}");
            }
        }
        other => panic!("expected a refusal naming {words:?}, got {other:?}"),
    }
}

fn assert_conflict(
    r: Result<u64, StoreError>,
    tenant: &str,
    stream: Stream,
    expected: Option<u64>,
) {
    match r {
        Err(e @ StoreError::Conflict { .. }) => {
            assert!(!e.is_retryable(), "a lost compare-and-set is not retryable");
            let StoreError::Conflict {
                tenant: t,
                stream: s,
                expected: x,
            } = e
            else {
                unreachable!()
            };
            assert_eq!((t.as_str(), s, x), (tenant, stream, expected));
        }
        other => panic!("expected a conflict for {expected:?}, got {other:?}"),
    }
}

async fn ids(reg: &dyn TenantRegistry) -> Vec<String> {
    reg.list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.tenant_id)
        .collect()
}

async fn cursor_missing_is_none(s: Stores) {
    let c = &s.cursors;
    assert_eq!(c.load(A, Stream::Signins).await.unwrap(), None);
    c.commit(A, Stream::Signins, None, &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(c.load(A, Stream::DirectoryAudits).await.unwrap(), None);
    assert_eq!(c.load(B, Stream::Signins).await.unwrap(), None);
}

async fn cursor_first_commit_then_versions_increase(s: Stores) {
    let c = &s.cursors;
    assert_eq!(
        c.commit(A, Stream::Signins, None, &json!({"n": 1}))
            .await
            .unwrap(),
        1,
        "the first committed version is 1"
    );
    assert_eq!(
        c.load(A, Stream::Signins).await.unwrap(),
        Some(StoredCursor {
            doc: json!({"n": 1}),
            version: 1
        })
    );
    for v in 1..=4u64 {
        let doc = json!({"n": v + 1, "nested": {"list": [v, "x"]}});
        assert_eq!(
            c.commit(A, Stream::Signins, Some(v), &doc).await.unwrap(),
            v + 1
        );
        assert_eq!(
            c.load(A, Stream::Signins).await.unwrap(),
            Some(StoredCursor {
                doc,
                version: v + 1
            })
        );
    }
}

async fn cursor_second_first_commit_conflicts(s: Stores) {
    let c = &s.cursors;
    c.commit(A, Stream::Signins, None, &json!({"n": 1}))
        .await
        .unwrap();
    assert_conflict(
        c.commit(A, Stream::Signins, None, &json!({"n": 2})).await,
        A,
        Stream::Signins,
        None,
    );
    assert_eq!(
        c.load(A, Stream::Signins).await.unwrap(),
        Some(StoredCursor {
            doc: json!({"n": 1}),
            version: 1
        })
    );
}

async fn cursor_stale_versions_conflict_and_overwrite_nothing(s: Stores) {
    let c = &s.cursors;
    c.commit(A, Stream::Signins, None, &json!({"n": 1}))
        .await
        .unwrap();
    c.commit(A, Stream::Signins, Some(1), &json!({"n": 2}))
        .await
        .unwrap();
    let stored = Some(StoredCursor {
        doc: json!({"n": 2}),
        version: 2,
    });
    for stale in [None, Some(0), Some(1), Some(3), Some(u64::MAX)] {
        assert_conflict(
            c.commit(A, Stream::Signins, stale, &json!({"n": 99})).await,
            A,
            Stream::Signins,
            stale,
        );
        assert_eq!(
            c.load(A, Stream::Signins).await.unwrap(),
            stored,
            "{stale:?}"
        );
    }
    // A version expected of a cursor that does not exist: lost, and nothing is created.
    assert_conflict(
        c.commit(B, Stream::Signins, Some(1), &json!({"n": 1}))
            .await,
        B,
        Stream::Signins,
        Some(1),
    );
    assert_eq!(c.load(B, Stream::Signins).await.unwrap(), None);
}

/// `n` writers commit to one key expecting `expected`; their results in writer order.
async fn race(
    s: &Stores,
    expected: Option<u64>,
    n: usize,
) -> Vec<(usize, Result<u64, StoreError>)> {
    let commit = |i: usize| {
        let c = Arc::clone(&s.cursors);
        async move {
            c.commit(A, Stream::Signins, expected, &json!({ "writer": i }))
                .await
        }
    };
    let mut out = Vec::new();
    if s.concurrent {
        let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(commit(i))).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            out.push((i, t.await.unwrap()));
        }
    } else {
        for i in 0..n {
            out.push((i, commit(i).await));
        }
    }
    out
}

async fn cursor_racing_committers_exactly_one_wins(s: Stores) {
    for expected in [None, Some(1), Some(2)] {
        let results = race(&s, expected, 6).await;
        let want = expected.map_or(1, |v| v + 1);
        let mut winners = Vec::new();
        for (i, r) in results {
            match r {
                Ok(v) => {
                    assert_eq!(v, want);
                    winners.push(i);
                }
                Err(_) => assert_conflict(r, A, Stream::Signins, expected),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one winner for {expected:?}");
        assert_eq!(
            s.cursors.load(A, Stream::Signins).await.unwrap(),
            Some(StoredCursor {
                doc: json!({ "writer": winners[0] }),
                version: want
            }),
            "the winner's document is stored"
        );
    }
}

async fn cursor_keys_are_independent(s: Stores) {
    let c = &s.cursors;
    assert_eq!(
        c.commit(A, Stream::Signins, None, &json!({"k": "a-s-1"}))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.commit(A, Stream::Signins, Some(1), &json!({"k": "a-s-2"}))
            .await
            .unwrap(),
        2
    );
    // Another stream of the same tenant, and the same stream of another tenant, start at 1.
    assert_eq!(
        c.commit(A, Stream::DirectoryAudits, None, &json!({"k": "a-d-1"}))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.commit(B, Stream::Signins, None, &json!({"k": "b-s-1"}))
            .await
            .unwrap(),
        1
    );
    let load = |t: &'static str, st| {
        let c = Arc::clone(c);
        async move { c.load(t, st).await.unwrap().unwrap() }
    };
    assert_eq!(
        load(A, Stream::Signins).await,
        StoredCursor {
            doc: json!({"k": "a-s-2"}),
            version: 2
        }
    );
    assert_eq!(
        load(A, Stream::DirectoryAudits).await,
        StoredCursor {
            doc: json!({"k": "a-d-1"}),
            version: 1
        }
    );
    assert_eq!(
        load(B, Stream::Signins).await,
        StoredCursor {
            doc: json!({"k": "b-s-1"}),
            version: 1
        }
    );
}

async fn cursor_purge_removes_one_tenant_only(s: Stores) {
    let c = &s.cursors;
    for stream in Stream::ALL {
        c.commit(A, stream, None, &json!({"s": stream.as_str()}))
            .await
            .unwrap();
    }
    c.commit(B, Stream::Signins, None, &json!({"n": 1}))
        .await
        .unwrap();
    c.commit(B, Stream::Signins, Some(1), &json!({"n": 2}))
        .await
        .unwrap();
    c.purge(A).await.unwrap();
    for stream in Stream::ALL {
        assert_eq!(c.load(A, stream).await.unwrap(), None, "{stream}");
    }
    assert_eq!(
        c.load(B, Stream::Signins).await.unwrap(),
        Some(StoredCursor {
            doc: json!({"n": 2}),
            version: 2
        })
    );
    // Purging again, or a tenant without cursors, is fine; a purged key starts over.
    c.purge(A).await.unwrap();
    c.purge(C).await.unwrap();
    assert_eq!(
        c.commit(A, Stream::Signins, None, &json!({}))
            .await
            .unwrap(),
        1
    );
}

fn page(source: &str, bucket: i64, fps: Vec<u32>) -> SeenPage {
    SeenPage {
        source: source.into(),
        bucket,
        fps,
    }
}

async fn seen_pages_round_trip_by_range(s: Stores) {
    let p = s
        .cursors
        .seen_pages()
        .expect("every store keeps seen pages");
    let a = "signins.interactive";
    let b = "signins.interactive.other";
    p.put_pages(
        A,
        Stream::Signins,
        &[
            page(a, 29_000_000, vec![1, 2, 3]),
            page(a, 29_000_001, vec![]),
            page(a, 29_000_002, vec![7]),
            page(b, 29_000_001, vec![9]),
        ],
    )
    .await
    .unwrap();
    p.put_pages(B, Stream::Signins, &[page(a, 29_000_001, vec![5])])
        .await
        .unwrap();
    p.put_pages(A, Stream::DirectoryAudits, &[page(a, 29_000_001, vec![6])])
        .await
        .unwrap();
    let got = p
        .load_pages(A, Stream::Signins, a, 29_000_001, 29_000_002)
        .await
        .unwrap();
    assert_eq!(got, vec![(29_000_001, vec![]), (29_000_002, vec![7])]);
    let got = p
        .load_pages(A, Stream::Signins, a, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], (29_000_000, vec![1, 2, 3]));
    assert_eq!(
        p.load_pages(A, Stream::Signins, b, 0, i64::MAX)
            .await
            .unwrap(),
        vec![(29_000_001, vec![9])]
    );
    assert!(
        p.load_pages(C, Stream::Signins, a, 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        p.load_pages(A, Stream::Signins, a, 5, 4)
            .await
            .unwrap()
            .is_empty()
    );
    // Pages never show up as cursors.
    assert_eq!(s.cursors.load(A, Stream::Signins).await.unwrap(), None);
}

async fn seen_pages_large_pages_and_replacement(s: Stores) {
    let p = s
        .cursors
        .seen_pages()
        .expect("every store keeps seen pages");
    // 150,000 fingerprints (600 KB packed): more than one DynamoDB item holds.
    let mut big: Vec<u32> = (0..150_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    big.sort_unstable();
    p.put_pages(A, Stream::Signins, &[page("s", 10, big.clone())])
        .await
        .unwrap();
    assert_eq!(
        p.load_pages(A, Stream::Signins, "s", 10, 10).await.unwrap(),
        vec![(10, big)]
    );
    // A smaller page replaces it entirely.
    p.put_pages(A, Stream::Signins, &[page("s", 10, vec![4, 8])])
        .await
        .unwrap();
    assert_eq!(
        p.load_pages(A, Stream::Signins, "s", 10, 10).await.unwrap(),
        vec![(10, vec![4, 8])]
    );
}

async fn seen_pages_delete_and_purge(s: Stores) {
    let p = s
        .cursors
        .seen_pages()
        .expect("every store keeps seen pages");
    let pages: Vec<SeenPage> = (0..40).map(|i| page("s", i, vec![i as u32])).collect();
    p.put_pages(A, Stream::Signins, &pages).await.unwrap();
    p.put_pages(B, Stream::Signins, &pages[..2]).await.unwrap();
    let gone: Vec<(String, i64)> = (0..30).map(|i| ("s".to_string(), i)).collect();
    p.delete_pages(A, Stream::Signins, &gone).await.unwrap();
    // Deleting what is absent is fine.
    p.delete_pages(A, Stream::Signins, &gone).await.unwrap();
    let left = p.load_pages(A, Stream::Signins, "s", 0, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        (30..40).collect::<Vec<_>>()
    );
    s.cursors
        .commit(A, Stream::Signins, None, &json!({}))
        .await
        .unwrap();
    s.cursors.purge(A).await.unwrap();
    assert!(
        p.load_pages(A, Stream::Signins, "s", 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        p.load_pages(B, Stream::Signins, "s", 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn registry_round_trips_records(s: Stores) {
    let r = &s.registry;
    let mut full = plain(A);
    full.cloud = Cloud::GccHigh;
    full.app_ref = "usgov".into();
    full.streams = Stream::ALL.to_vec();
    full.include_noninteractive = true;
    full.health = apply_health(
        &Health::default(),
        &HealthUpdate::Failure {
            stream: Stream::Signins,
            at: at(5),
            kind: FailureKind::LicenceRequired,
        },
    );
    let bare = tenant(B, None, None);
    r.insert(&full).await.unwrap();
    r.insert(&bare).await.unwrap();
    assert_eq!(r.get(A).await.unwrap(), Some(full.clone()));
    assert_eq!(r.get(B).await.unwrap(), Some(bare.clone()));
    assert_eq!(r.get(C).await.unwrap(), None);
    assert_eq!(r.list().await.unwrap(), vec![full, bare]);
}

async fn registry_refuses_duplicate_tenant_id(s: Stores) {
    let r = &s.registry;
    let a = plain(A);
    r.insert(&a).await.unwrap();
    let again = tenant(A, Some("other.example"), Some("Other Org"));
    assert_refused(r.insert(&again).await, &["tenant id", A]);
    assert_eq!(r.get(A).await.unwrap(), Some(a));
    // The refused record took nothing: its domain and organization are free.
    r.insert(&tenant(B, Some("other.example"), Some("Other Org")))
        .await
        .unwrap();
}

async fn registry_refuses_duplicate_domain_without_case(s: Stores) {
    let r = &s.registry;
    let a = tenant(A, Some("alpha.example"), Some("Org A"));
    r.insert(&a).await.unwrap();
    assert_refused(
        r.insert(&tenant(B, Some("ALPHA.Example"), Some("Org B")))
            .await,
        &["domain", A],
    );
    assert_eq!(r.get(B).await.unwrap(), None);
    let c = tenant(C, Some("charlie.example"), Some("Org C"));
    r.insert(&c).await.unwrap();
    assert_refused(
        r.update(&tenant(C, Some("Alpha.EXAMPLE"), Some("Org C")))
            .await,
        &["domain", A],
    );
    assert_eq!(r.get(C).await.unwrap(), Some(c));
    assert_eq!(r.get(A).await.unwrap(), Some(a));
    assert_eq!(ids(r.as_ref()).await, vec![A, C]);
}

async fn registry_refuses_duplicate_organization_without_case(s: Stores) {
    let r = &s.registry;
    let a = tenant(A, Some("alpha.example"), Some("Alpha Org"));
    r.insert(&a).await.unwrap();
    assert_refused(
        r.insert(&tenant(B, Some("bravo.example"), Some("ALPHA ORG")))
            .await,
        &["organization", A],
    );
    // Surrounding white space does not make another organization either.
    assert_refused(
        r.insert(&tenant(B, Some("bravo.example"), Some("  alpha org ")))
            .await,
        &["organization", A],
    );
    assert_eq!(r.get(B).await.unwrap(), None);
    let c = tenant(C, Some("charlie.example"), Some("Charlie Org"));
    r.insert(&c).await.unwrap();
    assert_refused(
        r.update(&tenant(C, Some("charlie.example"), Some("alpha ORG")))
            .await,
        &["organization", A],
    );
    assert_eq!(r.get(C).await.unwrap(), Some(c));
    assert_eq!(ids(r.as_ref()).await, vec![A, C]);
}

async fn registry_refused_writes_leave_nothing_behind(s: Stores) {
    let r = &s.registry;
    r.insert(&tenant(A, Some("a.example"), Some("Org A")))
        .await
        .unwrap();
    // Refused for its organization: its new domain must not have been taken.
    assert_refused(
        r.insert(&tenant(B, Some("b.example"), Some("Org A"))).await,
        &["organization"],
    );
    r.insert(&tenant(C, Some("b.example"), Some("Org C")))
        .await
        .unwrap();
    // Refused for its domain: its new organization must not have been taken.
    assert_refused(
        r.insert(&tenant(B, Some("a.example"), Some("Org B"))).await,
        &["domain"],
    );
    r.insert(&tenant(D, Some("d.example"), Some("Org B")))
        .await
        .unwrap();
    // An update refused for one value takes neither, and gives up nothing.
    let c = tenant(C, Some("b.example"), Some("Org C"));
    assert_refused(
        r.update(&tenant(C, Some("c2.example"), Some("Org A")))
            .await,
        &["organization"],
    );
    assert_eq!(r.get(C).await.unwrap(), Some(c));
    r.insert(&tenant(E, Some("c2.example"), Some("Org E")))
        .await
        .unwrap();
    assert_refused(
        r.insert(&tenant("tenant-fox", Some("B.example"), Some("Org F")))
            .await,
        &["domain", C],
    );
    // An update of an unknown tenant takes nothing either.
    assert!(matches!(
        r.update(&tenant("tenant-golf", Some("g.example"), Some("Org G")))
            .await,
        Err(StoreError::UnknownTenant(id)) if id == "tenant-golf"
    ));
    r.insert(&tenant("tenant-hotel", Some("g.example"), Some("Org G")))
        .await
        .unwrap();
    assert_eq!(ids(r.as_ref()).await, vec![A, C, D, E, "tenant-hotel"]);
}

async fn registry_frees_values_on_change_and_delete(s: Stores) {
    let r = &s.registry;
    r.insert(&tenant(A, Some("a.example"), Some("Org A")))
        .await
        .unwrap();
    r.insert(&tenant(B, Some("b.example"), Some("Org B")))
        .await
        .unwrap();
    // A tenant may keep its own values, in another case.
    r.update(&tenant(A, Some("a.example"), Some("ORG A")))
        .await
        .unwrap();
    // Changed values are freed for others.
    r.update(&tenant(A, Some("x.example"), Some("Org X")))
        .await
        .unwrap();
    r.insert(&tenant(C, Some("a.example"), Some("Org A")))
        .await
        .unwrap();
    // So are removed ones.
    r.update(&tenant(A, None, None)).await.unwrap();
    r.insert(&tenant(D, Some("x.example"), Some("Org X")))
        .await
        .unwrap();
    // And a deleted tenant's id, domain and organization.
    r.delete(B).await.unwrap();
    r.insert(&tenant(E, Some("b.example"), Some("Org B")))
        .await
        .unwrap();
    let b = tenant(B, Some("b2.example"), Some("Org B2"));
    r.insert(&b).await.unwrap();
    assert_eq!(r.get(B).await.unwrap(), Some(b));
    assert_eq!(r.get(A).await.unwrap(), Some(tenant(A, None, None)));
    assert_eq!(ids(r.as_ref()).await, vec![A, B, C, D, E]);
}

async fn registry_refuses_invalid_records(s: Stores) {
    let r = &s.registry;
    for bad in [
        tenant("", Some("e.example"), Some("Org E")),
        tenant("  ", Some("e.example"), Some("Org E")),
        tenant(A, Some(""), Some("Org A")),
        tenant(A, Some("a.example"), Some("   ")),
    ] {
        assert!(
            matches!(r.insert(&bad).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(r.list().await.unwrap().is_empty());
    let a = plain(A);
    r.insert(&a).await.unwrap();
    let mut blank = a.clone();
    blank.org = Some(String::new());
    assert!(matches!(
        r.update(&blank).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(r.get(A).await.unwrap(), Some(a));
}

async fn registry_update_replaces_an_existing_tenant_only(s: Stores) {
    let r = &s.registry;
    r.insert(&plain(A)).await.unwrap();
    r.insert(&plain(B)).await.unwrap();
    let mut changed = tenant(A, Some("new-a.example"), Some("New Org A"));
    changed.cloud = Cloud::China;
    changed.app_ref = "china".into();
    changed.streams = vec![Stream::DirectoryAudits];
    changed.include_noninteractive = true;
    changed.enabled = false;
    changed.health.state = HealthState::Offboarded;
    changed.health.retention_days = Some(7);
    changed.created_at = at(3600);
    r.update(&changed).await.unwrap();
    assert_eq!(r.get(A).await.unwrap(), Some(changed));
    let cleared = tenant(A, None, None);
    r.update(&cleared).await.unwrap();
    assert_eq!(r.get(A).await.unwrap(), Some(cleared));
    assert_eq!(r.get(B).await.unwrap(), Some(plain(B)), "others untouched");
    assert!(matches!(
        r.update(&plain(C)).await,
        Err(StoreError::UnknownTenant(id)) if id == C
    ));
    assert_eq!(r.get(C).await.unwrap(), None, "an update creates nothing");
}

async fn registry_update_health_applies_per_stream(s: Stores) {
    let r = &s.registry;
    let a = plain(A);
    r.insert(&a).await.unwrap();
    r.insert(&plain(B)).await.unwrap();
    let updates = [
        HealthUpdate::Failure {
            stream: Stream::Signins,
            at: at(10),
            kind: FailureKind::Throttled,
        },
        HealthUpdate::Success {
            stream: Stream::DirectoryAudits,
            at: at(20),
            newest_event: Some(at(15)),
            throttled: false,
        },
        HealthUpdate::Failure {
            stream: Stream::Signins,
            at: at(30),
            kind: FailureKind::LicenceRequired,
        },
        HealthUpdate::Success {
            stream: Stream::Signins,
            at: at(40),
            newest_event: None,
            throttled: false,
        },
    ];
    let mut expected = Health::default();
    let mut states = Vec::new();
    for u in &updates {
        expected = apply_health(&expected, u);
        let got = r.update_health(A, u).await.unwrap();
        assert_eq!(got, expected, "the new health is returned");
        assert_eq!(
            r.get(A).await.unwrap().unwrap().health,
            expected,
            "and stored"
        );
        states.push(got.state);
    }
    // The success of another stream does not hide the failing one.
    assert_eq!(
        states,
        [
            HealthState::Degraded,
            HealthState::Degraded,
            HealthState::LicenceMissing,
            HealthState::Healthy
        ]
    );
    assert_eq!(expected.retention_days, Some(7));
    // Only the health changed, and only that tenant's.
    let mut want = a;
    want.health = expected;
    assert_eq!(r.get(A).await.unwrap(), Some(want));
    assert_eq!(r.get(B).await.unwrap(), Some(plain(B)));
    assert!(matches!(
        r.update_health(C, &updates[0]).await,
        Err(StoreError::UnknownTenant(id)) if id == C
    ));
    assert_eq!(r.get(C).await.unwrap(), None);
}

async fn registry_concurrent_health_updates_are_all_applied(s: Stores) {
    let r = &s.registry;
    r.insert(&plain(A)).await.unwrap();
    const N: u32 = 6;
    let update = |i: u32| {
        let r = Arc::clone(r);
        async move {
            r.update_health(
                A,
                &HealthUpdate::Failure {
                    stream: Stream::Signins,
                    at: at(i64::from(i)),
                    kind: FailureKind::Transient,
                },
            )
            .await
        }
    };
    if s.concurrent {
        let tasks: Vec<_> = (0..N).map(|i| tokio::spawn(update(i))).collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    } else {
        for i in 0..N {
            update(i).await.unwrap();
        }
    }
    let h = r.get(A).await.unwrap().unwrap().health;
    assert_eq!(h.streams[&Stream::Signins].consecutive_failures, N);
    assert_eq!(h.consecutive_failures, N);
}

async fn registry_list_is_ordered_by_tenant_id(s: Stores) {
    let r = &s.registry;
    assert!(r.list().await.unwrap().is_empty());
    let mut disabled = plain(B);
    disabled.enabled = false;
    let records = [plain(D), plain(A), disabled, tenant(C, None, None)];
    for t in &records {
        r.insert(t).await.unwrap();
    }
    let mut sorted = records.to_vec();
    sorted.sort_by(|x, y| x.tenant_id.cmp(&y.tenant_id));
    assert_eq!(
        r.list().await.unwrap(),
        sorted,
        "every tenant, enabled or not"
    );
    assert_eq!(ids(r.as_ref()).await, vec![A, B, C, D]);
}

async fn registry_delete_removes_the_tenant_only(s: Stores) {
    let r = &s.registry;
    r.insert(&plain(A)).await.unwrap();
    r.insert(&plain(B)).await.unwrap();
    s.cursors
        .commit(A, Stream::Signins, None, &json!({"n": 1}))
        .await
        .unwrap();
    r.delete(A).await.unwrap();
    assert_eq!(r.get(A).await.unwrap(), None);
    assert_eq!(r.list().await.unwrap(), vec![plain(B)]);
    assert!(matches!(r.delete(A).await, Err(StoreError::UnknownTenant(id)) if id == A));
    assert!(matches!(r.delete(C).await, Err(StoreError::UnknownTenant(id)) if id == C));
    assert!(
        matches!(
            r.update_health(
                A,
                &HealthUpdate::Success {
                    stream: Stream::Signins,
                    at: at(1),
                    newest_event: None,
                    throttled: false
                }
            )
            .await,
            Err(StoreError::UnknownTenant(_))
        ),
        "a deleted tenant is unknown"
    );
    // Cursors are the offboarding's business (purge), not the registry's.
    assert_eq!(
        s.cursors.load(A, Stream::Signins).await.unwrap(),
        Some(StoredCursor {
            doc: json!({"n": 1}),
            version: 1
        })
    );
}
