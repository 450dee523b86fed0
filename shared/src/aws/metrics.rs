//! Custom CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout, which
//! Lambda's log delivery turns into a metric. No SDK call, no extra latency, no permission.
//!
//! `ITDR/TenantsUnhealthy` (dimension `CloudGroup`): after each polled job, 1 when the tenant's
//! health is anything but `healthy` or `pending`, else 0. The stack's alarms fire when its
//! maximum stays above 0 for 15 minutes.

use chrono::{DateTime, Utc};

use crate::cloud::CloudGroup;
use crate::store::{Health, HealthState};

/// The metric namespace (the pollers' IAM condition names the same).
pub const NAMESPACE: &str = "ITDR";

/// Whether a tenant's health counts as unhealthy for the metric.
pub fn is_unhealthy(h: &Health) -> bool {
    !matches!(h.state, HealthState::Healthy | HealthState::Pending)
}

/// The EMF line for one job's `TenantsUnhealthy` sample.
pub fn tenants_unhealthy_line(group: CloudGroup, unhealthy: bool, at: DateTime<Utc>) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["CloudGroup"]],
                "Metrics": [{"Name": "TenantsUnhealthy", "Unit": "Count"}],
            }],
        },
        "CloudGroup": group.as_str(),
        "TenantsUnhealthy": u8::from(unhealthy),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_an_emf_document_for_the_stack_alarm() {
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        let line = tenants_unhealthy_line(CloudGroup::UsGov, true, at);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["_aws"]["Timestamp"], 1_790_000_000_000i64);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "ITDR");
        assert_eq!(m["Dimensions"][0][0], "CloudGroup");
        assert_eq!(m["Metrics"][0]["Name"], "TenantsUnhealthy");
        assert_eq!(v["CloudGroup"], "usgov");
        assert_eq!(v["TenantsUnhealthy"], 1);
        let ok = tenants_unhealthy_line(CloudGroup::Commercial, false, at);
        assert!(ok.contains("\"TenantsUnhealthy\":0") && ok.contains("\"commercial\""));
    }

    #[test]
    fn only_healthy_and_pending_count_as_healthy() {
        let mut h = Health::default();
        assert!(!is_unhealthy(&h));
        h.state = HealthState::Healthy;
        assert!(!is_unhealthy(&h));
        for s in [
            HealthState::Degraded,
            HealthState::NoData,
            HealthState::ConsentRevoked,
            HealthState::LicenceMissing,
            HealthState::CredentialsExpired,
            HealthState::PermissionMissing,
        ] {
            h.state = s;
            assert!(is_unhealthy(&h), "{s:?}");
        }
    }
}
