//! `itdr contain|disable|enable|revoke|rules|methods|actions`: response actions on a registered
//! tenant in the embedded mode, through the same client stack and cloud routing as the
//! pollers (`itdr_shared::respond`).
//!
//! Configuration (`[respond]`, optional):
//! ```toml
//! [respond]
//! # A separate write app per cloud group (an [apps.<name>] entry); default: the tenant's app.
//! write_apps = { commercial = "commercial-write", usgov = "usgov-write" }
//! [respond.protected]
//! # Break-glass accounts per organization: never disabled nor stripped of their methods.
//! "Able Moose Accounting" = ["breakglass@contoso0.onmicrosoft.com"]
//! ```
//!
//! Every action records its audit trail in the embedded database (`itdr actions list`) and
//! appends its OCSF events to the configured events file. Exit code: 0 when the action
//! completed (or was a dry run), 1 when it was refused or a step failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use itdr_shared::CloudGroup;
use itdr_shared::client::Tenant;
use itdr_shared::embedded::{NdjsonSink, SqliteStore};
use itdr_shared::respond::{
    Action, ActionLog, ActionReport, ActionRequest, Outcome, ProtectedAccounts, Responder,
};
use itdr_shared::stack::ClientStack;
use itdr_shared::store::TenantRecord;
use serde::Deserialize;

use crate::config::{AppConfig, RunConfig};

/// `[respond]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespondConfig {
    /// The app (an `[apps.<name>]` entry) write actions use, per cloud group (`commercial`,
    /// `usgov`).
    pub write_apps: BTreeMap<String, String>,
    /// Protected (break-glass) accounts per organization, by UPN or object id.
    pub protected: BTreeMap<String, Vec<String>>,
}

impl RespondConfig {
    /// The protected accounts.
    pub fn protected_accounts(&self) -> ProtectedAccounts {
        let mut p = ProtectedAccounts::new();
        for (org, accounts) in &self.protected {
            p.protect(org, accounts.iter().cloned());
        }
        p
    }
}

/// What every action names.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The tenant: a registered tenant's GUID or domain.
    #[arg(long)]
    pub tenant: String,
    /// The user: object id or user principal name.
    #[arg(long)]
    pub user: String,
    /// Why (mandatory; recorded and emitted).
    #[arg(long)]
    pub reason: String,
    /// Who asks (mandatory; recorded and emitted).
    #[arg(long, env = "ITDR_REQUESTER")]
    pub requester: String,
    /// Show exactly which calls would be made, and make none of the writes.
    #[arg(long)]
    pub dry_run: bool,
    /// The app credential to use (default: `[respond] write_apps`, else the tenant's app).
    #[arg(long)]
    pub app: Option<String>,
    /// The embedded database (default: the configuration's store).
    #[arg(long, env = "ITDR_DB")]
    pub db: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `itdr rules …`.
#[derive(Subcommand, Debug, Clone)]
pub enum RulesCommand {
    /// Disable one inbox rule.
    Disable {
        /// The rule id.
        #[arg(long)]
        rule: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete one inbox rule.
    Delete {
        /// The rule id.
        #[arg(long)]
        rule: String,
        #[command(flatten)]
        target: Target,
    },
    /// Disable every rule of the mailbox that forwards or redirects outside the tenant.
    DisableForwarding {
        #[command(flatten)]
        target: Target,
    },
    /// Remove the mailbox's own forwarding (prints the Exchange Online commands to run).
    RemoveMailboxForwarding {
        #[command(flatten)]
        target: Target,
    },
}

/// `itdr methods …`.
#[derive(Subcommand, Debug, Clone)]
pub enum MethodsCommand {
    /// Remove every registered authentication method but the password, listing each.
    Remove {
        #[command(flatten)]
        target: Target,
    },
}

/// `itdr actions …`.
#[derive(Subcommand, Debug, Clone)]
pub enum ActionsCommand {
    /// The audit trail of a tenant's response actions, oldest first.
    List {
        /// The tenant GUID.
        #[arg(long)]
        tenant: String,
        /// The embedded database (default: the configuration's store).
        #[arg(long, env = "ITDR_DB")]
        db: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn store_path(cfg: &RunConfig, db: Option<PathBuf>) -> PathBuf {
    db.unwrap_or_else(|| cfg.store.path.clone())
}

/// Runs one action from the command line.
pub async fn main(
    config: Option<&Path>,
    action: Action,
    target: Target,
) -> anyhow::Result<ExitCode> {
    let Some(config) = config else {
        bail!(
            "response actions need a configuration with the app credentials: pass --config FILE or set ITDR_CONFIG"
        );
    };
    let cfg = RunConfig::load(config)?;
    if cfg.registry.kind != crate::config::RegistryKind::Embedded {
        bail!(
            "response actions run in the embedded mode; on AWS they go through the actions function"
        );
    }
    let env = crate::preflight::Env::open(Some(config), target.db.clone()).await?;
    let record = env.find(&target.tenant).await?.ok_or_else(|| {
        anyhow!(
            "tenant {} is not registered (itdr tenants add)",
            target.tenant
        )
    })?;
    let store = SqliteStore::open(&store_path(&cfg, target.db.clone()))
        .map_err(|e| anyhow!("cannot open the embedded store: {e}"))?;
    let events = NdjsonSink::open(&cfg.output.events)
        .map_err(|e| anyhow!("cannot open {}: {e}", cfg.output.events.display()))?;
    let app = write_app(&cfg.apps, &cfg.respond, &record, target.app.as_deref())?;
    let report = act(
        &env.stack,
        Arc::new(store),
        Some(Arc::new(events)),
        &cfg.respond,
        &record,
        app,
        action,
        &target,
    )
    .await;
    match report {
        Ok(r) => {
            if target.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_report(&r);
            }
            Ok(match r.outcome {
                Outcome::Completed | Outcome::DryRun => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The app an action uses: `--app`, else the group's write app, else the tenant's own.
pub fn write_app<'a>(
    apps: &'a BTreeMap<String, AppConfig>,
    respond: &'a RespondConfig,
    record: &'a TenantRecord,
    explicit: Option<&'a str>,
) -> anyhow::Result<(&'a str, &'a AppConfig)> {
    let name = explicit
        .or_else(|| {
            respond
                .write_apps
                .iter()
                .find(|(g, _)| g.parse::<CloudGroup>().ok() == Some(record.cloud.group()))
                .map(|(_, a)| a.as_str())
        })
        .unwrap_or(record.app_ref.as_str());
    let app = apps
        .get(name)
        .ok_or_else(|| anyhow!("no [apps.{name}] in the configuration"))?;
    Ok((name, app))
}

/// Runs `action` on `record`'s tenant with `app`'s credential through `stack`.
#[allow(clippy::too_many_arguments)]
pub async fn act(
    stack: &ClientStack,
    log: Arc<dyn ActionLog>,
    events: Option<Arc<dyn itdr_shared::store::EventSink>>,
    respond: &RespondConfig,
    record: &TenantRecord,
    (app_name, app): (&str, &AppConfig),
    action: Action,
    target: &Target,
) -> anyhow::Result<ActionReport> {
    let credential = app.credential(app_name)?;
    stack.tokens.set(&record.tenant_id, credential);
    let mut responder =
        Responder::new(stack.client.clone(), log).with_protected(respond.protected_accounts());
    if let Some(sink) = events {
        responder = responder.with_events(sink);
    }
    let req = ActionRequest {
        tenant: Tenant {
            id: record.tenant_id.clone(),
            cloud: record.cloud,
        },
        organization: record.org.clone().unwrap_or_default(),
        user: target.user.clone(),
        action,
        reason: target.reason.clone(),
        requester: target.requester.clone(),
        dry_run: target.dry_run,
    };
    responder.run(&req).await.map_err(anyhow::Error::from)
}

/// `itdr actions list`.
pub async fn actions_main(config: Option<&Path>, cmd: ActionsCommand) -> anyhow::Result<ExitCode> {
    let ActionsCommand::List { tenant, db, json } = cmd;
    let path = match (db, config) {
        (Some(db), _) => db,
        (None, Some(config)) => RunConfig::load(config)?.store.path,
        (None, None) => bail!("pass --db FILE or --config FILE"),
    };
    let store =
        SqliteStore::open(&path).map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    let records = store
        .list(&tenant)
        .await
        .context("reading the audit trail")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        print_trail(&records);
    }
    Ok(ExitCode::SUCCESS)
}

/// One action as lines for the operator.
pub fn print_report(r: &ActionReport) {
    println!(
        "{} {} on {} ({}) in tenant {} [{}]: {}{}",
        if r.dry_run { "DRY RUN" } else { "action" },
        r.action.as_str(),
        r.target.upn.as_deref().unwrap_or(&r.target.id),
        r.target.id,
        r.tenant_id,
        r.cloud.label(),
        r.outcome.as_str(),
        r.error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    println!("  requested by {} because: {}", r.requester, r.reason);
    for (i, s) in r.steps.iter().enumerate() {
        println!(
            "  {}. {:<26} {:<8} {}",
            i + 1,
            s.step.as_str(),
            s.outcome.as_str(),
            s.detail
        );
        for c in s.calls.iter().filter(|c| c.method != "GET") {
            let outcome = match &c.outcome {
                itdr_shared::respond::CallOutcome::Ok { status } => status.to_string(),
                itdr_shared::respond::CallOutcome::Planned => "planned".into(),
                itdr_shared::respond::CallOutcome::Failed { kind, .. } => kind.clone(),
            };
            let body = c.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
            println!("       {} {}{body} -> {outcome}", c.method, c.url);
        }
        for rule in &s.rules {
            println!(
                "       rule {:?} [{}] {}",
                rule.name,
                rule.flags.join(","),
                rule.result
            );
        }
        for m in &s.methods {
            println!(
                "       method {} {} {} -> {}",
                m.method_type,
                m.id,
                m.detail.as_deref().unwrap_or(""),
                m.result
            );
        }
    }
}

/// The audit trail as a table.
pub fn print_trail(records: &[ActionReport]) {
    println!(
        "{:<25} {:<26} {:<10} {:<28} {:<24} reason",
        "started", "action", "outcome", "target", "requester"
    );
    for r in records {
        let calls = r.calls().count();
        let writes = r.writes().len();
        println!(
            "{:<25} {:<26} {:<10} {:<28} {:<24} {} ({calls} calls, {writes} writes{})",
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.action.as_str(),
            r.outcome.as_str(),
            r.target.upn.as_deref().unwrap_or(&r.target.id),
            r.requester,
            r.reason,
            if r.dry_run { ", dry run" } else { "" }
        );
    }
}

/// The `make run` demo: one containment of a compromised user in one tenant, and the
/// tenant's audit trail afterwards.
#[derive(Debug, serde::Serialize)]
pub struct Demo {
    /// The containment.
    pub report: ActionReport,
    /// The tenant's audit trail after it.
    pub trail: Vec<ActionReport>,
}

/// Contains the owner of a planted forwarding rule in the simulator's first tenant: the
/// customer grants the write permissions, then the analyst runs `contain`. `None` (with a
/// warning) when the demo cannot run; the poll summary stands either way.
#[allow(clippy::too_many_arguments)]
pub async fn demo(
    sim: &crate::demo::Demo,
    tenant: &crate::demo::DemoTenant,
    stack_client: Arc<itdr_shared::client::ApiClient>,
    tokens: &itdr_shared::auth::PerTenantTokens,
    store: &SqliteStore,
    events: Arc<dyn itdr_shared::store::EventSink>,
    org: &str,
    respond: &RespondConfig,
) -> Option<Demo> {
    use itdr_shared::auth::TokenSource;
    let owner = sim.compromised_user_with_write_consent(&tenant.tenant_id)?;
    // A new token carries the roles just granted.
    tokens.set(&tenant.tenant_id, tenant.credential.clone());
    tokens.invalidate(tenant.cloud, &tenant.tenant_id);
    let responder = Responder::new(stack_client, Arc::new(store.clone()))
        .with_events(events)
        .with_protected(respond.protected_accounts())
        .with_timeout(std::time::Duration::from_secs(3600));
    let req = ActionRequest {
        tenant: Tenant {
            id: tenant.tenant_id.clone(),
            cloud: tenant.cloud,
        },
        organization: org.to_string(),
        user: owner,
        action: Action::Contain,
        reason: "demo: sign-in from a foreign country, then a new rule forwarding invoices outside"
            .into(),
        requester: "soc-analyst@itdr.example".into(),
        dry_run: false,
    };
    let report = match responder.run(&req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the demo containment was refused");
            return None;
        }
    };
    let trail = store.list(&tenant.tenant_id).await.ok()?;
    Some(Demo { report, trail })
}

/// Prints the demo after the run's summary.
pub fn print_demo(d: &Demo) {
    println!(
        "\ndemo containment (itdr contain), then the tenant's audit trail (itdr actions list):"
    );
    print_report(&d.report);
    print_trail(&d.trail);
}
