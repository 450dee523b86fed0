//! The identity inventory against the simulator: every snapshot stream end to end (classify,
//! summarize, bill, emit OCSF that validates), diffs between snapshots (appear, change,
//! disappear), degraded operation without each optional permission or licence, and a large
//! tenant read within the request budgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::inventory::{InventoryStore, Summary};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, PollOutcome, poll};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{GLOBAL_ADMIN, InvUser, LoggedRequest, SimConfig, TenantSpec};
use serde_json::{Value, json};

struct Rig {
    env: common::Env,
    store: SqliteStore,
    sink: Arc<MemorySink>,
    ctx: PollContext,
}

async fn rig(specs: Vec<TenantSpec>) -> Rig {
    let env = common::start(SimConfig::new(12, specs), Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig::default().validated().unwrap(),
        hook: None,
    };
    Rig {
        env,
        store,
        sink,
        ctx,
    }
}

fn job(tenant: &str, stream: Stream) -> PollJob {
    PollJob {
        tenant_id: tenant.to_string(),
        cloud: Cloud::Global,
        stream,
        include_noninteractive: false,
        retention_days: None,
    }
}

impl Rig {
    /// Polls one stream every 5 simulated minutes until its snapshot completes; returns the
    /// polls' outcomes.
    async fn snapshot(&self, tenant: &str, stream: Stream) -> Vec<PollOutcome> {
        let mut outs = Vec::new();
        for _ in 0..2000 {
            let started = self.env.clock.now();
            let out = poll(
                &self.ctx,
                &job(tenant, stream),
                started + TimeDelta::minutes(14),
            )
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"));
            let done = out.pass_complete;
            outs.push(out);
            if done {
                return outs;
            }
            self.env.clock.advance_to(started + TimeDelta::minutes(5));
        }
        panic!("{stream} never completed");
    }

    async fn summary(&self, tenant: &str, stream: Stream) -> Summary {
        self.store.summaries(tenant).await.unwrap()[&stream].clone()
    }

    fn events_since(&self, n: usize) -> Vec<Value> {
        self.sink.events().into_iter().skip(n).collect()
    }
}

/// The OCSF errors of every event (schema, captions, and what a schema cannot check).
fn assert_valid(events: &[Value]) {
    for e in events {
        let errs = common::ocsf::all_errors(e);
        assert!(errs.is_empty(), "{errs:?}\n{e:#}");
    }
}

fn billable_by_hand(u: &InvUser) -> bool {
    u.user_type == "Member"
        && match u.purpose {
            Some("room" | "equipment") => false,
            Some("shared") => !u.licences.is_empty(),
            _ => u.enabled && !u.licences.is_empty(),
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_takes_stock_classifies_and_emits_valid_ocsf() {
    let r = rig(vec![TenantSpec::new(0, Cloud::Global)]).await;
    let t = r.env.specs[0].tenant_id.clone();
    let inv = r.env.sim.inventory(&t).unwrap();
    for stream in Stream::INVENTORY {
        r.snapshot(&t, stream).await;
    }
    let events = r.sink.events();
    assert_valid(&events);
    // The first snapshot is the baseline: inventory events only, no change events.
    assert!(events.iter().all(|e| e["class_uid"] != 3004));

    let users = r.summary(&t, Stream::Users).await;
    assert_eq!(users.total as usize, inv.users.len());
    let billable = inv.users.iter().filter(|u| billable_by_hand(u)).count();
    assert_eq!(users.count("billable") as usize, billable);
    let guests = inv.users.iter().filter(|u| u.user_type == "Guest").count();
    assert!(guests > 0);
    assert_eq!(users.count("excluded:guest") as usize, guests);
    assert_eq!(
        users.count("excluded:resource_mailbox"),
        3,
        "two rooms, a projector"
    );
    let unlicensed_shared = inv
        .users
        .iter()
        .filter(|u| u.purpose == Some("shared") && u.licences.is_empty())
        .count();
    assert_eq!(
        users.count("excluded:shared_mailbox") as usize,
        unlicensed_shared
    );
    assert!(users.count("excluded:disabled") > 0 && users.count("excluded:unlicensed") > 0);
    assert!(users.degraded.is_empty(), "{:?}", users.degraded);
    // The daily usage figure is the billable count.
    let usage = r.store.usage(&t).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].1 as usize, billable);
    // Last sign-in is read (the tenant has P1).
    let user_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["class_uid"] == 5003 && e["metadata"]["log_name"] == "users")
        .collect();
    assert_eq!(user_events.len(), inv.users.len());
    assert!(
        user_events
            .iter()
            .any(|e| e["unmapped"]["inventory"]["data"]["last_sign_in"]["interactive"].is_string())
    );

    let apps = r.summary(&t, Stream::Apps).await;
    let app_names = |tag: &str| -> Vec<String> {
        let mut v: Vec<String> = events
            .iter()
            .filter(|e| e["metadata"]["log_name"] == "servicePrincipals")
            .filter(|e| {
                e["resources"][0]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l == tag)
            })
            .map(|e| e["resources"][0]["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // Sensitive permissions without a verified publisher: three third-party apps, and an
    // unverified in-tenant app with directory write.
    assert_eq!(
        app_names("risky"),
        vec![
            "Directory Sync Tool",
            "Mail Merge Helper",
            "PDF Converter Online",
            "Tenant Admin Toolkit"
        ]
    );
    assert_eq!(
        app_names("class:role_management"),
        vec!["Tenant Admin Toolkit"]
    );
    assert_eq!(app_names("class:basic"), vec!["Zoom"]);
    assert!(app_names("expired_credential") == vec!["Directory Sync Tool"]);
    assert!(
        !events
            .iter()
            .any(|e| e["resources"][0]["name"] == "Microsoft Teams"),
        "first-party apps without grants are left out"
    );
    assert_eq!(apps.total, 10, "the ten third-party and in-tenant apps");

    let roles = r.summary(&t, Stream::Roles).await;
    assert_eq!(roles.count("global_admin"), 3);
    assert_eq!(roles.count("guest_admin"), 1);
    assert_eq!(roles.count("service_principal_admin"), 1);
    assert_eq!(
        roles.count("admin"),
        5,
        "3 GAs, an Exchange admin, an SP; readers are not admins"
    );

    let mfa = r.summary(&t, Stream::Mfa).await;
    assert!(mfa.count("no_mfa") > 0 && mfa.count("mfa") > 0);

    let ca = r.summary(&t, Stream::ConditionalAccess).await;
    assert_eq!(ca.count("policy"), 4);
    assert_eq!(ca.count("has_exclusions"), 3);
    assert_eq!(ca.count("security_defaults_on"), 0);

    let rules = r.summary(&t, Stream::InboxRules).await;
    let planted = inv.malicious_rules();
    assert!(planted.len() >= 3);
    assert_eq!(rules.count("flagged") as usize, planted.len());
    let all_rules: usize = inv.rules.values().map(Vec::len).sum();
    assert_eq!(rules.total as usize, all_rules);
    assert!(
        all_rules > 2 * planted.len(),
        "a few malicious among many ordinary rules"
    );
    assert!(rules.count("forwards_external") >= 2);
    assert!(rules.count("moves_to_hidden_folder") >= 1);
    // Flagged rules are high or medium severity; ordinary ones informational.
    for e in events
        .iter()
        .filter(|e| e["metadata"]["log_name"] == "messageRules")
    {
        let flagged = e["resources"][0]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "flagged");
        assert_eq!(e["severity_id"].as_u64().unwrap() >= 3, flagged, "{e}");
    }

    // Not due again for a day: polls read nothing.
    let before = r.env.sim.request_log().len();
    for stream in Stream::INVENTORY {
        let out = poll(
            &r.ctx,
            &job(&t, stream),
            r.env.clock.now() + TimeDelta::minutes(5),
        )
        .await
        .unwrap();
        assert!(out.pass_complete && out.emitted == 0);
    }
    assert_eq!(r.env.sim.request_log().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_snapshot_reports_what_appeared_changed_and_disappeared() {
    let r = rig(vec![TenantSpec::new(1, Cloud::Global)]).await;
    let t = r.env.specs[0].tenant_id.clone();
    for stream in Stream::INVENTORY {
        r.snapshot(&t, stream).await;
    }
    let seen = r.sink.events().len();
    let inv = r.env.sim.inventory(&t).unwrap();
    let gone = inv
        .users
        .iter()
        .rev()
        .find(|u| u.user_type == "Member")
        .unwrap()
        .id
        .clone();
    let promoted = inv
        .users
        .iter()
        .filter(|u| u.user_type == "Member")
        .nth(7)
        .unwrap()
        .id
        .clone();
    let victim = inv.rules.keys().min().unwrap().clone();
    r.env.sim.edit_inventory(&t, |inv| {
        inv.users.retain(|u| u.id != gone);
        inv.role_assignments.push((promoted.clone(), GLOBAL_ADMIN.to_string()));
        inv.rules.get_mut(&victim).unwrap().push(json!({
            "id": "NEWRULE", "displayName": "...", "sequence": 1, "isEnabled": true,
            "conditions": {}, "actions": {"forwardTo": [{"emailAddress": {"address": "x@exfil.example"}}]},
        }));
        let sp = json!({"id": "5e1f0000-0000-4000-8000-000000000001", "appId": "5e1f0000-0000-4000-8000-0000000000aa",
            "displayName": "Inbox Cleaner Pro", "appOwnerOrganizationId": "5e1f0000-0000-4000-8000-0000000000bb",
            "verifiedPublisher": {}, "passwordCredentials": [], "keyCredentials": []});
        inv.service_principals.push(sp);
        let graph = inv.service_principals[0]["id"].clone();
        inv.grants.push(json!({"id": "g-new", "clientId": "5e1f0000-0000-4000-8000-000000000001",
            "consentType": "AllPrincipals", "resourceId": graph, "scope": "Mail.ReadWrite offline_access"}));
    });
    r.env.clock.advance(Duration::from_secs(86_400));
    for stream in Stream::INVENTORY {
        r.snapshot(&t, stream).await;
    }
    let events = r.events_since(seen);
    assert_valid(&events);
    let changes: Vec<&Value> = events.iter().filter(|e| e["class_uid"] == 3004).collect();
    let find = |log: &str, activity: u64| -> Vec<&Value> {
        changes
            .iter()
            .copied()
            .filter(|e| e["metadata"]["log_name"] == log && e["activity_id"] == activity)
            .collect()
    };
    // Exactly the four edits: the removed user (from users and MFA? MFA lists the directory's
    // own users, which the edit did not touch), the new Global Administrator, the new rule,
    // the new app.
    let deleted = find("users", 4);
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["entity"]["uid"], json!(gone));
    let ga = find("roleAssignments", 1);
    assert_eq!(ga.len(), 1, "{ga:?}");
    assert_eq!(ga[0]["entity"]["uid"], json!(promoted));
    assert_eq!(
        ga[0]["severity_id"], 4,
        "a new Global Administrator is high severity"
    );
    let rule = find("messageRules", 1);
    assert_eq!(rule.len(), 1);
    assert_eq!(rule[0]["entity"]["uid"], json!(format!("{victim}/NEWRULE")));
    assert_eq!(rule[0]["entity"]["type"], "Inbox Rule");
    assert_eq!(rule[0]["severity_id"], 4);
    let app = find("servicePrincipals", 1);
    assert_eq!(app.len(), 1);
    assert_eq!(app[0]["entity"]["name"], "Inbox Cleaner Pro");
    assert!(app[0]["severity_id"].as_u64().unwrap() >= 3);
    assert_eq!(changes.len(), 4, "nothing else changed: {changes:#?}");
    // Every object is re-stated in the inventory events of the new snapshot.
    let users_now = r.summary(&t, Stream::Users).await;
    assert_eq!(users_now.total as usize, inv.users.len() - 1);

    // A role removed: the holder changes (or disappears) in the next snapshot.
    r.env.sim.edit_inventory(&t, |inv| {
        inv.role_assignments.retain(|(p, _)| p != &promoted);
    });
    r.env.clock.advance(Duration::from_secs(86_400));
    let seen = r.sink.events().len();
    r.snapshot(&t, Stream::Roles).await;
    let events = r.events_since(seen);
    let gone: Vec<&Value> = events.iter().filter(|e| e["class_uid"] == 3004).collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["activity_id"], 4);
    assert_eq!(gone[0]["entity"]["uid"], json!(promoted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_optional_permissions_and_licences_degrade_each_stream_clearly() {
    let mut spec = TenantSpec::new(2, Cloud::Global);
    spec.has_p1 = false;
    spec.roles
        .retain(|r| r != "MailboxSettings.Read" && r != "Policy.Read.All");
    let r = rig(vec![spec]).await;
    let t = r.env.specs[0].tenant_id.clone();
    let inv = r.env.sim.inventory(&t).unwrap();
    for stream in Stream::INVENTORY {
        r.snapshot(&t, stream).await;
    }
    assert_valid(&r.sink.events());
    let what = |s: &Summary| -> Vec<(String, String)> {
        s.degraded
            .iter()
            .map(|d| (d.what.clone(), d.reason.clone()))
            .collect()
    };
    // Users: without P1 no last sign-in; without MailboxSettings.Read no mailbox purpose. The
    // users are all there and still billed by licence and account state.
    let users = r.summary(&t, Stream::Users).await;
    assert_eq!(
        what(&users),
        vec![
            ("mailboxSettings".to_string(), "forbidden".to_string()),
            ("signInActivity".to_string(), "licence_required".to_string()),
        ]
    );
    assert_eq!(users.total as usize, inv.users.len());
    assert_eq!(users.count("excluded:shared_mailbox"), 0, "purpose unknown");
    assert!(users.count("billable") > 0);
    assert!(
        r.sink
            .events()
            .iter()
            .filter(|e| e["metadata"]["log_name"] == "users")
            .all(|e| e["unmapped"]["inventory"]["data"]["last_sign_in"] == "unavailable")
    );
    // MFA registration needs the licence; conditional access and inbox rules their permission.
    assert_eq!(
        what(&r.summary(&t, Stream::Mfa).await),
        vec![("userRegistrationDetails".into(), "licence_required".into())]
    );
    assert_eq!(
        what(&r.summary(&t, Stream::ConditionalAccess).await),
        vec![("conditionalAccess".into(), "forbidden".into())]
    );
    assert_eq!(
        what(&r.summary(&t, Stream::InboxRules).await),
        vec![("messageRules".into(), "forbidden".into())]
    );
    // Apps and roles need nothing beyond Directory.Read.All.
    assert!(r.summary(&t, Stream::Apps).await.degraded.is_empty());
    assert!(r.summary(&t, Stream::Roles).await.total > 0);

    // Policy.Read.All without P1: security defaults are read, policies are not.
    r.env.sim.set_roles(&t, {
        let mut roles = r.env.specs[0].roles.clone();
        roles.push("Policy.Read.All".into());
        roles
    });
    itdr_shared::auth::TokenSource::invalidate(r.env.tokens.as_ref(), Cloud::Global, &t);
    r.env.clock.advance(Duration::from_secs(86_400));
    r.snapshot(&t, Stream::ConditionalAccess).await;
    let ca = r.summary(&t, Stream::ConditionalAccess).await;
    assert_eq!(
        what(&ca),
        vec![(
            "conditionalAccessPolicies".into(),
            "licence_required".into()
        )]
    );
    assert_eq!(ca.count("security_defaults_on"), 1);
}

/// Requests of one class in the busiest window of `window`.
fn busiest(log: &[&LoggedRequest], window: TimeDelta) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..log.len() {
        while log[end].at - log[start].at >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// What the large-tenant run measured.
#[derive(Debug)]
pub struct LargeRun {
    pub requests: BTreeMap<&'static str, usize>,
    pub simulated: TimeDelta,
    pub busiest_directory_10s: usize,
    pub busiest_outlook_10s: usize,
    pub busiest_signin_activity_60s: usize,
    pub busiest_reports_10s: usize,
}

fn class_of(r: &LoggedRequest) -> &'static str {
    let p = r.path.to_ascii_lowercase();
    if p.contains("/mailboxsettings") || p.contains("/mailfolders") {
        "outlook"
    } else if r.query.to_ascii_lowercase().contains("signinactivity") {
        "signin_activity"
    } else if p.contains("/reports/") || p.contains("/auditlogs/") {
        "reports"
    } else if p.contains("/oauth2/") || p.contains("/token") {
        "token"
    } else {
        "directory"
    }
}

async fn large_tenant(users: usize, mailboxes: usize) -> (LargeRun, HashMap<Stream, Summary>) {
    let mut spec = TenantSpec::new(3, Cloud::Global);
    spec.users = users;
    spec.signins_per_hour = 1.0;
    spec.audits_per_hour = 1.0;
    let r = rig(vec![spec]).await;
    let t = r.env.specs[0].tenant_id.clone();
    r.env.sim.edit_inventory(&t, |inv| {
        let mut n = 0;
        for u in &mut inv.users {
            if u.purpose.is_some() {
                n += 1;
                if n > mailboxes {
                    u.purpose = None;
                    u.mail = None;
                }
            }
        }
    });
    assert_eq!(r.env.sim.inventory(&t).unwrap().mailboxes(), mailboxes);
    let start: DateTime<Utc> = r.env.clock.now();
    let log_start = r.env.sim.request_log().len();
    for stream in Stream::INVENTORY {
        r.snapshot(&t, stream).await;
    }
    let simulated = r.env.clock.now() - start;
    let log = r.env.sim.request_log();
    let log: Vec<&LoggedRequest> = log.iter().skip(log_start).collect();
    let mut requests = BTreeMap::new();
    for l in &log {
        *requests.entry(class_of(l)).or_default() += 1;
    }
    let of = |c: &str| -> Vec<&LoggedRequest> {
        log.iter().copied().filter(|l| class_of(l) == c).collect()
    };
    let run = LargeRun {
        requests,
        simulated,
        busiest_directory_10s: busiest(&of("directory"), TimeDelta::seconds(10)),
        busiest_outlook_10s: busiest(&of("outlook"), TimeDelta::seconds(10)),
        busiest_signin_activity_60s: busiest(&of("signin_activity"), TimeDelta::seconds(60)),
        busiest_reports_10s: busiest(
            &log.iter()
                .copied()
                .filter(|l| matches!(class_of(l), "reports" | "signin_activity"))
                .collect::<Vec<_>>(),
            TimeDelta::seconds(10),
        ),
    };
    let mut sums = HashMap::new();
    for s in Stream::INVENTORY {
        sums.insert(s, r.summary(&t, s).await);
    }
    (run, sums)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tenant_is_read_within_the_request_budgets() {
    // 10,000 users and 5,000 mailboxes, on a virtual clock (`make inventory-bench` measures
    // the same run optimised, with memory).
    let (run, sums) = large_tenant(10_000, 5_000).await;
    eprintln!("{run:#?}");
    let users = &sums[&Stream::Users];
    assert!(users.total >= 10_000);
    assert_eq!(
        users.count("mailbox:user")
            + users.count("mailbox:shared")
            + users.count("mailbox:room")
            + users.count("mailbox:equipment"),
        5_000
    );
    // Budgets: directory and Outlook within the pacer's 100 per 10 s per tenant (Microsoft's
    // directory limit for a large tenant is 8,000 resource units per 10 s; Outlook's is per
    // mailbox), signInActivity within 10 a minute, the reporting bucket within 5 per 10 s.
    assert!(run.busiest_directory_10s <= 100, "{run:?}");
    assert!(run.busiest_outlook_10s <= 100, "{run:?}");
    assert!(run.busiest_signin_activity_60s <= 10, "{run:?}");
    assert!(run.busiest_reports_10s <= 5, "{run:?}");
    // One users page per 120 users with signInActivity, one mailbox settings request per
    // mailbox, one rules request per mailbox (plus one per folder a rule moves mail to).
    // (A page being read when a poll's deadline comes is read again by the next poll.)
    let pages = (users.total as usize).div_ceil(120);
    let sia = run.requests["signin_activity"];
    assert!(
        (pages..=pages + 3).contains(&sia),
        "{sia} requests for {pages} pages"
    );
    assert!(run.requests["outlook"] >= 2 * 5_000);
    // Spread over the day, not all at once: inbox rules take many polls.
    assert!(
        run.simulated > TimeDelta::hours(6) && run.simulated < TimeDelta::hours(24),
        "{run:?}"
    );
}
