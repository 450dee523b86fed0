//! `itdr`: the operator CLI. Runs the pipeline in-process on the embedded store, manages the
//! tenant registry, normalizes raw Microsoft records, and serves the Microsoft simulator.

mod config;
mod normalize;
mod run;
mod sim;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "itdr",
    version,
    about = "ITDR ingestion for Microsoft 365: poll, normalize to OCSF, deliver"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler and pollers in-process until stopped (or for one cycle).
    Run {
        /// The run configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Run a single poll cycle and exit.
        #[arg(long)]
        once: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the embedded tenant registry.
    Tenants {
        /// The embedded database.
        #[arg(long, default_value = "out/itdr.db", env = "ITDR_DB")]
        db: PathBuf,
        #[command(subcommand)]
        action: tenants::Action,
    },
    /// Normalize raw Microsoft records (a Graph page or NDJSON) from stdin to OCSF NDJSON.
    Normalize {
        /// The stream the records come from: signins or directory_audits.
        #[arg(long)]
        stream: itdr_shared::Stream,
        /// Tenant GUID for metadata.tenant_uid.
        #[arg(long, default_value = "00000000-0000-0000-0000-000000000000")]
        tenant: String,
        /// Include the raw record in raw_data.
        #[arg(long)]
        raw: bool,
        /// Print a JSON summary on stderr.
        #[arg(long)]
        json: bool,
    },
    /// Serve the Microsoft API simulator on 127.0.0.1 until interrupted.
    Sim(sim::SimArgs),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ITDR_LOG").unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run { config, once, json } => {
                let cfg = config::RunConfig::load(&config)?;
                let summary = run::run(cfg, once, json).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    run::print_table(&summary);
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Tenants { db, action } => tenants::main(&db, action).await,
            Command::Normalize {
                stream,
                tenant,
                raw,
                json,
            } => normalize::main(stream, &tenant, raw, json),
            Command::Sim(args) => sim::main(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
