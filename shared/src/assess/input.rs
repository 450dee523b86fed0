//! What an assessment reads: the tenant's identity inventory and its last 30 days of sign-ins,
//! rebuilt from the OCSF events the pipeline delivered (the same events downstream analytics
//! sees), plus what the inventory store knows could not be read (its degradations).
//!
//! Inventory objects come from the state events (5003 User Inventory Info, 5023 Cloud Resources
//! Inventory Info) of the feature "Identity inventory": the latest state of each object wins,
//! and an object whose latest event is a disappearance (3004 Delete) is gone. Sign-ins come
//! from 3002 Authentication events of the `signIns` log (Entra ID P1 or P2 only): the
//! `clientAppUsed` they keep under `unmapped` says which protocol was used.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inventory::Degradation;

/// Days of sign-ins the assessment looks at.
pub const WINDOW_DAYS: i64 = 30;

/// `clientAppUsed` values that are legacy (basic) authentication.
pub const LEGACY_CLIENT_APPS: [&str; 12] = [
    "Authenticated SMTP",
    "AutoDiscover",
    "Exchange ActiveSync",
    "Exchange Online PowerShell",
    "Exchange Web Services",
    "IMAP4",
    "MAPI Over HTTP",
    "Offline Address Book",
    "Other clients",
    "Outlook Anywhere (RPC over HTTP)",
    "POP3",
    "Reporting Web Services",
];

/// Whether a `clientAppUsed` value is legacy authentication.
pub fn is_legacy_client(client_app: &str) -> bool {
    LEGACY_CLIENT_APPS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(client_app.trim()))
}

/// When a user last signed in, as far as the inventory knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "at")]
pub enum LastSignIn {
    /// `signInActivity` could not be read (no Entra ID P1, or no permission).
    Unavailable,
    /// Never signed in (since Microsoft started recording, April 2020).
    Never,
    /// The latest of the interactive, non-interactive and successful sign-in times.
    At(DateTime<Utc>),
}

/// A user of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Object id.
    pub id: String,
    /// UPN (or display name, or id).
    pub name: String,
    /// A B2B guest.
    pub guest: bool,
    /// `accountEnabled` (None when unknown).
    pub enabled: Option<bool>,
    /// Holds at least one licence.
    pub licensed: bool,
    /// Mailbox purpose (`user`, `shared`, `room`, `equipment`, ...), when known.
    pub mailbox: Option<String>,
    /// When the account was created.
    pub created: Option<DateTime<Utc>>,
    /// Last sign-in.
    pub last_sign_in: LastSignIn,
}

impl User {
    /// Enabled (an unknown state counts as enabled: it is what the tenant would let sign in).
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }

    /// A shared, room or equipment mailbox: an account no person signs in to.
    pub fn is_resource_mailbox(&self) -> bool {
        matches!(
            self.mailbox.as_deref(),
            Some("shared" | "room" | "equipment")
        )
    }
}

/// A user's MFA registration.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaRegistration {
    /// User object id.
    pub id: String,
    /// UPN.
    pub name: String,
    /// `mfa` (a strong method), `weak_mfa_only` (SMS or voice) or `no_mfa`.
    pub strength: String,
    /// Holds an admin role.
    pub admin: bool,
    /// A guest.
    pub guest: bool,
}

/// An app credential (secret or certificate).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// `secret` or `certificate`.
    pub kind: String,
    /// When it expires (None: never).
    pub end: Option<DateTime<Utc>>,
}

/// A service principal and what it was granted.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Service principal object id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Publisher name, when known.
    pub publisher: Option<String>,
    /// Publisher verified by Microsoft.
    pub verified: bool,
    /// Published by Microsoft.
    pub first_party: bool,
    /// Highest permission class (`crate::inventory::classify::PermissionClass` label).
    pub class: String,
    /// Some delegated grant was consented by an admin for the whole tenant.
    pub admin_consent: bool,
    /// Application permissions (app roles) granted.
    pub app_permissions: Vec<String>,
    /// Delegated grants (consents).
    pub delegated_grants: u64,
    /// Its credentials.
    pub credentials: Vec<Credential>,
    /// The inventory's tags (`risky`, `sensitive`, ...).
    pub labels: Vec<String>,
}

/// A principal holding directory roles.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleHolder {
    /// Principal object id.
    pub id: String,
    /// UPN or display name.
    pub name: String,
    /// `user`, `service_principal`, `group`...
    pub principal_type: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Holds a privileged role.
    pub admin: bool,
    /// Holds Global Administrator.
    pub global_admin: bool,
    /// A guest holding a privileged role.
    pub guest_admin: bool,
}

/// A conditional access policy.
#[derive(Debug, Clone, PartialEq)]
pub struct CaPolicy {
    /// Policy id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    /// Users included (`All`, ids).
    pub include_users: Vec<String>,
    /// Client app types (`all`, `exchangeActiveSync`, `other`, `browser`, ...).
    pub client_app_types: Vec<String>,
    /// Built-in grant controls (`mfa`, `block`, ...).
    pub grant_controls: Vec<String>,
    /// Excluded users, groups and roles.
    pub excluded_users: u64,
    /// Excluded groups.
    pub excluded_groups: u64,
    /// Excluded roles.
    pub excluded_roles: u64,
}

impl CaPolicy {
    fn has(list: &[String], v: &str) -> bool {
        list.iter().any(|x| x.eq_ignore_ascii_case(v))
    }

    /// Enforced (not off, not report-only).
    pub fn is_enabled(&self) -> bool {
        self.state == "enabled"
    }

    /// Requires MFA.
    pub fn requires_mfa(&self) -> bool {
        Self::has(&self.grant_controls, "mfa")
    }

    /// Has any exclusion.
    pub fn has_exclusions(&self) -> bool {
        self.excluded_users + self.excluded_groups + self.excluded_roles > 0
    }

    /// Enforced, applies to all users (exclusions aside), and blocks the legacy client app
    /// types (`exchangeActiveSync` and `other`, or `all`).
    pub fn blocks_legacy(&self) -> bool {
        self.is_enabled()
            && Self::has(&self.grant_controls, "block")
            && Self::has(&self.include_users, "All")
            && (Self::has(&self.client_app_types, "other")
                || Self::has(&self.client_app_types, "exchangeActiveSync")
                || Self::has(&self.client_app_types, "all"))
    }
}

/// Sign-ins of the window, by protocol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignIns {
    /// Sign-in events read in the window.
    pub total: u64,
    /// Per `clientAppUsed` (`Not reported` when absent).
    pub by_client_app: BTreeMap<String, u64>,
    /// Legacy sign-ins per user (UPN): count, and the protocols used.
    pub legacy_by_user: BTreeMap<String, (u64, BTreeSet<String>)>,
}

/// Everything an assessment reads for one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// Tenant GUID.
    pub tenant_id: String,
    /// When the data describes the tenant (the latest inventory observation).
    pub as_of: Option<DateTime<Utc>>,
    /// Users by id.
    pub users: BTreeMap<String, User>,
    /// MFA registrations by user id (empty when the stream could not be read).
    pub mfa: BTreeMap<String, MfaRegistration>,
    /// Apps by service principal id.
    pub apps: BTreeMap<String, App>,
    /// Role holders by principal id.
    pub roles: BTreeMap<String, RoleHolder>,
    /// Conditional access policies by id.
    pub policies: BTreeMap<String, CaPolicy>,
    /// Security defaults on (None: not read).
    pub security_defaults: Option<bool>,
    /// Sign-ins of the window; None when the tenant has no sign-in log events at all
    /// (no Entra ID P1: Graph refuses `auditLogs/signIns`).
    pub sign_ins: Option<SignIns>,
    /// What the inventory could not read (from the store's summaries).
    pub degraded: Vec<Degradation>,
}

/// One object's latest state event.
#[derive(Debug)]
struct Latest {
    time: i64,
    /// None: the latest event is a disappearance.
    event: Option<Value>,
}

/// Builds an [`Input`] from a tenant's OCSF events, in any order, one at a time (a large
/// NDJSON file never has to be held in memory). Sign-ins are counted against the window,
/// which ends at the latest inventory observation; they are kept until [`InputBuilder::finish`]
/// only as (time, client app, user).
#[derive(Debug, Default)]
pub struct InputBuilder {
    tenant_id: String,
    latest: HashMap<(String, String), Latest>,
    sign_ins: Vec<(i64, String, Option<String>)>,
    saw_sign_in_log: bool,
    max_inventory_time: Option<i64>,
    digests: Vec<super::digest::DayDigest>,
}

const FEATURE: &str = "Identity inventory";

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn time(v: Option<&str>) -> Option<DateTime<Utc>> {
    v.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn has_label(labels: &Value, l: &str) -> bool {
    labels
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(l)))
}

impl InputBuilder {
    /// A builder for `tenant_id`'s events (events of other tenants are ignored).
    pub fn new(tenant_id: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_ascii_lowercase(),
            ..Self::default()
        }
    }

    /// Reads one event. Events of other tenants and of other kinds are skipped.
    pub fn push(&mut self, ev: &Value) {
        let tenant = str_at(ev, &["metadata", "tenant_uid"]).unwrap_or_default();
        if !tenant.eq_ignore_ascii_case(&self.tenant_id) {
            return;
        }
        let class = ev.get("class_uid").and_then(Value::as_u64).unwrap_or(0);
        let t = ev.get("time").and_then(Value::as_i64).unwrap_or(0);
        let log = str_at(ev, &["metadata", "log_name"]).unwrap_or_default();
        let feature = str_at(ev, &["metadata", "product", "feature", "name"]);
        if class == 3002 && log == "signIns" {
            self.saw_sign_in_log = true;
            let app = str_at(ev, &["unmapped", "clientAppUsed"])
                .unwrap_or("Not reported")
                .to_string();
            let user = str_at(ev, &["user", "name"]).map(str::to_string);
            self.sign_ins.push((t, app, user));
            return;
        }
        if feature != Some(FEATURE) {
            return;
        }
        let uid = match class {
            5003 => str_at(ev, &["user", "uid"]),
            5023 => ev
                .get("resources")
                .and_then(|r| r.get(0))
                .and_then(|r| str_at(r, &["uid"])),
            3004 if ev.get("activity_id").and_then(Value::as_u64) == Some(4) => {
                str_at(ev, &["entity", "uid"])
            }
            _ => None,
        };
        let Some(uid) = uid else { return };
        let key = (log.to_string(), uid.to_string());
        let event = (class != 3004).then(|| ev.clone());
        if class != 3004 {
            self.max_inventory_time = Some(self.max_inventory_time.map_or(t, |m| m.max(t)));
        }
        match self.latest.get(&key) {
            Some(l) if l.time > t => {}
            _ => {
                self.latest.insert(key, Latest { time: t, event });
            }
        }
    }

    /// Reads one day of the pollers' sign-in digest ([`super::digest`]) instead of that day's
    /// sign-in events (the AWS report function). Days outside the window are left out at
    /// [`InputBuilder::finish`]; the input then says in its degradations that the counts are
    /// at least once, and how many legacy sign-ins a full day could not attribute.
    pub fn push_digest(&mut self, day: super::digest::DayDigest) {
        self.digests.push(day);
    }

    /// The input, with the store's degradations.
    pub fn finish(self, degraded: Vec<Degradation>) -> Input {
        let as_of = self
            .max_inventory_time
            .and_then(DateTime::from_timestamp_millis);
        let mut input = Input {
            tenant_id: self.tenant_id.clone(),
            as_of,
            degraded,
            ..Input::default()
        };
        for ((log, uid), latest) in self.latest {
            let Some(ev) = latest.event else { continue };
            match (log.as_str(), ev.get("class_uid").and_then(Value::as_u64)) {
                ("users", Some(5003)) => {
                    input.users.insert(uid.clone(), user(&uid, &ev));
                }
                ("userRegistrationDetails", Some(5003)) => {
                    input.mfa.insert(uid.clone(), mfa(&uid, &ev));
                }
                (_, Some(5023)) => {
                    let r = &ev["resources"][0];
                    match r["type"].as_str().unwrap_or_default() {
                        "Service Principal" => {
                            input.apps.insert(uid.clone(), app(&uid, r));
                        }
                        "Directory Role Holder" => {
                            input.roles.insert(uid.clone(), role_holder(&uid, r));
                        }
                        "Conditional Access Policy" => {
                            input.policies.insert(uid.clone(), policy(&uid, r));
                        }
                        "Security Defaults Policy" => {
                            input.security_defaults = Some(r["data"]["isEnabled"] == true);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if self.saw_sign_in_log || !self.digests.is_empty() {
            let end = self.max_inventory_time.unwrap_or(i64::MAX);
            let start = end.saturating_sub(Duration::days(WINDOW_DAYS).num_milliseconds());
            let mut s = SignIns::default();
            add_digests(&mut s, &self.digests, start, end, &mut input.degraded);
            for (t, app, user) in self.sign_ins {
                if t < start || t > end.saturating_add(86_400_000) {
                    continue;
                }
                s.total += 1;
                if is_legacy_client(&app) {
                    let e = s
                        .legacy_by_user
                        .entry(user.unwrap_or_else(|| "(unknown user)".into()))
                        .or_default();
                    e.0 += 1;
                    e.1.insert(app.clone());
                }
                *s.by_client_app.entry(app).or_default() += 1;
            }
            input.sign_ins = Some(s);
        }
        input
    }
}

/// Adds the digest days of the window `[start, end]` (milliseconds; whole UTC days: the
/// first day counts whole) to `s`, and says what the digests cannot tell in `degraded`.
fn add_digests(
    s: &mut SignIns,
    days: &[super::digest::DayDigest],
    start: i64,
    end: i64,
    degraded: &mut Vec<Degradation>,
) {
    if days.is_empty() {
        return;
    }
    let day_of = |ms: i64| DateTime::from_timestamp_millis(ms).map(|t| t.date_naive());
    let (Some(first), last) = (day_of(start), day_of(end)) else {
        return;
    };
    let mut dropped = 0u64;
    for d in days {
        if d.day < first || last.is_some_and(|l| d.day > l) {
            continue;
        }
        s.total += d.total;
        for (app, n) in &d.by_client_app {
            *s.by_client_app.entry(app.clone()).or_default() += n;
        }
        for ((protocol, user), n) in &d.legacy {
            let e = s.legacy_by_user.entry(user.clone()).or_default();
            e.0 += n;
            e.1.insert(protocol.clone());
        }
        dropped += d.dropped;
    }
    degraded.push(Degradation {
        what: "sign-in counts".into(),
        reason: "at_least_once".into(),
        lost: "counted from the pollers' daily digests as delivered: a redelivered batch may be counted twice".into(),
    });
    if dropped > 0 {
        degraded.push(Degradation {
            what: "legacy sign-ins per user".into(),
            reason: "digest_full".into(),
            lost: format!(
                "{dropped} legacy sign-ins of busy days are counted but not attributed to a user"
            ),
        });
    }
}

/// What the tenant's inventory streams could not read, from the store's summaries.
pub async fn degradations(
    store: &dyn crate::inventory::InventoryStore,
    tenant_id: &str,
) -> Result<Vec<Degradation>, crate::store::StoreError> {
    Ok(store
        .summaries(tenant_id)
        .await?
        .into_values()
        .flat_map(|s| s.degraded)
        .collect())
}

fn user(uid: &str, ev: &Value) -> User {
    let data = &ev["unmapped"]["inventory"]["data"];
    let u = &ev["user"];
    let name = u["name"]
        .as_str()
        .or(u["full_name"].as_str())
        .unwrap_or(uid)
        .to_string();
    let guest = data["user_type"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
        || has_label(&ev["unmapped"]["inventory"]["labels"], "guest");
    let last_sign_in = match &data["last_sign_in"] {
        Value::Object(o) => {
            let latest = ["interactive", "non_interactive", "successful"]
                .iter()
                .filter_map(|k| time(o.get(*k).and_then(Value::as_str)))
                .max();
            match latest {
                Some(t) => LastSignIn::At(t),
                None => LastSignIn::Never,
            }
        }
        _ => LastSignIn::Unavailable,
    };
    User {
        id: uid.to_string(),
        name,
        guest,
        enabled: data["account_enabled"].as_bool(),
        licensed: data["licences"].as_array().is_some_and(|a| !a.is_empty()),
        mailbox: data["mailbox_purpose"].as_str().map(str::to_string),
        created: time(data["created"].as_str()),
        last_sign_in,
    }
}

fn mfa(uid: &str, ev: &Value) -> MfaRegistration {
    let data = &ev["unmapped"]["inventory"]["data"];
    MfaRegistration {
        id: uid.to_string(),
        name: ev["user"]["name"].as_str().unwrap_or(uid).to_string(),
        strength: data["strength"].as_str().unwrap_or("no_mfa").to_string(),
        admin: data["is_admin"] == true,
        guest: data["user_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest")),
    }
}

fn app(uid: &str, r: &Value) -> App {
    let d = &r["data"];
    let grants = d["delegatedGrants"].as_array();
    App {
        id: uid.to_string(),
        name: r["name"].as_str().unwrap_or(uid).to_string(),
        publisher: d["publisher"]
            .as_str()
            .or(d["verifiedPublisher"].as_str())
            .map(str::to_string),
        verified: d["publisherVerified"] == true,
        first_party: d["firstParty"] == true,
        class: d["permissionClass"].as_str().unwrap_or("none").to_string(),
        admin_consent: grants.is_some_and(|g| g.iter().any(|x| x["consent"] == "admin")),
        app_permissions: d["applicationPermissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["permission"].as_str().map(str::to_string))
            .collect(),
        delegated_grants: grants.map_or(0, |g| g.len() as u64),
        credentials: d["credentials"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Credential {
                kind: c["type"].as_str().unwrap_or("secret").to_string(),
                end: time(c["end"].as_str()),
            })
            .collect(),
        labels: strings(&r["labels"]),
    }
}

fn role_holder(uid: &str, r: &Value) -> RoleHolder {
    let labels = &r["labels"];
    RoleHolder {
        id: uid.to_string(),
        name: r["name"].as_str().unwrap_or(uid).to_string(),
        principal_type: r["data"]["principal_type"]
            .as_str()
            .unwrap_or("other")
            .to_string(),
        roles: r["data"]["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["role"].as_str().map(str::to_string))
            .collect(),
        admin: has_label(labels, "admin"),
        global_admin: has_label(labels, "global_admin"),
        guest_admin: has_label(labels, "guest_admin"),
    }
}

fn policy(uid: &str, r: &Value) -> CaPolicy {
    let d = &r["data"];
    let n = |k: &str| d["exclusions"][k].as_array().map_or(0, |a| a.len() as u64);
    CaPolicy {
        id: uid.to_string(),
        name: r["name"].as_str().unwrap_or(uid).to_string(),
        state: d["state"].as_str().unwrap_or("unknown").to_string(),
        include_users: strings(&d["includeUsers"]),
        client_app_types: strings(&d["clientAppTypes"]),
        grant_controls: strings(&d["grantControls"]),
        excluded_users: n("users"),
        excluded_groups: n("groups"),
        excluded_roles: n("roles"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: &str = "11111111-1111-1111-1111-111111111111";

    fn inv(class: u64, log: &str, time: i64, body: Value) -> Value {
        let mut ev = json!({
            "class_uid": class, "time": time,
            "metadata": {"tenant_uid": T, "log_name": log,
                "product": {"feature": {"name": FEATURE}}},
        });
        if let (Some(o), Some(b)) = (ev.as_object_mut(), body.as_object()) {
            for (k, v) in b {
                o.insert(k.clone(), v.clone());
            }
        }
        ev
    }

    #[test]
    fn latest_state_wins_and_disappearance_removes() {
        let mut b = InputBuilder::new(T);
        let u = |t, enabled| {
            inv(
                5003,
                "users",
                t,
                json!({"user": {"uid": "u1", "name": "a@x.example"},
                "unmapped": {"inventory": {"data": {"account_enabled": enabled, "licences": ["L"],
                "last_sign_in": {"interactive": "2026-01-01T00:00:00Z", "never": false}}}}}),
            )
        };
        b.push(&u(2000, false));
        b.push(&u(1000, true)); // older: ignored
        b.push(&inv(5003, "users", 1500, json!({"user": {"uid": "u2"}})));
        b.push(&inv(
            3004,
            "users",
            1600,
            json!({"activity_id": 4, "entity": {"uid": "u2"}}),
        ));
        let mut other = u(3000, true);
        other["metadata"]["tenant_uid"] = json!("someone-else");
        b.push(&other);
        let input = b.finish(Vec::new());
        assert_eq!(input.users.len(), 1);
        let a = &input.users["u1"];
        assert_eq!(a.enabled, Some(false));
        assert!(a.licensed);
        assert!(matches!(a.last_sign_in, LastSignIn::At(_)));
        assert_eq!(input.as_of.map(|t| t.timestamp_millis()), Some(2000));
        assert!(input.sign_ins.is_none(), "no sign-in log: none, not zero");
    }

    #[test]
    fn sign_ins_are_counted_by_protocol_within_the_window() {
        let mut b = InputBuilder::new(T);
        let day = 86_400_000;
        b.push(&inv(
            5003,
            "users",
            40 * day,
            json!({"user": {"uid": "u1"}}),
        ));
        let si = |t: i64, app: Option<&str>| {
            json!({"class_uid": 3002, "time": t, "user": {"name": "a@x.example"},
                "metadata": {"tenant_uid": T, "log_name": "signIns"},
                "unmapped": {"clientAppUsed": app}})
        };
        b.push(&si(39 * day, Some("IMAP4")));
        b.push(&si(39 * day, Some("Browser")));
        b.push(&si(39 * day, None));
        b.push(&si(5 * day, Some("POP3"))); // outside the 30 days
        let s = b.finish(Vec::new()).sign_ins.unwrap_or_default();
        assert_eq!(s.total, 3);
        assert_eq!(s.by_client_app["IMAP4"], 1);
        assert_eq!(s.by_client_app["Not reported"], 1);
        assert!(!s.by_client_app.contains_key("POP3"));
        assert_eq!(s.legacy_by_user["a@x.example"].0, 1);
    }

    #[test]
    fn digests_count_like_events_and_say_they_are_at_least_once() {
        use crate::assess::digest::DayDigest;
        let day = 86_400_000;
        let mut b = InputBuilder::new(T);
        b.push(&inv(
            5003,
            "users",
            40 * day,
            json!({"user": {"uid": "u1"}}),
        ));
        let d = |n: i64, dropped: u64| DayDigest {
            day: DateTime::from_timestamp_millis(n * day)
                .map(|t| t.date_naive())
                .unwrap_or_default(),
            total: 5,
            by_client_app: [("IMAP4".to_string(), 2), ("Browser".to_string(), 3)].into(),
            legacy: [(("IMAP4".to_string(), "a@x.example".to_string()), 2)].into(),
            dropped,
        };
        b.push_digest(d(39, 0));
        b.push_digest(d(10, 0)); // the whole day is inside the 30 days
        b.push_digest(d(5, 7)); // outside
        let input = b.finish(Vec::new());
        let s = input.sign_ins.clone().unwrap_or_default();
        assert_eq!(s.total, 10);
        assert_eq!(s.by_client_app["IMAP4"], 4);
        assert_eq!(s.legacy_by_user["a@x.example"].0, 4);
        assert!(s.legacy_by_user["a@x.example"].1.contains("IMAP4"));
        assert!(input.degraded.iter().any(|d| d.reason == "at_least_once"));
        assert!(!input.degraded.iter().any(|d| d.reason == "digest_full"));

        let mut b = InputBuilder::new(T);
        b.push(&inv(
            5003,
            "users",
            40 * day,
            json!({"user": {"uid": "u1"}}),
        ));
        b.push_digest(d(39, 7));
        let input = b.finish(Vec::new());
        assert!(input.degraded.iter().any(|d| d.reason == "digest_full"));
    }
}
