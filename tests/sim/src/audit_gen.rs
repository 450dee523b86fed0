//! The Unified Audit Log the Management Activity API serves: deterministic blobs of records
//! per (tenant, content type, hour of availability).
//!
//! A blob becomes available at its `contentCreated` (and listable a little later, the listing
//! lag). Its records are events that happened before, each after its own delay (minutes for
//! most, hours for a tail, up to a day for Entra ID), in no particular order: a later blob can
//! hold older events than an earlier one. A few records are repeated in the next blob, as
//! Microsoft does; they have the same `Id`. Records are kept compact (time, seed, kind) and
//! rendered to JSON from their own seed when a blob is served.
//!
//! The records are realistic in shape (the Management Activity schema and real exports):
//! Exchange admin cmdlets with `Parameters`, mailbox audit records (`MailItemsAccessed`, `Send`,
//! Outlook's `UpdateInboxRules`), Entra ID STS logons and directory changes, Power Automate,
//! Teams, Forms, Power BI, Copilot and SharePoint file activity; malicious inbox rules, external
//! forwarding and suspicious consents among many benign records.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{DelayModel, guid_from, stable_guid};
use crate::generator::{GroundTruthStream, TenantModel, TruthEvent, User};

const HOUR_MS: i64 = 3_600_000;

/// A Management Activity content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Ct {
    Exchange,
    Aad,
    General,
    SharePoint,
}

impl Ct {
    pub(crate) const ALL: [Ct; 4] = [Ct::Exchange, Ct::Aad, Ct::General, Ct::SharePoint];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Ct::Exchange => "Audit.Exchange",
            Ct::Aad => "Audit.AzureActiveDirectory",
            Ct::General => "Audit.General",
            Ct::SharePoint => "Audit.SharePoint",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Ct> {
        Ct::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }

    pub(crate) fn from_truth(s: GroundTruthStream) -> Option<Ct> {
        match s {
            GroundTruthStream::AuditExchange => Some(Ct::Exchange),
            GroundTruthStream::AuditAzureActiveDirectory => Some(Ct::Aad),
            GroundTruthStream::AuditGeneral => Some(Ct::General),
            GroundTruthStream::AuditSharePoint => Some(Ct::SharePoint),
            GroundTruthStream::SignIns | GroundTruthStream::DirectoryAudits => None,
        }
    }

    fn truth(self) -> GroundTruthStream {
        match self {
            Ct::Exchange => GroundTruthStream::AuditExchange,
            Ct::Aad => GroundTruthStream::AuditAzureActiveDirectory,
            Ct::General => GroundTruthStream::AuditGeneral,
            Ct::SharePoint => GroundTruthStream::AuditSharePoint,
        }
    }

    /// The short code in content ids.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Ct::Exchange => "audit_exchange",
            Ct::Aad => "audit_azureactivedirectory",
            Ct::General => "audit_general",
            Ct::SharePoint => "audit_sharepoint",
        }
    }

    pub(crate) fn from_code(s: &str) -> Option<Ct> {
        Ct::ALL.into_iter().find(|c| c.code() == s)
    }

    fn seed_byte(self) -> u8 {
        match self {
            Ct::Exchange => 31,
            Ct::Aad => 32,
            Ct::General => 33,
            Ct::SharePoint => 34,
        }
    }

    /// The operations of the content type, with weights.
    fn ops(self) -> &'static [(&'static str, u32)] {
        match self {
            Ct::Exchange => &EXCHANGE_OPS,
            Ct::Aad => &AAD_OPS,
            Ct::General => &GENERAL_OPS,
            Ct::SharePoint => &SHAREPOINT_OPS,
        }
    }

    /// Delay between an event and the blob that carries it.
    fn delay(self) -> DelayModel {
        let r = |w: f64, a: u64, b: u64| {
            (
                w,
                std::time::Duration::from_secs(a),
                std::time::Duration::from_secs(b),
            )
        };
        DelayModel {
            ranges: match self {
                Ct::Aad => vec![
                    r(0.70, 120, 3600),
                    r(0.25, 3600, 6 * 3600),
                    r(0.05, 6 * 3600, 24 * 3600),
                ],
                Ct::SharePoint => vec![r(0.9, 60, 1800), r(0.1, 1800, 7200)],
                Ct::Exchange | Ct::General => vec![
                    r(0.85, 60, 1800),
                    r(0.13, 1800, 3 * 3600),
                    r(0.02, 3 * 3600, 12 * 3600),
                ],
            },
        }
    }
}

/// Exchange operations (`kind` is the index). Names repeat where the same operation comes in
/// benign and malicious flavours.
const EXCHANGE_OPS: [(&str, u32); 26] = [
    ("MailItemsAccessed", 400),
    ("Send", 120),
    ("MoveToDeletedItems", 80),
    ("SoftDelete", 30),
    ("MailboxLogin", 60),
    ("New-InboxRule", 30),
    ("New-InboxRule", 6), // malicious: forward externally, delete, mark read
    ("Set-InboxRule", 12),
    ("Remove-InboxRule", 6),
    ("Enable-InboxRule", 3),
    ("Disable-InboxRule", 3),
    ("UpdateInboxRules", 10),
    ("UpdateInboxRules", 3), // malicious, from a stolen Outlook session
    ("Set-Mailbox", 4),      // forwarding to an external address
    ("Set-Mailbox", 8),
    ("Add-MailboxPermission", 6),
    ("Remove-MailboxPermission", 2),
    ("Add-RecipientPermission", 3),
    ("Set-MailboxFolderPermission", 4),
    ("Add-MailboxFolderPermission", 3),
    ("New-TransportRule", 2),
    ("Set-TransportRule", 2),
    ("Remove-TransportRule", 1),
    ("Set-CASMailbox", 5),
    ("New-ManagementRoleAssignment", 1),
    ("Update", 20),
];

const AAD_OPS: [(&str, u32); 13] = [
    ("UserLoggedIn", 700),
    ("UserLoginFailed", 120),
    ("Update user.", 50),
    ("Add member to group.", 20),
    ("Reset user password.", 8),
    ("Consent to application.", 8),
    ("Add delegated permission grant.", 6),
    ("Add app role assignment to service principal.", 4),
    ("Add service principal.", 4),
    ("Add service principal credentials.", 4),
    ("Update application.", 5),
    ("Remove delegated permission grant.", 2),
    ("Add user.", 5),
];

const GENERAL_OPS: [(&str, u32); 9] = [
    ("CreateFlow", 20),
    ("EditFlow", 30),
    ("DeleteFlow", 5),
    ("PutPermissions", 5),
    ("MemberAdded", 40),
    ("TeamCreated", 5),
    ("ViewForm", 20),
    ("ViewReport", 20),
    ("CopilotInteraction", 10),
];

const SHAREPOINT_OPS: [(&str, u32); 6] = [
    ("FileAccessed", 100),
    ("FileModified", 40),
    ("FileDownloaded", 30),
    ("FileUploaded", 20),
    ("SharingSet", 5),
    ("AnonymousLinkCreated", 2),
];

/// One record in compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rec {
    /// Event time, ms since the epoch.
    pub event_ms: i64,
    /// Seed of everything else.
    pub seed: u64,
    /// Index into the content type's operations.
    pub kind: u16,
}

/// One content blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blob {
    /// `contentCreated`, ms since the epoch.
    pub created_ms: i64,
    /// Seconds after `contentCreated` before listings show it.
    pub lag_s: u32,
    /// Position in its hour.
    pub idx: u32,
    /// Records, in blob order (not time order); a few repeat a record of the previous blob.
    pub records: Vec<Rec>,
}

impl Blob {
    pub(crate) fn listable_ms(&self) -> i64 {
        self.created_ms + i64::from(self.lag_s) * 1000
    }
}

type Key = (usize, Ct, i64);

/// Generates and caches the blobs of every tenant.
#[derive(Debug, Default)]
pub(crate) struct AuditGen {
    cache: Mutex<HashMap<Key, Arc<Vec<Blob>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn hour_of_ms(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

pub(crate) fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl AuditGen {
    /// The blobs that became available in `hour` (hours since the epoch), by `contentCreated`.
    pub(crate) fn blobs(
        &self,
        model: &TenantModel,
        t: usize,
        ct: Ct,
        hour: i64,
        lag: &DelayModel,
    ) -> Arc<Vec<Blob>> {
        let key = (t, ct, hour);
        if let Some(b) = lock(&self.cache).get(&key) {
            return b.clone();
        }
        let b = Arc::new(generate(model, ct, hour, lag));
        lock(&self.cache).entry(key).or_insert(b).clone()
    }

    /// Every record of `ct` in blobs created in `[from, until]`, once each (the first blob
    /// that carries it), newest event first.
    pub(crate) fn truth(
        &self,
        model: &TenantModel,
        t: usize,
        ct: Ct,
        from_ms: i64,
        until: DateTime<Utc>,
        lag: &DelayModel,
    ) -> Vec<TruthEvent> {
        let until_ms = until.timestamp_millis();
        let mut out = Vec::new();
        let mut hour = hour_of_ms(from_ms);
        while hour <= hour_of_ms(until_ms) {
            let mut seen = HashSet::new();
            for b in self.blobs(model, t, ct, hour, lag).iter() {
                if b.created_ms < from_ms || b.created_ms > until_ms {
                    continue;
                }
                for r in &b.records {
                    if !seen.insert(r.seed) {
                        continue;
                    }
                    out.push(TruthEvent {
                        id: record_id(r.seed),
                        stream: ct.truth(),
                        event_type: ct.ops()[usize::from(r.kind) % ct.ops().len()].0.to_string(),
                        event_time: ms_to_time(r.event_ms),
                        visible_at: ms_to_time(b.listable_ms()),
                        content_created: Some(ms_to_time(b.created_ms)),
                    });
                }
            }
            hour += 1;
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.event_time));
        out
    }
}

fn rate(model: &TenantModel, ct: Ct) -> f64 {
    let s = &model.spec;
    match ct {
        Ct::Exchange => s.exchange_per_hour,
        Ct::Aad => s
            .aad_per_hour
            .unwrap_or(0.3 * s.signins_per_hour + s.audits_per_hour),
        Ct::General => s.general_per_hour,
        Ct::SharePoint => s.sharepoint_per_hour,
    }
    .max(0.0)
}

fn pick_kind<R: Rng>(rng: &mut R, ops: &[(&str, u32)]) -> u16 {
    let total: u32 = ops.iter().map(|o| o.1).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, (_, w)) in ops.iter().enumerate() {
        if x < *w {
            return u16::try_from(i).unwrap_or(0);
        }
        x -= w;
    }
    0
}

fn generate(model: &TenantModel, ct: Ct, hour: i64, lag: &DelayModel) -> Vec<Blob> {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(model.salt)
        .chain_update([ct.seed_byte()])
        .chain_update(hour.to_le_bytes())
        .finalize()
        .into();
    let mut rng = ChaCha8Rng::from_seed(seed);
    let start = ms_to_time(hour * HOUR_MS);
    let local = (i64::from(start.hour()) + (model.home.lon / 15.0).round() as i64).rem_euclid(24);
    let mut factor = match local {
        8..=17 => 1.6,
        6..=7 | 18..=21 => 0.8,
        _ => 0.35,
    };
    if start.weekday().num_days_from_monday() >= 5 {
        factor *= 0.4;
    }
    let mean = rate(model, ct) * factor * rng.random_range(0.8..1.2);
    let n = mean.floor() as usize + usize::from(rng.random_bool(mean.fract().clamp(0.0, 1.0)));
    if n == 0 {
        return Vec::new();
    }
    let nb = (n / 25).clamp(1, 40);
    let mut created: Vec<i64> = (0..nb)
        .map(|_| hour * HOUR_MS + rng.random_range(0..HOUR_MS))
        .collect();
    created.sort_unstable();
    let mut blobs: Vec<Blob> = created
        .into_iter()
        .enumerate()
        .map(|(i, c)| Blob {
            created_ms: c,
            lag_s: lag.sample(&mut rng),
            idx: u32::try_from(i).unwrap_or(0),
            records: Vec::new(),
        })
        .collect();
    let delay = ct.delay();
    for _ in 0..n {
        let b = rng.random_range(0..nb);
        let d_ms = i64::from(delay.sample(&mut rng)) * 1000 + rng.random_range(0..1000);
        let rec = Rec {
            event_ms: blobs[b].created_ms - d_ms,
            seed: rng.next_u64(),
            kind: pick_kind(&mut rng, ct.ops()),
        };
        blobs[b].records.push(rec);
        // Now and then Microsoft lists a record again in the next blob.
        if b + 1 < nb && rng.random_bool(0.004) {
            blobs[b + 1].records.push(rec);
        }
    }
    blobs
}

/// The record `Id` of a seed.
pub(crate) fn record_id(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    guid_from(rng.random()).to_string()
}

/// `CreationTime`: UTC without a zone suffix, whole seconds.
fn creation_time(ms: i64) -> String {
    ms_to_time(ms).format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn puid<R: Rng>(rng: &mut R) -> String {
    format!("10032{:011X}", rng.random_range(0..0xFFF_FFFF_FFFFu64))
}

fn server<R: Rng>(rng: &mut R, model: &TenantModel) -> String {
    let region = match model.spec.cloud {
        itdr_shared::Cloud::GccHigh | itdr_shared::Cloud::Dod => "BN1GCC",
        _ => ["AM0PR", "DB9PR", "BY5PR", "SA1PR"][rng.random_range(0..4)],
    };
    format!(
        "{region}{:02}MB{:04} (15.20.{}.{:03})",
        rng.random_range(1..99),
        rng.random_range(1000..9999),
        rng.random_range(6000..8500),
        rng.random_range(1..40)
    )
}

/// An address the sign-in or action came from: mostly the office, sometimes home, now and
/// then a hostile one (for the malicious records, always).
fn client_ip<R: Rng>(rng: &mut R, model: &TenantModel, hostile: bool) -> String {
    if hostile {
        return format!("185.220.101.{}", rng.random_range(1..=254));
    }
    match rng.random_range(0..10) {
        0..=5 => model.office_ip(rng),
        6 => format!(
            "2001:db8:{:x}::{:x}",
            rng.random_range(1..0xffffu32),
            rng.random_range(1..0xffffu32)
        ),
        _ => format!("198.51.100.{}", rng.random_range(1..=254)),
    }
}

fn people(model: &TenantModel) -> Vec<&User> {
    let v: Vec<&User> = model
        .users
        .iter()
        .filter(|u| !u.guest && !u.service)
        .collect();
    if v.is_empty() {
        model.users.iter().collect()
    } else {
        v
    }
}

fn nv(name: &str, value: impl Into<Value>) -> Value {
    json!({ "Name": name, "Value": value.into() })
}

fn external_address<R: Rng>(rng: &mut R) -> String {
    let who = [
        "exfil",
        "invoices",
        "billing.update",
        "ceo.office",
        "mailbox.sync",
    ];
    let dom = ["evil.example", "mail-relay.example", "freemail.example"];
    format!(
        "{}{}@{}",
        who[rng.random_range(0..who.len())],
        rng.random_range(1..99),
        dom[rng.random_range(0..dom.len())]
    )
}

/// The common fields of every record.
// The common fields of every generated record, each an independent input.
#[allow(clippy::too_many_arguments)]
fn base<R: Rng>(
    rng: &mut R,
    model: &TenantModel,
    rec: &Rec,
    op: &str,
    record_type: u32,
    workload: &str,
    user: &User,
    user_type: u32,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("CreationTime".into(), json!(creation_time(rec.event_ms)));
    m.insert("Id".into(), json!(record_id(rec.seed)));
    m.insert("Operation".into(), json!(op));
    m.insert("OrganizationId".into(), json!(model.spec.tenant_id));
    m.insert("RecordType".into(), json!(record_type));
    m.insert("UserKey".into(), json!(puid(rng)));
    m.insert("UserType".into(), json!(user_type));
    m.insert("Version".into(), json!(1));
    m.insert("Workload".into(), json!(workload));
    m.insert("UserId".into(), json!(user.signin_upn));
    m
}

/// Renders one record of `ct` (see the module docs).
pub(crate) fn render(model: &TenantModel, ct: Ct, rec: &Rec) -> Value {
    let mut rng = ChaCha8Rng::seed_from_u64(rec.seed);
    let _id_bytes: [u8; 16] = rng.random(); // the record id's bytes (see `record_id`)
    let ops = ct.ops();
    let kind = usize::from(rec.kind) % ops.len();
    let op = ops[kind].0;
    let users = people(model);
    let user = *users.choose(&mut rng).unwrap_or(&&model.users[0]);
    let admin = *model
        .users
        .iter()
        .filter(|u| u.admin)
        .collect::<Vec<_>>()
        .choose(&mut rng)
        .unwrap_or(&user);
    let v = match ct {
        Ct::Exchange => exchange(&mut rng, model, rec, kind, op, user, admin),
        Ct::Aad => aad(&mut rng, model, rec, kind, op, user, admin),
        Ct::General => general(&mut rng, model, rec, op, user),
        Ct::SharePoint => sharepoint(&mut rng, model, rec, op, user),
    };
    Value::Object(v)
}

#[allow(clippy::too_many_arguments)]
fn exchange<R: Rng>(
    rng: &mut R,
    model: &TenantModel,
    rec: &Rec,
    kind: usize,
    op: &str,
    user: &User,
    admin: &User,
) -> serde_json::Map<String, Value> {
    let org = model.spec.domain.clone();
    let mailbox_guid = stable_guid(&format!("{}/mbx/{}", model.spec.tenant_id, user.id));
    let session = guid_from(rng.random()).to_string();
    let malicious = matches!(kind, 6 | 12 | 13);
    let mailbox_record = matches!(kind, 0..=4 | 11 | 12 | 25);
    if mailbox_record {
        let record_type = match kind {
            0 => 50,
            2 | 3 => 3,
            _ => 2,
        };
        let mut m = base(rng, model, rec, op, record_type, "Exchange", user, 0);
        m.insert("ResultStatus".into(), json!("Succeeded"));
        let ip = client_ip(rng, model, malicious);
        m.insert("ClientIPAddress".into(), json!(ip));
        let client = [
            "Client=OWA;Action=ViaProxy",
            "Client=MSExchangeRPC",
            "Client=REST;Client=RESTSystem;;",
            "Client=OutlookService;Outlook-iOS/2.0;",
        ][rng.random_range(0..4)];
        m.insert("ClientInfoString".into(), json!(client));
        m.insert("ExternalAccess".into(), json!(false));
        m.insert("InternalLogonType".into(), json!(0));
        m.insert("LogonType".into(), json!(0));
        m.insert(
            "LogonUserSid".into(),
            json!(format!(
                "S-1-5-21-{}",
                rng.random_range(100_000_000..999_999_999u64)
            )),
        );
        m.insert("MailboxGuid".into(), json!(mailbox_guid));
        m.insert("MailboxOwnerUPN".into(), json!(user.signin_upn));
        m.insert("OrganizationName".into(), json!(org));
        m.insert("OriginatingServer".into(), json!(server(rng, model)));
        m.insert("SessionId".into(), json!(session));
        m.insert(
            "AppId".into(),
            json!("00000002-0000-0ff1-ce00-000000000000"),
        );
        m.insert("ClientAppId".into(), json!(""));
        let msg_id = |rng: &mut R| {
            format!(
                "<{}@{}.prod.outlook.com>",
                guid_from(rng.random()).simple(),
                ["AM0PR01MB", "DB9PR04MB", "SA1PR12MB"][rng.random_range(0..3)]
            )
        };
        match kind {
            0 => {
                let bind = rng.random_bool(0.8);
                m.insert(
                    "OperationProperties".into(),
                    json!([
                        nv("MailAccessType", if bind { "Bind" } else { "Sync" }),
                        nv("IsThrottled", "False")
                    ]),
                );
                let items: Vec<Value> = (0..rng.random_range(1..6))
                    .map(|_| json!({"InternetMessageId": msg_id(rng), "SizeInBytes": rng.random_range(2_000..400_000)}))
                    .collect();
                m.insert("OperationCount".into(), json!(items.len()));
                let path = ["\\Inbox", "\\Sent Items", "\\Archive"][rng.random_range(0..3)];
                let folder_id = format!("LgAAAA{}", guid_from(rng.random()).simple());
                m.insert(
                    "Folders".into(),
                    json!([{"FolderItems": items, "Id": folder_id, "Path": path}]),
                );
            }
            1 | 25 => {
                m.insert(
                    "Item".into(),
                    json!({"Id": format!("RgAAAA{}", guid_from(rng.random()).simple()), "InternetMessageId": msg_id(rng),
                           "ParentFolder": {"Id": format!("LgAAAA{}", guid_from(rng.random()).simple()), "Path": if kind == 1 { "\\Sent Items" } else { "\\Inbox" }},
                           "SizeInBytes": rng.random_range(2_000..200_000)}),
                );
            }
            2 | 3 => {
                m.insert(
                    "Folder".into(),
                    json!({"Id": format!("LgAAAA{}", guid_from(rng.random()).simple()), "Path": "\\Inbox"}),
                );
                let items: Vec<Value> = (0..rng.random_range(1..4))
                    .map(|_| json!({"Id": format!("RgAAAA{}", guid_from(rng.random()).simple()), "InternetMessageId": msg_id(rng), "ParentFolder": {"Path": "\\Inbox"}}))
                    .collect();
                m.insert("AffectedItems".into(), json!(items));
            }
            11 | 12 => {
                let (name, actions, condition) = if malicious {
                    (
                        ".",
                        json!([{"ActionType": "Forward", "Recipients": [external_address(rng)]}, {"ActionType": "Delete"}, {"ActionType": "MarkAsRead"}]),
                        json!({"Type": "OrCondition", "SubConditions": [{"Type": "SubjectContains", "Words": ["invoice", "payment", "wire"]}]}),
                    )
                } else {
                    (
                        "Newsletters",
                        json!([{"ActionType": "MoveToFolder", "FolderName": "Newsletters"}]),
                        json!({"Type": "FromContains", "Words": ["newsletter@"]}),
                    )
                };
                m.insert(
                    "OperationProperties".into(),
                    json!([
                        nv("RuleName", name),
                        nv(
                            "RuleId",
                            format!("{}", rng.random_range(1_000_000_000u64..9_999_999_999))
                        ),
                        nv(
                            "RuleOperation",
                            ["AddMailboxRule", "ModifyMailboxRule"]
                                [usize::from(rng.random_bool(0.2))]
                        ),
                        nv("RuleState", "Enabled"),
                        nv("RuleActions", actions.to_string()),
                        nv("RuleCondition", condition.to_string()),
                    ]),
                );
            }
            _ => {}
        }
        return m;
    }
    // Exchange admin cmdlets (RecordType 1).
    let actor = if matches!(kind, 5..=10 | 13) {
        user
    } else {
        admin
    };
    let user_type = if actor.admin { 2 } else { 0 };
    let mut m = base(rng, model, rec, op, 1, "Exchange", actor, user_type);
    m.insert(
        "ResultStatus".into(),
        json!(if rng.random_bool(0.02) {
            "False"
        } else {
            "True"
        }),
    );
    let ip = client_ip(rng, model, malicious);
    let with_port = if ip.contains(':') {
        format!("[{ip}]:{}", rng.random_range(1024..65535))
    } else {
        format!("{ip}:{}", rng.random_range(1024..65535))
    };
    m.insert("ClientIP".into(), json!(with_port));
    m.insert(
        "AppId".into(),
        json!("00000002-0000-0ff1-ce00-000000000000"),
    );
    m.insert("ClientAppId".into(), json!(""));
    m.insert("ExternalAccess".into(), json!(false));
    m.insert("OrganizationName".into(), json!(org));
    m.insert("OriginatingServer".into(), json!(server(rng, model)));
    m.insert("SessionId".into(), json!(session));
    let victim = user;
    let hosted = format!(
        "{}.PROD.OUTLOOK.COM/Microsoft Exchange Hosted Organizations/{org}/{}",
        ["APCPR03A010", "EURPR01A002", "NAMPR12A005"][rng.random_range(0..3)],
        stable_guid(&format!("{}/obj/{}", model.spec.tenant_id, victim.id))
    );
    let other = external_address(rng);
    let peer = model.users[rng.random_range(0..model.users.len())]
        .signin_upn
        .clone();
    let (object, params) = match kind {
        5 => (
            format!("{hosted}\\Newsletters"),
            json!([
                nv("AlwaysDeleteOutlookRulesBlob", "False"),
                nv("Force", "False"),
                nv("Name", "Newsletters"),
                nv("FromAddressContainsWords", "newsletter;digest"),
                nv("MoveToFolder", "Newsletters"),
                nv("StopProcessingRules", "False")
            ]),
        ),
        6 => {
            let name = [".", "..", "RSS", "Clean"][rng.random_range(0..4)];
            (
                format!("{hosted}\\{name}"),
                json!([
                    nv("AlwaysDeleteOutlookRulesBlob", "False"),
                    nv("Force", "False"),
                    nv("Name", name),
                    nv(
                        "SubjectOrBodyContainsWords",
                        "invoice;payment;wire transfer;password"
                    ),
                    nv("ForwardTo", other.clone()),
                    nv("DeleteMessage", "True"),
                    nv("MarkAsRead", "True"),
                    nv("StopProcessingRules", "True")
                ]),
            )
        }
        7 => (
            format!("{hosted}\\Newsletters"),
            json!([
                nv("Identity", format!("{}\\Newsletters", victim.signin_upn)),
                nv("MoveToFolder", "Reading"),
                nv("MarkImportance", "Low")
            ]),
        ),
        8..=10 => (
            format!("{hosted}\\Newsletters"),
            json!([
                nv("Identity", format!("{}\\Newsletters", victim.signin_upn)),
                nv("Confirm", "False")
            ]),
        ),
        13 => (
            victim.signin_upn.clone(),
            json!([
                nv("Identity", victim.signin_upn.clone()),
                nv("ForwardingSmtpAddress", format!("smtp:{other}")),
                nv("DeliverToMailboxAndForward", "False")
            ]),
        ),
        14 => (
            victim.signin_upn.clone(),
            json!([
                nv("Identity", victim.signin_upn.clone()),
                nv("RetainDeletedItemsFor", "30.00:00:00"),
                nv("LitigationHoldEnabled", "False")
            ]),
        ),
        15 | 16 => (
            victim.signin_upn.clone(),
            json!([
                nv("Identity", victim.signin_upn.clone()),
                nv("User", peer.clone()),
                nv("AccessRights", "FullAccess"),
                nv("InheritanceType", "All")
            ]),
        ),
        17 => (
            victim.signin_upn.clone(),
            json!([
                nv("Identity", victim.signin_upn.clone()),
                nv("Trustee", peer.clone()),
                nv("AccessRights", "SendAs"),
                nv("Confirm", "False")
            ]),
        ),
        18 | 19 => (
            format!("{}:\\Calendar", victim.signin_upn),
            json!([
                nv("Identity", format!("{}:\\Calendar", victim.signin_upn)),
                nv("User", peer.clone()),
                nv(
                    "AccessRights",
                    ["Editor", "Reviewer", "Author"][rng.random_range(0..3)]
                )
            ]),
        ),
        20 => (
            "Route finance mail".to_string(),
            json!([
                nv("Name", "Route finance mail"),
                nv("SentToScope", "InOrganization"),
                nv("SubjectContainsWords", "invoice"),
                nv("BlindCopyTo", other.clone()),
                nv("StopRuleProcessing", "False"),
                nv("Mode", "Enforce")
            ]),
        ),
        21 => (
            "Disclaimer".to_string(),
            json!([
                nv("Identity", "Disclaimer"),
                nv("ApplyHtmlDisclaimerText", "Confidential"),
                nv("FromScope", "InOrganization")
            ]),
        ),
        22 => (
            "Old rule".to_string(),
            json!([nv("Identity", "Old rule"), nv("Confirm", "False")]),
        ),
        23 => (
            victim.signin_upn.clone(),
            json!([
                nv("Identity", victim.signin_upn.clone()),
                nv("ImapEnabled", "False"),
                nv("PopEnabled", "False")
            ]),
        ),
        _ => (
            "Helpdesk mailbox search".to_string(),
            json!([
                nv("Role", "Mailbox Search"),
                nv("User", admin.signin_upn.clone())
            ]),
        ),
    };
    m.insert("ObjectId".into(), json!(object));
    m.insert("Parameters".into(), params);
    m
}

#[allow(clippy::too_many_arguments)]
fn aad<R: Rng>(
    rng: &mut R,
    model: &TenantModel,
    rec: &Rec,
    kind: usize,
    op: &str,
    user: &User,
    admin: &User,
) -> serde_json::Map<String, Value> {
    let tenant = &model.spec.tenant_id;
    if kind <= 1 {
        let failed = kind == 1;
        let hostile = rng.random_bool(if failed { 0.3 } else { 0.02 });
        let mut m = base(rng, model, rec, op, 15, "AzureActiveDirectory", user, 0);
        m.insert("UserKey".into(), json!(user.id));
        m.insert(
            "ResultStatus".into(),
            json!(if failed { "Failed" } else { "Success" }),
        );
        let ip = client_ip(rng, model, hostile);
        m.insert("ClientIP".into(), json!(ip));
        m.insert("ActorIpAddress".into(), json!(ip));
        let (resource, app) = [
            (
                "00000003-0000-0000-c000-000000000000",
                "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
            ),
            (
                "00000002-0000-0ff1-ce00-000000000000",
                "00000002-0000-0ff1-ce00-000000000000",
            ),
            (
                "00000003-0000-0ff1-ce00-000000000000",
                "d3590ed6-52b3-4102-aeff-aad2292ab01c",
            ),
            (
                "797f4846-ba00-4fd7-ba43-dac1f8f63013",
                "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
            ),
        ][rng.random_range(0..4)];
        m.insert("ObjectId".into(), json!(resource));
        m.insert("ApplicationId".into(), json!(app));
        m.insert("AzureActiveDirectoryEventType".into(), json!(1));
        let ua = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "python-requests/2.31.0",
        ][if hostile { 3 } else { rng.random_range(0..3) }];
        m.insert(
            "ExtendedProperties".into(),
            json!([
                nv(
                    "ResultStatusDetail",
                    if failed { "Success" } else { "Redirect" }
                ),
                nv("UserAgent", ua),
                nv(
                    "RequestType",
                    [
                        "OAuth2:Authorize",
                        "Login:login",
                        "OAuth2:Token",
                        "SAS:ProcessAuth"
                    ][rng.random_range(0..4)]
                )
            ]),
        );
        m.insert("ModifiedProperties".into(), json!([]));
        m.insert(
            "Actor".into(),
            json!([{"ID": user.id, "Type": 0}, {"ID": user.signin_upn, "Type": 5}]),
        );
        m.insert("ActorContextId".into(), json!(tenant));
        m.insert(
            "InterSystemsId".into(),
            json!(guid_from(rng.random()).to_string()),
        );
        m.insert(
            "IntraSystemId".into(),
            json!(guid_from(rng.random()).to_string()),
        );
        m.insert("SupportTicketId".into(), json!(""));
        m.insert("Target".into(), json!([{"ID": resource, "Type": 0}]));
        m.insert("TargetContextId".into(), json!(tenant));
        let mut device = vec![
            nv(
                "OS",
                ["Windows10", "MacOs", "Ios", "Android"][rng.random_range(0..4)],
            ),
            nv(
                "BrowserType",
                ["Edge", "Chrome", "Safari"][rng.random_range(0..3)],
            ),
            nv("SessionId", guid_from(rng.random()).to_string()),
        ];
        if !hostile && rng.random_bool(0.5) {
            device.insert(0, nv("Id", guid_from(rng.random()).to_string()));
            device.insert(
                1,
                nv(
                    "DisplayName",
                    format!("PC-{:04}", rng.random_range(0..10000)),
                ),
            );
            device.push(nv("IsCompliant", "True"));
            device.push(nv("IsCompliantAndManaged", "True"));
            device.push(nv("TrustType", "1"));
        }
        m.insert("DeviceProperties".into(), Value::Array(device));
        if failed {
            let (code, err) = [
                ("50126", "InvalidUserNameOrPassword"),
                ("50074", "UserStrongAuthClientAuthNRequiredInterrupt"),
                ("50053", "IdsLocked"),
                ("53003", "BlockedByConditionalAccess"),
            ][if hostile {
                rng.random_range(0..2) * 2
            } else {
                rng.random_range(0..4)
            }];
            m.insert("ErrorNumber".into(), json!(code));
            m.insert("LogonError".into(), json!(err));
        } else {
            m.insert("ErrorNumber".into(), json!("0"));
        }
        return m;
    }
    // Directory changes (RecordType 8).
    let mut m = base(rng, model, rec, op, 8, "AzureActiveDirectory", admin, 0);
    m.insert("ResultStatus".into(), json!("Success"));
    m.insert("AzureActiveDirectoryEventType".into(), json!(1));
    m.insert("ActorContextId".into(), json!(tenant));
    m.insert("TargetContextId".into(), json!(tenant));
    m.insert(
        "InterSystemsId".into(),
        json!(guid_from(rng.random()).to_string()),
    );
    m.insert(
        "IntraSystemId".into(),
        json!(guid_from(rng.random()).to_string()),
    );
    m.insert("SupportTicketId".into(), json!(""));
    m.insert(
        "Actor".into(),
        json!([{"ID": admin.signin_upn, "Type": 5}, {"ID": puid(rng), "Type": 3}, {"ID": format!("User_{}", admin.id), "Type": 2}, {"ID": admin.id, "Type": 2}, {"ID": "User", "Type": 2}]),
    );
    let wl = &model.workloads[rng.random_range(0..model.workloads.len())];
    let suspicious = rng.random_bool(0.25);
    let app_name = if suspicious { "Mail Sync Pro" } else { wl.name };
    let sp_id = if suspicious {
        stable_guid(&format!("{tenant}/rogue-sp/{}", rec.seed % 3))
    } else {
        wl.sp_id.clone()
    };
    let app_id = if suspicious {
        stable_guid(&format!("rogue-app/{}", rec.seed % 3))
    } else {
        wl.app_id.clone()
    };
    let sp_target = json!([{"ID": format!("ServicePrincipal_{sp_id}"), "Type": 2}, {"ID": sp_id, "Type": 2}, {"ID": "ServicePrincipal", "Type": 2}, {"ID": app_name, "Type": 1}, {"ID": app_id, "Type": 4}]);
    let user_target = json!([{"ID": format!("User_{}", user.id), "Type": 2}, {"ID": user.id, "Type": 2}, {"ID": "User", "Type": 2}, {"ID": user.signin_upn, "Type": 5}]);
    let prop =
        |name: &str, old: &str, new: &str| json!({"Name": name, "OldValue": old, "NewValue": new});
    let scopes = if suspicious {
        "Mail.ReadWrite Mail.Send offline_access User.Read"
    } else {
        "User.Read openid profile"
    };
    let (target, modified) = match kind {
        5 => (
            sp_target,
            json!([
                prop(
                    "ConsentContext.IsAdminConsent",
                    "",
                    if suspicious { "False" } else { "True" }
                ),
                prop("ConsentContext.OnBehalfOfAll", "", "False"),
                prop(
                    "ConsentAction.Permissions",
                    "",
                    &format!(
                        "[] => [[Id: {}, ClientId: {sp_id}, PrincipalId: {}, ResourceId: {}, ConsentType: Principal, Scope:  {scopes}, CreatedDateTime: , LastModifiedDateTime ]]; ",
                        guid_from(rng.random()),
                        user.id,
                        guid_from(rng.random())
                    )
                ),
                prop("TargetId.ServicePrincipalNames", "", &app_id)
            ]),
        ),
        6 | 11 => (
            sp_target,
            json!([
                prop("DelegatedPermissionGrant.Scope", "", scopes),
                prop("DelegatedPermissionGrant.ConsentType", "", "Principal")
            ]),
        ),
        7 => (
            sp_target,
            json!([
                prop(
                    "AppRole.Value",
                    "",
                    if suspicious {
                        "Mail.ReadWrite"
                    } else {
                        "User.Read.All"
                    }
                ),
                prop("AppRole.Id", "", &guid_from(rng.random()).to_string())
            ]),
        ),
        8..=10 => (
            sp_target,
            json!([
                prop(
                    "KeyDescription",
                    "[]",
                    &format!(
                        "[\"[KeyIdentifier={},KeyType=Password,KeyUsage=Verify,DisplayName=sync]\"]",
                        guid_from(rng.random())
                    )
                ),
                prop("Included Updated Properties", "", "KeyDescription")
            ]),
        ),
        _ => (
            user_target,
            json!([
                prop("Department", "[\"Sales\"]", "[\"Finance\"]"),
                prop("Included Updated Properties", "", "Department")
            ]),
        ),
    };
    m.insert(
        "ObjectId".into(),
        json!(if (5..=11).contains(&kind) {
            sp_id
        } else {
            user.signin_upn.clone()
        }),
    );
    m.insert("Target".into(), target);
    m.insert("ModifiedProperties".into(), modified);
    m.insert(
        "ExtendedProperties".into(),
        json!([
            nv("additionalDetails", "{}"),
            nv(
                "extendedAuditEventCategory",
                if (5..=11).contains(&kind) {
                    "ServicePrincipal"
                } else {
                    "User"
                }
            )
        ]),
    );
    m
}

fn general<R: Rng>(
    rng: &mut R,
    model: &TenantModel,
    rec: &Rec,
    op: &str,
    user: &User,
) -> serde_json::Map<String, Value> {
    let tenant = &model.spec.tenant_id;
    match op {
        "CreateFlow" | "EditFlow" | "DeleteFlow" | "PutPermissions" => {
            let mut m = base(rng, model, rec, op, 30, "MicrosoftFlow", user, 0);
            m.insert("ResultStatus".into(), json!("Succeeded"));
            let flow = stable_guid(&format!("{tenant}/flow/{}/{}", user.id, rec.seed % 4));
            m.insert("ObjectId".into(), json!(flow));
            let external = rng.random_bool(0.15);
            let connectors = if external {
                "Office 365 Outlook, Gmail, HTTP"
            } else {
                [
                    "Office 365 Outlook, Microsoft Forms",
                    "SharePoint, Approvals",
                    "Microsoft Teams",
                ][rng.random_range(0..3)]
            };
            m.insert("FlowConnectorNames".into(), json!(connectors));
            m.insert(
                "FlowDetailsUrl".into(),
                json!(format!("https://admin.powerplatform.microsoft.com/environments/Default-{tenant}/flows/{flow}/details")),
            );
            m.insert("LicenseDisplayName".into(), json!("Microsoft 365 E3"));
            m.insert(
                "RecipientUPN".into(),
                json!(if op == "PutPermissions" {
                    model.users[rng.random_range(0..model.users.len())]
                        .signin_upn
                        .clone()
                } else {
                    String::new()
                }),
            );
            m.insert(
                "SharingPermission".into(),
                json!(if op == "PutPermissions" { 2 } else { 0 }),
            );
            m.insert("UserTypeInitiated".into(), json!(1));
            m.insert("UserUPN".into(), json!(user.signin_upn));
            m
        }
        "MemberAdded" | "TeamCreated" => {
            let mut m = base(rng, model, rec, op, 25, "MicrosoftTeams", user, 0);
            m.insert("ResultStatus".into(), json!("Succeeded"));
            m.insert("ClientIP".into(), json!(client_ip(rng, model, false)));
            let team = ["Finance", "Project Falcon", "All Company"][rng.random_range(0..3)];
            m.insert("TeamName".into(), json!(team));
            m.insert(
                "TeamGuid".into(),
                json!(format!(
                    "19:{}@thread.tacv2",
                    guid_from(rng.random()).simple()
                )),
            );
            m.insert("CommunicationType".into(), json!("Team"));
            let peer = &model.users[rng.random_range(0..model.users.len())];
            m.insert(
                "Members".into(),
                json!([{"DisplayName": peer.display, "Role": 1, "UPN": peer.signin_upn}]),
            );
            m
        }
        "ViewForm" => {
            let mut m = base(rng, model, rec, op, 66, "MicrosoftForms", user, 0);
            m.insert("ClientIP".into(), json!(client_ip(rng, model, false)));
            m.insert(
                "FormId".into(),
                json!(guid_from(rng.random()).simple().to_string()),
            );
            m.insert("FormName".into(), json!("Expense claim"));
            m.insert(
                "ObjectId".into(),
                json!(guid_from(rng.random()).to_string()),
            );
            m
        }
        "ViewReport" => {
            let mut m = base(rng, model, rec, op, 20, "PowerBI", user, 0);
            m.insert("ClientIP".into(), json!(client_ip(rng, model, false)));
            m.insert("Activity".into(), json!("ViewReport"));
            m.insert("ItemName".into(), json!("Sales overview"));
            m.insert(
                "ReportId".into(),
                json!(guid_from(rng.random()).to_string()),
            );
            m.insert("WorkSpaceName".into(), json!("Finance"));
            m.insert("IsSuccess".into(), json!(true));
            m
        }
        _ => {
            let mut m = base(rng, model, rec, op, 261, "Copilot", user, 0);
            m.insert("ClientIP".into(), json!(client_ip(rng, model, false)));
            m.insert(
                "CopilotEventData".into(),
                json!({"AppHost": "Outlook", "Contexts": [{"Id": guid_from(rng.random()).to_string(), "Type": "Email"}], "ThreadId": guid_from(rng.random()).to_string()}),
            );
            m
        }
    }
}

fn sharepoint<R: Rng>(
    rng: &mut R,
    model: &TenantModel,
    rec: &Rec,
    op: &str,
    user: &User,
) -> serde_json::Map<String, Value> {
    let mut m = base(rng, model, rec, op, 6, "SharePoint", user, 0);
    let site = format!(
        "https://{}.sharepoint.com/sites/{}",
        model.spec.domain.split('.').next().unwrap_or("contoso"),
        ["Finance", "HR", "Projects"][rng.random_range(0..3)]
    );
    let file = [
        "Budget 2026.xlsx",
        "Offer letter.docx",
        "Roadmap.pptx",
        "Passwords.txt",
    ][rng.random_range(0..4)];
    m.insert("ClientIP".into(), json!(client_ip(rng, model, false)));
    m.insert(
        "ObjectId".into(),
        json!(format!("{site}/Shared Documents/{file}")),
    );
    m.insert("SiteUrl".into(), json!(format!("{site}/")));
    m.insert("SourceFileName".into(), json!(file));
    m.insert("SourceRelativeUrl".into(), json!("Shared Documents"));
    m.insert("ItemType".into(), json!("File"));
    m.insert("EventSource".into(), json!("SharePoint"));
    m.insert(
        "UserAgent".into(),
        json!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantSpec;
    use crate::generator::Generator;
    use itdr_shared::Cloud;

    #[test]
    fn blobs_are_deterministic_sorted_and_carry_older_events_out_of_order() {
        let spec = TenantSpec::new(0, Cloud::Global);
        let g = Generator::new(7, &[spec], DelayModel::default(), DateTime::UNIX_EPOCH);
        let a = AuditGen::default();
        let b = AuditGen::default();
        let lag = DelayModel::none();
        let hour = 493_000;
        let x = a.blobs(&g.tenants[0], 0, Ct::Aad, hour, &lag);
        assert_eq!(x, b.blobs(&g.tenants[0], 0, Ct::Aad, hour, &lag));
        assert!(!x.is_empty());
        assert!(x.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
        for blob in x.iter() {
            assert_eq!(hour_of_ms(blob.created_ms), hour);
            assert!(blob.records.iter().all(|r| r.event_ms < blob.created_ms));
        }
        // Some record is older than one in an earlier blob: late content, out of order.
        let all: Vec<(i64, i64)> = (hour..hour + 6)
            .flat_map(|h| {
                a.blobs(&g.tenants[0], 0, Ct::Aad, h, &lag)
                    .iter()
                    .flat_map(|b| {
                        b.records
                            .iter()
                            .map(|r| (b.created_ms, r.event_ms))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let out_of_order = all.windows(2).any(|w| w[1].1 < w[0].1);
        assert!(out_of_order);
    }

    #[test]
    fn every_operation_renders_a_record_with_id_and_time() {
        let spec = TenantSpec::new(3, Cloud::GccHigh);
        let g = Generator::new(9, &[spec], DelayModel::default(), DateTime::UNIX_EPOCH);
        for ct in Ct::ALL {
            for kind in 0..ct.ops().len() {
                let rec = Rec {
                    event_ms: 1_780_000_000_000,
                    seed: 42 + kind as u64,
                    kind: u16::try_from(kind).unwrap_or(0),
                };
                let v = render(&g.tenants[0], ct, &rec);
                assert_eq!(v["Id"], json!(record_id(rec.seed)), "{ct:?} {kind}");
                assert_eq!(v["Operation"], json!(ct.ops()[kind].0));
                assert_eq!(v["CreationTime"], "2026-05-28T20:26:40");
            }
        }
    }
}
