//! The assessment's findings as OCSF 1.8.0 **2003 Compliance Finding** events (see
//! `ocsf/DESIGN.md`, "Identity Security Assessment"), so downstream analytics sees what the
//! report shows.
//!
//! - A finding of this report: activity 1 Create when it is new (or there is no earlier
//!   report), 2 Update when it was already open; `compliance.status_id` 3 Fail.
//! - A finding of the earlier report that is gone: activity 3 Close, `compliance.status_id` 1
//!   Pass, severity Informational.
//!
//! `finding_info.uid` is stable per (tenant, kind), so every report's event about the same
//! problem updates the same finding; `metadata.uid` is unique per (tenant, kind, report time).

use serde_json::{Value, json};

use super::{Finding, FindingKind, Report};
use crate::Cloud;
use crate::ocsf::enums::{self, Class};
use crate::ocsf::{OCSF_VERSION, event_uid, prune};

/// `metadata.log_name` of the findings.
pub const LOG_NAME: &str = "identity_security_assessment";
/// The standard the controls belong to (`compliance.standards`).
pub const STANDARD: &str = "ITDR Identity Security Assessment";

/// The OCSF events of a report: one per finding, plus one Close per fixed finding.
pub fn finding_events(report: &Report, cloud: Cloud) -> Vec<Value> {
    let previous_open = |k: FindingKind| {
        report
            .changes
            .as_ref()
            .is_some_and(|c| c.still_open.contains(&k))
    };
    let mut out: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let activity = if previous_open(f.kind) { 2 } else { 1 };
            event(report, cloud, f.kind, activity, Some(f))
        })
        .collect();
    if let Some(c) = &report.changes {
        for k in &c.fixed {
            out.push(event(report, cloud, *k, 3, None));
        }
    }
    out
}

/// The Azure environment name of a national cloud (`cloud.cloud_partition`), as the other
/// mappings write it.
fn cloud_partition(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global | Cloud::Gcc => "AzureCloud",
        Cloud::GccHigh | Cloud::Dod => "AzureUSGovernment",
        Cloud::China => "AzureChinaCloud",
    }
}

fn event(
    report: &Report,
    cloud: Cloud,
    kind: FindingKind,
    activity_id: u32,
    finding: Option<&Finding>,
) -> Value {
    let class = Class::ComplianceFinding;
    let tenant = report.tenant.id.as_str();
    let time_ms = report.generated_at.timestamp_millis();
    let activity = class.activity_caption(activity_id).unwrap_or("Unknown");
    let severity_id = finding.map_or(1, |f| f.severity.ocsf_id());
    let (status_id, status) = if finding.is_some() {
        (3, "Fail")
    } else {
        (1, "Pass")
    };
    let title = finding.map_or_else(
        || format!("Fixed: {}", kind.as_str().replace('_', " ")),
        |f| f.title.clone(),
    );
    let message = finding.map_or_else(|| title.clone(), |f| f.summary.clone());
    let resources: Vec<Value> = finding
        .map(|f| {
            f.evidence
                .iter()
                .map(|e| json!({"uid": e.id, "name": e.name, "type": kind.section().title(), "data": {"detail": e.detail}}))
                .collect()
        })
        .unwrap_or_default();
    let mut ev = json!({
        "class_uid": class.uid(),
        "class_name": class.caption(),
        "category_uid": class.category_uid(),
        "category_name": class.category_caption(),
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": u64::from(class.uid()) * 100 + u64::from(activity_id),
        "type_name": format!("{}: {activity}", class.caption()),
        "time": time_ms,
        "timezone_offset": 0,
        "severity_id": severity_id,
        "severity": enums::severity_caption(severity_id).unwrap_or("Unknown"),
        "message": message,
        "count": finding.map(|f| f.count),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event_uid(tenant, LOG_NAME, &format!("{}\n{time_ms}", kind.as_str())),
            "tenant_uid": tenant,
            "log_name": LOG_NAME,
            "log_provider": "ITDR",
            "product": {
                "name": "ITDR",
                "vendor_name": "ITDR",
                "feature": {"name": "Identity Security Assessment"},
            },
            "profiles": ["cloud"],
        },
        "cloud": {
            "provider": "Azure",
            "cloud_partition": cloud_partition(cloud),
            "account": {
                "uid": tenant,
                "type_id": enums::ACCOUNT_M365_TENANT.0,
                "type": enums::ACCOUNT_M365_TENANT.1,
            },
        },
        "finding_info": {
            "uid": event_uid(tenant, LOG_NAME, kind.as_str()),
            "title": title,
            "desc": finding.map(|f| f.summary.clone()),
            "types": [kind.section().title()],
            "analytic": {"name": kind.as_str(), "type_id": 1, "type": "Rule"},
            "modified_time": time_ms,
        },
        "compliance": {
            "control": kind.as_str(),
            "standards": [STANDARD],
            "status_id": status_id,
            "status": status,
            "desc": finding.map(|f| f.why.clone()),
        },
        "remediation": finding.map(|f| json!({"desc": f.fix})),
        "resources": resources,
    });
    prune(&mut ev);
    ev
}
