//! Event checks a JSON Schema cannot express.

use serde_json::Value;

use super::enums::{self, Class, OTHER};

/// Top-level attributes that exist only under a profile: (attribute, profile).
const PROFILE_ATTRIBUTES: &[(&str, &str)] = &[
    ("cloud", "cloud"),
    ("device", "host"),
    ("risk_level_id", "security_control"),
    ("risk_level", "security_control"),
    ("risk_score", "security_control"),
    ("risk_details", "security_control"),
    ("action_id", "security_control"),
    ("disposition_id", "security_control"),
    ("is_alert", "security_control"),
    ("confidence_id", "security_control"),
];

type Captions = fn(u32) -> Option<&'static str>;

/// Top-level enum pairs checked besides activity, severity and status: (id, sibling, captions).
const SIBLINGS: &[(&str, &str, Captions)] = &[
    ("logon_type_id", "logon_type", enums::logon_type_caption),
    (
        "auth_protocol_id",
        "auth_protocol",
        enums::auth_protocol_caption,
    ),
    ("risk_level_id", "risk_level", enums::risk_level_caption),
];

/// Checks what OCSF requires but JSON Schema cannot: `type_uid == class_uid * 100 +
/// activity_id`; `category_uid` matching the class; `class_name`, `category_name`,
/// `activity_name`, `type_name`, `severity` and `status` agreeing with their ids (for 99 the
/// sibling must instead carry a non-empty label); the same for `logon_type`, `auth_protocol` and
/// `risk_level`; and `metadata.profiles` declaring every profile whose attributes are present.
/// Returns every problem found, without event values beyond ids and captions.
pub fn check_event(event: &Value) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let Some(obj) = event.as_object() else {
        return Err(vec!["event is not a JSON object".into()]);
    };
    let int = |k: &str| obj.get(k).and_then(Value::as_u64);
    let text = |k: &str| obj.get(k).and_then(Value::as_str);

    let class = match int("class_uid") {
        None => {
            errs.push("class_uid missing or not an integer".into());
            None
        }
        Some(uid) => {
            let c = Class::from_uid(uid);
            if c.is_none() {
                errs.push(format!("class_uid {uid} is not a class this checker knows"));
            }
            c
        }
    };
    let activity_id = int("activity_id").and_then(|a| u32::try_from(a).ok());
    if activity_id.is_none() {
        errs.push("activity_id missing or not an integer".into());
    }

    // Caption agreement for an id/sibling pair; 99 needs a label instead.
    let sibling =
        |id_key: &str, name_key: &str, id: u32, caption: Option<&str>, errs: &mut Vec<String>| {
            match (id, text(name_key)) {
                (OTHER, Some(s)) if !s.trim().is_empty() => {}
                (OTHER, _) => errs.push(format!(
                    "{id_key} is 99 (Other) but {name_key} is missing or empty"
                )),
                (_, None) => errs.push(format!("{name_key} missing")),
                (_, Some(s)) => match caption {
                    None => errs.push(format!("{id_key} {id} is not in the enum")),
                    Some(c) if c != s => errs.push(format!(
                        "{name_key} {s:?} does not match {id_key} {id} ({c:?})"
                    )),
                    Some(_) => {}
                },
            }
        };

    if let (Some(class), Some(activity_id)) = (class, activity_id) {
        let expected = u64::from(class.uid()) * 100 + u64::from(activity_id);
        match int("type_uid") {
            Some(t) if t == expected => {}
            Some(t) => errs.push(format!(
                "type_uid {t} != class_uid * 100 + activity_id ({expected})"
            )),
            None => errs.push("type_uid missing or not an integer".into()),
        }
        match int("category_uid") {
            Some(c) if c == u64::from(class.category_uid()) => {}
            other => errs.push(format!(
                "category_uid {other:?} does not match class {} (expected {})",
                class.uid(),
                class.category_uid()
            )),
        }
        if text("class_name") != Some(class.caption()) {
            errs.push(format!(
                "class_name does not match class_uid {} ({:?})",
                class.uid(),
                class.caption()
            ));
        }
        if text("category_name") != Some(class.category_caption()) {
            errs.push(format!(
                "category_name does not match category_uid ({:?})",
                class.category_caption()
            ));
        }
        let activity_caption = class.activity_caption(activity_id);
        match activity_caption {
            None => errs.push(format!(
                "activity_id {activity_id} is not in the enum of class {}",
                class.uid()
            )),
            Some(caption) => {
                sibling(
                    "activity_id",
                    "activity_name",
                    activity_id,
                    Some(caption),
                    &mut errs,
                );
                let want = format!("{}: {caption}", class.caption());
                if text("type_name") != Some(want.as_str()) {
                    errs.push(format!("type_name does not match type_uid ({want:?})"));
                }
            }
        }
    }

    match int("severity_id").and_then(|s| u32::try_from(s).ok()) {
        Some(s) => sibling(
            "severity_id",
            "severity",
            s,
            enums::severity_caption(s),
            &mut errs,
        ),
        None => errs.push("severity_id missing or not an integer".into()),
    }
    if let Some(s) = int("status_id").and_then(|s| u32::try_from(s).ok()) {
        sibling(
            "status_id",
            "status",
            s,
            enums::status_caption(s),
            &mut errs,
        );
    }
    for (id_key, name_key, captions) in SIBLINGS {
        if let Some(id) = int(id_key).and_then(|s| u32::try_from(s).ok()) {
            sibling(id_key, name_key, id, captions(id), &mut errs);
        }
    }

    let profiles: Vec<&str> = obj
        .get("metadata")
        .and_then(|m| m.get("profiles"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (attr, profile) in PROFILE_ATTRIBUTES {
        if obj.contains_key(*attr) && !profiles.contains(profile) {
            errs.push(format!(
                "{attr} present but profile {profile:?} not declared in metadata.profiles"
            ));
        }
    }

    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn good() -> Value {
        json!({
            "class_uid": 3006, "class_name": "Group Management",
            "category_uid": 3, "category_name": "Identity & Access Management",
            "activity_id": 6, "activity_name": "Create",
            "type_uid": 300606, "type_name": "Group Management: Create",
            "severity_id": 1, "severity": "Informational",
            "status_id": 1, "status": "Success",
            "metadata": {"profiles": ["cloud"]}, "cloud": {"provider": "Azure"},
        })
    }

    #[test]
    fn accepts_a_consistent_event() {
        assert_eq!(check_event(&good()), Ok(()));
    }

    #[test]
    fn rejects_inconsistencies() {
        let bad = |k: &str, v: Value| {
            let mut e = good();
            e[k] = v;
            check_event(&e).unwrap_err()
        };
        assert!(bad("type_uid", json!(300605))[0].contains("type_uid"));
        assert!(!bad("category_uid", json!(6)).is_empty());
        assert!(!bad("activity_name", json!("Delete")).is_empty()); // 5 is Delete, 6 is Create
        assert!(!bad("class_name", json!("Account Change")).is_empty());
        assert!(!bad("severity", json!("High")).is_empty());
        assert!(!bad("status", json!("Failure")).is_empty());
        assert!(!bad("activity_id", json!(42)).is_empty());
        let mut e = good();
        e["activity_id"] = json!(99);
        e["type_uid"] = json!(300699);
        e["type_name"] = json!("Group Management: Other");
        e["activity_name"] = json!("Update group");
        assert_eq!(check_event(&e), Ok(()));
        e["activity_name"] = json!("");
        assert!(check_event(&e).is_err());
        let mut e = good();
        e["metadata"]["profiles"] = json!([]);
        e["risk_level_id"] = json!(1);
        e["risk_level"] = json!("Low");
        let errs = check_event(&e).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}"); // cloud, risk_level_id, risk_level
    }
}
