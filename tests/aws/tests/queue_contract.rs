//! The queue contract (`contract/`): what the SQS adapters put on the events and dead-letters
//! queues validates against the contract's schemas and carries the attributes it promises, and
//! the checks reject what breaks it. (The AWS end-to-end run checks every envelope it drains
//! the same way.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use chrono::Utc;
use itdr_aws_tests::AwsFixture;
use itdr_aws_tests::queue_contract::{dead_letter_message_errors, envelope_message_errors};
use itdr_shared::aws::sqs::{SqsDeadLetterSink, SqsEventSink, SqsSender};
use itdr_shared::batch::{BatchLimits, into_envelopes};
use itdr_shared::ocsf::{NormalizeOptions, normalize};
use itdr_shared::store::{DeadLetter, DeadLetterSink, EventSink};
use itdr_shared::{Cloud, Stream};
use serde_json::Value;

const TENANT: &str = "5f1c2b7a-3d4e-4f60-8a9b-0c1d2e3f4a5b";

/// Every fixture record of a stream, normalized for `TENANT`.
fn events(dir: &str, stream: Stream) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let opts = NormalizeOptions::new(TENANT, Cloud::Global);
    let out: Vec<Value> = files
        .iter()
        .filter_map(|p| {
            let record: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            normalize(stream, &record, &opts).ok()
        })
        .collect();
    assert!(out.len() >= 5, "{dir}: fixtures normalized");
    out
}

#[tokio::test]
async fn what_the_adapters_send_honours_the_queue_contract() {
    let f = AwsFixture::start().await;
    let sink = SqsEventSink::new(SqsSender::new(f.sqs.clone()), &f.queues.events);
    let mut sent = 0;
    for (dir, stream) in [
        ("graph/signins", Stream::Signins),
        ("graph/directory_audits", Stream::DirectoryAudits),
        ("management", Stream::UnifiedAudit),
    ] {
        let evs = events(dir, stream);
        sent += evs.len();
        // Small envelopes, so several messages per stream.
        let limits = BatchLimits {
            max_bytes: 16 * 1024,
            max_events: 4,
        };
        let batches = into_envelopes(TENANT, stream, evs, &limits).unwrap();
        assert!(batches.oversize.is_empty());
        sink.send(&batches.envelopes).await.unwrap();
    }
    let msgs = f.drain(&f.queues.events).await;
    assert!(msgs.len() > 3);
    let mut received = 0;
    for m in &msgs {
        let wrong = envelope_message_errors(m);
        assert!(wrong.is_empty(), "{wrong:?}");
        let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        received += body["events"].as_array().unwrap().len();
    }
    assert_eq!(received, sent);

    let dl = SqsDeadLetterSink::new(SqsSender::new(f.sqs.clone()), &f.queues.dead_letters);
    let at = Utc::now();
    dl.put(&[
        DeadLetter {
            tenant_id: TENANT.into(),
            stream: Stream::DirectoryAudits,
            reason: "record has no usable \"activityDateTime\" field".into(),
            record: serde_json::json!({"id": "r1"}),
            at,
        },
        DeadLetter {
            tenant_id: TENANT.into(),
            stream: Stream::UnifiedAudit,
            reason: format!("event_too_large: {}", "x".repeat(400)),
            record: serde_json::json!({"blob": "y".repeat(300_000)}),
            at,
        },
    ])
    .await
    .unwrap();
    let letters = f.drain(&f.queues.dead_letters).await;
    assert_eq!(letters.len(), 2);
    for m in &letters {
        let wrong = dead_letter_message_errors(m);
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}

fn message(body: &Value, attrs: &[(&str, &str)]) -> Message {
    let mut b = Message::builder().body(body.to_string());
    for (k, v) in attrs {
        b = b.message_attributes(
            *k,
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*v)
                .build()
                .unwrap(),
        );
    }
    b.build()
}

#[test]
fn the_checks_reject_what_breaks_the_contract() {
    let ev = events("graph/signins", Stream::Signins).remove(0);
    let good = serde_json::json!({
        "envelope_version": 1,
        "ocsf_version": "1.8.0",
        "tenant_id": TENANT,
        "stream": "signins",
        "events": [ev],
    });
    let attrs = [
        ("tenant_id", TENANT),
        ("stream", "signins"),
        ("envelope_version", "1"),
        ("ocsf_version", "1.8.0"),
        ("ocsf_class_uids", "3002"),
    ];
    assert!(envelope_message_errors(&message(&good, &attrs)).is_empty());
    // A version the contract does not know, a missing attribute, a wrong class list, an
    // event without its de-duplication key, no events, an unknown stream.
    let mut v2 = good.clone();
    v2["envelope_version"] = 2.into();
    assert!(!envelope_message_errors(&message(&v2, &attrs)).is_empty());
    assert!(!envelope_message_errors(&message(&good, &attrs[..4])).is_empty());
    let mut wrong_classes = attrs;
    wrong_classes[4] = ("ocsf_class_uids", "3001");
    assert!(!envelope_message_errors(&message(&good, &wrong_classes)).is_empty());
    let mut no_uid = good.clone();
    no_uid["events"][0]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    assert!(!envelope_message_errors(&message(&no_uid, &attrs)).is_empty());
    let mut empty = good.clone();
    empty["events"] = serde_json::json!([]);
    assert!(!envelope_message_errors(&message(&empty, &attrs)).is_empty());
    let mut stream = good.clone();
    stream["stream"] = "mail".into();
    let mut mail = attrs;
    mail[1] = ("stream", "mail");
    assert!(!envelope_message_errors(&message(&stream, &mail)).is_empty());

    let letter = serde_json::json!({
        "tenant_id": TENANT, "stream": "signins", "reason": "r", "record": {"id": 1},
        "at": "2026-06-01T12:00:00Z",
    });
    let la = [
        ("tenant_id", TENANT),
        ("stream", "signins"),
        ("reason", "r"),
    ];
    assert!(dead_letter_message_errors(&message(&letter, &la)).is_empty());
    let mut no_reason = letter.clone();
    no_reason.as_object_mut().unwrap().remove("reason");
    assert!(!dead_letter_message_errors(&message(&no_reason, &la)).is_empty());
    assert!(!dead_letter_message_errors(&message(&letter, &la[..2])).is_empty());
}
