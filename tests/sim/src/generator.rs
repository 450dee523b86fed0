//! The deterministic event generator.
//!
//! Each tenant's directory (users, workloads, policies) is derived from the simulator seed and
//! the tenant id. Events are generated lazily per (tenant, stream, UTC hour) from a ChaCha8
//! stream seeded by those values, so the data never depends on the order of requests. An
//! event is kept as a [`CompactEvent`] (time, seed, delay, kind); its JSON is rendered from
//! the event's own seed only when it is served.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::catalog::{self, App, Place, Target};
use crate::config::{DelayModel, TenantSpec, guid_from, stable_guid};
use itdr_shared::Cloud;

/// 100-nanosecond ticks per second (the precision Graph renders timestamps with).
pub(crate) const TICKS_PER_SEC: i64 = 10_000_000;
const TICKS_PER_HOUR: i64 = 3600 * TICKS_PER_SEC;

/// The log streams the simulator serves: two Graph logs, and the Unified Audit Log by
/// Management Activity content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroundTruthStream {
    /// `/auditLogs/signIns`.
    SignIns,
    /// `/auditLogs/directoryAudits`.
    DirectoryAudits,
    /// Management Activity `Audit.Exchange`.
    AuditExchange,
    /// Management Activity `Audit.AzureActiveDirectory`.
    AuditAzureActiveDirectory,
    /// Management Activity `Audit.General`.
    AuditGeneral,
    /// Management Activity `Audit.SharePoint`.
    AuditSharePoint,
}

impl GroundTruthStream {
    /// The unified audit log's content types, in the order of their API names.
    pub const UNIFIED_AUDIT: [GroundTruthStream; 4] = [
        GroundTruthStream::AuditExchange,
        GroundTruthStream::AuditAzureActiveDirectory,
        GroundTruthStream::AuditGeneral,
        GroundTruthStream::AuditSharePoint,
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            GroundTruthStream::SignIns => 1,
            GroundTruthStream::DirectoryAudits => 2,
            GroundTruthStream::AuditExchange => 3,
            GroundTruthStream::AuditAzureActiveDirectory => 4,
            GroundTruthStream::AuditGeneral => 5,
            GroundTruthStream::AuditSharePoint => 6,
        }
    }

    /// The Management Activity content type, for the unified audit log's streams.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            GroundTruthStream::SignIns | GroundTruthStream::DirectoryAudits => None,
            GroundTruthStream::AuditExchange => Some("Audit.Exchange"),
            GroundTruthStream::AuditAzureActiveDirectory => Some("Audit.AzureActiveDirectory"),
            GroundTruthStream::AuditGeneral => Some("Audit.General"),
            GroundTruthStream::AuditSharePoint => Some("Audit.SharePoint"),
        }
    }
}

/// Sign-in event types, in the order of the `kind` byte of a sign-in [`CompactEvent`].
pub const SIGNIN_EVENT_TYPES: [&str; 4] = [
    "interactiveUser",
    "nonInteractiveUser",
    "servicePrincipal",
    "managedIdentity",
];

/// One generated event, as the ground truth knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthEvent {
    /// The record's `id` as served.
    pub id: String,
    /// Which stream it belongs to.
    pub stream: GroundTruthStream,
    /// Sign-ins: the `signInEventTypes` value; directory audits: the `activityDisplayName`.
    pub event_type: String,
    /// `createdDateTime` / `activityDateTime`, at 100 ns precision.
    pub event_time: DateTime<Utc>,
    /// When the event becomes visible: through Graph (event time plus ingestion delay), or in
    /// a Management Activity listing (its blob's `contentCreated` plus the listing lag).
    pub visible_at: DateTime<Utc>,
    /// Unified audit log: the `contentCreated` of the blob that carries the record, the axis
    /// the API windows on. `None` for Graph logs.
    pub content_created: Option<DateTime<Utc>>,
}

/// An event in compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactEvent {
    /// Event time in ticks since the Unix epoch.
    pub ticks: i64,
    /// Seed of everything else about the event.
    pub seed: u64,
    /// Ingestion delay in seconds.
    pub delay_s: u32,
    /// Sign-ins: index into [`SIGNIN_EVENT_TYPES`]; audits: index into `catalog::ACTIVITIES`.
    pub kind: u8,
}

impl CompactEvent {
    pub(crate) fn visible_ticks(&self) -> i64 {
        self.ticks + i64::from(self.delay_s) * TICKS_PER_SEC
    }
    /// The sort key (newest first = descending).
    pub(crate) fn key(&self) -> (i64, u64) {
        (self.ticks, self.seed)
    }
}

pub(crate) fn to_ticks(t: DateTime<Utc>) -> i64 {
    t.timestamp()
        .saturating_mul(TICKS_PER_SEC)
        .saturating_add(i64::from(t.timestamp_subsec_nanos() / 100))
}

pub(crate) fn from_ticks(ticks: i64) -> DateTime<Utc> {
    let secs = ticks.div_euclid(TICKS_PER_SEC);
    let sub = ticks.rem_euclid(TICKS_PER_SEC);
    DateTime::from_timestamp(secs, u32::try_from(sub * 100).unwrap_or(0)).unwrap_or_default()
}

/// Renders ticks the way Graph renders DateTimeOffset values: `2024-05-01T19:15:41.6195833Z`.
pub(crate) fn render_ticks(ticks: i64) -> String {
    let t = from_ticks(ticks);
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        ticks.rem_euclid(TICKS_PER_SEC)
    )
}

/// A user of a simulated directory.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub display: String,
    /// `userPrincipalName` in the directory (`#EXT#` form for guests).
    pub upn: String,
    /// The lowercase UPN sign-in logs carry (the home UPN for guests).
    pub signin_upn: String,
    pub guest: bool,
    pub service: bool,
    pub admin: bool,
    pub methods: Vec<&'static str>,
}

/// A workload identity (service principal or managed identity) of a tenant.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub name: &'static str,
    pub app_id: String,
    pub sp_id: String,
    pub managed: bool,
    pub resource: usize,
}

/// The generated, static part of a tenant.
#[derive(Debug)]
pub(crate) struct TenantModel {
    pub spec: TenantSpec,
    pub(crate) salt: [u8; 32],
    pub users: Vec<User>,
    pub home: Place,
    office_prefix: [u8; 3],
    pub workloads: Vec<Workload>,
    pub ca_policies: Vec<(String, &'static str)>,
    utc_offset_h: i64,
}

/// How busy a tenant is in the hour starting at `hour_start`, as a factor of its hourly rate:
/// 1.7 in business hours (08:00 to 17:59 local), 0.8 early and late (06:00 to 07:59, 18:00 to
/// 21:59), 0.3 at night; times 0.4 on Saturdays and Sundays (the UTC day). Before the
/// simulator's own ±20 % per hour.
pub fn activity_factor(hour_start: DateTime<Utc>, utc_offset_h: i64) -> f64 {
    let local_hour = (i64::from(hour_start.hour()) + utc_offset_h).rem_euclid(24);
    let factor = match local_hour {
        8..=17 => 1.7,
        6..=7 | 18..=21 => 0.8,
        _ => 0.3,
    };
    if hour_start.weekday().num_days_from_monday() >= 5 {
        factor * 0.4
    } else {
        factor
    }
}

/// The UTC offset (whole hours) of the home the simulator gives `spec` under `seed`: the
/// tenant's business hours, by which its event rates rise and fall. For models that must
/// generate the same daily shape without the simulator (the fleet simulation's agreement run).
pub fn utc_offset_hours(seed: u64, spec: &TenantSpec) -> i64 {
    TenantModel::new(seed, spec).utc_offset_h
}

impl TenantModel {
    fn new(seed: u64, spec: &TenantSpec) -> Self {
        let salt: [u8; 32] = Sha256::new()
            .chain_update(seed.to_le_bytes())
            .chain_update(spec.tenant_id.as_bytes())
            .finalize()
            .into();
        let mut rng = ChaCha8Rng::from_seed(salt);
        let homes: &[Place] = match spec.cloud {
            Cloud::Global | Cloud::Gcc => &catalog::HOME_COMMERCIAL,
            Cloud::GccHigh | Cloud::Dod => &catalog::HOME_USGOV,
            Cloud::China => &catalog::HOME_CHINA,
        };
        let home = homes[rng.random_range(0..homes.len())];
        let office_prefix = [
            catalog::OFFICE_FIRST_OCTETS[rng.random_range(0..catalog::OFFICE_FIRST_OCTETS.len())],
            rng.random_range(1..=254),
            rng.random_range(0..=255),
        ];
        let users = make_users(&mut rng, spec);
        let workloads = catalog::WORKLOADS
            .iter()
            .map(|(name, managed, resource)| Workload {
                name,
                app_id: stable_guid(&format!("{}/wl-app/{name}", spec.tenant_id)),
                sp_id: stable_guid(&format!("{}/wl-sp/{name}", spec.tenant_id)),
                managed: *managed,
                resource: *resource,
            })
            .collect();
        let ca_policies = [
            "Require MFA for administrators",
            "Block legacy authentication",
            "Require compliant device for Azure management",
        ]
        .iter()
        .map(|n| (stable_guid(&format!("{}/ca/{n}", spec.tenant_id)), *n))
        .collect();
        let utc_offset_h = (home.lon / 15.0).round() as i64;
        Self {
            spec: spec.clone(),
            salt,
            users,
            home,
            office_prefix,
            workloads,
            ca_policies,
            utc_offset_h,
        }
    }

    pub(crate) fn office_ip<R: Rng>(&self, rng: &mut R) -> String {
        let [a, b, c] = self.office_prefix;
        format!("{a}.{b}.{c}.{}", rng.random_range(1..=254))
    }
}

fn make_users(rng: &mut ChaCha8Rng, spec: &TenantSpec) -> Vec<User> {
    let n = spec.users.max(3);
    let mut seen = HashSet::new();
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let first = catalog::FIRST_NAMES[rng.random_range(0..catalog::FIRST_NAMES.len())];
        let last = catalog::LAST_NAMES[rng.random_range(0..catalog::LAST_NAMES.len())];
        let id = guid_from(rng.random()).to_string();
        let service = i % 12 == 11;
        let guest = !service && i % 8 == 7;
        let mut local = if service {
            format!(
                "svc-{}",
                ["backup", "scanner", "sync", "print", "crm"][i / 12 % 5]
            )
        } else {
            format!("{}.{}", first.to_lowercase(), last.to_lowercase())
        };
        if !seen.insert(local.clone()) {
            local = format!("{local}{i}");
            seen.insert(local.clone());
        }
        let display = if service {
            format!("Service account {local}")
        } else {
            format!("{first} {last}")
        };
        let (upn, signin_upn) = if guest {
            let gd = catalog::GUEST_DOMAINS[rng.random_range(0..catalog::GUEST_DOMAINS.len())];
            (
                format!("{local}_{gd}#EXT#@{}", spec.domain),
                format!("{local}@{gd}"),
            )
        } else {
            let u = format!("{local}@{}", spec.domain);
            (u.clone(), u.to_lowercase())
        };
        let admin = i < 3;
        let mut methods = Vec::new();
        if !service
            && !guest
            && (admin || rng.random_bool(spec.mfa_registered_share.clamp(0.0, 1.0)))
        {
            let m = catalog::MFA_METHODS[rng.random_range(0..catalog::MFA_METHODS.len())].2;
            methods.push(m);
            if rng.random_bool(0.4) {
                methods.push("email");
            }
        }
        users.push(User {
            id,
            display,
            upn,
            signin_upn,
            guest,
            service,
            admin,
            methods,
        });
    }
    users
}

type BucketKey = (usize, GroundTruthStream, i64);

/// Generates and caches the events of every tenant.
#[derive(Debug)]
pub(crate) struct Generator {
    delay: DelayModel,
    pub history_start_ticks: i64,
    pub tenants: Vec<TenantModel>,
    cache: Mutex<HashMap<BucketKey, Arc<Vec<CompactEvent>>>>,
}

impl Generator {
    pub(crate) fn new(
        seed: u64,
        tenants: &[TenantSpec],
        delay: DelayModel,
        history_start: DateTime<Utc>,
    ) -> Self {
        Self {
            delay,
            history_start_ticks: to_ticks(history_start),
            tenants: tenants.iter().map(|t| TenantModel::new(seed, t)).collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn hour_of(ticks: i64) -> i64 {
        ticks.div_euclid(TICKS_PER_HOUR)
    }

    /// The events of one hour, newest first.
    pub(crate) fn bucket(
        &self,
        t: usize,
        s: GroundTruthStream,
        hour: i64,
    ) -> Arc<Vec<CompactEvent>> {
        let key = (t, s, hour);
        if let Some(b) = lock(&self.cache).get(&key) {
            return b.clone();
        }
        let b = Arc::new(self.generate(t, s, hour));
        lock(&self.cache).entry(key).or_insert(b).clone()
    }

    fn generate(&self, t: usize, s: GroundTruthStream, hour: i64) -> Vec<CompactEvent> {
        let Some(model) = self.tenants.get(t) else {
            return Vec::new();
        };
        let seed: [u8; 32] = Sha256::new()
            .chain_update(model.salt)
            .chain_update([s.code()])
            .chain_update(hour.to_le_bytes())
            .finalize()
            .into();
        let mut rng = ChaCha8Rng::from_seed(seed);
        let rate = match s {
            GroundTruthStream::SignIns => model.spec.signins_per_hour,
            GroundTruthStream::DirectoryAudits => model.spec.audits_per_hour,
            // The unified audit log is generated by blob (`audit_gen`), not here.
            _ => return Vec::new(),
        };
        let factor = activity_factor(from_ticks(hour * TICKS_PER_HOUR), model.utc_offset_h);
        let mean = rate.max(0.0) * factor * rng.random_range(0.8..1.2);
        let n =
            mean.floor() as usize + usize::from(rng.random_bool((mean.fract()).clamp(0.0, 1.0)));
        let activity_weights: Vec<u32> = catalog::ACTIVITIES.iter().map(|a| a.weight).collect();
        let total_w: u32 = activity_weights.iter().sum();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let ticks = hour * TICKS_PER_HOUR + rng.random_range(0..TICKS_PER_HOUR);
            let kind = match s {
                GroundTruthStream::SignIns => match rng.random_range(0..100u32) {
                    0..70 => 0,
                    70..95 => 1,
                    95..99 => 2,
                    _ => 3,
                },
                _ => {
                    let mut x = rng.random_range(0..total_w.max(1));
                    let mut k = 0u8;
                    for (i, w) in activity_weights.iter().enumerate() {
                        if x < *w {
                            k = u8::try_from(i).unwrap_or(0);
                            break;
                        }
                        x -= w;
                    }
                    k
                }
            };
            let seed = rng.next_u64();
            let delay_s = self.delay.sample(&mut rng);
            out.push(CompactEvent {
                ticks,
                seed,
                delay_s,
                kind,
            });
        }
        out.sort_unstable_by_key(|e| std::cmp::Reverse(e.key()));
        out
    }

    /// Every event of a stream with `history start <= time <= until`, newest first.
    pub(crate) fn truth(
        &self,
        t: usize,
        s: GroundTruthStream,
        until: DateTime<Utc>,
    ) -> Vec<TruthEvent> {
        let until = to_ticks(until);
        let mut out = Vec::new();
        if until < self.history_start_ticks {
            return out;
        }
        let mut hour = Self::hour_of(until);
        while hour >= Self::hour_of(self.history_start_ticks) {
            for ev in self.bucket(t, s, hour).iter() {
                if ev.ticks > until || ev.ticks < self.history_start_ticks {
                    continue;
                }
                let event_type = match s {
                    GroundTruthStream::SignIns => {
                        SIGNIN_EVENT_TYPES[usize::from(ev.kind) % 4].to_string()
                    }
                    _ => activity(ev.kind).name.to_string(),
                };
                out.push(TruthEvent {
                    id: event_id(s, ev.seed).1,
                    stream: s,
                    event_type,
                    event_time: from_ticks(ev.ticks),
                    visible_at: from_ticks(ev.visible_ticks()),
                    content_created: None,
                });
            }
            hour -= 1;
        }
        out
    }
}

fn activity(kind: u8) -> &'static catalog::Activity {
    &catalog::ACTIVITIES[usize::from(kind) % catalog::ACTIVITIES.len()]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The event's RNG positioned after its id, and the id.
fn event_id(s: GroundTruthStream, seed: u64) -> (ChaCha8Rng, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let guid = guid_from(rng.random());
    let id = match s {
        GroundTruthStream::SignIns
        | GroundTruthStream::AuditExchange
        | GroundTruthStream::AuditAzureActiveDirectory
        | GroundTruthStream::AuditGeneral
        | GroundTruthStream::AuditSharePoint => guid.to_string(),
        GroundTruthStream::DirectoryAudits => {
            let letters: String = (0..5)
                .map(|_| {
                    char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.random_range(0..36)])
                })
                .collect();
            format!(
                "Directory_{guid}_{letters}_{:08}",
                rng.random_range(0..100_000_000u32)
            )
        }
    };
    (rng, id)
}

fn pick_weighted<'a, T, R: Rng>(rng: &mut R, items: &'a [T], w: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for it in items {
        let wi = w(it);
        if x < wi {
            return it;
        }
        x -= wi;
    }
    &items[items.len() - 1]
}

/// Where a sign-in comes from.
enum Origin {
    Office,
    Remote,
    Travel,
    Hostile,
}

fn ip_for<R: Rng>(model: &TenantModel, origin: &Origin, rng: &mut R) -> String {
    match origin {
        Origin::Office => model.office_ip(rng),
        Origin::Remote | Origin::Travel => {
            if rng.random_bool(0.15) {
                format!(
                    "2001:db8:{:x}:{:x}::{:x}",
                    model.office_prefix[1],
                    rng.random_range(1..0xffffu32),
                    rng.random_range(1..0xffffu32)
                )
            } else if rng.random_bool(0.5) {
                format!("198.51.100.{}", rng.random_range(1..=254))
            } else {
                let first = [24u8, 71, 73, 98, 86, 92][rng.random_range(0..6)];
                format!(
                    "{first}.{}.{}.{}",
                    rng.random_range(1..=254),
                    rng.random_range(0..=255),
                    rng.random_range(1..=254)
                )
            }
        }
        Origin::Hostile => {
            if rng.random_bool(0.5) {
                format!("192.0.2.{}", rng.random_range(1..=254))
            } else {
                format!("185.220.101.{}", rng.random_range(1..=254))
            }
        }
    }
}

fn location(p: &Place) -> Value {
    json!({
        "city": p.city,
        "state": p.state,
        "countryOrRegion": p.country,
        "geoCoordinates": {"altitude": null, "latitude": p.lat, "longitude": p.lon}
    })
}

/// Renders one sign-in record. `beta` adds the beta-only properties; `p2` reveals risk.
pub(crate) fn render_signin(model: &TenantModel, ev: &CompactEvent, beta: bool, p2: bool) -> Value {
    let (mut rng, id) = event_id(GroundTruthStream::SignIns, ev.seed);
    let correlation = guid_from(rng.random()).to_string();
    let kind = usize::from(ev.kind) % 4;
    let created = render_ticks(ev.ticks);
    let session = guid_from(rng.random()).to_string();
    let uti: String = {
        let b: [u8; 16] = rng.random();
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
    };
    if kind >= 2 {
        return render_workload_signin(model, ev, &mut rng, id, correlation, created, uti, beta);
    }
    let interactive = kind == 0;
    let user = &model.users[rng.random_range(0..model.users.len())];
    let roll = rng.random_range(0..1000u32);
    let hostile = roll < 30;
    let legacy =
        (user.service && rng.random_bool(0.6)) || (hostile && rng.random_bool(0.5)) || roll >= 980;
    let origin = if hostile {
        Origin::Hostile
    } else if rng.random_bool(0.06) {
        Origin::Travel
    } else if rng.random_bool(0.62) {
        Origin::Office
    } else {
        Origin::Remote
    };
    let place = match origin {
        Origin::Office | Origin::Remote => model.home,
        Origin::Travel => *catalog::TRAVEL.choose(&mut rng).unwrap_or(&model.home),
        Origin::Hostile => *catalog::FOREIGN.choose(&mut rng).unwrap_or(&model.home),
    };
    let ip = ip_for(model, &origin, &mut rng);
    let eligible: Vec<&App> = catalog::APPS
        .iter()
        .filter(|a| !a.admin || user.admin)
        .collect();
    let app = *pick_weighted(&mut rng, &eligible, |a| a.weight);
    let (client_app, resource) = if legacy {
        (
            *catalog::LEGACY_CLIENTS
                .choose(&mut rng)
                .unwrap_or(&"Other clients"),
            catalog::RES_EXCHANGE,
        )
    } else if app.browser {
        ("Browser", app.resource)
    } else {
        ("Mobile Apps and Desktop clients", app.resource)
    };
    let (app_name, app_id) = if legacy {
        (
            "Office 365 Exchange Online",
            "00000002-0000-0ff1-ce00-000000000000",
        )
    } else {
        (app.name, app.app_id)
    };
    // Outcome.
    let fail_p = if hostile {
        0.85
    } else if interactive {
        0.1
    } else {
        0.03
    };
    let failure = if rng.random_bool(fail_p) {
        if hostile || legacy {
            Some(catalog::FAILURES[0])
        } else {
            Some(*pick_weighted(&mut rng, &catalog::FAILURES, |f| f.2))
        }
    } else {
        None
    };
    let mfa_required = !legacy
        && (app.admin
            || matches!(origin, Origin::Travel | Origin::Hostile)
            || rng.random_bool(0.3))
        && !user.methods.is_empty();
    let mfa = catalog::MFA_METHODS
        .iter()
        .find(|m| user.methods.first() == Some(&m.2))
        .copied()
        .unwrap_or(catalog::MFA_METHODS[0]);
    // Risk.
    let (risk_level, risk_events): (&str, Vec<&str>) = if hostile {
        let lvl = if rng.random_bool(0.5) {
            "high"
        } else {
            "medium"
        };
        let a = *catalog::RISK_EVENTS
            .choose(&mut rng)
            .unwrap_or(&"unfamiliarFeatures");
        let b = if rng.random_bool(0.5) {
            "anonymizedIPAddress"
        } else {
            "unfamiliarFeatures"
        };
        (lvl, if a == b { vec![a] } else { vec![a, b] })
    } else if matches!(origin, Origin::Travel) && rng.random_bool(0.2) {
        ("low", vec!["unlikelyTravel"])
    } else if rng.random_bool(0.01) {
        ("low", vec!["unfamiliarFeatures"])
    } else {
        ("none", vec![])
    };
    let (risk_level, risk_events) = if p2 {
        (risk_level, risk_events)
    } else {
        ("hidden", vec![])
    };
    let risk_state = if risk_level == "none" || risk_level == "hidden" {
        "none"
    } else {
        "atRisk"
    };
    let risk_detail = if risk_level == "hidden" {
        "hidden"
    } else {
        "none"
    };
    let (error_code, reason, ca_status) = match failure {
        Some((code, reason, _)) => (
            code,
            Value::from(reason),
            if code == 53003 {
                "failure"
            } else {
                "notApplied"
            },
        ),
        None => (
            0,
            Value::Null,
            if mfa_required {
                "success"
            } else {
                "notApplied"
            },
        ),
    };
    let (os, browser, ua) = if legacy {
        ("", "", "")
    } else if app.browser {
        *catalog::DEVICES[..5]
            .choose(&mut rng)
            .unwrap_or(&catalog::DEVICES[0])
    } else if rng.random_bool(0.5) {
        catalog::DEVICES[5]
    } else {
        *catalog::DEVICES[3..5]
            .choose(&mut rng)
            .unwrap_or(&catalog::DEVICES[3])
    };
    let managed = !hostile && !legacy && rng.random_bool(0.6);
    let device_id = if managed {
        guid_from(rng.random()).to_string()
    } else {
        String::new()
    };
    let policies: Vec<Value> = model
        .ca_policies
        .iter()
        .enumerate()
        .map(|(i, (pid, name))| {
            let result = match i {
                0 if user.admin => if error_code == 0 { "success" } else { "failure" },
                1 if legacy => "failure",
                1 if error_code == 53003 => "failure",
                _ => "notApplied",
            };
            json!({"id": pid, "displayName": name, "enforcedGrantControls": if i == 1 {json!(["Block"])} else {json!(["Mfa"])},
                   "enforcedSessionControls": [], "result": result})
        })
        .collect();
    let (res_name, res_id) = catalog::RESOURCES[resource];
    let mut v = json!({
        "id": id,
        "createdDateTime": created,
        "userDisplayName": user.display,
        "userPrincipalName": user.signin_upn,
        "userId": user.id,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": ip,
        "clientAppUsed": client_app,
        "correlationId": correlation,
        "conditionalAccessStatus": ca_status,
        "isInteractive": interactive,
        "riskDetail": risk_detail,
        "riskLevelAggregated": risk_level,
        "riskLevelDuringSignIn": risk_level,
        "riskState": risk_state,
        "riskEventTypes": risk_events,
        "riskEventTypes_v2": risk_events,
        "resourceDisplayName": res_name,
        "resourceId": res_id,
        "status": {"errorCode": error_code, "failureReason": reason, "additionalDetails": if error_code == 0 { Value::Null } else { Value::from("The user did not complete the sign-in.") }},
        "deviceDetail": {"deviceId": device_id, "displayName": if managed { Value::from(format!("PC-{:04}", rng.random_range(0..10000u32))) } else { Value::Null },
                          "operatingSystem": os, "browser": browser,
                          "isCompliant": managed, "isManaged": managed, "trustType": if managed { Value::from("Azure AD joined") } else { Value::Null }},
        "location": location(&place),
        "appliedConditionalAccessPolicies": policies,
    });
    if beta {
        let step_time = Value::from(created.clone());
        let mut details = Vec::new();
        if interactive {
            details.push(json!({"authenticationStepDateTime": step_time, "authenticationMethod": "Password",
                "authenticationMethodDetail": "Password in the cloud", "succeeded": error_code != 50126 && error_code != 50053,
                "authenticationStepResultDetail": if error_code == 50126 { "Invalid username or password or Invalid on-premise username or password." } else { "Correct password" }}));
            if mfa_required && error_code != 50126 {
                details.push(json!({"authenticationStepDateTime": step_time, "authenticationMethod": mfa.0,
                    "authenticationMethodDetail": mfa.1, "succeeded": error_code != 500121,
                    "authenticationStepResultDetail": if error_code == 500121 { "MFA denied; user declined the authentication" } else { "MFA successfully completed" }}));
            }
        } else {
            details.push(json!({"authenticationStepDateTime": step_time, "authenticationMethod": "Previously satisfied",
                "authenticationMethodDetail": null, "succeeded": true, "authenticationStepResultDetail": "First factor requirement satisfied by claim in the token"}));
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("signInEventTypes".into(), json!([SIGNIN_EVENT_TYPES[kind]]));
            o.insert(
                "userType".into(),
                Value::from(if user.guest { "guest" } else { "member" }),
            );
            o.insert("servicePrincipalId".into(), Value::from(""));
            o.insert("servicePrincipalName".into(), Value::Null);
            o.insert(
                "authenticationRequirement".into(),
                Value::from(if mfa_required {
                    "multiFactorAuthentication"
                } else {
                    "singleFactorAuthentication"
                }),
            );
            o.insert("authenticationDetails".into(), Value::from(details));
            o.insert(
                "authenticationProtocol".into(),
                Value::from(if legacy { "ropc" } else { "none" }),
            );
            o.insert("userAgent".into(), Value::from(ua));
            o.insert(
                "sessionId".into(),
                Value::from(if legacy { String::new() } else { session }),
            );
            o.insert("uniqueTokenIdentifier".into(), Value::from(uti));
            o.insert(
                "homeTenantId".into(),
                Value::from(if user.guest {
                    stable_guid(&format!("home/{}", user.signin_upn))
                } else {
                    model.spec.tenant_id.clone()
                }),
            );
            o.insert(
                "resourceTenantId".into(),
                Value::from(model.spec.tenant_id.clone()),
            );
            o.insert("clientCredentialType".into(), Value::from("none"));
            o.insert(
                "autonomousSystemNumber".into(),
                Value::from(asn(&origin, &mut rng)),
            );
            o.insert(
                "incomingTokenType".into(),
                Value::from(if interactive {
                    "none"
                } else if rng.random_bool(0.5) {
                    "primaryRefreshToken"
                } else {
                    "refreshToken"
                }),
            );
        }
    }
    v
}

fn asn<R: Rng>(origin: &Origin, rng: &mut R) -> u32 {
    match origin {
        Origin::Office => 8075,
        Origin::Remote | Origin::Travel => [7922u32, 701, 3320, 2856][rng.random_range(0..4)],
        Origin::Hostile => [9009u32, 60068, 49981][rng.random_range(0..3)],
    }
}

#[allow(clippy::too_many_arguments)]
fn render_workload_signin(
    model: &TenantModel,
    ev: &CompactEvent,
    rng: &mut ChaCha8Rng,
    id: String,
    correlation: String,
    created: String,
    uti: String,
    beta: bool,
) -> Value {
    let managed = ev.kind % 4 == 3;
    let candidates: Vec<&Workload> = model
        .workloads
        .iter()
        .filter(|w| w.managed == managed)
        .collect();
    let Some(wl) = candidates.choose(rng).copied() else {
        return Value::Null;
    };
    let failure = !managed && rng.random_bool(0.02);
    let (res_name, res_id) = catalog::RESOURCES[wl.resource];
    let ip = format!(
        "20.{}.{}.{}",
        rng.random_range(1..=254),
        rng.random_range(0..=255),
        rng.random_range(1..=254)
    );
    let mut v = json!({
        "id": id,
        "createdDateTime": created,
        "userDisplayName": null,
        "userPrincipalName": null,
        "userId": "",
        "appId": wl.app_id,
        "appDisplayName": wl.name,
        "ipAddress": ip,
        "clientAppUsed": null,
        "correlationId": correlation,
        "conditionalAccessStatus": "notApplied",
        "isInteractive": false,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": res_name,
        "resourceId": res_id,
        "status": {"errorCode": if failure { 7000215 } else { 0 },
                   "failureReason": if failure { Value::from("Invalid client secret is provided.") } else { Value::Null },
                   "additionalDetails": null},
        "deviceDetail": {"deviceId": "", "displayName": null, "operatingSystem": null, "browser": null, "isCompliant": null, "isManaged": null, "trustType": null},
        "location": location(&model.home),
        "appliedConditionalAccessPolicies": [],
    });
    if beta && let Some(o) = v.as_object_mut() {
        o.insert(
            "signInEventTypes".into(),
            json!([SIGNIN_EVENT_TYPES[usize::from(ev.kind) % 4]]),
        );
        o.insert("userType".into(), Value::Null);
        o.insert("servicePrincipalId".into(), Value::from(wl.sp_id.clone()));
        o.insert("servicePrincipalName".into(), Value::from(wl.name));
        o.insert(
            "authenticationRequirement".into(),
            Value::from("singleFactorAuthentication"),
        );
        o.insert("authenticationDetails".into(), json!([]));
        o.insert("authenticationProtocol".into(), Value::from("none"));
        o.insert("userAgent".into(), Value::from(""));
        o.insert("sessionId".into(), Value::from(""));
        o.insert("uniqueTokenIdentifier".into(), Value::from(uti));
        o.insert(
            "homeTenantId".into(),
            Value::from(model.spec.tenant_id.clone()),
        );
        o.insert(
            "resourceTenantId".into(),
            Value::from(model.spec.tenant_id.clone()),
        );
        o.insert(
            "clientCredentialType".into(),
            Value::from(if managed {
                "managedIdentity"
            } else if rng.random_bool(0.5) {
                "certificate"
            } else {
                "clientSecret"
            }),
        );
        o.insert("autonomousSystemNumber".into(), Value::from(8075));
        o.insert("incomingTokenType".into(), Value::from("none"));
    }
    v
}

/// Renders one directory-audit record.
pub(crate) fn render_audit(model: &TenantModel, ev: &CompactEvent) -> Value {
    let (mut rng, id) = event_id(GroundTruthStream::DirectoryAudits, ev.seed);
    let act = activity(ev.kind);
    let correlation = id
        .strip_prefix("Directory_")
        .and_then(|s| s.get(..36))
        .unwrap_or_default()
        .to_string();
    let admins: Vec<&User> = model.users.iter().filter(|u| u.admin).collect();
    let actor = *admins.choose(&mut rng).unwrap_or(&&model.users[0]);
    let subject = &model.users[rng.random_range(0..model.users.len())];
    let app_initiated = rng.random_bool(0.15)
        || act.name == "Add service principal credentials" && rng.random_bool(0.5);
    let self_service = matches!(
        act.name,
        "Change user password" | "User registered security info"
    );
    let initiated_by = if app_initiated {
        let wl = &model.workloads[rng.random_range(0..model.workloads.len())];
        json!({"user": null, "app": {"appId": wl.app_id, "displayName": wl.name, "servicePrincipalId": wl.sp_id, "servicePrincipalName": wl.name}})
    } else {
        let who = if self_service { subject } else { actor };
        let ip = if rng.random_bool(0.7) {
            model.office_ip(&mut rng)
        } else {
            format!("198.51.100.{}", rng.random_range(1..=254))
        };
        json!({"user": {"id": who.id, "displayName": null, "userPrincipalName": who.upn, "ipAddress": ip,
                        "userType": null, "homeTenantId": null, "homeTenantName": null}, "app": null})
    };
    let failure = rng.random_bool(0.03);
    let user_target = |u: &User, props: Value| json!({"id": u.id, "displayName": null, "type": "User", "userPrincipalName": u.upn, "groupType": null, "modifiedProperties": props});
    let prop = |name: &str, old: Value, new: Value| json!({"displayName": name, "oldValue": old, "newValue": new});
    let targets: Vec<Value> = match act.target {
        Target::User => {
            let props = match act.name {
                "Update user" => {
                    let (p, o, n) = [
                        ("Department", "\"Sales\"", "\"Finance\""),
                        ("JobTitle", "\"Analyst\"", "\"Senior Analyst\""),
                        (
                            "StrongAuthenticationMethod",
                            "[]",
                            "[{\"MethodType\":6,\"Default\":true}]",
                        ),
                        ("AccountEnabled", "[true]", "[false]"),
                    ][rng.random_range(0..4)];
                    vec![
                        prop(p, Value::from(o), Value::from(n)),
                        prop(
                            "Included Updated Properties",
                            Value::Null,
                            Value::from(format!("\"{p}\"")),
                        ),
                    ]
                }
                "Disable account" => vec![prop(
                    "AccountEnabled",
                    Value::from("[true]"),
                    Value::from("[false]"),
                )],
                "Add user" => vec![
                    prop("AccountEnabled", Value::Null, Value::from("[true]")),
                    prop(
                        "UserPrincipalName",
                        Value::Null,
                        Value::from(format!("[\"{}\"]", subject.upn)),
                    ),
                ],
                _ => vec![],
            };
            vec![user_target(subject, Value::from(props))]
        }
        Target::Group => {
            let g = catalog::GROUPS[rng.random_range(0..catalog::GROUPS.len())];
            let gid = stable_guid(&format!("{}/group/{g}", model.spec.tenant_id));
            let group = json!({"id": gid, "displayName": g, "type": "Group", "userPrincipalName": null, "groupType": "unifiedGroups",
                               "modifiedProperties": [prop("Group.DisplayName", Value::Null, Value::from(format!("\"{g}\"")))]});
            if act.name == "Add group" {
                vec![group]
            } else {
                vec![group, user_target(subject, json!([]))]
            }
        }
        Target::Role => {
            let (rname, rtid) = catalog::ROLES[rng.random_range(0..catalog::ROLES.len())];
            vec![
                json!({"id": stable_guid(&format!("{}/role/{rname}", model.spec.tenant_id)), "displayName": rname, "type": "Role", "userPrincipalName": null, "groupType": null,
                       "modifiedProperties": [prop("Role.DisplayName", Value::Null, Value::from(format!("\"{rname}\""))), prop("Role.TemplateId", Value::Null, Value::from(format!("\"{rtid}\"")))]}),
                user_target(subject, json!([])),
            ]
        }
        Target::ServicePrincipal | Target::Application => {
            let wl = &model.workloads[rng.random_range(0..model.workloads.len())];
            let (ty, tid) = if act.target == Target::Application {
                (
                    "Application",
                    stable_guid(&format!("{}/appobj/{}", model.spec.tenant_id, wl.name)),
                )
            } else {
                ("ServicePrincipal", wl.sp_id.clone())
            };
            let props = match act.name {
                "Consent to application" => vec![
                    prop(
                        "ConsentAction.Permissions",
                        Value::Null,
                        Value::from("Scope: AuditLog.Read.All Directory.Read.All"),
                    ),
                    prop(
                        "ConsentContext.IsAdminConsent",
                        Value::Null,
                        Value::from("True"),
                    ),
                ],
                _ => vec![prop(
                    "KeyDescription",
                    Value::from("[]"),
                    Value::from(format!(
                        "[\"[KeyIdentifier={},KeyType=Password,KeyUsage=Verify,DisplayName=sim]\"]",
                        guid_from(rng.random())
                    )),
                )],
            };
            vec![
                json!({"id": tid, "displayName": wl.name, "type": ty, "userPrincipalName": null, "groupType": null, "modifiedProperties": props}),
            ]
        }
        Target::Policy => {
            let (pid, pname) = &model.ca_policies[rng.random_range(0..model.ca_policies.len())];
            vec![
                json!({"id": pid, "displayName": pname, "type": "Policy", "userPrincipalName": null, "groupType": null,
                        "modifiedProperties": [prop("ConditionalAccessPolicy", Value::from("{\"state\":\"enabled\"}"), Value::from("{\"state\":\"enabledForReportingButNotEnforced\"}"))]}),
            ]
        }
        Target::Device => vec![
            json!({"id": guid_from(rng.random()).to_string(), "displayName": format!("PC-{:04}", rng.random_range(0..10000u32)), "type": "Device", "userPrincipalName": null, "groupType": null,
                                      "modifiedProperties": [prop("DeviceOSType", Value::Null, Value::from("\"Windows\""))]}),
        ],
        Target::Directory => vec![
            json!({"id": model.spec.tenant_id, "displayName": model.spec.domain, "type": "Directory", "userPrincipalName": null, "groupType": null,
                                         "modifiedProperties": [prop("LiveType", Value::from("\"Managed\""), Value::from("\"Federated\""))]}),
        ],
    };
    json!({
        "id": id,
        "category": act.category,
        "correlationId": correlation,
        "result": if failure { "failure" } else { "success" },
        "resultReason": if failure { "Microsoft.Online.DirectoryServices.AuthorizationException" } else { "" },
        "activityDisplayName": act.name,
        "activityDateTime": render_ticks(ev.ticks),
        "loggedByService": act.service,
        "operationType": act.operation,
        "initiatedBy": initiated_by,
        "targetResources": targets,
        "additionalDetails": [{"key": "User-Agent", "value": catalog::DEVICES[rng.random_range(0..catalog::DEVICES.len())].2}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_render_with_seven_digits() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T19:15:41.6195833Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_ticks(to_ticks(t)), "2024-05-01T19:15:41.6195833Z");
        assert_eq!(from_ticks(to_ticks(t)), t);
    }

    #[test]
    fn buckets_are_deterministic_and_sorted() {
        let spec = TenantSpec::new(0, Cloud::Global);
        let a = Generator::new(
            7,
            std::slice::from_ref(&spec),
            DelayModel::default(),
            DateTime::UNIX_EPOCH,
        );
        let b = Generator::new(7, &[spec], DelayModel::default(), DateTime::UNIX_EPOCH);
        let ba = a.bucket(0, GroundTruthStream::SignIns, 480_000);
        assert_eq!(ba, b.bucket(0, GroundTruthStream::SignIns, 480_000));
        assert!(ba.windows(2).all(|w| w[0].key() > w[1].key()));
        assert!(!ba.is_empty());
    }
}
