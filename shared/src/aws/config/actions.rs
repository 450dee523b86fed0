//! The actions functions' configuration (`functions/actions`, `functions/actions-gcch`).
//!
//! Variables: `ITDR_CLOUD_GROUP` (must match the binary), `ITDR_REGISTRY_TABLE`,
//! `ITDR_CURSOR_TABLE` (the action log and the request ids live there, beside the cursors),
//! `ITDR_EVENTS_QUEUE_URL` (standard; the actions' OCSF events), `ITDR_SECRET_PREFIX`,
//! `ITDR_SECRET_TTL_SECS` (default 300), optional `ITDR_WRITE_APP` (the app reference of this
//! group's write app, `{prefix}/{group}/{ITDR_WRITE_APP}`; unset: each tenant's own app),
//! optional `ITDR_PROTECTED_ACCOUNTS` (JSON object: organization -> list of UPNs or object
//! ids never disabled nor stripped of their methods), optional `ITDR_ACTION_TIMEOUT_SECS`
//! (default 120, the time one action may take) and `ITDR_ENDPOINT_OVERRIDE` (tests).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, DEFAULT_SECRET_TTL_SECS, Vars};
use crate::cloud::CloudGroup;
use crate::http::EndpointOverride;
use crate::respond::ProtectedAccounts;

/// Default time one action may take, all its calls included.
pub const DEFAULT_ACTION_TIMEOUT_SECS: u64 = 120;

/// An actions function's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsConfig {
    /// The cloud group this function serves.
    pub cloud_group: CloudGroup,
    /// Registry table.
    pub registry_table: String,
    /// Cursor table (the action log's items and the request ids).
    pub cursor_table: String,
    /// Events queue (standard).
    pub events_queue_url: String,
    /// Secret name prefix (`{prefix}/{group}/{app_ref}`).
    pub secret_prefix: String,
    /// Credential cache TTL, seconds.
    pub secret_ttl_secs: u64,
    /// The group's write app reference; `None`: the tenant's own app.
    pub write_app: Option<String>,
    /// Protected accounts per organization.
    pub protected: ProtectedAccounts,
    /// The time one action may take, seconds.
    pub action_timeout_secs: u64,
    /// Loopback endpoint override for Microsoft hosts (tests only).
    pub endpoint_override: Option<EndpointOverride>,
}

impl ActionsConfig {
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
        let write_app = v.opt("ITDR_WRITE_APP");
        if let Some(a) = &write_app {
            let ok = a.len() <= 128
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=.@-".contains(c));
            if !ok {
                return Err(ConfigError::Invalid {
                    var: "ITDR_WRITE_APP",
                    reason: "not an app reference (letters, digits and _+=.@- only)".into(),
                });
            }
        }
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
            write_app,
            protected: protected_accounts(v.opt("ITDR_PROTECTED_ACCOUNTS"))?,
            action_timeout_secs: v.num(
                "ITDR_ACTION_TIMEOUT_SECS",
                Some(DEFAULT_ACTION_TIMEOUT_SECS),
                10,
                840,
            )?,
            endpoint_override: v.endpoint_override()?,
        })
    }

    /// The credential cache TTL.
    pub fn secret_ttl(&self) -> Duration {
        Duration::from_secs(self.secret_ttl_secs)
    }

    /// The time one action may take.
    pub fn action_timeout(&self) -> Duration {
        Duration::from_secs(self.action_timeout_secs)
    }
}

/// Parses `ITDR_PROTECTED_ACCOUNTS`. The message names the variable, never an account.
fn protected_accounts(raw: Option<String>) -> Result<ProtectedAccounts, ConfigError> {
    const VAR: &str = "ITDR_PROTECTED_ACCOUNTS";
    let mut out = ProtectedAccounts::new();
    let Some(raw) = raw else {
        return Ok(out);
    };
    let map: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&raw).map_err(|_| ConfigError::Invalid {
            var: VAR,
            reason: "not a JSON object of organization -> list of accounts".into(),
        })?;
    for (org, accounts) in map {
        out.protect(&org, accounts);
    }
    Ok(out)
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
                "https://sqs.us-gov-west-1.amazonaws.com/1/events",
            ),
            ("ITDR_SECRET_PREFIX", "itdr"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn load(group: CloudGroup, m: &HashMap<String, String>) -> Result<ActionsConfig, ConfigError> {
        ActionsConfig::from_lookup(group, &|k| m.get(k).cloned())
    }

    #[test]
    fn actions_config_defaults_write_app_and_protected_accounts() {
        let c = load(CloudGroup::UsGov, &vars(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.write_app, None);
        assert_eq!(c.action_timeout(), Duration::from_secs(120));
        assert!(!c.protected.is_protected("Capitol", ["bg@contoso.us"]));

        let c = load(
            CloudGroup::UsGov,
            &vars(&[
                ("ITDR_WRITE_APP", "usgov-write"),
                (
                    "ITDR_PROTECTED_ACCOUNTS",
                    r#"{"Capitol Contracting": ["BG@contoso.us"]}"#,
                ),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.write_app.as_deref(), Some("usgov-write"));
        assert!(
            c.protected
                .is_protected("capitol contracting", ["bg@contoso.us"])
        );
    }

    #[test]
    fn actions_config_refuses_the_other_group_and_bad_values() {
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
        for (k, v) in [
            ("ITDR_WRITE_APP", "a/b"),
            ("ITDR_PROTECTED_ACCOUNTS", r#"["bg@contoso.us"]"#),
            ("ITDR_EVENTS_QUEUE_URL", "https://sqs.x/1/events.fifo"),
            ("ITDR_ACTION_TIMEOUT_SECS", "5"),
            ("ITDR_SECRET_PREFIX", "/itdr"),
        ] {
            let e = load(CloudGroup::UsGov, &vars(&[(k, v)]));
            assert!(
                matches!(&e, Err(ConfigError::Invalid { var, .. }) if *var == k),
                "{k}={v}: {e:?}"
            );
        }
        let mut m = vars(&[]);
        m.remove("ITDR_CURSOR_TABLE");
        assert!(matches!(
            load(CloudGroup::UsGov, &m),
            Err(ConfigError::Missing {
                var: "ITDR_CURSOR_TABLE",
                ..
            })
        ));
    }
}
