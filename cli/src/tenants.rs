//! `itdr tenants add|remap|reauthorize|list|remove`: the tenant registry and its lifecycle.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use itdr_shared::onboard::lifecycle::{self, NewTenant};
use itdr_shared::onboard::{discover, is_domain, is_guid};
use itdr_shared::{Cloud, CloudGroup, Stream};

use crate::inventory::TenantInventory;
use crate::preflight::{Env, print_report};

#[derive(Subcommand)]
pub enum Action {
    /// Register a tenant: its GUID and national cloud are looked up from its OpenID
    /// configuration, so it goes to the right poller.
    Add {
        /// The tenant: a verified domain (contoso.onmicrosoft.com) or its GUID.
        #[arg(long)]
        tenant: String,
        /// The organization this tenant maps to (one tenant, one organization).
        #[arg(long)]
        org: String,
        /// Name of the app credential in the configuration's [apps] table (default: the app
        /// registration of the tenant's cloud group that serves the fewest tenants, else the
        /// group's name, `commercial` or `usgov`).
        #[arg(long)]
        app: Option<String>,
        /// Skip discovery and register offline in this cloud (global, gcc, gcc_high, dod,
        /// china); needs the tenant GUID.
        #[arg(long)]
        cloud: Option<Cloud>,
        /// A verified domain to record with an offline (--cloud) registration.
        #[arg(long)]
        domain: Option<String>,
        /// The streams to poll, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<Stream>>,
        /// Skip non-interactive, service-principal and managed-identity sign-ins.
        #[arg(long)]
        interactive_only: bool,
        /// The organization's contact address: receives the tenant's assessment report by
        /// email (the AWS report function; a DynamoDB registry).
        #[arg(long)]
        contact: Option<String>,
    },
    /// Map a registered tenant to another organization, or change its contact address.
    Remap {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// The organization it maps to from now on.
        #[arg(long, required_unless_present = "contact")]
        org: Option<String>,
        /// The organization's contact address (receives the emailed assessment report);
        /// `none` removes it.
        #[arg(long)]
        contact: Option<String>,
    },
    /// Move a tenant to another app registration of its cloud group (each registration has
    /// its own request budget), then run preflight with it.
    Move {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// Name of the app credential in the configuration's [apps] table.
        #[arg(long)]
        app: String,
        /// Print the preflight report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-run preflight after a permission or licence change and update the tenant's health;
    /// re-enables an offboarded tenant once nothing blocks it.
    Reauthorize {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// Print the preflight report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List registered tenants with their health.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Offboard a tenant: stop polling it and stop its Management Activity subscriptions;
    /// keep its cursors unless --purge.
    Remove {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// Delete the tenant and its cursors entirely.
        #[arg(long)]
        purge: bool,
    },
}

/// The polling app registration of `group` that serves the fewest enabled tenants (ties: the
/// first by name), among the configuration's `[apps]` (not the write apps of `[respond]`).
/// `None` when the configuration names no app of the group.
async fn least_loaded_app(env: &Env, group: CloudGroup) -> anyhow::Result<Option<String>> {
    let mut load: std::collections::BTreeMap<&str, usize> = env
        .apps
        .iter()
        .filter(|(name, cfg)| {
            !env.write_apps.contains(*name) && cfg.cloud_group(name).ok() == Some(group)
        })
        .map(|(name, _)| (name.as_str(), 0))
        .collect();
    if load.len() < 2 {
        return Ok(load.into_keys().next().map(str::to_string));
    }
    for t in env.registry.list().await? {
        if let Some(n) = load.get_mut(t.app_ref.as_str())
            && t.enabled
        {
            *n += 1;
        }
    }
    Ok(load
        .iter()
        .min_by_key(|(name, n)| (**n, **name))
        .map(|(name, _)| (*name).to_string()))
}

/// Prints the admin consent link of the tenant's app, when the configuration knows its id.
fn print_consent_link(env: &Env, record: &itdr_shared::store::TenantRecord) {
    if let Some(app) = env.apps.get(&record.app_ref) {
        println!(
            "admin consent for app {:?}: {}",
            record.app_ref,
            record
                .cloud
                .admin_consent_url(&record.tenant_id, &app.client_id)
        );
    }
}

/// Runs preflight for a registered tenant and records the result (exit 0: nothing blocks
/// polling; 1: blockers remain).
async fn reauthorize(
    env: &Env,
    record: itdr_shared::store::TenantRecord,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reg = env.registry.as_ref();
    let discovery = discover(&env.stack.transport, &record.tenant_id).await?;
    let report = env.preflight(discovery, Some(&record), None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let record = lifecycle::apply_preflight(reg, record, &report, Utc::now()).await?;
    if report.blockers == 0 {
        eprintln!(
            "{}: nothing blocks polling; it is enabled and will be polled on the next cycle",
            record.tenant_id
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{}: {} blocker(s) remain; health set to {}",
        record.tenant_id,
        report.blockers,
        record.health.state.as_str()
    );
    Ok(ExitCode::from(1))
}

fn fmt_time(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

pub async fn main(
    config: Option<&Path>,
    db: Option<PathBuf>,
    action: Action,
) -> anyhow::Result<ExitCode> {
    let env = Env::open(config, db).await?;
    let reg = env.registry.as_ref();
    match action {
        Action::Add {
            tenant,
            org,
            app,
            cloud,
            domain,
            streams,
            interactive_only,
            contact,
        } => {
            let contact = contact
                .map(|c| itdr_shared::assess::contact::validate_contact_email(&c))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--contact: {e}"))?;
            let (tenant_id, domain, cloud) = match cloud {
                Some(cloud) => {
                    let t = tenant.trim().to_ascii_lowercase();
                    if !is_guid(&t) {
                        bail!(
                            "--tenant {t:?} is not a tenant id: an offline registration (--cloud) needs the tenant GUID (like 72f988bf-86f1-41af-91ab-2d7cd011db47)"
                        );
                    }
                    let domain = domain.map(|d| d.trim().to_ascii_lowercase());
                    if let Some(d) = &domain
                        && !is_domain(d)
                    {
                        bail!("--domain {d:?} is not a domain name (like contoso.onmicrosoft.com)");
                    }
                    (t, domain, cloud)
                }
                None => {
                    if domain.is_some() {
                        bail!(
                            "--domain is only for offline registrations (--cloud); otherwise give the domain as --tenant"
                        );
                    }
                    let d = discover(&env.stack.transport, &tenant).await?;
                    (d.tenant_id, d.domain, d.cloud)
                }
            };
            // An app registration serves the tenants of its own cloud group only: its
            // credential must never reach another cloud's login host.
            if let Some(name) = &app
                && let Some(cfg) = env.apps.get(name)
            {
                let group = cfg.cloud_group(name)?;
                if group != cloud.group() {
                    bail!(
                        "app {name:?} is an app registration of the {group} cloud group, but the tenant is in {} (the {} group): use --app with an app of the {} group",
                        cloud.label(),
                        cloud.group(),
                        cloud.group()
                    );
                }
            }
            let app = match app {
                Some(a) => Some(a),
                None => least_loaded_app(&env, cloud.group()).await?,
            };
            let record = lifecycle::register(
                reg,
                NewTenant {
                    tenant_id,
                    domain,
                    cloud,
                    org,
                    app_ref: app,
                    streams,
                    include_noninteractive: !interactive_only,
                },
                &env.served,
                Utc::now(),
            )
            .await?;
            println!(
                "registered {}{} for {}: {}, {} poller, app {:?}",
                record.tenant_id,
                record
                    .domain
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                record.org.as_deref().unwrap_or_default(),
                cloud.label(),
                cloud.group(),
                record.app_ref
            );
            print_consent_link(&env, &record);
            if let Some(c) = &contact {
                reg.set_contact(&record.tenant_id, Some(c))
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{} is registered, but its contact was not kept: {e}",
                            record.tenant_id
                        )
                    })?;
                println!("contact for the emailed assessment reports: {c}");
            }
            for line in crate::subscriptions::start(&env, &record).await {
                println!("{line}");
            }
            println!("next: itdr preflight --tenant {}", record.tenant_id);
        }
        Action::Remap {
            tenant,
            org,
            contact,
        } => {
            if let Some(org) = org {
                let (record, before) = lifecycle::remap(reg, &tenant, &org).await?;
                println!(
                    "remapped {} from {before:?} to {:?}",
                    record.tenant_id,
                    record.org.unwrap_or_default()
                );
            }
            if let Some(c) = contact {
                let Some(record) = env.find(&tenant).await? else {
                    bail!("tenant {} is not registered", tenant.trim());
                };
                let c = (!c.trim().eq_ignore_ascii_case("none")).then_some(c);
                let c = c
                    .map(|c| itdr_shared::assess::contact::validate_contact_email(&c))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--contact: {e}"))?;
                reg.set_contact(&record.tenant_id, c.as_deref()).await?;
                match c {
                    Some(c) => println!("{}: contact set to {c}", record.tenant_id),
                    None => println!("{}: contact removed", record.tenant_id),
                }
            }
        }
        Action::Reauthorize { tenant, json } => {
            let Some(record) = env.find(&tenant).await? else {
                bail!("tenant {} is not registered", tenant.trim());
            };
            return reauthorize(&env, record, json).await;
        }
        Action::Move { tenant, app, json } => {
            let Some(record) = env.find(&tenant).await? else {
                bail!("tenant {} is not registered", tenant.trim());
            };
            let Some(cfg) = env.apps.get(&app) else {
                bail!("app {app:?} is not in the configuration's [apps]");
            };
            let group = cfg.cloud_group(&app)?;
            if group != record.cloud.group() {
                bail!(
                    "app {app:?} is an app registration of the {group} cloud group, but the tenant is in {} (the {} group)",
                    record.cloud.label(),
                    record.cloud.group()
                );
            }
            if env.write_apps.contains(&app) {
                bail!(
                    "app {app:?} is a write app of [respond]; a tenant is polled with a read app"
                );
            }
            if record.app_ref == app {
                println!("{} is already served by app {app:?}", record.tenant_id);
                return Ok(ExitCode::SUCCESS);
            }
            let (record, before) = lifecycle::move_app(reg, &record.tenant_id, &app).await?;
            println!(
                "moved {} from app {before:?} to app {:?}",
                record.tenant_id, record.app_ref
            );
            print_consent_link(&env, &record);
            return reauthorize(&env, record, json).await;
        }
        Action::List { json } => {
            let all = reg.list().await?;
            let mut inventories = Vec::with_capacity(all.len());
            for t in &all {
                inventories.push(match env.cursors_for(t.cloud.group()).inventory() {
                    Some(store) => Some(TenantInventory::load(store, &t.tenant_id).await?),
                    None => None,
                });
            }
            if json {
                let mut out = Vec::with_capacity(all.len());
                for (t, inv) in all.iter().zip(&inventories) {
                    let mut v = serde_json::to_value(t)?;
                    if let (Some(o), Some(inv)) = (v.as_object_mut(), inv) {
                        o.insert("inventory".into(), serde_json::to_value(inv)?);
                    }
                    out.push(v);
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{:<38} {:<28} {:<9} {:<8} {:<20} {:>8} {:<21} {:<21} last error",
                    "tenant",
                    "organization",
                    "cloud",
                    "enabled",
                    "health",
                    "billable",
                    "last success",
                    "last event"
                );
                for (t, inv) in all.into_iter().zip(&inventories) {
                    let billable = inv
                        .as_ref()
                        .and_then(|i| i.billable)
                        .map_or("-".to_string(), |n| n.to_string());
                    println!(
                        "{:<38} {:<28} {:<9} {:<8} {:<20} {:>8} {:<21} {:<21} {}",
                        t.tenant_id,
                        t.org.unwrap_or_default(),
                        t.cloud.as_str(),
                        t.enabled,
                        t.health.state.as_str(),
                        billable,
                        fmt_time(t.health.last_success),
                        fmt_time(t.health.last_event_at),
                        match t.health.last_error_kind {
                            Some(k) => format!("{k} at {}", fmt_time(t.health.last_error_at)),
                            None => "-".into(),
                        }
                    );
                    if let Some(inv) = inv.as_ref().filter(|i| i.identities.is_some()) {
                        println!("    inventory: {}", inv.line());
                        println!("    not billed: {}", inv.exclusions_line());
                        for d in &inv.degraded {
                            println!("    degraded: {d}");
                        }
                    }
                }
            }
        }
        Action::Remove { tenant, purge } => {
            let found = env.find(&tenant).await?;
            if let Some(r) = &found {
                for line in crate::subscriptions::stop(&env, r).await {
                    println!("{line}");
                }
            }
            // The tenant's cursors live in its cloud group's store.
            let group = found.map_or(CloudGroup::Commercial, |r| r.cloud.group());
            let record =
                lifecycle::offboard(reg, env.cursors_for(group).as_ref(), &tenant, purge).await?;
            if purge {
                println!("removed {} and its cursors", record.tenant_id);
            } else {
                println!(
                    "offboarded {}; cursors kept (use --purge to delete them)",
                    record.tenant_id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
