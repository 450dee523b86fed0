//! Configuration of the simulator: the tenants it plays, their licences, permissions and
//! injected faults, the ingestion-delay model and the throttling limits.

use std::time::Duration;

use itdr_shared::Cloud;
use rand::Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The application permissions a fully consented ingestion app holds: the read permissions
/// and the response-action ones.
pub const DEFAULT_ROLES: [&str; 8] = [
    "AuditLog.Read.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "User.Read.All",
    "User.EnableDisableAccount.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "MailboxSettings.Read",
    "Policy.Read.All",
];

/// Everything the simulator needs to start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every generated record. Two simulators with the same seed, tenants and clock
    /// start serve identical data.
    pub seed: u64,
    /// The tenants the simulator plays.
    pub tenants: Vec<TenantSpec>,
    /// Ingestion delay between an event happening and it becoming visible through Graph.
    pub delay: DelayModel,
    /// Reports-API throttling limits.
    pub throttle: ThrottleConfig,
    /// How far before the clock's start events exist (default 30 days, the P1 retention).
    /// Events are generated lazily per hour and kept in a compact form (about 24 bytes each).
    pub history: chrono::Duration,
    /// The Office 365 Management Activity API: paging, throttling, availability lag.
    pub management: ManagementConfig,
}

impl SimConfig {
    /// A configuration with the given seed and tenants and default delay, throttling and
    /// history.
    pub fn new(seed: u64, tenants: Vec<TenantSpec>) -> Self {
        Self {
            seed,
            tenants,
            delay: DelayModel::default(),
            throttle: ThrottleConfig::default(),
            history: chrono::Duration::days(30),
            management: ManagementConfig::default(),
        }
    }
}

/// One simulated customer tenant, with the ingestion app's registration in it.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// Tenant id (GUID, lowercase).
    pub tenant_id: String,
    /// Initial verified domain, e.g. `contoso0.onmicrosoft.com`.
    pub domain: String,
    /// The national cloud the tenant lives in.
    pub cloud: Cloud,
    /// Application (client) id of the ingestion app.
    pub app_id: String,
    /// The app's client secret as accepted by this tenant.
    pub client_secret: String,
    /// Base64url SHA-256 thumbprint of the app's certificate (derived from `cert_der` when
    /// `None`).
    pub cert_sha256_thumbprint_b64url: Option<String>,
    /// DER of the app's certificate, used to verify client assertions.
    pub cert_der: Option<Vec<u8>>,
    /// Application permissions consented in the tenant (the token's `roles` claim).
    pub roles: Vec<String>,
    /// Entra ID P1 (sign-in logs, 30-day retention).
    pub has_p1: bool,
    /// Entra ID P2 (risk fields not hidden).
    pub has_p2: bool,
    /// Exchange Online licensed (an `EXCHANGE_S_ENTERPRISE` plan in subscribedSkus).
    pub exchange_licence: bool,
    /// Number of users in the directory.
    pub users: usize,
    /// Chance that a regular member has a Microsoft-registered MFA method (admins always
    /// have one). Low values play a tenant that uses a third-party MFA product.
    pub mfa_registered_share: f64,
    /// Average sign-ins per simulated hour (all event types).
    pub signins_per_hour: f64,
    /// Average directory audit events per simulated hour.
    pub audits_per_hour: f64,
    /// Unified audit log: Exchange records (`Audit.Exchange`) per simulated hour.
    pub exchange_per_hour: f64,
    /// Unified audit log: Entra ID records (`Audit.AzureActiveDirectory`) per simulated hour;
    /// `None`: 30 % of the sign-ins (the interactive ones the log carries) plus the directory
    /// audits.
    pub aad_per_hour: Option<f64>,
    /// Unified audit log: other workloads (`Audit.General`: Power Automate, Teams, …) per hour.
    pub general_per_hour: f64,
    /// Unified audit log: SharePoint and OneDrive records (`Audit.SharePoint`) per hour.
    pub sharepoint_per_hour: f64,
    /// Whether unified audit logging is on (off: subscriptions cannot be started).
    pub audit_log_enabled: bool,
    /// Whether the Management Activity subscriptions (every content type) exist from the
    /// start of the simulated history; otherwise the first start creates them.
    pub subscribed: bool,
    /// Application permissions on the Office 365 Management APIs (`ActivityFeed.Read`).
    pub management_roles: Vec<String>,
    /// Faults to inject from the start.
    pub faults: Faults,
}

const TENANT_NAMES: [&str; 12] = [
    "contoso",
    "fabrikam",
    "northwind",
    "tailspin",
    "wingtip",
    "adatum",
    "litware",
    "woodgrove",
    "proseware",
    "lucerne",
    "alpineski",
    "relecloud",
];

impl TenantSpec {
    /// The app credential (client id and secret) the simulator accepts for this tenant.
    pub fn app_credential(&self) -> itdr_shared::auth::AppCredential {
        itdr_shared::auth::AppCredential::with_secret(
            self.app_id.clone(),
            itdr_shared::auth::SecretString::new(self.client_secret.clone()),
        )
        .for_group(self.cloud.group())
    }

    /// A tenant with sensible defaults: deterministic GUID and domain derived from `seed_index`
    /// and the cloud, all four default roles, P1 but not P2, Exchange, 40 users, about 120
    /// sign-ins and 10 audit events per hour. Tenants of one cloud group share one app id
    /// and secret (a multi-tenant app is registered once per cloud).
    pub fn new(seed_index: u32, cloud: Cloud) -> Self {
        let name = TENANT_NAMES[seed_index as usize % TENANT_NAMES.len()];
        let suffix = match cloud {
            Cloud::Global | Cloud::Gcc => "onmicrosoft.com",
            Cloud::GccHigh | Cloud::Dod => "onmicrosoft.us",
            Cloud::China => "partner.onmschina.cn",
        };
        let tenant_id = stable_guid(&format!("tenant/{}/{seed_index}", cloud.as_str()));
        let app_key = match cloud {
            Cloud::Global | Cloud::Gcc => "commercial",
            Cloud::GccHigh | Cloud::Dod => "usgov",
            Cloud::China => "china",
        };
        Self {
            tenant_id,
            domain: format!("{name}{seed_index}.{suffix}"),
            cloud,
            app_id: stable_guid(&format!("app/{app_key}")),
            client_secret: format!("sim~{app_key}~secret"),
            cert_sha256_thumbprint_b64url: None,
            cert_der: None,
            roles: DEFAULT_ROLES.iter().map(|r| (*r).to_string()).collect(),
            has_p1: true,
            has_p2: false,
            exchange_licence: true,
            users: 40,
            mfa_registered_share: 0.85,
            signins_per_hour: 120.0,
            audits_per_hour: 10.0,
            exchange_per_hour: 30.0,
            aad_per_hour: None,
            general_per_hour: 8.0,
            sharepoint_per_hour: 20.0,
            audit_log_enabled: true,
            subscribed: true,
            management_roles: vec!["ActivityFeed.Read".to_string()],
            faults: Faults::default(),
        }
    }
}

/// A GUID derived deterministically from a name (the first 16 bytes of its SHA-256, shaped
/// as a version-4 UUID).
pub(crate) fn stable_guid(name: &str) -> String {
    let d = Sha256::digest(format!("itdr-sim/{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A GUID built from 16 random bytes.
pub(crate) fn guid_from(bytes: [u8; 16]) -> Uuid {
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Faults injected into one tenant's Graph traffic. Counters decrement as they are used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The next N Graph requests of the tenant get 503 `serviceNotAvailable`.
    pub http_5xx_burst: u32,
    /// `Retry-After` seconds sent with the injected 503s (none when `None`).
    pub retry_after_on_5xx: Option<u64>,
    /// Real-time delay added to every Graph response of the tenant, in milliseconds.
    pub slow_ms: u64,
    /// The next N Graph responses of the tenant are cut at about 60 % of their body.
    pub truncate_json: u32,
    /// The next N pages of the tenant carry an `@odata.nextLink` to a foreign host.
    pub foreign_next_link: u32,
    /// The next N Management Activity requests of the tenant get `AF50000` (HTTP 500).
    pub management_5xx_burst: u32,
    /// The next N Management Activity requests of the tenant are throttled: `AF429` with
    /// HTTP 403 and no `Retry-After`, as Microsoft documents it.
    pub af429_burst: u32,
    /// The next N content blob requests of the tenant answer `AF20051` (content expired).
    pub expired_content: u32,
    /// The next N content listings of the tenant name `contentUri`s on another cloud's
    /// Management host.
    pub foreign_content_uri: u32,
    /// The Graph faults of the main request path (429 and 5xx bursts, expired token, revoked
    /// consent, truncated and non-JSON bodies) wait until this many more Graph requests of the
    /// tenant were answered normally, so they strike mid-paging. 0: at once.
    pub after_requests: u32,
    /// Status of the injected 5xx burst: 500, 503 or 504 (`None`: 503).
    pub http_5xx_status: Option<u16>,
    /// The next N Graph requests of the tenant get 429 `TooManyRequests` (a storm on top of
    /// the throttle model).
    pub http_429_burst: u32,
    /// The raw `Retry-After` value sent with those 429s (none when `None`), e.g. `"2"`,
    /// `"100000"`, `"1e20"` or an HTTP date in year 9999.
    pub retry_after_on_429: Option<String>,
    /// The next N successful Graph responses of the tenant are an HTML page (status 200,
    /// `text/html`), as a proxy or gateway in the way would answer.
    pub non_json_body: u32,
    /// The next N Graph requests of the tenant answer 401 `InvalidAuthenticationToken`
    /// "the token is expired" (the token expired mid-paging).
    pub expired_token: u32,
    /// The next N Graph requests of the tenant answer 401 as after revoked admin consent
    /// (consent revoked mid-paging, then granted again).
    pub consent_revoked_requests: u32,
    /// Graph refuses `or` between the alternatives of a `signInEventTypes/any(...)` lambda
    /// (400 "Invalid filter clause"), as a Graph without that part of OData would.
    pub refuse_or_in_any: bool,
}

/// The Office 365 Management Activity API of the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagementConfig {
    /// Content items per listing page (then a `NextPageUri`).
    pub page_size: usize,
    /// Requests per tenant per window before `AF429` (Microsoft: 2,000 per minute).
    pub per_tenant: (u32, Duration),
    /// Delay between a blob's `contentCreated` and its appearing in listings.
    pub listing_lag: DelayModel,
}

impl Default for ManagementConfig {
    /// 100 items per page, 2,000 requests per minute per tenant, and a listing lag of 90 %
    /// within a minute, 9 % within 10 minutes, 1 % within an hour.
    fn default() -> Self {
        Self {
            page_size: 100,
            per_tenant: (2000, Duration::from_secs(60)),
            listing_lag: DelayModel {
                ranges: vec![
                    (0.90, Duration::from_secs(0), Duration::from_secs(60)),
                    (0.09, Duration::from_secs(60), Duration::from_secs(600)),
                    (0.01, Duration::from_secs(600), Duration::from_secs(3600)),
                ],
            },
        }
    }
}

/// The distribution of the delay between an event and its visibility in Graph: a mixture of
/// uniform ranges, each with a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayModel {
    /// `(weight, min, max)` ranges; weights need not sum to 1. Empty means no delay.
    pub ranges: Vec<(f64, Duration, Duration)>,
}

impl Default for DelayModel {
    /// 85 % within 30 s..5 min, 13 % within 5..60 min, 2 % within 1..6 h.
    fn default() -> Self {
        Self {
            ranges: vec![
                (0.85, Duration::from_secs(30), Duration::from_secs(300)),
                (0.13, Duration::from_secs(300), Duration::from_secs(3600)),
                (
                    0.02,
                    Duration::from_secs(3600),
                    Duration::from_secs(6 * 3600),
                ),
            ],
        }
    }
}

impl DelayModel {
    /// Microsoft's last published latencies for sign-in and audit logs (P95 2 min, P99
    /// 5 min): 95 % within 30 s..2 min, 4 % within 2..5 min, and the last 1 % within 5..30 min
    /// (the upper end third parties report for non-interactive sign-ins). The default model is
    /// a stress case with a far heavier tail.
    pub fn published() -> Self {
        Self {
            ranges: vec![
                (0.95, Duration::from_secs(30), Duration::from_secs(120)),
                (0.04, Duration::from_secs(120), Duration::from_secs(300)),
                (0.01, Duration::from_secs(300), Duration::from_secs(1800)),
            ],
        }
    }

    /// Every event is visible as soon as it happens.
    pub fn none() -> Self {
        Self { ranges: Vec::new() }
    }

    /// Every event becomes visible exactly `d` after it happens.
    pub fn fixed(d: Duration) -> Self {
        Self {
            ranges: vec![(1.0, d, d)],
        }
    }

    /// Draws a delay in whole seconds.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        let total: f64 = self.ranges.iter().map(|r| r.0.max(0.0)).sum();
        if self.ranges.is_empty() || total <= 0.0 {
            return 0;
        }
        let mut x = rng.random::<f64>() * total;
        let mut chosen = &self.ranges[self.ranges.len() - 1];
        for r in &self.ranges {
            let w = r.0.max(0.0);
            if x < w {
                chosen = r;
                break;
            }
            x -= w;
        }
        let lo = chosen.1.as_secs().min(u64::from(u32::MAX));
        let hi = chosen.2.as_secs().min(u64::from(u32::MAX)).max(lo);
        let v = if hi == lo {
            lo
        } else {
            rng.random_range(lo..=hi)
        };
        u32::try_from(v).unwrap_or(u32::MAX)
    }
}

/// Reports-API throttling (sliding windows in simulated time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Requests allowed per app per tenant per window (Microsoft: 5 per 10 s).
    pub per_tenant: (u32, Duration),
    /// Requests allowed per app across all tenants per window (Microsoft: 122 per 10 s).
    pub per_app: (u32, Duration),
    /// Whether throttling is applied at all.
    pub enabled: bool,
    /// Whether 429 responses carry `Retry-After` (false tests the client's own backoff).
    pub retry_after_header: bool,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            per_tenant: (5, Duration::from_secs(10)),
            per_app: (122, Duration::from_secs(10)),
            enabled: true,
            retry_after_header: true,
        }
    }
}

impl ThrottleConfig {
    /// No throttling at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}
