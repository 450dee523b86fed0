//! Typed configuration of the functions, read from the environment once at cold start and
//! validated there, so a misconfigured function fails its first invocation with a message
//! naming the variable instead of failing jobs one by one.
//!
//! Variables (the infrastructure contract):
//! - all: `ITDR_REGISTRY_TABLE`; optional `ITDR_ENDPOINT_OVERRIDE` (loopback only, tests).
//! - scheduler: `ITDR_JOBS_QUEUE_COMMERCIAL_URL`, `ITDR_JOBS_QUEUE_USGOV_URL` (both `.fifo`),
//!   `ITDR_SCHEDULE_SLOT_SECS` (default 300), `ITDR_QUIET_AFTER_SECS` (default 7200, 0 = off)
//!   and `ITDR_MAX_STALENESS_SECS` (default 1800): adaptive polling (`schedule.rs`).
//! - pollers: `ITDR_CLOUD_GROUP` (must match the binary), `ITDR_CURSOR_TABLE`,
//!   `ITDR_EVENTS_QUEUE_URL`, `ITDR_DEAD_LETTERS_QUEUE_URL`, `ITDR_SECRET_PREFIX`,
//!   `ITDR_SECRET_TTL_SECS` (default 300), `ITDR_APP_REQUESTS_PER_10S` (1..=122, this
//!   instance's share of the app-wide limit, see `RATE_BUDGET.md`), optional
//!   `ITDR_POLL_CONFIG` (JSON of [`PollConfig`], unknown keys rejected), and
//!   `ITDR_PUBLISHER_ID` (our own tenant GUID, sent as `PublisherIdentifier` on every
//!   Management Activity API request; without it the unified_audit stream's jobs fail with a
//!   `config` health record and no such request is sent).
//!
//! No variable holds a secret: credentials live in Secrets Manager. Error messages quote a
//! variable's value only where it is a name or a URL.

use std::time::Duration;

use crate::client::Rate;
use crate::cloud::CloudGroup;
use crate::http::EndpointOverride;
use crate::poll::{PollConfig, ValidPollConfig};

use super::sqs::{ENVELOPE_ATTRIBUTE_RESERVE, SQS_MAX_MESSAGE_BYTES};

// The actions functions' configuration (its own file, beside the others' variables).
mod actions;
pub use actions::ActionsConfig;

/// A configuration error, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set ({what})")]
    Missing {
        /// Variable name.
        var: &'static str,
        /// What it should hold.
        what: &'static str,
    },
    /// A variable has an unusable value.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// Why.
        reason: String,
    },
}

/// The cap on envelope bytes on SQS: the message limit less room for the attributes.
pub const AWS_MAX_ENVELOPE_BYTES: usize = SQS_MAX_MESSAGE_BYTES - ENVELOPE_ATTRIBUTE_RESERVE;

/// Default schedule slot.
pub const DEFAULT_SLOT_SECS: u64 = 300;
/// Default credential cache TTL.
pub const DEFAULT_SECRET_TTL_SECS: u64 = 300;

struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn opt(&self, var: &'static str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn req(&self, var: &'static str, what: &'static str) -> Result<String, ConfigError> {
        self.opt(var).ok_or(ConfigError::Missing { var, what })
    }

    /// `ITDR_CLOUD_GROUP`, which must be the group the binary serves (sovereignty: a binary
    /// never runs as the other group).
    fn served_group(&self, group: CloudGroup) -> Result<(), ConfigError> {
        let configured = self.req("ITDR_CLOUD_GROUP", "commercial or usgov")?;
        let configured: CloudGroup = configured.parse().map_err(|_| ConfigError::Invalid {
            var: "ITDR_CLOUD_GROUP",
            reason: format!("{configured:?} is not commercial or usgov"),
        })?;
        if configured != group {
            return Err(ConfigError::Invalid {
                var: "ITDR_CLOUD_GROUP",
                reason: format!(
                    "this binary serves the {group} cloud group and refuses to run as {configured} (sovereignty)"
                ),
            });
        }
        Ok(())
    }

    /// `ITDR_SECRET_PREFIX`, without a leading or trailing `/`.
    fn secret_prefix(&self) -> Result<String, ConfigError> {
        let prefix = self.req("ITDR_SECRET_PREFIX", "the Secrets Manager name prefix")?;
        if prefix.starts_with('/') || prefix.ends_with('/') {
            return Err(ConfigError::Invalid {
                var: "ITDR_SECRET_PREFIX",
                reason: "must not start or end with '/'".into(),
            });
        }
        Ok(prefix)
    }

    fn num<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &self,
        var: &'static str,
        default: Option<T>,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        let v = match (self.opt(var), default) {
            (Some(v), _) => v.parse::<T>().map_err(|_| ConfigError::Invalid {
                var,
                reason: format!("{v:?} is not a whole number"),
            })?,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(ConfigError::Missing {
                    var,
                    what: "a whole number",
                });
            }
        };
        if v < min || v > max {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("{v} is outside {min}..={max}"),
            });
        }
        Ok(v)
    }

    fn table(&self, var: &'static str) -> Result<String, ConfigError> {
        let t = self.req(var, "a DynamoDB table name")?;
        let ok = (3..=255).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("{t:?} is not a DynamoDB table name"),
            });
        }
        Ok(t)
    }

    /// A queue URL that a single-group stack leaves empty.
    fn opt_queue(&self, var: &'static str, fifo: bool) -> Result<Option<String>, ConfigError> {
        match (self.get)(var) {
            Some(v) if !v.trim().is_empty() => self.queue(var, fifo).map(Some),
            _ => Ok(None),
        }
    }

    fn queue(&self, var: &'static str, fifo: bool) -> Result<String, ConfigError> {
        let u = self.req(var, "an SQS queue URL")?;
        let parsed = url::Url::parse(&u).map_err(|_| ConfigError::Invalid {
            var,
            reason: format!("{u:?} is not a URL"),
        })?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("{u:?} is not an http(s) queue URL"),
            });
        }
        if fifo != u.ends_with(".fifo") {
            return Err(ConfigError::Invalid {
                var,
                reason: if fifo {
                    format!("{u:?} is not a FIFO queue (.fifo)")
                } else {
                    format!("{u:?} is a FIFO queue; a standard queue is expected")
                },
            });
        }
        Ok(u)
    }

    /// `ITDR_PUBLISHER_ID`: a GUID, or unset.
    fn publisher_id(&self) -> Result<Option<String>, ConfigError> {
        const VAR: &str = "ITDR_PUBLISHER_ID";
        match self.opt(VAR) {
            None => Ok(None),
            Some(p) if crate::onboard::is_guid(&p) => Ok(Some(p.to_ascii_lowercase())),
            Some(_) => Err(ConfigError::Invalid {
                var: VAR,
                reason: "must be our own tenant id, a GUID".into(),
            }),
        }
    }

    fn endpoint_override(&self) -> Result<Option<EndpointOverride>, ConfigError> {
        self.opt("ITDR_ENDPOINT_OVERRIDE")
            .map(|v| {
                EndpointOverride::parse(&v).map_err(|e| ConfigError::Invalid {
                    var: "ITDR_ENDPOINT_OVERRIDE",
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}

/// The scheduler's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Registry table.
    pub registry_table: String,
    /// Commercial jobs queue (FIFO); absent in a US Government-only stack.
    pub jobs_queue_commercial_url: Option<String>,
    /// US Government jobs queue (FIFO); absent in a commercial-only stack.
    pub jobs_queue_usgov_url: Option<String>,
    /// Schedule slot length (deduplication granularity), seconds.
    pub slot_secs: u64,
    /// Adaptive polling: quiet streams are polled less often (`schedule.rs`).
    pub cadence: crate::schedule::Cadence,
}

impl SchedulerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars { get };
        let commercial = v.opt_queue("ITDR_JOBS_QUEUE_COMMERCIAL_URL", true)?;
        let usgov = v.opt_queue("ITDR_JOBS_QUEUE_USGOV_URL", true)?;
        if commercial.is_none() && usgov.is_none() {
            return Err(ConfigError::Invalid {
                var: "ITDR_JOBS_QUEUE_COMMERCIAL_URL",
                reason: "neither ITDR_JOBS_QUEUE_COMMERCIAL_URL nor ITDR_JOBS_QUEUE_USGOV_URL is set: a stack runs at least one poller group".into(),
            });
        }
        Ok(Self {
            registry_table: v.table("ITDR_REGISTRY_TABLE")?,
            jobs_queue_commercial_url: commercial,
            jobs_queue_usgov_url: usgov,
            slot_secs: v.num("ITDR_SCHEDULE_SLOT_SECS", Some(DEFAULT_SLOT_SECS), 60, 3600)?,
            cadence: {
                let d = crate::schedule::Cadence::default();
                let max = crate::schedule::MAX_CADENCE_SECS;
                crate::schedule::Cadence {
                    quiet_after_secs: v.num(
                        "ITDR_QUIET_AFTER_SECS",
                        Some(d.quiet_after_secs),
                        0,
                        max,
                    )?,
                    max_staleness_secs: v.num(
                        "ITDR_MAX_STALENESS_SECS",
                        Some(d.max_staleness_secs),
                        60,
                        max,
                    )?,
                }
            },
        })
        .and_then(|c: Self| {
            c.cadence
                .validate(c.slot_secs)
                .map_err(|reason| ConfigError::Invalid {
                    var: "ITDR_MAX_STALENESS_SECS",
                    reason,
                })?;
            Ok(c)
        })
    }
}

/// A poller's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    /// The cloud group this poller serves.
    pub cloud_group: CloudGroup,
    /// Registry table.
    pub registry_table: String,
    /// Cursor table.
    pub cursor_table: String,
    /// Events queue (standard).
    pub events_queue_url: String,
    /// Dead-letters queue (standard).
    pub dead_letters_queue_url: String,
    /// Secret name prefix (`{prefix}/{group}/{app_ref}`).
    pub secret_prefix: String,
    /// Credential cache TTL, seconds.
    pub secret_ttl_secs: u64,
    /// This instance's share of the app-wide Graph reports limit, requests per 10 s.
    pub app_requests_per_10s: u32,
    /// Poll tunables, validated (envelope cap already fitted to SQS).
    pub poll: ValidPollConfig,
    /// Loopback endpoint override for Microsoft hosts (tests only).
    pub endpoint_override: Option<EndpointOverride>,
    /// Our own tenant GUID, the Management Activity API's `PublisherIdentifier`.
    pub publisher_id: Option<String>,
}

impl PollerConfig {
    /// Reads the process environment for the binary serving `group`.
    pub fn from_env(group: CloudGroup) -> Result<Self, ConfigError> {
        Self::from_lookup(group, &|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` for the binary serving `group`.
    pub fn from_lookup(
        group: CloudGroup,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let v = Vars { get };
        v.served_group(group)?;
        let secret_prefix = v.secret_prefix()?;
        let max = Rate::REPORTS_PER_APP.requests;
        Ok(Self {
            cloud_group: group,
            registry_table: v.table("ITDR_REGISTRY_TABLE")?,
            cursor_table: v.table("ITDR_CURSOR_TABLE")?,
            events_queue_url: v.queue("ITDR_EVENTS_QUEUE_URL", false)?,
            dead_letters_queue_url: v.queue("ITDR_DEAD_LETTERS_QUEUE_URL", false)?,
            secret_prefix,
            secret_ttl_secs: v.num(
                "ITDR_SECRET_TTL_SECS",
                Some(DEFAULT_SECRET_TTL_SECS),
                1,
                86_400,
            )?,
            app_requests_per_10s: v.num("ITDR_APP_REQUESTS_PER_10S", None, 1, max)?,
            poll: poll_config(v.opt("ITDR_POLL_CONFIG"))?,
            endpoint_override: v.endpoint_override()?,
            publisher_id: v.publisher_id()?,
        })
    }

    /// The credential cache TTL.
    pub fn secret_ttl(&self) -> Duration {
        Duration::from_secs(self.secret_ttl_secs)
    }

    /// The instance's app-wide pacing rate.
    pub fn app_rate(&self) -> Rate {
        Rate {
            requests: self.app_requests_per_10s,
            window: Duration::from_secs(10),
        }
    }
}

/// Parses `ITDR_POLL_CONFIG`; the envelope cap defaults to [`AWS_MAX_ENVELOPE_BYTES`] and may
/// not exceed it.
fn poll_config(raw: Option<String>) -> Result<ValidPollConfig, ConfigError> {
    const VAR: &str = "ITDR_POLL_CONFIG";
    let invalid = |reason: String| ConfigError::Invalid { var: VAR, reason };
    let mut value = match raw {
        Some(r) => serde_json::from_str::<serde_json::Value>(&r)
            .map_err(|e| invalid(format!("not JSON: {e}")))?,
        None => serde_json::json!({}),
    };
    let obj = value
        .as_object_mut()
        .ok_or_else(|| invalid("not a JSON object".into()))?;
    obj.entry("max_message_bytes")
        .or_insert_with(|| serde_json::json!(AWS_MAX_ENVELOPE_BYTES));
    let cfg: PollConfig = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let cfg = cfg.validated().map_err(|e| invalid(e.to_string()))?;
    if cfg.max_message_bytes > AWS_MAX_ENVELOPE_BYTES {
        return Err(invalid(format!(
            "max_message_bytes {} leaves no room for SQS message attributes (at most {AWS_MAX_ENVELOPE_BYTES})",
            cfg.max_message_bytes
        )));
    }
    Ok(cfg)
}

// --- The report function (the Identity Security Assessment on AWS) ---

/// Default days between two reports of a tenant.
pub const DEFAULT_REPORT_INTERVAL_DAYS: u32 = 7;
/// Default (and longest: SigV4's limit) lifetime of the emailed report link, seconds.
pub const MAX_REPORT_LINK_EXPIRY_SECS: u64 = 7 * 86_400;
/// Default share of the app-wide Graph limit a report function instance uses.
pub const DEFAULT_REPORT_APP_REQUESTS_PER_10S: u32 = 10;

/// The report function's configuration. Variables: `ITDR_CLOUD_GROUP` (must match the
/// binary), `ITDR_REGISTRY_TABLE`, `ITDR_CURSOR_TABLE`, `ITDR_EVENTS_QUEUE_URL`,
/// `ITDR_SECRET_PREFIX`, optional `ITDR_SECRET_TTL_SECS`, `ITDR_REPORTS_BUCKET` (this group's
/// bucket), optional `ITDR_REPORTS_KMS_KEY` (the stack key's ARN: every object is written with
/// SSE-KMS under it), `ITDR_REPORT_SENDER` (the verified SES identity), optional
/// `ITDR_REPORT_INTERVAL_DAYS` (1..=90, default 7), `ITDR_REPORT_LINK_EXPIRY_SECS`
/// (60..=604800, default 604800), `ITDR_APP_REQUESTS_PER_10S` (default 10) and
/// `ITDR_ENDPOINT_OVERRIDE` (tests).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// The cloud group this function serves.
    pub cloud_group: CloudGroup,
    /// Registry table.
    pub registry_table: String,
    /// Cursor table (inventory summaries, sign-in digests).
    pub cursor_table: String,
    /// Events queue (the findings).
    pub events_queue_url: String,
    /// Secret name prefix (`{prefix}/{group}/{app_ref}`).
    pub secret_prefix: String,
    /// Credential cache TTL, seconds.
    pub secret_ttl_secs: u64,
    /// This group's reports bucket.
    pub reports_bucket: String,
    /// The KMS key objects are encrypted with (the bucket's default when absent).
    pub kms_key: Option<String>,
    /// The SES sender address.
    pub sender: String,
    /// Days between two reports of a tenant.
    pub interval_days: u32,
    /// Lifetime of the emailed link, seconds.
    pub link_expiry_secs: u64,
    /// This instance's share of the app-wide Graph reports limit, requests per 10 s.
    pub app_requests_per_10s: u32,
    /// Loopback endpoint override for Microsoft hosts (tests only).
    pub endpoint_override: Option<EndpointOverride>,
}

impl ReportConfig {
    /// Reads the process environment for the binary serving `group`.
    pub fn from_env(group: CloudGroup) -> Result<Self, ConfigError> {
        Self::from_lookup(group, &|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` for the binary serving `group`.
    pub fn from_lookup(
        group: CloudGroup,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let v = Vars { get };
        v.served_group(group)?;
        let secret_prefix = v.secret_prefix()?;
        let bucket = v.req("ITDR_REPORTS_BUCKET", "the reports S3 bucket name")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(ConfigError::Invalid {
                var: "ITDR_REPORTS_BUCKET",
                reason: format!("{bucket:?} is not an S3 bucket name"),
            });
        }
        let sender = v.req("ITDR_REPORT_SENDER", "the SES sender address")?;
        let sender = crate::assess::contact::validate_contact_email(&sender).map_err(|_| {
            ConfigError::Invalid {
                var: "ITDR_REPORT_SENDER",
                reason: "is not an email address".into(),
            }
        })?;
        Ok(Self {
            cloud_group: group,
            registry_table: v.table("ITDR_REGISTRY_TABLE")?,
            cursor_table: v.table("ITDR_CURSOR_TABLE")?,
            events_queue_url: v.queue("ITDR_EVENTS_QUEUE_URL", false)?,
            secret_prefix,
            secret_ttl_secs: v.num(
                "ITDR_SECRET_TTL_SECS",
                Some(DEFAULT_SECRET_TTL_SECS),
                1,
                86_400,
            )?,
            reports_bucket: bucket,
            kms_key: v.opt("ITDR_REPORTS_KMS_KEY"),
            sender,
            interval_days: v.num(
                "ITDR_REPORT_INTERVAL_DAYS",
                Some(DEFAULT_REPORT_INTERVAL_DAYS),
                1,
                90,
            )?,
            link_expiry_secs: v.num(
                "ITDR_REPORT_LINK_EXPIRY_SECS",
                Some(MAX_REPORT_LINK_EXPIRY_SECS),
                60,
                MAX_REPORT_LINK_EXPIRY_SECS,
            )?,
            app_requests_per_10s: v.num(
                "ITDR_APP_REQUESTS_PER_10S",
                Some(DEFAULT_REPORT_APP_REQUESTS_PER_10S),
                1,
                Rate::REPORTS_PER_APP.requests,
            )?,
            endpoint_override: v.endpoint_override()?,
        })
    }

    /// The credential cache TTL.
    pub fn secret_ttl(&self) -> Duration {
        Duration::from_secs(self.secret_ttl_secs)
    }

    /// The instance's app-wide pacing rate.
    pub fn app_rate(&self) -> Rate {
        Rate {
            requests: self.app_requests_per_10s,
            window: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("ITDR_CLOUD_GROUP", "usgov"),
            ("ITDR_REGISTRY_TABLE", "itdr-registry"),
            ("ITDR_CURSOR_TABLE", "itdr-cursors"),
            (
                "ITDR_EVENTS_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/events",
            ),
            (
                "ITDR_DEAD_LETTERS_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dead",
            ),
            ("ITDR_SECRET_PREFIX", "itdr"),
            ("ITDR_APP_REQUESTS_PER_10S", "24"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn load(group: CloudGroup, m: &HashMap<String, String>) -> Result<PollerConfig, ConfigError> {
        PollerConfig::from_lookup(group, &|k| m.get(k).cloned())
    }

    #[test]
    fn poller_config_defaults_and_checks() {
        let c = load(CloudGroup::UsGov, &vars(&[]));
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.secret_ttl_secs, 300);
        assert_eq!(c.poll.max_message_bytes, AWS_MAX_ENVELOPE_BYTES);
        assert_eq!(c.app_rate().requests, 24);
        // The GCC High binary refuses to run as commercial.
        let e = load(
            CloudGroup::UsGov,
            &vars(&[("ITDR_CLOUD_GROUP", "commercial")]),
        );
        assert!(
            matches!(
                e,
                Err(ConfigError::Invalid {
                    var: "ITDR_CLOUD_GROUP",
                    ..
                })
            ),
            "{e:?}"
        );
        let mut m = vars(&[]);
        m.remove("ITDR_APP_REQUESTS_PER_10S");
        assert!(matches!(
            load(CloudGroup::UsGov, &m),
            Err(ConfigError::Missing {
                var: "ITDR_APP_REQUESTS_PER_10S",
                ..
            })
        ));
        for (k, v) in [
            ("ITDR_APP_REQUESTS_PER_10S", "123"),
            ("ITDR_EVENTS_QUEUE_URL", "https://sqs.x/1/events.fifo"),
            ("ITDR_POLL_CONFIG", r#"{"page_size": 5000}"#),
            ("ITDR_POLL_CONFIG", r#"{"max_message_bytes": 262144}"#),
            ("ITDR_POLL_CONFIG", r#"{"nope": 1}"#),
            ("ITDR_ENDPOINT_OVERRIDE", "http://10.0.0.1:80"),
            ("ITDR_REGISTRY_TABLE", "a b"),
            ("ITDR_SECRET_TTL_SECS", "0"),
            ("ITDR_PUBLISHER_ID", "vendor"),
        ] {
            let e = load(CloudGroup::UsGov, &vars(&[(k, v)]));
            assert!(
                matches!(&e, Err(ConfigError::Invalid { var, .. }) if *var == k),
                "{k}={v}: {e:?}"
            );
        }
        let c = load(
            CloudGroup::UsGov,
            &vars(&[("ITDR_POLL_CONFIG", r#"{"page_size": 50}"#)]),
        );
        assert_eq!(c.map(|c| c.poll.page_size), Ok(50));
        assert_eq!(
            load(CloudGroup::UsGov, &vars(&[])).map(|c| c.publisher_id),
            Ok(None)
        );
        let c = load(
            CloudGroup::UsGov,
            &vars(&[("ITDR_PUBLISHER_ID", "3F2A9C61-0B7E-4D25-9A18-C6E5D4F3B2A1")]),
        );
        assert_eq!(
            c.map(|c| c.publisher_id),
            Ok(Some("3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1".to_string()))
        );
    }

    #[test]
    fn scheduler_config() {
        let m: HashMap<&str, &str> = [
            ("ITDR_REGISTRY_TABLE", "reg"),
            (
                "ITDR_JOBS_QUEUE_COMMERCIAL_URL",
                "http://127.0.0.1:1/1/jobs-commercial.fifo",
            ),
            (
                "ITDR_JOBS_QUEUE_USGOV_URL",
                "http://127.0.0.1:1/1/jobs-usgov",
            ),
        ]
        .into_iter()
        .collect();
        let e = SchedulerConfig::from_lookup(&|k| m.get(k).map(|v| v.to_string()));
        assert!(matches!(
            e,
            Err(ConfigError::Invalid {
                var: "ITDR_JOBS_QUEUE_USGOV_URL",
                ..
            })
        ));
        // A commercial-only stack passes an empty US Government queue URL.
        let mut m = m;
        m.insert("ITDR_JOBS_QUEUE_USGOV_URL", "");
        let c = SchedulerConfig::from_lookup(&|k| m.get(k).map(|v| v.to_string()));
        assert_eq!(
            c.as_ref().ok().and_then(|c| c.jobs_queue_usgov_url.clone()),
            None
        );
        assert!(
            c.as_ref()
                .is_ok_and(|c| c.jobs_queue_commercial_url.is_some())
        );
        assert_eq!(
            c.map(|c| c.cadence).ok(),
            Some(crate::schedule::Cadence::default())
        );
        m.insert("ITDR_QUIET_AFTER_SECS", "0");
        m.insert("ITDR_MAX_STALENESS_SECS", "3600");
        let c =
            SchedulerConfig::from_lookup(&|k| m.get(k).map(|v| v.to_string())).map(|c| c.cadence);
        assert_eq!(
            c.ok(),
            Some(crate::schedule::Cadence {
                quiet_after_secs: 0,
                max_staleness_secs: 3600
            })
        );
        m.insert("ITDR_MAX_STALENESS_SECS", "90000");
        assert!(matches!(
            SchedulerConfig::from_lookup(&|k| m.get(k).map(|v| v.to_string())),
            Err(ConfigError::Invalid {
                var: "ITDR_MAX_STALENESS_SECS",
                ..
            })
        ));
        m.insert("ITDR_MAX_STALENESS_SECS", "1800");
        m.insert("ITDR_JOBS_QUEUE_COMMERCIAL_URL", " ");
        assert!(SchedulerConfig::from_lookup(&|k| m.get(k).map(|v| v.to_string())).is_err());
    }
}
