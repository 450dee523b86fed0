//! Several app registrations in one cloud group (scale-out: each registration has its own
//! request budget): `itdr tenants add` assigns a new tenant to the group's polling app that
//! serves the fewest tenants and prints that app's admin consent link; `itdr tenants move`
//! moves a tenant to another app of its group and runs preflight with it; apps of the other
//! group and write apps are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use itdr_shared::Cloud;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_sim::{SimConfig, Simulator, TenantSpec};
use serde_json::Value;

const APP_B: &str = "5d9a7c3e-2b41-4f8e-9c06-1a2b3c4d5e6f";

mod common;

use common::text;

async fn itdr(dir: &Path, args: &[&str]) -> Output {
    common::itdr(dir, "itdr.toml", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_go_to_the_least_loaded_app_and_can_be_moved() {
    // Three commercial tenants: the first and third consented to app A (the group's usual
    // app), the second to app B; one GCC High tenant.
    let mut specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::Global),
        TenantSpec::new(2, Cloud::Gcc),
        TenantSpec::new(3, Cloud::GccHigh),
    ];
    specs[1].app_id = APP_B.into();
    specs[1].client_secret = "sim~commercial-b~secret".into();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(SimConfig::new(4, specs.clone()), clock, bind)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.secret"), &specs[0].client_secret).unwrap();
    std::fs::write(d.join("b.secret"), &specs[1].client_secret).unwrap();
    std::fs::write(d.join("g.secret"), &specs[3].client_secret).unwrap();
    std::fs::write(
        d.join("itdr.toml"),
        format!(
            "endpoint_override = \"{}\"\n[store]\npath = \"itdr.db\"\n[output]\nevents = \"e.ndjson\"\ndead_letters = \"d.ndjson\"\n\
             [management_activity]\npublisher_id = \"3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1\"\n\
             [apps.commercial]\nclient_id = \"{}\"\nclient_secret_file = \"a.secret\"\n\
             [apps.commercial-b]\nclient_id = \"{APP_B}\"\nclient_secret_file = \"b.secret\"\ngroup = \"commercial\"\n\
             [apps.commercial-write]\nclient_id = \"{}\"\nclient_secret_file = \"a.secret\"\ngroup = \"commercial\"\n\
             [apps.usgov]\nclient_id = \"{}\"\nclient_secret_file = \"g.secret\"\n\
             [respond]\nwrite_apps = {{ commercial = \"commercial-write\" }}\n",
            sim.base_url(),
            specs[0].app_id,
            specs[0].app_id,
            specs[3].app_id,
        ),
    )
    .unwrap();

    // Onboarding: ties go to the first app by name, then to the one with fewer tenants; the
    // write app is never a tenant's polling app.
    let mut assigned = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let out = itdr(
            d,
            &[
                "tenants",
                "add",
                "--tenant",
                &s.domain,
                "--org",
                &format!("Org {i}"),
            ],
        )
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let app_id = if i == 1 { APP_B } else { s.app_id.as_str() };
        let consent = format!(
            "https://{}/{}/adminconsent?client_id={app_id}",
            s.cloud.login_host(),
            s.tenant_id
        );
        assert!(stdout.contains(&consent), "{stdout}");
        assigned.push(stdout);
    }
    let out = itdr(d, &["tenants", "list", "--json"]).await;
    let tenants: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app_of = |id: &str| {
        tenants
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant_id"] == id)
            .unwrap()["app_ref"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(app_of(&specs[0].tenant_id), "commercial");
    assert_eq!(app_of(&specs[1].tenant_id), "commercial-b");
    assert_eq!(
        app_of(&specs[2].tenant_id),
        "commercial",
        "1 and 1: first by name"
    );
    assert_eq!(app_of(&specs[3].tenant_id), "usgov");
    // Each tenant's preflight passes with the app it was given.
    for s in &specs {
        let out = itdr(d, &["preflight", "--tenant", &s.tenant_id]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }

    // Moving a tenant to an app its customer never consented to: preflight says so, and the
    // tenant is not polled with it.
    let t2 = &specs[2].tenant_id;
    let out = itdr(
        d,
        &["tenants", "move", "--tenant", t2, "--app", "commercial-b"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("moved"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("client_id={APP_B}")));
    // Back to the app it consented to: nothing blocks.
    let out = itdr(
        d,
        &["tenants", "move", "--tenant", t2, "--app", "commercial"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = itdr(d, &["tenants", "list", "--json"]).await;
    let tenants: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant_id"] == t2.as_str())
        .unwrap();
    assert_eq!(t["app_ref"], "commercial");
    assert_eq!(t["enabled"], true);
    assert_eq!(t["health"]["state"], "pending");

    // The organization's contact (the emailed reports) is kept by the embedded registry too.
    let out = itdr(
        d,
        &[
            "tenants",
            "remap",
            "--tenant",
            t2,
            "--contact",
            "IT@Org2.example",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("contact set to IT@org2.example"),
        "{}",
        text(&out.stdout)
    );
    let out = itdr(
        d,
        &[
            "tenants",
            "remap",
            "--tenant",
            t2,
            "--contact",
            "a@b.example, c@d.example",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        !text(&out.stderr).contains("c@d.example"),
        "errors never quote the value"
    );
    let out = itdr(
        d,
        &["tenants", "remap", "--tenant", t2, "--contact", "none"],
    )
    .await;
    assert!(
        text(&out.stdout).contains("contact removed"),
        "{}",
        text(&out.stdout)
    );

    // Refused: another group's app, a write app, an unknown app.
    for (app, why) in [
        ("usgov", "cloud group"),
        ("commercial-write", "write app"),
        ("nope", "not in the configuration"),
    ] {
        let out = itdr(d, &["tenants", "move", "--tenant", t2, "--app", app]).await;
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(why),
            "{app}: {}",
            text(&out.stderr)
        );
    }
    sim.shutdown().await;
}
