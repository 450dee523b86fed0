//! `itdr tenants add|remap|reauthorize|list|remove`: the tenant registry and its lifecycle.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use itdr_shared::onboard::preflight::Status;
use itdr_shared::onboard::{discover, is_domain, is_guid};
use itdr_shared::store::{CursorStore, Health, HealthState, TenantRecord, TenantRegistry};
use itdr_shared::{Cloud, Stream};

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
    },
    /// Map a registered tenant to another organization.
    Remap {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// The organization it maps to from now on.
        #[arg(long)]
        org: String,
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
    /// Offboard a tenant: stop polling it; keep its cursors unless --purge.
    Remove {
        /// Tenant GUID or recorded domain.
        #[arg(long)]
        tenant: String,
        /// Delete the tenant and its cursors entirely.
        #[arg(long)]
        purge: bool,
    },
}

fn same_org(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Refuses an empty organization, or one that another tenant already maps to.
async fn org_is_free(env: &Env, org: &str, tenant_id: &str) -> anyhow::Result<()> {
    if org.trim().is_empty() {
        bail!("--org must name the organization this tenant maps to");
    }
    if let Some(other) =
        env.store.list().await?.into_iter().find(|t| {
            t.tenant_id != tenant_id && t.org.as_deref().is_some_and(|o| same_org(o, org))
        })
    {
        bail!(
            "organization {:?} is already mapped to tenant {}: a tenant maps to one organization and an organization to one tenant (use `itdr tenants remap` to move a mapping)",
            org.trim(),
            other.tenant_id
        );
    }
    Ok(())
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
    let env = Env::open(config, db)?;
    match action {
        Action::Add {
            tenant,
            org,
            app,
            cloud,
            domain,
            streams,
            interactive_only,
        } => {
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
                    let d = discover(&env.transport, &tenant).await?;
                    (d.tenant_id, d.domain, d.cloud)
                }
            };
            if !env.served.contains(&cloud.group()) {
                bail!(
                    "tenant {tenant_id} is in {}, served by the {} poller, which this deployment does not run ([deployment] groups = {:?})",
                    cloud.label(),
                    cloud.group(),
                    env.served.iter().map(|g| g.as_str()).collect::<Vec<_>>()
                );
            }
            if let Some(existing) = env.store.get(&tenant_id).await? {
                bail!(
                    "tenant {tenant_id} is already registered (organization {:?}): use `itdr tenants remap` to change its organization",
                    existing.org.unwrap_or_default()
                );
            }
            org_is_free(&env, &org, &tenant_id).await?;
            let streams = streams.unwrap_or_else(|| Stream::ALL.to_vec());
            if streams.is_empty() {
                bail!("--streams must name at least one stream");
            }
            let record = TenantRecord {
                tenant_id: tenant_id.clone(),
                domain: domain.clone(),
                org: Some(org.trim().to_string()),
                cloud,
                app_ref: app.unwrap_or_else(|| cloud.group().as_str().to_string()),
                streams,
                include_noninteractive: !interactive_only,
                enabled: true,
                health: Health::default(),
                created_at: Utc::now(),
            };
            env.store.insert(&record).await?;
            println!(
                "registered {tenant_id}{} for {}: {}, {} poller, app {:?}",
                domain.map(|d| format!(" ({d})")).unwrap_or_default(),
                org.trim(),
                cloud.label(),
                cloud.group(),
                record.app_ref
            );
            println!("next: itdr preflight --tenant {tenant_id}");
        }
        Action::Remap { tenant, org } => {
            let Some(mut record) = env.find(&tenant).await? else {
                bail!("tenant {} is not registered", tenant.trim());
            };
            org_is_free(&env, &org, &record.tenant_id).await?;
            let before = record
                .org
                .replace(org.trim().to_string())
                .unwrap_or_default();
            env.store.update(&record).await?;
            println!(
                "remapped {} from {before:?} to {:?}",
                record.tenant_id,
                org.trim()
            );
        }
        Action::Reauthorize { tenant, json } => {
            let Some(mut record) = env.find(&tenant).await? else {
                bail!("tenant {} is not registered", tenant.trim());
            };
            let discovery = discover(&env.transport, &record.tenant_id).await?;
            let report = env.preflight(discovery, Some(&record), None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            if let Some(days) = report.retention_days {
                record.health.retention_days = Some(days);
            }
            if report.blockers == 0 {
                record.enabled = true;
                record.health.state = HealthState::Pending;
                record.health.consecutive_failures = 0;
                env.store.update(&record).await?;
                eprintln!(
                    "{}: nothing blocks polling; it is enabled and will be polled on the next cycle",
                    record.tenant_id
                );
                return Ok(ExitCode::SUCCESS);
            }
            record.health.state = report.implied_state;
            record.health.last_error_kind = report
                .checks
                .iter()
                .find(|c| c.status == Status::Fail)
                .map(|c| format!("preflight_{}", c.id));
            record.health.last_error_at = Some(Utc::now());
            if report.implied_state == HealthState::Offboarded {
                record.enabled = false;
            }
            env.store.update(&record).await?;
            eprintln!(
                "{}: {} blocker(s) remain; health set to {}",
                record.tenant_id,
                report.blockers,
                record.health.state.as_str()
            );
            return Ok(ExitCode::from(1));
        }
        Action::List { json } => {
            let all = env.store.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<38} {:<28} {:<9} {:<8} {:<20} {:<21} {:<21} last error",
                    "tenant",
                    "organization",
                    "cloud",
                    "enabled",
                    "health",
                    "last success",
                    "last event"
                );
                for t in all {
                    println!(
                        "{:<38} {:<28} {:<9} {:<8} {:<20} {:<21} {:<21} {}",
                        t.tenant_id,
                        t.org.unwrap_or_default(),
                        t.cloud.as_str(),
                        t.enabled,
                        t.health.state.as_str(),
                        fmt_time(t.health.last_success),
                        fmt_time(t.health.last_event_at),
                        match t.health.last_error_kind {
                            Some(k) => format!("{k} at {}", fmt_time(t.health.last_error_at)),
                            None => "-".into(),
                        }
                    );
                }
            }
        }
        Action::Remove { tenant, purge } => {
            let Some(mut record) = env.find(&tenant).await? else {
                bail!("tenant {} is not registered", tenant.trim());
            };
            let id = record.tenant_id.clone();
            if purge {
                env.store.purge(&id).await?;
                env.store.delete(&id).await?;
                println!("removed {id} and its cursors");
            } else {
                record.enabled = false;
                record.health.state = HealthState::Offboarded;
                env.store.update(&record).await?;
                println!("offboarded {id}; cursors kept (use --purge to delete them)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
