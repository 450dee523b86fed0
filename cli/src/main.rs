//! `itdr`: the operator CLI. Runs the pipeline in-process on the embedded store, manages the
//! tenant registry, normalizes raw Microsoft records, and serves the Microsoft simulator.

mod assess;
mod config;
mod demo;
mod inventory;
mod normalize;
mod preflight;
mod registry;
mod respond;
mod run;
#[cfg(feature = "sim")]
mod sim;
mod subscriptions;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use itdr_shared::respond::Action;

#[derive(Parser)]
#[command(
    name = "itdr",
    version,
    about = "ITDR ingestion for Microsoft 365: poll, normalize to OCSF, deliver"
)]
struct Cli {
    /// The configuration file (TOML): store, outputs, app credentials, endpoint override.
    #[arg(long, global = true, env = "ITDR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler and pollers in-process until stopped (or for one cycle).
    Run {
        /// Run a single poll cycle and exit.
        #[arg(long)]
        once: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Onboard, list, re-check and offboard tenants (the embedded registry).
    Tenants {
        /// The embedded database (default: the configuration's store, else out/itdr.db).
        #[arg(long, env = "ITDR_DB")]
        db: Option<PathBuf>,
        #[command(subcommand)]
        action: tenants::Action,
    },
    /// Monthly usage per organization: the billable count (licensed, enabled members; guests,
    /// rooms and unlicensed shared mailboxes excluded), the month's highest daily figure.
    Usage {
        /// The embedded database (default: the configuration's store, else out/itdr.db).
        #[arg(long, env = "ITDR_DB")]
        db: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a tenant's prerequisites (cloud, consent, permissions, licences, data, MFA)
    /// before polling it. Exit code 1 when something blocks polling, 2 when it cannot run.
    Preflight {
        /// The tenant: a verified domain or its GUID (registered or not).
        #[arg(long)]
        tenant: String,
        /// The app credential to use (default: the tenant's, else its poller group's).
        #[arg(long)]
        app: Option<String>,
        /// The embedded database (default: the configuration's store, else out/itdr.db).
        #[arg(long, env = "ITDR_DB")]
        db: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Normalize raw Microsoft records (a Graph page or NDJSON) from stdin to OCSF NDJSON.
    Normalize {
        /// The stream the records come from: signins, directory_audits or unified_audit.
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
    #[cfg(feature = "sim")]
    Sim(sim::SimArgs),
    /// Write a tenant's Identity Security Assessment (HTML and JSON) from the embedded
    /// pipeline's events and inventory, compared with its earlier report if there is one.
    Assess {
        /// The tenant: a registered domain or GUID.
        #[arg(long)]
        tenant: String,
        /// Directory for the reports (default: the configuration's `[output] reports`, else
        /// out/reports).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The OCSF events file (default: the configuration's, else out/events.ndjson).
        #[arg(long)]
        events: Option<PathBuf>,
        /// The embedded database (default: the configuration's store, else out/itdr.db).
        #[arg(long, env = "ITDR_DB")]
        db: Option<PathBuf>,
        /// Do not append the findings to the events file as OCSF events.
        #[arg(long)]
        no_emit: bool,
        /// Print where the reports went as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Contain a compromised account: disable it, revoke its sessions, disable the inbox rules
    /// that hide mail (in that order, each step reported).
    Contain(respond::Target),
    /// Disable an account (never a protected one, nor the last enabled Global Administrator).
    Disable(respond::Target),
    /// Re-enable an account.
    Enable(respond::Target),
    /// Revoke an account's sign-in sessions and refresh tokens.
    Revoke(respond::Target),
    /// Disable or delete inbox rules; remove mailbox forwarding.
    Rules {
        #[command(subcommand)]
        action: respond::RulesCommand,
    },
    /// Remove registered authentication methods.
    Methods {
        #[command(subcommand)]
        action: respond::MethodsCommand,
    },
    /// The audit trail of response actions.
    Actions {
        #[command(subcommand)]
        action: respond::ActionsCommand,
    },
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
    let config = cli.config;
    if let Command::Preflight {
        tenant,
        app,
        db,
        json,
    } = &cli.command
    {
        let r = runtime.block_on(preflight::main(
            config.as_deref(),
            db.clone(),
            tenant,
            app.as_deref(),
            *json,
        ));
        return match r {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run { once, json } => {
                let Some(config) = config else {
                    anyhow::bail!("run needs a configuration: --config FILE (or ITDR_CONFIG)");
                };
                let cfg = config::RunConfig::load(&config)?;
                let summary = run::run(cfg, once, json).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    run::print_table(&summary);
                }
                if summary.crashed_jobs > 0 {
                    anyhow::bail!(
                        "{} job(s) crashed during the run; their tenants' health says crash (see the log above)",
                        summary.crashed_jobs
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Tenants { db, action } => tenants::main(config.as_deref(), db, action).await,
            Command::Usage { db, json } => inventory::usage_main(config.as_deref(), db, json).await,
            Command::Preflight { .. } => Ok(ExitCode::from(2)),
            Command::Normalize {
                stream,
                tenant,
                raw,
                json,
            } => normalize::main(stream, &tenant, raw, json),
            #[cfg(feature = "sim")]
            Command::Sim(args) => sim::main(args).await,
            Command::Assess {
                tenant,
                out,
                events,
                db,
                no_emit,
                json,
            } => assess::main(config.as_deref(), db, &tenant, out, events, no_emit, json).await,
            Command::Contain(t) => respond::main(config.as_deref(), Action::Contain, t).await,
            Command::Disable(t) => {
                respond::main(config.as_deref(), Action::DisableAccount, t).await
            }
            Command::Enable(t) => respond::main(config.as_deref(), Action::EnableAccount, t).await,
            Command::Revoke(t) => {
                respond::main(config.as_deref(), Action::RevokeSessions, t).await
            }
            Command::Rules { action } => {
                let (a, t) = match action {
                    respond::RulesCommand::Disable { rule, target } => {
                        (Action::DisableRule { rule_id: rule }, target)
                    }
                    respond::RulesCommand::Delete { rule, target } => {
                        (Action::DeleteRule { rule_id: rule }, target)
                    }
                    respond::RulesCommand::DisableForwarding { target } => {
                        (Action::DisableForwardingRules, target)
                    }
                    respond::RulesCommand::RemoveMailboxForwarding { target } => {
                        (Action::RemoveMailboxForwarding, target)
                    }
                };
                respond::main(config.as_deref(), a, t).await
            }
            Command::Methods {
                action: respond::MethodsCommand::Remove { target },
            } => respond::main(config.as_deref(), Action::RemoveAuthMethods, target).await,
            Command::Actions { action } => respond::actions_main(config.as_deref(), action).await,
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
