//! The rule set: one function per finding kind, each returning the finding when it applies,
//! or saying why it could not be checked.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::input::{Input, LastSignIn, User};
use super::{
    AppRow, Charts, Evidence, Finding, FindingKind, InventoryCounts, MAX_EVIDENCE, NotAssessed,
    Severity,
};
use crate::inventory::classify::PermissionClass;

/// Days without a sign-in after which an account is stale.
pub const STALE_DAYS: i64 = 90;
/// Global Administrators Microsoft recommends at most.
pub const MAX_GLOBAL_ADMINS: usize = 4;
/// Credential lifetime beyond which it counts as "does not expire".
pub const MAX_CREDENTIAL_DAYS: i64 = 730;

const PERMISSION_CLASSES: [PermissionClass; 8] = [
    PermissionClass::RoleManagement,
    PermissionClass::DirectoryWrite,
    PermissionClass::MailWrite,
    PermissionClass::MailRead,
    PermissionClass::Files,
    PermissionClass::DirectoryRead,
    PermissionClass::Basic,
    PermissionClass::None,
];

fn class_rank(label: &str) -> usize {
    PERMISSION_CLASSES
        .iter()
        .position(|c| c.as_str() == label)
        .unwrap_or(PERMISSION_CLASSES.len())
}

fn is_sensitive_class(label: &str) -> bool {
    PERMISSION_CLASSES
        .iter()
        .find(|c| c.as_str() == label)
        .is_some_and(|c| c.is_sensitive())
}

pub(super) struct Output {
    pub findings: Vec<Finding>,
    pub not_assessed: Vec<NotAssessed>,
    pub inventory: InventoryCounts,
    pub charts: Charts,
    pub apps: Vec<AppRow>,
}

struct Ctx<'a> {
    input: &'a Input,
    as_of: DateTime<Utc>,
    findings: Vec<Finding>,
    not_assessed: Vec<NotAssessed>,
}

const NO_P1_SIGN_INS: &str = "No sign-in logs: the tenant has no Entra ID P1 (or P2) licence, so Microsoft Graph does not return sign-in logs. Legacy protocol use cannot be measured; whether it is blocked is still checked.";
const NO_SIGN_IN_ACTIVITY: &str = "Last sign-in times (signInActivity) could not be read: they need Entra ID P1 and AuditLog.Read.All.";
const NO_MFA_DATA: &str =
    "MFA registration details could not be read: they need Entra ID P1 and AuditLog.Read.All.";

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        kind: FindingKind,
        severity: Severity,
        title: &str,
        summary: String,
        mut evidence: Vec<Evidence>,
        count: usize,
        why: &str,
        fix: &str,
    ) {
        if count == 0 {
            return;
        }
        evidence.truncate(MAX_EVIDENCE);
        self.findings.push(Finding {
            kind,
            section: kind.section(),
            severity,
            title: title.to_string(),
            summary,
            count: count as u64,
            evidence,
            why: why.to_string(),
            fix: fix.to_string(),
        });
    }

    fn skip(&mut self, kind: FindingKind, reason: &str) {
        self.not_assessed.push(NotAssessed {
            kind,
            reason: reason.to_string(),
        });
    }

    fn stale(&self, u: &User) -> bool {
        match u.last_sign_in {
            LastSignIn::At(t) => t < self.as_of - Duration::days(STALE_DAYS),
            _ => false,
        }
    }

    fn old_enough(&self, u: &User) -> bool {
        u.created
            .is_none_or(|c| c < self.as_of - Duration::days(super::input::WINDOW_DAYS))
    }
}

fn ev(id: &str, name: &str, detail: impl Into<String>) -> Evidence {
    Evidence {
        id: id.to_string(),
        name: name.to_string(),
        detail: detail.into(),
    }
}

fn last_seen(u: &User) -> String {
    match u.last_sign_in {
        LastSignIn::At(t) => format!("last sign-in {}", t.format("%Y-%m-%d")),
        LastSignIn::Never => "never signed in".into(),
        LastSignIn::Unavailable => "last sign-in unknown".into(),
    }
}

pub(super) fn run(input: &Input, as_of: DateTime<Utc>) -> Output {
    let mut c = Ctx {
        input,
        as_of,
        findings: Vec::new(),
        not_assessed: Vec::new(),
    };
    inventory_rules(&mut c);
    mfa_rules(&mut c);
    legacy_rules(&mut c);
    permission_rules(&mut c);
    app_rules(&mut c);
    let (inventory, charts, apps) = figures(&c);
    Output {
        findings: c.findings,
        not_assessed: c.not_assessed,
        inventory,
        charts,
        apps,
    }
}

fn inventory_rules(c: &mut Ctx<'_>) {
    let users: Vec<&User> = c.input.users.values().collect();
    let disabled: Vec<&User> = users
        .iter()
        .copied()
        .filter(|u| u.enabled == Some(false) && u.licensed && !u.is_resource_mailbox())
        .collect();
    c.add(
        FindingKind::DisabledLicensed,
        Severity::Medium,
        "Disabled accounts still hold licences",
        format!("{} disabled accounts still have licences assigned.", disabled.len()),
        disabled.iter().map(|u| ev(&u.id, &u.name, "disabled, licensed")).collect(),
        disabled.len(),
        "A licence on a disabled account is paid for every month and usually means a leaver was never fully offboarded: the mailbox, OneDrive and group memberships are still there, and re-enabling the account restores all of it.",
        "Confirm each person has left, convert the mailbox to a shared mailbox if it must be kept, then remove the licences (Microsoft 365 admin center > Users > Licences and apps).",
    );
    let sign_in_known = users
        .iter()
        .any(|u| u.last_sign_in != LastSignIn::Unavailable);
    if !sign_in_known {
        for k in [
            FindingKind::NeverSignedIn,
            FindingKind::StaleMembers,
            FindingKind::StaleGuests,
        ] {
            c.skip(k, NO_SIGN_IN_ACTIVITY);
        }
        return;
    }
    let member = |u: &&User| !u.guest && u.is_enabled() && !u.is_resource_mailbox();
    let never: Vec<&User> = users
        .iter()
        .copied()
        .filter(|u| member(u) && u.last_sign_in == LastSignIn::Never && c.old_enough(u))
        .collect();
    c.add(
        FindingKind::NeverSignedIn,
        Severity::Medium,
        "Enabled accounts that have never signed in",
        format!(
            "{} enabled member accounts older than 30 days have never signed in.",
            never.len()
        ),
        never
            .iter()
            .map(|u| ev(&u.id, &u.name, if u.licensed { "never signed in, licensed" } else { "never signed in" }))
            .collect(),
        never.len(),
        "An account nobody uses is an account nobody watches: its password may be an initial one, it may have no MFA registered, and an attacker who guesses it is the first to register a second factor.",
        "Ask the owner of each account whether it is needed. Disable or delete the ones that are not; for service accounts, document the owner and exclude them from interactive sign-in.",
    );
    let stale: Vec<&User> = users
        .iter()
        .copied()
        .filter(|u| member(u) && c.stale(u))
        .collect();
    c.add(
        FindingKind::StaleMembers,
        Severity::Medium,
        "Enabled accounts unused for 90 days",
        format!(
            "{} enabled member accounts have not signed in for more than {STALE_DAYS} days.",
            stale.len()
        ),
        stale.iter().map(|u| ev(&u.id, &u.name, last_seen(u))).collect(),
        stale.len(),
        "Dormant accounts keep their access and their licences; their owners would not notice someone else using them.",
        "Disable accounts unused for 90 days after checking with their managers, remove their licences, and delete them after your retention period.",
    );
    let guests: Vec<&User> = users
        .iter()
        .copied()
        .filter(|u| {
            u.guest
                && u.is_enabled()
                && ((u.last_sign_in == LastSignIn::Never && c.old_enough(u)) || c.stale(u))
        })
        .collect();
    c.add(
        FindingKind::StaleGuests,
        Severity::Low,
        "Guests that never signed in or not for 90 days",
        format!("{} guest accounts are unused.", guests.len()),
        guests.iter().map(|u| ev(&u.id, &u.name, last_seen(u))).collect(),
        guests.len(),
        "Guests keep access to the Teams, SharePoint sites and files shared with them long after the collaboration ended; their own organization's security decides who controls them.",
        "Remove unused guests, and turn on an access review for guests (Entra ID Governance) or a quarterly manual review.",
    );
}

fn mfa_rules(c: &mut Ctx<'_>) {
    let input = c.input;
    let enabled = |id: &str| input.users.get(id).is_none_or(User::is_enabled);
    if input.mfa.is_empty() {
        for k in [
            FindingKind::NoMfa,
            FindingKind::AdminWithoutStrongMfa,
            FindingKind::WeakMfaOnly,
        ] {
            c.skip(k, NO_MFA_DATA);
        }
    } else {
        let regs: Vec<_> = input.mfa.values().filter(|r| enabled(&r.id)).collect();
        let none: Vec<_> = regs
            .iter()
            .filter(|r| !r.guest && r.strength == "no_mfa")
            .collect();
        let members = regs.iter().filter(|r| !r.guest).count();
        c.add(
            FindingKind::NoMfa,
            if members > 0 && none.len() * 4 >= members { Severity::Critical } else { Severity::High },
            "Users without MFA",
            format!("{} of {members} enabled members have no MFA method registered.", none.len()),
            none.iter().map(|r| ev(&r.id, &r.name, if r.admin { "admin, no MFA" } else { "no MFA" })).collect(),
            none.len(),
            "A password alone is stolen by phishing, reused from another breach or guessed by password spraying; MFA stops almost all of these attacks. An account without a registered method can also be claimed by whoever signs in first and registers their own phone.",
            "Require MFA registration for everyone (security defaults, or a conditional access policy requiring MFA for all users), and follow up with the users listed until each has registered the Microsoft Authenticator app.",
        );
        let admins: Vec<_> = regs
            .iter()
            .filter(|r| r.admin && r.strength != "mfa")
            .collect();
        c.add(
            FindingKind::AdminWithoutStrongMfa,
            Severity::Critical,
            "Administrators without strong MFA",
            format!("{} administrators have no MFA or only SMS/voice.", admins.len()),
            admins.iter().map(|r| ev(&r.id, &r.name, r.strength.replace('_', " "))).collect(),
            admins.len(),
            "An administrator account is the key to the whole tenant. SMS and voice codes can be intercepted or redirected by SIM swapping; no MFA at all means one phished password is enough.",
            "Register a phishing-resistant method (FIDO2 security key, Windows Hello, or Authenticator passkey) for every admin this week, then require it with a conditional access authentication strength for admin roles.",
        );
        let weak: Vec<_> = regs
            .iter()
            .filter(|r| r.strength == "weak_mfa_only")
            .collect();
        c.add(
            FindingKind::WeakMfaOnly,
            Severity::Medium,
            "Users relying on SMS or voice only",
            format!("{} users have only SMS or voice as a second factor.", weak.len()),
            weak.iter().map(|r| ev(&r.id, &r.name, "SMS/voice only")).collect(),
            weak.len(),
            "Text messages and calls are the weakest second factor: SIM swapping and real-time phishing kits get past them.",
            "Move these users to the Microsoft Authenticator app (push with number matching) and disable SMS and voice in the authentication methods policy once they have.",
        );
    }
    let excl: Vec<_> = input
        .policies
        .values()
        .filter(|p| p.is_enabled() && p.requires_mfa() && p.has_exclusions())
        .collect();
    c.add(
        FindingKind::CaMfaExclusions,
        Severity::Medium,
        "MFA policies with exclusions",
        format!("{} enforced MFA policies exclude users, groups or roles.", excl.len()),
        excl.iter()
            .map(|p| {
                ev(&p.id, &p.name, format!(
                    "excludes {} users, {} groups, {} roles",
                    p.excluded_users, p.excluded_groups, p.excluded_roles
                ))
            })
            .collect(),
        excl.len(),
        "Every exclusion is an account that signs in with a password alone. Exclusions made for a migration or a broken device tend to stay for years, and attackers look for exactly these accounts.",
        "Review each excluded user, group and role. Keep only the emergency access (break-glass) accounts, which should be monitored; remove the rest or replace them with a narrower policy.",
    );
    match input.security_defaults {
        None if input.policies.is_empty() => c.skip(
            FindingKind::NoMfaEnforcement,
            "Conditional access and security defaults could not be read (Policy.Read.All).",
        ),
        sd => {
            let enforced = input
                .policies
                .values()
                .filter(|p| p.is_enabled() && p.requires_mfa())
                .count();
            let missing = sd != Some(true) && enforced == 0;
            c.add(
                FindingKind::NoMfaEnforcement,
                Severity::High,
                "Nothing requires MFA",
                "Security defaults are off and no enforced conditional access policy requires MFA.".to_string(),
                vec![ev("securityDefaults", "Security defaults", "off")],
                usize::from(missing),
                "Registered MFA only helps when sign-ins are required to use it. Without security defaults or a conditional access policy, users sign in with their password alone.",
                "Turn on security defaults (tenants without Entra ID P1), or create a conditional access policy that requires MFA for all users and all cloud apps, excluding only two monitored break-glass accounts.",
            );
        }
    }
}

fn legacy_rules(c: &mut Ctx<'_>) {
    let input = c.input;
    match &input.sign_ins {
        None => c.skip(FindingKind::LegacySignIns, NO_P1_SIGN_INS),
        Some(s) => {
            let mut users: Vec<_> = s.legacy_by_user.iter().collect();
            users.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
            let legacy: u64 = s.legacy_by_user.values().map(|(n, _)| n).sum();
            let protocols: Vec<String> = s
                .by_client_app
                .iter()
                .filter(|(k, _)| super::is_legacy_client(k))
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            c.add(
                FindingKind::LegacySignIns,
                Severity::High,
                "Legacy protocols are still in use",
                format!(
                    "{legacy} sign-ins by {} users used legacy protocols in the last 30 days ({}).",
                    users.len(),
                    protocols.join(", ")
                ),
                users
                    .iter()
                    .map(|(u, (n, p))| {
                        ev(u, u, format!(
                            "{n} sign-ins via {}",
                            p.iter().cloned().collect::<Vec<_>>().join(", ")
                        ))
                    })
                    .collect(),
                users.len(),
                "IMAP, POP, SMTP AUTH, Exchange ActiveSync with basic authentication and other legacy protocols cannot do MFA. They are the favourite door for password spraying: a correct password is enough.",
                "Find what each listed user runs (old mail apps, printers and scanners sending mail, scripts) and move it to modern authentication, then block legacy authentication with conditional access or security defaults.",
            );
        }
    }
    let blocking: Vec<_> = input
        .policies
        .values()
        .filter(|p| p.blocks_legacy())
        .collect();
    if input.security_defaults.is_none() && input.policies.is_empty() {
        c.skip(
            FindingKind::LegacyNotBlocked,
            "Conditional access and security defaults could not be read (Policy.Read.All).",
        );
        return;
    }
    let sd_on = input.security_defaults == Some(true);
    let unblocked = !sd_on && blocking.is_empty();
    // Blocked, but not for everyone: the excluded accounts keep a door without MFA.
    let partial: Vec<_> = if sd_on || blocking.iter().any(|p| !p.has_exclusions()) {
        Vec::new()
    } else {
        blocking.clone()
    };
    let (severity, summary, evidence, count) = if unblocked {
        (
            Severity::High,
            "Security defaults are off and no enforced conditional access policy blocks legacy client apps.".to_string(),
            input
                .policies
                .values()
                .filter(|p| p.grant_controls.iter().any(|g| g.eq_ignore_ascii_case("block")))
                .map(|p| ev(&p.id, &p.name, format!("state {}, does not block legacy clients for all users", p.state)))
                .collect(),
            1,
        )
    } else {
        (
            Severity::Medium,
            format!(
                "Legacy authentication is blocked, but {} blocking policies exclude users, groups or roles, who can still sign in without MFA.",
                partial.len()
            ),
            partial
                .iter()
                .map(|p| {
                    ev(
                        &p.id,
                        &p.name,
                        format!(
                            "excludes {} users, {} groups, {} roles",
                            p.excluded_users, p.excluded_groups, p.excluded_roles
                        ),
                    )
                })
                .collect(),
            partial.len(),
        )
    };
    c.add(
        FindingKind::LegacyNotBlocked,
        severity,
        "Legacy authentication is not blocked for everyone",
        summary,
        evidence,
        count,
        "Even if nobody uses legacy protocols today, an attacker can: a sign-in over IMAP or SMTP AUTH bypasses MFA entirely. Accounts excluded from the block (often service accounts with old passwords) are the first ones password spraying finds.",
        "Create a conditional access policy for all users, client apps 'Exchange ActiveSync clients' and 'Other clients', grant: Block (or turn on security defaults); run it report-only for a week first to see what breaks. Move excluded service accounts to modern authentication (OAuth SMTP, Graph) and remove the exclusion.",
    );
}

fn permission_rules(c: &mut Ctx<'_>) {
    let input = c.input;
    let gas: Vec<_> = input.roles.values().filter(|r| r.global_admin).collect();
    c.add(
        FindingKind::TooManyGlobalAdmins,
        Severity::Medium,
        "Too many Global Administrators",
        format!(
            "{} principals hold Global Administrator; Microsoft recommends fewer than five.",
            gas.len()
        ),
        gas.iter().map(|r| ev(&r.id, &r.name, r.principal_type.replace('_', " "))).collect(),
        if gas.len() > MAX_GLOBAL_ADMINS { gas.len() } else { 0 },
        "Each Global Administrator can read every mailbox, reset every password and hand the tenant to someone else. The more of them, the more phishing targets that end the game.",
        "Keep two to four Global Administrators (two of them break-glass accounts). Give everyone else the least role that does the job (User, Exchange, Helpdesk Administrator), ideally eligible through PIM.",
    );
    let guests: Vec<_> = input.roles.values().filter(|r| r.guest_admin).collect();
    c.add(
        FindingKind::GuestAdmins,
        Severity::High,
        "Guests hold admin roles",
        format!("{} guest accounts hold privileged directory roles.", guests.len()),
        guests.iter().map(|r| ev(&r.id, &r.name, r.roles.join(", "))).collect(),
        guests.len(),
        "A guest signs in with another organization's account, MFA and password policy. If that organization is breached, so is your tenant.",
        "Remove admin roles from guests. If an outside partner (an MSP) needs admin access, use GDAP or a named member account in your tenant under your MFA policy.",
    );
    let apps: Vec<_> = input
        .roles
        .values()
        .filter(|r| r.admin && r.principal_type == "service_principal")
        .collect();
    c.add(
        FindingKind::AppAdmins,
        Severity::High,
        "Apps hold admin roles",
        format!("{} service principals hold privileged directory roles.", apps.len()),
        apps.iter().map(|r| ev(&r.id, &r.name, r.roles.join(", "))).collect(),
        apps.len(),
        "An app in an admin role acts with a secret or certificate, without MFA and without anyone signing in. Whoever finds the secret in a script or a repository is an administrator.",
        "Check each app is still needed and who owns it. Replace the directory role by the narrowest Graph application permission, and rotate its credentials.",
    );
    let consent: Vec<_> = input
        .apps
        .values()
        .filter(|a| {
            !a.first_party
                && is_sensitive_class(&a.class)
                && (a.admin_consent || !a.app_permissions.is_empty())
        })
        .collect();
    c.add(
        FindingKind::AdminConsentThirdParty,
        Severity::High,
        "Third-party apps with tenant-wide access",
        format!(
            "{} third-party apps hold admin-consented or application permissions to mail, files or the directory.",
            consent.len()
        ),
        consent
            .iter()
            .map(|a| {
                ev(&a.id, &a.name, format!(
                    "{} ({}), {}{} application permissions",
                    a.class.replace('_', " "),
                    a.publisher.as_deref().unwrap_or("unknown publisher"),
                    if a.admin_consent { "admin consent, " } else { "" },
                    a.app_permissions.len()
                ))
            })
            .collect(),
        consent.len(),
        "An admin consent or an application permission gives the app access to every user's data, not just the person who clicked. A compromised or malicious vendor then reads the whole tenant's mail without signing in.",
        "Review each app with its business owner. Remove the ones not in use (Enterprise applications > Delete), reduce the others to the permissions they need, and turn on the admin consent workflow so users cannot consent on their own.",
    );
    let limit = c.as_of + Duration::days(MAX_CREDENTIAL_DAYS);
    let creds: Vec<_> = input
        .apps
        .values()
        .filter_map(|a| {
            let long: Vec<_> = a
                .credentials
                .iter()
                .filter(|cr| cr.end.is_none_or(|e| e > limit))
                .collect();
            (!long.is_empty()).then(|| {
                ev(
                    &a.id,
                    &a.name,
                    format!(
                        "{} {}",
                        long.len(),
                        long.iter()
                            .map(|cr| match cr.end {
                                Some(e) => format!("{} until {}", cr.kind, e.format("%Y-%m-%d")),
                                None => format!("{} without expiry", cr.kind),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .collect();
    c.add(
        FindingKind::CredentialsWithoutExpiry,
        Severity::Medium,
        "App credentials that never expire",
        format!(
            "{} apps have secrets or certificates valid for more than two years or without expiry.",
            creds.len()
        ),
        creds.clone(),
        creds.len(),
        "A secret that never expires is never rotated: a copy left in an old script, a laptop or a repository works forever.",
        "Rotate these credentials with an expiry of six to twelve months (certificates rather than secrets), and set an app management policy that limits credential lifetime.",
    );
}

fn app_rules(c: &mut Ctx<'_>) {
    let risky: Vec<_> = c
        .input
        .apps
        .values()
        .filter(|a| a.labels.iter().any(|l| l == "risky"))
        .collect();
    let mut risky = risky;
    risky.sort_by(|a, b| {
        class_rank(&a.class)
            .cmp(&class_rank(&b.class))
            .then(a.name.cmp(&b.name))
    });
    c.add(
        FindingKind::RiskyApps,
        Severity::High,
        "Unverified apps with sensitive permissions",
        format!(
            "{} third-party apps from unverified publishers hold mail, directory or role permissions.",
            risky.len()
        ),
        risky
            .iter()
            .map(|a| {
                ev(&a.id, &a.name, format!(
                    "{} ({})",
                    a.class.replace('_', " "),
                    a.publisher.as_deref().unwrap_or("unknown publisher")
                ))
            })
            .collect(),
        risky.len(),
        "Consent phishing works by getting a user to approve an app that looks harmless; once approved, the app reads mail or changes the directory with a token that survives password resets and MFA.",
        "Check every listed app: if nobody recognises it, delete it and revoke its grants, then review the sign-ins of the users who consented. Allow users to consent only to verified publishers with low-risk permissions.",
    );
}

fn figures(c: &Ctx<'_>) -> (InventoryCounts, Charts, Vec<AppRow>) {
    let i = c.input;
    let users: Vec<&User> = i.users.values().collect();
    let count = |f: &dyn Fn(&User) -> bool| users.iter().filter(|u| f(u)).count() as u64;
    let inv = InventoryCounts {
        users: users.len() as u64,
        active_members: count(&|u| !u.guest && u.is_enabled() && !u.is_resource_mailbox()),
        guests: count(&|u| u.guest),
        resource_mailboxes: count(&|u| u.is_resource_mailbox()),
        disabled: count(&|u| u.enabled == Some(false)),
        unlicensed_members: count(&|u| {
            !u.guest && u.is_enabled() && !u.licensed && !u.is_resource_mailbox()
        }),
        apps: i.apps.len() as u64,
        third_party_apps: i.apps.values().filter(|a| !a.first_party).count() as u64,
        role_holders: i.roles.len() as u64,
        global_admins: i.roles.values().filter(|r| r.global_admin).count() as u64,
        ca_policies: i.policies.len() as u64,
        security_defaults: i.security_defaults,
    };
    let mut charts = Charts::default();
    if !i.mfa.is_empty() {
        let n = |s: &str| i.mfa.values().filter(|r| r.strength == s).count() as u64;
        charts.mfa_coverage = vec![
            ("Strong MFA".into(), n("mfa")),
            ("SMS/voice only".into(), n("weak_mfa_only")),
            ("No MFA".into(), n("no_mfa")),
        ];
    }
    if let Some(s) = &i.sign_ins {
        let mut v: Vec<(String, u64)> = s
            .by_client_app
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        charts.sign_ins_by_protocol = v;
    }
    let mut classes: BTreeMap<usize, u64> = BTreeMap::new();
    for a in i.apps.values() {
        *classes.entry(class_rank(&a.class)).or_default() += 1;
    }
    charts.apps_by_permission_class = classes
        .into_iter()
        .map(|(r, n)| {
            let label = PERMISSION_CLASSES.get(r).map_or("unknown", |c| c.as_str());
            (label.replace('_', " "), n)
        })
        .collect();
    let mut states: Vec<(String, u64)> = vec![
        ("Active members".into(), 0),
        ("Never signed in".into(), 0),
        ("Stale (90 days)".into(), 0),
        ("Guests".into(), 0),
        ("Shared/resource mailboxes".into(), 0),
        ("Disabled".into(), 0),
    ];
    for u in &users {
        let idx = if u.is_resource_mailbox() {
            4
        } else if u.enabled == Some(false) {
            5
        } else if u.guest {
            3
        } else if c.stale(u) {
            2
        } else if u.last_sign_in == LastSignIn::Never {
            1
        } else {
            0
        };
        if let Some(s) = states.get_mut(idx) {
            s.1 += 1;
        }
    }
    charts.users_by_state = states;
    let mut apps: Vec<AppRow> = i
        .apps
        .values()
        .map(|a| AppRow {
            id: a.id.clone(),
            name: a.name.clone(),
            publisher: a.publisher.clone(),
            verified: a.verified,
            first_party: a.first_party,
            permission_class: a.class.clone(),
            admin_consent: a.admin_consent,
            app_permissions: a.app_permissions.len() as u64,
            delegated_grants: a.delegated_grants,
        })
        .collect();
    apps.sort_by(|a, b| {
        class_rank(&a.permission_class)
            .cmp(&class_rank(&b.permission_class))
            .then(a.first_party.cmp(&b.first_party))
            .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    (inv, charts, apps)
}
