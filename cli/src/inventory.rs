//! The identity inventory as operators see it: per tenant, the identity, app, admin and no-MFA
//! counts, flagged inbox rules and the billable count with the reason of each exclusion
//! (`itdr tenants list`, the `itdr run` summary), and the monthly usage per organization
//! (`itdr usage`).
//!
//! The monthly figure is the **highest daily billable count** of the month (see
//! `itdr_shared::inventory::monthly_usage`): a seat billable on any day of the month is billed
//! for that month, as a Microsoft licence assigned for part of a month is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use itdr_shared::Stream;
use itdr_shared::inventory::billable::{EXCLUDED_PREFIX, Exclusion};
use itdr_shared::inventory::{InventoryStore, MonthlyUsage, Summary, monthly_usage};
use itdr_shared::store::StoreError;
use serde::Serialize;

use crate::preflight::Env;

/// One tenant's inventory at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TenantInventory {
    /// Users (members and guests).
    pub identities: Option<u64>,
    /// Guests among them.
    pub guests: Option<u64>,
    /// Apps with access (service principals with permissions, third-party or in-tenant).
    pub apps: Option<u64>,
    /// Apps with sensitive permissions and no verified publisher.
    pub risky_apps: Option<u64>,
    /// Principals holding a privileged directory role.
    pub admins: Option<u64>,
    /// Global Administrators.
    pub global_admins: Option<u64>,
    /// Users without any MFA method.
    pub no_mfa: Option<u64>,
    /// Users with phone (SMS, voice) methods only.
    pub weak_mfa_only: Option<u64>,
    /// Conditional access policies with exclusions.
    pub ca_policies_with_exclusions: Option<u64>,
    /// Whether security defaults are on.
    pub security_defaults: Option<bool>,
    /// Inbox rules flagged as suspicious.
    pub flagged_rules: Option<u64>,
    /// Inbox rules read.
    pub rules: Option<u64>,
    /// The billable count.
    pub billable: Option<u64>,
    /// Identities not billed, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// What could not be read, per stream: `stream: what (reason): what is lost`.
    pub degraded: Vec<String>,
}

impl TenantInventory {
    /// From the stream summaries (`None` fields: that stream has not completed a snapshot).
    pub fn from_summaries(s: &BTreeMap<Stream, Summary>) -> TenantInventory {
        let get = |stream: Stream, tag: &str| s.get(&stream).map(|x| x.count(tag));
        let total = |stream: Stream| s.get(&stream).map(|x| x.total);
        let users = s.get(&Stream::Users);
        let excluded = users
            .map(|u| {
                Exclusion::ALL
                    .iter()
                    .map(|e| {
                        (
                            e.as_str().to_string(),
                            u.count(&format!("{EXCLUDED_PREFIX}{}", e.as_str())),
                        )
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect()
            })
            .unwrap_or_default();
        let degraded = s
            .iter()
            .flat_map(|(stream, sum)| {
                sum.degraded
                    .iter()
                    .map(move |d| format!("{stream}: {} ({}): {}", d.what, d.reason, d.lost))
            })
            .collect();
        let mfa_read = s.get(&Stream::Mfa).is_some_and(|m| m.total > 0);
        TenantInventory {
            identities: total(Stream::Users),
            guests: get(Stream::Users, "guest"),
            apps: total(Stream::Apps),
            risky_apps: get(Stream::Apps, "risky"),
            admins: get(Stream::Roles, "admin"),
            global_admins: get(Stream::Roles, "global_admin"),
            no_mfa: get(Stream::Mfa, "no_mfa").filter(|_| mfa_read),
            weak_mfa_only: get(Stream::Mfa, "weak_mfa_only").filter(|_| mfa_read),
            ca_policies_with_exclusions: get(Stream::ConditionalAccess, "has_exclusions").filter(
                |_| {
                    s.get(&Stream::ConditionalAccess)
                        .is_some_and(|c| c.count("policy") > 0)
                },
            ),
            security_defaults: s
                .get(&Stream::ConditionalAccess)
                .filter(|c| c.count("security_defaults") > 0)
                .map(|c| c.count("security_defaults_on") > 0),
            flagged_rules: get(Stream::InboxRules, "flagged"),
            rules: total(Stream::InboxRules),
            billable: get(Stream::Users, "billable"),
            excluded,
            degraded,
        }
    }

    /// Reads a tenant's summaries from `store`.
    pub async fn load(store: &dyn InventoryStore, tenant: &str) -> Result<Self, StoreError> {
        Ok(Self::from_summaries(&store.summaries(tenant).await?))
    }

    /// The counts in one line, `-` for what is not known yet.
    pub fn line(&self) -> String {
        let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        format!(
            "identities {} (guests {}), apps {} (risky {}), admins {} (global {}), no MFA {}, flagged rules {}/{}, billable {}",
            n(self.identities),
            n(self.guests),
            n(self.apps),
            n(self.risky_apps),
            n(self.admins),
            n(self.global_admins),
            n(self.no_mfa),
            n(self.flagged_rules),
            n(self.rules),
            n(self.billable),
        )
    }

    /// The exclusions in one line.
    pub fn exclusions_line(&self) -> String {
        if self.excluded.is_empty() {
            return "none".into();
        }
        self.excluded
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One tenant's line in the `itdr run` summary.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    /// Organization.
    pub org: String,
    /// Tenant id.
    pub tenant_id: String,
    /// The counts.
    #[serde(flatten)]
    pub inventory: TenantInventory,
}

/// The inventory rows of `tenants` (those with inventory streams).
pub async fn rows(
    store: &dyn InventoryStore,
    tenants: &[itdr_shared::store::TenantRecord],
) -> Result<Vec<InventoryRow>, StoreError> {
    let mut out = Vec::new();
    for t in tenants
        .iter()
        .filter(|t| t.streams.iter().any(|s| s.is_inventory()))
    {
        out.push(InventoryRow {
            org: t.org.clone().unwrap_or_default(),
            tenant_id: t.tenant_id.clone(),
            inventory: TenantInventory::load(store, &t.tenant_id).await?,
        });
    }
    Ok(out)
}

/// Prints the identity inventory section of the `itdr run` summary.
pub fn print_rows(rows: &[InventoryRow]) {
    if rows.is_empty() {
        return;
    }
    println!("\nidentity inventory (per tenant):");
    println!(
        "{:<42} {:>10} {:>6} {:>6} {:>7} {:>6} {:>6} {:>8} {:>9}",
        "organization",
        "identities",
        "guests",
        "apps",
        "admins",
        "GAs",
        "no MFA",
        "flagged",
        "billable"
    );
    let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for r in rows {
        let i = &r.inventory;
        let mut org = r.org.clone();
        if org.len() > 42 {
            org.truncate(41);
            org.push('~');
        }
        println!(
            "{:<42} {:>10} {:>6} {:>6} {:>7} {:>6} {:>6} {:>8} {:>9}",
            org,
            n(i.identities),
            n(i.guests),
            n(i.apps),
            n(i.admins),
            n(i.global_admins),
            n(i.no_mfa),
            match (i.flagged_rules, i.rules) {
                (Some(f), Some(t)) => format!("{f}/{t}"),
                _ => "-".into(),
            },
            n(i.billable),
        );
        if i.billable.is_some() {
            println!("{:<42}   not billed: {}", "", i.exclusions_line());
        }
        for d in &i.degraded {
            println!("{:<42}   degraded: {d}", "");
        }
    }
    println!(
        "flagged: inbox rules that forward outside, delete, hide mail, mark it read, or have a punctuation-only name (flagged/read); billable: licensed, enabled members (guests, rooms, equipment and unlicensed shared mailboxes excluded)"
    );
}

/// One organization's usage.
#[derive(Debug, Clone, Serialize)]
pub struct OrgUsage {
    /// The organization.
    pub organization: String,
    /// Its tenant (one tenant per organization).
    pub tenants: Vec<String>,
    /// The latest billable count.
    pub billable_now: Option<u64>,
    /// Monthly figures, oldest first; `billable` is the month's highest daily count.
    pub months: Vec<MonthlyUsage>,
}

/// `itdr usage`: monthly usage per organization.
pub async fn usage_main(
    config: Option<&Path>,
    db: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let env = Env::open(config, db).await?;
    let mut by_org: BTreeMap<String, Vec<(String, itdr_shared::CloudGroup)>> = BTreeMap::new();
    for t in env.registry.list().await? {
        by_org
            .entry(t.org.clone().unwrap_or_else(|| "(none)".into()))
            .or_default()
            .push((t.tenant_id, t.cloud.group()));
    }
    let mut out = Vec::new();
    for (org, tenants) in by_org {
        let mut days: BTreeMap<chrono::NaiveDate, u64> = BTreeMap::new();
        for (t, group) in &tenants {
            let Some(store) = env.cursors_for(*group).inventory() else {
                anyhow::bail!("this store keeps no inventory");
            };
            for (d, n) in store.usage(t).await? {
                *days.entry(d).or_default() += n;
            }
        }
        let tenants: Vec<String> = tenants.into_iter().map(|(t, _)| t).collect();
        let days: Vec<_> = days.into_iter().collect();
        out.push(OrgUsage {
            organization: org,
            tenants,
            billable_now: days.last().map(|(_, n)| *n),
            months: monthly_usage(&days),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{:<32} {:<8} {:>12} {:>10} {:>8}",
            "organization", "month", "billable now", "billed", "days"
        );
        for o in &out {
            if o.months.is_empty() {
                println!(
                    "{:<32} {:<8} {:>12} {:>10} {:>8}",
                    o.organization, "-", "-", "-", 0
                );
            }
            for m in &o.months {
                println!(
                    "{:<32} {:<8} {:>12} {:>10} {:>8}",
                    o.organization,
                    m.month,
                    o.billable_now.map_or("-".into(), |n| n.to_string()),
                    m.billable,
                    m.days_measured
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use itdr_shared::inventory::Degradation;

    #[test]
    fn counts_come_from_the_stream_summaries() {
        let mut s = BTreeMap::new();
        let sum = |total, counts: &[(&str, u64)]| Summary {
            total,
            counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Summary::default()
        };
        s.insert(
            Stream::Users,
            sum(
                10,
                &[
                    ("billable", 6),
                    ("guest", 2),
                    ("excluded:guest", 2),
                    ("excluded:disabled", 2),
                ],
            ),
        );
        s.insert(Stream::Roles, sum(4, &[("admin", 3), ("global_admin", 2)]));
        let mut mfa = sum(0, &[]);
        mfa.degraded.push(Degradation {
            what: "userRegistrationDetails".into(),
            reason: "licence_required".into(),
            lost: "MFA".into(),
        });
        s.insert(Stream::Mfa, mfa);
        let inv = TenantInventory::from_summaries(&s);
        assert_eq!(inv.billable, Some(6));
        assert_eq!(inv.identities, Some(10));
        assert_eq!(inv.admins, Some(3));
        assert_eq!(
            inv.no_mfa, None,
            "unknown, not zero, when MFA could not be read"
        );
        assert_eq!(inv.apps, None);
        assert_eq!(inv.exclusions_line(), "disabled 2, guest 2");
        assert_eq!(
            inv.degraded,
            vec!["mfa: userRegistrationDetails (licence_required): MFA"]
        );
        assert!(inv.line().contains("billable 6"));
    }
}
