//! `itdr tenants add|list|remove`: the embedded tenant registry.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use chrono::Utc;
use clap::Subcommand;
use itdr_shared::embedded::SqliteStore;
use itdr_shared::store::{CursorStore, Health, HealthState, TenantRecord, TenantRegistry};
use itdr_shared::{Cloud, Stream};

#[derive(Subcommand)]
pub enum Action {
    /// Register a tenant.
    Add {
        /// Tenant id (GUID).
        #[arg(long)]
        tenant: String,
        /// A verified domain of the tenant (e.g. contoso.onmicrosoft.com).
        #[arg(long)]
        domain: Option<String>,
        /// The organization this tenant maps to.
        #[arg(long)]
        org: String,
        /// National cloud: global, gcc, gcc_high, dod, china.
        #[arg(long, default_value = "global")]
        cloud: Cloud,
        /// Name of the app credential in the run configuration's [apps] table.
        #[arg(long, default_value = "default")]
        app: String,
        /// Skip non-interactive, service-principal and managed-identity sign-ins.
        #[arg(long)]
        interactive_only: bool,
    },
    /// List registered tenants with their health.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Offboard a tenant: stop polling it; keep its cursors unless --purge.
    Remove {
        /// Tenant id (GUID).
        #[arg(long)]
        tenant: String,
        /// Delete the tenant and its cursors entirely.
        #[arg(long)]
        purge: bool,
    },
}

/// Whether `s` is a GUID in the 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `s` looks like a DNS domain name (labels of letters, digits and hyphens).
pub fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()) && tld.len() >= 2)
}

pub async fn main(db: &Path, action: Action) -> anyhow::Result<ExitCode> {
    if let Some(parent) = db.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let store = SqliteStore::open(db).map_err(|e| anyhow!("cannot open {}: {e}", db.display()))?;
    match action {
        Action::Add {
            tenant,
            domain,
            org,
            cloud,
            app,
            interactive_only,
        } => {
            let tenant = tenant.trim().to_ascii_lowercase();
            if !is_guid(&tenant) {
                bail!(
                    "--tenant {tenant:?} is not a tenant id (a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47)"
                );
            }
            let domain = domain.map(|d| d.trim().to_ascii_lowercase());
            if let Some(d) = &domain
                && !is_domain(d)
            {
                bail!("--domain {d:?} is not a domain name (like contoso.onmicrosoft.com)");
            }
            if org.trim().is_empty() {
                bail!("--org must name the organization this tenant maps to");
            }
            let record = TenantRecord {
                tenant_id: tenant.clone(),
                domain,
                org: Some(org.trim().to_string()),
                cloud,
                app_ref: app,
                streams: Stream::ALL.to_vec(),
                include_noninteractive: !interactive_only,
                enabled: true,
                health: Health::default(),
                created_at: Utc::now(),
            };
            store.insert(&record).await?;
            println!(
                "registered {tenant} ({}, {} poller) for {}",
                cloud.label(),
                cloud.group(),
                record.org.unwrap_or_default()
            );
        }
        Action::List { json } => {
            let all = store.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<38} {:<30} {:<10} {:<8} {:<18} {:<22} last error",
                    "tenant", "organization", "cloud", "enabled", "health", "last success"
                );
                for t in all {
                    println!(
                        "{:<38} {:<30} {:<10} {:<8} {:<18} {:<22} {}",
                        t.tenant_id,
                        t.org.unwrap_or_default(),
                        t.cloud.as_str(),
                        t.enabled,
                        t.health.state.as_str(),
                        t.health
                            .last_success
                            .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
                            .unwrap_or_else(|| "-".into()),
                        t.health.last_error_kind.unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
        Action::Remove { tenant, purge } => {
            let tenant = tenant.trim().to_ascii_lowercase();
            let Some(mut record) = store.get(&tenant).await? else {
                bail!("tenant {tenant} is not registered");
            };
            if purge {
                store.purge(&tenant).await?;
                store.delete(&tenant).await?;
                println!("removed {tenant} and its cursors");
            } else {
                record.enabled = false;
                record.health.state = HealthState::Offboarded;
                store.update(&record).await?;
                println!("offboarded {tenant}; cursors kept (use --purge to delete them)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_and_domains_are_validated() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(is_domain("contoso.onmicrosoft.com"));
        assert!(is_domain("agency.onmicrosoft.us"));
        assert!(!is_domain("contoso"));
        assert!(!is_domain("-bad.com"));
        assert!(!is_domain("a..b.com"));
        assert!(!is_domain("x.com/evil"));
    }
}
