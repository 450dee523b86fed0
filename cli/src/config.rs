//! The `itdr run` configuration file (TOML). Unknown keys are rejected; units are in names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use itdr_shared::auth::{AppCredential, CertificateCredential, SecretString};
use itdr_shared::poll::PollConfig;
use itdr_shared::{Cloud, CloudGroup};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Embedded registry and cursor database.
    pub store: StoreConfig,
    /// Where events and dead letters go.
    pub output: OutputConfig,
    /// The in-process schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Poller tunables.
    #[serde(default)]
    pub poll: PollConfig,
    /// App registrations by name (a tenant's `app_ref`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// Loopback-only endpoint override (tests and local simulators).
    #[serde(default)]
    pub endpoint_override: Option<String>,
    /// Run against an in-process simulator in accelerated time (the `make run` demo).
    #[serde(default)]
    pub simulator: Option<SimulatorConfig>,
    /// What this deployment serves.
    #[serde(default)]
    pub deployment: DeploymentConfig,
    /// Where `itdr tenants` and `itdr preflight` keep the registry.
    #[serde(default)]
    pub registry: RegistryConfig,
}

/// Which tenant registry the operator commands use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryKind {
    /// The embedded SQLite store (`[store] path`).
    #[default]
    Embedded,
    /// The AWS deployment's DynamoDB tables (needs a build with the `aws` feature).
    Dynamodb,
}

/// The registry of an AWS deployment, for the operator commands.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// `embedded` (default) or `dynamodb`.
    pub kind: RegistryKind,
    /// DynamoDB table of tenants (the stack's `TenantsTable`).
    pub tenants_table: Option<String>,
    /// DynamoDB table of cursors (the stack's `CursorsTable`).
    pub cursors_table: Option<String>,
    /// A loopback AWS emulator (tests); the default credential and region chains otherwise.
    pub aws_endpoint: Option<String>,
}

/// What this deployment serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// The poller groups that run (`commercial`, `usgov`); tenants of other clouds are refused
    /// at onboarding.
    pub groups: Vec<CloudGroup>,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            groups: vec![CloudGroup::Commercial, CloudGroup::UsGov],
        }
    }
}

/// Embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file.
    pub path: PathBuf,
    /// Start from an empty database (demo runs).
    #[serde(default)]
    pub fresh: bool,
}

/// Outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// OCSF events, one per line.
    pub events: PathBuf,
    /// Records that could not be normalized.
    pub dead_letters: PathBuf,
    /// Start from empty files (demo runs).
    #[serde(default)]
    pub truncate: bool,
}

/// Schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Time between poll cycles.
    pub interval_secs: u64,
    /// Stop after this much (clock) time; runs until interrupted when absent.
    pub stop_after_secs: Option<u64>,
    /// Most tenants polled at once.
    pub max_concurrent_tenants: usize,
    /// Share of Microsoft's 122 requests / 10 s per-app limit this process may use.
    pub app_requests_per_10s: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            stop_after_secs: None,
            max_concurrent_tenants: 16,
            app_requests_per_10s: 100,
        }
    }
}

/// An app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (its first line), e.g. a mounted secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// PEM certificate file (certificate credential).
    #[serde(default)]
    pub certificate_pem: Option<PathBuf>,
    /// PEM private key file (certificate credential).
    #[serde(default)]
    pub private_key_pem: Option<PathBuf>,
}

/// The accelerated demo against the in-process simulator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Seed of the generated data.
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated start time.
    pub start: DateTime<Utc>,
    /// The simulated tenants.
    pub tenants: Vec<SimTenantConfig>,
}

/// One simulated tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTenantConfig {
    /// Organization it maps to.
    pub org: String,
    /// National cloud.
    pub cloud: Cloud,
    /// Average sign-ins per simulated hour.
    #[serde(default = "default_signins")]
    pub signins_per_hour: f64,
    /// Average directory audit events per simulated hour.
    #[serde(default = "default_audits")]
    pub audits_per_hour: f64,
    /// Entra ID P1 licence.
    #[serde(default = "yes")]
    pub p1: bool,
    /// Entra ID P2 licence.
    #[serde(default)]
    pub p2: bool,
    /// Revoke admin consent this many simulated seconds into the run.
    #[serde(default)]
    pub revoke_consent_after_secs: Option<u64>,
}

fn default_signins() -> f64 {
    120.0
}
fn default_audits() -> f64 {
    10.0
}
fn yes() -> bool {
    true
}

impl AppConfig {
    /// Loads the credential: the secret from its environment variable or file, or the
    /// certificate and key. Errors name the setting, never the secret.
    pub fn credential(&self, name: &str) -> anyhow::Result<AppCredential> {
        if let Some(var) = &self.client_secret_env {
            let secret = std::env::var(var)
                .map_err(|_| anyhow!("[apps.{name}] environment variable {var} is not set"))?;
            return Ok(AppCredential::with_secret(
                self.client_id.clone(),
                SecretString::new(secret.trim().to_string()),
            ));
        }
        if let Some(file) = &self.client_secret_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("[apps.{name}] cannot read {}", file.display()))?;
            let secret = text.lines().next().unwrap_or("").trim().to_string();
            if secret.is_empty() {
                bail!("[apps.{name}] {} is empty", file.display());
            }
            return Ok(AppCredential::with_secret(
                self.client_id.clone(),
                SecretString::new(secret),
            ));
        }
        let (Some(cert), Some(key)) = (&self.certificate_pem, &self.private_key_pem) else {
            bail!("[apps.{name}] has no credential");
        };
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("[apps.{name}] cannot read {}", cert.display()))?;
        let key_pem = std::fs::read(key)
            .with_context(|| format!("[apps.{name}] cannot read {}", key.display()))?;
        let c = CertificateCredential::from_pem(&cert_pem, &key_pem)
            .map_err(|e| anyhow!("[apps.{name}] {e}"))?;
        Ok(AppCredential::with_certificate(self.client_id.clone(), c))
    }
}

impl RunConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let cfg: RunConfig = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Err(e) = self.poll.validate() {
            bail!("[poll] {e}");
        }
        if self.schedule.interval_secs == 0 {
            bail!("[schedule] interval_secs must be at least 1");
        }
        if self.schedule.max_concurrent_tenants == 0 {
            bail!("[schedule] max_concurrent_tenants must be at least 1");
        }
        if self.schedule.app_requests_per_10s == 0 || self.schedule.app_requests_per_10s > 122 {
            bail!(
                "[schedule] app_requests_per_10s must be between 1 and 122 (Microsoft's per-app limit)"
            );
        }
        for (name, app) in &self.apps {
            let secrets = usize::from(app.client_secret_env.is_some())
                + usize::from(app.client_secret_file.is_some());
            let cert = app.certificate_pem.is_some() || app.private_key_pem.is_some();
            if secrets + usize::from(cert) != 1 {
                bail!(
                    "[apps.{name}] set exactly one of client_secret_env, client_secret_file, or certificate_pem + private_key_pem"
                );
            }
            if cert && (app.certificate_pem.is_none() || app.private_key_pem.is_none()) {
                bail!(
                    "[apps.{name}] a certificate credential needs both certificate_pem and private_key_pem"
                );
            }
        }
        if self.registry.kind == RegistryKind::Dynamodb
            && (self.registry.tenants_table.is_none() || self.registry.cursors_table.is_none())
        {
            bail!("[registry] kind = \"dynamodb\" needs tenants_table and cursors_table");
        }
        if self.deployment.groups.is_empty() {
            bail!("[deployment] groups must name at least one of commercial, usgov");
        }
        if let Some(sim) = &self.simulator {
            if !(sim.speed.is_finite() && sim.speed >= 1.0) {
                bail!("[simulator] speed must be at least 1");
            }
            if sim.tenants.is_empty() {
                bail!("[simulator] needs at least one tenant");
            }
            if self.schedule.stop_after_secs.is_none() {
                bail!("[schedule] stop_after_secs is required with a simulator");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        let text = include_str!("../../config/demo.toml");
        let cfg: RunConfig = toml::from_str(text).expect("parses");
        cfg.validate().expect("valid");
        assert!(cfg.simulator.as_ref().is_some_and(|s| s.tenants.len() >= 5));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let base = "[store]\npath='x.db'\n[output]\nevents='e'\ndead_letters='d'\n";
        assert!(
            toml::from_str::<RunConfig>(&format!("{base}[schedule]\nintervl_secs=3\n")).is_err()
        );
        let cfg: RunConfig =
            toml::from_str(&format!("{base}[schedule]\ninterval_secs=0\n")).expect("parses");
        assert!(cfg.validate().is_err());
        let cfg: RunConfig = toml::from_str(&format!(
            "{base}[apps.a]\nclient_id='x'\nclient_secret_env='S'\ncertificate_pem='c'\n"
        ))
        .expect("parses");
        assert!(cfg.validate().is_err());
    }
}
