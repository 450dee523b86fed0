//! The AWS adapters against a real moto server: cursor compare-and-set, registry CRUD and
//! health, SQS batching with splitting and attributes, the secrets cache and redaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE, LogCapture, REGISTRY_TABLE, SECRET_PREFIX, attr};
use itdr_shared::auth::{ClientCredential, CredentialSource, SecretError};
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::aws::secrets::SecretsManagerSource;
use itdr_shared::aws::sqs::{SqsDeadLetterSink, SqsEventSink, SqsSender};
use itdr_shared::clock::{Clock, ManualClock};
use itdr_shared::health::FailureKind;
use itdr_shared::store::{
    CursorStore, DeadLetter, DeadLetterSink, Envelope, EventSink, Health, HealthState,
    HealthUpdate, StoreError, TenantRecord, TenantRegistry,
};
use itdr_shared::{Cloud, CloudGroup, Stream};

fn record(id: &str, cloud: Cloud) -> TenantRecord {
    TenantRecord {
        tenant_id: id.into(),
        domain: Some(format!("{id}.onmicrosoft.com")),
        org: Some(format!("Org {id}")),
        cloud,
        app_ref: "default".into(),
        streams: Stream::ALL.to_vec(),
        include_noninteractive: true,
        enabled: true,
        health: Health::default(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

#[tokio::test]
async fn cursor_compare_and_set_refuses_stale_versions() {
    let f = AwsFixture::start().await;
    let store = DynamoCursorStore::new(f.ddb.clone(), CURSOR_TABLE);
    let s = Stream::Signins;
    assert_eq!(store.load("t1", s).await.unwrap(), None);
    let v1 = store
        .commit("t1", s, None, &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(v1, 1);
    // A second "first" commit lost the race.
    let e = store
        .commit("t1", s, None, &serde_json::json!({"n": 99}))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Conflict { expected: None, .. }),
        "{e}"
    );
    assert_eq!(
        store
            .commit("t1", s, Some(1), &serde_json::json!({"n": 2}))
            .await
            .unwrap(),
        2
    );
    // Stale writer: expected 1, stored 2. Nothing is overwritten.
    let e = store
        .commit("t1", s, Some(1), &serde_json::json!({"n": 77}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Conflict {
                expected: Some(1),
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_retryable());
    let c = store.load("t1", s).await.unwrap().unwrap();
    assert_eq!((c.version, c.doc), (2, serde_json::json!({"n": 2})));
    // Concurrent writers are not exercised here: moto serves requests on several threads
    // without making a conditional write atomic, which DynamoDB does. The stale-version cases
    // above are what the condition expression decides.
    store
        .commit("t1", s, Some(2), &serde_json::json!({"n": 3}))
        .await
        .unwrap();
    assert_eq!(store.load("t1", s).await.unwrap().unwrap().version, 3);
    // Other tenants and streams are independent; purge removes one tenant only.
    store
        .commit("t1", Stream::DirectoryAudits, None, &serde_json::json!({}))
        .await
        .unwrap();
    store
        .commit("t2", s, None, &serde_json::json!({}))
        .await
        .unwrap();
    store.purge("t1").await.unwrap();
    assert_eq!(store.load("t1", s).await.unwrap(), None);
    assert_eq!(
        store.load("t1", Stream::DirectoryAudits).await.unwrap(),
        None
    );
    assert!(store.load("t2", s).await.unwrap().is_some());
}

#[tokio::test]
async fn registry_crud_and_conditional_health_updates() {
    let f = AwsFixture::start().await;
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    let a = record("aaaa", Cloud::Global);
    let b = record("bbbb", Cloud::GccHigh);
    reg.insert(&b).await.unwrap();
    reg.insert(&a).await.unwrap();
    assert!(matches!(reg.insert(&a).await, Err(StoreError::Invalid(_))));
    let list = reg.list().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|t| t.tenant_id.as_str())
            .collect::<Vec<_>>(),
        ["aaaa", "bbbb"]
    );
    assert_eq!(reg.get("bbbb").await.unwrap().unwrap(), b);
    assert_eq!(reg.get("nope").await.unwrap(), None);

    let mut changed = a.clone();
    changed.app_ref = "other".into();
    changed.domain = None;
    changed.enabled = false;
    changed.streams = vec![Stream::DirectoryAudits];
    reg.update(&changed).await.unwrap();
    assert_eq!(reg.get("aaaa").await.unwrap().unwrap(), changed);
    assert!(matches!(
        reg.update(&record("zzzz", Cloud::Global)).await,
        Err(StoreError::UnknownTenant(_))
    ));

    // Health updates are read-modify-write conditioned on `rev`; each one is applied. (Run one
    // after the other: moto does not make concurrent conditional writes atomic.)
    let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    for _ in 0..6 {
        reg.update_health(
            "bbbb",
            &HealthUpdate::Failure {
                stream: Stream::Signins,
                at,
                kind: FailureKind::Throttled,
            },
        )
        .await
        .unwrap();
    }
    let h = reg.get("bbbb").await.unwrap().unwrap().health;
    assert_eq!(h.consecutive_failures, 6);
    assert_eq!(h.state, HealthState::Degraded);
    assert_eq!(h.last_error_kind, Some(FailureKind::Throttled));
    let h = reg
        .update_health(
            "bbbb",
            &HealthUpdate::Success {
                stream: Stream::Signins,
                at,
                newest_event: Some(at),
                throttled: false,
            },
        )
        .await
        .unwrap();
    assert_eq!((h.state, h.consecutive_failures), (HealthState::Healthy, 0));
    assert_eq!(h.last_success, Some(at));
    assert_eq!(reg.get("bbbb").await.unwrap().unwrap().health, h);
    assert!(matches!(
        reg.update_health(
            "zzzz",
            &HealthUpdate::Success {
                stream: Stream::Signins,
                at,
                newest_event: None,
                throttled: false
            }
        )
        .await,
        Err(StoreError::UnknownTenant(_))
    ));
    // The scan pages through everything.
    for i in 0..25 {
        reg.insert(&record(&format!("t{i:03}"), Cloud::Global))
            .await
            .unwrap();
    }
    let mut start = None;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let p = reg.scan_page(start, 10).await.unwrap();
        seen += p.tenants.len();
        pages += 1;
        match p.next {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    assert_eq!(seen, 27);
    assert!(pages >= 3);
    reg.delete("aaaa").await.unwrap();
    assert!(matches!(
        reg.delete("aaaa").await,
        Err(StoreError::UnknownTenant(_))
    ));
}

fn envelope(tenant: &str, n: usize, pad: usize, class: i64) -> Envelope {
    Envelope {
        envelope_version: 1,
        ocsf_version: "1.8.0".into(),
        tenant_id: tenant.into(),
        stream: Stream::Signins,
        events: (0..n)
            .map(|i| serde_json::json!({"class_uid": class, "i": i, "pad": "x".repeat(pad)}))
            .collect(),
    }
}

#[tokio::test]
async fn sqs_sink_splits_batches_by_count_and_bytes_and_sets_attributes() {
    let f = AwsFixture::start().await;
    let sink = SqsEventSink::new(SqsSender::new(f.sqs.clone()), &f.queues.events);
    // 25 small envelopes: 3 batches by entry count. 6 envelopes of ~100 KB: batches by bytes.
    // One envelope of ~600 KB: split by events into messages under the limit.
    let mut envs: Vec<Envelope> = (0..25)
        .map(|i| envelope(&format!("t{i}"), 2, 10, 3002))
        .collect();
    envs.extend((0..6).map(|_| envelope("big", 10, 10_000, 6003)));
    envs.push(envelope("huge", 60, 10_000, 3002));
    sink.send(&envs).await.unwrap();
    let msgs = f.drain(&f.queues.events).await;
    let mut events = 0;
    for m in &msgs {
        let body = m.body().unwrap();
        let size = body.len()
            + m.message_attributes()
                .unwrap()
                .iter()
                .map(|(k, v)| k.len() + v.data_type().len() + v.string_value().unwrap().len())
                .sum::<usize>();
        assert!(size <= 262_144, "{size}");
        let env: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(
            attr(m, "tenant_id").as_deref(),
            Some(env.tenant_id.as_str())
        );
        assert_eq!(attr(m, "stream").as_deref(), Some("signins"));
        assert_eq!(attr(m, "envelope_version").as_deref(), Some("1"));
        assert_eq!(attr(m, "ocsf_version").as_deref(), Some("1.8.0"));
        let class = env.events[0]["class_uid"].as_i64().unwrap().to_string();
        assert_eq!(attr(m, "ocsf_class_uids"), Some(class));
        events += env.events.len();
    }
    assert_eq!(events, 25 * 2 + 6 * 10 + 60);
    let huge = msgs
        .iter()
        .filter(|m| attr(m, "tenant_id").as_deref() == Some("huge"))
        .count();
    assert!(huge >= 3, "the 600 KB envelope was split: {huge}");
    assert_eq!(msgs.len(), 25 + 6 + huge);

    // Dead letters, one too large for a message.
    let dl = SqsDeadLetterSink::new(SqsSender::new(f.sqs.clone()), &f.queues.dead_letters);
    let at = Utc::now();
    let letters = vec![
        DeadLetter {
            tenant_id: "t1".into(),
            stream: Stream::DirectoryAudits,
            reason: "missing field activityDateTime".into(),
            record: serde_json::json!({"id": "r1"}),
            at,
        },
        DeadLetter {
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            reason: "event_too_large: 400000 bytes".into(),
            record: serde_json::json!({"blob": "y".repeat(400_000)}),
            at,
        },
    ];
    dl.put(&letters).await.unwrap();
    let got = f.drain(&f.queues.dead_letters).await;
    assert_eq!(got.len(), 2);
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert!(bodies.iter().any(|b| b["record"]["id"] == "r1"));
    assert!(bodies.iter().any(|b| b["record"]["truncated"] == true
        && b["record"]["record_bytes"].as_u64() > Some(400_000)));
    assert!(got.iter().all(|m| attr(m, "reason").is_some()));
    for m in &got {
        let wrong = itdr_aws_tests::queue_contract::dead_letter_message_errors(m);
        assert!(wrong.is_empty(), "queue contract: {wrong:?}");
    }
}

#[tokio::test]
async fn sqs_sink_reports_undeliverable_messages() {
    let f = AwsFixture::start().await;
    // A queue that does not exist: every attempt fails; the sink reports it, it does not drop it.
    let missing = format!("{}/123456789012/no-such-queue", f.moto.url);
    let sink = SqsEventSink::new(
        SqsSender::new(f.sqs.clone()).with_retries(2, Duration::from_millis(1)),
        missing,
    );
    let e = sink.send(&[envelope("t", 1, 1, 3002)]).await.unwrap_err();
    assert!(
        matches!(
            e,
            itdr_shared::store::SinkError::Partial {
                failed: 1,
                total: 1
            }
        ),
        "{e}"
    );
}

const SECRET_VALUE: &str = "S3CRET-VALUE-must-never-appear";

#[tokio::test]
async fn secrets_are_cached_for_the_ttl_and_never_shown() {
    let f = AwsFixture::start().await;
    let logs = LogCapture::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );

    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
    let name = format!("{SECRET_PREFIX}/commercial/default");
    f.put_secret(
        &name,
        &serde_json::json!({"client_id": "app-1", "client_secret": SECRET_VALUE}).to_string(),
    )
    .await;
    let source = SecretsManagerSource::new(
        f.secrets.clone(),
        SECRET_PREFIX,
        CloudGroup::Commercial,
        Duration::from_secs(300),
        Arc::new(clock.clone()),
    );
    let secret_of = |c: &itdr_shared::auth::AppCredential| match &c.credential {
        ClientCredential::Secret(s) => s.expose().to_string(),
        ClientCredential::Certificate(_) => panic!("expected a client secret"),
    };
    let c = source.app_credential("default").await.unwrap();
    assert_eq!(c.client_id, "app-1");
    assert_eq!(secret_of(&c), SECRET_VALUE);
    assert_eq!(source.fetches(), 1);
    // Rotated in Secrets Manager: still cached until the TTL passes.
    f.put_secret(
        &name,
        &serde_json::json!({"client_id": "app-1", "client_secret": "rotated-value"}).to_string(),
    )
    .await;
    clock.advance(Duration::from_secs(299));
    assert_eq!(
        secret_of(&source.app_credential("default").await.unwrap()),
        SECRET_VALUE
    );
    assert_eq!(source.fetches(), 1);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        secret_of(&source.app_credential("default").await.unwrap()),
        "rotated-value"
    );
    assert_eq!(source.fetches(), 2);
    assert!(clock.now() > Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());

    // Certificate secrets load and are checked.
    let cert = include_str!("../../../shared/tests/fixtures/auth/test-only-cert.pem");
    let key = include_str!("../../../shared/tests/fixtures/auth/test-only-key.pem");
    f.put_secret(
        &format!("{SECRET_PREFIX}/commercial/cert-app"),
        &serde_json::json!({"client_id": "app-2", "certificate_pem": cert, "private_key_pem": key})
            .to_string(),
    )
    .await;
    let c = source.app_credential("cert-app").await.unwrap();
    assert!(matches!(c.credential, ClientCredential::Certificate(_)));
    let key_line = key.lines().nth(3).unwrap();

    // Errors: missing, malformed, another group's prefix is unreachable by construction.
    assert!(matches!(
        source.app_credential("absent").await,
        Err(SecretError::NotFound { .. })
    ));
    assert!(matches!(
        source.app_credential("../usgov/default").await,
        Err(SecretError::BadReference { .. })
    ));
    f.put_secret(
        &format!("{SECRET_PREFIX}/commercial/broken"),
        &format!("{{\"client_id\": \"x\", \"client_secret\": \"{SECRET_VALUE}\", \"oops\": 1}}"),
    )
    .await;
    let e = source.app_credential("broken").await.unwrap_err();
    assert!(matches!(e, SecretError::Malformed { .. }));
    f.put_secret(
        &format!("{SECRET_PREFIX}/commercial/badkey"),
        &serde_json::json!({"client_id": "x", "certificate_pem": cert, "private_key_pem": format!("-----BEGIN PRIVATE KEY-----\n{SECRET_VALUE}\n-----END PRIVATE KEY-----")}).to_string(),
    )
    .await;
    let e2 = source.app_credential("badkey").await.unwrap_err();
    assert!(matches!(e2, SecretError::Credential { .. }), "{e2}");

    // Nothing shows a secret: Debug of credentials and source, errors, and TRACE logs
    // (the SDK's included).
    let shown = format!("{c:?} {source:?} {e} {e:?} {e2} {e2:?}");
    for needle in [SECRET_VALUE, "rotated-value", key_line] {
        assert!(!shown.contains(needle), "{shown}");
        assert!(!logs.text().contains(needle), "secret in logs");
    }
    assert!(!logs.text().is_empty(), "logs were captured");
}
