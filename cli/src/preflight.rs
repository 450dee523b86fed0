//! `itdr preflight`: every prerequisite of a tenant, checked against Microsoft before the first
//! poll, printed as a table (or JSON) with a remedy per problem.
//!
//! Exit codes: 0 nothing blocks polling (warnings may remain), 1 at least one blocker,
//! 2 preflight could not run (bad input, unknown tenant, configuration error).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use itdr_shared::client::Backoff;
use itdr_shared::clock::SystemClock;
use itdr_shared::embedded::SqliteStore;
use itdr_shared::http::EndpointOverride;
use itdr_shared::onboard::lifecycle;
use itdr_shared::onboard::preflight::{self, Report, Request, Status};
use itdr_shared::onboard::{Discovery, discover};
use itdr_shared::source::UnifiedAuditConfig;
use itdr_shared::stack::{ClientStack, StackBuilder};
use itdr_shared::store::{CursorStore, TenantRecord, TenantRegistry};
use itdr_shared::{CloudGroup, Stream};

use crate::config::{AppConfig, DeploymentConfig, RegistryKind, RunConfig};

/// What the registry and preflight commands need: the registry, the client stack (with the
/// simulator override when configured), the app credentials and what the deployment serves.
pub struct Env {
    /// The tenant registry: embedded, or DynamoDB when configured (`[registry]`).
    pub registry: Arc<dyn TenantRegistry>,
    /// The cursor stores that go with it, (commercial, US Government): each cloud group's
    /// tenants have their own cursor table on AWS; [`Env::cursors_for`] picks one.
    pub cursors: crate::registry::CursorStores,
    /// HTTP, tokens and the API client to Microsoft (or the loopback simulator).
    pub stack: ClientStack,
    /// App registrations by name.
    pub apps: BTreeMap<String, AppConfig>,
    /// The apps `[respond] write_apps` names: write credentials, never a tenant's polling app.
    pub write_apps: std::collections::BTreeSet<String>,
    /// Poller groups this deployment runs.
    pub served: Vec<CloudGroup>,
    /// The content types the unified audit stream reads.
    pub unified_audit: UnifiedAuditConfig,
}

impl Env {
    /// The cursor store of `group`'s tenants.
    pub fn cursors_for(&self, group: CloudGroup) -> &Arc<dyn CursorStore> {
        match group {
            CloudGroup::Commercial => &self.cursors.0,
            CloudGroup::UsGov => &self.cursors.1,
        }
    }

    /// Opens the registry (DynamoDB when `[registry] kind = "dynamodb"`; otherwise the
    /// embedded one at `--db`, else the configuration's store, else `out/itdr.db`) and builds
    /// the client stack from the configuration, if any.
    pub async fn open(config: Option<&Path>, db: Option<PathBuf>) -> anyhow::Result<Self> {
        let cfg = config.map(RunConfig::load).transpose()?;
        let registry_cfg = cfg.as_ref().map(|c| c.registry.clone()).unwrap_or_default();
        let (registry, cursors): (Arc<dyn TenantRegistry>, crate::registry::CursorStores) =
            match registry_cfg.kind {
                RegistryKind::Embedded => {
                    let db = db
                        .or_else(|| cfg.as_ref().map(|c| c.store.path.clone()))
                        .unwrap_or_else(|| PathBuf::from("out/itdr.db"));
                    if let Some(parent) = db.parent()
                        && !parent.as_os_str().is_empty()
                    {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    let store = SqliteStore::open(&db)
                        .map_err(|e| anyhow!("cannot open {}: {e}", db.display()))?;
                    let cursors: Arc<dyn CursorStore> = Arc::new(store.clone());
                    (Arc::new(store), (cursors.clone(), cursors))
                }
                RegistryKind::Dynamodb => {
                    if db.is_some() {
                        bail!(
                            "--db names an embedded registry, but the configuration's [registry] is DynamoDB"
                        );
                    }
                    crate::registry::dynamodb(&registry_cfg).await?
                }
            };
        let endpoint = match cfg.as_ref().and_then(|c| c.endpoint_override.as_deref()) {
            Some(o) => {
                Some(EndpointOverride::parse(o).map_err(|e| anyhow!("endpoint_override: {e}"))?)
            }
            None => None,
        };
        // Preflight retries a little, then reports: an operator is waiting.
        let stack = StackBuilder::new(Arc::new(SystemClock))
            .endpoint_override(endpoint)
            .publisher_id(
                cfg.as_ref()
                    .and_then(|c| c.management_activity.publisher_id.clone()),
            )
            .backoff(Backoff {
                floor: Duration::from_secs(1),
                base: Duration::from_secs(2),
                cap: Duration::from_secs(20),
                max_attempts: 3,
            })
            .build()
            .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            registry,
            cursors,
            stack,
            apps: cfg.as_ref().map(|c| c.apps.clone()).unwrap_or_default(),
            write_apps: cfg
                .as_ref()
                .map(|c| c.respond.write_apps.values().cloned().collect())
                .unwrap_or_default(),
            unified_audit: cfg
                .as_ref()
                .map(|c| c.poll.unified_audit.clone())
                .unwrap_or_default(),
            served: cfg
                .map(|c| c.deployment.groups)
                .unwrap_or_else(|| DeploymentConfig::default().groups),
        })
    }

    /// A registered tenant by GUID or by its recorded domain.
    pub async fn find(&self, tenant: &str) -> anyhow::Result<Option<TenantRecord>> {
        Ok(lifecycle::find(self.registry.as_ref(), tenant).await?)
    }

    /// Runs preflight for a discovered tenant, with its registry record if it has one.
    pub async fn preflight(
        &self,
        discovery: Discovery,
        record: Option<&TenantRecord>,
        app_ref: Option<&str>,
    ) -> anyhow::Result<Report> {
        let app_ref = app_ref
            .map(str::to_string)
            .or_else(|| record.map(|r| r.app_ref.clone()))
            .unwrap_or_else(|| discovery.cloud.group().as_str().to_string());
        let app = match self.apps.get(&app_ref) {
            Some(a) => Some(a.credential(&app_ref)?),
            None => None,
        };
        let req = Request {
            registered_cloud: record.map(|r| r.cloud),
            served: self.served.clone(),
            streams: record
                .map(|r| r.streams.clone())
                .unwrap_or_else(|| Stream::ALL.to_vec()),
            app,
            app_ref,
            discovery,
            unified_audit: self.unified_audit.clone(),
        };
        Ok(preflight::run(&self.stack, req).await)
    }
}

/// `itdr preflight --tenant X [--json]`.
pub async fn main(
    config: Option<&Path>,
    db: Option<PathBuf>,
    tenant: &str,
    app: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    if config.is_none() {
        bail!(
            "preflight needs a configuration with the app credentials ([apps.<name>]): pass --config FILE or set ITDR_CONFIG"
        );
    }
    let env = Env::open(config, db).await?;
    let discovery = discover(&env.stack.transport, tenant).await?;
    let record = env.find(&discovery.tenant_id).await?;
    let report = env.preflight(discovery, record.as_ref(), app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.blockers > 0 { 1 } else { 0 })
}

/// The report as a table: one row per check, its remedy underneath.
pub fn print_report(r: &Report) {
    println!(
        "tenant {}{}: {} ({} poller)",
        r.tenant_id,
        r.domain
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        r.cloud_label,
        r.poller
    );
    println!("{:<18} {:<6} detail", "check", "status");
    for c in &r.checks {
        println!(
            "{:<18} {:<6} {}",
            c.id.as_str(),
            c.status.as_str().to_uppercase(),
            c.detail
        );
        if let Some(remedy) = &c.remedy
            && c.status != Status::Pass
        {
            println!("{:<18} {:<6} fix: {remedy}", "", "");
        }
    }
    let warns = r.checks.iter().filter(|c| c.status == Status::Warn).count();
    if r.blockers == 0 {
        println!("ready to poll: no blockers, {warns} warning(s)");
    } else {
        println!(
            "{} blocker(s), {warns} warning(s): fix the FAIL rows, then run `itdr tenants reauthorize`",
            r.blockers
        );
    }
}
