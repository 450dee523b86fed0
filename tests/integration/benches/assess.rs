//! `make assess-bench`: time to build the Identity Security Assessment of a 10,000-user tenant,
//! optimised, from its OCSF events as the embedded pipeline writes them (NDJSON): 10,000 user
//! and 10,000 MFA inventory events, 400 apps, 60 role holders, 25 conditional access policies,
//! and 30 days of sign-ins (300,000). Phases: parse the events and rebuild the inventory
//! (what `itdr assess` does with the events file), run the rules, render the HTML, write the
//! JSON. Not part of `make test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use itdr_shared::assess::{self, InputBuilder, TenantInfo};
use serde_json::{Value, json};

const TENANT: &str = "5b8a4c2e-1d3f-4e6a-9b7c-0a1b2c3d4e5f";
const USERS: usize = 10_000;
const APPS: usize = 400;
const ROLE_HOLDERS: usize = 60;
const POLICIES: usize = 25;
const SIGN_INS: usize = 300_000;

fn meta(log: &str, feature: &str) -> Value {
    json!({"tenant_uid": TENANT, "log_name": log, "version": "1.8.0",
        "product": {"name": "Microsoft Entra ID", "vendor_name": "Microsoft", "feature": {"name": feature}}})
}

fn upn(i: usize) -> String {
    format!("user{i:05}@bigtenant.onmicrosoft.com")
}

/// A pseudo-random number from an index (no dependency on a random generator).
fn mix(i: usize, salt: u64) -> u64 {
    let mut x = (i as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

fn events(now: DateTime<Utc>) -> String {
    let t = now.timestamp_millis();
    let mut out = String::with_capacity(600 * (2 * USERS + SIGN_INS));
    let mut push = |v: Value| {
        out.push_str(&v.to_string());
        out.push('\n');
    };
    for i in 0..USERS {
        let r = mix(i, 1) % 100;
        let guest = r < 8;
        let enabled = r >= 5;
        let last = match mix(i, 2) % 20 {
            0 => json!({"never": true}),
            1 => json!({"interactive": (now - Duration::days(200)).to_rfc3339(), "never": false}),
            _ => {
                json!({"interactive": (now - Duration::days((mix(i, 3) % 20) as i64)).to_rfc3339(), "never": false})
            }
        };
        let id = format!("u-{i}");
        push(
            json!({"class_uid": 5003, "activity_id": 2, "time": t, "metadata": meta("users", "Identity inventory"),
            "user": {"uid": id, "name": upn(i), "type_id": 1},
            "unmapped": {"inventory": {"labels": [if guest {"guest"} else {"member"}], "data": {
                "user_type": if guest {"Guest"} else {"Member"}, "account_enabled": enabled,
                "created": (now - Duration::days(400)).to_rfc3339(),
                "licences": if guest { json!([]) } else { json!(["05e9a617-0261-4cee-bb44-138d3ef5d965"]) },
                "mailbox_purpose": if mix(i, 4).is_multiple_of(50) {"shared"} else {"user"},
                "last_sign_in": last}}}}),
        );
        let strength = match mix(i, 5) % 10 {
            0 => "no_mfa",
            1 => "weak_mfa_only",
            _ => "mfa",
        };
        push(json!({"class_uid": 5003, "activity_id": 2, "time": t,
            "metadata": meta("userRegistrationDetails", "Identity inventory"),
            "user": {"uid": id, "name": upn(i), "type_id": 1},
            "unmapped": {"inventory": {"data": {"strength": strength, "is_admin": i < ROLE_HOLDERS,
                "user_type": if guest {"guest"} else {"member"}}}}}));
    }
    for i in 0..APPS {
        let class = [
            "basic",
            "directory_read",
            "files",
            "mail_read",
            "mail_write",
            "directory_write",
            "role_management",
        ][(mix(i, 6) % 7) as usize];
        let verified = !mix(i, 7).is_multiple_of(3);
        push(
            json!({"class_uid": 5023, "activity_id": 2, "time": t, "metadata": meta("servicePrincipals", "Identity inventory"),
            "resources": [{"uid": format!("sp-{i}"), "name": format!("App {i}"), "type": "Service Principal",
                "labels": if !verified && class.starts_with("mail") { json!(["risky"]) } else { json!([]) },
                "data": {"publisher": format!("Vendor {}", i % 37), "publisherVerified": verified,
                    "firstParty": i % 4 == 0, "permissionClass": class,
                    "delegatedGrants": [{"consent": if i % 5 == 0 {"admin"} else {"user"}, "scopes": ["User.Read"]}],
                    "applicationPermissions": if i % 9 == 0 { json!([{"permission": "Mail.Read"}]) } else { json!([]) },
                    "credentials": [{"type": "secret", "end": if i % 11 == 0 { Value::Null } else { json!((now + Duration::days(180)).to_rfc3339()) }}]}}]}),
        );
    }
    for i in 0..ROLE_HOLDERS {
        let ga = i < 8;
        push(
            json!({"class_uid": 5023, "activity_id": 2, "time": t, "metadata": meta("roleAssignments", "Identity inventory"),
            "resources": [{"uid": format!("u-{i}"), "name": upn(i), "type": "Directory Role Holder",
                "labels": if ga { json!(["role_holder", "admin", "global_admin"]) } else { json!(["role_holder", "admin"]) },
                "data": {"principal_type": "user", "roles": [{"role": if ga {"Global Administrator"} else {"User Administrator"}}]}}]}),
        );
    }
    for i in 0..POLICIES {
        push(
            json!({"class_uid": 5023, "activity_id": 2, "time": t, "metadata": meta("conditionalAccessPolicies", "Identity inventory"),
            "resources": [{"uid": format!("ca-{i}"), "name": format!("Policy {i}"), "type": "Conditional Access Policy",
                "data": {"state": "enabled", "includeUsers": ["All"], "clientAppTypes": ["all"],
                    "grantControls": ["mfa"], "exclusions": {"users": if i % 3 == 0 { json!(["x"]) } else { json!([]) }}}}]}),
        );
    }
    push(
        json!({"class_uid": 5023, "activity_id": 2, "time": t, "metadata": meta("conditionalAccessPolicies", "Identity inventory"),
        "resources": [{"uid": "securityDefaults", "name": "Security Defaults", "type": "Security Defaults Policy", "data": {"isEnabled": false}}]}),
    );
    let apps = [
        "Browser",
        "Mobile Apps and Desktop clients",
        "Exchange ActiveSync",
        "IMAP4",
        "Authenticated SMTP",
    ];
    for i in 0..SIGN_INS {
        let r = mix(i, 8);
        let app = apps[if r % 100 < 97 {
            (r % 2) as usize
        } else {
            2 + (r % 3) as usize
        }];
        push(
            json!({"class_uid": 3002, "activity_id": 1, "time": t - (r % (30 * 86_400_000)) as i64,
            "metadata": meta("signIns", "Sign-in logs"), "user": {"name": upn((r >> 8) as usize % USERS)},
            "unmapped": {"clientAppUsed": app}}),
        );
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this in a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        println!("assess: run it with `cargo bench` (an optimised build)");
        return;
    }
    let now = DateTime::parse_from_rfc3339("2026-11-02T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let text = events(now);
    let lines = text.lines().count();
    println!(
        "assessment of a {USERS}-user tenant: {lines} events, {:.1} MB of NDJSON",
        text.len() as f64 / 1e6
    );
    for round in 0..3 {
        let t0 = Instant::now();
        let mut b = InputBuilder::new(TENANT);
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                b.push(&v);
            }
        }
        let input = b.finish(Vec::new());
        let t1 = Instant::now();
        let tenant = TenantInfo {
            id: TENANT.into(),
            domain: Some("bigtenant.onmicrosoft.com".into()),
            org: Some("Big Tenant".into()),
        };
        let report = assess::assess(&input, tenant, now, None);
        let t2 = Instant::now();
        let html = assess::html::render(&report);
        let t3 = Instant::now();
        let json = serde_json::to_vec_pretty(&report).unwrap();
        let findings = assess::ocsf::finding_events(&report, itdr_shared::Cloud::Global);
        let t4 = Instant::now();
        assert_eq!(input.users.len(), USERS);
        assert!(report.findings.len() >= 10, "{}", report.findings.len());
        println!(
            "round {round}: read events + rebuild inventory {:>6.0} ms | rules {:>5.1} ms | HTML {:>5.1} ms ({} KB) | JSON + OCSF {:>5.1} ms ({} KB, {} findings) | total {:>6.0} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            html.len() / 1024,
            (t4 - t3).as_secs_f64() * 1e3,
            json.len() / 1024,
            findings.len(),
            (t4 - t0).as_secs_f64() * 1e3,
        );
    }
}
