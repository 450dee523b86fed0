//! `cargo bench --profile bench-run -p itdr-integration-tests --bench normalize` (as `make bench`
//! runs it): normalization speed on one core.
//!
//! For sign-ins and directory audits (records from the simulator's generator, fetched through
//! Graph paging, then normalized a few hundred thousand times over), on this thread only:
//!
//! - serde baseline: parse the record's JSON into a `Value` and serialize it again;
//! - fast path: `Record::parse` + `normalize_record`, JSON text in, event JSON text out;
//! - Value path: parse to a `Value`, `normalize`, serialize the event (what `itdr normalize`
//!   did before the fast path, and what the poller does apart from the last step);
//!
//! in events per second of this thread's CPU time (wall time where that is unavailable), so that
//! other load on a shared machine counts as little as possible, with the fast path's ratio to
//! the baseline. Then `itdr normalize` through `scripts/bench-normalize.sh` on generated sign-ins:
//! about 300 MB of NDJSON (`ITDR_NORMALIZE_BENCH_MB`), a tenth of that, and 300 MB as one Graph
//! page: wall-clock throughput and peak RSS of the process. The binary is `ITDR_BIN`, else
//! `target/bench-run/itdr`, else `target/release/itdr` (build it first:
//! `cargo build --profile bench-run -p itdr-cli`). `NORMALIZE_BENCH_FAST_ONLY=1` runs only the
//! fast path (for `perf record`).
//!
//! Prints a table and writes the figures to `target/bench-normalize.json` as
//! `[{name, value, unit, command}]`. Targets (issue): fast path >= 0.5x the baseline and
//! >= 100,000 sign-ins/s; `itdr normalize` peak RSS under 64 MiB whatever the input size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/records.rs"]
mod records;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use itdr_shared::ocsf::{NormalizeOptions, Record, normalize, normalize_record};
use itdr_shared::{Cloud, Stream};
use serde_json::{Value, json};

const BENCH_COMMAND: &str =
    "cargo bench --profile bench-run -p itdr-integration-tests --bench normalize";
/// Records normalized per measurement (passes over the distinct records).
const PER_MEASUREMENT: usize = 300_000;
/// Distinct records fetched per stream.
const DISTINCT: usize = 40_000;

struct Figure {
    name: String,
    value: f64,
    unit: &'static str,
    command: String,
}

/// CPU time of this thread so far (Linux), so that other load on the machine does not count.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A clock of this thread's CPU time, or of wall time where that is unavailable.
struct Clock {
    cpu: Option<Duration>,
    wall: Instant,
}

impl Clock {
    fn start() -> Self {
        Clock {
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    fn secs(&self) -> f64 {
        match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Runs `f` over the texts until `PER_MEASUREMENT` records are done; events per second of
/// this thread's CPU time.
fn measure(texts: &[String], mut f: impl FnMut(&str, &mut Vec<u8>) -> bool) -> (f64, usize) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut ok = 0usize;
    let mut done = 0usize;
    let start = Clock::start();
    while done < PER_MEASUREMENT {
        for t in texts.iter().take(PER_MEASUREMENT - done) {
            buf.clear();
            ok += usize::from(f(t, &mut buf));
            done += 1;
        }
    }
    let secs = start.secs();
    std::hint::black_box(&buf);
    (done as f64 / secs, ok)
}

fn baseline(text: &str, buf: &mut Vec<u8>) -> bool {
    let v: Value = serde_json::from_str(text).unwrap();
    serde_json::to_writer(&mut *buf, &v).is_ok()
}

fn fast(stream: Stream, opts: &NormalizeOptions, text: &str, buf: &mut Vec<u8>) -> bool {
    match Record::parse(text) {
        Ok(r) => normalize_record(stream, &r, opts, buf).is_ok(),
        Err(_) => false,
    }
}

fn value_path(stream: Stream, opts: &NormalizeOptions, text: &str, buf: &mut Vec<u8>) -> bool {
    let v: Value = serde_json::from_str(text).unwrap();
    match normalize(stream, &v, opts) {
        Ok(ev) => serde_json::to_writer(&mut *buf, &ev).is_ok(),
        Err(_) => false,
    }
}

fn bench_stream(stream: Stream, label: &str, records: &[Value], figures: &mut Vec<Figure>) {
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let mb = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6 / texts.len() as f64 * 1e3;
    let opts = NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud::Global);
    if std::env::var_os("NORMALIZE_BENCH_FAST_ONLY").is_some() {
        // For profiling the fast path alone (`perf record`).
        let (rate, _) = measure(&texts, |t, b| fast(stream, &opts, t, b));
        let (parse, _) = measure(&texts, |t, _| Record::parse(t).is_ok());
        println!("{label:<17} fast path {rate:>9.0}/s, parse only {parse:>9.0}/s");
        return;
    }
    let (base, _) = measure(&texts, baseline);
    let (fast_rate, ok) = measure(&texts, |t, b| fast(stream, &opts, t, b));
    assert_eq!(ok, PER_MEASUREMENT, "every {label} record normalizes");
    let (value_rate, _) = measure(&texts, |t, b| value_path(stream, &opts, t, b));
    let ratio = fast_rate / base;
    println!(
        "{label:<17} {:>7} distinct, {mb:.2} kB avg | serde baseline {base:>9.0}/s | fast path {fast_rate:>9.0}/s ({ratio:.2}x baseline) | Value path {value_rate:>9.0}/s",
        texts.len()
    );
    let key = stream.as_str();
    for (name, value, unit) in [
        (format!("serde_baseline_{key}"), base, "events/s"),
        (format!("normalize_fast_{key}"), fast_rate, "events/s"),
        (format!("normalize_value_{key}"), value_rate, "events/s"),
        (format!("normalize_fast_ratio_{key}"), ratio, "x baseline"),
    ] {
        figures.push(Figure {
            name,
            value,
            unit,
            command: BENCH_COMMAND.to_string(),
        });
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

fn itdr_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ITDR_BIN") {
        return Some(PathBuf::from(p));
    }
    ["bench-run", "release"]
        .iter()
        .map(|p| target_dir().join(p).join("itdr"))
        .find(|p| p.is_file())
}

/// How the generated input is laid out.
#[derive(Clone, Copy)]
enum Shape {
    Ndjson,
    /// One Graph page: `{"@odata.context": …, "value": [ … ]}`.
    Page,
}

/// Writes about `mb` MB of sign-ins (the distinct records again and again, each with a fresh
/// id); returns the number of records and bytes.
fn generate(path: &Path, records: &[Value], mb: usize, shape: Shape) -> (usize, usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut bytes, mut n) = (0usize, 0usize);
    if let Shape::Page = shape {
        let head = "{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#auditLogs/signIns\",\"value\":[\n";
        f.write_all(head.as_bytes()).unwrap();
        bytes += head.len();
    }
    while bytes < mb * 1_000_000 {
        let mut r = records[n % records.len()].clone();
        let id = format!("{}-{n}", r["id"].as_str().unwrap_or("x"));
        r["id"] = json!(id);
        let line = r.to_string();
        if n > 0 && matches!(shape, Shape::Page) {
            f.write_all(b",").unwrap();
        }
        f.write_all(line.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
        bytes += line.len() + 2;
        n += 1;
    }
    if let Shape::Page = shape {
        f.write_all(b"]}\n").unwrap();
    }
    f.flush().unwrap();
    (n, bytes)
}

/// One run of `itdr normalize` through the script: (seconds, peak RSS in KiB).
fn run_cli(bin: &Path, input: &Path, n: usize) -> (f64, f64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-normalize.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(bin)
        .arg(input)
        .arg("signins")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}: {text}{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {k} in: {text}"))
    };
    assert_eq!(
        field("events") as usize,
        n,
        "itdr normalize wrote every event"
    );
    assert_eq!(field("errors") as usize, 0);
    (field("wall_secs"), field("max_rss_kib"))
}

fn bench_cli(records: &[Value], figures: &mut Vec<Figure>) {
    let Some(bin) = itdr_binary() else {
        println!(
            "itdr normalize: skipped, no binary (set ITDR_BIN or run `cargo build --profile bench-run -p itdr-cli`)"
        );
        return;
    };
    let mb: usize = std::env::var("ITDR_NORMALIZE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    // The large input in both shapes, and a tenth of it, for peak RSS against input size.
    let runs = [
        ("ndjson", Shape::Ndjson, mb),
        ("ndjson_small", Shape::Ndjson, (mb / 10).max(1)),
        ("page", Shape::Page, mb),
    ];
    for (name, shape, size) in runs {
        let input = dir.path().join(format!("{name}.json"));
        let (n, bytes) = generate(&input, records, size, shape);
        let (secs, rss_kib) = run_cli(&bin, &input, n);
        std::fs::remove_file(&input).unwrap();
        let what = match shape {
            Shape::Ndjson => "NDJSON",
            Shape::Page => "Graph page of",
        };
        let command = format!(
            "scripts/bench-normalize.sh {} <{:.0} MB {what} sign-ins> signins",
            bin.display(),
            bytes as f64 / 1e6
        );
        println!(
            "itdr normalize    {what:<13} {n:>7} sign-ins, {:>4.0} MB: {secs:>5.2} s, {:>6.0} events/s, {:>4.0} MB/s, peak RSS {:.1} MiB",
            bytes as f64 / 1e6,
            n as f64 / secs,
            bytes as f64 / 1e6 / secs,
            rss_kib / 1024.0,
        );
        for (metric, value, unit) in [
            ("events_per_s", n as f64 / secs, "events/s"),
            ("mb_per_s", bytes as f64 / 1e6 / secs, "MB/s"),
            ("peak_rss", rss_kib / 1024.0, "MiB"),
            ("input", bytes as f64 / 1e6, "MB"),
        ] {
            figures.push(Figure {
                name: format!("itdr_normalize_{name}_{metric}"),
                value,
                unit,
                command: command.clone(),
            });
        }
    }
    println!("itdr normalize    binary {}", bin.display());
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let recs = rt.block_on(records::fetch(DISTINCT));
    // The simulator and client are gone: what follows runs on this thread alone.
    drop(rt);
    println!(
        "fetched {} sign-ins and {} directory audits from the simulator in {:.1} s",
        recs.signins.len(),
        recs.audits.len(),
        start.elapsed().as_secs_f64()
    );
    let mut figures = Vec::new();
    bench_stream(Stream::Signins, "sign-ins", &recs.signins, &mut figures);
    bench_stream(
        Stream::DirectoryAudits,
        "directory audits",
        &recs.audits,
        &mut figures,
    );
    if std::env::var_os("NORMALIZE_BENCH_FAST_ONLY").is_some() {
        return;
    }
    bench_cli(&recs.signins, &mut figures);

    let json: Vec<Value> = figures
        .iter()
        .map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit, "command": f.command}))
        .collect();
    let path = target_dir().join("bench-normalize.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("figures written to {}", path.display());
}
