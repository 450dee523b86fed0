//! Every finding kind against a tenant that triggers it and one that does not.

use chrono::{DateTime, Duration, Utc};

use super::input::{
    App, CaPolicy, Credential, Input, LastSignIn, MfaRegistration, RoleHolder, SignIns, User,
};
use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_793_577_600, 0).unwrap_or_default()
}

fn user(id: &str) -> User {
    User {
        id: id.into(),
        name: format!("{id}@contoso.example"),
        guest: false,
        enabled: Some(true),
        licensed: true,
        mailbox: Some("user".into()),
        created: Some(now() - Duration::days(400)),
        last_sign_in: LastSignIn::At(now() - Duration::days(1)),
    }
}

fn reg(id: &str, strength: &str, admin: bool) -> MfaRegistration {
    MfaRegistration {
        id: id.into(),
        name: format!("{id}@contoso.example"),
        strength: strength.into(),
        admin,
        guest: false,
    }
}

fn holder(id: &str, ga: bool) -> RoleHolder {
    RoleHolder {
        id: id.into(),
        name: format!("{id}@contoso.example"),
        principal_type: "user".into(),
        roles: vec![if ga {
            "Global Administrator".into()
        } else {
            "User Administrator".into()
        }],
        admin: true,
        global_admin: ga,
        guest_admin: false,
    }
}

fn app(id: &str) -> App {
    App {
        id: id.into(),
        name: format!("App {id}"),
        publisher: Some("Contoso".into()),
        verified: true,
        first_party: false,
        class: "basic".into(),
        admin_consent: false,
        app_permissions: vec![],
        delegated_grants: 3,
        credentials: vec![Credential {
            kind: "certificate".into(),
            end: Some(now() + Duration::days(300)),
        }],
        labels: vec!["class:basic".into(), "third_party".into()],
    }
}

fn policy(id: &str, grant: &str, apps: &[&str]) -> CaPolicy {
    CaPolicy {
        id: id.into(),
        name: format!("Policy {id}"),
        state: "enabled".into(),
        include_users: vec!["All".into()],
        client_app_types: apps.iter().map(|s| s.to_string()).collect(),
        grant_controls: vec![grant.into()],
        excluded_users: 0,
        excluded_groups: 0,
        excluded_roles: 0,
    }
}

/// A tenant in good shape: no rule fires.
fn clean() -> Input {
    let mut i = Input {
        tenant_id: "t".into(),
        as_of: Some(now()),
        security_defaults: Some(false),
        sign_ins: Some(SignIns::default()),
        ..Input::default()
    };
    for id in ["u1", "u2", "u3"] {
        i.users.insert(id.into(), user(id));
        i.mfa.insert(id.into(), reg(id, "mfa", id == "u1"));
    }
    let mut shared = user("shared1");
    shared.enabled = Some(false);
    shared.mailbox = Some("shared".into());
    shared.last_sign_in = LastSignIn::Never;
    i.users.insert("shared1".into(), shared);
    i.roles.insert("u1".into(), holder("u1", true));
    i.roles.insert("u2".into(), holder("u2", true));
    i.apps.insert("a1".into(), app("a1"));
    i.policies
        .insert("p1".into(), policy("p1", "mfa", &["all"]));
    i.policies.insert(
        "p2".into(),
        policy("p2", "block", &["exchangeActiveSync", "other"]),
    );
    if let Some(s) = i.sign_ins.as_mut() {
        s.total = 10;
        s.by_client_app.insert("Browser".into(), 10);
    }
    i
}

fn kinds(i: &Input) -> Vec<FindingKind> {
    let r = assess(
        i,
        TenantInfo {
            id: "t".into(),
            domain: None,
            org: None,
        },
        now(),
        None,
    );
    r.findings.iter().map(|f| f.kind).collect()
}

type Mutation = fn(&mut Input);

fn triggers() -> Vec<(FindingKind, Mutation)> {
    vec![
        (FindingKind::DisabledLicensed, |i| {
            if let Some(u) = i.users.get_mut("u3") {
                u.enabled = Some(false);
            }
        }),
        (FindingKind::NeverSignedIn, |i| {
            if let Some(u) = i.users.get_mut("u3") {
                u.last_sign_in = LastSignIn::Never;
            }
        }),
        (FindingKind::StaleMembers, |i| {
            if let Some(u) = i.users.get_mut("u3") {
                u.last_sign_in = LastSignIn::At(now() - Duration::days(120));
            }
        }),
        (FindingKind::StaleGuests, |i| {
            let mut g = user("g1");
            g.guest = true;
            g.licensed = false;
            g.last_sign_in = LastSignIn::Never;
            i.users.insert("g1".into(), g);
        }),
        (FindingKind::NoMfa, |i| {
            i.mfa.insert("u3".into(), reg("u3", "no_mfa", false));
        }),
        (FindingKind::AdminWithoutStrongMfa, |i| {
            // An admin on SMS only: weak MFA as well.
            i.mfa.insert("u1".into(), reg("u1", "weak_mfa_only", true));
        }),
        (FindingKind::WeakMfaOnly, |i| {
            i.mfa.insert("u3".into(), reg("u3", "weak_mfa_only", false));
        }),
        (FindingKind::CaMfaExclusions, |i| {
            if let Some(p) = i.policies.get_mut("p1") {
                p.excluded_users = 2;
            }
        }),
        (FindingKind::NoMfaEnforcement, |i| {
            if let Some(p) = i.policies.get_mut("p1") {
                p.state = "enabledForReportingButNotEnforced".into();
            }
        }),
        (FindingKind::LegacySignIns, |i| {
            if let Some(s) = i.sign_ins.as_mut() {
                s.by_client_app.insert("IMAP4".into(), 4);
                s.legacy_by_user.insert(
                    "u2@contoso.example".into(),
                    (4, ["IMAP4".to_string()].into()),
                );
            }
        }),
        (FindingKind::LegacyNotBlocked, |i| {
            if let Some(p) = i.policies.get_mut("p2") {
                p.client_app_types = vec!["browser".into()];
            }
        }),
        (FindingKind::TooManyGlobalAdmins, |i| {
            for id in ["u3", "x4", "x5"] {
                i.roles.insert(id.into(), holder(id, true));
            }
        }),
        (FindingKind::GuestAdmins, |i| {
            let mut h = holder("g2", false);
            h.guest_admin = true;
            i.roles.insert("g2".into(), h);
        }),
        (FindingKind::AppAdmins, |i| {
            let mut h = holder("sp1", false);
            h.principal_type = "service_principal".into();
            i.roles.insert("sp1".into(), h);
        }),
        (FindingKind::AdminConsentThirdParty, |i| {
            if let Some(a) = i.apps.get_mut("a1") {
                a.class = "mail_read".into();
                a.admin_consent = true;
            }
        }),
        (FindingKind::CredentialsWithoutExpiry, |i| {
            if let Some(a) = i.apps.get_mut("a1") {
                a.credentials.push(Credential {
                    kind: "secret".into(),
                    end: None,
                });
            }
        }),
        (FindingKind::RiskyApps, |i| {
            if let Some(a) = i.apps.get_mut("a1") {
                a.labels.push("risky".into());
            }
        }),
    ]
}

#[test]
fn a_clean_tenant_has_no_findings() {
    assert_eq!(kinds(&clean()), Vec::<FindingKind>::new());
}

#[test]
fn every_kind_has_a_trigger_and_fires_only_there() {
    let t = triggers();
    let covered: Vec<FindingKind> = t.iter().map(|(k, _)| *k).collect();
    assert_eq!(covered, FindingKind::ALL.to_vec(), "every kind is tested");
    for (kind, mutate) in t {
        let mut i = clean();
        mutate(&mut i);
        let found = kinds(&i);
        assert!(found.contains(&kind), "{kind:?} did not fire: {found:?}");
        let extra: Vec<_> = found
            .iter()
            .filter(|k| {
                **k != kind
                    && !(kind == FindingKind::AdminWithoutStrongMfa
                        && **k == FindingKind::WeakMfaOnly)
            })
            .collect();
        assert!(extra.is_empty(), "{kind:?} also fired {extra:?}");
    }
}

#[test]
fn a_legacy_block_with_exclusions_is_a_medium_finding() {
    let mut i = clean();
    if let Some(p) = i.policies.get_mut("p2") {
        p.client_app_types = vec!["all".into()];
        p.excluded_groups = 1;
    }
    let r = assess(
        &i,
        TenantInfo {
            id: "t".into(),
            domain: None,
            org: None,
        },
        now(),
        None,
    );
    let f = r.finding(FindingKind::LegacyNotBlocked).unwrap();
    assert_eq!((f.severity, f.count), (Severity::Medium, 1));
    assert_eq!(f.evidence[0].id, "p2");
    // Without the exclusion, a block of all client apps blocks legacy ones too.
    if let Some(p) = i.policies.get_mut("p2") {
        p.excluded_groups = 0;
    }
    assert!(!kinds(&i).contains(&FindingKind::LegacyNotBlocked));
    // Security defaults block legacy authentication for everyone.
    i.policies.clear();
    i.security_defaults = Some(true);
    assert!(!kinds(&i).contains(&FindingKind::LegacyNotBlocked));
}

#[test]
fn evidence_names_the_objects_with_counts() {
    let mut i = clean();
    for n in 0..40 {
        let id = format!("n{n}");
        i.users.insert(id.clone(), user(&id));
        i.mfa.insert(id.clone(), reg(&id, "no_mfa", false));
    }
    let r = assess(
        &i,
        TenantInfo {
            id: "t".into(),
            domain: None,
            org: None,
        },
        now(),
        None,
    );
    let f = r.finding(FindingKind::NoMfa).unwrap();
    assert_eq!(f.count, 40);
    assert_eq!(f.evidence.len(), MAX_EVIDENCE);
    assert!(f.summary.contains("40 of 43"), "{}", f.summary);
    assert_eq!(f.severity, Severity::Critical, "most members without MFA");
    assert!(
        f.evidence
            .iter()
            .all(|e| e.name.ends_with("@contoso.example"))
    );
    assert_eq!(r.top_fixes.first(), Some(&FindingKind::NoMfa));
    assert!(r.section(Section::Mfa).unwrap().score.unwrap() < 100);
    assert_eq!(r.section(Section::Apps).unwrap().score, Some(100));
}

#[test]
fn without_p1_sign_in_checks_are_not_assessed_not_passed() {
    let mut i = clean();
    i.sign_ins = None;
    i.mfa.clear();
    for u in i.users.values_mut() {
        u.last_sign_in = LastSignIn::Unavailable;
    }
    let r = assess(
        &i,
        TenantInfo {
            id: "t".into(),
            domain: None,
            org: None,
        },
        now(),
        None,
    );
    let legacy = r.section(Section::LegacyAuth).unwrap();
    assert_eq!(legacy.not_assessed.len(), 1);
    assert_eq!(legacy.not_assessed[0].kind, FindingKind::LegacySignIns);
    assert!(legacy.score.is_some(), "blocking is still checked");
    let mfa = r.section(Section::Mfa).unwrap();
    assert_eq!(mfa.not_assessed.len(), 3);
    let inv = r.section(Section::Inventory).unwrap();
    assert_eq!(inv.not_assessed.len(), 3);
    assert!(r.charts.sign_ins_by_protocol.is_empty());
    assert!(r.charts.mfa_coverage.is_empty());
    assert_eq!(r.coverage.sign_ins, None);
    let html = html::render(&r);
    assert!(html.contains("id=\"no-sign-in-logs\""));
    assert!(html.contains("Sign-in logs not available"));
}

#[test]
fn changes_since_an_earlier_report() {
    let tenant = TenantInfo {
        id: "t".into(),
        domain: None,
        org: None,
    };
    let mut before = clean();
    before.mfa.insert("u3".into(), reg("u3", "no_mfa", false));
    if let Some(a) = before.apps.get_mut("a1") {
        a.labels.push("risky".into());
    }
    let first = assess(&before, tenant.clone(), now() - Duration::days(7), None);
    let mut after = clean();
    after.mfa.insert("u3".into(), reg("u3", "no_mfa", false));
    if let Some(u) = after.users.get_mut("u2") {
        u.enabled = Some(false);
    }
    let second = assess(&after, tenant, now(), Some(&first));
    let c = second.changes.as_ref().unwrap();
    assert_eq!(c.fixed, vec![FindingKind::RiskyApps]);
    assert_eq!(c.new, vec![FindingKind::DisabledLicensed]);
    assert_eq!(c.still_open, vec![FindingKind::NoMfa]);
    assert_eq!(c.since, first.generated_at);
    // The report survives a JSON round trip (the next run reads it back).
    let json = serde_json::to_string(&second).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, second);
    // OCSF: a Create for the new one, an Update for the open one, a Close for the fixed one.
    let evs = ocsf::finding_events(&second, crate::Cloud::Global);
    let act = |k: FindingKind| {
        evs.iter()
            .find(|e| e["compliance"]["control"] == k.as_str())
            .map(|e| {
                (
                    e["activity_id"].as_u64(),
                    e["compliance"]["status_id"].as_u64(),
                )
            })
    };
    assert_eq!(act(FindingKind::DisabledLicensed), Some((Some(1), Some(3))));
    assert_eq!(act(FindingKind::NoMfa), Some((Some(2), Some(3))));
    assert_eq!(act(FindingKind::RiskyApps), Some((Some(3), Some(1))));
    for e in &evs {
        assert_eq!(crate::ocsf::check_event(e), Ok(()), "{e}");
    }
    let uid = |r: &Report| {
        ocsf::finding_events(r, crate::Cloud::Global)
            .into_iter()
            .find(|e| e["compliance"]["control"] == "no_mfa")
            .map(|e| e["finding_info"]["uid"].clone())
    };
    assert_eq!(
        uid(&first),
        uid(&second),
        "the same problem is the same finding"
    );
}

#[test]
fn html_is_self_contained_and_escapes_tenant_data() {
    let mut i = clean();
    if let Some(a) = i.apps.get_mut("a1") {
        a.name = "<script>alert(1)</script>".into();
        a.labels.push("risky".into());
    }
    let r = assess(
        &i,
        TenantInfo {
            id: "t".into(),
            domain: Some("contoso.example".into()),
            org: Some("Contoso & Co".into()),
        },
        now(),
        None,
    );
    let html = html::render(&r);
    assert!(
        !html.contains("<script"),
        "no scripts, and tenant text is escaped"
    );
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("Contoso &amp; Co"));
    for bad in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(bad), "external reference {bad}");
    }
    for s in Section::ALL {
        assert!(html.contains(&format!("id=\"section-{}\"", s.as_str())));
    }
    for c in [
        "users-by-state",
        "mfa-coverage",
        "sign-ins-by-protocol",
        "apps-by-permission-class",
    ] {
        assert!(html.contains(&format!("id=\"chart-{c}\"")), "{c}");
    }
    assert!(html.contains("@media print"));
}
