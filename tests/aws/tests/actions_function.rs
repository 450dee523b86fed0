//! The actions functions end to end against moto and the Microsoft simulator: a request on the
//! actions queue -> `handle_actions` -> the simulator's directory and mailboxes change, the
//! action log item is in DynamoDB, the OCSF events are on the events queue and honour the
//! queue contract; a direct dry run writes nothing; refusals (protected account, missing
//! permission, unknown tenant, malformed request) are recorded or logged and acknowledged,
//! not retried; a redelivered request does not act twice; and a GCC High action only reaches
//! `.us` hosts through the GCC High function, while the commercial function refuses it
//! without sending any request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use chrono::{DateTime, TimeZone, Utc};
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE, REGISTRY_TABLE, SECRET_PREFIX, sqs_event};
use itdr_shared::aws::actions::{ActionsContext, handle_actions, handle_invocation};
use itdr_shared::aws::config::ActionsConfig;
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry, RequestClaim};
use itdr_shared::clock::{Clock, ManualClock};
use itdr_shared::respond::{ActionLog, ActionReport, Outcome, StepOutcome};
use itdr_shared::store::{Envelope, Health, TenantRecord, TenantRegistry};
use itdr_shared::telemetry::{Event, Telemetry};
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{DEFAULT_ROLES, GLOBAL_ADMIN, InvUser, SimConfig, SimHandle, Simulator, TenantSpec};
use serde_json::{Value, json};

const WRITE_ROLES: [&str; 3] = [
    "User.RevokeSessions.All",
    "MailboxSettings.ReadWrite",
    "RoleManagement.Read.Directory",
];
const ORG_COMMERCIAL: &str = "Able Moose Accounting";
const ORG_GCCH: &str = "Capitol Contracting";
const ORG_NO_CONSENT: &str = "Blue Heron Freight";
/// The GCC High function's write app (its secret holds the GCC High tenant's credential; the
/// tenant's own app reference has no secret at all).
const GCCH_WRITE_APP: &str = "usgov-write";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

struct World {
    f: AwsFixture,
    sim: SimHandle,
    clock: ManualClock,
    /// Commercial (write consent), GCC High (write consent), commercial (read consent only).
    specs: Vec<TenantSpec>,
    actions_commercial: String,
    actions_usgov: String,
}

async fn create_queue(f: &AwsFixture, name: &str) -> String {
    f.sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

async fn world() -> World {
    let f = AwsFixture::start().await;
    let clock = ManualClock::new(t0());
    let specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
        TenantSpec::new(2, Cloud::Global),
    ];
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(
        SimConfig::new(31, specs.clone()),
        Arc::new(clock.clone()),
        bind,
    )
    .await
    .unwrap();
    // The customers of the first two tenants granted the write permissions.
    for s in &specs[..2] {
        let roles = DEFAULT_ROLES
            .iter()
            .chain(WRITE_ROLES.iter())
            .map(|r| r.to_string())
            .collect();
        sim.set_roles(&s.tenant_id, roles);
    }
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    for (s, org) in specs.iter().zip([ORG_COMMERCIAL, ORG_GCCH, ORG_NO_CONSENT]) {
        let app_ref = format!("sim-{}", s.tenant_id);
        reg.insert(&TenantRecord {
            tenant_id: s.tenant_id.clone(),
            domain: Some(s.domain.clone()),
            org: Some(org.to_string()),
            cloud: s.cloud,
            app_ref: app_ref.clone(),
            streams: Stream::ALL.to_vec(),
            include_noninteractive: true,
            enabled: true,
            health: Health::default(),
            created_at: clock.now(),
        })
        .await
        .unwrap();
        let secret = json!({"client_id": s.app_id, "client_secret": s.client_secret}).to_string();
        let name = if s.cloud.group() == CloudGroup::UsGov {
            format!("{SECRET_PREFIX}/usgov/{GCCH_WRITE_APP}")
        } else {
            format!("{SECRET_PREFIX}/commercial/{app_ref}")
        };
        f.put_secret(&name, &secret).await;
    }
    let actions_commercial = create_queue(&f, "itdr-actions-commercial").await;
    let actions_usgov = create_queue(&f, "itdr-actions-usgov").await;
    World {
        f,
        sim,
        clock,
        specs,
        actions_commercial,
        actions_usgov,
    }
}

impl World {
    fn context(&self, group: CloudGroup, protected: &Value) -> ActionsContext {
        let mut env: HashMap<&str, String> = [
            ("ITDR_CLOUD_GROUP", group.as_str().to_string()),
            ("ITDR_REGISTRY_TABLE", REGISTRY_TABLE.to_string()),
            ("ITDR_CURSOR_TABLE", CURSOR_TABLE.to_string()),
            ("ITDR_EVENTS_QUEUE_URL", self.f.queues.events.clone()),
            ("ITDR_SECRET_PREFIX", SECRET_PREFIX.to_string()),
            ("ITDR_PROTECTED_ACCOUNTS", protected.to_string()),
            ("ITDR_ENDPOINT_OVERRIDE", self.sim.base_url()),
        ]
        .into_iter()
        .collect();
        if group == CloudGroup::UsGov {
            env.insert("ITDR_WRITE_APP", GCCH_WRITE_APP.to_string());
        }
        let cfg = ActionsConfig::from_lookup(group, &|k| env.get(k).cloned()).unwrap();
        ActionsContext::from_config(&cfg, &self.f.sdk, Arc::new(self.clock.clone())).unwrap()
    }

    fn users(&self, tenant: usize) -> Vec<InvUser> {
        self.sim
            .inventory(&self.specs[tenant].tenant_id)
            .unwrap()
            .users
    }

    fn user(&self, tenant: usize, id: &str) -> InvUser {
        self.users(tenant).into_iter().find(|u| u.id == id).unwrap()
    }

    fn global_admins(&self, tenant: usize) -> Vec<String> {
        let inv = self.sim.inventory(&self.specs[tenant].tenant_id).unwrap();
        inv.role_assignments
            .iter()
            .filter(|(_, r)| r == GLOBAL_ADMIN)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Enabled ordinary members (no Global Administrator role).
    fn ordinary_users(&self, tenant: usize) -> Vec<InvUser> {
        let gas = self.global_admins(tenant);
        self.users(tenant)
            .into_iter()
            .filter(|u| {
                u.enabled
                    && u.user_type == "Member"
                    && u.purpose == Some("user")
                    && !gas.contains(&u.id)
            })
            .collect()
    }

    /// The owner of a planted rule forwarding outside, and the rule's id.
    fn forwarding_owner(&self, tenant: usize) -> (String, String) {
        let inv = self.sim.inventory(&self.specs[tenant].tenant_id).unwrap();
        let gas = self.global_admins(tenant);
        inv.malicious_rules()
            .into_iter()
            .find(|(u, r)| {
                !gas.contains(u)
                    && inv.rules[u].iter().any(|x| {
                        x["id"] == json!(r)
                            && (x["actions"].get("forwardTo").is_some()
                                || x["actions"].get("redirectTo").is_some())
                    })
            })
            .expect("a planted forwarding rule")
    }

    fn rule_enabled(&self, tenant: usize, user: &str, rule: &str) -> bool {
        let inv = self.sim.inventory(&self.specs[tenant].tenant_id).unwrap();
        inv.rules[user]
            .iter()
            .find(|r| r["id"] == json!(rule))
            .map(|r| r["isEnabled"] == json!(true))
            .unwrap()
    }

    /// Microsoft requests other than GET the simulator saw so far.
    fn writes(&self) -> Vec<(String, String, String)> {
        self.sim
            .request_log()
            .into_iter()
            .filter(|r| r.host.contains("graph") && r.method != "GET")
            .map(|r| (r.host, r.method, r.path))
            .collect()
    }

    async fn send(&self, queue: &str, body: &Value) -> Vec<Message> {
        self.f
            .sqs
            .send_message()
            .queue_url(queue)
            .message_body(body.to_string())
            .send()
            .await
            .unwrap();
        let got = self
            .f
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        got.messages().to_vec()
    }

    async fn log(&self, tenant: usize) -> Vec<ActionReport> {
        DynamoCursorStore::new(self.f.ddb.clone(), CURSOR_TABLE)
            .list(&self.specs[tenant].tenant_id)
            .await
            .unwrap()
    }
}

fn request(tenant: &str, user: &str, action: Value) -> Value {
    json!({
        "tenant": tenant,
        "user": user,
        "action": action,
        "reason": "SOC case 4711: impossible travel, then a rule forwarding invoices outside",
        "requester": "analyst@soc.example",
    })
}

/// The events-queue messages, each checked against the queue contract, as envelopes.
async fn events(f: &AwsFixture) -> Vec<Envelope> {
    f.drain(&f.queues.events)
        .await
        .iter()
        .map(|m| {
            let wrong = itdr_aws_tests::queue_contract::envelope_message_errors(m);
            assert!(wrong.is_empty(), "queue contract: {wrong:?}");
            serde_json::from_str(m.body().unwrap()).unwrap()
        })
        .collect()
}

const LONG: Duration = Duration::from_secs(900);

/// The metrics the function emits, as (metric, dimension value) pairs: the outcome of an
/// `ActionsCompleted`, the reason of an `ActionsFailed`.
#[derive(Debug, Default)]
struct Metrics(Mutex<Vec<(String, String)>>);

impl Telemetry for Metrics {
    fn emit(&self, event: &Event<'_>, at: DateTime<Utc>) {
        let doc: Value = serde_json::from_str(&event.emf_line(CloudGroup::Commercial, at)).unwrap();
        for (metric, dim) in [("ActionsCompleted", "Outcome"), ("ActionsFailed", "Reason")] {
            if doc.get(metric).is_some() {
                let value = doc[dim].as_str().unwrap().to_string();
                self.0.lock().unwrap().push((metric.to_string(), value));
            }
        }
    }
}

impl Metrics {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn metric(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_containment_acts_once_records_emits_and_refusals_are_not_retried() {
    let w = world().await;
    let t = &w.specs[0];
    let (owner, rule) = w.forwarding_owner(0);
    let ordinary: Vec<InvUser> = w
        .ordinary_users(0)
        .into_iter()
        .filter(|u| u.id != owner)
        .collect();
    let protected_user = ordinary[0].clone();
    let dry_user = ordinary[1].clone();
    let metrics = Arc::new(Metrics::default());
    let ctx = w
        .context(
            CloudGroup::Commercial,
            &json!({ ORG_COMMERCIAL: [protected_user.upn.to_uppercase()] }),
        )
        .with_telemetry(metrics.clone());
    assert!(w.user(0, &owner).enabled && w.rule_enabled(0, &owner, &rule));

    // Contain through the queue, by tenant GUID and with a request id.
    let mut body = request(&t.tenant_id, &owner, json!("contain"));
    body["request_id"] = json!("case-4711-contain");
    let msgs = w.send(&w.actions_commercial, &body).await;
    let event = sqs_event(&w.actions_commercial, &msgs);
    let resp = handle_actions(event.clone(), &ctx, LONG).await;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");

    // The simulator's tenant shows it: account disabled, sessions revoked, rule disabled.
    assert!(!w.user(0, &owner).enabled, "account disabled");
    assert!(
        !w.rule_enabled(0, &owner, &rule),
        "forwarding rule disabled"
    );
    let writes = w.writes();
    assert!(
        writes
            .iter()
            .any(|(_, m, p)| m == "POST"
                && p == &format!("/v1.0/users/{owner}/revokeSignInSessions")),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|(_, m, p)| m == "PATCH" && p == &format!("/v1.0/users/{owner}")),
        "{writes:?}"
    );
    assert!(writes.iter().all(|(h, _, _)| h == "graph.microsoft.com"));
    let write_count = writes.len();

    // The action log item is in DynamoDB.
    let log = w.log(0).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let report = &log[0];
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(report.target.id, owner);
    assert_eq!(report.organization, ORG_COMMERCIAL);
    assert_eq!(report.requester, "analyst@soc.example");
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::Done),
        "{:?}",
        report.steps
    );

    // Its OCSF events are on the events queue and honour the queue contract.
    let envs = events(&w.f).await;
    assert!(!envs.is_empty());
    for e in &envs {
        assert_eq!(e.tenant_id, t.tenant_id);
        for ev in &e.events {
            assert_eq!(ev["metadata"]["log_name"], "itdr.response");
        }
    }

    // The same message redelivered: nothing is sent twice, nothing recorded twice.
    let resp = handle_actions(event, &ctx, LONG).await;
    assert!(resp.batch_item_failures.is_empty());
    // The same request id in a new message (a sender's retry): the same.
    let msgs = w.send(&w.actions_commercial, &body).await;
    let resp = handle_actions(sqs_event(&w.actions_commercial, &msgs), &ctx, LONG).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(w.writes().len(), write_count, "no second write");
    assert_eq!(w.log(0).await.len(), 1, "no second action");
    assert!(events(&w.f).await.is_empty(), "no second events");
    assert_eq!(
        metrics.take(),
        [
            metric("ActionsCompleted", "completed"),
            metric("ActionsCompleted", "duplicate"),
            metric("ActionsCompleted", "duplicate")
        ]
    );

    // A direct invocation, by domain, as a dry run: the report lists the planned write and
    // nothing is written.
    let mut direct = request(&t.domain, &dry_user.upn, json!("disable_account"));
    direct["dry_run"] = json!(true);
    let out = handle_invocation(direct, &ctx, LONG).await.unwrap();
    let dry: ActionReport = serde_json::from_value(out).unwrap();
    assert_eq!(dry.outcome, Outcome::DryRun);
    assert_eq!(dry.target.id, dry_user.id);
    assert_eq!(dry.writes().len(), 1);
    assert_eq!(w.writes().len(), write_count, "a dry run writes nothing");
    assert!(w.user(0, &dry_user.id).enabled);

    // A protected account: refused, recorded, acknowledged (not retried).
    let body = request(&t.tenant_id, &protected_user.id, json!("disable_account"));
    let msgs = w.send(&w.actions_commercial, &body).await;
    let resp = handle_actions(sqs_event(&w.actions_commercial, &msgs), &ctx, LONG).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "a refusal is not retried"
    );
    assert!(w.user(0, &protected_user.id).enabled);
    assert_eq!(w.writes().len(), write_count);
    let refused = w
        .log(0)
        .await
        .into_iter()
        .find(|r| r.target.id == protected_user.id)
        .expect("the refusal is recorded");
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(refused.error.as_deref().unwrap().contains("protected"));

    // Missing permission (the third tenant's customer granted only the read permissions).
    let other = &w.specs[2];
    let victim = w.ordinary_users(2)[0].clone();
    let body = request(&other.tenant_id, &victim.id, json!("revoke_sessions"));
    let msgs = w.send(&w.actions_commercial, &body).await;
    let resp = handle_actions(sqs_event(&w.actions_commercial, &msgs), &ctx, LONG).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "a refusal is not retried"
    );
    let log2 = w.log(2).await;
    assert_eq!(log2.len(), 1);
    assert_eq!(log2[0].outcome, Outcome::Refused);
    let error = log2[0].error.as_deref().unwrap();
    assert!(error.contains("User.RevokeSessions.All"), "{error}");
    assert_eq!(w.writes().len(), write_count);
    assert_eq!(
        metrics.take(),
        [
            metric("ActionsCompleted", "dry_run"),
            metric("ActionsFailed", "refused"),
            metric("ActionsFailed", "refused")
        ]
    );

    // An unknown tenant and a malformed message: acknowledged, nothing sent.
    let before = w.sim.request_log().len();
    let unknown = request("nobody.onmicrosoft.com", "x", json!("contain"));
    let msgs = w.send(&w.actions_commercial, &unknown).await;
    let mut batch = sqs_event(&w.actions_commercial, &msgs);
    let msgs = w
        .send(
            &w.actions_commercial,
            &json!({"tenant": t.tenant_id, "action": "reboot"}),
        )
        .await;
    batch
        .records
        .extend(sqs_event(&w.actions_commercial, &msgs).records);
    assert_eq!(batch.records.len(), 2);
    let resp = handle_actions(batch, &ctx, LONG).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(w.sim.request_log().len(), before);
    let e = handle_invocation(
        request("nobody.onmicrosoft.com", "x", json!("contain")),
        &ctx,
        LONG,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), "UnknownTenant");

    // The same request running elsewhere: left for redelivery (the one retryable case here).
    let store = DynamoCursorStore::new(w.f.ddb.clone(), CURSOR_TABLE);
    let claim = store
        .claim_request(&t.tenant_id, "case-busy", w.clock.now(), 300)
        .await
        .unwrap();
    assert_eq!(claim, RequestClaim::Claimed);
    let mut body = request(&t.tenant_id, &dry_user.id, json!("revoke_sessions"));
    body["request_id"] = json!("case-busy");
    let msgs = w.send(&w.actions_commercial, &body).await;
    let id = msgs[0].message_id().unwrap().to_string();
    let resp = handle_actions(sqs_event(&w.actions_commercial, &msgs), &ctx, LONG).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [id.as_str()]);
    assert_eq!(w.writes().len(), write_count);
    assert_eq!(
        metrics.take(),
        [
            metric("ActionsFailed", "unknown_tenant"),
            metric("ActionsFailed", "malformed"),
            metric("ActionsFailed", "unknown_tenant"),
            metric("ActionsFailed", "deferred")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcc_high_action_stays_in_the_us_government_cloud_and_the_commercial_function_refuses_it()
{
    let w = world().await;
    let gcch = &w.specs[1];
    let usgov = w.context(CloudGroup::UsGov, &json!({}));
    let metrics = Arc::new(Metrics::default());
    let commercial = w
        .context(CloudGroup::Commercial, &json!({}))
        .with_telemetry(metrics.clone());
    let (owner, rule) = w.forwarding_owner(1);

    // Sent to the commercial function (by domain, then by GUID, and directly): refused before
    // any credential or request, recorded, acknowledged.
    let body = request(&gcch.domain, &owner, json!("contain"));
    let msgs = w.send(&w.actions_commercial, &body).await;
    let resp = handle_actions(sqs_event(&w.actions_commercial, &msgs), &commercial, LONG).await;
    assert!(resp.batch_item_failures.is_empty(), "not retried");
    let out = handle_invocation(
        request(&gcch.tenant_id, &owner, json!("disable_account")),
        &commercial,
        LONG,
    )
    .await
    .unwrap();
    let refused: ActionReport = serde_json::from_value(out).unwrap();
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(
        refused
            .error
            .as_deref()
            .unwrap()
            .contains("commercial responder does not serve"),
        "{refused:?}"
    );
    assert!(
        w.sim.request_log().is_empty(),
        "no request at all: {:?}",
        w.sim.request_log()
    );
    assert!(w.user(1, &owner).enabled);
    let log = w.log(1).await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|r| r.outcome == Outcome::Refused && r.calls().count() == 0)
    );
    assert_eq!(
        metrics.take(),
        [
            metric("ActionsFailed", "cloud_group_mismatch"),
            metric("ActionsFailed", "cloud_group_mismatch")
        ]
    );
    // A request whose cloud contradicts the registry is refused too.
    let mut wrong_cloud = request(&gcch.tenant_id, &owner, json!("contain"));
    wrong_cloud["cloud"] = json!("global");
    let e = handle_invocation(wrong_cloud, &usgov, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "CloudMismatch");
    assert!(w.sim.request_log().is_empty());
    events(&w.f).await;

    // Through the GCC High function (with its write app): done, and every request went to
    // the US Government hosts.
    let mut body = request(&gcch.domain, &owner, json!("contain"));
    body["cloud"] = json!("gcc_high");
    let msgs = w.send(&w.actions_usgov, &body).await;
    let resp = handle_actions(sqs_event(&w.actions_usgov, &msgs), &usgov, LONG).await;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    assert!(!w.user(1, &owner).enabled);
    assert!(!w.rule_enabled(1, &owner, &rule));
    let hosts: Vec<String> = w.sim.request_log().into_iter().map(|r| r.host).collect();
    assert!(!hosts.is_empty());
    assert!(
        hosts
            .iter()
            .all(|h| h == "graph.microsoft.us" || h == "login.microsoftonline.us"),
        "{hosts:?}"
    );
    let log = w.log(1).await;
    let done = log
        .iter()
        .find(|r| r.outcome == Outcome::Completed)
        .unwrap();
    assert_eq!(done.cloud, Cloud::GccHigh);
    assert!(
        done.calls()
            .all(|c| c.url.starts_with("https://graph.microsoft.us/"))
    );
    let envs = events(&w.f).await;
    assert!(envs.iter().any(|e| e.tenant_id == gcch.tenant_id));

    // And the GCC High function refuses a commercial tenant's action, sending nothing.
    let before = w.sim.request_log().len();
    let commercial_owner = w.forwarding_owner(0).0;
    let msgs = w
        .send(
            &w.actions_usgov,
            &request(&w.specs[0].tenant_id, &commercial_owner, json!("contain")),
        )
        .await;
    let resp = handle_actions(sqs_event(&w.actions_usgov, &msgs), &usgov, LONG).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(w.sim.request_log().len(), before);
    assert!(w.user(0, &commercial_owner).enabled);
}
