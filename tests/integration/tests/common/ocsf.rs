//! OCSF 1.8.0 validation for tests: the generated JSON Schemas under `tests/fixtures/ocsf/`
//! and the schema's own captions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use itdr_shared::ocsf::{self, check_event, event_class_uid, event_profiles};
use serde_json::{Value, json};

/// `tests/fixtures`, found from whichever workspace crate includes this module.
pub fn fixtures() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("../fixtures"),
        manifest.join("../tests/fixtures"),
    ]
    .into_iter()
    .find(|p| p.join("ocsf").is_dir())
    .unwrap_or_else(|| panic!("tests/fixtures not found from {}", manifest.display()))
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compiled validators, keyed by "<class_uid>_<profiles joined by +>".
pub fn validators() -> &'static BTreeMap<String, jsonschema::Validator> {
    static V: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = fixtures().join("ocsf").join(ocsf::OCSF_VERSION);
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if name == "captions" {
                continue;
            }
            let schema = read_json(&path);
            let validator =
                jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.insert(name, validator);
        }
        assert!(
            out.len() >= 9,
            "expected the generated schemas, found {:?}",
            out.keys()
        );
        out
    })
}

pub fn captions() -> &'static Value {
    static C: OnceLock<Value> = OnceLock::new();
    C.get_or_init(|| {
        read_json(
            &fixtures()
                .join("ocsf")
                .join(ocsf::OCSF_VERSION)
                .join("captions.json"),
        )
    })
}

pub fn schema_key(event: &Value) -> String {
    let class = event_class_uid(event).expect("class_uid");
    format!("{class}_{}", event_profiles(event).join("+"))
}

/// Schema errors for an event, validated against the schema for its class and profiles.
pub fn schema_errors(event: &Value) -> Vec<String> {
    let key = schema_key(event);
    let Some(v) = validators().get(&key) else {
        return vec![format!(
            "no generated schema {key}.json: add the profile set to scripts/gen-ocsf-schemas.py"
        )];
    };
    v.iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// Compares every caption sibling with the schema's captions (independently of the
/// normalizer's own tables).
pub fn caption_errors(event: &Value) -> Vec<String> {
    let caps = captions();
    let mut errs = Vec::new();
    let class = event["class_uid"].to_string();
    let cls = &caps["classes"][&class];
    if cls.is_null() {
        return vec![format!("class {class} missing from captions.json")];
    }
    let mut expect = |what: &str, got: &Value, want: &Value| {
        if got != want {
            errs.push(format!("{what}: got {got}, schema says {want}"));
        }
    };
    expect("class_name", &event["class_name"], &cls["caption"]);
    expect("category_uid", &event["category_uid"], &cls["category_uid"]);
    expect(
        "category_name",
        &event["category_name"],
        &cls["category_name"],
    );
    let activity = event["activity_id"].to_string();
    let activity_caption = &cls["activity_id"][&activity];
    if activity != "99" {
        expect("activity_name", &event["activity_name"], activity_caption);
    }
    expect(
        "type_name",
        &event["type_name"],
        &json!(format!(
            "{}: {}",
            cls["caption"].as_str().unwrap(),
            activity_caption.as_str().unwrap_or("?")
        )),
    );
    expect(
        "severity",
        &event["severity"],
        &cls["severity_id"][event["severity_id"].to_string()],
    );
    if event["status_id"] != json!(99) {
        expect(
            "status",
            &event["status"],
            &cls["status_id"][event["status_id"].to_string()],
        );
    }

    // Nested enums: (pointer to the object, id key, sibling key, captions.json enum).
    let nested: &[(&str, &str, &str, &str)] = &[
        ("/user", "type_id", "type", "user.type_id"),
        ("/actor/user", "type_id", "type", "user.type_id"),
        ("/user/account", "type_id", "type", "account.type_id"),
        ("/actor/user/account", "type_id", "type", "account.type_id"),
        ("/cloud/account", "type_id", "type", "account.type_id"),
        ("/device", "type_id", "type", "device.type_id"),
        ("/device/os", "type_id", "type", "os.type_id"),
        ("/entity", "type_id", "type", "managed_entity.type_id"),
        ("/entity/device", "type_id", "type", "device.type_id"),
        (
            "",
            "logon_type_id",
            "logon_type",
            "authentication.logon_type_id",
        ),
        (
            "",
            "auth_protocol_id",
            "auth_protocol",
            "authentication.auth_protocol_id",
        ),
        (
            "",
            "risk_level_id",
            "risk_level",
            "authentication.risk_level_id",
        ),
        (
            "/user",
            "risk_level_id",
            "risk_level",
            "authentication.risk_level_id",
        ),
        (
            "/raw_data_hash",
            "algorithm_id",
            "algorithm",
            "fingerprint.algorithm_id",
        ),
    ];
    let check_pair = |obj: &Value,
                      ctx: &str,
                      id_key: &str,
                      name_key: &str,
                      table: &str,
                      errs: &mut Vec<String>| {
        let Some(id) = obj.get(id_key) else { return };
        let want = &caps["enums"][table][id.to_string()];
        let got = obj.get(name_key).unwrap_or(&Value::Null);
        if want.is_null() {
            errs.push(format!("{ctx}.{id_key} {id} not in {table}"));
        } else if id != &json!(99) && got != want {
            errs.push(format!("{ctx}.{name_key}: got {got}, schema says {want}"));
        } else if id == &json!(99) && got.as_str().is_none_or(str::is_empty) {
            errs.push(format!("{ctx}.{id_key} is 99 without {name_key}"));
        }
    };
    for (ptr, id_key, name_key, table) in nested {
        if let Some(obj) = event.pointer(ptr) {
            check_pair(obj, ptr, id_key, name_key, table, &mut errs);
        }
    }
    for (arr, id_key, name_key, table) in [
        (
            "auth_factors",
            "factor_type_id",
            "factor_type",
            "auth_factor.factor_type_id",
        ),
        ("observables", "type_id", "type", "observable.type_id"),
    ] {
        for (i, item) in event
            .get(arr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_pair(
                item,
                &format!("{arr}[{i}]"),
                id_key,
                name_key,
                table,
                &mut errs,
            );
        }
    }
    errs
}

/// Every problem with an event: schema, in-code checks, captions.
pub fn all_errors(event: &Value) -> Vec<String> {
    let mut errs = schema_errors(event);
    if let Err(e) = check_event(event) {
        errs.extend(e);
    }
    errs.extend(caption_errors(event));
    errs
}
