//! Conditional access: every policy, its state (on, off, report-only), what it requires, and
//! the users, groups and roles it excludes; plus whether security defaults are on.
//!
//! A full snapshot in one read: `/identity/conditionalAccess/policies` and
//! `/policies/identitySecurityDefaultsEnforcementPolicy`, both `Policy.Read.All`. The
//! conditional access API allows one request a second per tenant and sends no `Retry-After`,
//! so requests are spaced a second apart. Without `Policy.Read.All` the stream is unavailable
//! (a degradation); without Entra ID P1 the policies are, and security defaults are still read.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    HIGH, INFO, LOW, MEDIUM, degraded, get_all, get_object, granted_roles, graph_url, has_any,
    item, s, time_ms,
};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotRead, SnapshotSource, SourceSpec};
use crate::stream::Stream;

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::ConditionalAccess,
    name: "inventory.conditional_access",
    api: Api::Graph,
    bucket: Bucket::Directory,
};

/// Id of the security defaults object in the inventory.
pub const SECURITY_DEFAULTS_ID: &str = "securityDefaults";
/// The conditional access API's limit: one request a second per tenant.
pub const CA_SPACING: Duration = Duration::from_secs(1);

/// The conditional access inventory.
#[derive(Debug, Default)]
pub struct ConditionalAccessSource;

impl ConditionalAccessSource {
    /// The source.
    pub fn new() -> Self {
        ConditionalAccessSource
    }
}

fn strings(v: &Value, path: &[&str]) -> Vec<String> {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return Vec::new(),
        }
    }
    let mut out: Vec<String> = cur
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn policy_item(p: &Value) -> Option<SnapshotItem> {
    let id = s(p, "id")?;
    let state = s(p, "state").unwrap_or("unknown").to_string();
    let exclusions = json!({
        "users": strings(p, &["conditions", "users", "excludeUsers"]),
        "groups": strings(p, &["conditions", "users", "excludeGroups"]),
        "roles": strings(p, &["conditions", "users", "excludeRoles"]),
    });
    let controls = strings(p, &["grantControls", "builtInControls"]);
    let has_exclusions = ["users", "groups", "roles"]
        .iter()
        .any(|k| exclusions[*k].as_array().is_some_and(|a| !a.is_empty()));
    let mut tags = vec![
        "policy".to_string(),
        format!(
            "state:{}",
            match state.as_str() {
                "enabledForReportingButNotEnforced" => "report_only",
                s => s,
            }
        ),
    ];
    if has_exclusions {
        tags.push("has_exclusions".into());
    }
    if controls.iter().any(|c| c.eq_ignore_ascii_case("mfa")) {
        tags.push("requires_mfa".into());
    }
    let joined = json!({
        "id": id, "displayName": s(p, "displayName"), "state": state,
        "createdDateTime": s(p, "createdDateTime"), "modifiedDateTime": s(p, "modifiedDateTime"),
        "includeUsers": strings(p, &["conditions", "users", "includeUsers"]),
        "includeApplications": strings(p, &["conditions", "applications", "includeApplications"]),
        "clientAppTypes": strings(p, &["conditions", "clientAppTypes"]),
        "exclusions": exclusions, "grantControls": controls,
        "grantOperator": p.get("grantControls").and_then(|g| s(g, "operator")),
    });
    let mut relevant = joined.clone();
    if let Some(o) = relevant.as_object_mut() {
        o.remove("modifiedDateTime");
    }
    Some(item(id, &relevant, joined, tags))
}

async fn spaced(client: &ApiClient, first: &mut bool) {
    if !*first {
        client.clock().sleep(CA_SPACING).await;
    }
    *first = false;
}

#[async_trait]
impl SnapshotSource for ConditionalAccessSource {
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
        let roles = granted_roles(client, tenant, deadline).await?;
        if !has_any(
            &roles,
            &["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"],
        ) {
            return Ok(SnapshotPage {
                read: SnapshotRead::Unavailable,
                cost,
                degraded: vec![degraded(
                    "conditionalAccess",
                    "forbidden",
                    "conditional access policies, their exclusions, and whether security defaults are on (needs Policy.Read.All)",
                )],
            });
        }
        let mut notes = Vec::new();
        let mut first = true;
        let mut items = Vec::new();
        spaced(client, &mut first).await;
        let url = graph_url(tenant, "identity/conditionalAccess/policies", &[])?;
        match get_all(
            client,
            tenant,
            Bucket::Directory,
            Priority::Regular,
            &url,
            deadline,
            &mut cost,
        )
        .await
        {
            Ok(policies) => items.extend(policies.iter().filter_map(policy_item)),
            Err(SourceError::LicenceRequired) => notes.push(degraded(
                "conditionalAccessPolicies",
                "licence_required",
                "conditional access policies and their exclusions (needs Microsoft Entra ID P1)",
            )),
            Err(e) => return Err(e),
        }
        spaced(client, &mut first).await;
        let url = graph_url(
            tenant,
            "policies/identitySecurityDefaultsEnforcementPolicy",
            &[],
        )?;
        let sd = get_object(client, tenant, Bucket::Directory, &url, deadline, &mut cost).await?;
        let on = sd.get("isEnabled").and_then(Value::as_bool);
        let mut tags = vec!["security_defaults".to_string()];
        if on == Some(true) {
            tags.push("security_defaults_on".into());
        }
        let joined = json!({"id": SECURITY_DEFAULTS_ID, "displayName": s(&sd, "displayName").unwrap_or("Security Defaults"), "isEnabled": on});
        items.push(item(SECURITY_DEFAULTS_ID, &joined, joined.clone(), tags));
        if !notes.is_empty() {
            // Policies could not be read: keep what was known of them, report what is new.
            return Ok(SnapshotPage {
                read: SnapshotRead::Delta {
                    changed: items,
                    removed: Vec::new(),
                    state: None,
                },
                cost,
                degraded: notes,
            });
        }
        Ok(SnapshotPage::whole(items, cost))
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        let kind = if item.id == SECURITY_DEFAULTS_ID {
            ObjectKind::SecurityDefaults
        } else {
            ObjectKind::ConditionalAccessPolicy
        };
        let stream = Stream::ConditionalAccess;
        if change == Change::Disappeared {
            return inventory_events(stream, kind, &item.id, item.digest, None, change, opts);
        }
        let p = &item.raw;
        let name = s(p, "displayName").unwrap_or(&item.id).to_string();
        let tag = |t: &str| item.tags.iter().any(|x| x == t);
        let (severity, change_severity, message) = if kind == ObjectKind::SecurityDefaults {
            let on = p["isEnabled"] == true;
            (
                INFO,
                if on { LOW } else { MEDIUM },
                format!("Security defaults are {}", if on { "on" } else { "off" }),
            )
        } else {
            let exc = &p["exclusions"];
            let n = |k: &str| exc[k].as_array().map_or(0, Vec::len);
            (
                if tag("has_exclusions") && tag("requires_mfa") {
                    LOW
                } else {
                    INFO
                },
                if tag("has_exclusions") && tag("requires_mfa") {
                    HIGH
                } else {
                    MEDIUM
                },
                format!(
                    "Conditional access policy {name} ({}): excludes {} users, {} groups, {} roles",
                    s(p, "state").unwrap_or("unknown"),
                    n("users"),
                    n("groups"),
                    n("roles")
                ),
            )
        };
        let obj = InventoryObject {
            kind,
            uid: item.id.clone(),
            name: Some(name),
            user: None,
            data: p.clone(),
            created_time_ms: time_ms(p, "createdDateTime"),
            severity_id: severity,
            change_severity_id: change_severity,
            message,
            labels: item.tags.clone(),
        };
        inventory_events(
            stream,
            kind,
            &item.id,
            item.digest,
            Some(&obj),
            change,
            opts,
        )
    }
}
