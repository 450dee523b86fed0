//! The metrics the AWS stack reads are the metrics the code emits.
//!
//! `infra/template.yaml` reads the pollers' metrics (namespace `ITDR`, `telemetry.rs`) in three
//! forms: a metric alarm (`Namespace: ITDR`, `MetricName`, `Dimensions`), a Metrics Insights
//! alarm query (`SELECT FN(Metric) FROM SCHEMA(ITDR, dims...) WHERE CloudGroup = '...'`) and a
//! dashboard search (`SEARCH('{ITDR,dims...} MetricName="..." CloudGroup="..."', ...)`).
//! CloudWatch matches a metric by its name and its exact dimension set, so a renamed metric or
//! a changed dimension set would leave an alarm silent and a graph empty without any error.
//! These tests parse every such reference from the template (any other mention of the
//! namespace is reported, so a reference cannot slip past the parser) and compare it with the
//! Embedded Metric Format documents the code writes for every event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use itdr_shared::health::{FailureKind, HealthState};
use itdr_shared::poll::PollOutcome;
use itdr_shared::telemetry::{ActionFailure, Event, NAMESPACE, RefusalReason};
use itdr_shared::{CloudGroup, Stream};

/// A metric as CloudWatch identifies it within the namespace: name and dimension names.
type MetricId = (String, BTreeSet<String>);

const GROUPS: [CloudGroup; 2] = [CloudGroup::Commercial, CloudGroup::UsGov];

/// Fails to compile when a cloud group is added, so that `GROUPS` is kept complete.
fn _every_group_listed(g: CloudGroup) {
    match g {
        CloudGroup::Commercial | CloudGroup::UsGov => {}
    }
}

fn template() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    std::fs::read_to_string(&path).unwrap()
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

/// Fails to compile when an event is added: give it a sample in `samples` too.
fn _every_event_sampled(e: &Event<'_>) {
    match e {
        Event::PollCompleted { .. }
        | Event::PollFailed { .. }
        | Event::SourceUnavailable { .. }
        | Event::JobRefused { .. }
        | Event::JobDeferred { .. }
        | Event::CursorConflicted { .. }
        | Event::TenantHealthRecorded { .. }
        | Event::DigestWriteFailed { .. }
        | Event::ReportWritten { .. }
        | Event::ReportFailed { .. }
        | Event::ActionCompleted { .. }
        | Event::ActionFailed { .. } => {}
    }
}

/// One event of every kind, with every optional metric present.
fn samples(outcome: &PollOutcome) -> Vec<Event<'_>> {
    let tenant = "00000000-0000-0000-0000-000000000001";
    vec![
        Event::PollCompleted {
            tenant,
            stream: Stream::Signins,
            outcome,
            elapsed_ms: 1_200,
        },
        Event::PollFailed {
            tenant,
            stream: Stream::Signins,
            kind: FailureKind::ConsentRevoked,
            emitted: 0,
        },
        Event::SourceUnavailable {
            tenant,
            stream: Stream::DirectoryAudits,
            kind: FailureKind::Transient,
            emitted: 3,
        },
        Event::JobRefused {
            reason: RefusalReason::CloudGroupMismatch,
            message_id: "m-1",
        },
        Event::JobRefused {
            reason: RefusalReason::Malformed,
            message_id: "m-2",
        },
        Event::JobDeferred {
            tenant,
            stream: Stream::Signins,
            kind: FailureKind::Store,
        },
        Event::CursorConflicted {
            tenant,
            stream: Stream::Signins,
        },
        Event::TenantHealthRecorded {
            tenant,
            state: HealthState::Healthy,
        },
        Event::DigestWriteFailed { tenant },
        Event::ReportWritten {
            tenant,
            findings: 4,
            emailed: false,
        },
        Event::ReportFailed {
            tenant,
            step: "email",
        },
        Event::ActionCompleted {
            tenant,
            action: "contain",
            outcome: "completed",
            action_id: "a-1",
        },
        Event::ActionFailed {
            tenant,
            action: "disable_account",
            reason: ActionFailure::Refused,
            request_id: "r-1",
        },
    ]
}

/// Every (metric, dimension set) the pollers emit, read back from their EMF documents.
fn emitted() -> BTreeSet<MetricId> {
    let outcome = PollOutcome {
        emitted: 5,
        requests: 2,
        freshness_secs: vec![40, 90, 300],
        ..PollOutcome::default()
    };
    let mut out = BTreeSet::new();
    for group in GROUPS {
        for event in samples(&outcome) {
            let doc: Value = serde_json::from_str(&event.emf_line(group, at())).unwrap();
            for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                assert_eq!(directive["Namespace"], NAMESPACE);
                for dims in directive["Dimensions"].as_array().unwrap() {
                    let dims: BTreeSet<String> = dims
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(doc["CloudGroup"], group.as_str());
                    for metric in directive["Metrics"].as_array().unwrap() {
                        let name = metric["Name"].as_str().unwrap().to_string();
                        assert!(doc[&name].is_number(), "{name} has a value");
                        out.insert((name, dims.clone()));
                    }
                }
            }
        }
    }
    out
}

/// Where a reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Alarm,
    Query,
    Search,
}

/// One metric reference in the template.
#[derive(Debug, Clone)]
struct Reference {
    form: Form,
    line: usize,
    metric: String,
    dims: BTreeSet<String>,
    /// The `CloudGroup` value it filters on (literal, or `${CloudGroup}` in a dashboard block).
    group: Option<String>,
}

/// What the template reads, and what could not be read (each a message).
#[derive(Debug, Default)]
struct Parsed {
    refs: Vec<Reference>,
    problems: Vec<String>,
}

fn dims_of<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    names
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `Namespace: ITDR` alarms: the `MetricName` and `Dimensions` of the same resource.
fn parse_alarm(lines: &[&str], i: usize, out: &mut Parsed) {
    let (mut metric, mut dims, mut group) = (None, None, None);
    for line in lines[i + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) >= indent(lines[i]))
    {
        let l = line.trim();
        if let Some(m) = l.strip_prefix("MetricName:") {
            metric = Some(m.trim().to_string());
        } else if let Some(d) = l.strip_prefix("Dimensions:") {
            dims = Some(dims_of(
                d.split("Name:")
                    .skip(1)
                    .map(|p| p.split(',').next().unwrap_or_default()),
            ));
            group = d.split("Value:").nth(1).map(|v| {
                v.trim()
                    .trim_end_matches(']')
                    .trim_end_matches('}')
                    .trim()
                    .to_string()
            });
        }
    }
    match (metric, dims) {
        (Some(metric), Some(dims)) => out.refs.push(Reference {
            form: Form::Alarm,
            line: i + 1,
            metric,
            dims,
            group,
        }),
        _ => out.problems.push(format!(
            "line {}: an ITDR alarm needs MetricName and Dimensions",
            i + 1
        )),
    }
}

/// `SELECT FN(Metric) FROM SCHEMA(ITDR, dims...) WHERE CloudGroup = 'group'`.
fn parse_query(line: &str, n: usize, out: &mut Parsed) {
    let parsed = (|| {
        let select = line.split("SELECT ").nth(1)?;
        let metric = select.split_once('(')?.1.split_once(')')?.0;
        let schema = select.split_once("FROM SCHEMA(")?.1;
        let (inside, rest) = schema.split_once(')')?;
        let mut parts = inside.split(',');
        if parts.next()?.trim() != NAMESPACE {
            return None;
        }
        let dims = dims_of(parts);
        let group = rest
            .split_once("CloudGroup = '")
            .and_then(|(_, g)| g.split_once('\''))
            .map(|(g, _)| g.to_string());
        Some(Reference {
            form: Form::Query,
            line: n,
            metric: metric.trim().to_string(),
            dims,
            group,
        })
    })();
    match parsed {
        Some(r) => out.refs.push(r),
        None => out
            .problems
            .push(format!("line {n}: unreadable Metrics Insights query")),
    }
}

/// `SEARCH('{ITDR,dims...} MetricName="Metric" CloudGroup="group"', 'stat', period)`, as many
/// as the line holds (the template escapes the inner quotes with backslashes).
fn parse_searches(line: &str, n: usize, out: &mut Parsed) {
    for search in line.split("SEARCH(").skip(1) {
        let parsed = (|| {
            let term = search
                .strip_prefix("'{")?
                .split_once('\'')?
                .0
                .replace('\\', "");
            let (schema, filters) = term.split_once('}')?;
            let mut parts = schema.split(',');
            if parts.next()?.trim() != NAMESPACE {
                return None;
            }
            let dims = dims_of(parts);
            let value = |key: &str| {
                filters
                    .split_once(&format!("{key}=\""))
                    .and_then(|(_, v)| v.split_once('"'))
                    .map(|(v, _)| v.to_string())
            };
            Some(Reference {
                form: Form::Search,
                line: n,
                metric: value("MetricName")?,
                dims,
                group: value("CloudGroup"),
            })
        })();
        match parsed {
            Some(r) => out.refs.push(r),
            None => out
                .problems
                .push(format!("line {n}: unreadable SEARCH expression")),
        }
    }
}

/// Every metric reference of the template; any other mention of the namespace as a metric
/// source is a problem, so a reference in a new form fails instead of going unchecked.
fn parse(template: &str) -> Parsed {
    let mut out = Parsed::default();
    let lines: Vec<&str> = template.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t == format!("Namespace: {NAMESPACE}") {
            parse_alarm(&lines, i, &mut out);
        } else if t.starts_with("Namespace:") && t.contains(NAMESPACE) {
            out.problems.push(format!("line {n}: quoted namespace"));
        }
        if line.contains("SCHEMA(") {
            parse_query(line, n, &mut out);
        } else if line.contains("SELECT ") {
            out.problems.push(format!(
                "line {n}: a query without SCHEMA(...) mixes dimension sets"
            ));
        }
        if line.contains("SEARCH(") {
            parse_searches(line, n, &mut out);
        }
        if line.contains(&format!("\"{NAMESPACE}\"")) {
            out.problems.push(format!(
                "line {n}: an ITDR metric array in the dashboard; use SEARCH so the dimension set is exact"
            ));
        }
    }
    out
}

/// The cloud group labels a dashboard block is rendered with (`CloudGroup: x` in its
/// `Fn::Sub` variables).
fn sub_group_values(template: &str) -> Vec<(usize, String)> {
    template
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let v = l
                .trim()
                .trim_start_matches("- ")
                .strip_prefix("CloudGroup:")?;
            Some((i + 1, v.trim().to_string()))
        })
        .collect()
}

/// Everything wrong with the template's metric references, one message each.
fn check(template: &str) -> Vec<String> {
    let emitted = emitted();
    let labels: BTreeSet<&str> = GROUPS.iter().map(|g| g.as_str()).collect();
    let parsed = parse(template);
    let mut problems = parsed.problems;
    for r in &parsed.refs {
        if !emitted.contains(&(r.metric.clone(), r.dims.clone())) {
            problems.push(format!(
                "line {}: {:?} reads {} with dimensions {:?}, which the code does not emit",
                r.line, r.form, r.metric, r.dims
            ));
        }
        match r.group.as_deref() {
            Some(g) if labels.contains(g) => {}
            Some("${CloudGroup}") if r.form == Form::Search => {}
            other => problems.push(format!(
                "line {}: {} must filter on one cloud group ({labels:?}), not {other:?}",
                r.line, r.metric
            )),
        }
    }
    for (n, v) in sub_group_values(template) {
        if !labels.contains(v.as_str()) {
            problems.push(format!(
                "line {n}: cloud group {v:?} is not one the code emits"
            ));
        }
    }
    problems
}

#[test]
fn every_metric_the_template_reads_is_one_the_code_emits() {
    let template = template();
    assert_eq!(check(&template), Vec::<String>::new());
    // Not vacuous: the template reads the metrics in all three forms.
    let refs = parse(&template).refs;
    for form in [Form::Alarm, Form::Query, Form::Search] {
        assert!(refs.iter().any(|r| r.form == form), "no {form:?} found");
    }
    assert!(
        sub_group_values(&template).len() >= GROUPS.len(),
        "one dashboard block per group"
    );
}

#[test]
fn every_metric_the_code_emits_is_on_the_dashboard_of_every_group() {
    let template = template();
    let refs = parse(&template).refs;
    let on_dashboard: BTreeSet<MetricId> = refs
        .iter()
        .filter(|r| r.form == Form::Search)
        .map(|r| (r.metric.clone(), r.dims.clone()))
        .collect();
    let missing: Vec<_> = emitted().difference(&on_dashboard).cloned().collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
    let groups: BTreeSet<String> = sub_group_values(&template)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let labels: BTreeSet<String> = GROUPS.iter().map(|g| g.as_str().to_string()).collect();
    assert_eq!(groups, labels, "a dashboard block for every cloud group");
}

#[test]
fn alarms_watch_the_operator_signals_of_every_group() {
    let template = template();
    let refs = parse(&template).refs;
    for metric in [
        "JobsRefused",
        "SourceFailures",
        "Throttled",
        "FreshnessP99Seconds",
        "DeadLetters",
        "JobsDeferred",
        "TenantsUnhealthy",
        "ActionsFailed",
    ] {
        for group in GROUPS {
            assert!(
                refs.iter().any(|r| r.form != Form::Search
                    && r.metric == metric
                    && r.group.as_deref() == Some(group.as_str())),
                "no alarm on {metric} for {}",
                group.as_str()
            );
        }
    }
}

#[test]
fn a_renamed_metric_or_changed_dimension_set_fails_the_check() {
    let template = template();
    let broken = |from: &str, to: &str| {
        assert!(template.contains(from), "the template still holds {from:?}");
        check(&template.replacen(from, to, 1))
    };
    // A metric renamed in an alarm query, a metric alarm and a search.
    let p = broken("MAX(FreshnessP99Seconds)", "MAX(FreshnessP99Secs)");
    assert!(p.iter().any(|m| m.contains("FreshnessP99Secs")), "{p:?}");
    let p = broken(
        "MetricName: TenantsUnhealthy",
        "MetricName: TenantUnhealthy",
    );
    assert!(p.iter().any(|m| m.contains("TenantUnhealthy")), "{p:?}");
    let p = broken(
        r#"MetricName=\"EventsEmitted\""#,
        r#"MetricName=\"EventEmitted\""#,
    );
    assert!(p.iter().any(|m| m.contains("EventEmitted")), "{p:?}");
    // The right name with another dimension set.
    let p = broken(
        r#"{ITDR,CloudGroup,Kind} MetricName=\"PollFailures\""#,
        r#"{ITDR,CloudGroup,Stream} MetricName=\"PollFailures\""#,
    );
    assert!(p.iter().any(|m| m.contains("PollFailures")), "{p:?}");
    let p = broken(
        "SUM(JobsRefused) FROM SCHEMA(ITDR, CloudGroup, Reason)",
        "SUM(JobsRefused) FROM SCHEMA(ITDR, CloudGroup)",
    );
    assert!(p.iter().any(|m| m.contains("JobsRefused")), "{p:?}");
    // A cloud group the code does not emit.
    let p = broken("WHERE CloudGroup = 'usgov'", "WHERE CloudGroup = 'gcch'");
    assert!(p.iter().any(|m| m.contains("gcch")), "{p:?}");
    let p = broken("CloudGroup: usgov", "CloudGroup: gcchigh");
    assert!(p.iter().any(|m| m.contains("gcchigh")), "{p:?}");
    // A reference in a form the parser does not read.
    let p = broken(
        r#"[{"id":"pollfailures""#,
        r#"["ITDR","PollFailures","CloudGroup","${CloudGroup}"],[{"id":"pollfailures""#,
    );
    assert!(p.iter().any(|m| m.contains("metric array")), "{p:?}");
}
