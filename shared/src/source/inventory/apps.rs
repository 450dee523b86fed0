//! Apps: every service principal with access to the tenant, its delegated grants
//! (`oauth2PermissionGrants`: admin consent for everyone, or one user's consent), its
//! application permissions (`appRoleAssignedTo` of Microsoft Graph and Exchange Online), its
//! publisher and whether it is verified, and its credentials with their expiry; each app
//! classified by the highest permission class it holds.
//!
//! A full snapshot in one read (directory bucket): the service principals, every delegated
//! grant, and the app-role assignments on the two resources that matter for mail and the
//! directory, whose role ids are resolved through the resource's `appRoles`. Microsoft's own
//! apps without any grant are left out: every tenant has hundreds of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{HIGH, INFO, LOW, MEDIUM, get_all, get_object, graph_url, is_new, item, s, time_ms};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::classify::{MICROSOFT_TENANT_IDS, PermissionClass, highest_class};
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotSource, SourceSpec};
use crate::stream::Stream;

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::Apps,
    name: "inventory.apps",
    api: Api::Graph,
    bucket: Bucket::Directory,
};

const SP_SELECT: &str = "id,appId,displayName,appOwnerOrganizationId,publisherName,verifiedPublisher,servicePrincipalType,accountEnabled,passwordCredentials,keyCredentials,createdDateTime";

/// Resources whose application permissions are read: Microsoft Graph and Exchange Online.
pub const RESOURCE_APP_IDS: [&str; 2] = [
    "00000003-0000-0000-c000-000000000000",
    "00000002-0000-0ff1-ce00-000000000000",
];

/// The apps inventory.
#[derive(Debug, Default)]
pub struct AppsSource;

impl AppsSource {
    /// The source.
    pub fn new() -> Self {
        AppsSource
    }
}

fn is_first_party(sp: &Value) -> bool {
    s(sp, "appOwnerOrganizationId").is_some_and(|o| {
        MICROSOFT_TENANT_IDS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(o))
    })
}

/// Credentials with their expiry, soonest first.
fn credentials(sp: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, kind) in [
        ("passwordCredentials", "secret"),
        ("keyCredentials", "certificate"),
    ] {
        for c in sp.get(key).and_then(Value::as_array).into_iter().flatten() {
            let end = s(c, "endDateTime");
            let expired = end
                .and_then(crate::ocsf::parse_time_ms)
                .is_some_and(|ms| ms < now.timestamp_millis());
            out.push(
                json!({"type": kind, "key_id": s(c, "keyId"), "end": end, "expired": expired}),
            );
        }
    }
    out.sort_by(|a, b| a["end"].as_str().cmp(&b["end"].as_str()));
    out
}

#[async_trait]
impl SnapshotSource for AppsSource {
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
        let b = Bucket::Directory;
        let p = Priority::Regular;
        let url = graph_url(
            tenant,
            "servicePrincipals",
            &[("$select", SP_SELECT.into()), ("$top", "999".into())],
        )?;
        let sps = get_all(client, tenant, b, p, &url, deadline, &mut cost).await?;
        let url = graph_url(tenant, "oauth2PermissionGrants", &[("$top", "999".into())])?;
        let grants = get_all(client, tenant, b, p, &url, deadline, &mut cost).await?;
        // Application permissions: who holds roles on Graph and Exchange Online.
        let mut app_perms: HashMap<String, Vec<Value>> = HashMap::new();
        for resource in sps.iter().filter(|sp| {
            s(sp, "appId")
                .is_some_and(|a| RESOURCE_APP_IDS.iter().any(|r| r.eq_ignore_ascii_case(a)))
        }) {
            let Some(rid) = s(resource, "id") else {
                continue;
            };
            let url = graph_url(
                tenant,
                &format!("servicePrincipals/{rid}"),
                &[("$select", "id,displayName,appRoles".into())],
            )?;
            let full = get_object(client, tenant, b, &url, deadline, &mut cost).await?;
            let roles: HashMap<String, String> = full
                .get("appRoles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((s(r, "id")?.to_ascii_lowercase(), s(r, "value")?.to_string()))
                })
                .collect();
            let url = graph_url(
                tenant,
                &format!("servicePrincipals/{rid}/appRoleAssignedTo"),
                &[("$top", "999".into())],
            )?;
            for a in get_all(client, tenant, b, p, &url, deadline, &mut cost).await? {
                if !s(&a, "principalType")
                    .is_some_and(|t| t.eq_ignore_ascii_case("ServicePrincipal"))
                {
                    continue;
                }
                let Some(principal) = s(&a, "principalId") else {
                    continue;
                };
                let value = s(&a, "appRoleId")
                    .and_then(|id| roles.get(&id.to_ascii_lowercase()))
                    .cloned()
                    .unwrap_or_else(|| s(&a, "appRoleId").unwrap_or_default().to_string());
                app_perms
                    .entry(principal.to_ascii_lowercase())
                    .or_default()
                    .push(json!({
                        "permission": value,
                        "resource": s(resource, "displayName"),
                        "created": s(&a, "createdDateTime").or(s(&a, "creationTimestamp")),
                    }));
            }
        }
        let resource_names: HashMap<String, String> = sps
            .iter()
            .filter_map(|sp| {
                Some((
                    s(sp, "id")?.to_ascii_lowercase(),
                    s(sp, "displayName")?.to_string(),
                ))
            })
            .collect();
        let mut delegated: HashMap<String, Vec<Value>> = HashMap::new();
        for g in &grants {
            let Some(client_id) = s(g, "clientId") else {
                continue;
            };
            let scopes: BTreeSet<&str> = s(g, "scope")
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            delegated.entry(client_id.to_ascii_lowercase()).or_default().push(json!({
                "consent": if s(g, "consentType").is_some_and(|c| c.eq_ignore_ascii_case("AllPrincipals")) { "admin" } else { "user" },
                "principal_id": s(g, "principalId"),
                "resource": s(g, "resourceId").and_then(|r| resource_names.get(&r.to_ascii_lowercase())).map(String::as_str).or(s(g, "resourceId")),
                "scopes": scopes,
            }));
        }
        let now = client.clock().now();
        let mut items = Vec::new();
        for sp in &sps {
            let Some(id) = s(sp, "id") else { continue };
            let key = id.to_ascii_lowercase();
            let mut grants = delegated.remove(&key).unwrap_or_default();
            grants.sort_by_key(|g| g.to_string());
            let mut perms = app_perms.remove(&key).unwrap_or_default();
            perms.sort_by_key(|g| g.to_string());
            if is_first_party(sp) && grants.is_empty() && perms.is_empty() {
                continue;
            }
            let all: Vec<String> = grants
                .iter()
                .flat_map(|g| g["scopes"].as_array().cloned().unwrap_or_default())
                .chain(perms.iter().map(|p| p["permission"].clone()))
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let class = highest_class(all.iter().map(String::as_str));
            let verified = sp
                .get("verifiedPublisher")
                .and_then(|v| s(v, "verifiedPublisherId"))
                .is_some();
            let first_party = is_first_party(sp);
            let creds = credentials(sp, now);
            let admin_consent = grants.iter().any(|g| g["consent"] == "admin");
            let mut tags = vec![format!("class:{}", class.as_str())];
            if class.is_sensitive() {
                tags.push("sensitive".into());
            }
            if class.is_sensitive() && !verified && !first_party {
                tags.push("risky".into());
            }
            if admin_consent {
                tags.push("admin_consent".into());
            }
            if !perms.is_empty() {
                tags.push("application_permissions".into());
            }
            if creds.iter().any(|c| c["expired"] == true) {
                tags.push("expired_credential".into());
            }
            if !first_party {
                tags.push("third_party".into());
            }
            let joined = json!({
                "id": id, "appId": s(sp, "appId"), "displayName": s(sp, "displayName"),
                "publisher": s(sp, "publisherName"),
                "verifiedPublisher": sp.get("verifiedPublisher").and_then(|v| s(v, "displayName")),
                "publisherVerified": verified, "firstParty": first_party,
                "servicePrincipalType": s(sp, "servicePrincipalType"),
                "accountEnabled": sp.get("accountEnabled"),
                "createdDateTime": s(sp, "createdDateTime"),
                "delegatedGrants": grants, "applicationPermissions": perms,
                "permissionClass": class.as_str(), "credentials": creds,
            });
            let mut relevant = joined.clone();
            if let Some(c) = relevant
                .get_mut("credentials")
                .and_then(Value::as_array_mut)
            {
                // Expiry is in the digest through `end`; `expired` flips with time alone.
                for x in c.iter_mut() {
                    if let Some(o) = x.as_object_mut() {
                        o.remove("expired");
                    }
                }
            }
            items.push(item(id, &relevant, joined, tags));
        }
        Ok(SnapshotPage::whole(items, cost))
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        let kind = ObjectKind::App;
        if change == Change::Disappeared {
            return inventory_events(
                Stream::Apps,
                kind,
                &item.id,
                item.digest,
                None,
                change,
                opts,
            );
        }
        let a = &item.raw;
        let name = s(a, "displayName").unwrap_or(&item.id);
        let class = s(a, "permissionClass").unwrap_or("none");
        let risky = item.tags.iter().any(|t| t == "risky");
        let sensitive = item.tags.iter().any(|t| t == "sensitive");
        let role_mgmt = class == PermissionClass::RoleManagement.as_str();
        let severity = if risky || role_mgmt {
            HIGH
        } else if sensitive {
            MEDIUM
        } else {
            INFO
        };
        let change_severity = if risky || role_mgmt {
            HIGH
        } else if sensitive {
            MEDIUM
        } else if is_new(change) {
            LOW
        } else {
            INFO
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for g in a["delegatedGrants"].as_array().into_iter().flatten() {
            *counts
                .entry(g["consent"].as_str().unwrap_or("user"))
                .or_default() += 1;
        }
        let message = format!(
            "App {name} ({}{}): permission class {class}, {} admin and {} user consent grants, {} application permissions",
            s(a, "publisher").unwrap_or("unknown publisher"),
            if a["publisherVerified"] == true {
                ", verified"
            } else {
                ""
            },
            counts.get("admin").copied().unwrap_or(0),
            counts.get("user").copied().unwrap_or(0),
            a["applicationPermissions"].as_array().map_or(0, Vec::len),
        );
        let mut data = a.clone();
        if let Some(o) = data.as_object_mut() {
            o.remove("id");
            o.remove("displayName");
        }
        let obj = InventoryObject {
            kind,
            uid: item.id.clone(),
            name: Some(name.to_string()),
            user: None,
            data,
            created_time_ms: time_ms(a, "createdDateTime"),
            severity_id: severity,
            change_severity_id: change_severity,
            message,
            labels: item.tags.clone(),
        };
        inventory_events(
            Stream::Apps,
            kind,
            &item.id,
            item.digest,
            Some(&obj),
            change,
            opts,
        )
    }
}
