//! `Value`-based builders for the unified audit mapping: a source view that records which
//! fields were mapped (the rest goes to `unmapped`), the actor, observables and the common
//! envelope. The Graph streams write events through `out::Out` instead (see `DESIGN.md`).

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::common::{cloud_partition, event_uid, feature_name, is_valid_email, prune};
use super::super::enums::{self, Class, OTHER};
use super::super::{NormalizeError, NormalizeOptions, OCSF_VERSION};
use crate::Stream;

/// A source record being mapped. Every successful typed read marks its path as mapped; what is
/// never marked ends up under `unmapped`, so new or unexpected Microsoft fields are kept.
pub(crate) struct Src<'a> {
    root: &'a Map<String, Value>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Src<'a> {
    pub(crate) fn new(record: &'a Value) -> Result<Self, NormalizeError> {
        match record {
            Value::Object(root) => Ok(Src {
                root,
                used: RefCell::new(BTreeSet::new()),
            }),
            _ => Err(NormalizeError::NotAnObject),
        }
    }

    /// The non-null value at a dotted path, without marking it as mapped.
    pub(crate) fn raw(&self, path: &str) -> Option<&'a Value> {
        let mut cur = self.root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let v = cur.get(part)?;
            if parts.peek().is_none() {
                return (!v.is_null()).then_some(v);
            }
            cur = v.as_object()?;
        }
        None
    }

    /// Marks a path as mapped (it will not be copied to `unmapped`).
    pub(crate) fn mark(&self, path: &str) {
        self.used.borrow_mut().insert(path.to_string());
    }

    /// A non-blank string, without marking it.
    pub(crate) fn peek_str(&self, path: &str) -> Option<&'a str> {
        self.raw(path)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// A non-blank string; marks it as mapped.
    pub(crate) fn str(&self, path: &str) -> Option<&'a str> {
        let s = self.peek_str(path)?;
        self.mark(path);
        Some(s)
    }

    /// An integer, also from a numeric string; marks it as mapped.
    pub(crate) fn i64(&self, path: &str) -> Option<i64> {
        let v = self.raw(path)?;
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }?;
        self.mark(path);
        Some(n)
    }

    /// Everything never marked, keyed by dotted path (`"clientAppUsed"`,
    /// `"deviceDetail.browser"`). Objects that were partly mapped are split one level at a time;
    /// arrays and untouched objects are kept whole.
    pub(crate) fn unmapped(&self) -> Map<String, Value> {
        let used = self.used.borrow();
        let mut out = Map::new();
        collect_unmapped(self.root, "", &used, &mut out);
        out
    }
}

fn collect_unmapped(
    obj: &Map<String, Value>,
    prefix: &str,
    used: &BTreeSet<String>,
    out: &mut Map<String, Value>,
) {
    for (k, v) in obj {
        let path = format!("{prefix}{k}");
        if used.contains(&path) {
            continue;
        }
        let child_prefix = format!("{path}.");
        let partly_used = used
            .range(child_prefix.clone()..)
            .next()
            .is_some_and(|u| u.starts_with(&child_prefix));
        match v {
            Value::Object(inner) if partly_used => {
                collect_unmapped(inner, &child_prefix, used, out)
            }
            _ => {
                let mut v = v.clone();
                if prune(&mut v) {
                    out.insert(path, v);
                }
            }
        }
    }
}

/// Parses a Graph `DateTimeOffset` (or an O365-style zone-less UTC time) to milliseconds since
/// the Unix epoch. Accepts any number of fractional digits, `Z`/`z` or a numeric offset, and no
/// zone at all (read as UTC).
pub(crate) struct UserOut<'a> {
    pub uid: Option<&'a str>,
    pub name: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub type_id: u32,
    /// Adds `account{uid, name, type_id 6 "Azure AD Account"}`.
    pub entra_account: bool,
}

impl UserOut<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.uid.is_none() && self.name.is_none()
    }

    pub(crate) fn to_json(&self) -> Value {
        let email = self.name.filter(|n| is_valid_email(n));
        let account = (self.entra_account && !self.is_empty()).then(|| {
            json!({
                "uid": self.uid, "name": self.name,
                "type_id": enums::ACCOUNT_AZURE_AD.0, "type": enums::ACCOUNT_AZURE_AD.1,
            })
        });
        json!({
            "uid": self.uid,
            "name": self.name.or(self.full_name),
            "full_name": self.full_name,
            "email_addr": email,
            "type_id": self.type_id,
            "type": enums::user_type_caption(self.type_id),
            "account": account,
        })
    }
}

/// One `observables[]` entry.
pub(crate) fn observable(kind: (u32, &str), name: &str, value: Option<&str>) -> Option<Value> {
    value.map(|v| json!({ "type_id": kind.0, "type": kind.1, "name": name, "value": v }))
}

/// The class, outcome and source-identity facts every event carries.
pub(crate) struct Envelope<'a> {
    pub class: Class,
    pub activity_id: u32,
    /// `activity_name` when `activity_id` is 99 (Other).
    pub activity_other: Option<String>,
    pub severity_id: u32,
    pub status_id: u32,
    /// `status` when `status_id` is 99 (Other).
    pub status_other: Option<String>,
    pub status_code: Option<String>,
    pub status_detail: Option<String>,
    pub message: Option<String>,
    pub time_ms: i64,
    pub original_time: &'a str,
    pub source_id: &'a str,
    pub correlation_uid: Option<&'a str>,
    pub event_code: Option<String>,
    pub stream: Stream,
    /// Profiles besides `cloud` (which is always declared).
    pub host: bool,
    pub security_control: bool,
}

impl Envelope<'_> {
    pub(crate) fn profiles(&self) -> Vec<&'static str> {
        let mut p = vec!["cloud"];
        if self.host {
            p.push("host");
        }
        if self.security_control {
            p.push("security_control");
        }
        p
    }
}

/// Adds the envelope, `metadata`, `cloud`, `unmapped` and `raw_data` to the class-specific
/// fields in `ev`, then prunes empty values.
pub(crate) fn finish(
    mut ev: Map<String, Value>,
    env: Envelope<'_>,
    src: &Src<'_>,
    record: &Value,
    opts: &NormalizeOptions,
) -> Value {
    let class = env.class;
    let activity_caption = class.activity_caption(env.activity_id).unwrap_or("Unknown");
    let activity_name = if env.activity_id == OTHER {
        env.activity_other
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "Other".to_string())
    } else {
        activity_caption.to_string()
    };
    let status = if env.status_id == OTHER {
        env.status_other
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "Other".to_string())
    } else {
        enums::status_caption(env.status_id)
            .unwrap_or("Unknown")
            .to_string()
    };
    let log_name = env.stream.log_name();
    let feature = feature_name(env.stream);
    let tenant = opts.tenant_id.trim();

    let mut metadata = json!({
        "version": OCSF_VERSION,
        "uid": event_uid(tenant, log_name, env.source_id),
        "original_event_uid": env.source_id,
        "original_time": env.original_time,
        "correlation_uid": env.correlation_uid,
        "tenant_uid": tenant,
        "log_name": log_name,
        "log_provider": "Microsoft Graph",
        "event_code": env.event_code,
        "product": {
            "name": "Microsoft Entra ID",
            "vendor_name": "Microsoft",
            "version": opts.product_version.trim(),
            "feature": { "name": feature },
        },
        "profiles": env.profiles(),
    });

    let fields = [
        ("class_uid", json!(class.uid())),
        ("class_name", json!(class.caption())),
        ("category_uid", json!(class.category_uid())),
        ("category_name", json!(class.category_caption())),
        ("activity_id", json!(env.activity_id)),
        ("activity_name", json!(activity_name)),
        (
            "type_uid",
            json!(u64::from(class.uid()) * 100 + u64::from(env.activity_id)),
        ),
        (
            "type_name",
            json!(format!("{}: {}", class.caption(), activity_caption)),
        ),
        ("time", json!(env.time_ms)),
        ("timezone_offset", json!(0)),
        ("severity_id", json!(env.severity_id)),
        (
            "severity",
            json!(enums::severity_caption(env.severity_id).unwrap_or("Unknown")),
        ),
        ("status_id", json!(env.status_id)),
        ("status", json!(status)),
        ("status_code", json!(env.status_code)),
        ("status_detail", json!(env.status_detail)),
        ("message", json!(env.message)),
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

    let unmapped = src.unmapped();
    if !unmapped.is_empty() {
        ev.insert("unmapped".to_string(), Value::Object(unmapped));
    }

    if opts.include_raw {
        let raw = record.to_string();
        ev.insert("raw_data_size".to_string(), json!(raw.len()));
        if raw.len() <= opts.raw_max_bytes {
            ev.insert("raw_data".to_string(), Value::String(raw));
        } else {
            // Too big to carry: say so, and keep a hash so the record can still be matched.
            let hash = hex::encode(Sha256::digest(raw.as_bytes()));
            ev.insert(
                "raw_data_hash".to_string(),
                json!({ "algorithm_id": enums::HASH_SHA256.0, "algorithm": enums::HASH_SHA256.1, "value": hash }),
            );
            if let Some(m) = metadata.as_object_mut() {
                m.insert("is_truncated".to_string(), json!(true));
            }
        }
    }
    ev.insert("metadata".to_string(), metadata);

    let mut out = Value::Object(ev);
    prune(&mut out);
    out
}
