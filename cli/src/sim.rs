//! `itdr sim`: serve the Microsoft API simulator on 127.0.0.1.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{TimeDelta, Utc};
use clap::Args;
use itdr_shared::Cloud;
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_sim::{SimConfig, Simulator, TenantSpec};

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
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Write the simulated app credentials (client ids and secrets) to this file.
    #[arg(long, default_value = "out/sim-credentials.json")]
    credentials_out: PathBuf,
}

pub async fn main(args: SimArgs) -> anyhow::Result<ExitCode> {
    if !args.bind.is_loopback() {
        bail!(
            "--bind {} refused: the simulator only listens on loopback addresses",
            args.bind
        );
    }
    let tenants: Vec<TenantSpec> = args
        .clouds
        .iter()
        .enumerate()
        .map(|(i, c)| TenantSpec::new(u32::try_from(i).unwrap_or(0), *c))
        .collect();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now() - TimeDelta::zero(), args.speed));
    let handle = Simulator::start(
        SimConfig::new(args.seed, tenants.clone()),
        clock,
        SocketAddr::new(args.bind, args.port),
    )
    .await
    .context("cannot start the simulator")?;
    if let Some(parent) = args.credentials_out.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let creds: Vec<serde_json::Value> = tenants
        .iter()
        .map(|t| {
            serde_json::json!({
                "tenant_id": t.tenant_id, "domain": t.domain, "cloud": t.cloud,
                "client_id": t.app_id, "client_secret": t.client_secret,
            })
        })
        .collect();
    std::fs::write(&args.credentials_out, serde_json::to_vec_pretty(&creds)?)
        .with_context(|| format!("cannot write {}", args.credentials_out.display()))?;
    println!("simulator listening on {}", handle.base_url());
    println!(
        "endpoint override: endpoint_override = \"{}\"",
        handle.base_url()
    );
    for t in &tenants {
        println!(
            "  tenant {} {:<32} {}",
            t.tenant_id,
            t.domain,
            t.cloud.label()
        );
    }
    println!("credentials written to {}", args.credentials_out.display());
    tokio::signal::ctrl_c().await.ok();
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
