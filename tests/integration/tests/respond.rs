//! Response actions against the simulator: each action and what the tenant shows afterwards,
//! idempotency (a second run sends no write and says `already`), the safety rails (protected
//! account, last Global Administrator, dry run, missing permission, missing reason), the audit
//! trail (SQLite, across a reopen) and its OCSF events (schema-validated), and the
//! sovereignty of GCC High actions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::auth::{AppCredential, TokenSource};
use itdr_shared::client::{Bucket, Call, Priority, Rate, SourceError, Tenant};
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemorySink, SqliteStore};
use itdr_shared::respond::{
    Action, ActionLog, ActionRequest, CallOutcome, Outcome, ProtectedAccounts, RespondError,
    Responder, StepKind, StepOutcome,
};
use itdr_shared::{Api, Cloud, CloudGroup};
use itdr_sim::{DEFAULT_ROLES, GLOBAL_ADMIN, InvUser, SimConfig, TenantSpec};
use serde_json::{Value, json};

const WRITE_ROLES: [&str; 3] = [
    "User.RevokeSessions.All",
    "MailboxSettings.ReadWrite",
    "RoleManagement.Read.Directory",
];

fn spec(i: u32, cloud: Cloud) -> TenantSpec {
    let mut s = TenantSpec::new(i, cloud);
    s.roles = DEFAULT_ROLES
        .iter()
        .chain(WRITE_ROLES.iter())
        .map(|r| r.to_string())
        .collect();
    s
}

struct Rig {
    env: common::Env,
    store: SqliteStore,
    sink: Arc<MemorySink>,
    responder: Responder,
}

async fn rig(specs: Vec<TenantSpec>, protected: ProtectedAccounts) -> Rig {
    let env = common::start(SimConfig::new(21, specs), Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let responder = Responder::new(env.client.clone(), Arc::new(store.clone()))
        .with_events(sink.clone())
        .with_protected(protected);
    Rig {
        env,
        store,
        sink,
        responder,
    }
}

fn tenant(s: &TenantSpec) -> Tenant {
    Tenant {
        id: s.tenant_id.clone(),
        cloud: s.cloud,
    }
}

fn request(s: &TenantSpec, user: &str, action: Action) -> ActionRequest {
    ActionRequest {
        tenant: tenant(s),
        organization: "Able Moose Accounting".into(),
        user: user.to_string(),
        action,
        reason: "SOC case 4711: impossible travel then inbox rule".into(),
        requester: "analyst@soc.example".into(),
        dry_run: false,
    }
}

impl Rig {
    fn t(&self) -> &TenantSpec {
        &self.env.specs[0]
    }

    fn users(&self) -> Vec<InvUser> {
        self.env.sim.inventory(&self.t().tenant_id).unwrap().users
    }

    fn user(&self, id: &str) -> InvUser {
        self.users().into_iter().find(|u| u.id == id).unwrap()
    }

    fn global_admins(&self) -> Vec<String> {
        let inv = self.env.sim.inventory(&self.t().tenant_id).unwrap();
        inv.role_assignments
            .iter()
            .filter(|(_, r)| r == GLOBAL_ADMIN)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// An enabled member with a mailbox who holds no Global Administrator role.
    fn ordinary_user(&self) -> InvUser {
        let gas = self.global_admins();
        self.users()
            .into_iter()
            .find(|u| {
                u.enabled
                    && u.user_type == "Member"
                    && u.purpose == Some("user")
                    && !gas.contains(&u.id)
            })
            .unwrap()
    }

    /// The owner of a planted forwarding rule (and that rule's id).
    fn forwarding_owner(&self) -> (InvUser, String) {
        let inv = self.env.sim.inventory(&self.t().tenant_id).unwrap();
        let gas = self.global_admins();
        for (uid, rid) in inv.malicious_rules() {
            let rule = inv.rules[&uid]
                .iter()
                .find(|r| r["id"] == json!(rid))
                .unwrap();
            let a = &rule["actions"];
            if (a.get("forwardTo").is_some() || a.get("redirectTo").is_some())
                && !gas.contains(&uid)
            {
                return (self.user(&uid), rid);
            }
        }
        panic!("no forwarding rule planted");
    }

    fn rules_of(&self, uid: &str) -> Vec<Value> {
        let inv = self.env.sim.inventory(&self.t().tenant_id).unwrap();
        inv.rules.get(uid).cloned().unwrap_or_default()
    }

    /// Graph requests other than GET the simulator saw so far.
    fn graph_writes(&self) -> Vec<(String, String)> {
        self.env
            .sim
            .request_log()
            .into_iter()
            .filter(|r| r.host.contains("graph") && r.method != "GET")
            .map(|r| (r.method, r.path))
            .collect()
    }
}

fn assert_valid(events: &[Value]) {
    assert!(!events.is_empty());
    for e in events {
        let errs = common::ocsf::all_errors(e);
        assert!(errs.is_empty(), "{errs:?}\n{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_enable_change_the_account_once_and_say_already_after() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let u = r.ordinary_user();
    let rep = r
        .responder
        .run(&request(r.t(), &u.upn, Action::DisableAccount))
        .await
        .unwrap();
    assert_eq!(rep.outcome, Outcome::Completed);
    assert_eq!(rep.target.id, u.id, "the UPN was resolved to the object id");
    assert_eq!(rep.steps[0].outcome, StepOutcome::Done);
    assert!(
        !r.user(&u.id).enabled,
        "the simulator's directory shows it disabled"
    );
    let writes = r.graph_writes();
    assert_eq!(writes, [("PATCH".into(), format!("/v1.0/users/{}", u.id))]);

    let again = r
        .responder
        .run(&request(r.t(), &u.id, Action::DisableAccount))
        .await
        .unwrap();
    assert_eq!(again.steps[0].outcome, StepOutcome::Already);
    assert!(again.writes().is_empty());
    assert_eq!(r.graph_writes().len(), 1, "no second PATCH");

    let en = r
        .responder
        .run(&request(r.t(), &u.id, Action::EnableAccount))
        .await
        .unwrap();
    assert_eq!(en.steps[0].outcome, StepOutcome::Done);
    assert!(r.user(&u.id).enabled);
    let en2 = r
        .responder
        .run(&request(r.t(), &u.id, Action::EnableAccount))
        .await
        .unwrap();
    assert_eq!(en2.steps[0].outcome, StepOutcome::Already);

    // The audit trail holds all four, oldest first, each with requester, reason and calls.
    let log = r.store.list(&r.t().tenant_id).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].id, rep.id);
    assert_eq!(log[0].requester, "analyst@soc.example");
    assert!(log[0].reason.contains("4711"));
    assert!(
        log[0].writes()[0]
            .url
            .starts_with("https://graph.microsoft.com/v1.0/users/")
    );
    assert_eq!(log[0].writes()[0].outcome, CallOutcome::Ok { status: 204 });
    assert_valid(&r.sink.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_later_sign_ins_fail() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let u = r.ordinary_user();
    let at = r.env.clock.now();
    r.responder
        .run(&request(r.t(), &u.id, Action::DisableAccount))
        .await
        .unwrap();
    r.env.clock.advance_to(at + TimeDelta::hours(12));
    let t = tenant(r.t());
    let url = itdr_shared::client::ApiClient::url(
        &t,
        Api::Graph,
        "v1.0/auditLogs/signIns",
        &[(
            "$filter",
            format!(
                "createdDateTime ge {}",
                (at - TimeDelta::hours(12)).format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )],
    )
    .unwrap();
    let deadline = r.env.clock.now() + TimeDelta::minutes(5);
    let all = r
        .env
        .client
        .get_all(&t, Bucket::Reports, &url, deadline)
        .await
        .unwrap();
    let mine: Vec<&Value> = all.iter().filter(|s| s["userId"] == json!(u.id)).collect();
    let created = |s: &Value| {
        chrono::DateTime::parse_from_rfc3339(s["createdDateTime"].as_str().unwrap()).unwrap()
    };
    let after: Vec<&&Value> = mine.iter().filter(|s| created(s) >= at).collect();
    let before: Vec<&&Value> = mine.iter().filter(|s| created(s) < at).collect();
    assert!(
        !after.is_empty() && !before.is_empty(),
        "{} / {}",
        after.len(),
        before.len()
    );
    assert!(
        after
            .iter()
            .all(|s| s["status"]["errorCode"] == json!(50057))
    );
    assert!(
        before
            .iter()
            .all(|s| s["status"]["errorCode"] != json!(50057)),
        "sign-ins before the change are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_sessions_reaches_the_tenant() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let u = r.ordinary_user();
    let rep = r
        .responder
        .run(&request(r.t(), &u.id, Action::RevokeSessions))
        .await
        .unwrap();
    assert_eq!(rep.steps[0].outcome, StepOutcome::Done);
    assert_eq!(
        r.graph_writes(),
        [(
            "POST".into(),
            format!("/v1.0/users/{}/revokeSignInSessions", u.id)
        )]
    );
    assert_eq!(
        r.env.sim.sessions_revoked_at(&r.t().tenant_id, &u.id),
        Some(r.env.clock.now())
    );
    let events = r.sink.events();
    assert_valid(&events);
    assert_eq!(events[0]["type_uid"], 300199);
    assert_eq!(events[0]["activity_name"], "Revoke Sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_rules_are_disabled_or_deleted_and_the_inventory_shows_it() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let (owner, rid) = r.forwarding_owner();
    let before = r.rules_of(&owner.id);

    let rep = r
        .responder
        .run(&request(r.t(), &owner.id, Action::DisableForwardingRules))
        .await
        .unwrap();
    assert_eq!(
        rep.steps[0].outcome,
        StepOutcome::Done,
        "{:?}",
        rep.steps[0]
    );
    assert_eq!(rep.steps[0].rules.len(), 1);
    assert_eq!(rep.steps[0].rules[0].id, rid);
    assert!(
        rep.steps[0].rules[0]
            .flags
            .contains(&"forwards_external".to_string())
    );
    assert!(!rep.steps[0].rules[0].external.is_empty());
    let after = r.rules_of(&owner.id);
    for rule in &after {
        let was = before.iter().find(|b| b["id"] == rule["id"]).unwrap();
        if rule["id"] == json!(rid) {
            assert_eq!(rule["isEnabled"], json!(false));
        } else {
            assert_eq!(
                rule["isEnabled"], was["isEnabled"],
                "ordinary rules untouched"
            );
        }
    }
    // The inbox rules inventory endpoint serves the change.
    let t = tenant(r.t());
    let url = itdr_shared::client::ApiClient::url(
        &t,
        Api::Graph,
        &format!("v1.0/users/{}/mailFolders/inbox/messageRules", owner.id),
        &[],
    )
    .unwrap();
    let served = r
        .env
        .client
        .get_all(
            &t,
            Bucket::Outlook,
            &url,
            r.env.clock.now() + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        served.iter().find(|x| x["id"] == json!(rid)).unwrap()["isEnabled"],
        json!(false)
    );

    let again = r
        .responder
        .run(&request(r.t(), &owner.id, Action::DisableForwardingRules))
        .await
        .unwrap();
    assert_eq!(again.steps[0].outcome, StepOutcome::Already);
    assert!(again.writes().is_empty());
    let one = r
        .responder
        .run(&request(
            r.t(),
            &owner.id,
            Action::DisableRule {
                rule_id: rid.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(one.steps[0].outcome, StepOutcome::Already);

    let del = r
        .responder
        .run(&request(
            r.t(),
            &owner.id,
            Action::DeleteRule {
                rule_id: rid.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(del.steps[0].outcome, StepOutcome::Done);
    assert!(r.rules_of(&owner.id).iter().all(|x| x["id"] != json!(rid)));
    let del2 = r
        .responder
        .run(&request(
            r.t(),
            &owner.id,
            Action::DeleteRule {
                rule_id: rid.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(del2.steps[0].outcome, StepOutcome::Already);
    let missing = r
        .responder
        .run(&request(
            r.t(),
            &owner.id,
            Action::DisableRule {
                rule_id: rid.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, RespondError::RuleNotFound { .. }),
        "{missing}"
    );
    let events = r.sink.events();
    assert_valid(&events);
    assert!(events.iter().any(|e| e["type_uid"] == 300409));
    assert!(events.iter().any(|e| e["type_uid"] == 300404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contain_disables_revokes_and_disables_hiding_rules_in_that_order() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let inv = r.env.sim.inventory(&r.t().tenant_id).unwrap();
    let gas = r.global_admins();
    // Every planted rule hides mail (forwarding, deleting, moving to RSS Feeds and marking
    // read); the owners' ordinary rules (newsletters, receipts, importance) do not.
    for (owner, rid) in inv.malicious_rules() {
        if gas.contains(&owner) {
            continue;
        }
        let before = r.rules_of(&owner);
        let rep = r
            .responder
            .run(&request(r.t(), &owner, Action::Contain))
            .await
            .unwrap();
        assert_eq!(rep.outcome, Outcome::Completed, "{rep:#?}");
        let kinds: Vec<StepKind> = rep.steps.iter().map(|s| s.step).collect();
        assert_eq!(
            kinds,
            [
                StepKind::DisableAccount,
                StepKind::RevokeSessions,
                StepKind::DisableHidingRules
            ]
        );
        let writes: Vec<String> = rep
            .writes()
            .iter()
            .map(|c| format!("{} {}", c.method, c.url))
            .collect();
        assert!(writes[0].starts_with("PATCH ") && writes[0].ends_with(&format!("/users/{owner}")));
        assert!(writes[1].starts_with("POST ") && writes[1].ends_with("/revokeSignInSessions"));
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes[2].contains(&format!("messageRules/{}", rid.replace('=', "%3D"))));
        assert!(!r.user(&owner).enabled);
        for rule in r.rules_of(&owner) {
            let was = before.iter().find(|b| b["id"] == rule["id"]).unwrap();
            let expect = if rule["id"] == json!(rid) {
                json!(false)
            } else {
                was["isEnabled"].clone()
            };
            assert_eq!(rule["isEnabled"], expect);
        }
        // Twice is safe.
        let again = r
            .responder
            .run(&request(r.t(), &owner, Action::Contain))
            .await
            .unwrap();
        assert_eq!(again.steps[0].outcome, StepOutcome::Already);
        assert_eq!(again.steps[2].outcome, StepOutcome::Already);
        assert_eq!(again.writes().len(), 1, "only the revocation is repeated");
    }
    let events = r.sink.events();
    assert_valid(&events);
    let types: Vec<u64> = events
        .iter()
        .map(|e| e["type_uid"].as_u64().unwrap())
        .collect();
    assert!(types.contains(&300105) && types.contains(&300199) && types.contains(&300409));
    for e in &events {
        assert_eq!(e["actor"]["user"]["name"], "analyst@soc.example");
        assert_eq!(e["metadata"]["log_name"], "itdr.response");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_forwarding_is_an_exact_manual_instruction_and_methods_are_listed_when_removed() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let u = r.ordinary_user();
    let fw = r
        .responder
        .run(&request(r.t(), &u.id, Action::RemoveMailboxForwarding))
        .await
        .unwrap();
    assert_eq!(fw.steps[0].outcome, StepOutcome::Manual);
    assert!(fw.steps[0].detail.contains(&format!(
        "Set-Mailbox -Identity '{}' -ForwardingSmtpAddress $null",
        u.upn
    )));
    assert!(fw.writes().is_empty());

    let before = r.env.sim.auth_methods(&r.t().tenant_id, &u.id);
    assert!(before.len() >= 3, "{before:?}");
    let rm = r
        .responder
        .run(&request(r.t(), &u.id, Action::RemoveAuthMethods))
        .await
        .unwrap();
    assert_eq!(rm.steps[0].outcome, StepOutcome::Done, "{:?}", rm.steps[0]);
    assert_eq!(
        r.env.sim.auth_methods(&r.t().tenant_id, &u.id),
        ["passwordAuthenticationMethod"]
    );
    let removed: Vec<&str> = rm.steps[0]
        .methods
        .iter()
        .filter(|m| m.result == "done")
        .map(|m| m.method_type.as_str())
        .collect();
    assert_eq!(removed.len(), before.len() - 1);
    let phone = rm.steps[0]
        .methods
        .iter()
        .find(|m| m.method_type == "phoneAuthenticationMethod")
        .unwrap();
    assert!(
        phone.detail.as_deref().unwrap().contains("+1 5550100"),
        "restorable"
    );
    let again = r
        .responder
        .run(&request(r.t(), &u.id, Action::RemoveAuthMethods))
        .await
        .unwrap();
    assert_eq!(again.steps[0].outcome, StepOutcome::Already);
    let events = r.sink.events();
    assert_valid(&events);
    assert!(events.iter().any(|e| e["type_uid"] == 300111));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_accounts_and_the_last_global_admin_are_never_disabled() {
    let specs = vec![spec(0, Cloud::Global)];
    let probe = rig(specs.clone(), ProtectedAccounts::new()).await;
    let u = probe.ordinary_user();
    probe.env.sim.shutdown().await;
    let mut protected = ProtectedAccounts::new();
    protected.protect("able moose accounting", [u.upn.to_ascii_uppercase()]);
    let r = rig(specs, protected).await;

    for action in [
        Action::DisableAccount,
        Action::Contain,
        Action::RemoveAuthMethods,
    ] {
        let e = r
            .responder
            .run(&request(r.t(), &u.id, action))
            .await
            .unwrap_err();
        assert!(matches!(e, RespondError::Protected { .. }), "{e}");
    }
    assert!(r.user(&u.id).enabled);
    assert!(r.graph_writes().is_empty());
    // Another organization's protection does not apply here; revoking is allowed.
    let mut req = request(r.t(), &u.id, Action::RevokeSessions);
    req.organization = "Able Moose Accounting".into();
    assert!(r.responder.run(&req).await.is_ok());

    // The only enabled Global Administrator.
    let admin = r.ordinary_user();
    let admin = if admin.id == u.id {
        r.users()
            .into_iter()
            .filter(|x| x.enabled && x.user_type == "Member" && x.id != u.id)
            .nth(1)
            .unwrap()
    } else {
        admin
    };
    let tid = r.t().tenant_id.clone();
    r.env.sim.edit_inventory(&tid, |inv| {
        inv.role_assignments
            .retain(|(_, role)| role != GLOBAL_ADMIN);
        inv.role_assignments
            .push((admin.id.clone(), GLOBAL_ADMIN.to_string()));
        // A disabled second holder does not count.
        let off = inv.users.iter().find(|x| !x.enabled).unwrap().id.clone();
        inv.role_assignments.push((off, GLOBAL_ADMIN.to_string()));
    });
    let e = r
        .responder
        .run(&request(r.t(), &admin.id, Action::DisableAccount))
        .await
        .unwrap_err();
    assert!(matches!(e, RespondError::LastGlobalAdmin { .. }), "{e}");
    assert!(r.user(&admin.id).enabled);
    let refused = r.store.list(&tid).await.unwrap();
    let last = refused.last().unwrap();
    assert_eq!(last.outcome, Outcome::Refused);
    assert!(
        last.error
            .as_deref()
            .unwrap()
            .contains("last enabled Global Administrator")
    );

    // With another enabled Global Administrator it goes through.
    let other = r
        .users()
        .into_iter()
        .find(|x| x.enabled && x.user_type == "Member" && x.id != admin.id && x.id != u.id)
        .unwrap();
    r.env.sim.edit_inventory(&tid, |inv| {
        inv.role_assignments
            .push((other.id.clone(), GLOBAL_ADMIN.to_string()));
    });
    let ok = r
        .responder
        .run(&request(r.t(), &admin.id, Action::DisableAccount))
        .await
        .unwrap();
    assert_eq!(ok.steps[0].outcome, StepOutcome::Done);
    let events = r.sink.events();
    assert_valid(&events);
    assert!(
        events
            .iter()
            .any(|e| e["status_id"] == 2 && e["activity_id"] == 5),
        "refusals are emitted as failed Account Change events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_exactly_the_writes_and_sends_none() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let (owner, rid) = r.forwarding_owner();
    let mut req = request(r.t(), &owner.id, Action::Contain);
    req.dry_run = true;
    let plan = r.responder.run(&req).await.unwrap();
    assert_eq!(plan.outcome, Outcome::DryRun);
    assert!(r.graph_writes().is_empty(), "nothing was written");
    assert!(r.user(&owner.id).enabled);
    assert!(plan.steps.iter().all(|s| s.outcome == StepOutcome::Planned));
    let planned: Vec<(String, String)> = plan
        .writes()
        .iter()
        .map(|c| {
            assert_eq!(c.outcome, CallOutcome::Planned);
            (c.method.clone(), c.url.clone())
        })
        .collect();
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert_eq!(
        plan.writes()[0].body,
        Some(json!({"accountEnabled": false}))
    );
    assert!(
        r.sink.events().is_empty(),
        "a dry run changes nothing, so emits nothing"
    );

    // The real run sends exactly the planned writes.
    req.dry_run = false;
    let done = r.responder.run(&req).await.unwrap();
    let sent: Vec<(String, String)> = done
        .writes()
        .iter()
        .map(|c| (c.method.clone(), c.url.clone()))
        .collect();
    assert_eq!(sent, planned);
    assert!(
        r.rules_of(&owner.id)
            .iter()
            .any(|x| x["id"] == json!(rid) && x["isEnabled"] == json!(false))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_refuse_first_with_the_remedy_and_the_simulator_enforces_them() {
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let u = r.ordinary_user();
    let tid = r.t().tenant_id.clone();
    r.env
        .sim
        .set_roles(&tid, DEFAULT_ROLES.iter().map(|s| s.to_string()).collect());
    let e = r
        .responder
        .run(&request(r.t(), &u.id, Action::Contain))
        .await
        .unwrap_err();
    let RespondError::PermissionMissing { missing, remedy } = &e else {
        panic!("{e}");
    };
    let names: Vec<&str> = missing.iter().map(|m| m.permission.as_str()).collect();
    assert_eq!(
        names,
        // Directory.Read.All (granted) also reads the Global Administrators.
        ["User.RevokeSessions.All", "MailboxSettings.ReadWrite"]
    );
    assert!(remedy.contains(&format!("itdr preflight --tenant {tid}")));
    assert!(
        r.env
            .sim
            .request_log()
            .iter()
            .all(|x| !x.host.contains("graph")),
        "checked before any Graph call"
    );

    // Reason and requester are mandatory (nothing is sent, nothing recorded).
    let mut req = request(r.t(), &u.id, Action::RevokeSessions);
    req.reason = "  ".into();
    assert!(matches!(
        r.responder.run(&req).await,
        Err(RespondError::MissingReason)
    ));
    req.reason = "x".into();
    req.requester = String::new();
    assert!(matches!(
        r.responder.run(&req).await,
        Err(RespondError::MissingRequester)
    ));

    // The simulator answers 403 to a write without its permission.
    let t = tenant(r.t());
    let url = itdr_shared::client::ApiClient::url(
        &t,
        Api::Graph,
        &format!("v1.0/users/{}/revokeSignInSessions", u.id),
        &[],
    )
    .unwrap();
    let call = Call {
        tenant: &t,
        api: Api::Graph,
        bucket: Bucket::Directory,
        method: reqwest_method("POST"),
        url: &url,
        deadline: r.env.clock.now() + TimeDelta::minutes(1),
        priority: Priority::Regular,
    };
    let err = r.env.client.send(&call).await.unwrap_err();
    assert!(matches!(err, SourceError::Forbidden { .. }), "{err}");
    let patch = Call {
        method: reqwest_method("PATCH"),
        ..call.clone()
    };
    let url2 =
        itdr_shared::client::ApiClient::url(&t, Api::Graph, &format!("v1.0/users/{}", u.id), &[])
            .unwrap();
    let patch = Call {
        url: &url2,
        ..patch
    };
    r.env.sim.set_roles(&tid, vec!["AuditLog.Read.All".into()]);
    r.env.tokens.invalidate(t.cloud, &tid);
    let err = r
        .env
        .client
        .send_json(&patch, &json!({"accountEnabled": false}))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Forbidden { .. }), "{err}");
    assert!(r.user(&u.id).enabled);
}

fn reqwest_method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcc_high_actions_stay_in_the_us_government_cloud() {
    let r = rig(vec![spec(2, Cloud::GccHigh)], ProtectedAccounts::new()).await;
    let (owner, _) = r.forwarding_owner();
    let rep = r
        .responder
        .run(&request(r.t(), &owner.id, Action::Contain))
        .await
        .unwrap();
    assert_eq!(rep.outcome, Outcome::Completed, "{rep:#?}");
    assert!(
        rep.calls()
            .all(|c| c.url.starts_with("https://graph.microsoft.us/"))
    );
    let log = r.env.sim.request_log();
    assert!(!log.is_empty());
    for req in &log {
        assert!(
            req.host == "graph.microsoft.us" || req.host == "login.microsoftonline.us",
            "{} {}",
            req.host,
            req.path
        );
    }
    let events = r.sink.events();
    assert_valid(&events);
    assert!(
        events
            .iter()
            .all(|e| e["cloud"]["cloud_partition"] == "AzureUSGovernment")
    );

    // A commercial app is never sent to a GCC High tenant, and a commercial responder
    // refuses the tenant outright.
    let before = r.env.sim.request_log().len();
    let tid = r.t().tenant_id.clone();
    r.env.tokens.set(
        &tid,
        AppCredential::with_secret("commercial-app", itdr_shared::auth::SecretString::new("s"))
            .for_group(CloudGroup::Commercial),
    );
    r.env.tokens.invalidate(Cloud::GccHigh, &tid);
    let e = r
        .responder
        .run(&request(r.t(), &owner.id, Action::RevokeSessions))
        .await
        .unwrap_err();
    assert!(matches!(e, RespondError::CloudMismatch { .. }), "{e}");
    let commercial = Responder::new(r.env.client.clone(), Arc::new(r.store.clone()))
        .for_group(CloudGroup::Commercial);
    let e = commercial
        .run(&request(r.t(), &owner.id, Action::RevokeSessions))
        .await
        .unwrap_err();
    assert!(matches!(e, RespondError::WrongGroup { .. }), "{e}");
    assert_eq!(
        r.env.sim.request_log().len(),
        before,
        "nothing was sent anywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("itdr.db");
    let r = rig(vec![spec(0, Cloud::Global)], ProtectedAccounts::new()).await;
    let store = SqliteStore::open(&path).unwrap();
    let responder = Responder::new(r.env.client.clone(), Arc::new(store.clone()));
    let u = r.ordinary_user();
    let rep = responder
        .run(&request(r.t(), &u.id, Action::Contain))
        .await
        .unwrap();
    drop(responder);
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    let log = reopened.list(&r.t().tenant_id).await.unwrap();
    assert_eq!(
        log.len(),
        1,
        "the started record was replaced by the final one"
    );
    assert_eq!(log[0], rep);
    assert!(
        log[0]
            .steps
            .iter()
            .all(|s| !s.calls.is_empty() || s.outcome == StepOutcome::Already)
    );
}
