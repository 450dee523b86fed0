//! Security of the whole embedded pipeline, from the operator's seat: distinctive secret
//! values (canaries) as the apps' client secrets, every log at `trace`, faults that drive the
//! error paths (throttling with absurd `Retry-After`, 5xx, truncated bodies, an expired token
//! mid-paging, a foreign nextLink, revoked consent, an expired secret), onboarding, two poll
//! cycles, an assessment and a containment. Then:
//!
//! - no canary, no access token the simulator issued, and no JWT at all appears in any output
//!   line, log, error, metric (embedded telemetry is log lines), event, dead letter, report,
//!   or in the embedded database's bytes;
//! - every request of a GCC High or DoD tenant reached only US Government hosts, and every
//!   request of a commercial tenant only its own cloud's hosts (the simulator's request log,
//!   with the `Host` each request was addressed to). The host lists are written out here from
//!   Microsoft's national cloud documentation, not taken from the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use itdr_shared::Cloud;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_sim::{DEFAULT_ROLES, Faults, SimConfig, SimHandle, Simulator, TenantSpec};
use serde_json::Value;

/// A value nobody would write by accident, unique to this run.
fn canary(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mixed = (nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("Cnry~{label}~{nanos:x}Q{}Z{mixed:x}", std::process::id())
}

/// Hosts a tenant of `cloud` may be sent requests with its token or credential, per
/// Microsoft's national cloud endpoints (login, Graph, Office 365 Management Activity API).
fn allowed_hosts(cloud: Cloud) -> BTreeSet<&'static str> {
    let hosts: &[&str] = match cloud {
        Cloud::Global => &[
            "login.microsoftonline.com",
            "graph.microsoft.com",
            "manage.office.com",
        ],
        Cloud::Gcc => &[
            "login.microsoftonline.com",
            "graph.microsoft.com",
            "manage-gcc.office.com",
        ],
        Cloud::GccHigh => &[
            "login.microsoftonline.us",
            "graph.microsoft.us",
            "manage.office365.us",
        ],
        Cloud::Dod => &[
            "login.microsoftonline.us",
            "dod-graph.microsoft.us",
            "manage.protection.apps.mil",
        ],
        Cloud::China => &["login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"],
    };
    hosts.iter().copied().collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

struct World {
    sim: SimHandle,
    specs: Vec<TenantSpec>,
    dir: tempfile::TempDir,
    /// Everything every command printed, in order.
    printed: Vec<(String, String)>,
}

impl World {
    async fn start(commercial_secret: &str, usgov_secret: &str) -> Self {
        let write_roles = ["User.RevokeSessions.All", "MailboxSettings.ReadWrite"];
        let specs: Vec<TenantSpec> = [Cloud::Global, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod]
            .into_iter()
            .enumerate()
            .map(|(i, cloud)| {
                let mut s = TenantSpec::new(u32::try_from(i).unwrap(), cloud);
                s.client_secret = match cloud.group() {
                    itdr_shared::CloudGroup::Commercial => commercial_secret.to_string(),
                    itdr_shared::CloudGroup::UsGov => usgov_secret.to_string(),
                };
                s.audits_per_hour = 60.0;
                s.signins_per_hour = 300.0;
                if cloud == Cloud::GccHigh {
                    s.roles = DEFAULT_ROLES
                        .iter()
                        .chain(write_roles.iter())
                        .map(|r| r.to_string())
                        .collect();
                }
                s
            })
            .collect();
        let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim = Simulator::start(SimConfig::new(11, specs.clone()), clock, bind)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("commercial.secret"), commercial_secret).unwrap();
        std::fs::write(dir.path().join("usgov.secret"), usgov_secret).unwrap();
        let app = |cloud: Cloud| {
            specs
                .iter()
                .find(|s| s.cloud == cloud)
                .map(|s| s.app_id.clone())
                .unwrap()
        };
        let config = format!(
            "endpoint_override = \"{}\"\n[store]\npath = \"itdr.db\"\n\
             [output]\nevents = \"events.ndjson\"\ndead_letters = \"dead.ndjson\"\nreports = \"reports\"\n\
             [schedule]\ninterval_secs = 60\n[poll]\nsweep_budget_secs = 2\n\
             [poll.cursor]\ninitial_lookback_secs = 3600\n\
             [management_activity]\npublisher_id = \"3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1\"\n\
             [apps.commercial]\nclient_id = \"{}\"\nclient_secret_file = \"commercial.secret\"\n\
             [apps.usgov]\nclient_id = \"{}\"\nclient_secret_file = \"usgov.secret\"\n",
            sim.base_url(),
            app(Cloud::Global),
            app(Cloud::GccHigh),
        );
        std::fs::write(dir.path().join("itdr.toml"), config).unwrap();
        World {
            sim,
            specs,
            dir,
            printed: Vec::new(),
        }
    }

    fn spec(&self, cloud: Cloud) -> &TenantSpec {
        self.specs.iter().find(|s| s.cloud == cloud).unwrap()
    }

    /// Runs `itdr --config itdr.toml <args>` with every log at `trace`, and keeps what it
    /// printed.
    async fn itdr(&mut self, args: &[&str]) -> Output {
        let dir = self.dir.path().to_path_buf();
        let mut all = vec!["--config".to_string(), "itdr.toml".to_string()];
        all.extend(args.iter().map(|s| (*s).to_string()));
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_itdr"))
                .args(&all)
                .current_dir(&dir)
                .env_remove("ITDR_CONFIG")
                .env_remove("ITDR_DB")
                .env_remove("ITDR_REQUESTER")
                .env("ITDR_LOG", "trace")
                .output()
                .expect("itdr runs")
        })
        .await
        .unwrap();
        self.printed.push((
            format!("itdr {} (stdout)", args.join(" ")),
            text(&out.stdout),
        ));
        self.printed.push((
            format!("itdr {} (stderr)", args.join(" ")),
            text(&out.stderr),
        ));
        out
    }

    /// Every file the run left behind, by path (the database and its journal included).
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut out);
        // The secret files are the operator's own; nothing else may hold the secrets.
        out.retain(|p, _| p.extension().is_none_or(|e| e != "secret"));
        out
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_leaks_and_us_government_tenants_reach_only_us_government_hosts() {
    let commercial_secret = canary("commercial");
    let usgov_secret = canary("usgov");
    let mut w = World::start(&commercial_secret, &usgov_secret).await;

    // Onboarding: discovery, consent and preflight of every tenant.
    for cloud in [Cloud::Global, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod] {
        let domain = w.spec(cloud).domain.clone();
        let org = format!("Org {}", cloud.as_str());
        let out = w
            .itdr(&["tenants", "add", "--tenant", &domain, "--org", &org])
            .await;
        assert!(out.status.success(), "{cloud}: {}", text(&out.stderr));
    }

    // The error paths: every fault the client handles, on the commercial tenant mid-paging;
    // consent revoked in GCC; the US Government app's secret expired for the DoD tenant.
    let global = w.spec(Cloud::Global).tenant_id.clone();
    w.sim.set_faults(
        &global,
        Faults {
            after_requests: 2,
            http_429_burst: 2,
            retry_after_on_429: Some("1e20".into()),
            http_5xx_burst: 1,
            truncate_json: 1,
            non_json_body: 1,
            expired_token: 1,
            foreign_next_link: 1,
            ..Faults::default()
        },
    );
    let gcc = w.spec(Cloud::Gcc).tenant_id.clone();
    let dod = w.spec(Cloud::Dod).tenant_id.clone();
    for _ in 0..2 {
        let out = w.itdr(&["run", "--once", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        w.sim.revoke_consent(&gcc);
        w.sim.expire_secret(&dod);
    }
    let out = w.itdr(&["tenants", "list", "--json"]).await;
    let tenants: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = |id: &str| {
        tenants
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant_id"] == id)
            .unwrap()["health"]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The error paths really ran: their failures were recorded (with their messages).
    assert_eq!(state(&gcc), "consent_revoked");
    assert_ne!(state(&dod), "healthy", "the expired secret was noticed");
    let events = std::fs::read_to_string(w.dir.path().join("events.ndjson")).unwrap();
    assert!(events.lines().count() > 50, "the pipeline delivered events");

    // An assessment and a containment in GCC High.
    let gcch = w.spec(Cloud::GccHigh).clone();
    let out = w.itdr(&["assess", "--tenant", &gcch.domain]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inv = w.sim.inventory(&gcch.tenant_id).unwrap();
    let (owner, _) = inv.malicious_rules().into_iter().next().unwrap();
    let out = w
        .itdr(&[
            "contain",
            "--tenant",
            &gcch.domain,
            "--user",
            &owner,
            "--reason",
            "case 42: forwarding rule",
            "--requester",
            "analyst@soc.example",
            "--app",
            "usgov",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !w.sim
            .inventory(&gcch.tenant_id)
            .unwrap()
            .users
            .iter()
            .any(|u| u.id == owner && u.enabled),
        "the containment ran"
    );
    w.itdr(&["actions", "list", "--tenant", &gcch.tenant_id, "--json"])
        .await;

    // Nothing holds a secret or a token: not what was printed, not what was written.
    let tokens = w.sim.issued_tokens();
    assert!(tokens.len() >= 4, "{} tokens issued", tokens.len());
    let mut needles: Vec<(String, String)> = Vec::new();
    for secret in [&commercial_secret, &usgov_secret] {
        needles.push(("a client secret".into(), secret.clone()));
        // A truncated or partly masked print still shows some of it: any 10 characters of
        // its random part.
        let random = secret.rsplit('~').next().unwrap();
        assert!(random.len() >= 20);
        for i in 0..=random.len() - 10 {
            needles.push((
                "part of a client secret".into(),
                random[i..i + 10].to_string(),
            ));
        }
    }
    for t in &tokens {
        needles.push(("access token".into(), t.clone()));
        let signature = t.rsplit('.').next().unwrap().to_string();
        needles.push(("access token signature".into(), signature));
    }
    let printed = w.printed.clone();
    let logged: usize = printed.iter().map(|(_, t)| t.len()).sum();
    assert!(
        logged > 100_000,
        "trace logs were captured ({logged} bytes)"
    );
    for (what, out) in &printed {
        for (kind, n) in &needles {
            assert!(!out.contains(n.as_str()), "{kind} in the output of {what}");
        }
        assert!(!out.contains("eyJ"), "a JWT in the output of {what}");
    }
    let files = w.files();
    assert!(files.keys().any(|p| p.ends_with("itdr.db")));
    assert!(
        files
            .keys()
            .any(|p| p.ends_with("dead.ndjson") || p.ends_with("events.ndjson"))
    );
    assert!(
        files
            .keys()
            .any(|p| p.extension().is_some_and(|e| e == "html")),
        "the report was written"
    );
    for (path, bytes) in &files {
        for (kind, n) in &needles {
            assert!(!contains(bytes, n), "{kind} in {}", path.display());
        }
    }

    // Sovereignty on the wire, in the embedded mode too.
    let log = w.sim.request_log();
    let mut seen: BTreeMap<Cloud, BTreeSet<String>> = BTreeMap::new();
    for r in &log {
        // Onboarding discovery reads the tenant's public OpenID configuration from the
        // worldwide login host, as Microsoft documents for every cloud: no credential, no
        // token.
        if r.path.ends_with("/.well-known/openid-configuration") {
            assert_eq!(r.method, "GET");
            continue;
        }
        for s in &w.specs {
            let about = r.tenant_id.as_deref() == Some(s.tenant_id.as_str())
                || r.path.contains(&s.tenant_id)
                || r.path.contains(&s.domain)
                || r.query.contains(&s.tenant_id);
            if about {
                assert!(
                    allowed_hosts(s.cloud).contains(r.host.as_str()),
                    "a {} tenant's request went to {} ({} {})",
                    s.cloud,
                    r.host,
                    r.method,
                    r.path
                );
                seen.entry(s.cloud).or_default().insert(r.host.clone());
            }
        }
    }
    // Each cloud's login, Graph and Management Activity hosts were all really used.
    for cloud in [Cloud::Global, Cloud::GccHigh] {
        assert_eq!(
            seen[&cloud]
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            allowed_hosts(cloud),
            "{cloud}"
        );
    }
    assert!(seen[&Cloud::Dod].contains("login.microsoftonline.us"));
    w.sim.shutdown().await;
}
