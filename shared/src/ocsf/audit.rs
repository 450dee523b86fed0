//! Graph `directoryAudit` → OCSF 3001, 3004, 3005, 3006, or 6003 API Activity as the fallback.

use std::cell::OnceCell;

use serde_json::Value;

use super::common::{
    Envelope, Src, UserOut, clean_ip, contains_ignore_case, finish, is_redacted_ip, observable,
};
use super::enums::{Class, OTHER, observable as obs};
use super::node::{Entry, Node};
use super::out::Out;
use super::{Head, NormalizeError, NormalizeOptions};
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

/// The `type` of a target resource (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    ServicePrincipal,
    Group,
    Role,
    Policy,
    Device,
    Application,
    Other,
}

impl Kind {
    fn of(kind: Option<&str>) -> Kind {
        let Some(k) = kind else { return Kind::Other };
        [
            ("user", Kind::User),
            ("serviceprincipal", Kind::ServicePrincipal),
            ("group", Kind::Group),
            ("role", Kind::Role),
            ("policy", Kind::Policy),
            ("device", Kind::Device),
            ("application", Kind::Application),
        ]
        .into_iter()
        .find(|(name, _)| k.eq_ignore_ascii_case(name))
        .map_or(Kind::Other, |(_, kind)| kind)
    }
}

/// One `targetResources[]` entry.
struct Target<'a> {
    id: Option<&'a str>,
    display: Option<&'a str>,
    upn: Option<&'a str>,
    kind: Kind,
    raw_kind: Option<&'a str>,
    group_type: Option<&'a str>,
    /// `modifiedProperties[]`.
    modified: &'a [Node<'a>],
}

fn text<'a>(o: &'a [Entry<'a>], k: &str) -> Option<&'a str> {
    o.iter()
        .find(|e| e.key == k)
        .and_then(|e| e.val.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn member<'a>(o: &'a [Entry<'a>], k: &str) -> Option<&'a Node<'a>> {
    o.iter().find(|e| e.key == k).map(|e| &e.val)
}

fn targets<'a>(src: &Src<'a>) -> Vec<Target<'a>> {
    src.raw("targetResources")
        .and_then(Node::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_object)
        .map(|t| Target {
            id: text(t, "id"),
            display: text(t, "displayName"),
            upn: text(t, "userPrincipalName"),
            kind: Kind::of(text(t, "type")),
            raw_kind: text(t, "type"),
            group_type: text(t, "groupType"),
            modified: member(t, "modifiedProperties")
                .and_then(Node::as_array)
                .unwrap_or_default(),
        })
        .collect()
}

/// Graph encodes modified values as JSON text (`"\"Finance\""`, `"[\"x\"]"`); unwrap one string.
fn unquote(v: &str) -> String {
    // Only a JSON string or array can unwrap to something other than the trimmed text.
    if !v.trim_start().starts_with(['"', '[']) {
        return v.trim().to_string();
    }
    match serde_json::from_str::<Value>(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(a)) if a.len() == 1 => {
            a[0].as_str().map_or_else(|| v.to_string(), str::to_string)
        }
        _ => v.trim().to_string(),
    }
}

/// The modified properties the mappings read.
#[derive(Debug, Clone, Copy)]
enum Prop {
    GroupObjectId,
    GroupDisplayName,
    RoleDisplayName,
    RoleTemplateObjectId,
    RoleObjectId,
    ServicePrincipalObjectId,
    ServicePrincipalDisplayName,
    DelegatedPermissionGrantScope,
    AppRoleValue,
    ConsentActionPermissions,
}

impl Prop {
    const COUNT: usize = 10;

    fn name(self) -> &'static str {
        match self {
            Prop::GroupObjectId => "Group.ObjectID",
            Prop::GroupDisplayName => "Group.DisplayName",
            Prop::RoleDisplayName => "Role.DisplayName",
            Prop::RoleTemplateObjectId => "Role.TemplateObjectId",
            Prop::RoleObjectId => "Role.ObjectID",
            Prop::ServicePrincipalObjectId => "ServicePrincipal.ObjectID",
            Prop::ServicePrincipalDisplayName => "ServicePrincipal.DisplayName",
            Prop::DelegatedPermissionGrantScope => "DelegatedPermissionGrant.Scope",
            Prop::AppRoleValue => "AppRole.Value",
            Prop::ConsentActionPermissions => "ConsentAction.Permissions",
        }
    }
}

/// The modified properties of a record's targets, each looked up and unquoted once.
struct Modified<'t, 'a> {
    targets: &'t [Target<'a>],
    cache: [OnceCell<Option<String>>; Prop::COUNT],
}

impl<'t, 'a> Modified<'t, 'a> {
    fn new(targets: &'t [Target<'a>]) -> Self {
        Modified {
            targets,
            cache: Default::default(),
        }
    }

    /// The first non-empty value of a modified property on any target (new value first).
    fn get(&self, p: Prop) -> Option<&str> {
        self.cache[p as usize]
            .get_or_init(|| modified(self.targets, p.name()))
            .as_deref()
    }
}

/// The first non-empty value of a modified property on any target (new value first).
fn modified(targets: &[Target<'_>], name: &str) -> Option<String> {
    targets
        .iter()
        .flat_map(|t| t.modified.iter())
        .filter_map(Node::as_object)
        .filter(|p| text(p, "displayName").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .find_map(|p| {
            text(p, "newValue")
                .or_else(|| text(p, "oldValue"))
                .map(unquote)
                .filter(|s| !s.trim().is_empty())
        })
}

fn target_user<'a>(t: &Target<'a>) -> Option<UserOut<'a>> {
    let u = match t.kind {
        Kind::User => UserOut::new(t.id, t.upn, t.display, 1, true),
        Kind::ServicePrincipal => UserOut::new(t.id, t.display, None, 4, false),
        _ => return None,
    };
    (!u.is_empty() || u.full_name.is_some()).then_some(u)
}

/// An OCSF `group`.
#[derive(Clone, Copy)]
struct GroupOut<'a> {
    uid: Option<&'a str>,
    name: Option<&'a str>,
    kind: Option<&'a str>,
}

impl<'a> GroupOut<'a> {
    fn new(uid: Option<&'a str>, name: Option<&'a str>, kind: Option<&'a str>) -> Option<Self> {
        (uid.is_some() || name.is_some()).then_some(GroupOut { uid, name, kind })
    }

    fn write<O: Out>(&self, o: &mut O, key: &str) {
        o.begin_obj(key);
        o.opt_str("uid", self.uid);
        o.opt_str("name", self.name);
        o.opt_str("type", self.kind);
        o.end();
    }
}

/// A `resources[]` entry (or the `resource` of a group change).
#[derive(Clone, Copy)]
struct Resource<'a> {
    uid: Option<&'a str>,
    name: Option<&'a str>,
    kind: Option<&'a str>,
}

impl Resource<'_> {
    fn write<O: Out>(&self, o: &mut O, key: &str) {
        o.begin_obj(key);
        o.opt_str("uid", self.uid);
        o.opt_str("name", self.name);
        o.opt_str("type", self.kind);
        o.end();
    }
}

fn resource<'a>(t: &Target<'a>) -> Option<Resource<'a>> {
    (t.id.is_some() || t.display.is_some() || t.upn.is_some()).then_some(Resource {
        uid: t.id,
        name: t.display.or(t.upn),
        kind: t.raw_kind,
    })
}

/// The `entity` of an Entity Management event.
enum Entity<'a> {
    Policy {
        uid: Option<&'a str>,
        name: Option<&'a str>,
        kind: Option<&'a str>,
    },
    Device {
        uid: Option<&'a str>,
        name: Option<&'a str>,
    },
    Domain {
        uid: Option<&'a str>,
        name: Option<&'a str>,
    },
    Organization {
        uid: Option<&'a str>,
        name: Option<&'a str>,
    },
    RoleDefinition {
        uid: Option<&'a str>,
        name: Option<&'a str>,
    },
}

impl Entity<'_> {
    fn write<O: Out>(&self, o: &mut O) {
        o.begin_obj("entity");
        let (type_id, caption, uid, name) = match *self {
            Entity::Policy { uid, name, .. } => (5, "Policy", uid, name),
            Entity::Device { uid, name } => (1, "Device", uid, name),
            Entity::Domain { uid, name } => (OTHER, "Domain", uid, name),
            Entity::Organization { uid, name } => (4, "Organization", uid, name),
            Entity::RoleDefinition { uid, name } => (OTHER, "Role definition", uid, name),
        };
        o.u64("type_id", u64::from(type_id));
        o.str("type", caption);
        o.opt_str("uid", uid);
        o.opt_str("name", name);
        match *self {
            Entity::Policy { uid, name, kind } => {
                o.begin_obj("policy");
                o.opt_str("uid", uid);
                o.opt_str("name", name);
                o.opt_str("type", kind);
                o.end();
            }
            Entity::Device { uid, name } => {
                o.begin_obj("device");
                o.u64("type_id", 0);
                o.str("type", "Unknown");
                o.opt_str("uid", uid);
                o.opt_str("name", name);
                o.end();
            }
            Entity::Organization { uid, name } => {
                o.begin_obj("org");
                o.opt_str("uid", uid);
                o.opt_str("name", name);
                o.end();
            }
            Entity::Domain { .. } | Entity::RoleDefinition { .. } => {}
        }
        o.end();
    }
}

/// `privileges[]` for application consent and app-role grants.
fn app_privileges<'m>(m: &'m Modified<'_, '_>) -> Vec<&'m str> {
    if let Some(scope) = m.get(Prop::DelegatedPermissionGrantScope) {
        return scope.split_whitespace().collect();
    }
    if let Some(role) = m.get(Prop::AppRoleValue) {
        return vec![role];
    }
    if let Some(perms) = m.get(Prop::ConsentActionPermissions) {
        // "[] => [[Id: …, ConsentType: AllPrincipals, Scope:  User.Read Mail.Read, CreatedDateTime: …]]"
        let after = perms.rsplit_once("=>").map_or(perms, |(_, new)| new);
        return after
            .split("Scope:")
            .skip(1)
            .flat_map(|rest| {
                rest.split([',', ']'])
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
            })
            .collect();
    }
    Vec::new()
}

/// The class-specific part of a routed record.
#[derive(Default)]
struct Mapped<'m> {
    activity_id: u32,
    user: Option<UserOut<'m>>,
    group: Option<GroupOut<'m>>,
    subgroup: Option<GroupOut<'m>>,
    resource: Option<Resource<'m>>,
    privileges: Vec<&'m str>,
    /// Written (possibly empty) only when set.
    resources: Option<Vec<Resource<'m>>>,
    entity: Option<Entity<'m>>,
}

impl Mapped<'_> {
    fn write<O: Out>(&self, o: &mut O) {
        if let Some(u) = &self.user {
            u.write(o, "user");
        }
        if let Some(g) = &self.group {
            g.write(o, "group");
        }
        if let Some(g) = &self.subgroup {
            g.write(o, "subgroup");
        }
        if let Some(r) = &self.resource {
            r.write(o, "resource");
        }
        if !self.privileges.is_empty() {
            o.begin_arr("privileges");
            for p in &self.privileges {
                o.str("", p);
            }
            o.end();
        }
        if let Some(resources) = &self.resources {
            o.begin_arr("resources");
            for r in resources {
                r.write(o, "");
            }
            o.end();
        }
        if let Some(e) = &self.entity {
            e.write(o);
        }
    }
}

/// The class-specific part of a routed record, or `None` when the record lacks what the class
/// requires (the caller then falls back to 6003).
fn map_targets<'m>(
    route: &Route,
    src: &Src<'m>,
    targets: &'m [Target<'m>],
    m: &'m Modified<'m, 'm>,
    initiator: Option<UserOut<'m>>,
    opts: &'m NormalizeOptions,
) -> Option<Mapped<'m>> {
    let mut f = Mapped {
        activity_id: route.activity_id,
        ..Mapped::default()
    };
    let activity = || src.peek_str("activityDisplayName");
    match route.shape {
        Shape::Account => {
            // No user target: a self-service change of the initiator's own account.
            let user = targets
                .iter()
                .filter(|t| t.kind == Kind::User)
                .find_map(target_user)
                .or(initiator)?;
            f.user = Some(user);
        }
        Shape::GroupLifecycle => {
            let g = targets.iter().find(|t| t.kind == Kind::Group)?;
            f.group = Some(GroupOut::new(g.id, g.display, g.group_type)?);
        }
        Shape::GroupMember | Shape::GroupOwner => {
            // The parent group: from the Group.* modified properties when present (real records
            // put them on the member target), else the first Group target.
            let parent_id = m.get(Prop::GroupObjectId);
            let parent_name = m.get(Prop::GroupDisplayName);
            let parent = match parent_id {
                Some(pid) => targets.iter().find(|t| t.id == Some(pid)),
                None => targets.iter().find(|t| t.kind == Kind::Group),
            };
            let group_uid = parent_id.or(parent.and_then(|p| p.id));
            let group_name = parent.and_then(|p| p.display).or(parent_name);
            f.group = Some(GroupOut::new(
                group_uid,
                group_name,
                parent.and_then(|p| p.group_type),
            )?);
            let member = targets.iter().find(|t| t.id.is_none() || t.id != group_uid);
            if let Some(mem) = member {
                if mem.kind == Kind::Group && route.shape == Shape::GroupMember {
                    f.activity_id = if route.activity_id == 3 { 7 } else { 8 };
                    f.subgroup = GroupOut::new(mem.id, mem.display, mem.group_type);
                } else if let Some(u) = target_user(mem) {
                    f.user = Some(u);
                } else {
                    f.resource = resource(mem);
                }
            }
            if route.shape == Shape::GroupOwner {
                f.privileges = vec!["Owner"];
            }
        }
        Shape::RoleMember => {
            let role_target = targets.iter().find(|t| t.kind == Kind::Role);
            let role_name = role_target
                .and_then(|r| r.display)
                .or_else(|| m.get(Prop::RoleDisplayName));
            let role_uid = m
                .get(Prop::RoleTemplateObjectId)
                .or_else(|| role_target.and_then(|r| r.id))
                .or_else(|| m.get(Prop::RoleObjectId));
            let privilege = role_name.or(role_uid)?;
            f.user = Some(targets.iter().find_map(target_user)?);
            f.privileges = vec![privilege];
            f.resources = Some(vec![Resource {
                uid: role_uid,
                name: role_name,
                kind: Some("Role"),
            }]);
        }
        Shape::AppGrant => {
            let mut privileges = app_privileges(m);
            if privileges.is_empty() {
                // The class requires privileges; name the grant itself rather than drop the class.
                privileges.push(activity().unwrap_or("Unknown"));
            }
            let sp_id = m.get(Prop::ServicePrincipalObjectId);
            let sp_name = m.get(Prop::ServicePrincipalDisplayName);
            let grantee = if sp_id.is_some() || sp_name.is_some() {
                Some(UserOut {
                    email: false,
                    ..UserOut::new(sp_id, sp_name, None, 4, false)
                })
            } else {
                targets
                    .iter()
                    .filter(|t| t.kind == Kind::User)
                    .chain(targets.iter().filter(|t| t.kind == Kind::ServicePrincipal))
                    .find_map(target_user)
            }?;
            f.resources = Some(
                targets
                    .iter()
                    .filter(|t| t.kind == Kind::ServicePrincipal || t.kind == Kind::Application)
                    .filter(|t| t.id != grantee.uid)
                    .filter_map(resource)
                    .collect(),
            );
            f.user = Some(grantee);
            f.privileges = privileges;
        }
        Shape::Policy => {
            let t = targets
                .iter()
                .find(|t| t.kind == Kind::Policy)
                .or_else(|| targets.first())?;
            let is_ca = activity().is_some_and(|a| contains_ignore_case(a, "conditional access"));
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.entity = Some(Entity::Policy {
                uid: t.id,
                name: t.display,
                kind: is_ca.then_some("Conditional Access"),
            });
        }
        Shape::Device => {
            let t = targets.iter().find(|t| t.kind == Kind::Device)?;
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.entity = Some(Entity::Device {
                uid: t.id,
                name: t.display,
            });
        }
        Shape::Directory => {
            let is_domain = activity().is_some_and(|a| contains_ignore_case(a, "domain"));
            let t = targets
                .iter()
                .find(|t| t.display.is_some() || t.id.is_some());
            f.entity = Some(match (is_domain, t) {
                (true, Some(t)) => Entity::Domain {
                    uid: t.id,
                    name: t.display,
                },
                _ => {
                    let tenant = opts.tenant_id.trim();
                    let uid = if tenant.is_empty() {
                        t.and_then(|t| t.id)
                    } else {
                        Some(tenant)
                    };
                    let name = t.and_then(|t| t.display);
                    (uid.is_some() || name.is_some()).then_some(())?;
                    Entity::Organization { uid, name }
                }
            });
        }
        Shape::RoleDefinition => {
            let t = targets
                .iter()
                .find(|t| t.kind == Kind::Role)
                .or_else(|| targets.first())?;
            (t.id.is_some() || t.display.is_some()).then_some(())?;
            f.entity = Some(Entity::RoleDefinition {
                uid: t.id,
                name: t.display,
            });
        }
        Shape::Api => {
            f.resources = Some(targets.iter().filter_map(resource).collect());
        }
    }
    Some(f)
}

/// `additionalDetails[] {key, value}`, as an object (repeated keys collect into an array).
struct Details<'a> {
    /// Each key with its first value and any later ones, in order.
    keys: Vec<(&'a str, &'a Node<'a>, Vec<&'a Node<'a>>)>,
    user_agent: Option<&'a str>,
}

fn additional_details<'a>(src: &Src<'a>) -> Option<Details<'a>> {
    let items = src.raw("additionalDetails")?.as_array()?;
    let mut d = Details {
        keys: Vec::new(),
        user_agent: None,
    };
    for kv in items.iter().filter_map(Node::as_object) {
        let (Some(k), Some(v)) = (
            text(kv, "key"),
            member(kv, "value").filter(|v| !v.is_null()),
        ) else {
            continue;
        };
        if k.eq_ignore_ascii_case("User-Agent") {
            d.user_agent = v.as_str();
        }
        match d.keys.iter_mut().find(|(key, _, _)| *key == k) {
            Some((_, _, more)) => more.push(v),
            None => d.keys.push((k, v, Vec::new())),
        }
    }
    Some(d)
}

impl Details<'_> {
    /// Whether the object keeps anything once pruned.
    fn survives_prune(&self) -> bool {
        self.keys.iter().any(|(_, first, more)| {
            first.survives_prune() || more.iter().any(|v| v.survives_prune())
        })
    }

    /// Writes the object under `additionalDetails`. A repeated key becomes an array of its
    /// values; when the first value is itself an array, the later ones are appended to it.
    fn write<O: Out>(&self, o: &mut O) {
        o.begin_obj("additionalDetails");
        for (k, first, more) in &self.keys {
            if more.is_empty() {
                o.node(k, first);
                continue;
            }
            o.begin_arr(k);
            match first {
                Node::Arr(items) => items.iter().for_each(|v| o.node("", v)),
                v => o.node("", v),
            }
            more.iter().for_each(|v| o.node("", v));
            o.end();
        }
        o.end();
    }
}

/// Maps one Graph `directoryAudit` record to OCSF (3001, 3004, 3005, 3006 or 6003).
pub fn normalize_directory_audit(
    record: &Value,
    opts: &NormalizeOptions,
) -> Result<Value, NormalizeError> {
    super::normalize(Stream::DirectoryAudits, record, opts)
}

/// Writes the OCSF event of a Graph `directoryAudit` record.
pub(crate) fn write_directory_audit<O: Out>(
    src: &Src<'_>,
    head: Head<'_>,
    opts: &NormalizeOptions,
    o: &mut O,
) {
    let id = head.id;
    let activity = src.str("activityDisplayName").unwrap_or("");
    let category = src.peek_str("category").unwrap_or("");
    let operation_type = src.peek_str("operationType");
    let service = src.str("loggedByService");
    let correlation = src.str("correlationId");

    // Outcome.
    let result = src.str("result");
    let (status_id, status_other) = match result {
        Some(r) if r.eq_ignore_ascii_case("success") => (1, None),
        Some(r) if r.eq_ignore_ascii_case("failure") || r.eq_ignore_ascii_case("timeout") => {
            (2, None)
        }
        None => (0, None),
        Some(r) => (OTHER, Some(r)),
    };
    let status_detail = src.str("resultReason");

    // Initiator.
    let initiator = UserOut::new(
        src.str("initiatedBy.user.id"),
        src.str("initiatedBy.user.userPrincipalName"),
        src.str("initiatedBy.user.displayName"),
        1,
        true,
    );
    let initiator = (!initiator.is_empty()).then_some(initiator);
    let app_id = src.str("initiatedBy.app.appId");
    let app_name = src.str("initiatedBy.app.displayName");
    // The service principal's id and name only appear in the event when there is no user
    // initiator (id) or no app display name (name); otherwise they stay under `unmapped`.
    let sp_id = src.peek_str("initiatedBy.app.servicePrincipalId");
    let sp_name = src.peek_str("initiatedBy.app.servicePrincipalName");
    if sp_id.is_some() && initiator.is_none() {
        src.mark("initiatedBy.app.servicePrincipalId");
    }
    if sp_name.is_some() && app_name.is_none() {
        src.mark("initiatedBy.app.servicePrincipalName");
    }
    let actor_user = match initiator {
        Some(u) => Some(u),
        None if sp_id.is_some() || app_name.is_some() || sp_name.is_some() => {
            Some(UserOut::new(sp_id, app_name.or(sp_name), None, 4, false))
        }
        None => None,
    };
    o.begin_obj("actor");
    if actor_user.is_none() && app_id.is_none() {
        // Nobody named: the service that logged it acted.
        o.str("app_name", service.unwrap_or("Microsoft Entra ID"));
    } else {
        if let Some(u) = &actor_user {
            u.write(o, "user");
        }
        o.opt_str("app_uid", app_id);
        o.opt_str("app_name", app_name.or(sp_name));
    }
    o.end();

    // Source endpoint.
    let raw_ip = src.peek_str("initiatedBy.user.ipAddress");
    let ip = raw_ip.and_then(clean_ip);
    let redacted = raw_ip.filter(|r| ip.is_none() && is_redacted_ip(r));
    if ip.is_some() || redacted.is_some() {
        src.mark("initiatedBy.user.ipAddress");
    }

    let details = additional_details(src);
    let user_agent = details.as_ref().and_then(|d| d.user_agent);

    let targets = targets(src);
    let modified = Modified::new(&targets);
    let mut route = route_directory_audit(category, activity, operation_type);
    let mut mapped = map_targets(&route, src, &targets, &modified, initiator, opts);
    if mapped.is_none() {
        route = api_route(activity, operation_type);
        mapped = map_targets(&route, src, &targets, &modified, initiator, opts);
    }
    let mapped = mapped.unwrap_or(Mapped {
        activity_id: route.activity_id,
        ..Mapped::default()
    });
    mapped.write(o);

    if ip.is_some() || redacted.is_some() {
        o.begin_obj("src_endpoint");
        if let Some((ip, port)) = &ip {
            o.str("ip", ip);
            if let Some(p) = port {
                o.u64("port", u64::from(*p));
            }
        }
        o.opt_str("name", redacted);
        o.end();
    } else if initiator.is_none() && (sp_id.is_some() || app_name.is_some()) {
        o.begin_obj("src_endpoint");
        o.opt_str("name", app_name.or(sp_name));
        o.opt_str("uid", sp_id);
        o.end();
    } else if route.class == Class::ApiActivity {
        // 6003 requires a source endpoint; the logging service is the only one known.
        o.begin_obj("src_endpoint");
        o.str("svc_name", service.unwrap_or("Microsoft Entra ID"));
        o.end();
    }
    let operation = [Some(activity), operation_type, Some(category)]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or("Unknown");
    o.begin_obj("api");
    o.str("operation", operation);
    o.begin_obj("service");
    o.opt_str("name", service);
    o.end();
    o.begin_obj("request");
    o.str("uid", correlation.unwrap_or(id));
    o.end();
    o.end();
    if let Some(ua) = user_agent {
        o.begin_obj("http_request");
        o.str("user_agent", ua);
        o.end();
    }

    o.begin_arr("observables");
    observable(
        o,
        obs::IP,
        "src_endpoint.ip",
        ip.as_ref().map(|(ip, _)| ip.as_str()),
    );
    observable(
        o,
        obs::USER_NAME,
        "actor.user.name",
        actor_user.and_then(|u| u.out_name()),
    );
    observable(
        o,
        obs::USER_NAME,
        "user.name",
        mapped.user.and_then(|u| u.out_name()),
    );
    observable(
        o,
        obs::EMAIL,
        "user.email_addr",
        mapped.user.and_then(|u| u.email_addr()),
    );
    observable(
        o,
        obs::GROUP_NAME,
        "group.name",
        mapped.group.and_then(|g| g.name),
    );
    observable(o, obs::USER_AGENT, "http_request.user_agent", user_agent);
    o.end();

    let envelope = Envelope {
        class: route.class,
        activity_id: mapped.activity_id,
        activity_other: route.activity_other.as_deref(),
        severity_id: 1,
        status_id,
        status_other,
        status_code: result,
        status_detail,
        message: (!activity.is_empty()).then_some(activity),
        time_ms: head.time_ms,
        original_time: head.original_time,
        source_id: id,
        correlation_uid: correlation,
        event_code: (!activity.is_empty()).then_some(activity),
        stream: Stream::DirectoryAudits,
        host: false,
        security_control: false,
    };
    // additionalDetails as a key → value object is friendlier to query than the key/value list.
    let write_details = |o: &mut O| {
        if let Some(d) = &details {
            d.write(o);
        }
    };
    let extra = details
        .as_ref()
        .filter(|d| d.survives_prune())
        .map(|_| ("additionalDetails", &write_details as &dyn Fn(&mut O)));
    finish(o, envelope, src, opts, extra);
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

    /// Every string leaf of `v`.
    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
            Value::Object(o) => o.values().for_each(|v| leaves(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_initiator_field_reaches_the_event() {
        let opts =
            NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", crate::Cloud::Global);
        let user = serde_json::json!({"id": "user-id-1", "userPrincipalName": "admin@contoso.com",
            "displayName": "Admin Person", "ipAddress": "203.0.113.7"});
        let app = serde_json::json!({"appId": "app-id-2", "displayName": "App Display Name",
            "servicePrincipalId": "sp-id-3", "servicePrincipalName": "sp-name-4"});
        let mut apps = vec![Value::Null, app.clone()];
        for k in [
            "appId",
            "displayName",
            "servicePrincipalId",
            "servicePrincipalName",
        ] {
            let mut a = app.clone();
            a[k] = Value::Null;
            apps.push(a);
        }
        for u in [Value::Null, user] {
            for a in &apps {
                for (category, activity) in
                    [("UserManagement", "Update user"), ("Other", "Do things")]
                {
                    let rec = serde_json::json!({"id": "x", "activityDateTime": "2024-05-01T19:15:41Z",
                        "category": category, "activityDisplayName": activity,
                        "initiatedBy": {"user": u, "app": a}});
                    let ev = normalize_directory_audit(&rec, &opts).unwrap();
                    let text = ev.to_string();
                    let mut want = Vec::new();
                    leaves(&rec["initiatedBy"], &mut want);
                    for w in want {
                        assert!(
                            text.contains(&format!("\"{w}\"")),
                            "{w} lost from {rec}: {ev}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn privileges_from_modified_properties() {
        let privileges = |rec: &Value| -> Vec<String> {
            let node = Node::from_value(rec);
            let src = Src::new(&node, Some(rec)).unwrap();
            let targets = targets(&src);
            let m = Modified::new(&targets);
            app_privileges(&m).into_iter().map(str::to_string).collect()
        };
        let rec = serde_json::json!({"targetResources": [{"type": "ServicePrincipal", "id": "sp", "modifiedProperties": [
            {"displayName": "ConsentAction.Permissions", "oldValue": "[]",
             "newValue": "[] => [[Id: x, ClientId: c, PrincipalId: , ResourceId: r, ConsentType: AllPrincipals, Scope:  User.Read Mail.Read, CreatedDateTime: , LastModifiedDateTime ]]; "}]}]});
        assert_eq!(privileges(&rec), vec!["User.Read", "Mail.Read"]);
        let rec = serde_json::json!({"targetResources": [{"type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "AppRole.Value", "newValue": "\"Mail.ReadWrite\""}]}]});
        assert_eq!(privileges(&rec), vec!["Mail.ReadWrite"]);
        assert_eq!(unquote("\"Finance\""), "Finance");
        assert_eq!(unquote("[\"x\"]"), "x");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote(" [\"x\", \"y\"] "), "[\"x\", \"y\"]");
        assert_eq!(unquote(" 5 "), "5");
    }
}
