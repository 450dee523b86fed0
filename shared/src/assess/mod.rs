//! The Identity Security Assessment: a tenant's identity hygiene baseline.
//!
//! [`assess`] turns an [`Input`] (the identity inventory and the last 30 days of sign-ins,
//! rebuilt from the tenant's OCSF events by [`InputBuilder`]) into a [`Report`]: findings in
//! five sections (identity inventory, MFA gaps, legacy authentication, risky permissions,
//! third-party apps), a score per section, the five most urgent fixes, chart data, and, when an
//! earlier report is given, what changed since (fixed, new, still open).
//!
//! A rule that needs data the tenant does not give (sign-in logs and `signInActivity` need
//! Entra ID P1; MFA registration needs P1 and `AuditLog.Read.All`) does not pass silently: the
//! section lists it under `not_assessed` with the reason, and its score covers only what was
//! assessed. The report renders to one self-contained HTML file ([`html::render`]) and to JSON
//! (the [`Report`] itself, described by `shared/schemas/assessment-report.schema.json`); each
//! finding is also an OCSF 1.8.0 Compliance Finding ([`ocsf::finding_events`]).

pub mod contact;
pub mod digest;
pub mod html;
pub mod input;
pub mod ocsf;
mod rules;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use input::{Input, InputBuilder, LastSignIn, is_legacy_client};

/// Version of the report's JSON layout.
pub const REPORT_VERSION: u32 = 1;
/// Evidence items listed per finding (the count is always the full count).
pub const MAX_EVIDENCE: usize = 25;

/// A section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Active users, guests, shared mailboxes, service accounts, and what was not cleaned up.
    Inventory,
    /// No MFA, weak factors only, conditional access exclusions, security defaults off.
    Mfa,
    /// IMAP, POP, SMTP AUTH, ActiveSync and other legacy protocols in use or not blocked.
    LegacyAuth,
    /// Privileged roles held too broadly, guests or apps in admin roles, admin consents, app
    /// credentials without expiry.
    Permissions,
    /// Third-party and OAuth apps by permission class.
    Apps,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 5] = [
        Section::Inventory,
        Section::Mfa,
        Section::LegacyAuth,
        Section::Permissions,
        Section::Apps,
    ];

    /// Stable label (HTML ids, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Inventory => "inventory",
            Section::Mfa => "mfa",
            Section::LegacyAuth => "legacy_auth",
            Section::Permissions => "permissions",
            Section::Apps => "apps",
        }
    }

    /// Title.
    pub fn title(self) -> &'static str {
        match self {
            Section::Inventory => "Identity inventory",
            Section::Mfa => "MFA gaps",
            Section::LegacyAuth => "Legacy authentication",
            Section::Permissions => "Risky permissions",
            Section::Apps => "Third-party and OAuth apps",
        }
    }
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth cleaning up.
    Low,
    /// Fix this quarter.
    Medium,
    /// Fix this month.
    High,
    /// Fix this week.
    Critical,
}

impl Severity {
    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u32 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// Caption.
    pub fn caption(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// Points a finding of this severity takes off its section's score of 100.
    pub fn penalty(self) -> u32 {
        match self {
            Severity::Low => 5,
            Severity::Medium => 12,
            Severity::High => 25,
            Severity::Critical => 40,
        }
    }
}

/// What a finding is about. One finding per kind and report; the kind is the key of the
/// comparison with an earlier report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Disabled accounts still holding licences.
    DisabledLicensed,
    /// Enabled member accounts older than 30 days that never signed in.
    NeverSignedIn,
    /// Enabled member accounts without a sign-in for 90 days.
    StaleMembers,
    /// Guests that never signed in or not for 90 days.
    StaleGuests,
    /// Members without any MFA method registered.
    NoMfa,
    /// Admins without a strong MFA method.
    AdminWithoutStrongMfa,
    /// Users whose only second factor is SMS or voice.
    WeakMfaOnly,
    /// Conditional access policies requiring MFA that exclude users, groups or roles.
    CaMfaExclusions,
    /// Neither security defaults nor an enforced conditional access policy requires MFA.
    NoMfaEnforcement,
    /// Sign-ins over legacy protocols in the last 30 days.
    LegacySignIns,
    /// Legacy authentication is not blocked (no security defaults, no blocking policy).
    LegacyNotBlocked,
    /// More than four Global Administrators.
    TooManyGlobalAdmins,
    /// Guests holding privileged roles.
    GuestAdmins,
    /// Service principals holding privileged roles.
    AppAdmins,
    /// Third-party apps with tenant-wide (admin) consent or application permissions to mail,
    /// files or the directory.
    AdminConsentThirdParty,
    /// App secrets or certificates that never expire or are valid for more than two years.
    CredentialsWithoutExpiry,
    /// Unverified third-party apps holding mail, directory or role permissions.
    RiskyApps,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 17] = [
        FindingKind::DisabledLicensed,
        FindingKind::NeverSignedIn,
        FindingKind::StaleMembers,
        FindingKind::StaleGuests,
        FindingKind::NoMfa,
        FindingKind::AdminWithoutStrongMfa,
        FindingKind::WeakMfaOnly,
        FindingKind::CaMfaExclusions,
        FindingKind::NoMfaEnforcement,
        FindingKind::LegacySignIns,
        FindingKind::LegacyNotBlocked,
        FindingKind::TooManyGlobalAdmins,
        FindingKind::GuestAdmins,
        FindingKind::AppAdmins,
        FindingKind::AdminConsentThirdParty,
        FindingKind::CredentialsWithoutExpiry,
        FindingKind::RiskyApps,
    ];

    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::DisabledLicensed => "disabled_licensed",
            FindingKind::NeverSignedIn => "never_signed_in",
            FindingKind::StaleMembers => "stale_members",
            FindingKind::StaleGuests => "stale_guests",
            FindingKind::NoMfa => "no_mfa",
            FindingKind::AdminWithoutStrongMfa => "admin_without_strong_mfa",
            FindingKind::WeakMfaOnly => "weak_mfa_only",
            FindingKind::CaMfaExclusions => "ca_mfa_exclusions",
            FindingKind::NoMfaEnforcement => "no_mfa_enforcement",
            FindingKind::LegacySignIns => "legacy_sign_ins",
            FindingKind::LegacyNotBlocked => "legacy_not_blocked",
            FindingKind::TooManyGlobalAdmins => "too_many_global_admins",
            FindingKind::GuestAdmins => "guest_admins",
            FindingKind::AppAdmins => "app_admins",
            FindingKind::AdminConsentThirdParty => "admin_consent_third_party",
            FindingKind::CredentialsWithoutExpiry => "credentials_without_expiry",
            FindingKind::RiskyApps => "risky_apps",
        }
    }

    /// The section it belongs to.
    pub fn section(self) -> Section {
        use FindingKind::*;
        match self {
            DisabledLicensed | NeverSignedIn | StaleMembers | StaleGuests => Section::Inventory,
            NoMfa | AdminWithoutStrongMfa | WeakMfaOnly | CaMfaExclusions | NoMfaEnforcement => {
                Section::Mfa
            }
            LegacySignIns | LegacyNotBlocked => Section::LegacyAuth,
            TooManyGlobalAdmins
            | GuestAdmins
            | AppAdmins
            | AdminConsentThirdParty
            | CredentialsWithoutExpiry => Section::Permissions,
            RiskyApps => Section::Apps,
        }
    }
}

/// One object behind a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Object id (user, app, policy, role holder), or a protocol name.
    pub id: String,
    /// What an operator recognises: UPN, app or policy name.
    pub name: String,
    /// Why this object is listed.
    pub detail: String,
}

/// A finding: what is wrong, with what evidence, why it matters and the fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// Its section.
    pub section: Section,
    /// How urgent.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What was found, with counts.
    pub summary: String,
    /// Objects concerned.
    pub count: u64,
    /// Up to [`MAX_EVIDENCE`] of them, most important first.
    pub evidence: Vec<Evidence>,
    /// Why it matters, in plain words.
    pub why: String,
    /// The fix, in plain words.
    pub fix: String,
}

/// A check that could not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAssessed {
    /// The finding kind that could not be checked.
    pub kind: FindingKind,
    /// Why, and what would make it possible.
    pub reason: String,
}

/// One section's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionReport {
    /// Which section.
    pub section: Section,
    /// Its title.
    pub title: String,
    /// 0-100 over the checks that ran; None when none could run.
    pub score: Option<u32>,
    /// Kinds found, in severity order.
    pub findings: Vec<FindingKind>,
    /// Checks that could not run.
    pub not_assessed: Vec<NotAssessed>,
}

/// Counts of the identity inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCounts {
    /// Users read.
    pub users: u64,
    /// Enabled members (not shared, room or equipment mailboxes).
    pub active_members: u64,
    /// Guests.
    pub guests: u64,
    /// Shared, room and equipment mailboxes.
    pub resource_mailboxes: u64,
    /// Disabled accounts.
    pub disabled: u64,
    /// Enabled members without a licence (service and sync accounts, mostly).
    pub unlicensed_members: u64,
    /// Service principals.
    pub apps: u64,
    /// Third-party service principals.
    pub third_party_apps: u64,
    /// Principals holding directory roles.
    pub role_holders: u64,
    /// Global Administrators.
    pub global_admins: u64,
    /// Conditional access policies.
    pub ca_policies: u64,
    /// Security defaults on (None: not read).
    pub security_defaults: Option<bool>,
}

/// Chart data: label → count, in display order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charts {
    /// Users by MFA strength (`strong`, `weak only`, `none`); empty when not read.
    pub mfa_coverage: Vec<(String, u64)>,
    /// Sign-ins of the window by protocol; empty without sign-in logs.
    pub sign_ins_by_protocol: Vec<(String, u64)>,
    /// Apps by permission class, most dangerous first.
    pub apps_by_permission_class: Vec<(String, u64)>,
    /// Users by state (active, guest, disabled, never signed in, stale, ...).
    pub users_by_state: Vec<(String, u64)>,
}

/// One row of the app inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRow {
    /// Service principal id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Publisher, when known.
    pub publisher: Option<String>,
    /// Publisher verified.
    pub verified: bool,
    /// Published by Microsoft.
    pub first_party: bool,
    /// Highest permission class.
    pub permission_class: String,
    /// Admin consent given.
    pub admin_consent: bool,
    /// Application permissions held.
    pub app_permissions: u64,
    /// Delegated grants.
    pub delegated_grants: u64,
}

/// What changed since an earlier report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// When the earlier report was generated.
    pub since: DateTime<Utc>,
    /// Findings of the earlier report that are gone.
    pub fixed: Vec<FindingKind>,
    /// Findings the earlier report did not have.
    pub new: Vec<FindingKind>,
    /// Findings in both.
    pub still_open: Vec<FindingKind>,
}

/// The tenant a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    /// Tenant GUID.
    pub id: String,
    /// A verified domain, when known.
    pub domain: Option<String>,
    /// The customer organization, when known.
    pub org: Option<String>,
}

/// Which data the report could use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// When the inventory data describes the tenant.
    pub as_of: Option<DateTime<Utc>>,
    /// Days of sign-ins looked at.
    pub window_days: u32,
    /// Sign-in log events in the window; None when the tenant has no sign-in logs (no P1).
    pub sign_ins: Option<u64>,
    /// MFA registration details were read.
    pub mfa_registration: bool,
    /// Last sign-in times (`signInActivity`) were read.
    pub last_sign_in: bool,
    /// What the inventory could not read.
    pub degraded: Vec<crate::inventory::Degradation>,
}

/// The Identity Security Assessment of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The tenant.
    pub tenant: TenantInfo,
    /// When the report was built.
    pub generated_at: DateTime<Utc>,
    /// Which data it used.
    pub coverage: Coverage,
    /// Score and findings per section, in report order.
    pub sections: Vec<SectionReport>,
    /// Mean of the section scores that could be computed.
    pub overall_score: Option<u32>,
    /// The five most urgent fixes (finding kinds), most urgent first.
    pub top_fixes: Vec<FindingKind>,
    /// Every finding, most urgent first.
    pub findings: Vec<Finding>,
    /// Inventory counts.
    pub inventory: InventoryCounts,
    /// Chart data.
    pub charts: Charts,
    /// Apps sorted by permission class (most dangerous first), then name.
    pub apps: Vec<AppRow>,
    /// What changed since the earlier report, when one was given.
    pub changes: Option<Changes>,
}

impl Report {
    /// The finding of `kind`, if present.
    pub fn finding(&self, kind: FindingKind) -> Option<&Finding> {
        self.findings.iter().find(|f| f.kind == kind)
    }

    /// The section's result.
    pub fn section(&self, s: Section) -> Option<&SectionReport> {
        self.sections.iter().find(|x| x.section == s)
    }
}

/// Builds the report of `input` at `now`, compared with `previous` when given.
pub fn assess(
    input: &Input,
    tenant: TenantInfo,
    now: DateTime<Utc>,
    previous: Option<&Report>,
) -> Report {
    let as_of = input.as_of.unwrap_or(now);
    let out = rules::run(input, as_of);
    let mut findings = out.findings;
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    let sections: Vec<SectionReport> = Section::ALL
        .iter()
        .map(|&s| {
            let mine: Vec<&Finding> = findings.iter().filter(|f| f.section == s).collect();
            let not_assessed: Vec<NotAssessed> = out
                .not_assessed
                .iter()
                .filter(|n| n.kind.section() == s)
                .cloned()
                .collect();
            let checks = FindingKind::ALL.iter().filter(|k| k.section() == s).count();
            let score = (not_assessed.len() < checks).then(|| {
                100u32.saturating_sub(mine.iter().map(|f| f.severity.penalty()).sum::<u32>())
            });
            SectionReport {
                section: s,
                title: s.title().to_string(),
                score,
                findings: mine.iter().map(|f| f.kind).collect(),
                not_assessed,
            }
        })
        .collect();
    let scored: Vec<u32> = sections.iter().filter_map(|s| s.score).collect();
    let overall_score = (!scored.is_empty()).then(|| {
        let n = u32::try_from(scored.len()).unwrap_or(1);
        scored.iter().sum::<u32>() / n
    });
    let top_fixes = findings.iter().take(5).map(|f| f.kind).collect();
    let changes = previous.map(|p| diff(p, &findings));
    Report {
        version: REPORT_VERSION,
        tenant,
        generated_at: now,
        coverage: Coverage {
            as_of: input.as_of,
            window_days: u32::try_from(input::WINDOW_DAYS).unwrap_or(30),
            sign_ins: input.sign_ins.as_ref().map(|s| s.total),
            mfa_registration: !input.mfa.is_empty(),
            last_sign_in: input
                .users
                .values()
                .any(|u| u.last_sign_in != LastSignIn::Unavailable),
            degraded: input.degraded.clone(),
        },
        sections,
        overall_score,
        top_fixes,
        findings,
        inventory: out.inventory,
        charts: out.charts,
        apps: out.apps,
        changes,
    }
}

/// What changed between an earlier report and these findings.
fn diff(previous: &Report, findings: &[Finding]) -> Changes {
    let before: BTreeMap<FindingKind, ()> =
        previous.findings.iter().map(|f| (f.kind, ())).collect();
    let now: BTreeMap<FindingKind, ()> = findings.iter().map(|f| (f.kind, ())).collect();
    Changes {
        since: previous.generated_at,
        fixed: before
            .keys()
            .filter(|k| !now.contains_key(k))
            .copied()
            .collect(),
        new: now
            .keys()
            .filter(|k| !before.contains_key(k))
            .copied()
            .collect(),
        still_open: now
            .keys()
            .filter(|k| before.contains_key(k))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
