//! OCSF 1.8.0 normalization of Microsoft Graph sign-in and directory-audit records, and of
//! Unified Audit Log records.
//!
//! * [`normalize_signin`]: Graph `signIn` (v1.0 or beta) → **3002 Authentication**, activity 1
//!   Logon whatever the outcome (the outcome is `status_id`).
//! * [`normalize_directory_audit`]: Graph `directoryAudit` → routed by `category` and
//!   `activityDisplayName` ([`route_directory_audit`]) to **3001 Account Change**, **3006 Group
//!   Management**, **3005 User Access Management** or **3004 Entity Management**, with **6003
//!   API Activity** as the fallback — also when a routed record lacks what its class requires.
//! * [`normalize_unified_audit`]: a Unified Audit Log record (Office 365 Management Activity
//!   API) → routed by its `Operation` ([`route_unified_audit`]) to **3004 Entity Management**
//!   (inbox rules, mailbox forwarding, transport rules, Power Automate flows), **3005 User
//!   Access Management** (mailbox permissions, consent), **3002 Authentication**
//!   (`UserLoggedIn`, `UserLoginFailed`) or **6003 API Activity** (everything else).
//! * [`check_event`]: the rules a JSON Schema cannot express (type_uid arithmetic, captions,
//!   "Other" labels, declared profiles).
//!
//! Two entry points produce the same events: [`normalize`] takes and returns
//! `serde_json::Value`s (the poller's pages are already parsed), and [`normalize_record`]
//! writes the event's JSON text straight into a buffer from a [`Record`] parsed from JSON text,
//! which borrows its strings from that text (`itdr normalize`, several times faster).
//!
//! Contract: unknown fields, extra nesting and nulls never fail a record; what is not mapped is
//! kept under `unmapped` keyed by its dotted source path. A record without `id` or without a
//! parseable time is an error ([`NormalizeError`]), which never carries record content.
//! The design choices are in `DESIGN.md` next to this file.

mod activity;
mod audit;
mod check;
mod common;
pub mod enums;
pub mod inventory;
mod node;
mod out;
pub mod response;
mod signin;

use serde_json::Value;

use common::Src;
use node::Node;
use out::{JsonOut, Out, ValueOut};

use crate::{Cloud, Stream};

pub use activity::{LOG_PROVIDER, UalRoute, normalize_unified_audit, route_unified_audit};
pub use audit::{Route, normalize_directory_audit, route_directory_audit};
pub use check::check_event;
pub use common::{clean_ip, event_uid, is_valid_email, parse_time_ms, prune};
pub use enums::Class;
pub use signin::normalize_signin;

/// The OCSF schema version every event declares in `metadata.version`.
pub const OCSF_VERSION: &str = "1.8.0";

/// Default cap on `raw_data`: 16 KiB.
pub const DEFAULT_RAW_MAX_BYTES: usize = 16 * 1024;

/// Per-tenant settings for normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// The polled tenant's id: `metadata.tenant_uid`, `cloud.account.uid`, and part of
    /// `metadata.uid`.
    pub tenant_id: String,
    /// The tenant's national cloud (`cloud.cloud_partition`).
    pub cloud: Cloud,
    /// Whether to put the source record into `raw_data` (a JSON string).
    pub include_raw: bool,
    /// `raw_data` is omitted when the record's JSON is longer than this; the event then carries
    /// `metadata.is_truncated: true`, `raw_data_size` and a SHA-256 `raw_data_hash` instead.
    pub raw_max_bytes: usize,
    /// `metadata.product.version`; empty leaves it out. Typically the Graph API version the
    /// record came from (`"v1.0"` or `"beta"`).
    pub product_version: String,
    /// When an inventory snapshot observed its objects (the `time` of inventory events,
    /// which have no event time of their own); `None` for log records.
    pub observed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl NormalizeOptions {
    /// Defaults: no `raw_data`, a 16 KiB cap when it is enabled, no product version.
    pub fn new(tenant_id: impl Into<String>, cloud: Cloud) -> Self {
        NormalizeOptions {
            tenant_id: tenant_id.into(),
            cloud,
            include_raw: false,
            raw_max_bytes: DEFAULT_RAW_MAX_BYTES,
            product_version: String::new(),
            observed_at: None,
        }
    }
}

/// Why a record could not be normalized. Names the field, never its value: records hold
/// personal data and these errors end up in logs and dead-letter metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The record is not a JSON object.
    #[error("record is not a JSON object")]
    NotAnObject,
    /// A required field is absent, null, blank or not a string.
    #[error("record has no usable {0:?} field")]
    MissingField(&'static str),
    /// The time field is present but not a parseable timestamp (or before 1970).
    #[error("record field {field:?} is not a valid timestamp")]
    BadTimestamp {
        /// The field name.
        field: &'static str,
    },
    /// An inventory stream's objects are normalized by their snapshot source, with how they
    /// changed, not one record at a time.
    #[error("inventory streams are normalized by their snapshot source")]
    InventoryStream,
}

/// One source record, ready to normalize: parsed from JSON text (borrowing its strings) or
/// borrowed from a `Value`.
#[derive(Debug)]
pub struct Record<'a> {
    node: Node<'a>,
    /// The `Value` it was built from, if any (`raw_data` is rendered from it).
    value: Option<&'a Value>,
    /// Whether a normalization has marked it.
    used: std::cell::Cell<bool>,
}

impl<'a> Record<'a> {
    /// Parses one JSON value. Any JSON parses; a value that is not an object fails later, in
    /// normalization, with [`NormalizeError::NotAnObject`].
    pub fn parse(json: &'a str) -> Result<Self, serde_json::Error> {
        Ok(Record {
            node: node::parse(json)?,
            value: None,
            used: std::cell::Cell::new(false),
        })
    }

    /// The record held by a `Value`.
    pub fn from_value(value: &'a Value) -> Self {
        Record {
            node: Node::from_value(value),
            value: Some(value),
            used: std::cell::Cell::new(false),
        }
    }

    /// Runs `f` on the record as a `Value` (converted from the parsed text when needed).
    fn with_value<T>(&self, f: impl FnOnce(&Value) -> T) -> T {
        match self.value {
            Some(v) => f(v),
            None => f(&self.node.to_value()),
        }
    }

    /// A fresh source view (clears the marks of an earlier normalization).
    fn src(&self) -> Result<Src<'_>, NormalizeError> {
        if self.used.replace(true) {
            self.node.clear_marks();
        }
        Src::new(&self.node, self.value)
    }
}

/// The facts without which a record is an error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pub id: &'a str,
    pub original_time: &'a str,
    pub time_ms: i64,
}

/// The streams whose events are written through [`Out`] (the Graph collections).
#[derive(Debug, Clone, Copy)]
enum Written {
    Signin,
    DirectoryAudit,
}

/// How a stream's records are mapped, one at a time.
enum Mapping {
    /// Through [`Out`].
    Written(Written),
    /// On `Value`s, by `activity`.
    UnifiedAudit,
}

impl Mapping {
    fn of(stream: Stream) -> Result<Mapping, NormalizeError> {
        match stream {
            Stream::Signins => Ok(Mapping::Written(Written::Signin)),
            Stream::DirectoryAudits => Ok(Mapping::Written(Written::DirectoryAudit)),
            Stream::UnifiedAudit => Ok(Mapping::UnifiedAudit),
            Stream::Users
            | Stream::Apps
            | Stream::Roles
            | Stream::Mfa
            | Stream::ConditionalAccess
            | Stream::InboxRules => Err(NormalizeError::InventoryStream),
        }
    }
}

fn head<'a>(stream: Written, src: &Src<'a>) -> Result<Head<'a>, NormalizeError> {
    let field = match stream {
        Written::Signin => "createdDateTime",
        Written::DirectoryAudit => "activityDateTime",
    };
    let id = src.str("id").ok_or(NormalizeError::MissingField("id"))?;
    let original_time = src.str(field).ok_or(NormalizeError::MissingField(field))?;
    let time_ms = parse_time_ms(original_time)
        .filter(|t| *t >= 0)
        .ok_or(NormalizeError::BadTimestamp { field })?;
    Ok(Head {
        id,
        original_time,
        time_ms,
    })
}

fn write_event<O: Out>(
    stream: Written,
    src: &Src<'_>,
    head: Head<'_>,
    opts: &NormalizeOptions,
    o: &mut O,
) {
    match stream {
        Written::Signin => signin::write_signin(src, head, opts, o),
        Written::DirectoryAudit => audit::write_directory_audit(src, head, opts, o),
    }
}

/// Normalizes one record of `stream`.
pub fn normalize(
    stream: Stream,
    record: &Value,
    opts: &NormalizeOptions,
) -> Result<Value, NormalizeError> {
    normalize_to_value(stream, &Record::from_value(record), opts)
}

/// Normalizes one record of `stream` to a `Value`.
pub fn normalize_to_value(
    stream: Stream,
    record: &Record<'_>,
    opts: &NormalizeOptions,
) -> Result<Value, NormalizeError> {
    let stream = match Mapping::of(stream)? {
        Mapping::Written(w) => w,
        Mapping::UnifiedAudit => return record.with_value(|v| normalize_unified_audit(v, opts)),
    };
    let src = record.src()?;
    let head = head(stream, &src)?;
    let mut o = ValueOut::new();
    write_event(stream, &src, head, opts, &mut o);
    Ok(o.finish())
}

/// Normalizes one record of `stream`, appending the event as compact JSON (no newline) to
/// `out`. The event is the one [`normalize`] returns. On error nothing is appended.
pub fn normalize_record(
    stream: Stream,
    record: &Record<'_>,
    opts: &NormalizeOptions,
    out: &mut Vec<u8>,
) -> Result<(), NormalizeError> {
    let stream = match Mapping::of(stream)? {
        Mapping::Written(w) => w,
        Mapping::UnifiedAudit => {
            let event = record.with_value(|v| normalize_unified_audit(v, opts))?;
            out.extend_from_slice(event.to_string().as_bytes());
            return Ok(());
        }
    };
    let src = record.src()?;
    let head = head(stream, &src)?;
    let mut o = JsonOut::new(out);
    write_event(stream, &src, head, opts, &mut o);
    o.finish();
    Ok(())
}

fn u32_at(event: &Value, key: &str) -> Option<u32> {
    event.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// `class_uid` of an event (e.g. for a queue message attribute).
pub fn event_class_uid(event: &Value) -> Option<u32> {
    u32_at(event, "class_uid")
}

/// `type_uid` of an event.
pub fn event_type_uid(event: &Value) -> Option<u64> {
    event.get("type_uid")?.as_u64()
}

/// `metadata.uid` of an event (the deterministic de-duplication key).
pub fn event_metadata_uid(event: &Value) -> Option<&str> {
    event.get("metadata")?.get("uid")?.as_str()
}

/// `metadata.tenant_uid` of an event.
pub fn event_tenant_uid(event: &Value) -> Option<&str> {
    event.get("metadata")?.get("tenant_uid")?.as_str()
}

/// `metadata.profiles` of an event.
pub fn event_profiles(event: &Value) -> Vec<&str> {
    event
        .get("metadata")
        .and_then(|m| m.get("profiles"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn opts() -> NormalizeOptions {
        NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud::Global)
    }

    #[test]
    fn errors_name_the_field_not_the_value() {
        let rec = json!({"createdDateTime": "2024-05-01T19:15:41Z", "userPrincipalName": "secret.person@contoso.com"});
        let err = normalize(Stream::Signins, &rec, &opts()).unwrap_err();
        assert_eq!(err, NormalizeError::MissingField("id"));
        assert!(!err.to_string().contains("secret"));

        let rec = json!({"id": "abc", "createdDateTime": "not-a-time-secret"});
        let err = normalize(Stream::Signins, &rec, &opts()).unwrap_err();
        assert_eq!(
            err,
            NormalizeError::BadTimestamp {
                field: "createdDateTime"
            }
        );
        assert!(!err.to_string().contains("secret"));

        let rec = json!({"id": "abc"});
        assert_eq!(
            normalize(Stream::DirectoryAudits, &rec, &opts()).unwrap_err(),
            NormalizeError::MissingField("activityDateTime")
        );
        assert_eq!(
            normalize(Stream::DirectoryAudits, &json!([1]), &opts()).unwrap_err(),
            NormalizeError::NotAnObject
        );
        assert_eq!(
            normalize(
                Stream::Signins,
                &json!({"id": 5, "createdDateTime": "2024-05-01T19:15:41Z"}),
                &opts()
            )
            .unwrap_err(),
            NormalizeError::MissingField("id")
        );
    }

    #[test]
    fn minimal_records_normalize_and_pass_checks() {
        let s = normalize(
            Stream::Signins,
            &json!({"id": "s1", "createdDateTime": "2024-05-01T19:15:41.6195833Z"}),
            &opts(),
        )
        .unwrap();
        assert_eq!(event_class_uid(&s), Some(3002));
        assert_eq!(event_type_uid(&s), Some(300201));
        assert_eq!(s["time"], json!(1_714_590_941_619_i64));
        assert_eq!(check_event(&s), Ok(()));
        let a = normalize(
            Stream::DirectoryAudits,
            &json!({"id": "a1", "activityDateTime": "2024-05-01T19:15:41Z"}),
            &opts(),
        )
        .unwrap();
        assert_eq!(event_class_uid(&a), Some(6003));
        assert_eq!(check_event(&a), Ok(()));
        assert_eq!(event_profiles(&a), vec!["cloud"]);
        assert_eq!(
            event_tenant_uid(&a),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(
            event_metadata_uid(&a).map(str::to_string),
            Some(event_uid(
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "directoryAudits",
                "a1"
            ))
        );
    }

    #[test]
    fn raw_data_is_capped() {
        let rec =
            json!({"id": "s1", "createdDateTime": "2024-05-01T19:15:41Z", "pad": "x".repeat(200)});
        let mut o = opts();
        o.include_raw = true;
        let e = normalize(Stream::Signins, &rec, &o).unwrap();
        assert_eq!(
            e["raw_data"]
                .as_str()
                .map(|s| serde_json::from_str::<Value>(s).ok()),
            Some(Some(rec.clone()))
        );
        o.raw_max_bytes = 100;
        let e = normalize(Stream::Signins, &rec, &o).unwrap();
        assert!(e.get("raw_data").is_none());
        assert_eq!(e["metadata"]["is_truncated"], json!(true));
        assert_eq!(e["raw_data_size"], json!(rec.to_string().len()));
        assert_eq!(e["raw_data_hash"]["algorithm_id"], json!(3));
    }
}
