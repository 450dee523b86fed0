//! How the DynamoDB registry makes domains and organizations unique, beyond the store
//! contract suite: the guard items themselves, the scheduler's scan that must not see them,
//! registries written before guards existed, guards left behind by hand edits, and a scan that
//! fails between two pages of a fan-out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use itdr_aws_tests::{AwsFixture, REGISTRY_TABLE};
use itdr_shared::aws::dynamo::{DynamoRegistry, GuardBackfill};
use itdr_shared::aws::jobs::{JobMessage, JobQueues, ScheduleError, fan_out};
use itdr_shared::aws::sqs::SqsSender;
use itdr_shared::store::{Health, HealthUpdate, StoreError, TenantRecord, TenantRegistry};
use itdr_shared::{Cloud, Stream};

fn tenant(id: &str, domain: Option<&str>, org: Option<&str>) -> TenantRecord {
    TenantRecord {
        tenant_id: id.into(),
        domain: domain.map(str::to_string),
        org: org.map(str::to_string),
        cloud: Cloud::Global,
        app_ref: "default".into(),
        streams: vec![Stream::Signins, Stream::DirectoryAudits],
        include_noninteractive: false,
        enabled: true,
        health: Health::default(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

/// Every item of the table as key -> owner (guards) or "" (tenants and bookkeeping).
async fn items(f: &AwsFixture, table: &str) -> BTreeMap<String, String> {
    let out = f.ddb.scan().table_name(table).send().await.unwrap();
    assert!(
        out.last_evaluated_key().is_none(),
        "one page is enough here"
    );
    out.items()
        .iter()
        .map(|i| {
            let s = |k: &str| match i.get(k) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            (s("tenant_id"), s("owner"))
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// A tenant item as registries before guards (and `scripts/lambda_smoke.py`) wrote it: no
/// `rev`, no guard items.
async fn put_legacy(
    f: &AwsFixture,
    table: &str,
    id: &str,
    domain: Option<&str>,
    org: Option<&str>,
) {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let mut req = f
        .ddb
        .put_item()
        .table_name(table)
        .item("tenant_id", s(id))
        .item("cloud", s(Cloud::Global.as_str()))
        .item("cloud_group", s(Cloud::Global.group().as_str()))
        .item("app_ref", s("default"))
        .item("streams", AttributeValue::L(vec![s("signins")]))
        .item("include_noninteractive", AttributeValue::Bool(false))
        .item("enabled", AttributeValue::Bool(true))
        .item("created_at", s("2025-01-01T00:00:00.000Z"))
        .item(
            "health",
            s(&serde_json::to_string(&Health::default()).unwrap()),
        )
        .item("health_state", s("pending"));
    if let Some(d) = domain {
        req = req.item("domain", s(d));
    }
    if let Some(o) = org {
        req = req.item("org", s(o));
    }
    req.send().await.unwrap();
}

async fn put_guard(f: &AwsFixture, table: &str, key: &str, owner: &str) {
    f.ddb
        .put_item()
        .table_name(table)
        .item("tenant_id", AttributeValue::S(key.into()))
        .item("owner", AttributeValue::S(owner.into()))
        .send()
        .await
        .unwrap();
}

fn refused(r: Result<(), StoreError>, words: &[&str]) {
    match r {
        Err(StoreError::Invalid(m)) => {
            for w in words {
                assert!(m.contains(w), "{m:?} should name {w:?}");
            }
        }
        other => panic!("expected a refusal naming {words:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn guard_items_follow_the_tenants_and_the_scheduler_never_sees_them() {
    let f = AwsFixture::start().await;
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    reg.insert(&tenant("aaaa", Some("A.example"), Some(" Org A ")))
        .await
        .unwrap();
    reg.insert(&tenant("bbbb", Some("b.example"), None))
        .await
        .unwrap();
    reg.insert(&tenant("cccc", None, None)).await.unwrap();
    assert_eq!(
        items(&f, REGISTRY_TABLE).await,
        map(&[
            ("aaaa", ""),
            ("bbbb", ""),
            ("cccc", ""),
            ("DOMAIN#a.example", "aaaa"),
            ("ORG#org a", "aaaa"),
            ("DOMAIN#b.example", "bbbb"),
            ("META#guards", ""),
        ])
    );

    // An update moves the guards with the values; a delete removes them.
    reg.update(&tenant("aaaa", Some("x.example"), Some("Org X")))
        .await
        .unwrap();
    reg.update(&tenant("bbbb", None, Some("Org B")))
        .await
        .unwrap();
    reg.delete("cccc").await.unwrap();
    assert_eq!(
        items(&f, REGISTRY_TABLE).await,
        map(&[
            ("aaaa", ""),
            ("bbbb", ""),
            ("DOMAIN#x.example", "aaaa"),
            ("ORG#org x", "aaaa"),
            ("ORG#org b", "bbbb"),
            ("META#guards", ""),
        ])
    );
    // A guard key is not a tenant id: ids are read lowercase.
    assert_eq!(reg.get("DOMAIN#x.example").await.unwrap(), None);
    assert!(matches!(
        reg.delete("ORG#org x").await,
        Err(StoreError::UnknownTenant(_))
    ));

    // The scheduler's scan, page by page, sees tenants only, none of them corrupt.
    reg.delete("bbbb").await.unwrap();
    reg.insert(&tenant("dddd", Some("d.example"), Some("Org D")))
        .await
        .unwrap();
    let mut start = None;
    let (mut tenants, mut pages) = (Vec::new(), 0);
    loop {
        let p = reg.scan_page(start, 1).await.unwrap();
        assert_eq!(p.corrupt, 0);
        tenants.extend(p.tenants.into_iter().map(|t| t.tenant_id));
        pages += 1;
        match p.next {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    tenants.sort();
    assert_eq!(tenants, ["aaaa", "dddd"]);
    assert!(pages > 2, "guard items were on the pages too: {pages}");
    let queues = JobQueues {
        sender: SqsSender::new(f.sqs.clone()),
        commercial_url: Some(f.queues.jobs_commercial.clone()),
        usgov_url: Some(f.queues.jobs_usgov.clone()),
    };
    let summary = fan_out(
        &reg,
        &queues,
        Utc::now(),
        300,
        &itdr_shared::schedule::Cadence::default(),
        2,
    )
    .await
    .unwrap();
    assert_eq!((summary.tenants, summary.corrupt), (2, 0), "{summary:?}");
    assert_eq!(summary.commercial_jobs, 4);
    // Several pages were read (each next one while this one's jobs were sent), and the pages'
    // jobs went out in their own batches.
    assert!(summary.registry_pages >= 3, "{summary:?}");
    assert!(summary.send_calls >= 2, "{summary:?}");
    let jobs = f.drain(&f.queues.jobs_commercial).await;
    assert_eq!(jobs.len(), 4);
    for m in &jobs {
        let job: JobMessage = serde_json::from_str(m.body().unwrap()).unwrap();
        assert!(
            ["aaaa", "dddd"].contains(&job.tenant_id.as_str()),
            "{job:?}"
        );
    }
}

#[tokio::test]
async fn registries_written_before_guards_keep_working_and_get_their_guards() {
    let f = AwsFixture::start().await;
    let table = "legacy-registry";
    f.create_store_tables(table, "legacy-cursors").await;
    put_legacy(&f, table, "l1", Some("l1.example"), Some("Legacy")).await;
    put_legacy(&f, table, "l2", Some("l2.example"), Some("legacy ")).await;
    put_legacy(&f, table, "l3", None, None).await;

    let reg = DynamoRegistry::new(f.ddb.clone(), table);
    // Readable as they are, health updates included.
    assert_eq!(reg.list().await.unwrap().len(), 3);
    assert_eq!(
        reg.get("l1").await.unwrap().unwrap().org.as_deref(),
        Some("Legacy")
    );
    reg.update_health(
        "l3",
        &HealthUpdate::Success {
            stream: Stream::Signins,
            at: Utc::now(),
            newest_event: None,
            throttled: false,
        },
    )
    .await
    .unwrap();

    // The backfill guards what it can and reports the duplicate it cannot.
    let report = reg.backfill_guards().await.unwrap();
    assert_eq!(
        report,
        GuardBackfill {
            already_done: false,
            tenants: 3,
            duplicates: vec![("l2".into(), "organization", "l1".into())],
        }
    );
    assert_eq!(
        items(&f, table).await,
        map(&[
            ("l1", ""),
            ("l2", ""),
            ("l3", ""),
            ("DOMAIN#l1.example", "l1"),
            ("DOMAIN#l2.example", "l2"),
            ("ORG#legacy", "l1"),
            ("META#guards", ""),
        ])
    );
    assert!(reg.backfill_guards().await.unwrap().already_done);

    // From now on the legacy values are guarded.
    refused(
        reg.insert(&tenant("n1", Some("L1.EXAMPLE"), Some("New")))
            .await,
        &["domain", "l1"],
    );
    // The duplicate must change its organization before anything else changes...
    let mut l2 = reg.get("l2").await.unwrap().unwrap();
    l2.enabled = false;
    refused(reg.update(&l2).await, &["organization", "l1"]);
    l2.org = Some("Second".into());
    reg.update(&l2).await.unwrap();
    assert_eq!(reg.get("l2").await.unwrap(), Some(l2));
    // ...and giving it up never took l1's guard away.
    refused(
        reg.insert(&tenant("n2", None, Some("LEGACY"))).await,
        &["organization", "l1"],
    );
    reg.update(&tenant("l3", Some("l3.example"), Some("Third")))
        .await
        .unwrap();
    assert_eq!(
        items(&f, table).await.get("ORG#third").map(String::as_str),
        Some("l3")
    );
}

#[tokio::test]
async fn a_new_registry_value_backfills_before_its_first_write() {
    let f = AwsFixture::start().await;
    put_legacy(&f, REGISTRY_TABLE, "l1", Some("l1.example"), Some("Legacy")).await;
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    refused(
        reg.insert(&tenant("n1", Some("n1.example"), Some("LEGACY")))
            .await,
        &["organization", "l1"],
    );
    assert_eq!(reg.get("n1").await.unwrap(), None);
    assert!(reg.backfill_guards().await.unwrap().already_done);
}

#[tokio::test]
async fn stale_guards_are_reclaimed_and_live_ones_are_not() {
    let f = AwsFixture::start().await;
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    reg.insert(&tenant("aaaa", Some("a.example"), Some("Org A")))
        .await
        .unwrap();
    // Left by hand edits: a guard whose tenant is gone, and one whose tenant holds another
    // domain now.
    put_guard(&f, REGISTRY_TABLE, "ORG#ghost org", "gone").await;
    put_guard(&f, REGISTRY_TABLE, "DOMAIN#moved.example", "aaaa").await;
    reg.insert(&tenant("bbbb", Some("moved.example"), Some("Ghost Org")))
        .await
        .unwrap();
    let all = items(&f, REGISTRY_TABLE).await;
    assert_eq!(all.get("ORG#ghost org").map(String::as_str), Some("bbbb"));
    assert_eq!(
        all.get("DOMAIN#moved.example").map(String::as_str),
        Some("bbbb")
    );
    // A guard its tenant still holds stays: the write is refused.
    refused(
        reg.insert(&tenant("cccc", Some("A.Example"), None)).await,
        &["domain", "aaaa"],
    );
    refused(
        reg.update(&tenant("bbbb", Some("moved.example"), Some("org a")))
            .await,
        &["organization", "aaaa"],
    );
    let all = items(&f, REGISTRY_TABLE).await;
    assert_eq!(
        all.get("DOMAIN#a.example").map(String::as_str),
        Some("aaaa")
    );
    assert_eq!(all.get("ORG#org a").map(String::as_str), Some("aaaa"));
    assert_eq!(reg.get("cccc").await.unwrap(), None);
}

/// Fails every DynamoDB call after the first `allowed` (the scheduler's scans).
#[derive(Debug)]
struct FailAfter {
    allowed: usize,
    calls: AtomicUsize,
}

impl Intercept for FailAfter {
    fn name(&self) -> &'static str {
        "FailAfter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            return Err("injected: the registry is unavailable".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_registry_page_failing_mid_fan_out_fails_the_run_and_the_retry_sends_each_job_once() {
    let f = AwsFixture::start().await;
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    for id in ["aaaa", "bbbb", "cccc"] {
        reg.insert(&tenant(id, None, None)).await.unwrap();
    }
    let queues = JobQueues {
        sender: SqsSender::new(f.sqs.clone()),
        commercial_url: Some(f.queues.jobs_commercial.clone()),
        usgov_url: Some(f.queues.jobs_usgov.clone()),
    };
    let at = Utc::now();
    let cadence = itdr_shared::schedule::Cadence::default();
    // Pages of one item: the first page's jobs are sent while the second page is read, and
    // that read fails.
    let failing = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&f.sdk)
            .interceptor(FailAfter {
                allowed: 1,
                calls: AtomicUsize::new(0),
            })
            .build(),
    );
    let broken = DynamoRegistry::new(failing, REGISTRY_TABLE);
    let err = fan_out(&broken, &queues, at, 300, &cadence, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, ScheduleError::Registry(_)), "{err:?}");
    assert_eq!(err.kind(), "RegistryUnavailable");
    // The retry of the same slot sends every tenant's jobs; the first page's, already sent,
    // are dropped by their deduplication ids.
    let summary = fan_out(&reg, &queues, at, 300, &cadence, 1).await.unwrap();
    assert_eq!(summary.tenants, 3, "{summary:?}");
    let jobs = f.drain(&f.queues.jobs_commercial).await;
    let mut sent: Vec<(String, Stream)> = jobs
        .iter()
        .map(|m| {
            let job: JobMessage = serde_json::from_str(m.body().unwrap()).unwrap();
            (job.tenant_id, job.stream)
        })
        .collect();
    sent.sort();
    let mut expected: Vec<(String, Stream)> = ["aaaa", "bbbb", "cccc"]
        .iter()
        .flat_map(|t| [Stream::Signins, Stream::DirectoryAudits].map(|s| (t.to_string(), s)))
        .collect();
    expected.sort();
    assert_eq!(sent, expected, "each job once, none lost");
}
