//! The identity inventory's DynamoDB store against a real moto server: per-object items beside
//! the cursors, paged reads of a large tenant, summaries, daily usage, and purge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{NaiveDate, Utc};
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE};
use itdr_shared::Stream;
use itdr_shared::aws::dynamo::DynamoCursorStore;
use itdr_shared::inventory::{Degradation, InventoryStore, Known, Summary};
use itdr_shared::store::CursorStore;

fn known(d: u64, round: u64, tags: &[&str]) -> Known {
    Known {
        digest: d,
        round,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

#[tokio::test]
async fn objects_are_items_beside_the_cursors_and_purge_with_them() {
    let f = AwsFixture::start().await;
    let store = DynamoCursorStore::new(f.ddb.clone(), CURSOR_TABLE);
    let inv: &dyn InventoryStore = store
        .inventory()
        .expect("the DynamoDB store keeps an inventory");
    // A tenant large enough to need paged queries (DynamoDB pages at 1 MB) and many batches.
    let put: Vec<(String, Known)> = (0..3000)
        .map(|i| {
            (
                format!("user-{i:05}-{}", "x".repeat(300)),
                known(u64::MAX - i, 1, &["billable"]),
            )
        })
        .collect();
    inv.apply("T1", Stream::Users, &put, &[]).await.unwrap();
    inv.apply("t1", Stream::Apps, &[("app".into(), known(7, 1, &[]))], &[])
        .await
        .unwrap();
    inv.apply("t2", Stream::Users, &[("u".into(), known(1, 1, &[]))], &[])
        .await
        .unwrap();
    store
        .commit("t1", Stream::Users, None, &serde_json::json!({"format": 2}))
        .await
        .unwrap();
    let users = inv.known("t1", Stream::Users).await.unwrap();
    assert_eq!(
        users.len(),
        3000,
        "all pages read, and the cursor item is not an object"
    );
    assert_eq!(users[&put[0].0], put[0].1);
    assert_eq!(users[&put[2999].0].digest, u64::MAX - 2999);
    // Changes: one removed, one rewritten.
    inv.apply(
        "t1",
        Stream::Users,
        &[(put[1].0.clone(), known(5, 2, &["guest", "excluded:guest"]))],
        &[put[0].0.clone()],
    )
    .await
    .unwrap();
    let users = inv.known("t1", Stream::Users).await.unwrap();
    assert_eq!(users.len(), 2999);
    assert_eq!(users[&put[1].0], known(5, 2, &["guest", "excluded:guest"]));
    assert_eq!(inv.known("t1", Stream::Apps).await.unwrap().len(), 1);

    let summary = Summary {
        degraded: vec![Degradation {
            what: "signInActivity".into(),
            reason: "licence_required".into(),
            lost: "last sign-in".into(),
        }],
        ..Summary::of(users.values(), Utc::now(), Vec::new())
    };
    inv.put_summary("t1", Stream::Users, &summary)
        .await
        .unwrap();
    assert_eq!(inv.summaries("t1").await.unwrap()[&Stream::Users], summary);
    let d1 = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let d0 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    inv.record_usage("t1", d1, 2998).await.unwrap();
    inv.record_usage("t1", d0, 3000).await.unwrap();
    inv.record_usage("t1", d1, 2999).await.unwrap();
    assert_eq!(inv.usage("t1").await.unwrap(), vec![(d0, 3000), (d1, 2999)]);

    // Offboarding with purge removes the cursors and the inventory, and only the tenant's.
    store.purge("t1").await.unwrap();
    assert!(store.load("t1", Stream::Users).await.unwrap().is_none());
    assert!(inv.known("t1", Stream::Users).await.unwrap().is_empty());
    assert!(inv.summaries("t1").await.unwrap().is_empty());
    assert!(inv.usage("t1").await.unwrap().is_empty());
    assert_eq!(inv.known("t2", Stream::Users).await.unwrap().len(), 1);
}
