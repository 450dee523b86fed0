//! Pieces every mapping shares: reading the source record while tracking what was mapped,
//! timestamps, IP addresses, e-mail addresses, event ids, null pruning and the common envelope.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::enums::{self, Class, OTHER};
use super::node::{Entry, Mark, Node};
use super::out::Out;
use super::{NormalizeError, NormalizeOptions, OCSF_VERSION};
use crate::{Cloud, Stream};

/// A source record being mapped. Every successful typed read marks its path as mapped; what is
/// never marked ends up under `unmapped`, so new or unexpected Microsoft fields are kept.
pub(crate) struct Src<'n> {
    node: &'n Node<'n>,
    root: &'n [Entry<'n>],
    /// Where the record came from, for `raw_data`.
    value: Option<&'n Value>,
}

fn find<'n>(entries: &'n [Entry<'n>], key: &str) -> Option<&'n Entry<'n>> {
    let first = key.as_bytes().first();
    entries
        .iter()
        .find(|e| e.key.len() == key.len() && e.key.as_bytes().first() == first && e.key == key)
}

/// Splits the first segment off a dotted path.
fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.as_bytes().iter().position(|&b| b == b'.') {
        Some(i) => (&path[..i], Some(&path[i + 1..])),
        None => (path, None),
    }
}

/// A member found by dotted path, with the members on the way to it.
struct Found<'n> {
    leaf: &'n Entry<'n>,
    parents: [Option<&'n Entry<'n>>; 4],
}

impl Found<'_> {
    fn mark(&self) {
        for e in self.parents.iter().flatten() {
            if e.mark.get() == Mark::None {
                e.mark.set(Mark::Partly);
            }
        }
        self.leaf.mark.set(Mark::Full);
    }
}

impl<'n> Src<'n> {
    /// `value` is the `Value` the node was built from, if any.
    pub(crate) fn new(
        node: &'n Node<'n>,
        value: Option<&'n Value>,
    ) -> Result<Self, NormalizeError> {
        match node {
            Node::Obj(root) => Ok(Src { node, root, value }),
            _ => Err(NormalizeError::NotAnObject),
        }
    }

    /// The member at a dotted path of at most five segments, null or not.
    fn find(&self, path: &str) -> Option<Found<'n>> {
        let mut cur = self.root;
        let mut parents = [None; 4];
        let mut rest = path;
        let mut depth = 0;
        loop {
            let (part, tail) = split_path(rest);
            let e = find(cur, part)?;
            let Some(tail) = tail else {
                return Some(Found { leaf: e, parents });
            };
            *parents.get_mut(depth)? = Some(e);
            depth += 1;
            cur = e.val.as_object()?;
            rest = tail;
        }
    }

    /// The non-null value at a dotted path, without marking it as mapped.
    pub(crate) fn raw(&self, path: &str) -> Option<&'n Node<'n>> {
        let v = &self.find(path)?.leaf.val;
        (!v.is_null()).then_some(v)
    }

    /// Marks a path as mapped (it will not be copied to `unmapped`); the objects on the way
    /// are marked as partly mapped.
    pub(crate) fn mark(&self, path: &str) {
        let mut cur = self.root;
        let mut rest = path;
        loop {
            let (part, tail) = split_path(rest);
            let Some(e) = find(cur, part) else { return };
            let Some(tail) = tail else {
                e.mark.set(Mark::Full);
                return;
            };
            if e.mark.get() == Mark::None {
                e.mark.set(Mark::Partly);
            }
            match e.val.as_object() {
                Some(o) => cur = o,
                None => return,
            }
            rest = tail;
        }
    }

    /// A non-blank string, without marking it.
    pub(crate) fn peek_str(&self, path: &str) -> Option<&'n str> {
        self.raw(path)
            .and_then(Node::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// A non-blank string; marks it as mapped.
    pub(crate) fn str(&self, path: &str) -> Option<&'n str> {
        let f = self.find(path)?;
        let s = f
            .leaf
            .val
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())?;
        f.mark();
        Some(s)
    }

    /// A boolean; marks it as mapped.
    pub(crate) fn bool(&self, path: &str) -> Option<bool> {
        let f = self.find(path)?;
        let b = f.leaf.val.as_bool()?;
        f.mark();
        Some(b)
    }

    /// An integer, also from a numeric string; marks it as mapped.
    pub(crate) fn i64(&self, path: &str) -> Option<i64> {
        let f = self.find(path)?;
        let n = match &f.leaf.val {
            Node::Num(n) => n.as_i64(),
            v => v.as_str().and_then(|s| s.trim().parse().ok()),
        }?;
        f.mark();
        Some(n)
    }

    /// A finite number, also from a numeric string; marks it as mapped.
    pub(crate) fn f64(&self, path: &str) -> Option<f64> {
        let f = self.find(path)?;
        let n = match &f.leaf.val {
            Node::Num(n) => n.as_f64(),
            v => v.as_str().and_then(|s| s.trim().parse().ok()),
        }
        .filter(|f: &f64| f.is_finite())?;
        f.mark();
        Some(n)
    }

    /// Writes everything never marked into the open object, keyed by dotted path
    /// (`"clientAppUsed"`, `"deviceDetail.browser"`), pruned. Objects that were partly mapped
    /// are split one level at a time; arrays and untouched objects are kept whole. A top-level
    /// member named `skip` is left out.
    pub(crate) fn write_unmapped<O: Out>(&self, o: &mut O, skip: Option<&str>) {
        let mut prefix = String::new();
        for e in self.root {
            if Some(e.key.as_ref()) != skip {
                write_unmapped_entry(o, e, &mut prefix);
            }
        }
    }

    /// The record as compact JSON, as `Value::to_string` renders it.
    fn raw_json(&self) -> String {
        match self.value {
            Some(v) => v.to_string(),
            None => {
                let mut buf = Vec::new();
                self.node.write_canonical(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            }
        }
    }
}

fn write_unmapped_entry<O: Out>(o: &mut O, e: &Entry<'_>, prefix: &mut String) {
    match (e.mark.get(), &e.val) {
        (Mark::Full, _) => {}
        (Mark::Partly, Node::Obj(inner)) => {
            let len = prefix.len();
            prefix.push_str(&e.key);
            prefix.push('.');
            for child in inner {
                write_unmapped_entry(o, child, prefix);
            }
            prefix.truncate(len);
        }
        (_, v) => {
            if prefix.is_empty() {
                o.node(&e.key, v);
            } else {
                let len = prefix.len();
                prefix.push_str(&e.key);
                o.node(prefix, v);
                prefix.truncate(len);
            }
        }
    }
}

/// Whether `hay` contains `needle` (ASCII lowercase), ignoring ASCII case.
pub(crate) fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Parses a Graph `DateTimeOffset` (or an O365-style zone-less UTC time) to milliseconds since
/// the Unix epoch. Accepts any number of fractional digits, `Z`/`z` or a numeric offset, and no
/// zone at all (read as UTC).
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// Cleans an IP address for `ip_t`: strips a port (`1.2.3.4:443`, `[2001:db8::1]:443`),
/// brackets and an IPv6 zone, unwraps IPv4-mapped IPv6, and rejects the unspecified address and
/// anything that is not an address (such as the redacted `10.1.2.XXX`). Returns the canonical
/// text and the port, if there was one.
pub fn clean_ip(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        (host, port)
    } else if s.matches(':').count() == 1 {
        let (host, port) = s.split_once(':')?;
        (host, Some(port.parse::<u16>().ok()?))
    } else {
        (s, None)
    };
    let host = host.split_once('%').map_or(host, |(h, _zone)| h);
    let ip: IpAddr = host.parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_unspecified() {
        return None;
    }
    Some((ip.to_string(), port))
}

/// An address Microsoft redacted (`203.0.113.XXX`, `2001:db8::XXXX`): digits, hex, dots,
/// colons and at least one `X`.
pub(crate) fn is_redacted_ip(s: &str) -> bool {
    let s = s.trim();
    s.contains(['x', 'X'])
        && (s.contains('.') || s.contains(':'))
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | 'x' | 'X'))
}

/// Whether a string passes the OCSF 1.8.0 `email_t` pattern
/// `^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$`
/// (in the local part, `+-/` is a range and so also admits `,`).
pub fn is_valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+,-./=?^_`{|}~".contains(c));
    let Some((first, rest)) = domain.split_once('.') else {
        return false;
    };
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
    local_ok
        && !first.is_empty()
        && first.chars().all(label)
        && !rest.is_empty()
        && rest.chars().all(|c| label(c) || c == '.')
}

/// Fixed namespace for [`event_uid`]. Never change it: downstream de-duplication relies on
/// the same source record always getting the same `metadata.uid`.
const UID_NAMESPACE: Uuid = Uuid::from_u128(0x5d2c_8f4e_1b7a_4e0c_9a63_2f80_c4d1_7e95);

/// The deterministic `metadata.uid`: a UUID v5 over the tenant (trimmed, lowercase), the
/// Graph log name and the source record id (as is).
pub fn event_uid(tenant_id: &str, log_name: &str, source_id: &str) -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    event_uid_into(tenant_id, log_name, source_id, &mut buf).to_string()
}

/// [`event_uid`] written into `buf`.
pub(crate) fn event_uid_into<'b>(
    tenant_id: &str,
    log_name: &str,
    source_id: &str,
    buf: &'b mut [u8; uuid::fmt::Hyphenated::LENGTH],
) -> &'b str {
    let tenant = tenant_id.trim();
    let mut name = Vec::with_capacity(tenant.len() + log_name.len() + source_id.len() + 2);
    name.extend(tenant.bytes().map(|b| b.to_ascii_lowercase()));
    name.push(b'\n');
    name.extend_from_slice(log_name.as_bytes());
    name.push(b'\n');
    name.extend_from_slice(source_id.as_bytes());
    Uuid::new_v5(&UID_NAMESPACE, &name)
        .hyphenated()
        .encode_lower(buf)
}

/// Removes nulls, blank strings, empty arrays and empty objects, recursively. Returns whether
/// the value itself should be kept.
pub fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(items) => {
            items.retain_mut(prune);
            !items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| prune(v));
            !map.is_empty()
        }
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// The Azure environment name OCSF suggests for `cloud.cloud_partition`.
/// `metadata.product.feature.name` of a stream's events.
pub(crate) fn feature_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Signins => "Sign-in logs",
        Stream::DirectoryAudits => "Audit logs",
        Stream::UnifiedAudit => "Unified Audit Log",
        Stream::Users
        | Stream::Apps
        | Stream::Roles
        | Stream::Mfa
        | Stream::ConditionalAccess
        | Stream::InboxRules => "Inventory",
    }
}

pub(crate) fn cloud_partition(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global | Cloud::Gcc => "AzureCloud",
        Cloud::GccHigh | Cloud::Dod => "AzureUSGovernment",
        Cloud::China => "AzureChinaCloud",
    }
}

/// An OCSF `user` object for a Microsoft identity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserOut<'a> {
    pub uid: Option<&'a str>,
    pub name: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub type_id: u32,
    /// Adds `account{uid, name, type_id 6 "Azure AD Account"}`.
    pub entra_account: bool,
    /// Sets `email_addr` from the name when it is an e-mail address.
    pub email: bool,
    /// `risk_level_id` and its caption.
    pub risk_level: Option<u32>,
}

impl<'a> UserOut<'a> {
    /// A user with an e-mail check and no risk level.
    pub(crate) fn new(
        uid: Option<&'a str>,
        name: Option<&'a str>,
        full_name: Option<&'a str>,
        type_id: u32,
        entra_account: bool,
    ) -> Self {
        UserOut {
            uid,
            name,
            full_name,
            type_id,
            entra_account,
            email: true,
            risk_level: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.uid.is_none() && self.name.is_none()
    }

    /// `name` as written (the name, else the full name).
    pub(crate) fn out_name(&self) -> Option<&'a str> {
        self.name.or(self.full_name)
    }

    /// `email_addr` as written.
    pub(crate) fn email_addr(&self) -> Option<&'a str> {
        self.name.filter(|n| self.email && is_valid_email(n))
    }

    pub(crate) fn write<O: Out>(&self, o: &mut O, key: &str) {
        o.begin_obj(key);
        o.opt_str("uid", self.uid);
        o.opt_str("name", self.out_name());
        o.opt_str("full_name", self.full_name);
        o.opt_str("email_addr", self.email_addr());
        o.u64("type_id", u64::from(self.type_id));
        o.opt_str("type", enums::user_type_caption(self.type_id));
        if self.entra_account && !self.is_empty() {
            o.begin_obj("account");
            o.opt_str("uid", self.uid);
            o.opt_str("name", self.name);
            o.u64("type_id", u64::from(enums::ACCOUNT_AZURE_AD.0));
            o.str("type", enums::ACCOUNT_AZURE_AD.1);
            o.end();
        }
        if let Some(level) = self.risk_level {
            o.u64("risk_level_id", u64::from(level));
            o.opt_str("risk_level", enums::risk_level_caption(level));
        }
        o.end();
    }
}

/// One `observables[]` entry (inside the open `observables` array), when there is a value.
pub(crate) fn observable<O: Out>(o: &mut O, kind: (u32, &str), name: &str, value: Option<&str>) {
    if let Some(v) = value {
        o.begin_obj("");
        o.u64("type_id", u64::from(kind.0));
        o.str("type", kind.1);
        o.str("name", name);
        o.str("value", v);
        o.end();
    }
}

/// The class, outcome and source-identity facts every event carries.
pub(crate) struct Envelope<'a> {
    pub class: Class,
    pub activity_id: u32,
    /// `activity_name` when `activity_id` is 99 (Other).
    pub activity_other: Option<&'a str>,
    pub severity_id: u32,
    pub status_id: u32,
    /// `status` when `status_id` is 99 (Other).
    pub status_other: Option<&'a str>,
    pub status_code: Option<&'a str>,
    pub status_detail: Option<&'a str>,
    pub message: Option<&'a str>,
    pub time_ms: i64,
    pub original_time: &'a str,
    pub source_id: &'a str,
    pub correlation_uid: Option<&'a str>,
    pub event_code: Option<&'a str>,
    pub stream: Stream,
    /// Profiles besides `cloud` (which is always declared).
    pub host: bool,
    pub security_control: bool,
}

/// A top-level member of `unmapped` that replaces the source member of the same key: its key
/// and its writer.
pub(crate) type UnmappedExtra<'x, O> = (&'x str, &'x dyn Fn(&mut O));

/// Writes the envelope, `metadata`, `cloud`, `unmapped` and `raw_data` after the
/// class-specific fields, then closes the event. `unmapped_extra` replaces one top-level
/// member of `unmapped` (its key and its writer).
pub(crate) fn finish<O: Out>(
    o: &mut O,
    env: Envelope<'_>,
    src: &Src<'_>,
    opts: &NormalizeOptions,
    unmapped_extra: Option<UnmappedExtra<'_, O>>,
) {
    let class = env.class;
    let activity_caption = class.activity_caption(env.activity_id).unwrap_or("Unknown");
    let activity_name = if env.activity_id == OTHER {
        env.activity_other
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("Other")
    } else {
        activity_caption
    };
    let status = if env.status_id == OTHER {
        env.status_other
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("Other")
    } else {
        enums::status_caption(env.status_id).unwrap_or("Unknown")
    };
    let log_name = env.stream.log_name();
    let feature = feature_name(env.stream);
    let tenant = opts.tenant_id.trim();

    o.u64("class_uid", u64::from(class.uid()));
    o.str("class_name", class.caption());
    o.u64("category_uid", u64::from(class.category_uid()));
    o.str("category_name", class.category_caption());
    o.u64("activity_id", u64::from(env.activity_id));
    o.str("activity_name", activity_name);
    o.u64(
        "type_uid",
        u64::from(class.uid()) * 100 + u64::from(env.activity_id),
    );
    o.str_parts("type_name", &[class.caption(), ": ", activity_caption]);
    o.i64("time", env.time_ms);
    o.u64("timezone_offset", 0);
    o.u64("severity_id", u64::from(env.severity_id));
    o.str(
        "severity",
        enums::severity_caption(env.severity_id).unwrap_or("Unknown"),
    );
    o.u64("status_id", u64::from(env.status_id));
    o.str("status", status);
    o.opt_str("status_code", env.status_code);
    o.opt_str("status_detail", env.status_detail);
    o.opt_str("message", env.message);
    o.begin_obj("cloud");
    o.str("provider", "Azure");
    o.str("cloud_partition", cloud_partition(opts.cloud));
    o.begin_obj("account");
    o.str("uid", tenant);
    o.u64("type_id", u64::from(enums::ACCOUNT_M365_TENANT.0));
    o.str("type", enums::ACCOUNT_M365_TENANT.1);
    o.end();
    o.end();

    o.begin_obj("unmapped");
    src.write_unmapped(o, unmapped_extra.map(|(k, _)| k));
    if let Some((_, write)) = unmapped_extra {
        write(o);
    }
    o.end();

    let mut truncated = false;
    if opts.include_raw {
        let raw = src.raw_json();
        o.u64("raw_data_size", raw.len() as u64);
        if raw.len() <= opts.raw_max_bytes {
            o.str("raw_data", &raw);
        } else {
            // Too big to carry: say so, and keep a hash so the record can still be matched.
            let hash = hex::encode(Sha256::digest(raw.as_bytes()));
            o.begin_obj("raw_data_hash");
            o.u64("algorithm_id", u64::from(enums::HASH_SHA256.0));
            o.str("algorithm", enums::HASH_SHA256.1);
            o.str("value", &hash);
            o.end();
            truncated = true;
        }
    }

    o.begin_obj("metadata");
    o.str("version", OCSF_VERSION);
    let mut uid = [0u8; uuid::fmt::Hyphenated::LENGTH];
    o.str(
        "uid",
        event_uid_into(tenant, log_name, env.source_id, &mut uid),
    );
    o.str("original_event_uid", env.source_id);
    o.str("original_time", env.original_time);
    o.opt_str("correlation_uid", env.correlation_uid);
    o.str("tenant_uid", tenant);
    o.str("log_name", log_name);
    o.str("log_provider", "Microsoft Graph");
    o.opt_str("event_code", env.event_code);
    o.begin_obj("product");
    o.str("name", "Microsoft Entra ID");
    o.str("vendor_name", "Microsoft");
    o.str("version", opts.product_version.trim());
    o.begin_obj("feature");
    o.str("name", feature);
    o.end();
    o.end();
    o.begin_arr("profiles");
    o.str("", "cloud");
    if env.host {
        o.str("", "host");
    }
    if env.security_control {
        o.str("", "security_control");
    }
    o.end();
    if truncated {
        o.bool("is_truncated", true);
    }
    o.end();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::out::ValueOut;
    use super::*;

    #[test]
    fn timestamps_parse_with_any_precision_and_zone() {
        assert_eq!(
            parse_time_ms("2024-05-01T19:15:41.6195833Z"),
            Some(1_714_590_941_619)
        );
        assert_eq!(
            parse_time_ms("2024-05-01T19:15:41Z"),
            Some(1_714_590_941_000)
        );
        assert_eq!(
            parse_time_ms("2024-05-01T19:15:41.6Z"),
            Some(1_714_590_941_600)
        );
        assert_eq!(
            parse_time_ms("2024-05-01T21:15:41.6195833+02:00"),
            Some(1_714_590_941_619)
        );
        assert_eq!(
            parse_time_ms("2024-05-01t19:15:41.619z"),
            Some(1_714_590_941_619)
        );
        // O365 style: no zone, UTC.
        assert_eq!(
            parse_time_ms("2024-05-01T19:15:41"),
            Some(1_714_590_941_000)
        );
        assert_eq!(
            parse_time_ms(" 2024-05-01T19:15:41.1234567 "),
            Some(1_714_590_941_123)
        );
        assert_eq!(
            parse_time_ms("2024-05-01 19:15:41Z"),
            Some(1_714_590_941_000)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "1714590941619",
            "2024-05-01",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn ips_are_cleaned() {
        let ip = |s: &str| clean_ip(s).map(|(ip, _)| ip);
        assert_eq!(ip("131.107.159.37"), Some("131.107.159.37".into()));
        assert_eq!(
            clean_ip("1.2.3.4:5678"),
            Some(("1.2.3.4".into(), Some(5678)))
        );
        assert_eq!(
            clean_ip("[2001:db8::1]:443"),
            Some(("2001:db8::1".into(), Some(443)))
        );
        assert_eq!(ip("[2001:db8::1]"), Some("2001:db8::1".into()));
        assert_eq!(
            ip("2001:0db8:0000:0000:0000:0000:0000:0001"),
            Some("2001:db8::1".into())
        );
        assert_eq!(ip("fe80::1%eth0"), Some("fe80::1".into()));
        assert_eq!(ip("::ffff:203.0.113.9"), Some("203.0.113.9".into()));
        assert_eq!(ip(" 10.0.0.1 "), Some("10.0.0.1".into()));
        for bad in [
            "",
            "0.0.0.0",
            "::",
            "10.1.2.XXX",
            "2001:db8::XXXX",
            "1.2.3",
            "host.example.com",
            "1.2.3.4:99999",
            "[::1",
        ] {
            assert_eq!(clean_ip(bad), None, "{bad}");
        }
        assert!(is_redacted_ip("10.1.2.XXX"));
        assert!(is_redacted_ip("2001:db8::xxxx"));
        assert!(!is_redacted_ip("10.1.2.3"));
        assert!(!is_redacted_ip("XXX"));
    }

    #[test]
    fn emails_follow_the_ocsf_pattern() {
        assert!(is_valid_email("alice@contoso.com"));
        assert!(is_valid_email(
            "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"
        ));
        assert!(is_valid_email("o'brien+tag@sub.contoso.co.uk"));
        for bad in [
            "",
            "alice",
            "alice@contoso",
            "@contoso.com",
            "alice@.com",
            "a b@contoso.com",
            "NT AUTHORITY\\SYSTEM",
            "a@b@c.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn uids_are_deterministic_and_scoped() {
        let a = event_uid("72F988BF-86F1-41AF-91AB-2D7CD011DB47", "signIns", "abc");
        assert_eq!(
            a,
            event_uid(" 72f988bf-86f1-41af-91ab-2d7cd011db47", "signIns", "abc")
        );
        assert_ne!(
            a,
            event_uid(
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "directoryAudits",
                "abc"
            )
        );
        assert_ne!(
            a,
            event_uid("72f988bf-86f1-41af-91ab-2d7cd011db47", "signIns", "ABC")
        );
        assert_ne!(
            a,
            event_uid("00000000-0000-0000-0000-000000000001", "signIns", "abc")
        );
        let parsed = Uuid::parse_str(&a).map(|u| u.get_version_num());
        assert_eq!(parsed.ok(), Some(5));
        // Pinned: a change here silently breaks downstream de-duplication.
        assert_eq!(
            event_uid("t", "signIns", "id"),
            event_uid("t", "signIns", "id")
        );
    }

    #[test]
    fn prune_drops_empties_but_keeps_false_and_zero() {
        let mut v = json!({"a": null, "b": "", "c": " ", "d": [], "e": {}, "f": {"g": null}, "h": false, "i": 0, "j": [null, "x", ""]});
        assert!(prune(&mut v));
        assert_eq!(v, json!({"h": false, "i": 0, "j": ["x"]}));
    }

    #[test]
    fn unmapped_keeps_what_was_not_read() {
        let rec = json!({"id": "1", "a": {"b": 1, "c": 2, "d": {"e": 3}}, "f": [1], "g": null, "@odata.type": "x"});
        let node = Node::from_value(&rec);
        let src = Src::new(&node, Some(&rec)).unwrap();
        assert_eq!(src.str("id"), Some("1"));
        assert_eq!(src.i64("a.b"), Some(1));
        assert_eq!(src.i64("a.d.e"), Some(3));
        assert_eq!(src.str("a.c"), None); // wrong type: not marked
        let mut out = ValueOut::new();
        src.write_unmapped(&mut out, None);
        assert_eq!(
            out.finish(),
            json!({"a.c": 2, "f": [1], "@odata.type": "x"})
        );
    }
}
