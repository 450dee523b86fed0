//! Onboarding from the operator's seat: `itdr tenants add`, `itdr preflight`, `itdr tenants
//! reauthorize|remap|remove` and the offboarding of a tenant whose app was removed, all run as
//! the real binary against the simulator's onboarding scenarios (one tenant per prerequisite
//! problem, and a healthy tenant in each cloud).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_sim::{Scenario, SimConfig, SimHandle, Simulator, onboarding_scenarios};
use serde_json::Value;

struct World {
    sim: SimHandle,
    dir: tempfile::TempDir,
    by_name: HashMap<&'static str, Scenario>,
    secrets: Vec<String>,
}

impl World {
    async fn start() -> Self {
        let scenarios = onboarding_scenarios();
        let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim = Simulator::start(
            SimConfig::new(7, scenarios.iter().map(|s| s.spec.clone()).collect()),
            clock,
            bind,
        )
        .await
        .unwrap();
        for s in &scenarios {
            s.apply(&sim);
        }
        let dir = tempfile::tempdir().unwrap();
        let commercial = scenarios.iter().find(|s| s.name == "healthy").unwrap();
        let usgov = scenarios.iter().find(|s| s.name == "gcc-high").unwrap();
        std::fs::write(
            dir.path().join("commercial.secret"),
            &commercial.spec.client_secret,
        )
        .unwrap();
        std::fs::write(dir.path().join("usgov.secret"), &usgov.spec.client_secret).unwrap();
        let config = format!(
            "endpoint_override = \"{}\"\n[store]\npath = \"itdr.db\"\n[output]\nevents = \"events.ndjson\"\ndead_letters = \"dead.ndjson\"\n\
             [schedule]\ninterval_secs = 60\n[poll]\nsweep_budget_secs = 2\n[poll.cursor]\ninitial_lookback_secs = 3600\n\
             [management_activity]\npublisher_id = \"3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1\"\n\
             [apps.commercial]\nclient_id = \"{}\"\nclient_secret_file = \"commercial.secret\"\n\
             [apps.usgov]\nclient_id = \"{}\"\nclient_secret_file = \"usgov.secret\"\n",
            sim.base_url(),
            commercial.spec.app_id,
            usgov.spec.app_id
        );
        std::fs::write(dir.path().join("itdr.toml"), &config).unwrap();
        std::fs::write(
            dir.path().join("commercial-only.toml"),
            config.replace(
                "[store]",
                "[deployment]\ngroups = [\"commercial\"]\n[store]",
            ),
        )
        .unwrap();
        let secrets = vec![
            commercial.spec.client_secret.clone(),
            usgov.spec.client_secret.clone(),
        ];
        let by_name = scenarios.into_iter().map(|s| (s.name, s)).collect();
        World {
            sim,
            dir,
            by_name,
            secrets,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn domain(&self, name: &str) -> String {
        self.by_name[name].spec.domain.clone()
    }

    fn id(&self, name: &str) -> String {
        self.by_name[name].spec.tenant_id.clone()
    }

    /// Runs `itdr --config itdr.toml <args>` off the async runtime, and checks that no
    /// secret reaches its output.
    async fn itdr(&self, args: &[&str]) -> Output {
        self.itdr_with("itdr.toml", args).await
    }

    async fn itdr_with(&self, config: &str, args: &[&str]) -> Output {
        let dir = self.path();
        let mut all = vec!["--config".to_string(), config.to_string()];
        all.extend(args.iter().map(|s| (*s).to_string()));
        let out = tokio::task::spawn_blocking(move || run(&dir, &all))
            .await
            .unwrap();
        let text = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "a secret reached the output");
        }
        assert!(!text.contains("eyJ"), "a token reached the output");
        out
    }

    async fn preflight(&self, tenant: &str) -> (i32, Value) {
        let out = self
            .itdr(&["preflight", "--tenant", tenant, "--json"])
            .await;
        let code = out.status.code().unwrap_or(-1);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no JSON report: {}", text(&out.stderr)));
        (code, report)
    }

    async fn list(&self) -> Vec<Value> {
        let out = self.itdr(&["tenants", "list", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn run(dir: &Path, args: &[String]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_itdr"))
        .args(args)
        .current_dir(dir)
        .env_remove("ITDR_CONFIG")
        .env_remove("ITDR_DB")
        .output()
        .expect("itdr runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn status<'a>(report: &'a Value, check: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == check)
        .unwrap_or_else(|| panic!("no check {check}"))["status"]
        .as_str()
        .unwrap()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_added_by_domain_with_their_cloud_detected() {
    let w = World::start().await;
    for (name, cloud, poller) in [
        ("healthy", "global", "commercial"),
        ("gcc", "gcc", "commercial"),
        ("gcc-high", "gcc_high", "usgov"),
        ("dod", "dod", "usgov"),
    ] {
        let out = w
            .itdr(&[
                "tenants",
                "add",
                "--tenant",
                &w.domain(name),
                "--org",
                &format!("Org {name}"),
            ])
            .await;
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("{poller} poller")),
            "{name}"
        );
        let all = w.list().await;
        let t = all
            .iter()
            .find(|t| t["tenant_id"] == w.id(name))
            .unwrap_or_else(|| panic!("{name} registered"));
        assert_eq!(t["cloud"], cloud, "{name}");
        assert_eq!(t["app_ref"], poller, "{name}");
        assert_eq!(t["domain"], w.domain(name));
    }
    // By GUID too.
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            &w.id("no-data").to_uppercase(),
            "--org",
            "Quiet",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Unknown and malformed tenants are refused with a clear error.
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            "nosuch.onmicrosoft.com",
            "--org",
            "X",
        ])
        .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("does not exist in any Microsoft cloud"));
    let out = w
        .itdr(&["tenants", "add", "--tenant", "contoso", "--org", "X"])
        .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not a tenant"));

    // One tenant, one organization; remapping is explicit.
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            &w.domain("healthy"),
            "--org",
            "Again",
        ])
        .await;
    assert!(text(&out.stderr).contains("already registered"));
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            &w.domain("no-p1"),
            "--org",
            "org HEALTHY",
        ])
        .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already mapped"));
    let out = w
        .itdr(&[
            "tenants",
            "remap",
            "--tenant",
            &w.domain("healthy"),
            "--org",
            "Org gcc",
        ])
        .await;
    assert!(!out.status.success(), "the target organization is taken");
    let out = w
        .itdr(&[
            "tenants",
            "remap",
            "--tenant",
            &w.domain("healthy"),
            "--org",
            "Able Moose",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = w.list().await;
    let t = all
        .iter()
        .find(|t| t["tenant_id"] == w.id("healthy"))
        .unwrap();
    assert_eq!(t["org"], "Able Moose");

    // An app registration of the commercial group is refused for a GCC High tenant: its
    // credential must never reach the US Government login host.
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            &w.domain("gcc-high"),
            "--org",
            "Gov with the wrong app",
            "--app",
            "commercial",
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("app registration of the commercial cloud group"),
        "{}",
        text(&out.stderr)
    );

    // A deployment without the US Government poller refuses GCC High tenants.
    let out = w
        .itdr_with(
            "commercial-only.toml",
            &[
                "tenants",
                "add",
                "--tenant",
                &w.domain("gcc-high"),
                "--org",
                "Gov 2",
                "--app",
                "x",
            ],
        )
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not run"),
        "{}",
        text(&out.stderr)
    );
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_finds_every_prerequisite_problem() {
    let w = World::start().await;

    let (code, r) = w.preflight(&w.domain("healthy")).await;
    assert_eq!(code, 0, "{r:#}");
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c}");
    }
    assert_eq!(r["retention_days"], 30);
    assert_eq!(r["cloud"], "global");

    for (name, cloud, poller) in [
        ("gcc", "gcc", "commercial"),
        ("gcc-high", "gcc_high", "usgov"),
        ("dod", "dod", "usgov"),
    ] {
        let (code, r) = w.preflight(&w.domain(name)).await;
        assert_eq!(code, 0, "{name}: {r:#}");
        assert_eq!(r["cloud"], cloud);
        assert_eq!(r["poller"], poller);
        assert_eq!(status(&r, "credential"), "pass", "{name}");
    }

    let (code, r) = w.preflight(&w.domain("no-p1")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "signin_licence"), "fail");
    assert!(
        check(&r, "signin_licence")["detail"]
            .as_str()
            .unwrap()
            .contains("P1/P2")
    );
    assert_eq!(r["retention_days"], 7);
    assert_eq!(r["implied_state"], "licence_missing");

    let (code, r) = w.preflight(&w.domain("no-exchange")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "exchange_licence"), "fail");
    assert_eq!(status(&r, "signin_licence"), "pass");

    let (code, r) = w.preflight(&w.domain("partial-consent")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "permissions"), "fail");
    let missing: Vec<&str> = r["missing_required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // Without Directory.Read.All the inventory's narrower permissions are missing too (the
    // partial consent granted none of them).
    assert_eq!(
        missing,
        [
            "Directory.Read.All",
            "User.Read.All",
            "Application.Read.All",
            "RoleManagement.Read.Directory"
        ]
    );
    let recommended: Vec<&str> = r["missing_recommended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(recommended.contains(&"User.EnableDisableAccount.All"));
    assert!(
        r["missing_recommended"][0]["purpose"]
            .as_str()
            .unwrap()
            .len()
            > 5
    );
    assert_eq!(r["implied_state"], "permission_missing");

    let (code, r) = w.preflight(&w.domain("consent-revoked")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "credential"), "pass");
    assert_eq!(status(&r, "consent"), "fail");
    assert_eq!(r["implied_state"], "consent_revoked");

    let (code, r) = w.preflight(&w.domain("secret-expired")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "credential"), "fail");
    let c = check(&r, "credential");
    assert!(c["detail"].as_str().unwrap().contains("AADSTS7000222"));
    assert!(c["remedy"].as_str().unwrap().contains("new secret"));
    assert_eq!(r["implied_state"], "credentials_expired");

    let (code, r) = w.preflight(&w.domain("app-removed")).await;
    assert_eq!(code, 1);
    assert!(
        check(&r, "credential")["detail"]
            .as_str()
            .unwrap()
            .contains("AADSTS700016")
    );
    assert_eq!(r["implied_state"], "offboarded");

    let (code, r) = w.preflight(&w.domain("no-data")).await;
    assert_eq!(code, 0, "no data is a warning, not a blocker");
    assert_eq!(status(&r, "data_24h"), "warn");
    let remedy = check(&r, "data_24h")["remedy"].as_str().unwrap();
    for cause in [
        "audit logging",
        "Organization Management",
        "Exchange Online licence",
    ] {
        assert!(remedy.contains(cause), "{cause}: {remedy}");
    }

    // The Unified Audit Log: audit logging off, a subscription an administrator disabled, and
    // no content in 24 hours, each with the seed's remedy.
    let (code, r) = w.preflight(&w.domain("audit-log-off")).await;
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(status(&r, "audit_log"), "fail");
    assert_eq!(status(&r, "audit_subscriptions"), "skip");
    let remedy = check(&r, "audit_log")["remedy"].as_str().unwrap();
    for must in [
        "audit logging is on",
        "Organization Management",
        "Exchange Online licence",
    ] {
        assert!(remedy.contains(must), "{must}: {remedy}");
    }
    assert_eq!(r["implied_state"], "permission_missing");
    let (code, r) = w.preflight(&w.domain("subscription-disabled")).await;
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(status(&r, "audit_log"), "pass");
    assert_eq!(status(&r, "audit_subscriptions"), "fail");
    let c = check(&r, "audit_subscriptions");
    assert!(c["detail"].as_str().unwrap().contains("AF20023"));
    assert!(c["detail"].as_str().unwrap().contains("Audit.Exchange"));
    let (_, r) = w.preflight(&w.domain("no-data")).await;
    assert_eq!(status(&r, "audit_content"), "warn");
    assert!(
        check(&r, "audit_content")["remedy"]
            .as_str()
            .unwrap()
            .contains("Organization Management")
    );

    let (code, r) = w.preflight(&w.domain("third-party-mfa")).await;
    assert_eq!(code, 0);
    assert_eq!(status(&r, "mfa_registration"), "warn");
    assert!(
        check(&r, "mfa_registration")["remedy"]
            .as_str()
            .unwrap()
            .contains("third-party MFA")
    );

    // Wrong cloud: registered offline as commercial, but the tenant is GCC High.
    let out = w
        .itdr(&[
            "tenants",
            "add",
            "--tenant",
            &w.id("gcc-high"),
            "--cloud",
            "global",
            "--org",
            "Misfiled",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, r) = w.preflight(&w.id("gcc-high")).await;
    assert_eq!(code, 1);
    assert_eq!(status(&r, "cloud"), "fail");
    assert!(
        check(&r, "cloud")["detail"]
            .as_str()
            .unwrap()
            .contains("GCC High")
    );
    assert_eq!(
        status(&r, "credential"),
        "fail",
        "the commercial login host refuses it"
    );

    // A deployment that does not serve the tenant's cloud.
    let out = w
        .itdr_with(
            "commercial-only.toml",
            &[
                "preflight",
                "--tenant",
                &w.domain("dod"),
                "--json",
                "--db",
                "other.db",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status(&r, "cloud"), "fail");
    assert!(
        check(&r, "cloud")["remedy"]
            .as_str()
            .unwrap()
            .contains("usgov")
    );

    // The table form names each check and its fix; errors exit 2.
    let out = w
        .itdr(&["preflight", "--tenant", &w.domain("no-exchange")])
        .await;
    let table = text(&out.stdout);
    assert!(table.contains("exchange_licence   FAIL"), "{table}");
    assert!(table.contains("fix: assign at least one Exchange Online licence"));
    let out = w
        .itdr(&["preflight", "--tenant", "nosuch.onmicrosoft.com"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_reauthorize_offboard_and_remove() {
    let w = World::start().await;
    for name in ["healthy", "partial-consent", "app-removed"] {
        let out = w
            .itdr(&["tenants", "add", "--tenant", &w.domain(name), "--org", name])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        if name == "healthy" {
            // Onboarding starts the subscriptions (the simulator's are enabled already).
            assert!(
                text(&out.stdout).contains("subscription Audit.Exchange: already enabled"),
                "{}",
                text(&out.stdout)
            );
        }
    }
    // Partial consent: reauthorize reports it; after the customer re-consents it clears.
    let out = w
        .itdr(&[
            "tenants",
            "reauthorize",
            "--tenant",
            &w.domain("partial-consent"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let t = w.list().await;
    let t = t
        .iter()
        .find(|t| t["tenant_id"] == w.id("partial-consent"))
        .unwrap();
    assert_eq!(t["health"]["state"], "permission_missing");
    assert_eq!(t["health"]["last_error_kind"], "preflight_permissions");
    w.sim.set_roles(
        &w.id("partial-consent"),
        itdr_sim::DEFAULT_ROLES
            .iter()
            .map(|r| (*r).to_string())
            .collect(),
    );
    let out = w
        .itdr(&[
            "tenants",
            "reauthorize",
            "--tenant",
            &w.id("partial-consent"),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    let t = w.list().await;
    let t = t
        .iter()
        .find(|t| t["tenant_id"] == w.id("partial-consent"))
        .unwrap();
    assert_eq!(t["health"]["state"], "pending");
    assert_eq!(t["health"]["retention_days"], 30);
    assert_eq!(t["enabled"], true);

    // One poll cycle: the tenant whose app is gone (AADSTS700016) is offboarded, not retried.
    let out = w.itdr(&["run", "--once", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = w.list().await;
    let removed = t
        .iter()
        .find(|t| t["tenant_id"] == w.id("app-removed"))
        .unwrap();
    assert_eq!(removed["health"]["state"], "offboarded");
    assert_eq!(removed["health"]["last_error_kind"], "app_not_in_tenant");
    let healthy = t
        .iter()
        .find(|t| t["tenant_id"] == w.id("healthy"))
        .unwrap();
    assert_eq!(healthy["health"]["state"], "healthy");
    assert!(healthy["health"]["last_success"].is_string());
    let before = w
        .sim
        .counters()
        .per_tenant_requests
        .get(&w.id("app-removed"))
        .copied();
    let out = w.itdr(&["run", "--once", "--json"]).await;
    assert!(out.status.success());
    assert_eq!(
        w.sim
            .counters()
            .per_tenant_requests
            .get(&w.id("app-removed"))
            .copied(),
        before,
        "an offboarded tenant is not polled again"
    );
    let table = text(&w.itdr(&["tenants", "list"]).await.stdout);
    assert!(
        table.contains("offboarded") && table.contains("app_not_in_tenant at"),
        "{table}"
    );

    // Remove keeps cursors unless --purge, and stops the Management Activity subscriptions.
    assert_eq!(w.sim.subscriptions(&w.id("healthy")).len(), 4);
    let out = w
        .itdr(&["tenants", "remove", "--tenant", &w.domain("healthy")])
        .await;
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("subscription Audit.Exchange: stopped"),
        "{}",
        text(&out.stdout)
    );
    let left: Vec<String> = w
        .sim
        .subscriptions(&w.id("healthy"))
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(left, ["Audit.SharePoint"], "the three it reads are stopped");
    let t = w.list().await;
    let h = t
        .iter()
        .find(|t| t["tenant_id"] == w.id("healthy"))
        .unwrap();
    assert_eq!(h["enabled"], false);
    assert_eq!(h["health"]["state"], "offboarded");
    let out = w
        .itdr(&["tenants", "remove", "--tenant", &w.id("healthy"), "--purge"])
        .await;
    assert!(out.status.success());
    assert!(
        w.list()
            .await
            .iter()
            .all(|t| t["tenant_id"] != w.id("healthy"))
    );
    w.sim.shutdown().await;
}
