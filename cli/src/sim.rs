//! `itdr sim`: serve the Microsoft API simulator on 127.0.0.1, and write a configuration that
//! points the other commands at it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_shared::{Cloud, CloudGroup};
use itdr_sim::{Scenario, SimConfig, Simulator, TenantSpec, onboarding_scenarios};

#[derive(Args)]
pub struct SimArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8400)]
    port: u16,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Clouds of the simulated tenants, one tenant each (repeatable).
    #[arg(long = "cloud", default_values_t = [Cloud::Global, Cloud::GccHigh])]
    clouds: Vec<Cloud>,
    /// Serve the onboarding scenarios instead: a healthy tenant in each cloud and one tenant
    /// per prerequisite problem (no P1, no Exchange, partial or revoked consent, expired
    /// secret, removed app, no data, third-party MFA, audit log off, a disabled Management
    /// Activity subscription).
    #[arg(long)]
    scenarios: bool,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Write a configuration for `itdr --config` (store, outputs, endpoint override, app
    /// credentials) here; the simulated apps' secrets go into files beside it.
    #[arg(long, default_value = "out/sim.toml")]
    config_out: PathBuf,
}

pub async fn main(args: SimArgs) -> anyhow::Result<ExitCode> {
    if !args.bind.is_loopback() {
        bail!(
            "--bind {} refused: the simulator only listens on loopback addresses",
            args.bind
        );
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number");
    }
    let scenarios: Vec<Scenario> = if args.scenarios {
        onboarding_scenarios()
    } else {
        args.clouds
            .iter()
            .enumerate()
            .map(|(i, c)| Scenario {
                name: "",
                problem: itdr_sim::Problem::None,
                spec: TenantSpec::new(u32::try_from(i).unwrap_or(0), *c),
            })
            .collect()
    };
    let tenants: Vec<TenantSpec> = scenarios.iter().map(|s| s.spec.clone()).collect();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), args.speed));
    let handle = Simulator::start(
        SimConfig::new(args.seed, tenants.clone()),
        clock,
        SocketAddr::new(args.bind, args.port),
    )
    .await
    .context("cannot start the simulator")?;
    for s in &scenarios {
        s.apply(&handle);
    }
    write_config(&args.config_out, &handle.base_url(), &tenants)?;
    println!("simulator listening on {}", handle.base_url());
    for s in &scenarios {
        println!(
            "  {:<16} {} {:<34} {}",
            s.name,
            s.spec.tenant_id,
            s.spec.domain,
            s.spec.cloud.label()
        );
    }
    println!(
        "configuration for the other commands: {} (export ITDR_CONFIG={})",
        args.config_out.display(),
        args.config_out.display()
    );
    tokio::signal::ctrl_c().await.ok();
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Writes `itdr` configuration pointing at the simulator: one app per cloud group, its secret in
/// a file next to the configuration (readable by the owner only).
fn write_config(path: &Path, base_url: &str, tenants: &[TenantSpec]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sim")
        .to_string();
    let mut apps = String::new();
    for group in [CloudGroup::Commercial, CloudGroup::UsGov] {
        let Some(t) = tenants.iter().find(|t| t.cloud.group() == group) else {
            continue;
        };
        let secret_file = dir.join(format!("{stem}-{}.secret", group.as_str()));
        write_private(&secret_file, &format!("{}\n", t.client_secret))?;
        apps.push_str(&format!(
            "\n[apps.{}]\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\n",
            group.as_str(),
            t.app_id,
            toml_path(&secret_file)
        ));
    }
    let at = |name: String| toml_path(&dir.join(name));
    let text = format!(
        "# Written by `itdr sim`: the other commands against the local simulator.\n\
         # Paths are relative to the directory `itdr sim` was started in.\n\
         endpoint_override = \"{base_url}\"\n\n\
         [store]\npath = \"{}\"\n\n\
         [output]\nevents = \"{}\"\ndead_letters = \"{}\"\n\n\
         # Short polls for trying things out (`itdr run --once` returns in seconds); the\n\
         # backfill continues on later polls. Production defaults: 300 s and 240 s.\n\
         [schedule]\ninterval_secs = 60\n\n[poll]\nsweep_budget_secs = 15\n\n\
         # Our own tenant id for the Management Activity API (any GUID against the simulator).\n\
         [management_activity]\npublisher_id = \"{SIM_PUBLISHER_ID}\"\n{apps}",
        at(format!("{stem}.db")),
        at(format!("{stem}-events.ndjson")),
        at(format!("{stem}-dead-letters.ndjson")),
    );
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The publisher id the configurations for the simulator use.
pub const SIM_PUBLISHER_ID: &str = "3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1";

/// A path as a TOML basic-string body (backslashes and quotes escaped).
fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
