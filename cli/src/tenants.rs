//! `itdr tenants add|remap|reauthorize|list|remove`: the tenant registry and its lifecycle.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use itdr_shared::onboard::lifecycle::{self, NewTenant};
use itdr_shared::onboard::{discover, is_domain, is_guid};
use itdr_shared::{Cloud, Stream};

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
        /// Name of the app credential in the configuration's [apps] table (default: the
        /// tenant's poller group, `commercial` or `usgov`).
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
            return Ok(ExitCode::from(1));
        }
        Action::List { json } => {
            let all = reg.list().await?;
            let mut inventories = Vec::with_capacity(all.len());
            for t in &all {
                inventories.push(match env.cursors.inventory() {
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
            if let Some(r) = env.find(&tenant).await? {
                for line in crate::subscriptions::stop(&env, &r).await {
                    println!("{line}");
                }
            }
            let record = lifecycle::offboard(reg, env.cursors.as_ref(), &tenant, purge).await?;
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
