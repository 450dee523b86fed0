//! The report function (the Identity Security Assessment on AWS) against moto and the
//! Microsoft simulator: a commercial tenant with sign-in digests written through the pollers'
//! decorator sink, a GCC High tenant and a tenant without Entra ID P1 (and without a contact);
//! each group's function writes HTML and JSON into its own bucket only, emails the contact a
//! presigned link that fetches the HTML, sends the findings to the events queue in the queue
//! contract, does nothing within the interval and compares with the previous report after it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE, REGISTRY_TABLE, SECRET_PREFIX};
use itdr_shared::assess::digest::{DigestSink, DigestStore};
use itdr_shared::assess::{FindingKind, Report, Section};
use itdr_shared::aws::config::ReportConfig;
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::aws::report::{ReportContext, ReportError, ReportSummary, handle_report};
use itdr_shared::aws::sqs::{SqsEventSink, SqsSender};
use itdr_shared::clock::ManualClock;
use itdr_shared::inventory::{Degradation, InventoryStore, Summary};
use itdr_shared::store::{CursorStore, Envelope, EventSink, Health, TenantRecord, TenantRegistry};
use itdr_shared::telemetry::LogTelemetry;
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{SimConfig, SimHandle, Simulator, TenantSpec};
use serde_json::{Value, json};

const SENDER: &str = "reports@itdr.example";
const BUCKET_COMMERCIAL: &str = "itdr-reports-commercial";
const BUCKET_USGOV: &str = "itdr-reports-usgov";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 6, 0, 0).single().unwrap()
}

fn contact(spec: &TenantSpec) -> String {
    format!("security@{}", spec.domain)
}

struct World {
    f: AwsFixture,
    sim: SimHandle,
    clock: ManualClock,
    s3: aws_sdk_s3::Client,
    commercial: TenantSpec,
    gcch: TenantSpec,
    no_p1: TenantSpec,
}

async fn world() -> World {
    let f = AwsFixture::start().await;
    let clock = ManualClock::new(t0());
    let commercial = TenantSpec::new(0, Cloud::Global);
    let gcch = TenantSpec::new(1, Cloud::GccHigh);
    let mut no_p1 = TenantSpec::new(2, Cloud::Global);
    no_p1.has_p1 = false;
    let specs = vec![commercial.clone(), gcch.clone(), no_p1.clone()];
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(
        SimConfig::new(7, specs.clone()),
        Arc::new(clock.clone()),
        bind,
    )
    .await
    .unwrap();
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    let cursors = DynamoCursorStore::new(f.ddb.clone(), CURSOR_TABLE);
    for s in &specs {
        let app_ref = format!("sim-{}", s.tenant_id);
        reg.insert(&TenantRecord {
            tenant_id: s.tenant_id.clone(),
            domain: Some(s.domain.clone()),
            org: None,
            cloud: s.cloud,
            app_ref: app_ref.clone(),
            streams: Stream::EVERY.to_vec(),
            include_noninteractive: false,
            enabled: true,
            health: Health::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
        f.put_secret(
            &format!("{SECRET_PREFIX}/{}/{app_ref}", s.cloud.group()),
            &json!({"client_id": s.app_id, "client_secret": s.client_secret}).to_string(),
        )
        .await;
        // The inventory completed once: its summaries exist.
        let degraded = if s.has_p1 {
            Vec::new()
        } else {
            vec![Degradation {
                what: "signInActivity".into(),
                reason: "licence_required".into(),
                lost: "last sign-in".into(),
            }]
        };
        cursors
            .put_summary(
                &s.tenant_id,
                Stream::Users,
                &Summary::of(std::iter::empty(), t0(), degraded),
            )
            .await
            .unwrap();
    }
    // Contacts: the commercial and the GCC High tenant; the tenant without P1 has none.
    reg.set_contact(&commercial.tenant_id, Some(&contact(&commercial)))
        .await
        .unwrap();
    reg.set_contact(&gcch.tenant_id, Some(&contact(&gcch)))
        .await
        .unwrap();
    assert!(
        reg.set_contact(&gcch.tenant_id, Some("not an address"))
            .await
            .is_err()
    );

    let s3 = itdr_shared::aws::report::s3_client(&f.sdk, true);
    for b in [BUCKET_COMMERCIAL, BUCKET_USGOV] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    // SES only sends from a verified identity: verify the sender first.
    let ses = aws_sdk_sesv2::Client::new(&f.sdk);
    ses.create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap();
    World {
        f,
        sim,
        clock,
        s3,
        commercial,
        gcch,
        no_p1,
    }
}

fn sign_in(tenant: &str, at: DateTime<Utc>, app: &str, user: &str) -> Value {
    json!({"class_uid": 3002, "time": at.timestamp_millis(), "user": {"name": user},
        "metadata": {"tenant_uid": tenant, "log_name": "signIns"},
        "unmapped": {"clientAppUsed": app}})
}

/// The pollers' delivery path: the events queue behind the digest decorator.
async fn deliver_sign_ins(w: &World) {
    let sink = DigestSink::new(
        Arc::new(SqsEventSink::new(
            SqsSender::new(w.f.sqs.clone()),
            &w.f.queues.events,
        )),
        Arc::new(DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE)),
        Arc::new(LogTelemetry),
        Arc::new(w.clock.clone()),
    );
    let t = &w.commercial.tenant_id;
    let day = t0() - TimeDelta::days(2);
    let events = vec![
        sign_in(t, day, "IMAP4", "legacy.user@contoso.example"),
        sign_in(t, day, "IMAP4", "legacy.user@contoso.example"),
        sign_in(t, day, "Authenticated SMTP", "printer@contoso.example"),
        sign_in(t, day, "Browser", "someone@contoso.example"),
        sign_in(
            t,
            day - TimeDelta::days(1),
            "Mobile Apps and Desktop clients",
            "someone@contoso.example",
        ),
    ];
    sink.send(&[Envelope {
        envelope_version: 1,
        ocsf_version: "1.8.0".into(),
        tenant_id: t.clone(),
        stream: Stream::Signins,
        events,
    }])
    .await
    .unwrap();
    let days = DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE)
        .days(t, day.date_naive() - TimeDelta::days(5), day.date_naive())
        .await
        .unwrap();
    assert_eq!(days.iter().map(|d| d.total).sum::<u64>(), 5);
    // The sign-ins themselves were delivered; this test looks at the findings only.
    assert_eq!(w.f.drain(&w.f.queues.events).await.len(), 1);
}

fn context(w: &World, group: CloudGroup, bucket: &str) -> ReportContext {
    let env: HashMap<&str, String> = [
        ("ITDR_CLOUD_GROUP", group.as_str().to_string()),
        ("ITDR_REGISTRY_TABLE", REGISTRY_TABLE.to_string()),
        ("ITDR_CURSOR_TABLE", CURSOR_TABLE.to_string()),
        ("ITDR_EVENTS_QUEUE_URL", w.f.queues.events.clone()),
        ("ITDR_SECRET_PREFIX", SECRET_PREFIX.to_string()),
        ("ITDR_REPORTS_BUCKET", bucket.to_string()),
        ("ITDR_REPORT_SENDER", SENDER.to_string()),
        ("ITDR_REPORT_LINK_EXPIRY_SECS", "3600".to_string()),
        ("ITDR_ENDPOINT_OVERRIDE", w.sim.base_url()),
    ]
    .into_iter()
    .collect();
    let cfg = ReportConfig::from_lookup(group, &|k| env.get(k).cloned()).unwrap();
    ReportContext::from_config(&cfg, &w.f.sdk, Arc::new(w.clock.clone()), true).unwrap()
}

fn schedule(at: DateTime<Utc>) -> Value {
    json!({"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
        "time": at.to_rfc3339(), "region": "us-east-1", "resources": [], "detail": {}})
}

async fn run(ctx: &ReportContext, at: DateTime<Utc>) -> ReportSummary {
    handle_report(&schedule(at), ctx, Duration::from_secs(600))
        .await
        .unwrap()
}

async fn keys(w: &World, bucket: &str) -> BTreeSet<String> {
    let resp = w.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    resp.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

async fn object(w: &World, bucket: &str, key: &str) -> Vec<u8> {
    let o =
        w.s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The emails moto's SES kept (its backend data API).
async fn emails(w: &World) -> Vec<Value> {
    let body = reqwest::Client::new()
        .get(format!("{}/moto-api/data.json", w.f.moto.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

fn report_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/schemas/assessment-report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// The findings on the events queue: every message in the contract, all OCSF 2003.
async fn findings(w: &World) -> Vec<Envelope> {
    let msgs = w.f.drain(&w.f.queues.events).await;
    msgs.iter()
        .map(|m| {
            let wrong = itdr_aws_tests::queue_contract::envelope_message_errors(m);
            assert!(wrong.is_empty(), "queue contract: {wrong:?}");
            let e: Envelope = serde_json::from_str(m.body().unwrap()).unwrap();
            for ev in &e.events {
                assert_eq!(ev["class_uid"], 2003);
                assert_eq!(
                    ev["metadata"]["log_name"],
                    itdr_shared::assess::ocsf::LOG_NAME
                );
            }
            e
        })
        .collect()
}

fn link_in(body: &str) -> String {
    let start = body.find("http://").expect("a link in the email");
    let end = body[start..]
        .find(['"', '\n', ' '])
        .map_or(body.len(), |e| start + e);
    body[start..end].replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_reports_its_tenants_into_its_own_bucket_emails_and_compares() {
    let w = world().await;
    deliver_sign_ins(&w).await;
    let commercial = context(&w, CloudGroup::Commercial, BUCKET_COMMERCIAL);
    let usgov = context(&w, CloudGroup::UsGov, BUCKET_USGOV);
    let (c, g, np) = (
        &w.commercial.tenant_id,
        &w.gcch.tenant_id,
        &w.no_p1.tenant_id,
    );

    // First run: the commercial function reports its two tenants, into its bucket only.
    let s = run(&commercial, t0()).await;
    assert_eq!(s.tenants, 2, "{s:?}");
    assert_eq!(s.written.len(), 2, "{s:?}");
    let day = "2026-06-01";
    let expected: BTreeSet<String> = [c, np]
        .iter()
        .flat_map(|t| ["html", "json"].map(|x| format!("reports/{t}/{day}/assessment.{x}")))
        .collect();
    assert_eq!(keys(&w, BUCKET_COMMERCIAL).await, expected);
    assert!(keys(&w, BUCKET_USGOV).await.is_empty());

    // The JSON is a valid report; the commercial tenant's legacy sign-ins come from the digest.
    let schema = report_schema();
    let json_of = |t: &str, day: &str| format!("reports/{t}/{day}/assessment.json");
    let mut reports = HashMap::new();
    for t in [c, np] {
        let doc: Value =
            serde_json::from_slice(&object(&w, BUCKET_COMMERCIAL, &json_of(t, day)).await).unwrap();
        let errs: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errs.is_empty(), "{errs:?}");
        let r: Report = serde_json::from_value(doc).unwrap();
        assert!(
            r.inventory.users > 0,
            "the inventory was read from the simulator"
        );
        assert!(r.changes.is_none());
        reports.insert(t.clone(), r);
    }
    let rc = &reports[c];
    assert_eq!(rc.coverage.sign_ins, Some(5));
    let legacy = rc
        .finding(FindingKind::LegacySignIns)
        .expect("legacy sign-ins found");
    assert_eq!(legacy.count, 2, "two users signed in over legacy protocols");
    assert!(
        rc.coverage
            .degraded
            .iter()
            .any(|d| d.reason == "at_least_once"),
        "the coverage says the counts are at least once"
    );
    let rn = &reports[np];
    assert_eq!(rn.coverage.sign_ins, None, "no P1, no digest: not assessed");
    assert!(
        rn.section(Section::LegacyAuth)
            .unwrap()
            .not_assessed
            .iter()
            .any(|n| n.kind == FindingKind::LegacySignIns)
    );
    assert!(
        rn.coverage
            .degraded
            .iter()
            .any(|d| d.what == "signInActivity")
    );

    // One email, to the commercial contact (the other tenant has none), whose link fetches the
    // HTML from the bucket.
    let mails = emails(&w).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m["source"], SENDER);
    assert_eq!(
        m["destinations"]["ToAddresses"],
        json!([contact(&w.commercial)])
    );
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .contains(&w.commercial.domain)
    );
    let link = link_in(m["body"].as_str().unwrap());
    assert!(link.contains("X-Amz-Expires=3600"), "{link}");
    let html = reqwest::get(&link).await.unwrap();
    assert!(html.status().is_success());
    let html = html.bytes().await.unwrap();
    let stored = object(
        &w,
        BUCKET_COMMERCIAL,
        &format!("reports/{c}/{day}/assessment.html"),
    )
    .await;
    assert_eq!(html.to_vec(), stored);
    assert!(s.written.iter().any(|x| &x.tenant_id == c && x.emailed));
    assert!(s.written.iter().any(|x| &x.tenant_id == np && !x.emailed));

    // The findings are on the events queue, per tenant, in the contract.
    let env = findings(&w).await;
    let by_tenant = |t: &str| -> usize {
        env.iter()
            .filter(|e| e.tenant_id == t)
            .map(|e| e.events.len())
            .sum()
    };
    assert_eq!(by_tenant(c), rc.findings.len());
    assert_eq!(by_tenant(np), rn.findings.len());
    assert!(!rc.findings.is_empty());

    // The GCC High function: its tenant into its own bucket, and nothing commercial.
    let before = keys(&w, BUCKET_COMMERCIAL).await;
    let s = run(&usgov, t0()).await;
    assert_eq!((s.tenants, s.written.len()), (1, 1), "{s:?}");
    assert_eq!(
        keys(&w, BUCKET_USGOV).await,
        ["html", "json"]
            .map(|x| format!("reports/{g}/{day}/assessment.{x}"))
            .into_iter()
            .collect()
    );
    assert_eq!(keys(&w, BUCKET_COMMERCIAL).await, before);
    assert_eq!(emails(&w).await.len(), 2);
    let refused = handle_report(&json!({"tenant_id": c}), &usgov, Duration::from_secs(60)).await;
    assert!(
        matches!(refused, Err(ReportError::Refused { .. })),
        "{refused:?}"
    );
    assert_eq!(keys(&w, BUCKET_USGOV).await.len(), 2);
    assert!(by_tenant_of(&findings(&w).await, g) > 0);

    // A day later: nothing is due.
    let s = run(&commercial, t0() + TimeDelta::days(1)).await;
    assert_eq!((s.not_due, s.written.len()), (2, 0), "{s:?}");
    assert_eq!(emails(&w).await.len(), 2);
    assert!(findings(&w).await.is_empty());

    // After the interval: new reports, compared with the previous ones.
    w.clock.advance(Duration::from_secs(8 * 86_400));
    let later = t0() + TimeDelta::days(8);
    let s = run(&commercial, later).await;
    assert_eq!(s.written.len(), 2, "{s:?}");
    assert!(s.written.iter().all(|x| x.compared));
    let r: Report =
        serde_json::from_slice(&object(&w, BUCKET_COMMERCIAL, &json_of(c, "2026-06-09")).await)
            .unwrap();
    let changes = r.changes.expect("compared with the previous report");
    assert_eq!(changes.since, t0());
    assert_eq!(emails(&w).await.len(), 3);
    // Still open findings are updates of the same OCSF findings.
    let env = findings(&w).await;
    let updates = env
        .iter()
        .filter(|e| &e.tenant_id == c)
        .flat_map(|e| &e.events)
        .filter(|e| e["activity_id"] == 2)
        .count();
    assert_eq!(updates, changes.still_open.len());

    // Offboarding with purge removes the tenant's digests with its other items.
    let store = DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE);
    let (from, to) = (
        t0().date_naive() - TimeDelta::days(40),
        t0().date_naive() + TimeDelta::days(1),
    );
    assert!(!store.days(c, from, to).await.unwrap().is_empty());
    store.purge(c).await.unwrap();
    assert!(store.days(c, from, to).await.unwrap().is_empty());
}

fn by_tenant_of(env: &[Envelope], t: &str) -> usize {
    env.iter()
        .filter(|e| e.tenant_id == t)
        .map(|e| e.events.len())
        .sum()
}
