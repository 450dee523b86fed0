//! The `itdr run` configuration file (TOML). Unknown keys are rejected; units are in names.
//!
//! Errors never quote the file: a TOML error is reported by line, column and message (the
//! `toml` crate's own rendering prints the offending line, which may hold a secret), and
//! string values inside messages are elided. A `client_secret_env` that is not a variable name
//! (a secret pasted in its place) is refused without repeating it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use itdr_shared::auth::{AppCredential, CertificateCredential, SecretString};
use itdr_shared::poll::PollConfig;
use itdr_shared::{Cloud, CloudGroup};
use serde::{Deserialize, Deserializer};

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
    /// The Office 365 Management Activity API (the unified_audit stream).
    #[serde(default)]
    pub management_activity: ManagementActivityConfig,
    /// Response actions: write apps per cloud group, protected accounts per organization.
    #[serde(default)]
    pub respond: crate::respond::RespondConfig,
}

/// The Office 365 Management Activity API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementActivityConfig {
    /// Our own tenant id (a GUID), sent as `PublisherIdentifier` on every request: Microsoft
    /// counts the API's rate limits by it. Needed to poll the unified_audit stream.
    pub publisher_id: Option<String>,
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
    /// DynamoDB table of cursors of the commercial group's tenants (the stack output
    /// `CursorTableName`).
    pub cursors_table: Option<String>,
    /// DynamoDB table of cursors of the US Government group's tenants (the stack output
    /// `CursorTableUsgovName`); defaults to `cursors_table` (a single-table deployment).
    pub usgov_cursors_table: Option<String>,
    /// A loopback AWS emulator (tests); the default credential and region chains otherwise.
    pub aws_endpoint: Option<String>,
}

/// What this deployment serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// The poller groups that run (`commercial`, `usgov`; `us_gov` and `us-gov` are accepted
    /// too); tenants of other clouds are refused at onboarding.
    #[serde(deserialize_with = "cloud_groups")]
    pub groups: Vec<CloudGroup>,
}

/// Poller group names as [`CloudGroup`]'s `FromStr` reads them (`usgov`, as documented, and
/// the `us_gov` and `us-gov` spellings).
fn cloud_groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CloudGroup>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| {
            name.parse::<CloudGroup>().map_err(|_| {
                serde::de::Error::custom("unknown poller group: expected `commercial` or `usgov`")
            })
        })
        .collect()
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
    /// Where `itdr run` writes each tenant's Identity Security Assessment at the end of the
    /// run (and the default of `itdr assess --out`); unset: no reports at the end of a run.
    #[serde(default)]
    pub reports: Option<PathBuf>,
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
    /// Adaptive polling: a stream without a delivered event for this long is quiet, and
    /// polled only every few cycles (0: every stream every cycle).
    pub quiet_after_secs: u64,
    /// The longest a quiet stream waits between two polls.
    pub max_staleness_secs: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        let cadence = itdr_shared::schedule::Cadence::default();
        Self {
            interval_secs: 300,
            stop_after_secs: None,
            max_concurrent_tenants: 16,
            app_requests_per_10s: 100,
            quiet_after_secs: cadence.quiet_after_secs,
            max_staleness_secs: cadence.max_staleness_secs,
        }
    }
}

impl ScheduleConfig {
    /// The adaptive polling settings.
    pub fn cadence(&self) -> itdr_shared::schedule::Cadence {
        itdr_shared::schedule::Cadence {
            quiet_after_secs: self.quiet_after_secs,
            max_staleness_secs: self.max_staleness_secs,
        }
    }
}

/// An app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Name of the environment variable holding the client secret (`^[A-Za-z_][A-Za-z0-9_]{0,127}$`,
    /// e.g. `ITDR_COMMERCIAL_SECRET`), never the secret itself.
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
    /// The cloud group the app registration lives in (`commercial`, `usgov`); defaults to the
    /// app's name when that names a group. Its credential is only ever sent to that group's
    /// login hosts, and only tenants of that group may use it.
    #[serde(default)]
    pub group: Option<CloudGroup>,
}

/// The accelerated demo against the in-process simulator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
// Read by the simulator (`demo.rs`), which a build without the `sim` feature lacks.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
pub struct SimulatorConfig {
    /// Seed of the generated data.
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated start time.
    pub start: DateTime<Utc>,
    /// The simulated tenants.
    pub tenants: Vec<SimTenantConfig>,
    /// The streams every simulated tenant is onboarded with (default: every stream).
    #[serde(default = "every_stream")]
    pub streams: Vec<itdr_shared::stream::Stream>,
}

fn every_stream() -> Vec<itdr_shared::stream::Stream> {
    itdr_shared::stream::Stream::EVERY.to_vec()
}

/// One simulated tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
// Read by the simulator (`demo.rs`), which a build without the `sim` feature lacks.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
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
    /// The app's cloud group: `group`, or its name when that names a group.
    pub fn cloud_group(&self, name: &str) -> anyhow::Result<CloudGroup> {
        match (self.group, name.parse::<CloudGroup>()) {
            (Some(g), _) => Ok(g),
            (None, Ok(g)) => Ok(g),
            (None, Err(_)) => bail!(
                "[apps.{name}] group: set it to commercial or usgov (the cloud group of the app registration)"
            ),
        }
    }

    /// Loads the credential: the secret from its environment variable or file, or the
    /// certificate and key. Errors name the setting, never the secret.
    pub fn credential(&self, name: &str) -> anyhow::Result<AppCredential> {
        let credential = self.load_credential(name)?;
        Ok(credential.for_group(self.cloud_group(name)?))
    }

    fn load_credential(&self, name: &str) -> anyhow::Result<AppCredential> {
        if let Some(var) = &self.client_secret_env {
            check_env_var_name(name, var)?;
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

/// Whether `s` can name an environment variable: `^[A-Za-z_][A-Za-z0-9_]{0,127}$`.
pub fn is_env_var_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Refuses a `client_secret_env` that is not a variable name, without repeating it: it may be
/// the secret itself, pasted into the wrong key.
fn check_env_var_name(app: &str, var: &str) -> anyhow::Result<()> {
    if !is_env_var_name(var) {
        bail!(
            "[apps.{app}] client_secret_env is not an environment variable name (letters, digits and _, not starting with a digit, at most 128 characters): set it to the name of the variable that holds the secret, not to the secret"
        );
    }
    Ok(())
}

/// A TOML error as `line L, column C: message`, without the source line that the error's
/// `Display` quotes, and with string values in the message elided.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = elide_values(e.message().trim());
    match e.span().and_then(|s| text.get(..s.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Replaces the contents of double-quoted strings (how serde quotes a value it rejects, e.g.
/// `invalid type: string "…", expected u64`) and the value named by `unknown variant `…``
/// with `…`. Field names and expected tokens in backquotes stay readable.
fn elide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.char_indices();
    while let Some((i, c)) = chars.next() {
        let variant = c == '`' && message[..i].ends_with("unknown variant ");
        if c == '`' && !variant {
            // A name or an expected token, e.g. unknown field `x`, expected `"`: kept as is.
            out.push(c);
            for (_, d) in chars.by_ref() {
                out.push(d);
                if d == '`' {
                    break;
                }
            }
        } else if c == '"' || variant {
            out.push(c);
            out.push('…');
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c == '"' {
                    escaped = true;
                } else if d == c {
                    out.push(c);
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl RunConfig {
    /// Reads and validates a config file. Errors name the file and a position, never its
    /// content.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let cfg: RunConfig = toml::from_str(&text).map_err(|e| {
            anyhow!(
                "invalid config file {}: {}",
                path.display(),
                describe_toml_error(&text, &e)
            )
        })?;
        cfg.validate()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Err(e) = self.poll.validate() {
            bail!("[poll] {e}");
        }
        if self.schedule.interval_secs == 0 || self.schedule.interval_secs > 86_400 {
            bail!("[schedule] interval_secs must be between 1 and 86400");
        }
        if self.schedule.max_concurrent_tenants == 0 {
            bail!("[schedule] max_concurrent_tenants must be at least 1");
        }
        self.schedule
            .cadence()
            .validate(self.schedule.interval_secs)
            .map_err(|e| anyhow!("[schedule] {e}"))?;
        if self.schedule.app_requests_per_10s == 0 || self.schedule.app_requests_per_10s > 122 {
            bail!(
                "[schedule] app_requests_per_10s must be between 1 and 122 (Microsoft's per-app limit)"
            );
        }
        for (name, app) in &self.apps {
            if let Some(var) = &app.client_secret_env {
                check_env_var_name(name, var)?;
            }
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
            app.cloud_group(name)?;
        }
        if self.poll.sweep_budget_secs > self.schedule.interval_secs {
            bail!(
                "[poll] sweep_budget_secs ({}) must not exceed [schedule] interval_secs ({}): a poll's background work must end before the next poll starts",
                self.poll.sweep_budget_secs,
                self.schedule.interval_secs
            );
        }
        if self.registry.kind == RegistryKind::Dynamodb
            && (self.registry.tenants_table.is_none() || self.registry.cursors_table.is_none())
        {
            bail!("[registry] kind = \"dynamodb\" needs tenants_table and cursors_table");
        }
        if let Some(p) = &self.management_activity.publisher_id
            && !itdr_shared::onboard::is_guid(p.trim())
        {
            bail!(
                "[management_activity] publisher_id must be your own tenant id, a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47"
            );
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
            if sim.streams.is_empty() {
                bail!("[simulator] streams must name at least one stream, e.g. [\"signins\"]");
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
    use itdr_shared::stream::Stream;

    #[test]
    fn the_demo_config_is_valid() {
        let text = include_str!("../../config/demo.toml");
        let cfg: RunConfig = toml::from_str(text).expect("parses");
        cfg.validate().expect("valid");
        assert!(cfg.simulator.as_ref().is_some_and(|s| s.tenants.len() >= 5));
        assert!(cfg.management_activity.publisher_id.is_some());
    }

    #[test]
    fn simulated_tenants_get_every_stream_unless_the_config_names_them() {
        let sim = "[schedule]\nstop_after_secs=60\n[simulator]\nseed=1\nspeed=10\nstart='2026-06-01T00:00:00Z'\n";
        let tenant = "[[simulator.tenants]]\norg='a'\ncloud='global'\n";
        let cfg: RunConfig = toml::from_str(&format!("{BASE}{sim}{tenant}")).expect("parses");
        cfg.validate().expect("valid");
        let streams = cfg.simulator.map(|s| s.streams).unwrap_or_default();
        assert_eq!(streams, Stream::EVERY.to_vec());
        let cfg: RunConfig = toml::from_str(&format!(
            "{BASE}{sim}streams=['signins','directory_audits']\n{tenant}"
        ))
        .expect("parses");
        cfg.validate().expect("valid");
        let streams = cfg.simulator.map(|s| s.streams).unwrap_or_default();
        assert_eq!(streams, vec![Stream::Signins, Stream::DirectoryAudits]);
        let cfg: RunConfig =
            toml::from_str(&format!("{BASE}{sim}streams=[]\n{tenant}")).expect("parses");
        let e = format!("{:#}", cfg.validate().expect_err("refused"));
        assert!(e.contains("streams"), "{e}");
        assert!(
            toml::from_str::<RunConfig>(&format!("{BASE}{sim}streams=['sign_ins']\n{tenant}"))
                .is_err()
        );
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
        let cfg: RunConfig = toml::from_str(&format!(
            "{base}[management_activity]\npublisher_id='not-a-guid'\n"
        ))
        .expect("parses");
        let e = format!("{:#}", cfg.validate().expect_err("refused"));
        assert!(
            e.contains("publisher_id") && !e.contains("not-a-guid"),
            "{e}"
        );
    }

    const BASE: &str = "[store]\npath='x.db'\n[output]\nevents='e'\ndead_letters='d'\n";
    const SECRET: &str = "Qx7~s3cr3t.VALUE-do-not-print";

    #[test]
    fn toml_errors_give_a_position_and_never_the_line() {
        let cases = [
            // A secret under a key that does not exist.
            (
                format!("{BASE}[apps.a]\nclient_id='x'\nclient_secret = \"{SECRET}\"\n"),
                8,
                1,
                "unknown field `client_secret`",
            ),
            // A syntax error on the secret's line.
            (
                format!("{BASE}[apps.a]\nclient_id='x'\nclient_secret_env = \"{SECRET}\n"),
                8,
                51,
                "invalid basic string, expected `\"`",
            ),
            // A secret where a number is expected: serde quotes the value it rejects.
            (
                format!("{BASE}[schedule]\ninterval_secs = \"{SECRET}\"\n"),
                7,
                17,
                "invalid type: string",
            ),
            // A secret where an enum is expected.
            (
                format!("{BASE}[registry]\nkind = \"{SECRET}\"\n"),
                7,
                8,
                "unknown variant",
            ),
        ];
        for (text, line, column, what) in cases {
            let e = toml::from_str::<RunConfig>(&text).expect_err("invalid");
            assert!(
                e.to_string().contains(SECRET),
                "the crate's rendering quotes the line"
            );
            let d = describe_toml_error(&text, &e);
            assert!(!d.contains("s3cr3t") && !d.contains("VALUE"), "{d}");
            assert!(
                d.starts_with(&format!("line {line}, column {column}: ")),
                "{d}"
            );
            assert!(d.contains(what), "{d}");
        }
    }

    #[test]
    fn values_in_messages_are_elided() {
        assert_eq!(
            elide_values("invalid type: string \"a\\\"b\", expected u64"),
            "invalid type: string \"…\", expected u64"
        );
        assert_eq!(
            elide_values("unknown variant `x`, expected `embedded` or `dynamodb`"),
            "unknown variant `…`, expected `embedded` or `dynamodb`"
        );
        assert_eq!(
            elide_values("unknown field `client_secret`, expected `client_id`"),
            "unknown field `client_secret`, expected `client_id`"
        );
        assert_eq!(elide_values("unterminated \"abc"), "unterminated \"…");
        assert_eq!(
            elide_values("invalid basic string, expected `\"`"),
            "invalid basic string, expected `\"`"
        );
    }

    #[test]
    fn secret_variables_must_be_variable_names() {
        for ok in ["ITDR_SECRET", "_x", "a", &"A".repeat(128)] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1ABC",
            "A-B",
            "A B",
            "Ä",
            SECRET,
            &"A".repeat(129),
            "A=B",
        ] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
        let cfg: RunConfig = toml::from_str(&format!(
            "{BASE}[apps.a]\nclient_id='x'\nclient_secret_env='{SECRET}'\n"
        ))
        .expect("parses");
        let e = format!("{:#}", cfg.validate().expect_err("refused"));
        assert!(
            e.contains("client_secret_env") && !e.contains("s3cr3t"),
            "{e}"
        );
        let app = &cfg.apps["a"];
        let e = format!("{:#}", app.credential("a").expect_err("refused"));
        assert!(
            e.contains("client_secret_env") && !e.contains("s3cr3t"),
            "{e}"
        );
    }

    #[test]
    fn poller_groups_are_read_as_the_readme_writes_them() {
        let readme = include_str!("../../README.md");
        let example = readme
            .split("```toml\n")
            .filter_map(|b| b.split("```").next())
            .find(|b| b.contains("groups = "))
            .expect("the README's configuration example");
        let cfg: RunConfig = toml::from_str(&format!("{BASE}{example}")).expect("parses");
        cfg.validate().expect("valid");
        assert_eq!(
            cfg.deployment.groups,
            vec![CloudGroup::Commercial, CloudGroup::UsGov]
        );
        for spelling in ["usgov", "us_gov", "us-gov", "UsGov"] {
            let cfg: RunConfig =
                toml::from_str(&format!("{BASE}[deployment]\ngroups = [\"{spelling}\"]\n"))
                    .expect(spelling);
            assert_eq!(cfg.deployment.groups, vec![CloudGroup::UsGov]);
        }
        let e =
            toml::from_str::<RunConfig>(&format!("{BASE}[deployment]\ngroups = [\"gcc_high\"]\n"))
                .expect_err("not a group");
        assert!(e.message().contains("unknown poller group"), "{e}");
        let cfg: RunConfig = toml::from_str(BASE).expect("parses");
        assert_eq!(
            cfg.deployment.groups,
            vec![CloudGroup::Commercial, CloudGroup::UsGov],
            "the default"
        );
    }
}
