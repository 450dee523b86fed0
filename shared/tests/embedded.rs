//! The embedded adapters through the public API and trait objects, as the pipeline uses them:
//! batch events, deliver durably, dead-letter what does not fit, then commit the cursor.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;

use itdr_shared::batch::{BatchLimits, into_envelopes};
use itdr_shared::embedded::{
    MemoryDeadLetters, MemorySink, NdjsonDeadLetters, NdjsonSink, SqliteStore,
};
use itdr_shared::store::{
    CursorStore, DeadLetterSink, EventSink, Health, StoreError, TenantRecord, TenantRegistry,
};
use itdr_shared::{Cloud, Stream};

const TENANT: &str = "6f1c2b9e-0000-4000-8000-000000000001";

fn record() -> TenantRecord {
    TenantRecord {
        tenant_id: TENANT.to_string(),
        domain: Some("contoso.example".to_string()),
        org: None,
        cloud: Cloud::Global,
        app_ref: "default".to_string(),
        streams: Stream::ALL.to_vec(),
        include_noninteractive: false,
        enabled: true,
        health: Health::default(),
        created_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
    }
}

#[tokio::test]
async fn poll_cycle_over_files_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state").join("itdr.db");
    let events_path = dir.path().join("out").join("events.ndjson");
    let dead_path = dir.path().join("out").join("dead-letters.ndjson");
    let at = Utc.with_ymd_and_hms(2025, 1, 2, 4, 0, 0).unwrap();

    {
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let registry: Arc<dyn TenantRegistry> = store.clone();
        let cursors: Arc<dyn CursorStore> = store;
        let sink: Arc<dyn EventSink> = Arc::new(NdjsonSink::open(&events_path).unwrap());
        let dead: Arc<dyn DeadLetterSink> = Arc::new(NdjsonDeadLetters::open(&dead_path).unwrap());

        registry.insert(&record()).await.unwrap();
        let events = vec![
            json!({"n": 0}),
            json!({"n": 1, "blob": "x".repeat(5000)}),
            json!({"n": 2}),
            json!({"n": 3}),
        ];
        let limits = BatchLimits {
            max_bytes: 1000,
            max_events: 2,
        };
        let batches = into_envelopes(TENANT, Stream::Signins, events, &limits).unwrap();
        assert_eq!(batches.envelopes.len(), 2);
        sink.send(&batches.envelopes).await.unwrap();
        let letters: Vec<_> = batches
            .oversize
            .into_iter()
            .map(|o| o.into_dead_letter(TENANT, Stream::Signins, at))
            .collect();
        dead.put(&letters).await.unwrap();
        assert_eq!(
            cursors
                .commit(TENANT, Stream::Signins, None, &json!({"since": "a"}))
                .await
                .unwrap(),
            1
        );
    }

    // Restart: everything committed is still there.
    let store = SqliteStore::open(&db).unwrap();
    let c = store.load(TENANT, Stream::Signins).await.unwrap().unwrap();
    assert_eq!((c.version, c.doc), (1, json!({"since": "a"})));
    assert_eq!(store.list().await.unwrap(), vec![record()]);
    let err = store
        .commit(TENANT, Stream::Signins, None, &json!({"since": "b"}))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ns: Vec<i64> = lines.iter().map(|v| v["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, vec![0, 2, 3]);
    let dead_lines = std::fs::read_to_string(&dead_path).unwrap();
    assert_eq!(dead_lines.lines().count(), 1);
    assert!(dead_lines.contains("event_too_large"));
}

#[tokio::test]
async fn failed_delivery_leaves_the_cursor_alone() {
    let store = SqliteStore::in_memory().unwrap();
    let sink = MemorySink::new();
    let dead = MemoryDeadLetters::new();
    let batches = into_envelopes(
        TENANT,
        Stream::DirectoryAudits,
        vec![json!({"n": 1})],
        &BatchLimits::default(),
    )
    .unwrap();

    sink.fail_next(1);
    // The pipeline's rule: commit only after a successful send.
    if sink.send(&batches.envelopes).await.is_ok() {
        store
            .commit(TENANT, Stream::DirectoryAudits, None, &json!({}))
            .await
            .unwrap();
    }
    assert_eq!(
        store.load(TENANT, Stream::DirectoryAudits).await.unwrap(),
        None
    );
    sink.send(&batches.envelopes).await.unwrap();
    assert_eq!(sink.events(), vec![json!({"n": 1})]);
    assert_eq!(dead.letters_written(), 0);
}
