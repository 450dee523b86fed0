//! Roles: who holds which directory role (Global Administrator and the others), users,
//! guests, groups and service principals alike; one object per principal.
//!
//! A full snapshot in one read (directory bucket): the role definitions (names and template
//! ids), then every role assignment with its principal expanded
//! (`/roleManagement/directory/roleAssignments?$expand=principal`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{HIGH, INFO, MEDIUM, get_all, graph_url, item, s};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::classify::{GLOBAL_ADMINISTRATOR, is_privileged_role};
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events, user_object};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotSource, SourceSpec};
use crate::stream::Stream;

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::Roles,
    name: "inventory.roles",
    api: Api::Graph,
    bucket: Bucket::Directory,
};

/// The roles inventory.
#[derive(Debug, Default)]
pub struct RolesSource;

impl RolesSource {
    /// The source.
    pub fn new() -> Self {
        RolesSource
    }
}

/// `user`, `guest`, `service_principal`, `group` or `other`.
fn principal_kind(p: &Value) -> &'static str {
    let t = s(p, "@odata.type").unwrap_or_default().to_ascii_lowercase();
    if t.ends_with("serviceprincipal") {
        "service_principal"
    } else if t.ends_with("group") {
        "group"
    } else if t.ends_with("user") || s(p, "userPrincipalName").is_some() {
        let guest = s(p, "userType").is_some_and(|u| u.eq_ignore_ascii_case("guest"))
            || s(p, "userPrincipalName").is_some_and(|u| u.contains("#EXT#"));
        if guest { "guest" } else { "user" }
    } else {
        "other"
    }
}

#[async_trait]
impl SnapshotSource for RolesSource {
    fn spec(&self) -> &SourceSpec {
        &SPEC
    }

    async fn read(
        &self,
        client: &ApiClient,
        tenant: &Tenant,
        _state: Option<&Value>,
        deadline: DateTime<Utc>,
    ) -> Result<SnapshotPage, SourceError> {
        let mut cost = CallCost::default();
        let (b, p) = (Bucket::Directory, Priority::Regular);
        let url = graph_url(
            tenant,
            "roleManagement/directory/roleDefinitions",
            &[("$select", "id,displayName,templateId".into())],
        )?;
        let defs: HashMap<String, (String, String)> =
            get_all(client, tenant, b, p, &url, deadline, &mut cost)
                .await?
                .iter()
                .filter_map(|d| {
                    let id = s(d, "id")?.to_ascii_lowercase();
                    let template = s(d, "templateId").unwrap_or(&id).to_ascii_lowercase();
                    Some((
                        id,
                        (
                            template,
                            s(d, "displayName").unwrap_or_default().to_string(),
                        ),
                    ))
                })
                .collect();
        let url = graph_url(
            tenant,
            "roleManagement/directory/roleAssignments",
            &[("$expand", "principal".into())],
        )?;
        let assignments = get_all(client, tenant, b, p, &url, deadline, &mut cost).await?;
        let mut holders: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
        for a in &assignments {
            let Some(pid) = s(a, "principalId") else {
                continue;
            };
            let def = s(a, "roleDefinitionId")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let (template, name) = defs
                .get(&def)
                .cloned()
                .unwrap_or_else(|| (def.clone(), String::new()));
            let entry = holders.entry(pid.to_ascii_lowercase()).or_insert_with(|| {
                (
                    a.get("principal").cloned().unwrap_or(Value::Null),
                    Vec::new(),
                )
            });
            entry.1.push(json!({
                "role": name, "template_id": template,
                "scope": s(a, "directoryScopeId").unwrap_or("/"),
                "privileged": is_privileged_role(&template),
            }));
        }
        let items = holders
            .into_iter()
            .map(|(pid, (principal, mut roles))| {
                roles.sort_by_key(|r| r.to_string());
                roles.dedup();
                let kind = principal_kind(&principal);
                let privileged = roles.iter().any(|r| r["privileged"] == true);
                let global = roles
                    .iter()
                    .any(|r| r["template_id"] == GLOBAL_ADMINISTRATOR);
                let mut tags = vec!["role_holder".to_string(), format!("principal:{kind}")];
                if privileged {
                    tags.push("admin".into());
                    if kind == "guest" {
                        tags.push("guest_admin".into());
                    }
                    if kind == "service_principal" {
                        tags.push("service_principal_admin".into());
                    }
                }
                if global {
                    tags.push("global_admin".into());
                }
                let relevant = json!({"roles": roles, "kind": kind,
                    "name": s(&principal, "userPrincipalName").or(s(&principal, "displayName"))});
                let raw = json!({
                    "id": pid, "principalType": kind,
                    "userPrincipalName": s(&principal, "userPrincipalName"),
                    "displayName": s(&principal, "displayName"),
                    "accountEnabled": principal.get("accountEnabled"),
                    "roles": roles,
                });
                item(&pid, &relevant, raw, tags)
            })
            .collect();
        Ok(SnapshotPage::whole(items, cost))
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        let kind = ObjectKind::RoleHolder;
        if change == Change::Disappeared {
            return inventory_events(
                Stream::Roles,
                kind,
                &item.id,
                item.digest,
                None,
                change,
                opts,
            );
        }
        let r = &item.raw;
        let tag = |t: &str| item.tags.iter().any(|x| x == t);
        let ptype = s(r, "principalType").unwrap_or("other");
        let upn = s(r, "userPrincipalName");
        let name = s(r, "displayName");
        let type_id = match ptype {
            "service_principal" => 4,
            _ if tag("admin") => 2,
            _ => 1,
        };
        let roles: Vec<&str> = r["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["role"].as_str().filter(|s| !s.is_empty()))
            .collect();
        let severity = if tag("guest_admin") || (tag("global_admin") && ptype != "user") {
            HIGH
        } else if tag("admin") {
            MEDIUM
        } else {
            INFO
        };
        let change_severity = if tag("global_admin") || tag("guest_admin") {
            HIGH
        } else if tag("admin") {
            MEDIUM
        } else {
            INFO
        };
        let obj = InventoryObject {
            kind,
            uid: item.id.clone(),
            name: upn.or(name).map(str::to_string),
            user: Some(user_object(
                &item.id,
                upn,
                name,
                type_id,
                r.get("accountEnabled").and_then(Value::as_bool).map(|e| !e),
            )),
            data: json!({"principal_type": ptype, "roles": r["roles"]}),
            created_time_ms: None,
            severity_id: severity,
            change_severity_id: change_severity,
            message: format!(
                "{} {} holds {}",
                ptype.replace('_', " "),
                upn.or(name).unwrap_or(&item.id),
                if roles.is_empty() {
                    "directory roles".to_string()
                } else {
                    roles.join(", ")
                }
            ),
            labels: item.tags.clone(),
        };
        inventory_events(
            Stream::Roles,
            kind,
            &item.id,
            item.digest,
            Some(&obj),
            change,
            opts,
        )
    }
}
