//! Response actions from the operator's seat: `itdr contain|disable|rules|actions` run as the
//! real binary against the simulator, with a dry run, the protected-account rail from the
//! configuration, a separate write app per cloud group, and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use itdr_shared::Cloud;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_sim::{DEFAULT_ROLES, SimConfig, SimHandle, Simulator, TenantSpec};
use serde_json::Value;

const ORG: &str = "Able Moose Accounting";

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", "itdr.toml"];
    all.extend_from_slice(args);
    std::process::Command::new(env!("CARGO_BIN_EXE_itdr"))
        .args(&all)
        .current_dir(dir)
        .env_remove("ITDR_CONFIG")
        .env_remove("ITDR_DB")
        .env_remove("ITDR_REQUESTER")
        .output()
        .expect("itdr runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

struct World {
    sim: SimHandle,
    spec: TenantSpec,
    dir: tempfile::TempDir,
}

async fn world(extra_config: &str, write_secret: &str) -> World {
    let mut spec = TenantSpec::new(0, Cloud::Global);
    spec.roles = DEFAULT_ROLES
        .iter()
        .chain(["User.RevokeSessions.All", "MailboxSettings.ReadWrite"].iter())
        .map(|s| s.to_string())
        .collect();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(SimConfig::new(5, vec![spec.clone()]), clock, bind)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("commercial.secret"), &spec.client_secret).unwrap();
    std::fs::write(dir.path().join("write.secret"), write_secret).unwrap();
    let config = format!(
        "endpoint_override = \"{}\"\n[store]\npath = \"itdr.db\"\n[output]\nevents = \"events.ndjson\"\ndead_letters = \"dead.ndjson\"\n\
         [apps.commercial]\nclient_id = \"{id}\"\nclient_secret_file = \"commercial.secret\"\n\
         [apps.commercial-write]\nclient_id = \"{id}\"\nclient_secret_file = \"write.secret\"\ngroup = \"commercial\"\n{extra_config}",
        sim.base_url(),
        id = spec.app_id,
    );
    std::fs::write(dir.path().join("itdr.toml"), config).unwrap();
    let w = World { sim, spec, dir };
    let out = w
        .itdr(&["tenants", "add", "--tenant", &w.spec.domain, "--org", ORG])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    w
}

impl World {
    async fn itdr(&self, args: &[&str]) -> Output {
        let dir = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&dir, &a)
        })
        .await
        .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains(&self.spec.client_secret),
            "a secret reached the output"
        );
        assert!(!all.contains("eyJ"), "a token reached the output");
        out
    }

    /// The owner of a planted forwarding rule.
    fn owner(&self) -> itdr_sim::InvUser {
        let inv = self.sim.inventory(&self.spec.tenant_id).unwrap();
        let (uid, _) = inv
            .malicious_rules()
            .into_iter()
            .find(|(u, r)| {
                inv.rules[u]
                    .iter()
                    .any(|x| x["id"] == r.as_str() && x["actions"].get("forwardTo").is_some())
            })
            .unwrap();
        inv.users.into_iter().find(|u| u.id == uid).unwrap()
    }

    fn enabled(&self, id: &str) -> bool {
        let inv = self.sim.inventory(&self.spec.tenant_id).unwrap();
        inv.users.iter().find(|u| u.id == id).unwrap().enabled
    }
}

fn target<'a>(tenant: &'a str, user: &'a str) -> Vec<&'a str> {
    vec![
        "--tenant",
        tenant,
        "--user",
        user,
        "--reason",
        "case 17: forwarding rule to a free-mail address",
        "--requester",
        "analyst@soc.example",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contain_from_the_cli_with_a_dry_run_first_and_the_audit_trail_after() {
    let w = world(
        "[respond]\nwrite_apps = { commercial = \"commercial-write\" }\n",
        "wrong-secret",
    )
    .await;
    let owner = w.owner();
    let domain = w.spec.domain.clone();

    // No reason: refused by the command line itself.
    let out = w
        .itdr(&[
            "contain",
            "--tenant",
            &domain,
            "--user",
            &owner.upn,
            "--requester",
            "a@b.example",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--reason"));

    // Dry run: the planned writes, none sent.
    let mut args = vec!["contain"];
    args.extend(target(&domain, &owner.upn));
    args.extend(["--dry-run", "--json", "--app", "commercial"]);
    let out = w.itdr(&args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["outcome"], "dry_run");
    let planned: Vec<&Value> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["calls"].as_array().unwrap())
        .filter(|c| c["method"] != "GET")
        .collect();
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert!(planned.iter().all(|c| c["outcome"]["result"] == "planned"));
    assert!(w.enabled(&owner.id));

    // The configured write app has a wrong secret: refused, nothing written.
    let mut args = vec!["contain"];
    args.extend(target(&domain, &owner.upn));
    let out = w.itdr(&args).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(w.enabled(&owner.id));

    // With the poller's app it goes through.
    args.extend(["--app", "commercial"]);
    let out = w.itdr(&args).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("disable_account") && stdout.contains("revoke_sessions"));
    assert!(stdout.contains("PATCH https://graph.microsoft.com/v1.0/users/"));
    assert!(!w.enabled(&owner.id));

    let out = w
        .itdr(&["actions", "list", "--tenant", &w.spec.tenant_id, "--json"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trail: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<&str> = trail
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["dry_run", "refused", "completed"]);
    assert!(trail[1]["error"].as_str().unwrap().contains("no token"));
    assert!(trail[1]["steps"].as_array().unwrap().is_empty());
    assert!(
        trail
            .iter()
            .all(|r| r["requester"] == "analyst@soc.example")
    );
    let events = std::fs::read_to_string(w.dir.path().join("events.ndjson")).unwrap();
    assert_eq!(
        events.matches("\"itdr.response\"").count(),
        4,
        "the refusal, then disable, revoke and one rule"
    );
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_account_from_the_configuration_is_refused() {
    let probe = world("", "x").await;
    let owner = probe.owner();
    let secret = probe.spec.client_secret.clone();
    probe.sim.shutdown().await;
    let w = world(
        &format!(
            "[respond]\nwrite_apps = {{ commercial = \"commercial-write\" }}\n[respond.protected]\n\"{ORG}\" = [\"{}\"]\n",
            owner.upn.to_uppercase()
        ),
        &secret,
    )
    .await;
    let domain = w.spec.domain.clone();
    let mut args = vec!["disable"];
    args.extend(target(&domain, &owner.id));
    let out = w.itdr(&args).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("protected account"),
        "{}",
        text(&out.stderr)
    );
    assert!(w.enabled(&owner.id));
    // Rules can still be neutralised, through the configured write app.
    let mut args = vec!["rules", "disable-forwarding"];
    args.extend(target(&domain, &owner.id));
    let out = w.itdr(&args).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("1 disabled"));
    w.sim.shutdown().await;
}
