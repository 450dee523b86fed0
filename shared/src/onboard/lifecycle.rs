//! The tenant lifecycle on any registry (embedded SQLite or DynamoDB): register a discovered
//! tenant, remap it to another organization, apply a preflight result (reauthorize), offboard.
//!
//! Rules:
//! - a tenant is registered once, in the cloud its OpenID configuration names, and only when
//!   this deployment runs that cloud's poller group;
//! - one tenant maps to one organization and one organization to one tenant (compared without
//!   case); a remap is explicit. The check here reads the registry first to give a helpful
//!   error ([`LifecycleError::OrgTaken`]); the registry itself enforces the rule atomically
//!   (see [`TenantRegistry`]), so two operators registering the same organization at the same
//!   instant cannot both succeed: the loser gets [`StoreError::Invalid`].

use chrono::{DateTime, Utc};

use crate::cloud::{Cloud, CloudGroup};
use crate::health::FailureKind;
use crate::store::{CursorStore, Health, HealthState, StoreError, TenantRecord, TenantRegistry};
use crate::stream::Stream;

use super::preflight::Report;

/// Why a lifecycle change was refused.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The tenant's cloud is served by a poller group this deployment does not run.
    #[error(
        "tenant {tenant} is in {cloud}, served by the {group} poller, which this deployment does not run (it runs: {served})"
    )]
    NotServed {
        /// Tenant GUID.
        tenant: String,
        /// Cloud label.
        cloud: &'static str,
        /// The group needed.
        group: CloudGroup,
        /// The groups run.
        served: String,
    },
    /// The tenant is already registered.
    #[error(
        "tenant {tenant} is already registered (organization {org:?}): use `itdr tenants remap` to change its organization"
    )]
    AlreadyRegistered {
        /// Tenant GUID.
        tenant: String,
        /// Its organization.
        org: String,
    },
    /// The organization belongs to another tenant.
    #[error(
        "organization {org:?} is already mapped to tenant {other}: a tenant maps to one organization and an organization to one tenant (use `itdr tenants remap` to move a mapping)"
    )]
    OrgTaken {
        /// The organization.
        org: String,
        /// The tenant that has it.
        other: String,
    },
    /// A value is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The tenant is not registered.
    #[error("tenant {0} is not registered")]
    Unknown(String),
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to register.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Tenant GUID.
    pub tenant_id: String,
    /// A verified domain, if known.
    pub domain: Option<String>,
    /// The tenant's cloud.
    pub cloud: Cloud,
    /// The organization it maps to.
    pub org: String,
    /// App credential reference (default: the cloud group's name).
    pub app_ref: Option<String>,
    /// Streams to poll (default: all).
    pub streams: Option<Vec<Stream>>,
    /// Whether to read non-interactive sign-ins too.
    pub include_noninteractive: bool,
}

/// A registered tenant by GUID, or by its recorded domain.
pub async fn find(
    reg: &dyn TenantRegistry,
    tenant: &str,
) -> Result<Option<TenantRecord>, LifecycleError> {
    let t = tenant.trim().to_ascii_lowercase();
    if let Some(r) = reg.get(&t).await? {
        return Ok(Some(r));
    }
    Ok(reg
        .list()
        .await?
        .into_iter()
        .find(|r| r.domain.as_deref() == Some(t.as_str())))
}

async fn org_is_free(
    reg: &dyn TenantRegistry,
    org: &str,
    tenant_id: &str,
) -> Result<(), LifecycleError> {
    if org.trim().is_empty() {
        return Err(LifecycleError::Invalid(
            "--org must name the organization this tenant maps to".into(),
        ));
    }
    let taken = reg.list().await?.into_iter().find(|t| {
        t.tenant_id != tenant_id
            && t.org
                .as_deref()
                .is_some_and(|o| o.trim().eq_ignore_ascii_case(org.trim()))
    });
    match taken {
        Some(other) => Err(LifecycleError::OrgTaken {
            org: org.trim().to_string(),
            other: other.tenant_id,
        }),
        None => Ok(()),
    }
}

/// Registers a tenant (see the module rules).
pub async fn register(
    reg: &dyn TenantRegistry,
    new: NewTenant,
    served: &[CloudGroup],
    now: DateTime<Utc>,
) -> Result<TenantRecord, LifecycleError> {
    let group = new.cloud.group();
    if !served.contains(&group) {
        return Err(LifecycleError::NotServed {
            tenant: new.tenant_id,
            cloud: new.cloud.label(),
            group,
            served: served
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(existing) = reg.get(&new.tenant_id).await? {
        return Err(LifecycleError::AlreadyRegistered {
            tenant: new.tenant_id,
            org: existing.org.unwrap_or_default(),
        });
    }
    org_is_free(reg, &new.org, &new.tenant_id).await?;
    let streams = new.streams.unwrap_or_else(|| Stream::EVERY.to_vec());
    if streams.is_empty() {
        return Err(LifecycleError::Invalid(
            "--streams must name at least one stream".into(),
        ));
    }
    let record = TenantRecord {
        tenant_id: new.tenant_id,
        domain: new.domain,
        org: Some(new.org.trim().to_string()),
        cloud: new.cloud,
        app_ref: new.app_ref.unwrap_or_else(|| group.as_str().to_string()),
        streams,
        include_noninteractive: new.include_noninteractive,
        enabled: true,
        health: Health::default(),
        created_at: now,
    };
    reg.insert(&record).await?;
    Ok(record)
}

/// Maps a registered tenant to another organization; returns the previous one.
pub async fn remap(
    reg: &dyn TenantRegistry,
    tenant: &str,
    org: &str,
) -> Result<(TenantRecord, String), LifecycleError> {
    let Some(mut record) = find(reg, tenant).await? else {
        return Err(LifecycleError::Unknown(tenant.trim().to_string()));
    };
    org_is_free(reg, org, &record.tenant_id).await?;
    let before = record
        .org
        .replace(org.trim().to_string())
        .unwrap_or_default();
    reg.update(&record).await?;
    Ok((record, before))
}

/// Moves a registered tenant to another app registration (`app_ref`); returns the record and
/// the app it had. The caller checks that the app belongs to the tenant's cloud group, and
/// runs preflight with it (the customer must have consented to that app).
pub async fn move_app(
    reg: &dyn TenantRegistry,
    tenant: &str,
    app_ref: &str,
) -> Result<(TenantRecord, String), LifecycleError> {
    let Some(mut record) = find(reg, tenant).await? else {
        return Err(LifecycleError::Unknown(tenant.trim().to_string()));
    };
    let before = std::mem::replace(&mut record.app_ref, app_ref.to_string());
    reg.update(&record).await?;
    Ok((record, before))
}

/// Records a preflight result: with no blocker the tenant is enabled again and `pending`
/// until its next poll; otherwise its health shows the first blocker, and a tenant whose app
/// is gone is disabled (offboarded).
pub async fn apply_preflight(
    reg: &dyn TenantRegistry,
    mut record: TenantRecord,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<TenantRecord, LifecycleError> {
    if let Some(days) = report.retention_days {
        record.health.retention_days = Some(days);
    }
    if report.blockers == 0 {
        record.enabled = true;
        record.health.reset();
    } else {
        record.health.state = report.implied_state;
        record.health.last_error_kind =
            report.first_blocker().map(|c| FailureKind::Preflight(c.id));
        record.health.last_error_at = Some(now);
        if report.implied_state == HealthState::Offboarded {
            record.enabled = false;
        }
    }
    reg.update(&record).await?;
    Ok(record)
}

/// Offboards a tenant: disabled and `offboarded` with its cursors kept, or (`purge`) deleted
/// with its cursors.
pub async fn offboard(
    reg: &dyn TenantRegistry,
    cursors: &dyn CursorStore,
    tenant: &str,
    purge: bool,
) -> Result<TenantRecord, LifecycleError> {
    let Some(mut record) = find(reg, tenant).await? else {
        return Err(LifecycleError::Unknown(tenant.trim().to_string()));
    };
    if purge {
        cursors.purge(&record.tenant_id).await?;
        reg.delete(&record.tenant_id).await?;
    } else {
        record.enabled = false;
        record.health.state = HealthState::Offboarded;
        reg.update(&record).await?;
    }
    Ok(record)
}
