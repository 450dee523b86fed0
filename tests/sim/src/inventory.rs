//! The identity inventory endpoints of Microsoft Graph: users (with `signInActivity`),
//! mailbox settings, inbox rules and mail folders, domains, service principals with their
//! app roles and `appRoleAssignedTo`, delegated grants, directory role definitions and
//! assignments, conditional access policies and security defaults.
//!
//! Each tenant's inventory is derived from its seeded directory (the same users its sign-in
//! logs show) plus shared, room and equipment mailboxes, and is deterministic: guests, disabled
//! and unlicensed users, a dozen apps from harmless to risky, a guest Global Administrator,
//! policies with exclusions, and a few malicious inbox rules among many ordinary ones. Tests
//! change it through [`crate::SimHandle::edit_inventory`].
//!
//! Permissions are checked against the token's roles (403 `Authorization_RequestDenied`);
//! `signInActivity` needs Entra ID P1 (403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`),
//! returns at most 120 users a page and allows 10 requests a minute per tenant (429 with
//! `Retry-After`). Collections page with `$top` and an opaque `$skiptoken`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{TenantSpec, stable_guid};
use crate::generator::User;
use crate::server::{Reply, lock};

/// Microsoft Graph's app id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Exchange Online's app id.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
const MICROSOFT_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// Global Administrator's role template id.
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const ROLE_DEFS: [(&str, &str); 7] = [
    (GLOBAL_ADMIN, "Global Administrator"),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
];

/// A user of the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct InvUser {
    /// Object id.
    pub id: String,
    /// UPN (`#EXT#` for guests).
    pub upn: String,
    /// Display name.
    pub display: String,
    /// `mail`, when the user has an address.
    pub mail: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: &'static str,
    /// `accountEnabled`.
    pub enabled: bool,
    /// `createdDateTime`.
    pub created: String,
    /// Assigned licence SKU ids.
    pub licences: Vec<String>,
    /// `mailboxSettings.userPurpose`; `None`: no Exchange Online mailbox.
    pub purpose: Option<&'static str>,
    /// `signInActivity.lastSignInDateTime`.
    pub last_sign_in: Option<String>,
}

/// A tenant's inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// Users, in directory order.
    pub users: Vec<InvUser>,
    /// Service principals (Graph JSON, `appRoles` included for resources).
    pub service_principals: Vec<Value>,
    /// Delegated grants (Graph JSON).
    pub grants: Vec<Value>,
    /// App role assignments (Graph JSON; `resourceId` says on which resource).
    pub app_role_assignments: Vec<Value>,
    /// Directory role assignments: (principal id, role template id).
    pub role_assignments: Vec<(String, String)>,
    /// Conditional access policies (Graph JSON).
    pub policies: Vec<Value>,
    /// Whether security defaults are on.
    pub security_defaults: bool,
    /// Inbox rules by mailbox user id (Graph JSON).
    pub rules: HashMap<String, Vec<Value>>,
    /// Mail folders by mailbox user id: (id, display name).
    pub folders: HashMap<String, Vec<(String, String)>>,
    /// The tenant's domains.
    pub domains: Vec<String>,
}

const SKU_E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const SKU_BP: &str = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46";

/// (key, name, publisher, verified, owned by the tenant, secret expiry).
type ThirdPartyApp<'a> = (&'a str, &'a str, &'a str, bool, bool, Option<&'a str>);

fn h(seed: &str) -> u64 {
    let d = Sha256::digest(seed.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn rcpt(a: &str) -> Value {
    json!({"emailAddress": {"name": a, "address": a}})
}

impl Inventory {
    /// The inventory of a tenant with these directory users.
    pub(crate) fn build(spec: &TenantSpec, people: &[User], now: DateTime<Utc>) -> Inventory {
        let d = &spec.domain;
        let mut users = Vec::with_capacity(people.len() + 8);
        for (i, u) in people.iter().enumerate() {
            let hv = h(&u.id);
            let created = (now - TimeDelta::days(30 + (hv % 1500) as i64))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let last = (!hv.is_multiple_of(10)).then(|| {
                (now - TimeDelta::hours((hv % 700) as i64))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            });
            let (licences, purpose, enabled) = if u.guest {
                (vec![], None, true)
            } else if u.service {
                (vec![SKU_E3.to_string()], None, true)
            } else if i > 3 && i % 23 == 9 {
                (vec![SKU_BP.to_string()], Some("user"), false) // left the company
            } else if i > 3 && i % 17 == 6 {
                (vec![], None, true) // never licensed
            } else {
                (
                    vec![if i % 2 == 0 { SKU_E3 } else { SKU_BP }.to_string()],
                    Some("user"),
                    true,
                )
            };
            users.push(InvUser {
                id: u.id.clone(),
                upn: u.upn.clone(),
                display: u.display.clone(),
                mail: (!u.guest)
                    .then(|| u.upn.clone())
                    .filter(|_| purpose.is_some() || u.service),
                user_type: if u.guest { "Guest" } else { "Member" },
                enabled,
                created,
                licences,
                purpose,
                last_sign_in: last,
            });
        }
        let n_shared = (people.len() / 25).max(2);
        let extra: Vec<(String, &'static str, bool)> = (0..n_shared)
            .map(|i| (format!("shared{i}"), "shared", i == 0))
            .chain([
                ("boardroom".to_string(), "room", false),
                ("room-2".to_string(), "room", false),
                ("projector".to_string(), "equipment", false),
            ])
            .collect();
        for (local, purpose, licensed) in extra {
            users.push(InvUser {
                id: stable_guid(&format!("inv/{}/{local}", spec.tenant_id)),
                upn: format!("{local}@{d}"),
                display: format!("{local} ({purpose})"),
                mail: Some(format!("{local}@{d}")),
                user_type: "Member",
                enabled: false,
                created: (now - TimeDelta::days(400))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
                licences: if licensed {
                    vec![SKU_E3.to_string()]
                } else {
                    vec![]
                },
                purpose: Some(purpose),
                last_sign_in: None,
            });
        }

        // Apps.
        let graph_roles = [
            ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
            ("Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9"),
            ("Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96"),
            ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
            ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
            (
                "Directory.ReadWrite.All",
                "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            ),
            (
                "RoleManagement.ReadWrite.Directory",
                "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            ),
            (
                "Files.ReadWrite.All",
                "75359482-378d-4052-8f01-80520e7db3cd",
            ),
            ("AuditLog.Read.All", "b0afded3-3588-46d8-8b3d-9842eff778da"),
        ];
        let exo_roles = [("full_access_as_app", "dc890d15-9560-4a4c-9b7f-a736ec74ec40")];
        let sp_id = |name: &str| stable_guid(&format!("sp/{}/{name}", spec.tenant_id));
        let graph_sp = sp_id("graph");
        let exo_sp = sp_id("exo");
        let ms_sp = |id: &str, app_id: &str, name: &str, roles: &[(&str, &str)]| {
            json!({"id": id, "appId": app_id, "displayName": name, "appOwnerOrganizationId": MICROSOFT_TENANT,
                "publisherName": "Microsoft Services", "servicePrincipalType": "Application", "accountEnabled": true,
                "verifiedPublisher": {}, "passwordCredentials": [], "keyCredentials": [],
                "appRoles": roles.iter().map(|(v, id)| json!({"id": id, "value": v, "allowedMemberTypes": ["Application"]})).collect::<Vec<_>>()})
        };
        let mut sps = vec![
            ms_sp(&graph_sp, GRAPH_APP_ID, "Microsoft Graph", &graph_roles),
            ms_sp(
                &exo_sp,
                EXCHANGE_APP_ID,
                "Office 365 Exchange Online",
                &exo_roles,
            ),
            ms_sp(
                &sp_id("teams"),
                "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
                "Microsoft Teams",
                &[],
            ),
        ];
        let expired = (now - TimeDelta::days(20))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let valid = (now + TimeDelta::days(200))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        // (key, name, publisher, verified, owned here, secret end)
        let third: [ThirdPartyApp<'_>; 10] = [
            (
                "zoom",
                "Zoom",
                "Zoom Video Communications",
                true,
                false,
                None,
            ),
            ("adobe", "Adobe Acrobat", "Adobe Inc.", true, false, None),
            ("hrsync", "Contoso HR Sync", "", false, true, Some(&valid)),
            (
                "backup",
                "Backup Pro 365",
                "Backup Pro Ltd",
                true,
                false,
                None,
            ),
            (
                "pdf",
                "PDF Converter Online",
                "pdfconvert-online",
                false,
                false,
                None,
            ),
            (
                "merge",
                "Mail Merge Helper",
                "mm-helper",
                false,
                false,
                None,
            ),
            (
                "emclient",
                "eM Client",
                "eM Client s.r.o.",
                true,
                false,
                None,
            ),
            (
                "connect",
                "Directory Sync Tool",
                "",
                false,
                true,
                Some(&expired),
            ),
            (
                "toolkit",
                "Tenant Admin Toolkit",
                "admintools-free",
                false,
                false,
                None,
            ),
            ("itdr", "ITDR ingestion", "ITDR", true, false, None),
        ];
        for (key, name, publisher, verified, owned, secret) in third {
            sps.push(json!({
                "id": sp_id(key), "appId": stable_guid(&format!("app/{key}")), "displayName": name,
                "appOwnerOrganizationId": if owned { spec.tenant_id.clone() } else { stable_guid(&format!("pub/{key}")) },
                "publisherName": if publisher.is_empty() { Value::Null } else { json!(publisher) },
                "verifiedPublisher": if verified { json!({"displayName": publisher, "verifiedPublisherId": format!("{}", h(key) % 9_000_000 + 1_000_000)}) } else { json!({}) },
                "servicePrincipalType": "Application", "accountEnabled": true,
                "createdDateTime": (now - TimeDelta::days((h(key) % 900) as i64 + 10)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "passwordCredentials": secret.map(|e| vec![json!({"keyId": stable_guid(&format!("secret/{key}")), "endDateTime": e})]).unwrap_or_default(),
                "keyCredentials": [],
            }));
        }
        let member_ids: Vec<&str> = users
            .iter()
            .filter(|u| u.user_type == "Member" && u.enabled)
            .map(|u| u.id.as_str())
            .collect();
        let mut grants = Vec::new();
        let grant = |client: &str,
                     consent: &str,
                     principal: Option<&str>,
                     scope: &str,
                     i: usize| {
            json!({"id": stable_guid(&format!("grant/{}/{client}/{i}", spec.tenant_id)), "clientId": sp_id(client),
                "consentType": consent, "principalId": principal, "resourceId": graph_sp, "scope": scope})
        };
        for (i, p) in member_ids.iter().take(12).enumerate() {
            grants.push(grant(
                "zoom",
                "Principal",
                Some(p),
                "openid profile User.Read offline_access",
                i,
            ));
        }
        grants.push(grant(
            "adobe",
            "AllPrincipals",
            None,
            "openid profile Files.Read",
            0,
        ));
        if let Some(p) = member_ids.get(4) {
            grants.push(grant(
                "pdf",
                "Principal",
                Some(p),
                "openid Mail.Read offline_access",
                0,
            ));
        }
        grants.push(grant(
            "merge",
            "AllPrincipals",
            None,
            "Mail.Send Mail.ReadWrite User.Read",
            0,
        ));
        for (i, p) in member_ids.iter().skip(5).take(3).enumerate() {
            grants.push(grant(
                "emclient",
                "Principal",
                Some(p),
                "IMAP.AccessAsUser.All SMTP.Send offline_access",
                i,
            ));
        }
        let mut assignments = Vec::new();
        let assign = |client: &str, resource: &str, role: &str, i: usize| {
            json!({"id": stable_guid(&format!("ara/{}/{client}/{i}", spec.tenant_id)), "appRoleId": role,
                "principalId": sp_id(client), "principalType": "ServicePrincipal", "principalDisplayName": client,
                "resourceId": resource, "createdDateTime": now.format("%Y-%m-%dT%H:%M:%SZ").to_string()})
        };
        assignments.push(assign("hrsync", &graph_sp, graph_roles[3].1, 0));
        assignments.push(assign("backup", &graph_sp, graph_roles[1].1, 0));
        assignments.push(assign("backup", &graph_sp, graph_roles[7].1, 1));
        assignments.push(assign("backup", &exo_sp, exo_roles[0].1, 2));
        assignments.push(assign("connect", &graph_sp, graph_roles[5].1, 0));
        assignments.push(assign("toolkit", &graph_sp, graph_roles[6].1, 0));
        assignments.push(assign("itdr", &graph_sp, graph_roles[8].1, 0));
        assignments.push(assign("itdr", &graph_sp, graph_roles[4].1, 1));

        // Roles: two Global Administrators, a guest one, an Exchange admin, readers, and a
        // service principal with Privileged Role Administrator.
        let mut roles = Vec::new();
        let members: Vec<&InvUser> = users.iter().filter(|u| u.user_type == "Member").collect();
        for (u, role) in members
            .iter()
            .take(2)
            .map(|u| (u, GLOBAL_ADMIN))
            .chain(members.get(2).map(|u| (u, ROLE_DEFS[2].0)))
        {
            roles.push((u.id.clone(), role.to_string()));
        }
        if let Some(g) = users.iter().find(|u| u.user_type == "Guest") {
            roles.push((g.id.clone(), GLOBAL_ADMIN.to_string()));
        }
        if let Some(u) = members.get(5) {
            roles.push((u.id.clone(), ROLE_DEFS[6].0.to_string()));
            roles.push((u.id.clone(), ROLE_DEFS[5].0.to_string()));
        }
        roles.push((sp_id("toolkit"), ROLE_DEFS[1].0.to_string()));

        // Conditional access.
        let break_glass = members.get(1).map(|u| u.id.clone()).unwrap_or_default();
        let pol = |key: &str,
                   name: &str,
                   state: &str,
                   controls: &[&str],
                   ex_users: Vec<String>,
                   ex_groups: Vec<String>| {
            json!({"id": stable_guid(&format!("ca/{}/{key}", spec.tenant_id)), "displayName": name, "state": state,
                "createdDateTime": (now - TimeDelta::days(200)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": ex_users, "excludeGroups": ex_groups, "excludeRoles": []},
                    "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
                "grantControls": {"operator": "OR", "builtInControls": controls}})
        };
        let policies = vec![
            pol(
                "admins",
                "Require MFA for administrators",
                "enabled",
                &["mfa"],
                vec![break_glass],
                vec![],
            ),
            pol(
                "all",
                "Require MFA for all users",
                "enabledForReportingButNotEnforced",
                &["mfa"],
                vec![],
                vec![stable_guid("group/mfa-exclusions")],
            ),
            pol(
                "legacy",
                "Block legacy authentication",
                "enabled",
                &["block"],
                vec![],
                vec![stable_guid("group/service-accounts")],
            ),
            pol(
                "device",
                "Require compliant device",
                "disabled",
                &["compliantDevice"],
                vec![],
                vec![],
            ),
        ];

        // Inbox rules: ordinary ones in most mailboxes, malicious ones in a few.
        let mut rules = HashMap::new();
        let mut folders = HashMap::new();
        let mut malicious = 0usize;
        let max_malicious = (users.len() / 400).max(3);
        for (i, u) in users.iter().enumerate() {
            if u.purpose != Some("user") {
                continue;
            }
            let short: String = u.id.chars().take(8).collect();
            let f =
                |name: &str| format!("aamk{short}{}", name.to_ascii_lowercase().replace(' ', ""));
            let fl = vec![
                (f("Newsletters"), "Newsletters".to_string()),
                (f("Receipts"), "Receipts".to_string()),
                (f("RSS Feeds"), "RSS Feeds".to_string()),
                (f("Archive"), "Archive".to_string()),
            ];
            let hv = h(&format!("rules/{}", u.id));
            let mut list = Vec::new();
            let rid = |n: usize| URL_SAFE_NO_PAD.encode(format!("{short}-{n}"));
            for n in 0..(hv % 4) as usize {
                list.push(match n {
                    0 => json!({"id": rid(n), "displayName": "Newsletters", "sequence": 1, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {"senderContains": ["news", "digest"]}, "actions": {"moveToFolder": fl[0].0, "stopProcessingRules": true}}),
                    1 => json!({"id": rid(n), "displayName": "Receipts", "sequence": 2, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {"subjectContains": ["receipt"]}, "actions": {"moveToFolder": fl[1].0}}),
                    _ => json!({"id": rid(n), "displayName": "Boss is important", "sequence": 3, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {"fromAddresses": [rcpt(&format!("ceo@{d}"))]}, "actions": {"markImportance": "high"}}),
                });
            }
            if i % 11 == 4 && malicious < max_malicious {
                let n = 10;
                list.push(match malicious % 3 {
                    0 => json!({"id": rid(n), "displayName": ".", "sequence": 0, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {"bodyOrSubjectContains": ["invoice", "payment", "wire"]},
                        "actions": {"forwardTo": [rcpt("invoices.backup@mail-drop.example")], "delete": true, "stopProcessingRules": true}}),
                    1 => json!({"id": rid(n), "displayName": "..", "sequence": 0, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {"senderContains": ["security", "microsoft", "it-support"]},
                        "actions": {"moveToFolder": fl[2].0, "markAsRead": true}}),
                    _ => json!({"id": rid(n), "displayName": "sync", "sequence": 0, "isEnabled": true, "hasError": false, "isReadOnly": false,
                        "conditions": {}, "actions": {"redirectTo": [rcpt("archive.copy@freemail.example")]}}),
                });
                malicious += 1;
            }
            if !list.is_empty() {
                rules.insert(u.id.clone(), list);
            }
            folders.insert(u.id.clone(), fl);
        }
        let name = spec.domain.split('.').next().unwrap_or("tenant");
        Inventory {
            users,
            service_principals: sps,
            grants,
            app_role_assignments: assignments,
            role_assignments: roles,
            policies,
            security_defaults: false,
            rules,
            folders,
            domains: vec![spec.domain.clone(), format!("{name}.example")],
        }
    }

    /// Flagged (malicious) rules the simulator planted: (mailbox id, rule id).
    pub fn malicious_rules(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .rules
            .iter()
            .flat_map(|(u, rs)| {
                rs.iter()
                    .filter(|r| r["sequence"] == 0)
                    .filter_map(move |r| Some((u.clone(), r["id"].as_str()?.to_string())))
            })
            .collect();
        v.sort();
        v
    }

    /// Mailboxes (users with an Exchange Online mailbox).
    pub fn mailboxes(&self) -> usize {
        self.users.iter().filter(|u| u.purpose.is_some()).count()
    }
}

/// The per-tenant inventories and the `signInActivity` rate windows.
#[derive(Debug, Default)]
pub(crate) struct InventoryState {
    models: Mutex<HashMap<usize, Arc<Mutex<Inventory>>>>,
    sia_windows: Mutex<HashMap<usize, VecDeque<DateTime<Utc>>>>,
}

impl InventoryState {
    pub(crate) fn model(
        &self,
        idx: usize,
        build: impl FnOnce() -> Inventory,
    ) -> Arc<Mutex<Inventory>> {
        lock(&self.models)
            .entry(idx)
            .or_insert_with(|| Arc::new(Mutex::new(build())))
            .clone()
    }

    /// Counts a `signInActivity` request; `Some(seconds)` when over 10 a minute.
    fn sia_throttled(&self, idx: usize, now: DateTime<Utc>) -> Option<i64> {
        let mut w = lock(&self.sia_windows);
        let q = w.entry(idx).or_default();
        while q
            .front()
            .is_some_and(|t| now - *t >= TimeDelta::seconds(60))
        {
            q.pop_front();
        }
        if q.len() >= 10 {
            let first = q.front().copied().unwrap_or(now);
            return Some((first + TimeDelta::seconds(60) - now).num_seconds().max(1));
        }
        q.push_back(now);
        None
    }
}

/// What a request needs from the rest of the simulator.
pub(crate) struct Ctx<'a> {
    pub idx: usize,
    pub host: &'a str,
    pub query: &'a str,
    pub roles: &'a [String],
    pub has_p1: bool,
    pub now: DateTime<Utc>,
}

/// Whether a Graph path (lowercase segments after the version) is an inventory route.
pub(crate) fn is_route(rest: &[&str]) -> bool {
    matches!(
        rest,
        ["users"]
            | ["users", _, "mailboxsettings"]
            | ["users", _, "mailfolders", "inbox", "messagerules"]
            | ["users", _, "mailfolders"]
            | ["users", _, "mailfolders", _]
            | ["domains"]
            | ["serviceprincipals"]
            | ["serviceprincipals", _]
            | ["serviceprincipals", _, "approleassignedto"]
            | ["oauth2permissiongrants"]
            | ["rolemanagement", "directory", "roledefinitions"]
            | ["rolemanagement", "directory", "roleassignments"]
            | ["identity", "conditionalaccess", "policies"]
            | ["policies", "identitysecuritydefaultsenforcementpolicy"]
    )
}

fn params(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn denied() -> Reply {
    error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// One page of a collection, with a `nextLink` carrying the offset.
fn page(ctx: &Ctx<'_>, path: &str, items: Vec<Value>, default_top: usize, max_top: usize) -> Reply {
    let len = items.len();
    page_of(
        ctx,
        path,
        len,
        |r| items.get(r).map(<[Value]>::to_vec).unwrap_or_default(),
        default_top,
        max_top,
    )
}

/// A page of a collection of `len` items, rendering only the items on the page.
fn page_of(
    ctx: &Ctx<'_>,
    path: &str,
    len: usize,
    render: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
    default_top: usize,
    max_top: usize,
) -> Reply {
    let p = params(ctx.query);
    let top = p
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(default_top)
        .clamp(1, max_top);
    let skip = p
        .get("$skiptoken")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    let end = (skip + top).min(len);
    let value = render(skip.min(end)..end);
    let mut body = json!({"@odata.context": format!("https://{}/v1.0/$metadata#{path}", ctx.host), "value": value});
    if end < len {
        let rest: Vec<String> = url::form_urlencoded::parse(ctx.query.as_bytes())
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{k}={}", urlencode(&v)))
            .collect();
        let token = URL_SAFE_NO_PAD.encode(format!("o:{end}"));
        let mut q = rest.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        body["@odata.nextLink"] = json!(format!(
            "https://{}/v1.0/{path}?{q}$skiptoken={token}",
            ctx.host
        ));
    }
    Reply::json(200, &body)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn user_json(u: &InvUser, sia: bool) -> Value {
    let mut v = json!({
        "id": u.id, "displayName": u.display, "userPrincipalName": u.upn, "mail": u.mail,
        "userType": u.user_type, "accountEnabled": u.enabled, "createdDateTime": u.created,
        "assignedLicenses": u.licences.iter().map(|s| json!({"skuId": s, "disabledPlans": []})).collect::<Vec<_>>(),
        "onPremisesSyncEnabled": Value::Null,
    });
    if sia && let Some(t) = &u.last_sign_in {
        v["signInActivity"] = json!({"lastSignInDateTime": t, "lastNonInteractiveSignInDateTime": t, "lastSuccessfulSignInDateTime": t});
    }
    v
}

/// Serves one inventory request.
pub(crate) fn handle(
    state: &InventoryState,
    model: &Arc<Mutex<Inventory>>,
    ctx: &Ctx<'_>,
    rest: &[&str],
    original_path: &str,
) -> Reply {
    let has = |names: &[&str]| {
        ctx.roles
            .iter()
            .any(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)))
    };
    let dir_read = has(&["Directory.Read.All", "Directory.ReadWrite.All"]);
    let inv = lock(model);
    let seg = |i: usize| -> String {
        original_path
            .trim_start_matches('/')
            .split('/')
            .nth(i + 1)
            .unwrap_or_default()
            .to_string()
    };
    match rest {
        ["users"] => {
            if !(dir_read || has(&["User.Read.All", "User.ReadWrite.All"])) {
                return denied();
            }
            let p = params(ctx.query);
            let sia = p
                .get("$select")
                .is_some_and(|s| s.to_ascii_lowercase().contains("signinactivity"));
            let mut max_top = 999;
            if sia {
                if !has(&["AuditLog.Read.All"]) {
                    return denied();
                }
                if !ctx.has_p1 {
                    return error(
                        403,
                        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                        "Neither tenant is B2C or tenant doesn't have premium license",
                    );
                }
                if let Some(secs) = state.sia_throttled(ctx.idx, ctx.now) {
                    return error(
                        429,
                        "TooManyRequests",
                        "Too many requests for signInActivity.",
                    )
                    .with_header("retry-after", secs.to_string());
                }
                max_top = 120;
            }
            let users = &inv.users;
            page_of(
                ctx,
                "users",
                users.len(),
                |r| {
                    users
                        .get(r)
                        .into_iter()
                        .flatten()
                        .map(|u| user_json(u, sia))
                        .collect()
                },
                100,
                max_top,
            )
        }
        ["users", _, "mailboxsettings"] | ["users", _, "mailfolders", ..] => {
            if !has(&["MailboxSettings.Read", "MailboxSettings.ReadWrite"]) {
                return error(
                    403,
                    "ErrorAccessDenied",
                    "Access is denied. Check credentials and try again.",
                );
            }
            let uid = seg(1);
            let Some(u) = inv.users.iter().find(|u| u.id.eq_ignore_ascii_case(&uid)) else {
                return error(404, "ResourceNotFound", "Resource could not be discovered.");
            };
            let Some(purpose) = u.purpose else {
                return error(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                );
            };
            match rest {
                ["users", _, "mailboxsettings"] => Reply::json(
                    200,
                    &json!({
                        "@odata.context": format!("https://{}/v1.0/$metadata#users('{}')/mailboxSettings", ctx.host, u.id),
                        "timeZone": "UTC", "language": {"locale": "en-US"}, "userPurpose": purpose,
                        "automaticRepliesSetting": {"status": "disabled"},
                    }),
                ),
                ["users", _, "mailfolders", "inbox", "messagerules"] => {
                    let items = inv.rules.get(&u.id).cloned().unwrap_or_default();
                    page(
                        ctx,
                        &format!("users('{}')/mailFolders('inbox')/messageRules", u.id),
                        items,
                        100,
                        100,
                    )
                }
                ["users", _, "mailfolders"] => {
                    // Top-level folders: the well-known ones and the mailbox's own top-level
                    // folders (Newsletters and Receipts live under the Inbox).
                    let short: String = u.id.chars().take(8).collect();
                    let mut items: Vec<Value> = ["Inbox", "Sent Items", "Deleted Items", "Junk Email", "Drafts"]
                        .iter()
                        .map(|n| json!({"id": format!("wk{short}{}", n.to_ascii_lowercase().replace(' ', "")), "displayName": n}))
                        .collect();
                    for (id, name) in inv.folders.get(&u.id).into_iter().flatten() {
                        if name == "RSS Feeds" || name == "Archive" {
                            items.push(json!({"id": id, "displayName": name}));
                        }
                    }
                    page(
                        ctx,
                        &format!("users('{}')/mailFolders", u.id),
                        items,
                        10,
                        999,
                    )
                }
                _ => {
                    let fid = seg(3);
                    match inv
                        .folders
                        .get(&u.id)
                        .and_then(|f| f.iter().find(|(id, _)| id.eq_ignore_ascii_case(&fid)))
                    {
                        Some((id, name)) => {
                            Reply::json(200, &json!({"id": id, "displayName": name}))
                        }
                        None => error(
                            404,
                            "ErrorItemNotFound",
                            "The specified object was not found in the store.",
                        ),
                    }
                }
            }
        }
        ["domains"] => {
            if !(dir_read || has(&["Domain.Read.All"])) {
                return denied();
            }
            let items = inv
                .domains
                .iter()
                .map(|d| json!({"id": d, "isVerified": true}))
                .collect();
            page(ctx, "domains", items, 100, 999)
        }
        ["serviceprincipals", ..] | ["oauth2permissiongrants"] => {
            if !(dir_read || has(&["Application.Read.All"])) {
                return denied();
            }
            match rest {
                ["serviceprincipals"] => {
                    let items = inv
                        .service_principals
                        .iter()
                        .map(|sp| {
                            let mut sp = sp.clone();
                            if let Some(o) = sp.as_object_mut() {
                                o.remove("appRoles");
                            }
                            sp
                        })
                        .collect();
                    page(ctx, "servicePrincipals", items, 100, 999)
                }
                ["oauth2permissiongrants"] => {
                    page(ctx, "oauth2PermissionGrants", inv.grants.clone(), 100, 999)
                }
                _ => {
                    let id = seg(1);
                    let Some(sp) = inv.service_principals.iter().find(|sp| {
                        sp["id"]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(&id))
                    }) else {
                        return error(404, "Request_ResourceNotFound", "Resource does not exist.");
                    };
                    if rest.len() == 2 {
                        return Reply::json(200, sp);
                    }
                    let items = inv
                        .app_role_assignments
                        .iter()
                        .filter(|a| {
                            a["resourceId"]
                                .as_str()
                                .is_some_and(|r| r.eq_ignore_ascii_case(&id))
                        })
                        .cloned()
                        .collect();
                    page(ctx, "appRoleAssignments", items, 100, 999)
                }
            }
        }
        ["rolemanagement", "directory", which] => {
            if !(dir_read || has(&["RoleManagement.Read.Directory", "RoleManagement.Read.All"])) {
                return denied();
            }
            if *which == "roledefinitions" {
                let items = ROLE_DEFS
                    .iter()
                    .map(|(id, name)| json!({"id": id, "templateId": id, "displayName": name, "isBuiltIn": true}))
                    .collect();
                return page(
                    ctx,
                    "roleManagement/directory/roleDefinitions",
                    items,
                    100,
                    999,
                );
            }
            let items = inv
                .role_assignments
                .iter()
                .enumerate()
                .map(|(i, (pid, role))| {
                    let principal = if let Some(u) = inv.users.iter().find(|u| &u.id == pid) {
                        json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.display,
                            "userPrincipalName": u.upn, "userType": u.user_type, "accountEnabled": u.enabled})
                    } else if let Some(sp) = inv.service_principals.iter().find(|s| s["id"] == json!(pid)) {
                        json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": pid, "displayName": sp["displayName"], "accountEnabled": true})
                    } else {
                        json!({"@odata.type": "#microsoft.graph.directoryObject", "id": pid})
                    };
                    json!({"id": stable_guid(&format!("ra/{pid}/{role}/{i}")), "principalId": pid, "roleDefinitionId": role,
                        "directoryScopeId": "/", "principal": principal})
                })
                .collect();
            page(
                ctx,
                "roleManagement/directory/roleAssignments",
                items,
                100,
                999,
            )
        }
        ["identity", "conditionalaccess", "policies"] | ["policies", _] => {
            if !has(&["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]) {
                return denied();
            }
            if rest.len() == 2 {
                return Reply::json(
                    200,
                    &json!({
                        "id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults",
                        "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.",
                        "isEnabled": inv.security_defaults || !ctx.has_p1,
                    }),
                );
            }
            if !ctx.has_p1 {
                return error(
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license",
                );
            }
            page(
                ctx,
                "identity/conditionalAccess/policies",
                inv.policies.clone(),
                100,
                999,
            )
        }
        _ => error(400, "BadRequest", "Resource not found for the segment."),
    }
}
