//! Inventory objects (users, MFA registrations, apps, role holders, conditional access
//! policies, inbox rules) → OCSF 1.8.0. The choices are in `DESIGN.md` ("Identity inventory").
//!
//! Every object read by a snapshot yields a **state** event:
//! - identities (users, MFA registrations): **5003 User Inventory Info**, activity 2 Collect;
//! - apps, role holders, policies, inbox rules: **5023 Cloud Resources Inventory Info**,
//!   activity 2 Collect, the object as `resources[0]` (`type`, `owner`, `data`, `labels`).
//!
//! An object that appeared, changed or disappeared between two snapshots also yields a
//! **change** event: **3004 Entity Management**, activity 1 Create, 3 Update or 4 Delete, the
//! object as `entity` (a managed entity: type 2 User, 5 Policy, or 99 with the object's type).
//! The first snapshot of a stream is the baseline: state events only, no change events.

use serde_json::{Map, Value, json};

use super::common::{cloud_partition, event_uid, is_valid_email, prune};
use super::enums::{self, Class};
use super::{NormalizeError, NormalizeOptions, OCSF_VERSION};
use crate::source::Change;
use crate::stream::Stream;

/// What an inventory object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A user (member or guest).
    User,
    /// A user's authentication method registration.
    MfaRegistration,
    /// A service principal and the permissions it holds.
    App,
    /// A principal holding directory roles.
    RoleHolder,
    /// A conditional access policy.
    ConditionalAccessPolicy,
    /// The tenant's security defaults.
    SecurityDefaults,
    /// A mailbox's inbox rule.
    InboxRule,
}

impl ObjectKind {
    /// The object's type in words (`resources[].type`, `entity.type`).
    pub fn caption(self) -> &'static str {
        match self {
            ObjectKind::User => "User",
            ObjectKind::MfaRegistration => "User",
            ObjectKind::App => "Service Principal",
            ObjectKind::RoleHolder => "Directory Role Holder",
            ObjectKind::ConditionalAccessPolicy => "Conditional Access Policy",
            ObjectKind::SecurityDefaults => "Security Defaults Policy",
            ObjectKind::InboxRule => "Inbox Rule",
        }
    }

    /// The managed entity type of change events.
    fn entity_type(self) -> (u32, &'static str) {
        match self {
            ObjectKind::User | ObjectKind::MfaRegistration | ObjectKind::RoleHolder => (2, "User"),
            ObjectKind::ConditionalAccessPolicy | ObjectKind::SecurityDefaults => (5, "Policy"),
            ObjectKind::App | ObjectKind::InboxRule => (enums::OTHER, self.caption()),
        }
    }

    fn is_identity(self) -> bool {
        matches!(self, ObjectKind::User | ObjectKind::MfaRegistration)
    }

    fn product(self) -> &'static str {
        match self {
            ObjectKind::InboxRule => "Exchange Online",
            _ => "Microsoft Entra ID",
        }
    }
}

/// An inventory object as its source describes it for OCSF.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Its id (the object id; `mailbox/rule` for inbox rules).
    pub uid: String,
    /// Its name (UPN, display name, policy or rule name).
    pub name: Option<String>,
    /// The identity (state of an identity), or the owner or principal (other objects): an
    /// OCSF `user` object, see [`user_object`].
    pub user: Option<Value>,
    /// The details the inventory keeps (a JSON object).
    pub data: Value,
    /// Creation time in ms since the epoch, when known.
    pub created_time_ms: Option<i64>,
    /// Severity of the current state (risky apps, flagged rules, guest admins are higher).
    pub severity_id: u32,
    /// Severity of a change to this state (a new Global Administrator is high).
    pub change_severity_id: u32,
    /// One line describing the object.
    pub message: String,
    /// The inventory's tags for it.
    pub labels: Vec<String>,
}

/// An OCSF `user` for a directory identity.
pub fn user_object(
    uid: &str,
    upn: Option<&str>,
    display_name: Option<&str>,
    type_id: u32,
    disabled: Option<bool>,
) -> Value {
    let email = upn.filter(|n| is_valid_email(n));
    let domain = upn.and_then(|u| u.rsplit_once('@')).map(|(_, d)| d);
    json!({
        "uid": uid,
        "name": upn.or(display_name),
        "full_name": display_name,
        "email_addr": email,
        "domain": domain,
        "type_id": type_id,
        "type": enums::user_type_caption(type_id),
        "account": {
            "uid": uid,
            "name": upn,
            "type_id": enums::ACCOUNT_AZURE_AD.0,
            "type": enums::ACCOUNT_AZURE_AD.1,
            "is_disabled": disabled,
        },
    })
}

fn change_label(change: Change) -> &'static str {
    match change {
        Change::Baseline => "baseline",
        Change::Appeared => "appeared",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
        Change::Disappeared => "disappeared",
    }
}

/// The events of one object and how it changed: the state event (unless it disappeared) and
/// the change event (unless it is unchanged or part of the baseline). `object` is `None` only
/// for a disappeared object, of which only the id and `kind` are known.
pub fn inventory_events(
    stream: Stream,
    kind: ObjectKind,
    id: &str,
    digest: u64,
    object: Option<&InventoryObject>,
    change: Change,
    opts: &NormalizeOptions,
) -> Result<Vec<Value>, NormalizeError> {
    let observed = opts
        .observed_at
        .ok_or(NormalizeError::MissingField("observed_at"))?;
    let time_ms = observed.timestamp_millis();
    let day = observed.format("%Y-%m-%d").to_string();
    let mut out = Vec::with_capacity(2);
    if change != Change::Disappeared {
        let obj = object.ok_or(NormalizeError::NotAnObject)?;
        let source_id = format!("{id}\nstate\n{digest:016x}\n{day}");
        let mut ev = Map::new();
        let class = if kind.is_identity() {
            let user = obj
                .user
                .clone()
                .ok_or(NormalizeError::MissingField("user"))?;
            ev.insert("user".into(), user);
            let mut unmapped = Map::new();
            unmapped.insert(
                "inventory".into(),
                json!({"kind": kind.caption(), "change": change_label(change), "labels": obj.labels, "data": obj.data}),
            );
            ev.insert("unmapped".into(), Value::Object(unmapped));
            Class::UserInventory
        } else {
            ev.insert(
                "resources".into(),
                json!([{
                    "uid": obj.uid,
                    "name": obj.name,
                    "type": kind.caption(),
                    "owner": obj.user,
                    "data": obj.data,
                    "labels": obj.labels,
                    "created_time": obj.created_time_ms,
                    "provider": kind.product(),
                }]),
            );
            ev.insert(
                "unmapped".into(),
                json!({"inventory": {"change": change_label(change)}}),
            );
            Class::CloudResourcesInventory
        };
        out.push(finish(
            ev,
            class,
            2,
            obj.severity_id,
            &obj.message,
            time_ms,
            stream,
            kind,
            &source_id,
            opts,
        ));
    }
    let activity = match change {
        Change::Appeared => 1,
        Change::Changed => 3,
        Change::Disappeared => 4,
        Change::Unchanged | Change::Baseline => return Ok(out),
    };
    let (type_id, type_caption) = kind.entity_type();
    let mut entity = Map::new();
    entity.insert("uid".into(), json!(id));
    entity.insert("type_id".into(), json!(type_id));
    entity.insert("type".into(), json!(type_caption));
    let (severity, message) = match object {
        Some(obj) => {
            entity.insert("name".into(), json!(obj.name));
            entity.insert("data".into(), obj.data.clone());
            if type_id == 2 {
                entity.insert("user".into(), obj.user.clone().unwrap_or(Value::Null));
            }
            let verb = if change == Change::Appeared {
                "appeared"
            } else {
                "changed"
            };
            (
                obj.change_severity_id,
                format!("{} {verb}: {}", kind.caption(), obj.message),
            )
        }
        None => (1, format!("{} {id} disappeared", kind.caption())),
    };
    let source_id = match change {
        Change::Disappeared => format!("{id}\ndisappeared\n{day}"),
        _ => format!("{id}\n{}\n{digest:016x}", change_label(change)),
    };
    let mut ev = Map::new();
    ev.insert("entity".into(), Value::Object(entity));
    ev.insert(
        "unmapped".into(),
        json!({"inventory": {"change": change_label(change), "labels": object.map(|o| o.labels.clone())}}),
    );
    out.push(finish(
        ev,
        Class::EntityManagement,
        activity,
        severity,
        &message,
        time_ms,
        stream,
        kind,
        &source_id,
        opts,
    ));
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    mut ev: Map<String, Value>,
    class: Class,
    activity_id: u32,
    severity_id: u32,
    message: &str,
    time_ms: i64,
    stream: Stream,
    kind: ObjectKind,
    source_id: &str,
    opts: &NormalizeOptions,
) -> Value {
    let tenant = opts.tenant_id.trim();
    let log_name = stream.log_name();
    let activity = class.activity_caption(activity_id).unwrap_or("Unknown");
    let fields = [
        ("class_uid", json!(class.uid())),
        ("class_name", json!(class.caption())),
        ("category_uid", json!(class.category_uid())),
        ("category_name", json!(class.category_caption())),
        ("activity_id", json!(activity_id)),
        ("activity_name", json!(activity)),
        (
            "type_uid",
            json!(u64::from(class.uid()) * 100 + u64::from(activity_id)),
        ),
        (
            "type_name",
            json!(format!("{}: {activity}", class.caption())),
        ),
        ("time", json!(time_ms)),
        ("timezone_offset", json!(0)),
        ("severity_id", json!(severity_id)),
        (
            "severity",
            json!(enums::severity_caption(severity_id).unwrap_or("Unknown")),
        ),
        ("status_id", json!(1)),
        ("status", json!("Success")),
        ("message", json!(message)),
        (
            "metadata",
            json!({
                "version": OCSF_VERSION,
                "uid": event_uid(tenant, &format!("inventory.{log_name}"), source_id),
                "tenant_uid": tenant,
                "log_name": log_name,
                "log_provider": "Microsoft Graph",
                "product": {
                    "name": kind.product(),
                    "vendor_name": "Microsoft",
                    "feature": { "name": "Identity inventory" },
                },
                "profiles": ["cloud"],
            }),
        ),
        (
            "cloud",
            json!({
                "provider": "Azure",
                "cloud_partition": cloud_partition(opts.cloud),
                "account": {
                    "uid": tenant,
                    "type_id": enums::ACCOUNT_M365_TENANT.0,
                    "type": enums::ACCOUNT_M365_TENANT.1,
                },
            }),
        ),
    ];
    for (k, v) in fields {
        ev.insert(k.to_string(), v);
    }
    let mut out = Value::Object(ev);
    prune(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cloud;

    fn opts() -> NormalizeOptions {
        NormalizeOptions {
            observed_at: chrono::DateTime::from_timestamp(1_780_000_000, 0),
            ..NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud::Global)
        }
    }

    fn rule() -> InventoryObject {
        InventoryObject {
            kind: ObjectKind::InboxRule,
            uid: "u1/r1".into(),
            name: Some("..".into()),
            user: Some(user_object(
                "u1",
                Some("a@contoso.com"),
                Some("A"),
                1,
                Some(false),
            )),
            data: json!({"flags": ["forwards_external"]}),
            created_time_ms: None,
            severity_id: 4,
            change_severity_id: 4,
            message: "rule".into(),
            labels: vec!["flagged".into()],
        }
    }

    #[test]
    fn baseline_and_unchanged_give_state_only_changes_add_3004() {
        let o = rule();
        for (change, classes) in [
            (Change::Baseline, vec![5023]),
            (Change::Unchanged, vec![5023]),
            (Change::Appeared, vec![5023, 3004]),
            (Change::Changed, vec![5023, 3004]),
        ] {
            let evs = inventory_events(
                Stream::InboxRules,
                o.kind,
                "u1/r1",
                7,
                Some(&o),
                change,
                &opts(),
            )
            .unwrap();
            let got: Vec<u64> = evs.iter().filter_map(|e| e["class_uid"].as_u64()).collect();
            assert_eq!(got, classes, "{change:?}");
            for e in &evs {
                assert_eq!(super::super::check_event(e), Ok(()), "{e}");
            }
        }
        let gone = inventory_events(
            Stream::InboxRules,
            o.kind,
            "u1/r1",
            0,
            None,
            Change::Disappeared,
            &opts(),
        )
        .unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0]["type_uid"], 300404);
        assert_eq!(gone[0]["entity"]["type"], "Inbox Rule");
    }

    #[test]
    fn the_same_change_has_the_same_uid_and_a_state_one_uid_per_day() {
        let o = rule();
        let a = inventory_events(
            Stream::InboxRules,
            o.kind,
            "x",
            7,
            Some(&o),
            Change::Appeared,
            &opts(),
        )
        .unwrap();
        let mut later = opts();
        later.observed_at = later.observed_at.map(|t| t + chrono::TimeDelta::hours(1));
        let b = inventory_events(
            Stream::InboxRules,
            o.kind,
            "x",
            7,
            Some(&o),
            Change::Appeared,
            &later,
        )
        .unwrap();
        assert_eq!(a[1]["metadata"]["uid"], b[1]["metadata"]["uid"], "change");
        assert_ne!(a[0]["time"], b[0]["time"]);
        let mut next_day = opts();
        next_day.observed_at = next_day.observed_at.map(|t| t + chrono::TimeDelta::days(1));
        let c = inventory_events(
            Stream::InboxRules,
            o.kind,
            "x",
            7,
            Some(&o),
            Change::Unchanged,
            &next_day,
        )
        .unwrap();
        assert_ne!(a[0]["metadata"]["uid"], c[0]["metadata"]["uid"]);
    }

    #[test]
    fn identities_are_5003_with_a_user() {
        let mut o = rule();
        o.kind = ObjectKind::User;
        let e = inventory_events(
            Stream::Users,
            o.kind,
            "u1",
            1,
            Some(&o),
            Change::Baseline,
            &opts(),
        )
        .unwrap();
        assert_eq!(e[0]["class_uid"], 5003);
        assert_eq!(e[0]["user"]["account"]["is_disabled"], false);
        assert_eq!(e[0]["category_name"], "Discovery");
        let mut no_time = opts();
        no_time.observed_at = None;
        assert!(
            inventory_events(
                Stream::Users,
                o.kind,
                "u1",
                1,
                Some(&o),
                Change::Baseline,
                &no_time
            )
            .is_err()
        );
    }
}
