//! The results of `make bench`: every `target/bench-<name>.json` merged into one
//! `target/bench-results.json`, and one table (figure, value, unit, target, met).
//!
//! Each bench writes its own figures as a JSON array of
//! `{"name", "value", "unit", "command", "target"?, "meets"?}`. [`merge`] reads every such file
//! of a directory (not `bench-results.json` itself): a file that is not valid JSON, or an entry
//! without a name or a numeric value, is reported by file name and left out while the others
//! still merge. [`EXPECTED`] lists the figures issue 14 names, with their targets: a figure of
//! that list that no bench wrote is shown as missing (never given a value), and a figure that
//! carries no `meets` of its own is checked against the list's target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

/// A comparison a figure must pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// value <= bound
    AtMost(f64),
    /// value < bound
    Below(f64),
    /// value >= bound
    AtLeast(f64),
    /// value == bound
    Exactly(f64),
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Target::AtMost(b) => value <= b,
            Target::Below(b) => value < b,
            Target::AtLeast(b) => value >= b,
            Target::Exactly(b) => value == b,
        }
    }

    /// The target as text, e.g. `<= 5 s`.
    pub fn text(self, unit: &str) -> String {
        let (op, b) = match self {
            Target::AtMost(b) => ("<=", b),
            Target::Below(b) => ("<", b),
            Target::AtLeast(b) => (">=", b),
            Target::Exactly(b) => ("=", b),
        };
        format!("{op} {} {unit}", fmt_value(b))
            .trim_end()
            .to_string()
    }
}

/// A figure issue 14 names: its name, unit, target (if any) and the bench that writes it.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Figure name.
    pub name: String,
    /// Its unit.
    pub unit: &'static str,
    /// Its target, if the issue sets one.
    pub target: Option<Target>,
    /// What writes it (shown for a missing figure).
    pub producer: &'static str,
}

/// The seven Lambda functions `make build` packages.
pub const FUNCTIONS: [&str; 7] = [
    "scheduler",
    "poller",
    "poller-gcch",
    "report",
    "report-gcch",
    "actions",
    "actions-gcch",
];

/// The figures the issue names, in table order.
pub fn expected() -> Vec<Expected> {
    let mut v = Vec::new();
    let mut add = |name: String, unit, target, producer| {
        v.push(Expected {
            name,
            unit,
            target,
            producer,
        })
    };
    let norm = "bench normalize";
    for s in ["signins", "directory_audits"] {
        add(format!("serde_baseline_{s}"), "events/s", None, norm);
        let fast = (s == "signins").then_some(Target::AtLeast(100_000.0));
        add(format!("normalize_fast_{s}"), "events/s", fast, norm);
        add(
            format!("normalize_fast_ratio_{s}"),
            "x baseline",
            Some(Target::AtLeast(0.5)),
            norm,
        );
    }
    for shape in ["ndjson", "ndjson_small", "page"] {
        add(
            format!("itdr_normalize_{shape}_peak_rss"),
            "MiB",
            Some(Target::Below(64.0)),
            norm,
        );
    }
    let fleet = "bench fleet";
    for n in [1000, 5000] {
        for (metric, unit, target) in [
            ("apps", "apps", None),
            ("app_429s", "responses", Some(Target::Exactly(0.0))),
            ("ceiling_used_pct", "%", None),
            ("requests_per_tenant_hour", "requests", None),
            ("jobs_per_tenant_day", "jobs", None),
            ("events_per_tenant_day", "events", None),
            (
                "events_per_request_backlog",
                "events/request",
                Some(Target::AtLeast(990.0)),
            ),
            ("freshness_visible_p50_s", "s", None),
            // The schedule interval (5 min) + 60 s, for tenants within budget.
            ("freshness_visible_p99_s", "s", Some(Target::AtMost(360.0))),
            ("freshness_event_p50_s", "s", None),
            ("freshness_event_p99_s", "s", None),
            ("backfill_catchup_h", "h", None),
            ("cpu_s_per_tenant_day", "s", None),
            ("tenants_per_app", "tenants", None),
        ] {
            add(format!("fleet.{n}.{metric}"), unit, target, fleet);
        }
        // The same fleet with Microsoft's published latencies (P95 2 min, P99 5 min).
        for (metric, unit, target) in [
            ("freshness_visible_p50_s", "s", None),
            ("freshness_visible_p99_s", "s", Some(Target::AtMost(360.0))),
            ("freshness_event_p50_s", "s", None),
            ("freshness_event_p99_s", "s", None),
            ("requests_per_tenant_hour", "requests", None),
        ] {
            add(format!("fleet.{n}.published.{metric}"), unit, target, fleet);
        }
    }
    // The most tenants one app registration keeps up with (the fleet bench's search).
    add(
        "fleet.capacity.tenants_per_app".into(),
        "tenants",
        Some(Target::AtLeast(1500.0)),
        fleet,
    );
    // The agreement run: the same 200 tenants and 3 hours through `itdr run` over HTTP and
    // through the fleet simulation (tests/integration/FLEET.md).
    let agreement = "bench fleet_http";
    for side in ["http", "sim"] {
        for (metric, unit) in [
            ("requests_per_tenant_hour", "requests"),
            ("polls_per_tenant_hour", "polls"),
            ("events_per_tenant_hour", "events"),
            ("app_429s", "429s"),
            ("freshness_visible_p50_s", "s"),
            ("freshness_visible_p99_s", "s"),
            ("freshness_event_p50_s", "s"),
        ] {
            add(format!("fleet.{side}.200.{metric}"), unit, None, agreement);
        }
    }
    add(
        "fleet.agreement".into(),
        "1 = agree",
        Some(Target::Exactly(1.0)),
        agreement,
    );
    // `make bench` runs it at 200 tenants (fanout.200.*, listed after these): on moto, 10,000
    // takes hours (the Makefile says why); FANOUT_TENANTS=10000 gives these.
    let fan = "bench fanout with FANOUT_TENANTS=10000";
    add(
        "fanout.10000.wall_s".into(),
        "s",
        Some(Target::AtMost(5.0)),
        fan,
    );
    add("fanout.10000.messages_sent".into(), "messages", None, fan);
    let poller = "make bench-poller (scripts/lambda-smoke.sh)";
    add(
        "poller.init_ms".into(),
        "ms",
        Some(Target::AtMost(20.0)),
        poller,
    );
    add(
        "poller.peak_rss_mib".into(),
        "MiB",
        Some(Target::AtMost(64.0)),
        poller,
    );
    for f in FUNCTIONS {
        add(
            format!("zip.{f}.size_mb"),
            "MB",
            Some(Target::AtMost(5.0)),
            "scripts/bench-zips.sh",
        );
    }
    add(
        crate::cost::COST_FIGURE.into(),
        "USD/month",
        None,
        "the cost model (docs/COST.md)",
    );
    v
}

/// One figure as a bench wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: String,
    /// The command that produced it.
    pub command: String,
    /// The target as text, if any.
    pub target: Option<String>,
    /// Whether it meets its target, if it has one.
    pub meets: Option<bool>,
    /// The file it came from.
    pub file: String,
}

impl Figure {
    /// The figure in the results contract's shape.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("value".into(), json!(self.value));
        m.insert("unit".into(), json!(self.unit));
        m.insert("command".into(), json!(self.command));
        if let Some(t) = &self.target {
            m.insert("target".into(), json!(t));
        }
        if let Some(b) = self.meets {
            m.insert("meets".into(), json!(b));
        }
        m.insert("file".into(), json!(self.file));
        Value::Object(m)
    }
}

/// What [`merge`] found.
#[derive(Debug, Default)]
pub struct Merged {
    /// Every valid figure, in file then entry order, first of a name kept.
    pub figures: Vec<Figure>,
    /// Problems, each naming its file.
    pub problems: Vec<String>,
    /// The files merged (valid JSON arrays).
    pub files: Vec<String>,
}

impl Merged {
    /// The figure of that name.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Its value.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.get(name).map(|f| f.value)
    }
}

/// Reads the figures of one bench file's text; entries that do not fit the contract are
/// problems naming the file.
pub fn parse_file(file: &str, text: &str, out: &mut Merged) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(format!(
                "{file}: not valid JSON (line {}, column {}); its figures are left out",
                e.line(),
                e.column()
            ));
            return;
        }
    };
    let Some(items) = v.as_array() else {
        out.problems.push(format!(
            "{file}: not a JSON array of figures; its figures are left out"
        ));
        return;
    };
    out.files.push(file.to_string());
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_f64);
        let (Some(name), Some(value)) = (name, value) else {
            out.problems.push(format!(
                "{file}: entry {i} has no name or no numeric value; left out"
            ));
            continue;
        };
        if !value.is_finite() {
            out.problems
                .push(format!("{file}: {name} is not a finite number; left out"));
            continue;
        }
        if let Some(prev) = out.get(name) {
            out.problems.push(format!(
                "{file}: {name} was already written by {}; the first is kept",
                prev.file
            ));
            continue;
        }
        let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        out.figures.push(Figure {
            name: name.to_string(),
            value,
            unit: text("unit").unwrap_or_default(),
            command: text("command").unwrap_or_default(),
            target: text("target"),
            meets: item.get("meets").and_then(Value::as_bool),
            file: file.to_string(),
        });
    }
}

/// The name of a bench file merged from a directory: `bench-<name>.json`, but not the results
/// file itself.
pub fn is_bench_file(name: &str) -> bool {
    name.starts_with("bench-") && name.ends_with(".json") && name != RESULTS_FILE
}

/// The merged results file's name.
pub const RESULTS_FILE: &str = "bench-results.json";

/// Merges every bench file of `dir` (sorted by name).
pub fn merge(dir: &Path) -> Merged {
    let mut out = Merged::default();
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| is_bench_file(n))
            .collect(),
        Err(e) => {
            out.problems
                .push(format!("{}: cannot be read ({})", dir.display(), e.kind()));
            return out;
        }
    };
    names.sort();
    for n in names {
        match std::fs::read_to_string(dir.join(&n)) {
            Ok(text) => parse_file(&n, &text, &mut out),
            Err(e) => out
                .problems
                .push(format!("{n}: cannot be read ({})", e.kind())),
        }
    }
    out
}

/// Gives each figure without a `meets` of its own the issue's target for it, if any.
pub fn apply_targets(merged: &mut Merged, expected: &[Expected]) {
    let by_name: BTreeMap<&str, &Expected> =
        expected.iter().map(|e| (e.name.as_str(), e)).collect();
    for f in &mut merged.figures {
        let Some(t) = by_name.get(f.name.as_str()).and_then(|e| e.target) else {
            continue;
        };
        if f.target.is_none() {
            f.target = Some(t.text(&f.unit));
        }
        if f.meets.is_none() {
            f.meets = Some(t.met_by(f.value));
        }
    }
}

/// A value for the table: integers as integers, others with one to four decimals (fewer the
/// larger the value), without trailing zeros.
pub fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Figure name.
    pub name: String,
    /// Value, or `missing`.
    pub value: String,
    /// Unit.
    pub unit: String,
    /// Target text or empty.
    pub target: String,
    /// `yes`, `NO`, `-` (no target) or `missing: no figure from <producer>`.
    pub met: String,
}

/// The table rows: the expected figures in order (present or missing), then every other
/// figure by name.
pub fn rows(merged: &Merged, expected: &[Expected]) -> Vec<Row> {
    let mut rows = Vec::new();
    let row = |f: &Figure| Row {
        name: f.name.clone(),
        value: fmt_value(f.value),
        unit: f.unit.clone(),
        target: f.target.clone().unwrap_or_default(),
        met: match f.meets {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "-".into(),
        },
    };
    for e in expected {
        match merged.get(&e.name) {
            Some(f) => rows.push(row(f)),
            None => rows.push(Row {
                name: e.name.clone(),
                value: "missing".into(),
                unit: e.unit.to_string(),
                target: e.target.map(|t| t.text(e.unit)).unwrap_or_default(),
                met: format!("missing: no figure from {}", e.producer),
            }),
        }
    }
    let mut others: Vec<&Figure> = merged
        .figures
        .iter()
        .filter(|f| !expected.iter().any(|e| e.name == f.name))
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    rows.extend(others.into_iter().map(row));
    rows
}

/// The table as text, then the problems.
pub fn table(rows: &[Row], problems: &[String]) -> String {
    let headers = ["figure", "value", "unit", "target", "met"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.as_str(),
                r.value.as_str(),
                r.unit.as_str(),
                r.target.as_str(),
                r.met.as_str(),
            ]
        })
        .collect();
    let mut w = headers.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: [&str; 5]| {
        let _ = writeln!(
            out,
            "| {:<w0$} | {:>w1$} | {:<w2$} | {:<w3$} | {:<w4$} |",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        );
    };
    line(&mut out, headers);
    let _ = writeln!(
        out,
        "|{}|{}|{}|{}|{}|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 2),
        "-".repeat(w[2] + 2),
        "-".repeat(w[3] + 2),
        "-".repeat(w[4] + 2)
    );
    for c in cells {
        line(&mut out, c);
    }
    for p in problems {
        let _ = writeln!(out, "problem: {p}");
    }
    out
}

/// The results file's content: every figure (with its command), as one JSON array.
pub fn results_json(merged: &Merged) -> Value {
    Value::Array(merged.figures.iter().map(Figure::to_json).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn exp(name: &str, target: Option<Target>) -> Expected {
        Expected {
            name: name.into(),
            unit: "s",
            target,
            producer: "bench x",
        }
    }

    #[test]
    fn a_file_that_is_not_json_is_reported_by_name_and_the_others_still_merge() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bench-a.json"),
            r#"[{"name":"a.one","value":1.5,"unit":"s","command":"cmd a"}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("bench-broken.json"), "[{\"name\": ").unwrap();
        std::fs::write(
            dir.path().join("bench-c.json"),
            r#"[{"name":"c.one","value":3,"unit":"MiB","command":"cmd c"}]"#,
        )
        .unwrap();
        // Neither the results file itself nor other files are merged.
        std::fs::write(
            dir.path().join(RESULTS_FILE),
            r#"[{"name":"old","value":9}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.json"), r#"[{"name":"n","value":9}]"#).unwrap();
        let m = merge(dir.path());
        let names: Vec<&str> = m.figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.one", "c.one"]);
        assert_eq!(m.problems.len(), 1);
        assert!(m.problems[0].starts_with("bench-broken.json: not valid JSON"));
        assert_eq!(m.get("c.one").unwrap().command, "cmd c");
        assert_eq!(m.get("c.one").unwrap().file, "bench-c.json");
    }

    #[test]
    fn entries_outside_the_contract_and_duplicates_are_problems() {
        let mut m = Merged::default();
        parse_file(
            "bench-x.json",
            r#"[{"name":"ok","value":2},{"name":"no value"},{"value":3},{"name":"text","value":"7"},{"name":"ok","value":5}]"#,
            &mut m,
        );
        parse_file("bench-y.json", r#"{"name":"ok","value":1}"#, &mut m);
        assert_eq!(m.figures.len(), 1);
        assert_eq!(m.value("ok"), Some(2.0));
        assert_eq!(m.problems.len(), 5, "{:?}", m.problems);
        assert!(m.problems.iter().all(|p| p.starts_with("bench-")));
        assert!(m.problems[4].contains("not a JSON array"));
    }

    #[test]
    fn targets_met_and_not_met_and_a_bench_s_own_verdict_wins() {
        let mut m = Merged::default();
        parse_file(
            "bench-t.json",
            r#"[{"name":"fast","value":4.9,"unit":"s"},
                {"name":"slow","value":5.1,"unit":"s"},
                {"name":"own","value":100,"unit":"s","target":"<= 1 s","meets":true},
                {"name":"free","value":1,"unit":"s"}]"#,
            &mut m,
        );
        let e = [
            exp("fast", Some(Target::AtMost(5.0))),
            exp("slow", Some(Target::AtMost(5.0))),
            exp("own", Some(Target::AtMost(5.0))),
        ];
        apply_targets(&mut m, &e);
        assert_eq!(m.get("fast").unwrap().meets, Some(true));
        assert_eq!(m.get("fast").unwrap().target.as_deref(), Some("<= 5 s"));
        assert_eq!(m.get("slow").unwrap().meets, Some(false));
        assert_eq!(m.get("own").unwrap().meets, Some(true));
        assert_eq!(m.get("own").unwrap().target.as_deref(), Some("<= 1 s"));
        assert_eq!(m.get("free").unwrap().meets, None);
        let r = rows(&m, &e);
        let met: Vec<(&str, &str)> = r
            .iter()
            .map(|r| (r.name.as_str(), r.met.as_str()))
            .collect();
        assert_eq!(
            met,
            [
                ("fast", "yes"),
                ("slow", "NO"),
                ("own", "yes"),
                ("free", "-")
            ]
        );
    }

    #[test]
    fn target_comparisons() {
        assert!(Target::Below(64.0).met_by(63.9));
        assert!(!Target::Below(64.0).met_by(64.0));
        assert!(Target::AtLeast(990.0).met_by(990.0));
        assert!(!Target::AtLeast(990.0).met_by(989.9));
        assert!(Target::Exactly(0.0).met_by(0.0));
        assert!(!Target::Exactly(0.0).met_by(1.0));
        assert_eq!(
            Target::AtLeast(100_000.0).text("events/s"),
            ">= 100000 events/s"
        );
        assert_eq!(Target::AtLeast(0.5).text("x"), ">= 0.5 x");
        assert_eq!(fmt_value(123.456), "123.5");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(3.0), "3");
    }

    #[test]
    fn missing_figures_are_shown_as_missing_never_with_a_value() {
        let mut m = Merged::default();
        parse_file("bench-a.json", r#"[{"name":"here","value":1}]"#, &mut m);
        let e = [exp("here", None), exp("absent", Some(Target::AtMost(5.0)))];
        apply_targets(&mut m, &e);
        let r = rows(&m, &e);
        assert_eq!(r[1].name, "absent");
        assert_eq!(r[1].value, "missing");
        assert_eq!(r[1].met, "missing: no figure from bench x");
        assert_eq!(r[1].target, "<= 5 s");
        let text = table(&r, &["bench-b.json: not valid JSON".into()]);
        assert!(text.contains("| absent"));
        assert!(text.contains("problem: bench-b.json: not valid JSON"));
        // The results file holds only what was measured.
        let j = results_json(&m);
        assert_eq!(j.as_array().unwrap().len(), 1);
        assert_eq!(j[0]["name"], "here");
    }

    #[test]
    fn every_expected_name_is_unique_and_the_fleet_contract_names_are_there() {
        let e = expected();
        let mut names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        for n in [1000, 5000] {
            for m in [
                "apps",
                "app_429s",
                "ceiling_used_pct",
                "requests_per_tenant_hour",
                "jobs_per_tenant_day",
                "events_per_tenant_day",
                "events_per_request_backlog",
                "freshness_visible_p50_s",
                "freshness_visible_p99_s",
                "freshness_event_p50_s",
                "freshness_event_p99_s",
                "backfill_catchup_h",
                "cpu_s_per_tenant_day",
                "tenants_per_app",
            ] {
                let name = format!("fleet.{n}.{m}");
                assert!(names.contains(&name.as_str()), "{name}");
            }
        }
    }
}
