//! Checks of messages against the queue contract (`contract/` at the top of the repository):
//! the envelope and dead-letter JSON Schemas, and the message attributes it promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use aws_sdk_sqs::types::Message;
use serde_json::Value;

use crate::attr;

fn schema(name: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contract")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn envelope_schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| schema("envelope.schema.json"))
}

fn dead_letter_schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| schema("dead-letter.schema.json"))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// What is wrong with an events-queue message by the contract (empty when nothing is).
pub fn envelope_message_errors(m: &Message) -> Vec<String> {
    let Some(body) = m.body() else {
        return vec!["no body".into()];
    };
    let doc: Value = match serde_json::from_str(body) {
        Ok(d) => d,
        Err(e) => return vec![format!("body is not JSON: {e}")],
    };
    let mut out = errors(envelope_schema(), &doc);
    let field = |k: &str| match &doc[k] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    for k in ["tenant_id", "stream", "envelope_version", "ocsf_version"] {
        if attr(m, k) != field(k) {
            out.push(format!(
                "attribute {k} is {:?}, body says {:?}",
                attr(m, k),
                field(k)
            ));
        }
    }
    let mut classes: Vec<i64> = doc["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["class_uid"].as_i64())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let want = classes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if attr(m, "ocsf_class_uids").as_deref() != Some(want.as_str()) {
        out.push(format!(
            "attribute ocsf_class_uids is {:?}, events have {want}",
            attr(m, "ocsf_class_uids")
        ));
    }
    if let Some(t) = field("tenant_id") {
        for e in doc["events"].as_array().into_iter().flatten() {
            if e["metadata"]["tenant_uid"].as_str() != Some(t.as_str()) {
                out.push("an event of another tenant".into());
            }
        }
    }
    if body.len() > 262_144 {
        out.push(format!("{} bytes, over the message limit", body.len()));
    }
    out
}

/// What is wrong with a dead-letters-queue message by the contract (empty when nothing is).
pub fn dead_letter_message_errors(m: &Message) -> Vec<String> {
    let Some(body) = m.body() else {
        return vec!["no body".into()];
    };
    let doc: Value = match serde_json::from_str(body) {
        Ok(d) => d,
        Err(e) => return vec![format!("body is not JSON: {e}")],
    };
    let mut out = errors(dead_letter_schema(), &doc);
    for k in ["tenant_id", "stream"] {
        if attr(m, k).as_deref() != doc[k].as_str() {
            out.push(format!("attribute {k} differs from the body"));
        }
    }
    match (attr(m, "reason"), doc["reason"].as_str()) {
        (Some(a), Some(r)) if r.starts_with(&a) && a.len() <= 256 => {}
        _ => out.push("attribute reason is not the body's reason (up to 256 bytes)".into()),
    }
    out
}
