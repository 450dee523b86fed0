//! OCSF 1.8.0 events for our own response actions (`crate::respond`), so downstream analytics
//! sees the responses beside the attacker's activity. One event per step that touched the
//! tenant (or found it already in the wanted state), and one for a refused action:
//!
//! | step | class / activity |
//! |---|---|
//! | disable account (and a refused disable or contain) | 3001 Account Change / 5 Disable |
//! | enable account | 3001 / 2 Enable |
//! | revoke sessions | 3001 / 99 "Revoke Sessions" |
//! | remove authentication methods | 3001 / 11 MFA Factor Disable |
//! | disable a rule (one event per rule) | 3004 Entity Management / 9 Disable, entity 99 "Inbox Rule" |
//! | delete a rule | 3004 / 4 Delete, entity 99 "Inbox Rule" |
//!
//! Dry runs and manual steps (mailbox forwarding) emit nothing: nothing changed in the tenant.
//! The requester is the `actor.user`, the reason the `status_detail`/`message`; the Microsoft
//! calls and their outcomes are under `unmapped.response`. `metadata.uid` is derived from the
//! action id, the step and the object, so a re-sent event keeps its uid.

use serde_json::{Map, Value, json};

use super::OCSF_VERSION;
use super::common::{cloud_partition, event_uid, prune};
use super::enums::{self, Class};
use super::inventory::user_object;
use crate::respond::{ActionReport, Outcome, RuleRef, StepKind, StepOutcome, StepReport};
use crate::stream::Stream;

/// The stream response events are delivered under in their envelope. Our actions are
/// directory and mailbox changes, which Microsoft reports in the directory audit log too; the
/// events themselves say they are ours (`metadata.log_name` `itdr.response`).
pub const ENVELOPE_STREAM: Stream = Stream::DirectoryAudits;

/// `metadata.log_name` of response events.
pub const LOG_NAME: &str = "itdr.response";

/// The events of one action report (none for a dry run or a `started` record).
pub fn response_events(report: &ActionReport) -> Vec<Value> {
    if report.dry_run || report.outcome == Outcome::Started {
        return Vec::new();
    }
    let mut out = Vec::new();
    if report.outcome == Outcome::Refused {
        out.push(account_event(
            report,
            None,
            5,
            None,
            2,
            &format!(
                "refused: {}",
                report
                    .error
                    .as_deref()
                    .unwrap_or("refused by a safety rail")
            ),
            "refused",
        ));
        return out;
    }
    for (i, step) in report.steps.iter().enumerate() {
        let (status_id, status_word) = match step.outcome {
            StepOutcome::Done | StepOutcome::Already => (1, step.outcome.as_str()),
            StepOutcome::Failed | StepOutcome::Partial => (2, step.outcome.as_str()),
            StepOutcome::Planned | StepOutcome::Manual => continue,
        };
        match step.step {
            StepKind::DisableAccount => {
                out.push(account_event(
                    report,
                    Some((i, step)),
                    5,
                    None,
                    status_id,
                    &step.detail,
                    status_word,
                ));
            }
            StepKind::EnableAccount => out.push(account_event(
                report,
                Some((i, step)),
                2,
                None,
                status_id,
                &step.detail,
                status_word,
            )),
            StepKind::RevokeSessions => out.push(account_event(
                report,
                Some((i, step)),
                enums::OTHER,
                Some("Revoke Sessions"),
                status_id,
                &step.detail,
                status_word,
            )),
            StepKind::RemoveAuthMethods => out.push(account_event(
                report,
                Some((i, step)),
                11,
                None,
                status_id,
                &step.detail,
                status_word,
            )),
            StepKind::DisableRule
            | StepKind::DeleteRule
            | StepKind::DisableForwardingRules
            | StepKind::DisableHidingRules => {
                let activity = if step.step == StepKind::DeleteRule {
                    4
                } else {
                    9
                };
                for rule in &step.rules {
                    let (sid, word) = match rule.result.as_str() {
                        "done" | "already" => (1, rule.result.as_str()),
                        "failed" => (2, "failed"),
                        _ => continue,
                    };
                    out.push(rule_event(report, i, step, rule, activity, sid, word));
                }
            }
            StepKind::RemoveMailboxForwarding => {}
        }
    }
    out
}

fn target_user(report: &ActionReport, disabled: Option<bool>) -> Value {
    user_object(
        &report.target.id,
        report.target.upn.as_deref(),
        None,
        1,
        disabled,
    )
}

fn actor(report: &ActionReport) -> Value {
    json!({
        "user": {"name": report.requester, "type_id": 99, "type": "Analyst"},
        "app_name": "ITDR response",
    })
}

fn response_unmapped(report: &ActionReport, step: Option<&StepReport>, result: &str) -> Value {
    json!({"response": {
        "action_id": report.id,
        "action": report.action.as_str(),
        "organization": report.organization,
        "requester": report.requester,
        "reason": report.reason,
        "step": step.map(|s| s.step.as_str()),
        "result": result,
        "calls": step.map(|s| serde_json::to_value(&s.calls).unwrap_or(Value::Null)),
        "methods": step.map(|s| s.methods.iter().map(|m| json!({"type": m.method_type, "id": m.id, "result": m.result})).collect::<Vec<_>>()),
    }})
}

fn account_event(
    report: &ActionReport,
    step: Option<(usize, &StepReport)>,
    activity_id: u32,
    other_label: Option<&str>,
    status_id: u32,
    detail: &str,
    result: &str,
) -> Value {
    let disabled = match (step.map(|(_, s)| s.step), result) {
        (Some(StepKind::DisableAccount), "done" | "already") => Some(true),
        (Some(StepKind::EnableAccount), "done" | "already") => Some(false),
        _ => None,
    };
    let mut ev = Map::new();
    ev.insert("user".into(), target_user(report, disabled));
    ev.insert("actor".into(), actor(report));
    ev.insert(
        "unmapped".into(),
        response_unmapped(report, step.map(|(_, s)| s), result),
    );
    let source = match step {
        Some((i, s)) => format!("{}\n{i}\n{}", report.id, s.step.as_str()),
        None => format!("{}\nrefused", report.id),
    };
    finish(
        ev,
        Class::AccountChange,
        activity_id,
        other_label,
        status_id,
        detail,
        report,
        &source,
    )
}

fn rule_event(
    report: &ActionReport,
    i: usize,
    step: &StepReport,
    rule: &RuleRef,
    activity_id: u32,
    status_id: u32,
    result: &str,
) -> Value {
    let mut ev = Map::new();
    ev.insert(
        "entity".into(),
        json!({
            "uid": rule.id,
            "name": rule.name,
            "type_id": enums::OTHER,
            "type": "Inbox Rule",
            "data": {"flags": rule.flags, "external_recipients": rule.external, "mailbox": report.target.upn.as_deref().unwrap_or(&report.target.id)},
        }),
    );
    ev.insert("actor".into(), actor(report));
    let mut unmapped = response_unmapped(report, Some(step), result);
    if let Some(calls) = unmapped
        .pointer_mut("/response/calls")
        .and_then(Value::as_array_mut)
    {
        calls.retain(|c| {
            c.get("method").and_then(Value::as_str) == Some("GET")
                || c.get("url")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.contains(&rule_segment(&rule.id)))
        });
    }
    ev.insert("unmapped".into(), unmapped);
    let source = format!("{}\n{i}\n{}\n{}", report.id, step.step.as_str(), rule.id);
    let detail = format!("inbox rule {:?}: {result}", rule.name);
    finish(
        ev,
        Class::EntityManagement,
        activity_id,
        None,
        status_id,
        &detail,
        report,
        &source,
    )
}

fn rule_segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .chars()
        .take(8)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn finish(
    mut ev: Map<String, Value>,
    class: Class,
    activity_id: u32,
    other_label: Option<&str>,
    status_id: u32,
    detail: &str,
    report: &ActionReport,
    source_id: &str,
) -> Value {
    let tenant = report.tenant_id.trim();
    let activity = other_label
        .or_else(|| class.activity_caption(activity_id))
        .unwrap_or("Other");
    let time_ms = report
        .finished_at
        .unwrap_or(report.started_at)
        .timestamp_millis();
    let severity_id = if status_id == 1 { 1 } else { 3 };
    let message = format!(
        "ITDR response {} by {}: {detail} (reason: {})",
        report.action.as_str(),
        report.requester,
        report.reason
    );
    let fields = [
        ("class_uid", json!(class.uid())),
        ("class_name", json!(class.caption())),
        ("category_uid", json!(class.category_uid())),
        ("category_name", json!(class.category_caption())),
        ("activity_id", json!(activity_id)),
        ("activity_name", json!(activity)),
        (
            "type_uid",
            json!(u64::from(class.uid()) * 100 + u64::from(activity_id)),
        ),
        (
            "type_name",
            json!(format!(
                "{}: {}",
                class.caption(),
                class.activity_caption(activity_id).unwrap_or("Other")
            )),
        ),
        ("time", json!(time_ms)),
        ("timezone_offset", json!(0)),
        ("severity_id", json!(severity_id)),
        (
            "severity",
            json!(enums::severity_caption(severity_id).unwrap_or("Unknown")),
        ),
        ("status_id", json!(status_id)),
        (
            "status",
            json!(enums::status_caption(status_id).unwrap_or("Unknown")),
        ),
        ("status_detail", json!(detail)),
        ("message", json!(message)),
        (
            "metadata",
            json!({
                "version": OCSF_VERSION,
                "uid": event_uid(tenant, LOG_NAME, source_id),
                "correlation_uid": report.id,
                "tenant_uid": tenant,
                "log_name": LOG_NAME,
                "log_provider": "ITDR",
                "product": {
                    "name": "ITDR",
                    "vendor_name": "ITDR",
                    "feature": { "name": "Response actions" },
                },
                "profiles": ["cloud"],
            }),
        ),
        (
            "cloud",
            json!({
                "provider": "Azure",
                "cloud_partition": cloud_partition(report.cloud),
                "account": {
                    "uid": tenant,
                    "type_id": enums::ACCOUNT_M365_TENANT.0,
                    "type": enums::ACCOUNT_M365_TENANT.1,
                },
            }),
        ),
    ];
    for (k, v) in fields {
        ev.insert(k.to_string(), v);
    }
    let mut out = Value::Object(ev);
    prune(&mut out);
    out
}
