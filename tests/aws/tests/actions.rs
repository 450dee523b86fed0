//! The response actions' audit trail on DynamoDB against a real moto server: one item per
//! action beside the cursors, the final record replacing the `started` one, oldest first, and
//! untouched by a cursor purge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE};
use itdr_shared::Cloud;
use itdr_shared::Stream;
use itdr_shared::aws::dynamo::DynamoCursorStore;
use itdr_shared::respond::{
    Action, ActionLog, ActionReport, CallOutcome, CallRecord, Outcome, StepKind, StepOutcome,
    StepReport, TargetUser,
};
use itdr_shared::store::CursorStore;

fn report(id: &str, tenant: &str, minute: u32, outcome: Outcome) -> ActionReport {
    ActionReport {
        id: id.into(),
        tenant_id: tenant.into(),
        cloud: Cloud::GccHigh,
        organization: "Capitol Contracting".into(),
        action: Action::Contain,
        requester: "analyst@soc.example".into(),
        reason: "case 9".into(),
        target: TargetUser {
            id: "u1".into(),
            upn: Some("u1@contoso.us".into()),
            enabled_before: Some(true),
        },
        dry_run: false,
        started_at: Utc
            .with_ymd_and_hms(2026, 11, 2, 10, minute, 0)
            .single()
            .unwrap(),
        finished_at: None,
        outcome,
        error: None,
        lookups: Vec::new(),
        steps: Vec::new(),
    }
}

#[tokio::test]
async fn actions_are_items_beside_the_cursors_oldest_first_and_survive_a_purge() {
    let f = AwsFixture::start().await;
    let store = DynamoCursorStore::new(f.ddb.clone(), CURSOR_TABLE);
    let log: &dyn ActionLog = &store;
    let late = report("b", "T1", 30, Outcome::Started);
    let early = report("a", "t1", 5, Outcome::Started);
    log.record(&late).await.unwrap();
    log.record(&early).await.unwrap();
    log.record(&report("c", "t2", 1, Outcome::Completed))
        .await
        .unwrap();
    let mut done = late.clone();
    done.outcome = Outcome::Completed;
    done.finished_at = Some(done.started_at + chrono::TimeDelta::seconds(2));
    done.steps.push(StepReport {
        step: StepKind::DisableAccount,
        outcome: StepOutcome::Done,
        detail: "account disabled".into(),
        calls: vec![CallRecord {
            method: "PATCH".into(),
            url: "https://graph.microsoft.us/v1.0/users/u1".into(),
            body: Some(serde_json::json!({"accountEnabled": false})),
            outcome: CallOutcome::Ok { status: 204 },
        }],
        rules: Vec::new(),
        methods: Vec::new(),
    });
    log.record(&done).await.unwrap();
    store
        .commit("t1", Stream::Users, None, &serde_json::json!({"format": 2}))
        .await
        .unwrap();

    let t1 = log.list("T1").await.unwrap();
    assert_eq!(t1.len(), 2, "the final record replaced the started one");
    assert_eq!(t1[0], early);
    assert_eq!(t1[1], done);
    assert_eq!(log.list("t2").await.unwrap().len(), 1);

    store.purge("t1").await.unwrap();
    assert!(store.load("t1", Stream::Users).await.unwrap().is_none());
    assert_eq!(
        log.list("t1").await.unwrap().len(),
        2,
        "the audit trail stays"
    );
}
