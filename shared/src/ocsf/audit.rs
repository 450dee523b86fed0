//! Graph `directoryAudit` → OCSF 3001, 3004, 3005, 3006, or 6003 API Activity as the fallback.

use serde_json::{Map, Value, json};

use super::common::{
    Envelope, Src, UserOut, clean_ip, finish, is_redacted_ip, observable, parse_time_ms, prune,
};
use super::enums::{Class, OTHER, observable as obs};
use super::{NormalizeError, NormalizeOptions};
use crate::Stream;

/// How the targets of a routed record are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Account,
    GroupLifecycle,
    GroupMember,
    GroupOwner,
    RoleMember,
    AppGrant,
    Policy,
    Device,
    Directory,
    RoleDefinition,
    Api,
}

/// Where a directory audit lands: class and activity. `activity_id` 99 carries its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The OCSF class.
    pub class: Class,
    /// The class's `activity_id`. For Group Management member changes, 3/4 become 7/8 when
    /// the member turns out to be a group.
    pub activity_id: u32,
    /// `activity_name` for 99 (Other).
    pub activity_other: Option<String>,
    shape: Shape,
}

impl Route {
    fn new(class: Class, activity_id: u32, shape: Shape) -> Self {
        Route {
            class,
            activity_id,
            activity_other: None,
            shape,
        }
    }
    fn other(class: Class, label: &str, shape: Shape) -> Self {
        Route {
            class,
            activity_id: OTHER,
            activity_other: Some(label.to_string()),
            shape,
        }
    }
}

/// Activity from the leading verb of `activityDisplayName` (Entity Management numbering).
fn verb_activity(activity: &str) -> Option<u32> {
    let first = activity.split_whitespace().next()?.to_ascii_lowercase();
    match first.as_str() {
        "add" | "create" | "register" => Some(1),
        "update" | "set" | "change" | "verify" => Some(3),
        "delete" | "remove" | "hard" => Some(4),
        _ => None,
    }
}

/// 6003 activity from `operationType` (then the verb): Add 1, Update 3, Delete 4, Assign or
/// Unassign 3, anything else 99.
fn api_activity(activity: &str, operation_type: Option<&str>) -> u32 {
    match operation_type.map(str::to_ascii_lowercase).as_deref() {
        Some("add" | "create") => 1,
        Some("update" | "assign" | "unassign") => 3,
        Some("delete" | "remove") => 4,
        Some(_) => OTHER,
        None => verb_activity(activity).unwrap_or(OTHER),
    }
}

fn api_route(activity: &str, operation_type: Option<&str>) -> Route {
    let id = api_activity(activity, operation_type);
    let label = if activity.is_empty() {
        operation_type.unwrap_or("Other")
    } else {
        activity
    };
    if id == OTHER {
        Route::other(Class::ApiActivity, label, Shape::Api)
    } else {
        Route::new(Class::ApiActivity, id, Shape::Api)
    }
}

fn entity_route(activity: &str, operation_type: Option<&str>, shape: Shape) -> Route {
    let lower = activity.to_ascii_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    let id = match first {
        "enable" => Some(8),
        "disable" => Some(9),
        _ => verb_activity(activity),
    }
    .or_else(
        || match operation_type.map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Some(1),
            Some("update" | "assign" | "unassign") => Some(3),
            Some("delete") => Some(4),
            _ => None,
        },
    );
    match id {
        Some(id) => Route::new(Class::EntityManagement, id, shape),
        None => Route::other(Class::EntityManagement, activity, shape),
    }
}

/// Routes a directory audit by `category` and `activityDisplayName` (the table is in
/// `DESIGN.md`). Case-insensitive; unknown combinations go to 6003 API Activity.
pub fn route_directory_audit(
    category: &str,
    activity: &str,
    operation_type: Option<&str>,
) -> Route {
    use Class::*;
    let a = activity.trim().to_ascii_lowercase();
    let a = a.as_str();
    let c = category.trim().to_ascii_lowercase().replace([' ', '_'], "");
    match c.as_str() {
        "usermanagement" => match a {
            "add user" => Route::new(AccountChange, 1, Shape::Account),
            "delete user" | "hard delete user" => Route::new(AccountChange, 6, Shape::Account),
            "restore user" => Route::other(AccountChange, "Restore", Shape::Account),
            "disable account" => Route::new(AccountChange, 5, Shape::Account),
            "enable account" => Route::new(AccountChange, 2, Shape::Account),
            _ if a.contains("password") && a.contains("change") => {
                Route::new(AccountChange, 3, Shape::Account)
            }
            _ if a.contains("password") && a.contains("reset") => {
                Route::new(AccountChange, 4, Shape::Account)
            }
            _ if a.contains("security info") && a.contains("registered") => {
                Route::new(AccountChange, 10, Shape::Account)
            }
            _ if a.contains("security info") && a.contains("deleted") => {
                Route::new(AccountChange, 11, Shape::Account)
            }
            _ if a.contains("unlock") => Route::new(AccountChange, 12, Shape::Account),
            _ if a.contains("lockout") || a.contains("locked") => {
                Route::new(AccountChange, 9, Shape::Account)
            }
            _ => Route::other(AccountChange, activity.trim(), Shape::Account),
        },
        "groupmanagement" => match a {
            "add group" => Route::new(GroupManagement, 6, Shape::GroupLifecycle),
            "delete group" | "hard delete group" => {
                Route::new(GroupManagement, 5, Shape::GroupLifecycle)
            }
            "add member to group" => Route::new(GroupManagement, 3, Shape::GroupMember),
            "remove member from group" => Route::new(GroupManagement, 4, Shape::GroupMember),
            "add owner to group" => Route::new(GroupManagement, 1, Shape::GroupOwner),
            "remove owner from group" => Route::new(GroupManagement, 2, Shape::GroupOwner),
            _ => Route::other(GroupManagement, activity.trim(), Shape::GroupLifecycle),
        },
        "rolemanagement" => {
            if a.contains("request") {
                // PIM requests are not grants yet.
                api_route(activity.trim(), operation_type)
            } else if a.starts_with("add") && a.contains("member to role") {
                Route::new(UserAccess, 1, Shape::RoleMember)
            } else if a.starts_with("remove") && a.contains("member from role") {
                Route::new(UserAccess, 2, Shape::RoleMember)
            } else if a.contains("role definition") {
                entity_route(activity.trim(), operation_type, Shape::RoleDefinition)
            } else {
                api_route(activity.trim(), operation_type)
            }
        }
        "applicationmanagement" => {
            if a == "consent to application"
                || a == "add delegated permission grant"
                || a.starts_with("add app role assignment")
            {
                Route::new(UserAccess, 1, Shape::AppGrant)
            } else if a == "revoke consent"
                || a == "remove delegated permission grant"
                || a.starts_with("remove app role assignment")
            {
                Route::new(UserAccess, 2, Shape::AppGrant)
            } else {
                api_route(activity.trim(), operation_type)
            }
        }
        "policy" => entity_route(activity.trim(), operation_type, Shape::Policy),
        "device" => match a {
            "register device" => Route::new(EntityManagement, 6, Shape::Device),
            "unregister device" => Route::new(EntityManagement, 7, Shape::Device),
            _ if a.contains("registered owner") || a.contains("registered user") => {
                Route::new(EntityManagement, 3, Shape::Device)
            }
            _ => entity_route(activity.trim(), operation_type, Shape::Device),
        },
        "directorymanagement" => entity_route(activity.trim(), operation_type, Shape::Directory),
        _ => api_route(activity.trim(), operation_type),
    }
}

/// One `targetResources[]` entry.
struct Target<'a> {
    id: Option<&'a str>,
    display: Option<&'a str>,
    upn: Option<&'a str>,
    kind: String,
    raw_kind: Option<&'a str>,
    group_type: Option<&'a str>,
    modified: Vec<(&'a str, Option<&'a str>, Option<&'a str>)>,
}

fn text<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn targets<'a>(src: &Src<'a>) -> Vec<Target<'a>> {
    src.raw("targetResources")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .map(|t| Target {
                    id: text(t, "id"),
                    display: text(t, "displayName"),
                    upn: text(t, "userPrincipalName"),
                    kind: text(t, "type").unwrap_or("").to_ascii_lowercase(),
                    raw_kind: text(t, "type"),
                    group_type: text(t, "groupType"),
                    modified: t
                        .get("modifiedProperties")
                        .and_then(Value::as_array)
                        .map(|m| {
                            m.iter()
                                .filter_map(Value::as_object)
                                .filter_map(|p| {
                                    Some((
                                        text(p, "displayName")?,
                                        text(p, "newValue"),
                                        text(p, "oldValue"),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Graph encodes modified values as JSON text (`"\"Finance\""`, `"[\"x\"]"`); unwrap one string.
fn unquote(v: &str) -> String {
    match serde_json::from_str::<Value>(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(a)) if a.len() == 1 => {
            a[0].as_str().map_or_else(|| v.to_string(), str::to_string)
        }
        _ => v.trim().to_string(),
    }
}

/// The first non-empty value of a modified property on any target (new value first).
fn modified(targets: &[Target<'_>], name: &str) -> Option<String> {
    targets
        .iter()
        .flat_map(|t| t.modified.iter())
        .filter(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .find_map(|(_, new, old)| new.or(*old).map(unquote).filter(|s| !s.trim().is_empty()))
}

fn target_user<'a>(t: &Target<'a>) -> Option<UserOut<'a>> {
    let u = match t.kind.as_str() {
        "user" => UserOut {
            uid: t.id,
            name: t.upn,
            full_name: t.display,
            type_id: 1,
            entra_account: true,
        },
        "serviceprincipal" => UserOut {
            uid: t.id,
            name: t.display,
            full_name: None,
            type_id: 4,
            entra_account: false,
        },
        _ => return None,
    };
    (!u.is_empty() || u.full_name.is_some()).then_some(u)
}

fn group_json(uid: Option<&str>, name: Option<&str>, kind: Option<&str>) -> Option<Value> {
    (uid.is_some() || name.is_some()).then(|| json!({ "uid": uid, "name": name, "type": kind }))
}

fn resource_json(t: &Target<'_>) -> Option<Value> {
    (t.id.is_some() || t.display.is_some() || t.upn.is_some())
        .then(|| json!({ "uid": t.id, "name": t.display.or(t.upn), "type": t.raw_kind }))
}

/// `privileges[]` for application consent and app-role grants.
fn app_privileges(targets: &[Target<'_>]) -> Vec<String> {
    if let Some(scope) = modified(targets, "DelegatedPermissionGrant.Scope") {
        return scope.split_whitespace().map(str::to_string).collect();
    }
    if let Some(role) = modified(targets, "AppRole.Value") {
        return vec![role];
    }
    if let Some(perms) = modified(targets, "ConsentAction.Permissions") {
        // "[] => [[Id: …, ConsentType: AllPrincipals, Scope:  User.Read Mail.Read, CreatedDateTime: …]]"
        let after = perms
            .rsplit_once("=>")
            .map_or(perms.as_str(), |(_, new)| new);
        return after
            .split("Scope:")
            .skip(1)
            .flat_map(|rest| {
                rest.split([',', ']'])
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
            })
            .map(str::to_string)
            .collect();
    }
    Vec::new()
}

/// The class-specific part of a routed record, or `None` when the record lacks what the class
/// requires (the caller then falls back to 6003).
struct Mapped {
    fields: Map<String, Value>,
    activity_id: u32,
}

fn map_targets(
    route: &Route,
    src: &Src<'_>,
    targets: &[Target<'_>],
    initiator: Option<&UserOut<'_>>,
    opts: &NormalizeOptions,
) -> Option<Mapped> {
    let mut f = Map::new();
    let mut activity_id = route.activity_id;
    match route.shape {
        Shape::Account => {
            // No user target: a self-service change of the initiator's own account.
            let user = targets
                .iter()
                .filter(|t| t.kind == "user")
                .find_map(target_user)
                .map(|u| u.to_json())
                .or_else(|| initiator.map(UserOut::to_json))?;
            f.insert("user".into(), user);
        }
        Shape::GroupLifecycle => {
            let g = targets.iter().find(|t| t.kind == "group")?;
            f.insert("group".into(), group_json(g.id, g.display, g.group_type)?);
        }
        Shape::GroupMember | Shape::GroupOwner => {
            // The parent group: from the Group.* modified properties when present (real records
            // put them on the member target), else the first Group target.
            let parent_id = modified(targets, "Group.ObjectID");
            let parent_name = modified(targets, "Group.DisplayName");
            let parent = match parent_id.as_deref() {
                Some(pid) => targets.iter().find(|t| t.id == Some(pid)),
                None => targets.iter().find(|t| t.kind == "group"),
            };
            let group_uid = parent_id.as_deref().or(parent.and_then(|p| p.id));
            let group_name = parent.and_then(|p| p.display).or(parent_name.as_deref());
            let group = group_json(group_uid, group_name, parent.and_then(|p| p.group_type))?;
            f.insert("group".into(), group);
            let member = targets.iter().find(|t| t.id.is_none() || t.id != group_uid);
            if let Some(m) = member {
                if m.kind == "group" && route.shape == Shape::GroupMember {
                    activity_id = if route.activity_id == 3 { 7 } else { 8 };
                    if let Some(sub) = group_json(m.id, m.display, m.group_type) {
                        f.insert("subgroup".into(), sub);
                    }
                } else if let Some(u) = target_user(m) {
                    f.insert("user".into(), u.to_json());
                } else if let Some(r) = resource_json(m) {
                    f.insert("resource".into(), r);
                }
            }
            if route.shape == Shape::GroupOwner {
                f.insert("privileges".into(), json!(["Owner"]));
            }
        }
        Shape::RoleMember => {
            let role_target = targets.iter().find(|t| t.kind == "role");
            let role_name = role_target
                .and_then(|r| r.display.map(str::to_string))
                .or_else(|| modified(targets, "Role.DisplayName"));
            let role_uid = modified(targets, "Role.TemplateObjectId")
                .or_else(|| role_target.and_then(|r| r.id.map(str::to_string)))
                .or_else(|| modified(targets, "Role.ObjectID"));
            let privilege = role_name.clone().or_else(|| role_uid.clone())?;
            let user = targets.iter().find_map(target_user)?;
            f.insert("user".into(), user.to_json());
            f.insert("privileges".into(), json!([privilege]));
            f.insert(
                "resources".into(),
                json!([{ "uid": role_uid, "name": role_name, "type": "Role" }]),
            );
        }
        Shape::AppGrant => {
            let mut privileges = app_privileges(targets);
            if privileges.is_empty() {
                // The class requires privileges; name the grant itself rather than drop the class.
                privileges.push(
                    src.peek_str("activityDisplayName")
                        .unwrap_or("Unknown")
                        .to_string(),
                );
            }
            let sp_id = modified(targets, "ServicePrincipal.ObjectID");
            let sp_name = modified(targets, "ServicePrincipal.DisplayName");
            let grantee = if sp_id.is_some() || sp_name.is_some() {
                Some(json!({ "uid": sp_id, "name": sp_name, "type_id": 4, "type": "Service" }))
            } else {
                targets
                    .iter()
                    .filter(|t| t.kind == "user")
                    .chain(targets.iter().filter(|t| t.kind == "serviceprincipal"))
                    .find_map(target_user)
                    .map(|u| u.to_json())
            }?;
            let grantee_uid = grantee
                .get("uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            let resources: Vec<Value> = targets
                .iter()
                .filter(|t| t.kind == "serviceprincipal" || t.kind == "application")
                .filter(|t| t.id.map(str::to_string) != grantee_uid)
                .filter_map(resource_json)
                .collect();
            f.insert("user".into(), grantee);
            f.insert("privileges".into(), json!(privileges));
            f.insert("resources".into(), Value::Array(resources));
        }
        Shape::Policy => {
            let t = targets
                .iter()
                .find(|t| t.kind == "policy")
                .or_else(|| targets.first())?;
            let is_ca = src
                .peek_str("activityDisplayName")
                .is_some_and(|a| a.to_ascii_lowercase().contains("conditional access"));
            let kind = if is_ca {
                Some("Conditional Access")
            } else {
                None
            };
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.insert(
                "entity".into(),
                json!({
                    "type_id": 5, "type": "Policy", "uid": t.id, "name": t.display,
                    "policy": { "uid": t.id, "name": t.display, "type": kind },
                }),
            );
        }
        Shape::Device => {
            let t = targets.iter().find(|t| t.kind == "device")?;
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.insert(
                "entity".into(),
                json!({
                    "type_id": 1, "type": "Device", "uid": t.id, "name": t.display,
                    "device": { "type_id": 0, "type": "Unknown", "uid": t.id, "name": t.display },
                }),
            );
        }
        Shape::Directory => {
            let is_domain = src
                .peek_str("activityDisplayName")
                .is_some_and(|a| a.to_ascii_lowercase().contains("domain"));
            let t = targets
                .iter()
                .find(|t| t.display.is_some() || t.id.is_some());
            let entity = match (is_domain, t) {
                (true, Some(t)) => {
                    json!({ "type_id": OTHER, "type": "Domain", "uid": t.id, "name": t.display })
                }
                _ => {
                    let tenant = opts.tenant_id.trim();
                    let uid = if tenant.is_empty() {
                        t.and_then(|t| t.id)
                    } else {
                        Some(tenant)
                    };
                    let name = t.and_then(|t| t.display);
                    (uid.is_some() || name.is_some()).then_some(())?;
                    json!({ "type_id": 4, "type": "Organization", "uid": uid, "name": name, "org": { "uid": uid, "name": name } })
                }
            };
            f.insert("entity".into(), entity);
        }
        Shape::RoleDefinition => {
            let t = targets
                .iter()
                .find(|t| t.kind == "role")
                .or_else(|| targets.first())?;
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.insert("entity".into(), json!({ "type_id": OTHER, "type": "Role definition", "uid": t.id, "name": t.display }));
        }
        Shape::Api => {
            let resources: Vec<Value> = targets.iter().filter_map(resource_json).collect();
            f.insert("resources".into(), Value::Array(resources));
        }
    }
    Some(Mapped {
        fields: f,
        activity_id,
    })
}

/// `additionalDetails[] {key, value}` → an object (repeated keys collect into an array).
fn additional_details(src: &Src<'_>) -> Option<(Map<String, Value>, Option<String>)> {
    let items = src.raw("additionalDetails")?.as_array()?;
    let mut out = Map::new();
    let mut user_agent = None;
    for kv in items.iter().filter_map(Value::as_object) {
        let (Some(k), Some(v)) = (text(kv, "key"), kv.get("value").filter(|v| !v.is_null())) else {
            continue;
        };
        if k.eq_ignore_ascii_case("User-Agent") {
            user_agent = v.as_str().map(str::to_string);
        }
        match out.get_mut(k) {
            Some(Value::Array(existing)) => existing.push(v.clone()),
            Some(existing) => *existing = json!([existing.clone(), v.clone()]),
            None => {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    Some((out, user_agent))
}

/// Maps one Graph `directoryAudit` record to OCSF (3001, 3004, 3005, 3006 or 6003).
pub fn normalize_directory_audit(
    record: &Value,
    opts: &NormalizeOptions,
) -> Result<Value, NormalizeError> {
    let src = Src::new(record)?;
    let id = src.str("id").ok_or(NormalizeError::MissingField("id"))?;
    let original_time = src
        .str("activityDateTime")
        .ok_or(NormalizeError::MissingField("activityDateTime"))?;
    let time_ms =
        parse_time_ms(original_time)
            .filter(|t| *t >= 0)
            .ok_or(NormalizeError::BadTimestamp {
                field: "activityDateTime",
            })?;

    let activity = src.str("activityDisplayName").unwrap_or("");
    let category = src.peek_str("category").unwrap_or("");
    let operation_type = src.peek_str("operationType");
    let service = src.str("loggedByService");
    let correlation = src.str("correlationId");

    // Outcome.
    let result = src.str("result");
    let (status_id, status_other) = match result.map(str::to_ascii_lowercase).as_deref() {
        Some("success") => (1, None),
        Some("failure" | "timeout") => (2, None),
        None => (0, None),
        Some(_) => (OTHER, result.map(str::to_string)),
    };
    let status_detail = src.str("resultReason").map(str::to_string);

    // Initiator.
    let initiator = UserOut {
        uid: src.str("initiatedBy.user.id"),
        name: src.str("initiatedBy.user.userPrincipalName"),
        full_name: src.str("initiatedBy.user.displayName"),
        type_id: 1,
        entra_account: true,
    };
    let initiator = (!initiator.is_empty()).then_some(initiator);
    let app_id = src.str("initiatedBy.app.appId");
    let app_name = src.str("initiatedBy.app.displayName");
    let sp_id = src.str("initiatedBy.app.servicePrincipalId");
    let sp_name = src.str("initiatedBy.app.servicePrincipalName");
    let actor_user = match &initiator {
        Some(u) => Some(u.to_json()),
        None if sp_id.is_some() || app_name.is_some() || sp_name.is_some() => Some(
            UserOut {
                uid: sp_id,
                name: app_name.or(sp_name),
                full_name: None,
                type_id: 4,
                entra_account: false,
            }
            .to_json(),
        ),
        None => None,
    };
    let actor = if actor_user.is_none() && app_id.is_none() {
        // Nobody named: the service that logged it acted.
        json!({ "app_name": service.unwrap_or("Microsoft Entra ID") })
    } else {
        json!({ "user": actor_user, "app_uid": app_id, "app_name": app_name.or(sp_name) })
    };

    // Source endpoint.
    let raw_ip = src.peek_str("initiatedBy.user.ipAddress");
    let ip = raw_ip.and_then(clean_ip);
    let redacted = raw_ip.filter(|r| ip.is_none() && is_redacted_ip(r));
    if ip.is_some() || redacted.is_some() {
        src.mark("initiatedBy.user.ipAddress");
    }
    let src_endpoint = if ip.is_some() || redacted.is_some() {
        Some(
            json!({ "ip": ip.as_ref().map(|(ip, _)| ip), "port": ip.as_ref().and_then(|(_, p)| *p), "name": redacted }),
        )
    } else if initiator.is_none() && (sp_id.is_some() || app_name.is_some()) {
        Some(json!({ "name": app_name.or(sp_name), "uid": sp_id }))
    } else {
        None
    };

    let details = additional_details(&src);
    let user_agent = details.as_ref().and_then(|(_, ua)| ua.clone());

    let targets = targets(&src);
    let mut route = route_directory_audit(category, activity, operation_type);
    let mut mapped = map_targets(&route, &src, &targets, initiator.as_ref(), opts);
    if mapped.is_none() {
        route = api_route(activity, operation_type);
        mapped = map_targets(&route, &src, &targets, initiator.as_ref(), opts);
    }
    let Mapped {
        fields: mut ev,
        activity_id,
    } = mapped.unwrap_or(Mapped {
        fields: Map::new(),
        activity_id: route.activity_id,
    });

    ev.insert("actor".into(), actor);
    match src_endpoint {
        Some(s) => {
            ev.insert("src_endpoint".into(), s);
        }
        None if route.class == Class::ApiActivity => {
            // 6003 requires a source endpoint; the logging service is the only one known.
            ev.insert(
                "src_endpoint".into(),
                json!({ "svc_name": service.unwrap_or("Microsoft Entra ID") }),
            );
        }
        None => {}
    }
    let operation = [Some(activity), operation_type, Some(category)]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or("Unknown");
    ev.insert(
        "api".into(),
        json!({
            "operation": operation,
            "service": { "name": service },
            "request": { "uid": correlation.unwrap_or(id) },
        }),
    );
    if let Some(ua) = &user_agent {
        ev.insert("http_request".into(), json!({ "user_agent": ua }));
    }

    let pick = |ev: &Map<String, Value>, obj: &str, field: &str| {
        ev.get(obj)
            .and_then(|o| o.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let actor_name = ev
        .get("actor")
        .and_then(|a| a.get("user"))
        .and_then(|u| u.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let observables: Vec<Value> = [
        observable(
            obs::IP,
            "src_endpoint.ip",
            ip.as_ref().map(|(ip, _)| ip.as_str()),
        ),
        observable(obs::USER_NAME, "actor.user.name", actor_name.as_deref()),
        observable(
            obs::USER_NAME,
            "user.name",
            pick(&ev, "user", "name").as_deref(),
        ),
        observable(
            obs::EMAIL,
            "user.email_addr",
            pick(&ev, "user", "email_addr").as_deref(),
        ),
        observable(
            obs::GROUP_NAME,
            "group.name",
            pick(&ev, "group", "name").as_deref(),
        ),
        observable(
            obs::USER_AGENT,
            "http_request.user_agent",
            user_agent.as_deref(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    ev.insert("observables".into(), Value::Array(observables));

    let envelope = Envelope {
        class: route.class,
        activity_id,
        activity_other: route.activity_other.clone(),
        severity_id: 1,
        status_id,
        status_other,
        status_code: result.map(str::to_string),
        status_detail,
        message: (!activity.is_empty()).then(|| activity.to_string()),
        time_ms,
        original_time,
        source_id: id,
        correlation_uid: correlation,
        event_code: (!activity.is_empty()).then(|| activity.to_string()),
        stream: Stream::DirectoryAudits,
        host: false,
        security_control: false,
    };
    let mut out = finish(ev, envelope, &src, record, opts);
    // additionalDetails as a key → value object is friendlier to query than the key/value list.
    if let (Some((map, _)), Some(o)) = (details, out.as_object_mut()) {
        let mut map = Value::Object(map);
        if prune(&mut map) {
            let un = o
                .entry("unmapped")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(un) = un.as_object_mut() {
                un.insert("additionalDetails".into(), map);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(c: &str, a: &str, op: Option<&str>) -> (u32, u32) {
        let route = route_directory_audit(c, a, op);
        (route.class.uid(), route.activity_id)
    }

    #[test]
    fn routing_table() {
        type Case<'a> = (&'a str, &'a str, Option<&'a str>, (u32, u32));
        let cases: &[Case<'_>] = &[
            ("UserManagement", "Add user", Some("Add"), (3001, 1)),
            ("UserManagement", "Delete user", Some("Delete"), (3001, 6)),
            (
                "UserManagement",
                "Hard delete user",
                Some("Delete"),
                (3001, 6),
            ),
            ("UserManagement", "Restore user", Some("Update"), (3001, 99)),
            ("UserManagement", "Update user", Some("Update"), (3001, 99)),
            (
                "UserManagement",
                "Disable account",
                Some("Update"),
                (3001, 5),
            ),
            (
                "UserManagement",
                "Enable account",
                Some("Update"),
                (3001, 2),
            ),
            (
                "UserManagement",
                "Change user password",
                Some("Update"),
                (3001, 3),
            ),
            (
                "UserManagement",
                "Change password (self-service)",
                Some("Update"),
                (3001, 3),
            ),
            (
                "UserManagement",
                "Reset user password",
                Some("Update"),
                (3001, 4),
            ),
            (
                "UserManagement",
                "Reset password (by admin)",
                Some("Update"),
                (3001, 4),
            ),
            (
                "UserManagement",
                "Reset password (self-service)",
                Some("Update"),
                (3001, 4),
            ),
            (
                "UserManagement",
                "User registered security info",
                Some("Add"),
                (3001, 10),
            ),
            (
                "UserManagement",
                "Admin deleted security info",
                Some("Delete"),
                (3001, 11),
            ),
            ("GroupManagement", "Add group", Some("Add"), (3006, 6)),
            ("GroupManagement", "Delete group", Some("Delete"), (3006, 5)),
            (
                "GroupManagement",
                "Add member to group",
                Some("Assign"),
                (3006, 3),
            ),
            (
                "GroupManagement",
                "Remove member from group",
                Some("Unassign"),
                (3006, 4),
            ),
            (
                "GroupManagement",
                "Add owner to group",
                Some("Assign"),
                (3006, 1),
            ),
            (
                "GroupManagement",
                "Remove owner from group",
                Some("Unassign"),
                (3006, 2),
            ),
            (
                "GroupManagement",
                "Update group",
                Some("Update"),
                (3006, 99),
            ),
            (
                "RoleManagement",
                "Add member to role",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "RoleManagement",
                "Add eligible member to role",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "RoleManagement",
                "Add member to role completed (PIM activation)",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "RoleManagement",
                "Add member to role requested (PIM activation)",
                Some("Assign"),
                (6003, 3),
            ),
            (
                "RoleManagement",
                "Remove member from role",
                Some("Unassign"),
                (3005, 2),
            ),
            (
                "RoleManagement",
                "Update role definition",
                Some("Update"),
                (3004, 3),
            ),
            (
                "ApplicationManagement",
                "Consent to application",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "ApplicationManagement",
                "Add delegated permission grant",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "ApplicationManagement",
                "Add app role assignment to service principal",
                Some("Assign"),
                (3005, 1),
            ),
            (
                "ApplicationManagement",
                "Remove app role assignment from service principal",
                Some("Unassign"),
                (3005, 2),
            ),
            (
                "ApplicationManagement",
                "Add service principal credentials",
                Some("Update"),
                (6003, 3),
            ),
            (
                "ApplicationManagement",
                "Add application",
                Some("Add"),
                (6003, 1),
            ),
            (
                "ApplicationManagement",
                "Delete application",
                Some("Delete"),
                (6003, 4),
            ),
            (
                "Policy",
                "Add conditional access policy",
                Some("Add"),
                (3004, 1),
            ),
            (
                "Policy",
                "Update conditional access policy",
                Some("Update"),
                (3004, 3),
            ),
            (
                "Policy",
                "Delete conditional access policy",
                Some("Delete"),
                (3004, 4),
            ),
            ("Device", "Add device", Some("Add"), (3004, 1)),
            ("Device", "Register device", Some("Add"), (3004, 6)),
            ("Device", "Delete device", Some("Delete"), (3004, 4)),
            ("Device", "Unregister device", Some("Delete"), (3004, 7)),
            ("Device", "Update device", Some("Update"), (3004, 3)),
            (
                "Device",
                "Add registered owner to device",
                Some("Assign"),
                (3004, 3),
            ),
            (
                "DirectoryManagement",
                "Set domain authentication",
                Some("Update"),
                (3004, 3),
            ),
            (
                "DirectoryManagement",
                "Verify domain",
                Some("Update"),
                (3004, 3),
            ),
            (
                "DirectoryManagement",
                "Remove unverified domain",
                Some("Delete"),
                (3004, 4),
            ),
            ("B2C", "Add user flow", Some("Add"), (6003, 1)),
            (
                "Invited Users",
                "Invite external user",
                Some("Add"),
                (6003, 1),
            ),
            (
                "ProvisioningManagement",
                "Process escrow",
                Some("Other"),
                (6003, 99),
            ),
            ("SomethingNew", "Frobnicate widget", None, (6003, 99)),
            ("", "", None, (6003, 99)),
        ];
        for (c, a, op, want) in cases {
            assert_eq!(r(c, a, *op), *want, "{c} / {a}");
        }
        // Case and spacing do not matter.
        assert_eq!(r("usermanagement", "  ADD USER ", None), (3001, 1));
        assert_eq!(
            route_directory_audit("UserManagement", "Restore user", None)
                .activity_other
                .as_deref(),
            Some("Restore")
        );
    }

    #[test]
    fn privileges_from_modified_properties() {
        let rec = json!({"targetResources": [{"type": "ServicePrincipal", "id": "sp", "modifiedProperties": [
            {"displayName": "ConsentAction.Permissions", "oldValue": "[]",
             "newValue": "[] => [[Id: x, ClientId: c, PrincipalId: , ResourceId: r, ConsentType: AllPrincipals, Scope:  User.Read Mail.Read, CreatedDateTime: , LastModifiedDateTime ]]; "}]}]});
        let src = Src::new(&rec).unwrap();
        assert_eq!(
            app_privileges(&targets(&src)),
            vec!["User.Read", "Mail.Read"]
        );
        let rec = json!({"targetResources": [{"type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "AppRole.Value", "newValue": "\"Mail.ReadWrite\""}]}]});
        let src = Src::new(&rec).unwrap();
        assert_eq!(app_privileges(&targets(&src)), vec!["Mail.ReadWrite"]);
        assert_eq!(unquote("\"Finance\""), "Finance");
        assert_eq!(unquote("[\"x\"]"), "x");
        assert_eq!(unquote("plain"), "plain");
    }
}
